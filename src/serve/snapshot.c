/*
 * snapshot.c: one model version as the server holds it, loaded whole
 * before it is swapped in (a reload never serves a half-loaded version):
 * the catalogue, embeddings, HNSW index, tribes, a 2-D PCA of the
 * embeddings for the tribe map, model popularity and the cold-start list,
 * and each book's JSON fragment (id, title, tribe) precomputed so a response is mostly
 * memcpy. Books posted at run time are appended under a rwlock.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bookrec/npy.h"
#include "model/model_internal.h"
#include "serve/serve_internal.h"

/* ------------------------------------------------------------ snapshot -- */

static char *esc_dup(const char *s)
{
    br__sbuf b = {0};
    br__sb_json_esc(&b, s);
    if (b.oom || !b.p) {
        br_free(b.p);
        return br_strdup("");
    }
    return b.p;
}

static br_status make_book(srv_book *bk, const char *id, const char *title, int32_t tribe,
                           int32_t year)
{
    br__sbuf b = {0};
    br__sb_str(&b, "\"book_id\":");
    br__sb_json_str(&b, id);
    br__sb_str(&b, ",\"title\":");
    br__sb_json_str(&b, title);
    br__sb_printf(&b, ",\"tribe\":%d", tribe); /* the page colours a book by its tribe */
    bk->title_esc = esc_dup(title);
    if (b.oom || !b.p || !bk->title_esc) {
        br_free(b.p);
        return br_error(BR_ENOMEM, "book fragment");
    }
    bk->frag = b.p;
    bk->frag_len = (uint32_t)b.len;
    bk->tribe = tribe;
    bk->year = year;
    return BR_OK;
}

const char *br__srv_tribe_name(const srv_snap *s, int32_t tribe)
{
    if (!s->tribes || tribe < 0 || (uint32_t)tribe >= s->tribes->k) return "";
    return s->tribes->tribe[tribe].name;
}

static void snap_free(srv_snap *s)
{
    if (!s) return;
    size_t nb = (size_t)s->n_base + s->n_added;
    if (s->books)
        for (size_t i = 0; i < nb; i++) {
            br_free(s->books[i].frag);
            br_free(s->books[i].title_esc);
        }
    br_free(s->books);
    br_free(s->rk);
    for (size_t i = 0; i < s->n_added; i++) {
        srv_added *a = &s->added[i];
        br_free(a->id);
        br_free(a->title);
        br_free(a->authors);
        br_free(a->genre);
        br_free(a->tags);
        br_free(a->description);
    }
    br_free(s->added);
    br_free(s->added_emb);
    br_free(s->nbr_add);
    br_free(s->nbr_sc_add);
    if (s->tribe_esc && s->tribes)
        for (uint32_t t = 0; t < s->tribes->k; t++) br_free(s->tribe_esc[t]);
    br_free(s->tribe_esc);
    br__srv_facets_free(s);
    br_model_close(s->model);
    pthread_rwlock_destroy(&s->add_lock);
    br_free(s);
}

void br__srv_snap_release(srv_snap *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) snap_free(s);
}

/* The version as train wrote it (br_model: nothing trained is computed
 * again), then what serving adds: each book's JSON fragment, popularity
 * and year packed for the blend, the tribes' escaped names. */
