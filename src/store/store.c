/*
 * store.c: the store front end. Picks the backend from the URI, validates
 * every argument once (ids, versions, lengths) so the backends can trust
 * them, and holds the value codecs both backends share: the same recs list
 * or interaction is the same bytes in LMDB and in Redis.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/idcheck.h"
#include "store/store_internal.h"

/* ------------------------------------------------------------ validation -- */

br_status br_store_check_id(const char *id, const char *what)
{
    if (!id) return br_error(BR_EINVAL, "%s id is missing", what);
    size_t n = strlen(id);
    if (n == 0) return br_error(BR_EINVAL, "%s id is empty", what);
    if (n >= BR_ID_MAX)
        return br_error(BR_EINVAL, "%s id '%.20s...' is %zu bytes (at most %d)", what, id, n,
                        BR_ID_MAX - 1);
    size_t i = br__id_bad_byte(id, n);
    if (i < n)
        return br_error(BR_EINVAL, "%s id '%s' has a control character (byte %zu)", what, id, i);
    return BR_OK;
}

br_status br__store_check_name(const char *name, const char *what)
{
    if (!name || !*name) return br_error(BR_EINVAL, "%s name is empty", what);
    size_t n = strlen(name);
    if (n >= BR_STORE_VERSION_MAX)
        return br_error(BR_EINVAL, "%s name is %zu bytes (at most %d)", what, n,
                        BR_STORE_VERSION_MAX - 1);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return br_error(BR_EINVAL, "%s name '%s': only letters, digits, '.', '_', '-'", what,
                            name);
    }
    return BR_OK;
}

static br_status check_writable(br_store *s)
{
    if (s->flags & BR_STORE_RDONLY)
        return br_error(BR_EINVAL, "the store was opened read-only (BR_STORE_RDONLY)");
    return BR_OK;
}

static br_status check_events(const br_event *events, size_t n)
{
    if (n && !events) return br_error(BR_EINVAL, "events is NULL");
    for (size_t i = 0; i < n; i++) {
        br_status st = br_event_validate(&events[i]);
        if (st != BR_OK) return st;
    }
    return BR_OK;
}

static br_status check_ids(const char *const *ids, size_t n, const char *what)
{
    if (n && !ids) return br_error(BR_EINVAL, "%s ids are NULL", what);
    for (size_t i = 0; i < n; i++) {
        br_status st = br_store_check_id(ids[i], what);
        if (st != BR_OK) return st;
    }
    return BR_OK;
}

/* ----------------------------------------------------------------- codecs -- */

br_status br__store_recs_encode(const char *const *books, const float *scores, size_t n,
                               unsigned char **out, size_t *len)
{
    if (n > UINT32_MAX) return br_error(BR_ERANGE, "%zu recs in one list", n);
    size_t total = 4;
    for (size_t i = 0; i < n; i++) total += 5 + strlen(books[i]);
    unsigned char *v = br_malloc(total);
    if (!v) return br_error(BR_ENOMEM, "recs value of %zu bytes", total);
    br_put_u32(v, (uint32_t)n);
    unsigned char *p = v + 4;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(books[i]);
        br_put_f32(p, scores[i]);
        p[4] = (unsigned char)l;
        memcpy(p + 5, books[i], l);
        p += 5 + l;
    }
    *out = v;
    *len = total;
    return BR_OK;
}

/* Walks a recs value: put(ctx, k, score, id, id_len) for each of its first
 * `cap` entries (the id not NUL-terminated), every entry checked; *n gets
 * how many were put. */
static br_status recs_walk(const unsigned char *v, size_t len, size_t cap,
                           void (*put)(void *ctx, size_t k, float score, const char *id,
                                       size_t id_len),
                           void *ctx, size_t *n)
{
    if (len < 4) return br_error(BR_ESTORE, "corrupt recs value (%zu bytes)", len);
    uint32_t count = br_get_u32(v);
    size_t off = 4, k = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (off + 5 > len) return br_error(BR_ESTORE, "corrupt recs value: truncated");
        size_t l = v[off + 4];
        if (l == 0 || l >= BR_ID_MAX || off + 5 + l > len)
            return br_error(BR_ESTORE, "corrupt recs value: entry %u", i);
        if (k < cap) put(ctx, k++, br_get_f32(v + off), (const char *)v + off + 5, l);
        off += 5 + l;
    }
    if (off != len) return br_error(BR_ESTORE, "corrupt recs value: %zu trailing bytes", len - off);
    *n = k;
    return BR_OK;
}

