#!/usr/bin/env bash
# content.sh: the content-engine commands end to end: kmeans, pca and knn on
# .npy input (checked with numpy when Debian's python3 has it), cluster ->
# plot -> similar on the seed universe with the reference USE-lite
# embeddings, and the error exits; the embedding cache every command shares
# (nothing embedded twice, train included) and `similar --book` answering
# as the served API.
# Usage: content.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
data=$2
shared=${3:-}
golden="$data/../golden"
py=/usr/bin/python3
. "$(dirname "$0")/lib.sh"

if ! "$py" -c 'import numpy' 2>/dev/null; then
  echo "SKIP: $py has no numpy (needed to make .npy inputs)"
  exit 77
fi
seed_json="$golden/use-lite/seed_descriptions.json"
[ -f "$seed_json" ] || seed_json="$shared/reference/use-lite/seed_descriptions.json"
if [ ! -f "$seed_json" ]; then
  echo "SKIP: no USE-lite reference embeddings (tests/golden or ../shared)"
  exit 77
fi

# inputs: the seed embeddings, and three blobs with a known answer
"$py" - "$seed_json" "$tmp" <<'PY'
import json, sys, numpy as np
d = json.load(open(sys.argv[1]))
np.save(sys.argv[2] + "/seed.npy", np.array([r["embedding"] for r in d], dtype=np.float32))
rng = np.random.default_rng(0)
c = rng.normal(size=(3, 8)) * 10
x = np.concatenate([c[i] + rng.normal(size=(50, 8)) * 0.1 for i in range(3)]).astype(np.float32)
np.save(sys.argv[2] + "/blobs.npy", x)
PY

expect 0 "kmeans blobs" -- "$bookrec" --quiet kmeans --in "$tmp/blobs.npy" --k 3 --n-init 3 --json \
  --centroids-out "$tmp/c.npy" --labels-out "$tmp/l.npy"
"$py" - "$tmp" <<'PY' && passes=$((passes + 1)) || { echo "FAIL: kmeans blobs not recovered"; fails=$((fails + 1)); }
import json, sys, numpy as np
t = sys.argv[1]
out = json.load(open(t + "/out"))
lab = np.array(out["labels"])
assert (np.load(t + "/l.npy") == lab).all()
for i in range(3):
    assert len(set(lab[i * 50:(i + 1) * 50])) == 1
assert len(set(lab)) == 3
assert np.load(t + "/c.npy").shape == (3, 8)
assert out["inertia"] < 150 * 8 * 0.02
PY
expect 1 "kmeans k > n" -- "$bookrec" --quiet kmeans --in "$tmp/blobs.npy" --k 200
contains "$tmp/err" "k must be <= n" "kmeans k > n message"
expect 2 "kmeans without --k" -- "$bookrec" kmeans --in "$tmp/blobs.npy"

expect 0 "pca" -- "$bookrec" pca --in "$tmp/seed.npy" --dim 2 --out "$tmp/p.npy" --json
"$py" - "$tmp" <<'PY' && passes=$((passes + 1)) || { echo "FAIL: pca disagrees with numpy"; fails=$((fails + 1)); }
import json, sys, numpy as np
t = sys.argv[1]
x = np.load(t + "/seed.npy").astype(np.float64)
xc = x - x.mean(0)
w = np.linalg.eigvalsh(np.cov(xc.T))[::-1]
r = json.load(open(t + "/out"))["explained_variance_ratio"]
assert np.allclose(r, w[:2] / w.sum(), atol=1e-5), (r, w[:2] / w.sum())
p = np.load(t + "/p.npy")
assert p.shape == (1000, 2) and abs(p.var(0, ddof=1)[0] - w[0]) < 1e-4
PY

expect 0 "knn exact" -- "$bookrec" --quiet knn --in "$tmp/seed.npy" --queries "$tmp/seed.npy" --k 5 \
  --index exact --out "$tmp/ids.npy"
