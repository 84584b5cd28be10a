/*
 * store_redis.c: the store backend on Redis via hiredis (keys in
 * docs/store.md; P is the prefix, "bookrec:" by default).
 *
 * Atomic publish by versioned keys and one pointer: a publish writes
 * P@VERSION:user:ID:recs and P@VERSION:book:ID (pipelined, `chunk`
 * commands per round trip) while readers follow P"version" to the old
 * version; the switch is one SET of that pointer (GETSET, to learn the old
 * name), after which every key of other versions gets an EXPIRE of
 * `grace_s` seconds so a request that read the old pointer a moment ago
 * still finds its keys. A publish killed midway leaves unreferenced keys
 * without a TTL: the next commit expires them too (it expires every
 * versioned key that is not the new version's).
 *
 * Reads trust the pointer they read for `version_ttl_ms` (a store-wide
 * cache, refreshed by whichever thread finds it stale), so a recs read is
 * one GET. The cache only moves forward in time, so a thread that has seen
 * the new version never goes back to the old one; a publish through this
 * handle refreshes it at once.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/rconn.h"

typedef struct redis_store {
    br_store base;
    br_rconn_cfg cfg;
    br_rclient *cli;
    pthread_mutex_t vmu;
    char ver[BR_STORE_VERSION_MAX];
    int have_ver;
    uint64_t ver_at_ns;
} redis_store;

typedef struct redis_pub {
    br_store_pub base;
    br_rbatch batch;
    char lock[160]; /* our value of the publish lock */
} redis_pub;

#define KEY_MAX (64 + BR_STORE_VERSION_MAX + BR_ID_MAX + 32)

/* --------------------------------------------------------------- helpers -- */

static br_status run1(redis_store *s, redisReply **r, const char *what, int argc, ...)
{
    const char *argv[8];
    size_t lens[8];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) {
        argv[i] = va_arg(ap, const char *);
        lens[i] = strlen(argv[i]);
    }
    va_end(ap);
    br_rbatch b = {0};
    br_status st = br__rbatch_add(&b, argc, argv, lens);
    if (st == BR_OK) st = br__rclient_run(s->cli, &b, BR_RRETRY_ONCE, r, what);
    br__rbatch_free(&b);
    return st;
}

/* A reader's key: P[@VER:]user:ID:WHAT. On a cluster the id is the key's
 * hash tag, {ID}, so a reader's recs, seen set and interactions share a
 * slot and a request reads them from one node in one round trip. */
static void ukey(const br_rconn_cfg *cfg, char *key, const char *ver, const char *user,
                 const char *what)
{
    const char *o = cfg->cluster ? "{" : "", *c = cfg->cluster ? "}" : "";
    if (ver)
        snprintf(key, KEY_MAX, "%s@%s:user:%s%s%s:%s", cfg->prefix, ver, o, user, c, what);
    else
        snprintf(key, KEY_MAX, "%suser:%s%s%s:%s", cfg->prefix, o, user, c, what);
}

/* The version pointer a reader's request reads: P"version", or on a
 * cluster the copy in the reader's slot, P"version{TAG}" (docs/store.md:
 * one copy per slot, so the request stays on one node and a node's loss
 * costs only its own slots' readers). */
static void vkey_for(const br_rconn_cfg *cfg, char *key, const char *reader_key)
{
    if (!cfg->cluster) {
        snprintf(key, KEY_MAX, "%sversion", cfg->prefix);
        return;
    }
    /* reader_key: any of the reader's keys (ukey), whose slot it is */
    snprintf(key, KEY_MAX, "%sversion{%s}", cfg->prefix,
             br__redis_slot_tag(br__redis_slot(reader_key, strlen(reader_key))));
}

/* On a cluster the keys any server needs whatever the reader (the version
 * pointer, the version's metadata) have copies in SPREAD slots spread over
 * the 16384, so on every primary of a cluster of up to SPREAD: a read
 * falls back to them when the main key's node is down, and a server's
 * health does not hang on one node. (The pointer has a copy in every
 * slot; the metadata's copies are written by the publish.) */
#define SPREAD 16

static int spread_slot(int k)
{
    return k * (BR_RCLUSTER_SLOTS / SPREAD) + BR_RCLUSTER_SLOTS / SPREAD / 2;
}

#define SPREAD_KEY_MAX (KEY_MAX + 16)

static void spread_key(char *out, const char *key, int k)
{
    snprintf(out, SPREAD_KEY_MAX, "%s{%s}", key, br__redis_slot_tag(spread_slot(k)));
}

static br_status run1_spread(redis_store *s, redisReply **r, const char *what, const char *cmd,
                             const char *key)
{
    br_status st = run1(s, r, what, 2, cmd, key);
    for (int k = 0; s->cfg.cluster && st == BR_ENET && k < SPREAD; k++) {
        char copy[SPREAD_KEY_MAX];
        spread_key(copy, key, k);
        st = run1(s, r, what, 2, cmd, copy);
    }
    return st;
}

static br_status no_version(redis_store *s)
{
    return br_error(BR_ENOTFOUND, "redis %s:%d: no model version has been published", s->cfg.host,
                    s->cfg.port);
}

/* Installs a pointer read at `now` (ns) in the cache. */
static void remember_version(redis_store *s, const char *ver, uint64_t now)
{
    pthread_mutex_lock(&s->vmu);
    /* Keep the newest read: a slow thread must not put back an older
     * pointer than one a faster thread already installed. */
    if (now >= s->ver_at_ns || !s->have_ver) {
        memcpy(s->ver, ver, BR_STORE_VERSION_MAX);
        s->have_ver = 1;
        s->ver_at_ns = now;
    }
    pthread_mutex_unlock(&s->vmu);
}

