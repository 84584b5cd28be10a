/*
 * test_faults.c: torture tests in the spirit of curl's (src/core/fault.h).
 * A full run of each writer is counted first (calls of each kind: alloc,
 * write, fsync, rename), then run again with the Nth call failing, for
 * every N (allocations: the first and last ones, a bounded sample between).
 * After each failure: a non-empty error, nothing half-done:
 *  - train (save and publish): `current` still names the previous version
 *    and it opens, the LMDB store serves it, the lock is free, no
 *    temporary file, and no version directory without its `served` marker
 *    (one `models rollback` could choose);
 *  - the event log: every acknowledged batch reads back, nothing of a
 *    failed one;
 *  - an LMDB publish: the store still serves the previous version.
 * A run the failure did not stop (a retried or best-effort call) must be
 * complete instead. Everything runs in-process: train's OpenMP regions
 * must never be forked.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bookrec/encoder.h"
#include "bookrec/model.h"
#include "core/afile.h"
#include "core/fault.h"
#include "testutil.h"
#include "train/train_internal.h"

/* Allocations: every N up to ALLOC_ALL and the last ALLOC_TAIL (the
 * publish, the switch, the prune), about ALLOC_SAMPLE evenly between. */
#define ALLOC_ALL    100
#define ALLOC_TAIL   60
#define ALLOC_SAMPLE 100

static char *tmp;
static int tmp_shm; /* tmp is ours under /dev/shm, removed at the end */

static const char books_csv[] = "book_id,title,genre\n"
                                "b1,One,Fantasy\n"
                                "b2,Two,Sci-Fi\n"
                                "b3,Three,Fantasy\n"
                                "b4,Four,Romance\n";
static const char ratings_csv[] = "user_id,book_id,rating\nu1,b1,5\nu1,b2,4\nu2,b2,5\nu2,b3,3\n"
                                  "u3,b3,5\nu3,b4,4\nu4,b1,2\nu4,b4,5\n";

/* The N values run for a kind whose full run makes `count` calls. */
static uint64_t next_n(br__fault_kind kind, uint64_t n, uint64_t count)
{
    if (kind != BR__FAULT_ALLOC || n < ALLOC_ALL || n + ALLOC_TAIL >= count ||
        count <= ALLOC_ALL + ALLOC_TAIL + ALLOC_SAMPLE)
        return n + 1;
    uint64_t step = (count - ALLOC_ALL - ALLOC_TAIL) / ALLOC_SAMPLE + 1;
    return n + step < count - ALLOC_TAIL ? n + step : count - ALLOC_TAIL;
}

/* The files a failed run must not leave: afile's temporaries
 * ("<file>.tmp.<hex>") and train's versions/.tmp-<id>. */
static void assert_no_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (strstr(e->d_name, ".tmp")) fail_msg("left behind: %s/%s", dir, e->d_name);
        char path[PATH_MAX];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) assert_no_temporaries(path);
    }
    closedir(d);
}

/* ------------------------------------------------------------- train -- */

static int have_use_lite(void)
{
    char model[PATH_MAX];
    struct stat sb;
    return br_encoder_model_path("use-lite", model, sizeof model) == BR_OK && stat(model, &sb) == 0;
}

typedef struct train_case {
    char dir[PATH_MAX];
    char store[PATH_MAX + 16];
    char events[PATH_MAX + 16];
    char *books, *ratings;
    br_train_options o;
} train_case;