static void put_copy(void *ctx, size_t k, float score, const char *id, size_t l)
{
    br_store_rec *out = ctx;
    out[k].score = score;
    memcpy(out[k].book_id, id, l);
    out[k].book_id[l] = '\0';
}

br_status br__store_recs_decode(const unsigned char *v, size_t len, br_store_rec *out, size_t cap,
                               size_t *n)
{
    return recs_walk(v, len, cap, put_copy, out, n);
}

br_status br__store_book_check(const br_store_book *b)
{
    if (!b) return br_error(BR_EINVAL, "book is NULL");
    br_status st = br_store_check_id(b->id, "book");
    if (st != BR_OK) return st;
    if (!b->title) return br_error(BR_EINVAL, "book '%s' has no title", b->id);
    const char *f[] = {b->title, b->authors, b->genre, b->image_url, b->extra};
    for (int i = 0; i < 5; i++)
        if (f[i] && strlen(f[i]) > (1u << 24))
            return br_error(BR_ERANGE, "book '%s': a field over 16 MiB", b->id);
    return BR_OK;
}

/* The string fields of a record (book, posted book): each u32 length +
 * bytes. Their encoded size; NULL is "". */
static size_t strs_size(const char *const *f, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) total += 4 + (f[i] ? strlen(f[i]) : 0);
    return total;
}

/* Writes them at p; returns the end. */
static unsigned char *strs_put(unsigned char *p, const char *const *f, int n)
{
    for (int i = 0; i < n; i++) {
        size_t l = f[i] ? strlen(f[i]) : 0;
        br_put_u32(p, (uint32_t)l);
        if (l) memcpy(p + 4, f[i], l);
        p += 4 + l;
    }
    return p;
}

/* Finds n of them in v from *off (their offsets and lengths; *off moves
 * past them); -1 when the value is cut short. *text grows by the bytes
 * they need as C strings. */
static int strs_scan(const unsigned char *v, size_t len, size_t *off, int n, size_t *soff,
                     size_t *slen, size_t *text)
{
    for (int i = 0; i < n; i++) {
        if (*off + 4 > len) return -1;
        slen[i] = br_get_u32(v + *off);
        soff[i] = *off + 4;
        if (slen[i] > len - soff[i]) return -1;
        *off = soff[i] + slen[i];
        *text += slen[i] + 1;
    }
    return 0;
}

/* Copies them as C strings from s on, pointing dst[i] at each; returns the
 * end. */
static char *strs_copy(char *s, const unsigned char *v, const size_t *soff, const size_t *slen,
                       const char **const *dst, int n)
{
    for (int i = 0; i < n; i++) {
        memcpy(s, v + soff[i], slen[i]);
        s[slen[i]] = '\0';
        *dst[i] = s;
        s += slen[i] + 1;
    }
    return s;
}

#define BOOK_FIELDS 5
#define BOOK_HEAD   (3 + 4 + 4)

br_status br__store_book_encode(const br_store_book *b, unsigned char **out, size_t *len)
{
    const char *f[BOOK_FIELDS] = {b->title, b->authors, b->genre, b->image_url, b->extra};
    size_t total = BOOK_HEAD + strs_size(f, BOOK_FIELDS);
    unsigned char *v = br_malloc(total);
    if (!v) return br_error(BR_ENOMEM, "book value of %zu bytes", total);
    v[0] = 'B';
    v[1] = 'K';
    v[2] = 1;
    br_put_u32(v + 3, (uint32_t)b->year);
    br_put_u32(v + 7, (uint32_t)b->tribe);
    strs_put(v + BOOK_HEAD, f, BOOK_FIELDS);
    *out = v;
    *len = total;
    return BR_OK;
}

br_status br__store_book_decode(const char *id, const unsigned char *v, size_t len,
                               br_store_book **out)
{
    if (len < BOOK_HEAD || v[0] != 'B' || v[1] != 'K' || v[2] != 1)
        return br_error(BR_ESTORE, "book '%s': corrupt or unknown record format", id);
    size_t off = BOOK_HEAD, slen[BOOK_FIELDS], soff[BOOK_FIELDS];
    size_t total = sizeof(br_store_book) + strlen(id) + 1;
    if (strs_scan(v, len, &off, BOOK_FIELDS, soff, slen, &total))
        return br_error(BR_ESTORE, "book '%s': truncated record", id);
    br_store_book *b = br_malloc(total);
    if (!b) return br_error(BR_ENOMEM, "book record");
    const char **dst[BOOK_FIELDS] = {&b->title, &b->authors, &b->genre, &b->image_url, &b->extra};
    char *s = strs_copy((char *)(b + 1), v, soff, slen, dst, BOOK_FIELDS);
    strcpy(s, id);
    b->id = s;
    b->year = (int32_t)br_get_u32(v + 3);
    b->tribe = (int32_t)br_get_u32(v + 7);
    *out = b;
    return BR_OK;
}

