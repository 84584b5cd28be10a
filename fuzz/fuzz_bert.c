/*
 * fuzz_bert.c: libFuzzer target for the BERT encoder's model folder
 * (br_encoder_open_bert, src/text/bert.c): config.json, the
 * sentence-transformers configs, the tokenizer files and the weights, as
 * in tests/golden/minilm/tiny. Each input replaces one of those files
 * (first byte: which; fuzz_util.h's fz_files), the others stay valid. A
 * model that opens must embed a text (into at most a unit vector: weights
 * may be anything, NaN included) and tokenize it into ids within its
 * vocabulary. The weights' format alone
 * is fuzz_safetensors's; here their names and shapes are checked.
 */
#include "fuzz_util.h"

#include <math.h>

static const char *const names[] = {"config.json",
                                    "sentence_bert_config.json",
                                    "tokenizer_config.json",
                                    "special_tokens_map.json",
                                    "vocab.txt",
                                    "tokenizer.json",
                                    "model.safetensors"};
#define TINY FUZZ_ROOT "/tests/golden/minilm/tiny"
static fz_files files;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_files_init(&files, TINY, "bert", names, sizeof names / sizeof names[0]);
    fz_files_dump(TINY, names, sizeof names / sizeof names[0], 1 << 14);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_files_put(&files, data, size);
    br_encoder *enc;
    if (br_encoder_open_bert(files.dir, 32, &enc) != BR_OK) return 0;
    size_t dim = br_encoder_dim(enc);
    static const char *const text[] = {"A quiet book about \xc3\xa9t\xc3\xa9 and [SEP] tokens."};
    if (dim && dim <= 4096) {
        float *v = malloc(dim * sizeof *v);
        if (!v) abort();
        if (br_encoder_embed(enc, text, 1, v) == BR_OK) {
            double n2 = 0;
            for (size_t i = 0; i < dim; i++) n2 += (double)v[i] * v[i];
            if (isfinite(n2) && n2 > 1.0001) abort();
        }
        free(v);
    }
    int32_t *ids;
    size_t n;
    if (br_encoder_tokenize(enc, text[0], &ids, &n) == BR_OK) {
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || (size_t)ids[i] >= br_encoder_vocab_size(enc)) abort();
        br_free(ids);
    }
    br_encoder_close(enc);
    return 0;
}
