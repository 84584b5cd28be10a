/*
 * bookrec/content.h: the content engine after the encoder: book tribes
 * (k-means), PCA, exact cosine top-k, content recommendations and the
 * tribes picture.
 *
 * Embeddings are row-major float32 matrices (n_books, dim), one row per
 * catalogue book in catalogue order. "Cosine" assumes L2-normalised rows
 * (the encoder's output); the kernels themselves work on inner products.
 * Every kernel takes caller-owned buffers, never prints, and is
 * deterministic for a given seed and thread count.
 */
#ifndef BOOKREC_CONTENT_H
#define BOOKREC_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/core.h"
#include "bookrec/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- kmeans -- */

typedef enum br_kmeans_algo {
    BR_KMEANS_AUTO = 0,    /* Hamerly when k >= 4 (it pays), else Lloyd */
    BR_KMEANS_LLOYD = 1,   /* every distance each iteration, through sgemm */
    BR_KMEANS_HAMERLY = 2, /* Lloyd's result, skipping points whose bounds prove their label */
} br_kmeans_algo;

typedef struct br_kmeans_options {
    uint32_t k;        /* clusters, 1 <= k <= n */
    uint32_t n_init;   /* k-means++ restarts; the lowest inertia wins */
    uint32_t max_iter; /* Lloyd iterations per restart */
    /* Convergence: the summed squared centre shift of an iteration is at
     * most tol * (mean per-feature variance of the data), as scikit-learn
     * defines it; or no label changed. */
    double tol;
    uint64_t seed;
    br_kmeans_algo algo;
} br_kmeans_options;

#define BR_KMEANS_OPTIONS_DEFAULT {8, 10, 300, 1e-4, 42, BR_KMEANS_AUTO}

typedef struct br_kmeans_result {
    uint32_t k;
    size_t n, dim;
    int32_t *labels;    /* (n,) cluster of each point, 0..k-1 */
    float *centroids;   /* (k, dim), br_aligned_alloc'd */
    double inertia;     /* sum of squared distances to the assigned centroid */
    uint32_t iterations; /* of the winning restart */
    uint32_t best_init;  /* which restart won (0-based) */
    uint32_t reseeded;   /* empty clusters re-seeded, over all restarts */
} br_kmeans_result;

/* k-means on x (n, dim): k-means++ seeding (scikit-learn's greedy variant,
 * 2 + floor(ln k) candidates per centre), n_init restarts, each run to
 * convergence or max_iter. k > n fails with BR_EINVAL. A cluster that
 * empties during an iteration is re-seeded with the point farthest from its
 * centroid (counted in `reseeded`), so the result always has k non-empty
 * clusters when x has at least k distinct points. Release with
 * br_kmeans_result_free. */
BR_API br_status br_kmeans_fit(const float *x, size_t n, size_t dim, const br_kmeans_options *opt,
                               br_kmeans_result *out);
BR_API void br_kmeans_result_free(br_kmeans_result *r);

/* ------------------------------------------------------------------- pca -- */

/* Exact principal component analysis: the data are centred, their
 * covariance formed with one BLAS syrk, and its leading eigenpairs found by
 * LAPACK (dsyevr, double precision). Sign convention: in each component the
 * entry of largest magnitude is positive (the first such entry on ties), so
 * the result does not depend on the eigensolver's arbitrary signs. */
typedef struct br_pca {
    size_t dim;          /* input width */
    size_t n_components; /* output width */
    float *mean;         /* (dim,) */
    float *components;   /* (n_components, dim), unit rows, by decreasing variance */
    double *explained_variance;       /* (n_components,), covariance eigenvalues (n - 1) */
    double *explained_variance_ratio; /* (n_components,), of the total variance */
    double total_variance;
} br_pca;

/* 1 <= n_components <= dim; n >= 2. */
BR_API br_status br_pca_fit(const float *x, size_t n, size_t dim, size_t n_components, br_pca *out);
/* out (n, n_components) = (x (n, dim) - mean) . components^T */
BR_API br_status br_pca_transform(const br_pca *p, const float *x, size_t n, float *out);
BR_API void br_pca_free(br_pca *p);

/* ----------------------------------------------------------------- top-k -- */

/* Exact maximum-inner-product search (cosine on normalised rows): for each
 * of nq queries (nq, dim), the k rows of base (n, dim) with the largest dot
 * product, best first, ties by lower index. ids (nq, k) and scores (nq, k);
 * when fewer than k rows qualify (a NaN or -INFINITY product never does)
 * the tail is id -1, score -INFINITY.
 * exclude (n,) may be NULL; a non-zero byte excludes that row for every
 * query. One query runs sgemv; a batch runs sgemm on blocks of base and
 * queries with a bounded heap per query (partial sort). */
BR_API br_status br_topk_search(const float *base, size_t n, size_t dim, const float *queries,
                                size_t nq, size_t k, const uint8_t *exclude, int32_t *ids,
                                float *scores);

/* ------------------------------------------------------------ tribes ---- */

#define BR_TRIBE_CENTRAL 5   /* most central books kept per tribe */
#define BR_TRIBE_NAME_MAX 96

