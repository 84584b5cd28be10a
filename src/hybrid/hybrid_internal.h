/*
 * hybrid_internal.h (internal): what the files of src/hybrid/ share: the
 * fitted object (struct br_hybrid), the base engines' block scores and
 * the combinations (hybrid.c), the default hybrid's candidates and their
 * buffers (candidates.c), and the re-ranker's features (rerank.c), which
 * the rankings, the re-ranker's learning, the explanations (explain.c)
 * and the weight tuning (tune.c) all run. Not installed.
 */
#ifndef BR_HYBRID_INTERNAL_H
#define BR_HYBRID_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/content.h"
#include "bookrec/hybrid.h"

/* Readers scored together: a block of scores is HY_BLOCK x n_books. */
#define HY_BLOCK 128
/* The base engines (popularity .. content-cluster), each fitted on its own. */
#define HY_N_BASE (BR_ENGINE_CONTENT_CLUSTER + 1)
/* The default hybrid's components. */
#define HY_C 4 /* ease, als, content, popularity */
/* The re-ranker's same-author and same-series features (rerank.c). */
#define HY_F_SAME_AUTHOR 22
#define HY_F_SAME_SERIES 23
/* Identity terms of the lexical model (h->term_kind). */
#define HY_TERM_AUTHOR 1
#define HY_TERM_SERIES 2

struct br_hybrid {
    br_hybrid_options opt;
    uint32_t n_users, n_books;
    br_csr r;         /* training ratings, readers x books */
    uint32_t *fav;    /* (n_users,) favourite book, UINT32_MAX: none */
    uint32_t *last;   /* (n_users,) latest book in input order */
    float *bmean;     /* (n_books,) damped mean rating minus the global mean */
    float *bcount;    /* (n_books,) training ratings of each book (the books' side) */
    uint32_t *cold;   /* (n_cold,) the books without one, when their ALS vectors were predicted */
    uint32_t n_cold;
    float gmean;      /* the global mean rating (the feedback rule's prior) */
    float *umean;     /* (n_users,) each reader's m_u (br_reader_mean) */
    const float *emb; /* (n_books, dim), borrowed */
    size_t dim;
    float *profile;     /* (n_users, dim) */
    br_cf_model *cf[4]; /* popularity, svd, als, als-explicit */
    br_ease *ease;
    int32_t *tribe; /* (n_books,) */
    uint32_t n_tribes;
    char (*tribe_name)[BR_TRIBE_NAME_MAX];
    /* content: the lexical model and each reader's sparse profile
     * (content_lex.c); lex NULL when fitted without a catalogue, lexp_n
     * NULL when the content engine does not mix the lexical profile in */
    struct br__lex *lex;
    uint8_t *term_kind; /* (lex terms,) HY_TERM_AUTHOR, HY_TERM_SERIES or 0 */
    float lex_mix;
    uint32_t *lexp_n;    /* (n_users,) terms of each profile */
    uint32_t *lexp_terms; /* (n_users, LEX_PROFILE_TERMS) */
    float *lexp_vals;
    double fit_s[HY_N_BASE];
    int have[HY_N_BASE];
};

/* ------------------------------------------- hybrid.c: engines, blocks -- */

typedef struct br__hybrid_scratch {
    float *a, *b, *work;
} br__hybrid_scratch;

/* Three (HY_BLOCK, n_books)-sized blocks: a and b for scores, work. */
br_status br__hybrid_scratch_alloc(const br_hybrid *h, br__hybrid_scratch *sc);
void br__hybrid_scratch_free(br__hybrid_scratch *sc);
br_status br__hybrid_base_scores(const br_hybrid *h, br_engine e, const uint32_t *users, size_t nb,
                                 float *s, float *work);
void br__hybrid_minmax_row(float *row, uint32_t n);
br_status br__hybrid_combine(const br_hybrid *h, br_engine e, const uint32_t *users, size_t nb,
                             uint32_t k, float *out, br__hybrid_scratch *sc, int depth);
br_status br__hybrid_rank_block(const br_hybrid *h, br_engine e, const uint32_t *users, size_t nb,
                                uint32_t k, uint32_t *items, float *scores, int depth);

/* ---------------------------------- candidates.c: the default hybrid -- */

typedef struct br__rerank_key {
    float v;
    uint32_t book, p;
} br__rerank_key;

