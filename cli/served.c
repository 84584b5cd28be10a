/*
 * served.c: `bookrec recommend --model-dir DIR [--store URI]`: reads what
 * `bookrec train` published instead of fitting anything. The store URI is
 * the one the current version's manifest names (br_models_store: relative
 * to the model directory) unless --store is given;
 * "all" readers are the current version's user_ids.txt. The recs and the
 * version they came from are read together (br_store_get_recs), so a line
 * never mixes two versions. --candidates/--exclude restrict a list as the
 * API's filters do (docs/api.md, "Filters"): the published books that
 * pass, then the neighbours of the published books that pass, then the
 * most popular that pass, so a list is n long while n unread books pass.
 */
#define _GNU_SOURCE /* qsort_r */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Reader ids: a comma-separated list, or every reader of the version. */
static br_status reader_ids(const char *dir, const char *arg, char ***ids, size_t *n, char **blob)
{
    if (strcmp(arg, "all") != 0) {
        *blob = br_strdup(arg);
        size_t cap = 1;
        for (const char *p = arg; *p; p++) cap += *p == ',';
        *ids = br_calloc(cap, sizeof **ids);
        if (!*blob || !*ids) return br_error(BR_ENOMEM, "reader list");
        size_t k = 0;
        for (char *tok = strtok(*blob, ","); tok; tok = strtok(NULL, ",")) (*ids)[k++] = tok;
        *n = k;
        return BR_OK;
    }
    char vdir[PATH_MAX], path[PATH_MAX + 16];
    br_status st = br_models_path(dir, NULL, vdir, sizeof vdir);
    if (st) return st;
    snprintf(path, sizeof path, "%s/user_ids.txt", vdir);
    char *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return br_error(BR_ENOTFOUND, "%s: cannot open", path);
    size_t cap = 1 << 16, len = 0, r;
    text = br_malloc(cap);
    while (text && (r = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (len + 1 == cap) {
            char *t = br_realloc(text, cap * 2);
            if (!t) break;
            text = t;
            cap *= 2;
        }
    }
    fclose(f);
    if (!text) return br_error(BR_ENOMEM, "%s", path);
    text[len] = 0;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) k += text[i] == '\n';
    *ids = br_calloc(k + 1, sizeof **ids);
    if (!*ids) {
        br_free(text);
        return br_error(BR_ENOMEM, "%s", path);
    }
    size_t m = 0;
    for (char *tok = strtok(text, "\n"); tok && m < k; tok = strtok(NULL, "\n")) (*ids)[m++] = tok;
    *n = m;
    *blob = text;
    return BR_OK;
}

/* The tribe names of version `id` (the model directory's copy), or NULL:
 * explanations then show tribe numbers only. */
static br_tribes *version_tribes(const char *dir, const char *id)
{
    char vdir[PATH_MAX], path[PATH_MAX + 16];
    br_tribes *t = NULL;
    if (br_models_path(dir, id, vdir, sizeof vdir) == BR_OK) {
        snprintf(path, sizeof path, "%s/tribes", vdir);
        if (br_tribes_load(path, &t) != BR_OK) t = NULL;
    }
    br_error_clear();
    return t;
}

/* What a restriction needs of the current version: its catalogue (ids),
 * popularity, neighbours, and the mask of admitted books. */
typedef struct restriction {
    br_model *m;
    const br_catalog *cat;
    const uint8_t *allow;
    const float *pop, *nbr_sc;
    const uint32_t *order;
    const int32_t *nbr;
    uint32_t *mark; /* (n_books,): 2 epoch seen, 2 epoch + 1 taken */
    uint32_t epoch;
    uint32_t *near; /* (n_books,) fill candidates */
    float *near_sc;
} restriction;

static int near_cmp(const void *a, const void *b, void *ctx)
{
    const float *sc = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (sc[x] != sc[y]) return sc[x] > sc[y] ? -1 : 1;
    return (x > y) - (x < y);
}

/* recs[0..*got) (the reader's published list) restricted, up to n: the
 * books that pass in order, then the neighbours of the published books
 * that pass (closest first: below the list by the cosine), then the most
 * popular (below those), with serve's scores (rank.c). */
