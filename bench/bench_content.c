/*
 * bench_content.c: exact top-k latency: one query over n x dim books
 * (sgemv + partial sort), and a batch (blocked sgemm), on random unit
 * vectors; or PCA (fit + projection of every row) on a .npy matrix, by
 * each eigen route (exact covariance, block Krylov), best wall and CPU
 * seconds of --reps runs. Prints JSON lines.
 *
 *   bench_content [--n 10000] [--dim 512] [--k 10] [--reps 200] [--batch 1000]
 *   bench_content --pca X.npy [--dim-out 2] [--reps 5] [--threads N]
 *   bench_content --symeig L [--k 2] [--reps 300]
 * --symeig: the k largest eigenpairs of a random symmetric L x L matrix (the
 * block Krylov PCA's Rayleigh-Ritz step) by br__symeig_top and by LAPACK's
 * dsyevr (range I), alternated in one process, one BLAS thread; best and
 * median microseconds of each.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/bookrec.h"
#include "linalg/pca.h"
#include "linalg/symeig.h"

#include <cblas.h>
#include <lapacke.h>

#include <time.h>

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench_pca(const char *path, size_t nc, size_t reps)
{
    br_array x;
    br_status st = br_npy_read(path, BR_DTYPE_F32, &x);
    if (st) {
        fprintf(stderr, "bench_content: %s: %s\n", br_strerror(st), br_error_detail());
        return 1;
    }
    float *proj = br_malloc(x.rows * nc * sizeof(float));
    static const char *names[] = {"auto", "exact", "krylov"};
    for (int route = 0; route < 3; route++) {
        double best = 1e30, best_cpu = 1e30;
        br_pca p = {0};
        br_pca_route used = BR_PCA_AUTO;
        double *all = br_malloc(reps * sizeof(double));
        for (size_t r = 0; r < reps; r++) {
            br_pca_free(&p);
            double c0 = cpu_s();
            uint64_t t0 = br_now_ns();
            st = br__pca_fit_route(x.data, x.rows, x.cols, nc, (br_pca_route)route, &p, &used);
            if (!st) st = br_pca_transform(&p, x.data, x.rows, proj);
            double s = (br_now_ns() - t0) / 1e9, c = cpu_s() - c0;
            if (st) {
                fprintf(stderr, "bench_content: %s: %s\n", br_strerror(st), br_error_detail());
                return 1;
            }
            all[r] = s;
            if (s < best) best = s;
            if (c < best_cpu) best_cpu = c;
        }
        qsort(all, reps, sizeof(double), cmp);
        printf("{\"bench\":\"pca\",\"route\":\"%s\",\"n\":%zu,\"dim\":%zu,\"components\":%zu,"
               "\"used\":\"%s\",\"threads\":%d,\"best_s\":%.5f,\"median_s\":%.5f,"
               "\"best_cpu_s\":%.5f,\"evr\":[%.6f,%.6f]}\n",
               names[route], x.rows, x.cols, nc, names[used], br_get_num_threads(), best,
               all[reps / 2], best_cpu, p.explained_variance_ratio[0],
               nc > 1 ? p.explained_variance_ratio[1] : 0.0);
        br_free(all);
        br_pca_free(&p);
    }
    br_free(proj);
    br_array_free(&x);
    return 0;
}

static int bench_symeig(size_t l, size_t k, size_t reps)
{
    if (l == 0 || k == 0 || k > l) return 2;
    openblas_set_num_threads(1);
    br_rng rng;
    br_rng_seed(&rng, 7);
    double *a = malloc(l * l * sizeof(double)), *h = malloc(l * l * sizeof(double));
    double *w = malloc(l * sizeof(double)), *z = malloc(l * l * sizeof(double));
    double *work = malloc(BR_SYMEIG_WORK(l) * sizeof(double));
    lapack_int *supp = malloc(2 * l * sizeof(lapack_int));
    double *t_own = malloc(reps * sizeof(double)), *t_lapack = malloc(reps * sizeof(double));
    if (!a || !h || !w || !z || !work || !supp || !t_own || !t_lapack) return 1;
    for (size_t i = 0; i < l; i++)
        for (size_t j = 0; j <= i; j++) a[i * l + j] = a[j * l + i] = br_rng_normal(&rng);
    for (size_t r = 0; r < reps; r++) {
        memcpy(h, a, l * l * sizeof(double));
        uint64_t t0 = br_now_ns();
        lapack_int got = 0;
        LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'V', 'I', 'U', (lapack_int)l, h, (lapack_int)l, 0, 0,
                       (lapack_int)(l - k + 1), (lapack_int)l, 0.0, &got, w, z, (lapack_int)l,
                       supp);
        uint64_t t1 = br_now_ns();
        if (br__symeig_top(a, l, k, w, z, work)) return 1;
        uint64_t t2 = br_now_ns();
        t_lapack[r] = (double)(t1 - t0) / 1e3;
        t_own[r] = (double)(t2 - t1) / 1e3;
    }
    qsort(t_own, reps, sizeof(double), cmp);
    qsort(t_lapack, reps, sizeof(double), cmp);
    printf("{\"bench\":\"symeig\",\"l\":%zu,\"k\":%zu,\"reps\":%zu,\"symeig_best_us\":%.1f,"
           "\"symeig_median_us\":%.1f,\"dsyevr_best_us\":%.1f,\"dsyevr_median_us\":%.1f}\n",
           l, k, reps, t_own[0], t_own[reps / 2], t_lapack[0], t_lapack[reps / 2]);
    free(a);
    free(h);
    free(w);
    free(z);
    free(work);
    free(supp);
    free(t_own);
    free(t_lapack);
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = 10000, d = 512, k = 10, reps = 200, batch = 1000, dim_out = 2;
    const char *pca = NULL;
    size_t symeig = 0;
    int k_given = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        size_t v = strtoull(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--pca"))
            pca = argv[i + 1];
        else if (!strcmp(argv[i], "--dim-out"))
            dim_out = v;
        else if (!strcmp(argv[i], "--threads"))
            br_set_num_threads((int)v);
        else if (!strcmp(argv[i], "--symeig"))
            symeig = v;
        if (!strcmp(argv[i], "--n"))
            n = v;
        else if (!strcmp(argv[i], "--dim"))
            d = v;
        else if (!strcmp(argv[i], "--k"))
            k = v, k_given = 1;
        else if (!strcmp(argv[i], "--reps"))
            reps = v;
        else if (!strcmp(argv[i], "--batch"))
            batch = v;
    }
    if (pca) return bench_pca(pca, dim_out, reps == 200 ? 5 : reps);
    if (symeig) return bench_symeig(symeig, k_given ? k : 2, reps == 200 ? 300 : reps);
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
