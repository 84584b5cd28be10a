/*
 * testutil.c: see testutil.h.
 */
#include "testutil.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = br_malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

char *tu_data_path(const char *name)
{
    return join(BR_TEST_DATA_DIR, name);
}

char *tu_shared_path(const char *name)
{
    char *p = join(BR_SHARED_DIR, name);
    if (access(p, R_OK) != 0) {
        printf("[  SKIP    ] %s is absent (no ../shared beside the repository): "
               "test skipped\n",
               p);
        br_free(p);
        return NULL;
    }
    return p;
}

static void mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(buf, 0755);
            *s = '/';
        }
    mkdir(buf, 0755);
}

static void rm_rf(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not clean %s\n", path);
}

char *tu_tmpdir(const char *tag)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%ld", tag, (long)getpid());
    char *p = join(BR_TEST_TMP_DIR, name);
    rm_rf(p);
    mkdir_p(p);
    return p;
}

char *tu_write_file(const char *dir, const char *name, const char *text)
{
    char *p = join(dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return p;
}

br_catalog *tu_catalog(const char *tag, const char *csv)
{
    char *dir = tu_tmpdir(tag);
    char *path = tu_write_file(dir, "books.csv", csv);
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat = NULL;
    br_status st = br_catalog_load(path, &lo, &cat, NULL);
    if (st) fprintf(stderr, "%s\n", br_error_detail());
    assert_int_equal(st, BR_OK);
    free(path);
    free(dir);
    return cat;
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = br_malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        br_free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

/* The embedding cache of docs/formats.md from the golden USE-lite vectors
 * of the seed universe's descriptions. */
typedef struct crec {
    uint64_t h;
    uint32_t n;
    float v[512];
} crec;

static int by_key(const void *a, const void *b)
{
    const crec *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return (x->n > y->n) - (x->n < y->n);
}

int tu_seed_embed_cache(const char *path)
{
    json_error_t err;
    json_t *d = json_load_file(BR_GOLDEN_DIR "/use-lite/seed_descriptions.json", 0, &err);
    if (!d) return -1;
    size_t n = json_array_size(d), m = 0;
    crec *r = calloc(n ? n : 1, sizeof *r);
    if (!r) {
        json_decref(d);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(d, i);
        const char *t = json_string_value(json_object_get(e, "text"));
        json_t *v = json_object_get(e, "embedding");
        if (!t || json_array_size(v) != 512) continue;
        r[m].h = br_fnv1a64(t, strlen(t));
        r[m].n = (uint32_t)strlen(t);
        for (size_t j = 0; j < 512; j++) r[m].v[j] = (float)json_number_value(json_array_get(v, j));
        m++;
    }
    json_decref(d);
    qsort(r, m, sizeof *r, by_key);
    size_t u = 0;
    for (size_t i = 0; i < m; i++)
        if (!u || r[i].h != r[u - 1].h || r[i].n != r[u - 1].n) r[u++] = r[i];
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(r);
        return -1;
    }
    uint32_t hdr[3] = {1, 512, 8};
    uint64_t count = u;
    fwrite("BREMBCAC", 1, 8, f);
    fwrite(hdr, 4, 3, f);
    fwrite("use-lite", 1, 8, f);
    fwrite(&count, 8, 1, f);
    for (size_t i = 0; i < u; i++) {
        uint32_t z = 0;
        fwrite(&r[i].h, 8, 1, f);
        fwrite(&r[i].n, 4, 1, f);
        fwrite(&z, 4, 1, f);
        fwrite(r[i].v, 4, 512, f);
    }
    free(r);
    return fclose(f) == 0 && m == n ? 0 : -1;
}

br_train_options tu_seed_train_options(const char *books, const char *ratings,
                                       const char *model_dir)
{
    br_train_options o = BR_TRAIN_OPTIONS_DEFAULT;
    o.books = books;
    o.ratings = ratings;
    o.model_dir = model_dir;
    o.text = BR_TEXT_DESCRIPTION;
    o.clusters = 4;
    o.iterations = 3;
    o.factors = 16;
    o.top_n = 20;
    return o;
}

int tu_have_use_lite(void)
{
    char enc[PATH_MAX];
    return br_encoder_model_path("use-lite", enc, sizeof enc) == BR_OK && access(enc, R_OK) == 0;
}

int tu_train_seed(const char *seed_dir, const char *model_dir)
{
    char books[PATH_MAX + 16], ratings[PATH_MAX + 16], cache[PATH_MAX + 32];
    mkdir(seed_dir, 0777);
    mkdir(model_dir, 0777);
    br_generate_options go = BR_GENERATE_OPTIONS_DEFAULT;
    go.rng = BR_GEN_NUMPY;
    if (br_generate(&go, seed_dir, NULL) != BR_OK) return -1;
    snprintf(books, sizeof books, "%s/books.csv", seed_dir);
    snprintf(ratings, sizeof ratings, "%s/ratings.csv", seed_dir);
    snprintf(cache, sizeof cache, "%s/embeddings.brec", model_dir);
    if (tu_seed_embed_cache(cache) != 0) {
        br_error(BR_EIO, "%s: cannot write the seed embedding cache", cache);
        return -1;
    }
    br_train_options o = tu_seed_train_options(books, ratings, model_dir);
    br_train_report rep;
    if (br_train_run(&o, &rep) != BR_OK) return -1;
    if (rep.embedded != 0) {
        br_error(BR_EINVAL, "the seed cache missed %zu descriptions", (size_t)rep.embedded);
        return -1;
    }
    return 0;
}

void tu_embed_cache_onehot(const char *dir, const char *books)
{
    br_catalog *cat;
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    assert_int_equal(br_catalog_load(books, &lo, &cat, NULL), BR_OK);
    char *path = join(dir, "embeddings.brec");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint32_t head[3] = {1, 512, 8};
    uint64_t n = br_catalog_count(cat);
    assert_true(n <= 512);
    fwrite("BREMBCAC", 1, 8, f);
    fwrite(head, 4, 3, f);
    fwrite("use-lite", 1, 8, f);
    fwrite(&n, 8, 1, f);
    for (uint32_t i = 0; i < n; i++) {
        char *text;
        assert_int_equal(br_book_text(br_catalog_book(cat, i), BR_TEXT_FULL, &text), BR_OK);
        uint64_t h = br_fnv1a64(text, strlen(text));
        uint32_t rec[2] = {(uint32_t)strlen(text), 0};
        float v[512] = {0};
        v[i] = 1;
        fwrite(&h, 8, 1, f);
        fwrite(rec, 4, 2, f);
        fwrite(v, 4, 512, f);
        br_free(text);
    }
    assert_int_equal(fclose(f), 0);
    br_catalog_free(cat);
    free(path);
}
