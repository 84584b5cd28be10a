#!/usr/bin/env bash
# serve.sh: the online API benchmark (issue 8). Starts `bookrec serve` on a
# model and drives GET /api/recommendations/user/{id} with wrk over many
# reader ids (bench/serve_ids.lua cycles them), at 8 connections (wrk -t1
# -c8) and at saturation (wrk -t2 -c32), with the LMDB store and with
# Redis; the floor of this machine is measured in the same run:
# redis-benchmark -t get at the same connection counts against a temporary
# redis-server, and, for the latency at 8 connections, wrk against the same
# server's GET /healthz (the HTTP layer alone). Prints throughput, p50/p99/p99.9, non-2xx responses, the
# ratio to redis-benchmark's GET rate, and the latency of an event
# followed by a recommendation that reflects it (POST /api/events, then
# GET until the book is gone; one persistent connection).
#
#   bench/serve.sh [BUILD_DIR]      (run by bench/run.sh)
#
# Environment:
#   SERVE_MODEL_DIR   an existing model directory (e.g. /work/scale/model);
#                     default: the seed universe, trained once into
#                     bench/out/serve/model and reused
#   SERVE_REDIS       1: also serve that model from Redis (an existing
#                     model is re-published into the temporary redis-server
#                     with `models rollback`, which re-points `current` to
#                     the same version). Default 1 for the seed model, 0 else.
#   SERVE_DURATION    seconds per wrk run (10)
#   SERVE_THREADS     server worker threads, each value a server start, for
#                     both stores (default: "1 2" with LMDB: on 2 vCPUs that
#                     also run wrk, one server thread leaves wrk a vCPU of its
#                     own, two (the default) use the slack at saturation;
#                     "2 8" with Redis, whose default is 8: its reads hold a
#                     thread for a round trip)
#   SERVE_WARMUP      seconds of unreported wrk -t2 -c32 after each server
#                     start, so the store's pages are in the page cache (3;
#                     the 1,000,000-reader model wants ~15)
#   SERVE_IDS         reader ids cycled by wrk (100000 at most)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
bookrec="$build/bookrec"
dur=${SERVE_DURATION:-10}
lmdb_threads=${SERVE_THREADS:-1 2}
redis_threads=${SERVE_THREADS:-2 8}
warmup=${SERVE_WARMUP:-3}
nids=${SERVE_IDS:-100000}
py=/usr/bin/python3
for tool in wrk redis-server redis-benchmark redis-cli; do
  command -v $tool >/dev/null || { echo "serve.sh: $tool missing (scripts/install-deps.sh bench)" >&2; exit 1; }
done
[ -x "$bookrec" ] || { echo "serve.sh: $bookrec not found: build first" >&2; exit 1; }

work="$root/bench/out/serve"
mkdir -p "$work"
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -rf "$work/redis"
mkdir -p "$work/redis"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/redis" \
  --logfile "$work/redis/redis.log" --daemonize no &
