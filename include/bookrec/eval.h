/*
 * bookrec/eval.h: offline evaluation on held-out ratings.
 *
 * The protocol (docs/evaluation.md): readers with at least `min_ratings`
 * ratings have a seeded `test_fraction` of them (at least one) held out, or
 * their latest ones when the split is by time; a held-out book is relevant
 * when rated >= `relevant_min`; readers without a relevant held-out book are
 * skipped for the ranking metrics; each engine ranks every book the reader
 * did not rate in training. Metrics at k: precision, recall, NDCG (binary
 * relevance, log2 discount), MAP, catalogue coverage; RMSE on every
 * held-out rating for engines that predict ratings. br_eval_run runs the
 * whole protocol (every engine, tuning, slices) and returns a report.
 */
#ifndef BOOKREC_EVAL_H
#define BOOKREC_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/core.h"
#include "bookrec/data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct br_split_options {
    float test_fraction;  /* share of a reader's ratings held out (default 0.2) */
    uint32_t min_ratings; /* readers with fewer are not evaluated (default 5) */
    float relevant_min;   /* a held-out rating >= this is relevant (default 4) */
    uint64_t seed;
    int by_time;          /* hold out each reader's latest ratings (needs timestamps) */
} br_split_options;

#define BR_SPLIT_OPTIONS_DEFAULT {0.2f, 5, 4.0f, 42, 0}

/* Training ratings keep the input's order; held-out ratings are grouped by
 * reader: reader u's are test_*[test_ptr[u] .. test_ptr[u + 1]). */
typedef struct br_split {
    uint32_t n_users, n_books;
    float relevant_min;
    size_t n_train;
    uint32_t *train_user, *train_book; /* (n_train,) */
    float *train_value;                /* (n_train,) */
    size_t n_test;
    uint64_t *test_ptr;                /* (n_users + 1,) */
    uint32_t *test_book;               /* (n_test,) */
    float *test_value;                 /* (n_test,) */
    uint32_t n_eval_users;             /* readers with a held-out rating */
    /* The other protocols (NULL for the per-reader hold-out): */
    uint8_t *fold_in;   /* (n_users,) readers out of training (readers): their
                         * training rows are folded in, never fitted on */
    uint8_t *candidate; /* (n_books,) the books every reader ranks (cold-books) */
} br_split;

BR_API br_status br_split_ratings(const br_ratings *r, const br_split_options *opt, br_split *out);
BR_API void br_split_free(br_split *s);

/* Cold books: a seeded book_fraction of the rated books (rounded, at least
 * one) lose every rating to the held-out part, the other ratings all train;
 * a reader is evaluated (keeps held-out ratings) when they have at least
 * one training rating and a held-out rating >= relevant_min; everyone else's
 * cold ratings are dropped. out->candidate marks the cold books: each reader
 * ranks only them. opt's test_fraction, min_ratings and by_time are not
 * used. */
BR_API br_status br_split_cold_books(const br_ratings *r, const br_split_options *opt,
                                     float book_fraction, br_split *out);

/* Strong generalisation: a seeded reader_fraction (rounded, at least one)
 * of the readers with at least min_ratings ratings are out of training;
 * each of them has test_fraction of their ratings held out as
 * br_split_ratings does and the rest kept in the training arrays as their
 * fold-in history (out->fold_in marks them: no model of the books may be
 * fitted on those rows). The other readers train on every rating. */
BR_API br_status br_split_readers(const br_ratings *r, const br_split_options *opt,
                                  float reader_fraction, br_split *out);

/* The same protocol applied to the training part of `s` (not by time): the
 * validation split that tunes hyper-parameters without seeing s's held-out
 * ratings. Use a seed other than s's. The fold-in rows of s (readers) are
 * left out: they are not training data. */
BR_API br_status br_split_train(const br_split *s, const br_split_options *opt, br_split *out);

/* Writes s into the directory dir (which must exist) as train.csv and
 * test.csv (reader,book,rating in bookrec's 0-based indices; training
 * ratings in input order, held-out ones by reader) and meta.json (the
 * shape and the protocol), so a peer in another language evaluates on
 * exactly the same held-out ratings; with s->candidate also candidates.csv
 * (book: the only books a reader ranks), with s->fold_in also fold_in.csv
 * (reader: readers whose train.csv rows are a fold-in history, not
 * training data). */
BR_API br_status br_split_write(const br_split *s, const char *dir);

/* Marks an empty slot in a ranking. */
#define BR_EVAL_NONE UINT32_MAX

