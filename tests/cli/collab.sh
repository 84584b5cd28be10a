#!/usr/bin/env bash
# collab.sh: `bookrec svd` and `bookrec recommend` end to end on the seed
# universe (tests/golden/seed-universe): the notebook's singular values and
# top-10, every engine for every reader, no read book ever recommended,
# --save-model / --model round trip, usage and runtime errors.
# Usage: collab.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
data=$2
seed="$data/../golden/seed-universe"
. "$(dirname "$0")/lib.sh"

# check CONDITION-EXIT DESCRIPTION: counts a pass when the previous command succeeded.
check() {
  if [ "$1" -eq 0 ]; then passes=$((passes + 1)); else echo "FAIL: $2"; fails=$((fails + 1)); fi
}

B=(--books "$seed/books.csv" --ratings "$seed/ratings.csv")

# help and usage errors
expect 0 "svd --help" -- "$bookrec" svd --help
contains "$tmp/out" "usage: bookrec svd" "svd usage"
expect 0 "recommend --help" -- "$bookrec" recommend --help
contains "$tmp/out" "als-explicit" "recommend lists the engines"
expect 0 "help lists svd" -- "$bookrec" --help
contains "$tmp/out" "recommend" "help lists recommend"
expect 2 "svd without files" -- "$bookrec" svd
contains "$tmp/err" "--books FILE and --ratings FILE are required" "svd usage message"
expect 2 "svd bad factors" -- "$bookrec" svd "${B[@]}" --factors 0
expect 2 "recommend unknown engine" -- "$bookrec" recommend "${B[@]}" --engine knn
contains "$tmp/err" "unknown engine 'knn'" "unknown engine message"
expect 2 "recommend bad n" -- "$bookrec" recommend "${B[@]}" --n -1
expect 2 "recommend bad popularity" -- "$bookrec" recommend "${B[@]}" --popularity loud
expect 2 "recommend stray argument" -- "$bookrec" recommend "${B[@]}" extra

# runtime errors
expect 1 "svd too many factors" -- "$bookrec" svd "${B[@]}" --factors 101
contains "$tmp/err" "min(rows, cols) = 100" "svd range message"
expect 1 "recommend unknown reader" -- "$bookrec" recommend "${B[@]}" --users 0,nobody
contains "$tmp/err" "no reader 'nobody'" "unknown reader message"
expect 1 "recommend missing model" -- "$bookrec" recommend "${B[@]}" --model "$tmp/none.brcf"

# svd: the notebook's singular values (exact route on 100 x 1000)
expect 0 "svd json" -- "$bookrec" --quiet svd "${B[@]}" --factors 50 --json
contains "$tmp/out" '"singular_values":[40.71725' "first singular value"
contains "$tmp/out" '"method":"exact"' "exact route chosen"
contains "$tmp/out" '18.960958' "50th singular value"
expect 0 "svd randomized" -- "$bookrec" --quiet svd "${B[@]}" --factors 10 --randomized --power-iters 7 --json
contains "$tmp/out" '"method":"randomized"' "randomized route"
contains "$tmp/out" '"singular_values":[40.7172' "randomized first singular value"
expect 0 "svd text" -- "$bookrec" --quiet svd "${B[@]}" --factors 5
contains "$tmp/out" "100 readers x 1000 books, 3579 ratings" "svd text header"

# recommend svd: the notebook's top-10 for reader 0 and reader 13 (a tie: 173 before 198)
expect 0 "recommend svd" -- "$bookrec" --quiet recommend "${B[@]}" --engine svd --users 0,13 --json
contains "$tmp/out" '{"user":"0","items":[{"book":"659",' "reader 0 first book"
contains "$tmp/out" '{"book":"850",' "reader 0 tenth book"
contains "$tmp/out" '{"book":"173","score":0.67451' "reader 13 tie, lower id first"
[ "$(wc -l <"$tmp/out")" -eq 2 ]
check $? "one line per requested reader"

# every engine, every reader: 100 lines, n items each, never a read book
for engine in popularity svd als als-explicit; do
  expect 0 "recommend $engine" -- "$bookrec" --quiet recommend "${B[@]}" --engine "$engine" --n 7 --iterations 3 --factors 8 --json
  [ "$(grep -c '^{"user":' "$tmp/out")" -eq 100 ]
  check $? "$engine: 100 readers"
  [ "$(grep -o '"book":' "$tmp/out" | wc -l)" -eq 700 ]
  check $? "$engine: 7 books each"
  # (user, book) pairs recommended vs rated: no overlap
  sed 's/{"user":"\([^"]*\)","items":\[\(.*\)\]}/\1 \2/' "$tmp/out" |
    awk '{u=$1; n=split($0, a, "\"book\":\""); for (i = 2; i <= n; i++) { split(a[i], b, "\""); print u "," b[1] } }' |
    sort >"$tmp/recs"
  tail -n +2 "$seed/ratings.csv" | cut -d, -f1,2 | sort >"$tmp/read"
  [ "$(comm -12 "$tmp/recs" "$tmp/read" | wc -l)" -eq 0 ] && [ "$(wc -l <"$tmp/recs")" -eq 700 ]
  check $? "$engine: no read book recommended"
done

# text output
expect 0 "recommend text" -- "$bookrec" --quiet recommend "${B[@]}" --engine popularity --popularity mean --users 5 --n 3
grep -qE '^5: [0-9]+ \([0-9.]+\), [0-9]+ \([0-9.]+\), [0-9]+ \([0-9.]+\)$' "$tmp/out"
check $? "text line format"

# save a model, then serve from it: same output
expect 0 "recommend save-model" -- "$bookrec" --quiet recommend "${B[@]}" --engine als --factors 8 --iterations 2 --n 5 --json --save-model "$tmp/als.brcf"
cp "$tmp/out" "$tmp/fitted"
head -c 8 "$tmp/als.brcf" | grep -q BRCFMODL
check $? "model file magic"
expect 0 "recommend --model" -- "$bookrec" --quiet recommend "${B[@]}" --model "$tmp/als.brcf" --n 5 --json
cmp -s "$tmp/out" "$tmp/fitted"
check $? "loaded model recommends like the fitted one"
expect 2 "save and load together" -- "$bookrec" recommend "${B[@]}" --model a --save-model b
expect 1 "model of other data" -- "$bookrec" recommend --books "$data/goodbooks-sample/books.csv" --ratings "$data/goodbooks-sample/ratings.csv" --model "$tmp/als.brcf"
contains "$tmp/err" "model is 100 readers x 1000 books" "model shape message"

finish
