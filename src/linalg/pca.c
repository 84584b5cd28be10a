/*
 * pca.c: exact PCA, two eigen routes behind br_pca_fit.
 *
 * Krylov (wide inputs, d >= 128, a few components: the 2-D picture): block
 * Krylov on the implicit centred operator, never forming the covariance;
 * one fused pass over the rows per block step, Rayleigh-Ritz in double,
 * accepted on a residual test (the section below says how). It falls back
 * to the exact route when it does not converge.
 *
 * Exact (the reference route and the fallback): mean in double; the
 * covariance accumulated block by block (each block of rows centred into a
 * small float buffer, then one ssyrk into a float tile that is added to a
 * double accumulator, so no centred copy of the whole matrix is made and
 * the long sum over rows is carried in double); the leading eigenpairs by
 * Lanczos with full reorthogonalisation, accepted only when every wanted
 * Ritz pair's residual bound is below 1e-10 of the largest eigenvalue (the
 * tridiagonal solved by LAPACK dstev), else by LAPACK dsyevr on the whole
 * covariance (only the requested pairs: range 'I').
 *
 * Projection: a streaming pass for up to 4 components, one sgemm per block
 * of rows otherwise.
 *
 * Sign convention: each component's entry of largest magnitude is made
 * positive (first such entry on ties); eigensolvers return arbitrary signs,
 * and a picture that flips between runs or machines is useless.
 */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <string.h>

#include "core/isa.h"
#include "linalg/pca.h"
#include "linalg/symeig.h"

#define PCA_BLOCK 2048 /* rows centred at a time */

void br__pca_fix_sign(double *v, size_t d)
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
 * the work, and an OpenMP region next to OpenBLAS's own threads only adds
 * spin-wait contention on a small machine. A non-finite input makes its
 * column's sum non-finite, so the caller checks the means, not every value.
 * The same pass gives the trace of the centred scatter matrix,
 * sum_ij (x_ij - mean_j)^2 = sum_ij x_ij^2 - n sum_j mean_j^2, in double
 * (the Krylov route never forms the covariance, so its diagonal is not at
 * hand). sq holds dim doubles. */
static double means_and_trace(const float *x, size_t n, size_t dim, double *mean, double *sq)
{
    memset(mean, 0, dim * sizeof(double));
    memset(sq, 0, dim * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * dim;
        for (size_t j = 0; j < dim; j++) {
            double v = xi[j];
            mean[j] += v;
            sq[j] += v * v;
        }
    }
    double trace = 0;
    for (size_t j = 0; j < dim; j++) {
        mean[j] /= (double)n;
        double t = sq[j] - (double)n * mean[j] * mean[j];
        trace += t > 0 ? t : 0;
    }
    return trace;
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
            cblas_dgemv(CblasRowMajor, CblasTrans, (int)(j + 1), (int)d, -1.0, q, (int)d, h, 1, 1.0,
                        r, 1);
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

/* ------------------------------------------------------ block Krylov route -- */

/* For large inputs the covariance itself (n d^2 flops) is the cost. The
 * leading eigenpairs of the centred scatter matrix C = Xc^T Xc come instead
 * from a block Krylov space of C (block Lanczos with full
 * reorthogonalisation, b = 16 columns per block) built without forming C:
 * each step is one pass over the rows, eight at a time, centred into an
 * L1-sized buffer and multiplied twice while there (t = xc V, then
 * W += xc^T t), so the matrix is streamed once per step.
 *
 * Centring without a separate pass for the mean: the rows are shifted by
 * the mean of a sample of rows, mu0, and the first pass also sums y = x - mu0
 * and y^2 per column. With delta = mean(y) (small: the sample's error),
 * Xc^T Xc = Y^T Y - n delta delta^T exactly, the trace is
 * sum y^2 - n |delta|^2, and the mean is mu0 + delta; the shift keeps the
 * float products free of the cancellation an uncentred X^T X would have.
 *
 * All small algebra (basis, Rayleigh-Ritz on H = Q^T C Q, residuals) is in
 * double. C Q is kept, so the residual |C y - theta y| of every Ritz pair
 * costs no pass; the pairs are accepted when each wanted residual is below
 * PCA_KRYLOV_TOL of the largest Ritz value (the float products' own
 * rounding is ~1e-7 of it), else (a flat spectrum, where the Krylov space
 * would have to grow towards d) the exact covariance route runs. The
 * result is the exact PCA to float precision, like that route's.
 *
 * Cost: on the seed universe (1000 x 512) the whole fit is about a
 * millisecond, so the small algebra between the passes matters as much as
 * they do, and LAPACK calls at these sizes are mostly set-up: each new
 * block is orthogonalised by one extra Gram-Schmidt sweep and Cholesky QR
 * (written out, Householder only for a nearly dependent block), H grows by
 * its new block column only, the first step skips the eigensolve, and H's
 * eigenpairs come from br__symeig_top (half dsyevr's time at 32-64:
 * `bench_content --symeig`). docs/benchmarks.md, "PCA on both vCPUs". */
#define PCA_KRYLOV_BLOCK     16  /* one AVX-512 register of floats */
#define PCA_KRYLOV_ROWS      512 /* rows summed in float before the double sum */
#define PCA_KRYLOV_TOL       1e-5
#define PCA_KRYLOV_MAX_STEPS 24
#define PCA_SHIFT_SAMPLE     256 /* rows averaged for the shift */
#define PCA_WARM_STRIDE      32  /* the warm start's row sample: every 32nd row */
#define PCA_WARM_MIN_ROWS    16384
#define PCA_SYMEIG_MAX       64 /* Rayleigh-Ritz sizes solved by br__symeig_top */

#define KB PCA_KRYLOV_BLOCK
#define KR 8 /* rows per group: eight accumulators, written out below */

/* GCC vector type: one AVX-512 register, two AVX2 ones, four SSE ones,
 * whichever variant runs (core/isa.h); written out so -O2 keeps the accumulators in
 * registers. */
typedef float v16f __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4))); /* unaligned loads */