/* The served version: from the cache while fresh, else from P"version". */
static br_status current_version(redis_store *s, char *ver, int fresh)
{
    uint64_t now = br_now_ns();
    pthread_mutex_lock(&s->vmu);
    if (!fresh && s->have_ver && now - s->ver_at_ns < s->cfg.version_ttl_ms * 1000000ull) {
        memcpy(ver, s->ver, BR_STORE_VERSION_MAX);
        pthread_mutex_unlock(&s->vmu);
        return BR_OK;
    }
    pthread_mutex_unlock(&s->vmu);
    char key[KEY_MAX];
    snprintf(key, sizeof key, "%sversion", s->cfg.prefix);
    redisReply *r = NULL;
    br_status st = run1_spread(s, &r, "GET version", "GET", key);
    if (st != BR_OK) return st;
    if (r->type == REDIS_REPLY_NIL)
        st = no_version(s);
    else if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= BR_STORE_VERSION_MAX)
        st = br_error(BR_ESTORE, "redis: corrupt version pointer %s", key);
    if (st == BR_OK) {
        memcpy(ver, r->str, r->len);
        ver[r->len] = '\0';
        remember_version(s, ver, now);
    }
    freeReplyObject(r);
    return st;
}

static void forget_version(redis_store *s)
{
    pthread_mutex_lock(&s->vmu);
    s->have_ver = 0;
    pthread_mutex_unlock(&s->vmu);
}

/* ------------------------------------------------------------------ reads -- */

static br_status r_info(br_store *bs, br_store_info *info, char **meta)
{
    redis_store *s = (redis_store *)bs;
    char ver[BR_STORE_VERSION_MAX], key[KEY_MAX];
    br_status st = current_version(s, ver, 1);
    if (st != BR_OK) return st;
    snprintf(key, sizeof key, "%s@%s:meta", s->cfg.prefix, ver);
    redisReply *r = NULL;
    st = run1_spread(s, &r, "HGETALL meta", "HGETALL", key);
    if (st != BR_OK) return st;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        freeReplyObject(r);
        return br_error(BR_ESTORE, "redis: version '%s' has no %s", ver, key);
    }
    memset(info, 0, sizeof *info);
    memcpy(info->version, ver, sizeof info->version);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *f = r->element[i]->str, *v = r->element[i + 1]->str;
        if (!f || !v) continue;
        if (!strcmp(f, "published_at"))
            info->published_at = strtoll(v, NULL, 10);
        else if (!strcmp(f, "n_users"))
            info->n_users = strtoull(v, NULL, 10);
        else if (!strcmp(f, "n_books"))
            info->n_books = strtoull(v, NULL, 10);
        else if (!strcmp(f, "meta") && meta)
            *meta = br_strdup(v);
    }
    freeReplyObject(r);
    if (meta && !*meta) *meta = br_strdup("{}");
    if (meta && !*meta) return br_error(BR_ENOMEM, "metadata");
    return BR_OK;
}

static br_status r_get_recs(br_store *bs, const char *user, br_store_rec *out, size_t cap,
                            size_t *n, char *version)
{
    redis_store *s = (redis_store *)bs;
    char ver[BR_STORE_VERSION_MAX], key[KEY_MAX];
    br_status st = current_version(s, ver, 0);
    if (st != BR_OK) return st;
    ukey(&s->cfg, key, ver, user, "recs");
    redisReply *r = NULL;
    st = run1(s, &r, "GET recs", 2, "GET", key);
    if (st != BR_OK) return st;
    if (r->type == REDIS_REPLY_NIL)
        st = br_error(BR_ENOTFOUND, "reader '%s' has no recommendations", user);
    else if (r->type != REDIS_REPLY_STRING)
        st = br_error(BR_ESTORE, "redis: %s is not a string", key);
    else
        st = br__store_recs_decode((const unsigned char *)r->str, r->len, out, cap, n);
    freeReplyObject(r);
    if (st == BR_OK && version) memcpy(version, ver, BR_STORE_VERSION_MAX);
    return st;
}

static br_status r_is_seen(br_store *bs, const char *user, const char *book, int *seen)
{
    redis_store *s = (redis_store *)bs;
    char key[KEY_MAX];
    ukey(&s->cfg, key, NULL, user, "seen");
    redisReply *r = NULL;
    br_status st = run1(s, &r, "SISMEMBER", 3, "SISMEMBER", key, book);
    if (st != BR_OK) return st;
    *seen = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return BR_OK;
}

static int str_qcmp(const void *a, const void *b)
{
    const redisReply *x = *(redisReply *const *)a, *y = *(redisReply *const *)b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->str, y->str, m);
    return c ? c : (x->len == y->len ? 0 : (x->len < y->len ? -1 : 1));
}

/* An SMEMBERS reply as a sorted id list (sorts the reply in place). */
static br_status seen_from_reply(redisReply *r, br_store_ids **out)
{
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    /* Sorted bytewise, as the LMDB backend stores them. */
    if (n) qsort(r->element, n, sizeof *r->element, str_qcmp);
    const char **ids = br_malloc((n ? n : 1) * sizeof *ids);
    size_t *lens = br_malloc((n ? n : 1) * sizeof *lens);
    br_status st = BR_OK;
    if (!ids || !lens) st = br_error(BR_ENOMEM, "seen set");
    for (size_t i = 0; st == BR_OK && i < n; i++) {
        ids[i] = r->element[i]->str;
        lens[i] = r->element[i]->len;
    }
    if (st == BR_OK) st = br__store_ids_build(ids, lens, n, out);
    br_free(ids);
    br_free(lens);
    return st;
}

static br_status r_get_seen(br_store *bs, const char *user, br_store_ids **out)
{
    redis_store *s = (redis_store *)bs;
    char key[KEY_MAX];
    ukey(&s->cfg, key, NULL, user, "seen");
    redisReply *r = NULL;
    br_status st = run1(s, &r, "SMEMBERS", 2, "SMEMBERS", key);
    if (st != BR_OK) return st;
    st = seen_from_reply(r, out);
    freeReplyObject(r);
    return st;
}

/* A ZREVRANGE reply as interactions. */
static br_status recent_from_reply(const redisReply *r, br_store_interaction *out, size_t cap,
                                   size_t *n)
{
    br_status st = BR_OK;
    size_t k = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && k < cap; i++) {
        st = br__store_member_parse(r->element[i]->str, r->element[i]->len, &out[k]);
        if (st != BR_OK) break;
        k++;
    }
    *n = k;
    return st;
}

