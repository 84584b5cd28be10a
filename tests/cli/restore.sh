#!/usr/bin/env bash
# restore.sh: a store that lost its data, found and put back (issue 19):
# a running `bookrec serve` on the seed universe's LMDB store, events posted,
# then the store's data files deleted under it: /readyz says not ready (503,
# the reason), /metrics bookrec_store_ready 0, the log says so once; `bookrec
# store restore` puts back the lists and, what `models rollback` forgot
# before, the seen sets and histories (from the version's training ratings
# and the store's event log, which survived), and the server follows the new
# files by itself: ready, and no reader's top 20 holds a book they rated or
# posted an event for. A second restore adds nothing (histories unchanged).
# Then the same loss put back by `models rollback`.
# Usage: restore.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
[ -x "$py" ] || { echo "SKIP: no python3"; exit 77; }
. "$(dirname "$0")/lib.sh"

expect 2 "no subcommand" -- "$bookrec" store
expect 2 "no --model-dir" -- "$bookrec" store restore
expect 2 "unknown subcommand" -- "$bookrec" store wipe --model-dir "$tmp"
expect 1 "no model directory" -- "$bookrec" store restore --model-dir "$tmp/none"
contains "$tmp/err" "no such model directory" "says why"

model=${XDG_CACHE_HOME:-$HOME/.cache}/bookrec/models/use-lite.brm
if [ ! -f "$model" ]; then
  echo "restore: the checks need the use-lite model (make model): skipped"
  finish restore
  exit
fi

m=$tmp/m
seed_model "$m" --factors 16 --top-n 40

"$bookrec" serve --model-dir "$m" --port 0 --poll-ms 50 >"$tmp/serve.out" 2>"$tmp/serve.err" &
spid=$!
trap 'kill "$spid" 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 300); do grep -q 'http://' "$tmp/serve.out" && break; sleep 0.1; done
port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve.out")

