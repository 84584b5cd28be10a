/*
 * tribes.c: book tribes: k-means on the catalogue's embeddings, a name per
 * cluster (its genre, or its most distinctive tags), its most central books,
 * the 2-D PCA picture, and the model directory they are saved in.
 *
 * Model directory (docs/formats.md, "Tribes model"): labels.npy,
 * centroids.npy, pca2.npy, pca_basis.npy (the PCA behind pca2: mean and
 * components), optionally embeddings.npy, and tribes.json, the
 * manifest, written last: a reader that finds the manifest finds complete
 * arrays. Every file goes through a temporary file, fsync and rename.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bookrec/npy.h"
#include "content/internal.h"
#include "content/vec.h"
#include "core/afile.h"
#include "core/topk.h"

#define TRIBES_FORMAT "bookrec-tribes"
#define TRIBES_VERSION 1

void br_tribes_free(br_tribes *t)
{
    if (!t) return;
    br_free(t->labels);
    br_aligned_free(t->centroids);
    br_free(t->tribe);
    br_free(t->pca2);
    br_aligned_free(t->pca_basis);
    br_aligned_free(t->embeddings);
    if (t->book_ids)
        for (size_t i = 0; i < t->n_books; i++) br_free(t->book_ids[i]);
    if (t->titles)
        for (size_t i = 0; i < t->n_books; i++) br_free(t->titles[i]);
    br_free(t->book_ids);
    br_free(t->titles);
    br_free(t);
}

/* --------------------------------------------------------------- naming -- */

typedef struct counter {
    br_idmap *names;
    uint32_t *count; /* per name */
    size_t cap;
} counter;

static br_status counter_add(counter *c, const char *s, size_t len)
{
    uint32_t idx;
    br_status st = br_idmap_intern(c->names, s, len, &idx, NULL);
    if (st != BR_OK) return st;
    if (idx >= c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 64;
        while (nc <= idx) nc *= 2;
        uint32_t *n = br_realloc(c->count, nc * sizeof(uint32_t));
        if (!n) return br_error(BR_ENOMEM, "tribes: out of memory");
        memset(n + c->cap, 0, (nc - c->cap) * sizeof(uint32_t));
        c->count = n;
        c->cap = nc;
    }
    c->count[idx]++;
    return BR_OK;
}

/* Calls fn on each trimmed, non-empty tag of a pipe-separated list. */
static br_status each_tag(const char *tags, br_status (*fn)(void *, const char *, size_t),
                          void *arg)
{
    const char *p = tags;
    while (*p) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *s = p;
        size_t l = len;
        while (l && (*s == ' ')) s++, l--;
        while (l && s[l - 1] == ' ') l--;
        if (l) {
            br_status st = fn(arg, s, l);
            if (st != BR_OK) return st;
        }
        p += len + (e ? 1 : 0);
        if (!e) break;
    }
    return BR_OK;
}

static br_status add_cb(void *arg, const char *s, size_t len)
{
    return counter_add(arg, s, len);
}

typedef struct has_arg {
    const char *name;
    int found;
} has_arg;

static br_status has_cb(void *arg, const char *s, size_t len)
{
    has_arg *h = arg;
    if (strlen(h->name) == len && memcmp(h->name, s, len) == 0) h->found = 1;
    return BR_OK;
}

