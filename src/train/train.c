/*
 * train.c: the `bookrec train` pipeline (bookrec/train.h).
 *
 * ingest -> embed -> tribes -> index -> collab -> top-n -> publish, each a
 * progress stage "train: <step>". Every artifact goes into
 * versions/.tmp-<id>/ through the library's savers (each writes a
 * temporary file, fsyncs it and renames it); the manifest is written last,
 * the directory fsynced and renamed to versions/<id>; then the store is
 * published; then `current` is re-pointed. So at every instant `current`
 * names a complete version and the store serves a complete version.
 *
 * Determinism: everything is seeded (k-means, ALS, HNSW levels), the index
 * is built by sequential inserts (batch inserts depend on thread timing),
 * and a re-run with unchanged inputs extends the previous index by nothing,
 * so the artifacts are byte-identical for a fixed seed and thread count.
 * The manifest differs (timings, creation time, version id).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bookrec/content.h"
#include "bookrec/data.h"
#include "bookrec/encoder.h"
#include "bookrec/eval.h"
#include "bookrec/hybrid.h"
#include "bookrec/index.h"
#include "bookrec/npy.h"
#include "bookrec/sparse.h"
#include "bookrec/text.h"
#include "core/afile.h"
#include "core/fault.h"
#include "core/hash.h"
#include "model/model_internal.h"
#include "train_internal.h"

/* Readers ranked per br_hybrid_rank call: bounds the scratch memory. */
#define TOPN_BLOCK 256

static const char *const stage_names[BR_TRAIN_STAGES] = {"ingest", "embed", "tribes", "index",
                                                         "collab", "top-n", "publish"};

br_status br__train_lock(const char *model_dir, int *fd_out)
{
    char path[PATH_MAX];
    *fd_out = -1;
    if (mkdir(model_dir, 0777) && errno != EEXIST)
        return br_error(BR_EIO, "%s: %s", model_dir, strerror(errno));
    br_status st = br__train_path(path, sizeof path, "%s/.lock", model_dir);
    if (st) return st;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return br_error(BR_EIO, "%s: %s", path, strerror(errno));
    /* flock dies with the process: a killed run never leaves it held. */
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        close(fd);
        return br_error(BR_EEXIST, "%s: another train or rollback is running", model_dir);
    }
    *fd_out = fd;
    return BR_OK;
}

void br__train_unlock(int fd)
{
    if (fd >= 0) close(fd);
}

/* Streaming FNV-1a of a file, and its size: the manifest's input record. */
br_status br__train_hash_file(const char *path, uint64_t *hash, uint64_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return br_error(BR_EIO, "%s: %s", path, strerror(errno));
    unsigned char buf[1 << 16];
    uint64_t h = BR__FNV1A64_INIT, n = 0;
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) {
        h = br__fnv1a64_update(h, buf, r);
        n += r;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return br_error(BR_EIO, "%s: read error", path);
    *hash = h;
    *size = n;
    return BR_OK;
}

static br_status copy_file(const char *from, const char *to)
{
    char *text = NULL;
    /* Catalogues are text; read whole (at 100k books a few tens of MB). */
    br_status st = br__read_text(from, &text);
    if (!st) st = br__afile_write(to, text, strlen(text));
    br_free(text);
    return st;
}

/* One id a line. */
static br_status write_ids(const char *path, const br_idmap *m)
{
    uint32_t n = br_idmap_count(m);
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++) len += strlen(br_idmap_name(m, i)) + 1;
    char *buf = br_malloc(len + 1);
    if (!buf) return br_error(BR_ENOMEM, "%s", path);
    char *p = buf;
    for (uint32_t i = 0; i < n; i++) {
        size_t l = strlen(br_idmap_name(m, i));
        memcpy(p, br_idmap_name(m, i), l);
        p[l] = '\n';
        p += l + 1;
    }
    br_status st = br__afile_write(path, buf, len);
    br_free(buf);
    return st;
}

/* Removes what killed runs left (we hold the lock: no run is writing):
 * versions/.tmp-*, and complete versions that never published (killed
 * between their rename into versions/ and the store; br_model_version's
 * `served`), which a rollback must not choose and which hold disk. The
 * current version first gets its marker (a model directory from before
 * the markers has none); it is never removed. And the new `current` link
 * a run killed before its switch left prepared.
 * `in_store`: the version the store serves ("" none). A run killed after
 * the store's switch and before its pointer moved left the store serving
 * a version whose marker was still a temporary: it is finished (marked,
 * `current` moved to it), never removed. */
static void remove_stale(const char *model_dir, const char *in_store)
{
    char vdir[PATH_MAX], path[PATH_MAX], cur[BR_MODEL_ID_MAX];
    if (in_store[0] && br_models_current(model_dir, cur, sizeof cur) == BR_OK &&
        strcmp(cur, in_store) != 0 &&
        br_models_path(model_dir, in_store, path, sizeof path) == BR_OK &&
        access(path, F_OK) == 0) {
        br__models_pointer ptr;
        if (br__models_pointer_prepare(model_dir, in_store, &ptr) == BR_OK &&
            br__models_pointer_commit(&ptr) == BR_OK)
            br_log(BR_LOG_WARN,
                   "train: a run killed after publishing %s to the store left `current` at %s: "
                   "it now names %s",
                   in_store, cur, in_store);
    }
    DIR *d = opendir(model_dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "current.tmp.", 12) &&
            !br__train_path(path, sizeof path, "%s/%s", model_dir, e->d_name))
            unlink(path);
    if (d) closedir(d);
    if (br__train_path(vdir, sizeof vdir, "%s/versions", model_dir)) return;
    d = opendir(vdir);
    if (!d) return;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, ".tmp-", 5) &&
            !br__train_path(path, sizeof path, "%s/%s", vdir, e->d_name))
            br__train_rmtree(path);
    closedir(d);
    br_model_version *v = NULL;
    size_t n = 0;
    if (br_models_list(model_dir, &v, &n) == BR_OK)
        for (size_t i = 0; i < n; i++)
            if (!v[i].served && !v[i].current &&
                !br__train_path(path, sizeof path, "%s/%s", vdir, v[i].id))
                br__train_rmtree(path);
    br_free(v);
    if (br_models_current(model_dir, cur, sizeof cur) == BR_OK)
        (void)br__models_mark_served(model_dir, cur);
    br_error_clear();
}

/* Seen sets for the publish: each reader's rated books as ids. */
typedef struct seen_lists {
    const char **ids;        /* (nnz,) */
    const char *const **row; /* (users,) pointers into ids */
    size_t *n;
} seen_lists;

