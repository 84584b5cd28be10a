/*
 * pca.c: exact PCA. Mean in double; the covariance accumulated block by
 * block (each block of rows centred into a small float buffer, then one
 * ssyrk into a float tile that is added to a double accumulator, so no
 * centred copy of the whole matrix is made and the long sum over rows is
 * carried in double); the leading eigenpairs by Lanczos with full
 * reorthogonalisation, accepted only when every wanted Ritz pair's residual
 * bound is below 1e-10 of the largest eigenvalue (the tridiagonal solved by
 * LAPACK dstev), else by LAPACK dsyevr on the whole covariance (only the
 * requested pairs: range 'I'). A full tridiagonal reduction costs ~d^3
 * flops, which dominates small inputs (1000 x 512); a few dozen Lanczos
 * steps cost d^2 each when the leading eigenvalues stand apart, as they do
 * for embeddings, while a flat spectrum (isotropic noise) fails the bound
 * and takes the dsyevr route. Projection is one sgemm.
 *
 * Sign convention: each component's entry of largest magnitude is made
 * positive (first such entry on ties); eigensolvers return arbitrary signs,
 * and a picture that flips between runs or machines is useless.
 */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "linalg/pca.h"

#define PCA_BLOCK 2048 /* rows centred at a time */

void br_pca_fix_sign(double *v, size_t d)
{
    size_t arg = 0;
    for (size_t i = 1; i < d; i++)
        if (fabs(v[i]) > fabs(v[arg])) arg = i;
    if (v[arg] < 0)
        for (size_t i = 0; i < d; i++) v[i] = -v[i];
}

static br_status pca_alloc(br_pca *p, size_t dim, size_t nc)
{
    memset(p, 0, sizeof *p);
    p->dim = dim;
    p->n_components = nc;
    p->mean = br_aligned_alloc(dim * sizeof(float), BR_ALIGN);
    p->components = br_aligned_alloc(nc * dim * sizeof(float), BR_ALIGN);
    p->explained_variance = br_calloc(nc, sizeof(double));
    p->explained_variance_ratio = br_calloc(nc, sizeof(double));
    if (!p->mean || !p->components || !p->explained_variance || !p->explained_variance_ratio) {
        br_pca_free(p);
        return br_error(BR_ENOMEM, "pca: out of memory");
    }
    return BR_OK;
}

static br_status check(const float *x, size_t n, size_t dim, size_t nc, br_pca *out)
{
    if (!out) return br_error(BR_EINVAL, "pca: no result");
    memset(out, 0, sizeof *out);
    if (!x || dim == 0) return br_error(BR_EINVAL, "pca: empty input");
    if (n < 2) return br_error(BR_EINVAL, "pca: needs at least 2 rows (got %zu)", n);
    if (nc == 0 || nc > dim)
        return br_error(BR_EINVAL, "pca: %zu components asked of %zu-dimensional data", nc, dim);
    if (dim > INT32_MAX / 2 || n > INT32_MAX) return br_error(BR_ERANGE, "pca: matrix too large");
    return BR_OK;
}

/* mean (dim,) in double. One thread: n x dim adds are a small fraction of
 * the syrk, and an OpenMP region next to OpenBLAS's own threads only adds
 * spin-wait contention on a small machine. A non-finite input makes its
 * column's sum non-finite, so the caller checks the means, not every value. */
static void column_means(const float *x, size_t n, size_t dim, double *mean)
{
    memset(mean, 0, dim * sizeof(double));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < dim; j++) mean[j] += x[i * dim + j];
    for (size_t j = 0; j < dim; j++) mean[j] /= (double)n;
}

/* First row holding a non-finite value (for the error message). */
static size_t first_bad_row(const float *x, size_t n, size_t dim)
{
    for (size_t i = 0; i < n * dim; i++)
        if (!isfinite(x[i])) return i / dim;
    return n;
}

#define LANCZOS_TOL 1e-10

/* Leading nc eigenpairs of the symmetric cov (d, d) (upper triangle used)
 * by Lanczos from a fixed start vector. w (nc,) descending, z (d, nc) in
 * columns. Returns 1 when converged, 0 when the caller must fall back. */
