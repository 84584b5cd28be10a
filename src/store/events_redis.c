/*
 * events_redis.c: the event log as a Redis Stream, key P"events"
 * (docs/store.md). Entries: XADD with fields u (reader), b (book), t (type
 * name), v (value, %.9g), ts (timestamp). Consumption uses a consumer
 * group with one consumer, "consumer": a read first re-delivers the
 * group's pending entries (delivered, never XACKed: a consumer that died
 * before acknowledging), then new ones (">"); br_events_ack XACKs every
 * pending entry up to the given id (found with XPENDING, so it works from
 * another process than the one that read). Nothing is lost; nothing is
 * acknowledged before the consumer says so.
 *
 * XADD is not idempotent, so a batch whose connection breaks is not
 * retried: the error says some events may have been appended. A pooled
 * connection the server closed while idle (Redis restarted) is replaced
 * before the batch is sent (rconn.c), so the first events after a restart
 * go through.
 *
 * A read-only handle (BR_EVENTS_RDONLY) creates no group and moves none:
 * it delivers every entry of the stream, oldest first (XRANGE), which is
 * what restoring a store needs (docs/store.md, "Recovering a store").
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/events_internal.h"
#include "store/rconn.h"

#define CONSUMER "consumer"
#define PAGE     1000

typedef struct redis_log {
    br_events base;
    br_rconn_cfg cfg;
    br_rpool *pool;
    char key[128];
} redis_log;

static br_status run(redis_log *l, redisReply **r, int retry, const char *what, int argc,
                     const char **argv)
{
    size_t lens[16];
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    br_rbatch b = {0};
    br_status st = br__rbatch_add(&b, argc, argv, lens);
    if (st == BR_OK) st = br__rpool_run(l->pool, &b, retry, r, what);
    br__rbatch_free(&b);
    return st;
}

static void r_close(br_events *ev)
{
    redis_log *l = (redis_log *)ev;
    br__rpool_free(l->pool);
    br_free(l);
}

static br_status r_append(br_events *ev, const br_event *events, size_t n)
{
    redis_log *l = (redis_log *)ev;
    br_rbatch b = {0};
    br_status st = BR_OK;
    for (size_t i = 0; i < n && st == BR_OK; i++) {
        char v[32], ts[24];
        snprintf(v, sizeof v, "%.9g", (double)events[i].value);
        snprintf(ts, sizeof ts, "%lld", (long long)events[i].timestamp);
        const char *argv[] = {"XADD",
                              l->key,
                              "*",
                              "u",
                              events[i].user_id,
                              "b",
                              events[i].book_id,
                              "t",
                              br_event_type_name(events[i].type),
                              "v",
                              v,
                              "ts",
                              ts};
        size_t lens[13];
        for (int k = 0; k < 13; k++) lens[k] = strlen(argv[k]);
        st = br__rbatch_add(&b, 13, argv, lens);
    }
    if (st == BR_OK) st = br__rpool_run(l->pool, &b, 0, NULL, "XADD");
    if (st == BR_ENET) {
        char d[512];
        snprintf(d, sizeof d, "%s", br_error_detail());
        st = br_error(BR_ENET, "%s (some of the %zu events may have been appended)", d, n);
    }
    br__rbatch_free(&b);
    return st;
}

static br_status ensure_group(redis_log *l, const char *group)
{
    const char *argv[] = {"XGROUP", "CREATE", l->key, group, "0", "MKSTREAM"};
    redisReply *r = NULL;
    br_status st = run(l, &r, 1, "XGROUP CREATE", 6, argv);
    if (st == BR_ESTORE && strstr(br_error_detail(), "BUSYGROUP")) return BR_OK;
    if (r) freeReplyObject(r);
    return st;
}

/* Decodes one stream entry [id, [field, value, ...]]. */
static br_status decode(redis_log *l, const redisReply *entry, br_event *e, char *user, char *book)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[1]->type != REDIS_REPLY_ARRAY)
        return br_error(BR_ESTORE, "redis: %s: malformed stream entry", l->key);
    const redisReply *f = entry->element[1];
    const char *id = entry->element[0]->str;
    int have = 0;
    memset(e, 0, sizeof *e);
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
        size_t vl = f->element[i + 1]->len;
        if (!strcmp(k, "u") && vl < BR_ID_MAX) {
            memcpy(user, v, vl + 1);
            have |= 1;
        } else if (!strcmp(k, "b") && vl < BR_ID_MAX) {
            memcpy(book, v, vl + 1);
            have |= 2;
        } else if (!strcmp(k, "t") && br_event_type_parse(v, &e->type) == BR_OK) {
            have |= 4;
        } else if (!strcmp(k, "v")) {
            e->value = strtof(v, NULL);
            have |= 8;
        } else if (!strcmp(k, "ts")) {
            e->timestamp = strtoll(v, NULL, 10);
            have |= 16;
        }
    }
    e->user_id = user;
    e->book_id = book;
    if (have != 31 || br_event_validate(e) != BR_OK)
        return br_error(BR_ESTORE, "redis: %s: entry %s is not a bookrec event", l->key, id);
    return BR_OK;
}

