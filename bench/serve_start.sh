#!/usr/bin/env bash
# serve_start.sh: how long `bookrec serve` takes to be ready on a model
# directory (process start to the first 200 of GET /readyz), and to swap in
# another version (the `current` link moved, to the first /readyz naming
# the new version), with its resident memory. docs/benchmarks.md, "Serving:
# start-up and reload". There is no peer: this is the server's own start.
# bench: manual (takes its own arguments: run it directly, not through bench/run.sh)
#
# Usage: bench/serve_start.sh BOOKREC MODEL_DIR [RUNS]
#   MODEL_DIR with two versions or more also times reloads: `current` is
#   pointed at the newest other version and back (restored on exit).
#   RUNS: starts (and reload pairs) to time, 3 by default.
set -euo pipefail
bookrec=${1:?usage: serve_start.sh BOOKREC MODEL_DIR [RUNS]}
dir=${2:?usage: serve_start.sh BOOKREC MODEL_DIR [RUNS]}
runs=${3:-3}
py=/usr/bin/python3
orig=$(readlink "$dir/current")
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  ln -sfn "$orig" "$dir/.current.bench" && mv -T "$dir/.current.bench" "$dir/current"
}
trap cleanup EXIT
now() { date +%s.%N; }
# polls /readyz until it is 200 (and names version $2 when given); prints seconds since $1
wait_ready() {
  "$py" - "$port" "$1" "${2:-}" <<'PY'
import json, sys, time, urllib.request, urllib.error
port, t0, want = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
while True:
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=5) as r:
            if not want or json.load(r).get("model_version") == want:
                break
    except (urllib.error.URLError, ConnectionError, OSError):
        pass
    time.sleep(0.01)
print("%.2f" % (time.time() - t0))
PY
}
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
others=$(ls "$dir/versions" | grep -v "^\." | grep -vx "$(basename "$orig")" | sort | tail -n 1 || true)
echo "# $(date -u +%FT%TZ) $(uptime)"
echo "# $bookrec serve --model-dir $dir (current $(basename "$orig")); other version: ${others:-none}"
for r in $(seq 1 "$runs"); do
  sync
  t0=$(now)
  "$bookrec" --quiet serve --model-dir "$dir" --port "$port" --poll-ms 50 >/dev/null 2>&1 &
  pid=$!
  start=$(wait_ready "$t0")
  rss=$(awk '/VmRSS/ {printf "%.2f GB", $2 / 1048576}' "/proc/$pid/status")
  line="start $r: ready in $start s, RSS $rss"
  if [ -n "$others" ]; then
    t0=$(now)
    ln -sfn "versions/$others" "$dir/.current.bench" && mv -T "$dir/.current.bench" "$dir/current"
    there=$(wait_ready "$t0" "$others")
    t0=$(now)
    ln -sfn "$orig" "$dir/.current.bench" && mv -T "$dir/.current.bench" "$dir/current"
    back=$(wait_ready "$t0" "$(basename "$orig")")
    line="$line; reload to $others $there s, back $back s"
  fi
  echo "$line"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
done