static int lanczos_top(const double *cov, size_t d, size_t nc, double *w, double *z)
{
    size_t m_max = 4 * nc + 80;
    if (m_max > d) m_max = d;
    if (m_max < nc + 2) return 0;
    double *q = br_malloc((m_max + 1) * d * sizeof(double)); /* (m_max + 1, d) Lanczos basis */
    double *alpha = br_malloc(m_max * sizeof(double)), *beta = br_malloc(m_max * sizeof(double));
    double *dg = br_malloc(m_max * sizeof(double)), *off = br_malloc(m_max * sizeof(double));
    double *s = br_malloc(m_max * m_max * sizeof(double));
    double *h = br_malloc((m_max + 1) * sizeof(double));
    int ok = 0;
    if (!q || !alpha || !beta || !dg || !off || !s || !h) goto out;
    /* A deterministic start with a component along every axis. */
    double norm = 0;
    for (size_t i = 0; i < d; i++) {
        q[i] = 1.0 + 0.5 * sin((double)i * 1.61803398875);
        norm += q[i] * q[i];
    }
    for (size_t i = 0; i < d; i++) q[i] /= sqrt(norm);
    size_t m = 0;
    for (size_t j = 0; j < m_max; j++) {
        double *qj = q + j * d, *r = q + (j + 1) * d;
        // r (d,) = cov . qj
        cblas_dsymv(CblasRowMajor, CblasUpper, (int)d, 1.0, cov, (int)d, qj, 1, 0.0, r, 1);
        alpha[j] = cblas_ddot((int)d, qj, 1, r, 1);
        /* Full reorthogonalisation against q_0..q_j, twice ("twice is enough"). */
        for (int pass = 0; pass < 2; pass++) {
            // h (j+1,) = Q^T r ; r -= Q h
            cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)(j + 1), (int)d, 1.0, q, (int)d, r, 1,
                        0.0, h, 1);
            cblas_dgemv(CblasRowMajor, CblasTrans, (int)(j + 1), (int)d, -1.0, q, (int)d, h, 1,
                        1.0, r, 1);
        }
        beta[j] = cblas_dnrm2((int)d, r, 1);
        m = j + 1;
        int exhausted = beta[j] <= 1e-14 * fabs(alpha[0]) || m == d;
        if (!exhausted) cblas_dscal((int)d, 1.0 / beta[j], r, 1);
        if (m < nc || (!exhausted && m < m_max && (m < nc + 10 || m % 8 != 0))) continue;
        /* Ritz pairs of the tridiagonal T_m (dstev: ascending). */
        memcpy(dg, alpha, m * sizeof(double));
        memcpy(off, beta, m * sizeof(double));
        if (LAPACKE_dstev(LAPACK_ROW_MAJOR, 'V', (lapack_int)m, dg, off, s, (lapack_int)m) != 0)
            goto out;
        double top = fabs(dg[m - 1]) > fabs(dg[0]) ? fabs(dg[m - 1]) : fabs(dg[0]);
        int converged = 1;
        for (size_t c = 0; c < nc && converged; c++) {
            size_t col = m - 1 - c;
            double res = exhausted ? 0 : fabs(beta[j] * s[(m - 1) * m + col]);
            if (res > LANCZOS_TOL * (top > 0 ? top : 1)) converged = 0;
        }
        if (!converged) {
            if (exhausted || m == m_max) break;
            continue;
        }
        /* z[:, c] = Q^T s[:, col] */
        for (size_t c = 0; c < nc; c++) {
            size_t col = m - 1 - c;
            w[c] = dg[col];
            for (size_t i = 0; i < d; i++) z[i * nc + c] = 0;
            for (size_t k = 0; k < m; k++) {
                double sk = s[k * m + col];
                const double *qk = q + k * d;
                for (size_t i = 0; i < d; i++) z[i * nc + c] += sk * qk[i];
            }
        }
        ok = 1;
        break;
    }
out:
    br_free(q);
    br_free(alpha);
    br_free(beta);
    br_free(dg);
    br_free(off);
    br_free(s);
    br_free(h);
    return ok;
}