br_status br__srv_snap_load(const char *model_dir, srv_snap **out)
{
    *out = NULL;
    srv_snap *s = br_calloc(1, sizeof *s);
    if (!s) return br_error(BR_ENOMEM, "snapshot");
    pthread_rwlock_init(&s->add_lock, NULL);
    atomic_init(&s->refs, 1);
    br_status st = br_model_open(model_dir, NULL, &s->model);
    if (st) {
        snap_free(s);
        return st;
    }
    br_model *m = s->model;
    snprintf(s->version, sizeof s->version, "%s", br_model_id(m));
    snprintf(s->encoder, sizeof s->encoder, "%s", br_model_encoder(m));
    s->template_desc = br_model_template(m) == BR_TEXT_DESCRIPTION;
    s->rules = *br_model_rules(m);
    s->data_until = br_model_data_until(m);
    s->online = *br_model_online_params(m);
    s->cat = br_model_catalog(m);
    s->ids = br_catalog_ids(s->cat);
    s->n_base = br_model_books(m);
    s->emb = br_model_embeddings(m, &s->dim);
    s->hnsw = br__model_index_mut(m);
    s->tribes = br_model_tribes(m);
    s->xy = br_model_map(m);
    s->pop_order = br_model_popular_order(m);
    s->counts = br_model_rating_counts(m);
    s->cold = br_model_cold(m, &s->n_cold);
    s->users = br_model_readers(m, &s->n_users);
    s->nbr_base = br__model_neighbours_mut(m, &s->nbr_sc_base);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    s->this_year = tm.tm_year + 1900;

    s->tribe_esc = br_calloc(s->tribes->k ? s->tribes->k : 1, sizeof *s->tribe_esc);
    if (!s->tribe_esc) st = br_error(BR_ENOMEM, "tribes");
    for (uint32_t t = 0; !st && t < s->tribes->k; t++)
        s->tribe_esc[t] = esc_dup(s->tribes->tribe[t].name);
    size_t nb = s->n_base ? s->n_base : 1;
    s->rk = st ? NULL : br_malloc(nb * sizeof *s->rk);
    s->books = st ? NULL : br_calloc(nb, sizeof *s->books);
    if (!st && (!s->rk || !s->books)) st = br_error(BR_ENOMEM, "books");
    const float *pop = br_model_popularity(m);
    for (uint32_t b = 0; !st && b < s->n_base; b++) {
        const br_book *bk = br_catalog_book(s->cat, b);
        s->rk[b] = (srv_rk){pop[b], bk->year};
        st = make_book(&s->books[b], bk->id, bk->title, s->tribes->labels[b], bk->year);
    }
    if (!st) st = br__srv_facets_build(s);
    if (st) {
        snap_free(s);
        return st;
    }
    if (br_model_derived_at_open(m))
        br_log(BR_LOG_INFO,
               "serve: %s predates format_version %d: its neighbours, popularity and cold-start "
               "list were computed at load",
               s->version, BR_MODEL_FORMAT_VERSION);
    *out = s;
    return BR_OK;
}

int64_t br__srv_snap_find(srv_snap *s, const char *id)
{
    return br__srv_snap_find_n(s, id, strlen(id));
}

int64_t br__srv_snap_find_n(srv_snap *s, const char *id, size_t len)
{
    int64_t b = br_idmap_find(s->ids, id, len);
    if (b >= 0 || !s->n_added) return b;
    for (size_t i = 0; i < s->n_added; i++)
        if (!strncmp(s->added[i].id, id, len) && s->added[i].id[len] == '\0')
            return (int64_t)s->n_base + (int64_t)i;
    return -1;
}

int64_t br__srv_snap_resolve(void *snap, const char *id, size_t len)
{
    return br__srv_snap_find_n(snap, id, len);
}

br_store_reader br__srv_reader(srv_snap *s, const br_serve_rank *cfg, br_store_interaction *recent,
                           uint32_t *rec_idx, float *rec_score, uint32_t *seen_idx)
{
    return (br_store_reader){.recent = recent,
                             .recent_cap = br__srv_recent_wanted(cfg),
                             .recs_cap = BR_SERVE_N_MAX,
                             .resolve = br__srv_snap_resolve,
                             .resolve_ctx = s,
                             .rec_idx = rec_idx,
                             .rec_score = rec_score,
                             .seen_idx = seen_idx,
                             .seen_cap = SRV_SEEN_IDX};
}

const float *br__srv_snap_emb(const srv_snap *s, uint32_t b)
{
    if (b < s->n_base) return s->emb + (size_t)b * s->dim;
    return s->added_emb + (size_t)(b - s->n_base) * s->dim;
}

