/*
 * ratings.c: the ratings (ratings.csv) as parallel arrays in file order,
 * users and books as dense indices. Repeated (user, book) pairs are resolved
 * after the read in one linear pass: the later row wins.
 */
#include <string.h>

#include "data/loader.h"

enum { F_USER, F_BOOK, F_RATING, F_TIME, F_COUNT };

struct br_ratings {
    br_idmap *users;
    const br_catalog *books;
    uint32_t *user; /* (count,) */
    uint32_t *book; /* (count,) */
    float *value;   /* (count,) */
    int64_t *time;  /* (count,) or NULL */
    size_t count, cap;
};

typedef struct load_ctx {
    const char *path;
    const br_load_options *opt;
    br_load_report *rep;
    br_ratings *r;
    int col[F_COUNT];
    int width;
    int header_seen;
    int64_t last_user; /* rows come grouped by reader: skip the lookup on a repeat */
    /* Book ids that are canonical decimal numbers (most catalogues number
     * their books) map straight to the dense index: book_by_number[v] is
     * index + 1, 0 for none. At millions of rows a hash probe per row is
     * the load's largest cost; other ids take the id map. */
    uint32_t *book_by_number;
    size_t book_numbers; /* entries in book_by_number */
} load_ctx;

/* Value of a canonical decimal id ("0", "17"; not "017", "+1", "1.0"),
 * or -1. At most 9 digits. */
static int64_t canonical_number(const char *s, size_t len)
{
    if (len == 0 || len > 9 || (s[0] == '0' && len > 1)) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Builds book_by_number when the catalogue's numeric ids are dense enough
 * for a table (at most 4 entries per book, plus slack). */
static br_status index_book_numbers(load_ctx *c)
{
    const br_catalog *cat = c->r->books;
    uint32_t n = br_catalog_count(cat);
    int64_t max = -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *id = br_catalog_book(cat, i)->id;
        int64_t v = canonical_number(id, strlen(id));
        if (v > max) max = v;
    }
    if (max < 0 || (uint64_t)max >= 4 * (uint64_t)n + 1024) return BR_OK;
    c->book_numbers = (size_t)max + 1;
    c->book_by_number = br_calloc(c->book_numbers, sizeof *c->book_by_number);
    if (!c->book_by_number) return br_error(BR_ENOMEM, "%s: out of memory", c->path);
    for (uint32_t i = 0; i < n; i++) {
        const char *id = br_catalog_book(cat, i)->id;
        int64_t v = canonical_number(id, strlen(id));
        if (v >= 0) c->book_by_number[v] = i + 1;
    }
    return BR_OK;
}

static int64_t find_book(const load_ctx *c, const char *id, size_t len)
{
    if (c->book_by_number) {
        int64_t v = canonical_number(id, len);
        /* A canonical number is either in the table or in no book's id. */
        if (v >= 0) return (size_t)v < c->book_numbers ? (int64_t)c->book_by_number[v] - 1 : -1;
    }
    return br_idmap_find(br_catalog_ids(c->r->books), id, len);
}

static br_status on_header(load_ctx *c, const br_csv_row *row)
{
    static const char *const names[F_COUNT] = {"user_id", "book_id", "rating", "timestamp"};
    c->header_seen = 1;
    c->width = row->n;
    for (int f = 0; f < F_COUNT; f++) c->col[f] = br__csv_column(row, names[f]);
    for (int f = 0; f < F_TIME; f++)
        if (c->col[f] < 0)
            return br_error(BR_EPARSE,
                            "%s:%zu: missing required column '%s' (the header must "
                            "name user_id, book_id and rating)",
                            c->path, row->line, names[f]);
    return BR_OK;
}

static br_status grow(load_ctx *c)
{
    br_ratings *r = c->r;
    size_t cap = r->cap ? r->cap * 2 : 65536;
    uint32_t *u = br_realloc(r->user, cap * sizeof *u);
    if (u) r->user = u;
    uint32_t *b = u ? br_realloc(r->book, cap * sizeof *b) : NULL;
    if (b) r->book = b;
    float *v = b ? br_realloc(r->value, cap * sizeof *v) : NULL;
    if (v) r->value = v;
    int ok = v != NULL;
    if (ok && c->col[F_TIME] >= 0) {
        int64_t *t = br_realloc(r->time, cap * sizeof *t);
        if (t) r->time = t;
        ok = t != NULL;
    }
    if (!ok) return br_error(BR_ENOMEM, "%s: out of memory", c->path);
    r->cap = cap;
    return BR_OK;
}