typedef struct run_state {
    const br_train_options *o;
    br_train_report *rep;
    char tmp[PATH_MAX];  /* versions/.tmp-<id> */
    char vdir[PATH_MAX]; /* versions/<id> */
    char prev_dir[PATH_MAX];
    char store_uri[PATH_MAX];
    /* What the manifest records (br__uri_record): the store and the log
     * relative to the model directory or absolute, the inputs absolute. */
    char store_rec[PATH_MAX + 64], events_rec[PATH_MAX + 64];
    char books_abs[PATH_MAX], ratings_abs[PATH_MAX];
    br_event_rules rules; /* the run's rating scale, for the folded events */
    br_catalog *cat;
    br_ratings *ratings;
    /* The training data: the CSV's ratings, or (with rating events from
     * the log) a merged copy, one rating per (reader, book), file order
     * then log order. Readers: the ratings' then new ones from the log. */
    br_idmap *uids;
    uint32_t n_users;
    size_t n;
    const uint32_t *tu, *tb;
    const float *tv;
    const int64_t *tt; /* may be NULL */
    void *owned[4];    /* the merged arrays, when there are events */
    /* The folded rating events: the base version's snapshot, then the
     * log's events not folded yet (docs/store.md, "Events and versions"). */
    size_t n_ev, cap_ev, n_ev_new;
    const char *ev_src; /* where the event being read comes from (errors) */
    char base_id[BR_MODEL_ID_MAX];
    char base_log[PATH_MAX];          /* the log the base version read */
    char base_pos[BR_EVENTS_POS_MAX]; /* ... and where it stopped */
    char ev_pos[BR_EVENTS_POS_MAX];   /* where this version stops */
    char read_pos[BR_EVENTS_POS_MAX]; /* the last position delivered now */
    size_t ev_delivered, ev_skipped;
    uint32_t *eu, *eb;
    float *evv;
    int64_t *ets;
    float *emb;
    size_t dim;
    uint64_t books_hash, books_size, ratings_hash, ratings_size;
    br_tribes *tribes;
    br_hybrid *hyb;
    const br_cf_model *cf; /* the hybrid's own (cf_own NULL) or fitted here */
    br_cf_model *cf_own;
    const br_csr *r; /* the hybrid's rating matrix (built once, by its fit) */
    seen_lists seen; /* from r, kept for the publish when the hybrid is freed */
    int32_t *rec_items;
    float *rec_scores;
    br_hnsw *hnsw;             /* the index, kept from its stage for the neighbours */
    br__model_derived derived; /* what serving reads, computed once here */
    int64_t ev_until;          /* the newest event timestamp the run read */
    int in_versions;           /* s->vdir exists: a failure removes it ... */
    int keep_vdir;             /* ... unless the store could not be switched back */
} run_state;

static double secs_since(uint64_t t0)
{
    return (double)(br_now_ns() - t0) / 1e9;
}

static br_status on_event(const br_event *e, const char *pos, void *user)
{
    run_state *s = user;
    /* every event the run saw, folded or not, is old news to the version */
    if (e->timestamp > s->ev_until) s->ev_until = e->timestamp;
    if (e->type != BR_EVENT_RATING) return BR_OK;
    /* The check every entry point applies, with this run's scale. A bad
     * event is counted and left out, not an error: the log is append-only,
     * and one bad event must not fail every later run. */
    int64_t b = -1;
    br_status st = br_event_check(e, &s->rules);
    if (!st && (b = br_catalog_find(s->cat, e->book_id)) < 0)
        st = br_error(BR_ENOTFOUND, "book '%s' is not in the catalogue", e->book_id);
    if (st) {
        if (s->rep->events_rejected++ == 0)
            snprintf(s->rep->events_rejected_first, sizeof s->rep->events_rejected_first,
                     "%s: event at %s: %s", s->ev_src, pos, br_error_detail());
        br_error_clear();
        return BR_OK;
    }
    uint32_t u;
    int added;
    st = br_idmap_intern(s->uids, e->user_id, strlen(e->user_id), &u, &added);
    if (st) return st;
    if (s->n_ev == s->cap_ev) {
        size_t cap = s->cap_ev ? 2 * s->cap_ev : 1024;
        uint32_t *nu = br_realloc(s->eu, cap * sizeof *nu);
        if (nu) s->eu = nu;
        uint32_t *nb = br_realloc(s->eb, cap * sizeof *nb);
        if (nb) s->eb = nb;
        float *nv = br_realloc(s->evv, cap * sizeof *nv);
        if (nv) s->evv = nv;
        int64_t *nt = br_realloc(s->ets, cap * sizeof *nt);
        if (nt) s->ets = nt;
        if (!nu || !nb || !nv || !nt) return br_error(BR_ENOMEM, "events");
        s->cap_ev = cap;
    }
    s->eu[s->n_ev] = u;
    s->eb[s->n_ev] = (uint32_t)b;
    s->evv[s->n_ev] = e->value;
    s->ets[s->n_ev] = e->timestamp;
    s->n_ev++;
    return BR_OK;
}

typedef struct pair_key {
    uint32_t u, b;
    size_t i;
} pair_key;

static int cmp_pair(const void *x, const void *y)
{
    const pair_key *a = x, *b = y;
    if (a->u != b->u) return a->u < b->u ? -1 : 1;
    if (a->b != b->b) return a->b < b->b ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* CSV ratings then rating events, the later rating of a (reader, book)
 * pair winning (and taking its later place, as the CSV loader does). */
static br_status merge_events(run_state *s)
{
    size_t nc = br_ratings_count(s->ratings), n = nc + s->n_ev;
    const int64_t *cts = br_ratings_timestamps(s->ratings);
    uint32_t *u = br_malloc(n * sizeof *u), *b = br_malloc(n * sizeof *b);
    float *v = br_malloc(n * sizeof *v);
    int64_t *t = br_malloc(n * sizeof *t);
    pair_key *k = br_malloc(n * sizeof *k);
    uint8_t *keep = br_calloc(n, 1);
    s->owned[0] = u;
    s->owned[1] = b;
    s->owned[2] = v;
    s->owned[3] = t;
    br_status st = BR_OK;
    if (!u || !b || !v || !t || !k || !keep) st = br_error(BR_ENOMEM, "merging events");
    if (!st) {
        memcpy(u, br_ratings_users(s->ratings), nc * sizeof *u);
        memcpy(b, br_ratings_books(s->ratings), nc * sizeof *b);
        memcpy(v, br_ratings_values(s->ratings), nc * sizeof *v);
        for (size_t i = 0; i < nc; i++) t[i] = cts ? cts[i] : 0;
        memcpy(u + nc, s->eu, s->n_ev * sizeof *u);
        memcpy(b + nc, s->eb, s->n_ev * sizeof *b);
        memcpy(v + nc, s->evv, s->n_ev * sizeof *v);
        memcpy(t + nc, s->ets, s->n_ev * sizeof *t);
        for (size_t i = 0; i < n; i++) k[i] = (pair_key){u[i], b[i], i};
        qsort(k, n, sizeof *k, cmp_pair);
        for (size_t i = 0; i < n; i++)
            if (i + 1 == n || k[i + 1].u != k[i].u || k[i + 1].b != k[i].b) keep[k[i].i] = 1;
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            if (!keep[i]) continue;
            u[w] = u[i];
            b[w] = b[i];
            v[w] = v[i];
            t[w] = t[i];
            w++;
        }
        s->n = w;
        s->tu = u;
        s->tb = b;
        s->tv = v;
        s->tt = t;
    }
    br_free(k);
    br_free(keep);
    return st;
}

