/*
 * bert.c: BERT sentence encoders from a Hugging Face model directory (see
 * bookrec/bert.h), exact to sentence-transformers within float32 rounding.
 *
 * The forward pass never pads. PyTorch pads a batch to its longest text and
 * masks the padding out of attention; padded positions then cannot change a
 * real one (every step but attention is per token, and masked keys get
 * weight exactly 0), so the result of each text is that of the text alone.
 * bookrec therefore packs the real tokens of many texts into one
 * (T, hidden) matrix, runs every projection as one sgemm over all T rows
 * (large, efficient products even when the texts are short), and runs
 * attention text by text on each text's own rows. Texts are sorted by
 * length before packing so that a chunk holds texts of similar length:
 * that keeps the attention workspace small and the chunks even.
 *
 * Per chunk (widths H hidden, I intermediate; rows are tokens):
 *   x   = LayerNorm(word[id] + pos[t] + type[0])
 *   per layer (post-norm):
 *     qkv = x . Wqkv^T + bqkv                        (T, 3H)
 *     ctx = softmax(q k^T / sqrt(dh)) v, per text and head (br__nnb_attention)
 *     x   = LayerNorm(x + ctx . Wo^T + bo)
 *     x   = LayerNorm(x + gelu(x . W1^T + b1) . W2^T + b2)
 *   pool over each text's rows (mean / [CLS] / max), then x / max(|x|, 1e-12)
 */
#define _GNU_SOURCE
#include "text/bert.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "linalg/nn.h"
#include "linalg/nn_bert.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Tokens per forward chunk: enough rows that every sgemm runs near peak
 * (the weights are streamed once per chunk), few enough that the
 * activations stay within the 2nd-level cache's reach. */
#define CHUNK_TOKENS 2048

/* ------------------------------------------------------------- loading --- */

static br_status join_path(char *buf, size_t cap, const char *dir, const char *name)
{
    if ((size_t)snprintf(buf, cap, "%s/%s", dir, name) >= cap)
        return br_error(BR_EINVAL, "path too long: %s/%s", dir, name);
    return BR_OK;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int br_bert_is_model_dir(const char *path)
{
    char p[4096];
    struct stat sb;
    if (!path || stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return 0;
    if (join_path(p, sizeof p, path, "config.json") != BR_OK || !file_exists(p)) return 0;
    return join_path(p, sizeof p, path, "model.safetensors") == BR_OK && file_exists(p);
}

/* Loads a JSON file; NULL with *st set when missing (BR_ENOTFOUND) or bad. */
static json_t *load_json(const char *path, br_status *st)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    if (!j)
        *st = file_exists(path) ? br_error(BR_EPARSE, "%s:%d: %s", path, jerr.line, jerr.text)
                                : br_error(BR_ENOTFOUND, "%s: no such file", path);
    return j;
}

static int get_size(json_t *o, const char *key, size_t dflt, size_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        *out = dflt;
        return dflt != 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > (1 << 24))
        return 0;
    *out = (size_t)json_integer_value(v);
    return 1;
}

