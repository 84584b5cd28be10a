#!/usr/bin/env bash
# redis-cluster.sh: a Redis Cluster on this machine's loopback, for tests,
# benchmarks and trying bookrec on a cluster (docs/deploy.md).
#   redis-cluster.sh start DIR [PRIMARIES [REPLICAS]]   (default 3 and 1)
#       starts PRIMARIES * (1 + REPLICAS) redis-server nodes on free ports
#       (data, logs and nodes-PORT.conf in DIR), creates the cluster with
#       redis-cli --cluster create, waits until every slot is served, and
#       prints the store URI: redis-cluster://127.0.0.1:P1,127.0.0.1:P2
#   redis-cluster.sh stop DIR       stops the nodes DIR's cluster started
#   redis-cluster.sh pids DIR       "PORT PID" per node, one per line
#   redis-cluster.sh restart DIR PORT   starts a stopped node again (it
#                                       rejoins; a failed-over primary
#                                       comes back as a replica)
# The nodes persist nothing (no RDB, no AOF), use a node timeout of 1 s
# (CLUSTER_NODE_TIMEOUT_MS), serve the slots they have while another
# node's are unavailable (cluster-require-full-coverage no, as in
# docs/deploy.md), and sync a new replica at once (Redis waits 5 s by
# default, repl-diskless-sync-delay, to batch replicas).
set -euo pipefail
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,17p' "$0" >&2; exit 2; }
timeout_ms=${CLUSTER_NODE_TIMEOUT_MS:-1000}

free_ports() { # free_ports N: N distinct free loopback ports
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

start_node() { # start_node PORT BUSPORT
  local port=$1 bus=$2
  redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file "$dir/nodes-$port.conf" --cluster-port "$bus" \
    --cluster-node-timeout "$timeout_ms" --cluster-require-full-coverage no \
    --cluster-replica-validity-factor 0 --repl-diskless-sync-delay 0 --save '' --appendonly no \
    --dir "$dir" \
    --logfile "$dir/redis-$port.log" --daemonize yes --pidfile "$dir/redis-$port.pid"
  for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "redis-cluster.sh: node $port did not start ($dir/redis-$port.log)" >&2
  return 1
}

case $cmd in
start)
  primaries=${3:-3}
  replicas=${4:-1}
  n=$((primaries * (1 + replicas)))
  mkdir -p "$dir"
  read -r -a ports <<<"$(free_ports $((2 * n)))"
  : >"$dir/ports"
  addrs=()
  for i in $(seq 0 $((n - 1))); do
    p=${ports[$i]} b=${ports[$((n + i))]}
    echo "$p $b" >>"$dir/ports"
    start_node "$p" "$b"
    addrs+=("127.0.0.1:$p")
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$replicas" --cluster-yes \
    >"$dir/create.log" 2>&1 || { cat "$dir/create.log" >&2; exit 1; }
  # every slot served, and every replica's link to its primary up (else a
  # WAIT finds no replica yet)
  for _ in $(seq 200); do
    ok=1
    for a in "${addrs[@]}"; do
      redis-cli -p "${a#*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
      redis-cli -p "${a#*:}" cluster info 2>/dev/null | grep -q 'cluster_slots_ok:16384' || ok=0
      redis-cli -p "${a#*:}" info replication 2>/dev/null | grep -q 'master_link_status:down' && ok=0
    done
    [ "$ok" = 1 ] && break
    sleep 0.1
  done
  [ "$ok" = 1 ] || { echo "redis-cluster.sh: the cluster did not become ok" >&2; exit 1; }
  echo "redis-cluster://${addrs[0]},${addrs[1]}"
  ;;
stop)
  [ -f "$dir/ports" ] || exit 0
  while read -r p _; do
    if [ -f "$dir/redis-$p.pid" ]; then
      pid=$(cat "$dir/redis-$p.pid")
      kill -CONT "$pid" 2>/dev/null || true
      kill "$pid" 2>/dev/null || true
    fi
  done <"$dir/ports"
  ;;
pids)
  while read -r p _; do
    [ -f "$dir/redis-$p.pid" ] && echo "$p $(cat "$dir/redis-$p.pid")"
  done <"$dir/ports"
  ;;
restart)
  port=${3:?restart DIR PORT}
  bus=$(awk -v p="$port" '$1 == p {print $2}' "$dir/ports")
  start_node "$port" "$bus"
  ;;
*)
  sed -n '2,17p' "$0" >&2
  exit 2
  ;;
esac