static br_status r_get_recent(br_store *bs, const char *user, br_store_interaction *out, size_t cap,
                              size_t *n)
{
    redis_store *s = (redis_store *)bs;
    if (cap == 0) return BR_OK;
    char key[KEY_MAX], stop[24];
    ukey(&s->cfg, key, NULL, user, "recent");
    snprintf(stop, sizeof stop, "%zu", cap - 1);
    redisReply *r = NULL;
    br_status st = run1(s, &r, "ZREVRANGE", 4, "ZREVRANGE", key, "0", stop);
    if (st != BR_OK) return st;
    st = recent_from_reply(r, out, cap, n);
    freeReplyObject(r);
    return st;
}

/* A GET of a recs key into r (NIL: no recs). */
static br_status recs_from_reply(const redisReply *rep, const char *key, br_store_reader *r)
{
    if (rep->type == REDIS_REPLY_NIL) return BR_OK;
    if (rep->type != REDIS_REPLY_STRING)
        return br_error(BR_ESTORE, "redis: %s is not a string", key);
    return br__store_recs_read((const unsigned char *)rep->str, rep->len, r);
}

/* One pipeline: GET P"version", GET P@GUESS:user:U:recs, ZREVRANGE recent,
 * SMEMBERS seen. GUESS is the cached pointer (of any age); the pointer read
 * in the same pipeline checks it, so the recs are always those of the
 * version the pointer named at that moment (the keys of a replaced version
 * live grace_s more seconds). Only when the guess was wrong (no cache yet,
 * or a switch happened) does a second GET read the recs of the new one. */
static br_status r_get_reader(br_store *bs, const char *user, br_store_reader *r)
{
    redis_store *s = (redis_store *)bs;
    char guess[BR_STORE_VERSION_MAX] = "";
    pthread_mutex_lock(&s->vmu);
    if (s->have_ver) memcpy(guess, s->ver, BR_STORE_VERSION_MAX);
    pthread_mutex_unlock(&s->vmu);

    char vkey[KEY_MAX], rkey[KEY_MAX], ikey[KEY_MAX], skey[KEY_MAX], stop[24];
    ukey(&s->cfg, rkey, guess, user, "recs");
    ukey(&s->cfg, ikey, NULL, user, "recent");
    ukey(&s->cfg, skey, NULL, user, "seen");
    vkey_for(&s->cfg, vkey, skey);
    snprintf(stop, sizeof stop, "%zu", r->recent_cap ? r->recent_cap - 1 : 0);
    int want_recs = guess[0] && r->recs_cap, want_recent = r->recent_cap > 0;
    enum { Q_VER, Q_RECS, Q_RECENT, Q_SEEN, Q_N };
    int slot[Q_N], nq = 0;
    br_rbatch b = {0};
    br_status st = BR_OK;
    for (int q = 0; q < Q_N && st == BR_OK; q++) {
        slot[q] = -1;
        const char *argv[4];
        int argc = 0;
        if (q == Q_VER) {
            argv[0] = "GET", argv[1] = vkey, argc = 2;
        } else if (q == Q_RECS && want_recs) {
            argv[0] = "GET", argv[1] = rkey, argc = 2;
        } else if (q == Q_RECENT && want_recent) {
            argv[0] = "ZREVRANGE", argv[1] = ikey, argv[2] = "0", argv[3] = stop, argc = 4;
        } else if (q == Q_SEEN) {
            argv[0] = "SMEMBERS", argv[1] = skey, argc = 2;
        }
        if (!argc) continue;
        size_t lens[4];
        for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
        st = br__rbatch_add(&b, argc, argv, lens);
        slot[q] = nq++;
    }
    uint64_t now = br_now_ns();
    redisReply *rep[Q_N] = {0};
    if (st == BR_OK) st = br__rclient_run(s->cli, &b, BR_RRETRY_ONCE, rep, "reader reads");
    br__rbatch_free(&b);
    if (st != BR_OK) return st;

    const redisReply *vr = rep[slot[Q_VER]];
    int same = 0;
    if (vr->type == REDIS_REPLY_STRING && vr->len > 0 && vr->len < BR_STORE_VERSION_MAX) {
        memcpy(r->version, vr->str, vr->len);
        r->version[vr->len] = '\0';
        remember_version(s, r->version, now);
        same = !strcmp(r->version, guess);
    } else if (vr->type != REDIS_REPLY_NIL) {
        st = br_error(BR_ESTORE, "redis: corrupt version pointer %s", vkey);
    }
    if (st == BR_OK && same && slot[Q_RECS] >= 0) st = recs_from_reply(rep[slot[Q_RECS]], rkey, r);
    if (st == BR_OK && slot[Q_RECENT] >= 0)
        st = recent_from_reply(rep[slot[Q_RECENT]], r->recent, r->recent_cap, &r->n_recent);
    if (st == BR_OK) {
        redisReply *sr = rep[slot[Q_SEEN]];
        size_t n = sr->type == REDIS_REPLY_ARRAY ? sr->elements : 0;
        if (br__store_seen_resolving(r, n)) /* mapped from the reply, unsorted */
            for (size_t i = 0; i < n; i++)
                br__store_seen_resolve(r, sr->element[i]->str, sr->element[i]->len);
        else
            st = seen_from_reply(sr, &r->seen);
    }
    for (int i = 0; i < nq; i++) freeReplyObject(rep[i]);
    if (st == BR_OK && r->version[0] && !same && r->recs_cap) {
        /* The guess was wrong: the recs of the version just read. */
        ukey(&s->cfg, rkey, r->version, user, "recs");
        redisReply *rr = NULL;
        st = run1(s, &rr, "GET recs", 2, "GET", rkey);
        if (st == BR_OK) {
            st = recs_from_reply(rr, rkey, r);
            freeReplyObject(rr);
        }
    }
    return st;
}

