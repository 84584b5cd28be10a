/*
 * test_symeig.c: br__symeig_top (the small symmetric eigensolver of the
 * block Krylov PCA) against LAPACK's dsyevr: eigenvalues, residuals and
 * orthonormality of the vectors on random matrices of every size the PCA
 * uses and a few awkward ones (already diagonal, a repeated top eigenvalue,
 * negative definite, zero, 1 x 1), and the refusals.
 */
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "linalg/symeig.h"
#include "testutil.h"

/* a (l, l) = Q diag(ev) Q^T with Q from the QR of a random matrix, or a
 * plain random symmetric matrix when ev is NULL */
static double *make(size_t l, const double *ev, uint64_t seed)
{
    br_rng rng;
    br_rng_seed(&rng, seed);
    double *a = br_calloc(l * l, sizeof(double));
    if (!ev) {
        for (size_t i = 0; i < l; i++)
            for (size_t j = 0; j <= i; j++) a[i * l + j] = a[j * l + i] = br_rng_normal(&rng);
        return a;
    }
    double *q = br_malloc(l * l * sizeof(double)), *tau = br_malloc(l * sizeof(double));
    for (size_t i = 0; i < l * l; i++) q[i] = br_rng_normal(&rng);
    assert_int_equal(
        LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)l, (lapack_int)l, q, (lapack_int)l, tau), 0);
    assert_int_equal(LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)l, (lapack_int)l, (lapack_int)l,
                                    q, (lapack_int)l, tau),
                     0);
    for (size_t i = 0; i < l; i++)
        for (size_t j = 0; j < l; j++) {
            double s = 0;
            for (size_t t = 0; t < l; t++) s += q[i * l + t] * ev[t] * q[j * l + t];
            a[i * l + j] = s;
        }
    for (size_t i = 0; i < l; i++) /* exactly symmetric */
        for (size_t j = 0; j < i; j++) a[j * l + i] = a[i * l + j];
    br_free(q);
    br_free(tau);
    return a;
}

static void check(const double *a, size_t l, size_t k)
{
    double *w = br_malloc(k * sizeof(double)), *v = br_malloc(l * k * sizeof(double));
    double *work = br_malloc(BR_SYMEIG_WORK(l) * sizeof(double));
    assert_int_equal(br__symeig_top(a, l, k, w, v, work), 0);
    /* LAPACK: all eigenvalues, ascending */
    double *h = br_malloc(l * l * sizeof(double)), *all = br_malloc(l * sizeof(double));
    memcpy(h, a, l * l * sizeof(double));
    assert_int_equal(
        LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)l, h, (lapack_int)l, all), 0);
    double scale = fabs(all[0]) > fabs(all[l - 1]) ? fabs(all[0]) : fabs(all[l - 1]);
    if (scale == 0) scale = 1;
    for (size_t c = 0; c < k; c++) {
        double ref = all[l - k + c];
        if (fabs(w[c] - ref) > 1e-11 * scale)
            fail_msg("l %zu k %zu: eigenvalue %zu is %.17g, LAPACK %.17g", l, k, c, w[c], ref);
        const double *x = v + c * l;
        double res = 0;
        for (size_t i = 0; i < l; i++) {
            double r = -w[c] * x[i];
            for (size_t j = 0; j < l; j++) r += a[i * l + j] * x[j];
            res += r * r;
        }
        if (sqrt(res) > 1e-9 * scale)
            fail_msg("l %zu k %zu: residual of pair %zu is %g", l, k, c, sqrt(res));
        for (size_t p = 0; p <= c; p++) {
            double d = 0;
            for (size_t i = 0; i < l; i++) d += v[p * l + i] * x[i];
            assert_float_equal(d, p == c ? 1.0 : 0.0, 1e-9);
        }
    }
    br_free(w);
    br_free(v);
    br_free(work);
    br_free(h);
    br_free(all);
}

static void test_random(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 3, 5, 8, 16, 17, 32, 48, 64};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t l = sizes[s];
        double *a = make(l, NULL, 100 + l);
        for (size_t k = 1; k <= l && k <= 6; k++) check(a, l, k);
        check(a, l, l);
        br_free(a);
    }
}

static void test_awkward(void **state)
{
    (void)state;
    size_t l = 40;
    double ev[40];
    /* a distinct decaying spectrum, as a Krylov H has */
    for (size_t i = 0; i < l; i++) ev[i] = 1.0 / (double)(l - i);
    double *a = make(l, ev, 7);
    check(a, l, 2);
    check(a, l, 5);
    br_free(a);
    /* the top eigenvalue twice, and a near pair below it */
    ev[l - 1] = ev[l - 2] = 3.0;
    ev[l - 3] = 2.0;
    ev[l - 4] = 2.0 + 1e-9;
    a = make(l, ev, 8);
    check(a, l, 2);
    check(a, l, 4);
    br_free(a);
    /* negative definite */
    for (size_t i = 0; i < l; i++) ev[i] = -1.0 - (double)i;
    a = make(l, ev, 9);
    check(a, l, 3);
    br_free(a);
    /* already diagonal (the reduction has nothing to do; T splits) */
    a = br_calloc(l * l, sizeof(double));
    for (size_t i = 0; i < l; i++) a[i * l + i] = (double)((i * 7) % l);
    check(a, l, 3);
    memset(a, 0, l * l * sizeof(double)); /* zero */
    check(a, l, 2);
    br_free(a);
}

static void test_refusals(void **state)
{
    (void)state;
    double a[4] = {1, 2, 2, 1}, w[2], v[4], work[BR_SYMEIG_WORK(2)];
    assert_int_equal(br__symeig_top(a, 2, 0, w, v, work), -1);
    assert_int_equal(br__symeig_top(a, 2, 3, w, v, work), -1);
    a[1] = NAN;
    assert_int_equal(br__symeig_top(a, 2, 1, w, v, work), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_awkward),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
