#!/usr/bin/env bash
# cluster.sh: bookrec serve on a Redis Cluster (issue 20). In one run:
#   - the peers: redis-benchmark -t get against one redis-server and against
#     the cluster (--cluster), at 8 and 32 connections;
#   - 1, 2 and 3 `bookrec serve` replicas, all against the cluster, then all
#     against the one Redis: saturation throughput (one wrk per replica,
#     32 connections shared out, run together; rates summed) and p99 at 8
#     connections (one replica);
#   - the model's bytes per reader on the cluster (used_memory_dataset
#     summed over the primaries, before and after the publish), for sizing;
#   - primary kills under load (bench/cluster_failover.py): the answers'
#     statuses, the promotion time, the time to complete answers after it,
#     and every acknowledged event looked up in the streams afterwards.
# Everything runs on this machine: 6 cluster nodes, one Redis, the replicas
# and the load generators share its vCPUs, so more replicas cannot add
# throughput here; the per-replica figures are what a replica on its own
# machine would start from.
#
#   bench/cluster.sh [BUILD_DIR]       (run by bench/run.sh)
#
# Environment: CLUSTER_USERS (readers of the generated universe, 20000),
# CLUSTER_DURATION (seconds per wrk run, 10), CLUSTER_KILLS (10),
# CLUSTER_THREADS (server threads per replica, 8).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
bookrec="$build/bookrec"
users=${CLUSTER_USERS:-20000}
dur=${CLUSTER_DURATION:-10}
kills=${CLUSTER_KILLS:-10}
threads=${CLUSTER_THREADS:-8}
py=/usr/bin/python3
for tool in wrk redis-server redis-benchmark redis-cli; do
  command -v $tool >/dev/null || { echo "cluster.sh: $tool missing (scripts/install-deps.sh bench)" >&2; exit 1; }
done
[ -x "$bookrec" ] || { echo "cluster.sh: $bookrec not found: build first" >&2; exit 1; }
work="$root/bench/out/cluster"
rm -rf "$work"
mkdir -p "$work"

