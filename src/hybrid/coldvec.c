/*
 * coldvec.c: collaborative vectors for books nobody has rated yet. Implicit
 * ALS leaves such a book's item factors at zero (no rating pulls them
 * anywhere), so every engine that reads ALS (the `als` engine, the default
 * hybrid's candidates and features, train's published lists) could never
 * rank it. Here its factors are predicted from its content: a kernel ridge
 * regression from the book's content to its ALS item factors, fitted on
 * rated books (the ones whose factors the ratings did pin down),
 *
 *   K = L L^T + g E E^T          (m, m) over the m fitting books
 *   A = (K + lambda I)^-1 V      (m, k) V their item factors
 *   v_c = k_c A                  k_c (m,) the same kernel, cold book c
 *
 * with L the lexical model's L2-normalised TF-IDF rows (content/lexical.h:
 * words, authors, series, tags) and E the sentence embeddings. The kernel
 * form lets the lexical part stay sparse (tens of thousands of terms, a few
 * hundred per book) and weighs the features by what the ratings say about
 * them rather than by hand. A cold book's reader score is then the usual
 * u . v_c: the reader's own collaborative taste applied to a book seen
 * only through its text. Measured against the neighbour average of the
 * k most similar rated books and against the reader's TF-IDF profile in
 * docs/content.md ("Books nobody has rated").
 *
 * Each cold book has a fit of its own on its COLD_LOCAL nearest rated
 * books by that kernel (a local kernel ridge): one global fit over every
 * rated book is an n x n Cholesky (goodbooks: 9,000 books, 2.4e11 flops
 * and a 324 MB kernel), ranked worse (one fit serves every region of the
 * catalogue) and grows as n^3; the local fits cost n + m^3 / 3 per cold
 * book, whatever the catalogue.
 */
#include <cblas.h>
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

#include "collab/collab_internal.h"
#include "content/lexical.h"
#include "core/topk.h"
#include "hybrid/hybrid_internal.h"

/* Rated books each cold book's fit uses: its nearest by the kernel. */
#define COLD_LOCAL 128
/* Weight of the embedding kernel beside the lexical one, and the ridge:
 * chosen on goodbooks' cold-books split of seed 42 (bench/coldvec_choice.py,
 * docs/content.md); seeds 7 and 2026 were not used to choose them. */
#define COLD_EMB    2.0f
#define COLD_LAMBDA 0.3f

/* Row i of a kernel: out[j] += sum_t L[b, t] L[fit[j], t] for the fitting
 * books j < lim (pos[book]: its place among them, -1 for the others). */
static void lex_row(const br__lex *lx, uint32_t b, const int32_t *pos, int32_t lim, float *out)
{
    const br_csr *x = &lx->x, *xt = &lx->xt;
    for (uint64_t p = x->indptr[b]; p < x->indptr[b + 1]; p++) {
        uint32_t t = x->indices[p];
        float v = x->values[p];
        for (uint64_t q = xt->indptr[t]; q < xt->indptr[t + 1]; q++) {
            int32_t j = pos[xt->indices[q]];
            if (j >= 0 && j < lim) out[j] += v * xt->values[q];
        }
    }
}

/* One thread's buffers for the local fits. */
typedef struct cold_local {
    float *dense; /* (lexical terms,) one book's row scattered, zero between uses */
    uint32_t *id; /* (COLD_LOCAL,) the local books (indices into fit[]) */
    float *sc;    /* (COLD_LOCAL,) their kernel values to the cold book */
    float *kk;    /* (COLD_LOCAL, COLD_LOCAL) */
    float *el;    /* (COLD_LOCAL, dim) */
    float *a;     /* (COLD_LOCAL, k) */
} cold_local;

static void cold_local_free(cold_local *w)
{
    br_free(w->dense);
    br_free(w->id);
    br_free(w->sc);
    br_aligned_free(w->kk);
    br_aligned_free(w->el);
    br_aligned_free(w->a);
}

