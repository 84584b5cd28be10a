/*
 * server.c: the HTTP side of `bookrec serve` (bookrec/serve.h,
 * docs/api.md): libmicrohttpd with its internal epoll thread pool, routing,
 * the handlers, errors as JSON, limits, the API key, Prometheus metrics,
 * the reference-counted model snapshot and its hot reload, and the store's
 * degraded mode (a watcher thread polls `current` and probes the store with
 * backoff while it is down).
 *
 * The hot path (GET /api/recommendations/user/{id}) takes one mutex for a
 * few instructions (the snapshot reference), reads the store without any
 * lock held, ranks on the stack and writes into a per-thread buffer that
 * libmicrohttpd copies once.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <float.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

#include "bookrec/encoder.h"
#include "bookrec/text.h"
#include "serve/guard.h"
#include "serve/serve_internal.h"

/* ------------------------------------------------------------- metrics -- */

typedef enum route {
    R_RECS_USER = 0,
    R_RECS_SESSION,
    R_BOOK,
    R_BOOK_SIMILAR,
    R_BOOKS_POST,
    R_EVENTS,
    R_USER,
    R_USERS,
    R_TRIBES,
    R_MODELS,
    R_HEALTHZ,
    R_READYZ,
    R_METRICS,
    R_STATIC,
    R_OTHER,
    R_COUNT
} route;

static const char *route_name[R_COUNT] = {"/api/recommendations/user/{id}",
                                          "/api/recommendations/session",
                                          "/api/books/{id}",
                                          "/api/books/{id}/similar",
                                          "POST /api/books",
                                          "/api/events",
                                          "/api/users/{id}",
                                          "/api/users",
                                          "/api/tribes",
                                          "/api/models",
                                          "/healthz",
                                          "/readyz",
                                          "/metrics",
                                          "static",
                                          "other"};

/* The methods a route takes (its Allow header); OPTIONS is answered on
 * every route and HEAD wherever GET is. */
enum { M_GET = 1, M_POST = 2 };
static int route_methods(route r)
{
    switch (r) {
    case R_RECS_SESSION:
    case R_BOOKS_POST:
    case R_EVENTS:
        return M_POST;
    case R_OTHER:
        return 0;
    default:
        return M_GET;
    }
}

static const char *route_allow(route r)
{
    int m = route_methods(r);
    return m == M_POST ? "POST" : m == M_GET ? "GET, HEAD" : NULL;
}

static const int status_list[] = {200, 201, 204, 304, 400, 401, 404, 405, 409, 413, 429, 500, 503};
#define N_STATUS (sizeof status_list / sizeof *status_list)
static const double bucket_s[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                  0.005,  0.01,    0.025,  0.1,   1.0};
#define N_BUCKET (sizeof bucket_s / sizeof *bucket_s)

typedef struct metrics {
    atomic_uint_fast64_t requests[R_COUNT][N_STATUS];
    atomic_uint_fast64_t bucket[R_COUNT][N_BUCKET + 1];
    atomic_uint_fast64_t sum_ns[R_COUNT];
    atomic_uint_fast64_t store_errors;
    atomic_uint_fast64_t reloads, reload_failures;
    atomic_uint_fast64_t events;
    atomic_uint_fast64_t books_added;
} metrics;

/* ----------------------------------------------- a reader's recent, held -- */

/* Per-connection memory of libmicrohttpd (request line, headers, reply
 * headers). It is cleared for every request, so its default 32 KiB was a
 * visible cost; 16 KiB still takes any sane request head (bodies stream). */
#define SRV_CONN_MEMORY (16 * 1024)

/* The latest books each reader posted through this server, kept so a
 * degraded server (store unreachable) still has content seeds and a seen
 * set. A fixed table, hashed by reader; a collision replaces the entry. */
#define MEM_SLOTS 4096
#define MEM_BOOKS 8
typedef struct mem_entry {
    char user[BR_ID_MAX];
    char book[MEM_BOOKS][BR_ID_MAX]; /* ring, most recent at (head - 1) */
    uint8_t type[MEM_BOOKS];
    uint32_t n, head;
} mem_entry;

/* ------------------------------------------------------------- server -- */

struct br_server {
    br_server_options opt;
    char *model_dir, *store_uri, *bind, *api_key, *cors;
    struct MHD_Daemon *daemon;
    uint16_t port;

    pthread_mutex_t snap_mu; /* guards `snap` pointer reads (a few instructions) */
    srv_snap *snap;
    pthread_mutex_t reload_mu; /* one reload (or book post) at a time */

    _Atomic(br_store *) store;
    _Atomic(br_events *) events;
    int is_redis;   /* redis:// or redis-cluster:// */
    int is_cluster; /* redis-cluster://: a node's failure is not the store's */
    atomic_int store_ok;
    /* Reachable, but serving no version of this model directory (an empty
     * Redis after a restart, a deleted LMDB store, another model's store):
     * not ready, and why in `unready` (under err_mu). */
    atomic_int store_unready;
    pthread_mutex_t err_mu;
    char store_err[256];
    char unready[256];

    pthread_t watcher;
    int watcher_started;
    uint64_t posted_synced; /* the store's posted-book count last synced (watcher) */
    pthread_mutex_t w_mu;
    pthread_cond_t w_cv;
    int stopping;

    pthread_mutex_t enc_mu;
    br_encoder *enc;
    char enc_key[256];

    pthread_mutex_t mem_mu;
    mem_entry *mem;

    /* event commits (h_events): queued jobs, answered jobs, the committer */
    pthread_mutex_t ev_mu;
    pthread_cond_t ev_cv;
    struct ev_job *ev_queue, **ev_tail, *ev_done;
    pthread_t ev_thread;
    int ev_started, ev_stopping;
    /* committed events the store did not take, applied again before the
     * next batch (the committer's alone) */
    br_event *ev_unstored;
    char (*ev_unstored_ids)[2][BR_ID_MAX];
    size_t ev_unstored_n;

    metrics m;
    br__srv_guard *guard; /* the connection guard (guard.c) */
    /* writes need no key: bound to loopback, or allow_open_writes */
    int writes_open;
};

static srv_snap *snap_acquire(br_server *s)
{
    pthread_mutex_lock(&s->snap_mu);
    srv_snap *p = s->snap;
    if (p) atomic_fetch_add(&p->refs, 1);
    pthread_mutex_unlock(&s->snap_mu);
    return p;
}

static void store_failed(br_server *s, br_status st, const char *what)
{
    atomic_fetch_add(&s->m.store_errors, 1);
    if (st != BR_ENET) return; /* a bad key or record is not an outage */
    pthread_mutex_lock(&s->err_mu);
    snprintf(s->store_err, sizeof s->store_err, "%s: %s", what, br_error_detail());
    pthread_mutex_unlock(&s->err_mu);
    /* On a cluster a request that failed met one node down (its readers
     * get the degraded answer until a replica takes over); the others
     * still answer. Only the watcher's probe, which reads the version
     * pointer, declares the whole store unreachable. */
    if (s->is_cluster && strcmp(what, "probe") != 0) return;
    if (atomic_exchange(&s->store_ok, 0)) {
        br_log(BR_LOG_WARN, "serve: store unreachable (%s): degraded", what);
        pthread_mutex_lock(&s->w_mu);
        pthread_cond_signal(&s->w_cv);
        pthread_mutex_unlock(&s->w_mu);
    }
}

/* The store when it is believed reachable, else NULL (degraded). */
static br_store *store_get(br_server *s)
{
    return atomic_load(&s->store_ok) ? atomic_load(&s->store) : NULL;
}

/* ------------------------------------------------------- output buffer -- */

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;

static void buf_destroy(void *p)
{
    br__sb_free(p);
    br_free(p);
}

static void buf_init(void)
{
    pthread_key_create(&buf_key, buf_destroy);
}

static br__sbuf *tbuf(void)
{
    pthread_once(&buf_once, buf_init);
    br__sbuf *b = pthread_getspecific(buf_key);
    if (!b) {
        b = br_calloc(1, sizeof *b);
        if (!b) return NULL;
        pthread_setspecific(buf_key, b);
    }
    br__sb_reset(b);
    return b;
}

/* ------------------------------------------------------------ replies -- */

static void count(br_server *s, route r, int status, uint64_t t0)
{
    size_t si = 0;
    while (si < N_STATUS && status_list[si] != status) si++;
    if (si < N_STATUS) atomic_fetch_add(&s->m.requests[r][si], 1);
    uint64_t dt = br__srv_now_ns() - t0;
    double sec = (double)dt / 1e9;
    size_t b = 0;
    while (b < N_BUCKET && sec > bucket_s[b]) b++;
    atomic_fetch_add(&s->m.bucket[r][b], 1);
    atomic_fetch_add(&s->m.sum_ns[r], dt);
}

static enum MHD_Result reply(br_server *s, struct MHD_Connection *con, route r, uint64_t t0,
                             int status, const char *ctype, const void *body, size_t len,
                             const char *cache)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    if (ctype) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache ? cache : "no-store");
    const char *allow = route_allow(r);
    if ((status == 405 || status == 204) && allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (s->cors) { /* --cors ORIGIN: that origin's pages may call the API */
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", s->cors);
        if (strcmp(s->cors, "*") != 0) MHD_add_response_header(resp, "Vary", "Origin");
        if (status == 204 && allow) { /* the answer to a preflight */
            MHD_add_response_header(resp, "Access-Control-Allow-Methods", allow);
            MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                    "Content-Type, X-API-Key");
            MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        }
    }
    enum MHD_Result ret = MHD_queue_response(con, (unsigned)status, resp);
    MHD_destroy_response(resp);
    count(s, r, status, t0);
    return ret;
}

static enum MHD_Result reply_json(br_server *s, struct MHD_Connection *con, route r, uint64_t t0,
                                  int status, br__sbuf *b)
{
    if (b->oom) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        return reply(s, con, r, t0, 500, "application/json", oom, sizeof oom - 1, NULL);
    }
    return reply(s, con, r, t0, status, "application/json", b->p, b->len, NULL);
}

static const char *error_code(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 401:
        return "unauthorized";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 409:
        return "conflict";
    case 413:
        return "payload_too_large";
    case 429:
        return "limit_reached";
    case 503:
        return "unavailable";
    default:
        return "internal";
    }
}

static enum MHD_Result reply_error(br_server *s, struct MHD_Connection *con, route r, uint64_t t0,
                                   int status, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static enum MHD_Result reply_error(br_server *s, struct MHD_Connection *con, route r, uint64_t t0,
                                   int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    br__sbuf *b = tbuf();
    br__sbuf local = {0};
    if (!b) b = &local;
    br__sb_str(b, "{\"error\":{\"code\":\"");
    br__sb_str(b, error_code(status));
    br__sb_str(b, "\",\"message\":");
    br__sb_json_str(b, msg);
    br__sb_str(b, "}}");
    enum MHD_Result ret = reply_json(s, con, r, t0, status, b);
    br__sb_free(&local);
    return ret;
}

/* The status for a library error. */
static int http_status(br_status st)
{
    switch (st) {
    case BR_EINVAL:
    case BR_EPARSE:
    case BR_ERANGE:
        return 400;
    case BR_ENOTFOUND:
        return 404;
    case BR_EEXIST:
        return 409;
    case BR_ENET:
    case BR_EUNSUPPORTED:
        return 503;
    default:
        return 500;
    }
}

/* ----------------------------------------------------------- request args -- */

typedef struct qargs {
    size_t n;
    int mobile, hour, explain;
} qargs;

/* One rule for the explain flag, in a query and in a JSON body. */
#define FLAG_RULE "explain must be 0, 1, false or true"
static int parse_flag(const char *v)
{
    if (!strcmp(v, "1") || !strcmp(v, "true")) return 1;
    if (!strcmp(v, "0") || !strcmp(v, "false")) return 0;
    return -1;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int parse_uint(const char *v, long lo, long hi, long *out)
{
    if (!v || !*v) return -1;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

/* n, device, hour, explain; returns NULL or the message of a 400. */
static const char *parse_qargs(struct MHD_Connection *con, qargs *q, char *msg, size_t cap)
{
    q->n = 10;
    q->mobile = 0;
    q->hour = -1;
    q->explain = 0;
    long x;
    const char *v = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "n");
    if (v) {
        if (parse_uint(v, 1, BR_SERVE_N_MAX, &x)) {
            snprintf(msg, cap, "n must be an integer in 1..%d", BR_SERVE_N_MAX);
            return msg;
        }
        q->n = (size_t)x;
    }
    v = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "device");
    if (v) {
        if (!strcmp(v, "mobile"))
            q->mobile = 1;
        else if (strcmp(v, "desktop") != 0) {
            snprintf(msg, cap, "device must be mobile or desktop");
            return msg;
        }
    }
    v = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "hour");
    if (v) {
        if (parse_uint(v, 0, 23, &x)) {
            snprintf(msg, cap, "hour must be an integer in 0..23");
            return msg;
        }
        q->hour = (int)x;
    }
    v = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "explain");
    if (v && (q->explain = parse_flag(v)) < 0) {
        snprintf(msg, cap, "%s", FLAG_RULE);
        return msg;
    }
    return NULL;
}