rpid=$!
spid=
cleanup() {
  [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
  kill "$rpid" 2>/dev/null
  wait "$rpid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis_uri="redis://127.0.0.1:$port?pool=8"

if [ -n "${SERVE_MODEL_DIR:-}" ]; then
  model=$SERVE_MODEL_DIR
  use_redis=${SERVE_REDIS:-0}
else
  model="$work/model"
  use_redis=${SERVE_REDIS:-1}
  if [ ! -e "$model/current" ]; then
    echo "serve.sh: training the seed universe into $model" >&2
    "$bookrec" --quiet generate --books 1000 --users 100 --seed 42 --rng numpy --out "$work/seed" >/dev/null
    "$bookrec" --quiet train --books "$work/seed/books.csv" --ratings "$work/seed/ratings.csv" \
      --model-dir "$model" >/dev/null
  fi
fi
cur=$(readlink "$model/current")
cur=${cur##*/}
head -n "$nids" "$model/current/user_ids.txt" >"$work/ids.txt"
readers=$(wc -l <"$model/current/user_ids.txt")
books=$(wc -l <"$model/current/book_ids.txt")

echo "Serving: GET /api/recommendations/user/{id}?n=10, $(wc -l <"$work/ids.txt") reader ids cycled"
echo "model: $model ($cur: $readers readers x $books books); server threads: $lmdb_threads (LMDB), $redis_threads (Redis); wrk ${dur}s per run, ${warmup}s warm-up"
echo "machine: $(nproc) cores (load generator, server and redis share them); load at start:$(uptime | sed 's/.*load average://')"
echo

# The floor: redis-benchmark GET at the same connection counts. It moves by
# a quarter between runs here (the host), so it is measured again right
# before every wrk run and each ratio uses the floor measured beside it.
declare -A rb_rate
# redis-server's own CPU seconds (user + system) so far: per GET of the
# floor and per request of the route on the Redis store, the work each
# asks of redis-server (the route's store read is a pipeline of four
# commands), which bounds the route's rate on these two vCPUs.
redis_cpu() {
  redis-cli -p "$port" info cpu | tr -d '\r' |
    awk -F: '/^used_cpu_(sys|user):/ {t += $2} END {printf "%.6f", t}'
}

declare -A rb_cpu_us
floor() { # floor C [LABEL]: sets rb_rate[C], rb_cpu_us[C], prints one line
  local out rate lat c0
  c0=$(redis_cpu)
  out=$(redis-benchmark -p "$port" -t get -n 200000 -c "$1" 2>/dev/null | tr '\r' '\n')
  rb_cpu_us[$1]=$(awk -v a="$c0" -v b="$(redis_cpu)" 'BEGIN {printf "%.1f", (b - a) * 1e6 / 200000}')
  rate=$(echo "$out" | awk '/throughput summary/ {print $3; exit}')
  lat=$(echo "$out" | awk '/latency summary/ {getline; getline; print "avg " $1 " p50 " $3 " p95 " $4 " p99 " $5 " max " $6 " ms"; exit}')
  rb_rate[$1]=$rate
  echo "${2:-}redis-benchmark -t get -c $1: $rate GET/s ($lat; redis-server CPU ${rb_cpu_us[$1]} us a GET)"
}
echo "== peer: redis-benchmark -t get (same machine, same run; again before each wrk run below)"
floor 8
floor 32
echo

start_server() { # start_server STORE_URI THREADS
  "$bookrec" serve --model-dir "$model" --store "$1" --port 0 --threads "$2" \
    >"$work/serve.out" 2>"$work/serve.err" &
  spid=$!
  for _ in $(seq 3000); do # a big model loads for a while
    grep -q 'http://' "$work/serve.out" 2>/dev/null && break
    kill -0 "$spid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
    sleep 0.1
  done
  sport=$(sed -n 's|.*http://[0-9.]*:\([0-9]*\)/.*|\1|p' "$work/serve.out")
}

stop_server() {
  kill "$spid"
  wait "$spid" 2>/dev/null || true
  spid=
}

# The host's steal time (its other guests taking our vCPUs) in percent since
# the last call: it moves tail latencies a lot here, so each run shows it.
steal_last=
steal_pct() {
  local now
  now=$(awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t}' /proc/stat)
  if [ -n "$steal_last" ]; then
    awk -v a="$steal_last" -v b="$now" 'BEGIN {split(a, x, " "); split(b, y, " ");
      d = y[2] - x[2]; printf "%.1f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0)}'
  fi
  steal_last=$now
}

warm_up() {
  [ "$warmup" -gt 0 ] || return 0
  local rps
  rps=$(SERVE_IDS_FILE="$work/ids.txt" wrk -t2 -c32 -d"${warmup}s" -s "$here/serve_ids.lua" \
    "http://127.0.0.1:$sport" 2>&1 | awk '/^Requests\/sec/ {print $2}')
  echo "       warm-up wrk -t2 -c32 ${warmup}s: $rps req/s (not reported)"
}

# The floor of the latency: the same wrk run against GET /healthz of the
# same server (libmicrohttpd and the loopback path, no handler work). The
# host stalls this machine's vCPUs for a millisecond or more now and then
# (docs/benchmarks.md, "Tail latency and the machine"); what that does to
# wrk's p99 shows here, beside the route's own.
http_floor() { # http_floor T C
  local out
  out=$(SERVE_FIXED_PATH=/healthz wrk -t"$1" -c"$2" -d"${dur}s" --latency -s "$here/serve_ids.lua" \
    "http://127.0.0.1:$sport" 2>&1)
  printf '       floor: wrk -t%s -c%s GET /healthz (the HTTP layer alone): %.0f req/s  p50 %s ms  p99 %s ms  p99.9 %s ms\n' \
    "$1" "$2" "$(echo "$out" | awk '/^Requests\/sec/ {print $2}')" \
    $(echo "$out" | awk '/^PCT/ {print $2, $3, $4}')
}

run_wrk() { # run_wrk LABEL T C
  local out rps p50 p99 p999 non2xx errs steal
  floor "$3" "       floor: "
  [ "$3" = 8 ] && http_floor "$2" "$3"
  steal_pct >/dev/null
  local c0
  c0=$(redis_cpu)
  out=$(SERVE_IDS_FILE="$work/ids.txt" wrk -t"$2" -c"$3" -d"${dur}s" --latency \
    -s "$here/serve_ids.lua" "http://127.0.0.1:$sport" 2>&1)
  steal=$(steal_pct)
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '/^PCT/ {print $2}')
  p99=$(echo "$out" | awk '/^PCT/ {print $3}')
  p999=$(echo "$out" | awk '/^PCT/ {print $4}')
  non2xx=$(echo "$out" | awk '/^NON2XX/ {print $2}')
  errs=$(echo "$out" | awk '/^ERRORS/ {print $2}')
  local ratio
  ratio=$(awk -v a="$rps" -v b="${rb_rate[$3]}" 'BEGIN {printf "%.2f", a / b}')
  printf '%-6s wrk -t%s -c%-2s  %9.0f req/s  p50 %6.3f ms  p99 %6.3f ms  p99.9 %6.3f ms  non-2xx %s  socket errors %s  ratio to the floor (redis-benchmark GET -c%s): %s  (host steal %s%%)\n' \
    "$1" "$2" "$3" "$rps" "$p50" "$p99" "$p999" "$non2xx" "$errs" "$3" "$ratio" "$steal"
  if [ "$1" = redis ]; then
    awk -v a="$c0" -v b="$(redis_cpu)" -v n="$(echo "$out" | awk '/requests in/ {print $1}')" \
      -v g="${rb_cpu_us[$3]}" 'BEGIN {u = (b - a) * 1e6 / n;
      printf "       redis-server CPU: %.1f us a request (%.1f us a GET of the floor: %.1fx)\n", u, g, u / g}'
  fi
  handler_time
}

handler_time() { # the server's own time for the route so far, from /metrics
  "$py" - "$sport" <<'PY'
import http.client, re, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
c.request("GET", "/metrics")
t = c.getresponse().read().decode()
r = 'route="/api/recommendations/user/{id}"'
s = float(re.search(r"_sum\{" + re.escape(r) + r"\} (\S+)", t).group(1))
n = float(re.search(r"_count\{" + re.escape(r) + r"\} (\S+)", t).group(1))
le = float(re.search(r'_bucket\{' + re.escape(r) + r',le="0.0001"\} (\S+)', t).group(1))
print("       server-side (handler, from /metrics, cumulative): mean %.1f us over %d requests, %.1f%% under 100 us" % (s / n * 1e6, n, 100 * le / n))
PY
}

event_latency() { # POST an event for a reader's top book, GET until it is gone
  "$py" - "$sport" "$work/ids.txt" <<'PY'
import http.client, json, sys, time
port, ids = int(sys.argv[1]), [l.strip() for l in open(sys.argv[2])][:200]
c = http.client.HTTPConnection("127.0.0.1", port)
def req(m, p, body=None):
    c.request(m, p, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read()
lat, stale = [], 0
for i, u in enumerate(ids[:100]):
    st, b = req("GET", "/api/recommendations/user/%s?n=10" % u)
    top = json.loads(b)["recommendations"][0]["book_id"]
    t0 = time.perf_counter()
    st, _ = req("POST", "/api/events", json.dumps({"user_id": u, "book_id": top, "type": "click"}))
    assert st == 200, st
    st, b = req("GET", "/api/recommendations/user/%s?n=10" % u)
    lat.append((time.perf_counter() - t0) * 1e3)
    if top in [r["book_id"] for r in json.loads(b)["recommendations"]]:
        stale += 1
lat.sort()
print("event -> recommendation reflecting it (POST /api/events + GET, one connection, %d readers): "
      "p50 %.3f ms, p99 %.3f ms, max %.3f ms; lists still holding the clicked book: %d"
      % (len(lat), lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1], stale))
PY
}

stores=("lmdb")
[ "$use_redis" = 1 ] && stores+=("redis")
for store in "${stores[@]}"; do
  if [ "$store" = lmdb ]; then
    uri=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["store"])' "$model/current/manifest.json")
    # a relative lmdb: path in the manifest is relative to where train ran
    case "$uri" in lmdb:/*) ;; *) uri="lmdb:$model/store" ;; esac
  else
    uri=$redis_uri
    if [ -n "${SERVE_MODEL_DIR:-}" ]; then
      "$bookrec" --quiet models rollback "$cur" --model-dir "$model" --store "$uri" >/dev/null
    else
      # the seed model published to Redis: a second train into its own dir
      # (the embedding cache copied: nothing is embedded again)
      rm -rf "$work/model-redis"
      mkdir -p "$work/model-redis"
      cp "$model/embeddings.brec" "$work/model-redis/"
      "$bookrec" --quiet train --books "$model/current/books.csv" --ratings "$work/seed/ratings.csv" \
        --model-dir "$work/model-redis" --store "$uri" >/dev/null
    fi
  fi
  serve_model=$model
  [ "$store" = redis ] && [ -z "${SERVE_MODEL_DIR:-}" ] && model="$work/model-redis"
  thread_counts=$lmdb_threads
  [ "$store" = redis ] && thread_counts=$redis_threads
  for threads in $thread_counts; do
    start_server "$uri" "$threads"
    echo "== bookrec serve --threads $threads, $store store ($uri), port $sport; load before:$(uptime | sed 's/.*load average://')"
    warm_up
    run_wrk "$store" 1 8
    run_wrk "$store" 2 32
    event_latency
    stop_server
  done
  model=$serve_model
  echo
done

# The route's own work without HTTP (store read, seeds, ranking and JSON;
# bench_handler, one thread, LMDB), on the model wrk drove.
bh="$build/bench/bench_handler"
if [ -x "$bh" ]; then
  echo "== the handler alone (bench_handler, LMDB); load:$(uptime | sed 's/.*load average://')"
  for round in 1 2; do
    "$bh" --model-dir "$model" --ids "$work/ids.txt" --requests 200000
  done
  echo
fi

# The request's store reads alone, without HTTP: the three separate calls
# the handler used to make against the one br_store_get_reader it makes now,
# alternated twice, one thread, 2,000 readers with 20 interactions each
# (Redis: database 1 of the same redis-server, so the served model is
# untouched). The ratio separate/reader is the round trips saved.
bs="$build/bench/bench_store"
if [ -x "$bs" ]; then
  echo "== the per-request store reads alone (bench_store --mode separate|reader, 1 thread); load:$(uptime | sed 's/.*load average://')"
  rm -rf "$work/reads-lmdb"
  for be in lmdb redis; do
    [ "$be" = redis ] && [ "$use_redis" != 1 ] && continue
    u="lmdb:$work/reads-lmdb"
    [ "$be" = redis ] && u="redis://127.0.0.1:$port/1"
    "$bs" --uri "$u" --users 2000 --recs 100 --events 20 --reads 1 --threads 1 >/dev/null
    for round in 1 2; do
      for m in separate reader; do
        "$bs" --uri "$u" --users 2000 --no-publish --reads 20000 --threads 1 --mode "$m"
      done
    done
  done
  rm -rf "$work/reads-lmdb"
fi
