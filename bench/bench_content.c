/*
 * bench_content.c: exact top-k latency: one query over n x dim books
 * (sgemv + partial sort), and a batch (blocked sgemm), on random unit
 * vectors. Prints JSON lines.
 *
 *   bench_content [--n 10000] [--dim 512] [--k 10] [--reps 200] [--batch 1000]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/bookrec.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    size_t n = 10000, d = 512, k = 10, reps = 200, batch = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        size_t v = strtoull(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--n")) n = v;
        else if (!strcmp(argv[i], "--dim")) d = v;
        else if (!strcmp(argv[i], "--k")) k = v;
        else if (!strcmp(argv[i], "--reps")) reps = v;
        else if (!strcmp(argv[i], "--batch")) batch = v;
    }
    br_rng rng;
    br_rng_seed(&rng, 1);
    float *base = br_aligned_alloc(n * d * sizeof(float), BR_ALIGN);
    float *q = br_aligned_alloc(batch * d * sizeof(float), BR_ALIGN);
    for (size_t i = 0; i < n * d; i++) base[i] = (float)br_rng_normal(&rng);
    for (size_t i = 0; i < batch * d; i++) q[i] = (float)br_rng_normal(&rng);
    int32_t *ids = malloc(batch * k * sizeof(int32_t));
    float *sc = malloc(batch * k * sizeof(float));
    double *t = malloc(reps * sizeof(double));
    br_topk_search(base, n, d, q, 1, k, NULL, ids, sc); /* warm: pages, BLAS threads */
    for (size_t r = 0; r < reps; r++) {
        uint64_t t0 = br_now_ns();
        br_topk_search(base, n, d, q + (r % batch) * d, 1, k, NULL, ids, sc);
        t[r] = (br_now_ns() - t0) / 1e3;
    }
    qsort(t, reps, sizeof(double), cmp);
    printf("{\"bench\":\"topk_one\",\"n\":%zu,\"dim\":%zu,\"k\":%zu,\"reps\":%zu,"
           "\"best_us\":%.1f,\"median_us\":%.1f,\"p90_us\":%.1f}\n",
           n, d, k, reps, t[0], t[reps / 2], t[reps * 9 / 10]);
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        uint64_t t0 = br_now_ns();
        br_topk_search(base, n, d, q, batch, k, NULL, ids, sc);
        double s = (br_now_ns() - t0) / 1e9;
        if (s < best) best = s;
    }
    printf("{\"bench\":\"topk_batch\",\"n\":%zu,\"dim\":%zu,\"k\":%zu,\"queries\":%zu,"
           "\"best_s\":%.4f,\"us_per_query\":%.1f,\"gflops\":%.1f}\n",
           n, d, k, batch, best, best * 1e6 / batch, 2.0 * n * d * batch / best / 1e9);
    return 0;
}