static br_status name_tribes(br_tribes *t, const br_catalog *cat)
{
    size_t n = t->n_books;
    int by_genre = (br_catalog_columns(cat) & BR_COL_GENRE) != 0;
    t->named_by_tags = !by_genre;
    counter all = {0};
    br_status st = br_idmap_create(&all.names);
    /* catalogue-wide tag counts: the "document frequency" of tf-idf */
    for (size_t i = 0; i < n && st == BR_OK && !by_genre; i++)
        st = each_tag(br_catalog_book(cat, (uint32_t)i)->tags, add_cb, &all);
    for (uint32_t j = 0; j < t->k && st == BR_OK; j++) {
        br_tribe *tr = &t->tribe[j];
        counter c = {0};
        st = br_idmap_create(&c.names);
        for (size_t i = 0; i < n && st == BR_OK; i++) {
            if (t->labels[i] != (int32_t)j) continue;
            const br_book *b = br_catalog_book(cat, (uint32_t)i);
            if (by_genre) {
                if (b->genre[0]) st = counter_add(&c, b->genre, strlen(b->genre));
            } else {
                st = each_tag(b->tags, add_cb, &c);
            }
        }
        uint32_t m = st == BR_OK ? br_idmap_count(c.names) : 0;
        int64_t best = -1, second = -1;
        double bs = -1, ss = -1;
        for (uint32_t x = 0; x < m; x++) {
            double score = c.count[x];
            if (!by_genre) {
                const char *nm = br_idmap_name(c.names, x);
                int64_t g = br_idmap_find(all.names, nm, strlen(nm));
                double df = g >= 0 ? all.count[g] : 1;
                score = c.count[x] * log((double)n / df);
            }
            if (score > bs) {
                ss = bs;
                second = best;
                bs = score;
                best = x;
            } else if (score > ss) {
                ss = score;
                second = x;
            }
        }
        if (best < 0) {
            snprintf(tr->name, sizeof tr->name, "tribe %u", j + 1);
            tr->purity = 0;
        } else {
            const char *a = br_idmap_name(c.names, (uint32_t)best);
            if (!by_genre && second >= 0)
                snprintf(tr->name, sizeof tr->name, "%s / %s", a,
                         br_idmap_name(c.names, (uint32_t)second));
            else
                snprintf(tr->name, sizeof tr->name, "%s", a);
            /* purity: members carrying the naming genre / first tag */
            uint32_t carry = 0;
            for (size_t i = 0; i < n; i++) {
                if (t->labels[i] != (int32_t)j) continue;
                const br_book *b = br_catalog_book(cat, (uint32_t)i);
                if (by_genre) {
                    carry += strcmp(b->genre, a) == 0;
                } else {
                    has_arg h = {a, 0};
                    each_tag(b->tags, has_cb, &h);
                    carry += h.found;
                }
            }
            tr->purity = tr->size ? (float)carry / (float)tr->size : 0;
        }
        br_idmap_free(c.names);
        br_free(c.count);
    }
    br_idmap_free(all.names);
    br_free(all.count);
    /* a repeated name gets " (2)", " (3)", ... */
    for (uint32_t j = 1; j < t->k && st == BR_OK; j++) {
        int dup = 1;
        for (uint32_t i = 0; i < j; i++)
            if (strncmp(t->tribe[i].name, t->tribe[j].name, strlen(t->tribe[j].name)) == 0 &&
                (t->tribe[i].name[strlen(t->tribe[j].name)] == '\0' ||
                 t->tribe[i].name[strlen(t->tribe[j].name)] == ' '))
                dup++;
        if (dup > 1) {
            char suffix[24];
            int sl = snprintf(suffix, sizeof suffix, " (%d)", dup);
            size_t l = strlen(t->tribe[j].name);
            if (l + (size_t)sl >= sizeof t->tribe[j].name) l = sizeof t->tribe[j].name - 1 - sl;
            memcpy(t->tribe[j].name + l, suffix, (size_t)sl + 1);
        }
    }
    return st;
}

/* ---------------------------------------------------------------- build -- */

static br_status copy_strings(br_tribes *t, const br_catalog *cat)
{
    t->book_ids = br_calloc(t->n_books, sizeof(char *));
    t->titles = br_calloc(t->n_books, sizeof(char *));
    if (!t->book_ids || !t->titles) return br_error(BR_ENOMEM, "tribes: out of memory");
    for (size_t i = 0; i < t->n_books; i++) {
        const br_book *b = br_catalog_book(cat, (uint32_t)i);
        t->book_ids[i] = br_strdup(b->id);
        t->titles[i] = br_strdup(b->title);
        if (!t->book_ids[i] || !t->titles[i]) return br_error(BR_ENOMEM, "tribes: out of memory");
    }
    return BR_OK;
}

