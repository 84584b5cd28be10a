/*
 * explain.c: why an engine recommends a book to a reader: each engine
 * part's own score, place in its own list and share of the final score,
 * and a sentence naming the reader's book that best explains it.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content/lexical.h"
#include "hybrid/hybrid_internal.h"

static const char *title_of(const br_catalog *cat, uint32_t b)
{
    return cat && b < br_catalog_count(cat) ? br_catalog_book(cat, b)->title : "?";
}

static float stars(const br_hybrid *h, uint32_t u, uint32_t b)
{
    for (uint64_t q = h->r.indptr[u]; q < h->r.indptr[u + 1]; q++)
        if (h->r.indices[q] == b) return h->r.values[q];
    return 0;
}

/* The rated book that best explains `book` under a pairwise similarity:
 * among the reader's liked books (the feedback rule, bookrec/data.h; the
 * neutral ones when none is liked), the one with the largest
 * sim(j, book). A disliked book is never a reason. */
typedef float (*pair_sim)(const br_hybrid *h, uint32_t j, uint32_t book);

static float sim_content(const br_hybrid *h, uint32_t j, uint32_t b)
{
    return cblas_sdot((int)h->dim, h->emb + (size_t)j * h->dim, 1, h->emb + (size_t)b * h->dim, 1);
}

static float sim_als(const br_hybrid *h, uint32_t j, uint32_t b)
{
    const br_cf_model *m = h->cf[BR_ENGINE_ALS];
    uint32_t k = br_cf_model_factors(m);
    const float *v = br_cf_model_item_factors(m);
    return cblas_sdot((int)k, v + (size_t)j * k, 1, v + (size_t)b * k, 1);
}

static float sim_ease(const br_hybrid *h, uint32_t j, uint32_t b)
{
    int32_t sj = br_ease_slot(h->ease, j), sb = br_ease_slot(h->ease, b);
    if (sj < 0 || sb < 0) return -INFINITY;
    uint32_t m = br_ease_items(h->ease);
    return br_ease_matrix(h->ease)[(size_t)sj * m + (size_t)sb];
}

static uint32_t best_reason(const br_hybrid *h, uint32_t u, uint32_t book, pair_sim sim)
{
    uint64_t lo = h->r.indptr[u], hi = h->r.indptr[u + 1];
    int any_liked = 0;
    for (uint64_t q = lo; q < hi; q++) any_liked |= br__hybrid_weight(h, u, q) > 0;
    uint32_t best = UINT32_MAX;
    float bs = -INFINITY;
    for (uint64_t q = lo; q < hi; q++) {
        float wq = br__hybrid_weight(h, u, q);
        if (wq < 0 || (any_liked && wq == 0)) continue;
        float s = sim(h, h->r.indices[q], book);
        if (s > bs) bs = s, best = h->r.indices[q];
    }
    return best;
}

/* A book nobody has rated (no training rating: its ALS vector came from
 * its content, coldvec.c): why, in the catalogue's words (the series, an
 * author, tags shared with a book the reader liked, the best rated first;
 * content/reason.c), else by its text's similarity. A disliked book is
 * never named (best_reason's rule). */
static void cold_words(const br_hybrid *h, const br_catalog *cat, uint32_t u, uint32_t book,
                       char *why, size_t cap)
{
    uint64_t lo = h->r.indptr[u], hi = h->r.indptr[u + 1];
    uint32_t *liked = cat ? br_malloc((hi - lo + 1) * sizeof *liked) : NULL;
    float *rated = cat ? br_malloc((hi - lo + 1) * sizeof *rated) : NULL;
    size_t n = 0;
    int any_liked = 0;
    for (uint64_t q = lo; q < hi; q++) any_liked |= br__hybrid_weight(h, u, q) > 0;
    /* the liked books, best rated first (a stable insertion: input order within a rating) */
    for (uint64_t q = lo; liked && rated && q < hi; q++) {
        float wq = br__hybrid_weight(h, u, q);
        if (wq < 0 || (any_liked && wq == 0)) continue;
        size_t i = n++;
        for (; i > 0 && rated[i - 1] < h->r.values[q]; i--)
            liked[i] = liked[i - 1], rated[i] = rated[i - 1];
        liked[i] = h->r.indices[q], rated[i] = h->r.values[q];
    }
    br__lex_reason rs;
    if (liked && rated && br__lex_reason_find(cat, book, liked, n, &rs)) {
        uint32_t j = liked[rs.which];
        static const char *const lead[] = {"", "in the *%s* series", "by %s", "tagged %s"};
        char head[160];
        snprintf(head, sizeof head, lead[rs.kind], rs.what);
        snprintf(why, cap, "nobody has rated it yet: %s, like *%s*, which you rated %g stars", head,
                 title_of(cat, j), (double)rated[rs.which]);
    } else {
        uint32_t j = h->emb ? best_reason(h, u, book, sim_content) : UINT32_MAX;
        if (j != UINT32_MAX)
            snprintf(why, cap,
                     "nobody has rated it yet: its text reads like *%s* (cosine %.2f), which you "
                     "rated %g stars",
                     title_of(cat, j), (double)sim_content(h, j, book), (double)stars(h, u, j));
        else
            snprintf(why, cap, "nobody has rated it yet: its content fits your taste");
    }
    br_free(liked);
    br_free(rated);
}

