#!/usr/bin/env bash
# bench/eval_time.sh: issue 18's time goal, `bookrec eval` of every engine
# under all three protocols (random, cold-books, readers) on
# ../shared/data/goodbooks with a warm embedding cache, one protocol after
# the other; prints each protocol's wall/user/sys seconds, the total, and
# the load average before and after (docs/benchmarks.md, "Content and
# protocols"). No peer: the goal is bookrec's own wall time.
# Usage: bench/eval_time.sh [BUILD_DIR]   SEED=42
set -eu
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
data=${GOODBOOKS:-$root/../shared/data/goodbooks}
. "$(dirname "${BASH_SOURCE[0]}")/blas.env"
B=(--books "$data/books.csv" --ratings "$data/ratings.csv")
echo "== warm the embedding cache"
"$build/bookrec" --quiet eval "${B[@]}" --engines content --k 10 >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
total=0
for p in random cold-books readers; do
  /usr/bin/time -f "%e %U %S" -o "$out/t" "$build/bookrec" --quiet eval "${B[@]}" --engines all \
    --protocol "$p" --seed "${SEED:-42}" --json >/dev/null
  read -r wall user sys <"$out/t"
  printf '%-10s wall %6.1f s  user %6.1f s  sys %5.1f s\n' "$p" "$wall" "$user" "$sys"
  total=$(awk -v a="$total" -v b="$wall" 'BEGIN { printf "%.1f", a + b }')
done
echo "total wall $total s (goal: under 60 s); load after: $(cut -d' ' -f1-3 /proc/loadavg)"
