/*
 * derive.c: the arrays a model version derives for serving from its
 * embeddings, index, tribes and published lists: each book's nearest
 * books, popularity and its order, the cold-start list. `train` computes
 * them once and writes them into the version (model_internal.h); a version
 * written before format_version 3 gets them computed at open, by the same
 * code, so it serves exactly as it did.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/npy.h"
#include "model/model_internal.h"

br_status br__model_derived_alloc(br__model_derived *d, uint32_t n)
{
    memset(d, 0, sizeof *d);
    size_t m = n ? n : 1;
    d->nbr = br_malloc(m * BR_MODEL_NEIGHBOURS * sizeof *d->nbr);
    d->nbr_sc = br_malloc(m * BR_MODEL_NEIGHBOURS * sizeof *d->nbr_sc);
    d->pop = br_malloc(m * sizeof *d->pop);
    d->order = br_malloc(m * sizeof *d->order);
    d->cold = br_malloc(BR_MODEL_COLD * sizeof *d->cold);
    if (d->nbr && d->nbr_sc && d->pop && d->order && d->cold) return BR_OK;
    br__model_derived_free(d);
    return br_error(BR_ENOMEM, "model: derived arrays for %u books", n);
}

void br__model_derived_free(br__model_derived *d)
{
    br_free(d->nbr);
    br_free(d->nbr_sc);
    br_free(d->pop);
    br_free(d->order);
    br_free(d->cold);
    memset(d, 0, sizeof *d);
}

br_status br__model_neighbours(const br_hnsw *h, const float *emb, uint32_t n, int32_t *nbr,
                               float *nbr_sc)
{
    const size_t k = BR_MODEL_NEIGHBOURS;
    int32_t *ids = br_malloc(((size_t)n + 1) * (k + 1) * sizeof *ids);
    float *sc = br_malloc(((size_t)n + 1) * (k + 1) * sizeof *sc);
    br_status st = ids && sc ? BR_OK : br_error(BR_ENOMEM, "neighbours");
    if (!st && n) st = br_hnsw_search_batch(h, emb, n, k + 1, 64, ids, sc);
    for (size_t b = 0; !st && b < n; b++) {
        size_t o = 0;
        for (size_t j = 0; j <= k && o < k; j++) {
            if (ids[b * (k + 1) + j] == (int32_t)b) continue;
            nbr[b * k + o] = ids[b * (k + 1) + j];
            nbr_sc[b * k + o++] = sc[b * (k + 1) + j];
        }
        for (; o < k; o++) nbr[b * k + o] = -1, nbr_sc[b * k + o] = -INFINITY;
    }
    br_free(ids);
    br_free(sc);
    return st;
}

static __thread const float *tls_pop_key; /* qsort's context */

