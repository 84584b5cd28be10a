/*
 * bookrec/sparse.h: sparse matrices (CSR, and CSC as the CSR of the
 * transpose) built from ratings, their products with dense blocks, and the
 * truncated SVD the collaborative engine is built on.
 *
 * Storage: column indices are 32-bit (a dimension is a uint32_t, so they
 * always fit); row pointers are 64-bit, because the number of stored entries
 * may pass 2^32 and the pointer array is a small fraction of the matrix
 * (8 bytes per row against 8 bytes per entry). Dense blocks are row-major
 * float32 with the shape in the comment.
 */
#ifndef BOOKREC_SPARSE_H
#define BOOKREC_SPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/core.h"
#include "bookrec/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ CSR -- */

/* A rows x cols matrix in compressed sparse rows: the entries of row r are
 * indices/values[indptr[r] .. indptr[r+1]), columns strictly increasing.
 * A CSC matrix is the CSR of its transpose (br_csr_transpose). The arrays
 * belong to the struct; release them with br_csr_free. A zeroed struct is
 * a valid empty value. */
typedef struct br_csr {
    uint32_t rows, cols;
    uint64_t nnz;
    uint64_t *indptr;  /* (rows + 1,) */
    uint32_t *indices; /* (nnz,) */
    float *values;     /* (nnz,) */
} br_csr;

/* Builds a CSR matrix from coordinates (any order): a counting sort by row,
 * then each row sorted by column. A repeated (row, col) pair or an index out
 * of range fails with BR_EINVAL. values may be NULL (every entry 1). */
BR_API br_status br_csr_from_coo(uint32_t rows, uint32_t cols, size_t nnz, const uint32_t *row_idx,
                                 const uint32_t *col_idx, const float *values, br_csr *out);

/* The users x books rating matrix (dense indices of `r`; books: the whole
 * catalogue, so books without ratings are empty columns). */
BR_API br_status br_csr_from_ratings(const br_ratings *r, br_csr *out);

/* out = a^T in CSR (equivalently: a in CSC), in one counting pass. */
BR_API br_status br_csr_transpose(const br_csr *a, br_csr *out);

BR_API void br_csr_free(br_csr *a);
/* Bytes held by the arrays. */
BR_API size_t br_csr_memory(const br_csr *a);

/* y (a->rows, k) = a (rows, cols) . x (a->cols, k). OpenMP over rows.
 * For a^T . x pass the transpose (br_csr_transpose): every output row is
 * then written by one thread, without atomics. */
BR_API void br_csr_mm(const br_csr *a, const float *x, size_t k, float *y);
BR_API void br_csr_mm_ref(const br_csr *a, const float *x, size_t k, float *y);

/* --------------------------------------------------------- truncated SVD -- */

typedef enum br_svd_method {
    BR_SVD_AUTO = 0,       /* exact when the smaller side is <= BR_SVD_EXACT_MAX */
    BR_SVD_EXACT = 1,      /* LAPACK, through the Gram matrix of the smaller side */
    BR_SVD_RANDOMIZED = 2, /* Halko, Martinsson & Tropp (2011) */
} br_svd_method;

/* The exact route eigen-decomposes a min(rows, cols)^2 double matrix. */
#define BR_SVD_EXACT_MAX 4096

typedef struct br_svd_options {
    uint32_t k; /* singular triplets wanted (<= min(rows, cols)) */
    br_svd_method method;
    uint32_t oversample; /* randomized: extra columns in the range sketch */
    int power_iters;     /* randomized: subspace iterations; < 0: automatic */
    uint64_t seed;       /* randomized: Gaussian test matrix */
    uint32_t block;      /* randomized: Krylov block size; 0: automatic */
} br_svd_options;

#define BR_SVD_OPTIONS_DEFAULT                                                                     \
    {                                                                                              \
        50, BR_SVD_AUTO, 10, -1, 42, 0                                                             \
    }

/* a ~= u diag(s) v^T, singular values in decreasing order. When k exceeds
 * the rank, the trailing s are 0 and their u, v columns are 0. */
typedef struct br_svd {
    uint32_t rows, cols, k;
    br_svd_method method; /* the route actually taken */
    int power_iters;      /* randomized: the count used */
    uint32_t block;       /* randomized: the block size used */
    float *s;             /* (k,) */
    float *u;             /* (rows, k) */
    float *v;             /* (cols, k) */
} br_svd;

/* Truncated SVD of a sparse matrix. `at` is a's transpose (CSC of a); pass
 * NULL and it is built (and freed) here. Never forms a dense rows x cols
 * matrix. Reports progress as "svd". Release with br_svd_free. */
BR_API br_status br_svd_compute(const br_csr *a, const br_csr *at, const br_svd_options *opt,
                                br_svd *out);
BR_API void br_svd_free(br_svd *svd);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_SPARSE_H */