/* Each tribe's books closest to its centre, closest first (ties: the
 * lower book): the top-k of minus the squared distance. */
static void rank_central(br_tribes *t, const float *emb)
{
    for (uint32_t j = 0; j < t->k; j++) {
        br_tribe *tr = &t->tribe[j];
        float neg_d[BR_TRIBE_CENTRAL];
        br__topk h = {BR_TRIBE_CENTRAL, 0, neg_d, tr->central};
        for (size_t i = 0; i < t->n_books; i++) {
            if (t->labels[i] != (int32_t)j) continue;
            float d = br__cv_l2sq(emb + i * t->dim, t->centroids + (size_t)j * t->dim, t->dim);
            br__topk_push(&h, -d, (uint32_t)i);
        }
        tr->n_central = br__topk_sort(&h, 0);
    }
}

br_status br_tribes_build(const br_catalog *cat, const float *emb, size_t n, size_t dim,
                          const br_kmeans_options *opt, int keep_embeddings, br_tribes **out)
{
    if (!cat || !emb || !out) return br_error(BR_EINVAL, "tribes: bad arguments");
    *out = NULL;
    if (n != br_catalog_count(cat))
        return br_error(BR_EINVAL, "tribes: %zu embeddings for %u books", n, br_catalog_count(cat));
    br_tribes *t = br_calloc(1, sizeof *t);
    if (!t) return br_error(BR_ENOMEM, "tribes: out of memory");
    br_kmeans_result km;
    br_status st = br_kmeans_fit(emb, n, dim, opt, &km);
    if (st != BR_OK) {
        br_free(t);
        return st;
    }
    t->k = km.k;
    t->n_books = n;
    t->dim = dim;
    t->labels = km.labels;
    t->centroids = km.centroids;
    t->inertia = km.inertia;
    t->iterations = km.iterations;
    t->tribe = br_calloc(t->k, sizeof(br_tribe));
    t->pca2 = br_malloc(n * 2 * sizeof(float));
    if (!t->tribe || !t->pca2) st = br_error(BR_ENOMEM, "tribes: out of memory");
    for (size_t i = 0; st == BR_OK && i < n; i++) t->tribe[t->labels[i]].size++;
    if (st == BR_OK) st = name_tribes(t, cat);
    if (st == BR_OK) rank_central(t, emb);
    if (st == BR_OK) {
        br_pca p;
        if (n >= 2 && dim >= 2) {
            st = br_pca_fit(emb, n, dim, 2, &p);
            if (st == BR_OK) st = br_pca_transform(&p, emb, n, t->pca2);
            if (st == BR_OK) {
                t->evr[0] = p.explained_variance_ratio[0];
                t->evr[1] = p.explained_variance_ratio[1];
                t->pca_basis = br_aligned_alloc(3 * dim * sizeof(float), BR_ALIGN);
                if (!t->pca_basis) st = br_error(BR_ENOMEM, "tribes: out of memory");
            }
            if (st == BR_OK) {
                memcpy(t->pca_basis, p.mean, dim * sizeof(float));
                memcpy(t->pca_basis + dim, p.components, 2 * dim * sizeof(float));
            }
            br_pca_free(&p);
        } else {
            memset(t->pca2, 0, n * 2 * sizeof(float));
        }
    }
    if (st == BR_OK) st = copy_strings(t, cat);
    if (st == BR_OK && keep_embeddings) {
        t->embeddings = br_aligned_alloc(n * dim * sizeof(float), BR_ALIGN);
        if (!t->embeddings) st = br_error(BR_ENOMEM, "tribes: out of memory");
        else memcpy(t->embeddings, emb, n * dim * sizeof(float));
    }
    if (st != BR_OK) {
        br_tribes_free(t);
        return st;
    }
    *out = t;
    return BR_OK;
}

/* ------------------------------------------------------------- save/load -- */

