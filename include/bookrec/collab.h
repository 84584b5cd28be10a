/*
 * bookrec/collab.h: the collaborative engine ("people who read what you
 * read"). One model type serves every engine:
 *
 *   score(u, i) = global + user_bias[u] + item_bias[i] + user_f[u] . item_f[i]
 *
 *   popularity    item_bias only (count of ratings, or a damped mean rating)
 *   svd           user_f = U diag(s), item_f = V: the notebook's recipe,
 *                 predicted = U S V^T of the 0-filled rating matrix
 *   als           implicit feedback (Hu, Koren & Volinsky 2008): confidence
 *                 1 + alpha * r, preference 1 for every rated book
 *   als-explicit  rating prediction with user and item biases and
 *                 weighted-lambda regularisation (Zhou et al. 2008)
 *
 * Matrices are users x books CSR (bookrec/sparse.h); every function that
 * needs the transpose takes it and builds it when given NULL. Top-N ranks by
 * score, then by lower book index, and never returns a book the reader has
 * rated. A model is saved to one file (magic "BRCFMODL", documented in
 * docs/formats.md) and loaded with mmap.
 */
#ifndef BOOKREC_COLLAB_H
#define BOOKREC_COLLAB_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/core.h"
#include "bookrec/data.h"
#include "bookrec/sparse.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum br_cf_engine {
    BR_CF_POPULARITY = 0,
    BR_CF_SVD = 1,
    BR_CF_ALS = 2,          /* implicit */
    BR_CF_ALS_EXPLICIT = 3,
} br_cf_engine;

/* "popularity", "svd", "als", "als-explicit". */
const char *br_cf_engine_name(br_cf_engine e);

typedef struct br_cf_model br_cf_model;

void br_cf_model_free(br_cf_model *m);
br_cf_engine br_cf_model_engine(const br_cf_model *m);
uint32_t br_cf_model_users(const br_cf_model *m);
uint32_t br_cf_model_items(const br_cf_model *m);
uint32_t br_cf_model_factors(const br_cf_model *m); /* k (0 for popularity) */
const float *br_cf_model_user_factors(const br_cf_model *m); /* (users, k) */
const float *br_cf_model_item_factors(const br_cf_model *m); /* (items, k) */
const float *br_cf_model_user_bias(const br_cf_model *m);    /* (users,) or NULL */
const float *br_cf_model_item_bias(const br_cf_model *m);    /* (items,) or NULL */
float br_cf_model_global_bias(const br_cf_model *m);
const float *br_cf_model_singular_values(const br_cf_model *m); /* (k,) svd only, else NULL */
size_t br_cf_model_memory(const br_cf_model *m);

/* ------------------------------------------------------------ popularity -- */

typedef enum br_popularity_kind {
    BR_POP_COUNT = 0, /* number of ratings */
    BR_POP_MEAN = 1,  /* (sum + damping * global mean) / (count + damping) */
} br_popularity_kind;

typedef struct br_popularity_options {
    br_popularity_kind kind;
    float damping; /* BR_POP_MEAN: pseudo-ratings at the global mean */
} br_popularity_options;

#define BR_POPULARITY_OPTIONS_DEFAULT {BR_POP_COUNT, 10.0f}

br_status br_popularity_fit(const br_csr *r, const br_popularity_options *opt,
                            br_cf_model **out);

/* ------------------------------------------------------------------ svd -- */

/* The notebook's recipe: truncated SVD of r itself (0 for unrated). */
br_status br_cf_svd_fit(const br_csr *r, const br_csr *rt, const br_svd_options *opt,
                        br_cf_model **out);

/* ------------------------------------------------------------------ als -- */

typedef enum br_als_kind { BR_ALS_IMPLICIT = 0, BR_ALS_EXPLICIT = 1 } br_als_kind;

/* Called after each iteration with the training loss (the objective being
 * minimised, regularisation included) and, for explicit ALS, the training
 * RMSE (0 for implicit). Return non-zero to stop (BR_ECANCELLED). */
