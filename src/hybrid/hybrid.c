/*
 * hybrid.c: every engine behind one object, and their combinations.
 *
 * Ranking works on blocks of readers: each engine the ranking uses writes
 * a block of scores over the whole catalogue (sgemm for the factor models
 * and the content engine, sparse row sums for the item-item model); the
 * combination is computed row by row; a bounded selection keeps the top k
 * unrated books, ties to the lower book index. Nothing is precomputed per
 * reader beyond the favourite book and the content profile, so memory is a
 * block of scores whatever the number of readers.
 *
 * The default hybrid is the exception: it never scores the whole catalogue
 * with every engine (see "candidates" below). It standardises each
 * component's scores per reader (z-score over the reader's candidates)
 * before the weighted sum: the engines' scales differ by orders of
 * magnitude (ratings, dot products, cosines, counts) and min-max scaling
 * lets one outlier (the reader's most similar book, the top bestseller)
 * squash everything else.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/content.h"
#include "bookrec/eval.h"
#include "bookrec/hybrid.h"

#define BLOCK  128
#define N_BASE (BR_ENGINE_CONTENT_CLUSTER + 1)

static const char *const engine_names[BR_ENGINE_COUNT] = {"popularity",
                                                          "svd",
                                                          "als",
                                                          "als-explicit",
                                                          "ease",
                                                          "content",
                                                          "content-favourite",
                                                          "content-cluster",
                                                          "notebook-hybrid",
                                                          "rank-fusion",
                                                          "rrf",
                                                          "hybrid"};

const char *br_engine_name(br_engine e)
{
    return (unsigned)e < BR_ENGINE_COUNT ? engine_names[e] : "?";
}

br_status br_engine_parse(const char *name, br_engine *out)
{
    if (!strcmp(name, "collab")) {
        *out = BR_ENGINE_SVD;
        return BR_OK;
    }
    for (int i = 0; i < BR_ENGINE_COUNT; i++)
        if (!strcmp(name, engine_names[i])) {
            *out = (br_engine)i;
            return BR_OK;
        }
    return br_error(BR_ENOTFOUND, "unknown engine '%s'", name);
}

int br_engine_predicts(br_engine e)
{
    return e == BR_ENGINE_SVD || e == BR_ENGINE_ALS_EXPLICIT;
}

static const char *const engine_summaries[BR_ENGINE_COUNT] = {
    "most-rated books (--popularity mean: damped mean rating)",
    "truncated SVD of the 0-filled matrix, predicted = U S V^T (the notebook)",
    "implicit-feedback ALS (confidence 1 + alpha * rating), CG solver",
    "rating-prediction ALS with biases, weighted-lambda",
    "item-item regression on rating weights, top 4000 books",
    "cosine to the reader's profile (book embeddings)",
    "cosine to the reader's favourite book",
    "the favourite book's tribe (the notebook's rule)",
    "0.5 min-max content + 0.5 min-max svd (the notebook)",
    "1/(rank+1) points from content-cluster and svd lists",
    "reciprocal-rank fusion (k 60) of ease, als and content",
    "bookrec's default: ease + als candidates, the learned re-ranker"};

const char *br_engine_summary(br_engine e)
{
    return (unsigned)e < BR_ENGINE_COUNT ? engine_summaries[e] : "?";
}

int br_engine_is_cf(br_engine e)
{
    return e == BR_ENGINE_POPULARITY || e == BR_ENGINE_SVD || e == BR_ENGINE_ALS ||
           e == BR_ENGINE_ALS_EXPLICIT;
}

br_status br_engine_fit_cf(br_engine e, const br_csr *r, const br_csr *rt,
                           const br_svd_options *svd, const br_als_options *als,
                           const br_popularity_options *pop, br_cf_model **out)
{
    br_als_options a = *als;
    switch (e) {
    case BR_ENGINE_POPULARITY:
        return br_popularity_fit(r, pop, out);
    case BR_ENGINE_SVD:
        return br_cf_svd_fit(r, rt, svd, out);
    case BR_ENGINE_ALS:
    case BR_ENGINE_ALS_EXPLICIT:
        a.kind = e == BR_ENGINE_ALS ? BR_ALS_IMPLICIT : BR_ALS_EXPLICIT;
        return br_als_fit(r, rt, &a, out);
    default:
        return br_error(BR_EINVAL, "engine %s is not one collaborative model",
                        br_engine_name(e));
    }
}

void br_hybrid_options_default(br_hybrid_options *o)
{
    memset(o, 0, sizeof *o);
    o->svd = (br_svd_options)BR_SVD_OPTIONS_DEFAULT;
    o->svd.method = BR_SVD_EXACT;
    o->als = (br_als_options)BR_ALS_OPTIONS_DEFAULT;
    o->als.kind = BR_ALS_IMPLICIT;
    o->als.alpha = 0.3f;
    o->als.compute_loss = 0;
    o->als_explicit = (br_als_options)BR_ALS_OPTIONS_DEFAULT;
    o->als_explicit.kind = BR_ALS_EXPLICIT;
    o->als_explicit.factors = 32;
    o->als_explicit.lambda = 0.05f;
    o->als_explicit.compute_loss = 0;
    o->pop = (br_popularity_options)BR_POPULARITY_OPTIONS_DEFAULT;
    o->ease = (br_ease_options)BR_EASE_OPTIONS_DEFAULT;
    o->tribes = 10;
    o->nb_content = 0.5f;
    o->nb_collab = 0.5f;
    o->fusion_n = 2;
    o->fusion[0] = BR_ENGINE_CONTENT_CLUSTER;
    o->fusion[1] = BR_ENGINE_SVD;
    o->fusion_depth = 0;
    o->rrf_n = 3;
    o->rrf[0] = BR_ENGINE_EASE;
    o->rrf[1] = BR_ENGINE_ALS;
    o->rrf[2] = BR_ENGINE_CONTENT;
    o->rrf_depth = 100;
    o->rrf_k = 60.0f;
    /* Tuned on a validation split carved from goodbooks training data
     * (bench/eval.sh --tune; docs/evaluation.md). */
    o->w_ease = 1.0f;
    o->w_als = 0.2f;
    o->w_content = 0.2f;
    o->w_popularity = 0.0f;
    /* The learned re-ranker and its candidate depth: what bookrec eval
     * learns on goodbooks (seed 42) from a validation split of the
     * training part (docs/evaluation.md); eval relearns them on its own
     * data unless --no-learn. Feature order: br_rerank_feature_name. */
    o->cand_ease = 30;
    o->cand_als = 30;
    o->rerank = 1;
    static const float coef[BR_RERANK_FEATURES] = {
        0.1874f,  0.2085f,   0.08946f,  0.03803f,  0.2039f,  0.1302f,   -0.02615f,
        -0.1609f, -0.03135f, -0.08169f, -0.05636f, 0.08038f, -0.07545f, -0.02141f,
        4.5f,     -0.09682f, -0.06009f, 0.01626f,  -0.352f,  7.327f};
    memcpy(o->rerank_coef, coef, sizeof coef);
}

struct br_hybrid {
    br_hybrid_options opt;
    uint32_t n_users, n_books;
    br_csr r;         /* training ratings, readers x books */
    uint32_t *fav;    /* (n_users,) favourite book, UINT32_MAX: none */
    uint32_t *last;   /* (n_users,) latest book in input order */
    float *bmean;     /* (n_books,) damped mean rating minus the global mean */
    const float *emb; /* (n_books, dim), borrowed */
    size_t dim;
    float *profile;     /* (n_users, dim) */
    br_cf_model *cf[4]; /* popularity, svd, als, als-explicit */
    br_ease *ease;
    int32_t *tribe; /* (n_books,) */
    uint32_t n_tribes;
    char (*tribe_name)[BR_TRIBE_NAME_MAX];
    double fit_s[N_BASE];
    int have[N_BASE];
};

int br_engine_needs_content(br_engine e)
{
    return e == BR_ENGINE_CONTENT || e == BR_ENGINE_CONTENT_FAVOURITE ||
           e == BR_ENGINE_CONTENT_CLUSTER || e == BR_ENGINE_NOTEBOOK_HYBRID;
}

/* The base engines a ranking uses (flags in need[N_BASE]). */
static void needs(const br_hybrid_options *o, br_engine e, int *need, int depth)
{
    if (depth > 3) return; /* fusion of fusions: bounded */
    switch (e) {
    case BR_ENGINE_NOTEBOOK_HYBRID:
        need[BR_ENGINE_CONTENT_FAVOURITE] = need[BR_ENGINE_SVD] = 1;
        break;
    case BR_ENGINE_RANK_FUSION:
        for (uint32_t i = 0; i < o->fusion_n; i++)
            if (o->fusion[i] != e) needs(o, o->fusion[i], need, depth + 1);
        break;
    case BR_ENGINE_RRF:
        for (uint32_t i = 0; i < o->rrf_n; i++)
            if (o->rrf[i] != e) needs(o, o->rrf[i], need, depth + 1);
        break;
    case BR_ENGINE_HYBRID:
        if (o->w_ease != 0 || o->cand_ease) need[BR_ENGINE_EASE] = 1;
        if (o->w_als != 0 || o->cand_als) need[BR_ENGINE_ALS] = 1;
        if (o->rerank) {
            /* every component feeds the re-ranker's features (content:
             * those with a non-zero coefficient) */
            need[BR_ENGINE_EASE] = need[BR_ENGINE_ALS] = need[BR_ENGINE_POPULARITY] = 1;
            if (o->rerank_coef[2] != 0 || o->rerank_coef[6] != 0 || o->rerank_coef[9] != 0)
                need[BR_ENGINE_CONTENT] = 1;
        }
        if (o->w_content != 0) need[BR_ENGINE_CONTENT] = 1;
        if (o->w_popularity != 0) need[BR_ENGINE_POPULARITY] = 1;
        break;
    default:
        if ((unsigned)e < N_BASE) need[e] = 1;
    }
}

