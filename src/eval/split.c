/*
 * split.c: the train/test split of the evaluation protocol. Each reader's
 * ratings are bucketed (stable counting sort, so file order is kept), a
 * seeded share of them held out (or the latest ones), and the rest kept
 * for training in the input's order; the other protocols' splits (cold
 * books, held-out readers) are here too. br_split_write hands a split to
 * peers in other languages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/eval.h"
#include "core/afile.h"

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
    br_free(s->fold_in);
    br_free(s->candidate);
    memset(s, 0, sizeof *s);
}

/* The split of n ratings given as arrays (file order); br_split_ratings,
 * br_split_readers and br_split_train come here. only (n_users,), NULL:
 * every reader: the readers who may have ratings held out. */
static br_status split_arrays(size_t n, uint32_t nu, uint32_t n_books, const uint32_t *user,
                              const uint32_t *book, const float *value, const int64_t *time,
                              const br_split_options *opt, const uint8_t *only, br_split *out)
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
        if (count < o.min_ratings || (only && !only[u])) continue;
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
                        br_ratings_timestamps(r), opt, NULL, out);
}

br_status br_split_train(const br_split *s, const br_split_options *opt, br_split *out)
{
    br_split_options o = opt ? *opt : (br_split_options)BR_SPLIT_OPTIONS_DEFAULT;
    if (o.by_time) return br_error(BR_EINVAL, "split: the training part keeps no timestamps");
    if (!s->fold_in)
        return split_arrays(s->n_train, s->n_users, s->n_books, s->train_user, s->train_book,
                            s->train_value, NULL, &o, NULL, out);
    /* Without the fold-in histories: they are not training data. */
    size_t n = 0;
    uint32_t *u = br_malloc((s->n_train + 1) * sizeof *u);
    uint32_t *b = br_malloc((s->n_train + 1) * sizeof *b);
    float *v = br_malloc((s->n_train + 1) * sizeof *v);
    br_status st = BR_OK;
    if (!u || !b || !v) {
        memset(out, 0, sizeof *out);
        st = br_error(BR_ENOMEM, "split: out of memory");
    }
    for (size_t i = 0; !st && i < s->n_train; i++)
        if (!s->fold_in[s->train_user[i]])
            u[n] = s->train_user[i], b[n] = s->train_book[i], v[n++] = s->train_value[i];
    if (!st) st = split_arrays(n, s->n_users, s->n_books, u, b, v, NULL, &o, NULL, out);
    br_free(u);
    br_free(b);
    br_free(v);
    return st;
}

/* Shuffles ids[0..n) (Fisher-Yates) so that a prefix is a seeded sample. */
static void shuffle(uint32_t *ids, uint32_t n, br_rng *rng)
{
    for (uint32_t i = 0; i + 1 < n; i++) {
        uint32_t j = i + (uint32_t)br_rng_below(rng, n - i);
        uint32_t t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
    }
}

/* A seeded share of n ids (rounded, at least one when n > 0). */
static uint32_t share(uint32_t n, float fraction)
{
    uint32_t c = (uint32_t)(fraction * (float)n + 0.5f);
    return n && c < 1 ? 1 : c > n ? n : c;
}

/* The options (opt or the defaults) into *o, out emptied, the share checked. */
static br_status begin(const br_split_options *opt, float fraction, const char *what,
                       br_split *out, br_split_options *o)
{
    *o = opt ? *opt : (br_split_options)BR_SPLIT_OPTIONS_DEFAULT;
    memset(out, 0, sizeof *out);
    if (!(fraction > 0 && fraction < 1))
        return br_error(BR_EINVAL, "split: %s fraction %g is not in (0, 1)", what,
                        (double)fraction);
    return BR_OK;
}

