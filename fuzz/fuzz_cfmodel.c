/*
 * fuzz_cfmodel.c: libFuzzer target for the collaborative model's file
 * (br_cf_model_load, src/collab/persist.c): the input is the whole file.
 * A model that loads must have every factor and bias readable, its stored
 * ids for every index, and answer a fold-in and a top-3 for a reader with
 * two ratings.
 */
#include "fuzz_util.h"

static const char *path;

static void dump_seeds(const char *dump)
{
    /* 4 readers x 5 books: a popularity model and a rank-2 SVD, with ids */
    static const uint32_t u[] = {0, 0, 1, 1, 2, 2, 3, 3, 3}, b[] = {0, 1, 1, 2, 2, 3, 0, 3, 4};
    static const float r[] = {5, 3, 4, 2, 5, 1, 3, 4, 2};
    br_csr m, mt;
    if (br_csr_from_coo(4, 5, 9, u, b, r, &m) != BR_OK || br_csr_transpose(&m, &mt) != BR_OK)
        abort();
    br_idmap *users, *books;
    if (br_idmap_create(&users) != BR_OK || br_idmap_create(&books) != BR_OK) abort();
    static const char *const un[] = {"u1", "u2", "reader-3", "4"}, *const bn[] = {"b1", "b2", "b3",
                                                                                  "978-x", "5"};
    uint32_t idx;
    for (int i = 0; i < 4; i++) br_idmap_intern(users, un[i], strlen(un[i]), &idx, NULL);
    for (int i = 0; i < 5; i++) br_idmap_intern(books, bn[i], strlen(bn[i]), &idx, NULL);
    br_cf_model *pop, *svd;
    br_popularity_options po = BR_POPULARITY_OPTIONS_DEFAULT;
    br_svd_options so = BR_SVD_OPTIONS_DEFAULT;
    so.k = 2;
    if (br_popularity_fit(&m, &po, &pop) != BR_OK || br_cf_svd_fit(&m, &mt, &so, &svd) != BR_OK)
        abort();
    char sp[PATH_MAX + 16];
    snprintf(sp, sizeof sp, "%s/popularity", dump);
    if (br_cf_model_save(pop, sp, users, books) != BR_OK) abort();
    snprintf(sp, sizeof sp, "%s/svd", dump);
    if (br_cf_model_save(svd, sp, users, books) != BR_OK) abort();
    br_cf_model_free(pop);
    br_cf_model_free(svd);
    br_idmap_free(users);
    br_idmap_free(books);
    br_csr_free(&m);
    br_csr_free(&mt);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static char p[PATH_MAX];
    path = fz_path(p, sizeof p, "model.brcf");
    if (getenv("FUZZ_DUMP_SEEDS")) dump_seeds(getenv("FUZZ_DUMP_SEEDS"));
    return 0;
}

static void touch(const float *a, size_t n)
{
    if (!a || !n) return;
    volatile float s = a[0] + a[n - 1];
    (void)s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write(path, data, size);
    br_cf_model *m;
    if (br_cf_model_load(path, &m) != BR_OK) return 0;
    uint32_t users = br_cf_model_users(m), items = br_cf_model_items(m), k = br_cf_model_factors(m);
    touch(br_cf_model_user_factors(m), (size_t)users * k);
    touch(br_cf_model_item_factors(m), (size_t)items * k);
    touch(br_cf_model_user_bias(m), users);
    touch(br_cf_model_item_bias(m), items);
    touch(br_cf_model_singular_values(m), k);
    if (br_cf_model_item_id(m, 0)) {
        for (uint32_t i = 0; i < items; i++)
            if (!br_cf_model_item_id(m, i)) abort();
    }
    if (br_cf_model_user_id(m, 0)) {
        for (uint32_t i = 0; i < users; i++)
            if (!br_cf_model_user_id(m, i)) abort();
    }
    if (items >= 2 && k <= 1024) {
        uint32_t rated[2] = {0, items - 1}, top[3];
        float val[2] = {4, 2}, *f = calloc(k ? k : 1, sizeof *f), bias = 0, sc[3];
        if (!f) abort();
        if (br_cf_fold_in(m, 2, rated, val, f, &bias) == BR_OK &&
            br_cf_recommend_one(m, f, bias, rated, 2, 3, top, sc) == BR_OK) {
            for (int i = 0; i < 3; i++)
                if (top[i] != BR_CF_NONE && top[i] >= items) abort();
        }
        free(f);
    }
    br_cf_model_free(m);
    return 0;
}
