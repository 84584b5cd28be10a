/*
 * recommend.c: content recommendations: the notebook's favourite-book
 * tribe rule, cosine similarity to a book, and to a reader's profile
 * (the feedback rule's: liked books pull, disliked ones push; data/feedback.c).
 * Each scans the reader's ratings once (ratings are in file order; a
 * per-user index belongs to the pipeline, not here).
 */
#include <math.h>
#include <string.h>

#include "content/internal.h"
#include "data/feedback.h"

br_status br_content_favourite(const br_ratings *r, uint32_t user, uint32_t *book)
{
    if (!r || !book) return br_error(BR_EINVAL, "content: bad arguments");
    const uint32_t *u = br_ratings_users(r), *b = br_ratings_books(r);
    const float *v = br_ratings_values(r);
    size_t n = br_ratings_count(r);
    int found = 0;
    float best = 0;
    for (size_t i = 0; i < n; i++) /* strict >: ties keep the first occurrence */
        if (u[i] == user && (!found || v[i] > best)) {
            best = v[i];
            *book = b[i];
            found = 1;
        }
    if (!found) return br_error(BR_ENOTFOUND, "reader %u has rated no books", user);
    return BR_OK;
}

/* rated (n_books,) = 1 for each book the reader rated */
static uint8_t *rated_mask(const br_ratings *r, uint32_t user, size_t n_books)
{
    uint8_t *m = br_calloc(n_books ? n_books : 1, 1);
    if (!m) return NULL;
    const uint32_t *u = br_ratings_users(r), *b = br_ratings_books(r);
    size_t n = br_ratings_count(r);
    for (size_t i = 0; i < n; i++)
        if (u[i] == user && b[i] < n_books) m[b[i]] = 1;
    return m;
}

br_status br_content_tribe_recs(const br_tribes *t, const br_ratings *r, uint32_t user, size_t n,
                                int32_t *books, size_t *count)
{
    if (!t || !r || (!books && n) || !count) return br_error(BR_EINVAL, "content: bad arguments");
    *count = 0;
    if (br_ratings_num_books(r) != t->n_books)
        return br_error(BR_EINVAL, "content: ratings cover %u books, the tribes %zu",
                        br_ratings_num_books(r), t->n_books);
    uint32_t fav;
    br_status st = br_content_favourite(r, user, &fav);
    if (st != BR_OK) return st;
    uint8_t *seen = rated_mask(r, user, t->n_books);
    if (!seen) return br_error(BR_ENOMEM, "content: out of memory");
    int32_t tribe = t->labels[fav];
    for (size_t i = 0; i < t->n_books && *count < n; i++)
        if (t->labels[i] == tribe && !seen[i]) books[(*count)++] = (int32_t)i;
    br_free(seen);
    return BR_OK;
}

br_status br_content_profile(const float *emb, size_t n_books, size_t dim, const br_ratings *r,
                             uint32_t user, float *profile)
{
    if (!emb || !r || !profile || dim == 0) return br_error(BR_EINVAL, "content: bad arguments");
    const uint32_t *u = br_ratings_users(r), *b = br_ratings_books(r);
    const float *v = br_ratings_values(r);
    size_t n = br_ratings_count(r), mine = 0;
    /* The reader's ratings, and the global mean (the feedback rule's prior). */
    double gsum = 0;
    for (size_t i = 0; i < n; i++) {
        gsum += v[i];
        mine += u[i] == user && b[i] < n_books;
    }
    uint32_t *books = br_malloc((mine + 1) * sizeof *books);
    float *vals = br_malloc((mine + 1) * sizeof *vals), *neg = br_malloc(dim * sizeof *neg);
    if (!books || !vals || !neg) {
        br_free(books);
        br_free(vals);
        br_free(neg);
        return br_error(BR_ENOMEM, "content: out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (u[i] == user && b[i] < n_books) books[k] = b[i], vals[k++] = v[i];
    int any = br__feedback_profile(emb, dim, books, vals, k, n ? (float)(gsum / (double)n) : 0.0f,
                                   profile, neg);
    br_free(books);
    br_free(vals);
    br_free(neg);
    if (!any) return br_error(BR_ENOTFOUND, "reader %u has rated no books", user);
    return BR_OK;
}

br_status br_content_similar_book(const float *emb, size_t n_books, size_t dim, uint32_t book,
                                  size_t n, int32_t *ids, float *scores)
{
    if (!emb || book >= n_books) return br_error(BR_EINVAL, "content: book %u out of range", book);
    uint8_t *ex = br_calloc(n_books, 1);
    if (!ex) return br_error(BR_ENOMEM, "content: out of memory");
    ex[book] = 1;
    br_status st = br_topk_search(emb, n_books, dim, emb + (size_t)book * dim, 1, n, ex, ids,
                                  scores);
    br_free(ex);
    return st;
}

br_status br_content_similar_user(const float *emb, size_t n_books, size_t dim,
                                  const br_ratings *r, uint32_t user, size_t n, int32_t *ids,
                                  float *scores)
{
    float *p = br_aligned_alloc(dim * sizeof(float), BR_ALIGN);
    if (!p) return br_error(BR_ENOMEM, "content: out of memory");
    br_status st = br_content_profile(emb, n_books, dim, r, user, p);
    uint8_t *seen = st == BR_OK ? rated_mask(r, user, n_books) : NULL;
    if (st == BR_OK && !seen) st = br_error(BR_ENOMEM, "content: out of memory");
    if (st == BR_OK) st = br_topk_search(emb, n_books, dim, p, 1, n, seen, ids, scores);
    br_free(seen);
    br_aligned_free(p);
    return st;
}
