/*
 * fuzz_modelfile.c: libFuzzer target for the use-lite model-file parser.
 *
 * A fuzzer mutating a 28 MB file, or building one from nothing, would rarely
 * get past the magic and the sizes; so the input is a list of patches to a
 * valid tiny model (fuzz/tiny_model.h): 5-byte records (u32 offset, u8
 * value). An input starting with 'R' is instead parsed as a whole file. The
 * checksum is not checked (no mutation could pass it); everything after it
 * is. A file that parses must give a tokenizer that works.
 */
#include <stdlib.h>
#include <string.h>

#include "text/use_model.h"
#include "tiny_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *tmpl;
static size_t tmpl_len;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tmpl) {
        tmpl_len = tiny_model_build(&tmpl);
        if (!tmpl_len) abort();
    }
    uint8_t *buf;
    size_t len;
    if (size && data[0] == 'R') {
        len = size - 1;
        /* A private aligned copy, as an mmap'd file would be. */
        buf = aligned_alloc(64, (len + 63) / 64 * 64 + 64);
        if (!buf) return 0;
        memcpy(buf, data + 1, len);
    } else {
        len = tmpl_len;
        buf = aligned_alloc(64, (len + 63) / 64 * 64);
        if (!buf) return 0;
        memcpy(buf, tmpl, len);
        for (size_t i = 0; i + 5 <= size; i += 5) {
            uint32_t off;
            memcpy(&off, data + i, 4);
            buf[off % len] = data[i + 4];
        }
    }
    use_model m;
    if (br__use_model_parse(buf, len, 0, &m) == BR_OK) {
        use_tokenizer *t;
        if (br__use_tokenizer_create(&m, &t) == BR_OK) {
            static const char *const texts[] = {"", "a", "ab ab",
                                                ("c\xff"
                                                 "b"),
                                                "\xe2\x96\x81"};
            for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
                int32_t *ids;
                size_t n;
                if (br__use_tokenizer_encode(t, texts[k], strlen(texts[k]), &ids, &n) == BR_OK) {
                    for (size_t j = 0; j < n; j++)
                        if (ids[j] < 0 || (uint32_t)ids[j] >= m.vocab_size) abort();
                    br_free(ids);
                }
            }
            br__use_tokenizer_free(t);
        }
        /* Touch every tensor's first and last float: they must be mapped. */
        volatile float sink = m.emb[0] + m.emb[(size_t)m.emb_rows * m.emb_dim - 1] +
                              m.final_b[m.out_dim - 1] + m.timing_inv[m.emb_dim / 2 - 1];
        (void)sink;
    }
    free(buf);
    return 0;
}
