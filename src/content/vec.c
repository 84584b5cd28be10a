/*
 * vec.c: dot products and squared distances with run-time dispatch. See
 * vec.h. (The top-k heap is core/topk.h.)
 *
 * Why dispatch: the library is built for baseline x86-64 (SSE2) so one
 * binary runs anywhere, yet HNSW spends nearly all its time in 512-wide
 * dot products, where AVX2+FMA with four accumulators is ~3x the SSE2 loop.
 * The process's SIMD level (core/isa.h) picks: AVX2 and AVX-512 run the
 * AVX2+FMA kernels (an AVX-512 variant would change the sums' rounding,
 * hence the HNSW graphs, for little gain at these lengths), portable the
 * plain loops.
 */
#include "content/vec.h"

#include <math.h>

#include "bookrec/core.h"
#include "core/isa.h"

#if BR_ISA_X86
#include <immintrin.h>
#define CV_HAVE_X86 1
#define CV_AVX2     BR_TARGET_AVX2_FMA
#endif

float br__cv_dot_ref(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++) s += (double)a[i] * (double)b[i];
    return (float)s;
}

float br__cv_l2sq_ref(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++) {
        double t = (double)a[i] - (double)b[i];
        s += t * t;
    }
    return (float)s;
}

/* Portable: eight independent partial sums so the compiler vectorises it
 * without -ffast-math (a single running sum would be a serial chain). */
static float dot_portable(const float *a, const float *b, size_t d)
{
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    float t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < d; i++) t += a[i] * b[i];
    return t;
}

static float l2sq_portable(const float *a, const float *b, size_t d)
{
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (int j = 0; j < 8; j++) {
            float t = a[i + j] - b[i + j];
            s[j] += t * t;
        }
    float r = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < d; i++) {
        float t = a[i] - b[i];
        r += t * t;
    }
    return r;
}

#ifdef CV_HAVE_X86
CV_AVX2 static inline float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

CV_AVX2 static float dot_avx2(const float *a, const float *b, size_t d)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(),
           s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= d; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float t = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < d; i++) t += a[i] * b[i];
    return t;
}

CV_AVX2 static float l2sq_avx2(const float *a, const float *b, size_t d)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
    }
    float r = hsum256(_mm256_add_ps(s0, s1));
    for (; i < d; i++) {
        float t = a[i] - b[i];
        r += t * t;
    }
    return r;
}
#endif

/* The wide kernels where the level has AVX2+FMA: a load and a branch per
 * call, no indirect call. */
static inline int wide(void)
{
#ifdef CV_HAVE_X86
    return br__isa() >= BR_ISA_AVX2;
#else
    return 0;
#endif
}

float br__cv_dot(const float *a, const float *b, size_t d)
{
#ifdef CV_HAVE_X86
    if (wide()) return dot_avx2(a, b, d);
#endif
    return dot_portable(a, b, d);
}

float br__cv_l2sq(const float *a, const float *b, size_t d)
{
#ifdef CV_HAVE_X86
    if (wide()) return l2sq_avx2(a, b, d);
#endif
    return l2sq_portable(a, b, d);
}

#ifdef CV_HAVE_X86
/* One row against four centres: the row is loaded once per 8 lanes and
 * feeds four FMAs, so the loop is bound by the row stream, not the adds. */
CV_AVX2 static void dots4_avx2(const float *x, const float *c, size_t d, float *out)
{
    const float *c0 = c, *c1 = c + d, *c2 = c + 2 * d, *c3 = c + 3 * d;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(),
           s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        s0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(c0 + i), s0);
        s1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(c1 + i), s1);
        s2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(c2 + i), s2);
        s3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(c3 + i), s3);
    }
    float r0 = hsum256(s0), r1 = hsum256(s1), r2 = hsum256(s2), r3 = hsum256(s3);
    for (; i < d; i++) {
        r0 += x[i] * c0[i];
        r1 += x[i] * c1[i];
        r2 += x[i] * c2[i];
        r3 += x[i] * c3[i];
    }
    out[0] = r0;
    out[1] = r1;
    out[2] = r2;
    out[3] = r3;
}
#endif

void br__cv_dots(const float *x, size_t n, const float *c, size_t m, size_t d, float *out)
{
    const int w = wide();
#pragma omp parallel for schedule(static)                                                          \
    num_threads(br_get_num_threads()) if (n * m * d > (1u << 24))
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        float *o = out + i * m;
        size_t j = 0;
#ifdef CV_HAVE_X86
        if (w)
            for (; j + 4 <= m; j += 4) dots4_avx2(xi, c + j * d, d, o + j);
#endif
        for (; j < m; j++) o[j] = br__cv_dot(xi, c + j * d, d);
    }
    (void)w;
}
