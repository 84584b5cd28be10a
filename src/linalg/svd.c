/*
 * svd.c: truncated SVD of a sparse matrix, two routes behind one entry point.
 *
 * Exact (small matrices, the notebook's recipe): the Gram matrix of the
 * smaller side, G = B B^T with B = a or a^T, is built in double straight
 * from the sparse entries (never the dense a), and LAPACK's dsyevr returns
 * its top k eigenpairs. s = sqrt(eigenvalue); the other side's vectors are
 * B^T W / s. In double the squaring of the condition number costs nothing
 * that matters for the top singular values (relative error ~ 1e-16 *
 * (s_max / s)^2).
 *
 * Randomized: block Krylov (Musco & Musco 2015), i.e. block Lanczos with
 * full reorthogonalisation and a Rayleigh-Ritz step, on the smaller side:
 * with P the matrix whose rows are that side, Q = orth[Y, (P P^T) Y, ...,
 * (P P^T)^q Y] from a Gaussian start Y of b = 16 columns (one cache line of
 * floats per gathered row), then the small problem B = Q^T P through
 * B B^T = Z^T Z (float panels summed in double), Z = P^T Q being the
 * products the iteration made anyway. For the same sparse passes as q
 * subspace iterations (Halko, Martinsson & Tropp) the Ritz space is q + 1
 * times larger: on goodbooks it reaches scikit-learn's error at n_iter = 5
 * with less than half of its sparse work (19 passes of 16 columns against
 * 12 of 60). The automatic depth gives a space of 3 k columns (at least 4
 * steps); --power-iters sets the depth.
 *
 * Dense blocks are row-major for the sparse products (a row of x is then
 * contiguous for the gather). Each new block is orthogonalised against the
 * basis by block Gram-Schmidt, then one Cholesky-QR pass, both twice; the
 * fallback when a block is too close to rank deficient for Cholesky QR is
 * Householder: a row-major m x l block is the column-major l x m block of
 * its transpose, so its QR is LAPACK's LQ (sgelqf/sorglq) on that layout,
 * with no transposed copy of a large block.
 */
#include "bookrec/sparse.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <string.h>

void br_svd_free(br_svd *svd)
{
    if (!svd) return;
    br_aligned_free(svd->s);
    br_aligned_free(svd->u);
    br_aligned_free(svd->v);
    memset(svd, 0, sizeof *svd);
}

static br_status svd_alloc(br_svd *o, uint32_t rows, uint32_t cols, uint32_t k)
{
    memset(o, 0, sizeof *o);
    o->rows = rows;
    o->cols = cols;
    o->k = k;
    o->s = br_aligned_alloc((size_t)(k ? k : 1) * sizeof(float), BR_ALIGN);
    o->u = br_aligned_alloc(((size_t)rows * k + 1) * sizeof(float), BR_ALIGN);
    o->v = br_aligned_alloc(((size_t)cols * k + 1) * sizeof(float), BR_ALIGN);
    if (!o->s || !o->u || !o->v) {
        br_svd_free(o);
        return br_error(BR_ENOMEM, "svd: factors for %u x %u, k = %u", rows, cols, k);
    }
    return BR_OK;
}

/* Eigenvalues below this fraction of the largest are rank deficiency, not
 * signal: dividing by their square roots would amplify rounding noise. */
#define SVD_RANK_TOL 1e-12

/* ------------------------------------------------------------ exact route -- */

/* g (n, n) = b b^T where b is n x m, given b^T as CSR (bt: m rows). Each
 * column of b (a row of bt) adds the outer product of its entries; threads
 * own disjoint bands of g's rows, so no atomics. Cost: sum of squared column
 * lengths. */
static void gram_from_sparse(const br_csr *bt, uint32_t n, double *g)
{
    memset(g, 0, (size_t)n * n * sizeof *g);
#pragma omp parallel num_threads(br_get_num_threads())
    {
#ifdef _OPENMP
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
#else
        int nt = 1, t = 0;
#endif
        uint32_t lo = (uint32_t)((uint64_t)n * t / nt), hi = (uint32_t)((uint64_t)n * (t + 1) / nt);
        for (uint32_t c = 0; c < bt->rows; c++) {
            uint64_t b = bt->indptr[c], e = bt->indptr[c + 1];
            for (uint64_t p = b; p < e; p++) {
                uint32_t i = bt->indices[p];
                if (i < lo || i >= hi) continue;
                double vi = bt->values[p];
                double *gi = g + (size_t)i * n;
                for (uint64_t q = b; q < e; q++) gi[bt->indices[q]] += vi * bt->values[q];
            }
        }
    }
}

