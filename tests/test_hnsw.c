/*
 * test_hnsw.c: the HNSW index: recall against exact search on random
 * clustered data, incremental insertion, tombstones, batch = single
 * searches, the persistence round trip (and growing a loaded index), the
 * same file for the same index whatever the heap held, and refusal of
 * corrupt, truncated and foreign files.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bookrec/index.h"
#include "testutil.h"

#define DIM 32

/* n unit vectors around 20 random centres */
static float *clustered(size_t n, uint64_t seed)
{
    br_rng rng;
    br_rng_seed(&rng, seed);
    float c[20][DIM];
    for (int i = 0; i < 20; i++)
        for (int j = 0; j < DIM; j++) c[i][j] = (float)br_rng_normal(&rng);
    float *x = br_malloc(n * DIM * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        int b = (int)br_rng_below(&rng, 20);
        double nrm = 0;
        for (int j = 0; j < DIM; j++) {
            x[i * DIM + j] = c[b][j] + 0.7f * (float)br_rng_normal(&rng);
            nrm += (double)x[i * DIM + j] * x[i * DIM + j];
        }
        for (int j = 0; j < DIM; j++) x[i * DIM + j] /= (float)sqrt(nrm);
    }
    return x;
}

static double recall(const int32_t *got, const int32_t *truth, size_t nq, size_t k)
{
    size_t hit = 0;
    for (size_t q = 0; q < nq; q++)
        for (size_t i = 0; i < k; i++)
            for (size_t j = 0; j < k; j++)
                if (got[q * k + i] == truth[q * k + j] && got[q * k + i] >= 0) {
                    hit++;
                    break;
                }
    return (double)hit / (double)(nq * k);
}

static br_hnsw *build(const float *x, size_t n)
{
    br_hnsw_options o = BR_HNSW_OPTIONS_DEFAULT;
    o.m = 12;
    o.ef_construction = 80;
    br_hnsw *h;
    assert_int_equal(br_hnsw_create(DIM, &o, &h), BR_OK);
    uint32_t first = 99;
    assert_int_equal(br_hnsw_add_batch(h, x, n, &first), BR_OK);
    assert_int_equal(first, 0);
    assert_int_equal(br_hnsw_count(h), n);
    return h;
}

static void test_recall(void **state)
{
    (void)state;
    const size_t n = 3000, nq = 100, k = 10;
    float *x = clustered(n + nq, 1);
    const float *q = x + n * DIM;
    br_hnsw *h = build(x, n);
    int32_t *ids = br_malloc(nq * k * sizeof(int32_t)),
            *truth = br_malloc(nq * k * sizeof(int32_t));
    float *sc = br_malloc(nq * k * sizeof(float)), *tsc = br_malloc(nq * k * sizeof(float));
    assert_int_equal(br_topk_search(x, n, DIM, q, nq, k, NULL, truth, tsc), BR_OK);
    assert_int_equal(br_hnsw_search_batch(h, q, nq, k, 64, ids, sc), BR_OK);
    double r = recall(ids, truth, nq, k);
    printf("recall@10 at ef 64: %.3f\n", r);
    assert_true(r >= 0.95);
    /* scores are cosines, best first */
    for (size_t i = 0; i < nq; i++)
        for (size_t j = 0; j + 1 < k; j++) assert_true(sc[i * k + j] >= sc[i * k + j + 1]);
    assert_float_equal(sc[0], tsc[0], 1e-4);
    /* a tiny ef finds less: the parameter is real */
    int32_t *low = br_malloc(nq * k * sizeof(int32_t));
    assert_int_equal(br_hnsw_search_batch(h, q, nq, k, 10, low, NULL), BR_OK);
    assert_true(recall(low, truth, nq, k) <= r);
    /* batch (threads) and single searches agree */
    for (size_t i = 0; i < nq; i += 7) {
        int32_t one[10];
        float s1[10];
        size_t found;
        assert_int_equal(br_hnsw_search(h, q + i * DIM, k, 64, one, s1, &found), BR_OK);
        assert_int_equal(found, k);
        assert_memory_equal(one, ids + i * k, k * sizeof(int32_t));
    }
    br_free(low);
    br_free(ids);
    br_free(truth);
    br_free(sc);
    br_free(tsc);
    br_hnsw_free(h);
    br_free(x);
}

