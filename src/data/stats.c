/*
 * stats.c: the dataset summary behind `bookrec stats`: sizes, sparsity,
 * the ratings histogram, ratings per user and per book, genre counts.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/data.h"

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double median_u32(uint32_t *v, size_t n)
{
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp_u32);
    return n % 2 ? v[n / 2] : 0.5 * ((double)v[n / 2 - 1] + (double)v[n / 2]);
}

static void count_stats(const uint32_t *idx, size_t n, uint32_t domain, uint32_t *mn,
                        uint32_t *mx, double *median, uint32_t *zero, uint32_t *counts)
{
    memset(counts, 0, (size_t)domain * sizeof *counts);
    for (size_t i = 0; i < n; i++) counts[idx[i]]++;
    *mn = UINT32_MAX;
    *mx = 0;
    if (zero) *zero = 0;
    for (uint32_t i = 0; i < domain; i++) {
        if (counts[i] < *mn) *mn = counts[i];
        if (counts[i] > *mx) *mx = counts[i];
        if (zero && counts[i] == 0) (*zero)++;
    }
    if (domain == 0) *mn = 0;
    *median = median_u32(counts, domain);
}

static br_status ratings_stats(const br_ratings *r, br_stats *s)
{
    size_t n = br_ratings_count(r);
    const float *v = br_ratings_values(r);
    uint32_t dom = s->n_users > s->n_books ? s->n_users : s->n_books;
    uint32_t *counts = br_malloc(((size_t)dom + 1) * sizeof *counts);
    if (!counts) return br_error(BR_ENOMEM, "stats: out of memory");
    count_stats(br_ratings_users(r), n, s->n_users, &s->user_min, &s->user_max, &s->user_median,
                NULL, counts);
    count_stats(br_ratings_books(r), n, s->n_books, &s->book_min, &s->book_max, &s->book_median,
                &s->books_unrated, counts);
    br_free(counts);

    double sum = 0;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        if (v[i] < lo) lo = v[i];
        if (v[i] > hi) hi = v[i];
    }
    s->mean_rating = n ? sum / (double)n : 0;
    /* Histogram over distinct values; if there are too many, equal bins. */
    s->n_bins = 0;
    int too_many = 0;
    for (size_t i = 0; i < n && !too_many; i++) {
        int k = 0;
        while (k < s->n_bins && s->bin_value[k] != v[i]) k++;
        if (k < s->n_bins) continue;
        if (s->n_bins == BR_STATS_MAX_BINS) too_many = 1;
        else s->bin_value[s->n_bins++] = v[i];
    }
    if (too_many) {
        s->n_bins = 10;
        for (int k = 0; k < 10; k++) s->bin_value[k] = lo + (hi - lo) * (float)k / 10.0f;
        memset(s->bin_count, 0, sizeof s->bin_count);
        for (size_t i = 0; i < n; i++) {
            int k = hi > lo ? (int)((v[i] - lo) / (hi - lo) * 10.0f) : 0;
            s->bin_count[k > 9 ? 9 : k]++;
        }
        return BR_OK;
    }
    /* Sort the distinct values, then count. */
    for (int a = 1; a < s->n_bins; a++)
        for (int b = a; b > 0 && s->bin_value[b - 1] > s->bin_value[b]; b--) {
            float t = s->bin_value[b];
            s->bin_value[b] = s->bin_value[b - 1];
            s->bin_value[b - 1] = t;
        }
    memset(s->bin_count, 0, sizeof s->bin_count);
    for (size_t i = 0; i < n; i++) {
        int k = 0;
        while (s->bin_value[k] != v[i]) k++;
        s->bin_count[k]++;
    }
    return BR_OK;
}

/* Genre counts: a small map from name to count, most frequent first. */
typedef struct genre_count {
    const char *name;
    size_t len;
    uint32_t count;
} genre_count;

static int cmp_genre(const void *a, const void *b)
{
    const genre_count *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static br_status genre_stats(const br_catalog *books, br_stats *s)
{
    uint32_t nb = br_catalog_count(books);
    s->genre_from_tags = !(br_catalog_columns(books) & BR_COL_GENRE);
    genre_count *g = br_malloc(((size_t)nb + 1) * sizeof *g);
    br_idmap *names = NULL;
    if (!g || br_idmap_create(&names) != BR_OK) {
        br_free(g);
        return br_error(BR_ENOMEM, "stats: out of memory");
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < nb; i++) {
        const br_book *b = br_catalog_book(books, i);
        const char *name = s->genre_from_tags ? b->tags : b->genre;
        size_t len = s->genre_from_tags ? strcspn(name, "|") : strlen(name);
        if (len == 0) continue;
        uint32_t k;
        int added;
        if (br_idmap_intern(names, name, len, &k, &added) != BR_OK) {
            br_idmap_free(names);
            br_free(g);
            return br_error(BR_ENOMEM, "stats: out of memory");
        }
        if (added) g[n++] = (genre_count){NULL, len, 0};
        g[k].count++;
    }
    /* Names only now: the idmap's arena moves while it grows. */
    for (uint32_t k = 0; k < n; k++) g[k].name = br_idmap_name(names, k);
    qsort(g, n, sizeof *g, cmp_genre);
    s->n_genres_total = (int)n;
    s->n_genres = n < BR_STATS_MAX_GENRES ? (int)n : BR_STATS_MAX_GENRES;
    for (int k = 0; k < s->n_genres; k++) {
        size_t len = g[k].len < sizeof s->genre[k] - 1 ? g[k].len : sizeof s->genre[k] - 1;
        memcpy(s->genre[k], g[k].name, len);
        s->genre[k][len] = '\0';
        s->genre_count[k] = g[k].count;
    }
    br_idmap_free(names);
    br_free(g);
    return BR_OK;
}

br_status br_stats_compute(const br_catalog *books, const br_ratings *ratings, br_stats *out)
{
    if (!books || !out) return br_error(BR_EINVAL, "stats: no catalogue");
    memset(out, 0, sizeof *out);
    out->n_books = br_catalog_count(books);
    if (ratings) {
        out->n_users = br_ratings_num_users(ratings);
        out->n_ratings = br_ratings_count(ratings);
        double cells = (double)out->n_users * (double)out->n_books;
        out->density = cells > 0 ? (double)out->n_ratings / cells : 0;
        out->sparsity = 1.0 - out->density;
        br_status st = ratings_stats(ratings, out);
        if (st != BR_OK) return st;
    }
    return genre_stats(books, out);
}
