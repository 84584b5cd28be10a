/*
 * sbuf.h (internal): the library's one string builder, a growable byte
 * buffer that is always NUL-terminated. A failed allocation is sticky
 * (`oom`): the appends after it do nothing, so a writer appends freely and
 * checks once at the end. Used for the server's responses (written in ~150
 * pieces, most of them literals), JSON fragments, Redis command batches,
 * and as a string pool (br__sb_push: the loaders' ids and fields, addressed
 * by offset while the buffer may still move).
 *
 *     br__sbuf b = {0};
 *     br__sb_str(&b, "{\"id\":");
 *     br__sb_json_str(&b, id);
 *     if (b.oom) ...;           // else b.p, b.len
 *     br__sb_free(&b);
 */
#ifndef BR_CORE_SBUF_H
#define BR_CORE_SBUF_H

#include <stddef.h>
#include <string.h>

#include "bookrec/core.h"

typedef struct br__sbuf {
    char *p;    /* NULL until the first append, then NUL-terminated */
    size_t len; /* bytes, without the NUL */
    size_t cap;
    int oom; /* an allocation failed: the content is incomplete */
} br__sbuf;

/* Empties the buffer (and clears oom), keeping its memory. */
void br__sb_reset(br__sbuf *b);
void br__sb_free(br__sbuf *b);
/* Room for `need` more bytes (and the NUL); sets oom when there is none. */
void br__sb_reserve(br__sbuf *b, size_t need);
void br__sb_put(br__sbuf *b, const void *s, size_t n);
/* Inline, so that a literal's length is a constant. */
static inline void br__sb_str(br__sbuf *b, const char *s)
{
    br__sb_put(b, s, strlen(s));
}
void br__sb_printf(br__sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A score: up to 6 decimals, trailing zeros dropped ("0.5", "1", "0.123457");
 * NaN, infinities and |x| >= 1e9 in printf's %.6g. */
void br__sb_score(br__sbuf *b, double x);
/* s as a JSON string body (no quotes), escaped. */
void br__sb_json_esc(br__sbuf *b, const char *s);
/* "s" with quotes. */
void br__sb_json_str(br__sbuf *b, const char *s);
/* Appends s[0..n) and a NUL that stays in the buffer (a pool of
 * NUL-terminated strings); *off receives the string's offset. BR_ENOMEM
 * when an allocation fails (now or before). */
br_status br__sb_push(br__sbuf *b, const char *s, size_t n, size_t *off);
/* The text, handed to the caller (br_free; never NULL: "" when empty; its
 * block shrunk to the text's length), and the buffer emptied; NULL when an allocation failed (the
 * buffer is freed). */
char *br__sb_take(br__sbuf *b);

#endif
