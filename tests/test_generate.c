/*
 * test_generate.c: the seed-universe generator: the numpy stream replays
 * the notebook's universe byte for byte; both streams are deterministic for
 * a seed and follow the recipe's distribution; bad options are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static char *gen(const char *tag, br_generate_options o)
{
    char *dir = tu_tmpdir(tag);
    br_generate_report rep;
    br_status st = br_generate(&o, dir, &rep);
    if (st != BR_OK) fail_msg("generate: %s: %s", br_strerror(st), br_error_detail());
    assert_int_equal(rep.n_books, o.n_books);
    assert_int_equal(rep.n_users, o.n_users);
    return dir;
}

static char *read_in(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = tu_read_file(path, len);
    assert_non_null(s);
    return s;
}

static void assert_same_files(const char *a, const char *b, const char *name)
{
    size_t na, nb;
    char *x = read_in(a, name, &na), *y = read_in(b, name, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na);
    br_free(x);
    br_free(y);
}

static void test_numpy_stream_writes_the_notebook_universe(void **state)
{
    (void)state;
    br_generate_options o = BR_GENERATE_OPTIONS_DEFAULT;
    o.rng = BR_GEN_NUMPY;
    char *dir = gen("gen_numpy", o);
    assert_same_files(dir, BR_GOLDEN_DIR "/seed-universe", "books.csv");
    assert_same_files(dir, BR_GOLDEN_DIR "/seed-universe", "ratings.csv");
    br_free(dir);
}

/* Loads a generated universe and checks the recipe's distribution. */
static void check_distribution(const char *dir, br_generate_options o)
{
    char bp[4096], rp[4096];
    snprintf(bp, sizeof bp, "%s/books.csv", dir);
    snprintf(rp, sizeof rp, "%s/ratings.csv", dir);
    br_catalog *cat;
    br_ratings *r;
    br_load_report rep;
    assert_int_equal(br_catalog_load(bp, NULL, &cat, NULL), BR_OK);
    assert_int_equal(br_ratings_load(rp, cat, NULL, &r, &rep), BR_OK);
    assert_int_equal(br_catalog_count(cat), o.n_books);
    assert_int_equal(br_ratings_num_users(r), o.n_users);
    assert_int_equal(rep.duplicates, 0); /* every reader's books are distinct */

    int genre_seen[7] = {0};
    for (uint32_t i = 0; i < br_catalog_count(cat); i++) {
        const br_book *b = br_catalog_book(cat, i);
        int g = -1;
        for (int k = 0; k < 7; k++)
            if (!strcmp(b->genre, br_generate_genre(k))) g = k;
        assert_true(g >= 0);
        genre_seen[g]++;
        char vol[16];
        snprintf(vol, sizeof vol, " Vol. %u", i % 10);
        assert_non_null(strstr(b->title, vol));
        assert_true(strlen(b->description) > 40);
    }
    if (o.n_books >= 200) /* a catalogue this size has every genre */
        for (int k = 0; k < 7; k++) assert_true(genre_seen[k] > 0);

    size_t n = br_ratings_count(r);
    const uint32_t *u = br_ratings_users(r);
    const float *v = br_ratings_values(r);
    uint32_t *per_user = br_calloc(o.n_users, sizeof *per_user);
    size_t value_seen[6] = {0};
    for (size_t i = 0; i < n; i++) {
        per_user[u[i]]++;
        assert_true(v[i] >= 1 && v[i] <= 5 && v[i] == (float)(int)v[i]);
        value_seen[(int)v[i]]++;
    }
    for (int k = 1; k <= 5; k++) assert_true(value_seen[k] > 0);
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint64_t k = 0; k < o.n_users; k++) {
        assert_true(per_user[k] >= (uint32_t)o.min_per_user);
        assert_true(per_user[k] <= (uint32_t)o.max_per_user);
        if (per_user[k] < lo) lo = per_user[k];
        if (per_user[k] > hi) hi = per_user[k];
    }
    if (o.n_users >= 1000) { /* the whole range shows up */
        assert_int_equal(lo, o.min_per_user);
        assert_int_equal(hi, o.max_per_user);
        for (int k = 1; k <= 5; k++) /* uniform: each value near 20% */
            assert_true(value_seen[k] > n / 5 * 0.95 && value_seen[k] < n / 5 * 1.05);
    }
    br_free(per_user);
    br_ratings_free(r);
    br_catalog_free(cat);
}

static void test_numpy_distribution(void **state)
{
    (void)state;
    br_generate_options o = BR_GENERATE_OPTIONS_DEFAULT;
    o.rng = BR_GEN_NUMPY;
    o.seed = 7;
    char *dir = gen("gen_numpy7", o);
    check_distribution(dir, o);
    br_free(dir);
}

