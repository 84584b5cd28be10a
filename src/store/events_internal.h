/*
 * events_internal.h (internal): the event-log backend vtable shared by
 * events.c (front end), events_file.c and events_redis.c.
 */
#ifndef BR_EVENTS_INTERNAL_H
#define BR_EVENTS_INTERNAL_H

#include "bookrec/events.h"

typedef struct br_events_ops {
    void (*close)(br_events *ev);
    br_status (*append)(br_events *ev, const br_event *events, size_t n);
    br_status (*read)(br_events *ev, const char *group, size_t max, br_event_fn fn, void *user,
                      size_t *count, char *last);
    br_status (*ack)(br_events *ev, const char *group, const char *pos);
    br_status (*count)(br_events *ev, uint64_t *n);
    br_status (*trim)(br_events *ev, uint64_t *removed); /* NULL: nothing to trim */
} br_events_ops;

/* The first member of every backend's handle. */
struct br_events {
    const br_events_ops *ops;
    unsigned flags;
};

br_status br__events_file_open(const char *path, unsigned flags, br_events **out);
br_status br__events_redis_open(const char *uri, int cluster, unsigned flags, br_events **out);

#endif
