/*
 * events.c: interaction types, the event check, and the event-log front end
 * that picks the backend from the URI (events_file.c, events_redis.c).
 */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
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
    if (!strncmp(uri, "redis://", 8)) return br__events_redis_open(uri + 8, 0, flags, out);
    if (!strncmp(uri, "redis-cluster://", 16))
        return br__events_redis_open(uri + 16, 1, flags, out);
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
                    "event log URI '%s': expected file:PATH, lmdb:DIR, redis://HOST:PORT[/DB] "
                    "or redis-cluster://HOST:PORT[,HOST:PORT...]",
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

/* ------------------------------------------------------------ positions -- */

/* A position as a vector of (a, b) pairs: a file offset "N" is (N, 0), a
 * stream id "MS-SEQ" (MS, SEQ), a read's end on a cluster "ID0,ID1,..."
 * one pair per partition. Pairs grow along their log (partition). */
#define POS_PARTS 64

typedef struct pos_vec {
    int n;
    unsigned long long a[POS_PARTS], b[POS_PARTS];
    char dash[POS_PARTS]; /* printed as "A-B" (a stream id) */
} pos_vec;

static int parse_pair(const char *p, size_t len, unsigned long long *a, unsigned long long *b,
                      char *dash)
{
    char buf[64], *end;
    if (len == 0 || len >= sizeof buf || p[0] < '0' || p[0] > '9') return 0;
    memcpy(buf, p, len);
    buf[len] = '\0';
    errno = 0;
    *a = strtoull(buf, &end, 10);
    *b = 0;
    *dash = *end == '-';
    if (*dash) {
        if (end[1] < '0' || end[1] > '9') return 0;
        *b = strtoull(end + 1, &end, 10);
    }
    return !errno && *end == '\0';
}

/* "ID0,ID1,..." (one component: a plain position) into v. */
static int parse_vec(const char *s, pos_vec *v)
{
    v->n = 0;
    if (!s[0]) return 1;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (v->n == POS_PARTS || !parse_pair(s, len, &v->a[v->n], &v->b[v->n], &v->dash[v->n]))
            return 0;
        v->n++;
        if (!comma) return 1;
        s = comma + 1;
    }
}

/* "PARTITION/ID": the partition and the pair; -1 when pos is not one. */
static int parse_event_pos(const char *pos, unsigned long long *a, unsigned long long *b,
                           char *dash)
{
    const char *slash = strchr(pos, '/');
    if (!slash) return -1;
    char *end;
    long p = strtol(pos, &end, 10);
    if (end != slash || p < 0 || p >= POS_PARTS || pos[0] < '0' || pos[0] > '9') return -2;
    return parse_pair(slash + 1, strlen(slash + 1), a, b, dash) ? (int)p : -2;
}

static int pair_le(unsigned long long xa, unsigned long long xb, unsigned long long ya,
                   unsigned long long yb)
{
    return xa < ya || (xa == ya && xb <= yb);
}

int br_events_pos_covers(const char *mark, const char *pos)
{
    if (!mark || !pos || !mark[0]) return 0;
    pos_vec m;
    if (!parse_vec(mark, &m)) return 0;
    unsigned long long a, b;
    char dash;
    int p = parse_event_pos(pos, &a, &b, &dash);
    if (p == -2) return 0;
    if (p >= 0) return p < m.n && pair_le(a, b, m.a[p], m.b[p]) && !(m.a[p] == 0 && m.b[p] == 0);
    pos_vec x;
    if (!parse_vec(pos, &x) || x.n == 0 || x.n != m.n) return 0;
    for (int i = 0; i < x.n; i++)
        if (!pair_le(x.a[i], x.b[i], m.a[i], m.b[i])) return 0;
    return 1;
}

br_status br_events_pos_advance(char *mark, const char *pos)
{
    if (!mark || !pos) return br_error(BR_EINVAL, "br_events_pos_advance: NULL argument");
    pos_vec m, x;
    if (!parse_vec(mark, &m)) return br_error(BR_EINVAL, "'%s' is not an event log position", mark);
    unsigned long long a, b;
    char dash;
    int p = parse_event_pos(pos, &a, &b, &dash);
    if (p == -2) return br_error(BR_EINVAL, "'%s' is not an event log position", pos);
    if (p >= 0) {
        /* one partition's event: a vector with at least p + 1 parts */
        x.n = p + 1;
        for (int i = 0; i < p; i++) x.a[i] = x.b[i] = 0, x.dash[i] = 0;
        x.a[p] = a, x.b[p] = b, x.dash[p] = dash;
    } else if (!parse_vec(pos, &x)) {
        return br_error(BR_EINVAL, "'%s' is not an event log position", pos);
    }
    int n = m.n > x.n ? m.n : x.n;
    for (int i = 0; i < n; i++) {
        if (i >= m.n) m.a[i] = m.b[i] = 0, m.dash[i] = 0;
        if (i < x.n && !pair_le(x.a[i], x.b[i], m.a[i], m.b[i]))
            m.a[i] = x.a[i], m.b[i] = x.b[i], m.dash[i] = x.dash[i];
    }
    m.n = n;
    char out[BR_EVENTS_POS_MAX];
    size_t len = 0;
    for (int i = 0; i < m.n; i++) {
        int w = m.dash[i] ? snprintf(out + len, sizeof out - len, "%s%llu-%llu", i ? "," : "",
                                     m.a[i], m.b[i])
                          : snprintf(out + len, sizeof out - len, "%s%llu", i ? "," : "", m.a[i]);
        if (w < 0 || (size_t)w >= sizeof out - len)
            return br_error(BR_EINVAL, "event log position longer than %d bytes",
                            BR_EVENTS_POS_MAX - 1);
        len += (size_t)w;
    }
    memcpy(mark, out, len + 1);
    return BR_OK;
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
