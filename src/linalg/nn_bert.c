/*
 * nn_bert.c: the BERT encoder's own kernels (see nn_bert.h): the product
 * with PyTorch-layout weights, the exact-erf GELU fused with its bias, and
 * the residual + LayerNorm step.
 *
 * GELU runs once per element of the (tokens, intermediate) activation: with
 * libm's erff that alone would cost more than half as much as the matrix
 * products around it. So erf comes from a branch-free rational
 * approximation (Numerical Recipes' erfc, fractional error < 1.2e-7) and a
 * Cody-Waite expf, written so the compiler vectorises the row loop; the
 * row kernels are built for AVX-512, AVX2 and baseline x86-64 and the
 * process's SIMD level picks one (core/isa.h), so a generic build still
 * runs wide on the machine it lands on. The packed product and attention
 * are AVX-512 only (br__nnb_pack_available).
 */
#include "linalg/nn_bert.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "bookrec/core.h"
#include "core/isa.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#if BR_ISA_X86
#include <immintrin.h>
#define NNB_PACKED 1
#define NNB_AVX512 BR_TARGET_AVX512_FMA
#else
#define NNB_PACKED 0
#endif

/* Elementwise passes are memory-bound; threads only pay off on big ones. */
#define PAR_MIN (1u << 16)

void br__nnb_linear(const float *x, size_t n, size_t k, size_t ldx, const float *w, size_t m,
                const float *b, float *y, size_t ldy)
{
    if (n == 0 || m == 0) return;
    /* With a bias, y starts as the bias and sgemm accumulates onto it
     * (beta = 1): the same sum as PyTorch's addmm, and it replaces the
     * pass in which OpenBLAS would zero y for beta = 0. */
    if (b) {
#pragma omp parallel for num_threads(br_get_num_threads()) if (n * m >= PAR_MIN) schedule(static)
        for (size_t i = 0; i < n; i++) memcpy(y + i * ldy, b, m * sizeof *y);
    } else if (k == 0) {
        for (size_t i = 0; i < n; i++) memset(y + i * ldy, 0, m * sizeof *y);
    }
    if (k == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)m, (int)k, 1.0f, x, (int)ldx,
                w, (int)k, b ? 1.0f : 0.0f, y, (int)ldy);
}

void br__nnb_linear_ref(const float *x, size_t n, size_t k, size_t ldx, const float *w, size_t m,
                    const float *b, float *y, size_t ldy)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m; j++) {
            double acc = 0; /* double: the oracle should be the more exact one */
            for (size_t p = 0; p < k; p++) acc += (double)x[i * ldx + p] * w[j * k + p];
            float v = (float)acc;
            y[i * ldy + j] = b ? v + b[j] : v;
        }
}

/* e^x for x in [-87, 0.5] (the range erfc needs), relative error ~1e-7:
 * x = k ln2 + r, |r| <= ln2 / 2, e^r by Cephes' expf polynomial, 2^k from
 * the exponent bits. Branch-free so that loops over it vectorise. */
static inline float exp_neg(float x)
{
    x = x < -87.0f ? -87.0f : x; /* a select, not libm fmaxf (keeps the loop vectorised) */
    /* round(x / ln2) with the 1.5 * 2^23 trick (exact for |k| < 2^22) */
    float k = x * 1.44269504088896341f + 12582912.0f;
    k -= 12582912.0f;
    float r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)k + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}

static inline float gelu1(float v)
{
    /* Phi(v) = erfc(-v / sqrt 2) / 2, erfc(z) for z = |v| / sqrt 2 >= 0 */
    float z = fabsf(v) * 0.70710678118654752f;
    float t = 1.0f / (1.0f + 0.5f * z);
    float q = 0.17087277f;
    q = q * t - 0.82215223f;
    q = q * t + 1.48851587f;
    q = q * t - 1.13520398f;
    q = q * t + 0.27886807f;
    q = q * t - 0.18628806f;
    q = q * t + 0.09678418f;
    q = q * t + 0.37409196f;
    q = q * t + 1.00002368f;
    q = q * t - 1.26551223f;
    float e = t * exp_neg(q - z * z); /* erfc(z) */
    float phi = v >= 0.0f ? 1.0f - 0.5f * e : 0.5f * e;
    return v * phi;
}