/* other (m, k) = b^T w (n, k) / s, with b^T as CSR (m rows). Zero columns
 * for s == 0. */
static void right_vectors(const br_csr *bt, const double *w, const double *s, uint32_t k,
                          float *other)
{
#pragma omp parallel for schedule(dynamic, 256) num_threads(br_get_num_threads())
    for (int64_t c = 0; c < (int64_t)bt->rows; c++) {
        double acc[k ? k : 1];
        for (uint32_t j = 0; j < k; j++) acc[j] = 0.0;
        for (uint64_t p = bt->indptr[c]; p < bt->indptr[c + 1]; p++) {
            const double *wr = w + (size_t)bt->indices[p] * k;
            double v = bt->values[p];
            for (uint32_t j = 0; j < k; j++) acc[j] += v * wr[j];
        }
        for (uint32_t j = 0; j < k; j++)
            other[(size_t)c * k + j] = s[j] > 0 ? (float)(acc[j] / s[j]) : 0.0f;
    }
}

/* Top k eigenpairs of the symmetric g (n, n), decreasing: vals (k,),
 * vecs (n, k) row-major. g is destroyed. */
static br_status top_eigen(double *g, uint32_t n, uint32_t k, double *vals, double *vecs)
{
    if (k == 0) return BR_OK;
    lapack_int found = 0;
    double *w = br_malloc((size_t)n * sizeof *w);
    double *z = br_malloc((size_t)n * k * sizeof *z);
    lapack_int *isuppz = br_malloc(2 * (size_t)n * sizeof *isuppz);
    if (!w || !z || !isuppz) {
        br_free(w);
        br_free(z);
        br_free(isuppz);
        return br_error(BR_ENOMEM, "svd: eigen workspace (n = %u)", n);
    }
    lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', (lapack_int)n, g,
                                     (lapack_int)n, 0.0, 0.0, (lapack_int)(n - k + 1),
                                     (lapack_int)n, 0.0, &found, w, z, (lapack_int)k, isuppz);
    br_status st = BR_OK;
    if (info != 0 || found != (lapack_int)k) {
        st = br_error(BR_EINTERNAL, "svd: dsyevr failed (info %d, %d of %u eigenpairs)", (int)info,
                      (int)found, k);
    } else {
        /* dsyevr returns ascending order: reverse. */
        for (uint32_t j = 0; j < k; j++) {
            vals[j] = w[k - 1 - j];
            for (uint32_t i = 0; i < n; i++)
                vecs[(size_t)i * k + j] = z[(size_t)i * k + (k - 1 - j)];
        }
    }
    br_free(w);
    br_free(z);
    br_free(isuppz);
    return st;
}

/* Square roots of the eigenvalues, with rank deficiency set to exactly 0. */
static void eig_to_sv(const double *vals, uint32_t k, double *s)
{
    double top = k ? vals[0] : 0.0;
    for (uint32_t j = 0; j < k; j++)
        s[j] = (vals[j] > SVD_RANK_TOL * top && vals[j] > 0) ? sqrt(vals[j]) : 0.0;
}

