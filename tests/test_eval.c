/*
 * test_eval.c: the evaluation protocol: list metrics against hand-worked
 * values, the split's guarantees, the driver with oracle engines whose
 * scores are known in advance, and the whole protocol as one call
 * (br_eval_run) on the goodbooks sample: its figures are those of the
 * building blocks, the same for a seed, and bad options are refused.
 */
#include <dirent.h>
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
            for (uint64_t q = s.test_ptr[u]; q < s.test_ptr[u + 1]; q++)
                found |= s.test_book[q] == b;
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

/* ------------------------------------------------------------ br_eval_run -- */

static void sample_options(br_eval_options *o, char **books, char **ratings)
{
    *books = tu_data_path("goodbooks-sample/books.csv");
    *ratings = tu_data_path("goodbooks-sample/ratings.csv");
    br_eval_options_default(o);
    o->books = *books;
    o->ratings = *ratings;
}

/* The metrics of a result, without its timings. */
static void assert_same_figures(const br_eval_result *a, const br_eval_result *b)
{
    assert_int_equal(a->k, b->k);
    assert_int_equal(a->users_ranked, b->users_ranked);
    assert_true(a->precision == b->precision && a->recall == b->recall);
    assert_true(a->ndcg == b->ndcg && a->map == b->map && a->coverage == b->coverage);
    assert_int_equal(a->has_rmse, b->has_rmse);
    assert_true(a->rmse == b->rmse);
    assert_int_equal(a->n_rmse, b->n_rmse);
}

static void assert_unit(double x)
{
    if (!(x >= 0 && x <= 1)) fail_msg("%g is not in [0, 1]", x);
}

static void test_run_matches_the_building_blocks(void **state)
{
    (void)state;
    char *bp, *rp;
    br_eval_options o;
    sample_options(&o, &bp, &rp);
    const char *names[] = {"ease", "popularity", "collab"};
    o.engines = names;
    o.n_engines = 3;
    o.k = 5;
    o.split.seed = 7;
    br_eval_report *rep = NULL;
    assert_int_equal(br_eval_run(&o, &rep), BR_OK);
    assert_non_null(rep);
    /* the protocol echoed, the engines asked for in their order */
    assert_int_equal(rep->k, 5);
    assert_int_equal(rep->split.seed, 7);
    assert_int_equal(rep->split.by_time, 0);
    assert_true(rep->split.test_fraction == 0.2f && rep->split.min_ratings == 5);
    assert_int_equal(rep->n_engines, 3);
    assert_string_equal(rep->engines[0].name, "ease");
    assert_string_equal(rep->engines[1].name, "popularity");
    assert_string_equal(rep->engines[2].name, "svd");
    for (size_t i = 0; i < 3; i++) assert_null(rep->engines[i].text); /* none reads a text */
    assert_false(rep->text[0].used || rep->text[1].used);
    assert_int_equal(rep->embedded, 0);
    assert_false(rep->tuned);
    assert_null(rep->rerank);
    assert_int_equal(rep->n_slices, 1);
    assert_string_equal(rep->slices[0].name, "all");
    assert_true(rep->n_ranked > 0 && rep->n_ranked <= rep->n_eval_users);
    assert_true(rep->n_eval_users <= rep->n_users);
    for (size_t i = 0; i < 3; i++) {
        const br_eval_result *r = &rep->slices[0].figures[i].r;
        assert_int_equal(r->k, 5);
        assert_int_equal(r->users_ranked, rep->n_ranked);
        assert_unit(r->precision), assert_unit(r->recall), assert_unit(r->ndcg);
        assert_unit(r->map), assert_unit(r->coverage);
        assert_int_equal(r->has_rmse, i == 2); /* svd predicts ratings */
    }
    assert_true(rep->slices[0].figures[0].r.ndcg > rep->slices[0].figures[1].r.ndcg);

    /* the same figures from the building blocks by hand */
    br_catalog *cat;
    br_ratings *r;
    assert_int_equal(br_catalog_load(bp, NULL, &cat, NULL), BR_OK);
    assert_int_equal(br_ratings_load(rp, cat, NULL, &r, NULL), BR_OK);
    br_split s;
    assert_int_equal(br_split_ratings(r, &o.split, &s), BR_OK);
    assert_int_equal(rep->n_train, s.n_train);
    assert_int_equal(rep->n_test, s.n_test);
    assert_int_equal(rep->n_train + rep->n_test, br_ratings_count(r));
    assert_int_equal(rep->n_books, br_catalog_count(cat));
    br_train_data td = {s.n_users, s.n_books, s.n_train, s.train_user, s.train_book, s.train_value};
    br_hybrid_options ho;
    br_hybrid_options_default(&ho);
    const br_engine eng[3] = {BR_ENGINE_EASE, BR_ENGINE_POPULARITY, BR_ENGINE_SVD};
    br_hybrid *h = NULL;
    assert_int_equal(br_hybrid_fit(&td, cat, NULL, 0, &ho, eng, 3, &h), BR_OK);
    for (size_t i = 0; i < 3; i++) {
        br_hybrid_engine c = {h, eng[i]};
        br_ranker rk = br_hybrid_ranker(&c);
        br_eval_result res;
        assert_int_equal(br_eval_ranker(&s, &rk, 5, NULL, 0, &res), BR_OK);
        assert_same_figures(&res, &rep->slices[0].figures[i].r);
    }
    br_hybrid_free(h);
    br_split_free(&s);
    br_ratings_free(r);
    br_catalog_free(cat);
    br_eval_report_free(rep);
    br_free(bp);
    br_free(rp);
}

