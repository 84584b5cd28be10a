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
#include "serve/serve_internal.h"
#include "train/train_internal.h"

/* ------------------------------------------------------------- buffer -- */

static void sb_grow(sbuf *b, size_t need)
{
    if (b->oom || b->len + need + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + need + 1) cap *= 2;
    char *p = br_realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

void sb_reset(sbuf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->p) b->p[0] = 0;
}

void sb_free(sbuf *b)
{
    br_free(b->p);
    memset(b, 0, sizeof *b);
}

void sb_put(sbuf *b, const char *s, size_t n)
{
    sb_grow(b, n);
    if (b->oom) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_put(b, tmp, (size_t)n);
        return;
    }
    sb_grow(b, (size_t)n);
    if (b->oom) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Scores are printed on every listed book: printf's float path was the
 * largest user-space cost of a request, so finite values below 1e9 are
 * written here, rounded to 6 decimals with trailing zeros dropped. */
void sb_score(sbuf *b, double x)
{
    if (!(x > -1e9 && x < 1e9)) { /* NaN, inf, huge: printf's form */
        sb_printf(b, "%.6g", x);
        return;
    }
    char tmp[32], *e = tmp + sizeof tmp, *q = e;
    int neg = x < 0;
    uint64_t v = (uint64_t)((neg ? -x : x) * 1e6 + 0.5);
    uint64_t ip = v / 1000000u;
    uint32_t fr = (uint32_t)(v % 1000000u);
    if (fr) {
        int digits = 6;
        while (fr % 10 == 0) {
            fr /= 10;
            digits--;
        }
        for (; digits > 0; digits--) {
            *--q = (char)('0' + fr % 10);
            fr /= 10;
        }
        *--q = '.';
    }
    do {
        *--q = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    if (neg && v) *--q = '-';
    sb_put(b, q, (size_t)(e - q));
}

void sb_json_esc(sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
        sb_put(b, run, (size_t)(s - run));
        run = s + 1;
        switch (c) {
        case '"':
            sb_put(b, "\\\"", 2);
            break;
        case '\\':
            sb_put(b, "\\\\", 2);
            break;
        case '\n':
            sb_put(b, "\\n", 2);
            break;
        case '\t':
            sb_put(b, "\\t", 2);
            break;
        case '\r':
            sb_put(b, "\\r", 2);
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            sb_put(b, u, 6);
        }
        }
    }
    sb_put(b, run, (size_t)(s - run));
}

void sb_json_str(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    sb_json_esc(b, s);
    sb_put(b, "\"", 1);
}

/* ------------------------------------------------------------ snapshot -- */

static char *esc_dup(const char *s)
{
    sbuf b = {0};
    sb_json_esc(&b, s);
    if (b.oom || !b.p) {
        br_free(b.p);
        return br_strdup("");
    }
    return b.p;
}

static br_status make_book(srv_book *bk, const char *id, const char *title, int32_t tribe,
                           int32_t year)
{
    sbuf b = {0};
    sb_str(&b, "\"book_id\":");
    sb_json_str(&b, id);
    sb_str(&b, ",\"title\":");
    sb_json_str(&b, title);
    sb_printf(&b, ",\"tribe\":%d", tribe); /* the page colours a book by its tribe */
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

const char *srv_tribe_name(const srv_snap *s, int32_t tribe)
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
    br_free(s->nbr);
    br_free(s->nbr_sc);
    if (s->tribe_esc && s->tribes)
        for (uint32_t t = 0; t < s->tribes->k; t++) br_free(s->tribe_esc[t]);
    br_free(s->tribe_esc);
    br_pca_free(&s->pca);
    br_free(s->xy);
    br_free(s->pop_order);
    br_free(s->cold);
    br_free(s->users);
    br_free(s->users_blob);
    br_aligned_free(s->emb);
    br_hnsw_free(s->hnsw);
    br_tribes_free(s->tribes);
    br_catalog_free(s->cat);
    pthread_rwlock_destroy(&s->add_lock);
    br_free(s);
}

void srv_snap_release(srv_snap *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) snap_free(s);
}

