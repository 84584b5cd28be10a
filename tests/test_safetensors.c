/*
 * test_safetensors.c: the .safetensors reader: the tiny golden model, F32 /
 * F16 / BF16 / F64 conversions (aligned and unaligned), and every refusal
 * (truncation, bad header, overlapping or mis-sized tensors).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "text/safetensors.h"

static char *tmp;

static int setup(void **state)
{
    (void)state;
    tmp = tu_tmpdir("test_safetensors");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    br_free(tmp);
    return 0;
}

/* Writes header JSON (padded with `pad` spaces) + payload; returns the path. */
static char *write_st(const char *name, const char *json, size_t pad, const void *data,
                      size_t bytes)
{
    char *p = br_malloc(4096);
    snprintf(p, 4096, "%s/%s", tmp, name);
    FILE *f = fopen(p, "wb");
    uint64_t n = strlen(json) + pad;
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(json, 1, strlen(json), f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    if (bytes) fwrite(data, 1, bytes, f);
    fclose(f);
    return p;
}

static void test_tiny_model(void **state)
{
    (void)state;
    st_file *f;
    assert_int_equal(br__st_open(BR_GOLDEN_DIR "/minilm/tiny/model.safetensors", &f), BR_OK);
    /* 5 embedding tensors, 16 per layer x 2, the pooler's 2 */
    assert_int_equal(br__st_count(f), 5 + 16 * 2 + 2);
    const st_tensor *t = br__st_find(f, "embeddings.word_embeddings.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 30522);
    assert_int_equal(t->shape[1], 32);
    assert_int_equal(t->count, 30522 * 32);
    assert_non_null(br__st_f32_view(t));
    t = br__st_find(f, "encoder.layer.1.intermediate.dense.weight");
    assert_non_null(t);
    assert_int_equal(t->shape[0], 64);
    assert_int_equal(t->shape[1], 32);
    assert_null(br__st_find(f, "encoder.layer.2.intermediate.dense.weight"));
    assert_null(br__st_find(f, "__metadata__"));
    br__st_close(f);
}

static void test_dtypes_and_alignment(void **state)
{
    (void)state;
    /* a: F32 at offset 0; h: F16 [1, -2, 0.5, 65504, subnormal 2^-24, -0];
     * b: BF16; d: F64; u: F32 at an odd offset (unaligned in the map). */
    unsigned char data[64] = {0};
    float a[2] = {1.5f, -3.25f};
    memcpy(data, a, 8);
    uint16_t h[6] = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000};
    memcpy(data + 8, h, 12);
    uint16_t b[2] = {0x3fc0, 0xc120}; /* 1.5, -10 */
    memcpy(data + 20, b, 4);
    double d[1] = {0.1};
    memcpy(data + 24, d, 8);
    float u = 7.75f;
    memcpy(data + 33, &u, 4);
    const char *json = "{\"__metadata__\": {\"format\": \"pt\"},"
                       "\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                       "\"h\": {\"dtype\": \"F16\", \"shape\": [2, 3], \"data_offsets\": [8, 20]},"
                       "\"b\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [20, 24]},"
                       "\"d\": {\"dtype\": \"F64\", \"shape\": [1, 1], \"data_offsets\": [24, 32]},"
                       "\"i\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [32, 33]},"
                       "\"u\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [33, 37]}}";
    /* pad so that the data starts 8-aligned */
    size_t pad = (8 - (8 + strlen(json)) % 8) % 8;
    char *p = write_st("dtypes.safetensors", json, pad, data, 37);
    st_file *f;
    assert_int_equal(br__st_open(p, &f), BR_OK);
    assert_int_equal(br__st_count(f), 6);
    float out[8];
    const st_tensor *t = br__st_find(f, "a");
    assert_int_equal(br__st_to_f32(t, out), BR_OK);
    assert_true(out[0] == 1.5f && out[1] == -3.25f);
    assert_non_null(br__st_f32_view(t));
    t = br__st_find(f, "h");
    assert_int_equal(t->count, 6);
    assert_null(br__st_f32_view(t));
    assert_int_equal(br__st_to_f32(t, out), BR_OK);
    assert_true(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0.5f && out[3] == 65504.0f);
    assert_true(out[4] == ldexpf(1.0f, -24));
    assert_true(out[5] == 0.0f && signbit(out[5]));
    assert_true(isinf(br__st_half_to_float(0x7c00)) && isnan(br__st_half_to_float(0x7e00)));
    assert_true(br__st_half_to_float(0x03ff) == ldexpf(1023.0f, -24)); /* largest subnormal */
    t = br__st_find(f, "b");
    assert_int_equal(br__st_to_f32(t, out), BR_OK);
    assert_true(out[0] == 1.5f && out[1] == -10.0f);
    t = br__st_find(f, "d");
    assert_int_equal(br__st_to_f32(t, out), BR_OK);
    assert_true(out[0] == 0.1f);
    t = br__st_find(f, "i");
    assert_int_equal(t->dtype, ST_OTHER);
    assert_int_equal(br__st_to_f32(t, out), BR_EUNSUPPORTED);
    t = br__st_find(f, "u");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->count, 1);
    assert_null(br__st_f32_view(t)); /* odd offset: no zero-copy view */
    assert_int_equal(br__st_to_f32(t, out), BR_OK);
    assert_true(out[0] == 7.75f);
    br__st_close(f);
    br_free(p);
}

static void test_refusals(void **state)
{
    (void)state;
    unsigned char data[16] = {0};
    st_file *f = NULL;
    assert_int_equal(br__st_open("/nonexistent.safetensors", &f), BR_ENOTFOUND);
    char *p = write_st("short", "", 0, NULL, 0);
    FILE *s = fopen(p, "wb");
    fwrite("abc", 1, 3, s);
    fclose(s);
    assert_status_detail(br__st_open(p, &f), BR_EFORMAT, "too short");
    br_free(p);
    p = write_st("hlen", "{}", 0, NULL, 0);
    s = fopen(p, "r+b");
    fputc(0x40, s); /* header length 64 > file */
    fclose(s);
    assert_status_detail(br__st_open(p, &f), BR_EFORMAT, "does not fit");
    br_free(p);
    p = write_st("notjson", "{\"a\": ", 0, NULL, 0);
    assert_status_detail(br__st_open(p, &f), BR_EFORMAT, "not a JSON object");
    br_free(p);
    p = write_st("trunc",
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 0,
                 data, 8);
    assert_status_detail(br__st_open(p, &f), BR_EFORMAT, "truncated");
    br_free(p);
    p = write_st("size", "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 16]}}",
                 0, data, 16);
    assert_status_detail(br__st_open(p, &f), BR_EFORMAT, "16 bytes for 3 elements");
    br_free(p);
    p = write_st("overlap",
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                 "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
                 0, data, 16);
    assert_status_detail(br__st_open(p, &f), BR_EFORMAT, "overlap");
    br_free(p);
    p = write_st("dtype", "{\"a\": {\"dtype\": \"Q4\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
                 0, data, 8);
    assert_status_detail(br__st_open(p, &f), BR_EFORMAT, "unknown dtype");
    br_free(p);
    p = write_st("shape",
                 "{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 0,
                 data, 8);
    assert_status_detail(br__st_open(p, &f), BR_EFORMAT, "bad shape");
    br_free(p);
    p = write_st("offs", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}",
                 0, data, 8);
    assert_status_detail(br__st_open(p, &f), BR_EFORMAT, "bad data_offsets");
    br_free(p);
    assert_null(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_model),
        cmocka_unit_test(test_dtypes_and_alignment),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
