/*
 * bookrec/data.h: the data layer every engine reads.
 *
 * A catalogue of books and a set of ratings, loaded from CSV (RFC 4180) with
 * columns found by header name; external ids are strings mapped to dense
 * 0-based indices both ways. Also: the summary statistics behind
 * `bookrec stats`, and the seed-universe generator behind `bookrec generate`.
 */
#ifndef BOOKREC_DATA_H
#define BOOKREC_DATA_H

#include "bookrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------- idmap -- */

/* String id <-> dense index (0, 1, 2, ... in order of first appearance). */
typedef struct br_idmap br_idmap;

BR_API br_status br_idmap_create(br_idmap **out);
BR_API void br_idmap_free(br_idmap *m);
/* Finds `id` (len bytes, not necessarily NUL-terminated) or appends it.
 * *index receives its dense index; *added (may be NULL) is 1 if it was new. */
BR_API br_status br_idmap_intern(br_idmap *m, const char *id, size_t len, uint32_t *index,
                                 int *added);
/* Dense index of `id`, or -1 when unknown. */
BR_API int64_t br_idmap_find(const br_idmap *m, const char *id, size_t len);
/* External id of a dense index (index < count), NUL-terminated. */
BR_API const char *br_idmap_name(const br_idmap *m, uint32_t index);
BR_API uint32_t br_idmap_count(const br_idmap *m);
/* Bytes held, for memory reports. */
BR_API size_t br_idmap_memory(const br_idmap *m);

/* ------------------------------------------------------------ load options -- */

typedef struct br_load_options {
    int lenient;      /* skip bad rows (and count them) instead of failing */
    float rating_min; /* rating scale; a rating outside it is an error */
    float rating_max;
} br_load_options;

#define BR_LOAD_OPTIONS_DEFAULT {0, 1.0f, 5.0f}

typedef struct br_load_report {
    size_t rows;        /* data rows read (header excluded) */
    size_t loaded;      /* rows kept */
    size_t skipped;     /* bad rows skipped in lenient mode */
    size_t duplicates;  /* rows superseded by a later row for the same key */
    char first_skip[256]; /* message of the first skipped row ("" if none) */
    double seconds;     /* wall time of the load */
} br_load_report;

/* --------------------------------------------------------------- catalog -- */

#define BR_YEAR_UNKNOWN INT32_MIN

typedef struct br_book {
    const char *id;          /* external id, as in the file */
    const char *title;
    const char *authors;     /* "" when absent */
    const char *genre;       /* "" when absent */
    const char *tags;        /* pipe-separated, "" when absent */
    const char *description; /* "" when absent */
    int32_t year;            /* BR_YEAR_UNKNOWN when absent */
    const char *image_url;   /* a cover's URL (goodbooks' image_url column), "" when absent */
} br_book;

/* Which optional columns the catalogue file had. */
enum {
    BR_COL_AUTHORS = 1 << 0,
    BR_COL_GENRE = 1 << 1,
    BR_COL_TAGS = 1 << 2,
    BR_COL_YEAR = 1 << 3,
    BR_COL_DESCRIPTION = 1 << 4,
    BR_COL_TIMESTAMP = 1 << 5, /* ratings */
    BR_COL_IMAGE = 1 << 6,     /* books: image_url */
};

typedef struct br_catalog br_catalog;

/* Reads books.csv: `book_id` and `title` required; `authors`, `genre`, `tags`,
 * `year`, `description` optional; other columns ignored. A repeated book_id:
 * the later row wins (counted in report->duplicates). report may be NULL. */
BR_API br_status br_catalog_load(const char *path, const br_load_options *opt, br_catalog **out,
                                 br_load_report *report);
BR_API void br_catalog_free(br_catalog *cat);
BR_API uint32_t br_catalog_count(const br_catalog *cat);
BR_API const br_book *br_catalog_book(const br_catalog *cat, uint32_t index);
/* Dense index of a book id, or -1. */
BR_API int64_t br_catalog_find(const br_catalog *cat, const char *id);
BR_API const br_idmap *br_catalog_ids(const br_catalog *cat);
BR_API unsigned br_catalog_columns(const br_catalog *cat); /* BR_COL_* bits */
BR_API size_t br_catalog_memory(const br_catalog *cat);

/* --------------------------------------------------------------- ratings -- */

typedef struct br_ratings br_ratings;

/* Reads ratings.csv: `user_id`, `book_id`, `rating` required, `timestamp`
 * (integer, e.g. Unix seconds) optional. Every book_id must be in `books`.
 * A repeated (user, book) pair: the later row wins and takes the later
 * position (it is the newer interaction); counted in report->duplicates.
 * Ratings keep file order; users are numbered in order of first appearance. */
BR_API br_status br_ratings_load(const char *path, const br_catalog *books,
                                 const br_load_options *opt, br_ratings **out,
                                 br_load_report *report);
BR_API void br_ratings_free(br_ratings *r);
BR_API size_t br_ratings_count(const br_ratings *r);
BR_API uint32_t br_ratings_num_users(const br_ratings *r);
BR_API uint32_t br_ratings_num_books(const br_ratings *r);        /* the catalogue's count */
BR_API const uint32_t *br_ratings_users(const br_ratings *r);     /* (count,) dense user index */
BR_API const uint32_t *br_ratings_books(const br_ratings *r);     /* (count,) dense book index */
BR_API const float *br_ratings_values(const br_ratings *r);       /* (count,) */
BR_API const int64_t *br_ratings_timestamps(const br_ratings *r); /* (count,) or NULL */
BR_API const br_idmap *br_ratings_user_ids(const br_ratings *r);
BR_API int64_t br_ratings_find_user(const br_ratings *r, const char *id); /* dense index or -1 */
BR_API size_t br_ratings_memory(const br_ratings *r);

