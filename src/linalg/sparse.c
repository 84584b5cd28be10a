/*
 * sparse.c: CSR matrices: construction from coordinates (the ratings
 * arrays), transposition (CSC), and the sparse x dense-block product that
 * the randomized SVD and the fold-in step are made of.
 *
 * Construction is a counting sort: one pass to count entries per row, one
 * to scatter them, then each row sorted by column in parallel (rows are
 * short, so an insertion sort does most of them). Transposition is the same
 * counting sort by column; scanning rows in order leaves every column's row
 * indices already increasing.
 */
#include "bookrec/sparse.h"
#include "core/isa.h"

#include <stdlib.h>
#include <string.h>

void br_csr_free(br_csr *a)
{
    if (!a) return;
    br_free(a->indptr);
    br_free(a->indices);
    br_free(a->values);
    memset(a, 0, sizeof *a);
}

size_t br_csr_memory(const br_csr *a)
{
    if (!a || !a->indptr) return 0;
    return ((size_t)a->rows + 1) * sizeof(uint64_t) +
           (size_t)a->nnz * (sizeof(uint32_t) + sizeof(float));
}

static br_status csr_alloc(br_csr *m, uint32_t rows, uint32_t cols, uint64_t nnz)
{
    memset(m, 0, sizeof *m);
    m->rows = rows;
    m->cols = cols;
    m->nnz = nnz;
    m->indptr = br_calloc((size_t)rows + 1, sizeof(uint64_t));
    m->indices = br_malloc((size_t)nnz * sizeof(uint32_t));
    m->values = br_malloc((size_t)nnz * sizeof(float));
    if (!m->indptr || !m->indices || !m->values) {
        br_csr_free(m);
        return br_error(BR_ENOMEM, "sparse matrix: %u x %u with %llu entries", rows, cols,
                        (unsigned long long)nnz);
    }
    return BR_OK;
}

