/*
 * rconn.c: see rconn.h. The pool is an array of slots, each a mutex and a
 * connection; a caller takes the first free slot (trylock from a rotating
 * start) and only blocks when all are busy. A connection that failed is
 * freed and reopened by its next user: that is the whole reconnect logic,
 * so a Redis restart costs the requests in flight, not the process; and a
 * pooled connection the server closed meanwhile is replaced before use, so
 * it costs none of the requests that come after.
 */
#define _GNU_SOURCE
#include "store/rconn.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static br_status opt(const char *key, const char *val, void *user)
{
    br_rconn_cfg *c = user;
    if (!strcmp(key, "timeout_ms")) return br__store_opt_u64(key, val, 1, 3600000, &c->timeout_ms);
    if (!strcmp(key, "pool")) return br__store_opt_u64(key, val, 1, 256, &c->pool);
    if (!strcmp(key, "chunk")) return br__store_opt_u64(key, val, 1, 1000000, &c->chunk);
    if (!strcmp(key, "grace_s")) return br__store_opt_u64(key, val, 1, 30 * 86400, &c->grace_s);
    if (!strcmp(key, "version_ttl_ms"))
        return br__store_opt_u64(key, val, 0, 60000, &c->version_ttl_ms);
    if (!strcmp(key, "replicas")) return br__store_opt_u64(key, val, 0, 16, &c->replicas);
    if (c->cluster && !strcmp(key, "failover_ms"))
        return br__store_opt_u64(key, val, 0, 600000, &c->failover_ms);
    if (c->cluster && !strcmp(key, "down_ms"))
        return br__store_opt_u64(key, val, 0, 60000, &c->down_ms);
    /* at most 48: a read's end position names each one */
    if (c->cluster && !strcmp(key, "partitions"))
        return br__store_opt_u64(key, val, 1, 48, &c->partitions);
    if (!strcmp(key, "prefix")) {
        size_t n = strlen(val);
        if (n >= sizeof c->prefix)
            return br_error(BR_EINVAL, "store option prefix: at most %zu bytes",
                            sizeof c->prefix - 1);
        /* No glob characters: the prefix goes into SCAN MATCH patterns
         * (and no braces: it must not become a cluster hash tag). */
        for (size_t i = 0; i < n; i++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-",
                        val[i]))
                return br_error(BR_EINVAL, "store option prefix '%s': use [A-Za-z0-9._:-]", val);
        memcpy(c->prefix, val, n + 1);
        return BR_OK;
    }
    return br_error(BR_EINVAL,
                    c->cluster ? "unknown redis-cluster option '%s' (timeout_ms, pool, chunk, "
                                 "grace_s, version_ttl_ms, prefix, replicas, failover_ms, "
                                 "down_ms, partitions)"
                               : "unknown redis option '%s' (timeout_ms, pool, chunk, grace_s, "
                                 "version_ttl_ms, prefix, replicas)",
                    key);
}

/* "HOST[:PORT]" into host and port (6379 when absent). */
static br_status host_port(const char *uri, char *hp, char *host, size_t host_size, int *port)
{
    char *colon = strrchr(hp, ':');
    char *end = NULL;
    long p = colon ? strtol(colon + 1, &end, 10) : 6379;
    if (colon && (!colon[1] || *end || p <= 0 || p > 65535))
        return br_error(BR_EINVAL, "%s: bad port in '%s'", uri, hp);
    if (colon) *colon = '\0';
    if (!hp[0] || strlen(hp) >= host_size)
        return br_error(BR_EINVAL, "%s: needs a host: HOST:PORT", uri);
    strcpy(host, hp);
    *port = (int)p;
    return BR_OK;
}

