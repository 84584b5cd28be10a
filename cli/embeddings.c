/*
 * embeddings.c: book embeddings for the commands that rank with the
 * content engine (eval, recommend): from a .npy file, or from the encoder
 * through the shared embedding cache (bookrec/hybrid.h, br_embed_catalog),
 * so only books whose text changed are ever embedded again.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_book_embeddings(const char *cmd, const br_catalog *cat, const cli_embed_options *o,
                        float **out, size_t *dim)
{
    *out = NULL;
    *dim = 0;
    size_t nb = br_catalog_count(cat);
    if (o->npy) {
        br_array a;
        br_status st = br_npy_read(o->npy, BR_DTYPE_F32, &a);
        if (st) return cli_fail(cmd, st);
        if (a.rows != nb) {
            br_array_free(&a);
            return cli_fail(cmd, br_error(BR_EINVAL, "%s: %zu rows, the catalogue has %zu books",
                                          o->npy, a.rows, nb));
        }
        *dim = a.cols;
        *out = a.data; /* br_aligned_alloc'd: release with br_aligned_free */
        return CLI_OK;
    }
    char path[4096], cache[4096];
    const char *model = o->encoder;
    br_status st = BR_OK;
    if (!model || !strcmp(model, "use-lite")) {
        st = br_encoder_model_path("use-lite", path, sizeof path);
        model = path;
    }
    br_encoder *enc = NULL;
    if (!st) st = br_encoder_open(model, &enc);
    if (st) return cli_fail(cmd, st);
    const char *cache_path = NULL;
    if (!o->cache) {
        if ((st = br_embed_cache_path(cache, sizeof cache))) {
            br_encoder_close(enc);
            return cli_fail(cmd, st);
        }
        cache_path = cache;
    } else if (strcmp(o->cache, "none") != 0) cache_path = o->cache;
    *dim = br_encoder_dim(enc);
    float *emb = br_aligned_alloc(nb * *dim * sizeof(float) + 64, BR_ALIGN);
    size_t embedded = 0;
    uint64_t t0 = br_now_ns();
    if (!emb) st = br_error(BR_ENOMEM, "embeddings");
    else
        st = br_embed_catalog(enc, o->encoder ? o->encoder : "use-lite", cat, o->tmpl, cache_path,
                              emb, &embedded);
    br_encoder_close(enc);
    if (st) {
        br_aligned_free(emb);
        return cli_fail(cmd, st);
    }
    if (embedded && !cli_quiet)
        fprintf(stderr, "bookrec %s: embedded %zu of %zu books in %.1f s (cached in %s)\n", cmd,
                embedded, nb, (double)(br_now_ns() - t0) / 1e9,
                cache_path ? cache_path : "nowhere");
    *out = emb;
    return CLI_OK;
}
