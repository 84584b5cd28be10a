#!/usr/bin/env bash
# ingest.sh: `bookrec ingest` end to end on an LMDB store: CSV and JSON
# lines appended to the store's event log (and applied with --apply), a bad
# line reported as FILE:LINE with nothing appended, usage errors.
# Usage: ingest.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

check() { # check DESCRIPTION WANT_EXIT CMD...: runs CMD, compares the exit code
  local what=$1 want=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: $what: exit $got, want $want"
    sed 's/^/  /' "$tmp/out" "$tmp/err" | head -6
    fails=$((fails + 1))
  fi
}
has() { # has FILE TEXT DESCRIPTION
  if ! grep -qF -- "$2" "$1"; then
    echo "FAIL: $3: '$2' not in $(basename "$1"):"
    sed 's/^/  /' "$1" | head -5
    fails=$((fails + 1))
  fi
}

cd "$tmp" || exit 1
printf 'user_id,book_id,type,value,timestamp\nu1,b1,click,1,100\nu1,b2,rating,4,101\nu2,b1,view,1,102\n' >ev.csv
printf '{"user_id":"u3","book_id":7,"type":"purchase","value":9.5,"timestamp":200}\n' >ev.jsonl
printf 'user_id,book_id,type,value,timestamp\nu1,b1,click,1,100\nu1,b2,like,1,101\n' >bad.csv

check "ingest csv" 0 "$bookrec" ingest --events ev.csv --store lmdb:st --json
has "$tmp/out" '"appended":3' "csv count"
check "ingest jsonl with --apply" 0 "$bookrec" ingest --events ev.jsonl --store lmdb:st --apply
has "$tmp/out" "appended 1 events" "jsonl count"
[ -s st/events.log ] || { echo "FAIL: st/events.log missing"; fails=$((fails + 1)); }
size=$(stat -c %s st/events.log)
check "bad line" 1 "$bookrec" ingest --events bad.csv --store lmdb:st
has "$tmp/err" "bad.csv:3: event type 'like'" "file:line error"
[ "$(stat -c %s st/events.log)" = "$size" ] || { echo "FAIL: a bad file appended something"; fails=$((fails + 1)); }
BOOKREC_STORE=lmdb:envstore check "store from BOOKREC_STORE" 0 "$bookrec" ingest --events ev.csv
[ -s envstore/events.log ] || { echo "FAIL: BOOKREC_STORE ignored"; fails=$((fails + 1)); }
check "missing --events" 2 "$bookrec" ingest --store lmdb:st
check "missing file" 1 "$bookrec" ingest --events nope.csv --store lmdb:st
check "unreachable redis" 1 "$bookrec" ingest --events ev.csv --store redis://127.0.0.1:1
has "$tmp/err" "cannot connect" "redis error"

if [ "$fails" -ne 0 ]; then
  echo "$fails failure(s)"
  exit 1
fi
echo "ingest: all checks passed"
