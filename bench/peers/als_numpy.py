#!/usr/bin/env python3
"""als_numpy.py: the peer of `bench_collab als`: implicit-feedback ALS (Hu,
Koren & Volinsky; confidence 1 + alpha * r) written plainly with numpy and
scipy.sparse, the way a Python recommender usually does it: per row, the
normal equations (Y^T Y + Y_u^T (C_u - I) Y_u + lambda I) x = Y_u^T c_u and
numpy.linalg.solve. Items first, then users, like bookrec.

On a big matrix one iteration takes long, so --max-seconds bounds each
half-step: the rows solved in that time give the rate, and the half-step's
time is extrapolated to all rows (reported with "extrapolated": true).

    als_numpy.py --ratings R [--factors 64] [--iterations 2]
                 [--max-seconds 60] [--alpha 1] [--lambda 0.1]
"""
import argparse
import json
import sys
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp


def solve_side(r, y, x, lam, alpha, budget):
    """Rows of x given the other side's factors y; r is rows x others CSR."""
    k = y.shape[1]
    yty = y.T @ y
    reg = lam * np.eye(k, dtype=y.dtype)
    t0 = time.perf_counter()
    done = 0
    n = r.shape[0]
    for u in range(n):
        lo, hi = r.indptr[u], r.indptr[u + 1]
        if hi == lo:
            x[u] = 0
        else:
            idx = r.indices[lo:hi]
            c = 1.0 + alpha * r.data[lo:hi]
            yu = y[idx]
            a = yty + (yu.T * (c - 1.0)) @ yu + reg
            x[u] = np.linalg.solve(a, yu.T @ c)
        done += 1
        if budget and (done & 255) == 0 and time.perf_counter() - t0 > budget:
            break
    t = time.perf_counter() - t0
    return t * n / done, done < n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ratings", required=True)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=0)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--lambda", dest="lam", type=float, default=0.1)
    a = ap.parse_args()
    # Ids as pandas infers them (integers here); factorize hashes, no sort.
    df = pd.read_csv(a.ratings, dtype={"rating": np.float32})
    ui, users = pd.factorize(df["user_id"])
    bi, books = pd.factorize(df["book_id"])
    r = sp.csr_matrix((df["rating"].to_numpy(), (ui, bi)), shape=(len(users), len(books)))
    rt = r.T.tocsr()
    print(f"als_numpy: {r.shape[0]} x {r.shape[1]}, {r.nnz} ratings", file=sys.stderr)
    rng = np.random.default_rng(42)
    x = ((rng.random((r.shape[0], a.factors)) - 0.5) * 0.02).astype(np.float32)
    y = ((rng.random((r.shape[1], a.factors)) - 0.5) * 0.02).astype(np.float32)
    times, partial = [], False
    for it in range(a.iterations):
        ti, pi = solve_side(rt, x, y, a.lam, a.alpha, a.max_seconds)
        tu, pu = solve_side(r, y, x, a.lam, a.alpha, a.max_seconds)
        times.append(ti + tu)
        partial = partial or pi or pu
        print(f"  iteration {it + 1}: {ti + tu:.2f} s{' (extrapolated)' if pi or pu else ''}",
              file=sys.stderr)
    print(json.dumps({"kind": "als", "impl": "numpy", "als": "implicit", "factors": a.factors,
                      "iterations": a.iterations, "extrapolated": partial,
                      "seconds_per_iteration": round(sum(times) / len(times), 4)}), flush=True)


if __name__ == "__main__":
    main()