void br_hybrid_free(br_hybrid *h)
{
    if (!h) return;
    br_csr_free(&h->r);
    br_free(h->fav);
    br_free(h->last);
    br_free(h->bmean);
    br_aligned_free(h->profile);
    for (int i = 0; i < 4; i++) br_cf_model_free(h->cf[i]);
    br_ease_free(h->ease);
    br_free(h->tribe);
    br_free(h->tribe_name);
    br_free(h);
}

const br_cf_model *br_hybrid_cf_model(const br_hybrid *h, br_engine e)
{
    return h && (int)e >= 0 && (int)e < 4 ? h->cf[e] : NULL;
}

const br_csr *br_hybrid_ratings(const br_hybrid *h)
{
    return &h->r;
}

double br_hybrid_fit_seconds(const br_hybrid *h, br_engine e)
{
    int need[N_BASE] = {0};
    needs(&h->opt, e, need, 0);
    double s = 0;
    for (int i = 0; i < N_BASE; i++)
        if (need[i]) s += h->fit_s[i];
    return s;
}

int32_t br_hybrid_tribe(const br_hybrid *h, uint32_t book, const char **name)
{
    if (!h->tribe || book >= h->n_books) return -1;
    int32_t t = h->tribe[book];
    if (name) *name = h->tribe_name ? h->tribe_name[t] : "";
    return t;
}

/* Profiles: the rating-weighted mean embedding of the books rated >= 4
 * (else of every rated book), L2-normalised; zero for a reader without
 * ratings. Same rule as br_content_profile, from the training rows. */
static void fit_profiles(br_hybrid *h)
{
    size_t dim = h->dim;
#pragma omp parallel for schedule(dynamic, 16) num_threads(br_get_num_threads())
    for (uint32_t u = 0; u < h->n_users; u++) {
        float *p = h->profile + (size_t)u * dim;
        memset(p, 0, dim * sizeof(float));
        uint64_t lo = h->r.indptr[u], hi = h->r.indptr[u + 1];
        int any_liked = 0;
        for (uint64_t q = lo; q < hi; q++) any_liked |= h->r.values[q] >= 4.0f;
        for (uint64_t q = lo; q < hi; q++) {
            float w = h->r.values[q];
            if (any_liked && w < 4.0f) continue;
            cblas_saxpy((int)dim, w, h->emb + (size_t)h->r.indices[q] * dim, 1, p, 1);
        }
        float nrm = cblas_snrm2((int)dim, p, 1);
        if (nrm > 0) cblas_sscal((int)dim, 1.0f / nrm, p, 1);
    }
}

static br_status fit_tribes(br_hybrid *h, const br_catalog *cat)
{
    br_kmeans_options ko = BR_KMEANS_OPTIONS_DEFAULT;
    ko.k = h->opt.tribes;
    ko.n_init = 3; /* 10 restarts cost 7 s on goodbooks for the same tribes within noise */
    if (ko.k > h->n_books) ko.k = h->n_books;
    h->tribe = br_malloc(((size_t)h->n_books + 1) * sizeof *h->tribe);
    if (!h->tribe) return br_error(BR_ENOMEM, "tribes");
    h->n_tribes = ko.k;
    br_status st;
    if (cat) {
        br_tribes *t = NULL;
        if ((st = br_tribes_build(cat, h->emb, h->n_books, h->dim, &ko, 0, &t))) return st;
        h->tribe_name = br_malloc((size_t)t->k * sizeof *h->tribe_name);
        if (!h->tribe_name) {
            br_tribes_free(t);
            return br_error(BR_ENOMEM, "tribes");
        }
        for (uint32_t i = 0; i < t->k; i++)
            memcpy(h->tribe_name[i], t->tribe[i].name, BR_TRIBE_NAME_MAX);
        memcpy(h->tribe, t->labels, (size_t)h->n_books * sizeof *h->tribe);
        br_tribes_free(t);
        return BR_OK;
    }
    br_kmeans_result km;
    if ((st = br_kmeans_fit(h->emb, h->n_books, h->dim, &ko, &km))) return st;
    memcpy(h->tribe, km.labels, (size_t)h->n_books * sizeof *h->tribe);
    br_kmeans_result_free(&km);
    return BR_OK;
}

br_status br_hybrid_fit(const br_train_data *d, const br_catalog *cat, const float *emb, size_t dim,
                        const br_hybrid_options *opt, const br_engine *engines, size_t n_engines,
                        br_hybrid **out)
{
    *out = NULL;
    br_hybrid *h = br_calloc(1, sizeof *h);
    if (!h) return br_error(BR_ENOMEM, "hybrid");
    if (opt)
        h->opt = *opt;
    else
        br_hybrid_options_default(&h->opt);
    h->n_users = d->n_users;
    h->n_books = d->n_books;
    h->emb = emb;
    h->dim = dim;
    int need[N_BASE] = {0};
    for (size_t i = 0; i < n_engines; i++) {
        if ((unsigned)engines[i] >= BR_ENGINE_COUNT) {
            br_hybrid_free(h);
            return br_error(BR_EINVAL, "hybrid: engine %d out of range", (int)engines[i]);
        }
        needs(&h->opt, engines[i], need, 0);
    }
    br_status st = br_csr_from_coo(d->n_users, d->n_books, d->n, d->user, d->book, d->value, &h->r);
    br_csr rt = {0};
    if (!st) st = br_csr_transpose(&h->r, &rt);
    h->fav = br_malloc(((size_t)d->n_users + 1) * sizeof *h->fav);
    if (!st && !h->fav) st = br_error(BR_ENOMEM, "hybrid");
    if (st) goto fail;
    {
        /* Favourite: the first of the highest-rated, in input order. */
        float *best = br_malloc(((size_t)d->n_users + 1) * sizeof *best);
        if (!best) {
            st = br_error(BR_ENOMEM, "hybrid");
            goto fail;
        }
        for (uint32_t u = 0; u < d->n_users; u++) h->fav[u] = UINT32_MAX, best[u] = -INFINITY;
        for (size_t i = 0; i < d->n; i++)
            if (d->value[i] > best[d->user[i]]) {
                best[d->user[i]] = d->value[i];
                h->fav[d->user[i]] = d->book[i];
            }
        br_free(best);
        /* Latest: the last rating in input order. Mean rating damped by 10
         * pseudo-ratings at the global mean. */
        h->last = br_malloc(((size_t)d->n_users + 1) * sizeof *h->last);
        h->bmean = br_calloc((size_t)d->n_books + 1, sizeof *h->bmean);
        float *cnt = br_calloc((size_t)d->n_books + 1, sizeof *cnt);
        if (!h->last || !h->bmean || !cnt) {
            br_free(cnt);
            st = br_error(BR_ENOMEM, "hybrid");
            goto fail;
        }
        double gsum = 0;
        for (uint32_t u = 0; u < d->n_users; u++) h->last[u] = UINT32_MAX;
        for (size_t i = 0; i < d->n; i++) {
            h->last[d->user[i]] = d->book[i];
            h->bmean[d->book[i]] += d->value[i];
            cnt[d->book[i]] += 1;
            gsum += d->value[i];
        }
        float g = d->n ? (float)(gsum / (double)d->n) : 0.0f;
        for (uint32_t b = 0; b < d->n_books; b++)
            h->bmean[b] = (h->bmean[b] + 10.0f * g) / (cnt[b] + 10.0f) - g;
        br_free(cnt);
    }
    int content = need[BR_ENGINE_CONTENT] || need[BR_ENGINE_CONTENT_FAVOURITE] ||
                  need[BR_ENGINE_CONTENT_CLUSTER];
    if (content && (!emb || !dim)) {
        st = br_error(BR_EINVAL, "hybrid: the content engines need book embeddings");
        goto fail;
    }
    for (int e = 0; e < N_BASE && !st; e++) {
        if (!need[e]) continue;
        uint64_t t0 = br_now_ns();
        br_als_options ao;
        switch ((br_engine)e) {
        case BR_ENGINE_POPULARITY:
            st = br_popularity_fit(&h->r, &h->opt.pop, &h->cf[0]);
            break;
        case BR_ENGINE_SVD:
            st = br_cf_svd_fit(&h->r, &rt, &h->opt.svd, &h->cf[1]);
            break;
        case BR_ENGINE_ALS:
            ao = h->opt.als;
            ao.kind = BR_ALS_IMPLICIT;
            st = br_als_fit(&h->r, &rt, &ao, &h->cf[2]);
            break;
        case BR_ENGINE_ALS_EXPLICIT:
            ao = h->opt.als_explicit;
            ao.kind = BR_ALS_EXPLICIT;
            st = br_als_fit(&h->r, &rt, &ao, &h->cf[3]);
            break;
        case BR_ENGINE_EASE:
            st = br_ease_fit(&h->r, &rt, &h->opt.ease, &h->ease);
            break;
        case BR_ENGINE_CONTENT:
            h->profile = br_aligned_alloc((size_t)d->n_users * dim * sizeof(float) + 64, BR_ALIGN);
            if (!h->profile)
                st = br_error(BR_ENOMEM, "hybrid: profiles");
            else
                fit_profiles(h);
            break;
        case BR_ENGINE_CONTENT_FAVOURITE:
            break;
        case BR_ENGINE_CONTENT_CLUSTER:
            st = fit_tribes(h, cat);
            break;
        default:
            break;
        }
        h->fit_s[e] = (double)(br_now_ns() - t0) / 1e9;
        h->have[e] = 1;
    }
    if (st) goto fail;
    br_csr_free(&rt);
    *out = h;
    return BR_OK;
fail:
    br_csr_free(&rt);
    br_hybrid_free(h);
    return st;
}

/* ------------------------------------------------------------ scoring -- */

static br_status need_fitted(const br_hybrid *h, br_engine e)
{
    if ((unsigned)e < N_BASE && !h->have[e])
        return br_error(BR_EINVAL, "hybrid: engine %s was not fitted", br_engine_name(e));
    return BR_OK;
}

/* Scores of a base engine for a block of readers: s (nb, n_books). A book
 * the engine cannot score is -INFINITY. */
