/*
 * persist.c: the collaborative model file (docs/formats.md, "collab").
 *
 * One file: a 64-byte header, then each present section at a 64-byte
 * aligned offset, little-endian. Loading maps the file read-only and points
 * the model's arrays straight into the mapping, so a 300 MB model for a
 * million readers is usable at once and shared between processes through
 * the page cache. Writing goes through core/afile.h (a temporary file
 * beside the target, fsynced and renamed), so a reader never sees half a
 * model.
 */
#include "collab/collab_internal.h"
#include "core/afile.h"
#include "core/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the collab model file is little-endian; add byte swapping for this host"
#endif

#define CF_MAGIC       "BRCFMODL"
#define CF_VERSION     1u
#define CF_ALIGN       64u
#define CF_FACTORS_MAX 65536u /* a sanity bound: its Gram matrix is 16 GiB */

enum {
    CF_USER_BIAS = 1u << 0,
    CF_ITEM_BIAS = 1u << 1,
    CF_SINGULAR = 1u << 2,
    CF_USER_IDS = 1u << 3,
    CF_ITEM_IDS = 1u << 4,
};

typedef struct cf_header {
    char magic[8];
    uint32_t version;
    uint32_t engine;
    uint32_t n_users;
    uint32_t n_items;
    uint32_t k;
    uint32_t flags;
    float global;
    float lambda;
    float alpha;
    uint32_t reserved0;
    uint64_t file_size;
    uint64_t reserved1;
} cf_header;

_Static_assert(sizeof(cf_header) == 64, "collab header is 64 bytes");

static uint64_t align_up(uint64_t x)
{
    return (x + CF_ALIGN - 1) & ~(uint64_t)(CF_ALIGN - 1);
}

/* Bytes of an id section: offsets (n + 1) u64, then the blob. */
static uint64_t ids_blob_size(const br_idmap *ids)
{
    uint64_t s = 0;
    for (uint32_t i = 0; i < br_idmap_count(ids); i++) s += strlen(br_idmap_name(ids, i)) + 1;
    return s;
}

static int write_pad(FILE *f, uint64_t *pos)
{
    static const char zero[CF_ALIGN];
    uint64_t to = align_up(*pos);
    if (to > *pos && br__fault_fwrite(zero, 1, to - *pos, f) != to - *pos) return -1;
    *pos = to;
    return 0;
}

static int write_block(FILE *f, uint64_t *pos, const void *p, uint64_t n)
{
    if (write_pad(f, pos)) return -1;
    if (n && br__fault_fwrite(p, 1, n, f) != n) return -1;
    *pos += n;
    return 0;
}

static int write_ids(FILE *f, uint64_t *pos, const br_idmap *ids)
{
    uint32_t n = br_idmap_count(ids);
    if (write_pad(f, pos)) return -1;
    uint64_t off = 0;
    for (uint32_t i = 0; i <= n; i++) {
        if (fwrite(&off, sizeof off, 1, f) != 1) return -1;
        if (i < n) off += strlen(br_idmap_name(ids, i)) + 1;
    }
    *pos += ((uint64_t)n + 1) * sizeof(uint64_t);
    for (uint32_t i = 0; i < n; i++) {
        const char *s = br_idmap_name(ids, i);
        size_t len = strlen(s) + 1;
        if (fwrite(s, 1, len, f) != len) return -1;
        *pos += len;
    }
    return 0;
}

