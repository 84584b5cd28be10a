/*
 * test_lexical.c: the content engine's lexical model (content/lexical.h).
 *  - the tokeniser: lowercase, UTF-8 letters and digits, separators,
 *    stopwords, the minimum length;
 *  - the series parser on goodbooks' forms and odd ones;
 *  - TF-IDF rows against hand-computed values (idf, field weights,
 *    1 + ln(count), L2 norm, min_df / max_df);
 *  - the sparse profile and its scores against the plain per-book twin;
 *  - the `content` engine ranks the other book of a liked book's series
 *    and author first, even when the sentence embeddings point elsewhere.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content/lexical.h"
#include "testutil.h"

typedef struct toks {
    char s[1024];
    size_t n;
} toks;

static void join(void *ctx, const char *tok, size_t n)
{
    toks *t = ctx;
    if (t->n) t->s[t->n++] = ' ';
    memcpy(t->s + t->n, tok, n);
    t->n += n;
    t->s[t->n] = 0;
}

static const char *tokens(const char *s, uint32_t min_len, int stop, toks *t)
{
    t->n = 0;
    t->s[0] = 0;
    br__lex_tokens(s, strlen(s), min_len, stop, join, t);
    return t->s;
}

static void test_tokens(void **state)
{
    (void)state;
    toks t;
    assert_string_equal(tokens("The Hunger Games, #1", 2, 1, &t), "hunger games");
    assert_string_equal(tokens("The Hunger Games, #1", 1, 0, &t), "the hunger games 1");
    assert_string_equal(tokens("J.K. Rowling", 1, 0, &t), "j k rowling");
    assert_string_equal(tokens("J.K. Rowling", 2, 0, &t), "rowling");
    /* UTF-8: lowercase beyond ASCII, accents kept, punctuation separates */
    assert_string_equal(tokens("ÉMILE Zola—GERMINAL", 2, 1, &t), "émile zola germinal");
    assert_string_equal(tokens("Mary GrandPré", 2, 1, &t), "mary grandpré");
    assert_string_equal(tokens("Sorcerer's Stone", 2, 1, &t), "sorcerer stone");
    assert_string_equal(tokens("morning?In the ruins", 2, 1, &t), "morning ruins");
    assert_string_equal(tokens("", 2, 1, &t), "");
    assert_string_equal(tokens("  ,,, ", 1, 0, &t), "");
    /* an invalid byte separates, never crashes */
    assert_string_equal(tokens("ab\xff"
                               "cd",
                               1, 0, &t),
                        "ab cd");
}

static void series(const char *title, int want, const char *name, float idx, const char *bare)
{
    char got[64];
    float gi;
    size_t b;
    assert_int_equal(br__lex_series(title, got, sizeof got, &gi, &b), want);
    if (want) {
        assert_string_equal(got, name);
        if (isnan(idx))
            assert_true(isnan(gi));
        else
            assert_float_equal(gi, idx, 1e-6);
    }
    assert_int_equal(b, strlen(bare));
    assert_memory_equal(title, bare, b);
}

static void test_series(void **state)
{
    (void)state;
    series("Inferno (Robert Langdon, #4)", 1, "Robert Langdon", 4, "Inferno");
    series("The Hunger Games (The Hunger Games, #1)", 1, "The Hunger Games", 1, "The Hunger Games");
    series("Dune", 0, "", NAN, "Dune");
    series("Persuasion (Penguin Classics)", 0, "", NAN, "Persuasion (Penguin Classics)");
    series("Odd (Series #2)", 1, "Series", 2, "Odd");
    series("Box Set (Series, #1-3)", 1, "Series", 1, "Box Set");
    series("Novella (Series, #0.5)", 1, "Series", 0.5f, "Novella");
    series("Boxed (Series, #)", 1, "Series", NAN, "Boxed");
    series("(#3)", 0, "", NAN, "(#3)");
    series("Trailing space (A, #2) ", 1, "A", 2, "Trailing space");
    series("Nested (Name (UK), #2)", 1, "Name (UK)", 2, "Nested");
    series("Unbalanced Name UK), #2)", 0, "", NAN, "Unbalanced Name UK), #2)");
}

static br_catalog *catalog(const char *text)
{
    return tu_catalog("lexical", text);
}

static float entry(const br__lex *m, uint32_t b, const char *term)
{
    int64_t t = br_idmap_find(m->vocab, term, strlen(term));
    if (t < 0) return 0;
    for (uint64_t e = m->x.indptr[b]; e < m->x.indptr[b + 1]; e++)
        if (m->x.indices[e] == (uint32_t)t) return m->x.values[e];
    return 0;
}

