/*
 * lexical.h (content module, internal): the sparse lexical model of the
 * catalogue that the `content` engine reads beside the sentence encoder:
 * each book as one L2-normalised TF-IDF row over words of its title, tags
 * and description and over identity features (the author, the series, each
 * whole tag) that the encoder blurs. Also the tokeniser and the series
 * parser it is built from, and the sparse reader profile and its scores.
 * docs/content.md says how the weights were chosen.
 */
#ifndef BR_CONTENT_LEXICAL_H
#define BR_CONTENT_LEXICAL_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/data.h"
#include "bookrec/sparse.h"

/* The fields a term can come from, each with its own weight. */
enum {
    BR__LEX_TITLE = 0, /* words of the title without its series part */
    BR__LEX_AUTHOR,    /* "a:<name>", one feature per author */
    BR__LEX_SERIES,    /* "s:<name>" from "(Name, #3)" */
    BR__LEX_TAG,       /* "t:<tag>", one feature per whole tag */
    BR__LEX_TAGWORD,   /* words of the tags */
    BR__LEX_DESC,      /* words of the description */
    BR__LEX_FIELDS
};

typedef struct br__lex_options {
    float field[BR__LEX_FIELDS]; /* weight of each field (0: left out) */
    float other_authors;         /* an author after the first: this times the field weight */
    uint32_t min_df;             /* terms in fewer books are dropped */
    float max_df;                /* terms in more than this fraction of books are dropped */
} br__lex_options;

/* The weights chosen on a validation split of goodbooks (docs/content.md). */
void br__lex_options_default(br__lex_options *o);

typedef struct br__lex {
    br_csr x;        /* books x terms, rows L2-normalised (a book without terms: empty row) */
    br_csr xt;       /* terms x books, the transpose */
    br_idmap *vocab; /* term strings ("word", "a:...", "s:...", "t:...") */
    float *idf;      /* (terms,) ln((1 + n) / (1 + df)) + 1 */
} br__lex;

br_status br__lex_build(const br_catalog *cat, const br__lex_options *o, br__lex **out);
void br__lex_free(br__lex *m);

/* Splits UTF-8 text into lowercase tokens of letters and digits (utf8proc
 * categories L and N; anything else separates), of at least min_len code
 * points, English stopwords left out when skip_stop. emit gets each token
 * (not NUL-terminated). Invalid UTF-8 bytes separate tokens. */
void br__lex_tokens(const char *s, size_t len, uint32_t min_len, int skip_stop,
                    void (*emit)(void *ctx, const char *tok, size_t n), void *ctx);

/* The series of a title ending in "(Name, #3)", "(Name #2)", "(Name,
 * #1-3)", "(Name, #0.5)": 1 with the name (trimmed, at most cap - 1 bytes,
 * NUL-terminated), the number (first of a range; NAN when absent) and the
 * length of the title before the parenthesis (trailing spaces trimmed);
 * 0 when the title names no series (then *bare = strlen(title)). */
int br__lex_series(const char *title, char *name, size_t cap, float *index, size_t *bare);

/* A reader's profile: sum of w[q] * x row books[q] (n of them), its top
 * max_terms entries by weight (0: all), L2-normalised, in (terms, vals)
 * sorted by term; returns their number. acc (terms,) scratch of zeros,
 * left zeroed; terms and vals hold up to the sum of the books' row
 * lengths. */
uint32_t br__lex_profile(const br__lex *m, const uint32_t *books, const float *w, size_t n,
                         uint32_t max_terms, float *acc, uint32_t *terms, float *vals);

/* s[i] += scale * (profile . row i) for every book i (sparse profile
 * times the transpose). */
void br__lex_scores(const br__lex *m, const uint32_t *terms, const float *vals, uint32_t n,
                    float scale, float *s);
/* The same, one dot product per book, no transpose: the oracle. */
void br__lex_scores_ref(const br__lex *m, const uint32_t *terms, const float *vals, uint32_t n,
                        float scale, float *s);
/* profile . row b. */
float br__lex_dot(const br__lex *m, const uint32_t *terms, const float *vals, uint32_t n,
                  uint32_t b);

/* Why `book` fits a reader who liked liked[0..n): what the catalogue says
 * it shares with one of them (content/reason.c). */
enum { BR__REASON_NONE = 0, BR__REASON_SERIES, BR__REASON_AUTHOR, BR__REASON_TAGS };
typedef struct br__lex_reason {
    int kind;      /* BR__REASON_* */
    size_t which;  /* the liked book's place in liked[] */
    char what[96]; /* the series, the author, or "tag and tag" */
} br__lex_reason;
/* The first of: a liked book of the same series (parsed from the titles),
 * one with an author in common, the one sharing the most tags (two at
 * least); earlier liked books win ties. Returns 1 with *out, 0 when
 * nothing is shared. */
int br__lex_reason_find(const br_catalog *cat, uint32_t book, const uint32_t *liked, size_t n,
                        br__lex_reason *out);

#endif
