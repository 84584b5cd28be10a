#!/usr/bin/env bash
# load.sh: the data-load benchmark. Times bookrec's CSV loaders
# (build/bench/bench_load) against pandas.read_csv and Python's csv module
# (bench/peers/load_pandas.py) on the same files, in the same script, and
# prints a table of best/median seconds and the ratio peer / bookrec.
#
#   bench/load.sh [BUILD_DIR]        (default: build; run by bench/run.sh)
#
# Data sets:
#   goodbooks  ../shared/data/goodbooks (10,000 books, 298,176 ratings);
#              skipped with a message when absent
#   scale      `bookrec generate --books 100000 --users 1000000 --rng xoshiro`
#              (~34.5M ratings, ~510 MB), generated once into bench/out/scale
#              and reused while its parameters match
# Plus the peak memory of `bookrec stats` on the scale set (/usr/bin/time -v).
#
# Environment: LOAD_REPEAT (goodbooks runs, default 5), LOAD_SCALE_REPEAT
# (scale runs, default 2), LOAD_SCALE_CSV (scale runs of the pure-Python csv
# peer, default 1; 0 skips it), LOAD_SKIP_SCALE=1, PYTHON (default
# /usr/bin/python3, Debian's, which has pandas), BOOKREC_SHARED (default
# ../shared next to the repository), BOOKREC_REV (the revision printed; default
# git describe).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
py=${PYTHON:-/usr/bin/python3}
shared=${BOOKREC_SHARED:-$root/../shared}
out="$root/bench/out"
repeat=${LOAD_REPEAT:-5}
scale_repeat=${LOAD_SCALE_REPEAT:-2}
scale_csv=${LOAD_SCALE_CSV:-1}

bench_load="$build/bench/bench_load"
bookrec="$build/bookrec"
peer="$here/peers/load_pandas.py"
for f in "$bench_load" "$bookrec"; do
  if [ ! -x "$f" ]; then
    echo "load.sh: $f not found: build first (make build)" >&2
    exit 1
  fi
done
if ! "$py" -c 'import pandas' 2>/dev/null; then
  echo "load.sh: $py has no pandas: scripts/install-deps.sh bench (python3-pandas)" >&2
  exit 1
fi

# No loader uses BLAS; one OpenBLAS thread keeps its idle workers (which spin
# for a while after start-up) out of the process CPU time, on both sides.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

mkdir -p "$out"
jsonl="$out/load.jsonl"
: >"$jsonl"

# run_set NAME BOOKS RATINGS REPEAT CSV_REPEAT: every implementation in its
# own process (so each peak-memory figure is its own), JSON lines tagged NAME.
run_set() {
  local name=$1 books=$2 ratings=$3 n=$4 ncsv=$5
  local tag="s/^{/{\"dataset\":\"$name\",/"
  echo "== $name: $(basename "$books") + $(basename "$ratings"), $n runs" >&2
  "$bench_load" --books "$books" --ratings "$ratings" --repeat "$n" --json | sed "$tag" >>"$jsonl"
  "$py" "$peer" --books "$books" --ratings "$ratings" --repeat "$n" --peers pandas --json |
    sed "$tag" >>"$jsonl"
  if [ "$ncsv" -gt 0 ]; then
    "$py" "$peer" --books "$books" --ratings "$ratings" --repeat "$ncsv" --peers csv --json |
      sed "$tag" >>"$jsonl"
  fi
}

# (a) the real data
gb="$shared/data/goodbooks"
if [ -f "$gb/books.csv" ] && [ -f "$gb/ratings.csv" ]; then
  run_set goodbooks "$gb/books.csv" "$gb/ratings.csv" "$repeat" "$repeat"
else
  echo "load.sh: $gb not found: skipping the goodbooks data set" >&2
fi

