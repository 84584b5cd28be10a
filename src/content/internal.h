/*
 * internal.h (content module): declarations shared by the module's files
 * and its tests, not part of the public API: the plain reference kernels
 * that serve as test oracles, and the single-restart k-means entry.
 */
#ifndef BR_CONTENT_INTERNAL_H
#define BR_CONTENT_INTERNAL_H

#include "bookrec/content.h"

/* br_topk_search without BLAS, blocking or heaps: every score, a full
 * sort. The oracle for br_topk_search. */
br_status br__topk_search_ref(const float *base, size_t n, size_t dim, const float *queries,
                             size_t nq, size_t k, const uint8_t *exclude, int32_t *ids,
                             float *scores);

/* One k-means run from given initial centres (k, dim), in place on
 * centroids; labels (n,). tol_abs is the absolute centre-shift tolerance.
 * algo LLOYD or HAMERLY. Returns the iterations run and the inertia. */
br_status br__kmeans_run(const float *x, size_t n, size_t dim, uint32_t k, br_kmeans_algo algo,
                        uint32_t max_iter, double tol_abs, float *centroids, int32_t *labels,
                        double *inertia, uint32_t *iterations, uint32_t *reseeded);

/* Plain Lloyd: double-precision distances point by point, no BLAS, no
 * bounds; same empty-cluster rule. The oracle for br__kmeans_run. */
br_status br__kmeans_run_ref(const float *x, size_t n, size_t dim, uint32_t k, uint32_t max_iter,
                            double tol_abs, float *centroids, int32_t *labels, double *inertia,
                            uint32_t *iterations, uint32_t *reseeded);

/* k-means++ seeding (greedy, 2 + floor(ln k) trials) into centroids (k, dim). */
br_status br__kmeans_plusplus(const float *x, const float *xsq, size_t n, size_t dim, uint32_t k,
                             uint64_t seed, float *centroids);

/* The tolerance scikit-learn uses: tol * mean over features of the variance. */
double br__kmeans_tol(const float *x, size_t n, size_t dim, double tol);

#endif
