/*
 * cmd_recommend.c: `bookrec recommend`, top-N books per reader. Fits the
 * chosen engine in-process from the CSV files (or reads a saved
 * collaborative model with --model) and prints one line per reader.
 *
 * Engines are rows of the `engines` table below: a name, a one-line
 * description and a fit function. Adding one (the hybrid engines) is one
 * row and one function.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* What the fit functions get: the data and every engine's options. */
typedef struct fit_ctx {
    const br_catalog *cat;
    const br_ratings *ratings;
    const br_csr *r;  /* readers x books */
    const br_csr *rt; /* its transpose */
    br_svd_options svd;
    br_als_options als;
    br_popularity_options pop;
} fit_ctx;

static br_status fit_popularity(const fit_ctx *c, br_cf_model **out)
{
    return br_popularity_fit(c->r, &c->pop, out);
}

static br_status fit_svd(const fit_ctx *c, br_cf_model **out)
{
    return br_cf_svd_fit(c->r, c->rt, &c->svd, out);
}

static br_status fit_als(const fit_ctx *c, br_cf_model **out)
{
    br_als_options o = c->als;
    o.kind = BR_ALS_IMPLICIT;
    return br_als_fit(c->r, c->rt, &o, out);
}

static br_status fit_als_explicit(const fit_ctx *c, br_cf_model **out)
{
    br_als_options o = c->als;
    o.kind = BR_ALS_EXPLICIT;
    return br_als_fit(c->r, c->rt, &o, out);
}

typedef struct engine_def {
    const char *name;
    const char *summary;
    br_status (*fit)(const fit_ctx *c, br_cf_model **out);
} engine_def;

static const engine_def engines[] = {
    {"popularity", "most-rated books (--popularity mean: damped mean rating)", fit_popularity},
    {"svd", "truncated SVD of the 0-filled matrix, predicted = U S V^T (the notebook)",
     fit_svd},
    {"als", "implicit-feedback ALS (confidence 1 + alpha * rating), CG solver", fit_als},
    {"als-explicit", "rating-prediction ALS with biases, weighted-lambda", fit_als_explicit},
    {NULL, NULL, NULL},
};

static const engine_def *find_engine(const char *name)
{
    for (int i = 0; engines[i].name; i++)
        if (!strcmp(engines[i].name, name)) return &engines[i];
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec recommend --books FILE --ratings FILE [--engine NAME]\n"
            "                         [--users all|ID[,ID...]] [--n N] [--json]\n"
            "                         [engine options] [--save-model FILE | --model FILE]\n\n"
            "Top-N unread books per reader. Fits the engine on the ratings in-process\n"
            "(or reads a model saved with --save-model) and prints one line per reader;\n"
            "with --json: {\"user\": ID, \"items\": [{\"book\": ID, \"score\": S}, ...]}.\n"
            "Books the reader rated are never recommended; ties go to the lower book\n"
            "index (catalogue order).\n\n"
            "engines:\n");
    for (int i = 0; engines[i].name; i++)
        fprintf(out, "  %-14s %s\n", engines[i].name, engines[i].summary);
    fprintf(out,
            "\n"
            "  --books FILE          books.csv\n"
            "  --ratings FILE        ratings.csv: user_id, book_id, rating\n"
            "  --engine NAME         (default svd)\n"
            "  --users all|IDS       readers, comma-separated ids (default all)\n"
            "  --n N                 books per reader (default 10)\n"
            "  --factors K           svd, als: latent factors (default 50 svd, 64 als)\n"
            "  --exact, --randomized svd route (default: exact for small matrices)\n"
            "  --iterations N        als: iterations (default 15)\n"
            "  --lambda L            als: regularisation (default 0.1)\n"
            "  --alpha A             als: confidence slope (default 1)\n"
            "  --cg-steps N          als: conjugate-gradient steps per row, 0 exact (default 3)\n"
            "  --popularity KIND     count (default) or mean\n"
            "  --damping D           popularity mean: prior ratings at the mean (default 10)\n"
            "  --seed N              svd (randomized), als: seed (default 42)\n"
            "  --save-model FILE     also write the fitted model (collab model file)\n"
            "  --model FILE          read a saved model instead of fitting\n"
            "  --json                JSON lines\n");
}