/* Random unit vectors for the sample's books, so that the content engines
 * and the hybrid run without the encoder. */
static char *sample_embeddings(const char *dir, size_t n_books)
{
    const size_t dim = 16;
    float *v = br_malloc(n_books * dim * sizeof *v);
    br_rng rng;
    br_rng_seed(&rng, 3);
    for (size_t b = 0; b < n_books; b++) {
        double norm = 0;
        for (size_t j = 0; j < dim; j++) {
            v[b * dim + j] = (float)br_rng_normal(&rng);
            norm += (double)v[b * dim + j] * v[b * dim + j];
        }
        for (size_t j = 0; j < dim; j++) v[b * dim + j] /= (float)sqrt(norm);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/emb.npy", dir);
    assert_int_equal(br_npy_write(path, BR_DTYPE_F32, 2, n_books, dim, v), BR_OK);
    br_free(v);
    return br_strdup(path);
}

static void test_run_same_seed_same_figures(void **state)
{
    (void)state;
    char *bp, *rp, *dir = tu_tmpdir("test_eval_run");
    br_eval_options o;
    sample_options(&o, &bp, &rp);
    br_catalog *cat;
    assert_int_equal(br_catalog_load(bp, NULL, &cat, NULL), BR_OK);
    char *npy = sample_embeddings(dir, br_catalog_count(cat));
    br_catalog_free(cat);
    const char *names[] = {"hybrid", "content", "als"};
    o.engines = names;
    o.n_engines = 3;
    o.embeddings = npy;
    o.slices = 1;
    o.tune = 1;
    br_eval_report *a = NULL, *b = NULL;
    assert_int_equal(br_eval_run(&o, &a), BR_OK);
    assert_int_equal(br_eval_run(&o, &b), BR_OK);
    assert_int_equal(a->k, 10);
    assert_int_equal(a->n_slices, 4);
    const char *slice[] = {"all", "long-tail", "newcomers", "cold-books"};
    for (size_t l = 0; l < 4; l++) {
        assert_string_equal(a->slices[l].name, slice[l]);
        for (size_t i = 0; i < 3; i++) {
            const br_eval_result *x = &a->slices[l].figures[i].r;
            assert_unit(x->precision), assert_unit(x->recall), assert_unit(x->ndcg);
            assert_unit(x->map), assert_unit(x->coverage);
            assert_same_figures(x, &b->slices[l].figures[i].r);
        }
    }
    /* the newcomers slice ranks only some of the readers */
    assert_true(a->slices[2].figures[0].r.users_ranked < a->n_ranked);
    /* every engine read the given embeddings; tuning and learning ran */
    assert_string_equal(a->embeddings, npy);
    for (size_t i = 0; i < 2; i++) assert_string_equal(a->engines[i].text, "embeddings");
    assert_null(a->engines[2].text);
    assert_int_equal(a->embedded, 0);
    assert_true(a->tuned && a->tuning.n_ease == BR_EVAL_TUNE_EASE);
    assert_true(a->tuning.ease_lambda == 60 || a->tuning.ease_lambda == 100 ||
                a->tuning.ease_lambda == 150);
    assert_true(a->hybrid->ease.lambda == a->tuning.ease_lambda && a->hybrid->w_ease == 1);
    /* the same choice, and the same NDCG bit for bit (br_hybrid_tune sums
     * in reader order whatever the threads) */
    assert_true(a->tuning.ndcg == b->tuning.ndcg);
    assert_true(a->tuning.w_als == b->tuning.w_als && a->tuning.w_content == b->tuning.w_content &&
                a->tuning.w_popularity == b->tuning.w_popularity);
    assert_non_null(a->rerank);
    assert_true(a->rerank->cand == 30 || a->rerank->cand == 50 || a->rerank->cand == 100);
    assert_int_equal(a->hybrid->cand_ease, a->rerank->cand);
    assert_memory_equal(a->hybrid->rerank_coef, b->hybrid->rerank_coef,
                        sizeof a->hybrid->rerank_coef);
    br_eval_report_free(b);
    /* another seed, other figures */
    o.split.seed = 43;
    o.slices = o.tune = 0;
    assert_int_equal(br_eval_run(&o, &b), BR_OK);
    assert_true(a->slices[0].figures[0].r.ndcg != b->slices[0].figures[0].r.ndcg);
    br_eval_report_free(a);
    br_eval_report_free(b);
    br_free(npy);
    br_free(dir);
    br_free(bp);
    br_free(rp);
}

static void test_run_refuses_bad_options(void **state)
{
    (void)state;
    char *bp, *rp;
    br_eval_options o;
    sample_options(&o, &bp, &rp);
    br_eval_report *rep = (br_eval_report *)1; /* set to NULL on failure */
    const char *one[] = {"popularity"}, *bad[] = {"popularity", "knn"};
    o.engines = one;
    o.n_engines = 1;
    o.k = 0;
    assert_status_detail(br_eval_run(&o, &rep), BR_EINVAL, "k 0 is not in 1..1000");
    assert_null(rep);
    o.k = 1001;
    assert_status_detail(br_eval_run(&o, &rep), BR_EINVAL, "k 1001");
    o.k = 10;
    o.engines = bad;
    o.n_engines = 2;
    assert_status_detail(br_eval_run(&o, &rep), BR_EINVAL, "unknown engine 'knn'");
    o.n_engines = 0;
    assert_status_detail(br_eval_run(&o, &rep), BR_EINVAL, "no engine");
    o.engines = one;
    o.n_engines = 1;
    o.text = "summary";
    assert_status_detail(br_eval_run(&o, &rep), BR_EINVAL, "book text 'summary'");
    o.text = NULL;
    o.split.by_time = 1; /* the sample has no timestamps */
    assert_status_detail(br_eval_run(&o, &rep), BR_EINVAL, "needs a timestamp column");
    o.split.by_time = 0;
    o.split.test_fraction = 1;
    assert_status_detail(br_eval_run(&o, &rep), BR_EINVAL, "not in (0, 1)");
    o.split.test_fraction = 0.2f;
    o.ratings = NULL;
    assert_status_detail(br_eval_run(&o, &rep), BR_EINVAL, "books and ratings files");
    o.ratings = rp;
    const char *content[] = {"content"};
    o.engines = content;
    o.embeddings = bp; /* not a .npy */
    assert_int_equal(br_eval_run(&o, &rep), BR_EFORMAT);
    assert_null(rep);
    assert_status_detail(br_eval_run(NULL, &rep), BR_EINVAL, "no options");
    br_free(bp);
    br_free(rp);
}

/* Asks to stop as soon as the stage named by user starts. */
typedef struct cancel_at {
    const char *stage;
    int calls, ranked; /* ranked: times the stage "evaluate" began */
} cancel_at;

static int cancel_cb(const char *stage, uint64_t done, uint64_t total, void *user)
{
    (void)total;
    cancel_at *c = user;
    c->calls++;
    c->ranked += !strcmp(stage, "evaluate") && done == 0;
    return !strcmp(stage, c->stage);
}

static void test_run_cancelled_by_progress(void **state)
{
    (void)state;
    char *bp, *rp;
    br_eval_options o;
    sample_options(&o, &bp, &rp);
    const char *names[] = {"popularity", "ease"};
    o.engines = names;
    o.n_engines = 2;
    /* the protocol's own stage (heard between its steps), and a step's */
    const char *stages[] = {"eval", "evaluate"};
    for (int i = 0; i < 2; i++) {
        cancel_at c = {stages[i], 0, 0};
        br_progress_set(cancel_cb, &c);
        br_eval_report *rep = (br_eval_report *)1;
        br_status st = br_eval_run(&o, &rep);
        br_progress_set(NULL, NULL);
        assert_int_equal(st, BR_ECANCELLED);
        assert_null(rep);
        assert_true(c.calls > 0);
        /* stopped at once: before any ranking, or after the first engine's */
        assert_int_equal(c.ranked, i);
    }
    br_free(bp);
    br_free(rp);
}

static void test_split_write(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r = universe(&cat, 0);
    br_split s;
    assert_int_equal(br_split_ratings(r, NULL, &s), BR_OK);
    char *dir = tu_tmpdir("test_eval_split");
    assert_int_equal(br_split_write(&s, dir), BR_OK);
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    char *meta = tu_read_file(path, NULL);
    assert_string_equal(meta, "{\"readers\": 13, \"books\": 60}\n");
    br_free(meta);
    for (int part = 0; part < 2; part++) {
        snprintf(path, sizeof path, "%s/%s", dir, part ? "test.csv" : "train.csv");
        char *text = tu_read_file(path, NULL);
        assert_non_null(text);
        size_t lines = 0;
        for (char *c = text; *c; c++) lines += *c == '\n';
        assert_int_equal(lines, 1 + (part ? s.n_test : s.n_train));
        char first[64];
        if (part)
            snprintf(first, sizeof first, "reader,book,rating\n0,%u,%g\n", s.test_book[0],
                     (double)s.test_value[0]);
        else
            snprintf(first, sizeof first, "reader,book,rating\n%u,%u,%g\n", s.train_user[0],
                     s.train_book[0], (double)s.train_value[0]);
        assert_memory_equal(text, first, strlen(first));
        br_free(text);
    }
    /* writing the split again replaces each file whole (core/afile.h): a
     * peer still reading the old train.csv reads all of it, not a file
     * truncated and rewritten under it, and no temporary is left behind */
    br_free(tu_write_file(dir, "train.csv", "old\n"));
    snprintf(path, sizeof path, "%s/train.csv", dir);
    FILE *old = fopen(path, "r");
    assert_non_null(old);
    assert_int_equal(br_split_write(&s, dir), BR_OK);
    char held[16] = {0};
    assert_int_equal(fread(held, 1, sizeof held - 1, old), 4);
    assert_string_equal(held, "old\n");
    fclose(old);
    char *text = tu_read_file(path, NULL);
    assert_non_null(text);
    assert_memory_equal(text, "reader,book,rating\n", 19);
    br_free(text);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 3); /* meta.json, train.csv, test.csv */
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_status_detail(br_split_write(&s, path), BR_EIO, "meta.json: cannot create");
    br_free(dir);
    br_split_free(&s);
    br_ratings_free(r);
    br_catalog_free(cat);
}