br_status br__bert_parse_config(const char *path, bert_config *c)
{
    br_status st = BR_OK;
    json_t *j = load_json(path, &st);
    if (!j) return st;
    memset(c, 0, sizeof *c);
    const char *bad = NULL;
    if (!json_is_object(j))
        bad = "not a JSON object";
    else if (!get_size(j, "hidden_size", 0, &c->hidden))
        bad = "hidden_size";
    else if (!get_size(j, "num_attention_heads", 0, &c->heads))
        bad = "num_attention_heads";
    else if (!get_size(j, "num_hidden_layers", 0, &c->layers))
        bad = "num_hidden_layers";
    else if (!get_size(j, "intermediate_size", 0, &c->inter))
        bad = "intermediate_size";
    else if (!get_size(j, "vocab_size", 0, &c->vocab))
        bad = "vocab_size";
    else if (!get_size(j, "max_position_embeddings", 512, &c->max_pos))
        bad = "max_position_embeddings";
    else if (!get_size(j, "type_vocab_size", 2, &c->type_vocab))
        bad = "type_vocab_size";
    if (bad) {
        json_decref(j);
        return br_error(BR_EFORMAT, "%s: missing or bad %s", path, bad);
    }
    json_t *eps = json_object_get(j, "layer_norm_eps");
    c->eps = json_is_number(eps) ? (float)json_number_value(eps) : 1e-12f;
    json_t *mt = json_object_get(j, "model_type"), *act = json_object_get(j, "hidden_act"),
           *pe = json_object_get(j, "position_embedding_type");
    if (mt && (!json_is_string(mt) || strcmp(json_string_value(mt), "bert")))
        st = br_error(BR_EUNSUPPORTED, "%s: model_type '%s' (bookrec runs 'bert')", path,
                      json_is_string(mt) ? json_string_value(mt) : "?");
    else if (act && (!json_is_string(act) || strcmp(json_string_value(act), "gelu")))
        st = br_error(BR_EUNSUPPORTED, "%s: hidden_act '%s' (bookrec runs 'gelu')", path,
                      json_is_string(act) ? json_string_value(act) : "?");
    else if (pe && (!json_is_string(pe) || strcmp(json_string_value(pe), "absolute")))
        st = br_error(BR_EUNSUPPORTED, "%s: position_embedding_type '%s' (only 'absolute')", path,
                      json_is_string(pe) ? json_string_value(pe) : "?");
    else if (c->hidden % c->heads)
        st = br_error(BR_EFORMAT, "%s: hidden_size %zu is not a multiple of %zu heads", path,
                      c->hidden, c->heads);
    else if (!(c->eps > 0) || c->eps > 1)
        st = br_error(BR_EFORMAT, "%s: bad layer_norm_eps", path);
    json_decref(j);
    return st;
}

static br_status own(br_bert *b, float *p)
{
    if (b->n_owned == b->cap_owned) {
        size_t nc = b->cap_owned * 2 + 32;
        float **no = br_realloc(b->owned, nc * sizeof *no);
        if (!no) return br_error(BR_ENOMEM, "model tensors");
        b->owned = no, b->cap_owned = nc;
    }
    b->owned[b->n_owned++] = p;
    return BR_OK;
}

/* The tensor `name` (with or without the "bert." prefix of BertFor*
 * checkpoints) of shape (d0[, d1]) as float32. */
static br_status weight(br_bert *b, const char *name, size_t d0, size_t d1, const float **out)
{
    const st_tensor *t = br__st_find(b->st, name);
    if (!t) {
        char pn[256];
        snprintf(pn, sizeof pn, "bert.%s", name);
        t = br__st_find(b->st, pn);
    }
    if (!t) return br_error(BR_EFORMAT, "model.safetensors: no tensor '%s'", name);
    int ok = d1 ? t->ndim == 2 && t->shape[0] == d0 && t->shape[1] == d1
                : t->ndim == 1 && t->shape[0] == d0;
    if (!ok)
        return br_error(BR_EFORMAT,
                        "model.safetensors: tensor '%s' has shape (%llu%s%llu), "
                        "config.json implies (%zu, %zu)",
                        name, (unsigned long long)t->shape[0], t->ndim > 1 ? ", " : "",
                        t->ndim > 1 ? (unsigned long long)t->shape[1] : 0ull, d0, d1);
    const float *v = br__st_f32_view(t);
    if (v) {
        *out = v;
        return BR_OK;
    }
    float *p = br_aligned_alloc(t->count * sizeof *p, BR_ALIGN);
    if (!p) return br_error(BR_ENOMEM, "tensor '%s'", name);
    br_status s = br__st_to_f32(t, p);
    if (s == BR_OK) s = own(b, p);
    if (s != BR_OK) {
        br_aligned_free(p);
        return s;
    }
    *out = p;
    return BR_OK;
}