static int parse_id(const char *s, unsigned long long *ms, unsigned long long *seq);

/* Read-only: every entry, oldest first, paging by the id after the last. */
static br_status r_scan(redis_log *l, size_t max, br_event_fn fn, void *user, size_t *count,
                        char *last)
{
    char from[BR_EVENTS_POS_MAX] = "-";
    br_status st = BR_OK;
    for (;;) {
        size_t want = max ? max - *count : PAGE;
        if (want == 0) break;
        if (want > PAGE) want = PAGE;
        char cnt[24];
        snprintf(cnt, sizeof cnt, "%zu", want);
        const char *argv[] = {"XRANGE", l->key, from, "+", "COUNT", cnt};
        redisReply *r = NULL;
        st = run(l, &r, 1, "XRANGE", 6, argv);
        if (st != BR_OK) return st;
        size_t got = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        for (size_t i = 0; i < got && st == BR_OK; i++) {
            br_event e;
            char ub[BR_ID_MAX], bb[BR_ID_MAX];
            const redisReply *ent = r->element[i];
            st = decode(l, ent, &e, ub, bb);
            if (st == BR_OK) st = fn(&e, ent->element[0]->str, user);
            if (st == BR_OK) {
                unsigned long long ms, seq;
                (*count)++;
                snprintf(last, BR_EVENTS_POS_MAX, "%s", ent->element[0]->str);
                if (!parse_id(ent->element[0]->str, &ms, &seq))
                    st = br_error(BR_ESTORE, "redis: %s: bad entry id", l->key);
                else if (seq == ~0ull)
                    snprintf(from, sizeof from, "%llu-0", ms + 1);
                else
                    snprintf(from, sizeof from, "%llu-%llu", ms, seq + 1);
            }
        }
        freeReplyObject(r);
        if (st != BR_OK || got < want) break;
    }
    return st;
}

static br_status r_read(br_events *ev, const char *group, size_t max, br_event_fn fn, void *user,
                        size_t *count, char *last)
{
    redis_log *l = (redis_log *)ev;
    if (ev->flags & BR_EVENTS_RDONLY) return r_scan(l, max, fn, user, count, last);
    br_status st = ensure_group(l, group);
    if (st != BR_OK) return st;
    /* Pass 0: this group's pending entries, paging by the last id seen.
     * Pass 1: new entries (">"). */
    char after[BR_EVENTS_POS_MAX] = "0";
    for (int pass = 0; pass < 2 && st == BR_OK; pass++) {
        for (;;) {
            size_t want = max ? max - *count : PAGE;
            if (want == 0) break;
            if (want > PAGE) want = PAGE;
            char cnt[24];
            snprintf(cnt, sizeof cnt, "%zu", want);
            const char *argv[] = {"XREADGROUP", "GROUP",   group,  CONSUMER,          "COUNT",
                                  cnt,          "STREAMS", l->key, pass ? ">" : after};
            redisReply *r = NULL;
            st = run(l, &r, 1, "XREADGROUP", 9, argv);
            if (st != BR_OK) return st;
            /* [[key, [entries]]] or nil when nothing is there. */
            const redisReply *entries = NULL;
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
                entries = r->element[0]->element[1];
            size_t got = entries ? entries->elements : 0;
            for (size_t i = 0; i < got && st == BR_OK; i++) {
                br_event e;
                char ub[BR_ID_MAX], bb[BR_ID_MAX];
                const redisReply *ent = entries->element[i];
                /* A pending entry deleted from the stream comes back as
                 * [id, nil]: nothing to deliver, but it must be acked. */
                if (ent->type == REDIS_REPLY_ARRAY && ent->elements == 2 &&
                    ent->element[1]->type == REDIS_REPLY_NIL) {
                    snprintf(after, sizeof after, "%s", ent->element[0]->str);
                    continue;
                }
                st = decode(l, ent, &e, ub, bb);
                const char *id = st == BR_OK ? ent->element[0]->str : "";
                if (st == BR_OK) st = fn(&e, id, user);
                if (st == BR_OK) {
                    (*count)++;
                    snprintf(last, BR_EVENTS_POS_MAX, "%s", id);
                    snprintf(after, sizeof after, "%s", id);
                }
            }
            freeReplyObject(r);
            if (st != BR_OK || got < want) break;
        }
    }
    return st;
}

