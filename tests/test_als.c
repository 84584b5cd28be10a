/*
 * test_als.c: alternating least squares. The loss never increases (implicit
 * objective with CG and with exact solves; explicit objective with biases),
 * fold-in reproduces the full solve's row update for every reader, readers
 * and books without ratings get zero factors, seeds make runs repeatable,
 * bad options are refused.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

/* A random ratings matrix with structure (two taste groups), rows 7 and
 * 20 and columns 4 and 33 left empty. */
static void make_ratings(uint32_t rows, uint32_t cols, uint64_t seed, br_csr *out)
{
    br_rng rng;
    br_rng_seed(&rng, seed);
    size_t cap = (size_t)rows * cols;
    uint32_t *ri = br_malloc(cap * 4), *ci = br_malloc(cap * 4);
    float *v = br_malloc(cap * 4);
    size_t n = 0;
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t c = 0; c < cols; c++) {
            if (r == 7 || r == 20 || c == 4 || c == 33) continue;
            int same = (r % 2) == (c % 2);
            if (br_rng_uniform(&rng) >= (same ? 0.25 : 0.05)) continue;
            ri[n] = r;
            ci[n] = c;
            v[n] = (float)(same ? 3 + br_rng_below(&rng, 3) : 1 + br_rng_below(&rng, 3));
            n++;
        }
    assert_int_equal(br_csr_from_coo(rows, cols, n, ri, ci, v, out), BR_OK);
    br_free(ri);
    br_free(ci);
    br_free(v);
}

typedef struct losses {
    uint32_t n;
    double loss[64], rmse[64];
} losses;

static int record(uint32_t it, double loss, double rmse, double secs, void *user)
{
    losses *l = user;
    assert_int_equal(it, l->n + 1);
    assert_true(secs >= 0);
    l->loss[l->n] = loss;
    l->rmse[l->n] = rmse;
    l->n++;
    return 0;
}

static void check_monotonic(const losses *l, const char *what)
{
    for (uint32_t i = 1; i < l->n; i++)
        if (l->loss[i] > l->loss[i - 1] * (1 + 1e-6))
            fail_msg("%s: loss went up at iteration %u: %.9g -> %.9g", what, i + 1,
                     l->loss[i - 1], l->loss[i]);
    assert_true(l->loss[l->n - 1] < l->loss[0]);
}

static void test_implicit_loss_monotonic(void **state)
{
    (void)state;
    br_csr r;
    make_ratings(150, 90, 1, &r);
    uint32_t steps[] = {3, 0};
    for (int t = 0; t < 2; t++) {
        losses l = {0};
        br_als_options o = BR_ALS_OPTIONS_DEFAULT;
        o.factors = 8;
        o.iterations = 12;
        o.cg_steps = steps[t];
        o.lambda = 0.5f;
        o.on_iteration = record;
        o.user = &l;
        br_cf_model *m;
        assert_int_equal(br_als_fit(&r, NULL, &o, &m), BR_OK);
        assert_int_equal(l.n, 12);
        check_monotonic(&l, steps[t] ? "implicit CG" : "implicit exact");
        assert_int_equal(br_cf_model_engine(m), BR_CF_ALS);
        assert_null(br_cf_model_user_bias(m));
        br_cf_model_free(m);
    }
    br_csr_free(&r);
}

static void test_explicit_loss_monotonic(void **state)
{
    (void)state;
    br_csr r;
    make_ratings(150, 90, 2, &r);
    uint32_t steps[] = {3, 0};
    for (int t = 0; t < 2; t++) {
        losses l = {0};
        br_als_options o = BR_ALS_OPTIONS_DEFAULT;
        o.kind = BR_ALS_EXPLICIT;
        o.factors = 6;
        o.iterations = 10;
        o.cg_steps = steps[t];
        o.lambda = 0.05f;
        o.on_iteration = record;
        o.user = &l;
        br_cf_model *m;
        assert_int_equal(br_als_fit(&r, NULL, &o, &m), BR_OK);
        check_monotonic(&l, steps[t] ? "explicit CG" : "explicit exact");
        /* It fits: training RMSE well below the ratings' spread. */
        assert_true(l.rmse[l.n - 1] < 0.9);
        assert_true(l.rmse[l.n - 1] > 0);
        assert_non_null(br_cf_model_user_bias(m));
        assert_non_null(br_cf_model_item_bias(m));
        /* Global bias is the mean rating. */
        double s = 0;
        for (uint64_t p = 0; p < r.nnz; p++) s += r.values[p];
        assert_float_equal(br_cf_model_global_bias(m), s / (double)r.nnz, 1e-4);
        br_cf_model_free(m);
    }
    br_csr_free(&r);
}