expect 0 "knn hnsw" -- "$bookrec" --quiet knn --in "$tmp/seed.npy" --queries "$tmp/seed.npy" --k 5 \
  --index hnsw --m 16 --ef-construction 100 --ef 64 --out "$tmp/ids_h.npy" --save-index "$tmp/seed.hnsw" --json
contains "$tmp/out" '"index":"hnsw"' "knn json"
expect 0 "knn load index" -- "$bookrec" --quiet knn --load-index "$tmp/seed.hnsw" \
  --queries "$tmp/seed.npy" --k 5 --ef 64 --out "$tmp/ids_l.npy"
"$py" - "$tmp" <<'PY' && passes=$((passes + 1)) || { echo "FAIL: knn results"; fails=$((fails + 1)); }
import sys, numpy as np
t = sys.argv[1]
x = np.load(t + "/seed.npy")
x /= np.linalg.norm(x, axis=1, keepdims=True)
ids = np.load(t + "/ids.npy")
assert ids.shape == (1000, 5) and ids.dtype == np.int32
s = x @ x.T
best = np.sort(s, axis=1)[:, ::-1][:, :5]
got = np.take_along_axis(s, ids.astype(np.int64), 1)
assert np.allclose(got, best, atol=1e-5)
h, l = np.load(t + "/ids_h.npy"), np.load(t + "/ids_l.npy")
assert (h == l).all()
gh = np.take_along_axis(s, h.astype(np.int64), 1)
assert np.mean(np.abs(gh - best) < 1e-5) > 0.95
PY
printf 'garbage' >"$tmp/bad.hnsw"
expect 1 "knn corrupt index" -- "$bookrec" --quiet knn --load-index "$tmp/bad.hnsw" \
  --queries "$tmp/seed.npy" --k 5 --out "$tmp/x.npy"
contains "$tmp/err" "not a bookrec HNSW index" "corrupt index message"

books="$golden/seed-universe/books.csv"
ratings="$golden/seed-universe/ratings.csv"
expect 0 "cluster" -- "$bookrec" --quiet cluster --books "$books" --embeddings "$tmp/seed.npy" \
  --model-dir "$tmp/model" --k 10 --n-init 3 --seed 42
contains "$tmp/out" "10 tribes of 1000 books" "cluster summary"
contains "$tmp/out" "Historical Fiction" "cluster names"
for ext in png svg pdf; do
  expect 0 "plot $ext" -- "$bookrec" plot --model "$tmp/model" --out "$tmp/tribes.$ext"
done
head -c 4 "$tmp/tribes.png" | grep -q PNG && passes=$((passes + 1)) || { echo "FAIL: not a PNG"; fails=$((fails + 1)); }
head -c 4 "$tmp/tribes.pdf" | grep -q PDF && passes=$((passes + 1)) || { echo "FAIL: not a PDF"; fails=$((fails + 1)); }
expect 2 "plot without --out" -- "$bookrec" plot --model "$tmp/model"
expect 1 "plot bad extension" -- "$bookrec" plot --model "$tmp/model" --out "$tmp/x.bmp"
expect 1 "plot missing model" -- "$bookrec" plot --model "$tmp/none" --out "$tmp/x.png"
contains "$tmp/err" "no tribes model" "missing model message"

expect 0 "similar book" -- "$bookrec" similar --books "$books" --book 5 --model-dir "$tmp/model" --n 3 --json
contains "$tmp/out" '"genre":"Mystery"' "similar book stays in genre"
expect 0 "similar user" -- "$bookrec" similar --books "$books" --ratings "$ratings" --user 5 \
  --model-dir "$tmp/model" --n 3
contains "$tmp/out" "tribe rule: favourite" "tribe rule"
expect 1 "similar unknown book" -- "$bookrec" similar --books "$books" --book nope --embeddings "$tmp/seed.npy"
contains "$tmp/err" "book 'nope' is not in" "unknown book message"
expect 2 "similar both" -- "$bookrec" similar --books "$books" --book 1 --user 2