br_status br__rconn_parse(const char *rest, int cluster, br_rconn_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->prefix, "bookrec:");
    cfg->cluster = cluster;
    cfg->timeout_ms = 1000;
    cfg->pool = 8;
    cfg->chunk = 1000;
    cfg->grace_s = 60;
    cfg->version_ttl_ms = 100;
    cfg->failover_ms = 10000;
    cfg->down_ms = 500;
    cfg->partitions = 16;
    cfg->replicas = 0;
    char *base;
    br_status st = br__store_parse_options(rest, &base, opt, cfg);
    if (st != BR_OK) return st;
    const char *scheme = cluster ? "redis-cluster://" : "redis://";
    char uri[64];
    snprintf(uri, sizeof uri, "%.20s%.30s", scheme, base);
    char *slash = strchr(base, '/');
    if (slash && cluster) {
        st = br_error(BR_EINVAL, "%s: a cluster has one database: no /DB", uri);
    } else if (slash) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || db < 0 || db > 1000)
            st = br_error(BR_EINVAL, "redis://%s: database '%s' is not a number", base, slash + 1);
        cfg->db = (int)db;
        *slash = '\0';
    }
    if (st == BR_OK && cluster) {
        if (strlen(base) >= sizeof cfg->seeds)
            st = br_error(BR_EINVAL, "%s: too many seed nodes", uri);
        else
            strcpy(cfg->seeds, base);
        /* every seed must parse; the first is host/port */
        char *save = NULL, *first = NULL;
        for (char *hp = strtok_r(base, ",", &save); st == BR_OK && hp;
             hp = strtok_r(NULL, ",", &save)) {
            char h[256];
            int port;
            st = host_port(uri, hp, h, sizeof h, &port);
            if (st == BR_OK && !first) {
                first = hp;
                strcpy(cfg->host, h);
                cfg->port = port;
            }
        }
        if (st == BR_OK && !first)
            st = br_error(BR_EINVAL, "redis-cluster URI needs a node: "
                                     "redis-cluster://HOST:PORT[,HOST:PORT...]");
    } else if (st == BR_OK) {
        st = host_port("redis URI", base, cfg->host, sizeof cfg->host, &cfg->port);
        if (st == BR_EINVAL && !cfg->host[0] && !base[0])
            st = br_error(BR_EINVAL, "redis URI needs a host: redis://HOST:PORT[/DB]");
    }
    br_free(base);
    return st;
}

br_status br__rconn_fail(const br_rconn_cfg *cfg, redisContext *c, const redisReply *r,
                         const char *what)
{
    if (r && r->type == REDIS_REPLY_ERROR)
        return br_error(BR_ESTORE, "redis %s:%d: %s: %s", cfg->host, cfg->port, what, r->str);
    if (r)
        return br_error(BR_ESTORE, "redis %s:%d: %s: unexpected reply type %d", cfg->host,
                        cfg->port, what, r->type);
    const char *why = c && c->err ? c->errstr : "no connection";
    if (c && c->err == REDIS_ERR_IO &&
        (strstr(why, "temporarily unavailable") || strstr(why, "timed out")))
        return br_error(BR_ENET, "redis %s:%d: %s: no reply within %llu ms (timeout)", cfg->host,
                        cfg->port, what, (unsigned long long)cfg->timeout_ms);
    if (c && c->err == REDIS_ERR_EOF) why = "the server closed the connection";
    return br_error(BR_ENET, "redis %s:%d: %s: %s", cfg->host, cfg->port, what, why);
}

