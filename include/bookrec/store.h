/*
 * bookrec/store.h: the serving store, what `bookrec train` publishes and
 * `bookrec serve` reads on every request.
 *
 * Per reader: the precomputed top-N (book ids and scores), the seen set and
 * the latest interactions; per book: the details the API returns; per model
 * version: its name, counts and a JSON metadata blob. One interface, three
 * backends chosen by URI (layouts, keys and atomicity in docs/store.md):
 *
 *   lmdb:DIR[?options]                      embedded, the default
 *   redis://HOST:PORT[/DB][?options]        Redis via hiredis
 *   redis-cluster://HOST:PORT[,HOST:PORT...][?options]
 *                                           a Redis Cluster (the same keys,
 *                                           each reader's on one node)
 *
 * Versioning. A publish writes a complete model version (recs and books)
 * beside the one being served and switches to it in one atomic step:
 * readers see the old version or the new one, never a mix, and a publish
 * that fails or is killed leaves the old version serving. The seen sets and
 * the latest interactions are not versioned: they belong to the reader, not
 * to a model. A publish merges into them (set union; the interaction lists
 * merged by time, identical entries once, capped at BR_STORE_RECENT_MAX),
 * and the server's online updates land in them at once and survive every
 * later publish. Recs are replaced wholesale by each publish.
 *
 * Threads. A br_store handle may be shared by any number of threads for
 * reads and online updates (LMDB: pooled read transactions; Redis: a small
 * connection pool). A publish object belongs to one thread.
 */
#ifndef BOOKREC_STORE_H
#define BOOKREC_STORE_H

#include "bookrec/core.h"
#include "bookrec/events.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version names: 1..63 bytes of [A-Za-z0-9._-]. */
#define BR_STORE_VERSION_MAX 64
/* Most interactions kept per reader (most recent first). */
#define BR_STORE_RECENT_MAX 50

typedef struct br_store br_store;
typedef struct br_store_pub br_store_pub;

enum {
    BR_STORE_RDONLY = 1u << 0, /* reads only: every write fails with BR_EINVAL */
};

/* One recommendation as read back. */
typedef struct br_store_rec {
    char book_id[BR_ID_MAX];
    float score;
} br_store_rec;

/* One entry of a reader's latest interactions. */
typedef struct br_store_interaction {
    char book_id[BR_ID_MAX];
    br_event_type type;
    float value;
    int64_t timestamp;
} br_store_interaction;

/* A book's details. On write, NULL strings mean absent; on read every
 * string is non-NULL ("" when absent). `extra` is an opaque JSON text the
 * store keeps as is (page count, anything the API wants to add). */
typedef struct br_store_book {
    const char *id;
    const char *title;
    const char *authors;
    const char *genre;
    const char *image_url;
    const char *extra;
    int32_t year;  /* INT32_MIN when unknown (BR_YEAR_UNKNOWN) */
    int32_t tribe; /* content cluster, -1 when none */
} br_store_book;

/* What is being served. */
typedef struct br_store_info {
    char version[BR_STORE_VERSION_MAX];
    int64_t published_at; /* Unix seconds of the switch */
    uint64_t n_users;     /* readers with recs in this version */
    uint64_t n_books;     /* books in this version */
} br_store_info;

/* A list of ids in one allocation: release with br_free. */
typedef struct br_store_ids {
    size_t n;
    char **ids;
} br_store_ids;

/* Opens the store at `uri` (LMDB: creating the directory and the database
 * when missing, unless BR_STORE_RDONLY). A Redis store connects lazily but
 * checks the server once here: unreachable is BR_ENET. */
BR_API br_status br_store_open(const char *uri, unsigned flags, br_store **out);
BR_API void br_store_close(br_store *s);
/* "lmdb" or "redis". */
BR_API const char *br_store_backend(const br_store *s);

/* ---------------------------------------------------------------- reads -- */

/* The version being served; BR_ENOTFOUND when nothing was ever published. */
BR_API br_status br_store_info_get(br_store *s, br_store_info *info);
/* Just its name into buf (cap >= BR_STORE_VERSION_MAX). */
BR_API br_status br_store_version(br_store *s, char *buf, size_t cap);
/* The JSON metadata of the version being served (heap, br_free); "{}" when
 * the publisher set none. */