#define POSTED_FIELDS 9
#define POSTED_HEAD   (3 + 8 + 4 + 4 + 4)

br_status br__store_posted_encode(const br_store_posted *b, unsigned char **out, size_t *len)
{
    const char *f[POSTED_FIELDS] = {b->book.title,     b->book.authors, b->book.genre,
                                    b->book.image_url, b->book.extra,   b->tags,
                                    b->description,    b->encoder,      b->text_template};
    size_t total = POSTED_HEAD + strs_size(f, POSTED_FIELDS) + (size_t)b->dim * 4;
    unsigned char *v = br_malloc(total);
    if (!v) return br_error(BR_ENOMEM, "posted book value of %zu bytes", total);
    v[0] = 'P';
    v[1] = 'B';
    v[2] = 1;
    br_put_u64(v + 3, (uint64_t)b->posted_at);
    br_put_u32(v + 11, (uint32_t)b->book.year);
    br_put_u32(v + 15, (uint32_t)b->book.tribe);
    br_put_u32(v + 19, b->dim);
    unsigned char *p = strs_put(v + POSTED_HEAD, f, POSTED_FIELDS);
    for (uint32_t i = 0; i < b->dim; i++) br_put_f32(p + 4 * (size_t)i, b->vec[i]);
    *out = v;
    *len = total;
    return BR_OK;
}

br_status br__store_posted_decode(const char *id, size_t id_len, const unsigned char *v, size_t len,
                                 br_store_posted **out)
{
    if (len < POSTED_HEAD || v[0] != 'P' || v[1] != 'B' || v[2] != 1)
        return br_error(BR_ESTORE, "posted book '%.*s': corrupt or unknown record format",
                        (int)id_len, id);
    uint32_t dim = br_get_u32(v + 19);
    size_t off = POSTED_HEAD, slen[POSTED_FIELDS], soff[POSTED_FIELDS];
    /* the struct, then the vector (float-aligned), then the strings */
    size_t total = sizeof(br_store_posted) + (size_t)dim * sizeof(float) + id_len + 1;
    if (strs_scan(v, len, &off, POSTED_FIELDS, soff, slen, &total) || len - off != (size_t)dim * 4)
        return br_error(BR_ESTORE, "posted book '%.*s': truncated record", (int)id_len, id);
    br_store_posted *b = br_malloc(total);
    if (!b) return br_error(BR_ENOMEM, "posted book record");
    float *vec = (float *)(b + 1);
    for (uint32_t i = 0; i < dim; i++) vec[i] = br_get_f32(v + off + 4 * (size_t)i);
    const char **dst[POSTED_FIELDS] = {&b->book.title,     &b->book.authors, &b->book.genre,
                                       &b->book.image_url, &b->book.extra,   &b->tags,
                                       &b->description,    &b->encoder,      &b->text_template};
    char *s = strs_copy((char *)(vec + dim), v, soff, slen, dst, POSTED_FIELDS);
    memcpy(s, id, id_len);
    s[id_len] = '\0';
    b->book.id = s;
    b->posted_at = (int64_t)br_get_u64(v + 3);
    b->book.year = (int32_t)br_get_u32(v + 11);
    b->book.tribe = (int32_t)br_get_u32(v + 15);
    b->vec = vec;
    b->dim = dim;
    *out = b;
    return BR_OK;
}

size_t br__store_member_format(const br_event *e, char *buf)
{
    int n = snprintf(buf, BR_STORE_MEMBER_MAX, "%" PRId64 "\t%s\t%.9g\t%s", e->timestamp,
                     br_event_type_name(e->type), (double)e->value, e->book_id);
    return (size_t)n;
}

/* Fast paths of the entry parser (a request parses a dozen entries; the
 * C library's conversions were most of that). Each returns 0 to leave the
 * text to strtoll/strtof, which then decide exactly as before. */

/* [-]digits, at most 18 of them, from p up to end or the first other
 * byte (*stop): the exact value. */
static int int_scan(const char *p, const char *end, long long *out, const char **stop)
{
    int neg = p < end && *p == '-';
    p += neg;
    long long v = 0;
    int n = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++, n++) {
        if (n == 18) return 0;
        v = v * 10 + (*p - '0');
    }
    if (n == 0) return 0;
    *out = neg ? -v : v;
    *stop = p;
    return 1;
}