/* -------------------------------------------------- the other protocols -- */

static void test_split_cold_books(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r = universe(&cat, 0);
    br_split s, s2;
    br_split_options o = BR_SPLIT_OPTIONS_DEFAULT;
    assert_int_equal(br_split_cold_books(r, &o, 0.1f, &s), BR_OK);
    assert_non_null(s.candidate);
    assert_null(s.fold_in);
    /* 10% of the rated books (all 60 are rated here), rounded */
    uint32_t n_cold = 0;
    for (uint32_t b = 0; b < s.n_books; b++) n_cold += s.candidate[b];
    assert_int_equal(n_cold, 6);
    /* cold books have no training rating; every other rating trains */
    size_t n_other = 0;
    for (size_t i = 0; i < br_ratings_count(r); i++)
        n_other += !s.candidate[br_ratings_books(r)[i]];
    assert_int_equal(s.n_train, n_other);
    for (size_t i = 0; i < s.n_train; i++) assert_false(s.candidate[s.train_book[i]]);
    /* held out: cold books only, of readers with a training rating and a
     * relevant cold rating; every such reader is there */
    assert_true(s.n_test > 0);
    uint32_t n_eval = 0;
    for (uint32_t u = 0; u < s.n_users; u++) {
        size_t trained = 0;
        int liked = 0;
        for (size_t i = 0; i < s.n_train; i++) trained += s.train_user[i] == u;
        for (size_t i = 0; i < br_ratings_count(r); i++)
            liked |= br_ratings_users(r)[i] == u && s.candidate[br_ratings_books(r)[i]] &&
                     br_ratings_values(r)[i] >= 4;
        uint64_t lo = s.test_ptr[u], hi = s.test_ptr[u + 1];
        assert_int_equal(hi > lo, trained > 0 && liked);
        n_eval += hi > lo;
        for (uint64_t j = lo; j < hi; j++) assert_true(s.candidate[s.test_book[j]]);
    }
    assert_int_equal(s.n_eval_users, n_eval);
    /* same seed, same split; another seed, other books */
    assert_int_equal(br_split_cold_books(r, &o, 0.1f, &s2), BR_OK);
    assert_memory_equal(s.candidate, s2.candidate, s.n_books);
    assert_int_equal(s.n_test, s2.n_test);
    br_split_free(&s2);
    o.seed = 7;
    assert_int_equal(br_split_cold_books(r, &o, 0.1f, &s2), BR_OK);
    assert_true(memcmp(s.candidate, s2.candidate, s.n_books) != 0);
    br_split_free(&s2);
    assert_status_detail(br_split_cold_books(r, &o, 0, &s2), BR_EINVAL, "not in (0, 1)");
    br_split_free(&s);
    br_ratings_free(r);
    br_catalog_free(cat);
}