static br_status r_get_book(br_store *bs, const char *book, br_store_book **out)
{
    redis_store *s = (redis_store *)bs;
    char ver[BR_STORE_VERSION_MAX], key[KEY_MAX];
    br_status st = current_version(s, ver, 0);
    if (st != BR_OK) return st;
    snprintf(key, sizeof key, "%s@%s:book:%s", s->cfg.prefix, ver, book);
    redisReply *r = NULL;
    st = run1(s, &r, "HGETALL book", 2, "HGETALL", key);
    if (st != BR_OK) return st;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        freeReplyObject(r);
        return br_error(BR_ENOTFOUND, "book '%s' is not in the store", book);
    }
    br_store_book b = {.id = book, .year = INT32_MIN, .tribe = -1};
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *f = r->element[i]->str, *v = r->element[i + 1]->str;
        if (!strcmp(f, "title"))
            b.title = v;
        else if (!strcmp(f, "authors"))
            b.authors = v;
        else if (!strcmp(f, "genre"))
            b.genre = v;
        else if (!strcmp(f, "image_url"))
            b.image_url = v;
        else if (!strcmp(f, "extra"))
            b.extra = v;
        else if (!strcmp(f, "year"))
            b.year = (int32_t)strtol(v, NULL, 10);
        else if (!strcmp(f, "tribe"))
            b.tribe = (int32_t)strtol(v, NULL, 10);
    }
    if (!b.title) b.title = "";
    /* Through the shared codec: one allocation, the same shape as LMDB's. */
    unsigned char *v;
    size_t len;
    st = br__store_book_encode(&b, &v, &len);
    if (st == BR_OK) {
        st = br__store_book_decode(book, v, len, out);
        br_free(v);
    }
    freeReplyObject(r);
    return st;
}

/* ----------------------------------------------------------------- writes -- */

/* Adds the commands that merge `events` (one reader's, `n` of them) into
 * the reader's latest interactions, and their books into the seen set. */
static br_status add_events(const br_rconn_cfg *cfg, br_rbatch *b, const br_event *ev, size_t n,
                            int mark_seen)
{
    char key[KEY_MAX];
    ukey(cfg, key, NULL, ev[0].user_id, "recent");
    size_t argc = 2 + 2 * n;
    const char **argv = br_malloc(argc * sizeof *argv);
    size_t *lens = br_malloc(argc * sizeof *lens);
    char *buf = br_malloc(n * (BR_STORE_MEMBER_MAX + 24));
    br_status st = BR_OK;
    if (!argv || !lens || !buf) st = br_error(BR_ENOMEM, "events");
    if (st == BR_OK) {
        argv[0] = "ZADD";
        argv[1] = key;
        for (size_t i = 0; i < n; i++) {
            char *score = buf + i * (BR_STORE_MEMBER_MAX + 24);
            char *member = score + 24;
            snprintf(score, 24, "%lld", (long long)ev[i].timestamp);
            argv[2 + 2 * i] = score;
            argv[3 + 2 * i] = member;
            lens[3 + 2 * i] = br__store_member_format(&ev[i], member);
            lens[2 + 2 * i] = strlen(score);
        }
        lens[0] = 4;
        lens[1] = strlen(key);
        st = br__rbatch_add(b, (int)argc, argv, lens);
    }
    if (st == BR_OK) {
        /* Keep the newest BR_STORE_RECENT_MAX (ranks are ascending by score). */
        char stop[24];
        snprintf(stop, sizeof stop, "%d", -(BR_STORE_RECENT_MAX + 1));
        const char *tv[] = {"ZREMRANGEBYRANK", key, "0", stop};
        size_t tl[] = {15, strlen(key), 1, strlen(stop)};
        st = br__rbatch_add(b, 4, tv, tl);
    }
    if (st == BR_OK && mark_seen) {
        ukey(cfg, key, NULL, ev[0].user_id, "seen");
        argv[0] = "SADD";
        argv[1] = key;
        lens[0] = 4;
        lens[1] = strlen(key);
        for (size_t i = 0; i < n; i++) {
            argv[2 + i] = ev[i].book_id;
            lens[2 + i] = strlen(ev[i].book_id);
        }
        st = br__rbatch_add(b, (int)(2 + n), argv, lens);
    }
    br_free(argv);
    br_free(lens);
    br_free(buf);
    return st;
}

static br_status add_seen(const br_rconn_cfg *cfg, br_rbatch *b, const char *user,
                          const char *const *books, size_t n)
{
    char key[KEY_MAX];
    ukey(cfg, key, NULL, user, "seen");
    const char **argv = br_malloc((n + 2) * sizeof *argv);
    size_t *lens = br_malloc((n + 2) * sizeof *lens);
    br_status st = BR_OK;
    if (!argv || !lens) st = br_error(BR_ENOMEM, "seen");
    if (st == BR_OK) {
        argv[0] = "SADD";
        argv[1] = key;
        lens[0] = 4;
        lens[1] = strlen(key);
        for (size_t i = 0; i < n; i++) {
            argv[2 + i] = books[i];
            lens[2 + i] = strlen(books[i]);
        }
        st = br__rbatch_add(b, (int)(n + 2), argv, lens);
    }
    br_free(argv);
    br_free(lens);
    return st;
}

static br_status add_events_grouped(const br_rconn_cfg *cfg, br_rbatch *b, const br_event *ev,
                                    size_t n, int mark_seen)
{
    br_status st = BR_OK;
    for (size_t i = 0; i < n && st == BR_OK;) {
        size_t j = i + 1;
        while (j < n && !strcmp(ev[j].user_id, ev[i].user_id)) j++;
        st = add_events(cfg, b, ev + i, j - i, mark_seen);
        i = j;
    }
    return st;
}

/* DEL then HSET of a book hash (only the fields that are set); `atomic`:
 * both in one EVAL. */
static br_status add_book(br_rbatch *b, const char *key, const br_store_book *bk, int atomic)
{
    const char *argv[4 + 14];
    size_t lens[4 + 14];
    char year[16], tribe[16];
    int argc = 0;
    br_status st = BR_OK;
    if (atomic) {
        argv[argc++] = "EVAL";
        argv[argc++] =
            "redis.call('DEL', KEYS[1]) return redis.call('HSET', KEYS[1], unpack(ARGV))";
        argv[argc++] = "1";
        argv[argc++] = key;
    } else {
        argv[argc++] = "DEL";
        argv[argc++] = key;
        for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
        st = br__rbatch_add(b, argc, argv, lens);
        if (st != BR_OK) return st;
        argc = 0;
        argv[argc++] = "HSET";
        argv[argc++] = key;
    }
    const char *names[] = {"title", "authors", "genre", "image_url", "extra"};
    const char *vals[] = {bk->title, bk->authors, bk->genre, bk->image_url, bk->extra};
    for (int i = 0; i < 5; i++)
        if (vals[i] && (i == 0 || vals[i][0])) {
            argv[argc++] = names[i];
            argv[argc++] = vals[i];
        }
    if (bk->year != INT32_MIN) {
        snprintf(year, sizeof year, "%d", bk->year);
        argv[argc++] = "year";
        argv[argc++] = year;
    }
    if (bk->tribe >= 0) {
        snprintf(tribe, sizeof tribe, "%d", bk->tribe);
        argv[argc++] = "tribe";
        argv[argc++] = tribe;
    }
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    return br__rbatch_add(b, argc, argv, lens);
}

