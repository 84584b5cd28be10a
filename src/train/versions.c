/*
 * versions.c: the model directory's versions, the `current` pointer, and
 * publishing a version's recommendations and books to the store.
 *
 * Everything that switches what is served is one rename: a version
 * directory is renamed from versions/.tmp-<id> once every file in it is
 * fsynced, and `current` is a symlink replaced by renaming a new symlink
 * over it. POSIX rename() is atomic, so a reader (or a crash) sees the old
 * target or the new one. The store switch is the store's own atomic step
 * (docs/store.md); `current` is re-pointed only after it succeeded.
 *
 * Paths in a manifest (the store, the event log) are recorded relative to
 * the model directory when inside it, else absolute, and resolved against
 * it when read, so a directory moved or copied elsewhere still opens its
 * own store from any working directory.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bookrec/content.h"
#include "bookrec/data.h"
#include "bookrec/model.h"
#include "bookrec/npy.h"
#include "bookrec/store.h"
#include "core/afile.h"
#include "train_internal.h"

br_status br__train_path(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= cap) return br_error(BR_ERANGE, "path too long");
    return BR_OK;
}

/* Version ids: "v" and digits. Anything else in versions/ is ignored. */
static int is_version_id(const char *s)
{
    if (s[0] != 'v' || !s[1]) return 0;
    for (const char *p = s + 1; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return strlen(s) < BR_MODEL_ID_MAX;
}

static unsigned long long version_number(const char *id)
{
    return strtoull(id + 1, NULL, 10);
}

br_status br_models_current(const char *model_dir, char *id, size_t cap)
{
    char path[PATH_MAX], target[PATH_MAX];
    br_status st = br__train_path(path, sizeof path, "%s/current", model_dir);
    if (st) return st;
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) {
        if (errno == ENOENT) return br_error(BR_ENOTFOUND, "%s: no version published", model_dir);
        return br_error(BR_EIO, "%s: %s", path, strerror(errno));
    }
    target[n] = 0;
    const char *slash = strrchr(target, '/');
    const char *name = slash ? slash + 1 : target;
    if (strncmp(target, "versions/", 9) != 0 || !is_version_id(name))
        return br_error(BR_EFORMAT, "%s: points to '%s', not versions/<id>", path, target);
    if (strlen(name) >= cap) return br_error(BR_ERANGE, "version id too long");
    strcpy(id, name);
    return BR_OK;
}

br_status br_models_path(const char *model_dir, const char *id, char *buf, size_t cap)
{
    char cur[BR_MODEL_ID_MAX];
    if (!id) {
        br_status st = br_models_current(model_dir, cur, sizeof cur);
        if (st) return st;
        id = cur;
    }
    if (!is_version_id(id)) return br_error(BR_EINVAL, "'%s' is not a version id (vNNNNNN)", id);
    return br__train_path(buf, cap, "%s/versions/%s", model_dir, id);
}