static br_status load_layer(br_bert *b, size_t l)
{
    const size_t H = b->c.hidden, I = b->c.inter;
    bert_layer *L = &b->layers[l];
    char n[160];
    const float *q, *k, *v, *qb, *kb, *vb;
    br_status s = BR_OK;
#define W(field, suffix, d0, d1)                                                                   \
    do {                                                                                           \
        snprintf(n, sizeof n, "encoder.layer.%zu.%s", l, suffix);                                  \
        if (s == BR_OK) s = weight(b, n, d0, d1, field);                                           \
    } while (0)
    W(&q, "attention.self.query.weight", H, H);
    W(&k, "attention.self.key.weight", H, H);
    W(&v, "attention.self.value.weight", H, H);
    W(&qb, "attention.self.query.bias", H, 0);
    W(&kb, "attention.self.key.bias", H, 0);
    W(&vb, "attention.self.value.bias", H, 0);
    W(&L->wo, "attention.output.dense.weight", H, H);
    W(&L->bo, "attention.output.dense.bias", H, 0);
    W(&L->ln1_g, "attention.output.LayerNorm.weight", H, 0);
    W(&L->ln1_b, "attention.output.LayerNorm.bias", H, 0);
    W(&L->w1, "intermediate.dense.weight", I, H);
    W(&L->b1, "intermediate.dense.bias", I, 0);
    W(&L->w2, "output.dense.weight", H, I);
    W(&L->b2, "output.dense.bias", H, 0);
    W(&L->ln2_g, "output.LayerNorm.weight", H, 0);
    W(&L->ln2_b, "output.LayerNorm.bias", H, 0);
#undef W
    if (s != BR_OK) return s;
    /* One (3H, H) projection instead of three: one sgemm per layer with a
     * 3x wider output, laid out as br__nn_attention reads it. */
    float *w = br_aligned_alloc((3 * H * H + 3 * H) * sizeof *w, BR_ALIGN);
    if (!w) return br_error(BR_ENOMEM, "layer %zu", l);
    memcpy(w, q, H * H * sizeof *w);
    memcpy(w + H * H, k, H * H * sizeof *w);
    memcpy(w + 2 * H * H, v, H * H * sizeof *w);
    float *bq = w + 3 * H * H;
    memcpy(bq, qb, H * sizeof *w);
    memcpy(bq + H, kb, H * sizeof *w);
    memcpy(bq + 2 * H, vb, H * sizeof *w);
    s = own(b, w);
    if (s != BR_OK) {
        br_aligned_free(w);
        return s;
    }
    L->wqkv = w;
    L->bqkv = bq;
    if (!br__nnb_pack_available()) return BR_OK;
    /* Each product's weights once more, in the micro-kernel's layout: packed
     * here once instead of by sgemm on every call. */
    const struct {
        const float *w;
        size_t m, k;
        const float **out;
    } pk[] = {{L->wqkv, 3 * H, H, &L->pqkv},
              {L->wo, H, H, &L->po},
              {L->w1, I, H, &L->p1},
              {L->w2, H, I, &L->p2}};
    for (size_t i = 0; i < sizeof pk / sizeof *pk; i++) {
        float *p = br_aligned_alloc(br__nnb_pack_floats(pk[i].m, pk[i].k) * sizeof *p, BR_ALIGN);
        if (!p) return br_error(BR_ENOMEM, "layer %zu", l);
        br__nnb_pack_weights(pk[i].w, pk[i].m, pk[i].k, p);
        if ((s = own(b, p)) != BR_OK) {
            br_aligned_free(p);
            return s;
        }
        *pk[i].out = p;
    }
    return BR_OK;
}

