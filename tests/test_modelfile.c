/*
 * test_modelfile.c: the use-lite model file loader: a good file opens, and a
 * truncated file, a wrong magic, a wrong version, a corrupt byte, a wrong
 * shape and a missing file each fail with a clear error. Uses the tiny
 * synthetic model (fuzz/tiny_model.h), so it needs no download; the real
 * model is checked too when it is in the default location.
 */
#include <jansson.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "../fuzz/tiny_model.h"

static char *write_bytes(const char *dir, const char *name, const uint8_t *b, size_t len)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = br_malloc(n);
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
    return path;
}

/* Opens bytes written to a file; returns the status (closing on success). */
static br_status open_bytes(const char *dir, const char *name, const uint8_t *b, size_t len)
{
    char *path = write_bytes(dir, name, b, len);
    br_encoder *enc = NULL;
    br_status st = br_encoder_open(path, &enc);
    if (st == BR_OK) {
        assert_non_null(enc);
        br_encoder_close(enc);
    } else {
        assert_null(enc);
    }
    br_free(path);
    return st;
}

static void restamp(uint8_t *b, size_t len)
{
    uint64_t h = br__use_model_checksum(b + USE_HEADER_BYTES, len - USE_HEADER_BYTES);
    memcpy(b + USE_OFF_CHECKSUM, &h, 8);
}

static void test_tiny_model_opens(void **state)
{
    (void)state;
    uint8_t *b = NULL;
    size_t len = tiny_model_build(&b);
    assert_true(len > 0);
    char *dir = tu_tmpdir("modelfile_ok");
    char *path = write_bytes(dir, "tiny.brm", b, len);
    br_encoder *enc;
    assert_int_equal(br_encoder_open(path, &enc), BR_OK);
    assert_int_equal(br_encoder_dim(enc), 16);
    assert_int_equal(br_encoder_max_tokens(enc), 6);
    assert_int_equal(br_encoder_vocab_size(enc), 12);
    size_t plen;
    const char *p = br_encoder_piece(enc, 10, &plen);
    assert_int_equal(plen, 2);
    assert_memory_equal(p, "ab", 2);
    assert_null(br_encoder_piece(enc, 12, NULL));
    assert_null(br_encoder_piece(enc, -1, NULL));
    br_encoder_info in;
    assert_int_equal(br_encoder_get_info(enc, &in), BR_OK);
    assert_int_equal(in.heads, 2);
    assert_int_equal(in.ff_dim, 16);
    assert_int_equal(in.file_bytes, len);
    assert_string_equal(in.source, "tiny test model");
    br_encoder_close(enc);
    assert_int_equal(br_encoder_check_file(path), BR_OK);
    br_free(path);
    br_free(dir);
    free(b);
}

static void test_truncated(void **state)
{
    (void)state;
    uint8_t *b = NULL;
    size_t len = tiny_model_build(&b);
    char *dir = tu_tmpdir("modelfile_trunc");
    assert_status_detail(open_bytes(dir, "half.brm", b, len / 2), BR_EFORMAT, "truncated");
    assert_status_detail(open_bytes(dir, "short.brm", b, 100), BR_EFORMAT, "truncated");
    assert_status_detail(open_bytes(dir, "tiny.brm", b, 10), BR_EFORMAT, "truncated");
    assert_status_detail(open_bytes(dir, "empty.brm", b, 0), BR_EFORMAT, "truncated");
    /* Every format error says how to get a good file. */
    assert_status_detail(open_bytes(dir, "half.brm", b, len - 64), BR_EFORMAT,
                         "bookrec model fetch use-lite");
    br_free(dir);
    free(b);
}

static void test_wrong_magic(void **state)
{
    (void)state;
    uint8_t *b = NULL;
    size_t len = tiny_model_build(&b);
    char *dir = tu_tmpdir("modelfile_magic");
    memcpy(b, "GGUF\0\0\0\0", 8);
    assert_status_detail(open_bytes(dir, "m.brm", b, len), BR_EFORMAT, "wrong magic");
    br_free(dir);
    free(b);
}

static void test_wrong_version(void **state)
{
    (void)state;
    uint8_t *b = NULL;
    size_t len = tiny_model_build(&b);
    char *dir = tu_tmpdir("modelfile_version");
    uint32_t v = 2;
    memcpy(b + USE_OFF_VERSION, &v, 4);
    assert_status_detail(open_bytes(dir, "v.brm", b, len), BR_EFORMAT, "format version 2");
    br_free(dir);
    free(b);
}

