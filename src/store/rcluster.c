/*
 * rcluster.c: the Redis client of the store and the event stream (see
 * rconn.h), for one server (a pool, rconn.c) or a Redis Cluster.
 *
 * A cluster client learns the slot map with CLUSTER SLOTS from any node it
 * can reach (the seeds, then every node it has met), keeps a pool of
 * connections per node, and sends each command of a batch to the primary
 * of its key's slot: one pipeline per node, every pipeline written before
 * any reply is read, so a batch costs one round trip however many nodes it
 * touches. A MOVED reply means the map is stale: it is read again and the
 * command sent where it now belongs; ASK sends it once, after ASKING, to
 * the node importing the slot (a resharding in progress). TRYAGAIN,
 * CLUSTERDOWN and LOADING mean "not now": the command is sent again after
 * a short wait.
 *
 * A node whose connection fails is marked down for `down_ms`: commands for
 * its slots fail at once (BR_ENET, "node ... is down") instead of each
 * waiting out a timeout, and the map is read again, so when a replica is
 * promoted the client follows it at the first refresh. How long a batch
 * keeps trying depends on what it is (rconn.h): a reader's request gives up
 * after `timeout_ms`, a publish's writes after `failover_ms` (long enough
 * for a failover), and a command that must not run twice (XADD) is never
 * sent again after a connection broke under it.
 */
#define _GNU_SOURCE
#include "store/rconn.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NODES_MAX   1024 /* a cluster's size limit (Redis's advice: 1000) */
#define NO_NODE     UINT16_MAX
#define TRIES_MAX   64
#define REFRESH_GAP 50000000ull /* ns: at most one map refresh per 50 ms */

struct br_rnode {
    br_rconn_cfg cfg; /* the client's, with this node's host and port */
    char name[280];   /* "host:port" */
    br_rpool *pool;
    /* from the last map (atomic: read without the client's lock) */
    _Atomic int replicas;        /* replicas of its slots */
    _Atomic int first_slot;      /* a slot it served, -1 none */
    _Atomic int primary;         /* it served slots */
    _Atomic uint64_t down_until; /* ns (br_now_ns); 0: up */
};

struct br_rclient {
    br_rconn_cfg cfg;
    br_rpool *pool; /* one server */
    /* a cluster */
    pthread_rwlock_t mu; /* nodes[] and map[] */
    br_rnode **nodes;
    int n_nodes;
    uint16_t map[BR_RCLUSTER_SLOTS]; /* slot -> node index */
    pthread_mutex_t refresh_mu;
    _Atomic uint64_t refreshed_at; /* ns */
    _Atomic unsigned gen;          /* bumped by every map change */
};

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ nodes -- */

static void node_free(br_rnode *n)
{
    if (!n) return;
    br__rpool_free(n->pool);
    br_free(n);
}

/* The node at host:port, added when new (caller holds mu for writing). */
static br_rnode *node_get_locked(br_rclient *c, const char *host, int port, int *index)
{
    for (int i = 0; i < c->n_nodes; i++)
        if (c->nodes[i]->cfg.port == port && !strcmp(c->nodes[i]->cfg.host, host)) {
            if (index) *index = i;
            return c->nodes[i];
        }
    if (c->n_nodes >= NODES_MAX || strlen(host) >= sizeof c->cfg.host) return NULL;
    br_rnode **grown = br_realloc(c->nodes, (size_t)(c->n_nodes + 1) * sizeof *grown);
    if (!grown) return NULL;
    c->nodes = grown;
    br_rnode *n = br_calloc(1, sizeof *n);
    if (!n) return NULL;
    n->cfg = c->cfg;
    snprintf(n->cfg.host, sizeof n->cfg.host, "%s", host);
    n->cfg.port = port;
    snprintf(n->name, sizeof n->name, "%s:%d", host, port);
    atomic_init(&n->first_slot, -1);
    atomic_init(&n->replicas, 0);
    atomic_init(&n->primary, 0);
    atomic_init(&n->down_until, 0);
    if (br__rpool_create(&n->cfg, &n->pool) != BR_OK) {
        br_free(n);
        return NULL;
    }
    c->nodes[c->n_nodes] = n;
    if (index) *index = c->n_nodes;
    c->n_nodes++;
    return n;
}

static br_rnode *node_get(br_rclient *c, const char *host, int port)
{
    pthread_rwlock_wrlock(&c->mu);
    br_rnode *n = node_get_locked(c, host, port, NULL);
    pthread_rwlock_unlock(&c->mu);
    return n;
}