spids=()
rpid=
cleanup() {
  for p in "${spids[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "$rpid" ] && kill "$rpid" 2>/dev/null
  "$root/scripts/redis-cluster.sh" stop "$work/cluster" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

cluster_uri=$("$root/scripts/redis-cluster.sh" start "$work/cluster" 3 1)
cport=${cluster_uri#redis-cluster://127.0.0.1:}
cport=${cport%%,*}
rport=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/redis"
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/redis" \
  --logfile "$work/redis/redis.log" --daemonize no &
rpid=$!
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis_uri="redis://127.0.0.1:$rport"

primaries() { # the cluster's primaries' ports
  redis-cli -p "$cport" cluster nodes | awk '/master/ && !/fail/ {split($2, a, "[:@]"); print a[2]}'
}
dataset_bytes() { # used_memory_dataset summed over the primaries
  local t=0 p b
  for p in $(primaries); do
    b=$(redis-cli -p "$p" info memory | tr -d '\r' | awk -F: '/^used_memory_dataset:/ {print $2}')
    t=$((t + b))
  done
  echo "$t"
}

echo "Redis Cluster: 3 primaries + 3 replicas on loopback ($cluster_uri); one redis-server ($redis_uri)"
echo "machine: $(nproc) vCPUs shared by the 7 Redis processes, the replicas and the load generators; load at start:$(uptime | sed 's/.*load average://')"

# --- the model: the seed universe's books, $users readers (nothing embedded:
# the cache comes from the reference vectors)
"$bookrec" --quiet generate --books 1000 --users "$users" --seed 42 --rng numpy --out "$work/data" >/dev/null
T=(--books "$work/data/books.csv" --ratings "$work/data/ratings.csv" --template description
  --clusters 4 --iterations 3 --factors 32 --top-n 100)
for m in mc mr; do
  mkdir -p "$work/$m"
  "$py" "$root/tests/cli/seed_cache.py" "$root/tests/golden/use-lite/seed_descriptions.json" \
    "$work/$m/embeddings.brec"
done
d0=$(dataset_bytes)
"$bookrec" --quiet train "${T[@]}" --model-dir "$work/mc" --store "$cluster_uri" >/dev/null
d1=$(dataset_bytes)
"$bookrec" --quiet train "${T[@]}" --model-dir "$work/mr" --store "$redis_uri" >/dev/null
readers=$(wc -l <"$work/mc/current/user_ids.txt")
echo "model: $readers readers x 1000 books, top-100 lists; published to both stores"
awk -v a="$d0" -v b="$d1" -v n="$readers" 'BEGIN {printf "sizing: the publish added %.1f MB to the primaries'"'"' datasets: %.0f bytes per reader (top-100 list, seen set, latest interactions; replicas hold as much again)\n", (b - a) / 1e6, (b - a) / n}'
head -n 20000 "$work/mc/current/user_ids.txt" >"$work/ids.txt"
echo

echo "== peers: redis-benchmark -t get -n 200000"
rb() { # rb LABEL ARGS...: one line
  local out
  out=$(redis-benchmark "${@:2}" -t get -n 200000 2>/dev/null | tr '\r' '\n')
  printf '%-28s %9s GET/s  %s\n' "$1" "$(echo "$out" | awk '/throughput summary/ {print $3; exit}')" \
    "$(echo "$out" | awk '/latency summary/ {getline; getline; print "p50 " $3 " p99 " $5 " ms"; exit}')"
}
rb "one redis-server -c8" -p "$rport" -c 8
rb "one redis-server -c32" -p "$rport" -c 32
rb "cluster --cluster -c8" --cluster -p "$cport" -c 8
rb "cluster --cluster -c32" --cluster -p "$cport" -c 32
echo

start_replicas() { # start_replicas N MODEL URI: sets ports[]
  ports=()
  spids=()
  for i in $(seq "$1"); do
    "$bookrec" serve --model-dir "$2" --store "$3" --port 0 --threads "$threads" \
      >"$work/serve$i.out" 2>"$work/serve$i.err" &
    spids+=($!)
  done
  for i in $(seq "$1"); do
    for _ in $(seq 300); do grep -q 'http://' "$work/serve$i.out" && break; sleep 0.1; done
    ports+=("$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$work/serve$i.out")")
  done
}
stop_replicas() {
  for p in "${spids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  spids=()
}

wrk_run() { # wrk_run C PORT...: all together, C connections shared out; one summary line
  local c=$1 n i per
  shift
  n=$#
  per=$((c / n))
  i=0
  for p in "$@"; do
    i=$((i + 1))
    SERVE_IDS_FILE="$work/ids.txt" wrk -t1 -c"$per" -d"${dur}s" --latency -s "$here/serve_ids.lua" \
      "http://127.0.0.1:$p" >"$work/wrk$i.out" 2>&1 &
  done
  wait $(jobs -p | tail -n "$n")
  cat "$work"/wrk[1-$n].out | awk -v c="$c" -v n="$n" '
    /^Requests\/sec/ {rps += $2}
    /^PCT/ {if ($3 > p99) p99 = $3; if ($2 > p50) p50 = $2}
    /^NON2XX/ {bad += $2}
    /^ERRORS/ {err += $2}
    END {printf "%d replica%s, %2d connections: %8.0f req/s  p50 %.3f ms  p99 %.3f ms (worst replica)  non-2xx %d  socket errors %d\n",
      n, (n > 1 ? "s" : " "), c, rps, p50, p99, bad, err}'
}

for store in cluster redis; do
  model=$work/mc uri=$cluster_uri
  [ "$store" = redis ] && model=$work/mr uri=$redis_uri
  echo "== bookrec serve --threads $threads against the $store store; wrk ${dur}s; load:$(uptime | sed 's/.*load average://')"
  for n in 1 2 3; do
    start_replicas "$n" "$model" "$uri"
    SERVE_IDS_FILE="$work/ids.txt" wrk -t2 -c32 -d3s -s "$here/serve_ids.lua" "http://127.0.0.1:${ports[0]}" >/dev/null 2>&1
    [ "$n" = 1 ] && printf '%-7s ' "$store" && wrk_run 8 "${ports[@]}"
    printf '%-7s ' "$store" && wrk_run 32 "${ports[@]}"
    stop_replicas
  done
  echo
done

echo "== $kills primary kills under load: 3 replicas, 4 reading threads + 1 posting events (CLUSTER_NODE_TIMEOUT 1 s)"
start_replicas 3 "$work/mc" "$cluster_uri"
"$py" "$here/cluster_failover.py" "$work/cluster" "$kills" "${ports[@]}"
stop_replicas
