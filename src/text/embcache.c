/*
 * embcache.c: the embedding cache (a book's text: book_text.c).
 *
 * Embedding the 10,000 goodbooks books with use-lite costs a minute, every
 * other step of a command seconds; so embeddings are kept on disk, keyed by
 * the encoder's name and the hash and length of the exact text it read.
 * The template only decides that text, so it is part of the key through
 * it: both templates' vectors of a book sit side by side, and a changed
 * description re-embeds that book only.
 *
 * Two kinds of cache file, one format (docs/formats.md, "Embedding cache"):
 *  - the shared cache, one file per encoder in a user-level directory
 *    (br_embed_cache_dir): every command reads and feeds it, so a book
 *    embedded by one command is never embedded again by another;
 *  - a caller's own file (`train`'s DIR/embeddings.brec, which keeps a
 *    model directory self-contained, or `--cache FILE`): read first, and
 *    filled with whatever it lacked, including what came from the shared
 *    cache.
 * A file is mapped read-only and indexed, never loaded whole. Writers add
 * under an exclusive flock on FILE.lock: re-read the file, append what it
 * still lacks, write a temporary file, fsync, rename. Readers need no lock
 * (rename is atomic), a file is never torn, and two processes adding at
 * once both keep their books (the second re-reads what the first wrote).
 *
 * Little-endian: magic "BREMBCAC", u32 version (1), u32 dim, u32 key
 * length, key bytes, u64 count, then count records of { u64 fnv1a64(text),
 * u32 text bytes, u32 reserved (0), f32 embedding[dim] }. One file holds
 * one encoder: a different key or dim is replaced by the next write.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bookrec/text.h"
#include "core/afile.h"

#define CACHE_MAGIC   "BREMBCAC"
#define CACHE_VERSION 1u
#define CACHE_ENV     "BOOKREC_EMBED_CACHE"

/* ---------------------------------------------------------- cache paths -- */

br_status br_embed_cache_dir(char *buf, size_t cap)
{
    const char *env = getenv(CACHE_ENV), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int w;
    if (!cap) return br_error(BR_EINVAL, "embedding cache: no room for the path");
    buf[0] = '\0';
    if (env && !strcmp(env, "none")) return BR_OK;
    if (env && *env)
        w = snprintf(buf, cap, "%s", env);
    else if (xdg && *xdg)
        w = snprintf(buf, cap, "%s/bookrec/embeddings", xdg);
    else if (home && *home)
        w = snprintf(buf, cap, "%s/.cache/bookrec/embeddings", home);
    else
        return BR_OK; /* nowhere to keep it: no shared cache */
    if (w < 0 || (size_t)w >= cap) {
        buf[0] = '\0';
        return br_error(BR_ERANGE, "embedding cache: path too long");
    }
    return BR_OK;
}

static int plain_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

br_status br_embed_cache_file(const char *dir, const char *encoder_key, char *buf, size_t cap)
{
    if (!dir || !*dir || !encoder_key || !*encoder_key)
        return br_error(BR_EINVAL, "embedding cache: no directory or encoder");
    size_t n = strlen(encoder_key);
    int plain = encoder_key[0] != '.' && n <= 64;
    for (size_t i = 0; plain && i < n; i++) plain = plain_char(encoder_key[i]);
    int w;
    if (plain) {
        w = snprintf(buf, cap, "%s/%s.brec", dir, encoder_key);
    } else {
        /* "bert:/models/all-MiniLM-L6-v2" -> "...models-all-MiniLM-L6-v2-<hash>":
         * readable, and the hash keeps two keys apart (the file's header
         * holds the key itself, checked on every read). */
        char tail[41];
        const char *s = n > 40 ? encoder_key + n - 40 : encoder_key;
        size_t k = 0;
        for (; *s; s++) tail[k++] = plain_char(*s) && *s != '.' ? *s : '-';
        tail[k] = '\0';
        w = snprintf(buf, cap, "%s/%s-%016llx.brec", dir, tail,
                     (unsigned long long)br_fnv1a64(encoder_key, n));
    }
    if (w < 0 || (size_t)w >= cap) return br_error(BR_ERANGE, "embedding cache: path too long");
    return BR_OK;
}

/* ---------------------------------------------------------------- cache -- */

typedef struct cache_rec {
    uint64_t hash;
    uint32_t len;
    uint32_t pos; /* record in the file, or row of the caller's matrix */
} cache_rec;

