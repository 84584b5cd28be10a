/*
 * restore.c: puts back into a store what a reader's answer depends on
 * besides the version's lists: the seen sets and the latest interactions
 * (`bookrec store restore`, and every `models rollback`). A store that
 * lost its data (Redis restarted empty, the LMDB directory deleted) gets
 * them again from what outlives it: the ratings the newest served version
 * was trained on (the ratings file its manifest names, checked by size and
 * hash, and the rating events folded into its events.log snapshot) and the
 * event logs that still hold the events since (the store's own log, and
 * the log `train --events` read).
 *
 * Why the newest served version and not the one being restored or rolled
 * back to: seen sets and interactions belong to the reader, not to a model
 * (docs/store.md), and the newest version's training data is the latest
 * the store knew of every reader. Seen sets are unions and interaction
 * lists keep identical entries once, so a restore run twice, or over a
 * store that kept some of its data, adds nothing twice.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bookrec/data.h"
#include "bookrec/store.h"
#include "train_internal.h"

/* Interactions per store call: one LMDB write transaction, one Redis
 * round trip each. */
#define BATCH 8192
/* The consumer group the event logs are read with: read-only handles, so
 * it is never acknowledged or created (every event is delivered). */
#define GROUP "bookrec-restore"

typedef struct rrec {
    uint32_t u, b; /* indices into names */
    uint32_t type;
    float value;
    int64_t ts;
    size_t seq; /* arrival order */
} rrec;

typedef struct gather {
    br_idmap *names; /* readers and books, interned */
    rrec *r;
    size_t n, cap;
} gather;

static br_status push(gather *g, const char *user, const char *book, br_event_type type,
                      float value, int64_t ts)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 4096;
        rrec *nr = br_realloc(g->r, cap * sizeof *nr);
        if (!nr) return br_error(BR_ENOMEM, "restore: interactions");
        g->r = nr;
        g->cap = cap;
    }
    rrec *x = &g->r[g->n];
    int added;
    br_status st = br_idmap_intern(g->names, user, strlen(user), &x->u, &added);
    if (!st) st = br_idmap_intern(g->names, book, strlen(book), &x->b, &added);
    if (st) return st;
    x->type = (uint32_t)type;
    x->value = value;
    x->ts = ts;
    x->seq = g->n++;
    return BR_OK;
}

static br_status on_event(const br_event *e, const char *pos, void *user)
{
    (void)pos;
    return push(user, e->user_id, e->book_id, e->type, e->value, e->timestamp);
}

/* Every event of the log at `uri`, read-only (a Redis stream without a
 * group, a file from its start). A local log that does not exist is
 * skipped: it went with the store. */
static br_status read_log(gather *g, const char *uri, uint64_t *count)
{
    char path[PATH_MAX];
    struct stat sb;
    size_t n;
    if (br__uri_local_path(uri, &n)) {
        br_status st = br__train_path(path, sizeof path, "%.*s%s", (int)n, uri + 5,
                                      !strncmp(uri, "lmdb:", 5) ? "/events.log" : "");
        if (st) return st;
        if (stat(path, &sb) != 0) return BR_OK;
    }
    br_events *ev = NULL;
    size_t before = g->n;
    br_status st = br_events_open(uri, BR_EVENTS_RDONLY, &ev);
    if (!st) st = br_events_read(ev, GROUP, 0, on_event, g, NULL, NULL);
    br_events_close(ev);
    if (st) return st;
    *count += g->n - before;
    return BR_OK;
}

