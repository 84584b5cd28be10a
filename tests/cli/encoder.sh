#!/usr/bin/env bash
# encoder.sh: `bookrec model`, `bookrec tokenize` and `bookrec embed` end to
# end: token ids, the .npy output, --books, exit codes and error messages.
# Needs the use-lite model in its default location (`make model`); skips
# (exit 77) without it.
# Usage: encoder.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
. "$(dirname "$0")/lib.sh"

# Usage errors and a missing model need no model.
expect 2 "model without action" -- "$bookrec" model
expect 2 "model fetch unknown" -- "$bookrec" model fetch bert-huge
contains "$tmp/err" "unknown model 'bert-huge'" "unknown model message"
expect 2 "embed without --out" -- "$bookrec" embed --in x.json
expect 2 "embed with both inputs" -- "$bookrec" embed --in x.json --books y.csv --out z.npy
expect 2 "tokenize without --in" -- "$bookrec" tokenize
expect 1 "missing model file" -- "$bookrec" embed --model "$tmp/none.brm" --in x.json --out "$tmp/e.npy"
expect 1 "embed unknown encoder" -- "$bookrec" embed --encoder nope --in x.json --out "$tmp/e.npy"
echo '["a"]' >"$tmp/a.json"
expect 1 "missing model file" -- "$bookrec" embed --model "$tmp/none.brm" --in "$tmp/a.json" --out "$tmp/e.npy"
contains "$tmp/err" "bookrec model fetch use-lite" "missing model says how to fetch"
printf 'not a model at all, just some bytes' >"$tmp/bad.brm"
expect 1 "corrupt model file" -- "$bookrec" model info "$tmp/bad.brm"
contains "$tmp/err" "bookrec model fetch use-lite" "bad model says how to fetch"

model=$("$bookrec" model path use-lite)
if ! "$bookrec" -q model info "$model" >/dev/null 2>&1; then
  echo "skip: no use-lite model at $model (run \`make model\`); $passes passed"
  [ "$fails" -eq 0 ] || exit 1
  exit 77
fi

expect 0 "model info" -- "$bookrec" model info --encoder use-lite
contains "$tmp/out" "8000 pieces" "info shows the vocabulary"
expect 0 "fetch is idempotent" -- "$bookrec" -q model fetch use-lite
contains "$tmp/out" "use-lite.brm" "fetch prints the path"

printf '%s' '["hello world", "a", "", " ", "Hello World", "\u6771\u4eac"]' >"$tmp/t.json"
expect 0 "tokenize" -- "$bookrec" tokenize --encoder use-lite --in "$tmp/t.json"
contains "$tmp/out" '[[2002,102,311],[11],[],[30,30],[341,4125,1369],[30,0]]' "token ids"
expect 1 "tokenize non-string" -- "$bookrec" tokenize --in <(echo '[1]')
expect 1 "tokenize bad JSON" -- "$bookrec" tokenize --in <(echo '[')

expect 0 "embed texts" -- "$bookrec" -q embed --in "$tmp/t.json" --out "$tmp/e.npy"
# .npy: magic, '<f4', the shape, then 6 x 512 float32 after a 128-byte header.
head -c 128 "$tmp/e.npy" >"$tmp/hdr"
contains "$tmp/hdr" "NUMPY" ".npy magic"
contains "$tmp/hdr" "'descr': '<f4'" ".npy dtype"
contains "$tmp/hdr" "'shape': (6, 512)" ".npy shape"
size=$(stat -c %s "$tmp/e.npy")
if [ "$size" -eq $((128 + 6 * 512 * 4)) ]; then passes=$((passes + 1)); else
  echo "FAIL: .npy size $size"
  fails=$((fails + 1))
fi

cat >"$tmp/books.csv" <<'CSV'
book_id,title,authors,tags,description
1,Dune,Frank Herbert,science-fiction|classics,A desert planet and the spice.
2,Emma,Jane Austen,,
CSV
expect 0 "embed --books" -- "$bookrec" -q embed --books "$tmp/books.csv" --out "$tmp/b.npy"
head -c 128 "$tmp/b.npy" >"$tmp/hdr"
contains "$tmp/hdr" "'shape': (2, 512)" "--books gives one row per book"
expect 2 "bad template" -- "$bookrec" embed --books "$tmp/books.csv" --template x --out "$tmp/b.npy"

