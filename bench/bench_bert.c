/*
 * bench_bert.c: the bookrec side of bench/bert.sh (the BERT / MiniLM
 * encoder against PyTorch).
 *
 *   bench_bert tokenize DIR TEXTS IDS
 *       token ids of each text ([CLS]/[SEP], untruncated), one text per
 *       line, space-separated; TEXTS holds the texts separated by NUL bytes
 *   bench_bert run DIR IDS SINGLE OUT_PREFIX [--threads N] [--repeat R]
 *                  [--parts corpus,single,uniform]
 *       times, on the ids (cut to the model's max length as the peer is fed),
 *       the parts named (default all; sgemm runs with uniform):
 *         corpus    all sequences in one br_bert_embed_ids call
 *         single    each sequence of SINGLE.json alone
 *         uniform   batches of 32 random sequences of 40 and of 128 tokens
 *         sgemm     plain cblas_sgemm of the FFN product's shape over the
 *                   uniform batch's tokens (4096 x 384 . 384 x 1536): best
 *                   of single calls, and "sustained" (after each uniform
 *                   repetition, calls of the same FLOP count timed as one);
 *                   and the FP32 FMA peak of one thread (registers only)
 *       prints one JSON object (seconds, best of R) and writes
 *       OUT_PREFIX.corpus.npy (when the corpus part runs).
 * The seconds of the forward pass exclude tokenization (the peer gets ids);
 * `corpus_text_s` adds it (br_bert_embed from text), for the record.
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/bookrec.h"

static double now(void)
{
    return (double)br_now_ns() / 1e9;
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
/* The FP32 ceiling of one thread: 24 independent AVX-512 FMA chains in
 * registers, no memory. GFLOP/s, best of 5; 0 without AVX-512. */
__attribute__((target("avx512f,fma"))) static double fma_peak_avx512(void)
{
    __m512 a[24];
    for (int i = 0; i < 24; i++) a[i] = _mm512_set1_ps((float)i * 1e-3f);
    __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-4f);
    const long iters = 10000000;
    double best = INFINITY;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        for (long n = 0; n < iters; n++) {
#pragma GCC unroll 24
            for (int i = 0; i < 24; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
            __asm__ volatile("" : "+v"(x)); /* keep the loop */
        }
        double t = now() - t0;
        best = t < best ? t : best;
    }
    float sink = 0;
    for (int i = 0; i < 24; i++) sink += _mm512_reduce_add_ps(a[i]);
    return sink == 12345.0f ? 0 : iters * 24 * 32.0 / best / 1e9;
}
static double fma_peak(void)
{
    return __builtin_cpu_supports("avx512f") ? fma_peak_avx512() : 0;
}
#else
static double fma_peak(void)
{
    return 0;
}
#endif

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Id lines: one sequence per line, ids separated by spaces. */
static int load_ids(const char *path, int32_t ***ids, size_t **lens, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 0;
    *n = 0;
    *ids = NULL;
    *lens = NULL;
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
        if (*n == cap) {
            cap = cap * 2 + 64;
            *ids = realloc(*ids, cap * sizeof **ids);
            *lens = realloc(*lens, cap * sizeof **lens);
        }
        size_t k = 0, kc = 16;
        int32_t *v = malloc(kc * sizeof *v);
        for (char *p = line, *end; (v[k] = (int32_t)strtol(p, &end, 10)), end != p; p = end) {
            if (++k == kc) v = realloc(v, (kc *= 2) * sizeof *v);
        }
        (*ids)[*n] = v;
        (*lens)[(*n)++] = k;
    }
    free(line);
    fclose(f);
    return 0;
}

