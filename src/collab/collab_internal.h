/*
 * collab_internal.h (internal): the model record shared by the collab
 * sources (fitting, top-N, fold-in, persistence), and the row solver ALS
 * and fold-in share.
 */
#ifndef BR_COLLAB_INTERNAL_H
#define BR_COLLAB_INTERNAL_H

#include "bookrec/collab.h"

struct br_cf_model {
    br_cf_engine engine;
    uint32_t n_users, n_items, k;
    float *user_f; /* (n_users, k) */
    float *item_f; /* (n_items, k) */
    float *user_b; /* (n_users,) or NULL */
    float *item_b; /* (n_items,) or NULL */
    float *sv;     /* (k,) svd only, or NULL */
    float global;
    /* ALS hyper-parameters, needed again by fold-in. */
    float lambda, alpha;
    /* Implicit ALS: Y^T Y (k, k) of the item factors, computed once when the
     * model is made or loaded so a fold-in costs O(ratings k^2 + k^3), not
     * O(items k^2). Always owned (br_aligned_alloc), even when mapped. */
    float *yty;
    /* Set when loaded: the arrays point into this mapping. */
    void *map;
    size_t map_len;
    /* External ids (loaded models saved with ids): offsets (n + 1,) into a
     * blob of NUL-terminated strings. */
    const uint64_t *user_id_off, *item_id_off;
    const char *user_id_blob, *item_id_blob;
};

/* A model with arrays allocated (zeroed) for the given shape. */
br_status br__cf_model_alloc(br_cf_engine e, uint32_t n_users, uint32_t n_items, uint32_t k,
                         int user_bias, int item_bias, br_cf_model **out);

/* yty (k, k) = Y^T Y of the model's item factors, full symmetric. ALS
 * training and fold-in both use this, so they see the same numbers. */
void br__cf_item_gram(const br_cf_model *m, float *yty);
/* Sets m->yty for implicit ALS models (no-op otherwise). */
br_status br__cf_model_prepare(br_cf_model *m);
/* The same for any (n, k) factor block. */
void br__cf_gram(const float *y, size_t n, uint32_t k, float *yty);

/* One row of the least-squares problem ALS solves, in its general form:
 *
 *   minimise  sum_i w_i (t_i - x . y_i)^2 + [implicit] sum_{i unrated} (x . y_i)^2 + reg |x|^2
 *
 * Normal equations: (G + sum_i (w_i - g) y_i y_i^T + reg I) x = sum_i w_i t_i y_i, with
 * G = Y^T Y and g = 1 for implicit, G = 0 and g = 0 for explicit.
 * Exact solve in double (Cholesky). d <= ALS_MAX_D. Returns 0, or -1 when
 * the system is not positive definite (an empty row with reg 0). */
#define ALS_MAX_D 1025
int br__als_solve_row_exact(uint32_t d, const float *yty /* (d, d) or NULL */, size_t n,
                        const uint32_t *idx, const float *w, const float *t, const float *y,
                        float reg, double *work /* d * d + 2 * d */, float *x);

#endif