br_status br_cf_model_save(const br_cf_model *m, const char *path, const br_idmap *user_ids,
                           const br_idmap *item_ids)
{
    if (!m || !path) return br_error(BR_EINVAL, "br_cf_model_save: NULL argument");
    if (user_ids && br_idmap_count(user_ids) != m->n_users)
        return br_error(BR_EINVAL, "%s: %u user ids for %u users", path, br_idmap_count(user_ids),
                        m->n_users);
    if (item_ids && br_idmap_count(item_ids) != m->n_items)
        return br_error(BR_EINVAL, "%s: %u book ids for %u books", path, br_idmap_count(item_ids),
                        m->n_items);
    cf_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CF_MAGIC, 8);
    h.version = CF_VERSION;
    h.engine = (uint32_t)m->engine;
    h.n_users = m->n_users;
    h.n_items = m->n_items;
    h.k = m->k;
    h.flags = (m->user_b ? CF_USER_BIAS : 0) | (m->item_b ? CF_ITEM_BIAS : 0) |
              (m->sv ? CF_SINGULAR : 0) | (user_ids ? CF_USER_IDS : 0) |
              (item_ids ? CF_ITEM_IDS : 0);
    h.global = m->global;
    h.lambda = m->lambda;
    h.alpha = m->alpha;
    /* The size, computed the way the writer advances. */
    uint64_t size = sizeof h;
    uint64_t uf = (uint64_t)m->n_users * m->k * 4, itf = (uint64_t)m->n_items * m->k * 4;
    size = align_up(size) + uf;
    size = align_up(size) + itf;
    if (m->user_b) size = align_up(size) + (uint64_t)m->n_users * 4;
    if (m->item_b) size = align_up(size) + (uint64_t)m->n_items * 4;
    if (m->sv) size = align_up(size) + (uint64_t)m->k * 4;
    if (user_ids) size = align_up(size) + ((uint64_t)m->n_users + 1) * 8 + ids_blob_size(user_ids);
    if (item_ids) size = align_up(size) + ((uint64_t)m->n_items + 1) * 8 + ids_blob_size(item_ids);
    h.file_size = size;

    br__afile a;
    br_status st = br__afile_open(&a, path);
    if (st) return st;
    FILE *f = a.f;
    uint64_t pos = 0;
    int bad = write_block(f, &pos, &h, sizeof h) || write_block(f, &pos, m->user_f, uf) ||
              write_block(f, &pos, m->item_f, itf) ||
              (m->user_b && write_block(f, &pos, m->user_b, (uint64_t)m->n_users * 4)) ||
              (m->item_b && write_block(f, &pos, m->item_b, (uint64_t)m->n_items * 4)) ||
              (m->sv && write_block(f, &pos, m->sv, (uint64_t)m->k * 4)) ||
              (user_ids && write_ids(f, &pos, user_ids)) ||
              (item_ids && write_ids(f, &pos, item_ids));
    if (bad)
        st = br_error(BR_EIO, "%s: write failed: %s", path, strerror(errno));
    else if (pos != size)
        st = br_error(BR_EINTERNAL, "%s: wrote %llu bytes, planned %llu", path,
                      (unsigned long long)pos, (unsigned long long)size);
    if (st) {
        br__afile_abort(&a);
        return st;
    }
    return br__afile_commit(&a);
}

/* Takes `bytes` at the next aligned offset; NULL when past the end. */
static const void *take(const unsigned char *base, uint64_t len, uint64_t *pos, uint64_t bytes)
{
    uint64_t at = align_up(*pos);
    if (at > len || bytes > len - at) return NULL;
    *pos = at + bytes;
    return base + at;
}

static br_status take_ids(const char *path, const unsigned char *base, uint64_t len, uint64_t *pos,
                          uint32_t n, const uint64_t **off, const char **blob)
{
    const uint64_t *o = take(base, len, pos, ((uint64_t)n + 1) * 8);
    if (!o || o[0] != 0) return br_error(BR_EFORMAT, "%s: id section truncated", path);
    uint64_t total = o[n];
    const char *b = (const char *)base + *pos; /* right after the offsets */
    if (total > len - *pos) return br_error(BR_EFORMAT, "%s: id blob truncated", path);
    for (uint32_t i = 0; i < n; i++)
        if (o[i + 1] <= o[i] || o[i + 1] > total || b[o[i + 1] - 1] != '\0')
            return br_error(BR_EFORMAT, "%s: id %u is malformed", path, i);
    *pos += total;
    *off = o;
    *blob = b;
    return BR_OK;
}

