/*
 * bench_hnsw.c: HNSW build time, recall@k against exact search, and query
 * rate, on a base .npy and a query .npy (cosine). Prints one JSON line per
 * ef. The exact answer is computed here (blocked sgemm top-k) and written
 * to --truth-out so the faiss peer scores against the same truth.
 *
 *   bench_hnsw --base B.npy --queries Q.npy [--m 16] [--efc 100]
 *              [--ef 16,32,64,128] [--k 10] [--truth-out T.npy] [--truth-in T.npy]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/bookrec.h"
#include "bookrec/index.h"

static void normalise(float *x, size_t n, size_t d)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
        float inv = s > 0 ? (float)(1 / sqrt(s)) : 0;
        for (size_t j = 0; j < d; j++) x[i * d + j] *= inv;
    }
}

int main(int argc, char **argv)
{
    const char *bp = NULL, *qp = NULL, *tout = NULL, *tin = NULL, *efs = "16,32,64,128";
    int m = 16, efc = 100, k = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--base")) bp = argv[i + 1];
        else if (!strcmp(argv[i], "--queries")) qp = argv[i + 1];
        else if (!strcmp(argv[i], "--m")) m = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--efc")) efc = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--ef")) efs = argv[i + 1];
        else if (!strcmp(argv[i], "--k")) k = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--truth-out")) tout = argv[i + 1];
        else if (!strcmp(argv[i], "--truth-in")) tin = argv[i + 1];
    }
    if (!bp || !qp) {
        fprintf(stderr, "usage: bench_hnsw --base B.npy --queries Q.npy [...]\n");
        return 2;
    }
    br_array b, q, t = {0};
    if (br_npy_read(bp, BR_DTYPE_F32, &b) || br_npy_read(qp, BR_DTYPE_F32, &q)) {
        fprintf(stderr, "bench_hnsw: %s\n", br_error_detail());
        return 1;
    }
    size_t n = b.rows, d = b.cols, nq = q.rows;
    normalise(b.data, n, d);
    normalise(q.data, nq, d);
    int32_t *truth;
    if (tin) {
        if (br_npy_read(tin, BR_DTYPE_I32, &t) || t.rows != nq || (int)t.cols != k) {
            fprintf(stderr, "bench_hnsw: bad truth file\n");
            return 1;
        }
        truth = t.data;
    } else {
        truth = malloc(nq * k * sizeof(int32_t));
        float *ts = malloc(nq * k * sizeof(float));
        uint64_t t0 = br_now_ns();
        br_topk_search(b.data, n, d, q.data, nq, (size_t)k, NULL, truth, ts);
        fprintf(stderr, "exact truth: %.2f s (%.0f queries/s)\n", (br_now_ns() - t0) / 1e9,
                nq / ((br_now_ns() - t0) / 1e9));
        free(ts);
        if (tout) br_npy_write(tout, BR_DTYPE_I32, 2, nq, (size_t)k, truth);
    }
    br_hnsw_options o = BR_HNSW_OPTIONS_DEFAULT;
    o.m = (uint32_t)m;
    o.ef_construction = (uint32_t)efc;
    br_hnsw *h;
    br_hnsw_create(d, &o, &h);
    uint64_t t0 = br_now_ns();
    if (br_hnsw_add_batch(h, b.data, n, NULL) != BR_OK) {
        fprintf(stderr, "bench_hnsw: %s\n", br_error_detail());
        return 1;
    }
    double build = (br_now_ns() - t0) / 1e9;
    int32_t *ids = malloc(nq * k * sizeof(int32_t));
    char buf[256];
    snprintf(buf, sizeof buf, "%s", efs);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int ef = atoi(tok);
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            /* one query at a time, one thread: the latency-bound serving case */
            uint64_t s0 = br_now_ns();
            for (size_t i = 0; i < nq; i++)
                br_hnsw_search(h, (float *)q.data + i * d, (size_t)k, (size_t)ef, ids + i * k,
                               NULL, NULL);
            double s = (br_now_ns() - s0) / 1e9;
            if (s < best) best = s;
        }
        size_t hit = 0;
        for (size_t i = 0; i < nq; i++)
            for (int a = 0; a < k; a++)
                for (int c = 0; c < k; c++)
                    if (ids[i * k + a] == truth[i * k + c]) {
                        hit++;
                        break;
                    }
        uint64_t s0 = br_now_ns();
        br_hnsw_search_batch(h, q.data, nq, (size_t)k, (size_t)ef, ids, NULL);
        double sb = (br_now_ns() - s0) / 1e9;
        printf("{\"impl\":\"bookrec\",\"n\":%zu,\"dim\":%zu,\"m\":%d,\"efc\":%d,\"ef\":%d,"
               "\"build_s\":%.3f,\"recall\":%.4f,\"qps\":%.1f,\"qps_batch\":%.1f,"
               "\"memory_mb\":%.1f}\n",
               n, d, m, efc, ef, build, (double)hit / (double)(nq * k), nq / best, nq / sb,
               br_hnsw_memory(h) / 1048576.0);
        fflush(stdout);
    }
    br_hnsw_free(h);
    return 0;
}
