/*
 * ease.c: the weighted item-item model (EASE, Steck 2019) on the M most
 * rated books.
 *
 * EASE learns B minimising |X - X B|^2 + lambda |B|^2 with diag(B) = 0; the
 * closed form is B = I - P diag(1 / diag P), P = (X^T X + lambda I)^-1. Two
 * departures from the paper, both measured (docs/evaluation.md):
 *  - X_ui is a weight of the rating, not 1: relevance is "rated >= 4", and
 *    a 2-star rating says less about what a reader likes than a 5-star one;
 *  - only the M books with the most ratings take part. The Gram matrix is
 *    M x M whatever the catalogue (100,000 books would need a 40 GB dense
 *    inverse); books outside it are left to the other engines. On goodbooks
 *    M = 4000 loses 0.002 NDCG@10 against all 10,000 books and solves in
 *    about a second instead of minutes.
 * The Gram is formed from the sparse columns (one output row per thread,
 * no atomics), the inverse by LAPACK Cholesky (spotrf + spotri).
 */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/collab.h"

struct br_ease {
    uint32_t m, n_books;
    uint32_t *items; /* (m,) book of each slot */
    int32_t *slot;   /* (n_books,) slot of each book or -1 */
    float *b;        /* (m, m) */
    float weight[5];
};

static inline float rating_weight(const float *w, float r)
{
    int i = (int)lrintf(r);
    if (i < 1) i = 1;
    if (i > 5) i = 5;
    return w[i - 1];
}

void br_ease_free(br_ease *m)
{
    if (!m) return;
    br_free(m->items);
    br_free(m->slot);
    br_aligned_free(m->b);
    br_free(m);
}

uint32_t br_ease_items(const br_ease *m) { return m->m; }
const uint32_t *br_ease_item_ids(const br_ease *m) { return m->items; }
const float *br_ease_matrix(const br_ease *m) { return m->b; }

int32_t br_ease_slot(const br_ease *m, uint32_t book)
{
    return book < m->n_books ? m->slot[book] : -1;
}

typedef struct count_idx {
    uint64_t count;
    uint32_t idx;
} count_idx;