/* The list filters (?tags=, exclude_tags=, authors=; filter.c) into f:
 * NULL, or the message of a 400. Caller holds p->add_lock (shared). */
static const char *parse_filter(struct MHD_Connection *con, srv_snap *p, srv_filter *f, char *msg,
                                size_t cap)
{
    static const char *const name[SRV_F_KINDS] = {"tags", "exclude_tags", "authors"};
    memset(f->n, 0, sizeof f->n);
    for (int k = 0; k < SRV_F_KINDS; k++) {
        const char *v = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, name[k]);
        const char *bad = v ? br__srv_filter_parse(p, f, k, v, msg, cap) : NULL;
        if (bad) return bad;
    }
    return NULL;
}

/* ------------------------------------------------------- URL checking -- */

/* libmicrohttpd's unescaping of the path and of every query argument, with
 * one difference: %00 becomes the overlong (invalid) UTF-8 pair C0 80, so
 * the strings stay whole and url_problem() still sees the NUL. */
static size_t unescape(void *cls, struct MHD_Connection *con, char *s)
{
    (void)cls;
    (void)con;
    char *w = s;
    for (const char *r = s; *r;) {
        int hi, lo;
        if (r[0] == '%' && (hi = hex_digit(r[1])) >= 0 && (lo = hex_digit(r[2])) >= 0) {
            unsigned char c = (unsigned char)(hi << 4 | lo);
            if (c) {
                *w++ = (char)c;
            } else {
                *w++ = (char)0xC0;
                *w++ = (char)0x80;
            }
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = 0;
    return (size_t)(w - s);
}

/* NULL when s is valid UTF-8 without NUL, else what is wrong. */
static const char *text_problem(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        if (p[i] == 0xC0 && p[i + 1] == 0x80) return "an encoded NUL (%00)";
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k < 0) return "bytes that are not UTF-8";
        i += (size_t)k;
    }
    return NULL;
}

typedef struct arg_check {
    char *msg;
    size_t cap;
} arg_check;

static enum MHD_Result arg_checker(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    arg_check *c = cls;
    const char *bad = text_problem(key);
    if (bad) {
        snprintf(c->msg, c->cap, "a query argument's name has %s", bad);
        return MHD_NO;
    }
    if (value && (bad = text_problem(value))) {
        /* the name is valid UTF-8 here, so it may be quoted */
        snprintf(c->msg, c->cap, "query argument '%.40s' has %s", key, bad);
        return MHD_NO;
    }
    return MHD_YES;
}

/* NULL when the request's path and query are valid UTF-8 without NUL
 * bytes (percent-decoded), else the message of a 400: every id and
 * argument goes into JSON, and a NUL would cut an id short. */
static const char *url_problem(struct MHD_Connection *con, const char *url, char *msg, size_t cap)
{
    const char *bad = text_problem(url);
    if (bad) {
        snprintf(msg, cap, "the URL's path has %s", bad);
        return msg;
    }
    arg_check c = {msg, cap};
    msg[0] = 0;
    MHD_get_connection_values(con, MHD_GET_ARGUMENT_KIND, arg_checker, &c);
    return msg[0] ? msg : NULL;
}

/* ---------------------------------------------------- in-memory recent -- */

static uint32_t hash_id(const char *id)
{
    return (uint32_t)br_fnv1a64(id, strlen(id));
}

static void mem_push(br_server *s, const br_event *e)
{
    if (!s->mem) return;
    pthread_mutex_lock(&s->mem_mu);
    mem_entry *m = &s->mem[hash_id(e->user_id) % MEM_SLOTS];
    if (strcmp(m->user, e->user_id) != 0) {
        memset(m, 0, sizeof *m);
        snprintf(m->user, sizeof m->user, "%s", e->user_id);
    }
    snprintf(m->book[m->head], BR_ID_MAX, "%s", e->book_id);
    /* a dislike (no reader mean here: the rule's absolute half) in bit 7 */
    int dislike = e->type == BR_EVENT_RATING && br_rating_is_dislike(e->value, NAN);
    m->type[m->head] = (uint8_t)((unsigned)e->type | (dislike ? 0x80u : 0u));
    m->head = (m->head + 1) % MEM_BOOKS;
    if (m->n < MEM_BOOKS) m->n++;
    pthread_mutex_unlock(&s->mem_mu);
}

/* The reader's held books, most recent first, as indices of snapshot p. */
static size_t mem_get(br_server *s, srv_snap *p, const char *user, uint32_t *books, int *types)
{
    size_t n = 0;
    if (!s->mem) return 0;
    pthread_mutex_lock(&s->mem_mu);
    mem_entry *m = &s->mem[hash_id(user) % MEM_SLOTS];
    if (!strcmp(m->user, user))
        for (uint32_t i = 0; i < m->n; i++) {
            uint32_t at = (m->head + MEM_BOOKS - 1 - i) % MEM_BOOKS;
            int64_t b = br__srv_snap_find(p, m->book[at]);
            if (b < 0) continue;
            books[n] = (uint32_t)b;
            types[n++] = (m->type[at] & 0x7f) | (m->type[at] & 0x80 ? SRV_SEED_DISLIKED : 0);
        }
    pthread_mutex_unlock(&s->mem_mu);
    return n;
}

/* ------------------------------------------------------------ handlers -- */

static void snap_body_head(br__sbuf *b, const char *user, const srv_snap *p)
{
    br__sb_str(b, "{");
    if (user) {
        br__sb_str(b, "\"user_id\":");
        br__sb_json_str(b, user);
        br__sb_str(b, ",");
    }
    br__sb_str(b, "\"model_version\":");
    br__sb_json_str(b, p->version);
    br__sb_str(b, ",");
}

/* What the routes on one reader or book start with: the id checked (400),
 * the query parsed when q is given (400), the served snapshot taken (503).
 * NULL: the error is queued and *ret is what the handler returns. */
static srv_snap *route_start(br_server *s, struct MHD_Connection *con, route r, uint64_t t0,
                             const char *id, const char *what, qargs *q, enum MHD_Result *ret)
{
    char msg[128];
    const char *bad;
    if (br_store_check_id(id, what)) {
        *ret = reply_error(s, con, r, t0, 400, "%s", br_error_detail());
        return NULL;
    }
    if (q && (bad = parse_qargs(con, q, msg, sizeof msg))) {
        *ret = reply_error(s, con, r, t0, 400, "%s", bad);
        return NULL;
    }
    srv_snap *p = snap_acquire(s);
    if (!p) *ret = reply_error(s, con, r, t0, 503, "no model loaded");
    return p;
}

static enum MHD_Result h_recs_user(br_server *s, struct MHD_Connection *con, uint64_t t0,
                                   const char *user)
{
    const route r = R_RECS_USER;
    qargs q;
    enum MHD_Result ret;
    srv_snap *p = route_start(s, con, r, t0, user, "reader", &q, &ret);
    if (!p) return ret;

    uint32_t rec_idx[BR_SERVE_N_MAX], seen_idx[SRV_SEEN_IDX];
    float rec_score[BR_SERVE_N_MAX];
    br_store_interaction recent[BR_STORE_RECENT_MAX];
    uint32_t seeds[BR_STORE_RECENT_MAX];
    int types[BR_STORE_RECENT_MAX];
    size_t n_recs = 0, n_recent = 0, n_seeds = 0, n_seen = 0, n_seen_idx = 0;
    br_store_ids *seen = NULL;
    int degraded = 0;
    br__sbuf *b = tbuf();
    if (!b) {
        br__srv_snap_release(p);
        return MHD_NO;
    }
    /* held across the store read: the resolver maps ids to indices in the
     * snapshot, whose added books a POST /api/books may be extending */
    pthread_rwlock_rdlock(&p->add_lock);
    srv_filter filter;
    char fmsg[256];
    const char *fbad = parse_filter(con, p, &filter, fmsg, sizeof fmsg);
    if (fbad) {
        pthread_rwlock_unlock(&p->add_lock);
        br__srv_snap_release(p);
        return reply_error(s, con, r, t0, 400, "%s", fbad);
    }
    br_store *st = store_get(s);
    if (st) {
        /* One store call: one LMDB transaction, one Redis round trip; the
         * ids mapped to book indices as they are read. */
        br_store_reader rd = br__srv_reader(p, &s->opt.rank, recent, rec_idx, rec_score, seen_idx);
        br_status e = br_store_get_reader(st, user, &rd);
        if (e) {
            store_failed(s, e, "read");
            degraded = 1;
        } else {
            n_recs = rd.n_recs;
            n_recent = rd.n_recent;
            seen = rd.seen; /* only for a seen set beyond SRV_SEEN_IDX */
            n_seen = rd.n_seen;
            n_seen_idx = rd.n_seen_idx;
        }
    } else {
        degraded = 1;
    }
    if (degraded) {
        n_seeds = mem_get(s, p, user, seeds, types);
        n_recent = n_seeds;
    } else {
        n_seeds = br__srv_seeds(p, recent, n_recent, seeds, types);
    }
    rank_input in = {.rec_idx = rec_idx,
                     .rec_score = rec_score,
                     .n_recs = n_recs,
                     .seeds = seeds,
                     .seed_types = types,
                     .n_seeds = n_seeds,
                     .interactions = n_recent,
                     .seen_ids = seen ? seen->ids : NULL,
                     .n_seen_ids = seen ? seen->n : 0,
                     .seen_idx = seen_idx,
                     .n_seen_idx = n_seen_idx,
                     .degraded = degraded,
                     .mobile = q.mobile,
                     .hour = q.hour,
                     .explain = q.explain,
                     .n = q.n,
                     .filter = &filter};
    if (n_seen > in.interactions) in.interactions = n_seen;
    snap_body_head(b, user, p);
    br_status e = br__srv_rank(p, &s->opt.rank, &in, b);
    br__sb_str(b, "}");
    pthread_rwlock_unlock(&p->add_lock);
    br_free(seen);
    br__srv_snap_release(p);
    if (e) return reply_error(s, con, r, t0, 500, "%s", br_error_detail());
    return reply_json(s, con, r, t0, 200, b);
}

/* Ids in JSON may be strings or integers (as in the input files). */
static int json_id(json_t *v, char *buf, size_t cap)
{
    if (json_is_string(v)) {
        if (json_string_length(v) >= cap) return -1;
        snprintf(buf, cap, "%s", json_string_value(v));
        return (size_t)strlen(buf) == json_string_length(v) ? 0 : -1; /* no NUL inside */
    }
    if (json_is_integer(v)) {
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 0;
    }
    return -1;
}

/* The explain flag in a body: as in a query (the same words), or the
 * JSON literals and numbers they name. */
static int json_flag(json_t *v)
{
    if (json_is_boolean(v)) return json_is_true(v);
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        return x == 0 || x == 1 ? (int)x : -1;
    }
    return json_is_string(v) ? parse_flag(json_string_value(v)) : -1;
}

