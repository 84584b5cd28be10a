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
 *
 * On a Redis Cluster the log is `partitions` streams, P"events{TAG}", each
 * TAG putting its stream in a slot spread evenly over the 16384 (so over
 * the primaries), and a reader's events all go to one of them (the one of
 * the reader's slot), in order. Each stream has its own consumer group and
 * checkpoint: an event's position is "PARTITION/ID", and the position a
 * read ends at is the vector "ID0,ID1,..." of every partition's last id
 * ("0" where nothing was read), which br_events_ack acknowledges stream by
 * stream. With replicas, an append is acknowledged only once WAIT says a
 * replica has it; when none does in time, the entries are deleted again
 * (XDEL) and the append fails: nothing acknowledged is on a primary alone.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/events_internal.h"
#include "store/rconn.h"

#define CONSUMER            "consumer"
#define BR_EVENTS_PARTS_MAX 48 /* the vector of ids fits BR_EVENTS_POS_MAX */
#define PAGE                1000

#define KEY_LEN 128

typedef struct redis_log {
    br_events base;
    br_rconn_cfg cfg;
    br_rclient *cli;
    int parts;            /* 1, or the cluster's partitions */
    char (*key)[KEY_LEN]; /* [parts] */
    int *slot;            /* [parts] each stream's slot */
} redis_log;

/* The partition of a reader's events: the one whose share of the slots
 * holds the reader's slot (the slot of its {ID} keys in the store). */
static int part_of(const redis_log *l, const char *user)
{
    if (l->parts == 1) return 0;
    char k[BR_ID_MAX + 8];
    int n = snprintf(k, sizeof k, "{%s}", user);
    return (int)((long)br__redis_slot(k, (size_t)n) * l->parts / BR_RCLUSTER_SLOTS);
}

static br_status run(redis_log *l, redisReply **r, int retry, const char *what, int argc,
                     const char **argv)
{
    size_t lens[16];
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    br_rbatch b = {0};
    br_status st = br__rbatch_add(&b, argc, argv, lens);
    if (st == BR_OK) st = br__rclient_run(l->cli, &b, retry, r, what);
    br__rbatch_free(&b);
    return st;
}

static void r_close(br_events *ev)
{
    redis_log *l = (redis_log *)ev;
    br__rclient_free(l->cli);
    br_free(l->key);
    br_free(l->slot);
    br_free(l);
}

/* The replicas an append waits for on partition p's node: the `replicas`
 * option, or on a cluster 1 when the node has a replica. */
static uint64_t want_replicas(const redis_log *l, int p)
{
    if (l->cfg.replicas) return l->cfg.replicas;
    return l->cfg.cluster && br__rclient_slot_replicas(l->cli, l->slot[p]) > 0 ? 1 : 0;
}

/* XDEL of the entries an append made, when their replication could not be
 * confirmed (best effort: a primary that died has lost them anyway). */
static void undo_append(redis_log *l, const int *part, redisReply **rep, const int *at, size_t n)
{
    br_rbatch b = {0};
    for (size_t i = 0; i < n; i++) {
        if (!rep[at[i]] || rep[at[i]]->type != REDIS_REPLY_STRING) continue;
        const char *argv[] = {"XDEL", l->key[part[i]], rep[at[i]]->str};
        size_t lens[] = {4, strlen(argv[1]), rep[at[i]]->len};
        if (br__rbatch_add(&b, 3, argv, lens) != BR_OK) break;
    }
    if (b.n) br__rclient_run(l->cli, &b, BR_RRETRY_LONG, NULL, "XDEL");
    br__rbatch_free(&b);
}