static br_status write_json_atomic(json_t *doc, const char *path)
{
    char *text = json_dumps(doc, JSON_INDENT(1) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10));
    if (!text) return br_error(BR_ENOMEM, "tribes: cannot format the manifest");
    br__afile a;
    br_status st = br__afile_open(&a, path);
    if (st == BR_OK) {
        fputs(text, a.f);
        fputc('\n', a.f);
        st = br__afile_commit(&a); /* checks the writes */
    }
    free(text);
    return st;
}

br_status br_tribes_map_point(const br_tribes *t, const float *vec, float xy[2])
{
    if (!t->pca_basis) return br_error(BR_ENOTFOUND, "tribes: no PCA basis kept with this model");
    /* the transform the picture was made with, on a view of the basis */
    br_pca view = {.dim = t->dim,
                   .n_components = 2,
                   .mean = t->pca_basis,
                   .components = t->pca_basis + t->dim};
    return br_pca_transform(&view, vec, 1, xy);
}

br_status br_tribes_save(const br_tribes *t, const char *dir)
{
    if (!t || !dir) return br_error(BR_EINVAL, "tribes_save: bad arguments");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return br_error(BR_EIO, "%s: cannot create the model directory: %s", dir, strerror(errno));
    char path[4096];
    br_status st;
#define PATH(name) (snprintf(path, sizeof path, "%s/%s", dir, name), path)
    st = br_npy_write(PATH("labels.npy"), BR_DTYPE_I32, 1, t->n_books, 1, t->labels);
    if (st == BR_OK)
        st = br_npy_write(PATH("centroids.npy"), BR_DTYPE_F32, 2, t->k, t->dim, t->centroids);
    if (st == BR_OK) st = br_npy_write(PATH("pca2.npy"), BR_DTYPE_F32, 2, t->n_books, 2, t->pca2);
    if (st == BR_OK && t->pca_basis)
        st = br_npy_write(PATH("pca_basis.npy"), BR_DTYPE_F32, 2, 3, t->dim, t->pca_basis);
    if (st == BR_OK && t->embeddings)
        st = br_npy_write(PATH("embeddings.npy"), BR_DTYPE_F32, 2, t->n_books, t->dim,
                          t->embeddings);
    else if (st == BR_OK)
        unlink(PATH("embeddings.npy")); /* a stale one would not match */
    if (st != BR_OK) return st;
    json_t *doc = json_object(), *tribes = json_array(), *books = json_array();
    for (uint32_t j = 0; j < t->k; j++) {
        const br_tribe *tr = &t->tribe[j];
        json_t *central = json_array();
        for (uint32_t c = 0; c < tr->n_central; c++)
            json_array_append_new(central, json_integer(tr->central[c]));
        json_array_append_new(tribes, json_pack("{s:s, s:I, s:f, s:o}", "name", tr->name, "size",
                                                (json_int_t)tr->size, "purity",
                                                (double)tr->purity, "central", central));
    }
    for (size_t i = 0; i < t->n_books; i++)
        json_array_append_new(books, json_pack("[s, s]", t->book_ids[i], t->titles[i]));
    json_object_set_new(doc, "format", json_string(TRIBES_FORMAT));
    json_object_set_new(doc, "version", json_integer(TRIBES_VERSION));
    json_object_set_new(doc, "k", json_integer(t->k));
    json_object_set_new(doc, "n_books", json_integer((json_int_t)t->n_books));
    json_object_set_new(doc, "dim", json_integer((json_int_t)t->dim));
    json_object_set_new(doc, "inertia", json_real(t->inertia));
    json_object_set_new(doc, "iterations", json_integer(t->iterations));
    json_object_set_new(doc, "named_by", json_string(t->named_by_tags ? "tags" : "genre"));
    json_object_set_new(doc, "pca_explained_variance_ratio",
                        json_pack("[f, f]", t->evr[0], t->evr[1]));
    json_object_set_new(doc, "embeddings", json_boolean(t->embeddings != NULL));
    json_object_set_new(doc, "tribes", tribes);
    json_object_set_new(doc, "books", books);
    st = write_json_atomic(doc, PATH("tribes.json"));
    json_decref(doc);
    return st;
#undef PATH
}

