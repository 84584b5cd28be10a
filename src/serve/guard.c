/*
 * guard.c: the connection guard of `bookrec serve` (guard.h).
 *
 * One client must not be able to stop the server (issue 19).
 * libmicrohttpd limits the connections of one address (max_per_ip) and in
 * all, but its timeout is an idle one, reset by every byte received: a
 * client sending a byte of header every few seconds holds its connection
 * for ever, and such a request never reaches on_request (its head is never
 * complete), so nothing in the request path can see it. The guard adds:
 * - a deadline for a whole request: a connection that has not delivered
 *   its request (head and body) within request_deadline_ms of opening, or
 *   of its previous answer, is shut down by the guard's thread, whatever
 *   it trickles (libmicrohttpd then reads the end of the stream and closes
 *   it, as if the client had);
 * - a reserve for health checks: past max_connections open connections,
 *   BR__SRV_RESERVE more are accepted; they answer /healthz and /readyz only
 *   (anything else 503) and live RESERVE_MS at most.
 * A connection waiting for its request sits in a FIFO list; every entry of
 * a list has the same deadline, so each list is in deadline order and the
 * thread only ever looks at the heads.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "serve/guard.h"
#include "serve/serve_internal.h"

#define RESERVE_MS 2000
typedef struct srv_conn {
    struct srv_conn *prev, *next;
    int fd;
    int reserve;    /* accepted past max_connections (set once, at its start) */
    int waiting;    /* in a list (under the guard's mutex) */
    uint64_t since; /* ns: opened, or its previous request answered */
} srv_conn;

typedef struct srv_list {
    srv_conn *head, *tail;
} srv_list;

struct br__srv_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC, as now_ns */
    srv_list wait, reserve;
    size_t open, cap;
    uint64_t deadline_ns, reserve_ns;
    /* when the thread wakes next (UINT64_MAX: when told; 0: it was told):
     * an arm signals only for an earlier deadline, so a busy server does
     * not wake the thread per request */
    uint64_t wake_at;
    int stop, started;
    pthread_t thread;
};

static void list_push(srv_list *l, srv_conn *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    c->waiting = 1;
}

static void list_remove(srv_list *l, srv_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    c->waiting = 0;
}

/* (Re)starts the clock of a connection: it waits for a request from now. */
static void guard_arm(br__srv_guard *g, srv_conn *c)
{
    srv_list *l = c->reserve ? &g->reserve : &g->wait;
    if (c->waiting) list_remove(l, c);
    c->since = br__srv_now_ns();
    list_push(l, c);
    if (c->since + (c->reserve ? g->reserve_ns : g->deadline_ns) < g->wake_at) {
        g->wake_at = 0;
        pthread_cond_signal(&g->cv);
    }
}

static void *guard_main(void *arg)
{
    br__srv_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        uint64_t now = br__srv_now_ns(), next = UINT64_MAX;
        srv_list *lists[2] = {&g->wait, &g->reserve};
        uint64_t limit[2] = {g->deadline_ns, g->reserve_ns};
        for (int k = 0; k < 2; k++) {
            srv_conn *c;
            while ((c = lists[k]->head) && c->since + limit[k] <= now) {
                list_remove(lists[k], c);
                /* the descriptor is the connection's until on_connection
                 * hears it closed, which takes this mutex */
                shutdown(c->fd, SHUT_RDWR);
            }
            if (c && c->since + limit[k] < next) next = c->since + limit[k];
        }
        g->wake_at = next;
        if (next == UINT64_MAX) {
            pthread_cond_wait(&g->cv, &g->mu);
        } else {
            struct timespec ts = {(time_t)(next / 1000000000u), (long)(next % 1000000000u)};
            pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* A connection opened or closed (on the thread that owns it). */
void br__srv_guard_notify(void *cls, struct MHD_Connection *con, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    br__srv_guard *g = cls;
    srv_conn *c = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        c = ci ? br_calloc(1, sizeof *c) : NULL;
        if (!c) return; /* not guarded: only the idle timeout closes it */
        c->fd = ci->connect_fd;
        pthread_mutex_lock(&g->mu);
        c->reserve = ++g->open > g->cap;
        guard_arm(g, c);
        pthread_mutex_unlock(&g->mu);
        *socket_context = c;
    } else if (c) {
        pthread_mutex_lock(&g->mu);
        if (c->waiting) list_remove(c->reserve ? &g->reserve : &g->wait, c);
        g->open--;
        pthread_mutex_unlock(&g->mu);
        br_free(c);
        *socket_context = NULL;
    }
}

static srv_conn *guard_conn(struct MHD_Connection *con)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* A reserve connection's clock never stops. */
void br__srv_guard_answering(br__srv_guard *g, struct MHD_Connection *con)
{
    srv_conn *c = guard_conn(con);
    if (!g || !c || c->reserve) return;
    pthread_mutex_lock(&g->mu);
    if (c->waiting) list_remove(&g->wait, c);
    pthread_mutex_unlock(&g->mu);
}

void br__srv_guard_rearm(br__srv_guard *g, struct MHD_Connection *con)
{
    srv_conn *c = guard_conn(con);
    if (!g || !c || c->reserve) return;
    pthread_mutex_lock(&g->mu);
    guard_arm(g, c);
    pthread_mutex_unlock(&g->mu);
}

int br__srv_guard_reserved(struct MHD_Connection *con)
{
    const srv_conn *c = guard_conn(con);
    return c && c->reserve;
}

size_t br__srv_guard_cap(const br__srv_guard *g)
{
    return g->cap;
}

br_status br__srv_guard_start(size_t cap, uint32_t deadline_ms, br__srv_guard **out)
{
    *out = NULL;
    br__srv_guard *g = br_calloc(1, sizeof *g);
    if (!g) return br_error(BR_ENOMEM, "server");
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    g->cap = cap;
    g->wake_at = UINT64_MAX;
    g->deadline_ns = (uint64_t)deadline_ms * 1000000u;
    g->reserve_ns = (uint64_t)(deadline_ms < RESERVE_MS ? deadline_ms : RESERVE_MS) * 1000000u;
    *out = g;
    if (pthread_create(&g->thread, NULL, guard_main, g) != 0)
        return br_error(BR_EIO, "connection guard thread");
    g->started = 1;
    return BR_OK;
}

void br__srv_guard_stop(br__srv_guard *g)
{
    if (!g || !g->started) return;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    g->started = 0;
}

void br__srv_guard_free(br__srv_guard *g)
{
    if (!g) return;
    br__srv_guard_stop(g);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    br_free(g);
}