/* The fused pass over m rows of x: w (d, KB) += (x - shift)^T (x - shift) v.
 * Each group of KR rows is centred into xc (KR, d), t (KR, KB) = xc v stays
 * in registers, and each row of v and w is touched once per group. With
 * csum, csq (d,) non-NULL, also adds the shifted values and their squares
 * per column. Compiled for each SIMD level (core/isa.h), like the other
 * vector-typed kernels below. */
static inline BR_ISA_BODY void scatter_rows_body(const float *x, size_t m, size_t d,
                                                 const float *shift, const v16u *v, v16u *w,
                                                 float *xc, float *csum, float *csq)
{
    for (size_t i = 0; i < m; i += KR) {
        size_t rr = m - i < KR ? m - i : KR;
        for (size_t r = 0; r < KR; r++) {
            float *dst = xc + r * d;
            if (r < rr) {
                const float *src = x + (i + r) * d;
                size_t j = 0;
                for (; j + 16 <= d; j += 16) {
                    v16f y = *(const v16u *)(src + j) - *(const v16u *)(shift + j);
                    *(v16u *)(dst + j) = y;
                    if (csum) {
                        *(v16u *)(csum + j) += y;
                        *(v16u *)(csq + j) += y * y;
                    }
                }
                for (; j < d; j++) {
                    dst[j] = src[j] - shift[j];
                    if (csum) {
                        csum[j] += dst[j];
                        csq[j] += dst[j] * dst[j];
                    }
                }
            } else {
                memset(dst, 0, d * sizeof(float)); /* a short last group: zero rows */
            }
        }
        const float *x0 = xc, *x1 = xc + d, *x2 = xc + 2 * d, *x3 = xc + 3 * d;
        const float *x4 = xc + 4 * d, *x5 = xc + 5 * d, *x6 = xc + 6 * d, *x7 = xc + 7 * d;
        v16f t0 = {0}, t1 = {0}, t2 = {0}, t3 = {0}, t4 = {0}, t5 = {0}, t6 = {0}, t7 = {0};
        for (size_t j = 0; j < d; j++) {
            const v16f vj = v[j];
            t0 += x0[j] * vj;
            t1 += x1[j] * vj;
            t2 += x2[j] * vj;
            t3 += x3[j] * vj;
            t4 += x4[j] * vj;
            t5 += x5[j] * vj;
            t6 += x6[j] * vj;
            t7 += x7[j] * vj;
        }
        for (size_t j = 0; j < d; j++) {
            v16f a = w[j] + x0[j] * t0 + x1[j] * t1;
            v16f c = x2[j] * t2 + x3[j] * t3;
            a += x4[j] * t4 + x5[j] * t5;
            c += x6[j] * t6 + x7[j] * t7;
            w[j] = a + c;
        }
    }
}
BR_ISA_VARIANTS(scatter_rows,
                (const float *x, size_t m, size_t d, const float *shift, const v16u *v, v16u *w,
                 float *xc, float *csum, float *csq),
                (x, m, d, shift, v, w, xc, csum, csq))

/* wd (d, KB) += Y^T Y v (d, KB), Y = x - shift, for rows [r0, r1): float
 * sums within a panel of rows, double across panels. With sum, sq (d,)
 * non-NULL, also adds the column sums of Y and Y^2. buf: (KR + KB + 2) d
 * floats. */
static void scatter_range(const float *x, size_t r0, size_t r1, size_t d, const float *shift,
                          const float *v, double *wd, double *sum, double *sq, float *buf)
{
    float *xc = buf, *wf = buf + KR * d, *cs = wf + KB * d, *cq = cs + d;
    for (size_t i0 = r0; i0 < r1; i0 += PCA_KRYLOV_ROWS) {
        size_t m = r1 - i0 < PCA_KRYLOV_ROWS ? r1 - i0 : PCA_KRYLOV_ROWS;
        memset(wf, 0, (KB + 2) * d * sizeof(float));
        BR_ISA_CALL(scatter_rows, (x + i0 * d, m, d, shift, (const v16u *)v, (v16u *)wf, xc,
                                   sum ? cs : NULL, sum ? cq : NULL));
        for (size_t j = 0; j < KB * d; j++) wd[j] += wf[j];
        if (sum)
            for (size_t j = 0; j < d; j++) {
                sum[j] += cs[j];
                sq[j] += cq[j];
            }
    }
}

/* Buffers of the Krylov passes, allocated once per fit: per thread a float
 * panel buffer and double sums (KB d products, then d sums and d squares). */
typedef struct {
    int nt;
    float *buf;  /* (nt, (KR + KB + 2) d) */
    double *acc; /* (nt, (KB + 2) d) */
} pass_ws;

/* The pass is FMA-bound; on this machine the fit runs 1.7-2x faster on
 * two threads than on one (`bench_content --pca ... --threads 1` vs 2,
 * docs/benchmarks.md). Inputs under 2^18 values stay on one thread: waking
 * the second costs more than its share of the pass. */
