#!/usr/bin/env python3
"""bench/coldvec_choice.py: the measurements that chose how bookrec predicts
the ALS vector of a book nobody has rated (src/hybrid/coldvec.c,
docs/content.md "Books nobody has rated"), on a cold-books split.

Inputs: a split written by `bookrec eval --protocol cold-books --seed S
--write-split DIR`, the catalogue (books.csv) and the books' sentence
embeddings (`bookrec embed --books books.csv --out EMB.npy`). An implicit
ALS (numpy; 64 factors, binary preference, confidence 1 + 10, lambda 0.1,
10 sweeps: a stand-in for bookrec's, the point is the regression) is fitted
on train.csv; then each cold book's vector is predicted from its content
and every reader ranks the cold books by u . v (NDCG@10, the metrics of
bench/content_peer.py):

- zero vectors (what ALS alone gives a book without ratings);
- the k most similar rated books' vectors, averaged (TF-IDF cosine);
- kernel ridge regression from [TF-IDF rows, g x embeddings] to the rated
  books' vectors, for g, lambda and the number of (most-rated) books fitted;
- the same fitted per cold book on its m nearest rated books by that
  kernel (what bookrec does: no n x n solve);
- beside the TF-IDF reader profile (the issue's peer).

The TF-IDF here is scikit-learn's over title, authors, tags and
description (the peer's); bookrec's own kernel uses its lexical model.
Usage: coldvec_choice.py --books books.csv --split DIR --emb EMB.npy
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from content_peer import book_texts, list_metrics, read_ids, read_triples  # noqa: E402


def als(r, f=64, lam=0.1, alpha=10.0, iters=10, seed=0):
    rng = np.random.default_rng(seed)
    c = r.copy()
    c.data = alpha * (c.data > 0)
    ct = c.T.tocsr()
    u = rng.normal(0, 0.01, (r.shape[0], f))
    v = rng.normal(0, 0.01, (r.shape[1], f))

    def step(a, cm, y):
        yty = y.T @ y
        for i in range(a.shape[0]):
            lo, hi = cm.indptr[i], cm.indptr[i + 1]
            idx, ci = cm.indices[lo:hi], cm.data[lo:hi]
            if len(idx) == 0:
                a[i] = 0
                continue
            yi = y[idx]
            a[i] = np.linalg.solve(yty + (yi.T * ci) @ yi + lam * np.eye(f), yi.T @ (1 + ci))

    for _ in range(iters):
        step(u, c, v)
        step(v, ct, u)
    return u, v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--books", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--emb", required=True)
    a = ap.parse_args()
    meta = json.load(open(os.path.join(a.split, "meta.json")))
    nu, nb = meta["readers"], meta["books"]
    x = sp.csr_matrix(TfidfVectorizer(stop_words="english", sublinear_tf=True)
                      .fit_transform(book_texts(a.books)), dtype=np.float64)
    e = np.load(a.emb).astype(np.float64)
    e /= np.linalg.norm(e, axis=1, keepdims=True) + 1e-12
    tu, tb, tv = read_triples(os.path.join(a.split, "train.csv"))
    su, sb, sv = read_triples(os.path.join(a.split, "test.csv"))
    cand = read_ids(os.path.join(a.split, "candidates.csv"))
    r = sp.csr_matrix((tv, (tu, tb)), shape=(nu, nb))
    rel = {}
    for uu, bb, vv in zip(su, sb, sv):
        if vv >= 4:
            rel.setdefault(int(uu), set()).add(int(bb))
    users = np.array(sorted(rel))
    allowed = np.zeros(nb, bool)
    allowed[cand] = True
    seen = r[users].nonzero()

    def ndcg(s):
        s = s.copy()
        s[seen] = -np.inf
        s[:, ~allowed] = -np.inf
        tot = 0.0
        for j, uu in enumerate(users):
            part = np.argpartition(-s[j], 100)[:101]
            order = part[np.lexsort((part, -s[j][part]))][:100]
            order = np.where(np.isfinite(s[j][order]), order, -1)
            tot += list_metrics(order, rel[int(uu)], 10)[2]
        return tot / len(users)

    def show(name, s):
        print(f"{name:52s} NDCG@10 {ndcg(s):.4f}", flush=True)

    p = (r[users] @ x).toarray()
    p /= np.linalg.norm(p, axis=1, keepdims=True) + 1e-12
    show("peer: TF-IDF reader profile", np.asarray(x @ p.T).T)
    t = time.time()
    u, v = als(r)
    print(f"(numpy ALS: {time.time() - t:.1f} s)")
    show("ALS, zero vectors for the cold books", u[users] @ v.T)
    cnt = np.asarray((r != 0).sum(0)).ravel()
    cold, warm = np.where(cnt == 0)[0], np.where(cnt > 0)[0]
    order = warm[np.argsort(-cnt[warm], kind="stable")]
    kl_cw = (x[cold] @ x[warm].T).toarray()
    for k in (10, 50):
        s = kl_cw.copy()
        s[s < -np.sort(-s, axis=1)[:, k - 1:k]] = 0
        vh = v.copy()
        vh[cold] = (s @ v[warm]) / (s.sum(1, keepdims=True) + 0.1)
        show(f"ALS, cold = mean of the {k} nearest rated (TF-IDF)", u[users] @ vh.T)
    for nfit in (2000, 4000, len(warm)):
        w = order[:nfit]
        kl_ww = (x[w] @ x[w].T).toarray()
        kl = (x[cold] @ x[w].T).toarray()
        ke_ww, ke = e[w] @ e[w].T, e[cold] @ e[w].T
        grid = [(g, lam) for g in (0.0, 1.0, 2.0) for lam in (0.1, 0.3, 1.0)] \
            if nfit == len(warm) else [(2.0, 0.3)]
        for g, lam in grid:
            alpha = np.linalg.solve(kl_ww + g * ke_ww + lam * np.eye(len(w)), v[w])
            vh = v.copy()
            vh[cold] = (kl + g * ke) @ alpha
            show(f"ALS, kernel ridge: {nfit} books, emb x {g}, lambda {lam}", u[users] @ vh.T)
    # bookrec's choice: each cold book's own fit on its m nearest rated books
    # (by the same kernel), emb x 2, lambda 0.3
    w = warm
    kl = (x[cold] @ x[w].T).toarray() + 2.0 * (e[cold] @ e[w].T)
    for m in (64, 128, 256):
        vh = v.copy()
        for i, c in enumerate(cold):
            near = w[np.argsort(-kl[i], kind="stable")[:m]]
            kk = (x[near] @ x[near].T).toarray() + 2.0 * (e[near] @ e[near].T)
            kc = (x[c] @ x[near].T).toarray().ravel() + 2.0 * (e[near] @ e[c])
            vh[c] = kc @ np.linalg.solve(kk + 0.3 * np.eye(m), v[near])
        show(f"ALS, local kernel ridge: the {m} nearest rated books", u[users] @ vh.T)


if __name__ == "__main__":
    main()