static void test_corrupt_byte(void **state)
{
    (void)state;
    uint8_t *b = NULL;
    size_t len = tiny_model_build(&b);
    char *dir = tu_tmpdir("modelfile_corrupt");
    b[len - 300] ^= 0x40; /* inside the last tensors */
    assert_status_detail(open_bytes(dir, "c.brm", b, len), BR_EFORMAT, "checksum");
    assert_status_detail(br_encoder_check_file("/nonexistent/x.brm"), BR_ENOTFOUND,
                         "bookrec model fetch");
    br_free(dir);
    free(b);
}

static void test_bad_structure(void **state)
{
    (void)state;
    uint8_t *b = NULL;
    size_t len = tiny_model_build(&b);
    char *dir = tu_tmpdir("modelfile_struct");
    uint64_t doff;
    memcpy(&doff, b + USE_OFF_DIR_OFFSET, 8);

    /* A tensor whose shape disagrees with the header (checksum made valid,
     * so the structural check is what fails). */
    uint8_t *c = malloc(len);
    memcpy(c, b, len);
    uint32_t rows = 99;
    memcpy(c + doff + 40, &rows, 4);
    restamp(c, len);
    assert_status_detail(open_bytes(dir, "shape.brm", c, len), BR_EFORMAT, "implies");

    /* A tensor pointing past the end. */
    memcpy(c, b, len);
    uint64_t off = len;
    memcpy(c + doff + 48, &off, 8);
    restamp(c, len);
    assert_status_detail(open_bytes(dir, "oob.brm", c, len), BR_EFORMAT, "out of bounds");

    /* An unknown tensor name. */
    memcpy(c, b, len);
    memcpy(c + doff, "bogus\0", 6);
    restamp(c, len);
    assert_status_detail(open_bytes(dir, "name.brm", c, len), BR_EFORMAT, "unknown tensor");

    /* Hyper-parameters out of range. */
    memcpy(c, b, len);
    uint32_t heads = 3; /* does not divide the widths */
    memcpy(c + USE_OFF_HEADS, &heads, 4);
    restamp(c, len);
    assert_status_detail(open_bytes(dir, "heads.brm", c, len), BR_EFORMAT, "hyper-parameters");

    /* Vocabulary offsets going backwards. */
    memcpy(c, b, len);
    uint64_t voff;
    memcpy(&voff, b + USE_OFF_VOCAB_OFFSET, 8);
    uint32_t bad = 1000;
    memcpy(c + voff + 12 * 8 + 4 * 3, &bad, 4);
    restamp(c, len);
    assert_status_detail(open_bytes(dir, "voc.brm", c, len), BR_EFORMAT, "vocabulary");

    /* Size in the header larger than the file. */
    memcpy(c, b, len);
    uint64_t big = len + 64;
    memcpy(c + USE_OFF_FILE_BYTES, &big, 8);
    assert_status_detail(open_bytes(dir, "size.brm", c, len), BR_EFORMAT, "truncated");
    free(c);
    br_free(dir);
    free(b);
}

static void test_missing_file(void **state)
{
    (void)state;
    br_encoder *enc = (br_encoder *)&enc; /* must be reset to NULL */
    assert_status_detail(br_encoder_open("/nonexistent/dir/use-lite.brm", &enc), BR_ENOTFOUND,
                         "bookrec model fetch use-lite");
    assert_null(enc);
}

static void test_model_path(void **state)
{
    (void)state;
    char buf[512];
    char *old_xdg = getenv("XDG_CACHE_HOME") ? br_strdup(getenv("XDG_CACHE_HOME")) : NULL;
    setenv("XDG_CACHE_HOME", "/tmp/xdg-test", 1);
    assert_int_equal(br_encoder_model_path("use-lite", buf, sizeof buf), BR_OK);
    assert_string_equal(buf, "/tmp/xdg-test/bookrec/models/use-lite.brm");
    unsetenv("XDG_CACHE_HOME");
    char *home = getenv("HOME");
    if (home && *home) {
        assert_int_equal(br_encoder_model_dir(buf, sizeof buf), BR_OK);
        char want[512];
        snprintf(want, sizeof want, "%s/.cache/bookrec/models", home);
        assert_string_equal(buf, want);
    }
    assert_status_detail(br_encoder_model_path("bert", buf, sizeof buf), BR_ENOTFOUND, "unknown");
    assert_int_equal(br_encoder_model_path("use-lite", buf, 8), BR_ERANGE);
    if (old_xdg) setenv("XDG_CACHE_HOME", old_xdg, 1);
    br_free(old_xdg);
}

