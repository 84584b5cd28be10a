#!/usr/bin/env python3
"""eval_sklearn.py: the Python peer of `bookrec eval`: plain numpy / scipy /
scikit-learn baselines on exactly the same split (`bookrec eval
--write-split DIR` writes it) and the same metrics (docs/evaluation.md):
readers with a relevant (>= 4) held-out book, every book the reader did not
rate in training ranked, ties to the lower book index, P / R / NDCG / MAP /
coverage at k.

    eval_sklearn.py --split DIR [--k 10] [--engines LIST] [--json]

Engines: popularity (most-rated), svd (the notebook: rank-50 SVD of the
0-filled rating matrix, score U S V^T; scipy's svds), als (implicit ALS,
Hu et al. 2008: 64 factors, confidence 1 + 0.3 r, lambda 0.1, 15 sweeps,
numpy solves), itemknn (cosine between the books' binary reader vectors,
each book's 100 nearest neighbours, score = sum over the reader's books),
ease (Steck 2019 on the binary matrix, lambda 100, every book: the dense
items x items inverse by Cholesky in single precision).
"""
import argparse
import json
import sys
import time

import numpy as np
import pandas as pd
from scipy.linalg import lapack
import scipy.sparse as sp
from scipy.sparse.linalg import svds


def load(split):
    tr = pd.read_csv(f"{split}/train.csv")
    te = pd.read_csv(f"{split}/test.csv")
    return tr, te


def metrics(top, rel_sets, users, n_books, k):
    """top: (len(users), k) book indices (-1: none)."""
    disc = 1.0 / np.log2(np.arange(k) + 2.0)
    p = r = nd = ap = 0.0
    shown = set()
    for row, u in zip(top, users):
        rel = rel_sets[u]
        hits = 0
        dcg = 0.0
        a = 0.0
        for i, b in enumerate(row):
            if b < 0:
                continue
            shown.add(int(b))
            if b in rel:
                hits += 1
                dcg += disc[i]
                a += hits / (i + 1)
        ideal = min(k, len(rel))
        p += hits / k
        r += hits / len(rel)
        nd += dcg / disc[:ideal].sum()
        ap += a / ideal
    n = len(users)
    return {"precision": p / n, "recall": r / n, "ndcg": nd / n, "map": ap / n,
            "coverage": len(shown) / n_books}


def top_k(scores, seen_rows, k):
    """Top k of each row, rated books excluded, ties to the lower index."""
    s = scores.astype(np.float64, copy=True)
    for j, seen in enumerate(seen_rows):
        s[j, seen] = -np.inf
    out = np.full((s.shape[0], k), -1, dtype=np.int64)
    for j in range(s.shape[0]):
        row = s[j]
        cand = np.argpartition(-row, k)[: k * 4] if row.size > 4 * k else np.arange(row.size)
        # make sure every book tied with the k-th best is a candidate
        kth = np.sort(row[cand])[::-1][k - 1] if cand.size >= k else -np.inf
        cand = np.nonzero(row >= kth)[0]
        order = np.lexsort((cand, -row[cand]))
        best = cand[order][:k]
        best = best[np.isfinite(row[best])]
        out[j, : best.size] = best
    return out


