#!/usr/bin/env bash
# bench/bert.sh: the BERT / MiniLM encoder against PyTorch, in one run on one
# machine (docs/benchmarks.md, "BERT / MiniLM encoder", quotes it).
#
# Usage: bench/bert.sh [BUILD_DIR]   (or bench/run.sh BUILD_DIR bert)
#
# The model: random weights of the all-MiniLM-L6-v2 shape (6 layers, 384
# wide, 12 heads, 1536 feed-forward, 30522 pieces; ~21.3 MFLOP per token),
# written once by bench/peers/bert_torch.py make-model into
# bench/out/bert/minilm-random with the real tokenizer files from
# ../shared/reference/minilm. The peer is bert_reference.py's PyTorch forward
# (Debian python3-torch), batched as sentence-transformers does it (sorted by
# length, 32 per batch, padded to the longest). Both get the same token ids
# (from `bench_bert tokenize`), the same thread count, and the same BLAS
# kernels (OPENBLAS_CORETYPE, below). Measured:
#   corpus   the 3,713 goodbooks descriptions (cut to 256 tokens): sentences/s;
#            the outputs must agree (max |difference| printed)
#   single   the first sentence of each of the first 200 descriptions, one
#            call each: median latency
#   uniform  32 x 40 and 32 x 128 random tokens: GFLOP/s, and bookrec's as a
#            share of plain sgemm GFLOP/s (FFN shape) measured in the same run;
#            also the FP32 FMA peak of one thread (the ceiling for all of it)
#
# Environment: BERT_THREADS (default 1), BERT_REPEAT (default 1; the corpus
# is ~12.7 TFLOP, minutes per pass), BERT_CORPUS (number of descriptions,
# default all), BERT_PARTS (a comma list of corpus, single, uniform; default
# all three: e.g. BERT_PARTS=single,uniform for a quick run while
# developing), PYTHON (default /usr/bin/python3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build=$root/$build ;; esac
shared=$(cd "$root/../shared" 2>/dev/null && pwd) || { echo "bert.sh: ../shared is absent" >&2; exit 77; }
py=${PYTHON:-/usr/bin/python3}
threads=${BERT_THREADS:-1}
repeat=${BERT_REPEAT:-1}
limit=${BERT_CORPUS:-0}
parts=${BERT_PARTS:-corpus,single,uniform}
out=$root/bench/out/bert
model=$out/minilm-random
bench=$build/bench/bench_bert
peer=$root/bench/peers/bert_torch.py
[ -x "$bench" ] || { echo "bert.sh: $bench not found: build first (make build)" >&2; exit 1; }
"$py" -c 'import torch, numpy' 2>/dev/null ||
  { echo "bert.sh: $py lacks torch/numpy: scripts/install-deps.sh bench (python3-torch)" >&2; exit 1; }

# OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to generic
# SSE3 kernels; choose the AVX-512 (or AVX2) ones, for both sides.
. "$(dirname "${BASH_SOURCE[0]}")/blas.env"
echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}, threads $threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== bookrec $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), torch $("$py" -c 'import torch; print(torch.__version__)')"

mkdir -p "$out"
if [ ! -f "$model/model.safetensors" ]; then
  echo "bert.sh: writing the random all-MiniLM-L6-v2-shaped model to $model" >&2
  BOOKREC_SHARED=$shared "$py" "$peer" make-model "$model"
fi
for f in vocab.txt tokenizer.json tokenizer_config.json sentence_bert_config.json; do
  cp -f "$shared/reference/minilm/$f" "$model/$f"
  chmod u+w "$model/$f"
done

# The texts (never kept beyond bench/out, which is not committed).
"$py" - "$shared/data/goodbooks/books.csv" "$out" "$limit" <<'PY'
import csv, re, sys
books, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = [r["description"] for r in csv.DictReader(open(books, newline="", encoding="utf-8")) if r["description"]]
if limit: d = d[:limit]
single = []
for x in d[:200]:
    m = re.match(r"(.+?[.!?])(\s|$)", x, re.S)
    single.append(m.group(1) if m else x[:200])
for name, texts in (("corpus", d), ("single", single)):
    open(f"{out}/{name}.txt0", "wb").write(b"\0".join(t.encode() for t in texts) + b"\0")
PY
"$bench" tokenize "$model" "$out/corpus.txt0" "$out/corpus.ids"
"$bench" tokenize "$model" "$out/single.txt0" "$out/single.ids"

