/*
 * test_svd.c: truncated SVD against LAPACK's dense dgesdd on random
 * low-rank matrices (singular values and principal angles between the
 * singular subspaces), both routes and both orientations, rank deficiency,
 * empty rows and columns, argument checks; and parity with the seed
 * notebook's recipe on the seed universe (tests/golden/seed-universe:
 * top-50 singular values to 1e-4 relative, SVD top-10 of every reader).
 */
#include <jansson.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

/* Dense (rows, cols) row-major double -> CSR (exact zeros left out). */
static void dense_to_csr(const double *d, uint32_t rows, uint32_t cols, br_csr *out)
{
    size_t cap = (size_t)rows * cols;
    uint32_t *ri = br_malloc(cap * 4 + 4), *ci = br_malloc(cap * 4 + 4);
    float *v = br_malloc(cap * 4 + 4);
    size_t n = 0;
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t c = 0; c < cols; c++)
            if (d[(size_t)r * cols + c] != 0.0) {
                ri[n] = r;
                ci[n] = c;
                v[n] = (float)d[(size_t)r * cols + c];
                n++;
            }
    assert_int_equal(br_csr_from_coo(rows, cols, n, ri, ci, v, out), BR_OK);
    br_free(ri);
    br_free(ci);
    br_free(v);
}

/* a = sum_j sv[j] x_j y_j^T with random orthonormal-ish x, y: rank r. The
 * rows in `empty_rows` (every 9th) and columns (every 11th) are zero. */
static double *low_rank(br_rng *rng, uint32_t rows, uint32_t cols, uint32_t rank, int holes)
{
    double *a = br_calloc((size_t)rows * cols, sizeof *a);
    double *x = br_malloc((size_t)rows * sizeof *x), *y = br_malloc((size_t)cols * sizeof *y);
    for (uint32_t j = 0; j < rank; j++) {
        double sv = 10.0 * pow(0.8, j);
        for (uint32_t r = 0; r < rows; r++) x[r] = br_rng_normal(rng);
        for (uint32_t c = 0; c < cols; c++) y[c] = br_rng_normal(rng);
        for (uint32_t r = 0; r < rows; r++)
            for (uint32_t c = 0; c < cols; c++)
                a[(size_t)r * cols + c] += sv * x[r] * y[c] / sqrt((double)rows * cols);
    }
    if (holes) {
        for (uint32_t r = 0; r < rows; r += 9)
            for (uint32_t c = 0; c < cols; c++) a[(size_t)r * cols + c] = 0;
        for (uint32_t c = 0; c < cols; c += 11)
            for (uint32_t r = 0; r < rows; r++) a[(size_t)r * cols + c] = 0;
    }
    br_free(x);
    br_free(y);
    return a;
}

/* Smallest cosine of the principal angles between span(p) and span(q),
 * both (n, k) with orthonormal columns (p double from LAPACK, q float,
 * leading dimensions ldp, k). */
static double min_cos(const double *p, size_t ldp, const float *q, size_t n, uint32_t k)
{
    double *m = br_calloc((size_t)k * k, sizeof *m);
    for (size_t i = 0; i < n; i++)
        for (uint32_t a = 0; a < k; a++)
            for (uint32_t b = 0; b < k; b++) m[a * k + b] += p[i * ldp + a] * q[i * k + b];
    double *s = br_malloc(k * sizeof *s);
    double *u = br_malloc((size_t)k * k * sizeof *u), *vt = br_malloc((size_t)k * k * sizeof *vt);
    assert_int_equal(LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', (lapack_int)k, (lapack_int)k, m,
                                    (lapack_int)k, s, u, (lapack_int)k, vt, (lapack_int)k),
                     0);
    double c = s[k - 1];
    br_free(m);
    br_free(s);
    br_free(u);
    br_free(vt);
    return c;
}

