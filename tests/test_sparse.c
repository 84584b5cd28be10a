/*
 * test_sparse.c: CSR construction (order, duplicates, bounds, empty rows
 * and columns), transposition, the sparse x dense product against its
 * reference. (The top-k kernel is tested in test_coreutil.c.)
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

/* A random sparse matrix as coordinates, with whole rows and columns left
 * empty (every 7th row, every 5th column). */
static size_t random_coo(br_rng *rng, uint32_t rows, uint32_t cols, double density, uint32_t *ri,
                         uint32_t *ci, float *v)
{
    size_t n = 0;
    /* Visit cells in a scrambled order so the input is not sorted. */
    for (uint32_t c = cols; c-- > 0;)
        for (uint32_t r = 0; r < rows; r++) {
            if (r % 7 == 3 || c % 5 == 2) continue;
            if (br_rng_uniform(rng) >= density) continue;
            ri[n] = r;
            ci[n] = c;
            v[n] = (float)(1 + br_rng_below(rng, 5));
            n++;
        }
    /* Shuffle. */
    for (size_t i = n; i > 1; i--) {
        size_t j = br_rng_below(rng, i);
        uint32_t t = ri[i - 1];
        ri[i - 1] = ri[j];
        ri[j] = t;
        t = ci[i - 1];
        ci[i - 1] = ci[j];
        ci[j] = t;
        float f = v[i - 1];
        v[i - 1] = v[j];
        v[j] = f;
    }
    return n;
}

static void test_from_coo_small(void **state)
{
    (void)state;
    /* 3 x 4:  [0 2 0 1; 0 0 0 0; 5 0 3 0], given out of order. */
    uint32_t r[] = {2, 0, 2, 0};
    uint32_t c[] = {2, 3, 0, 1};
    float v[] = {3, 1, 5, 2};
    br_csr m;
    assert_int_equal(br_csr_from_coo(3, 4, 4, r, c, v, &m), BR_OK);
    assert_int_equal(m.rows, 3);
    assert_int_equal(m.cols, 4);
    assert_int_equal(m.nnz, 4);
    uint64_t ip[] = {0, 2, 2, 4};
    uint32_t ix[] = {1, 3, 0, 2};
    float vx[] = {2, 1, 5, 3};
    for (int i = 0; i < 4; i++) assert_int_equal(m.indptr[i], ip[i]);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(m.indices[i], ix[i]);
        assert_true(m.values[i] == vx[i]);
    }
    assert_int_equal(br_csr_memory(&m), 4 * 8 + 4 * 8);

    br_csr t;
    assert_int_equal(br_csr_transpose(&m, &t), BR_OK);
    assert_int_equal(t.rows, 4);
    assert_int_equal(t.cols, 3);
    uint64_t tp[] = {0, 1, 2, 3, 4};
    uint32_t tx[] = {2, 0, 2, 0};
    float tv[] = {5, 2, 3, 1};
    for (int i = 0; i < 5; i++) assert_int_equal(t.indptr[i], tp[i]);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(t.indices[i], tx[i]);
        assert_true(t.values[i] == tv[i]);
    }
    br_csr_free(&t);
    br_csr_free(&m);
    assert_null(m.indptr);
    br_csr_free(&m); /* freeing twice is harmless */

    /* values NULL: every entry 1. */
    assert_int_equal(br_csr_from_coo(3, 4, 4, r, c, NULL, &m), BR_OK);
    for (int i = 0; i < 4; i++) assert_true(m.values[i] == 1.0f);
    br_csr_free(&m);
}

static void test_from_coo_errors(void **state)
{
    (void)state;
    br_csr m;
    uint32_t r[] = {0, 1, 0};
    uint32_t c[] = {1, 1, 1};
    assert_status_detail(br_csr_from_coo(2, 2, 3, r, c, NULL, &m), BR_EINVAL, "repeated column");
    uint32_t c2[] = {1, 2, 0};
    assert_status_detail(br_csr_from_coo(2, 2, 3, r, c2, NULL, &m), BR_EINVAL, "outside 2 x 2");
    uint32_t r3[] = {2};
    assert_status_detail(br_csr_from_coo(2, 2, 1, r3, c, NULL, &m), BR_EINVAL, "outside");
    /* An empty matrix is fine, and so is a 0 x 0 one. */
    assert_int_equal(br_csr_from_coo(5, 3, 0, NULL, NULL, NULL, &m), BR_OK);
    assert_int_equal(m.nnz, 0);
    for (int i = 0; i <= 5; i++) assert_int_equal(m.indptr[i], 0);
    br_csr_free(&m);
    assert_int_equal(br_csr_from_coo(0, 0, 0, NULL, NULL, NULL, &m), BR_OK);
    br_csr_free(&m);
}

static void test_long_rows_sorted(void **state)
{
    (void)state;
    /* One row of 1000 entries in descending order: takes the qsort path. */
    uint32_t n = 1000;
    uint32_t *r = br_calloc(n, sizeof *r), *c = br_malloc(n * sizeof *c);
    float *v = br_malloc(n * sizeof *v);
    for (uint32_t i = 0; i < n; i++) {
        c[i] = 2 * (n - 1 - i);
        v[i] = (float)c[i] + 0.5f;
    }
    br_csr m;
    assert_int_equal(br_csr_from_coo(1, 2 * n, n, r, c, v, &m), BR_OK);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(m.indices[i], 2 * i);
        assert_true(m.values[i] == (float)(2 * i) + 0.5f);
    }
    br_csr_free(&m);
    c[500] = c[501];
    assert_status_detail(br_csr_from_coo(1, 2 * n, n, r, c, v, &m), BR_EINVAL, "row 0");
    br_free(r);
    br_free(c);
    br_free(v);
}