static br_status cold_local_alloc(cold_local *w, uint32_t terms, size_t dim, uint32_t k)
{
    memset(w, 0, sizeof *w);
    w->dense = br_calloc((size_t)terms + 1, sizeof *w->dense);
    w->id = br_malloc(COLD_LOCAL * sizeof *w->id);
    w->sc = br_malloc(COLD_LOCAL * sizeof *w->sc);
    w->kk = br_aligned_alloc((size_t)COLD_LOCAL * COLD_LOCAL * sizeof(float) + 64, BR_ALIGN);
    w->el = br_aligned_alloc((size_t)COLD_LOCAL * dim * sizeof(float) + 64, BR_ALIGN);
    w->a = br_aligned_alloc((size_t)COLD_LOCAL * k * sizeof(float) + 64, BR_ALIGN);
    if (!w->dense || !w->id || !w->sc || !w->kk || !w->el || !w->a) {
        cold_local_free(w);
        return BR_ENOMEM;
    }
    return BR_OK;
}

/* One cold book: row (n,) its kernel values to the rated books fit[];
 * the kernel ridge fit on its COLD_LOCAL nearest of them, into v (k,).
 * Returns 0, or -1 when the local kernel is not positive definite. */
static int cold_local_fit(const br_hybrid *h, const br_cf_model *m, const uint32_t *fit, size_t n,
                          const float *row, cold_local *w, float *v)
{
    size_t dim = h->dim;
    uint32_t k = m->k;
    br__topk t = {COLD_LOCAL, 0, w->sc, w->id};
    for (uint32_t j = 0; j < n; j++) br__topk_push(&t, row[j], j);
    uint32_t l = br__topk_sort(&t, 0);
    for (uint32_t a = 0; a < l; a++) {
        uint32_t b = fit[w->id[a]];
        memcpy(w->el + (size_t)a * dim, h->emb + (size_t)b * dim, dim * sizeof(float));
        memcpy(w->a + (size_t)a * k, m->item_f + (size_t)b * k, k * sizeof(float));
    }
    /* K's lower triangle: g E E^T, then the lexical part, + lambda I */
    cblas_ssyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)l, (int)dim, COLD_EMB, w->el,
                (int)dim, 0.0f, w->kk, (int)l);
    /* the lexical part pair by pair: row a scattered, dotted with rows <= a */
    const br_csr *x = &h->lex->x;
    for (uint32_t a = 0; a < l; a++) {
        uint32_t ba = fit[w->id[a]];
        for (uint64_t e = x->indptr[ba]; e < x->indptr[ba + 1]; e++)
            w->dense[x->indices[e]] = x->values[e];
        for (uint32_t b = 0; b <= a; b++) {
            uint32_t bb = fit[w->id[b]];
            float d = 0;
            for (uint64_t e = x->indptr[bb]; e < x->indptr[bb + 1]; e++)
                d += w->dense[x->indices[e]] * x->values[e];
            w->kk[(size_t)a * l + b] += d;
        }
        for (uint64_t e = x->indptr[ba]; e < x->indptr[ba + 1]; e++) w->dense[x->indices[e]] = 0;
        w->kk[(size_t)a * l + a] += COLD_LAMBDA;
    }
    lapack_int info = LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)l, w->kk, (lapack_int)l);
    if (!info)
        info = LAPACKE_spotrs(LAPACK_ROW_MAJOR, 'L', (lapack_int)l, (lapack_int)k, w->kk,
                              (lapack_int)l, w->a, (lapack_int)k);
    if (info) return -1;
    /* v = k_c A over the local books (their kernel values, w->sc) */
    cblas_sgemv(CblasRowMajor, CblasTrans, (int)l, (int)k, 1.0f, w->a, (int)k, w->sc, 1, 0.0f, v,
                1);
    return 0;
}