/* ------------------------------------------------------- feedback rule -- */

/* Negative feedback, one rule for every part that reads a reader's
 * ratings (the content profile, the default hybrid's features and
 * explanations, serving's re-rank; docs/evaluation.md, "Negative
 * feedback"). m_u, the reader's mean shrunk toward the global mean g by
 * BR_FEEDBACK_PRIOR pseudo-ratings: (sum + prior g) / (n + prior). A
 * rating r is
 *   disliked when r <= BR_DISLIKE_MAX or r <= m_u - BR_DISLIKE_MARGIN:
 *            weight -(m_u - r) clipped to [-2, -1];
 *   liked    when r >= BR_LIKE_MIN (and not disliked): weight r;
 *   neutral  otherwise: weight 0.
 * A disliked book counts against its neighbours and is never the reason
 * given for a recommendation. */
#define BR_DISLIKE_MAX 2.0f
#define BR_DISLIKE_MARGIN 1.0f
#define BR_LIKE_MIN 4.0f
#define BR_FEEDBACK_PRIOR 5.0f
/* How much of the dislikes' direction a content profile subtracts:
 * unit(likes) - BR_DISLIKE_PULL unit(dislikes), renormalised. */
#define BR_DISLIKE_PULL 0.25f

BR_API float br_reader_mean(double sum, size_t n, float global_mean);
BR_API float br_rating_weight(float rating, float reader_mean);
/* 1 when the rule above reads `rating` as disliked (br_rating_weight < 0),
 * else 0. `reader_mean` NAN means the reader's mean is unknown (serving's
 * in-memory recent events): then only the absolute half, r <=
 * BR_DISLIKE_MAX, applies. */
BR_API int br_rating_is_dislike(float rating, float reader_mean);

/* ----------------------------------------------------------------- stats -- */

#define BR_STATS_MAX_BINS 64
#define BR_STATS_MAX_GENRES 32

typedef struct br_stats {
    uint32_t n_books, n_users;
    size_t n_ratings;
    double density;  /* n_ratings / (n_users * n_books) */
    double sparsity; /* 1 - density */
    double mean_rating;
    /* Ratings histogram: distinct values in increasing order. If the data
     * has more than BR_STATS_MAX_BINS distinct values, they are bucketed
     * into equal-width bins over the scale and bin_value is a bin start. */
    int n_bins;
    float bin_value[BR_STATS_MAX_BINS];
    size_t bin_count[BR_STATS_MAX_BINS];
    /* Ratings per user and per book (books with none included). */
    uint32_t user_min, user_max, book_min, book_max;
    double user_median, book_median;
    uint32_t books_unrated;
    /* Genre counts over books, most frequent first; from the genre column,
     * else from the first tag of each book (genre_from_tags = 1). */
    int genre_from_tags;
    int n_genres;       /* shown (at most BR_STATS_MAX_GENRES) */
    int n_genres_total; /* distinct */
    char genre[BR_STATS_MAX_GENRES][64];
    uint32_t genre_count[BR_STATS_MAX_GENRES];
} br_stats;

/* ratings may be NULL (catalogue only). */
BR_API br_status br_stats_compute(const br_catalog *books, const br_ratings *ratings,
                                  br_stats *out);

/* -------------------------------------------------------------- generate -- */

typedef enum br_gen_rng {
    /* bookrec's own generator (xoshiro256**): O(ratings), any size. */
    BR_GEN_XOSHIRO = 0,
    /* numpy's legacy MT19937 stream, drawing exactly as the seed notebook
     * does: with seed 42 and 1000 x 100 it writes the notebook's universe
     * byte for byte. Costs O(books) draws per reader (numpy shuffles the
     * whole catalogue for each reader's sample). */
    BR_GEN_NUMPY = 1,
} br_gen_rng;

typedef struct br_generate_options {
    uint64_t n_books; /* default 1000 */
    uint64_t n_users; /* default 100 */
    uint64_t seed;    /* default 42; numpy mode needs seed < 2^32 */
    br_gen_rng rng;
    int min_per_user; /* distinct books per reader, inclusive (default 20) */
    int max_per_user; /* (default 49) */
} br_generate_options;

#define BR_GENERATE_OPTIONS_DEFAULT {1000, 100, 42, BR_GEN_XOSHIRO, 20, 49}

typedef struct br_generate_report {
    uint64_t n_books, n_users, n_ratings;
    uint64_t books_bytes, ratings_bytes;
    double seconds;
} br_generate_report;

/* Writes out_dir/books.csv (book_id,title,genre,description) and
 * out_dir/ratings.csv (user_id,book_id,rating), streaming, each written to a
 * temporary file, fsynced and renamed into place. out_dir must exist. */
BR_API br_status br_generate(const br_generate_options *opt, const char *out_dir,
                             br_generate_report *report);

/* The notebook's seven genres, in its order (index < 7). */
BR_API const char *br_generate_genre(int index);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_DATA_H */
