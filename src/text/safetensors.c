/*
 * safetensors.c: the memory-mapped .safetensors reader (see safetensors.h).
 *
 * The file is mapped read-only and private: the page cache holds the bytes
 * once however many processes open the same model, and an F32 tensor that
 * lands 4-byte aligned is used in place. The JSON header is parsed with
 * jansson; tensor names are copied out so the JSON can be freed.
 */
#define _GNU_SOURCE
#include "text/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A header above this is not a model file we want to parse. */
#define ST_MAX_HEADER (100u << 20)

struct st_file {
    void *map;
    size_t size;
    size_t n;
    st_tensor *t; /* sorted by name */
    char *names;  /* all names, NUL-separated */
};

size_t br__st_dtype_size(st_dtype t)
{
    switch (t) {
    case ST_F32:
    case ST_I32:
        return 4;
    case ST_F16:
    case ST_BF16:
        return 2;
    case ST_F64:
    case ST_I64:
        return 8;
    default:
        return 0;
    }
}

const char *br__st_dtype_name(st_dtype t)
{
    static const char *const names[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "other"};
    return (unsigned)t <= ST_OTHER ? names[t] : "other";
}

static st_dtype parse_dtype(const char *s)
{
    static const struct {
        const char *name;
        st_dtype t;
    } map[] = {{"F32", ST_F32}, {"F16", ST_F16}, {"BF16", ST_BF16},
               {"F64", ST_F64}, {"I64", ST_I64}, {"I32", ST_I32}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(s, map[i].name)) return map[i].t;
    return ST_OTHER;
}

/* Elements of dtypes bookrec does not know still need a size to check the
 * byte ranges; the safetensors dtype list is short. */
static size_t other_dtype_size(const char *s)
{
    if (!strcmp(s, "BOOL") || !strcmp(s, "U8") || !strcmp(s, "I8") || !strncmp(s, "F8", 2))
        return 1;
    if (!strcmp(s, "I16") || !strcmp(s, "U16")) return 2;
    if (!strcmp(s, "U32")) return 4;
    if (!strcmp(s, "U64")) return 8;
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int cmp_offset(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    uintptr_t p = (uintptr_t)x->data, q = (uintptr_t)y->data;
    return p < q ? -1 : p > q;
}

void br__st_close(st_file *f)
{
    if (!f) return;
    if (f->map) munmap(f->map, f->size);
    br_free(f->t);
    br_free(f->names);
    br_free(f);
}

/* Fills f->t from the parsed header; `base` is the first data byte. */
static br_status parse_header(st_file *f, json_t *hdr, const unsigned char *base, size_t data_bytes,
                              const char *path)
{
    size_t n = 0, name_bytes = 0;
    const char *key;
    json_t *val;
    json_object_foreach(hdr, key, val)
    {
        if (!strcmp(key, "__metadata__")) continue;
        n++;
        name_bytes += strlen(key) + 1;
    }
    f->t = br_calloc(n ? n : 1, sizeof *f->t);
    f->names = br_malloc(name_bytes ? name_bytes : 1);
    if (!f->t || !f->names) return br_error(BR_ENOMEM, "%s: %zu tensors", path, n);
    char *np = f->names;
    size_t i = 0;
    json_object_foreach(hdr, key, val)
    {
        if (!strcmp(key, "__metadata__")) continue;
        st_tensor *t = &f->t[i++];
        size_t kl = strlen(key) + 1;
        memcpy(np, key, kl);
        t->name = np;
        np += kl;
        json_t *dt = json_object_get(val, "dtype"), *sh = json_object_get(val, "shape"),
               *off = json_object_get(val, "data_offsets");
        if (!json_is_object(val) || !json_is_string(dt) || !json_is_array(sh) ||
            !json_is_array(off) || json_array_size(off) != 2)
            return br_error(BR_EFORMAT, "%s: tensor '%s': needs dtype, shape and data_offsets",
                            path, key);
        t->dtype = parse_dtype(json_string_value(dt));
        size_t esize = t->dtype == ST_OTHER ? other_dtype_size(json_string_value(dt))
                                            : br__st_dtype_size(t->dtype);
        if (esize == 0)
            return br_error(BR_EFORMAT, "%s: tensor '%s': unknown dtype '%s'", path, key,
                            json_string_value(dt));
        if (json_array_size(sh) > ST_MAX_DIMS)
            return br_error(BR_EFORMAT, "%s: tensor '%s': %zu dimensions (at most %d)", path, key,
                            json_array_size(sh), ST_MAX_DIMS);
        t->ndim = (int)json_array_size(sh);
        uint64_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            json_t *v = json_array_get(sh, (size_t)d);
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                return br_error(BR_EFORMAT, "%s: tensor '%s': bad shape", path, key);
            t->shape[d] = (uint64_t)json_integer_value(v);
            if (t->shape[d] && count > UINT64_MAX / t->shape[d])
                return br_error(BR_EFORMAT, "%s: tensor '%s': shape overflows", path, key);
            count *= t->shape[d];
        }
        t->count = count;
        json_t *b0 = json_array_get(off, 0), *b1 = json_array_get(off, 1);
        if (!json_is_integer(b0) || !json_is_integer(b1) || json_integer_value(b0) < 0 ||
            json_integer_value(b1) < json_integer_value(b0))
            return br_error(BR_EFORMAT, "%s: tensor '%s': bad data_offsets", path, key);
        uint64_t beg = (uint64_t)json_integer_value(b0), end = (uint64_t)json_integer_value(b1);
        if (end > data_bytes)
            return br_error(BR_EFORMAT,
                            "%s: tensor '%s': bytes [%llu, %llu) beyond the file's %zu data "
                            "bytes (truncated file?)",
                            path, key, (unsigned long long)beg, (unsigned long long)end,
                            data_bytes);
        if (count > UINT64_MAX / esize || end - beg != count * esize)
            return br_error(BR_EFORMAT, "%s: tensor '%s': %llu bytes for %llu elements of %zu",
                            path, key, (unsigned long long)(end - beg), (unsigned long long)count,
                            esize);
        t->data = base + beg;
        t->nbytes = (size_t)(end - beg);
    }
    f->n = n;

    /* No two tensors may share bytes. */
    const st_tensor **by_off = br_malloc((n ? n : 1) * sizeof *by_off);
    if (!by_off) return br_error(BR_ENOMEM, "%s", path);
    for (size_t k = 0; k < n; k++) by_off[k] = &f->t[k];
    qsort(by_off, n, sizeof *by_off, cmp_offset);
    br_status st = BR_OK;
    for (size_t k = 1; k < n && st == BR_OK; k++) {
        const unsigned char *prev_end =
            (const unsigned char *)by_off[k - 1]->data + by_off[k - 1]->nbytes;
        if ((const unsigned char *)by_off[k]->data < prev_end)
            st = br_error(BR_EFORMAT, "%s: tensors '%s' and '%s' overlap", path,
                          by_off[k - 1]->name, by_off[k]->name);
    }
    br_free(by_off);
    if (st != BR_OK) return st;
    qsort(f->t, n, sizeof *f->t, cmp_name);
    for (size_t k = 1; k < n; k++)
        if (!strcmp(f->t[k - 1].name, f->t[k].name))
            return br_error(BR_EFORMAT, "%s: tensor '%s' appears twice", path, f->t[k].name);
    return BR_OK;
}