/* Fold-in of each reader's own ratings equals the row the training's last
 * half-step computed (exact solves). */
static void check_fold_in(br_als_kind kind)
{
    br_csr r;
    make_ratings(120, 70, 3, &r);
    br_als_options o = BR_ALS_OPTIONS_DEFAULT;
    o.kind = kind;
    o.factors = 10;
    o.iterations = 4;
    o.cg_steps = 0;
    o.lambda = kind == BR_ALS_IMPLICIT ? 0.3f : 0.05f;
    o.alpha = 2.0f;
    br_cf_model *m;
    assert_int_equal(br_als_fit(&r, NULL, &o, &m), BR_OK);
    uint32_t k = br_cf_model_factors(m);
    const float *uf = br_cf_model_user_factors(m);
    const float *ub = br_cf_model_user_bias(m);
    float *x = br_malloc(k * 4);
    double worst = 0;
    for (uint32_t u = 0; u < r.rows; u++) {
        uint64_t b = r.indptr[u], e = r.indptr[u + 1];
        float bias = -1;
        assert_int_equal(br_cf_fold_in(m, e - b, r.indices + b, r.values + b, x, &bias), BR_OK);
        for (uint32_t j = 0; j < k; j++) {
            double d = fabs(x[j] - uf[(size_t)u * k + j]);
            if (d > worst) worst = d;
        }
        if (ub) assert_float_equal(bias, ub[u], 1e-5);
        else assert_true(bias == 0.0f);
        if (b == e)
            for (uint32_t j = 0; j < k; j++) assert_true(x[j] == 0.0f && uf[u * k + j] == 0.0f);
    }
    if (worst > 1e-5) fail_msg("fold-in differs from the full solve by %g", worst);
    /* Order of the ratings does not matter. */
    uint32_t items[3] = {r.indices[r.indptr[1] + 2], r.indices[r.indptr[1]],
                         r.indices[r.indptr[1] + 1]};
    float vals[3] = {r.values[r.indptr[1] + 2], r.values[r.indptr[1]], r.values[r.indptr[1] + 1]};
    float *y1 = br_malloc(k * 4), *y2 = br_malloc(k * 4);
    assert_int_equal(br_cf_fold_in(m, 3, items, vals, y1, NULL), BR_OK);
    uint32_t items2[3] = {items[1], items[2], items[0]};
    float vals2[3] = {vals[1], vals[2], vals[0]};
    assert_int_equal(br_cf_fold_in(m, 3, items2, vals2, y2, NULL), BR_OK);
    for (uint32_t j = 0; j < k; j++) assert_float_equal(y1[j], y2[j], 1e-5);
    /* Bad book index. */
    uint32_t bad = r.cols;
    assert_status_detail(br_cf_fold_in(m, 1, &bad, vals, x, NULL), BR_EINVAL, "out of range");
    br_free(y1);
    br_free(y2);
    br_free(x);
    br_cf_model_free(m);
    br_csr_free(&r);
}

static void test_fold_in_implicit(void **state)
{
    (void)state;
    check_fold_in(BR_ALS_IMPLICIT);
}

static void test_fold_in_explicit(void **state)
{
    (void)state;
    check_fold_in(BR_ALS_EXPLICIT);
}

static void test_fold_in_svd(void **state)
{
    (void)state;
    br_csr r;
    make_ratings(80, 60, 4, &r);
    br_svd_options so = BR_SVD_OPTIONS_DEFAULT;
    so.k = 12;
    br_cf_model *m;
    assert_int_equal(br_cf_svd_fit(&r, NULL, &so, &m), BR_OK);
    const float *uf = br_cf_model_user_factors(m);
    float x[12];
    for (uint32_t u = 0; u < r.rows; u++) {
        uint64_t b = r.indptr[u], e = r.indptr[u + 1];
        assert_int_equal(br_cf_fold_in(m, e - b, r.indices + b, r.values + b, x, NULL), BR_OK);
        for (int j = 0; j < 12; j++) assert_float_equal(x[j], uf[u * 12 + j], 2e-4);
    }
    br_cf_model_free(m);
    /* Popularity has nothing to fold in. */
    assert_int_equal(br_popularity_fit(&r, NULL, &m), BR_OK);
    assert_int_equal(br_cf_fold_in(m, 0, NULL, NULL, NULL, NULL), BR_OK);
    br_cf_model_free(m);
    br_csr_free(&r);
}