br_status br__rconn_connect(const br_rconn_cfg *cfg, redisContext **out)
{
    struct timeval tv = {(time_t)(cfg->timeout_ms / 1000),
                         (suseconds_t)(cfg->timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(cfg->host, cfg->port, tv);
    if (!c) return br_error(BR_ENOMEM, "redis connection");
    if (c->err) {
        br_status st =
            br_error(BR_ENET, "redis %s:%d: cannot connect: %s", cfg->host, cfg->port, c->errstr);
        redisFree(c);
        return st;
    }
    redisSetTimeout(c, tv);
    redisEnableKeepAlive(c);
    if (cfg->db) {
        redisReply *r = redisCommand(c, "SELECT %d", cfg->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            br_status st = br__rconn_fail(cfg, c, r, "SELECT");
            if (r) freeReplyObject(r);
            redisFree(c);
            return st;
        }
        freeReplyObject(r);
    }
    *out = c;
    return BR_OK;
}

/* ----------------------------------------------------------------- batch -- */

/* --------------------------------------------------------- hash slots -- */

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), Redis Cluster's key
 * hash, bit by bit: the slot of a request's few keys is not a hot path. */
static uint16_t crc16(const char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((unsigned char)p[i] << 8);
        for (int k = 0; k < 8; k++) crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

int br__redis_slot(const char *key, size_t len)
{
    /* The hash tag: between the first '{' and the next '}', when not empty. */
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(key + from, '}', len - from);
        if (close && close > key + from)
            return crc16(key + from, (size_t)(close - key) - from) & 16383;
    }
    return crc16(key, len) & 16383;
}

/* The tags: base-36 counts 0, 1, ..., z, 10, ...; the first to land on a
 * slot is its tag. Every slot has one of at most 4 characters (about
 * 160,000 counts, a few milliseconds once per process). */
static char slot_tags[BR_RCLUSTER_SLOTS][6];
static pthread_once_t slot_tags_once = PTHREAD_ONCE_INIT;

static void make_slot_tags(void)
{
    size_t left = BR_RCLUSTER_SLOTS;
    for (unsigned long n = 0; left && n < 36ul * 36 * 36 * 36 * 36; n++) {
        char t[8];
        int len = 0;
        unsigned long x = n;
        do {
            t[len++] = "0123456789abcdefghijklmnopqrstuvwxyz"[x % 36];
            x /= 36;
        } while (x);
        int slot = crc16(t, (size_t)len) & 16383;
        if (slot_tags[slot][0]) continue;
        memcpy(slot_tags[slot], t, (size_t)len);
        left--;
    }
}

const char *br__redis_slot_tag(int slot)
{
    pthread_once(&slot_tags_once, make_slot_tags);
    return slot_tags[slot & 16383];
}

/* ----------------------------------------------------------------- batch -- */

static int name_is(const char *argv0, size_t len, const char *name)
{
    return len == strlen(name) && !strncasecmp(argv0, name, len);
}

/* Where a command's key is: its index in argv, or -1 for none. */
static int key_index(int argc, const char **argv, const size_t *lens)
{
    if (argc < 2) return -1;
    static const char *const keyless[] = {"PING",     "WAIT",     "SCAN",    "MULTI",  "EXEC",
                                          "CLUSTER",  "INFO",     "DBSIZE",  "SELECT", "ASKING",
                                          "READONLY", "FLUSHALL", "FLUSHDB", "SCRIPT", "CONFIG"};
    for (size_t i = 0; i < sizeof keyless / sizeof *keyless; i++)
        if (name_is(argv[0], lens[0], keyless[i])) return -1;
    if (name_is(argv[0], lens[0], "XGROUP") || name_is(argv[0], lens[0], "XINFO"))
        return argc > 2 ? 2 : -1;
    if (name_is(argv[0], lens[0], "EVAL") || name_is(argv[0], lens[0], "EVALSHA"))
        return argc > 3 && !(lens[2] == 1 && argv[2][0] == '0') ? 3 : -1;
    if (name_is(argv[0], lens[0], "XREAD") || name_is(argv[0], lens[0], "XREADGROUP")) {
        for (int i = 1; i + 1 < argc; i++)
            if (name_is(argv[i], lens[i], "STREAMS")) return i + 1;
        return -1;
    }
    return 1;
}

br_status br__rbatch_add(br_rbatch *b, int argc, const char **argv, const size_t *lens)
{
    if (b->n + 2 > b->cap) {
        int cap = b->cap ? 2 * b->cap : 16;
        size_t *off = br_realloc(b->off, (size_t)cap * sizeof *off);
        if (off) b->off = off;
        int *slot = off ? br_realloc(b->slot, (size_t)cap * sizeof *slot) : NULL;
        if (slot) b->slot = slot;
        if (!off || !slot) return br_error(BR_ENOMEM, "redis batch");
        b->cap = cap;
    }
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0 || !cmd) return br_error(BR_ENOMEM, "redis command");
    b->off[b->n] = b->s.len;
    br__sb_put(&b->s, cmd, (size_t)n);
    free(cmd);
    if (b->s.oom) return br_error(BR_ENOMEM, "redis batch");
    int k = key_index(argc, argv, lens);
    b->slot[b->n] = k < 0 ? -1 : br__redis_slot(argv[k], lens[k]);
    b->n++;
    b->off[b->n] = b->s.len;
    return BR_OK;
}

void br__rbatch_route(br_rbatch *b, int slot)
{
    if (b->n > 0) b->slot[b->n - 1] = slot & 16383;
}

void br__rbatch_reset(br_rbatch *b)
{
    br__sb_reset(&b->s);
    b->n = 0;
}

void br__rbatch_free(br_rbatch *b)
{
    br__sb_free(&b->s);
    br_free(b->off);
    br_free(b->slot);
    memset(b, 0, sizeof *b);
}

