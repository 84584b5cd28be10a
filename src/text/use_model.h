/*
 * use_model.h (internal): the use-lite model file, its in-memory view, the
 * TF.js converter, and the tokenizer built on its vocabulary. The layout is
 * documented in docs/formats.md ("Encoder model file"); keep the two in step.
 */
#ifndef BR_TEXT_USE_MODEL_H
#define BR_TEXT_USE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/core.h"

#define USE_MAGIC           "BRUSELIT"
#define USE_VERSION         1u
#define USE_HEADER_BYTES    256u
#define USE_DIR_ENTRY_BYTES 64u
#define USE_NAME_BYTES      40u
#define USE_ALIGN           64u
#define USE_MAX_LAYERS      2

/* Header field offsets (bytes from the start of the file). */
enum {
    USE_OFF_MAGIC = 0,
    USE_OFF_VERSION = 8,
    USE_OFF_HEADER_BYTES = 12,
    USE_OFF_FILE_BYTES = 16,
    USE_OFF_CHECKSUM = 24,
    USE_OFF_VOCAB_SIZE = 32,
    USE_OFF_EMB_ROWS = 36,
    USE_OFF_EMB_DIM = 40,
    USE_OFF_MODEL_DIM = 44,
    USE_OFF_HEADS = 48,
    USE_OFF_FF_DIM = 52,
    USE_OFF_MAX_LEN = 56,
    USE_OFF_LAYERS = 60,
    USE_OFF_OUT_DIM = 64,
    USE_OFF_N_TENSORS = 68,
    USE_OFF_LN_EPS = 72,
    USE_OFF_L2_EPS = 76,
    USE_OFF_MASK_BIAS = 80,
    USE_OFF_ATTN_SCALE = 84, /* f32 per layer (2) */
    USE_OFF_VOCAB_OFFSET = 96,
    USE_OFF_VOCAB_BYTES = 104,
    USE_OFF_DIR_OFFSET = 112,
    USE_OFF_SOURCE = 128, /* NUL-padded text, 96 bytes */
    USE_SOURCE_BYTES = 96,
};

typedef struct use_layer {
    uint32_t d_in, d_model, heads, d_head;
    float attn_scale;
    const float *ln1_s, *ln1_b; /* (d_in,) */
    const float *qkv_w, *qkv_b; /* (d_in, 3*d_in), (3*d_in,) */
    const float *out_w, *out_b; /* (d_in, d_model), (d_model,) */
    const float *res_w, *res_b; /* (d_in, d_model) or NULL when d_in == d_model */
    const float *ln2_s, *ln2_b; /* (d_model,) */
    const float *ff1_w, *ff1_b; /* (d_model, ff), (ff,) */
    const float *ff2_w, *ff2_b; /* (ff, d_model), (d_model,) */
} use_layer;

/* A parsed model file: every pointer points into the mapped bytes. */
typedef struct use_model {
    const uint8_t *base;
    size_t size;
    int mapped; /* 1: munmap on release; 0: borrowed buffer */
    uint32_t version, vocab_size, emb_rows, emb_dim, model_dim, heads, ff_dim, max_len, n_layers,
        out_dim, n_tensors;
    float ln_eps, l2_eps, mask_bias;
    char source[USE_SOURCE_BYTES + 1];
    const double *scores;      /* (vocab_size,) piece scores */
    const uint32_t *piece_off; /* (vocab_size + 1,) offsets into piece_bytes */
    const char *piece_bytes;
    const float *emb;        /* (emb_rows, emb_dim) */
    const float *timing_inv; /* (emb_dim / 2,) inverse timescales */
    const float *final_w;    /* (model_dim, out_dim) */
    const float *final_b;    /* (out_dim,) */
    use_layer layers[USE_MAX_LAYERS];
} use_model;

/* Parses and validates a whole model file held in memory (buf stays owned by
 * the caller and must outlive m). check_sum = 0 skips the checksum (for the
 * fuzzer, which could never get past it otherwise). */
br_status br__use_model_parse(const void *buf, size_t len, int check_sum, use_model *m);
/* mmap + parse; br__use_model_release unmaps. */
br_status br__use_model_map(const char *path, use_model *m);
void br__use_model_release(use_model *m);
/* The checksum stored in the header: a 64-bit multiply-xorshift hash of the
 * bytes after the header, read as little-endian 64-bit words. */
uint64_t br__use_model_checksum(const uint8_t *p, size_t len);

/* ---------------------------------------------------------------- tokenizer -- */

/* SentencePiece unigram segmentation exactly as @energetic-ai/embeddings
 * 0.2.0 does it (a JavaScript trie + Viterbi with its own quirks, which are
 * reproduced on purpose; see tokenizer.c). */
typedef struct use_tokenizer use_tokenizer;

br_status br__use_tokenizer_create(const use_model *m, use_tokenizer **out);
void br__use_tokenizer_free(use_tokenizer *t);
/* ids: br_malloc'd (NULL when *n is 0). */
br_status br__use_tokenizer_encode(const use_tokenizer *t, const char *text, size_t len,
                                   int32_t **ids, size_t *n);

/* Replaces invalid UTF-8 by U+FFFD (WHATWG maximal-subpart rule). Returns a
 * br_malloc'd NUL-terminated copy and its length, or NULL on ENOMEM. */
char *br__use_utf8_sanitize(const char *s, size_t len, size_t *out_len);

#endif