static int pass_ws_init(pass_ws *ws, size_t n, size_t d)
{
    size_t panels = (n + PCA_KRYLOV_ROWS - 1) / PCA_KRYLOV_ROWS;
    int nt = (uint64_t)n * d < ((uint64_t)1 << 18) ? 1 : br_get_num_threads();
    if ((size_t)nt > panels) nt = (int)panels;
    if (nt < 1) nt = 1;
    ws->nt = nt;
    ws->buf = br_aligned_alloc((size_t)nt * (KR + KB + 2) * d * sizeof(float), BR_ALIGN);
    ws->acc = br_aligned_alloc((size_t)nt * (KB + 2) * d * sizeof(double), BR_ALIGN);
    return ws->buf && ws->acc ? 0 : -1;
}

static void pass_ws_free(pass_ws *ws)
{
    br_aligned_free(ws->buf);
    br_aligned_free(ws->acc);
}

/* wd (d, KB) = Y^T Y v (d, KB): one pass over x; with sum, sq (d,)
 * non-NULL, also the column sums of Y and Y^2. The rows are split into one
 * contiguous range of panels per thread, each summed in double and the
 * ranges added in thread order: a run is deterministic for a thread count,
 * and runs with different counts differ only by double rounding. */
static void scatter_times(const float *x, size_t n, size_t d, const float *shift, const float *v,
                          double *wd, double *sum, double *sq, pass_ws *ws)
{
    int nt = ws->nt;
    size_t per = (KB + 2) * d, panels = (n + PCA_KRYLOV_ROWS - 1) / PCA_KRYLOV_ROWS;
    memset(ws->acc, 0, (size_t)nt * per * sizeof(double));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
#ifdef _OPENMP
        size_t t = (size_t)omp_get_thread_num();
#else
        size_t t = 0;
#endif
        size_t r0 = t * panels / (size_t)nt * PCA_KRYLOV_ROWS;
        size_t r1 = (t + 1) * panels / (size_t)nt * PCA_KRYLOV_ROWS;
        if (r1 > n) r1 = n;
        double *a = ws->acc + t * per;
        scatter_range(x, r0, r1, d, shift, v, a, sum ? a + KB * d : NULL,
                      sum ? a + KB * d + d : NULL, ws->buf + t * (KR + KB + 2) * d);
    }
    memcpy(wd, ws->acc, KB * d * sizeof(double));
    if (sum) {
        memcpy(sum, ws->acc + KB * d, d * sizeof(double));
        memcpy(sq, ws->acc + KB * d + d, d * sizeof(double));
    }
    for (int t = 1; t < nt; t++) {
        const double *a = ws->acc + (size_t)t * per;
        for (size_t j = 0; j < KB * d; j++) wd[j] += a[j];
        if (sum)
            for (size_t j = 0; j < d; j++) {
                sum[j] += a[KB * d + j];
                sq[j] += a[KB * d + d + j];
            }
    }
}

/* Orthonormal columns for y (d, b) (row-major, double): Householder QR. */
static int orth_cols(double *y, size_t d, size_t b, double *tau)
{
    if (LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)d, (lapack_int)b, y, (lapack_int)b, tau) != 0)
        return -1;
    return LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)d, (lapack_int)b, (lapack_int)b, y,
                          (lapack_int)b, tau) != 0
               ? -1
               : 0;
}

typedef double v8d __attribute__((vector_size(64)));

/* Orthonormal columns for y (d, KB) by Cholesky QR: G = y^T y = R^T R,
 * y <- y R^-1. About 0.3 Mflop written for KB = 16 (each row of y is two
 * 8-double vectors), where LAPACK's Householder QR or BLAS syrk + trsm
 * spend most of their time at this size in layout and dispatch overhead.
 * Returns -1 when G is too ill-conditioned for Cholesky QR to be accurate
 * (a pivot below 1e-6 of the largest column norm, condition above ~1e6);
 * the caller then uses Householder. g holds 2 KB * KB doubles. */
static inline BR_ISA_BODY int chol_orth_body(double *y, size_t d, double *g)
{
    v8d *gv = (v8d *)g, *yv = (v8d *)y; /* G row p: gv[2p], gv[2p + 1] */
    for (size_t half = 0; half < 2; half++) {
        v8d acc[16] = {0};
        for (size_t i = 0; i < d; i++) {
            const double *yi = y + i * KB + half * 8;
            v8d lo = yv[2 * i], hi = yv[2 * i + 1];
#pragma GCC unroll 8 /* constant indices keep acc[] in registers */
            for (size_t p = 0; p < 8; p++) {
                acc[2 * p] += yi[p] * lo;
                acc[2 * p + 1] += yi[p] * hi;
            }
        }
        for (size_t p = 0; p < 16; p++) gv[16 * half + p] = acc[p];
    }
    double gmax = 0;
    for (size_t p = 0; p < KB; p++)
        if (g[p * KB + p] > gmax) gmax = g[p * KB + p];
    if (!(gmax > 0) || !isfinite(gmax)) return -1;
    /* upper R in place of G's upper triangle: G = R^T R */
    for (size_t p = 0; p < KB; p++) {
        double dpp = g[p * KB + p];
        for (size_t k = 0; k < p; k++) dpp -= g[k * KB + p] * g[k * KB + p];
        if (!(dpp > 1e-12 * gmax)) return -1;
        double rpp = sqrt(dpp);
        g[p * KB + p] = rpp;
        for (size_t q = p + 1; q < KB; q++) {
            double v = g[p * KB + q];
            for (size_t k = 0; k < p; k++) v -= g[k * KB + p] * g[k * KB + q];
            g[p * KB + q] = v / rpp;
        }
    }
    /* Ri = R^-1 (upper) in the second KB x KB of g, column by column */
    double *ri = g + KB * KB;
    memset(ri, 0, KB * KB * sizeof(double));
    for (size_t q = 0; q < KB; q++) {
        ri[q * KB + q] = 1 / g[q * KB + q];
        for (size_t p = q; p-- > 0;) {
            double v = 0;
            for (size_t k = p + 1; k <= q; k++) v += g[p * KB + k] * ri[k * KB + q];
            ri[p * KB + q] = -v / g[p * KB + p];
        }
    }
    const v8d *rv = (const v8d *)ri;
    for (size_t i = 0; i < d; i++) {
        const double *yi = y + i * KB;
        v8d lo = {0}, hi = {0};
#pragma GCC unroll 16
        for (size_t p = 0; p < KB; p++) {
            lo += yi[p] * rv[2 * p];
            hi += yi[p] * rv[2 * p + 1];
        }
        yv[2 * i] = lo;
        yv[2 * i + 1] = hi;
    }
    return 0;
}
BR_ISA_VARIANTS_RET(int, chol_orth, (double *y, size_t d, double *g), (y, d, g))

