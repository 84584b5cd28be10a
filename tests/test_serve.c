/*
 * test_serve.c: `bookrec serve` end to end (bookrec/serve.h): the server
 * runs in-process on a free port against a model trained here on the seed
 * universe (`generate --rng numpy`, the embedding cache seeded with the
 * reference USE-lite vectors of tests/golden, so nothing is embedded but
 * the posted book), and is driven over real sockets (tests/httputil.h):
 * every route, every error status, events reflected at once, a new book
 * recommendable at once, concurrent clients across a model reload with no
 * failed request, and Redis killed and restarted (degraded, then
 * recovered). Skipped when the use-lite model is absent (`make model`).
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <math.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "httputil.h"
#include "redisutil.h"
#include "model/model_internal.h"
#include "serve/serve_internal.h"
#include "testutil.h"

static char *tmp;
static char mdir[PATH_MAX], seed_books[PATH_MAX + 32], seed_ratings[PATH_MAX + 32];
static int have_model;

static void train_books(const char *dir, const char *store, const char *books)
{
    char cache[PATH_MAX + 32];
    mkdir(dir, 0777);
    snprintf(cache, sizeof cache, "%s/embeddings.brec", dir);
    if (access(cache, F_OK) != 0) assert_int_equal(tu_seed_embed_cache(cache), 0);
    br_train_options o = tu_seed_train_options(books, seed_ratings, dir);
    o.store = store;
    br_train_report rep;
    br_status st = br_train_run(&o, &rep);
    assert_status_detail(st, BR_OK, "");
    assert_int_equal(rep.embedded, 0); /* the cache had every description */
}

static void train(const char *dir, const char *store)
{
    train_books(dir, store, seed_books);
}