static int cmp_count(const void *a, const void *b)
{
    const count_idx *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* The M most-rated books (ties: lower index), in that order; books without
 * a rating never take part. Returns M. */
static uint32_t pick_items(const br_csr *rt, uint32_t max_items, uint32_t *items)
{
    count_idx *c = br_malloc(((size_t)rt->rows + 1) * sizeof *c);
    if (!c) return UINT32_MAX;
    uint32_t n = 0;
    for (uint32_t i = 0; i < rt->rows; i++) {
        uint64_t cnt = rt->indptr[i + 1] - rt->indptr[i];
        if (cnt) c[n++] = (count_idx){cnt, i};
    }
    qsort(c, n, sizeof *c, cmp_count);
    uint32_t m = max_items && max_items < n ? max_items : n;
    for (uint32_t i = 0; i < m; i++) items[i] = c[i].idx;
    br_free(c);
    return m;
}

static br_status check_opt(const br_ease_options *o)
{
    if (!(o->lambda > 0)) return br_error(BR_EINVAL, "ease: lambda must be positive");
    for (int i = 0; i < 5; i++)
        if (!isfinite(o->weight[i]))
            return br_error(BR_EINVAL, "ease: rating weights must be finite");
    return BR_OK;
}

br_status br_ease_fit(const br_csr *r, const br_csr *rt_in, const br_ease_options *opt,
                      br_ease **out)
{
    br_ease_options o = opt ? *opt : (br_ease_options)BR_EASE_OPTIONS_DEFAULT;
    *out = NULL;
    br_status st = check_opt(&o);
    if (st) return st;
    br_csr rt_own = {0};
    const br_csr *rt = rt_in;
    if (!rt) {
        if ((st = br_csr_transpose(r, &rt_own))) return st;
        rt = &rt_own;
    }
    br_ease *e = br_calloc(1, sizeof *e);
    if (!e) {
        br_csr_free(&rt_own);
        return br_error(BR_ENOMEM, "ease");
    }
    memcpy(e->weight, o.weight, sizeof e->weight);
    e->n_books = r->cols;
    e->items = br_malloc(((size_t)r->cols + 1) * sizeof *e->items);
    e->slot = br_malloc(((size_t)r->cols + 1) * sizeof *e->slot);
    if (!e->items || !e->slot) {
        st = br_error(BR_ENOMEM, "ease");
        goto fail;
    }
    e->m = pick_items(rt, o.max_items, e->items);
    if (e->m == UINT32_MAX) {
        st = br_error(BR_ENOMEM, "ease");
        goto fail;
    }
    if (e->m == 0) {
        st = br_error(BR_EINVAL, "ease: no ratings to learn from");
        goto fail;
    }
    for (uint32_t i = 0; i < r->cols; i++) e->slot[i] = -1;
    for (uint32_t s = 0; s < e->m; s++) e->slot[e->items[s]] = (int32_t)s;

    size_t m = e->m;
    e->b = br_aligned_alloc(m * m * sizeof(float) + 64, BR_ALIGN);
    if (!e->b) {
        st = br_error(BR_ENOMEM, "ease: %zu x %zu matrix", m, m);
        goto fail;
    }
    float *g = e->b; /* the Gram, then its inverse, then B: one M x M buffer */
    memset(g, 0, m * m * sizeof(float));
    const int32_t *slot = e->slot;
    /* Row a of X^T X: sum over the readers of book a of x_ua * X_u, kept to
     * the lower triangle (column <= a), which is all spotrf reads. */
#pragma omp parallel for schedule(dynamic, 16) num_threads(br_get_num_threads())
    for (size_t a = 0; a < m; a++) {
        uint32_t book = e->items[a];
        float *row = g + a * m;
        for (uint64_t p = rt->indptr[book]; p < rt->indptr[book + 1]; p++) {
            uint32_t u = rt->indices[p];
            float xa = rating_weight(o.weight, rt->values[p]);
            for (uint64_t q = r->indptr[u]; q < r->indptr[u + 1]; q++) {
                int32_t s = slot[r->indices[q]];
                if (s >= 0 && (size_t)s <= a) row[s] += xa * rating_weight(o.weight, r->values[q]);
            }
        }
        row[a] += o.lambda;
    }
    lapack_int info = LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)m, g, (lapack_int)m);
    if (info == 0) info = LAPACKE_spotri(LAPACK_ROW_MAJOR, 'L', (lapack_int)m, g, (lapack_int)m);
    if (info != 0) {
        st = br_error(BR_EINTERNAL, "ease: Cholesky inverse failed (LAPACK info %d)", (int)info);
        goto fail;
    }
    /* P is in the lower triangle; B_ij = -P_ij / P_jj, zero diagonal. The
     * upper triangle is filled from the lower one first (it holds junk). */
    for (size_t i = 0; i < m; i++)
        for (size_t j = i + 1; j < m; j++) g[i * m + j] = g[j * m + i];
    float *inv_diag = br_malloc(m * sizeof *inv_diag);
    if (!inv_diag) {
        st = br_error(BR_ENOMEM, "ease");
        goto fail;
    }
    for (size_t j = 0; j < m; j++) inv_diag[j] = -1.0f / g[j * m + j];
#pragma omp parallel for schedule(static) num_threads(br_get_num_threads())
    for (size_t i = 0; i < m; i++) {
        float *row = g + i * m;
        for (size_t j = 0; j < m; j++) row[j] *= inv_diag[j];
        row[i] = 0.0f;
    }
    br_free(inv_diag);
    br_csr_free(&rt_own);
    *out = e;
    return BR_OK;
fail:
    br_csr_free(&rt_own);
    br_ease_free(e);
    return st;
}

