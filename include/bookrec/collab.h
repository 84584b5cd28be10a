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
 * Also here, a model of its own: the weighted item-item model (EASE,
 * Steck 2019, on rating weights, restricted to the M most-rated books).
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
BR_API const char *br_cf_engine_name(br_cf_engine e);

typedef struct br_cf_model br_cf_model;

BR_API void br_cf_model_free(br_cf_model *m);
BR_API br_cf_engine br_cf_model_engine(const br_cf_model *m);
BR_API uint32_t br_cf_model_users(const br_cf_model *m);
BR_API uint32_t br_cf_model_items(const br_cf_model *m);
BR_API uint32_t br_cf_model_factors(const br_cf_model *m);          /* k (0 for popularity) */
BR_API const float *br_cf_model_user_factors(const br_cf_model *m); /* (users, k) */
BR_API const float *br_cf_model_item_factors(const br_cf_model *m); /* (items, k) */
BR_API const float *br_cf_model_user_bias(const br_cf_model *m);    /* (users,) or NULL */
BR_API const float *br_cf_model_item_bias(const br_cf_model *m);    /* (items,) or NULL */
BR_API float br_cf_model_global_bias(const br_cf_model *m);
/* (k,): svd only, else NULL */
BR_API const float *br_cf_model_singular_values(const br_cf_model *m);
BR_API size_t br_cf_model_memory(const br_cf_model *m);

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

BR_API br_status br_popularity_fit(const br_csr *r, const br_popularity_options *opt,
                                   br_cf_model **out);

/* ------------------------------------------------------------------ svd -- */

/* The notebook's recipe: truncated SVD of r itself (0 for unrated). */
BR_API br_status br_cf_svd_fit(const br_csr *r, const br_csr *rt, const br_svd_options *opt,
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
BR_API br_status br_als_fit(const br_csr *r, const br_csr *rt, const br_als_options *opt,
                            br_cf_model **out);

/* -------------------------------------------------------------- fold-in -- */

/* Factors for a reader from their ratings (book indices and values, n of
 * them, any order) without retraining: the least-squares step for one row
 * against the model's item factors (svd: the projection r . V; als: the
 * exact solve of the row's normal equations). factors (k,); *bias receives
 * the user bias (0 unless als-explicit; bias may be NULL). Popularity
 * models have k = 0: nothing to compute. */
BR_API br_status br_cf_fold_in(const br_cf_model *m, size_t n, const uint32_t *items,
                               const float *values, float *factors, float *bias);

/* ---------------------------------------------------------------- top-N -- */

/* Marks an empty result slot. */
#define BR_CF_NONE UINT32_MAX

/* Top n books for one reader given their factors (k,) and bias: `seen`
 * (n_seen book indices, any order) are excluded. items/scores (n,), padded
 * with BR_CF_NONE / -INFINITY when fewer books are left. Scores are the
 * model's predictions. */
BR_API br_status br_cf_recommend_one(const br_cf_model *m, const float *factors, float bias,
                                     const uint32_t *seen, size_t n_seen, uint32_t n,
                                     uint32_t *items, float *scores);

/* Receives one block of results: users[j] got items/scores row j (count
 * rows of n). Return non-zero to stop (BR_ECANCELLED). */
typedef int (*br_cf_emit_fn)(const uint32_t *users, size_t count, uint32_t n,
                             const uint32_t *items, const float *scores, void *user);

/* Top n for many readers, streamed in blocks: a block of user factors
 * against every item factor (sgemm), rated books masked out (`seen`, the
 * users x books CSR, may be NULL), a partial sort per row. Memory stays at
 * one block of scores, whatever the number of users. users NULL means all
 * (0 .. users-1, n_users ignored). Reports progress as "top-n". */
BR_API br_status br_cf_recommend(const br_cf_model *m, const br_csr *seen, const uint32_t *users,
                                 size_t n_users, uint32_t n, br_cf_emit_fn emit, void *user);

/* ---------------------------------------------------------- persistence -- */

/* Writes the model (and, when given, the external ids of its users and
 * books, so a loaded model can answer by id) to `path`: a temporary file
 * beside it, fsynced, renamed. */
BR_API br_status br_cf_model_save(const br_cf_model *m, const char *path, const br_idmap *user_ids,
                                  const br_idmap *item_ids);
/* Maps a saved model; the factor arrays point into the mapping. */
BR_API br_status br_cf_model_load(const char *path, br_cf_model **out);
/* External ids stored with the model, or NULL when it was saved without. */
BR_API const char *br_cf_model_user_id(const br_cf_model *m, uint32_t index);
BR_API const char *br_cf_model_item_id(const br_cf_model *m, uint32_t index);

/* -------------------------------------------------------- item-item model -- */

/* EASE on rating weights: X_ui = weight[r_ui] (rating r rounded and clamped
 * to 1..5), over the M books with the most ratings (ties: lower index);
 * B = I - P diag(1 / diag P) with P = (X^T X + lambda I)^-1, so B has a
 * zero diagonal, and score(u, i) = sum_j X_uj B_ji for the M books. */
typedef struct br_ease_options {
    uint32_t max_items; /* M; 0 or more than the books: every book with a rating */
    float lambda;
    float weight[5]; /* of ratings 1..5 */
} br_ease_options;

#define BR_EASE_OPTIONS_DEFAULT                                                                    \
    {                                                                                              \
        4000, 100.0f,                                                                              \
        {                                                                                          \
            0.2f, 0.3f, 0.5f, 1.0f, 1.3f                                                           \
        }                                                                                          \
    }

typedef struct br_ease br_ease;

/* r: readers x books ratings (values are ratings). OpenMP Gram from the
 * sparse columns, LAPACK spotrf + spotri. */
BR_API br_status br_ease_fit(const br_csr *r, const br_csr *rt, const br_ease_options *opt,
                             br_ease **out);
BR_API void br_ease_free(br_ease *m);
BR_API uint32_t br_ease_items(const br_ease *m);           /* M */
BR_API const uint32_t *br_ease_item_ids(const br_ease *m); /* (M,) book index of each slot */
/* Slot of a book, or -1 when it is not one of the M. */
BR_API int32_t br_ease_slot(const br_ease *m, uint32_t book);
BR_API const float *br_ease_matrix(const br_ease *m); /* B (M, M), row-major */
/* Scores of one reader's history (n ratings) for every book: out
 * (n_books,); books outside the M get -INFINITY. */
BR_API br_status br_ease_score(const br_ease *m, size_t n, const uint32_t *books,
                               const float *ratings, uint32_t n_books, float *out);
/* The plain reference: the dense inverse by Gauss-Jordan in double on the
 * dense Gram (small data only; the oracle of the tests). B (M, M). */
BR_API br_status br_ease_reference(const br_csr *r, const br_ease_options *opt, uint32_t *items,
                                   uint32_t *m_out, float *b);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_COLLAB_H */
