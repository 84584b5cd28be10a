/*
 * fuzz_safetensors.c: libFuzzer target for the safetensors reader
 * (src/text/safetensors.c, the BERT encoder's weights): the input is the
 * whole file. A file accepted must have every tensor inside the mapping
 * with nbytes = count x dtype size, findable by its name, and convertible
 * to float32 when its dtype is one of the known ones.
 */
#include "fuzz_util.h"

#include "text/safetensors.h"

static const char *path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static char p[PATH_MAX];
    path = fz_path(p, sizeof p, "in.safetensors");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write(path, data, size);
    st_file *f;
    if (br__st_open(path, &f) != BR_OK) return 0;
    for (size_t i = 0; i < br__st_count(f); i++) {
        const st_tensor *t = br__st_tensor_at(f, i);
        if (!t || !t->name || t->ndim < 0 || t->ndim > ST_MAX_DIMS) abort();
        if (br__st_find(f, t->name) == NULL) abort();
        if (t->dtype != ST_OTHER && t->nbytes != t->count * br__st_dtype_size(t->dtype)) abort();
        if (t->nbytes > br__st_file_bytes(f)) abort();
        if (t->nbytes) {
            volatile unsigned char sink = ((const unsigned char *)t->data)[0];
            sink ^= ((const unsigned char *)t->data)[t->nbytes - 1];
            (void)sink;
        }
        if (t->dtype != ST_OTHER && t->count <= (1u << 16)) {
            float *dst = malloc((t->count ? t->count : 1) * sizeof *dst);
            if (!dst) abort();
            (void)br__st_to_f32(t, dst);
            free(dst);
        }
        (void)br__st_f32_view(t);
    }
    br__st_close(f);
    return 0;
}
