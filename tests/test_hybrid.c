/*
 * test_hybrid.c: the engines together.
 *  - the item-item model against a dense double-precision oracle, and its
 *    scores against the definition;
 *  - the notebook's hybrid on the seed universe with the reference USE-lite
 *    embeddings and exact SVD: top-10 of every reader equals the
 *    reference's hybrid_top10 (and its favourite book and SVD top-10);
 *  - fusion semantics (1 / (rank + 1) and RRF points), rankings never hold
 *    a rated book, the default hybrid's explanation adds up;
 *  - the default hybrid's candidate ranking against a plain reference: the
 *    union of the item-item and ALS top lists (from the single engines'
 *    own full rankings), each component z-scored over it in double, the
 *    weighted sum sorted;
 *  - the re-ranker: a deterministic fit whose loss decreases and recovers a
 *    planted rule; the hybrid then ranks by coef . features;
 *  - the weight search's NDCG sums: the same bits with 1 and 2 threads;
 *  - the feedback rule: br_rating_is_dislike, with and without the
 *    reader's mean, agrees with br_rating_weight;
 *  - br_split_train only ever splits training ratings; book text template;
 *  - the embedding cache: a text repeated in the catalogue is embedded once
 *    and shared, a second call embeds nothing and returns the same vectors;
 *    the shared cache directory (its location, one file per encoder), a
 *    caller's own file and the shared one feeding each other, a damaged
 *    shared file only warned about, a writer that adds while another
 *    process embeds (nothing lost; processes adding at once: cli/encoder.sh);
 *    which text each engine reads by default.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Random small ratings (every reader at least one rating). */
static void random_csr(uint32_t nu, uint32_t nb, double density, uint64_t seed, br_csr *out)
{
    br_rng rng;
    br_rng_seed(&rng, seed);
    size_t cap = (size_t)nu * nb, n = 0;
    uint32_t *u = br_malloc(cap * sizeof *u), *b = br_malloc(cap * sizeof *b);
    float *v = br_malloc(cap * sizeof *v);
    for (uint32_t i = 0; i < nu; i++)
        for (uint32_t j = 0; j < nb; j++)
            if (j == i % nb || br_rng_uniform(&rng) < density) {
                u[n] = i, b[n] = j, v[n++] = (float)(1 + br_rng_below(&rng, 5));
            }
    assert_int_equal(br_csr_from_coo(nu, nb, n, u, b, v, out), BR_OK);
    br_free(u);
    br_free(b);
    br_free(v);
}

static void test_ease_reference(void **state)
{
    (void)state;
    br_csr r = {0};
    random_csr(60, 40, 0.25, 7, &r);
    br_ease_options o = BR_EASE_OPTIONS_DEFAULT;
    o.max_items = 25;
    o.lambda = 3.0f;
    br_ease *m = NULL;
    assert_int_equal(br_ease_fit(&r, NULL, &o, &m), BR_OK);
    assert_int_equal(br_ease_items(m), 25);
    uint32_t items[40], mm = 0;
    float ref[40 * 40];
    assert_int_equal(br_ease_reference(&r, &o, items, &mm, ref), BR_OK);
    assert_int_equal(mm, 25);
    const float *b = br_ease_matrix(m);
    double maxabs = 0, maxerr = 0;
    for (uint32_t s = 0; s < mm; s++) {
        assert_int_equal(br_ease_item_ids(m)[s], items[s]);
        assert_int_equal(br_ease_slot(m, items[s]), (int32_t)s);
        for (uint32_t t = 0; t < mm; t++) {
            double e = fabs((double)b[s * mm + t] - (double)ref[s * mm + t]);
            if (e > maxerr) maxerr = e;
            if (fabs(ref[s * mm + t]) > maxabs) maxabs = fabs(ref[s * mm + t]);
        }
        assert_true(b[s * mm + s] == 0.0f);
    }
    assert_true(maxabs > 1e-3); /* not a trivial matrix */
    assert_true(maxerr < 1e-4 * (1 + maxabs));
    /* Scores of reader 3 = sum_j w(r_3j) B[j, :] over their rated top-M books. */
    float sc[40];
    uint64_t lo = r.indptr[3], hi = r.indptr[4];
    assert_int_equal(br_ease_score(m, hi - lo, r.indices + lo, r.values + lo, 40, sc), BR_OK);
    for (uint32_t t = 0; t < mm; t++) {
        double want = 0;
        for (uint64_t q = lo; q < hi; q++) {
            int32_t s = br_ease_slot(m, r.indices[q]);
            if (s >= 0) want += o.weight[(int)r.values[q] - 1] * ref[(size_t)s * mm + t];
        }
        assert_true(fabs(sc[items[t]] - want) < 1e-4 * (1 + fabs(want)));
    }
    for (uint32_t i = 0; i < 40; i++)
        if (br_ease_slot(m, i) < 0) assert_true(isinf(sc[i]) && sc[i] < 0);
    o.lambda = 0;
    br_ease *bad = NULL;
    assert_status_detail(br_ease_fit(&r, NULL, &o, &bad), BR_EINVAL, "lambda");
    br_ease_free(m);
    br_csr_free(&r);
}

/* The seed universe, its reference embeddings (rows in book order) and the
 * notebook reference; NULL when the golden files are missing. */
static json_t *seed(br_catalog **cat, br_ratings **r, float **emb)
{
    char p[4096];
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    snprintf(p, sizeof p, "%s/seed-universe/books.csv", BR_GOLDEN_DIR);
    assert_int_equal(br_catalog_load(p, &lo, cat, NULL), BR_OK);
    snprintf(p, sizeof p, "%s/seed-universe/ratings.csv", BR_GOLDEN_DIR);
    assert_int_equal(br_ratings_load(p, *cat, &lo, r, NULL), BR_OK);
    snprintf(p, sizeof p, "%s/use-lite/seed_descriptions.json", BR_GOLDEN_DIR);
    json_error_t je;
    json_t *d = json_load_file(p, 0, &je);
    assert_non_null(d);
    size_t n = json_array_size(d);
    assert_int_equal(n, br_catalog_count(*cat));
    *emb = br_malloc(n * 512 * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object_get(json_array_get(d, i), "embedding");
        const char *text = json_string_value(json_object_get(json_array_get(d, i), "text"));
        assert_string_equal(text, br_catalog_book(*cat, (uint32_t)i)->description);
        for (size_t j = 0; j < 512; j++)
            (*emb)[i * 512 + j] = (float)json_real_value(json_array_get(e, j));
    }
    json_decref(d);
    snprintf(p, sizeof p, "%s/seed-universe/notebook_reference.json", BR_GOLDEN_DIR);
    json_t *ref = json_load_file(p, 0, &je);
    assert_non_null(ref);
    return ref;
}

static br_train_data all_ratings(const br_ratings *r)
{
    return (br_train_data){br_ratings_num_users(r), br_ratings_num_books(r), br_ratings_count(r),
                           br_ratings_users(r),     br_ratings_books(r),     br_ratings_values(r)};
}

