/*
 * catalog.c: the book catalogue (books.csv). Columns are found by header
 * name; strings are kept in one arena and handed out as br_book records.
 */
#include <string.h>

#include "data/loader.h"

enum { F_ID, F_TITLE, F_AUTHORS, F_GENRE, F_TAGS, F_YEAR, F_DESC, F_IMAGE, F_COUNT };

static const char *const column_names[F_COUNT] = {"book_id", "title", "authors",     "genre",
                                                  "tags",    "year",  "description", "image_url"};

typedef struct book_rec {
    size_t off[F_COUNT]; /* arena offsets; F_YEAR unused */
    int32_t year;
} book_rec;

struct br_catalog {
    br_idmap *ids;
    br__sbuf arena; /* the strings (br__sb_push) */
    book_rec *recs;
    br_book *books; /* built once the arena stops moving */
    uint32_t count, cap;
    unsigned columns;
};

typedef struct load_ctx {
    const char *path;
    const br_load_options *opt;
    br_load_report *rep;
    br_catalog *cat;
    int col[F_COUNT]; /* header position of each known column, -1 if absent */
    int width;
    int header_seen;
    size_t empty_off; /* offset of "" in the arena */
} load_ctx;

static br_status on_header(load_ctx *c, const br_csv_row *row)
{
    c->header_seen = 1;
    c->width = row->n;
    for (int f = 0; f < F_COUNT; f++) c->col[f] = br__csv_column(row, column_names[f]);
    if (c->col[F_ID] < 0 || c->col[F_TITLE] < 0)
        return br_error(BR_EPARSE,
                        "%s:%zu: missing required column '%s' (the header must name "
                        "book_id and title)",
                        c->path, row->line, c->col[F_ID] < 0 ? "book_id" : "title");
    static const unsigned bits[F_COUNT] = {
        0,           0,           BR_COL_AUTHORS,     BR_COL_GENRE,
        BR_COL_TAGS, BR_COL_YEAR, BR_COL_DESCRIPTION, BR_COL_IMAGE};
    for (int f = F_AUTHORS; f < F_COUNT; f++)
        if (c->col[f] >= 0) c->cat->columns |= bits[f];
    return BR_OK;
}

static br_status parse_row(load_ctx *c, const br_csv_row *row)
{
    br_catalog *cat = c->cat;
    br_status st = br__loader_check_width(c->path, row, c->width);
    if (st != BR_OK) return st;
    const char *id = row->field[c->col[F_ID]];
    size_t id_len = row->len[c->col[F_ID]];
    if (id_len == 0) return br_error(BR_EPARSE, "%s:%zu: empty book_id", c->path, row->line);
    if ((st = br__loader_check_id(c->path, row->line, "book_id", id, id_len))) return st;
    if (row->len[c->col[F_TITLE]] == 0)
        return br_error(BR_EPARSE, "%s:%zu: empty title for book '%s'", c->path, row->line, id);
    int32_t year = BR_YEAR_UNKNOWN;
    if (c->col[F_YEAR] >= 0 && row->len[c->col[F_YEAR]] > 0) {
        int64_t y;
        const char *ys = row->field[c->col[F_YEAR]];
        /* goodbooks writes years as floats ("2008.0"); accept integral floats. */
        float yf;
        if (br__parse_i64(ys, &y) == 0 && y > -100000 && y < 100000)
            year = (int32_t)y;
        else if (br__parse_float(ys, &yf) == 0 && yf > -100000 && yf < 100000 &&
                 yf == (float)(int32_t)yf) /* the range first: casting 1e30 is undefined */
            year = (int32_t)yf;
        else
            return br_error(BR_EPARSE, "%s:%zu: year '%s' is not a whole number", c->path,
                            row->line, ys);
    }

    uint32_t index;
    int added;
    st = br_idmap_intern(cat->ids, id, id_len, &index, &added);
    if (st != BR_OK) return st;
    if (!added) c->rep->duplicates++;
    if (index >= cat->cap) {
        uint32_t ncap = cat->cap ? cat->cap * 2 : 1024;
        book_rec *r = br_realloc(cat->recs, ncap * sizeof *r);
        if (!r) return br_error(BR_ENOMEM, "%s: out of memory", c->path);
        cat->recs = r;
        cat->cap = ncap;
    }
    book_rec rec = {.year = year};
    for (int f = 0; f < F_COUNT; f++) {
        if (f == F_YEAR) continue;
        if (c->col[f] < 0 || row->len[c->col[f]] == 0) {
            rec.off[f] = c->empty_off;
            continue;
        }
        st = br__sb_push(&cat->arena, row->field[c->col[f]], row->len[c->col[f]], &rec.off[f]);
        if (st != BR_OK) return st;
    }
    cat->recs[index] = rec; /* a repeated id: the later row replaces the earlier */
    if (added) cat->count++;
    return BR_OK;
}