static int group_setup(void **state)
{
    tmp = tu_tmpdir("serve");
    have_model = tu_have_use_lite();
    if (!have_model) return 0;
    char seed[PATH_MAX];
    snprintf(seed, sizeof seed, "%s/seed", tmp);
    mkdir(seed, 0777);
    br_generate_options go = BR_GENERATE_OPTIONS_DEFAULT;
    go.rng = BR_GEN_NUMPY;
    if (br_generate(&go, seed, NULL) != BR_OK) return -1;
    snprintf(seed_books, sizeof seed_books, "%s/books.csv", seed);
    snprintf(seed_ratings, sizeof seed_ratings, "%s/ratings.csv", seed);
    snprintf(mdir, sizeof mdir, "%s/m", tmp);
    train(mdir, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    free(tmp);
    return 0;
}

static br_server *start(const char *dir, const char *store, const char *key, size_t max_body,
                        uint32_t poll_ms)
{
    br_server_options o = BR_SERVER_OPTIONS_DEFAULT;
    o.model_dir = dir;
    o.store = store;
    o.port = 0; /* the default thread count (2, or 8 with a Redis store) */
    o.api_key = key;
    o.max_body = max_body;
    o.poll_ms = poll_ms;
    br_server *s = NULL;
    br_status st = br_server_start(&o, &s);
    assert_status_detail(st, BR_OK, "");
    assert_true(br_server_port(s) > 0);
    return s;
}

/* GET/POST and the body as JSON (asserting the status). */
static json_t *get_json(int port, const char *path, int want)
{
    tu_resp r;
    int st = tu_get(port, path, &r);
    if (st != want) fprintf(stderr, "GET %s: %d %s\n", path, st, r.raw ? r.raw : "");
    assert_int_equal(st, want);
    char ct[128];
    assert_int_equal(tu_resp_header(&r, "Content-Type", ct, sizeof ct), 0);
    json_t *j = NULL;
    if (strstr(ct, "json")) {
        j = json_loadb(r.body, r.body_len, 0, NULL);
        assert_non_null(j);
    }
    tu_resp_free(&r);
    return j;
}

static json_t *post_json(int port, const char *path, const char *headers, const char *body,
                         int want)
{
    tu_resp r;
    int st = tu_post(port, path, headers, body, &r);
    if (st != want) fprintf(stderr, "POST %s: %d %s\n", path, st, r.raw ? r.raw : "");
    assert_int_equal(st, want);
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    assert_non_null(j);
    tu_resp_free(&r);
    return j;
}

/* An error body has exactly {"error": {"code", "message"}}. */
static void check_error(json_t *j, const char *code)
{
    json_t *e = json_object_get(j, "error");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    assert_non_null(json_string_value(json_object_get(e, "message")));
    json_decref(j);
}

static int recs_contain(json_t *j, const char *book)
{
    json_t *a = json_object_get(j, "recommendations"), *it;
    size_t i;
    json_array_foreach(
        a, i, it) if (!strcmp(json_string_value(json_object_get(it, "book_id")), book)) return 1;
    return 0;
}

static int has_source(json_t *j, const char *src)
{
    json_t *a = json_object_get(j, "recommendations"), *it, *s;
    size_t i, k;
    json_array_foreach(a, i, it) json_array_foreach(
        json_object_get(it, "sources"), k, s) if (!strcmp(json_string_value(s), src)) return 1;
    return 0;
}

static void test_routes(void **state)
{
    NEED_MODEL(have_model, "serve");
    br_server *s = start(mdir, NULL, NULL, 0, 0);
    int port = br_server_port(s);
    char version[64];
    br_server_version(s, version, sizeof version);
    assert_string_equal(version, "v000001");

    json_t *j = get_json(port, "/healthz", 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);
    j = get_json(port, "/readyz", 200);
    assert_true(json_is_true(json_object_get(j, "ready")));
    json_decref(j);

    /* a known reader: exactly the documented shape, n honoured, ordered */
    j = get_json(port, "/api/recommendations/user/5?n=7&explain=1&device=mobile&hour=22", 200);
    assert_string_equal(json_string_value(json_object_get(j, "user_id")), "5");
    assert_string_equal(json_string_value(json_object_get(j, "model_version")), "v000001");
    json_t *a = json_object_get(j, "recommendations"), *it;
    assert_int_equal(json_array_size(a), 7);
    assert_int_equal(json_object_size(j), 3);
    size_t i;
    double prev = 1e9;
    json_array_foreach(a, i, it)
    {
        assert_int_equal(json_object_size(it), 6);
        assert_non_null(json_string_value(json_object_get(it, "book_id")));
        assert_non_null(json_string_value(json_object_get(it, "title")));
        assert_true(json_integer_value(json_object_get(it, "tribe")) >= 0);
        assert_true(json_array_size(json_object_get(it, "sources")) >= 1);
        assert_true(strlen(json_string_value(json_object_get(it, "explanation"))) > 0);
        double sc = json_number_value(json_object_get(it, "score"));
        assert_true(sc <= prev + 1e-6);
        prev = sc;
    }
    assert_true(has_source(j, "collab"));
    assert_false(has_source(j, "content")); /* nothing new since the version */
    json_decref(j);
    j = get_json(port, "/api/recommendations/user/5", 200);
    assert_int_equal(json_array_size(json_object_get(j, "recommendations")), 10);
    assert_null(
        json_object_get(json_array_get(json_object_get(j, "recommendations"), 0), "explanation"));
    json_decref(j);

    /* an unknown reader: cold start, popular books spread over the tribes */
    j = get_json(port, "/api/recommendations/user/stranger-1?n=8", 200);
    a = json_object_get(j, "recommendations");
    assert_int_equal(json_array_size(a), 8);
    assert_true(has_source(j, "popular"));
    assert_false(has_source(j, "collab"));
    json_t *tr = get_json(port, "/api/tribes", 200);
    int tribes_seen[64] = {0}, distinct = 0;
    json_array_foreach(a, i, it)
    {
        char path[128];
        snprintf(path, sizeof path, "/api/books/%s",
                 json_string_value(json_object_get(it, "book_id")));
        json_t *b = get_json(port, path, 200);
        int t = (int)json_integer_value(json_object_get(b, "tribe"));
        if (t >= 0 && t < 64 && !tribes_seen[t]++) distinct++;
        json_decref(b);
    }
    assert_int_equal(distinct, (int)json_array_size(json_object_get(tr, "tribes"))); /* 4 of 4 */
    json_decref(j);

    /* the tribe map */
    assert_int_equal(json_array_size(json_object_get(tr, "tribes")), 4);
    assert_int_equal(json_array_size(json_object_get(tr, "points")), 1000);
    json_t *pt = json_array_get(json_object_get(tr, "points"), 0);
    assert_true(json_is_number(json_object_get(pt, "x")));
    assert_true(json_is_number(json_object_get(pt, "y")));
    assert_true(json_is_integer(json_object_get(pt, "tribe")));
    assert_non_null(json_string_value(json_object_get(pt, "title")));
    json_decref(tr);

    /* a book, its neighbours */
    j = get_json(port, "/api/books/3", 200);
    assert_string_equal(json_string_value(json_object_get(j, "book_id")), "3");
    assert_string_equal(json_string_value(json_object_get(j, "genre")), "Mystery");
    json_decref(j);
    j = get_json(port, "/api/books/3/similar?n=4", 200);
    a = json_object_get(j, "similar");
    assert_int_equal(json_array_size(a), 4);
    json_array_foreach(a, i, it)
        assert_string_not_equal(json_string_value(json_object_get(it, "book_id")), "3");
    json_decref(j);

    /* a reader's history */
    j = get_json(port, "/api/users/5", 200);
    assert_true(json_is_true(json_object_get(j, "known")));
    assert_true(json_array_size(json_object_get(j, "history")) > 0);
    assert_true(json_integer_value(json_object_get(j, "seen_count")) > 0);
    json_decref(j);
    j = get_json(port, "/api/users/nobody-at-all", 200);
    assert_true(json_is_false(json_object_get(j, "known")));
    assert_int_equal(json_array_size(json_object_get(j, "history")), 0);
    json_decref(j);

    /* an anonymous session: neighbours of the clicked books, never them */
    j = post_json(port, "/api/recommendations/session", NULL,
                  "{\"book_ids\": [\"3\", 5], \"n\": 5, \"explain\": true}", 200);
    a = json_object_get(j, "recommendations");
    assert_int_equal(json_array_size(a), 5);
    assert_false(recs_contain(j, "3"));
    assert_false(recs_contain(j, "5"));
    assert_true(has_source(j, "content"));
    json_decref(j);

    /* metrics: counted by route and status, the version, the histogram */
    tu_resp r;
    assert_int_equal(tu_get(port, "/metrics", &r), 200);
    assert_non_null(strstr(
        r.body,
        "bookrec_http_requests_total{route=\"/api/recommendations/user/{id}\",status=\"200\"} 3"));
    assert_non_null(strstr(r.body, "bookrec_model_info{version=\"v000001\"} 1"));
    assert_non_null(strstr(
        r.body,
        "bookrec_http_request_duration_seconds_bucket{route=\"/api/books/{id}\",le=\"+Inf\"}"));
    assert_non_null(strstr(r.body, "bookrec_store_errors_total 0"));
    assert_non_null(strstr(r.body, "\nbookrec_http_worker_threads 2\n"));
    tu_resp_free(&r);

    /* the page: served when web/ was embedded, else a JSON 404 */
    if (br__serve_web_assets_n > 0) {
        assert_int_equal(tu_get(port, "/", &r), 200);
        char ct[128];
        assert_int_equal(tu_resp_header(&r, "Content-Type", ct, sizeof ct), 0);
        assert_non_null(strstr(ct, "text/html"));
        tu_resp_free(&r);
    } else {
        check_error(get_json(port, "/", 404), "not_found");
    }
    check_error(get_json(port, "/static/no-such-file.js", 404), "not_found");
    br_server_free(s);
}

static void test_errors(void **state)
{
    NEED_MODEL(have_model, "serve");
    br_server *s = start(mdir, NULL, "s3cret", 4096, 0);
    int port = br_server_port(s);
    const char *key = "X-API-Key: s3cret\r\n";
    char path[8192], big[6000];

    /* 400: bad ids and parameters */
    memset(big, 'x', 100);
    big[100] = 0;
    snprintf(path, sizeof path, "/api/recommendations/user/%s", big);
    check_error(get_json(port, path, 400), "bad_request");
    check_error(get_json(port, "/api/recommendations/user/a%01b", 400), "bad_request");
    check_error(get_json(port, "/api/recommendations/user/5?n=0", 400), "bad_request");
    check_error(get_json(port, "/api/recommendations/user/5?n=101", 400), "bad_request");
    check_error(get_json(port, "/api/recommendations/user/5?n=abc", 400), "bad_request");
    check_error(get_json(port, "/api/recommendations/user/5?device=tv", 400), "bad_request");
    check_error(get_json(port, "/api/recommendations/user/5?hour=24", 400), "bad_request");
    check_error(get_json(port, "/api/books/3/similar?n=1000", 400), "bad_request");
    check_error(post_json(port, "/api/events", key, "{not json", 400), "bad_request");
    check_error(post_json(port, "/api/events", key, "[]", 400), "bad_request");
    check_error(post_json(port, "/api/events", key, "{\"user_id\": \"u\"}", 400), "bad_request");
    check_error(post_json(port, "/api/events", key,
                          "{\"user_id\": \"u\", \"book_id\": \"3\", \"type\": \"like\"}", 400),
                "bad_request");
    check_error(post_json(port, "/api/events", key,
                          "{\"user_id\": \"u\", \"book_id\": \"3\", \"value\": \"x\"}", 400),
                "bad_request");
    check_error(post_json(port, "/api/recommendations/session", NULL, "{\"book_ids\": 3}", 400),
                "bad_request");
    check_error(post_json(port, "/api/recommendations/session", NULL, "[\"\"]", 400),
                "bad_request");
    check_error(post_json(port, "/api/books", key, "{\"title\": \"no id\"}", 400), "bad_request");
    check_error(post_json(port, "/api/books", key, "{\"book_id\": \"z\"}", 400), "bad_request");

    /* the version's rating scale (1..5 here) and the one event rule: a 400
     * naming the problem, and nothing of the batch stored */
    static const char *const bad_events[][2] = {
        {"{\"user_id\": \"sc\", \"book_id\": \"3\", \"type\": \"rating\", \"value\": 99}",
         "rating 99 is outside the rating scale 1..5"},
        {"{\"user_id\": \"sc\", \"book_id\": \"3\", \"type\": \"rating\", \"value\": -3}",
         "rating -3 is outside the rating scale 1..5"},
        {"{\"user_id\": \"sc\", \"book_id\": \"3\", \"timestamp\": -5}", "timestamp"},
        {"{\"user_id\": \"sc\", \"book_id\": \"3\", \"type\": \"view\", \"value\": -1}", "view"},
        {"{\"user_id\": \"sc\", \"book_id\": \"3\", \"type\": \"view\", \"value\": 1e300}",
         "value must be a finite number"},
        {"[{\"user_id\": \"sc\", \"book_id\": \"4\", \"type\": \"rating\", \"value\": 4}, "
         "{\"user_id\": \"sc\", \"book_id\": \"3\", \"type\": \"rating\", \"value\": 6}]",
         "event 1: rating 6 is outside"},
    };
    for (size_t i = 0; i < sizeof bad_events / sizeof *bad_events; i++) {
        json_t *e = post_json(port, "/api/events", key, bad_events[i][0], 400);
        const char *m = json_string_value(json_object_get(json_object_get(e, "error"), "message"));
        if (!m || !strstr(m, bad_events[i][1]))
            fprintf(stderr, "event %zu: '%s' lacks '%s'\n", i, m, bad_events[i][1]);
        assert_non_null(m);
        assert_non_null(strstr(m, bad_events[i][1]));
        json_decref(e);
    }
    json_t *sc = get_json(port, "/api/users/sc", 200); /* the good first event was not kept */
    assert_true(json_is_false(json_object_get(sc, "known")));
    json_decref(sc);
    json_decref(post_json(port, "/api/events", key,
                          "{\"user_id\": \"sc\", \"book_id\": \"3\", \"type\": \"rating\", "
                          "\"value\": 4.5}",
                          200));

    /* 401: the write endpoints want the key */
    check_error(
        post_json(port, "/api/events", NULL, "{\"user_id\": \"u\", \"book_id\": \"3\"}", 401),
        "unauthorized");
    check_error(post_json(port, "/api/events", "X-API-Key: wrong\r\n",
                          "{\"user_id\": \"u\", \"book_id\": \"3\"}", 401),
                "unauthorized");
    check_error(post_json(port, "/api/books", NULL, "{}", 401), "unauthorized");
    /* ...the session endpoint reads only */
    json_decref(post_json(port, "/api/recommendations/session", NULL, "[\"3\"]", 200));

    /* 404: unknown book, unknown route */
    check_error(get_json(port, "/api/books/no-such-book", 404), "not_found");
    check_error(get_json(port, "/api/books/no-such-book/similar", 404), "not_found");
    check_error(get_json(port, "/api/nothing", 404), "not_found");
    check_error(get_json(port, "/api/books/3/nothing", 404), "not_found");
    check_error(post_json(port, "/api/events", key,
                          "{\"user_id\": \"u\", \"book_id\": \"no-such-book\"}", 404),
                "not_found");

    /* 405: wrong method */
    tu_resp r;
    assert_int_equal(tu_http(port, "DELETE", "/api/books/3", NULL, NULL, 0, &r), 405);
    char allow[64];
    assert_int_equal(tu_resp_header(&r, "Allow", allow, sizeof allow), 0);
    check_error(json_loadb(r.body, r.body_len, 0, NULL), "method_not_allowed");
    tu_resp_free(&r);
    check_error(get_json(port, "/api/events", 405), "method_not_allowed");
    check_error(post_json(port, "/api/recommendations/user/5", key, "{}", 405),
                "method_not_allowed");

    /* 413: a body over --max-body (4096 here) */
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = 0;
    big[0] = '[';
    big[sizeof big - 2] = ']';
    check_error(post_json(port, "/api/events", key, big, 413), "payload_too_large");

    /* 409: a book that exists */
    check_error(
        post_json(port, "/api/books", key, "{\"book_id\": \"3\", \"title\": \"Again\"}", 409),
        "conflict");
    br_server_free(s);
}

static void test_event_reflected(void **state)
{
    NEED_MODEL(have_model, "serve");
    br_server *s = start(mdir, NULL, NULL, 0, 0);
    int port = br_server_port(s);
    json_t *j = get_json(port, "/api/recommendations/user/7?n=5", 200);
    json_t *first = json_array_get(json_object_get(j, "recommendations"), 0);
    char book[64];
    snprintf(book, sizeof book, "%s", json_string_value(json_object_get(first, "book_id")));
    json_decref(j);
    char body[256];
    snprintf(body, sizeof body,
             "{\"events\": [{\"user_id\": \"7\", \"book_id\": \"%s\", \"type\": \"purchase\"}]}",
             book);
    j = post_json(port, "/api/events", NULL, body, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 1);
    json_decref(j);
    /* the bought book is gone from the next list; its neighbours came in */
    j = get_json(port, "/api/recommendations/user/7?n=50&explain=1", 200);
    assert_false(recs_contain(j, book));
    json_decref(j);
    j = get_json(port, "/api/users/7", 200);
    json_t *h0 = json_array_get(json_object_get(j, "history"), 0);
    assert_string_equal(json_string_value(json_object_get(h0, "book_id")), book);
    assert_string_equal(json_string_value(json_object_get(h0, "type")), "purchase");
    json_decref(j);

    /* a stranger's first click: their list turns to its neighbours */
    j = post_json(port, "/api/events", NULL,
                  "[{\"user_id\": \"new-reader\", \"book_id\": 3, \"type\": \"click\"}]", 200);
    json_decref(j);
    j = get_json(port, "/api/recommendations/user/new-reader?n=5", 200);
    assert_false(recs_contain(j, "3"));
    assert_true(has_source(j, "content"));
    json_decref(j);

    /* the events reached the log for the next train */
    br_events *ev;
    char uri[PATH_MAX + 16];
    snprintf(uri, sizeof uri, "lmdb:%s/store", mdir);
    assert_int_equal(br_events_open(uri, BR_EVENTS_RDONLY, &ev), BR_OK);
    uint64_t n = 0;
    assert_int_equal(br_events_count(ev, &n), BR_OK);
    assert_true(n >= 2);
    br_events_close(ev);
    br_server_free(s);
}

/* A server of a copy of the model directory as tmp/name (its own store,
 * so other tests' events are not in it), and the copy opened into *m. */
static br_server *start_copy(const char *name, br_model **m)
{
    char dir[PATH_MAX + 16], cmd[3 * PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/%s", tmp, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", dir, mdir, dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(br_model_open(dir, NULL, m), BR_OK);
    return start(dir, NULL, NULL, 0, 0);
}

/* POST /api/books is bounded (each posted book's vector and text stay in
 * memory until a train folds it in): past max_added, 429 limit_reached,
 * and the server goes on answering. A copy of the model: its own store. */
static void test_posted_books_capped(void **state)
{
    NEED_MODEL(have_model, "serve");
    char dir[PATH_MAX + 16], cmd[3 * PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/mcap", tmp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", dir, mdir, dir);
    assert_int_equal(system(cmd), 0);
    br_server_options o = BR_SERVER_OPTIONS_DEFAULT;
    o.model_dir = dir;
    o.port = 0;
    o.max_added = 2;
    br_server *s = NULL;
    assert_status_detail(br_server_start(&o, &s), BR_OK, "");
    int port = br_server_port(s);
    json_decref(
        post_json(port, "/api/books", NULL, "{\"book_id\": \"cap-1\", \"title\": \"One\"}", 201));
    json_decref(
        post_json(port, "/api/books", NULL, "{\"book_id\": \"cap-2\", \"title\": \"Two\"}", 201));
    check_error(
        post_json(port, "/api/books", NULL, "{\"book_id\": \"cap-3\", \"title\": \"Three\"}", 429),
        "limit_reached");
    /* a repeat is still a conflict */
    check_error(
        post_json(port, "/api/books", NULL, "{\"book_id\": \"cap-1\", \"title\": \"One\"}", 409),
        "conflict");
    json_decref(get_json(port, "/api/books/cap-2", 200));
    json_decref(get_json(port, "/api/books/cap-3", 404));
    json_decref(get_json(port, "/healthz", 200));
    br_server_free(s);
}

/* One ranking: with nothing new since the version and no context, every
 * reader is served the list train published, in its order, with its
 * scores (the published lists are the learned ranker's); a new
 * interaction then moves books on that scale. A copy of the model, so the
 * other tests' events are not in its store. */
static void test_served_is_published(void **state)
{
    NEED_MODEL(have_model, "serve");
    br_model *m;
    br_server *s = start_copy("mpub", &m);
    int port = br_server_port(s);
    size_t nr, top;
    const char *const *readers = br_model_readers(m, &nr);
    const float *sc;
    const int32_t *lists = br_model_lists(m, &sc, &top);
    const br_catalog *cat = br_model_catalog(m);
    assert_true(nr > 0 && top > 0);
    for (size_t r = 0; r < nr; r++) {
        char path[128];
        snprintf(path, sizeof path, "/api/recommendations/user/%s?n=%zu", readers[r], top);
        json_t *j = get_json(port, path, 200);
        json_t *a = json_object_get(j, "recommendations");
        size_t want = 0;
        while (want < top && lists[r * top + want] >= 0) want++;
        assert_int_equal(json_array_size(a), want);
        for (size_t i = 0; i < want; i++) {
            json_t *it = json_array_get(a, i);
            assert_string_equal(json_string_value(json_object_get(it, "book_id")),
                                br_catalog_book(cat, (uint32_t)lists[r * top + i])->id);
            assert_true(fabs(json_number_value(json_object_get(it, "score")) - sc[r * top + i]) <
                        1e-5 * (1 + fabs(sc[r * top + i])));
        }
        json_decref(j);
    }
    /* a new interaction: its neighbours come in, the clicked book goes */
    const char *who = readers[0];
    char body[256], path[128];
    snprintf(body, sizeof body, "{\"user_id\": \"%s\", \"book_id\": \"%s\", \"type\": \"click\"}",
             who, br_catalog_book(cat, (uint32_t)lists[0])->id);
    json_decref(post_json(port, "/api/events", NULL, body, 200));
    snprintf(path, sizeof path, "/api/recommendations/user/%s?n=%zu", who, top);
    json_t *j = get_json(port, path, 200);
    assert_true(has_source(j, "content"));
    assert_false(recs_contain(j, br_catalog_book(cat, (uint32_t)lists[0])->id));
    json_decref(j);
    br_server_free(s);
    br_model_close(m);
}

/* The first `want` books of cat whose descriptions no other book has (the
 * seed universe repeats many): their embeddings are unique, so a posted
 * copy of one is its nearest neighbour. */
static void unique_books(const br_catalog *cat, uint32_t *out, size_t want)
{
    uint32_t n = br_catalog_count(cat);
    size_t got = 0;
    for (uint32_t i = 0; i < n && got < want; i++) {
        int dup = 0;
        for (uint32_t k = 0; k < n && !dup; k++)
            dup = k != i && !strcmp(br_catalog_book(cat, i)->description,
                                    br_catalog_book(cat, k)->description);
        if (!dup) out[got++] = i;
    }
    assert_int_equal(got, want);
}

static void test_new_book(void **state)
{
    NEED_MODEL(have_model, "serve");
    br_server *s = start(mdir, NULL, NULL, 0, 0);
    int port = br_server_port(s);
    /* a book whose description no other book has, posted again word for
     * word as a new book: its nearest neighbour */
    br_catalog *cat;
    assert_int_equal(br_catalog_load(seed_books, NULL, &cat, NULL), BR_OK);
    uint32_t pick;
    unique_books(cat, &pick, 1);
    char pick_id[64], path[128];
    snprintf(pick_id, sizeof pick_id, "%s", br_catalog_book(cat, pick)->id);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    json_t *nb =
        json_pack("{s:s, s:s, s:s, s:i}", "book_id", "fresh-1", "title", "Fresh", "description",
                  br_catalog_book(cat, pick)->description, "year", tm.tm_year + 1900);
    br_catalog_free(cat);
    char *body = json_dumps(nb, 0);
    json_decref(nb);
    snprintf(path, sizeof path, "/api/books/%s", pick_id);
    json_t *bp = get_json(port, path, 200);
    json_t *j = post_json(port, "/api/books", NULL, body, 201);
    free(body);
    assert_int_equal(json_integer_value(json_object_get(j, "tribe")),
                     json_integer_value(json_object_get(bp, "tribe")));
    json_decref(j);
    json_decref(bp);
    j = get_json(port, "/api/books/fresh-1", 200);
    assert_string_equal(json_string_value(json_object_get(j, "title")), "Fresh");
    json_decref(j);
    snprintf(path, sizeof path, "/api/books/%s/similar?n=3", pick_id);
    j = get_json(port, path, 200);
    json_t *top = json_array_get(json_object_get(j, "similar"), 0);
    assert_string_equal(json_string_value(json_object_get(top, "book_id")), "fresh-1");
    assert_true(json_number_value(json_object_get(top, "score")) > 0.999);
    json_decref(j);
    /* a reader who clicks that book is offered the new one (near the
     * top: it is the closest, but has no popularity yet) */
    char ev[256];
    snprintf(ev, sizeof ev, "{\"user_id\": \"nb-reader\", \"book_id\": \"%s\"}", pick_id);
    json_decref(post_json(port, "/api/events", NULL, ev, 200));
    j = get_json(port, "/api/recommendations/user/nb-reader?n=10", 200);
    assert_true(recs_contain(j, "fresh-1"));
    assert_false(has_source(j, "recent")); /* the recency rule is off by default */
    json_decref(j);
    j = post_json(port, "/api/books", NULL, "{\"book_id\": \"fresh-1\", \"title\": \"Again\"}",
                  409);
    json_decref(j);
    br_server_free(s);
}

/* The request's context: device=mobile caps a tribe at 3 books; a night
 * hour weighs content more; a recent book carries the "recent" source. */
static int tribe_of(int port, const char *book)
{
    char path[128];
    snprintf(path, sizeof path, "/api/books/%s", book);
    json_t *b = get_json(port, path, 200);
    int t = (int)json_integer_value(json_object_get(b, "tribe"));
    json_decref(b);
    return t;
}

static double score_of(json_t *j, const char *book)
{
    json_t *a = json_object_get(j, "recommendations"), *it;
    size_t i;
    json_array_foreach(
        a, i, it) if (!strcmp(json_string_value(json_object_get(it, "book_id")),
                              book)) return json_number_value(json_object_get(it, "score"));
    return -1;
}

static void test_context(void **state)
{
    NEED_MODEL(have_model, "serve");
    br_server *s = start(mdir, NULL, NULL, 0, 0);
    int port = br_server_port(s);
    json_t *j = get_json(port, "/api/recommendations/user/5?n=10&device=mobile", 200);
    json_t *a = json_object_get(j, "recommendations"), *it;
    assert_int_equal(json_array_size(a), 10);
    int per[64] = {0};
    size_t i;
    json_array_foreach(a, i, it)
    {
        int t = tribe_of(port, json_string_value(json_object_get(it, "book_id")));
        assert_true(t >= 0 && t < 64);
        assert_true(++per[t] <= 3);
    }
    json_decref(j);

    /* a book that only content proposed (a neighbour of a new interaction)
     * scores higher at 23:00 than at noon */
    json_decref(post_json(port, "/api/events", NULL,
                          "{\"user_id\": \"ctx-5\", \"book_id\": \"3\", \"type\": \"click\"}",
                          200));
    json_t *day = get_json(port, "/api/recommendations/user/ctx-5?n=100&hour=12", 200);
    json_t *night = get_json(port, "/api/recommendations/user/ctx-5?n=100&hour=23", 200);
    int compared = 0;
    json_array_foreach(json_object_get(day, "recommendations"), i, it)
    {
        json_t *src = json_object_get(it, "sources");
        if (json_array_size(src) != 1 ||
            strcmp(json_string_value(json_array_get(src, 0)), "content") != 0)
            continue;
        const char *book = json_string_value(json_object_get(it, "book_id"));
        double sn = score_of(night, book);
        if (sn < 0) continue;
        assert_true(sn > json_number_value(json_object_get(it, "score")));
        compared++;
    }
    assert_true(compared > 0);
    json_decref(day);
    json_decref(night);
    br_server_free(s);

    /* the recency rule, asked for: books of the last years move up, marked */
    br_server_options o = BR_SERVER_OPTIONS_DEFAULT;
    o.model_dir = mdir;
    o.port = 0;
    o.rank.w_recent = 0.5f;
    assert_int_equal(br_server_start(&o, &s), BR_OK);
    json_decref(post_json(br_server_port(s), "/api/books", NULL,
                          "{\"book_id\": \"ctx-new\", \"title\": \"This Year\", \"year\": 2026, "
                          "\"description\": \"Detective Harding is on the case.\"}",
                          201));
    json_decref(post_json(br_server_port(s), "/api/events", NULL,
                          "{\"user_id\": \"ctx-6\", \"book_id\": \"3\"}", 200));
    j = get_json(br_server_port(s), "/api/recommendations/user/ctx-6?n=20", 200);
    (void)a;
    assert_true(has_source(j, "recent") || !recs_contain(j, "ctx-new"));
    json_decref(j);
    br_server_free(s);
}

/* A book nobody has rated, by the author of the books a reader gave 5
 * stars (the seed catalogue with authors: "Writer i", those books "Ann
 * Vale"; the new book has the first one's genre and description): train
 * publishes it on that reader's list (its ALS vector predicted from its
 * content, src/hybrid/coldvec.c), and serve explains it by what it shares
 * with the reader's books, never by other readers' taste. */
static void test_cold_book_explained(void **state)
{
    NEED_MODEL(have_model, "serve");
    char dir[PATH_MAX + 16], books[PATH_MAX + 32], line[4096], path[256];
    snprintf(dir, sizeof dir, "%s/coldb", tmp);
    snprintf(books, sizeof books, "%s/coldb-books.csv", tmp);
    /* the first reader of the ratings and their 5-star books */
    FILE *in = fopen(seed_ratings, "r");
    assert_non_null(in);
    assert_non_null(fgets(line, sizeof line, in));
    char reader[64] = "";
    int loved[8], n_loved = 0;
    while (fgets(line, sizeof line, in)) {
        char u[64];
        int b;
        float v;
        if (sscanf(line, "%63[^,],%d,%f", u, &b, &v) != 3) continue;
        if (!*reader) snprintf(reader, sizeof reader, "%s", u);
        if (!strcmp(u, reader) && v >= 5 && n_loved < 8) loved[n_loved++] = b;
    }
    fclose(in);
    assert_true(n_loved >= 2);
    in = fopen(seed_books, "r");
    FILE *out = fopen(books, "w");
    assert_non_null(in);
    assert_non_null(out);
    assert_non_null(fgets(line, sizeof line, in));
    fprintf(out, "book_id,authors,title,genre,description\n");
    char first[4096] = "";
    while (fgets(line, sizeof line, in)) {
        int i = atoi(line), ann = 0;
        for (int k = 0; k < n_loved; k++) ann |= loved[k] == i;
        const char *rest = strchr(line, ',') + 1;
        fprintf(out, "%d,%s,%s", i, ann ? "Ann Vale" : "Writer", rest);
        if (i == loved[0]) snprintf(first, sizeof first, "%s", strchr(rest, ',') + 1);
    }
    assert_true(*first);
    fprintf(out, "5000,Ann Vale,The Return,%s", first); /* genre,description\n */
    fclose(in);
    fclose(out);
    train_books(dir, NULL, books);
    br_model *m;
    assert_int_equal(br_model_open(dir, NULL, &m), BR_OK);
    const br_catalog *cat = br_model_catalog(m);
    size_t nr, top, r = 0;
    const char *const *readers = br_model_readers(m, &nr);
    const float *sc;
    const int32_t *lists = br_model_lists(m, &sc, &top);
    const int32_t *counts = br_model_rating_counts(m);
    int32_t cold = br_catalog_find(cat, "5000");
    assert_true(cold >= 0);
    assert_int_equal(counts[cold], 0);
    while (r < nr && strcmp(readers[r], reader)) r++;
    assert_true(r < nr);
    int listed = 0;
    for (size_t p = 0; p < top; p++) listed |= lists[r * top + p] == cold;
    assert_true(listed);
    br_server *s = start(dir, NULL, NULL, 0, 0);
    snprintf(path, sizeof path, "/api/recommendations/user/%s?n=%zu&explain=1", reader, top);
    json_t *j = get_json(br_server_port(s), path, 200), *it;
    size_t i, said = 0;
    json_array_foreach(json_object_get(j, "recommendations"), i, it)
    {
        if (strcmp(json_string_value(json_object_get(it, "book_id")), "5000")) continue;
        const char *why = json_string_value(json_object_get(it, "explanation"));
        assert_non_null(why);
        fprintf(stderr, "%s\n", why);
        assert_non_null(strstr(why, "nobody has rated it yet"));
        assert_null(strstr(why, "readers with similar taste"));
        said++;
    }
    assert_int_equal(said, 1);
    json_decref(j);
    br_server_free(s);
    br_model_close(m);
}

/* Negative feedback (docs/api.md, "Re-ranking"): a rating of 1 POSTed
 * for a book of a reader's list lowers that book's neighbours in the
 * next response (a click raises them), and no explanation then names the
 * book as a reason. A copy of the model: its own store. */
static void test_dislike_event(void **state)
{
    NEED_MODEL(have_model, "serve");
    br_model *m;
    br_server *s = start_copy("mneg", &m);
    int port = br_server_port(s);
    size_t nr, top;
    const char *const *readers = br_model_readers(m, &nr);
    const float *sc, *nsc;
    const int32_t *lists = br_model_lists(m, &sc, &top);
    const int32_t *nbr = br_model_neighbours(m, &nsc);
    const br_catalog *cat = br_model_catalog(m);
    int lowered = 0;
    /* readers until one has a neighbour of the disliked book on the list
     * both before and after (at least 2; every reader's must be lower) */
    for (size_t r = 0; (r < 2 || !lowered) && r < 16 && r < nr; r++) {
        uint32_t x = (uint32_t)lists[r * top];
        const br_book *bx = br_catalog_book(cat, x);
        char path[160], body[256];
        snprintf(path, sizeof path, "/api/recommendations/user/%s?n=%zu&explain=1", readers[r],
                 top);
        json_t *before = get_json(port, path, 200);
        snprintf(body, sizeof body,
                 "{\"user_id\": \"%s\", \"book_id\": \"%s\", \"type\": \"rating\", "
                 "\"value\": 1}",
                 readers[r], bx->id);
        json_decref(post_json(port, "/api/events", NULL, body, 200));
        json_t *after = get_json(port, path, 200);
        assert_false(recs_contain(after, bx->id));
        const br_serve_rank cfg = BR_SERVE_RANK_DEFAULT; /* the neighbours a seed brings */
        for (size_t j = 0; j < cfg.neighbours && j < BR_MODEL_NEIGHBOURS; j++) {
            int32_t nb = nbr[(size_t)x * BR_MODEL_NEIGHBOURS + j];
            if (nb < 0 || nsc[(size_t)x * BR_MODEL_NEIGHBOURS + j] <= 0) continue;
            const char *id = br_catalog_book(cat, (uint32_t)nb)->id;
            if (!recs_contain(before, id) || !recs_contain(after, id)) continue;
            assert_true(score_of(after, id) < score_of(before, id));
            lowered++;
        }
        json_t *it;
        size_t i;
        json_array_foreach(json_object_get(after, "recommendations"), i, it)
        {
            const char *why = json_string_value(json_object_get(it, "explanation"));
            assert_non_null(why);
            if (strstr(why, bx->title)) fprintf(stderr, "explained by a dislike: %s\n", why);
            assert_null(strstr(why, bx->title));
        }
        json_decref(before);
        json_decref(after);
    }
    assert_true(lowered > 0);
    br_server_free(s);
    br_model_close(m);
}

/* ------------------------------------------- keep-alive, list order -- */

/* Reads one HTTP response (headers, then Content-Length bytes) from fd into
 * buf; returns its length or -1. */
static int read_response(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        buf[len] = 0;
        const char *sep = strstr(buf, "\r\n\r\n");
        if (sep) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (!cl || cl > sep) return -1;
            size_t want = (size_t)(sep + 4 - buf) + strtoul(cl + 17, NULL, 10);
            if (len >= want) return (int)len;
        }
        if (len + 1 >= cap) return -1;
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r <= 0) return -1;
        len += (size_t)r;
    }
}

