#!/usr/bin/env bash
# train_scale.sh: `bookrec train` at the issue's scale (100,000 books,
# 1,000,000 readers, ~34.5 M ratings), then the incremental run with 1,000
# new books. Prints per-stage seconds, peak RSS (/usr/bin/time -v), store
# and version sizes, and the load; docs/benchmarks.md "Training pipeline".
# There is no peer: nothing else trains this pipeline end to end.
# bench: manual (about an hour and 20 GB, its own arguments: run it directly)
#
# Usage: bench/train_scale.sh [BOOKREC [OUT]]   (default build/bookrec, /work/scale)
#   OUT/data/      generate --books 100000 --users 1000000 --seed 42
#   OUT/model/     the model directory (kept: the serving benchmark uses it)
#   OUT/logs/      JSON summaries and /usr/bin/time outputs
# Steps skip what exists (data, warmed cache); RESET=1 starts the model over.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bookrec=${1:-$root/build/bookrec}
out=${2:-/work/scale}
py=/usr/bin/python3
. "$root/bench/blas.env"
mkdir -p "$out/logs"
data=$out/data model=$out/model logs=$out/logs
[ "${RESET:-0}" = 1 ] && rm -rf "$model"
mkdir -p "$model"
echo "# $(date -u +%FT%TZ) $(uptime)"

if [ ! -s "$data/ratings.csv" ]; then
  /usr/bin/time -v "$bookrec" --quiet generate --books 100000 --users 1000000 --seed 42 \
    --out "$data" 2>"$logs/generate.time"
fi
# 1,000 new books for the incremental run: the last 1,000 of a 101,000-book
# catalogue of another seed (ids 100000..100999, texts the cache has not seen).
if [ ! -s "$data/books_plus1000.csv" ]; then
  "$bookrec" --quiet generate --books 101000 --users 1 --seed 43 --out "$out/gen101k" >/dev/null
  { cat "$data/books.csv"; tail -n 1000 "$out/gen101k/books.csv"; } >"$data/books_plus1000.csv"
  rm -rf "$out/gen101k"
fi

# The catalogue repeats texts (generated titles and blurbs recur: 23,635
# distinct texts in 100,000 books); train's embed stage embeds each distinct
# text once (br_embed_catalog), so a cold first run needs no warm-up.
run() { # run NAME BOOKS: one train, its summary and resources
  local name=$1 books=$2
  echo "# $name: $(uptime)"
  /usr/bin/time -v "$bookrec" --quiet train --books "$books" --ratings "$data/ratings.csv" \
    --model-dir "$model" --keep 3 --json >"$logs/$name.json" 2>"$logs/$name.time"
  "$py" - "$logs/$name.json" "$logs/$name.time" <<'PY'
import json, re, sys
j = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
print(f"version {j['version']}: {j['books']} books, {j['readers']} readers, {j['ratings']} ratings,"
      f" embedded {j['embedded']}, index +{j['index_added']}"
      f" ({'extended' if j['index_incremental'] else 'built'})")
for s, v in j["stages"].items():
    print(f"  {s:8s} {v['seconds']:9.1f} s  {v['count']}")
print(f"  {'total':8s} {j['seconds']:9.1f} s   wall {wall}, peak RSS {rss / 1048576:.2f} GB")
PY
  echo "# after $name: $(uptime)"
}

run full "$data/books.csv"
du -sh "$model/store" "$model/versions/$(readlink "$model/current" | sed 's|versions/||')" \
  "$model/embeddings.brec"
run plus1000 "$data/books_plus1000.csv"
du -sh "$model/store" "$model/versions/$(readlink "$model/current" | sed 's|versions/||')" \
  "$model/embeddings.brec"
