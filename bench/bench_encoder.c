/*
 * bench_encoder.c: speed of the use-lite encoder (bench/encoder.sh runs it
 * beside the TF.js reference and docs/benchmarks.md quotes both).
 *
 * usage: bench_encoder [--model PATH] [--seed books.csv] [--goodbooks books.csv]
 *                      [--threads 1,2] [--repeat N]
 *        bench_encoder --peak-mem books.csv [--model PATH]
 *
 * Reports, per corpus and thread count: sentences/s, tokens/s and the
 * achieved GFLOP/s of the forward pass next to a plain cblas_sgemm of the
 * encoder's typical shape measured in the same run; then the latency of one
 * short text. --peak-mem embeds every book of a catalogue (the full text
 * template of `bookrec embed --books`) and prints the peak RSS.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bookrec/bookrec.h"

/* Multiply-adds per token of the projections (qkv, output, residual, FFN of
 * both layers) of use-lite: 4,653,056. */
static double linear_macs_per_token(const br_encoder_info *in)
{
    double E = in->embedding_dim, D = in->model_dim, F = in->ff_dim;
    return E * 3 * E + E * D + E * D + 2 * D * F + D * 3 * D + D * D + 2 * D * F;
}

/* FLOPs of embedding these texts (2 per multiply-add), from their token
 * counts: projections, attention (q.k and weights.v), the final dense. */
static double forward_flops(const br_encoder_info *in, const size_t *ntok, size_t n)
{
    double f = 0, per = linear_macs_per_token(in);
    for (size_t i = 0; i < n; i++) {
        double L = (double)ntok[i];
        f += 2 * (L * per + 2 * L * L * in->embedding_dim + 2 * L * L * in->model_dim +
                  (double)in->model_dim * in->output_dim);
    }
    return f;
}

static double sgemm_gflops(void)
{
    /* The encoder's most common product: (2048 tokens, 512) . (512, 1536). */
    const int M = 2048, K = 512, N = 1536;
    float *a = br_aligned_alloc((size_t)M * K * 4, 64),
          *b = br_aligned_alloc((size_t)K * N * 4, 64);
    float *c = br_aligned_alloc((size_t)M * N * 4, 64);
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)(i % 5) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, a, K, b, N, 0, c, N);
    int reps = 0;
    uint64_t t0 = br_now_ns(), t;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, a, K, b, N, 0, c, N);
        reps++;
        t = br_now_ns();
    } while (t - t0 < 1000000000ull);
    br_aligned_free(a), br_aligned_free(b), br_aligned_free(c);
    return 2.0 * M * N * K * reps / ((double)(t - t0) / 1e9) / 1e9;
}

typedef struct corpus {
    const char *name;
    char **texts;
    size_t n;
    size_t *ntok; /* tokens the encoder reads (clipped) */
} corpus;

static int load_descriptions(const char *path, corpus *c, int full_template)
{
    br_load_options opt = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat;
    br_status st = br_catalog_load(path, &opt, &cat, NULL);
    if (st != BR_OK) return fprintf(stderr, "%s: %s\n", path, br_error_detail()), -1;
    uint32_t n = br_catalog_count(cat);
    c->texts = calloc(n, sizeof *c->texts);
    c->n = 0;
    for (uint32_t i = 0; i < n; i++) {
        const br_book *b = br_catalog_book(cat, i);
        if (full_template) {
            /* The `bookrec embed --books` template. */
            size_t len = strlen(b->title) + strlen(b->authors) + strlen(b->genre) +
                         strlen(b->tags) * 2 + strlen(b->description) + 32;
            char *s = malloc(len), *w = s;
            w += sprintf(w, "%s", b->title);
            if (*b->authors) w += sprintf(w, ". by %s", b->authors);
            if (*b->genre) w += sprintf(w, ". %s", b->genre);
            if (*b->tags) {
                w += sprintf(w, ". ");
                for (const char *p = b->tags; *p; p++) {
                    if (*p == '|')
                        *w++ = ',', *w++ = ' ';
                    else
                        *w++ = *p;
                }
                *w = '\0';
            }
            if (*b->description) sprintf(w, ". %s", b->description);
            c->texts[c->n++] = s;
        } else if (*b->description) {
            c->texts[c->n++] = strdup(b->description);
        }
    }
    br_catalog_free(cat);
    return 0;
}

static void count_tokens(const br_encoder *enc, corpus *c)
{
    size_t max = br_encoder_max_tokens(enc);
    c->ntok = calloc(c->n, sizeof *c->ntok);
    for (size_t i = 0; i < c->n; i++) {
        int32_t *ids;
        size_t k;
        if (br_encoder_tokenize(enc, c->texts[i], &ids, &k) != BR_OK) k = 0;
        br_free(ids);
        c->ntok[i] = k < max ? k : max;
    }
}

/* Plain sgemm is timed right before each measurement, with the same thread
 * count: on a shared machine the load changes over minutes, and a ratio of
 * two rates is only meaningful if both saw the same conditions. */
