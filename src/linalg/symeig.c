/*
 * symeig.c: the k largest eigenpairs of a small dense symmetric matrix
 * (linalg/symeig.h). Householder tridiagonalisation on a copy, the wanted
 * eigenvalues by Sturm-count multisection, their vectors by inverse
 * iteration on the tridiagonal (LU with partial pivoting, as LAPACK's
 * dgttrf/dgtts2 do it) and the reflectors applied back. Written with GCC
 * vector types and no BLAS/LAPACK calls: at l = 32-64 the block Krylov
 * PCA's Rayleigh-Ritz step spent 41-138 us in dsyevr, mostly set-up
 * (layout checks, workspace queries, level-2 calls on short vectors);
 * this takes about half that (`bench_content --symeig L`).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/isa.h"
#include "linalg/symeig.h"

typedef double v8d __attribute__((vector_size(64)));
typedef double v8du __attribute__((vector_size(64), aligned(8))); /* unaligned loads */
typedef int64_t v8l __attribute__((vector_size(64)));

static inline double dot(const double *x, const double *y, size_t m)
{
    v8d a0 = {0}, a1 = {0};
    size_t j = 0;
    for (; j + 16 <= m; j += 16) {
        a0 += *(const v8du *)(x + j) * *(const v8du *)(y + j);
        a1 += *(const v8du *)(x + j + 8) * *(const v8du *)(y + j + 8);
    }
    for (; j + 8 <= m; j += 8) a0 += *(const v8du *)(x + j) * *(const v8du *)(y + j);
    a0 += a1;
    double s = 0;
    for (int t = 0; t < 8; t++) s += a0[t];
    for (; j < m; j++) s += x[j] * y[j];
    return s;
}

/* y (m,) += a x + b z */
static inline void axpy2(double *y, double a, const double *x, double b, const double *z, size_t m)
{
    size_t j = 0;
    for (; j + 8 <= m; j += 8)
        *(v8du *)(y + j) += a * *(const v8du *)(x + j) + b * *(const v8du *)(z + j);
    for (; j < m; j++) y[j] += a * x[j] + b * z[j];
}

/* A (l, l), both triangles, overwritten: T = Q^T A Q tridiagonal with
 * diagonal dg (l,) and off-diagonal e (l - 1,); Q = P_0 ... P_{l-3},
 * P_k = I - beta_k v_k v_k^T acting on entries k+1.., v_k stored in row k
 * of A right of the diagonal (its first entry 1). p: l doubles. */
static inline BR_ISA_BODY void tridiagonalise_body(double *A, size_t l, double *dg, double *e,
                                                   double *beta, double *p)
{
    for (size_t k = 0; k + 2 < l; k++) {
        size_t m = l - k - 1;
        double *x = A + k * l + k + 1; /* row k right of the diagonal = column k below */
        dg[k] = A[k * l + k];
        double x0 = x[0], sigma = dot(x + 1, x + 1, m - 1);
        if (sigma == 0) { /* already reduced in this column */
            e[k] = x0;
            beta[k] = 0;
            continue;
        }
        /* P x = mu e_1 (Golub & Van Loan, Algorithm 5.1.1) */
        double mu = sqrt(x0 * x0 + sigma);
        double v0 = x0 <= 0 ? x0 - mu : -sigma / (x0 + mu);
        double bt = 2 * v0 * v0 / (sigma + v0 * v0);
        for (size_t i = 1; i < m; i++) x[i] /= v0;
        x[0] = 1;
        e[k] = mu;
        beta[k] = bt;
        /* A22 <- P A22 P = A22 - v w^T - w v^T, with p = bt A22 v and
         * w = p - (bt / 2)(p^T v) v */
        double *a22 = A + (k + 1) * l + k + 1;
        for (size_t i = 0; i < m; i++) p[i] = bt * dot(a22 + i * l, x, m);
        double kk = 0.5 * bt * dot(p, x, m);
        for (size_t i = 0; i < m; i++) p[i] -= kk * x[i];
        for (size_t i = 0; i < m; i++) axpy2(a22 + i * l, -x[i], p, -p[i], x, m);
    }
    if (l >= 2) {
        dg[l - 2] = A[(l - 2) * l + l - 2];
        e[l - 2] = A[(l - 2) * l + l - 1];
    }
    dg[l - 1] = A[(l - 1) * l + l - 1];
}
BR_ISA_VARIANTS(tridiagonalise,
                (double *A, size_t l, double *dg, double *e, double *beta, double *p),
                (A, l, dg, e, beta, p))