static br_status r_update(br_store *bs, const char *seen_user, const char *const *seen_books,
                          size_t n_seen, const br_event *events, size_t n_events, int mark_seen)
{
    redis_store *s = (redis_store *)bs;
    br_rbatch b = {0};
    br_status st = BR_OK;
    if (n_seen) st = add_seen(&s->cfg, &b, seen_user, seen_books, n_seen);
    if (st == BR_OK && n_events) st = add_events_grouped(&s->cfg, &b, events, n_events, mark_seen);
    /* SADD, ZADD and the trim are idempotent: a retry after a lost
     * connection cannot count anything twice. */
    if (st == BR_OK) st = br__rclient_run(s->cli, &b, BR_RRETRY_ONCE, NULL, "online update");
    br__rbatch_free(&b);
    return st;
}

/* Replaces a book's hash in one step (a script: a reader never sees it
 * between the DEL and the HSET, and unlike MULTI it goes to the book's
 * node as one command on a cluster). */
static br_status r_put_book(br_store *bs, const br_store_book *bk)
{
    redis_store *s = (redis_store *)bs;
    char ver[BR_STORE_VERSION_MAX], key[KEY_MAX];
    br_status st = current_version(s, ver, 1);
    if (st != BR_OK) return st;
    snprintf(key, sizeof key, "%s@%s:book:%s", s->cfg.prefix, ver, bk->id);
    br_rbatch b = {0};
    st = add_book(&b, key, bk, 1);
    if (st == BR_OK) st = br__rclient_run(s->cli, &b, BR_RRETRY_ONCE, NULL, "put book");
    br__rbatch_free(&b);
    return st;
}

/* -------------------------------------------------------- posted books -- */

/* One hash, `P posted`: book id -> the posted-book value. */
static void posted_key(const redis_store *s, char *key)
{
    snprintf(key, KEY_MAX, "%sposted", s->cfg.prefix);
}

static br_status r_put_posted(br_store *bs, const char *book, const void *val, size_t len)
{
    redis_store *s = (redis_store *)bs;
    char key[KEY_MAX];
    posted_key(s, key);
    const char *argv[] = {"HSET", key, book, val};
    size_t lens[] = {4, strlen(key), strlen(book), len};
    br_rbatch b = {0};
    br_status st = br__rbatch_add(&b, 4, argv, lens);
    if (st == BR_OK)
        st = br__rclient_run(s->cli, &b, BR_RRETRY_ONCE, NULL, "HSET posted"); /* idempotent */
    br__rbatch_free(&b);
    return st;
}

static br_status r_get_posted(br_store *bs, const char *book, unsigned char **val, size_t *len)
{
    redis_store *s = (redis_store *)bs;
    char key[KEY_MAX];
    posted_key(s, key);
    redisReply *r = NULL;
    br_status st = run1(s, &r, "HGET posted", 3, "HGET", key, book);
    if (st != BR_OK) return st;
    if (r->type == REDIS_REPLY_NIL) {
        st = BR_ENOTFOUND;
    } else if (r->type != REDIS_REPLY_STRING) {
        st = br_error(BR_ESTORE, "redis: HGET %s: unexpected reply", key);
    } else if (!(*val = br_malloc(r->len ? r->len : 1))) {
        st = br_error(BR_ENOMEM, "posted book");
    } else {
        memcpy(*val, r->str, r->len);
        *len = r->len;
    }
    freeReplyObject(r);
    return st;
}

/* HSCAN, so a large hash never blocks the server; a book may come twice
 * while the hash is being resized (Redis's guarantee), never not at all. */
static br_status r_list_posted(br_store *bs,
                               br_status (*fn)(const char *book, size_t book_len,
                                               const unsigned char *val, size_t len, void *user),
                               void *user)
{
    redis_store *s = (redis_store *)bs;
    char key[KEY_MAX], cursor[32] = "0";
    posted_key(s, key);
    br_status st = BR_OK;
    do {
        redisReply *r = NULL;
        st = run1(s, &r, "HSCAN posted", 5, "HSCAN", key, cursor, "COUNT", "1000");
        if (st != BR_OK) return st;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return br_error(BR_ESTORE, "redis: HSCAN %s: unexpected reply", key);
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *kv = r->element[1];
        for (size_t i = 0; i + 1 < kv->elements && st == BR_OK; i += 2)
            st = fn(kv->element[i]->str, kv->element[i]->len,
                    (const unsigned char *)kv->element[i + 1]->str, kv->element[i + 1]->len, user);
        freeReplyObject(r);
    } while (st == BR_OK && strcmp(cursor, "0") != 0);
    return st;
}

static br_status r_posted_count(br_store *bs, uint64_t *n)
{
    redis_store *s = (redis_store *)bs;
    char key[KEY_MAX];
    posted_key(s, key);
    redisReply *r = NULL;
    br_status st = run1(s, &r, "HLEN posted", 2, "HLEN", key);
    if (st != BR_OK) return st;
    *n = r->type == REDIS_REPLY_INTEGER ? (uint64_t)r->integer : 0;
    freeReplyObject(r);
    return BR_OK;
}

/* ---------------------------------------------------------------- publish -- */

/* A publish's commands are idempotent (SET, HSET after DEL, SADD, ZADD,
 * EXPIRE), so each flush may be sent again: on a cluster, across a
 * failover (BR_RRETRY_LONG). */
static br_status pub_run(redis_pub *p, const char *what)
{
    redis_store *s = (redis_store *)p->base.store;
    br_status st = br__rclient_run(s->cli, &p->batch, BR_RRETRY_LONG, NULL, what);
    br__rbatch_reset(&p->batch);
    return st;
}