static void test_empty_rows_and_columns(void **state)
{
    (void)state;
    br_csr r;
    make_ratings(60, 40, 5, &r);
    for (int kind = 0; kind < 2; kind++) {
        br_als_options o = BR_ALS_OPTIONS_DEFAULT;
        o.kind = (br_als_kind)kind;
        o.factors = 5;
        o.iterations = 3;
        o.compute_loss = 0;
        br_cf_model *m;
        assert_int_equal(br_als_fit(&r, NULL, &o, &m), BR_OK);
        const float *uf = br_cf_model_user_factors(m), *itf = br_cf_model_item_factors(m);
        for (int j = 0; j < 5; j++) {
            assert_true(uf[7 * 5 + j] == 0.0f && uf[20 * 5 + j] == 0.0f);
            assert_true(itf[4 * 5 + j] == 0.0f && itf[33 % 40 * 5 + j] == 0.0f);
        }
        for (size_t i = 0; i < 60 * 5; i++) assert_true(isfinite(uf[i]));
        br_cf_model_free(m);
    }
    /* A matrix with no ratings at all. */
    br_csr z;
    assert_int_equal(br_csr_from_coo(5, 4, 0, NULL, NULL, NULL, &z), BR_OK);
    br_als_options o = BR_ALS_OPTIONS_DEFAULT;
    o.factors = 3;
    o.iterations = 2;
    br_cf_model *m;
    assert_int_equal(br_als_fit(&z, NULL, &o, &m), BR_OK);
    for (int i = 0; i < 15; i++) assert_true(br_cf_model_user_factors(m)[i] == 0.0f);
    br_cf_model_free(m);
    br_csr_free(&z);
    br_csr_free(&r);
}

static void test_seed_repeatable_and_options(void **state)
{
    (void)state;
    br_csr r;
    make_ratings(70, 50, 6, &r);
    br_als_options o = BR_ALS_OPTIONS_DEFAULT;
    o.factors = 6;
    o.iterations = 3;
    br_cf_model *a, *b, *c;
    assert_int_equal(br_als_fit(&r, NULL, &o, &a), BR_OK);
    assert_int_equal(br_als_fit(&r, NULL, &o, &b), BR_OK);
    o.seed = 43;
    assert_int_equal(br_als_fit(&r, NULL, &o, &c), BR_OK);
    assert_memory_equal(br_cf_model_user_factors(a), br_cf_model_user_factors(b), 70 * 6 * 4);
    assert_memory_not_equal(br_cf_model_user_factors(a), br_cf_model_user_factors(c), 70 * 6 * 4);
    br_cf_model_free(a);
    br_cf_model_free(b);
    br_cf_model_free(c);

    o = (br_als_options)BR_ALS_OPTIONS_DEFAULT;
    o.factors = 0;
    assert_status_detail(br_als_fit(&r, NULL, &o, &a), BR_ERANGE, "factors");
    o.factors = 4;
    o.lambda = -1;
    assert_status_detail(br_als_fit(&r, NULL, &o, &a), BR_ERANGE, "lambda");
    o.lambda = 0;
    o.cg_steps = 0;
    assert_status_detail(br_als_fit(&r, NULL, &o, &a), BR_ERANGE, "lambda > 0");
    br_csr_free(&r);
}

static int stop_at_two(uint32_t it, double loss, double rmse, double secs, void *user)
{
    (void)loss, (void)rmse, (void)secs, (void)user;
    return it == 2;
}

static void test_cancel(void **state)
{
    (void)state;
    br_csr r;
    make_ratings(40, 30, 7, &r);
    br_als_options o = BR_ALS_OPTIONS_DEFAULT;
    o.factors = 4;
    o.on_iteration = stop_at_two;
    br_cf_model *m = NULL;
    assert_status_detail(br_als_fit(&r, NULL, &o, &m), BR_ECANCELLED, "after iteration 2");
    assert_null(m);
    br_csr_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_implicit_loss_monotonic),
        cmocka_unit_test(test_explicit_loss_monotonic),
        cmocka_unit_test(test_fold_in_implicit),
        cmocka_unit_test(test_fold_in_explicit),
        cmocka_unit_test(test_fold_in_svd),
        cmocka_unit_test(test_empty_rows_and_columns),
        cmocka_unit_test(test_seed_repeatable_and_options),
        cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