static enum MHD_Result h_session(br_server *s, struct MHD_Connection *con, uint64_t t0,
                                 const char *body, size_t len)
{
    const route r = R_RECS_SESSION;
    char msg[128];
    qargs q;
    const char *bad = parse_qargs(con, &q, msg, sizeof msg);
    if (bad) return reply_error(s, con, r, t0, 400, "%s", bad);
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    if (!doc) return reply_error(s, con, r, t0, 400, "bad JSON: %s", jerr.text);
    json_t *list = json_is_array(doc) ? doc : json_object_get(doc, "book_ids");
    if (!json_is_array(list)) {
        json_decref(doc);
        return reply_error(s, con, r, t0, 400, "expected {\"book_ids\": [...]} or an array");
    }
    if (json_is_object(doc)) {
        json_t *jn = json_object_get(doc, "n");
        if (jn) {
            if (!json_is_integer(jn) || json_integer_value(jn) < 1 ||
                json_integer_value(jn) > BR_SERVE_N_MAX) {
                json_decref(doc);
                return reply_error(s, con, r, t0, 400, "n must be an integer in 1..%d",
                                   BR_SERVE_N_MAX);
            }
            q.n = (size_t)json_integer_value(jn);
        }
        json_t *je = json_object_get(doc, "explain");
        if (je && (q.explain = json_flag(je)) < 0) {
            json_decref(doc);
            return reply_error(s, con, r, t0, 400, "%s", FLAG_RULE);
        }
    }
    size_t nl = json_array_size(list);
    if (nl > BR_SERVE_N_MAX) {
        json_decref(doc);
        return reply_error(s, con, r, t0, 400, "at most %d book ids", BR_SERVE_N_MAX);
    }
    srv_snap *p = snap_acquire(s);
    if (!p) {
        json_decref(doc);
        return reply_error(s, con, r, t0, 503, "no model loaded");
    }
    uint32_t seeds[BR_SERVE_N_MAX];
    size_t n_seeds = 0;
    pthread_rwlock_rdlock(&p->add_lock);
    int status = 0;
    srv_filter filter;
    char fmsg[256];
    const char *fbad = parse_filter(con, p, &filter, fmsg, sizeof fmsg);
    if (fbad) {
        status = 400;
        snprintf(msg, sizeof msg, "%s", fbad);
        nl = 0;
    }
    /* the latest click last in the list: seeds most recent first */
    for (size_t i = nl; i-- > 0;) {
        char id[BR_ID_MAX];
        if (json_id(json_array_get(list, i), id, sizeof id) || br_store_check_id(id, "book id")) {
            status = 400;
            snprintf(msg, sizeof msg, "book_ids[%zu]: not a valid book id", i);
            break;
        }
        int64_t bi = br__srv_snap_find(p, id);
        if (bi >= 0) seeds[n_seeds++] = (uint32_t)bi; /* unknown ids are ignored */
    }
    json_decref(doc);
    br__sbuf *b = tbuf();
    br_status e = BR_OK;
    if (!status && b) {
        rank_input in = {.seeds = seeds,
                         .n_seeds = n_seeds,
                         .interactions = n_seeds,
                         .mobile = q.mobile,
                         .hour = q.hour,
                         .explain = q.explain,
                         .n = q.n,
                         .filter = &filter};
        snap_body_head(b, NULL, p);
        e = br__srv_rank(p, &s->opt.rank, &in, b);
        br__sb_str(b, "}");
    }
    pthread_rwlock_unlock(&p->add_lock);
    br__srv_snap_release(p);
    if (status) return reply_error(s, con, r, t0, status, "%s", msg);
    if (!b || e) return reply_error(s, con, r, t0, 500, "%s", b ? br_error_detail() : "memory");
    return reply_json(s, con, r, t0, 200, b);
}

static enum MHD_Result h_book(br_server *s, struct MHD_Connection *con, uint64_t t0, const char *id)
{
    const route r = R_BOOK;
    enum MHD_Result ret;
    srv_snap *p = route_start(s, con, r, t0, id, "book", NULL, &ret);
    if (!p) return ret;
    /* the image URL is the store's: `train` publishes the catalogue's image_url column there */
    char image[2048] = "";
    br_store *st = store_get(s);
    if (st) {
        br_store_book *sbk = NULL;
        br_status e = br_store_get_book(st, id, &sbk);
        if (!e)
            snprintf(image, sizeof image, "%s", sbk->image_url);
        else if (e != BR_ENOTFOUND)
            store_failed(s, e, "book");
        br_free(sbk);
    }
    pthread_rwlock_rdlock(&p->add_lock);
    int64_t bi = br__srv_snap_find(p, id);
    br__sbuf *b = tbuf();
    if (bi >= 0 && b) {
        const char *title, *authors, *genre, *tags, *desc;
        int32_t year;
        if (bi < p->n_base) {
            const br_book *bk = br_catalog_book(p->cat, (uint32_t)bi);
            title = bk->title, authors = bk->authors, genre = bk->genre, tags = bk->tags;
            desc = bk->description, year = bk->year;
        } else {
            const srv_added *a = &p->added[bi - p->n_base];
            title = a->title, authors = a->authors, genre = a->genre, tags = a->tags;
            desc = a->description, year = a->year;
        }
        int32_t tribe = p->books[bi].tribe;
        br__sb_str(b, "{\"book_id\":");
        br__sb_json_str(b, id);
        br__sb_str(b, ",\"title\":");
        br__sb_json_str(b, title);
        br__sb_str(b, ",\"authors\":");
        br__sb_json_str(b, authors);
        br__sb_str(b, ",\"genre\":");
        br__sb_json_str(b, genre);
        br__sb_str(b, ",\"tags\":");
        br__sb_json_str(b, tags);
        if (year == BR_YEAR_UNKNOWN)
            br__sb_str(b, ",\"year\":null");
        else
            br__sb_printf(b, ",\"year\":%d", year);
        br__sb_printf(b, ",\"tribe\":%d,\"tribe_name\":", tribe);
        br__sb_json_str(b, br__srv_tribe_name(p, tribe));
        br__sb_str(b, ",\"image_url\":");
        br__sb_json_str(b, image);
        br__sb_str(b, ",\"description\":");
        br__sb_json_str(b, desc);
        br__sb_str(b, ",\"model_version\":");
        br__sb_json_str(b, p->version);
        br__sb_str(b, "}");
    }
    pthread_rwlock_unlock(&p->add_lock);
    br__srv_snap_release(p);
    if (bi < 0) return reply_error(s, con, r, t0, 404, "unknown book '%s'", id);
    if (!b) return MHD_NO;
    return reply_json(s, con, r, t0, 200, b);
}

static enum MHD_Result h_similar(br_server *s, struct MHD_Connection *con, uint64_t t0,
                                 const char *id)
{
    const route r = R_BOOK_SIMILAR;
    qargs q;
    enum MHD_Result ret;
    srv_snap *p = route_start(s, con, r, t0, id, "book", &q, &ret);
    if (!p) return ret;
    pthread_rwlock_rdlock(&p->add_lock);
    int64_t bi = br__srv_snap_find(p, id);
    br__sbuf *b = tbuf();
    br_status e = BR_OK;
    if (bi >= 0 && b) {
        int32_t buf_ids[BR_SERVE_N_MAX + 1];
        float buf_sims[BR_SERVE_N_MAX + 1];
        const int32_t *ids = buf_ids;
        const float *sims = buf_sims;
        size_t found = 0;
        if (q.n <= SRV_NBR_K) { /* the kept list */
            float *kept;
            ids = srv_nbr(p, (uint32_t)bi, &kept);
            sims = kept;
            found = SRV_NBR_K;
        } else {
            e = br_hnsw_search(p->hnsw, br__srv_snap_emb(p, (uint32_t)bi), q.n + 1, 64, buf_ids,
                               buf_sims, &found);
        }
        snap_body_head(b, NULL, p);
        br__sb_str(b, "\"book_id\":");
        br__sb_json_str(b, id);
        br__sb_str(b, ",\"similar\":[");
        size_t out = 0;
        for (size_t j = 0; !e && j < found && out < q.n; j++) {
            if (ids[j] < 0 || ids[j] == bi) continue;
            br__sb_str(b, out ? ",{" : "{");
            br__sb_put(b, p->books[ids[j]].frag, p->books[ids[j]].frag_len);
            br__sb_str(b, ",\"score\":");
            br__sb_score(b, (double)sims[j]);
            br__sb_str(b, "}");
            out++;
        }
        br__sb_str(b, "]}");
    }
    pthread_rwlock_unlock(&p->add_lock);
    br__srv_snap_release(p);
    if (bi < 0) return reply_error(s, con, r, t0, 404, "unknown book '%s'", id);
    if (!b || e) return reply_error(s, con, r, t0, 500, "%s", b ? br_error_detail() : "memory");
    return reply_json(s, con, r, t0, 200, b);
}

#define EVENTS_MAX 1000

/* Event commits. The event log is the commit point: an event is applied
 * to the store (seen sets, latest interactions) only once the log holds it,
 * so a 503 means nothing happened (a retry applies nothing twice) and an
 * acknowledged event is never lost. A store that fails after the log took
 * the events answers 200 all the same, with "stored": false: the committer
 * keeps them (up to EV_UNSTORED_MAX) and applies them again before its next
 * batch (applying an event twice changes nothing: seen sets are sets, and
 * a history keeps one copy of an identical interaction); past that, or
 * after a restart, `bookrec store restore` (or the next train's publish)
 * brings them back from the log.
 *
 * The log's fdatasync and the store's commit run on one committer thread,
 * never on libmicrohttpd's pool threads: a handler checks the batch,
 * suspends its connection and queues a job; the committer takes every job
 * queued (one log append and one store transaction for all of them: a
 * group commit), then resumes each connection, whose handler is called
 * again and answers. So reads on the same pool thread never wait for a
 * disk flush. */
typedef struct ev_job {
    struct ev_job *next;
    struct MHD_Connection *con;
    uint64_t t0; /* with con, names the request (a connection is reused) */
    br_event *ev;
    char (*ids)[2][BR_ID_MAX];
    size_t n;
    int status, stored; /* the answer, set by the committer */
    char msg[400];      /* room for the fixed text and a 200-byte reason */
} ev_job;

#define EV_UNSTORED_MAX 10000

/* Keeps events the store did not take for the next attempt (copies). */
static void ev_keep_unstored(br_server *s, const br_event *ev, size_t n)
{
    size_t have = s->ev_unstored_n, room = EV_UNSTORED_MAX - have, k = n < room ? n : room;
    br_event *e = k ? br_realloc(s->ev_unstored, (have + k) * sizeof *e) : NULL;
    if (e) s->ev_unstored = e;
    char(*ids)[2][BR_ID_MAX] = e ? br_realloc(s->ev_unstored_ids, (have + k) * sizeof *ids) : NULL;
    if (ids) s->ev_unstored_ids = ids;
    if (!ids) k = 0;
    for (size_t i = 0; i < k; i++) {
        snprintf(ids[have + i][0], BR_ID_MAX, "%s", ev[i].user_id);
        snprintf(ids[have + i][1], BR_ID_MAX, "%s", ev[i].book_id);
        e[have + i] = ev[i];
    }
    s->ev_unstored_n = have + k;
    for (size_t i = 0; i < s->ev_unstored_n; i++) { /* the ids moved with a realloc */
        s->ev_unstored[i].user_id = s->ev_unstored_ids[i][0];
        s->ev_unstored[i].book_id = s->ev_unstored_ids[i][1];
    }
    if (k < n)
        br_log(BR_LOG_WARN,
               "serve: %zu events are in the log but not in the store, more than are kept to "
               "retry: `bookrec store restore` brings them back",
               n - k);
}

/* Applies a batch to the store. Events the store missed earlier go first,
 * in the same transaction as the batch, so the store sees them in the
 * log's order; the kept copies are forgotten once it took them, and on a
 * failure the batch joins them. */
static br_status ev_apply(br_server *s, br_store *st, const br_event *ev, size_t n)
{
    if (!st) {
        ev_keep_unstored(s, ev, n);
        return br_error(BR_ENET, "store unreachable");
    }
    if (!s->ev_unstored_n) {
        br_status e = br_store_apply_events(st, ev, n);
        if (e) ev_keep_unstored(s, ev, n);
        return e;
    }
    size_t missed = s->ev_unstored_n;
    ev_keep_unstored(s, ev, n);
    br_status e = br_store_apply_events(st, s->ev_unstored, s->ev_unstored_n);
    if (e) return e;
    br_log(BR_LOG_INFO, "serve: the store took the %zu events it had missed", missed);
    br_free(s->ev_unstored);
    br_free(s->ev_unstored_ids);
    s->ev_unstored = NULL;
    s->ev_unstored_ids = NULL;
    s->ev_unstored_n = 0;
    return BR_OK;
}

static void ev_job_free(ev_job *j)
{
    if (!j) return;
    br_free(j->ev);
    br_free(j->ids);
    br_free(j);
}

/* Commits a chain of jobs: the log first (every job 503 when it fails:
 * nothing was written), then the store. */