static br_status restrict_list(restriction *r, br_store *s, const char *uid, br_store_rec *recs,
                               size_t *got, uint32_t n)
{
    uint32_t nb = br_model_books(r->m);
    const br_idmap *ids = br_catalog_ids(r->cat);
    br_store_ids *seen = NULL;
    br_status st = br_store_get_seen(s, uid, &seen);
    if (st == BR_ENOTFOUND) st = BR_OK, seen = NULL;
    if (st) return st;
    r->epoch++;
    uint32_t e_seen = 2 * r->epoch, e_taken = e_seen + 1;
    for (size_t i = 0; seen && i < seen->n; i++) {
        int64_t b = br_idmap_find(ids, seen->ids[i], strlen(seen->ids[i]));
        if (b >= 0) r->mark[b] = e_seen;
    }
    br_free(seen);
    size_t total = *got, out = 0, listed = 0;
    float lo = INFINITY, hi = -INFINITY;
    int64_t *rb = br_malloc((total + 1) * sizeof *rb);
    if (!rb) return br_error(BR_ENOMEM, "restriction");
    for (size_t i = 0; i < total; i++) {
        rb[i] = br_idmap_find(ids, recs[i].book_id, strlen(recs[i].book_id));
        if (rb[i] < 0 || r->mark[rb[i]] == e_seen) continue;
        float v = recs[i].score;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        listed++;
        if (!r->allow[rb[i]] || r->mark[rb[i]] == e_taken) continue;
        r->mark[rb[i]] = e_taken;
        if (out < n) recs[out++] = recs[i];
    }
    float span = listed && hi > lo ? hi - lo : 1.0f, base = listed ? lo : 0.0f;
    /* the neighbours of the published books, until n + 20 candidates */
    size_t n_near = 0;
    for (size_t i = 0; out < n && i < total && out + n_near < (size_t)n + 20; i++) {
        if (rb[i] < 0) continue;
        const int32_t *nbr = r->nbr + (size_t)rb[i] * BR_MODEL_NEIGHBOURS;
        const float *sc = r->nbr_sc + (size_t)rb[i] * BR_MODEL_NEIGHBOURS;
        for (size_t j = 0; j < BR_MODEL_NEIGHBOURS && out + n_near < (size_t)n + 20; j++) {
            if (nbr[j] < 0 || (uint32_t)nbr[j] >= nb) continue;
            uint32_t b = (uint32_t)nbr[j];
            if (!r->allow[b] || r->mark[b] == e_seen || r->mark[b] == e_taken) continue;
            float c = sc[j] < 0 ? 0 : sc[j] > 1 ? 1 : sc[j];
            int fresh = 1;
            for (size_t q = 0; q < n_near && fresh; q++) fresh = r->near[q] != b;
            if (fresh) {
                r->near[n_near++] = b;
                r->near_sc[b] = c;
            } else if (c > r->near_sc[b]) {
                r->near_sc[b] = c;
            }
        }
    }
    qsort_r(r->near, n_near, sizeof *r->near, near_cmp, r->near_sc);
    for (size_t q = 0; q < n_near && out < n; q++) {
        uint32_t b = r->near[q];
        r->mark[b] = e_taken;
        snprintf(recs[out].book_id, sizeof recs[out].book_id, "%s", br_catalog_book(r->cat, b)->id);
        recs[out++].score = base - span * (1.0f - r->near_sc[b]);
    }
    for (uint32_t i = 0; i < nb && out < n; i++) { /* the most popular */
        uint32_t b = r->order[i];
        if (!r->allow[b] || r->mark[b] == e_seen || r->mark[b] == e_taken) continue;
        r->mark[b] = e_taken;
        snprintf(recs[out].book_id, sizeof recs[out].book_id, "%s", br_catalog_book(r->cat, b)->id);
        recs[out++].score = base - span * (2.0f - r->pop[b]);
    }
    br_free(rb);
    *got = out;
    return BR_OK;
}

