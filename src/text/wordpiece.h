/*
 * wordpiece.h (internal): the BERT WordPiece tokenizer, exact to the
 * transformers.js / Hugging Face `tokenizers` pipeline that sentence-
 * transformers models ship in tokenizer.json:
 *
 *   added tokens  "[CLS]", "[SEP]", ... in the raw text become their ids
 *   normaliser    clean text (drop NUL, U+FFFD and control/format chars,
 *                 whitespace -> ' '), space around CJK ideographs, lowercase,
 *                 strip accents (NFD, drop Mn)
 *   pre-tokenizer split on whitespace, each punctuation char a word
 *   model         greedy longest-match WordPiece with "##" continuations,
 *                 "[UNK]" for a word over 100 chars or with no match
 *   post          [CLS] ... [SEP]
 *
 * A tokenizer is immutable after loading; any number of threads may encode
 * with it at once.
 */
#ifndef BR_TEXT_WORDPIECE_H
#define BR_TEXT_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/core.h"

typedef struct wp_config {
    int lowercase;      /* 1: lowercase (BERT uncased models) */
    int strip_accents;  /* -1: follow lowercase (the "null" default), 0 no, 1 yes */
    int chinese_chars;  /* 1: space around CJK ideographs */
    int clean_text;     /* 1: drop control characters, map whitespace to ' ' */
    int max_word_chars; /* longer words become [UNK] (100) */
} wp_config;

#define WP_CONFIG_DEFAULT                                                                          \
    {                                                                                              \
        1, -1, 1, 1, 100                                                                           \
    }

typedef struct wordpiece wordpiece;

/* From a vocab.txt (one piece per line, id = line number) and the config. */
br_status br__wordpiece_load_vocab(const char *path, const wp_config *cfg, wordpiece **out);
/* From a tokenizer.json (model.vocab, normalizer, added_tokens). */
br_status br__wordpiece_load_json(const char *path, wordpiece **out);
/* From memory: n pieces (NUL-terminated), id = index. Special tokens are
 * found by name ([CLS], [SEP], [UNK], [PAD], [MASK]). */
br_status br__wordpiece_create(const char *const *pieces, size_t n, const wp_config *cfg,
                           wordpiece **out);
void br__wordpiece_free(wordpiece *wp);

/* Token ids of text (len bytes of UTF-8; invalid sequences read as U+FFFD),
 * wrapped in [CLS] ... [SEP] when add_special. *ids from br_malloc. */
br_status br__wordpiece_encode(const wordpiece *wp, const char *text, size_t len, int add_special,
                           int32_t **ids, size_t *n_ids);

size_t br__wordpiece_vocab_size(const wordpiece *wp);
const char *br__wordpiece_piece(const wordpiece *wp, int32_t id, size_t *len);
/* The id of a piece, -1 when absent. */
int32_t br__wordpiece_id(const wordpiece *wp, const char *piece, size_t len);
int32_t br__wordpiece_cls(const wordpiece *wp);
int32_t br__wordpiece_sep(const wordpiece *wp);
int32_t br__wordpiece_unk(const wordpiece *wp);
int32_t br__wordpiece_pad(const wordpiece *wp);

/* The normaliser alone (before added-token splitting is applied), as UTF-8,
 * for tests and debugging: *out from br_malloc, NUL-terminated. */
br_status br__wordpiece_normalize(const wordpiece *wp, const char *text, size_t len, char **out);

#endif