static void test_mm_against_reference(void **state)
{
    (void)state;
    br_rng rng;
    br_rng_seed(&rng, 7);
    uint32_t rows = 301, cols = 203;
    size_t cap = (size_t)rows * cols;
    uint32_t *ri = br_malloc(cap * 4), *ci = br_malloc(cap * 4);
    float *v = br_malloc(cap * 4);
    size_t nnz = random_coo(&rng, rows, cols, 0.08, ri, ci, v);
    br_csr a, at;
    assert_int_equal(br_csr_from_coo(rows, cols, nnz, ri, ci, v, &a), BR_OK);
    assert_int_equal(br_csr_transpose(&a, &at), BR_OK);
    /* Transposing twice gives the matrix back exactly. */
    br_csr att;
    assert_int_equal(br_csr_transpose(&at, &att), BR_OK);
    assert_memory_equal(att.indptr, a.indptr, (rows + 1) * 8);
    assert_memory_equal(att.indices, a.indices, nnz * 4);
    assert_memory_equal(att.values, a.values, nnz * 4);
    br_csr_free(&att);
    /* Empty rows and columns came out empty. */
    assert_int_equal(a.indptr[4], a.indptr[3]);
    assert_int_equal(at.indptr[3], at.indptr[2]);

    size_t ks[] = {1, 7, 64};
    for (int t = 0; t < 3; t++) {
        size_t k = ks[t];
        float *x = br_malloc(cols * k * 4), *xt = br_malloc(rows * k * 4);
        float *y = br_malloc(rows * k * 4), *yr = br_malloc(rows * k * 4);
        float *z = br_malloc(cols * k * 4), *zr = br_malloc(cols * k * 4);
        for (size_t i = 0; i < cols * k; i++) x[i] = (float)br_rng_normal(&rng);
        for (size_t i = 0; i < rows * k; i++) xt[i] = (float)br_rng_normal(&rng);
        for (size_t i = 0; i < rows * k; i++) y[i] = NAN; /* must be overwritten */
        br_csr_mm(&a, x, k, y);
        br_csr_mm_ref(&a, x, k, yr);
        for (size_t i = 0; i < rows * k; i++) assert_float_equal(y[i], yr[i], 1e-4);
        for (size_t j = 0; j < k; j++) assert_true(y[3 * k + j] == 0.0f); /* empty row */
        br_csr_mm(&at, xt, k, z);
        br_csr_mm_ref(&at, xt, k, zr);
        for (size_t i = 0; i < cols * k; i++) assert_float_equal(z[i], zr[i], 1e-4);
        /* The oracle itself against a dense product, on one column. */
        for (uint32_t r = 0; r < rows; r++) {
            double acc = 0;
            for (size_t e = 0; e < nnz; e++)
                if (ri[e] == r) acc += (double)v[e] * x[(size_t)ci[e] * k];
            assert_float_equal(yr[(size_t)r * k], acc, 1e-4);
        }
        br_free(x);
        br_free(xt);
        br_free(y);
        br_free(yr);
        br_free(z);
        br_free(zr);
    }
    br_csr_free(&a);
    br_csr_free(&at);
    br_free(ri);
    br_free(ci);
    br_free(v);
}

static void test_from_ratings(void **state)
{
    (void)state;
    char books[4096], ratings[4096];
    snprintf(books, sizeof books, "%s/seed-universe/books.csv", BR_GOLDEN_DIR);
    snprintf(ratings, sizeof ratings, "%s/seed-universe/ratings.csv", BR_GOLDEN_DIR);
    br_load_options opt = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat;
    br_ratings *r;
    assert_int_equal(br_catalog_load(books, &opt, &cat, NULL), BR_OK);
    assert_int_equal(br_ratings_load(ratings, cat, &opt, &r, NULL), BR_OK);
    br_csr m;
    assert_int_equal(br_csr_from_ratings(r, &m), BR_OK);
    assert_int_equal(m.rows, 100);
    assert_int_equal(m.cols, 1000);
    assert_int_equal(m.nnz, 3579);
    /* Every rating is where it belongs. */
    const uint32_t *u = br_ratings_users(r), *b = br_ratings_books(r);
    const float *v = br_ratings_values(r);
    for (size_t e = 0; e < br_ratings_count(r); e++) {
        int found = 0;
        for (uint64_t p = m.indptr[u[e]]; p < m.indptr[u[e] + 1]; p++)
            if (m.indices[p] == b[e]) {
                assert_true(m.values[p] == v[e]);
                found = 1;
            }
        assert_true(found);
    }
    br_csr_free(&m);
    br_ratings_free(r);
    br_catalog_free(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_coo_small),   cmocka_unit_test(test_from_coo_errors),
        cmocka_unit_test(test_long_rows_sorted), cmocka_unit_test(test_mm_against_reference),
        cmocka_unit_test(test_from_ratings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
