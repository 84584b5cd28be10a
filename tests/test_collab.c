/*
 * test_collab.c: popularity (both variants), top-N (never a read book,
 * streaming equals one-at-a-time equals a brute-force ranking, padding,
 * subsets, cancellation), and model files (round trip for every engine,
 * with and without ids; every refusal: magic, version, truncation, an
 * explicit ALS model without its biases, a header declaring books without
 * any per-book section).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static char *tmp;

static int setup(void **state)
{
    (void)state;
    tmp = tu_tmpdir("test_collab");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    br_free(tmp);
    return 0;
}

static void seed_universe(br_catalog **cat, br_ratings **r, br_csr *m)
{
    char books[4096], ratings[4096];
    snprintf(books, sizeof books, "%s/seed-universe/books.csv", BR_GOLDEN_DIR);
    snprintf(ratings, sizeof ratings, "%s/seed-universe/ratings.csv", BR_GOLDEN_DIR);
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    assert_int_equal(br_catalog_load(books, &lo, cat, NULL), BR_OK);
    assert_int_equal(br_ratings_load(ratings, *cat, &lo, r, NULL), BR_OK);
    assert_int_equal(br_csr_from_ratings(*r, m), BR_OK);
}

static void test_popularity(void **state)
{
    (void)state;
    /* 3 readers x 4 books: book 0 rated 3 times (mean 2), book 1 once (5),
     * book 2 twice (mean 4), book 3 never. */
    uint32_t r[] = {0, 1, 2, 0, 1, 2};
    uint32_t c[] = {0, 0, 0, 1, 2, 2};
    float v[] = {1, 2, 3, 5, 4, 4};
    br_csr m;
    assert_int_equal(br_csr_from_coo(3, 4, 6, r, c, v, &m), BR_OK);
    br_cf_model *pc, *pm;
    br_popularity_options o = BR_POPULARITY_OPTIONS_DEFAULT;
    assert_int_equal(br_popularity_fit(&m, &o, &pc), BR_OK);
    const float *b = br_cf_model_item_bias(pc);
    assert_true(b[0] == 3 && b[1] == 1 && b[2] == 2 && b[3] == 0);
    assert_int_equal(br_cf_model_factors(pc), 0);
    o.kind = BR_POP_MEAN;
    o.damping = 2;
    assert_int_equal(br_popularity_fit(&m, &o, &pm), BR_OK);
    b = br_cf_model_item_bias(pm);
    double mu = 19.0 / 6.0;
    assert_float_equal(b[0], (6 + 2 * mu) / 5, 1e-5);
    assert_float_equal(b[1], (5 + 2 * mu) / 3, 1e-5);
    assert_float_equal(b[2], (8 + 2 * mu) / 4, 1e-5);
    assert_float_equal(b[3], mu, 1e-5);
    /* Reader 2 read books 0 and 2: count gives 1 then 3; mean gives 3 (the
     * prior) before 1? (5 + 2mu)/3 = 3.78 > mu = 3.17: book 1 then 3. */
    uint32_t items[4];
    float scores[4];
    uint32_t seen2[] = {0, 2};
    assert_int_equal(br_cf_recommend_one(pc, NULL, 0, seen2, 2, 4, items, scores), BR_OK);
    assert_int_equal(items[0], 1);
    assert_int_equal(items[1], 3);
    assert_int_equal(items[2], BR_CF_NONE);
    assert_true(scores[0] == 1 && scores[1] == 0 && scores[2] == -INFINITY);
    o.damping = 0;
    br_cf_model_free(pm);
    assert_int_equal(br_popularity_fit(&m, &o, &pm), BR_OK);
    b = br_cf_model_item_bias(pm);
    assert_true(b[0] == 2 && b[1] == 5 && b[2] == 4 && b[3] == 0);
    o.damping = -1;
    br_cf_model *bad;
    assert_status_detail(br_popularity_fit(&m, &o, &bad), BR_ERANGE, "damping");
    br_cf_model_free(pc);
    br_cf_model_free(pm);
    br_csr_free(&m);
}

