/*
 * idmap.c: external string ids <-> dense indices. Ids live back to back in
 * one growing arena; an open-addressing table (linear probing, power-of-two
 * size, load <= 1/2) maps a hash to the dense index. Each slot carries the
 * hash's high half as a tag, so a probe rarely touches the arena: with a
 * million ids, every other access would be a cache miss.
 */
#include <string.h>

#include "data/loader.h"

struct br_idmap {
    br_arena arena; /* ids, NUL-terminated, back to back */
    size_t *offset; /* (count,) arena offset of each id */
    uint32_t *len;  /* (count,) */
    uint32_t count, cap;
    uint64_t *slots;  /* (n_slots,) hash tag << 32 | (dense index + 1); 0 = empty */
    uint64_t *hashes; /* (count,) kept so growing never rehashes strings */
    size_t n_slots;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    /* FNV-1a then a murmur finaliser: ids are short, this is plenty. */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

br_status br_idmap_create(br_idmap **out)
{
    br_idmap *m = br_calloc(1, sizeof *m);
    if (!m) return br_error(BR_ENOMEM, "idmap: out of memory");
    m->n_slots = 64;
    m->slots = br_calloc(m->n_slots, sizeof *m->slots);
    if (!m->slots) {
        br_free(m);
        return br_error(BR_ENOMEM, "idmap: out of memory");
    }
    *out = m;
    return BR_OK;
}

void br_idmap_free(br_idmap *m)
{
    if (!m) return;
    br_free(m->arena.buf);
    br_free(m->offset);
    br_free(m->len);
    br_free(m->slots);
    br_free(m->hashes);
    br_free(m);
}

/* Ids are a few bytes: an inline loop beats a call to memcmp (the tag has
 * already made a mismatch unlikely). */
static int same_bytes(const char *a, const char *b, size_t n)
{
    if (n > 32) return memcmp(a, b, n) == 0;
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++) d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

static int64_t lookup(const br_idmap *m, const char *id, size_t len, uint64_t h, size_t *slot)
{
    size_t mask = m->n_slots - 1;
    uint64_t tag = h >> 32;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint64_t v = m->slots[i];
        if (v == 0) {
            *slot = i;
            return -1;
        }
        uint32_t idx = (uint32_t)v - 1;
        if ((v >> 32) == tag && m->len[idx] == len &&
            same_bytes(m->arena.buf + m->offset[idx], id, len))
            return idx;
    }
}

static br_status grow_slots(br_idmap *m)
{
    size_t n = m->n_slots * 2;
    uint64_t *slots = br_calloc(n, sizeof *slots);
    if (!slots) return br_error(BR_ENOMEM, "idmap: out of memory");
    for (uint32_t idx = 0; idx < m->count; idx++) {
        size_t i = m->hashes[idx] & (n - 1);
        while (slots[i]) i = (i + 1) & (n - 1);
        slots[i] = (m->hashes[idx] >> 32) << 32 | (idx + 1);
    }
    br_free(m->slots);
    m->slots = slots;
    m->n_slots = n;
    return BR_OK;
}

br_status br_idmap_intern(br_idmap *m, const char *id, size_t len, uint32_t *index, int *added)
{
    uint64_t h = hash_bytes(id, len);
    size_t slot;
    int64_t found = lookup(m, id, len, h, &slot);
    if (found >= 0) {
        *index = (uint32_t)found;
        if (added) *added = 0;
        return BR_OK;
    }
    if (m->count == UINT32_MAX - 1) return br_error(BR_ERANGE, "idmap: more than 2^32 ids");
    if (len > UINT32_MAX) return br_error(BR_ERANGE, "idmap: id too long");
    if (m->count == m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 256;
        size_t *off = br_realloc(m->offset, cap * sizeof *off);
        if (!off) return br_error(BR_ENOMEM, "idmap: out of memory");
        m->offset = off;
        uint32_t *ln = br_realloc(m->len, cap * sizeof *ln);
        if (!ln) return br_error(BR_ENOMEM, "idmap: out of memory");
        m->len = ln;
        uint64_t *hs = br_realloc(m->hashes, cap * sizeof *hs);
        if (!hs) return br_error(BR_ENOMEM, "idmap: out of memory");
        m->hashes = hs;
        m->cap = cap;
    }
    size_t off;
    if (br_arena_push(&m->arena, id, len, &off) != BR_OK)
        return br_error(BR_ENOMEM, "idmap: out of memory");
    uint32_t idx = m->count++;
    m->offset[idx] = off;
    m->len[idx] = (uint32_t)len;
    m->hashes[idx] = h;
    m->slots[slot] = (h >> 32) << 32 | (idx + 1);
    if ((size_t)m->count * 2 > m->n_slots) {
        br_status st = grow_slots(m);
        if (st != BR_OK) return st;
    }
    *index = idx;
    if (added) *added = 1;
    return BR_OK;
}

int64_t br_idmap_find(const br_idmap *m, const char *id, size_t len)
{
    size_t slot;
    return lookup(m, id, len, hash_bytes(id, len), &slot);
}

const char *br_idmap_name(const br_idmap *m, uint32_t index)
{
    return index < m->count ? m->arena.buf + m->offset[index] : NULL;
}

uint32_t br_idmap_count(const br_idmap *m)
{
    return m->count;
}

size_t br_idmap_memory(const br_idmap *m)
{
    return sizeof *m + m->arena.cap + (size_t)m->cap * (sizeof(size_t) + 4 + 8) +
           m->n_slots * sizeof(uint64_t);
}
