/*
 * vec.h (internal): the small vector kernels the content engine shares:
 * dot products and squared distances of float32 rows. The optimised
 * versions follow the process's SIMD level (core/isa.h: AVX2+FMA at the
 * avx2 and avx512 levels, the portable loop otherwise), so the default -O2
 * x86-64 build still runs the wide kernel on a modern machine; the `_ref`
 * twins are the test oracles.
 */
#ifndef BR_CONTENT_VEC_H
#define BR_CONTENT_VEC_H

#include <stddef.h>
#include <stdint.h>

/* a (d,) . b (d,) */
float br__cv_dot(const float *a, const float *b, size_t d);
float br__cv_dot_ref(const float *a, const float *b, size_t d);
/* ||a - b||^2 */
float br__cv_l2sq(const float *a, const float *b, size_t d);
float br__cv_l2sq_ref(const float *a, const float *b, size_t d);
/* out (n, m) = x (n, d) . c (m, d)^T for small m (a handful of centres):
 * x is streamed once, every row against all of c while c sits in cache.
 * Threads split the rows. For large m, sgemm wins. */
void br__cv_dots(const float *x, size_t n, const float *c, size_t m, size_t d, float *out);

#endif
