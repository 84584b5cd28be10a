/*
 * test_coldbooks.c: books nobody has rated (issue 18, "cold books").
 *  - the catalogue's reasons (content/reason.c): the same series first,
 *    then an author in common, then two or more shared tags, else none;
 *  - implicit ALS's vectors of unrated books predicted from their content
 *    (src/hybrid/coldvec.c): a book by the author and with the tags and
 *    text of one group of books lands among that group's readers'
 *    factors, and stays at zero with cold_books off;
 *  - the default hybrid recommends it to the group's readers and not to
 *    the other group's, and explains it by what it shares with a liked
 *    book, never by other readers or by a disliked book;
 *  - a candidate nobody has rated does not move the other candidates'
 *    standardised scores.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content/lexical.h"
#include "hybrid/hybrid_internal.h"
#include "testutil.h"

static br_catalog *catalog(const char *text)
{
    return tu_catalog("coldbooks", text);
}

static void test_reason(void **state)
{
    (void)state;
    br_catalog *cat = catalog("book_id,title,authors,tags,description\n"
                              "1,\"Dune (Dune Chronicles, #1)\",Frank Herbert,sci-fi|classic,x\n"
                              "2,\"Dune Messiah (Dune Chronicles #2)\",Frank Herbert,sci-fi,x\n"
                              "3,Hyperion,Dan Simmons,sci-fi|classic|space,x\n"
                              "4,The Terror,\"Dan Simmons, Someone Else\",horror,x\n"
                              "5,Emma,Jane Austen,romance,x\n"
                              "6,Foundation,Isaac Asimov,sci-fi|space|classic,x\n");
    br__lex_reason r;
    /* the series beats the author (both shared with book 0) */
    uint32_t liked[] = {4, 0};
    assert_int_equal(br__lex_reason_find(cat, 1, liked, 2, &r), 1);
    assert_int_equal(r.kind, BR__REASON_SERIES);
    assert_int_equal(r.which, 1);
    assert_string_equal(r.what, "Dune Chronicles");
    /* an author in common (the second of book 3's authors is no one's) */
    uint32_t liked2[] = {4, 2};
    assert_int_equal(br__lex_reason_find(cat, 3, liked2, 2, &r), 1);
    assert_int_equal(r.kind, BR__REASON_AUTHOR);
    assert_int_equal(r.which, 1);
    assert_string_equal(r.what, "Dan Simmons");
    /* tags: the liked book sharing the most (Hyperion: 3), two named in
     * the candidate's order */
    uint32_t liked3[] = {0, 2};
    assert_int_equal(br__lex_reason_find(cat, 5, liked3, 2, &r), 1);
    assert_int_equal(r.kind, BR__REASON_TAGS);
    assert_int_equal(r.which, 1);
    assert_string_equal(r.what, "sci-fi and space");
    /* one shared tag is no reason; nothing shared; the book itself never */
    uint32_t liked4[] = {1, 4};
    assert_int_equal(br__lex_reason_find(cat, 2, liked4, 2, &r), 0);
    assert_int_equal(r.kind, BR__REASON_NONE);
    uint32_t self[] = {0};
    assert_int_equal(br__lex_reason_find(cat, 0, self, 1, &r), 0);
    br_catalog_free(cat);
}

/* Two groups of 6 books (by Ann Vale, tagged sea|storm; by Bob Hart,
 * tagged space|robots) with embeddings near one of two directions; books
 * 5 and 11 are rated by no one. Readers 0-19 read group A's books 0-4
 * (rating 5), readers 20-39 group B's 6-10; reader 0 also rated book 6 1
 * star. */
enum { NB = 12, NU = 40, DIM = 8 };

static br_catalog *groups_catalog(void)
{
    char text[4096] = "book_id,title,authors,tags,description\n";
    static const char *const word[NB] = {"tide",  "harbour",    "gale",  "reef",
                                         "wreck", "lighthouse", "orbit", "android",
                                         "comet", "nebula",     "laser", "starship"};
    for (int b = 0; b < NB; b++) {
        char line[256];
        int a = b < NB / 2;
        snprintf(line, sizeof line, "%d,The %s,%s,%s,a story of %s and the %s\n", b + 1, word[b],
                 a ? "Ann Vale" : "Bob Hart", a ? "sea|storm" : "space|robots",
                 a ? "the sea" : "the stars", word[b]);
        strcat(text, line);
    }
    return catalog(text);
}

static void groups_data(float *emb, uint32_t *user, uint32_t *book, float *value, size_t *n)
{
    for (int b = 0; b < NB; b++) {
        float *e = emb + (size_t)b * DIM;
        double s = 0;
        for (int d = 0; d < DIM; d++) {
            e[d] = (d == (b < NB / 2 ? 0 : 1) ? 1.0f : 0.0f) +
                   0.15f * (float)((b * 7 + d * 3) % 5) / 4;
            s += (double)e[d] * e[d];
        }
        for (int d = 0; d < DIM; d++) e[d] = (float)(e[d] / sqrt(s));
    }
    *n = 0;
    for (uint32_t u = 0; u < NU; u++) {
        uint32_t first = u < NU / 2 ? 0 : NB / 2;
        for (uint32_t j = 0; j < 5; j++) {
            if ((u + j) % 4 == 3) continue; /* not every reader reads every book */
            user[*n] = u, book[*n] = first + j, value[(*n)++] = 5;
        }
    }
    user[*n] = 0, book[*n] = 6, value[(*n)++] = 1;
}

static float cosine(const float *a, const float *b, uint32_t k)
{
    double ab = 0, aa = 0, bb = 0;
    for (uint32_t i = 0; i < k; i++) ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
    return aa > 0 && bb > 0 ? (float)(ab / sqrt(aa * bb)) : 0.0f;
}

