/*
 * fuzz_npy.c: libFuzzer target for the .npy reader (src/data/npy.c): the
 * input is the whole file, read keeping its dtype, read as float32 and
 * mapped as float32. An array accepted must have every element readable
 * (its first and last are touched) and the shape its ndim says.
 */
#include "fuzz_util.h"

#include "bookrec/npy.h"

static const char *path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static char p[PATH_MAX];
    path = fz_path(p, sizeof p, "in.npy");
    const char *dump = getenv("FUZZ_DUMP_SEEDS");
    if (dump) {
        static const float f[6] = {1, 2, 3, 4, 5, 6};
        static const int32_t i[3] = {-1, 0, 7};
        static const double d[2] = {0.5, -2};
        char sp[PATH_MAX + 16];
        snprintf(sp, sizeof sp, "%s/f32-2x3", dump);
        if (br_npy_write(sp, BR_DTYPE_F32, 2, 2, 3, f) != BR_OK) abort();
        snprintf(sp, sizeof sp, "%s/i32-3", dump);
        if (br_npy_write(sp, BR_DTYPE_I32, 1, 3, 1, i) != BR_OK) abort();
        snprintf(sp, sizeof sp, "%s/f64-2", dump);
        if (br_npy_write(sp, BR_DTYPE_F64, 1, 2, 1, d) != BR_OK) abort();
    }
    return 0;
}

static void check(const br_array *a)
{
    if (a->ndim < 1 || a->ndim > 2 || (a->ndim == 1 && a->cols != 1)) abort();
    size_t n = a->rows * a->cols;
    if (!n) return;
    size_t es = a->dtype == BR_DTYPE_F64 ? 8 : 4;
    volatile unsigned char sink = ((const unsigned char *)a->data)[0];
    sink ^= ((const unsigned char *)a->data)[n * es - 1];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write(path, data, size);
    br_array a;
    if (br_npy_read(path, -1, &a) == BR_OK) {
        check(&a);
        br_array_free(&a);
    }
    if (br_npy_read(path, BR_DTYPE_F32, &a) == BR_OK) {
        if (a.dtype != BR_DTYPE_F32) abort();
        check(&a);
        br_array_free(&a);
    }
    if (br_npy_map(path, BR_DTYPE_F32, &a) == BR_OK) {
        if (a.dtype != BR_DTYPE_F32) abort();
        check(&a);
        br_array_free(&a);
    }
    return 0;
}
