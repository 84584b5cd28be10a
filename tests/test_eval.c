/*
 * test_eval.c: the evaluation protocol: list metrics against hand-worked
 * values, the split's guarantees, and the driver with oracle engines whose
 * scores are known in advance.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

static void test_list_metrics_by_hand(void **state)
{
    (void)state;
    const uint32_t rel[3] = {2, 5, 9}; /* sorted */
    /* hits at ranks 1 and 3 of 4 */
    const uint32_t items[4] = {5, 7, 9, 1};
    br_list_metrics m;
    br_eval_list(items, 4, rel, 3, &m);
    assert_int_equal(m.hits, 2);
    assert_true(fabs(m.precision - 0.5) < 1e-12);
    assert_true(fabs(m.recall - 2.0 / 3.0) < 1e-12);
    double dcg = 1.0 + 1.0 / log2(4.0);
    double idcg = 1.0 + 1.0 / log2(3.0) + 1.0 / log2(4.0);
    assert_true(fabs(m.ndcg - dcg / idcg) < 1e-12);
    assert_true(fabs(m.ap - (1.0 + 2.0 / 3.0) / 3.0) < 1e-12);
    /* perfect list; padding and repeats never count */
    const uint32_t best[4] = {9, 2, 5, BR_EVAL_NONE};
    br_eval_list(best, 4, rel, 3, &m);
    assert_true(fabs(m.ndcg - 1.0) < 1e-12 && fabs(m.ap - 1.0) < 1e-12);
    const uint32_t rep[3] = {2, 2, 2};
    br_eval_list(rep, 3, rel, 3, &m);
    assert_int_equal(m.hits, 1);
    br_eval_list(items, 4, rel, 0, &m);
    assert_int_equal(m.hits, 0);
    assert_true(m.ndcg == 0);
}

/* A small universe: reader u rates 10 + u books. */
static br_ratings *universe(br_catalog **cat, int with_time)
{
    char *dir = tu_tmpdir("test_eval");
    char text[1 << 16];
    size_t n = (size_t)snprintf(text, sizeof text, "book_id,title\n");
    for (int b = 0; b < 60; b++) n += (size_t)snprintf(text + n, sizeof text - n, "%d,B%d\n", b, b);
    char *bp = tu_write_file(dir, "books.csv", text);
    n = (size_t)snprintf(text, sizeof text, "user_id,book_id,rating%s\n",
                         with_time ? ",timestamp" : "");
    for (int u = 0; u < 12; u++)
        for (int j = 0; j < 10 + u; j++) {
            int b = (u * 7 + j) % 60;
            n += (size_t)snprintf(text + n, sizeof text - n, "u%d,%d,%d", u, b, 1 + (u + j) % 5);
            if (with_time) n += (size_t)snprintf(text + n, sizeof text - n, ",%d", 1000 - j);
            text[n++] = '\n';
        }
    text[n] = '\0';
    /* u12 has 3 ratings only: never evaluated with min_ratings 5 */
    for (int j = 0; j < 3; j++)
        n += (size_t)snprintf(text + n, sizeof text - n, "u12,%d,5%s\n", j, with_time ? ",1" : "");
    char *rp = tu_write_file(dir, "ratings.csv", text);
    br_ratings *r;
    assert_int_equal(br_catalog_load(bp, NULL, cat, NULL), BR_OK);
    assert_int_equal(br_ratings_load(rp, *cat, NULL, &r, NULL), BR_OK);
    br_free(bp);
    br_free(rp);
    br_free(dir);
    return r;
}

static void test_split_guarantees(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r = universe(&cat, 0);
    br_split s, s2;
    br_split_options o = BR_SPLIT_OPTIONS_DEFAULT;
    assert_int_equal(br_split_ratings(r, &o, &s), BR_OK);
    assert_int_equal(s.n_train + s.n_test, br_ratings_count(r));
    assert_int_equal(s.n_eval_users, 12);
    for (uint32_t u = 0; u < 12; u++) {
        uint32_t count = 10 + u, t = (uint32_t)(0.2f * (float)count + 0.5f);
        assert_int_equal(s.test_ptr[u + 1] - s.test_ptr[u], t);
        for (uint64_t j = s.test_ptr[u] + 1; j < s.test_ptr[u + 1]; j++)
            assert_true(s.test_book[j - 1] < s.test_book[j]);
        /* a held-out book is never also in training for that reader */
        for (uint64_t j = s.test_ptr[u]; j < s.test_ptr[u + 1]; j++)
            for (size_t i = 0; i < s.n_train; i++)
                assert_false(s.train_user[i] == u && s.train_book[i] == s.test_book[j]);
    }
    assert_int_equal(s.test_ptr[13] - s.test_ptr[12], 0); /* too few ratings */
    /* deterministic for a seed, different for another */
    assert_int_equal(br_split_ratings(r, &o, &s2), BR_OK);
    assert_memory_equal(s.test_book, s2.test_book, s.n_test * sizeof *s.test_book);
    br_split_free(&s2);
    o.seed = 7;
    assert_int_equal(br_split_ratings(r, &o, &s2), BR_OK);
    assert_true(memcmp(s.test_book, s2.test_book, s.n_test * sizeof *s.test_book) != 0);
    br_split_free(&s2);
    br_split_free(&s);
    /* errors */
    o.test_fraction = 1.5f;
    assert_status_detail(br_split_ratings(r, &o, &s), BR_EINVAL, "not in (0, 1)");
    o = (br_split_options)BR_SPLIT_OPTIONS_DEFAULT;
    o.by_time = 1;
    assert_status_detail(br_split_ratings(r, &o, &s), BR_EINVAL, "needs a timestamp column");
    br_ratings_free(r);
    br_catalog_free(cat);
}

