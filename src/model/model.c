/*
 * model.c: a model version opened for reading (bookrec/model.h): the
 * manifest parsed once, the catalogue, the tribes and the index loaded,
 * the large arrays (embeddings, published lists, neighbours) memory-mapped
 * from the version's .npy files. A version of format_version 3 holds every
 * array serving needs; an older one gets the derived arrays computed here
 * by the code train uses (derive.c), so it still serves as it did.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bookrec/npy.h"
#include "bookrec/train.h"
#include "model/model_internal.h"
#include "train/train_internal.h"

struct br_model {
    char id[BR_MODEL_ID_MAX];
    char path[PATH_MAX];
    char *manifest;
    int format;
    char encoder[256];
    br_book_template text;
    br_event_rules rules;
    int64_t data_until;
    br_model_online online;

    br_catalog *cat;
    uint32_t n;
    br_array emb; /* (n, dim) */
    br_hnsw *hnsw;
    br_tribes *tribes;
    const float *map; /* (n, 2) */
    br_pca pca;       /* an old version's map, fitted at open */
    float *own_map;

    br_array lists, list_scores; /* (readers, top_n) */
    char **readers, *readers_blob;
    size_t n_readers;

    /* the derived arrays: mapped (format 3) or computed (older) */
    int derived_at_open;
    br_array nbr, nbr_sc, pop, order, cold, counts;
    br__model_derived own;
};

static br_status fail(br_model *m, br_status st)
{
    br_model_close(m);
    return st;
}

/* A version file into a (mapped when it can be). */
static br_status map_file(const br_model *m, const char *name, br_dtype t, br_array *a)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", m->path, name);
    return br_npy_map(p, t, a);
}

static br_status check_rows(const br_model *m, const char *name, const br_array *a, size_t rows,
                            size_t cols)
{
    if (a->rows == rows && (!cols || a->cols == cols)) return BR_OK;
    return br_error(BR_EFORMAT, "%s/%s: %zu x %zu, the version has %zu books", m->path, name,
                    a->rows, a->cols, rows);
}

static br_status read_manifest(br_model *m)
{
    json_error_t je;
    json_t *j = json_loads(m->manifest, 0, &je);
    if (!j) return br_error(BR_EFORMAT, "%s/manifest.json: %s", m->path, je.text);
    br_status st = br_event_rules_from_manifest(m->manifest, &m->rules);
    const char *v = json_string_value(json_object_get(j, "version"));
    json_t *p = json_object_get(j, "parameters");
    const char *enc = json_string_value(json_object_get(p, "encoder"));
    const char *tpl = json_string_value(json_object_get(p, "template"));
    json_t *fv = json_object_get(j, "format_version");
    m->format = json_is_integer(fv) ? (int)json_integer_value(fv) : 1;
    if (!st && (!v || strlen(v) >= sizeof m->id))
        st = br_error(BR_EFORMAT, "%s/manifest.json: no version id", m->path);
    if (!st && m->format > BR_MODEL_FORMAT_VERSION)
        st = br_error(BR_EFORMAT,
                      "%s: format_version %d is newer than this build reads (%d): a newer "
                      "bookrec wrote it",
                      m->path, m->format, BR_MODEL_FORMAT_VERSION);
    if (!st) {
        snprintf(m->id, sizeof m->id, "%s", v);
        snprintf(m->encoder, sizeof m->encoder, "%s", enc ? enc : "use-lite");
        m->text = tpl && !strcmp(tpl, "description") ? BR_TEXT_DESCRIPTION : BR_TEXT_FULL;
        json_t *du = json_object_get(j, "data_until");
        m->data_until = json_is_integer(du) ? json_integer_value(du) : 0;
        m->online = (br_model_online)BR_MODEL_ONLINE_DEFAULT;
        json_t *on = json_object_get(json_object_get(j, "ranking"), "online");
        json_t *x;
        if ((x = json_object_get(on, "w_content")) && json_is_number(x))
            m->online.w_content = (float)json_number_value(x);
        if ((x = json_object_get(on, "w_pop")) && json_is_number(x))
            m->online.w_pop = (float)json_number_value(x);
        if ((x = json_object_get(on, "w_recent")) && json_is_number(x))
            m->online.w_recent = (float)json_number_value(x);
        if ((x = json_object_get(on, "recent_years")) && json_is_integer(x))
            m->online.recent_years = (uint32_t)json_integer_value(x);
        if ((x = json_object_get(on, "cold_interactions")) && json_is_integer(x))
            m->online.cold_interactions = (uint32_t)json_integer_value(x);
    }
    json_decref(j);
    return st;
}