static const srv_rk *pop_key;
static int by_pop(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (pop_key[x].pop != pop_key[y].pop) return pop_key[x].pop > pop_key[y].pop ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* How far down a reader's precomputed list counts as what they read, for
 * the cold-start weights: the first page of it. */
#define COLD_READER_TOP 10

static uint32_t cold_tribe(const srv_snap *s, uint32_t b, uint32_t k)
{
    int32_t t = s->tribes ? s->tribes->labels[b] : 0;
    return t >= 0 && (uint32_t)t < k ? (uint32_t)t : 0; /* no tribe: tribe 0 */
}

/* The cold-start list: what a stranger is shown. Each tribe weighs its
 * share of readers: how many readers' lists (the version's precomputed
 * ones, the first COLD_READER_TOP books; it holds no ratings) include one
 * of its books. Slots go to the tribes in proportion, Sainte-Lague's way
 * (the next slot to the largest weight / (2 * slots so far + 1)), each
 * tribe's books by popularity. So the first ten spread over the tribes
 * most readers read, and a tribe few read (one language, picture books)
 * gets few or no slots near the top instead of one in every ten. With no
 * lists every tribe weighs the same: round-robin. */
static br_status cold_list(srv_snap *s, const int32_t *items, size_t rows, size_t cols)
{
    uint32_t k = s->tribes && s->tribes->k ? s->tribes->k : 1;
    uint32_t want = 4 * BR_SERVE_N_MAX < s->n_base ? 4 * BR_SERVE_N_MAX : s->n_base;
    s->cold = br_malloc((want ? want : 1) * sizeof *s->cold);
    uint32_t *cursor = br_calloc(k, sizeof *cursor), *slots = br_calloc(k, sizeof *slots);
    size_t *readers = br_calloc(k, sizeof *readers), *last = br_calloc(k, sizeof *last);
    if (!s->cold || !cursor || !slots || !readers || !last) {
        br_free(cursor);
        br_free(slots);
        br_free(readers);
        br_free(last);
        return br_error(BR_ENOMEM, "cold list");
    }
    size_t total = 0, top = cols < COLD_READER_TOP ? cols : COLD_READER_TOP;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < top; j++) {
            int32_t b = items[r * cols + j];
            if (b < 0 || (uint32_t)b >= s->n_base) continue;
            uint32_t t = cold_tribe(s, (uint32_t)b, k);
            if (last[t] == r + 1) continue; /* counted for this reader */
            last[t] = r + 1;
            readers[t]++;
            total++;
        }
    for (uint32_t t = 0; !total && t < k; t++) readers[t] = 1;
    while (s->n_cold < want) {
        /* the tribe owed the next slot; a tribe whose books are all listed
         * drops out (ties: the lower tribe) */
        int64_t best = -1;
        double best_q = -1;
        for (uint32_t t = 0; t < k; t++) {
            double q = (double)readers[t] / (2.0 * slots[t] + 1);
            if (cursor[t] < s->n_base && q > best_q) best = t, best_q = q;
        }
        if (best < 0) break;
        uint32_t t = (uint32_t)best;
        while (cursor[t] < s->n_base) {
            uint32_t b = s->pop_order[cursor[t]++];
            if (cold_tribe(s, b, k) == t) {
                s->cold[s->n_cold++] = b;
                slots[t]++;
                break;
            }
        }
    }
    br_free(cursor);
    br_free(slots);
    br_free(readers);
    br_free(last);
    return BR_OK;
}

/* Model popularity: each reader's precomputed list gives its i-th book
 * 1 / log2(i + 2) (the DCG discount); summed over readers, scaled so the
 * most popular book has 1. The version holds no rating counts, and this is
 * what the model itself believes readers want. Into s->rk beside each
 * book's year, where the blend reads both. */