/* --------------------------------------------- packed-weight product --- */

/* Register tile MR x NNB_NR: 2 x MR zmm accumulators (24 of 32 registers),
 * two loads of the weight panel and MR broadcasts of x per k step. The
 * rows of x are copied per tile at the fixed stride KC_MAX, so that all
 * MR broadcasts address one pointer plus constant offsets (a transposed
 * pack costs more than it saves: scalar stores with a stride); the tiles of a block split the rows
 * evenly (37 rows: 10 + 9 + 9 + 9, not 12 + 12 + 12 + 1). k runs in passes of up to KC_MAX (one for
 * the 384-wide inputs, three for the 1536-wide), a weight slice (KC_MAX x 32 floats) staying in
 * L1/L2 while the tiles of a block run over it; MB_MAX tiles (96 rows) of copied x stay in L2.
 * KC_MAX and MB_MAX were picked by timing 37- and 2048-row products of the
 * MiniLM shapes against OpenBLAS: 1.6x its speed at 37 rows, about 0.95x
 * at 2048 (where the fused bias and GELU make up the difference). */
#define MR     12
#define KC_MAX 512
#define MB_MAX 8

int br__nnb_pack_available(void)
{
#if NNB_PACKED
    return br__isa() >= BR_ISA_AVX512;
#else
    return 0;
#endif
}

size_t br__nnb_pack_floats(size_t m, size_t k)
{
    return (m + NNB_NR - 1) / NNB_NR * NNB_NR * k;
}

void br__nnb_pack_weights(const float *w, size_t m, size_t k, float *wp)
{
    for (size_t j0 = 0; j0 < m; j0 += NNB_NR) {
        float *pp = wp + j0 * k; /* panel j0 / NR: (k, NR) */
        for (size_t p = 0; p < k; p++)
            for (size_t jj = 0; jj < NNB_NR; jj++)
                pp[p * NNB_NR + jj] = j0 + jj < m ? w[(j0 + jj) * k + p] : 0.0f;
    }
}

size_t br__nnb_linear_packed_ws(void)
{
    return (size_t)MB_MAX * MR * KC_MAX;
}

#if NNB_PACKED
/* One mr x 32 tile of y over k in [k0, k0 + kc): starts from the bias (first
 * pass) or from y, ends with GELU (last pass, if asked). ncols < 32 only in
 * the last panel. */
NNB_AVX512 static inline __attribute__((always_inline)) void
tile(const size_t mr, size_t kc, const float *restrict ap, const float *restrict bp,
     float *restrict c, size_t ldc, const float *restrict bias, int first, int last, int gelu,
     size_t ncols, const float *pf)
{
    __m512 c0[MR], c1[MR];
    const __mmask16 m0 = ncols >= 16 ? 0xFFFF : (__mmask16)((1u << ncols) - 1);
    const __mmask16 m1 = ncols >= 32   ? 0xFFFF
                         : ncols <= 16 ? 0
                                       : (__mmask16)((1u << (ncols - 16)) - 1);
    if (first) {
        __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
        __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 12
        for (size_t i = 0; i < mr; i++) c0[i] = b0, c1[i] = b1;
    } else {
#pragma GCC unroll 12
        for (size_t i = 0; i < mr; i++) {
            c0[i] = _mm512_maskz_loadu_ps(m0, c + i * ldc);
            c1[i] = _mm512_maskz_loadu_ps(m1, c + i * ldc + 16);
        }
    }
    /* pf: the next weight slice, fetched into L2 by the first tile of a
     * block while it runs (the weights come from L3: 42 MB for MiniLM, read
     * once per call on short inputs). */
#define KSTEP(p)                                                                                   \
    do {                                                                                           \
        const __m512 b0 = _mm512_load_ps(bp + (p)*NNB_NR);                                         \
        const __m512 b1 = _mm512_load_ps(bp + (p)*NNB_NR + 16);                                    \
        _Pragma("GCC unroll 12") for (size_t i = 0; i < mr; i++)                                   \
        {                                                                                          \
            const __m512 a = _mm512_set1_ps(ap[i * KC_MAX + (p)]);                                 \
            c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);                                                 \
            c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);                                                 \
        }                                                                                          \
    } while (0)
    if (pf) {
#pragma GCC unroll 2
        for (size_t p = 0; p < kc; p++) {
            _mm_prefetch((const char *)(pf + p * NNB_NR), _MM_HINT_T1);
            _mm_prefetch((const char *)(pf + p * NNB_NR + 16), _MM_HINT_T1);
            KSTEP(p);
        }
    } else {
#pragma GCC unroll 2
        for (size_t p = 0; p < kc; p++) KSTEP(p);
    }