/* Orthonormal columns for y (d, b): Cholesky QR twice (the second pass
 * restores orthogonality lost to the first's conditioning), Householder
 * when the block is close to rank-deficient. */
static int orth_block(double *y, size_t d, size_t b, double *g, double *tau)
{
    if (b == KB && BR_ISA_CALL(chol_orth, (y, d, g)) == 0 && BR_ISA_CALL(chol_orth, (y, d, g)) == 0)
        return 0;
    return orth_cols(y, d, b, tau);
}

/* y (d, b) -= q (d, c) (q^T y), q with leading dimension ldq; once. */
static void project_out_once(const double *q, size_t d, size_t c, size_t ldq, double *y, size_t b,
                             double *coef)
{
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)c, (int)b, (int)d, 1.0, q, (int)ldq,
                y, (int)b, 0.0, coef, (int)b);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)b, (int)c, -1.0, q,
                (int)ldq, coef, (int)b, 1.0, y, (int)b);
}

/* The same, twice ("twice is enough"). */
static void project_out_d(const double *q, size_t d, size_t c, size_t ldq, double *y, size_t b,
                          double *coef)
{
    if (c == 0) return;
    project_out_once(q, d, c, ldq, y, b, coef);
    project_out_once(q, d, c, ldq, y, b, coef);
}

/* wd (d, KB) -= n delta (delta^T v) for v = y (d, KB): the rank-one term
 * that turns the shifted scatter Y^T Y v into the centred one, C v. */
static inline BR_ISA_BODY void rank_one_fix_body(const double *y, double *wd, const double *delta,
                                                 double n, size_t d)
{
    const v8d *yv = (const v8d *)y;
    v8d *wv = (v8d *)wd;
    v8d c0 = {0}, c1 = {0};
    for (size_t i = 0; i < d; i++) {
        c0 += delta[i] * yv[2 * i];
        c1 += delta[i] * yv[2 * i + 1];
    }
    c0 *= n;
    c1 *= n;
    for (size_t i = 0; i < d; i++) {
        wv[2 * i] -= delta[i] * c0;
        wv[2 * i + 1] -= delta[i] * c1;
    }
}
BR_ISA_VARIANTS(rank_one_fix,
                (const double *y, double *wd, const double *delta, double n, size_t d),
                (y, wd, delta, n, d))

/* shift (d,) = the mean of ns evenly spaced rows of x (n, d), summed in
 * float (ns <= 256 values a column: a relative error near 1e-5, plenty for
 * a shift); a non-finite column gets 0 (the first pass reports it). */
static inline BR_ISA_BODY void sample_mean_body(const float *x, size_t n, size_t d, size_t ns,
                                                float *shift)
{
    memset(shift, 0, d * sizeof(float));
    size_t d16 = d / 16 * 16;
    for (size_t k = 0; k < ns; k++) {
        const float *xr = x + (k * n / ns) * d;
        for (size_t j = 0; j < d16; j += 16) *(v16u *)(shift + j) += *(const v16u *)(xr + j);
        for (size_t j = d16; j < d; j++) shift[j] += xr[j];
    }
    for (size_t j = 0; j < d; j++) shift[j] = isfinite(shift[j]) ? shift[j] / (float)ns : 0.0f;
}
BR_ISA_VARIANTS(sample_mean, (const float *x, size_t n, size_t d, size_t ns, float *shift),
                (x, n, d, ns, shift))

/* Leading nc eigenpairs of the centred scatter matrix of x: w (nc,)
 * descending (scatter, not yet / (n - 1)), z (d, nc); also mean (d,) and
 * *trace, which the exact route reuses when this one does not converge.
 * Returns 1 when converged, 0 when the caller must take the exact route,
 * -1 out of memory. */
