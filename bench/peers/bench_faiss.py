#!/usr/bin/env python3
"""bench_faiss.py: faiss IndexHNSWFlat (inner product on unit vectors, i.e.
cosine), the peer of bench_hnsw in bench/content.sh: same base, queries, M,
efConstruction, efSearch and exact truth (written by bench_hnsw).

  bench_faiss.py --base B.npy --queries Q.npy --truth T.npy --m 16 --efc 100 --ef 16,32,64
One JSON line per ef: build seconds, recall@k, queries/s one query at a time
(one thread, like bench_hnsw) and as one batch (all threads)."""
import argparse, json, time
import numpy as np
import faiss

ap = argparse.ArgumentParser()
ap.add_argument("--base"); ap.add_argument("--queries"); ap.add_argument("--truth")
ap.add_argument("--m", type=int, default=16); ap.add_argument("--efc", type=int, default=100)
ap.add_argument("--ef", default="16,32,64,128"); ap.add_argument("--k", type=int, default=10)
ap.add_argument("--threads", type=int, default=0)
a = ap.parse_args()
if a.threads:
    faiss.omp_set_num_threads(a.threads)
b = np.load(a.base).astype(np.float32)
q = np.load(a.queries).astype(np.float32)
b /= np.linalg.norm(b, axis=1, keepdims=True)
q /= np.linalg.norm(q, axis=1, keepdims=True)
truth = np.load(a.truth)
idx = faiss.IndexHNSWFlat(b.shape[1], a.m, faiss.METRIC_INNER_PRODUCT)
idx.hnsw.efConstruction = a.efc
t = time.perf_counter()
idx.add(b)
build = time.perf_counter() - t
nthreads = faiss.omp_get_max_threads()
for ef in [int(e) for e in a.ef.split(",")]:
    idx.hnsw.efSearch = ef
    best = 1e30
    faiss.omp_set_num_threads(1)
    for r in range(3):
        t = time.perf_counter()
        for i in range(q.shape[0]):
            _, I1 = idx.search(q[i:i + 1], a.k)
        best = min(best, time.perf_counter() - t)
    faiss.omp_set_num_threads(nthreads)
    t = time.perf_counter()
    _, I = idx.search(q, a.k)
    sb = time.perf_counter() - t
    hit = sum(len(set(I[i]) & set(truth[i])) for i in range(q.shape[0]))
    print(json.dumps({"impl": "faiss", "n": b.shape[0], "dim": b.shape[1], "m": a.m,
                      "efc": a.efc, "ef": ef, "build_s": build,
                      "recall": hit / (q.shape[0] * a.k), "qps": q.shape[0] / best,
                      "qps_batch": q.shape[0] / sb}), flush=True)
