/*
 * model.c: the collaborative model record and what every engine shares:
 * accessors, the popularity and SVD fits (both a few lines over the
 * kernels), fold-in, and top-N for one reader or for all of them.
 *
 * Top-N for all readers streams: a block of readers' factors times every
 * item's factors (one sgemm, OpenBLAS threads), their rated books set to
 * -INFINITY, then a heap-based partial sort per row across OpenMP threads.
 * Only one block of scores exists at a time, so 1,000,000 readers x 100,000
 * books needs a few tens of MB besides the factors.
 */
#include "collab/collab_internal.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>

#include "core/topk.h"

const char *br_cf_engine_name(br_cf_engine e)
{
    switch (e) {
    case BR_CF_POPULARITY: return "popularity";
    case BR_CF_SVD: return "svd";
    case BR_CF_ALS: return "als";
    case BR_CF_ALS_EXPLICIT: return "als-explicit";
    }
    return "unknown";
}

br_status br__cf_model_alloc(br_cf_engine e, uint32_t n_users, uint32_t n_items, uint32_t k,
                         int user_bias, int item_bias, br_cf_model **out)
{
    br_cf_model *m = br_calloc(1, sizeof *m);
    if (!m) return br_error(BR_ENOMEM, "collab model");
    m->engine = e;
    m->n_users = n_users;
    m->n_items = n_items;
    m->k = k;
    size_t uf = (size_t)n_users * k * sizeof(float), itf = (size_t)n_items * k * sizeof(float);
    m->user_f = br_aligned_alloc(uf + 64, BR_ALIGN);
    m->item_f = br_aligned_alloc(itf + 64, BR_ALIGN);
    if (user_bias) m->user_b = br_aligned_alloc((size_t)n_users * sizeof(float) + 64, BR_ALIGN);
    if (item_bias) m->item_b = br_aligned_alloc((size_t)n_items * sizeof(float) + 64, BR_ALIGN);
    if (!m->user_f || !m->item_f || (user_bias && !m->user_b) || (item_bias && !m->item_b)) {
        br_cf_model_free(m);
        return br_error(BR_ENOMEM, "collab model: %u users, %u items, k = %u", n_users, n_items,
                        k);
    }
    memset(m->user_f, 0, uf);
    memset(m->item_f, 0, itf);
    if (m->user_b) memset(m->user_b, 0, (size_t)n_users * sizeof(float));
    if (m->item_b) memset(m->item_b, 0, (size_t)n_items * sizeof(float));
    *out = m;
    return BR_OK;
}

br_status br__cf_model_prepare(br_cf_model *m)
{
    if (m->engine != BR_CF_ALS || m->k == 0 || m->yty) return BR_OK;
    m->yty = br_aligned_alloc((size_t)m->k * m->k * sizeof(float), BR_ALIGN);
    if (!m->yty) return br_error(BR_ENOMEM, "collab model: Gram matrix k = %u", m->k);
    br__cf_item_gram(m, m->yty);
    return BR_OK;
}

void br_cf_model_free(br_cf_model *m)
{
    if (!m) return;
    br_aligned_free(m->yty);
    if (m->map) {
        munmap(m->map, m->map_len);
    } else {
        br_aligned_free(m->user_f);
        br_aligned_free(m->item_f);
        br_aligned_free(m->user_b);
        br_aligned_free(m->item_b);
        br_aligned_free(m->sv);
    }
    br_free(m);
}

br_cf_engine br_cf_model_engine(const br_cf_model *m) { return m->engine; }
uint32_t br_cf_model_users(const br_cf_model *m) { return m->n_users; }
uint32_t br_cf_model_items(const br_cf_model *m) { return m->n_items; }
uint32_t br_cf_model_factors(const br_cf_model *m) { return m->k; }
const float *br_cf_model_user_factors(const br_cf_model *m) { return m->user_f; }
const float *br_cf_model_item_factors(const br_cf_model *m) { return m->item_f; }
const float *br_cf_model_user_bias(const br_cf_model *m) { return m->user_b; }
const float *br_cf_model_item_bias(const br_cf_model *m) { return m->item_b; }
float br_cf_model_global_bias(const br_cf_model *m) { return m->global; }
const float *br_cf_model_singular_values(const br_cf_model *m) { return m->sv; }

