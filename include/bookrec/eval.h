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
 * held-out rating for engines that predict ratings.
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
} br_split;

br_status br_split_ratings(const br_ratings *r, const br_split_options *opt, br_split *out);
void br_split_free(br_split *s);

/* The same protocol applied to the training part of `s` (not by time): the
 * validation split that tunes hyper-parameters without seeing s's held-out
 * ratings. Use a seed other than s's. */
br_status br_split_train(const br_split *s, const br_split_options *opt, br_split *out);

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
} br_eval_result;

/* Evaluates `rk` at k on the split. users/n_users restrict the readers
 * (NULL: every reader with held-out ratings). */
br_status br_eval_ranker(const br_split *s, const br_ranker *rk, uint32_t k,
                         const uint32_t *users, size_t n_users, br_eval_result *out);

/* The metrics of one ranked list: items (k,) against the sorted relevant
 * books rel (n_rel,). Pure; used by br_eval_ranker and its tests. */
typedef struct br_list_metrics {
    double precision, recall, ndcg, ap;
    uint32_t hits;
} br_list_metrics;

void br_eval_list(const uint32_t *items, uint32_t k, const uint32_t *rel, size_t n_rel,
                  br_list_metrics *out);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_EVAL_H */
