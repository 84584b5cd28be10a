/*
 * nn_bert.h (internal): the kernels the BERT encoder needs beyond the shared
 * ones in nn.h (which it also uses: nn_attention, nn_layernorm). Pure functions:
 * caller-owned buffers, const inputs, row-major shapes in the comments.
 * Each optimised kernel has a plain `_ref` twin: the test oracle.
 *
 * Weights are in PyTorch's nn.Linear layout, w (out, in): y = x . w^T + b.
 */
#ifndef BR_LINALG_NN_BERT_H
#define BR_LINALG_NN_BERT_H

#include <stddef.h>

/* y (n, m) = x (n, k) . w (m, k)^T [+ b (m,)]; b may be NULL. Row strides
 * ldx >= k and ldy >= m. */
void nnb_linear(const float *x, size_t n, size_t k, size_t ldx, const float *w, size_t m,
                const float *b, float *y, size_t ldy);
void nnb_linear_ref(const float *x, size_t n, size_t k, size_t ldx, const float *w, size_t m,
                    const float *b, float *y, size_t ldy);

/* x (n, d) = gelu(x + b (d,)), gelu(v) = v * Phi(v) = 0.5 v (1 + erf(v / sqrt 2))
 * (the exact-erf GELU, not the tanh approximation). The fast version
 * evaluates erf with a rational approximation (|error| < 2e-7 in Phi). */
void nnb_bias_gelu(float *x, size_t n, size_t d, const float *b);
void nnb_bias_gelu_ref(float *x, size_t n, size_t d, const float *b);

/* x (n, d) = LayerNorm(x + r (n, d) [+ rb (d,)]) * g (d,) + b (d,): the
 * post-norm residual step. rb (the bias of the product r) may be NULL.
 * Biased variance, eps inside the square root, as torch.nn.LayerNorm. */
void nnb_add_layernorm(float *x, const float *r, const float *rb, size_t n, size_t d,
                       const float *g, const float *b, float eps);
void nnb_add_layernorm_ref(float *x, const float *r, const float *rb, size_t n, size_t d,
                           const float *g, const float *b, float eps);

/* Multi-head self-attention of one sequence of L tokens, no mask (the
 * caller passes only real tokens), the layout of nn_attention: qkv (L, 3D)
 * with the query, key and value blocks side by side, head h in columns
 * [h*dh, (h+1)*dh) of each, out (L, D) with row stride ld_out. Differs from
 * nn_attention in how, not what: the scale is applied by the q.k^T sgemm
 * (alpha) instead of to a copy of q, and the softmax is vectorised (its
 * exp is most of attention's cost on long texts). ws: nnb_attention_ws(L)
 * floats. */
size_t nnb_attention_ws(size_t L);
void nnb_attention(const float *qkv, size_t L, size_t D, size_t heads, float scale, float *ws,
                   float *out, size_t ld_out);

/* Softmax of each row of s (rows, cols), in place; fast and plain twins. */
void nnb_softmax_rows(float *s, size_t rows, size_t cols);
void nnb_softmax_rows_ref(float *s, size_t rows, size_t cols);

#endif