/* One cache file, mapped read-only: records are fixed-size, so the index
 * (sorted by hash and length) points straight into the mapping. */
typedef struct cache {
    size_t dim, rs;      /* rs: bytes per record, 16 + 4 dim */
    unsigned char *map;  /* the whole file, or NULL */
    size_t map_len, hdr; /* hdr: bytes before the first record */
    size_t n;            /* records, 0 for a missing or foreign file */
    cache_rec *idx;      /* (n) sorted */
} cache;

static int cmp_rec(const void *a, const void *b)
{
    const cache_rec *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return (x->len > y->len) - (x->len < y->len);
}

static void cache_close(cache *c)
{
    if (c->map) munmap(c->map, c->map_len);
    br_free(c->idx);
    c->map = NULL;
    c->idx = NULL;
    c->n = 0;
}

/* Maps path when it exists and matches key and dim; a missing or foreign
 * file is an empty cache. A damaged one is an error when strict (a
 * caller's own file: a bad disk never passes silently), else a warning
 * and an empty cache that the next write replaces (the shared cache: it
 * must not stop every command). */
static br_status cache_open(const char *path, const char *key, size_t dim, int strict, cache *c)
{
    memset(c, 0, sizeof *c);
    c->dim = dim;
    c->rs = 16 + 4 * dim;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return BR_OK;
        br_status st = br_error(BR_EIO, "%s: cannot open: %s", path, strerror(errno));
        if (strict) return st;
        br_log(BR_LOG_WARN, "embedding cache %s ignored: %s", path, br_error_detail());
        br_error_clear();
        return BR_OK;
    }
    struct stat sb;
    br_status st = BR_OK;
    if (fstat(fd, &sb) != 0) {
        st = br_error(BR_EIO, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    size_t size = (size_t)sb.st_size;
    if (size) {
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            st = br_error(BR_EIO, "%s: cannot map: %s", path, strerror(errno));
            goto out;
        }
        c->map = m;
        c->map_len = size;
    }
    const unsigned char *p = c->map;
    uint32_t hdr[3];
    uint64_t count;
    if (size < 20 || memcmp(p, CACHE_MAGIC, 8) != 0) {
        st = br_error(BR_EFORMAT, "%s: not a bookrec embedding cache", path);
        goto out;
    }
    memcpy(hdr, p + 8, sizeof hdr);
    if (hdr[0] != CACHE_VERSION) {
        st = br_error(BR_EFORMAT, "%s: cache version %u, this build reads %u", path, hdr[0],
                      CACHE_VERSION);
        goto out;
    }
    if (hdr[1] != dim || hdr[2] != strlen(key)) goto foreign; /* another encoder */
    if (28 + (size_t)hdr[2] > size) {
        st = br_error(BR_EFORMAT, "%s: truncated header", path);
        goto out;
    }
    if (memcmp(p + 20, key, hdr[2]) != 0) goto foreign;
    c->hdr = 28 + (size_t)hdr[2];
    memcpy(&count, p + 20 + hdr[2], sizeof count);
    if (count > (size - c->hdr) / c->rs || count > UINT32_MAX) {
        st = br_error(BR_EFORMAT, "%s: truncated: %llu records declared, room for %zu", path,
                      (unsigned long long)count, (size - c->hdr) / c->rs);
        goto out;
    }
    c->idx = br_malloc(((size_t)count + 1) * sizeof *c->idx);
    if (!c->idx) {
        st = br_error(BR_ENOMEM, "embedding cache: %llu records", (unsigned long long)count);
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        const unsigned char *r = p + c->hdr + i * c->rs;
        memcpy(&c->idx[i].hash, r, 8);
        memcpy(&c->idx[i].len, r + 8, 4);
        c->idx[i].pos = (uint32_t)i;
    }
    c->n = (size_t)count;
    qsort(c->idx, c->n, sizeof *c->idx, cmp_rec);
    goto out;
foreign:
    cache_close(c);
out:
    close(fd);
    if (st) {
        cache_close(c);
        if (strict) return st;
        br_log(BR_LOG_WARN, "embedding cache %s ignored (it will be rewritten): %s", path,
               br_error_detail());
        br_error_clear();
    }
    return BR_OK;
}

