/*
 * topk.c: exact maximum-inner-product top-k. One query: sgemv over the
 * whole base, then a bounded heap. A batch: the base is cut into blocks of
 * TOPK_NB rows and the queries into blocks of TOPK_QB; each block pair is
 * one sgemm into a small score tile (which stays in cache), and each query
 * keeps its own heap (core/topk.h) across base blocks. Heap pushes are
 * almost all a single compare against the current k-th score, so the cost
 * is the sgemm.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "content/internal.h"
#include "content/vec.h"
#include "core/topk.h"

#define TOPK_NB                                                                                    \
    2048 /* base rows per tile: 2048 x 512 floats = 4 MB streamed once per query block */
#define TOPK_QB 128  /* queries per tile: the score tile is 128 x 2048 floats = 1 MB */

static br_status check_args(const float *base, size_t n, size_t dim, const float *queries,
                            size_t nq, size_t k, int32_t *ids, float *scores)
{
    if ((!base && n) || (!queries && nq) || dim == 0 || ((!ids || !scores) && nq && k))
        return br_error(BR_EINVAL, "topk: null buffer or zero dimension");
    if (n > INT32_MAX) return br_error(BR_ERANGE, "topk: %zu rows exceed int32 ids", n);
    return BR_OK;
}

br_status br_topk_search(const float *base, size_t n, size_t dim, const float *queries, size_t nq,
                         size_t k, const uint8_t *exclude, int32_t *ids, float *scores)
{
    br_status st = check_args(base, n, dim, queries, nq, k, ids, scores);
    if (st != BR_OK || nq == 0 || k == 0) return st;
    /* Each query's heap lives in its output row (k >= kk slots); the ids
     * are int32 there, read and written as their uint32 twins, and the
     * padding UINT32_MAX reads as -1. */
    uint32_t kk = (uint32_t)(k < n ? k : n);
    if (nq == 1) {
        float *s = br_aligned_alloc((n ? n : 1) * sizeof(float), BR_ALIGN);
        if (!s) return br_error(BR_ENOMEM, "topk: out of memory");
        if (n)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)dim, 1.0f, base, (int)dim,
                        queries, 1, 0.0f, s, 1);
        br__topk h = {kk, 0, scores, (uint32_t *)ids};
        br__topk_scan(&h, s, n, 0, exclude);
        br__topk_sort(&h, (uint32_t)k);
        br_aligned_free(s);
        return BR_OK;
    }

    size_t qb = nq < TOPK_QB ? nq : TOPK_QB;
    size_t nb = n < TOPK_NB ? (n ? n : 1) : TOPK_NB;
    float *tile = br_aligned_alloc(qb * nb * sizeof(float), BR_ALIGN);
    br__topk *heaps = br_calloc(nq, sizeof(br__topk));
    if (!tile || !heaps) {
        br_aligned_free(tile);
        br_free(heaps);
        return br_error(BR_ENOMEM, "topk: out of memory for %zu queries", nq);
    }
    for (size_t q = 0; q < nq; q++)
        heaps[q] = (br__topk){kk, 0, scores + q * k, (uint32_t *)(ids + q * k)};
    for (size_t q0 = 0; q0 < nq; q0 += qb) {
        size_t qn = nq - q0 < qb ? nq - q0 : qb;
        for (size_t b0 = 0; b0 < n; b0 += nb) {
            size_t bn = n - b0 < nb ? n - b0 : nb;
            // tile (qn, bn) = queries[q0:q0+qn] (qn, dim) . base[b0:b0+bn]^T (dim, bn)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qn, (int)bn, (int)dim, 1.0f,
                        queries + q0 * dim, (int)dim, base + b0 * dim, (int)dim, 0.0f, tile,
                        (int)bn);
#pragma omp parallel for schedule(static) num_threads(br_get_num_threads()) if (qn > 8)
            for (size_t q = 0; q < qn; q++)
                br__topk_scan(&heaps[q0 + q], tile + q * bn, bn, (uint32_t)b0, exclude);
        }
    }
    for (size_t q = 0; q < nq; q++) br__topk_sort(&heaps[q], (uint32_t)k);
    br_aligned_free(tile);
    br_free(heaps);
    return BR_OK;
}

/* ------------------------------------------------------------- reference -- */

typedef struct {
    double s;
    int32_t i;
} ref_pair;

static int ref_cmp(const void *a, const void *b)
{
    const ref_pair *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

br_status br__topk_search_ref(const float *base, size_t n, size_t dim, const float *queries,
                             size_t nq, size_t k, const uint8_t *exclude, int32_t *ids,
                             float *scores)
{
    br_status st = check_args(base, n, dim, queries, nq, k, ids, scores);
    if (st != BR_OK || nq == 0 || k == 0) return st;
    ref_pair *p = br_malloc((n ? n : 1) * sizeof *p);
    if (!p) return br_error(BR_ENOMEM, "topk_ref: out of memory");
    for (size_t q = 0; q < nq; q++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (exclude && exclude[i]) continue;
            p[m].s = br__cv_dot_ref(queries + q * dim, base + i * dim, dim);
            p[m].i = (int32_t)i;
            m++;
        }
        qsort(p, m, sizeof *p, ref_cmp);
        for (size_t j = 0; j < k; j++) {
            ids[q * k + j] = j < m ? p[j].i : -1;
            scores[q * k + j] = j < m ? (float)p[j].s : -INFINITY;
        }
    }
    br_free(p);
    return BR_OK;
}
