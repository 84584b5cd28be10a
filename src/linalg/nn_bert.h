/*
 * nn_bert.h (internal): the kernels the BERT encoder needs beyond the shared
 * ones in nn.h (which it also uses: br__nn_attention, br__nn_layernorm). Pure functions:
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
void br__nnb_linear(const float *x, size_t n, size_t k, size_t ldx, const float *w, size_t m,
                const float *b, float *y, size_t ldy);
void br__nnb_linear_ref(const float *x, size_t n, size_t k, size_t ldx, const float *w, size_t m,
                    const float *b, float *y, size_t ldy);

/* The same product with the weights packed once (at load) in the layout
 * the AVX-512 micro-kernel streams: panels of NNB_NR output columns, each
 * (k, NNB_NR) row-major, the last panel zero-padded. No per-call packing of
 * the weights (OpenBLAS re-packs them on every call, which dominates on a
 * single sentence), bias in the accumulators, and optionally the exact GELU
 * applied to each output tile while it is in L1:
 *   y (n, m) = [gelu](x (n, k) . w^T + b)
 * br__nnb_pack_available() is 0 where the CPU lacks AVX-512 (then use
 * br__nnb_linear and br__nnb_bias_gelu). wp: br__nnb_pack_floats(m, k) floats, 64-byte
 * aligned, from br__nnb_pack_weights(w (m, k)). b may be NULL. */
#define NNB_NR 32
int br__nnb_pack_available(void);
size_t br__nnb_pack_floats(size_t m, size_t k);
void br__nnb_pack_weights(const float *w, size_t m, size_t k, float *wp);
/* ws: threads x br__nnb_linear_packed_ws() floats, 64-byte aligned, where
 * threads = br_get_num_threads() (rows of x are repacked there). */
size_t br__nnb_linear_packed_ws(void);
void br__nnb_linear_packed(const float *x, size_t n, size_t k, size_t ldx, const float *wp,
                           size_t m, const float *b, int gelu, float *ws, float *y, size_t ldy);

/* x (n, d) = gelu(x + b (d,)), gelu(v) = v * Phi(v) = 0.5 v (1 + erf(v / sqrt 2))
 * (the exact-erf GELU, not the tanh approximation). The fast version
 * evaluates erf with a rational approximation (|error| < 2e-7 in Phi). */
void br__nnb_bias_gelu(float *x, size_t n, size_t d, const float *b);
void br__nnb_bias_gelu_ref(float *x, size_t n, size_t d, const float *b);

/* x (n, d) = LayerNorm(x + r (n, d) [+ rb (d,)]) * g (d,) + b (d,): the
 * post-norm residual step. rb (the bias of the product r) may be NULL.
 * Biased variance, eps inside the square root, as torch.nn.LayerNorm. */
void br__nnb_add_layernorm(float *x, const float *r, const float *rb, size_t n, size_t d,
                       const float *g, const float *b, float eps);
void br__nnb_add_layernorm_ref(float *x, const float *r, const float *rb, size_t n, size_t d,
                           const float *g, const float *b, float eps);

/* Multi-head self-attention of one sequence of L tokens, no mask (the
 * caller passes only real tokens), the layout of br__nn_attention: qkv (L, 3D)
 * with the query, key and value blocks side by side, head h in columns
 * [h*dh, (h+1)*dh) of each, out (L, D) with row stride ld_out. Differs from
 * br__nn_attention in how, not what: the scale is applied by the q.k^T sgemm
 * (alpha) instead of to a copy of q, and the softmax is vectorised (its
 * exp is most of attention's cost on long texts). ws: br__nnb_attention_ws(L)
 * floats. */
size_t br__nnb_attention_ws(size_t L);
void br__nnb_attention(const float *qkv, size_t L, size_t D, size_t heads, float scale, float *ws,
                   float *out, size_t ld_out);

/* br__nnb_attention on the packed product's micro-kernel (AVX-512): per head,
 * the keys and values are packed as weight panels, and each tile of query
 * rows runs q.k^T, the softmax (scale folded into its exponent) and p.v
 * while its scores are in L1; no BLAS call, no (L, L) matrix. Needs
 * br__nnb_pack_available(), L <= br__nnb_attention_packed_max_len() and
 * D / heads <= 64; otherwise it runs br__nnb_attention (same ws size rule:
 * br__nnb_attention_packed_ws floats, 64-byte aligned). */
size_t br__nnb_attention_packed_max_len(void);
size_t br__nnb_attention_packed_ws(size_t L, size_t D, size_t heads);
void br__nnb_attention_packed(const float *qkv, size_t L, size_t D, size_t heads, float scale,
                          float *ws, float *out, size_t ld_out);

/* Softmax of each row of s (rows, cols), in place; fast and plain twins. */
void br__nnb_softmax_rows(float *s, size_t rows, size_t cols);
void br__nnb_softmax_rows_ref(float *s, size_t rows, size_t cols);

#endif