/* ------------------------------------------------------------------------ */
/* The converter, offline: a tiny package in the TF.js layout (model.json
 * with its weights manifest over two shard files, vocab.json), converted and
 * read back. Widths 8 -> 16, 2 heads, feed-forward 12, 10 tokens. */

#define P  "module_apply_default/Encoder_en/KonaTransformer/Encode/"
#define PK "module/Encoder_en/KonaTransformer/Encode/"
#define PS P "TransformerStack/"

typedef struct wlist {
    json_t *weights; /* manifest entries */
    float *data;     /* all values, as float32 or int32 bits */
    size_t n, cap;
} wlist;

/* Appends a weight; values are i * 0.001 + tag (or ival for int32). */
static void add_w(wlist *w, const char *name, const char *dtype, int r, int c, float tag,
                  int32_t ival)
{
    size_t cnt = (size_t)(r ? r : 1) * (c ? c : 1);
    json_t *shape = json_array();
    if (r) json_array_append_new(shape, json_integer(r));
    if (c) json_array_append_new(shape, json_integer(c));
    json_array_append_new(
        w->weights, json_pack("{s:s, s:o, s:s}", "name", name, "shape", shape, "dtype", dtype));
    if (w->n + cnt > w->cap) {
        w->cap = (w->n + cnt) * 2;
        w->data = realloc(w->data, w->cap * sizeof(float));
    }
    for (size_t i = 0; i < cnt; i++) {
        if (!strcmp(dtype, "int32"))
            memcpy(&w->data[w->n + i], &ival, 4);
        else
            w->data[w->n + i] = tag + 0.001f * (float)i;
    }
    w->n += cnt;
}

