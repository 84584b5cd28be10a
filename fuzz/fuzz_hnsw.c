/*
 * fuzz_hnsw.c: libFuzzer target for the vector index's file
 * (br_hnsw_load, src/content/hnsw.c): the input is the whole file. An
 * index that loads must answer a search with ids in range (or -1) and
 * take one more vector.
 */
#include "fuzz_util.h"

static const char *path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static char p[PATH_MAX];
    path = fz_path(p, sizeof p, "index.hnsw");
    const char *dump = getenv("FUZZ_DUMP_SEEDS");
    if (dump) { /* 24 vectors of 4 dimensions, one removed */
        br_hnsw *h;
        br_hnsw_options ho = BR_HNSW_OPTIONS_DEFAULT;
        float v[24 * 4];
        for (int i = 0; i < 24 * 4; i++) v[i] = (float)((i * 37) % 11) - 5.0f;
        if (br_hnsw_create(4, &ho, &h) != BR_OK || br_hnsw_add_batch(h, v, 24, NULL) != BR_OK ||
            br_hnsw_remove(h, 3) != BR_OK)
            abort();
        char sp[PATH_MAX + 16];
        snprintf(sp, sizeof sp, "%s/small", dump);
        if (br_hnsw_save(h, sp) != BR_OK) abort();
        br_hnsw_free(h);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write(path, data, size);
    br_hnsw *h;
    if (br_hnsw_load(path, &h) != BR_OK) return 0;
    size_t dim = br_hnsw_dim(h), count = br_hnsw_count(h);
    if (dim && dim <= 4096) {
        float *q = calloc(dim, sizeof *q);
        if (!q) abort();
        for (size_t i = 0; i < dim; i++) q[i] = (float)(i % 3) - 1.0f;
        int32_t ids[5];
        float sc[5];
        size_t found;
        if (br_hnsw_search(h, q, 5, 16, ids, sc, &found) == BR_OK) {
            if (found > 5) abort();
            for (size_t i = 0; i < 5; i++)
                if (ids[i] < -1 || (ids[i] >= 0 && (size_t)ids[i] >= count)) abort();
        }
        uint32_t id;
        if (br_hnsw_add(h, q, &id) == BR_OK && id != count) abort();
        free(q);
    }
    br_hnsw_free(h);
    return 0;
}