typedef struct emit_ctx {
    const br_catalog *cat;
    const br_ratings *ratings;
    int json;
} emit_ctx;

static int emit(const uint32_t *users, size_t count, uint32_t n, const uint32_t *items,
                const float *scores, void *user)
{
    const emit_ctx *e = user;
    const br_idmap *uids = br_ratings_user_ids(e->ratings);
    for (size_t j = 0; j < count; j++) {
        const char *uid = br_idmap_name(uids, users[j]);
        const uint32_t *it = items + j * n;
        const float *sc = scores + j * n;
        if (e->json) {
            json_t *arr = json_array();
            for (uint32_t p = 0; p < n && it[p] != BR_CF_NONE; p++)
                json_array_append_new(arr, json_pack("{s:s, s:f}", "book",
                                                     br_catalog_book(e->cat, it[p])->id, "score",
                                                     (double)sc[p]));
            cli_print_json(json_pack("{s:s, s:o}", "user", uid, "items", arr));
        } else {
            printf("%s:", uid);
            for (uint32_t p = 0; p < n && it[p] != BR_CF_NONE; p++)
                printf("%s %s (%.4f)", p ? "," : "", br_catalog_book(e->cat, it[p])->id,
                       (double)sc[p]);
            printf("\n");
        }
    }
    return 0;
}