static void test_split_readers(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r = universe(&cat, 0);
    br_split s, s2, v;
    br_split_options o = BR_SPLIT_OPTIONS_DEFAULT;
    assert_int_equal(br_split_readers(r, &o, 0.25f, &s), BR_OK);
    assert_non_null(s.fold_in);
    assert_null(s.candidate);
    assert_int_equal(s.n_train + s.n_test, br_ratings_count(r));
    /* a quarter of the 12 readers with >= 5 ratings; u12 (3) never */
    uint32_t n_out = 0;
    for (uint32_t u = 0; u < s.n_users; u++) n_out += s.fold_in[u];
    assert_int_equal(n_out, 3);
    assert_false(s.fold_in[12]);
    assert_int_equal(s.n_eval_users, 3);
    for (uint32_t u = 0; u < s.n_users; u++) {
        uint64_t held = s.test_ptr[u + 1] - s.test_ptr[u];
        size_t kept = 0;
        for (size_t i = 0; i < s.n_train; i++) kept += s.train_user[i] == u;
        if (!s.fold_in[u]) {
            assert_int_equal(held, 0); /* in training with every rating */
            continue;
        }
        /* 80% folded in, 20% scored */
        uint32_t count = u == 12 ? 3 : 10 + u, t = (uint32_t)(0.2f * (float)count + 0.5f);
        assert_int_equal(held, t);
        assert_int_equal(kept, count - t);
    }
    /* the validation split never trains on the fold-in histories */
    assert_int_equal(br_split_train(&s, NULL, &v), BR_OK);
    for (size_t i = 0; i < v.n_train; i++) assert_false(s.fold_in[v.train_user[i]]);
    for (uint32_t u = 0; u < v.n_users; u++)
        if (s.fold_in[u]) assert_int_equal(v.test_ptr[u + 1] - v.test_ptr[u], 0);
    br_split_free(&v);
    /* same seed, same split; another seed, other readers */
    assert_int_equal(br_split_readers(r, &o, 0.25f, &s2), BR_OK);
    assert_memory_equal(s.fold_in, s2.fold_in, s.n_users);
    assert_memory_equal(s.test_book, s2.test_book, s.n_test * sizeof *s.test_book);
    br_split_free(&s2);
    int differs = 0;
    for (uint64_t seed = 1; seed < 4 && !differs; seed++) {
        o.seed = seed;
        assert_int_equal(br_split_readers(r, &o, 0.25f, &s2), BR_OK);
        differs = memcmp(s.fold_in, s2.fold_in, s.n_users) != 0;
        br_split_free(&s2);
    }
    assert_true(differs);
    assert_status_detail(br_split_readers(r, &o, 1.0f, &s2), BR_EINVAL, "not in (0, 1)");
    br_split_free(&s);
    br_ratings_free(r);
    br_catalog_free(cat);
}

