/*
 * hash.h (internal): the one FNV-1a (64-bit) of the library. Incremental, so
 * that a hash can run over a stream (train's input files) or continue from
 * a state another hash left (the tails of idmap's, hnsw's and the use-lite
 * model's word-at-a-time hashes): br__fnv1a64_update(BR__FNV1A64_INIT, p,
 * n) is the standard FNV-1a of p[0..n), what br_fnv1a64 (core.h) returns.
 *
 * Values of it are stored in files that outlive a run (the embedding
 * cache's keys, train's manifest, the hnsw and use-lite checksums): the
 * constants are the standard ones and must never change.
 */
#ifndef BR_CORE_HASH_H
#define BR_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define BR__FNV1A64_INIT  0xcbf29ce484222325ULL /* the offset basis, 14695981039346656037 */
#define BR__FNV1A64_PRIME 0x100000001b3ULL      /* 1099511628211 */

/* The state h after also hashing p[0..n). Inline: idmap hashes every id. */
static inline uint64_t br__fnv1a64_update(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * BR__FNV1A64_PRIME;
    return h;
}

#endif
