#!/usr/bin/env bash
# ingest.sh: `bookrec ingest` end to end on an LMDB store: CSV and JSON
# lines appended to the store's event log (and applied with --apply), a bad
# line reported as FILE:LINE with nothing appended, usage errors; against a
# store serving a trained version, events outside its rating scale, with a
# negative weight or timestamp, or of a book it does not have, refused.
# Usage: ingest.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
root=$(cd "$(dirname "$0")/.." && pwd)
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
has "$tmp/err" "serves no model version yet" "no version to check against: a warning"
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

# A store serving a trained version (the seed universe, trained with the
# reference vectors in the embedding cache as train.sh does): each event is
# checked by the version's rating scale, read from the store's metadata, and
# its book looked up in the store; a bad line is named FILE:LINE and nothing
# is appended.
model=${XDG_CACHE_HOME:-$HOME/.cache}/bookrec/models/use-lite.brm
if [ -x /usr/bin/python3 ] && [ -f "$model" ]; then
  "$bookrec" --quiet generate --books 1000 --users 100 --seed 42 --rng numpy --out seed >/dev/null
  mkdir -p m
  /usr/bin/python3 "$root/cli/seed_cache.py" "$root/golden/use-lite/seed_descriptions.json" \
    m/embeddings.brec
  T=(--books seed/books.csv --ratings seed/ratings.csv --model-dir m --template description
    --clusters 4 --iterations 3 --factors 16 --top-n 5)
  check "train" 0 "$bookrec" --quiet train "${T[@]}"
  good='user_id,book_id,type,value,timestamp\n5,3,rating,4,100\n'
  printf "${good}5,3,rating,5,101\n5,4,click,1,102\n" >ok.csv
  check "good events" 0 "$bookrec" ingest --events ok.csv --store lmdb:m/store --json
  has "$tmp/out" '"appended":3' "good events appended"
  size=$(stat -c %s m/store/events.log)
  n=0
  for bad in "5,3,rating,99,103|rating 99 is outside the rating scale 1..5" \
    "5,3,rating,-3,103|rating -3 is outside the rating scale 1..5" \
    "5,3,click,1,-7|timestamp -7 is negative" \
    "5,3,purchase,-2,103|purchase value -2 is negative" \
    "5,nosuchbook,view,1,103|book 'nosuchbook' is not a book of the model version v000001"; do
    n=$((n + 1))
    printf "${good}${bad%%|*}\n" >"bad$n.csv"
    check "bad event $n" 1 "$bookrec" ingest --events "bad$n.csv" --store lmdb:m/store --apply
    has "$tmp/err" "bad$n.csv:3: ${bad#*|}" "bad event $n named with its line"
    [ "$(stat -c %s m/store/events.log)" = "$size" ] ||
      { echo "FAIL: bad event $n: something was appended"; fails=$((fails + 1)); }
  done
  printf '{"user_id":"5","book_id":3,"type":"rating","value":99,"timestamp":1}\n' >bad.jsonl
  check "bad JSON line" 1 "$bookrec" ingest --events bad.jsonl --store lmdb:m/store
  has "$tmp/err" "bad.jsonl:1: rating 99 is outside the rating scale 1..5" "JSON line named"
  # the scale is the served version's: trained on 0..10, 8 fits and 11 not
  check "train --rating-scale 0:10" 0 "$bookrec" --quiet train "${T[@]}" --rating-scale 0:10
  printf "${good}5,3,rating,8,104\n" >eight.csv
  check "rating 8 on a 0..10 scale" 0 "$bookrec" ingest --events eight.csv --store lmdb:m/store
  printf "${good}5,3,rating,11,104\n" >eleven.csv
  check "rating 11 on a 0..10 scale" 1 "$bookrec" ingest --events eleven.csv --store lmdb:m/store
  has "$tmp/err" "eleven.csv:3: rating 11 is outside the rating scale 0..10" "the version's scale"
else
  echo "no python3 or no use-lite model ($model; make model): the checks against a served version are skipped"
fi

if [ "$fails" -ne 0 ]; then
  echo "$fails failure(s)"
  exit 1
fi
echo "ingest: all checks passed"
