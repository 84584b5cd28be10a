/*
 * bookrec/model.h: a trained model version, as `bookrec train` writes it
 * and everything else reads it (`serve`, `recommend --model-dir`, `models`,
 * the Python package). Layout and versioning: docs/formats.md, "Model
 * version".
 *
 * A version holds what serving needs, computed once by `train`: the
 * catalogue, the books' embeddings and vector index, the tribes with their
 * names and the 2-D map (and the PCA that places a posted book on it),
 * each book's nearest books, the books' popularity and rating counts, the
 * cold-start list, every reader's published list, the rating scale, the
 * ranking's parameters. Opening one computes nothing training could have
 * computed: the large arrays are memory-mapped (pages shared between the
 * processes that serve the same version, read as they are touched).
 * Versions written before format_version 3 lack the derived arrays; they
 * are derived at open (as servers did before), so an old version can
 * still be rolled back to.
 *
 * A br_model is read-only and may be shared by any number of threads.
 */
#ifndef BOOKREC_MODEL_H
#define BOOKREC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/content.h"
#include "bookrec/core.h"
#include "bookrec/data.h"
#include "bookrec/events.h"
#include "bookrec/text.h" /* br_book_template */
#include "bookrec/index.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The manifest format this build writes; it reads 1 and later. */
#define BR_MODEL_FORMAT_VERSION 3
/* Nearest books kept per book (neighbours.npy). */
#define BR_MODEL_NEIGHBOURS 32

typedef struct br_model br_model;

/* How a server re-ranks the published lists per request (docs/api.md,
 * "Re-ranking"); `train` records its defaults in the version, a server's
 * options may override them. */
typedef struct br_model_online {
    float w_content;    /* a new interaction's neighbours: share of the list's score span */
    float w_pop;        /* popularity, for a reader without a published list */
    float w_recent;     /* the recency boost (a business rule; 0: off) */
    uint32_t recent_years;
    uint32_t cold_interactions; /* below this many interactions, content weighs up to twice */
} br_model_online;

#define BR_MODEL_ONLINE_DEFAULT                                                                    \
    {                                                                                              \
        0.5f, 0.1f, 0.0f, 5, 10                                                                    \
    }

/* Opens version `id` of model directory `dir` (NULL: the current one). */
BR_API br_status br_model_open(const char *dir, const char *id, br_model **out);
BR_API void br_model_close(br_model *m);

/* The version id ("v000003"), its directory, its manifest (JSON text) and
 * its manifest's format_version. */
BR_API const char *br_model_id(const br_model *m);
BR_API const char *br_model_path(const br_model *m);
BR_API const char *br_model_manifest(const br_model *m);
BR_API int br_model_format(const br_model *m);
/* 1 when the derived arrays of an old version were computed at open. */
BR_API int br_model_derived_at_open(const br_model *m);

/* The encoder key (parameters.encoder: "use-lite", "bert:DIR") and the
 * book-text template its vectors were made from. */
BR_API const char *br_model_encoder(const br_model *m);
BR_API br_book_template br_model_template(const br_model *m);
/* What an event must be (the rating scale the version was trained with). */
BR_API const br_event_rules *br_model_rules(const br_model *m);
/* The newest timestamp in the data the version was trained on (ratings'
 * timestamps, folded events; 0 when the data had none): an interaction
 * after it is new to the version. */
BR_API int64_t br_model_data_until(const br_model *m);
/* The online re-ranking parameters recorded in the version. */
BR_API const br_model_online *br_model_online_params(const br_model *m);

/* The catalogue: books in index order (index i is row i of every per-book
 * array below). */
BR_API const br_catalog *br_model_catalog(const br_model *m);
BR_API uint32_t br_model_books(const br_model *m);
/* (n_books, dim) float32, L2-normalised rows; dim into *dim. */
BR_API const float *br_model_embeddings(const br_model *m, size_t *dim);
BR_API const br_hnsw *br_model_index(const br_model *m);
BR_API const br_tribes *br_model_tribes(const br_model *m);
/* The map: (n_books, 2) coordinates; br_model_map_point places a vector
 * (dim,) on it (the PCA the map was made with). */
BR_API const float *br_model_map(const br_model *m);
BR_API void br_model_map_point(const br_model *m, const float *vec, float xy[2]);
/* Each book's BR_MODEL_NEIGHBOURS nearest books (cosine, itself left out),
 * best first: ids (-1 pads) and scores, (n_books, BR_MODEL_NEIGHBOURS). */
BR_API const int32_t *br_model_neighbours(const br_model *m, const float **scores);
/* Popularity in [0, 1] (1: the most popular book), by what the published
 * lists recommend: (n_books,). Books by decreasing popularity (ties: lower
 * index): (n_books,). */
BR_API const float *br_model_popularity(const br_model *m);
BR_API const uint32_t *br_model_popular_order(const br_model *m);
/* Ratings per book in the training data (n_books,); NULL for a version
 * written before format_version 3. */
BR_API const int32_t *br_model_rating_counts(const br_model *m);
/* The cold-start list: popular books, each tribe's share of places by its
 * share of readers (docs/api.md). */
BR_API const uint32_t *br_model_cold(const br_model *m, size_t *n);

/* The readers with a published list, in the version's order; their lists
 * (n_readers, top_n): book indices (-1 pads) and scores, best first. */
BR_API const char *const *br_model_readers(const br_model *m, size_t *n);
BR_API const int32_t *br_model_lists(const br_model *m, const float **scores, size_t *top_n);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_MODEL_H */
