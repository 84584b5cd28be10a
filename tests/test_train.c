/*
 * test_train.c: model versions and their publish (bookrec/train.h) without
 * the encoder: versions are written here by hand in the documented layout
 * (docs/formats.md, "Model directory"), then listed, rolled back (which
 * re-publishes them to an LMDB store, and to Redis when redis-server is
 * installed), pruned; and br_train_run's refusals: missing arguments, a
 * directory another run holds, a ratings row for an unknown book (the
 * served version untouched, nothing left behind).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bookrec/encoder.h"
#include "bookrec/index.h"
#include "redisutil.h"
#include "bookrec/model.h"
#include "testutil.h"

static char *tmp;
static int case_no;

static const char books_csv[] = "book_id,title,genre\n"
                                "b1,One,Fantasy\n"
                                "b2,Two,Sci-Fi\n"
                                "b3,Three,Fantasy\n"
                                "b4,Four,Romance\n";

/* A fresh model directory. */
static void fresh_dir(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/m%d", tmp, ++case_no);
    assert_int_equal(mkdir(buf, 0777), 0);
}

/* Writes a complete version `id` whose readers u1, u2 get books first_book
 * and first_book + 1 (catalogue indices), scores 2 and 1; its manifest of
 * format_version `fv` (0: none, as the first manifests had). */
static void make_version_fv(const char *dir, const char *id, int first_book, const char *store,
                            int fv)
{
    char vdir[PATH_MAX], path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/versions", dir);
    mkdir(path, 0777);
    snprintf(vdir, sizeof vdir, "%s/versions/%s", dir, id);
    assert_int_equal(mkdir(vdir, 0777), 0);
    br_free(tu_write_file(vdir, "books.csv", books_csv));
    br_free(tu_write_file(vdir, "user_ids.txt", "u1\nu2\n"));
    br_catalog *cat;
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    snprintf(path, sizeof path, "%s/books.csv", vdir);
    assert_int_equal(br_catalog_load(path, &lo, &cat, NULL), BR_OK);
    float emb[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0.9f, 0.1f, 0, 0, 0, 0, 1, 0};
    br_kmeans_options ko = BR_KMEANS_OPTIONS_DEFAULT;
    ko.k = 2;
    br_tribes *t;
    assert_int_equal(br_tribes_build(cat, emb, 4, 4, &ko, 0, &t), BR_OK);
    snprintf(path, sizeof path, "%s/tribes", vdir);
    assert_int_equal(br_tribes_save(t, path), BR_OK);
    br_tribes_free(t);
    br_catalog_free(cat);
    /* the vectors and their index: a version is whole or not served */
    snprintf(path, sizeof path, "%s/embeddings.npy", vdir);
    assert_int_equal(br_npy_write(path, BR_DTYPE_F32, 2, 4, 4, emb), BR_OK);
    br_hnsw_options ho = BR_HNSW_OPTIONS_DEFAULT;
    br_hnsw *h;
    assert_int_equal(br_hnsw_create(4, &ho, &h), BR_OK);
    assert_int_equal(br_hnsw_add_batch(h, emb, 4, NULL), BR_OK);
    snprintf(path, sizeof path, "%s/index.hnsw", vdir);
    assert_int_equal(br_hnsw_save(h, path), BR_OK);
    br_hnsw_free(h);
    int32_t items[4] = {first_book, first_book + 1, first_book + 1, -1};
    float scores[4] = {2, 1, 2, 0};
    snprintf(path, sizeof path, "%s/recs_items.npy", vdir);
    assert_int_equal(br_npy_write(path, BR_DTYPE_I32, 2, 2, 2, items), BR_OK);
    snprintf(path, sizeof path, "%s/recs_scores.npy", vdir);
    assert_int_equal(br_npy_write(path, BR_DTYPE_F32, 2, 2, 2, scores), BR_OK);
    char manifest[1024], fvs[64] = "";
    if (fv) snprintf(fvs, sizeof fvs, " \"format_version\": %d,", fv);
    snprintf(manifest, sizeof manifest,
             "{\"format\": \"bookrec-model\",%s \"version\": \"%s\", \"created_at\": 1700000000,"
             " \"store\": \"%s\", \"counts\": {\"books\": 4, \"readers\": 2}}",
             fvs, id, store);
    br_free(tu_write_file(vdir, "manifest.json", manifest)); /* last: complete */
}

static void make_version(const char *dir, const char *id, int first_book, const char *store)
{
    make_version_fv(dir, id, first_book, store, 0);
}

