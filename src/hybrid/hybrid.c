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
 * with every engine (candidates.c).
 *
 * Here: the fitted object, the base engines' scores of a block of readers,
 * the combinations (the notebook's blend, the fusions), br_hybrid_rank and
 * br_hybrid_predict. Elsewhere in src/hybrid/: the engine registry
 * (engine.c), the default hybrid's candidates (candidates.c), its learned
 * re-ranker (rerank.c), explanations (explain.c), weight tuning (tune.c).
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/feedback.h"
#include "hybrid/hybrid_internal.h"

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
    o->cold_books = 1;
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
    o->cand_cold = 10;
    o->cold_slot = 10;
    o->rerank = 1;
    static const float coef[BR_RERANK_FEATURES] = {
        0.1909f,   0.1583f, 0.08721f,  -0.1126f, 0.3418f,   0.1917f, -0.02231f, -0.1455f,  0.00672f,
        -0.05391f, 0.0435f, 0.106f,    0.135f,   -0.09735f, 4.875f,  -0.09285f, -0.06474f, 0.01445f,
        -0.03815f, 5.044f,  -0.09794f, -0.4783f, 0.3896f,   0.3156f, -2.922f};
    memcpy(o->rerank_coef, coef, sizeof coef);
}

/* The base engines a ranking uses (flags in need[HY_N_BASE]). */
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
            if (o->rerank_coef[2] != 0 || o->rerank_coef[6] != 0 || o->rerank_coef[9] != 0 ||
                o->rerank_coef[20] != 0)
                need[BR_ENGINE_CONTENT] = 1;
        }
        if (o->w_content != 0) need[BR_ENGINE_CONTENT] = 1;
        if (o->w_popularity != 0) need[BR_ENGINE_POPULARITY] = 1;
        break;
    default:
        if ((unsigned)e < HY_N_BASE) need[e] = 1;
    }
}

