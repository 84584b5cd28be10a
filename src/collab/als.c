/*
 * als.c: alternating least squares, implicit and explicit.
 *
 * Implicit (Hu, Koren & Volinsky 2008): every (reader, book) pair is an
 * observation, preference 1 for a rated book and 0 otherwise, weighted by
 * confidence 1 + alpha * rating for rated ones and 1 for the rest. The
 * unrated pairs never get touched one by one: their contribution to a
 * row's normal equations is the shared Gram matrix Y^T Y, so a row costs
 * O(ratings * k + k^2) per conjugate-gradient step, as in the `implicit`
 * library (Frederickson), warm-started from the previous iteration.
 *
 * Explicit: rating = global mean + user bias + item bias + p . q over the
 * rated pairs only, with weighted-lambda regularisation (lambda times the
 * row's number of ratings, Zhou et al. 2008). The bias rides along as an
 * extra factor: solving for [p_u, b_u] against [q_i, 1] with target
 * r - mean - b_i is one (k + 1)-dimensional least-squares row.
 *
 * Each iteration solves the items, then the users: the user factors left in
 * the model are then exactly the row solutions for the final item factors,
 * which is what fold-in computes for a new reader.
 *
 * No BLAS call runs inside a parallel region (OpenBLAS here is the pthread
 * build, which would oversubscribe); the per-row kernels are plain loops
 * the compiler vectorises.
 */
#include "collab/collab_internal.h"
#include "core/isa.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------- exact row solve -- */

int br__als_solve_row_exact(uint32_t d, const float *yty, size_t n, const uint32_t *idx,
                            const float *w, const float *t, const float *y, float reg, double *work,
                            float *x)
{
    double *a = work;                   /* (d, d), upper triangle used */
    double *rhs = work + (size_t)d * d; /* (d,) */
    double g = yty ? 1.0 : 0.0;
    for (uint32_t i = 0; i < d; i++) {
        rhs[i] = 0.0;
        for (uint32_t j = i; j < d; j++) a[(size_t)i * d + j] = yty ? yty[(size_t)i * d + j] : 0.0;
    }
    for (size_t e = 0; e < n; e++) {
        const float *ye = y + (idx ? (size_t)idx[e] : e) * d;
        double c = (double)w[e] - g, b = (double)w[e] * t[e];
        for (uint32_t i = 0; i < d; i++) {
            double ci = c * ye[i];
            double *ai = a + (size_t)i * d;
            for (uint32_t j = i; j < d; j++) ai[j] += ci * ye[j];
            rhs[i] += b * ye[i];
        }
    }
    for (uint32_t i = 0; i < d; i++) a[(size_t)i * d + i] += reg;
    /* Cholesky a = R^T R, R upper, in place. */
    for (uint32_t i = 0; i < d; i++) {
        double *ai = a + (size_t)i * d;
        for (uint32_t p = 0; p < i; p++) {
            double rpi = a[(size_t)p * d + i];
            ai[i] -= rpi * rpi;
        }
        if (!(ai[i] > 0)) return -1;
        double piv = sqrt(ai[i]);
        ai[i] = piv;
        for (uint32_t j = i + 1; j < d; j++) {
            double s = ai[j];
            for (uint32_t p = 0; p < i; p++) s -= a[(size_t)p * d + i] * a[(size_t)p * d + j];
            ai[j] = s / piv;
        }
    }
    /* R^T z = rhs, then R x = z. */
    for (uint32_t i = 0; i < d; i++) {
        double s = rhs[i];
        for (uint32_t p = 0; p < i; p++) s -= a[(size_t)p * d + i] * rhs[p];
        rhs[i] = s / a[(size_t)i * d + i];
    }
    for (uint32_t i = d; i-- > 0;) {
        double s = rhs[i];
        for (uint32_t j = i + 1; j < d; j++) s -= a[(size_t)i * d + j] * rhs[j];
        rhs[i] = s / a[(size_t)i * d + i];
    }
    for (uint32_t i = 0; i < d; i++) x[i] = (float)rhs[i];
    return 0;
}

