/*
 * fuzz_tribes.c: libFuzzer target for the tribes model (br_tribes_load,
 * src/content/tribes.c): a folder of tribes.json and five .npy files. A
 * valid small model (8 books, 4 dimensions, 2 tribes) is built at start;
 * each input replaces one of its files (first byte: which, fuzz_util.h's
 * fz_files). A model that loads must hold together: labels within k, every
 * book an id and a title, tribe members in range, and map a point.
 */
#include "fuzz_util.h"

static const char *const names[] = {"tribes.json", "labels.npy",    "centroids.npy",
                                    "pca2.npy",    "pca_basis.npy", "embeddings.npy"};
static fz_files files;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char p[PATH_MAX], tmpl[PATH_MAX];
    static const char csv[] = "book_id,title,genre,tags\n1,One,sf,a|b\n2,Two,sf,b\n3,Three,sf,c\n"
                              "4,Four,crime,d|a\n5,Five,crime,e\n6,Six,crime,f\n7,Seven,sf,g\n"
                              "8,\"Eight, \"\"8\"\"\",crime,h\n";
    fz_write(fz_path(p, sizeof p, "books.csv"), (const uint8_t *)csv, sizeof csv - 1);
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat;
    FZ_MUST(br_catalog_load(p, &lo, &cat, NULL));
    float emb[8 * 4];
    for (int i = 0; i < 8 * 4; i++)
        emb[i] = (float)(((i / 4) < 3 || (i / 4) == 6) ? 1 : -1) + 0.1f * (float)((i * 7) % 5);
    br_kmeans_options ko = BR_KMEANS_OPTIONS_DEFAULT;
    ko.k = 2;
    br_tribes *t;
    FZ_MUST(br_tribes_build(cat, emb, 8, 4, &ko, 1, &t));
    fz_path(tmpl, sizeof tmpl, "template");
    FZ_MUST(br_tribes_save(t, tmpl));
    br_tribes_free(t);
    br_catalog_free(cat);
    fz_files_init(&files, tmpl, "tribes", names, sizeof names / sizeof names[0]);
    fz_files_dump(tmpl, names, sizeof names / sizeof names[0], 1 << 16);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_files_put(&files, data, size);
    br_tribes *t;
    if (br_tribes_load(files.dir, &t) != BR_OK) return 0;
    for (size_t i = 0; i < t->n_books; i++) {
        if (t->labels[i] < 0 || (uint32_t)t->labels[i] >= t->k) abort();
        if (!t->book_ids[i] || !t->titles[i]) abort();
    }
    for (uint32_t c = 0; c < t->k; c++) {
        const br_tribe *tr = &t->tribe[c];
        if (strnlen(tr->name, BR_TRIBE_NAME_MAX) == BR_TRIBE_NAME_MAX) abort();
        if (tr->n_central > BR_TRIBE_CENTRAL) abort();
        for (uint32_t j = 0; j < tr->n_central; j++)
            if (tr->central[j] >= t->n_books) abort();
    }
    if (t->dim && t->dim <= 4096) {
        float *v = calloc(t->dim, sizeof *v), xy[2];
        if (!v) abort();
        (void)br_tribes_map_point(t, v, xy);
        free(v);
    }
    volatile float s = t->n_books ? t->pca2[2 * t->n_books - 1] : 0;
    (void)s;
    br_tribes_free(t);
    return 0;
}