/* The log's events: those the base version folded in already are skipped
 * (delivered again when a run died between publishing and acknowledging). */
static br_status on_new_event(const br_event *e, const char *pos, void *user)
{
    run_state *s = user;
    s->ev_delivered++;
    br_status pst = br_events_pos_advance(s->read_pos, pos);
    if (pst) return pst;
    if (br_events_pos_covers(s->base_pos, pos)) {
        s->ev_skipped++;
        return BR_OK;
    }
    size_t before = s->n_ev;
    br_status st = on_event(e, pos, user);
    s->n_ev_new += s->n_ev - before;
    return st;
}

/* The base of the folded events is the newest complete version, not
 * `current`: a rollback changes what is served, not which events have
 * been consumed from the log. Its manifest's "events" names its snapshot
 * and the log position it stopped at. */
static br_status events_base(run_state *s, char *snapshot, size_t cap)
{
    snapshot[0] = '\0';
    br_model_version *v = NULL;
    size_t n = 0;
    br_status st = br_models_list(s->o->model_dir, &v, &n);
    if (st || n == 0) {
        br_free(v);
        return st;
    }
    snprintf(s->base_id, sizeof s->base_id, "%s", v[n - 1].id);
    br_free(v);
    char *text = NULL;
    if ((st = br_models_manifest(s->o->model_dir, s->base_id, &text))) return st;
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    br_free(text);
    if (!j) return br_error(BR_EFORMAT, "version %s: manifest: %s", s->base_id, je.text);
    json_t *e = json_object_get(j, "events");
    const char *snap = json_string_value(json_object_get(e, "snapshot"));
    const char *log = json_string_value(json_object_get(e, "log"));
    const char *pos = json_string_value(json_object_get(e, "position"));
    if (log)
        st = br__uri_resolve(s->o->model_dir,
                             json_integer_value(json_object_get(j, "format_version")), log,
                             s->base_log, sizeof s->base_log);
    if (!st && pos) snprintf(s->base_pos, sizeof s->base_pos, "%s", pos);
    if (!st && snap) {
        char dir[PATH_MAX];
        st = br_models_path(s->o->model_dir, s->base_id, dir, sizeof dir);
        if (!st) st = br__train_path(snapshot, cap, "%s/%s", dir, snap);
    }
    json_decref(j);
    return st;
}

static br_status read_events(run_state *s)
{
    char snapshot[PATH_MAX], uri[PATH_MAX + 8];
    br_status st = events_base(s, snapshot, sizeof snapshot);
    br_events *ev = NULL;
    if (!st && snapshot[0]) {
        /* Every rating event an earlier version folded in, in log order. */
        s->ev_src = snapshot;
        st = br__train_path(uri, sizeof uri, "file:%s", snapshot);
        if (!st) st = br_events_open(uri, BR_EVENTS_RDONLY, &ev);
        if (!st) st = br_events_read(ev, "snapshot", 0, on_event, s, NULL, NULL);
        br_events_close(ev);
        ev = NULL;
    }
    if (st || !s->o->events) return st;
    /* A position is only meaningful in the log it came from. */
    if (!s->base_log[0] || !br__uri_same(s->base_log, s->o->events)) s->base_pos[0] = '\0';
    s->ev_src = s->o->events;
    /* Not read-only: the group is created on first use. */
    st = br_events_open(s->o->events, 0, &ev);
    if (!st) st = br_events_read(ev, BR_TRAIN_EVENTS_GROUP, 0, on_new_event, s, NULL, NULL);
    br_events_close(ev);
    /* This version stops where the base did, moved past what was read
     * now (partition by partition, on a cluster). */
    if (!st) {
        snprintf(s->ev_pos, sizeof s->ev_pos, "%s", s->base_pos);
        if (s->read_pos[0]) st = br_events_pos_advance(s->ev_pos, s->read_pos);
    }
    return st;
}

/* The folded rating events as this version's snapshot: an event log file
 * (docs/store.md), so the next run and anyone auditing the version can
 * read exactly what went in. */
static br_status write_snapshot(run_state *s)
{
    char path[PATH_MAX + 8];
    br_status st = br__train_path(path, sizeof path, "file:%s/events.log", s->tmp);
    br_event *e = br_malloc(s->n_ev * sizeof *e);
    if (!st && !e) st = br_error(BR_ENOMEM, "events snapshot");
    for (size_t i = 0; !st && i < s->n_ev; i++)
        e[i] = (br_event){br_idmap_name(s->uids, s->eu[i]), br_catalog_book(s->cat, s->eb[i])->id,
                          BR_EVENT_RATING, s->evv[i], s->ets[i]};
    br_events *ev = NULL;
    if (!st) st = br_events_open(path, 0, &ev);
    if (!st) st = br_events_append(ev, e, s->n_ev);
    br_events_close(ev);
    br_free(e);
    return st;
}

/* After the publish: the log's events up to this version's position are
 * acknowledged, and the Redis stream trimmed of what every group has
 * acknowledged. Failing here costs nothing but disk (the next run skips
 * what this version folded by position): a warning, not an error. */
static void consume_events(run_state *s)
{
    if (!s->o->events || !s->read_pos[0]) return;
    br_events *ev = NULL;
    uint64_t removed = 0;
    br_status st = br_events_open(s->o->events, 0, &ev);
    if (!st) st = br_events_ack(ev, BR_TRAIN_EVENTS_GROUP, s->read_pos);
    if (!st) st = br_events_trim(ev, &removed);
    br_events_close(ev);
    if (st)
        br_log(BR_LOG_WARN, "train: %s: events folded in but not acknowledged: %s", s->o->events,
               br_error_detail());
    br_error_clear();
    s->rep->events_trimmed = removed;
}

