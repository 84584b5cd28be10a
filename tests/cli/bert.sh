#!/usr/bin/env bash
# bert.sh: `bookrec tokenize/embed --encoder bert:DIR` end to end on the tiny
# golden model (tests/golden/minilm/tiny): token ids equal to the
# transformers.js reference, embeddings within 1e-5 of PyTorch's, options
# and errors. With ../shared, node and npm present it also tokenizes all
# goodbooks descriptions with the reference (wordpiece_reference.js, set up
# in the build tree) and requires identical ids; nothing derived from them
# is kept. Exits 77 (skip) when python3 is missing.
# Usage: bert.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
data=$2
shared=${3:-}
gold=$(cd "$data/../golden/minilm" && pwd)
tiny="$gold/tiny"
py=$(command -v python3 || true)
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
if [ -z "$py" ]; then
  echo "SKIP: python3 is needed to compare JSON and .npy outputs"
  exit 77
fi
. "$(dirname "$0")/lib.sh"

# check DESCRIPTION -- PYTHON_SCRIPT ARGS...: the script exits non-zero on a mismatch.
check() {
  local what=$1
  shift 2
  if "$py" "$@" >"$tmp/check" 2>&1; then
    passes=$((passes + 1))
  else
    echo "FAIL: $what"
    sed 's/^/  /' "$tmp/check" | head -10
    fails=$((fails + 1))
  fi
}

# The edge-case texts, as bookrec reads them.
"$py" -c 'import json,sys; json.dump([c["text"] for c in json.load(open(sys.argv[1]))], open(sys.argv[2], "w"))' \
  "$gold/wordpiece_edge_cases.json" "$tmp/edge_texts.json"

# tokenize: ids equal to the reference, [CLS]/[SEP] included, untruncated
expect 0 "tokenize bert:tiny" -- "$bookrec" tokenize --encoder "bert:$tiny" --in "$tmp/edge_texts.json"
cp "$tmp/out" "$tmp/edge_ids.json"
check "tokenize ids equal wordpiece_edge_cases.json" -- -c '
import json, sys
got = json.load(open(sys.argv[1])); ref = json.load(open(sys.argv[2]))
bad = [i for i, (g, r) in enumerate(zip(got, ref)) if g != r["token_ids"]]
assert len(got) == len(ref) == 25, (len(got), len(ref))
assert not bad, "cases differ: %s" % bad
' "$tmp/edge_ids.json" "$gold/wordpiece_edge_cases.json"

# a plain directory path works as well as bert:DIR
expect 0 "tokenize with --model DIR" -- "$bookrec" tokenize --model "$tiny" --in "$tmp/edge_texts.json"
if cmp -s "$tmp/out" "$tmp/edge_ids.json"; then passes=$((passes + 1)); else
  echo "FAIL: --model DIR and --encoder bert:DIR differ"
  fails=$((fails + 1))
fi

# embed: within 1e-5 of PyTorch (expected_embeddings.json: 256-token cut)
expect 0 "embed bert:tiny" -- "$bookrec" embed --encoder "bert:$tiny" --in "$tmp/edge_texts.json" --out "$tmp/emb.npy"
contains "$tmp/err" "25 texts" "embed reports its count"
npy_check='
import json, struct, sys
def load_npy(p):
    raw = open(p, "rb").read()
    assert raw[:6] == b"\x93NUMPY", "not .npy"
    hl = struct.unpack("<H", raw[8:10])[0]
    hdr = raw[10:10 + hl].decode()
    assert "<f4" in hdr, hdr
    shape = eval(hdr)["shape"]
    n = shape[0] * shape[1]
    return shape, struct.unpack("<%df" % n, raw[10 + hl:10 + hl + 4 * n])
shape, v = load_npy(sys.argv[1])
ref = json.load(open(sys.argv[2]))
assert shape == (len(ref), len(ref[0]["embedding"])), shape
d = max(abs(v[i * shape[1] + j] - e) for i, r in enumerate(ref) for j, e in enumerate(r["embedding"]))
print("max |diff| %.3g" % d)
assert d <= float(sys.argv[3]), d
'
check "embeddings within 1e-5 of expected_embeddings.json" -- -c "$npy_check" "$tmp/emb.npy" "$tiny/expected_embeddings.json" 1e-5

# --max-length 8 cuts the long texts: the last rows move, the short ones do not
expect 0 "embed --max-length 8" -- "$bookrec" embed --encoder "bert:$tiny" --max-length 8 --in "$tmp/edge_texts.json" --out "$tmp/emb8.npy"
check "--max-length changes long texts only" -- -c '
import struct, sys
def rows(p):
    raw = open(p, "rb").read(); hl = struct.unpack("<H", raw[8:10])[0]
    v = struct.unpack("<%df" % (25 * 32), raw[10 + hl:])
    return [v[i * 32:(i + 1) * 32] for i in range(25)]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
same = lambda x, y: max(abs(p - q) for p, q in zip(x, y)) < 1e-6
assert same(a[3], b[3]), "a 4-token text changed"
assert not same(a[23], b[23]), "the 830-token text did not change"
' "$tmp/emb.npy" "$tmp/emb8.npy"