static void run_corpus(const br_encoder *enc, const br_encoder_info *in, corpus *c,
                       const int *threads, int nthreads, int repeat)
{
    size_t tok = 0;
    for (size_t i = 0; i < c->n; i++) tok += c->ntok[i];
    double flops = forward_flops(in, c->ntok, c->n);
    float *out = malloc(c->n * br_encoder_dim(enc) * sizeof *out);
    printf("\n%s: %zu texts, %.1f tokens/text on average (after the %zu-token clip), "
           "%.3f GFLOP/text\n",
           c->name, c->n, (double)tok / (double)c->n, br_encoder_max_tokens(enc),
           flops / (double)c->n / 1e9);
    for (int k = 0; k < nthreads; k++) {
        br_set_num_threads(threads[k]);
        double peak = sgemm_gflops();
        br_encoder_embed(enc, (const char *const *)c->texts, c->n < 64 ? c->n : 64, out); /* warm */
        double best = 1e30;
        for (int r = 0; r < repeat; r++) {
            uint64_t t0 = br_now_ns();
            br_status st = br_encoder_embed(enc, (const char *const *)c->texts, c->n, out);
            double s = (double)(br_now_ns() - t0) / 1e9;
            if (st != BR_OK) {
                fprintf(stderr, "embed failed: %s\n", br_error_detail());
                exit(1);
            }
            best = s < best ? s : best;
        }
        double gf = flops / best / 1e9;
        printf("  threads %d: %8.1f sentences/s  %9.0f tokens/s  %6.2f s  %5.1f GFLOP/s = %3.0f%% "
               "of sgemm (%.1f GFLOP/s just before)\n",
               threads[k], (double)c->n / best, (double)tok / best, best, gf, 100 * gf / peak,
               peak);
    }
    free(out);
}

static void latency(const br_encoder *enc, const char *text)
{
    float out[4096];
    enum { N = 300 };
    double t[N];
    br_set_num_threads(1);
    for (int i = 0; i < 20; i++) br_encoder_embed(enc, &text, 1, out);
    for (int i = 0; i < N; i++) {
        uint64_t t0 = br_now_ns();
        br_encoder_embed(enc, &text, 1, out);
        t[i] = (double)(br_now_ns() - t0) / 1e3;
    }
    for (int i = 1; i < N; i++) /* insertion sort: N is small */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1], t[j - 1] = x;
        }
    int32_t *ids;
    size_t k = 0;
    br_encoder_tokenize(enc, text, &ids, &k);
    br_free(ids);
    printf("\nsingle text (%zu tokens, 1 thread): median %.0f us, p10 %.0f us, p90 %.0f us\n", k,
           t[N / 2], t[N / 10], t[N * 9 / 10]);
}

int main(int argc, char **argv)
{
    const char *model = NULL, *seed = NULL, *goodbooks = NULL, *peak_books = NULL;
    int threads[8] = {1, 2}, nthreads = 2, repeat = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = argv[++i];
        else if (!strcmp(argv[i], "--goodbooks") && i + 1 < argc)
            goodbooks = argv[++i];
        else if (!strcmp(argv[i], "--peak-mem") && i + 1 < argc)
            peak_books = argv[++i];
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            nthreads = 0;
            for (char *p = strtok(argv[++i], ","); p && nthreads < 8; p = strtok(NULL, ","))
                threads[nthreads++] = atoi(p);
        } else {
            fprintf(stderr, "usage: see the comment at the top of bench/bench_encoder.c\n");
            return 2;
        }
    }
    char path[4096];
    if (!model) {
        if (br_encoder_model_path("use-lite", path, sizeof path) != BR_OK) return 1;
        model = path;
    }
    br_encoder *enc;
    if (br_encoder_open(model, &enc) != BR_OK) {
        fprintf(stderr, "bench_encoder: %s\n", br_error_detail());
        return 1;
    }
    br_encoder_info in;
    br_encoder_get_info(enc, &in);

    if (peak_books) {
        corpus c = {"books", NULL, 0, NULL};
        if (load_descriptions(peak_books, &c, 1)) return 1;
        float *out = malloc(c.n * br_encoder_dim(enc) * sizeof *out);
        uint64_t t0 = br_now_ns();
        br_status st = br_encoder_embed(enc, (const char *const *)c.texts, c.n, out);
        double s = (double)(br_now_ns() - t0) / 1e9;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("embedded %zu books (full template) in %.2f s: peak RSS %.1f MB "
               "(output matrix %.1f MB, model file %.1f MB mapped)\n",
               c.n, s, ru.ru_maxrss / 1024.0, c.n * br_encoder_dim(enc) * 4 / 1048576.0,
               in.file_bytes / 1048576.0);
        free(out);
        br_encoder_close(enc);
        return st == BR_OK ? 0 : 1;
    }

    double peak = sgemm_gflops();
    br_set_num_threads(2);
    double peak2 = sgemm_gflops();
    br_set_num_threads(1);
    printf("plain cblas_sgemm (2048x512 . 512x1536): %.1f GFLOP/s with 1 thread, %.1f with 2\n",
           peak, peak2);
    corpus cs[2] = {{"seed descriptions", NULL, 0, NULL},
                    {"goodbooks descriptions", NULL, 0, NULL}};
    if (seed && load_descriptions(seed, &cs[0], 0) == 0) {
        count_tokens(enc, &cs[0]);
        run_corpus(enc, &in, &cs[0], threads, nthreads, repeat);
    }
    if (goodbooks && load_descriptions(goodbooks, &cs[1], 0) == 0) {
        count_tokens(enc, &cs[1]);
        run_corpus(enc, &in, &cs[1], threads, nthreads, repeat);
    }
    latency(enc, cs[0].n ? cs[0].texts[0]
                         : "A young wizard discovers a hidden school of magic and a dark secret.");
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < cs[k].n; i++) free(cs[k].texts[i]);
        free(cs[k].texts);
        free(cs[k].ntok);
    }
    br_encoder_close(enc);
    return 0;
}