static void test_xoshiro_distribution_and_determinism(void **state)
{
    (void)state;
    br_generate_options o = BR_GENERATE_OPTIONS_DEFAULT;
    o.n_books = 5000;
    o.n_users = 3000;
    char *a = gen("gen_x1", o), *b = gen("gen_x2", o);
    check_distribution(a, o);
    assert_same_files(a, b, "books.csv");
    assert_same_files(a, b, "ratings.csv");
    /* Another seed, another universe. */
    o.seed = 43;
    char *c = gen("gen_x3", o);
    size_t na, nc;
    char *x = read_in(a, "ratings.csv", &na), *y = read_in(c, "ratings.csv", &nc);
    assert_true(na != nc || memcmp(x, y, na) != 0);
    br_free(x);
    br_free(y);
    br_free(a);
    br_free(b);
    br_free(c);
}

static void test_custom_sample_range_and_tiny_catalogue(void **state)
{
    (void)state;
    /* Readers rating every book: the sample is the whole catalogue. */
    br_generate_options o = {10, 20, 5, BR_GEN_XOSHIRO, 10, 10};
    char *dir = gen("gen_tiny", o);
    check_distribution(dir, o);
    br_free(dir);
    o.rng = BR_GEN_NUMPY;
    dir = gen("gen_tiny_np", o);
    check_distribution(dir, o);
    br_free(dir);
}

static void test_bad_options_are_refused(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("gen_bad");
    br_generate_options o = BR_GENERATE_OPTIONS_DEFAULT;
    o.n_books = 30;
    assert_status_detail(br_generate(&o, dir, NULL), BR_EINVAL,
                         "readers rate up to 49 distinct books but there are only 30");
    o = (br_generate_options)BR_GENERATE_OPTIONS_DEFAULT;
    o.n_users = 0;
    assert_status_detail(br_generate(&o, dir, NULL), BR_EINVAL, "at least one book");
    o = (br_generate_options)BR_GENERATE_OPTIONS_DEFAULT;
    o.min_per_user = 30;
    o.max_per_user = 20;
    assert_status_detail(br_generate(&o, dir, NULL), BR_EINVAL, "30..20 is not a range");
    o = (br_generate_options)BR_GENERATE_OPTIONS_DEFAULT;
    o.rng = BR_GEN_NUMPY;
    o.seed = 1ULL << 32;
    assert_status_detail(br_generate(&o, dir, NULL), BR_ERANGE, "numpy seeds");
    o = (br_generate_options)BR_GENERATE_OPTIONS_DEFAULT;
    assert_status_detail(br_generate(&o, "/nonexistent/dir", NULL), BR_EIO,
                         "/nonexistent/dir/books.csv: cannot create");
    br_free(dir);
}

static void test_failed_run_keeps_previous_files(void **state)
{
    (void)state;
    /* A finished universe stays intact when a later run into the same
     * folder fails: files are written aside and renamed only when whole. */
    br_generate_options o = BR_GENERATE_OPTIONS_DEFAULT;
    char *dir = gen("gen_keep", o);
    size_t before;
    char *old = read_in(dir, "ratings.csv", &before);
    br_progress_set(NULL, NULL);
    o.n_users = 0; /* refused before anything is written */
    assert_int_equal(br_generate(&o, dir, NULL), BR_EINVAL);
    size_t after;
    char *now = read_in(dir, "ratings.csv", &after);
    assert_int_equal(before, after);
    assert_memory_equal(old, now, before);
    br_free(old);
    br_free(now);
    br_free(dir);
}

static int cancel_cb(const char *stage, uint64_t done, uint64_t total, void *user)
{
    (void)done;
    (void)total;
    (void)user;
    return strcmp(stage, "generate ratings") == 0;
}

static void test_cancelled_run_leaves_no_partial_file(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("gen_cancel");
    br_generate_options o = BR_GENERATE_OPTIONS_DEFAULT;
    br_progress_set(cancel_cb, NULL);
    br_status st = br_generate(&o, dir, NULL);
    br_progress_set(NULL, NULL);
    assert_int_equal(st, BR_ECANCELLED);
    char path[4096];
    snprintf(path, sizeof path, "%s/ratings.csv", dir);
    assert_null(tu_read_file(path, NULL));
    /* no temporary files left behind either */
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s' | grep '^\\.')\"", dir);
    assert_int_equal(system(cmd), 0);
    br_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numpy_stream_writes_the_notebook_universe),
        cmocka_unit_test(test_numpy_distribution),
        cmocka_unit_test(test_xoshiro_distribution_and_determinism),
        cmocka_unit_test(test_custom_sample_range_and_tiny_catalogue),
        cmocka_unit_test(test_bad_options_are_refused),
        cmocka_unit_test(test_failed_run_keeps_previous_files),
        cmocka_unit_test(test_cancelled_run_leaves_no_partial_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