static void point_current(const char *dir, const char *id)
{
    char path[PATH_MAX], target[128];
    snprintf(path, sizeof path, "%s/current", dir);
    snprintf(target, sizeof target, "versions/%s", id);
    unlink(path);
    assert_int_equal(symlink(target, path), 0);
}

/* u1's first rec as served by the store at uri, and the version. */
static void served(const char *uri, char *book, char *version)
{
    br_store *s;
    assert_int_equal(br_store_open(uri, BR_STORE_RDONLY, &s), BR_OK);
    br_store_rec rec[4];
    size_t n = 0;
    assert_int_equal(br_store_get_recs(s, "u1", rec, 4, &n, version), BR_OK);
    assert_int_equal(n, 2);
    strcpy(book, rec[0].book_id);
    /* u2's list was padded: one rec */
    assert_int_equal(br_store_get_recs(s, "u2", rec, 4, &n, NULL), BR_OK);
    assert_int_equal(n, 1);
    br_store_book *b;
    assert_int_equal(br_store_get_book(s, "b3", &b), BR_OK);
    assert_string_equal(b->title, "Three");
    assert_true(b->tribe >= 0);
    br_free(b);
    br_store_close(s);
}

static void test_list_rollback_prune(void **state)
{
    (void)state;
    char dir[PATH_MAX], uri[PATH_MAX + 16], cur[BR_MODEL_ID_MAX], to[BR_MODEL_ID_MAX];
    char book[BR_ID_MAX], version[BR_STORE_VERSION_MAX];
    fresh_dir(dir, sizeof dir);
    snprintf(uri, sizeof uri, "lmdb:%s/store", dir);

    br_model_version *v;
    size_t n;
    assert_int_equal(br_models_list(dir, &v, &n), BR_OK); /* nothing yet */
    assert_int_equal(n, 0);
    br_free(v);
    assert_int_equal(br_models_current(dir, cur, sizeof cur), BR_ENOTFOUND);

    make_version(dir, "v000001", 0, uri);
    make_version(dir, "v000002", 1, uri);
    make_version(dir, "v000010", 2, uri); /* numeric order, not string order */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/versions/v000011", dir); /* no manifest: incomplete */
    assert_int_equal(mkdir(path, 0777), 0);
    snprintf(path, sizeof path, "%s/versions/notes", dir); /* not a version */
    assert_int_equal(mkdir(path, 0777), 0);

    /* serve v000002: the store gets its recs, current points to it */
    assert_int_equal(br_models_rollback(dir, "v000002", NULL, NULL), BR_ENOTFOUND); /* no current */
    point_current(dir, "v000001");
    assert_int_equal(br_models_rollback(dir, "v000002", NULL, to), BR_OK);
    assert_string_equal(to, "v000002");
    assert_int_equal(br_models_current(dir, cur, sizeof cur), BR_OK);
    assert_string_equal(cur, "v000002");
    served(uri, book, version);
    assert_string_equal(book, "b2");
    assert_string_equal(version, "v000002");

    assert_int_equal(br_models_list(dir, &v, &n), BR_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].id, "v000001");
    assert_string_equal(v[1].id, "v000002");
    assert_string_equal(v[2].id, "v000010");
    assert_int_equal(v[0].current + v[1].current * 2 + v[2].current * 4, 2);
    assert_int_equal(v[2].n_books, 4);
    assert_int_equal(v[2].n_users, 2);
    assert_int_equal(v[2].created_at, 1700000000);
    br_free(v);

    /* an incomplete or unknown version is refused; nothing moves */
    assert_int_equal(br_models_rollback(dir, "v000011", NULL, NULL), BR_ENOTFOUND);
    assert_int_equal(br_models_rollback(dir, "v000099", NULL, NULL), BR_ENOTFOUND);
    assert_int_equal(br_models_rollback(dir, "../x", NULL, NULL), BR_EINVAL);
    assert_int_equal(br_models_current(dir, cur, sizeof cur), BR_OK);
    assert_string_equal(cur, "v000002");
    served(uri, book, version);
    assert_string_equal(version, "v000002");

    /* the default target: the newest version older than the current one */
    assert_int_equal(br_models_rollback(dir, NULL, NULL, to), BR_OK);
    assert_string_equal(to, "v000001");
    served(uri, book, version);
    assert_string_equal(book, "b1");
    assert_string_equal(version, "v000001");
    assert_int_equal(br_models_rollback(dir, NULL, NULL, to), BR_ENOTFOUND); /* none older */

    /* rolling "back" to what the store already serves only moves the
     * pointer (a run killed between the store switch and `current`) */
    point_current(dir, "v000010");
    assert_int_equal(br_models_rollback(dir, "v000001", NULL, to), BR_OK);
    assert_int_equal(br_models_current(dir, cur, sizeof cur), BR_OK);
    assert_string_equal(cur, "v000001");

    /* prune keep 1: the newest stays, and so does the current one */
    uint64_t removed = 0;
    assert_int_equal(br_models_prune(dir, 1, &removed), BR_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(br_models_list(dir, &v, &n), BR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].id, "v000001");
    assert_true(v[0].current);
    assert_string_equal(v[1].id, "v000010");
    br_free(v);
    char *m = NULL;
    assert_int_equal(br_models_manifest(dir, NULL, &m), BR_OK);
    assert_non_null(strstr(m, "\"v000001\""));
    br_free(m);
}

