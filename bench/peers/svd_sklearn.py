#!/usr/bin/env python3
"""svd_sklearn.py: the peer of `bench_collab svd`: scikit-learn's TruncatedSVD
(randomized, the notebook's own call) on the same reader x book matrix, one
JSON line per run with seconds and the relative reconstruction error
sqrt(1 - sum(s^2) / |A|_F^2) (TruncatedSVD's U S V^T is A projected onto
span(U), so this is |A - U S V^T|_F / |A|_F exactly).

    svd_sklearn.py --ratings R [--factors 50] [--power-iters 5] [--repeat 1]
                   [--dtype float32|float64]
"""
import argparse
import json
import sys
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
import sklearn
from threadpoolctl import threadpool_info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ratings", required=True)
    ap.add_argument("--factors", type=int, default=50)
    ap.add_argument("--power-iters", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dtype", default="float32")
    a = ap.parse_args()
    t0 = time.perf_counter()
    # Ids as pandas infers them (integers here); factorize hashes, no sort.
    df = pd.read_csv(a.ratings, dtype={"rating": np.float32})
    ui, users = pd.factorize(df["user_id"])
    bi, books = pd.factorize(df["book_id"])
    m = sp.csr_matrix((df["rating"].to_numpy().astype(a.dtype), (ui, bi)),
                      shape=(len(users), len(books)))
    load = time.perf_counter() - t0
    print(f"svd_sklearn: {m.shape[0]} x {m.shape[1]}, {m.nnz} ratings, built in {load:.1f} s",
          file=sys.stderr)
    norm2 = float(np.sum(m.data.astype(np.float64) ** 2))
    for _ in range(a.repeat):
        svd = TruncatedSVD(n_components=a.factors, algorithm="randomized",
                           n_iter=a.power_iters, random_state=42)
        t0 = time.perf_counter()
        svd.fit(m)
        t = time.perf_counter() - t0
        s = svd.singular_values_.astype(np.float64)
        err = float(np.sqrt(max(0.0, 1.0 - np.sum(s ** 2) / norm2)))
        print(json.dumps({"kind": "svd", "impl": "sklearn", "method": "randomized",
                          "factors": a.factors, "power_iters": a.power_iters,
                          "dtype": a.dtype, "sklearn": sklearn.__version__,
                          "blas": [i.get("internal_api") + ":" + str(i.get("architecture"))
                                   for i in threadpool_info()],
                          "seconds": round(t, 4), "relative_error": round(err, 8),
                          "s0": float(s[0]), "s_last": float(s[-1])}), flush=True)


if __name__ == "__main__":
    main()