#undef KSTEP
#pragma GCC unroll 12
    for (size_t i = 0; i < mr; i++) {
        _mm512_mask_storeu_ps(c + i * ldc, m0, c0[i]);
        _mm512_mask_storeu_ps(c + i * ldc + 16, m1, c1[i]);
    }
    if (last && gelu)
        for (size_t i = 0; i < mr; i++) {
            float *r = c + i * ldc;
#pragma omp simd
            for (size_t j = 0; j < ncols; j++) r[j] = gelu1(r[j]);
        }
}

#define TILE_CASE(R)                                                                               \
    case R:                                                                                        \
        tile(R, kc, ap, bp, c, ldc, bias, first, last, gelu, ncols, pf);                           \
        break;

NNB_AVX512 static void tile_any(size_t mr, size_t kc, const float *ap, const float *bp, float *c,
                                size_t ldc, const float *bias, int first, int last, int gelu,
                                size_t ncols, const float *pf)
{
    switch (mr) {
        TILE_CASE(1)
        TILE_CASE(2)
        TILE_CASE(3)
        TILE_CASE(4)
        TILE_CASE(5)
        TILE_CASE(6)
        TILE_CASE(7)
        TILE_CASE(8)
        TILE_CASE(9)
        TILE_CASE(10)
        TILE_CASE(11)
        TILE_CASE(12)
    default:
        break;
    }
}

/* Tiles [t0, t1) of nt (rows evenly split), output panels [p0, p1). */
NNB_AVX512 static void packed_block(const float *x, size_t n, size_t k, size_t ldx, const float *wp,
                                    size_t m, const float *b, int gelu, float *ap, float *y,
                                    size_t ldy, size_t nt, size_t t0, size_t t1, size_t p0,
                                    size_t p1)
{
    const size_t nkc = (k + KC_MAX - 1) / KC_MAX;
    for (size_t q = 0; q < nkc; q++) {
        const size_t k0 = k * q / nkc, kc = k * (q + 1) / nkc - k0;
        for (size_t t = t0; t < t1; t++) {
            const size_t r0 = n * t / nt, mr = n * (t + 1) / nt - r0;
            float *at = ap + (t - t0) * MR * KC_MAX;
            for (size_t i = 0; i < mr; i++)
                memcpy(at + i * KC_MAX, x + (r0 + i) * ldx + k0, kc * sizeof *at);
        }
        for (size_t pn = p0; pn < p1; pn++) {
            const float *bp = wp + pn * NNB_NR * k + k0 * NNB_NR;
            const size_t j0 = pn * NNB_NR, ncols = m - j0 < NNB_NR ? m - j0 : NNB_NR;
            const float *next = pn + 1 < p1 ? bp + NNB_NR * k : NULL;
            for (size_t t = t0; t < t1; t++) {
                const size_t r0 = n * t / nt, mr = n * (t + 1) / nt - r0;
                tile_any(mr, kc, ap + (t - t0) * MR * KC_MAX, bp, y + r0 * ldy + j0, ldy,
                         b ? b + j0 : NULL, q == 0, q + 1 == nkc, gelu, ncols,
                         t == t0 ? next : NULL);
            }
        }
    }
}
#endif

