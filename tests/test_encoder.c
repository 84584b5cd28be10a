/*
 * test_encoder.c: the use-lite forward pass. The kernels against their
 * reference twins; on the real model, every golden text within the issue's
 * bounds of the TF.js reference (max abs diff <= 2e-6, cosine >= 0.9999999),
 * the zero-token output, batching and concurrency giving the same rows.
 */
#include <cblas.h>
#include <jansson.h>
#include <unistd.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "../fuzz/tiny_model.h"
#include "linalg/nn.h"

#define MAX_ABS 2e-6
#define MIN_COS 0.9999999

static char model_path[1024];

static br_encoder *real_model(void)
{
    if (br_encoder_model_path("use-lite", model_path, sizeof model_path) != BR_OK) return NULL;
    br_encoder *enc = NULL;
    if (br_encoder_open(model_path, &enc) != BR_OK) {
        printf("skip: no usable use-lite model at %s (%s); run `make model`\n", model_path,
               br_error_detail());
        return NULL;
    }
    return enc;
}

static void fill(br_rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(br_rng_uniform(r) * 2 - 1);
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void test_kernels(void **state)
{
    (void)state;
    br_rng r;
    br_rng_seed(&r, 7);
    /* Linear: odd shapes, strided rows, with and without bias. */
    size_t shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 64, 33}, {40, 256, 96}};
    for (size_t s = 0; s < 4; s++) {
        size_t n = shapes[s][0], k = shapes[s][1], m = shapes[s][2], ldx = k + 3, ldy = m + 2;
        float *x = malloc(n * ldx * 4), *w = malloc(k * m * 4), *b = malloc(m * 4);
        float *y = calloc(n * ldy, 4), *yr = calloc(n * ldy, 4);
        fill(&r, x, n * ldx), fill(&r, w, k * m), fill(&r, b, m);
        for (int bias = 0; bias < 2; bias++) {
            br__nn_linear(x, n, k, ldx, w, m, bias ? b : NULL, y, ldy);
            br__nn_linear_ref(x, n, k, ldx, w, m, bias ? b : NULL, yr, ldy);
            for (size_t i = 0; i < n; i++)
                assert_true(max_abs_diff(y + i * ldy, yr + i * ldy, m) < 1e-5 * sqrt((double)k));
        }
        free(x), free(w), free(b), free(y), free(yr);
    }
    /* The fused epilogues: relu(x.w + b) and (x.w + b) + acc. */
    {
        size_t n = 9, k = 33, m = 20;
        float *x = malloc(n * k * 4), *w = malloc(k * m * 4), *b = malloc(m * 4);
        float *y = malloc(n * m * 4), *yr = malloc(n * m * 4), *acc = malloc(n * m * 4);
        float *acc0 = malloc(n * m * 4), *tmp = malloc(n * m * 4);
        fill(&r, x, n * k), fill(&r, w, k * m), fill(&r, b, m), fill(&r, acc, n * m);
        memcpy(acc0, acc, n * m * 4);
        br__nn_linear_relu(x, n, k, w, m, b, y);
        br__nn_linear_ref(x, n, k, k, w, m, b, yr, m);
        size_t negatives = 0;
        for (size_t i = 0; i < n * m; i++) {
            negatives += yr[i] < 0;
            assert_true(fabs(y[i] - (yr[i] > 0 ? yr[i] : 0)) < 1e-5);
        }
        assert_true(negatives > 0); /* the ReLU had something to do */
        br__nn_linear_residual(x, n, k, w, m, b, tmp, acc);
        for (size_t i = 0; i < n * m; i++) assert_true(fabs(acc[i] - (yr[i] + acc0[i])) < 1e-5);
        free(x), free(w), free(b), free(y), free(yr), free(acc), free(acc0), free(tmp);
    }
    /* Attention: lengths 1..40, 4 heads. */
    size_t lens[] = {1, 2, 7, 40};
    for (size_t s = 0; s < 4; s++) {
        size_t L = lens[s], D = 64, H = 4;
        float *qkv = malloc(L * 3 * D * 4), *o = malloc(L * D * 4), *orf = malloc(L * D * 4);
        float *ws = malloc(br__nn_attention_ws(L, D) * 4);
        fill(&r, qkv, L * 3 * D);
        br__nn_attention(qkv, L, D, H, 0.25f, ws, o, D);
        br__nn_attention_ref(qkv, L, D, H, 0.25f, orf, D);
        assert_true(max_abs_diff(o, orf, L * D) < 1e-5);
        free(qkv), free(o), free(orf), free(ws);
    }
    /* LayerNorm: zero mean, unit variance before scale and bias. */
    float x[2 * 16], y[2 * 16], one[16], zero[16];
    fill(&r, x, 32);
    for (int j = 0; j < 16; j++) one[j] = 1, zero[j] = 0;
    br__nn_layernorm(x, 2, 16, one, zero, 1e-6f, y);
    for (int i = 0; i < 2; i++) {
        double mu = 0, var = 0;
        for (int j = 0; j < 16; j++) mu += y[i * 16 + j];
        for (int j = 0; j < 16; j++) var += (y[i * 16 + j] - mu / 16) * (y[i * 16 + j] - mu / 16);
        assert_true(fabs(mu / 16) < 1e-6);
        assert_true(fabs(var / 16 - 1) < 1e-4);
    }
}