br_status br_cf_model_load(const char *path, br_cf_model **out)
{
    if (!path || !out) return br_error(BR_EINVAL, "br_cf_model_load: NULL argument");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return br_error(errno == ENOENT ? BR_ENOTFOUND : BR_EIO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return br_error(BR_EIO, "%s: %s", path, strerror(errno));
    }
    uint64_t len = (uint64_t)sb.st_size;
    if (len < sizeof(cf_header)) {
        close(fd);
        return br_error(BR_EFORMAT, "%s: too short for a collab model (%llu bytes)", path,
                        (unsigned long long)len);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return br_error(BR_EIO, "%s: mmap: %s", path, strerror(errno));
    const unsigned char *base = map;
    cf_header h;
    memcpy(&h, base, sizeof h);
    br_status st = BR_OK;
    br_cf_model *m = NULL;
    if (memcmp(h.magic, CF_MAGIC, 8) != 0) {
        st = br_error(BR_EFORMAT, "%s: not a bookrec collab model (bad magic)", path);
        goto fail;
    }
    if (h.version != CF_VERSION) {
        st = br_error(BR_EFORMAT, "%s: collab model version %u (this build reads %u)", path,
                      h.version, CF_VERSION);
        goto fail;
    }
    if (h.engine > BR_CF_ALS_EXPLICIT || h.file_size != len) {
        st = br_error(BR_EFORMAT, "%s: bad header (engine %u, size %llu of %llu bytes)", path,
                      h.engine, (unsigned long long)h.file_size, (unsigned long long)len);
        goto fail;
    }
    m = br_calloc(1, sizeof *m);
    if (!m) {
        st = br_error(BR_ENOMEM, "collab model");
        goto fail;
    }
    m->engine = (br_cf_engine)h.engine;
    m->n_users = h.n_users;
    m->n_items = h.n_items;
    m->k = h.k;
    m->global = h.global;
    m->lambda = h.lambda;
    m->alpha = h.alpha;
    uint64_t pos = sizeof h;
    m->user_f = (float *)take(base, len, &pos, (uint64_t)h.n_users * h.k * 4);
    m->item_f = (float *)take(base, len, &pos, (uint64_t)h.n_items * h.k * 4);
    int ok = m->user_f && m->item_f;
    if (ok && (h.flags & CF_USER_BIAS))
        ok = (m->user_b = (float *)take(base, len, &pos, (uint64_t)h.n_users * 4)) != NULL;
    if (ok && (h.flags & CF_ITEM_BIAS))
        ok = (m->item_b = (float *)take(base, len, &pos, (uint64_t)h.n_items * 4)) != NULL;
    if (ok && (h.flags & CF_SINGULAR))
        ok = (m->sv = (float *)take(base, len, &pos, (uint64_t)h.k * 4)) != NULL;
    if (!ok) {
        st = br_error(BR_EFORMAT, "%s: truncated factor sections", path);
        goto fail;
    }
    /* Every engine keeps something per book (factors, or popularity's
     * scores in the item biases), so the file's length bounds the book
     * count. Without it a 64-byte header could declare 4 billion books and
     * a top-n would allocate a score for each (fuzz_cfmodel's find). */
    if (m->k == 0 && !m->item_b && m->n_items > 0) {
        st =
            br_error(BR_EFORMAT, "%s: %u books declared but no per-book section", path, m->n_items);
        goto fail;
    }
    /* Likewise factors need books to be the factors of (an ALS model
     * derives a k x k Gram matrix at load: k = 2^29 with no books asked
     * for an exabyte), and a k beyond CF_FACTORS_MAX is no model of ours. */
    if (m->k > 0 && (m->n_items == 0 || m->k > CF_FACTORS_MAX)) {
        st = br_error(BR_EFORMAT, "%s: %u factors for %u books (at most %u factors, and books)",
                      path, m->k, m->n_items, CF_FACTORS_MAX);
        goto fail;
    }
    /* Explicit ALS predicts with both biases (fold-in, scoring read them
     * unchecked); every writer stores them. */
    if (m->engine == BR_CF_ALS_EXPLICIT && (!m->user_b || !m->item_b)) {
        st = br_error(BR_EFORMAT, "%s: an explicit ALS model without its biases", path);
        goto fail;
    }
    if ((h.flags & CF_USER_IDS) &&
        (st = take_ids(path, base, len, &pos, h.n_users, &m->user_id_off, &m->user_id_blob)))
        goto fail;
    if ((h.flags & CF_ITEM_IDS) &&
        (st = take_ids(path, base, len, &pos, h.n_items, &m->item_id_off, &m->item_id_blob)))
        goto fail;
    if (pos != len) {
        st = br_error(BR_EFORMAT, "%s: %llu trailing bytes", path, (unsigned long long)(len - pos));
        goto fail;
    }
    m->map = map;
    m->map_len = len;
    if ((st = br__cf_model_prepare(m))) {
        br_cf_model_free(m); /* unmaps */
        return st;
    }
    *out = m;
    return BR_OK;
fail:
    br_free(m);
    munmap(map, len);
    return st;
}

const char *br_cf_model_user_id(const br_cf_model *m, uint32_t index)
{
    if (!m || !m->user_id_off || index >= m->n_users) return NULL;
    return m->user_id_blob + m->user_id_off[index];
}

const char *br_cf_model_item_id(const br_cf_model *m, uint32_t index)
{
    if (!m || !m->item_id_off || index >= m->n_items) return NULL;
    return m->item_id_blob + m->item_id_off[index];
}
