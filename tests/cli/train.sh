#!/usr/bin/env bash
# train.sh: `bookrec train`, `bookrec models` and `recommend --model-dir`
# end to end on the seed universe (`bookrec generate --rng numpy`): train,
# re-train (embedded 0, byte-identical artifacts), a changed description
# (embedded 1, the index extended), list / show / rollback / prune, recs
# read back from the store equal the in-process hybrid, bad inputs (unknown
# book, corrupt cache, unreachable Redis) fail and leave the served version
# untouched, and SIGKILL at 24 moments spread over a run never leaves
# `current` or the store unreadable or mixed.
#
# The embedding cache is seeded with the reference USE-lite vectors of the
# descriptions (tests/golden/use-lite), so the runs embed only what the
# test changes: fast under sanitizers. The encoder model is still needed
# (train opens it): skipped when `make model` has not fetched it.
# Usage: train.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
[ -x "$py" ] || { echo "SKIP: no python3"; exit 77; }
model=${XDG_CACHE_HOME:-$HOME/.cache}/bookrec/models/use-lite.brm
[ -f "$model" ] || { echo "SKIP: no use-lite model ($model; make model)"; exit 77; }
. "$(dirname "$0")/lib.sh"

check() {
  local what=$1
  shift
  if "$@"; then passes=$((passes + 1)); else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

json_get() { # json_get FILE KEY: a top-level value of a one-line JSON file
  "$py" -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(str(v).lower() if isinstance(v,bool) else v)' "$1" "$2"
}

"$bookrec" --quiet generate --books 1000 --users 100 --seed 42 --rng numpy --out "$tmp/seed" \
  >/dev/null || { echo "FAIL: generate"; exit 1; }
m=$tmp/m
mkdir -p "$m"
# The cache file of docs/formats.md, from the reference vectors.
"$py" "$root/cli/seed_cache.py" "$root/golden/use-lite/seed_descriptions.json" "$m/embeddings.brec"
B=(--books "$tmp/seed/books.csv" --ratings "$tmp/seed/ratings.csv")
T=(--model-dir "$m" --template description --clusters 4 --iterations 3 --factors 16 --top-n 20)

# first run: everything from the cache
expect 0 "train" -- "$bookrec" --quiet train "${B[@]}" "${T[@]}" --json
cp "$tmp/out" "$tmp/t1.json"
check "first version v000001" [ "$(json_get "$tmp/t1.json" version)" = v000001 ]
check "first run embeds nothing (seeded cache)" [ "$(json_get "$tmp/t1.json" embedded)" = 0 ]
check "index built" [ "$(json_get "$tmp/t1.json" index_added)" = 1000 ]
check "readers" [ "$(json_get "$tmp/t1.json" readers)" = 100 ]
for s in ingest embed tribes index collab top-n publish; do
  contains "$tmp/t1.json" "\"$s\":{\"seconds\"" "stage $s in --json"
done
check "current -> v000001" [ "$(readlink "$m/current")" = versions/v000001 ]
for f in manifest.json books.csv book_ids.txt user_ids.txt embeddings.npy index.hnsw cf.brcf \
  recs_items.npy recs_scores.npy tribes/tribes.json; do
  check "artifact $f" [ -s "$m/versions/v000001/$f" ]
done

# re-run, nothing changed: no embedding, identical artifacts
expect 0 "re-train" -- "$bookrec" --quiet train "${B[@]}" "${T[@]}" --json
cp "$tmp/out" "$tmp/t2.json"
check "re-run embeds 0" [ "$(json_get "$tmp/t2.json" embedded)" = 0 ]
check "re-run extends the index by 0" [ "$(json_get "$tmp/t2.json" index_added)" = 0 ]
check "re-run index incremental" [ "$(json_get "$tmp/t2.json" index_incremental)" = true ]
check "re-run previous" [ "$(json_get "$tmp/t2.json" previous)" = v000001 ]
ndiff=0
for f in $(cd "$m/versions/v000001" && find . -type f ! -name manifest.json | sort); do
  cmp -s "$m/versions/v000001/$f" "$m/versions/v000002/$f" || { echo "  differs: $f"; ndiff=$((ndiff + 1)); }
done
check "byte-identical artifacts on re-run" [ "$ndiff" = 0 ]

# one changed description, one new book: 2 embedded, the index rebuilt
# (book 3's vector changed, so the old index is not a prefix)
"$py" - "$tmp/seed/books.csv" "$tmp/books2.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
rows[4][3] = rows[4][3] + " Now with a new afterword."
rows.append(["1000", "A New Book", "Sci-Fi", "A brand new starship story about the far future."])
csv.writer(open(sys.argv[2], "w", newline="")).writerows(rows)
PY
# only appended: the previous index extended by the new book
"$py" - "$tmp/seed/books.csv" "$tmp/books3.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
rows.append(["1000", "A New Book", "Sci-Fi", "A brand new starship story about the far future."])
csv.writer(open(sys.argv[2], "w", newline="")).writerows(rows)
PY
expect 0 "train, one new book" -- "$bookrec" --quiet train --books "$tmp/books3.csv" \
  --ratings "$tmp/seed/ratings.csv" "${T[@]}" --json
cp "$tmp/out" "$tmp/t3.json"
check "new book: embedded 1" [ "$(json_get "$tmp/t3.json" embedded)" = 1 ]
check "new book: index extended by 1" [ "$(json_get "$tmp/t3.json" index_added)" = 1 ]
check "new book: incremental" [ "$(json_get "$tmp/t3.json" index_incremental)" = true ]
expect 0 "train, changed description" -- "$bookrec" --quiet train --books "$tmp/books2.csv" \
  --ratings "$tmp/seed/ratings.csv" "${T[@]}" --json
cp "$tmp/out" "$tmp/t4.json"
check "changed description: embedded 1" [ "$(json_get "$tmp/t4.json" embedded)" = 1 ]
check "changed description: index rebuilt" [ "$(json_get "$tmp/t4.json" index_incremental)" = false ]
check "changed description: 1001 vectors" [ "$(json_get "$tmp/t4.json" index_added)" = 1001 ]

# models list / show
expect 0 "models list" -- "$bookrec" models list --model-dir "$m"
check "four versions listed" [ "$(wc -l <"$tmp/out")" = 4 ]
contains "$tmp/out" "* v000004" "current marked"
expect 0 "models show" -- "$bookrec" models show --model-dir "$m"
contains "$tmp/out" '"version": "v000004"' "show current"
contains "$tmp/out" '"fnv1a64"' "show inputs hashes"
expect 0 "models show v1" -- "$bookrec" models show v000001 --model-dir "$m"
contains "$tmp/out" '"version": "v000001"' "show v000001"
expect 1 "models show unknown" -- "$bookrec" models show v000099 --model-dir "$m"
expect 2 "models no subcommand" -- "$bookrec" models --model-dir "$m"

# recs from the store = the in-process hybrid with the same parameters
expect 0 "recommend --model-dir" -- "$bookrec" recommend --model-dir "$m" --users 5,17 --n 5 --json
contains "$tmp/out" '"version":"v000004"' "recs from the served version"
check "two readers" [ "$(wc -l <"$tmp/out")" = 2 ]
expect 0 "recommend --explain" -- "$bookrec" recommend --model-dir "$m" --users 5 --n 3 --explain
contains "$tmp/out" "reader 5, model version v000004" "explain header"
expect 2 "--model-dir with --books" -- "$bookrec" recommend --model-dir "$m" "${B[@]}"
expect 1 "unknown reader" -- "$bookrec" recommend --model-dir "$m" --users nobody
contains "$tmp/err" "no recommendations" "unknown reader message"

# rollback to the previous, then to a named one
expect 0 "rollback" -- "$bookrec" models rollback --model-dir "$m"
contains "$tmp/out" "serving v000003" "rollback to previous"
check "current -> v000003" [ "$(readlink "$m/current")" = versions/v000003 ]
expect 0 "recommend after rollback" -- "$bookrec" recommend --model-dir "$m" --users 5 --json
contains "$tmp/out" '"version":"v000003"' "store serves v000003"
expect 0 "rollback v000004" -- "$bookrec" models rollback v000004 --model-dir "$m"
expect 0 "recommend v4" -- "$bookrec" recommend --model-dir "$m" --users 5 --json
contains "$tmp/out" '"version":"v000004"' "store serves v000004 again"
expect 1 "rollback unknown" -- "$bookrec" models rollback v000042 --model-dir "$m"

# A model directory works wherever it is moved or copied, from any working
# directory: the manifest records the store relative to the directory
# (docs/formats.md). A copy rolls back into its own store, the original's
# store keeps serving what it served.
cp -r "$m" "$tmp/copy"
mkdir -p "$tmp/elsewhere"
expect 0 "rollback in a copy" -- env -C "$tmp/elsewhere" "$bookrec" models rollback v000003 \
  --model-dir ../copy
expect 0 "recommend from the copy" -- env -C "$tmp/elsewhere" "$bookrec" recommend \
  --model-dir ../copy --users 5 --json
contains "$tmp/out" '"version":"v000003"' "the copy's store serves the copy's rollback"
expect 0 "recommend from the original" -- "$bookrec" recommend --model-dir "$m" --users 5 --json
contains "$tmp/out" '"version":"v000004"' "the original's store untouched by the copy"
# trained from the parent with relative paths (as `make demo` does), moved,
# and read from another directory
cp "$m/embeddings.brec" "$tmp/cache.brec"
mkdir -p "$tmp/rel"
cp "$tmp/cache.brec" "$tmp/rel/embeddings.brec"
T0=(--template description --clusters 4 --iterations 3 --factors 16 --top-n 20)
expect 0 "train with relative paths" -- env -C "$tmp" "$bookrec" --quiet train "${B[@]}" "${T0[@]}" \
  --model-dir rel --store lmdb:rel/store
check "store recorded relative to the model directory" \
  [ "$(json_get "$tmp/rel/current/manifest.json" store)" = lmdb:store ]
mv "$tmp/rel" "$tmp/elsewhere/moved"
expect 0 "recommend from a moved model directory" -- env -C / "$bookrec" recommend \
  --model-dir "$tmp/elsewhere/moved" --users 5 --json
contains "$tmp/out" '"version":"v000001"' "the moved directory's store"
# a store outside the model directory, named relative: recorded absolute
mkdir -p "$tmp/rel2"
cp "$tmp/cache.brec" "$tmp/rel2/embeddings.brec"
expect 0 "train with a store outside" -- env -C "$tmp" "$bookrec" --quiet train "${B[@]}" "${T0[@]}" \
  --model-dir rel2 --store lmdb:outside-store
check "store outside recorded absolute" \
  [ "$(json_get "$tmp/rel2/current/manifest.json" store)" = "lmdb:$(realpath "$tmp")/outside-store" ]
expect 0 "recommend with a store outside, from elsewhere" -- env -C / "$bookrec" recommend \
  --model-dir "$tmp/rel2" --users 5 --json

# bad inputs: clear error, non-zero, v000004 still served and intact
snapshot() { (cd "$m/versions/v000004" && find . -type f | sort | xargs md5sum) >"$1"; }
snapshot "$tmp/v4.md5"
served_ok() {
  [ "$(readlink "$m/current")" = versions/v000004 ] || return 1
  "$bookrec" recommend --model-dir "$m" --users 5 --json 2>/dev/null | grep -q '"version":"v000004"' || return 1
  snapshot "$tmp/now.md5"
  cmp -s "$tmp/v4.md5" "$tmp/now.md5"
}
cp "$tmp/seed/ratings.csv" "$tmp/bad.csv"
echo "5,99999,4" >>"$tmp/bad.csv"
expect 1 "unknown book in ratings" -- "$bookrec" --quiet train --books "$tmp/books2.csv" \
  --ratings "$tmp/bad.csv" "${T[@]}"
contains "$tmp/err" "99999" "unknown book named"
check "unknown book: v000004 untouched" served_ok
cp "$m/embeddings.brec" "$tmp/cache.good"
head -c 100000 "$tmp/cache.good" >"$m/embeddings.brec"
expect 1 "corrupt cache" -- "$bookrec" --quiet train "${B[@]}" "${T[@]}"
contains "$tmp/err" "truncated" "corrupt cache named"
check "corrupt cache: v000004 untouched" served_ok
cp "$tmp/cache.good" "$m/embeddings.brec"
expect 1 "unreachable redis" -- "$bookrec" --quiet train "${B[@]}" "${T[@]}" \
  --store redis://127.0.0.1:1
check "unreachable redis: v000004 untouched" served_ok
check "no leftovers" [ -z "$(ls -A "$m/versions" | grep -v '^v')" ]
expect 2 "train without --model-dir" -- "$bookrec" train "${B[@]}"
expect 2 "bad --cf" -- "$bookrec" train "${B[@]}" --model-dir "$m" --cf nope
expect 2 "bad --rating-scale" -- "$bookrec" train "${B[@]}" --model-dir "$m" --rating-scale 5:1

# prune: keep 2, the current (v000004) among them
expect 0 "prune" -- "$bookrec" models prune --keep 2 --model-dir "$m"
expect 0 "list after prune" -- "$bookrec" models list --model-dir "$m"
check "two left" [ "$(wc -l <"$tmp/out")" = 2 ]
contains "$tmp/out" "* v000004" "current kept"

# SIGKILL at moments spread over a run (0 to 0.95 of its length) until 24
# runs were killed (a run that finished first does not count). On the
# catalogue v000004 was trained on: every run extends the index by nothing,
# so all runs take about as long as the one timed, unless the machine's
# load changes (ctest runs tests side by side): a run that finished before
# its kill shortens the length the next moments are spread over.
B2=(--books "$tmp/books2.csv" --ratings "$tmp/seed/ratings.csv")
t0=$(date +%s%N)
"$bookrec" --quiet train "${B2[@]}" "${T[@]}" >/dev/null 2>&1
t1=$(date +%s%N)
run_ms=$(((t1 - t0) / 1000000))
kills=0
bad=0
i=0
while [ "$kills" -lt 24 ] && [ "$i" -lt 100 ]; do
  i=$((i + 1))
  delay_ms=$((run_ms * (i % 20) / 20 + RANDOM % 10))
  "$bookrec" --quiet train "${B2[@]}" "${T[@]}" >/dev/null 2>&1 &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [ $? -eq 137 ]; then
    kills=$((kills + 1))
  elif [ "$delay_ms" -ge 20 ]; then
    run_ms=$delay_ms # it finished within delay_ms
  fi
  cur=$(readlink "$m/current")
  # current: a complete version whose manifest parses
  if ! "$bookrec" models show --model-dir "$m" >"$tmp/show" 2>&1 ||
    ! "$py" -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/show" 2>/dev/null; then
    echo "  kill $i at ${delay_ms} ms: current ($cur) unreadable: $(head -2 "$tmp/show")"
    bad=$((bad + 1))
    continue
  fi
  # the store: every reader's recs from one version, a complete one
  if ! "$bookrec" recommend --model-dir "$m" --json >"$tmp/all" 2>"$tmp/allerr"; then
    echo "  kill $i at ${delay_ms} ms: store unreadable: $(head -1 "$tmp/allerr")"; bad=$((bad + 1)); continue
  fi
  versions=$("$py" -c 'import json,sys; print(" ".join(sorted({json.loads(l)["version"] for l in open(sys.argv[1])})))' "$tmp/all")
  lines=$(wc -l <"$tmp/all")
  if [ "$lines" != 100 ] || [ "$(echo "$versions" | wc -w)" != 1 ] ||
    [ ! -f "$m/versions/$versions/manifest.json" ]; then
    echo "  kill $i at ${delay_ms} ms: store mixed or incomplete ($lines readers, versions '$versions')"
    bad=$((bad + 1))
  fi
done
check "at least 20 runs killed ($kills)" [ "$kills" -ge 20 ]
check "every kill left current and the store readable and unmixed" [ "$bad" = 0 ]
# and the next run recovers: cleans the leftovers, publishes, serves
expect 0 "train after the kills" -- "$bookrec" --quiet train "${B2[@]}" "${T[@]}" --keep 3 --json
cp "$tmp/out" "$tmp/t5.json"
check "after kills: embedded 0" [ "$(json_get "$tmp/t5.json" embedded)" = 0 ]
check "no leftovers after recovery" [ -z "$(ls -A "$m/versions" | grep -v '^v')" ]
expect 0 "list after keep 3" -- "$bookrec" models list --model-dir "$m"
check "keep 3" [ "$(wc -l <"$tmp/out")" = 3 ]
expect 0 "recommend after recovery" -- "$bookrec" recommend --model-dir "$m" --users 5 --json
contains "$tmp/out" "\"version\":\"$(json_get "$tmp/t5.json" version)\"" "store serves the new run"

# events: the rating events of the store's log fold in, once, in every run
printf 'user_id,book_id,type,value,timestamp\n5,722,rating,5,1700000000\nnew1,10,rating,5,1700000001\nnew1,11,rating,4,1700000002\nnew1,12,rating,5,1700000003\n5,30,click,1,1700000004\n' >"$tmp/ev.csv"
expect 0 "ingest events" -- "$bookrec" --quiet ingest --events "$tmp/ev.csv" --store "lmdb:$m/store"
for run in 1 2; do
  expect 0 "train --events ($run)" -- "$bookrec" --quiet train "${B2[@]}" "${T[@]}" \
    --events "lmdb:$m/store" --json
  cp "$tmp/out" "$tmp/te.json"
  check "events: 4 rating events ($run)" [ "$(json_get "$tmp/te.json" events)" = 4 ]
  check "events: a new reader ($run)" [ "$(json_get "$tmp/te.json" readers)" = 101 ]
  check "events: 3579 + 4 ratings ($run)" [ "$(json_get "$tmp/te.json" ratings)" = 3583 ]
  check "events: read from the log once ($run)" \
    [ "$(json_get "$tmp/te.json" events_new)" = "$([ $run = 1 ] && echo 4 || echo 0)" ]
  check "events: the snapshot in the version ($run)" \
    [ -s "$m/versions/$(json_get "$tmp/te.json" version)/events.log" ]
done
check "events: the log acknowledged" [ -s "$m/store/events.log.ckpt-bookrec-train" ]
# A run that died between publishing and acknowledging: the log delivers the
# 4 events again, the position in the newest manifest skips them.
rm "$m/store/events.log.ckpt-bookrec-train"
expect 0 "train, log not acknowledged" -- "$bookrec" --quiet train "${B2[@]}" "${T[@]}" \
  --events "lmdb:$m/store" --json
cp "$tmp/out" "$tmp/te.json"
check "not acknowledged: still 4 events" [ "$(json_get "$tmp/te.json" events)" = 4 ]
check "not acknowledged: none counted twice" [ "$(json_get "$tmp/te.json" events_new)" = 0 ]
# After a rollback the events stay folded in (the base is the newest version).
expect 0 "rollback before events" -- "$bookrec" models rollback --model-dir "$m"
printf 'user_id,book_id,type,value,timestamp\nnew1,13,rating,3,1700000010\n' >"$tmp/ev3.csv"
expect 0 "ingest one more" -- "$bookrec" --quiet ingest --events "$tmp/ev3.csv" --store "lmdb:$m/store"
expect 0 "train after rollback" -- "$bookrec" --quiet train "${B2[@]}" "${T[@]}" \
  --events "lmdb:$m/store" --json
cp "$tmp/out" "$tmp/te.json"
check "after rollback: 5 events" [ "$(json_get "$tmp/te.json" events)" = 5 ]
check "after rollback: 1 new" [ "$(json_get "$tmp/te.json" events_new)" = 1 ]
# and without --events the folded events stay in the model
expect 0 "train without --events" -- "$bookrec" --quiet train "${B2[@]}" "${T[@]}" --json
cp "$tmp/out" "$tmp/te.json"
check "without --events: 5 events kept" [ "$(json_get "$tmp/te.json" events)" = 5 ]
expect 0 "recommend the new reader" -- "$bookrec" recommend --model-dir "$m" --users new1 --json
contains "$tmp/out" '"user":"new1"' "new reader served"
expect 0 "reader 5 after the event" -- "$bookrec" recommend --model-dir "$m" --users 5 --n 20 --json
check "book 722, now rated, not recommended" [ -z "$(grep -F '"book":"722"' "$tmp/out")" ]
# --eval: the protocol's figures in the manifest and the summary
expect 0 "train --eval" -- "$bookrec" --quiet train "${B2[@]}" "${T[@]}" --eval --eval-k 5 --json
cp "$tmp/out" "$tmp/tv.json"
"$py" - "$tmp/tv.json" "$m/versions/$(json_get "$tmp/tv.json" version)/manifest.json" \
  >"$tmp/evcheck" 2>&1 <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["evaluation"]
m = json.load(open(sys.argv[2]))["evaluation"]
assert s["k"] == 5 and m["k"] == 5, (s, m)
assert 0 < s["readers"] <= 100, s
for key in ("precision", "recall", "ndcg", "map"):
    assert 0 <= s[key] <= 1, (key, s)
    assert abs(m[key + "@5"] - s[key]) < 1e-9, (key, s, m)
print("ok")
PY
check "eval figures in the summary and the manifest" grep -qx ok "$tmp/evcheck"
expect 0 "models show with figures" -- "$bookrec" models show --model-dir "$m"
contains "$tmp/out" '"ndcg@5"' "models show prints the figures"
expect 0 "train without --eval" -- "$bookrec" --quiet train "${B2[@]}" "${T[@]}" --json
expect 0 "models show without figures" -- "$bookrec" models show --model-dir "$m"
contains "$tmp/out" '"evaluation": null' "no figures unless asked"

# Redis end to end: train publishes to a redis-server started here, folds
# in the stream's events, acknowledges and trims the stream; recommend
# reads the recs back; a second run flips the pointer and expires the old
# version's keys.
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
  port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
    >"$tmp/redis.log" 2>&1 &
  rpid=$!
  trap 'kill $rpid 2>/dev/null; rm -rf "$tmp"' EXIT
  rc() { redis-cli -p "$port" "$@"; }
  for _ in $(seq 50); do rc PING >/dev/null 2>&1 && break; sleep 0.1; done
  R=redis://127.0.0.1:$port
  m2=$tmp/m2
  mkdir -p "$m2"
  cp "$m/embeddings.brec" "$m2/"
  expect 0 "redis: ingest" -- "$bookrec" --quiet ingest --events "$tmp/ev.csv" --store "$R"
  check "redis: 5 events in the stream" [ "$(rc XLEN bookrec:events)" = 5 ]
  expect 0 "redis: train" -- "$bookrec" --quiet train "${B2[@]}" "${T[@]}" --model-dir "$m2" \
    --store "$R" --events "$R" --json
  cp "$tmp/out" "$tmp/tr.json"
  v1=$(json_get "$tmp/tr.json" version)
  check "redis: 4 rating events folded" [ "$(json_get "$tmp/tr.json" events_new)" = 4 ]
  check "redis: stream trimmed of all 5" [ "$(json_get "$tmp/tr.json" events_trimmed)" = 5 ]
  check "redis: stream empty" [ "$(rc XLEN bookrec:events)" = 0 ]
  check "redis: version pointer" [ "$(rc GET bookrec:version)" = "$v1" ]
  check "redis: recs key" [ "$(rc EXISTS "bookrec:@$v1:user:new1:recs")" = 1 ]
  check "redis: seen set" [ "$(rc SISMEMBER bookrec:user:5:seen 722)" = 1 ]
  expect 0 "redis: recommend" -- "$bookrec" recommend --model-dir "$m2" --store "$R" --users 5,new1 \
    --n 5 --json
  contains "$tmp/out" "\"version\":\"$v1\"" "redis: recs from the published version"
  contains "$tmp/out" '"user":"new1"' "redis: the new reader served"
  check "redis: two readers" [ "$(wc -l <"$tmp/out")" = 2 ]
  printf 'user_id,book_id,type,value,timestamp\nnew1,13,rating,3,1700000010\n' >"$tmp/ev4.csv"
  expect 0 "redis: ingest one more" -- "$bookrec" --quiet ingest --events "$tmp/ev4.csv" --store "$R"
  expect 0 "redis: train again" -- "$bookrec" --quiet train "${B2[@]}" "${T[@]}" --model-dir "$m2" \
    --store "$R" --events "$R" --json
  cp "$tmp/out" "$tmp/tr.json"
  v2=$(json_get "$tmp/tr.json" version)
  # the same lists as the LMDB model trained on the same data (CSV + 5 events)
  "$bookrec" recommend --model-dir "$m2" --store "$R" --users 5,new1 --n 5 --json |
    sed 's/"version":"[^"]*"//' >"$tmp/r_redis"
  "$bookrec" recommend --model-dir "$m" --users 5,new1 --n 5 --json | sed 's/"version":"[^"]*"//' \
    >"$tmp/r_lmdb"
  check "redis: recs read back" [ "$(wc -l <"$tmp/r_redis")" = 2 ]
  check "redis: same data as the LMDB model, same recs" cmp -s "$tmp/r_redis" "$tmp/r_lmdb"
  check "redis: 5 events, 1 new" [ "$(json_get "$tmp/tr.json" events):$(json_get "$tmp/tr.json" events_new)" = 5:1 ]
  check "redis: pointer flipped" [ "$(rc GET bookrec:version)" = "$v2" ]
  ttl=$(rc TTL "bookrec:@$v1:user:new1:recs")
  check "redis: old version's keys expire ($ttl)" [ "$ttl" -gt 0 ]
  check "redis: new version's keys persist" [ "$(rc TTL "bookrec:@$v2:user:new1:recs")" = -1 ]
  expect 0 "redis: recommend v2" -- "$bookrec" recommend --model-dir "$m2" --store "$R" --users 5 --json
  contains "$tmp/out" "\"version\":\"$v2\"" "redis: recs from the new version"
  kill "$rpid"
  wait "$rpid" 2>/dev/null
else
  echo "redis-server or redis-cli not installed: the Redis end-to-end part is skipped"
fi

# Events the check refuses: ingest refuses them against the served version.
printf 'user_id,book_id,type,value,timestamp\n9,nosuchbook,rating,4,1700000009\n' >"$tmp/ev2.csv"
expect 1 "ingest an unknown book" -- "$bookrec" --quiet ingest --events "$tmp/ev2.csv" \
  --store "lmdb:$m/store"
contains "$tmp/err" "ev2.csv:2: book 'nosuchbook'" "unknown book named with its line"
# A log that holds bad rating events anyway (ingested before any version
# was served: structural checks only) does not fail train: they are not
# folded in, counted, reported with the first problem.
printf 'user_id,book_id,type,value,timestamp\n9,nosuchbook,rating,4,1700000009\n9,10,rating,99,1700000010\n9,11,rating,4,1700000011\n9,12,rating,-3,1700000012\n' >"$tmp/ev5.csv"
expect 0 "ingest into a store serving nothing" -- "$bookrec" ingest --events "$tmp/ev5.csv" \
  --store "lmdb:$tmp/raw"
contains "$tmp/err" "serves no model version yet" "no version: a warning"
expect 0 "train with bad events in the log" -- "$bookrec" --quiet train "${B2[@]}" "${T[@]}" \
  --events "lmdb:$tmp/raw"
contains "$tmp/out" "3 rating events rejected, not folded in; the first: lmdb:$tmp/raw: event at" \
  "the summary counts them"
contains "$tmp/out" "book 'nosuchbook' is not in the catalogue" "the summary names the first problem"
contains "$tmp/err" "3 rating events not folded in" "logged"
"$py" -c 'import json,sys; e=json.load(open(sys.argv[1]))["events"]; print(e["rejected"], e["new"])' \
  "$m/current/manifest.json" >"$tmp/rej"
check "bad events: 3 rejected and the good one folded, in the manifest" [ "$(cat "$tmp/rej")" = "3 1" ]
printf 'user_id,book_id,type,value,timestamp\n9,12,rating,6,1700000013\n' >"$tmp/ev6.csv"
expect 0 "ingest another bad one" -- "$bookrec" ingest --events "$tmp/ev6.csv" --store "lmdb:$tmp/raw2"
expect 0 "train --json with a bad event" -- "$bookrec" --quiet train "${B2[@]}" "${T[@]}" \
  --events "lmdb:$tmp/raw2" --json
cp "$tmp/out" "$tmp/tb.json"
check "--json: 1 rejected" [ "$(json_get "$tmp/tb.json" events_rejected)" = 1 ]
contains "$tmp/tb.json" "rating 6 is outside the rating scale 1..5" "--json: the first problem"
check "--json: nothing new folded" [ "$(json_get "$tmp/tb.json" events_new)" = 0 ]
expect 0 "recommend the reader of the good event" -- "$bookrec" recommend --model-dir "$m" --users 9 \
  --n 20 --json
check "the folded rating's book not recommended" [ -z "$(grep -F '"book":"11"' "$tmp/out")" ]

finish train.sh
