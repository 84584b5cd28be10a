/*
 * use_encoder.c: the use-lite forward pass, batched.
 *
 * The TF.js graph pads a batch to its longest text and masks the padding
 * (id -1; the unknown id 0 is a real token). Nothing in it lets a padded
 * position influence a real one: every step but attention is per token, and
 * attention gives padded keys a -1e9 bias, so their softmax weight is
 * exactly 0 in float32. So bookrec packs the real tokens of many texts into
 * one (T, width) matrix, with no padding at all, runs every projection as one
 * cblas_sgemm over all T tokens, and runs attention text by text on the
 * texts' own rows. The output is the graph's, with none of its padding work.
 *
 * Per token (graph order, widths E=256, D=512, F=1536):
 *   x0 = emb[id] + (emb[id] + timing[pos])     (the graph adds the embedding
 *                                               twice: AddTimingSignal adds
 *                                               to it, then Layer_0/add
 *                                               adds the result to it again)
 *   layer 0: a = MHA(LN(x0)) . Wo + bo;  x = a + (x0 . Wr + br)
 *            x = FFN(LN(x)) + x,  FFN(h) = relu(h . W1 + b1) . W2 + b2
 *   layer 1: x = MHA(LN(x)) . Wo + bo + x;  x = FFN(LN(x)) + x
 * Per text: p = sum(x) / max(len, 1); y = tanh(p . Wf + bf); y / ||y||
 * (rsqrt of max(||y||^2, 1e-12)). A text with no tokens gets p = 0.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/bert.h"
#include "bookrec/encoder.h"
#include "linalg/nn.h"
#include "text/use_model.h"

/* Tokens per forward chunk: big enough that every sgemm runs near peak,
 * small enough that the workspace stays in tens of MB. */
#define CHUNK_TOKENS 2048

struct br_encoder {
    use_model m;
    use_tokenizer *tok;
    float *timing; /* (max_len, emb_dim): the sinusoid added at each position */
    br_bert *bert; /* set: a BERT model directory (bookrec/bert.h); every call forwards to it */
};

void br_encoder_close(br_encoder *enc)
{
    if (!enc) return;
    br_bert_close(enc->bert);
    br__use_tokenizer_free(enc->tok);
    br_aligned_free(enc->timing);
    br__use_model_release(&enc->m);
    br_free(enc);
}

/* OpenBLAS picks its kernels when it loads, from the CPU model; a CPU newer
 * than the OpenBLAS build (0.3.21 does not know Sapphire/Emerald Rapids)
 * gets the generic "Prescott" SSE3 kernels, about 5x slower than the
 * AVX-512 ones. The library cannot change that after the fact, so it says
 * how to (once per process). */
static void warn_slow_blas(void)
{
    static int warned;
    const char *better = br_blas_better_core();
    if (!better || __atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED)) return;
    br_log(BR_LOG_WARN,
           "OpenBLAS does not recognise this CPU and uses its slow generic kernels; "
           "set OPENBLAS_CORETYPE=%s for about 5x faster encoding",
           better);
}

br_status br_encoder_open_bert(const char *dir, size_t max_length, br_encoder **out)
{
    *out = NULL;
    br_encoder *enc = br_calloc(1, sizeof *enc);
    if (!enc) return br_error(BR_ENOMEM, "encoder");
    br_bert_options o = BR_BERT_OPTIONS_DEFAULT;
    o.max_length = max_length;
    br_status s = br_bert_open(dir, &o, &enc->bert);
    if (s != BR_OK) {
        br_free(enc);
        return s;
    }
    *out = enc;
    return BR_OK;
}

br_status br_encoder_open(const char *path, br_encoder **out)
{
    *out = NULL;
    if (!path) return br_error(BR_EINVAL, "br_encoder_open: no path");
    if (!strncmp(path, BR_ENCODER_BERT_PREFIX, strlen(BR_ENCODER_BERT_PREFIX)))
        return br_encoder_open_bert(path + strlen(BR_ENCODER_BERT_PREFIX), 0, out);
    if (br_bert_is_model_dir(path)) return br_encoder_open_bert(path, 0, out);
    br_encoder *enc = br_calloc(1, sizeof *enc);
    if (!enc) return br_error(BR_ENOMEM, "encoder");
    br_status s = br__use_model_map(path, &enc->m);
    if (s == BR_OK) s = br__use_tokenizer_create(&enc->m, &enc->tok);
    if (s == BR_OK) {
        /* concat(sin(pos * inv), cos(pos * inv)) with the product rounded to
         * float32 first, as the graph computes it. */
        const use_model *m = &enc->m;
        size_t half = m->emb_dim / 2;
        enc->timing = br_aligned_alloc((size_t)m->max_len * m->emb_dim * sizeof(float), BR_ALIGN);
        if (!enc->timing) s = br_error(BR_ENOMEM, "timing signal");
        for (size_t p = 0; s == BR_OK && p < m->max_len; p++)
            for (size_t i = 0; i < half; i++) {
                float a = (float)p * m->timing_inv[i];
                enc->timing[p * m->emb_dim + i] = (float)sin((double)a);
                enc->timing[p * m->emb_dim + half + i] = (float)cos((double)a);
            }
    }
    if (s != BR_OK) {
        br_encoder_close(enc);
        return s;
    }
    warn_slow_blas();
    *out = enc;
    return BR_OK;
}