/* HTTP/1.1 connections stay open across requests (a reconnect per request
 * used to cost more than the handler: libmicrohttpd closes a connection
 * whose response was queued on the first, headers-only, handler call). */
static void test_keep_alive(void **state)
{
    NEED_MODEL(have_model, "serve");
    br_server *s = start(mdir, NULL, NULL, 0, 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)br_server_port(s))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static const char *paths[] = {"/api/recommendations/user/5?n=3", "/healthz", "/api/books/3",
                                  "/api/recommendations/user/nobody?n=2",
                                  "/api/recommendations/user/5?n=3"};
    char buf[65536], first[65536] = "";
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        char req[256];
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", paths[i]);
        assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
        int len = read_response(fd, buf, sizeof buf);
        assert_true(len > 0);
        assert_memory_equal(buf, "HTTP/1.1 200", 12);
        assert_null(strcasestr(buf, "Connection: close"));
        char *body = strstr(buf, "\r\n\r\n") + 4;
        if (i == 0) snprintf(first, sizeof first, "%s", body);
        if (i == 4) assert_string_equal(body, first); /* same answer on a reused connection */
    }
    close(fd);
    br_server_free(s);
}

/* The first n of a list are the list for n: the server orders only the head
 * of its candidates (a partial selection), which must agree with a full
 * sort, for every reader and length. */
