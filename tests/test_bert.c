/*
 * test_bert.c: the BERT encoder. The forward pass against PyTorch
 * (tests/golden/minilm/tiny/expected_embeddings.json, written by
 * ../shared/reference/minilm/bert_reference.py: max |difference| <= 1e-5),
 * from token ids and from text, alone and in batches; the kernels against
 * their plain references; the model directory's options and refusals.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bookrec/bert.h"
#include "linalg/nn.h"
#include "linalg/nn_bert.h"
#include "testutil.h"
#include "text/bert.h"

#define TINY BR_GOLDEN_DIR "/minilm/tiny"

typedef struct cases {
    size_t n;
    int32_t **ids;
    size_t *lens;
    float *want; /* (n, 32) */
    const char **texts;
    json_t *edge;
} cases;

static cases C;

static int setup(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *exp = json_load_file(TINY "/expected_embeddings.json", 0, &jerr);
    C.edge = json_load_file(BR_GOLDEN_DIR "/minilm/wordpiece_edge_cases.json", 0, &jerr);
    if (!exp || !C.edge) return -1;
    C.n = json_array_size(exp);
    C.ids = br_calloc(C.n, sizeof *C.ids);
    C.lens = br_calloc(C.n, sizeof *C.lens);
    C.want = br_calloc(C.n * 32, sizeof *C.want);
    C.texts = br_calloc(C.n, sizeof *C.texts);
    for (size_t i = 0; i < C.n; i++) {
        json_t *e = json_array_get(exp, i), *ids = json_object_get(e, "token_ids"),
               *emb = json_object_get(e, "embedding");
        C.lens[i] = json_array_size(ids);
        C.ids[i] = br_malloc(C.lens[i] * sizeof **C.ids);
        for (size_t k = 0; k < C.lens[i]; k++)
            C.ids[i][k] = (int32_t)json_integer_value(json_array_get(ids, k));
        if (json_array_size(emb) != 32) return -1;
        for (size_t k = 0; k < 32; k++)
            C.want[i * 32 + k] = (float)json_number_value(json_array_get(emb, k));
        C.texts[i] = json_string_value(json_object_get(json_array_get(C.edge, i), "text"));
    }
    json_decref(exp);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < C.n; i++) br_free(C.ids[i]);
    br_free(C.ids);
    br_free(C.lens);
    br_free(C.want);
    br_free(C.texts);
    json_decref(C.edge);
    return 0;
}

static float max_diff(const float *a, const float *b, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        m = d > m || isnan(d) ? d : m;
    }
    return m;
}

static void test_tiny_from_ids(void **state)
{
    (void)state;
    br_bert *b;
    assert_int_equal(br_bert_open(TINY, NULL, &b), BR_OK);
    assert_int_equal(br_bert_dim(b), 32);
    assert_int_equal(br_bert_max_length(b), 256);
    float *got = br_calloc(C.n * 32, sizeof *got);
    /* all at once (several chunks of mixed lengths) */
    assert_int_equal(br_bert_embed_ids(b, (const int32_t *const *)C.ids, C.lens, C.n, got), BR_OK);
    float d = max_diff(got, C.want, C.n * 32);
    printf("tiny, batch of %zu: max |diff| %.3g\n", C.n, (double)d);
    assert_true(d <= 1e-5f);
    /* one by one */
    for (size_t i = 0; i < C.n; i++) {
        float one[32];
        const int32_t *ids = C.ids[i];
        assert_int_equal(br_bert_embed_ids(b, &ids, &C.lens[i], 1, one), BR_OK);
        assert_true(max_diff(one, C.want + i * 32, 32) <= 1e-5f);
        /* a unit vector */
        double sq = 0;
        for (size_t k = 0; k < 32; k++) sq += (double)one[k] * one[k];
        assert_true(fabs(sq - 1.0) < 1e-5);
    }
    br_free(got);
    br_bert_close(b);
}