# options and errors
expect 2 "--max-length 1" -- "$bookrec" embed --encoder "bert:$tiny" --max-length 1 --in "$tmp/edge_texts.json" --out "$tmp/x.npy"
expect 2 "--max-length x" -- "$bookrec" tokenize --encoder "bert:$tiny" --max-length x --in "$tmp/edge_texts.json"
expect 2 "--max-length with use-lite" -- "$bookrec" embed --max-length 16 --in "$tmp/edge_texts.json" --out "$tmp/x.npy"
contains "$tmp/err" "needs a BERT model" "--max-length with use-lite message"
expect 1 "missing model directory" -- "$bookrec" embed --encoder bert:/nonexistent/minilm --in "$tmp/edge_texts.json" --out "$tmp/x.npy"
contains "$tmp/err" "model fetch minilm" "missing directory says how to fetch"
mkdir -p "$tmp/badmodel"
cp "$tiny/config.json" "$tiny/vocab.txt" "$tmp/badmodel/"
head -c 1000 "$tiny/model.safetensors" >"$tmp/badmodel/model.safetensors"
expect 1 "truncated model.safetensors" -- "$bookrec" embed --encoder "bert:$tmp/badmodel" --in "$tmp/edge_texts.json" --out "$tmp/x.npy"
contains "$tmp/err" "model.safetensors" "truncated weights named"
expect 0 "embed --help lists bert" -- "$bookrec" embed --help
contains "$tmp/out" "bert:DIR" "embed help mentions bert:DIR"

# model fetch minilm: downloads where huggingface.co is reachable, else fails
# with instructions for installing the folder by hand; info reads a BERT dir
"$bookrec" model fetch minilm --dir "$tmp/models" >"$tmp/out" 2>"$tmp/err"
case $? in
  0) if [ -f "$tmp/models/all-MiniLM-L6-v2/model.safetensors" ]; then passes=$((passes + 1)); else
       echo "FAIL: model fetch minilm succeeded without model.safetensors"; fails=$((fails + 1)); fi ;;
  1) contains "$tmp/err" "git clone https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2" \
       "offline fetch prints manual instructions"
     [ ! -e "$tmp/models/all-MiniLM-L6-v2" ] && passes=$((passes + 1)) ||
       { echo "FAIL: failed fetch left a model folder"; fails=$((fails + 1)); } ;;
  *) echo "FAIL: model fetch minilm: unexpected exit"; fails=$((fails + 1)) ;;
esac
expect 0 "model info bert:DIR" -- "$bookrec" model info "bert:$tiny"
contains "$tmp/out" "2 layers, width 32" "model info shows the BERT shape"

# All goodbooks descriptions against the reference tokenizer, generated now.
books="$shared/data/goodbooks/books.csv"
refdir="$shared/reference/minilm"
if [ -f "$books" ] && [ -f "$refdir/wordpiece_reference.js" ] && command -v node >/dev/null &&
  command -v npm >/dev/null; then
  cache="$(dirname "$bookrec")/tests/tmp/wordpiece-reference"
  if [ ! -d "$cache/node_modules/@lenml/tokenizers" ]; then
    rm -rf "$cache" && mkdir -p "$cache"
    cp "$refdir"/wordpiece_reference.js "$refdir"/package.json "$refdir"/tokenizer.json \
      "$refdir"/tokenizer_config.json "$cache"/
    (cd "$cache" && npm install --no-audit --no-fund >/dev/null 2>&1) || rm -rf "$cache/node_modules"
  fi
  if [ -d "$cache/node_modules/@lenml/tokenizers" ]; then
    "$py" -c '
import csv, json, sys
rows = csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8"))
json.dump([r["description"] for r in rows if r["description"]], open(sys.argv[2], "w"), ensure_ascii=False)
' "$books" "$tmp/desc.json"
    (cd "$cache" && node wordpiece_reference.js . "$tmp/desc.json" "$tmp/desc_ref.json" >/dev/null)
    expect 0 "tokenize goodbooks descriptions" -- "$bookrec" tokenize --encoder "bert:$tiny" --in "$tmp/desc.json"
    check "goodbooks descriptions: ids identical to wordpiece_reference.js" -- -c '
import json, sys
got = json.load(open(sys.argv[1])); ref = json.load(open(sys.argv[2]))
assert len(got) == len(ref) and len(got) > 3000, (len(got), len(ref))
bad = [i for i, (g, r) in enumerate(zip(got, ref)) if g != r["token_ids"]]
print("%d descriptions, %d tokens, %d differ" % (len(got), sum(map(len, got)), len(bad)))
assert not bad, bad[:10]
' "$tmp/out" "$tmp/desc_ref.json"
  else
    echo "note: npm install of the reference tokenizer failed (offline?): goodbooks check skipped"
  fi
else
  echo "note: no ../shared goodbooks, node or npm: goodbooks tokenizer check skipped"
fi

finish bert.sh
