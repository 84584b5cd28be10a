/*
 * test_content.c: the vector kernels and exact top-k against their
 * references; the seed universe's tribes with the USE-lite reference
 * embeddings (each tribe dominated by one genre), the model directory round
 * trip and its refusals, the picture in three formats, and the content
 * recommendations.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "content/internal.h"
#include "content/vec.h"
#include "testutil.h"

/* ---------------------------------------------------------- vector kernels -- */

/* br__cv_dot, br__cv_l2sq and br__cv_dots against the double-precision twins, at every
 * length around the kernels' 8-, 16- and 32-wide steps and at the
 * encoders' widths, under whichever SIMD level this run has (make test runs
 * this program under each, tests/CMakeLists.txt). The bound is float32
 * summation's over the longest chain of additions any variant makes
 * (d / 8 + 4 terms, one rounding each) times the sum of |terms|
 * (docs/architecture.md, core). */
static double vec_bound(const float *a, const float *b, size_t d, int diff)
{
    double s = 0;
    for (size_t i = 0; i < d; i++) {
        double t = diff ? (double)a[i] - b[i] : (double)a[i] * b[i];
        s += diff ? t * t : fabs(t);
    }
    return ((double)d / 8 + 4) * 0x1p-23 * s + 1e-30;
}

static void test_vec_kernels(void **state)
{
    (void)state;
    br_rng rng;
    br_rng_seed(&rng, 11);
    enum { DMAX = 1030, M = 7 };
    float *a = br_malloc(DMAX * sizeof(float)), *c = br_malloc(M * DMAX * sizeof(float));
    float out[M];
    for (size_t d = 0; d <= DMAX; d += d < 80 ? 1 : d < 520 ? 37 : 85) {
        for (size_t i = 0; i < d; i++) a[i] = (float)br_rng_normal(&rng);
        for (size_t i = 0; i < M * d; i++) c[i] = (float)(br_rng_normal(&rng) + 0.25);
        for (size_t j = 0; j < M; j++) {
            const float *b = c + j * d;
            double e = fabs((double)br__cv_dot(a, b, d) - br__cv_dot_ref(a, b, d));
            if (e > vec_bound(a, b, d, 0)) fail_msg("br__cv_dot d=%zu: off by %g", d, e);
            e = fabs((double)br__cv_l2sq(a, b, d) - br__cv_l2sq_ref(a, b, d));
            if (e > vec_bound(a, b, d, 1)) fail_msg("br__cv_l2sq d=%zu: off by %g", d, e);
        }
        /* one row against M centres: the 4-centre kernel, then the rest */
        br__cv_dots(a, 1, c, M, d, out);
        for (size_t j = 0; j < M; j++) {
            double e = fabs((double)out[j] - br__cv_dot_ref(a, c + j * d, d));
            if (e > vec_bound(a, c + j * d, d, 0))
                fail_msg("br__cv_dots d=%zu c=%zu: off by %g", d, j, e);
        }
    }
    br_free(a);
    br_free(c);
}

/* ----------------------------------------------------------------- top-k -- */

static void check_topk(size_t n, size_t dim, size_t nq, size_t k, int with_exclude)
{
    br_rng rng;
    br_rng_seed(&rng, n * 31 + nq);
    float *base = br_malloc(n * dim * sizeof(float)), *q = br_malloc(nq * dim * sizeof(float));
    for (size_t i = 0; i < n * dim; i++) base[i] = (float)br_rng_normal(&rng);
    for (size_t i = 0; i < nq * dim; i++) q[i] = (float)br_rng_normal(&rng);
    uint8_t *ex = NULL;
    if (with_exclude) {
        ex = br_calloc(n, 1);
        for (size_t i = 0; i < n; i += 3) ex[i] = 1;
    }
    int32_t *ia = br_malloc(nq * k * sizeof(int32_t)), *ib = br_malloc(nq * k * sizeof(int32_t));
    float *sa = br_malloc(nq * k * sizeof(float)), *sb = br_malloc(nq * k * sizeof(float));
    assert_int_equal(br_topk_search(base, n, dim, q, nq, k, ex, ia, sa), BR_OK);
    assert_int_equal(br__topk_search_ref(base, n, dim, q, nq, k, ex, ib, sb), BR_OK);
    for (size_t i = 0; i < nq * k; i++) {
        if (ib[i] < 0) {
            assert_int_equal(ia[i], -1);
            assert_true(isinf(sa[i]) && sa[i] < 0);
            continue;
        }
        assert_float_equal(sa[i], sb[i], 1e-3);
        /* ids agree unless two scores tie within float rounding */
        if (ia[i] != ib[i]) assert_true(fabs(sa[i] - sb[i]) < 1e-4);
        if (ex) assert_false(ex[ia[i]]);
    }
    br_free(base);
    br_free(q);
    br_free(ex);
    br_free(ia);
    br_free(ib);
    br_free(sa);
    br_free(sb);
}

