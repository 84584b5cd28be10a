/*
 * test_modelfile.c: the use-lite model file loader: a good file opens, and a
 * truncated file, a wrong magic, a wrong version, a corrupt byte, a wrong
 * shape and a missing file each fail with a clear error. Uses the tiny
 * synthetic model (fuzz/tiny_model.h), so it needs no download; the real
 * model is checked too when it is in the default location.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "../fuzz/tiny_model.h"

static char *write_bytes(const char *dir, const char *name, const uint8_t *b, size_t len)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = br_malloc(n);
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
    return path;
}

/* Opens bytes written to a file; returns the status (closing on success). */
static br_status open_bytes(const char *dir, const char *name, const uint8_t *b, size_t len)
{
    char *path = write_bytes(dir, name, b, len);
    br_encoder *enc = NULL;
    br_status st = br_encoder_open(path, &enc);
    if (st == BR_OK) {
        assert_non_null(enc);
        br_encoder_close(enc);
    } else {
        assert_null(enc);
    }
    br_free(path);
    return st;
}

static void restamp(uint8_t *b, size_t len)
{
    uint64_t h = use_model_checksum(b + USE_HEADER_BYTES, len - USE_HEADER_BYTES);
    memcpy(b + USE_OFF_CHECKSUM, &h, 8);
}

static void test_tiny_model_opens(void **state)
{
    (void)state;
    uint8_t *b = NULL;
    size_t len = tiny_model_build(&b);
    assert_true(len > 0);
    char *dir = tu_tmpdir("modelfile_ok");
    char *path = write_bytes(dir, "tiny.brm", b, len);
    br_encoder *enc;
    assert_int_equal(br_encoder_open(path, &enc), BR_OK);
    assert_int_equal(br_encoder_dim(enc), 16);
    assert_int_equal(br_encoder_max_tokens(enc), 6);
    assert_int_equal(br_encoder_vocab_size(enc), 12);
    size_t plen;
    const char *p = br_encoder_piece(enc, 10, &plen);
    assert_int_equal(plen, 2);
    assert_memory_equal(p, "ab", 2);
    assert_null(br_encoder_piece(enc, 12, NULL));
    assert_null(br_encoder_piece(enc, -1, NULL));
    br_encoder_info in;
    assert_int_equal(br_encoder_get_info(enc, &in), BR_OK);
    assert_int_equal(in.heads, 2);
    assert_int_equal(in.ff_dim, 16);
    assert_int_equal(in.file_bytes, len);
    assert_string_equal(in.source, "tiny test model");
    br_encoder_close(enc);
    assert_int_equal(br_encoder_check_file(path), BR_OK);
    br_free(path);
    br_free(dir);
    free(b);
}

static void test_truncated(void **state)
{
    (void)state;
    uint8_t *b = NULL;
    size_t len = tiny_model_build(&b);
    char *dir = tu_tmpdir("modelfile_trunc");
    assert_status_detail(open_bytes(dir, "half.brm", b, len / 2), BR_EFORMAT, "truncated");
    assert_status_detail(open_bytes(dir, "short.brm", b, 100), BR_EFORMAT, "truncated");
    assert_status_detail(open_bytes(dir, "tiny.brm", b, 10), BR_EFORMAT, "truncated");
    assert_status_detail(open_bytes(dir, "empty.brm", b, 0), BR_EFORMAT, "truncated");
    /* Every format error says how to get a good file. */
    assert_status_detail(open_bytes(dir, "half.brm", b, len - 64), BR_EFORMAT,
                         "bookrec model fetch use-lite");
    br_free(dir);
    free(b);
}

static void test_wrong_magic(void **state)
{
    (void)state;
    uint8_t *b = NULL;
    size_t len = tiny_model_build(&b);
    char *dir = tu_tmpdir("modelfile_magic");
    memcpy(b, "GGUF\0\0\0\0", 8);
    assert_status_detail(open_bytes(dir, "m.brm", b, len), BR_EFORMAT, "wrong magic");
    br_free(dir);
    free(b);
}

static void test_wrong_version(void **state)
{
    (void)state;
    uint8_t *b = NULL;
    size_t len = tiny_model_build(&b);
    char *dir = tu_tmpdir("modelfile_version");
    uint32_t v = 2;
    memcpy(b + USE_OFF_VERSION, &v, 4);
    assert_status_detail(open_bytes(dir, "v.brm", b, len), BR_EFORMAT, "format version 2");
    br_free(dir);
    free(b);
}

static void test_corrupt_byte(void **state)
{
    (void)state;
    uint8_t *b = NULL;
    size_t len = tiny_model_build(&b);
    char *dir = tu_tmpdir("modelfile_corrupt");
    b[len - 300] ^= 0x40; /* inside the last tensors */
    assert_status_detail(open_bytes(dir, "c.brm", b, len), BR_EFORMAT, "checksum");
    assert_status_detail(br_encoder_check_file("/nonexistent/x.brm"), BR_ENOTFOUND,
                         "bookrec model fetch");
    br_free(dir);
    free(b);
}

