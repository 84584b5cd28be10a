/*
 * events_input.c: reading interactions from files for `bookrec ingest`:
 * CSV (through the data layer's reader, so quoting, UTF-8 checks and line
 * numbers behave as for ratings.csv) or JSON lines (jansson, one object a
 * line). Every event is checked (br_event_check); the first bad one stops
 * the read with "path:line: ...".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/csvread.h"
#include "store/store_internal.h"

typedef struct csv_ctx {
    const char *path;
    int col[5]; /* user_id, book_id, type, value, timestamp */
    br_event_fn fn;
    void *user;
} csv_ctx;

static const char *const columns[5] = {"user_id", "book_id", "type", "value", "timestamp"};

static br_status parse_value(const char *path, size_t line, const char *s, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || fabs(v) > 3.4e38)
        return br_error(BR_EPARSE, "%s:%zu: value '%s' is not a finite number", path, line, s);
    *out = (float)v;
    return BR_OK;
}

static br_status parse_ts(const char *path, size_t line, const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    /* Its sign is br_event_check's (in deliver): one rule for every entry. */
    if (!*s || *end || errno)
        return br_error(BR_EPARSE, "%s:%zu: timestamp '%s' is not an integer (Unix seconds)", path,
                        line, s);
    *out = v;
    return BR_OK;
}

/* Re-raises the current error detail with "path:line: " in front (copied
 * first: br_error writes the buffer the detail lives in). */
static br_status at_line(br_status st, const char *path, size_t line)
{
    char d[512];
    snprintf(d, sizeof d, "%s", br_error_detail());
    return br_error(st, "%s:%zu: %s", path, line, d);
}

/* Checks a parsed event (no scale: the caller knows the model, if any) and
 * hands it on, with "path:line" context. */
static br_status deliver(const char *path, size_t line, br_event *e, br_event_fn fn, void *user)
{
    br_status st = br_event_check(e, NULL);
    if (st != BR_OK) return at_line(BR_EPARSE, path, line);
    char pos[BR_EVENTS_POS_MAX + 256];
    snprintf(pos, sizeof pos, "%s:%zu", path, line);
    return fn(e, pos, user);
}

static br_status csv_row(const br_csv_row *row, void *user)
{
    csv_ctx *c = user;
    if (c->col[0] == -2) { /* the header */
        for (int i = 0; i < 5; i++) {
            c->col[i] = br__csv_column(row, columns[i]);
            if (c->col[i] < 0)
                return br_error(BR_EPARSE,
                                "%s:%zu: no '%s' column (the header needs "
                                "user_id,book_id,type,value,timestamp)",
                                c->path, row->line, columns[i]);
        }
        return BR_OK;
    }
    if (row->n == 1 && row->len[0] == 0) return BR_OK; /* blank line */
    for (int i = 0; i < 5; i++)
        if (c->col[i] >= row->n)
            return br_error(BR_EPARSE, "%s:%zu: %d fields, no %s", c->path, row->line, row->n,
                            columns[i]);
    br_event e = {.user_id = row->field[c->col[0]], .book_id = row->field[c->col[1]]};
    br_status st = br_event_type_parse(row->field[c->col[2]], &e.type);
    if (st != BR_OK) return at_line(st, c->path, row->line);
    if ((st = parse_value(c->path, row->line, row->field[c->col[3]], &e.value)) != BR_OK ||
        (st = parse_ts(c->path, row->line, row->field[c->col[4]], &e.timestamp)) != BR_OK)
        return st;
    return deliver(c->path, row->line, &e, c->fn, c->user);
}

/* A JSON id: a string, or an integer written as its decimal digits. */
static br_status json_id(const char *path, size_t line, json_t *v, const char *key, char *buf)
{
    if (json_is_string(v)) {
        if (json_string_length(v) >= BR_ID_MAX)
            return br_error(BR_EPARSE, "%s:%zu: %s is longer than %d bytes", path, line, key,
                            BR_ID_MAX - 1);
        snprintf(buf, BR_ID_MAX, "%s", json_string_value(v));
        return BR_OK;
    }
    if (json_is_integer(v)) {
        snprintf(buf, BR_ID_MAX, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return BR_OK;
    }
    return br_error(BR_EPARSE, "%s:%zu: %s must be a string or an integer", path, line, key);
}

static br_status jsonl_line(const char *path, size_t line, const char *text, br_event_fn fn,
                            void *user)
{
    json_error_t err;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    if (!o) return br_error(BR_EPARSE, "%s:%zu: bad JSON: %s", path, line, err.text);
    br_status st = BR_OK;
    char ub[BR_ID_MAX], bb[BR_ID_MAX];
    br_event e = {.user_id = ub, .book_id = bb};
    json_t *f[5];
    for (int i = 0; i < 5; i++) f[i] = json_is_object(o) ? json_object_get(o, columns[i]) : NULL;
    if (!json_is_object(o)) st = br_error(BR_EPARSE, "%s:%zu: not a JSON object", path, line);
    for (int i = 0; i < 5 && st == BR_OK; i++)
        if (!f[i]) st = br_error(BR_EPARSE, "%s:%zu: no \"%s\"", path, line, columns[i]);
    if (st == BR_OK) st = json_id(path, line, f[0], "user_id", ub);
    if (st == BR_OK) st = json_id(path, line, f[1], "book_id", bb);
    if (st == BR_OK && !json_is_string(f[2]))
        st = br_error(BR_EPARSE, "%s:%zu: type must be a string", path, line);
    if (st == BR_OK && br_event_type_parse(json_string_value(f[2]), &e.type) != BR_OK)
        st = at_line(BR_EPARSE, path, line);
    if (st == BR_OK) {
        /* within a float's range: converting 1e300 to float is undefined */
        if (!json_is_number(f[3]) || !(fabs(json_number_value(f[3])) <= FLT_MAX))
            st = br_error(BR_EPARSE, "%s:%zu: value must be a finite number", path, line);
        else
            e.value = (float)json_number_value(f[3]);
    }
    if (st == BR_OK) {
        if (!json_is_integer(f[4]))
            st = br_error(BR_EPARSE, "%s:%zu: timestamp must be an integer", path, line);
        else
            e.timestamp = json_integer_value(f[4]);
    }
    if (st == BR_OK) st = deliver(path, line, &e, fn, user);
    json_decref(o);
    return st;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

br_status br_events_read_file(const char *path, br_event_fn fn, void *user)
{
    if (!path || !fn) return br_error(BR_EINVAL, "br_events_read_file: NULL argument");
    if (!ends_with(path, ".jsonl") && !ends_with(path, ".ndjson")) {
        csv_ctx c = {path, {-2, -2, -2, -2, -2}, fn, user};
        return br__csv_read(path, csv_row, &c, NULL);
    }
    FILE *f = fopen(path, "r");
    if (!f)
        return br_error(errno == ENOENT ? BR_ENOTFOUND : BR_EIO, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, no = 0;
    ssize_t len;
    br_status st = BR_OK;
    while (st == BR_OK && (len = getline(&line, &cap, f)) >= 0) {
        no++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (strspn(line, " \t") == (size_t)len) continue; /* blank line */
        st = jsonl_line(path, no, line, fn, user);
    }
    if (st == BR_OK && ferror(f)) st = br_error(BR_EIO, "%s: read error", path);
    free(line);
    fclose(f);
    return st;
}
