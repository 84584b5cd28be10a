/*
 * threads.c: one thread-count setting for the whole library. OpenMP kernels
 * read br_get_num_threads() in their `num_threads` clause and OpenBLAS is set
 * to the same count, so `--threads 1` really means one thread everywhere.
 */
#include "bookrec/core.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int num_threads; /* 0: not set, use every processor */

void br_set_num_threads(int n)
{
    num_threads = n > 0 ? n : 0;
    openblas_set_num_threads(br_get_num_threads());
}

int br_get_num_threads(void)
{
    if (num_threads > 0) return num_threads;
    int n = omp_get_num_procs();
    return n > 0 ? n : 1;
}

const char *br_blas_core(void)
{
    const char *core = openblas_get_corename();
    return core ? core : "unknown";
}

const char *br_blas_better_core(void)
{
    if (getenv("OPENBLAS_CORETYPE")) return NULL;
    if (strcmp(br_blas_core(), "Prescott") != 0) return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}
