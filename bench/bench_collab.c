/*
 * bench_collab.c: timings of the collaborative engine, one JSON line per
 * measurement, for bench/collab.sh to tabulate next to the Python peers.
 *
 *   bench_collab svd   --books B --ratings R [--factors K] [--power-iters Q]
 *                      [--block B] [--exact] [--repeat N]
 *   bench_collab als   --books B --ratings R [--factors K] [--iterations N]
 *                      [--kind implicit|explicit] [--cg-steps N]
 *   bench_collab topn  --books B --ratings R [--factors K] [--n N]
 *                      [--model FILE] [--save-model FILE] [--iterations N]
 *                      [--users-limit N]
 *
 * svd prints seconds and the relative reconstruction error
 * sqrt(1 - sum s^2 / |A|_F^2) (exact for both libraries' outputs: U S V^T is
 * A projected onto span(U)). als prints seconds per iteration. topn runs
 * top-N for every reader (or reads a model), then times single-reader
 * top-N and fold-in. Thread count: the global --threads of the bench
 * (first argument `--threads N`), applied to OpenMP and OpenBLAS alike.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/bookrec.h"

typedef struct args {
    const char *books, *ratings, *model, *save_model, *kind;
    int factors, power_iters, iterations, repeat, n, exact, cg_steps, block;
    long users_limit; /* topn: only the first N readers (0: all) */
} args;

static double secs(uint64_t t0)
{
    return (double)(br_now_ns() - t0) * 1e-9;
}

static int load(const args *a, br_catalog **cat, br_ratings **r, br_csr *m, br_csr *mt, int need_mt,
                double *load_s)
{
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    uint64_t t0 = br_now_ns();
    br_status st = br_catalog_load(a->books, &lo, cat, NULL);
    if (!st) st = br_ratings_load(a->ratings, *cat, &lo, r, NULL);
    uint64_t t1 = br_now_ns();
    if (!st) st = br_csr_from_ratings(*r, m);
    if (!st && need_mt) st = br_csr_transpose(m, mt);
    if (st) {
        fprintf(stderr, "bench_collab: %s: %s\n", br_strerror(st), br_error_detail());
        return -1;
    }
    *load_s = (double)(t1 - t0) * 1e-9;
    fprintf(stderr,
            "{\"kind\":\"matrix\",\"users\":%u,\"books\":%u,\"ratings\":%llu,"
            "\"load_seconds\":%.3f,\"csr_csc_seconds\":%.3f,\"csr_bytes\":%zu}\n",
            m->rows, m->cols, (unsigned long long)m->nnz, *load_s, secs(t1), br_csr_memory(m));
    return 0;
}

static int bench_svd(const args *a, const br_csr *m, const br_csr *mt)
{
    double norm2 = 0;
    for (uint64_t p = 0; p < m->nnz; p++) norm2 += (double)m->values[p] * m->values[p];
    br_svd_options o = BR_SVD_OPTIONS_DEFAULT;
    o.k = (uint32_t)a->factors;
    o.method = a->exact ? BR_SVD_EXACT : BR_SVD_RANDOMIZED;
    o.power_iters = a->power_iters;
    o.block = (uint32_t)a->block;
    for (int rep = 0; rep < a->repeat; rep++) {
        br_svd svd;
        uint64_t t0 = br_now_ns();
        br_status st = br_svd_compute(m, mt, &o, &svd);
        double t = secs(t0);
        if (st) {
            fprintf(stderr, "bench_collab: %s: %s\n", br_strerror(st), br_error_detail());
            return -1;
        }
        double cap = 0;
        for (uint32_t j = 0; j < svd.k; j++) cap += (double)svd.s[j] * svd.s[j];
        printf("{\"kind\":\"svd\",\"impl\":\"bookrec\",\"method\":\"%s\",\"factors\":%u,"
               "\"power_iters\":%d,\"block\":%u,\"threads\":%d,\"seconds\":%.4f,\"relative_error\":"
               "%.8f,"
               "\"s0\":%.6f,\"s_last\":%.6f}\n",
               a->exact ? "exact" : "randomized", svd.k, a->exact ? 0 : svd.power_iters,
               a->exact ? 0 : svd.block, br_get_num_threads(), t, sqrt(fmax(0, 1 - cap / norm2)),
               (double)svd.s[0], (double)svd.s[svd.k - 1]);
        fflush(stdout);
        br_svd_free(&svd);
    }
    return 0;
}

typedef struct iter_log {
    double total;
    uint32_t n;
} iter_log;