static br_status stage_ingest(run_state *s)
{
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    lo.rating_min = s->o->rating_min;
    lo.rating_max = s->o->rating_max;
    s->rules = (br_event_rules){s->o->rating_min, s->o->rating_max};
    br_status st = br__train_hash_file(s->o->books, &s->books_hash, &s->books_size);
    if (!st) st = br__train_hash_file(s->o->ratings, &s->ratings_hash, &s->ratings_size);
    if (!st) st = br_catalog_load(s->o->books, &lo, &s->cat, NULL);
    /* An unknown book in the ratings fails here, naming the line. */
    if (!st) st = br_ratings_load(s->o->ratings, s->cat, &lo, &s->ratings, NULL);
    if (st) return st;
    /* Readers of the ratings in their order; the log may add more. */
    if ((st = br_idmap_create(&s->uids))) return st;
    const br_idmap *rid = br_ratings_user_ids(s->ratings);
    for (uint32_t i = 0; i < br_idmap_count(rid) && !st; i++) {
        uint32_t idx;
        int added;
        const char *name = br_idmap_name(rid, i);
        st = br_idmap_intern(s->uids, name, strlen(name), &idx, &added);
    }
    if (!st) st = read_events(s);
    if (!st && s->rep->events_rejected)
        br_log(BR_LOG_WARN, "train: %llu rating events not folded in; the first: %s",
               (unsigned long long)s->rep->events_rejected, s->rep->events_rejected_first);
    if (!st && s->n_ev) st = write_snapshot(s);
    if (st) return st;
    if (s->n_ev)
        st = merge_events(s);
    else {
        s->n = br_ratings_count(s->ratings);
        s->tu = br_ratings_users(s->ratings);
        s->tb = br_ratings_books(s->ratings);
        s->tv = br_ratings_values(s->ratings);
        s->tt = br_ratings_timestamps(s->ratings);
    }
    if (st) return st;
    s->n_users = br_idmap_count(s->uids);
    if (s->n == 0) return br_error(BR_EINVAL, "%s: no ratings", s->o->ratings);
    s->rep->n_books = br_catalog_count(s->cat);
    s->rep->n_users = s->n_users;
    s->rep->n_ratings = s->n;
    s->rep->n_events = s->n_ev;
    s->rep->n_events_new = s->n_ev_new;
    char path[PATH_MAX];
    if (!st) st = br__train_path(path, sizeof path, "%s/books.csv", s->tmp);
    if (!st) st = copy_file(s->o->books, path);
    if (!st) st = br__train_path(path, sizeof path, "%s/book_ids.txt", s->tmp);
    if (!st) st = write_ids(path, br_catalog_ids(s->cat));
    if (!st) st = br__train_path(path, sizeof path, "%s/user_ids.txt", s->tmp);
    if (!st) st = write_ids(path, s->uids);
    s->rep->stage[BR_TRAIN_INGEST].count = s->rep->n_ratings;
    return st;
}

static const char *encoder_key(const br_train_options *o)
{
    return o->encoder ? o->encoder : "use-lite";
}

static br_status stage_embed(run_state *s)
{
    char model[PATH_MAX], cache[PATH_MAX], path[PATH_MAX];
    const char *key = encoder_key(s->o);
    br_status st = BR_OK;
    if (!strcmp(key, "use-lite"))
        st = br_encoder_model_path("use-lite", model, sizeof model);
    else if (!strncmp(key, "bert:", 5))
        st = br__train_path(model, sizeof model, "%s", key);
    else
        return br_error(BR_EINVAL, "encoder '%s': use-lite or bert:DIR", key);
    if (!st) st = br__train_path(cache, sizeof cache, "%s/embeddings.brec", s->o->model_dir);
    br_encoder *enc = NULL;
    if (!st) st = br_encoder_open(model, &enc);
    if (st) return st;
    size_t nb = br_catalog_count(s->cat);
    s->dim = br_encoder_dim(enc);
    s->emb = br_aligned_alloc(nb * s->dim * sizeof(float) + BR_ALIGN, BR_ALIGN);
    size_t embedded = 0;
    if (!s->emb) st = br_error(BR_ENOMEM, "embeddings");
    /* The cache (DIR/embeddings.brec) makes this incremental: only books
     * whose text hash is new are embedded. */
    if (!st) st = br_embed_catalog(enc, key, s->cat, s->o->text, cache, s->emb, &embedded);
    br_encoder_close(enc);
    if (!st) st = br__train_path(path, sizeof path, "%s/embeddings.npy", s->tmp);
    if (!st) st = br_npy_write(path, BR_DTYPE_F32, 2, nb, s->dim, s->emb);
    s->rep->embedded = embedded;
    s->rep->stage[BR_TRAIN_EMBED].count = embedded;
    return st;
}

static br_status stage_tribes(run_state *s)
{
    br_kmeans_options ko = BR_KMEANS_OPTIONS_DEFAULT;
    size_t nb = br_catalog_count(s->cat);
    ko.k = s->o->clusters;
    ko.seed = s->o->seed;
    if (ko.k < 1 || ko.k > nb)
        return br_error(BR_EINVAL, "--clusters %u: between 1 and the %zu books", ko.k, nb);
    char path[PATH_MAX];
    br_status st = br_tribes_build(s->cat, s->emb, nb, s->dim, &ko, 0, &s->tribes);
    if (!st) st = br__train_path(path, sizeof path, "%s/tribes", s->tmp);
    if (!st) st = br_tribes_save(s->tribes, path);
    s->rep->stage[BR_TRAIN_TRIBES].count = ko.k;
    return st;
}

/* The previous version's index can be extended when its books are a prefix
 * of ours with bit-identical embeddings: then inserting the rest in order
 * gives exactly the index a full sequential build would. */
static int previous_index_usable(run_state *s, size_t *n_prev)
{
    char path[PATH_MAX];
    char **ids = NULL, *blob = NULL;
    size_t n = 0;
    br_array pe = {0};
    int ok = 0;
    if (!s->prev_dir[0]) return 0;
    if (br__train_path(path, sizeof path, "%s/book_ids.txt", s->prev_dir) ||
        br__read_ids(path, &ids, &n, &blob))
        goto done;
    if (n > br_catalog_count(s->cat)) goto done;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], br_catalog_book(s->cat, (uint32_t)i)->id)) goto done;
    if (br__train_path(path, sizeof path, "%s/embeddings.npy", s->prev_dir) ||
        br_npy_read(path, BR_DTYPE_F32, &pe))
        goto done;
    if (pe.rows != n || pe.cols != s->dim) goto done;
    if (memcmp(pe.data, s->emb, n * s->dim * sizeof(float))) goto done;
    ok = 1;
    *n_prev = n;
done:
    br_array_free(&pe);
    br_free(ids);
    br_free(blob);
    br_error_clear();
    return ok;
}

static br_status stage_index(run_state *s)
{
    char path[PATH_MAX];
    size_t nb = br_catalog_count(s->cat), from = 0;
    br_hnsw *h = NULL;
    br_status st = BR_OK;
    if (previous_index_usable(s, &from)) {
        if (br__train_path(path, sizeof path, "%s/index.hnsw", s->prev_dir) ||
            br_hnsw_load(path, &h) || br_hnsw_count(h) != from) {
            br_hnsw_free(h);
            h = NULL;
            from = 0;
            br_error_clear();
        }
    } else
        from = 0;
    if (!h) {
        br_hnsw_options ho = BR_HNSW_OPTIONS_DEFAULT;
        ho.seed = s->o->seed;
        if ((st = br_hnsw_create(s->dim, &ho, &h))) return st;
    }
    s->rep->index_incremental = from > 0;
    br_progress p;
    br_progress_begin(&p, "train: index", nb - from);
    for (size_t i = from; i < nb && !st; i++) {
        st = br_hnsw_add(h, s->emb + i * s->dim, NULL);
        if (!st && ((i - from) & 255) == 0) st = br_progress_update(&p, i - from);
    }
    if (!st) st = br_progress_end(&p);
    if (!st) st = br__train_path(path, sizeof path, "%s/index.hnsw", s->tmp);
    if (!st) st = br_hnsw_save(h, path);
    /* every book's nearest books, which the server would otherwise search
     * for at each start and reload */
    if (!st) st = br__model_derived_alloc(&s->derived, (uint32_t)nb);
    if (!st) st = br__model_neighbours(h, s->emb, (uint32_t)nb, s->derived.nbr, s->derived.nbr_sc);
    s->hnsw = h;
    s->rep->index_added = nb - from;
    s->rep->stage[BR_TRAIN_INDEX].count = nb - from;
    return st;
}

