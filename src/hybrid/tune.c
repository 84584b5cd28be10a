/*
 * tune.c: the default hybrid's blend weights searched on a validation
 * split: candidates and z-scores once per reader, every weight set scored
 * on them by NDCG@k.
 *
 * The mean NDCGs are compared to pick the weights, so they must be the
 * same bits whatever the thread count and the threads' timing: each
 * reader's NDCGs are kept, then summed in reader order, one block at a
 * time (the order one thread sums them in). Per-thread partial sums added
 * as the threads finish made the last bits (and so, on a tie, the weights
 * chosen) depend on the scheduling.
 */
#include <stdlib.h>

#include "bookrec/eval.h"
#include "hybrid/hybrid_internal.h"

br_status br_hybrid_tune(const br_hybrid *h, const br_split *val, uint32_t k,
                         const float (*grid)[4], size_t n_grid, double *ndcg)
{
    const br_engine comp[4] = {BR_ENGINE_EASE, BR_ENGINE_ALS, BR_ENGINE_CONTENT,
                               BR_ENGINE_POPULARITY};
    for (size_t g = 0; g < n_grid; g++)
        for (int c = 0; c < 4; c++)
            if (grid[g][c] != 0 && !h->have[comp[c]])
                return br_error(BR_EINVAL, "tune: %s was not fitted", br_engine_name(comp[c]));
    if (val->n_users != h->n_users || val->n_books != h->n_books)
        return br_error(BR_EINVAL, "tune: the split and the model differ in shape");
    br_status st = br__hybrid_check_source(h);
    if (st) return st;
    /* Readers with a relevant held-out book. */
    uint32_t *users = br_malloc(((size_t)val->n_users + 1) * sizeof *users);
    if (!users) return br_error(BR_ENOMEM, "tune");
    size_t nu = 0;
    for (uint32_t u = 0; u < val->n_users; u++)
        for (uint64_t j = val->test_ptr[u]; j < val->test_ptr[u + 1]; j++)
            if (val->test_value[j] >= val->relevant_min) {
                users[nu++] = u;
                break;
            }
    for (size_t g = 0; g < n_grid; g++) ndcg[g] = 0;
    /* (HY_BLOCK, n_grid): each reader's NDCG under each weight set */
    double *nd = br_malloc((size_t)HY_BLOCK * n_grid * sizeof *nd + 8);
    if (!nd) {
        br_free(users);
        return br_error(BR_ENOMEM, "tune");
    }
    int bad = 0;
    /* The candidates and their z-scores once per reader, every weight set
     * on them (the same scoring as br_hybrid_rank). */
    for (size_t b = 0; !st && !bad && b < nu; b += HY_BLOCK) {
        size_t nb = nu - b < HY_BLOCK ? nu - b : HY_BLOCK;
        const uint32_t *ub = users + b;
        float *als = NULL, *work = NULL;
        st = br__hybrid_als_block(h, ub, nb, &als, &work);
        if (!st) {
#pragma omp parallel num_threads(br_get_num_threads())
            {
                br__hybrid_work w;
                int ok = br__hybrid_work_alloc(h, &w) == BR_OK;
                uint32_t *it = br_malloc(((size_t)k + 1) * sizeof *it);
                float *tv = br_malloc(((size_t)k + 1) * sizeof *tv);
                uint32_t *rl = br_malloc((val->n_test + 1) * sizeof *rl);
                if (!ok || !it || !tv || !rl) {
#pragma omp atomic write
                    bad = 1;
                }
#pragma omp for schedule(dynamic, 4)
                for (size_t j = 0; j < nb; j++) {
                    if (!ok || !it || !tv || !rl) continue;
                    size_t n =
                        br__hybrid_candidates(h, ub[j], als ? als + j * h->n_books : NULL, &w);
                    br__hybrid_zscore(h, w.book, w.raw, n);
                    size_t n_rel = 0;
                    for (uint64_t q = val->test_ptr[ub[j]]; q < val->test_ptr[ub[j] + 1]; q++)
                        if (val->test_value[q] >= val->relevant_min)
                            rl[n_rel++] = val->test_book[q];
                    for (size_t g = 0; g < n_grid; g++) {
                        br__hybrid_blend(w.raw, n, grid[g], w.score);
                        uint32_t c = br__hybrid_top(w.score, (uint32_t)n, w.book, w.mark,
                                                    UINT32_MAX, k, it, tv);
                        for (uint32_t p = c; p < k; p++) it[p] = UINT32_MAX;
                        br_list_metrics m;
                        br_eval_list(it, k, rl, n_rel, &m);
                        nd[j * n_grid + g] = m.ndcg;
                    }
                }
                br_free(it);
                br_free(tv);
                br_free(rl);
                if (ok) br__hybrid_work_free(&w);
            }
            for (size_t g = 0; !bad && g < n_grid; g++) {
                double acc = 0;
                for (size_t j = 0; j < nb; j++) acc += nd[j * n_grid + g];
                ndcg[g] += acc;
            }
        }
        br_aligned_free(als);
        br_aligned_free(work);
    }
    if (!st && bad) st = br_error(BR_ENOMEM, "tune");
    for (size_t g = 0; g < n_grid && nu; g++) ndcg[g] /= (double)nu;
    br_free(nd);
    br_free(users);
    return st;
}