static int cmd_tokenize(int argc, char **argv)
{
    if (argc != 5) return 2;
    br_bert *b;
    if (br_bert_open(argv[2], NULL, &b) != BR_OK) {
        fprintf(stderr, "bench_bert: %s\n", br_error_detail());
        return 1;
    }
    FILE *in = fopen(argv[3], "rb"), *out = fopen(argv[4], "w");
    if (!in || !out) {
        perror("bench_bert tokenize");
        return 1;
    }
    char *text = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getdelim(&text, &cap, '\0', in)) > 0) {
        int32_t *ids;
        size_t n;
        if (br_bert_tokenize(b, text, &ids, &n) != BR_OK) return 1;
        for (size_t k = 0; k < n; k++) fprintf(out, k ? " %d" : "%d", ids[k]);
        fputc('\n', out);
        br_free(ids);
    }
    free(text);
    fclose(in);
    int rc = fclose(out) == 0 ? 0 : 1;
    br_bert_close(b);
    return rc;
}

static int cmd_run(int argc, char **argv)
{
    if (argc < 6) return 2;
    int threads = 1, repeat = 3;
    const char *parts = "corpus,single,uniform";
    for (int i = 6; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--repeat")) repeat = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--parts")) parts = argv[i + 1];
    }
    const int do_corpus = strstr(parts, "corpus") != NULL,
              do_single = strstr(parts, "single") != NULL,
              do_uniform = strstr(parts, "uniform") != NULL;
    br_set_num_threads(threads);
    br_bert *b;
    if (br_bert_open(argv[2], NULL, &b) != BR_OK) {
        fprintf(stderr, "bench_bert: %s\n", br_error_detail());
        return 1;
    }
    int32_t **ids, **single;
    size_t *lens, *slens, n, ns;
    if (load_ids(argv[3], &ids, &lens, &n) || load_ids(argv[4], &single, &slens, &ns)) return 1;
    size_t H = br_bert_dim(b);
    float *out = malloc(n * H * sizeof *out);
    double best = INFINITY;
    br_bert_embed_ids(b, (const int32_t *const *)ids, lens, n < 64 ? n : 64, out); /* warm */
    for (int r = 0; do_corpus && r < repeat; r++) {
        double t0 = now();
        if (br_bert_embed_ids(b, (const int32_t *const *)ids, lens, n, out) != BR_OK) {
            fprintf(stderr, "bench_bert: %s\n", br_error_detail());
            return 1;
        }
        double t = now() - t0;
        best = t < best ? t : best;
    }
    printf("{\"threads\": %d", threads);
    if (do_corpus) {
        char path[4096];
        snprintf(path, sizeof path, "%s.corpus.npy", argv[5]);
        if (br_npy_write(path, BR_DTYPE_F32, 2, n, H, out) != BR_OK) {
            fprintf(stderr, "bench_bert: %s\n", br_error_detail());
            return 1;
        }
        printf(", \"corpus_s\": %.6f", best);
    }

    /* single sentences: best of max(R, 3) per sentence, median over them */
    double *lat = malloc((ns ? ns : 1) * sizeof *lat), total = 0;
    float *one = malloc(H * sizeof *one);
    for (size_t i = 0; do_single && i < ns; i++) {
        double bt = INFINITY;
        for (int r = 0; r < (repeat > 3 ? repeat : 3); r++) {
            const int32_t *p = single[i];
            double t0 = now();
            br_bert_embed_ids(b, &p, &slens[i], 1, one);
            double t = now() - t0;
            bt = t < bt ? t : bt;
        }
        lat[i] = bt;
        total += bt;
    }
    qsort(lat, ns, sizeof *lat, cmp_double);
    if (do_single)
        printf(", \"single_median_s\": %.6f, \"single_total_s\": %.6f",
               ns ? (ns % 2 ? lat[ns / 2] : (lat[ns / 2 - 1] + lat[ns / 2]) / 2) : 0.0, total);

    /* uniform batches of random ids */
    br_rng rng;
    br_rng_seed(&rng, 3);
    /* plain sgemm: (4096, 384) . (1536, 384)^T, as the FFN's first product */
    size_t M = 4096, K = 384, N = 1536;
    float *sx = malloc(M * K * sizeof *sx), *sw = malloc(N * K * sizeof *sw),
          *sy = malloc(M * N * sizeof *sy);
    for (size_t i = 0; i < M * K; i++) sx[i] = (float)br_rng_normal(&rng);
    for (size_t i = 0; i < N * K; i++) sw[i] = (float)br_rng_normal(&rng) * 0.05f;
