/*
 * split.c: the train/test split of the evaluation protocol. Each reader's
 * ratings are bucketed (stable counting sort, so file order is kept), a
 * seeded share of them held out (or the latest ones), and the rest kept
 * for training in the input's order. br_split_write hands a split to peers
 * in other languages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/eval.h"

typedef struct by_time_key {
    int64_t time;
    uint32_t pos;
} by_time_key;

/* Latest first; among equal timestamps the later row is the newer one. */
static int cmp_latest(const void *a, const void *b)
{
    const by_time_key *x = a, *y = b;
    if (x->time != y->time) return x->time < y->time ? 1 : -1;
    return x->pos < y->pos ? 1 : -1;
}

typedef struct book_value {
    uint32_t book;
    float value;
} book_value;

static int cmp_book(const void *a, const void *b)
{
    uint32_t x = ((const book_value *)a)->book, y = ((const book_value *)b)->book;
    return (x > y) - (x < y);
}

void br_split_free(br_split *s)
{
    if (!s) return;
    br_free(s->train_user);
    br_free(s->train_book);
    br_free(s->train_value);
    br_free(s->test_ptr);
    br_free(s->test_book);
    br_free(s->test_value);
    memset(s, 0, sizeof *s);
}

/* The split of n ratings given as arrays (file order); br_split_ratings
 * and br_split_train both come here. */
