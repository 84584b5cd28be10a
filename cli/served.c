/*
 * served.c: `bookrec recommend --model-dir DIR [--store URI]`: reads what
 * `bookrec train` published instead of fitting anything. The store URI is
 * the one the current version's manifest names (br_models_store: relative
 * to the model directory) unless --store is given;
 * "all" readers are the current version's user_ids.txt. The recs and the
 * version they came from are read together (br_store_get_recs), so a line
 * never mixes two versions.
 */
#include <jansson.h>
#include <limits.h>
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

int cli_recommend_served(const char *dir, const char *store_uri, const char *users_arg, uint32_t n,
                         int json, int explain)
{
    br_tribes *tribes = NULL;
    char tribes_of[BR_STORE_VERSION_MAX] = "";
    char uri[PATH_MAX + 64];
    br_store *s = NULL;
    char **ids = NULL, *blob = NULL;
    size_t n_ids = 0;
    br_store_rec *recs = br_calloc(n, sizeof *recs);
    br_status st = recs ? BR_OK : br_error(BR_ENOMEM, "recs");
    /* The current version's store, resolved against the model directory. */
    if (!st && !store_uri && !(st = br_models_store(dir, NULL, uri, sizeof uri))) store_uri = uri;
    if (!st) st = br_store_open(store_uri, BR_STORE_RDONLY, &s);
    if (!st) st = reader_ids(dir, users_arg, &ids, &n_ids, &blob);
    for (size_t i = 0; i < n_ids && !st; i++) {
        size_t got = 0;
        char version[BR_STORE_VERSION_MAX];
        st = br_store_get_recs(s, ids[i], recs, n, &got, version);
        if (st == BR_ENOTFOUND) {
            st = br_error(BR_ENOTFOUND, "reader '%s' has no recommendations in the store", ids[i]);
            break;
        }
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
    br_store_close(s);
    if (st) return cli_fail("recommend", st);
    return CLI_OK;
}
