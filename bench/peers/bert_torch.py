#!/usr/bin/python3
"""bert_torch.py: the PyTorch peer of bench/bert.sh.

Runs the forward pass of ../shared/reference/minilm/bert_reference.py (nn.Embedding,
nn.LayerNorm, nn.TransformerEncoderLayer post-norm with exact GELU, masked mean
pooling, L2 normalisation; imported by path, not copied) on token ids that
`bench_bert tokenize` wrote (one line per text), the same ids bookrec embeds, and times it:

  corpus    every sequence, batched as sentence-transformers' encode() does it:
            sorted by length, batches of 32, each padded to its longest
  single    each sequence of the single-sentence set alone (batch of 1)
  uniform   batches of B random sequences of exactly L tokens (no padding)

  bert_torch.py make-model DIR                 random weights of the all-MiniLM-L6-v2 shape
  bert_torch.py run DIR IDS SINGLE OUT_PREFIX [--threads N] [--repeat R] [--parts corpus,single,uniform]

`run` prints one JSON object of timings and writes OUT_PREFIX.corpus.npy (the
corpus embeddings in input order) for the equality check.
"""
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("BOOKREC_SHARED", os.path.join(HERE, "..", "..", "..", "shared"))
sys.path.insert(0, os.path.join(SHARED, "reference", "minilm"))
import bert_reference as ref  # noqa: E402

MINILM = {"architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
          "hidden_size": 384, "intermediate_size": 1536, "num_attention_heads": 12,
          "num_hidden_layers": 6, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
          "type_vocab_size": 2, "vocab_size": 30522, "pad_token_id": 0}


def make_model(d):
    """Random weights of the real shape, the way make_tiny draws them (scale 0.05
    so that activations stay in a realistic range through six layers)."""
    os.makedirs(d, exist_ok=True)
    cfg = MINILM
    rng = np.random.default_rng(11)
    H, I = cfg["hidden_size"], cfg["intermediate_size"]
    r = lambda *s: (rng.standard_normal(s) * 0.05).astype(np.float32)
    t = {"embeddings.word_embeddings.weight": r(cfg["vocab_size"], H),
         "embeddings.position_embeddings.weight": r(512, H),
         "embeddings.token_type_embeddings.weight": r(2, H),
         "embeddings.LayerNorm.weight": 1 + r(H), "embeddings.LayerNorm.bias": r(H)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for n in ["attention.self.query", "attention.self.key", "attention.self.value",
                  "attention.output.dense"]:
            t[p + n + ".weight"] = r(H, H)
            t[p + n + ".bias"] = r(H)
        t[p + "attention.output.LayerNorm.weight"] = 1 + r(H)
        t[p + "attention.output.LayerNorm.bias"] = r(H)
        t[p + "intermediate.dense.weight"] = r(I, H)
        t[p + "intermediate.dense.bias"] = r(I)
        t[p + "output.dense.weight"] = r(H, I)
        t[p + "output.dense.bias"] = r(H)
        t[p + "output.LayerNorm.weight"] = 1 + r(H)
        t[p + "output.LayerNorm.bias"] = r(H)
    t["pooler.dense.weight"] = r(H, H)
    t["pooler.dense.bias"] = r(H)
    ref.write_safetensors(os.path.join(d, "model.safetensors"), t)
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=1)


def forward(model, seqs):
    T = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = True
    return model(ids, mask)


def read_ids(path, max_len=256):
    """One sequence per line, ids separated by spaces (bench_bert tokenize), cut as
    sentence-transformers cuts them: the first max_len - 1 ids and [SEP]."""
    seqs = [[int(v) for v in line.split()] for line in open(path) if line.strip()]
    return [s if len(s) <= max_len else s[:max_len - 1] + [s[-1]] for s in seqs]


def run(d, ids_path, single_path, out_prefix, threads, repeat, parts):
    torch.set_num_threads(threads)
    cfg = json.load(open(os.path.join(d, "config.json")))
    model = ref.Bert(cfg, ref.read_safetensors(os.path.join(d, "model.safetensors"))).eval()
    seqs = read_ids(ids_path)
    single = read_ids(single_path)
    res = {"threads": threads, "torch": torch.__version__}
    with torch.no_grad():
        forward(model, [seqs[0]])  # warm-up
        # corpus, sentence-transformers style
        repeat_corpus = repeat if "corpus" in parts else 0
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        best = None
        out = np.zeros((len(seqs), cfg["hidden_size"]), dtype=np.float32)
        for _ in range(repeat_corpus):
            t0 = time.perf_counter()
            for b in range(0, len(order), 32):
                idx = order[b:b + 32]
                e = forward(model, [seqs[i] for i in idx])
                out[idx] = e.numpy()
            t = time.perf_counter() - t0
            best = t if best is None else min(best, t)
        if repeat_corpus:
            res["corpus_s"] = best
            np.save(out_prefix + ".corpus.npy", out)
        # single sentences, one call each: median over all, best of repeats
        lat = []
        for s in single if "single" in parts else []:
            ts = []
            for _ in range(max(repeat, 3)):
                t0 = time.perf_counter()
                forward(model, [s])
                ts.append(time.perf_counter() - t0)
            lat.append(min(ts))
        if lat:
            res["single_median_s"] = float(np.median(lat))
            res["single_total_s"] = float(np.sum(lat))
        # uniform batches
        rng = np.random.default_rng(3)
        for B, L in [(32, 40), (32, 128)] if "uniform" in parts else []:
            batch = [[101] + list(rng.integers(1000, 30000, L - 2)) + [102] for _ in range(B)]
            batch = [[int(v) for v in s] for s in batch]
            forward(model, batch)
            ts = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                forward(model, batch)
                ts.append(time.perf_counter() - t0)
            res[f"uniform_{B}x{L}_s"] = min(ts)
    print(json.dumps(res))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "make-model":
        make_model(sys.argv[2])
    elif len(sys.argv) >= 6 and sys.argv[1] == "run":
        a = sys.argv[6:]
        threads = int(a[a.index("--threads") + 1]) if "--threads" in a else 1
        repeat = int(a[a.index("--repeat") + 1]) if "--repeat" in a else 3
        parts = a[a.index("--parts") + 1] if "--parts" in a else "corpus,single,uniform"
        run(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], threads, repeat, parts)
    else:
        sys.exit(__doc__)
