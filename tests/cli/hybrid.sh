#!/usr/bin/env bash
# hybrid.sh: `bookrec recommend` with the hybrid family and `bookrec eval`
# end to end on the committed seed universe, with the reference USE-lite
# embeddings written to a .npy (no encoder needed): the notebook hybrid's
# top-10 for reader 5 equals notebook_reference.json, explanations in
# words, eval's JSON shape, the table, options and errors.
# Usage: hybrid.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
root=$(cd "$(dirname "$0")/.." && pwd)
seed=$root/golden/seed-universe
py=/usr/bin/python3
[ -x "$py" ] && "$py" -c "import numpy" 2>/dev/null || { echo "SKIP: no numpy"; exit 77; }
. "$(dirname "$0")/lib.sh"

check() { # check DESCRIPTION PYTHON-EXPRESSION-EXIT-STATUS...
  local what=$1
  shift
  if "$@"; then passes=$((passes + 1)); else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

seed_embeddings "$tmp/emb.npy"
B=(--books "$seed/books.csv" --ratings "$seed/ratings.csv")

# the notebook's hybrid for reader 5 equals the reference
expect 0 "notebook-hybrid json" -- "$bookrec" --quiet recommend "${B[@]}" --embeddings "$tmp/emb.npy" \
  --engine notebook-hybrid --exact --user 5 --json
cp "$tmp/out" "$tmp/nb.json"
check "reader 5 hybrid top-10 = reference" "$py" - "$tmp/nb.json" "$seed/notebook_reference.json" <<'PY'
import json, sys
got = json.loads(open(sys.argv[1]).read())
ref = json.load(open(sys.argv[2]))["users"]["5"]["hybrid_top10"]
sys.exit(0 if [int(i["book"]) for i in got["items"]] == ref and got["user"] == "5" else 1)
PY

# Without --template or --embeddings the notebook's engines read the
# notebook's text (descriptions), through the shared embedding cache: seeded
# here with the reference vectors of the 1000 descriptions, so nothing is
# embedded, and every reader's list is the notebook's (the full text would
# be embedded now, and give other lists). Needs the use-lite model.
model=${XDG_CACHE_HOME:-$HOME/.cache}/bookrec/models/use-lite.brm
if [ -f "$model" ]; then
  export BOOKREC_EMBED_CACHE=$tmp/ecache
  mkdir -p "$BOOKREC_EMBED_CACHE"
  "$py" "$root/cli/seed_cache.py" "$root/golden/use-lite/seed_descriptions.json" "$BOOKREC_EMBED_CACHE/use-lite.brec"
  expect 0 "notebook-hybrid, default text" -- "$bookrec" --verbose recommend "${B[@]}" \
    --engine notebook-hybrid --exact --json
  cp "$tmp/out" "$tmp/nb_all.json"
  contains "$tmp/err" "embedded 0 of 1000 books (description text, use-lite)" "notebook text, from the cache"
  check "every reader's notebook-hybrid top-10 = reference, default text" "$py" - "$tmp/nb_all.json" "$seed/notebook_reference.json" <<'PY'
import json, sys
ref = json.load(open(sys.argv[2]))["users"]
got = [json.loads(l) for l in open(sys.argv[1])]
same = sum([int(i["book"]) for i in g["items"]] == ref[g["user"]]["hybrid_top10"] for g in got)
print("notebook-hybrid lists equal to the notebook's:", same, "of", len(ref))
sys.exit(0 if same == len(ref) == len(got) == 100 else 1)
PY
  # content-cluster and rank-fusion: the same lists as with the reference .npy
  for e in content-cluster rank-fusion; do
    expect 0 "$e, default text" -- "$bookrec" --quiet recommend "${B[@]}" --engine $e --users 1,5,42 --json
    cp "$tmp/out" "$tmp/$e.cache.json"
    expect 0 "$e, reference embeddings" -- "$bookrec" --quiet recommend "${B[@]}" --engine $e --users 1,5,42 \
      --embeddings "$tmp/emb.npy" --json
    cmp -s "$tmp/out" "$tmp/$e.cache.json" && passes=$((passes + 1)) || { echo "FAIL: $e default text is not the notebook's"; fails=$((fails + 1)); }
  done
  # eval: each engine its own text (the notebook's engines: descriptions)
  expect 0 "eval, default texts" -- "$bookrec" --verbose eval "${B[@]}" \
    --engines content-favourite,notebook-hybrid,content-cluster --json
  cp "$tmp/out" "$tmp/ev_cache.json"
  contains "$tmp/err" "embedded 0 of 1000 books (description text" "eval: the notebook's text, from the cache"
  expect 0 "eval, reference embeddings" -- "$bookrec" --quiet eval "${B[@]}" \
    --engines content-favourite,notebook-hybrid,content-cluster --embeddings "$tmp/emb.npy" --json
  check "eval: the notebook's engines rank with descriptions" "$py" - "$tmp/ev_cache.json" "$tmp/out" <<'PY'
import json, sys
a, b = (json.loads(open(p).read()) for p in sys.argv[1:3])
texts = a["protocol"]["book_text"]
ok = texts == {"content-favourite": "description", "notebook-hybrid": "description",
               "content-cluster": "description"} and a["embedded"] == 0
for e in texts:
    ok = ok and all(a["engines"][e][m] == b["engines"][e][m] for m in ("ndcg@10", "precision@10", "map@10"))
sys.exit(0 if ok else 1)
PY
  expect 0 "eval table names the texts" -- "$bookrec" --quiet eval "${B[@]}" --engines svd,notebook-hybrid --k 5
  contains "$tmp/out" "book text: description (notebook-hybrid)" "table: the text of the engines that read one"
  unset BOOKREC_EMBED_CACHE
else
  echo "hybrid.sh: no use-lite model at $model (make model): default-text checks skipped"
fi

# explanations
expect 0 "explain" -- "$bookrec" --quiet recommend "${B[@]}" --embeddings "$tmp/emb.npy" \
  --user 5 --n 3 --explain
contains "$tmp/out" "reader 5, hybrid:" "explain header (hybrid is the default)"
contains "$tmp/out" "readers who liked *" "item-item reason in words"
contains "$tmp/out" "because you rated *" "content reason in words"
expect 0 "explain cluster" -- "$bookrec" --quiet recommend "${B[@]}" --embeddings "$tmp/emb.npy" \
  --user 5 --n 2 --engine content-cluster --explain
contains "$tmp/out" "tribe, like your favourite *" "tribe reason"
expect 0 "explain json" -- "$bookrec" --quiet recommend "${B[@]}" --embeddings "$tmp/emb.npy" \
  --user 5 --n 2 --engine rrf --explain --json
contains "$tmp/out" '"why":[{"engine":"ease"' "json explanation parts"
expect 0 "collab explain" -- "$bookrec" --quiet recommend "${B[@]}" --user 5 --n 2 --engine svd --explain
contains "$tmp/out" "SVD score" "svd reason"
# the existing collaborative path is unchanged
expect 0 "svd plain" -- "$bookrec" --quiet recommend "${B[@]}" --engine svd --users 5 --json
contains "$tmp/out" '{"user":"5","items":[{"book":' "collab json lines"

# eval: JSON shape
expect 0 "eval json" -- "$bookrec" --quiet eval "${B[@]}" --embeddings "$tmp/emb.npy" --json
cp "$tmp/out" "$tmp/eval.json"
check "eval json shape" "$py" - "$tmp/eval.json" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read())
keys = {"precision@10", "recall@10", "ndcg@10", "map@10", "coverage@10", "rmse", "fit_s", "recommend_s"}
want = {"popularity", "svd", "als", "als-explicit", "ease", "content", "content-favourite",
        "content-cluster", "notebook-hybrid", "rank-fusion", "rrf", "hybrid"}