static br_status r_append(br_events *ev, const br_event *events, size_t n)
{
    redis_log *l = (redis_log *)ev;
    br_rbatch b = {0};
    br_status st = BR_OK;
    int *part = br_malloc((n ? n : 1) * sizeof *part), *at = br_malloc((n ? n : 1) * sizeof *at);
    char *waited = br_calloc((size_t)l->parts, 1);
    int *wait_part = br_malloc((size_t)l->parts * sizeof *wait_part), n_wait = 0;
    if (!part || !at || !waited || !wait_part) st = br_error(BR_ENOMEM, "events");
    for (size_t i = 0; i < n && st == BR_OK; i++) {
        char v[32], ts[24];
        snprintf(v, sizeof v, "%.9g", (double)events[i].value);
        snprintf(ts, sizeof ts, "%lld", (long long)events[i].timestamp);
        part[i] = part_of(l, events[i].user_id);
        const char *argv[] = {"XADD",
                              l->key[part[i]],
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
        at[i] = b.n;
        st = br__rbatch_add(&b, 13, argv, lens);
    }
    /* WAIT after the last XADD on each partition's node, on the same
     * connection (WAIT counts that connection's writes): the batch sends
     * each node's commands in order on one connection. */
    int first_wait = b.n;
    char want[24], ms[24];
    snprintf(ms, sizeof ms, "%llu",
             (unsigned long long)(l->cfg.timeout_ms / 2 ? l->cfg.timeout_ms / 2 : 1));
    for (size_t i = 0; i < n && st == BR_OK; i++) {
        int p = part[i];
        uint64_t w = want_replicas(l, p);
        if (!w || waited[p]) continue;
        waited[p] = 1;
        wait_part[n_wait++] = p;
        snprintf(want, sizeof want, "%llu", (unsigned long long)w);
        const char *argv[] = {"WAIT", want, ms};
        size_t lens[] = {4, strlen(want), strlen(ms)};
        st = br__rbatch_add(&b, 3, argv, lens);
        if (st == BR_OK) br__rbatch_route(&b, l->slot[p]);
    }
    redisReply **rep = st == BR_OK ? br_calloc((size_t)b.n, sizeof *rep) : NULL;
    if (st == BR_OK && !rep) st = br_error(BR_ENOMEM, "events");
    if (st == BR_OK) st = br__rclient_run(l->cli, &b, BR_RRETRY_NONE, rep, "XADD");
    if (st == BR_ENET) {
        char d[512];
        snprintf(d, sizeof d, "%s", br_error_detail());
        st = br_error(BR_ENET, "%s (some of the %zu events may have been appended)", d, n);
    }
    if (st == BR_OK) {
        /* every WAIT must have its replicas */
        int short_of = 0;
        for (int k = first_wait; k < b.n && !short_of; k++)
            short_of = rep[k]->type != REDIS_REPLY_INTEGER ||
                       rep[k]->integer < (long long)want_replicas(l, wait_part[k - first_wait]);
        if (short_of) {
            undo_append(l, part, rep, at, n);
            br__rclient_refresh(l->cli); /* a replica may have died: re-count them */
            st = br_error(BR_ENET,
                          "redis: no replica acknowledged the events within %s ms: nothing "
                          "appended (retry)",
                          ms);
        }
        for (int k = 0; k < b.n; k++) freeReplyObject(rep[k]);
    }
    br_free(rep);
    br_free(part);
    br_free(at);
    br_free(waited);
    br_free(wait_part);
    br__rbatch_free(&b);
    return st;
}

/* Creates group `group` on every partition's stream (MKSTREAM). */
static br_status ensure_group(redis_log *l, const char *group)
{
    br_status st = BR_OK;
    for (int p = 0; p < l->parts && st == BR_OK; p++) {
        const char *argv[] = {"XGROUP", "CREATE", l->key[p], group, "0", "MKSTREAM"};
        redisReply *r = NULL;
        st = run(l, &r, 1, "XGROUP CREATE", 6, argv);
        if (st == BR_ESTORE && strstr(br_error_detail(), "BUSYGROUP")) st = BR_OK;
        if (r) freeReplyObject(r);
    }
    return st;
}

/* Decodes one stream entry [id, [field, value, ...]]. */
static br_status decode(redis_log *l, int p, const redisReply *entry, br_event *e, char *user,
                        char *book)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[1]->type != REDIS_REPLY_ARRAY)
        return br_error(BR_ESTORE, "redis: %s: malformed stream entry", l->key[p]);
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
        return br_error(BR_ESTORE, "redis: %s: entry %s is not a bookrec event", l->key[p], id);
    return BR_OK;
}

