/*
 * vec.h (internal): the small vector kernels the content engine shares:
 * dot products and squared distances of float32 rows. The optimised
 * versions are chosen once at run time (AVX2+FMA when the CPU has it, the
 * portable loop otherwise), so the default -O2 x86-64 build still runs the
 * wide kernel on a modern machine; the `_ref` twins are the test oracles.
 */
#ifndef BR_CONTENT_VEC_H
#define BR_CONTENT_VEC_H

#include <stddef.h>
#include <stdint.h>

/* a (d,) . b (d,) */
float cv_dot(const float *a, const float *b, size_t d);
float cv_dot_ref(const float *a, const float *b, size_t d);
/* ||a - b||^2 */
float cv_l2sq(const float *a, const float *b, size_t d);
float cv_l2sq_ref(const float *a, const float *b, size_t d);
/* out (n, m) = x (n, d) . c (m, d)^T for small m (a handful of centres):
 * x is streamed once, every row against all of c while c sits in cache.
 * Threads split the rows. For large m, sgemm wins. */
void cv_dots(const float *x, size_t n, const float *c, size_t m, size_t d, float *out);
/* Name of the kernel in use ("avx2-fma" or "portable"), for bench output. */
const char *cv_kernel_name(void);

/* A bounded min-heap keeping the k largest (score, id) pairs seen: the
 * partial sort behind every top-k. Ties: the lower id ranks higher. */
typedef struct cv_topk {
    size_t k, n;
    float *score; /* (k,) */
    int32_t *id;  /* (k,) */
} cv_topk;

/* Pushes (s, id) if it beats the current k-th. */
void cv_topk_push(cv_topk *h, float s, int32_t id);
/* Sorts the heap contents best first into ids/scores (k,), padding the
 * tail with -1 / -INFINITY; empties the heap. */
void cv_topk_drain(cv_topk *h, int32_t *ids, float *scores);

#endif