typedef struct collect {
    uint32_t n, calls;
    uint32_t *items;
    float *scores;
    int stop_after;
} collect;

static int collect_emit(const uint32_t *users, size_t count, uint32_t n, const uint32_t *items,
                        const float *scores, void *user)
{
    collect *c = user;
    for (size_t j = 0; j < count; j++) {
        memcpy(c->items + (size_t)users[j] * n, items + j * n, n * 4);
        memcpy(c->scores + (size_t)users[j] * n, scores + j * n, n * 4);
    }
    c->calls++;
    return c->stop_after && (int)c->calls >= c->stop_after;
}

/* Brute force: every unread book's score, sorted (score desc, index asc). */
static void brute_force(const br_cf_model *m, const br_csr *seen, uint32_t u, uint32_t n,
                        uint32_t *items, float *scores)
{
    uint32_t ni = br_cf_model_items(m), k = br_cf_model_factors(m);
    const float *uf = br_cf_model_user_factors(m), *itf = br_cf_model_item_factors(m);
    const float *ub = br_cf_model_user_bias(m), *ib = br_cf_model_item_bias(m);
    float *s = br_malloc(ni * 4);
    char *read = br_calloc(ni, 1);
    for (uint64_t p = seen->indptr[u]; p < seen->indptr[u + 1]; p++) read[seen->indices[p]] = 1;
    for (uint32_t i = 0; i < ni; i++) {
        double acc = br_cf_model_global_bias(m) + (ub ? ub[u] : 0) + (ib ? ib[i] : 0);
        for (uint32_t j = 0; j < k; j++)
            acc += (double)uf[(size_t)u * k + j] * itf[(size_t)i * k + j];
        s[i] = read[i] ? -INFINITY : (float)acc;
    }
    for (uint32_t p = 0; p < n; p++) {
        int64_t best = -1;
        for (uint32_t i = 0; i < ni; i++)
            if (s[i] > -INFINITY && (best < 0 || s[i] > s[best])) best = i;
        items[p] = best < 0 ? BR_CF_NONE : (uint32_t)best;
        scores[p] = best < 0 ? -INFINITY : s[best];
        if (best >= 0) s[best] = -INFINITY;
    }
    br_free(s);
    br_free(read);
}

