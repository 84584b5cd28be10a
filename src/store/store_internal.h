/*
 * store_internal.h (internal): what the store front end (store.c) shares
 * with its backends (store_lmdb.c, store_redis.c): the backend vtable, the
 * common handle headers, the value codecs both backends use (so an LMDB
 * value and a Redis value of the same thing are the same bytes), and the
 * URI query-option parser.
 */
#ifndef BR_STORE_INTERNAL_H
#define BR_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bookrec/store.h"

typedef struct br_store_ops {
    const char *name;
    void (*close)(br_store *s);
    br_status (*info)(br_store *s, br_store_info *info, char **meta);
    br_status (*get_recs)(br_store *s, const char *user, br_store_rec *out, size_t cap, size_t *n,
                          char *version);
    br_status (*is_seen)(br_store *s, const char *user, const char *book, int *seen);
    br_status (*get_seen)(br_store *s, const char *user, br_store_ids **out);
    br_status (*get_recent)(br_store *s, const char *user, br_store_interaction *out, size_t cap,
                            size_t *n);
    br_status (*get_book)(br_store *s, const char *book, br_store_book **out);
    /* The three reader reads together (inputs checked, outputs zeroed by
     * the front end; on failure the backend frees what it allocated). */
    br_status (*get_reader)(br_store *s, const char *user, br_store_reader *r);
    /* Online updates. `seen_user`/`seen_books`: n_seen additions to one
     * reader (add_seen); `events`: interactions, each also marking seen
     * when `mark_seen`. */
    br_status (*update)(br_store *s, const char *seen_user, const char *const *seen_books,
                        size_t n_seen, const br_event *events, size_t n_events, int mark_seen);
    br_status (*put_book)(br_store *s, const br_store_book *book);
    /* Posted books: values (br__store_posted_encode) by book id, outside
     * the versions. get_posted copies the value to the heap (br_free). */
    br_status (*put_posted)(br_store *s, const char *book, const void *val, size_t len);
    br_status (*get_posted)(br_store *s, const char *book, unsigned char **val, size_t *len);
    br_status (*list_posted)(br_store *s,
                             br_status (*fn)(const char *book, size_t book_len,
                                             const unsigned char *val, size_t len, void *user),
                             void *user);
    br_status (*posted_count)(br_store *s, uint64_t *n);

    br_status (*pub_begin)(br_store *s, const char *version, br_store_pub **out);
    br_status (*pub_recs)(br_store_pub *p, const char *user, const void *val, size_t len);
    br_status (*pub_seen)(br_store_pub *p, const char *user, const char *const *books, size_t n);
    br_status (*pub_recent)(br_store_pub *p, const br_event *events, size_t n);
    br_status (*pub_book)(br_store_pub *p, const br_store_book *book);
    br_status (*pub_commit)(br_store_pub *p); /* frees p */
    void (*pub_abort)(br_store_pub *p);       /* frees p */
} br_store_ops;

/* The first member of every backend's handle. */
struct br_store {
    const br_store_ops *ops;
    unsigned flags;
};

/* The first member of every backend's publish object. */
struct br_store_pub {
    br_store *store;
    char version[BR_STORE_VERSION_MAX];
    uint64_t n_users, n_books;
    char *meta; /* JSON text or NULL */
    int failed; /* a put failed: only abort is allowed */
};

/* ---------------------------------------------------------- byte order -- */

static inline void br_put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static inline void br_put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void br_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
/* Little-endian hosts read a field with one (unaligned) load; GCC does not
 * merge the byte loop into one at -O2, and the serving path reads several
 * fields per id (a visible share of `bookrec serve`'s handler in perf). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define BR_LE_HOST 1
#else
#define BR_LE_HOST 0
#endif
static inline uint16_t br_get_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t br_get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    if (BR_LE_HOST) {
        memcpy(&v, p, 4);
        return v;
    }
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline uint64_t br_get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    if (BR_LE_HOST) {
        memcpy(&v, p, 8);
        return v;
    }
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline void br_put_f32(unsigned char *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    br_put_u32(p, v);
}
static inline float br_get_f32(const unsigned char *p)
{
    uint32_t v = br_get_u32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

/* ---------------------------------------------------------------- codecs -- */