static void ev_commit(br_server *s, ev_job *jobs)
{
    size_t total = 0;
    for (ev_job *j = jobs; j; j = j->next) total += j->n;
    br_event *all = br_malloc(total * sizeof *all);
    br_events *log = atomic_load(&s->events);
    br_status e = !all ? br_error(BR_ENOMEM, "event batch") : BR_OK;
    if (all) {
        size_t k = 0;
        for (ev_job *j = jobs; j; j = j->next) {
            memcpy(all + k, j->ev, j->n * sizeof *all);
            k += j->n;
        }
    }
    if (!e && !log) e = br_error(BR_EIO, "event log unavailable");
    if (!e) e = br_events_append(log, all, total);
    if (e) {
        if (log) store_failed(s, e, "event log");
        for (ev_job *j = jobs; j; j = j->next) {
            j->status = e == BR_ENOMEM ? 500 : 503;
            snprintf(j->msg, sizeof j->msg, "event log: %s (nothing stored: retry)",
                     br_error_detail());
        }
        br_free(all);
        return;
    }
    for (size_t i = 0; i < total; i++) mem_push(s, &all[i]);
    atomic_fetch_add(&s->m.events, total);
    br_store *st = store_get(s);
    e = ev_apply(s, st, all, total);
    char why[200] = "";
    if (e) {
        snprintf(why, sizeof why, "%s", br_error_detail());
        if (st) store_failed(s, e, "apply events");
        br_log(BR_LOG_WARN, "serve: %zu events are in the log but not in the store (%s)", total,
               why);
    }
    for (ev_job *j = jobs; j; j = j->next) {
        j->status = 200;
        j->stored = e == BR_OK;
        snprintf(j->msg, sizeof j->msg,
                 "in the event log, not yet in the store (%s): applied again with the next "
                 "events, or by `bookrec store restore`",
                 why);
    }
    br_free(all);
}

static void *ev_committer(void *arg)
{
    br_server *s = arg;
    pthread_mutex_lock(&s->ev_mu);
    for (;;) {
        while (!s->ev_queue && !s->ev_stopping) pthread_cond_wait(&s->ev_cv, &s->ev_mu);
        if (!s->ev_queue) break; /* stopping, and nothing left to commit */
        ev_job *batch = s->ev_queue;
        s->ev_queue = NULL;
        s->ev_tail = &s->ev_queue;
        pthread_mutex_unlock(&s->ev_mu);
        ev_commit(s, batch);
        br_error_clear();
        pthread_mutex_lock(&s->ev_mu);
        while (batch) { /* answered: to the done list, then the handler again */
            ev_job *j = batch;
            struct MHD_Connection *con = j->con;
            batch = j->next;
            j->next = s->ev_done;
            s->ev_done = j;
            pthread_mutex_unlock(&s->ev_mu);
            MHD_resume_connection(con); /* j may be freed from here on */
            pthread_mutex_lock(&s->ev_mu);
        }
    }
    pthread_mutex_unlock(&s->ev_mu);
    return NULL;
}

static void ev_init(br_server *s)
{
    pthread_mutex_init(&s->ev_mu, NULL);
    pthread_cond_init(&s->ev_cv, NULL);
    s->ev_tail = &s->ev_queue;
}

/* Commits what is queued and stops the committer (before the daemon stops:
 * every suspended connection is resumed with its answer). */
static void ev_stop(br_server *s)
{
    pthread_mutex_lock(&s->ev_mu);
    s->ev_stopping = 1;
    int started = s->ev_started;
    s->ev_started = 0;
    pthread_cond_signal(&s->ev_cv);
    pthread_mutex_unlock(&s->ev_mu);
    if (started) pthread_join(s->ev_thread, NULL);
}

static void ev_fini(br_server *s)
{
    while (s->ev_done) { /* answers whose connection closed before they were sent */
        ev_job *j = s->ev_done;
        s->ev_done = j->next;
        ev_job_free(j);
    }
    br_free(s->ev_unstored);
    br_free(s->ev_unstored_ids);
    pthread_mutex_destroy(&s->ev_mu);
    pthread_cond_destroy(&s->ev_cv);
}

/* The committed job of this request, taken off the done list; NULL when
 * the request has not been queued yet. */
static ev_job *ev_take_done(br_server *s, struct MHD_Connection *con, uint64_t t0)
{
    pthread_mutex_lock(&s->ev_mu);
    ev_job **pp = &s->ev_done;
    while (*pp && !((*pp)->con == con && (*pp)->t0 == t0)) pp = &(*pp)->next;
    ev_job *j = *pp;
    if (j) *pp = j->next;
    pthread_mutex_unlock(&s->ev_mu);
    return j;
}

/* Frees the committed jobs of a connection whose request ended without
 * its handler taking them (the client went away while it was suspended). */
static void ev_drop_done(br_server *s, struct MHD_Connection *con)
{
    pthread_mutex_lock(&s->ev_mu);
    for (ev_job **pp = &s->ev_done; *pp;) {
        ev_job *j = *pp;
        if (j->con != con) {
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        ev_job_free(j);
    }
    pthread_mutex_unlock(&s->ev_mu);
}

/* Queues a checked batch and suspends its connection: 0, or -1 when the
 * server is stopping or the committer cannot start (nothing queued). */
static int ev_enqueue(br_server *s, ev_job *j)
{
    pthread_mutex_lock(&s->ev_mu);
    int ok = !s->ev_stopping;
    if (ok && !s->ev_started) {
        ok = pthread_create(&s->ev_thread, NULL, ev_committer, s) == 0;
        s->ev_started = ok;
    }
    if (ok) {
        /* suspended before the committer can see the job (and resume it) */
        MHD_suspend_connection(j->con);
        j->next = NULL;
        *s->ev_tail = j;
        s->ev_tail = &j->next;
        pthread_cond_signal(&s->ev_cv);
    }
    pthread_mutex_unlock(&s->ev_mu);
    return ok ? 0 : -1;
}

/* The answer of a committed job. */
static enum MHD_Result ev_answer(br_server *s, struct MHD_Connection *con, uint64_t t0, ev_job *j)
{
    const route r = R_EVENTS;
    int status = j->status, stored = j->stored;
    size_t n = j->n;
    char msg[sizeof j->msg];
    memcpy(msg, j->msg, sizeof msg);
    ev_job_free(j);
    if (status != 200) return reply_error(s, con, r, t0, status, "%s", msg);
    br__sbuf *b = tbuf();
    if (!b) return MHD_NO;
    br__sb_printf(b, "{\"accepted\":%zu", n);
    if (!stored) {
        br__sb_str(b, ",\"stored\":false,\"message\":");
        br__sb_json_str(b, msg);
    }
    br__sb_str(b, "}");
    return reply_json(s, con, r, t0, 200, b);
}

static enum MHD_Result h_events(br_server *s, struct MHD_Connection *con, uint64_t t0,
                                const char *body, size_t len)
{
    const route r = R_EVENTS;
    ev_job *done = ev_take_done(s, con, t0);
    if (done) return ev_answer(s, con, t0, done); /* called again once committed */
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    if (!doc) return reply_error(s, con, r, t0, 400, "bad JSON: %s", jerr.text);
    json_t *list = json_is_array(doc) ? doc : json_object_get(doc, "events");
    size_t n = list ? json_array_size(list) : 1;
    if (list && !json_is_array(list)) n = 0;
    if (!json_is_object(doc) && !json_is_array(doc)) n = 0;
    if (n == 0 || n > EVENTS_MAX) {
        json_decref(doc);
        return reply_error(s, con, r, t0, 400,
                           "expected an event object, an array or {\"events\": [...]} of 1..%d",
                           EVENTS_MAX);
    }
    br_event *ev = br_calloc(n, sizeof *ev);
    char(*ids)[2][BR_ID_MAX] = br_calloc(n, sizeof *ids);
    if (!ev || !ids) {
        br_free(ev);
        br_free(ids);
        json_decref(doc);
        return reply_error(s, con, r, t0, 500, "out of memory");
    }
    int status = 0;
    char msg[300] = "";
    srv_snap *p = snap_acquire(s);
    if (!p) status = 503, snprintf(msg, sizeof msg, "no model loaded");
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < n && !status; i++) {
        json_t *o = list ? json_array_get(list, i) : doc;
        if (!json_is_object(o)) {
            status = 400, snprintf(msg, sizeof msg, "event %zu: not an object", i);
            break;
        }
        if (json_id(json_object_get(o, "user_id"), ids[i][0], BR_ID_MAX) ||
            json_id(json_object_get(o, "book_id"), ids[i][1], BR_ID_MAX)) {
            status = 400, snprintf(msg, sizeof msg, "event %zu: user_id and book_id required", i);
            break;
        }
        ev[i].user_id = ids[i][0];
        ev[i].book_id = ids[i][1];
        json_t *t = json_object_get(o, "type");
        ev[i].type = BR_EVENT_CLICK;
        if (t && (!json_is_string(t) || br_event_type_parse(json_string_value(t), &ev[i].type))) {
            status = 400,
            snprintf(msg, sizeof msg, "event %zu: type must be rating, click, view or purchase", i);
            break;
        }
        json_t *v = json_object_get(o, "value");
        ev[i].value = 1.0f;
        if (v) {
            /* a float's range first: converting 1e300 to float is undefined */
            if (!json_is_number(v) || !(fabs(json_number_value(v)) <= FLT_MAX)) {
                status = 400,
                snprintf(msg, sizeof msg, "event %zu: value must be a finite number", i);
                break;
            }
            ev[i].value = (float)json_number_value(v);
        }
        json_t *ts = json_object_get(o, "timestamp");
        ev[i].timestamp = now;
        if (ts) {
            if (!json_is_integer(ts)) {
                status = 400,
                snprintf(msg, sizeof msg, "event %zu: timestamp must be an integer", i);
                break;
            }
            ev[i].timestamp = json_integer_value(ts);
        }
        if (br_event_check(&ev[i], &p->rules)) { /* the one rule: ingest and train's too */
            status = 400, snprintf(msg, sizeof msg, "event %zu: %s", i, br_error_detail());
            break;
        }
        pthread_rwlock_rdlock(&p->add_lock);
        int64_t bi = br__srv_snap_find(p, ev[i].book_id);
        pthread_rwlock_unlock(&p->add_lock);
        if (bi < 0) {
            status = 404,
            snprintf(msg, sizeof msg, "event %zu: unknown book '%s'", i, ev[i].book_id);
            break;
        }
    }
    if (p) br__srv_snap_release(p);
    json_decref(doc);
    if (!status && !store_get(s)) {
        status = 503;
        pthread_mutex_lock(&s->err_mu);
        snprintf(msg, sizeof msg, "store unreachable: %s (nothing stored: retry)", s->store_err);
        pthread_mutex_unlock(&s->err_mu);
    } else if (!status && !atomic_load(&s->events)) {
        status = 503, snprintf(msg, sizeof msg, "event log unavailable (nothing stored: retry)");
    }
    ev_job *j = status ? NULL : br_calloc(1, sizeof *j);
    if (!status && !j) status = 500, snprintf(msg, sizeof msg, "out of memory");
    if (j) {
        j->con = con;
        j->t0 = t0;
        j->ev = ev;
        j->ids = ids;
        j->n = n;
        if (ev_enqueue(s, j) == 0) return MHD_YES; /* answered when resumed */
        j->ev = NULL, j->ids = NULL;
        ev_job_free(j);
        status = 503, snprintf(msg, sizeof msg, "the server is stopping (nothing stored: retry)");
    }
    br_free(ev);
    br_free(ids);
    return reply_error(s, con, r, t0, status, "%s", msg);
}

static br_status encoder_get(br_server *s, const srv_snap *p, br_encoder **out)
{
    pthread_mutex_lock(&s->enc_mu);
    br_status st = BR_OK;
    if (!s->enc || strcmp(s->enc_key, p->encoder) != 0) {
        br_encoder_close(s->enc);
        s->enc = NULL;
        char path[PATH_MAX];
        if (!strcmp(p->encoder, "use-lite"))
            st = br_encoder_model_path("use-lite", path, sizeof path);
        else
            snprintf(path, sizeof path, "%s", p->encoder);
        if (!st) st = br_encoder_open(path, &s->enc);
        if (!st) snprintf(s->enc_key, sizeof s->enc_key, "%s", p->encoder);
    }
    *out = s->enc;
    if (!st && br_encoder_dim(s->enc) != p->dim)
        st = br_error(BR_EFORMAT, "encoder '%s' gives %zu dimensions, the model has %zu",
                      p->encoder, br_encoder_dim(s->enc), p->dim);
    /* the encoder is read-only once open: the caller embeds outside the lock,
     * and only a version with another encoder (under reload_mu) replaces it */
    pthread_mutex_unlock(&s->enc_mu);
    return st;
}