br_status br__read_text(const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return br_error(BR_ENOTFOUND, "%s: no such file", path);
        return br_error(BR_EIO, "%s: %s", path, strerror(errno));
    }
    size_t cap = 4096, n = 0;
    char *buf = br_malloc(cap);
    if (!buf) {
        fclose(f);
        return br_error(BR_ENOMEM, "%s", path);
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = br_realloc(buf, cap * 2);
            if (!nb) {
                br_free(buf);
                fclose(f);
                return br_error(BR_ENOMEM, "%s", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - 1 - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        br_free(buf);
        return br_error(BR_EIO, "%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    return BR_OK;
}

br_status br_models_manifest(const char *model_dir, const char *id, char **json)
{
    char dir[PATH_MAX], path[PATH_MAX];
    br_status st = br_models_path(model_dir, id, dir, sizeof dir);
    if (!st) st = br__train_path(path, sizeof path, "%s/manifest.json", dir);
    if (!st) st = br__read_text(path, json);
    return st;
}

static int cmp_version(const void *a, const void *b)
{
    unsigned long long x = version_number(((const br_model_version *)a)->id);
    unsigned long long y = version_number(((const br_model_version *)b)->id);
    return (x > y) - (x < y);
}

br_status br_models_list(const char *model_dir, br_model_version **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char vdir[PATH_MAX], cur[BR_MODEL_ID_MAX] = "";
    br_status st = br__train_path(vdir, sizeof vdir, "%s/versions", model_dir);
    if (st) return st;
    if (br_models_current(model_dir, cur, sizeof cur) != BR_OK) cur[0] = 0;
    br_error_clear();
    DIR *d = opendir(vdir);
    if (!d) {
        if (errno == ENOENT) return BR_OK;
        return br_error(BR_EIO, "%s: %s", vdir, strerror(errno));
    }
    size_t cap = 16, k = 0;
    br_model_version *v = br_calloc(cap, sizeof *v);
    if (!v) {
        closedir(d);
        return br_error(BR_ENOMEM, "versions");
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_version_id(e->d_name)) continue;
        char *text = NULL;
        br_status ms = br_models_manifest(model_dir, e->d_name, &text);
        if (ms == BR_ENOTFOUND) {
            br_error_clear();
            continue; /* no manifest: not a complete version */
        }
        if (ms) { /* out of memory, unreadable: not to be taken for absent */
            closedir(d);
            br_free(v);
            return ms;
        }
        json_t *j = json_loads(text, 0, NULL);
        br_free(text);
        if (!j) continue;
        if (k == cap) {
            br_model_version *nv = br_realloc(v, 2 * cap * sizeof *v);
            if (!nv) {
                json_decref(j);
                closedir(d);
                br_free(v);
                return br_error(BR_ENOMEM, "versions");
            }
            v = nv;
            cap *= 2;
        }
        memset(&v[k], 0, sizeof v[k]);
        snprintf(v[k].id, sizeof v[k].id, "%.*s", (int)(sizeof v[k].id - 1), e->d_name);
        v[k].current = !strcmp(cur, e->d_name);
        v[k].created_at = (int64_t)json_integer_value(json_object_get(j, "created_at"));
        json_t *c = json_object_get(j, "counts");
        v[k].n_books = (uint64_t)json_integer_value(json_object_get(c, "books"));
        v[k].n_users = (uint64_t)json_integer_value(json_object_get(c, "readers"));
        json_decref(j);
        char mark[PATH_MAX];
        v[k].served = !br__train_path(mark, sizeof mark, "%s/%s/served", vdir, e->d_name) &&
                      access(mark, F_OK) == 0;
        k++;
    }
    closedir(d);
    br_error_clear();
    qsort(v, k, sizeof *v, cmp_version);
    /* Versions from before the markers (older than the oldest marked one;
     * every one when none is marked) were served as far as anyone knows;
     * the current one is served. */
    size_t first = 0;
    while (first < k && !v[first].served) first++;
    for (size_t i = 0; i < k; i++) v[i].served |= i < first || v[i].current;
    *out = v;
    *n = k;
    return BR_OK;
}

br_status br__models_next_id(const char *model_dir, char *id, size_t cap)
{
    char vdir[PATH_MAX];
    br_status st = br__train_path(vdir, sizeof vdir, "%s/versions", model_dir);
    if (st) return st;
    unsigned long long max = 0;
    DIR *d = opendir(vdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (is_version_id(e->d_name) && version_number(e->d_name) > max)
                max = version_number(e->d_name);
        closedir(d);
    }
    int w = snprintf(id, cap, "v%06llu", max + 1);
    if (w < 0 || (size_t)w >= cap) return br_error(BR_ERANGE, "version id");
    return BR_OK;
}

br_status br__models_mark_served(const char *model_dir, const char *id)
{
    char mark[PATH_MAX];
    br_status st = br__train_path(mark, sizeof mark, "%s/versions/%s/served", model_dir, id);
    if (st || access(mark, F_OK) == 0) return st;
    /* the same bytes every time (a version directory is byte for byte the
     * same for the same inputs); when it was served is the file's mtime */
    return br__afile_write(mark, "served\n", 7);
}

br_status br__models_pointer_prepare(const char *model_dir, const char *id, br__models_pointer *p)
{
    char mark[PATH_MAX], target[PATH_MAX];
    memset(p, 0, sizeof *p);
    br_status st = br__train_path(mark, sizeof mark, "%s/versions/%s/served", model_dir, id);
    if (!st) st = br__train_path(target, sizeof target, "versions/%s", id);
    if (!st) st = br__train_path(p->link, sizeof p->link, "%s/current", model_dir);
    if (!st) st = br__afile_open(&p->mark, mark);
    if (st) return st;
    fputs("served\n", p->mark.f); /* as br__models_mark_served writes it */
    st = br__afile_prepare(&p->mark);
    if (!st) st = br__afile_symlink_prepare(target, p->link, &p->link_tmp);
    if (st) br__models_pointer_abort(p);
    return st;
}

br_status br__models_pointer_commit(br__models_pointer *p)
{
    /* marked first: a version `current` points to always carries its marker */
    br_status st = br__afile_commit(&p->mark);
    if (!st) {
        st = br__afile_symlink_commit(p->link_tmp, p->link);
        p->link_tmp = NULL;
    }
    br__models_pointer_abort(p);
    return st;
}

void br__models_pointer_abort(br__models_pointer *p)
{
    br__afile_abort(&p->mark);
    br__afile_symlink_abort(p->link_tmp);
    p->link_tmp = NULL;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

br_status br__train_rmtree(const char *path)
{
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) && errno != ENOENT)
        return br_error(BR_EIO, "%s: cannot remove: %s", path, strerror(errno));
    return BR_OK;
}

br_status br__models_prune_locked(const char *model_dir, uint32_t keep, uint64_t *removed)
{
    if (removed) *removed = 0;
    if (keep == 0) return BR_OK;
    br_model_version *v;
    size_t n;
    br_status st = br_models_list(model_dir, &v, &n);
    if (st) return st;
    uint64_t gone = 0;
    /* Oldest first: everything before the newest `keep`, except current. */
    for (size_t i = 0; i + keep < n && !st; i++) {
        if (v[i].current) continue;
        char path[PATH_MAX];
        st = br_models_path(model_dir, v[i].id, path, sizeof path);
        if (!st) st = br__train_rmtree(path);
        if (!st) gone++;
    }
    br_free(v);
    if (removed) *removed = gone;
    return st;
}

/* The commands that only read or switch versions must not create the
 * directory (the lock would): a mistyped path is an error. */
static br_status existing_dir(const char *model_dir)
{
    struct stat sb;
    if (stat(model_dir, &sb) || !S_ISDIR(sb.st_mode))
        return br_error(BR_ENOTFOUND, "%s: no such model directory", model_dir);
    return BR_OK;
}

br_status br_models_prune(const char *model_dir, uint32_t keep, uint64_t *removed)
{
    /* Under the directory's lock: a train running now may be about to
     * serve the version this would remove. */
    int lock = -1;
    br_status st = existing_dir(model_dir);
    if (!st) st = br__train_lock(model_dir, &lock);
    if (!st) st = br__models_prune_locked(model_dir, keep, removed);
    br__train_unlock(lock);
    return st;
}

/* ----------------------------------------------------------- publishing -- */

/* Ids, one per line (ids never contain control characters). */
br_status br__read_ids(const char *path, char ***ids, size_t *n, char **blob)
{
    char *text;
    br_status st = br__read_text(path, &text);
    if (st) return st;
    size_t k = 0;
    for (char *p = text; *p; p++) k += *p == '\n';
    char **v = br_calloc(k + 1, sizeof *v);
    if (!v) {
        br_free(text);
        return br_error(BR_ENOMEM, "%s", path);
    }
    size_t i = 0;
    for (char *p = text; *p && i < k;) {
        char *e = strchr(p, '\n');
        *e = 0;
        v[i++] = p;
        p = e + 1;
    }
    *ids = v;
    *n = i;
    *blob = text;
    return BR_OK;
}

br_status br__publish_version(const char *model_dir, const char *id, br_store *s,
                              const br__publish_extra *extra)
{
    /* The version as everything else reads it (br_model_open checks that its
     * parts agree): a rollback publishes exactly what a server would load. */
    br_model *m = NULL;
    const char **row = NULL;
    br_store_pub *pub = NULL;
    br_status st = br_model_open(model_dir, id, &m);
    if (st) return st;
    const br_catalog *cat = br_model_catalog(m);
    const br_tribes *tribes = br_model_tribes(m);
    uint32_t nb = br_model_books(m);
    size_t n_users = 0, k = 0;
    const char *const *users = br_model_readers(m, &n_users);
    const float *sc = NULL;
    const int32_t *it = br_model_lists(m, &sc, &k);
    row = br_calloc(k ? k : 1, sizeof *row);
    if (!row) {
        st = br_error(BR_ENOMEM, "publish");
        goto done;
    }
    br_progress p;
    br_progress_begin(&p, "train: publish", n_users + nb);
    if ((st = br_store_publish_begin(s, id, &pub))) goto done;
    for (uint32_t b = 0; b < nb && !st; b++) {
        const br_book *bk = br_catalog_book(cat, b);
        br_store_book sb = {
            bk->id, bk->title, bk->authors,      bk->genre, bk->image_url[0] ? bk->image_url : NULL,
            NULL,   bk->year,  tribes->labels[b]};
        st = br_store_pub_put_book(pub, &sb);
        if (!st && (b & 1023) == 0) st = br_progress_update(&p, b);
    }
    for (size_t u = 0; u < n_users && !st; u++) {
        size_t n = 0; /* the list ends at the first -1 (br_model_open checked the rest) */
        for (; n < k && it[u * k + n] >= 0; n++)
            row[n] = br_catalog_book(cat, (uint32_t)it[u * k + n])->id;
        st = br_store_pub_put_recs(pub, users[u], row, sc + u * k, n);
        if (!st && extra && extra->seen && extra->seen_n[u])
            st = br_store_pub_put_seen(pub, users[u], extra->seen[u], extra->seen_n[u]);
        if (!st && (u & 1023) == 0) st = br_progress_update(&p, nb + u);
    }
    if (!st && extra && extra->n_recent)
        st = br_store_pub_put_recent(pub, extra->recent, extra->n_recent);
    if (!st) st = br_store_pub_set_meta(pub, br_model_manifest(m));
    if (!st) {
        st = br_store_publish_commit(pub); /* frees pub whatever the outcome */
        pub = NULL;
    }
    if (!st) st = br_progress_end(&p);
done:
    br_store_publish_abort(pub);
    br_free(row);
    br_model_close(m);
    return st;
}

/* ------------------------------------------------- paths in a manifest -- */

/* The local path of a URI: lmdb:DIR[?options] (the path ends at '?') and
 * file:PATH; 0 for the others (redis://...), which name no path. */
int br__uri_local_path(const char *uri, size_t *len)
{
    if (!strncmp(uri, "lmdb:", 5))
        *len = strcspn(uri + 5, "?");
    else if (!strncmp(uri, "file:", 5))
        *len = strlen(uri + 5);
    else
        return 0;
    return *len > 0 && *len < PATH_MAX;
}

br_status br__uri_record(const char *model_dir, const char *uri, char *buf, size_t cap)
{
    size_t n;
    if (!br__uri_local_path(uri, &n)) return br__train_path(buf, cap, "%s", uri);
    char path[PATH_MAX], real[PATH_MAX], mreal[PATH_MAX], cwd[PATH_MAX];
    memcpy(path, uri + 5, n);
    path[n] = '\0';
    const char *rest = uri + 5 + n; /* the options */
    int have = realpath(path, real) != NULL;
    if (have && realpath(model_dir, mreal)) {
        size_t m = strlen(mreal);
        if (!strcmp(real, mreal)) return br__train_path(buf, cap, "%.5s.%s", uri, rest);
        if (m > 1 && !strncmp(real, mreal, m) && real[m] == '/')
            return br__train_path(buf, cap, "%.5s%s%s", uri, real + m + 1, rest);
    }
    if (path[0] == '/') return br__train_path(buf, cap, "%s", uri); /* as the caller wrote it */
    if (have) return br__train_path(buf, cap, "%.5s%s%s", uri, real, rest);
    if (!getcwd(cwd, sizeof cwd)) return br_error(BR_EIO, "getcwd: %s", strerror(errno));
    return br__train_path(buf, cap, "%.5s%s/%s%s", uri, cwd, path, rest);
}

br_status br__uri_resolve(const char *model_dir, long long format_version, const char *uri,
                          char *buf, size_t cap)
{
    size_t n;
    /* Version 1 wrote the URI as given: relative to the working directory. */
    if (format_version < 2 || !br__uri_local_path(uri, &n) || uri[5] == '/')
        return br__train_path(buf, cap, "%s", uri);
    return br__train_path(buf, cap, "%.5s%s/%s", uri, model_dir, uri + 5);
}

/* A local URI with its path made canonical (realpath when it exists). */
static void canonical_uri(const char *uri, char *buf, size_t cap)
{
    size_t n;
    char path[PATH_MAX], real[PATH_MAX];
    if (br__uri_local_path(uri, &n)) {
        memcpy(path, uri + 5, n);
        path[n] = '\0';
        if (realpath(path, real)) {
            snprintf(buf, cap, "%.5s%s%s", uri, real, uri + 5 + n);
            return;
        }
    }
    snprintf(buf, cap, "%s", uri);
}

int br__uri_same(const char *a, const char *b)
{
    char x[PATH_MAX + 64], y[PATH_MAX + 64];
    canonical_uri(a, x, sizeof x);
    canonical_uri(b, y, sizeof y);
    return !strcmp(x, y);
}

br_status br_models_store(const char *model_dir, const char *id, char *buf, size_t cap)
{
    char *text;
    br_status st = br_models_manifest(model_dir, id, &text);
    if (st) return st;
    json_t *j = json_loads(text, 0, NULL);
    br_free(text);
    const char *s = j ? json_string_value(json_object_get(j, "store")) : NULL;
    if (!s)
        st = br_error(BR_EFORMAT, "%s: version %s: manifest without a store", model_dir,
                      id ? id : "current");
    else
        st = br__uri_resolve(model_dir, json_integer_value(json_object_get(j, "format_version")), s,
                             buf, cap);
    json_decref(j);
    return st;
}

br_status br_event_rules_from_manifest(const char *manifest, br_event_rules *out)
{
    if (!manifest || !out) return br_error(BR_EINVAL, "br_event_rules_from_manifest: NULL");
    json_error_t je;
    json_t *j = json_loads(manifest, 0, &je);
    if (!j) return br_error(BR_EFORMAT, "model manifest: %s", je.text);
    br_status st = BR_OK;
    json_t *sc = json_object_get(json_object_get(j, "parameters"), "rating_scale");
    const char *format = json_string_value(json_object_get(j, "format"));
    if (sc) {
        json_t *lo = json_object_get(sc, "min"), *hi = json_object_get(sc, "max");
        double a = json_number_value(lo), b = json_number_value(hi);
        if (!json_is_number(lo) || !json_is_number(hi) || !(a < b))
            st = br_error(BR_EFORMAT, "model manifest: rating_scale is not {\"min\": A, "
                                      "\"max\": B} with A < B");
        else
            *out = (br_event_rules){(float)a, (float)b};
    } else if (format && !strcmp(format, "bookrec-model")) {
        *out = (br_event_rules)BR_EVENT_RULES_DEFAULT; /* what train used before --rating-scale */
    } else {
        st = br_error(BR_ENOTFOUND, "the version's metadata is no bookrec model manifest: no "
                                    "rating scale recorded");
    }
    json_decref(j);
    return st;
}

br_status br_models_rollback(const char *model_dir, const char *id, const char *store, char *to)
{
    char cur[BR_MODEL_ID_MAX] = "", target[BR_MODEL_ID_MAX], uri[PATH_MAX], vdir[PATH_MAX];
    int lock = -1;
    br_status st = existing_dir(model_dir);
    if (!st) st = br__train_lock(model_dir, &lock);
    if (st) return st;
    if ((st = br_models_current(model_dir, cur, sizeof cur))) goto done;
    if (id) {
        snprintf(target, sizeof target, "%s", id);
    } else {
        br_model_version *v;
        size_t n;
        if ((st = br_models_list(model_dir, &v, &n))) goto done;
        target[0] = 0;
        /* the newest older one that was served: never a killed run's */
        for (size_t i = 0; i < n; i++)
            if (v[i].served && version_number(v[i].id) < version_number(cur))
                strcpy(target, v[i].id);
        br_free(v);
        if (!target[0]) {
            st = br_error(BR_ENOTFOUND, "%s: no served version older than %s", model_dir, cur);
            goto done;
        }
    }
    if ((st = br_models_path(model_dir, target, vdir, sizeof vdir))) goto done;
    char *probe = NULL;
    if ((st = br_models_manifest(model_dir, target, &probe))) goto done;
    br_free(probe);
    if (!store) {
        if ((st = br_models_store(model_dir, target, uri, sizeof uri))) goto done;
        store = uri;
    }
    br_store *s = NULL;
    if ((st = br_store_open(store, 0, &s))) goto done;
    char served[BR_STORE_VERSION_MAX] = "";
    br_status vs = br_store_version(s, served, sizeof served);
    if (vs != BR_OK && vs != BR_ENOTFOUND) st = vs;
    br_error_clear();
    /* The readers' seen sets and interactions (br_models_restore): before
     * the switch when the store serves nothing (it lost its data: no list
     * is served without them), else after it (a rollback is urgent; they
     * are still there, the merge only adds what is missing). */
    br_models_restore_report rep;
    memset(&rep, 0, sizeof rep);
    int lost = !served[0];
    if (!st && lost) st = br__restore_readers(model_dir, s, store, NULL, 0, &rep);
    /* The new pointer is written before the store switches (as train does):
     * after it, only renames are left, so a full disk cannot leave the
     * store serving a version `current` does not name. */
    br__models_pointer ptr;
    int prepared = 0;
    if (!st) prepared = (st = br__models_pointer_prepare(model_dir, target, &ptr)) == BR_OK;
    /* Already served (a run killed between the store switch and the
     * pointer): only the pointer moves. */
    int switched = 0;
    if (!st && strcmp(served, target) != 0)
        switched = (st = br__publish_version(model_dir, target, s, NULL)) == BR_OK;
    if (prepared && st) br__models_pointer_abort(&ptr);
    if (prepared && !st && (st = br__models_pointer_commit(&ptr))) {
        char detail[512], now[BR_MODEL_ID_MAX];
        snprintf(detail, sizeof detail, "%s", br_error_detail());
        if (br_models_current(model_dir, now, sizeof now) == BR_OK && !strcmp(now, target)) {
            /* only the directory's fsync after the rename failed */
            br_log(BR_LOG_WARN, "models rollback: %s serves, but %s", target, detail);
            br_error_clear();
            st = BR_OK;
        } else if (switched && served[0] &&
                   br__publish_version(model_dir, served, s, NULL) == BR_OK) {
            /* `current` still names the old one: the store serves it again */
            st = br_error(st, "%s (the store serves %s again)", detail, served);
        }
    }
    /* After the switch the rollback is done: a failed merge is a warning
     * (the seen sets are still there; `store restore` retries it). */
    if (!st && !lost && br__restore_readers(model_dir, s, store, NULL, 0, &rep) != BR_OK) {
        br_log(BR_LOG_WARN,
               "models rollback: %s serves; merging the readers' seen sets and histories "
               "failed (%s): `bookrec store restore` retries it",
               target, br_error_detail());
        br_error_clear();
    }
    br_store_close(s);
    if (!st && to) strcpy(to, target);
done:
    br__train_unlock(lock);
    return st;
}
