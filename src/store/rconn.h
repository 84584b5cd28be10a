/*
 * rconn.h (internal): Redis connections for the store and the event
 * stream: URI parsing, a small pool of hiredis connections that several
 * threads share, reconnection after a failure, timeouts, and batches of
 * commands sent in one round trip (pipelining).
 */
#ifndef BR_STORE_RCONN_H
#define BR_STORE_RCONN_H

#include <hiredis/hiredis.h>

#include "core/sbuf.h"
#include "store/store_internal.h"

typedef struct br_rconn_cfg {
    char host[256];
    int port;
    int db;
    char prefix[64];         /* key namespace, default "bookrec:" */
    uint64_t timeout_ms;     /* connect and per-reply timeout */
    uint64_t pool;           /* connections in the pool */
    uint64_t chunk;          /* commands per pipeline flush when publishing */
    uint64_t grace_s;        /* lifetime of a replaced version's keys */
    uint64_t version_ttl_ms; /* how long a reader trusts the version it read */
} br_rconn_cfg;

/* Parses "HOST:PORT[/DB][?k=v&...]" (the URI after "redis://"). */
br_status br__rconn_parse(const char *rest, br_rconn_cfg *cfg);

/* One connection, connected and SELECTed, with the timeouts set. */
br_status br__rconn_connect(const br_rconn_cfg *cfg, redisContext **out);
/* The status for a failed command: NULL reply -> BR_ENET with hiredis's
 * reason (the connection is then unusable); an error reply -> BR_ESTORE. */
br_status br__rconn_fail(const br_rconn_cfg *cfg, redisContext *c, const redisReply *r,
                        const char *what);

/* A batch of commands in RESP form, sent with one write. */
typedef struct br_rbatch {
    br__sbuf s; /* the commands, back to back */
    int n;
} br_rbatch;

br_status br__rbatch_add(br_rbatch *b, int argc, const char **argv, const size_t *lens);
void br__rbatch_reset(br_rbatch *b);
void br__rbatch_free(br_rbatch *b);
/* Sends the batch on `c` and reads its replies: replies[i] for command i
 * (NULL: the caller wants none kept). On BR_ENET the connection is broken. */
br_status br__rbatch_run(const br_rconn_cfg *cfg, redisContext *c, br_rbatch *b,
                        redisReply **replies, const char *what);

typedef struct br_rpool br_rpool;
br_status br__rpool_create(const br_rconn_cfg *cfg, br_rpool **out);
void br__rpool_free(br_rpool *p);
/* Runs a batch on a pooled connection (connecting when needed). When the
 * connection fails and `retry` is set (idempotent commands), reconnects and
 * runs it once more. replies as br__rbatch_run; free each with
 * freeReplyObject. */
br_status br__rpool_run(br_rpool *p, br_rbatch *b, int retry, redisReply **replies,
                       const char *what);

#endif
