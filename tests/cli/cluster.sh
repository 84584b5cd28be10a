#!/usr/bin/env bash
# cluster.sh: bookrec on a Redis Cluster end to end (docs/deploy.md): a
# 3-primary + 3-replica cluster on loopback (scripts/redis-cluster.sh);
# `train --store redis-cluster://...`; three `bookrec serve` replicas on it
# answer a reader identically; an event posted to one is in the reader's
# history on another; a book posted to one is served by the others within
# their poll period; `train --events` from the cluster's partitioned log
# publishes a new version that every replica serves within a bounded time;
# `models rollback` and `store restore` (after every primary was flushed)
# on the cluster; a primary killed under reads: no answer other than 200,
# complete answers again once its replica took over. Skips (77) without redis-server,
# redis-cli, python3 or the use-lite model.
# Usage: cluster.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
[ -x "$py" ] || { echo "SKIP: no python3"; exit 77; }
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
  { echo "SKIP: redis-server or redis-cli not installed"; exit 77; }
model=${XDG_CACHE_HOME:-$HOME/.cache}/bookrec/models/use-lite.brm
[ -f "$model" ] || { echo "SKIP: no use-lite model ($model; make model)"; exit 77; }
. "$(dirname "$0")/lib.sh"

cl=$tmp/cluster
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  "$root/scripts/redis-cluster.sh" stop "$cl" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
uri=$("$root/scripts/redis-cluster.sh" start "$cl" 3 1) || { echo "FAIL: start the cluster"; exit 1; }

m=$tmp/m
seed_model "$m" --store "$uri" --factors 16 --top-n 20 || { finish cluster; exit 1; }
expect 0 "models list" -- "$bookrec" models list --model-dir "$m"
contains "$tmp/out" "v000001" "the version is listed"
expect 0 "recommend from the cluster" -- "$bookrec" recommend --model-dir "$m" --store "$uri" \
  --users 5 --n 5 --json
contains "$tmp/out" '"version":"v000001"' "recs read back from the cluster"

# --- three replicas
for i in 1 2 3; do
  "$bookrec" serve --model-dir "$m" --store "$uri" --port 0 --poll-ms 200 \
    >"$tmp/serve$i.out" 2>"$tmp/serve$i.err" &
  pids+=($!)
done
ports=()
for i in 1 2 3; do
  for _ in $(seq 300); do grep -q 'http://' "$tmp/serve$i.out" && break; sleep 0.1; done
  ports+=("$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve$i.out")")
done
check "three replicas started" [ -n "${ports[0]}" ] && [ -n "${ports[1]}" ] && [ -n "${ports[2]}" ]

http() { # http METHOD PORT PATH [BODY]: prints "STATUS BODY"
  "$py" - "$@" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[2]), timeout=30)
body = sys.argv[4] if len(sys.argv) > 4 else None
c.request(sys.argv[1], sys.argv[3], body=body, headers={"Content-Type": "application/json"})
r = c.getresponse()
print(r.status, r.read().decode())
PY
}

for i in 0 1 2; do http GET "${ports[$i]}" "/api/recommendations/user/5?n=10" >"$tmp/a$i"; done
contains "$tmp/a0" '200 {"user_id":"5","model_version":"v000001"' "replica 1 answers"
check "replicas 1 and 2 answer identically" cmp -s "$tmp/a0" "$tmp/a1"
check "replicas 1 and 3 answer identically" cmp -s "$tmp/a0" "$tmp/a2"
http GET "${ports[0]}" /readyz >"$tmp/ready"
contains "$tmp/ready" '"store":"redis-cluster"' "readyz names the cluster"

# --- an event on one replica, seen by another
http POST "${ports[0]}" /api/events '{"user_id": "5", "book_id": "17", "type": "rating", "value": 5, "timestamp": 1795000000}' >"$tmp/ev"
contains "$tmp/ev" '200 {"accepted":1' "event accepted"
http GET "${ports[1]}" /api/users/5 >"$tmp/u5"
contains "$tmp/u5" '"book_id":"17"' "the event is in the reader's history on another replica"

# --- a posted book reaches the others without a restart
http POST "${ports[1]}" /api/books '{"book_id": "cluster-new-1", "title": "The Tide Keeper", "authors": "A. Writer", "genre": "Mystery", "description": "A keeper finds a message in a bottle."}' >"$tmp/pb"
contains "$tmp/pb" '201 {"book_id":"cluster-new-1"' "book posted to replica 2"
contains "$tmp/pb" '"stored":true' "kept in the cluster"
got=0
for _ in $(seq 50); do
  http GET "${ports[2]}" /api/books/cluster-new-1 >"$tmp/pb3"
  grep -q '^200 ' "$tmp/pb3" && { got=1; break; }
  sleep 0.1
done
check "replica 3 serves the posted book within 5 s" [ "$got" = 1 ]

