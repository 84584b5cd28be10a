/*
 * rerank.c: the default hybrid's learned re-ranker: the features of each
 * candidate, the pointwise logistic regression that weighs them, and its
 * learning on a validation split (the candidate depth included).
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/eval.h"
#include "content/lexical.h"
#include "core/topk.h"
#include "hybrid/hybrid_internal.h"

/* Features of each candidate (row p of w->feat, BR_RERANK_FEATURES wide,
 * in the order of br_rerank_feature_names): the components' z-scores and
 * ranks among the candidates, the z-scores times the reader's centred log
 * history length (so the model can lean on content for short histories
 * and on the item-item model for long ones), cosine to the favourite and
 * to the latest book, the book's damped mean rating, whether the item-item
 * model knows the book, one cross of the two collaborative views, and
 * the largest cosine to a book the reader disliked (the feedback rule,
 * bookrec/data.h; 0 without one): a dislike counts against its
 * neighbours; then what the sentence encoder blurs: the cosine of the
 * reader's lexical profile (content_lex.c) to the book's row, how many
 * liked books share an author and a series with it (log1p), and whether
 * nobody has rated it (its item-item score is then imputed from its
 * content-predicted ALS score, candidates.c: this lets the model weigh
 * that evidence apart). */

static const char *const rr_names[BR_RERANK_FEATURES] = {
    "z_ease",       "z_als",         "z_content",   "z_popularity",   "rank_ease",
    "rank_als",     "rank_content",  "z_ease*hist", "z_als*hist",     "z_content*hist",
    "z_pop*hist",   "cos_favourite", "cos_latest",  "mean_rating",    "in_item_model",
    "z_ease*z_als", "z_ease^2",      "z_als^2",     "log_popularity", "ease_raw",
    "cos_disliked", "lex_cos",       "same_author", "same_series",    "cold"};

const char *br_rerank_feature_name(uint32_t f)
{
    return f < BR_RERANK_FEATURES ? rr_names[f] : "?";
}

static int rr_key_cmp(const void *a, const void *b)
{
    const br__rerank_key *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->book > y->book) - (x->book < y->book);
}

/* Reader u's candidate features into w->feat; w->raw holds the raw
 * component scores on entry and their z-scores on return. */
void br__hybrid_features(const br_hybrid *h, uint32_t u, br__hybrid_work *w, size_t n)
{
    const size_t F = BR_RERANK_FEATURES;
    float *f = w->feat;
    for (size_t p = 0; p < n; p++) {
        const float *r = w->raw + p * HY_C;
        f[p * F + 14] = isfinite(r[0]) ? 1.0f : 0.0f;
        w->ease_raw[p] = isfinite(r[0]) ? r[0] : 0.0f;
        w->pop_raw[p] = isfinite(r[3]) ? r[3] : 0.0f;
    }
    br__hybrid_zscore(h, w->book, w->raw, n);
    uint64_t hist = h->r.indptr[u + 1] - h->r.indptr[u];
    /* The reader's liked books per author and series term (w->tcount). */
    const br__lex *lx = h->term_kind ? h->lex : NULL;
    for (uint64_t q = h->r.indptr[u]; lx && q < h->r.indptr[u + 1]; q++) {
        if (br__hybrid_weight(h, u, q) <= 0) continue;
        uint32_t j = h->r.indices[q];
        for (uint64_t p = lx->x.indptr[j]; p < lx->x.indptr[j + 1]; p++)
            if (h->term_kind[lx->x.indices[p]]) w->tcount[lx->x.indices[p]] += 1.0f;
    }
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
        float worst = 0;
        for (uint64_t q = h->r.indptr[u]; eb && q < h->r.indptr[u + 1]; q++) {
            if (br__hybrid_weight(h, u, q) >= 0) continue;
            float c = cblas_sdot((int)h->dim, h->emb + (size_t)h->r.indices[q] * h->dim, 1, eb, 1);
            if (c > worst) worst = c;
        }
        x[20] = worst;
        x[21] = br__hybrid_lex1(h, u, b);
        float na = 0, ns = 0;
        for (uint64_t e = lx ? lx->x.indptr[b] : 0; lx && e < lx->x.indptr[b + 1]; e++) {
            uint32_t t = lx->x.indices[e];
            if (h->term_kind[t] == HY_TERM_AUTHOR)
                na += w->tcount[t];
            else if (h->term_kind[t] == HY_TERM_SERIES)
                ns += w->tcount[t];
        }
        x[HY_F_SAME_AUTHOR] = log1pf(na);
        x[HY_F_SAME_SERIES] = log1pf(ns);
        x[24] = br__hybrid_is_cold(h, b) ? 1.0f : 0.0f;
    }
    for (uint64_t q = h->r.indptr[u]; lx && q < h->r.indptr[u + 1]; q++) {
        uint32_t j = h->r.indices[q];
        for (uint64_t p = lx->x.indptr[j]; p < lx->x.indptr[j + 1]; p++)
            w->tcount[lx->x.indices[p]] = 0.0f;
    }
    for (int c = 0; c < 3; c++) {
        for (size_t p = 0; p < n; p++)
            w->key[p] = (br__rerank_key){w->raw[p * HY_C + c], w->book[p], (uint32_t)p};
        qsort(w->key, n, sizeof *w->key, rr_key_cmp);
        for (size_t r = 0; r < n; r++)
            f[(size_t)w->key[r].p * F + 4 + (size_t)c] = 1.0f / log2f((float)r + 2.0f);
    }
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

/* Higher score first, ties to the lower book. */
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
        uint32_t ti[K];
        br__topk top = {K, 0, tv, ti};
        for (size_t i = lo; i < hi; i++) {
            float v = 0;
            for (size_t c = 0; c < F; c++) v += coef[c] * s->x[i * F + c];
            br__topk_push(&top, v, (uint32_t)(i - lo));
        }
        uint32_t have = br__topk_sort(&top, 0);
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
        capg[g] = br__hybrid_cap(&hg[g]);
        set[g].start = br_calloc(nu + 2, sizeof *set[g].start);
        if (!set[g].start) st = br_error(BR_ENOMEM, "rerank");
    }
    float *bx = NULL;
    uint8_t *by = NULL;
    size_t *bn = br_malloc((size_t)HY_BLOCK * BR_RERANK_GRID * sizeof *bn);
    size_t bstride = 0;
    for (int g = 0; g < BR_RERANK_GRID; g++) bstride += capg[g];
    bx = br_malloc((size_t)HY_BLOCK * bstride * F * sizeof *bx + 4);
    by = br_malloc((size_t)HY_BLOCK * bstride + 4);
    if (!st && (!bx || !by || !bn)) st = br_error(BR_ENOMEM, "rerank");
    int bad = 0;
    for (size_t b = 0; !st && !bad && b < nu; b += HY_BLOCK) {
        size_t nb = nu - b < HY_BLOCK ? nu - b : HY_BLOCK;
        const uint32_t *ub = users + b;
        float *als = NULL, *work = NULL;
        st = br__hybrid_als_block(&hg[BR_RERANK_GRID - 1], ub, nb, &als, &work);
        if (!st) {
#pragma omp parallel num_threads(br_get_num_threads())
            {
                br__hybrid_work w;
                int ok = br__hybrid_work_alloc(&hg[BR_RERANK_GRID - 1], &w) == BR_OK;
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
                        size_t n = br__hybrid_candidates(&hg[g], ub[j],
                                                         als ? als + j * h->n_books : NULL, &w);
                        br__hybrid_features(&hg[g], ub[j], &w, n);
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
                if (ok) br__hybrid_work_free(&w);
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
