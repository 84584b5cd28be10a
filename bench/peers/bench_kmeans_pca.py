#!/usr/bin/env python3
"""bench_kmeans_pca.py: scikit-learn's KMeans and PCA timed on a .npy matrix,
the peer of `bookrec kmeans` and `bookrec pca` in bench/content.sh.

  bench_kmeans_pca.py X.npy --k 10 --n-init 10 --seed 42 --repeat 3 [--pca-repeat 20]
Prints one JSON line per algorithm: best seconds of --repeat fits (after a
warm-up fit on a small slice, so import and thread-pool start-up are not
counted), the inertia of the best fit, the explained variance ratios."""
import argparse, json, time
import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

ap = argparse.ArgumentParser()
ap.add_argument("x")
ap.add_argument("--k", type=int, default=10)
ap.add_argument("--n-init", type=int, default=10)
ap.add_argument("--seed", type=int, default=42)
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--pca-repeat", type=int, default=0, help="PCA fits timed (default: --repeat)")
ap.add_argument("--skip-kmeans", action="store_true")
a = ap.parse_args()
x = np.load(a.x).astype(np.float32)
KMeans(a.k, n_init=1, random_state=0).fit(x[: max(4 * a.k, 200)])
PCA(2).fit(x[:200])
if not a.skip_kmeans:
    best, inertia = 1e30, None
    for r in range(a.repeat):
        t = time.perf_counter()
        km = KMeans(n_clusters=a.k, n_init=a.n_init, random_state=a.seed).fit(x)
        s = time.perf_counter() - t
        if s < best:
            best = s
        inertia = km.inertia_ if inertia is None else min(inertia, km.inertia_)
    print(json.dumps({"impl": "sklearn", "algo": "kmeans", "n": x.shape[0], "dim": x.shape[1],
                      "k": a.k, "n_init": a.n_init, "best_s": best, "inertia": float(inertia)}))
times = []
for r in range(a.pca_repeat or a.repeat):
    t = time.perf_counter()
    p = PCA(n_components=2, random_state=a.seed).fit(x)
    p.transform(x)
    times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"impl": "sklearn", "algo": "pca", "n": x.shape[0], "dim": x.shape[1],
                  "best_s": times[0], "median_s": times[len(times) // 2],
                  "evr": [float(v) for v in p.explained_variance_ratio_]}))