static char *dup_or_empty(const char *x)
{
    return br_strdup(x ? x : "");
}

/* Book b's neighbour list gains (c, score) if it beats the list's last. */
static void nbr_offer(srv_snap *s, uint32_t b, int32_t c, float score)
{
    float *sc;
    int32_t *ids = srv_nbr(s, b, &sc);
    size_t j = SRV_NBR_K;
    if (ids[j - 1] >= 0 && sc[j - 1] >= score) return;
    j--;
    while (j > 0 && (ids[j - 1] < 0 || sc[j - 1] < score)) {
        ids[j] = ids[j - 1];
        sc[j] = sc[j - 1];
        j--;
    }
    ids[j] = c;
    sc[j] = score;
}

br_status br__srv_snap_add(srv_snap *s, const srv_added *a, const float *vec, uint32_t *index)
{
    /* The nearest tribe centroid (cosine: the vectors are normalised). */
    int32_t tribe = -1;
    float best = -INFINITY;
    for (uint32_t t = 0; s->tribes && t < s->tribes->k; t++) {
        const float *c = s->tribes->centroids + (size_t)t * s->dim;
        float d = 0, cn = 0;
        for (size_t j = 0; j < s->dim; j++) {
            d += c[j] * vec[j];
            cn += c[j] * c[j];
        }
        d = cn > 0 ? d / sqrtf(cn) : d;
        if (d > best) {
            best = d;
            tribe = (int32_t)t;
        }
    }
    float xy[2];
    br_model_map_point(s->model, vec, xy); /* the map's own PCA, kept by train */

    pthread_rwlock_wrlock(&s->add_lock);
    br_status st = BR_OK;
    if (br__srv_snap_find(s, a->id) >= 0) {
        st = br_error(BR_EEXIST, "book '%s' exists", a->id);
        goto out;
    }
    if (s->n_added == s->cap_added) {
        size_t cap = s->cap_added ? s->cap_added * 2 : 16;
        srv_added *na = br_realloc(s->added, cap * sizeof *na);
        if (na) s->added = na;
        float *ne = na ? br_realloc(s->added_emb, cap * s->dim * sizeof *ne) : NULL;
        if (ne) s->added_emb = ne;
        srv_book *nb = ne ? br_realloc(s->books, (s->n_base + cap) * sizeof *nb) : NULL;
        if (nb) s->books = nb;
        int32_t *ni = nb ? br_realloc(s->nbr_add, cap * SRV_NBR_K * sizeof *ni) : NULL;
        if (ni) s->nbr_add = ni;
        float *ns = ni ? br_realloc(s->nbr_sc_add, cap * SRV_NBR_K * sizeof *ns) : NULL;
        if (ns) s->nbr_sc_add = ns;
        srv_rk *nr = ns ? br_realloc(s->rk, (s->n_base + cap) * sizeof *nr) : NULL;
        if (nr) s->rk = nr;
        if (!na || !ne || !nb || !ni || !ns || !nr) {
            st = br_error(BR_ENOMEM, "added books");
            goto out;
        }
        s->cap_added = cap;
    }
    uint32_t id = 0;
    st = br_hnsw_add(s->hnsw, vec, &id);
    if (st) goto out;
    if (id != s->n_base + s->n_added) {
        st = br_error(BR_EINTERNAL, "index id %u for book %zu", id, s->n_base + s->n_added);
        goto out;
    }
    srv_added *d = &s->added[s->n_added];
    memset(d, 0, sizeof *d);
    d->id = dup_or_empty(a->id);
    d->title = dup_or_empty(a->title);
    d->authors = dup_or_empty(a->authors);
    d->genre = dup_or_empty(a->genre);
    d->tags = dup_or_empty(a->tags);
    d->description = dup_or_empty(a->description);
    d->year = a->year;
    d->tribe = tribe;
    d->xy[0] = xy[0];
    d->xy[1] = xy[1];
    memcpy(s->added_emb + s->n_added * s->dim, vec, s->dim * sizeof *vec);
    s->rk[s->n_base + s->n_added] = (srv_rk){0, a->year};
    srv_book *bk = &s->books[s->n_base + s->n_added];
    memset(bk, 0, sizeof *bk);
    st = make_book(bk, a->id, a->title ? a->title : "", tribe, a->year);
    /* The index already holds the vector: the book is counted either way
     * (an out-of-memory fragment leaves an empty title, never a hole). */
    if (st) {
        bk->frag = br_strdup("\"book_id\":\"\",\"title\":\"\",\"tribe\":-1");
        bk->frag_len = bk->frag ? (uint32_t)strlen(bk->frag) : 0;
    }
    /* its neighbours, and it joins theirs: recommendable at once */
    int32_t ids[SRV_NBR_K + 1];
    float sc[SRV_NBR_K + 1];
    size_t found = 0;
    float *mine_sc;
    int32_t *mine = srv_nbr(s, id, &mine_sc);
    for (size_t j = 0; j < SRV_NBR_K; j++) mine[j] = -1, mine_sc[j] = -INFINITY;
    if (br_hnsw_search(s->hnsw, vec, SRV_NBR_K + 1, 64, ids, sc, &found) == BR_OK) {
        size_t o = 0;
        for (size_t j = 0; j < found && o < SRV_NBR_K; j++) {
            if (ids[j] < 0 || ids[j] == (int32_t)id) continue;
            mine[o] = ids[j];
            mine_sc[o++] = sc[j];
            nbr_offer(s, (uint32_t)ids[j], (int32_t)id, sc[j]);
        }
    }
    s->n_added++;
    if (index) *index = id;
out:
    pthread_rwlock_unlock(&s->add_lock);
    return st;
}