static void hybrid_options(const br_train_options *o, br_hybrid_options *ho)
{
    br_hybrid_options_default(ho);
    ho->tribes = o->clusters;
    ho->svd.seed = ho->als.seed = ho->als_explicit.seed = o->seed;
    if (o->factors) ho->svd.k = ho->als.factors = o->factors;
    if (o->iterations) ho->als.iterations = o->iterations;
    ho->als.compute_loss = 0;
}

static br_status stage_collab(run_state *s)
{
    br_hybrid_options ho;
    hybrid_options(s->o, &ho);
    br_train_data d = {s->n_users, br_catalog_count(s->cat), s->n, s->tu, s->tb, s->tv};
    br_engine e = s->o->cf == BR_TRAIN_CF_SVD ? BR_ENGINE_NOTEBOOK_HYBRID : BR_ENGINE_HYBRID;
    br_status st = br_hybrid_fit(&d, s->cat, s->emb, s->dim, &ho, &e, 1, &s->hyb);
    /* The rating matrix is the hybrid's: one build per run. */
    if (!st) s->r = br_hybrid_ratings(s->hyb);
    /* The factors as an artifact of their own (the collab model file), so
     * the version can be served by the collaborative engine alone: the
     * hybrid's own fit of them (a second fit was half this stage at
     * 1,000,000 readers), else fitted here. */
    br_engine ce = s->o->cf == BR_TRAIN_CF_SVD ? BR_ENGINE_SVD : BR_ENGINE_ALS;
    if (!st && !(s->cf = br_hybrid_cf_model(s->hyb, ce))) {
        br_csr rt = {0};
        st = br_csr_transpose(s->r, &rt);
        if (!st && ce == BR_ENGINE_SVD)
            st = br_cf_svd_fit(s->r, &rt, &ho.svd, &s->cf_own);
        else if (!st)
            st = br_als_fit(s->r, &rt, &ho.als, &s->cf_own);
        br_csr_free(&rt);
        s->cf = s->cf_own;
    }
    char path[PATH_MAX];
    if (!st) st = br__train_path(path, sizeof path, "%s/cf.brcf", s->tmp);
    if (!st) st = br_cf_model_save(s->cf, path, s->uids, br_catalog_ids(s->cat));
    s->rep->stage[BR_TRAIN_COLLAB].count = s->cf ? br_cf_model_factors(s->cf) : 0;
    return st;
}

static br_status stage_topn(run_state *s)
{
    uint32_t nu = s->n_users, k = s->o->top_n;
    br_engine e = s->o->cf == BR_TRAIN_CF_SVD ? BR_ENGINE_NOTEBOOK_HYBRID : BR_ENGINE_HYBRID;
    s->rec_items = br_malloc((size_t)nu * k * sizeof *s->rec_items);
    s->rec_scores = br_malloc((size_t)nu * k * sizeof *s->rec_scores);
    uint32_t *users = br_malloc(TOPN_BLOCK * sizeof *users);
    uint32_t *items = br_malloc((size_t)TOPN_BLOCK * k * sizeof *items);
    br_status st = BR_OK;
    if (!s->rec_items || !s->rec_scores || !users || !items)
        st = br_error(BR_ENOMEM, "top-n for %u readers", nu);
    br_progress p;
    br_progress_begin(&p, "train: top-n", nu);
    for (uint32_t u0 = 0; u0 < nu && !st; u0 += TOPN_BLOCK) {
        uint32_t m = nu - u0 < TOPN_BLOCK ? nu - u0 : TOPN_BLOCK;
        for (uint32_t j = 0; j < m; j++) users[j] = u0 + j;
        st = br_hybrid_rank(s->hyb, e, users, m, k, items, s->rec_scores + (size_t)u0 * k);
        for (size_t j = 0; !st && j < (size_t)m * k; j++)
            s->rec_items[(size_t)u0 * k + j] = items[j] == UINT32_MAX ? -1 : (int32_t)items[j];
        /* -INFINITY pads would not survive JSON; a pad's score is 0 on disk. */
        for (size_t j = 0; !st && j < (size_t)m * k; j++)
            if (s->rec_items[(size_t)u0 * k + j] < 0) s->rec_scores[(size_t)u0 * k + j] = 0;
        if (!st) st = br_progress_update(&p, u0 + m);
    }
    if (!st) st = br_progress_end(&p);
    br_free(users);
    br_free(items);
    char path[PATH_MAX];
    if (!st) st = br__train_path(path, sizeof path, "%s/recs_items.npy", s->tmp);
    if (!st) st = br_npy_write(path, BR_DTYPE_I32, 2, nu, k, s->rec_items);
    if (!st) st = br__train_path(path, sizeof path, "%s/recs_scores.npy", s->tmp);
    if (!st) st = br_npy_write(path, BR_DTYPE_F32, 2, nu, k, s->rec_scores);
    /* what the lists make of the books: popularity, the cold-start list;
     * and the ratings each book has */
    uint32_t nb = br_catalog_count(s->cat);
    br__model_derived *d = &s->derived;
    int32_t *counts = st ? NULL : br_calloc((size_t)nb + 1, sizeof *counts);
    if (!st && !counts) st = br_error(BR_ENOMEM, "rating counts");
    if (!st) {
        br__model_popularity(s->rec_items, nu, k, nb, d->pop, d->order);
        st = br__model_cold(s->tribes->labels, s->tribes->k, nb, d->order, s->rec_items, nu, k,
                            d->cold, &d->n_cold);
    }
    for (size_t i = 0; !st && i < s->n; i++) counts[s->tb[i]]++;
    if (!st) st = br__model_write_derived(s->tmp, d, nb, counts);
    br_free(counts);
    s->rep->stage[BR_TRAIN_TOPN].count = nu;
    return st;
}

/* docs/evaluation.md's protocol on the CSV ratings: the engine the version
 * serves, with its parameters, fitted on the training part of a seeded
 * split and ranked for (a thinned sample of) the readers with held-out
 * ratings. The model itself is trained on everything. */