/* Compares br_svd_compute with dgesdd on the dense matrix. */
static void check_against_lapack(uint32_t rows, uint32_t cols, uint32_t rank, uint32_t k,
                                 br_svd_method method, int holes, double tol_s, double tol_angle)
{
    br_rng rng;
    br_rng_seed(&rng, rows * 131 + cols);
    double *a = low_rank(&rng, rows, cols, rank, holes);
    br_csr m;
    dense_to_csr(a, rows, cols, &m);
    uint32_t mn = rows < cols ? rows : cols;
    double *s = br_malloc(mn * sizeof *s);
    double *u = br_malloc((size_t)rows * mn * sizeof *u);
    double *vt = br_malloc((size_t)mn * cols * sizeof *vt);
    double *acopy = br_malloc((size_t)rows * cols * sizeof *acopy);
    memcpy(acopy, a, (size_t)rows * cols * sizeof *a);
    assert_int_equal(LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)rows, (lapack_int)cols,
                                    acopy, (lapack_int)cols, s, u, (lapack_int)mn, vt,
                                    (lapack_int)cols),
                     0);
    br_svd_options opt = BR_SVD_OPTIONS_DEFAULT;
    opt.k = k;
    opt.method = method;
    br_svd svd;
    assert_int_equal(br_svd_compute(&m, NULL, &opt, &svd), BR_OK);
    assert_int_equal(svd.method, method);
    assert_int_equal(svd.k, k);
    uint32_t live = k < rank ? k : rank;
    for (uint32_t j = 0; j < live; j++)
        if (fabs(svd.s[j] - s[j]) > tol_s * s[j])
            fail_msg("%ux%u method %d: s[%u] = %.8g, LAPACK %.8g", rows, cols, (int)method, j,
                     (double)svd.s[j], s[j]);
    for (uint32_t j = live; j < k; j++) {
        /* Beyond the rank: exactly zero, with zero vectors. */
        assert_true(svd.s[j] == 0.0f);
        for (uint32_t r = 0; r < rows; r++) assert_true(svd.u[(size_t)r * k + j] == 0.0f);
    }
    /* vt^T is (cols, mn) with stride 1 along... build v (cols, mn). */
    double *v = br_malloc((size_t)cols * mn * sizeof *v);
    for (uint32_t c = 0; c < cols; c++)
        for (uint32_t j = 0; j < mn; j++) v[(size_t)c * mn + j] = vt[(size_t)j * cols + c];
    /* Subspace angles on the live part (columns 0..live-1). */
    float *uq = br_malloc((size_t)rows * live * 4), *vq = br_malloc((size_t)cols * live * 4);
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t j = 0; j < live; j++) uq[(size_t)r * live + j] = svd.u[(size_t)r * k + j];
    for (uint32_t c = 0; c < cols; c++)
        for (uint32_t j = 0; j < live; j++) vq[(size_t)c * live + j] = svd.v[(size_t)c * k + j];
    double cu = min_cos(u, mn, uq, rows, live), cv = min_cos(v, mn, vq, cols, live);
    if (1.0 - cu > tol_angle || 1.0 - cv > tol_angle)
        fail_msg("%ux%u method %d: subspace cosines %.9f, %.9f", rows, cols, (int)method, cu, cv);
    if (holes) {
        /* Empty rows have zero left vectors, empty columns zero right vectors. */
        for (uint32_t j = 0; j < k; j++) {
            assert_true(svd.u[(size_t)9 * k + j] == 0.0f);
            assert_true(svd.v[(size_t)11 * k + j] == 0.0f);
        }
    }
    br_free(uq);
    br_free(vq);
    br_free(v);
    br_svd_free(&svd);
    br_csr_free(&m);
    br_free(a);
    br_free(acopy);
    br_free(s);
    br_free(u);
    br_free(vt);
}

static void test_exact_vs_lapack(void **state)
{
    (void)state;
    check_against_lapack(120, 70, 12, 8, BR_SVD_EXACT, 0, 1e-5, 1e-6);
    check_against_lapack(60, 150, 12, 12, BR_SVD_EXACT, 1, 1e-5, 1e-6); /* cols > rows */
    check_against_lapack(80, 50, 5, 9, BR_SVD_EXACT, 1, 1e-5, 1e-6);    /* k > rank */
}

static void test_randomized_vs_lapack(void **state)
{
    (void)state;
    check_against_lapack(400, 250, 10, 10, BR_SVD_RANDOMIZED, 0, 1e-4, 1e-5);
    check_against_lapack(200, 500, 16, 12, BR_SVD_RANDOMIZED, 1, 1e-4, 1e-5);
}