# --- a new version from the partitioned event log (the posted event and
# one `ingest` appends)
printf 'user_id,book_id,type,value,timestamp\n6,23,rating,4,1795000001\n' >"$tmp/ev.csv"
expect 0 "ingest into the cluster's log" -- "$bookrec" --quiet ingest --events "$tmp/ev.csv" \
  --store "$uri"
expect 0 "train --events from the cluster" -- "$bookrec" --quiet train --books "$tmp/seed/books.csv" \
  --ratings "$tmp/seed/ratings.csv" --model-dir "$m" --template description --clusters 4 \
  --iterations 3 --factors 16 --top-n 20 --store "$uri" --events "$uri" --json
contains "$tmp/out" '"events_new":2' "the posted and the ingested ratings folded in"
t0=$(date +%s%N)
for i in 0 1 2; do
  for _ in $(seq 100); do
    http GET "${ports[$i]}" /readyz >"$tmp/r$i"
    grep -q v000002 "$tmp/r$i" && break
    sleep 0.05
  done
  contains "$tmp/r$i" '"model_version":"v000002"' "replica $((i + 1)) serves the new version"
done
echo "cluster.sh: every replica served v000002 within $((($(date +%s%N) - t0) / 1000000)) ms"
http GET "${ports[2]}" "/api/recommendations/user/5?n=20" >"$tmp/after"
check "the rated book is not recommended" [ -z "$(grep -F '"book_id":"17"' "$tmp/after")" ]

# --- models rollback and store restore on the cluster
expect 0 "models rollback to v000001" -- "$bookrec" --quiet models rollback v000001 --model-dir "$m" \
  --store "$uri"
for i in 0 1 2; do
  for _ in $(seq 100); do
    http GET "${ports[$i]}" /readyz >"$tmp/rb$i"
    grep -q '"model_version":"v000001"' "$tmp/rb$i" && break
    sleep 0.05
  done
  contains "$tmp/rb$i" '"model_version":"v000001"' "replica $((i + 1)) follows the rollback"
done
http GET "${ports[0]}" "/api/recommendations/user/5?n=20" >"$tmp/rbr"
check "after the rollback the rated book is still not recommended" [ -z "$(grep -F '"book_id":"17"' "$tmp/rbr")" ]
for p in $("$root/scripts/redis-cluster.sh" pids "$cl" | awk '{print $1}'); do
  redis-cli -p "$p" flushall >/dev/null 2>&1 # replicas refuse: their primaries' flush reaches them
done
expect 0 "store restore into the emptied cluster" -- "$bookrec" --quiet store restore --model-dir "$m" \
  --store "$uri"
http GET "${ports[1]}" "/api/recommendations/user/5?n=20" >"$tmp/rs"
contains "$tmp/rs" '"model_version":"v000001"' "served again after the restore"
check "restored: not degraded" [ -z "$(grep -F '"degraded"' "$tmp/rs")" ]
check "restored: the rated book is not recommended" [ -z "$(grep -F '"book_id":"17"' "$tmp/rs")" ]

# --- a primary killed under reads
victim=$(redis-cli -p "${uri##*,127.0.0.1:}" cluster nodes | awk '/master/ && !/fail/ {print $2}' | head -1)
vport=${victim%@*}
vport=${vport##*:}
"$py" - "${ports[0]}" "$vport" "$cl" <<'PY' >"$tmp/kill.out"
import http.client, json, os, signal, sys, time
port, vport, cl = int(sys.argv[1]), sys.argv[2], sys.argv[3]
pid = int(open(f"{cl}/redis-{vport}.pid").read())
statuses, degraded, t_kill, t_whole = {}, 0, None, None
start = time.time()
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
while time.time() - start < 12:
    if t_kill is None and time.time() - start > 1:
        os.kill(pid, signal.SIGKILL)
        t_kill = time.time()
    whole = True
    for u in range(1, 41):
        c.request("GET", f"/api/recommendations/user/{u}?n=5")
        r = c.getresponse()
        body = r.read().decode()
        statuses[r.status] = statuses.get(r.status, 0) + 1
        if '"degraded"' in body:
            degraded += 1
            whole = False
    if t_kill and whole and t_whole is None and time.time() - t_kill > 0.2:
        t_whole = time.time()
        break
print("statuses", json.dumps(statuses), "degraded", degraded,
      "whole_after", round(t_whole - t_kill, 2) if t_whole else "never")
PY
cat "$tmp/kill.out"
contains "$tmp/kill.out" 'statuses {"200": ' "only 200s while a primary is killed"
check "no status but 200" grep -q 'statuses {"200": [0-9]*} ' "$tmp/kill.out"
check "complete answers again after the failover" [ -z "$(grep -F 'whole_after never' "$tmp/kill.out")" ]

for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
pids=()
finish cluster