static br_status parse_row(load_ctx *c, const br_csv_row *row)
{
    br_ratings *r = c->r;
    br_status st = br__loader_check_width(c->path, row, c->width);
    if (st != BR_OK) return st;
    const char *user = row->field[c->col[F_USER]];
    const char *book = row->field[c->col[F_BOOK]];
    const char *rating = row->field[c->col[F_RATING]];
    if (row->len[c->col[F_USER]] == 0)
        return br_error(BR_EPARSE, "%s:%zu: empty user_id", c->path, row->line);
    if ((st = br__loader_check_id(c->path, row->line, "user_id", user, row->len[c->col[F_USER]])) ||
        (st = br__loader_check_id(c->path, row->line, "book_id", book, row->len[c->col[F_BOOK]])))
        return st;
    int64_t b = find_book(c, book, row->len[c->col[F_BOOK]]);
    if (b < 0)
        return br_error(BR_ENOTFOUND, "%s:%zu: book_id '%s' is not in the books file", c->path,
                        row->line, book);
    float v;
    if (br__parse_float(rating, &v) != 0)
        return br_error(BR_EPARSE, "%s:%zu: rating '%s' is not a number", c->path, row->line,
                        rating);
    if (v < c->opt->rating_min || v > c->opt->rating_max)
        return br_error(BR_ERANGE, "%s:%zu: rating %g is outside the scale %g..%g", c->path,
                        row->line, (double)v, (double)c->opt->rating_min,
                        (double)c->opt->rating_max);
    int64_t t = 0;
    if (c->col[F_TIME] >= 0 && br__parse_i64(row->field[c->col[F_TIME]], &t) != 0)
        return br_error(BR_EPARSE, "%s:%zu: timestamp '%s' is not a whole number", c->path,
                        row->line, row->field[c->col[F_TIME]]);
    if (r->count == UINT32_MAX)
        return br_error(BR_ERANGE, "%s:%zu: more than 2^32 - 1 ratings", c->path, row->line);
    if (r->count == r->cap && (st = grow(c)) != BR_OK) return st;
    uint32_t u;
    size_t ulen = row->len[c->col[F_USER]];
    if (c->last_user >= 0 && strcmp(br_idmap_name(r->users, (uint32_t)c->last_user), user) == 0)
        u = (uint32_t)c->last_user;
    else if ((st = br_idmap_intern(r->users, user, ulen, &u, NULL)) != BR_OK)
        return st;
    c->last_user = u;
    r->user[r->count] = u;
    r->book[r->count] = (uint32_t)b;
    r->value[r->count] = v;
    if (r->time) r->time[r->count] = t;
    r->count++;
    return BR_OK;
}

static br_status on_row(const br_csv_row *row, void *user)
{
    load_ctx *c = user;
    if (!c->header_seen) return on_header(c, row);
    c->rep->rows++;
    br_status st = parse_row(c, row);
    return st == BR_OK ? BR_OK : br__loader_row_error(c->opt, c->rep, st);
}

/* Drops every row superseded by a later row of the same (user, book).
 * Rows are bucketed by user (counting sort, stable), then each user's rows
 * are scanned in file order against a per-book "last row" table. */