static br_status svd_exact(const br_csr *a, const br_csr *at, uint32_t k, br_svd *out)
{
    /* b is the smaller side: its Gram matrix is n x n. */
    int by_rows = a->rows <= a->cols;
    const br_csr *bt = by_rows ? at : a; /* b^T as CSR: columns of b */
    uint32_t n = by_rows ? a->rows : a->cols;
    if (n > BR_SVD_EXACT_MAX)
        return br_error(BR_ERANGE, "svd: exact route limited to min(rows, cols) <= %d (got %u)",
                        BR_SVD_EXACT_MAX, n);
    br_status st = svd_alloc(out, a->rows, a->cols, k);
    if (st) return st;
    out->method = BR_SVD_EXACT;
    double *g = br_malloc((size_t)n * n * sizeof *g + 1);
    double *vals = br_malloc(((size_t)k + 1) * sizeof *vals);
    double *s = br_malloc(((size_t)k + 1) * sizeof *s);
    double *w = br_malloc(((size_t)n * k + 1) * sizeof *w);
    if (!g || !vals || !s || !w) {
        st = br_error(BR_ENOMEM, "svd: Gram matrix %u x %u", n, n);
        goto done;
    }
    gram_from_sparse(bt, n, g);
    st = top_eigen(g, n, k, vals, w);
    if (st) goto done;
    eig_to_sv(vals, k, s);
    for (uint32_t j = 0; j < k; j++) {
        out->s[j] = (float)s[j];
        if (s[j] == 0)
            for (uint32_t i = 0; i < n; i++) w[(size_t)i * k + j] = 0.0;
    }
    float *near = by_rows ? out->u : out->v; /* vectors of the Gram side */
    float *far = by_rows ? out->v : out->u;
    for (size_t i = 0; i < (size_t)n * k; i++) near[i] = (float)w[i];
    /* far = b^T w / s: the rows of bt are exactly the far side. */
    right_vectors(bt, w, s, k, far);
done:
    br_free(g);
    br_free(vals);
    br_free(s);
    br_free(w);
    if (st) br_svd_free(out);
    return st;
}

/* ------------------------------------------------------- randomized route -- */

/* Orthonormalises the columns of the row-major x (m, l) in place (m >= l)
 * with Householder: LQ of its column-major transpose. Robust for any
 * conditioning, but its panel factorisation runs at matrix-vector speed. */
static br_status orthonormalise_householder(float *x, size_t m, size_t l, float *tau, float **work,
                                            size_t *lwork)
{
    float q;
    lapack_int info = LAPACKE_sgelqf_work(LAPACK_COL_MAJOR, (lapack_int)l, (lapack_int)m, x,
                                          (lapack_int)l, tau, &q, -1);
    size_t need = (size_t)q;
    info = LAPACKE_sorglq_work(LAPACK_COL_MAJOR, (lapack_int)l, (lapack_int)m, (lapack_int)l, x,
                               (lapack_int)l, tau, &q, -1);
    if ((size_t)q > need) need = (size_t)q;
    if (need > *lwork) {
        br_free(*work);
        *work = br_malloc(need * sizeof(float));
        if (!*work) {
            *lwork = 0;
            return br_error(BR_ENOMEM, "svd: QR workspace");
        }
        *lwork = need;
    }
    info = LAPACKE_sgelqf_work(LAPACK_COL_MAJOR, (lapack_int)l, (lapack_int)m, x, (lapack_int)l,
                               tau, *work, (lapack_int)*lwork);
    if (info == 0)
        info = LAPACKE_sorglq_work(LAPACK_COL_MAJOR, (lapack_int)l, (lapack_int)m, (lapack_int)l, x,
                                   (lapack_int)l, tau, *work, (lapack_int)*lwork);
    if (info != 0)
        return br_error(BR_EINTERNAL, "svd: LQ factorisation failed (info %d)", (int)info);
    return BR_OK;
}

/* One Cholesky-QR pass: G = x^T x (sgemm speed), G = R^T R in double,
 * x = x R^-1 as an sgemm with the explicit inverse (strsm on a skinny block
 * was slower than the whole rest of the pass). tmp holds m * l floats.
 * Returns -1 when G is not numerically positive definite (x rank deficient
 * or too ill-conditioned for float); x is then untouched. */
static int cholqr_pass(float *x, size_t m, size_t l, float *gf, double *gd, float *tmp)
{
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)l, (int)m, 1.0f, x, (int)l, 0.0f, gf,
                (int)l);
    double dmax = 0;
    for (size_t i = 0; i < l; i++) {
        for (size_t j = 0; j < l; j++) gd[i * l + j] = j >= i ? gf[i * l + j] : 0.0;
        if (gd[i * l + i] > dmax) dmax = gd[i * l + i];
    }
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)l, gd, (lapack_int)l) != 0) return -1;
    /* A pivot this small relative to the largest column means the Gram
     * matrix lost the column to float rounding: use Householder instead. */
    for (size_t i = 0; i < l; i++)
        if (!(gd[i * l + i] * gd[i * l + i] > 1e-5 * dmax)) return -1;
    if (LAPACKE_dtrtri(LAPACK_ROW_MAJOR, 'U', 'N', (lapack_int)l, gd, (lapack_int)l) != 0)
        return -1;
    for (size_t i = 0; i < l; i++)
        for (size_t j = 0; j < l; j++) gf[i * l + j] = j >= i ? (float)gd[i * l + j] : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)l, (int)l, 1.0f, x, (int)l,
                gf, (int)l, 0.0f, tmp, (int)l);
    memcpy(x, tmp, m * l * sizeof(float));
    return 0;
}