static br_status read_arr(const char *dir, const char *name, int want, size_t rows, size_t cols,
                          br_array *a)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    br_status st = br_npy_read(path, want, a);
    if (st != BR_OK) return st;
    if (a->rows != rows || a->cols != cols) {
        br_array_free(a);
        return br_error(BR_EFORMAT, "%s: shape (%zu, %zu), the manifest says (%zu, %zu)", path,
                        a->rows, a->cols, rows, cols);
    }
    return BR_OK;
}

br_status br_tribes_load(const char *dir, br_tribes **out)
{
    if (!dir || !out) return br_error(BR_EINVAL, "tribes_load: bad arguments");
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/tribes.json", dir);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc) {
        if (access(path, F_OK) != 0)
            return br_error(BR_ENOTFOUND, "%s: no tribes model here (run bookrec cluster)", path);
        return br_error(BR_EFORMAT, "%s:%d: %s", path, jerr.line, jerr.text);
    }
    const char *format = NULL, *named = NULL;
    json_int_t version = 0, k = 0, n = 0, dim = 0, iters = 0;
    double inertia = 0, e0 = 0, e1 = 0;
    int has_emb = 0;
    json_t *tribes = NULL, *books = NULL;
    if (json_unpack_ex(doc, &jerr, 0,
                       "{s:s, s:I, s:I, s:I, s:I, s:F, s:I, s:s, s:[FF], s:b, s:o, s:o}", "format",
                       &format, "version", &version, "k", &k, "n_books", &n, "dim", &dim,
                       "inertia", &inertia, "iterations", &iters, "named_by", &named,
                       "pca_explained_variance_ratio", &e0, &e1, "embeddings", &has_emb, "tribes",
                       &tribes, "books", &books) != 0) {
        json_decref(doc);
        return br_error(BR_EFORMAT, "%s: not a tribes manifest: %s", path, jerr.text);
    }
    br_status st = BR_OK;
    br_tribes *t = NULL;
    if (strcmp(format, TRIBES_FORMAT) != 0 || version != TRIBES_VERSION) {
        st = br_error(BR_EFORMAT, "%s: format '%s' version %lld; this build reads %s version %d",
                      path, format, (long long)version, TRIBES_FORMAT, TRIBES_VERSION);
    } else if (k < 1 || n < 1 || dim < 1 || k > n || !json_is_array(tribes) ||
               json_array_size(tribes) != (size_t)k || !json_is_array(books) ||
               json_array_size(books) != (size_t)n) {
        st = br_error(BR_EFORMAT, "%s: inconsistent manifest (k, n_books, tribes, books)", path);
    }
    if (st == BR_OK) {
        t = br_calloc(1, sizeof *t);
        if (!t) st = br_error(BR_ENOMEM, "tribes_load: out of memory");
    }
    br_array a = {0};
    if (st == BR_OK) {
        t->k = (uint32_t)k;
        t->n_books = (size_t)n;
        t->dim = (size_t)dim;
        t->inertia = inertia;
        t->iterations = (uint32_t)iters;
        t->named_by_tags = strcmp(named, "tags") == 0;
        t->evr[0] = e0;
        t->evr[1] = e1;
        t->tribe = br_calloc(t->k, sizeof(br_tribe));
        t->book_ids = br_calloc(t->n_books, sizeof(char *));
        t->titles = br_calloc(t->n_books, sizeof(char *));
        if (!t->tribe || !t->book_ids || !t->titles) st = br_error(BR_ENOMEM, "out of memory");
    }
    for (uint32_t j = 0; st == BR_OK && j < t->k; j++) {
        const char *name;
        json_int_t size;
        double purity;
        json_t *central;
        if (json_unpack(json_array_get(tribes, j), "{s:s, s:I, s:F, s:o}", "name", &name, "size",
                        &size, "purity", &purity, "central", &central) != 0 ||
            !json_is_array(central) || json_array_size(central) > BR_TRIBE_CENTRAL) {
            st = br_error(BR_EFORMAT, "%s: tribe %u is malformed", path, j);
            break;
        }
        br_tribe *tr = &t->tribe[j];
        snprintf(tr->name, sizeof tr->name, "%s", name);
        tr->size = (uint32_t)size;
        tr->purity = (float)purity;
        tr->n_central = (uint32_t)json_array_size(central);
        for (uint32_t c = 0; c < tr->n_central; c++) {
            json_int_t v = json_integer_value(json_array_get(central, c));
            if (v < 0 || v >= n) {
                st = br_error(BR_EFORMAT, "%s: tribe %u: central book %lld out of range", path, j,
                              (long long)v);
                break;
            }
            tr->central[c] = (uint32_t)v;
        }
    }
    for (size_t i = 0; st == BR_OK && i < t->n_books; i++) {
        const char *id, *title;
        if (json_unpack(json_array_get(books, i), "[ss]", &id, &title) != 0) {
            st = br_error(BR_EFORMAT, "%s: book %zu is malformed", path, i);
            break;
        }
        t->book_ids[i] = br_strdup(id);
        t->titles[i] = br_strdup(title);
        if (!t->book_ids[i] || !t->titles[i]) st = br_error(BR_ENOMEM, "out of memory");
    }
    if (st == BR_OK &&
        (st = read_arr(dir, "labels.npy", BR_DTYPE_I32, t->n_books, 1, &a)) == BR_OK) {
        t->labels = br_malloc(t->n_books * sizeof(int32_t));
        if (!t->labels) st = br_error(BR_ENOMEM, "out of memory");
        else memcpy(t->labels, a.data, t->n_books * sizeof(int32_t));
        br_array_free(&a);
        uint32_t *count = st == BR_OK ? br_calloc(t->k, sizeof(uint32_t)) : NULL;
        for (size_t i = 0; st == BR_OK && i < t->n_books; i++) {
            if (t->labels[i] < 0 || (uint32_t)t->labels[i] >= t->k) {
                st = br_error(BR_EFORMAT, "%s/labels.npy: label %d of book %zu out of range", dir,
                              t->labels[i], i);
                break;
            }
            if (count) count[t->labels[i]]++;
        }
        for (uint32_t j = 0; st == BR_OK && count && j < t->k; j++)
            if (count[j] != t->tribe[j].size)
                st = br_error(BR_EFORMAT, "%s: tribe %u has %u books in labels.npy, %u in the "
                              "manifest", dir, j, count[j], t->tribe[j].size);
        br_free(count);
    }
    if (st == BR_OK &&
        (st = read_arr(dir, "centroids.npy", BR_DTYPE_F32, t->k, t->dim, &a)) == BR_OK) {
        t->centroids = a.data; /* br_aligned_alloc'd by the reader */
        a.data = NULL;
    }
    if (st == BR_OK &&
        (st = read_arr(dir, "pca2.npy", BR_DTYPE_F32, t->n_books, 2, &a)) == BR_OK) {
        t->pca2 = br_malloc(t->n_books * 2 * sizeof(float));
        if (!t->pca2) st = br_error(BR_ENOMEM, "out of memory");
        else memcpy(t->pca2, a.data, t->n_books * 2 * sizeof(float));
        br_array_free(&a);
    }
    if (st == BR_OK) { /* absent from models saved before it was kept */
        char basis[4096];
        snprintf(basis, sizeof basis, "%s/pca_basis.npy", dir);
        if (access(basis, F_OK) == 0 &&
            (st = read_arr(dir, "pca_basis.npy", BR_DTYPE_F32, 3, t->dim, &a)) == BR_OK) {
            t->pca_basis = a.data;
            a.data = NULL;
        }
    }
    if (st == BR_OK && has_emb &&
        (st = read_arr(dir, "embeddings.npy", BR_DTYPE_F32, t->n_books, t->dim, &a)) == BR_OK) {
        t->embeddings = a.data;
        a.data = NULL;
    }
    json_decref(doc);
    if (st != BR_OK) {
        br_tribes_free(t);
        return st;
    }
    *out = t;
    return BR_OK;
}
