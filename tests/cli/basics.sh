#!/usr/bin/env bash
# basics.sh: the `bookrec` binary end to end: help, version, exit codes
# (0 ok, 1 runtime error, 2 usage error), generate + stats, error messages.
# Usage: basics.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
data=$2
. "$(dirname "$0")/lib.sh"

expect 2 "no command" -- "$bookrec"
contains "$tmp/err" "usage: bookrec" "no command prints usage"
expect 0 "--version" -- "$bookrec" --version
contains "$tmp/out" "bookrec 0." "--version prints the version"
expect 0 "--help" -- "$bookrec" --help
contains "$tmp/out" "generate" "help lists generate"
contains "$tmp/out" "stats" "help lists stats"
expect 0 "help stats" -- "$bookrec" help stats
contains "$tmp/out" "usage: bookrec stats" "help stats"
expect 0 "stats --help" -- "$bookrec" stats --help
expect 2 "unknown command" -- "$bookrec" frobnicate
contains "$tmp/err" "'frobnicate' is not a bookrec command" "unknown command message"
expect 2 "help unknown command" -- "$bookrec" help frobnicate
expect 2 "unknown global option" -- "$bookrec" --frob stats
expect 2 "bad --threads" -- "$bookrec" --threads x stats
expect 2 "stats without --books" -- "$bookrec" stats
contains "$tmp/err" "--books FILE is required" "stats usage message"
expect 2 "stats unknown option" -- "$bookrec" stats --nope
expect 2 "stats stray argument" -- "$bookrec" stats --books x extra
expect 2 "stats bad scale" -- "$bookrec" stats --books x --rating-scale 5:1
expect 2 "generate without --out" -- "$bookrec" generate
expect 2 "generate bad --books" -- "$bookrec" generate --books -3 --out "$tmp/g"
expect 2 "generate bad --rng" -- "$bookrec" generate --rng mt --out "$tmp/g"
expect 1 "generate impossible sample" -- "$bookrec" generate --books 10 --out "$tmp/g"
contains "$tmp/err" "only 10" "generate runtime error message"

# generate + stats, text and JSON
expect 0 "generate numpy" -- "$bookrec" --quiet generate --rng numpy --out "$tmp/seed"
cmp -s "$tmp/seed/books.csv" "$data/../golden/seed-universe/books.csv" &&
  cmp -s "$tmp/seed/ratings.csv" "$data/../golden/seed-universe/ratings.csv" &&
  passes=$((passes + 1)) || { echo "FAIL: generate --rng numpy differs from the notebook's universe"; fails=$((fails + 1)); }
expect 0 "stats text" -- "$bookrec" stats --books "$tmp/seed/books.csv" --ratings "$tmp/seed/ratings.csv"
contains "$tmp/out" "books      1000" "stats books"
contains "$tmp/out" "readers    100" "stats readers"
contains "$tmp/out" "ratings    3579" "stats ratings"
contains "$tmp/out" "Historical Fiction" "stats genres"
expect 0 "stats json" -- "$bookrec" stats --json --books "$tmp/seed/books.csv" --ratings "$tmp/seed/ratings.csv"
contains "$tmp/out" '"ratings":3579' "stats json ratings"
contains "$tmp/out" '"users":100' "stats json users"
expect 0 "generate json" -- "$bookrec" --quiet generate --json --books 300 --users 50 --seed 3 --out "$tmp/x"
contains "$tmp/out" '"books":300' "generate json"

# runtime errors: exit 1 with file:line and the problem
printf 'user_id,book_id,rating\n0,1,5\n0,2,nine\n' >"$tmp/bad.csv"
expect 1 "stats bad rating" -- "$bookrec" stats --books "$tmp/seed/books.csv" --ratings "$tmp/bad.csv"
contains "$tmp/err" "bad.csv:3: rating 'nine' is not a number" "bad rating message"
expect 0 "stats --lenient" -- "$bookrec" stats --lenient --books "$tmp/seed/books.csv" --ratings "$tmp/bad.csv"
contains "$tmp/out" "skipped 1 bad rating rows" "lenient report"
expect 1 "stats missing file" -- "$bookrec" stats --books "$tmp/nope.csv"
contains "$tmp/err" "nope.csv: cannot open" "missing file message"
expect 0 "stats goodbooks sample" -- "$bookrec" stats --books "$data/goodbooks-sample/books.csv" --ratings "$data/goodbooks-sample/ratings.csv"
contains "$tmp/out" "first tags" "tags as genres"

finish
