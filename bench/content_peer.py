#!/usr/bin/env python3
"""bench/content_peer.py: the TF-IDF reader-profile peer of issue 18 on a
split written by `bookrec eval --protocol P --write-split DIR`.

Each book's text is its title, authors, tags and description (books.csv;
bookrec's book index is the catalogue's row order). TF-IDF (scikit-learn,
English stop words, sublinear tf, rows L2-normalised); a reader's profile
is the rating-weighted mean of the TF-IDF rows of their train.csv books
(for the readers protocol, fold_in.csv's readers' rows are their fold-in
history: nothing here is fitted on ratings, so they are used the same
way); score = cosine to the profile; training books are never ranked;
with candidates.csv (cold-books) only those books are. Metrics as
bookrec's (src/eval/metrics.c): readers with a held-out rating >= 4;
binary relevance, log2 discount, ideal = min(cut, relevant); P/R/NDCG/MAP
at k, and NDCG@10, recall@20, recall@50, NDCG@100. Ties go to the lower
book index. Prints one JSON object (and writes it to --json).
"""
import argparse
import csv
import json
import os
import sys
import time

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

DEEP = 100


def book_texts(path):
    """Texts in bookrec's catalogue order: first appearance of an id; a
    repeated id's later row replaces the earlier (src/data/catalog.c)."""
    index, texts = {}, []
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            t = " ".join(
                [row.get("title") or "", (row.get("authors") or "").replace(",", " "),
                 (row.get("tags") or "").replace("|", " "), row.get("description") or ""])
            i = index.setdefault(row["book_id"], len(texts))
            if i == len(texts):
                texts.append(t)
            else:
                texts[i] = t
    return texts


def read_triples(path):
    a = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    if a.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2]


def read_ids(path):
    if not os.path.exists(path):
        return None
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=1).astype(np.int64)


def list_metrics(row, rel, cut):
    hits, dcg, ap = 0, 0.0, 0.0
    for i, b in enumerate(row[:cut]):
        if b >= 0 and b in rel:
            hits += 1
            dcg += 1.0 / np.log2(i + 2.0)
            ap += hits / (i + 1)
    ideal = min(cut, len(rel))
    idcg = sum(1.0 / np.log2(i + 2.0) for i in range(ideal))
    return hits / cut, hits / len(rel), dcg / idcg, ap / ideal


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--books", required=True)
    ap.add_argument("--split", required=True, help="a directory of bookrec eval --write-split")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json", help="also write the result here")
    a = ap.parse_args()
    t0 = time.time()
    meta = json.load(open(os.path.join(a.split, "meta.json")))
    n_users, n_books = meta["readers"], meta["books"]
    texts = book_texts(a.books)
    if len(texts) != n_books:
        sys.exit(f"content_peer: {a.books} has {len(texts)} books, the split {n_books}")
    X = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit_transform(texts)
    X = sp.csr_matrix(X, dtype=np.float64)
    tu, tb, tv = read_triples(os.path.join(a.split, "train.csv"))
    su, sb, sv = read_triples(os.path.join(a.split, "test.csv"))
    cand = read_ids(os.path.join(a.split, "candidates.csv"))
    fit_s = time.time() - t0

    W = sp.csr_matrix((tv, (tu, tb)), shape=(n_users, n_books))
    rel = {}
    for u, b, v in zip(su, sb, sv):
        if v >= 4:
            rel.setdefault(int(u), set()).add(int(b))
    users = np.array(sorted(rel), dtype=np.int64)
    depth = max(a.k, DEEP)
    allowed = None
    if cand is not None:
        allowed = np.zeros(n_books, bool)
        allowed[cand] = True
    sums = np.zeros(8)
    shown = np.zeros(n_books, bool)
    t1 = time.time()
    for lo in range(0, len(users), 512):
        blk = users[lo:lo + 512]
        Wb = W[blk]
        # rating-weighted mean, then cosine: the mean's scale does not matter
        P = (Wb @ X).toarray()
        nrm = np.linalg.norm(P, axis=1, keepdims=True)
        P /= np.where(nrm > 0, nrm, 1)
        S = np.asarray(X @ P.T).T  # (block, books)
        S[Wb.nonzero()] = -np.inf
        if allowed is not None:
            S[:, ~allowed] = -np.inf
        for j, u in enumerate(blk):
            s = S[j]
            # highest first, ties to the lower index; -inf never ranks
            part = np.argpartition(-s, min(depth, n_books - 1))[:depth + 1]
            order = part[np.lexsort((part, -s[part]))][:depth]
            order = np.where(np.isfinite(s[order]), order, -1)
            r = rel[int(u)]
            m = list_metrics(order, r, a.k)
            sums[:4] += m
            sums[4] += list_metrics(order, r, 10)[2]
            sums[5] += list_metrics(order, r, 20)[1]
            sums[6] += list_metrics(order, r, 50)[1]
            sums[7] += list_metrics(order, r, DEEP)[2]
            top = order[:a.k]
            shown[top[top >= 0]] = True
    n = max(len(users), 1)
    k = a.k
    out = {"peer": "tfidf-profile", "protocol": meta.get("protocol", "random"),
           "readers_ranked": int(len(users)),
           f"precision@{k}": sums[0] / n, f"recall@{k}": sums[1] / n, f"ndcg@{k}": sums[2] / n,
           f"map@{k}": sums[3] / n, f"coverage@{k}": float(shown.mean()),
           "ndcg@10": sums[4] / n, "recall@20": sums[5] / n, "recall@50": sums[6] / n,
           "ndcg@100": sums[7] / n, "fit_s": fit_s, "recommend_s": time.time() - t1,
           "vocabulary": int(X.shape[1])}
    text = json.dumps(out, indent=1)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
