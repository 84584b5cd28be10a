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

#endif