/* [-]digits[.digits] with at most 7 digits in all, from p up to end or the
 * first other byte (*stop): the digits form an integer below 2^24 and the
 * divisor a power of ten below 2^24, both exact in float, and IEEE
 * division rounds once, so the result is the correctly rounded value
 * strtof gives. */
static int decimal_scan(const char *p, const char *end, float *out, const char **stop)
{
    int neg = p < end && *p == '-';
    p += neg;
    uint32_t v = 0, div = 1;
    int n = 0, frac = 0;
    for (; p < end; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++n > 7) return 0;
            v = v * 10 + (uint32_t)(*p - '0');
            if (frac) div *= 10;
        } else if (*p == '.' && !frac && n > 0) {
            frac = 1;
            if (!(p + 1 < end && p[1] >= '0' && p[1] <= '9')) return 0;
        } else {
            break;
        }
    }
    if (n == 0) return 0;
    float f = (float)v / (float)div;
    *out = neg ? -f : f;
    *stop = p;
    return 1;
}

/* The whole of a NUL-terminated field. */
static int small_int(const char *p, long long *out)
{
    const char *end = p + strlen(p), *stop;
    return int_scan(p, end, out, &stop) && stop == end;
}

static int short_decimal(const char *p, float *out)
{
    const char *end = p + strlen(p), *stop;
    return decimal_scan(p, end, out, &stop) && stop == end;
}

/* The entry as br__store_member_format writes it ("TS\tTYPE\tVALUE\tBOOK",
 * no empty field, no NUL, small numbers), parsed where it lies: no copy,
 * no strlen, one pass. Returns 0 to leave anything else to the general
 * parser, which then decides exactly as before. */
static int member_fast(const char *p, size_t len, br_store_interaction *out)
{
    const char *end = p + len;
    long long ts;
    if (!int_scan(p, end, &ts, &p) || p == end || *p++ != '\t') return 0;
    const char *t = p;
    while (p < end && *p != '\t') p++;
    if (p == end) return 0;
    size_t tl = (size_t)(p++ - t);
    int type = -1;
    for (int i = 0; i < BR_EVENT_NTYPES && type < 0; i++) {
        const char *name = br_event_type_name((br_event_type)i);
        if (name[0] == t[0] && strlen(name) == tl && !memcmp(name, t, tl)) type = i;
    }
    if (type < 0) return 0;
    float value;
    if (!decimal_scan(p, end, &value, &p) || p == end || *p++ != '\t') return 0;
    size_t bl = (size_t)(end - p);
    if (bl == 0 || bl >= BR_ID_MAX) return 0;
    for (size_t i = 0; i < bl; i++)
        if (p[i] == '\t' || p[i] == '\0') return 0;
    memcpy(out->book_id, p, bl);
    out->book_id[bl] = '\0';
    out->value = value;
    out->type = (br_event_type)type;
    out->timestamp = ts;
    return 1;
}

br_status br__store_member_parse(const char *m, size_t len, br_store_interaction *out)
{
    if (member_fast(m, len, out)) return BR_OK;
    char buf[BR_STORE_MEMBER_MAX + 1];
    if (len > BR_STORE_MEMBER_MAX) return br_error(BR_ESTORE, "corrupt interaction entry");
    memcpy(buf, m, len);
    buf[len] = '\0';
    /* Four tab-separated fields, each non-empty (what strtok_r accepted,
     * without its per-call strspn/strcspn: this runs 50 times a request). */
    char *f[4], *p = buf, *end = buf + strlen(buf); /* a NUL inside ends it, as for strtok_r */
    int k = 0;
    while (k < 4) {
        while (p < end && *p == '\t') p++;
        if (p == end) break;
        f[k++] = p;
        char *tab = k < 4 ? memchr(p, '\t', (size_t)(end - p)) : NULL;
        if (!tab) {
            p = end;
            break;
        }
        *tab = '\0';
        p = tab + 1;
    }
    if (k < 4) return br_error(BR_ESTORE, "corrupt interaction entry '%.*s'", (int)len, m);
    /* strtok_r would end the last field at the next tab */
    char *tab = strchr(f[3], '\t');
    if (tab) *tab = '\0';
    char *e;
    long long ts;
    if (!small_int(f[0], &ts)) {
        errno = 0;
        ts = strtoll(f[0], &e, 10);
        if (errno || *e) return br_error(BR_ESTORE, "corrupt interaction timestamp '%s'", f[0]);
    }
    if (br_event_type_parse(f[1], &out->type) != BR_OK)
        return br_error(BR_ESTORE, "corrupt interaction type '%s'", f[1]);
    if (!short_decimal(f[2], &out->value)) {
        out->value = strtof(f[2], &e);
        if (*e) return br_error(BR_ESTORE, "corrupt interaction value '%s'", f[2]);
    }
    size_t bl = strlen(f[3]);
    if (bl == 0 || bl >= BR_ID_MAX) return br_error(BR_ESTORE, "corrupt interaction book id");
    memcpy(out->book_id, f[3], bl + 1);
    out->timestamp = ts;
    return BR_OK;
}