/* From text: tokenize (the 830- and 582-token texts are cut to 256) + run. */
static void test_tiny_from_text(void **state)
{
    (void)state;
    br_bert *b;
    assert_int_equal(br_bert_open(TINY, NULL, &b), BR_OK);
    float *got = br_calloc(C.n * 32, sizeof *got);
    assert_int_equal(br_bert_embed(b, C.texts, C.n, got), BR_OK);
    float d = max_diff(got, C.want, C.n * 32);
    printf("tiny, from text: max |diff| %.3g\n", (double)d);
    assert_true(d <= 1e-5f);
    int32_t *ids;
    size_t n;
    assert_int_equal(br_bert_tokenize(b, C.texts[23], &ids, &n), BR_OK);
    assert_int_equal(n, 830); /* untruncated */
    assert_int_equal(ids[0], 101);
    assert_int_equal(ids[829], 102);
    br_free(ids);
    br_free(got);
    br_bert_close(b);
}

/* --max-length changes the cut: 16 tokens of the long text = its first 15
 * ids and [SEP], so both routes agree with each other. */
static void test_max_length_option(void **state)
{
    (void)state;
    br_bert_options o = BR_BERT_OPTIONS_DEFAULT;
    o.max_length = 16;
    br_bert *b;
    assert_int_equal(br_bert_open(TINY, &o, &b), BR_OK);
    assert_int_equal(br_bert_max_length(b), 16);
    float a[32], c[32];
    assert_int_equal(br_bert_embed(b, &C.texts[23], 1, a), BR_OK);
    int32_t cut[16];
    memcpy(cut, C.ids[23], 15 * sizeof *cut);
    cut[15] = 102;
    const int32_t *p = cut;
    size_t len = 16;
    br_bert_close(b);
    assert_int_equal(br_bert_open(TINY, NULL, &b), BR_OK);
    assert_int_equal(br_bert_embed_ids(b, &p, &len, 1, c), BR_OK);
    assert_true(max_diff(a, c, 32) == 0.0f);
    /* ... and differs from the 256-token embedding */
    assert_true(max_diff(a, C.want + 23 * 32, 32) > 1e-3f);
    br_bert_close(b);
    o.max_length = 100000; /* clamped to max_position_embeddings */
    assert_int_equal(br_bert_open(TINY, &o, &b), BR_OK);
    assert_int_equal(br_bert_max_length(b), 512);
    br_bert_info info;
    assert_int_equal(br_bert_get_info(b, &info), BR_OK);
    assert_int_equal(info.hidden, 32);
    assert_int_equal(info.layers, 2);
    assert_int_equal(info.heads, 4);
    assert_string_equal(info.dtype, "F32");
    assert_string_equal(info.tokenizer, "tokenizer.json");
    assert_int_equal(info.pooling, BR_BERT_POOL_MEAN);
    assert_int_equal(info.normalize, 1);
    br_bert_close(b);
}

static void test_bad_ids_and_args(void **state)
{
    (void)state;
    br_bert *b;
    assert_int_equal(br_bert_open(TINY, NULL, &b), BR_OK);
    int32_t bad[3] = {101, 30522, 102};
    const int32_t *p = bad;
    size_t len = 3;
    float out[32];
    assert_status_detail(br_bert_embed_ids(b, &p, &len, 1, out), BR_ERANGE, "30522");
    len = 0;
    assert_int_equal(br_bert_embed_ids(b, &p, &len, 1, out), BR_EINVAL);
    assert_int_equal(br_bert_embed(b, NULL, 0, NULL), BR_OK);
    const char *null_text = NULL;
    assert_int_equal(br_bert_embed(b, &null_text, 1, out), BR_EINVAL);
    /* the empty text is [CLS] [SEP] */
    const char *empty = "";
    assert_int_equal(br_bert_embed(b, &empty, 1, out), BR_OK);
    br_bert_close(b);
}

/* A model directory assembled in a temporary folder: F16 weights (from the
 * tiny model, rounded), vocab.txt instead of tokenizer.json, cls pooling,
 * no Normalize module, sentence_bert_config's max_seq_length. */