static void test_randomized_on_sparse_data(void **state)
{
    (void)state;
    /* A sparse rating-like matrix (not low rank): the randomized route with
     * its default iterations finds the well-separated top singular values. */
    br_rng rng;
    br_rng_seed(&rng, 5);
    uint32_t rows = 900, cols = 300;
    size_t cap = (size_t)rows * cols / 8;
    uint32_t *ri = br_malloc(cap * 4), *ci = br_malloc(cap * 4);
    float *v = br_malloc(cap * 4);
    size_t n = 0;
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t c = 0; c < cols; c++)
            if (br_rng_uniform(&rng) < 0.04 + 0.2 * (c < 20)) { /* popular books */
                ri[n] = r;
                ci[n] = c;
                v[n] = (float)(1 + br_rng_below(&rng, 5));
                n++;
            }
    br_csr m;
    assert_int_equal(br_csr_from_coo(rows, cols, n, ri, ci, v, &m), BR_OK);
    br_svd_options opt = BR_SVD_OPTIONS_DEFAULT;
    opt.k = 10;
    opt.method = BR_SVD_EXACT;
    br_svd ex, rz;
    assert_int_equal(br_svd_compute(&m, NULL, &opt, &ex), BR_OK);
    opt.method = BR_SVD_RANDOMIZED;
    assert_int_equal(br_svd_compute(&m, NULL, &opt, &rz), BR_OK);
    assert_true(rz.power_iters >= 4);                                 /* automatic: depth >= 4, */
    assert_true(rz.block * (uint32_t)(rz.power_iters + 1) >= 3 * 10); /* a Ritz space >= 3 k */
    assert_float_equal(rz.s[0], ex.s[0], 1e-5 * ex.s[0]);
    assert_float_equal(rz.s[1], ex.s[1], 1e-3 * ex.s[1]);
    for (uint32_t j = 0; j < 10; j++) assert_true(rz.s[j] <= ex.s[j] * (1 + 1e-5));
    br_svd_free(&rz);
    /* Depth 0 with k above the block: the block widens to k, the depth the
     * caller asked for stays (a Ritz space of k columns, Ritz values below
     * the true ones). */
    opt.k = 20;
    opt.power_iters = 0;
    assert_int_equal(br_svd_compute(&m, NULL, &opt, &rz), BR_OK);
    assert_int_equal(rz.power_iters, 0);
    assert_int_equal(rz.block, 20);
    for (uint32_t j = 0; j < 10; j++) assert_true(rz.s[j] <= ex.s[j] * (1 + 1e-5));
    br_svd_free(&ex);
    br_svd_free(&rz);
    br_csr_free(&m);
    br_free(ri);
    br_free(ci);
    br_free(v);
}

static void test_arguments(void **state)
{
    (void)state;
    uint32_t r[] = {0, 1}, c[] = {0, 1};
    br_csr m, bad;
    assert_int_equal(br_csr_from_coo(3, 2, 2, r, c, NULL, &m), BR_OK);
    br_svd svd;
    br_svd_options opt = BR_SVD_OPTIONS_DEFAULT;
    opt.k = 3;
    assert_status_detail(br_svd_compute(&m, NULL, &opt, &svd), BR_ERANGE, "min(rows, cols) = 2");
    opt.k = 0;
    assert_status_detail(br_svd_compute(&m, NULL, &opt, &svd), BR_ERANGE, "k = 0");
    opt.k = 1;
    assert_int_equal(br_csr_from_coo(3, 2, 1, r, c, NULL, &bad), BR_OK);
    assert_status_detail(br_svd_compute(&m, &bad, &opt, &svd), BR_EINVAL, "does not match");
    br_csr_free(&bad);
    /* An all-zero matrix: every singular value 0, vectors 0. */
    br_csr z;
    assert_int_equal(br_csr_from_coo(4, 3, 0, NULL, NULL, NULL, &z), BR_OK);
    opt.k = 2;
    assert_int_equal(br_svd_compute(&z, NULL, &opt, &svd), BR_OK);
    assert_true(svd.s[0] == 0.0f && svd.s[1] == 0.0f);
    br_svd_free(&svd);
    br_csr_free(&z);
    br_csr_free(&m);
}