static void test_list_prefixes(void **state)
{
    NEED_MODEL(have_model, "serve");
    br_server *s = start(mdir, NULL, NULL, 0, 0);
    int port = br_server_port(s);
    for (int u = 0; u < 100; u += 7) {
        char path[128];
        snprintf(path, sizeof path, "/api/recommendations/user/%d?n=100", u);
        json_t *full = get_json(port, path, 200);
        json_t *fa = json_object_get(full, "recommendations");
        assert_true(json_array_size(fa) >= 40);
        for (int i = 1; i < (int)json_array_size(fa); i++)
            assert_true(
                json_number_value(json_object_get(json_array_get(fa, (size_t)i), "score")) <=
                json_number_value(json_object_get(json_array_get(fa, (size_t)i - 1), "score")));
        static const int ns[] = {1, 3, 10, 25};
        for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
            snprintf(path, sizeof path, "/api/recommendations/user/%d?n=%d", u, ns[k]);
            json_t *part = get_json(port, path, 200);
            json_t *pa = json_object_get(part, "recommendations");
            assert_int_equal(json_array_size(pa), (size_t)ns[k]);
            for (size_t i = 0; i < json_array_size(pa); i++)
                assert_string_equal(
                    json_string_value(json_object_get(json_array_get(pa, i), "book_id")),
                    json_string_value(json_object_get(json_array_get(fa, i), "book_id")));
            json_decref(part);
        }
        json_decref(full);
    }
    br_server_free(s);
}

/* ------------------------------------------------ load across a reload -- */

typedef struct load {
    int port;
    atomic_int stop;
    atomic_long ok, failed;
    int id;
} load;

static void *hammer(void *arg)
{
    load *l = arg;
    static const char *paths[] = {"/api/recommendations/user/%d?n=10&explain=1",
                                  "/api/recommendations/user/%d", "/api/books/%d",
                                  "/api/books/%d/similar", "/api/users/%d"};
    unsigned k = (unsigned)l->id * 7919u;
    while (!atomic_load(&l->stop)) {
        char path[128];
        k = k * 1103515245u + 12345u;
        snprintf(path, sizeof path, paths[(k >> 8) % 5], (int)((k >> 16) % 120));
        tu_resp r;
        int st = tu_get(l->port, path, &r);
        /* readers 100..119 are unknown (cold start, 200); books all exist */
        if (st == 200)
            atomic_fetch_add(&l->ok, 1);
        else {
            fprintf(stderr, "GET %s -> %d %s\n", path, st, r.raw ? r.raw : "");
            atomic_fetch_add(&l->failed, 1);
        }
        tu_resp_free(&r);
    }
    return NULL;
}

/* A new version v<id> beside v000001: a copy with its own id, then
 * `current` re-pointed as train does (a symlink renamed over). */