/* Sends what is queued and checks every reply; renews the lock. */
static br_status pub_flush(redis_pub *p)
{
    redis_store *s = (redis_store *)p->base.store;
    if (p->batch.n == 0) return BR_OK;
    char lock[KEY_MAX], ttl[24];
    snprintf(lock, sizeof lock, "%spublish", s->cfg.prefix);
    snprintf(ttl, sizeof ttl, "%d", 600);
    const char *argv[] = {"EXPIRE", lock, ttl};
    size_t lens[] = {6, strlen(lock), strlen(ttl)};
    br_status st = br__rbatch_add(&p->batch, 3, argv, lens);
    if (st == BR_OK) st = pub_run(p, "publish");
    br__rbatch_reset(&p->batch);
    return st;
}

static br_status pub_queued(redis_pub *p, br_status st)
{
    redis_store *s = (redis_store *)p->base.store;
    if (st == BR_OK && (uint64_t)p->batch.n >= s->cfg.chunk) st = pub_flush(p);
    return st;
}

typedef struct key_job {
    redis_pub *p;
    const char *pattern;
    const char *keep; /* prefix of keys to leave alone, or NULL */
    const char *cmd;  /* "UNLINK" or "EXPIRE" */
    char grace[24];
} key_job;

/* One node's keys matching the job's pattern (SCAN, so the server is
 * never blocked on a large keyspace): cmd on each, routed by key (a key
 * is on the node that listed it, unless a slot just moved). */
static br_status sweep_node(br_rnode *n, void *user)
{
    key_job *j = user;
    char cursor[32] = "0";
    br_status st = BR_OK;
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", j->pattern, "COUNT", "1000"};
        size_t lens[6];
        for (int i = 0; i < 6; i++) lens[i] = strlen(argv[i]);
        br_rbatch b = {0};
        redisReply *r = NULL;
        st = br__rbatch_add(&b, 6, argv, lens);
        if (st == BR_OK) st = br__rnode_run(n, &b, BR_RRETRY_ONCE, &r, "SCAN");
        br__rbatch_free(&b);
        if (st != BR_OK) return st;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return br_error(BR_ESTORE, "redis %s: SCAN: unexpected reply", br__rnode_name(n));
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements && st == BR_OK; i++) {
            const redisReply *key = r->element[1]->element[i];
            if (j->keep && key->len >= strlen(j->keep) &&
                !memcmp(key->str, j->keep, strlen(j->keep)))
                continue;
            const char *kv[] = {j->cmd, key->str, j->grace};
            size_t kl[] = {strlen(j->cmd), key->len, strlen(j->grace)};
            st = br__rbatch_add(&j->p->batch, strcmp(j->cmd, "EXPIRE") ? 2 : 3, kv, kl);
            if (st == BR_OK && j->p->batch.n >= 1000) st = pub_run(j->p, j->cmd);
        }
        freeReplyObject(r);
    } while (st == BR_OK && strcmp(cursor, "0") != 0);
    if (st == BR_OK) st = pub_run(j->p, j->cmd);
    return st;
}

/* Applies cmd to every versioned key (P@*) except those starting `keep`,
 * or to every key of version `only`, on every primary. */
static br_status sweep(redis_pub *p, const char *only, const char *keep, const char *cmd)
{
    redis_store *s = (redis_store *)p->base.store;
    char pattern[KEY_MAX];
    if (only)
        snprintf(pattern, sizeof pattern, "%s@%s:*", s->cfg.prefix, only);
    else
        snprintf(pattern, sizeof pattern, "%s@*", s->cfg.prefix);
    key_job j = {p, pattern, keep, cmd, ""};
    snprintf(j.grace, sizeof j.grace, "%llu", (unsigned long long)s->cfg.grace_s);
    br__rbatch_reset(&p->batch);
    return br__rclient_each_primary(s->cli, sweep_node, &j);
}

/* Waits until the writes this publish made are on `want` replicas of each
 * primary (WAIT covers every earlier write of the connection it is sent
 * on; a marker SET on the same connection first makes that this publish's
 * last write to the node, and replication keeps a primary's writes in
 * order). On a cluster `want` is the `replicas` option, or 1 for a node
 * that has a replica: a primary killed after acknowledging writes its
 * replica never got would otherwise come back as a promoted replica
 * without part of the version. */
typedef struct wait_job {
    redis_store *s;
    uint64_t want;
} wait_job;

static uint64_t wait_want(const redis_store *s, const br_rnode *n)
{
    if (s->cfg.replicas) return s->cfg.replicas;
    return s->cfg.cluster && br__rnode_replicas(n) > 0 ? 1 : 0;
}

static br_status wait_node(br_rnode *n, void *user)
{
    wait_job *w = user;
    redis_store *s = w->s;
    char key[KEY_MAX], num[24], ms[24], now[24];
    int slot = br__rnode_first_slot(n);
    snprintf(key, sizeof key, "%ssync{%s}", s->cfg.prefix, br__redis_slot_tag(slot < 0 ? 0 : slot));
    if (!s->cfg.cluster) snprintf(key, sizeof key, "%ssync", s->cfg.prefix);
    /* Each WAIT ends before the connection's read timeout; they repeat
     * (with the marker: WAIT counts the writes of its own connection)
     * until the replicas caught up or the failover budget is spent. A
     * shortfall reads the map again: a replica that died is not waited
     * for (an acknowledgement can then only mean "on the primary"). */
    uint64_t step = s->cfg.timeout_ms * 3 / 4 ? s->cfg.timeout_ms * 3 / 4 : 1;
    uint64_t budget = s->cfg.cluster ? s->cfg.failover_ms : s->cfg.timeout_ms;
    snprintf(ms, sizeof ms, "%llu", (unsigned long long)step);
    uint64_t t0 = br_now_ns(), want;
    long long got = -1;
    br_status st = BR_OK;
    while ((want = wait_want(s, n)) > 0) {
        snprintf(num, sizeof num, "%llu", (unsigned long long)want);
        snprintf(now, sizeof now, "%lld", (long long)time(NULL));
        const char *a1[] = {"SET", key, now}, *a2[] = {"WAIT", num, ms};
        size_t l1[] = {3, strlen(key), strlen(now)}, l2[] = {4, strlen(num), strlen(ms)};
        br_rbatch b = {0};
        redisReply *r[2] = {0};
        st = br__rbatch_add(&b, 3, a1, l1);
        if (st == BR_OK) st = br__rbatch_add(&b, 3, a2, l2);
        if (st == BR_OK) st = br__rnode_run(n, &b, BR_RRETRY_ONCE, r, "WAIT");
        br__rbatch_free(&b);
        if (st != BR_OK) return st;
        got = r[1]->type == REDIS_REPLY_INTEGER ? r[1]->integer : -1;
        freeReplyObject(r[0]);
        freeReplyObject(r[1]);
        if (got >= (long long)want) break;
        if ((br_now_ns() - t0) / 1000000ull >= budget) {
            return br_error(BR_ENET,
                            "redis %s: %lld of %llu replicas acknowledged the version's writes "
                            "within %llu ms: not switching to it",
                            br__rnode_name(n), got, (unsigned long long)want,
                            (unsigned long long)budget);
        }
        br__rclient_refresh(s->cli);
    }
    w->want += want;
    return BR_OK;
}