/* Orthonormalises the columns of x (m, l): `passes` Cholesky-QR passes
 * (two, CholQR2, restore orthogonality to float precision; the block
 * Krylov loop interleaves one pass with each Gram-Schmidt sweep instead),
 * all at matrix-matrix speed; the Householder route when the block is too
 * close to rank deficient for it (an exactly low-rank matrix, a tiny one).
 * tmp holds m * l floats. */
static br_status orthonormalise(float *x, size_t m, size_t l, int passes, float *tmp, float *tau,
                                float **work, size_t *lwork)
{
    float *gf = br_malloc(l * l * sizeof(float));
    double *gd = br_malloc(l * l * sizeof(double));
    br_status st = BR_OK;
    if (!gf || !gd) {
        st = br_error(BR_ENOMEM, "svd: Gram workspace");
    } else {
        for (int p = 0; p < passes; p++)
            if (cholqr_pass(x, m, l, gf, gd, tmp) != 0) {
                /* A failed pass left x as it was (a valid basis of the same
                 * span), so Householder on it is fine. */
                st = orthonormalise_householder(x, m, l, tau, work, lwork);
                break;
            }
    }
    br_free(gf);
    br_free(gd);
    return st;
}

/* x (n, b) -= qp (n, c) (qp^T x): one block Gram-Schmidt sweep against the
 * first c columns of the row-major basis qp (leading dimension ldq). */
static void project_out(const float *qp, size_t n, size_t c, size_t ldq, float *x, size_t b,
                        float *coef)
{
    if (c == 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)c, (int)b, (int)n, 1.0f, qp, (int)ldq,
                x, (int)b, 0.0f, coef, (int)b);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)b, (int)c, -1.0f, qp,
                (int)ldq, coef, (int)b, 1.0f, x, (int)b);
}

/* The randomized route: block Krylov (Musco & Musco 2015; block Lanczos
 * with full reorthogonalisation). The basis lives on the smaller side s
 * (p: s x f as CSR, pt its transpose): Q = orth[P Omega, (P P^T) P Omega,
 * ..., (P P^T)^q P Omega], b columns per block, each new block
 * orthogonalised against all earlier ones (block Gram-Schmidt twice, then
 * Cholesky QR). Z = P^T Q comes out of the iteration itself (Z_i = P^T Q_i
 * is the product that feeds the next block), so the Rayleigh-Ritz step
 * B = Q^T P, B B^T = Z^T Z costs no extra sparse pass of width b (q + 1).
 * For the same sparse passes as q subspace iterations, the Ritz space is
 * (q + 1) times larger, which is what buys the accuracy. */
