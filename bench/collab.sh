#!/usr/bin/env bash
# collab.sh: the collaborative-engine benchmark (issue 5). In one script,
# on the same matrices:
#   1. truncated SVD, k = 50, bookrec (build/bench/bench_collab svd: block
#      Krylov, its automatic block size and depth) against scikit-learn's
#      TruncatedSVD (bench/peers/svd_sklearn.py) with its default n_iter = 5
#      power iterations: seconds and relative reconstruction error
#      |A - U S V^T|_F / |A|_F (the two methods differ, so the comparison
#      is time at equal or lower error: check the error columns);
#   2. implicit ALS seconds per iteration at 64 factors, bookrec with 1 and
#      2 threads (CG, 3 steps, as the `implicit` library; on goodbooks also
#      the exact Cholesky solve) against a plain numpy/scipy ALS
#      (bench/peers/als_numpy.py, exact per-row solves);
#   3. top-100 for every reader of the 1M x 100k ALS model, from a saved
#      model: total time and peak memory (/usr/bin/time -v), plus fold-in
#      and single-reader top-100 latency.
#
#   bench/collab.sh [BUILD_DIR]        (default: build; run by bench/run.sh)
#
# Data sets:
#   goodbooks  ../shared/data/goodbooks (2,672 readers x 10,000 books,
#              298,176 ratings); skipped with a message when absent
#   scale      `bookrec generate --books 100000 --users 1000000 --rng xoshiro`
#              (34.5M ratings), generated once into bench/out/scale and
#              reused while its parameters match (bench/load.sh makes the
#              same one)
#
# Environment: COLLAB_PARTS (comma list of svd, als, topn; default all),
# COLLAB_SKIP_SCALE=1, COLLAB_SKLEARN_Q (scikit-learn's n_iter, default 5,
# its default), COLLAB_BOOKREC_Q (bookrec's Krylov depth, default automatic),
# COLLAB_SVD_REPEAT (runs per side on goodbooks, default 5; the best counts),
# COLLAB_PEER_BUDGET (seconds per half-step of the numpy ALS on the scale
# set before it extrapolates, default 60), PYTHON (default /usr/bin/python3),
# BOOKREC_SHARED (default ../shared next to the repository).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/blas.env"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
py=${PYTHON:-/usr/bin/python3}
shared=${BOOKREC_SHARED:-$root/../shared}
out="$root/bench/out"
sk_q=${COLLAB_SKLEARN_Q:-5}
br_q=${COLLAB_BOOKREC_Q:-}
parts=",${COLLAB_PARTS:-svd,als,topn},"
want() { case "$parts" in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
budget=${COLLAB_PEER_BUDGET:-60}
bench="$build/bench/bench_collab"
bookrec="$build/bookrec"
for f in "$bench" "$bookrec"; do
  if [ ! -x "$f" ]; then
    echo "collab.sh: $f not found: build first (make build)" >&2
    exit 1
  fi
done
if ! "$py" -c 'import sklearn, scipy, pandas' 2>/dev/null; then
  echo "collab.sh: $py lacks sklearn/scipy/pandas: scripts/install-deps.sh bench" >&2
  exit 1
fi
mkdir -p "$out"
jsonl="$out/collab.jsonl"
: >"$jsonl"

# tag DATASET: prefixes every JSON line with its data set.
tag() { sed "s/^{/{\"dataset\":\"$1\",/" >>"$jsonl"; }

run_svd() { # NAME BOOKS RATINGS REPEAT
  local name=$1 books=$2 ratings=$3 n=$4
  want svd || return 0
  echo "== $name: truncated SVD k=50: bookrec block Krylov (depth ${br_q:-auto}), sklearn n_iter=$sk_q; $n runs; load: $(uptime | sed 's/.*load/load/')" >&2
  "$bench" svd --books "$books" --ratings "$ratings" --factors 50 ${br_q:+--power-iters "$br_q"} \
    --repeat "$n" 2>/dev/null | tag "$name"
  "$py" "$here/peers/svd_sklearn.py" --ratings "$ratings" --factors 50 --power-iters "$sk_q" \
    --repeat "$n" | tag "$name"
}

run_als() { # NAME BOOKS RATINGS ITERATIONS PEER_BUDGET CG_STEPS...
  local name=$1 books=$2 ratings=$3 it=$4 pb=$5
  shift 5
  want als || return 0
  for t in 1 2; do
    for cg in "$@"; do
      echo "== $name: implicit ALS, 64 factors, $t thread(s), cg-steps $cg" >&2
      "$bench" --threads "$t" als --books "$books" --ratings "$ratings" --factors 64 \
        --iterations "$it" --cg-steps "$cg" 2>/dev/null | tag "$name"
    done
  done
  echo "== $name: numpy ALS peer" >&2
  "$py" "$here/peers/als_numpy.py" --ratings "$ratings" --factors 64 --iterations 1 \
    --max-seconds "$pb" | tag "$name"
}

gb="$shared/data/goodbooks"
if [ -f "$gb/books.csv" ] && [ -f "$gb/ratings.csv" ]; then
  run_svd goodbooks "$gb/books.csv" "$gb/ratings.csv" "${COLLAB_SVD_REPEAT:-5}"
  run_als goodbooks "$gb/books.csv" "$gb/ratings.csv" 5 0 3 0
else
  echo "collab.sh: $gb not found: skipping the goodbooks data set" >&2
fi

rss_kb=""
if [ "${COLLAB_SKIP_SCALE:-0}" != 1 ]; then
  scale="$out/scale"
  gen_args=(generate --books 100000 --users 1000000 --rng xoshiro --seed 42)
  if [ ! -f "$scale/ratings.csv" ] || [ "$(cat "$scale/PARAMS" 2>/dev/null)" != "${gen_args[*]}" ]; then
    echo "== generating the scale universe into $scale (once)" >&2
    mkdir -p "$scale"
    rm -f "$scale/PARAMS"
    "$bookrec" --quiet "${gen_args[@]}" --out "$scale" >&2
    echo "${gen_args[*]}" >"$scale/PARAMS"
  fi
  run_svd scale "$scale/books.csv" "$scale/ratings.csv" 1
  # The exact solve costs ~k^2 per rating: CG only at this size.
  run_als scale "$scale/books.csv" "$scale/ratings.csv" 2 "$budget" 3
  model="$out/scale-als64.brcf"
  if want topn && { [ ! -f "$model" ] || [ "$scale/ratings.csv" -nt "$model" ]; }; then
    echo "== scale: fitting the 64-factor ALS model for top-N (5 iterations, once)" >&2
    "$bench" topn --books "$scale/books.csv" --ratings "$scale/ratings.csv" --factors 64 \
      --iterations 5 --n 10 --users-limit 1000 --save-model "$model" 2>/dev/null >/dev/null
  fi
  if want topn; then
    echo "== scale: top-100 for every reader from $model (/usr/bin/time -v)" >&2
    /usr/bin/time -v "$bench" topn --books "$scale/books.csv" --ratings "$scale/ratings.csv" \
      --model "$model" --n 100 2>"$out/collab-topn-time-v.txt" | tag scale
    rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/collab-topn-time-v.txt")
  fi
else
  echo "collab.sh: COLLAB_SKIP_SCALE=1: skipping the scale data set" >&2
fi

"$py" - "$jsonl" "$rss_kb" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rss = sys.argv[2]
sets = list(dict.fromkeys(r["dataset"] for r in rows))
print("Truncated SVD, k = 50: best seconds of the runs; error = |A - U S V^T|_F / |A|_F;")
print("bookrec: block Krylov, block b, depth q (2q+1 sparse passes of width b); sklearn: n_iter")
print(f"{'dataset':<10} {'b':>3} {'q':>2} {'bookrec s':>10} {'error':>10}  {'n_iter':>6} {'sklearn s':>10}"
      f" {'error':>10}  {'speed-up':>8}  {'error <= sklearn':>16}")
for ds in sets:
    b = [r for r in rows if r["dataset"] == ds and r["kind"] == "svd" and r["impl"] == "bookrec"]
    p = [r for r in rows if r["dataset"] == ds and r["kind"] == "svd" and r["impl"] == "sklearn"]
    if not b or not p:
        continue
    bb = min(b, key=lambda r: r["seconds"])
    pp = min(p, key=lambda r: r["seconds"])
    ok = "yes" if bb['relative_error'] <= pp['relative_error'] else "NO"
    print(f"{ds:<10} {bb.get('block', 0):>3} {bb['power_iters']:>2} {bb['seconds']:>10.4f}"
          f" {bb['relative_error']:>10.6f}  {pp['power_iters']:>6} {pp['seconds']:>10.4f}"
          f" {pp['relative_error']:>10.6f}  {pp['seconds'] / bb['seconds']:>7.1f}x  {ok:>16}")
print()
if any(r["kind"] == "als" for r in rows):
    print("Implicit ALS, 64 factors: seconds per iteration")
for ds in sets:
    a = [r for r in rows if r["dataset"] == ds and r["kind"] == "als"]
    peer = [r for r in a if r["impl"] == "numpy"]
    ps = peer[0]["seconds_per_iteration"] if peer else None
    for r in a:
        if r["impl"] != "bookrec":
            continue
        ratio = f"{ps / r['seconds_per_iteration']:7.1f}x vs numpy" if ps else ""
        solver = "CG 3 steps" if r["cg_steps"] else "exact"
        print(f"  {ds:<10} bookrec {r['threads']} thread(s), {solver:<10} "
              f"{r['seconds_per_iteration']:9.3f} s  {ratio}")
    if peer:
        ex = " (extrapolated from a time-boxed run)" if peer[0]["extrapolated"] else ""
        print(f"  {ds:<10} numpy peer (exact solves, BLAS threads)  {ps:9.3f} s{ex}")
print()
for r in rows:
    if r["kind"] == "topn":
        print(f"Top-{r['n']} for all {r['users']:,} readers x {r['books']:,} books "
              f"({r['factors']} factors, {r['threads']} threads): {r['all_users_seconds']:.1f} s "
              f"({1e6 * r['all_users_seconds'] / r['users']:.1f} us per reader); "
              f"fold-in {r['fold_in_us']:.0f} us, single-reader top-{r['n']} "
              f"{r['single_user_topn_us']:.0f} us")
if rss:
    print(f"  peak resident set size of that process (/usr/bin/time -v): {int(rss) / 1024:,.0f} MB")
EOF