ok = d["default"] == "hybrid" and set(d["engines"]) == want
ok = ok and all(set(v) == keys for v in d["engines"].values())
ok = ok and d["engines"]["svd"]["rmse"] > 2 and d["engines"]["hybrid"]["rmse"] is None
ok = ok and d["engines"]["popularity"]["ndcg@10"] >= 0 and d["protocol"]["min_ratings"] == 5
ok = ok and 0 < d["engines"]["hybrid"]["ndcg@10"] <= 1
sys.exit(0 if ok else 1)
PY
expect 0 "eval table + slices" -- "$bookrec" --quiet eval "${B[@]}" --engines popularity,ease,hybrid \
  --weights 1,0.3,0,0 --k 5 --slices
contains "$tmp/out" "NDCG@k" "table header"
contains "$tmp/out" "(default)" "default marked"
contains "$tmp/out" "newcomers" "newcomer slice"
contains "$tmp/out" "cold books" "cold-book slice"

# errors
expect 2 "eval no books" -- "$bookrec" eval --ratings "$seed/ratings.csv"
expect 2 "eval bad engine" -- "$bookrec" eval "${B[@]}" --engines knn
expect 2 "eval bad k" -- "$bookrec" eval "${B[@]}" --k 0
expect 2 "eval bad protocol" -- "$bookrec" eval "${B[@]}" --protocol leave-one-out
contains "$tmp/err" "random, cold-books or readers" "protocol usage message"
expect 2 "eval slices need random" -- "$bookrec" eval "${B[@]}" --protocol readers --slices
# protocols (docs/evaluation.md): the deep metrics in JSON, the split for peers
mkdir -p "$tmp/cold"
expect 0 "eval cold-books" -- "$bookrec" --quiet eval "${B[@]}" --engines popularity,ease \
  --protocol cold-books --seed 3 --json --write-split "$tmp/cold"
check "eval cold-books json and split" "$py" - "$tmp/out" "$tmp/cold" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read())
p = d["protocol"]
deep = {"ndcg@10", "recall@20", "recall@50", "ndcg@100"}
ok = p["protocol"] == "cold-books" and p["cold_books"] > 0 and p["seed"] == 3
ok = ok and all(deep <= set(v) for v in d["engines"].values())
cold = {int(x) for x in open(sys.argv[2] + "/candidates.csv").read().split()[1:]}
train = [l.split(",") for l in open(sys.argv[2] + "/train.csv").read().split()[1:]]
test = [l.split(",") for l in open(sys.argv[2] + "/test.csv").read().split()[1:]]
ok = ok and len(cold) == p["cold_books"] and all(int(b) not in cold for _, b, _ in train)
ok = ok and test and all(int(b) in cold for _, b, _ in test)
sys.exit(0 if ok else 1)
PY
expect 1 "eval by-time without timestamps" -- "$bookrec" eval "${B[@]}" --engines popularity --by-time
contains "$tmp/err" "timestamp" "by-time message"
expect 1 "bad embeddings" -- "$bookrec" eval "${B[@]}" --engines content --embeddings "$tmp/nb.json"
expect 2 "recommend bad weights" -- "$bookrec" recommend "${B[@]}" --weights 1,2

finish hybrid.sh