/* An engine under evaluation. rank() fills items (n, k) with the top k
 * books for each of users[0..n), excluding books the reader rated in the
 * training set; shorter lists are padded with BR_EVAL_NONE. predict() (NULL
 * when the engine ranks but does not predict ratings) fills out (n,) with
 * the predicted rating of (users[i], books[i]). Both may be called from
 * one thread at a time with blocks of readers. */
typedef struct br_ranker {
    const char *name;
    void *ctx;
    br_status (*rank)(void *ctx, const uint32_t *users, size_t n, uint32_t k, uint32_t *items);
    br_status (*predict)(void *ctx, const uint32_t *users, const uint32_t *books, size_t n,
                         float *out);
} br_ranker;

typedef struct br_eval_result {
    uint32_t k;
    size_t users_ranked; /* readers with at least one relevant held-out book */
    double precision, recall, ndcg, map, coverage;
    int has_rmse;
    double rmse;
    size_t n_rmse;
    double rank_seconds, predict_seconds;
    /* br_eval_ranker_deep only (deep = 1): from one list of
     * max(k, BR_EVAL_DEEP) books, whose first k give the figures above. */
    int deep;
    double ndcg10, recall20, recall50, ndcg100;
} br_eval_result;

/* The depth of the deep metrics (NDCG@10, recall@20, recall@50, NDCG@100). */
#define BR_EVAL_DEEP 100

/* Evaluates `rk` at k on the split. users/n_users restrict the readers
 * (NULL: every reader with held-out ratings). */
BR_API br_status br_eval_ranker(const br_split *s, const br_ranker *rk, uint32_t k,
                                const uint32_t *users, size_t n_users, br_eval_result *out);
/* The same, ranking max(k, BR_EVAL_DEEP) books per reader, and also the
 * deep metrics. An engine whose list of k books is not the start of its
 * longer list (a fusion of top-k lists) gets other figures at k here. */
BR_API br_status br_eval_ranker_deep(const br_split *s, const br_ranker *rk, uint32_t k,
                                     const uint32_t *users, size_t n_users, br_eval_result *out);

/* The metrics of one ranked list: items (k,) against the sorted relevant
 * books rel (n_rel,). Pure; used by br_eval_ranker and its tests. */
typedef struct br_list_metrics {
    double precision, recall, ndcg, ap;
    uint32_t hits;
} br_list_metrics;

BR_API void br_eval_list(const uint32_t *items, uint32_t k, const uint32_t *rel, size_t n_rel,
                         br_list_metrics *out);

/* ------------------------------------------------------- the whole protocol -- */

/* `bookrec eval` as one call: load the files, split, embed the books each
 * engine reads, optionally tune the default hybrid and learn its
 * re-ranker on a validation split carved from the training part (never
 * the held-out ratings), fit every engine on the training part, rank, and
 * with `slices` also the long tail (relevant books with at most 100
 * ratings in the whole data), newcomers (a seeded quarter of the readers
 * keep 1-3 training ratings) and cold books (a seeded 5% of the books lose
 * every training rating); the last two share one refit.
 *
 * Engines, book texts and the hybrid are named as bookrec/hybrid.h and
 * bookrec/text.h name them (br_engine_parse, br_hybrid_options,
 * br_book_template), by name so that this header stands before hybrid.h
 * (which includes it). Progress: the stage "eval"
 * counts the protocol's steps; the steps report their own stages (load,
 * embed, als, evaluate, ...); a progress callback that asks to stop makes
 * the call fail with BR_ECANCELLED. Timings are in the report; everything
 * else in it is a function of the options and the files. */
typedef struct br_eval_options {
    const char *books, *ratings; /* CSV files (required) */
    /* Engine names (br_engine_parse: "svd", "ease", "hybrid", ...) in
     * the order to report them; NULL: every engine in br_engine order. */
    const char *const *engines;
    size_t n_engines;
    uint32_t k;             /* list length, 1..1000 (10) */
    br_split_options split; /* BR_SPLIT_OPTIONS_DEFAULT */
    int slices;             /* also the long tail, newcomers, cold books */
    /* Tune the hybrid first (EASE lambda and rating weights by the item-item
     * model's validation NDCG@k, then the blend weights by the hybrid's) and
     * evaluate it with the winners. */
    int tune;
    /* Learn the hybrid's re-ranker on the validation split when the hybrid
     * is evaluated with it (hybrid->rerank); 0: its coefficients as given.
     * br_eval_options_default: 1. */
    int learn;
    /* The engines' settings (a br_hybrid_options); NULL: the defaults
     * (br_hybrid_options_default). */
    const struct br_hybrid_options *hybrid;
    /* The book text every engine reads: "full" or "description"; NULL:
     * each engine its own (br_engine_template). */
    const char *text;
    /* Book embeddings (.npy, float32, one row per catalogue book) for every
     * engine that reads them, instead of the encoder; NULL: the encoder. */
    const char *embeddings;
    const char *encoder; /* "use-lite" (NULL) or "bert:DIR" */
    /* Books are embedded through the shared embedding cache
     * (br_embed_cache_dir) and, when cache names a file, that file too;
     * "none": no cache at all. */
    const char *cache;
    const char *write_split; /* a directory: also br_split_write there */
    /* The protocol (docs/evaluation.md): NULL, today's per-reader hold-out
     * with the figures at k only; "random" (the same split), "cold-books"
     * (br_split_cold_books, 10% of the rated books) or "readers"
     * (br_split_readers, 20% of the readers), each also with the deep
     * metrics (br_eval_ranker_deep). Seeded by split.seed; slices only
     * with NULL or "random". */
    const char *protocol;
} br_eval_options;