# --books goes through the shared embedding cache (here a folder of the
# test's own): the vectors are the encoder's, a second run embeds nothing,
# another encoder keeps a file of its own, --cache none embeds again, and
# processes adding to the cache at once lose none of their books.
export BOOKREC_EMBED_CACHE=$tmp/ecache
tiny="$2/../golden/minilm/tiny"
printf '%s' '["Dune. by Frank Herbert. science-fiction, classics. A desert planet and the spice.", "Emma. by Jane Austen"]' >"$tmp/bt.json"
expect 0 "embed the book texts" -- "$bookrec" -q embed --in "$tmp/bt.json" --out "$tmp/bt.npy"
expect 0 "embed --books, cold cache" -- "$bookrec" --verbose embed --books "$tmp/books.csv" --out "$tmp/b1.npy"
contains "$tmp/err" "embedded 2 of 2 books (full text, use-lite)" "cold: both embedded"
contains "$tmp/err" "cache: $tmp/ecache/use-lite.brec" "the cache file named"
cmp -s "$tmp/bt.npy" "$tmp/b1.npy" && passes=$((passes + 1)) || { echo "FAIL: --books vectors differ from the texts'"; fails=$((fails + 1)); }
expect 0 "embed --books, warm cache" -- "$bookrec" --verbose embed --books "$tmp/books.csv" --out "$tmp/b2.npy"
contains "$tmp/err" "embedded 0 of 2 books" "warm: nothing embedded"
cmp -s "$tmp/b1.npy" "$tmp/b2.npy" && passes=$((passes + 1)) || { echo "FAIL: cached vectors differ"; fails=$((fails + 1)); }
expect 0 "embed --books, no cache" -- "$bookrec" --verbose embed --books "$tmp/books.csv" --cache none --out "$tmp/b3.npy"
contains "$tmp/err" "embedded 2 of 2 books" "--cache none embeds"
contains "$tmp/err" "cache: none" "--cache none named"
expect 0 "embed --books, description" -- "$bookrec" --verbose embed --books "$tmp/books.csv" --template description --out "$tmp/b4.npy"
contains "$tmp/err" "embedded 2 of 2 books (description text" "another template: other texts"
if [ -d "$tiny" ]; then
  expect 0 "embed --books, bert" -- "$bookrec" --verbose embed --books "$tmp/books.csv" --encoder "bert:$tiny" --out "$tmp/b5.npy"
  contains "$tmp/err" "embedded 2 of 2 books" "another encoder: embedded"
  [ "$(ls "$tmp/ecache"/*.brec | wc -l)" -eq 2 ] && passes=$((passes + 1)) || { echo "FAIL: not one cache file per encoder:"; ls "$tmp/ecache"; fails=$((fails + 1)); }
  expect 0 "embed --books, use-lite again" -- "$bookrec" --verbose embed --books "$tmp/books.csv" --out "$tmp/b6.npy"
  contains "$tmp/err" "embedded 0 of 2 books" "use-lite's file kept"
  echo "book_id,title,description" >"$tmp/all.csv"
  for p in 0 1 2 3; do
    echo "book_id,title,description" >"$tmp/p$p.csv"
    for j in 0 1 2; do
      echo "$p$j,T$p$j,Story $p$j of the pile." | tee -a "$tmp/all.csv" >>"$tmp/p$p.csv"
    done
  done
  for p in 0 1 2 3; do
    "$bookrec" -q embed --books "$tmp/p$p.csv" --encoder "bert:$tiny" --out "$tmp/p$p.npy" &
  done
  wait
  expect 0 "embed --books, after four at once" -- "$bookrec" --verbose embed --books "$tmp/all.csv" --encoder "bert:$tiny" --out "$tmp/all.npy"
  contains "$tmp/err" "embedded 0 of 12 books" "four writers at once: every book kept"
fi
unset BOOKREC_EMBED_CACHE

finish