typedef int (*br_als_iter_fn)(uint32_t iteration, double loss, double rmse, double seconds,
                              void *user);

typedef struct br_als_options {
    br_als_kind kind;
    uint32_t factors;    /* k */
    uint32_t iterations;
    float lambda;        /* implicit: lambda; explicit: lambda * ratings of the row */
    float alpha;         /* implicit: confidence = 1 + alpha * rating */
    uint32_t cg_steps;   /* conjugate-gradient steps per row; 0: exact Cholesky solve */
    uint64_t seed;
    int compute_loss;    /* evaluate the loss after each iteration (costs ~ one CG step) */
    br_als_iter_fn on_iteration; /* may be NULL */
    void *user;
} br_als_options;

#define BR_ALS_OPTIONS_DEFAULT {BR_ALS_IMPLICIT, 64, 15, 0.1f, 1.0f, 3, 42, 1, NULL, NULL}

/* Alternating least squares. Each iteration solves the items given the
 * users, then the users given the items, so the stored user factors are
 * exactly what br_cf_fold_in computes for each reader from the final item
 * factors (with cg_steps = 0; CG gives a close approximation). */
br_status br_als_fit(const br_csr *r, const br_csr *rt, const br_als_options *opt,
                     br_cf_model **out);

/* -------------------------------------------------------------- fold-in -- */

/* Factors for a reader from their ratings (book indices and values, n of
 * them, any order) without retraining: the least-squares step for one row
 * against the model's item factors (svd: the projection r . V; als: the
 * exact solve of the row's normal equations). factors (k,); *bias receives
 * the user bias (0 unless als-explicit; bias may be NULL). Popularity
 * models have k = 0: nothing to compute. */
br_status br_cf_fold_in(const br_cf_model *m, size_t n, const uint32_t *items,
                        const float *values, float *factors, float *bias);

/* ---------------------------------------------------------------- top-N -- */

/* Marks an empty result slot. */
#define BR_CF_NONE UINT32_MAX

/* Top n books for one reader given their factors (k,) and bias: `seen`
 * (n_seen book indices, any order) are excluded. items/scores (n,), padded
 * with BR_CF_NONE / -INFINITY when fewer books are left. Scores are the
 * model's predictions. */
br_status br_cf_recommend_one(const br_cf_model *m, const float *factors, float bias,
                              const uint32_t *seen, size_t n_seen, uint32_t n, uint32_t *items,
                              float *scores);

/* Receives one block of results: users[j] got items/scores row j (count
 * rows of n). Return non-zero to stop (BR_ECANCELLED). */
typedef int (*br_cf_emit_fn)(const uint32_t *users, size_t count, uint32_t n,
                             const uint32_t *items, const float *scores, void *user);

/* Top n for many readers, streamed in blocks: a block of user factors
 * against every item factor (sgemm), rated books masked out (`seen`, the
 * users x books CSR, may be NULL), a partial sort per row. Memory stays at
 * one block of scores, whatever the number of users. users NULL means all
 * (0 .. users-1, n_users ignored). Reports progress as "top-n". */
br_status br_cf_recommend(const br_cf_model *m, const br_csr *seen, const uint32_t *users,
                          size_t n_users, uint32_t n, br_cf_emit_fn emit, void *user);

/* ---------------------------------------------------------- persistence -- */

/* Writes the model (and, when given, the external ids of its users and
 * books, so a loaded model can answer by id) to `path`: a temporary file
 * beside it, fsynced, renamed. */
br_status br_cf_model_save(const br_cf_model *m, const char *path, const br_idmap *user_ids,
                           const br_idmap *item_ids);
/* Maps a saved model; the factor arrays point into the mapping. */
br_status br_cf_model_load(const char *path, br_cf_model **out);
/* External ids stored with the model, or NULL when it was saved without. */
const char *br_cf_model_user_id(const br_cf_model *m, uint32_t index);
const char *br_cf_model_item_id(const br_cf_model *m, uint32_t index);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_COLLAB_H */