/* sentence-transformers' files: max_seq_length, pooling, Normalize. */
static br_status load_st_configs(br_bert *b, const char *dir, const br_bert_options *opts)
{
    char p[4096];
    br_status s = BR_OK;
    size_t max_len = BR_BERT_DEFAULT_MAX_LENGTH;
    if ((s = join_path(p, sizeof p, dir, "sentence_bert_config.json")) != BR_OK) return s;
    if (file_exists(p)) {
        json_t *j = load_json(p, &s);
        if (!j) return s;
        json_t *m = json_object_get(j, "max_seq_length");
        if (json_is_integer(m) && json_integer_value(m) > 0)
            max_len = (size_t)json_integer_value(m);
        else if (m && !json_is_null(m))
            s = br_error(BR_EFORMAT, "%s: bad max_seq_length", p);
        json_decref(j);
        if (s != BR_OK) return s;
    }
    if (opts && opts->max_length) max_len = opts->max_length;
    if (max_len > b->c.max_pos) max_len = b->c.max_pos;
    if (max_len < 2)
        return br_error(BR_ERANGE, "max length %zu: at least 2 ([CLS], [SEP])", max_len);
    b->max_len = max_len;

    b->pooling = BR_BERT_POOL_MEAN;
    if ((s = join_path(p, sizeof p, dir, "1_Pooling/config.json")) != BR_OK) return s;
    if (file_exists(p)) {
        json_t *j = load_json(p, &s);
        if (!j) return s;
        int mean = json_is_true(json_object_get(j, "pooling_mode_mean_tokens"));
        int cls = json_is_true(json_object_get(j, "pooling_mode_cls_token"));
        int mx = json_is_true(json_object_get(j, "pooling_mode_max_tokens"));
        static const char *const others[] = {"pooling_mode_mean_sqrt_len_tokens",
                                             "pooling_mode_weightedmean_tokens",
                                             "pooling_mode_lasttoken"};
        int other = 0;
        for (size_t i = 0; i < 3; i++) other |= json_is_true(json_object_get(j, others[i]));
        json_decref(j);
        if (mean + cls + mx != 1 || other)
            return br_error(BR_EUNSUPPORTED,
                            "%s: bookrec pools by exactly one of mean, cls "
                            "or max tokens",
                            p);
        b->pooling = mean ? BR_BERT_POOL_MEAN : cls ? BR_BERT_POOL_CLS : BR_BERT_POOL_MAX;
    }

    b->normalize = 1;
    if ((s = join_path(p, sizeof p, dir, "modules.json")) != BR_OK) return s;
    if (file_exists(p)) {
        json_t *j = load_json(p, &s);
        if (!j) return s;
        b->normalize = 0;
        size_t i;
        json_t *m;
        json_array_foreach(j, i, m)
        {
            json_t *t = json_object_get(m, "type");
            if (json_is_string(t) && strstr(json_string_value(t), "Normalize")) b->normalize = 1;
        }
        json_decref(j);
    }
    return BR_OK;
}

static br_status load_tokenizer(br_bert *b, const char *dir)
{
    char p[4096];
    br_status s;
    if ((s = join_path(p, sizeof p, dir, "tokenizer.json")) != BR_OK) return s;
    if (file_exists(p)) {
        snprintf(b->tokenizer_file, sizeof b->tokenizer_file, "tokenizer.json");
        return br__wordpiece_load_json(p, &b->wp);
    }
    /* vocab.txt + the slow tokenizer's flags */
    wp_config cfg = WP_CONFIG_DEFAULT;
    if ((s = join_path(p, sizeof p, dir, "tokenizer_config.json")) != BR_OK) return s;
    if (file_exists(p)) {
        json_t *j = load_json(p, &s);
        if (!j) return s;
        json_t *v = json_object_get(j, "do_lower_case");
        if (json_is_boolean(v)) cfg.lowercase = json_is_true(v);
        v = json_object_get(j, "strip_accents");
        if (json_is_boolean(v)) cfg.strip_accents = json_is_true(v);
        v = json_object_get(j, "tokenize_chinese_chars");
        if (json_is_boolean(v)) cfg.chinese_chars = json_is_true(v);
        json_decref(j);
    }
    if ((s = join_path(p, sizeof p, dir, "vocab.txt")) != BR_OK) return s;
    if (!file_exists(p))
        return br_error(BR_ENOTFOUND, "%s: neither tokenizer.json nor vocab.txt", dir);
    snprintf(b->tokenizer_file, sizeof b->tokenizer_file, "vocab.txt");
    return br__wordpiece_load_vocab(p, &cfg, &b->wp);
}

void br_bert_close(br_bert *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->n_owned; i++) br_aligned_free(b->owned[i]);
    br_free(b->owned);
    br_free(b->layers);
    br__wordpiece_free(b->wp);
    br__st_close(b->st);
    br_free(b);
}