static void test_split_by_time_holds_out_the_latest(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r = universe(&cat, 1);
    br_split_options o = BR_SPLIT_OPTIONS_DEFAULT;
    o.by_time = 1;
    br_split s;
    assert_int_equal(br_split_ratings(r, &o, &s), BR_OK);
    /* timestamps fall with j: the latest are the first rows of each reader */
    for (uint32_t u = 0; u < 12; u++) {
        uint32_t t = (uint32_t)(s.test_ptr[u + 1] - s.test_ptr[u]);
        for (uint32_t j = 0; j < t; j++) {
            uint32_t b = (u * 7 + j) % 60; /* books load in id order */
            int found = 0;
            for (uint64_t q = s.test_ptr[u]; q < s.test_ptr[u + 1]; q++) found |= s.test_book[q] == b;
            assert_true(found);
        }
    }
    br_split_free(&s);
    br_ratings_free(r);
    br_catalog_free(cat);
}

/* Oracle engines: one ranks each reader's relevant held-out books first,
 * one ranks books 0, 1, 2... skipping training books. */
typedef struct oracle {
    const br_split *s;
    int perfect;
} oracle;

static int in_train(const br_split *s, uint32_t u, uint32_t b)
{
    for (size_t i = 0; i < s->n_train; i++)
        if (s->train_user[i] == u && s->train_book[i] == b) return 1;
    return 0;
}

static br_status oracle_rank(void *ctx, const uint32_t *users, size_t n, uint32_t k,
                             uint32_t *items)
{
    oracle *o = ctx;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = users[i], f = 0;
        uint32_t *row = items + i * k;
        if (o->perfect)
            for (uint64_t j = o->s->test_ptr[u]; j < o->s->test_ptr[u + 1] && f < k; j++)
                if (o->s->test_value[j] >= 4) row[f++] = o->s->test_book[j];
        for (uint32_t b = 0; b < o->s->n_books && f < k; b++) {
            int dup = 0;
            for (uint32_t q = 0; q < f; q++) dup |= row[q] == b;
            if (!dup && !in_train(o->s, u, b)) row[f++] = b;
        }
        while (f < k) row[f++] = BR_EVAL_NONE;
    }
    return BR_OK;
}

static br_status constant_predict(void *ctx, const uint32_t *users, const uint32_t *books,
                                  size_t n, float *out)
{
    (void)ctx;
    (void)users;
    (void)books;
    for (size_t i = 0; i < n; i++) out[i] = 3.0f;
    return BR_OK;
}

static void test_driver_with_oracles(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r = universe(&cat, 0);
    br_split s;
    assert_int_equal(br_split_ratings(r, NULL, &s), BR_OK);
    oracle perfect = {&s, 1};
    br_ranker rk = {"perfect", &perfect, oracle_rank, constant_predict};
    br_eval_result res;
    assert_int_equal(br_eval_ranker(&s, &rk, 5, NULL, 0, &res), BR_OK);
    assert_true(res.users_ranked > 0);
    assert_true(fabs(res.ndcg - 1.0) < 1e-12);
    assert_true(fabs(res.map - 1.0) < 1e-12);
    assert_true(fabs(res.recall - 1.0) < 1e-12); /* at most 5 relevant per reader here */
    assert_true(res.coverage > 0 && res.coverage <= 1);
    /* RMSE of the constant 3 over the held-out ratings, by hand */
    double sse = 0;
    for (size_t j = 0; j < s.n_test; j++) sse += (s.test_value[j] - 3.0) * (s.test_value[j] - 3.0);
    assert_true(res.has_rmse);
    assert_int_equal(res.n_rmse, s.n_test);
    assert_true(fabs(res.rmse - sqrt(sse / (double)s.n_test)) < 1e-9);

    oracle blind = {&s, 0};
    br_ranker rb = {"blind", &blind, oracle_rank, NULL};
    assert_int_equal(br_eval_ranker(&s, &rb, 5, NULL, 0, &res), BR_OK);
    assert_true(res.ndcg < 1.0);
    assert_false(res.has_rmse);
    /* restricted to one reader */
    uint32_t one = 3;
    assert_int_equal(br_eval_ranker(&s, &rk, 5, &one, 1, &res), BR_OK);
    assert_true(res.users_ranked <= 1);
    assert_status_detail(br_eval_ranker(&s, &rk, 0, NULL, 0, &res), BR_EINVAL, "k must be");
    br_split_free(&s);
    br_ratings_free(r);
    br_catalog_free(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_metrics_by_hand),
        cmocka_unit_test(test_split_guarantees),
        cmocka_unit_test(test_split_by_time_holds_out_the_latest),
        cmocka_unit_test(test_driver_with_oracles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