static int by_pop(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    const float *p = tls_pop_key;
    if (p[x] != p[y]) return p[x] > p[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

void br__model_popularity(const int32_t *items, size_t rows, size_t cols, uint32_t n, float *pop,
                          uint32_t *order)
{
    for (uint32_t b = 0; b < n; b++) pop[b] = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++) {
            int32_t b = items[r * cols + j];
            if (b >= 0 && (uint32_t)b < n) pop[b] += 1.0f / log2f((float)j + 2.0f);
        }
    float mx = 0;
    for (uint32_t b = 0; b < n; b++) mx = pop[b] > mx ? pop[b] : mx;
    for (uint32_t b = 0; b < n; b++) {
        if (mx > 0) pop[b] /= mx;
        order[b] = b;
    }
    tls_pop_key = pop;
    qsort(order, n, sizeof *order, by_pop);
}

/* How far down a reader's published list counts as what they read, for
 * the cold-start weights: the first page of it. */
#define COLD_READER_TOP 10

static uint32_t cold_tribe(const int32_t *labels, uint32_t b, uint32_t k)
{
    int32_t t = labels ? labels[b] : 0;
    return t >= 0 && (uint32_t)t < k ? (uint32_t)t : 0; /* no tribe: tribe 0 */
}

/* Each tribe weighs its share of readers: how many readers' lists (the
 * version's published ones, the first COLD_READER_TOP books: it holds no
 * ratings per tribe) include one of its books. Places go to the tribes in
 * proportion, Sainte-Lague's way (the next one to the largest weight /
 * (2 * places so far + 1)), each tribe's books by popularity. So the first
 * ten spread over the tribes most readers read, and a tribe few read (one
 * language, picture books) gets few or no places near the top instead of
 * one in every ten. With no lists every tribe weighs the same:
 * round-robin. */
br_status br__model_cold(const int32_t *labels, uint32_t k, uint32_t n, const uint32_t *order,
                         const int32_t *items, size_t rows, size_t cols, uint32_t *cold,
                         size_t *n_cold)
{
    if (!labels || !k) k = 1;
    size_t want = BR_MODEL_COLD < n ? BR_MODEL_COLD : n;
    uint32_t *cursor = br_calloc(k, sizeof *cursor), *slots = br_calloc(k, sizeof *slots);
    size_t *readers = br_calloc(k, sizeof *readers), *last = br_calloc(k, sizeof *last);
    *n_cold = 0;
    if (!cursor || !slots || !readers || !last) {
        br_free(cursor);
        br_free(slots);
        br_free(readers);
        br_free(last);
        return br_error(BR_ENOMEM, "cold list");
    }
    size_t total = 0, top = cols < COLD_READER_TOP ? cols : COLD_READER_TOP;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < top; j++) {
            int32_t b = items[r * cols + j];
            if (b < 0 || (uint32_t)b >= n) continue;
            uint32_t t = cold_tribe(labels, (uint32_t)b, k);
            if (last[t] == r + 1) continue; /* counted for this reader */
            last[t] = r + 1;
            readers[t]++;
            total++;
        }
    for (uint32_t t = 0; !total && t < k; t++) readers[t] = 1;
    while (*n_cold < want) {
        /* the tribe owed the next place; a tribe whose books are all listed
         * drops out (ties: the lower tribe) */
        int64_t best = -1;
        double best_q = -1;
        for (uint32_t t = 0; t < k; t++) {
            double q = (double)readers[t] / (2.0 * slots[t] + 1);
            if (cursor[t] < n && q > best_q) best = t, best_q = q;
        }
        if (best < 0) break;
        uint32_t t = (uint32_t)best;
        while (cursor[t] < n) {
            uint32_t b = order[cursor[t]++];
            if (cold_tribe(labels, b, k) == t) {
                cold[(*n_cold)++] = b;
                slots[t]++;
                break;
            }
        }
    }
    br_free(cursor);
    br_free(slots);
    br_free(readers);
    br_free(last);
    return BR_OK;
}

br_status br__model_write_derived(const char *vdir, const br__model_derived *d, uint32_t n,
                                  const int32_t *counts)
{
    char path[PATH_MAX + 32];
    br_status st = BR_OK;
#define PATH(name) (snprintf(path, sizeof path, "%s/%s", vdir, name), path)
    st = br_npy_write(PATH("neighbours.npy"), BR_DTYPE_I32, 2, n, BR_MODEL_NEIGHBOURS, d->nbr);
    if (!st)
        st = br_npy_write(PATH("neighbour_scores.npy"), BR_DTYPE_F32, 2, n, BR_MODEL_NEIGHBOURS,
                          d->nbr_sc);
    if (!st) st = br_npy_write(PATH("popularity.npy"), BR_DTYPE_F32, 1, n, 1, d->pop);
    if (!st) st = br_npy_write(PATH("popular_order.npy"), BR_DTYPE_I32, 1, n, 1, d->order);
    if (!st) st = br_npy_write(PATH("cold.npy"), BR_DTYPE_I32, 1, d->n_cold, 1, d->cold);
    if (!st && counts) st = br_npy_write(PATH("rating_counts.npy"), BR_DTYPE_I32, 1, n, 1, counts);
#undef PATH
    return st;
}