static void test_topn_properties(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r;
    br_csr m;
    seed_universe(&cat, &r, &m);
    br_als_options ao = BR_ALS_OPTIONS_DEFAULT;
    ao.factors = 16;
    ao.iterations = 3;
    br_cf_model *models[3];
    assert_int_equal(br_als_fit(&m, NULL, &ao, &models[0]), BR_OK);
    ao.kind = BR_ALS_EXPLICIT;
    assert_int_equal(br_als_fit(&m, NULL, &ao, &models[1]), BR_OK);
    assert_int_equal(br_popularity_fit(&m, NULL, &models[2]), BR_OK);
    uint32_t n = 25;
    for (int t = 0; t < 3; t++) {
        br_cf_model *mod = models[t];
        collect c = {n, 0, br_malloc(100 * n * 4), br_malloc(100 * n * 4), 0};
        assert_int_equal(br_cf_recommend(mod, &m, NULL, 0, n, collect_emit, &c), BR_OK);
        uint32_t one_i[25], bf_i[25];
        float one_s[25], bf_s[25];
        uint32_t k = br_cf_model_factors(mod);
        const float *ub = br_cf_model_user_bias(mod);
        for (uint32_t u = 0; u < 100; u++) {
            /* Never a read book. */
            for (uint32_t p = 0; p < n; p++) {
                uint32_t it = c.items[u * n + p];
                assert_true(it != BR_CF_NONE);
                for (uint64_t q = m.indptr[u]; q < m.indptr[u + 1]; q++)
                    assert_true(m.indices[q] != it);
            }
            /* Streaming = single reader. */
            assert_int_equal(br_cf_recommend_one(mod, br_cf_model_user_factors(mod) + u * k,
                                                 ub ? ub[u] : 0, m.indices + m.indptr[u],
                                                 m.indptr[u + 1] - m.indptr[u], n, one_i, one_s),
                             BR_OK);
            /* sgemm and sgemv round differently: positions may swap only
             * between near-equal scores. */
            for (uint32_t p = 0; p < n; p++) {
                assert_float_equal(one_s[p], c.scores[u * n + p], 1e-5);
                if (one_i[p] != c.items[u * n + p])
                    assert_true(fabsf(one_s[p] - c.scores[u * n + p]) < 1e-5f ||
                                (p + 1 < n && one_i[p] == c.items[u * n + p + 1]) ||
                                (p > 0 && one_i[p] == c.items[u * n + p - 1]));
            }
            /* = brute force (scores to rounding; order where not tied). */
            brute_force(mod, &m, u, n, bf_i, bf_s);
            for (uint32_t p = 0; p < n; p++) {
                assert_float_equal(c.scores[u * n + p], bf_s[p], 1e-4);
                if (c.items[u * n + p] != bf_i[p])
                    assert_float_equal(bf_s[p], c.scores[u * n + p], 1e-5); /* a near-tie */
            }
        }
        br_free(c.items);
        br_free(c.scores);
    }
    /* A subset of readers, in any order, and a caller who stops. */
    uint32_t some[] = {99, 3, 50};
    collect c = {5, 0, br_calloc(100 * 5, 4), br_calloc(100 * 5, 4), 0};
    assert_int_equal(br_cf_recommend(models[0], &m, some, 3, 5, collect_emit, &c), BR_OK);
    assert_int_equal(c.calls, 1);
    assert_true(c.items[99 * 5] != 0 || c.items[99 * 5 + 1] != 0);
    assert_true(c.items[0] == 0 && c.items[1] == 0); /* reader 0 untouched */
    uint32_t bad[] = {100};
    assert_status_detail(br_cf_recommend(models[0], &m, bad, 1, 5, collect_emit, &c), BR_EINVAL,
                         "out of range");
    c.stop_after = 1;
    c.calls = 0;
    assert_status_detail(br_cf_recommend(models[0], &m, some, 3, 5, collect_emit, &c),
                         BR_ECANCELLED, "stopped");
    br_free(c.items);
    br_free(c.scores);
    for (int t = 0; t < 3; t++) br_cf_model_free(models[t]);
    br_csr_free(&m);
    br_ratings_free(r);
    br_catalog_free(cat);
}