/* The constant a text with no tokens gets: l2normalize(tanh(final bias)). */
static void zero_token_expected(const float *bias, size_t d, float *out)
{
    double sq = 0;
    for (size_t j = 0; j < d; j++) {
        out[j] = (float)tanh((double)bias[j]);
        sq += (double)out[j] * out[j];
    }
    for (size_t j = 0; j < d; j++) out[j] = (float)(out[j] / sqrt(sq));
}

static void test_tiny_model(void **state)
{
    (void)state;
    uint8_t *b = NULL;
    size_t len = tiny_model_build(&b);
    use_model m;
    assert_int_equal(br__use_model_parse(b, len, 1, &m), BR_OK);
    char *dir = tu_tmpdir("encoder_tiny");
    char path[1024];
    snprintf(path, sizeof path, "%s/tiny.brm", dir);
    FILE *f = fopen(path, "wb");
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
    br_encoder *enc;
    assert_int_equal(br_encoder_open(path, &enc), BR_OK);
    /* Longer than max_len (6 tokens): clipped, no overflow. */
    const char *texts[] = {"", "ab", "a a a a a a a a a a a a", "c", ""};
    float out[5 * 16], want[16];
    assert_int_equal(br_encoder_embed(enc, texts, 5, out), BR_OK);
    zero_token_expected(m.final_b, 16, want);
    assert_true(max_abs_diff(out, want, 16) < 1e-6);
    assert_true(max_abs_diff(out + 4 * 16, want, 16) < 1e-6);
    for (int i = 0; i < 5; i++) {
        double n = 0;
        for (int j = 0; j < 16; j++) n += (double)out[i * 16 + j] * out[i * 16 + j];
        assert_true(fabs(n - 1) < 1e-5);
    }
    /* A real text differs from the zero-token constant. */
    assert_true(max_abs_diff(out + 16, want, 16) > 1e-3);
    assert_int_equal(br_encoder_embed(enc, texts, 0, NULL), BR_OK);
    const char *nul[] = {"a", NULL};
    assert_int_equal(br_encoder_embed(enc, nul, 2, out), BR_EINVAL);
    br_encoder_close(enc);
    br_free(dir);
    free(b);
}

static void check_golden(const char *name)
{
    br_encoder *enc = real_model();
    if (!enc) skip();
    char path[1024];
    snprintf(path, sizeof path, "%s/use-lite/%s", BR_GOLDEN_DIR, name);
    json_error_t jerr;
    json_t *g = json_load_file(path, 0, &jerr);
    if (!g) fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
    size_t n = json_array_size(g), d = br_encoder_dim(enc);
    assert_true(n > 0);
    const char **texts = malloc(n * sizeof *texts);
    float *out = malloc(n * d * sizeof *out);
    for (size_t i = 0; i < n; i++)
        texts[i] = json_string_value(json_object_get(json_array_get(g, i), "text"));
    assert_int_equal(br_encoder_embed(enc, texts, n, out), BR_OK);
    double worst_abs = 0, worst_cos = 1;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object_get(json_array_get(g, i), "embedding");
        assert_int_equal(json_array_size(e), d);
        double mad = 0, dot = 0, na = 0, nb = 0;
        for (size_t j = 0; j < d; j++) {
            double ref = json_number_value(json_array_get(e, j)), got = out[i * d + j];
            mad = fmax(mad, fabs(got - ref));
            dot += got * ref, na += got * got, nb += ref * ref;
        }
        double cos = dot / sqrt(na * nb);
        worst_abs = fmax(worst_abs, mad);
        worst_cos = fmin(worst_cos, cos);
        if ((mad > MAX_ABS || cos < MIN_COS) && bad++ < 5)
            fprintf(stderr, "%s[%zu]: max abs %.3g cos %.9f '%.50s'\n", name, i, mad, cos,
                    texts[i]);
    }
    printf("%s: %zu texts, max abs diff %.3g, min cosine %.10f\n", name, n, worst_abs, worst_cos);
    assert_int_equal(bad, 0);
    free(texts);
    free(out);
    json_decref(g);
    br_encoder_close(enc);
}

static void test_golden_edge_cases(void **state)
{
    (void)state;
    check_golden("edge_cases.json");
}

static void test_golden_seed_descriptions(void **state)
{
    (void)state;
    check_golden("seed_descriptions.json");
}