static void test_notebook_parity(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r;
    float *emb;
    json_t *ref = seed(&cat, &r, &emb);
    br_hybrid_options o;
    br_hybrid_options_default(&o);
    o.svd.k = 50;
    o.svd.method = BR_SVD_EXACT;
    br_engine eng[] = {BR_ENGINE_NOTEBOOK_HYBRID, BR_ENGINE_SVD};
    br_train_data td = all_ratings(r);
    br_hybrid *h = NULL;
    assert_int_equal(br_hybrid_fit(&td, cat, emb, 512, &o, eng, 2, &h), BR_OK);
    json_t *users = json_object_get(ref, "users");
    const char *uid;
    json_t *u;
    size_t n_users = 0, hybrid_equal = 0, svd_equal = 0;
    json_object_foreach(users, uid, u)
    {
        int64_t ui = br_ratings_find_user(r, uid);
        assert_true(ui >= 0);
        uint32_t user = (uint32_t)ui, items[10];
        float sc[10];
        /* hybrid */
        assert_int_equal(br_hybrid_rank(h, BR_ENGINE_NOTEBOOK_HYBRID, &user, 1, 10, items, sc),
                         BR_OK);
        json_t *want = json_object_get(u, "hybrid_top10");
        json_t *want_s = json_object_get(u, "hybrid_top10_scores");
        int same = 1;
        for (size_t p = 0; p < 10; p++) {
            char id[32];
            snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_array_get(want, p)));
            same &= br_catalog_find(cat, id) == (int64_t)items[p];
            assert_true(fabs(sc[p] - json_real_value(json_array_get(want_s, p))) < 1e-4);
        }
        if (!same) print_message("reader %s: hybrid top-10 differs\n", uid);
        hybrid_equal += same;
        /* svd */
        assert_int_equal(br_hybrid_rank(h, BR_ENGINE_SVD, &user, 1, 10, items, sc), BR_OK);
        want = json_object_get(u, "svd_top10");
        same = 1;
        for (size_t p = 0; p < 10; p++) {
            char id[32];
            snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_array_get(want, p)));
            same &= br_catalog_find(cat, id) == (int64_t)items[p];
        }
        svd_equal += same;
        n_users++;
    }
    assert_int_equal(n_users, 100);
    assert_int_equal(hybrid_equal, n_users);
    assert_int_equal(svd_equal, n_users);
    /* The favourite book the explanation names is the reference's. */
    int64_t u5 = br_ratings_find_user(r, "5");
    br_explanation ex;
    uint32_t it[1];
    assert_int_equal(
        br_hybrid_rank(h, BR_ENGINE_NOTEBOOK_HYBRID, (uint32_t[]){(uint32_t)u5}, 1, 1, it, NULL),
        BR_OK);
    assert_int_equal(br_hybrid_explain(h, cat, BR_ENGINE_NOTEBOOK_HYBRID, (uint32_t)u5, it[0], &ex),
                     BR_OK);
    assert_int_equal(ex.n_parts, 2);
    char fav[32];
    snprintf(fav, sizeof fav, "%lld",
             (long long)json_integer_value(
                 json_object_get(json_object_get(users, "5"), "favourite_book")));
    const char *fav_title = br_catalog_book(cat, (uint32_t)br_catalog_find(cat, fav))->title;
    assert_non_null(strstr(ex.part[0].why, fav_title));
    assert_true(fabsf(ex.part[0].contribution + ex.part[1].contribution - ex.score) < 1e-5);
    br_hybrid_free(h);
    json_decref(ref);
    br_free(emb);
    br_ratings_free(r);
    br_catalog_free(cat);
}

/* Fusion points, exclusions and the default hybrid's explanation. */
static void test_fusion_and_hybrid(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r;
    float *emb;
    json_t *ref = seed(&cat, &r, &emb);
    json_decref(ref);
    br_hybrid_options o;
    br_hybrid_options_default(&o);
    o.ease.max_items = 300;
    o.ease.lambda = 5;
    o.als.iterations = 5;
    o.fusion_n = 2, o.fusion[0] = BR_ENGINE_EASE, o.fusion[1] = BR_ENGINE_CONTENT;
    o.fusion_depth = 20;
    o.rrf_n = 2, o.rrf[0] = BR_ENGINE_EASE, o.rrf[1] = BR_ENGINE_CONTENT;
    o.rrf_depth = 20;
    o.w_popularity = 0.05f;
    br_engine eng[BR_ENGINE_COUNT];
    for (int i = 0; i < BR_ENGINE_COUNT; i++) eng[i] = (br_engine)i;
    br_train_data td = all_ratings(r);
    br_hybrid *h = NULL;
    assert_int_equal(br_hybrid_fit(&td, cat, emb, 512, &o, eng, BR_ENGINE_COUNT, &h), BR_OK);
    br_csr m = {0};
    assert_int_equal(br_csr_from_ratings(r, &m), BR_OK);
    enum { K = 20 };
    for (uint32_t user = 0; user < 100; user += 7) {
        uint32_t a[K], b[K], f[K];
        float fs[K];
        assert_int_equal(br_hybrid_rank(h, BR_ENGINE_EASE, &user, 1, K, a, NULL), BR_OK);
        assert_int_equal(br_hybrid_rank(h, BR_ENGINE_CONTENT, &user, 1, K, b, NULL), BR_OK);
        for (int rrf = 0; rrf < 2; rrf++) {
            br_engine e = rrf ? BR_ENGINE_RRF : BR_ENGINE_RANK_FUSION;
            assert_int_equal(br_hybrid_rank(h, e, &user, 1, K, f, fs), BR_OK);
            for (int p = 0; p < K; p++) {
                /* The points of f[p], recomputed from the two lists. */
                double want = 0;
                for (int q = 0; q < K; q++) {
                    double pts = rrf ? 1.0 / (60.0 + q + 1) : 1.0 / (q + 1);
                    if (a[q] == f[p]) want += pts;
                    if (b[q] == f[p]) want += pts;
                }
                assert_true(fabs(want - fs[p]) < 1e-6);
                if (p) assert_true(fs[p] < fs[p - 1] || (fs[p] == fs[p - 1] && f[p] > f[p - 1]));
            }
        }
        for (int e = 0; e < BR_ENGINE_COUNT; e++) {
            uint32_t it[K];
            assert_int_equal(br_hybrid_rank(h, (br_engine)e, &user, 1, K, it, NULL), BR_OK);
            for (int p = 0; p < K; p++) {
                if (it[p] == UINT32_MAX) continue;
                for (uint64_t q = m.indptr[user]; q < m.indptr[user + 1]; q++)
                    assert_int_not_equal(it[p], m.indices[q]);
            }
        }
        /* The default hybrid's parts add up to its score. */
        uint32_t top;
        float ts;
        assert_int_equal(br_hybrid_rank(h, BR_ENGINE_HYBRID, &user, 1, 1, &top, &ts), BR_OK);
        br_explanation ex;
        assert_int_equal(br_hybrid_explain(h, cat, BR_ENGINE_HYBRID, user, top, &ex), BR_OK);
        assert_int_equal(ex.n_parts, 4);
        float sum = 0;
        for (uint32_t p = 0; p < ex.n_parts; p++) {
            sum += ex.part[p].contribution;
            assert_true(strlen(ex.part[p].why) > 10);
        }
        assert_true(fabsf(sum - ts) < 1e-3f * (1 + fabsf(ts)));
        assert_true(fabsf(ex.score - ts) < 1e-5f * (1 + fabsf(ts)));
    }
    float pr[2];
    uint32_t pu[2] = {0, 1}, pb[2] = {0, 1};
    assert_int_equal(br_hybrid_predict(h, BR_ENGINE_ALS_EXPLICIT, pu, pb, 2, pr), BR_OK);
    assert_true(isfinite(pr[0]) && isfinite(pr[1]));
    assert_int_equal(br_hybrid_predict(h, BR_ENGINE_HYBRID, pu, pb, 2, pr), BR_EUNSUPPORTED);
    br_csr_free(&m);
    br_hybrid_free(h);
    /* An engine that was not fitted is refused. */
    br_engine only = BR_ENGINE_POPULARITY;
    assert_int_equal(br_hybrid_fit(&td, NULL, NULL, 0, &o, &only, 1, &h), BR_OK);
    uint32_t it[3], user = 0;
    assert_status_detail(br_hybrid_rank(h, BR_ENGINE_SVD, &user, 1, 3, it, NULL), BR_EINVAL,
                         "not fitted");
    br_hybrid_free(h);
    br_engine c = BR_ENGINE_CONTENT;
    assert_status_detail(br_hybrid_fit(&td, NULL, NULL, 0, &o, &c, 1, &h), BR_EINVAL, "embeddings");
    br_free(emb);
    br_ratings_free(r);
    br_catalog_free(cat);
}

/* Score of every book under a single engine, from its own full ranking
 * (-INFINITY: rated, or not scored). */
static void full_scores(br_hybrid *h, br_engine e, uint32_t user, uint32_t nb, double *out,
                        uint32_t *order)
{
    uint32_t *it = br_malloc(nb * sizeof *it);
    float *sc = br_malloc(nb * sizeof *sc);
    assert_int_equal(br_hybrid_rank(h, e, &user, 1, nb, it, sc), BR_OK);
    for (uint32_t i = 0; i < nb; i++) out[i] = -INFINITY;
    for (uint32_t p = 0; p < nb; p++) {
        if (order) order[p] = it[p];
        if (it[p] != UINT32_MAX) out[it[p]] = sc[p];
    }
    br_free(it);
    br_free(sc);
}

