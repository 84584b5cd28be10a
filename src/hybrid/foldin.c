/*
 * foldin.c: the two things the evaluation protocols other than the
 * per-reader hold-out ask of a fitted hybrid (docs/evaluation.md).
 *
 * Readers out of training (opt.fold_in): their ratings are in h->r, so
 * everything computed per reader from it (the item-item row sums, the
 * content profile, the favourite and latest book, the reader's mean) sees
 * them, but the books' side is fitted on h->r without their rows, and the
 * factor models' rows for them are then the fold-in of their ratings
 * against the final item factors (br_cf_fold_in): what a reader who
 * arrives after training gets, without a refit.
 *
 * Restricted lists (opt.rank_only): books outside the set never rank.
 */
#include <math.h>
#include <string.h>

#include "collab/collab_internal.h"
#include "hybrid/hybrid_internal.h"

br_status br__hybrid_item_ratings(const br_hybrid *h, br_csr *out)
{
    const br_csr *r = &h->r;
    const uint8_t *fold = h->opt.fold_in;
    size_t nnz = 0;
    for (uint32_t u = 0; u < r->rows; u++)
        if (!fold[u]) nnz += r->indptr[u + 1] - r->indptr[u];
    uint32_t *ui = br_malloc((nnz + 1) * sizeof *ui), *bi = br_malloc((nnz + 1) * sizeof *bi);
    float *v = br_malloc((nnz + 1) * sizeof *v);
    br_status st = BR_OK;
    if (!ui || !bi || !v) st = br_error(BR_ENOMEM, "hybrid: item ratings");
    size_t w = 0;
    for (uint32_t u = 0; !st && u < r->rows; u++)
        for (uint64_t q = r->indptr[u]; !fold[u] && q < r->indptr[u + 1]; q++)
            ui[w] = u, bi[w] = r->indices[q], v[w++] = r->values[q];
    if (!st) st = br_csr_from_coo(r->rows, r->cols, w, ui, bi, v, out);
    br_free(ui);
    br_free(bi);
    br_free(v);
    return st;
}

br_status br__hybrid_fold_in(br_hybrid *h)
{
    const br_csr *r = &h->r;
    for (int e = 0; e < 4; e++) {
        br_cf_model *m = h->cf[e];
        if (!m || !m->k) continue; /* popularity: nothing per reader */
        for (uint32_t u = 0; u < h->n_users; u++) {
            if (!h->opt.fold_in[u]) continue;
            uint64_t lo = r->indptr[u];
            float bias = 0;
            br_status st = br_cf_fold_in(m, r->indptr[u + 1] - lo, r->indices + lo, r->values + lo,
                                         m->user_f + (size_t)u * m->k, &bias);
            if (st) return st;
            if (m->user_b) m->user_b[u] = bias;
        }
    }
    return BR_OK;
}

void br__hybrid_restrict_row(const br_hybrid *h, float *row)
{
    const uint8_t *only = h->opt.rank_only;
    for (uint32_t b = 0; only && b < h->n_books; b++)
        if (!only[b]) row[b] = -INFINITY;
}