/* The derived arrays of a version written before format_version 3,
 * computed as servers computed them. */
static br_status derive_at_open(br_model *m)
{
    br_status st = br__model_derived_alloc(&m->own, m->n);
    if (!st) st = br__model_neighbours(m->hnsw, m->emb.data, m->n, m->own.nbr, m->own.nbr_sc);
    if (!st)
        br__model_popularity(m->lists.data, m->lists.rows, m->lists.cols, m->n, m->own.pop,
                             m->own.order);
    if (!st)
        st = br__model_cold(m->tribes->labels, m->tribes->k, m->n, m->own.order, m->lists.data,
                            m->lists.rows, m->lists.cols, m->own.cold, &m->own.n_cold);
    m->derived_at_open = 1;
    return st;
}

static br_status map_derived(br_model *m)
{
    br_status st = map_file(m, "neighbours.npy", BR_DTYPE_I32, &m->nbr);
    if (!st) st = check_rows(m, "neighbours.npy", &m->nbr, m->n, BR_MODEL_NEIGHBOURS);
    if (!st) st = map_file(m, "neighbour_scores.npy", BR_DTYPE_F32, &m->nbr_sc);
    if (!st) st = check_rows(m, "neighbour_scores.npy", &m->nbr_sc, m->n, BR_MODEL_NEIGHBOURS);
    if (!st) st = map_file(m, "popularity.npy", BR_DTYPE_F32, &m->pop);
    if (!st) st = check_rows(m, "popularity.npy", &m->pop, m->n, 1);
    if (!st) st = map_file(m, "popular_order.npy", BR_DTYPE_I32, &m->order);
    if (!st) st = check_rows(m, "popular_order.npy", &m->order, m->n, 1);
    if (!st) st = map_file(m, "cold.npy", BR_DTYPE_I32, &m->cold);
    if (!st) st = map_file(m, "rating_counts.npy", BR_DTYPE_I32, &m->counts);
    if (!st) st = check_rows(m, "rating_counts.npy", &m->counts, m->n, 1);
    /* indices are checked once here, so readers may index with them */
    const int32_t *nb = m->nbr.data, *ord = m->order.data, *cold = m->cold.data;
    for (size_t i = 0; !st && i < (size_t)m->n * BR_MODEL_NEIGHBOURS; i++)
        if (nb[i] < -1 || nb[i] >= (int32_t)m->n)
            st = br_error(BR_EFORMAT, "%s/neighbours.npy: book %d out of range", m->path, nb[i]);
    for (size_t i = 0; !st && i < m->n; i++)
        if (ord[i] < 0 || ord[i] >= (int32_t)m->n)
            st = br_error(BR_EFORMAT, "%s/popular_order.npy: book %d out of range", m->path,
                          ord[i]);
    for (size_t i = 0; !st && i < m->cold.rows; i++)
        if (cold[i] < 0 || cold[i] >= (int32_t)m->n)
            st = br_error(BR_EFORMAT, "%s/cold.npy: book %d out of range", m->path, cold[i]);
    return st;
}

