#!/usr/bin/env bash
# chaos.sh: the reliability probes of issue 19 as one rerunnable script
# (docs/benchmarks.md, "Reliability"). Runs bench/chaos.py's scenarios on
# the seed universe in bench/out/chaos/ and prints one line of figures
# each: SIGKILLs of `serve` during event POSTs (LMDB and Redis), SIGKILLs of
# `train` under reads, a full disk (a 20 MB tmpfs: needs root, else
# skipped), redis-server stopped (SIGSTOP) and restarted empty, and slow
# clients (bench/slowclients.py). There is no peer: these are bookrec's own
# failure modes; the goals are in the issue and the docs' table.
#
#   bench/chaos.sh [BUILD_DIR]     (run by bench/run.sh)
#
# Environment: CHAOS_KILLS (serve kills per store, default 20),
# CHAOS_TRAIN_KILLS (default 30), CHAOS_ONLY (a space-separated subset of:
# serve-kill-lmdb serve-kill-redis train-kill full-disk redis-stop
# redis-empty slow-clients).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
bookrec="$build/bookrec"
[ -x "$bookrec" ] || { echo "chaos.sh: $bookrec not found: build first" >&2; exit 1; }
for tool in redis-server redis-cli; do
  command -v $tool >/dev/null || { echo "chaos.sh: $tool missing (scripts/install-deps.sh bench)" >&2; exit 1; }
done
py=/usr/bin/python3
work="$root/bench/out/chaos"
mkdir -p "$work"
only=${CHAOS_ONLY:-serve-kill-lmdb serve-kill-redis train-kill full-disk redis-stop redis-empty slow-clients}
echo "Reliability probes on the seed universe (1,000 books, 100 readers); machine: $(nproc) vCPUs, load at start:$(uptime | sed 's/.*load average://')"
failed=0
for s in $only; do
  echo "chaos.sh: $s ($(date -u +%H:%M:%S))" >&2
  case $s in
    serve-kill-lmdb) args=(serve-kill lmdb --count "${CHAOS_KILLS:-20}") ;;
    serve-kill-redis) args=(serve-kill redis --count "${CHAOS_KILLS:-20}") ;;
    train-kill) args=(train-kill --count "${CHAOS_TRAIN_KILLS:-30}") ;;
    *) args=("$s") ;;
  esac
  $py "$here/chaos.py" "$bookrec" "$work" "${args[@]}" || failed=1
done
echo "load at end:$(uptime | sed 's/.*load average://')"
exit $failed