br_status br__rbatch_run(const br_rconn_cfg *cfg, redisContext *c, br_rbatch *b,
                         redisReply **replies, const char *what)
{
    if (b->n == 0) return BR_OK;
    if (redisAppendFormattedCommand(c, b->s.p, b->s.len) != REDIS_OK)
        return br__rconn_fail(cfg, c, NULL, what);
    br_status st = BR_OK;
    for (int i = 0; i < b->n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
            /* The connection is broken; the remaining replies never come. */
            st = br__rconn_fail(cfg, c, NULL, what);
            for (int j = 0; replies && j < i; j++) {
                if (replies[j]) freeReplyObject(replies[j]);
                replies[j] = NULL;
            }
            return st;
        }
        if (r->type == REDIS_REPLY_ERROR && st == BR_OK) st = br__rconn_fail(cfg, c, r, what);
        if (replies)
            replies[i] = r;
        else
            freeReplyObject(r);
    }
    if (st != BR_OK && replies)
        for (int j = 0; j < b->n; j++) {
            freeReplyObject(replies[j]);
            replies[j] = NULL;
        }
    return st;
}

/* ------------------------------------------------------------------ pool -- */

struct br_rpool {
    br_rconn_cfg cfg;
    atomic_uint next;
    size_t n;
    br_rslot slots[];
};

br_status br__rpool_create(const br_rconn_cfg *cfg, br_rpool **out)
{
    br_rpool *p = br_calloc(1, sizeof *p + cfg->pool * sizeof(br_rslot));
    if (!p) return br_error(BR_ENOMEM, "redis pool");
    p->cfg = *cfg;
    p->n = cfg->pool;
    atomic_init(&p->next, 0);
    for (size_t i = 0; i < p->n; i++) pthread_mutex_init(&p->slots[i].mu, NULL);
    *out = p;
    return BR_OK;
}

void br__rpool_free(br_rpool *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        if (p->slots[i].c) redisFree(p->slots[i].c);
        pthread_mutex_destroy(&p->slots[i].mu);
    }
    br_free(p);
}

/* 1 when an idle pooled connection is known dead before anything is sent
 * on it: the server closed it (a Redis restart closes every connection; the
 * FIN is waiting to be read) or the socket has an error. An idle
 * connection has nothing to read, so anything readable means it is gone (or
 * out of step). Checked without blocking; a connection that merely went
 * quiet passes, and a failure then is a real one. */
static int stale(const redisContext *c)
{
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    if (c->err || c->fd < 0) return 1;
    if (poll(&pf, 1, 0) <= 0) return 0;
    if (pf.revents & (POLLERR | POLLHUP | POLLNVAL)) return 1;
    char byte;
    ssize_t n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

br_rslot *br__rpool_take(br_rpool *p)
{
    unsigned start = atomic_fetch_add(&p->next, 1);
    br_rslot *s = NULL;
    for (size_t i = 0; i < p->n && !s; i++) {
        br_rslot *t = &p->slots[(start + i) % p->n];
        if (pthread_mutex_trylock(&t->mu) == 0) s = t;
    }
    if (!s) {
        s = &p->slots[start % p->n];
        pthread_mutex_lock(&s->mu);
    }
    /* A connection the server closed while it sat in the pool (Redis
     * restarted) is replaced before anything is sent, so a command that
     * must not be retried (XADD) is not lost to a stale socket: nothing
     * was sent on it. */
    if (s->c && stale(s->c)) {
        redisFree(s->c);
        s->c = NULL;
    }
    return s;
}

void br__rpool_give(br_rslot *s)
{
    pthread_mutex_unlock(&s->mu);
}

br_status br__rpool_run(br_rpool *p, br_rbatch *b, int retry, redisReply **replies,
                        const char *what)
{
    br_rslot *s = br__rpool_take(p);
    br_status st = BR_OK;
    for (int attempt = 0; attempt < (retry ? 2 : 1); attempt++) {
        int fresh = 0;
        if (!s->c) {
            st = br__rconn_connect(&p->cfg, &s->c);
            if (st != BR_OK) break;
            fresh = 1;
        }
        st = br__rbatch_run(&p->cfg, s->c, b, replies, what);
        if (st != BR_ENET) break;
        /* Broken connection: drop it; the retry (or the next caller)
         * reconnects. A fresh connection that fails is not retried. */
        redisFree(s->c);
        s->c = NULL;
        if (fresh) break;
    }
    br__rpool_give(s);
    return st;
}
