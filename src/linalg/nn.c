/*
 * nn.c: neural-network kernels shared by the sentence encoders (see nn.h).
 * The heavy lifting is cblas_sgemm; what is here is the glue the graphs
 * need around it, in the graphs' order of rounding.
 */
#include "linalg/nn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "bookrec/core.h"
#include "core/isa.h"

/* The passes between the products are short loops the default x86-64 target
 * (SSE2) and GCC's -O2 cost model leave scalar; they were 17% of the
 * encoder's time once OpenBLAS ran its AVX-512 kernels. Variants for
 * AVX-512 and AVX2 (core/isa.h), `omp simd` to vectorise, and no fused
 * multiply-add contraction, so each variant rounds like the graph: a
 * product rounded, then a sum rounded. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#pragma GCC optimize("fp-contract=off")
#endif

/* No OpenMP in these passes: they are memory-bound and short, and an
 * OpenMP team spinning between them steals the cores OpenBLAS's own threads
 * need for the products around them (measured: 2 threads ran slower than 1
 * with the passes parallel). */

static inline BR_ISA_BODY void add_bias_body(float *y, size_t n, size_t m, size_t ldy,
                                             const float *b)
{
    for (size_t i = 0; i < n; i++) {
        float *yr = y + i * ldy;
#pragma omp simd
        for (size_t j = 0; j < m; j++) yr[j] += b[j];
    }
}
BR_ISA_VARIANTS(add_bias, (float *y, size_t n, size_t m, size_t ldy, const float *b),
                (y, n, m, ldy, b))

void br__nn_linear(const float *x, size_t n, size_t k, size_t ldx, const float *w, size_t m,
               const float *b, float *y, size_t ldy)
{
    if (n == 0 || m == 0) return;
    if (k == 0) {
        for (size_t i = 0; i < n; i++) memset(y + i * ldy, 0, m * sizeof *y);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)m, (int)k, 1.0f, x,
                    (int)ldx, w, (int)m, 0.0f, y, (int)ldy);
    }
    if (b) BR_ISA_CALL(add_bias, (y, n, m, ldy, b));
}

static inline BR_ISA_BODY void bias_relu_body(float *y, size_t n, size_t m, const float *b)
{
    for (size_t i = 0; i < n; i++) {
        float *yr = y + i * m;
#pragma omp simd
        for (size_t j = 0; j < m; j++) {
            float v = yr[j] + b[j];
            yr[j] = v > 0 ? v : 0.0f;
        }
    }
}
BR_ISA_VARIANTS(bias_relu, (float *y, size_t n, size_t m, const float *b), (y, n, m, b))

void br__nn_linear_relu(const float *x, size_t n, size_t k, const float *w, size_t m,
                        const float *b, float *y)
{
    br__nn_linear(x, n, k, k, w, m, NULL, y, m);
    BR_ISA_CALL(bias_relu, (y, n, m, b));
}

static inline BR_ISA_BODY void bias_residual_body(const float *tmp, size_t n, size_t m,
                                                  const float *b, float *acc)
{
    for (size_t i = 0; i < n; i++) {
        const float *t = tmp + i * m;
        float *a = acc + i * m;
#pragma omp simd
        for (size_t j = 0; j < m; j++) a[j] = (t[j] + b[j]) + a[j];
    }
}
BR_ISA_VARIANTS(bias_residual, (const float *tmp, size_t n, size_t m, const float *b, float *acc),
                (tmp, n, m, b, acc))

void br__nn_linear_residual(const float *x, size_t n, size_t k, const float *w, size_t m,
                        const float *b, float *tmp, float *acc)
{
    br__nn_linear(x, n, k, k, w, m, NULL, tmp, m);
    BR_ISA_CALL(bias_residual, (tmp, n, m, b, acc));
}

void br__nn_linear_ref(const float *x, size_t n, size_t k, size_t ldx, const float *w, size_t m,
                   const float *b, float *y, size_t ldy)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m; j++) {
            double acc = 0; /* double: the oracle should be the more exact one */
            for (size_t p = 0; p < k; p++) acc += (double)x[i * ldx + p] * w[p * m + j];
            float v = (float)acc;
            y[i * ldy + j] = b ? v + b[j] : v;
        }
}