int br__store_member_cmp(const char *a, size_t alen, int64_t ats, const char *b, size_t blen,
                        int64_t bts)
{
    if (ats != bts) return ats > bts ? -1 : 1;
    size_t m = alen < blen ? alen : blen;
    int c = memcmp(a, b, m);
    if (c == 0) c = alen == blen ? 0 : (alen < blen ? -1 : 1);
    return -c; /* descending */
}

br_status br__store_ids_build(const char *const *ids, const size_t *lens, size_t n,
                             br_store_ids **out)
{
    size_t total = sizeof(br_store_ids) + n * sizeof(char *);
    for (size_t i = 0; i < n; i++) total += lens[i] + 1;
    br_store_ids *r = br_malloc(total);
    if (!r) return br_error(BR_ENOMEM, "id list of %zu", n);
    r->n = n;
    r->ids = (char **)(r + 1);
    char *s = (char *)(r->ids + n);
    for (size_t i = 0; i < n; i++) {
        memcpy(s, ids[i], lens[i]);
        s[lens[i]] = '\0';
        r->ids[i] = s;
        s += lens[i] + 1;
    }
    *out = r;
    return BR_OK;
}

/* ---------------------------------------------------------------- options -- */

br_status br__store_parse_options(const char *uri, char **base, br_store_opt_fn fn, void *user)
{
    const char *q = strchr(uri, '?');
    *base = q ? br_strndup(uri, (size_t)(q - uri)) : br_strdup(uri);
    if (!*base) return br_error(BR_ENOMEM, "uri");
    if (!q) return BR_OK;
    char *opts = br_strdup(q + 1), *save = NULL;
    if (!opts) return br_error(BR_ENOMEM, "uri");
    br_status st = BR_OK;
    for (char *kv = strtok_r(opts, "&", &save); kv && st == BR_OK;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            st = br_error(BR_EINVAL, "store option '%s' needs a value (key=value)", kv);
            break;
        }
        *eq = '\0';
        st = fn(kv, eq + 1, user);
    }
    br_free(opts);
    if (st != BR_OK) {
        br_free(*base);
        *base = NULL;
    }
    return st;
}

br_status br__store_opt_u64(const char *key, const char *val, uint64_t lo, uint64_t hi,
                           uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*val || *val == '-' || *val == '+')
        return br_error(BR_EINVAL, "store option %s=%s: not a number", key, val);
    unsigned long long v = strtoull(val, &end, 10);
    if (errno || *end) return br_error(BR_EINVAL, "store option %s=%s: not a number", key, val);
    if (v < lo || v > hi)
        return br_error(BR_ERANGE, "store option %s=%s: must be in %" PRIu64 "..%" PRIu64, key, val,
                        lo, hi);
    *out = v;
    return BR_OK;
}

/* ------------------------------------------------------------ front end -- */

br_status br_store_open(const char *uri, unsigned flags, br_store **out)
{
    if (!uri || !out) return br_error(BR_EINVAL, "br_store_open: uri and out are required");
    *out = NULL;
    if (!strncmp(uri, "lmdb:", 5)) return br__store_lmdb_open(uri + 5, flags, out);
    if (!strncmp(uri, "redis://", 8)) return br__store_redis_open(uri + 8, 0, flags, out);
    if (!strncmp(uri, "redis-cluster://", 16))
        return br__store_redis_open(uri + 16, 1, flags, out);
    return br_error(BR_EINVAL,
                    "store URI '%s': expected lmdb:DIR, redis://HOST:PORT[/DB] or "
                    "redis-cluster://HOST:PORT[,HOST:PORT...]",
                    uri);
}

void br_store_close(br_store *s)
{
    if (s) s->ops->close(s);
}

const char *br_store_backend(const br_store *s)
{
    return s->ops->name;
}

br_status br_store_info_get(br_store *s, br_store_info *info)
{
    if (!s || !info) return br_error(BR_EINVAL, "br_store_info_get: NULL argument");
    return s->ops->info(s, info, NULL);
}

