/*
 * threads.c: one thread-count setting for the whole library. OpenMP kernels
 * read br_get_num_threads() in their `num_threads` clause and OpenBLAS is set
 * to the same count, so `--threads 1` really means one thread everywhere.
 */
#include "bookrec/core.h"

#include <cblas.h>
#include <omp.h>

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
