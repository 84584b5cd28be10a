/*
 * topk.h (internal): the library's one top-k selection, a bounded heap of
 * (score, id) pairs rooted at the worst pair kept, so that once it is full
 * nearly every entry costs one comparison against that root. Behind every
 * top-N: the collaborative lists (br__topk_rows), exact nearest neighbours
 * (content/topk.c), a tribe's central books (content/tribes.c).
 *
 * Order, the same for every user: higher score first; equal scores, the
 * lower id first. NaN and -INFINITY never rank (callers mask an entry with
 * -INFINITY). The order is total over distinct ids, so the result does not
 * depend on the order of the pushes; pushing ids in increasing order (a
 * scan) makes an equal score never displace a kept one, at one comparison.
 *
 * The heap works in caller-owned arrays (often the output row itself):
 *
 *     br__topk h = {.k = k, .score = out_scores, .id = out_ids};
 *     for (uint32_t j = 0; j < n; j++) br__topk_push(&h, s[j], j);
 *     br__topk_sort(&h, k); // best first, padded to k
 *
 * or, for a scan in id order, br__topk_scan(&h, s, n, 0, NULL), whose loop
 * compares each entry with the k-th score held in a register.
 *
 * br__topk_ref is the plain twin, the tests' oracle: a full sort.
 */
#ifndef BR_CORE_TOPK_H
#define BR_CORE_TOPK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

typedef struct br__topk {
    uint32_t k;   /* capacity: the k best are kept */
    uint32_t n;   /* kept so far (<= k) */
    float *score; /* (k,) */
    uint32_t *id; /* (k,) */
} br__topk;

/* a ranks below b */
static inline int br__topk_worse(float sa, uint32_t ia, float sb, uint32_t ib)
{
    return sa < sb || (sa == sb && ia > ib);
}

/* The slow paths of br__topk_push: a pair added while the heap fills, and
 * the root replaced by a better pair. */
void br__topk_fill(br__topk *h, float s, uint32_t id);
void br__topk_replace(br__topk *h, float s, uint32_t id);

/* Keeps (s, id) if it is among the k best seen. */
static inline void br__topk_push(br__topk *h, float s, uint32_t id)
{
    if (!(s > -INFINITY)) return; /* -inf, NaN */
    if (h->n < h->k)
        br__topk_fill(h, s, id);
    else if (h->k && br__topk_worse(h->score[0], h->id[0], s, id))
        br__topk_replace(h, s, id);
}

/* Pushes s[0..n) as ids id0, id0 + 1, ..., leaving out those whose
 * skip[id] is set (skip may be NULL). The ids must exceed every id pushed
 * before (a scan in id order, possibly in blocks): then an entry enters
 * only if its score beats the k-th's, one comparison. */
void br__topk_scan(br__topk *h, const float *s, size_t n, uint32_t id0, const uint8_t *skip);

/* Sorts the kept pairs in place, best first, and returns how many there
 * are; slots n..pad_to-1 get id UINT32_MAX (-1 read as int32) and score
 * -INFINITY. The heap is empty afterwards. */
uint32_t br__topk_sort(br__topk *h, uint32_t pad_to);

/* The oracle: the k best of s[0..n) (ids 0..n-1) by a full sort of the
 * entries that rank, into id and score (k,), padded as br__topk_sort.
 * Allocates; returns -1 when it cannot. */
int br__topk_ref(const float *s, size_t n, uint32_t k, uint32_t *id, float *score);

/* Batched: for each of `rows` rows of scores (rows, cols) with row stride
 * ld, the n best into idx (rows, n) and val (rows, n), padded. The heap of
 * a row lives in its output row: no allocation. */
void br__topk_rows(const float *scores, size_t rows, size_t cols, size_t ld, uint32_t n,
                   uint32_t *idx, float *val);

#endif
