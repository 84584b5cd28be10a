/*
 * topk.c: batched top-n selection (see topk.h). Each row keeps a min-heap
 * of its n best entries, rooted at the worst of them; an entry enters only
 * if it beats that root, so for n << cols nearly every entry costs a single
 * comparison. Scanning columns in increasing order means an equal score
 * never displaces an earlier (lower-index) entry, which is the tie rule.
 */
#include "linalg/topk.h"

#include <math.h>
#include <stdlib.h>

#include "bookrec/core.h"

/* a is worse than b: lower score, or equal score and higher index. */
static inline int worse(float sa, uint32_t ia, float sb, uint32_t ib)
{
    return sa < sb || (sa == sb && ia > ib);
}

static void sift_down(float *hs, uint32_t *hi, uint32_t size, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < size && worse(hs[l], hi[l], hs[m], hi[m])) m = l;
        if (r < size && worse(hs[r], hi[r], hs[m], hi[m])) m = r;
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

static void sift_up(float *hs, uint32_t *hi, uint32_t i)
{
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!worse(hs[i], hi[i], hs[p], hi[p])) return;
        float ts = hs[i];
        hs[i] = hs[p];
        hs[p] = ts;
        uint32_t ti = hi[i];
        hi[i] = hi[p];
        hi[p] = ti;
        i = p;
    }
}

/* One row; the heap lives in the output row itself. */
static void topk_row(const float *s, size_t cols, uint32_t n, uint32_t *hi, float *hs)
{
    uint32_t size = 0;
    size_t j = 0;
    for (; j < cols && size < n; j++) {
        float v = s[j];
        if (!(v > -INFINITY)) continue; /* masked, or NaN */
        hs[size] = v;
        hi[size] = (uint32_t)j;
        sift_up(hs, hi, size);
        size++;
    }
    if (size == n && n > 0) {
        float floor = hs[0];
        for (; j < cols; j++) {
            float v = s[j];
            if (v > floor) {
                hs[0] = v;
                hi[0] = (uint32_t)j;
                sift_down(hs, hi, n, 0);
                floor = hs[0];
            }
        }
    }
    /* Heap to sorted, best first: pop the worst into the back. */
    for (uint32_t end = size; end > 1; end--) {
        float ts = hs[0];
        hs[0] = hs[end - 1];
        hs[end - 1] = ts;
        uint32_t ti = hi[0];
        hi[0] = hi[end - 1];
        hi[end - 1] = ti;
        sift_down(hs, hi, end - 1, 0);
    }
    for (uint32_t p = size; p < n; p++) {
        hi[p] = UINT32_MAX;
        hs[p] = -INFINITY;
    }
}

void topk_rows(const float *scores, size_t rows, size_t cols, size_t ld, uint32_t n, uint32_t *idx,
               float *val)
{
    for (size_t r = 0; r < rows; r++) topk_row(scores + r * ld, cols, n, idx + r * n, val + r * n);
}

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

void topk_rows_ref(const float *scores, size_t rows, size_t cols, size_t ld, uint32_t n,
                   uint32_t *idx, float *val)
{
    scored *all = br_malloc((cols ? cols : 1) * sizeof *all);
    if (!all) return;
    for (size_t r = 0; r < rows; r++) {
        size_t c = 0;
        for (size_t j = 0; j < cols; j++) {
            float v = scores[r * ld + j];
            if (isnan(v) || v == -INFINITY) continue;
            all[c].s = v;
            all[c].i = (uint32_t)j;
            c++;
        }
        qsort(all, c, sizeof *all, cmp_scored);
        for (uint32_t p = 0; p < n; p++) {
            idx[r * n + p] = p < c ? all[p].i : UINT32_MAX;
            val[r * n + p] = p < c ? all[p].s : -INFINITY;
        }
    }
    br_free(all);
}