static char *write_f16_model(const char *dir)
{
    /* Convert every tensor of the tiny model to F16 with round-to-nearest. */
    st_file *f;
    if (br__st_open(TINY "/model.safetensors", &f) != BR_OK) return NULL;
    json_t *hdr = json_object();
    size_t off = 0;
    for (size_t i = 0; i < br__st_count(f); i++) {
        const st_tensor *t = br__st_tensor_at(f, i);
        json_t *e = json_object(), *sh = json_array();
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(sh, json_integer((json_int_t)t->shape[d]));
        json_object_set_new(e, "dtype", json_string("F16"));
        json_object_set_new(e, "shape", sh);
        json_t *o = json_array();
        json_array_append_new(o, json_integer((json_int_t)off));
        json_array_append_new(o, json_integer((json_int_t)(off + 2 * t->count)));
        json_object_set_new(e, "data_offsets", o);
        json_object_set_new(hdr, t->name, e);
        off += 2 * t->count;
    }
    char *js = json_dumps(hdr, JSON_COMPACT);
    json_decref(hdr);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *out = fopen(path, "wb");
    uint64_t hl = strlen(js);
    fwrite(&hl, 8, 1, out);
    fwrite(js, 1, hl, out);
    free(js);
    for (size_t i = 0; i < br__st_count(f); i++) {
        const st_tensor *t = br__st_tensor_at(f, i);
        const float *v = br__st_f32_view(t);
        for (uint64_t k = 0; k < t->count; k++) {
            /* float -> half, round to nearest even (values are small normals) */
            uint32_t u;
            memcpy(&u, &v[k], 4);
            uint32_t sign = (u >> 16) & 0x8000, exp = (u >> 23) & 0xff, man = u & 0x7fffff;
            uint16_t h;
            if (exp < 103) {
                h = (uint16_t)sign;
            } else if (exp < 113) { /* subnormal half */
                man |= 0x800000;
                int shift = 126 - (int)exp;
                uint32_t r = man >> shift, rem = man & ((1u << shift) - 1),
                         half = 1u << (shift - 1);
                if (rem > half || (rem == half && (r & 1))) r++;
                h = (uint16_t)(sign | r);
            } else {
                uint32_t r = ((exp - 112) << 10) | (man >> 13), rem = man & 0x1fff;
                if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
                h = (uint16_t)(sign | r);
            }
            fwrite(&h, 2, 1, out);
        }
    }
    fclose(out);
    br__st_close(f);
    char *cfg = tu_read_file(TINY "/config.json", NULL);
    br_free(tu_write_file(dir, "config.json", cfg));
    br_free(cfg);
    char *vocab = tu_read_file(TINY "/vocab.txt", NULL);
    br_free(tu_write_file(dir, "vocab.txt", vocab));
    br_free(vocab);
    return br_strdup(dir);
}