/* A rollback publishes a version as a server would open it (br_model_open):
 * one missing its index is refused, and what was served stays served. */
static void test_rollback_needs_a_whole_version(void **state)
{
    (void)state;
    char dir[PATH_MAX], uri[PATH_MAX + 16], path[PATH_MAX + 64], cur[BR_MODEL_ID_MAX];
    char book[BR_ID_MAX], version[BR_STORE_VERSION_MAX];
    fresh_dir(dir, sizeof dir);
    snprintf(uri, sizeof uri, "lmdb:%s/store", dir);
    make_version(dir, "v000001", 0, uri);
    make_version(dir, "v000002", 1, uri);
    point_current(dir, "v000002");
    assert_int_equal(br_models_rollback(dir, "v000001", NULL, NULL), BR_OK);
    snprintf(path, sizeof path, "%s/versions/v000002/index.hnsw", dir);
    assert_int_equal(unlink(path), 0);
    assert_status_detail(br_models_rollback(dir, "v000002", NULL, NULL), BR_ENOTFOUND,
                         "index.hnsw");
    assert_int_equal(br_models_current(dir, cur, sizeof cur), BR_OK);
    assert_string_equal(cur, "v000001");
    served(uri, book, version);
    assert_string_equal(version, "v000001");
}

static void test_current_must_be_a_version(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX + 16], cur[BR_MODEL_ID_MAX];
    fresh_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/current", dir);
    assert_int_equal(symlink("/etc", path), 0);
    assert_status_detail(br_models_current(dir, cur, sizeof cur), BR_EFORMAT, "not versions/");
}

/* A run killed after its version directory was complete but before it
 * published leaves a version that was never served: `models list` says
 * so, a default rollback passes over it (to the last served one), and the
 * next train removes it. */
static void test_killed_run_versions(void **state)
{
    (void)state;
    char dir[PATH_MAX], uri[PATH_MAX + 16], to[BR_MODEL_ID_MAX], path[PATH_MAX + 32];
    fresh_dir(dir, sizeof dir);
    snprintf(uri, sizeof uri, "lmdb:%s/store", dir);
    make_version(dir, "v000001", 0, uri);
    point_current(dir, "v000001");
    assert_int_equal(br_models_rollback(dir, "v000001", NULL, to), BR_OK); /* served, marked */
    make_version(dir, "v000002", 1, uri); /* the killed run's: never published */
    make_version(dir, "v000003", 2, uri);
    assert_int_equal(br_models_rollback(dir, "v000003", NULL, to), BR_OK); /* a later run's */
    br_model_version *v;
    size_t n;
    assert_int_equal(br_models_list(dir, &v, &n), BR_OK);
    assert_int_equal(n, 3);
    assert_true(v[0].served && !v[1].served && v[2].served && v[2].current);
    br_free(v);
    /* the default rollback: v000001, the last one served, not v000002 */
    assert_int_equal(br_models_rollback(dir, NULL, NULL, to), BR_OK);
    assert_string_equal(to, "v000001");
    assert_int_equal(br_models_rollback(dir, "v000003", NULL, to), BR_OK);
    /* the next train (here one that fails at its ingest) removes it */
    char *books = tu_write_file(dir, "books.csv", books_csv);
    char *ratings = tu_write_file(dir, "ratings.csv", "user_id,book_id,rating\nu1,b9,4\n");
    br_train_options o = BR_TRAIN_OPTIONS_DEFAULT;
    o.books = books;
    o.ratings = ratings;
    o.model_dir = dir;
    br_train_report rep;
    assert_true(br_train_run(&o, &rep) < 0);
    snprintf(path, sizeof path, "%s/versions/v000002", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(br_models_list(dir, &v, &n), BR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].id, "v000001");
    assert_string_equal(v[1].id, "v000003");
    assert_true(v[0].served && v[1].served && v[1].current);
    br_free(v);
    br_free(books);
    br_free(ratings);
}