void br_hybrid_free(br_hybrid *h)
{
    if (!h) return;
    br_csr_free(&h->r);
    br_free(h->fav);
    br_free(h->last);
    br_free(h->bmean);
    br_free(h->bcount);
    br_free(h->cold);
    br_free(h->umean);
    br_aligned_free(h->profile);
    for (int i = 0; i < 4; i++) br_cf_model_free(h->cf[i]);
    br_ease_free(h->ease);
    br_free(h->tribe);
    br_free(h->tribe_name);
    br__hybrid_lex_free(h);
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
    int need[HY_N_BASE] = {0};
    needs(&h->opt, e, need, 0);
    double s = 0;
    for (int i = 0; i < HY_N_BASE; i++)
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

/* Profiles: the feedback rule's (br__feedback_profile: the liked books'
 * rating-weighted direction less a quarter of the disliked books'), from the
 * training rows; zero for a reader without ratings. */
static br_status fit_profiles(br_hybrid *h)
{
    size_t dim = h->dim;
    int bad = 0;
#pragma omp parallel num_threads(br_get_num_threads())
    {
        float *neg = br_malloc(dim * sizeof *neg);
        if (!neg) {
#pragma omp atomic write
            bad = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (uint32_t u = 0; u < h->n_users; u++) {
            if (!neg) continue;
            uint64_t lo = h->r.indptr[u], hi = h->r.indptr[u + 1];
            br__feedback_profile(h->emb, dim, h->r.indices + lo, h->r.values + lo, hi - lo,
                                 h->gmean, h->profile + (size_t)u * dim, neg);
        }
        br_free(neg);
    }
    return bad ? br_error(BR_ENOMEM, "hybrid: profiles") : BR_OK;
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
    int need[HY_N_BASE] = {0};
    for (size_t i = 0; i < n_engines; i++) {
        if ((unsigned)engines[i] >= BR_ENGINE_COUNT) {
            br_hybrid_free(h);
            return br_error(BR_EINVAL, "hybrid: engine %d out of range", (int)engines[i]);
        }
        needs(&h->opt, engines[i], need, 0);
    }
    br_status st = br_csr_from_coo(d->n_users, d->n_books, d->n, d->user, d->book, d->value, &h->r);
    /* rb: what the books' side is fitted on (without fold-in readers). */
    br_csr rt = {0}, ri = {0};
    const br_csr *rb = &h->r;
    if (!st && h->opt.fold_in && !(st = br__hybrid_item_ratings(h, &ri))) rb = &ri;
    if (!st) st = br_csr_transpose(rb, &rt);
    h->fav = br_malloc(((size_t)d->n_users + 1) * sizeof *h->fav);
    if (!st && !h->fav) st = br_error(BR_ENOMEM, "hybrid");
    if (st) goto fail;
    {
        /* The feedback rule's reader means (br_reader_mean). */
        double gs = 0;
        for (size_t i = 0; i < d->n; i++) gs += d->value[i];
        h->gmean = d->n ? (float)(gs / (double)d->n) : 0.0f;
        h->umean = br_malloc(((size_t)d->n_users + 1) * sizeof *h->umean);
        double *usum = br_calloc((size_t)d->n_users + 1, sizeof *usum);
        size_t *ucnt = br_calloc((size_t)d->n_users + 1, sizeof *ucnt);
        if (!h->umean || !usum || !ucnt) {
            br_free(usum);
            br_free(ucnt);
            st = br_error(BR_ENOMEM, "hybrid");
            goto fail;
        }
        for (size_t i = 0; i < d->n; i++) usum[d->user[i]] += d->value[i], ucnt[d->user[i]]++;
        for (uint32_t u = 0; u < d->n_users; u++)
            h->umean[u] = br_reader_mean(usum[u], ucnt[u], h->gmean);
        br_free(usum);
        br_free(ucnt);
        /* Favourite: the first of the highest-rated, in input order, among
         * the books the reader did not dislike (none: no favourite). */
        float *best = br_malloc(((size_t)d->n_users + 1) * sizeof *best);
        if (!best) {
            st = br_error(BR_ENOMEM, "hybrid");
            goto fail;
        }
        for (uint32_t u = 0; u < d->n_users; u++) h->fav[u] = UINT32_MAX, best[u] = -INFINITY;
        for (size_t i = 0; i < d->n; i++)
            if (d->value[i] > best[d->user[i]] &&
                br_rating_weight(d->value[i], h->umean[d->user[i]]) >= 0) {
                best[d->user[i]] = d->value[i];
                h->fav[d->user[i]] = d->book[i];
            }
        br_free(best);
        /* Latest: the last rating in input order not disliked. Mean rating damped by 10
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
        size_t n_item = 0;
        for (uint32_t u = 0; u < d->n_users; u++) h->last[u] = UINT32_MAX;
        for (size_t i = 0; i < d->n; i++) {
            if (br_rating_weight(d->value[i], h->umean[d->user[i]]) >= 0)
                h->last[d->user[i]] = d->book[i];
            if (h->opt.fold_in && h->opt.fold_in[d->user[i]]) continue;
            h->bmean[d->book[i]] += d->value[i];
            cnt[d->book[i]] += 1;
            gsum += d->value[i];
            n_item++;
        }
        float g = n_item ? (float)(gsum / (double)n_item) : 0.0f;
        for (uint32_t b = 0; b < d->n_books; b++)
            h->bmean[b] = (h->bmean[b] + 10.0f * g) / (cnt[b] + 10.0f) - g;
        h->bcount = cnt;
    }
    int content = need[BR_ENGINE_CONTENT] || need[BR_ENGINE_CONTENT_FAVOURITE] ||
                  need[BR_ENGINE_CONTENT_CLUSTER];
    if (content && (!emb || !dim)) {
        st = br_error(BR_EINVAL, "hybrid: the content engines need book embeddings");
        goto fail;
    }
    for (int e = 0; e < HY_N_BASE && !st; e++) {
        if (!need[e]) continue;
        uint64_t t0 = br_now_ns();
        br_als_options ao;
        switch ((br_engine)e) {
        case BR_ENGINE_POPULARITY:
            st = br_popularity_fit(rb, &h->opt.pop, &h->cf[0]);
            break;
        case BR_ENGINE_SVD:
            st = br_cf_svd_fit(rb, &rt, &h->opt.svd, &h->cf[1]);
            break;
        case BR_ENGINE_ALS:
            ao = h->opt.als;
            ao.kind = BR_ALS_IMPLICIT;
            st = br_als_fit(rb, &rt, &ao, &h->cf[2]);
            break;
        case BR_ENGINE_ALS_EXPLICIT:
            ao = h->opt.als_explicit;
            ao.kind = BR_ALS_EXPLICIT;
            st = br_als_fit(rb, &rt, &ao, &h->cf[3]);
            break;
        case BR_ENGINE_EASE:
            st = br_ease_fit(rb, &rt, &h->opt.ease, &h->ease);
            break;
        case BR_ENGINE_CONTENT:
            h->profile = br_aligned_alloc((size_t)d->n_users * dim * sizeof(float) + 64, BR_ALIGN);
            if (!h->profile)
                st = br_error(BR_ENOMEM, "hybrid: profiles");
            else
                st = fit_profiles(h);
            if (!st) st = br__hybrid_lex_fit(h, cat, engines, n_engines);
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
    if (!st && h->cf[BR_ENGINE_ALS]) {
        uint64_t t0 = br_now_ns();
        st = br__hybrid_cold_factors(h, cat, &rt);
        h->fit_s[BR_ENGINE_ALS] += (double)(br_now_ns() - t0) / 1e9;
    }
    if (!st && h->opt.fold_in) st = br__hybrid_fold_in(h);
    if (st) goto fail;
    br_csr_free(&rt);
    br_csr_free(&ri);
    *out = h;
    return BR_OK;
fail:
    br_csr_free(&rt);
    br_csr_free(&ri);
    br_hybrid_free(h);
    return st;
}

/* ------------------------------------------------------------ scoring -- */

static br_status need_fitted(const br_hybrid *h, br_engine e)
{
    if ((unsigned)e < HY_N_BASE && !h->have[e])
        return br_error(BR_EINVAL, "hybrid: engine %s was not fitted", br_engine_name(e));
    return BR_OK;
}

/* Scores of a base engine for a block of readers: s (nb, n_books). A book
 * the engine cannot score is -INFINITY. */
br_status br__hybrid_base_scores(const br_hybrid *h, br_engine e, const uint32_t *users, size_t nb,
                                 float *s, float *work /* (HY_BLOCK, max(dim, 64 + k)) */)
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
        if (e == BR_ENGINE_CONTENT) br__hybrid_lex_block(h, users, nb, s);
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
void br__hybrid_minmax_row(float *row, uint32_t n)
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

br_status br__hybrid_scratch_alloc(const br_hybrid *h, br__hybrid_scratch *sc)
{
    size_t row = (size_t)HY_BLOCK * h->n_books * sizeof(float) + 64;
    size_t wk = (size_t)HY_BLOCK * (h->dim > 1024 ? h->dim : 1024) * sizeof(float) + 64;
    sc->a = br_aligned_alloc(row, BR_ALIGN);
    sc->b = br_aligned_alloc(row, BR_ALIGN);
    sc->work = br_aligned_alloc(wk, BR_ALIGN);
    if (!sc->a || !sc->b || !sc->work) return br_error(BR_ENOMEM, "hybrid: score block");
    return BR_OK;
}

void br__hybrid_scratch_free(br__hybrid_scratch *sc)
{
    br_aligned_free(sc->a);
    br_aligned_free(sc->b);
    br_aligned_free(sc->work);
}

/* Final scores of a combination for a block of readers into out (nb,
 * n_books); -INFINITY for books not in any list (fusion). */
br_status br__hybrid_combine(const br_hybrid *h, br_engine e, const uint32_t *users, size_t nb,
                             uint32_t k, float *out, br__hybrid_scratch *sc, int depth)
{
    uint32_t nbk = h->n_books;
    size_t cells = nb * (size_t)nbk;
    br_status st = BR_OK;
    if (e == BR_ENGINE_NOTEBOOK_HYBRID) {
        if ((st = br__hybrid_base_scores(h, BR_ENGINE_CONTENT_FAVOURITE, users, nb, out, sc->work)))
            return st;
        if ((st = br__hybrid_base_scores(h, BR_ENGINE_SVD, users, nb, sc->b, sc->work))) return st;
        for (size_t j = 0; j < nb; j++) {
            float *c = out + j * nbk, *v = sc->b + j * nbk;
            br__hybrid_minmax_row(c, nbk);
            br__hybrid_minmax_row(v, nbk);
            for (uint32_t i = 0; i < nbk; i++)
                c[i] = h->opt.nb_content * c[i] + h->opt.nb_collab * v[i];
        }
        return BR_OK;
    }
    if (e == BR_ENGINE_HYBRID) {
        /* The blend on a full row (explanations, fusions of the hybrid):
         * -INFINITY outside the candidates. */
        uint32_t *it = br_malloc(nb * (size_t)(br__hybrid_cap(h) + 1) * sizeof *it);
        float *sv = br_malloc(nb * (size_t)(br__hybrid_cap(h) + 1) * sizeof *sv);
        uint32_t kk = (uint32_t)br__hybrid_cap(h);
        if (!it || !sv) st = br_error(BR_ENOMEM, "hybrid");
        if (!st) st = br__hybrid_rank_candidates(h, users, nb, kk, it, sv, 0);
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
        if ((st = br__hybrid_rank_block(h, in[c], users, nb, d, li, NULL, depth + 1))) break;
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

br_status br__hybrid_rank_block(const br_hybrid *h, br_engine e, const uint32_t *users, size_t nb,
                                uint32_t k, uint32_t *items, float *scores, int depth)
{
    if (depth > 3) return br_error(BR_EINVAL, "hybrid: fusion nested too deep");
    if (e == BR_ENGINE_HYBRID) {
        /* No full rows: the scratch below would be (HY_BLOCK, n_books) x 3. */
        float *sco = scores ? scores : br_malloc(nb * (size_t)k * sizeof(float) + 4);
        if (!sco) return br_error(BR_ENOMEM, "hybrid");
        br_status st = br__hybrid_rank_candidates(h, users, nb, k, items, sco, 1);
        if (sco != scores) br_free(sco);
        return st;
    }
    br__hybrid_scratch sc = {0};
    br_status st = br__hybrid_scratch_alloc(h, &sc);
    float *sco = scores ? scores : br_malloc(nb * (size_t)k * sizeof(float) + 4);
    if (!st && !sco) st = br_error(BR_ENOMEM, "hybrid");
    if (!st) {
        if ((unsigned)e < HY_N_BASE)
            st = br__hybrid_base_scores(h, e, users, nb, sc.a, sc.work);
        else
            st = br__hybrid_combine(h, e, users, nb, k, sc.a, &sc, depth);
    }
    if (!st) {
#pragma omp parallel for schedule(static) num_threads(br_get_num_threads())
        for (size_t j = 0; j < nb; j++) {
            br__hybrid_restrict_row(h, sc.a + j * (size_t)h->n_books);
            select_row(sc.a + j * (size_t)h->n_books, h->n_books, &h->r, users[j], k, items + j * k,
                       sco + j * k);
        }
    }
    if (sco != scores) br_free(sco);
    br__hybrid_scratch_free(&sc);
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
    for (size_t b = 0; b < n; b += HY_BLOCK) {
        size_t nb = n - b < HY_BLOCK ? n - b : HY_BLOCK;
        br_status st = br__hybrid_rank_block(h, e, users + b, nb, k, items + b * k,
                                             scores ? scores + b * k : NULL, 0);
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
