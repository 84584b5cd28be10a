/*
 * bench_hybrid.c: the default hybrid's ranking at catalogue scale, one JSON
 * line per measurement (bench/eval.sh quotes it).
 *
 *   bench_hybrid --books B --ratings R [--users-limit N] [--n 100]
 *                [--dim 512] [--iterations 15] [--candidates E,A]
 *
 * Fits what the default hybrid uses (the item-item model on its top M
 * books, implicit ALS, the content profiles) and ranks the top n for the
 * first N readers (every reader by default), reporting fit seconds per
 * part, readers per second and peak item-item model size. Book embeddings
 * are seeded random unit vectors of the encoder's width: the ranking cost
 * depends on their width, not their values, and embedding 100,000
 * generated books would take longer than ranking them.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bookrec/bookrec.h"

static double secs(uint64_t t0)
{
    return (double)(br_now_ns() - t0) * 1e-9;
}

/* Process CPU seconds: on a shared machine wall time says more about the
 * neighbours than about the code. */
static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    const char *books = NULL, *ratings = NULL;
    long limit = 0, n = 100, dim = 512, iters = 15;
    unsigned ce = 200, ca = 200;
    static const struct option lo[] = {
        {"books", required_argument, 0, 'b'},       {"ratings", required_argument, 0, 'r'},
        {"users-limit", required_argument, 0, 'u'}, {"n", required_argument, 0, 'n'},
        {"dim", required_argument, 0, 'd'},         {"iterations", required_argument, 0, 'i'},
        {"candidates", required_argument, 0, 'c'},  {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'b':
            books = optarg;
            break;
        case 'r':
            ratings = optarg;
            break;
        case 'u':
            limit = atol(optarg);
            break;
        case 'n':
            n = atol(optarg);
            break;
        case 'd':
            dim = atol(optarg);
            break;
        case 'i':
            iters = atol(optarg);
            break;
        case 'c':
            if (sscanf(optarg, "%u,%u", &ce, &ca) != 2) return 2;
            break;
        default:
            return 2;
        }
    }
    if (!books || !ratings || n < 1 || dim < 1 || iters < 1) {
        fprintf(stderr, "usage: bench_hybrid --books B --ratings R [--users-limit N] [--n K] "
                        "[--dim D] [--iterations N] [--candidates E,A]\n");
        return 2;
    }
    br_load_options lopt = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat = NULL;
    br_ratings *r = NULL;
    uint64_t t0 = br_now_ns();
    br_status st = br_catalog_load(books, &lopt, &cat, NULL);
    if (!st) st = br_ratings_load(ratings, cat, &lopt, &r, NULL);
    if (st) {
        fprintf(stderr, "bench_hybrid: %s: %s\n", br_strerror(st), br_error_detail());
        return 1;
    }
    double load_s = secs(t0);
    uint32_t nu = br_ratings_num_users(r), nb = br_ratings_num_books(r);
    float *emb = br_malloc((size_t)nb * (size_t)dim * sizeof *emb);
    if (!emb) return 1;
    br_rng rng;
    br_rng_seed(&rng, 42);
    for (uint32_t i = 0; i < nb; i++) {
        float *e = emb + (size_t)i * dim;
        double s = 0;
        for (long d = 0; d < dim; d++) e[d] = (float)br_rng_normal(&rng), s += e[d] * e[d];
        for (long d = 0; d < dim; d++) e[d] = (float)(e[d] / sqrt(s));
    }
    br_hybrid_options o;
    br_hybrid_options_default(&o);
    o.als.iterations = (uint32_t)iters;
    o.cand_ease = ce, o.cand_als = ca;
    br_train_data td = {nu,
                        nb,
                        br_ratings_count(r),
                        br_ratings_users(r),
                        br_ratings_books(r),
                        br_ratings_values(r)};
    br_engine e = BR_ENGINE_HYBRID;
    br_hybrid *h = NULL;
    t0 = br_now_ns();
    if ((st = br_hybrid_fit(&td, NULL, emb, (size_t)dim, &o, &e, 1, &h))) {
        fprintf(stderr, "bench_hybrid: fit: %s: %s\n", br_strerror(st), br_error_detail());
        return 1;
    }
    double fit_s = secs(t0);
    printf("{\"kind\":\"fit\",\"users\":%u,\"books\":%u,\"ratings\":%zu,\"load_s\":%.2f,"
           "\"fit_s\":%.2f,\"ease_s\":%.2f,\"als_s\":%.2f,\"content_s\":%.2f}\n",
           nu, nb, br_ratings_count(r), load_s, fit_s, br_hybrid_fit_seconds(h, BR_ENGINE_EASE),
           br_hybrid_fit_seconds(h, BR_ENGINE_ALS), br_hybrid_fit_seconds(h, BR_ENGINE_CONTENT));
    fflush(stdout);
    size_t m = limit > 0 && (size_t)limit < nu ? (size_t)limit : nu;
    enum { CHUNK = 4096 };
    uint32_t *users = br_malloc(CHUNK * sizeof *users);
    uint32_t *items = br_malloc((size_t)CHUNK * (size_t)n * sizeof *items);
    if (!users || !items) return 1;
    /* Readers spread over the whole range (ids are not ordered by anything). */
    size_t stride = nu / m ? nu / m : 1, filled = 0;
    t0 = br_now_ns();
    double c0 = cpu();
    for (size_t u0 = 0; u0 < m && !st; u0 += CHUNK) {
        size_t cnt = m - u0 < CHUNK ? m - u0 : CHUNK;
        for (size_t j = 0; j < cnt; j++) users[j] = (uint32_t)(((u0 + j) * stride) % nu);
        st = br_hybrid_rank(h, BR_ENGINE_HYBRID, users, cnt, (uint32_t)n, items, NULL);
        for (size_t j = 0; j < cnt * (size_t)n; j++) filled += items[j] != UINT32_MAX;
    }
    double rank_s = secs(t0), rank_cpu = cpu() - c0;
    if (st) {
        fprintf(stderr, "bench_hybrid: rank: %s: %s\n", br_strerror(st), br_error_detail());
        return 1;
    }
    printf("{\"kind\":\"rank\",\"readers\":%zu,\"n\":%ld,\"candidates\":[%u,%u],\"rank_s\":%.2f,"
           "\"readers_per_s\":%.0f,\"cpu_s\":%.2f,\"filled\":%.4f}\n",
           m, n, ce, ca, rank_s, (double)m / rank_s, rank_cpu,
           (double)filled / ((double)m * (double)n));
    br_free(users);
    br_free(items);
    br_hybrid_free(h);
    br_free(emb);
    br_ratings_free(r);
    br_catalog_free(cat);
    return 0;
}