static br_status stage_eval(run_state *s)
{
    br_split_options so = BR_SPLIT_OPTIONS_DEFAULT;
    so.seed = s->o->seed;
    br_split sp;
    memset(&sp, 0, sizeof sp);
    br_hybrid *h = NULL;
    uint32_t *users = NULL, k = s->o->eval_k ? s->o->eval_k : 10;
    size_t cap = s->o->eval_readers ? s->o->eval_readers : 10000, n = 0;
    br_status st = br_split_ratings(s->ratings, &so, &sp);
    if (!st && sp.n_eval_users == 0)
        st = br_error(BR_EINVAL, "--eval: no reader has %u ratings to hold some out",
                      so.min_ratings);
    if (!st) {
        br_hybrid_options ho;
        hybrid_options(s->o, &ho);
        br_train_data d = {sp.n_users,    sp.n_books,    sp.n_train,
                           sp.train_user, sp.train_book, sp.train_value};
        br_engine e = s->o->cf == BR_TRAIN_CF_SVD ? BR_ENGINE_NOTEBOOK_HYBRID : BR_ENGINE_HYBRID;
        st = br_hybrid_fit(&d, s->cat, s->emb, s->dim, &ho, &e, 1, &h);
        /* Every m-th reader with held-out ratings, at most `cap`. */
        size_t m = (sp.n_eval_users + cap - 1) / cap;
        users = st ? NULL : br_malloc(cap * sizeof *users);
        if (!st && !users) st = br_error(BR_ENOMEM, "eval readers");
        size_t seen = 0;
        for (uint32_t u = 0; !st && u < sp.n_users && n < cap; u++) {
            if (sp.test_ptr[u + 1] == sp.test_ptr[u]) continue;
            if (seen++ % m == 0) users[n++] = u;
        }
        br_hybrid_engine c = {h, e};
        br_ranker rk = br_hybrid_ranker(&c);
        rk.predict = NULL; /* the manifest records ranking metrics only */
        if (!st) st = br_eval_ranker(&sp, &rk, k, users, n, &s->rep->eval);
    }
    s->rep->evaluated = st == BR_OK;
    s->rep->eval_readers = n;
    br_free(users);
    br_hybrid_free(h);
    br_split_free(&sp);
    return st;
}

static json_t *eval_json(const br_train_report *r, const br_train_options *o)
{
    char key[32];
    const br_eval_result *e = &r->eval;
    json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:f, s:f, s:I, s:f}", "protocol",
                          "docs/evaluation.md, on the CSV ratings", "k", (json_int_t)e->k,
                          "readers", (json_int_t)r->eval_readers, "readers_ranked",
                          (json_int_t)e->users_ranked, "test_fraction", 0.2, "relevant_min", 4.0,
                          "seed", (json_int_t)o->seed, "seconds", r->eval_seconds);
    snprintf(key, sizeof key, "precision@%u", e->k);
    json_object_set_new(j, key, json_real(e->precision));
    snprintf(key, sizeof key, "recall@%u", e->k);
    json_object_set_new(j, key, json_real(e->recall));
    snprintf(key, sizeof key, "ndcg@%u", e->k);
    json_object_set_new(j, key, json_real(e->ndcg));
    snprintf(key, sizeof key, "map@%u", e->k);
    json_object_set_new(j, key, json_real(e->map));
    snprintf(key, sizeof key, "coverage@%u", e->k);
    json_object_set_new(j, key, json_real(e->coverage));
    return j;
}

/* How the published lists were ranked, and how a server re-ranks them per
 * request (docs/api.md, "Re-ranking"). */
static json_t *ranking_json(const run_state *s, const br_hybrid_options *ho)
{
    int svd = s->o->cf == BR_TRAIN_CF_SVD;
    json_t *rr = json_null();
    if (!svd && ho->rerank) {
        json_t *names = json_array(), *coef = json_array();
        for (uint32_t f = 0; f < BR_RERANK_FEATURES; f++) {
            json_array_append_new(names, json_string(br_rerank_feature_name(f)));
            json_array_append_new(coef, json_real(ho->rerank_coef[f]));
        }
        rr = json_pack("{s:o, s:o, s:i, s:i}", "features", names, "coef", coef, "candidates_ease",
                       (int)ho->cand_ease, "candidates_als", (int)ho->cand_als);
    }
    br_model_online on = BR_MODEL_ONLINE_DEFAULT;
    return json_pack("{s:s, s:o, s:{s:f, s:f, s:f, s:i, s:i}}", "engine",
                     svd ? "notebook-hybrid" : "hybrid", "rerank", rr, "online", "w_content",
                     (double)on.w_content, "w_pop", (double)on.w_pop, "w_recent",
                     (double)on.w_recent, "recent_years", (int)on.recent_years, "cold_interactions",
                     (int)on.cold_interactions);
}

static json_t *manifest_json(const run_state *s, const char *id)
{
    const br_train_options *o = s->o;
    const br_train_report *r = s->rep;
    br_hybrid_options ho; /* the parameters in effect, defaults resolved */
    hybrid_options(o, &ho);
    json_t *stages = json_object();
    for (int i = 0; i < BR_TRAIN_STAGES - 1; i++)
        json_object_set_new(stages, stage_names[i],
                            json_pack("{s:f, s:I}", "seconds", r->stage[i].seconds, "count",
                                      (json_int_t)r->stage[i].count));
    char bh[17], rh[17];
    snprintf(bh, sizeof bh, "%016llx", (unsigned long long)s->books_hash);
    snprintf(rh, sizeof rh, "%016llx", (unsigned long long)s->ratings_hash);
    json_t *j = json_pack(
        "{s:s, s:i, s:s, s:I, s:s, s:s,"
        " s:{s:{s:s, s:I, s:s}, s:{s:s, s:I, s:s}},"
        " s:{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:I, s:i},"
        " s:{s:I, s:I, s:I, s:I, s:I, s:b, s:i},"
        " s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s},"
        " s:o}",
        "format", "bookrec-model", "format_version", BR_MODEL_FORMAT_VERSION, "version", id,
        "created_at", (json_int_t)time(NULL), "previous", r->previous, "store", s->store_rec,
        "inputs", "books", "path", s->books_abs, "size", (json_int_t)s->books_size, "fnv1a64", bh,
        "ratings", "path", s->ratings_abs, "size", (json_int_t)s->ratings_size, "fnv1a64", rh,
        "parameters", "encoder", encoder_key(o), "template",
        o->text == BR_TEXT_DESCRIPTION ? "description" : "full", "cf",
        o->cf == BR_TRAIN_CF_SVD ? "svd" : "als", "clusters", (int)o->clusters, "factors",
        (int)s->rep->stage[BR_TRAIN_COLLAB].count, "iterations",
        o->cf == BR_TRAIN_CF_SVD ? 0 : (int)ho.als.iterations, "top_n", (int)o->top_n, "seed",
        (json_int_t)o->seed, "threads", br_get_num_threads(), "counts", "books",
        (json_int_t)r->n_books, "readers", (json_int_t)r->n_users, "ratings",
        (json_int_t)r->n_ratings, "embedded", (json_int_t)r->embedded, "index_added",
        (json_int_t)r->index_added, "index_incremental", r->index_incremental, "dim", (int)s->dim,
        "files", "books", "books.csv", "book_ids", "book_ids.txt", "user_ids", "user_ids.txt",
        "embeddings", "embeddings.npy", "tribes", "tribes/", "index", "index.hnsw", "cf", "cf.brcf",
        "recs_items", "recs_items.npy", "recs_scores", "recs_scores.npy", "stages", stages);
    if (j) { /* the event log folded in, if any */
        /* The scale events are checked against (the store's metadata is
         * this text: `ingest` and the server read it from there). */
        json_object_set_new(
            json_object_get(j, "parameters"), "rating_scale",
            json_pack("{s:f, s:f}", "min", (double)o->rating_min, "max", (double)o->rating_max));
        json_object_set_new(json_object_get(j, "counts"), "events",
                            json_integer((json_int_t)r->n_events));
        json_object_set_new(json_object_get(j, "inputs"), "events",
                            o->events ? json_string(s->events_rec) : json_null());
        json_t *ev = json_pack(
            "{s:I, s:I, s:I, s:s?, s:s, s:s?, s:s?, s:s?, s:s?}", "folded", (json_int_t)r->n_events,
            "new", (json_int_t)r->n_events_new, "rejected", (json_int_t)r->events_rejected,
            "first_rejected", r->events_rejected ? r->events_rejected_first : NULL, "group",
            BR_TRAIN_EVENTS_GROUP, "base", s->base_id[0] ? s->base_id : NULL, "snapshot",
            s->n_ev ? "events.log" : NULL, "log", o->events ? s->events_rec : NULL, "position",
            s->ev_pos[0] ? s->ev_pos : NULL);
        json_object_set_new(j, "events", ev);
        if (s->n_ev)
            json_object_set_new(json_object_get(j, "files"), "events", json_string("events.log"));
        json_object_set_new(j, "evaluation", r->evaluated ? eval_json(r, o) : json_null());
        /* what serving reads, computed here (docs/formats.md, "Model version") */
        json_t *files = json_object_get(j, "files");
        static const char *const derived[][2] = {{"neighbours", "neighbours.npy"},
                                                 {"neighbour_scores", "neighbour_scores.npy"},
                                                 {"popularity", "popularity.npy"},
                                                 {"popular_order", "popular_order.npy"},
                                                 {"cold", "cold.npy"},
                                                 {"rating_counts", "rating_counts.npy"}};
        for (size_t i = 0; i < sizeof derived / sizeof *derived; i++)
            json_object_set_new(files, derived[i][0], json_string(derived[i][1]));
        /* the newest timestamp the version learned from: a server treats
         * an interaction after it as new (docs/api.md, "Re-ranking") */
        int64_t until = s->ev_until > 0 ? s->ev_until : 0;
        for (size_t i = 0; s->tt && i < s->n; i++) until = s->tt[i] > until ? s->tt[i] : until;
        json_object_set_new(j, "data_until", json_integer((json_int_t)until));
        json_object_set_new(j, "ranking", ranking_json(s, &ho));
    }
    return j;
}