br_status br_pca_fit(const float *x, size_t n, size_t dim, size_t nc, br_pca *out)
{
    br_status st = check(x, n, dim, nc, out);
    if (st != BR_OK) return st;
    if ((st = pca_alloc(out, dim, nc)) != BR_OK) return st;
    double *mean = br_malloc(dim * sizeof(double));
    double *cov = br_calloc(dim * dim, sizeof(double));
    float *tile = br_aligned_alloc(dim * dim * sizeof(float), BR_ALIGN);
    size_t bl = n < PCA_BLOCK ? n : PCA_BLOCK;
    float *blk = br_aligned_alloc(bl * dim * sizeof(float), BR_ALIGN);
    double *w = br_malloc(dim * sizeof(double));
    double *z = br_malloc(dim * nc * sizeof(double));
    lapack_int *supp = br_malloc(2 * nc * sizeof(lapack_int));
    if (!mean || !cov || !tile || !blk || !w || !z || !supp) {
        st = br_error(BR_ENOMEM, "pca: out of memory for a %zu x %zu covariance", dim, dim);
        goto done;
    }
    column_means(x, n, dim, mean);
    for (size_t j = 0; j < dim; j++)
        if (!isfinite(mean[j])) {
            st = br_error(BR_EINVAL, "pca: row %zu has a non-finite value",
                          first_bad_row(x, n, dim));
            goto done;
        }
    float *meanf = out->mean;
    for (size_t j = 0; j < dim; j++) meanf[j] = (float)mean[j];
    for (size_t i0 = 0; i0 < n; i0 += bl) {
        size_t m = n - i0 < bl ? n - i0 : bl;
        /* float subtraction: one rounding, as the double route had */
        for (size_t i = 0; i < m; i++) {
            const float *xi = x + (i0 + i) * dim;
            float *bi = blk + i * dim;
            for (size_t j = 0; j < dim; j++) bi[j] = xi[j] - meanf[j];
        }
        // tile (dim, dim), upper triangle = blk^T (dim, m) . blk (m, dim)
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)dim, (int)m, 1.0f, blk, (int)dim,
                    0.0f, tile, (int)dim);
        for (size_t r = 0; r < dim; r++)
            for (size_t c = r; c < dim; c++) cov[r * dim + c] += tile[r * dim + c];
    }
    double trace = 0;
    for (size_t r = 0; r < dim; r++) {
        for (size_t c = r; c < dim; c++) cov[r * dim + c] /= (double)(n - 1);
        trace += cov[r * dim + r];
    }
    int by_lanczos = lanczos_top(cov, dim, nc, w, z);
    if (by_lanczos) {
        /* same order as dsyevr's (ascending) for the code below */
        for (size_t c = 0; c < nc / 2; c++) {
            double t = w[c];
            w[c] = w[nc - 1 - c];
            w[nc - 1 - c] = t;
            for (size_t j = 0; j < dim; j++) {
                double u = z[j * nc + c];
                z[j * nc + c] = z[j * nc + nc - 1 - c];
                z[j * nc + nc - 1 - c] = u;
            }
        }
    } else {
        lapack_int found = 0;
        lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', (lapack_int)dim, cov,
                                         (lapack_int)dim, 0, 0, (lapack_int)(dim - nc + 1),
                                         (lapack_int)dim, 0.0, &found, w, z, (lapack_int)nc, supp);
        if (info != 0 || found != (lapack_int)nc) {
            st = br_error(BR_EINTERNAL,
                          "pca: LAPACK dsyevr failed (info %d, %d of %zu eigenpairs)", (int)info,
                          (int)found, nc);
            goto done;
        }
    }
    out->total_variance = trace;
    double *v = br_malloc(dim * sizeof(double));
    if (!v) {
        st = br_error(BR_ENOMEM, "pca: out of memory");
        goto done;
    }
    for (size_t c = 0; c < nc; c++) {
        size_t src = nc - 1 - c; /* dsyevr: ascending */
        for (size_t j = 0; j < dim; j++) v[j] = z[j * nc + src];
        br_pca_fix_sign(v, dim);
        for (size_t j = 0; j < dim; j++) out->components[c * dim + j] = (float)v[j];
        double ev = w[src] > 0 ? w[src] : 0;
        out->explained_variance[c] = ev;
        out->explained_variance_ratio[c] = trace > 0 ? ev / trace : 0;
    }
    br_free(v);
done:
    br_free(mean);
    br_free(cov);
    br_aligned_free(tile);
    br_aligned_free(blk);
    br_free(w);
    br_free(z);
    br_free(supp);
    if (st != BR_OK) br_pca_free(out);
    return st;
}