# (b) the generated scale universe, made once and reused
scale="$out/scale"
gen_args=(generate --books 100000 --users 1000000 --rng xoshiro --seed 42)
rss_kb=""
if [ "${LOAD_SKIP_SCALE:-0}" != 1 ]; then
  if [ ! -f "$scale/ratings.csv" ] || [ ! -f "$scale/books.csv" ] ||
    [ "$(cat "$scale/PARAMS" 2>/dev/null)" != "${gen_args[*]}" ]; then
    echo "== generating the scale universe into $scale (once)" >&2
    mkdir -p "$scale"
    rm -f "$scale/PARAMS"
    "$bookrec" --quiet "${gen_args[@]}" --out "$scale" >&2
    echo "${gen_args[*]}" >"$scale/PARAMS"
  else
    echo "== reusing $scale ($(cat "$scale/PARAMS"))" >&2
  fi
  run_set scale "$scale/books.csv" "$scale/ratings.csv" "$scale_repeat" "$scale_csv"

  # Peak memory of the CLI loading (and summarising) the 34.5M ratings.
  if [ -x /usr/bin/time ]; then
    echo "== peak memory: /usr/bin/time -v bookrec stats on the scale set" >&2
    /usr/bin/time -v "$bookrec" --quiet stats --books "$scale/books.csv" \
      --ratings "$scale/ratings.csv" >/dev/null 2>"$out/load-time-v.txt"
    rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/load-time-v.txt")
  else
    echo "load.sh: /usr/bin/time missing (Debian package 'time'): no peak-memory figure" >&2
  fi
else
  echo "load.sh: LOAD_SKIP_SCALE=1: skipping the scale data set" >&2
fi

# The table, from the JSON lines: Markdown, so docs/benchmarks.md can quote it.
rev=${BOOKREC_REV:-$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)}
"$py" - "$jsonl" "$rss_kb" "$rev" <<'EOF'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rss, rev = sys.argv[2], sys.argv[3]
summ = {(r["dataset"], r["impl"], r["file"]): r for r in rows if r["kind"] == "summary"}
mem = {(r["dataset"], r["impl"]): r["peak_rss_kb"] for r in rows if r["kind"] == "memory"}
sets = list(dict.fromkeys(r["dataset"] for r in rows))
print(f"Data loading (bench/load.sh), bookrec {rev}, {os.cpu_count()} CPUs, load average "
      f"{os.getloadavg()[0]:.2f} at the end.")
print("Seconds per load, best and median of N runs, wall clock and process CPU time;")
print("ratio = peer / bookrec (> 1: bookrec is faster, < 1: bookrec is SLOWER).")
print()
print("| data | file | rows | impl | N | wall best | wall median | cpu best "
      "| ratio wall | ratio cpu |")
print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
slower = []
for ds in sets:
    for f in ("books", "ratings"):
        b = summ.get((ds, "bookrec", f))
        if not b:
            continue
        for impl in ("bookrec", "pandas", "csv"):
            r = summ.get((ds, impl, f))
            if not r:
                continue
            if impl == "bookrec":
                rw = rc = "1"
            else:
                rw = f"{r['best'] / b['best']:.2f}"
                rc = f"{r['cpu_best'] / b['cpu_best']:.2f}"
                if r["best"] < b["best"] or r["cpu_best"] < b["cpu_best"]:
                    slower.append(f"{ds} {f}: bookrec {b['best']:.3f} s wall / "
                                  f"{b['cpu_best']:.3f} s cpu vs {impl} {r['best']:.3f} / "
                                  f"{r['cpu_best']:.3f}")
            print(f"| {ds} | {f} | {r['rows']:,} | {impl} | {r['repeat']} | {r['best']:.3f} "
                  f"| {r['median']:.3f} | {r['cpu_best']:.3f} | {rw} | {rc} |")
print()
print("Peak resident set size of each process (kB; loads are freed between runs):")
for ds in sets:
    line = ", ".join(f"{impl} {mem[(ds, impl)]:,}" for impl in ("bookrec", "pandas", "csv")
                     if (ds, impl) in mem)
    print(f"- {ds}: {line}")
for ds in sets:
    held = [(f, summ[(ds, "bookrec", f)].get("memory_bytes")) for f in ("books", "ratings")
            if (ds, "bookrec", f) in summ]
    if all(v is not None for _, v in held):
        print(f"- {ds}: bookrec holds " +
              ", ".join(f"{f} {v / 1e6:,.1f} MB" for f, v in held) + " once loaded (br_*_memory)")
if rss:
    print(f"- `bookrec stats` on the scale set (/usr/bin/time -v, Maximum resident set size): "
          f"{int(rss):,} kB")
if slower:
    print()
    print("bookrec is SLOWER than a peer on: " + "; ".join(slower))
EOF
