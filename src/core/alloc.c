/*
 * alloc.c: the single allocation path of the library. Every module allocates
 * through br_malloc & co so an embedding application can account for or
 * replace the allocator in one place.
 */
#include "bookrec/core.h"
#include "core/fault.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *libc_malloc(size_t size, void *user)
{
    (void)user;
    return malloc(size);
}

static void *libc_realloc(void *ptr, size_t size, void *user)
{
    (void)user;
    return realloc(ptr, size);
}

static void libc_free(void *ptr, void *user)
{
    (void)user;
    free(ptr);
}

static br_allocator current = {libc_malloc, libc_realloc, libc_free, NULL};

void br_set_allocator(const br_allocator *alloc)
{
    if (alloc && alloc->malloc_fn && alloc->realloc_fn && alloc->free_fn)
        current = *alloc;
    else
        current = (br_allocator){libc_malloc, libc_realloc, libc_free, NULL};
}

void *br_malloc(size_t size)
{
    if (br__fault_hit(BR__FAULT_ALLOC)) return NULL; /* core/fault.h */
    /* malloc(0) may return NULL; callers treat NULL as failure, so ask for 1. */
    return current.malloc_fn(size ? size : 1, current.user);
}

void *br_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = br_malloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void *br_realloc(void *ptr, size_t size)
{
    if (br__fault_hit(BR__FAULT_ALLOC)) return NULL;
    return current.realloc_fn(ptr, size ? size : 1, current.user);
}

void br_free(void *ptr)
{
    if (ptr) current.free_fn(ptr, current.user);
}

char *br_strndup(const char *s, size_t n)
{
    char *d = br_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *br_strdup(const char *s)
{
    return br_strndup(s, strlen(s));
}

/* Aligned blocks over-allocate and keep the raw pointer just before the
 * aligned address, so they work with any installed allocator. */
void *br_aligned_alloc(size_t size, size_t align)
{
    if (align < sizeof(void *) || (align & (align - 1))) return NULL;
    if (size > SIZE_MAX - align - sizeof(void *)) return NULL;
    unsigned char *raw = br_malloc(size + align + sizeof(void *));
    if (!raw) return NULL;
    uintptr_t base = (uintptr_t)(raw + sizeof(void *));
    uintptr_t aligned = (base + align - 1) & ~(uintptr_t)(align - 1);
    ((void **)aligned)[-1] = raw;
    return (void *)aligned;
}

void br_aligned_free(void *ptr)
{
    if (ptr) br_free(((void **)ptr)[-1]);
}