/* br_train_run's refusals, all before anything is published. */
static void test_train_refusals(void **state)
{
    (void)state;
    char dir[PATH_MAX], uri[PATH_MAX + 16], path[PATH_MAX + 16], cur[BR_MODEL_ID_MAX];
    fresh_dir(dir, sizeof dir);
    snprintf(uri, sizeof uri, "lmdb:%s/store", dir);
    make_version(dir, "v000001", 0, uri);
    point_current(dir, "v000001");
    char *books = tu_write_file(dir, "books.csv", books_csv);
    char *ratings = tu_write_file(dir, "ratings.csv", "user_id,book_id,rating\nu1,b1,5\nu2,b9,4\n");

    br_train_options o = BR_TRAIN_OPTIONS_DEFAULT;
    br_train_report rep;
    /* reading commands never create a model directory */
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_status_detail(br_models_prune(path, 1, NULL), BR_ENOTFOUND, "no such model directory");
    assert_int_equal(br_models_rollback(path, NULL, NULL, NULL), BR_ENOTFOUND);
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0);
    assert_int_equal(br_train_run(&o, &rep), BR_EINVAL);
    o.books = books;
    o.ratings = ratings;
    o.model_dir = dir;
    o.top_n = 0;
    assert_int_equal(br_train_run(&o, &rep), BR_EINVAL);
    o.top_n = 10;

    /* another run holds the directory */
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT, 0666);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    assert_status_detail(br_train_run(&o, &rep), BR_EEXIST, "another");
    assert_status_detail(br_models_rollback(dir, "v000001", NULL, NULL), BR_EEXIST, "another");
    assert_status_detail(br_models_prune(dir, 1, NULL), BR_EEXIST, "another");
    close(fd);

    /* a rating of an unknown book: the ingest names it */
    br_status st = br_train_run(&o, &rep);
    assert_true(st < 0);
    assert_non_null(strstr(br_error_detail(), "b9"));
    assert_int_equal(br_models_current(dir, cur, sizeof cur), BR_OK);
    assert_string_equal(cur, "v000001");
    snprintf(path, sizeof path, "%s/versions", dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))) entries++;
    closedir(d);
    assert_int_equal(entries, 1); /* v000001 only: no .tmp-*, no v000002 */
    br_free(books);
    br_free(ratings);
}

/* br_models_store: a manifest's store path resolved the way its
 * format_version says (2: relative to the model directory; 1 or none:
 * relative to the working directory, as written then), so a copied model
 * directory publishes into its own store. */
static void test_store_path_resolution(void **state)
{
    (void)state;
    char dir[PATH_MAX], want[PATH_MAX + 64], got[PATH_MAX + 64];
    fresh_dir(dir, sizeof dir);
    make_version(dir, "v000001", 0, "lmdb:relstore");             /* format_version 1 */
    make_version_fv(dir, "v000002", 0, "lmdb:store?chunk=7", 2);  /* inside, options kept */
    make_version_fv(dir, "v000003", 0, "lmdb:/srv/bookrec/s", 2); /* outside: absolute */
    make_version_fv(dir, "v000004", 0, "redis://127.0.0.1:6379/2", 2);
    make_version_fv(dir, "v000005", 0, "lmdb:.", 2); /* the model directory itself */
    point_current(dir, "v000002");
    assert_int_equal(br_models_store(dir, "v000001", got, sizeof got), BR_OK);
    assert_string_equal(got, "lmdb:relstore");
    snprintf(want, sizeof want, "lmdb:%s/store?chunk=7", dir);
    assert_int_equal(br_models_store(dir, NULL, got, sizeof got), BR_OK); /* current */
    assert_string_equal(got, want);
    assert_int_equal(br_models_store(dir, "v000003", got, sizeof got), BR_OK);
    assert_string_equal(got, "lmdb:/srv/bookrec/s");
    assert_int_equal(br_models_store(dir, "v000004", got, sizeof got), BR_OK);
    assert_string_equal(got, "redis://127.0.0.1:6379/2");
    snprintf(want, sizeof want, "lmdb:%s/.", dir);
    assert_int_equal(br_models_store(dir, "v000005", got, sizeof got), BR_OK);
    assert_string_equal(got, want);
    assert_int_equal(br_models_store(dir, "v000002", got, 8), BR_ERANGE);
    assert_int_equal(br_models_store(dir, "v000009", got, sizeof got), BR_ENOTFOUND);

    /* a copy rolls back into its own store; the original's is untouched */
    char copy[PATH_MAX + 16], cmd[3 * PATH_MAX], book[BR_ID_MAX], version[BR_STORE_VERSION_MAX];
    char orig_store[PATH_MAX + 16], copy_store[PATH_MAX + 32], to[BR_MODEL_ID_MAX];
    fresh_dir(dir, sizeof dir);
    make_version_fv(dir, "v000001", 0, "lmdb:store", 2);
    make_version_fv(dir, "v000002", 1, "lmdb:store", 2);
    point_current(dir, "v000001");
    assert_int_equal(br_models_rollback(dir, "v000002", NULL, to), BR_OK);
    snprintf(orig_store, sizeof orig_store, "lmdb:%s/store", dir);
    served(orig_store, book, version);
    assert_string_equal(version, "v000002");
    snprintf(copy, sizeof copy, "%s-copy", dir);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", dir, copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(br_models_rollback(copy, "v000001", NULL, to), BR_OK);
    snprintf(copy_store, sizeof copy_store, "lmdb:%s/store", copy);
    served(copy_store, book, version);
    assert_string_equal(version, "v000001");
    assert_string_equal(book, "b1");
    served(orig_store, book, version);
    assert_string_equal(version, "v000002");
    assert_string_equal(book, "b2");
}