size_t br_cf_model_memory(const br_cf_model *m)
{
    if (!m) return 0;
    if (m->map) return m->map_len;
    size_t b = ((size_t)m->n_users + m->n_items) * m->k * sizeof(float);
    if (m->user_b) b += (size_t)m->n_users * sizeof(float);
    if (m->item_b) b += (size_t)m->n_items * sizeof(float);
    if (m->sv) b += (size_t)m->k * sizeof(float);
    return b;
}

/* ------------------------------------------------------------ popularity -- */

br_status br_popularity_fit(const br_csr *r, const br_popularity_options *opt,
                            br_cf_model **out)
{
    if (!r || !out) return br_error(BR_EINVAL, "br_popularity_fit: NULL argument");
    br_popularity_options o = BR_POPULARITY_OPTIONS_DEFAULT;
    if (opt) o = *opt;
    if (o.kind != BR_POP_COUNT && o.kind != BR_POP_MEAN)
        return br_error(BR_EINVAL, "popularity: unknown kind %d", (int)o.kind);
    if (!(o.damping >= 0)) return br_error(BR_ERANGE, "popularity: damping must be >= 0");
    br_cf_model *m;
    br_status st = br__cf_model_alloc(BR_CF_POPULARITY, r->rows, r->cols, 0, 0, 1, &m);
    if (st) return st;
    double *sum = br_calloc((size_t)r->cols + 1, sizeof *sum);
    uint64_t *cnt = br_calloc((size_t)r->cols + 1, sizeof *cnt);
    if (!sum || !cnt) {
        br_free(sum);
        br_free(cnt);
        br_cf_model_free(m);
        return br_error(BR_ENOMEM, "popularity: per-book sums");
    }
    double total = 0;
    for (uint64_t p = 0; p < r->nnz; p++) {
        sum[r->indices[p]] += r->values[p];
        cnt[r->indices[p]]++;
        total += r->values[p];
    }
    double mu = r->nnz ? total / (double)r->nnz : 0.0;
    for (uint32_t i = 0; i < r->cols; i++) {
        if (o.kind == BR_POP_COUNT) {
            m->item_b[i] = (float)cnt[i];
        } else {
            double den = (double)cnt[i] + o.damping;
            m->item_b[i] = den > 0 ? (float)((sum[i] + o.damping * mu) / den) : 0.0f;
        }
    }
    br_free(sum);
    br_free(cnt);
    *out = m;
    return BR_OK;
}

/* ------------------------------------------------------------------ svd -- */

br_status br_cf_svd_fit(const br_csr *r, const br_csr *rt, const br_svd_options *opt,
                        br_cf_model **out)
{
    if (!r || !out) return br_error(BR_EINVAL, "br_cf_svd_fit: NULL argument");
    br_svd svd;
    br_status st = br_svd_compute(r, rt, opt, &svd);
    if (st) return st;
    br_cf_model *m;
    st = br__cf_model_alloc(BR_CF_SVD, r->rows, r->cols, svd.k, 0, 0, &m);
    if (st) {
        br_svd_free(&svd);
        return st;
    }
    uint32_t k = svd.k;
    for (size_t u = 0; u < r->rows; u++)
        for (uint32_t j = 0; j < k; j++) m->user_f[u * k + j] = svd.u[u * k + j] * svd.s[j];
    memcpy(m->item_f, svd.v, (size_t)r->cols * k * sizeof(float));
    m->sv = svd.s; /* take ownership */
    svd.s = NULL;
    br_svd_free(&svd);
    *out = m;
    return BR_OK;
}

/* -------------------------------------------------------------- fold-in -- */

void br__cf_gram(const float *y, size_t n, uint32_t k, float *yty)
{
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)k, (int)n, 1.0f, y, (int)k, 0.0f,
                yty, (int)k);
    for (uint32_t a = 0; a < k; a++)
        for (uint32_t b = 0; b < a; b++) yty[(size_t)a * k + b] = yty[(size_t)b * k + a];
}

void br__cf_item_gram(const br_cf_model *m, float *yty)
{
    br__cf_gram(m->item_f, m->n_items, m->k, yty);
}