br_status br_split_cold_books(const br_ratings *r, const br_split_options *opt,
                              float book_fraction, br_split *out)
{
    br_split_options o;
    br_status st = begin(opt, book_fraction, "cold book", out, &o);
    if (st) return st;
    size_t n = br_ratings_count(r);
    uint32_t nu = br_ratings_num_users(r), nbk = br_ratings_num_books(r);
    const uint32_t *user = br_ratings_users(r), *book = br_ratings_books(r);
    const float *value = br_ratings_values(r);
    out->n_users = nu;
    out->n_books = nbk;
    out->relevant_min = o.relevant_min;
    uint32_t *ids = br_malloc(((size_t)nbk + 1) * sizeof *ids);
    uint32_t *n_tr = br_calloc((size_t)nu + 1, sizeof *n_tr);
    uint8_t *liked = br_calloc((size_t)nu + 1, 1);
    out->candidate = br_calloc((size_t)nbk + 1, 1);
    out->test_ptr = br_calloc((size_t)nu + 1, sizeof *out->test_ptr);
    if (!ids || !n_tr || !liked || !out->candidate || !out->test_ptr) {
        st = br_error(BR_ENOMEM, "split: out of memory");
        goto fail;
    }
    /* The rated books, in index order, then a seeded prefix of them. */
    for (size_t i = 0; i < n; i++) out->candidate[book[i]] = 1;
    uint32_t n_rated = 0;
    for (uint32_t b = 0; b < nbk; b++)
        if (out->candidate[b]) ids[n_rated++] = b, out->candidate[b] = 0;
    br_rng rng;
    br_rng_seed(&rng, o.seed);
    shuffle(ids, n_rated, &rng);
    uint32_t n_cold = share(n_rated, book_fraction);
    for (uint32_t i = 0; i < n_cold; i++) out->candidate[ids[i]] = 1;
    for (size_t i = 0; i < n; i++) {
        if (!out->candidate[book[i]]) n_tr[user[i]]++;
        else if (value[i] >= o.relevant_min) liked[user[i]] = 1;
    }
    size_t n_train = 0, n_test = 0;
    for (size_t i = 0; i < n; i++) {
        if (!out->candidate[book[i]]) n_train++;
        else if (n_tr[user[i]] && liked[user[i]]) n_test++;
    }
    out->train_user = br_malloc((n_train + 1) * sizeof *out->train_user);
    out->train_book = br_malloc((n_train + 1) * sizeof *out->train_book);
    out->train_value = br_malloc((n_train + 1) * sizeof *out->train_value);
    out->test_book = br_malloc((n_test + 1) * sizeof *out->test_book);
    out->test_value = br_malloc((n_test + 1) * sizeof *out->test_value);
    book_value *pairs = br_malloc((n_test + 1) * sizeof *pairs);
    uint64_t *fill = br_malloc(((size_t)nu + 1) * sizeof *fill);
    if (!out->train_user || !out->train_book || !out->train_value || !out->test_book ||
        !out->test_value || !pairs || !fill) {
        br_free(pairs);
        br_free(fill);
        st = br_error(BR_ENOMEM, "split: out of memory");
        goto fail;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (!out->candidate[book[i]]) {
            out->train_user[w] = user[i];
            out->train_book[w] = book[i];
            out->train_value[w++] = value[i];
        } else if (n_tr[user[i]] && liked[user[i]]) {
            out->test_ptr[user[i] + 1]++;
        }
    }
    for (uint32_t u = 0; u < nu; u++) {
        out->n_eval_users += out->test_ptr[u + 1] > 0;
        out->test_ptr[u + 1] += out->test_ptr[u];
    }
    memcpy(fill, out->test_ptr, (size_t)nu * sizeof *fill);
    for (size_t i = 0; i < n; i++)
        if (out->candidate[book[i]] && n_tr[user[i]] && liked[user[i]])
            pairs[fill[user[i]]++] = (book_value){book[i], value[i]};
    for (uint32_t u = 0; u < nu; u++) {
        uint64_t lo = out->test_ptr[u], hi = out->test_ptr[u + 1];
        qsort(pairs + lo, hi - lo, sizeof *pairs, cmp_book);
        for (uint64_t j = lo; j < hi; j++) {
            out->test_book[j] = pairs[j].book;
            out->test_value[j] = pairs[j].value;
        }
    }
    out->n_train = n_train;
    out->n_test = n_test;
    br_free(pairs);
    br_free(fill);
    br_free(ids);
    br_free(n_tr);
    br_free(liked);
    return BR_OK;
fail:
    br_free(ids);
    br_free(n_tr);
    br_free(liked);
    br_split_free(out);
    return st;
}

