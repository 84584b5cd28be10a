/*
 * test_wordpiece.c: the WordPiece tokenizer against the transformers.js
 * reference. Golden files (tests/golden/minilm/): wordpiece_edge_cases.json
 * (the 25 shared edge cases) and wordpiece_extra_cases.json (71 more texts
 * aimed at the pipeline's corners: added tokens in the text, final sigma,
 * U+0130, astral ideographs, invalid and control characters, 100-char
 * words), both written by ../shared/reference/minilm/wordpiece_reference.js.
 * wordpiece_unicode_cases.json covers the 145 characters of
 * wordpiece_unicode.h. Both tokenizer sources (tokenizer.json, vocab.txt + defaults) must agree
 * with every id.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "text/wordpiece.h"

#define GOLD BR_GOLDEN_DIR "/minilm/"

static wordpiece *from_json, *from_vocab;

static int setup(void **state)
{
    (void)state;
    if (br__wordpiece_load_json(GOLD "tiny/tokenizer.json", &from_json) != BR_OK) return -1;
    if (br__wordpiece_load_vocab(GOLD "tiny/vocab.txt", NULL, &from_vocab) != BR_OK) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    br__wordpiece_free(from_json);
    br__wordpiece_free(from_vocab);
    return 0;
}

/* Every case of a reference file, through one tokenizer; returns the
 * number of cases checked. */
static size_t check_cases(const wordpiece *wp, const char *path)
{
    json_error_t jerr;
    json_t *cases = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (!cases) fail_msg("%s: %s", path, jerr.text);
    size_t i, checked = 0;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        json_t *text = json_object_get(c, "text"), *want = json_object_get(c, "token_ids");
        int32_t *ids;
        size_t n;
        assert_int_equal(br__wordpiece_encode(wp, json_string_value(text), json_string_length(text),
                                              1, &ids, &n),
                         BR_OK);
        size_t wn = json_array_size(want);
        int same = n == wn;
        for (size_t k = 0; same && k < n; k++)
            same = ids[k] == (int32_t)json_integer_value(json_array_get(want, k));
        if (!same) {
            char *norm;
            br__wordpiece_normalize(wp, json_string_value(text), json_string_length(text), &norm);
            fprintf(stderr, "case %zu: '%s' (normalised '%s')\n  got  ", i, json_string_value(text),
                    norm);
            br_free(norm);
            for (size_t k = 0; k < n; k++) fprintf(stderr, "%d ", ids[k]);
            fprintf(stderr, "\n  want ");
            for (size_t k = 0; k < wn; k++)
                fprintf(stderr, "%d ", (int)json_integer_value(json_array_get(want, k)));
            fprintf(stderr, "\n");
            br_free(ids);
            json_decref(cases);
            fail_msg("%s: case %zu differs from the reference", path, i);
        }
        br_free(ids);
        checked++;
    }
    json_decref(cases);
    return checked;
}

static void test_edge_cases_tokenizer_json(void **state)
{
    (void)state;
    assert_int_equal(check_cases(from_json, GOLD "wordpiece_edge_cases.json"), 25);
}

static void test_edge_cases_vocab_txt(void **state)
{
    (void)state;
    assert_int_equal(check_cases(from_vocab, GOLD "wordpiece_edge_cases.json"), 25);
}

static void test_extra_cases(void **state)
{
    (void)state;
    assert_int_equal(check_cases(from_json, GOLD "wordpiece_extra_cases.json"), 71);
    assert_int_equal(check_cases(from_vocab, GOLD "wordpiece_extra_cases.json"), 71);
}

/* The characters Unicode assigned after utf8proc's 15.0 (wordpiece_unicode.h),
 * each in a few contexts, as the reference (Unicode 17) tokenizes them. */
static void test_newer_unicode_cases(void **state)
{
    (void)state;
    assert_int_equal(check_cases(from_json, GOLD "wordpiece_unicode_cases.json"), 145);
}