br_status br_bert_open(const char *dir, const br_bert_options *opts, br_bert **out)
{
    if (!out) return br_error(BR_EINVAL, "br_bert_open: NULL out");
    *out = NULL;
    if (!dir) return br_error(BR_EINVAL, "br_bert_open: no directory");
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return br_error(BR_ENOTFOUND,
                        "%s: not a model directory (run `bookrec model fetch minilm`, or give "
                        "a folder with config.json, model.safetensors and vocab.txt)",
                        dir);
    br_bert *b = br_calloc(1, sizeof *b);
    if (!b) return br_error(BR_ENOMEM, "model");
    char p[4096];
    br_status s = join_path(p, sizeof p, dir, "config.json");
    if (s == BR_OK) s = br__bert_parse_config(p, &b->c);
    if (s == BR_OK) s = load_st_configs(b, dir, opts);
    if (s == BR_OK) s = load_tokenizer(b, dir);
    if (s == BR_OK && br__wordpiece_vocab_size(b->wp) > b->c.vocab)
        s = br_error(BR_EFORMAT, "%s: the tokenizer has %zu pieces, the model %zu embeddings", dir,
                     br__wordpiece_vocab_size(b->wp), b->c.vocab);
    if (s == BR_OK) s = join_path(p, sizeof p, dir, "model.safetensors");
    if (s == BR_OK) s = br__st_open(p, &b->st);
    const size_t H = b->c.hidden;
    if (s == BR_OK) s = weight(b, "embeddings.word_embeddings.weight", b->c.vocab, H, &b->word);
    if (s == BR_OK)
        s = weight(b, "embeddings.position_embeddings.weight", b->c.max_pos, H, &b->pos);
    if (s == BR_OK)
        s = weight(b, "embeddings.token_type_embeddings.weight", b->c.type_vocab, H, &b->type);
    if (s == BR_OK) s = weight(b, "embeddings.LayerNorm.weight", H, 0, &b->emb_g);
    if (s == BR_OK) s = weight(b, "embeddings.LayerNorm.bias", H, 0, &b->emb_b);
    if (s == BR_OK) {
        b->layers = br_calloc(b->c.layers, sizeof *b->layers);
        if (!b->layers) s = br_error(BR_ENOMEM, "layers");
    }
    for (size_t l = 0; s == BR_OK && l < b->c.layers; l++) s = load_layer(b, l);
    if (s != BR_OK) {
        br_bert_close(b);
        return s;
    }
    *out = b;
    return BR_OK;
}

size_t br_bert_dim(const br_bert *b)
{
    return b ? b->c.hidden : 0;
}

size_t br_bert_max_length(const br_bert *b)
{
    return b ? b->max_len : 0;
}

size_t br_bert_vocab_size(const br_bert *b)
{
    return b ? br__wordpiece_vocab_size(b->wp) : 0;
}

const char *br_bert_piece(const br_bert *b, int32_t id, size_t *len)
{
    return b ? br__wordpiece_piece(b->wp, id, len) : NULL;
}

br_status br_bert_tokenize(const br_bert *b, const char *text, int32_t **ids, size_t *n_ids)
{
    if (!b || !text || !ids || !n_ids)
        return br_error(BR_EINVAL, "br_bert_tokenize: NULL argument");
    return br__wordpiece_encode(b->wp, text, strlen(text), 1, ids, n_ids);
}

br_status br_bert_get_info(const br_bert *b, br_bert_info *info)
{
    if (!b || !info) return br_error(BR_EINVAL, "br_bert_get_info: NULL argument");
    memset(info, 0, sizeof *info);
    const bert_config *c = &b->c;
    info->vocab_size = (uint32_t)c->vocab;
    info->hidden = (uint32_t)c->hidden;
    info->heads = (uint32_t)c->heads;
    info->layers = (uint32_t)c->layers;
    info->intermediate = (uint32_t)c->inter;
    info->max_position = (uint32_t)c->max_pos;
    info->max_length = (uint32_t)b->max_len;
    info->layernorm_eps = c->eps;
    info->pooling = b->pooling;
    info->normalize = b->normalize;
    const st_tensor *t = br__st_find(b->st, "embeddings.word_embeddings.weight");
    if (!t) t = br__st_find(b->st, "bert.embeddings.word_embeddings.weight");
    snprintf(info->dtype, sizeof info->dtype, "%s", t ? br__st_dtype_name(t->dtype) : "?");
    snprintf(info->tokenizer, sizeof info->tokenizer, "%s", b->tokenizer_file);
    uint64_t H = c->hidden, I = c->inter;
    info->parameters = (c->vocab + c->max_pos + c->type_vocab + 2) * H +
                       c->layers * (4 * H * H + 4 * H + 2 * H * I + I + H + 4 * H);
    info->file_bytes = br__st_file_bytes(b->st);
    return BR_OK;
}

/* --------------------------------------------------------- forward pass --- */

