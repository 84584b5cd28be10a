/*
 * npy.c: reading and writing NumPy .npy files (see bookrec/npy.h). The
 * header is a Python dict literal; we write the canonical form and read the
 * three keys we need with a small, strict scanner.
 */
#include "bookrec/npy.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/afile.h"
#include "core/fault.h"

static const char MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static size_t dtype_size(br_dtype t)
{
    return t == BR_DTYPE_F64 ? 8 : 4;
}

static const char *dtype_descr(br_dtype t)
{
    return t == BR_DTYPE_F32 ? "<f4" : t == BR_DTYPE_F64 ? "<f8" : "<i4";
}

br_status br_npy_write(const char *path, br_dtype dtype, int ndim, size_t rows, size_t cols,
                       const void *data)
{
    if (ndim != 1 && ndim != 2)
        return br_error(BR_EINVAL, "%s: npy arrays here are 1-D or 2-D", path);
    if (dtype != BR_DTYPE_F32 && dtype != BR_DTYPE_F64 && dtype != BR_DTYPE_I32)
        return br_error(BR_EINVAL, "%s: unknown dtype %d", path, (int)dtype);
    if (ndim == 1) cols = 1;
    char header[256];
    int n = ndim == 2 ? snprintf(header, sizeof header,
                                 "{'descr': '%s', 'fortran_order': False, 'shape': (%zu, %zu), }",
                                 dtype_descr(dtype), rows, cols)
                      : snprintf(header, sizeof header,
                                 "{'descr': '%s', 'fortran_order': False, 'shape': (%zu,), }",
                                 dtype_descr(dtype), rows);
    /* Pad with spaces so magic + version + length + header + '\n' is a
     * multiple of 64, as numpy does (aligned data for memory mapping). */
    size_t total = 10 + (size_t)n + 1;
    size_t padded = (total + 63) / 64 * 64;
    memset(header + n, ' ', padded - total);
    header[padded - 11] = '\n';
    uint16_t hlen = (uint16_t)(padded - 10);

    br__afile a;
    br_status st = br__afile_open(&a, path);
    if (st) return st;
    unsigned char pre[10];
    memcpy(pre, MAGIC, 6);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    size_t bytes = rows * cols * dtype_size(dtype);
    br__fault_fwrite(pre, 1, 10, a.f);
    br__fault_fwrite(header, 1, hlen, a.f);
    if (bytes) br__fault_fwrite(data, 1, bytes, a.f);
    return br__afile_commit(&a); /* checks the writes */
}

/* Finds `'key':` in the header and returns the text after it. */
static const char *find_key(const char *h, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static br_status parse_header(const char *path, const char *h, char descr[8], int *fortran,
                              int *ndim, size_t shape[2])
{
    /* a Python dict literal: '{' ... '}', then spaces and the newline */
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\n')) n--;
    if (h[0] != '{' || !n || h[n - 1] != '}')
        return br_error(BR_EFORMAT, "%s: npy header is not a dictionary", path);
    const char *p = find_key(h, "descr");
    if (!p || (*p != '\'' && *p != '"'))
        return br_error(BR_EFORMAT, "%s: npy header has no 'descr'", path);
    const char *q = strchr(p + 1, *p);
    if (!q || q - p - 1 >= 8) return br_error(BR_EFORMAT, "%s: unsupported npy dtype", path);
    memcpy(descr, p + 1, (size_t)(q - p - 1));
    descr[q - p - 1] = '\0';
    p = find_key(h, "fortran_order");
    if (!p) return br_error(BR_EFORMAT, "%s: npy header has no 'fortran_order'", path);
    *fortran = strncmp(p, "True", 4) == 0;
    p = find_key(h, "shape");
    if (!p || *p != '(') return br_error(BR_EFORMAT, "%s: npy header has no 'shape'", path);
    p++;
    *ndim = 0;
    for (;;) {
        while (*p == ' ') p++;
        if (*p == ')') break;
        /* digits only: strtoull would take "-1" (and wrap it) or " +3" */
        if (*p < '0' || *p > '9') return br_error(BR_EFORMAT, "%s: bad npy shape", path);
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || errno) return br_error(BR_EFORMAT, "%s: bad npy shape", path);
        if (*ndim == 2)
            return br_error(BR_EFORMAT,
                            "%s: npy arrays of 3 or more dimensions are not "
                            "supported",
                            path);
        shape[(*ndim)++] = (size_t)v;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',')
            p++;
        else if (*p != ')')
            return br_error(BR_EFORMAT, "%s: bad npy shape", path);
    }
    return BR_OK;
}

