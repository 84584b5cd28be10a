/*
 * filter.c: the list filters of the recommendation routes (?tags=,
 * exclude_tags=, authors=; docs/api.md, "Filters"). At load the
 * catalogue's tags and authors become dense ids (srv_facet): each book's
 * ids, and each name's books in popularity order. A filtered request then
 * checks a candidate against a few short arrays instead of parsing its tag
 * string, and finds matching popular books by walking the lists of the
 * names it asked for instead of the whole catalogue. Books posted at run
 * time are few and matched on their strings.
 *
 * The rules: a book's tags are its `|`-separated tags and its genre,
 * compared ASCII case-insensitively (surrounding spaces ignored); its
 * authors are the `,`-separated names of its authors column, compared
 * exactly (surrounding spaces ignored). tags: at least one of the values;
 * exclude_tags: none of them; authors: at least one of them.
 */
#include <stdio.h>
#include <string.h>

#include "serve/serve_internal.h"

/* The name at p of a sep-separated list, trimmed: [*b, *e) (empty after
 * a trailing sep). Returns where the next name starts, NULL after the last. */
static const char *next_name(const char *p, char sep, const char **b, const char **e)
{
    const char *end = sep ? strchr(p, sep) : NULL; /* sep 0: one name */
    const char *stop = end ? end : p + strlen(p);
    while (p < stop && (*p == ' ' || *p == '\t')) p++;
    const char *q = stop;
    while (q > p && (q[-1] == ' ' || q[-1] == '\t')) q--;
    *b = p;
    *e = q;
    return end ? end + 1 : NULL;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Lower-cases [b, e) into out (cap > e - b); returns the length. */
static size_t fold(const char *b, const char *e, char *out)
{
    size_t n = 0;
    for (; b < e; b++) out[n++] = lower(*b);
    out[n] = 0;
    return n;
}

/* 1 when the sep-separated list `s` holds `v` (tags: ASCII case-insensitively). */
static int list_has(const char *s, char sep, const char *v, int tags)
{
    size_t vl = strlen(v);
    const char *b, *e;
    for (const char *p = s && *s ? s : NULL; p;) {
        p = next_name(p, sep, &b, &e);
        if ((size_t)(e - b) != vl) continue;
        size_t i = 0;
        while (i < vl && (tags ? lower(b[i]) : b[i]) == v[i]) i++;
        if (i == vl) return 1;
    }
    return 0;
}

/* The names of one book (its tags and genre, or its authors) interned
 * into the facet (tags lower-cased); their ids appended to *ids (grown). */
static br_status book_names(srv_facet *f, const char *list, char sep, const char *also,
                            uint32_t **ids, size_t *n, size_t *cap)
{
    char buf[1024];
    const char *b, *e;
    for (int pass = 0; pass < 2; pass++) {
        const char *s = pass ? also : list;
        if (!s || !*s) continue;
        for (const char *p = s; p;) {
            p = next_name(p, pass ? '\0' : sep, &b, &e);
            size_t len = (size_t)(e - b);
            if (len && len < sizeof buf) {
                const char *name = b;
                if (sep == '|') {
                    len = fold(b, e, buf);
                    name = buf;
                }
                uint32_t id;
                br_status st = br_idmap_intern(f->names, name, len, &id, NULL);
                if (st) return st;
                if (*n == *cap) {
                    size_t nc = *cap ? *cap * 2 : 1024;
                    uint32_t *g = br_realloc(*ids, nc * sizeof *g);
                    if (!g) return br_error(BR_ENOMEM, "facets");
                    *ids = g;
                    *cap = nc;
                }
                (*ids)[(*n)++] = id;
            }
        }
    }
    return BR_OK;
}

static br_status facet_build(srv_snap *s, srv_facet *f, int tags)
{
    uint32_t nb = s->n_base;
    size_t n = 0, cap = 0;
    uint32_t *ids = NULL;
    br_status st = br_idmap_create(&f->names);
    f->book_ptr = st ? NULL : br_malloc(((size_t)nb + 1) * sizeof *f->book_ptr);
    if (!st && !f->book_ptr) st = br_error(BR_ENOMEM, "facets");
    for (uint32_t b = 0; !st && b < nb; b++) {
        const br_book *bk = br_catalog_book(s->cat, b);
        f->book_ptr[b] = (uint32_t)n;
        size_t from = n;
        st = tags ? book_names(f, bk->tags, '|', bk->genre, &ids, &n, &cap)
                  : book_names(f, bk->authors, ',', NULL, &ids, &n, &cap);
        /* a name twice on one book (a tag equal to the genre) counts once */
        for (size_t i = from + 1; !st && i < n; i++)
            for (size_t j = from; j < i; j++)
                if (ids[j] == ids[i]) {
                    ids[i--] = ids[--n];
                    break;
                }
    }
    if (st) {
        br_free(ids);
        return st;
    }
    f->book_ptr[nb] = (uint32_t)n;
    f->ids = ids ? ids : br_malloc(sizeof *ids);
    uint32_t names = br_idmap_count(f->names);
    f->list_ptr = br_calloc((size_t)names + 2, sizeof *f->list_ptr);
    f->list = br_malloc((n + 1) * sizeof *f->list);
    if (!f->ids || !f->list_ptr || !f->list) return br_error(BR_ENOMEM, "facets");
    /* counting sort of (name, book) by name, books visited by popularity */
    for (size_t i = 0; i < n; i++) f->list_ptr[ids[i] + 2]++;
    for (uint32_t t = 0; t < names; t++) f->list_ptr[t + 2] += f->list_ptr[t + 1];
    for (uint32_t r = 0; r < nb; r++) {
        uint32_t b = s->pop_order[r];
        for (uint32_t i = f->book_ptr[b]; i < f->book_ptr[b + 1]; i++)
            f->list[f->list_ptr[ids[i] + 1]++] = b;
    }
    return BR_OK;
}

static void facet_free(srv_facet *f)
{
    br_idmap_free(f->names);
    br_free(f->book_ptr);
    br_free(f->ids);
    br_free(f->list_ptr);
    br_free(f->list);
    memset(f, 0, sizeof *f);
}

br_status br__srv_facets_build(srv_snap *s)
{
    s->pop_rank = br_malloc(((size_t)s->n_base + 1) * sizeof *s->pop_rank);
    if (!s->pop_rank) return br_error(BR_ENOMEM, "facets");
    for (uint32_t r = 0; r < s->n_base; r++) s->pop_rank[s->pop_order[r]] = r;
    br_status st = facet_build(s, &s->tags, 1);
    if (!st) st = facet_build(s, &s->authors, 0);
    return st;
}

void br__srv_facets_free(srv_snap *s)
{
    facet_free(&s->tags);
    facet_free(&s->authors);
    br_free(s->pop_rank);
    s->pop_rank = NULL;
}

static const char *const arg_name[SRV_F_KINDS] = {"tags", "exclude_tags", "authors"};

const char *br__srv_filter_parse(srv_snap *s, srv_filter *f, int kind, const char *value, char *msg,
                                 size_t cap)
{
    const char *arg = arg_name[kind];
    int tags = kind != SRV_F_AUTHORS;
    const srv_facet *fc = tags ? &s->tags : &s->authors;
    f->n[kind] = 0;
    const char *b, *e;
    for (const char *p = value; p;) {
        p = next_name(p, ',', &b, &e);
        size_t len = (size_t)(e - b);
        if (!len) {
            snprintf(msg, cap, "%s: an empty value (give names separated by commas)", arg);
            return msg;
        }
        if (f->n[kind] == SRV_FILTER_MAX) {
            snprintf(msg, cap, "%s: at most %d values", arg, SRV_FILTER_MAX);
            return msg;
        }
        if (len > SRV_FILTER_LEN) {
            snprintf(msg, cap, "%s: a value longer than %d bytes", arg, SRV_FILTER_LEN);
            return msg;
        }
        char *v = f->val[kind][f->n[kind]];
        if (tags)
            fold(b, e, v);
        else {
            memcpy(v, b, len);
            v[len] = 0;
        }
        int64_t id = br_idmap_find(fc->names, v, len);
        int known = id >= 0;
        for (size_t i = 0; !known && i < s->n_added; i++)
            known = tags ? list_has(s->added[i].tags, '|', v, 1) ||
                               list_has(s->added[i].genre, '\0', v, 1)
                         : list_has(s->added[i].authors, ',', v, 0);
        if (!known) {
            snprintf(msg, cap, "%s: no book has the %s '%.60s'", arg, tags ? "tag" : "author", v);
            return msg;
        }
        f->id[kind][f->n[kind]++] = id;
    }
    return NULL;
}

int br__srv_filter_active(const srv_filter *f)
{
    return f && (f->n[SRV_F_TAGS] || f->n[SRV_F_EXCLUDE] || f->n[SRV_F_AUTHORS]);
}

/* 1 when catalogue book b has one of the facet ids. */
static int has_any(const srv_facet *fc, uint32_t b, const int64_t *id, size_t n)
{
    for (uint32_t i = fc->book_ptr[b]; i < fc->book_ptr[b + 1]; i++)
        for (size_t j = 0; j < n; j++)
            if ((int64_t)fc->ids[i] == id[j]) return 1;
    return 0;
}

/* The same for a posted book, on its strings. */
static int added_has(const srv_added *a, const srv_filter *f, int kind)
{
    for (size_t j = 0; j < f->n[kind]; j++) {
        const char *v = f->val[kind][j];
        if (kind == SRV_F_AUTHORS ? list_has(a->authors, ',', v, 0)
                                  : list_has(a->tags, '|', v, 1) || list_has(a->genre, '\0', v, 1))
            return 1;
    }
    return 0;
}

int br__srv_filter_ok(const srv_snap *s, const srv_filter *f, uint32_t b)
{
    if (b >= s->n_base) {
        const srv_added *a = &s->added[b - s->n_base];
        return (!f->n[SRV_F_TAGS] || added_has(a, f, SRV_F_TAGS)) &&
               !added_has(a, f, SRV_F_EXCLUDE) &&
               (!f->n[SRV_F_AUTHORS] || added_has(a, f, SRV_F_AUTHORS));
    }
    return (!f->n[SRV_F_TAGS] || has_any(&s->tags, b, f->id[SRV_F_TAGS], f->n[SRV_F_TAGS])) &&
           !has_any(&s->tags, b, f->id[SRV_F_EXCLUDE], f->n[SRV_F_EXCLUDE]) &&
           (!f->n[SRV_F_AUTHORS] ||
            has_any(&s->authors, b, f->id[SRV_F_AUTHORS], f->n[SRV_F_AUTHORS]));
}

void br__srv_filter_iter_init(srv_filter_iter *it, const srv_snap *s, const srv_filter *f)
{
    memset(it, 0, sizeof *it);
    it->s = s;
    it->f = f;
    /* the shortest lists to walk: the authors', else the tags' */
    int kind = f->n[SRV_F_AUTHORS] ? SRV_F_AUTHORS : f->n[SRV_F_TAGS] ? SRV_F_TAGS : -1;
    it->walk = kind >= 0;
    if (!it->walk) return;
    const srv_facet *fc = kind == SRV_F_AUTHORS ? &s->authors : &s->tags;
    for (size_t j = 0; j < f->n[kind]; j++) {
        int64_t id = f->id[kind][j];
        if (id < 0) continue; /* only posted books have it: they are not in the popular order */
        it->pos[it->n_lists] = fc->list_ptr[id];
        it->end[it->n_lists] = fc->list_ptr[id + 1];
        it->list = fc->list;
        it->n_lists++;
    }
}

uint32_t br__srv_filter_next(srv_filter_iter *it)
{
    const srv_snap *s = it->s;
    if (!it->walk) { /* exclude_tags alone: the popular order, filtered */
        while (it->scan < s->n_base) {
            uint32_t b = s->pop_order[it->scan++];
            if (br__srv_filter_ok(s, it->f, b)) return b;
        }
        return UINT32_MAX;
    }
    for (;;) { /* merge the lists by popularity rank; a book in two lists comes once */
        uint32_t best = UINT32_MAX, rank = UINT32_MAX;
        for (size_t j = 0; j < it->n_lists; j++)
            if (it->pos[j] < it->end[j]) {
                uint32_t r = s->pop_rank[it->list[it->pos[j]]];
                if (r < rank) rank = r, best = it->list[it->pos[j]];
            }
        if (best == UINT32_MAX) return UINT32_MAX;
        for (size_t j = 0; j < it->n_lists; j++)
            if (it->pos[j] < it->end[j] && it->list[it->pos[j]] == best) it->pos[j]++;
        if (br__srv_filter_ok(s, it->f, best)) return best;
    }
}