br_status br_split_readers(const br_ratings *r, const br_split_options *opt,
                           float reader_fraction, br_split *out)
{
    br_split_options o;
    br_status st = begin(opt, reader_fraction, "held-out reader", out, &o);
    if (st) return st;
    if (o.min_ratings < 2)
        return br_error(BR_EINVAL, "split: readers need at least 2 ratings to hold one out");
    size_t n = br_ratings_count(r);
    uint32_t nu = br_ratings_num_users(r);
    const uint32_t *user = br_ratings_users(r);
    uint32_t *cnt = br_calloc((size_t)nu + 1, sizeof *cnt);
    uint32_t *ids = br_malloc(((size_t)nu + 1) * sizeof *ids);
    uint8_t *held = br_calloc((size_t)nu + 1, 1);
    if (!cnt || !ids || !held) {
        st = br_error(BR_ENOMEM, "split: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) cnt[user[i]]++;
    uint32_t n_ok = 0;
    for (uint32_t u = 0; u < nu; u++)
        if (cnt[u] >= o.min_ratings) ids[n_ok++] = u;
    /* Its own stream: the hold-out within each reader below uses o.seed's. */
    br_rng rng;
    br_rng_seed(&rng, o.seed ^ 0x7265616465727321ull);
    shuffle(ids, n_ok, &rng);
    uint32_t n_held = share(n_ok, reader_fraction);
    for (uint32_t i = 0; i < n_held; i++) held[ids[i]] = 1;
    st = split_arrays(n, nu, br_ratings_num_books(r), user, br_ratings_books(r),
                      br_ratings_values(r), br_ratings_timestamps(r), &o, held, out);
    if (!st) out->fold_in = held, held = NULL;
out:
    br_free(cnt);
    br_free(ids);
    br_free(held);
    return st;
}

/* Opens DIR/NAME through core/afile.h: a peer reading the split (or a
 * run writing it again) sees each file whole, the old one or the new one.
 * The writers stop at the first failed write; the commit reports it. */
static br_status open_in(br__afile *a, const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return br__afile_open(a, path);
}

/* One column of ids whose flag is set: candidates.csv, fold_in.csv. */
static br_status write_ids(const char *dir, const char *name, const char *col, const uint8_t *flag,
                           uint32_t n)
{
    br__afile a;
    br_status st = open_in(&a, dir, name);
    if (st) return st;
    int bad = fprintf(a.f, "%s\n", col) < 0;
    for (uint32_t i = 0; i < n && !bad; i++)
        if (flag[i]) bad = fprintf(a.f, "%u\n", i) < 0;
    return br__afile_commit(&a);
}

br_status br_split_write(const br_split *s, const char *dir)
{
    br__afile a;
    br_status st = open_in(&a, dir, "meta.json");
    if (st) return st;
    const char *proto = s->candidate ? "cold-books" : s->fold_in ? "readers" : NULL;
    if (proto)
        fprintf(a.f, "{\"readers\": %u, \"books\": %u, \"protocol\": \"%s\"}\n", s->n_users,
                s->n_books, proto);
    else
        fprintf(a.f, "{\"readers\": %u, \"books\": %u}\n", s->n_users, s->n_books);
    st = br__afile_commit(&a);
    for (int part = 0; part < 2 && !st; part++) {
        if ((st = open_in(&a, dir, part ? "test.csv" : "train.csv"))) break;
        int bad = fprintf(a.f, "reader,book,rating\n") < 0;
        if (!part)
            for (size_t i = 0; i < s->n_train && !bad; i++)
                bad = fprintf(a.f, "%u,%u,%g\n", s->train_user[i], s->train_book[i],
                              (double)s->train_value[i]) < 0;
        else
            for (uint32_t u = 0; u < s->n_users && !bad; u++)
                for (uint64_t j = s->test_ptr[u]; j < s->test_ptr[u + 1] && !bad; j++)
                    bad = fprintf(a.f, "%u,%u,%g\n", u, s->test_book[j],
                                  (double)s->test_value[j]) < 0;
        st = br__afile_commit(&a);
    }
    if (!st && s->candidate) st = write_ids(dir, "candidates.csv", "book", s->candidate, s->n_books);
    if (!st && s->fold_in) st = write_ids(dir, "fold_in.csv", "reader", s->fold_in, s->n_users);
    return st;
}