static br_status r_ack(br_events *ev, const char *group, const char *pos)
{
    redis_log *l = (redis_log *)ev;
    br_status st = ensure_group(l, group);
    for (;;) {
        if (st != BR_OK) return st;
        char cnt[16];
        snprintf(cnt, sizeof cnt, "%d", PAGE);
        const char *argv[] = {"XPENDING", l->key, group, "-", pos, cnt};
        redisReply *r = NULL;
        st = run(l, &r, 1, "XPENDING", 6, argv);
        if (st != BR_OK) {
            if (strstr(br_error_detail(), "Invalid stream ID"))
                st = br_error(BR_EINVAL, "redis: '%s' is not a stream position", pos);
            return st;
        }
        size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        if (n == 0) {
            freeReplyObject(r);
            return BR_OK;
        }
        const char **argv2 = br_malloc((n + 3) * sizeof *argv2);
        size_t *lens = br_malloc((n + 3) * sizeof *lens);
        if (!argv2 || !lens) {
            br_free(argv2);
            br_free(lens);
            freeReplyObject(r);
            return br_error(BR_ENOMEM, "XACK");
        }
        argv2[0] = "XACK";
        argv2[1] = l->key;
        argv2[2] = group;
        for (size_t i = 0; i < n; i++) argv2[3 + i] = r->element[i]->element[0]->str;
        for (size_t i = 0; i < n + 3; i++) lens[i] = strlen(argv2[i]);
        br_rbatch b = {0};
        st = br__rbatch_add(&b, (int)(n + 3), argv2, lens);
        if (st == BR_OK) st = br__rpool_run(l->pool, &b, 1, NULL, "XACK");
        br__rbatch_free(&b);
        br_free(argv2);
        br_free(lens);
        freeReplyObject(r);
        if (n < PAGE) return st;
    }
}

static br_status r_count(br_events *ev, uint64_t *n)
{
    redis_log *l = (redis_log *)ev;
    const char *argv[] = {"XLEN", l->key};
    redisReply *r = NULL;
    br_status st = run(l, &r, 1, "XLEN", 2, argv);
    if (st != BR_OK) return st;
    *n = r->type == REDIS_REPLY_INTEGER ? (uint64_t)r->integer : 0;
    freeReplyObject(r);
    return BR_OK;
}

/* A stream id "MS-SEQ" as two numbers; 0 when it is not one. */
static int parse_id(const char *s, unsigned long long *ms, unsigned long long *seq)
{
    char *end;
    if (!s || !*s) return 0;
    *ms = strtoull(s, &end, 10);
    *seq = 0;
    if (*end == '-') *seq = strtoull(end + 1, &end, 10);
    return *end == '\0';
}

/* The value of field `name` in a flat [name, value, ...] reply. */
static const redisReply *field(const redisReply *r, const char *name)
{
    if (!r || r->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && !strcmp(r->element[i]->str, name))
            return r->element[i + 1];
    return NULL;
}

