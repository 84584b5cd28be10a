#!/usr/bin/env bash
# run.sh: the benchmark driver behind `make bench`. Runs every benchmark
# script bench/<name>.sh (every bench/*.sh but this one, in name order) with
# the build directory, shows its output and keeps a copy of its stdout in
# bench/out/<name>.txt (bench/out/ is not committed; the figures that matter
# are copied into docs/benchmarks.md with the command that made them).
#
#   bench/run.sh [BUILD_DIR] [NAME...]   (default: build, every benchmark)
#   bench/run.sh build load              only bench/load.sh
#
# Adding a benchmark: write an executable bench/<name>.sh that takes
# BUILD_DIR as $1, runs its Python peers in the same script, prints the
# ratios on stdout (progress on stderr) and exits non-zero on failure.
# Nothing to register here. One failing benchmark does not stop the others;
# the driver exits 1 at the end if any failed. A script with a line
# `# bench: manual` (other arguments, or hours of run time) is left out of
# the default selection and runs only when named.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-build}
shift || true
# Scripts run from the project root; make BUILD_DIR absolute first.
if [ ! -d "$build" ]; then
  echo "run.sh: build directory '$build' not found (make build)" >&2
  exit 2
fi
build=$(cd "$build" && pwd)
cd "$root"
. "$here/blas.env" # the same OpenBLAS kernels for bookrec and every peer
if [ $# -gt 0 ]; then
  selected=("$@")
else
  selected=()
  for f in "$here"/*.sh; do
    name=$(basename "$f" .sh)
    [ "$name" = run ] && continue
    grep -q '^# bench: manual' "$f" && continue
    selected+=("$name")
  done
fi

mkdir -p "$here/out"
failed=()
for name in "${selected[@]}"; do
  script="$here/$name.sh"
  if [ ! -x "$script" ]; then
    echo "=== run.sh: no executable benchmark bench/$name.sh" >&2
    failed+=("$name")
    continue
  fi
  echo "=== bench/$name.sh $build ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
  start=$(date +%s)
  # stdout (the results) goes to the terminal and bench/out/<name>.txt;
  # progress messages on stderr go to the terminal only.
  if "$script" "$build" | tee "$here/out/$name.txt"; then
    echo "=== $name done in $(($(date +%s) - start)) s; results in bench/out/$name.txt"
  else
    echo "=== $name FAILED" >&2
    failed+=("$name")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "run.sh: failed: ${failed[*]}" >&2
  exit 1
fi
