/*
 * bookrec/hybrid.h: the engines together. One fitted object (br_hybrid)
 * holds every single engine a ranking needs (popularity, the notebook's
 * SVD, implicit and explicit ALS, the weighted item-item model, the content
 * engine over book embeddings and its tribes) and ranks with any of them or
 * with one of the combinations:
 *
 *   notebook-hybrid  the notebook's rule: cosine to the reader's favourite
 *                    book and the SVD prediction, each min-max scaled over
 *                    all books, blended 0.5 / 0.5 (weights configurable)
 *   rank-fusion      each engine's top list, 1 / (rank + 1) points, summed
 *   rrf              reciprocal-rank fusion, 1 / (60 + rank)
 *   hybrid           bookrec's default (docs/evaluation.md): candidates
 *                    (the union of the weighted item-item model's and
 *                    implicit ALS's top lists), re-ranked by the item-item
 *                    model, ALS, the reader's content profile and
 *                    popularity, each standardised over the candidates,
 *                    blended with weights tuned on a validation split of
 *                    training data; other books follow in ALS order
 *                    when more are asked for than there are candidates
 *
 * Also here: the engine registry (names, summaries, which book text each
 * engine reads). The item-item model itself (EASE) is in bookrec/collab.h,
 * a book's text and the embedding cache in bookrec/text.h.
 *
 * Rankings never contain a book the reader rated in the training data and
 * break ties by the lower book index. The library never prints; words for
 * explanations are built from the catalogue the caller passes.
 */
#ifndef BOOKREC_HYBRID_H
#define BOOKREC_HYBRID_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/collab.h"
#include "bookrec/core.h"
#include "bookrec/data.h"
#include "bookrec/eval.h"
#include "bookrec/sparse.h"
#include "bookrec/text.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------------- engines -- */

typedef enum br_engine {
    BR_ENGINE_POPULARITY = 0,
    BR_ENGINE_SVD,
    BR_ENGINE_ALS,
    BR_ENGINE_ALS_EXPLICIT,
    BR_ENGINE_EASE,
    BR_ENGINE_CONTENT,           /* cosine to the reader's profile */
    BR_ENGINE_CONTENT_FAVOURITE, /* cosine to the favourite book */
    BR_ENGINE_CONTENT_CLUSTER,   /* the favourite's tribe, catalogue order */
    BR_ENGINE_NOTEBOOK_HYBRID,
    BR_ENGINE_RANK_FUSION,
    BR_ENGINE_RRF,
    BR_ENGINE_HYBRID,
    BR_ENGINE_COUNT
} br_engine;

BR_API const char *br_engine_name(br_engine e);
/* Also accepts "collab" (svd, the notebook's collaborative list). */
BR_API br_status br_engine_parse(const char *name, br_engine *out);
/* 1 when the engine needs book embeddings. */
BR_API int br_engine_needs_content(br_engine e);
/* The book text an engine reads unless told otherwise: the notebook's
 * (BR_TEXT_DESCRIPTION) for the engines that reproduce its content recipe
 * (content-favourite, content-cluster, notebook-hybrid, rank-fusion),
 * BR_TEXT_FULL for the others, as `train` and the served API. */
BR_API br_book_template br_engine_template(br_engine e);
/* 1 when the engine predicts ratings (svd, als-explicit). */
BR_API int br_engine_predicts(br_engine e);
/* One line saying what the engine does (help texts). */
BR_API const char *br_engine_summary(br_engine e);
/* 1 for the engines one collaborative factor model holds (popularity,
 * svd, als, als-explicit: a bookrec/collab.h model file), which
 * br_engine_fit_cf fits alone; the options of the others are ignored (als:
 * its kind is the engine's). */
BR_API int br_engine_is_cf(br_engine e);
BR_API br_status br_engine_fit_cf(br_engine e, const br_csr *r, const br_csr *rt,
                                  const br_svd_options *svd, const br_als_options *als,
                                  const br_popularity_options *pop, br_cf_model **out);

#define BR_FUSION_MAX 6

/* The learned re-ranker of the default hybrid: a linear model over
 * BR_RERANK_FEATURES features of each candidate (br_rerank_feature_name,
 * docs/evaluation.md), fitted by pointwise logistic regression on a
 * validation split carved from the training ratings. */
#define BR_RERANK_FEATURES 25
#define BR_RERANK_MAX_ITER 30