/* Parses "ID,ID,..." into dense reader indices. */
static br_status parse_users(const char *list, const br_ratings *r, uint32_t **out, size_t *n)
{
    size_t cap = 1;
    for (const char *p = list; *p; p++) cap += *p == ',';
    uint32_t *u = br_malloc(cap * sizeof *u);
    if (!u) return br_error(BR_ENOMEM, "reader list");
    size_t k = 0;
    const char *p = list;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *id = br_strndup(p, len);
        if (!id) {
            br_free(u);
            return br_error(BR_ENOMEM, "reader id");
        }
        int64_t idx = br_ratings_find_user(r, id);
        if (idx < 0) {
            br_status st = br_error(BR_ENOTFOUND, "no reader '%s' in the ratings", id);
            br_free(id);
            br_free(u);
            return st;
        }
        br_free(id);
        u[k++] = (uint32_t)idx;
        if (!e) break;
        p = e + 1;
    }
    *out = u;
    *n = k;
    return BR_OK;
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {{"books", required_argument, 0, 'b'},
                                              {"ratings", required_argument, 0, 'r'},
                                              {"engine", required_argument, 0, 'e'},
                                              {"users", required_argument, 0, 'u'},
                                              {"n", required_argument, 0, 'n'},
                                              {"factors", required_argument, 0, 'k'},
                                              {"exact", no_argument, 0, 'E'},
                                              {"randomized", no_argument, 0, 'R'},
                                              {"iterations", required_argument, 0, 'i'},
                                              {"lambda", required_argument, 0, 'l'},
                                              {"alpha", required_argument, 0, 'a'},
                                              {"cg-steps", required_argument, 0, 'c'},
                                              {"popularity", required_argument, 0, 'p'},
                                              {"damping", required_argument, 0, 'd'},
                                              {"seed", required_argument, 0, 's'},
                                              {"save-model", required_argument, 0, 'S'},
                                              {"model", required_argument, 0, 'M'},
                                              {"json", no_argument, 0, 'j'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    const char *books_path = NULL, *ratings_path = NULL, *users_arg = "all";
    const char *save_path = NULL, *model_path = NULL;
    const engine_def *engine = find_engine("svd");
    fit_ctx fc = {NULL, NULL, NULL, NULL, BR_SVD_OPTIONS_DEFAULT, BR_ALS_OPTIONS_DEFAULT,
                  BR_POPULARITY_OPTIONS_DEFAULT};
    int json = 0, c, n_top = 10, v, factors = 0;
    double d;
    unsigned long long u64;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': books_path = optarg; break;
        case 'r': ratings_path = optarg; break;
        case 'e':
            engine = find_engine(optarg);
            if (!engine) return cli_usage_error("recommend", "unknown engine '%s'", optarg);
            break;
        case 'u': users_arg = optarg; break;
        case 'n':
            if (cli_parse_int(optarg, &n_top) || n_top < 1)
                return cli_usage_error("recommend", "--n needs a count >= 1");
            break;
        case 'k':
            if (cli_parse_int(optarg, &factors) || factors < 1)
                return cli_usage_error("recommend", "--factors needs a count >= 1");
            break;
        case 'E': fc.svd.method = BR_SVD_EXACT; break;
        case 'R': fc.svd.method = BR_SVD_RANDOMIZED; break;
        case 'i':
            if (cli_parse_int(optarg, &v) || v < 1)
                return cli_usage_error("recommend", "--iterations needs a count >= 1");
            fc.als.iterations = (uint32_t)v;
            break;
        case 'l':
            if (cli_parse_double(optarg, &d) || d < 0)
                return cli_usage_error("recommend", "--lambda needs a number >= 0");
            fc.als.lambda = (float)d;
            break;
        case 'a':
            if (cli_parse_double(optarg, &d) || d < 0)
                return cli_usage_error("recommend", "--alpha needs a number >= 0");
            fc.als.alpha = (float)d;
            break;
        case 'c':
            if (cli_parse_int(optarg, &v) || v < 0)
                return cli_usage_error("recommend", "--cg-steps needs a count >= 0");
            fc.als.cg_steps = (uint32_t)v;
            break;
        case 'p':
            if (!strcmp(optarg, "count")) fc.pop.kind = BR_POP_COUNT;
            else if (!strcmp(optarg, "mean")) fc.pop.kind = BR_POP_MEAN;
            else return cli_usage_error("recommend", "--popularity is count or mean");
            break;
        case 'd':
            if (cli_parse_double(optarg, &d) || d < 0)
                return cli_usage_error("recommend", "--damping needs a number >= 0");
            fc.pop.damping = (float)d;
            break;
        case 's':
            if (cli_parse_u64(optarg, &u64))
                return cli_usage_error("recommend", "--seed needs a number");
            fc.svd.seed = fc.als.seed = u64;
            break;
        case 'S': save_path = optarg; break;
        case 'M': model_path = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_usage_error("recommend", "bad option");
        }
    }
    if (optind < argc)
        return cli_usage_error("recommend", "unexpected argument '%s'", argv[optind]);
    if (!books_path || !ratings_path)
        return cli_usage_error("recommend", "--books FILE and --ratings FILE are required");
    if (save_path && model_path)
        return cli_usage_error("recommend", "--save-model and --model exclude each other");
    if (factors) {
        fc.svd.k = (uint32_t)factors;
        fc.als.factors = (uint32_t)factors;
    }

    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat = NULL;
    br_ratings *ratings = NULL;
    br_csr r = {0}, rt = {0};
    br_cf_model *model = NULL;
    uint32_t *users = NULL;
    size_t n_users = 0;
    br_status st = br_catalog_load(books_path, &lo, &cat, NULL);
    if (!st) st = br_ratings_load(ratings_path, cat, &lo, &ratings, NULL);
    if (!st && strcmp(users_arg, "all") != 0) st = parse_users(users_arg, ratings, &users, &n_users);
    if (!st) st = br_csr_from_ratings(ratings, &r);
    if (!st && model_path) {
        st = br_cf_model_load(model_path, &model);
        if (!st && (br_cf_model_users(model) != r.rows || br_cf_model_items(model) != r.cols))
            st = br_error(BR_EINVAL, "%s: model is %u readers x %u books, the data %u x %u",
                          model_path, br_cf_model_users(model), br_cf_model_items(model), r.rows,
                          r.cols);
    } else if (!st) {
        st = br_csr_transpose(&r, &rt);
        fc.cat = cat;
        fc.ratings = ratings;
        fc.r = &r;
        fc.rt = &rt;
        if (!st) st = engine->fit(&fc, &model);
        br_csr_free(&rt);
        if (!st && save_path)
            st = br_cf_model_save(model, save_path, br_ratings_user_ids(ratings),
                                  br_catalog_ids(cat));
    }
    emit_ctx ec = {cat, ratings, json};
    if (!st) st = br_cf_recommend(model, &r, users, n_users, (uint32_t)n_top, emit, &ec);
    int rc = st ? cli_fail("recommend", st) : CLI_OK;
    br_free(users);
    br_cf_model_free(model);
    br_csr_free(&r);
    br_ratings_free(ratings);
    br_catalog_free(cat);
    return rc;
}

const cli_command cli_cmd_recommend = {"recommend", "top-N books per reader (collaborative)",
                                       run, usage};