static const char *json_str_field(json_t *o, const char *key, int *bad)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_string(v)) {
        *bad = 1;
        return NULL;
    }
    return json_string_value(v);
}

/* A posted book's embedding into vec ((p->dim,)), from its text in the
 * snapshot's template, by the snapshot's encoder. */
static br_status embed_added(br_server *s, const srv_snap *p, const srv_added *a, float *vec)
{
    br_encoder *enc = NULL;
    br_status e = encoder_get(s, p, &enc);
    if (e) return e;
    br_book bk = {.id = a->id,
                  .title = a->title,
                  .authors = a->authors ? a->authors : "",
                  .genre = a->genre ? a->genre : "",
                  .tags = a->tags ? a->tags : "",
                  .description = a->description ? a->description : "",
                  .year = a->year,
                  .image_url = ""};
    char *text = NULL;
    e = br_book_text(&bk, p->template_desc ? BR_TEXT_DESCRIPTION : BR_TEXT_FULL, &text);
    if (!e) e = br_encoder_embed(enc, (const char *const *)&text, 1, vec);
    br_free(text);
    return e;
}

typedef struct posted_sync_ctx {
    br_server *s;
    srv_snap *p;
    size_t added, failed;
} posted_sync_ctx;

static br_status posted_one(const br_store_posted *b, void *user)
{
    posted_sync_ctx *c = user;
    srv_snap *p = c->p;
    pthread_rwlock_rdlock(&p->add_lock);
    int known = br__srv_snap_find(p, b->book.id) >= 0; /* the catalogue's own wins */
    pthread_rwlock_unlock(&p->add_lock);
    if (known) return BR_OK;
    srv_added a = {.id = (char *)b->book.id,
                   .title = (char *)b->book.title,
                   .authors = (char *)b->book.authors,
                   .genre = (char *)b->book.genre,
                   .tags = (char *)b->tags,
                   .description = (char *)b->description,
                   .year = b->book.year};
    /* the stored vector when it is this model's kind; else embedded again */
    const char *tpl = p->template_desc ? "description" : "full";
    int same =
        b->dim == p->dim && !strcmp(b->encoder, p->encoder) && !strcmp(b->text_template, tpl);
    float *vec = same ? NULL : br_aligned_alloc(p->dim * sizeof *vec, BR_ALIGN);
    br_status e = same || vec ? BR_OK : br_error(BR_ENOMEM, "vector");
    if (!e && !same) e = embed_added(c->s, p, &a, vec);
    if (!e) e = br__srv_snap_add(p, &a, same ? b->vec : vec, NULL);
    br_aligned_free(vec);
    if (e) {
        if (!c->failed++)
            br_log(BR_LOG_WARN, "serve: posted book '%s' not served: %s", b->book.id,
                   br_error_detail());
        return BR_OK; /* one bad record does not hide the others */
    }
    c->added++;
    return BR_OK;
}

/* The books posted to the store (by this server before a restart, or by
 * another server on the same store) that snapshot p does not hold yet,
 * added to it. Caller holds reload_mu. */
static void posted_sync(br_server *s, srv_snap *p)
{
    br_store *st = store_get(s);
    if (!st || !p) return;
    posted_sync_ctx c = {s, p, 0, 0};
    br_status e = br_store_list_posted(st, posted_one, &c);
    if (e) {
        store_failed(s, e, "posted books");
        br_log(BR_LOG_WARN, "serve: posted books not read from the store: %s", br_error_detail());
    } else if (c.added) {
        br_log(BR_LOG_INFO, "serve: %zu posted book%s from the store served with %s", c.added,
               c.added == 1 ? "" : "s", p->version);
    }
    br_error_clear();
}

static enum MHD_Result h_books_post(br_server *s, struct MHD_Connection *con, uint64_t t0,
                                    const char *body, size_t len)
{
    const route r = R_BOOKS_POST;
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    if (!doc) return reply_error(s, con, r, t0, 400, "bad JSON: %s", jerr.text);
    char id[BR_ID_MAX];
    int bad = !json_is_object(doc);
    srv_added a = {0};
    const char *image = NULL;
    if (!bad &&
        (json_id(json_object_get(doc, "book_id"), id, sizeof id) || br_store_check_id(id, "book")))
        bad = 2;
    const char *title = bad ? NULL : json_str_field(doc, "title", &bad);
    if (!bad && (!title || !*title)) bad = 3;
    if (!bad) {
        a.id = id;
        a.title = (char *)title;
        a.authors = (char *)json_str_field(doc, "authors", &bad);
        a.genre = (char *)json_str_field(doc, "genre", &bad);
        a.tags = (char *)json_str_field(doc, "tags", &bad);
        a.description = (char *)json_str_field(doc, "description", &bad);
        image = json_str_field(doc, "image_url", &bad);
        if (image && strlen(image) > 2048) bad = 5;
        a.year = BR_YEAR_UNKNOWN;
        json_t *y = json_object_get(doc, "year");
        if (y && !json_is_null(y)) {
            if (!json_is_integer(y) || json_integer_value(y) < -5000 ||
                json_integer_value(y) > 5000)
                bad = 4;
            else
                a.year = (int32_t)json_integer_value(y);
        }
    }
    if (bad) {
        json_decref(doc);
        return reply_error(s, con, r, t0, 400,
                           "expected {\"book_id\", \"title\", optional \"authors\", \"genre\", "
                           "\"tags\", \"description\", \"image_url\" (strings; an image URL of "
                           "at most 2048 bytes), \"year\" (integer)}");
    }
    pthread_mutex_lock(&s->reload_mu); /* a reload carries the book over, or sees it after */
    srv_snap *p = snap_acquire(s);
    int status = 0;
    char msg[300] = "";
    float *vec = NULL;
    uint32_t index = 0;
    if (!p) status = 503, snprintf(msg, sizeof msg, "no model loaded");
    if (!status) {
        pthread_rwlock_rdlock(&p->add_lock);
        int exists = br__srv_snap_find(p, id) >= 0;
        size_t added = p->n_added;
        pthread_rwlock_unlock(&p->add_lock);
        if (exists)
            status = 409, snprintf(msg, sizeof msg, "book '%s' exists", id);
        else if (added >= s->opt.max_added) /* the memory posted books hold is bounded */
            status = 429, snprintf(msg, sizeof msg,
                                   "this version holds %zu posted books, its limit (--max-added): "
                                   "a new train folds them into the catalogue",
                                   added);
    }
    if (!status) {
        vec = br_aligned_alloc(p->dim * sizeof *vec, BR_ALIGN);
        br_status e = vec ? embed_added(s, p, &a, vec) : br_error(BR_ENOMEM, "vector");
        if (e) /* no encoder (its file gone, another dimension) is the server's state, not the
                  request's */
            status = e == BR_EINVAL || e == BR_ERANGE ? 400 : 503,
            snprintf(msg, sizeof msg, "cannot embed: %s", br_error_detail());
        else if ((e = br__srv_snap_add(p, &a, vec, &index)) != BR_OK)
            status = http_status(e), snprintf(msg, sizeof msg, "%s", br_error_detail());
    }
    /* kept in the store with its vector: a restart, a reload or another
     * server on the same store serves it again without embedding */
    int stored = 0;
    br_store *st = store_get(s);
    if (!status && st) {
        br_store_posted pb = {
            .book = {id, title, a.authors, a.genre, image, NULL, a.year, p->books[index].tribe},
            .tags = a.tags,
            .description = a.description,
            .encoder = p->encoder,
            .text_template = p->template_desc ? "description" : "full",
            .vec = vec,
            .dim = (uint32_t)p->dim,
            .posted_at = (int64_t)time(NULL)};
        br_status e = br_store_put_posted(st, &pb);
        if (e) store_failed(s, e, "put posted book");
        stored = e == BR_OK;
    }
    pthread_mutex_unlock(&s->reload_mu);
    br_aligned_free(vec);
    json_decref(doc);
    if (status) {
        if (p) br__srv_snap_release(p);
        return reply_error(s, con, r, t0, status, "%s", msg);
    }
    atomic_fetch_add(&s->m.books_added, 1);
    br__sbuf *b = tbuf();
    if (b) {
        pthread_rwlock_rdlock(&p->add_lock);
        int32_t tribe = p->books[index].tribe;
        br__sb_str(b, "{");
        br__sb_put(b, p->books[index].frag, p->books[index].frag_len);
        br__sb_str(b, ",\"tribe_name\":");
        br__sb_json_str(b, br__srv_tribe_name(p, tribe));
        br__sb_printf(b, ",\"stored\":%s,\"model_version\":", stored ? "true" : "false");
        br__sb_json_str(b, p->version);
        br__sb_str(b, "}");
        pthread_rwlock_unlock(&p->add_lock);
    }
    br__srv_snap_release(p);
    if (!b) return MHD_NO;
    return reply_json(s, con, r, t0, 201, b);
}

static enum MHD_Result h_user(br_server *s, struct MHD_Connection *con, uint64_t t0,
                              const char *user)
{
    const route r = R_USER;
    enum MHD_Result ret;
    srv_snap *p = route_start(s, con, r, t0, user, "reader", NULL, &ret);
    if (!p) return ret;
    br_store_interaction recent[BR_STORE_RECENT_MAX];
    size_t n_recent = 0, n_recs = 0;
    br_store_rec one;
    br_store_ids *seen = NULL;
    int degraded = 0;
    br_store *st = store_get(s);
    br_status e = BR_ENET;
    if (st) {
        br_store_reader rd = {
            .recs = &one, .recs_cap = 1, .recent = recent, .recent_cap = BR_STORE_RECENT_MAX};
        e = br_store_get_reader(st, user, &rd);
        if (e) {
            store_failed(s, e, "user");
        } else {
            n_recent = rd.n_recent;
            n_recs = rd.n_recs;
            seen = rd.seen;
        }
    }
    uint32_t held[MEM_BOOKS];
    int held_t[MEM_BOOKS];
    size_t n_held = 0;
    br__sbuf *b = tbuf();
    pthread_rwlock_rdlock(&p->add_lock);
    if (e) {
        degraded = 1;
        n_recent = 0;
        n_held = mem_get(s, p, user, held, held_t);
    }
    size_t n_seen = seen ? seen->n : 0;
    if (b) {
        br__sb_str(b, "{\"user_id\":");
        br__sb_json_str(b, user);
        br__sb_printf(b, ",\"known\":%s,\"seen_count\":%zu",
                      n_recent || n_seen || n_recs || n_held ? "true" : "false",
                      degraded ? n_held : n_seen);
        if (degraded) br__sb_str(b, ",\"degraded\":true");
        br__sb_str(b, ",\"history\":[");
        for (size_t i = 0; i < n_recent; i++) {
            int64_t bi = br__srv_snap_find(p, recent[i].book_id);
            br__sb_str(b, i ? ",{" : "{");
            if (bi >= 0) {
                br__sb_put(b, p->books[bi].frag, p->books[bi].frag_len);
            } else { /* a book this version does not know */
                br__sb_str(b, "\"book_id\":");
                br__sb_json_str(b, recent[i].book_id);
                br__sb_str(b, ",\"title\":null,\"tribe\":-1");
            }
            br__sb_printf(b, ",\"type\":\"%s\",\"value\":%.6g,\"ts\":%lld}",
                          br_event_type_name(recent[i].type), (double)recent[i].value,
                          (long long)recent[i].timestamp);
        }
        for (size_t i = 0; i < n_held; i++) {
            br__sb_str(b, i ? ",{" : "{");
            br__sb_put(b, p->books[held[i]].frag, p->books[held[i]].frag_len);
            br__sb_printf(b, ",\"type\":\"%s\",\"value\":null,\"ts\":null}",
                          br_event_type_name((br_event_type)held_t[i]));
        }
        br__sb_str(b, "]}");
    }
    pthread_rwlock_unlock(&p->add_lock);
    br_free(seen);
    br__srv_snap_release(p);
    if (!b) return MHD_NO;
    return reply_json(s, con, r, t0, 200, b);
}

static enum MHD_Result h_tribes(br_server *s, struct MHD_Connection *con, uint64_t t0)
{
    srv_snap *p = snap_acquire(s);
    if (!p) return reply_error(s, con, R_TRIBES, t0, 503, "no model loaded");
    br__sbuf *b = tbuf();
    if (b) {
        pthread_rwlock_rdlock(&p->add_lock);
        br__srv_snap_map_json(p, b);
        pthread_rwlock_unlock(&p->add_lock);
    }
    br__srv_snap_release(p);
    if (!b) return MHD_NO;
    return reply_json(s, con, R_TRIBES, t0, 200, b);
}