typedef struct br_hybrid_options {
    br_svd_options svd;
    br_als_options als; /* implicit */
    br_als_options als_explicit;
    br_popularity_options pop;
    br_ease_options ease;
    uint32_t tribes;             /* content-cluster: k-means clusters (10, the notebook's) */
    float nb_content, nb_collab; /* notebook-hybrid weights (0.5, 0.5) */
    /* rank-fusion: engines, and list depth (0: the n asked for) */
    uint32_t fusion_n;
    br_engine fusion[BR_FUSION_MAX];
    uint32_t fusion_depth;
    /* rrf */
    uint32_t rrf_n;
    br_engine rrf[BR_FUSION_MAX];
    uint32_t rrf_depth;
    float rrf_k;
    /* hybrid: weights of the standardised components */
    float w_ease, w_als, w_content, w_popularity;
    /* hybrid candidates: the union of the item-item model's top cand_ease
     * and implicit ALS's top cand_als unrated books; only these are scored
     * by every component; a longer list goes on in ALS order */
    uint32_t cand_ease, cand_als;
    /* and the top cand_cold of the books nobody has rated, by their
     * content-predicted ALS score (cold_books; 10) */
    uint32_t cand_cold;
    /* A business rule beside the re-ranker (which learns from validation
     * that a book without ratings is rarely what a reader picks next: its
     * `cold` feature): the best-scored candidate nobody has rated that
     * shares an author or a series with two books the reader liked is listed
     * no lower than this place (1-based; 10, the first page; 0: off), at
     * the score of the book it displaces. A new book by an author the reader loves is what
     * a reader expects to hear about, and no rating says so yet. */
    uint32_t cold_slot;
    /* 1: rank the candidates by the re-ranker's rerank_coef . features
     * instead of the w_* blend */
    int rerank;
    float rerank_coef[BR_RERANK_FEATURES];
    /* 1 (the default): implicit ALS's item factors of the books without a
     * training rating are predicted from their content (a kernel ridge
     * regression from the lexical model and the embeddings to the rated
     * books' factors; src/hybrid/coldvec.c), so the als engine and the
     * default hybrid rank them; needs emb and a catalogue of n_books.
     * 0: they stay at zero. */
    int cold_books;
    /* Readers out of training (bookrec eval --protocol readers): those with
     * fold_in[u] != 0 ((n_users,), borrowed; NULL: none) shape only their
     * own scores: the books' side (item factors, the item-item model,
     * popularity, mean ratings) is fitted without their rows, and their
     * factors are then folded in (br_cf_fold_in), as for a reader who came
     * after training (src/hybrid/foldin.c). */
    const uint8_t *fold_in;
    /* Every ranking considers only the books with rank_only[b] != 0
     * ((n_books,), borrowed; NULL: every book), before its top k is cut
     * (bookrec eval --protocol cold-books). */
    const uint8_t *rank_only;
} br_hybrid_options;

/* Defaults: svd k = 50 exact (the notebook), implicit ALS 64 factors
 * alpha 0.3 lambda 0.1, explicit ALS 32 factors lambda 0.05, the EASE
 * defaults above, rank-fusion of content-cluster and svd, rrf of ease,
 * als and content at depth 100, hybrid weights from bench/eval.sh --tune. */
BR_API void br_hybrid_options_default(br_hybrid_options *o);

/* Training data: n ratings (reader, book, value), in input order (the
 * favourite book is the first of the highest-rated in this order). */
typedef struct br_train_data {
    uint32_t n_users, n_books;
    size_t n;
    const uint32_t *user, *book;
    const float *value;
} br_train_data;

typedef struct br_hybrid br_hybrid;
struct br_split;

/* Fits what the engines in `engines` (n_engines of them) need, and only
 * that. emb (n_books, dim) L2-normalised book embeddings, borrowed (must
 * outlive the object); NULL when no content engine is asked for. cat (may
 * be NULL) names the tribes of content-cluster. */
BR_API br_status br_hybrid_fit(const br_train_data *d, const br_catalog *cat, const float *emb,
                               size_t dim, const br_hybrid_options *opt, const br_engine *engines,
                               size_t n_engines, br_hybrid **out);
BR_API void br_hybrid_free(br_hybrid *h);

/* Seconds spent fitting what the engine uses (combinations: the sum of
 * their parts). */
BR_API double br_hybrid_fit_seconds(const br_hybrid *h, br_engine e);
/* The factor model h fitted for a collaborative engine (popularity, svd,
 * als, als-explicit), or NULL when it fitted none for e. Owned by h. */
BR_API const br_cf_model *br_hybrid_cf_model(const br_hybrid *h, br_engine e);
/* The rating matrix h was fitted on (readers x books, duplicates summed as
 * br_csr_from_coo does). Owned by h. */
BR_API const br_csr *br_hybrid_ratings(const br_hybrid *h);
/* The tribe of a book (content-cluster) and its name ("" when fitted
 * without a catalogue); -1 when no tribes were fitted. */
BR_API int32_t br_hybrid_tribe(const br_hybrid *h, uint32_t book, const char **name);

/* Top k books for each of users[0..n): items/scores (n, k), padded with
 * UINT32_MAX / -INFINITY. scores may be NULL. */
BR_API br_status br_hybrid_rank(const br_hybrid *h, br_engine e, const uint32_t *users, size_t n,
                                uint32_t k, uint32_t *items, float *scores);
