/*
 * pca.h (internal): the LAPACK-free PCA reference, the test oracle of
 * br_pca_fit (include/bookrec/content.h).
 */
#ifndef BR_LINALG_PCA_H
#define BR_LINALG_PCA_H

#include "bookrec/content.h"

/* Same contract as br_pca_fit: double-precision covariance accumulated
 * point by point, all eigenpairs by cyclic Jacobi rotations, the same sign
 * convention. O(dim^3) per sweep: for small matrices only. */
br_status br__pca_fit_ref(const float *x, size_t n, size_t dim, size_t n_components, br_pca *out);

/* br_pca_fit with the eigen route chosen: AUTO (what br_pca_fit does:
 * KRYLOV for dim >= 128, n >= 64, n_components <= 12), EXACT (covariance,
 * Lanczos else dsyevr), KRYLOV (block Krylov on the implicit centred
 * operator; falls back to EXACT when it does not converge, or when
 * n_components > 12 or dim < 32). *used (may be NULL) gets the route that
 * produced the result. For tests and benchmarks. */
typedef enum br_pca_route { BR_PCA_AUTO = 0, BR_PCA_EXACT = 1, BR_PCA_KRYLOV = 2 } br_pca_route;
br_status br__pca_fit_route(const float *x, size_t n, size_t dim, size_t n_components,
                           br_pca_route route, br_pca *out, br_pca_route *used);

/* Applies the sign convention to one component (d,): the entry of largest
 * magnitude (first on ties) becomes positive. */
void br__pca_fix_sign(double *v, size_t d);

#endif