size_t br_encoder_dim(const br_encoder *enc)
{
    if (enc && enc->bert) return br_bert_dim(enc->bert);
    return enc ? enc->m.out_dim : 0;
}

size_t br_encoder_max_tokens(const br_encoder *enc)
{
    if (enc && enc->bert) return br_bert_max_length(enc->bert);
    return enc ? enc->m.max_len : 0;
}

size_t br_encoder_vocab_size(const br_encoder *enc)
{
    if (enc && enc->bert) return br_bert_vocab_size(enc->bert);
    return enc ? enc->m.vocab_size : 0;
}

const char *br_encoder_piece(const br_encoder *enc, int32_t id, size_t *len)
{
    if (enc && enc->bert) return br_bert_piece(enc->bert, id, len);
    if (!enc || id < 0 || (uint32_t)id >= enc->m.vocab_size) return NULL;
    if (len) *len = enc->m.piece_off[id + 1] - enc->m.piece_off[id];
    return enc->m.piece_bytes + enc->m.piece_off[id];
}

/* A BERT model in the terms of br_encoder_info. */
static br_status bert_info(const br_bert *bert, br_encoder_info *info)
{
    br_bert_info bi;
    br_status s = br_bert_get_info(bert, &bi);
    if (s != BR_OK) return s;
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "bert");
    snprintf(info->source, sizeof info->source, "model.safetensors (%s), %s", bi.dtype,
             bi.tokenizer);
    info->vocab_size = bi.vocab_size;
    info->embedding_rows = bi.vocab_size;
    info->embedding_dim = info->model_dim = info->output_dim = bi.hidden;
    info->heads = bi.heads;
    info->ff_dim = bi.intermediate;
    info->layers = bi.layers;
    info->max_tokens = bi.max_length;
    info->layernorm_eps = bi.layernorm_eps;
    info->file_bytes = bi.file_bytes;
    info->parameters = bi.parameters;
    return BR_OK;
}

br_status br_encoder_get_info(const br_encoder *enc, br_encoder_info *info)
{
    if (!enc || !info) return br_error(BR_EINVAL, "br_encoder_get_info: NULL argument");
    if (enc->bert) return bert_info(enc->bert, info);
    const use_model *m = &enc->m;
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "use-lite");
    snprintf(info->source, sizeof info->source, "%s", m->source);
    info->version = m->version;
    info->vocab_size = m->vocab_size;
    info->embedding_rows = m->emb_rows;
    info->embedding_dim = m->emb_dim;
    info->model_dim = m->model_dim;
    info->heads = m->heads;
    info->ff_dim = m->ff_dim;
    info->layers = m->n_layers;
    info->max_tokens = m->max_len;
    info->output_dim = m->out_dim;
    info->layernorm_eps = m->ln_eps;
    info->file_bytes = m->size;
    uint64_t p = (uint64_t)m->emb_rows * m->emb_dim + m->emb_dim / 2 +
                 (uint64_t)m->model_dim * m->out_dim + m->out_dim;
    for (uint32_t l = 0; l < m->n_layers; l++) {
        const use_layer *L = &m->layers[l];
        uint64_t d = L->d_in, md = L->d_model, f = m->ff_dim;
        p += 2 * d + d * 3 * d + 3 * d + d * md + md + 2 * md + md * f + f + f * md + md;
        if (L->res_w) p += d * md + md;
    }
    info->parameters = p;
    return BR_OK;
}

br_status br_encoder_tokenize(const br_encoder *enc, const char *text, int32_t **ids, size_t *n_ids)
{
    if (!enc || !text || !ids || !n_ids)
        return br_error(BR_EINVAL, "br_encoder_tokenize: NULL argument");
    if (enc->bert) return br_bert_tokenize(enc->bert, text, ids, n_ids);
    return br__use_tokenizer_encode(enc->tok, text, strlen(text), ids, n_ids);
}

/* ------------------------------------------------------------ forward pass -- */

