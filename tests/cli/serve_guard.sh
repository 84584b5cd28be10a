#!/usr/bin/env bash
# serve_guard.sh: `bookrec serve`'s guards as the CLI sets them (issue 19;
# docs/api.md, "Slow and greedy clients"): the options' ranges, and a bind
# beyond loopback (0.0.0.0; called on 127.0.0.1 only) without --api-key:
# a warning at start and writes refused with 401, or, with
# --allow-open-writes, another warning and writes accepted. The guards
# themselves are tested in tests/test_httpguard.c.
# Usage: serve_guard.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
[ -x "$py" ] || { echo "SKIP: no python3"; exit 77; }
. "$(dirname "$0")/lib.sh"

expect 2 "--max-per-ip 0" -- "$bookrec" serve --model-dir "$tmp" --max-per-ip 0
contains "$tmp/err" "--max-per-ip needs 1..1000000" "says the range"
expect 2 "--request-deadline 0" -- "$bookrec" serve --model-dir "$tmp" --request-deadline 0
contains "$tmp/err" "--request-deadline needs 0.1..3600 seconds" "says the range"
expect 2 "--max-connections x" -- "$bookrec" serve --model-dir "$tmp" --max-connections x
contains "$tmp/err" "--max-connections needs 1..1000000" "says the range"

model=${XDG_CACHE_HOME:-$HOME/.cache}/bookrec/models/use-lite.brm
if [ ! -f "$model" ]; then
  echo "serve_guard: the process checks need the use-lite model (make model): skipped"
  finish serve_guard
  exit
fi
m=$tmp/m
seed_model "$m" --factors 8 --top-n 10

post_event() { # post_event PORT: prints the status of POST /api/events
  "$py" - "$1" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
c.request("POST", "/api/events", '{"user_id":"u1","book_id":"1","type":"click"}',
          {"Content-Type": "application/json"})
print(c.getresponse().status)
PY
}

# serve_open NAME ARGS...: starts serve on 0.0.0.0, a free port; sets $spid, $port
serve_open() {
  local name=$1
  shift
  "$bookrec" serve --model-dir "$m" --bind 0.0.0.0 --port 0 --poll-ms 3600000 "$@" \
    >"$tmp/$name.out" 2>"$tmp/$name.err" &
  spid=$!
  for _ in $(seq 300); do grep -q 'http://' "$tmp/$name.out" && break; sleep 0.1; done
  port=$(sed -n 's|.*http://0.0.0.0:\([0-9]*\)/.*|\1|p' "$tmp/$name.out")
}

serve_open closed
post_event "$port" >"$tmp/closed.status"
kill -TERM "$spid"
wait "$spid"
contains "$tmp/closed.err" "warning: serve: listening on 0.0.0.0 (beyond loopback) without an API key" \
  "warned at start"
contains "$tmp/closed.status" "401" "a write without a key is refused"

serve_open open --allow-open-writes
post_event "$port" >"$tmp/open.status"
kill -TERM "$spid"
wait "$spid"
contains "$tmp/open.err" "without an API key and with --allow-open-writes" "warned at start"
contains "$tmp/open.status" "200" "--allow-open-writes: the write is taken"
finish serve_guard