/* The hybrid fitted on the two groups for engine e (cold_books on/off). */
static br_hybrid *groups_fit(const br_catalog *cat, br_engine e, int cold_books)
{
    static float emb[NB * DIM], value[NU * 5 + 1];
    static uint32_t user[NU * 5 + 1], book[NU * 5 + 1];
    size_t n;
    groups_data(emb, user, book, value, &n);
    br_train_data td = {NU, NB, n, user, book, value};
    br_hybrid_options o;
    br_hybrid_options_default(&o);
    o.als.factors = 8;
    o.cold_books = cold_books;
    br_hybrid *h = NULL;
    assert_int_equal(br_hybrid_fit(&td, cat, emb, DIM, &o, &e, 1, &h), BR_OK);
    return h;
}

static void test_cold_factors(void **state)
{
    (void)state;
    br_catalog *cat = groups_catalog();
    br_engine e = BR_ENGINE_ALS;
    for (int on = 0; on <= 1; on++) {
        br_hybrid *h = groups_fit(cat, e, on);
        const br_cf_model *m = br_hybrid_cf_model(h, BR_ENGINE_ALS);
        uint32_t k = br_cf_model_factors(m);
        const float *v = br_cf_model_item_factors(m);
        /* the groups' mean factors */
        float ma[16] = {0}, mb[16] = {0};
        for (uint32_t b = 0; b < 5; b++)
            for (uint32_t f = 0; f < k; f++)
                ma[f] += v[b * k + f], mb[f] += v[(b + NB / 2) * k + f];
        double n5 = 0, n11 = 0;
        for (uint32_t f = 0; f < k; f++) n5 += fabsf(v[5 * k + f]), n11 += fabsf(v[11 * k + f]);
        if (!on) {
            assert_true(n5 == 0 && n11 == 0);
        } else {
            assert_true(cosine(v + 5 * k, ma, k) > 0.9f);
            assert_true(cosine(v + 5 * k, mb, k) < 0.5f);
            assert_true(cosine(v + 11 * k, mb, k) > 0.9f);
            assert_true(cosine(v + 11 * k, ma, k) < 0.5f);
            /* the ALS engine ranks it first for the group's readers */
            uint32_t items[2], u1 = 1, u21 = 21;
            float sc[2];
            assert_int_equal(br_hybrid_rank(h, e, &u1, 1, 1, items, sc), BR_OK);
            assert_int_equal(items[0], 5);
            assert_int_equal(br_hybrid_rank(h, e, &u21, 1, 1, items, sc), BR_OK);
            assert_int_equal(items[0], 11);
        }
        br_hybrid_free(h);
    }
    br_catalog_free(cat);
}

static void test_cold_hybrid_explained(void **state)
{
    (void)state;
    br_catalog *cat = groups_catalog();
    br_engine e = BR_ENGINE_HYBRID;
    br_hybrid *h = groups_fit(cat, e, 1);
    /* reader 0 read 4 of group A's 5 rated books: what is left of group A
     * (one rated book, the cold one) comes before group B */
    uint32_t items[3], u0 = 0;
    float sc[3];
    assert_int_equal(br_hybrid_rank(h, e, &u0, 1, 3, items, sc), BR_OK);
    int found = 0;
    for (int p = 0; p < 2; p++) found |= items[p] == 5;
    assert_true(found);
    br_explanation ex;
    assert_int_equal(br_hybrid_explain(h, cat, e, 0, 5, &ex), BR_OK);
    int cold_said = 0;
    for (uint32_t p = 0; p < ex.n_parts; p++) {
        const char *why = ex.part[p].why;
        assert_null(strstr(why, "readers who")); /* nobody read it */
        assert_null(strstr(why, "*The orbit*")); /* rated 1: never a reason */
        if (ex.part[p].engine == BR_ENGINE_ALS) {
            assert_non_null(strstr(why, "nobody has rated it yet: by Ann Vale, like *The "));
            cold_said = 1;
        }
    }
    assert_true(cold_said);
    br_hybrid_free(h);
    br_catalog_free(cat);
}

/* The z-scores of the rated candidates are the same with or without a
 * book nobody has rated among them: far below on popularity, it would
 * otherwise shift every other candidate's popularity z. */
static void test_cold_zscore(void **state)
{
    (void)state;
    br_catalog *cat = groups_catalog();
    br_hybrid *h = groups_fit(cat, BR_ENGINE_HYBRID, 1);
    /* books 1, 2, 7 rated, 5 not; columns ease, als, content, popularity */
    const uint32_t book[4] = {1, 2, 7, 5};
    const float raw[4][4] = {{0.9f, 0.5f, 0.3f, 2.0f},
                             {0.4f, 0.7f, 0.1f, 2.5f},
                             {0.1f, 0.2f, 0.6f, 1.5f},
                             {-INFINITY, 0.8f, 0.5f, 0.0f}};
    float a[4][4], b[4][4];
    memcpy(a, raw, sizeof a);
    memcpy(b, raw, sizeof b);
    br__hybrid_zscore(h, book, &a[0][0], 3);
    br__hybrid_zscore(h, book, &b[0][0], 4);
    for (int p = 0; p < 3; p++)
        for (int c = 0; c < 4; c++) assert_float_equal(a[p][c], b[p][c], 1e-6);
    assert_true(b[3][3] < b[2][3]); /* the cold book still lowest on popularity */
    assert_float_equal(b[3][0], fminf(fminf(b[0][0], b[1][0]), b[2][0]), 1e-6);
    br_hybrid_free(h);
    br_catalog_free(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason),
        cmocka_unit_test(test_cold_factors),
        cmocka_unit_test(test_cold_hybrid_explained),
        cmocka_unit_test(test_cold_zscore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