/* The default hybrid equals a plain scoring of the same candidates. */
static void test_hybrid_candidates_reference(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r;
    float *emb;
    json_t *ref = seed(&cat, &r, &emb);
    json_decref(ref);
    br_hybrid_options o;
    br_hybrid_options_default(&o);
    o.ease.max_items = 300; /* books outside the item-item model: its floor z */
    o.ease.lambda = 5;
    o.als.iterations = 5;
    o.cand_ease = 30, o.cand_als = 25;
    o.w_ease = 1, o.w_als = 0.3f, o.w_content = 0.25f, o.w_popularity = 0.1f;
    o.rerank = 0; /* the blend */
    const br_engine eng[5] = {BR_ENGINE_EASE, BR_ENGINE_ALS, BR_ENGINE_CONTENT,
                              BR_ENGINE_POPULARITY, BR_ENGINE_HYBRID};
    br_train_data td = all_ratings(r);
    br_hybrid *h = NULL;
    assert_int_equal(br_hybrid_fit(&td, cat, emb, 512, &o, eng, 5, &h), BR_OK);
    /* The hybrid's content component is the embedding profile's cosine:
     * the content engine without the catalogue's lexical half. */
    br_hybrid *hc = NULL;
    assert_int_equal(br_hybrid_fit(&td, NULL, emb, 512, &o, &eng[2], 1, &hc), BR_OK);
    uint32_t nb = td.n_books;
    double *sc[4];
    for (int c = 0; c < 4; c++) sc[c] = br_malloc(nb * sizeof(double));
    uint32_t *ord_e = br_malloc(nb * sizeof *ord_e), *ord_a = br_malloc(nb * sizeof *ord_a);
    char *in = br_malloc(nb);
    const double w[4] = {1, 0.3, 0.25, 0.1};
    uint32_t *count = br_calloc(nb, sizeof *count);
    for (size_t i = 0; i < td.n; i++) count[td.book[i]]++;
    int imputed = 0;
    enum { K = 40 };
    for (uint32_t user = 0; user < td.n_users; user += 3) {
        full_scores(h, BR_ENGINE_EASE, user, nb, sc[0], ord_e);
        full_scores(h, BR_ENGINE_ALS, user, nb, sc[1], ord_a);
        full_scores(hc, BR_ENGINE_CONTENT, user, nb, sc[2], NULL);
        full_scores(h, BR_ENGINE_POPULARITY, user, nb, sc[3], NULL);
        for (uint32_t i = 0; i < nb; i++)
            sc[3][i] = isfinite(sc[3][i]) ? log1p(fmax(sc[3][i], 0)) : -INFINITY;
        /* The candidates: the two top lists, and the top 10 by ALS of the
         * books nobody rated (not in them; ties to the lower book). */
        memset(in, 0, nb);
        uint32_t cand[80], n = 0;
        for (uint32_t p = 0; p < 30 && ord_e[p] != UINT32_MAX; p++) in[ord_e[p]] = 1;
        for (uint32_t p = 0; p < 25 && ord_a[p] != UINT32_MAX; p++) in[ord_a[p]] = 1;
        char *taken = br_calloc(nb, 1);
        for (int c = 0; c < 10; c++) {
            uint32_t best = UINT32_MAX;
            for (uint32_t i = 0; i < nb; i++)
                if (!count[i] && !taken[i] && isfinite(sc[1][i]) &&
                    (best == UINT32_MAX || sc[1][i] > sc[1][best]))
                    best = i;
            if (best == UINT32_MAX) break;
            taken[best] = in[best] = 1;
        }
        br_free(taken);
        for (uint32_t i = 0; i < nb; i++)
            if (in[i]) cand[n++] = i;
        /* The candidates' scores; a book nobody rated gets the item-item
         * score with its ALS z-score among the rated candidates. */
        double cs[4][80];
        double se = 0, se2 = 0, sa = 0, sa2 = 0;
        int nw = 0;
        for (uint32_t q = 0; q < n; q++) {
            for (int c = 0; c < 4; c++) cs[c][q] = sc[c][cand[q]];
            if (!count[cand[q]] || !isfinite(cs[0][q]) || !isfinite(cs[1][q])) continue;
            se += cs[0][q], se2 += cs[0][q] * cs[0][q], sa += cs[1][q], sa2 += cs[1][q] * cs[1][q];
            nw++;
        }
        double me = se / nw, ma = sa / nw, ve = se2 / nw - me * me, va = sa2 / nw - ma * ma;
        for (uint32_t q = 0; nw >= 2 && va > 1e-20 && ve > 0 && q < n; q++)
            if (!count[cand[q]] && isfinite(cs[1][q])) {
                cs[0][q] = me + (cs[1][q] - ma) * sqrt(ve / va);
                imputed++;
            }
        uint32_t got[80];
        float raw[80 * 4];
        size_t gn;
        assert_int_equal(br_hybrid_candidates(h, user, got, raw, 80, &gn), BR_OK);
        assert_int_equal(gn, n);
        for (size_t q = 0; q < gn; q++) {
            assert_true(in[got[q]]);
            uint32_t qr = 0;
            while (qr < n && cand[qr] != got[q]) qr++;
            assert_true(qr < n);
            for (int c = 0; c < 4; c++) {
                double want = cs[c][qr];
                if (isfinite(want))
                    assert_true(fabs(raw[q * 4 + c] - want) < 1e-4 * (1 + fabs(want)));
                else
                    assert_false(isfinite(raw[q * 4 + c]));
            }
        }
        /* Plain reference: z over the candidates in double (mean and
         * spread from the rated ones when there are any), lowest z for a
         * book a component cannot score, weighted sum, sorted. */
        double blend[80] = {0};
        int warm = 0;
        for (uint32_t q = 0; q < n; q++) warm += count[cand[q]] > 0;
        for (int c = 0; c < 4; c++) {
            double sum = 0, sum2 = 0, lo = INFINITY;
            int cnt = 0;
            for (uint32_t q = 0; q < n; q++)
                if (isfinite(cs[c][q])) {
                    double v = cs[c][q];
                    if (v < lo) lo = v;
                    if (warm && !count[cand[q]]) continue;
                    sum += v, sum2 += v * v, cnt++;
                }
            double mean = cnt ? sum / cnt : 0, var = cnt ? sum2 / cnt - mean * mean : 0;
            double inv = var > 1e-20 ? 1 / sqrt(var) : 0;
            for (uint32_t q = 0; q < n; q++) {
                double v = isfinite(cs[c][q]) ? cs[c][q] : lo;
                blend[q] += w[c] * (v - mean) * inv;
            }
        }
        uint32_t it[K];
        float is[K];
        assert_int_equal(br_hybrid_rank(h, BR_ENGINE_HYBRID, &user, 1, K, it, is), BR_OK);
        for (uint32_t p = 0; p < K; p++) {
            if (p >= n) {
                assert_int_equal(it[p], UINT32_MAX); /* only candidates are listed */
                continue;
            }
            /* The reference's p-th: the best not yet taken (ties: lower book). */
            uint32_t best = UINT32_MAX;
            for (uint32_t q = 0; q < n; q++) {
                if (cand[q] == UINT32_MAX) continue;
                if (best == UINT32_MAX || blend[q] > blend[best]) best = q;
            }
            assert_true(fabs(blend[best] - is[p]) < 1e-4 * (1 + fabs(blend[best])));
            /* Float vs double may swap near-ties only. */
            if (it[p] != cand[best]) {
                uint32_t q2 = 0;
                while (q2 < n && cand[q2] != it[p]) q2++;
                assert_true(q2 < n);
                assert_true(fabs(blend[q2] - blend[best]) < 1e-5);
                best = q2;
            }
            cand[best] = UINT32_MAX;
        }
    }
    assert_true(imputed > 0); /* the seed universe has books nobody rated */
    br_free(count);
    for (int c = 0; c < 4; c++) br_free(sc[c]);
    br_free(ord_e);
    br_free(ord_a);
    br_free(in);
    br_hybrid_free(h);
    br_hybrid_free(hc);
    /* No candidate source: refused, not an empty list. */
    o.cand_ease = o.cand_als = 0;
    assert_int_equal(br_hybrid_fit(&td, cat, emb, 512, &o, eng, 5, &h), BR_OK);
    uint32_t it1, u0 = 0;
    assert_status_detail(br_hybrid_rank(h, BR_ENGINE_HYBRID, &u0, 1, 1, &it1, NULL), BR_EINVAL,
                         "candidate source");
    br_hybrid_free(h);
    br_free(emb);
    br_ratings_free(r);
    br_catalog_free(cat);
}

