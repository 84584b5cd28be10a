/*
 * fault.h (internal): fault injection for the torture tests
 * (tests/test_faults.c), in the spirit of curl's: fail the Nth allocation,
 * write, fsync or rename the library makes, and check that every such
 * failure ends in a clear error with nothing half-done.
 *
 * The hooks are compiled into every build (the tested code is the shipped
 * code) and cost one predictable branch while off: nothing arms them but a
 * test calling br__fault_set in-process (there is no environment variable
 * and no public API). An injected failure looks like the real one: the
 * call returns its failure value with errno set to what the kernel (or
 * malloc) would give on a full disk or a failing device:
 *
 *     alloc   br_malloc / br_realloc (and all built on them)  NULL, ENOMEM
 *     write   write(2), fwrite, fflush of a file being saved  ENOSPC
 *     fsync   fsync, fdatasync                                 EIO
 *     rename  rename                                           EIO
 *
 * Counting is atomic (allocations happen on OpenMP threads); with several
 * threads allocating, which call is the Nth is up to the scheduler.
 */
#ifndef BR_CORE_FAULT_H
#define BR_CORE_FAULT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef enum br__fault_kind {
    BR__FAULT_ALLOC,
    BR__FAULT_WRITE,
    BR__FAULT_FSYNC,
    BR__FAULT_RENAME,
    BR__FAULT_KINDS
} br__fault_kind;

/* Nonzero while a test counts or injects: the one branch of the fast path. */
extern atomic_int br__fault_enabled;

/* Resets every counter and starts counting calls of every kind; the `n`th
 * call of `kind` from now fails (n = 0: none, count only). One failure
 * only: the next call succeeds, as after a transient error. */
void br__fault_set(br__fault_kind kind, uint64_t n);
/* As br__fault_set, but the Nth call and every later one of `kind` fail:
 * a disk that stays full. */
void br__fault_set_from(br__fault_kind kind, uint64_t n);
/* Stops counting and injecting. */
void br__fault_clear(void);
/* Calls of `kind` counted since the last br__fault_set. */
uint64_t br__fault_calls(br__fault_kind kind);
/* Failures injected since the last br__fault_set. */
uint64_t br__fault_injected(void);
/* The name of a kind ("alloc", "write", "fsync", "rename"). */
const char *br__fault_name(br__fault_kind kind);

int br__fault_hit_slow(br__fault_kind kind);

/* 1 when this call of `kind` is to fail (counting it), else 0. */
static inline int br__fault_hit(br__fault_kind kind)
{
    if (__builtin_expect(!atomic_load_explicit(&br__fault_enabled, memory_order_relaxed), 1))
        return 0;
    return br__fault_hit_slow(kind);
}

/* The system calls and stdio functions with their hook: each behaves as
 * the plain call unless the hook fires. br__fault_fwrite also sets the
 * stream's error flag, as a failed flush inside fwrite would, so callers
 * that check ferror (br__afile_commit) see it. */
ssize_t br__fault_write(int fd, const void *buf, size_t n);
size_t br__fault_fwrite(const void *p, size_t size, size_t n, FILE *f);
int br__fault_fflush(FILE *f);
int br__fault_fsync(int fd);
int br__fault_fdatasync(int fd);
int br__fault_rename(const char *from, const char *to);

#endif