static br_status load_popularity(srv_snap *s, const char *vdir)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/recs_items.npy", vdir);
    br_array a = {0};
    br_status st = br_npy_read(path, BR_DTYPE_I32, &a);
    if (st) return st;
    s->rk = br_malloc((s->n_base ? s->n_base : 1) * sizeof *s->rk);
    s->pop_order = br_malloc((s->n_base ? s->n_base : 1) * sizeof *s->pop_order);
    if (!s->rk || !s->pop_order) {
        br_array_free(&a);
        return br_error(BR_ENOMEM, "popularity");
    }
    for (uint32_t b = 0; b < s->n_base; b++)
        s->rk[b] = (srv_rk){0, br_catalog_book(s->cat, b)->year};
    const int32_t *items = a.data;
    for (size_t r = 0; r < a.rows; r++)
        for (size_t j = 0; j < a.cols; j++) {
            int32_t b = items[r * a.cols + j];
            if (b >= 0 && (uint32_t)b < s->n_base) s->rk[b].pop += 1.0f / log2f((float)j + 2.0f);
        }
    float mx = 0;
    for (uint32_t b = 0; b < s->n_base; b++) mx = s->rk[b].pop > mx ? s->rk[b].pop : mx;
    for (uint32_t b = 0; b < s->n_base; b++) {
        if (mx > 0) s->rk[b].pop /= mx;
        s->pop_order[b] = b;
    }
    pop_key = s->rk; /* the load is serialised by the caller's reload lock */
    qsort(s->pop_order, s->n_base, sizeof *s->pop_order, by_pop);
    st = cold_list(s, items, a.rows, a.cols);
    br_array_free(&a);
    return st;
}

/* Every book's SRV_NBR_K nearest books, from the index (one batch search,
 * in parallel), itself left out. */
static br_status load_neighbours(srv_snap *s)
{
    const size_t k = SRV_NBR_K, n = s->n_base ? s->n_base : 1;
    s->nbr = br_malloc(n * k * sizeof *s->nbr);
    s->nbr_sc = br_malloc(n * k * sizeof *s->nbr_sc);
    int32_t *ids = br_malloc(n * (k + 1) * sizeof *ids);
    float *sc = br_malloc(n * (k + 1) * sizeof *sc);
    br_status st = s->nbr && s->nbr_sc && ids && sc ? BR_OK : br_error(BR_ENOMEM, "neighbours");
    if (!st && s->n_base) st = br_hnsw_search_batch(s->hnsw, s->emb, s->n_base, k + 1, 64, ids, sc);
    for (size_t b = 0; !st && b < s->n_base; b++) {
        size_t o = 0;
        for (size_t j = 0; j <= k && o < k; j++) {
            if (ids[b * (k + 1) + j] == (int32_t)b) continue;
            s->nbr[b * k + o] = ids[b * (k + 1) + j];
            s->nbr_sc[b * k + o++] = sc[b * (k + 1) + j];
        }
        for (; o < k; o++) s->nbr[b * k + o] = -1, s->nbr_sc[b * k + o] = -INFINITY;
    }
    br_free(ids);
    br_free(sc);
    return st;
}