typedef struct workspace {
    float *x;   /* (T, H) hidden states */
    float *qkv; /* (T, 3H) */
    float *ctx; /* (T, H) attention output */
    float *tmp; /* (T, H) projection before the residual */
    float *h;   /* (T, I) intermediate */
    float *att; /* per thread: br__nnb_attention_packed_ws(longest text) */
    size_t att_stride;
    float *gemm; /* per thread: br__nnb_linear_packed_ws() */
} workspace;

static void ws_free(workspace *w)
{
    br_aligned_free(w->x);
    br_aligned_free(w->qkv);
    br_aligned_free(w->ctx);
    br_aligned_free(w->tmp);
    br_aligned_free(w->h);
    br_aligned_free(w->att);
    br_aligned_free(w->gemm);
    memset(w, 0, sizeof *w);
}

static br_status ws_alloc(workspace *w, const br_bert *b, size_t T, size_t max_L, int threads)
{
    const size_t H = b->c.hidden, I = b->c.inter;
    T = T ? T : 1;
    w->att_stride =
        (br__nnb_attention_packed_ws(max_L ? max_L : 1, H, b->c.heads) + 15) & ~(size_t)15;
    w->x = br_aligned_alloc(T * H * sizeof(float), BR_ALIGN);
    w->qkv = br_aligned_alloc(T * 3 * H * sizeof(float), BR_ALIGN);
    w->ctx = br_aligned_alloc(T * H * sizeof(float), BR_ALIGN);
    w->tmp = br_aligned_alloc(T * H * sizeof(float), BR_ALIGN);
    w->h = br_aligned_alloc(T * I * sizeof(float), BR_ALIGN);
    w->att = br_aligned_alloc((size_t)threads * w->att_stride * sizeof(float), BR_ALIGN);
    w->gemm =
        br_aligned_alloc((size_t)threads * br__nnb_linear_packed_ws() * sizeof(float), BR_ALIGN);
    if (!w->x || !w->qkv || !w->ctx || !w->tmp || !w->h || !w->att || !w->gemm) {
        ws_free(w);
        return br_error(BR_ENOMEM, "encoder workspace (%zu tokens)", T);
    }
    return BR_OK;
}

/* One chunk of B sequences packed into T rows: sequence b is ids[b][0..len[b])
 * at rows [start[b], start[b] + len[b]). Writes B pooled, normalised rows
 * to out[row[b]]. */