static br_status wait_replicas(redis_store *s)
{
    wait_job w = {s, 0};
    return br__rclient_each_primary(s->cli, wait_node, &w);
}

/* Releases the publish lock if it is still ours. */
static void unlock_pub(redis_pub *p)
{
    redis_store *s = (redis_store *)p->base.store;
    if (!p->lock[0]) return;
    char key[KEY_MAX];
    snprintf(key, sizeof key, "%spublish", s->cfg.prefix);
    const char *argv[] = {"EVAL",
                          "if redis.call('GET', KEYS[1]) == ARGV[1] then return "
                          "redis.call('DEL', KEYS[1]) end return 0",
                          "1", key, p->lock};
    size_t lens[5];
    for (int i = 0; i < 5; i++) lens[i] = strlen(argv[i]);
    br_rbatch b = {0};
    if (br__rbatch_add(&b, 5, argv, lens) == BR_OK)
        br__rclient_run(s->cli, &b, BR_RRETRY_LONG, NULL, "publish unlock");
    br__rbatch_free(&b);
    p->lock[0] = '\0';
}

static void pub_free(redis_pub *p)
{
    br__rbatch_free(&p->batch);
    br_free(p->base.meta);
    br_free(p);
}

static br_status r_pub_begin(br_store *bs, const char *version, br_store_pub **out)
{
    redis_store *s = (redis_store *)bs;
    redis_pub *p = br_calloc(1, sizeof *p);
    if (!p) return br_error(BR_ENOMEM, "publish");
    p->base.store = bs;
    char host[64] = "?";
    gethostname(host, sizeof host - 1);
    char lockval[160], key[KEY_MAX];
    snprintf(lockval, sizeof lockval, "%ld@%s:%s", (long)getpid(), host, version);
    snprintf(key, sizeof key, "%spublish", s->cfg.prefix);
    redisReply *r = NULL;
    br_status st =
        run1(s, &r, "taking the publish lock", 6, "SET", key, lockval, "NX", "EX", "600");
    if (st == BR_OK && r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        r = NULL;
        br_status gs = run1(s, &r, "GET publish", 2, "GET", key);
        st =
            br_error(BR_EEXIST, "redis %s:%d: a publish is in progress (%s = %s)", s->cfg.host,
                     s->cfg.port, key, gs == BR_OK && r->type == REDIS_REPLY_STRING ? r->str : "?");
    } else if (st == BR_OK) {
        snprintf(p->lock, sizeof p->lock, "%s", lockval);
    }
    if (r) freeReplyObject(r);
    if (st == BR_OK) {
        char cur[BR_STORE_VERSION_MAX];
        br_status vs = current_version(s, cur, 1);
        if (vs == BR_OK && !strcmp(cur, version))
            st = br_error(BR_EEXIST, "redis %s:%d: version '%s' is the one being served",
                          s->cfg.host, s->cfg.port, version);
        else if (vs != BR_OK && vs != BR_ENOTFOUND)
            st = vs;
    }
    /* Keys a failed attempt at this same version left behind. */
    if (st == BR_OK) st = sweep(p, version, NULL, "UNLINK");
    if (st != BR_OK) {
        unlock_pub(p);
        pub_free(p);
        return st;
    }
    *out = &p->base;
    return BR_OK;
}

static br_status r_pub_recs(br_store_pub *bp, const char *user, const void *val, size_t len)
{
    redis_pub *p = (redis_pub *)bp;
    redis_store *s = (redis_store *)bp->store;
    char key[KEY_MAX];
    ukey(&s->cfg, key, bp->version, user, "recs");
    const char *argv[] = {"SET", key, val};
    size_t lens[] = {3, strlen(key), len};
    return pub_queued(p, br__rbatch_add(&p->batch, 3, argv, lens));
}

static br_status r_pub_seen(br_store_pub *bp, const char *user, const char *const *books, size_t n)
{
    redis_pub *p = (redis_pub *)bp;
    return pub_queued(p, add_seen(&((redis_store *)bp->store)->cfg, &p->batch, user, books, n));
}

static br_status r_pub_recent(br_store_pub *bp, const br_event *events, size_t n)
{
    redis_pub *p = (redis_pub *)bp;
    return pub_queued(
        p, add_events_grouped(&((redis_store *)bp->store)->cfg, &p->batch, events, n, 0));
}

static br_status r_pub_book(br_store_pub *bp, const br_store_book *b)
{
    redis_pub *p = (redis_pub *)bp;
    redis_store *s = (redis_store *)bp->store;
    char key[KEY_MAX];
    snprintf(key, sizeof key, "%s@%s:book:%s", s->cfg.prefix, bp->version, b->id);
    return pub_queued(p, add_book(&p->batch, key, b, 0));
}

static void r_pub_abort(br_store_pub *bp)
{
    redis_pub *p = (redis_pub *)bp;
    br__rbatch_reset(&p->batch);
    sweep(p, bp->version, NULL, "UNLINK"); /* best effort */
    unlock_pub(p);
    pub_free(p);
}

/* The switch on a cluster: every slot's copy of the pointer, in chunks,
 * then (r_pub_commit) the authoritative P"version". A reader's request
 * follows its slot's copy, so it moves to the new version when that copy
 * does: each request reads one version whole, and the new version's keys
 * were all written (and replicated) before the first copy changed. */
