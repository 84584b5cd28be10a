#!/usr/bin/env bash
# page.sh: the browser test of the page `bookrec serve` answers at /. Trains
# the seed universe (`bookrec generate --rng numpy`) into a temporary model
# directory twice (two versions for the models panel, the second with
# `--eval`), starts `bookrec serve` on loopback with an API key for the
# write endpoints, and runs page.mjs, which drives the page in headless
# Chromium with playwright-core (see there for what it checks). The server
# is stopped and everything removed on every exit; a sanitizer report in
# the server's output fails the test.
#
# Needs Debian's chromium, Node.js and npm (scripts/install-deps.sh test
# installs them). playwright-core is installed from package-lock.json with
# `npm ci` into NODE_DIR once, and again only when the lock file changes.
# Without chromium, node or the npm registry the test skips (exit 77), except
# in CI (CI=true), where install-deps.sh has installed them: there it fails.
# The encoder: USE-lite with the embedding cache seeded from the reference
# vectors (tests/golden/use-lite), as tests/cli/train.sh does, so training
# embeds nothing and sanitizer builds stay quick (the server embeds the one
# book page.mjs posts); skipped without the model.
#
# Usage: page.sh BOOKREC TEST_DATA_DIR SHARED_DIR NODE_DIR
set -u
bookrec=$1
node_dir=${4:?usage: page.sh BOOKREC TEST_DATA_DIR SHARED_DIR NODE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
tests=$(cd "$here/.." && pwd)
chromium=${CHROMIUM:-/usr/bin/chromium}
py=/usr/bin/python3

missing() {
  echo "SKIP: $1"
  [ "${CI:-}" = true ] && { echo "FAIL: CI must run the browser test (scripts/install-deps.sh test)"; exit 1; }
  exit 77
}
[ -x "$chromium" ] || missing "no chromium ($chromium; apt-get install chromium)"
command -v node >/dev/null 2>&1 || missing "no node"
command -v npm >/dev/null 2>&1 || missing "no npm"
[ -x "$py" ] || missing "no $py"
model=${XDG_CACHE_HOME:-$HOME/.cache}/bookrec/models/use-lite.brm
# like the other encoder tests: no model (its fetch failed), a plain skip
[ -f "$model" ] || { echo "SKIP: no use-lite model ($model; make model)"; exit 77; }

# playwright-core, once per NODE_DIR (the stamp is the lock file npm ci
# installed from, written only after it succeeded)
mkdir -p "$node_dir" || exit 1
if ! cmp -s "$here/package-lock.json" "$node_dir/installed.lock" ||
  [ ! -f "$node_dir/node_modules/playwright-core/package.json" ]; then
  rm -f "$node_dir/installed.lock"
  cp "$here/package.json" "$here/package-lock.json" "$node_dir/" || exit 1
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error) ||
    missing "npm ci failed in $node_dir"
  cp "$here/package-lock.json" "$node_dir/installed.lock"
fi
# ES modules resolve packages next to the script: run a copy from NODE_DIR
cp "$here/page.mjs" "$node_dir/page.mjs" || exit 1

tmp=$(mktemp -d)
pid=
npid=
stop_server() {
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  # a server that does not stop on SIGTERM within 30 s is killed
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=
}
# node in the background and waited for, so that a signal to this script
# runs the trap at once; playwright closes Chromium when node gets SIGTERM
stop_node() {
  [ -n "$npid" ] || return 0
  kill -TERM "$npid" 2>/dev/null
  wait "$npid" 2>/dev/null
  npid=
}
trap 'stop_node; stop_server; rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

fail() {
  echo "FAIL: $*"
  [ -s "$tmp/serve.err" ] && sed 's/^/  serve: /' "$tmp/serve.err" | tail -20
  exit 1
}

"$bookrec" --quiet generate --books 1000 --users 100 --seed 42 --rng numpy --out "$tmp/seed" \
  >/dev/null || fail "generate"
m=$tmp/model
mkdir -p "$m"
# The embedding cache of docs/formats.md, from the reference vectors.
"$py" "$tests/cli/seed_cache.py" "$tests/golden/use-lite/seed_descriptions.json" "$m/embeddings.brec" || fail "seed cache"
# Two versions for the models panel: v000001 without evaluation figures,
# v000002 (the one served) with them.
for eval in "" --eval; do
  "$bookrec" --quiet train --books "$tmp/seed/books.csv" --ratings "$tmp/seed/ratings.csv" \
    --model-dir "$m" --template description --clusters 6 --top-n 50 $eval >/dev/null 2>"$tmp/train.err" ||
    { cat "$tmp/train.err"; fail "train $eval"; }
done

# A free port from the kernel (--port 0): the server prints its address
# ("bookrec serve: http://127.0.0.1:PORT/ ...") once it is listening.
# With an API key for the write endpoints: page.mjs types it into the page.
key=page-test-key
BOOKREC_API_KEY= "$bookrec" serve --model-dir "$m" --bind 127.0.0.1 --port 0 --api-key "$key" \
  >"$tmp/serve.out" 2>"$tmp/serve.err" &
pid=$!
url=
for _ in $(seq 600); do
  url=$(sed -n 's#^bookrec serve: \(http://127\.0\.0\.1:[0-9]*\)/.*#\1#p' "$tmp/serve.out")
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$url" ] || fail "the server did not come up"

CHROMIUM=$chromium node "$node_dir/page.mjs" "$url" "$key" ${PAGE_SCREENSHOT:+"$PAGE_SCREENSHOT"} &
npid=$!
wait "$npid"
status=$?
npid=
stop_server
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp/serve.err"; then
  echo "FAIL: sanitizer report from the server:"
  grep -E -A12 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp/serve.err" | head -40
  exit 1
fi
exit "$status"