static void forward_chunk(const br_bert *b, const int32_t *const *ids, const size_t *len,
                          const size_t *start, const size_t *row, size_t B, size_t T, workspace *w,
                          float *out)
{
    const size_t H = b->c.hidden, I = b->c.inter, heads = b->c.heads;
    const int nt = br_get_num_threads();
    const float scale = 1.0f / sqrtf((float)(H / heads));

    /* Embeddings: (word + position) + token type 0, then LayerNorm. */
#pragma omp parallel for num_threads(nt) schedule(static) if (T * H >= (1u << 16))
    for (size_t s = 0; s < B; s++)
        for (size_t t = 0; t < len[s]; t++) {
            const float *we = b->word + (size_t)ids[s][t] * H, *pe = b->pos + t * H;
            float *x = w->x + (start[s] + t) * H;
            for (size_t j = 0; j < H; j++) x[j] = we[j] + pe[j] + b->type[j];
        }
    br__nn_layernorm(w->x, T, H, b->emb_g, b->emb_b, b->c.eps, w->x);

    for (size_t l = 0; l < b->c.layers; l++) {
        const bert_layer *L = &b->layers[l];
        if (L->pqkv)
            br__nnb_linear_packed(w->x, T, H, H, L->pqkv, 3 * H, L->bqkv, 0, w->gemm, w->qkv,
                                  3 * H);
        else
            br__nnb_linear(w->x, T, H, H, L->wqkv, 3 * H, L->bqkv, w->qkv, 3 * H);
            /* Attention, text by text; texts are independent, so threads split
             * them (each with its own workspace). */
#pragma omp parallel num_threads(nt) if (B > 1 && T >= 64)
        {
#ifdef _OPENMP
            float *ws = w->att + (size_t)omp_get_thread_num() * w->att_stride;
#else
            float *ws = w->att;
#endif
#pragma omp for schedule(dynamic, 1)
            for (size_t s = 0; s < B; s++)
                br__nnb_attention_packed(w->qkv + start[s] * 3 * H, len[s], H, heads, scale, ws,
                                     w->ctx + start[s] * H, H);
        }
        if (L->pqkv) {
            /* biases in the accumulators, GELU on each tile while in L1 */
            br__nnb_linear_packed(w->ctx, T, H, H, L->po, H, L->bo, 0, w->gemm, w->tmp, H);
            br__nnb_add_layernorm(w->x, w->tmp, NULL, T, H, L->ln1_g, L->ln1_b, b->c.eps);
            br__nnb_linear_packed(w->x, T, H, H, L->p1, I, L->b1, 1, w->gemm, w->h, I);
            br__nnb_linear_packed(w->h, T, I, I, L->p2, H, L->b2, 0, w->gemm, w->tmp, H);
            br__nnb_add_layernorm(w->x, w->tmp, NULL, T, H, L->ln2_g, L->ln2_b, b->c.eps);
        } else {
            br__nnb_linear(w->ctx, T, H, H, L->wo, H, NULL, w->tmp, H);
            br__nnb_add_layernorm(w->x, w->tmp, L->bo, T, H, L->ln1_g, L->ln1_b, b->c.eps);
            br__nnb_linear(w->x, T, H, H, L->w1, I, NULL, w->h, I);
            br__nnb_bias_gelu(w->h, T, I, L->b1);
            br__nnb_linear(w->h, T, I, I, L->w2, H, NULL, w->tmp, H);
            br__nnb_add_layernorm(w->x, w->tmp, L->b2, T, H, L->ln2_g, L->ln2_b, b->c.eps);
        }
    }

    for (size_t s = 0; s < B; s++) {
        float *o = out + row[s] * H;
        const float *x = w->x + start[s] * H;
        if (b->pooling == BR_BERT_POOL_CLS) {
            memcpy(o, x, H * sizeof *o);
        } else if (b->pooling == BR_BERT_POOL_MAX) {
            memcpy(o, x, H * sizeof *o);
            for (size_t t = 1; t < len[s]; t++)
                for (size_t j = 0; j < H; j++) o[j] = x[t * H + j] > o[j] ? x[t * H + j] : o[j];
        } else {
            memset(o, 0, H * sizeof *o);
            for (size_t t = 0; t < len[s]; t++) br__nn_add(o, x + t * H, H);
            float cnt = (float)len[s];
            for (size_t j = 0; j < H; j++) o[j] /= cnt;
        }
        if (b->normalize) {
            float sq = 0;
            for (size_t j = 0; j < H; j++) sq += o[j] * o[j];
            float nrm = sqrtf(sq);
            nrm = nrm > 1e-12f ? nrm : 1e-12f;
            for (size_t j = 0; j < H; j++) o[j] /= nrm;
        }
    }
}

typedef struct seq {
    const int32_t *ids;
    size_t len;
    size_t row;
} seq;