static void publish_copy(const char *dir, const char *id)
{
    char cmd[8 * PATH_MAX];
    snprintf(cmd, sizeof cmd,
             "cp -r '%s/versions/v000001' '%s/versions/.tmp-%s' && "
             "sed -i 's/\"version\": \"v000001\"/\"version\": \"%s\"/' "
             "'%s/versions/.tmp-%s/manifest.json' && "
             "mv '%s/versions/.tmp-%s' '%s/versions/%s' && "
             "ln -sfn 'versions/%s' '%s/current.tmp' && mv -T '%s/current.tmp' '%s/current'",
             dir, dir, id, id, dir, id, dir, id, dir, id, id, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
}

static void test_concurrent_reload(void **state)
{
    NEED_MODEL(have_model, "serve");
    char dir[PATH_MAX + 16], cmd[8 * PATH_MAX];
    snprintf(dir, sizeof dir, "%s/reload", tmp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", dir, mdir, dir);
    assert_int_equal(system(cmd), 0);
    /* the copy's manifest names the original store: serve the copy's */
    char store[PATH_MAX + 32];
    snprintf(store, sizeof store, "lmdb:%s/store", dir);
    br_server *s = start(dir, store, NULL, 0, 20);
    load l = {.port = br_server_port(s)};
    enum { T = 4 };
    load ls[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        ls[i] = l;
        ls[i].id = i + 1;
        pthread_create(&th[i], NULL, hammer, &ls[i]);
    }
    while (atomic_load(&ls[0].ok) < 50) tu_sleep_ms(5);
    /* a version published by the watcher's poll, then forced reloads */
    publish_copy(dir, "v000002");
    char version[64] = "";
    for (int i = 0; i < 1000 && strcmp(version, "v000002") != 0; i++) {
        tu_sleep_ms(10);
        br_server_version(s, version, sizeof version);
    }
    assert_string_equal(version, "v000002");
    publish_copy(dir, "v000003");
    assert_int_equal(br_server_reload(s, 0), BR_OK); /* SIGHUP's path */
    br_server_version(s, version, sizeof version);
    assert_string_equal(version, "v000003");
    for (int i = 0; i < 3; i++) assert_int_equal(br_server_reload(s, 1), BR_OK);
    long before = 0;
    for (int i = 0; i < T; i++) before += atomic_load(&ls[i].ok);
    for (;;) { /* requests keep flowing after the swaps */
        long now = 0;
        for (int i = 0; i < T; i++) now += atomic_load(&ls[i].ok);
        if (now >= before + 100) break;
        tu_sleep_ms(5);
    }
    long ok = 0, failed = 0;
    for (int i = 0; i < T; i++) {
        atomic_store(&ls[i].stop, 1);
        pthread_join(th[i], NULL);
        ok += atomic_load(&ls[i].ok);
        failed += atomic_load(&ls[i].failed);
    }
    printf("[          ] %ld requests across 5 reloads, %ld failed\n", ok + failed, failed);
    assert_int_equal(failed, 0);
    tu_resp r;
    assert_int_equal(tu_get(l.port, "/metrics", &r), 200);
    assert_non_null(strstr(r.body, "bookrec_model_info{version=\"v000003\"} 1"));
    assert_non_null(strstr(r.body, "bookrec_reloads_total 5"));
    tu_resp_free(&r);
    br_server_free(s);
}

/* ---------------------------------------------------------------- redis -- */

static void test_redis_outage(void **state)
{
    NEED_MODEL(have_model, "serve");
    if (!tu_redis_binary()) {
        printf("[  SKIP    ] redis-server is not installed\n");
        skip();
    }
    tu_redis rd = {0};
    assert_int_equal(tu_redis_start(&rd, tmp), 0);
    char dir[PATH_MAX + 16], uri[64], cmd[8 * PATH_MAX];
    snprintf(dir, sizeof dir, "%s/mredis", tmp);
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d", rd.port);
    mkdir(dir, 0777);
    snprintf(cmd, sizeof cmd, "cp '%s/embeddings.brec' '%s/'", mdir, dir);
    assert_int_equal(system(cmd), 0);
    train(dir, uri);
    br_server *s = start(dir, NULL, NULL, 0, 50);
    int port = br_server_port(s);
    json_t *j = get_json(port, "/readyz", 200);
    assert_string_equal(json_string_value(json_object_get(j, "store")), "redis");
    json_decref(j);
    j = get_json(port, "/api/recommendations/user/5", 200);
    assert_true(has_source(j, "collab"));
    assert_false(has_source(j, "degraded"));
    json_decref(j);
    json_decref(
        post_json(port, "/api/events", NULL, "{\"user_id\": \"r1\", \"book_id\": \"3\"}", 200));

    tu_redis_kill(&rd);
    /* /readyz follows the store by itself, before any request fails */
    int down = 0;
    for (int i = 0; i < 200 && !down; i++) { /* the watcher checks every poll (50 ms) */
        tu_resp r;
        down = tu_get(port, "/readyz", &r) == 503;
        tu_resp_free(&r);
        if (!down) tu_sleep_ms(50);
    }
    assert_true(down);
    /* answered from what the server holds, marked; /readyz says why */
    j = get_json(port, "/api/recommendations/user/5?explain=1", 200);
    assert_true(has_source(j, "degraded"));
    assert_int_equal(json_array_size(json_object_get(j, "recommendations")), 10);
    json_decref(j);
    j = get_json(port, "/api/recommendations/user/r1", 200); /* the held click seeds content */
    assert_true(has_source(j, "content"));
    assert_false(recs_contain(j, "3"));
    json_decref(j);
    check_error(get_json(port, "/readyz", 503), "unavailable");
    check_error(
        post_json(port, "/api/events", NULL, "{\"user_id\": \"r1\", \"book_id\": \"4\"}", 503),
        "unavailable");
    json_decref(get_json(port, "/api/books/3", 200));

    /* Redis back, but empty (it persists nothing): reachable again by itself,
     * yet not ready while the store serves no version; a rollback to the
     * served version republishes it, and the server is ready by itself */
    assert_int_equal(tu_redis_start(&rd, tmp), 0);
    int empty = 0;
    for (int i = 0; i < 600 && !empty; i++) { /* the probe backs off to 8 s at most */
        tu_resp r;
        empty = tu_get(port, "/readyz", &r) == 503 && strstr(r.body, "serves no model version");
        tu_resp_free(&r);
        if (!empty) tu_sleep_ms(50);
    }
    assert_true(empty);
    char served[BR_MODEL_ID_MAX];
    br_server_version(s, served, sizeof served);
    assert_int_equal(br_models_rollback(dir, served, NULL, NULL), BR_OK);
    int ready = 0;
    for (int i = 0; i < 200 && !ready; i++) { /* checked every poll (50 ms here) */
        tu_resp r;
        ready = tu_get(port, "/readyz", &r) == 200;
        tu_resp_free(&r);
        if (!ready) tu_sleep_ms(50);
    }
    assert_true(ready);
    j = get_json(port, "/api/recommendations/user/5", 200);
    assert_false(has_source(j, "degraded"));
    json_decref(j);
    /* the rollback put back what the emptied store lost besides the lists:
     * reader 5's seen set and history, from the version's ratings */
    j = get_json(port, "/api/users/5", 200);
    assert_true(json_integer_value(json_object_get(j, "seen_count")) > 0);
    assert_true(json_array_size(json_object_get(j, "history")) > 0);
    json_decref(j);
    json_decref(
        post_json(port, "/api/events", NULL, "{\"user_id\": \"r1\", \"book_id\": \"4\"}", 200));
    tu_resp r;
    assert_int_equal(tu_get(port, "/metrics", &r), 200);
    assert_null(strstr(r.body, "bookrec_store_errors_total 0\n"));
    assert_non_null(strstr(r.body, "bookrec_store_up 1"));
    assert_non_null(strstr(r.body, "\nbookrec_http_worker_threads 8\n"));
    tu_resp_free(&r);
    br_server_free(s);
    tu_redis_stop(&rd);
}

/* Posted books live in the store with their vectors: a restarted server,
 * and a new version, serve them again (details, image, neighbours) without
 * the posting server's memory; a record from another encoder is embedded
 * again. The model directory is a copy (posted books stay in its store). */
static void test_posted_survive(void **state)
{
    NEED_MODEL(have_model, "serve");
    char dir[PATH_MAX + 16], cmd[3 * PATH_MAX + 64], uri[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/mposted", tmp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", dir, mdir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(uri, sizeof uri, "lmdb:%s/store", dir);
    br_server *s = start(dir, NULL, NULL, 0, 0);
    int port = br_server_port(s);
    json_t *j = post_json(port, "/api/books", NULL,
                          "{\"book_id\": \"kept-1\", \"title\": \"Inferno (Robert Langdon, #4)\", "
                          "\"authors\": \"Dan Brown\", \"tags\": \"thriller|art\", "
                          "\"description\": \"A professor wakes in a Florence hospital.\", "
                          "\"image_url\": \"https://covers.example/kept-1.jpg\", \"year\": 2013}",
                          201);
    assert_true(json_is_true(json_object_get(j, "stored")));
    json_decref(j);
    check_error(post_json(port, "/api/books", NULL,
                          "{\"book_id\": \"kept-2\", \"title\": \"T\", \"image_url\": 7}", 400),
                "bad_request");
    json_t *sim0 = get_json(port, "/api/books/kept-1/similar?n=3", 200);
    br_server_free(s);

    /* the store finds it by id beside the version's books */
    br_store *st = NULL;
    assert_int_equal(br_store_open(uri, 0, &st), BR_OK);
    br_store_book *bk = NULL;
    assert_int_equal(br_store_get_book(st, "kept-1", &bk), BR_OK);
    assert_string_equal(bk->title, "Inferno (Robert Langdon, #4)");
    assert_string_equal(bk->image_url, "https://covers.example/kept-1.jpg");
    br_free(bk);
    /* a record embedded by another encoder: the server embeds it again (the
     * model embeds descriptions, so it lands on the book it copies) */
    br_catalog *cat;
    assert_int_equal(br_catalog_load(seed_books, NULL, &cat, NULL), BR_OK);
    uint32_t picks[4]; /* the first ones are posted again by the tests above */
    unique_books(cat, picks, 4);
    uint32_t pick = picks[3];
    char pick_id[64], path[128];
    snprintf(pick_id, sizeof pick_id, "%s", br_catalog_book(cat, pick)->id);
    float other[3] = {1, 0, 0};
    br_store_posted pb = {.book = {"kept-other", "Other", NULL, NULL, NULL, NULL, 1999, -1},
                          .description = br_catalog_book(cat, pick)->description,
                          .encoder = "some-other-encoder",
                          .text_template = "description",
                          .vec = other,
                          .dim = 3};
    assert_int_equal(br_store_put_posted(st, &pb), BR_OK);
    br_catalog_free(cat);
    br_store_close(st);

    /* a new process on the same store: the book, its image, its neighbours */
    s = start(dir, NULL, NULL, 0, 0);
    port = br_server_port(s);
    j = get_json(port, "/api/books/kept-1", 200);
    assert_string_equal(json_string_value(json_object_get(j, "image_url")),
                        "https://covers.example/kept-1.jpg");
    assert_string_equal(json_string_value(json_object_get(j, "tags")), "thriller|art");
    assert_string_equal(json_string_value(json_object_get(j, "description")),
                        "A professor wakes in a Florence hospital.");
    assert_int_equal(json_integer_value(json_object_get(j, "year")), 2013);
    json_decref(j);
    json_t *sim1 = get_json(port, "/api/books/kept-1/similar?n=3", 200);
    json_t *a0 = json_array_get(json_object_get(sim0, "similar"), 0),
           *a1 = json_array_get(json_object_get(sim1, "similar"), 0);
    assert_string_equal(json_string_value(json_object_get(a1, "book_id")),
                        json_string_value(json_object_get(a0, "book_id")));
    assert_true(fabs(json_number_value(json_object_get(a1, "score")) -
                     json_number_value(json_object_get(a0, "score"))) < 1e-5);
    json_decref(sim0);
    json_decref(sim1);
    j = post_json(port, "/api/recommendations/session", NULL, "[\"kept-1\"]", 200);
    assert_true(json_array_size(json_object_get(j, "recommendations")) > 0);
    assert_false(recs_contain(j, "kept-1"));
    json_decref(j);
    snprintf(path, sizeof path, "/api/books/%s/similar?n=1", pick_id);
    j = get_json(port, path, 200);
    json_t *top = json_array_get(json_object_get(j, "similar"), 0);
    assert_string_equal(json_string_value(json_object_get(top, "book_id")), "kept-other");
    assert_true(json_number_value(json_object_get(top, "score")) > 0.999);
    json_decref(j);
    br_server_free(s);

    /* a new version: still served */
    train(dir, NULL);
    s = start(dir, NULL, NULL, 0, 0);
    j = get_json(br_server_port(s), "/api/books/kept-1", 200);
    assert_string_equal(json_string_value(json_object_get(j, "model_version")), "v000002");
    assert_string_equal(json_string_value(json_object_get(j, "image_url")),
                        "https://covers.example/kept-1.jpg");
    json_decref(j);
    br_server_free(s);
}

/* A 400 whose body is valid JSON (jansson refuses invalid UTF-8) and whose
 * message holds `says`. */
static void check_400(int port, const char *path, const char *says)
{
    json_t *j = get_json(port, path, 400);
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    if (!msg || !strstr(msg, says)) fprintf(stderr, "GET %s: '%s' lacks '%s'\n", path, msg, says);
    assert_non_null(msg);
    assert_non_null(strstr(msg, says));
    json_decref(j);
}

static void check_header(const tu_resp *r, const char *name, const char *want)
{
    char v[256];
    int found = tu_resp_header(r, name, v, sizeof v) == 0;
    if (!want) {
        assert_false(found);
        return;
    }
    if (!found || strcmp(v, want) != 0)
        fprintf(stderr, "%s: '%s', want '%s'\n", name, found ? v : "(none)", want);
    assert_true(found);
    assert_string_equal(v, want);
}

/* GET /healthz over IPv6 loopback: 1 when answered with 200. */
static int healthz_v6(int port)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    a.sin6_addr = in6addr_loopback;
    char buf[256] = "";
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    const char req[] = "GET /healthz HTTP/1.0\r\n\r\n";
    if (ok) ok = send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1);
    if (ok) ok = recv(fd, buf, sizeof buf - 1, MSG_WAITALL) > 12;
    if (fd >= 0) close(fd);
    return ok && !strncmp(buf + 9, "200", 3);
}

/* The HTTP layer's details: ids and arguments checked as UTF-8 without NUL,
 * error texts, Allow per route, HEAD, OPTIONS and CORS, one rule for the
 * explain flag, the reader list and the model versions, addresses by name
 * and IPv6, and the framing errors libmicrohttpd answers itself. */
static void test_http_details(void **state)
{
    NEED_MODEL(have_model, "serve");
    br_server *s = start(mdir, NULL, "k", 0, 0);
    int port = br_server_port(s);
    tu_resp r;

    /* an encoded NUL or bytes that are not UTF-8: 400, in valid JSON */
    check_400(port, "/api/books/3%00", "encoded NUL");
    check_400(port, "/api/recommendations/user/a%00b", "encoded NUL");
    check_400(port, "/api/recommendations/user/%00", "encoded NUL");
    check_400(port, "/api/recommendations/user/5?n=1%00", "query argument 'n' has an encoded NUL");
    check_400(port, "/api/recommendations/user/5?device=mobile%00x", "argument 'device'");
    check_400(port, "/api/recommendations/user/%FF%FE", "not UTF-8");
    check_400(port, "/api/users/%C3", "not UTF-8"); /* cut short */
    check_400(port, "/api/recommendations/user/5?x%FF=1", "argument's name");
    check_400(port, "/api/books/3/similar?n=%C0%80", "encoded NUL"); /* overlong, as sent */
    /* ...while UTF-8 ids are ids */
    json_t *j = get_json(port, "/api/recommendations/user/%C3%A9l%C3%A8ve", 200);
    assert_string_equal(json_string_value(json_object_get(j, "user_id")), "\xc3\xa9l\xc3\xa8ve");
    json_decref(j);

    /* error texts: the id's whole length, no doubled words */
    char path[512], x[201];
    memset(x, 'x', 200);
    x[200] = 0;
    snprintf(path, sizeof path, "/api/recommendations/user/%s", x);
    j = get_json(port, path, 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                        "reader id 'xxxxxxxxxxxxxxxxxxxx...' is 200 bytes (at most 63)");
    json_decref(j);
    snprintf(path, sizeof path, "/api/books/%.64s/similar", x);
    check_400(port, path, "book id 'xxxxxxxxxxxxxxxxxxxx...' is 64 bytes (at most 63)");
    j = get_json(port, "/api/recommendations/user/", 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                        "reader id is empty");
    json_decref(j);

    /* Allow names the route's own methods; HEAD is a GET without a body */
    assert_int_equal(tu_get(port, "/api/books", &r), 405);
    check_header(&r, "Allow", "POST");
    check_error(json_loadb(r.body, r.body_len, 0, NULL), "method_not_allowed");
    tu_resp_free(&r);
    assert_int_equal(tu_http(port, "DELETE", "/healthz", NULL, NULL, 0, &r), 405);
    check_header(&r, "Allow", "GET, HEAD");
    tu_resp_free(&r);
    assert_int_equal(tu_http(port, "PUT", "/api/events", NULL, NULL, 0, &r), 405);
    check_header(&r, "Allow", "POST");
    tu_resp_free(&r);
    assert_int_equal(tu_http(port, "HEAD", "/healthz", NULL, NULL, 0, &r), 200);
    check_header(&r, "Content-Length", "15");
    assert_int_equal(r.body_len, 0);
    tu_resp_free(&r);
    assert_int_equal(tu_http(port, "HEAD", "/api/recommendations/user/5", NULL, NULL, 0, &r), 200);
    check_header(&r, "Content-Type", "application/json");
    assert_int_equal(r.body_len, 0);
    tu_resp_free(&r);
    /* OPTIONS: the Allow of the route; no CORS unless asked for */
    assert_int_equal(
        tu_http(port, "OPTIONS", "/api/events", "Origin: https://a.example\r\n", NULL, 0, &r), 204);
    check_header(&r, "Allow", "POST");
    check_header(&r, "Access-Control-Allow-Origin", NULL);
    tu_resp_free(&r);
    assert_int_equal(tu_http(port, "OPTIONS", "/api/nothing", NULL, NULL, 0, &r), 404);
    tu_resp_free(&r);

    /* one rule for explain, in a query and in a session body */
    check_400(port, "/api/recommendations/user/5?explain=yes",
              "explain must be 0, 1, false or true");
    j = post_json(port, "/api/recommendations/session", NULL,
                  "{\"book_ids\": [\"3\"], \"explain\": \"yes\"}", 400);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
               "explain must be 0, 1, false or true"));
    json_decref(j);
    static const char *const yes[] = {"true", "1", "\"1\"", "\"true\""};
    for (size_t i = 0; i < 4; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"book_ids\": [\"3\"], \"n\": 2, \"explain\": %s}", yes[i]);
        j = post_json(port, "/api/recommendations/session", NULL, body, 200);
        json_t *first = json_array_get(json_object_get(j, "recommendations"), 0);
        assert_non_null(json_string_value(json_object_get(first, "explanation")));
        json_decref(j);
    }

    /* the readers of the served version, searched and paged */
    char upath[PATH_MAX + 32], line[128];
    snprintf(upath, sizeof upath, "%s/current/user_ids.txt", mdir);
    FILE *f = fopen(upath, "r");
    assert_non_null(f);
    size_t n_users = 0, n_one = 0;
    while (fgets(line, sizeof line, f)) n_users++, n_one += line[0] == '1';
    fclose(f);
    j = get_json(port, "/api/users?q=1&limit=2", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), n_one);
    json_t *us = json_object_get(j, "users");
    assert_int_equal(json_array_size(us), 2);
    assert_int_equal(json_string_value(json_object_get(json_array_get(us, 1), "user_id"))[0], '1');
    json_decref(j);
    j = get_json(port, "/api/users?offset=1000000", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), n_users);
    assert_int_equal(json_array_size(json_object_get(j, "users")), 0);
    json_decref(j);
    j = get_json(port, "/api/users", 200);
    assert_int_equal(json_array_size(json_object_get(j, "users")), 20);
    json_decref(j);
    check_400(port, "/api/users?limit=101", "limit");
    check_400(port, "/api/users?offset=-1", "offset");

    /* the versions, the served one marked, with the manifest's figures */
    j = get_json(port, "/api/models", 200);
    char served[BR_MODEL_ID_MAX];
    br_server_version(s, served, sizeof served);
    assert_string_equal(json_string_value(json_object_get(j, "current")), served);
    json_t *v0 = json_array_get(json_object_get(j, "versions"), 0);
    assert_string_equal(json_string_value(json_object_get(v0, "id")), served);
    assert_true(json_is_true(json_object_get(v0, "current")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v0, "counts"), "readers")),
                     n_users);
    assert_non_null(json_object_get(v0, "evaluation"));
    json_decref(j);

    /* Framing errors are answered by libmicrohttpd before a request reaches
     * the server (docs/api.md): the right status, and the server goes on. */
    static const char neg_len[] =
        "POST /api/events HTTP/1.1\r\nHost: h\r\nContent-Length: -5\r\n\r\n";
    assert_int_equal(tu_raw(port, neg_len, sizeof neg_len - 1, &r), 400);
    tu_resp_free(&r);
    size_t big = 100 * 1024;
    char *req = malloc(big + 128);
    int hn = snprintf(req, 128, "GET /healthz HTTP/1.1\r\nHost: h\r\nX-Big: ");
    memset(req + hn, 'a', big);
    memcpy(req + hn + big, "\r\n\r\n", 4);
    assert_int_equal(tu_raw(port, req, (size_t)hn + big + 4, &r), 431);
    tu_resp_free(&r);
    free(req);
    json_decref(get_json(port, "/healthz", 200));
    br_server_free(s);

    /* --cors ORIGIN: every answer names it; a preflight is answered */
    br_server_options o = BR_SERVER_OPTIONS_DEFAULT;
    o.model_dir = mdir;
    o.port = 0;
    o.cors = "https://books.example.org";
    assert_int_equal(br_server_start(&o, &s), BR_OK);
    port = br_server_port(s);
    assert_int_equal(tu_get(port, "/api/recommendations/user/5", &r), 200);
    check_header(&r, "Access-Control-Allow-Origin", "https://books.example.org");
    check_header(&r, "Vary", "Origin");
    tu_resp_free(&r);
    assert_int_equal(tu_http(port, "OPTIONS", "/api/events",
                             "Origin: https://books.example.org\r\n"
                             "Access-Control-Request-Method: POST\r\n",
                             NULL, 0, &r),
                     204);
    check_header(&r, "Access-Control-Allow-Origin", "https://books.example.org");
    check_header(&r, "Access-Control-Allow-Methods", "POST");
    check_header(&r, "Access-Control-Allow-Headers", "Content-Type, X-API-Key");
    tu_resp_free(&r);
    br_server_free(s);

    /* addresses: names, IPv6, and why a bind fails */
    o.cors = NULL;
    o.bind = "::1";
    assert_int_equal(br_server_start(&o, &s), BR_OK);
    assert_true(healthz_v6(br_server_port(s)));
    br_server_free(s);
    o.bind = "localhost"; /* 127.0.0.1 or ::1, whichever the resolver gives first */
    assert_int_equal(br_server_start(&o, &s), BR_OK);
    int v4 = tu_get(br_server_port(s), "/healthz", &r) == 200;
    tu_resp_free(&r);
    assert_true(v4 || healthz_v6(br_server_port(s)));
    br_server_free(s);
    o.bind = "10.255.255.1"; /* not an address of this machine */
    assert_int_equal(br_server_start(&o, &s), BR_EIO);
    assert_non_null(strstr(br_error_detail(), "not an address of this machine"));
    assert_null(strstr(br_error_detail(), "in use"));
    o.bind = "no-such-host.invalid";
    assert_int_equal(br_server_start(&o, &s), BR_EINVAL);
    assert_non_null(strstr(br_error_detail(), "--bind no-such-host.invalid"));
}