echo "== bookrec (bench_bert)" >&2
"$bench" run "$model" "$out/corpus.ids" "$out/single.ids" "$out/bookrec" --threads "$threads" \
  --repeat "$repeat" --parts "$parts" | tee "$out/bookrec.json"
echo "== PyTorch (bert_torch.py)" >&2
BOOKREC_SHARED=$shared "$py" "$peer" run "$model" "$out/corpus.ids" "$out/single.ids" "$out/torch" \
  --threads "$threads" --repeat "$repeat" --parts "$parts" | tee "$out/torch.json"

"$py" - "$out" <<'PY'
import json, sys
import numpy as np
out = sys.argv[1]
b = json.load(open(f"{out}/bookrec.json")); t = json.load(open(f"{out}/torch.json"))
H, I, layers = 384, 1536, 6
def flops(lens):  # projections + attention, per sequence length
    return sum(L * 2 * (4 * H * H + 2 * H * I) * layers + 4 * L * L * H * layers for L in lens)
def lens(path):
    return [min(len(l.split()), 256) for l in open(path) if l.strip()]
corpus, single = lens(f"{out}/corpus.ids"), lens(f"{out}/single.ids")
n = len(corpus)
rows = []
if "corpus_s" in b:
    eb, et = np.load(f"{out}/bookrec.corpus.npy"), np.load(f"{out}/torch.corpus.npy")
    print(f"corpus: {n} descriptions, {sum(corpus)} tokens (mean {sum(corpus) / n:.1f}), "
          f"{flops(corpus) / 1e9:.0f} GFLOP; max |bookrec - torch| = {np.abs(eb - et).max():.2e}")
    rows.append(("corpus sentences/s", n / b["corpus_s"], n / t["corpus_s"]))
    rows.append(("corpus GFLOP/s", flops(corpus) / b["corpus_s"] / 1e9, flops(corpus) / t["corpus_s"] / 1e9))
if "single_median_s" in b:
    ms = sorted(single)[len(single) // 2]
    print(f"single: {len(single)} sentences, mean {sum(single) / len(single):.1f} tokens, "
          f"median {ms} ({flops([ms]) / 1e6:.0f} MFLOP)")
    rows.append(("single median ms (lower is better)", b["single_median_s"] * 1e3, t["single_median_s"] * 1e3))
    rows.append(("single total s (lower is better)", b["single_total_s"], t["single_total_s"]))
    rows.append(("single GFLOP/s (sum over sentences)", flops(single) / b["single_total_s"] / 1e9,
                 flops(single) / t["single_total_s"] / 1e9))
for shape in ("32x40", "32x128") if "sgemm_gflops" in b else ():
    B, L = map(int, shape.split("x"))
    f = flops([L] * B)
    rows.append((f"uniform {shape} GFLOP/s", f / b[f"uniform_{shape}_s"] / 1e9, f / t[f"uniform_{shape}_s"] / 1e9))
print(f"{'':36s} {'bookrec':>10s} {'PyTorch':>10s} {'bookrec/PyTorch':>16s}")
for name, x, y in rows:
    ratio = y / x if "lower" in name else x / y
    print(f"{name:36s} {x:10.2f} {y:10.2f} {ratio:15.2f}x")
sg = b.get("sgemm_gflops")
for shape in ("32x40", "32x128") if sg else ():
    B, L = map(int, shape.split("x")); f = flops([L] * B)
    print(f"uniform {shape}: bookrec {f / b[f'uniform_{shape}_s'] / 1e9 / sg * 100:.0f}% of plain sgemm "
          f"({sg:.1f} GFLOP/s, 4096x384 . 384x1536, same run); PyTorch "
          f"{f / t[f'uniform_{shape}_s'] / 1e9 / sg * 100:.0f}%")
    ss = b.get(f"uniform_{shape}_sgemm_sustained_gflops")
    if ss:
        print(f"uniform {shape}: bookrec {f / b[f'uniform_{shape}_s'] / 1e9 / ss * 100:.0f}% of sustained sgemm "
              f"({ss:.1f} GFLOP/s: the same FLOPs in sgemm calls right after each pass)")
if b.get("fma_peak_gflops"):
    print(f"FP32 FMA peak of one thread (AVX-512, registers only, same run): {b['fma_peak_gflops']:.1f} GFLOP/s")
PY
