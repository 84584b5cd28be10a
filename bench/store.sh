#!/usr/bin/env bash
# store.sh: the serving-store benchmark (issue 7). Publishes a model of
# STORE_USERS readers x STORE_RECS recs into LMDB and into Redis
# (build/bench/bench_store), then measures get_recs point reads per second
# and their latency at 1 and 8 threads; the peer is redis-benchmark -t get
# against the same redis-server in the same run, at the same connection
# counts (1 and 8), GETs of a value the size of one recs list.
#
#   bench/store.sh [BUILD_DIR]      (run by bench/run.sh)
#
# Environment: STORE_USERS (default 1000000), STORE_RECS (100), STORE_READS
# (200000). The redis-server is started here on a free loopback port,
# persists nothing, and is stopped on exit (also on failure).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
bench="$build/bench/bench_store"
users=${STORE_USERS:-1000000}
recs=${STORE_RECS:-100}
reads=${STORE_READS:-200000}
for tool in redis-server redis-benchmark; do
  command -v $tool >/dev/null || { echo "store.sh: $tool missing (scripts/install-deps.sh test)" >&2; exit 1; }
done
[ -x "$bench" ] || { echo "store.sh: $bench not found: build first" >&2; exit 1; }

work="$root/bench/out/store"
rm -rf "$work"
mkdir -p "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  --logfile "$work/redis.log" --daemonize no &
rpid=$!
trap 'kill $rpid 2>/dev/null; wait $rpid 2>/dev/null; rm -rf "$work/lmdb"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "Serving store: $users readers x $recs recs; $reads get_recs reads per run"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo)"
echo
echo "== LMDB (lmdb:bench/out/store/lmdb)"
"$bench" --uri "lmdb:$work/lmdb" --users "$users" --recs "$recs" --reads "$reads" --threads 1
"$bench" --uri "lmdb:$work/lmdb" --users "$users" --no-publish --reads "$reads" --threads 8
echo "store size: $(du -sh "$work/lmdb" | cut -f1) (data.mdb; two slots, one in use)"
echo
echo "== Redis (redis://127.0.0.1:$port)"
"$bench" --uri "redis://127.0.0.1:$port" --users "$users" --recs "$recs" --reads "$reads" --threads 1
"$bench" --uri "redis://127.0.0.1:$port?pool=8" --users "$users" --no-publish --reads "$reads" --threads 8
echo "redis used_memory: $(redis-cli -p "$port" info memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r')"
# A recs value is 4 + recs x (5 + ~5) bytes.
size=$((4 + recs * 10))
echo
echo "== peer: redis-benchmark -t set,get, value $size bytes, same server"
# SET first so that every GET returns a value of a recs list's size.
for c in 1 8; do
  printf 'redis-benchmark -c %s: ' "$c"
  redis-benchmark -p "$port" -t set,get -n "$reads" -c "$c" -d "$size" -q 2>/dev/null |
    tr '\r' '\n' | grep -E '^GET' | tail -1
done