br_status br_store_version(br_store *s, char *buf, size_t cap)
{
    br_store_info info;
    if (!buf || cap == 0) return br_error(BR_EINVAL, "br_store_version: no buffer");
    br_status st = br_store_info_get(s, &info);
    if (st != BR_OK) return st;
    if (strlen(info.version) >= cap) return br_error(BR_ERANGE, "version buffer too small");
    strcpy(buf, info.version);
    return BR_OK;
}

br_status br_store_get_meta(br_store *s, char **json)
{
    br_store_info info;
    if (!s || !json) return br_error(BR_EINVAL, "br_store_get_meta: NULL argument");
    *json = NULL;
    return s->ops->info(s, &info, json);
}

br_status br_store_get_recs(br_store *s, const char *user_id, br_store_rec *out, size_t cap,
                            size_t *n, char *version)
{
    if (!s || !n || (cap && !out)) return br_error(BR_EINVAL, "br_store_get_recs: NULL argument");
    *n = 0;
    br_status st = br_store_check_id(user_id, "reader");
    if (st != BR_OK) return st;
    return s->ops->get_recs(s, user_id, out, cap, n, version);
}

br_status br_store_is_seen(br_store *s, const char *user_id, const char *book_id, int *seen)
{
    if (!s || !seen) return br_error(BR_EINVAL, "br_store_is_seen: NULL argument");
    *seen = 0;
    br_status st = br_store_check_id(user_id, "reader");
    if (st == BR_OK) st = br_store_check_id(book_id, "book");
    if (st != BR_OK) return st;
    return s->ops->is_seen(s, user_id, book_id, seen);
}

br_status br_store_get_seen(br_store *s, const char *user_id, br_store_ids **out)
{
    if (!s || !out) return br_error(BR_EINVAL, "br_store_get_seen: NULL argument");
    *out = NULL;
    br_status st = br_store_check_id(user_id, "reader");
    if (st != BR_OK) return st;
    return s->ops->get_seen(s, user_id, out);
}

br_status br_store_get_recent(br_store *s, const char *user_id, br_store_interaction *out,
                              size_t cap, size_t *n)
{
    if (!s || !n || (cap && !out)) return br_error(BR_EINVAL, "br_store_get_recent: NULL argument");
    *n = 0;
    br_status st = br_store_check_id(user_id, "reader");
    if (st != BR_OK) return st;
    return s->ops->get_recent(s, user_id, out, cap, n);
}

br_status br_store_get_reader(br_store *s, const char *user_id, br_store_reader *r)
{
    if (!s || !r || (r->recent_cap && !r->recent) ||
        (r->recs_cap && (r->resolve ? !r->rec_idx || !r->rec_score : !r->recs)) ||
        (r->resolve && r->seen_cap && !r->seen_idx))
        return br_error(BR_EINVAL, "br_store_get_reader: NULL argument");
    r->n_recs = r->n_recent = r->n_seen = r->n_seen_idx = 0;
    r->has_recs = 0;
    r->version[0] = '\0';
    r->seen = NULL;
    br_status st = br_store_check_id(user_id, "reader");
    if (st != BR_OK) return st;
    st = s->ops->get_reader(s, user_id, r);
    if (st != BR_OK) {
        br_free(r->seen);
        r->seen = NULL;
        r->n_recs = r->n_recent = r->n_seen = r->n_seen_idx = 0;
        r->has_recs = 0;
    }
    return st;
}

static void put_resolved(void *ctx, size_t k, float score, const char *id, size_t l)
{
    br_store_reader *r = ctx;
    int64_t b = r->resolve(r->resolve_ctx, id, l);
    r->rec_idx[k] = b >= 0 && b < UINT32_MAX ? (uint32_t)b : UINT32_MAX;
    r->rec_score[k] = score;
}

br_status br__store_recs_read(const unsigned char *v, size_t len, br_store_reader *r)
{
    br_status st = r->resolve ? recs_walk(v, len, r->recs_cap, put_resolved, r, &r->n_recs)
                              : recs_walk(v, len, r->recs_cap, put_copy, r->recs, &r->n_recs);
    r->has_recs = st == BR_OK;
    return st;
}

int br__store_seen_resolving(br_store_reader *r, size_t n)
{
    r->n_seen = n;
    return r->resolve && n <= r->seen_cap;
}

void br__store_seen_resolve(br_store_reader *r, const char *id, size_t len)
{
    int64_t b = r->resolve(r->resolve_ctx, id, len);
    if (b >= 0 && b < UINT32_MAX && r->n_seen_idx < r->seen_cap)
        r->seen_idx[r->n_seen_idx++] = (uint32_t)b;
}