static br_status drop_duplicates(br_ratings *r, size_t *n_dups)
{
    uint32_t n_users = br_idmap_count(r->users), n_books = br_catalog_count(r->books);
    size_t n = r->count;
    *n_dups = 0;
    size_t *start = br_calloc((size_t)n_users + 1, sizeof *start);
    uint32_t *order = br_malloc(n * sizeof *order);
    uint32_t *stamp = br_calloc(n_books, sizeof *stamp);
    uint32_t *last = br_malloc((size_t)n_books * sizeof *last);
    unsigned char *dead = br_calloc(n, 1);
    br_status st = BR_OK;
    if (!start || !order || !stamp || !last || !dead) {
        st = br_error(BR_ENOMEM, "ratings: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) start[r->user[i] + 1]++;
    for (uint32_t u = 0; u < n_users; u++) start[u + 1] += start[u];
    for (size_t i = 0; i < n; i++) order[start[r->user[i]]++] = (uint32_t)i;
    /* start[u] is now the end of u's bucket; its beginning is start[u - 1]. */
    for (uint32_t u = 0; u < n_users; u++) {
        size_t lo = u ? start[u - 1] : 0, hi = start[u];
        for (size_t k = lo; k < hi; k++) {
            uint32_t i = order[k], b = r->book[i];
            if (stamp[b] == u + 1) {
                dead[last[b]] = 1;
                (*n_dups)++;
            }
            stamp[b] = u + 1;
            last[b] = i;
        }
    }
    if (*n_dups) {
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            if (dead[i]) continue;
            r->user[w] = r->user[i];
            r->book[w] = r->book[i];
            r->value[w] = r->value[i];
            if (r->time) r->time[w] = r->time[i];
            w++;
        }
        r->count = w;
    }
out:
    br_free(start);
    br_free(order);
    br_free(stamp);
    br_free(last);
    br_free(dead);
    return st;
}

br_status br_ratings_load(const char *path, const br_catalog *books, const br_load_options *opt,
                          br_ratings **out, br_load_report *report)
{
    uint64_t t0 = br_now_ns();
    br_load_options defaults = BR_LOAD_OPTIONS_DEFAULT;
    br_load_report scratch;
    if (!opt) opt = &defaults;
    if (!report) report = &scratch;
    memset(report, 0, sizeof *report);
    *out = NULL;
    if (!books) return br_error(BR_EINVAL, "%s: ratings need a books catalogue", path);
    if (!(opt->rating_min < opt->rating_max))
        return br_error(BR_EINVAL, "rating scale %g..%g is empty", (double)opt->rating_min,
                        (double)opt->rating_max);

    br_ratings *r = br_calloc(1, sizeof *r);
    if (!r) return br_error(BR_ENOMEM, "%s: out of memory", path);
    r->books = books;
    load_ctx c = {.path = path, .opt = opt, .rep = report, .r = r, .last_user = -1};
    br_status st = br_idmap_create(&r->users);
    if (st == BR_OK) st = index_book_numbers(&c);
    if (st == BR_OK) st = br__csv_read(path, on_row, &c, "load ratings");
    br_free(c.book_by_number);
    if (st == BR_OK && !c.header_seen) st = br_error(BR_EPARSE, "%s: file is empty", path);
    if (st == BR_OK && r->count > 0) st = drop_duplicates(r, &report->duplicates);
    if (st != BR_OK) {
        br_ratings_free(r);
        return st;
    }
    report->loaded = r->count;
    report->seconds = (double)(br_now_ns() - t0) / 1e9;
    *out = r;
    return BR_OK;
}

void br_ratings_free(br_ratings *r)
{
    if (!r) return;
    br_idmap_free(r->users);
    br_free(r->user);
    br_free(r->book);
    br_free(r->value);
    br_free(r->time);
    br_free(r);
}

size_t br_ratings_count(const br_ratings *r)
{
    return r->count;
}

uint32_t br_ratings_num_users(const br_ratings *r)
{
    return br_idmap_count(r->users);
}

uint32_t br_ratings_num_books(const br_ratings *r)
{
    return br_catalog_count(r->books);
}

const uint32_t *br_ratings_users(const br_ratings *r)
{
    return r->user;
}

const uint32_t *br_ratings_books(const br_ratings *r)
{
    return r->book;
}

const float *br_ratings_values(const br_ratings *r)
{
    return r->value;
}

const int64_t *br_ratings_timestamps(const br_ratings *r)
{
    return r->time;
}

const br_idmap *br_ratings_user_ids(const br_ratings *r)
{
    return r->users;
}

int64_t br_ratings_find_user(const br_ratings *r, const char *id)
{
    return br_idmap_find(r->users, id, strlen(id));
}

size_t br_ratings_memory(const br_ratings *r)
{
    return sizeof *r + br_idmap_memory(r->users) +
           r->cap * (2 * sizeof(uint32_t) + sizeof(float) + (r->time ? sizeof(int64_t) : 0));
}
