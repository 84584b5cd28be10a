/*
 * idmap.c: external string ids <-> dense indices. Ids live back to back in
 * one growing arena; an open-addressing table (linear probing, power-of-two
 * size, load <= 1/2) maps a hash to the dense index. Each 16-byte slot
 * holds the id's first 8 bytes and its length, so a lookup of an id of up
 * to 8 bytes never leaves the table (about one cache miss at a million
 * ids; following the slot to the length, offset and bytes arrays made it
 * four dependent ones, a quarter of `bookrec serve`'s time at 100,000
 * books), and a longer one compares only its tail in the arena.
 *
 * Ids that are decimal numbers (goodbooks, the generated universes, most
 * catalogues) also go to a direct table indexed by their value while the
 * values stay dense (below 2 x count + 1024): a lookup of such an id is a
 * few digit steps and one load, with no hash and no probe (the serving
 * path maps ~130 ids a request; in perf the hash lookups were a large
 * share of it).
 * Only canonical numbers qualify ("7", not "07" or "+7"), so the table and
 * the hash agree on what is one id.
 */
#include <string.h>

#include "core/hash.h"
#include "data/loader.h"

struct slot {
    uint64_t head; /* the id's first 8 bytes, zero padded */
    uint32_t len;  /* the id's length */
    uint32_t idx1; /* dense index + 1; 0: empty */
};

/* The first 8 bytes as a word, by shifts (a byte buffer read back as a
 * word stalls on store forwarding). */
static uint64_t id_head(const char *id, size_t len)
{
    uint64_t h = 0;
    for (size_t i = 0; i < len && i < 8; i++) h |= (uint64_t)(unsigned char)id[i] << (8 * i);
    return h;
}

struct br_idmap {
    br__sbuf arena; /* ids, NUL-terminated, back to back (br__sb_push) */
    size_t *offset; /* (count,) arena offset of each id */
    uint32_t *len;  /* (count,) */
    uint32_t count, cap;
    struct slot *slots; /* (n_slots,) */
    uint64_t *hashes;   /* (count,) kept so growing never rehashes strings */
    size_t n_slots;
    /* num[v] = index + 1 of the id that is the decimal number v, 0: none;
     * every such id with v < n_num is in it */
    uint32_t *num;
    size_t n_num;
};

/* The value of a canonical decimal id ("0", or 1-9 digits without a leading
 * zero), else -1. */
static int64_t id_number(const char *id, size_t len)
{
    if (len == 0 || len > 9 || (id[0] == '0' && len > 1)) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)id[i] - '0';
        if (d > 9) return -1;
        v = v * 10 + d;
    }
    return v;
}

/* Grows the direct table to hold value v when the values stay dense;
 * refills it from every id (the ids in the new range were not recorded). */
static br_status grow_num(br_idmap *m, int64_t v)
{
    if ((uint64_t)v >= 2 * (uint64_t)m->count + 1024) return BR_OK; /* sparse: hash only */
    size_t n = m->n_num ? m->n_num : 1024;
    while (n <= (size_t)v) n *= 2;
    uint32_t *num = br_calloc(n, sizeof *num);
    if (!num) return br_error(BR_ENOMEM, "idmap: out of memory");
    for (uint32_t i = 0; i < m->count; i++) {
        int64_t w = id_number(m->arena.p + m->offset[i], m->len[i]);
        if (w >= 0 && (size_t)w < n) num[w] = i + 1;
    }
    br_free(m->num);
    m->num = num;
    m->n_num = n;
    return BR_OK;
}

/* The hash of an id from its head (first 8 bytes) and length, plus the
 * rest of its bytes for longer ids, through murmur3's finaliser so every
 * byte reaches the low bits the table indexes with. Short ids (the common
 * case) cost no per-byte loop beyond the head's. */
static uint64_t hash_id(const char *id, size_t len, uint64_t head)
{
    uint64_t h = head ^ (len * 0x9e3779b97f4a7c15ULL);
    if (len > 8) h = br__fnv1a64_update(h, id + 8, len - 8); /* FNV-1a steps */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
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
    br__sb_free(&m->arena);
    br_free(m->offset);
    br_free(m->len);
    br_free(m->slots);
    br_free(m->hashes);
    br_free(m->num);
    br_free(m);
}

static int64_t lookup(const br_idmap *m, const char *id, size_t len, uint64_t head, uint64_t h,
                      size_t *slot)
{
    size_t mask = m->n_slots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const struct slot *e = &m->slots[i];
        if (!e->idx1) {
            *slot = i;
            return -1;
        }
        if (e->head == head && e->len == len &&
            (len <= 8 || !memcmp(m->arena.p + m->offset[e->idx1 - 1] + 8, id + 8, len - 8)))
            return e->idx1 - 1;
    }
}

static br_status grow_slots(br_idmap *m)
{
    size_t n = m->n_slots * 2;
    struct slot *slots = br_calloc(n, sizeof *slots);
    if (!slots) return br_error(BR_ENOMEM, "idmap: out of memory");
    for (size_t j = 0; j < m->n_slots; j++) {
        const struct slot *e = &m->slots[j];
        if (!e->idx1) continue;
        size_t i = m->hashes[e->idx1 - 1] & (n - 1);
        while (slots[i].idx1) i = (i + 1) & (n - 1);
        slots[i] = *e;
    }
    br_free(m->slots);
    m->slots = slots;
    m->n_slots = n;
    return BR_OK;
}

br_status br_idmap_intern(br_idmap *m, const char *id, size_t len, uint32_t *index, int *added)
{
    int64_t v = id_number(id, len);
    if (v >= 0 && (size_t)v < m->n_num && m->num[v]) {
        *index = m->num[v] - 1;
        if (added) *added = 0;
        return BR_OK;
    }
    uint64_t head = id_head(id, len), h = hash_id(id, len, head);
    size_t slot;
    int64_t found = lookup(m, id, len, head, h, &slot);
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
    if (br__sb_push(&m->arena, id, len, &off) != BR_OK)
        return br_error(BR_ENOMEM, "idmap: out of memory");
    uint32_t idx = m->count++;
    m->offset[idx] = off;
    m->len[idx] = (uint32_t)len;
    m->hashes[idx] = h;
    m->slots[slot] = (struct slot){head, (uint32_t)len, idx + 1};
    if ((size_t)m->count * 2 > m->n_slots) {
        br_status st = grow_slots(m);
        if (st != BR_OK) return st;
    }
    if (v >= 0) {
        if ((size_t)v < m->n_num) {
            m->num[v] = idx + 1;
        } else {
            br_status st = grow_num(m, v); /* records this id too, when it grows */
            if (st != BR_OK) return st;
        }
    }
    *index = idx;
    if (added) *added = 1;
    return BR_OK;
}

int64_t br_idmap_find(const br_idmap *m, const char *id, size_t len)
{
    int64_t v = id_number(id, len);
    if (v >= 0 && (size_t)v < m->n_num) return (int64_t)m->num[v] - 1;
    size_t slot;
    uint64_t head = id_head(id, len);
    return lookup(m, id, len, head, hash_id(id, len, head), &slot);
}

const char *br_idmap_name(const br_idmap *m, uint32_t index)
{
    return index < m->count ? m->arena.p + m->offset[index] : NULL;
}

uint32_t br_idmap_count(const br_idmap *m)
{
    return m->count;
}

size_t br_idmap_memory(const br_idmap *m)
{
    return sizeof *m + m->arena.cap + (size_t)m->cap * (sizeof(size_t) + 4 + 8) +
           m->n_slots * sizeof(struct slot) + m->n_num * sizeof(uint32_t);
}
