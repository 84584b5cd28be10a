/*
 * idcheck.h (core, internal): the one rule for what an id may hold. Ids
 * (readers, books) travel through logs, store keys, JSON and the model's
 * id files, one per line: a control character (below 0x20, or 0x7f:
 * newlines, tabs, escapes, NUL) is refused wherever an id enters, by the
 * CSV loaders (file:line), the store's and the event log's checks.
 */
#ifndef BR_CORE_IDCHECK_H
#define BR_CORE_IDCHECK_H

#include <stddef.h>

/* The place of the first byte of s[0..n) an id may not hold, or n. */
static inline size_t br__id_bad_byte(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return i;
    }
    return n;
}

#endif