static br_status build_seen(const run_state *s, seen_lists *sl)
{
    uint32_t nu = s->r->rows;
    sl->ids = br_malloc((s->r->nnz ? s->r->nnz : 1) * sizeof *sl->ids);
    sl->row = br_malloc(((size_t)nu + 1) * sizeof *sl->row);
    sl->n = br_malloc(((size_t)nu + 1) * sizeof *sl->n);
    if (!sl->ids || !sl->row || !sl->n) return br_error(BR_ENOMEM, "seen sets");
    for (uint64_t j = 0; j < s->r->nnz; j++)
        sl->ids[j] = br_catalog_book(s->cat, s->r->indices[j])->id;
    for (uint32_t u = 0; u < nu; u++) {
        sl->row[u] = sl->ids + s->r->indptr[u];
        sl->n[u] = (size_t)(s->r->indptr[u + 1] - s->r->indptr[u]);
    }
    return BR_OK;
}

/* The latest interactions: the ratings as events (timestamps from the file,
 * else 0; the store keeps the newest BR_STORE_RECENT_MAX per reader). */
static br_status build_recent(const run_state *s, br_event **out, size_t *n)
{
    size_t nr = s->n;
    const uint32_t *u = s->tu, *b = s->tb;
    const float *v = s->tv;
    const int64_t *ts = s->tt;
    const br_idmap *uids = s->uids;
    br_event *e = br_malloc((nr ? nr : 1) * sizeof *e);
    if (!e) return br_error(BR_ENOMEM, "interactions");
    for (size_t i = 0; i < nr; i++) {
        e[i].user_id = br_idmap_name(uids, u[i]);
        e[i].book_id = br_catalog_book(s->cat, b[i])->id;
        e[i].type = BR_EVENT_RATING;
        e[i].value = v[i];
        e[i].timestamp = ts ? ts[i] : 0;
    }
    *out = e;
    *n = nr;
    return BR_OK;
}

/* An input file's absolute path: provenance only (no command opens it
 * again), meaningful from anywhere. */
static br_status absolute(const char *path, char *buf, size_t cap)
{
    char real[PATH_MAX];
    return br__train_path(buf, cap, "%s", realpath(path, real) ? real : path);
}

/* The store serves `id` but re-pointing `current` failed (`st`, its
 * detail set): readers would get the new lists with the old model. When
 * the pointer did move (only the directory's fsync failed) the switch is
 * whole: a warning. Else the store is switched back to the previous
 * version, as a rollback would; if that fails too the version is kept
 * (the store serves it) and the error says how to mend. */
static br_status pointer_failed(run_state *s, const char *id, br_store *store, br_status st)
{
    char detail[512], cur[BR_MODEL_ID_MAX];
    const char *md = s->o->model_dir, *prev = s->rep->previous;
    snprintf(detail, sizeof detail, "%s", br_error_detail());
    if (br_models_current(md, cur, sizeof cur) == BR_OK && !strcmp(cur, id)) {
        br_log(BR_LOG_WARN, "train: %s serves, but %s", id, detail);
        br_error_clear();
        return BR_OK;
    }
    if (prev[0] && br__publish_version(md, prev, store, NULL) == BR_OK)
        return br_error(st, "%s (the store serves %s again)", detail, prev);
    s->keep_vdir = 1;
    if (!prev[0]) return br_error(st, "%s (the store serves %s)", detail, id);
    return br_error(st,
                    "%s; the store serves %s while `current` names %s (%s): run `bookrec "
                    "models rollback %s`",
                    detail, id, prev, br_error_detail(), prev);
}