static void test_topn_padding_and_blocks(void **state)
{
    (void)state;
    /* 3000 readers x 6 books, so the streaming runs in several blocks;
     * reader 1 has read 5 of the 6 books, reader 2 all of them, reader 0
     * nothing. */
    uint32_t nu = 3000, ni = 6;
    size_t cap = 3000 * 2 + 11;
    uint32_t *ri = br_malloc(cap * 4), *ci = br_malloc(cap * 4);
    size_t e = 0;
    for (uint32_t i = 0; i < 5; i++) ri[e] = 1, ci[e++] = i;
    for (uint32_t i = 0; i < 6; i++) ri[e] = 2, ci[e++] = i;
    for (uint32_t u = 3; u < nu; u++) ri[e] = u, ci[e++] = u % ni;
    br_csr m;
    assert_int_equal(br_csr_from_coo(nu, ni, e, ri, ci, NULL, &m), BR_OK);
    br_svd_options so = BR_SVD_OPTIONS_DEFAULT;
    so.k = 3;
    br_cf_model *mod;
    assert_int_equal(br_cf_svd_fit(&m, NULL, &so, &mod), BR_OK);
    collect c = {4, 0, br_malloc(nu * 4 * 4), br_malloc(nu * 4 * 4), 0};
    assert_int_equal(br_cf_recommend(mod, &m, NULL, 0, 4, collect_emit, &c), BR_OK);
    assert_int_equal(c.items[1 * 4 + 0], 5);
    assert_int_equal(c.items[1 * 4 + 1], BR_CF_NONE);
    for (int p = 0; p < 4; p++) assert_int_equal(c.items[2 * 4 + p], BR_CF_NONE);
    /* Reader 0 has no ratings: all scores 0, so books 0..3 by index. */
    for (uint32_t p = 0; p < 4; p++) {
        assert_int_equal(c.items[p], p);
        assert_true(c.scores[p] == 0.0f);
    }
    for (uint32_t u = 3; u < nu; u++)
        for (int p = 0; p < 4; p++) assert_true(c.items[u * 4 + p] != u % ni);
    /* Without a seen matrix nothing is excluded. */
    assert_int_equal(br_cf_recommend(mod, NULL, NULL, 0, 4, collect_emit, &c), BR_OK);
    assert_true(c.items[2 * 4] != BR_CF_NONE);
    br_free(c.items);
    br_free(c.scores);
    br_cf_model_free(mod);
    br_csr_free(&m);
    br_free(ri);
    br_free(ci);
}

static void same_model(const br_cf_model *a, const br_cf_model *b)
{
    assert_int_equal(br_cf_model_engine(a), br_cf_model_engine(b));
    uint32_t nu = br_cf_model_users(a), ni = br_cf_model_items(a), k = br_cf_model_factors(a);
    assert_int_equal(nu, br_cf_model_users(b));
    assert_int_equal(ni, br_cf_model_items(b));
    assert_int_equal(k, br_cf_model_factors(b));
    assert_memory_equal(br_cf_model_user_factors(a), br_cf_model_user_factors(b),
                        (size_t)nu * k * 4);
    assert_memory_equal(br_cf_model_item_factors(a), br_cf_model_item_factors(b),
                        (size_t)ni * k * 4);
    assert_true(!br_cf_model_user_bias(a) == !br_cf_model_user_bias(b));
    assert_true(!br_cf_model_item_bias(a) == !br_cf_model_item_bias(b));
    assert_true(!br_cf_model_singular_values(a) == !br_cf_model_singular_values(b));
    if (br_cf_model_user_bias(a))
        assert_memory_equal(br_cf_model_user_bias(a), br_cf_model_user_bias(b), nu * 4);
    if (br_cf_model_item_bias(a))
        assert_memory_equal(br_cf_model_item_bias(a), br_cf_model_item_bias(b), ni * 4);
    if (br_cf_model_singular_values(a))
        assert_memory_equal(br_cf_model_singular_values(a), br_cf_model_singular_values(b), k * 4);
    assert_true(br_cf_model_global_bias(a) == br_cf_model_global_bias(b));
}