br_status br__hybrid_cold_factors(br_hybrid *h, const br_catalog *cat, const br_csr *rt)
{
    br_cf_model *m = h->cf[BR_ENGINE_ALS];
    if (!h->opt.cold_books || !m || !m->k || !h->emb || !cat || br_catalog_count(cat) != h->n_books)
        return BR_OK;
    uint64_t t0 = br_now_ns();
    uint32_t nb = h->n_books, k = m->k;
    size_t dim = h->dim, n_cold = 0, n = 0;
    for (uint32_t b = 0; b < nb; b++) n_cold += rt->indptr[b + 1] == rt->indptr[b];
    if (!n_cold || n_cold == nb) return BR_OK;
    br_status st = br__hybrid_lex_model(h, cat);
    if (st) return st;
    uint32_t *fit = br_malloc((size_t)nb * sizeof *fit);
    int32_t *pos = br_malloc((size_t)nb * sizeof *pos);
    uint32_t *cold = br_malloc(n_cold * sizeof *cold);
    float *ew = NULL, *kc = NULL, *vc = NULL;
    if (!fit || !pos || !cold) {
        st = br_error(BR_ENOMEM, "hybrid: cold books");
        goto out;
    }
    n_cold = 0;
    for (uint32_t b = 0; b < nb; b++) {
        pos[b] = -1;
        if (rt->indptr[b + 1] > rt->indptr[b])
            pos[b] = (int32_t)n, fit[n++] = b;
        else
            cold[n_cold++] = b;
    }
    /* Each cold book's kernel row over the rated books: g E_c E_w^T by
     * blocks of cold books (bounded memory), the lexical part by the
     * inverted index; then its COLD_LOCAL nearest and their local fit. */
    const size_t blk = 256;
    ew = br_aligned_alloc(n * dim * sizeof(float) + 64, BR_ALIGN);
    kc = br_aligned_alloc(blk * (n + dim) * sizeof(float) + 64, BR_ALIGN);
    vc = br_aligned_alloc(n_cold * k * sizeof(float) + 64, BR_ALIGN);
    if (!ew || !kc || !vc) {
        st = br_error(BR_ENOMEM, "hybrid: cold books");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(ew + i * dim, h->emb + (size_t)fit[i] * dim, dim * sizeof(float));
    int bad = 0;
    for (size_t c0 = 0; c0 < n_cold && !bad; c0 += blk) {
        size_t nc = n_cold - c0 < blk ? n_cold - c0 : blk;
        float *ec = kc + blk * n; /* (nc, dim) */
        for (size_t c = 0; c < nc; c++)
            memcpy(ec + c * dim, h->emb + (size_t)cold[c0 + c] * dim, dim * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nc, (int)n, (int)dim, COLD_EMB,
                    ec, (int)dim, ew, (int)dim, 0.0f, kc, (int)n);
#pragma omp parallel num_threads(br_get_num_threads())
        {
            cold_local w;
            int ok = cold_local_alloc(&w, h->lex->x.cols, dim, k) == BR_OK;
            if (!ok) {
#pragma omp atomic write
                bad = 1;
            }
#pragma omp for schedule(dynamic, 4)
            for (size_t c = 0; c < nc; c++) {
                if (!ok) continue;
                float *row = kc + c * n;
                lex_row(h->lex, cold[c0 + c], pos, (int32_t)n, row);
                if (cold_local_fit(h, m, fit, n, row, &w, vc + (c0 + c) * k)) {
#pragma omp atomic write
                    bad = 2;
                }
            }
            cold_local_free(&w);
        }
    }
    if (bad) {
        st = bad == 1 ? br_error(BR_ENOMEM, "hybrid: cold books")
                      : br_error(BR_EINTERNAL, "hybrid: cold books: a kernel is not positive "
                                               "definite");
        goto out;
    }
    for (size_t c = 0; c < n_cold; c++)
        memcpy(m->item_f + (size_t)cold[c] * k, vc + c * k, k * sizeof(float));
    /* Y^T Y again: fold-in reads it, and the cold books are items like any
     * other. */
    if (m->yty) br__cf_item_gram(m, m->yty);
    /* the default hybrid's candidate source of its own (candidates.c) */
    h->cold = cold, cold = NULL;
    h->n_cold = (uint32_t)n_cold;
    br_log(BR_LOG_INFO, "cold books: %u ALS vectors predicted from %zu rated books in %.2f s",
           h->n_cold, n, (double)(br_now_ns() - t0) / 1e9);
out:
    br_aligned_free(ew);
    br_aligned_free(kc);
    br_aligned_free(vc);
    br_free(fit);
    br_free(pos);
    br_free(cold);
    return st;
}