/* ------------------------------------------------------------- one side -- */

typedef struct als_side {
    int implicit;
    float alpha, lambda, mu;
    uint32_t d, cg_steps;
    const float *f;  /* (others, d) features of the other side */
    const float *tb; /* explicit: (others,) the other side's bias */
    const float *g;  /* implicit: (d, d) Gram of f */
} als_side;

static inline float dotf(const float *a, const float *b, uint32_t d)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (uint32_t i = 0; i < d; i++) s += a[i] * b[i];
    return s;
}

static inline void axpyf(float *y, float a, const float *x, uint32_t d)
{
#pragma omp simd
    for (uint32_t i = 0; i < d; i++) y[i] += a * x[i];
}

/* out = (G + sum (w - g) y y^T + reg I) v for one row. yl (n, d): the
 * row's factor vectors gathered contiguously, cw (n,): w - g. */
static inline __attribute__((always_inline)) void row_apply(const als_side *s, size_t n,
                                                            const float *yl, const float *cw,
                                                            float reg, const float *v, float *out)
{
    uint32_t d = s->d;
    if (s->implicit) {
        for (uint32_t i = 0; i < d; i++) out[i] = dotf(s->g + (size_t)i * d, v, d) + reg * v[i];
    } else {
        for (uint32_t i = 0; i < d; i++) out[i] = reg * v[i];
    }
    for (size_t e = 0; e < n; e++) {
        const float *y = yl + e * d;
        axpyf(out, cw[e] * dotf(y, v, d), y, d);
    }
}

/* One row: exact solve or CG from the current value of xr. Compiled for
 * each SIMD level (core/isa.h; the library is built for baseline x86-64). */
static inline BR_ISA_BODY void solve_row_body(const als_side *s, const br_csr *r, int64_t row,
                                              float *xr, float *buf, double *work, size_t max_row)
{
    uint32_t d = s->d;
    uint64_t b = r->indptr[row], e = r->indptr[row + 1];
    size_t n = e - b;
    if (n == 0) {
        /* No ratings: the minimiser is 0 for both objectives. */
        memset(xr, 0, d * sizeof(float));
        return;
    }
    float reg = s->implicit ? s->lambda : s->lambda * (float)n;
    if (!s->cg_steps) {
        float *w = buf + 4 * (size_t)d, *t = w + max_row;
        for (size_t i = 0; i < n; i++) {
            float v = r->values[b + i];
            w[i] = s->implicit ? 1.0f + s->alpha * v : 1.0f;
            t[i] = s->implicit ? 1.0f : v - s->mu - s->tb[r->indices[b + i]];
        }
        if (br__als_solve_row_exact(d, s->g, n, r->indices + b, w, t, s->f, reg, work, xr))
            memset(xr, 0, d * sizeof(float));
        return;
    }
    /* Conjugate gradient from the current xr. The row's factor vectors are
     * gathered once into yl: the four passes over them (residual, three
     * steps) then read L1/L2 instead of scattered rows of a matrix that
     * can be hundreds of MB. */
    float *res = buf, *pv = buf + d, *ap = buf + 2 * (size_t)d;
    float *cw = buf + 4 * (size_t)d, *yl = cw + max_row;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = r->indices[b + i];
        memcpy(yl + i * d, s->f + (size_t)c * d, d * sizeof(float));
        cw[i] = s->implicit ? s->alpha * r->values[b + i] : 1.0f; /* w - g */
    }
    row_apply(s, n, yl, cw, reg, xr, ap);
    for (uint32_t i = 0; i < d; i++) res[i] = -ap[i];
    for (size_t i = 0; i < n; i++) {
        float v = r->values[b + i];
        float bw = s->implicit ? 1.0f + s->alpha * v : v - s->mu - s->tb[r->indices[b + i]];
        axpyf(res, bw, yl + i * d, d);
    }
    memcpy(pv, res, d * sizeof(float));
    float rs = dotf(res, res, d);
    for (uint32_t it = 0; it < s->cg_steps && rs > 1e-20f; it++) {
        row_apply(s, n, yl, cw, reg, pv, ap);
        float pap = dotf(pv, ap, d);
        if (!(pap > 0)) break;
        float step = rs / pap;
        axpyf(xr, step, pv, d);
        axpyf(res, -step, ap, d);
        float rsn = dotf(res, res, d);
        float beta = rsn / rs;
        for (uint32_t i = 0; i < d; i++) pv[i] = res[i] + beta * pv[i];
        rs = rsn;
    }
}
BR_ISA_VARIANTS(solve_row,
                (const als_side *s, const br_csr *r, int64_t row, float *xr, float *buf,
                 double *work, size_t max_row),
                (s, r, row, xr, buf, work, max_row))