static inline BR_ISA_BODY void layernorm_body(const float *x, size_t n, size_t d,
                                              const float *scale, const float *bias, float eps,
                                              float *y)
{
    for (size_t i = 0; i < n; i++) {
        const float *xr = x + i * d;
        float *yr = y + i * d;
        float sum = 0;
#pragma omp simd reduction(+ : sum)
        for (size_t j = 0; j < d; j++) sum += xr[j];
        float mean = sum / (float)d;
        float sq = 0;
#pragma omp simd reduction(+ : sq)
        for (size_t j = 0; j < d; j++) {
            float c = xr[j] - mean;
            sq += c * c;
        }
        float r = 1.0f / sqrtf(sq / (float)d + eps);
#pragma omp simd
        for (size_t j = 0; j < d; j++) {
            float c = xr[j] - mean;
            float s = scale[j] * r;
            yr[j] = s * c + bias[j];
        }
    }
}
BR_ISA_VARIANTS(layernorm,
                (const float *x, size_t n, size_t d, const float *scale, const float *bias,
                 float eps, float *y),
                (x, n, d, scale, bias, eps, y))

void br__nn_layernorm(const float *x, size_t n, size_t d, const float *scale, const float *bias,
                  float eps, float *y)
{
    BR_ISA_CALL(layernorm, (x, n, d, scale, bias, eps, y));
}

void br__nn_relu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0.0f;
}

void br__nn_add(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* Softmax of each row of s (rows, cols), in place. */
static void softmax_rows(float *s, size_t rows, size_t cols)
{
    for (size_t i = 0; i < rows; i++) {
        float *r = s + i * cols;
        float mx = r[0];
        for (size_t j = 1; j < cols; j++) mx = r[j] > mx ? r[j] : mx;
        float sum = 0;
        for (size_t j = 0; j < cols; j++) {
            r[j] = expf(r[j] - mx);
            sum += r[j];
        }
        for (size_t j = 0; j < cols; j++) r[j] /= sum;
    }
}

size_t br__nn_attention_ws(size_t L, size_t D)
{
    return L * D + L * L;
}

void br__nn_attention(const float *qkv, size_t L, size_t D, size_t heads, float scale, float *ws,
                  float *out, size_t ld_out)
{
    if (L == 0) return;
    size_t dh = D / heads, ld = 3 * D;
    float *q = ws, *s = ws + L * dh;
    for (size_t h = 0; h < heads; h++) {
        for (size_t i = 0; i < L; i++)
            for (size_t j = 0; j < dh; j++) q[i * dh + j] = qkv[i * ld + h * dh + j] * scale;
        /* s (L, L) = q (L, dh) . k_h (L, dh)^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)L, (int)L, (int)dh, 1.0f, q,
                    (int)dh, qkv + D + h * dh, (int)ld, 0.0f, s, (int)L);
        softmax_rows(s, L, L);
        /* out_h (L, dh) = s (L, L) . v_h (L, dh) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)L, (int)dh, (int)L, 1.0f, s,
                    (int)L, qkv + 2 * D + h * dh, (int)ld, 0.0f, out + h * dh, (int)ld_out);
    }
}

void br__nn_attention_ref(const float *qkv, size_t L, size_t D, size_t heads, float scale,
                          float *out, size_t ld_out)
{
    size_t dh = D / heads, ld = 3 * D;
    for (size_t h = 0; h < heads; h++)
        for (size_t i = 0; i < L; i++) {
            /* Two passes over the keys: max, then the normalised sum. */
            double mx = -INFINITY;
            for (size_t j = 0; j < L; j++) {
                double dot = 0;
                for (size_t p = 0; p < dh; p++)
                    dot +=
                        (double)(qkv[i * ld + h * dh + p] * scale) * qkv[j * ld + D + h * dh + p];
                mx = dot > mx ? dot : mx;
            }
            double den = 0;
            double acc[1024];
            for (size_t p = 0; p < dh && p < 1024; p++) acc[p] = 0;
            for (size_t j = 0; j < L; j++) {
                double dot = 0;
                for (size_t p = 0; p < dh; p++)
                    dot +=
                        (double)(qkv[i * ld + h * dh + p] * scale) * qkv[j * ld + D + h * dh + p];
                double e = exp(dot - mx);
                den += e;
                for (size_t p = 0; p < dh && p < 1024; p++)
                    acc[p] += e * qkv[j * ld + 2 * D + h * dh + p];
            }
            for (size_t p = 0; p < dh && p < 1024; p++)
                out[i * ld_out + h * dh + p] = (float)(acc[p] / den);
        }
}