BR_API br_status br_store_get_meta(br_store *s, char **json);

/* Up to `cap` of the reader's recs, best first; *n receives how many.
 * `version` (BR_STORE_VERSION_MAX bytes, may be NULL) receives the version
 * they were read from: recs and version always come from the same
 * version. BR_ENOTFOUND when the reader has no recs in the served version. */
BR_API br_status br_store_get_recs(br_store *s, const char *user_id, br_store_rec *out, size_t cap,
                                   size_t *n, char *version);

/* Membership in the reader's seen set (*seen = 0 for an unknown reader). */
BR_API br_status br_store_is_seen(br_store *s, const char *user_id, const char *book_id, int *seen);
/* The whole seen set, sorted bytewise (empty for an unknown reader). */
BR_API br_status br_store_get_seen(br_store *s, const char *user_id, br_store_ids **out);
/* Up to `cap` latest interactions, most recent first (ties: see
 * docs/store.md); *n = 0 for an unknown reader. */
BR_API br_status br_store_get_recent(br_store *s, const char *user_id, br_store_interaction *out,
                                     size_t cap, size_t *n);
/* Everything `bookrec serve` reads about one reader for a request, in one
 * call: the recs of the served version, the latest interactions and the
 * seen set. The caller sets the four input members (its own buffers; a cap
 * may be 0, then that part is not read); the call fills the rest. The three
 * parts are read together: LMDB, one read transaction (a consistent
 * snapshot); Redis, one pipelined round trip that also reads the version
 * pointer, so the recs are those of the version it named (a second trip
 * only right after a switch). Release `seen` with br_store_reader_free.
 *
 * Optionally the book ids of the recs and of the seen set are mapped to the
 * caller's own indices as they are read, straight from the store's buffers
 * (no copies, no allocation: the serving path, which wants indices). With
 * `resolve` set, the recs go to rec_idx and rec_score ((recs_cap,) each; an
 * id that resolves to -1 gets UINT32_MAX and keeps its place and score)
 * and `recs` is not used; the seen set goes to seen_idx ((seen_cap,); ids
 * that resolve to -1 are left out, n_seen counts every id), or, when it
 * holds more than seen_cap ids, to `seen` as without a resolver. `resolve`
 * is called from within the read (a transaction or a reply being parsed);
 * it must not call the store. */
typedef struct br_store_reader {
    /* in */
    br_store_rec *recs;           /* (recs_cap,) */
    size_t recs_cap;              /* at most this many recs, best first */
    br_store_interaction *recent; /* (recent_cap,) */
    size_t recent_cap;            /* at most this many, most recent first */
    /* in, optional: the id resolver and its buffers */
    int64_t (*resolve)(void *ctx, const char *id, size_t len);
    void *resolve_ctx;
    uint32_t *rec_idx;  /* (recs_cap,) */
    float *rec_score;   /* (recs_cap,) */
    uint32_t *seen_idx; /* (seen_cap,) */
    size_t seen_cap;
    /* out */
    size_t n_recs;
    int has_recs; /* 0: no recs in the served version, none published, or recs_cap 0 */
    char version[BR_STORE_VERSION_MAX]; /* the served version, "" when none */
    size_t n_recent;
    br_store_ids *seen; /* sorted bytewise; NULL after BR_OK only when seen_idx has it */
    size_t n_seen;      /* the seen set's size */
    size_t n_seen_idx;  /* with resolve: entries in seen_idx */
} br_store_reader;

/* A reader without recs or without a published version is not an error
 * (has_recs = 0); an unknown reader reads as empty. On failure nothing is
 * left to free. */
BR_API br_status br_store_get_reader(br_store *s, const char *user_id, br_store_reader *r);
/* Frees r->seen (NULL-safe) and sets it to NULL. */
BR_API void br_store_reader_free(br_store_reader *r);

/* A book of the served version, else a posted one (below); BR_ENOTFOUND
 * when unknown. Release the result (one allocation) with br_free. */
BR_API br_status br_store_get_book(br_store *s, const char *book_id, br_store_book **out);

/* ------------------------------------------------------- online updates -- */

