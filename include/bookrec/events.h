/*
 * bookrec/events.h: reader interactions (rating, click, view, purchase) and
 * the event log they are appended to between two `bookrec train` runs.
 *
 * Two backends behind one handle, chosen by URI (see docs/store.md):
 *   file:PATH            an append-only, fsynced log file (the embedded case)
 *   lmdb:DIR             the log beside an LMDB store: DIR/events.log
 *   redis://HOST:PORT[/DB][?options]   a Redis Stream, `{prefix}events`
 *   redis-cluster://HOST:PORT[,...][?options]   partitioned streams, one
 *                        per share of the slots (docs/store.md)
 *
 * Consumption is at-least-once with explicit acknowledgement, the same on
 * both backends: br_events_read hands over the events a consumer group has
 * not acknowledged yet (oldest first, re-delivering anything read but not
 * acknowledged), and br_events_ack moves the group's checkpoint past them.
 * A consumer that folds events into a model and records the position in the
 * model before acknowledging never loses an event and never counts one
 * twice (skip positions <= the recorded one after a crash).
 */
#ifndef BOOKREC_EVENTS_H
#define BOOKREC_EVENTS_H

#include "bookrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum br_event_type {
    BR_EVENT_RATING = 0,
    BR_EVENT_CLICK = 1,
    BR_EVENT_VIEW = 2,
    BR_EVENT_PURCHASE = 3,
} br_event_type;

#define BR_EVENT_NTYPES 4

/* Ids are external strings of 1..BR_ID_MAX-1 bytes without control
 * characters (bytes < 0x20 or 0x7f); the same limit applies in the store. */
#define BR_ID_MAX 64

typedef struct br_event {
    const char *user_id;
    const char *book_id;
    br_event_type type;
    float value;       /* the rating, or a weight (1 for a click) */
    int64_t timestamp; /* Unix seconds by convention; only its order matters */
} br_event;

/* "rating", "click", "view", "purchase"; NULL for an invalid type. */
BR_API const char *br_event_type_name(br_event_type type);
/* Parses one of the names above (exact, lower case). BR_EPARSE otherwise. */
BR_API br_status br_event_type_parse(const char *name, br_event_type *out);
/* The structural check: ids, type, value finite; BR_EINVAL with a detail
 * otherwise. What the event-log backends and the store check on every
 * append (an event that passed br_event_check passes this). */
BR_API br_status br_event_validate(const br_event *e);

/* What an event must satisfy beyond its structure: the rating scale of the
 * model version it is checked against (docs/store.md, "Which events are
 * valid"). br_event_rules_from_manifest (bookrec/train.h) reads it from a
 * version's manifest or the store's metadata. */
typedef struct br_event_rules {
    float rating_min, rating_max; /* the rating scale, both inclusive */
} br_event_rules;

#define BR_EVENT_RULES_DEFAULT                                                                     \
    {                                                                                              \
        1.0f, 5.0f                                                                                 \
    }

/* The one check of an event from outside (POST /api/events, `bookrec
 * ingest`, the events `bookrec train` folds in): br_event_validate's, then
 * a timestamp >= 0; a rating's value within the scale of `rules` (NULL: no
 * scale known, any finite rating); a click's, view's or purchase's value,
 * a weight, >= 0. BR_EINVAL with a detail naming the problem, e.g.
 * "rating 99 is outside the rating scale 1..5". Books are not looked up:
 * whether a book exists is the caller's question (its catalogue or store). */
BR_API br_status br_event_check(const br_event *e, const br_event_rules *rules);

/* ------------------------------------------------------------- the log -- */

typedef struct br_events br_events;

/* Position of an event in the log, as text: a byte offset for the file
 * backend, a stream id ("1718000000000-0") for Redis, "PARTITION/ID" for
 * a Redis Cluster's partitioned log ("3/1718000000000-0"). The position a
 * read ends at (`last`) is of the same kind, except on a cluster: there it
 * is the vector of every partition's last id, "ID0,ID1,..." ("0" for a
 * partition nothing was read from). Compare and combine positions with
 * br_events_pos_covers and br_events_pos_advance, not as text. Fits in
 * this size. */