static void train_case_init(train_case *c, const char *name)
{
    snprintf(c->dir, sizeof c->dir, "%s/%s", tmp, name);
    assert_int_equal(mkdir(c->dir, 0777), 0);
    c->books = tu_write_file(c->dir, "books.csv", books_csv);
    c->ratings = tu_write_file(c->dir, "ratings.csv", ratings_csv);
    tu_embed_cache_onehot(c->dir, c->books);
    snprintf(c->store, sizeof c->store, "lmdb:%s/store", c->dir);
    snprintf(c->events, sizeof c->events, "file:%s/ev.log", c->dir);
    br_events *ev;
    assert_int_equal(br_events_open(c->events, 0, &ev), BR_OK);
    br_event e[2] = {{"u5", "b1", BR_EVENT_RATING, 5, 100}, {"u5", "b2", BR_EVENT_RATING, 4, 101}};
    assert_int_equal(br_events_append(ev, e, 2), BR_OK);
    br_events_close(ev);
    br_train_options o = BR_TRAIN_OPTIONS_DEFAULT;
    o.books = c->books;
    o.ratings = c->ratings;
    o.model_dir = c->dir;
    o.store = c->store;
    o.events = c->events;
    o.clusters = 2;
    o.factors = 2;
    o.iterations = 2;
    o.top_n = 3;
    c->o = o;
    /* the served version every failed run must leave serving */
    br_train_report rep;
    br_status st = br_train_run(&c->o, &rep);
    if (st) fail_msg("train: %s", br_error_detail());
    /* from now on the older ones go: the runs see the same directory, and
     * the prune runs under the faults too */
    c->o.keep = 2;
}

static void train_case_free(train_case *c)
{
    br_free(c->books);
    br_free(c->ratings);
}

/* Everything a reader of the model directory relies on, with `want` the
 * version that must be served. */
static void check_model_dir(const train_case *c, const char *want, const char *what)
{
    char cur[BR_MODEL_ID_MAX], served[BR_STORE_VERSION_MAX];
    if (br_models_current(c->dir, cur, sizeof cur)) fail_msg("%s: %s", what, br_error_detail());
    if (strcmp(cur, want)) fail_msg("%s: current is %s, want %s", what, cur, want);
    br_model *m = NULL;
    if (br_model_open(c->dir, NULL, &m)) fail_msg("%s: open: %s", what, br_error_detail());
    br_model_close(m);
    br_store *s = NULL;
    assert_int_equal(br_store_open(c->store, BR_STORE_RDONLY, &s), BR_OK);
    assert_int_equal(br_store_version(s, served, sizeof served), BR_OK);
    if (strcmp(served, want)) fail_msg("%s: the store serves %s, want %s", what, served, want);
    br_store_rec rec[4];
    size_t n = 0;
    assert_int_equal(br_store_get_recs(s, "u1", rec, 4, &n, NULL), BR_OK);
    assert_true(n > 0);
    br_store_close(s);
    /* the lock is free: the next run can start */
    int fd = -1;
    if (br__train_lock(c->dir, &fd)) fail_msg("%s: %s", what, br_error_detail());
    br__train_unlock(fd);
    assert_no_temporaries(c->dir);
    /* every version is one that was served: none a rollback must skip */
    char vroot[PATH_MAX + 16];
    snprintf(vroot, sizeof vroot, "%s/versions", c->dir);
    DIR *d = opendir(vroot);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char mark[PATH_MAX * 2];
        snprintf(mark, sizeof mark, "%s/%s/served", vroot, e->d_name);
        if (access(mark, F_OK)) fail_msg("%s: versions/%s was never served", what, e->d_name);
    }
    closedir(d);
    br_error_clear();
}