static void test_incremental_and_tombstones(void **state)
{
    (void)state;
    const size_t n = 1500;
    float *x = clustered(n + 1, 2);
    br_hnsw *h = build(x, n);
    const float *fresh = x + n * DIM;
    int32_t ids[5];
    float sc[5];
    size_t found;
    assert_int_equal(br_hnsw_search(h, fresh, 5, 50, ids, sc, &found), BR_OK);
    assert_true(ids[0] != (int32_t)n);
    uint32_t id;
    assert_int_equal(br_hnsw_add(h, fresh, &id), BR_OK);
    assert_int_equal(id, n);
    assert_int_equal(br_hnsw_search(h, fresh, 5, 50, ids, sc, &found), BR_OK);
    assert_int_equal(ids[0], (int32_t)n); /* searchable at once, no rebuild */
    assert_float_equal(sc[0], 1.0, 1e-5);
    /* tombstone it and the next best: neither comes back */
    int32_t second = ids[1];
    assert_int_equal(br_hnsw_remove(h, id), BR_OK);
    assert_int_equal(br_hnsw_remove(h, (uint32_t)second), BR_OK);
    assert_int_equal(br_hnsw_deleted(h), 2);
    assert_int_equal(br_hnsw_search(h, fresh, 5, 50, ids, sc, &found), BR_OK);
    assert_int_equal(found, 5);
    for (int i = 0; i < 5; i++) assert_true(ids[i] != (int32_t)n && ids[i] != second);
    assert_status_detail(br_hnsw_remove(h, id), BR_ENOTFOUND, "not in the index");
    assert_status_detail(br_hnsw_remove(h, 999999), BR_ENOTFOUND, "not in the index");
    /* k larger than the live count: the tail is -1 */
    br_hnsw *small;
    assert_int_equal(br_hnsw_create(DIM, NULL, &small), BR_OK);
    assert_int_equal(br_hnsw_search(small, fresh, 3, 10, ids, sc, &found), BR_OK);
    assert_int_equal(found, 0);
    assert_int_equal(ids[0], -1);
    assert_int_equal(br_hnsw_add_batch(small, x, 2, NULL), BR_OK);
    assert_int_equal(br_hnsw_search(small, fresh, 3, 10, ids, sc, &found), BR_OK);
    assert_int_equal(found, 2);
    assert_int_equal(ids[2], -1);
    assert_true(isinf(sc[2]) && sc[2] < 0);
    br_hnsw_free(small);
    br_hnsw_free(h);
    br_free(x);
}

static void test_persistence(void **state)
{
    (void)state;
    const size_t n = 2000, nq = 40, k = 10;
    float *x = clustered(n + nq + 1, 3);
    const float *q = x + n * DIM;
    br_hnsw *h = build(x, n);
    assert_int_equal(br_hnsw_remove(h, 5), BR_OK);
    char *dir = tu_tmpdir("test_hnsw");
    char path[4096];
    snprintf(path, sizeof path, "%s/index.hnsw", dir);
    assert_int_equal(br_hnsw_save(h, path), BR_OK);
    br_hnsw *g;
    assert_int_equal(br_hnsw_load(path, &g), BR_OK);
    assert_int_equal(br_hnsw_count(g), n);
    assert_int_equal(br_hnsw_deleted(g), 1);
    br_hnsw_options o;
    br_hnsw_get_options(g, &o);
    assert_int_equal(o.m, 12);
    int32_t *a = br_malloc(nq * k * sizeof(int32_t)), *b = br_malloc(nq * k * sizeof(int32_t));
    float *sa = br_malloc(nq * k * sizeof(float)), *sb = br_malloc(nq * k * sizeof(float));
    assert_int_equal(br_hnsw_search_batch(h, q, nq, k, 40, a, sa), BR_OK);
    assert_int_equal(br_hnsw_search_batch(g, q, nq, k, 40, b, sb), BR_OK);
    assert_memory_equal(a, b, nq * k * sizeof(int32_t));
    assert_memory_equal(sa, sb, nq * k * sizeof(float));
    /* a loaded index grows: the new vector is found, the file is untouched */
    uint32_t id;
    const float *fresh = q + nq * DIM;
    assert_int_equal(br_hnsw_add(g, fresh, &id), BR_OK);
    assert_int_equal(id, n);
    int32_t top;
    assert_int_equal(br_hnsw_search(g, fresh, 1, 20, &top, NULL, NULL), BR_OK);
    assert_int_equal(top, (int32_t)n);
    br_hnsw *again;
    assert_int_equal(br_hnsw_load(path, &again), BR_OK);
    assert_int_equal(br_hnsw_count(again), n);
    br_hnsw_free(again);
    br_hnsw_free(g);
    br_hnsw_free(h);
    br_free(a);
    br_free(b);
    br_free(sa);
    br_free(sb);
    br_free(x);
    br_free(dir);
}