static br_status split_arrays(size_t n, uint32_t nu, uint32_t n_books, const uint32_t *user,
                              const uint32_t *book, const float *value, const int64_t *time,
                              const br_split_options *opt, br_split *out)
{
    br_split_options o = opt ? *opt : (br_split_options)BR_SPLIT_OPTIONS_DEFAULT;
    memset(out, 0, sizeof *out);
    if (!(o.test_fraction > 0 && o.test_fraction < 1))
        return br_error(BR_EINVAL, "split: test fraction %g is not in (0, 1)",
                        (double)o.test_fraction);
    if (o.min_ratings < 2)
        return br_error(BR_EINVAL, "split: readers need at least 2 ratings to hold one out");
    if (o.by_time && !time)
        return br_error(BR_EINVAL, "split: a time-ordered split needs a timestamp column");
    out->n_users = nu;
    out->n_books = n_books;
    out->relevant_min = o.relevant_min;

    uint64_t *start = br_calloc((size_t)nu + 1, sizeof *start);
    uint32_t *order = br_malloc((n ? n : 1) * sizeof *order);
    unsigned char *held = br_calloc(n ? n : 1, 1);
    by_time_key *keys = NULL;
    out->test_ptr = br_calloc((size_t)nu + 1, sizeof *out->test_ptr);
    br_status st = BR_OK;
    if (!start || !order || !held || !out->test_ptr) {
        st = br_error(BR_ENOMEM, "split: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) start[user[i] + 1]++;
    uint32_t max_count = 0;
    for (uint32_t u = 0; u < nu; u++) {
        if (start[u + 1] > max_count) max_count = (uint32_t)start[u + 1];
        start[u + 1] += start[u];
    }
    {
        uint64_t *fill = br_malloc(((size_t)nu + 1) * sizeof *fill);
        if (!fill) {
            st = br_error(BR_ENOMEM, "split: out of memory");
            goto fail;
        }
        memcpy(fill, start, ((size_t)nu + 1) * sizeof *fill);
        for (size_t i = 0; i < n; i++) order[fill[user[i]]++] = (uint32_t)i;
        br_free(fill);
    }
    if (o.by_time && !(keys = br_malloc(((size_t)max_count + 1) * sizeof *keys))) {
        st = br_error(BR_ENOMEM, "split: out of memory");
        goto fail;
    }

    br_rng rng;
    br_rng_seed(&rng, o.seed);
    size_t n_test = 0;
    for (uint32_t u = 0; u < nu; u++) {
        uint32_t *rows = order + start[u];
        uint32_t count = (uint32_t)(start[u + 1] - start[u]);
        if (count < o.min_ratings) continue;
        uint32_t t = (uint32_t)(o.test_fraction * (float)count + 0.5f);
        if (t < 1) t = 1;
        if (t > count - 1) t = count - 1;
        if (o.by_time) {
            for (uint32_t j = 0; j < count; j++) keys[j] = (by_time_key){time[rows[j]], rows[j]};
            qsort(keys, count, sizeof *keys, cmp_latest);
            for (uint32_t j = 0; j < t; j++) held[keys[j].pos] = 1;
        } else {
            /* Partial Fisher-Yates on a copy: the first t picks are held out. */
            for (uint32_t j = 0; j < t; j++) {
                uint32_t pick = j + (uint32_t)br_rng_below(&rng, count - j);
                uint32_t tmp = rows[j];
                rows[j] = rows[pick];
                rows[pick] = tmp;
                held[rows[j]] = 1;
            }
        }
        n_test += t;
        out->n_eval_users++;
    }

    out->n_test = n_test;
    out->n_train = n - n_test;
    out->train_user = br_malloc((out->n_train + 1) * sizeof *out->train_user);
    out->train_book = br_malloc((out->n_train + 1) * sizeof *out->train_book);
    out->train_value = br_malloc((out->n_train + 1) * sizeof *out->train_value);
    out->test_book = br_malloc((n_test + 1) * sizeof *out->test_book);
    out->test_value = br_malloc((n_test + 1) * sizeof *out->test_value);
    book_value *pairs = br_malloc((n_test + 1) * sizeof *pairs);
    if (!out->train_user || !out->train_book || !out->train_value || !out->test_book ||
        !out->test_value || !pairs) {
        br_free(pairs);
        st = br_error(BR_ENOMEM, "split: out of memory");
        goto fail;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (held[i]) {
            out->test_ptr[user[i] + 1]++;
            continue;
        }
        out->train_user[w] = user[i];
        out->train_book[w] = book[i];
        out->train_value[w] = value[i];
        w++;
    }
    for (uint32_t u = 0; u < nu; u++) out->test_ptr[u + 1] += out->test_ptr[u];
    /* Held-out ratings per reader, sorted by book so relevance is a search. */
    for (uint32_t u = 0; u < nu; u++) {
        uint64_t lo = out->test_ptr[u], k = lo;
        for (uint64_t j = start[u]; j < start[u + 1]; j++)
            if (held[order[j]]) pairs[k++] = (book_value){book[order[j]], value[order[j]]};
        qsort(pairs + lo, k - lo, sizeof *pairs, cmp_book);
        for (uint64_t j = lo; j < k; j++) {
            out->test_book[j] = pairs[j].book;
            out->test_value[j] = pairs[j].value;
        }
    }
    br_free(pairs);
    br_free(start);
    br_free(order);
    br_free(held);
    br_free(keys);
    return BR_OK;
fail:
    br_free(start);
    br_free(order);
    br_free(held);
    br_free(keys);
    br_split_free(out);
    return st;
}

br_status br_split_ratings(const br_ratings *r, const br_split_options *opt, br_split *out)
{
    return split_arrays(br_ratings_count(r), br_ratings_num_users(r), br_ratings_num_books(r),
                        br_ratings_users(r), br_ratings_books(r), br_ratings_values(r),
                        br_ratings_timestamps(r), opt, out);
}

br_status br_split_train(const br_split *s, const br_split_options *opt, br_split *out)
{
    br_split_options o = opt ? *opt : (br_split_options)BR_SPLIT_OPTIONS_DEFAULT;
    if (o.by_time) return br_error(BR_EINVAL, "split: the training part keeps no timestamps");
    return split_arrays(s->n_train, s->n_users, s->n_books, s->train_user, s->train_book,
                        s->train_value, NULL, &o, out);
}

/* A file of the split: a NULL f (fopen failed) or a failed write or close
 * is the same error. */
static br_status close_written(FILE *f, int failed, const char *path)
{
    int e = errno;
    if (f && fclose(f)) failed = 1, e = errno;
    if (!f || failed) return br_error(BR_EIO, "cannot write %s: %s", path, strerror(e));
    return BR_OK;
}

br_status br_split_write(const br_split *s, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    FILE *m = fopen(path, "w");
    int bad = m && fprintf(m, "{\"readers\": %u, \"books\": %u}\n", s->n_users, s->n_books) < 0;
    br_status st = close_written(m, bad, path);
    for (int part = 0; part < 2 && !st; part++) {
        snprintf(path, sizeof path, "%s/%s", dir, part ? "test.csv" : "train.csv");
        FILE *f = fopen(path, "w");
        bad = !f || fprintf(f, "reader,book,rating\n") < 0;
        if (!part)
            for (size_t i = 0; i < s->n_train && !bad; i++)
                bad = fprintf(f, "%u,%u,%g\n", s->train_user[i], s->train_book[i],
                              (double)s->train_value[i]) < 0;
        else
            for (uint32_t u = 0; u < s->n_users && !bad; u++)
                for (uint64_t j = s->test_ptr[u]; j < s->test_ptr[u + 1] && !bad; j++)
                    bad = fprintf(f, "%u,%u,%g\n", u, s->test_book[j],
                                  (double)s->test_value[j]) < 0;
        st = close_written(f, bad && f, path);
    }
    return st;
}