void br__srv_snap_map_json(srv_snap *s, br__sbuf *b)
{
    uint32_t k = s->tribes ? s->tribes->k : 0;
    uint32_t *size = br_calloc(k ? k : 1, sizeof *size);
    for (uint32_t t = 0; size && t < k; t++) size[t] = s->tribes->tribe[t].size;
    for (size_t i = 0; size && i < s->n_added; i++)
        if (s->added[i].tribe >= 0) size[s->added[i].tribe]++;
    br__sb_str(b, "{\"model_version\":");
    br__sb_json_str(b, s->version);
    br__sb_str(b, ",\"tribes\":[");
    for (uint32_t t = 0; t < k; t++) {
        br__sb_printf(b, "%s{\"id\":%u,\"name\":\"", t ? "," : "", t);
        br__sb_str(b, s->tribe_esc[t]);
        br__sb_printf(b, "\",\"size\":%u}", size ? size[t] : 0);
    }
    br_free(size);
    br__sb_str(b, "],\"points\":[");
    uint32_t stride = (s->n_base + BR_SERVE_MAP_POINTS_MAX - 1) / BR_SERVE_MAP_POINTS_MAX;
    if (!stride) stride = 1;
    float xy[2];
    int first = 1;
    for (uint32_t i = 0; s->xy && i < s->n_base; i += stride) {
        xy[0] = s->xy[2 * (size_t)i];
        xy[1] = s->xy[2 * (size_t)i + 1];
        br__sb_printf(b, "%s{", first ? "" : ",");
        br__sb_put(b, s->books[i].frag, s->books[i].frag_len);
        br__sb_printf(b, ",\"x\":%.5g,\"y\":%.5g}", (double)xy[0], (double)xy[1]);
        first = 0;
    }
    for (size_t i = 0; i < s->n_added; i++) {
        srv_book *bk = &s->books[s->n_base + i];
        br__sb_printf(b, "%s{", first ? "" : ",");
        br__sb_put(b, bk->frag, bk->frag_len);
        br__sb_printf(b, ",\"x\":%.5g,\"y\":%.5g}", (double)s->added[i].xy[0],
                      (double)s->added[i].xy[1]);
        first = 0;
    }
    br__sb_str(b, "]}");
}