static void torture_train(br__fault_kind kind)
{
    if (!have_use_lite()) {
        printf("[  SKIP    ] no use-lite model (make model): the train torture is skipped\n");
        skip();
    }
    char name[32], prev[BR_MODEL_ID_MAX], what[96];
    snprintf(name, sizeof name, "train-%s", br__fault_name(kind));
    train_case c;
    train_case_init(&c, name);
    br_train_report rep;
    /* the count: a run like every later one (a served version before it) */
    br__fault_set(kind, 0);
    br_status st = br_train_run(&c.o, &rep);
    uint64_t count = br__fault_calls(kind);
    br__fault_clear();
    if (st) fail_msg("train: %s", br_error_detail());
    assert_true(count > 0);
    uint64_t runs = 0, failed = 0;
    for (uint64_t n = 1; n <= count; n = next_n(kind, n, count)) {
        assert_int_equal(br_models_current(c.dir, prev, sizeof prev), BR_OK);
        br_error_clear();
        br__fault_set(kind, n);
        st = br_train_run(&c.o, &rep);
        uint64_t hit = br__fault_injected();
        br__fault_clear();
        runs++;
        snprintf(what, sizeof what, "train, %s %llu of %llu", br__fault_name(kind),
                 (unsigned long long)n, (unsigned long long)count);
        if (st) {
            failed++;
            if (!br_error_detail()[0]) fail_msg("%s: failed (%d) without a message", what, st);
            if (!hit) fail_msg("%s: failed with no failure injected: %s", what, br_error_detail());
            check_model_dir(&c, prev, what);
        } else {
            /* the failure was retried or did not matter: the run is whole */
            check_model_dir(&c, rep.version, what);
        }
    }
    printf("train: %s: %llu calls in a run, %llu runs, %llu failed cleanly\n", br__fault_name(kind),
           (unsigned long long)count, (unsigned long long)runs, (unsigned long long)failed);
    assert_true(failed > 0);
    train_case_free(&c);
}

static void test_train_alloc(void **state)
{
    (void)state;
    torture_train(BR__FAULT_ALLOC);
}

static void test_train_write(void **state)
{
    (void)state;
    torture_train(BR__FAULT_WRITE);
}

static void test_train_fsync(void **state)
{
    (void)state;
    torture_train(BR__FAULT_FSYNC);
}

static void test_train_rename(void **state)
{
    (void)state;
    torture_train(BR__FAULT_RENAME);
}

/* A full disk on the publish path: every write from the Nth on fails (the
 * disk stays full), for N across the whole run. */
static void test_train_disk_full(void **state)
{
    (void)state;
    if (!have_use_lite()) {
        printf("[  SKIP    ] no use-lite model (make model): the full-disk train is skipped\n");
        skip();
    }
    train_case c;
    train_case_init(&c, "train-full");
    br_train_report rep;
    char prev[BR_MODEL_ID_MAX], what[64];
    br__fault_set(BR__FAULT_WRITE, 0);
    assert_int_equal(br_train_run(&c.o, &rep), BR_OK);
    uint64_t count = br__fault_calls(BR__FAULT_WRITE);
    br__fault_clear();
    for (uint64_t n = 1; n <= count; n++) {
        assert_int_equal(br_models_current(c.dir, prev, sizeof prev), BR_OK);
        br__fault_set_from(BR__FAULT_WRITE, n);
        br_status st = br_train_run(&c.o, &rep);
        br__fault_clear();
        snprintf(what, sizeof what, "full disk from write %llu", (unsigned long long)n);
        if (st == BR_OK) fail_msg("%s: the run succeeded", what);
        if (!strstr(br_error_detail(), strerror(ENOSPC)))
            fail_msg("%s: the error does not say so: %s", what, br_error_detail());
        check_model_dir(&c, prev, what);
    }
    train_case_free(&c);
}

/* A run killed after the store's switch and before `current` moved (its
 * marker still a temporary): the next run keeps that version, which the
 * store serves, moves `current` to it and publishes the one after. */