/* Ranks the books 0, 1, 2, ... in order: the deep metrics by hand. */
static br_status index_rank(void *ctx, const uint32_t *users, size_t n, uint32_t k,
                            uint32_t *items)
{
    (void)ctx;
    (void)users;
    for (size_t i = 0; i < n; i++)
        for (uint32_t p = 0; p < k; p++) items[i * k + p] = p;
    return BR_OK;
}

static void test_deep_metrics_by_hand(void **state)
{
    (void)state;
    /* One reader (0) of 200 books ranked 0, 1, 2, ...; relevant held-out
     * books on both sides of each cut (19 | 20, 49 | 50, 99 | 100). */
    uint64_t ptr[3] = {0, 9, 9};
    uint32_t tb[9] = {3, 19, 20, 40, 49, 50, 99, 100, 150};
    float tv[9] = {5, 4, 4, 2, 5, 4, 4, 5, 4};
    br_split s;
    memset(&s, 0, sizeof s);
    s.n_users = 2, s.n_books = 200, s.relevant_min = 4;
    s.n_test = 9, s.test_ptr = ptr, s.test_book = tb, s.test_value = tv;
    br_ranker rk = {"index", NULL, index_rank, NULL};
    br_eval_result res;
    assert_int_equal(br_eval_ranker_deep(&s, &rk, 5, NULL, 0, &res), BR_OK);
    assert_true(res.deep);
    assert_int_equal(res.users_ranked, 1);
    double idcg[9] = {0};
    for (int i = 0; i < 8; i++) idcg[i + 1] = idcg[i] + 1.0 / log2(i + 2.0);
    /* the figures at k = 5: one hit (book 3 at rank 4), ideal 5 */
    double d3 = 1.0 / log2(5.0);
    assert_true(fabs(res.precision - 0.2) < 1e-12);
    assert_true(fabs(res.ndcg - d3 / idcg[5]) < 1e-12);
    /* NDCG@10: the same hit, ideal min(10, 8 relevant) */
    assert_true(fabs(res.ndcg10 - d3 / idcg[8]) < 1e-12);
    /* recall@20: books 3 and 19 of 8; recall@50: also 20 and 49 */
    assert_true(fabs(res.recall20 - 2.0 / 8.0) < 1e-12);
    assert_true(fabs(res.recall50 - 4.0 / 8.0) < 1e-12);
    /* NDCG@100: hits at 0-based places 3, 19, 20, 49, 50, 99 */
    double dcg = 0;
    const int at[6] = {3, 19, 20, 49, 50, 99};
    for (int i = 0; i < 6; i++) dcg += 1.0 / log2(at[i] + 2.0);
    assert_true(fabs(res.ndcg100 - dcg / idcg[8]) < 1e-12);
    /* the plain driver leaves them out */
    assert_int_equal(br_eval_ranker(&s, &rk, 5, NULL, 0, &res), BR_OK);
    assert_false(res.deep);
    assert_true(res.ndcg100 == 0);
}

