/*
 * test_tokenizer.c: the use-lite SentencePiece tokenizer. Its rules on the
 * tiny synthetic vocabulary (ties, unknowns, the "unset" zero), the UTF-8
 * repair, and on the real model: normalisation, spaces, unknowns, and token
 * ids identical to the TF.js reference on every golden text.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "../fuzz/tiny_model.h"

static br_encoder *real_model(void)
{
    char path[1024];
    if (br_encoder_model_path("use-lite", path, sizeof path) != BR_OK) return NULL;
    br_encoder *enc = NULL;
    if (br_encoder_open(path, &enc) != BR_OK) {
        printf("skip: no usable use-lite model at %s (%s); run `make model`\n", path,
               br_error_detail());
        return NULL;
    }
    return enc;
}

/* Tokenizes and compares with an expected id list (n ids). */
static void expect_ids(const br_encoder *enc, const char *text, const int32_t *want, size_t n)
{
    int32_t *ids;
    size_t k;
    assert_int_equal(br_encoder_tokenize(enc, text, &ids, &k), BR_OK);
    if (k != n || (n && memcmp(ids, want, n * sizeof *ids))) {
        fprintf(stderr, "text '%s': got", text);
        for (size_t i = 0; i < k; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
        fail_msg("token ids differ for '%s'", text);
    }
    br_free(ids);
}

static void expect_same(const br_encoder *enc, const char *a, const char *b)
{
    int32_t *ia, *ib;
    size_t na, nb;
    assert_int_equal(br_encoder_tokenize(enc, a, &ia, &na), BR_OK);
    assert_int_equal(br_encoder_tokenize(enc, b, &ib, &nb), BR_OK);
    assert_int_equal(na, nb);
    if (na) assert_memory_equal(ia, ib, na * sizeof *ia);
    br_free(ia);
    br_free(ib);
}

static br_encoder *tiny_open(char **dir_out)
{
    uint8_t *b = NULL;
    size_t len = tiny_model_build(&b);
    char *dir = tu_tmpdir("tokenizer_tiny");
    char path[1024];
    snprintf(path, sizeof path, "%s/tiny.brm", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
    free(b);
    br_encoder *enc;
    assert_int_equal(br_encoder_open(path, &enc), BR_OK);
    *dir_out = dir;
    return enc;
}

/* Tiny vocabulary: 6 "▁" -2.5, 7 "▁a" -3, 8 "a" -4, 9 "b" -4.5, 10 "ab" -3.5,
 * 11 "▁ab" -6. */
static void test_viterbi_rules(void **state)
{
    (void)state;
    char *dir;
    br_encoder *enc = tiny_open(&dir);
    /* "▁ab" scores -6 and "▁" + "ab" also -6: the tie goes to the later
     * start, as the reference's `>=` does. */
    expect_ids(enc, "ab", (int32_t[]){6, 10}, 2);
    /* "▁a" (-3) beats "▁" + "a" (-6.5). */
    expect_ids(enc, "a", (int32_t[]){7}, 1);
    /* No piece starts with 'c': one unknown (score 0) per symbol, and a run
     * of unknowns collapses into one id 0. */
    expect_ids(enc, "c", (int32_t[]){6, 0}, 2);
    expect_ids(enc, "ccc", (int32_t[]){6, 0}, 2);
    expect_ids(enc, "cac", (int32_t[]){6, 0, 8, 0}, 4);
    /* A space becomes "▁"; empty text has no tokens at all. */
    expect_ids(enc, "a a", (int32_t[]){7, 7}, 2);
    expect_ids(enc, "", NULL, 0);
    /* Reserved ids are never produced even if the text spells them. */
    expect_ids(enc, "x1", (int32_t[]){6, 0}, 2);
    br_encoder_close(enc);
    br_free(dir);
}

static void test_utf8_repair(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
    } cases[] = {
        {"abc", "abc"},
        {"a\xff"
         "b",
         "a\xef\xbf\xbd"
         "b"},                        /* invalid byte */
        {"\xe2\x82", "\xef\xbf\xbd"}, /* truncated: one U+FFFD */
        {"\xe2\x82"
         "a",
         "\xef\xbf\xbd"
         "a"},                                                    /* maximal subpart */
        {"\xf0\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* overlong lead */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong '/' */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
        {"caf\xc3\xa9 \xf0\x9f\x93\x9a", "caf\xc3\xa9 \xf0\x9f\x93\x9a"},         /* valid */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        char *o = br__use_utf8_sanitize(cases[i].in, strlen(cases[i].in), &n);
        assert_non_null(o);
        assert_int_equal(n, strlen(cases[i].out));
        assert_string_equal(o, cases[i].out);
        br_free(o);
    }
}

static void test_real_rules(void **state)
{
    (void)state;
    br_encoder *enc = real_model();
    if (!enc) skip();
    expect_ids(enc, "hello world", (int32_t[]){2002, 102, 311}, 3);
    expect_ids(enc, "Hello World", (int32_t[]){341, 4125, 1369}, 3);
    expect_ids(enc, "a", (int32_t[]){11}, 1);
    expect_ids(enc, "", NULL, 0);
    /* Whitespace only: each U+0020 is a "▁" piece (id 30). */
    expect_ids(enc, " ", (int32_t[]){30, 30}, 2);
    /* Only U+0020 is a space: a tab is an unknown symbol. */
    expect_ids(enc, "a\tb", (int32_t[]){11, 0, 151}, 3);
    /* NFKC: ligatures and full-width forms fold. */
    expect_same(enc,
                "\xef\xac\x81"
                "sh",
                "fish");
    expect_same(enc, "\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3", "ABC");
    expect_same(enc, "Cafe\xcc\x81", "Caf\xc3\xa9"); /* composed either way */
    /* Unknown scripts collapse into one unknown per run. */
    expect_ids(
        enc, "\xe6\x9d\xb1\xe4\xba\xac\xe3\x81\xa7\xe6\x9c\xac\xe3\x82\x92\xe8\xaa\xad\xe3\x82\x80",
        (int32_t[]){30, 0}, 2);
    /* Invalid UTF-8 tokenizes as its U+FFFD repair. */
    expect_same(enc,
                "ab\xff"
                "cd",
                "ab\xef\xbf\xbd"
                "cd");
    expect_same(enc,
                "ab\xe2\x82"
                "cd",
                "ab\xef\xbf\xbd"
                "cd");
    br_encoder_close(enc);
}

/* Every text of a golden file: ids identical to the reference's. */
static void check_golden(const char *name)
{
    br_encoder *enc = real_model();
    if (!enc) skip();
    char path[1024];
    snprintf(path, sizeof path, "%s/use-lite/%s", BR_GOLDEN_DIR, name);
    json_error_t jerr;
    json_t *g = json_load_file(path, 0, &jerr);
    if (!g) fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
    size_t i, bad = 0;
    json_t *r;
    json_array_foreach(g, i, r)
    {
        const char *text = json_string_value(json_object_get(r, "text"));
        json_t *want = json_object_get(r, "token_ids");
        assert_non_null(text);
        int32_t *ids;
        size_t n;
        assert_int_equal(br_encoder_tokenize(enc, text, &ids, &n), BR_OK);
        int same = n == json_array_size(want);
        for (size_t k = 0; same && k < n; k++)
            same = ids[k] == json_integer_value(json_array_get(want, k));
        if (!same && bad++ < 5) fprintf(stderr, "%s[%zu] differs: '%.60s'\n", name, i, text);
        br_free(ids);
    }
    printf("%s: %zu texts, %zu with different token ids\n", name, json_array_size(g), bad);
    assert_true(json_array_size(g) > 0);
    assert_int_equal(bad, 0);
    json_decref(g);
    br_encoder_close(enc);
}

static void test_golden_edge_cases(void **state)
{
    (void)state;
    check_golden("edge_cases.json");
}

static void test_golden_seed_descriptions(void **state)
{
    (void)state;
    check_golden("seed_descriptions.json");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_viterbi_rules),
        cmocka_unit_test(test_utf8_repair),
        cmocka_unit_test(test_real_rules),
        cmocka_unit_test(test_golden_edge_cases),
        cmocka_unit_test(test_golden_seed_descriptions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