static void test_topk(void **state)
{
    (void)state;
    check_topk(3000, 48, 1, 10, 0);   /* one query: sgemv */
    check_topk(3000, 48, 1, 10, 1);   /* with an exclusion mask */
    check_topk(5000, 40, 300, 7, 0);  /* a batch: several base and query blocks */
    check_topk(2500, 33, 130, 12, 1); /* odd sizes, batch with exclusions */
    check_topk(6, 8, 3, 10, 1);       /* k larger than the rows left: -1 tail */
    int32_t id;
    float s;
    float one[4] = {1, 0, 0, 0};
    assert_status_detail(br_topk_search(one, 1, 0, one, 1, 1, NULL, &id, &s), BR_EINVAL, "zero");
}

/* ---------------------------------------------------------- seed universe -- */

static br_catalog *cat;
static br_ratings *ratings;
static float *emb; /* (1000, 512) */
static size_t emb_n, emb_dim;
static br_tribes *tribes;

static int setup(void **state)
{
    (void)state;
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    if (br_catalog_load(BR_GOLDEN_DIR "/seed-universe/books.csv", &lo, &cat, NULL) != BR_OK ||
        br_ratings_load(BR_GOLDEN_DIR "/seed-universe/ratings.csv", cat, &lo, &ratings, NULL) !=
            BR_OK)
        return -1;
    /* the reference USE-lite embeddings of the 1000 descriptions */
    char *path = NULL;
    if (access(BR_GOLDEN_DIR "/use-lite/seed_descriptions.json", R_OK) == 0)
        path = br_strdup(BR_GOLDEN_DIR "/use-lite/seed_descriptions.json");
    else
        path = tu_shared_path("reference/use-lite/seed_descriptions.json");
    if (!path) return 0; /* tests that need them skip */
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    br_free(path);
    if (!doc || !json_is_array(doc)) return -1;
    emb_n = json_array_size(doc);
    emb_dim = json_array_size(json_object_get(json_array_get(doc, 0), "embedding"));
    emb = br_malloc(emb_n * emb_dim * sizeof(float));
    for (size_t i = 0; i < emb_n; i++) {
        json_t *row = json_object_get(json_array_get(doc, i), "embedding");
        for (size_t j = 0; j < emb_dim; j++)
            emb[i * emb_dim + j] = (float)json_number_value(json_array_get(row, j));
    }
    json_decref(doc);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    br_tribes_free(tribes);
    br_plot_release_caches();
    br_free(emb);
    br_ratings_free(ratings);
    br_catalog_free(cat);
    return 0;
}

static void test_seed_tribes(void **state)
{
    (void)state;
    if (!emb) skip();
    assert_int_equal(emb_n, br_catalog_count(cat));
    br_kmeans_options o = BR_KMEANS_OPTIONS_DEFAULT;
    o.k = 10;
    o.n_init = 10;
    assert_int_equal(br_tribes_build(cat, emb, emb_n, emb_dim, &o, 1, &tribes), BR_OK);
    assert_false(tribes->named_by_tags);
    /* each tribe is dominated by one genre, and is named after it */
    int named[7] = {0};
    uint32_t total = 0;
    for (uint32_t j = 0; j < 10; j++) {
        const br_tribe *t = &tribes->tribe[j];
        total += t->size;
        assert_true(t->size > 0);
        uint32_t carry = 0;
        int g = -1;
        for (int x = 0; x < 7; x++)
            if (strncmp(t->name, br_generate_genre(x), strlen(br_generate_genre(x))) == 0) g = x;
        assert_true(g >= 0);
        named[g] = 1;
        for (size_t i = 0; i < emb_n; i++)
            if (tribes->labels[i] == (int32_t)j)
                carry +=
                    strcmp(br_catalog_book(cat, (uint32_t)i)->genre, br_generate_genre(g)) == 0;
        printf("tribe %u %-22s %3u books, %5.1f%% of its genre\n", j, t->name, t->size,
               100.0 * carry / t->size);
        assert_true(carry >= 0.9 * t->size);
        assert_float_equal(t->purity, (double)carry / t->size, 1e-6);
        /* central books belong to the tribe */
        assert_true(t->n_central > 0);
        for (uint32_t c = 0; c < t->n_central; c++)
            assert_int_equal(tribes->labels[t->central[c]], (int32_t)j);
    }
    assert_int_equal(total, 1000);
    for (int x = 0; x < 7; x++) assert_true(named[x]); /* every genre has its tribe */
    /* names are unique */
    for (uint32_t a = 0; a < 10; a++)
        for (uint32_t b = a + 1; b < 10; b++)
            assert_string_not_equal(tribes->tribe[a].name, tribes->tribe[b].name);
    assert_true(tribes->evr[0] >= tribes->evr[1] && tribes->evr[1] > 0);
}

