/*
 * test_pca.c: PCA against the LAPACK-free Jacobi reference on small
 * matrices, by every route: the exact one (Lanczos, else LAPACK dsyevr, on
 * the blocked syrk covariance; a decaying spectrum converges under Lanczos,
 * a flat one falls back to dsyevr) and the block Krylov one on the implicit
 * centred operator (and its fallback to the exact route when a flat
 * spectrum does not converge; its pass on one thread and two; exactly
 * low-rank data; the sampled warm start of tall inputs); explained variance, the sign convention,
 * the projection (the streaming few-component kernel and the sgemm one), and the refusals.
 */
#include <math.h>
#include <string.h>

#include "linalg/pca.h"
#include "testutil.h"

static int flat_spectrum; /* random_data: isotropic noise instead */
static size_t low_rank;   /* random_data: exactly this rank (no noise) instead */

static float *random_data(size_t n, size_t dim, uint64_t seed)
{
    br_rng rng;
    br_rng_seed(&rng, seed);
    float *x = br_malloc(n * dim * sizeof(float));
    /* anisotropic: column j scaled by 1/(j+1), plus a shared offset, and a
     * correlated pair, so components are distinct and the mean matters */
    for (size_t i = 0; flat_spectrum && i < n * dim; i++) x[i] = (float)br_rng_normal(&rng);
    if (low_rank) { /* an offset plus low_rank directions, the r-th scaled 1/(r+1) */
        double *u = br_malloc(low_rank * dim * sizeof(double));
        for (size_t k = 0; k < low_rank * dim; k++) u[k] = br_rng_normal(&rng);
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < dim; j++) x[i * dim + j] = 1.5f;
            for (size_t r = 0; r < low_rank; r++) {
                double z = br_rng_normal(&rng) / (double)(r + 1);
                for (size_t j = 0; j < dim; j++) x[i * dim + j] += (float)(z * u[r * dim + j]);
            }
        }
        br_free(u);
        return x;
    }
    for (size_t i = 0; !flat_spectrum && i < n; i++) {
        double z = br_rng_normal(&rng);
        for (size_t j = 0; j < dim; j++)
            x[i * dim + j] =
                (float)(3.0 + br_rng_normal(&rng) * 4.0 / (double)(j + 1) + (j < 2 ? 2.0 * z : 0));
    }
    return x;
}

static br_pca_route route = BR_PCA_AUTO;
static br_pca_route expect_used = BR_PCA_AUTO; /* AUTO: either */

static void compare(size_t n, size_t dim, size_t nc, uint64_t seed)
{
    float *x = random_data(n, dim, seed);
    br_pca a, b;
    br_pca_route used;
    assert_int_equal(br__pca_fit_route(x, n, dim, nc, route, &a, &used), BR_OK);
    if (expect_used != BR_PCA_AUTO && used != expect_used)
        fail_msg("%zu x %zu, %zu components: route %d, expected %d", n, dim, nc, (int)used,
                 (int)expect_used);
    assert_int_equal(br__pca_fit_ref(x, n, dim, nc, &b), BR_OK);
    assert_true(fabs(a.total_variance - b.total_variance) < 1e-4 * b.total_variance);
    double sum = 0;
    for (size_t c = 0; c < nc; c++) {
        assert_true(fabs(a.explained_variance[c] - b.explained_variance[c]) <
                    1e-4 * b.explained_variance[0]);
        assert_true(fabs(a.explained_variance_ratio[c] - b.explained_variance_ratio[c]) < 1e-5);
        if (c) assert_true(a.explained_variance[c] <= a.explained_variance[c - 1]);
        sum += a.explained_variance_ratio[c];
        /* same vectors, same signs (the convention, not luck) */
        for (size_t j = 0; j < dim; j++)
            assert_float_equal(a.components[c * dim + j], b.components[c * dim + j], 2e-4);
        /* unit length; largest entry positive */
        double nrm = 0, big = 0;
        for (size_t j = 0; j < dim; j++) {
            double v = a.components[c * dim + j];
            nrm += v * v;
            if (fabs(v) > fabs(big)) big = v;
        }
        assert_float_equal(nrm, 1.0, 1e-5);
        assert_true(big > 0);
    }
    assert_true(sum <= 1.0 + 1e-9);
    for (size_t j = 0; j < dim; j++) assert_float_equal(a.mean[j], b.mean[j], 1e-5);
    /* the projection: centred rows . components, against a plain loop */
    float *p = br_malloc(n * nc * sizeof(float));
    assert_int_equal(br_pca_transform(&a, x, n, p), BR_OK);
    double var0 = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t c = 0; c < nc; c++) {
            double s = 0;
            for (size_t j = 0; j < dim; j++)
                s += ((double)x[i * dim + j] - b.mean[j]) * b.components[c * dim + j];
            assert_float_equal(p[i * nc + c], s, 1e-3);
        }
        var0 += (double)p[i * nc] * p[i * nc];
    }
    /* the variance along component 0 is its eigenvalue */
    assert_true(fabs(var0 / (double)(n - 1) - a.explained_variance[0]) <
                1e-3 * a.explained_variance[0]);
    br_free(p);
    br_pca_free(&a);
    br_pca_free(&b);
    br_free(x);
}

