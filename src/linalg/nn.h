/*
 * nn.h (internal): the neural-network kernels the sentence encoders share
 * (use-lite now, BERT/MiniLM later). Pure functions: caller-owned buffers,
 * const inputs, row-major shapes in the comments, no I/O, no allocation.
 * Each optimised kernel has a plain `_ref` twin beside it: the test oracle.
 *
 * Rounding follows the TF.js graphs these port: a matrix product is
 * rounded to float32 before its bias is added, LayerNorm multiplies
 * (scale * rsqrt(var + eps)) by (x - mean) and then adds the bias.
 */
#ifndef BR_LINALG_NN_H
#define BR_LINALG_NN_H

#include <stddef.h>

/* y (n, m) = x (n, k) . w (k, m) [+ b (m,)]; b may be NULL. Rows of x and y
 * have strides ldx and ldy (>= k, >= m). cblas_sgemm, then the bias. */
void br__nn_linear(const float *x, size_t n, size_t k, size_t ldx, const float *w, size_t m,
               const float *b, float *y, size_t ldy);
void br__nn_linear_ref(const float *x, size_t n, size_t k, size_t ldx, const float *w, size_t m,
                   const float *b, float *y, size_t ldy);

/* The same product with the graph's next step folded into the bias pass:
 * relu:     y = max(x . w + b, 0)
 * residual: acc = (x . w + b) + acc, with tmp (n, m) as the product's
 *           scratch (acc and tmp rows contiguous, m wide). */
void br__nn_linear_relu(const float *x, size_t n, size_t k, const float *w, size_t m,
                        const float *b, float *y);
void br__nn_linear_residual(const float *x, size_t n, size_t k, const float *w, size_t m,
                        const float *b, float *tmp, float *acc);

/* y (n, d) = LayerNorm(x (n, d)) * scale (d,) + bias (d,), biased variance.
 * In place (y == x) is allowed. */
void br__nn_layernorm(const float *x, size_t n, size_t d, const float *scale, const float *bias,
                  float eps, float *y);

/* x (n,) = max(x, 0) */
void br__nn_relu(float *x, size_t n);
/* y (n,) += x (n,) */
void br__nn_add(float *y, const float *x, size_t n);

/* Multi-head self-attention of one sequence of L tokens (no mask: the
 * caller passes only real tokens). qkv (L, 3D): the query, key and value
 * projections side by side, each D = heads * dh wide, head h in columns
 * [h*dh, (h+1)*dh) of its block. out (L, D), row stride ld_out.
 * q is scaled by `scale` before q.k^T (as the graph does), softmax over
 * keys, then weights . v. ws: workspace of br__nn_attention_ws(L, D) floats. */
size_t br__nn_attention_ws(size_t L, size_t D);
void br__nn_attention(const float *qkv, size_t L, size_t D, size_t heads, float scale, float *ws,
                  float *out, size_t ld_out);
void br__nn_attention_ref(const float *qkv, size_t L, size_t D, size_t heads, float scale,
                          float *out, size_t ld_out);

#endif