/* br__srv_rank on one thread across many requests: the per-thread marks give
 * the same list every time, through the generation's wrap-around and
 * through the growth a posted book forces; seen books (catalogue and
 * posted) never appear. */
static char *rank_once(srv_snap *p, const rank_input *in)
{
    br_serve_rank cfg = BR_SERVE_RANK_DEFAULT;
    br__sbuf b = {0};
    pthread_rwlock_rdlock(&p->add_lock);
    assert_int_equal(br__srv_rank(p, &cfg, in, &b), BR_OK);
    pthread_rwlock_unlock(&p->add_lock);
    br__sb_put(&b, "", 1);
    return b.p;
}

static int lists_book(const char *json, const char *id)
{
    char pat[96];
    snprintf(pat, sizeof pat, "\"book_id\":\"%s\"", id);
    return strstr(json, pat) != NULL;
}

/* A port already taken: a clear error, not a crash or a silent second
 * server; the first one keeps answering. */
static void test_port_in_use(void **state)
{
    NEED_MODEL(have_model, "serve");
    br_server *s = start(mdir, NULL, NULL, 0, 0);
    br_server_options o = BR_SERVER_OPTIONS_DEFAULT;
    o.model_dir = mdir;
    o.port = br_server_port(s);
    br_server *t = NULL;
    assert_int_equal(br_server_start(&o, &t), BR_EIO);
    assert_null(t);
    assert_non_null(strstr(br_error_detail(), "cannot listen on 127.0.0.1 port"));
    assert_non_null(strstr(br_error_detail(), "Address already in use"));
    json_decref(get_json(br_server_port(s), "/api/recommendations/user/5", 200));
    br_server_free(s);
}

