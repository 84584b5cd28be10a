/*
 * topk.c: the bounded top-k heap (see topk.h) and its plain twin. The heap
 * is a binary min-heap under "worse" (topk.h), its root the worst pair
 * kept; sorting pops that root into the back repeatedly, best first.
 */
#include "core/topk.h"

#include <stdlib.h>

#include "bookrec/core.h"

static void sift_down(float *hs, uint32_t *hi, uint32_t size, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < size && br__topk_worse(hs[l], hi[l], hs[m], hi[m])) m = l;
        if (r < size && br__topk_worse(hs[r], hi[r], hs[m], hi[m])) m = r;
        if (m == i) return;
        float ts = hs[i];
        hs[i] = hs[m];
        hs[m] = ts;
        uint32_t ti = hi[i];
        hi[i] = hi[m];
        hi[m] = ti;
        i = m;
    }
}

void br__topk_fill(br__topk *h, float s, uint32_t id)
{
    uint32_t i = h->n++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!br__topk_worse(s, id, h->score[p], h->id[p])) break;
        h->score[i] = h->score[p];
        h->id[i] = h->id[p];
        i = p;
    }
    h->score[i] = s;
    h->id[i] = id;
}

void br__topk_replace(br__topk *h, float s, uint32_t id)
{
    h->score[0] = s;
    h->id[0] = id;
    sift_down(h->score, h->id, h->n, 0);
}

void br__topk_scan(br__topk *h, const float *s, size_t n, uint32_t id0, const uint8_t *skip)
{
    size_t j = 0;
    for (; j < n && h->n < h->k; j++)
        if (!skip || !skip[id0 + j]) br__topk_push(h, s[j], id0 + (uint32_t)j);
    if (j == n || h->k == 0) return;
    /* Full. The ids rise, so an equal score is worse: only a higher one
     * enters, and the floor never holds -inf or NaN, so neither passes. */
    float floor = h->score[0];
    for (; j < n; j++) {
        float v = s[j];
        if (v > floor && (!skip || !skip[id0 + j])) {
            br__topk_replace(h, v, id0 + (uint32_t)j);
            floor = h->score[0];
        }
    }
}

uint32_t br__topk_sort(br__topk *h, uint32_t pad_to)
{
    uint32_t n = h->n;
    for (uint32_t end = n; end > 1; end--) {
        float ts = h->score[0];
        h->score[0] = h->score[end - 1];
        h->score[end - 1] = ts;
        uint32_t ti = h->id[0];
        h->id[0] = h->id[end - 1];
        h->id[end - 1] = ti;
        sift_down(h->score, h->id, end - 1, 0);
    }
    for (uint32_t p = n; p < pad_to; p++) {
        h->id[p] = UINT32_MAX;
        h->score[p] = -INFINITY;
    }
    h->n = 0;
    return n;
}

void br__topk_rows(const float *scores, size_t rows, size_t cols, size_t ld, uint32_t n,
                   uint32_t *idx, float *val)
{
    for (size_t r = 0; r < rows; r++) {
        br__topk h = {n, 0, val + r * n, idx + r * n};
        br__topk_scan(&h, scores + r * ld, cols, 0, NULL);
        br__topk_sort(&h, n);
    }
}

/* ------------------------------------------------------------- reference -- */

typedef struct {
    float s;
    uint32_t i;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

int br__topk_ref(const float *s, size_t n, uint32_t k, uint32_t *id, float *score)
{
    scored *all = br_malloc((n ? n : 1) * sizeof *all);
    if (!all) return -1;
    size_t c = 0;
    for (size_t j = 0; j < n; j++) {
        if (isnan(s[j]) || s[j] == -INFINITY) continue;
        all[c].s = s[j];
        all[c].i = (uint32_t)j;
        c++;
    }
    qsort(all, c, sizeof *all, cmp_scored);
    for (uint32_t p = 0; p < k; p++) {
        id[p] = p < c ? all[p].i : UINT32_MAX;
        score[p] = p < c ? all[p].s : -INFINITY;
    }
    br_free(all);
    return 0;
}
