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
# The version is defined once, in core.h: exactly that is printed.
core_h=$data/../../include/bookrec/core.h
version=$(for p in MAJOR MINOR PATCH; do
  sed -n "s/^#define BR_VERSION_$p[[:space:]]*\([0-9]*\)\$/\1/p" "$core_h"; done | paste -sd.)
[ "$(cat "$tmp/out")" = "bookrec $version" ] && passes=$((passes + 1)) ||
  { echo "FAIL: --version prints '$(cat "$tmp/out")', core.h defines $version"; fails=$((fails + 1)); }
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

# Every command: `help CMD` and `CMD --help` print its usage; a rejected
# option is one line naming it (getopt's own message is off) and the hint.
expect 0 "help --help" -- "$bookrec" help --help
contains "$tmp/out" "usage: bookrec" "help --help prints usage"
expect 2 "help two commands" -- "$bookrec" help stats generate
expect 2 "version stray argument" -- "$bookrec" version extra
one_error() { # CMD EXPECTED-FIRST-LINE DESCRIPTION: stderr is that line and the hint
  local want
  want=$(printf '%s\nTry '"'"'bookrec %s --help'"'"'.' "$2" "$1")
  if [ "$(cat "$tmp/err")" = "$want" ]; then
    passes=$((passes + 1))
  else
    echo "FAIL: $3: stderr is not exactly '$2' and the hint:"
    sed 's/^/  /' "$tmp/err"
    fails=$((fails + 1))
  fi
}
"$bookrec" --help >"$tmp/list"
commands=$(sed -n '/^Commands:/,/^$/p' "$tmp/list" | awk 'NF > 1 { print $1 }')
[ "$(echo "$commands" | wc -w)" -ge 15 ] && passes=$((passes + 1)) ||
  { echo "FAIL: --help lists the commands: '$commands'"; fails=$((fails + 1)); }
for c in $commands; do
  expect 0 "help $c" -- "$bookrec" help "$c"
  head -1 "$tmp/out" | grep -q "^usage: bookrec" && passes=$((passes + 1)) ||
    { echo "FAIL: help $c does not start with usage:"; head -2 "$tmp/out"; fails=$((fails + 1)); }
  cp "$tmp/out" "$tmp/help-$c"
  expect 0 "$c --help" -- "$bookrec" "$c" --help
  cmp -s "$tmp/out" "$tmp/help-$c" && passes=$((passes + 1)) ||
    { echo "FAIL: '$c --help' differs from 'help $c'"; fails=$((fails + 1)); }
  expect 2 "$c unknown option" -- "$bookrec" "$c" --no-such-option
  one_error "$c" "bookrec $c: unknown option '--no-such-option'" "$c unknown option message"
done
expect 2 "stats option without its value" -- "$bookrec" stats --books
one_error stats "bookrec stats: option '--books' needs a value" "missing value message"
expect 2 "stats flag given a value" -- "$bookrec" stats --json=yes --books x
one_error stats "bookrec stats: option '--json' takes no value" "flag value message"
expect 2 "stats ambiguous option" -- "$bookrec" stats --rat x --books x
one_error stats "bookrec stats: option '--rat' is ambiguous: --ratings, --rating-scale" \
  "ambiguous option message"
expect 2 "a global option after the command" -- "$bookrec" stats --quiet --books x
one_error stats "bookrec stats: '--quiet' goes before the command: bookrec --quiet stats ..." \
  "global option message"
expect 2 "stats unknown short option" -- "$bookrec" stats -x --books x
one_error stats "bookrec stats: unknown option '-x'" "short option message"
expect 2 "model option after the action without its value" -- "$bookrec" model info --dir
one_error model "bookrec model: option '--dir' needs a value" "model missing value message"

# The demo runs only engines the README's engine list names (`make demo`
# is what a newcomer reads first; tests/data/.. is tests/).
readme=$data/../../README.md
demo_engines=$(sed -n 's/^[[:space:]]*@*for e in \([^;]*\);.*/\1/p' "$data/../../Makefile")
[ -n "$demo_engines" ] && passes=$((passes + 1)) ||
  { echo "FAIL: no 'for e in ...' engine loop in the Makefile's demo"; fails=$((fails + 1)); }
for e in $demo_engines; do
  grep '^| `recommend ' "$readme" | grep -qF "\`$e\`" && passes=$((passes + 1)) ||
    { echo "FAIL: the demo's engine '$e' is not in README's engine list"; fails=$((fails + 1)); }
  expect 0 "recommend --help names $e" -- "$bookrec" recommend --help
  grep -qE "^  $e( |$)" "$tmp/out" && passes=$((passes + 1)) ||
    { echo "FAIL: recommend --help does not list the demo's engine '$e'"; fails=$((fails + 1)); }
done
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