static int cmp_pair(const void *x, const void *y)
{
    const rrec *a = x, *b = y;
    if (a->u != b->u) return a->u < b->u ? -1 : 1;
    if (a->b != b->b) return a->b < b->b ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

static int cmp_reader(const void *x, const void *y)
{
    const rrec *a = x, *b = y;
    if (a->u != b->u) return a->u < b->u ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* The newest version that was published to a store: the last `train`
 * published its data, the latest the store knew. */
static br_status newest_served(const char *model_dir, char *id, size_t cap)
{
    br_model_version *v = NULL;
    size_t n = 0;
    br_status st = br_models_list(model_dir, &v, &n);
    if (st) return st;
    id[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (v[i].served) snprintf(id, cap, "%s", v[i].id);
    br_free(v);
    if (!id[0]) return br_error(BR_ENOTFOUND, "%s: no version was ever served", model_dir);
    return BR_OK;
}

/* The training ratings of version `id`: the ratings file (its manifest's,
 * or `ratings` when given, checked against the manifest's size and hash)
 * and the folded rating events of its snapshot, one rating per (reader,
 * book), the later winning, as `train` published them. */
static br_status version_ratings(const char *model_dir, const char *id, const char *ratings,
                                 gather *g, char *log, size_t log_cap)
{
    char *text = NULL, vdir[PATH_MAX], path[PATH_MAX + 8];
    br_catalog *cat = NULL;
    br_ratings *rt = NULL;
    br_event_rules rules = BR_EVENT_RULES_DEFAULT;
    json_error_t je;
    br_status st = br_models_manifest(model_dir, id, &text);
    if (st) return st;
    json_t *j = json_loads(text, 0, &je);
    if (!j) {
        br_free(text);
        return br_error(BR_EFORMAT, "version %s: manifest: %s", id, je.text);
    }
    json_t *info = json_object_get(json_object_get(j, "inputs"), "ratings");
    const char *file = ratings ? ratings : json_string_value(json_object_get(info, "path"));
    const char *hash = json_string_value(json_object_get(info, "fnv1a64"));
    json_t *size = json_object_get(info, "size");
    json_t *evj = json_object_get(j, "events");
    const char *snap = json_string_value(json_object_get(evj, "snapshot"));
    const char *elog = json_string_value(json_object_get(evj, "log"));
    long long fv = json_integer_value(json_object_get(j, "format_version"));
    log[0] = '\0';
    st = br_event_rules_from_manifest(text, &rules);
    if (!st && elog) st = br__uri_resolve(model_dir, fv, elog, log, log_cap);
    if (!st && !file) st = br_error(BR_EFORMAT, "version %s: manifest names no ratings file", id);
    if (!st) st = br_models_path(model_dir, id, vdir, sizeof vdir);
    uint64_t h = 0, n = 0;
    if (!st) {
        st = br__train_hash_file(file, &h, &n);
        if (st == BR_EIO) {
            char why[256];
            snprintf(why, sizeof why, "%s", br_error_detail());
            st = br_error(BR_ENOTFOUND,
                          "the ratings version %s was trained on cannot be read (%s): name "
                          "where the file is now with --ratings FILE",
                          id, why);
        }
    }
    if (!st && hash) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
        if (strcmp(hex, hash) != 0 ||
            (json_is_integer(size) && (uint64_t)json_integer_value(size) != n))
            st = br_error(BR_EFORMAT,
                          "%s is not the ratings file version %s was trained on (its size or "
                          "FNV-1a hash differs): name the file it was with --ratings FILE",
                          file, id);
    }
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    lo.rating_min = rules.rating_min;
    lo.rating_max = rules.rating_max;
    if (!st) st = br__train_path(path, sizeof path, "%s/books.csv", vdir);
    if (!st) st = br_catalog_load(path, &lo, &cat, NULL);
    if (!st) st = br_ratings_load(file, cat, &lo, &rt, NULL);
    size_t first = g->n;
    if (!st) {
        const br_idmap *uid = br_ratings_user_ids(rt);
        const uint32_t *u = br_ratings_users(rt), *b = br_ratings_books(rt);
        const float *v = br_ratings_values(rt);
        const int64_t *t = br_ratings_timestamps(rt);
        for (size_t i = 0; i < br_ratings_count(rt) && !st; i++)
            st = push(g, br_idmap_name(uid, u[i]), br_catalog_book(cat, b[i])->id, BR_EVENT_RATING,
                      v[i], t ? t[i] : 0);
    }
    if (!st && snap) {
        br_events *ev = NULL;
        st = br__train_path(path, sizeof path, "file:%s/%s", vdir, snap);
        if (!st) st = br_events_open(path, BR_EVENTS_RDONLY, &ev);
        if (!st) st = br_events_read(ev, GROUP, 0, on_event, g, NULL, NULL);
        br_events_close(ev);
    }
    if (!st && g->n > first) {
        /* one rating per (reader, book), the later one in its place */
        size_t k = g->n - first, w = 0;
        rrec *r = g->r + first;
        qsort(r, k, sizeof *r, cmp_pair);
        for (size_t i = 0; i < k; i++)
            if (i + 1 == k || r[i + 1].u != r[i].u || r[i + 1].b != r[i].b) r[w++] = r[i];
        g->n = first + w;
    }
    br_ratings_free(rt);
    br_catalog_free(cat);
    json_decref(j);
    br_free(text);
    return st;
}

/* Merges g's interactions, reader by reader, into the store: each book
 * joins its reader's seen set, each interaction its latest ones. */
static br_status apply(gather *g, br_store *s, uint64_t *readers)
{
    if (g->n) qsort(g->r, g->n, sizeof *g->r, cmp_reader);
    br_event *e = br_malloc(BATCH * sizeof *e);
    if (!e) return br_error(BR_ENOMEM, "restore");
    br_progress p;
    br_progress_begin(&p, "restore: readers", g->n);
    br_status st = BR_OK;
    size_t k = 0;
    for (size_t i = 0; i < g->n && !st; i++) {
        const rrec *x = &g->r[i];
        if (i == 0 || x->u != g->r[i - 1].u) (*readers)++;
        e[k++] = (br_event){br_idmap_name(g->names, x->u), br_idmap_name(g->names, x->b),
                            (br_event_type)x->type, x->value, x->ts};
        if (k == BATCH || i + 1 == g->n) {
            st = br_store_apply_events(s, e, k);
            k = 0;
            if (!st) st = br_progress_update(&p, i + 1);
        }
    }
    if (!st) st = br_progress_end(&p);
    br_free(e);
    return st;
}

br_status br__restore_readers(const char *model_dir, br_store *s, const char *store_uri,
                              const char *ratings, int strict, br_models_restore_report *rep)
{
    gather g = {0};
    char log[PATH_MAX];
    br_status st = newest_served(model_dir, rep->source, sizeof rep->source);
    if (!st) st = br_idmap_create(&g.names);
    if (!st) {
        st = version_ratings(model_dir, rep->source, ratings, &g, log, sizeof log);
        if (st && !strict && st != BR_ENOMEM) {
            /* A rollback still serves the version: what is left is warned. */
            br_log(BR_LOG_WARN, "restore: the readers' ratings of version %s not restored: %s",
                   rep->source, br_error_detail());
            br_error_clear();
            rep->ratings_missing = 1;
            g.n = 0;
            log[0] = '\0';
            st = BR_OK;
        }
    }
    rep->ratings = g.n;
    if (!st) st = read_log(&g, store_uri, &rep->events);
    if (!st && log[0] && !br__uri_same(log, store_uri)) st = read_log(&g, log, &rep->events);
    if (!st) st = apply(&g, s, &rep->readers);
    br_free(g.r);
    br_idmap_free(g.names);
    return st;
}

br_status br_models_restore(const char *model_dir, const char *store, const char *ratings,
                            br_models_restore_report *report)
{
    br_models_restore_report local;
    br_models_restore_report *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    if (!model_dir) return br_error(BR_EINVAL, "br_models_restore: no model directory");
    char uri[PATH_MAX], served[BR_STORE_VERSION_MAX] = "";
    struct stat sb;
    if (stat(model_dir, &sb) || !S_ISDIR(sb.st_mode))
        return br_error(BR_ENOTFOUND, "%s: no such model directory", model_dir);
    int lock = -1;
    br_store *s = NULL;
    br_status st = br__train_lock(model_dir, &lock);
    if (!st) st = br_models_current(model_dir, rep->version, sizeof rep->version);
    if (!st && !store) {
        st = br_models_store(model_dir, rep->version, uri, sizeof uri);
        store = uri;
    }
    if (!st) st = br_store_open(store, 0, &s);
    /* The readers' data first: the lists are switched to with it there. */
    if (!st) st = br__restore_readers(model_dir, s, store, ratings, 1, rep);
    if (!st) {
        br_status vs = br_store_version(s, served, sizeof served);
        if (vs != BR_OK && vs != BR_ENOTFOUND) st = vs;
        br_error_clear();
    }
    if (!st && strcmp(served, rep->version) != 0) {
        st = br__publish_version(model_dir, rep->version, s, NULL);
        rep->republished = !st;
    }
    br_store_close(s);
    br__train_unlock(lock);
    return st;
}