/* The rating scale a version records, read back from its manifest text
 * (the store's metadata is the same text). */
static void test_event_rules_from_manifest(void **state)
{
    (void)state;
    br_event_rules r = {0, 0};
    assert_int_equal(br_event_rules_from_manifest("{\"format\": \"bookrec-model\", "
                                                  "\"format_version\": 2, \"parameters\": "
                                                  "{\"rating_scale\": {\"min\": 0.5, "
                                                  "\"max\": 10}}}",
                                                  &r),
                     BR_OK);
    assert_true(r.rating_min == 0.5f && r.rating_max == 10.0f);
    /* before train recorded it: the 1..5 every such run used */
    assert_int_equal(
        br_event_rules_from_manifest("{\"format\": \"bookrec-model\", \"format_version\": 1}", &r),
        BR_OK);
    assert_true(r.rating_min == 1.0f && r.rating_max == 5.0f);
    /* metadata some other publisher set: nothing known */
    assert_status_detail(br_event_rules_from_manifest("{}", &r), BR_ENOTFOUND, "no rating scale");
    assert_int_equal(br_event_rules_from_manifest("{oops", &r), BR_EFORMAT);
    assert_status_detail(
        br_event_rules_from_manifest("{\"format\": \"bookrec-model\", \"parameters\": "
                                     "{\"rating_scale\": {\"min\": 5, \"max\": 1}}}",
                                     &r),
        BR_EFORMAT, "rating_scale");
}

static void test_rollback_to_redis(void **state)
{
    (void)state;
    if (!tu_redis_binary()) {
        printf("[  SKIP    ] redis-server is not installed: the Redis rollback is skipped\n");
        skip();
    }
    tu_redis server = {0, 0, ""};
    char dir[900], uri[PATH_MAX + 16], lmdb[PATH_MAX + 16]; /* tu_redis keeps 1024 */
    char book[BR_ID_MAX], version[BR_STORE_VERSION_MAX];
    fresh_dir(dir, sizeof dir);
    assert_int_equal(tu_redis_start(&server, dir), 0);
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d", server.port);
    snprintf(lmdb, sizeof lmdb, "lmdb:%s/store", dir);
    make_version(dir, "v000001", 0, lmdb);
    make_version(dir, "v000002", 2, lmdb);
    point_current(dir, "v000002");
    /* --store overrides the manifest's */
    assert_int_equal(br_models_rollback(dir, "v000001", uri, NULL), BR_OK);
    served(uri, book, version);
    assert_string_equal(book, "b1");
    assert_string_equal(version, "v000001");
    assert_int_equal(br_models_rollback(dir, "v000002", uri, NULL), BR_OK);
    served(uri, book, version);
    assert_string_equal(book, "b3");
    assert_string_equal(version, "v000002");
    tu_redis_stop(&server);
    /* unreachable: an error, the pointer stays */
    char cur[BR_MODEL_ID_MAX];
    assert_int_equal(br_models_rollback(dir, "v000001", "redis://127.0.0.1:1", NULL), BR_ENET);
    assert_int_equal(br_models_current(dir, cur, sizeof cur), BR_OK);
    assert_string_equal(cur, "v000002");
}