static void test_rank_marks(void **state)
{
    NEED_MODEL(have_model, "serve");
    srv_snap *p;
    assert_int_equal(br__srv_snap_load(mdir, &p), BR_OK);
    assert_true(p->n_base >= 200);
    uint32_t rec_idx[100], seeds[2], seen[5] = {10, 11, 12, 0, 0};
    br_catalog *cat;
    assert_int_equal(br_catalog_load(seed_books, NULL, &cat, NULL), BR_OK);
    unique_books(cat, seeds, 2);
    br_catalog_free(cat);
    float rec_score[100];
    for (uint32_t i = 0; i < 100; i++) {
        rec_idx[i] = 100 + i;
        rec_score[i] = 1.0f - (float)i / 200;
    }
    seen[3] = rec_idx[0];
    rank_input in = {.rec_idx = rec_idx,
                     .rec_score = rec_score,
                     .n_recs = 100,
                     .seeds = seeds,
                     .n_seeds = 2,
                     .interactions = 2,
                     .seen_idx = seen,
                     .n_seen_idx = 4,
                     .hour = -1,
                     .n = 30};
    char *ref = rank_once(p, &in);
    for (int i = 0; i < 4; i++) assert_false(lists_book(ref, br_idmap_name(p->ids, seen[i])));
    for (int i = 0; i < 2; i++) /* the seeds are seen */
        assert_false(lists_book(ref, br_idmap_name(p->ids, seeds[i])));
    /* other readers in between, then the same one: the same list */
    for (uint32_t r = 0; r < 500; r++) {
        uint32_t other[2] = {r % p->n_base, (r * 7 + 1) % p->n_base};
        rank_input o = in;
        o.seeds = other;
        o.seen_idx = other;
        o.n_seen_idx = 2;
        free(rank_once(p, &o));
    }
    char *again = rank_once(p, &in);
    assert_string_equal(again, ref);
    free(again);
    /* across the wrap-around of the generation: a reader who has seen the
     * whole list ranked at generation 1, the generation run to its end,
     * then the first reader again at generation 1 of the next round: the
     * marks of the first round must not count */
    br__srv_rank_set_generation(0);
    rank_input o = in;
    o.seen_idx = rec_idx;
    o.n_seen_idx = 100;
    free(rank_once(p, &o));
    br__srv_rank_set_generation(UINT32_MAX >> 11);
    again = rank_once(p, &in);
    assert_string_equal(again, ref);
    free(again);
    /* posted books beyond the marks' capacity (the catalogue + a quarter +
     * 64): copies of both seeds first, then of books 0, 1, ... */
    uint32_t n_post = p->n_base / 4 + 100;
    for (uint32_t i = 0; i < n_post; i++) {
        char id[32];
        uint32_t from = i < 2 ? seeds[i] : i - 2;
        snprintf(id, sizeof id, "copy-%u", i);
        float vec[1024];
        assert_true(p->dim <= 1024);
        memcpy(vec, br__srv_snap_emb(p, from), p->dim * sizeof *vec);
        srv_added a = {.id = id, .title = id, .year = BR_YEAR_UNKNOWN};
        uint32_t idx;
        assert_int_equal(br__srv_snap_add(p, &a, vec, &idx), BR_OK);
        assert_int_equal(idx, p->n_base + i);
    }
    uint32_t seen2[5];
    memcpy(seen2, seen, sizeof seen);
    seen2[4] = p->n_base; /* copy-0, the first seed's twin, seen */
    in.seen_idx = seen2;
    in.n_seen_idx = 5;
    char *grown = rank_once(p, &in);
    assert_true(lists_book(grown, "copy-1")); /* the other seed's twin: cosine 1 */
    assert_false(lists_book(grown, "copy-0"));
    for (int i = 0; i < 4; i++) assert_false(lists_book(grown, br_idmap_name(p->ids, seen[i])));
    char *grown2 = rank_once(p, &in);
    assert_string_equal(grown2, grown);
    free(grown);
    free(grown2);
    free(ref);
    br__srv_snap_release(p);
}

/* A stranger's list (no precomputed list, no interactions) weighs the
 * tribes by their share of readers: in a copy of the version whose
 * precomputed lists hold the books of one tribe for a single reader, that
 * tribe is not in a stranger's top 10 (with equal weights it had a quarter
 * of it), which still spans the other tribes; in the version as trained
 * (tribes read alike) it spans them all. Either way the list has each
 * tribe's slots of the cold-start list's head. */
static void stranger_tribes(srv_snap *p, size_t n, uint32_t *count)
{
    rank_input in = {.hour = -1, .n = n};
    char *body = rank_once(p, &in), wrapped[64 * 1024];
    snprintf(wrapped, sizeof wrapped, "{%s}", body);
    free(body);
    json_t *j = json_loads(wrapped, 0, NULL), *it;
    assert_non_null(j);
    json_t *a = json_object_get(j, "recommendations");
    assert_int_equal(json_array_size(a), n);
    uint32_t head[256] = {0};
    for (size_t i = 0; i < n; i++) head[p->books[p->cold[i]].tribe]++;
    memset(count, 0, p->tribes->k * sizeof *count);
    size_t i;
    json_array_foreach(a, i, it)
    {
        const char *id = json_string_value(json_object_get(it, "book_id"));
        int64_t b = br_idmap_find(p->ids, id, strlen(id));
        assert_true(b >= 0 && b < p->n_base);
        count[p->tribes->labels[b]]++;
    }
    json_decref(j);
    for (uint32_t t = 0; t < p->tribes->k; t++) assert_int_equal(count[t], head[t]);
}

static void test_cold_start_shares(void **state)
{
    NEED_MODEL(have_model, "serve");
    char dir[PATH_MAX + 16], cmd[4 * PATH_MAX], path[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/cold", tmp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", dir, mdir, dir);
    assert_int_equal(system(cmd), 0);
    srv_snap *p;
    assert_int_equal(br__srv_snap_load(dir, &p), BR_OK);
    uint32_t k = p->tribes->k, count[256], rare = p->tribes->labels[p->pop_order[0]];
    assert_true(k >= 3 && k <= 256);
    stranger_tribes(p, 10, count);
    for (uint32_t t = 0; t < k; t++) assert_true(count[t] >= 1);
    assert_true(count[rare] >= 2);
    br__srv_snap_release(p);

    /* the tribe of the most popular book read by one reader only: the
     * version's derived arrays made again from such lists (what train
     * does), then served */
    snprintf(path, sizeof path, "%s/current/recs_items.npy", dir);
    br_array a = {0};
    assert_int_equal(br_npy_read(path, BR_DTYPE_I32, &a), BR_OK);
    assert_int_equal(br__srv_snap_load(dir, &p), BR_OK);
    int32_t *items = a.data;
    for (size_t r = 1; r < a.rows; r++) {
        int32_t *row = items + r * a.cols;
        size_t o = 0;
        for (size_t j = 0; j < a.cols; j++)
            if (row[j] >= 0 && (uint32_t)p->tribes->labels[row[j]] != rare) row[o++] = row[j];
        for (; o < a.cols; o++) row[o] = -1;
    }
    br__model_derived d;
    assert_int_equal(br__model_derived_alloc(&d, p->n_base), BR_OK);
    memcpy(d.nbr, p->nbr_base, (size_t)p->n_base * SRV_NBR_K * sizeof *d.nbr);
    memcpy(d.nbr_sc, p->nbr_sc_base, (size_t)p->n_base * SRV_NBR_K * sizeof *d.nbr_sc);
    br__model_popularity(items, a.rows, a.cols, p->n_base, d.pop, d.order);
    assert_int_equal(br__model_cold(p->tribes->labels, k, p->n_base, d.order, items, a.rows, a.cols,
                                    d.cold, &d.n_cold),
                     BR_OK);
    snprintf(path, sizeof path, "%s/current", dir);
    assert_int_equal(br__model_write_derived(path, &d, p->n_base, NULL), BR_OK);
    br__model_derived_free(&d);
    br__srv_snap_release(p);
    br_array_free(&a);
    assert_int_equal(br__srv_snap_load(dir, &p), BR_OK);
    stranger_tribes(p, 10, count);
    assert_int_equal(count[rare], 0);
    uint32_t spanned = 0;
    for (uint32_t t = 0; t < k; t++) spanned += count[t] > 0;
    assert_int_equal(spanned, k - 1);
    stranger_tribes(p, 40, count); /* nor further down */
    assert_int_equal(count[rare], 0);
    br__srv_snap_release(p);
}

