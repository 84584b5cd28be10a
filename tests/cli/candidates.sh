#!/usr/bin/env bash
# candidates.sh: `bookrec recommend --candidates FILE --exclude FILE` on the
# committed seed universe, with the reference USE-lite embeddings written to
# a .npy (no encoder needed): each engine ranks the admitted books only
# (br_hybrid_options.rank_only), N long while N books pass: a single engine's
# list is its unrestricted list of all books, filtered, cut; the default
# hybrid draws its candidates from the admitted books; ids checked
# (FILE:LINE).
# Usage: candidates.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
root=$(cd "$(dirname "$0")/.." && pwd)
seed=$root/golden/seed-universe
py=/usr/bin/python3
[ -x "$py" ] && "$py" -c "import numpy" 2>/dev/null || { echo "SKIP: no numpy"; exit 77; }
. "$(dirname "$0")/lib.sh"

seed_embeddings "$tmp/emb.npy"
B=(--books "$seed/books.csv" --ratings "$seed/ratings.csv" --embeddings "$tmp/emb.npy")
# candidates: every fifth book, a header and a comment; excluded: a few of them
{ echo "book_id"; echo "# every fifth book"; seq 0 5 995; } >"$tmp/cand.txt"
printf '%s\n' 0 5 10 15 20 25 30 35 40 45 "" 50 >"$tmp/excl.txt"

same() { # same ENGINE [admitted]: the restricted lists are the full lists, filtered,
  # cut (admitted: only admitted unrated books, 10 distinct)
  "$py" - "$tmp/full.json" "$tmp/out" "$tmp/cand.txt" "$tmp/excl.txt" "$1" "$seed/ratings.csv" "${2:-}" <<'PY'
import csv, json, sys
full = {d["user"]: [i["book"] for i in d["items"]] for d in map(json.loads, open(sys.argv[1]))}
got = {d["user"]: [i["book"] for i in d["items"]] for d in map(json.loads, open(sys.argv[2]))}
ids = lambda p: {l.strip() for l in open(p) if l.strip() and l[0] != "#"} - {"book_id"}
ok = ids(sys.argv[3]) - ids(sys.argv[4])
rated = {}
for r in csv.DictReader(open(sys.argv[6])):
    rated.setdefault(r["user_id"], set()).add(r["book_id"])
if sys.argv[7]:
    bad = [u for u in full if len(set(got[u])) != 10 or not set(got[u]) <= ok or set(got[u]) & rated[u]]
else:
    bad = [u for u in full if got[u] != [b for b in full[u] if b in ok][:10] or len(got[u]) != 10]
if bad: print(sys.argv[5], "reader", bad[0], got[bad[0]], [b for b in full[bad[0]] if b in ok][:10])
sys.exit(1 if bad or len(got) != 100 or len(full) != 100 else 0)
PY
}
for e in popularity svd als ease content content-favourite notebook-hybrid hybrid; do
  expect 0 "$e, all books" -- "$bookrec" --quiet recommend "${B[@]}" --engine "$e" --n 1000 --json
  cp "$tmp/out" "$tmp/full.json"
  expect 0 "$e, restricted" -- "$bookrec" --quiet recommend "${B[@]}" --engine "$e" --n 10 --json \
    --candidates "$tmp/cand.txt" --exclude "$tmp/excl.txt"
  if [ "$e" = hybrid ]; then
    check "hybrid: admitted unrated books, 10 long" same "$e" admitted
  else
    check "$e: the engine's order over the admitted books, 10 long" same "$e"
  fi
done
# the collaborative engines through a saved model file, and --explain
expect 0 "save svd" -- "$bookrec" --quiet recommend "${B[@]}" --engine svd --n 1000 --json \
  --save-model "$tmp/svd.brcf"
cp "$tmp/out" "$tmp/full.json"
expect 0 "svd model file, restricted" -- "$bookrec" --quiet recommend "${B[@]}" --model "$tmp/svd.brcf" \
  --n 10 --json --candidates "$tmp/cand.txt" --exclude "$tmp/excl.txt"
check "svd model file: restricted" same svd
expect 0 "hybrid explain, restricted" -- "$bookrec" --quiet recommend "${B[@]}" --user 5 --n 10 \
  --explain --exclude "$tmp/excl.txt"
