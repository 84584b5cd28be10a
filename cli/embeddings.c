/*
 * embeddings.c: book embeddings for the commands that embed a catalogue
 * (similar, recommend, eval, cluster, embed --books): from a .npy file, or
 * from the encoder through the shared embedding cache (bookrec/text.h,
 * br_embed_catalog_in), so a book embedded by one command is never
 * embedded again by another, nor by `train`.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char *cli_template_name(br_book_template t)
{
    return t == BR_TEXT_DESCRIPTION ? "description" : "full";
}

int cli_book_embeddings(const char *cmd, const br_catalog *cat, const cli_embed_options *o,
                        float **out, size_t *dim, size_t *embedded)
{
    *out = NULL;
    *dim = 0;
    if (embedded) *embedded = 0;
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
    const char *encoder = o->encoder ? o->encoder : "use-lite";
    br_encoder *enc = NULL;
    int rc = cli_open_encoder(cmd, encoder, o->model, o->max_length, &enc);
    if (rc != CLI_OK) return rc;
    /* The cache key names what makes the vectors: the encoder (or model
     * file) and a non-default token limit. */
    char key[4200], shared[4300] = "";
    if (o->max_length)
        snprintf(key, sizeof key, "%s#max-length=%zu", o->model ? o->model : encoder,
                 o->max_length);
    else
        snprintf(key, sizeof key, "%s", o->model ? o->model : encoder);
    int none = o->cache && !strcmp(o->cache, "none");
    br_embed_caches caches = {none ? NULL : o->cache, none ? "" : NULL};
    char dir[4096];
    br_status st = none ? BR_OK : br_embed_cache_dir(dir, sizeof dir);
    if (!st && !none && *dir) st = br_embed_cache_file(dir, key, shared, sizeof shared);
    *dim = br_encoder_dim(enc);
    float *emb = st ? NULL : br_aligned_alloc(nb * *dim * sizeof(float) + 64, BR_ALIGN);
    size_t n_emb = 0;
    uint64_t t0 = br_now_ns();
    if (!st && !emb) st = br_error(BR_ENOMEM, "embeddings");
    if (!st) st = br_embed_catalog_in(enc, key, cat, o->tmpl, &caches, emb, &n_emb);
    br_encoder_close(enc);
    if (st) {
        br_aligned_free(emb);
        return cli_fail(cmd, st);
    }
    if (!cli_quiet && (n_emb || cli_verbose)) {
        fprintf(stderr, "bookrec %s: embedded %zu of %zu books (%s text, %s) in %.1f s; cache: ",
                cmd, n_emb, nb, cli_template_name(o->tmpl), key,
                (double)(br_now_ns() - t0) / 1e9);
        if (o->cache && !none) fprintf(stderr, "%s and ", o->cache);
        fprintf(stderr, "%s\n", *shared ? shared : "none");
    }
    if (embedded) *embedded = n_emb;
    *out = emb;
    return CLI_OK;
}