br_status br_cf_fold_in(const br_cf_model *m, size_t n, const uint32_t *items,
                        const float *values, float *factors, float *bias)
{
    if (!m || (n && (!items || !values)) || (m->k && !factors))
        return br_error(BR_EINVAL, "br_cf_fold_in: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (items[i] >= m->n_items)
            return br_error(BR_EINVAL, "fold-in: book index %u out of range (%u books)", items[i],
                            m->n_items);
    uint32_t k = m->k;
    if (bias) *bias = 0.0f;
    if (k == 0) return BR_OK;
    if (m->engine == BR_CF_SVD) {
        /* The least-squares row for orthonormal V is the projection r . V
         * (it equals U_u s for a reader in the training matrix). */
        double acc[k];
        for (uint32_t j = 0; j < k; j++) acc[j] = 0;
        for (size_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < k; j++)
                acc[j] += (double)values[i] * m->item_f[(size_t)items[i] * k + j];
        for (uint32_t j = 0; j < k; j++) factors[j] = (float)acc[j];
        return BR_OK;
    }
    if (m->engine != BR_CF_ALS && m->engine != BR_CF_ALS_EXPLICIT)
        return br_error(BR_EUNSUPPORTED, "fold-in: not defined for %s",
                        br_cf_engine_name(m->engine));
    int expl = m->engine == BR_CF_ALS_EXPLICIT;
    uint32_t d = expl ? k + 1 : k;
    if (d > ALS_MAX_D) return br_error(BR_ERANGE, "fold-in: %u factors is too many", k);
    float *w = br_malloc((n + 1) * sizeof(float));
    float *t = br_malloc((n + 1) * sizeof(float));
    float *y = expl ? br_malloc((n * d + 1) * sizeof(float)) : NULL;
    /* The model's cached Gram matrix, or one computed here. */
    float *yty = expl || m->yty ? NULL : br_malloc((size_t)k * k * sizeof(float));
    double *work = br_malloc(((size_t)d * d + 2 * d) * sizeof(double));
    float *x = br_malloc(d * sizeof(float));
    br_status st = BR_OK;
    if (!w || !t || (expl && !y) || (!expl && !m->yty && !yty) || !work || !x) {
        st = br_error(BR_ENOMEM, "fold-in workspace");
        goto done;
    }
    float reg;
    int rc;
    if (expl) {
        for (size_t i = 0; i < n; i++) {
            memcpy(y + i * d, m->item_f + (size_t)items[i] * k, k * sizeof(float));
            y[i * d + k] = 1.0f;
            w[i] = 1.0f;
            t[i] = values[i] - m->global - m->item_b[items[i]];
        }
        reg = m->lambda * (float)n;
        rc = n ? br__als_solve_row_exact(d, NULL, n, NULL, w, t, y, reg, work, x) : -1;
    } else {
        if (!m->yty) br__cf_item_gram(m, yty);
        for (size_t i = 0; i < n; i++) {
            w[i] = 1.0f + m->alpha * values[i];
            t[i] = 1.0f;
        }
        reg = m->lambda;
        rc = br__als_solve_row_exact(d, m->yty ? m->yty : yty, n, items, w, t, m->item_f, reg, work,
                                 x);
    }
    if (rc != 0) {
        /* No ratings in the explicit model: the prior (all zero). */
        memset(x, 0, d * sizeof(float));
    }
    memcpy(factors, x, k * sizeof(float));
    if (bias && expl) *bias = x[k];
done:
    br_free(w);
    br_free(t);
    br_free(y);
    br_free(yty);
    br_free(work);
    br_free(x);
    return st;
}

/* ---------------------------------------------------------------- top-N -- */

/* Finishes one scored row: mask the rated books, select, add the constant
 * part of the score (global + user bias) that does not change the order. */
static void finish_row(float *s, uint32_t n_items, const uint32_t *seen, size_t n_seen,
                       float add, uint32_t n, uint32_t *items, float *scores)
{
    for (size_t j = 0; j < n_seen; j++)
        if (seen[j] < n_items) s[seen[j]] = -INFINITY;
    br__topk_rows(s, 1, n_items, n_items, n, items, scores);
    if (add != 0.0f)
        for (uint32_t p = 0; p < n; p++)
            if (items[p] != BR_CF_NONE) scores[p] += add;
}

br_status br_cf_recommend_one(const br_cf_model *m, const float *factors, float bias,
                              const uint32_t *seen, size_t n_seen, uint32_t n, uint32_t *items,
                              float *scores)
{
    if (!m || (m->k && !factors) || (n_seen && !seen) || (n && (!items || !scores)))
        return br_error(BR_EINVAL, "br_cf_recommend_one: NULL argument");
    if (n == 0) return BR_OK;
    float *s = br_aligned_alloc((size_t)m->n_items * sizeof(float) + 64, BR_ALIGN);
    if (!s) return br_error(BR_ENOMEM, "top-n: scores for %u books", m->n_items);
    uint32_t k = m->k;
    if (m->item_b) memcpy(s, m->item_b, (size_t)m->n_items * sizeof(float));
    else memset(s, 0, (size_t)m->n_items * sizeof(float));
    if (k)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m->n_items, (int)k, 1.0f, m->item_f,
                    (int)k, factors, 1, 1.0f, s, 1);
    finish_row(s, m->n_items, seen, n_seen, m->global + bias, n, items, scores);
    br_aligned_free(s);
    return BR_OK;
}