static int cmp_len_desc(const void *a, const void *b)
{
    const seq *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

/* The forward pass over n sequences already cut to max_len (each >= 1). */
static br_status forward_all(const br_bert *b, seq *q, size_t n, float *out)
{
    qsort(q, n, sizeof *q, cmp_len_desc);
    const int nt = br_get_num_threads();
    size_t max_L = n ? q[0].len : 0, total = 0;
    for (size_t i = 0; i < n; i++) total += q[i].len;
    /* Chunks of CHUNK_TOKENS (or of the longest text), the workspace no
     * larger than the input needs: a single sentence allocates (and
     * page-faults) kilobytes, not the 30 MB of a full chunk. */
    size_t cap_T = max_L > CHUNK_TOKENS ? max_L : CHUNK_TOKENS;
    cap_T = total < cap_T ? total : cap_T;
    workspace w = {0};
    br_status st = ws_alloc(&w, b, cap_T, max_L, nt);
    const int32_t **ids = br_malloc((n ? n : 1) * sizeof *ids);
    size_t *len = br_malloc((n ? n : 1) * sizeof *len);
    size_t *start = br_malloc((n ? n : 1) * sizeof *start);
    size_t *row = br_malloc((n ? n : 1) * sizeof *row);
    if (st == BR_OK && (!ids || !len || !start || !row)) st = br_error(BR_ENOMEM, "embedding");
    br_progress prog;
    if (st == BR_OK) br_progress_begin(&prog, "embed", n);
    for (size_t i = 0; st == BR_OK && i < n;) {
        size_t T = 0, B = 0;
        while (i + B < n && (B == 0 || T + q[i + B].len <= cap_T)) {
            ids[B] = q[i + B].ids;
            len[B] = q[i + B].len;
            start[B] = T;
            row[B] = q[i + B].row;
            T += q[i + B].len;
            B++;
        }
        forward_chunk(b, ids, len, start, row, B, T, &w, out);
        i += B;
        st = br_progress_update(&prog, i);
    }
    if (st == BR_OK) st = br_progress_end(&prog);
    ws_free(&w);
    br_free(ids);
    br_free(len);
    br_free(start);
    br_free(row);
    return st;
}

br_status br_bert_embed_ids(const br_bert *b, const int32_t *const *ids, const size_t *lens,
                            size_t n, float *out)
{
    if (!b || (n && (!ids || !lens || !out)))
        return br_error(BR_EINVAL, "br_bert_embed_ids: NULL argument");
    if (n == 0) return BR_OK;
    seq *q = br_malloc(n * sizeof *q);
    int32_t **cut = br_calloc(n, sizeof *cut);
    br_status st = q && cut ? BR_OK : br_error(BR_ENOMEM, "embedding %zu texts", n);
    for (size_t i = 0; st == BR_OK && i < n; i++) {
        if (!ids[i] || lens[i] == 0) {
            st = br_error(BR_EINVAL, "br_bert_embed_ids: sequence %zu is empty", i);
            break;
        }
        for (size_t t = 0; t < lens[i]; t++)
            if (ids[i][t] < 0 || (size_t)ids[i][t] >= b->c.vocab) {
                st = br_error(BR_ERANGE, "sequence %zu: token id %d outside the vocabulary", i,
                              ids[i][t]);
                break;
            }
        q[i].ids = ids[i];
        q[i].len = lens[i];
        q[i].row = i;
        if (lens[i] > b->max_len) {
            /* Keep the first max_len - 1 ids and the last one ([SEP]), as the
             * tokenizer's truncation does. */
            cut[i] = br_malloc(b->max_len * sizeof **cut);
            if (!cut[i]) {
                st = br_error(BR_ENOMEM, "embedding");
                break;
            }
            memcpy(cut[i], ids[i], (b->max_len - 1) * sizeof **cut);
            cut[i][b->max_len - 1] = ids[i][lens[i] - 1];
            q[i].ids = cut[i];
            q[i].len = b->max_len;
        }
    }
    if (st == BR_OK) st = forward_all(b, q, n, out);
    for (size_t i = 0; cut && i < n; i++) br_free(cut[i]);
    br_free(cut);
    br_free(q);
    return st;
}

br_status br_bert_embed(const br_bert *b, const char *const *texts, size_t n, float *out)
{
    if (!b || (n && (!texts || !out))) return br_error(BR_EINVAL, "br_bert_embed: NULL argument");
    if (n == 0) return BR_OK;
    for (size_t i = 0; i < n; i++)
        if (!texts[i]) return br_error(BR_EINVAL, "br_bert_embed: text %zu is NULL", i);
    int32_t **ids = br_calloc(n, sizeof *ids);
    size_t *lens = br_calloc(n, sizeof *lens);
    if (!ids || !lens) {
        br_free(ids), br_free(lens);
        return br_error(BR_ENOMEM, "embedding %zu texts", n);
    }
    /* Tokenize in parallel: integer work that overlaps well on
     * hyper-threads. */
    br_status st = BR_OK;
#pragma omp parallel for num_threads(br_get_num_threads()) schedule(dynamic, 16)
    for (size_t i = 0; i < n; i++) {
        br_status s = br__wordpiece_encode(b->wp, texts[i], strlen(texts[i]), 1, &ids[i], &lens[i]);
        if (s != BR_OK) {
#pragma omp critical(br_bert_err)
            st = s;
        }
    }
    if (st == BR_OK) st = br_bert_embed_ids(b, (const int32_t *const *)ids, lens, n, out);
    for (size_t i = 0; i < n; i++) br_free(ids[i]);
    br_free(ids);
    br_free(lens);
    return st;
}