br_status br_ease_score(const br_ease *m, size_t n, const uint32_t *books, const float *ratings,
                        uint32_t n_books, float *out)
{
    if (n_books != m->n_books)
        return br_error(BR_EINVAL, "ease: %u books asked, the model has %u", n_books, m->n_books);
    float *acc = br_aligned_alloc((size_t)m->m * sizeof(float) + 64, BR_ALIGN);
    if (!acc) return br_error(BR_ENOMEM, "ease: scores");
    memset(acc, 0, (size_t)m->m * sizeof(float));
    for (size_t q = 0; q < n; q++) {
        if (books[q] >= n_books) {
            br_aligned_free(acc);
            return br_error(BR_EINVAL, "ease: book index %u out of range", books[q]);
        }
        int32_t s = m->slot[books[q]];
        if (s < 0) continue;
        cblas_saxpy((int)m->m, rating_weight(m->weight, ratings[q]), m->b + (size_t)s * m->m, 1,
                    acc, 1);
    }
    for (uint32_t i = 0; i < n_books; i++) out[i] = -INFINITY;
    for (uint32_t s = 0; s < m->m; s++) out[m->items[s]] = acc[s];
    br_aligned_free(acc);
    return BR_OK;
}

br_status br_ease_reference(const br_csr *r, const br_ease_options *opt, uint32_t *items,
                            uint32_t *m_out, float *b)
{
    br_ease_options o = opt ? *opt : (br_ease_options)BR_EASE_OPTIONS_DEFAULT;
    br_status st = check_opt(&o);
    if (st) return st;
    br_csr rt = {0};
    if ((st = br_csr_transpose(r, &rt))) return st;
    uint32_t m = pick_items(&rt, o.max_items, items);
    br_csr_free(&rt);
    if (m == UINT32_MAX) return br_error(BR_ENOMEM, "ease reference");
    *m_out = m;
    /* Dense X (users, m), G = X^T X + lambda I, inverse by Gauss-Jordan
     * with partial pivoting, all in double. */
    double *x = br_calloc((size_t)r->rows * m + 1, sizeof *x);
    double *a = br_calloc((size_t)m * 2 * m + 1, sizeof *a);
    if (!x || !a) {
        br_free(x);
        br_free(a);
        return br_error(BR_ENOMEM, "ease reference");
    }
    for (uint32_t u = 0; u < r->rows; u++)
        for (uint64_t q = r->indptr[u]; q < r->indptr[u + 1]; q++)
            for (uint32_t s = 0; s < m; s++)
                if (items[s] == r->indices[q])
                    x[(size_t)u * m + s] = rating_weight(o.weight, r->values[q]);
    size_t w = 2 * (size_t)m;
    for (uint32_t i = 0; i < m; i++) {
        for (uint32_t j = 0; j < m; j++) {
            double sum = 0;
            for (uint32_t u = 0; u < r->rows; u++)
                sum += x[(size_t)u * m + i] * x[(size_t)u * m + j];
            a[i * w + j] = sum + (i == j ? o.lambda : 0);
        }
        a[i * w + m + i] = 1;
    }
    for (uint32_t c = 0; c < m; c++) {
        uint32_t piv = c;
        for (uint32_t i = c + 1; i < m; i++)
            if (fabs(a[i * w + c]) > fabs(a[piv * w + c])) piv = i;
        if (piv != c)
            for (size_t j = 0; j < w; j++) {
                double t = a[c * w + j];
                a[c * w + j] = a[piv * w + j];
                a[piv * w + j] = t;
            }
        double d = a[c * w + c];
        for (size_t j = 0; j < w; j++) a[c * w + j] /= d;
        for (uint32_t i = 0; i < m; i++) {
            if (i == c) continue;
            double f = a[i * w + c];
            if (f != 0)
                for (size_t j = 0; j < w; j++) a[i * w + j] -= f * a[c * w + j];
        }
    }
    for (uint32_t i = 0; i < m; i++)
        for (uint32_t j = 0; j < m; j++)
            b[(size_t)i * m + j] =
                i == j ? 0.0f : (float)(-a[i * w + m + j] / a[j * w + m + j]);
    br_free(x);
    br_free(a);
    return BR_OK;
}