/* GET /api/users?q=PREFIX&limit=N&offset=K: the served version's readers
 * whose id starts with q, in the version's order, a page at a time (the
 * page's reader search). A scan: a browse, not a hot path. */
static enum MHD_Result h_users(br_server *s, struct MHD_Connection *con, uint64_t t0)
{
    const route r = R_USERS;
    long limit = 20, offset = 0;
    const char *v = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "limit");
    if (v && parse_uint(v, 1, BR_SERVE_N_MAX, &limit))
        return reply_error(s, con, r, t0, 400, "limit must be an integer in 1..%d", BR_SERVE_N_MAX);
    v = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "offset");
    if (v && parse_uint(v, 0, LONG_MAX, &offset))
        return reply_error(s, con, r, t0, 400, "offset must be an integer >= 0");
    const char *q = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "q");
    size_t ql = q ? strlen(q) : 0;
    if (ql >= BR_ID_MAX)
        return reply_error(s, con, r, t0, 400, "q is %zu bytes (at most %d)", ql, BR_ID_MAX - 1);
    srv_snap *p = snap_acquire(s);
    if (!p) return reply_error(s, con, r, t0, 503, "no model loaded");
    br__sbuf *b = tbuf();
    if (b) {
        snap_body_head(b, NULL, p);
        br__sb_str(b, "\"users\":[");
        size_t total = 0, out = 0;
        for (size_t i = 0; i < p->n_users; i++) {
            if (ql && strncmp(p->users[i], q, ql) != 0) continue;
            if (total++ < (size_t)offset || out == (size_t)limit) continue;
            br__sb_str(b, out++ ? ",{\"user_id\":" : "{\"user_id\":");
            br__sb_json_str(b, p->users[i]);
            br__sb_str(b, "}");
        }
        br__sb_printf(b, "],\"total\":%zu,\"offset\":%ld}", total, offset);
    }
    br__srv_snap_release(p);
    if (!b) return MHD_NO;
    return reply_json(s, con, r, t0, 200, b);
}

/* GET /api/models: the model directory's versions, newest first, each with
 * its manifest's counts, parameters and evaluation figures. */
static enum MHD_Result h_models(br_server *s, struct MHD_Connection *con, uint64_t t0)
{
    const route r = R_MODELS;
    br_model_version *v = NULL;
    size_t n = 0;
    char cur[BR_MODEL_ID_MAX] = "";
    br_status st = br_models_list(s->model_dir, &v, &n);
    if (st) return reply_error(s, con, r, t0, 500, "%s", br_error_detail());
    br_server_version(s, cur, sizeof cur); /* what this server serves */
    json_t *list = json_array();
    for (size_t i = n; i-- > 0;) {
        char *text = NULL;
        json_t *man = NULL;
        if (br_models_manifest(s->model_dir, v[i].id, &text) == BR_OK)
            man = json_loads(text, 0, NULL);
        br_free(text);
        json_t *o = json_pack("{s:s, s:b, s:I}", "id", v[i].id, "current", !strcmp(v[i].id, cur),
                              "created_at", (json_int_t)v[i].created_at);
        static const char *const keep[] = {"counts", "parameters", "evaluation"};
        for (size_t k = 0; o && k < sizeof keep / sizeof *keep; k++) {
            json_t *x = json_object_get(man, keep[k]);
            json_object_set(o, keep[k], x ? x : json_null());
        }
        json_decref(man);
        json_array_append_new(list, o);
    }
    br_free(v);
    br_error_clear();
    json_t *doc = json_pack("{s:s, s:o}", "current", cur, "versions", list);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    enum MHD_Result ret =
        text ? reply(s, con, r, t0, 200, "application/json", text, strlen(text), NULL)
             : reply_error(s, con, r, t0, 500, "out of memory");
    free(text);
    return ret;
}

static enum MHD_Result h_readyz(br_server *s, struct MHD_Connection *con, uint64_t t0)
{
    srv_snap *p = snap_acquire(s);
    if (!p) return reply_error(s, con, R_READYZ, t0, 503, "no model loaded");
    char version[BR_MODEL_ID_MAX];
    snprintf(version, sizeof version, "%s", p->version);
    br__srv_snap_release(p);
    /* both as the watcher last saw them (every --poll-ms) or a request since */
    int down = !store_get(s), unready = atomic_load(&s->store_unready);
    if (down || unready) {
        char why[256];
        pthread_mutex_lock(&s->err_mu);
        snprintf(why, sizeof why, "%s", down ? s->store_err : s->unready);
        pthread_mutex_unlock(&s->err_mu);
        return reply_error(s, con, R_READYZ, t0, 503, "%s%s",
                           down ? "store unreachable (degraded): " : "", why);
    }
    br__sbuf *b = tbuf();
    if (!b) return MHD_NO;
    br__sb_str(b, "{\"ready\":true,\"model_version\":");
    br__sb_json_str(b, version);
    br__sb_printf(b, ",\"store\":\"%s\"}",
                  s->is_cluster ? "redis-cluster"
                  : s->is_redis ? "redis"
                                : "lmdb");
    return reply_json(s, con, R_READYZ, t0, 200, b);
}