static br_status base_scores(const br_hybrid *h, br_engine e, const uint32_t *users, size_t nb,
                             float *s, float *work /* (BLOCK, max(dim, 64 + k)) */)
{
    br_status st = need_fitted(h, e);
    if (st) return st;
    uint32_t nbk = h->n_books;
    size_t dim = h->dim;
    switch (e) {
    case BR_ENGINE_POPULARITY:
    case BR_ENGINE_SVD:
    case BR_ENGINE_ALS:
    case BR_ENGINE_ALS_EXPLICIT: {
        const br_cf_model *m = h->cf[e];
        uint32_t k = br_cf_model_factors(m);
        const float *uf = br_cf_model_user_factors(m), *vf = br_cf_model_item_factors(m);
        const float *ub = br_cf_model_user_bias(m), *ib = br_cf_model_item_bias(m);
        float g = br_cf_model_global_bias(m);
        for (size_t j = 0; j < nb; j++) {
            float add = g + (ub ? ub[users[j]] : 0.0f);
            float *row = s + j * nbk;
            for (uint32_t i = 0; i < nbk; i++) row[i] = add + (ib ? ib[i] : 0.0f);
            if (k) memcpy(work + j * k, uf + (size_t)users[j] * k, k * sizeof(float));
        }
        if (k)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nbk, (int)k, 1.0f,
                        work, (int)k, vf, (int)k, 1.0f, s, (int)nbk);
        return BR_OK;
    }
    case BR_ENGINE_EASE: {
        br_status bad = BR_OK;
#pragma omp parallel for schedule(dynamic, 4) num_threads(br_get_num_threads())
        for (size_t j = 0; j < nb; j++) {
            uint32_t u = users[j];
            uint64_t lo = h->r.indptr[u];
            br_status s1 = br_ease_score(h->ease, h->r.indptr[u + 1] - lo, h->r.indices + lo,
                                         h->r.values + lo, nbk, s + j * nbk);
            if (s1) {
#pragma omp critical(hybrid_ease_err)
                bad = s1;
            }
        }
        return bad;
    }
    case BR_ENGINE_CONTENT:
    case BR_ENGINE_CONTENT_FAVOURITE:
        for (size_t j = 0; j < nb; j++) {
            const float *src = NULL;
            if (e == BR_ENGINE_CONTENT)
                src = h->profile + (size_t)users[j] * dim;
            else if (h->fav[users[j]] != UINT32_MAX)
                src = h->emb + (size_t)h->fav[users[j]] * dim;
            if (src)
                memcpy(work + j * dim, src, dim * sizeof(float));
            else
                memset(work + j * dim, 0, dim * sizeof(float));
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nbk, (int)dim, 1.0f,
                    work, (int)dim, h->emb, (int)dim, 0.0f, s, (int)nbk);
        return BR_OK;
    case BR_ENGINE_CONTENT_CLUSTER:
        /* The notebook's rule: the favourite's tribe, in catalogue order
         * (equal scores; ties go to the lower index). */
        for (size_t j = 0; j < nb; j++) {
            uint32_t f = h->fav[users[j]];
            float *row = s + j * nbk;
            for (uint32_t i = 0; i < nbk; i++)
                row[i] = f != UINT32_MAX && h->tribe[i] == h->tribe[f] ? 1.0f : -INFINITY;
        }
        return BR_OK;
    default:
        return br_error(BR_EINTERNAL, "hybrid: %s is not a base engine", br_engine_name(e));
    }
}

/* Top k of one row: highest finite score first, ties by lower index;
 * books rated by the reader excluded. */
static void select_row(float *row, uint32_t nbk, const br_csr *r, uint32_t u, uint32_t k,
                       uint32_t *items, float *scores)
{
    for (uint64_t q = r->indptr[u]; q < r->indptr[u + 1]; q++) row[r->indices[q]] = -INFINITY;
    uint32_t have = 0;
    for (uint32_t i = 0; i < nbk; i++) {
        float v = row[i];
        if (!(v > -INFINITY)) continue; /* -inf and NaN */
        if (have == k && !(v > scores[k - 1])) continue;
        uint32_t p = have < k ? have++ : k - 1;
        while (p > 0 && v > scores[p - 1]) {
            scores[p] = scores[p - 1];
            items[p] = items[p - 1];
            p--;
        }
        scores[p] = v;
        items[p] = i;
    }
    for (uint32_t p = have; p < k; p++) items[p] = UINT32_MAX, scores[p] = -INFINITY;
}

/* x -> (x - min) / (max - min) over every finite entry (range 0: all 0,
 * as scikit-learn's MinMaxScaler does). */
static void minmax_row(float *row, uint32_t n)
{
    double lo = INFINITY, hi = -INFINITY;
    for (uint32_t i = 0; i < n; i++)
        if (isfinite(row[i])) {
            if (row[i] < lo) lo = row[i];
            if (row[i] > hi) hi = row[i];
        }
    double range = hi - lo;
    if (!(range > 0)) range = 1;
    for (uint32_t i = 0; i < n; i++) row[i] = (float)(((double)row[i] - lo) / range);
}

typedef struct scratch {
    float *a, *b, *work;
} scratch;

static br_status scratch_alloc(const br_hybrid *h, scratch *sc)
{
    size_t row = (size_t)BLOCK * h->n_books * sizeof(float) + 64;
    size_t wk = (size_t)BLOCK * (h->dim > 1024 ? h->dim : 1024) * sizeof(float) + 64;
    sc->a = br_aligned_alloc(row, BR_ALIGN);
    sc->b = br_aligned_alloc(row, BR_ALIGN);
    sc->work = br_aligned_alloc(wk, BR_ALIGN);
    if (!sc->a || !sc->b || !sc->work) return br_error(BR_ENOMEM, "hybrid: score block");
    return BR_OK;
}

static void scratch_free(scratch *sc)
{
    br_aligned_free(sc->a);
    br_aligned_free(sc->b);
    br_aligned_free(sc->work);
}

/* ------------------------------------- the default hybrid: candidates -- */

/* Candidate generation then re-ranking: the item-item model's and ALS's
 * top lists are cheap (a sparse row sum over M books; a 64-wide dot per
 * book), the content part is not (a 512-wide dot per book). Scoring every
 * component over the union only keeps the content part at a few hundred
 * dots per reader, so ranking costs the ALS row and two bounded
 * selections whatever the catalogue. The z-scores are taken over the
 * candidates, the books the blend actually orders. */

#define HY_C 4 /* ease, als, content, popularity */

typedef struct rr_key {
    float v;
    uint32_t book, p;
} rr_key;

typedef struct hy_work {
    uint32_t *mark; /* (n_books,) 2 epoch: rated, 2 epoch + 1: candidate */
    uint32_t epoch;
    float *acc;     /* (M,) item-item scores */
    uint32_t *book; /* (cap,) candidates */
    float *raw;     /* (cap, HY_C) raw scores, then z-scores */
    float *score;   /* (cap,) blend */
    uint32_t *ti;   /* (cap,) selection */
    float *tv;
    float *feat;               /* (cap, BR_RERANK_FEATURES) */
    struct rr_key *key;        /* (cap,) */
    float *ease_raw, *pop_raw; /* (cap,) */
    size_t cap;
} hy_work;

static size_t hy_cap(const br_hybrid *h)
{
    return (size_t)(h->ease ? h->opt.cand_ease : 0) + (h->cf[BR_ENGINE_ALS] ? h->opt.cand_als : 0) +
           1;
}

static void hy_work_free(hy_work *w)
{
    br_free(w->mark);
    br_free(w->acc);
    br_free(w->book);
    br_free(w->raw);
    br_free(w->score);
    br_free(w->ti);
    br_free(w->tv);
    br_free(w->feat);
    br_free(w->key);
    br_free(w->ease_raw);
    br_free(w->pop_raw);
}

static br_status hy_work_alloc(const br_hybrid *h, hy_work *w)
{
    memset(w, 0, sizeof *w);
    w->cap = hy_cap(h);
    w->mark = br_calloc((size_t)h->n_books + 1, sizeof *w->mark);
    w->acc = br_malloc(((size_t)(h->ease ? br_ease_items(h->ease) : 0) + 1) * sizeof *w->acc);
    w->book = br_malloc(w->cap * sizeof *w->book);
    w->raw = br_malloc(w->cap * HY_C * sizeof *w->raw);
    w->score = br_malloc(w->cap * sizeof *w->score);
    w->ti = br_malloc(w->cap * sizeof *w->ti);
    w->tv = br_malloc(w->cap * sizeof *w->tv);
    w->feat = br_malloc(w->cap * BR_RERANK_FEATURES * sizeof *w->feat);
    w->key = br_malloc(w->cap * sizeof *w->key);
    w->ease_raw = br_malloc(w->cap * sizeof *w->ease_raw);
    w->pop_raw = br_malloc(w->cap * sizeof *w->pop_raw);
    if (!w->mark || !w->acc || !w->book || !w->raw || !w->score || !w->ti || !w->tv || !w->feat ||
        !w->key) {
        hy_work_free(w);
        return br_error(BR_ENOMEM, "hybrid: candidate buffers");
    }
    return BR_OK;
}

static inline int hy_better(float v, uint32_t b, float v2, uint32_t b2)
{
    return v > v2 || (v == v2 && b < b2);
}

/* Sift down in a heap whose root is the worst kept entry. */
static void hy_sift(uint32_t *ti, float *tv, uint32_t n, uint32_t p)
{
    for (;;) {
        uint32_t l = 2 * p + 1, w = p;
        if (l < n && hy_better(tv[w], ti[w], tv[l], ti[l])) w = l;
        if (l + 1 < n && hy_better(tv[w], ti[w], tv[l + 1], ti[l + 1])) w = l + 1;
        if (w == p) return;
        float v = tv[p];
        uint32_t b = ti[p];
        tv[p] = tv[w], ti[p] = ti[w];
        tv[w] = v, ti[w] = b;
        p = w;
    }
}

/* Top c entries of v[0..n) (entry i is book ids ? ids[i] : i), skipping
 * books marked `skip` and non-finite scores; highest first, ties to the
 * lower book. A bounded heap (the worst kept entry at the root, so most
 * entries cost one comparison), then heap-sorted. Returns how many. */