static br_status switch_slots(redis_pub *p, const char *version)
{
    redis_store *s = (redis_store *)p->base.store;
    br_status st = BR_OK;
    for (int slot = 0; slot < BR_RCLUSTER_SLOTS && st == BR_OK; slot++) {
        char key[KEY_MAX];
        snprintf(key, sizeof key, "%sversion{%s}", s->cfg.prefix, br__redis_slot_tag(slot));
        const char *argv[] = {"SET", key, version};
        size_t lens[] = {3, strlen(key), strlen(version)};
        st = br__rbatch_add(&p->batch, 3, argv, lens);
        if (st == BR_OK && (p->batch.n >= 2048 || slot == BR_RCLUSTER_SLOTS - 1))
            st = pub_run(p, "switching versions");
    }
    return st;
}

static br_status r_pub_commit(br_store_pub *bp)
{
    redis_pub *p = (redis_pub *)bp;
    redis_store *s = (redis_store *)bp->store;
    br_status st = pub_flush(p);
    char key[KEY_MAX], now[24], nu[24], nb[24];
    snprintf(key, sizeof key, "%s@%s:meta", s->cfg.prefix, bp->version);
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    snprintf(nu, sizeof nu, "%llu", (unsigned long long)bp->n_users);
    snprintf(nb, sizeof nb, "%llu", (unsigned long long)bp->n_books);
    const char *meta = bp->meta ? bp->meta : "{}";
    if (st == BR_OK) {
        const char *argv[] = {"HSET",    key, "version", bp->version, "published_at", now,
                              "n_users", nu,  "n_books", nb,          "meta",         meta};
        size_t lens[12];
        for (int i = 0; i < 12; i++) lens[i] = strlen(argv[i]);
        st = br__rbatch_add(&p->batch, 12, argv, lens);
        for (int k = 0; s->cfg.cluster && k < SPREAD && st == BR_OK; k++) {
            char copy[SPREAD_KEY_MAX];
            spread_key(copy, key, k);
            argv[1] = copy;
            lens[1] = strlen(copy);
            st = br__rbatch_add(&p->batch, 12, argv, lens);
        }
        if (st == BR_OK) st = pub_run(p, "version metadata");
    }
    /* Every key of the version on its replicas before anyone reads it. */
    if (st == BR_OK) st = wait_replicas(s);
    if (st != BR_OK) {
        r_pub_abort(bp);
        return st;
    }
    /* The switch. */
    if (s->cfg.cluster) st = switch_slots(p, bp->version);
    redisReply *r = NULL;
    char vkey[KEY_MAX];
    snprintf(vkey, sizeof vkey, "%sversion", s->cfg.prefix);
    if (st == BR_OK) st = run1(s, &r, "switching versions", 3, "SET", vkey, bp->version);
    if (r) freeReplyObject(r);
    if (st == BR_OK && s->cfg.cluster) st = wait_replicas(s); /* the pointers too */
    if (st != BR_OK) {
        /* Unknown whether (or, on a cluster, for which slots) the switch
         * happened: keep the new keys (no sweep), only release the lock. A
         * request reads one version whole either way; the next publish
         * moves every pointer. */
        char d[512];
        snprintf(d, sizeof d, "%s", br_error_detail());
        forget_version(s);
        unlock_pub(p);
        pub_free(p);
        return br_error(st, "%s", d);
    }
    forget_version(s);
    char cur[BR_STORE_VERSION_MAX];
    current_version(s, cur, 1);
    /* Old and abandoned versions expire after the grace period. A failure
     * here leaves them to the next commit; the new version serves anyway. */
    snprintf(key, sizeof key, "%s@%s:", s->cfg.prefix, bp->version);
    br_status sw = sweep(p, NULL, key, "EXPIRE");
    if (sw != BR_OK)
        br_log(BR_LOG_WARN, "redis: version '%s' serves, but expiring old keys failed: %s",
               bp->version, br_error_detail());
    unlock_pub(p);
    br_log(BR_LOG_INFO, "redis %s:%d: serving version '%s' (%llu readers, %llu books)", s->cfg.host,
           s->cfg.port, bp->version, (unsigned long long)bp->n_users,
           (unsigned long long)bp->n_books);
    pub_free(p);
    return BR_OK;
}

/* ------------------------------------------------------------ open/close -- */

static void r_close(br_store *bs)
{
    redis_store *s = (redis_store *)bs;
    br__rclient_free(s->cli);
    pthread_mutex_destroy(&s->vmu);
    br_free(s);
}

#define REDIS_OPS(NAME)                                                                            \
    {                                                                                              \
        .name = NAME, .close = r_close, .info = r_info, .get_recs = r_get_recs,                    \
        .is_seen = r_is_seen, .get_seen = r_get_seen, .get_recent = r_get_recent,                  \
        .get_reader = r_get_reader, .get_book = r_get_book, .update = r_update,                    \
        .put_book = r_put_book, .put_posted = r_put_posted, .get_posted = r_get_posted,            \
        .list_posted = r_list_posted, .posted_count = r_posted_count, .pub_begin = r_pub_begin,    \
        .pub_recs = r_pub_recs, .pub_seen = r_pub_seen, .pub_recent = r_pub_recent,                \
        .pub_book = r_pub_book, .pub_commit = r_pub_commit, .pub_abort = r_pub_abort,              \
    }

static const br_store_ops redis_ops = REDIS_OPS("redis");
static const br_store_ops cluster_ops = REDIS_OPS("redis-cluster");

br_status br__store_redis_open(const char *uri, int cluster, unsigned flags, br_store **out)
{
    redis_store *s = br_calloc(1, sizeof *s);
    if (!s) return br_error(BR_ENOMEM, "store");
    s->base.ops = cluster ? &cluster_ops : &redis_ops;
    s->base.flags = flags;
    pthread_mutex_init(&s->vmu, NULL);
    br_status st = br__rconn_parse(uri, cluster, &s->cfg);
    if (st == BR_OK) st = br__rclient_open(&s->cfg, &s->cli);
    if (st == BR_OK) {
        redisReply *r = NULL;
        st = run1(s, &r, "PING", 1, "PING");
        if (r) freeReplyObject(r);
    }
    if (st != BR_OK) {
        r_close(&s->base);
        return st;
    }
    *out = &s->base;
    return BR_OK;
}
