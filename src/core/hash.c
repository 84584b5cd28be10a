/*
 * hash.c: the public FNV-1a (core.h), over the one implementation in
 * hash.h.
 */
#include "core/hash.h"

#include "bookrec/core.h"

uint64_t br_fnv1a64(const void *data, size_t n)
{
    return br__fnv1a64_update(BR__FNV1A64_INIT, data, n);
}