static br_status on_row(const br_csv_row *row, void *user)
{
    load_ctx *c = user;
    if (!c->header_seen) return on_header(c, row);
    c->rep->rows++;
    br_status st = parse_row(c, row);
    if (st != BR_OK) return br__loader_row_error(c->opt, c->rep, st);
    return BR_OK;
}

br_status br_catalog_load(const char *path, const br_load_options *opt, br_catalog **out,
                          br_load_report *report)
{
    uint64_t t0 = br_now_ns();
    br_load_options defaults = BR_LOAD_OPTIONS_DEFAULT;
    br_load_report scratch;
    if (!opt) opt = &defaults;
    if (!report) report = &scratch;
    memset(report, 0, sizeof *report);
    *out = NULL;

    br_catalog *cat = br_calloc(1, sizeof *cat);
    if (!cat) return br_error(BR_ENOMEM, "%s: out of memory", path);
    load_ctx c = {.path = path, .opt = opt, .rep = report, .cat = cat};
    br_status st = br_idmap_create(&cat->ids);
    if (st == BR_OK) st = br__sb_push(&cat->arena, "", 0, &c.empty_off);
    if (st == BR_OK) st = br__csv_read(path, on_row, &c, "load books");
    if (st == BR_OK && !c.header_seen) st = br_error(BR_EPARSE, "%s: file is empty", path);
    if (st == BR_OK && cat->count == 0)
        st = br_error(BR_EPARSE, "%s: no books (only a header%s)", path,
                      report->skipped ? " and skipped rows" : "");
    if (st == BR_OK) {
        cat->books = br_malloc(cat->count * sizeof *cat->books);
        if (!cat->books) st = br_error(BR_ENOMEM, "%s: out of memory", path);
    }
    if (st != BR_OK) {
        br_catalog_free(cat);
        return st;
    }
    const char *a = cat->arena.p;
    for (uint32_t i = 0; i < cat->count; i++) {
        const book_rec *r = &cat->recs[i];
        cat->books[i] = (br_book){
            .id = br_idmap_name(cat->ids, i),
            .title = a + r->off[F_TITLE],
            .authors = a + r->off[F_AUTHORS],
            .genre = a + r->off[F_GENRE],
            .tags = a + r->off[F_TAGS],
            .description = a + r->off[F_DESC],
            .year = r->year,
            .image_url = a + r->off[F_IMAGE],
        };
    }
    br_free(cat->recs);
    cat->recs = NULL;
    report->loaded = cat->count;
    report->seconds = (double)(br_now_ns() - t0) / 1e9;
    *out = cat;
    return BR_OK;
}

void br_catalog_free(br_catalog *cat)
{
    if (!cat) return;
    br_idmap_free(cat->ids);
    br__sb_free(&cat->arena);
    br_free(cat->recs);
    br_free(cat->books);
    br_free(cat);
}

uint32_t br_catalog_count(const br_catalog *cat)
{
    return cat->count;
}

const br_book *br_catalog_book(const br_catalog *cat, uint32_t index)
{
    return index < cat->count ? &cat->books[index] : NULL;
}

int64_t br_catalog_find(const br_catalog *cat, const char *id)
{
    return br_idmap_find(cat->ids, id, strlen(id));
}

const br_idmap *br_catalog_ids(const br_catalog *cat)
{
    return cat->ids;
}

unsigned br_catalog_columns(const br_catalog *cat)
{
    return cat->columns;
}

size_t br_catalog_memory(const br_catalog *cat)
{
    return sizeof *cat + br_idmap_memory(cat->ids) + cat->arena.cap +
           (size_t)cat->count * sizeof(br_book);
}
