#!/usr/bin/env bash
# bench/encoder.sh: the use-lite encoder against the TF.js reference, in one
# run on one machine (docs/benchmarks.md, "Encoder (USE-lite)", quotes it).
#
# Usage: bench/encoder.sh [BUILD_DIR]   (or bench/run.sh build encoder)
#   REF_GOODBOOKS=0   skip the reference on the 3,713 goodbooks descriptions
#                     (it takes about 2.5 minutes)
# Needs: the model (`make model`), node + npm (for the reference, installed
# once under BUILD_DIR/use-lite-reference), ../shared (the data).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build=$root/$build ;; esac
shared=$(cd "$root/../shared" 2>/dev/null && pwd) || { echo "encoder.sh: ../shared is absent" >&2; exit 77; }
seed_csv=$shared/data/seed-universe/books.csv
gb_csv=$shared/data/goodbooks/books.csv
work=$build/use-lite-reference
py=/usr/bin/python3

# OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to generic
# SSE3 kernels; choose the AVX-512 (or AVX2) ones explicitly, and say so.
. "$(dirname "${BASH_SOURCE[0]}")/blas.env"
echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}"

# The reference, installed once.
mkdir -p "$work"
cp "$shared/reference/use-lite/package.json" "$root/bench/encoder_reference.js" "$work/"
if [ ! -d "$work/node_modules/@energetic-ai/embeddings" ]; then
  (cd "$work" && npm install --no-audit --no-fund --silent >&2)
fi

# The texts as JSON arrays (descriptions only, as the reference embeds them).
$py - "$seed_csv" "$gb_csv" "$work" <<'PY'
import csv, json, sys
seed, gb, out = sys.argv[1:4]
csv.field_size_limit(1 << 24)
json.dump([r["description"] for r in csv.DictReader(open(seed, encoding="utf-8"))],
          open(out + "/seed.json", "w"))
json.dump([r["description"] for r in csv.DictReader(open(gb, encoding="utf-8")) if r["description"]],
          open(out + "/goodbooks.json", "w"))
PY

echo "== TF.js reference (node, WASM backend, 1 thread), batches of 32"
ref_seed=$(cd "$work" && node encoder_reference.js seed.json)
echo "seed descriptions:      $ref_seed"
ref_gb=""
if [ "${REF_GOODBOOKS:-1}" != 0 ]; then
  ref_gb=$(cd "$work" && node encoder_reference.js goodbooks.json)
  echo "goodbooks descriptions: $ref_gb"
fi

echo "== bookrec (bench_encoder)"
out=$("$build/bench/bench_encoder" --seed "$seed_csv" --goodbooks "$gb_csv" --threads 1,2 --repeat 3)
echo "$out"

echo "== ratios (bookrec / reference, sentences/s)"
$py - "$ref_seed" "$ref_gb" <<PY
import json, re, sys
out = """$out"""
ref = [json.loads(a)["sentences_per_s"] if a else None for a in sys.argv[1:3]]
blocks = re.split(r"\n(?=seed descriptions|goodbooks descriptions)", out)
for name, r in (("seed descriptions", ref[0]), ("goodbooks descriptions", ref[1])):
    b = next((x for x in blocks if x.startswith(name)), "")
    for t, v in re.findall(r"threads (\d+):\s+([\d.]+) sentences/s", b):
        if r: print(f"{name:24s} threads {t}: {float(v):7.1f} vs {r:5.1f} sentences/s = {float(v)/r:4.1f}x")
PY

echo "== peak memory: embedding the 10,000 goodbooks books (full template)"
"$build/bench/bench_encoder" --peak-mem "$gb_csv"
