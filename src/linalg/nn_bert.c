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
 * row kernels are built for AVX-512, AVX2 and baseline x86-64 and the best
 * one is picked at load time (GCC target_clones), so a generic build still
 * runs wide on the machine it lands on.
 */
#include "linalg/nn_bert.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "bookrec/core.h"

/* Elementwise passes are memory-bound; threads only pay off on big ones. */
#define PAR_MIN (1u << 16)

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) &&                             \
    !defined(__SANITIZE_ADDRESS__)
#define NNB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NNB_CLONES
#endif

void nnb_linear(const float *x, size_t n, size_t k, size_t ldx, const float *w, size_t m,
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

void nnb_linear_ref(const float *x, size_t n, size_t k, size_t ldx, const float *w, size_t m,
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

/* The loops carry `omp simd` so that they vectorise without -ffast-math
 * (and the reductions may be reassociated); no branch inside them. */
NNB_CLONES static void gelu_row(float *restrict x, const float *restrict b, size_t d)
{
    if (b) {
#pragma omp simd
        for (size_t j = 0; j < d; j++) x[j] = gelu1(x[j] + b[j]);
    } else {
#pragma omp simd
        for (size_t j = 0; j < d; j++) x[j] = gelu1(x[j]);
    }
}

void nnb_bias_gelu(float *x, size_t n, size_t d, const float *b)
{
#pragma omp parallel for num_threads(br_get_num_threads()) if (n * d >= PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) gelu_row(x + i * d, b, d);
}

void nnb_bias_gelu_ref(float *x, size_t n, size_t d, const float *b)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            double v = (double)(b ? x[i * d + j] + b[j] : x[i * d + j]);
            x[i * d + j] = (float)(0.5 * v * (1.0 + erf(v / sqrt(2.0))));
        }
}

NNB_CLONES static void add_ln_row(float *restrict x, const float *restrict r,
                                  const float *restrict rb, size_t d, const float *restrict g,
                                  const float *restrict b, float eps)
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

void nnb_add_layernorm(float *x, const float *r, const float *rb, size_t n, size_t d,
                       const float *g, const float *b, float eps)
{
#pragma omp parallel for num_threads(br_get_num_threads()) if (n * d >= PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) add_ln_row(x + i * d, r + i * d, rb, d, g, b, eps);
}

void nnb_add_layernorm_ref(float *x, const float *r, const float *rb, size_t n, size_t d,
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

NNB_CLONES static void softmax_row(float *r, size_t n)
{
    float mx = r[0];
#pragma omp simd reduction(max : mx)
    for (size_t j = 1; j < n; j++) mx = r[j] > mx ? r[j] : mx;
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (size_t j = 0; j < n; j++) {
        r[j] = exp_neg(r[j] - mx);
        sum += r[j];
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (size_t j = 0; j < n; j++) r[j] *= inv;
}

void nnb_softmax_rows(float *s, size_t rows, size_t cols)
{
    for (size_t i = 0; i < rows; i++) softmax_row(s + i * cols, cols);
}

void nnb_softmax_rows_ref(float *s, size_t rows, size_t cols)
{
    for (size_t i = 0; i < rows; i++) {
        float *r = s + i * cols;
        double mx = r[0], sum = 0;
        for (size_t j = 1; j < cols; j++) mx = r[j] > mx ? r[j] : mx;
        for (size_t j = 0; j < cols; j++) sum += exp((double)r[j] - mx);
        for (size_t j = 0; j < cols; j++) r[j] = (float)(exp((double)r[j] - mx) / sum);
    }
}

size_t nnb_attention_ws(size_t L)
{
    return L * L;
}

void nnb_attention(const float *qkv, size_t L, size_t D, size_t heads, float scale, float *ws,
                   float *out, size_t ld_out)
{
    if (L == 0) return;
    const size_t dh = D / heads, ld = 3 * D;
    for (size_t h = 0; h < heads; h++) {
        /* s (L, L) = scale * q_h (L, dh) . k_h (L, dh)^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)L, (int)L, (int)dh, scale,
                    qkv + h * dh, (int)ld, qkv + D + h * dh, (int)ld, 0.0f, ws, (int)L);
        nnb_softmax_rows(ws, L, L);
        /* out_h (L, dh) = s (L, L) . v_h (L, dh) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)L, (int)dh, (int)L, 1.0f, ws,
                    (int)L, qkv + 2 * D + h * dh, (int)ld, 0.0f, out + h * dh, (int)ld_out);
    }
}