void br__nnb_linear_packed(const float *x, size_t n, size_t k, size_t ldx, const float *wp,
                           size_t m, const float *b, int gelu, float *ws, float *y, size_t ldy)
{
    if (n == 0 || m == 0) return;
    if (k == 0) {
        for (size_t i = 0; i < n; i++) {
            if (b)
                memcpy(y + i * ldy, b, m * sizeof *y);
            else
                memset(y + i * ldy, 0, m * sizeof *y);
        }
        for (size_t i = 0; gelu && i < n; i++) br__nnb_bias_gelu(y + i * ldy, 1, m, NULL);
        return;
    }
#if NNB_PACKED
    const size_t nt = (n + MR - 1) / MR, nblk = (nt + MB_MAX - 1) / MB_MAX;
    const size_t npan = (m + NNB_NR - 1) / NNB_NR;
    const int threads = br_get_num_threads();
    /* Blocks of rows to the threads; when there are fewer blocks than
     * threads (short inputs), the panels of each block are split too. */
    size_t split = nblk >= (size_t)threads ? 1 : ((size_t)threads + nblk - 1) / nblk;
    split = split > npan ? npan : split;
    const size_t items = nblk * split;
#pragma omp parallel for num_threads(threads)                                                      \
    schedule(static) if (threads > 1 && items > 1 && n * m * k >= ((size_t)1 << 22))
    for (size_t it = 0; it < items; it++) {
#ifdef _OPENMP
        float *ap = ws + (size_t)omp_get_thread_num() * br__nnb_linear_packed_ws();
#else
        float *ap = ws;
#endif
        const size_t blk = it / split, s = it % split;
        const size_t t0 = blk * MB_MAX, t1 = t0 + MB_MAX < nt ? t0 + MB_MAX : nt;
        packed_block(x, n, k, ldx, wp, m, b, gelu, ap, y, ldy, nt, t0, t1, npan * s / split,
                     npan * (s + 1) / split);
    }
#else
    (void)x, (void)ldx, (void)wp, (void)b, (void)ws, (void)y;
#endif
}

/* ------------------------------------------------ packed attention --- */

size_t br__nnb_attention_packed_max_len(void)
{
    return KC_MAX;
}

#define ATT_DH_MAX 64
#define PANELS(v)  (((v) + NNB_NR - 1) / NNB_NR)

size_t br__nnb_attention_packed_ws(size_t L, size_t D, size_t heads)
{
    const size_t dh = D / heads;
    size_t packed = 2 * (size_t)MR * KC_MAX + PANELS(L) * NNB_NR * dh + L * PANELS(dh) * NNB_NR;
    size_t plain = br__nnb_attention_ws(L);
    return packed > plain ? packed : plain;
}

/* Softmax of scale * r (n,): the scale in the exponent, as exp(scale (s -
 * max)) = exp(scale s) / exp(scale max) for scale > 0. */