static int krylov_top(const float *x, size_t n, size_t d, size_t nc, double *mean, double *trace,
                      double *w, double *z)
{
    const size_t b = KB; /* the kernel's fixed width */
    size_t steps = PCA_KRYLOV_MAX_STEPS;
    if (steps * b > d / 2) steps = d / 2 / b; /* past d / 2 the exact route is cheaper */
    if (steps < 1 || nc + 4 > b) return 0;
    size_t lmax = steps * b;
    float *vf = br_aligned_alloc(d * b * sizeof(float), BR_ALIGN);
    float *shift = br_aligned_alloc(d * sizeof(float), BR_ALIGN);
    double *q = br_malloc(d * lmax * sizeof(double));  /* (d, lmax) basis */
    double *cq = br_malloc(d * lmax * sizeof(double)); /* (d, lmax) C q */
    double *y = br_aligned_alloc(d * b * sizeof(double), BR_ALIGN);
    double *wd = br_aligned_alloc(d * b * sizeof(double), BR_ALIGN);
    double *coef = br_malloc(lmax * b * sizeof(double)), *tau = br_malloc(b * sizeof(double));
    double *h = br_malloc(lmax * lmax * sizeof(double)), *th = br_malloc(lmax * sizeof(double));
    double *hf = br_malloc(lmax * lmax * sizeof(double)),
           *g = br_aligned_alloc(2 * b * b * sizeof(double), BR_ALIGN);
    double *sq = br_malloc(d * sizeof(double)), *delta = br_malloc(d * sizeof(double));
    double *s = br_malloc(lmax * nc * sizeof(double));
    double *zs = br_malloc(2 * d * nc * sizeof(double)), *czs = zs ? zs + d * nc : NULL;
    size_t lsym = lmax < PCA_SYMEIG_MAX ? lmax : PCA_SYMEIG_MAX;
    double *symw = br_malloc(BR_SYMEIG_WORK(lsym) * sizeof(double));
    lapack_int *supp = br_malloc(2 * nc * sizeof(lapack_int));
    pass_ws ws;
    int ok = -1;
    if (pass_ws_init(&ws, n, d) || !vf || !shift || !q || !cq || !y || !wd || !coef || !tau || !h ||
        !th || !hf || !g || !zs || !symw || !sq || !delta || !s || !supp)
        goto out;
    ok = 0;
    /* the shift: the mean of up to PCA_SHIFT_SAMPLE evenly spaced rows */
    size_t ns = n < PCA_SHIFT_SAMPLE ? n : PCA_SHIFT_SAMPLE;
    BR_ISA_CALL(sample_mean, (x, n, d, ns, shift));
    /* The start block: b evenly spaced rows of x minus the shift (a sketch
     * Y^T omega with omega picking rows: already weighted towards the
     * leading directions, which saves about one pass over random vectors),
     * plus a small fixed pseudo-random part so that repeated or constant
     * rows still give b independent columns. Deterministic: the picture
     * must not change between runs. */
    double scale = 0;
    for (size_t k = 0; k < b; k++) {
        const float *xr = x + (k * n / b) * d;
        for (size_t j = 0; j < d; j++) {
            double v = (double)xr[j] - shift[j];
            y[j * b + k] = isfinite(v) ? v : 0.0;
            scale += y[j * b + k] * y[j * b + k];
        }
    }
    scale = sqrt(scale / (double)(d * b)) * 1e-3 + 1e-30;
    for (size_t i = 0; i < d * b; i++) { /* a hash of the index: no serial chain */
        uint64_t u = (i + 1) * 0x9e3779b97f4a7c15u;
        u = (u ^ (u >> 31)) * 0xbf58476d1ce4e5b9u;
        u ^= u >> 29;
        y[i] += scale * ((double)(u >> 11) * 0x1.0p-53 - 0.5);
    }
    if (orth_block(y, d, b, g, tau)) goto out;
    /* Warm start on tall inputs: the block times the scatter matrix of
     * every PCA_WARM_STRIDE-th row (a 1/32 sample, gathered) before the
     * first full pass. The leading directions of a sample of thousands of
     * rows are close to the full ones, which saves a full pass at 100,000
     * rows (3 instead of 4 on the c100k benchmark set) for 1/32 of one;
     * a few hundred rows are too few to help, so short inputs skip it. */
    if (n >= PCA_WARM_MIN_ROWS) {
        size_t nw = n / PCA_WARM_STRIDE;
        float *xs = br_aligned_alloc(nw * d * sizeof(float), BR_ALIGN);
        if (!xs) {
            ok = -1;
            goto out;
        }
        for (size_t i = 0; i < nw; i++)
            memcpy(xs + i * d, x + i * PCA_WARM_STRIDE * d, d * sizeof(float));
        for (size_t i = 0; i < d * b; i++) vf[i] = (float)y[i];
        scatter_times(xs, nw, d, shift, vf, wd, NULL, NULL, &ws);
        br_aligned_free(xs);
        memcpy(y, wd, d * b * sizeof(double));
        if (orth_block(y, d, b, g, tau)) goto out;
    }
    for (size_t it = 0; it < steps; it++) {
        size_t c = it * b, l = c + b;
        for (size_t i = 0; i < d; i++) {
            memcpy(q + i * lmax + c, y + i * b, b * sizeof(double));
            for (size_t j = 0; j < b; j++) vf[i * b + j] = (float)y[i * b + j];
        }
        /* C applied to the float copy of the block; (vf - y) is 1e-8 of it */
        scatter_times(x, n, d, shift, vf, wd, it == 0 ? mean : NULL, sq, &ws);
        if (it == 0) { /* mean holds the column sums of Y, sq of Y^2 */
            double tr = 0;
            for (size_t j = 0; j < d; j++) {
                delta[j] = mean[j] / (double)n;
                double t = sq[j] - (double)n * delta[j] * delta[j];
                tr += t > 0 ? t : 0;
                mean[j] = shift[j] + delta[j];
                if (!isfinite(mean[j])) goto out; /* the caller reports the bad row */
            }
            *trace = tr;
        }
        BR_ISA_CALL(rank_one_fix, (y, wd, delta, (double)n, d));
        for (size_t i = 0; i < d; i++) memcpy(cq + i * lmax + c, wd + i * b, b * sizeof(double));
        /* The new block column of H = Q^T C Q: hf[0:l, c:l] (ld lmax) =
         * Q^T C q_it; earlier blocks' entries do not change. The same
         * product is the first sweep's coefficients for the next block. */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)l, (int)b, (int)d, 1.0, q,
                    (int)lmax, cq + c, (int)lmax, 0.0, hf + c, (int)lmax);
        /* mirror the new column into the new block row, symmetrise its
         * diagonal block */
        for (size_t i = c; i < l; i++) {
            for (size_t j = 0; j < c; j++) hf[i * lmax + j] = hf[j * lmax + i];
            for (size_t j = i + 1; j < l; j++)
                hf[i * lmax + j] = hf[j * lmax + i] = 0.5 * (hf[i * lmax + j] + hf[j * lmax + i]);
        }
        /* The first step's eigensolve is skipped unless it is the last
         * step allowed: the start block's 1e-3 random part keeps its
         * Ritz pairs about that far from the leading ones, far above
         * PCA_KRYLOV_TOL (a skipped test costs a pass, never accuracy). */
        int converged = 0;
        if (it > 0 || it + 1 == steps) {
            /* Rayleigh-Ritz on H (l, l) */
            for (size_t i = 0; i < l; i++) memcpy(h + i * l, hf + i * lmax, l * sizeof(double));
            /* top nc Ritz pairs only, ascending in th, s (l, nc) in
             * columns: br__symeig_top up to 64 x 64 (half dsyevr's time
             * there), else dsyevr (range I; H is symmetric, so the
             * column-major call needs no layout transposes) */
            lapack_int got = 0, lo = (lapack_int)(l - nc + 1);
            if ((l > PCA_SYMEIG_MAX || br__symeig_top(h, l, nc, th, s, symw) != 0) &&
                (LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'V', 'I', 'U', (lapack_int)l, h, (lapack_int)l, 0,
                                0, lo, (lapack_int)l, 0.0, &got, th, s, (lapack_int)l, supp) != 0 ||
                 got != (lapack_int)nc))
                goto out;
            double top = fabs(th[nc - 1]);
            converged = top > 0;
            // zs (d, nc) = Q s, czs (d, nc) = C Q s (s: (l, nc) in columns)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)nc, (int)l, 1.0, q,
                        (int)lmax, s, (int)l, 0.0, zs, (int)nc);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)nc, (int)l, 1.0, cq,
                        (int)lmax, s, (int)l, 0.0, czs, (int)nc);
            for (size_t k = 0; k < nc && converged; k++) {
                size_t col = nc - 1 - k; /* descending */
                double rn = 0;           /* |C z - theta z|^2 */
                for (size_t i = 0; i < d; i++) {
                    double r = czs[i * nc + col] - th[col] * zs[i * nc + col];
                    rn += r * r;
                    z[i * nc + k] = zs[i * nc + col];
                }
                if (sqrt(rn) > PCA_KRYLOV_TOL * top)
                    converged = 0;
                else
                    w[k] = th[col];
            }
        }
        if (converged) {
            ok = 1;
            break;
        }
        if (it + 1 == steps) break;
        // y (d, b) = C q_it - Q hf[0:l, c:l]: the part of C q_it outside the basis
        memcpy(y, wd, d * b * sizeof(double));
        for (size_t i = 0; i < l; i++) memcpy(coef + i * b, hf + i * lmax + c, b * sizeof(double));
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)b, (int)l, -1.0, q,
                    (int)lmax, coef, (int)b, 1.0, y, (int)b);
        double ynorm = cblas_ddot((int)(d * b), y, 1, y, 1);
        /* next block: y after a second sweep ("twice is enough"), then
         * Cholesky QR; a block that lost most of itself to the basis (or
         * whose Cholesky QR is ill-conditioned) gets the careful path:
         * sweeps and Householder QR, twice */
        project_out_once(q, d, l, lmax, y, b, coef);
        double after = cblas_ddot((int)(d * b), y, 1, y, 1);
        if (!(after > 1e-8 * ynorm) || BR_ISA_CALL(chol_orth, (y, d, g)) ||
            BR_ISA_CALL(chol_orth, (y, d, g))) {
            memcpy(y, wd, d * b * sizeof(double));
            project_out_d(q, d, l, lmax, y, b, coef);
            if (orth_cols(y, d, b, tau)) goto out;
            project_out_d(q, d, l, lmax, y, b, coef);
            if (orth_cols(y, d, b, tau)) goto out;
        }
    }