static int on_iter(uint32_t it, double loss, double rmse, double s, void *user)
{
    iter_log *l = user;
    l->total += s;
    l->n = it;
    fprintf(stderr, "  iteration %u: %.3f s, loss %.6g, rmse %.4f\n", it, s, loss, rmse);
    return 0;
}

static int bench_als(const args *a, const br_csr *m, const br_csr *mt)
{
    br_als_options o = BR_ALS_OPTIONS_DEFAULT;
    o.kind = a->kind && !strcmp(a->kind, "explicit") ? BR_ALS_EXPLICIT : BR_ALS_IMPLICIT;
    o.factors = (uint32_t)a->factors;
    o.iterations = (uint32_t)a->iterations;
    o.cg_steps = (uint32_t)a->cg_steps;
    o.compute_loss = 0; /* time the solver alone; the loss is a separate pass */
    iter_log l = {0, 0};
    o.on_iteration = on_iter;
    o.user = &l;
    br_cf_model *model;
    uint64_t t0 = br_now_ns();
    br_status st = br_als_fit(m, mt, &o, &model);
    double t = secs(t0);
    if (st) {
        fprintf(stderr, "bench_collab: %s: %s\n", br_strerror(st), br_error_detail());
        return -1;
    }
    printf("{\"kind\":\"als\",\"impl\":\"bookrec\",\"als\":\"%s\",\"factors\":%d,"
           "\"cg_steps\":%d,\"threads\":%d,\"iterations\":%u,\"seconds\":%.4f,"
           "\"seconds_per_iteration\":%.4f}\n",
           o.kind == BR_ALS_EXPLICIT ? "explicit" : "implicit", a->factors, a->cg_steps,
           br_get_num_threads(), l.n, t, l.total / (l.n ? l.n : 1));
    br_cf_model_free(model);
    return 0;
}

static int count_emit(const uint32_t *users, size_t count, uint32_t n, const uint32_t *items,
                      const float *scores, void *user)
{
    uint64_t *sum = user;
    for (size_t j = 0; j < count * n; j++) *sum += items[j];
    (void)users;
    (void)scores;
    return 0;
}

static int bench_topn(const args *a, const br_csr *m, const br_csr *mt)
{
    br_cf_model *model = NULL;
    br_status st;
    uint64_t t0 = br_now_ns();
    if (a->model) {
        st = br_cf_model_load(a->model, &model);
    } else {
        br_als_options o = BR_ALS_OPTIONS_DEFAULT;
        o.factors = (uint32_t)a->factors;
        o.iterations = (uint32_t)a->iterations;
        o.compute_loss = 0;
        st = br_als_fit(m, mt, &o, &model);
        if (!st && a->save_model) st = br_cf_model_save(model, a->save_model, NULL, NULL);
    }
    double fit_s = secs(t0);
    if (st) {
        fprintf(stderr, "bench_collab: %s: %s\n", br_strerror(st), br_error_detail());
        return -1;
    }
    uint64_t sum = 0;
    uint32_t *subset = NULL, n_all = m->rows;
    if (a->users_limit > 0 && (uint64_t)a->users_limit < m->rows) {
        n_all = (uint32_t)a->users_limit;
        subset = malloc((size_t)n_all * sizeof *subset);
        for (uint32_t j = 0; j < n_all; j++) subset[j] = j;
    }
    t0 = br_now_ns();
    st = br_cf_recommend(model, m, subset, n_all, (uint32_t)a->n, count_emit, &sum);
    free(subset);
    double all_s = secs(t0);
    if (st) {
        fprintf(stderr, "bench_collab: %s: %s\n", br_strerror(st), br_error_detail());
        br_cf_model_free(model);
        return -1;
    }
    /* One reader at a time: fold-in from their ratings, then top-N, as a
     * server does for a reader who just rated something. */
    uint32_t k = br_cf_model_factors(model), n = (uint32_t)a->n;
    uint32_t *it = malloc(n * 4);
    float *sc = malloc(n * 4), *x = malloc((k + 1) * 4);
    uint32_t samples = m->rows < 2000 ? m->rows : 2000;
    double fold_s = 0, one_s = 0;
    for (uint32_t j = 0; j < samples; j++) {
        uint32_t u = (uint32_t)((uint64_t)j * m->rows / samples);
        uint64_t b = m->indptr[u], e = m->indptr[u + 1];
        float bias;
        uint64_t t1 = br_now_ns();
        br_cf_fold_in(model, e - b, m->indices + b, m->values + b, x, &bias);
        uint64_t t2 = br_now_ns();
        br_cf_recommend_one(model, x, bias, m->indices + b, e - b, n, it, sc);
        uint64_t t3 = br_now_ns();
        fold_s += (double)(t2 - t1) * 1e-9;
        one_s += (double)(t3 - t2) * 1e-9;
    }
    printf("{\"kind\":\"topn\",\"impl\":\"bookrec\",\"users\":%u,\"books\":%u,\"factors\":%u,"
           "\"n\":%d,\"threads\":%d,\"model_seconds\":%.3f,\"all_users_seconds\":%.3f,"
           "\"fold_in_us\":%.1f,\"single_user_topn_us\":%.1f,\"checksum\":%llu}\n",
           n_all, m->cols, k, a->n, br_get_num_threads(), fit_s, all_s, 1e6 * fold_s / samples,
           1e6 * one_s / samples, (unsigned long long)sum);
    free(it);
    free(sc);
    free(x);
    br_cf_model_free(model);
    return 0;
}