typedef struct workspace {
    size_t cap_tokens, cap_texts;
    float *x0;  /* (T, E) layer-0 input */
    float *h;   /* (T, D) LayerNorm output / scratch */
    float *qkv; /* (T, 3D) */
    float *a;   /* (T, D) attention output / FFN output */
    float *x;   /* (T, D) residual stream */
    float *f;   /* (T, F) FFN hidden / residual projection */
    float *att; /* attention scratch, br__nn_attention_ws(max_len, D) */
    float *p;   /* (B, D) pooled */
    float *y;   /* (B, out) */
} workspace;

static void ws_free(workspace *w)
{
    float **bufs[] = {&w->x0, &w->h, &w->qkv, &w->a, &w->x, &w->f, &w->att, &w->p, &w->y};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        br_aligned_free(*bufs[i]);
        *bufs[i] = NULL;
    }
}

static br_status ws_alloc(workspace *w, const use_model *m, size_t T, size_t B)
{
    size_t E = m->emb_dim, D = m->model_dim, F = m->ff_dim;
    w->cap_tokens = T;
    w->cap_texts = B;
    size_t tt = T ? T : 1, bb = B ? B : 1;
    w->x0 = br_aligned_alloc(tt * E * sizeof(float), BR_ALIGN);
    w->h = br_aligned_alloc(tt * D * sizeof(float), BR_ALIGN);
    w->qkv = br_aligned_alloc(tt * 3 * D * sizeof(float), BR_ALIGN);
    w->a = br_aligned_alloc(tt * D * sizeof(float), BR_ALIGN);
    w->x = br_aligned_alloc(tt * D * sizeof(float), BR_ALIGN);
    w->f = br_aligned_alloc(tt * (F > D ? F : D) * sizeof(float), BR_ALIGN);
    w->att = br_aligned_alloc(br__nn_attention_ws(m->max_len, D) * sizeof(float), BR_ALIGN);
    w->p = br_aligned_alloc(bb * D * sizeof(float), BR_ALIGN);
    w->y = br_aligned_alloc(bb * m->out_dim * sizeof(float), BR_ALIGN);
    if (!w->x0 || !w->h || !w->qkv || !w->a || !w->x || !w->f || !w->att || !w->p || !w->y) {
        ws_free(w);
        return br_error(BR_ENOMEM, "encoder workspace (%zu tokens)", T);
    }
    return BR_OK;
}

/* Attention for every text of the chunk, on its own rows. */
static void attention_all(const use_layer *L, const size_t *start, const size_t *len, size_t B,
                          workspace *w, float *out)
{
    size_t D = L->d_in;
    for (size_t b = 0; b < B; b++)
        if (len[b])
            br__nn_attention(w->qkv + start[b] * 3 * D, len[b], D, L->heads, L->attn_scale, w->att,
                         out + start[b] * D, D);
}

/* One chunk: B texts, their tokens packed (T rows), text b at rows
 * [start[b], start[b] + len[b]). Writes B embeddings to out (B, out_dim). */
static void forward_chunk(const br_encoder *enc, int32_t *const *ids, const size_t *start,
                          const size_t *len, size_t B, size_t T, workspace *w, float *out)
{
    const use_model *m = &enc->m;
    const size_t E = m->emb_dim, D = m->model_dim, F = m->ff_dim, O = m->out_dim;
    const use_layer *L0 = &m->layers[0], *L1 = &m->layers[1];
    /* x0 = emb + (emb + timing) */
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < len[b]; t++) {
            const float *e = m->emb + (size_t)ids[b][t] * E;
            const float *tm = enc->timing + t * E;
            float *x = w->x0 + (start[b] + t) * E;
            for (size_t j = 0; j < E; j++) x[j] = e[j] + (e[j] + tm[j]);
        }

    if (T > 0) {
        /* Layer 0 (E -> D). */
        br__nn_layernorm(w->x0, T, E, L0->ln1_s, L0->ln1_b, m->ln_eps, w->h);
        br__nn_linear(w->h, T, E, E, L0->qkv_w, 3 * E, L0->qkv_b, w->qkv, 3 * E);
        attention_all(L0, start, len, B, w, w->a);
        br__nn_linear(w->x0, T, E, E, L0->res_w, D, L0->res_b, w->x, D);
        br__nn_linear_residual(w->a, T, E, L0->out_w, D, L0->out_b, w->h, w->x);
        br__nn_layernorm(w->x, T, D, L0->ln2_s, L0->ln2_b, m->ln_eps, w->h);
        br__nn_linear_relu(w->h, T, D, L0->ff1_w, F, L0->ff1_b, w->f);
        br__nn_linear_residual(w->f, T, F, L0->ff2_w, D, L0->ff2_b, w->a, w->x);

        /* Layer 1 (D -> D). */
        br__nn_layernorm(w->x, T, D, L1->ln1_s, L1->ln1_b, m->ln_eps, w->h);
        br__nn_linear(w->h, T, D, D, L1->qkv_w, 3 * D, L1->qkv_b, w->qkv, 3 * D);
        attention_all(L1, start, len, B, w, w->a);
        br__nn_linear_residual(w->a, T, D, L1->out_w, D, L1->out_b, w->h, w->x);
        br__nn_layernorm(w->x, T, D, L1->ln2_s, L1->ln2_b, m->ln_eps, w->h);
        br__nn_linear_relu(w->h, T, D, L1->ff1_w, F, L1->ff1_b, w->f);
        br__nn_linear_residual(w->f, T, F, L1->ff2_w, D, L1->ff2_b, w->a, w->x);
    }

    /* Mean over each text's tokens (divided by max(len, 1)). */
    for (size_t b = 0; b < B; b++) {
        float *p = w->p + b * D;
        memset(p, 0, D * sizeof *p);
        for (size_t t = 0; t < len[b]; t++) br__nn_add(p, w->x + (start[b] + t) * D, D);
        float cnt = (float)(len[b] > 0 ? len[b] : 1);
        for (size_t j = 0; j < D; j++) p[j] /= cnt;
    }
    br__nn_linear(w->p, B, D, D, m->final_w, O, m->final_b, w->y, O);
    for (size_t b = 0; b < B; b++) {
        float *y = w->y + b * O, *o = out + b * O;
        float sq = 0;
        for (size_t j = 0; j < O; j++) {
            y[j] = (float)tanh((double)y[j]);
            sq += y[j] * y[j];
        }
        float r = 1.0f / sqrtf(sq > m->l2_eps ? sq : m->l2_eps);
        for (size_t j = 0; j < O; j++) o[j] = y[j] * r;
    }
}