/* An allocator whose new blocks hold a given byte, as a reused heap would
 * hold whatever was there. */
static unsigned char fill_byte;
static void *fill_malloc(size_t n, void *u)
{
    (void)u;
    void *p = malloc(n);
    if (p) memset(p, fill_byte, n);
    return p;
}
static void *fill_realloc(void *p, size_t n, void *u)
{
    (void)u;
    return realloc(p, n);
}
static void fill_free(void *p, void *u)
{
    (void)u;
    free(p);
}

static char *build_and_save(const float *x, size_t n, unsigned char fill, const char *dir,
                            const char *name, size_t *len)
{
    br_allocator a = {fill_malloc, fill_realloc, fill_free, NULL};
    fill_byte = fill;
    br_set_allocator(&a);
    br_hnsw_options o = BR_HNSW_OPTIONS_DEFAULT;
    o.m = 6;
    br_hnsw *h;
    assert_int_equal(br_hnsw_create(DIM, &o, &h), BR_OK);
    for (size_t i = 0; i < n; i++) assert_int_equal(br_hnsw_add(h, x + i * DIM, NULL), BR_OK);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(br_hnsw_save(h, path), BR_OK);
    br_hnsw_free(h);
    br_set_allocator(NULL);
    return tu_read_file(path, len);
}

/* The same vectors inserted in the same order give the same file, byte for
 * byte, whatever the heap held: a link list's unused slots are written as
 * zeros, not as the memory's old contents (which also made `train`'s
 * index.hnsw differ between runs). */
static void test_same_index_same_bytes(void **state)
{
    (void)state;
    const size_t n = 300;
    float *x = clustered(n, 9);
    char *dir = tu_tmpdir("test_hnsw_bytes");
    size_t la, lb;
    char *a = build_and_save(x, n, 0xa5, dir, "a.hnsw", &la);
    char *b = build_and_save(x, n, 0x5a, dir, "b.hnsw", &lb);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    br_free(a);
    br_free(b);
    br_free(x);
    br_free(dir);
}

