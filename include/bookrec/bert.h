/*
 * bookrec/bert.h: BERT-family sentence encoders (all-MiniLM-L6-v2, and its
 * cousins bge-small, e5-small, gte-small) read straight from a Hugging Face
 * / sentence-transformers model directory:
 *
 *   config.json                  the BertModel hyper-parameters
 *   model.safetensors            the weights (F32, F16 or BF16; memory-mapped)
 *   tokenizer.json or vocab.txt  the WordPiece vocabulary (+ tokenizer_config.json)
 *   sentence_bert_config.json    max_seq_length (optional; else 256)
 *   1_Pooling/config.json        mean / cls / max pooling (optional; else mean)
 *   modules.json                 whether a Normalize module follows (optional;
 *                                without the file, embeddings are normalised)
 *
 * The output is what sentence-transformers' `model.encode(texts)` gives:
 * WordPiece ids wrapped in [CLS] ... [SEP] and truncated to the maximum
 * sequence length, the transformer, pooling over the real tokens, L2
 * normalisation. See docs/formats.md ("BERT model directory").
 *
 * A handle is read-only after open: any number of threads may embed or
 * tokenize with it at once.
 */
#ifndef BOOKREC_BERT_H
#define BOOKREC_BERT_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The sequence length sentence-transformers uses when the directory has no
 * sentence_bert_config.json. */
#define BR_BERT_DEFAULT_MAX_LENGTH 256
/* Where `bookrec model fetch minilm` gets all-MiniLM-L6-v2. */
#define BR_MINILM_REPO "sentence-transformers/all-MiniLM-L6-v2"
#define BR_MINILM_URL  "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main/"
/* The files it needs from there (space-separated). */
#define BR_MINILM_FILES                                                                            \
    "config.json model.safetensors tokenizer.json tokenizer_config.json vocab.txt "                \
    "special_tokens_map.json sentence_bert_config.json modules.json 1_Pooling/config.json"

typedef struct br_bert br_bert;

typedef struct br_bert_options {
    /* Tokens per text, [CLS] and [SEP] included; longer texts are cut.
     * 0: sentence_bert_config.json's max_seq_length, else 256. Clamped to
     * the model's max_position_embeddings. */
    size_t max_length;
} br_bert_options;

#define BR_BERT_OPTIONS_DEFAULT                                                                    \
    {                                                                                              \
        0                                                                                          \
    }

/* Opens a model directory (see above). Missing files fail with
 * BR_ENOTFOUND, bad ones with BR_EFORMAT / BR_EPARSE, architectures other
 * than a post-norm BERT with absolute positions and GELU with
 * BR_EUNSUPPORTED; the detail names the file. opts may be NULL. */
BR_API br_status br_bert_open(const char *dir, const br_bert_options *opts, br_bert **out);
BR_API void br_bert_close(br_bert *bert);

/* 1 when `path` is a directory holding config.json and model.safetensors. */
BR_API int br_bert_is_model_dir(const char *path);

/* Embedding width (hidden_size: 384 for all-MiniLM-L6-v2). */
BR_API size_t br_bert_dim(const br_bert *bert);
/* The maximum sequence length in effect (tokens, specials included). */
BR_API size_t br_bert_max_length(const br_bert *bert);

/* Embeds n NUL-terminated UTF-8 texts into out (n, dim), row-major, rows in
 * input order. Texts are tokenized, sorted by length into chunks and run
 * without padding (each text attends to its own tokens only). */
BR_API br_status br_bert_embed(const br_bert *bert, const char *const *texts, size_t n, float *out);
/* The same from token ids (ids[i] has lens[i] ids, [CLS]/[SEP] included as
 * the tokenizer gives them); sequences longer than the maximum length are
 * cut to its first max_length - 1 ids plus their last id ([SEP]). Ids
 * outside the vocabulary fail with BR_ERANGE. */
BR_API br_status br_bert_embed_ids(const br_bert *bert, const int32_t *const *ids,
                                   const size_t *lens, size_t n, float *out);

/* Token ids of one text with [CLS]/[SEP], before truncation. *ids from
 * br_malloc (the caller frees it with br_free). */
BR_API br_status br_bert_tokenize(const br_bert *bert, const char *text, int32_t **ids,
                                  size_t *n_ids);

/* The vocabulary. */
BR_API size_t br_bert_vocab_size(const br_bert *bert);
BR_API const char *br_bert_piece(const br_bert *bert, int32_t id, size_t *len);

typedef enum br_bert_pooling {
    BR_BERT_POOL_MEAN = 0,
    BR_BERT_POOL_CLS = 1,
    BR_BERT_POOL_MAX = 2,
} br_bert_pooling;

/* Describes an open model, for `bookrec model info`. */
typedef struct br_bert_info {
    uint32_t vocab_size, hidden, heads, layers, intermediate, max_position, max_length;
    float layernorm_eps;
    br_bert_pooling pooling;
    int normalize;
    char dtype[8];      /* of the word embeddings in the file: "F32", "F16", "BF16" */
    char tokenizer[24]; /* "tokenizer.json" or "vocab.txt" */
    uint64_t parameters, file_bytes;
} br_bert_info;

BR_API br_status br_bert_get_info(const br_bert *bert, br_bert_info *info);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_BERT_H */
