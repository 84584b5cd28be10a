#!/usr/bin/env bash
# bench/eval.sh: the hybrid and evaluation figures of docs/benchmarks.md and
# docs/evaluation.md on ../shared/data/goodbooks: every engine under the
# protocol (seed 42), the slices, a second seed, and the validation tuning
# of the default hybrid. Embeddings come from the cache (the first run
# embeds the 10,000 books once, minutes). Outputs in bench/out/.
# Usage: bench/eval.sh [BUILD_DIR]
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
echo "== warm the embedding cache"
"$bookrec" eval "${B[@]}" --engines content --k 10 >/dev/null
echo "== all engines, seed 42 (timed)"
/usr/bin/time -f "wall %e s, max RSS %M KB" "$bookrec" --quiet eval "${B[@]}" | tee "$out/eval-seed42.txt"
"$bookrec" --quiet eval "${B[@]}" --json >"$out/eval-seed42.json"
echo "== slices (long tail, newcomers, cold books)"
"$bookrec" --quiet eval "${B[@]}" --slices | tee "$out/eval-slices.txt"
echo "== another split: seed 7"
"$bookrec" --quiet eval "${B[@]}" --seed 7 | tee "$out/eval-seed7.txt"
echo "== tuning on a validation split of the training data"
"$bookrec" --quiet eval "${B[@]}" --tune 2>&1 | tee "$out/eval-tune.txt"