static br_status svd_randomized(const br_csr *a, const br_csr *at, const br_svd_options *opt,
                                br_svd *out)
{
    uint32_t k = opt->k;
    int rows_small = a->rows <= a->cols;
    const br_csr *p = rows_small ? a : at;  /* rows: the small side */
    const br_csr *pt = rows_small ? at : a; /* rows: the far side */
    size_t sn = p->rows, fn = p->cols;
    size_t b = opt->block ? opt->block : 16; /* 16 floats: one cache line per gathered row */
    if (b > sn) b = sn;
    int q = opt->power_iters;
    if (q < 0) { /* automatic: a Ritz space of 3 k (at least k + oversample), depth >= 4 */
        size_t want = 3 * (size_t)k;
        if (want < (size_t)k + opt->oversample) want = (size_t)k + opt->oversample;
        q = (int)((want + b - 1) / b) - 1;
        if (q < 4) q = 4;
    }
    if (b * (size_t)(q + 1) > sn) q = (int)(sn / b) - 1;
    if (b * (size_t)(q + 1) < k) { /* a shallow depth or k close to min(rows, cols) */
        b = k;
        if (b * (size_t)(q + 1) > sn) q = (int)(sn / b) - 1;
    }
    size_t l = b * (size_t)(q + 1);
    /* Small problems (goodbooks: 300k ratings, a sparse pass in ~0.3 ms)
     * run on one thread, OpenBLAS included: on this machine's two
     * hyperthreads the wake-up and barrier of every small sgemm and sparse
     * pass cost more than the second thread gives back (7x slower under
     * load). OpenBLAS's count is process-wide; it is restored on return. */
    br_status st = svd_alloc(out, a->rows, a->cols, k);
    if (st) return st;
    int blas_threads = openblas_get_num_threads();
    int one_thread = a->nnz * b < ((uint64_t)1 << 24);
    if (one_thread) openblas_set_num_threads(1);
    out->method = BR_SVD_RANDOMIZED;
    out->power_iters = q;
    out->block = (uint32_t)b;

    float *qb = br_aligned_alloc(sn * l * sizeof(float) + 64, BR_ALIGN); /* (sn, l) */
    float *zb = br_aligned_alloc(fn * l * sizeof(float) + 64, BR_ALIGN); /* (fn, l) */
    float *y = br_aligned_alloc(sn * b * sizeof(float) + 64, BR_ALIGN);  /* (sn, b) */
    float *tmp = br_aligned_alloc(sn * b * sizeof(float) + 64, BR_ALIGN);
    float *z = br_aligned_alloc(fn * b * sizeof(float) + 64, BR_ALIGN); /* (fn, b) */
    float *coef = br_malloc(l * b * sizeof(float) + 4);
    float *tau = br_malloc(b * sizeof(float) + 4);
    float *hf = br_malloc(l * l * sizeof(float) + 4);
    double *h = br_malloc(l * l * sizeof(double) + 8);
    double *vals = br_malloc(l * sizeof(double) + 8), *s = br_malloc(l * sizeof(double) + 8);
    double *w = br_malloc(l * k * sizeof(double) + 8); /* (l, k) */
    float *work = NULL;
    size_t lwork = 0;
    if (!qb || !zb || !y || !tmp || !z || !coef || !tau || !hf || !h || !vals || !s || !w) {
        st = br_error(BR_ENOMEM, "svd: block Krylov workspace for %zu x %zu, %zu columns", sn, fn,
                      l);
        goto done;
    }
    br_progress prog;
    br_progress_begin(&prog, "svd", (uint64_t)(q + 1));

    br_rng rng;
    br_rng_seed(&rng, opt->seed);
    /* The start block is Gaussian on the small side (a Krylov space of
     * P P^T from a random start), not P Omega: the same accuracy per sparse
     * pass, and (far / small) times fewer random numbers. */
    for (size_t i = 0; i < sn * b; i++) y[i] = (float)br_rng_normal(&rng);
    for (int it = 0;; it++) {
        /* y becomes block `it` of Q: orthogonal to the earlier blocks and
         * orthonormal. The second sweep also repairs a block that was
         * (partly) inside the earlier span, an exactly low-rank matrix: its
         * first orthonormalisation then spans rounding noise. */
        size_t c = (size_t)it * b;
        for (int pass = 0; pass < 2; pass++) {
            project_out(qb, sn, c, l, y, b, coef);
            if ((st = orthonormalise(y, sn, b, 1, tmp, tau, &work, &lwork))) goto done;
        }
        for (size_t i = 0; i < sn; i++) memcpy(qb + i * l + c, y + i * b, b * sizeof(float));
        br_csr_mm(pt, y, b, z); /* Z_it = P^T Q_it */
        for (size_t i = 0; i < fn; i++) memcpy(zb + i * l + c, z + i * b, b * sizeof(float));
        if ((st = br_progress_update(&prog, (uint64_t)it + 1))) goto done;
        if (it == q) break;
        br_csr_mm(p, z, b, y);
    }
    /* H = Z^T Z (l, l) = B B^T with B = Q^T P, accumulated in double over
     * row panels (float inside a panel). */
    memset(h, 0, l * l * sizeof *h);
    for (size_t r0 = 0; r0 < fn; r0 += 2048) {
        size_t nr = fn - r0 < 2048 ? fn - r0 : 2048;
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)l, (int)nr, 1.0f, zb + r0 * l,
                    (int)l, 0.0f, hf, (int)l);
        for (size_t i = 0; i < l; i++)
            for (size_t j = i; j < l; j++) h[i * l + j] += hf[i * l + j];
    }
    if ((st = top_eigen(h, (uint32_t)l, k, vals, w))) goto done;
    eig_to_sv(vals, k, s);
    for (uint32_t j = 0; j < k; j++) {
        out->s[j] = (float)s[j];
        if (s[j] == 0)
            for (size_t i = 0; i < l; i++) w[i * k + j] = 0.0;
    }
    /* Small side = Q W; far side = Z W / s. */
    float *wf = hf; /* l * l >= l * k floats */
    for (size_t i = 0; i < l * k; i++) wf[i] = (float)w[i];
    float *near = rows_small ? out->u : out->v;
    float *far = rows_small ? out->v : out->u;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)sn, (int)k, (int)l, 1.0f, qb,
                (int)l, wf, (int)k, 0.0f, near, (int)k);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)fn, (int)k, (int)l, 1.0f, zb,
                (int)l, wf, (int)k, 0.0f, far, (int)k);
    for (uint32_t j = 0; j < k; j++) wf[j] = s[j] > 0 ? (float)(1.0 / s[j]) : 0.0f;
    for (size_t i = 0; i < fn; i++)
        for (uint32_t j = 0; j < k; j++) far[i * k + j] *= wf[j];
    st = br_progress_end(&prog);