static enum MHD_Result h_metrics(br_server *s, struct MHD_Connection *con, uint64_t t0)
{
    br__sbuf *b = tbuf();
    if (!b) return MHD_NO;
    br__sb_printf(b,
                  "# HELP bookrec_http_worker_threads libmicrohttpd worker threads.\n"
                  "# TYPE bookrec_http_worker_threads gauge\n"
                  "bookrec_http_worker_threads %u\n",
                  (unsigned)s->opt.threads);
    br__sb_str(b, "# HELP bookrec_http_requests_total HTTP requests by route and status.\n"
                  "# TYPE bookrec_http_requests_total counter\n");
    for (int r = 0; r < R_COUNT; r++)
        for (size_t i = 0; i < N_STATUS; i++) {
            uint64_t v = atomic_load(&s->m.requests[r][i]);
            if (v)
                br__sb_printf(b, "bookrec_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                              route_name[r], status_list[i], (unsigned long long)v);
        }
    br__sb_str(b, "# HELP bookrec_http_request_duration_seconds Time spent answering, by route.\n"
                  "# TYPE bookrec_http_request_duration_seconds histogram\n");
    for (int r = 0; r < R_COUNT; r++) {
        uint64_t cum = 0;
        for (size_t i = 0; i <= N_BUCKET; i++) cum += atomic_load(&s->m.bucket[r][i]);
        if (!cum) continue;
        uint64_t acc = 0;
        for (size_t i = 0; i <= N_BUCKET; i++) {
            acc += atomic_load(&s->m.bucket[r][i]);
            if (i < N_BUCKET)
                br__sb_printf(
                    b,
                    "bookrec_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                    "%llu\n",
                    route_name[r], bucket_s[i], (unsigned long long)acc);
            else
                br__sb_printf(
                    b,
                    "bookrec_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
                    "%llu\n",
                    route_name[r], (unsigned long long)acc);
        }
        br__sb_printf(b, "bookrec_http_request_duration_seconds_sum{route=\"%s\"} %.9f\n",
                      route_name[r], (double)atomic_load(&s->m.sum_ns[r]) / 1e9);
        br__sb_printf(b, "bookrec_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                      route_name[r], (unsigned long long)acc);
    }
    char version[BR_MODEL_ID_MAX] = "";
    br_server_version(s, version, sizeof version);
    br__sb_str(b, "# HELP bookrec_model_info The model version being served.\n"
                  "# TYPE bookrec_model_info gauge\n");
    br__sb_printf(b, "bookrec_model_info{version=\"%s\"} 1\n", version);
    br__sb_printf(b,
                  "# HELP bookrec_store_errors_total Store and event-log calls that failed.\n"
                  "# TYPE bookrec_store_errors_total counter\n"
                  "bookrec_store_errors_total %llu\n"
                  "# HELP bookrec_store_up 1 when the store is reachable, 0 when degraded.\n"
                  "# TYPE bookrec_store_up gauge\n"
                  "bookrec_store_up %d\n"
                  "# HELP bookrec_store_ready 1 when the store is reachable and serves a version "
                  "of this model directory (/readyz), 0 when degraded, emptied or another "
                  "model's.\n"
                  "# TYPE bookrec_store_ready gauge\n"
                  "bookrec_store_ready %d\n"
                  "# HELP bookrec_reloads_total Model versions swapped in after the first.\n"
                  "# TYPE bookrec_reloads_total counter\n"
                  "bookrec_reloads_total %llu\n"
                  "# HELP bookrec_reload_failures_total Reloads that failed (the old version kept "
                  "serving).\n"
                  "# TYPE bookrec_reload_failures_total counter\n"
                  "bookrec_reload_failures_total %llu\n"
                  "# HELP bookrec_events_total Events accepted by POST /api/events.\n"
                  "# TYPE bookrec_events_total counter\n"
                  "bookrec_events_total %llu\n"
                  "# HELP bookrec_books_added_total Books accepted by POST /api/books.\n"
                  "# TYPE bookrec_books_added_total counter\n"
                  "bookrec_books_added_total %llu\n",
                  (unsigned long long)atomic_load(&s->m.store_errors), atomic_load(&s->store_ok),
                  atomic_load(&s->store_ok) && !atomic_load(&s->store_unready),
                  (unsigned long long)atomic_load(&s->m.reloads),
                  (unsigned long long)atomic_load(&s->m.reload_failures),
                  (unsigned long long)atomic_load(&s->m.events),
                  (unsigned long long)atomic_load(&s->m.books_added));
    if (b->oom) return reply_error(s, con, R_METRICS, t0, 500, "out of memory");
    return reply(s, con, R_METRICS, t0, 200, "text/plain; version=0.0.4", b->p, b->len, NULL);
}

/* ------------------------------------------------------- static assets -- */

static enum MHD_Result h_static(br_server *s, struct MHD_Connection *con, uint64_t t0,
                                const char *url)
{
    const char *path = !strcmp(url, "/") ? "/index.html" : url;
    /* index.html is revalidated every time (it names the other files);
     * the rest may be cached for an hour */
    const char *cache = !strcmp(path, "/index.html") ? "no-cache" : "public, max-age=3600";
    for (size_t i = 0; i < br__serve_web_assets_n; i++) {
        const br_serve_asset *a = &br__serve_web_assets[i];
        int hit = !strcmp(a->path, path);
        /* /static/x also names web/x */
        if (!hit && !strncmp(path, "/static/", 8)) hit = !strcmp(a->path, path + 7);
        if (hit) return reply(s, con, R_STATIC, t0, 200, a->content_type, a->data, a->size, cache);
    }
    return reply_error(s, con, R_STATIC, t0, 404, "no such page: %s", url);
}

/* Files the server holds besides its connections (model, store, log,
 * epoll and thread pipes): kept out of max_connections by ulimit -n. */
#define SRV_FD_HEADROOM 128

/* Is the listening socket on loopback only (127.0.0.0/8, ::1, or an
 * IPv4-mapped loopback address)? */
static int bound_loopback(int fd)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) return 0;
    if (sa.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa.ss_family != AF_INET6) return 0;
    const struct in6_addr *a = &((struct sockaddr_in6 *)&sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

/* Who may write (a key, a loopback bind, or allow_open_writes: said at
 * start) and the connection guard (s->opt's limits are final). */
static br_status guard_start(br_server *s, int listen_fd)
{
    int loopback = bound_loopback(listen_fd);
    s->writes_open = s->opt.allow_open_writes || loopback;
    if (!s->writes_open && !s->api_key)
        br_log(BR_LOG_WARN,
               "serve: listening on %s (beyond loopback) without an API key: POST /api/events "
               "and /api/books answer 401 (set --api-key or $BOOKREC_API_KEY, or "
               "--allow-open-writes)",
               s->bind);
    else if (s->opt.allow_open_writes && !s->api_key && !loopback)
        br_log(BR_LOG_WARN,
               "serve: listening on %s without an API key and with --allow-open-writes: anyone "
               "who reaches it may post events and books",
               s->bind);
    return br__srv_guard_start(s->opt.max_connections, s->opt.request_deadline_ms, &s->guard);
}

/* ------------------------------------------------------------ dispatch -- */

typedef struct req {
    uint64_t t0;
    route r;
    int too_large;
    int bodyless; /* a GET, HEAD or OPTIONS sent with a body: read, dropped, 400 */
    size_t got;   /* body bytes received */
    br__sbuf body;
} req;

/* Does the request announce a body (as libmicrohttpd will read one)? */
static int has_body(struct MHD_Connection *con)
{
    if (MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        return 1;
    const char *cl =
        MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return cl && strtoull(cl, NULL, 10) > 0;
}

/* *con_cls of a GET (or HEAD, OPTIONS) between its two handler calls. */
static req get_pending, options_pending;

/* The route a path names. The routes on one reader or book copy its id
 * (up to BR_ID_MAX bytes) into id and its whole length into *id_len. */
static route match(const char *url, char *id, size_t *id_len)
{
    static const struct {
        const char *path;
        route r;
    } exact[] = {{"/api/recommendations/session", R_RECS_SESSION},
                 {"/api/books", R_BOOKS_POST},
                 {"/api/events", R_EVENTS},
                 {"/api/users", R_USERS},
                 {"/api/tribes", R_TRIBES},
                 {"/api/models", R_MODELS},
                 {"/healthz", R_HEALTHZ},
                 {"/readyz", R_READYZ},
                 {"/metrics", R_METRICS}};
    static const struct {
        const char *prefix, *suffix;
        route r;
    } with_id[] = {{"/api/recommendations/user/", "", R_RECS_USER},
                   {"/api/books/", "", R_BOOK},
                   {"/api/books/", "/similar", R_BOOK_SIMILAR},
                   {"/api/users/", "", R_USER}};
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (!strcmp(url, exact[i].path)) return exact[i].r;
    for (size_t i = 0; i < sizeof with_id / sizeof *with_id; i++) {
        size_t pl = strlen(with_id[i].prefix);
        if (strncmp(url, with_id[i].prefix, pl) != 0) continue;
        const char *p = url + pl, *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (strcmp(p + n, with_id[i].suffix) != 0) continue;
        memcpy(id, p, n < BR_ID_MAX ? n : BR_ID_MAX);
        id[n < BR_ID_MAX ? n : BR_ID_MAX] = 0;
        *id_len = n;
        return with_id[i].r;
    }
    return !strncmp(url, "/api/", 5) || !strcmp(url, "/api") ? R_OTHER : R_STATIC;
}

static int key_ok(br_server *s, struct MHD_Connection *con)
{
    if (!s->api_key) return 1;
    const char *k = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-API-Key");
    if (!k) return 0;
    size_t a = strlen(k), b = strlen(s->api_key);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a && i < b; i++) diff |= (unsigned char)(k[i] ^ s->api_key[i]);
    return diff == 0;
}

static enum MHD_Result on_get(br_server *s, struct MHD_Connection *con, const char *url,
                              uint64_t t0)
{
    char id[BR_ID_MAX + 1], msg[160];
    size_t id_len = 0;
    route r = match(url, id, &id_len);
    if (url_problem(con, url, msg, sizeof msg)) return reply_error(s, con, r, t0, 400, "%s", msg);
    if (id_len >= BR_ID_MAX) /* the copy is cut short: say how long the id was */
        return reply_error(s, con, r, t0, 400, "%s id '%.20s...' is %zu bytes (at most %d)",
                           r == R_RECS_USER || r == R_USER ? "reader" : "book", id, id_len,
                           BR_ID_MAX - 1);
    switch (r) {
    case R_RECS_USER:
        return h_recs_user(s, con, t0, id);
    case R_BOOK:
        return h_book(s, con, t0, id);
    case R_BOOK_SIMILAR:
        return h_similar(s, con, t0, id);
    case R_USER:
        return h_user(s, con, t0, id);
    case R_USERS:
        return h_users(s, con, t0);
    case R_TRIBES:
        return h_tribes(s, con, t0);
    case R_MODELS:
        return h_models(s, con, t0);
    case R_HEALTHZ: {
        static const char ok[] = "{\"status\":\"ok\"}";
        return reply(s, con, R_HEALTHZ, t0, 200, "application/json", ok, sizeof ok - 1, NULL);
    }
    case R_READYZ:
        return h_readyz(s, con, t0);
    case R_METRICS:
        return h_metrics(s, con, t0);
    case R_OTHER:
        return reply_error(s, con, r, t0, 404, "no such endpoint: %s", url);
    case R_STATIC:
        return h_static(s, con, t0, url);
    default: /* a POST route */
        return reply_error(s, con, r, t0, 405, "%s takes POST", url);
    }
}

/* OPTIONS: the route's Allow, and with --cors the answer to a preflight. */
static enum MHD_Result on_options(br_server *s, struct MHD_Connection *con, const char *url,
                                  uint64_t t0)
{
    char id[BR_ID_MAX + 1], msg[160];
    size_t id_len;
    route r = match(url, id, &id_len);
    if (url_problem(con, url, msg, sizeof msg)) return reply_error(s, con, r, t0, 400, "%s", msg);
    if (r == R_OTHER) return reply_error(s, con, r, t0, 404, "no such endpoint: %s", url);
    return reply(s, con, r, t0, 204, NULL, "", 0, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    br_server *s = cls;
    req *q = *con_cls;
    /* the whole request is in (the first call has its head only): the
     * deadline no longer runs */
    if (q && !*upload_size) br__srv_guard_answering(s->guard, con);
    /* A GET is answered on the second call: libmicrohttpd closes the
     * connection after a response queued on the first (headers-only) call,
     * and a reconnect per request costs more than the whole handler. */
    if (q == &get_pending) return on_get(s, con, url, br__srv_now_ns());
    if (q == &options_pending) return on_options(s, con, url, br__srv_now_ns());
    if (!q) {
        uint64_t t0 = br__srv_now_ns();
        char id[BR_ID_MAX + 1], msg[160];
        size_t id_len = 0;
        route r;
        if (br__srv_guard_reserved(con)) { /* past max_connections: health checks only */
            r = match(url, id, &id_len);
            if (r != R_HEALTHZ && r != R_READYZ)
                return reply_error(s, con, r, t0, 503,
                                   "the server is at its connection limit (%zu): retry later",
                                   br__srv_guard_cap(s->guard));
        }
        const char *cl =
            MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int bodyless = !strcmp(method, MHD_HTTP_METHOD_GET) ||
                       !strcmp(method, MHD_HTTP_METHOD_HEAD) ||
                       !strcmp(method, MHD_HTTP_METHOD_OPTIONS);
        if (bodyless && !has_body(con)) {
            /* HEAD is a GET whose body libmicrohttpd leaves out */
            *con_cls = strcmp(method, MHD_HTTP_METHOD_OPTIONS) ? &get_pending : &options_pending;
            return MHD_YES;
        }
        r = match(url, id, &id_len);
        if (bodyless) { /* with a body: read it (so the answer is not lost in a reset), then 400 */
            if (cl && strtoull(cl, NULL, 10) > s->opt.max_body)
                return reply_error(s, con, r, t0, 413, "request body over %zu bytes",
                                   s->opt.max_body);
        } else {
            if (url_problem(con, url, msg, sizeof msg))
                return reply_error(s, con, r, t0, 400, "%s", msg);
            if (r == R_OTHER) return reply_error(s, con, r, t0, 404, "no such endpoint: %s", url);
            if (strcmp(method, MHD_HTTP_METHOD_POST) != 0 || route_methods(r) != M_POST)
                return reply_error(s, con, r, t0, 405, "%s %s: not allowed (allowed: %s)", method,
                                   url, route_allow(r));
            if (r != R_RECS_SESSION && !key_ok(s, con)) /* the session endpoint only reads */
                return reply_error(s, con, r, t0, 401, "missing or wrong X-API-Key");
            if (r != R_RECS_SESSION && !s->api_key && !s->writes_open)
                return reply_error(s, con, r, t0, 401,
                                   "writes need an X-API-Key: the server listens beyond loopback "
                                   "(%s) and was started without --api-key",
                                   s->bind);
            if (cl && strtoull(cl, NULL, 10) > s->opt.max_body)
                return reply_error(s, con, r, t0, 413, "request body over %zu bytes",
                                   s->opt.max_body);
        }
        q = br_calloc(1, sizeof *q);
        if (!q) return MHD_NO;
        q->t0 = t0;
        q->r = r;
        q->bodyless = bodyless;
        *con_cls = q;
        return MHD_YES;
    }
    if (*upload_size) {
        q->got += *upload_size;
        if (q->got > s->opt.max_body) q->too_large = 1;
        if (!q->too_large && !q->bodyless) br__sb_put(&q->body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (q->too_large)
        return reply_error(s, con, q->r, q->t0, 413, "request body over %zu bytes",
                           s->opt.max_body);
    if (q->bodyless)
        return reply_error(s, con, q->r, q->t0, 400, "a %s request takes no body", method);
    if (q->body.oom) return reply_error(s, con, q->r, q->t0, 500, "out of memory");
    const char *body = q->body.p ? q->body.p : "";
    switch (q->r) {
    case R_EVENTS:
        return h_events(s, con, q->t0, body, q->body.len);
    case R_RECS_SESSION:
        return h_session(s, con, q->t0, body, q->body.len);
    default:
        return h_books_post(s, con, q->t0, body, q->body.len);
    }
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req *q = *con_cls;
    br__srv_guard_rearm(((br_server *)cls)->guard, con); /* the whole deadline again */
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) ev_drop_done(cls, con);
    if (!q || q == &get_pending || q == &options_pending) {
        *con_cls = NULL;
        return;
    }
    br__sb_free(&q->body);
    br_free(q);
    *con_cls = NULL;
}

/* ------------------------------------------------------ reload, watcher -- */

void br_server_version(br_server *s, char *buf, size_t cap)
{
    srv_snap *p = snap_acquire(s);
    snprintf(buf, cap, "%s", p ? p->version : "");
    if (p) br__srv_snap_release(p);
}

br_status br_server_reload(br_server *s, int force)
{
    pthread_mutex_lock(&s->reload_mu);
    char cur[BR_MODEL_ID_MAX] = "";
    br_status st = br_models_current(s->model_dir, cur, sizeof cur);
    srv_snap *old = snap_acquire(s);
    if (!st && !force && old && !strcmp(old->version, cur)) {
        br__srv_snap_release(old);
        pthread_mutex_unlock(&s->reload_mu);
        return BR_OK;
    }
    srv_snap *neu = NULL;
    if (!st) st = br__srv_snap_load(s->model_dir, &neu);
    if (!st && old) {
        /* books posted since the old version was trained stay served */
        pthread_rwlock_rdlock(&old->add_lock);
        for (size_t i = 0; i < old->n_added && neu->dim == old->dim; i++) {
            if (br__srv_snap_find(neu, old->added[i].id) >= 0) continue;
            br_status e = br__srv_snap_add(neu, &old->added[i],
                                           br__srv_snap_emb(old, old->n_base + (uint32_t)i), NULL);
            if (e)
                br_log(BR_LOG_WARN, "serve: posted book '%s' not carried over: %s",
                       old->added[i].id, br_error_detail());
        }
        pthread_rwlock_unlock(&old->add_lock);
    }
    if (!st) posted_sync(s, neu); /* and those in the store (other servers', earlier runs') */
    if (!st) {
        pthread_mutex_lock(&s->snap_mu);
        srv_snap *prev = s->snap;
        s->snap = neu;
        pthread_mutex_unlock(&s->snap_mu);
        if (prev) {
            atomic_fetch_add(&s->m.reloads, 1);
            br_log(BR_LOG_INFO, "serve: model %s -> %s", prev->version, neu->version);
        }
        br__srv_snap_release(prev); /* the last request holding it frees it */
    } else if (old) {               /* the first load's failure is br_server_start's to report */
        atomic_fetch_add(&s->m.reload_failures, 1);
        br_log(BR_LOG_WARN, "serve: reload failed, still serving %s: %s", old->version,
               br_error_detail());
    }
    if (old) br__srv_snap_release(old);
    pthread_mutex_unlock(&s->reload_mu);
    return st;
}

/* Whether the reachable store serves a version of this model directory;
 * sets store_unready and logs each change once. Only BR_ENET (and other
 * store failures) are returned: an empty store is reachable. */
static br_status store_check(br_server *s, br_store *st)
{
    char v[BR_STORE_VERSION_MAX] = "", why[256] = "";
    br_status e = br_store_version(st, v, sizeof v);
    if (e == BR_ENOTFOUND) {
        snprintf(why, sizeof why,
                 "the store serves no model version (emptied or never published): "
                 "`bookrec store restore` puts the version and the readers' seen sets "
                 "and histories back");
        e = BR_OK;
    } else if (!e) {
        char path[PATH_MAX];
        if (br_models_path(s->model_dir, v, path, sizeof path) != BR_OK || access(path, F_OK) != 0)
            snprintf(why, sizeof why,
                     "the store serves version '%s', which %s does not hold (another "
                     "model's store?)",
                     v, s->model_dir);
    }
    br_error_clear();
    if (e) return e;
    int was = atomic_exchange(&s->store_unready, why[0] != 0);
    pthread_mutex_lock(&s->err_mu);
    int changed = was != (why[0] != 0) || strcmp(s->unready, why) != 0;
    snprintf(s->unready, sizeof s->unready, "%s", why);
    pthread_mutex_unlock(&s->err_mu);
    if (changed && why[0])
        br_log(BR_LOG_WARN, "serve: not ready: %s", why);
    else if (changed)
        br_log(BR_LOG_INFO, "serve: ready: the store serves version '%s'", v);
    return BR_OK;
}

static br_status store_connect(br_server *s)
{
    br_store *st = atomic_load(&s->store);
    br_status e = BR_OK;
    if (!st) {
        e = br_store_open(s->store_uri, 0, &st);
        if (!e) atomic_store(&s->store, st);
    }
    if (!e) e = store_check(s, st);
    if (!e && !atomic_load(&s->events)) {
        br_events *ev = NULL;
        e = br_events_open(s->store_uri, 0, &ev);
        if (!e) atomic_store(&s->events, ev);
    }
    if (e) {
        pthread_mutex_lock(&s->err_mu);
        snprintf(s->store_err, sizeof s->store_err, "%s", br_error_detail());
        pthread_mutex_unlock(&s->err_mu);
    }
    return e;
}

static void *watcher_main(void *arg)
{
    br_server *s = arg;
    uint64_t period = s->opt.poll_ms ? s->opt.poll_ms : 1000;
    uint64_t backoff = period, next_probe = 0;
    pthread_mutex_lock(&s->w_mu);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t wait_ms =
            atomic_load(&s->store_ok) ? period : (backoff < period ? backoff : period);
        ts.tv_sec += (time_t)(wait_ms / 1000);
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&s->w_cv, &s->w_mu, &ts);
        if (s->stopping) break;
        pthread_mutex_unlock(&s->w_mu);
        if (!s->opt.no_watch) br_server_reload(s, 0);
        uint64_t now = br__srv_now_ns() / 1000000u;
        br_store *st = store_get(s);
        if (st) { /* readiness follows the store, not only failed requests */
            br_status e = store_check(s, st);
            if (e) store_failed(s, e, "probe");
        }
        /* Books another server posted to the same store: served here
         * within a poll period (the count is one cheap read; the list is
         * walked only when it changed). */
        uint64_t np;
        if ((st = store_get(s)) && br_store_posted_count(st, &np) == BR_OK &&
            np != s->posted_synced) {
            pthread_mutex_lock(&s->reload_mu);
            srv_snap *p = snap_acquire(s);
            posted_sync(s, p);
            br__srv_snap_release(p);
            pthread_mutex_unlock(&s->reload_mu);
            s->posted_synced = np;
        }
        if (!atomic_load(&s->store_ok) && now >= next_probe) {
            if (store_connect(s) == BR_OK) {
                atomic_store(&s->store_ok, 1);
                pthread_mutex_lock(&s->reload_mu);
                srv_snap *p = snap_acquire(s);
                posted_sync(s, p); /* books posted elsewhere while it was down */
                br__srv_snap_release(p);
                pthread_mutex_unlock(&s->reload_mu);
                backoff = period;
                br_log(BR_LOG_INFO, "serve: store reachable again: recovered from degraded mode");
            } else {
                next_probe = now + backoff;
                backoff = backoff * 2 > 8000 ? 8000 : backoff * 2; /* 1 s, 2 s, 4 s, 8 s */
            }
        }
        br_error_clear();
        pthread_mutex_lock(&s->w_mu);
    }
    pthread_mutex_unlock(&s->w_mu);
    return NULL;
}

/* ------------------------------------------------------------ start/stop -- */

/* max_connections, and the reserve above it, within the process' open-file
 * limit (ulimit -n; `bookrec serve` raises it to the hard limit): past it
 * accept() fails and the reserve would be an illusion. */
static void max_connections_fit(br_server *s)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return;
    rlim_t room = rl.rlim_cur > SRV_FD_HEADROOM + BR__SRV_RESERVE + 16
                      ? rl.rlim_cur - SRV_FD_HEADROOM - BR__SRV_RESERVE
                      : 16;
    if (s->opt.max_connections <= room) return;
    br_log(BR_LOG_WARN,
           "serve: at most %llu connections (not %u): the process may open %llu files "
           "(ulimit -n), %d of them kept for the health-check reserve and %d for the rest",
           (unsigned long long)room, s->opt.max_connections, (unsigned long long)rl.rlim_cur,
           BR__SRV_RESERVE, SRV_FD_HEADROOM);
    s->opt.max_connections = (uint32_t)room;
}

/* A listening socket on `bind` (an IPv4 or IPv6 address, or a name such
 * as localhost: its addresses are tried in turn) and `port` (0: a free
 * one, *bound receives it). Bound here rather than by libmicrohttpd so
 * that a failure says why (in use, not an address of this machine). */
static br_status listen_on(const char *bind_to, uint16_t port, int *out, uint16_t *bound)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    /* "[::1]" as in a URL is ::1 */
    char host[256];
    size_t hl = strlen(bind_to);
    if (hl >= 2 && bind_to[0] == '[' && bind_to[hl - 1] == ']' && hl - 2 < sizeof host)
        snprintf(host, sizeof host, "%.*s", (int)(hl - 2), bind_to + 1);
    else
        snprintf(host, sizeof host, "%s", bind_to);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0)
        return br_error(BR_EINVAL, "--bind %s: %s", bind_to,
                        rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    int err = 0, fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (a->ai_family == AF_INET6) /* ::1 means IPv6 only, as 127.0.0.1 means IPv4 only */
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return br_error(BR_EIO, "cannot listen on %s port %u: %s%s", bind_to, (unsigned)port,
                        strerror(err),
                        err == EADDRINUSE      ? " (another process has it)"
                        : err == EADDRNOTAVAIL ? " (not an address of this machine)"
                                               : "");
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    *bound = port;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        *bound = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                : ((struct sockaddr_in *)&sa)->sin_port);
    *out = fd;
    return BR_OK;
}