static void test_killed_after_switch(void **state)
{
    (void)state;
    if (!have_use_lite()) {
        printf("[  SKIP    ] no use-lite model (make model): skipped\n");
        skip();
    }
    train_case c;
    train_case_init(&c, "killed-switch");
    br_train_report rep;
    char before[BR_MODEL_ID_MAX], path[PATH_MAX * 2], target[PATH_MAX];
    assert_int_equal(br_models_current(c.dir, before, sizeof before), BR_OK);
    assert_int_equal(br_train_run(&c.o, &rep), BR_OK);
    /* the state such a kill leaves: the store on rep.version, the pointer
     * on the one before, no marker */
    snprintf(path, sizeof path, "%s/versions/%s/served", c.dir, rep.version);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof path, "%s/current", c.dir);
    snprintf(target, sizeof target, "versions/%s", before);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink(target, path), 0);
    char killed[BR_MODEL_ID_MAX];
    snprintf(killed, sizeof killed, "%s", rep.version);
    if (br_train_run(&c.o, &rep)) fail_msg("train after the kill: %s", br_error_detail());
    check_model_dir(&c, rep.version, "the run after");
    snprintf(path, sizeof path, "%s/versions/%s/manifest.json", c.dir, killed);
    assert_int_equal(access(path, F_OK), 0); /* kept, and marked (check_model_dir) */
    assert_string_not_equal(rep.version, killed);
    train_case_free(&c);
}

/* `models rollback` to the older version under each kind of fault, for
 * every N: a failed rollback leaves the newer version served and named by
 * `current` (the pointer is written before the store switches). */
static void test_rollback_faults(void **state)
{
    (void)state;
    if (!have_use_lite()) {
        printf("[  SKIP    ] no use-lite model (make model): the rollback torture is skipped\n");
        skip();
    }
    train_case c;
    train_case_init(&c, "rollback");
    br_train_report rep;
    char old[BR_MODEL_ID_MAX], cur[BR_MODEL_ID_MAX], to[BR_MODEL_ID_MAX], what[96];
    assert_int_equal(br_models_current(c.dir, old, sizeof old), BR_OK);
    assert_int_equal(br_train_run(&c.o, &rep), BR_OK);
    snprintf(cur, sizeof cur, "%s", rep.version);
    for (int k = 0; k < BR__FAULT_KINDS; k++) {
        br__fault_kind kind = (br__fault_kind)k;
        br__fault_set(kind, 0);
        assert_int_equal(br_models_rollback(c.dir, old, NULL, to), BR_OK);
        uint64_t count = br__fault_calls(kind), failed = 0;
        br__fault_clear();
        assert_int_equal(br_models_rollback(c.dir, cur, NULL, to), BR_OK);
        for (uint64_t n = 1; n <= count; n = next_n(kind, n, count)) {
            br__fault_set(kind, n);
            br_status st = br_models_rollback(c.dir, old, NULL, to);
            br__fault_clear();
            snprintf(what, sizeof what, "rollback, %s %llu of %llu", br__fault_name(kind),
                     (unsigned long long)n, (unsigned long long)count);
            if (st) {
                failed++;
                if (!br_error_detail()[0]) fail_msg("%s: failed without a message", what);
                check_model_dir(&c, cur, what);
            } else {
                check_model_dir(&c, old, what);
                assert_int_equal(br_models_rollback(c.dir, cur, NULL, to), BR_OK);
            }
        }
        printf("rollback: %s: %llu calls, %llu failed cleanly\n", br__fault_name(kind),
               (unsigned long long)count, (unsigned long long)failed);
    }
    train_case_free(&c);
}

/* --------------------------------------------------------- event log -- */

#define EV_BATCHES 4
#define EV_BATCH   3

/* Appends EV_BATCHES batches to a fresh log under the armed fault; the
 * acknowledged ones are `acked` (a bit per batch). */
static unsigned append_batches(const char *uri, char users[EV_BATCHES][EV_BATCH][16])
{
    br_events *ev = NULL;
    unsigned acked = 0;
    if (br_events_open(uri, 0, &ev)) {
        assert_true(br_error_detail()[0] != 0);
        return 0;
    }
    for (int b = 0; b < EV_BATCHES; b++) {
        br_event e[EV_BATCH];
        for (int i = 0; i < EV_BATCH; i++)
            e[i] = (br_event){users[b][i], "b1", BR_EVENT_RATING, 4, 100 + b * EV_BATCH + i};
        if (br_events_append(ev, e, EV_BATCH) == BR_OK)
            acked |= 1u << b;
        else
            assert_true(br_error_detail()[0] != 0);
    }
    br_events_close(ev);
    return acked;
}