static br_status stage_publish(run_state *s, const char *id)
{
    char path[PATH_MAX];
    const char *md = s->o->model_dir;
    br_status st = br__uri_record(md, s->store_uri, s->store_rec, sizeof s->store_rec);
    if (!st && s->o->events)
        st = br__uri_record(md, s->o->events, s->events_rec, sizeof s->events_rec);
    if (!st) st = absolute(s->o->books, s->books_abs, sizeof s->books_abs);
    if (!st) st = absolute(s->o->ratings, s->ratings_abs, sizeof s->ratings_abs);
    if (st) return st;
    json_t *m = manifest_json(s, id);
    char *text = m ? json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(m);
    if (!text) return br_error(BR_ENOMEM, "manifest");
    if (!st) st = br__train_path(path, sizeof path, "%s/manifest.json", s->tmp);
    if (!st) st = br__afile_write(path, text, strlen(text));
    free(text);
    if (!st) st = br__fsync_dir(s->tmp);
    if (!st && br__fault_rename(s->tmp, s->vdir))
        st = br_error(BR_EIO, "%s: rename: %s", s->vdir, strerror(errno));
    else if (!st)
        s->in_versions = 1;
    if (!st) st = br__train_path(path, sizeof path, "%s/versions", s->o->model_dir);
    if (!st) st = br__fsync_dir(path);
    if (st) return st;

    const seen_lists *sl = &s->seen;
    br_event *recent = NULL;
    size_t n_recent = 0;
    br_store *store = NULL;
    br__models_pointer ptr;
    memset(&ptr, 0, sizeof ptr);
    st = build_recent(s, &recent, &n_recent);
    if (!st) st = br_store_open(s->store_uri, 0, &store);
    /* written before the switch, so that a full disk fails the run here */
    if (!st) st = br__models_pointer_prepare(s->o->model_dir, id, &ptr);
    if (!st) {
        br__publish_extra ex = {sl->row, sl->n, recent, n_recent};
        st = br__publish_version(s->o->model_dir, id, store, &ex);
    }
    br_free(recent);
    /* The store serves the new version: now the pointer. */
    if (st)
        br__models_pointer_abort(&ptr);
    else if ((st = br__models_pointer_commit(&ptr)) != BR_OK)
        st = pointer_failed(s, id, store, st);
    br_store_close(store);
    if (!st) consume_events(s);
    s->rep->stage[BR_TRAIN_PUBLISH].count = s->rep->n_users;
    return st;
}

static void run_free(run_state *s)
{
    br_free(s->rec_items);
    br_hnsw_free(s->hnsw);
    br__model_derived_free(&s->derived);
    br_free(s->rec_scores);
    br_cf_model_free(s->cf_own);
    br_hybrid_free(s->hyb);
    br_free(s->seen.ids);
    br_free(s->seen.row);
    br_free(s->seen.n);
    br_tribes_free(s->tribes);
    br_aligned_free(s->emb);
    br_ratings_free(s->ratings);
    br_idmap_free(s->uids);
    for (int i = 0; i < 4; i++) br_free(s->owned[i]);
    br_free(s->eu);
    br_free(s->eb);
    br_free(s->evv);
    br_free(s->ets);
    br_catalog_free(s->cat);
}

br_status br_train_run(const br_train_options *opt, br_train_report *report)
{
    br_train_report local;
    br_train_report *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    for (int i = 0; i < BR_TRAIN_STAGES; i++) rep->stage[i].name = stage_names[i];
    if (!opt || !opt->books || !opt->ratings || !opt->model_dir)
        return br_error(BR_EINVAL, "train: books, ratings and a model directory are required");
    if (opt->top_n < 1) return br_error(BR_EINVAL, "train: top-n must be >= 1");
    uint64_t t_all = br_now_ns();
    run_state s;
    memset(&s, 0, sizeof s);
    s.o = opt;
    s.rep = rep;
    int lock = -1;
    char id[BR_MODEL_ID_MAX], vroot[PATH_MAX];
    br_status st = br__train_lock(opt->model_dir, &lock);
    if (st) return st;
    if (opt->store)
        st = br__train_path(s.store_uri, sizeof s.store_uri, "%s", opt->store);
    else
        st = br__train_path(s.store_uri, sizeof s.store_uri, "lmdb:%s/store", opt->model_dir);
    char in_store[BR_STORE_VERSION_MAX] = "";
    if (!st) {
        /* Reach the store before hours of work: an unreachable Redis fails
         * now, with nothing written. What it serves guides the clean-up. */
        br_store *probe = NULL;
        st = br_store_open(s.store_uri, 0, &probe);
        if (!st && br_store_version(probe, in_store, sizeof in_store) != BR_OK) {
            in_store[0] = 0; /* nothing served yet, or unreadable: nothing to keep */
            br_error_clear();
        }
        br_store_close(probe);
    }
    if (!st) remove_stale(opt->model_dir, in_store);
    if (!st) st = br__train_path(vroot, sizeof vroot, "%s/versions", opt->model_dir);
    if (!st && mkdir(vroot, 0777) && errno != EEXIST)
        st = br_error(BR_EIO, "%s: %s", vroot, strerror(errno));
    if (!st) st = br__models_next_id(opt->model_dir, id, sizeof id);
    if (!st) st = br__train_path(s.tmp, sizeof s.tmp, "%s/.tmp-%s", vroot, id);
    if (!st) st = br__train_path(s.vdir, sizeof s.vdir, "%s/%s", vroot, id);
    if (!st && mkdir(s.tmp, 0777)) st = br_error(BR_EIO, "%s: %s", s.tmp, strerror(errno));
    if (!st) {
        if (br_models_current(opt->model_dir, rep->previous, sizeof rep->previous) == BR_OK)
            st = br_models_path(opt->model_dir, rep->previous, s.prev_dir, sizeof s.prev_dir);
        else
            br_error_clear(); /* the first run: no previous version */
    }
    typedef br_status (*stage_fn)(run_state *);
    static const stage_fn stages[] = {stage_ingest, stage_embed,  stage_tribes,
                                      stage_index,  stage_collab, stage_topn};
    for (int i = 0; i < BR_TRAIN_STAGES - 1 && !st; i++) {
        uint64_t t0 = br_now_ns();
        st = stages[i](&s);
        rep->stage[i].seconds = secs_since(t0);
    }
    /* The served hybrid is done with (its recommendations are in memory,
     * and the seen sets the publish needs from its rating matrix). */
    if (!st) st = build_seen(&s, &s.seen);
    br_hybrid_free(s.hyb);
    s.r = NULL;
    s.hyb = NULL;
    s.cf = s.cf_own; /* the hybrid's factor model went with it */
    if (!st && opt->eval) {
        uint64_t t0 = br_now_ns();
        st = stage_eval(&s);
        rep->eval_seconds = secs_since(t0);
    }
    if (!st) {
        uint64_t t0 = br_now_ns();
        st = stage_publish(&s, id);
        rep->stage[BR_TRAIN_PUBLISH].seconds = secs_since(t0);
    }
    if (!st) snprintf(rep->version, sizeof rep->version, "%s", id);
    if (st) {
        /* Keep the failure's detail: cleanup must not overwrite it. */
        char detail[512];
        snprintf(detail, sizeof detail, "%s", br_error_detail());
        if (s.tmp[0]) br__train_rmtree(s.tmp);
        /* never served: nothing may choose it, nothing needs it */
        if (s.in_versions && !s.keep_vdir) br__train_rmtree(s.vdir);
        br_error(st, "%s", detail);
    }
    run_free(&s);
    /* Housekeeping once the version serves: a failure here is no failed run
     * (the caller would take the served version for the previous one). */
    if (!st && opt->keep &&
        br__models_prune_locked(opt->model_dir, opt->keep, &rep->pruned) != BR_OK) {
        br_log(BR_LOG_WARN, "train: %s serves, but removing old versions failed: %s", id,
               br_error_detail());
        br_error_clear();
    }
    br__train_unlock(lock);
    rep->seconds = secs_since(t_all);
    return st;
}