br_status br_encoder_embed(const br_encoder *enc, const char *const *texts, size_t n, float *out)
{
    if (!enc || (n && (!texts || !out)))
        return br_error(BR_EINVAL, "br_encoder_embed: NULL argument");
    if (n == 0) return BR_OK;
    for (size_t i = 0; i < n; i++)
        if (!texts[i]) return br_error(BR_EINVAL, "br_encoder_embed: text %zu is NULL", i);
    if (enc->bert) return br_bert_embed(enc->bert, texts, n, out);
    const use_model *m = &enc->m;

    int32_t **ids = br_calloc(n, sizeof *ids);
    size_t *lens = br_calloc(n, sizeof *lens);
    size_t *start = br_calloc(n, sizeof *start);
    if (!ids || !lens || !start) {
        br_free(ids), br_free(lens), br_free(start);
        return br_error(BR_ENOMEM, "embedding %zu texts", n);
    }

    /* Tokenize everything first (in parallel: integer work that overlaps
     * well on hyper-threads); the graph reads the first max_len tokens. */
    br_status st = BR_OK;
#pragma omp parallel for num_threads(br_get_num_threads()) schedule(dynamic, 16)
    for (size_t i = 0; i < n; i++) {
        size_t k;
        br_status s = br__use_tokenizer_encode(enc->tok, texts[i], strlen(texts[i]), &ids[i], &k);
        if (s != BR_OK) {
#pragma omp critical(br_encoder_err)
            st = s;
        }
        lens[i] = k < m->max_len ? k : m->max_len;
    }

    /* Chunks of consecutive texts up to CHUNK_TOKENS tokens. */
    workspace w = {0};
    size_t cap_t = 0, cap_b = 0;
    if (st == BR_OK) {
        size_t t = 0, b = 0;
        for (size_t i = 0; i < n; i++) {
            if (t + lens[i] > CHUNK_TOKENS && b > 0) {
                cap_t = t > cap_t ? t : cap_t, cap_b = b > cap_b ? b : cap_b;
                t = 0, b = 0;
            }
            t += lens[i], b++;
        }
        cap_t = t > cap_t ? t : cap_t, cap_b = b > cap_b ? b : cap_b;
        st = ws_alloc(&w, m, cap_t, cap_b);
    }
    br_progress prog;
    br_progress_begin(&prog, "embed", n);
    for (size_t i = 0; st == BR_OK && i < n;) {
        size_t t = 0, b = 0;
        while (i + b < n && (b == 0 || t + lens[i + b] <= CHUNK_TOKENS)) {
            start[i + b] = t;
            t += lens[i + b];
            b++;
        }
        forward_chunk(enc, ids + i, start + i, lens + i, b, t, &w, out + i * m->out_dim);
        i += b;
        st = br_progress_update(&prog, i);
    }
    if (st == BR_OK) st = br_progress_end(&prog);

    ws_free(&w);
    for (size_t i = 0; i < n; i++) br_free(ids[i]);
    br_free(ids);
    br_free(lens);
    br_free(start);
    return st;
}
