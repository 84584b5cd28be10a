/*
 * test_npy.c: .npy reading and writing: round trips, numpy's own header
 * forms (int64, 1-D, version 2), conversions, and every refusal.
 */
#include <stdio.h>
#include <string.h>

#include "testutil.h"

static char *tmp;

static int setup(void **state)
{
    (void)state;
    tmp = tu_tmpdir("test_npy");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    br_free(tmp);
    return 0;
}

static char *path_of(const char *name)
{
    char *p = br_malloc(4096);
    snprintf(p, 4096, "%s/%s", tmp, name);
    return p;
}

/* Writes a raw .npy file with the given version, header dict and payload. */
static char *write_raw(const char *name, int version, const char *dict, const void *data,
                       size_t bytes)
{
    char *p = path_of(name);
    FILE *f = fopen(p, "wb");
    size_t pre = version == 1 ? 10 : 12;
    size_t hlen = strlen(dict) + 1;
    size_t pad = (64 - (pre + hlen) % 64) % 64;
    hlen += pad;
    fwrite("\x93NUMPY", 1, 6, f);
    unsigned char v[2] = {(unsigned char)version, 0};
    fwrite(v, 1, 2, f);
    unsigned char l[4] = {(unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8), 0, 0};
    fwrite(l, 1, version == 1 ? 2 : 4, f);
    fwrite(dict, 1, strlen(dict), f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 1, bytes, f);
    fclose(f);
    return p;
}

static void test_roundtrip_2d_and_1d(void **state)
{
    (void)state;
    float m[6] = {1, 2, 3, 4, 5, 6.5f};
    char *p = path_of("m.npy");
    assert_int_equal(br_npy_write(p, BR_DTYPE_F32, 2, 2, 3, m), BR_OK);
    size_t len;
    char *raw = tu_read_file(p, &len);
    assert_int_equal((len - 24) % 64, 0); /* header padded to 64 */
    assert_non_null(strstr(raw + 10, "'shape': (2, 3)"));
    br_free(raw);
    br_array a;
    assert_int_equal(br_npy_read(p, -1, &a), BR_OK);
    assert_int_equal(a.dtype, BR_DTYPE_F32);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.rows, 2);
    assert_int_equal(a.cols, 3);
    assert_memory_equal(a.data, m, sizeof m);
    assert_int_equal((uintptr_t)a.data % BR_ALIGN, 0);
    br_array_free(&a);
    /* as float64 */
    assert_int_equal(br_npy_read(p, BR_DTYPE_F64, &a), BR_OK);
    assert_true(((double *)a.data)[5] == 6.5);
    br_array_free(&a);

    int32_t ids[4] = {3, -1, 7, 2147483647};
    assert_int_equal(br_npy_write(p, BR_DTYPE_I32, 1, 4, 0, ids), BR_OK);
    assert_int_equal(br_npy_read(p, BR_DTYPE_I32, &a), BR_OK);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.rows, 4);
    assert_int_equal(a.cols, 1);
    assert_memory_equal(a.data, ids, sizeof ids);
    br_array_free(&a);

    /* an empty (0, 512) array is valid */
    assert_int_equal(br_npy_write(p, BR_DTYPE_F32, 2, 0, 512, NULL), BR_OK);
    assert_int_equal(br_npy_read(p, -1, &a), BR_OK);
    assert_int_equal(a.rows, 0);
    assert_int_equal(a.cols, 512);
    br_array_free(&a);
    br_free(p);
}

static void test_numpy_header_forms(void **state)
{
    (void)state;
    int64_t v64[3] = {1, 2, 3};
    char *p = write_raw("i8.npy", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
                        v64, sizeof v64);
    br_array a;
    assert_int_equal(br_npy_read(p, -1, &a), BR_OK);
    assert_int_equal(a.dtype, BR_DTYPE_I32);
    assert_int_equal(((int32_t *)a.data)[2], 3);
    br_array_free(&a);
    br_free(p);

    double d[2] = {0.25, -1};
    p = write_raw("v2.npy", 2, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }", d,
                  sizeof d);
    assert_int_equal(br_npy_read(p, BR_DTYPE_F32, &a), BR_OK);
    assert_true(((float *)a.data)[0] == 0.25f && ((float *)a.data)[1] == -1.0f);
    br_array_free(&a);
    br_free(p);
}

static void test_refusals(void **state)
{
    (void)state;
    br_array a;
    float f[4] = {0};
    int64_t big = 1LL << 40;
    double huge = 1e300;
    struct {
        const char *name, *dict;
        const void *data;
        size_t bytes;
        br_status st;
        const char *detail;
    } cases[] = {
        {"fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", f, 16,
         BR_EFORMAT, "Fortran-ordered"},
        {"3d.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2), }", f, 16,
         BR_EFORMAT, "3 or more dimensions"},
        {"be.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", f, 16,
         BR_EFORMAT, "dtype '>f4' is not supported"},
        {"short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (8,), }", f, 16,
         BR_EFORMAT, "truncated npy data"},
        {"noshape.npy", "{'descr': '<f4', 'fortran_order': False, }", f, 16, BR_EFORMAT,
         "no 'shape'"},
        {"big.npy", "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", &big, 8,
         BR_ERANGE, "does not fit in int32"},
        /* the header is not trusted: a shape the file cannot hold is refused
         * before anything is allocated for it (not an out-of-memory) */
        {"vast.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000), }",
         f, 16, BR_EFORMAT, "truncated npy data"},
        {"minus.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", f, 16,
         BR_EFORMAT, "bad npy shape"},
        {"nocomma.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2 2), }", f, 16,
         BR_EFORMAT, "bad npy shape"},
        {"notdict.npy", "'descr': '<f4', 'fortran_order': False, 'shape': (4,), ", f, 16,
         BR_EFORMAT, "not a dictionary"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *p = write_raw(cases[i].name, 1, cases[i].dict, cases[i].data, cases[i].bytes);
        br_status st = br_npy_read(p, -1, &a);
        if (st != cases[i].st || !strstr(br_error_detail(), cases[i].detail))
            fail_msg("%s: got %d '%s'", cases[i].name, st, br_error_detail());
        assert_null(a.data);
        br_free(p);
    }
    char *p = write_raw("f.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
                        f, 16);
    assert_status_detail(br_npy_read(p, BR_DTYPE_I32, &a), BR_EFORMAT, "cannot be read as <i4");
    br_free(p);
    /* a double beyond float's range read as float32: refused, not cast */
    p = write_raw("f8huge.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
                  &huge, 8);
    assert_status_detail(br_npy_read(p, BR_DTYPE_F32, &a), BR_ERANGE, "does not fit in float32");
    assert_null(a.data);
    br_free(p);
    p = tu_write_file(tmp, "text.npy", "hello, not numpy");
    assert_status_detail(br_npy_read(p, -1, &a), BR_EFORMAT, "bad magic");
    br_free(p);
    assert_status_detail(br_npy_read("/nonexistent.npy", -1, &a), BR_EIO, "cannot open");
    assert_status_detail(br_npy_write("/nonexistent/x.npy", BR_DTYPE_F32, 1, 4, 1, f), BR_EIO,
                         "cannot create");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_2d_and_1d),
        cmocka_unit_test(test_numpy_header_forms),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