static void test_f16_vocab_txt_cls_pooling(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("test_bert_f16");
    char *made = write_f16_model(dir);
    assert_non_null(made);
    br_free(made);
    br_bert *b;
    assert_int_equal(br_bert_open(dir, NULL, &b), BR_OK);
    br_bert_info info;
    assert_int_equal(br_bert_get_info(b, &info), BR_OK);
    assert_string_equal(info.dtype, "F16");
    assert_string_equal(info.tokenizer, "vocab.txt");
    float *got = br_calloc(C.n * 32, sizeof *got);
    assert_int_equal(br_bert_embed(b, C.texts, C.n, got), BR_OK);
    /* F16 weights move the output a little, not a lot */
    float d = max_diff(got, C.want, C.n * 32);
    printf("tiny in F16: max |diff| %.3g\n", (double)d);
    assert_true(d > 0 && d < 2e-2f);
    br_bert_close(b);

    /* cls pooling without normalisation; sentence_bert_config max 8 */
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/1_Pooling", dir);
    char *p = tu_write_file(dir, "sentence_bert_config.json", "{\"max_seq_length\": 8}");
    br_free(p);
    p = tu_write_file(dir, "modules.json",
                      "[{\"type\": \"sentence_transformers.models.Transformer\"},"
                      " {\"type\": \"sentence_transformers.models.Pooling\", \"path\": "
                      "\"1_Pooling\"}]");
    br_free(p);
    assert_int_equal(mkdir(sub, 0755), 0);
    p = tu_write_file(sub, "config.json",
                      "{\"pooling_mode_cls_token\": true, \"pooling_mode_mean_tokens\": false}");
    br_free(p);
    assert_int_equal(br_bert_open(dir, NULL, &b), BR_OK);
    assert_int_equal(br_bert_max_length(b), 8);
    assert_int_equal(br_bert_get_info(b, &info), BR_OK);
    assert_int_equal(info.pooling, BR_BERT_POOL_CLS);
    assert_int_equal(info.normalize, 0);
    float one[32];
    assert_int_equal(br_bert_embed(b, &C.texts[0], 1, one), BR_OK);
    double sq = 0;
    for (size_t k = 0; k < 32; k++) sq += (double)one[k] * one[k];
    assert_true(fabs(sq - 1.0) > 1e-3); /* not normalised */
    br_bert_close(b);
    p = tu_write_file(sub, "config.json",
                      "{\"pooling_mode_cls_token\": true, \"pooling_mode_mean_tokens\": true}");
    br_free(p);
    assert_status_detail(br_bert_open(dir, NULL, &b), BR_EUNSUPPORTED, "exactly one");
    br_free(got);
    br_free(dir);
}

static void test_refusals(void **state)
{
    (void)state;
    br_bert *b = NULL;
    assert_status_detail(br_bert_open("/nonexistent-model", NULL, &b), BR_ENOTFOUND,
                         "model fetch minilm");
    assert_false(br_bert_is_model_dir("/nonexistent-model"));
    assert_true(br_bert_is_model_dir(TINY));
    char *dir = tu_tmpdir("test_bert_bad");
    char *p = tu_write_file(dir, "config.json", "{\"hidden_size\": 32}");
    br_free(p);
    assert_status_detail(br_bert_open(dir, NULL, &b), BR_EFORMAT, "num_attention_heads");
    p = tu_write_file(dir, "config.json",
                      "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"num_hidden_layers\": 2,"
                      " \"intermediate_size\": 64, \"vocab_size\": 30522, \"hidden_act\": "
                      "\"relu\"}");
    br_free(p);
    assert_status_detail(br_bert_open(dir, NULL, &b), BR_EUNSUPPORTED, "hidden_act");
    p = tu_write_file(dir, "config.json",
                      "{\"hidden_size\": 32, \"num_attention_heads\": 4, \"num_hidden_layers\": 3,"
                      " \"intermediate_size\": 64, \"vocab_size\": 30522}");
    br_free(p);
    char *vocab = tu_read_file(TINY "/vocab.txt", NULL);
    br_free(tu_write_file(dir, "vocab.txt", vocab));
    br_free(vocab);
    assert_status_detail(br_bert_open(dir, NULL, &b), BR_ENOTFOUND, "model.safetensors");
    /* the tiny weights under a 3-layer config */
    char *w = tu_read_file(TINY "/model.safetensors", NULL);
    size_t wl;
    br_free(w);
    w = tu_read_file(TINY "/model.safetensors", &wl);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    fwrite(w, 1, wl, f);
    fclose(f);
    assert_status_detail(br_bert_open(dir, NULL, &b), BR_EFORMAT, "encoder.layer.2");
    /* truncated weights */
    f = fopen(path, "wb");
    fwrite(w, 1, wl / 2, f);
    fclose(f);
    assert_status_detail(br_bert_open(dir, NULL, &b), BR_EFORMAT, "truncated");
    br_free(w);
    assert_null(b);
    br_free(dir);
}

/* The kernels against their plain references. */
static void fill(float *v, size_t n, uint64_t seed, float scale)
{
    br_rng r;
    br_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) v[i] = (float)br_rng_normal(&r) * scale;
}