/* Book b's neighbour list gains (c, score) if it beats the list's last. */
static void nbr_offer(srv_snap *s, uint32_t b, int32_t c, float score)
{
    int32_t *ids = s->nbr + (size_t)b * SRV_NBR_K;
    float *sc = s->nbr_sc + (size_t)b * SRV_NBR_K;
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

br_status srv_snap_load(const char *model_dir, srv_snap **out)
{
    *out = NULL;
    char vdir[PATH_MAX], path[PATH_MAX + 32];
    br_status st = br_models_path(model_dir, NULL, vdir, sizeof vdir);
    if (st) return st;
    char *mtext = NULL;
    st = br_models_manifest(model_dir, NULL, &mtext);
    if (st) return st;
    json_error_t jerr;
    br_event_rules rules;
    st = br_event_rules_from_manifest(mtext, &rules);
    json_t *man = st ? NULL : json_loads(mtext, 0, &jerr);
    br_free(mtext);
    if (st) return st;
    if (!man) return br_error(BR_EFORMAT, "%s: manifest: %s", vdir, jerr.text);

    srv_snap *s = br_calloc(1, sizeof *s);
    if (!s) {
        json_decref(man);
        return br_error(BR_ENOMEM, "snapshot");
    }
    pthread_rwlock_init(&s->add_lock, NULL);
    atomic_init(&s->refs, 1);
    s->rules = rules;
    const char *ver = json_string_value(json_object_get(man, "version"));
    snprintf(s->version, sizeof s->version, "%s", ver ? ver : "");
    json_t *params = json_object_get(man, "parameters");
    const char *enc = json_string_value(json_object_get(params, "encoder"));
    snprintf(s->encoder, sizeof s->encoder, "%s", enc ? enc : "use-lite");
    const char *tpl = json_string_value(json_object_get(params, "template"));
    s->template_desc = tpl && !strcmp(tpl, "description");
    json_decref(man);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    s->this_year = tm.tm_year + 1900;

    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    snprintf(path, sizeof path, "%s/books.csv", vdir);
    st = br_catalog_load(path, &lo, &s->cat, NULL);
    if (!st) {
        s->n_base = br_catalog_count(s->cat);
        s->ids = br_catalog_ids(s->cat);
    }
    br_array emb = {0};
    if (!st) {
        snprintf(path, sizeof path, "%s/embeddings.npy", vdir);
        st = br_npy_read(path, BR_DTYPE_F32, &emb);
    }
    if (!st && emb.rows != s->n_base)
        st = br_error(BR_EFORMAT, "%s: %zu rows for %u books", path, emb.rows, s->n_base);
    if (!st) {
        s->emb = emb.data;
        s->dim = emb.cols;
        snprintf(path, sizeof path, "%s/index.hnsw", vdir);
        st = br_hnsw_load(path, &s->hnsw);
    } else {
        br_array_free(&emb);
    }
    if (!st && (br_hnsw_count(s->hnsw) != s->n_base || br_hnsw_dim(s->hnsw) != s->dim))
        st = br_error(BR_EFORMAT, "%s: %zu vectors of %zu for %u books of %zu", path,
                      br_hnsw_count(s->hnsw), br_hnsw_dim(s->hnsw), s->n_base, s->dim);
    if (!st) st = load_neighbours(s);
    if (!st) {
        snprintf(path, sizeof path, "%s/tribes", vdir);
        st = br_tribes_load(path, &s->tribes);
    }
    if (!st && s->tribes->n_books != s->n_base)
        st = br_error(BR_EFORMAT, "%s: tribes of %zu books for %u", path, s->tribes->n_books,
                      s->n_base);
    if (!st) {
        s->tribe_esc = br_calloc(s->tribes->k, sizeof *s->tribe_esc);
        if (!s->tribe_esc) st = br_error(BR_ENOMEM, "tribes");
        for (uint32_t t = 0; !st && t < s->tribes->k; t++)
            s->tribe_esc[t] = esc_dup(s->tribes->tribe[t].name);
    }
    /* The map: the project's PCA fitted once here on the version's
     * embeddings; books posted later are projected with the same fit. */
    if (!st && s->n_base >= 2) st = br_pca_fit(s->emb, s->n_base, s->dim, 2, &s->pca);
    if (!st && s->n_base >= 2) {
        s->xy = br_malloc((size_t)s->n_base * 2 * sizeof *s->xy);
        st = s->xy ? br_pca_transform(&s->pca, s->emb, s->n_base, s->xy)
                   : br_error(BR_ENOMEM, "map");
    }
    if (!st) st = load_popularity(s, vdir);
    if (!st) { /* the readers, for GET /api/users */
        snprintf(path, sizeof path, "%s/user_ids.txt", vdir);
        st = br__read_ids(path, &s->users, &s->n_users, &s->users_blob);
    }
    if (!st) {
        s->books = br_calloc(s->n_base ? s->n_base : 1, sizeof *s->books);
        if (!s->books) st = br_error(BR_ENOMEM, "books");
    }
    for (uint32_t b = 0; !st && b < s->n_base; b++) {
        const br_book *bk = br_catalog_book(s->cat, b);
        st = make_book(&s->books[b], bk->id, bk->title, s->tribes->labels[b], bk->year);
    }
    if (st) {
        snap_free(s);
        return st;
    }
    *out = s;
    return BR_OK;
}

int64_t srv_snap_find(srv_snap *s, const char *id)
{
    return srv_snap_find_n(s, id, strlen(id));
}

int64_t srv_snap_find_n(srv_snap *s, const char *id, size_t len)
{
    int64_t b = br_idmap_find(s->ids, id, len);
    if (b >= 0 || !s->n_added) return b;
    for (size_t i = 0; i < s->n_added; i++)
        if (!strncmp(s->added[i].id, id, len) && s->added[i].id[len] == '\0')
            return (int64_t)s->n_base + (int64_t)i;
    return -1;
}

int64_t srv_snap_resolve(void *snap, const char *id, size_t len)
{
    return srv_snap_find_n(snap, id, len);
}

br_store_reader srv_reader(srv_snap *s, const br_serve_rank *cfg, br_store_interaction *recent,
                           uint32_t *rec_idx, float *rec_score, uint32_t *seen_idx)
{
    return (br_store_reader){.recent = recent,
                             .recent_cap = srv_recent_wanted(cfg),
                             .recs_cap = BR_SERVE_N_MAX,
                             .resolve = srv_snap_resolve,
                             .resolve_ctx = s,
                             .rec_idx = rec_idx,
                             .rec_score = rec_score,
                             .seen_idx = seen_idx,
                             .seen_cap = SRV_SEEN_IDX};
}

const float *srv_snap_emb(const srv_snap *s, uint32_t b)
{
    if (b < s->n_base) return s->emb + (size_t)b * s->dim;
    return s->added_emb + (size_t)(b - s->n_base) * s->dim;
}

static char *dup_or_empty(const char *x)
{
    return br_strdup(x ? x : "");
}

br_status srv_snap_add(srv_snap *s, const srv_added *a, const float *vec, uint32_t *index)
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
    float xy[2] = {0, 0};
    if (s->pca.components) br_pca_transform(&s->pca, vec, 1, xy);

    pthread_rwlock_wrlock(&s->add_lock);
    br_status st = BR_OK;
    if (srv_snap_find(s, a->id) >= 0) {
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
        int32_t *ni = nb ? br_realloc(s->nbr, (s->n_base + cap) * SRV_NBR_K * sizeof *ni) : NULL;
        if (ni) s->nbr = ni;
        float *ns = ni ? br_realloc(s->nbr_sc, (s->n_base + cap) * SRV_NBR_K * sizeof *ns) : NULL;
        if (ns) s->nbr_sc = ns;
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
    int32_t *mine = s->nbr + (size_t)id * SRV_NBR_K;
    float *mine_sc = s->nbr_sc + (size_t)id * SRV_NBR_K;
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

void srv_snap_map_json(srv_snap *s, sbuf *b)
{
    uint32_t k = s->tribes ? s->tribes->k : 0;
    uint32_t *size = br_calloc(k ? k : 1, sizeof *size);
    for (uint32_t t = 0; size && t < k; t++) size[t] = s->tribes->tribe[t].size;
    for (size_t i = 0; size && i < s->n_added; i++)
        if (s->added[i].tribe >= 0) size[s->added[i].tribe]++;
    sb_str(b, "{\"model_version\":");
    sb_json_str(b, s->version);
    sb_str(b, ",\"tribes\":[");
    for (uint32_t t = 0; t < k; t++) {
        sb_printf(b, "%s{\"id\":%u,\"name\":\"", t ? "," : "", t);
        sb_str(b, s->tribe_esc[t]);
        sb_printf(b, "\",\"size\":%u}", size ? size[t] : 0);
    }
    br_free(size);
    sb_str(b, "],\"points\":[");
    uint32_t stride = (s->n_base + BR_SERVE_MAP_POINTS_MAX - 1) / BR_SERVE_MAP_POINTS_MAX;
    if (!stride) stride = 1;
    float xy[2];
    int first = 1;
    for (uint32_t i = 0; s->xy && i < s->n_base; i += stride) {
        xy[0] = s->xy[2 * (size_t)i];
        xy[1] = s->xy[2 * (size_t)i + 1];
        sb_printf(b, "%s{", first ? "" : ",");
        sb_put(b, s->books[i].frag, s->books[i].frag_len);
        sb_printf(b, ",\"x\":%.5g,\"y\":%.5g}", (double)xy[0], (double)xy[1]);
        first = 0;
    }
    for (size_t i = 0; i < s->n_added; i++) {
        srv_book *bk = &s->books[s->n_base + i];
        sb_printf(b, "%s{", first ? "" : ",");
        sb_put(b, bk->frag, bk->frag_len);
        sb_printf(b, ",\"x\":%.5g,\"y\":%.5g}", (double)s->added[i].xy[0],
                  (double)s->added[i].xy[1]);
        first = 0;
    }
    sb_str(b, "]}");
}
