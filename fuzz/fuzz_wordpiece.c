/*
 * fuzz_wordpiece.c: libFuzzer target for the BERT encoder's WordPiece
 * tokenizer (src/text/wordpiece.c): its normaliser (cleaning, lowercasing,
 * accent stripping, CJK spacing), pre-tokeniser and greedy longest match,
 * with the tiny MiniLM's vocabulary (tests/golden/minilm/tiny), and its two
 * vocabulary loaders. First byte: 'V' the rest is a vocab.txt, 'J' a
 * tokenizer.json (each loaded, then used on a fixed text); anything else,
 * bit 0 = add [CLS]/[SEP], the rest is a text. Ids must be in range,
 * deterministic, and wrapped in [CLS] ... [SEP] when asked.
 */
#include "fuzz_util.h"

#include "text/wordpiece.h"

static wordpiece *wp;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    wp_config cfg = WP_CONFIG_DEFAULT;
    if (br__wordpiece_load_vocab(FUZZ_ROOT "/tests/golden/minilm/tiny/vocab.txt", &cfg, &wp) !=
        BR_OK)
        abort();
    return 0;
}

static void encode(const wordpiece *w, const char *text, size_t len, int special)
{
    int32_t *a, *b;
    size_t na, nb;
    if (br__wordpiece_encode(w, text, len, special, &a, &na) != BR_OK) return;
    if (br__wordpiece_encode(w, text, len, special, &b, &nb) != BR_OK) abort();
    if (na != nb || (na && memcmp(a, b, na * sizeof *a))) abort();
    size_t vs = br__wordpiece_vocab_size(w);
    for (size_t i = 0; i < na; i++)
        if (a[i] < 0 || (size_t)a[i] >= vs) abort();
    if (special && (na < 2 || a[0] != br__wordpiece_cls(w) || a[na - 1] != br__wordpiece_sep(w)))
        abort();
    br_free(a);
    br_free(b);
    char *norm;
    if (br__wordpiece_normalize(w, text, len, &norm) == BR_OK) br_free(norm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 16)) return 0;
    if (data[0] == 'V' || data[0] == 'J') {
        char p[PATH_MAX];
        fz_write(fz_path(p, sizeof p, "vocab"), data + 1, size - 1);
        wp_config cfg = WP_CONFIG_DEFAULT;
        wordpiece *w;
        br_status st =
            data[0] == 'V' ? br__wordpiece_load_vocab(p, &cfg, &w) : br__wordpiece_load_json(p, &w);
        if (st != BR_OK) return 0;
        static const char text[] = "Hello, WORLD! caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 [UNK] x";
        encode(w, text, sizeof text - 1, 1);
        encode(w, text, sizeof text - 1, 0);
        br__wordpiece_free(w);
        return 0;
    }
    encode(wp, (const char *)data + 1, size - 1, data[0] & 1);
    return 0;
}