/* 1 when the sep-separated list s has v (fold: ASCII case-insensitively). */
static int names_have(const char *s, char sep, const char *v, int fold)
{
    size_t vl = strlen(v);
    for (const char *p = s; p && *p;) {
        while (*p == ' ') p++;
        const char *e = strchr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && p[len - 1] == ' ') len--;
        if (len == vl && !(fold ? strncasecmp(p, v, vl) : strncmp(p, v, vl))) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

static int book_has_tag(const br_book *b, const char *tag)
{
    return names_have(b->tags, '|', tag, 1) || !strcasecmp(b->genre, tag);
}

/* The books of a response, checked against a filter: every one passes
 * (tags: one of them; exclude: none; author: this one), returns how many. */
static size_t check_filtered(json_t *j, const br_catalog *cat, const char *const *tags,
                             const char *const *exclude, const char *author)
{
    json_t *a = json_object_get(j, "recommendations"), *it;
    size_t i;
    json_array_foreach(a, i, it)
    {
        const char *id = json_string_value(json_object_get(it, "book_id"));
        int64_t b = br_idmap_find(br_catalog_ids(cat), id, strlen(id));
        assert_true(b >= 0);
        const br_book *bk = br_catalog_book(cat, (uint32_t)b);
        int any = !tags;
        for (size_t t = 0; tags && tags[t]; t++) any |= book_has_tag(bk, tags[t]);
        if (!any)
            fprintf(stderr, "book %s (tags %s, %s) has none of the tags\n", id, bk->tags,
                    bk->genre);
        assert_true(any);
        for (size_t t = 0; exclude && exclude[t]; t++) assert_false(book_has_tag(bk, exclude[t]));
        if (author) assert_true(names_have(bk->authors, ',', author, 0));
    }
    return json_array_size(a);
}

/* ?tags=, exclude_tags=, authors= (docs/api.md, "Filters"), on a version
 * whose catalogue has authors and tags: only books that pass, the
 * published list's first (its order and scores), then books from beyond
 * it until n; names checked (400). */
static void test_filters(void **state)
{
    NEED_MODEL(have_model, "serve");
    char dir[PATH_MAX + 16], books[PATH_MAX + 32], line[4096], path[1024];
    snprintf(dir, sizeof dir, "%s/filt", tmp);
    snprintf(books, sizeof books, "%s/filt-books.csv", tmp);
    /* the seed catalogue with authors (Writer i % 10; every fifth book also
     * Co Author) and tags (Shelf-A..D by i % 4, t0..t2 by i % 3) */
    FILE *in = fopen(seed_books, "r"), *out = fopen(books, "w");
    assert_non_null(in);
    assert_non_null(out);
    assert_non_null(fgets(line, sizeof line, in));
    fprintf(out, "book_id,authors,tags,title,genre,description\n");
    while (fgets(line, sizeof line, in)) {
        int i = atoi(line);
        fprintf(out, "%d,\"Writer %d%s\",Shelf-%c|t%d,%s", i, i % 10, i % 5 ? "" : ", Co Author",
                'A' + i % 4, i % 3, strchr(line, ',') + 1);
    }
    fclose(in);
    fclose(out);
    train_books(dir, NULL, books);
    br_model *m;
    assert_int_equal(br_model_open(dir, NULL, &m), BR_OK);
    const br_catalog *cat = br_model_catalog(m);
    size_t nr, top;
    const char *const *readers = br_model_readers(m, &nr);
    const float *sc;
    const int32_t *lists = br_model_lists(m, &sc, &top);
    assert_true(top == 20);
    br_server *s = start(dir, NULL, NULL, 0, 0);
    int port = br_server_port(s);

    /* tags: the published books that pass first, in order, with their
     * scores; then n in all (250 books have Shelf-A, a reader rated < 50) */
    static const char *const shelf_a[] = {"Shelf-A", NULL};
    for (int upper = 0; upper < 2; upper++) {
        snprintf(path, sizeof path, "/api/recommendations/user/%s?n=60&tags=%s", readers[0],
                 upper ? "SHELF-A" : "shelf-a");
        json_t *j = get_json(port, path, 200);
        assert_int_equal(check_filtered(j, cat, shelf_a, NULL, NULL), 60);
        json_t *a = json_object_get(j, "recommendations");
        size_t o = 0;
        for (size_t i = 0; i < top && lists[i] >= 0; i++) {
            const br_book *bk = br_catalog_book(cat, (uint32_t)lists[i]);
            if (!book_has_tag(bk, "shelf-a")) continue;
            json_t *it = json_array_get(a, o++);
            assert_string_equal(json_string_value(json_object_get(it, "book_id")), bk->id);
            assert_true(fabs(json_number_value(json_object_get(it, "score")) - sc[i]) <
                        1e-5 * (1 + fabs(sc[i])));
        }
        assert_true(o > 0 && o < 20); /* the rest came from beyond the list */
        json_decref(j);
    }
    /* exclude_tags, several values; a reader we do not know (cold start) */
    static const char *const ex[] = {"shelf-a", "t1", NULL};
    snprintf(path, sizeof path, "/api/recommendations/user/%s?n=100&exclude_tags=shelf-a,T1",
             readers[1]);
    json_t *j = get_json(port, path, 200);
    assert_int_equal(check_filtered(j, cat, NULL, ex, NULL), 100);
    json_decref(j);
    static const char *const t2[] = {"t2", NULL};
    j = get_json(port, "/api/recommendations/user/nobody-here?n=40&tags=t2", 200);
    assert_int_equal(check_filtered(j, cat, t2, NULL, NULL), 40);
    json_decref(j);
    /* authors: exact names among the comma-separated authors; with tags */
    static const char *const bc[] = {"shelf-b", "shelf-c", NULL};
    snprintf(
        path, sizeof path,
        "/api/recommendations/user/%s?n=30&authors=Co%%20Author&tags=shelf-b,shelf-c&explain=1",
        readers[2]);
    j = get_json(port, path, 200);
    assert_int_equal(check_filtered(j, cat, bc, NULL, "Co Author"), 30);
    json_t *it;
    size_t i;
    json_array_foreach(json_object_get(j, "recommendations"), i, it)
        assert_true(strlen(json_string_value(json_object_get(it, "explanation"))) > 0);
    json_decref(j);
    snprintf(path, sizeof path,
             "/api/recommendations/user/%s?n=50&authors=Writer%%203,Nobody%%20Else", readers[3]);
    j = get_json(port, path, 400); /* every name must be some book's */
    check_error(j, "bad_request");
    snprintf(path, sizeof path, "/api/recommendations/user/%s?n=50&authors=Writer%%203",
             readers[3]);
    j = get_json(port, path, 200);
    assert_int_equal(check_filtered(j, cat, NULL, NULL, "Writer 3"), 50);
    json_decref(j);
    /* the session route takes the same filters */
    static const char *const d[] = {"shelf-d", NULL};
    j = post_json(port, "/api/recommendations/session?tags=shelf-d&n=25", NULL,
                  "{\"book_ids\": [\"1\", \"2\"]}", 200);
    assert_int_equal(check_filtered(j, cat, d, NULL, NULL), 25);
    json_decref(j);
    check_error(post_json(port, "/api/recommendations/session?tags=nope", NULL,
                          "{\"book_ids\": [\"1\"]}", 400),
                "bad_request");

    /* 400: empty, unknown (case matters for authors), too many, too long */
    static const char *const bad[] = {"tags=",
                                      "tags=shelf-a,,shelf-b",
                                      "exclude_tags=",
                                      "exclude_tags=shelf-z",
                                      "authors=",
                                      "authors=Writer",
                                      "authors=writer%203",
                                      "tags=romance%2Cx",
                                      "tags=shelf-a,",
                                      "tags=%20"};
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
        snprintf(path, sizeof path, "/api/recommendations/user/%s?%s", readers[0], bad[b]);
        check_error(get_json(port, path, 400), "bad_request");
    }
    char many[600] = "/api/recommendations/user/5?tags=t0";
    for (int k = 0; k < 32; k++) strcat(many, ",t1");
    check_error(get_json(port, many, 400), "bad_request"); /* 33 values */
    many[strlen(many) - 3] = 0;
    json_decref(get_json(port, many, 200)); /* 32 */
    snprintf(path, sizeof path, "/api/recommendations/user/5?tags=");
    for (int k = 0; k < 201; k++) strcat(path, "x");
    check_error(get_json(port, path, 400), "bad_request");
    br_server_free(s);
    br_model_close(m);
}

/* Issue 19: the event log is the commit point of POST /api/events. A 503
 * means nothing was stored, so a client's retry applies the event once
 * (before: the store took it, the log failed, and the retry doubled it in
 * the reader's history); an event the log took is acknowledged even when
 * the store fails ("stored": false). The faults: files cannot grow past a
 * point (RLIMIT_FSIZE), placed so that only the store's or only the log's
 * write fails. */
static void test_event_retry_after_503(void **state)
{
    NEED_MODEL(have_model, "serve");
    br_model *m;
    br_server *s = start_copy("retry", &m);
    br_model_close(m);
    int port = br_server_port(s);
    char uri[PATH_MAX + 32], path[PATH_MAX + 32];
    snprintf(uri, sizeof uri, "lmdb:%s/retry/store", tmp);
    snprintf(path, sizeof path, "%s/retry/store/data.mdb", tmp);
    struct stat mdb;
    assert_int_equal(stat(path, &mdb), 0);
    snprintf(path, sizeof path, "%s/retry/store/events.log", tmp);
    br_events *log;
    assert_int_equal(br_events_open(uri, 0, &log), BR_OK);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*was)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of the signal */
    uint64_t before, after;

    /* The log takes the event and the store does not (no file may grow
     * past the log's end plus this record, and the store's pages sit at
     * 8 KiB and beyond): acknowledged, as it is durable, and said so. */
    static const char one[] =
        "{\"user_id\": \"stored-reader\", \"book_id\": \"3\", \"timestamp\": 1795000000}";
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size + 8 + 16 + 14 <= 8192);
    assert_int_equal(br_events_count(log, &before), BR_OK);
    lim = old;
    lim.rlim_cur = (rlim_t)sb.st_size + 8 + 16 + 14; /* the record: its ids are 13 + 1 bytes */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    json_t *j = post_json(port, "/api/events", NULL, one, 200);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 1);
    assert_true(json_is_false(json_object_get(j, "stored")));
    json_decref(j);
    assert_int_equal(br_events_count(log, &after), BR_OK);
    assert_int_equal(after, before + 1);
    /* the store catches up with the next events */
    json_decref(post_json(port, "/api/events", NULL,
                          "{\"user_id\": \"stored-reader\", \"book_id\": \"4\"}", 200));
    j = get_json(port, "/api/users/stored-reader", 200);
    assert_int_equal(json_array_size(json_object_get(j, "history")), 2);
    json_decref(j);

    /* The log cannot grow: 503, and nothing happened. */
    enum { PAD = 4096 };
    br_event *pad = calloc(PAD, sizeof *pad);
    assert_non_null(pad);
    for (int i = 0; i < PAD; i++) pad[i] = (br_event){"pad", "3", BR_EVENT_VIEW, 1, 1};
    assert_int_equal(stat(path, &sb), 0);
    while (sb.st_size < mdb.st_size + (1 << 20)) {
        assert_int_equal(br_events_append(log, pad, PAD), BR_OK);
        assert_int_equal(stat(path, &sb), 0);
    }
    free(pad);
    assert_int_equal(br_events_count(log, &before), BR_OK);

    /* no timestamp: the server's clock gives it (a retry's, a later one) */
    static const char body[] = "{\"user_id\": \"retry-reader\", \"book_id\": \"3\", \"type\": "
                               "\"click\"}";
    lim = old;
    lim.rlim_cur = (rlim_t)sb.st_size;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    j = post_json(port, "/api/events", NULL, body, 503);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, was);
    check_error(j, "unavailable");
    assert_int_equal(br_events_count(log, &after), BR_OK);
    assert_int_equal(after, before); /* the log is as it was */

    /* the retry a second later, as a client's backoff would: an event that
     * was stored by the failed request would now show twice */
    time_t t = time(NULL);
    while (time(NULL) == t) usleep(20000);
    j = post_json(port, "/api/events", NULL, body, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 1);
    assert_null(json_object_get(j, "stored")); /* the store has it too */
    json_decref(j);
    j = get_json(port, "/api/users/retry-reader", 200);
    assert_int_equal(json_array_size(json_object_get(j, "history")), 1);
    json_decref(j);
    assert_int_equal(br_events_count(log, &after), BR_OK);
    assert_int_equal(after, before + 1);
    br_events_close(log);
    br_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_served_is_published),
        cmocka_unit_test(test_dislike_event),
        cmocka_unit_test(test_cold_book_explained),
        cmocka_unit_test(test_posted_books_capped),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_event_reflected),
        cmocka_unit_test(test_new_book),
        cmocka_unit_test(test_context),
        cmocka_unit_test(test_concurrent_reload),
        cmocka_unit_test(test_redis_outage),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_list_prefixes),
        cmocka_unit_test(test_rank_marks),
        cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_http_details),
        cmocka_unit_test(test_posted_survive),
        cmocka_unit_test(test_cold_start_shares),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_event_retry_after_503),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
