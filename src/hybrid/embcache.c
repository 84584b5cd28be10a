/*
 * embcache.c: a book's text for the encoder, and the embedding cache.
 *
 * Embedding the 10,000 goodbooks books with use-lite costs minutes, every
 * other step of an evaluation seconds; so embeddings are kept on disk,
 * keyed by the encoder's name and the hash and length of the exact text it
 * read. A changed description re-embeds that book only; a different
 * encoder or template never sees stale vectors (the template changes the
 * text, hence the key).
 *
 * File (docs/formats.md, "Embedding cache"), little-endian:
 *   magic "BREMBCAC", u32 version (1), u32 dim, u32 key length, key bytes,
 *   u64 count, then count records of { u64 fnv1a64(text), u32 text bytes,
 *   u32 reserved (0), f32 embedding[dim] }.
 * One file holds one encoder: a different key or dim replaces the file.
 * Rewritten whole (temporary file, fsync, rename) when books were added.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bookrec/hybrid.h"

#define CACHE_MAGIC   "BREMBCAC"
#define CACHE_VERSION 1u

/* ------------------------------------------------------------ book text -- */

typedef struct strbuf {
    char *p;
    size_t len, cap;
    int bad;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n)
{
    if (b->bad) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *q = br_realloc(b->p, cap);
        if (!q) {
            b->bad = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* One part of the template: ". " between parts, nothing for empty ones. */
static void sb_part(strbuf *b, const char *prefix, const char *s)
{
    if (!s || !*s) return;
    if (b->len) sb_add(b, ". ", 2);
    if (prefix) sb_add(b, prefix, strlen(prefix));
    sb_add(b, s, strlen(s));
}

br_status br_book_text(const br_book *b, br_book_template t, char **out)
{
    strbuf sb = {0};
    *out = NULL;
    if (t == BR_TEXT_DESCRIPTION) {
        sb_part(&sb, NULL, b->description && *b->description ? b->description : b->title);
    } else {
        sb_part(&sb, NULL, b->title);
        sb_part(&sb, "by ", b->authors);
        sb_part(&sb, NULL, b->genre);
        if (b->tags && *b->tags) {
            /* "a|b|c" reads as "a, b, c" */
            if (sb.len) sb_add(&sb, ". ", 2);
            for (const char *p = b->tags; *p; p++) {
                if (*p == '|')
                    sb_add(&sb, ", ", 2);
                else
                    sb_add(&sb, p, 1);
            }
        }
        sb_part(&sb, NULL, b->description);
    }
    if (!sb.bad && !sb.p) sb_add(&sb, "", 0);
    if (sb.bad) {
        br_free(sb.p);
        return br_error(BR_ENOMEM, "book text");
    }
    *out = sb.p;
    return BR_OK;
}

uint64_t br_fnv1a64(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

br_status br_embed_cache_path(char *buf, size_t cap)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int w;
    if (xdg && *xdg)
        w = snprintf(buf, cap, "%s/bookrec/embeddings.brec", xdg);
    else if (home && *home)
        w = snprintf(buf, cap, "%s/.cache/bookrec/embeddings.brec", home);
    else
        return br_error(BR_ENOTFOUND, "embedding cache: neither XDG_CACHE_HOME nor HOME is set");
    if (w < 0 || (size_t)w >= cap) return br_error(BR_ERANGE, "embedding cache: path too long");
    return BR_OK;
}

/* ---------------------------------------------------------------- cache -- */

typedef struct cache_rec {
    uint64_t hash;
    uint32_t len;
    uint32_t pos; /* row in vec */
} cache_rec;

typedef struct cache {
    size_t dim, n, cap;
    cache_rec *rec;
    float *vec; /* (cap, dim) */
} cache;

static int cmp_rec(const void *a, const void *b)
{
    const cache_rec *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return (x->len > y->len) - (x->len < y->len);
}

static br_status cache_grow(cache *c, size_t want)
{
    if (want <= c->cap) return BR_OK;
    size_t cap = want < 2 * c->cap ? 2 * c->cap : want;
    cache_rec *r = br_realloc(c->rec, cap * sizeof *r);
    if (!r) return br_error(BR_ENOMEM, "embedding cache");
    c->rec = r;
    float *v = br_realloc(c->vec, cap * c->dim * sizeof *v);
    if (!v) return br_error(BR_ENOMEM, "embedding cache");
    c->vec = v;
    c->cap = cap;
    return BR_OK;
}

/* Reads the cache when it exists and matches key and dim; a missing or
 * foreign file is an empty cache, a corrupt one an error (so a bad disk
 * never passes silently). */
static br_status cache_read(const char *path, const char *key, cache *c)
{
    FILE *f = fopen(path, "rb");
    if (!f) return BR_OK;
    char magic[8];
    uint32_t hdr[3];
    br_status st = BR_OK;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, CACHE_MAGIC, 8) != 0 ||
        fread(hdr, sizeof(uint32_t), 3, f) != 3) {
        st = br_error(BR_EFORMAT, "%s: not a bookrec embedding cache", path);
        goto out;
    }
    if (hdr[0] != CACHE_VERSION) {
        st = br_error(BR_EFORMAT, "%s: cache version %u, this build reads %u", path, hdr[0],
                      CACHE_VERSION);
        goto out;
    }
    if (hdr[1] != c->dim || hdr[2] != strlen(key) || hdr[2] > 4096) goto out; /* other encoder */
    char kb[4097];
    uint64_t count;
    if (fread(kb, 1, hdr[2], f) != hdr[2] || fread(&count, sizeof count, 1, f) != 1) {
        st = br_error(BR_EFORMAT, "%s: truncated header", path);
        goto out;
    }
    if (memcmp(kb, key, hdr[2]) != 0) goto out;
    if (count > (1ull << 32)) {
        st = br_error(BR_EFORMAT, "%s: implausible count %llu", path, (unsigned long long)count);
        goto out;
    }
    if ((st = cache_grow(c, (size_t)count))) goto out;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t h;
        uint32_t lr[2];
        if (fread(&h, sizeof h, 1, f) != 1 || fread(lr, sizeof(uint32_t), 2, f) != 2 ||
            fread(c->vec + i * c->dim, sizeof(float), c->dim, f) != c->dim) {
            st = br_error(BR_EFORMAT, "%s: truncated at record %llu of %llu", path,
                          (unsigned long long)i, (unsigned long long)count);
            goto out;
        }
        c->rec[i] = (cache_rec){h, lr[0], (uint32_t)i};
    }
    c->n = (size_t)count;