static void test_run_protocols(void **state)
{
    (void)state;
    char *bp, *rp;
    br_eval_options o;
    sample_options(&o, &bp, &rp);
    const char *names[] = {"popularity", "als", "ease", "hybrid"};
    o.engines = names;
    o.n_engines = 4;
    o.learn = 0;
    br_eval_report *rep = NULL, *again = NULL, *plain = NULL;
    /* random: the same figures at k as without a protocol, and the deep ones */
    assert_int_equal(br_eval_run(&o, &plain), BR_OK);
    o.protocol = "random";
    assert_int_equal(br_eval_run(&o, &rep), BR_OK);
    assert_string_equal(rep->protocol, "random");
    assert_null(plain->protocol);
    for (size_t i = 0; i < 4; i++) {
        const br_eval_result *a = &plain->slices[0].figures[i].r, *b = &rep->slices[0].figures[i].r;
        assert_false(a->deep);
        assert_true(b->deep);
        assert_same_figures(a, b);
        assert_true(b->ndcg10 == b->ndcg); /* k = 10 */
        assert_unit(b->recall20);
        assert_true(b->recall50 >= b->recall20);
    }
    br_eval_report_free(rep);
    br_eval_report_free(plain);
    /* cold-books: only cold books are ranked. Popularity has nothing to
     * tell them apart (catalogue order); ALS ranks them by the vectors
     * their content predicts (src/hybrid/coldvec.c), and better. */
    o.protocol = "cold-books";
    assert_int_equal(br_eval_run(&o, &rep), BR_OK);
    assert_true(rep->n_cold_books > 0);
    assert_true(rep->n_ranked > 0);
    assert_true(rep->slices[0].figures[1].r.ndcg > rep->slices[0].figures[0].r.ndcg);
    assert_true(rep->slices[0].figures[0].r.recall50 > 0);
    /* readers: the readers out of training are the ones ranked; seeded */
    o.protocol = "readers";
    assert_int_equal(br_eval_run(&o, &again), BR_OK);
    assert_true(again->n_fold_readers > 0);
    assert_true(again->n_eval_users == again->n_fold_readers);
    for (size_t i = 0; i < 4; i++) {
        assert_true(again->slices[0].figures[i].r.deep);
        assert_unit(again->slices[0].figures[i].r.ndcg100);
    }
    br_eval_report *twice = NULL;
    assert_int_equal(br_eval_run(&o, &twice), BR_OK);
    for (size_t i = 0; i < 4; i++) {
        assert_same_figures(&again->slices[0].figures[i].r, &twice->slices[0].figures[i].r);
        assert_true(again->slices[0].figures[i].r.ndcg100 ==
                    twice->slices[0].figures[i].r.ndcg100);
    }
    br_eval_report_free(twice);
    br_eval_report_free(again);
    br_eval_report_free(rep);
    /* bad protocols */
    o.protocol = "leave-one-out";
    assert_status_detail(br_eval_run(&o, &rep), BR_EINVAL, "protocol 'leave-one-out'");
    o.protocol = "readers";
    o.slices = 1;
    assert_status_detail(br_eval_run(&o, &rep), BR_EINVAL, "random protocol only");
    assert_null(rep);
    br_free(bp);
    br_free(rp);
}