typedef struct ev_seen {
    char users[EV_BATCHES * EV_BATCH][16];
    size_t n;
} ev_seen;

static br_status collect(const br_event *e, const char *pos, void *user)
{
    (void)pos;
    ev_seen *s = user;
    if (s->n < EV_BATCHES * EV_BATCH) snprintf(s->users[s->n], 16, "%s", e->user_id);
    s->n++;
    return BR_OK;
}

static void torture_events(br__fault_kind kind, int from)
{
    char users[EV_BATCHES][EV_BATCH][16], uri[PATH_MAX + 16], what[96];
    for (int b = 0; b < EV_BATCHES; b++)
        for (int i = 0; i < EV_BATCH; i++) snprintf(users[b][i], 16, "r%d-%d", b, i);
    snprintf(uri, sizeof uri, "file:%s/ev-%s%s-count.log", tmp, br__fault_name(kind),
             from ? "-full" : "");
    br__fault_set(kind, 0);
    unsigned all = append_batches(uri, users);
    uint64_t count = br__fault_calls(kind);
    br__fault_clear();
    assert_int_equal(all, (1u << EV_BATCHES) - 1);
    assert_true(count > 0); /* the hooks are where the log writes */
    uint64_t runs = 0;
    for (uint64_t n = 1; n <= count; n = next_n(kind, n, count), runs++) {
        snprintf(uri, sizeof uri, "file:%s/ev-%s%s-%llu.log", tmp, br__fault_name(kind),
                 from ? "-full" : "", (unsigned long long)n);
        snprintf(what, sizeof what, "event log, %s %llu of %llu%s", br__fault_name(kind),
                 (unsigned long long)n, (unsigned long long)count, from ? " on" : "");
        if (from)
            br__fault_set_from(kind, n);
        else
            br__fault_set(kind, n);
        unsigned acked = append_batches(uri, users);
        br__fault_clear();
        if (acked == all) fail_msg("%s: no append failed", what);
        /* reopened (repairing what a failed append left), then read */
        br_events *ev;
        if (br_events_open(uri, 0, &ev)) fail_msg("%s: reopen: %s", what, br_error_detail());
        ev_seen s = {.n = 0};
        assert_int_equal(br_events_read(ev, "check", 0, collect, &s, NULL, NULL), BR_OK);
        br_events_close(ev);
        size_t k = 0;
        for (int b = 0; b < EV_BATCHES; b++)
            for (int i = 0; (acked >> b & 1) && i < EV_BATCH; i++, k++)
                if (k >= s.n || strcmp(s.users[k], users[b][i]))
                    fail_msg("%s: acknowledged event %s is not read back in place", what,
                             users[b][i]);
        if (s.n != k) fail_msg("%s: %zu events read, %zu acknowledged", what, s.n, k);
    }
    printf("event log: %s%s: %llu calls, %llu runs\n", br__fault_name(kind),
           from ? " (full disk)" : "", (unsigned long long)count, (unsigned long long)runs);
}

static void test_events_faults(void **state)
{
    (void)state;
    torture_events(BR__FAULT_ALLOC, 0);
    torture_events(BR__FAULT_WRITE, 0);
    torture_events(BR__FAULT_FSYNC, 0);
    torture_events(BR__FAULT_WRITE, 1); /* a full disk: a short write, then none */
}

/* ------------------------------------------------------- LMDB publish -- */

