#!/usr/bin/env bash
# soak.sh: the 30-minute soak of issue 19 (docs/benchmarks.md,
# "Reliability"): `bookrec serve` on the seed universe with the LMDB store
# under 200 reads/s and 200 events/s, retrained with the events every 5
# minutes (each run a reload), printing per minute the reads, errors,
# p50/p99/max latency, events acknowledged and the server's resident heap
# (RssAnon) and mapped store pages (RssFile). Goal: 0
# errors, p99 per minute < 5 ms, heap flat.
#
#   bench/soak.sh [BUILD_DIR [MINUTES]]    (default: build, 30)
# bench: manual (30 minutes: run it directly)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
[ -x "$build/bookrec" ] || { echo "soak.sh: $build/bookrec not found: build first" >&2; exit 1; }
mkdir -p "$root/bench/out/soak"
echo "Soak: ${2:-30} minutes on $(nproc) vCPUs, load at start:$(uptime | sed 's/.*load average://')"
/usr/bin/python3 "$here/chaos.py" "$build/bookrec" "$root/bench/out/soak" soak "${2:-30}"
echo "load at end:$(uptime | sed 's/.*load average://')"