static void test_tfidf(void **state)
{
    (void)state;
    /* 4 books. Terms with df >= 2 survive min_df = 2; max_df = 0.9 drops
     * a term in all 4 ("common"). */
    br_catalog *cat = catalog("book_id,title,authors,tags,description\n"
                              "1,\"Alpha Alpha (Saga, #1)\",Ann Lee,sea,common river river\n"
                              "2,\"Beta (Saga, #2)\",Ann Lee,sea|war,common\n"
                              "3,Gamma,Bob Roe,war,common river\n"
                              "4,Delta,Bob Roe,,common solo\n");
    br__lex_options o;
    br__lex_options_default(&o);
    for (int f = 0; f < BR__LEX_FIELDS; f++) o.field[f] = 0;
    o.field[BR__LEX_AUTHOR] = 2.0f;
    o.field[BR__LEX_SERIES] = 3.0f;
    o.field[BR__LEX_DESC] = 1.0f;
    o.min_df = 2;
    o.max_df = 0.9f;
    br__lex *m = NULL;
    assert_int_equal(br__lex_build(cat, &o, &m), BR_OK);
    assert_int_equal(m->x.rows, 4);
    /* vocabulary: river, s:saga, a:ann_lee, a:bob_roe; not alpha (df 1),
     * common (df 4 > 3.6), solo (df 1); the title and tags weigh 0 */
    assert_int_equal(m->x.cols, 4);
    assert_true(br_idmap_find(m->vocab, "common", 6) < 0);
    assert_true(br_idmap_find(m->vocab, "alpha", 5) < 0);
    double idf2 = log(5.0 / 3.0) + 1.0; /* df 2 of 4 */
    /* book 0: river (desc, count 2), s:saga, a:ann_lee */
    double r = 1.0 * (1.0 + log(2.0)) * idf2, s = 3.0 * idf2, a = 2.0 * idf2;
    double nrm = sqrt(r * r + s * s + a * a);
    assert_float_equal(entry(m, 0, "river"), r / nrm, 1e-6);
    assert_float_equal(entry(m, 0, "s:saga"), s / nrm, 1e-6);
    assert_float_equal(entry(m, 0, "a:ann_lee"), a / nrm, 1e-6);
    /* book 3: only a:bob_roe left, so 1 */
    assert_float_equal(entry(m, 3, "a:bob_roe"), 1.0, 1e-6);
    assert_int_equal(m->x.indptr[4] - m->x.indptr[3], 1);
    /* the transpose holds the same entries */
    assert_int_equal(m->xt.nnz, m->x.nnz);
    br__lex_free(m);

    /* a second author weighs other_authors times the first */
    br_catalog *c2 = catalog("book_id,title,authors\n"
                             "1,X,\"Ann Lee, Cy Poe\"\n"
                             "2,Y,\"Ann Lee, Cy Poe\"\n");
    br__lex_options_default(&o);
    o.min_df = 1;
    o.max_df = 0;
    assert_int_equal(br__lex_build(c2, &o, &m), BR_OK);
    float first = entry(m, 0, "a:ann_lee"), second = entry(m, 0, "a:cy_poe");
    assert_true(first > 0);
    assert_float_equal(second / first, o.other_authors, 1e-6);
    br__lex_free(m);
    br_catalog_free(c2);
    br_catalog_free(cat);
}