/* The oldest entry group `g` (an XINFO GROUPS element) still needs: its
 * oldest pending entry, else the one after its last delivered entry. */
static br_status group_floor(redis_log *l, const redisReply *g, unsigned long long *ms,
                             unsigned long long *seq)
{
    const redisReply *name = field(g, "name"), *pend = field(g, "pending"),
                     *last = field(g, "last-delivered-id");
    if (!name || name->type != REDIS_REPLY_STRING || !pend || pend->type != REDIS_REPLY_INTEGER ||
        !last || last->type != REDIS_REPLY_STRING || !parse_id(last->str, ms, seq))
        return br_error(BR_ESTORE, "redis: %s: XINFO GROUPS: unexpected reply", l->key);
    if (pend->integer == 0) {
        /* Everything up to the last delivered entry is acknowledged. */
        if (*seq == ~0ull) {
            (*ms)++;
            *seq = 0;
        } else
            (*seq)++;
        return BR_OK;
    }
    const char *argv[] = {"XPENDING", l->key, name->str};
    redisReply *r = NULL;
    br_status st = run(l, &r, 1, "XPENDING", 3, argv);
    if (st != BR_OK) return st;
    /* [count, smallest id, greatest id, consumers] */
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[1]->type != REDIS_REPLY_STRING || !parse_id(r->element[1]->str, ms, seq))
        st = br_error(BR_ESTORE, "redis: %s: XPENDING %s: unexpected reply", l->key, name->str);
    freeReplyObject(r);
    return st;
}

static br_status r_trim(br_events *ev, uint64_t *removed)
{
    redis_log *l = (redis_log *)ev;
    const char *argv[] = {"XINFO", "GROUPS", l->key};
    redisReply *r = NULL;
    br_status st = run(l, &r, 1, "XINFO GROUPS", 3, argv);
    if (st == BR_ESTORE && strstr(br_error_detail(), "no such key")) {
        br_error_clear();
        return BR_OK; /* no stream: nothing to trim */
    }
    if (st != BR_OK) return st;
    unsigned long long min_ms = ~0ull, min_seq = ~0ull;
    size_t groups = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    for (size_t i = 0; i < groups && st == BR_OK; i++) {
        unsigned long long ms = 0, seq = 0; /* set when group_floor succeeds */
        st = group_floor(l, r->element[i], &ms, &seq);
        if (st == BR_OK && (ms < min_ms || (ms == min_ms && seq < min_seq))) {
            min_ms = ms;
            min_seq = seq;
        }
    }
    freeReplyObject(r);
    /* No group: nobody has consumed anything, keep everything. */
    if (st != BR_OK || groups == 0) return st;
    char minid[48];
    snprintf(minid, sizeof minid, "%llu-%llu", min_ms, min_seq);
    const char *targv[] = {"XTRIM", l->key, "MINID", minid};
    r = NULL;
    st = run(l, &r, 1, "XTRIM", 4, targv);
    if (st != BR_OK) return st;
    *removed = r->type == REDIS_REPLY_INTEGER ? (uint64_t)r->integer : 0;
    freeReplyObject(r);
    return BR_OK;
}

static const br_events_ops redis_ops = {r_close, r_append, r_read, r_ack, r_count, r_trim};

br_status br__events_redis_open(const char *uri, unsigned flags, br_events **out)
{
    redis_log *l = br_calloc(1, sizeof *l);
    if (!l) return br_error(BR_ENOMEM, "event log");
    l->base.ops = &redis_ops;
    l->base.flags = flags;
    br_status st = br__rconn_parse(uri, &l->cfg);
    if (st == BR_OK) {
        snprintf(l->key, sizeof l->key, "%sevents", l->cfg.prefix);
        st = br__rpool_create(&l->cfg, &l->pool);
    }
    if (st == BR_OK) {
        const char *argv[] = {"PING"};
        redisReply *r = NULL;
        st = run(l, &r, 1, "PING", 1, argv);
        if (r) freeReplyObject(r);
    }
    if (st != BR_OK) {
        r_close(&l->base);
        return st;
    }
    *out = &l->base;
    return BR_OK;
}