static br_status publish(br_store *s, const char *version, int variant)
{
    br_store_pub *p = NULL;
    br_status st = br_store_publish_begin(s, version, &p);
    static const char *const ids[] = {"b1", "b2", "b3", "b4"};
    for (int b = 0; b < 4 && !st; b++) {
        br_store_book bk = {ids[b], "A title", "An author", "Fantasy", NULL, NULL, 2000, b % 2};
        st = br_store_pub_put_book(p, &bk);
    }
    for (int u = 0; u < 40 && !st; u++) {
        char uid[16];
        snprintf(uid, sizeof uid, "u%d", u);
        const char *row[2] = {ids[variant % 4], ids[(variant + 1) % 4]};
        float sc[2] = {2, 1};
        st = br_store_pub_put_recs(p, uid, row, sc, 2);
        if (!st) st = br_store_pub_put_seen(p, uid, ids + 2, 2);
    }
    if (!st) st = br_store_pub_set_meta(p, "{\"format\": \"test\"}");
    if (!st) return br_store_publish_commit(p);
    br_store_publish_abort(p);
    return st;
}

static void check_store(const char *uri, const char *want, int variant, const char *what)
{
    br_store *s;
    char served[BR_STORE_VERSION_MAX];
    assert_int_equal(br_store_open(uri, BR_STORE_RDONLY, &s), BR_OK);
    assert_int_equal(br_store_version(s, served, sizeof served), BR_OK);
    if (strcmp(served, want)) fail_msg("%s: the store serves %s, want %s", what, served, want);
    static const char *const ids[] = {"b1", "b2", "b3", "b4"};
    for (int u = 0; u < 40; u += 13) {
        char uid[16];
        br_store_rec rec[4];
        size_t n = 0;
        snprintf(uid, sizeof uid, "u%d", u);
        assert_int_equal(br_store_get_recs(s, uid, rec, 4, &n, NULL), BR_OK);
        if (n != 2 || strcmp(rec[0].book_id, ids[variant % 4]))
            fail_msg("%s: %s's list is not version %s's", what, uid, want);
    }
    br_store_close(s);
}

static void torture_store(br__fault_kind kind)
{
    char uri[PATH_MAX + 16], version[32], prev[32], what[96];
    snprintf(uri, sizeof uri, "lmdb:%s/store-%s", tmp, br__fault_name(kind));
    br_store *s;
    assert_int_equal(br_store_open(uri, 0, &s), BR_OK);
    assert_int_equal(publish(s, "p0", 0), BR_OK);
    br__fault_set(kind, 0);
    assert_int_equal(publish(s, "p1", 1), BR_OK);
    uint64_t count = br__fault_calls(kind);
    br__fault_clear();
    assert_true(count > 0);
    int variant = 1;
    snprintf(prev, sizeof prev, "p1");
    uint64_t runs = 0;
    for (uint64_t n = 1; n <= count; n = next_n(kind, n, count), runs++) {
        snprintf(version, sizeof version, "p%llu", (unsigned long long)n + 1);
        snprintf(what, sizeof what, "store publish, %s %llu of %llu", br__fault_name(kind),
                 (unsigned long long)n, (unsigned long long)count);
        br_error_clear();
        br__fault_set(kind, n);
        br_status st = publish(s, version, variant + 1);
        br__fault_clear();
        if (st) {
            if (!br_error_detail()[0]) fail_msg("%s: failed without a message", what);
        } else {
            variant++;
            snprintf(prev, sizeof prev, "%s", version);
        }
        check_store(uri, prev, variant, what);
    }
    br_store_close(s);
    printf("store publish: %s: %llu calls, %llu runs\n", br__fault_name(kind),
           (unsigned long long)count, (unsigned long long)runs);
}

static void test_store_faults(void **state)
{
    (void)state;
    torture_store(BR__FAULT_ALLOC);
    torture_store(BR__FAULT_WRITE);
}

/* ---------------------------------------------------- listing versions -- */

/* br_models_list (what rollback chooses from) under every failed
 * allocation: an error, or both versions; never one quietly left out (a
 * manifest it could not read for want of memory is no incomplete version). */