static inline void softmax_scaled(float *restrict r, size_t n, float scale)
{
    float mx = r[0];
#pragma omp simd reduction(max : mx)
    for (size_t j = 1; j < n; j++) mx = r[j] > mx ? r[j] : mx;
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (size_t j = 0; j < n; j++) {
        r[j] = exp_neg((r[j] - mx) * scale);
        sum += r[j];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (size_t j = 0; j < n; j++) r[j] *= inv;
}

#if NNB_PACKED
NNB_AVX512 static void attention_packed(const float *qkv, size_t L, size_t D, size_t heads,
                                        float scale, float *ws, float *out, size_t ld_out)
{
    const size_t dh = D / heads, ld = 3 * D, nt = (L + MR - 1) / MR;
    float *qa = ws;                           /* (MR, KC_MAX): a tile of queries */
    float *sa = qa + MR * KC_MAX;             /* (MR, KC_MAX): their scores, then weights */
    float *kp = sa + MR * KC_MAX;             /* keys as panels: (PANELS(L), dh, 32) */
    float *vp = kp + PANELS(L) * NNB_NR * dh; /* values as panels: (PANELS(dh), L, 32) */
    for (size_t h = 0; h < heads; h++) {
        const float *q = qkv + h * dh, *k = qkv + D + h * dh, *v = qkv + 2 * D + h * dh;
        /* row by row (the rows of qkv are 3D apart), zero keys past L */
        for (size_t t = 0; t < PANELS(L) * NNB_NR; t++) {
            float *kt = kp + (t / NNB_NR) * NNB_NR * dh + t % NNB_NR;
            for (size_t d = 0; d < dh; d++) kt[d * NNB_NR] = t < L ? k[t * ld + d] : 0.0f;
        }
        for (size_t t = 0; t < L; t++)
            for (size_t d = 0; d < PANELS(dh) * NNB_NR; d++)
                vp[((d / NNB_NR) * L + t) * NNB_NR + d % NNB_NR] = d < dh ? v[t * ld + d] : 0.0f;
        for (size_t ti = 0; ti < nt; ti++) {
            const size_t r0 = L * ti / nt, mr = L * (ti + 1) / nt - r0;
            for (size_t i = 0; i < mr; i++)
                memcpy(qa + i * KC_MAX, q + (r0 + i) * ld, dh * sizeof *qa);
            for (size_t pn = 0; pn < PANELS(L); pn++) {
                const size_t j0 = pn * NNB_NR;
                tile_any(mr, dh, qa, kp + pn * NNB_NR * dh, sa + j0, KC_MAX, NULL, 1, 1, 0,
                         L - j0 < NNB_NR ? L - j0 : NNB_NR, NULL);
            }
            for (size_t i = 0; i < mr; i++) softmax_scaled(sa + i * KC_MAX, L, scale);
            for (size_t pn = 0; pn < PANELS(dh); pn++) {
                const size_t j0 = pn * NNB_NR;
                tile_any(mr, L, sa, vp + pn * L * NNB_NR, out + r0 * ld_out + h * dh + j0, ld_out,
                         NULL, 1, 1, 0, dh - j0 < NNB_NR ? dh - j0 : NNB_NR, NULL);
            }
        }
    }
}
#endif

void br__nnb_attention_packed(const float *qkv, size_t L, size_t D, size_t heads, float scale,
                          float *ws, float *out, size_t ld_out)
{
    if (L == 0) return;
#if NNB_PACKED
    if (br__nnb_pack_available() && L <= KC_MAX && D / heads <= ATT_DH_MAX) {
        attention_packed(qkv, L, D, heads, scale, ws, out, ld_out);
        return;
    }
#endif
    br__nnb_attention(qkv, L, D, heads, scale, ws, out, ld_out);
}

/* The loops carry `omp simd` so that they vectorise without -ffast-math
 * (and the reductions may be reassociated); no branch inside them. */
static inline BR_ISA_BODY void gelu_row_body(float *restrict x, const float *restrict b, size_t d)
{
    if (b) {
#pragma omp simd
        for (size_t j = 0; j < d; j++) x[j] = gelu1(x[j] + b[j]);
    } else {
#pragma omp simd
        for (size_t j = 0; j < d; j++) x[j] = gelu1(x[j]);
    }
}
BR_ISA_VARIANTS(gelu_row, (float *restrict x, const float *restrict b, size_t d), (x, b, d))

void br__nnb_bias_gelu(float *x, size_t n, size_t d, const float *b)
{
#pragma omp parallel for num_threads(br_get_num_threads()) if (n * d >= PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) BR_ISA_CALL(gelu_row, (x + i * d, b, d));
}

void br__nnb_bias_gelu_ref(float *x, size_t n, size_t d, const float *b)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            double v = (double)(b ? x[i * d + j] + b[j] : x[i * d + j]);
            x[i * d + j] = (float)(0.5 * v * (1.0 + erf(v / sqrt(2.0))));
        }
}