#define SGEMM()                                                                                    \
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, sx, (int)K, \
                sw, (int)K, 0.0f, sy, (int)N)
    if (do_uniform) SGEMM();
    br_bert_info info;
    br_bert_get_info(b, &info);
    static const size_t shapes[][2] = {{32, 40}, {32, 128}};
    for (size_t s = 0; do_uniform && s < 2; s++) {
        size_t B = shapes[s][0], L = shapes[s][1];
        int32_t **u = malloc(B * sizeof *u);
        size_t *ul = malloc(B * sizeof *ul);
        for (size_t i = 0; i < B; i++) {
            u[i] = malloc(L * sizeof **u);
            u[i][0] = 101;
            for (size_t k = 1; k + 1 < L; k++) u[i][k] = 1000 + (int32_t)br_rng_below(&rng, 29000);
            u[i][L - 1] = 102;
            ul[i] = L;
        }
        float *uo = malloc(B * H * sizeof *uo);
        br_bert_embed_ids(b, (const int32_t *const *)u, ul, B, uo);
        /* On a loaded machine a 20 ms sgemm and a 1 s forward pass see
         * different luck; so each repetition is followed by back-to-back
         * sgemm calls of the same FLOP count, timed as one ("sustained"). */
        const double hh = info.hidden, ii = info.intermediate;
        const double fu = B * L * 2 * (4 * hh * hh + 2 * hh * ii) * info.layers +
                          B * 4.0 * L * L * hh * info.layers,
                     fs = 2.0 * M * N * K;
        const int ns_calls = fu / fs < 1 ? 1 : (int)(fu / fs + 0.5);
        double bt = INFINITY, bs = INFINITY;
        for (int r = 0; r < repeat; r++) {
            double t0 = now();
            br_bert_embed_ids(b, (const int32_t *const *)u, ul, B, uo);
            double t = now() - t0;
            bt = t < bt ? t : bt;
            t0 = now();
            for (int c = 0; c < ns_calls; c++) SGEMM();
            t = now() - t0;
            bs = t < bs ? t : bs;
        }
        printf(", \"uniform_%zux%zu_s\": %.6f, \"uniform_%zux%zu_sgemm_sustained_gflops\": %.3f", B,
               L, bt, B, L, ns_calls * fs / bs / 1e9);
        for (size_t i = 0; i < B; i++) free(u[i]);
        free(u), free(ul), free(uo);
    }

    if (do_uniform) {
        SGEMM();
        double bt = INFINITY;
        for (int r = 0; r < 5 * repeat; r++) {
            double t0 = now();
            SGEMM();
            double t = now() - t0;
            bt = t < bt ? t : bt;
        }
        printf(", \"sgemm_gflops\": %.3f, \"fma_peak_gflops\": %.3f", 2.0 * M * N * K / bt / 1e9,
               fma_peak());
    }
#undef SGEMM
    free(sx), free(sw), free(sy);
    printf("}\n");
    for (size_t i = 0; i < n; i++) free(ids[i]);
    for (size_t i = 0; i < ns; i++) free(single[i]);
    free(ids), free(lens), free(single), free(slens), free(out), free(lat), free(one);
    br_bert_close(b);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = 2;
    if (argc >= 2 && !strcmp(argv[1], "tokenize"))
        rc = cmd_tokenize(argc, argv);
    else if (argc >= 2 && !strcmp(argv[1], "run"))
        rc = cmd_run(argc, argv);
    if (rc == 2)
        fprintf(stderr, "usage: bench_bert tokenize DIR TEXTS IDS\n"
                        "       bench_bert run DIR IDS SINGLE OUT_PREFIX "
                        "[--threads N] [--repeat R]\n"
                        "                  [--parts corpus,single,uniform]\n");
    return rc;
}