br_status br_model_open(const char *dir, const char *id, br_model **out)
{
    *out = NULL;
    br_model *m = br_calloc(1, sizeof *m);
    if (!m) return br_error(BR_ENOMEM, "model");
    char p[PATH_MAX + 64];
    br_status st = br_models_path(dir, id, m->path, sizeof m->path);
    if (!st) st = br_models_manifest(dir, id, &m->manifest);
    if (!st) st = read_manifest(m);
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    if (!st) {
        snprintf(p, sizeof p, "%s/books.csv", m->path);
        st = br_catalog_load(p, &lo, &m->cat, NULL);
    }
    if (!st) m->n = br_catalog_count(m->cat);
    if (!st) st = map_file(m, "embeddings.npy", BR_DTYPE_F32, &m->emb);
    if (!st) st = check_rows(m, "embeddings.npy", &m->emb, m->n, 0);
    if (!st) {
        snprintf(p, sizeof p, "%s/index.hnsw", m->path);
        st = br_hnsw_load(p, &m->hnsw);
    }
    if (!st && (br_hnsw_count(m->hnsw) != m->n || br_hnsw_dim(m->hnsw) != m->emb.cols))
        st = br_error(BR_EFORMAT, "%s/index.hnsw: %zu vectors of %zu for %u books of %zu",
                      m->path, br_hnsw_count(m->hnsw), br_hnsw_dim(m->hnsw), m->n, m->emb.cols);
    if (!st) {
        snprintf(p, sizeof p, "%s/tribes", m->path);
        st = br_tribes_load(p, &m->tribes);
    }
    if (!st && m->tribes->n_books != m->n)
        st = br_error(BR_EFORMAT, "%s/tribes: tribes of %zu books for %u", m->path,
                      m->tribes->n_books, m->n);
    if (!st) st = map_file(m, "recs_items.npy", BR_DTYPE_I32, &m->lists);
    if (!st) st = map_file(m, "recs_scores.npy", BR_DTYPE_F32, &m->list_scores);
    if (!st && (m->list_scores.rows != m->lists.rows || m->list_scores.cols != m->lists.cols))
        st = br_error(BR_EFORMAT, "%s: recs_items.npy and recs_scores.npy differ in shape",
                      m->path);
    if (!st) {
        snprintf(p, sizeof p, "%s/user_ids.txt", m->path);
        st = br__read_ids(p, &m->readers, &m->n_readers, &m->readers_blob);
    }
    if (!st && m->n_readers != m->lists.rows)
        st = br_error(BR_EFORMAT, "%s: %zu readers, %zu published lists", m->path, m->n_readers,
                      m->lists.rows);
    const int32_t *li = m->lists.data;
    for (size_t i = 0; !st && i < m->lists.rows * m->lists.cols; i++)
        if (li[i] < -1 || li[i] >= (int32_t)m->n)
            st = br_error(BR_EFORMAT, "%s/recs_items.npy: book %d out of range", m->path, li[i]);
    if (!st) st = m->format >= 3 ? map_derived(m) : derive_at_open(m);
    /* the map: the tribes' picture and the PCA behind it; an old version's
     * tribes lack the PCA: fitted here, as servers did */
    if (!st && m->tribes->pca_basis) {
        m->map = m->tribes->pca2;
    } else if (!st && m->n >= 2) {
        m->own_map = br_malloc((size_t)m->n * 2 * sizeof *m->own_map);
        st = m->own_map ? br_pca_fit(m->emb.data, m->n, m->emb.cols, 2, &m->pca)
                        : br_error(BR_ENOMEM, "map");
        if (!st) st = br_pca_transform(&m->pca, m->emb.data, m->n, m->own_map);
        m->map = m->own_map;
    }
    if (st) return fail(m, st);
    *out = m;
    return BR_OK;
}