def als_implicit(X, factors=64, alpha=0.3, lam=0.1, iters=15, seed=42):
    """Hu, Koren, Volinsky 2008, conjugate-free: exact per-row solves."""
    rng = np.random.default_rng(seed)
    nu, nb = X.shape
    U = (rng.standard_normal((nu, factors)) * 0.01).astype(np.float64)
    V = (rng.standard_normal((nb, factors)) * 0.01).astype(np.float64)
    C = X.tocsr().astype(np.float64)
    C.data = 1.0 + alpha * C.data  # confidence of observed entries
    Ct = C.T.tocsr()
    I = lam * np.eye(factors)

    def sweep(A, Y, out):
        YtY = Y.T @ Y
        for i in range(A.shape[0]):
            lo, hi = A.indptr[i], A.indptr[i + 1]
            if lo == hi:
                out[i] = 0
                continue
            idx = A.indices[lo:hi]
            c = A.data[lo:hi]
            Yi = Y[idx]
            M = YtY + (Yi.T * (c - 1.0)) @ Yi + I
            out[i] = np.linalg.solve(M, Yi.T @ c)

    for _ in range(iters):
        sweep(C, V, U)
        sweep(Ct, U, V)
    return U, V


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", required=True)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--engines", default="popularity,svd,als,itemknn,ease")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    k = a.k
    t_all = time.perf_counter()
    tr, te = load(a.split)
    with open(f"{a.split}/meta.json") as f:
        meta = json.load(f)
    nu, nb = meta["readers"], meta["books"]
    R = sp.csr_matrix((tr.rating.values.astype(np.float32), (tr.reader.values, tr.book.values)),
                      shape=(nu, nb))
    R.sum_duplicates()
    B = R.copy()
    B.data[:] = 1.0
    rel = te[te.rating >= 4].groupby("reader").book.apply(lambda s: set(int(b) for b in s))
    rel_sets = rel.to_dict()
    users = np.array(sorted(rel_sets), dtype=np.int64)
    seen = [R.indices[R.indptr[u]:R.indptr[u + 1]] for u in users]
    results = {}
    for eng in a.engines.split(","):
        t0 = time.perf_counter()
        if eng == "popularity":
            pop = np.asarray(B.sum(axis=0)).ravel()
            fit = time.perf_counter() - t0
            scores = np.tile(pop, (len(users), 1))
        elif eng == "svd":
            Uf, s, Vt = svds(R.astype(np.float64), k=50, random_state=42)
            fit = time.perf_counter() - t0
            scores = (Uf[users] * s) @ Vt
        elif eng == "als":
            U, V = als_implicit(R)
            fit = time.perf_counter() - t0
            scores = U[users] @ V.T
        elif eng == "itemknn":
            norms = np.sqrt(np.asarray(B.multiply(B).sum(axis=0)).ravel())
            norms[norms == 0] = 1
            Bn = B @ sp.diags(1.0 / norms)
            S = (Bn.T @ Bn).toarray().astype(np.float32)
            np.fill_diagonal(S, 0)
            nn = 100
            drop = np.argpartition(-S, nn, axis=1)[:, nn:]
            np.put_along_axis(S, drop, 0, axis=1)
            fit = time.perf_counter() - t0
            scores = np.asarray(B[users] @ S)
        elif eng == "ease":
            # single precision Cholesky inverse (LAPACK spotrf + spotri),
            # the same kernels bookrec's item-item model uses
            G = (B.T @ B).toarray().astype(np.float32)
            G[np.diag_indices(nb)] += 100.0
            c, info = lapack.spotrf(G, lower=1, overwrite_a=1, clean=1)
            if info:
                raise RuntimeError(f"spotrf: {info}")
            P, info = lapack.spotri(c, lower=1, overwrite_c=1)
            if info:
                raise RuntimeError(f"spotri: {info}")
            P = np.tril(P) + np.tril(P, -1).T
            Bm = -P / np.diag(P)
            np.fill_diagonal(Bm, 0)
            fit = time.perf_counter() - t0
            scores = np.asarray(B[users] @ Bm)
        else:
            print(f"eval_sklearn: unknown engine {eng}", file=sys.stderr)
            return 2
        t1 = time.perf_counter()
        top = top_k(np.asarray(scores), seen, k)
        m = metrics(top, rel_sets, users, nb, k)
        m["fit_s"] = fit
        m["recommend_s"] = time.perf_counter() - t1
        results[eng] = m
        if not a.json:
            print(f"  {eng:<12} P@k {m['precision']:.4f}  R@k {m['recall']:.4f}  "
                  f"NDCG@k {m['ndcg']:.4f}  MAP@k {m['map']:.4f}  cov@k {m['coverage']:.4f}  "
                  f"fit {fit:.2f} s  rec {m['recommend_s']:.2f} s", flush=True)
    doc = {"readers_ranked": int(len(users)), "k": k, "engines": results,
           "wall_s": time.perf_counter() - t_all}
    if a.json:
        print(json.dumps(doc))
    else:
        print(f"  readers ranked: {len(users)}, wall {doc['wall_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