#define BR_EVENTS_POS_MAX 2048

enum {
    BR_EVENTS_RDONLY = 1u << 0, /* no append, no ack; the file is not repaired */
};

/* Opens (creating when missing, unless BR_EVENTS_RDONLY) the log at `uri`.
 * Opening the file log for writing truncates a torn tail left by a crash
 * (a last record cut short or failing its checksum) and logs a warning;
 * damage before the last record is BR_EFORMAT, never silently dropped. */
BR_API br_status br_events_open(const char *uri, unsigned flags, br_events **out);
BR_API void br_events_close(br_events *ev);

/* Appends `n` events (validated first: nothing is written if one is bad).
 * Durable when this returns BR_OK: the file is fdatasync'ed; Redis has
 * acknowledged every XADD. All or nothing: on failure the file log is as it
 * was (none of the batch is read later). Safe from several threads and
 * processes; the file log group-commits the appends of one handle's
 * threads (those that arrive while a sync runs share the next one). */
BR_API br_status br_events_append(br_events *ev, const br_event *events, size_t n);

/* Called once per event; return BR_OK to go on, anything else stops the
 * read and is returned. `pos` is the event's position. */
typedef br_status (*br_event_fn)(const br_event *e, const char *pos, void *user);

/* Delivers, oldest first, up to `max` (0: all) events not yet acknowledged
 * by consumer group `group` ([A-Za-z0-9._-], 1..63 bytes). *count (may be
 * NULL) receives how many were delivered, `last` (BR_EVENTS_POS_MAX bytes,
 * may be NULL) the position of the last one ("" when none). Nothing is
 * acknowledged: reading again without br_events_ack delivers the same
 * events again. */
BR_API br_status br_events_read(br_events *ev, const char *group, size_t max, br_event_fn fn,
                                void *user, size_t *count, char *last);

/* Acknowledges every event of `group` up to and including position `pos`
 * (as given by br_events_read). Acknowledging an older position than the
 * group's checkpoint is a no-op. */
BR_API br_status br_events_ack(br_events *ev, const char *group, const char *pos);

/* 1 when the event at `pos` lies at or before `mark` (a position or a
 * read's end position of the same log; "" marks nothing): an event a
 * consumer already counted, delivered again after a crash. 0 otherwise,
 * and for positions that do not parse. */
BR_API int br_events_pos_covers(const char *mark, const char *pos);
/* Moves `mark` (BR_EVENTS_POS_MAX bytes; "" for none) forward to cover
 * `pos` too: an event's position, or another end position (the later of
 * the two, partition by partition). BR_EINVAL when they do not parse or
 * are of different kinds. */
BR_API br_status br_events_pos_advance(char *mark, const char *pos);

/* Number of events in the log (the file's records, the stream's length). */
BR_API br_status br_events_count(br_events *ev, uint64_t *n);

/* Removes the events every consumer group of the log has acknowledged.
 * Redis: XTRIM MINID below the oldest entry any group still needs (its
 * oldest pending entry, else the one after its last delivered one); a
 * stream without groups is not trimmed (nobody has consumed anything). The
 * file log is append-only and kept whole (its checkpoints are byte
 * offsets): nothing is removed. *removed (may be NULL) receives how many
 * events went. A group created while the trim runs may miss events older
 * than the other groups' positions: create groups before trimming. */
BR_API br_status br_events_trim(br_events *ev, uint64_t *removed);

/* ------------------------------------------------------- input files -- */

/* Reads interactions from a CSV file with the header
 * `user_id,book_id,type,value,timestamp` (any column order, extra columns
 * ignored) or, when the name ends in .jsonl or .ndjson, JSON lines with
 * those keys ({"user_id": "u1", "book_id": "b7", "type": "click",
 * "value": 1, "timestamp": 1718000000}; ids may be JSON strings or
 * integers). Every event is checked (br_event_check without a scale); the
 * first bad one fails the read with a "path:line: ..." detail. `fn`
 * receives each event (pos = "path:line"). */
BR_API br_status br_events_read_file(const char *path, br_event_fn fn, void *user);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_EVENTS_H */
