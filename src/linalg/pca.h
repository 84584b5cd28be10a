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
br_status br_pca_fit_ref(const float *x, size_t n, size_t dim, size_t n_components, br_pca *out);

/* Applies the sign convention to one component (d,): the entry of largest
 * magnitude (first on ties) becomes positive. */
void br_pca_fix_sign(double *v, size_t d);

#endif
