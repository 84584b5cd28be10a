/*
 * tiny_model.h: builds a small but complete use-lite model file in memory
 * (widths 8 -> 16, 2 heads, feed-forward 16, 12 pieces), the layout of
 * docs/formats.md written field by field. The fuzzers mutate it (a valid
 * start reaches deep into the parser) and the model-file tests corrupt it
 * without needing the real 28 MB model. Header-only: included by one .c.
 */
#ifndef BR_FUZZ_TINY_MODEL_H
#define BR_FUZZ_TINY_MODEL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/use_model.h"

/* Writes the file into a malloc'd buffer; returns its length (0 on ENOMEM). */
static size_t tiny_model_build(uint8_t **out)
{
    enum { V = 12, ROWS = 14, E = 8, D = 16, H = 2, F = 16, MAXLEN = 6 };
    static const char *const pieces[V] = {"\xef\xbf\xbd",
                                          "<s>",
                                          "</s>",
                                          "x1",
                                          "x2",
                                          "x3",
                                          "\xe2\x96\x81",
                                          "\xe2\x96\x81"
                                          "a",
                                          "a",
                                          "b",
                                          "ab",
                                          "\xe2\x96\x81"
                                          "ab"};
    static const double scores[V] = {0, 0, 0, 0, 0, 0, -2.5, -3.0, -4.0, -4.5, -3.5, -6.0};
    /* Tensors in file order: name, rows, cols. */
    struct {
        const char *name;
        uint32_t r, c;
    } t[] = {{"embeddings", ROWS, E}, {"timing.inv", E / 2, 1}, {"l0.ln1.s", E, 1},
             {"l0.ln1.b", E, 1},      {"l0.qkv.w", E, 3 * E},   {"l0.qkv.b", 3 * E, 1},
             {"l0.out.w", E, D},      {"l0.out.b", D, 1},       {"l0.res.w", E, D},
             {"l0.res.b", D, 1},      {"l0.ln2.s", D, 1},       {"l0.ln2.b", D, 1},
             {"l0.ff1.w", D, F},      {"l0.ff1.b", F, 1},       {"l0.ff2.w", F, D},
             {"l0.ff2.b", D, 1},      {"l1.ln1.s", D, 1},       {"l1.ln1.b", D, 1},
             {"l1.qkv.w", D, 3 * D},  {"l1.qkv.b", 3 * D, 1},   {"l1.out.w", D, D},
             {"l1.out.b", D, 1},      {"l1.ln2.s", D, 1},       {"l1.ln2.b", D, 1},
             {"l1.ff1.w", D, F},      {"l1.ff1.b", F, 1},       {"l1.ff2.w", F, D},
             {"l1.ff2.b", D, 1},      {"final.w", D, D},        {"final.b", D, 1}};
    const size_t nt = sizeof t / sizeof t[0];
    size_t blob = 0;
    for (int i = 0; i < V; i++) blob += strlen(pieces[i]);
    size_t voff = USE_HEADER_BYTES, vbytes = V * 8 + (V + 1) * 4 + blob;
    size_t doff = (voff + vbytes + 63) / 64 * 64;
    size_t toff = (doff + nt * USE_DIR_ENTRY_BYTES + 63) / 64 * 64, len = toff;
    for (size_t i = 0; i < nt; i++) len = (len + (size_t)t[i].r * t[i].c * 4 + 63) / 64 * 64;
    uint8_t *b = calloc(1, len);
    if (!b) return 0;
#define W32(off, v) (void)(tmp32 = (uint32_t)(v), memcpy(b + (off), &tmp32, 4))
#define W64(off, v) (void)(tmp64 = (uint64_t)(v), memcpy(b + (off), &tmp64, 8))
#define WF(off, v)  (void)(tmpf = (float)(v), memcpy(b + (off), &tmpf, 4))
    uint32_t tmp32;
    uint64_t tmp64;
    float tmpf;
    memcpy(b, USE_MAGIC, 8);
    W32(USE_OFF_VERSION, USE_VERSION);
    W32(USE_OFF_HEADER_BYTES, USE_HEADER_BYTES);
    W64(USE_OFF_FILE_BYTES, len);
    W32(USE_OFF_VOCAB_SIZE, V);
    W32(USE_OFF_EMB_ROWS, ROWS);
    W32(USE_OFF_EMB_DIM, E);
    W32(USE_OFF_MODEL_DIM, D);
    W32(USE_OFF_HEADS, H);
    W32(USE_OFF_FF_DIM, F);
    W32(USE_OFF_MAX_LEN, MAXLEN);
    W32(USE_OFF_LAYERS, 2);
    W32(USE_OFF_OUT_DIM, D);
    W32(USE_OFF_N_TENSORS, nt);
    WF(USE_OFF_LN_EPS, 1e-6);
    WF(USE_OFF_L2_EPS, 1e-12);
    WF(USE_OFF_MASK_BIAS, -1e9);
    WF(USE_OFF_ATTN_SCALE, 0.5);
    WF(USE_OFF_ATTN_SCALE + 4, 0.35355339);
    W64(USE_OFF_VOCAB_OFFSET, voff);
    W64(USE_OFF_VOCAB_BYTES, vbytes);
    W64(USE_OFF_DIR_OFFSET, doff);
    memcpy(b + USE_OFF_SOURCE, "tiny test model", 15);
    uint32_t off = 0;
    for (int i = 0; i < V; i++) {
        memcpy(b + voff + 8 * i, &scores[i], 8);
        W32(voff + V * 8 + 4 * i, off);
        memcpy(b + voff + V * 8 + (V + 1) * 4 + off, pieces[i], strlen(pieces[i]));
        off += (uint32_t)strlen(pieces[i]);
    }
    W32(voff + V * 8 + 4 * V, off);
    size_t o = toff;
    for (size_t i = 0; i < nt; i++) {
        uint8_t *e = b + doff + i * USE_DIR_ENTRY_BYTES;
        memcpy(e, t[i].name, strlen(t[i].name));
        W32(doff + i * USE_DIR_ENTRY_BYTES + 40, t[i].r);
        W32(doff + i * USE_DIR_ENTRY_BYTES + 44, t[i].c);
        W64(doff + i * USE_DIR_ENTRY_BYTES + 48, o);
        /* Deterministic small weights; LayerNorm scales near 1. */
        int is_scale = strstr(t[i].name, ".s") != NULL && t[i].c == 1;
        for (size_t k = 0; k < (size_t)t[i].r * t[i].c; k++) {
            float v = is_scale ? 1.0f + 0.01f * (float)(k % 5)
                               : 0.05f * (float)((int)((k * 7 + i * 13) % 11) - 5);
            if (!strcmp(t[i].name, "timing.inv")) v = 1.0f / (float)(1 + k * 10);
            memcpy(b + o + 4 * k, &v, 4);
        }
        o = (o + (size_t)t[i].r * t[i].c * 4 + 63) / 64 * 64;
    }
    W64(USE_OFF_CHECKSUM, br__use_model_checksum(b + USE_HEADER_BYTES, len - USE_HEADER_BYTES));
#undef W32
#undef W64
#undef WF
    *out = b;
    return len;
}

#endif