static int node_is_down(br_rnode *n, uint64_t now)
{
    uint64_t until = atomic_load(&n->down_until);
    return until && now < until;
}

static void node_mark_down(br_rclient *c, br_rnode *n)
{
    if (c->cfg.down_ms) atomic_store(&n->down_until, br_now_ns() + c->cfg.down_ms * 1000000ull);
}

/* --------------------------------------------------------------- slot map -- */

/* The slot map is merged from the views of up to VIEWS nodes (CLUSTER
 * NODES): for each slot, the primary claiming it with the highest config
 * epoch. One node's view can be stale: a primary restarted after its
 * replica took over believes, until the others tell it, that it still owns
 * its slots, and writes sent to it then are dropped when it turns replica.
 * The epoch of the promotion is higher, so two other views outvote it. */
#define VIEWS 3

typedef struct claim {
    uint64_t epoch;
    int node; /* index in c->nodes, -1: none */
} claim;

/* "ip:port@cport[,hostname]" into host and port; an empty ip is `self`. */
static int parse_addr(const char *a, const char *self, char *host, size_t cap, int *port)
{
    const char *at = strchr(a, '@');
    size_t len = at ? (size_t)(at - a) : strlen(a);
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (a[i] == ':') colon = a + i;
    if (!colon) return 0;
    size_t hl = (size_t)(colon - a);
    if (hl == 0) {
        snprintf(host, cap, "%s", self);
    } else {
        if (hl >= cap) return 0;
        memcpy(host, a, hl);
        host[hl] = '\0';
    }
    *port = atoi(colon + 1);
    return *port > 0 && *port < 65536;
}

