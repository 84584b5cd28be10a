/*
 * fuzz_csv.c: libFuzzer target for the CSV loaders, books.csv
 * (br_catalog_load) and ratings.csv (br_ratings_load against a fixed
 * catalogue of books "1".."20"). The first byte chooses: bit 0 ratings
 * instead of books, bit 1 lenient mode; the rest is the file. What a load
 * accepts must hold together: every id found again under its own index, a
 * book's year known or BR_YEAR_UNKNOWN, ratings within the scale and their
 * indices in range.
 */
#include "fuzz_util.h"

static br_catalog *books20;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char p[PATH_MAX];
    static const char csv[] = "book_id,title\n1,a\n2,b\n3,c\n4,d\n5,e\n6,f\n7,g\n8,h\n9,i\n10,j\n"
                              "11,k\n12,l\n13,m\n14,n\n15,o\n16,p\n17,q\n18,r\n19,s\n20,t\n";
    fz_write(fz_path(p, sizeof p, "books20.csv"), (const uint8_t *)csv, sizeof csv - 1);
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    if (br_catalog_load(p, &lo, &books20, NULL) != BR_OK) abort();
    return 0;
}

static void check_ids(const br_idmap *ids)
{
    for (uint32_t i = 0; i < br_idmap_count(ids); i++) {
        const char *id = br_idmap_name(ids, i);
        if (!id || br_idmap_find(ids, id, strlen(id)) != (int64_t)i) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char p[PATH_MAX];
    fz_write(fz_path(p, sizeof p, "in.csv"), data + 1, size - 1);
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    lo.lenient = (data[0] & 2) != 0;
    br_load_report rep;
    if (data[0] & 1) {
        br_ratings *r;
        if (br_ratings_load(p, books20, &lo, &r, &rep) != BR_OK) return 0;
        size_t n = br_ratings_count(r);
        const uint32_t *u = br_ratings_users(r), *b = br_ratings_books(r);
        const float *v = br_ratings_values(r);
        for (size_t i = 0; i < n; i++)
            if (u[i] >= br_ratings_num_users(r) || b[i] >= br_ratings_num_books(r) ||
                !(v[i] >= lo.rating_min && v[i] <= lo.rating_max))
                abort();
        check_ids(br_ratings_user_ids(r));
        if (rep.loaded != n) abort();
        br_ratings_free(r);
    } else {
        br_catalog *cat;
        if (br_catalog_load(p, &lo, &cat, &rep) != BR_OK) return 0;
        for (uint32_t i = 0; i < br_catalog_count(cat); i++) {
            const br_book *bk = br_catalog_book(cat, i);
            if (!bk->id || !bk->title || !bk->authors || !bk->genre || !bk->tags ||
                !bk->description || !bk->image_url)
                abort();
            if (br_catalog_find(cat, bk->id) != (int64_t)i) abort();
        }
        check_ids(br_catalog_ids(cat));
        br_catalog_free(cat);
    }
    return 0;
}