out:
    fclose(f);
    return st;
}

static br_status cache_write(const char *path, const char *key, const cache *c)
{
    size_t plen = strlen(path);
    char *tmp = br_malloc(plen + 16);
    if (!tmp) return br_error(BR_ENOMEM, "embedding cache");
    snprintf(tmp, plen + 16, "%s.tmp%ld", path, (long)getpid());
    br_status st = BR_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = br_error(BR_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        br_free(tmp);
        return st;
    }
    uint32_t hdr[3] = {CACHE_VERSION, (uint32_t)c->dim, (uint32_t)strlen(key)};
    uint64_t count = c->n;
    int bad = fwrite(CACHE_MAGIC, 1, 8, f) != 8 || fwrite(hdr, sizeof hdr, 1, f) != 1 ||
              fwrite(key, 1, hdr[2], f) != hdr[2] || fwrite(&count, sizeof count, 1, f) != 1;
    for (size_t i = 0; i < c->n && !bad; i++) {
        uint32_t lr[2] = {c->rec[i].len, 0};
        bad = fwrite(&c->rec[i].hash, sizeof(uint64_t), 1, f) != 1 ||
              fwrite(lr, sizeof lr, 1, f) != 1 ||
              fwrite(c->vec + (size_t)c->rec[i].pos * c->dim, sizeof(float), c->dim, f) != c->dim;
    }
    if (!bad) bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    if (fclose(f) != 0) bad = 1;
    if (bad)
        st = br_error(BR_EIO, "%s: write failed: %s", tmp, strerror(errno));
    else if (rename(tmp, path) != 0)
        st = br_error(BR_EIO, "%s: cannot rename into place: %s", path, strerror(errno));
    if (st) unlink(tmp);
    br_free(tmp);
    return st;
}

/* Creates the parent directories of path (mkdir -p of its dirname). */
static void make_parents(const char *path)
{
    char *d = br_strdup(path);
    if (!d) return;
    for (char *p = d + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (*d) (void)mkdir(d, 0755); /* EEXIST is fine */
        *p = '/';
    }
    br_free(d);
}