/* The goodbooks sample's ratings (and its catalogue). */
static br_ratings *sample_ratings(br_catalog **cat)
{
    char *bp, *rp;
    br_eval_options o;
    sample_options(&o, &bp, &rp);
    br_ratings *r;
    assert_int_equal(br_catalog_load(bp, NULL, cat, NULL), BR_OK);
    assert_int_equal(br_ratings_load(rp, *cat, NULL, &r, NULL), BR_OK);
    br_free(bp);
    br_free(rp);
    return r;
}

/* A reader out of training is scored by what their ratings fold in: the
 * same as when the books' side was fitted without them, whatever else. */
static void test_fold_in_matches_a_model_without_them(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r = sample_ratings(&cat);
    br_split s;
    assert_int_equal(br_split_readers(r, NULL, 0.2f, &s), BR_OK);
    br_hybrid_options ho;
    br_hybrid_options_default(&ho);
    const br_engine eng[] = {BR_ENGINE_POPULARITY, BR_ENGINE_ALS, BR_ENGINE_EASE};
    br_train_data td = {s.n_users, s.n_books, s.n_train, s.train_user, s.train_book, s.train_value};
    /* a: fold-in; b: trained on the fold-in histories too (no protocol) */
    br_hybrid *a = NULL, *b = NULL;
    ho.fold_in = s.fold_in;
    assert_int_equal(br_hybrid_fit(&td, NULL, NULL, 0, &ho, eng, 3, &a), BR_OK);
    ho.fold_in = NULL;
    assert_int_equal(br_hybrid_fit(&td, NULL, NULL, 0, &ho, eng, 3, &b), BR_OK);
    /* the books' side of a never saw a held-out reader's rating */
    const br_csr *ra = br_hybrid_ratings(a);
    uint32_t u_out = UINT32_MAX;
    for (uint32_t u = 0; u < s.n_users && u_out == UINT32_MAX; u++)
        if (s.fold_in[u] && ra->indptr[u + 1] > ra->indptr[u]) u_out = u;
    assert_true(u_out != UINT32_MAX);
    const br_cf_model *ma = br_hybrid_cf_model(a, BR_ENGINE_ALS);
    const br_cf_model *mb = br_hybrid_cf_model(b, BR_ENGINE_ALS);
    uint32_t k = br_cf_model_factors(ma);
    assert_true(memcmp(br_cf_model_item_factors(ma), br_cf_model_item_factors(mb),
                       (size_t)s.n_books * k * sizeof(float)) != 0);
    /* a's row for the reader is exactly the fold-in of their ratings */
    float f[256];
    uint64_t lo = ra->indptr[u_out];
    assert_int_equal(br_cf_fold_in(ma, ra->indptr[u_out + 1] - lo, ra->indices + lo,
                                   ra->values + lo, f, NULL),
                     BR_OK);
    assert_memory_equal(f, br_cf_model_user_factors(ma) + (size_t)u_out * k, k * sizeof(float));
    /* popularity counts only the training readers' ratings */
    const br_cf_model *pa = br_hybrid_cf_model(a, BR_ENGINE_POPULARITY);
    const br_cf_model *pb = br_hybrid_cf_model(b, BR_ENGINE_POPULARITY);
    assert_true(memcmp(br_cf_model_item_bias(pa), br_cf_model_item_bias(pb),
                       (size_t)s.n_books * sizeof(float)) != 0);
    /* rankings leave out the books the reader folded in */
    uint32_t items[20];
    assert_int_equal(br_hybrid_rank(a, BR_ENGINE_EASE, &u_out, 1, 20, items, NULL), BR_OK);
    for (int p = 0; p < 20; p++)
        for (uint64_t q = lo; q < ra->indptr[u_out + 1]; q++)
            assert_true(items[p] != ra->indices[q]);
    br_hybrid_free(a);
    br_hybrid_free(b);
    br_split_free(&s);
    br_ratings_free(r);
    br_catalog_free(cat);
}

