/*
 * reason.c: why a book fits a reader, in the catalogue's own words: the
 * same series as a book they liked, the same author, or tags they share.
 * A book nobody has rated cannot be explained by other readers ("readers
 * who read X also read it"), so the explanations of the default hybrid
 * (src/hybrid/explain.c) and of serving (src/serve/rank.c) name what its
 * content has in common with the reader's books instead; the text
 * similarity is their fallback.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "content/lexical.h"

/* The next comma- (or pipe-) separated item of *s, trimmed: its start and
 * length, *s moved past it; 0 at the end. */
static int next_item(const char **s, char sep, const char **item, size_t *n)
{
    const char *p = *s;
    if (!p || !*p) return 0;
    const char *e = strchr(p, sep);
    size_t len = e ? (size_t)(e - p) : strlen(p);
    *s = e ? e + 1 : p + len;
    while (len && isspace((unsigned char)*p)) p++, len--;
    while (len && isspace((unsigned char)p[len - 1])) len--;
    *item = p;
    *n = len;
    return 1;
}

static int has_item(const char *list, char sep, const char *x, size_t xn)
{
    const char *it;
    size_t n;
    while (next_item(&list, sep, &it, &n))
        if (n == xn && n && !strncasecmp(it, x, n)) return 1;
    return 0;
}

static void put(char *dst, size_t cap, const char *src, size_t n)
{
    if (!cap) return;
    if (n > cap - 1) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

int br__lex_reason_find(const br_catalog *cat, uint32_t book, const uint32_t *liked, size_t n,
                        br__lex_reason *out)
{
    memset(out, 0, sizeof *out);
    uint32_t nb = br_catalog_count(cat);
    if (book >= nb) return 0;
    const br_book *bk = br_catalog_book(cat, book);
    char series[sizeof out->what], other[sizeof out->what];
    float idx;
    size_t bare;
    int in_series = br__lex_series(bk->title, series, sizeof series, &idx, &bare);
    /* 1: the same series (the strongest: readers follow a series). */
    for (size_t i = 0; in_series && i < n; i++) {
        if (liked[i] >= nb || liked[i] == book) continue;
        if (br__lex_series(br_catalog_book(cat, liked[i])->title, other, sizeof other, &idx,
                           &bare) &&
            !strcasecmp(series, other)) {
            out->kind = BR__REASON_SERIES;
            out->which = i;
            put(out->what, sizeof out->what, series, strlen(series));
            return 1;
        }
    }
    /* 2: an author in common. */
    for (size_t i = 0; i < n; i++) {
        if (liked[i] >= nb || liked[i] == book) continue;
        const char *a = bk->authors, *it;
        size_t len;
        while (next_item(&a, ',', &it, &len))
            if (len && has_item(br_catalog_book(cat, liked[i])->authors, ',', it, len)) {
                out->kind = BR__REASON_AUTHOR;
                out->which = i;
                put(out->what, sizeof out->what, it, len);
                return 1;
            }
    }
    /* 3: the liked book sharing the most tags (two at least: one tag in
     * common, "fiction", says little), its first two named. */
    size_t best = 0, best_n = 1;
    for (size_t i = 0; i < n; i++) {
        if (liked[i] >= nb || liked[i] == book) continue;
        const char *t = bk->tags, *it;
        size_t len, c = 0;
        while (next_item(&t, '|', &it, &len))
            c += len && has_item(br_catalog_book(cat, liked[i])->tags, '|', it, len);
        if (c > best_n) best_n = c, best = i;
    }
    if (best_n < 2) return 0;
    out->kind = BR__REASON_TAGS;
    out->which = best;
    const char *t = bk->tags, *it;
    size_t len, w = 0, named = 0;
    while (named < 2 && next_item(&t, '|', &it, &len)) {
        if (!len || !has_item(br_catalog_book(cat, liked[best])->tags, '|', it, len)) continue;
        if (named++) put(out->what + w, sizeof out->what - w, " and ", 5), w = strlen(out->what);
        put(out->what + w, sizeof out->what - w, it, len);
        w = strlen(out->what);
    }
    return 1;
}
