/*
 * content_lex.c: the lexical half of the `content` engine. Beside the
 * reader's sentence-embedding profile (hybrid.c), each reader gets a
 * sparse profile over the catalogue's lexical model (content/lexical.h:
 * words, authors, series, tags): the feedback rule's, as the embedding
 * profile's: unit(liked books' rows x rating, strongest 256 terms) less
 * BR_DISLIKE_PULL unit(disliked books' rows, strongest 64 terms). The engine's score
 * of a book is (1 - mix) * embedding cosine + mix * lexical cosine; mix and
 * the field weights were chosen on a validation split (docs/content.md).
 * Only the `content` engine (and what reads it: the default hybrid's
 * content component) uses this; the notebook's content engines do not.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "content/lexical.h"
#include "hybrid/hybrid_internal.h"

/* Terms kept per reader profile: scores cost the profile's document
 * frequencies, and beyond a few hundred terms the tail is noise. */
#define LEX_LIKED_TERMS    256
#define LEX_DISLIKED_TERMS 64
#define LEX_PROFILE_TERMS  (LEX_LIKED_TERMS + LEX_DISLIKED_TERMS)
/* The lexical share of the content score (validation, docs/content.md). */
#define LEX_MIX 0.5f

/* The books of a reader's profile, split by the feedback rule
 * (br_rating_weight, as br__feedback_profile): liked books weighted by
 * the rating (none liked: every book not disliked), into books/w (*np of
 * them); disliked books weighted by |weight|, into dis/dw (*nn). */
static void profile_books(const br_hybrid *h, uint32_t u, uint32_t *books, float *w, size_t *np,
                          uint32_t *dis, float *dw, size_t *nn)
{
    uint64_t lo = h->r.indptr[u], hi = h->r.indptr[u + 1];
    int any_liked = 0;
    for (uint64_t q = lo; q < hi; q++)
        any_liked |= br_rating_weight(h->r.values[q], h->umean[u]) > 0;
    *np = *nn = 0;
    for (uint64_t q = lo; q < hi; q++) {
        float v = h->r.values[q], wt = br_rating_weight(v, h->umean[u]);
        if (wt < 0) {
            dis[*nn] = h->r.indices[q];
            dw[(*nn)++] = -wt;
            continue;
        }
        if (any_liked && wt == 0) continue;
        books[*np] = h->r.indices[q];
        w[(*np)++] = wt > 0 ? wt : v > 0 ? v : 1e-6f;
    }
}

/* out = unit(a - pull b) over the union of two term-sorted sparse
 * vectors; returns its length. */
static uint32_t merge_less(const uint32_t *ta, const float *va, uint32_t na, const uint32_t *tb,
                           const float *vb, uint32_t nb, float pull, uint32_t *to, float *vo)
{
    uint32_t i = 0, j = 0, n = 0;
    while (i < na || j < nb) {
        if (j == nb || (i < na && ta[i] < tb[j]))
            to[n] = ta[i], vo[n++] = va[i++];
        else if (i == na || tb[j] < ta[i])
            to[n] = tb[j], vo[n++] = -pull * vb[j++];
        else
            to[n] = ta[i], vo[n++] = va[i++] - pull * vb[j++];
    }
    double s2 = 0;
    for (uint32_t p = 0; p < n; p++) s2 += (double)vo[p] * vo[p];
    if (s2 > 0)
        for (uint32_t p = 0; p < n; p++) vo[p] = (float)(vo[p] / sqrt(s2));
    return n;
}

br_status br__hybrid_lex_model(br_hybrid *h, const br_catalog *cat)
{
    if (h->lex || !cat || br_catalog_count(cat) != h->n_books) return BR_OK;
    br__lex_options lo;
    br__lex_options_default(&lo);
    br_status st = br__lex_build(cat, &lo, &h->lex);
    if (st) return st;
    /* The identity terms, for the re-ranker's same-author and same-series
     * features. */
    uint32_t nt = h->lex->x.cols;
    h->term_kind = br_calloc((size_t)nt + 1, 1);
    if (!h->term_kind) return br_error(BR_ENOMEM, "hybrid: lexical model");
    for (uint32_t t = 0; t < nt; t++) {
        const char *name = br_idmap_name(h->lex->vocab, t);
        if (!strncmp(name, "a:", 2))
            h->term_kind[t] = HY_TERM_AUTHOR;
        else if (!strncmp(name, "s:", 2))
            h->term_kind[t] = HY_TERM_SERIES;
    }
    return BR_OK;
}