int cli_recommend_served(const char *dir, const char *store_uri, const char *users_arg, uint32_t n,
                         int json, int explain, const char *cand, const char *excl)
{
    br_tribes *tribes = NULL;
    char tribes_of[BR_STORE_VERSION_MAX] = "";
    char uri[PATH_MAX + 64];
    br_store *s = NULL;
    char **ids = NULL, *blob = NULL;
    size_t n_ids = 0;
    restriction rs = {0};
    uint8_t *allow = NULL;
    uint32_t n_forbidden = 0, cap = n;
    br_status st = BR_OK;
    if (cand || excl) { /* the published list whole, restricted to n */
        size_t top = 0;
        st = br_model_open(dir, NULL, &rs.m);
        if (!st) {
            rs.cat = br_model_catalog(rs.m);
            rs.pop = br_model_popularity(rs.m);
            rs.order = br_model_popular_order(rs.m);
            rs.nbr = br_model_neighbours(rs.m, &rs.nbr_sc);
            br_model_lists(rs.m, NULL, &top);
            if (top > cap) cap = (uint32_t)top;
            st = cli_book_mask(cand, excl, rs.cat, &allow, &n_forbidden);
            rs.allow = allow;
        }
        uint32_t nb = rs.m ? br_model_books(rs.m) : 0;
        rs.mark = st ? NULL : br_calloc((size_t)nb + 1, sizeof *rs.mark);
        rs.near = st ? NULL : br_malloc(((size_t)nb + 1) * sizeof *rs.near);
        rs.near_sc = st ? NULL : br_malloc(((size_t)nb + 1) * sizeof *rs.near_sc);
        if (!st && (!rs.mark || !rs.near || !rs.near_sc)) st = br_error(BR_ENOMEM, "restriction");
    }
    br_store_rec *recs = st ? NULL : br_calloc(cap, sizeof *recs);
    if (!st && !recs) st = br_error(BR_ENOMEM, "recs");
    /* The current version's store, resolved against the model directory. */
    if (!st && !store_uri && !(st = br_models_store(dir, NULL, uri, sizeof uri))) store_uri = uri;
    if (!st) st = br_store_open(store_uri, BR_STORE_RDONLY, &s);
    if (!st) st = reader_ids(dir, users_arg, &ids, &n_ids, &blob);
    for (size_t i = 0; i < n_ids && !st; i++) {
        size_t got = 0;
        char version[BR_STORE_VERSION_MAX];
        st = br_store_get_recs(s, ids[i], recs, cap, &got, version);
        if (st == BR_ENOTFOUND) {
            st = br_error(BR_ENOTFOUND, "reader '%s' has no recommendations in the store", ids[i]);
            break;
        }
        if (!st && rs.m) st = restrict_list(&rs, s, ids[i], recs, &got, n);
        if (st) break;
        if (json) {
            json_t *arr = json_array();
            for (size_t j = 0; j < got; j++) {
                json_t *item = json_pack("{s:s, s:f}", "book", recs[j].book_id, "score",
                                         (double)recs[j].score);
                br_store_book *b = NULL;
                if (explain && br_store_get_book(s, recs[j].book_id, &b) == BR_OK) {
                    json_object_set_new(item, "title", json_string(b->title));
                    json_object_set_new(item, "genre", json_string(b->genre));
                    json_object_set_new(item, "tribe", json_integer(b->tribe));
                }
                br_free(b);
                json_array_append_new(arr, item);
            }
            cli_print_json(
                json_pack("{s:s, s:s, s:o}", "user", ids[i], "version", version, "items", arr));
            continue;
        }
        if (!explain) {
            printf("%s:", ids[i]);
            for (size_t j = 0; j < got; j++)
                printf("%s %s (%.4f)", j ? "," : "", recs[j].book_id, (double)recs[j].score);
            printf("\n");
            continue;
        }
        printf("reader %s, model version %s (read from the %s store):\n", ids[i], version,
               br_store_backend(s));
        if (strcmp(tribes_of, version) != 0) { /* the tribes of the version served */
            br_tribes_free(tribes);
            tribes = version_tribes(dir, version);
            snprintf(tribes_of, sizeof tribes_of, "%s", version);
        }
        for (size_t j = 0; j < got && !st; j++) {
            br_store_book *b = NULL;
            st = br_store_get_book(s, recs[j].book_id, &b);
            if (st) break;
            const char *tname = tribes && b->tribe >= 0 && (uint32_t)b->tribe < tribes->k
                                    ? tribes->tribe[b->tribe].name
                                    : "";
            printf("  %2zu. %s (%s%s%s)  score %.4f, tribe %d%s%s%s\n", j + 1, b->title, b->genre,
                   *b->authors ? ", " : "", b->authors, (double)recs[j].score, b->tribe,
                   *tname ? " \"" : "", tname, *tname ? "\"" : "");
            br_free(b);
        }
    }
    br_tribes_free(tribes);
    br_free(ids);
    br_free(blob);
    br_free(recs);
    br_free(allow);
    br_free(rs.mark);
    br_free(rs.near);
    br_free(rs.near_sc);
    br_model_close(rs.m);
    br_store_close(s);
    if (st) return cli_fail("recommend", st);
    return CLI_OK;
}