typedef struct br_tribe {
    char name[BR_TRIBE_NAME_MAX]; /* e.g. "Fantasy" or "mystery / thriller" */
    uint32_t size;
    float purity;  /* share of the tribe's books carrying its naming genre/tag */
    uint32_t n_central;
    uint32_t central[BR_TRIBE_CENTRAL]; /* book indices, closest to the centroid first */
} br_tribe;

typedef struct br_tribes {
    uint32_t k;
    size_t n_books, dim;
    int32_t *labels;  /* (n_books,) */
    float *centroids; /* (k, dim) */
    br_tribe *tribe;  /* (k,) */
    double inertia;
    uint32_t iterations;
    int named_by_tags; /* 1: names from tags (no genre column) */
    /* The 2-D PCA picture of the books (filled by br_tribes_build). */
    float *pca2;      /* (n_books, 2) */
    double evr[2];    /* explained variance ratio of the two axes */
    /* The PCA behind pca2, to place other vectors on the same picture:
     * (3, dim), the mean then the two components; NULL in a model saved
     * before it was kept (br_tribes_map_point then fails). */
    float *pca_basis;
    /* Catalogue ids and titles of the books (owned copies), so a saved
     * model can be plotted and queried without the catalogue. */
    char **book_ids;
    char **titles;
    float *embeddings; /* (n_books, dim) or NULL when not kept */
} br_tribes;

/* Clusters the catalogue's embeddings emb (n, dim), n = br_catalog_count,
 * names each tribe, ranks its central books and computes the PCA picture.
 * Naming: with a genre column, the tribe's most frequent genre; otherwise
 * its two most distinctive tags (count in the tribe x ln(n_books / count in
 * the catalogue)). A name used by an earlier tribe gets " (2)", " (3)".
 * keep_embeddings copies emb into the result (saved with the model). */
BR_API br_status br_tribes_build(const br_catalog *cat, const float *emb, size_t n, size_t dim,
                                 const br_kmeans_options *opt, int keep_embeddings,
                                 br_tribes **out);
BR_API void br_tribes_free(br_tribes *t);

/* Model directory (docs/formats.md, "Tribes model"): tribes.json (manifest,
 * written last), labels.npy, centroids.npy, pca2.npy and, when kept,
 * embeddings.npy; each written to a temporary file, fsynced and renamed. */
BR_API br_status br_tribes_save(const br_tribes *t, const char *dir);
/* xy = a vector (dim,) on the PCA picture: (vec - mean) . components.
 * BR_ENOTFOUND without pca_basis. */
BR_API br_status br_tribes_map_point(const br_tribes *t, const float *vec, float xy[2]);
BR_API br_status br_tribes_load(const char *dir, br_tribes **out);

/* ------------------------------------------------------ recommendations -- */

/* The reader's favourite book: highest rating, ties by first occurrence in
 * the ratings file. BR_ENOTFOUND when the reader rated nothing. */
BR_API br_status br_content_favourite(const br_ratings *r, uint32_t user, uint32_t *book);

/* The notebook's rule: the favourite book's tribe, minus every book the
 * reader rated, in catalogue order; at most n. *count receives how many. */
BR_API br_status br_content_tribe_recs(const br_tribes *t, const br_ratings *r, uint32_t user,
                                       size_t n, int32_t *books, size_t *count);

/* The reader's profile (dim,) by the feedback rule (bookrec/data.h,
 * br_rating_weight): the rating-weighted direction of the liked books
 * (else of every book not disliked) less BR_DISLIKE_PULL times that of
 * the disliked ones; L2-normalised. */
BR_API br_status br_content_profile(const float *emb, size_t n_books, size_t dim,
                                    const br_ratings *r, uint32_t user, float *profile);

/* Top-n books by cosine to a book (the book itself excluded) or to the
 * reader's profile (rated books excluded). ids/scores (n,), tail -1/-INF. */
BR_API br_status br_content_similar_book(const float *emb, size_t n_books, size_t dim,
                                         uint32_t book, size_t n, int32_t *ids, float *scores);
BR_API br_status br_content_similar_user(const float *emb, size_t n_books, size_t dim,
                                         const br_ratings *r, uint32_t user, size_t n, int32_t *ids,
                                         float *scores);

/* ------------------------------------------------------------------ plot -- */

typedef struct br_plot_options {
    int width, height;     /* pixels (PNG) or points (SVG, PDF); default 1400 x 900 */
    int label_per_tribe;   /* central books labelled per tribe (0: none; default 1) */
    const char *title;     /* NULL: "Book tribes: k-means on ... in PCA space" */
} br_plot_options;

#define BR_PLOT_OPTIONS_DEFAULT {1400, 900, 1, NULL}

/* Draws the books in the 2-D PCA plane coloured by tribe, with a legend of
 * tribe names and sizes, axis titles with explained variance and a title.
 * The format follows the extension of path: .png, .svg or .pdf. */
BR_API br_status br_plot_tribes(const br_tribes *t, const br_plot_options *opt, const char *path);

/* Releases the font caches cairo keeps for the life of the process (so leak
 * checkers see a clean exit). Only when no other thread is drawing; a later
 * br_plot_tribes works again. */
BR_API void br_plot_release_caches(void);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_CONTENT_H */