br_status br_npy_read(const char *path, int want, br_array *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return br_error(BR_EIO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char pre[12];
    br_status st = BR_OK;
    char *header = NULL;
    void *raw = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, MAGIC, 6) != 0) {
        st = br_error(BR_EFORMAT, "%s: not a .npy file (bad magic)", path);
        goto out;
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            st = br_error(BR_EFORMAT, "%s: truncated npy header", path);
            goto out;
        }
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        st = br_error(BR_EFORMAT, "%s: npy format version %d is not supported", path, pre[6]);
        goto out;
    }
    if (hlen > (1u << 20)) {
        st = br_error(BR_EFORMAT, "%s: npy header too large", path);
        goto out;
    }
    header = br_malloc(hlen + 1);
    if (!header || fread(header, 1, hlen, f) != hlen) {
        st = br_error(header ? BR_EFORMAT : BR_ENOMEM, "%s: truncated npy header", path);
        goto out;
    }
    header[hlen] = '\0';
    char descr[8];
    int fortran = 0, ndim = 0;
    size_t shape[2] = {1, 1};
    if ((st = parse_header(path, header, descr, &fortran, &ndim, shape)) != BR_OK) goto out;
    if (ndim == 0) {
        st = br_error(BR_EFORMAT, "%s: npy scalars are not supported", path);
        goto out;
    }
    size_t rows = shape[0], cols = ndim == 2 ? shape[1] : 1;
    if (fortran && ndim == 2 && rows > 1 && cols > 1) {
        st = br_error(BR_EFORMAT,
                      "%s: Fortran-ordered arrays are not supported "
                      "(save with np.ascontiguousarray)",
                      path);
        goto out;
    }
    int file_type;
    size_t esize;
    if (!strcmp(descr, "<f4"))
        file_type = BR_DTYPE_F32, esize = 4;
    else if (!strcmp(descr, "<f8"))
        file_type = BR_DTYPE_F64, esize = 8;
    else if (!strcmp(descr, "<i4"))
        file_type = BR_DTYPE_I32, esize = 4;
    else if (!strcmp(descr, "<i8"))
        file_type = 100, esize = 8; /* converted to i32 */
    else {
        st = br_error(BR_EFORMAT, "%s: npy dtype '%s' is not supported (use <f4, <f8, <i4)", path,
                      descr);
        goto out;
    }
    if (cols && rows > SIZE_MAX / cols / 8) {
        st = br_error(BR_EFORMAT, "%s: npy shape too large", path);
        goto out;
    }
    size_t count = rows * cols;
    int target = want >= 0 ? want : (file_type == 100 ? BR_DTYPE_I32 : file_type);
    int is_int = file_type == BR_DTYPE_I32 || file_type == 100;
    if ((target == BR_DTYPE_I32) != is_int) {
        st = br_error(BR_EFORMAT, "%s: npy dtype '%s' cannot be read as %s", path, descr,
                      dtype_descr((br_dtype)target));
        goto out;
    }
    /* the shape against the file before anything is allocated for it */
    struct stat sb;
    long here = ftell(f);
    if (fstat(fileno(f), &sb) != 0 || here < 0 ||
        (uint64_t)sb.st_size - (uint64_t)here < (uint64_t)count * esize) {
        st = br_error(BR_EFORMAT, "%s: truncated npy data (shape says %zu values)", path, count);
        goto out;
    }
    raw = br_malloc(count * esize);
    if (!raw) {
        st = br_error(BR_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (count && fread(raw, esize, count, f) != count) {
        st = br_error(BR_EFORMAT, "%s: truncated npy data (shape says %zu values)", path, count);
        goto out;
    }
    out->data = br_aligned_alloc(count * dtype_size((br_dtype)target) + 1, BR_ALIGN);
    if (!out->data) {
        st = br_error(BR_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (file_type == target) {
        memcpy(out->data, raw, count * esize);
    } else if (file_type == BR_DTYPE_F64) {
        for (size_t i = 0; i < count; i++) {
            double v = ((double *)raw)[i];
            /* beyond float's range the conversion is undefined (inf, nan are fine) */
            if (isfinite(v) && fabs(v) > FLT_MAX) {
                st = br_error(BR_ERANGE, "%s: value %g does not fit in float32", path, v);
                br_aligned_free(out->data);
                out->data = NULL;
                goto out;
            }
            ((float *)out->data)[i] = (float)v;
        }
    } else if (file_type == BR_DTYPE_F32) {
        for (size_t i = 0; i < count; i++) ((double *)out->data)[i] = ((float *)raw)[i];
    } else { /* i64 -> i32 */
        for (size_t i = 0; i < count; i++) {
            int64_t v = ((int64_t *)raw)[i];
            if (v < INT32_MIN || v > INT32_MAX) {
                st =
                    br_error(BR_ERANGE, "%s: value %lld does not fit in int32", path, (long long)v);
                br_aligned_free(out->data);
                out->data = NULL;
                goto out;
            }
            ((int32_t *)out->data)[i] = (int32_t)v;
        }
    }
    out->dtype = (br_dtype)target;
    out->ndim = ndim;
    out->rows = rows;
    out->cols = cols;
out:
    fclose(f);
    br_free(header);
    br_free(raw);
    return st;
}

br_status br_npy_map(const char *path, br_dtype want, br_array *out)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return br_error(BR_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    unsigned char pre[10];
    char header[4096];
    size_t hlen = 0;
    int ok =
        fstat(fd, &sb) == 0 && pread(fd, pre, 10, 0) == 10 && !memcmp(pre, MAGIC, 6) && pre[6] == 1;
    if (ok) {
        hlen = pre[8] | (size_t)pre[9] << 8;
        ok = hlen < sizeof header && pread(fd, header, hlen, 10) == (ssize_t)hlen;
    }
    char descr[8];
    int fortran = 0, ndim = 0;
    size_t shape[2] = {1, 1}, off = 10 + hlen;
    if (ok) {
        header[hlen] = '\0';
        ok = parse_header(path, header, descr, &fortran, &ndim, shape) == BR_OK && ndim >= 1 &&
             !strcmp(descr, dtype_descr(want)) && off % 64 == 0 &&
             !(fortran && ndim == 2 && shape[0] > 1 && shape[1] > 1);
        br_error_clear();
    }
    size_t rows = shape[0], cols = ndim == 2 ? shape[1] : 1;
    size_t bytes =
        ok && (!cols || rows <= SIZE_MAX / cols / 8) ? rows * cols * dtype_size(want) : SIZE_MAX;
    /* anything unusual (another header version, dtype, alignment): read it */
    if (!ok || bytes == SIZE_MAX || (uint64_t)sb.st_size < off + bytes || bytes == 0) {
        close(fd);
        return br_npy_read(path, want, out);
    }
    /* private: a page written (a server's posted books joining neighbour
     * lists) is copied for this process; the rest stay the page cache's */
    void *m = mmap(NULL, off + bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return br_error(BR_EIO, "%s: mmap: %s", path, strerror(errno));
    out->dtype = want;
    out->ndim = ndim;
    out->rows = rows;
    out->cols = cols;
    out->data = (char *)m + off;
    out->map = m;
    out->map_len = off + bytes;
    return BR_OK;
}

void br_array_free(br_array *a)
{
    if (!a) return;
    if (a->map)
        munmap(a->map, a->map_len);
    else
        br_aligned_free(a->data);
    a->data = NULL;
    a->map = NULL;
}