br_status br_server_start(const br_server_options *opt, br_server **out)
{
    *out = NULL;
    if (!opt || !opt->model_dir) return br_error(BR_EINVAL, "serve: no model directory");
    br_server *s = br_calloc(1, sizeof *s);
    if (!s) return br_error(BR_ENOMEM, "server");
    s->opt = *opt;
    if (!s->opt.max_body) s->opt.max_body = BR_SERVE_BODY_DEFAULT;
    if (!s->opt.max_added) s->opt.max_added = BR_SERVE_ADDED_DEFAULT;
    if (!s->opt.max_per_ip) s->opt.max_per_ip = BR_SERVE_PER_IP_DEFAULT;
    if (!s->opt.request_deadline_ms) s->opt.request_deadline_ms = BR_SERVE_DEADLINE_DEFAULT_MS;
    if (!s->opt.max_connections) s->opt.max_connections = BR_SERVE_CONNECTIONS_DEFAULT;
    max_connections_fit(s);
    s->model_dir = br_strdup(opt->model_dir);
    s->bind = br_strdup(opt->bind ? opt->bind : "127.0.0.1");
    s->api_key = opt->api_key && *opt->api_key ? br_strdup(opt->api_key) : NULL;
    s->cors = opt->cors && *opt->cors ? br_strdup(opt->cors) : NULL;
    s->mem = br_calloc(MEM_SLOTS, sizeof *s->mem);
    pthread_mutex_init(&s->snap_mu, NULL);
    pthread_mutex_init(&s->reload_mu, NULL);
    pthread_mutex_init(&s->err_mu, NULL);
    pthread_mutex_init(&s->w_mu, NULL);
    pthread_cond_init(&s->w_cv, NULL);
    pthread_mutex_init(&s->enc_mu, NULL);
    pthread_mutex_init(&s->mem_mu, NULL);
    ev_init(s);
    br_status st = s->model_dir && s->bind && s->mem ? BR_OK : br_error(BR_ENOMEM, "server");
    if (!st) st = br_server_reload(s, 1);
    if (!st && opt->store) {
        s->store_uri = br_strdup(opt->store);
    } else if (!st) { /* the manifest's, resolved against the model directory */
        char uri[PATH_MAX];
        st = br_models_store(s->model_dir, NULL, uri, sizeof uri);
        if (!st) s->store_uri = br_strdup(uri);
    }
    if (!st) {
        s->is_cluster = !strncmp(s->store_uri, "redis-cluster://", 16);
        s->is_redis = s->is_cluster || !strncmp(s->store_uri, "redis://", 8);
        /* A Redis read holds its thread for a round trip without using the
         * CPU: more threads keep more reads in flight (one per connection
         * of the store's default pool). */
        if (!s->opt.threads) s->opt.threads = s->is_redis ? 8 : 2;
        br_status e = store_connect(s);
        if (!e) {
            atomic_store(&s->store_ok, 1);
            pthread_mutex_lock(&s->reload_mu);
            posted_sync(s, s->snap); /* the first load ran before the store was open */
            pthread_mutex_unlock(&s->reload_mu);
        } else if (e == BR_ENET)
            br_log(BR_LOG_WARN, "serve: store unreachable at start (degraded): %s",
                   br_error_detail());
        else
            st = e; /* a bad URI or a broken LMDB store is not an outage */
    }
    int fd = -1;
    if (!st) st = listen_on(s->bind, opt->port, &fd, &s->port);
    if (!st && (st = guard_start(s, fd))) close(fd);
    if (!st) {
        unsigned flags = MHD_USE_EPOLL | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TURBO |
                         MHD_ALLOW_SUSPEND_RESUME;
        unsigned total = (unsigned)(s->opt.max_connections + BR__SRV_RESERVE);
        s->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->opt.threads, MHD_OPTION_NOTIFY_COMPLETED,
            on_completed, s, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, total,
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)s->opt.max_per_ip,
            MHD_OPTION_NOTIFY_CONNECTION, br__srv_guard_notify, s->guard,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SRV_CONN_MEMORY, MHD_OPTION_END);
        if (!s->daemon) {
            close(fd); /* the daemon owns it only once started */
            st = br_error(BR_EIO, "cannot start the HTTP server on %s port %u", s->bind,
                          (unsigned)s->port);
        }
    }
    if (!st) {
        if (pthread_create(&s->watcher, NULL, watcher_main, s) != 0)
            st = br_error(BR_EIO, "watcher thread");
        else
            s->watcher_started = 1;
    }
    if (st) {
        br_server_stop(s);
        br_server_free(s);
        return st;
    }
    *out = s;
    return BR_OK;
}

uint16_t br_server_port(const br_server *s)
{
    return s->port;
}

void br_server_stop(br_server *s)
{
    if (!s) return;
    if (s->watcher_started) {
        pthread_mutex_lock(&s->w_mu);
        s->stopping = 1;
        pthread_cond_signal(&s->w_cv);
        pthread_mutex_unlock(&s->w_mu);
        pthread_join(s->watcher, NULL);
        s->watcher_started = 0;
    }
    ev_stop(s); /* every suspended event POST answered before the daemon stops */
    if (s->daemon) {
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
    }
    br__srv_guard_stop(s->guard);
}

void br_server_free(br_server *s)
{
    if (!s) return;
    br_server_stop(s);
    br__srv_snap_release(s->snap);
    br_store_close(atomic_load(&s->store));
    br_events_close(atomic_load(&s->events));
    br_encoder_close(s->enc);
    pthread_mutex_destroy(&s->snap_mu);
    pthread_mutex_destroy(&s->reload_mu);
    pthread_mutex_destroy(&s->err_mu);
    pthread_mutex_destroy(&s->w_mu);
    pthread_cond_destroy(&s->w_cv);
    pthread_mutex_destroy(&s->enc_mu);
    pthread_mutex_destroy(&s->mem_mu);
    ev_fini(s);
    br_free(s->mem);
    br_free(s->model_dir);
    br_free(s->store_uri);
    br_free(s->bind);
    br_free(s->api_key);
    br_free(s->cors);
    br__srv_guard_free(s->guard);
    br_free(s);
}