# --- One embedding cache for every command (a folder of the test's own):
# a book embedded by one command is not embedded by the next, nor by
# `train`, nor after it; and `similar --book` without --template answers as
# the API's /api/books/{id}/similar of a model trained with the defaults.
# 40 books of the goodbooks sample and their ratings; needs the use-lite model.
model=${XDG_CACHE_HOME:-$HOME/.cache}/bookrec/models/use-lite.brm
if [ -f "$model" ]; then
  sub=$tmp/sub
  mkdir -p "$sub"
  head -41 "$data/goodbooks-sample/books.csv" >"$sub/books.csv"
  "$py" - "$sub/books.csv" "$data/goodbooks-sample/ratings.csv" "$sub/ratings.csv" <<'PY'
import csv, sys
ids = {r["book_id"] for r in csv.DictReader(open(sys.argv[1]))}
w = csv.writer(open(sys.argv[3], "w", newline=""))
w.writerow(["user_id", "book_id", "rating"])
for r in csv.DictReader(open(sys.argv[2])):
    if r["book_id"] in ids:
        w.writerow([r["user_id"], r["book_id"], r["rating"]])
PY
  reader=$(sed -n 2p "$sub/ratings.csv" | cut -d, -f1)
  S=(--books "$sub/books.csv")
  R=(--ratings "$sub/ratings.csv")
  jcheck() { # jcheck DESCRIPTION FILE PYTHON-EXPRESSION-OF-d
    "$py" -c 'import json, sys; d = json.loads(open(sys.argv[1]).read()); sys.exit(0 if eval(sys.argv[2]) else 1)' "$2" "$3" &&
      passes=$((passes + 1)) || { echo "FAIL: $1"; fails=$((fails + 1)); }
  }
  export BOOKREC_EMBED_CACHE=$tmp/ecache
  expect 0 "similar, cold cache" -- "$bookrec" --quiet similar "${S[@]}" --book 1 --n 10 --json
  cp "$tmp/out" "$tmp/sim_cold.json"
  jcheck "similar, cold cache: 40 books embedded" "$tmp/sim_cold.json" 'd["embedded"] == 40'
  expect 0 "similar, warm cache" -- "$bookrec" --quiet similar "${S[@]}" --book 1 --n 10 --json
  cp "$tmp/out" "$tmp/sim.json"
  jcheck "similar, warm cache: nothing embedded" "$tmp/sim.json" 'd["embedded"] == 0'
  cmp -s <(grep -o '"similar".*\]' "$tmp/sim_cold.json") <(grep -o '"similar".*\]' "$tmp/sim.json") &&
    passes=$((passes + 1)) || { echo "FAIL: cached neighbours differ"; fails=$((fails + 1)); }
  expect 0 "recommend content after similar" -- "$bookrec" --verbose recommend "${S[@]}" "${R[@]}" \
    --engine content --users "$reader" --n 3
  contains "$tmp/err" "embedded 0 of 40 books (full text, use-lite)" "recommend: nothing embedded"
  expect 0 "embed --books after similar" -- "$bookrec" --verbose embed "${S[@]}" --out "$tmp/sub.npy"
  contains "$tmp/err" "embedded 0 of 40 books (full text" "embed: nothing embedded"
  expect 0 "eval, two texts" -- "$bookrec" --verbose eval "${S[@]}" "${R[@]}" \
    --engines content,content-favourite --json
  cp "$tmp/out" "$tmp/ev.json"
  contains "$tmp/err" "embedded 0 of 40 books (full text" "eval: the full texts from the cache"
  contains "$tmp/err" "embedded 40 of 40 books (description text" "eval: the notebook's texts embedded"
  jcheck "eval: each engine its text" "$tmp/ev.json" \
    'd["embedded"] == 40 and d["protocol"]["book_text"] == {"content": "full", "content-favourite": "description"}'
  expect 0 "cluster after eval" -- "$bookrec" --quiet cluster "${S[@]}" --model-dir "$tmp/subtribes" --k 3 --json
  jcheck "cluster: the notebook's texts from the cache" "$tmp/out" 'd["embedded"] == 0'
  expect 0 "content-cluster after cluster" -- "$bookrec" --verbose recommend "${S[@]}" "${R[@]}" \
    --engine content-cluster --users "$reader" --n 3
  contains "$tmp/err" "embedded 0 of 40 books (description text" "content-cluster: nothing embedded"
  TR=(--clusters 3 --factors 8 --iterations 3 --top-n 10 --json)
  expect 0 "train after similar" -- "$bookrec" --quiet train "${S[@]}" "${R[@]}" --model-dir "$tmp/m" "${TR[@]}"
  jcheck "train: nothing embedded" "$tmp/out" 'd["embedded"] == 0'
  [ -s "$tmp/m/embeddings.brec" ] && passes=$((passes + 1)) || { echo "FAIL: the model directory has no cache of its own"; fails=$((fails + 1)); }
  # the other way round: train first (a fresh shared cache), then similar
  export BOOKREC_EMBED_CACHE=$tmp/ecache2
  expect 0 "train, cold cache" -- "$bookrec" --quiet train "${S[@]}" "${R[@]}" --model-dir "$tmp/m2" "${TR[@]}"
  jcheck "train, cold cache: 40 embedded" "$tmp/out" 'd["embedded"] == 40'
  expect 0 "similar after train" -- "$bookrec" --quiet similar "${S[@]}" --book 1 --n 10 --json
  jcheck "similar after train: nothing embedded" "$tmp/out" 'd["embedded"] == 0'
  # a trained model directory: its own embeddings, books.csv from the version
  expect 0 "similar --model-dir (trained)" -- "$bookrec" --quiet similar --model-dir "$tmp/m" --book 1 --n 10 --json
  cp "$tmp/out" "$tmp/sim_model.json"
  expect 2 "similar --model-dir with --template" -- "$bookrec" similar --model-dir "$tmp/m" --book 1 --template full
  contains "$tmp/err" "the embeddings come from" "says where the embeddings come from"
  unset BOOKREC_EMBED_CACHE
  # the API's neighbours of book 1
  "$bookrec" serve --model-dir "$tmp/m" --port 0 --poll-ms 3600000 >"$tmp/serve.out" 2>"$tmp/serve.err" &
  spid=$!
  for _ in $(seq 300); do grep -q 'http://' "$tmp/serve.out" && break; sleep 0.1; done
  port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve.out")
  "$py" - "$port" >"$tmp/api.json" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
c.request("GET", "/api/books/1/similar?n=10")
r = c.getresponse()
print(r.read().decode() if r.status == 200 else "{}")
PY
  kill -TERM "$spid"
  wait "$spid"
  check_same() { # check_same DESCRIPTION FILE: its neighbours of book 1 are the API's
    "$py" - "$tmp/api.json" "$2" <<'PY' && passes=$((passes + 1)) || { echo "FAIL: $1"; fails=$((fails + 1)); }
import json, sys
api = [b["book_id"] for b in json.load(open(sys.argv[1]))["similar"]]
got = [b["book_id"] for b in json.loads(open(sys.argv[2]).read())["similar"]]
print(" API:", api, "\n got:", got) if api != got else None
sys.exit(0 if len(api) == 10 and api == got else 1)
PY
  }
  check_same "similar --book (default text) = the API's /api/books/1/similar" "$tmp/sim.json"
  check_same "similar --model-dir = the API's /api/books/1/similar" "$tmp/sim_model.json"
else
  echo "content.sh: no use-lite model at $model (make model): embedding-cache checks skipped"
fi

finish