/* One reply of a command to the test server, as an integer or a string. */
static long long rcmd_int(int port, const char *cmd, char *str, size_t cap)
{
    redisContext *c = redisConnect("127.0.0.1", port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, cmd);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    if (str) snprintf(str, cap, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    redisFree(c);
    return v;
}

/* The model directory's embedding cache (docs/formats.md) with a vector
 * for each book's text, so the run embeds nothing: quick, and the vectors'
 * values do not matter here. */
static void seed_cache(const char *dir, const char *books)
{
    tu_embed_cache_onehot(dir, books);
}

/* br_train_run opens the encoder even when the cache has every vector. */
static void skip_without_use_lite(const char *what)
{
    char model[PATH_MAX];
    struct stat sb;
    if (br_encoder_model_path("use-lite", model, sizeof model) || stat(model, &sb)) {
        printf("[  SKIP    ] no use-lite model (make model): %s is skipped\n", what);
        skip();
    }
}

/* The options of this file's trains: the four-book catalogue, tiny fits. */
static br_train_options quick_options(const char *books, const char *ratings, const char *dir,
                                      const char *store, const char *events)
{
    br_train_options o = BR_TRAIN_OPTIONS_DEFAULT;
    o.books = books;
    o.ratings = ratings;
    o.model_dir = dir;
    o.store = store;
    o.events = events;
    o.clusters = 2;
    o.factors = 2;
    o.iterations = 2;
    o.top_n = 3;
    return o;
}

/* br_train_run publishing to Redis end to end (needs the use-lite model):
 * the stream's rating events are folded in once, acknowledged and trimmed;
 * the recs read back through the store API come from the new version; a
 * second run flips the version pointer and sets an expiry on the old
 * version's keys. */
static void test_train_to_redis(void **state)
{
    (void)state;
    skip_without_use_lite("the Redis train");
    if (!tu_redis_binary()) {
        printf("[  SKIP    ] redis-server is not installed: the Redis train is skipped\n");
        skip();
    }
    tu_redis server = {0, 0, ""};
    char dir[900], uri[PATH_MAX + 16], cmd[256], got[128];
    fresh_dir(dir, sizeof dir);
    assert_int_equal(tu_redis_start(&server, dir), 0);
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d", server.port);
    char *books = tu_write_file(dir, "books.csv", books_csv);
    seed_cache(dir, books);
    char *ratings = tu_write_file(dir, "ratings.csv",
                                  "user_id,book_id,rating\nu1,b1,5\nu1,b2,4\nu2,b2,5\nu2,b3,3\n"
                                  "u3,b3,5\nu3,b4,4\nu4,b1,2\nu4,b4,5\n");
    br_events *ev;
    assert_int_equal(br_events_open(uri, 0, &ev), BR_OK);
    br_event e[3] = {{"u5", "b1", BR_EVENT_RATING, 5, 100},
                     {"u5", "b2", BR_EVENT_RATING, 4, 101},
                     {"u5", "b3", BR_EVENT_CLICK, 1, 102}};
    assert_int_equal(br_events_append(ev, e, 3), BR_OK);

    br_train_options o = quick_options(books, ratings, dir, uri, uri);
    br_train_report rep;
    br_status st = br_train_run(&o, &rep);
    if (st) fail_msg("train: %s", br_error_detail());
    assert_int_equal(rep.n_users, 5);
    assert_int_equal(rep.embedded, 0); /* the seeded cache */
    assert_int_equal(rep.n_events, 2);
    assert_int_equal(rep.n_events_new, 2);
    assert_int_equal(rep.events_trimmed, 3); /* the click too: acknowledged */
    uint64_t n;
    assert_int_equal(br_events_count(ev, &n), BR_OK);
    assert_int_equal(n, 0);
    char v1[BR_MODEL_ID_MAX];
    strcpy(v1, rep.version);
    rcmd_int(server.port, "GET bookrec:version", got, sizeof got);
    assert_string_equal(got, v1);

    br_store *s;
    br_store_rec rec[3];
    size_t nr = 0;
    char version[BR_STORE_VERSION_MAX];
    assert_int_equal(br_store_open(uri, BR_STORE_RDONLY, &s), BR_OK);
    assert_int_equal(br_store_get_recs(s, "u5", rec, 3, &nr, version), BR_OK);
    assert_string_equal(version, v1);
    assert_true(nr >= 1);
    for (size_t i = 0; i < nr; i++) /* what u5 rated is not recommended */
        assert_true(strcmp(rec[i].book_id, "b1") && strcmp(rec[i].book_id, "b2"));
    int seen = 0;
    assert_int_equal(br_store_is_seen(s, "u5", "b2", &seen), BR_OK);
    assert_true(seen);
    br_store_close(s);

    /* one more event; the second run folds it and the base's two */
    br_event e2 = {"u5", "b4", BR_EVENT_RATING, 1, 103};
    assert_int_equal(br_events_append(ev, &e2, 1), BR_OK);
    st = br_train_run(&o, &rep);
    if (st) fail_msg("train: %s", br_error_detail());
    assert_int_equal(rep.n_events, 3);
    assert_int_equal(rep.n_events_new, 1);
    assert_string_not_equal(rep.version, v1);
    rcmd_int(server.port, "GET bookrec:version", got, sizeof got);
    assert_string_equal(got, rep.version);
    snprintf(cmd, sizeof cmd, "TTL bookrec:@%s:user:u5:recs", v1);
    assert_true(rcmd_int(server.port, cmd, NULL, 0) > 0);
    snprintf(cmd, sizeof cmd, "TTL bookrec:@%s:user:u5:recs", rep.version);
    assert_int_equal(rcmd_int(server.port, cmd, NULL, 0), -1);
    assert_int_equal(br_store_open(uri, BR_STORE_RDONLY, &s), BR_OK);
    assert_int_equal(br_store_get_recs(s, "u5", rec, 3, &nr, version), BR_OK);
    assert_string_equal(version, rep.version);
    for (size_t i = 0; i < nr; i++)
        assert_true(strcmp(rec[i].book_id, "b1") && strcmp(rec[i].book_id, "b2") &&
                    strcmp(rec[i].book_id, "b4"));
    br_store_close(s);
    br_events_close(ev);
    tu_redis_stop(&server);
    br_free(books);
    br_free(ratings);
}

/* A manifest's paths from br_train_run: run from the model directory's
 * parent with relative paths, the store inside it recorded relative to it,
 * one outside absolute, the inputs absolute (provenance); the rating scale
 * recorded; rating events that fail br_event_check or name no book of the
 * catalogue left out and counted, not failing the run; the log recorded
 * relative too and recognised as the same log when named another way. */
static void test_train_records_paths_and_rejects_events(void **state)
{
    (void)state;
    skip_without_use_lite("the train");
    char cwd[PATH_MAX], dir[PATH_MAX], rel[64], real_tmp[PATH_MAX], want[2 * PATH_MAX];
    char store[128], evuri[128], path[PATH_MAX + 64];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_non_null(realpath(tmp, real_tmp));
    fresh_dir(dir, sizeof dir);
    assert_int_equal(chdir(tmp), 0);
    snprintf(rel, sizeof rel, "m%d", case_no);
    char *books = tu_write_file(rel, "books.csv", books_csv);
    seed_cache(rel, books);
    char *ratings = tu_write_file(rel, "ratings.csv",
                                  "user_id,book_id,rating\nu1,b1,5\nu1,b2,4\nu2,b2,5\nu2,b3,3\n"
                                  "u3,b3,5\nu3,b4,4\nu4,b1,2\nu4,b4,5\n");
    snprintf(evuri, sizeof evuri, "file:%s/ev.log", rel);
    br_events *ev;
    assert_int_equal(br_events_open(evuri, 0, &ev), BR_OK);
    br_event e[4] = {{"u5", "b1", BR_EVENT_RATING, 99, 100},
                     {"u5", "b2", BR_EVENT_RATING, 4, 101},
                     {"u5", "b9", BR_EVENT_RATING, 4, 102},
                     {"u5", "b3", BR_EVENT_RATING, -3, 103}};
    assert_int_equal(br_events_append(ev, e, 4), BR_OK); /* the log takes them: structure only */
    br_events_close(ev);

    snprintf(store, sizeof store, "lmdb:%s/store", rel);
    br_train_options o = quick_options(books, ratings, rel, store, evuri);
    br_train_report rep;
    br_status st = br_train_run(&o, &rep);
    if (st) fail_msg("train: %s", br_error_detail());
    assert_int_equal(rep.n_events, 1); /* only u5's rating of b2 */
    assert_int_equal(rep.events_rejected, 3);
    assert_non_null(
        strstr(rep.events_rejected_first, "rating 99 is outside the rating scale 1..5"));
    assert_int_equal(rep.n_users, 5);
    char *m = NULL;
    assert_int_equal(br_models_manifest(rel, NULL, &m), BR_OK);
    json_t *j = json_loads(m, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "format_version")),
                     BR_MODEL_FORMAT_VERSION);
    assert_string_equal(json_string_value(json_object_get(j, "store")), "lmdb:store");
    json_t *jev = json_object_get(j, "events");
    assert_string_equal(json_string_value(json_object_get(jev, "log")), "file:ev.log");
    assert_int_equal(json_integer_value(json_object_get(jev, "rejected")), 3);
    snprintf(want, sizeof want, "%s/%s/books.csv", real_tmp, rel);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(j, "inputs"), "books"), "path")),
                        want);
    json_t *sc = json_object_get(json_object_get(j, "parameters"), "rating_scale");
    assert_true(json_number_value(json_object_get(sc, "min")) == 1.0 &&
                json_number_value(json_object_get(sc, "max")) == 5.0);
    json_decref(j);
    /* the rules the store's metadata gives are the version's */
    br_event_rules r = {0, 0};
    assert_int_equal(br_event_rules_from_manifest(m, &r), BR_OK);
    assert_true(r.rating_min == 1.0f && r.rating_max == 5.0f);
    br_free(m);

    /* The same log named another way (an absolute path): a run that died
     * before acknowledging (checkpoint gone) still skips what was folded. */
    snprintf(path, sizeof path, "%s/ev.log.ckpt-%s", rel, BR_TRAIN_EVENTS_GROUP);
    assert_int_equal(unlink(path), 0);
    char abs_ev[2 * PATH_MAX], outside[PATH_MAX + 16];
    snprintf(abs_ev, sizeof abs_ev, "file:%s/%s/ev.log", real_tmp, rel);
    o.events = abs_ev;
    /* a store outside the model directory, named relative: absolute */
    snprintf(outside, sizeof outside, "lmdb:outside%d", case_no);
    o.store = outside;
    o.rating_min = 0;
    o.rating_max = 100; /* 99 now fits, -3 still does not, b9 is still unknown */
    st = br_train_run(&o, &rep);
    if (st) fail_msg("train: %s", br_error_detail());
    assert_int_equal(rep.n_events_new, 0);
    assert_int_equal(rep.n_events, 1);
    assert_int_equal(rep.events_rejected, 0);
    assert_int_equal(br_models_manifest(rel, NULL, &m), BR_OK);
    j = json_loads(m, 0, NULL);
    snprintf(want, sizeof want, "lmdb:%s/outside%d", real_tmp, case_no);
    assert_string_equal(json_string_value(json_object_get(j, "store")), want);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "events"), "log")),
                        "file:ev.log");
    json_decref(j);
    assert_int_equal(br_event_rules_from_manifest(m, &r), BR_OK);
    assert_true(r.rating_min == 0.0f && r.rating_max == 100.0f);
    br_free(m);
    /* and from elsewhere, the store of the version opens */
    assert_int_equal(chdir("/"), 0);
    char uri[PATH_MAX + 64], version[BR_STORE_VERSION_MAX];
    assert_int_equal(br_models_store(dir, NULL, uri, sizeof uri), BR_OK);
    assert_string_equal(uri, want);
    assert_int_equal(br_models_store(dir, "v000001", uri, sizeof uri), BR_OK);
    snprintf(want, sizeof want, "lmdb:%s/store", dir);
    assert_string_equal(uri, want);
    br_store *s;
    assert_int_equal(br_store_open(uri, BR_STORE_RDONLY, &s), BR_OK);
    assert_int_equal(br_store_version(s, version, sizeof version), BR_OK);
    assert_string_equal(version, "v000001");
    br_store_close(s);
    assert_int_equal(chdir(cwd), 0);
    br_free(books);
    br_free(ratings);
}

static int setup(void **state)
{
    (void)state;
    tmp = tu_tmpdir("test_train");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    br_free(tmp);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_rollback_prune),
        cmocka_unit_test(test_killed_run_versions),
        cmocka_unit_test(test_rollback_needs_a_whole_version),
        cmocka_unit_test(test_current_must_be_a_version),
        cmocka_unit_test(test_train_refusals),
        cmocka_unit_test(test_rollback_to_redis),
        cmocka_unit_test(test_train_to_redis),
        cmocka_unit_test(test_store_path_resolution),
        cmocka_unit_test(test_event_rules_from_manifest),
        cmocka_unit_test(test_train_records_paths_and_rejects_events),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