/* Solves every row of x (rows, d) against the other side. */
static br_status solve_side(const als_side *s, const br_csr *r, float *x, size_t max_row)
{
    uint32_t d = s->d;
    int failed = 0;
#pragma omp parallel num_threads(br_get_num_threads())
    {
        /* res, p, Ap, spare (4d); then w/t or the gathered rows. */
        float *buf =
            br_malloc((4 * (size_t)d + 2 * max_row + max_row * (size_t)d + 2) * sizeof(float));
        double *work = s->cg_steps ? NULL : br_malloc(((size_t)d * d + 2 * d) * sizeof(double));
        if (!buf || (!s->cg_steps && !work)) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 64)
        for (int64_t row = 0; row < (int64_t)r->rows; row++) {
            int stop; /* read as it is written: atomically (another thread's failure) */
#pragma omp atomic read
            stop = failed;
            if (stop) continue;
            BR_ISA_CALL(solve_row, (s, r, row, x + (size_t)row * d, buf, work, max_row));
        }
        br_free(buf);
        br_free(work);
    }
    if (failed) return br_error(BR_ENOMEM, "als: per-thread workspace");
    return BR_OK;
}

/* ------------------------------------------------------------------ loss -- */

/* Implicit objective. x (users, k), y (items, k), g = y^T y. */
static double loss_implicit(const br_csr *r, const float *x, const float *y, const float *g,
                            uint32_t k, float alpha, float lambda, uint32_t n_items)
{
    double total = 0.0, reg = 0.0;
#pragma omp parallel for schedule(dynamic, 256) reduction(+ : total, reg) \
    num_threads(br_get_num_threads())
    for (int64_t u = 0; u < (int64_t)r->rows; u++) {
        const float *xu = x + (size_t)u * k;
        double q = 0.0, nx = 0.0;
        for (uint32_t i = 0; i < k; i++) {
            q += (double)xu[i] * dotf(g + (size_t)i * k, xu, k);
            nx += (double)xu[i] * xu[i];
        }
        for (uint64_t p = r->indptr[u]; p < r->indptr[u + 1]; p++) {
            double s = dotf(xu, y + (size_t)r->indices[p] * k, k);
            double c = 1.0 + (double)alpha * r->values[p];
            q += c * (1.0 - s) * (1.0 - s) - s * s;
        }
        total += q;
        reg += nx;
    }
    double ny = 0.0;
    for (size_t i = 0; i < (size_t)n_items * k; i++) ny += (double)y[i] * y[i];
    return total + lambda * (reg + ny);
}

/* Explicit objective with biases; x (users, k+1) = [p, b_u], y (items,
 * k+1) = [q, b_i]. *sse receives the squared error alone. */