# http PORT CMD [ARGS]: the client of this test.
#   post-events N: readers 0..N-1 rate their top 3 and click their 4th
#     (appended to posted.csv)
#   seen-in-top K: "SEEN TOTAL" over every reader's top K: books they rated
#     in ratings.csv or posted an event for
#   get PATH: "STATUS BODY"
http() {
  "$py" - "$tmp" "$tmp/seed/ratings.csv" "$@" <<'PY'
import csv, http.client, json, sys
tmp, ratings, port, cmd = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def req(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read().decode()
def top(u, k):
    st, body = req("GET", "/api/recommendations/user/%s?n=%d" % (u, k))
    assert st == 200, (st, body)
    return [x["book_id"] for x in json.loads(body)["recommendations"]]
if cmd == "post-events":
    with open(tmp + "/posted.csv", "a") as out:
        for u in range(int(sys.argv[5])):
            books = top(u, 4)
            evs = [{"user_id": str(u), "book_id": b, "type": "rating", "value": 5,
                    "timestamp": 1795000000 + i} for i, b in enumerate(books[:3])]
            evs.append({"user_id": str(u), "book_id": books[3], "type": "click",
                        "timestamp": 1795000100})
            st, body = req("POST", "/api/events", json.dumps(evs))
            assert st == 200, (st, body)
            for e in evs:
                out.write("%s,%s\n" % (e["user_id"], e["book_id"]))
elif cmd == "seen-in-top":
    k = int(sys.argv[5])
    had = {}
    for row in csv.DictReader(open(ratings)):
        had.setdefault(row["user_id"], set()).add(row["book_id"])
    for line in open(tmp + "/posted.csv"):
        u, b = line.strip().split(",")
        had.setdefault(u, set()).add(b)
    seen = total = 0
    for u, books in had.items():
        recs = top(u, k)
        total += len(recs)
        seen += sum(b in books for b in recs)
    print(seen, total)
elif cmd == "get":
    st, body = req("GET", sys.argv[5])
    print(st, body)
PY
}

# wait_for PORT PATH TEXT: up to 10 s (the watcher checks every 50 ms)
wait_for() {
  for _ in $(seq 200); do
    http "$1" get "$2" >"$tmp/w"
    grep -qF -- "$3" "$tmp/w" && return 0
    sleep 0.05
  done
  echo "  (last answer: $(head -c 300 "$tmp/w"))"
  return 1
}

: >"$tmp/posted.csv"
check "events posted" http "$port" post-events 10
http "$port" seen-in-top 20 >"$tmp/before"
check "served: no rated or posted book in a top 20" grep -q '^0 2000$' "$tmp/before"
http "$port" get /api/users/1 >"$tmp/history0"
contains "$tmp/history0" '"type":"click"' "reader 1's history holds the posted click"

# --- the store's data deleted under the running server (its event log kept)
rm -f "$m/store/data.mdb" "$m/store/lock.mdb"
check "deleted: /readyz not ready" wait_for "$port" /readyz '503 {"error":{"code":"unavailable","message":"the store serves no model version'
http "$port" get /metrics >"$tmp/metrics"
contains "$tmp/metrics" "bookrec_store_ready 0" "metric: not ready"
expect 0 "store restore" -- "$bookrec" --quiet store restore --model-dir "$m" --json
contains "$tmp/out" '"republished":true' "lists republished"
contains "$tmp/out" '"events":40' "the log's 40 events"
contains "$tmp/out" '"source":"v000001"' "the version's training ratings"
check "restored: ready again" wait_for "$port" /readyz '200 {"ready":true'
http "$port" get /metrics >"$tmp/metrics"
contains "$tmp/metrics" "bookrec_store_ready 1" "metric: ready"
n=$(grep -c 'not ready: the store serves no model version' "$tmp/serve.err")
check "the loss logged once ($n)" [ "$n" -eq 1 ]
http "$port" seen-in-top 20 >"$tmp/after"
echo "restore: rated or posted books in the top 20 of every reader after restore: $(cat "$tmp/after")"
check "restore: no rated or posted book in a top 20" grep -q '^0 2000$' "$tmp/after"
http "$port" get /api/users/1 >"$tmp/history1"
check "restore: reader 1's history as it was" cmp -s "$tmp/history0" "$tmp/history1"

expect 0 "store restore again" -- "$bookrec" --quiet store restore --model-dir "$m" --json
contains "$tmp/out" '"republished":false' "nothing to republish"
http "$port" get /api/users/1 >"$tmp/history2"
check "twice: no duplicate in the history" cmp -s "$tmp/history0" "$tmp/history2"

# --- the same loss, put back by a rollback to the served version
rm -f "$m/store/data.mdb" "$m/store/lock.mdb"
check "deleted again: not ready" wait_for "$port" /readyz '503 {"error"'
expect 0 "models rollback" -- "$bookrec" --quiet models rollback v000001 --model-dir "$m"
check "rolled back: ready" wait_for "$port" /readyz '200 {"ready":true'
http "$port" seen-in-top 20 >"$tmp/after"
echo "restore: rated or posted books in the top 20 of every reader after rollback: $(cat "$tmp/after")"
check "rollback: no rated or posted book in a top 20" grep -q '^0 2000$' "$tmp/after"
http "$port" get /api/users/1 >"$tmp/history3"
check "rollback: reader 1's history as it was" cmp -s "$tmp/history0" "$tmp/history3"

# --- a ratings file that moved: named with --ratings, checked by its hash
mv "$tmp/seed/ratings.csv" "$tmp/ratings-moved.csv"
expect 1 "ratings file gone" -- "$bookrec" --quiet store restore --model-dir "$m"
contains "$tmp/err" "--ratings FILE" "says how"
head -100 "$tmp/ratings-moved.csv" >"$tmp/seed/ratings.csv"
expect 1 "another ratings file" -- "$bookrec" --quiet store restore --model-dir "$m"
contains "$tmp/err" "is not the ratings file version v000001 was trained on" "says which"
expect 0 "--ratings" -- "$bookrec" --quiet store restore --model-dir "$m" \
  --ratings "$tmp/ratings-moved.csv"

kill -TERM "$spid"
wait "$spid"
finish restore
