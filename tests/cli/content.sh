#!/usr/bin/env bash
# content.sh: the content-engine commands end to end: kmeans, pca and knn on
# .npy input (checked with numpy when Debian's python3 has it), cluster ->
# plot -> similar on the seed universe with the reference USE-lite
# embeddings, and the error exits.
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

finish