static void test_edge_behaviour(void **state)
{
    (void)state;
    br_encoder *enc = real_model();
    if (!enc) skip();
    size_t d = br_encoder_dim(enc);
    use_model m;
    assert_int_equal(br__use_model_map(model_path, &m), BR_OK);
    float want[512], out[3 * 512], single[512];
    zero_token_expected(m.final_b, d, want);
    br__use_model_release(&m);
    /* A batch of only empty texts works (TF.js throws) and gives the
     * graph's zero-token output; so does one inside a batch. */
    const char *empty[] = {""};
    assert_int_equal(br_encoder_embed(enc, empty, 1, out), BR_OK);
    assert_true(max_abs_diff(out, want, d) < 1e-6);
    const char *mixed[] = {"a", "", "Books are great!"};
    assert_int_equal(br_encoder_embed(enc, mixed, 3, out), BR_OK);
    assert_true(max_abs_diff(out + d, want, d) < 1e-6);
    /* Rows do not depend on their batch. */
    assert_int_equal(br_encoder_embed(enc, mixed + 2, 1, single), BR_OK);
    assert_true(max_abs_diff(out + 2 * d, single, d) < 1e-6);
    /* Invalid UTF-8 is embedded as its U+FFFD repair, not refused. */
    const char *bad[] = {"ab\xff"
                         "cd",
                         "ab\xef\xbf\xbd"
                         "cd"};
    assert_int_equal(br_encoder_embed(enc, bad, 2, out), BR_OK);
    assert_true(max_abs_diff(out, out + d, d) < 1e-6);
    /* Only the first 128 tokens count: appending text after them changes
     * nothing. 200 x " the" is 200 tokens. */
    char longa[2048] = "", longb[4096];
    for (int i = 0; i < 200; i++) strcat(longa, " the");
    snprintf(longb, sizeof longb, "%s and then a completely different ending", longa);
    const char *longs[] = {longa, longb};
    assert_int_equal(br_encoder_embed(enc, longs, 2, out), BR_OK);
    assert_true(max_abs_diff(out, out + d, d) < 1e-6);
    br_encoder_close(enc);
}

typedef struct job {
    const br_encoder *enc;
    const char **texts;
    size_t n;
    float *out;
    br_status st;
} job;

static void *embed_job(void *arg)
{
    job *j = arg;
    for (int rep = 0; rep < 2 && j->st == BR_OK; rep++)
        j->st = br_encoder_embed(j->enc, j->texts, j->n, j->out);
    return NULL;
}

/* Concurrent embed calls on one handle give the rows a lone call gives. */
static void test_concurrent(void **state)
{
    (void)state;
    br_encoder *enc = real_model();
    if (!enc) skip();
    char path[1024];
    snprintf(path, sizeof path, "%s/use-lite/seed_descriptions.json", BR_GOLDEN_DIR);
    json_t *g = json_load_file(path, 0, NULL);
    assert_non_null(g);
    enum { T = 3, N = 40 };
    size_t d = br_encoder_dim(enc);
    const char *texts[T][N];
    job jobs[T];
    pthread_t th[T];
    float *solo = malloc(T * N * d * sizeof *solo);
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < N; i++)
            texts[t][i] = json_string_value(json_object_get(json_array_get(g, t * N + i), "text"));
        assert_int_equal(br_encoder_embed(enc, texts[t], N, solo + t * N * d), BR_OK);
        jobs[t] = (job){enc, texts[t], N, malloc(N * d * sizeof(float)), BR_OK};
    }
    for (int t = 0; t < T; t++)
        assert_int_equal(pthread_create(&th[t], NULL, embed_job, &jobs[t]), 0);
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < T; t++) {
        assert_int_equal(jobs[t].st, BR_OK);
        assert_true(max_abs_diff(jobs[t].out, solo + t * N * d, N * d) < 1e-6);
        free(jobs[t].out);
    }
    free(solo);
    json_decref(g);
    br_encoder_close(enc);
}

/* OpenBLAS 0.3.21 does not know this test machine's CPU model (Emerald
 * Rapids, model 207) and falls back to its generic "Prescott" SSE3 kernels,
 * 5x slower than the AVX-512 ones the CPU can run. The choice is made when
 * the library loads, from OPENBLAS_CORETYPE, so set it and start again. */
static void fix_blas_coretype(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || strcmp(openblas_get_corename(), "Prescott") != 0) return;
    __builtin_cpu_init();
    const char *core = __builtin_cpu_supports("avx512f") ? "SkylakeX"
                       : __builtin_cpu_supports("avx2")  ? "Haswell"
                                                         : NULL;
    if (!core) return;
    setenv("OPENBLAS_CORETYPE", core, 1);
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
    (void)argc;
    fix_blas_coretype(argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels),           cmocka_unit_test(test_tiny_model),
        cmocka_unit_test(test_golden_edge_cases), cmocka_unit_test(test_golden_seed_descriptions),
        cmocka_unit_test(test_edge_behaviour),    cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
