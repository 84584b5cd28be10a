/*
 * sbuf.c: the string builder (see sbuf.h).
 */
#include "core/sbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

void br__sb_reserve(br__sbuf *b, size_t need)
{
    if (b->oom || b->len + need + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + need + 1) cap *= 2;
    char *p = br_realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

void br__sb_reset(br__sbuf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->p) b->p[0] = 0;
}

void br__sb_free(br__sbuf *b)
{
    br_free(b->p);
    memset(b, 0, sizeof *b);
}

void br__sb_put(br__sbuf *b, const void *s, size_t n)
{
    br__sb_reserve(b, n);
    if (b->oom) return;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void br__sb_printf(br__sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        br__sb_put(b, tmp, (size_t)n);
        return;
    }
    br__sb_reserve(b, (size_t)n);
    if (b->oom) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Scores are printed on every listed book: printf's float path was the
 * largest user-space cost of a request, so finite values below 1e9 are
 * written here, rounded to 6 decimals with trailing zeros dropped. */
void br__sb_score(br__sbuf *b, double x)
{
    if (!(x > -1e9 && x < 1e9)) { /* NaN, inf, huge: printf's form */
        br__sb_printf(b, "%.6g", x);
        return;
    }
    char tmp[32], *e = tmp + sizeof tmp, *q = e;
    int neg = x < 0;
    uint64_t v = (uint64_t)((neg ? -x : x) * 1e6 + 0.5);
    uint64_t ip = v / 1000000u;
    uint32_t fr = (uint32_t)(v % 1000000u);
    if (fr) {
        int digits = 6;
        while (fr % 10 == 0) {
            fr /= 10;
            digits--;
        }
        for (; digits > 0; digits--) {
            *--q = (char)('0' + fr % 10);
            fr /= 10;
        }
        *--q = '.';
    }
    do {
        *--q = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    if (neg && v) *--q = '-';
    br__sb_put(b, q, (size_t)(e - q));
}

void br__sb_json_esc(br__sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
        br__sb_put(b, run, (size_t)(s - run));
        run = s + 1;
        switch (c) {
        case '"':
            br__sb_put(b, "\\\"", 2);
            break;
        case '\\':
            br__sb_put(b, "\\\\", 2);
            break;
        case '\n':
            br__sb_put(b, "\\n", 2);
            break;
        case '\t':
            br__sb_put(b, "\\t", 2);
            break;
        case '\r':
            br__sb_put(b, "\\r", 2);
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            br__sb_put(b, u, 6);
        }
        }
    }
    br__sb_put(b, run, (size_t)(s - run));
}

void br__sb_json_str(br__sbuf *b, const char *s)
{
    br__sb_put(b, "\"", 1);
    br__sb_json_esc(b, s);
    br__sb_put(b, "\"", 1);
}

br_status br__sb_push(br__sbuf *b, const char *s, size_t n, size_t *off)
{
    size_t at = b->len;
    br__sb_put(b, s, n);
    br__sb_put(b, "", 1); /* the terminator, kept */
    if (b->oom) return br_error(BR_ENOMEM, "out of memory");
    *off = at;
    return BR_OK;
}

char *br__sb_take(br__sbuf *b)
{
    if (!b->oom && !b->p) br__sb_put(b, "", 0);
    if (b->oom) {
        br__sb_free(b);
        return NULL;
    }
    /* Shrunk to fit: a caller may keep many (every book's text at once)
     * and the buffer grows in 4 KiB steps. */
    char *p = b->p;
    if (b->cap > b->len + 1) {
        char *q = br_realloc(p, b->len + 1);
        if (q) p = q;
    }
    memset(b, 0, sizeof *b);
    return p;
}
