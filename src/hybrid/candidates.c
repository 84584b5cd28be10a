/*
 * candidates.c: the default hybrid's ranking. It never scores the whole
 * catalogue with every engine: candidates come from the item-item model
 * and implicit ALS, and only they are scored by every component. It
 * standardises each component's scores per reader (z-score over the
 * reader's candidates) before the weighted sum or the re-ranker's
 * features: the engines' scales differ by orders of magnitude (ratings,
 * dot products, cosines, counts) and min-max scaling lets one outlier (the
 * reader's most similar book, the top bestseller) squash everything else.
 *
 * Candidate generation then re-ranking: the item-item model's and ALS's
 * top lists are cheap (a sparse row sum over M books; a 64-wide dot per
 * book), the content part is not (a 512-wide dot per book). Scoring every
 * component over the union only keeps the content part at a few hundred
 * dots per reader, so ranking costs the ALS row and two bounded
 * selections whatever the catalogue. The z-scores are taken over the
 * candidates, the books the blend actually orders.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "content/lexical.h"
#include "core/topk.h"
#include "hybrid/hybrid_internal.h"

size_t br__hybrid_cap(const br_hybrid *h)
{
    return (size_t)(h->ease ? h->opt.cand_ease : 0) + (h->cf[BR_ENGINE_ALS] ? h->opt.cand_als : 0) +
           (h->n_cold ? h->opt.cand_cold : 0) + 1;
}

void br__hybrid_work_free(br__hybrid_work *w)
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
    br_free(w->tcount);
    br_free(w->cold_v);
}

br_status br__hybrid_work_alloc(const br_hybrid *h, br__hybrid_work *w)
{
    memset(w, 0, sizeof *w);
    w->cap = br__hybrid_cap(h);
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
    w->tcount = br_calloc((h->lex ? (size_t)h->lex->x.cols : 0) + 1, sizeof *w->tcount);
    w->cold_v = br_malloc(((size_t)h->n_cold + 1) * sizeof *w->cold_v);
    if (!w->tcount || !w->cold_v || !w->mark || !w->acc || !w->book || !w->raw || !w->score ||
        !w->ti || !w->tv || !w->feat || !w->key || !w->ease_raw || !w->pop_raw) {
        br__hybrid_work_free(w);
        return br_error(BR_ENOMEM, "hybrid: candidate buffers");
    }
    return BR_OK;
}

/* Top c entries of v[0..n) (entry i is book ids ? ids[i] : i), skipping
 * books marked `skip` and non-finite scores; highest first, ties to the
 * lower book (core/topk.h's heap, in ti and tv). Returns how many. */