int main(int argc, char **argv)
{
    int argi = 1;
    if (argc > 2 && !strcmp(argv[1], "--threads")) {
        br_set_num_threads(atoi(argv[2]));
        argi = 3;
    }
    if (argi >= argc) {
        fprintf(stderr,
                "usage: bench_collab [--threads N] svd|als|topn --books B --ratings R ...\n");
        return 2;
    }
    const char *mode = argv[argi];
    args a = {NULL, NULL, NULL, NULL, "implicit", 50, -1, 5, 1, 100, 0, 3, 0, 0};
    if (!strcmp(mode, "als") || !strcmp(mode, "topn")) a.factors = 64;
    static const struct option longopts[] = {{"books", required_argument, 0, 'b'},
                                             {"ratings", required_argument, 0, 'r'},
                                             {"factors", required_argument, 0, 'k'},
                                             {"power-iters", required_argument, 0, 'q'},
                                             {"iterations", required_argument, 0, 'i'},
                                             {"repeat", required_argument, 0, 'R'},
                                             {"n", required_argument, 0, 'n'},
                                             {"exact", no_argument, 0, 'E'},
                                             {"block", required_argument, 0, 'B'},
                                             {"kind", required_argument, 0, 'K'},
                                             {"cg-steps", required_argument, 0, 'c'},
                                             {"model", required_argument, 0, 'M'},
                                             {"save-model", required_argument, 0, 'S'},
                                             {"users-limit", required_argument, 0, 'U'},
                                             {0, 0, 0, 0}};
    int c;
    optind = argi + 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            a.books = optarg;
            break;
        case 'r':
            a.ratings = optarg;
            break;
        case 'k':
            a.factors = atoi(optarg);
            break;
        case 'q':
            a.power_iters = atoi(optarg);
            break;
        case 'i':
            a.iterations = atoi(optarg);
            break;
        case 'R':
            a.repeat = atoi(optarg);
            break;
        case 'n':
            a.n = atoi(optarg);
            break;
        case 'E':
            a.exact = 1;
            break;
        case 'B':
            a.block = atoi(optarg);
            break;
        case 'K':
            a.kind = optarg;
            break;
        case 'c':
            a.cg_steps = atoi(optarg);
            break;
        case 'M':
            a.model = optarg;
            break;
        case 'S':
            a.save_model = optarg;
            break;
        case 'U':
            a.users_limit = atol(optarg);
            break;
        default:
            return 2;
        }
    }
    if (!a.books || !a.ratings) {
        fprintf(stderr, "bench_collab: --books and --ratings are required\n");
        return 2;
    }
    br_catalog *cat = NULL;
    br_ratings *r = NULL;
    br_csr m = {0}, mt = {0};
    double load_s;
    /* Serving from a saved model needs no transpose: leave it out of the
     * peak-memory figure. */
    int need_mt = !(a.model && !strcmp(mode, "topn"));
    int rc = load(&a, &cat, &r, &m, &mt, need_mt, &load_s);
    if (!rc) {
        if (!strcmp(mode, "svd"))
            rc = bench_svd(&a, &m, &mt);
        else if (!strcmp(mode, "als"))
            rc = bench_als(&a, &m, &mt);
        else if (!strcmp(mode, "topn"))
            rc = bench_topn(&a, &m, &mt);
        else {
            fprintf(stderr, "bench_collab: unknown mode '%s'\n", mode);
            rc = 2;
        }
    }
    br_csr_free(&m);
    br_csr_free(&mt);
    br_ratings_free(r);
    br_catalog_free(cat);
    return rc ? 1 : 0;
}