/* Number of eigenvalues of T below each of eight shifts s (8,), into cnt
 * (8,), by the signs of the pivots of T - s I = L D L^T (a zero pivot
 * replaced by -pivmin, as LAPACK's dlaebz does). The eight recurrences run
 * side by side: each is a chain of divisions, latency-bound alone. */
static inline BR_ISA_BODY void sturm8_body(const double *dg, const double *e2, size_t l,
                                           const double *s8, double pivmin, int64_t *cnt8)
{
    const v8l sign = (v8l){0} + INT64_MIN; /* the sign bits */
    const v8d neg_piv = (v8d){0} - pivmin;
    v8d s = *(const v8du *)s8;
    v8l cnt = {0};
    v8d q = dg[0] - s;
    for (size_t i = 0;; i++) {
        v8l small = (v8l)((v8d)((v8l)q & ~sign) < pivmin);
        q = (v8d)((small & (v8l)neg_piv) | (~small & (v8l)q));
        cnt -= (v8l)(q < 0);
        if (i + 1 == l) break;
        q = dg[i + 1] - s - e2[i] / q;
    }
    memcpy(cnt8, &cnt, sizeof cnt);
}
BR_ISA_VARIANTS(sturm8,
                (const double *dg, const double *e2, size_t l, const double *s8, double pivmin,
                 int64_t *cnt8),
                (dg, e2, l, s8, pivmin, cnt8))

/* The eigenvalue of T with ascending index idx, to about tol, by rounds of
 * eight shifts spread over the bracket [lo, hi]. */
static double multisect(const double *dg, const double *e2, size_t l, size_t idx, double lo,
                        double hi, double tol, double pivmin)
{
    for (int round = 0; round < 64 && hi - lo > tol; round++) {
        double s[8];
        int64_t c[8];
        for (int t = 0; t < 8; t++) s[t] = lo + (hi - lo) * (double)(t + 1) / 9.0;
        BR_ISA_CALL(sturm8, (dg, e2, l, s, pivmin, c));
        double nlo = lo, nhi = hi;
        for (int t = 0; t < 8; t++) {
            if ((size_t)c[t] <= idx)
                nlo = s[t]; /* at most idx below s: eigenvalue >= s */
            else if (s[t] < nhi)
                nhi = s[t];
        }
        lo = nlo;
        hi = nhi;
    }
    return 0.5 * (lo + hi);
}

/* y (l,) <- (T - lambda I)^-1 y by LU with partial pivoting; scratch f:
 * 5 l doubles. A zero pivot becomes tiny (inverse iteration wants the
 * nearly singular solve, not an error). */
static void tri_solve(const double *dg, const double *e, size_t l, double lambda, double tiny,
                      double *y, double *f)
{
    double *dd = f, *dl = f + l, *du = f + 2 * l, *du2 = f + 3 * l, *pv = f + 4 * l;
    for (size_t i = 0; i < l; i++) {
        dd[i] = dg[i] - lambda;
        du2[i] = 0;
        pv[i] = 0;
    }
    for (size_t i = 0; i + 1 < l; i++) dl[i] = du[i] = e[i];
    for (size_t i = 0; i + 1 < l; i++) {
        if (fabs(dd[i]) >= fabs(dl[i])) {
            if (dd[i] == 0) dd[i] = tiny;
            double fct = dl[i] / dd[i];
            dl[i] = fct;
            dd[i + 1] -= fct * du[i];
        } else {
            double fct = dd[i] / dl[i];
            dd[i] = dl[i];
            dl[i] = fct;
            double t = du[i];
            du[i] = dd[i + 1];
            dd[i + 1] = t - fct * dd[i + 1];
            if (i + 2 < l) {
                du2[i] = du[i + 1];
                du[i + 1] = -fct * du[i + 1];
            }
            pv[i] = 1;
        }
    }
    if (dd[l - 1] == 0) dd[l - 1] = tiny;
    for (size_t i = 0; i + 1 < l; i++) {
        if (pv[i] == 0) {
            y[i + 1] -= dl[i] * y[i];
        } else {
            double t = y[i];
            y[i] = y[i + 1];
            y[i + 1] = t - dl[i] * y[i];
        }
    }
    y[l - 1] /= dd[l - 1];
    if (l >= 2) y[l - 2] = (y[l - 2] - du[l - 2] * y[l - 1]) / dd[l - 2];
    for (size_t i = l >= 2 ? l - 2 : 0; i-- > 0;)
        y[i] = (y[i] - du[i] * y[i + 1] - du2[i] * y[i + 2]) / dd[i];
}

