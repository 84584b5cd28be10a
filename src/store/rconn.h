/*
 * rconn.h (internal): Redis connections for the store and the event
 * stream: URI parsing, a small pool of hiredis connections that several
 * threads share, reconnection after a failure, timeouts, batches of
 * commands sent in one round trip (pipelining), and the client the
 * backends use, which is either one server's pool or a Redis Cluster's
 * (rcluster.c: a pool per node, each command routed by its key's hash
 * slot, redirections followed, the slot map refreshed).
 */
#ifndef BR_STORE_RCONN_H
#define BR_STORE_RCONN_H

#include <hiredis/hiredis.h>
#include <pthread.h>

#include "core/sbuf.h"
#include "store/store_internal.h"

#define BR_RCLUSTER_SLOTS 16384

typedef struct br_rconn_cfg {
    char host[256];
    int port;
    int db;
    int cluster;             /* redis-cluster://: host/port is the first seed */
    char seeds[1024];        /* cluster: the seed nodes, "host:port,host:port" */
    char prefix[64];         /* key namespace, default "bookrec:" */
    uint64_t timeout_ms;     /* connect and per-reply timeout */
    uint64_t pool;           /* connections in the pool */
    uint64_t chunk;          /* commands per pipeline flush when publishing */
    uint64_t grace_s;        /* lifetime of a replaced version's keys */
    uint64_t version_ttl_ms; /* how long a reader trusts the version it read */
    uint64_t failover_ms;    /* cluster: how long writes retry across a failover */
    uint64_t down_ms;        /* cluster: a node that failed is skipped this long */
    uint64_t partitions;     /* cluster: event stream partitions */
    uint64_t replicas;       /* cluster: WAIT for this many replicas (publish, events) */
} br_rconn_cfg;

/* Parses "HOST:PORT[/DB][?k=v&...]" (the URI after "redis://"), or with
 * `cluster` "HOST:PORT[,HOST:PORT...][?k=v&...]" (after
 * "redis-cluster://"). */
br_status br__rconn_parse(const char *rest, int cluster, br_rconn_cfg *cfg);

/* One connection, connected and SELECTed, with the timeouts set. */
br_status br__rconn_connect(const br_rconn_cfg *cfg, redisContext **out);
/* The status for a failed command: NULL reply -> BR_ENET with hiredis's
 * reason (the connection is then unusable); an error reply -> BR_ESTORE. */
br_status br__rconn_fail(const br_rconn_cfg *cfg, redisContext *c, const redisReply *r,
                         const char *what);

/* A batch of commands in RESP form, sent with one write (per node). */
typedef struct br_rbatch {
    br__sbuf s; /* the commands, back to back */
    int n;
    int cap;
    size_t *off; /* command i is s.p[off[i] .. off[i + 1]) (off[n] = s.len) */
    int *slot;   /* its key's hash slot; -1: no key (any node) */
} br_rbatch;

/* The hash slot of a key (CRC16 of the key, or of its {hash tag}). */
int br__redis_slot(const char *key, size_t len);
/* A short tag whose slot is `slot` ("{TAG}" in a key puts it there): the
 * same text for the same slot in every process. */
const char *br__redis_slot_tag(int slot);

/* Appends a command; its key (what routes it in a cluster) is found from
 * the command's name: argv[1] for most, the stream of XREADGROUP, the
 * first key of EVAL, none for PING, WAIT, SCAN, ... */
br_status br__rbatch_add(br_rbatch *b, int argc, const char **argv, const size_t *lens);
/* Routes the last command added to `slot`'s node (a keyless command that
 * must follow others on their connection: WAIT after XADD). */
void br__rbatch_route(br_rbatch *b, int slot);
void br__rbatch_reset(br_rbatch *b);
void br__rbatch_free(br_rbatch *b);
/* Sends the batch on `c` and reads its replies: replies[i] for command i
 * (NULL: the caller wants none kept). On BR_ENET the connection is broken. */
br_status br__rbatch_run(const br_rconn_cfg *cfg, redisContext *c, br_rbatch *b,
                         redisReply **replies, const char *what);

typedef struct br_rpool br_rpool;
br_status br__rpool_create(const br_rconn_cfg *cfg, br_rpool **out);
void br__rpool_free(br_rpool *p);
/* A pooled connection, taken for one caller: c is NULL (connect it) or a
 * connection known not to be stale. Give it back with br__rpool_give. */
typedef struct br_rslot {
    pthread_mutex_t mu;
    redisContext *c;
} br_rslot;
br_rslot *br__rpool_take(br_rpool *p);
void br__rpool_give(br_rslot *s);
/* Runs a batch on a pooled connection (connecting when needed). When the
 * connection fails and `retry` is set (idempotent commands), reconnects and
 * runs it once more. replies as br__rbatch_run; free each with
 * freeReplyObject. */
br_status br__rpool_run(br_rpool *p, br_rbatch *b, int retry, redisReply **replies,
                        const char *what);

/* ---------------------------------------------------------------- client -- */

/* What a failed connection allows: */
enum {
    BR_RRETRY_NONE = 0, /* not idempotent (XADD): never sent twice */
    BR_RRETRY_ONCE = 1, /* idempotent: once more (a cluster: within timeout_ms) */
    BR_RRETRY_LONG = 2, /* idempotent, a writer that can wait: a cluster retries
                         * across a failover for failover_ms */
};

typedef struct br_rclient br_rclient;
typedef struct br_rnode br_rnode;
br_status br__rclient_open(const br_rconn_cfg *cfg, br_rclient **out);
void br__rclient_free(br_rclient *c);
int br__rclient_is_cluster(const br_rclient *c);
/* The replicas of the node serving `slot` in the current map (0 for one
 * server: it is not asked). */
int br__rclient_slot_replicas(br_rclient *c, int slot);
/* Reads the slot map again now (a WAIT that found fewer replicas than the
 * map promised: one may have died). No-op for one server. */
void br__rclient_refresh(br_rclient *c);
/* Runs a batch: on one server, one round trip on a pooled connection; on a
 * cluster, each command on the node serving its slot (one pipeline per
 * node, all sent before any reply is read), following MOVED and ASK. The
 * replies come back in command order, as br__rbatch_run's. */
br_status br__rclient_run(br_rclient *c, br_rbatch *b, int retry, redisReply **replies,
                          const char *what);
/* Calls fn for each primary (the one server, or every node that serves
 * slots), stopping at the first error. */
br_status br__rclient_each_primary(br_rclient *c, br_status (*fn)(br_rnode *n, void *user),
                                   void *user);
/* Runs a batch on that node (keys are not routed: SCAN, WAIT, ...). */
br_status br__rnode_run(br_rnode *n, br_rbatch *b, int retry, redisReply **replies,
                        const char *what);
/* "host:port" of the node; the replicas the slot map gave it. */
const char *br__rnode_name(const br_rnode *n);
int br__rnode_replicas(const br_rnode *n);
/* A slot the node serves (-1: none known). */
int br__rnode_first_slot(const br_rnode *n);

#endif
