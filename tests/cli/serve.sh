#!/usr/bin/env bash
# serve.sh: `bookrec serve` as a process: bad options, start on a free port
# (--port 0 prints it), a request answered, SIGHUP after a new version is
# published (the new one served), SIGTERM stops it cleanly; and the web/
# embedding step (cmake/EmbedWeb.cmake run as a script on a folder of
# files: the generated table has every file with its content type and
# exact size; no folder: an empty table). The routes themselves are tested
# in tests/test_serve.c.
# Usage: serve.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
[ -x "$py" ] || { echo "SKIP: no python3"; exit 77; }
. "$(dirname "$0")/lib.sh"

# --- the web/ embedding step (no model needed)
mkdir -p "$tmp/web/static" "$tmp/gen"
printf '<!doctype html><title>t</title>\n' >"$tmp/web/index.html"
printf 'body{}' >"$tmp/web/static/app.css"
printf '\x00\x01\x02' >"$tmp/web/logo.png"
printf 'x' >"$tmp/web/.hidden"
expect 0 "EmbedWeb.cmake on a folder" -- cmake -DWEB_DIR="$tmp/web" -DOUT="$tmp/gen/w.c" \
  -P "$root/cmake/EmbedWeb.cmake"
contains "$tmp/gen/w.c" '{"/index.html", "text/html; charset=utf-8", asset_0, 32}' "index.html row"
contains "$tmp/gen/w.c" '{"/logo.png", "image/png", asset_1, 3}' "binary file row"
contains "$tmp/gen/w.c" '{"/static/app.css", "text/css; charset=utf-8", asset_2, 6}' "nested file row"
contains "$tmp/gen/w.c" 'br__serve_web_assets_n = 3;' "dot files left out"
contains "$tmp/gen/w.c" '0x00,0x01,0x02,' "bytes as written"
expect 0 "EmbedWeb.cmake without a folder" -- cmake -DWEB_DIR="$tmp/no-web" -DOUT="$tmp/gen/e.c" \
  -P "$root/cmake/EmbedWeb.cmake"
contains "$tmp/gen/e.c" 'br__serve_web_assets_n = 0;' "empty table"

# --- options
expect 2 "no --model-dir" -- "$bookrec" serve
expect 2 "bad port" -- "$bookrec" serve --model-dir "$tmp" --port 70000
expect 1 "nothing published" -- "$bookrec" serve --model-dir "$tmp/empty" --port 0
contains "$tmp/err" "error" "says why"

model=${XDG_CACHE_HOME:-$HOME/.cache}/bookrec/models/use-lite.brm
if [ ! -f "$model" ]; then
  echo "serve: the process checks need the use-lite model (make model): skipped"
  finish serve
  exit
fi

# --- a model (the cache seeded from the reference vectors: nothing embedded)
"$bookrec" --quiet generate --books 1000 --users 100 --seed 42 --rng numpy --out "$tmp/seed" \
  >/dev/null || { echo "FAIL: generate"; exit 1; }
m=$tmp/m
mkdir -p "$m"
"$py" "$root/tests/cli/seed_cache.py" "$root/tests/golden/use-lite/seed_descriptions.json" "$m/embeddings.brec"
T=(--books "$tmp/seed/books.csv" --ratings "$tmp/seed/ratings.csv" --model-dir "$m"
  --template description --clusters 4 --iterations 3 --factors 16 --top-n 20)
expect 0 "train" -- "$bookrec" --quiet train "${T[@]}"

get() { # get PORT PATH: prints "STATUS BODY"
  "$py" - "$1" "$2" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
c.request("GET", sys.argv[2])
r = c.getresponse()
print(r.status, r.read().decode())
PY
}

"$bookrec" serve --model-dir "$m" --port 0 --poll-ms 3600000 >"$tmp/serve.out" 2>"$tmp/serve.err" &
spid=$!
for _ in $(seq 300); do grep -q 'http://' "$tmp/serve.out" && break; sleep 0.1; done
contains "$tmp/serve.out" "model v000001" "start line names the version"
port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve.out")
get "$port" "/api/recommendations/user/5?n=3" >"$tmp/r1"
contains "$tmp/r1" '200 {"user_id":"5","model_version":"v000001","recommendations":[{' "a list"

# a new version, then SIGHUP (the poll is an hour: only the signal reloads)
expect 0 "train again" -- "$bookrec" --quiet train "${T[@]}" --seed 7
kill -HUP "$spid"
for _ in $(seq 100); do
  get "$port" /readyz >"$tmp/r2"
  grep -q v000002 "$tmp/r2" && break
  sleep 0.1
done
contains "$tmp/r2" '200 {"ready":true,"model_version":"v000002"' "SIGHUP reloaded"
kill -TERM "$spid"
wait "$spid"
code=$?
if [ "$code" -eq 0 ]; then passes=$((passes + 1)); else echo "FAIL: SIGTERM exit $code"; fails=$((fails + 1)); fi
finish serve