out:
    pass_ws_free(&ws);
    br_aligned_free(vf);
    br_aligned_free(shift);
    br_free(q);
    br_free(cq);
    br_aligned_free(y);
    br_aligned_free(wd);
    br_free(coef);
    br_free(tau);
    br_free(h);
    br_free(hf);
    br_aligned_free(g);
    br_free(th);
    br_free(sq);
    br_free(delta);
    br_free(s);
    br_free(zs);
    br_free(symw);
    br_free(supp);
    return ok;
}

br_status br_pca_fit(const float *x, size_t n, size_t dim, size_t nc, br_pca *out)
{
    return br__pca_fit_route(x, n, dim, nc, BR_PCA_AUTO, out, NULL);
}

/* The Krylov route needs a few passes of 4 n d b flops against the
 * covariance's n d^2 plus the eigensolver's d^2-d^3: it pays once d is a
 * few hundred and the components are few. */
static int krylov_pays(size_t n, size_t dim, size_t nc)
{
    return dim >= 128 && n >= 64;
}

br_status br__pca_fit_route(const float *x, size_t n, size_t dim, size_t nc, br_pca_route route,
                           br_pca *out, br_pca_route *used)
{
    if (used) *used = BR_PCA_EXACT;
    br_status st = check(x, n, dim, nc, out);
    if (st != BR_OK) return st;
    if ((st = pca_alloc(out, dim, nc)) != BR_OK) return st;
    double *mean = br_malloc(dim * sizeof(double));
    double *sq = br_malloc(dim * sizeof(double));
    double *w = br_malloc(dim * sizeof(double));
    double *z = br_malloc(dim * nc * sizeof(double));
    lapack_int *supp = br_malloc(2 * nc * sizeof(lapack_int));
    double *cov = NULL;
    float *tile = NULL, *blk = NULL;
    if (!mean || !sq || !w || !z || !supp) {
        st = br_error(BR_ENOMEM, "pca: out of memory");
        goto done;
    }
    /* Small inputs take a millisecond or two: waking OpenBLAS's second
     * thread for each small product costs more than it gives on a machine
     * whose two hardware threads share one core. Process-wide setting,
     * restored on return. */
    int blas_threads = openblas_get_num_threads();
    int krylov = route == BR_PCA_KRYLOV || (route == BR_PCA_AUTO && krylov_pays(n, dim, nc));
    /* the Krylov route's BLAS calls are all small (d x 16 blocks) */
    int one_thread = krylov || (uint64_t)n * dim < ((uint64_t)1 << 22);
    if (one_thread) openblas_set_num_threads(1);
    double trace = 0, scatter_trace = 0;
    int found = 0; /* 1: w, z hold the top nc pairs, descending */
    if (krylov) {
        int k = krylov_top(x, n, dim, nc, mean, &scatter_trace, w, z);
        if (k < 0) {
            st = br_error(BR_ENOMEM, "pca: out of memory for the Krylov basis (d = %zu)", dim);
            goto restore;
        }
        if (k > 0) {
            for (size_t c = 0; c < nc; c++) w[c] /= (double)(n - 1);
            trace = scatter_trace / (double)(n - 1);
            found = 1;
            if (used) *used = BR_PCA_KRYLOV;
        } else { /* not converged (or stopped early): the plain mean pass */
            scatter_trace = means_and_trace(x, n, dim, mean, sq);
        }
    } else {
        scatter_trace = means_and_trace(x, n, dim, mean, sq);
    }
    for (size_t j = 0; j < dim; j++)
        if (!isfinite(mean[j])) {
            st = br_error(BR_EINVAL, "pca: row %zu has a non-finite value",
                          first_bad_row(x, n, dim));
            goto restore;
        }
    float *meanf = out->mean;
    for (size_t j = 0; j < dim; j++) meanf[j] = (float)mean[j];
    if (!found) {
        cov = br_calloc(dim * dim, sizeof(double));
        tile = br_aligned_alloc(dim * dim * sizeof(float), BR_ALIGN);
        size_t bl = n < PCA_BLOCK ? n : PCA_BLOCK;
        blk = br_aligned_alloc(bl * dim * sizeof(float), BR_ALIGN);
        if (!cov || !tile || !blk) {
            st = br_error(BR_ENOMEM, "pca: out of memory for a %zu x %zu covariance", dim, dim);
            goto restore;
        }
        for (size_t i0 = 0; i0 < n; i0 += bl) {
            size_t m = n - i0 < bl ? n - i0 : bl;
            /* float subtraction: one rounding, as the double route had */
            for (size_t i = 0; i < m; i++) {
                const float *xi = x + (i0 + i) * dim;
                float *bi = blk + i * dim;
                for (size_t j = 0; j < dim; j++) bi[j] = xi[j] - meanf[j];
            }
            // tile (dim, dim), upper triangle = blk^T (dim, m) . blk (m, dim)
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)dim, (int)m, 1.0f, blk,
                        (int)dim, 0.0f, tile, (int)dim);
            for (size_t r = 0; r < dim; r++)
                for (size_t c = r; c < dim; c++) cov[r * dim + c] += tile[r * dim + c];
        }
        for (size_t r = 0; r < dim; r++) {
            for (size_t c = r; c < dim; c++) cov[r * dim + c] /= (double)(n - 1);
            trace += cov[r * dim + r];
        }
        found = lanczos_top(cov, dim, nc, w, z);
    }
    if (!found) {
        lapack_int got = 0;
        lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', (lapack_int)dim, cov,
                                         (lapack_int)dim, 0, 0, (lapack_int)(dim - nc + 1),
                                         (lapack_int)dim, 0.0, &got, w, z, (lapack_int)nc, supp);
        if (info != 0 || got != (lapack_int)nc) {
            st = br_error(BR_EINTERNAL, "pca: LAPACK dsyevr failed (info %d, %d of %zu eigenpairs)",
                          (int)info, (int)got, nc);
            goto restore;
        }
        /* dsyevr: ascending; make it descending like the iterative routes */
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
    }
    out->total_variance = trace;
    for (size_t c = 0; c < nc; c++) {
        double *v = sq; /* free now: dim doubles */
        for (size_t j = 0; j < dim; j++) v[j] = z[j * nc + c];
        br__pca_fix_sign(v, dim);
        for (size_t j = 0; j < dim; j++) out->components[c * dim + j] = (float)v[j];
        double ev = w[c] > 0 ? w[c] : 0;
        out->explained_variance[c] = ev;
        out->explained_variance_ratio[c] = trace > 0 ? ev / trace : 0;
    }