static double loss_explicit(const br_csr *r, const br_csr *rt, const float *x, const float *y,
                            uint32_t k, float mu, float lambda, double *sse_out)
{
    uint32_t d = k + 1;
    double sse = 0.0, reg = 0.0;
#pragma omp parallel for schedule(dynamic, 256) reduction(+ : sse, reg) \
    num_threads(br_get_num_threads())
    for (int64_t u = 0; u < (int64_t)r->rows; u++) {
        const float *xu = x + (size_t)u * d;
        uint64_t n = r->indptr[u + 1] - r->indptr[u];
        for (uint64_t p = r->indptr[u]; p < r->indptr[u + 1]; p++) {
            const float *yi = y + (size_t)r->indices[p] * d;
            double pred = (double)mu + xu[k] + yi[k] + dotf(xu, yi, k);
            double e = r->values[p] - pred;
            sse += e * e;
        }
        reg += (double)n * dotf(xu, xu, d);
    }
    double regi = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : regi) num_threads(br_get_num_threads())
    for (int64_t i = 0; i < (int64_t)rt->rows; i++) {
        const float *yi = y + (size_t)i * d;
        regi += (double)(rt->indptr[i + 1] - rt->indptr[i]) * dotf(yi, yi, d);
    }
    *sse_out = sse;
    return sse + lambda * (reg + regi);
}

/* ------------------------------------------------------------------- fit -- */

static size_t longest_row(const br_csr *r)
{
    size_t m = 0;
    for (uint32_t i = 0; i < r->rows; i++) {
        size_t n = r->indptr[i + 1] - r->indptr[i];
        if (n > m) m = n;
    }
    return m;
}

/* dst (n, k+1) = [src[:, :k], 1], and bias (n,) = src[:, k]. */
static void features_with_one(const float *src, size_t n, uint32_t k, float *dst, float *bias)
{
    uint32_t d = k + 1;
    for (size_t i = 0; i < n; i++) {
        memcpy(dst + i * d, src + i * d, k * sizeof(float));
        dst[i * d + k] = 1.0f;
        bias[i] = src[i * d + k];
    }
}