/* Negative feedback, explanations: on the seed universe with many low
 * ratings (a third of the readers rated every book 1 or 2, the others one
 * rating in four 1), no explanation part of any engine that names books,
 * for every reader's top books, names a book the reader rated <= 2 or
 * that the feedback rule calls disliked (titles another book of the
 * reader's, not disliked, shares are left out: the words cannot tell). */
static void test_dislike_explanations(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r;
    float *emb;
    json_decref(seed(&cat, &r, &emb));
    br_train_data td = all_ratings(r);
    float *val = br_malloc(td.n * sizeof *val);
    for (size_t i = 0; i < td.n; i++)
        val[i] = td.user[i] % 3 == 0 ? (float)(1 + i % 2) : i % 4 == 0 ? 1.0f : td.value[i];
    td.value = val;
    br_hybrid_options o;
    br_hybrid_options_default(&o);
    o.ease.max_items = 300;
    o.als.iterations = 5;
    o.svd.method = BR_SVD_RANDOMIZED;
    const br_engine eng[] = {BR_ENGINE_ALS,
                             BR_ENGINE_EASE,
                             BR_ENGINE_CONTENT,
                             BR_ENGINE_CONTENT_FAVOURITE,
                             BR_ENGINE_CONTENT_CLUSTER,
                             BR_ENGINE_NOTEBOOK_HYBRID,
                             BR_ENGINE_RANK_FUSION,
                             BR_ENGINE_RRF,
                             BR_ENGINE_HYBRID};
    const size_t ne = sizeof eng / sizeof *eng;
    br_hybrid *h = NULL;
    assert_int_equal(br_hybrid_fit(&td, cat, emb, 512, &o, eng, ne, &h), BR_OK);
    double gsum = 0;
    for (size_t i = 0; i < td.n; i++) gsum += val[i];
    float g = (float)(gsum / (double)td.n);
    size_t parts = 0, named = 0;
    for (uint32_t u = 0; u < td.n_users; u++) {
        double usum = 0;
        size_t un = 0;
        for (size_t i = 0; i < td.n; i++)
            if (td.user[i] == u) usum += val[i], un++;
        float m = br_reader_mean(usum, un, g);
        for (size_t e = 0; e < ne; e++) {
            uint32_t it[2];
            assert_int_equal(br_hybrid_rank(h, eng[e], &u, 1, 2, it, NULL), BR_OK);
            for (int p = 0; p < 2; p++) {
                if (it[p] == UINT32_MAX) continue;
                br_explanation ex;
                assert_int_equal(br_hybrid_explain(h, cat, eng[e], u, it[p], &ex), BR_OK);
                for (uint32_t k = 0; k < ex.n_parts; k++, parts++) {
                    const char *why = ex.part[k].why;
                    named += strchr(why, '*') != NULL;
                    for (size_t i = 0; i < td.n; i++) {
                        if (td.user[i] != u) continue;
                        if (!(val[i] <= 2 || br_rating_weight(val[i], m) < 0)) continue;
                        const char *title = br_catalog_book(cat, td.book[i])->title;
                        int shared = 0;
                        for (size_t q = 0; q < td.n && !shared; q++)
                            shared = td.user[q] == u && br_rating_weight(val[q], m) >= 0 &&
                                     val[q] > 2 &&
                                     !strcmp(br_catalog_book(cat, td.book[q])->title, title);
                        if (shared) continue;
                        char pat[300];
                        snprintf(pat, sizeof pat, "*%s*", title);
                        if (strstr(why, pat))
                            fprintf(stderr, "reader %u, %s: \"%s\" names a book rated %g\n", u,
                                    br_engine_name(eng[e]), why, (double)val[i]);
                        assert_null(strstr(why, pat));
                    }
                }
            }
        }
    }
    assert_true(parts > 0 && named > 0); /* books were named: the check had something to see */
    br_hybrid_free(h);
    br_free(val);
    br_free(emb);
    br_ratings_free(r);
    br_catalog_free(cat);
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Negative feedback, the rule itself (bookrec/data.h): disliked when r <= 2
 * or r at least one star below the reader's mean; with the mean unknown
 * (NAN, serving's recent events) only r <= 2. br_rating_weight is negative
 * exactly for the dislikes. */
static void test_rating_is_dislike(void **state)
{
    (void)state;
    assert_true(br_rating_is_dislike(1.0f, NAN));
    assert_true(br_rating_is_dislike(2.0f, NAN));
    assert_false(br_rating_is_dislike(2.5f, NAN));
    assert_false(br_rating_is_dislike(3.0f, NAN));
    assert_false(br_rating_is_dislike(5.0f, NAN));
    assert_true(br_rating_is_dislike(2.0f, 1.5f));  /* absolute, whatever the mean */
    assert_true(br_rating_is_dislike(3.0f, 4.5f));  /* relative */
    assert_true(br_rating_is_dislike(3.0f, 4.0f));  /* exactly one star below */
    assert_false(br_rating_is_dislike(3.5f, 4.4f)); /* less than one star below */
    assert_false(br_rating_is_dislike(4.0f, 3.0f));
    for (int r = 1; r <= 10; r++)
        for (int m = 2; m <= 10; m++) {
            float rating = 0.5f * (float)r, mean = 0.5f * (float)m;
            assert_int_equal(br_rating_is_dislike(rating, mean),
                             br_rating_weight(rating, mean) < 0);
        }
}

/* Negative feedback, the profile: a reader who rated book A 5 and book B 1
 * sees the books nearest B lower in the content engine's list (and in
 * br_content_similar_user's) than a reader who rated only A. */
static void test_dislike_profile(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r;
    float *emb;
    json_decref(seed(&cat, &r, &emb));
    br_train_data td = all_ratings(r);
    uint32_t nb = td.n_books, a = 0, b = UINT32_MAX;
    /* B: a book of middling likeness to A (the median cosine), so that
     * its neighbours sit mid-list for A alone and have room to fall */
    double *ca = br_malloc(nb * sizeof *ca), *sorted = br_malloc(nb * sizeof *sorted);
    for (uint32_t i = 0; i < nb; i++) {
        double c = 0;
        for (int j = 0; j < 512; j++) c += (double)emb[j] * emb[(size_t)i * 512 + j];
        ca[i] = sorted[i] = c;
    }
    qsort(sorted, nb, sizeof *sorted, cmp_double);
    for (uint32_t i = 1; i < nb && b == UINT32_MAX; i++)
        if (ca[i] == sorted[nb / 2]) b = i;
    br_free(ca);
    br_free(sorted);
    assert_true(b != UINT32_MAX);
    /* B's five nearest books (not A) */
    uint32_t near[5];
    double ns[5];
    for (int k = 0; k < 5; k++) ns[k] = -INFINITY, near[k] = UINT32_MAX;
    for (uint32_t i = 0; i < nb; i++) {
        if (i == a || i == b) continue;
        double c = 0;
        for (int j = 0; j < 512; j++)
            c += (double)emb[(size_t)b * 512 + j] * emb[(size_t)i * 512 + j];
        for (int k = 0; k < 5; k++)
            if (c > ns[k]) {
                for (int q = 4; q > k; q--) ns[q] = ns[q - 1], near[q] = near[q - 1];
                ns[k] = c, near[k] = i;
                break;
            }
    }
    size_t n = td.n;
    uint32_t *us = br_malloc((n + 2) * sizeof *us), *bs = br_malloc((n + 2) * sizeof *bs);
    float *vs = br_malloc((n + 2) * sizeof *vs);
    memcpy(us, td.user, n * sizeof *us);
    memcpy(bs, td.book, n * sizeof *bs);
    memcpy(vs, td.value, n * sizeof *vs);
    uint32_t reader = td.n_users;
    us[n] = reader, bs[n] = a, vs[n] = 5;
    us[n + 1] = reader, bs[n + 1] = b, vs[n + 1] = 1;
    uint32_t rank[2][5];
    for (int with_b = 0; with_b < 2; with_b++) {
        br_train_data d = {td.n_users + 1, nb, n + 1 + (size_t)with_b, us, bs, vs};
        br_hybrid_options o;
        br_hybrid_options_default(&o);
        br_engine e = BR_ENGINE_CONTENT;
        br_hybrid *h = NULL;
        assert_int_equal(br_hybrid_fit(&d, cat, emb, 512, &o, &e, 1, &h), BR_OK);
        uint32_t *it = br_malloc(nb * sizeof *it);
        assert_int_equal(br_hybrid_rank(h, e, &reader, 1, nb, it, NULL), BR_OK);
        for (int k = 0; k < 5; k++) {
            rank[with_b][k] = UINT32_MAX;
            for (uint32_t p = 0; p < nb; p++)
                if (it[p] == near[k]) rank[with_b][k] = p;
            assert_true(rank[with_b][k] != UINT32_MAX);
        }
        br_free(it);
        br_hybrid_free(h);
    }
    for (int k = 0; k < 5; k++) {
        if (rank[1][k] <= rank[0][k])
            fprintf(stderr, "book %u near the disliked %u: place %u with the dislike, %u without\n",
                    near[k], b, rank[1][k], rank[0][k]);
        assert_true(rank[1][k] > rank[0][k]);
    }
    /* br_content_profile's reader (the same rule) from a ratings file */
    char path[4096];
    char *dir = tu_tmpdir("hybrid-dislike");
    snprintf(path, sizeof path, "%s/dislike-ratings.csv", dir);
    free(dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "user_id,book_id,rating\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "u%u,%s,%g\n", us[i], br_catalog_book(cat, bs[i])->id, (double)vs[i]);
    fprintf(f, "new,%s,5\nnew,%s,1\nonly,%s,5\n", br_catalog_book(cat, a)->id,
            br_catalog_book(cat, b)->id, br_catalog_book(cat, a)->id);
    fclose(f);
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    br_ratings *r2;
    assert_int_equal(br_ratings_load(path, cat, &lo, &r2, NULL), BR_OK);
    int64_t who[2] = {br_ratings_find_user(r2, "only"), br_ratings_find_user(r2, "new")};
    assert_true(nb <= 1000);
    static int32_t ids[2][1000];
    static float sc[1000];
    for (int w = 0; w < 2; w++) {
        assert_true(who[w] >= 0);
        assert_int_equal(
            br_content_similar_user(emb, nb, 512, r2, (uint32_t)who[w], nb - 2, ids[w], sc), BR_OK);
    }
    for (int k = 0; k < 5; k++) {
        uint32_t place[2] = {0, 0}; /* among the books other than A and B */
        for (int w = 0; w < 2; w++)
            for (uint32_t p = 0; p < nb - 2 && ids[w][p] != (int32_t)near[k]; p++)
                place[w] += ids[w][p] != (int32_t)b;
        assert_true(place[1] > place[0]);
    }
    br_ratings_free(r2);
    br_free(us);
    br_free(bs);
    br_free(vs);
    br_free(emb);
    br_ratings_free(r);
    br_catalog_free(cat);
}

/* The re-ranker: its fit is deterministic, its loss never increases and
 * ends below the start; it recovers the direction of a planted linear
 * rule; the default hybrid then ranks its candidates by coef . features. */
static void test_rerank(void **state)
{
    (void)state;
    enum { ROWS = 6000, F = BR_RERANK_FEATURES };
    float *x = br_malloc(ROWS * F * sizeof *x);
    uint8_t *y = br_malloc(ROWS);
    br_rng rng;
    br_rng_seed(&rng, 7);
    float truth[F] = {0};
    truth[0] = 2.0f, truth[3] = -1.0f, truth[7] = 0.5f;
    for (int i = 0; i < ROWS; i++) {
        double t = -2;
        for (int c = 0; c < F; c++) {
            x[i * F + c] = (float)br_rng_normal(&rng) * (c == 5 ? 10.0f : 1.0f);
            t += truth[c] * x[i * F + c];
        }
        y[i] = br_rng_uniform(&rng) < 1 / (1 + exp(-t));
    }
    float c1[F], c2[F];
    br_rerank_report r1, r2;
    assert_int_equal(br_rerank_fit(x, y, ROWS, 1e-4, c1, &r1), BR_OK);
    br_set_num_threads(1);
    assert_int_equal(br_rerank_fit(x, y, ROWS, 1e-4, c2, &r2), BR_OK);
    br_set_num_threads(0);
    assert_memory_equal(c1, c2, sizeof c1); /* bit for bit, any thread count */
    assert_true(r1.iterations >= 2);
    for (uint32_t i = 1; i <= r1.iterations; i++) assert_true(r1.loss[i] <= r1.loss[i - 1]);
    assert_true(r1.loss[r1.iterations] < r1.loss[0] - 0.05);
    for (int c = 0; c < F; c++)
        assert_true(fabsf(c1[c] - truth[c]) < 0.25f); /* 6000 rows: close to the rule */
    assert_int_equal(br_rerank_fit(x, y, 0, 1e-4, c1, NULL), BR_EINVAL);
    x[5] = NAN;
    assert_status_detail(br_rerank_fit(x, y, ROWS, 1e-4, c1, NULL), BR_EINVAL, "not finite");
    br_free(x);
    br_free(y);

    /* Learned on the seed universe's own ratings as validation: ranks by
     * coef . features over the candidates. */
    br_catalog *cat;
    br_ratings *r;
    float *emb;
    json_t *ref = seed(&cat, &r, &emb);
    json_decref(ref);
    br_hybrid_options o;
    br_hybrid_options_default(&o);
    o.ease.max_items = 300, o.ease.lambda = 5, o.als.iterations = 5;
    o.cand_ease = 30, o.cand_als = 25;
    br_split_options so = BR_SPLIT_OPTIONS_DEFAULT;
    br_split sp;
    assert_int_equal(br_split_ratings(r, &so, &sp), BR_OK);
    br_train_data td = {sp.n_users,    sp.n_books,    sp.n_train,
                        sp.train_user, sp.train_book, sp.train_value};
    br_engine e = BR_ENGINE_HYBRID;
    br_hybrid *h = NULL;
    assert_int_equal(br_hybrid_fit(&td, cat, emb, 512, &o, &e, 1, &h), BR_OK);
    br_rerank_report rep;
    float coef[F], coef2[F];
    assert_int_equal(br_hybrid_learn_rerank(h, &sp, 0, 1e-3, coef, &rep), BR_OK);
    assert_int_equal(br_hybrid_learn_rerank(h, &sp, 0, 1e-3, coef2, NULL), BR_OK);
    assert_memory_equal(coef, coef2, sizeof coef);
    assert_true(rep.rows > 0 && rep.positives > 0 && rep.readers > 0);
    assert_true(rep.loss[rep.iterations] < rep.loss[0]);
    br_hybrid_free(h);
    memcpy(o.rerank_coef, coef, sizeof coef);
    assert_int_equal(br_hybrid_fit(&td, cat, emb, 512, &o, &e, 1, &h), BR_OK);
    for (uint32_t user = 0; user < sp.n_users; user += 5) {
        uint32_t books[80], it[10];
        float fx[80 * F], is[10];
        size_t n;
        assert_int_equal(br_hybrid_features(h, user, books, fx, 80, &n), BR_OK);
        assert_true(n < 80);
        assert_int_equal(br_hybrid_rank(h, BR_ENGINE_HYBRID, &user, 1, 10, it, is), BR_OK);
        double sc[80];
        for (size_t q = 0; q < n; q++) {
            sc[q] = 0;
            for (int c = 0; c < F; c++) sc[q] += (double)coef[c] * fx[q * F + c];
        }
        for (int p = 0; p < 10 && (size_t)p < n; p++) {
            size_t q = 0;
            while (q < n && books[q] != it[p]) q++;
            assert_true(q < n);
            assert_true(fabs(sc[q] - is[p]) < 1e-4 * (1 + fabs(sc[q])));
            /* nothing unlisted scores clearly higher than the last listed */
            for (size_t q2 = 0; q2 < n; q2++) {
                int listed = 0;
                for (int p2 = 0; p2 < 10; p2++) listed |= books[q2] == it[p2];
                if (!listed) assert_true(sc[q2] <= is[9] + 1e-4);
            }
        }
        /* More than the candidates asked for: the candidates first, in the
         * same order, then other unrated books, scores still decreasing. */
        enum { KK = 100 };
        uint32_t big[KK];
        float bs[KK];
        assert_int_equal(br_hybrid_rank(h, BR_ENGINE_HYBRID, &user, 1, KK, big, bs), BR_OK);
        assert_memory_equal(big, it, sizeof it);
        br_csr m = {0};
        assert_int_equal(
            br_csr_from_coo(td.n_users, td.n_books, td.n, td.user, td.book, td.value, &m), BR_OK);
        for (int p = 0; p < KK; p++) {
            assert_int_not_equal(big[p], UINT32_MAX);
            int cand = 0;
            for (size_t q = 0; q < n; q++) cand |= books[q] == big[p];
            assert_int_equal(cand, (size_t)p < n); /* candidates exactly first */
            for (int p2 = 0; p2 < p; p2++) assert_int_not_equal(big[p2], big[p]);
            for (uint64_t q = m.indptr[user]; q < m.indptr[user + 1]; q++)
                assert_int_not_equal(big[p], m.indices[q]);
            if (p) assert_true(bs[p] <= bs[p - 1]);
        }
        br_csr_free(&m);
        /* the explanation's parts add up to the re-ranker's score */
        br_explanation ex;
        assert_int_equal(br_hybrid_explain(h, cat, BR_ENGINE_HYBRID, user, it[0], &ex), BR_OK);
        float sum = 0;
        for (uint32_t p = 0; p < ex.n_parts; p++) sum += ex.part[p].contribution;
        assert_true(fabsf(sum - is[0]) < 1e-3f * (1 + fabsf(is[0])));
    }
    br_hybrid_free(h);
    br_split_free(&sp);
    br_free(emb);
    br_ratings_free(r);
    br_catalog_free(cat);
}

/* br_hybrid_tune's NDCG sums are the same bits whatever the thread count
 * and however the threads are scheduled: eval picks the blend weights by
 * comparing them, so a last-bit difference can pick other weights. Many
 * readers (several blocks, each split between the threads) in taste
 * groups, so most readers have a non-zero NDCG to add. */
static void test_tune_deterministic(void **state)
{
    (void)state;
    enum { NU = 1500, NB = 240, GROUPS = 6, PER = 24, HELD = 6, NG = 8 };
    br_rng rng;
    br_rng_seed(&rng, 11);
    br_split sp = {0};
    sp.n_users = NU, sp.n_books = NB, sp.relevant_min = 4.0f;
    sp.train_user = br_malloc((size_t)NU * PER * sizeof *sp.train_user);
    sp.train_book = br_malloc((size_t)NU * PER * sizeof *sp.train_book);
    sp.train_value = br_malloc((size_t)NU * PER * sizeof *sp.train_value);
    sp.test_ptr = br_malloc(((size_t)NU + 1) * sizeof *sp.test_ptr);
    sp.test_book = br_malloc((size_t)NU * HELD * sizeof *sp.test_book);
    sp.test_value = br_malloc((size_t)NU * HELD * sizeof *sp.test_value);
    for (uint32_t u = 0; u < NU; u++) {
        /* PER distinct books, mostly from the reader's group (rated 4-5),
         * the rest anywhere (1-3); the last HELD are held out */
        uint32_t g = u % GROUPS, got[PER];
        sp.test_ptr[u] = sp.n_test;
        for (uint32_t i = 0; i < PER; i++) {
            int in = br_rng_uniform(&rng) < 0.75;
            uint32_t b;
            int dup;
            do {
                b = in ? g * (NB / GROUPS) + (uint32_t)br_rng_below(&rng, NB / GROUPS)
                       : (uint32_t)br_rng_below(&rng, NB);
                dup = 0;
                for (uint32_t j = 0; j < i; j++) dup |= got[j] == b;
            } while (dup);
            got[i] = b;
            float v = in ? (float)(4 + br_rng_below(&rng, 2)) : (float)(1 + br_rng_below(&rng, 3));
            if (i < PER - HELD) {
                sp.train_user[sp.n_train] = u, sp.train_book[sp.n_train] = b;
                sp.train_value[sp.n_train++] = v;
            } else {
                sp.test_book[sp.n_test] = b, sp.test_value[sp.n_test++] = v;
            }
        }
        sp.n_eval_users++;
    }
    sp.test_ptr[NU] = sp.n_test;
    br_train_data td = {sp.n_users,    sp.n_books,    sp.n_train,
                        sp.train_user, sp.train_book, sp.train_value};
    br_hybrid_options o;
    br_hybrid_options_default(&o);
    o.als.iterations = 3;
    o.cand_ease = o.cand_als = 40;
    const br_engine need[3] = {BR_ENGINE_EASE, BR_ENGINE_ALS, BR_ENGINE_POPULARITY};
    br_hybrid *h = NULL;
    assert_int_equal(br_hybrid_fit(&td, NULL, NULL, 0, &o, need, 3, &h), BR_OK);
    const float grid[NG][4] = {{1, 0, 0, 0},     {1, 0.1f, 0, 0},    {1, 0.2f, 0, 0.05f},
                               {1, 0.3f, 0, 0},  {1, 0.5f, 0, 0.1f}, {0, 1, 0, 0},
                               {1, 1, 0, 1},     {0.2f, 1, 0, 0.3f}};
    double one[NG], two[NG];
    br_set_num_threads(1);
    assert_int_equal(br_hybrid_tune(h, &sp, 10, grid, NG, one), BR_OK);
    for (int g = 0; g < NG; g++) assert_true(one[g] > 0.01 && one[g] <= 1);
    br_set_num_threads(2);
    for (int run = 0; run < 4; run++) {
        assert_int_equal(br_hybrid_tune(h, &sp, 10, grid, NG, two), BR_OK);
        assert_memory_equal(one, two, sizeof one); /* bit for bit */
    }
    br_set_num_threads(0);
    br_hybrid_free(h);
    br_split_free(&sp);
}

static void test_split_train_and_text(void **state)
{
    (void)state;
    br_catalog *cat;
    br_ratings *r;
    char p[4096];
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    snprintf(p, sizeof p, "%s/seed-universe/books.csv", BR_GOLDEN_DIR);
    assert_int_equal(br_catalog_load(p, &lo, &cat, NULL), BR_OK);
    snprintf(p, sizeof p, "%s/seed-universe/ratings.csv", BR_GOLDEN_DIR);
    assert_int_equal(br_ratings_load(p, cat, &lo, &r, NULL), BR_OK);
    br_split s, v;
    br_split_options so = BR_SPLIT_OPTIONS_DEFAULT;
    assert_int_equal(br_split_ratings(r, &so, &s), BR_OK);
    so.seed = 1042;
    assert_int_equal(br_split_train(&s, &so, &v), BR_OK);
    assert_int_equal(v.n_train + v.n_test, s.n_train);
    for (uint32_t u = 0; u < s.n_users; u++)
        for (uint64_t j = v.test_ptr[u]; j < v.test_ptr[u + 1]; j++) {
            /* a validation book is a training book of s, never a test one */
            int in_train = 0;
            for (size_t i = 0; i < s.n_train; i++)
                in_train |= s.train_user[i] == u && s.train_book[i] == v.test_book[j];
            assert_true(in_train);
            for (uint64_t q = s.test_ptr[u]; q < s.test_ptr[u + 1]; q++)
                assert_int_not_equal(s.test_book[q], v.test_book[j]);
        }
    br_split_free(&v);
    br_split_free(&s);
    br_book b = {.id = "7",
                 .title = "Dune",
                 .authors = "Frank Herbert",
                 .genre = "",
                 .tags = "sci-fi|classics",
                 .description = "Spice.",
                 .year = 1965,
                 .image_url = ""};
    char *t = NULL;
    assert_int_equal(br_book_text(&b, BR_TEXT_FULL, &t), BR_OK);
    assert_string_equal(t, "Dune. by Frank Herbert. sci-fi, classics. Spice.");
    br_free(t);
    assert_int_equal(br_book_text(&b, BR_TEXT_DESCRIPTION, &t), BR_OK);
    assert_string_equal(t, "Spice.");
    br_free(t);
    b.description = "";
    assert_int_equal(br_book_text(&b, BR_TEXT_DESCRIPTION, &t), BR_OK);
    assert_string_equal(t, "Dune");
    br_free(t);
    br_ratings_free(r);
    br_catalog_free(cat);
}

/* Records in a cache file (after magic, version/dim/key length, key). */
static uint64_t cache_count(const char *path, size_t key_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint64_t count = 0;
    if (fseek(f, (long)(8 + 12 + key_len), SEEK_SET) != 0 || fread(&count, sizeof count, 1, f) != 1)
        count = UINT64_MAX;
    fclose(f);
    return count;
}

static br_catalog *catalog_of(const char *dir, const char *name, const char *csv)
{
    char *path = tu_write_file(dir, name, csv);
    br_catalog *cat = NULL;
    assert_int_equal(br_catalog_load(path, NULL, &cat, NULL), BR_OK);
    br_free(path);
    return cat;
}

/* The embedding cache with the tiny BERT of tests/golden: books 0 and 2
 * share their text, so the cache file holds two texts for three books. */
static void test_embed_cache_repeated_text(void **state)
{
    (void)state;
    br_encoder *enc;
    assert_int_equal(br_encoder_open_bert(BR_GOLDEN_DIR "/minilm/tiny", 0, &enc), BR_OK);
    char *dir = tu_tmpdir("test_embcache");
    br_catalog *cat = catalog_of(dir, "books.csv",
                                 "book_id,title,description\n"
                                 "a,Same,One story.\nb,Other,Another story.\nc,Same,One story.\n");
    size_t dim = br_encoder_dim(enc), embedded = 0;
    float *v1 = br_malloc(3 * dim * sizeof *v1), *v2 = br_malloc(3 * dim * sizeof *v2);
    char cache[4096];
    snprintf(cache, sizeof cache, "%s/cache/emb.brec", dir);
    assert_int_equal(br_embed_catalog(enc, "tiny", cat, BR_TEXT_DESCRIPTION, cache, v1, &embedded),
                     BR_OK);
    assert_int_equal(embedded, 3);
    assert_memory_equal(v1, v1 + 2 * dim, dim * sizeof *v1);
    assert_memory_not_equal(v1, v1 + dim, dim * sizeof *v1);
    assert_int_equal(cache_count(cache, 4), 2);
    assert_int_equal(br_embed_catalog(enc, "tiny", cat, BR_TEXT_DESCRIPTION, cache, v2, &embedded),
                     BR_OK);
    assert_int_equal(embedded, 0);
    assert_memory_equal(v1, v2, 3 * dim * sizeof *v1);
    br_free(v1);
    br_free(v2);
    br_catalog_free(cat);
    br_free(dir);
    br_encoder_close(enc);
}

/* Where the shared cache lives, and its file per encoder. */
static void test_embed_cache_paths(void **state)
{
    (void)state;
    char buf[4096];
    const char *old_xdg = getenv("XDG_CACHE_HOME");
    char *xdg = old_xdg ? br_strdup(old_xdg) : NULL;
    setenv("BOOKREC_EMBED_CACHE", "/tmp/somewhere", 1);
    assert_int_equal(br_embed_cache_dir(buf, sizeof buf), BR_OK);
    assert_string_equal(buf, "/tmp/somewhere");
    setenv("BOOKREC_EMBED_CACHE", "none", 1);
    assert_int_equal(br_embed_cache_dir(buf, sizeof buf), BR_OK);
    assert_string_equal(buf, "");
    unsetenv("BOOKREC_EMBED_CACHE");
    setenv("XDG_CACHE_HOME", "/tmp/xdg-test", 1);
    assert_int_equal(br_embed_cache_dir(buf, sizeof buf), BR_OK);
    assert_string_equal(buf, "/tmp/xdg-test/bookrec/embeddings");
    unsetenv("XDG_CACHE_HOME");
    if (getenv("HOME")) {
        char want[4096];
        snprintf(want, sizeof want, "%s/.cache/bookrec/embeddings", getenv("HOME"));
        assert_int_equal(br_embed_cache_dir(buf, sizeof buf), BR_OK);
        assert_string_equal(buf, want);
    }
    if (xdg) setenv("XDG_CACHE_HOME", xdg, 1);
    br_free(xdg);
    setenv("BOOKREC_EMBED_CACHE", "none", 1); /* as main() left it */

    assert_int_equal(br_embed_cache_file("/c", "use-lite", buf, sizeof buf), BR_OK);
    assert_string_equal(buf, "/c/use-lite.brec");
    char other[4096];
    assert_int_equal(br_embed_cache_file("/c", "bert:/m/all-MiniLM-L6-v2", buf, sizeof buf), BR_OK);
    assert_int_equal(br_embed_cache_file("/c", "bert:/n/all-MiniLM-L6-v2", other, sizeof other),
                     BR_OK);
    assert_true(strncmp(buf, "/c/", 3) == 0 && !strchr(buf + 3, '/') && !strchr(buf + 3, ':'));
    assert_non_null(strstr(buf, "all-MiniLM-L6-v2-"));
    assert_string_not_equal(buf, other); /* two models, two files */
    assert_int_equal(br_embed_cache_file("", "use-lite", buf, sizeof buf), BR_EINVAL);

    assert_int_equal(br_engine_template(BR_ENGINE_NOTEBOOK_HYBRID), BR_TEXT_DESCRIPTION);
    assert_int_equal(br_engine_template(BR_ENGINE_CONTENT_CLUSTER), BR_TEXT_DESCRIPTION);
    assert_int_equal(br_engine_template(BR_ENGINE_CONTENT_FAVOURITE), BR_TEXT_DESCRIPTION);
    assert_int_equal(br_engine_template(BR_ENGINE_RANK_FUSION), BR_TEXT_DESCRIPTION);
    assert_int_equal(br_engine_template(BR_ENGINE_CONTENT), BR_TEXT_FULL);
    assert_int_equal(br_engine_template(BR_ENGINE_HYBRID), BR_TEXT_FULL);
    assert_int_equal(br_engine_template(BR_ENGINE_RRF), BR_TEXT_FULL);
}

/* A caller's own file (train's DIR/embeddings.brec) and the shared cache:
 * what one holds the other gains, so nothing is embedded twice whichever
 * ran first; each template's texts sit side by side; a damaged shared
 * file is replaced, a damaged own file is an error. */
static void test_embed_cache_shared(void **state)
{
    (void)state;
    br_encoder *enc;
    assert_int_equal(br_encoder_open_bert(BR_GOLDEN_DIR "/minilm/tiny", 0, &enc), BR_OK);
    char *dir = tu_tmpdir("test_embshared");
    br_catalog *cat = catalog_of(dir, "books.csv",
                                 "book_id,title,description\n"
                                 "a,Same,One story.\nb,Other,Another story.\nc,Same,One story.\n");
    size_t dim = br_encoder_dim(enc), embedded = 99;
    float *v1 = br_malloc(3 * dim * sizeof *v1), *v2 = br_malloc(3 * dim * sizeof *v2);
    char own_a[4096], own_b[4096], shared[4096], shared2[4096], sfile[4200], s2file[4200];
    snprintf(own_a, sizeof own_a, "%s/a/embeddings.brec", dir);
    snprintf(own_b, sizeof own_b, "%s/b/embeddings.brec", dir);
    snprintf(shared, sizeof shared, "%s/shared", dir);
    snprintf(shared2, sizeof shared2, "%s/shared2", dir);
    assert_int_equal(br_embed_cache_file(shared, "tiny", sfile, sizeof sfile), BR_OK);
    assert_int_equal(br_embed_cache_file(shared2, "tiny", s2file, sizeof s2file), BR_OK);

    /* cold: both files get the two texts */
    br_embed_caches c = {own_a, shared};
    assert_int_equal(br_embed_catalog_in(enc, "tiny", cat, BR_TEXT_DESCRIPTION, &c, v1, &embedded),
                     BR_OK);
    assert_int_equal(embedded, 3);
    assert_int_equal(cache_count(own_a, 4), 2);
    assert_int_equal(cache_count(sfile, 4), 2);
    /* a new model directory: all from the shared cache, and its file filled */
    c = (br_embed_caches){own_b, shared};
    assert_int_equal(br_embed_catalog_in(enc, "tiny", cat, BR_TEXT_DESCRIPTION, &c, v2, &embedded),
                     BR_OK);
    assert_int_equal(embedded, 0);
    assert_memory_equal(v1, v2, 3 * dim * sizeof *v1);
    assert_int_equal(cache_count(own_b, 4), 2);
    /* an empty shared cache: all from the own file, and the shared one fed */
    c = (br_embed_caches){own_a, shared2};
    memset(v2, 0, 3 * dim * sizeof *v2);
    assert_int_equal(br_embed_catalog_in(enc, "tiny", cat, BR_TEXT_DESCRIPTION, &c, v2, &embedded),
                     BR_OK);
    assert_int_equal(embedded, 0);
    assert_memory_equal(v1, v2, 3 * dim * sizeof *v1);
    assert_int_equal(cache_count(s2file, 4), 2);
    /* no cache at all */
    c = (br_embed_caches){NULL, ""};
    assert_int_equal(br_embed_catalog_in(enc, "tiny", cat, BR_TEXT_DESCRIPTION, &c, v2, &embedded),
                     BR_OK);
    assert_int_equal(embedded, 3);
    assert_memory_equal(v1, v2, 3 * dim * sizeof *v1);
    /* the other template: its own texts, beside the first ones */
    c = (br_embed_caches){NULL, shared};
    assert_int_equal(br_embed_catalog_in(enc, "tiny", cat, BR_TEXT_FULL, &c, v2, &embedded), BR_OK);
    assert_int_equal(embedded, 3);
    assert_int_equal(cache_count(sfile, 4), 4);
    assert_int_equal(br_embed_catalog_in(enc, "tiny", cat, BR_TEXT_DESCRIPTION, &c, v2, &embedded),
                     BR_OK);
    assert_int_equal(embedded, 0);
    assert_memory_equal(v1, v2, 3 * dim * sizeof *v1);
    /* another encoder name: another file, the first one untouched */
    assert_int_equal(
        br_embed_catalog_in(enc, "tiny-2", cat, BR_TEXT_DESCRIPTION, &c, v2, &embedded), BR_OK);
    assert_int_equal(embedded, 3);
    assert_int_equal(cache_count(sfile, 4), 4);

    /* a damaged shared file: a warning, embedded again, then whole again */
    char *junk = tu_write_file(shared, "tiny.brec", "BREMBCAC garbage");
    assert_int_equal(br_embed_catalog_in(enc, "tiny", cat, BR_TEXT_DESCRIPTION, &c, v2, &embedded),
                     BR_OK);
    assert_int_equal(embedded, 3);
    assert_memory_equal(v1, v2, 3 * dim * sizeof *v1);
    assert_int_equal(cache_count(sfile, 4), 2);
    assert_int_equal(br_embed_catalog_in(enc, "tiny", cat, BR_TEXT_DESCRIPTION, &c, v2, &embedded),
                     BR_OK);
    assert_int_equal(embedded, 0);
    /* a damaged own file stops the call */
    size_t len = 0;
    char *whole = tu_read_file(own_a, &len);
    assert_non_null(whole);
    FILE *f = fopen(own_a, "wb");
    assert_int_equal(fwrite(whole, 1, len - 10, f), len - 10);
    fclose(f);
    c = (br_embed_caches){own_a, shared};
    assert_status_detail(
        br_embed_catalog_in(enc, "tiny", cat, BR_TEXT_DESCRIPTION, &c, v2, &embedded), BR_EFORMAT,
        "truncated");
    br_free(whole);
    br_free(junk);
    br_free(v1);
    br_free(v2);
    br_catalog_free(cat);
    br_free(dir);
    br_encoder_close(enc);
}

/* Another process adds to the cache file while this one embeds: the nested
 * call below runs when this one has read the file and embedded, before it
 * writes. Rewriting the file from what was read at the start loses the
 * other's books; re-reading under the lock keeps them. */
typedef struct nested_ctx {
    const br_encoder *enc;
    const br_catalog *cat;
    const char *cache;
    int fired;
    br_status st;
} nested_ctx;

static int nested_writer(const char *stage, uint64_t done, uint64_t total, void *user)
{
    nested_ctx *n = user;
    if (n->fired || strcmp(stage, "embed") != 0 || done != total) return 0;
    n->fired = 1;
    br_progress_set(NULL, NULL);
    size_t dim = br_encoder_dim(n->enc), embedded = 0;
    float *v = br_malloc(2 * dim * sizeof *v);
    n->st = br_embed_catalog(n->enc, "tiny", n->cat, BR_TEXT_DESCRIPTION, n->cache, v, &embedded);
    br_free(v);
    return 0;
}

static void test_embed_cache_concurrent_writer(void **state)
{
    (void)state;
    br_encoder *enc;
    assert_int_equal(br_encoder_open_bert(BR_GOLDEN_DIR "/minilm/tiny", 0, &enc), BR_OK);
    char *dir = tu_tmpdir("test_embconc");
    br_catalog *x =
        catalog_of(dir, "x.csv", "book_id,title,description\n1,X,First.\n2,Y,Second.\n");
    br_catalog *y =
        catalog_of(dir, "y.csv", "book_id,title,description\n3,Z,Third.\n4,W,Fourth.\n");
    br_catalog *xy = catalog_of(dir, "xy.csv",
                                "book_id,title,description\n1,X,First.\n2,Y,Second.\n"
                                "3,Z,Third.\n4,W,Fourth.\n");
    char cache[4096];
    snprintf(cache, sizeof cache, "%s/emb.brec", dir);
    size_t dim = br_encoder_dim(enc), embedded = 0;
    float *v = br_malloc(4 * dim * sizeof *v);
    nested_ctx n = {enc, y, cache, 0, BR_OK};
    br_progress_set(nested_writer, &n);
    assert_int_equal(br_embed_catalog(enc, "tiny", x, BR_TEXT_DESCRIPTION, cache, v, &embedded),
                     BR_OK);
    br_progress_set(NULL, NULL);
    assert_true(n.fired);
    assert_int_equal(n.st, BR_OK);
    assert_int_equal(embedded, 2);
    /* both writers' books are there */
    assert_int_equal(cache_count(cache, 4), 4);
    assert_int_equal(br_embed_catalog(enc, "tiny", xy, BR_TEXT_DESCRIPTION, cache, v, &embedded),
                     BR_OK);
    assert_int_equal(embedded, 0);
    br_free(v);
    br_catalog_free(x);
    br_catalog_free(y);
    br_catalog_free(xy);
    br_free(dir);
    br_encoder_close(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ease_reference),
        cmocka_unit_test(test_notebook_parity),
        cmocka_unit_test(test_fusion_and_hybrid),
        cmocka_unit_test(test_hybrid_candidates_reference),
        cmocka_unit_test(test_rerank),
        cmocka_unit_test(test_dislike_explanations),
        cmocka_unit_test(test_rating_is_dislike),
        cmocka_unit_test(test_dislike_profile),
        cmocka_unit_test(test_tune_deterministic),
        cmocka_unit_test(test_split_train_and_text),
        cmocka_unit_test(test_embed_cache_repeated_text),
        cmocka_unit_test(test_embed_cache_paths),
        cmocka_unit_test(test_embed_cache_shared),
        cmocka_unit_test(test_embed_cache_concurrent_writer),
    };
    /* never the user's shared cache: the tests name their own folders */
    setenv("BOOKREC_EMBED_CACHE", "none", 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