void br_store_reader_free(br_store_reader *r)
{
    if (!r) return;
    br_free(r->seen);
    r->seen = NULL;
}

br_status br_store_get_book(br_store *s, const char *book_id, br_store_book **out)
{
    if (!s || !out) return br_error(BR_EINVAL, "br_store_get_book: NULL argument");
    *out = NULL;
    br_status st = br_store_check_id(book_id, "book");
    if (st != BR_OK) return st;
    st = s->ops->get_book(s, book_id, out);
    if (st != BR_ENOTFOUND) return st;
    /* not in the served version (or none is served): a posted book? */
    unsigned char *v = NULL;
    size_t len = 0;
    br_status pst = s->ops->get_posted(s, book_id, &v, &len);
    if (pst == BR_ENOTFOUND)
        return br_error(BR_ENOTFOUND, "book '%s' is not in the store", book_id);
    if (pst != BR_OK) return pst;
    br_store_posted *p = NULL;
    pst = br__store_posted_decode(book_id, strlen(book_id), v, len, &p);
    br_free(v);
    /* the book is the record's first member: freeing it frees the record */
    if (pst == BR_OK) *out = &p->book;
    return pst;
}

br_status br_store_put_posted(br_store *s, const br_store_posted *book)
{
    if (!s || !book) return br_error(BR_EINVAL, "br_store_put_posted: NULL argument");
    br_status st = check_writable(s);
    if (st == BR_OK) st = br__store_book_check(&book->book);
    if (st == BR_OK && book->dim && !book->vec)
        st = br_error(BR_EINVAL, "posted book '%s': %u dimensions and no vector", book->book.id,
                      book->dim);
    const char *more[] = {book->tags, book->description, book->encoder, book->text_template};
    for (int i = 0; st == BR_OK && i < 4; i++)
        if (more[i] && strlen(more[i]) > (1u << 24))
            st = br_error(BR_ERANGE, "book '%s': a field over 16 MiB", book->book.id);
    unsigned char *v = NULL;
    size_t len = 0;
    if (st == BR_OK) st = br__store_posted_encode(book, &v, &len);
    if (st == BR_OK) st = s->ops->put_posted(s, book->book.id, v, len);
    br_free(v);
    return st;
}

typedef struct posted_walk {
    br_store_posted_fn fn;
    void *user;
} posted_walk;

static br_status posted_each(const char *id, size_t id_len, const unsigned char *v, size_t len,
                             void *user)
{
    posted_walk *w = user;
    br_store_posted *p = NULL;
    br_status st = br__store_posted_decode(id, id_len, v, len, &p);
    if (st == BR_OK) st = w->fn(p, w->user);
    br_free(p);
    return st;
}

br_status br_store_list_posted(br_store *s, br_store_posted_fn fn, void *user)
{
    if (!s || !fn) return br_error(BR_EINVAL, "br_store_list_posted: NULL argument");
    posted_walk w = {fn, user};
    return s->ops->list_posted(s, posted_each, &w);
}

br_status br_store_posted_count(br_store *s, uint64_t *n)
{
    if (!s || !n) return br_error(BR_EINVAL, "br_store_posted_count: NULL argument");
    *n = 0;
    return s->ops->posted_count(s, n);
}

br_status br_store_add_seen(br_store *s, const char *user_id, const char *const *book_ids, size_t n)
{
    if (!s) return br_error(BR_EINVAL, "br_store_add_seen: NULL store");
    br_status st = check_writable(s);
    if (st == BR_OK) st = br_store_check_id(user_id, "reader");
    if (st == BR_OK) st = check_ids(book_ids, n, "book");
    if (st != BR_OK || n == 0) return st;
    return s->ops->update(s, user_id, book_ids, n, NULL, 0, 0);
}

br_status br_store_push_recent(br_store *s, const br_event *events, size_t n)
{
    if (!s) return br_error(BR_EINVAL, "br_store_push_recent: NULL store");
    br_status st = check_writable(s);
    if (st == BR_OK) st = check_events(events, n);
    if (st != BR_OK || n == 0) return st;
    return s->ops->update(s, NULL, NULL, 0, events, n, 0);
}

br_status br_store_apply_events(br_store *s, const br_event *events, size_t n)
{
    if (!s) return br_error(BR_EINVAL, "br_store_apply_events: NULL store");
    br_status st = check_writable(s);
    if (st == BR_OK) st = check_events(events, n);
    if (st != BR_OK || n == 0) return st;
    return s->ops->update(s, NULL, NULL, 0, events, n, 1);
}

