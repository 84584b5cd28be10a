/*
 * fuzz_tokenizer.c: libFuzzer target for the use-lite tokenizer (UTF-8
 * repair, NFKC, trie walk, Viterbi, backtrack). The input is one text of
 * arbitrary bytes. Uses the real vocabulary when the model is in its default
 * location, else the tiny synthetic one. Checks what must hold for any
 * input: ids in range, no two unknowns in a row, the same ids twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/encoder.h"
#include "text/use_model.h"
#include "tiny_model.h"

static use_model model;
static use_tokenizer *tok;
static uint8_t *tiny;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char path[4096];
    if (br_encoder_model_path("use-lite", path, sizeof path) == BR_OK &&
        br__use_model_map(path, &model) == BR_OK) {
        fprintf(stderr, "fuzz_tokenizer: real vocabulary from %s\n", path);
    } else {
        size_t len = tiny_model_build(&tiny);
        if (!len || br__use_model_parse(tiny, len, 1, &model) != BR_OK) abort();
        fprintf(stderr, "fuzz_tokenizer: tiny vocabulary (no model at %s)\n", path);
    }
    if (br__use_tokenizer_create(&model, &tok) != BR_OK) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16) return 0;
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    if (br__use_tokenizer_encode(tok, (const char *)data, size, &a, &na) != BR_OK) abort();
    if (br__use_tokenizer_encode(tok, (const char *)data, size, &b, &nb) != BR_OK) abort();
    if (na != nb || (na && memcmp(a, b, na * sizeof *a))) abort();
    for (size_t i = 0; i < na; i++) {
        if (a[i] < 0 || (uint32_t)a[i] >= model.vocab_size) abort();
        if (a[i] > 0 && a[i] < 6) abort(); /* reserved ids are never produced */
        if (i && a[i] == 0 && a[i - 1] == 0) abort();
    }
    if (size && !na) {
        /* Only text that normalises to nothing has no tokens. */
        size_t n;
        char *clean = br__use_utf8_sanitize((const char *)data, size, &n);
        if (!clean) abort();
        br_free(clean);
    }
    br_free(a);
    br_free(b);
    return 0;
}