static void test_model_dir_and_plot(void **state)
{
    (void)state;
    if (!tribes) skip();
    char *dir = tu_tmpdir("test_content_model");
    char mdir[4096], p[4200];
    snprintf(mdir, sizeof mdir, "%s/model", dir);
    assert_int_equal(br_tribes_save(tribes, mdir), BR_OK);
    br_tribes *t;
    assert_int_equal(br_tribes_load(mdir, &t), BR_OK);
    assert_int_equal(t->k, tribes->k);
    assert_memory_equal(t->labels, tribes->labels, emb_n * sizeof(int32_t));
    assert_memory_equal(t->centroids, tribes->centroids, t->k * emb_dim * sizeof(float));
    assert_memory_equal(t->pca2, tribes->pca2, emb_n * 2 * sizeof(float));
    assert_memory_equal(t->embeddings, emb, emb_n * emb_dim * sizeof(float));
    for (uint32_t j = 0; j < t->k; j++) {
        assert_string_equal(t->tribe[j].name, tribes->tribe[j].name);
        assert_memory_equal(t->tribe[j].central, tribes->tribe[j].central,
                            t->tribe[j].n_central * sizeof(uint32_t));
    }
    assert_string_equal(t->titles[7], br_catalog_book(cat, 7)->title);
    /* the picture, three formats */
    const char *exts[3] = {"png", "svg", "pdf"};
    const char *magic[3] = {"\x89PNG", "<?xml", "%PDF"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/tribes.%s", dir, exts[i]);
        assert_int_equal(br_plot_tribes(t, NULL, p), BR_OK);
        size_t len;
        char *buf = tu_read_file(p, &len);
        assert_non_null(buf);
        assert_true(len > 5000);
        assert_memory_equal(buf, magic[i], strlen(magic[i]));
        if (i == 1) { /* the SVG carries the legend's text as glyphs: check the size grew with
                         labels off vs on instead */
        }
        free(buf);
    }
    snprintf(p, sizeof p, "%s/tribes.gif", dir);
    assert_status_detail(br_plot_tribes(t, NULL, p), BR_EINVAL, ".png, .svg or .pdf");
    br_tribes_free(t);

    /* refusals: a missing model, a label array that does not match */
    snprintf(p, sizeof p, "%s/nothing", dir);
    assert_status_detail(br_tribes_load(p, &t), BR_ENOTFOUND, "no tribes model");
    int32_t *bad = br_malloc(emb_n * sizeof(int32_t));
    memcpy(bad, tribes->labels, emb_n * sizeof(int32_t));
    bad[3] = (bad[3] + 1) % 10; /* sizes no longer match the manifest */
    snprintf(p, sizeof p, "%s/labels.npy", mdir);
    assert_int_equal(br_npy_write(p, BR_DTYPE_I32, 1, emb_n, 1, bad), BR_OK);
    assert_status_detail(br_tribes_load(mdir, &t), BR_EFORMAT, "in the manifest");
    bad[3] = 12;
    assert_int_equal(br_npy_write(p, BR_DTYPE_I32, 1, emb_n, 1, bad), BR_OK);
    assert_status_detail(br_tribes_load(mdir, &t), BR_EFORMAT, "out of range");
    assert_int_equal(br_npy_write(p, BR_DTYPE_I32, 1, emb_n - 1, 1, bad), BR_OK);
    assert_status_detail(br_tribes_load(mdir, &t), BR_EFORMAT, "the manifest says");
    char *m = tu_write_file(mdir, "tribes.json", "{\"format\": \"something-else\"}");
    assert_status_detail(br_tribes_load(mdir, &t), BR_EFORMAT, "not a tribes manifest");
    br_free(m);
    br_free(bad);
    br_free(dir);
}

