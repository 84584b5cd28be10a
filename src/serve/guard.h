/*
 * guard.h (internal): the connection guard of `bookrec serve` (guard.c):
 * a deadline for a whole request and a reserve of connections for health
 * checks, so that no one client can stop the server (issue 19). server.c
 * hands its libmicrohttpd callbacks to it.
 */
#ifndef BR_SERVE_GUARD_H
#define BR_SERVE_GUARD_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "bookrec/core.h"

/* Connections accepted past max_connections, for /healthz and /readyz. */
#define BR__SRV_RESERVE 64

typedef struct br__srv_guard br__srv_guard;

/* Starts the guard's thread: at most cap connections before the reserve,
 * deadline_ms for each request (from the connection's opening or its
 * previous answer). */
br_status br__srv_guard_start(size_t cap, uint32_t deadline_ms, br__srv_guard **out);
/* Stops the thread (after the daemon: nothing is guarded then). */
void br__srv_guard_stop(br__srv_guard *g);
void br__srv_guard_free(br__srv_guard *g);
/* MHD_OPTION_NOTIFY_CONNECTION's callback, with the guard as cls. */
void br__srv_guard_notify(void *cls, struct MHD_Connection *con, void **socket_context,
                          enum MHD_ConnectionNotificationCode code);
/* The connection's request is all in: its clock stops until the answer. */
void br__srv_guard_answering(br__srv_guard *g, struct MHD_Connection *con);
/* A request ended: a kept-alive connection has the deadline again. */
void br__srv_guard_rearm(br__srv_guard *g, struct MHD_Connection *con);
/* Whether the connection was accepted into the reserve (health checks). */
int br__srv_guard_reserved(struct MHD_Connection *con);
size_t br__srv_guard_cap(const br__srv_guard *g);

#endif
