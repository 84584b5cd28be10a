/*
 * fuzz_manifest.c: libFuzzer target for a model version as the server
 * opens it (br_model_open, src/model/model.c): the manifest first, then
 * every file it is checked against (the catalogue copy, the embeddings,
 * the index, the tribes, the published lists, the readers, the derived
 * arrays). The seed universe is trained once (fuzz_util.h); each input
 * replaces one file of its version (first byte: which, in name order;
 * fz_files), the others stay valid; and the manifest text alone goes
 * through br_event_rules_from_manifest. A version that opens must have its
 * lists and its popularity order within the catalogue.
 */
#define FUZZ_WANT_MODEL
#include "fuzz_util.h"

#include <dirent.h>

static const char *names[64];
static size_t n_names;
static fz_files files;
static char root[PATH_MAX];

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *m = fz_model_dir();
    if (!m) return 0;
    char tmpl[PATH_MAX + 32], p[PATH_MAX + 32];
    snprintf(tmpl, sizeof tmpl, "%s/versions/v000001", m);
    DIR *d = opendir(tmpl);
    if (!d) abort();
    struct dirent *e;
    while ((e = readdir(d)) && n_names < 64)
        if (e->d_name[0] != '.') names[n_names++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n_names, sizeof *names, by_name);
    fz_path(root, sizeof root, "m");
    mkdir(root, 0777);
    snprintf(p, sizeof p, "%s/versions", root);
    mkdir(p, 0777);
    fz_files_init(&files, tmpl, "m/versions/v000001", names, n_names);
    fz_files_dump(tmpl, names, n_names, 1 << 16);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!n_names) return 0;
    if (size > 1 && strcmp(names[data[0] % n_names], "manifest.json") == 0) {
        char *text = strndup((const char *)data + 1, size - 1);
        if (!text) abort();
        br_event_rules r;
        if (br_event_rules_from_manifest(text, &r) == BR_OK && !(r.rating_min <= r.rating_max))
            abort();
        free(text);
    }
    fz_files_put(&files, data, size);
    br_model *m;
    if (br_model_open(root, "v000001", &m) != BR_OK) return 0;
    size_t nr;
    const char *const *readers = br_model_readers(m, &nr);
    for (size_t i = 0; i < nr; i++)
        if (!readers[i]) abort();
    uint32_t nb = br_model_books(m);
    const float *sc;
    size_t top;
    const int32_t *lists = br_model_lists(m, &sc, &top);
    for (size_t i = 0; lists && i < nr * top; i++)
        if (lists[i] < -1 || lists[i] >= (int32_t)nb) abort();
    const uint32_t *order = br_model_popular_order(m);
    for (uint32_t i = 0; order && i < nb; i++)
        if (order[i] >= nb) abort();
    (void)br_model_manifest(m);
    (void)br_model_map(m);
    br_model_close(m);
    return 0;
}
