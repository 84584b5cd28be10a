# lib.sh: what every CLI test script shares, sourced after its arguments are
# read: a temporary folder removed on exit, and the two checks.
#   expect CODE DESCRIPTION -- CMD...   runs CMD (stdout to $tmp/out, stderr
#                                       to $tmp/err) and checks its exit code
#   contains FILE TEXT DESCRIPTION      checks that FILE holds TEXT
#   check DESCRIPTION CMD...            checks that CMD succeeds
#   finish [NAME]                       prints the closing "N passed, N failed"
#                                       line; its status is the script's result
#   seed_embeddings OUT.npy             the seed universe's reference USE-lite
#                                       embeddings (tests/golden) as a .npy, for
#                                       --embeddings without an encoder
#                                       (needs /usr/bin/python3 with numpy)
#   seed_model DIR [TRAIN OPTION...]    the seed universe (generated once into
#                                       $tmp/seed) trained into DIR from the
#                                       seeded embedding cache (nothing is
#                                       encoded): description template, 4
#                                       tribes, 3 iterations, the options
#                                       given; one check (needs $bookrec)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
passes=0

expect() {
  local want=$1 what=$2
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: $what: exit $got, want $want"
    sed 's/^/  stdout: /' "$tmp/out" | head -5
    sed 's/^/  stderr: /' "$tmp/err" | head -5
    fails=$((fails + 1))
  else
    passes=$((passes + 1))
  fi
}

contains() {
  if grep -qF -- "$2" "$1"; then
    passes=$((passes + 1))
  else
    echo "FAIL: $3: '$2' not in output:"
    head -5 "$1" | sed 's/^/  /'
    fails=$((fails + 1))
  fi
}

check() {
  local what=$1
  shift
  if "$@"; then passes=$((passes + 1)); else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

finish() {
  echo "${1:+$1: }$passes passed, $fails failed"
  [ "$fails" -eq 0 ]
}

seed_embeddings() {
  /usr/bin/python3 - "$(dirname "${BASH_SOURCE[0]}")/../golden/use-lite/seed_descriptions.json" \
    "$1" <<'PY'
import json, sys, numpy as np
d = json.load(open(sys.argv[1]))
np.save(sys.argv[2], np.array([e["embedding"] for e in d], dtype=np.float32))
PY
}

seed_model() {
  local dir=$1 here
  here=$(dirname "${BASH_SOURCE[0]}")
  shift
  if [ ! -f "$tmp/seed/ratings.csv" ] && ! "$bookrec" --quiet generate --books 1000 --users 100 \
    --seed 42 --rng numpy --out "$tmp/seed" >/dev/null; then
    echo "FAIL: generate"
    fails=$((fails + 1))
    return 1
  fi
  mkdir -p "$dir"
  /usr/bin/python3 "$here/seed_cache.py" "$here/../golden/use-lite/seed_descriptions.json" \
    "$dir/embeddings.brec"
  expect 0 "train the seed universe" -- "$bookrec" --quiet train --books "$tmp/seed/books.csv" \
    --ratings "$tmp/seed/ratings.csv" --model-dir "$dir" --template description --clusters 4 \
    --iterations 3 "$@"
}