static int has_flag(const char *flags, const char *f)
{
    size_t n = strlen(f);
    for (const char *p = flags; (p = strstr(p, f)); p += n)
        if ((p == flags || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
    return 0;
}

/* Node n's CLUSTER NODES text (heap; NULL on failure). No lock held: a
 * node that does not answer must not stall the requests. */
static br_status fetch_view(br_rnode *n, char **out)
{
    br_rbatch b = {0};
    const char *argv[] = {"CLUSTER", "NODES"};
    size_t lens[] = {7, 5};
    redisReply *r = NULL;
    br_status st = br__rbatch_add(&b, 2, argv, lens);
    if (st == BR_OK) st = br__rnode_run(n, &b, BR_RRETRY_NONE, &r, "CLUSTER NODES");
    br__rbatch_free(&b);
    if (st != BR_OK) return st;
    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return br_error(BR_ESTORE, "redis-cluster %s: CLUSTER NODES: unexpected reply", n->name);
    }
    *out = br_malloc(r->len + 1);
    if (*out) {
        memcpy(*out, r->str, r->len);
        (*out)[r->len] = '\0';
    }
    freeReplyObject(r);
    return *out ? BR_OK : br_error(BR_ENOMEM, "cluster view");
}

/* One view into the claims, and each primary's live replicas into
 * `replicas` (the largest count any view gives). Caller holds mu for
 * writing (the nodes a view names are added). 1 when it claims slots. */
static int parse_view(br_rclient *c, const char *text, const char *self, claim *claims,
                      int *replicas)
{
    typedef struct master_id {
        char id[48];
        int node, replicas;
    } master_id;
    int cap = 64, n_ids = 0, served = 0;
    master_id *ids = br_malloc((size_t)cap * sizeof *ids);
    if (!ids) return 0;
    /* primaries first (a replica's line may come before its primary's) */
    for (int pass = 0; pass < 2; pass++) {
        for (const char *line = text; line && *line;) {
            const char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            /* a primary's line lists its slot ranges: any length */
            char *buf = br_malloc(len + 1);
            char **f = br_malloc((len / 2 + 2) * sizeof *f);
            int nf = 0;
            if (buf && f) {
                memcpy(buf, line, len);
                buf[len] = '\0';
                char *save = NULL;
                for (char *t = strtok_r(buf, " \r", &save); t; t = strtok_r(NULL, " \r", &save))
                    f[nf++] = t;
            }
            line = nl ? nl + 1 : NULL;
            char host[256];
            int port, idx = -1;
            if (nf < 8 || has_flag(f[2], "noaddr") || has_flag(f[2], "handshake") ||
                !parse_addr(f[1], self, host, sizeof host, &port) ||
                !node_get_locked(c, host, port, &idx)) {
                br_free(buf);
                br_free(f);
                continue;
            }
            int master = has_flag(f[2], "master");
            int failed = has_flag(f[2], "fail") || has_flag(f[2], "fail?");
            if (pass == 0 && master) {
                if (n_ids == cap) {
                    master_id *g = br_realloc(ids, (size_t)cap * 2 * sizeof *ids);
                    if (g) ids = g, cap *= 2;
                }
                if (n_ids < cap) {
                    snprintf(ids[n_ids].id, sizeof ids[n_ids].id, "%s", f[0]);
                    ids[n_ids].node = idx;
                    ids[n_ids++].replicas = 0;
                }
                uint64_t epoch = strtoull(f[6], NULL, 10);
                for (int k = 8; k < nf; k++) {
                    if (f[k][0] == '[') continue; /* a migration in progress */
                    char *dash = strchr(f[k], '-');
                    long lo = strtol(f[k], NULL, 10), hi = dash ? strtol(dash + 1, NULL, 10) : lo;
                    if (lo < 0 || hi >= BR_RCLUSTER_SLOTS || lo > hi) continue;
                    for (long sl = lo; sl <= hi; sl++)
                        if (claims[sl].node < 0 || epoch > claims[sl].epoch) {
                            claims[sl].node = idx;
                            claims[sl].epoch = epoch;
                        }
                    served = 1;
                }
            } else if (pass == 1 && !master && !failed) {
                for (int k = 0; k < n_ids; k++)
                    if (!strcmp(ids[k].id, f[3])) {
                        ids[k].replicas++;
                        break;
                    }
            }
            br_free(buf);
            br_free(f);
        }
    }
    for (int k = 0; k < n_ids; k++)
        if (ids[k].replicas > replicas[ids[k].node]) replicas[ids[k].node] = ids[k].replicas;
    br_free(ids);
    return served;
}

/* -------------------------------------------------------------- refresh -- */

/* Reads the map again from up to VIEWS nodes that answer (those not marked
 * down first) and merges their views, unless the map changed since
 * `seen_gen` or was read in the last REFRESH_GAP (a fifth of it when
 * `force`d: a redirection or a node found down). */
static br_status refresh(br_rclient *c, unsigned seen_gen, int force)
{
    pthread_mutex_lock(&c->refresh_mu);
    uint64_t now = br_now_ns();
    /* Another thread read it since this one's attempt began, or did so a
     * moment ago: this one retries on that map (under load, a dead node's
     * readers would otherwise each re-read it). */
    if (atomic_load(&c->gen) != seen_gen ||
        (!force && now - atomic_load(&c->refreshed_at) < REFRESH_GAP) ||
        (force && now - atomic_load(&c->refreshed_at) < REFRESH_GAP / 5)) {
        pthread_mutex_unlock(&c->refresh_mu);
        return BR_OK;
    }
    /* the views, fetched without the map's lock */
    char *text[VIEWS] = {0};
    char self[VIEWS][256];
    int views = 0, tried = 0;
    br_status last = BR_OK;
    for (int pass = 0; pass < 2 && views < VIEWS; pass++) {
        pthread_rwlock_rdlock(&c->mu);
        int nn = c->n_nodes;
        pthread_rwlock_unlock(&c->mu);
        for (int i = 0; i < nn && views < VIEWS; i++) {
            pthread_rwlock_rdlock(&c->mu);
            br_rnode *node = c->nodes[i];
            pthread_rwlock_unlock(&c->mu);
            /* pass 0: the nodes believed up; pass 1: the others */
            if (node_is_down(node, now) != pass) continue;
            tried++;
            br_status vs = fetch_view(node, &text[views]);
            if (vs == BR_OK) {
                snprintf(self[views], sizeof self[views], "%s", node->cfg.host);
                views++;
            } else {
                last = vs;
                if (vs == BR_ENET) node_mark_down(c, node);
            }
        }
    }
    /* (an error is made only when it is one: a refresh that succeeds must
     * not overwrite the detail of the failure that called it) */
    br_status st = views ? BR_OK
                   : tried && last != BR_OK
                       ? last
                       : br_error(BR_ENET, "redis-cluster %s: no node reachable", c->cfg.seeds);
    claim *claims = st == BR_OK ? br_malloc(BR_RCLUSTER_SLOTS * sizeof *claims) : NULL;
    int *replicas = claims ? br_calloc(NODES_MAX, sizeof *replicas) : NULL;
    if (st == BR_OK && !replicas) st = br_error(BR_ENOMEM, "slot map");
    if (st == BR_OK) {
        for (int i = 0; i < BR_RCLUSTER_SLOTS; i++) claims[i] = (claim){0, -1};
        pthread_rwlock_wrlock(&c->mu);
        int served = 0;
        for (int v = 0; v < views; v++) served |= parse_view(c, text[v], self[v], claims, replicas);
        if (!served) {
            st = br_error(BR_ESTORE,
                          "redis-cluster %s: no slots served (are these cluster nodes, and was "
                          "the cluster created?)",
                          c->cfg.seeds);
        } else {
            for (int i = 0; i < c->n_nodes; i++) {
                atomic_store(&c->nodes[i]->primary, 0);
                atomic_store(&c->nodes[i]->first_slot, -1);
                atomic_store(&c->nodes[i]->replicas, i < NODES_MAX ? replicas[i] : 0);
            }
            for (int sl = 0; sl < BR_RCLUSTER_SLOTS; sl++) {
                int k = claims[sl].node;
                c->map[sl] = k < 0 ? NO_NODE : (uint16_t)k;
                if (k < 0 || atomic_load(&c->nodes[k]->primary)) continue;
                atomic_store(&c->nodes[k]->primary, 1);
                atomic_store(&c->nodes[k]->first_slot, sl);
            }
            atomic_fetch_add(&c->gen, 1);
        }
        pthread_rwlock_unlock(&c->mu);
    }
    atomic_store(&c->refreshed_at, br_now_ns());
    pthread_mutex_unlock(&c->refresh_mu);
    for (int v = 0; v < views; v++) br_free(text[v]);
    br_free(claims);
    br_free(replicas);
    return st;
}

/* -------------------------------------------------------------------- run -- */

/* A reply that sends the command elsewhere or asks to wait. */
enum { R_DONE, R_MOVED, R_ASK, R_WAIT };

static int classify(const redisReply *r, char *host, size_t host_size, int *port)
{
    if (r->type != REDIS_REPLY_ERROR) return R_DONE;
    int moved = !strncmp(r->str, "MOVED ", 6), ask = !strncmp(r->str, "ASK ", 4);
    if (moved || ask) {
        /* "MOVED 3999 127.0.0.1:6381" */
        const char *sp = strchr(r->str + (moved ? 6 : 4), ' ');
        const char *colon = sp ? strrchr(sp + 1, ':') : NULL;
        if (!colon || (size_t)(colon - sp - 1) >= host_size) return R_DONE;
        memcpy(host, sp + 1, (size_t)(colon - sp - 1));
        host[colon - sp - 1] = '\0';
        *port = atoi(colon + 1);
        return moved ? R_MOVED : R_ASK;
    }
    if (!strncmp(r->str, "TRYAGAIN", 8) || !strncmp(r->str, "CLUSTERDOWN", 11) ||
        !strncmp(r->str, "LOADING", 7) || !strncmp(r->str, "MASTERDOWN", 10))
        return R_WAIT;
    return R_DONE;
}

/* One node's share of an attempt. */
typedef struct group {
    br_rnode *node;
    br_rslot *slot;
    int *cmd; /* command indices, in batch order */
    int n;
    int ask;   /* the commands were redirected by ASK: each after ASKING */
    int fresh; /* connected for this attempt */
    br_status st;
} group;

br_status br__rnode_run(br_rnode *n, br_rbatch *b, int retry, redisReply **replies,
                        const char *what)
{
    return br__rpool_run(n->pool, b, retry, replies, what);
}

/* Appends group g's commands on its connection (connecting when needed)
 * and writes them out; the replies are read afterwards. */
static br_status group_send(const br_rbatch *b, group *g)
{
    br_rslot *s = g->slot;
    g->fresh = !s->c;
    if (!s->c) {
        br_status st = br__rconn_connect(&g->node->cfg, &s->c);
        if (st != BR_OK) return st;
    }
    for (int k = 0; k < g->n; k++) {
        int i = g->cmd[k];
        if (g->ask && redisAppendCommand(s->c, "ASKING") != REDIS_OK)
            return br__rconn_fail(&g->node->cfg, s->c, NULL, "ASKING");
        if (redisAppendFormattedCommand(s->c, b->s.p + b->off[i], b->off[i + 1] - b->off[i]) !=
            REDIS_OK)
            return br__rconn_fail(&g->node->cfg, s->c, NULL, "sending");
    }
    int done = 0;
    while (!done)
        if (redisBufferWrite(s->c, &done) != REDIS_OK)
            return br__rconn_fail(&g->node->cfg, s->c, NULL, "sending");
    return BR_OK;
}

/* Where command i goes now (caller holds mu): its ASK target, else the
 * primary of its slot (a keyless command: `any`); NULL when the slot has
 * no known owner or the owner is marked down. */
static br_rnode *target(br_rclient *c, const br_rbatch *b, int i, br_rnode *const *ask,
                        br_rnode *any, uint64_t now)
{
    if (ask[i]) return ask[i];
    if (b->slot[i] < 0) return any;
    uint16_t k = c->map[b->slot[i]];
    br_rnode *node = k == NO_NODE ? NULL : c->nodes[k];
    return node && !node_is_down(node, now) ? node : NULL;
}

br_status br__rclient_run(br_rclient *c, br_rbatch *b, int retry, redisReply **replies,
                          const char *what)
{
    if (!c->cfg.cluster) return br__rpool_run(c->pool, b, retry, replies, what);
    if (b->n == 0) return BR_OK;
    int n = b->n;
    /* A reader's request is 3-4 commands: its state on the stack, not six
     * allocations per request. */
    enum { SMALL = 8 };
    redisReply *rep_s[SMALL] = {0};
    char done_s[SMALL] = {0};
    br_rnode *ask_s[SMALL] = {0}, *route_s[SMALL] = {0};
    int order_s[SMALL];
    group gs_s[SMALL];
    int small = n <= SMALL;
    redisReply **rep = small ? rep_s : br_calloc((size_t)n, sizeof *rep);
    char *done = small ? done_s : br_calloc((size_t)n, 1);
    br_rnode **ask = small ? ask_s : br_calloc((size_t)n, sizeof *ask);
    br_rnode **route = small ? route_s : br_calloc((size_t)n, sizeof *route);
    int *order = small ? order_s : br_malloc((size_t)n * sizeof *order);
    group *gs = small ? gs_s : br_calloc((size_t)n, sizeof *gs);
    br_status st = BR_OK;
    int lost = 0; /* a command failed for the connection (BR_ENET) */
    char detail[512] = "";
    if (!rep || !done || !ask || !route || !order || !gs) st = br_error(BR_ENOMEM, "redis batch");
    uint64_t t0 = br_now_ns();
    uint64_t budget_ms = retry == BR_RRETRY_LONG && c->cfg.failover_ms > c->cfg.timeout_ms
                             ? c->cfg.failover_ms
                             : c->cfg.timeout_ms;
    int pending = n;
    for (int attempt = 0; st == BR_OK && pending > 0 && !lost; attempt++) {
        unsigned gen = atomic_load(&c->gen);
        uint64_t now = br_now_ns();
        /* Route each pending command, and group them by node. */
        int ng = 0, unrouted = 0;
        pthread_rwlock_rdlock(&c->mu);
        br_rnode *any = NULL;
        for (int i = 0; i < c->n_nodes && !any; i++)
            if (atomic_load(&c->nodes[i]->primary) && !node_is_down(c->nodes[i], now))
                any = c->nodes[i];
        for (int i = 0; i < n; i++) {
            route[i] = done[i] ? NULL : target(c, b, i, ask, any, now);
            if (done[i]) continue;
            if (!route[i]) {
                unrouted++;
                continue;
            }
            int g = 0;
            while (g < ng && !(gs[g].node == route[i] && gs[g].ask == (ask[i] != NULL))) g++;
            if (g == ng) gs[ng++] = (group){.node = route[i], .ask = ask[i] != NULL};
            gs[g].n++;
        }
        pthread_rwlock_unlock(&c->mu);
        int at = 0;
        for (int g = 0; g < ng; g++) {
            gs[g].cmd = order + at;
            at += gs[g].n;
            gs[g].n = 0;
        }
        for (int i = 0; i < n; i++) {
            if (!route[i]) continue;
            int g = 0;
            while (!(gs[g].node == route[i] && gs[g].ask == (ask[i] != NULL))) g++;
            gs[g].cmd[gs[g].n++] = i;
        }
        /* Send every group, then read every group. */
        for (int g = 0; g < ng; g++) {
            gs[g].slot = br__rpool_take(gs[g].node->pool);
            gs[g].st = group_send(b, &gs[g]);
        }
        int moved = 0, wait = 0;
        for (int g = 0; g < ng; g++) {
            group *gr = &gs[g];
            for (int k = 0; k < gr->n && gr->st == BR_OK; k++) {
                int i = gr->cmd[k];
                redisReply *r = NULL;
                if (gr->ask && (redisGetReply(gr->slot->c, (void **)&r) != REDIS_OK || !r)) {
                    gr->st = br__rconn_fail(&gr->node->cfg, gr->slot->c, NULL, what);
                    break;
                }
                if (r) freeReplyObject(r); /* ASKING's +OK */
                r = NULL;
                if (redisGetReply(gr->slot->c, (void **)&r) != REDIS_OK || !r) {
                    gr->st = br__rconn_fail(&gr->node->cfg, gr->slot->c, NULL, what);
                    break;
                }
                char host[256];
                int port = 0, kind = classify(r, host, sizeof host, &port);
                ask[i] = NULL;
                if (kind == R_DONE || attempt + 1 >= TRIES_MAX) {
                    rep[i] = r; /* after TRIES_MAX the redirection is the answer */
                    done[i] = 1;
                    pending--;
                    continue;
                }
                freeReplyObject(r);
                if (kind == R_MOVED) moved = 1;
                if (kind == R_WAIT) wait = 1;
                if (kind == R_ASK && !(ask[i] = node_get(c, host, port)))
                    st = br_error(BR_ENOMEM, "redis-cluster node");
            }
            if (gr->st != BR_OK) {
                /* The connection broke: the replies not read never come,
                 * and whether those commands ran is unknown. */
                snprintf(detail, sizeof detail, "%s", br_error_detail());
                if (gr->slot->c) redisFree(gr->slot->c);
                gr->slot->c = NULL;
                /* A node that refuses a new connection or does not answer
                 * in time is down (killed, frozen, failing over); an old
                 * connection that broke is only retried. */
                if (gr->fresh || strstr(detail, "(timeout)")) node_mark_down(c, gr->node);
                moved = 1;
                for (int k = 0; k < gr->n; k++)
                    if (!done[gr->cmd[k]]) {
                        ask[gr->cmd[k]] = NULL;
                        if (retry == BR_RRETRY_NONE) lost = 1;
                    }
            }
            br__rpool_give(gr->slot);
            gr->slot = NULL;
        }
        if (pending == 0 || lost || st != BR_OK) break;
        /* Something is left: a redirection, a wait, a broken connection or
         * a slot without a reachable node. A reader's request gives up at
         * once on a node marked down (the degraded answer beats a wait);
         * others wait for the failover within their budget. */
        uint64_t spent_ms = (br_now_ns() - t0) / 1000000ull;
        int no_node_yet = unrouted > 0 && (retry != BR_RRETRY_LONG || spent_ms >= budget_ms);
        if (spent_ms >= budget_ms || (no_node_yet && attempt > 0)) {
            if (!detail[0] || unrouted)
                snprintf(detail, sizeof detail, "redis-cluster: %s: %s", what,
                         unrouted ? "the slot's node is down or unknown (failing over?)"
                                  : "no answer in time (failing over?)");
            lost = 1;
            break;
        }
        if (moved || unrouted || wait) {
            if (refresh(c, gen, moved || unrouted) == BR_ENOMEM)
                st = br_error(BR_ENOMEM, "slot map");
        }
        if (wait || (unrouted && retry == BR_RRETRY_LONG) || (moved && attempt > 0))
            sleep_ms(attempt < 3 ? 10 : 50); /* a failover or a slot migration */
    }
    /* The outcome, as br__rbatch_run's: replies kept only when all went
     * through; an error reply is BR_ESTORE. */
    if (st == BR_OK && (lost || pending > 0))
        st = br_error(BR_ENET, "%s", detail[0] ? detail : "redis-cluster: no answer");
    for (int i = 0; st == BR_OK && i < n; i++)
        if (rep[i] && rep[i]->type == REDIS_REPLY_ERROR)
            st = br_error(BR_ESTORE, "redis-cluster: %s: %s", what, rep[i]->str);
    for (int i = 0; rep && i < n; i++) {
        if (st == BR_OK && replies)
            replies[i] = rep[i];
        else if (rep[i])
            freeReplyObject(rep[i]);
    }
    if (!small) {
        br_free(rep);
        br_free(done);
        br_free(ask);
        br_free(route);
        br_free(order);
        br_free(gs);
    }
    return st;
}

/* ------------------------------------------------------------ open/close -- */

br_status br__rclient_open(const br_rconn_cfg *cfg, br_rclient **out)
{
    br_rclient *c = br_calloc(1, sizeof *c);
    if (!c) return br_error(BR_ENOMEM, "redis client");
    c->cfg = *cfg;
    pthread_rwlock_init(&c->mu, NULL);
    pthread_mutex_init(&c->refresh_mu, NULL);
    atomic_init(&c->gen, 0);
    atomic_init(&c->refreshed_at, 0);
    for (int i = 0; i < BR_RCLUSTER_SLOTS; i++) c->map[i] = NO_NODE;
    br_status st = BR_OK;
    if (!cfg->cluster) {
        st = br__rpool_create(cfg, &c->pool);
    } else {
        char seeds[sizeof cfg->seeds];
        snprintf(seeds, sizeof seeds, "%s", cfg->seeds);
        char *save = NULL;
        for (char *hp = strtok_r(seeds, ",", &save); hp && st == BR_OK;
             hp = strtok_r(NULL, ",", &save)) {
            char *colon = strrchr(hp, ':');
            int port = colon ? atoi(colon + 1) : 6379;
            if (colon) *colon = '\0';
            if (!node_get(c, hp, port)) st = br_error(BR_ENOMEM, "redis-cluster node");
        }
        if (st == BR_OK) st = refresh(c, 0, 1);
    }
    if (st != BR_OK) {
        br__rclient_free(c);
        return st;
    }
    *out = c;
    return BR_OK;
}

void br__rclient_free(br_rclient *c)
{
    if (!c) return;
    br__rpool_free(c->pool);
    for (int i = 0; i < c->n_nodes; i++) node_free(c->nodes[i]);
    br_free(c->nodes);
    pthread_rwlock_destroy(&c->mu);
    pthread_mutex_destroy(&c->refresh_mu);
    br_free(c);
}

int br__rclient_is_cluster(const br_rclient *c)
{
    return c->cfg.cluster;
}

void br__rclient_refresh(br_rclient *c)
{
    if (c->cfg.cluster) refresh(c, atomic_load(&c->gen), 1);
}

int br__rclient_slot_replicas(br_rclient *c, int slot)
{
    if (!c->cfg.cluster) return 0;
    pthread_rwlock_rdlock(&c->mu);
    uint16_t k = c->map[slot & 16383];
    int r = k == NO_NODE ? 0 : atomic_load(&c->nodes[k]->replicas);
    pthread_rwlock_unlock(&c->mu);
    return r;
}

br_status br__rclient_each_primary(br_rclient *c, br_status (*fn)(br_rnode *n, void *user),
                                   void *user)
{
    if (!c->cfg.cluster) {
        br_rnode n = {.cfg = c->cfg, .pool = c->pool};
        atomic_init(&n.first_slot, 0);
        atomic_init(&n.primary, 1);
        atomic_init(&n.replicas, 0);
        atomic_init(&n.down_until, 0);
        snprintf(n.name, sizeof n.name, "%s:%d", c->cfg.host, c->cfg.port);
        return fn(&n, user);
    }
    /* The primaries of the current map (a copy: fn may refresh it). */
    pthread_rwlock_rdlock(&c->mu);
    int nn = c->n_nodes;
    br_rnode **list = br_malloc((size_t)(nn ? nn : 1) * sizeof *list);
    int k = 0;
    for (int i = 0; list && i < nn; i++)
        if (atomic_load(&c->nodes[i]->primary)) list[k++] = c->nodes[i];
    pthread_rwlock_unlock(&c->mu);
    if (!list) return br_error(BR_ENOMEM, "node list");
    br_status st = BR_OK;
    for (int i = 0; i < k && st == BR_OK; i++) st = fn(list[i], user);
    br_free(list);
    return st;
}

const char *br__rnode_name(const br_rnode *n)
{
    return n->name;
}

int br__rnode_replicas(const br_rnode *n)
{
    return atomic_load(&n->replicas);
}

int br__rnode_first_slot(const br_rnode *n)
{
    return atomic_load(&n->first_slot);
}