static void test_models_list(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/list", tmp);
    snprintf(path, sizeof path, "%s/versions", dir);
    assert_int_equal(mkdir(dir, 0777), 0);
    assert_int_equal(mkdir(path, 0777), 0);
    for (int i = 1; i <= 2; i++) {
        snprintf(path, sizeof path, "%s/versions/v00000%d", dir, i);
        assert_int_equal(mkdir(path, 0777), 0);
        br_free(tu_write_file(path, "manifest.json", "{\"created_at\": 1}"));
        br_free(tu_write_file(path, "served", "served\n"));
    }
    br_model_version *v;
    size_t n;
    br__fault_set(BR__FAULT_ALLOC, 0);
    assert_int_equal(br_models_list(dir, &v, &n), BR_OK);
    uint64_t count = br__fault_calls(BR__FAULT_ALLOC);
    br__fault_clear();
    br_free(v);
    assert_int_equal(n, 2);
    for (uint64_t k = 1; k <= count; k++) {
        br__fault_set(BR__FAULT_ALLOC, k);
        br_status st = br_models_list(dir, &v, &n);
        br__fault_clear();
        if (st == BR_OK) {
            br_free(v);
            if (n != 2)
                fail_msg("allocation %llu failed: %zu versions listed, no error",
                         (unsigned long long)k, n);
        } else {
            assert_int_equal(st, BR_ENOMEM);
        }
    }
}

/* --------------------------------------------------------- the hooks -- */

/* The hooks themselves: off, they count nothing and fail nothing; the Nth
 * call fails with the real error; "from" keeps failing. */
static void test_hooks(void **state)
{
    (void)state;
    void *p = br_malloc(8);
    assert_non_null(p);
    br_free(p);
    assert_int_equal(br__fault_calls(BR__FAULT_ALLOC), 0);
    br__fault_set(BR__FAULT_ALLOC, 2);
    p = br_malloc(8);
    assert_non_null(p);
    errno = 0;
    assert_null(br_malloc(8));
    assert_int_equal(errno, ENOMEM);
    void *q = br_malloc(8);
    assert_non_null(q);
    assert_int_equal(br__fault_calls(BR__FAULT_ALLOC), 3);
    assert_int_equal(br__fault_injected(), 1);
    br__fault_clear();
    br_free(p);
    br_free(q);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/hook", tmp);
    br__fault_set_from(BR__FAULT_RENAME, 1);
    assert_status_detail(br__afile_write(path, "x", 1), BR_EIO, "rename failed");
    assert_status_detail(br__afile_write(path, "x", 1), BR_EIO, strerror(EIO));
    br__fault_clear();
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(br__afile_write(path, "x", 1), BR_OK);
    assert_no_temporaries(tmp);
}

static int setup(void **state)
{
    (void)state;
    /* Hundreds of trains, each with dozens of fsyncs: on a memory file
     * system when there is one (the failures are injected, not the disk's). */
    char shm[64];
    snprintf(shm, sizeof shm, "/dev/shm/bookrec-test_faults.%ld", (long)getpid());
    tmp_shm = mkdir(shm, 0700) == 0;
    tmp = tmp_shm ? br_strdup(shm) : tu_tmpdir("test_faults");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    br__fault_clear();
    if (tmp_shm) br__train_rmtree(tmp);
    br_free(tmp);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hooks),
        cmocka_unit_test(test_models_list),
        cmocka_unit_test(test_events_faults),
        cmocka_unit_test(test_store_faults),
        cmocka_unit_test(test_train_rename),
        cmocka_unit_test(test_train_fsync),
        cmocka_unit_test(test_train_write),
        cmocka_unit_test(test_train_disk_full),
        cmocka_unit_test(test_train_alloc),
        cmocka_unit_test(test_rollback_faults),
        cmocka_unit_test(test_killed_after_switch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