static void test_recommendations(void **state)
{
    (void)state;
    if (!tribes) skip();
    const uint32_t *u = br_ratings_users(ratings), *b = br_ratings_books(ratings);
    const float *v = br_ratings_values(ratings);
    size_t nr = br_ratings_count(ratings);
    for (uint32_t user = 0; user < br_ratings_num_users(ratings); user += 9) {
        /* favourite: the first of the highest ratings, by a plain scan */
        int64_t want = -1;
        float best = -1;
        for (size_t i = 0; i < nr; i++)
            if (u[i] == user && v[i] > best) best = v[i], want = b[i];
        uint32_t fav;
        assert_int_equal(br_content_favourite(ratings, user, &fav), BR_OK);
        assert_int_equal(fav, want);
        uint8_t *seen = br_calloc(emb_n, 1);
        for (size_t i = 0; i < nr; i++)
            if (u[i] == user) seen[b[i]] = 1;
        int32_t recs[20];
        size_t cnt;
        assert_int_equal(br_content_tribe_recs(tribes, ratings, user, 20, recs, &cnt), BR_OK);
        assert_true(cnt > 0);
        for (size_t i = 0; i < cnt; i++) {
            assert_false(seen[recs[i]]);
            assert_int_equal(tribes->labels[recs[i]], tribes->labels[fav]);
            if (i) assert_true(recs[i] > recs[i - 1]); /* catalogue order */
        }
        float sc[10];
        int32_t ids[10];
        assert_int_equal(br_content_similar_user(emb, emb_n, emb_dim, ratings, user, 10, ids, sc),
                         BR_OK);
        for (int i = 0; i < 10; i++) {
            assert_true(ids[i] >= 0);
            assert_false(seen[ids[i]]);
            if (i) assert_true(sc[i] <= sc[i - 1]);
        }
        br_free(seen);
    }
    /* a profile (the feedback rule, bookrec/data.h): the direction of the
     * books liked (rated >= 4) weighted by rating, less a quarter of that of the
     * books disliked (<= 2, or a star below the reader's mean shrunk by 5
     * pseudo-ratings toward the global mean) weighted by how far below
     * (1 to 2), normalised; in double, from the rule's text */
    float *p = br_malloc(emb_dim * sizeof(float));
    int checked_neg = 0;
    for (uint32_t user = 0; user < 40; user++) {
        assert_int_equal(br_content_profile(emb, emb_n, emb_dim, ratings, user, p), BR_OK);
        double gsum = 0, usum = 0;
        size_t un = 0;
        for (size_t i = 0; i < nr; i++) {
            gsum += v[i];
            if (u[i] == user) usum += v[i], un++;
        }
        double m = (usum + 5 * (gsum / (double)nr)) / ((double)un + 5);
        double *pos = br_calloc(emb_dim, sizeof(double)), *neg = br_calloc(emb_dim, sizeof(double));
        double np = 0, nn = 0, nrm = 0;
        for (size_t i = 0; i < nr; i++) {
            if (u[i] != user) continue;
            double w = 0, *acc = pos;
            if (v[i] <= 2 || m - v[i] >= 1)
                w = fmin(fmax(m - v[i], 1), 2), acc = neg;
            else if (v[i] >= 4)
                w = v[i];
            for (size_t j = 0; j < emb_dim; j++) acc[j] += w * emb[(size_t)b[i] * emb_dim + j];
        }
        for (size_t j = 0; j < emb_dim; j++) np += pos[j] * pos[j], nn += neg[j] * neg[j];
        if (np == 0) continue; /* nothing liked: not this reference's case */
        checked_neg += nn > 0;
        for (size_t j = 0; j < emb_dim; j++)
            pos[j] = pos[j] / sqrt(np) - (nn > 0 ? 0.25 * neg[j] / sqrt(nn) : 0);
        for (size_t j = 0; j < emb_dim; j++) nrm += pos[j] * pos[j];
        for (size_t j = 0; j < emb_dim; j++) assert_float_equal(p[j], pos[j] / sqrt(nrm), 1e-5);
        br_free(pos);
        br_free(neg);
    }
    assert_true(checked_neg > 0); /* the dislikes' part was exercised */
    br_free(p);
    /* similar to a book: never the book itself, best first */
    int32_t ids[5];
    float sc[5];
    assert_int_equal(br_content_similar_book(emb, emb_n, emb_dim, 42, 5, ids, sc), BR_OK);
    for (int i = 0; i < 5; i++) assert_true(ids[i] != 42);
    assert_true(sc[0] >= sc[4]);
    uint32_t fav;
    assert_status_detail(br_content_favourite(ratings, 100000, &fav), BR_ENOTFOUND,
                         "rated no books");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vec_kernels),
        cmocka_unit_test(test_topk),
        cmocka_unit_test(test_seed_tribes),
        cmocka_unit_test(test_model_dir_and_plot),
        cmocka_unit_test(test_recommendations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