uint32_t br__hybrid_top(const float *v, uint32_t n, const uint32_t *ids, const uint32_t *mark,
                        uint32_t skip, uint32_t c, uint32_t *ti, float *tv)
{
    br__topk t = {c, 0, tv, ti};
    if (!c) return 0;
    for (uint32_t i = 0; i < n; i++) {
        float x = v[i];
        if (!(x > -INFINITY) || x == INFINITY) continue;
        uint32_t b = ids ? ids[i] : i;
        /* most entries lose to the worst kept one: no look at mark */
        if (t.n == c && !br__topk_worse(t.score[0], t.id[0], x, b)) continue;
        if (mark[b] == skip) continue;
        br__topk_push(&t, x, b);
    }
    return br__topk_sort(&t, 0);
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

/* A book nobody has rated has no item-item score, and read as the lowest
 * one it would lose to every warm book however well its content fits (an
 * unrelated bestseller would outrank the next book of a series the reader
 * loves). Its collaborative evidence is its ALS score (content-predicted,
 * coldvec.c), so its item-item score is imputed from that: the value with
 * the same z-score among the reader's warm candidates (ease mean + sd x
 * the ALS z). Nothing when fewer than two warm candidates have both. */
static void impute_cold(const br_hybrid *h, br__hybrid_work *w, size_t n)
{
    if (!h->bcount) return;
    double se = 0, se2 = 0, sa = 0, sa2 = 0;
    size_t cnt = 0;
    for (size_t p = 0; p < n; p++) {
        const float *x = w->raw + p * HY_C;
        if (br__hybrid_is_cold(h, w->book[p]) || !isfinite(x[0]) || !isfinite(x[1])) continue;
        se += x[0], se2 += (double)x[0] * x[0], sa += x[1], sa2 += (double)x[1] * x[1];
        cnt++;
    }
    if (cnt < 2) return;
    double me = se / (double)cnt, ma = sa / (double)cnt;
    double ve = se2 / (double)cnt - me * me, va = sa2 / (double)cnt - ma * ma;
    if (!(va > 1e-20) || !(ve > 0)) return;
    double r = sqrt(ve / va);
    for (size_t p = 0; p < n; p++) {
        float *x = w->raw + p * HY_C;
        if (br__hybrid_is_cold(h, w->book[p]) && isfinite(x[1]))
            x[0] = (float)(me + (x[1] - ma) * r);
    }
}

/* Reader u's candidates and their raw component scores into w (book, raw);
 * als_row (n_books,) the reader's ALS scores or NULL. Returns the count. */
size_t br__hybrid_candidates(const br_hybrid *h, uint32_t u, const float *als_row,
                             br__hybrid_work *w)
{
    w->epoch++;
    uint32_t rated = 2 * w->epoch, cand = 2 * w->epoch + 1;
    uint64_t lo = h->r.indptr[u], hi = h->r.indptr[u + 1];
    for (uint64_t q = lo; q < hi; q++) w->mark[h->r.indices[q]] = rated;
    /* A restricted list: the other books are passed over like rated ones. */
    for (uint32_t b = 0; h->opt.rank_only && b < h->n_books; b++)
        if (!h->opt.rank_only[b]) w->mark[b] = rated;
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
        uint32_t c = br__hybrid_top(w->acc, m, br_ease_item_ids(h->ease), w->mark, rated,
                                    h->opt.cand_ease, w->ti, w->tv);
        for (uint32_t p = 0; p < c; p++) {
            w->mark[w->ti[p]] = cand;
            w->book[n++] = w->ti[p];
        }
    }
    if (als_row) {
        uint32_t c = br__hybrid_top(als_row, h->n_books, NULL, w->mark, rated, h->opt.cand_als,
                                    w->ti, w->tv);
        for (uint32_t p = 0; p < c; p++)
            if (w->mark[w->ti[p]] != cand) {
                w->mark[w->ti[p]] = cand;
                w->book[n++] = w->ti[p];
            }
    }
    if (als_row && h->n_cold && h->opt.cand_cold) {
        /* Books nobody has rated: ALS's top rarely reaches them (a vector
         * predicted from content is shrunk toward zero), so they have a
         * source of their own; the re-ranker places them. */
        for (uint32_t i = 0; i < h->n_cold; i++) w->cold_v[i] = als_row[h->cold[i]];
        uint32_t c = br__hybrid_top(w->cold_v, h->n_cold, h->cold, w->mark, rated, h->opt.cand_cold,
                                    w->ti, w->tv);
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
    impute_cold(h, w, n);
    return n;
}

/* Each component standardised over the n candidates (books book) in
 * place (the same non-finite -> the lowest z of the column: last, but the
 * other components still order those books). The mean and spread come from
 * the books someone has rated when there are any: the books nobody has
 * rated sit far below on popularity and would otherwise move every other
 * candidate's z with how many of them came in (on goodbooks' newcomers,
 * NDCG@10 0.049 before, 0.061 after: docs/evaluation.md). */
void br__hybrid_zscore(const br_hybrid *h, const uint32_t *book, float *raw, size_t n)
{
    size_t warm = 0;
    for (size_t p = 0; p < n; p++) warm += !br__hybrid_is_cold(h, book[p]);
    for (int c = 0; c < HY_C; c++) {
        double sum = 0, sum2 = 0, lo = INFINITY;
        size_t cnt = 0;
        for (size_t p = 0; p < n; p++) {
            float v = raw[p * HY_C + c];
            if (!isfinite(v)) continue;
            if (v < lo) lo = v;
            if (warm && br__hybrid_is_cold(h, book[p])) continue;
            sum += v;
            sum2 += (double)v * v;
            cnt++;
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

void br__hybrid_blend(const float *z, size_t n, const float *wt, float *score)
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
br_status br__hybrid_als_block(const br_hybrid *h, const uint32_t *users, size_t nb, float **als,
                               float **work)
{
    *als = *work = NULL;
    if (!h->cf[BR_ENGINE_ALS] || !h->opt.cand_als) return BR_OK;
    uint32_t f = br_cf_model_factors(h->cf[BR_ENGINE_ALS]);
    *als = br_aligned_alloc(nb * (size_t)h->n_books * sizeof(float) + 64, BR_ALIGN);
    *work = br_aligned_alloc((nb * (size_t)f + 1) * sizeof(float) + 64, BR_ALIGN);
    if (!*als || !*work) return br_error(BR_ENOMEM, "hybrid: ALS block");
    return br__hybrid_base_scores(h, BR_ENGINE_ALS, users, nb, *als, *work);
}

br_status br__hybrid_check_source(const br_hybrid *h)
{
    if (!(h->ease && h->opt.cand_ease) && !(h->cf[BR_ENGINE_ALS] && h->opt.cand_als))
        return br_error(BR_EINVAL, "hybrid: no candidate source (fit ease or als, cand_ease or "
                                   "cand_als > 0)");
    return BR_OK;
}

static br_status hy_check(const br_hybrid *h)
{
    br_status st = br__hybrid_check_source(h);
    if (st || h->opt.rerank) return st;
    const float wt[HY_C] = {h->opt.w_ease, h->opt.w_als, h->opt.w_content, h->opt.w_popularity};
    const br_engine comp[HY_C] = {BR_ENGINE_EASE, BR_ENGINE_ALS, BR_ENGINE_CONTENT,
                                  BR_ENGINE_POPULARITY};
    for (int c = 0; c < HY_C; c++)
        if (wt[c] != 0 && !h->have[comp[c]])
            return br_error(BR_EINVAL, "hybrid: engine %s was not fitted", br_engine_name(comp[c]));
    return BR_OK;
}

/* The scores the default hybrid ranks by, into w->score: the learned
 * model's logit (opt.rerank) or the weighted z-score blend. */
static void hy_score(const br_hybrid *h, uint32_t u, br__hybrid_work *w, size_t n)
{
    if (h->opt.rerank) {
        br__hybrid_features(h, u, w, n);
        for (size_t p = 0; p < n; p++) {
            const float *x = w->feat + p * BR_RERANK_FEATURES;
            float s = 0;
            for (int c = 0; c < BR_RERANK_FEATURES; c++) s += h->opt.rerank_coef[c] * x[c];
            w->score[p] = s;
        }
        return;
    }
    const float wt[HY_C] = {h->opt.w_ease, h->opt.w_als, h->opt.w_content, h->opt.w_popularity};
    br__hybrid_zscore(h, w->book, w->raw, n);
    br__hybrid_blend(w->raw, n, wt, w->score);
}

/* One reader's candidates (and their features when feat is given), the
 * first cap of them copied out: what br_hybrid_candidates and
 * br_hybrid_features return. */
static br_status hy_reader_candidates(const br_hybrid *h, uint32_t user, uint32_t *books,
                                      float *raw, float *feat, size_t cap, size_t *n)
{
    *n = 0;
    if (user >= h->n_users) return br_error(BR_EINVAL, "hybrid: reader %u out of range", user);
    br_status st = feat ? br__hybrid_check_source(h) : hy_check(h);
    if (st) return st;
    float *als = NULL, *work = NULL;
    br__hybrid_work w;
    if (!(st = br__hybrid_work_alloc(h, &w))) st = br__hybrid_als_block(h, &user, 1, &als, &work);
    if (!st) {
        size_t c = br__hybrid_candidates(h, user, als, &w);
        if (feat) br__hybrid_features(h, user, &w, c);
        *n = c < cap ? c : cap;
        memcpy(books, w.book, *n * sizeof *books);
        if (raw) memcpy(raw, w.raw, *n * HY_C * sizeof *raw);
        if (feat) memcpy(feat, w.feat, *n * BR_RERANK_FEATURES * sizeof *feat);
    }
    br__hybrid_work_free(&w);
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

/* opt.cold_slot: the best-scored candidate nobody has rated sharing an
 * author or a series with two liked books (the re-ranker's features, so only
 * with it) moves up to place cold_slot of the list ti/tv (c long, at most
 * k), at the displaced book's score; the last one drops off a full list. */
static void promote_cold(const br_hybrid *h, const br__hybrid_work *w, size_t n, uint32_t *ti,
                         float *tv, uint32_t c)
{
    /* two liked books at least: on goodbooks' random split, where a book
     * without training ratings is one whose few ratings were all held out,
     * one shared author or series cost 2.0% of NDCG@10 at place 3, two
     * 1.0%, and at place 10 0.45% (docs/evaluation.md) */
    const float shared_min = log1pf(2.0f) - 1e-6f;
    uint32_t s = h->opt.cold_slot - 1;
    if (!h->opt.rerank || !h->opt.cold_slot || !h->bcount || s >= c) return;
    size_t best = SIZE_MAX;
    for (size_t p = 0; p < n; p++) {
        const float *x = w->feat + p * BR_RERANK_FEATURES;
        if (!br__hybrid_is_cold(h, w->book[p]) ||
            !(x[HY_F_SAME_AUTHOR] >= shared_min || x[HY_F_SAME_SERIES] >= shared_min))
            continue;
        if (best == SIZE_MAX || w->score[p] > w->score[best] ||
            (w->score[p] == w->score[best] && w->book[p] < w->book[best]))
            best = p;
    }
    if (best == SIZE_MAX) return;
    uint32_t b = w->book[best], pos = 0;
    while (pos < c && ti[pos] != b) pos++;
    if (pos <= s) return;
    if (pos == c) pos = c - 1; /* beyond a list of k: the last one drops off */
    for (uint32_t p = pos; p > s; p--) ti[p] = ti[p - 1], tv[p] = tv[p - 1];
    ti[s] = b; /* tv[s] stays: the displaced book's score, now also tv[s + 1] */
}

/* The default hybrid for a block of readers: the top k of each reader's
 * candidates by the blend (ties to the lower book), padded with
 * UINT32_MAX / -INFINITY. */
br_status br__hybrid_rank_candidates(const br_hybrid *h, const uint32_t *users, size_t nb,
                                     uint32_t k, uint32_t *items, float *scores, int fill)
{
    br_status st = hy_check(h);
    if (st) return st;
    float *als = NULL, *work = NULL;
    st = br__hybrid_als_block(h, users, nb, &als, &work);
    int bad = 0;
    if (!st) {
#pragma omp parallel num_threads(br_get_num_threads())
        {
            br__hybrid_work w;
            int ok = br__hybrid_work_alloc(h, &w) == BR_OK;
            uint32_t *ti = ok ? br_malloc(((size_t)k + w.cap + 1) * sizeof *ti) : NULL;
            float *tv = ok ? br_malloc(((size_t)k + w.cap + 1) * sizeof *tv) : NULL;
            if (!ti || !tv) {
#pragma omp atomic write
                bad = 1;
            }
#pragma omp for schedule(dynamic, 4)
            for (size_t j = 0; j < nb; j++) {
                if (!ti || !tv) continue;
                size_t n =
                    br__hybrid_candidates(h, users[j], als ? als + j * h->n_books : NULL, &w);
                hy_score(h, users[j], &w, n);
                /* br__hybrid_top over the candidates: entry p is book w.book[p]; no
                 * candidate is rated, so nothing is skipped. */
                uint32_t c =
                    br__hybrid_top(w.score, (uint32_t)n, w.book, w.mark, UINT32_MAX, k, ti, tv);
                promote_cold(h, &w, n, ti, tv, c);
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
                uint32_t m = br__hybrid_top(als + j * h->n_books, h->n_books, NULL, w.mark, e2,
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
            if (ok) br__hybrid_work_free(&w);
        }
    }
    br_aligned_free(als);
    br_aligned_free(work);
    if (!st && bad) st = br_error(BR_ENOMEM, "hybrid: candidate buffers");
    return st;
}