static uint32_t hy_top(const float *v, uint32_t n, const uint32_t *ids, const uint32_t *mark,
                       uint32_t skip, uint32_t c, uint32_t *ti, float *tv)
{
    uint32_t have = 0;
    if (!c) return 0;
    for (uint32_t i = 0; i < n; i++) {
        float x = v[i];
        if (!(x > -INFINITY) || x == INFINITY) continue;
        uint32_t b = ids ? ids[i] : i;
        if (have == c && !hy_better(x, b, tv[0], ti[0])) continue;
        if (mark[b] == skip) continue;
        if (have < c) {
            /* sift up */
            uint32_t p = have++;
            while (p > 0) {
                uint32_t q = (p - 1) / 2;
                if (!hy_better(tv[q], ti[q], x, b)) break;
                tv[p] = tv[q], ti[p] = ti[q];
                p = q;
            }
            tv[p] = x, ti[p] = b;
        } else {
            tv[0] = x, ti[0] = b;
            hy_sift(ti, tv, c, 0);
        }
    }
    /* Heap sort: the worst to the end, repeatedly. */
    for (uint32_t e = have; e > 1; e--) {
        float v0 = tv[0];
        uint32_t b0 = ti[0];
        tv[0] = tv[e - 1], ti[0] = ti[e - 1];
        tv[e - 1] = v0, ti[e - 1] = b0;
        hy_sift(ti, tv, e - 1, 0);
    }
    return have;
}

static inline float hy_rating_weight(const float *w, float r)
{
    int i = (int)lrintf(r);
    if (i < 1) i = 1;
    if (i > 5) i = 5;
    return w[i - 1];
}

static float cf_score1(const br_cf_model *m, uint32_t u, uint32_t b)
{
    uint32_t k = br_cf_model_factors(m);
    const float *ub = br_cf_model_user_bias(m), *ib = br_cf_model_item_bias(m);
    float v = br_cf_model_global_bias(m) + (ub ? ub[u] : 0.0f) + (ib ? ib[b] : 0.0f);
    if (k)
        v += cblas_sdot((int)k, br_cf_model_user_factors(m) + (size_t)u * k, 1,
                        br_cf_model_item_factors(m) + (size_t)b * k, 1);
    return v;
}

/* Reader u's candidates and their raw component scores into w (book, raw);
 * als_row (n_books,) the reader's ALS scores or NULL. Returns the count. */
static size_t hy_candidates(const br_hybrid *h, uint32_t u, const float *als_row, hy_work *w)
{
    w->epoch++;
    uint32_t rated = 2 * w->epoch, cand = 2 * w->epoch + 1;
    uint64_t lo = h->r.indptr[u], hi = h->r.indptr[u + 1];
    for (uint64_t q = lo; q < hi; q++) w->mark[h->r.indices[q]] = rated;
    size_t n = 0;
    uint32_t m = 0;
    if (h->ease) {
        m = br_ease_items(h->ease);
        const float *bm = br_ease_matrix(h->ease);
        memset(w->acc, 0, (size_t)m * sizeof *w->acc);
        for (uint64_t q = lo; q < hi; q++) {
            int32_t s = br_ease_slot(h->ease, h->r.indices[q]);
            if (s < 0) continue;
            cblas_saxpy((int)m, hy_rating_weight(h->opt.ease.weight, h->r.values[q]),
                        bm + (size_t)s * m, 1, w->acc, 1);
        }
        uint32_t c = hy_top(w->acc, m, br_ease_item_ids(h->ease), w->mark, rated, h->opt.cand_ease,
                            w->ti, w->tv);
        for (uint32_t p = 0; p < c; p++) {
            w->mark[w->ti[p]] = cand;
            w->book[n++] = w->ti[p];
        }
    }
    if (als_row) {
        uint32_t c =
            hy_top(als_row, h->n_books, NULL, w->mark, rated, h->opt.cand_als, w->ti, w->tv);
        for (uint32_t p = 0; p < c; p++)
            if (w->mark[w->ti[p]] != cand) {
                w->mark[w->ti[p]] = cand;
                w->book[n++] = w->ti[p];
            }
    }
    const float *prof = h->profile ? h->profile + (size_t)u * h->dim : NULL;
    const br_cf_model *pop = h->cf[BR_ENGINE_POPULARITY];
    for (size_t p = 0; p < n; p++) {
        uint32_t b = w->book[p];
        float *x = w->raw + p * HY_C;
        int32_t s = h->ease ? br_ease_slot(h->ease, b) : -1;
        x[0] = s >= 0 ? w->acc[s] : -INFINITY;
        x[1] = als_row ? als_row[b] : -INFINITY;
        x[2] = prof ? cblas_sdot((int)h->dim, prof, 1, h->emb + (size_t)b * h->dim, 1) : -INFINITY;
        x[3] = pop ? log1pf(fmaxf(cf_score1(pop, u, b), 0.0f)) : -INFINITY;
    }
    return n;
}

/* Each component standardised over the n candidates in place (the same
 * non-finite -> the lowest z of the column: last, but the other
 * components still order those books). */
static void hy_zscore(float *raw, size_t n)
{
    for (int c = 0; c < HY_C; c++) {
        double sum = 0, sum2 = 0, lo = INFINITY;
        size_t cnt = 0;
        for (size_t p = 0; p < n; p++) {
            float v = raw[p * HY_C + c];
            if (!isfinite(v)) continue;
            sum += v;
            sum2 += (double)v * v;
            cnt++;
            if (v < lo) lo = v;
        }
        double mean = cnt ? sum / (double)cnt : 0;
        double var = cnt ? sum2 / (double)cnt - mean * mean : 0;
        double inv = var > 1e-20 ? 1.0 / sqrt(var) : 0;
        float floor_z = cnt ? (float)((lo - mean) * inv) : 0.0f;
        for (size_t p = 0; p < n; p++) {
            float *v = raw + p * HY_C + c;
            *v = isfinite(*v) ? (float)((*v - mean) * inv) : floor_z;
        }
    }
}

static void hy_blend(const float *z, size_t n, const float *wt, float *score)
{
    for (size_t p = 0; p < n; p++) {
        float s = 0;
        for (int c = 0; c < HY_C; c++)
            if (wt[c] != 0) s += wt[c] * z[p * HY_C + c];
        score[p] = s;
    }
}

/* The ALS rows of a block of readers into als (nb, n_books); work (nb,
 * factors). NULL-safe: no ALS, nothing to do. */
static br_status hy_als_block(const br_hybrid *h, const uint32_t *users, size_t nb, float **als,
                              float **work)
{
    *als = *work = NULL;
    if (!h->cf[BR_ENGINE_ALS] || !h->opt.cand_als) return BR_OK;
    uint32_t f = br_cf_model_factors(h->cf[BR_ENGINE_ALS]);
    *als = br_aligned_alloc(nb * (size_t)h->n_books * sizeof(float) + 64, BR_ALIGN);
    *work = br_aligned_alloc((nb * (size_t)f + 1) * sizeof(float) + 64, BR_ALIGN);
    if (!*als || !*work) return br_error(BR_ENOMEM, "hybrid: ALS block");
    return base_scores(h, BR_ENGINE_ALS, users, nb, *als, *work);
}

static br_status hy_check_source(const br_hybrid *h)
{
    if (!(h->ease && h->opt.cand_ease) && !(h->cf[BR_ENGINE_ALS] && h->opt.cand_als))
        return br_error(BR_EINVAL, "hybrid: no candidate source (fit ease or als, cand_ease or "
                                   "cand_als > 0)");
    return BR_OK;
}

static br_status hy_check(const br_hybrid *h)
{
    br_status st = hy_check_source(h);
    if (st || h->opt.rerank) return st;
    const float wt[HY_C] = {h->opt.w_ease, h->opt.w_als, h->opt.w_content, h->opt.w_popularity};
    const br_engine comp[HY_C] = {BR_ENGINE_EASE, BR_ENGINE_ALS, BR_ENGINE_CONTENT,
                                  BR_ENGINE_POPULARITY};
    for (int c = 0; c < HY_C; c++)
        if (wt[c] != 0 && !h->have[comp[c]])
            return br_error(BR_EINVAL, "hybrid: engine %s was not fitted", br_engine_name(comp[c]));
    return BR_OK;
}

/* ------------------------------------------- the learned re-ranker -- */

/* Features of each candidate (row p of w->feat, BR_RERANK_FEATURES wide,
 * in the order of br_rerank_feature_names): the components' z-scores and
 * ranks among the candidates, the z-scores times the reader's centred log
 * history length (so the model can lean on content for short histories
 * and on the item-item model for long ones), cosine to the favourite and
 * to the latest book, the book's damped mean rating, whether the item-item
 * model knows the book, and one cross of the two collaborative views. */

static const char *const rr_names[BR_RERANK_FEATURES] = {
    "z_ease",       "z_als",         "z_content",   "z_popularity",   "rank_ease",
    "rank_als",     "rank_content",  "z_ease*hist", "z_als*hist",     "z_content*hist",
    "z_pop*hist",   "cos_favourite", "cos_latest",  "mean_rating",    "in_item_model",
    "z_ease*z_als", "z_ease^2",      "z_als^2",     "log_popularity", "ease_raw"};

const char *br_rerank_feature_name(uint32_t f)
{
    return f < BR_RERANK_FEATURES ? rr_names[f] : "?";
}

static int rr_key_cmp(const void *a, const void *b)
{
    const rr_key *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->book > y->book) - (x->book < y->book);
}

/* Reader u's candidate features into w->feat; w->raw holds the raw
 * component scores on entry and their z-scores on return. */