/* Copies src to dst, then applies a change. */
static void mutate(const char *src, const char *dst, long off, int flip, long truncate_to)
{
    size_t len;
    char *buf = tu_read_file(src, &len);
    assert_non_null(buf);
    if (flip && off >= 0 && (size_t)off < len) buf[off] ^= 0x20;
    if (truncate_to >= 0) len = (size_t)truncate_to;
    FILE *f = fopen(dst, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    free(buf);
}

static void test_corrupt_refused(void **state)
{
    (void)state;
    float *x = clustered(300, 4);
    br_hnsw *h = build(x, 300);
    char *dir = tu_tmpdir("test_hnsw_corrupt");
    char path[4096], bad[4096];
    snprintf(path, sizeof path, "%s/ok.hnsw", dir);
    snprintf(bad, sizeof bad, "%s/bad.hnsw", dir);
    assert_int_equal(br_hnsw_save(h, path), BR_OK);
    size_t len;
    char *whole = tu_read_file(path, &len);
    free(whole);
    br_hnsw *g = NULL;
    mutate(path, bad, 5000, 1, -1); /* a flipped bit in the vectors */
    assert_status_detail(br_hnsw_load(bad, &g), BR_EFORMAT, "data checksum");
    mutate(path, bad, (long)len - 3, 1, -1); /* in the links at the end */
    assert_status_detail(br_hnsw_load(bad, &g), BR_EFORMAT, "checksum");
    mutate(path, bad, 20, 1, -1); /* in the header */
    assert_status_detail(br_hnsw_load(bad, &g), BR_EFORMAT, "header checksum");
    mutate(path, bad, -1, 0, (long)len - 100);
    assert_status_detail(br_hnsw_load(bad, &g), BR_EFORMAT, "truncated");
    mutate(path, bad, -1, 0, 50);
    assert_status_detail(br_hnsw_load(bad, &g), BR_EFORMAT, "not a bookrec HNSW index");
    mutate(path, bad, 0, 1, -1);
    assert_status_detail(br_hnsw_load(bad, &g), BR_EFORMAT, "bad magic");
    mutate(path, bad, 8, 1, -1); /* version 1 -> 33 */
    assert_status_detail(br_hnsw_load(bad, &g), BR_EFORMAT, "version 33");
    char *npy = tu_write_file(dir, "x.npy",
                              "\x93NUMPY not an index at all, but long enough to read "
                              "a header from it: padding padding padding padding "
                              "padding padding");
    assert_status_detail(br_hnsw_load(npy, &g), BR_EFORMAT, "not a bookrec HNSW index");
    snprintf(bad, sizeof bad, "%s/missing.hnsw", dir);
    assert_status_detail(br_hnsw_load(bad, &g), BR_ENOTFOUND, "cannot open");
    assert_null(g);
    assert_int_equal(br_hnsw_load(path, &g), BR_OK); /* the original is fine */
    br_hnsw_free(g);
    br_hnsw_free(h);
    br_free(npy);
    br_free(dir);
    br_free(x);
}

/* A full disk (a file size limit: writes past it fail with EFBIG) while
 * the index is saved: a clear error, at once (it once spun forever in the
 * padding), and no file, final or temporary, left behind. */
static void test_save_disk_full(void **state)
{
    (void)state;
    float *x = clustered(300, 5);
    br_hnsw *h = build(x, 300);
    char *dir = tu_tmpdir("test_hnsw_full");
    char path[4096];
    snprintf(path, sizeof path, "%s/full.hnsw", dir);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 20000; /* the vectors alone are 300 x DIM x 4 bytes */
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    br_status st = br_hnsw_save(h, path);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_status_detail(st, BR_EIO, "cannot write the index");
    assert_int_not_equal(access(path, F_OK), 0);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) assert_true(e->d_name[0] == '.'); /* nothing but . and .. */
    closedir(d);
    br_hnsw_free(h);
    br_free(x);
    br_free(dir);
}

static void test_inner_product_and_options(void **state)
{
    (void)state;
    br_hnsw_options o = BR_HNSW_OPTIONS_DEFAULT;
    o.metric = BR_METRIC_IP;
    br_hnsw *h;
    float v[3][DIM];
    memset(v, 0, sizeof v);
    v[0][0] = 1;
    v[1][0] = 3; /* same direction, larger: wins under inner product */
    v[2][1] = 5;
    assert_int_equal(br_hnsw_create(DIM, &o, &h), BR_OK);
    assert_int_equal(br_hnsw_add_batch(h, &v[0][0], 3, NULL), BR_OK);
    int32_t ids[2];
    float sc[2];
    float q[DIM] = {1};
    assert_int_equal(br_hnsw_search(h, q, 2, 10, ids, sc, NULL), BR_OK);
    assert_int_equal(ids[0], 1);
    assert_float_equal(sc[0], 3.0, 1e-6);
    br_hnsw_free(h);
    o.m = 1;
    assert_status_detail(br_hnsw_create(DIM, &o, &h), BR_EINVAL, "m must be");
    o.m = 16;
    assert_status_detail(br_hnsw_create(0, &o, &h), BR_EINVAL, "dimension");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recall),
        cmocka_unit_test(test_incremental_and_tombstones),
        cmocka_unit_test(test_persistence),
        cmocka_unit_test(test_same_index_same_bytes),
        cmocka_unit_test(test_corrupt_refused),
        cmocka_unit_test(test_save_disk_full),
        cmocka_unit_test(test_inner_product_and_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