static void why_words(const br_hybrid *h, const br_catalog *cat, br_engine p, uint32_t u,
                      uint32_t book, float score, char *why, size_t cap)
{
    uint32_t j;
    switch (p) {
    case BR_ENGINE_POPULARITY: {
        uint64_t cnt = 0;
        for (uint64_t q = 0; q < h->r.nnz; q++) cnt += h->r.indices[q] == book;
        snprintf(why, cap, "one of the most-read books (%llu readers rated it)",
                 (unsigned long long)cnt);
        break;
    }
    case BR_ENGINE_SVD:
        snprintf(why, cap, "readers whose ratings resemble yours rated it (SVD score %.2f)",
                 (double)score);
        break;
    case BR_ENGINE_ALS_EXPLICIT:
        snprintf(why, cap, "readers with tastes like yours rate it: predicted %.1f stars",
                 (double)score);
        break;
    case BR_ENGINE_ALS:
        if (br__hybrid_is_cold(h, book)) {
            cold_words(h, cat, u, book, why, cap);
            break;
        }
        j = best_reason(h, u, book, sim_als);
        if (j != UINT32_MAX)
            snprintf(why, cap, "readers who read *%s* also read it", title_of(cat, j));
        else
            snprintf(why, cap, "readers with your taste read it");
        break;
    case BR_ENGINE_EASE:
        j = best_reason(h, u, book, sim_ease);
        if (j != UINT32_MAX && sim_ease(h, j, book) > 0)
            snprintf(why, cap, "readers who liked *%s* also liked it", title_of(cat, j));
        else
            snprintf(why, cap, "readers with your history liked it");
        break;
    case BR_ENGINE_CONTENT:
        j = best_reason(h, u, book, sim_content);
        if (j != UINT32_MAX)
            snprintf(why, cap, "because you rated *%s* %g stars (similar content, %.2f)",
                     title_of(cat, j), (double)stars(h, u, j), (double)sim_content(h, j, book));
        else
            snprintf(why, cap, "close to what you read");
        break;
    case BR_ENGINE_CONTENT_FAVOURITE:
        if (h->fav[u] != UINT32_MAX)
            snprintf(why, cap, "similar to your favourite *%s* (cosine %.2f)",
                     title_of(cat, h->fav[u]), (double)score);
        else
            snprintf(why, cap, "no favourite book yet");
        break;
    case BR_ENGINE_CONTENT_CLUSTER: {
        const char *name = "";
        int32_t t = br_hybrid_tribe(h, book, &name);
        if (*name)
            snprintf(why, cap, "from the *%s* tribe, like your favourite *%s*", name,
                     h->fav[u] != UINT32_MAX ? title_of(cat, h->fav[u]) : "?");
        else
            snprintf(why, cap, "from tribe %d, like your favourite *%s*", (int)t,
                     h->fav[u] != UINT32_MAX ? title_of(cat, h->fav[u]) : "?");
        break;
    }
    default:
        snprintf(why, cap, "ranked by %s", br_engine_name(p));
        break;
    }
}

/* Score of one book under engine e for reader u (the engine's own scale),
 * and the book's place in e's top `depth` (-1 beyond). */
static br_status score_and_rank(const br_hybrid *h, br_engine e, uint32_t u, uint32_t book,
                                uint32_t depth, float *score, int32_t *rank)
{
    br__hybrid_scratch sc = {0};
    br_status st = br__hybrid_scratch_alloc(h, &sc);
    if (!st) {
        if ((unsigned)e < HY_N_BASE)
            st = br__hybrid_base_scores(h, e, &u, 1, sc.a, sc.work);
        else
            st = br__hybrid_combine(h, e, &u, 1, depth, sc.a, &sc, 1);
    }
    if (!st) *score = sc.a[book];
    br__hybrid_scratch_free(&sc);
    if (st) return st;
    uint32_t *it = br_malloc(depth * sizeof *it);
    if (!it) return br_error(BR_ENOMEM, "explain");
    st = br__hybrid_rank_block(h, e, &u, 1, depth, it, NULL, 1);
    *rank = -1;
    for (uint32_t p = 0; !st && p < depth; p++)
        if (it[p] == book) *rank = (int32_t)p;
    br_free(it);
    return st;
}