static void hy_features(const br_hybrid *h, uint32_t u, hy_work *w, size_t n)
{
    const size_t F = BR_RERANK_FEATURES;
    float *f = w->feat;
    for (size_t p = 0; p < n; p++) {
        const float *r = w->raw + p * HY_C;
        f[p * F + 14] = isfinite(r[0]) ? 1.0f : 0.0f;
        w->ease_raw[p] = isfinite(r[0]) ? r[0] : 0.0f;
        w->pop_raw[p] = isfinite(r[3]) ? r[3] : 0.0f;
    }
    hy_zscore(w->raw, n);
    uint64_t hist = h->r.indptr[u + 1] - h->r.indptr[u];
    float lh = log1pf((float)hist) - 3.5f; /* about e^3.5 = 33 ratings: the centre */
    const float *fav =
        h->emb && h->fav[u] != UINT32_MAX ? h->emb + (size_t)h->fav[u] * h->dim : NULL;
    const float *last =
        h->emb && h->last[u] != UINT32_MAX ? h->emb + (size_t)h->last[u] * h->dim : NULL;
    for (size_t p = 0; p < n; p++) {
        const float *z = w->raw + p * HY_C;
        float *x = f + p * F;
        uint32_t b = w->book[p];
        x[0] = z[0], x[1] = z[1], x[2] = z[2], x[3] = z[3];
        x[7] = z[0] * lh, x[8] = z[1] * lh, x[9] = z[2] * lh, x[10] = z[3] * lh;
        const float *eb = h->emb ? h->emb + (size_t)b * h->dim : NULL;
        x[11] = fav ? cblas_sdot((int)h->dim, fav, 1, eb, 1) : 0.0f;
        x[12] = last ? cblas_sdot((int)h->dim, last, 1, eb, 1) : 0.0f;
        x[13] = h->bmean[b];
        x[15] = z[0] * z[1];
        x[16] = z[0] * z[0];
        x[17] = z[1] * z[1];
        x[18] = w->pop_raw[p];
        x[19] = w->ease_raw[p];
    }
    for (int c = 0; c < 3; c++) {
        for (size_t p = 0; p < n; p++)
            w->key[p] = (rr_key){w->raw[p * HY_C + c], w->book[p], (uint32_t)p};
        qsort(w->key, n, sizeof *w->key, rr_key_cmp);
        for (size_t r = 0; r < n; r++)
            f[(size_t)w->key[r].p * F + 4 + (size_t)c] = 1.0f / log2f((float)r + 2.0f);
    }
}

/* The scores the default hybrid ranks by, into w->score: the learned
 * model's logit (opt.rerank) or the weighted z-score blend. */
static void hy_score(const br_hybrid *h, uint32_t u, hy_work *w, size_t n)
{
    if (h->opt.rerank) {
        hy_features(h, u, w, n);
        for (size_t p = 0; p < n; p++) {
            const float *x = w->feat + p * BR_RERANK_FEATURES;
            float s = 0;
            for (int c = 0; c < BR_RERANK_FEATURES; c++) s += h->opt.rerank_coef[c] * x[c];
            w->score[p] = s;
        }
        return;
    }
    const float wt[HY_C] = {h->opt.w_ease, h->opt.w_als, h->opt.w_content, h->opt.w_popularity};
    hy_zscore(w->raw, n);
    hy_blend(w->raw, n, wt, w->score);
}

/* Pointwise logistic regression over the candidates of validation
 * readers: label 1 when the candidate is a relevant held-out book. Newton
 * steps with a backtracking line search on the L2-penalised mean log
 * loss, in double, on standardised features; sums run over a fixed
 * partition of the rows and are added in partition order, so the fit is
 * the same whatever the thread count. */
#define RR_CHUNKS 64