static void test_convert_tfjs(void **state)
{
    (void)state;
    enum { V = 10, ROWS = 12, E = 8, D = 16, H = 2, F = 12, MAXLEN = 10 };
    wlist w = {json_array(), NULL, 0, 0};
    char nm[512];
    add_w(&w, "module/Embeddings_en", "float32", ROWS, E, 1.0f, 0);
    add_w(&w, P "Some/Unrelated/Const", "int32", 3, 0, 0, 7); /* offsets must skip it */
    add_w(&w, PS "Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1", "float32", 1, E / 2, 2.0f, 0);
    add_w(&w,
          PS "Layer_1/TransformerLayer/MultiheadAttention/split_heads/split_last_dimension/"
             "Reshape/shape/2",
          "int32", 0, 0, 0, H);
    add_w(&w,
          PS "Layer_0/TransformerLayer/MultiheadAttention/split_heads/split_last_dimension/"
             "Reshape/shape/3",
          "int32", 0, 0, 0, E / H);
    add_w(&w,
          PS "Layer_1/TransformerLayer/MultiheadAttention/split_heads/split_last_dimension/"
             "Reshape/shape/3",
          "int32", 0, 0, 0, D / H);
    add_w(&w, "module_apply_default/Encoder_en/KonaTransformer/ClipToMaxLength/Less/y", "int32", 0,
          0, 0, MAXLEN);
    add_w(&w, PS "Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x", "float32",
          0, 0, 1e-6f, 0);
    add_w(&w,
          PS "Layer_1/TransformerLayer/MultiheadAttention/DotProductAttention/"
             "attention_bias_ignore_padding/mul/y",
          "float32", 0, 0, -1e9f, 0);
    add_w(&w, "module_apply_default/Encoder_en/hidden_layers/l2_normalize/Maximum/y", "float32", 0,
          0, 1e-12f, 0);
    for (int l = 0; l < 2; l++) {
        int d = l ? D : E;
        snprintf(nm, sizeof nm, PS "Layer_%d/TransformerLayer/MultiheadAttention/mul/y", l);
        add_w(&w, nm, "float32", 0, 0, l ? 0.25f : 0.5f, 0);
        const char *lp = l ? "Layer_1" : "Layer_0";
#define ADDL(fmt, r, c, tag)                                                                       \
    do {                                                                                           \
        snprintf(nm, sizeof nm, fmt, lp);                                                          \
        add_w(&w, nm, "float32", r, c, tag, 0);                                                    \
    } while (0)
        ADDL(P "%s/TransformerLayer/layer_prepostprocess/layer_norm/layer_norm_scale/"
               "ConcatPartitions/concat",
             d, 0, 3.0f);
        ADDL(P "%s/TransformerLayer/layer_prepostprocess/layer_norm/layer_norm_bias/"
               "ConcatPartitions/concat",
             d, 0, 4.0f);
        /* The 1x1 convolutions are 4-D [1, 1, in, out]: shape only counts. */
        ADDL(PK "%s/TransformerLayer/MultiheadAttention/qkv_transform_single/kernel/part_0", d,
             3 * d, 5.0f);
        ADDL(P "%s/TransformerLayer/MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/"
               "concat",
             3 * d, 0, 6.0f);
        ADDL(PK "%s/TransformerLayer/MultiheadAttention/output_transform_single/kernel/part_0", d,
             D, 7.0f);
        ADDL(P "%s/TransformerLayer/MultiheadAttention/output_transform_single/bias/"
               "ConcatPartitions/concat",
             D, 0, 8.0f);
        if (!l) {
            ADDL(P "%s/TransformerLayer/dense/kernel/ConcatPartitions/concat", E, D, 9.0f);
            ADDL(P "%s/TransformerLayer/dense/bias/ConcatPartitions/concat", D, 0, 10.0f);
        }
        ADDL(P "%s/TransformerLayer/FFN/layer_prepostprocess/layer_norm/layer_norm_scale/"
               "ConcatPartitions/concat",
             D, 0, 11.0f);
        ADDL(P "%s/TransformerLayer/FFN/layer_prepostprocess/layer_norm/layer_norm_bias/"
               "ConcatPartitions/concat",
             D, 0, 12.0f);
        ADDL(PS "%s/TransformerLayer/FFN/conv1/Tensordot/Reshape_1", D, F, 13.0f);
        ADDL(P "%s/TransformerLayer/FFN/conv1/bias/ConcatPartitions/concat", F, 0, 14.0f);
        ADDL(PS "%s/TransformerLayer/FFN/conv2/Tensordot/Reshape_1", F, D, 15.0f);
        ADDL(P "%s/TransformerLayer/FFN/conv2/bias/ConcatPartitions/concat", D, 0, 16.0f);
#undef ADDL
    }
    add_w(&w, "module/Encoder_en/hidden_layers/tanh_layer_0/weights", "float32", D, D, 17.0f, 0);
    add_w(&w, "module/Encoder_en/hidden_layers/tanh_layer_0/bias", "float32", D, 0, 18.0f, 0);

    /* Two shards, split at an arbitrary byte. */
    char *dir = tu_tmpdir("modelfile_convert");
    size_t bytes = w.n * 4, cut = bytes / 3 + 1;
    char *s1 = write_bytes(dir, "group1-shard1of2", (const uint8_t *)w.data, cut);
    char *s2 = write_bytes(dir, "group1-shard2of2", (const uint8_t *)w.data + cut, bytes - cut);
    json_t *model =
        json_pack("{s:{s:[]}, s:[{s:[s, s], s:o}]}", "modelTopology", "node", "weightsManifest",
                  "paths", "group1-shard1of2", "group1-shard2of2", "weights", w.weights);
    char mpath[1024];
    snprintf(mpath, sizeof mpath, "%s/model.json", dir);
    assert_int_equal(json_dump_file(model, mpath, 0), 0);
    /* Vocabulary with the reference's oddities: a null score, a repeat. */
    char *vocab = tu_write_file(dir, "vocab.json",
                                "[[\"\\ufffd\",0],[\"<s>\",0],[\"</s>\",0],[\"x1\",0],[\"x2\",0],"
                                "[\"x3\",0],[\"\\u2581\",-2.5],[\":\",null],[\"ab\",-3.25],"
                                "[\"ab\",-7.0]]");
    char out[1024];
    snprintf(out, sizeof out, "%s/converted.brm", dir);
    assert_int_equal(br_encoder_convert_tfjs(dir, out), BR_OK);

    use_model m;
    assert_int_equal(br__use_model_map(out, &m), BR_OK);
    assert_int_equal(m.vocab_size, V);
    assert_int_equal(m.emb_rows, ROWS);
    assert_int_equal(m.emb_dim, E);
    assert_int_equal(m.model_dim, D);
    assert_int_equal(m.heads, H);
    assert_int_equal(m.ff_dim, F);
    assert_int_equal(m.max_len, MAXLEN);
    assert_true(m.ln_eps == 1e-6f && m.l2_eps == 1e-12f && m.mask_bias == -1e9f);
    assert_true(m.layers[0].attn_scale == 0.5f && m.layers[1].attn_scale == 0.25f);
    assert_null(m.layers[1].res_w);
    /* Values land in the right tensors, in order (tag + i/1000). */
    assert_true(m.emb[0] == 1.0f && m.emb[ROWS * E - 1] == 1.0f + 0.001f * (ROWS * E - 1));
    assert_true(m.timing_inv[3] == 2.0f + 0.003f);
    assert_true(m.layers[0].res_w[5] == 9.0f + 0.005f);
    assert_true(m.layers[1].qkv_w[D * 3 * D - 1] == 5.0f + 0.001f * (D * 3 * D - 1));
    assert_true(m.layers[1].ff2_b[2] == 16.0f + 0.002f);
    assert_true(m.final_b[D - 1] == 18.0f + 0.001f * (D - 1));
    /* The vocabulary as given: null -> 0.0, the repeat kept. */
    assert_true(m.scores[7] == 0.0 && m.scores[8] == -3.25 && m.scores[9] == -7.0);
    assert_int_equal(m.piece_off[V] - m.piece_off[V - 1], 2);
    br__use_model_release(&m);

    /* Idempotence of the output: converting again gives the same bytes. */
    size_t l1, l2;
    char *b1 = tu_read_file(out, &l1);
    assert_int_equal(br_encoder_convert_tfjs(dir, out), BR_OK);
    char *b2 = tu_read_file(out, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    br_free(b1), br_free(b2);

    /* A missing weight is a clear error, and no file is left behind. */
    json_array_remove(
        json_object_get(json_array_get(json_object_get(model, "weightsManifest"), 0), "weights"),
        0);
    assert_int_equal(json_dump_file(model, mpath, 0), 0);
    snprintf(out, sizeof out, "%s/bad.brm", dir);
    assert_int_not_equal(br_encoder_convert_tfjs(dir, out), BR_OK);
    assert_int_not_equal(access(out, F_OK), 0);

    json_decref(model);
    free(w.data);
    br_free(s1), br_free(s2), br_free(vocab), br_free(dir);
}

static void test_real_model(void **state)
{
    (void)state;
    char path[1024];
    assert_int_equal(br_encoder_model_path("use-lite", path, sizeof path), BR_OK);
    if (br_encoder_check_file(path) == BR_ENOTFOUND) {
        printf("skip: no use-lite model at %s (run `make model`)\n", path);
        skip();
    }
    br_encoder *enc;
    assert_int_equal(br_encoder_open(path, &enc), BR_OK);
    br_encoder_info in;
    br_encoder_get_info(enc, &in);
    assert_int_equal(in.vocab_size, 8000);
    assert_int_equal(in.embedding_rows, 8002);
    assert_int_equal(in.embedding_dim, 256);
    assert_int_equal(in.model_dim, 512);
    assert_int_equal(in.heads, 4);
    assert_int_equal(in.ff_dim, 1536);
    assert_int_equal(in.max_tokens, 128);
    assert_true(in.layernorm_eps == 1e-6f);
    assert_int_equal(br_encoder_dim(enc), 512);
    size_t len;
    const char *p = br_encoder_piece(enc, 9, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(p, "\xe2\x96\x81the", 6);
    br_encoder_close(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_model_opens), cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_wrong_magic),      cmocka_unit_test(test_wrong_version),
        cmocka_unit_test(test_corrupt_byte),     cmocka_unit_test(test_bad_structure),
        cmocka_unit_test(test_missing_file),     cmocka_unit_test(test_model_path),
        cmocka_unit_test(test_convert_tfjs),     cmocka_unit_test(test_real_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