check "explain: no excluded book" "$py" -c "
import re, sys
books = re.findall(r'\(book (\d+)', open('$tmp/out').read())
sys.exit(0 if len(books) == 10 and not set(books) & {'0','5','10','15','20','25','30','35','40','45','50'} else 1)"
# the fusions: each engine's list over the admitted books, fused
for e in rank-fusion rrf; do
  expect 0 "$e, restricted" -- "$bookrec" --quiet recommend "${B[@]}" --engine "$e" --n 10 --json \
    --candidates "$tmp/cand.txt"
  check "$e: admitted books only, 10 long" "$py" -c "
import json, sys
rows = [json.loads(l) for l in open('$tmp/out')]
sys.exit(0 if len(rows) == 100 and all(len(r['items']) == 10 and int(r['items'][0]['book']) % 5 == 0
         and all(int(i['book']) % 5 == 0 for i in r['items']) for r in rows) else 1)"
done

# errors: an unknown id names its file and line; an empty list
printf '5\n10\nnot-a-book\n' >"$tmp/bad.txt"
expect 1 "unknown id" -- "$bookrec" recommend "${B[@]}" --engine ease --candidates "$tmp/bad.txt"
contains "$tmp/err" "$tmp/bad.txt:3: no book 'not-a-book' in the catalogue" "file:line of the id"
expect 1 "unknown id, exclude" -- "$bookrec" recommend "${B[@]}" --engine svd --exclude "$tmp/bad.txt"
contains "$tmp/err" "bad.txt:3" "file:line, exclude"
printf '# nothing\n\n' >"$tmp/empty.txt"
expect 1 "no ids" -- "$bookrec" recommend "${B[@]}" --engine ease --candidates "$tmp/empty.txt"
contains "$tmp/err" "no book ids" "empty list"
expect 1 "missing file" -- "$bookrec" recommend "${B[@]}" --engine ease --candidates "$tmp/none.txt"

# --model-dir: the published list (20 here) restricted, then filled from
# beyond it (neighbours, popular books), 30 long; needs the use-lite model
# (train opens it; the vectors come from the reference cache)
model=${XDG_CACHE_HOME:-$HOME/.cache}/bookrec/models/use-lite.brm
if [ -f "$model" ]; then
  m=$tmp/m
  mkdir -p "$m"
  "$py" "$root/cli/seed_cache.py" "$root/golden/use-lite/seed_descriptions.json" "$m/embeddings.brec"
  expect 0 "train" -- "$bookrec" --quiet train --books "$seed/books.csv" --ratings "$seed/ratings.csv" \
    --model-dir "$m" --template description --clusters 4 --iterations 3 --factors 16 --top-n 20
  expect 0 "published lists" -- "$bookrec" recommend --model-dir "$m" --n 100 --json
  cp "$tmp/out" "$tmp/pub.json"
  expect 0 "published lists, restricted" -- "$bookrec" recommend --model-dir "$m" --n 30 --json \
    --candidates "$tmp/cand.txt" --exclude "$tmp/excl.txt"
  check "--model-dir: the published books that pass first, then others, 30 long" "$py" - \
    "$tmp/pub.json" "$tmp/out" "$tmp/cand.txt" "$tmp/excl.txt" "$seed/ratings.csv" <<'PY'
import csv, json, sys
pub = {d["user"]: [i["book"] for i in d["items"]] for d in map(json.loads, open(sys.argv[1]))}
got = {d["user"]: [i["book"] for i in d["items"]] for d in map(json.loads, open(sys.argv[2]))}
ids = lambda p: {l.strip() for l in open(p) if l.strip() and l[0] != "#"} - {"book_id"}
ok = ids(sys.argv[3]) - ids(sys.argv[4])
rated = {}
for r in csv.DictReader(open(sys.argv[5])):
    rated.setdefault(r["user_id"], set()).add(r["book_id"])
bad = [u for u in pub if len(got[u]) != 30 or len(set(got[u])) != 30
       or not set(got[u]) <= ok or set(got[u]) & rated[u]
       or got[u][:len([b for b in pub[u] if b in ok])] != [b for b in pub[u] if b in ok]]
if bad: print("reader", bad[0], got[bad[0]], pub[bad[0]])
sys.exit(1 if bad or len(got) != 100 else 0)
PY
  expect 1 "--model-dir, unknown id" -- "$bookrec" recommend --model-dir "$m" --candidates "$tmp/bad.txt"
  contains "$tmp/err" "bad.txt:3" "file:line, --model-dir"
fi

finish candidates.sh
