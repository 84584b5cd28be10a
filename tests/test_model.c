/*
 * test_model.c: a model version as train writes it and br_model reads it
 * (bookrec/model.h): the derived arrays are there and consistent with the
 * rest of the version, a version of an older format gets the same arrays
 * computed at open, and a damaged array is refused, not served.
 */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bookrec/model.h"
#include "bookrec/npy.h"
#include "model/model_internal.h"
#include "testutil.h"

static char *tmp;
static char mdir[PATH_MAX];
static int have_model;

static int group_setup(void **state)
{
    (void)state;
    tmp = tu_tmpdir("model");
    char seed[PATH_MAX + 16];
    have_model = tu_have_use_lite();
    if (!have_model) return 0;
    snprintf(seed, sizeof seed, "%s/seed", tmp);
    snprintf(mdir, sizeof mdir, "%s/m", tmp);
    return tu_train_seed(seed, mdir);
}

static int group_teardown(void **state)
{
    (void)state;
    free(tmp);
    return 0;
}

/* A copy of the model directory to damage or age. */
static void copy_model(const char *to)
{
    char cmd[4 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", to, mdir, to);
    assert_int_equal(system(cmd), 0);
}

/* What train wrote reads back whole, and each derived array agrees with
 * what it is derived from. */
static void test_version_reads_whole(void **state)
{
    (void)state;
    NEED_MODEL(have_model, "model");
    br_model *m;
    assert_status_detail(br_model_open(mdir, NULL, &m), BR_OK, "");
    assert_int_equal(br_model_format(m), BR_MODEL_FORMAT_VERSION);
    assert_false(br_model_derived_at_open(m));
    assert_string_equal(br_model_id(m), "v000001");
    uint32_t n = br_model_books(m);
    assert_int_equal(n, 1000);
    assert_int_equal(br_model_template(m), BR_TEXT_DESCRIPTION);
    assert_string_equal(br_model_encoder(m), "use-lite");
    assert_true(br_model_rules(m)->rating_min == 1 && br_model_rules(m)->rating_max == 5);
    assert_int_equal(br_model_data_until(m), 0); /* the seed ratings have no timestamps */
    const br_model_online *on = br_model_online_params(m);
    br_model_online def = BR_MODEL_ONLINE_DEFAULT;
    assert_true(on->w_content == def.w_content && on->w_recent == def.w_recent);
    size_t dim;
    const float *emb = br_model_embeddings(m, &dim);
    assert_int_equal(dim, 512);
    /* neighbours: never the book itself, best first, cosines as the
     * embeddings give them */
    const float *sc;
    const int32_t *nb = br_model_neighbours(m, &sc);
    for (uint32_t b = 0; b < n; b++)
        for (size_t j = 0; j < BR_MODEL_NEIGHBOURS; j++) {
            int32_t c = nb[(size_t)b * BR_MODEL_NEIGHBOURS + j];
            assert_true(c >= 0 && c < (int32_t)n && c != (int32_t)b);
            float s = sc[(size_t)b * BR_MODEL_NEIGHBOURS + j], dot = 0;
            for (size_t d = 0; d < dim; d++)
                dot += emb[(size_t)b * dim + d] * emb[(size_t)c * dim + d];
            assert_true(fabsf(s - dot) < 1e-4f);
            if (j) assert_true(s <= sc[(size_t)b * BR_MODEL_NEIGHBOURS + j - 1] + 1e-6f);
        }
    /* popularity and its order; the rating counts add up to the ratings */
    const float *pop = br_model_popularity(m);
    const uint32_t *order = br_model_popular_order(m);
    assert_true(pop[order[0]] == 1.0f);
    for (uint32_t i = 1; i < n; i++) assert_true(pop[order[i]] <= pop[order[i - 1]]);
    const int32_t *counts = br_model_rating_counts(m);
    assert_non_null(counts);
    long total = 0;
    for (uint32_t b = 0; b < n; b++) total += counts[b];
    json_t *man = json_loads(br_model_manifest(m), 0, NULL);
    assert_int_equal(
        total, json_integer_value(json_object_get(json_object_get(man, "counts"), "ratings")));
    json_decref(man);
    /* the cold-start list: distinct books, popular first within a tribe */
    size_t n_cold;
    const uint32_t *cold = br_model_cold(m, &n_cold);
    assert_int_equal(n_cold, BR_MODEL_COLD);
    for (size_t i = 0; i < n_cold; i++)
        for (size_t k = 0; k < i; k++) assert_true(cold[i] != cold[k]);
    /* the readers and their lists */
    size_t nr, top;
    const char *const *readers = br_model_readers(m, &nr);
    const float *ls;
    const int32_t *lists = br_model_lists(m, &ls, &top);
    assert_int_equal(nr, 100);
    assert_int_equal(top, 20);
    assert_non_null(readers[nr - 1]);
    for (size_t i = 1; i < top; i++) assert_true(ls[i] <= ls[i - 1]);
    assert_true(lists[0] >= 0);
    /* the map places a book's own vector where the map has it */
    const float *map = br_model_map(m);
    float xy[2];
    br_model_map_point(m, emb + 7 * dim, xy);
    assert_true(fabsf(xy[0] - map[14]) < 1e-4f && fabsf(xy[1] - map[15]) < 1e-4f);
    br_model_close(m);
}

/* A version written before format_version 3 (no derived files): opened,
 * its arrays computed as train computes them. */
static void test_old_format_derived_at_open(void **state)
{
    (void)state;
    NEED_MODEL(have_model, "model");
    char dir[PATH_MAX + 16], cmd[4 * PATH_MAX];
    snprintf(dir, sizeof dir, "%s/old", tmp);
    copy_model(dir);
    snprintf(cmd, sizeof cmd,
             "cd '%s/current' && rm neighbours.npy neighbour_scores.npy popularity.npy "
             "popular_order.npy cold.npy rating_counts.npy tribes/pca_basis.npy && "
             "sed -i 's/\"format_version\": 3/\"format_version\": 2/' manifest.json",
             dir);
    assert_int_equal(system(cmd), 0);
    br_model *now, *old;
    assert_int_equal(br_model_open(mdir, NULL, &now), BR_OK);
    assert_status_detail(br_model_open(dir, NULL, &old), BR_OK, "");
    assert_int_equal(br_model_format(old), 2);
    assert_true(br_model_derived_at_open(old));
    uint32_t n = br_model_books(now);
    const float *s1, *s2;
    const int32_t *a = br_model_neighbours(now, &s1), *b = br_model_neighbours(old, &s2);
    assert_memory_equal(a, b, (size_t)n * BR_MODEL_NEIGHBOURS * sizeof *a);
    assert_memory_equal(br_model_popularity(now), br_model_popularity(old), n * sizeof(float));
    assert_memory_equal(br_model_popular_order(now), br_model_popular_order(old),
                        n * sizeof(uint32_t));
    size_t c1, c2;
    const uint32_t *k1 = br_model_cold(now, &c1), *k2 = br_model_cold(old, &c2);
    assert_int_equal(c1, c2);
    assert_memory_equal(k1, k2, c1 * sizeof *k1);
    assert_null(br_model_rating_counts(old));
    /* the map of an old version: its PCA fitted at open */
    assert_true(fabsf(br_model_map(now)[0] - br_model_map(old)[0]) < 1e-3f);
    br_model_close(now);
    br_model_close(old);
}

/* A damaged or foreign array is an error at open, never an index out of
 * range at a request. */
static void test_damaged_refused(void **state)
{
    (void)state;
    NEED_MODEL(have_model, "model");
    char dir[PATH_MAX + 16], path[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/bad", tmp);
    copy_model(dir);
    br_model *m;
    /* a neighbour out of range */
    snprintf(path, sizeof path, "%s/current/neighbours.npy", dir);
    br_array a;
    assert_int_equal(br_npy_read(path, BR_DTYPE_I32, &a), BR_OK);
    ((int32_t *)a.data)[5] = 1000000;
    assert_int_equal(br_npy_write(path, BR_DTYPE_I32, 2, a.rows, a.cols, a.data), BR_OK);
    assert_status_detail(br_model_open(dir, NULL, &m), BR_EFORMAT, "neighbours.npy");
    /* a row short */
    assert_int_equal(br_npy_write(path, BR_DTYPE_I32, 2, a.rows - 1, a.cols, a.data), BR_OK);
    assert_status_detail(br_model_open(dir, NULL, &m), BR_EFORMAT, "neighbours.npy");
    br_array_free(&a);
    /* a newer format than this build reads */
    copy_model(dir);
    char cmd[2 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "sed -i 's/\"format_version\": 3/\"format_version\": 99/' '%s/current/manifest.json'",
             dir);
    assert_int_equal(system(cmd), 0);
    assert_status_detail(br_model_open(dir, NULL, &m), BR_EFORMAT, "newer");
}

/* br_npy_map: the same values as br_npy_read, writes stay private. */
static void test_npy_map(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("npymap");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/a.npy", dir);
    float v[6] = {1, 2, 3, 4, 5, 6};
    assert_int_equal(br_npy_write(path, BR_DTYPE_F32, 2, 3, 2, v), BR_OK);
    br_array a, b;
    assert_int_equal(br_npy_map(path, BR_DTYPE_F32, &a), BR_OK);
    assert_non_null(a.map);
    assert_int_equal(a.rows, 3);
    assert_int_equal(a.cols, 2);
    assert_memory_equal(a.data, v, sizeof v);
    ((float *)a.data)[0] = 42; /* private: the file keeps 1 */
    assert_int_equal(br_npy_read(path, BR_DTYPE_F32, &b), BR_OK);
    assert_true(((float *)b.data)[0] == 1.0f);
    br_array_free(&a);
    br_array_free(&b);
    /* a dtype other than asked: read (and converted) as br_npy_read does */
    assert_int_equal(br_npy_map(path, BR_DTYPE_F64, &a), BR_OK);
    assert_null(a.map);
    assert_true(((double *)a.data)[5] == 6.0);
    br_array_free(&a);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_reads_whole),
        cmocka_unit_test(test_old_format_derived_at_open),
        cmocka_unit_test(test_damaged_refused),
        cmocka_unit_test(test_npy_map),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