br_status br_pca_transform(const br_pca *p, const float *x, size_t n, float *out)
{
    if (!p || !p->components || (!x && n) || (!out && n))
        return br_error(BR_EINVAL, "pca_transform: bad arguments");
    size_t dim = p->dim, nc = p->n_components;
    float *blk = br_aligned_alloc((n < PCA_BLOCK ? (n ? n : 1) : PCA_BLOCK) * dim * sizeof(float),
                                  BR_ALIGN);
    if (!blk) return br_error(BR_ENOMEM, "pca_transform: out of memory");
    for (size_t i0 = 0; i0 < n; i0 += PCA_BLOCK) {
        size_t m = n - i0 < PCA_BLOCK ? n - i0 : PCA_BLOCK;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < dim; j++) blk[i * dim + j] = x[(i0 + i) * dim + j] - p->mean[j];
        // out[i0:i0+m] (m, nc) = blk (m, dim) . components^T (dim, nc)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)nc, (int)dim, 1.0f, blk,
                    (int)dim, p->components, (int)dim, 0.0f, out + i0 * nc, (int)nc);
    }
    br_aligned_free(blk);
    return BR_OK;
}

void br_pca_free(br_pca *p)
{
    if (!p) return;
    br_aligned_free(p->mean);
    br_aligned_free(p->components);
    br_free(p->explained_variance);
    br_free(p->explained_variance_ratio);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------- reference -- */

/* Cyclic Jacobi on the symmetric a (d, d): eigenvalues on the diagonal,
 * eigenvectors in the columns of v. */
static void jacobi(double *a, double *v, size_t d)
{
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) v[i * d + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, diag = 0;
        for (size_t i = 0; i < d; i++) {
            diag += a[i * d + i] * a[i * d + i];
            for (size_t j = i + 1; j < d; j++) off += a[i * d + j] * a[i * d + j];
        }
        if (off <= 1e-30 * (diag > 0 ? diag : 1)) break;
        for (size_t p = 0; p < d; p++)
            for (size_t q = p + 1; q < d; q++) {
                double apq = a[p * d + q];
                if (apq == 0) continue;
                double theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (size_t k = 0; k < d; k++) { /* columns p, q */
                    double akp = a[k * d + p], akq = a[k * d + q];
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for (size_t k = 0; k < d; k++) { /* rows p, q */
                    double apk = a[p * d + k], aqk = a[q * d + k];
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for (size_t k = 0; k < d; k++) {
                    double vkp = v[k * d + p], vkq = v[k * d + q];
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
    }
}

br_status br_pca_fit_ref(const float *x, size_t n, size_t dim, size_t nc, br_pca *out)
{
    br_status st = check(x, n, dim, nc, out);
    if (st != BR_OK) return st;
    if ((st = pca_alloc(out, dim, nc)) != BR_OK) return st;
    double *mean = br_calloc(dim, sizeof(double));
    double *a = br_calloc(dim * dim, sizeof(double));
    double *v = br_calloc(dim * dim, sizeof(double));
    double *col = br_calloc(dim, sizeof(double));
    size_t *order = br_calloc(dim, sizeof(size_t));
    if (!mean || !a || !v || !col || !order) {
        st = br_error(BR_ENOMEM, "pca_ref: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < dim; j++) mean[j] += x[i * dim + j];
    for (size_t j = 0; j < dim; j++) mean[j] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < dim; r++)
            for (size_t c = 0; c < dim; c++)
                a[r * dim + c] += (x[i * dim + r] - mean[r]) * (x[i * dim + c] - mean[c]);
    double trace = 0;
    for (size_t r = 0; r < dim * dim; r++) a[r] /= (double)(n - 1);
    for (size_t r = 0; r < dim; r++) trace += a[r * dim + r];
    jacobi(a, v, dim);
    /* order by decreasing eigenvalue (selection sort: small d) */
    for (size_t i = 0; i < dim; i++) order[i] = i;
    for (size_t i = 0; i < dim; i++)
        for (size_t j = i + 1; j < dim; j++)
            if (a[order[j] * dim + order[j]] > a[order[i] * dim + order[i]]) {
                size_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    for (size_t j = 0; j < dim; j++) out->mean[j] = (float)mean[j];
    out->total_variance = trace;
    for (size_t c = 0; c < nc; c++) {
        size_t e = order[c];
        for (size_t j = 0; j < dim; j++) col[j] = v[j * dim + e];
        br_pca_fix_sign(col, dim);
        for (size_t j = 0; j < dim; j++) out->components[c * dim + j] = (float)col[j];
        double ev = a[e * dim + e] > 0 ? a[e * dim + e] : 0;
        out->explained_variance[c] = ev;
        out->explained_variance_ratio[c] = trace > 0 ? ev / trace : 0;
    }
done:
    br_free(mean);
    br_free(a);
    br_free(v);
    br_free(col);
    br_free(order);
    if (st != BR_OK) br_pca_free(out);
    return st;
}
