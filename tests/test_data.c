/*
 * test_data.c: the data layer: id maps, the CSV reader's edge cases, the
 * catalogue and ratings loaders (every error path, lenient mode, duplicates),
 * the summary statistics, and the real data in ../shared when present.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static char *tmp;

static int setup(void **state)
{
    (void)state;
    tmp = tu_tmpdir("test_data");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    br_free(tmp);
    return 0;
}

/* Loads books from text; returns the status (catalog freed unless *out wanted). */
static br_status load_books_text(const char *text, const br_load_options *opt, br_catalog **out,
                                 br_load_report *rep)
{
    char *p = tu_write_file(tmp, "books.csv", text);
    br_catalog *cat = NULL;
    br_status st = br_catalog_load(p, opt, &cat, rep);
    br_free(p);
    if (out)
        *out = cat;
    else
        br_catalog_free(cat);
    return st;
}

static const char *BOOKS = "book_id,title\nb1,One\nb2,Two\nb3,Three\n";

static br_status load_ratings_text(const char *text, const br_load_options *opt, br_ratings **out,
                                   br_load_report *rep)
{
    br_catalog *cat;
    assert_int_equal(load_books_text(BOOKS, NULL, &cat, NULL), BR_OK);
    char *p = tu_write_file(tmp, "ratings.csv", text);
    br_ratings *r = NULL;
    br_status st = br_ratings_load(p, cat, opt, &r, rep);
    br_free(p);
    if (out && st == BR_OK) {
        *out = r;
        /* keep the catalogue alive with the ratings: leak-free via a static */
        static br_catalog *keep;
        br_catalog_free(keep);
        keep = cat;
        return st;
    }
    br_ratings_free(r);
    br_catalog_free(cat);
    return st;
}

/* ------------------------------------------------------------------ idmap -- */

/* Decimal ids take the direct table: every lookup agrees with the order
 * they were interned in, whether the number is dense (in the table), sparse
 * (hash only) or non-canonical ("07", "+7": other ids than "7"), through
 * the table's growth and refills. */