static inline BR_ISA_BODY void add_ln_row_body(float *restrict x, const float *restrict r,
                                               const float *restrict rb, size_t d,
                                               const float *restrict g, const float *restrict b,
                                               float eps)
{
    float sum = 0;
    if (rb) {
#pragma omp simd reduction(+ : sum)
        for (size_t j = 0; j < d; j++) {
            float v = x[j] + (r[j] + rb[j]);
            x[j] = v;
            sum += v;
        }
    } else {
#pragma omp simd reduction(+ : sum)
        for (size_t j = 0; j < d; j++) {
            float v = x[j] + r[j];
            x[j] = v;
            sum += v;
        }
    }
    float mean = sum / (float)d, sq = 0;
#pragma omp simd reduction(+ : sq)
    for (size_t j = 0; j < d; j++) {
        float c = x[j] - mean;
        sq += c * c;
    }
    float inv = 1.0f / sqrtf(sq / (float)d + eps);
#pragma omp simd
    for (size_t j = 0; j < d; j++) x[j] = (x[j] - mean) * inv * g[j] + b[j];
}
BR_ISA_VARIANTS(add_ln_row,
                (float *restrict x, const float *restrict r, const float *restrict rb, size_t d,
                 const float *restrict g, const float *restrict b, float eps),
                (x, r, rb, d, g, b, eps))

void br__nnb_add_layernorm(float *x, const float *r, const float *rb, size_t n, size_t d,
                       const float *g, const float *b, float eps)
{
#pragma omp parallel for num_threads(br_get_num_threads()) if (n * d >= PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++)
        BR_ISA_CALL(add_ln_row, (x + i * d, r + i * d, rb, d, g, b, eps));
}

void br__nnb_add_layernorm_ref(float *x, const float *r, const float *rb, size_t n, size_t d,
                           const float *g, const float *b, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float *xr = x + i * d;
        const float *rr = r + i * d;
        double sum = 0, sq = 0;
        for (size_t j = 0; j < d; j++) {
            xr[j] = xr[j] + (rb ? rr[j] + rb[j] : rr[j]);
            sum += xr[j];
        }
        double mean = sum / (double)d;
        for (size_t j = 0; j < d; j++) sq += (xr[j] - mean) * (xr[j] - mean);
        double inv = 1.0 / sqrt(sq / (double)d + eps);
        for (size_t j = 0; j < d; j++) xr[j] = (float)((xr[j] - mean) * inv * g[j] + b[j]);
    }
}

static inline BR_ISA_BODY void softmax_row_body(float *r, size_t n)
{
    softmax_scaled(r, n, 1.0f); /* x * 1 is x: the same values */
}
BR_ISA_VARIANTS(softmax_row, (float *r, size_t n), (r, n))

void br__nnb_softmax_rows(float *s, size_t rows, size_t cols)
{
    for (size_t i = 0; i < rows; i++) BR_ISA_CALL(softmax_row, (s + i * cols, cols));
}

void br__nnb_softmax_rows_ref(float *s, size_t rows, size_t cols)
{
    for (size_t i = 0; i < rows; i++) {
        float *r = s + i * cols;
        double mx = r[0], sum = 0;
        for (size_t j = 1; j < cols; j++) mx = r[j] > mx ? r[j] : mx;
        for (size_t j = 0; j < cols; j++) sum += exp((double)r[j] - mx);
        for (size_t j = 0; j < cols; j++) r[j] = (float)(exp((double)r[j] - mx) / sum);
    }
}

size_t br__nnb_attention_ws(size_t L)
{
    return L * L;
}

void br__nnb_attention(const float *qkv, size_t L, size_t D, size_t heads, float scale, float *ws,
                   float *out, size_t ld_out)
{
    if (L == 0) return;
    const size_t dh = D / heads, ld = 3 * D;
    for (size_t h = 0; h < heads; h++) {
        /* s (L, L) = scale * q_h (L, dh) . k_h (L, dh)^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)L, (int)L, (int)dh, scale,
                    qkv + h * dh, (int)ld, qkv + D + h * dh, (int)ld, 0.0f, ws, (int)L);
        br__nnb_softmax_rows(ws, L, L);
        /* out_h (L, dh) = s (L, L) . v_h (L, dh) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)L, (int)dh, (int)L, 1.0f, ws,
                    (int)L, qkv + 2 * D + h * dh, (int)ld, 0.0f, out + h * dh, (int)ld_out);
    }
}