br_status br_hybrid_explain(const br_hybrid *h, const br_catalog *cat, br_engine e, uint32_t user,
                            uint32_t book, br_explanation *out)
{
    memset(out, 0, sizeof *out);
    out->engine = e;
    if ((unsigned)e >= BR_ENGINE_COUNT || user >= h->n_users || book >= h->n_books)
        return br_error(BR_EINVAL, "explain: argument out of range");
    br_engine parts[BR_FUSION_MAX];
    float w[BR_FUSION_MAX];
    uint32_t np = 0, depth = 100;
    if (e == BR_ENGINE_NOTEBOOK_HYBRID) {
        parts[0] = BR_ENGINE_CONTENT_FAVOURITE, w[0] = h->opt.nb_content;
        parts[1] = BR_ENGINE_SVD, w[1] = h->opt.nb_collab;
        np = 2;
    } else if (e == BR_ENGINE_HYBRID) {
        const br_engine comp[4] = {BR_ENGINE_EASE, BR_ENGINE_ALS, BR_ENGINE_CONTENT,
                                   BR_ENGINE_POPULARITY};
        const float cw[4] = {h->opt.w_ease, h->opt.w_als, h->opt.w_content, h->opt.w_popularity};
        for (int c = 0; c < 4; c++)
            if (cw[c] != 0 || (h->opt.rerank && h->have[comp[c]]))
                parts[np] = comp[c], w[np++] = cw[c];
    } else if (e == BR_ENGINE_RANK_FUSION || e == BR_ENGINE_RRF) {
        int rrf = e == BR_ENGINE_RRF;
        np = rrf ? h->opt.rrf_n : h->opt.fusion_n;
        for (uint32_t c = 0; c < np; c++)
            parts[c] = rrf ? h->opt.rrf[c] : h->opt.fusion[c], w[c] = 1;
        depth = rrf ? h->opt.rrf_depth : (h->opt.fusion_depth ? h->opt.fusion_depth : 10);
    } else {
        parts[0] = e, w[0] = 1, np = 1;
    }
    br_status st = BR_OK;
    int32_t rank;
    if ((st = score_and_rank(h, e, user, book, depth, &out->score, &rank))) return st;
    for (uint32_t c = 0; c < np && c < 8; c++) {
        br_explain_part *p = &out->part[out->n_parts++];
        p->engine = parts[c];
        if ((st = score_and_rank(h, parts[c], user, book, depth, &p->score, &p->rank))) return st;
        if (e == BR_ENGINE_RANK_FUSION)
            p->contribution = p->rank >= 0 ? 1.0f / (float)(p->rank + 1) : 0.0f;
        else if (e == BR_ENGINE_RRF)
            p->contribution = p->rank >= 0 ? 1.0f / (h->opt.rrf_k + (float)(p->rank + 1)) : 0.0f;
        else if (e == BR_ENGINE_HYBRID) {
            /* What the component added to the book's score: its weighted
             * z-score in the blend; with the re-ranker, coefficient x
             * feature summed over the component's features (the cross of
             * the two collaborative views split between them). 0 for a
             * book outside the candidates (ranked below them all). */
            size_t cap = br__hybrid_cap(h), nc = 0;
            int ci = parts[c] == BR_ENGINE_EASE      ? 0
                     : parts[c] == BR_ENGINE_ALS     ? 1
                     : parts[c] == BR_ENGINE_CONTENT ? 2
                                                     : 3;
            uint32_t *cb = br_malloc(cap * sizeof *cb);
            float *fx = br_malloc(cap * (HY_C + BR_RERANK_FEATURES) * sizeof *fx);
            if (!cb || !fx) st = br_error(BR_ENOMEM, "explain");
            if (!st && h->opt.rerank)
                st = br_hybrid_features(h, user, cb, fx, cap, &nc);
            else if (!st) {
                st = br_hybrid_candidates(h, user, cb, fx, cap, &nc);
                if (!st) br__hybrid_zscore(h, cb, fx, nc);
            }
            p->contribution = 0;
            for (size_t q = 0; !st && q < nc; q++) {
                if (cb[q] != book) continue;
                if (!h->opt.rerank) {
                    p->contribution = w[c] * fx[q * HY_C + ci];
                    continue;
                }
                static const int8_t group[BR_RERANK_FEATURES] = {
                    0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3, 2, 2, 3, 0, -1, 0, 1, 3, 0, 2, 2, 2, 2, 1};
                const float *x = fx + q * BR_RERANK_FEATURES;
                for (int f = 0; f < BR_RERANK_FEATURES; f++) {
                    float v = h->opt.rerank_coef[f] * x[f];
                    if (group[f] == ci)
                        p->contribution += v;
                    else if (group[f] < 0 && ci < 2)
                        p->contribution += 0.5f * v;
                }
            }
            br_free(cb);
            br_free(fx);
            if (st) return st;
        } else if (e == BR_ENGINE_NOTEBOOK_HYBRID) {
            /* The normalised value the blend used, times the weight. */
            br__hybrid_scratch sc = {0};
            if ((st = br__hybrid_scratch_alloc(h, &sc)) ||
                (st = br__hybrid_base_scores(h, parts[c], &user, 1, sc.a, sc.work))) {
                br__hybrid_scratch_free(&sc);
                return st;
            }
            br__hybrid_minmax_row(sc.a, h->n_books);
            p->contribution = w[c] * sc.a[book];
            br__hybrid_scratch_free(&sc);
        } else
            p->contribution = p->score;
        why_words(h, cat, parts[c], user, book, p->score, p->why, sizeof p->why);
    }
    return BR_OK;
}