/* One thread's buffers for the candidates of one reader at a time. */
typedef struct br__hybrid_work {
    uint32_t *mark; /* (n_books,) 2 epoch: rated, 2 epoch + 1: candidate */
    uint32_t epoch;
    float *acc;     /* (M,) item-item scores */
    uint32_t *book; /* (cap,) candidates */
    float *raw;     /* (cap, HY_C) raw scores, then z-scores */
    float *score;   /* (cap,) blend */
    uint32_t *ti;   /* (cap,) selection */
    float *tv;
    float *feat;                /* (cap, BR_RERANK_FEATURES) */
    struct br__rerank_key *key; /* (cap,) */
    float *ease_raw, *pop_raw;  /* (cap,) */
    float *tcount; /* (lex terms,) the reader's liked books per identity term; zero between readers */
    float *cold_v; /* (n_cold,) ALS scores of the books nobody rated */
    size_t cap;
} br__hybrid_work;

/* Candidates a reader can have at most (+ 1). */
size_t br__hybrid_cap(const br_hybrid *h);
br_status br__hybrid_work_alloc(const br_hybrid *h, br__hybrid_work *w);
void br__hybrid_work_free(br__hybrid_work *w);
uint32_t br__hybrid_top(const float *v, uint32_t n, const uint32_t *ids, const uint32_t *mark,
                        uint32_t skip, uint32_t c, uint32_t *ti, float *tv);
size_t br__hybrid_candidates(const br_hybrid *h, uint32_t u, const float *als_row,
                             br__hybrid_work *w);
void br__hybrid_zscore(const br_hybrid *h, const uint32_t *book, float *raw, size_t n);
void br__hybrid_blend(const float *z, size_t n, const float *wt, float *score);
br_status br__hybrid_als_block(const br_hybrid *h, const uint32_t *users, size_t nb, float **als,
                               float **work);
br_status br__hybrid_check_source(const br_hybrid *h);
br_status br__hybrid_rank_candidates(const br_hybrid *h, const uint32_t *users, size_t nb,
                                     uint32_t k, uint32_t *items, float *scores, int fill);

/* ------------------------------- content_lex.c: the lexical profile -- */

/* The lexical model of cat into h->lex (once; nothing when cat is NULL
 * or of another size). */
br_status br__hybrid_lex_model(br_hybrid *h, const br_catalog *cat);
/* Builds the lexical model of cat and every reader's sparse profile (the
 * `content` engine) when one of engines ranks by the content engine's
 * rows (content, rrf, rank-fusion); nothing when cat is NULL or of
 * another size. */
br_status br__hybrid_lex_fit(br_hybrid *h, const br_catalog *cat, const br_engine *engines,
                             size_t n_engines);
void br__hybrid_lex_free(br_hybrid *h);
/* s (nb, n_books) holds the embedding cosines of the block's readers:
 * mixed in place with their lexical cosines (no-op without the model). */
void br__hybrid_lex_block(const br_hybrid *h, const uint32_t *users, size_t nb, float *s);
/* The reader's lexical profile . book b's row (0 without profiles). */
float br__hybrid_lex1(const br_hybrid *h, uint32_t u, uint32_t b);

/* ----------------------------- coldvec.c: books nobody has rated yet -- */

/* Implicit ALS's item factors of the books without a rating in rt (books x
 * readers, what the books' side was fitted on), predicted from their
 * content (h->opt.cold_books; needs the embeddings and cat). */
br_status br__hybrid_cold_factors(br_hybrid *h, const br_catalog *cat, const br_csr *rt);

/* ------------------ foldin.c: readers out of training, restricted lists -- */

/* h->r without the rows of the readers h->opt.fold_in marks: what the
 * books' side is fitted on. */
br_status br__hybrid_item_ratings(const br_hybrid *h, br_csr *out);
/* The factor models' rows of those readers, folded in from their h->r rows. */
br_status br__hybrid_fold_in(br_hybrid *h);
/* -INFINITY for the books outside h->opt.rank_only in a row of scores. */
void br__hybrid_restrict_row(const br_hybrid *h, float *row);

/* ------------------------------------------- rerank.c: the re-ranker -- */

void br__hybrid_features(const br_hybrid *h, uint32_t u, br__hybrid_work *w, size_t n);

/* --------------------------------------- explain.c, rerank.c: feedback -- */

/* The feedback rule's weight of reader u's rating q (an index into h->r):
 * < 0 disliked, 0 neutral, > 0 liked (br_rating_weight). */
static inline float br__hybrid_weight(const br_hybrid *h, uint32_t u, uint64_t q)
{
    return br_rating_weight(h->r.values[q], h->umean[u]);
}

/* Book b has no training rating (on the books' side): its ALS vector was
 * predicted from its content (coldvec.c). */
static inline int br__hybrid_is_cold(const br_hybrid *h, uint32_t b)
{
    return h->bcount && h->bcount[b] == 0;
}

#endif /* BR_HYBRID_INTERNAL_H */