static void test_profile_scores(void **state)
{
    (void)state;
    /* a random catalogue of words: the fast scores equal the plain twin */
    char *text = malloc(1 << 20);
    size_t n = (size_t)sprintf(text, "book_id,title,authors,tags,description\n");
    br_rng rng;
    br_rng_seed(&rng, 5);
    const uint32_t nb = 300;
    for (uint32_t b = 0; b < nb; b++) {
        n += (size_t)sprintf(text + n, "%u,\"t%u w%u (S%u, #%u)\",Au%u,tag%u|tag%u,", b + 1, b,
                             (unsigned)br_rng_below(&rng, 50), (unsigned)br_rng_below(&rng, 30),
                             (unsigned)br_rng_below(&rng, 5), (unsigned)br_rng_below(&rng, 40),
                             (unsigned)br_rng_below(&rng, 20), (unsigned)br_rng_below(&rng, 20));
        for (int w = 0; w < 12; w++)
            n +=
                (size_t)sprintf(text + n, "%sw%u", w ? " " : "", (unsigned)br_rng_below(&rng, 200));
        text[n++] = '\n';
    }
    text[n] = 0;
    br_catalog *cat = catalog(text);
    free(text);
    br__lex_options o;
    br__lex_options_default(&o);
    br__lex *m = NULL;
    assert_int_equal(br__lex_build(cat, &o, &m), BR_OK);
    uint32_t nt = m->x.cols;
    float *acc = calloc(nt + 1, sizeof *acc);
    uint32_t *terms = malloc(m->x.nnz * sizeof *terms);
    float *vals = malloc(m->x.nnz * sizeof *vals);
    float *s1 = malloc(nb * sizeof *s1), *s2 = malloc(nb * sizeof *s2);
    for (int trial = 0; trial < 20; trial++) {
        uint32_t books[30];
        float w[30];
        size_t k = 1 + br_rng_below(&rng, 30);
        for (size_t q = 0; q < k; q++)
            books[q] = (uint32_t)br_rng_below(&rng, nb), w[q] = 1.0f + (float)(q % 5);
        uint32_t cap = trial % 2 ? 16 : 0;
        uint32_t p = br__lex_profile(m, books, w, k, cap, acc, terms, vals);
        if (cap) assert_true(p <= cap);
        double s2n = 0;
        for (uint32_t q = 0; q < p; q++) {
            s2n += (double)vals[q] * vals[q];
            if (q) assert_true(terms[q] > terms[q - 1]);
        }
        assert_float_equal(s2n, 1.0, 1e-5);
        for (uint32_t t = 0; t < nt; t++) assert_true(acc[t] == 0.0f); /* left zeroed */
        for (uint32_t b = 0; b < nb; b++) s1[b] = s2[b] = 0.5f;
        br__lex_scores(m, terms, vals, p, 0.7f, s1);
        br__lex_scores_ref(m, terms, vals, p, 0.7f, s2);
        for (uint32_t b = 0; b < nb; b++) assert_float_equal(s1[b], s2[b], 1e-5);
    }
    free(acc);
    free(terms);
    free(vals);
    free(s1);
    free(s2);
    br__lex_free(m);
    br_catalog_free(cat);
}

/* Reader 0 loved Inferno; the embeddings make an unrelated thriller the
 * nearest book to it. The content engine still ranks the same author's
 * other Robert Langdon book first. */
static void test_content_engine_series(void **state)
{
    (void)state;
    br_catalog *cat =
        catalog("book_id,title,authors,tags,description\n"
                "1,Inferno (Robert Langdon #4),Dan Brown,thriller|mystery,"
                "Harvard symbologist in Florence\n"
                "2,\"The Da Vinci Code (Robert Langdon, #2)\",Dan Brown,thriller|mystery,"
                "A murder in the Louvre\n"
                "3,Gone Girl,Gillian Flynn,thriller|mystery,A marriage gone wrong\n"
                "4,The Hobbit,J.R.R. Tolkien,fantasy,A hobbit goes on a journey\n"
                "5,Emma,Jane Austen,classics,A matchmaker in a village\n"
                "6,Dark Places,Gillian Flynn,thriller,A family murdered\n");
    const size_t dim = 4;
    /* Gone Girl is Inferno's nearest by embedding (cosine 0.6), the Da
     * Vinci Code far (0.3) */
    float emb[6 * 4] = {1, 0, 0, 0, 0.3f, 0, 0.9539392f, 0, 0.6f, 0.8f, 0, 0,
                        0, 0, 0, 1, 0,    0, -1,         0, 0,    -1,   0, 0};
    uint32_t user[] = {0, 1, 1, 2, 2};
    uint32_t book[] = {0, 3, 4, 2, 5};
    float value[] = {5, 4, 5, 5, 4};
    br_train_data td = {3, 6, 5, user, book, value};
    br_hybrid_options o;
    br_hybrid_options_default(&o);
    br_engine e = BR_ENGINE_CONTENT;
    br_hybrid *h = NULL;
    assert_int_equal(br_hybrid_fit(&td, cat, emb, dim, &o, &e, 1, &h), BR_OK);
    uint32_t items[3];
    float sc[3];
    uint32_t u = 0;
    assert_int_equal(br_hybrid_rank(h, e, &u, 1, 3, items, sc), BR_OK);
    assert_int_equal(items[0], 1); /* the Da Vinci Code */
    br_hybrid_free(h);
    /* without the catalogue: the embeddings alone, Gone Girl first */
    assert_int_equal(br_hybrid_fit(&td, NULL, emb, dim, &o, &e, 1, &h), BR_OK);
    assert_int_equal(br_hybrid_rank(h, e, &u, 1, 3, items, sc), BR_OK);
    assert_int_equal(items[0], 2);
    br_hybrid_free(h);
    br_catalog_free(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_series),
        cmocka_unit_test(test_tfidf),
        cmocka_unit_test(test_profile_scores),
        cmocka_unit_test(test_content_engine_series),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