static void test_idmap_numeric(void **state)
{
    (void)state;
    br_idmap *m;
    assert_int_equal(br_idmap_create(&m), BR_OK);
    br_rng rng;
    br_rng_seed(&rng, 5);
    enum { N = 6000 };
    static char ids[N + 8][16];
    size_t n = 0;
    /* 0..N-1 shuffled, with a few strays among them */
    static uint32_t perm[N];
    for (uint32_t i = 0; i < N; i++) perm[i] = i;
    for (uint32_t i = N - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(br_rng_next(&rng) % (i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    const char *strays[] = {"07", "+7", "123456789", "4000000000", "7a", "-1", "x", "00"};
    for (uint32_t i = 0; i < N; i++) {
        if (i % 1000 == 500) snprintf(ids[n++], sizeof ids[0], "%s", strays[i / 1000]);
        snprintf(ids[n++], sizeof ids[0], "%u", perm[i]);
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t idx;
        int added;
        assert_int_equal(br_idmap_intern(m, ids[i], strlen(ids[i]), &idx, &added), BR_OK);
        assert_int_equal(idx, i);
        assert_int_equal(added, 1);
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(br_idmap_find(m, ids[i], strlen(ids[i])), (int64_t)i);
        uint32_t idx;
        int added;
        assert_int_equal(br_idmap_intern(m, ids[i], strlen(ids[i]), &idx, &added), BR_OK);
        assert_int_equal(idx, i);
        assert_int_equal(added, 0);
    }
    assert_int_equal(br_idmap_count(m), n);
    /* absent: inside the table's range, beyond it, non-canonical forms */
    assert_int_equal(br_idmap_find(m, "6000", 4), -1);
    assert_int_equal(br_idmap_find(m, "9999", 4), -1);
    assert_int_equal(br_idmap_find(m, "123456788", 9), -1);
    assert_int_equal(br_idmap_find(m, "0007", 4), -1);
    assert_int_equal(br_idmap_find(m, "5999x", 4), br_idmap_find(m, "5999", 4));
    assert_true(br_idmap_find(m, "07", 2) != br_idmap_find(m, "7", 1));
    assert_string_equal(br_idmap_name(m, (uint32_t)br_idmap_find(m, "07", 2)), "07");
    br_idmap_free(m);
}

static void test_idmap_roundtrip_and_growth(void **state)
{
    (void)state;
    br_idmap *m;
    assert_int_equal(br_idmap_create(&m), BR_OK);
    char buf[32];
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(buf, sizeof buf, "id-%d", i * 7);
        uint32_t idx;
        int added;
        assert_int_equal(br_idmap_intern(m, buf, (size_t)n, &idx, &added), BR_OK);
        assert_int_equal(idx, i);
        assert_int_equal(added, 1);
    }
    assert_int_equal(br_idmap_count(m), 100000);
    for (int i = 0; i < 100000; i += 997) {
        int n = snprintf(buf, sizeof buf, "id-%d", i * 7);
        assert_int_equal(br_idmap_find(m, buf, (size_t)n), i);
        assert_string_equal(br_idmap_name(m, (uint32_t)i), buf);
        uint32_t idx;
        int added;
        assert_int_equal(br_idmap_intern(m, buf, (size_t)n, &idx, &added), BR_OK);
        assert_int_equal(idx, i);
        assert_int_equal(added, 0);
    }
    assert_int_equal(br_idmap_find(m, "id-1", 4), -1);
    assert_int_equal(br_idmap_find(m, "", 0), -1);
    /* Length-delimited: only `len` bytes count, and a prefix is another id. */
    assert_int_equal(br_idmap_find(m, "id-70", 4), 1);
    assert_int_equal(br_idmap_find(m, "id-14", 4), -1);
    assert_null(br_idmap_name(m, 100000));
    assert_true(br_idmap_memory(m) > 100000 * 8);
    br_idmap_free(m);
}

/* ------------------------------------------------------- CSV edge cases -- */

static void test_books_edge_file(void **state)
{
    (void)state;
    char *p = tu_data_path("books_edge.csv");
    br_catalog *cat;
    br_load_report rep;
    assert_int_equal(br_catalog_load(p, NULL, &cat, &rep), BR_OK);
    br_free(p);
    assert_int_equal(br_catalog_count(cat), 3);
    assert_int_equal(rep.rows, 3);
    unsigned cols = br_catalog_columns(cat);
    assert_true(cols & BR_COL_AUTHORS && cols & BR_COL_TAGS && cols & BR_COL_YEAR &&
                cols & BR_COL_DESCRIPTION);
    assert_false(cols & BR_COL_GENRE);
    const br_book *b = br_catalog_book(cat, 0);
    assert_string_equal(b->id, "b1"); /* the BOM is not part of the header */
    assert_string_equal(b->title, "The \"Quoted\" Book");
    assert_string_equal(b->authors, "Ann Author");
    assert_string_equal(b->tags, "fantasy|magic");
    assert_int_equal(b->year, 2001);
    /* Embedded CRLFs inside quotes are kept as they are in the file. */
    assert_string_equal(b->description,
                        "A line,\r\nthen a second line with \"quotes\".\r\n\r\nAnd a blank line.");
    b = br_catalog_book(cat, 1);
    assert_string_equal(b->title, "Plain");
    assert_string_equal(b->authors, "");
    assert_string_equal(b->description, "");
    assert_string_equal(b->genre, "");
    b = br_catalog_book(cat, 2);
    assert_string_equal(b->title, "N\xc3\xa9gritude d\xc3\xa9j\xc3\xa0 vu");
    assert_string_equal(b->authors, "Ba, Ca");
    assert_int_equal(b->year, -750);
    assert_int_equal(br_catalog_find(cat, "b3"), 2);
    assert_int_equal(br_catalog_find(cat, "b4"), -1);
    assert_null(br_catalog_book(cat, 3));
    br_catalog_free(cat);
}

static void test_ratings_edge_file_duplicates_last_wins(void **state)
{
    (void)state;
    char *bp = tu_data_path("books_edge.csv"), *rp = tu_data_path("ratings_edge.csv");
    br_catalog *cat;
    br_ratings *r;
    br_load_report rep;
    assert_int_equal(br_catalog_load(bp, NULL, &cat, NULL), BR_OK);
    assert_int_equal(br_ratings_load(rp, cat, NULL, &r, &rep), BR_OK);
    /* (u1, b1) appears twice: the later row (rating 2, t=103) wins and keeps
     * its later position. */
    assert_int_equal(rep.rows, 4);
    assert_int_equal(rep.duplicates, 1);
    assert_int_equal(br_ratings_count(r), 3);
    assert_int_equal(br_ratings_num_users(r), 2);
    assert_int_equal(br_ratings_num_books(r), 3);
    const uint32_t *u = br_ratings_users(r), *b = br_ratings_books(r);
    const float *v = br_ratings_values(r);
    const int64_t *t = br_ratings_timestamps(r);
    assert_non_null(t);
    assert_int_equal(u[0], 0);
    assert_int_equal(b[0], 1);
    assert_true(v[0] == 3.0f);
    assert_int_equal(u[1], 1);
    assert_true(v[1] == 4.5f);
    assert_int_equal(b[2], 0);
    assert_true(v[2] == 2.0f);
    assert_int_equal(t[2], 103);
    assert_int_equal(br_ratings_find_user(r, "u2"), 1);
    assert_int_equal(br_ratings_find_user(r, "u9"), -1);
    assert_string_equal(br_idmap_name(br_ratings_user_ids(r), 0), "u1");
    br_ratings_free(r);
    br_catalog_free(cat);
    br_free(bp);
    br_free(rp);
}

static void test_lf_and_crlf_and_no_final_newline(void **state)
{
    (void)state;
    br_catalog *cat;
    assert_int_equal(load_books_text("book_id,title\r\n1,A\r\n2,B", NULL, &cat, NULL), BR_OK);
    assert_int_equal(br_catalog_count(cat), 2);
    assert_string_equal(br_catalog_book(cat, 1)->title, "B");
    br_catalog_free(cat);
    /* Blank lines between records are not records. */
    assert_int_equal(load_books_text("book_id,title\n\n1,A\n\n2,B\n\n", NULL, &cat, NULL), BR_OK);
    assert_int_equal(br_catalog_count(cat), 2);
    br_catalog_free(cat);
    /* Spaces are data (RFC 4180), columns may come in any order. */
    assert_int_equal(load_books_text("title,book_id\n  Spaced  ,7\n", NULL, &cat, NULL), BR_OK);
    assert_string_equal(br_catalog_book(cat, 0)->title, "  Spaced  ");
    assert_string_equal(br_catalog_book(cat, 0)->id, "7");
    br_catalog_free(cat);
}

static void test_duplicate_book_later_row_wins(void **state)
{
    (void)state;
    br_catalog *cat;
    br_load_report rep;
    assert_int_equal(load_books_text("book_id,title\n1,Old\n2,B\n1,New\n", NULL, &cat, &rep),
                     BR_OK);
    assert_int_equal(br_catalog_count(cat), 2);
    assert_int_equal(rep.duplicates, 1);
    assert_string_equal(br_catalog_book(cat, 0)->title, "New");
    br_catalog_free(cat);
}

/* ------------------------------------------------------------ error paths -- */

typedef struct err_case {
    const char *text;
    br_status status;
    const char *detail; /* must appear in the error detail */
} err_case;

/* image_url is optional: kept when the header names it, "" otherwise. */
static void test_books_image_url_column(void **state)
{
    (void)state;
    br_catalog *cat;
    assert_int_equal(load_books_text("book_id,title,image_url\n"
                                     "b1,One,https://example.org/1.jpg\nb2,Two,\n",
                                     NULL, &cat, NULL),
                     BR_OK);
    assert_true(br_catalog_columns(cat) & BR_COL_IMAGE);
    assert_string_equal(br_catalog_book(cat, 0)->image_url, "https://example.org/1.jpg");
    assert_string_equal(br_catalog_book(cat, 1)->image_url, "");
    br_catalog_free(cat);
    assert_int_equal(load_books_text(BOOKS, NULL, &cat, NULL), BR_OK);
    assert_false(br_catalog_columns(cat) & BR_COL_IMAGE);
    assert_string_equal(br_catalog_book(cat, 2)->image_url, "");
    br_catalog_free(cat);
}

static void test_book_errors_name_file_line_and_problem(void **state)
{
    (void)state;
    const err_case cases[] = {
        {"", BR_EPARSE, "books.csv: file is empty"},
        {"\xef\xbb\xbf", BR_EPARSE, "books.csv: file is empty"},
        {"\n\n", BR_EPARSE, "books.csv: file is empty"},
        {"title,author\nA,B\n", BR_EPARSE, "books.csv:1: missing required column 'book_id'"},
        {"book_id,name\n1,B\n", BR_EPARSE, "books.csv:1: missing required column 'title'"},
        {"book_id,title\n", BR_EPARSE, "books.csv: no books"},
        {"book_id,title\n1,A\n2\n", BR_EPARSE,
         "books.csv:3: expected 2 fields like the header, "
         "found 1"},
        {"book_id,title\n1,A,extra\n", BR_EPARSE, "books.csv:2: expected 2 fields"},
        {"book_id,title\n,A\n", BR_EPARSE, "books.csv:2: empty book_id"},
        {"book_id,title\n1,\n", BR_EPARSE, "books.csv:2: empty title for book '1'"},
        {"book_id,title,year\n1,A,soon\n", BR_EPARSE, "books.csv:2: year 'soon' is not a whole"},
        {"book_id,title\n1,A\n2,\"B\"x\n", BR_EPARSE, "books.csv:3: malformed quoting"},
        {"book_id,title\n1,A\n2,B\"x\"\n", BR_EPARSE, "books.csv:3: malformed quoting"},
        {"book_id,title\n1,A\n2,\"never\nclosed\n", BR_EPARSE,
         "books.csv:3: quoted field not closed before end of file"},
        {"book_id,title\n1,\"two\nlines\"\n2,bad\xff\n", BR_EPARSE,
         "books.csv:4: field 2 is not valid UTF-8 (byte 0xff)"},
        {"book_id,title\n1,\xc3(\n", BR_EPARSE, "books.csv:2: field 2 is not valid UTF-8"},
        /* ids are one line of printable text (keys, logs, id files) */
        {"book_id,title\n\"a\nb\",A\n", BR_EPARSE,
         "books.csv:2: book_id holds a control character (0x0a)"},
        {"book_id,title\n1,A\nx\ty,B\n", BR_EPARSE,
         "books.csv:3: book_id holds a control character (0x09)"},
        {"book_id,title\n\x7f,A\n", BR_EPARSE, "books.csv:2: book_id holds a control character"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        br_status st = load_books_text(cases[i].text, NULL, NULL, NULL);
        if (st != cases[i].status || !strstr(br_error_detail(), cases[i].detail))
            fail_msg("case %zu: got %d '%s', want %d '%s'", i, st, br_error_detail(),
                     cases[i].status, cases[i].detail);
    }
}

/* A NUL byte anywhere in a field is refused with file:line (every later
 * use is a C string: train's copy of books.csv was once cut there). */
static void test_nul_byte_refused(void **state)
{
    (void)state;
    static const char books[] = "book_id,title\n1,A\n2,B\0C\n";
    char path[4096];
    snprintf(path, sizeof path, "%s/nul.csv", tmp);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(books, 1, sizeof books - 1, f), sizeof books - 1);
    fclose(f);
    br_catalog *cat = NULL;
    assert_status_detail(br_catalog_load(path, NULL, &cat, NULL), BR_EPARSE,
                         "nul.csv:3: field 2 holds a NUL byte");
    assert_null(cat);
}

static void test_missing_file_is_io_error(void **state)
{
    (void)state;
    br_catalog *cat;
    assert_status_detail(br_catalog_load("/nonexistent/books.csv", NULL, &cat, NULL), BR_EIO,
                         "/nonexistent/books.csv: cannot open");
    assert_null(cat);
    assert_status_detail(br_catalog_load(tmp, NULL, &cat, NULL), BR_EIO, "not a regular file");
}

static void test_rating_errors_name_file_line_and_problem(void **state)
{
    (void)state;
    const err_case cases[] = {
        {"", BR_EPARSE, "ratings.csv: file is empty"},
        {"user_id,book_id\nu,b1\n", BR_EPARSE, "ratings.csv:1: missing required column 'rating'"},
        {"user,book_id,rating\nu,b1,4\n", BR_EPARSE, "missing required column 'user_id'"},
        {"user_id,book_id,rating\nu,b1,five\n", BR_EPARSE,
         "ratings.csv:2: rating 'five' is not a number"},
        {"user_id,book_id,rating\nu,b1,\n", BR_EPARSE, "ratings.csv:2: rating '' is not a number"},
        {"user_id,book_id,rating\nu,b1,nan\n", BR_EPARSE, "rating 'nan' is not a number"},
        {"user_id,book_id,rating\nu,b1,4\nu,b2,6\n", BR_ERANGE,
         "ratings.csv:3: rating 6 is outside the scale 1..5"},
        {"user_id,book_id,rating\nu,b1,0\n", BR_ERANGE, "rating 0 is outside the scale 1..5"},
        {"user_id,book_id,rating\nu,b9,4\n", BR_ENOTFOUND,
         "ratings.csv:2: book_id 'b9' is not in the books file"},
        {"user_id,book_id,rating\n,b1,4\n", BR_EPARSE, "ratings.csv:2: empty user_id"},
        {"user_id,book_id,rating,timestamp\nu,b1,4,yesterday\n", BR_EPARSE,
         "ratings.csv:2: timestamp 'yesterday' is not a whole number"},
        {"user_id,book_id,rating\nu\xfe,b1,4\n", BR_EPARSE, "ratings.csv:2: field 1 is not valid"},
        {"user_id,book_id,rating\n\"u\x01\",b1,4\n", BR_EPARSE,
         "ratings.csv:2: user_id holds a control character (0x01)"},
        {"user_id,book_id,rating\nu,\"b1\r\",4\n", BR_EPARSE,
         "ratings.csv:2: book_id holds a control character (0x0d)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        br_status st = load_ratings_text(cases[i].text, NULL, NULL, NULL);
        if (st != cases[i].status || !strstr(br_error_detail(), cases[i].detail))
            fail_msg("case %zu: got %d '%s', want %d '%s'", i, st, br_error_detail(),
                     cases[i].status, cases[i].detail);
    }
}

static void test_numeric_and_textual_book_ids(void **state)
{
    (void)state;
    /* Canonical numbers take the direct table, anything else the id map:
     * "17" and "017" are different books, "9" is no book. */
    br_catalog *cat;
    assert_int_equal(load_books_text("book_id,title\n17,A\n017,B\n0,C\nx9,D\n", NULL, &cat, NULL),
                     BR_OK);
    char *p =
        tu_write_file(tmp, "r.csv", "user_id,book_id,rating\nu,17,1\nu,017,2\nu,0,3\nu,x9,4\n");
    br_ratings *r;
    assert_int_equal(br_ratings_load(p, cat, NULL, &r, NULL), BR_OK);
    const uint32_t *b = br_ratings_books(r);
    assert_int_equal(b[0], 0);
    assert_int_equal(b[1], 1);
    assert_int_equal(b[2], 2);
    assert_int_equal(b[3], 3);
    br_ratings_free(r);
    const char *missing[] = {
        "user_id,book_id,rating\nu,9,1\n", "user_id,book_id,rating\nu,1700,1\n",
        "user_id,book_id,rating\nu,0017,1\n", "user_id,book_id,rating\nu,+17,1\n"};
    for (int i = 0; i < 4; i++) {
        br_free(p);
        p = tu_write_file(tmp, "r.csv", missing[i]);
        assert_status_detail(br_ratings_load(p, cat, NULL, &r, NULL), BR_ENOTFOUND,
                             "is not in the books file");
    }
    br_free(p);
    br_catalog_free(cat);
    /* Sparse numbers (no table): the id map answers alone. */
    assert_int_equal(load_books_text("book_id,title\n5,A\n900000000,B\n", NULL, &cat, NULL), BR_OK);
    p = tu_write_file(tmp, "r.csv", "user_id,book_id,rating\nu,900000000,5\nu,5,1\n");
    assert_int_equal(br_ratings_load(p, cat, NULL, &r, NULL), BR_OK);
    assert_int_equal(br_ratings_books(r)[0], 1);
    assert_int_equal(br_ratings_books(r)[1], 0);
    br_ratings_free(r);
    br_free(p);
    br_catalog_free(cat);
}

static void test_rating_scale_is_configurable(void **state)
{
    (void)state;
    br_load_options opt = {0, 0.0f, 10.0f};
    br_ratings *r;
    assert_int_equal(
        load_ratings_text("user_id,book_id,rating\nu,b1,0\nu,b2,9.5\n", &opt, &r, NULL), BR_OK);
    assert_int_equal(br_ratings_count(r), 2);
    br_ratings_free(r);
    br_load_options bad = {0, 5.0f, 1.0f};
    assert_status_detail(load_ratings_text("user_id,book_id,rating\nu,b1,3\n", &bad, NULL, NULL),
                         BR_EINVAL, "rating scale 5..1 is empty");
}

static void test_lenient_skips_and_counts(void **state)
{
    (void)state;
    br_load_options opt = BR_LOAD_OPTIONS_DEFAULT;
    opt.lenient = 1;
    br_ratings *r;
    br_load_report rep;
    const char *text = "user_id,book_id,rating\n"
                       "u1,b1,5\n"
                       "u1,b9,5\n"   /* unknown book */
                       "u2,b2,abc\n" /* not a number */
                       "u2,b3,7\n"   /* off scale */
                       "u3,b3\n"     /* short row */
                       "u2,b2,1\n";
    assert_int_equal(load_ratings_text(text, &opt, &r, &rep), BR_OK);
    assert_int_equal(rep.rows, 6);
    assert_int_equal(rep.skipped, 4);
    assert_int_equal(rep.loaded, 2);
    assert_int_equal(br_ratings_count(r), 2);
    assert_int_equal(br_ratings_num_users(r), 2); /* u3 only had a bad row */
    assert_non_null(strstr(rep.first_skip, "ratings.csv:3: book_id 'b9'"));
    br_ratings_free(r);

    /* Lenient books: bad rows skipped; a file whose every row is bad fails. */
    br_catalog *cat;
    assert_int_equal(load_books_text("book_id,title\n1,A\n,B\n3,C\n", &opt, &cat, &rep), BR_OK);
    assert_int_equal(br_catalog_count(cat), 2);
    assert_int_equal(rep.skipped, 1);
    br_catalog_free(cat);
    assert_status_detail(load_books_text("book_id,title\n,B\n", &opt, NULL, &rep), BR_EPARSE,
                         "no books (only a header and skipped rows)");
    /* A broken file structure is not a row problem: still an error. */
    assert_status_detail(load_books_text("book_id,title\n1,\"A\n", &opt, NULL, &rep), BR_EPARSE,
                         "not closed");
}

static void test_header_only_ratings_are_empty_not_an_error(void **state)
{
    (void)state;
    br_ratings *r;
    assert_int_equal(load_ratings_text("user_id,book_id,rating\n", NULL, &r, NULL), BR_OK);
    assert_int_equal(br_ratings_count(r), 0);
    assert_int_equal(br_ratings_num_users(r), 0);
    br_stats s;
    br_catalog *cat;
    assert_int_equal(load_books_text(BOOKS, NULL, &cat, NULL), BR_OK);
    assert_int_equal(br_stats_compute(cat, r, &s), BR_OK);
    assert_int_equal(s.n_ratings, 0);
    assert_int_equal(s.n_bins, 0);
    br_catalog_free(cat);
    br_ratings_free(r);
}

/* ------------------------------------------------------------------ stats -- */

static void test_stats_summary(void **state)
{
    (void)state;
    br_catalog *cat;
    assert_int_equal(load_books_text("book_id,title,genre\n1,A,Fantasy\n2,B,Mystery\n3,C,"
                                     "Fantasy\n4,D,\n",
                                     NULL, &cat, NULL),
                     BR_OK);
    char *p = tu_write_file(tmp, "r.csv",
                            "user_id,book_id,rating\nx,1,5\nx,2,4\ny,1,5\ny,3,1\nz,1,4.5\n");
    br_ratings *r;
    assert_int_equal(br_ratings_load(p, cat, NULL, &r, NULL), BR_OK);
    br_free(p);
    br_stats s;
    assert_int_equal(br_stats_compute(cat, r, &s), BR_OK);
    assert_int_equal(s.n_books, 4);
    assert_int_equal(s.n_users, 3);
    assert_int_equal(s.n_ratings, 5);
    assert_true(fabs(s.density - 5.0 / 12.0) < 1e-12);
    assert_true(fabs(s.sparsity - 7.0 / 12.0) < 1e-12);
    assert_true(fabs(s.mean_rating - 19.5 / 5) < 1e-9);
    assert_int_equal(s.n_bins, 4); /* 1, 4, 4.5, 5 */
    assert_true(s.bin_value[0] == 1.0f && s.bin_value[3] == 5.0f);
    assert_int_equal(s.bin_count[0], 1);
    assert_int_equal(s.bin_count[3], 2);
    assert_int_equal(s.user_min, 1);
    assert_int_equal(s.user_max, 2);
    assert_true(s.user_median == 2.0);
    assert_int_equal(s.book_max, 3);
    assert_int_equal(s.books_unrated, 1);
    assert_true(s.book_median == 1.0); /* 0 1 1 3 */
    assert_int_equal(s.genre_from_tags, 0);
    assert_int_equal(s.n_genres_total, 2);
    assert_string_equal(s.genre[0], "Fantasy");
    assert_int_equal(s.genre_count[0], 2);
    br_ratings_free(r);
    br_catalog_free(cat);
}

static void test_stats_genres_from_first_tag(void **state)
{
    (void)state;
    char *p = tu_data_path("goodbooks-sample/books.csv");
    br_catalog *cat;
    assert_int_equal(br_catalog_load(p, NULL, &cat, NULL), BR_OK);
    br_free(p);
    br_stats s;
    assert_int_equal(br_stats_compute(cat, NULL, &s), BR_OK);
    assert_int_equal(s.n_books, 300);
    assert_int_equal(s.genre_from_tags, 1);
    assert_true(s.n_genres > 3);
    for (int k = 1; k < s.n_genres; k++) assert_true(s.genre_count[k - 1] >= s.genre_count[k]);
    br_catalog_free(cat);
}

/* ------------------------------------------------------- real data (shared) -- */

static void test_goodbooks_loads(void **state)
{
    (void)state;
    char *bp = tu_shared_path("data/goodbooks/books.csv");
    char *rp = tu_shared_path("data/goodbooks/ratings.csv");
    if (!bp || !rp) {
        br_free(bp);
        br_free(rp);
        skip();
    }
    br_catalog *cat;
    br_ratings *r;
    br_load_report brep, rrep;
    assert_int_equal(br_catalog_load(bp, NULL, &cat, &brep), BR_OK);
    assert_int_equal(br_ratings_load(rp, cat, NULL, &r, &rrep), BR_OK);
    assert_int_equal(br_catalog_count(cat), 10000);
    assert_int_equal(brep.skipped + brep.duplicates, 0);
    int with_desc = 0, multiline = 0;
    for (uint32_t i = 0; i < br_catalog_count(cat); i++) {
        const br_book *b = br_catalog_book(cat, i);
        with_desc += b->description[0] != '\0';
        multiline += strchr(b->description, '\n') != NULL;
    }
    assert_int_equal(with_desc, 3713);
    assert_true(multiline > 0);
    assert_int_equal(br_ratings_count(r), 298176);
    assert_int_equal(br_ratings_num_users(r), 2672);
    assert_int_equal(rrep.duplicates, 0);
    const br_book *b = br_catalog_book(cat, (uint32_t)br_catalog_find(cat, "1"));
    assert_non_null(strstr(b->title, "The Hunger Games"));
    assert_int_equal(b->year, 2008);
    br_ratings_free(r);
    br_catalog_free(cat);
    br_free(bp);
    br_free(rp);
}

static void test_seed_universe_loads_unchanged(void **state)
{
    (void)state;
    char *bp = tu_shared_path("data/seed-universe/books.csv");
    char *rp = tu_shared_path("data/seed-universe/ratings.csv");
    if (!bp || !rp) {
        br_free(bp);
        br_free(rp);
        skip();
    }
    br_catalog *cat;
    br_ratings *r;
    assert_int_equal(br_catalog_load(bp, NULL, &cat, NULL), BR_OK);
    assert_int_equal(br_ratings_load(rp, cat, NULL, &r, NULL), BR_OK);
    assert_int_equal(br_catalog_count(cat), 1000);
    assert_int_equal(br_ratings_count(r), 3579);
    assert_int_equal(br_ratings_num_users(r), 100);
    assert_string_equal(br_catalog_book(cat, 1)->genre, "Historical Fiction");
    assert_non_null(strstr(br_catalog_book(cat, 1)->description, "Roman kingdom, this novel"));
    br_ratings_free(r);
    br_catalog_free(cat);
    br_free(bp);
    br_free(rp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap_roundtrip_and_growth),
        cmocka_unit_test(test_idmap_numeric),
        cmocka_unit_test(test_books_edge_file),
        cmocka_unit_test(test_ratings_edge_file_duplicates_last_wins),
        cmocka_unit_test(test_lf_and_crlf_and_no_final_newline),
        cmocka_unit_test(test_books_image_url_column),
        cmocka_unit_test(test_duplicate_book_later_row_wins),
        cmocka_unit_test(test_book_errors_name_file_line_and_problem),
        cmocka_unit_test(test_missing_file_is_io_error),
        cmocka_unit_test(test_nul_byte_refused),
        cmocka_unit_test(test_rating_errors_name_file_line_and_problem),
        cmocka_unit_test(test_numeric_and_textual_book_ids),
        cmocka_unit_test(test_rating_scale_is_configurable),
        cmocka_unit_test(test_lenient_skips_and_counts),
        cmocka_unit_test(test_header_only_ratings_are_empty_not_an_error),
        cmocka_unit_test(test_stats_summary),
        cmocka_unit_test(test_stats_genres_from_first_tag),
        cmocka_unit_test(test_goodbooks_loads),
        cmocka_unit_test(test_seed_universe_loads_unchanged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