/* The record of a text, or NULL. */
static const unsigned char *cache_find(const cache *c, const cache_rec *k)
{
    const cache_rec *hit = c->n ? bsearch(k, c->idx, c->n, sizeof *c->idx, cmp_rec) : NULL;
    return hit ? c->map + c->hdr + (size_t)hit->pos * c->rs : NULL;
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

/* Writes the records of c and the new ones (keys[j].pos: row of src)
 * into path: a temporary file beside it, fsync, rename. */
static br_status cache_write(const char *path, const char *key, const cache *c, size_t n_new,
                             const cache_rec *keys, const float *src)
{
    br__afile a;
    br_status st = br__afile_open(&a, path);
    if (st) return st;
    FILE *f = a.f;
    uint32_t hdr[3] = {CACHE_VERSION, (uint32_t)c->dim, (uint32_t)strlen(key)};
    uint64_t count = c->n + n_new;
    fwrite(CACHE_MAGIC, 1, 8, f);
    fwrite(hdr, sizeof hdr, 1, f);
    fwrite(key, 1, hdr[2], f);
    fwrite(&count, sizeof count, 1, f);
    /* the old records as they are, in one piece; a failed write sets the
     * stream's error flag, which the commit checks */
    if (c->n) fwrite(c->map + c->hdr, c->rs, c->n, f);
    for (size_t j = 0; j < n_new && !ferror(f); j++) {
        uint32_t lr[2] = {keys[j].len, 0};
        fwrite(&keys[j].hash, sizeof(uint64_t), 1, f);
        fwrite(lr, sizeof lr, 1, f);
        fwrite(src + (size_t)keys[j].pos * c->dim, sizeof(float), c->dim, f);
    }
    return br__afile_commit(&a);
}

/* Adds to the file at path the texts of keys (n; pos: row of src) it does
 * not hold yet. Under an exclusive flock on path.lock the file is read
 * again, so what another process added since this one read it is kept. */
static br_status cache_add(const char *path, const char *key, size_t dim, int strict, size_t n,
                           cache_rec *keys, const float *src)
{
    size_t plen = strlen(path);
    char *lock = br_malloc(plen + 8);
    if (!lock) return br_error(BR_ENOMEM, "embedding cache");
    snprintf(lock, plen + 8, "%s.lock", path);
    make_parents(path);
    br_status st = BR_OK;
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) st = br_error(BR_EIO, "%s: cannot open: %s", lock, strerror(errno));
    while (!st && flock(fd, LOCK_EX) != 0)
        if (errno != EINTR) st = br_error(BR_EIO, "%s: cannot lock: %s", lock, strerror(errno));
    cache c;
    memset(&c, 0, sizeof c);
    if (!st) st = cache_open(path, key, dim, strict, &c);
    if (!st) {
        /* the texts still missing, each once */
        qsort(keys, n, sizeof *keys, cmp_rec);
        size_t m = 0;
        for (size_t j = 0; j < n; j++)
            if ((!m || cmp_rec(&keys[m - 1], &keys[j]) != 0) && !cache_find(&c, &keys[j]))
                keys[m++] = keys[j];
        if (m) st = cache_write(path, key, &c, m, keys, src);
    }
    cache_close(&c);
    if (fd >= 0) close(fd); /* releases the lock */
    br_free(lock);
    if (st && !strict) {
        br_log(BR_LOG_WARN, "embedding cache %s not updated: %s", path, br_error_detail());
        br_error_clear();
        st = BR_OK;
    }
    return st;
}