br_status br__hybrid_lex_fit(br_hybrid *h, const br_catalog *cat, const br_engine *engines,
                             size_t n_engines)
{
    /* Only the engines that rank by the content engine's whole row read
     * it, and the re-ranker's lexical feature (the default hybrid's
     * content component is the embedding profile's: mixing the lexical
     * cosine into it lost on validation, docs/content.md; as a feature of
     * its own the re-ranker weighs it). */
    int wanted = 0;
    for (size_t i = 0; i < n_engines; i++)
        wanted |= engines[i] == BR_ENGINE_CONTENT || engines[i] == BR_ENGINE_RRF ||
                  engines[i] == BR_ENGINE_RANK_FUSION ||
                  (engines[i] == BR_ENGINE_HYBRID && h->opt.rerank);
    if (!wanted) return BR_OK;
    br_status st = br__hybrid_lex_model(h, cat);
    /* no catalogue, or not this one: the embedding profile alone */
    if (st || !h->lex) return st;
    h->lex_mix = LEX_MIX;
    const uint32_t T = LEX_PROFILE_TERMS;
    /* Scratch bound: a reader's books and the sum of their row lengths. */
    uint64_t most = 0, most_books = 0;
    for (uint32_t u = 0; u < h->n_users; u++) {
        uint64_t s = 0;
        for (uint64_t q = h->r.indptr[u]; q < h->r.indptr[u + 1]; q++) {
            uint32_t b = h->r.indices[q];
            s += h->lex->x.indptr[b + 1] - h->lex->x.indptr[b];
        }
        if (s > most) most = s;
        if (h->r.indptr[u + 1] - h->r.indptr[u] > most_books)
            most_books = h->r.indptr[u + 1] - h->r.indptr[u];
    }
    h->lexp_n = br_calloc((size_t)h->n_users + 1, sizeof *h->lexp_n);
    h->lexp_terms = br_malloc((size_t)h->n_users * T * sizeof *h->lexp_terms + 4);
    h->lexp_vals = br_malloc((size_t)h->n_users * T * sizeof *h->lexp_vals + 4);
    if (!h->lexp_n || !h->lexp_terms || !h->lexp_vals)
        return br_error(BR_ENOMEM, "hybrid: lexical profiles");
    int bad = 0;
#pragma omp parallel num_threads(br_get_num_threads())
    {
        float *acc = br_calloc((size_t)h->lex->x.cols + 1, sizeof *acc);
        uint32_t *terms = br_malloc((most + 1) * sizeof *terms);
        float *vals = br_malloc((most + 1) * sizeof *vals);
        uint32_t *books = br_malloc((most_books + 1) * sizeof *books);
        float *w = br_malloc((most_books + 1) * sizeof *w);
        uint32_t *dis = br_malloc((most_books + 1) * sizeof *dis);
        float *dw = br_malloc((most_books + 1) * sizeof *dw);
        uint32_t pt[LEX_PROFILE_TERMS];
        float pv[LEX_PROFILE_TERMS];
        int ok = acc && terms && vals && books && w && dis && dw;
        if (!ok) {
#pragma omp atomic write
            bad = 1;
        }
        /* every thread meets the loop (and its barrier), even one without
         * scratch: skipping it left the others waiting there for ever */
        {
#pragma omp for schedule(dynamic, 64)
            for (uint32_t u = 0; u < h->n_users; u++) {
                if (!ok) continue;
                size_t np, nn;
                profile_books(h, u, books, w, &np, dis, dw, &nn);
                uint32_t k =
                    br__lex_profile(h->lex, books, w, np, LEX_LIKED_TERMS, acc, terms, vals);
                memcpy(pt, terms, k * sizeof *terms);
                memcpy(pv, vals, k * sizeof *vals);
                uint32_t kn =
                    br__lex_profile(h->lex, dis, dw, nn, LEX_DISLIKED_TERMS, acc, terms, vals);
                /* the feedback rule: unit(likes) - BR_DISLIKE_PULL unit(dislikes) */
                h->lexp_n[u] =
                    merge_less(pt, pv, k, terms, vals, kn, k ? BR_DISLIKE_PULL : 1.0f,
                               h->lexp_terms + (size_t)u * T, h->lexp_vals + (size_t)u * T);
            }
        }
        br_free(acc);
        br_free(terms);
        br_free(vals);
        br_free(books);
        br_free(w);
        br_free(dis);
        br_free(dw);
    }
    if (bad) return br_error(BR_ENOMEM, "hybrid: lexical profiles");
    return BR_OK;
}

void br__hybrid_lex_free(br_hybrid *h)
{
    br__lex_free(h->lex);
    br_free(h->term_kind);
    br_free(h->lexp_n);
    br_free(h->lexp_terms);
    br_free(h->lexp_vals);
}

void br__hybrid_lex_block(const br_hybrid *h, const uint32_t *users, size_t nb, float *s)
{
    if (!h->lexp_n) return;
    uint32_t nbk = h->n_books;
    float a = h->lex_mix;
#pragma omp parallel for schedule(dynamic, 4) num_threads(br_get_num_threads())
    for (size_t j = 0; j < nb; j++) {
        float *row = s + j * nbk;
        uint32_t u = users[j];
        for (uint32_t i = 0; i < nbk; i++) row[i] *= 1.0f - a;
        br__lex_scores(h->lex, h->lexp_terms + (size_t)u * LEX_PROFILE_TERMS,
                       h->lexp_vals + (size_t)u * LEX_PROFILE_TERMS, h->lexp_n[u], a, row);
    }
}

float br__hybrid_lex1(const br_hybrid *h, uint32_t u, uint32_t b)
{
    if (!h->lexp_n) return 0.0f;
    return br__lex_dot(h->lex, h->lexp_terms + (size_t)u * LEX_PROFILE_TERMS,
                       h->lexp_vals + (size_t)u * LEX_PROFILE_TERMS, h->lexp_n[u], b);
}
