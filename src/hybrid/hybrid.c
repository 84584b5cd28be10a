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
 * The default hybrid standardises each engine's scores per reader (z-score
 * over the books the reader has not rated) before the weighted sum: the
 * engines' scales differ by orders of magnitude (ratings, dot products,
 * cosines, counts) and min-max scaling lets one outlier (the reader's most
 * similar book, the top bestseller) squash everything else.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/content.h"
#include "bookrec/eval.h"
#include "bookrec/hybrid.h"

#define BLOCK 128
#define N_BASE (BR_ENGINE_CONTENT_CLUSTER + 1)

static const char *const engine_names[BR_ENGINE_COUNT] = {
    "popularity", "svd",     "als",         "als-explicit", "ease", "content", "content-favourite",
    "content-cluster", "notebook-hybrid", "rank-fusion", "rrf", "hybrid"};

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

int br_engine_predicts(br_engine e) { return e == BR_ENGINE_SVD || e == BR_ENGINE_ALS_EXPLICIT; }

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
}

struct br_hybrid {
    br_hybrid_options opt;
    uint32_t n_users, n_books;
    br_csr r;             /* training ratings, readers x books */
    uint32_t *fav;        /* (n_users,) favourite book, UINT32_MAX: none */
    const float *emb;     /* (n_books, dim), borrowed */
    size_t dim;
    float *profile;       /* (n_users, dim) */
    br_cf_model *cf[4];   /* popularity, svd, als, als-explicit */
    br_ease *ease;
    int32_t *tribe;       /* (n_books,) */
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
        if (o->w_ease != 0) need[BR_ENGINE_EASE] = 1;
        if (o->w_als != 0) need[BR_ENGINE_ALS] = 1;
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
    br_aligned_free(h->profile);
    for (int i = 0; i < 4; i++) br_cf_model_free(h->cf[i]);
    br_ease_free(h->ease);
    br_free(h->tribe);
    br_free(h->tribe_name);
    br_free(h);
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
        for (uint32_t i = 0; i < t->k; i++) memcpy(h->tribe_name[i], t->tribe[i].name,
                                                   BR_TRIBE_NAME_MAX);
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

br_status br_hybrid_fit(const br_train_data *d, const br_catalog *cat, const float *emb,
                        size_t dim, const br_hybrid_options *opt, const br_engine *engines,
                        size_t n_engines, br_hybrid **out)
{
    *out = NULL;
    br_hybrid *h = br_calloc(1, sizeof *h);
    if (!h) return br_error(BR_ENOMEM, "hybrid");
    if (opt) h->opt = *opt;
    else br_hybrid_options_default(&h->opt);
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
    br_status st = br_csr_from_coo(d->n_users, d->n_books, d->n, d->user, d->book, d->value,
                                   &h->r);
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
        case BR_ENGINE_POPULARITY: st = br_popularity_fit(&h->r, &h->opt.pop, &h->cf[0]); break;
        case BR_ENGINE_SVD: st = br_cf_svd_fit(&h->r, &rt, &h->opt.svd, &h->cf[1]); break;
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
        case BR_ENGINE_EASE: st = br_ease_fit(&h->r, &rt, &h->opt.ease, &h->ease); break;
        case BR_ENGINE_CONTENT:
            h->profile = br_aligned_alloc((size_t)d->n_users * dim * sizeof(float) + 64,
                                          BR_ALIGN);
            if (!h->profile) st = br_error(BR_ENOMEM, "hybrid: profiles");
            else fit_profiles(h);
            break;
        case BR_ENGINE_CONTENT_FAVOURITE: break;
        case BR_ENGINE_CONTENT_CLUSTER: st = fit_tribes(h, cat); break;
        default: break;
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
            if (e == BR_ENGINE_CONTENT) src = h->profile + (size_t)users[j] * dim;
            else if (h->fav[users[j]] != UINT32_MAX) src = h->emb + (size_t)h->fav[users[j]] * dim;
            if (src) memcpy(work + j * dim, src, dim * sizeof(float));
            else memset(work + j * dim, 0, dim * sizeof(float));
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
    default: return br_error(BR_EINTERNAL, "hybrid: %s is not a base engine", br_engine_name(e));
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

/* z-score over the reader's unrated books with a finite score; books the
 * engine cannot score get the lowest z of the row (last, but not -inf, so
 * the other engines still rank them). */
static void zscore_row(float *row, uint32_t n, const br_csr *r, uint32_t u)
{
    const uint32_t *seen = r->indices + r->indptr[u];
    size_t ns = r->indptr[u + 1] - r->indptr[u], si = 0;
    double sum = 0, sum2 = 0, lo = INFINITY;
    size_t cnt = 0;
    for (uint32_t i = 0; i < n; i++) {
        while (si < ns && seen[si] < i) si++;
        if (si < ns && seen[si] == i) continue;
        if (!isfinite(row[i])) continue;
        sum += row[i];
        sum2 += (double)row[i] * row[i];
        cnt++;
        if (row[i] < lo) lo = row[i];
    }
    double mean = cnt ? sum / (double)cnt : 0;
    double var = cnt ? sum2 / (double)cnt - mean * mean : 0;
    double inv = var > 1e-20 ? 1.0 / sqrt(var) : 0;
    float floor_z = cnt ? (float)((lo - mean) * inv) : 0.0f;
    for (uint32_t i = 0; i < n; i++)
        row[i] = isfinite(row[i]) ? (float)((row[i] - mean) * inv) : floor_z;
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
        if ((st = base_scores(h, BR_ENGINE_CONTENT_FAVOURITE, users, nb, out, sc->work)))
            return st;
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
        const br_engine comp[4] = {BR_ENGINE_EASE, BR_ENGINE_ALS, BR_ENGINE_CONTENT,
                                   BR_ENGINE_POPULARITY};
        const float w[4] = {h->opt.w_ease, h->opt.w_als, h->opt.w_content, h->opt.w_popularity};
        memset(out, 0, cells * sizeof(float));
        for (int c = 0; c < 4; c++) {
            if (w[c] == 0) continue;
            if ((st = base_scores(h, comp[c], users, nb, sc->b, sc->work))) return st;
#pragma omp parallel for schedule(static) num_threads(br_get_num_threads())
            for (size_t j = 0; j < nb; j++) {
                float *v = sc->b + j * nbk, *o = out + j * nbk;
                if (comp[c] == BR_ENGINE_POPULARITY)
                    for (uint32_t i = 0; i < nbk; i++) v[i] = log1pf(fmaxf(v[i], 0.0f));
                zscore_row(v, nbk, &h->r, users[j]);
                for (uint32_t i = 0; i < nbk; i++) o[i] += w[c] * v[i];
            }
        }
        return BR_OK;
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
    scratch sc = {0};
    br_status st = scratch_alloc(h, &sc);
    float *sco = scores ? scores : br_malloc(nb * (size_t)k * sizeof(float) + 4);
    if (!st && !sco) st = br_error(BR_ENOMEM, "hybrid");
    if (!st) {
        if ((unsigned)e < N_BASE) st = base_scores(h, e, users, nb, sc.a, sc.work);
        else st = combine_block(h, e, users, nb, k, sc.a, &sc, depth);
    }
    if (!st) {
#pragma omp parallel for schedule(static) num_threads(br_get_num_threads())
        for (size_t j = 0; j < nb; j++)
            select_row(sc.a + j * (size_t)h->n_books, h->n_books, &h->r, users[j], k,
                       items + j * k, sco + j * k);
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
        br_status st = rank_block(h, e, users + b, nb, k, items + b * k,
                                  scores ? scores + b * k : NULL, 0);
        if (st) return st;
    }
    return BR_OK;
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
        else snprintf(why, cap, "readers with your taste read it");
        break;
    case BR_ENGINE_EASE:
        j = best_reason(h, u, book, sim_ease);
        if (j != UINT32_MAX && sim_ease(h, j, book) > 0)
            snprintf(why, cap, "readers who liked *%s* also liked it", title_of(cat, j));
        else snprintf(why, cap, "readers with your history liked it");
        break;
    case BR_ENGINE_CONTENT:
        j = best_reason(h, u, book, sim_content);
        if (j != UINT32_MAX)
            snprintf(why, cap, "because you rated *%s* %g stars (similar content, %.2f)",
                     title_of(cat, j), (double)stars(h, u, j), (double)sim_content(h, j, book));
        else snprintf(why, cap, "close to what you read");
        break;
    case BR_ENGINE_CONTENT_FAVOURITE:
        if (h->fav[u] != UINT32_MAX)
            snprintf(why, cap, "similar to your favourite *%s* (cosine %.2f)",
                     title_of(cat, h->fav[u]), (double)score);
        else snprintf(why, cap, "no favourite book yet");
        break;
    case BR_ENGINE_CONTENT_CLUSTER: {
        const char *name = "";
        int32_t t = br_hybrid_tribe(h, book, &name);
        if (*name) snprintf(why, cap, "from the *%s* tribe, like your favourite *%s*", name,
                            h->fav[u] != UINT32_MAX ? title_of(cat, h->fav[u]) : "?");
        else snprintf(why, cap, "from tribe %d, like your favourite *%s*", (int)t,
                      h->fav[u] != UINT32_MAX ? title_of(cat, h->fav[u]) : "?");
        break;
    }
    default: snprintf(why, cap, "ranked by %s", br_engine_name(p)); break;
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
        if ((unsigned)e < N_BASE) st = base_scores(h, e, &u, 1, sc.a, sc.work);
        else st = combine_block(h, e, &u, 1, depth, sc.a, &sc, 1);
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

br_status br_hybrid_explain(const br_hybrid *h, const br_catalog *cat, br_engine e,
                            uint32_t user, uint32_t book, br_explanation *out)
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
            if (cw[c] != 0) parts[np] = comp[c], w[np++] = cw[c];
    } else if (e == BR_ENGINE_RANK_FUSION || e == BR_ENGINE_RRF) {
        int rrf = e == BR_ENGINE_RRF;
        np = rrf ? h->opt.rrf_n : h->opt.fusion_n;
        for (uint32_t c = 0; c < np; c++) parts[c] = rrf ? h->opt.rrf[c] : h->opt.fusion[c],
                                          w[c] = 1;
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
        else if (e == BR_ENGINE_NOTEBOOK_HYBRID || e == BR_ENGINE_HYBRID) {
            /* The normalised value the blend used, times the weight. */
            scratch sc = {0};
            if ((st = scratch_alloc(h, &sc)) ||
                (st = base_scores(h, parts[c], &user, 1, sc.a, sc.work))) {
                scratch_free(&sc);
                return st;
            }
            if (e == BR_ENGINE_NOTEBOOK_HYBRID) minmax_row(sc.a, h->n_books);
            else {
                if (parts[c] == BR_ENGINE_POPULARITY)
                    for (uint32_t i = 0; i < h->n_books; i++)
                        sc.a[i] = log1pf(fmaxf(sc.a[i], 0.0f));
                zscore_row(sc.a, h->n_books, &h->r, user);
            }
            p->contribution = w[c] * sc.a[book];
            scratch_free(&sc);
        } else p->contribution = p->score;
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
    int used[4] = {0};
    for (size_t g = 0; g < n_grid; g++)
        for (int c = 0; c < 4; c++) used[c] |= grid[g][c] != 0;
    for (int c = 0; c < 4; c++)
        if (used[c] && !h->have[comp[c]])
            return br_error(BR_EINVAL, "tune: %s was not fitted", br_engine_name(comp[c]));
    if (val->n_users != h->n_users || val->n_books != h->n_books)
        return br_error(BR_EINVAL, "tune: the split and the model differ in shape");
    uint32_t nbk = h->n_books;
    /* Readers with a relevant held-out book. */
    uint32_t *users = br_malloc(((size_t)val->n_users + 1) * sizeof *users);
    float *z = br_aligned_alloc(4 * (size_t)BLOCK * nbk * sizeof(float) + 64, BR_ALIGN);
    uint32_t *rel = br_malloc((val->n_test + 1) * sizeof *rel);
    scratch sc = {0};
    br_status st = scratch_alloc(h, &sc);
    if (!st && (!users || !z || !rel)) st = br_error(BR_ENOMEM, "tune");
    size_t nu = 0;
    for (uint32_t u = 0; u < val->n_users; u++)
        for (uint64_t j = val->test_ptr[u]; users && j < val->test_ptr[u + 1]; j++)
            if (val->test_value[j] >= val->relevant_min) {
                users[nu++] = u;
                break;
            }
    for (size_t g = 0; g < n_grid; g++) ndcg[g] = 0;
    for (size_t b = 0; !st && b < nu; b += BLOCK) {
        size_t nb = nu - b < BLOCK ? nu - b : BLOCK;
        const uint32_t *ub = users + b;
        for (int c = 0; c < 4 && !st; c++) {
            if (!used[c]) continue;
            float *zc = z + (size_t)c * BLOCK * nbk;
            if ((st = base_scores(h, comp[c], ub, nb, zc, sc.work))) break;
#pragma omp parallel for schedule(static) num_threads(br_get_num_threads())
            for (size_t j = 0; j < nb; j++) {
                float *v = zc + j * nbk;
                if (comp[c] == BR_ENGINE_POPULARITY)
                    for (uint32_t i = 0; i < nbk; i++) v[i] = log1pf(fmaxf(v[i], 0.0f));
                zscore_row(v, nbk, &h->r, ub[j]);
            }
        }
        if (st) break;
#pragma omp parallel for schedule(dynamic, 1) num_threads(br_get_num_threads())
        for (size_t g = 0; g < n_grid; g++) {
            float *row = br_malloc((size_t)nbk * sizeof *row + 4);
            uint32_t *it = br_malloc((size_t)k * sizeof *it + 4);
            float *sc2 = br_malloc((size_t)k * sizeof *sc2 + 4);
            uint32_t *rl = br_malloc((val->n_test + 1) * sizeof *rl);
            double sum = 0;
            for (size_t j = 0; row && it && sc2 && rl && j < nb; j++) {
                memset(row, 0, (size_t)nbk * sizeof *row);
                for (int c = 0; c < 4; c++) {
                    if (grid[g][c] == 0) continue;
                    const float *v = z + ((size_t)c * BLOCK + j) * nbk;
                    for (uint32_t i = 0; i < nbk; i++) row[i] += grid[g][c] * v[i];
                }
                select_row(row, nbk, &h->r, ub[j], k, it, sc2);
                size_t n_rel = 0;
                for (uint64_t q = val->test_ptr[ub[j]]; q < val->test_ptr[ub[j] + 1]; q++)
                    if (val->test_value[q] >= val->relevant_min) rl[n_rel++] = val->test_book[q];
                br_list_metrics m;
                br_eval_list(it, k, rl, n_rel, &m);
                sum += m.ndcg;
            }
            ndcg[g] += sum;
            br_free(row);
            br_free(it);
            br_free(sc2);
            br_free(rl);
        }
    }
    for (size_t g = 0; g < n_grid && nu; g++) ndcg[g] /= (double)nu;
    (void)rel;
    br_free(users);
    br_free(rel);
    br_aligned_free(z);
    scratch_free(&sc);
    return st;
}