restore:
    if (one_thread) openblas_set_num_threads(blas_threads);
done:
    br_free(mean);
    br_free(sq);
    br_free(cov);
    br_aligned_free(tile);
    br_aligned_free(blk);
    br_free(w);
    br_free(z);
    br_free(supp);
    if (st != BR_OK) br_pca_free(out);
    return st;
}

/* out (m, NC) = (x - mean) . comp^T for m rows and a constant NC <= 4:
 * four rows at a time, each row and component its own vector accumulator
 * (4 NC independent chains; one row at a time was bound by the latency of
 * its chains and horizontal sums, ~3x slower). Memory-bound: x is read
 * once. Inlined per NC so that the accumulators stay in registers. */
static inline __attribute__((always_inline)) void project_group(const float *x, size_t rows,
                                                                size_t d, const float *mean,
                                                                const float *comp, const size_t NC,
                                                                float *out)
{
    size_t d16 = d / 16 * 16;
    size_t i = 0;
    for (; i + 4 <= rows; i += 4) {
        const float *x0 = x + i * d, *x1 = x0 + d, *x2 = x1 + d, *x3 = x2 + d;
        v16f a0[4] = {{0}}, a1[4] = {{0}}, a2[4] = {{0}}, a3[4] = {{0}};
        for (size_t j = 0; j < d16; j += 16) {
            v16f mu = *(const v16u *)(mean + j);
            v16f y0 = *(const v16u *)(x0 + j) - mu, y1 = *(const v16u *)(x1 + j) - mu;
            v16f y2 = *(const v16u *)(x2 + j) - mu, y3 = *(const v16u *)(x3 + j) - mu;
#pragma GCC unroll 4 /* constant indices keep the accumulators in registers */
            for (size_t c = 0; c < NC; c++) {
                v16f cc = *(const v16u *)(comp + c * d + j);
                a0[c] += y0 * cc;
                a1[c] += y1 * cc;
                a2[c] += y2 * cc;
                a3[c] += y3 * cc;
            }
        }
        for (size_t c = 0; c < NC; c++) {
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int k = 0; k < 16; k++) {
                s0 += a0[c][k];
                s1 += a1[c][k];
                s2 += a2[c][k];
                s3 += a3[c][k];
            }
            for (size_t j = d16; j < d; j++) {
                s0 += (x0[j] - mean[j]) * comp[c * d + j];
                s1 += (x1[j] - mean[j]) * comp[c * d + j];
                s2 += (x2[j] - mean[j]) * comp[c * d + j];
                s3 += (x3[j] - mean[j]) * comp[c * d + j];
            }
            out[i * NC + c] = s0;
            out[(i + 1) * NC + c] = s1;
            out[(i + 2) * NC + c] = s2;
            out[(i + 3) * NC + c] = s3;
        }
    }
    for (; i < rows; i++) { /* the last few rows */
        const float *xi = x + i * d;
        for (size_t c = 0; c < NC; c++) {
            v16f a = {0};
            for (size_t j = 0; j < d16; j += 16)
                a += (*(const v16u *)(xi + j) - *(const v16u *)(mean + j)) *
                     *(const v16u *)(comp + c * d + j);
            float s = 0;
            for (int k = 0; k < 16; k++) s += a[k];
            for (size_t j = d16; j < d; j++) s += (xi[j] - mean[j]) * comp[c * d + j];
            out[i * NC + c] = s;
        }
    }
}