static void test_against_reference(void **state)
{
    (void)state;
    compare(50, 6, 2, 1);
    compare(200, 10, 10, 2); /* every component */
    compare(5, 12, 3, 3);    /* fewer rows than columns */
    compare(3000, 20, 4, 4); /* more than one syrk block */
    compare(400, 160, 3, 5); /* wide: Lanczos stops well before d steps */
    flat_spectrum = 1;       /* near-equal eigenvalues: the dsyevr route */
    compare(300, 120, 2, 6);
    flat_spectrum = 0;
}

static void test_krylov_against_reference(void **state)
{
    (void)state;
    expect_used = BR_PCA_KRYLOV;
    compare(400, 160, 3, 5);  /* auto picks Krylov here (d >= 128) */
    compare(700, 200, 2, 8);  /* more than one row panel, a short last group */
    compare(1000, 256, 6, 9); /* more components than the picture's 2 (sgemm projection) */
    route = BR_PCA_KRYLOV;
    compare(300, 112, 2, 10); /* narrower than auto would pick */
    compare(301, 131, 2, 12); /* odd width: unaligned rows, vector tails */
    expect_used = BR_PCA_EXACT;
    compare(50, 6, 2, 1); /* too narrow for a Krylov block: the exact route */
    flat_spectrum = 1;    /* does not converge within d / 2: falls back, same answer */
    compare(300, 160, 2, 6);
    flat_spectrum = 0;
    route = BR_PCA_EXACT;
    compare(400, 160, 3, 5);
    route = BR_PCA_AUTO;
    expect_used = BR_PCA_AUTO;
}

/* The Krylov pass split over threads: each thread count matches the
 * reference, and one thread and two agree to double rounding. 1100 x 256
 * is large enough (2^18 values, three row panels) for two. */
static void test_krylov_threads(void **state)
{
    (void)state;
    int saved = br_get_num_threads();
    float *x = random_data(1100, 256, 13);
    br_pca fit[2];
    route = BR_PCA_KRYLOV;
    expect_used = BR_PCA_KRYLOV;
    for (int t = 0; t < 2; t++) {
        br_set_num_threads(t + 1);
        compare(1100, 256, 2, 13);
        assert_int_equal(br__pca_fit_route(x, 1100, 256, 2, BR_PCA_KRYLOV, &fit[t], NULL), BR_OK);
    }
    for (size_t c = 0; c < 2; c++) {
        assert_true(fabs(fit[0].explained_variance[c] - fit[1].explained_variance[c]) <
                    1e-9 * fit[0].explained_variance[c]);
        for (size_t j = 0; j < 256; j++)
            assert_float_equal(fit[0].components[c * 256 + j], fit[1].components[c * 256 + j],
                               1e-6);
    }
    br_pca_free(&fit[0]);
    br_pca_free(&fit[1]);
    br_free(x);
    br_set_num_threads(saved);
    route = BR_PCA_AUTO;
    expect_used = BR_PCA_AUTO;
}