br_status br_als_fit(const br_csr *r, const br_csr *rt, const br_als_options *opt,
                     br_cf_model **out)
{
    if (!r || !out) return br_error(BR_EINVAL, "br_als_fit: NULL argument");
    br_als_options o = BR_ALS_OPTIONS_DEFAULT;
    if (opt) o = *opt;
    if (o.kind != BR_ALS_IMPLICIT && o.kind != BR_ALS_EXPLICIT)
        return br_error(BR_EINVAL, "als: unknown kind %d", (int)o.kind);
    if (o.factors == 0 || o.factors + 1 > ALS_MAX_D)
        return br_error(BR_ERANGE, "als: factors must be in 1..%d", ALS_MAX_D - 1);
    if (!(o.lambda >= 0) || !(o.alpha >= 0))
        return br_error(BR_ERANGE, "als: lambda and alpha must be >= 0");
    if (o.kind == BR_ALS_IMPLICIT && o.lambda == 0 && o.cg_steps == 0)
        return br_error(BR_ERANGE, "als: the exact implicit solve needs lambda > 0");
    if (rt && (rt->rows != r->cols || rt->cols != r->rows || rt->nnz != r->nnz))
        return br_error(BR_EINVAL, "als: the transpose given does not match the matrix");
    int implicit = o.kind == BR_ALS_IMPLICIT;
    uint32_t k = o.factors, d = implicit ? k : k + 1;
    size_t nu = r->rows, ni = r->cols;

    br_csr own = {0};
    br_status st = BR_OK;
    if (!rt) {
        if ((st = br_csr_transpose(r, &own))) return st;
        rt = &own;
    }
    double total = 0.0;
    for (uint64_t p = 0; p < r->nnz; p++) total += r->values[p];
    float mu = implicit || !r->nnz ? 0.0f : (float)(total / (double)r->nnz);

    float *x = br_aligned_alloc(nu * d * sizeof(float) + 64, BR_ALIGN);
    float *y = br_aligned_alloc(ni * d * sizeof(float) + 64, BR_ALIGN);
    float *g = br_aligned_alloc((size_t)d * d * sizeof(float) + 64, BR_ALIGN);
    size_t nmax = nu > ni ? nu : ni;
    float *feat = implicit ? NULL : br_aligned_alloc(nmax * d * sizeof(float) + 64, BR_ALIGN);
    float *tb = implicit ? NULL : br_malloc(nmax * sizeof(float) + 4);
    br_cf_model *m = NULL;
    if (!x || !y || !g || (!implicit && (!feat || !tb))) {
        st = br_error(BR_ENOMEM, "als: factors for %zu users and %zu books, k = %u", nu, ni, k);
        goto done;
    }
    /* Small random start (biases 0); the first item solve overwrites y. */
    br_rng rng;
    br_rng_seed(&rng, o.seed);
    for (size_t i = 0; i < nu * d; i++) x[i] = (float)((br_rng_uniform(&rng) - 0.5) * 0.02);
    for (size_t i = 0; i < ni * d; i++) y[i] = (float)((br_rng_uniform(&rng) - 0.5) * 0.02);
    if (!implicit) {
        for (size_t u = 0; u < nu; u++) x[u * d + k] = 0.0f;
        for (size_t i = 0; i < ni; i++) y[i * d + k] = 0.0f;
    }
    size_t max_r = longest_row(r), max_rt = longest_row(rt);

    als_side side = {implicit, o.alpha, o.lambda, mu, d, o.cg_steps, NULL, NULL, NULL};
    br_progress prog;
    br_progress_begin(&prog, "als", o.iterations);
    for (uint32_t it = 0; it < o.iterations; it++) {
        uint64_t t0 = br_now_ns();
        /* Items given users. */
        if (implicit) {
            br__cf_gram(x, nu, k, g);
            side.f = x;
            side.g = g;
        } else {
            features_with_one(x, nu, k, feat, tb);
            side.f = feat;
            side.tb = tb;
        }
        if ((st = solve_side(&side, rt, y, max_rt))) goto done;
        /* Users given items. */
        if (implicit) {
            br__cf_gram(y, ni, k, g);
            side.f = y;
        } else {
            features_with_one(y, ni, k, feat, tb);
            side.f = feat;
            side.tb = tb;
        }
        if ((st = solve_side(&side, r, x, max_r))) goto done;
        double secs = (double)(br_now_ns() - t0) * 1e-9;
        double loss = 0.0, rmse = 0.0;
        if (o.compute_loss) {
            if (implicit) {
                loss = loss_implicit(r, x, y, g, k, o.alpha, o.lambda, (uint32_t)ni);
            } else {
                double sse;
                loss = loss_explicit(r, rt, x, y, k, mu, o.lambda, &sse);
                rmse = r->nnz ? sqrt(sse / (double)r->nnz) : 0.0;
            }
            br_log(BR_LOG_INFO, "als iteration %u: loss %.6g%s %.3f s", it + 1, loss,
                   implicit ? "" : " (rmse)", secs);
        }
        if (o.on_iteration && o.on_iteration(it + 1, loss, rmse, secs, o.user)) {
            st = br_error(BR_ECANCELLED, "als: stopped after iteration %u", it + 1);
            goto done;
        }
        if ((st = br_progress_update(&prog, it + 1))) goto done;
    }
    if ((st = br_progress_end(&prog))) goto done;

    if ((st = br__cf_model_alloc(implicit ? BR_CF_ALS : BR_CF_ALS_EXPLICIT, (uint32_t)nu,
                                 (uint32_t)ni, k, !implicit, !implicit, &m)))
        goto done;
    m->lambda = o.lambda;
    m->alpha = o.alpha;
    m->global = mu;
    if (implicit) {
        memcpy(m->user_f, x, nu * k * sizeof(float));
        memcpy(m->item_f, y, ni * k * sizeof(float));
    } else {
        for (size_t u = 0; u < nu; u++) {
            memcpy(m->user_f + u * k, x + u * d, k * sizeof(float));
            m->user_b[u] = x[u * d + k];
        }
        for (size_t i = 0; i < ni; i++) {
            memcpy(m->item_f + i * k, y + i * d, k * sizeof(float));
            m->item_b[i] = y[i * d + k];
        }
    }
    if ((st = br__cf_model_prepare(m))) {
        br_cf_model_free(m);
        m = NULL;
        goto done;
    }
    *out = m;
done:
    br_aligned_free(x);
    br_aligned_free(y);
    br_aligned_free(g);
    br_aligned_free(feat);
    br_free(tb);
    br_csr_free(&own);
    return st;
}