static double rr_loss_grad(const float *x, const uint8_t *y, size_t rows, const double *mu,
                           const double *sd, const double *beta, double lambda, double *g,
                           double *hess)
{
    enum { D = BR_RERANK_FEATURES + 1 };
    double part_l[RR_CHUNKS], (*part_g)[D] = NULL, (*part_h)[D * D] = NULL;
    if (g) {
        part_g = br_calloc(RR_CHUNKS, sizeof *part_g);
        part_h = br_calloc(RR_CHUNKS, sizeof *part_h);
        if (!part_g || !part_h) {
            br_free(part_g);
            br_free(part_h);
            return NAN;
        }
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(br_get_num_threads())
    for (int ch = 0; ch < RR_CHUNKS; ch++) {
        size_t lo = rows * (size_t)ch / RR_CHUNKS, hi = rows * (size_t)(ch + 1) / RR_CHUNKS;
        double l = 0, z[D];
        for (size_t i = lo; i < hi; i++) {
            for (int c = 0; c < D - 1; c++) z[c] = ((double)x[i * (D - 1) + c] - mu[c]) / sd[c];
            z[D - 1] = 1;
            double t = 0;
            for (int c = 0; c < D; c++) t += beta[c] * z[c];
            /* log(1 + e^t) - y t, stably */
            double sp = t > 0 ? t + log1p(exp(-t)) : log1p(exp(t));
            l += sp - (y[i] ? t : 0);
            if (!g) continue;
            double pr = 1 / (1 + exp(-t)), r = pr - (y[i] ? 1 : 0), wgt = pr * (1 - pr);
            for (int a = 0; a < D; a++) {
                part_g[ch][a] += r * z[a];
                double wa = wgt * z[a];
                for (int b = 0; b <= a; b++) part_h[ch][a * D + b] += wa * z[b];
            }
        }
        part_l[ch] = l;
    }
    double loss = 0;
    for (int ch = 0; ch < RR_CHUNKS; ch++) loss += part_l[ch];
    double reg = 0;
    for (int c = 0; c < D - 1; c++) reg += beta[c] * beta[c];
    loss = loss / (double)rows + 0.5 * lambda * reg;
    if (g) {
        memset(g, 0, D * sizeof *g);
        memset(hess, 0, D * D * sizeof *hess);
        for (int ch = 0; ch < RR_CHUNKS; ch++)
            for (int a = 0; a < D; a++) {
                g[a] += part_g[ch][a];
                for (int b = 0; b <= a; b++) hess[a * D + b] += part_h[ch][a * D + b];
            }
        for (int a = 0; a < D; a++) {
            g[a] = g[a] / (double)rows + (a < D - 1 ? lambda * beta[a] : 0);
            for (int b = 0; b <= a; b++) {
                hess[a * D + b] =
                    hess[a * D + b] / (double)rows + (a == b && a < D - 1 ? lambda : 0);
                hess[b * D + a] = hess[a * D + b];
            }
        }
        br_free(part_g);
        br_free(part_h);
    }
    return loss;
}

/* Solves a x = b for a symmetric positive definite d x d (Cholesky,
 * in place; a tiny ridge when a pivot is not positive). */
static void rr_solve(double *a, double *b, int d)
{
    for (int j = 0; j < d; j++) {
        double s = a[j * d + j];
        for (int k = 0; k < j; k++) s -= a[j * d + k] * a[j * d + k];
        s = s > 1e-12 ? sqrt(s) : 1e-6;
        a[j * d + j] = s;
        for (int i = j + 1; i < d; i++) {
            double t = a[i * d + j];
            for (int k = 0; k < j; k++) t -= a[i * d + k] * a[j * d + k];
            a[i * d + j] = t / s;
        }
    }
    for (int i = 0; i < d; i++) {
        for (int k = 0; k < i; k++) b[i] -= a[i * d + k] * b[k];
        b[i] /= a[i * d + i];
    }
    for (int i = d - 1; i >= 0; i--) {
        for (int k = i + 1; k < d; k++) b[i] -= a[k * d + i] * b[k];
        b[i] /= a[i * d + i];
    }
}

br_status br_rerank_fit(const float *x, const uint8_t *y, size_t rows, double lambda, float *coef,
                        br_rerank_report *rep)
{
    enum { D = BR_RERANK_FEATURES + 1 };
    br_rerank_report dummy;
    if (!rep) rep = &dummy;
    memset(rep, 0, sizeof *rep);
    if (!rows) return br_error(BR_EINVAL, "rerank: no training rows");
    if (!(lambda >= 0)) return br_error(BR_EINVAL, "rerank: lambda must be >= 0");
    double mu[D - 1] = {0}, sd[D - 1] = {0};
    size_t pos = 0;
    for (size_t i = 0; i < rows; i++) {
        pos += y[i] != 0;
        for (int c = 0; c < D - 1; c++) {
            double v = x[i * (D - 1) + c];
            if (!isfinite(v))
                return br_error(BR_EINVAL, "rerank: feature %d of row %zu is not finite", c, i);
            mu[c] += v;
        }
    }
    for (int c = 0; c < D - 1; c++) mu[c] /= (double)rows;
    for (size_t i = 0; i < rows; i++)
        for (int c = 0; c < D - 1; c++) {
            double d = x[i * (D - 1) + c] - mu[c];
            sd[c] += d * d;
        }
    for (int c = 0; c < D - 1; c++) {
        sd[c] = sqrt(sd[c] / (double)rows);
        if (!(sd[c] > 1e-9)) sd[c] = 1; /* a constant feature: its weight stays ~0 */
    }
    rep->rows = rows;
    rep->positives = pos;
    double beta[D] = {0}, g[D], hs[D * D], step[D], trial[D];
    /* Start at the base rate: only the bias moves. */
    double p0 = ((double)pos + 0.5) / ((double)rows + 1.0);
    beta[D - 1] = log(p0 / (1 - p0));
    double loss = rr_loss_grad(x, y, rows, mu, sd, beta, lambda, g, hs);
    if (!isfinite(loss)) return br_error(BR_ENOMEM, "rerank: fit");
    rep->loss[0] = loss;
    uint32_t it;
    for (it = 0; it < BR_RERANK_MAX_ITER; it++) {
        memcpy(step, g, sizeof step);
        rr_solve(hs, step, D);
        double t = 1, nl = loss;
        int moved = 0;
        for (int ls = 0; ls < 30; ls++, t *= 0.5) {
            for (int c = 0; c < D; c++) trial[c] = beta[c] - t * step[c];
            nl = rr_loss_grad(x, y, rows, mu, sd, trial, lambda, NULL, NULL);
            if (nl < loss) {
                moved = 1;
                break;
            }
        }
        if (!moved) break;
        memcpy(beta, trial, sizeof beta);
        double dl = loss - nl;
        loss = rr_loss_grad(x, y, rows, mu, sd, beta, lambda, g, hs);
        rep->loss[it + 1] = loss;
        if (dl < 1e-10) {
            it++;
            break;
        }
    }
    rep->iterations = it;
    /* Back to raw features (the bias does not change a ranking). */
    for (int c = 0; c < D - 1; c++) coef[c] = (float)(beta[c] / sd[c]);
    return BR_OK;
}

/* Candidate depths the re-ranker chooses from (item-item and ALS alike):
 * a pointwise model learns best from a short list of good candidates,
 * and how short is a property of the data, so validation decides. */
static const uint32_t rr_grid[BR_RERANK_GRID] = {30, 50, 100};

typedef struct rr_set {
    float *x;   /* (rows, F) */
    uint8_t *y; /* (rows,) */
    size_t rows, cap;
    size_t *start; /* (readers + 1,) row range of each reader */
} rr_set;

static br_status rr_set_add(rr_set *s, const float *x, const uint8_t *y, size_t n)
{
    const size_t F = BR_RERANK_FEATURES;
    if (s->rows + n > s->cap) {
        size_t nc = (s->rows + n) * 2 + 1024;
        float *nx = br_realloc(s->x, nc * F * sizeof *nx);
        if (nx) s->x = nx;
        uint8_t *ny = br_realloc(s->y, nc);
        if (ny) s->y = ny;
        if (!nx || !ny) return br_error(BR_ENOMEM, "rerank rows");
        s->cap = nc;
    }
    memcpy(s->x + s->rows * F, x, n * F * sizeof *x);
    memcpy(s->y + s->rows, y, n);
    s->rows += n;
    return BR_OK;
}

/* The rows of the readers with (reader index % 2 == parity), or every
 * reader (parity < 0), that have at least one relevant candidate. */
static br_status rr_subset(const rr_set *s, size_t nu, int parity, rr_set *out)
{
    memset(out, 0, sizeof *out);
    br_status st = BR_OK;
    for (size_t r = 0; r < nu && !st; r++) {
        if (parity >= 0 && (int)(r % 2) != parity) continue;
        size_t lo = s->start[r], hi = s->start[r + 1], pos = 0;
        for (size_t i = lo; i < hi; i++) pos += s->y[i];
        if (pos) st = rr_set_add(out, s->x + lo * BR_RERANK_FEATURES, s->y + lo, hi - lo);
    }
    return st;
}

/* Mean NDCG@10 over the odd readers of s (every one, relevant candidate
 * or not: a shorter list that misses a relevant book pays for it), their
 * candidates ranked by coef . features. n_rel: relevant held-out books of
 * each reader (the ideal DCG's). */
static double rr_ndcg(const rr_set *s, size_t nu, const uint32_t *n_rel, const float *coef)
{
    const size_t F = BR_RERANK_FEATURES;
    enum { K = 10 };
    double sum = 0;
    size_t cnt = 0;
    for (size_t r = 1; r < nu; r += 2) {
        size_t lo = s->start[r], hi = s->start[r + 1];
        float tv[K];
        uint32_t ti[K], have = 0;
        for (size_t i = lo; i < hi; i++) {
            float v = 0;
            for (size_t c = 0; c < F; c++) v += coef[c] * s->x[i * F + c];
            uint32_t b = (uint32_t)(i - lo);
            if (have == K && !hy_better(v, b, tv[K - 1], ti[K - 1])) continue;
            uint32_t p = have < K ? have++ : K - 1;
            while (p > 0 && hy_better(v, b, tv[p - 1], ti[p - 1])) {
                tv[p] = tv[p - 1], ti[p] = ti[p - 1];
                p--;
            }
            tv[p] = v, ti[p] = b;
        }
        double dcg = 0, idcg = 0;
        for (uint32_t p = 0; p < have; p++)
            if (s->y[lo + ti[p]]) dcg += 1.0 / log2((double)p + 2.0);
        for (uint32_t p = 0; p < n_rel[r] && p < K; p++) idcg += 1.0 / log2((double)p + 2.0);
        if (idcg > 0) sum += dcg / idcg, cnt++;
    }
    return cnt ? sum / (double)cnt : 0;
}

br_status br_hybrid_learn_rerank(const br_hybrid *h, const br_split *val, uint32_t max_readers,
                                 double lambda, float *coef, br_rerank_report *rep)
{
    const size_t F = BR_RERANK_FEATURES;
    br_rerank_report dummy;
    if (!rep) rep = &dummy;
    memset(rep, 0, sizeof *rep);
    if (val->n_users != h->n_users || val->n_books != h->n_books)
        return br_error(BR_EINVAL, "rerank: the split and the model differ in shape");
    if (!h->ease || !h->cf[BR_ENGINE_ALS])
        return br_error(BR_EINVAL, "rerank: the hybrid needs ease and als fitted");
    uint32_t *users = br_malloc(((size_t)val->n_users + 1) * sizeof *users);
    uint32_t *n_rel = br_calloc((size_t)val->n_users + 1, sizeof *n_rel);
    if (!users || !n_rel) {
        br_free(users);
        br_free(n_rel);
        return br_error(BR_ENOMEM, "rerank");
    }
    size_t nu = 0;
    for (uint32_t u = 0; u < val->n_users; u++) {
        uint32_t nr = 0;
        for (uint64_t j = val->test_ptr[u]; j < val->test_ptr[u + 1]; j++)
            nr += val->test_value[j] >= val->relevant_min;
        if (nr) n_rel[nu] = nr, users[nu++] = u;
    }
    if (max_readers && nu > max_readers) {
        /* An even spread of the readers, deterministic. */
        for (size_t i = 0; i < max_readers; i++) {
            users[i] = users[i * nu / max_readers];
            n_rel[i] = n_rel[i * nu / max_readers];
        }
        nu = max_readers;
    }
    /* One model copy per candidate depth (shares every fitted part). */
    br_hybrid hg[BR_RERANK_GRID];
    size_t capg[BR_RERANK_GRID];
    rr_set set[BR_RERANK_GRID];
    memset(set, 0, sizeof set);
    br_status st = BR_OK;
    for (int g = 0; g < BR_RERANK_GRID; g++) {
        hg[g] = *h;
        hg[g].opt.cand_ease = hg[g].opt.cand_als = rr_grid[g];
        capg[g] = hy_cap(&hg[g]);
        set[g].start = br_calloc(nu + 2, sizeof *set[g].start);
        if (!set[g].start) st = br_error(BR_ENOMEM, "rerank");
    }
    float *bx = NULL;
    uint8_t *by = NULL;
    size_t *bn = br_malloc((size_t)BLOCK * BR_RERANK_GRID * sizeof *bn);
    size_t bstride = 0;
    for (int g = 0; g < BR_RERANK_GRID; g++) bstride += capg[g];
    bx = br_malloc((size_t)BLOCK * bstride * F * sizeof *bx + 4);
    by = br_malloc((size_t)BLOCK * bstride + 4);
    if (!st && (!bx || !by || !bn)) st = br_error(BR_ENOMEM, "rerank");
    int bad = 0;
    for (size_t b = 0; !st && !bad && b < nu; b += BLOCK) {
        size_t nb = nu - b < BLOCK ? nu - b : BLOCK;
        const uint32_t *ub = users + b;
        float *als = NULL, *work = NULL;
        st = hy_als_block(&hg[BR_RERANK_GRID - 1], ub, nb, &als, &work);
        if (!st) {
#pragma omp parallel num_threads(br_get_num_threads())
            {
                hy_work w;
                int ok = hy_work_alloc(&hg[BR_RERANK_GRID - 1], &w) == BR_OK;
                if (!ok) {
#pragma omp atomic write
                    bad = 1;
                }
#pragma omp for schedule(dynamic, 4)
                for (size_t j = 0; j < nb; j++) {
                    size_t off = 0;
                    for (int g = 0; g < BR_RERANK_GRID; g++) {
                        bn[j * BR_RERANK_GRID + g] = 0;
                        if (!ok) continue;
                        size_t n =
                            hy_candidates(&hg[g], ub[j], als ? als + j * h->n_books : NULL, &w);
                        hy_features(&hg[g], ub[j], &w, n);
                        uint8_t *yl = by + j * bstride + off;
                        memset(yl, 0, n);
                        for (uint64_t q = val->test_ptr[ub[j]]; q < val->test_ptr[ub[j] + 1]; q++) {
                            if (val->test_value[q] < val->relevant_min) continue;
                            for (size_t p = 0; p < n; p++)
                                if (w.book[p] == val->test_book[q]) yl[p] = 1;
                        }
                        memcpy(bx + (j * bstride + off) * F, w.feat, n * F * sizeof *bx);
                        bn[j * BR_RERANK_GRID + g] = n;
                        off += capg[g];
                    }
                }
                if (ok) hy_work_free(&w);
            }
        }
        br_aligned_free(als);
        br_aligned_free(work);
        for (size_t j = 0; !st && j < nb; j++) {
            size_t off = 0;
            for (int g = 0; g < BR_RERANK_GRID && !st; g++) {
                size_t n = bn[j * BR_RERANK_GRID + g];
                set[g].start[b + j] = set[g].rows;
                st = rr_set_add(&set[g], bx + (j * bstride + off) * F, by + j * bstride + off, n);
                set[g].start[b + j + 1] = set[g].rows;
                off += capg[g];
            }
        }
    }
    if (!st && bad) st = br_error(BR_ENOMEM, "rerank");
    /* Each depth: fit on the even readers, NDCG@10 on the odd ones; the
     * best depth is refitted on every reader. */
    int best = -1;
    double gn[BR_RERANK_GRID] = {0};
    for (int g = 0; g < BR_RERANK_GRID && !st; g++) {
        rr_set tr;
        float cg[BR_RERANK_FEATURES];
        st = rr_subset(&set[g], nu, 0, &tr);
        if (!st) st = br_rerank_fit(tr.x, tr.y, tr.rows, lambda, cg, NULL);
        br_free(tr.x);
        br_free(tr.y);
        if (st) break;
        gn[g] = rr_ndcg(&set[g], nu, n_rel, cg);
        if (best < 0 || gn[g] > gn[best]) best = g;
    }
    if (!st) {
        rr_set all;
        st = rr_subset(&set[best], nu, -1, &all);
        if (!st) st = br_rerank_fit(all.x, all.y, all.rows, lambda, coef, rep);
        br_free(all.x);
        br_free(all.y);
        /* br_rerank_fit reset the report: the grid again */
        for (int g = 0; g < BR_RERANK_GRID; g++)
            rep->grid[g] = rr_grid[g], rep->grid_ndcg[g] = gn[g];
        rep->readers = nu;
        rep->cand = rr_grid[best];
    }
    for (int g = 0; g < BR_RERANK_GRID; g++) {
        br_free(set[g].x);
        br_free(set[g].y);
        br_free(set[g].start);
    }
    br_free(bx);
    br_free(by);
    br_free(bn);
    br_free(users);
    br_free(n_rel);
    return st;
}

/* One reader's candidates (and their features when feat is given), the
 * first cap of them copied out: what br_hybrid_candidates and
 * br_hybrid_features return. */
static br_status hy_reader_candidates(const br_hybrid *h, uint32_t user, uint32_t *books,
                                      float *raw, float *feat, size_t cap, size_t *n)
{
    *n = 0;
    if (user >= h->n_users) return br_error(BR_EINVAL, "hybrid: reader %u out of range", user);
    br_status st = feat ? hy_check_source(h) : hy_check(h);
    if (st) return st;
    float *als = NULL, *work = NULL;
    hy_work w;
    if (!(st = hy_work_alloc(h, &w))) st = hy_als_block(h, &user, 1, &als, &work);
    if (!st) {
        size_t c = hy_candidates(h, user, als, &w);
        if (feat) hy_features(h, user, &w, c);
        *n = c < cap ? c : cap;
        memcpy(books, w.book, *n * sizeof *books);
        if (raw) memcpy(raw, w.raw, *n * HY_C * sizeof *raw);
        if (feat) memcpy(feat, w.feat, *n * BR_RERANK_FEATURES * sizeof *feat);
    }
    hy_work_free(&w);
    br_aligned_free(als);
    br_aligned_free(work);
    return st;
}

br_status br_hybrid_candidates(const br_hybrid *h, uint32_t user, uint32_t *books, float *raw,
                               size_t cap, size_t *n)
{
    return hy_reader_candidates(h, user, books, raw, NULL, cap, n);
}

br_status br_hybrid_features(const br_hybrid *h, uint32_t user, uint32_t *books, float *feat,
                             size_t cap, size_t *n)
{
    return hy_reader_candidates(h, user, books, NULL, feat, cap, n);
}

/* The default hybrid for a block of readers: the top k of each reader's
 * candidates by the blend (ties to the lower book), padded with
 * UINT32_MAX / -INFINITY. */
static br_status hy_rank_block(const br_hybrid *h, const uint32_t *users, size_t nb, uint32_t k,
                               uint32_t *items, float *scores, int fill)
{
    br_status st = hy_check(h);
    if (st) return st;
    float *als = NULL, *work = NULL;
    st = hy_als_block(h, users, nb, &als, &work);
    int bad = 0;
    if (!st) {
#pragma omp parallel num_threads(br_get_num_threads())
        {
            hy_work w;
            int ok = hy_work_alloc(h, &w) == BR_OK;
            uint32_t *ti = ok ? br_malloc(((size_t)k + w.cap + 1) * sizeof *ti) : NULL;
            float *tv = ok ? br_malloc(((size_t)k + w.cap + 1) * sizeof *tv) : NULL;
            if (!ti || !tv) {
#pragma omp atomic write
                bad = 1;
            }
#pragma omp for schedule(dynamic, 4)
            for (size_t j = 0; j < nb; j++) {
                if (!ti || !tv) continue;
                size_t n = hy_candidates(h, users[j], als ? als + j * h->n_books : NULL, &w);
                hy_score(h, users[j], &w, n);
                /* hy_top over the candidates: entry p is book w.book[p]; no
                 * candidate is rated, so nothing is skipped. */
                uint32_t c = hy_top(w.score, (uint32_t)n, w.book, w.mark, UINT32_MAX, k, ti, tv);
                for (uint32_t p = 0; p < k; p++) {
                    items[j * k + p] = p < c ? ti[p] : UINT32_MAX;
                    if (scores) scores[j * k + p] = p < c ? tv[p] : -INFINITY;
                }
                if (!fill || c >= k || !als) continue;
                /* More asked for than there are candidates (a top 100 from
                 * 30 + 30): the rest of the list follows in ALS order,
                 * below every candidate (scores last - 1, last - 2, ...). */
                float last = c ? tv[c - 1] : 0.0f;
                uint32_t e2 = 2 * w.epoch, cm = e2 + 1;
                uint32_t m = hy_top(als + j * h->n_books, h->n_books, NULL, w.mark, e2,
                                    k + (uint32_t)n, ti, tv);
                uint32_t p = c;
                for (uint32_t q = 0; q < m && p < k; q++) {
                    if (w.mark[ti[q]] == cm) continue;
                    items[j * k + p] = ti[q];
                    if (scores) scores[j * k + p] = last - (float)(p - c + 1);
                    p++;
                }
            }
            br_free(ti);
            br_free(tv);
            if (ok) hy_work_free(&w);
        }
    }
    br_aligned_free(als);
    br_aligned_free(work);
    if (!st && bad) st = br_error(BR_ENOMEM, "hybrid: candidate buffers");
    return st;
}

static br_status rank_block(const br_hybrid *h, br_engine e, const uint32_t *users, size_t nb,
                            uint32_t k, uint32_t *items, float *scores, int depth);

/* Final scores of a combination for a block of readers into out (nb,
 * n_books); -INFINITY for books not in any list (fusion). */
static br_status combine_block(const br_hybrid *h, br_engine e, const uint32_t *users, size_t nb,
                               uint32_t k, float *out, scratch *sc, int depth)
{
    uint32_t nbk = h->n_books;
    size_t cells = nb * (size_t)nbk;
    br_status st = BR_OK;
    if (e == BR_ENGINE_NOTEBOOK_HYBRID) {
        if ((st = base_scores(h, BR_ENGINE_CONTENT_FAVOURITE, users, nb, out, sc->work))) return st;
        if ((st = base_scores(h, BR_ENGINE_SVD, users, nb, sc->b, sc->work))) return st;
        for (size_t j = 0; j < nb; j++) {
            float *c = out + j * nbk, *v = sc->b + j * nbk;
            minmax_row(c, nbk);
            minmax_row(v, nbk);
            for (uint32_t i = 0; i < nbk; i++)
                c[i] = h->opt.nb_content * c[i] + h->opt.nb_collab * v[i];
        }
        return BR_OK;
    }
    if (e == BR_ENGINE_HYBRID) {
        /* The blend on a full row (explanations, fusions of the hybrid):
         * -INFINITY outside the candidates. */
        uint32_t *it = br_malloc(nb * (size_t)(hy_cap(h) + 1) * sizeof *it);
        float *sv = br_malloc(nb * (size_t)(hy_cap(h) + 1) * sizeof *sv);
        uint32_t kk = (uint32_t)hy_cap(h);
        if (!it || !sv) st = br_error(BR_ENOMEM, "hybrid");
        if (!st) st = hy_rank_block(h, users, nb, kk, it, sv, 0);
        for (size_t x = 0; !st && x < cells; x++) out[x] = -INFINITY;
        for (size_t j = 0; !st && j < nb; j++)
            for (uint32_t p = 0; p < kk && it[j * kk + p] != UINT32_MAX; p++)
                out[j * nbk + it[j * kk + p]] = sv[j * kk + p];
        br_free(it);
        br_free(sv);
        return st;
    }
    /* Fusion: points for each engine's top list. */
    int rrf = e == BR_ENGINE_RRF;
    uint32_t n_in = rrf ? h->opt.rrf_n : h->opt.fusion_n;
    const br_engine *in = rrf ? h->opt.rrf : h->opt.fusion;
    uint32_t d = rrf ? h->opt.rrf_depth : h->opt.fusion_depth;
    if (!d) d = k;
    uint32_t *li = br_malloc(nb * (size_t)d * sizeof *li);
    if (!li) return br_error(BR_ENOMEM, "fusion lists");
    for (size_t x = 0; x < cells; x++) out[x] = -INFINITY;
    for (uint32_t c = 0; c < n_in && !st; c++) {
        if (in[c] == e) continue;
        if ((st = rank_block(h, in[c], users, nb, d, li, NULL, depth + 1))) break;
        for (size_t j = 0; j < nb; j++)
            for (uint32_t p = 0; p < d; p++) {
                uint32_t b = li[j * d + p];
                if (b == UINT32_MAX) break;
                float pts = rrf ? 1.0f / (h->opt.rrf_k + (float)(p + 1)) : 1.0f / (float)(p + 1);
                float *o = out + j * nbk + b;
                *o = (*o > -INFINITY ? *o : 0.0f) + pts;
            }
    }
    br_free(li);
    return st;
}

static br_status rank_block(const br_hybrid *h, br_engine e, const uint32_t *users, size_t nb,
                            uint32_t k, uint32_t *items, float *scores, int depth)
{
    if (depth > 3) return br_error(BR_EINVAL, "hybrid: fusion nested too deep");
    if (e == BR_ENGINE_HYBRID) {
        /* No full rows: the scratch below would be (BLOCK, n_books) x 3. */
        float *sco = scores ? scores : br_malloc(nb * (size_t)k * sizeof(float) + 4);
        if (!sco) return br_error(BR_ENOMEM, "hybrid");
        br_status st = hy_rank_block(h, users, nb, k, items, sco, 1);
        if (sco != scores) br_free(sco);
        return st;
    }
    scratch sc = {0};
    br_status st = scratch_alloc(h, &sc);
    float *sco = scores ? scores : br_malloc(nb * (size_t)k * sizeof(float) + 4);
    if (!st && !sco) st = br_error(BR_ENOMEM, "hybrid");
    if (!st) {
        if ((unsigned)e < N_BASE)
            st = base_scores(h, e, users, nb, sc.a, sc.work);
        else
            st = combine_block(h, e, users, nb, k, sc.a, &sc, depth);
    }
    if (!st) {
#pragma omp parallel for schedule(static) num_threads(br_get_num_threads())
        for (size_t j = 0; j < nb; j++)
            select_row(sc.a + j * (size_t)h->n_books, h->n_books, &h->r, users[j], k, items + j * k,
                       sco + j * k);
    }
    if (sco != scores) br_free(sco);
    scratch_free(&sc);
    return st;
}

br_status br_hybrid_rank(const br_hybrid *h, br_engine e, const uint32_t *users, size_t n,
                         uint32_t k, uint32_t *items, float *scores)
{
    if ((unsigned)e >= BR_ENGINE_COUNT) return br_error(BR_EINVAL, "hybrid: bad engine");
    if (k == 0) return br_error(BR_EINVAL, "hybrid: k must be positive");
    for (size_t j = 0; j < n; j++)
        if (users[j] >= h->n_users)
            return br_error(BR_EINVAL, "hybrid: reader index %u out of range", users[j]);
    for (size_t b = 0; b < n; b += BLOCK) {
        size_t nb = n - b < BLOCK ? n - b : BLOCK;
        br_status st =
            rank_block(h, e, users + b, nb, k, items + b * k, scores ? scores + b * k : NULL, 0);
        if (st) return st;
    }
    return BR_OK;
}

static br_status ranker_rank(void *ctx, const uint32_t *users, size_t n, uint32_t k,
                             uint32_t *items)
{
    const br_hybrid_engine *c = ctx;
    return br_hybrid_rank(c->h, c->e, users, n, k, items, NULL);
}

static br_status ranker_predict(void *ctx, const uint32_t *users, const uint32_t *books, size_t n,
                                float *out)
{
    const br_hybrid_engine *c = ctx;
    return br_hybrid_predict(c->h, c->e, users, books, n, out);
}

br_ranker br_hybrid_ranker(br_hybrid_engine *pair)
{
    return (br_ranker){br_engine_name(pair->e), pair, ranker_rank,
                       br_engine_predicts(pair->e) ? ranker_predict : NULL};
}

br_status br_hybrid_predict(const br_hybrid *h, br_engine e, const uint32_t *users,
                            const uint32_t *books, size_t n, float *out)
{
    if (!br_engine_predicts(e))
        return br_error(BR_EUNSUPPORTED, "%s does not predict ratings", br_engine_name(e));
    br_status st = need_fitted(h, e);
    if (st) return st;
    const br_cf_model *m = h->cf[e];
    uint32_t k = br_cf_model_factors(m);
    const float *uf = br_cf_model_user_factors(m), *vf = br_cf_model_item_factors(m);
    const float *ub = br_cf_model_user_bias(m), *ib = br_cf_model_item_bias(m);
    for (size_t q = 0; q < n; q++) {
        if (users[q] >= h->n_users || books[q] >= h->n_books)
            return br_error(BR_EINVAL, "hybrid: predict index out of range");
        float v = br_cf_model_global_bias(m) + (ub ? ub[users[q]] : 0) + (ib ? ib[books[q]] : 0);
        v += cblas_sdot((int)k, uf + (size_t)users[q] * k, 1, vf + (size_t)books[q] * k, 1);
        out[q] = v;
    }
    return BR_OK;
}

/* ---------------------------------------------------------- explanation -- */

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
 * among the reader's books rated >= 4 (all of them when none is), the one
 * with the largest sim(j, book). */
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
    for (uint64_t q = lo; q < hi; q++) any_liked |= h->r.values[q] >= 4.0f;
    uint32_t best = UINT32_MAX;
    float bs = -INFINITY;
    for (uint64_t q = lo; q < hi; q++) {
        if (any_liked && h->r.values[q] < 4.0f) continue;
        float s = sim(h, h->r.indices[q], book);
        if (s > bs) bs = s, best = h->r.indices[q];
    }
    return best;
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
    scratch sc = {0};
    br_status st = scratch_alloc(h, &sc);
    if (!st) {
        if ((unsigned)e < N_BASE)
            st = base_scores(h, e, &u, 1, sc.a, sc.work);
        else
            st = combine_block(h, e, &u, 1, depth, sc.a, &sc, 1);
    }
    if (!st) *score = sc.a[book];
    scratch_free(&sc);
    if (st) return st;
    uint32_t *it = br_malloc(depth * sizeof *it);
    if (!it) return br_error(BR_ENOMEM, "explain");
    st = rank_block(h, e, &u, 1, depth, it, NULL, 1);
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
            size_t cap = hy_cap(h), nc = 0;
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
                if (!st) hy_zscore(fx, nc);
            }
            p->contribution = 0;
            for (size_t q = 0; !st && q < nc; q++) {
                if (cb[q] != book) continue;
                if (!h->opt.rerank) {
                    p->contribution = w[c] * fx[q * HY_C + ci];
                    continue;
                }
                static const int8_t group[BR_RERANK_FEATURES] = {0, 1, 2, 3, 0, 1,  2, 0, 1, 2,
                                                                 3, 2, 2, 3, 0, -1, 0, 1, 3, 0};
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
            scratch sc = {0};
            if ((st = scratch_alloc(h, &sc)) ||
                (st = base_scores(h, parts[c], &user, 1, sc.a, sc.work))) {
                scratch_free(&sc);
                return st;
            }
            minmax_row(sc.a, h->n_books);
            p->contribution = w[c] * sc.a[book];
            scratch_free(&sc);
        } else
            p->contribution = p->score;
        why_words(h, cat, parts[c], user, book, p->score, p->why, sizeof p->why);
    }
    return BR_OK;
}