/* The default hybrid's candidates for one reader (the union its ranking
 * scores; the rest of a longer list follows in ALS order): books (cap,),
 * *n their number
 * (at most cap), in the order they were gathered (the item-item model's
 * top first, then ALS's).
 * raw (cap, 4) may be NULL: each candidate's raw component scores
 * {ease, als, content, log1p popularity}, -INFINITY where a component
 * cannot score the book or was not fitted. */
BR_API br_status br_hybrid_candidates(const br_hybrid *h, uint32_t user, uint32_t *books,
                                      float *raw, size_t cap, size_t *n);

/* The re-ranker's features of the same candidates: feat (cap,
 * BR_RERANK_FEATURES), row p for books[p]. */
BR_API br_status br_hybrid_features(const br_hybrid *h, uint32_t user, uint32_t *books, float *feat,
                                    size_t cap, size_t *n);
BR_API const char *br_rerank_feature_name(uint32_t f);

#define BR_RERANK_GRID 3

typedef struct br_rerank_report {
    size_t readers, rows, positives;
    uint32_t iterations;
    double loss[BR_RERANK_MAX_ITER + 1]; /* penalised mean log loss, before each step */
    /* br_hybrid_learn_rerank: the candidate depths tried (cand_ease =
     * cand_als), the held-out validation NDCG@10 of each, the one chosen */
    uint32_t grid[BR_RERANK_GRID];
    double grid_ndcg[BR_RERANK_GRID];
    uint32_t cand;
} br_rerank_report;

/* Pointwise logistic regression: rows (rows, BR_RERANK_FEATURES) with
 * labels y (0/1), L2 penalty lambda on the standardised weights; Newton
 * steps with a line search, in double, the same result whatever the
 * thread count. coef (BR_RERANK_FEATURES,) on the raw features (the bias
 * is dropped: it does not change a ranking). rep may be NULL. */
BR_API br_status br_rerank_fit(const float *x, const uint8_t *y, size_t rows, double lambda,
                               float *coef, br_rerank_report *rep);

/* The re-ranker learned from h (ease and als fitted) fitted on val's
 * training part: the candidates of val's readers with a relevant held-out
 * book (at most max_readers of them, evenly spread; 0: all), labelled 1
 * when relevant. The candidate depth comes from validation too: for each
 * depth of the grid (30, 50, 100 from each of the item-item model and
 * ALS) a model fitted on the even readers is scored by NDCG@10 on the odd
 * ones; the best depth is refitted on all of them and reported in
 * rep->cand (set cand_ease = cand_als = rep->cand to rank with it). */
BR_API br_status br_hybrid_learn_rerank(const br_hybrid *h, const struct br_split *val,
                                        uint32_t max_readers, double lambda, float *coef,
                                        br_rerank_report *rep);

/* Predicted ratings of (users[i], books[i]); BR_EUNSUPPORTED for engines
 * that do not predict. */
BR_API br_status br_hybrid_predict(const br_hybrid *h, br_engine e, const uint32_t *users,
                                   const uint32_t *books, size_t n, float *out);

/* One engine of a fitted hybrid as a br_ranker (bookrec/eval.h): the
 * engine's name, br_hybrid_rank, and br_hybrid_predict when the engine
 * predicts ratings. `pair` is the ranker's ctx and must outlive it. */
typedef struct br_hybrid_engine {
    const br_hybrid *h;
    br_engine e;
} br_hybrid_engine;
BR_API br_ranker br_hybrid_ranker(br_hybrid_engine *pair);

/* Weight search for the default hybrid: h fitted on val's training part
 * (with every weight of the grid's non-zero components), each weight set of
 * grid (n_grid rows of {ease, als, content, popularity}) scored by mean
 * NDCG@k over val's readers with a relevant held-out book. The engines'
 * standardised scores are computed once per block of readers and reused by
 * every weight set. ndcg (n_grid,): the same bits whatever the thread
 * count (each reader's NDCG is summed in reader order). */
BR_API br_status br_hybrid_tune(const br_hybrid *h, const struct br_split *val, uint32_t k,
                                const float (*grid)[4], size_t n_grid, double *ndcg);

/* ---------------------------------------------------------- explanation -- */

#define BR_WHY_MAX 256

typedef struct br_explain_part {
    br_engine engine;
    float score;          /* the engine's own score of the book */
    float contribution;   /* what it added to the final score */
    int32_t rank;         /* the book's 0-based place in the engine's own list, -1: not in it */
    char why[BR_WHY_MAX]; /* in words, e.g. "because you rated *Dune* 5 stars" */
} br_explain_part;

typedef struct br_explanation {
    br_engine engine;
    float score;
    uint32_t n_parts;
    br_explain_part part[8];
} br_explanation;

/* Why `e` recommends `book` to `user`: one part per engine the ranking
 * uses (a single engine: one part). cat gives the words (titles). */
BR_API br_status br_hybrid_explain(const br_hybrid *h, const br_catalog *cat, br_engine e,
                                   uint32_t user, uint32_t book, br_explanation *out);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_HYBRID_H */
