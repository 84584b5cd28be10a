/*
 * test_kmeans.c: k-means: blobs recovered, determinism for a seed, the
 * accelerated (Hamerly) and sgemm (Lloyd) paths against the plain
 * reference from the same start, k > n refused, empty clusters re-seeded.
 */
#include <math.h>
#include <string.h>

#include "content/internal.h"
#include "testutil.h"

/* n points around `nb` random centres in dim dimensions; truth (n,) */
static float *blobs(size_t n, size_t dim, uint32_t nb, double spread, double noise, uint64_t seed,
                    int32_t *truth)
{
    br_rng rng;
    br_rng_seed(&rng, seed);
    float *c = br_malloc(nb * dim * sizeof(float));
    float *x = br_malloc(n * dim * sizeof(float));
    for (size_t i = 0; i < nb * dim; i++) c[i] = (float)(spread * br_rng_normal(&rng));
    for (size_t i = 0; i < n; i++) {
        uint32_t b = (uint32_t)(i % nb);
        if (truth) truth[i] = (int32_t)b;
        for (size_t j = 0; j < dim; j++)
            x[i * dim + j] = c[b * dim + j] + (float)(noise * br_rng_normal(&rng));
    }
    br_free(c);
    return x;
}

static void test_blobs_recovered(void **state)
{
    (void)state;
    const size_t n = 600, dim = 16;
    const uint32_t nb = 6;
    int32_t truth[600];
    float *x = blobs(n, dim, nb, 5.0, 0.3, 7, truth);
    br_kmeans_options o = BR_KMEANS_OPTIONS_DEFAULT;
    o.k = nb;
    o.n_init = 4;
    br_kmeans_result r;
    assert_int_equal(br_kmeans_fit(x, n, dim, &o, &r), BR_OK);
    /* every blob maps to one cluster, and different blobs to different ones */
    int32_t map[6];
    for (uint32_t b = 0; b < nb; b++) map[b] = r.labels[b];
    for (size_t i = 0; i < n; i++) assert_int_equal(r.labels[i], map[truth[i]]);
    for (uint32_t a = 0; a < nb; a++)
        for (uint32_t b = a + 1; b < nb; b++) assert_int_not_equal(map[a], map[b]);
    /* inertia ~ n * dim * noise^2 */
    double expect = (double)n * dim * 0.09;
    assert_true(r.inertia > 0.8 * expect && r.inertia < 1.2 * expect);
    /* centroids near the blob means */
    for (uint32_t b = 0; b < nb; b++) {
        double m[16] = {0};
        size_t cnt = 0;
        for (size_t i = 0; i < n; i++)
            if (truth[i] == (int32_t)b) {
                cnt++;
                for (size_t j = 0; j < dim; j++) m[j] += x[i * dim + j];
            }
        for (size_t j = 0; j < dim; j++)
            assert_float_equal(r.centroids[map[b] * dim + j], m[j] / (double)cnt, 1e-3);
    }
    br_kmeans_result_free(&r);
    br_free(x);
}

static void test_deterministic(void **state)
{
    (void)state;
    const size_t n = 500, dim = 12;
    float *x = blobs(n, dim, 9, 1.0, 0.8, 11, NULL); /* overlapping: the seed matters */
    br_kmeans_options o = BR_KMEANS_OPTIONS_DEFAULT;
    o.k = 7;
    o.n_init = 3;
    o.seed = 99;
    br_kmeans_result a, b, c;
    assert_int_equal(br_kmeans_fit(x, n, dim, &o, &a), BR_OK);
    assert_int_equal(br_kmeans_fit(x, n, dim, &o, &b), BR_OK);
    assert_memory_equal(a.labels, b.labels, n * sizeof(int32_t));
    assert_memory_equal(a.centroids, b.centroids, o.k * dim * sizeof(float));
    assert_true(a.inertia == b.inertia);
    assert_int_equal(a.iterations, b.iterations);
    /* another seed starts elsewhere: a different restart sequence */
    o.seed = 100;
    o.n_init = 1;
    br_kmeans_result_free(&b);
    assert_int_equal(br_kmeans_fit(x, n, dim, &o, &b), BR_OK);
    o.seed = 99;
    assert_int_equal(br_kmeans_fit(x, n, dim, &o, &c), BR_OK);
    assert_true(memcmp(b.centroids, c.centroids, o.k * dim * sizeof(float)) != 0);
    /* more restarts never do worse than the first alone */
    assert_true(a.inertia <= c.inertia);
    br_kmeans_result_free(&a);
    br_kmeans_result_free(&b);
    br_kmeans_result_free(&c);
    br_free(x);
}