static void test_bad_structure(void **state)
{
    (void)state;
    uint8_t *b = NULL;
    size_t len = tiny_model_build(&b);
    char *dir = tu_tmpdir("modelfile_struct");
    uint64_t doff;
    memcpy(&doff, b + USE_OFF_DIR_OFFSET, 8);

    /* A tensor whose shape disagrees with the header (checksum made valid,
     * so the structural check is what fails). */
    uint8_t *c = malloc(len);
    memcpy(c, b, len);
    uint32_t rows = 99;
    memcpy(c + doff + 40, &rows, 4);
    restamp(c, len);
    assert_status_detail(open_bytes(dir, "shape.brm", c, len), BR_EFORMAT, "implies");

    /* A tensor pointing past the end. */
    memcpy(c, b, len);
    uint64_t off = len;
    memcpy(c + doff + 48, &off, 8);
    restamp(c, len);
    assert_status_detail(open_bytes(dir, "oob.brm", c, len), BR_EFORMAT, "out of bounds");

    /* An unknown tensor name. */
    memcpy(c, b, len);
    memcpy(c + doff, "bogus\0", 6);
    restamp(c, len);
    assert_status_detail(open_bytes(dir, "name.brm", c, len), BR_EFORMAT, "unknown tensor");

    /* Hyper-parameters out of range. */
    memcpy(c, b, len);
    uint32_t heads = 3; /* does not divide the widths */
    memcpy(c + USE_OFF_HEADS, &heads, 4);
    restamp(c, len);
    assert_status_detail(open_bytes(dir, "heads.brm", c, len), BR_EFORMAT, "hyper-parameters");

    /* Vocabulary offsets going backwards. */
    memcpy(c, b, len);
    uint64_t voff;
    memcpy(&voff, b + USE_OFF_VOCAB_OFFSET, 8);
    uint32_t bad = 1000;
    memcpy(c + voff + 12 * 8 + 4 * 3, &bad, 4);
    restamp(c, len);
    assert_status_detail(open_bytes(dir, "voc.brm", c, len), BR_EFORMAT, "vocabulary");

    /* Size in the header larger than the file. */
    memcpy(c, b, len);
    uint64_t big = len + 64;
    memcpy(c + USE_OFF_FILE_BYTES, &big, 8);
    assert_status_detail(open_bytes(dir, "size.brm", c, len), BR_EFORMAT, "truncated");
    free(c);
    br_free(dir);
    free(b);
}

static void test_missing_file(void **state)
{
    (void)state;
    br_encoder *enc = (br_encoder *)&enc; /* must be reset to NULL */
    assert_status_detail(br_encoder_open("/nonexistent/dir/use-lite.brm", &enc), BR_ENOTFOUND,
                         "bookrec model fetch use-lite");
    assert_null(enc);
}

static void test_model_path(void **state)
{
    (void)state;
    char buf[512];
    char *old_xdg = getenv("XDG_CACHE_HOME") ? br_strdup(getenv("XDG_CACHE_HOME")) : NULL;
    setenv("XDG_CACHE_HOME", "/tmp/xdg-test", 1);
    assert_int_equal(br_encoder_model_path("use-lite", buf, sizeof buf), BR_OK);
    assert_string_equal(buf, "/tmp/xdg-test/bookrec/models/use-lite.brm");
    unsetenv("XDG_CACHE_HOME");
    char *home = getenv("HOME");
    if (home && *home) {
        assert_int_equal(br_encoder_model_dir(buf, sizeof buf), BR_OK);
        char want[512];
        snprintf(want, sizeof want, "%s/.cache/bookrec/models", home);
        assert_string_equal(buf, want);
    }
    assert_status_detail(br_encoder_model_path("bert", buf, sizeof buf), BR_ENOTFOUND, "unknown");
    assert_int_equal(br_encoder_model_path("use-lite", buf, 8), BR_ERANGE);
    if (old_xdg) setenv("XDG_CACHE_HOME", old_xdg, 1);
    br_free(old_xdg);
}

static void test_real_model(void **state)
{
    (void)state;
    char path[1024];
    assert_int_equal(br_encoder_model_path("use-lite", path, sizeof path), BR_OK);
    if (br_encoder_check_file(path) == BR_ENOTFOUND) {
        printf("skip: no use-lite model at %s (run `make model`)\n", path);
        skip();
    }
    br_encoder *enc;
    assert_int_equal(br_encoder_open(path, &enc), BR_OK);
    br_encoder_info in;
    br_encoder_get_info(enc, &in);
    assert_int_equal(in.vocab_size, 8000);
    assert_int_equal(in.embedding_rows, 8002);
    assert_int_equal(in.embedding_dim, 256);
    assert_int_equal(in.model_dim, 512);
    assert_int_equal(in.heads, 4);
    assert_int_equal(in.ff_dim, 1536);
    assert_int_equal(in.max_tokens, 128);
    assert_true(in.layernorm_eps == 1e-6f);
    assert_int_equal(br_encoder_dim(enc), 512);
    size_t len;
    const char *p = br_encoder_piece(enc, 9, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(p, "\xe2\x96\x81the", 6);
    br_encoder_close(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_model_opens), cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_wrong_magic),      cmocka_unit_test(test_wrong_version),
        cmocka_unit_test(test_corrupt_byte),     cmocka_unit_test(test_bad_structure),
        cmocka_unit_test(test_missing_file),     cmocka_unit_test(test_model_path),
        cmocka_unit_test(test_real_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