/* ---------------------------------------------------------------- tuning -- */

br_status br_hybrid_tune(const br_hybrid *h, const br_split *val, uint32_t k,
                         const float (*grid)[4], size_t n_grid, double *ndcg)
{
    const br_engine comp[4] = {BR_ENGINE_EASE, BR_ENGINE_ALS, BR_ENGINE_CONTENT,
                               BR_ENGINE_POPULARITY};
    for (size_t g = 0; g < n_grid; g++)
        for (int c = 0; c < 4; c++)
            if (grid[g][c] != 0 && !h->have[comp[c]])
                return br_error(BR_EINVAL, "tune: %s was not fitted", br_engine_name(comp[c]));
    if (val->n_users != h->n_users || val->n_books != h->n_books)
        return br_error(BR_EINVAL, "tune: the split and the model differ in shape");
    br_status st = hy_check_source(h);
    if (st) return st;
    /* Readers with a relevant held-out book. */
    uint32_t *users = br_malloc(((size_t)val->n_users + 1) * sizeof *users);
    if (!users) return br_error(BR_ENOMEM, "tune");
    size_t nu = 0;
    for (uint32_t u = 0; u < val->n_users; u++)
        for (uint64_t j = val->test_ptr[u]; j < val->test_ptr[u + 1]; j++)
            if (val->test_value[j] >= val->relevant_min) {
                users[nu++] = u;
                break;
            }
    for (size_t g = 0; g < n_grid; g++) ndcg[g] = 0;
    int bad = 0;
    /* The candidates and their z-scores once per reader, every weight set
     * on them (the same scoring as br_hybrid_rank). */
    for (size_t b = 0; !st && !bad && b < nu; b += BLOCK) {
        size_t nb = nu - b < BLOCK ? nu - b : BLOCK;
        const uint32_t *ub = users + b;
        float *als = NULL, *work = NULL;
        st = hy_als_block(h, ub, nb, &als, &work);
        if (!st) {
#pragma omp parallel num_threads(br_get_num_threads())
            {
                hy_work w;
                int ok = hy_work_alloc(h, &w) == BR_OK;
                uint32_t *it = br_malloc(((size_t)k + 1) * sizeof *it);
                float *tv = br_malloc(((size_t)k + 1) * sizeof *tv);
                uint32_t *rl = br_malloc((val->n_test + 1) * sizeof *rl);
                double *acc = br_calloc(n_grid + 1, sizeof *acc);
                if (!ok || !it || !tv || !rl || !acc) {
#pragma omp atomic write
                    bad = 1;
                }
#pragma omp for schedule(dynamic, 4)
                for (size_t j = 0; j < nb; j++) {
                    if (!ok || !it || !tv || !rl || !acc) continue;
                    size_t n = hy_candidates(h, ub[j], als ? als + j * h->n_books : NULL, &w);
                    hy_zscore(w.raw, n);
                    size_t n_rel = 0;
                    for (uint64_t q = val->test_ptr[ub[j]]; q < val->test_ptr[ub[j] + 1]; q++)
                        if (val->test_value[q] >= val->relevant_min)
                            rl[n_rel++] = val->test_book[q];
                    for (size_t g = 0; g < n_grid; g++) {
                        hy_blend(w.raw, n, grid[g], w.score);
                        uint32_t c =
                            hy_top(w.score, (uint32_t)n, w.book, w.mark, UINT32_MAX, k, it, tv);
                        for (uint32_t p = c; p < k; p++) it[p] = UINT32_MAX;
                        br_list_metrics m;
                        br_eval_list(it, k, rl, n_rel, &m);
                        acc[g] += m.ndcg;
                    }
                }
#pragma omp critical(hybrid_tune_sum)
                for (size_t g = 0; acc && g < n_grid; g++) ndcg[g] += acc[g];
                br_free(it);
                br_free(tv);
                br_free(rl);
                br_free(acc);
                if (ok) hy_work_free(&w);
            }
        }
        br_aligned_free(als);
        br_aligned_free(work);
    }
    if (!st && bad) st = br_error(BR_ENOMEM, "tune");
    for (size_t g = 0; g < n_grid && nu; g++) ndcg[g] /= (double)nu;
    br_free(users);
    return st;
}