br_status br_embed_catalog(const br_encoder *enc, const char *encoder_key, const br_catalog *cat,
                           br_book_template t, const char *cache_path, float *out, size_t *embedded)
{
    if (embedded) *embedded = 0;
    if (!enc || !cat || !out || !encoder_key)
        return br_error(BR_EINVAL, "br_embed_catalog: NULL argument");
    size_t nb = br_catalog_count(cat), dim = br_encoder_dim(enc);
    cache c = {dim, 0, 0, NULL, NULL};
    char **texts = br_calloc(nb + 1, sizeof *texts);
    cache_rec *key = br_malloc((nb + 1) * sizeof *key);
    uint32_t *miss = br_malloc((nb + 1) * sizeof *miss);
    float *fresh = NULL;
    br_status st = BR_OK;
    if (!texts || !key || !miss) {
        st = br_error(BR_ENOMEM, "embedding cache");
        goto out;
    }
    if (cache_path && (st = cache_read(cache_path, encoder_key, &c))) goto out;
    if (c.n) qsort(c.rec, c.n, sizeof *c.rec, cmp_rec);
    size_t n_miss = 0;
    for (size_t i = 0; i < nb; i++) {
        if ((st = br_book_text(br_catalog_book(cat, (uint32_t)i), t, &texts[i]))) goto out;
        size_t len = strlen(texts[i]);
        key[i] = (cache_rec){br_fnv1a64(texts[i], len), (uint32_t)len, 0};
        const cache_rec *hit = c.n ? bsearch(&key[i], c.rec, c.n, sizeof *c.rec, cmp_rec) : NULL;
        if (hit)
            memcpy(out + i * dim, c.vec + (size_t)hit->pos * dim, dim * sizeof(float));
        else
            miss[n_miss++] = (uint32_t)i;
    }
    if (n_miss) {
        /* Embed only the books not in the cache, and a text repeated within
         * the catalogue once (the cache's identity: hash and length): the
         * generated universes repeat descriptions, 23,635 distinct texts in
         * 100,000 books. mk[j].pos is j, the miss position, while sorting. */
        cache_rec *mk = br_malloc(n_miss * sizeof *mk);
        uint32_t *row = br_malloc(n_miss * sizeof *row);     /* miss j -> its text's row */
        uint32_t *first = br_malloc(n_miss * sizeof *first); /* row u -> a miss with it */
        const char **mt = br_malloc(n_miss * sizeof *mt);
        if (!mk || !row || !first || !mt) {
            br_free(mk), br_free(row), br_free(first), br_free(mt);
            st = br_error(BR_ENOMEM, "embedding cache: %zu new books", n_miss);
            goto out;
        }
        for (size_t j = 0; j < n_miss; j++) {
            mk[j] = key[miss[j]];
            mk[j].pos = (uint32_t)j;
        }
        qsort(mk, n_miss, sizeof *mk, cmp_rec);
        size_t n_text = 0;
        for (size_t j = 0; j < n_miss; j++) {
            if (!j || cmp_rec(&mk[j - 1], &mk[j]) != 0) {
                first[n_text] = mk[j].pos;
                mt[n_text++] = texts[miss[mk[j].pos]];
            }
            row[mk[j].pos] = (uint32_t)(n_text - 1);
        }
        br_free(mk);
        fresh = br_malloc(n_text * dim * sizeof *fresh);
        st = fresh ? br_encoder_embed(enc, mt, n_text, fresh)
                   : br_error(BR_ENOMEM, "embedding cache: %zu new texts", n_text);
        br_free(mt);
        for (size_t j = 0; j < n_miss && !st; j++)
            memcpy(out + (size_t)miss[j] * dim, fresh + (size_t)row[j] * dim, dim * sizeof(float));
        br_free(row);
        if (!st && embedded) *embedded = n_miss;
        if (!st && cache_path && !(st = cache_grow(&c, c.n + n_text))) {
            for (size_t u = 0; u < n_text; u++) {
                cache_rec r = key[miss[first[u]]];
                r.pos = (uint32_t)c.n;
                memcpy(c.vec + c.n * dim, fresh + u * dim, dim * sizeof(float));
                c.rec[c.n++] = r;
            }
            make_parents(cache_path);
            st = cache_write(cache_path, encoder_key, &c);
        }
        br_free(first);
    }
out:
    for (size_t i = 0; texts && i < nb; i++) br_free(texts[i]);
    br_free(texts);
    br_free(key);
    br_free(miss);
    br_free(fresh);
    br_free(c.rec);
    br_free(c.vec);
    return st;
}