static int parse_id(const char *s, unsigned long long *ms, unsigned long long *seq);

/* A delivered event's position: the id, or on a cluster "PARTITION/ID";
 * the read's end position `last` advanced past it. */
static br_status delivered(redis_log *l, int p, const char *id, char *pos, char *last)
{
    if (l->parts == 1) {
        snprintf(pos, BR_EVENTS_POS_MAX, "%s", id);
        snprintf(last, BR_EVENTS_POS_MAX, "%s", id);
        return BR_OK;
    }
    snprintf(pos, BR_EVENTS_POS_MAX, "%d/%s", p, id);
    return br_events_pos_advance(last, pos);
}

/* Read-only: every entry of partition p, oldest first, paging by the id
 * after the last. */
static br_status r_scan(redis_log *l, int p, size_t max, br_event_fn fn, void *user, size_t *count,
                        char *last)
{
    char from[BR_EVENTS_POS_MAX] = "-", pos[BR_EVENTS_POS_MAX];
    br_status st = BR_OK;
    for (;;) {
        size_t want = max ? max - *count : PAGE;
        if (want == 0) break;
        if (want > PAGE) want = PAGE;
        char cnt[24];
        snprintf(cnt, sizeof cnt, "%zu", want);
        const char *argv[] = {"XRANGE", l->key[p], from, "+", "COUNT", cnt};
        redisReply *r = NULL;
        st = run(l, &r, 1, "XRANGE", 6, argv);
        if (st != BR_OK) return st;
        size_t got = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        for (size_t i = 0; i < got && st == BR_OK; i++) {
            br_event e;
            char ub[BR_ID_MAX], bb[BR_ID_MAX];
            const redisReply *ent = r->element[i];
            st = decode(l, p, ent, &e, ub, bb);
            if (st == BR_OK) st = delivered(l, p, ent->element[0]->str, pos, last);
            if (st == BR_OK) st = fn(&e, pos, user);
            if (st == BR_OK) {
                unsigned long long ms, seq;
                (*count)++;
                if (!parse_id(ent->element[0]->str, &ms, &seq))
                    st = br_error(BR_ESTORE, "redis: %s: bad entry id", l->key[p]);
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

/* Group `group`'s events of partition p: its pending entries first,
 * paging by the last id seen, then new ones (">"). */
static br_status read_part(redis_log *l, int p, const char *group, size_t max, br_event_fn fn,
                           void *user, size_t *count, char *last)
{
    br_status st = BR_OK;
    char after[BR_EVENTS_POS_MAX] = "0", pos[BR_EVENTS_POS_MAX];
    for (int pass = 0; pass < 2 && st == BR_OK; pass++) {
        for (;;) {
            size_t want = max ? max - *count : PAGE;
            if (want == 0) break;
            if (want > PAGE) want = PAGE;
            char cnt[24];
            snprintf(cnt, sizeof cnt, "%zu", want);
            const char *argv[] = {"XREADGROUP", "GROUP",   group,     CONSUMER,          "COUNT",
                                  cnt,          "STREAMS", l->key[p], pass ? ">" : after};
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
                st = decode(l, p, ent, &e, ub, bb);
                const char *id = st == BR_OK ? ent->element[0]->str : "";
                if (st == BR_OK) st = delivered(l, p, id, pos, last);
                if (st == BR_OK) st = fn(&e, pos, user);
                if (st == BR_OK) {
                    (*count)++;
                    snprintf(after, sizeof after, "%s", id);
                }
            }
            freeReplyObject(r);
            if (st != BR_OK || got < want) break;
        }
    }
    return st;
}

/* The partitions one after another: a reader's events are in one of them,
 * in their order. */
static br_status r_read(br_events *ev, const char *group, size_t max, br_event_fn fn, void *user,
                        size_t *count, char *last)
{
    redis_log *l = (redis_log *)ev;
    br_status st = (ev->flags & BR_EVENTS_RDONLY) ? BR_OK : ensure_group(l, group);
    for (int p = 0; p < l->parts && st == BR_OK; p++)
        st = (ev->flags & BR_EVENTS_RDONLY) ? r_scan(l, p, max, fn, user, count, last)
                                            : read_part(l, p, group, max, fn, user, count, last);
    return st;
}

/* XACKs every pending entry of partition p up to id `upto`. */
static br_status ack_part(redis_log *l, int p, const char *group, const char *upto)
{
    for (;;) {
        char cnt[16];
        snprintf(cnt, sizeof cnt, "%d", PAGE);
        const char *argv[] = {"XPENDING", l->key[p], group, "-", upto, cnt};
        redisReply *r = NULL;
        br_status st = run(l, &r, 1, "XPENDING", 6, argv);
        if (st != BR_OK) {
            if (strstr(br_error_detail(), "Invalid stream ID"))
                st = br_error(BR_EINVAL, "redis: '%s' is not a stream position", upto);
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
        argv2[1] = l->key[p];
        argv2[2] = group;
        for (size_t i = 0; i < n; i++) argv2[3 + i] = r->element[i]->element[0]->str;
        for (size_t i = 0; i < n + 3; i++) lens[i] = strlen(argv2[i]);
        br_rbatch b = {0};
        st = br__rbatch_add(&b, (int)(n + 3), argv2, lens);
        if (st == BR_OK) st = br__rclient_run(l->cli, &b, BR_RRETRY_ONCE, NULL, "XACK");
        br__rbatch_free(&b);
        br_free(argv2);
        br_free(lens);
        freeReplyObject(r);
        if (st != BR_OK || n < PAGE) return st;
    }
}

/* `pos`: an id (one stream); on a cluster an event's "PARTITION/ID" or a
 * read's vector "ID0,ID1,..." ("0": nothing of that partition). */
static br_status r_ack(br_events *ev, const char *group, const char *pos)
{
    redis_log *l = (redis_log *)ev;
    br_status st = ensure_group(l, group);
    if (st != BR_OK) return st;
    if (l->parts == 1)
        return strchr(pos, '/') || strchr(pos, ',')
                   ? br_error(BR_EINVAL, "redis: '%s' is not a stream position", pos)
                   : ack_part(l, 0, group, pos);
    char id[BR_EVENTS_POS_MAX];
    const char *slash = strchr(pos, '/');
    if (slash) {
        char *end;
        long p = strtol(pos, &end, 10);
        if (end != slash || p < 0 || p >= l->parts)
            return br_error(BR_EINVAL, "redis-cluster: '%s': no such partition", pos);
        return ack_part(l, (int)p, group, slash + 1);
    }
    const char *c = pos;
    for (int p = 0; p < l->parts && st == BR_OK; p++) {
        const char *comma = strchr(c, ',');
        size_t len = comma ? (size_t)(comma - c) : strlen(c);
        if (len == 0 || len >= sizeof id || (comma && p == l->parts - 1))
            return br_error(BR_EINVAL,
                            "redis-cluster: '%s' is not a position of this log (%d partitions)",
                            pos, l->parts);
        memcpy(id, c, len);
        id[len] = '\0';
        if (strcmp(id, "0") != 0) st = ack_part(l, p, group, id);
        if (!comma) break; /* the partitions after it: nothing read */
        c = comma + 1;
    }
    return st;
}

static br_status r_count(br_events *ev, uint64_t *n)
{
    redis_log *l = (redis_log *)ev;
    *n = 0;
    for (int p = 0; p < l->parts; p++) {
        const char *argv[] = {"XLEN", l->key[p]};
        redisReply *r = NULL;
        br_status st = run(l, &r, 1, "XLEN", 2, argv);
        if (st != BR_OK) return st;
        *n += r->type == REDIS_REPLY_INTEGER ? (uint64_t)r->integer : 0;
        freeReplyObject(r);
    }
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
static br_status group_floor(redis_log *l, int p, const redisReply *g, unsigned long long *ms,
                             unsigned long long *seq)
{
    const redisReply *name = field(g, "name"), *pend = field(g, "pending"),
                     *last = field(g, "last-delivered-id");
    if (!name || name->type != REDIS_REPLY_STRING || !pend || pend->type != REDIS_REPLY_INTEGER ||
        !last || last->type != REDIS_REPLY_STRING || !parse_id(last->str, ms, seq))
        return br_error(BR_ESTORE, "redis: %s: XINFO GROUPS: unexpected reply", l->key[p]);
    if (pend->integer == 0) {
        /* Everything up to the last delivered entry is acknowledged. */
        if (*seq == ~0ull) {
            (*ms)++;
            *seq = 0;
        } else
            (*seq)++;
        return BR_OK;
    }
    const char *argv[] = {"XPENDING", l->key[p], name->str};
    redisReply *r = NULL;
    br_status st = run(l, &r, 1, "XPENDING", 3, argv);
    if (st != BR_OK) return st;
    /* [count, smallest id, greatest id, consumers] */
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[1]->type != REDIS_REPLY_STRING || !parse_id(r->element[1]->str, ms, seq))
        st = br_error(BR_ESTORE, "redis: %s: XPENDING %s: unexpected reply", l->key[p], name->str);
    freeReplyObject(r);
    return st;
}

/* Partition p's stream, below the oldest entry any group still needs. */
static br_status trim_part(redis_log *l, int p, uint64_t *removed)
{
    const char *argv[] = {"XINFO", "GROUPS", l->key[p]};
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
        st = group_floor(l, p, r->element[i], &ms, &seq);
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
    const char *targv[] = {"XTRIM", l->key[p], "MINID", minid};
    r = NULL;
    st = run(l, &r, 1, "XTRIM", 4, targv);
    if (st != BR_OK) return st;
    *removed += r->type == REDIS_REPLY_INTEGER ? (uint64_t)r->integer : 0;
    freeReplyObject(r);
    return BR_OK;
}

static br_status r_trim(br_events *ev, uint64_t *removed)
{
    redis_log *l = (redis_log *)ev;
    br_status st = BR_OK;
    *removed = 0;
    for (int p = 0; p < l->parts && st == BR_OK; p++) st = trim_part(l, p, removed);
    return st;
}

static const br_events_ops redis_ops = {r_close, r_append, r_read, r_ack, r_count, r_trim};

br_status br__events_redis_open(const char *uri, int cluster, unsigned flags, br_events **out)
{
    redis_log *l = br_calloc(1, sizeof *l);
    if (!l) return br_error(BR_ENOMEM, "event log");
    l->base.ops = &redis_ops;
    l->base.flags = flags;
    br_status st = br__rconn_parse(uri, cluster, &l->cfg);
    if (st == BR_OK && cluster && l->cfg.partitions > BR_EVENTS_PARTS_MAX)
        st = br_error(BR_EINVAL,
                      "redis-cluster option partitions: at most %d (a read's position "
                      "names every partition)",
                      BR_EVENTS_PARTS_MAX);
    l->parts = cluster ? (int)l->cfg.partitions : 1;
    l->key = st == BR_OK ? br_calloc((size_t)l->parts, sizeof *l->key) : NULL;
    l->slot = l->key ? br_calloc((size_t)l->parts, sizeof *l->slot) : NULL;
    if (st == BR_OK && !l->slot) st = br_error(BR_ENOMEM, "event log");
    for (int p = 0; st == BR_OK && p < l->parts; p++) {
        if (!cluster) {
            snprintf(l->key[p], KEY_LEN, "%sevents", l->cfg.prefix);
            continue;
        }
        /* the middle of the partition's share of the slots */
        l->slot[p] = (int)(((2L * p + 1) * BR_RCLUSTER_SLOTS) / (2L * l->parts));
        snprintf(l->key[p], KEY_LEN, "%sevents{%s}", l->cfg.prefix, br__redis_slot_tag(l->slot[p]));
    }
    if (st == BR_OK) st = br__rclient_open(&l->cfg, &l->cli);
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
