/*
 * model_internal.h (internal): what `train` (src/train) and the model
 * reader (model.c) share: the arrays a version derives from its
 * embeddings, index, tribes and published lists, computed by train once
 * (derive.c) and, for versions written before format_version 3, at open.
 */
#ifndef BR_MODEL_INTERNAL_H
#define BR_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/model.h"

/* Books in the cold-start list (4 x the largest n a request may ask). */
#define BR_MODEL_COLD 400

/* The derived arrays of one version, caller-owned buffers. */
typedef struct br__model_derived {
    int32_t *nbr;    /* (n, BR_MODEL_NEIGHBOURS) book indices, -1 pads */
    float *nbr_sc;   /* (n, BR_MODEL_NEIGHBOURS) cosines */
    float *pop;      /* (n,) popularity in [0, 1] */
    uint32_t *order; /* (n,) by decreasing popularity */
    uint32_t *cold;  /* (BR_MODEL_COLD,) */
    size_t n_cold;
} br__model_derived;

br_status br__model_derived_alloc(br__model_derived *d, uint32_t n);
void br__model_derived_free(br__model_derived *d);

/* Each book's BR_MODEL_NEIGHBOURS nearest books by the index (one batch
 * search, in parallel), itself left out. emb (n, dim). */
br_status br__model_neighbours(const br_hnsw *h, const float *emb, uint32_t n, int32_t *nbr,
                               float *nbr_sc);
/* Popularity from the published lists items (rows, cols), book indices
 * (< n; -1 pads): each reader's i-th book counts 1 / log2(i + 2) (the DCG
 * discount), summed over readers, scaled so the most popular has 1; and
 * the books by decreasing popularity, ties to the lower index. */
void br__model_popularity(const int32_t *items, size_t rows, size_t cols, uint32_t n, float *pop,
                          uint32_t *order);
/* The cold-start list (docs/api.md): each tribe's share of places by its
 * share of readers (readers whose first COLD_READER_TOP books include one
 * of the tribe's), Sainte-Lague's way, each tribe's books by popularity.
 * labels (n,) the tribes (k of them; NULL: one), order by popularity. */
br_status br__model_cold(const int32_t *labels, uint32_t k, uint32_t n, const uint32_t *order,
                         const int32_t *items, size_t rows, size_t cols, uint32_t *cold,
                         size_t *n_cold);
/* Writes the derived arrays into version directory vdir (neighbours.npy,
 * neighbour_scores.npy, popularity.npy, popular_order.npy, cold.npy) and
 * counts (n,) as rating_counts.npy. */
br_status br__model_write_derived(const char *vdir, const br__model_derived *d, uint32_t n,
                                  const int32_t *counts);

/* For the server, which adds the books posted to it to the version it
 * holds: the index and the neighbour lists, writable (their pages are the
 * process's own once written; the files never change). */
br_hnsw *br__model_index_mut(br_model *m);
int32_t *br__model_neighbours_mut(br_model *m, float **scores);

#endif