br_status br__st_open(const char *path, st_file **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return br_error(errno == ENOENT ? BR_ENOTFOUND : BR_EIO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return br_error(BR_EIO, "%s: %s", path, strerror(e));
    }
    if (sb.st_size < 8) {
        close(fd);
        return br_error(BR_EFORMAT, "%s: %lld bytes is too short for a safetensors file", path,
                        (long long)sb.st_size);
    }
    st_file *f = br_calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        return br_error(BR_ENOMEM, "%s", path);
    }
    f->size = (size_t)sb.st_size;
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        br__st_close(f);
        return br_error(BR_EIO, "%s: mmap: %s", path, strerror(e));
    }
    const unsigned char *p = f->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen > ST_MAX_HEADER || hlen > f->size - 8) {
        size_t size = f->size;
        br__st_close(f);
        return br_error(BR_EFORMAT, "%s: header length %llu does not fit the file (%zu bytes)",
                        path, (unsigned long long)hlen, size);
    }
    json_error_t jerr;
    json_t *hdr = json_loadb((const char *)p + 8, (size_t)hlen, 0, &jerr);
    if (!hdr || !json_is_object(hdr)) {
        json_decref(hdr);
        br__st_close(f);
        return br_error(BR_EFORMAT, "%s: header is not a JSON object%s%s", path, hdr ? "" : ": ",
                        hdr ? "" : jerr.text);
    }
    br_status st = parse_header(f, hdr, p + 8 + hlen, f->size - 8 - (size_t)hlen, path);
    json_decref(hdr);
    if (st != BR_OK) {
        br__st_close(f);
        return st;
    }
    /* The weights are read front to back once per forward pass. */
    madvise(f->map, f->size, MADV_WILLNEED);
    *out = f;
    return BR_OK;
}

size_t br__st_count(const st_file *f)
{
    return f ? f->n : 0;
}

size_t br__st_file_bytes(const st_file *f)
{
    return f ? f->size : 0;
}

const st_tensor *br__st_tensor_at(const st_file *f, size_t i)
{
    return f && i < f->n ? &f->t[i] : NULL;
}

const st_tensor *br__st_find(const st_file *f, const char *name)
{
    if (!f || !name) return NULL;
    st_tensor key = {.name = name};
    return bsearch(&key, f->t, f->n, sizeof *f->t, cmp_name);
}

float br__st_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | man << 13; /* inf / nan */
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {
            /* Subnormal half: normalise the mantissa. */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float br__st_bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

const float *br__st_f32_view(const st_tensor *t)
{
    if (!t || t->dtype != ST_F32 || ((uintptr_t)t->data & 3)) return NULL;
    return t->data;
}

br_status br__st_to_f32(const st_tensor *t, float *dst)
{
    const unsigned char *s = t->data;
    /* The file is little-endian, as is every machine bookrec builds on;
     * memcpy per element keeps unaligned tensors legal. */
    switch (t->dtype) {
    case ST_F32:
        memcpy(dst, s, t->count * sizeof(float));
        return BR_OK;
    case ST_F16:
    case ST_BF16:
        for (uint64_t i = 0; i < t->count; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = t->dtype == ST_F16 ? br__st_half_to_float(h) : br__st_bf16_to_float(h);
        }
        return BR_OK;
    case ST_F64:
        for (uint64_t i = 0; i < t->count; i++) {
            double d;
            memcpy(&d, s + 8 * i, 8);
            dst[i] = (float)d;
        }
        return BR_OK;
    default:
        return br_error(BR_EUNSUPPORTED, "tensor '%s': dtype %s is not a float type", t->name,
                        br__st_dtype_name(t->dtype));
    }
}