void br_model_close(br_model *m)
{
    if (!m) return;
    br_free(m->manifest);
    br_catalog_free(m->cat);
    br_array_free(&m->emb);
    br_hnsw_free(m->hnsw);
    br_tribes_free(m->tribes);
    br_pca_free(&m->pca);
    br_free(m->own_map);
    br_array_free(&m->lists);
    br_array_free(&m->list_scores);
    br_free(m->readers);
    br_free(m->readers_blob);
    br_array_free(&m->nbr);
    br_array_free(&m->nbr_sc);
    br_array_free(&m->pop);
    br_array_free(&m->order);
    br_array_free(&m->cold);
    br_array_free(&m->counts);
    br__model_derived_free(&m->own);
    br_free(m);
}

const char *br_model_id(const br_model *m)
{
    return m->id;
}

const char *br_model_path(const br_model *m)
{
    return m->path;
}

const char *br_model_manifest(const br_model *m)
{
    return m->manifest;
}

int br_model_format(const br_model *m)
{
    return m->format;
}

int br_model_derived_at_open(const br_model *m)
{
    return m->derived_at_open;
}

const char *br_model_encoder(const br_model *m)
{
    return m->encoder;
}

br_book_template br_model_template(const br_model *m)
{
    return m->text;
}

const br_event_rules *br_model_rules(const br_model *m)
{
    return &m->rules;
}

int64_t br_model_data_until(const br_model *m)
{
    return m->data_until;
}

const br_model_online *br_model_online_params(const br_model *m)
{
    return &m->online;
}

const br_catalog *br_model_catalog(const br_model *m)
{
    return m->cat;
}

uint32_t br_model_books(const br_model *m)
{
    return m->n;
}

const float *br_model_embeddings(const br_model *m, size_t *dim)
{
    if (dim) *dim = m->emb.cols;
    return m->emb.data;
}

const br_hnsw *br_model_index(const br_model *m)
{
    return m->hnsw;
}

const br_tribes *br_model_tribes(const br_model *m)
{
    return m->tribes;
}

const float *br_model_map(const br_model *m)
{
    return m->map;
}

void br_model_map_point(const br_model *m, const float *vec, float xy[2])
{
    xy[0] = xy[1] = 0;
    if (m->tribes->pca_basis)
        br_tribes_map_point(m->tribes, vec, xy);
    else if (m->own_map)
        br_pca_transform(&m->pca, vec, 1, xy);
}

const int32_t *br_model_neighbours(const br_model *m, const float **scores)
{
    if (m->derived_at_open) {
        if (scores) *scores = m->own.nbr_sc;
        return m->own.nbr;
    }
    if (scores) *scores = m->nbr_sc.data;
    return m->nbr.data;
}

const float *br_model_popularity(const br_model *m)
{
    return m->derived_at_open ? m->own.pop : m->pop.data;
}

const uint32_t *br_model_popular_order(const br_model *m)
{
    return m->derived_at_open ? m->own.order : m->order.data;
}

const int32_t *br_model_rating_counts(const br_model *m)
{
    return m->derived_at_open ? NULL : m->counts.data;
}

const uint32_t *br_model_cold(const br_model *m, size_t *n)
{
    if (m->derived_at_open) {
        *n = m->own.n_cold;
        return m->own.cold;
    }
    *n = m->cold.rows;
    return m->cold.data;
}

const char *const *br_model_readers(const br_model *m, size_t *n)
{
    *n = m->n_readers;
    return (const char *const *)m->readers;
}

const int32_t *br_model_lists(const br_model *m, const float **scores, size_t *top_n)
{
    if (scores) *scores = m->list_scores.data;
    if (top_n) *top_n = m->lists.cols;
    return m->lists.data;
}

br_hnsw *br__model_index_mut(br_model *m)
{
    return m->hnsw;
}

int32_t *br__model_neighbours_mut(br_model *m, float **scores)
{
    if (m->derived_at_open) {
        *scores = m->own.nbr_sc;
        return m->own.nbr;
    }
    *scores = m->nbr_sc.data;
    return m->nbr.data;
}
