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
    if (!strcmp(key, "prefix")) {
        size_t n = strlen(val);
        if (n >= sizeof c->prefix)
            return br_error(BR_EINVAL, "store option prefix: at most %zu bytes",
                            sizeof c->prefix - 1);
        /* No glob characters: the prefix goes into SCAN MATCH patterns. */
        for (size_t i = 0; i < n; i++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-",
                        val[i]))
                return br_error(BR_EINVAL, "store option prefix '%s': use [A-Za-z0-9._:-]", val);
        memcpy(c->prefix, val, n + 1);
        return BR_OK;
    }
    return br_error(BR_EINVAL,
                    "unknown redis option '%s' (timeout_ms, pool, chunk, grace_s, "
                    "version_ttl_ms, prefix)",
                    key);
}

br_status br__rconn_parse(const char *rest, br_rconn_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->prefix, "bookrec:");
    cfg->timeout_ms = 1000;
    cfg->pool = 8;
    cfg->chunk = 1000;
    cfg->grace_s = 60;
    cfg->version_ttl_ms = 100;
    char *base;
    br_status st = br__store_parse_options(rest, &base, opt, cfg);
    if (st != BR_OK) return st;
    char *slash = strchr(base, '/');
    if (slash) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || db < 0 || db > 1000) {
            st = br_error(BR_EINVAL, "redis://%s: database '%s' is not a number", base, slash + 1);
            br_free(base);
            return st;
        }
        cfg->db = (int)db;
        *slash = '\0';
    }
    char *colon = strrchr(base, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 6379;
    if (colon && (!colon[1] || *end || port <= 0 || port > 65535)) {
        st = br_error(BR_EINVAL, "redis://%s: bad port", base);
        br_free(base);
        return st;
    }
    if (colon) *colon = '\0';
    if (!base[0] || strlen(base) >= sizeof cfg->host) {
        st = br_error(BR_EINVAL, "redis URI needs a host: redis://HOST:PORT[/DB]");
        br_free(base);
        return st;
    }
    strcpy(cfg->host, base);
    cfg->port = (int)port;
    br_free(base);
    return BR_OK;
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

br_status br__rbatch_add(br_rbatch *b, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0 || !cmd) return br_error(BR_ENOMEM, "redis command");
    br__sb_put(&b->s, cmd, (size_t)n);
    free(cmd);
    if (b->s.oom) return br_error(BR_ENOMEM, "redis batch");
    b->n++;
    return BR_OK;
}

void br__rbatch_reset(br_rbatch *b)
{
    br__sb_reset(&b->s);
    b->n = 0;
}

void br__rbatch_free(br_rbatch *b)
{
    br__sb_free(&b->s);
    b->n = 0;
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

typedef struct slot {
    pthread_mutex_t mu;
    redisContext *c;
} slot;

struct br_rpool {
    br_rconn_cfg cfg;
    atomic_uint next;
    size_t n;
    slot slots[];
};

br_status br__rpool_create(const br_rconn_cfg *cfg, br_rpool **out)
{
    br_rpool *p = br_calloc(1, sizeof *p + cfg->pool * sizeof(slot));
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

static slot *take(br_rpool *p)
{
    unsigned start = atomic_fetch_add(&p->next, 1);
    for (size_t i = 0; i < p->n; i++) {
        slot *s = &p->slots[(start + i) % p->n];
        if (pthread_mutex_trylock(&s->mu) == 0) return s;
    }
    slot *s = &p->slots[start % p->n];
    pthread_mutex_lock(&s->mu);
    return s;
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

br_status br__rpool_run(br_rpool *p, br_rbatch *b, int retry, redisReply **replies,
                        const char *what)
{
    slot *s = take(p);
    br_status st = BR_OK;
    /* A connection the server closed while it sat in the pool (Redis
     * restarted) is replaced before the batch is sent, so a command that
     * must not be retried (XADD) is not lost to a stale socket: nothing
     * was sent on it. */
    if (s->c && stale(s->c)) {
        redisFree(s->c);
        s->c = NULL;
    }
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
    pthread_mutex_unlock(&s->mu);
    return st;
}