/* 1 when a and b name the same existing file, or the same path. */
static int same_file(const char *a, const char *b)
{
    struct stat x, y;
    if (!strcmp(a, b)) return 1;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

br_status br_embed_catalog_in(const br_encoder *enc, const char *encoder_key, const br_catalog *cat,
                              br_book_template t, const br_embed_caches *caches, float *out,
                              size_t *embedded)
{
    if (embedded) *embedded = 0;
    if (!enc || !cat || !out || !encoder_key)
        return br_error(BR_EINVAL, "br_embed_catalog: NULL argument");
    size_t nb = br_catalog_count(cat), dim = br_encoder_dim(enc);
    const char *own = caches ? caches->file : NULL;
    char dir[4096], shared_buf[4200];
    const char *shared = NULL;
    br_status st = BR_OK;
    if (caches && caches->dir) {
        if (strlen(caches->dir) >= sizeof dir)
            return br_error(BR_ERANGE, "embedding cache: path too long");
        strcpy(dir, caches->dir);
    } else if ((st = br_embed_cache_dir(dir, sizeof dir))) {
        return st;
    }
    if (*dir) {
        if ((st = br_embed_cache_file(dir, encoder_key, shared_buf, sizeof shared_buf))) return st;
        shared = shared_buf;
        if (own && same_file(own, shared)) shared = NULL;
    }
    cache co, cs;
    memset(&co, 0, sizeof co);
    memset(&cs, 0, sizeof cs);
    char **texts = br_calloc(nb + 1, sizeof *texts);
    cache_rec *key = br_malloc((nb + 1) * sizeof *key);
    uint32_t *miss = br_malloc((nb + 1) * sizeof *miss);
    unsigned char *have = br_calloc(nb + 1, 1); /* 1: in the own file, 2: in the shared one */
    float *fresh = NULL;
    if (!texts || !key || !miss || !have) {
        st = br_error(BR_ENOMEM, "embedding cache");
        goto out;
    }
    if (own && (st = cache_open(own, encoder_key, dim, 1, &co))) goto out;
    if (shared) (void)cache_open(shared, encoder_key, dim, 0, &cs); /* never fails */
    size_t n_miss = 0, lack_own = 0, lack_shared = 0;
    for (size_t i = 0; i < nb; i++) {
        if ((st = br_book_text(br_catalog_book(cat, (uint32_t)i), t, &texts[i]))) goto out;
        size_t len = strlen(texts[i]);
        key[i] = (cache_rec){br_fnv1a64(texts[i], len), (uint32_t)len, (uint32_t)i};
        const unsigned char *a = cache_find(&co, &key[i]), *b = cache_find(&cs, &key[i]);
        have[i] = (unsigned char)((a ? 1 : 0) | (b ? 2 : 0));
        lack_own += !a;
        lack_shared += !b;
        if (a || b)
            memcpy(out + i * dim, (a ? a : b) + 16, dim * sizeof(float));
        else
            miss[n_miss++] = (uint32_t)i;
    }
    cache_close(&co);
    cache_close(&cs);
    if (n_miss) {
        /* Embed only the books in no cache, and a text repeated within the
         * catalogue once (the cache's identity: hash and length): the
         * generated universes repeat descriptions, 23,635 distinct texts in
         * 100,000 books. mk[j].pos is j, the miss position, while sorting. */
        cache_rec *mk = br_malloc(n_miss * sizeof *mk);
        uint32_t *row = br_malloc(n_miss * sizeof *row); /* miss j -> its text's row */
        const char **mt = br_malloc(n_miss * sizeof *mt);
        if (!mk || !row || !mt) {
            br_free(mk), br_free(row), br_free(mt);
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
            if (!j || cmp_rec(&mk[j - 1], &mk[j]) != 0) mt[n_text++] = texts[miss[mk[j].pos]];
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
        if (st) goto out;
        if (embedded) *embedded = n_miss;
    }
    /* Each file gains what it lacked: fresh vectors, and what only the
     * other file had (out holds every book's vector now). */
    for (int f = 0; f < 2; f++) {
        const char *path = f ? shared : own;
        unsigned char bit = f ? 2 : 1;
        if (!path || !(f ? lack_shared : lack_own)) continue;
        size_t m = 0;
        for (size_t i = 0; i < nb; i++)
            if (!(have[i] & bit)) miss[m++] = (uint32_t)i;
        cache_rec *add = br_malloc((m + 1) * sizeof *add);
        if (!add) {
            st = br_error(BR_ENOMEM, "embedding cache");
            goto out;
        }
        for (size_t j = 0; j < m; j++) add[j] = key[miss[j]]; /* pos: the book's row of out */
        st = cache_add(path, encoder_key, dim, !f, m, add, out);
        br_free(add);
        if (st) goto out;
    }
out:
    cache_close(&co);
    cache_close(&cs);
    for (size_t i = 0; texts && i < nb; i++) br_free(texts[i]);
    br_free(texts);
    br_free(key);
    br_free(miss);
    br_free(have);
    br_free(fresh);
    return st;
}

br_status br_embed_catalog(const br_encoder *enc, const char *encoder_key, const br_catalog *cat,
                           br_book_template t, const char *cache_path, float *out, size_t *embedded)
{
    br_embed_caches c = {cache_path, NULL};
    return br_embed_catalog_in(enc, encoder_key, cat, t, &c, out, embedded);
}
