/*
 * fault.c: the fault-injection hooks of fault.h: per-kind call counters
 * and the call to fail, armed only by the torture tests.
 */
#define _GNU_SOURCE
#include "core/fault.h"

#include <errno.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <unistd.h>

atomic_int br__fault_enabled;

static atomic_uint_fast64_t calls[BR__FAULT_KINDS];
static atomic_uint_fast64_t fail_at[BR__FAULT_KINDS];
static atomic_int sticky[BR__FAULT_KINDS];
static atomic_uint_fast64_t injected;

/* What the real failure sets. */
static const int fault_errno[BR__FAULT_KINDS] = {ENOMEM, ENOSPC, EIO, EIO};
static const char *const fault_names[BR__FAULT_KINDS] = {"alloc", "write", "fsync", "rename"};

static void arm(br__fault_kind kind, uint64_t n, int from)
{
    atomic_store(&br__fault_enabled, 0);
    for (int k = 0; k < BR__FAULT_KINDS; k++) {
        atomic_store(&calls[k], 0);
        atomic_store(&fail_at[k], k == (int)kind ? n : 0);
        atomic_store(&sticky[k], k == (int)kind && from);
    }
    atomic_store(&injected, 0);
    atomic_store(&br__fault_enabled, 1);
}

void br__fault_set(br__fault_kind kind, uint64_t n)
{
    arm(kind, n, 0);
}

void br__fault_set_from(br__fault_kind kind, uint64_t n)
{
    arm(kind, n, 1);
}

void br__fault_clear(void)
{
    atomic_store(&br__fault_enabled, 0);
    for (int k = 0; k < BR__FAULT_KINDS; k++) atomic_store(&fail_at[k], 0);
}

uint64_t br__fault_calls(br__fault_kind kind)
{
    return atomic_load(&calls[kind]);
}

uint64_t br__fault_injected(void)
{
    return atomic_load(&injected);
}

const char *br__fault_name(br__fault_kind kind)
{
    return kind < BR__FAULT_KINDS ? fault_names[kind] : "?";
}

int br__fault_hit_slow(br__fault_kind kind)
{
    uint64_t c = atomic_fetch_add(&calls[kind], 1) + 1;
    uint64_t at = atomic_load(&fail_at[kind]);
    if (!at || c < at || (c > at && !atomic_load(&sticky[kind]))) return 0;
    atomic_fetch_add(&injected, 1);
    errno = fault_errno[kind];
    return 1;
}

ssize_t br__fault_write(int fd, const void *buf, size_t n)
{
    if (br__fault_hit(BR__FAULT_WRITE)) {
        /* A disk filling up: the first write short, the later ones none. */
        if (n > 1 && atomic_load(&sticky[BR__FAULT_WRITE]) && atomic_load(&injected) == 1) {
            ssize_t w = write(fd, buf, n / 2);
            if (w > 0) return w;
        }
        errno = ENOSPC;
        return -1;
    }
    return write(fd, buf, n);
}

size_t br__fault_fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    if (br__fault_hit(BR__FAULT_WRITE)) {
#ifdef _IO_ERR_SEEN
        f->_flags |= _IO_ERR_SEEN; /* glibc: what a failed flush inside fwrite sets */
#endif
        return 0;
    }
    return fwrite(p, size, n, f);
}

int br__fault_fflush(FILE *f)
{
    /* only a flush that writes: an empty buffer cannot meet a full disk */
    if (__fpending(f) > 0 && br__fault_hit(BR__FAULT_WRITE)) return EOF;
    return fflush(f);
}

int br__fault_fsync(int fd)
{
    if (br__fault_hit(BR__FAULT_FSYNC)) return -1;
    return fsync(fd);
}

int br__fault_fdatasync(int fd)
{
    if (br__fault_hit(BR__FAULT_FSYNC)) return -1;
    return fdatasync(fd);
}

int br__fault_rename(const char *from, const char *to)
{
    if (br__fault_hit(BR__FAULT_RENAME)) return -1;
    return rename(from, to);
}