static void test_persistence(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r;
    br_csr m;
    seed_universe(&cat, &r, &m);
    br_cf_model *models[4];
    br_svd_options so = BR_SVD_OPTIONS_DEFAULT;
    so.k = 20;
    assert_int_equal(br_popularity_fit(&m, NULL, &models[0]), BR_OK);
    assert_int_equal(br_cf_svd_fit(&m, NULL, &so, &models[1]), BR_OK);
    br_als_options ao = BR_ALS_OPTIONS_DEFAULT;
    ao.factors = 8;
    ao.iterations = 2;
    assert_int_equal(br_als_fit(&m, NULL, &ao, &models[2]), BR_OK);
    ao.kind = BR_ALS_EXPLICIT;
    assert_int_equal(br_als_fit(&m, NULL, &ao, &models[3]), BR_OK);
    char path[4096];
    for (int t = 0; t < 4; t++) {
        snprintf(path, sizeof path, "%s/model%d.brcf", tmp, t);
        int with_ids = t % 2;
        assert_int_equal(br_cf_model_save(models[t], path, with_ids ? br_ratings_user_ids(r) : NULL,
                                          with_ids ? br_catalog_ids(cat) : NULL),
                         BR_OK);
        br_cf_model *l;
        assert_int_equal(br_cf_model_load(path, &l), BR_OK);
        same_model(models[t], l);
        if (with_ids) {
            assert_string_equal(br_cf_model_user_id(l, 5),
                                br_idmap_name(br_ratings_user_ids(r), 5));
            assert_string_equal(br_cf_model_item_id(l, 999), br_catalog_book(cat, 999)->id);
            assert_null(br_cf_model_item_id(l, 1000));
        } else {
            assert_null(br_cf_model_user_id(l, 0));
        }
        /* A loaded model recommends like the original. */
        uint32_t k = br_cf_model_factors(l);
        uint32_t i1[10], i2[10];
        float s1[10], s2[10];
        const float *ub = br_cf_model_user_bias(l);
        assert_int_equal(br_cf_recommend_one(models[t], br_cf_model_user_factors(models[t]) + 3 * k,
                                             ub ? ub[3] : 0, NULL, 0, 10, i1, s1),
                         BR_OK);
        assert_int_equal(br_cf_recommend_one(l, br_cf_model_user_factors(l) + 3 * k, ub ? ub[3] : 0,
                                             NULL, 0, 10, i2, s2),
                         BR_OK);
        assert_memory_equal(i1, i2, sizeof i1);
        /* Fold-in works on the mapped model. */
        float x[32], bias;
        uint32_t items[] = {1, 2, 3};
        float vals[] = {5, 4, 1};
        assert_int_equal(br_cf_fold_in(l, 3, items, vals, x, &bias), BR_OK);
        assert_true(br_cf_model_memory(l) > 0);
        br_cf_model_free(l);
    }

    /* Refusals. */
    snprintf(path, sizeof path, "%s/model3.brcf", tmp);
    size_t len;
    char *bytes = tu_read_file(path, &len);
    assert_non_null(bytes);
    br_cf_model *l;
    char *p = tu_write_file(tmp, "short.brcf", "BRCFMODL");
    assert_status_detail(br_cf_model_load(p, &l), BR_EFORMAT, "too short");
    br_free(p);
    char name[4096];
    struct {
        size_t at;
        char byte;
        const char *want;
    } cases[] = {{0, 'X', "bad magic"}, {8, 2, "version 2"}, {12, 9, "bad header"}};
    for (int t = 0; t < 3; t++) {
        char saved = bytes[cases[t].at];
        bytes[cases[t].at] = cases[t].byte;
        snprintf(name, sizeof name, "%s/bad%d.brcf", tmp, t);
        FILE *f = fopen(name, "wb");
        fwrite(bytes, 1, len, f);
        fclose(f);
        assert_status_detail(br_cf_model_load(name, &l), BR_EFORMAT, cases[t].want);
        bytes[cases[t].at] = saved;
    }
    /* Truncated: the recorded size no longer matches. */
    snprintf(name, sizeof name, "%s/trunc.brcf", tmp);
    FILE *f = fopen(name, "wb");
    fwrite(bytes, 1, len - 100, f);
    fclose(f);
    assert_status_detail(br_cf_model_load(name, &l), BR_EFORMAT, "bad header");
    br_free(bytes);
    snprintf(name, sizeof name, "%s/missing.brcf", tmp);
    assert_int_equal(br_cf_model_load(name, &l), BR_ENOTFOUND);
    /* Id counts must match the model. */
    snprintf(name, sizeof name, "%s/ids.brcf", tmp);
    assert_status_detail(br_cf_model_save(models[1], name, br_catalog_ids(cat), NULL), BR_EINVAL,
                         "user ids");
    assert_int_equal(access(name, F_OK), -1);

    for (int t = 0; t < 4; t++) br_cf_model_free(models[t]);
    br_csr_free(&m);
    br_ratings_free(r);
    br_catalog_free(cat);
}