BR_API void br_eval_options_default(br_eval_options *o);

/* One engine in a slice: its figures at k, and the seconds spent fitting
 * what it uses (in the "all" slice the hybrid's include learning its
 * re-ranker). */
typedef struct br_eval_figures {
    br_eval_result r;
    double fit_seconds;
} br_eval_figures;

typedef struct br_eval_slice {
    const char *name;         /* "all", "long-tail", "newcomers", "cold-books" */
    br_eval_figures *figures; /* (report->n_engines,), in report->engines order */
} br_eval_slice;

typedef struct br_eval_engine {
    const char *name; /* br_engine_name */
    /* The book text it ranked with: "full", "description", "embeddings"
     * (the given file); NULL when it reads none. */
    const char *text;
} br_eval_engine;

/* A book text (index: BR_TEXT_FULL, BR_TEXT_DESCRIPTION). */
typedef struct br_eval_text {
    const char *name; /* "full", "description" */
    int used;         /* an engine (or tuning) read it */
    size_t embedded;  /* books the encoder embedded now (no cache held them) */
    double seconds;   /* spent embedding (cache reads included) */
} br_eval_text;

#define BR_EVAL_TUNE_EASE 9

/* --tune's search: each EASE setting tried, the best of them, the best blend. */
typedef struct br_eval_tuning {
    size_t n_ease;
    struct {
        float lambda, weight[5];
        double ndcg; /* the item-item model's validation NDCG@k */
    } ease[BR_EVAL_TUNE_EASE];
    float ease_lambda; /* the best */
    double ease_ndcg;
    float w_ease, w_als, w_content, w_popularity; /* the best blend */
    double ndcg;                                  /* its validation NDCG@k */
} br_eval_tuning;

typedef struct br_eval_report {
    /* The protocol, echoed: opt->protocol (NULL when not given), and for
     * cold-books / readers the books / readers taken out of training. */
    const char *protocol;
    uint32_t n_cold_books, n_fold_readers;
    br_split_options split;
    uint32_t k;
    uint32_t n_users, n_books;
    uint32_t n_eval_users; /* readers with a held-out rating */
    size_t n_ranked;       /* ... and a relevant one (the "all" slice) */
    size_t n_train, n_test;
    size_t n_engines;
    br_eval_engine *engines;
    /* Book embeddings: the file given, or the encoder (its cache key) and
     * the shared cache file ("" when none) they went through. */
    const char *embeddings;
    const char *encoder;
    const char *cache_file;
    br_eval_text text[2];
    size_t embedded; /* the sum over the texts */
    /* The hybrid's settings as evaluated (after tuning and learning):
     * a br_hybrid_options. */
    struct br_hybrid_options *hybrid;
    int tuned;
    br_eval_tuning tuning;
    /* The re-ranker learned on the validation split (a br_rerank_report),
     * NULL when none was; the seconds of the validation fit, of learning,
     * and of both (what the hybrid's fit_seconds includes). */
    struct br_rerank_report *rerank;
    double rerank_fit_seconds, rerank_learn_seconds, rerank_seconds;
    /* slices[0] is "all" (every reader); with opt->slices then
     * "long-tail", "newcomers", "cold-books". */
    size_t n_slices;
    br_eval_slice *slices;
} br_eval_report;

/* Runs the protocol. *out (released with br_eval_report_free) is set on
 * success only. BR_EINVAL (with the detail) for an option out of range, an
 * unknown engine or text. */
BR_API br_status br_eval_run(const br_eval_options *opt, br_eval_report **out);
BR_API void br_eval_report_free(br_eval_report *rep);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_EVAL_H */