/* Sorts one row's (column, value) pairs by column. Insertion sort for short
 * rows; longer ones go through a 64-bit key (column in the high half, the
 * value's bits in the low half) and qsort. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void sort_row(uint32_t *idx, float *val, size_t n, uint64_t *scratch)
{
    if (n <= 48) {
        for (size_t i = 1; i < n; i++) {
            uint32_t c = idx[i];
            float v = val[i];
            size_t j = i;
            for (; j > 0 && idx[j - 1] > c; j--) {
                idx[j] = idx[j - 1];
                val[j] = val[j - 1];
            }
            idx[j] = c;
            val[j] = v;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &val[i], sizeof bits);
        scratch[i] = ((uint64_t)idx[i] << 32) | bits;
    }
    qsort(scratch, n, sizeof *scratch, cmp_u64);
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)scratch[i];
        idx[i] = (uint32_t)(scratch[i] >> 32);
        memcpy(&val[i], &bits, sizeof bits);
    }
}

br_status br_csr_from_coo(uint32_t rows, uint32_t cols, size_t nnz, const uint32_t *row_idx,
                          const uint32_t *col_idx, const float *values, br_csr *out)
{
    if (!out || (nnz && (!row_idx || !col_idx)))
        return br_error(BR_EINVAL, "br_csr_from_coo: NULL argument");
    memset(out, 0, sizeof *out);
    for (size_t e = 0; e < nnz; e++)
        if (row_idx[e] >= rows || col_idx[e] >= cols)
            return br_error(BR_EINVAL, "br_csr_from_coo: entry %zu at (%u, %u) outside %u x %u", e,
                            row_idx[e], col_idx[e], rows, cols);
    br_csr m;
    br_status st = csr_alloc(&m, rows, cols, nnz);
    if (st) return st;
    for (size_t e = 0; e < nnz; e++) m.indptr[row_idx[e] + 1]++;
    size_t longest = 0;
    for (uint32_t r = 0; r < rows; r++) {
        size_t len = m.indptr[r + 1];
        if (len > longest) longest = len;
        m.indptr[r + 1] += m.indptr[r];
    }
    uint64_t *next = br_malloc(((size_t)rows + 1) * sizeof *next);
    if (!next) {
        br_csr_free(&m);
        return br_error(BR_ENOMEM, "br_csr_from_coo: row cursors");
    }
    memcpy(next, m.indptr, ((size_t)rows + 1) * sizeof *next);
    for (size_t e = 0; e < nnz; e++) {
        uint64_t p = next[row_idx[e]]++;
        m.indices[p] = col_idx[e];
        m.values[p] = values ? values[e] : 1.0f;
    }
    br_free(next);

    int failed = 0;
    int64_t dup_row = -1;
#pragma omp parallel num_threads(br_get_num_threads())
    {
        uint64_t *scratch = longest > 48 ? br_malloc(longest * sizeof *scratch) : NULL;
        if (longest > 48 && !scratch) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1024)
        for (int64_t r = 0; r < (int64_t)rows; r++) {
            if (failed) continue;
            uint64_t b = m.indptr[r], e = m.indptr[r + 1];
            sort_row(m.indices + b, m.values + b, e - b, scratch);
            for (uint64_t p = b + 1; p < e; p++)
                if (m.indices[p] == m.indices[p - 1]) {
#pragma omp critical(br_csr_dup)
                    if (dup_row < 0 || r < dup_row) dup_row = r;
                }
        }
        br_free(scratch);
    }
    if (failed) {
        br_csr_free(&m);
        return br_error(BR_ENOMEM, "br_csr_from_coo: sort buffer");
    }
    if (dup_row >= 0) {
        br_csr_free(&m);
        return br_error(BR_EINVAL, "br_csr_from_coo: row %lld has a repeated column",
                        (long long)dup_row);
    }
    *out = m;
    return BR_OK;
}

br_status br_csr_from_ratings(const br_ratings *r, br_csr *out)
{
    if (!r || !out) return br_error(BR_EINVAL, "br_csr_from_ratings: NULL argument");
    return br_csr_from_coo(br_ratings_num_users(r), br_ratings_num_books(r), br_ratings_count(r),
                           br_ratings_users(r), br_ratings_books(r), br_ratings_values(r), out);
}

br_status br_csr_transpose(const br_csr *a, br_csr *out)
{
    if (!a || !out) return br_error(BR_EINVAL, "br_csr_transpose: NULL argument");
    br_csr t;
    br_status st = csr_alloc(&t, a->cols, a->rows, a->nnz);
    if (st) return st;
    for (uint64_t p = 0; p < a->nnz; p++) t.indptr[a->indices[p] + 1]++;
    for (uint32_t c = 0; c < a->cols; c++) t.indptr[c + 1] += t.indptr[c];
    uint64_t *next = br_malloc(((size_t)a->cols + 1) * sizeof *next);
    if (!next) {
        br_csr_free(&t);
        return br_error(BR_ENOMEM, "br_csr_transpose: column cursors");
    }
    memcpy(next, t.indptr, ((size_t)a->cols + 1) * sizeof *next);
    for (uint32_t r = 0; r < a->rows; r++)
        for (uint64_t p = a->indptr[r]; p < a->indptr[r + 1]; p++) {
            uint64_t q = next[a->indices[p]]++;
            t.indices[q] = r;
            t.values[q] = a->values[p];
        }
    br_free(next);
    *out = t;
    return BR_OK;
}

/* The inner loop runs over the k columns of the dense block: contiguous in
 * both x and y, so it vectorises. The library is built for baseline x86-64,
 * so the row kernels are compiled for AVX2 and AVX-512 too and the
 * process's SIMD level picks one (core/isa.h). */
static inline BR_ISA_BODY void csr_mm_row_body(const br_csr *a, const float *x, size_t k, float *yr,
                                               uint32_t r)
{
    for (size_t j = 0; j < k; j++) yr[j] = 0.0f;
    for (uint64_t p = a->indptr[r]; p < a->indptr[r + 1]; p++) {
        const float v = a->values[p];
        const float *xr = x + (size_t)a->indices[p] * k;
#pragma omp simd
        for (size_t j = 0; j < k; j++) yr[j] += v * xr[j];
    }
}
BR_ISA_VARIANTS(csr_mm_row, (const br_csr *a, const float *x, size_t k, float *yr, uint32_t r),
                (a, x, k, yr, r))

