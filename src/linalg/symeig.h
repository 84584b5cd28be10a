/*
 * symeig.h (internal): the few largest eigenpairs of a small dense symmetric
 * matrix, for Rayleigh-Ritz steps (the block Krylov PCA) where LAPACK's
 * dsyevr spends most of its time on call overhead at sizes of 32-64.
 */
#ifndef BR_LINALG_SYMEIG_H
#define BR_LINALG_SYMEIG_H

#include <stddef.h>

/* Doubles of work br__symeig_top needs for an l x l matrix. */
#define BR_SYMEIG_WORK(l) ((l) * (l) + 9 * (l))

/* The k largest eigenvalues of the symmetric a (l, l) (row-major, both
 * triangles filled; not modified) and their eigenvectors: w (k,) ascending
 * (the k-th largest first, the largest last, as LAPACK's dsyevr orders a
 * range of indices), v (l, k) by columns (v[c * l + i]: entry i of the
 * vector for w[c]), unit length and orthogonal to each other.
 *
 * Householder tridiagonalisation, the eigenvalues by Sturm-count
 * multisection (eight shifts a round), the vectors by inverse iteration on
 * the tridiagonal (orthogonalised against each other for close
 * eigenvalues), each eigenvalue finally the Rayleigh quotient of its
 * vector. Accurate to a few ulps of |a| for eigenvalues separated by more
 * than ~1e-10 |a|; within such a cluster the vectors are an orthonormal
 * basis of its eigenspace. work: BR_SYMEIG_WORK(l) doubles. Returns 0, or
 * -1 for k = 0, k > l or a non-finite input. */
int br__symeig_top(const double *a, size_t l, size_t k, double *w, double *v, double *work);

#endif /* BR_LINALG_SYMEIG_H */