br_status br_store_put_book(br_store *s, const br_store_book *book)
{
    if (!s) return br_error(BR_EINVAL, "br_store_put_book: NULL store");
    br_status st = check_writable(s);
    if (st == BR_OK) st = br__store_book_check(book);
    if (st != BR_OK) return st;
    return s->ops->put_book(s, book);
}

/* ---------------------------------------------------------------- publish -- */

br_status br_store_publish_begin(br_store *s, const char *version, br_store_pub **out)
{
    if (!s || !out) return br_error(BR_EINVAL, "br_store_publish_begin: NULL argument");
    *out = NULL;
    br_status st = check_writable(s);
    if (st == BR_OK) st = br__store_check_name(version, "version");
    if (st != BR_OK) return st;
    st = s->ops->pub_begin(s, version, out);
    if (st == BR_OK) {
        (*out)->store = s;
        snprintf((*out)->version, sizeof(*out)->version, "%s", version);
    }
    return st;
}

/* A put on a failed publish is refused: the version would be incomplete. */
static br_status pub_usable(br_store_pub *p)
{
    if (!p) return br_error(BR_EINVAL, "publish object is NULL");
    if (p->failed)
        return br_error(BR_EINVAL, "publish of '%s' already failed: abort it", p->version);
    return BR_OK;
}

static br_status pub_result(br_store_pub *p, br_status st)
{
    /* Argument errors leave the publish usable; backend errors do not. */
    if (st != BR_OK && st != BR_EINVAL && st != BR_ERANGE) p->failed = 1;
    return st;
}

br_status br_store_pub_put_recs(br_store_pub *p, const char *user_id, const char *const *book_ids,
                                const float *scores, size_t n)
{
    br_status st = pub_usable(p);
    if (st == BR_OK) st = br_store_check_id(user_id, "reader");
    if (st == BR_OK) st = check_ids(book_ids, n, "book");
    if (st == BR_OK && n && !scores) st = br_error(BR_EINVAL, "scores are NULL");
    for (size_t i = 0; st == BR_OK && i < n; i++)
        if (!isfinite(scores[i]))
            st = br_error(BR_EINVAL, "reader '%s': score %zu is not finite", user_id, i);
    if (st != BR_OK) return st;
    unsigned char *v;
    size_t len;
    st = br__store_recs_encode(book_ids, scores, n, &v, &len);
    if (st != BR_OK) return pub_result(p, st);
    st = p->store->ops->pub_recs(p, user_id, v, len);
    br_free(v);
    if (st == BR_OK) p->n_users++;
    return pub_result(p, st);
}

br_status br_store_pub_put_seen(br_store_pub *p, const char *user_id, const char *const *book_ids,
                                size_t n)
{
    br_status st = pub_usable(p);
    if (st == BR_OK) st = br_store_check_id(user_id, "reader");
    if (st == BR_OK) st = check_ids(book_ids, n, "book");
    if (st != BR_OK || n == 0) return st;
    return pub_result(p, p->store->ops->pub_seen(p, user_id, book_ids, n));
}

br_status br_store_pub_put_recent(br_store_pub *p, const br_event *events, size_t n)
{
    br_status st = pub_usable(p);
    if (st == BR_OK) st = check_events(events, n);
    if (st != BR_OK || n == 0) return st;
    return pub_result(p, p->store->ops->pub_recent(p, events, n));
}

br_status br_store_pub_put_book(br_store_pub *p, const br_store_book *book)
{
    br_status st = pub_usable(p);
    if (st == BR_OK) st = br__store_book_check(book);
    if (st != BR_OK) return st;
    st = p->store->ops->pub_book(p, book);
    if (st == BR_OK) p->n_books++;
    return pub_result(p, st);
}

br_status br_store_pub_set_meta(br_store_pub *p, const char *json)
{
    br_status st = pub_usable(p);
    if (st != BR_OK) return st;
    if (!json) return br_error(BR_EINVAL, "metadata is NULL");
    char *copy = br_strdup(json);
    if (!copy) return br_error(BR_ENOMEM, "metadata");
    br_free(p->meta);
    p->meta = copy;
    return BR_OK;
}

br_status br_store_publish_commit(br_store_pub *p)
{
    if (!p) return br_error(BR_EINVAL, "publish object is NULL");
    if (p->failed) {
        br_status st = br_error(BR_EINVAL, "publish of '%s' failed earlier: aborted", p->version);
        p->store->ops->pub_abort(p);
        return st;
    }
    return p->store->ops->pub_commit(p);
}

void br_store_publish_abort(br_store_pub *p)
{
    if (p) p->store->ops->pub_abort(p);
}