br_status br_cf_recommend(const br_cf_model *m, const br_csr *seen, const uint32_t *users,
                          size_t n_users, uint32_t n, br_cf_emit_fn emit, void *user)
{
    if (!m || !emit) return br_error(BR_EINVAL, "br_cf_recommend: NULL argument");
    if (seen && (seen->rows != m->n_users || seen->cols != m->n_items))
        return br_error(BR_EINVAL, "top-n: rated-books matrix is %u x %u, model %u x %u",
                        seen->rows, seen->cols, m->n_users, m->n_items);
    if (!users) n_users = m->n_users;
    for (size_t j = 0; users && j < n_users; j++)
        if (users[j] >= m->n_users)
            return br_error(BR_EINVAL, "top-n: user index %u out of range (%u users)", users[j],
                            m->n_users);
    if (n_users == 0 || n == 0) return BR_OK;
    uint32_t k = m->k, ni = m->n_items;
    /* ~64 MB of scores per block, at least 16 rows (sgemm efficiency) and
     * at most 1024 (nothing gained beyond). */
    size_t block = (64u << 20) / ((size_t)ni * sizeof(float) + 1);
    if (block < 16) block = 16;
    if (block > 1024) block = 1024;
    if (block > n_users) block = n_users;
    float *s = br_aligned_alloc(block * ni * sizeof(float) + 64, BR_ALIGN);
    float *uf = br_aligned_alloc(block * k * sizeof(float) + 64, BR_ALIGN);
    uint32_t *ids = br_malloc(block * sizeof(uint32_t));
    uint32_t *out_i = br_malloc(block * n * sizeof(uint32_t));
    float *out_s = br_malloc(block * n * sizeof(float));
    br_status st = BR_OK;
    if (!s || !uf || !ids || !out_i || !out_s) {
        st = br_error(BR_ENOMEM, "top-n: block of %zu x %u scores", block, ni);
        goto done;
    }
    br_progress prog;
    br_progress_begin(&prog, "top-n", n_users);
    for (size_t b0 = 0; b0 < n_users; b0 += block) {
        size_t cnt = n_users - b0 < block ? n_users - b0 : block;
        for (size_t j = 0; j < cnt; j++) {
            ids[j] = users ? users[b0 + j] : (uint32_t)(b0 + j);
            if (k) memcpy(uf + j * k, m->user_f + (size_t)ids[j] * k, k * sizeof(float));
        }
        for (size_t j = 0; j < cnt; j++) {
            if (m->item_b) memcpy(s + j * ni, m->item_b, (size_t)ni * sizeof(float));
            else if (!k) memset(s + j * ni, 0, (size_t)ni * sizeof(float));
        }
        if (k)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)cnt, (int)ni, (int)k, 1.0f,
                        uf, (int)k, m->item_f, (int)k, m->item_b ? 1.0f : 0.0f, s, (int)ni);
#pragma omp parallel for schedule(dynamic, 4) num_threads(br_get_num_threads())
        for (size_t j = 0; j < cnt; j++) {
            uint32_t u = ids[j];
            const uint32_t *sj = NULL;
            size_t ns = 0;
            if (seen) {
                sj = seen->indices + seen->indptr[u];
                ns = seen->indptr[u + 1] - seen->indptr[u];
            }
            float add = m->global + (m->user_b ? m->user_b[u] : 0.0f);
            finish_row(s + j * ni, ni, sj, ns, add, n, out_i + j * n, out_s + j * n);
        }
        if (emit(ids, cnt, n, out_i, out_s, user)) {
            st = br_error(BR_ECANCELLED, "top-n: stopped by the caller");
            goto done;
        }
        if ((st = br_progress_update(&prog, b0 + cnt))) goto done;
    }
    st = br_progress_end(&prog);
done:
    br_aligned_free(s);
    br_aligned_free(uf);
    br_free(ids);
    br_free(out_i);
    br_free(out_s);
    return st;
}