done:
    br_aligned_free(qb);
    br_aligned_free(zb);
    br_aligned_free(y);
    br_aligned_free(tmp);
    br_aligned_free(z);
    br_free(coef);
    br_free(tau);
    br_free(hf);
    br_free(h);
    br_free(vals);
    br_free(s);
    br_free(w);
    br_free(work);
    if (one_thread) openblas_set_num_threads(blas_threads);
    if (st) br_svd_free(out);
    return st;
}

/* ----------------------------------------------------------- entry point -- */

static void zero_empty_rows(const br_csr *a, float *x, uint32_t k)
{
    for (uint32_t r = 0; r < a->rows; r++)
        if (a->indptr[r] == a->indptr[r + 1]) memset(x + (size_t)r * k, 0, k * sizeof(float));
}

br_status br_svd_compute(const br_csr *a, const br_csr *at, const br_svd_options *opt, br_svd *out)
{
    if (!a || !out) return br_error(BR_EINVAL, "br_svd_compute: NULL argument");
    memset(out, 0, sizeof *out);
    br_svd_options o = BR_SVD_OPTIONS_DEFAULT;
    if (opt) o = *opt;
    uint32_t mn = a->rows < a->cols ? a->rows : a->cols;
    if (o.k == 0 || o.k > mn)
        return br_error(BR_ERANGE, "svd: k = %u must be in 1..min(rows, cols) = %u", o.k, mn);
    if (at && (at->rows != a->cols || at->cols != a->rows || at->nnz != a->nnz))
        return br_error(BR_EINVAL, "svd: the transpose given does not match the matrix");
    br_svd_method method = o.method;
    if (method == BR_SVD_AUTO) method = mn <= 1024 ? BR_SVD_EXACT : BR_SVD_RANDOMIZED;
    br_csr own = {0};
    br_status st = BR_OK;
    if (!at) {
        if ((st = br_csr_transpose(a, &own))) return st;
        at = &own;
    }
    if (method == BR_SVD_EXACT)
        st = svd_exact(a, at, o.k, out);
    else
        st = svd_randomized(a, at, &o, out);
    if (st == BR_OK) {
        /* An empty row (a reader without ratings) or column (a book nobody
         * rated) has an exactly zero singular-vector row in exact
         * arithmetic; the factorisations leave rounding dust there. Zero it,
         * so such a book scores exactly 0 for everybody. */
        zero_empty_rows(a, out->u, o.k);
        zero_empty_rows(at, out->v, o.k);
    }
    br_csr_free(&own);
    return st;
}