/* rank_only: every engine's list holds only the allowed books. */
static void test_rank_only(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r = sample_ratings(&cat);
    br_split s;
    assert_int_equal(br_split_cold_books(r, NULL, 0.1f, &s), BR_OK);
    br_hybrid_options ho;
    br_hybrid_options_default(&ho);
    ho.rerank = 0; /* the blend: no embeddings needed */
    ho.w_content = 0;
    ho.rank_only = s.candidate;
    const br_engine eng[] = {BR_ENGINE_POPULARITY, BR_ENGINE_ALS, BR_ENGINE_HYBRID};
    br_train_data td = {s.n_users, s.n_books, s.n_train, s.train_user, s.train_book, s.train_value};
    br_hybrid *h = NULL;
    assert_int_equal(br_hybrid_fit(&td, NULL, NULL, 0, &ho, eng, 3, &h), BR_OK);
    uint32_t n_cold = 0;
    for (uint32_t b = 0; b < s.n_books; b++) n_cold += s.candidate[b];
    uint32_t users[2] = {0, 1}, items[2 * 40];
    for (int e = 0; e < 3; e++) {
        assert_int_equal(br_hybrid_rank(h, eng[e], users, 2, 40, items, NULL), BR_OK);
        uint32_t listed = 0;
        for (int p = 0; p < 80; p++) {
            if (items[p] == UINT32_MAX) continue;
            assert_true(s.candidate[items[p]]);
            listed++;
        }
        assert_true(listed >= (n_cold < 40 ? n_cold : 40)); /* never shorter */
    }
    br_hybrid_free(h);
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
        cmocka_unit_test(test_split_write),
        cmocka_unit_test(test_run_matches_the_building_blocks),
        cmocka_unit_test(test_run_same_seed_same_figures),
        cmocka_unit_test(test_run_refuses_bad_options),
        cmocka_unit_test(test_run_cancelled_by_progress),
        cmocka_unit_test(test_split_cold_books),
        cmocka_unit_test(test_split_readers),
        cmocka_unit_test(test_deep_metrics_by_hand),
        cmocka_unit_test(test_run_protocols),
        cmocka_unit_test(test_fold_in_matches_a_model_without_them),
        cmocka_unit_test(test_rank_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
