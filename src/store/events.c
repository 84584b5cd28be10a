/*
 * events.c: interaction types, the event check, and the event-log front end
 * that picks the backend from the URI (events_file.c, events_redis.c).
 */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>

#include "store/events_internal.h"
#include "store/store_internal.h"

static const char *const type_names[BR_EVENT_NTYPES] = {"rating", "click", "view", "purchase"};

const char *br_event_type_name(br_event_type type)
{
    return (unsigned)type < BR_EVENT_NTYPES ? type_names[type] : NULL;
}

br_status br_event_type_parse(const char *name, br_event_type *out)
{
    for (int i = 0; name && i < BR_EVENT_NTYPES; i++)
        if (!strcmp(name, type_names[i])) {
            *out = (br_event_type)i;
            return BR_OK;
        }
    return br_error(BR_EPARSE, "event type '%s' is not one of rating, click, view, purchase",
                    name ? name : "(null)");
}

br_status br_event_validate(const br_event *e)
{
    if (!e) return br_error(BR_EINVAL, "event is NULL");
    br_status st = br_store_check_id(e->user_id, "reader");
    if (st == BR_OK) st = br_store_check_id(e->book_id, "book");
    if (st != BR_OK) return st;
    if (!br_event_type_name(e->type))
        return br_error(BR_EINVAL, "event type %d is invalid", e->type);
    if (!isfinite(e->value)) return br_error(BR_EINVAL, "event value is not finite");
    return BR_OK;
}

br_status br_event_check(const br_event *e, const br_event_rules *rules)
{
    br_status st = br_event_validate(e);
    if (st != BR_OK) return st;
    if (e->timestamp < 0)
        return br_error(BR_EINVAL, "timestamp %lld is negative (Unix seconds, 0 or more)",
                        (long long)e->timestamp);
    if (e->type != BR_EVENT_RATING) {
        /* A weight: a negative one would subtract an interaction. */
        if (e->value < 0)
            return br_error(BR_EINVAL, "%s value %g is negative (a weight: 0 or more)",
                            br_event_type_name(e->type), (double)e->value);
        return BR_OK;
    }
    if (rules && !(e->value >= rules->rating_min && e->value <= rules->rating_max))
        return br_error(BR_EINVAL, "rating %g is outside the rating scale %g..%g", (double)e->value,
                        (double)rules->rating_min, (double)rules->rating_max);
    return BR_OK;
}

/* ------------------------------------------------------------- front end -- */

br_status br_events_open(const char *uri, unsigned flags, br_events **out)
{
    if (!uri || !out) return br_error(BR_EINVAL, "br_events_open: uri and out are required");
    *out = NULL;
    if (!strncmp(uri, "redis://", 8)) return br__events_redis_open(uri + 8, flags, out);
    if (!strncmp(uri, "file:", 5)) {
        if (!uri[5]) return br_error(BR_EINVAL, "event log URI file: needs a path");
        return br__events_file_open(uri + 5, flags, out);
    }
    if (!strncmp(uri, "lmdb:", 5)) {
        /* The log of an LMDB store sits in the store's directory. */
        const char *dir = uri + 5;
        size_t n = strcspn(dir, "?");
        if (n == 0) return br_error(BR_EINVAL, "store URI lmdb: needs a directory");
        char *path = br_malloc(n + 16);
        if (!path) return br_error(BR_ENOMEM, "path");
        snprintf(path, n + 16, "%.*s", (int)n, dir);
        /* The store's directory may not exist yet (events before any train). */
        if (!(flags & BR_EVENTS_RDONLY) && mkdir(path, 0755) != 0 && errno != EEXIST) {
            br_status st = br_error(BR_EIO, "%s: %s", path, strerror(errno));
            br_free(path);
            return st;
        }
        strcat(path, "/events.log");
        br_status st = br__events_file_open(path, flags, out);
        br_free(path);
        return st;
    }
    return br_error(BR_EINVAL,
                    "event log URI '%s': expected file:PATH, lmdb:DIR or redis://HOST:PORT[/DB]",
                    uri);
}

void br_events_close(br_events *ev)
{
    if (ev) ev->ops->close(ev);
}

br_status br_events_append(br_events *ev, const br_event *events, size_t n)
{
    if (!ev || (n && !events)) return br_error(BR_EINVAL, "br_events_append: NULL argument");
    if (ev->flags & BR_EVENTS_RDONLY) return br_error(BR_EINVAL, "the event log is read-only");
    for (size_t i = 0; i < n; i++) {
        br_status st = br_event_validate(&events[i]);
        if (st != BR_OK) {
            char d[512]; /* copied: br_error writes the buffer the detail is in */
            snprintf(d, sizeof d, "%s", br_error_detail());
            return br_error(st, "event %zu: %s", i, d);
        }
    }
    return n ? ev->ops->append(ev, events, n) : BR_OK;
}

br_status br_events_read(br_events *ev, const char *group, size_t max, br_event_fn fn, void *user,
                         size_t *count, char *last)
{
    if (!ev || !fn) return br_error(BR_EINVAL, "br_events_read: NULL argument");
    if (count) *count = 0;
    if (last) last[0] = '\0';
    br_status st = br__store_check_name(group, "consumer group");
    if (st != BR_OK) return st;
    size_t c = 0;
    char pos[BR_EVENTS_POS_MAX] = "";
    st = ev->ops->read(ev, group, max, fn, user, &c, pos);
    if (count) *count = c;
    if (last) memcpy(last, pos, BR_EVENTS_POS_MAX);
    return st;
}

br_status br_events_ack(br_events *ev, const char *group, const char *pos)
{
    if (!ev || !pos) return br_error(BR_EINVAL, "br_events_ack: NULL argument");
    if (ev->flags & BR_EVENTS_RDONLY) return br_error(BR_EINVAL, "the event log is read-only");
    br_status st = br__store_check_name(group, "consumer group");
    if (st != BR_OK) return st;
    if (!pos[0]) return BR_OK; /* an empty read: nothing to acknowledge */
    return ev->ops->ack(ev, group, pos);
}

br_status br_events_count(br_events *ev, uint64_t *n)
{
    if (!ev || !n) return br_error(BR_EINVAL, "br_events_count: NULL argument");
    return ev->ops->count(ev, n);
}

br_status br_events_trim(br_events *ev, uint64_t *removed)
{
    if (removed) *removed = 0;
    if (!ev) return br_error(BR_EINVAL, "br_events_trim: NULL argument");
    if (ev->flags & BR_EVENTS_RDONLY) return br_error(BR_EINVAL, "the event log is read-only");
    uint64_t n = 0;
    br_status st = ev->ops->trim ? ev->ops->trim(ev, &n) : BR_OK;
    if (removed) *removed = n;
    return st;
}
