/*
 * vec.c: dot products and squared distances with run-time dispatch, and
 * the bounded heap used for partial sorts. See vec.h.
 *
 * Why dispatch: the library is built for baseline x86-64 (SSE2) so one
 * binary runs anywhere, yet HNSW spends nearly all its time in 512-wide
 * dot products, where AVX2+FMA with four accumulators is ~3x the SSE2 loop.
 */
#include "content/vec.h"

#include <math.h>

#include "bookrec/core.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CV_HAVE_X86 1
#endif

float cv_dot_ref(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++) s += (double)a[i] * (double)b[i];
    return (float)s;
}

float cv_l2sq_ref(const float *a, const float *b, size_t d)
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
__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, size_t d)
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

__attribute__((target("avx2,fma"))) static float l2sq_avx2(const float *a, const float *b,
                                                           size_t d)
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

typedef float (*kernel_fn)(const float *, const float *, size_t);

/* Chosen on first use; the race between two first callers is benign (both
 * store the same pointers), but keep it clean for the thread sanitizer with
 * relaxed atomics. */
static kernel_fn dot_fn, l2_fn;
static const char *kernel_name;

static void pick(void)
{
    kernel_fn d = dot_portable, l = l2sq_portable;
    const char *name = "portable";
#ifdef CV_HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        d = dot_avx2;
        l = l2sq_avx2;
        name = "avx2-fma";
    }
#endif
    __atomic_store_n(&l2_fn, l, __ATOMIC_RELAXED);
    __atomic_store_n(&kernel_name, name, __ATOMIC_RELAXED);
    __atomic_store_n(&dot_fn, d, __ATOMIC_RELEASE);
}

float cv_dot(const float *a, const float *b, size_t d)
{
    kernel_fn f = __atomic_load_n(&dot_fn, __ATOMIC_ACQUIRE);
    if (!f) {
        pick();
        f = __atomic_load_n(&dot_fn, __ATOMIC_ACQUIRE);
    }
    return f(a, b, d);
}

float cv_l2sq(const float *a, const float *b, size_t d)
{
    if (!__atomic_load_n(&dot_fn, __ATOMIC_ACQUIRE)) pick();
    return __atomic_load_n(&l2_fn, __ATOMIC_RELAXED)(a, b, d);
}

const char *cv_kernel_name(void)
{
    if (!__atomic_load_n(&dot_fn, __ATOMIC_ACQUIRE)) pick();
    return __atomic_load_n(&kernel_name, __ATOMIC_RELAXED);
}

#ifdef CV_HAVE_X86
/* One row against four centres: the row is loaded once per 8 lanes and
 * feeds four FMAs, so the loop is bound by the row stream, not the adds. */
__attribute__((target("avx2,fma"))) static void dots4_avx2(const float *x, const float *c,
                                                           size_t d, float *out)
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

void cv_dots(const float *x, size_t n, const float *c, size_t m, size_t d, float *out)
{
    int wide = 0;
#ifdef CV_HAVE_X86
    wide = cv_kernel_name()[0] == 'a';
#endif
#pragma omp parallel for schedule(static) num_threads(br_get_num_threads()) if (n * m * d > (1u << 24))
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        float *o = out + i * m;
        size_t j = 0;
#ifdef CV_HAVE_X86
        if (wide)
            for (; j + 4 <= m; j += 4) dots4_avx2(xi, c + j * d, d, o + j);
#endif
        for (; j < m; j++) o[j] = cv_dot(xi, c + j * d, d);
    }
    (void)wide;
}

/* ------------------------------------------------------------------ heap -- */

/* "a ranks below b": lower score, or equal score and higher id. The heap
 * root is the worst kept pair. */
static inline int worse(float sa, int32_t ia, float sb, int32_t ib)
{
    return sa < sb || (sa == sb && ia > ib);
}

static void sift_down(cv_topk *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && worse(h->score[l], h->id[l], h->score[m], h->id[m])) m = l;
        if (r < h->n && worse(h->score[r], h->id[r], h->score[m], h->id[m])) m = r;
        if (m == i) return;
        float ts = h->score[i];
        int32_t ti = h->id[i];
        h->score[i] = h->score[m];
        h->id[i] = h->id[m];
        h->score[m] = ts;
        h->id[m] = ti;
        i = m;
    }
}

void cv_topk_push(cv_topk *h, float s, int32_t id)
{
    if (h->k == 0 || s != s) return; /* NaN never ranks */
    if (h->n < h->k) {
        size_t i = h->n++;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!worse(s, id, h->score[p], h->id[p])) break;
            h->score[i] = h->score[p];
            h->id[i] = h->id[p];
            i = p;
        }
        h->score[i] = s;
        h->id[i] = id;
        return;
    }
    if (!worse(h->score[0], h->id[0], s, id)) return;
    h->score[0] = s;
    h->id[0] = id;
    sift_down(h, 0);
}

void cv_topk_drain(cv_topk *h, int32_t *ids, float *scores)
{
    size_t n = h->n;
    for (size_t i = n; i < h->k; i++) {
        ids[i] = -1;
        scores[i] = -INFINITY;
    }
    /* Pop the worst repeatedly into the back: best first at the front. */
    while (h->n > 0) {
        size_t last = --h->n;
        ids[last] = h->id[0];
        scores[last] = h->score[0];
        h->score[0] = h->score[last];
        h->id[0] = h->id[last];
        sift_down(h, 0);
    }
}