/* fuzz_cfmodel's find: an explicit ALS model whose file lacks the bias
 * sections loaded, and fold-in then read the item biases through NULL. */
static void test_explicit_without_biases(void **state)
{
    (void)state;
    char *p = tu_data_path("../../fuzz/regress/cfmodel/explicit-als-without-biases");
    br_cf_model *l = NULL;
    assert_status_detail(br_cf_model_load(p, &l), BR_EFORMAT, "without its biases");
    assert_null(l);
    br_free(p);
}

/* fuzz_cfmodel's finds: a 64-byte header declaring 4 billion books with
 * k = 0 and no item-bias section loaded, and a top-3 then asked for 17 GB
 * of scores; and factors without books. */
static void test_no_book_data(void **state)
{
    (void)state;
    char *p = tu_data_path("../../fuzz/regress/cfmodel/no-book-data");
    br_cf_model *l = NULL;
    assert_status_detail(br_cf_model_load(p, &l), BR_EFORMAT, "no per-book section");
    assert_null(l);
    br_free(p);
    /* and an ALS header with 2^29 factors of no books: the Gram matrix
     * derived at load asked for an exabyte */
    p = tu_data_path("../../fuzz/regress/cfmodel/factors-without-books");
    assert_status_detail(br_cf_model_load(p, &l), BR_EFORMAT, "factors for 0 books");
    assert_null(l);
    br_free(p);
}

static void test_goodbooks_topn(void **state)
{
    (void)state;
    /* Real data: 2,672 readers x 10,000 books. ALS top-20 never contains a
     * read book, and the SVD model's exact route is refused only above its
     * limit (the randomized route runs instead). */
    char *books = tu_shared_path("data/goodbooks/books.csv");
    char *ratings = tu_shared_path("data/goodbooks/ratings.csv");
    if (!books || !ratings) {
        br_free(books);
        br_free(ratings);
        skip();
    }
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat;
    br_ratings *r;
    assert_int_equal(br_catalog_load(books, &lo, &cat, NULL), BR_OK);
    assert_int_equal(br_ratings_load(ratings, cat, &lo, &r, NULL), BR_OK);
    br_csr m;
    assert_int_equal(br_csr_from_ratings(r, &m), BR_OK);
    br_als_options ao = BR_ALS_OPTIONS_DEFAULT;
    ao.factors = 16;
    ao.iterations = 2;
    br_cf_model *mod;
    assert_int_equal(br_als_fit(&m, NULL, &ao, &mod), BR_OK);
    uint32_t nu = m.rows, n = 20;
    collect c = {n, 0, br_malloc((size_t)nu * n * 4), br_malloc((size_t)nu * n * 4), 0};
    assert_int_equal(br_cf_recommend(mod, &m, NULL, 0, n, collect_emit, &c), BR_OK);
    for (uint32_t u = 0; u < nu; u++)
        for (uint32_t p = 0; p < n; p++) {
            uint32_t it = c.items[(size_t)u * n + p];
            for (uint64_t q = m.indptr[u]; q < m.indptr[u + 1]; q++)
                assert_true(m.indices[q] != it);
        }
    br_free(c.items);
    br_free(c.scores);
    br_cf_model_free(mod);
    br_csr_free(&m);
    br_ratings_free(r);
    br_catalog_free(cat);
    br_free(books);
    br_free(ratings);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_popularity),
        cmocka_unit_test(test_topn_properties),
        cmocka_unit_test(test_topn_padding_and_blocks),
        cmocka_unit_test(test_persistence),
        cmocka_unit_test(test_explicit_without_biases),
        cmocka_unit_test(test_no_book_data),
        cmocka_unit_test(test_goodbooks_topn),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