static void test_kernels(void **state)
{
    (void)state;
    enum { N = 37, K = 50, M = 70 };
    float *x = br_malloc(N * K * sizeof *x), *w = br_malloc(M * K * sizeof *w),
          *bias = br_malloc(M * sizeof *bias), *y = br_malloc(N * M * sizeof *y),
          *yr = br_malloc(N * M * sizeof *yr);
    fill(x, N * K, 1, 1), fill(w, M * K, 2, 0.2f), fill(bias, M, 3, 1);
    br__nnb_linear(x, N, K, K, w, M, bias, y, M);
    br__nnb_linear_ref(x, N, K, K, w, M, bias, yr, M);
    assert_true(max_diff(y, yr, N * M) < 1e-5f);
    /* GELU over a wide range, including the tails and exact zero */
    float g[N * M], gr[N * M];
    fill(g, N * M, 4, 3);
    g[0] = 0, g[1] = -12, g[2] = 12, g[3] = -0.0f, g[4] = 1e-30f, g[5] = -5.5f, g[6] = 40;
    memcpy(gr, g, sizeof g);
    br__nnb_bias_gelu(g, N, M, bias);
    br__nnb_bias_gelu_ref(gr, N, M, bias);
    float worst = 0;
    for (size_t i = 0; i < N * M; i++) {
        float e = fabsf(g[i] - gr[i]) / (1e-3f + fabsf(gr[i]));
        worst = e > worst ? e : worst;
    }
    printf("gelu: worst relative error %.3g\n", (double)worst);
    assert_true(worst < 1e-6f);
    /* a fine sweep of the interesting range */
    for (int i = -8000; i <= 8000; i++) {
        float a = (float)i / 1000.0f, b2 = a;
        br__nnb_bias_gelu(&a, 1, 1, NULL);
        br__nnb_bias_gelu_ref(&b2, 1, 1, NULL);
        assert_true(fabsf(a - b2) <= 2e-7f * (1 + fabsf(b2)));
    }
    /* residual + LayerNorm */
    memcpy(yr, y, N * M * sizeof *y);
    float *r = br_malloc(N * M * sizeof *r), *lg = br_malloc(M * sizeof *lg);
    fill(r, N * M, 5, 2), fill(lg, M, 6, 1);
    br__nnb_add_layernorm(y, r, bias, N, M, lg, bias, 1e-12f);
    br__nnb_add_layernorm_ref(yr, r, bias, N, M, lg, bias, 1e-12f);
    assert_true(max_diff(y, yr, N * M) < 1e-5f);
    br_free(x), br_free(w), br_free(bias), br_free(y), br_free(yr), br_free(r), br_free(lg);
}

/* The packed-weight product against the plain oracle: row counts that
 * split unevenly into tiles, widths that are not a multiple of the panel,
 * k longer than one pass, row strides wider than the rows, with and
 * without bias and GELU. */
static void test_packed_linear(void **state)
{
    (void)state;
    if (!br__nnb_pack_available()) skip();
    static const size_t shapes[][3] = {{1, 8, 32},     {13, 50, 70},   {37, 384, 96},
                                       {100, 600, 33}, {200, 40, 130}, {37, 1100, 20}};
    float *ws = br_aligned_alloc(
        (size_t)br_get_num_threads() * br__nnb_linear_packed_ws() * sizeof *ws, BR_ALIGN);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const size_t n = shapes[s][0], k = shapes[s][1], m = shapes[s][2];
        const size_t ldx = k + 3, ldy = m + 5;
        float *x = br_malloc(n * ldx * sizeof *x), *w = br_malloc(m * k * sizeof *w),
              *bias = br_malloc(m * sizeof *bias), *y = br_malloc(n * ldy * sizeof *y),
              *yr = br_malloc(n * ldy * sizeof *yr),
              *wp = br_aligned_alloc(br__nnb_pack_floats(m, k) * sizeof *wp, BR_ALIGN);
        fill(x, n * ldx, 10 + s, 1), fill(w, m * k, 20 + s, 0.1f), fill(bias, m, 30 + s, 1);
        br__nnb_pack_weights(w, m, k, wp);
        for (int variant = 0; variant < 3; variant++) {
            const float *b = variant == 0 ? NULL : bias;
            const int gelu = variant == 2;
            for (size_t i = 0; i < n * ldy; i++) y[i] = yr[i] = 77.0f; /* sentinels */
            br__nnb_linear_packed(x, n, k, ldx, wp, m, b, gelu, ws, y, ldy);
            br__nnb_linear_ref(x, n, k, ldx, w, m, b, yr, ldy);
            for (size_t i = 0; gelu && i < n; i++) br__nnb_bias_gelu_ref(yr + i * ldy, 1, m, NULL);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < ldy; j++) {
                    const float a = y[i * ldy + j], r = yr[i * ldy + j];
                    if (j >= m)
                        assert_true(a == 77.0f); /* padding of y untouched */
                    else
                        assert_true(fabsf(a - r) <= 1e-5f * (1 + fabsf(r)));
                }
        }
        br_free(x), br_free(w), br_free(bias), br_free(y), br_free(yr), br_aligned_free(wp);
    }
    br_aligned_free(ws);
}