/* Adds books to a reader's seen set. Kept across publishes. */
BR_API br_status br_store_add_seen(br_store *s, const char *user_id, const char *const *book_ids,
                                   size_t n);
/* Adds interactions to their readers' lists (each event names its reader). */
BR_API br_status br_store_push_recent(br_store *s, const br_event *events, size_t n);
/* Both at once, what the server does for POST /api/events: every event's
 * book joins its reader's seen set and the reader's latest interactions.
 * One LMDB transaction, one Redis round trip. */
BR_API br_status br_store_apply_events(br_store *s, const br_event *events, size_t n);
/* Adds or replaces a book in the served version (a book that arrives
 * between two publishes); the next publish replaces the book table. */
BR_API br_status br_store_put_book(br_store *s, const br_store_book *book);

/* A book posted at run time (`bookrec serve`, POST /api/books), with what
 * a server needs to serve it again: its text and its embedding. Posted
 * books are not versioned (like the seen sets): they survive every
 * publish and restart, and br_store_get_book finds one that the served
 * version does not hold. On write, NULL strings are absent; on read every
 * string is non-NULL. */
typedef struct br_store_posted {
    br_store_book book; /* first: a br_store_posted * is a br_store_book * */
    const char *tags;   /* pipe-separated */
    const char *description;
    const char *encoder;       /* the encoder `vec` came from (a manifest's parameters.encoder) */
    const char *text_template; /* the book-text template embedded: "full" or "description" */
    const float *vec;          /* (dim,) the book's embedding */
    uint32_t dim;
    int64_t posted_at; /* Unix seconds */
} br_store_posted;

/* Adds or replaces a posted book. */
BR_API br_status br_store_put_posted(br_store *s, const br_store_posted *book);
/* Calls fn once for every posted book (LMDB: in id order); a non-zero
 * status from fn stops the walk and is returned. `book` lives for the
 * call only. */
typedef br_status (*br_store_posted_fn)(const br_store_posted *book, void *user);
BR_API br_status br_store_list_posted(br_store *s, br_store_posted_fn fn, void *user);
/* How many books are posted: a cheap check (O(1)) that tells a server
 * whether another server posted one since it last listed them. */
BR_API br_status br_store_posted_count(br_store *s, uint64_t *n);

/* -------------------------------------------------------------- publish -- */

/* Starts writing model version `version` beside the served one. Only one
 * publish at a time per store (BR_EEXIST while another one runs, or when
 * `version` is the one being served). */
BR_API br_status br_store_publish_begin(br_store *s, const char *version, br_store_pub **out);
/* The reader's recs, best first (n may be 0: an empty list). Putting the
 * same reader twice keeps the last. */
BR_API br_status br_store_pub_put_recs(br_store_pub *p, const char *user_id,
                                       const char *const *book_ids, const float *scores, size_t n);
/* Merged into the reader's seen set (union). */
BR_API br_status br_store_pub_put_seen(br_store_pub *p, const char *user_id,
                                       const char *const *book_ids, size_t n);
/* Merged into the readers' latest interactions. */
BR_API br_status br_store_pub_put_recent(br_store_pub *p, const br_event *events, size_t n);
BR_API br_status br_store_pub_put_book(br_store_pub *p, const br_store_book *book);
/* The version's JSON metadata (any JSON text; the store does not parse it). */
BR_API br_status br_store_pub_set_meta(br_store_pub *p, const char *json);
/* Switches readers to the new version atomically, then releases the old
 * one (LMDB: its slot is reused by the next publish; Redis: its keys
 * expire after a grace period). Frees `p` whatever the outcome; on failure
 * the previous version is still served. */
BR_API br_status br_store_publish_commit(br_store_pub *p);
/* Drops the half-written version; frees `p`. NULL is a no-op. */
BR_API void br_store_publish_abort(br_store_pub *p);

/* ---------------------------------------------------------------- ids -- */

/* BR_OK when `id` is a valid reader/book id (1..BR_ID_MAX-1 bytes, no
 * control characters), BR_EINVAL with a detail naming `what` otherwise. */
BR_API br_status br_store_check_id(const char *id, const char *what);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_STORE_H */