/* Exactly low-rank data: at rank 3 the second block lies inside the basis
 * but for rounding (the sweeps + Householder path instead of Cholesky QR);
 * at rank 20 it is ill-conditioned (Cholesky QR twice on a block whose
 * columns differ in size by ~1e3). */
static void test_krylov_low_rank(void **state)
{
    (void)state;
    expect_used = BR_PCA_KRYLOV;
    low_rank = 3;
    compare(500, 160, 2, 14);
    low_rank = 20;
    compare(500, 160, 3, 15);
    low_rank = 0;
    expect_used = BR_PCA_AUTO;
}

/* A tall input (16,384 rows or more) starts from the block times a 1/32
 * row sample's scatter matrix before the first full pass. */
static void test_krylov_warm_start(void **state)
{
    (void)state;
    route = BR_PCA_KRYLOV;
    expect_used = BR_PCA_KRYLOV;
    compare(17000, 64, 2, 16);
    route = BR_PCA_AUTO;
    expect_used = BR_PCA_AUTO;
}

/* Known answer: points on a line y = 2x have one component (1, 2)/sqrt5. */
static void test_known_answer(void **state)
{
    (void)state;
    float x[20];
    for (int i = 0; i < 10; i++) {
        x[2 * i] = (float)(i - 3);
        x[2 * i + 1] = (float)(2 * (i - 3));
    }
    br_pca p;
    assert_int_equal(br_pca_fit(x, 10, 2, 2, &p), BR_OK);
    assert_float_equal(p.components[0], 1 / sqrt(5.0), 1e-6);
    assert_float_equal(p.components[1], 2 / sqrt(5.0), 1e-6);
    assert_float_equal(p.explained_variance_ratio[0], 1.0, 1e-6);
    assert_float_equal(p.explained_variance_ratio[1], 0.0, 1e-6);
    assert_float_equal(p.mean[0], 1.5, 1e-6);
    /* flipping the data flips nothing: the sign convention holds */
    for (int i = 0; i < 20; i++) x[i] = -x[i];
    br_pca q;
    assert_int_equal(br_pca_fit(x, 10, 2, 1, &q), BR_OK);
    assert_float_equal(q.components[1], 2 / sqrt(5.0), 1e-6);
    br_pca_free(&p);
    br_pca_free(&q);
}

static void test_refusals(void **state)
{
    (void)state;
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    br_pca p;
    assert_status_detail(br_pca_fit(x, 1, 8, 1, &p), BR_EINVAL, "at least 2 rows");
    assert_status_detail(br_pca_fit(x, 2, 4, 5, &p), BR_EINVAL, "5 components asked of 4");
    assert_status_detail(br_pca_fit(x, 2, 4, 0, &p), BR_EINVAL, "0 components");
    x[5] = INFINITY;
    assert_status_detail(br_pca_fit(x, 2, 4, 1, &p), BR_EINVAL, "row 1 has a non-finite");
    assert_null(p.components);
    /* the Krylov route finds the bad row too (its first pass sums it) */
    float *big = random_data(300, 160, 11);
    big[57 * 160 + 3] = NAN;
    assert_status_detail(br__pca_fit_route(big, 300, 160, 2, BR_PCA_KRYLOV, &p, NULL), BR_EINVAL,
                         "row 57 has a non-finite");
    assert_null(p.components);
    br_free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_reference), cmocka_unit_test(test_krylov_against_reference),
        cmocka_unit_test(test_krylov_threads),    cmocka_unit_test(test_krylov_low_rank),
        cmocka_unit_test(test_krylov_warm_start), cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