/* Lloyd (sgemm) and Hamerly from the same k-means++ start as the reference. */
static void test_paths_match_reference(void **state)
{
    (void)state;
    const size_t n = 800, dim = 24;
    const uint32_t k = 8;
    float *x = blobs(n, dim, 12, 1.0, 0.7, 3, NULL);
    float *xsq = br_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < dim; j++) s += (double)x[i * dim + j] * x[i * dim + j];
        xsq[i] = (float)s;
    }
    float *init = br_malloc(k * dim * sizeof(float));
    assert_int_equal(br__kmeans_plusplus(x, xsq, n, dim, k, 5, init), BR_OK);
    double tol = br__kmeans_tol(x, n, dim, 1e-6);
    float *cr = br_malloc(k * dim * sizeof(float)), *c = br_malloc(k * dim * sizeof(float));
    int32_t *lr = br_malloc(n * sizeof(int32_t)), *l = br_malloc(n * sizeof(int32_t));
    double ir, in;
    uint32_t itr, it;
    memcpy(cr, init, k * dim * sizeof(float));
    assert_int_equal(br__kmeans_run_ref(x, n, dim, k, 300, tol, cr, lr, &ir, &itr, NULL), BR_OK);
    assert_true(itr > 3); /* a real run, not one step */
    br_kmeans_algo algos[2] = {BR_KMEANS_LLOYD, BR_KMEANS_HAMERLY};
    for (int a = 0; a < 2; a++) {
        memcpy(c, init, k * dim * sizeof(float));
        assert_int_equal(br__kmeans_run(x, n, dim, k, algos[a], 300, tol, c, l, &in, &it, NULL),
                         BR_OK);
        size_t diff = 0;
        for (size_t i = 0; i < n; i++) diff += l[i] != lr[i];
        assert_true(diff <= 1); /* float vs double near-ties at most */
        assert_true(fabs(in - ir) <= 1e-4 * ir);
        assert_true(it >= itr - 1 && it <= itr + 1);
    }
    br_free(x);
    br_free(xsq);
    br_free(init);
    br_free(cr);
    br_free(c);
    br_free(lr);
    br_free(l);
}

static void test_refusals(void **state)
{
    (void)state;
    float x[6] = {0, 0, 1, 1, 2, 2};
    br_kmeans_options o = BR_KMEANS_OPTIONS_DEFAULT;
    br_kmeans_result r;
    o.k = 4;
    assert_status_detail(br_kmeans_fit(x, 3, 2, &o, &r), BR_EINVAL, "k must be <= n");
    assert_null(r.labels);
    o.k = 0;
    assert_status_detail(br_kmeans_fit(x, 3, 2, &o, &r), BR_EINVAL, "k must be at least 1");
    o.k = 2;
    o.n_init = 0;
    assert_status_detail(br_kmeans_fit(x, 3, 2, &o, &r), BR_EINVAL, "n_init");
    o.n_init = 1;
    x[3] = NAN;
    assert_status_detail(br_kmeans_fit(x, 3, 2, &o, &r), BR_EINVAL, "row 1 has a non-finite");
    x[3] = 1;
    o.k = 3; /* k == n: every point its own cluster */
    assert_int_equal(br_kmeans_fit(x, 3, 2, &o, &r), BR_OK);
    assert_true(r.inertia == 0);
    assert_true(r.labels[0] != r.labels[1] && r.labels[1] != r.labels[2] &&
                r.labels[0] != r.labels[2]);
    br_kmeans_result_free(&r);
}

/* A centre that attracts no point is re-seeded with the farthest point. */
static void test_empty_cluster_reseeded(void **state)
{
    (void)state;
    const size_t n = 40, dim = 2;
    const uint32_t k = 3;
    float x[80];
    for (size_t i = 0; i < n; i++) { /* two groups, at 0 and at 10 */
        x[2 * i] = (i < 20 ? 0.0f : 10.0f) + 0.01f * (float)(i % 5);
        x[2 * i + 1] = 0.01f * (float)(i % 7);
    }
    float init[6] = {0, 0, 10, 0, 500, 500}; /* the third attracts nothing */
    for (int path = 0; path < 3; path++) {
        float c[6];
        int32_t lab[40];
        double inertia;
        uint32_t it, rs = 0;
        memcpy(c, init, sizeof c);
        br_status st = path == 2 ? br__kmeans_run_ref(x, n, dim, k, 100, 0, c, lab, &inertia, &it,
                                                     &rs)
                                 : br__kmeans_run(x, n, dim, k,
                                                 path ? BR_KMEANS_HAMERLY : BR_KMEANS_LLOYD, 100,
                                                 0, c, lab, &inertia, &it, &rs);
        assert_int_equal(st, BR_OK);
        assert_true(rs >= 1);
        size_t count[3] = {0};
        for (size_t i = 0; i < n; i++) {
            assert_true(lab[i] >= 0 && lab[i] < 3);
            count[lab[i]]++;
        }
        for (uint32_t j = 0; j < k; j++) assert_true(count[j] > 0);
        assert_true(c[4] < 20 && c[5] < 20); /* moved into the data */
    }
    /* fewer distinct points than clusters: no crash, valid labels, zero inertia */
    float dup[12] = {1, 1, 1, 1, 1, 1, 5, 5, 5, 5, 5, 5};
    br_kmeans_options o = BR_KMEANS_OPTIONS_DEFAULT;
    o.k = 4;
    o.n_init = 2;
    br_kmeans_result r;
    assert_int_equal(br_kmeans_fit(dup, 6, 2, &o, &r), BR_OK);
    for (int i = 0; i < 6; i++) assert_true(r.labels[i] >= 0 && r.labels[i] < 4);
    assert_true(r.inertia == 0);
    br_kmeans_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blobs_recovered),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_paths_match_reference),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_empty_cluster_reseeded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