/* ------------------------------------------------------ seed parity -- */

typedef struct collect {
    uint32_t n;
    uint32_t *items; /* (users, n) */
    float *scores;
} collect;

static int collect_emit(const uint32_t *users, size_t count, uint32_t n, const uint32_t *items,
                        const float *scores, void *user)
{
    collect *c = user;
    for (size_t j = 0; j < count; j++) {
        memcpy(c->items + (size_t)users[j] * n, items + j * n, n * 4);
        memcpy(c->scores + (size_t)users[j] * n, scores + j * n, n * 4);
    }
    return 0;
}

static void test_seed_universe_parity(void **state)
{
    (void)state;
    char books[4096], ratings[4096], ref[4096];
    snprintf(books, sizeof books, "%s/seed-universe/books.csv", BR_GOLDEN_DIR);
    snprintf(ratings, sizeof ratings, "%s/seed-universe/ratings.csv", BR_GOLDEN_DIR);
    snprintf(ref, sizeof ref, "%s/seed-universe/svd_reference.json", BR_GOLDEN_DIR);
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat;
    br_ratings *r;
    assert_int_equal(br_catalog_load(books, &lo, &cat, NULL), BR_OK);
    assert_int_equal(br_ratings_load(ratings, cat, &lo, &r, NULL), BR_OK);
    br_csr m;
    assert_int_equal(br_csr_from_ratings(r, &m), BR_OK);
    json_error_t jerr;
    json_t *j = json_load_file(ref, 0, &jerr);
    assert_non_null(j);

    br_svd_options opt = BR_SVD_OPTIONS_DEFAULT; /* k = 50, auto: exact here */
    br_cf_model *model;
    assert_int_equal(br_cf_svd_fit(&m, NULL, &opt, &model), BR_OK);
    const float *sv = br_cf_model_singular_values(model);
    json_t *jsv = json_object_get(j, "singular_values_top50");
    assert_int_equal(json_array_size(jsv), 50);
    for (size_t i = 0; i < 50; i++) {
        double want = json_real_value(json_array_get(jsv, i));
        if (fabs(sv[i] - want) > 1e-4 * want)
            fail_msg("singular value %zu: %.9g, notebook %.9g", i, (double)sv[i], want);
    }

    collect c = {10, br_malloc(100 * 10 * 4), br_malloc(100 * 10 * 4)};
    assert_int_equal(br_cf_recommend(model, &m, NULL, 0, 10, collect_emit, &c), BR_OK);
    json_t *users = json_object_get(j, "users");
    assert_int_equal(json_object_size(users), 100);
    const char *uid;
    json_t *uref;
    int mismatched = 0;
    json_object_foreach(users, uid, uref)
    {
        int64_t u = br_ratings_find_user(r, uid);
        assert_true(u >= 0);
        json_t *top = json_object_get(uref, "svd_top10");
        json_t *sc = json_object_get(uref, "svd_top10_scores");
        for (size_t p = 0; p < 10; p++) {
            uint32_t item = c.items[(size_t)u * 10 + p];
            assert_true(item != BR_CF_NONE);
            long got = strtol(br_catalog_book(cat, item)->id, NULL, 10);
            long want = (long)json_integer_value(json_array_get(top, p));
            double want_s = json_real_value(json_array_get(sc, p));
            if (got != want) {
                printf("reader %s rank %zu: book %ld, notebook %ld\n", uid, p, got, want);
                mismatched++;
            }
            assert_float_equal(c.scores[(size_t)u * 10 + p], want_s, 1e-4);
        }
    }
    assert_int_equal(mismatched, 0);
    br_free(c.items);
    br_free(c.scores);
    json_decref(j);
    br_cf_model_free(model);
    br_csr_free(&m);
    br_ratings_free(r);
    br_catalog_free(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_vs_lapack),
        cmocka_unit_test(test_randomized_vs_lapack),
        cmocka_unit_test(test_randomized_on_sparse_data),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_seed_universe_parity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