/* Fixed widths (the SVD's Krylov block is 16 columns): the accumulator row
 * is a compile-time array the compiler keeps in registers for the whole
 * row instead of a load and store per entry; two entries per step give the
 * gathers independent FMA chains. */
#define BR_CSR_MM_FIXED(W)                                                                         \
    static inline BR_ISA_BODY void csr_mm_rows_##W##_body(const br_csr *a, const float *x,         \
                                                          float *y, int64_t r0, int64_t r1)        \
    {                                                                                              \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            float acc[W], acc2[W];                                                                 \
            for (int j = 0; j < W; j++) acc[j] = acc2[j] = 0.0f;                                   \
            uint64_t p = a->indptr[r], e = a->indptr[r + 1];                                       \
            for (; p + 1 < e; p += 2) {                                                            \
                const float v0 = a->values[p], v1 = a->values[p + 1];                              \
                const float *x0 = x + (size_t)a->indices[p] * W;                                   \
                const float *x1 = x + (size_t)a->indices[p + 1] * W;                               \
                for (int j = 0; j < W; j++) {                                                      \
                    acc[j] += v0 * x0[j];                                                          \
                    acc2[j] += v1 * x1[j];                                                         \
                }                                                                                  \
            }                                                                                      \
            if (p < e) {                                                                           \
                const float v0 = a->values[p];                                                     \
                const float *x0 = x + (size_t)a->indices[p] * W;                                   \
                for (int j = 0; j < W; j++) acc[j] += v0 * x0[j];                                  \
            }                                                                                      \
            float *yr = y + (size_t)r * W;                                                         \
            for (int j = 0; j < W; j++) yr[j] = acc[j] + acc2[j];                                  \
        }                                                                                          \
    }                                                                                              \
    BR_ISA_VARIANTS(csr_mm_rows_##W,                                                               \
                    (const br_csr *a, const float *x, float *y, int64_t r0, int64_t r1),           \
                    (a, x, y, r0, r1))
BR_CSR_MM_FIXED(16)
BR_CSR_MM_FIXED(32)

/* Rows are spread over threads in chunks because their lengths vary a lot
 * (a few readers rate thousands of books). Below 16M entry-columns (goodbooks'
 * 300k ratings x 16) a pass takes about a millisecond and waking a second thread costs
 * more than it saves, so small products run on the calling thread. */
void br_csr_mm(const br_csr *a, const float *x, size_t k, float *y)
{
    int nt = br_get_num_threads();
    if ((uint64_t)a->nnz * k < (1u << 24)) nt = 1;
    if (k == 16 || k == 32) {
        const int64_t chunk = 64, rows = a->rows;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
        for (int64_t c = 0; c < (rows + chunk - 1) / chunk; c++) {
            int64_t r1 = (c + 1) * chunk < rows ? (c + 1) * chunk : rows;
            if (k == 16)
                BR_ISA_CALL(csr_mm_rows_16, (a, x, y, c * chunk, r1));
            else
                BR_ISA_CALL(csr_mm_rows_32, (a, x, y, c * chunk, r1));
        }
        return;
    }
#pragma omp parallel for schedule(dynamic, 64) num_threads(nt) if (nt > 1)
    for (int64_t r = 0; r < (int64_t)a->rows; r++)
        BR_ISA_CALL(csr_mm_row, (a, x, k, y + (size_t)r * k, (uint32_t)r));
}

void br_csr_mm_ref(const br_csr *a, const float *x, size_t k, float *y)
{
    for (uint32_t r = 0; r < a->rows; r++)
        for (size_t j = 0; j < k; j++) {
            double acc = 0.0;
            for (uint64_t p = a->indptr[r]; p < a->indptr[r + 1]; p++)
                acc += (double)a->values[p] * x[(size_t)a->indices[p] * k + j];
            y[(size_t)r * k + j] = (float)acc;
        }
}
