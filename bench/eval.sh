#!/usr/bin/env bash
# bench/eval.sh: the hybrid and evaluation figures of docs/benchmarks.md and
# docs/evaluation.md on ../shared/data/goodbooks: every engine under the
# protocol (seed 42), the slices, a second seed, and the validation tuning
# of the default hybrid, then the Python peers (numpy / scipy /
# scikit-learn: popularity, the notebook's SVD-50, implicit ALS, item-kNN,
# EASE) on exactly the same split, and the default hybrid's ranking
# throughput at catalogue scale on a generated set. Embeddings come from
# the cache (the first run embeds the 10,000 books once, minutes). Outputs
# in bench/out/.
# Usage: bench/eval.sh [BUILD_DIR]
#   SCALE="BOOKS USERS READERS" (default "100000 1000000 20000"): the
#   generated set and how many of its readers bench_hybrid ranks; SCALE=0
#   skips it. PEERS=0 skips the Python peers; PEER_ENGINES picks them (the
#   numpy ALS, one solve per row, takes many minutes on a loaded machine).
set -eu
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
data=${GOODBOOKS:-$root/../shared/data/goodbooks}
out=$root/bench/out
mkdir -p "$out"
# Same BLAS kernels on every run (the CLI re-executes itself with this set
# anyway when OpenBLAS does not know the CPU).
. "$(dirname "${BASH_SOURCE[0]}")/blas.env"
B=(--books "$data/books.csv" --ratings "$data/ratings.csv")
bookrec=$build/bookrec
echo "== warm the embedding cache (both texts: the notebook's engines read descriptions)"
"$bookrec" eval "${B[@]}" --engines content,content-favourite --k 10 >/dev/null
echo "== all engines, seed 42 (timed)"
/usr/bin/time -f "wall %e s, user %U s, sys %S s, max RSS %M KB" "$bookrec" --quiet eval "${B[@]}" | tee "$out/eval-seed42.txt"
"$bookrec" --quiet eval "${B[@]}" --json >"$out/eval-seed42.json"
echo "== slices (long tail, newcomers, cold books)"
"$bookrec" --quiet eval "${B[@]}" --slices | tee "$out/eval-slices.txt"
echo "== another split: seed 7"
"$bookrec" --quiet eval "${B[@]}" --seed 7 | tee "$out/eval-seed7.txt"
echo "== tuning on a validation split of the training data"
"$bookrec" --quiet eval "${B[@]}" --engines ease,hybrid --tune --blend 2>&1 | tee "$out/eval-tune.txt"
echo "== the default hybrid without relearning (built-in coefficients)"
"$bookrec" --quiet eval "${B[@]}" --engines hybrid --no-learn | tee "$out/eval-nolearn.txt"

if [ "${PEERS:-1}" != 0 ]; then
  echo "== Python peers on the same split (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  split=$(mktemp -d)
  trap 'rm -rf "$split"' EXIT
  "$bookrec" --quiet eval "${B[@]}" --engines popularity --write-split "$split" >/dev/null
  /usr/bin/time -f "peer wall %e s, max RSS %M KB" /usr/bin/python3 \
    "$root/bench/peers/eval_sklearn.py" --split "$split" --json \
    --engines "${PEER_ENGINES:-popularity,svd,als,itemknn,ease}" >"$out/eval-peers.json"
  /usr/bin/python3 - "$out/eval-seed42.json" "$out/eval-peers.json" <<'PY' | tee "$out/eval-peers.txt"
import json, sys
ours = json.load(open(sys.argv[1]))["engines"]
peer = json.load(open(sys.argv[2]))["engines"]
pairs = [(p, o) for p, o in [("popularity", "popularity"), ("svd", "svd"), ("als", "als"),
                              ("itemknn", None), ("ease", "ease")] if p in peer]
print("| peer (numpy/scipy/sklearn) | peer NDCG@10 | bookrec engine | bookrec NDCG@10 | ratio | bookrec hybrid / peer |")
print("|---|---|---|---|---|---|")
hy = ours["hybrid"]["ndcg@10"]
for p, o in pairs:
    pn = peer[p]["ndcg"]
    on = ours[o]["ndcg@10"] if o else None
    print(f"| {p} | {pn:.4f} | {o or '-'} | " + (f"{on:.4f} | {on / pn:.3f}" if o else "- | -")
          + f" | {hy / pn:.3f} |")
best = max(peer, key=lambda e: peer[e]["ndcg"])
print(f"best peer: {best} {peer[best]['ndcg']:.4f}; bookrec hybrid {hy:.4f} "
      f"({(hy / peer[best]['ndcg'] - 1) * 100:+.1f}%)")
PY
fi

scale=${SCALE:-100000 1000000 20000}
if [ "$scale" != 0 ]; then
  read -r sb su sr <<<"$scale"
  gen=$(mktemp -d)
  echo "== default hybrid ranking at scale: $sb books x $su readers, top 100 for $sr readers"
  "$bookrec" --quiet generate --books "$sb" --users "$su" --seed 42 --out "$gen" >/dev/null
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$build/bench/bench_hybrid" --books "$gen/books.csv" --ratings "$gen/ratings.csv" \
    --users-limit "$sr" --n 100 --iterations 2 | tee "$out/eval-scale.json"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  rm -rf "$gen"
fi