/* recs value: u32 n, then n x {f32 score, u8 len, len bytes of book id}. */
br_status br__store_recs_encode(const char *const *books, const float *scores, size_t n,
                               unsigned char **out, size_t *len);
/* A reader's recs value into r: through r->resolve into rec_idx and
 * rec_score when it is set, else into r->recs; sets n_recs and has_recs. */
br_status br__store_recs_read(const unsigned char *v, size_t len, br_store_reader *r);
/* Sets r->n_seen to a seen set's size n; 1: its ids go through
 * br__store_seen_resolve (a resolver, and they fit seen_idx), 0: into
 * r->seen as an id list. */
int br__store_seen_resolving(br_store_reader *r, size_t n);
/* One seen id through r's resolver into seen_idx (when it resolves and
 * fits). */
void br__store_seen_resolve(br_store_reader *r, const char *id, size_t len);
br_status br__store_recs_decode(const unsigned char *v, size_t len, br_store_rec *out, size_t cap,
                               size_t *n);

/* book value: "BK" u8 format(1), i32 year, i32 tribe, then title, authors,
 * genre, image_url, extra, each u32 len + bytes. */
br_status br__store_book_encode(const br_store_book *b, unsigned char **out, size_t *len);
/* One allocation holding the struct and its strings (br_free). */
br_status br__store_book_decode(const char *id, const unsigned char *v, size_t len,
                               br_store_book **out);
br_status br__store_book_check(const br_store_book *b);

/* posted book value: "PB" u8 format(1), i64 posted_at, i32 year, i32
 * tribe, u32 dim, then title, authors, genre, image_url, extra, tags,
 * description, encoder, template, each u32 len + bytes, then dim x f32. */
br_status br__store_posted_encode(const br_store_posted *b, unsigned char **out, size_t *len);
/* One allocation holding the struct, its vector and strings (br_free). */
br_status br__store_posted_decode(const char *id, size_t id_len, const unsigned char *v,
                                 size_t len, br_store_posted **out);

/* An interaction as text, the member of a Redis sorted set and the entry of
 * an LMDB recent list: "TIMESTAMP\tTYPE\tVALUE\tBOOK" (value as %.9g, so a
 * float round-trips). Returns the length; buf holds >= BR_STORE_MEMBER_MAX. */
#define BR_STORE_MEMBER_MAX (24 + 12 + 20 + BR_ID_MAX)
size_t br__store_member_format(const br_event *e, char *buf);
br_status br__store_member_parse(const char *m, size_t len, br_store_interaction *out);
/* Order of the latest-interactions list: timestamp descending, then member
 * bytes descending (what Redis ZREVRANGE does for equal scores). */
int br__store_member_cmp(const char *a, size_t alen, int64_t ats, const char *b, size_t blen,
                        int64_t bts);

/* A list of ids in one allocation. */
br_status br__store_ids_build(const char *const *ids, const size_t *lens, size_t n,
                             br_store_ids **out);

/* Version names: [A-Za-z0-9._-]{1,63}. Also consumer-group names. */
br_status br__store_check_name(const char *name, const char *what);

/* ------------------------------------------------------------- options -- */

/* Splits "base?k=v&k=v": returns the base (heap) and calls fn per option.
 * An option fn does not know is an error (BR_EINVAL naming it). */
typedef br_status (*br_store_opt_fn)(const char *key, const char *val, void *user);
br_status br__store_parse_options(const char *uri, char **base, br_store_opt_fn fn, void *user);
/* Strict non-negative integer option value. */
br_status br__store_opt_u64(const char *key, const char *val, uint64_t lo, uint64_t hi,
                           uint64_t *out);

/* Backends. `rest` is the URI without its scheme. */
br_status br__store_lmdb_open(const char *uri, unsigned flags, br_store **out);
br_status br__store_redis_open(const char *uri, int cluster, unsigned flags, br_store **out);

#endif