static void test_vocab_and_specials(void **state)
{
    (void)state;
    assert_int_equal(br__wordpiece_vocab_size(from_json), 30522);
    assert_int_equal(br__wordpiece_vocab_size(from_vocab), 30522);
    assert_int_equal(br__wordpiece_cls(from_json), 101);
    assert_int_equal(br__wordpiece_sep(from_json), 102);
    assert_int_equal(br__wordpiece_unk(from_json), 100);
    assert_int_equal(br__wordpiece_pad(from_json), 0);
    size_t len;
    const char *p = br__wordpiece_piece(from_json, 7592, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(p, "hello", 5);
    assert_int_equal(br__wordpiece_id(from_vocab, "##ing", 5), 2075);
    assert_int_equal(br__wordpiece_id(from_vocab, "no-such-piece", 13), -1);
    assert_null(br__wordpiece_piece(from_json, 30522, NULL));
    assert_null(br__wordpiece_piece(from_json, -1, NULL));
}

static void test_without_specials_and_normalize(void **state)
{
    (void)state;
    int32_t *ids;
    size_t n;
    assert_int_equal(br__wordpiece_encode(from_json, "Hello World", 11, 0, &ids, &n), BR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 7592);
    assert_int_equal(ids[1], 2088);
    br_free(ids);
    assert_int_equal(br__wordpiece_encode(from_json, "", 0, 0, &ids, &n), BR_OK);
    assert_int_equal(n, 0);
    br_free(ids);
    /* Length, not NUL, ends the text. */
    assert_int_equal(br__wordpiece_encode(from_json, "a\0b", 3, 0, &ids, &n), BR_OK);
    assert_int_equal(n, 1); /* NUL is dropped: "ab" */
    assert_int_equal(ids[0], br__wordpiece_id(from_json, "ab", 2));
    br_free(ids);
    char *s;
    assert_int_equal(br__wordpiece_normalize(from_json, "Café 東京\tX", strlen("Café 東京\tX"), &s),
                     BR_OK);
    assert_string_equal(s, "cafe  東  京  x");
    br_free(s);
}

/* Invalid UTF-8 reads as U+FFFD, which clean_text drops: bytes around it
 * still tokenize, and no byte sequence crashes or reads out of bounds. */
static void test_invalid_utf8(void **state)
{
    (void)state;
    int32_t *ids;
    size_t n;
    const char bad[] = "ab\xff\xfe"
                       "cd \xe2\x82 ef \xf0\x9f\x98";
    assert_int_equal(br__wordpiece_encode(from_json, bad, sizeof bad - 1, 0, &ids, &n), BR_OK);
    int32_t *want;
    size_t wn;
    assert_int_equal(br__wordpiece_encode(from_json, "abcd ef", 7, 0, &want, &wn), BR_OK);
    assert_int_equal(n, wn);
    assert_memory_equal(ids, want, n * sizeof *ids);
    br_free(ids);
    br_free(want);
    /* Every 1- and 2-byte string. */
    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b += 7) {
            char s[2] = {(char)a, (char)b};
            assert_int_equal(br__wordpiece_encode(from_json, s, 2, 1, &ids, &n), BR_OK);
            assert_true(n >= 2 && n <= 4);
            br_free(ids);
        }
}

static void test_load_errors(void **state)
{
    (void)state;
    wordpiece *wp = NULL;
    assert_status_detail(br__wordpiece_load_vocab("/nonexistent/vocab.txt", NULL, &wp),
                         BR_ENOTFOUND, "vocab.txt");
    assert_null(wp);
    char *dir = tu_tmpdir("test_wordpiece");
    char *p = tu_write_file(dir, "vocab.txt", "[PAD]\nhello\n");
    assert_status_detail(br__wordpiece_load_vocab(p, NULL, &wp), BR_EFORMAT, "[UNK]");
    br_free(p);
    p = tu_write_file(dir, "tok.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}");
    assert_status_detail(br__wordpiece_load_json(p, &wp), BR_EUNSUPPORTED, "WordPiece");
    br_free(p);
    p = tu_write_file(dir, "tok2.json", "{\"model\": {\"vocab\": {\"[UNK]\": 0, \"a\": 2}}}");
    assert_status_detail(br__wordpiece_load_json(p, &wp), BR_EFORMAT, "no id 1");
    br_free(p);
    p = tu_write_file(dir, "tok3.json", "{\"model\": ");
    assert_int_equal(br__wordpiece_load_json(p, &wp), BR_EPARSE);
    br_free(p);
    br_free(dir);
}

/* A hand-made vocabulary exercises greedy longest match directly. */
static void test_greedy_longest_match(void **state)
{
    (void)state;
    const char *pieces[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]",  "un",       "una",
                            "##aff", "##a",   "##ff",  "##able", "##ffable", "aff"};
    wordpiece *wp;
    wp_config cfg = WP_CONFIG_DEFAULT;
    assert_int_equal(br__wordpiece_create(pieces, 12, &cfg, &wp), BR_OK);
    int32_t *ids;
    size_t n;
    /* "unaffable": longest first piece "una", then "##ffable" */
    assert_int_equal(br__wordpiece_encode(wp, "unaffable", 9, 0, &ids, &n), BR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 5);
    assert_int_equal(ids[1], 10);
    br_free(ids);
    /* "unx": "un" then nothing matches "x": the whole word is [UNK] */
    assert_int_equal(br__wordpiece_encode(wp, "UNX aff", 7, 0, &ids, &n), BR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 11);
    br_free(ids);
    br__wordpiece_free(wp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edge_cases_tokenizer_json),
        cmocka_unit_test(test_edge_cases_vocab_txt),
        cmocka_unit_test(test_extra_cases),
        cmocka_unit_test(test_newer_unicode_cases),
        cmocka_unit_test(test_vocab_and_specials),
        cmocka_unit_test(test_without_specials_and_normalize),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_greedy_longest_match),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