int br__symeig_top(const double *a, size_t l, size_t k, double *w, double *v, double *work)
{
    if (k == 0 || k > l) return -1;
    for (size_t i = 0; i < l * l; i++)
        if (!isfinite(a[i])) return -1;
    double *A = work, *dg = A + l * l, *e = dg + l, *e2 = e + l, *beta = e2 + l;
    double *f = beta + l; /* 5 l: tridiagonalise's p, then tri_solve's scratch */
    memcpy(A, a, l * l * sizeof(double));
    BR_ISA_CALL(tridiagonalise, (A, l, dg, e, beta, f));
    /* Gershgorin bounds of T, the scale for tolerances */
    double lo = INFINITY, hi = -INFINITY, emax2 = 0;
    for (size_t i = 0; i < l; i++) {
        double r = (i > 0 ? fabs(e[i - 1]) : 0) + (i + 1 < l ? fabs(e[i]) : 0);
        if (dg[i] - r < lo) lo = dg[i] - r;
        if (dg[i] + r > hi) hi = dg[i] + r;
    }
    for (size_t i = 0; i + 1 < l; i++) {
        e2[i] = e[i] * e[i];
        if (e2[i] > emax2) emax2 = e2[i];
    }
    double tnorm = fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi);
    double pivmin = 0x1p-1022 * (emax2 > 1 ? emax2 : 1);
    double tiny = 0x1p-52 * (tnorm > 0 ? tnorm : 1);
    lo -= 2 * tiny;
    hi += 2 * tiny;
    for (size_t c = 0; c < k; c++) {
        size_t idx = l - k + c; /* w ascending: the k-th largest first */
        double lambda = multisect(dg, e2, l, idx, lo, hi, 1e-10 * tnorm + pivmin, pivmin);
        double *x = v + c * l;
        /* a fixed start with no symmetry (a hash of the index), then three
         * inverse iterations, each orthogonalised against the vectors
         * found so far: they converge together for eigenvalues closer than
         * the bisection tolerance, and stay apart that way */
        for (size_t i = 0; i < l; i++) {
            uint64_t u = (i + 1 + 977 * c) * 0x9e3779b97f4a7c15u;
            u = (u ^ (u >> 31)) * 0xbf58476d1ce4e5b9u;
            u ^= u >> 29;
            x[i] = (double)(u >> 11) * 0x1.0p-53 - 0.5;
        }
        for (int it = 0; it < 3; it++) {
            tri_solve(dg, e, l, lambda, tiny, x, f);
            for (size_t p = 0; p < c; p++) {
                const double *xp = v + p * l; /* still in T's basis */
                double h = dot(xp, x, l);
                for (size_t i = 0; i < l; i++) x[i] -= h * xp[i];
            }
            double nrm = sqrt(dot(x, x, l));
            if (!(nrm > 0) || !isfinite(nrm)) return -1;
            for (size_t i = 0; i < l; i++) x[i] /= nrm;
        }
        /* the Rayleigh quotient x^T T x: the eigenvalue to O(residual^2) */
        double rq = 0;
        for (size_t i = 0; i < l; i++) {
            double tx = dg[i] * x[i];
            if (i > 0) tx += e[i - 1] * x[i - 1];
            if (i + 1 < l) tx += e[i] * x[i + 1];
            rq += x[i] * tx;
        }
        w[c] = rq;
    }
    /* back to A's basis: x <- P_0 (P_1 (... P_{l-3} x)) */
    for (size_t c = 0; c < k; c++) {
        double *x = v + c * l;
        for (size_t kk = l >= 3 ? l - 2 : 0; kk-- > 0;) {
            if (beta[kk] == 0) continue;
            const double *hv = A + kk * l + kk + 1;
            double *xs = x + kk + 1;
            double s = beta[kk] * dot(hv, xs, l - kk - 1);
            for (size_t i = 0; i < l - kk - 1; i++) xs[i] -= s * hv[i];
        }
    }
    /* multisection can order two eigenvalues of one cluster either way
     * after the Rayleigh quotients: keep w ascending */
    for (size_t c = 1; c < k; c++)
        for (size_t p = c; p > 0 && w[p - 1] > w[p]; p--) {
            double t = w[p];
            w[p] = w[p - 1];
            w[p - 1] = t;
            for (size_t i = 0; i < l; i++) {
                double u = v[p * l + i];
                v[p * l + i] = v[(p - 1) * l + i];
                v[(p - 1) * l + i] = u;
            }
        }
    return 0;
}