static void test_attention_kernel(void **state)
{
    (void)state;
    /* lengths 1 (a lone [CLS]-like token), odd, longer than a SIMD row and
     * than a 32-key panel; head widths 12, 32 (MiniLM) and 64; the plain
     * and the packed kernel (which falls back to the plain one where the
     * CPU lacks AVX-512) */
    static const size_t shapes[][3] = {{1, 48, 4},    {7, 48, 4},    {70, 48, 4},
                                       {33, 384, 12}, {130, 128, 2}, {300, 96, 3}};
    for (size_t c = 0; c < sizeof shapes / sizeof *shapes; c++) {
        const size_t L = shapes[c][0], D = shapes[c][1], HEADS = shapes[c][2];
        float *qkv = br_malloc(L * 3 * D * sizeof *qkv), *o = br_malloc(L * (D + 5) * sizeof *o),
              *orf = br_malloc(L * (D + 5) * sizeof *orf),
              *ws =
                  br_aligned_alloc(br__nnb_attention_packed_ws(L, D, HEADS) * sizeof *ws, BR_ALIGN);
        assert_true(br__nnb_attention_packed_ws(L, D, HEADS) >= br__nnb_attention_ws(L));
        /* the spread of the scores as with 12-wide heads at 1.5 */
        fill(qkv, L * 3 * D, 10 + c, 1.5f * sqrtf(12.0f / (float)(D / HEADS)));
        memset(orf, 0, L * (D + 5) * sizeof *orf);
        br__nn_attention_ref(qkv, L, D, HEADS, 0.2887f, orf, D + 5);
        for (int packed = 0; packed < 2; packed++) {
            memset(o, 0, L * (D + 5) * sizeof *o);
            if (packed)
                br__nnb_attention_packed(qkv, L, D, HEADS, 0.2887f, ws, o, D + 5);
            else
                br__nnb_attention(qkv, L, D, HEADS, 0.2887f, ws, o, D + 5);
            assert_true(max_diff(o, orf, L * (D + 5)) < 2e-6f);
        }
        br_free(qkv), br_free(o), br_free(orf), br_aligned_free(ws);
    }
    float s[3 * 40], sr[3 * 40];
    fill(s, 3 * 40, 20, 8);
    s[5] = -200; /* far below the max: exp underflows to ~0 */
    memcpy(sr, s, sizeof s);
    br__nnb_softmax_rows(s, 3, 40);
    br__nnb_softmax_rows_ref(sr, 3, 40);
    assert_true(max_diff(s, sr, 3 * 40) < 1e-6f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_from_ids),
        cmocka_unit_test(test_tiny_from_text),
        cmocka_unit_test(test_max_length_option),
        cmocka_unit_test(test_bad_ids_and_args),
        cmocka_unit_test(test_f16_vocab_txt_cls_pooling),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_kernels),
        cmocka_unit_test(test_packed_linear),
        cmocka_unit_test(test_attention_kernel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
