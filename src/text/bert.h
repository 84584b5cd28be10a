/*
 * bert.h (internal): the in-memory BERT model behind bookrec/bert.h. Weight
 * pointers point into the memory-mapped model.safetensors when the tensor
 * is float32 and aligned there, else into float32 copies the model owns
 * (F16/BF16 files, and the fused q/k/v projection).
 */
#ifndef BR_TEXT_BERT_H
#define BR_TEXT_BERT_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/bert.h"
#include "text/safetensors.h"
#include "text/wordpiece.h"

typedef struct bert_layer {
    const float *wqkv, *bqkv; /* (3H, H), (3H,): query, key, value rows stacked */
    const float *wo, *bo;     /* (H, H), (H,) attention output */
    const float *ln1_g, *ln1_b;
    const float *w1, *b1; /* (I, H), (I,) intermediate */
    const float *w2, *b2; /* (H, I), (H,) output */
    const float *ln2_g, *ln2_b;
    /* The four products' weights packed for br__nnb_linear_packed (owned), or
     * all NULL where the CPU lacks AVX-512. */
    const float *pqkv, *po, *p1, *p2;
} bert_layer;

typedef struct bert_config {
    size_t vocab, hidden, heads, layers, inter, max_pos, type_vocab;
    float eps;
} bert_config;

struct br_bert {
    bert_config c;
    size_t max_len; /* tokens per text, specials included */
    br_bert_pooling pooling;
    int normalize;
    st_file *st;
    wordpiece *wp;
    char tokenizer_file[24];
    const float *word, *pos, *type; /* (V, H), (P, H), (types, H) */
    const float *emb_g, *emb_b;
    bert_layer *layers;
    float **owned; /* converted / fused tensors, freed on close */
    size_t n_owned, cap_owned;
};

/* Parses config.json text into c (defaults as transformers' BertConfig). */
br_status br__bert_parse_config(const char *path, bert_config *c);

#endif