static inline BR_ISA_BODY void project_rows_body(const float *x, size_t m, size_t d,
                                                 const float *mean, const float *comp, size_t nc,
                                                 float *out)
{
    switch (nc) {
    case 1:
        project_group(x, m, d, mean, comp, 1, out);
        break;
    case 2:
        project_group(x, m, d, mean, comp, 2, out);
        break;
    case 3:
        project_group(x, m, d, mean, comp, 3, out);
        break;
    default:
        project_group(x, m, d, mean, comp, 4, out);
        break;
    }
}
BR_ISA_VARIANTS(project_rows,
                (const float *x, size_t m, size_t d, const float *mean, const float *comp,
                 size_t nc, float *out),
                (x, m, d, mean, comp, nc, out))

br_status br_pca_transform(const br_pca *p, const float *x, size_t n, float *out)
{
    if (!p || !p->components || (!x && n) || (!out && n))
        return br_error(BR_EINVAL, "pca_transform: bad arguments");
    size_t dim = p->dim, nc = p->n_components;
    if (nc <= 4) {
        /* a few components (the 2-D picture): one streaming pass, where an
         * sgemm with 2 columns would pack every block of x first */
        int nt = (uint64_t)n * dim < ((uint64_t)1 << 18) ? 1 : br_get_num_threads();
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (size_t i0 = 0; i0 < n; i0 += PCA_KRYLOV_ROWS) {
            size_t m = n - i0 < PCA_KRYLOV_ROWS ? n - i0 : PCA_KRYLOV_ROWS;
            BR_ISA_CALL(project_rows,
                        (x + i0 * dim, m, dim, p->mean, p->components, nc, out + i0 * nc));
        }
        return BR_OK;
    }
    float *blk =
        br_aligned_alloc((n < PCA_BLOCK ? (n ? n : 1) : PCA_BLOCK) * dim * sizeof(float), BR_ALIGN);
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

br_status br__pca_fit_ref(const float *x, size_t n, size_t dim, size_t nc, br_pca *out)
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
        br__pca_fix_sign(col, dim);
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
