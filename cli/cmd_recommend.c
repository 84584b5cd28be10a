/*
 * cmd_recommend.c: `bookrec recommend`, top-N books per reader. Fits the
 * chosen engine in-process from the CSV files (or reads a saved
 * collaborative model with --model) and prints one line per reader.
 *
 * Engines are the library's (bookrec/hybrid.h: br_engine, named and
 * summarised there). The collaborative ones (popularity, svd, als,
 * als-explicit) can be fitted alone and saved or read as a model file
 * (br_engine_fit_cf); the others, and every engine with --explain, go
 * through run_hybrid at the end of this file.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Every engine's options, as the command line set them. */
typedef struct fit_ctx {
    br_svd_options svd;
    br_als_options als;
    br_popularity_options pop;
} fit_ctx;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec recommend --books FILE --ratings FILE [--engine NAME]\n"
            "                         [--users all|ID[,ID...]] [--n N] [--json]\n"
            "                         [engine options] [--save-model FILE | --model FILE]\n"
            "       bookrec recommend --model-dir DIR [--store URI] [--users all|IDS] [--n N]\n"
            "                         [--json | --explain] [--candidates FILE] [--exclude FILE]\n\n"
            "Top-N unread books per reader. Fits the engine on the ratings in-process\n"
            "(or reads a model saved with --save-model) and prints one line per reader;\n"
            "with --json: {\"user\": ID, \"items\": [{\"book\": ID, \"score\": S}, ...]}.\n"
            "Books the reader rated are never recommended; ties go to the lower book\n"
            "index (catalogue order).\n\n"
            "engines:\n");
    for (int e = 0; e < BR_ENGINE_COUNT; e++) /* the library's registry */
        fprintf(out, "  %-18s %s\n", br_engine_name((br_engine)e),
                br_engine_summary((br_engine)e));
    fprintf(out,
            "  (collab is svd; the default engine is hybrid, svd with --model/--save-model)\n"
            "\n"
            "  --user ID             one reader (same as --users ID)\n"
            "  --explain             why each book: every engine's part, in words\n"
            "  --weights E,A,C,P     hybrid: blend these z-scores (ease, als, content,\n"
            "                        popularity) instead of the learned re-ranker\n"
            "  --embeddings FILE     book embeddings (.npy) for the content engines\n"
            "  --encoder MODEL       use-lite (default) or bert:DIR\n"
            "  --template T          book text: full or description; default: description\n"
            "                        (the notebook's text) for content-favourite,\n"
            "                        content-cluster, notebook-hybrid and rank-fusion, full\n"
            "                        (title, authors, genre, tags, description; as `train`\n"
            "                        and the API) for the others\n"
            "  --cache FILE|none     also keep the embeddings in FILE (e.g. a model\n"
            "                        directory's embeddings.brec); none: no cache at all.\n"
            "                        Books are embedded through the shared cache\n"
            "                        ($BOOKREC_EMBED_CACHE, else ~/.cache/bookrec/embeddings):\n"
            "                        a book any command embedded is not embedded again\n"
            "\n"
            "  --books FILE          books.csv\n"
            "  --ratings FILE        ratings.csv: user_id, book_id, rating\n"
            "  --engine NAME         (default hybrid)\n"
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
            "  --json                JSON lines\n"
            "  --candidates FILE     recommend only these books: one book id a line (blank\n"
            "                        lines, # comments and a first line `book_id` skipped)\n"
            "  --exclude FILE        never recommend these books (same format); both apply\n"
            "                        before the top N is cut: a list is N long whenever N\n"
            "                        unread books pass (--model-dir: the published books\n"
            "                        that pass, then their neighbours, then popular books,\n"
            "                        as the API's filters). An id not in the catalogue is\n"
            "                        an error (FILE:LINE), not skipped: a list would\n"
            "                        shrink silently\n"
            "\n"
            "  --model-dir DIR       read the recs `bookrec train` published (no --books,\n"
            "                        --ratings or fitting): the current version's store\n"
            "  --store URI           with --model-dir: read this store instead\n");
}

typedef struct emit_ctx {
    const br_catalog *cat;
    const br_ratings *ratings;
    int json;
    const uint8_t *allow; /* --candidates/--exclude: rows are longer than `want`, filtered here */
    uint32_t want;
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
        json_t *arr = e->json ? json_array() : NULL;
        if (!e->json) printf("%s:", uid);
        for (uint32_t p = 0, out = 0; p < n && out < e->want && it[p] != BR_CF_NONE; p++) {
            if (e->allow && !e->allow[it[p]]) continue;
            const char *book = br_catalog_book(e->cat, it[p])->id;
            if (arr)
                json_array_append_new(
                    arr, json_pack("{s:s, s:f}", "book", book, "score", (double)sc[p]));
            else
                printf("%s %s (%.4f)", out ? "," : "", book, (double)sc[p]);
            out++;
        }
        if (arr)
            cli_print_json(json_pack("{s:s, s:o}", "user", uid, "items", arr));
        else
            printf("\n");
    }
    return 0;
}

/* Sets mask[b] = value for each book id of FILE, one a line. An id the
 * catalogue lacks is an error naming FILE:LINE: skipping it would quietly
 * shrink a business rule (a typo in a candidate list, a stale exclusion). */
static br_status read_book_list(const char *path, const br_catalog *cat, uint8_t *mask,
                                uint8_t value)
{
    FILE *f = fopen(path, "r");
    if (!f) return br_error(BR_EIO, "%s: cannot open", path);
    char line[4096];
    size_t ln = 0, ids = 0;
    br_status st = BR_OK;
    while (!st && fgets(line, sizeof line, f)) {
        ln++;
        char *p = line, *e = line + strlen(line);
        while (*p == ' ' || *p == '\t') p++;
        while (e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) e--;
        *e = 0;
        if (!*p || *p == '#') continue;
        int64_t b = br_idmap_find(br_catalog_ids(cat), p, (size_t)(e - p));
        if (b < 0 && ln == 1 && !strcmp(p, "book_id")) continue; /* a CSV column's header */
        if (b < 0)
            st = br_error(BR_ENOTFOUND, "%s:%zu: no book '%s' in the catalogue", path, ln, p);
        else
            mask[b] = value, ids++;
    }
    if (!st && ferror(f)) st = br_error(BR_EIO, "%s: read error", path);
    fclose(f);
    if (!st && !ids) st = br_error(BR_EPARSE, "%s: no book ids", path);
    return st;
}

br_status cli_book_mask(const char *cand, const char *excl, const br_catalog *cat, uint8_t **out,
                        uint32_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!cand && !excl) return BR_OK;
    uint32_t nb = br_catalog_count(cat);
    uint8_t *m = br_malloc((size_t)nb + 1);
    if (!m) return br_error(BR_ENOMEM, "book list");
    memset(m, cand ? 0 : 1, (size_t)nb + 1);
    br_status st = cand ? read_book_list(cand, cat, m, 1) : BR_OK;
    if (!st && excl) st = read_book_list(excl, cat, m, 0);
    if (st) {
        br_free(m);
        return st;
    }
    for (uint32_t b = 0; b < nb; b++) *n_out += !m[b];
    *out = m;
    return BR_OK;
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

typedef struct hybrid_args {
    cli_embed_options eo;
    float w[4];
    int has_w;
    const char *cand, *excl; /* --candidates, --exclude */
} hybrid_args;

static int run_hybrid(const char *books_path, const char *ratings_path, const char *users_arg,
                      br_engine e, uint32_t n, int json, int explain, const fit_ctx *fc,
                      const hybrid_args *ha);

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
                                              {"user", required_argument, 0, 'U'},
                                              {"explain", no_argument, 0, 'X'},
                                              {"weights", required_argument, 0, 'W'},
                                              {"embeddings", required_argument, 0, 'F'},
                                              {"encoder", required_argument, 0, 'C'},
                                              {"template", required_argument, 0, 'T'},
                                              {"cache", required_argument, 0, 'H'},
                                              {"model-dir", required_argument, 0, 'D'},
                                              {"store", required_argument, 0, 'O'},
                                              {"candidates", required_argument, 0, 'K'},
                                              {"exclude", required_argument, 0, 'x'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    const char *model_dir = NULL, *store_uri = NULL;
    const char *books_path = NULL, *ratings_path = NULL, *users_arg = "all";
    const char *save_path = NULL, *model_path = NULL;
    br_engine engine = BR_ENGINE_SVD; /* a collaborative model file's default */
    fit_ctx fc = {BR_SVD_OPTIONS_DEFAULT, BR_ALS_OPTIONS_DEFAULT, BR_POPULARITY_OPTIONS_DEFAULT};
    int json = 0, c, n_top = 10, v, factors = 0, explain = 0, hybrid_engine = -1;
    hybrid_args ha = {{NULL, NULL, NULL, BR_TEXT_FULL, NULL, 0}, {0, 0, 0, 0}, 0, NULL, NULL};
    int tmpl_set = 0; /* --template given: else the engine's own text */
    double d;
    unsigned long long u64;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': books_path = optarg; break;
        case 'r': ratings_path = optarg; break;
        case 'e':
            if (br_engine_parse(optarg, &engine) != BR_OK)
                return cli_usage_error("recommend", "unknown engine '%s'", optarg);
            /* the collaborative engines alone go through a model file */
            hybrid_engine = br_engine_is_cf(engine) ? -2 : (int)engine;
            break;
        case 'U': users_arg = optarg; break;
        case 'X': explain = 1; break;
        case 'W':
            if (sscanf(optarg, "%f,%f,%f,%f", &ha.w[0], &ha.w[1], &ha.w[2], &ha.w[3]) != 4)
                return cli_usage_error("recommend", "--weights needs four numbers E,A,C,P");
            ha.has_w = 1;
            break;
        case 'F': ha.eo.npy = optarg; break;
        case 'C': ha.eo.encoder = optarg; break;
        case 'T':
            if (cli_parse_template(optarg, &ha.eo.tmpl))
                return cli_usage_error("recommend", "--template is full or description");
            tmpl_set = 1;
            break;
        case 'H': ha.eo.cache = optarg; break;
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
        case 'D': model_dir = optarg; break;
        case 'O': store_uri = optarg; break;
        case 'K': ha.cand = optarg; break;
        case 'x': ha.excl = optarg; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("recommend", argv, longopts);
        }
    }
    if (optind < argc)
        return cli_usage_error("recommend", "unexpected argument '%s'", argv[optind]);
    /* A trained model directory: read the published recs, fit nothing. */
    if (model_dir) {
        if (books_path || ratings_path || model_path || save_path || hybrid_engine != -1)
            return cli_usage_error("recommend", "--model-dir reads a trained model: no --books, "
                                                "--ratings, --engine or --model");
        return cli_recommend_served(model_dir, store_uri, users_arg, (uint32_t)n_top, json,
                                    explain, ha.cand, ha.excl);
    }
    if (store_uri) return cli_usage_error("recommend", "--store goes with --model-dir");
    if (!books_path || !ratings_path)
        return cli_usage_error("recommend", "--books FILE and --ratings FILE are required");
    if (save_path && model_path)
        return cli_usage_error("recommend", "--save-model and --model exclude each other");
    if (factors) {
        fc.svd.k = (uint32_t)factors;
        fc.als.factors = (uint32_t)factors;
    }
    /* No --engine: the hybrid, unless a collaborative model file is read or
     * written (those hold one collaborative engine: svd, as before). */
    if (hybrid_engine == -1 && !save_path && !model_path) hybrid_engine = BR_ENGINE_HYBRID;
    if (hybrid_engine >= 0) {
        if (save_path || model_path)
            return cli_usage_error("recommend", "--save-model/--model hold collaborative "
                                                "engines only");
        if (!tmpl_set) ha.eo.tmpl = br_engine_template((br_engine)hybrid_engine);
        return run_hybrid(books_path, ratings_path, users_arg, (br_engine)hybrid_engine,
                          (uint32_t)n_top, json, explain, &fc, &ha);
    }
    if (explain) /* the same collaborative engine, through the explaining path */
        return run_hybrid(books_path, ratings_path, users_arg, engine, (uint32_t)n_top, json, 1,
                          &fc, &ha);

    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat = NULL;
    br_ratings *ratings = NULL;
    br_csr r = {0}, rt = {0};
    br_cf_model *model = NULL;
    uint32_t *users = NULL, n_forbidden = 0;
    uint8_t *allow = NULL;
    size_t n_users = 0;
    br_status st = br_catalog_load(books_path, &lo, &cat, NULL);
    if (!st) st = br_ratings_load(ratings_path, cat, &lo, &ratings, NULL);
    if (!st) st = cli_book_mask(ha.cand, ha.excl, cat, &allow, &n_forbidden);
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
        if (!st) st = br_engine_fit_cf(engine, &r, &rt, &fc.svd, &fc.als, &fc.pop, &model);
        br_csr_free(&rt);
        if (!st && save_path)
            st = br_cf_model_save(model, save_path, br_ratings_user_ids(ratings),
                                  br_catalog_ids(cat));
    }
    /* A restriction: rows longer by the books it forbids (at most that many
     * of a row fall out), cut to n_top in emit. */
    uint64_t deep = (uint64_t)n_top + n_forbidden;
    if (!st && deep > r.cols) deep = r.cols > (uint32_t)n_top ? r.cols : (uint32_t)n_top;
    emit_ctx ec = {cat, ratings, json, allow, (uint32_t)n_top};
    if (!st) st = br_cf_recommend(model, &r, users, n_users, (uint32_t)deep, emit, &ec);
    int rc = st ? cli_fail("recommend", st) : CLI_OK;
    br_free(allow);
    br_free(users);
    br_cf_model_free(model);
    br_csr_free(&r);
    br_ratings_free(ratings);
    br_catalog_free(cat);
    return rc;
}

/* ---------------------------------------------------------------- hybrid -- */

static json_t *explain_json(const br_explanation *ex)
{
    json_t *a = json_array();
    for (uint32_t p = 0; p < ex->n_parts; p++) {
        const br_explain_part *x = &ex->part[p];
        json_t *o = json_pack("{s:s, s:f, s:f, s:s}", "engine", br_engine_name(x->engine),
                              "score", (double)x->score, "contribution", (double)x->contribution,
                              "reason", x->why);
        json_object_set_new(o, "rank", x->rank >= 0 ? json_integer(x->rank + 1) : json_null());
        json_array_append_new(a, o);
    }
    return a;
}

static int run_hybrid(const char *books_path, const char *ratings_path, const char *users_arg,
                      br_engine e, uint32_t n, int json, int explain, const fit_ctx *fc,
                      const hybrid_args *ha)
{
    br_hybrid_options ho;
    br_hybrid_options_default(&ho);
    ho.svd.k = fc->svd.k;
    if (fc->svd.method != BR_SVD_AUTO) ho.svd.method = fc->svd.method;
    if (ha->has_w) {
        /* explicit blend weights: the blend instead of the learned re-ranker,
         * over the blend's own candidate depth */
        ho.w_ease = ha->w[0], ho.w_als = ha->w[1], ho.w_content = ha->w[2],
        ho.w_popularity = ha->w[3];
        ho.rerank = 0;
        ho.cand_ease = ho.cand_als = 200;
    }
    int content = br_engine_needs_content(e) || (e == BR_ENGINE_HYBRID && (ho.w_content != 0 || ho.rerank));
    for (uint32_t j = 0; e == BR_ENGINE_RANK_FUSION && j < ho.fusion_n; j++)
        content |= br_engine_needs_content(ho.fusion[j]);
    for (uint32_t j = 0; e == BR_ENGINE_RRF && j < ho.rrf_n; j++)
        content |= br_engine_needs_content(ho.rrf[j]);
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat = NULL;
    br_ratings *ratings = NULL;
    br_hybrid *h = NULL;
    uint32_t *users = NULL, *items = NULL, n_forbidden = 0;
    uint8_t *allow = NULL;
    float *scores = NULL, *emb = NULL;
    size_t n_users = 0, dim = 0;
    int rc = CLI_OK;
    br_status st = br_catalog_load(books_path, &lo, &cat, NULL);
    if (!st) st = br_ratings_load(ratings_path, cat, &lo, &ratings, NULL);
    if (!st) st = cli_book_mask(ha->cand, ha->excl, cat, &allow, &n_forbidden);
    if (!st && strcmp(users_arg, "all") != 0) st = parse_users(users_arg, ratings, &users, &n_users);
    if (!st && !users) {
        n_users = br_ratings_num_users(ratings);
        users = br_malloc((n_users + 1) * sizeof *users);
        if (!users) st = br_error(BR_ENOMEM, "readers");
        for (size_t i = 0; users && i < n_users; i++) users[i] = (uint32_t)i;
    }
    if (st) goto fail;
    ho.rank_only = allow; /* every ranking, before its top n is cut (NULL: all books) */
    if (content && (rc = cli_book_embeddings("recommend", cat, &ha->eo, &emb, &dim, NULL)))
        goto out;
    br_train_data td = {br_ratings_num_users(ratings), br_ratings_num_books(ratings),
                        br_ratings_count(ratings), br_ratings_users(ratings),
                        br_ratings_books(ratings), br_ratings_values(ratings)};
    if ((st = br_hybrid_fit(&td, cat, emb, dim, &ho, &e, 1, &h))) goto fail;
    items = br_malloc((n_users * n + 1) * sizeof *items);
    scores = br_malloc((n_users * n + 1) * sizeof *scores);
    if (!items || !scores) {
        st = br_error(BR_ENOMEM, "recommendations");
        goto fail;
    }
    if ((st = br_hybrid_rank(h, e, users, n_users, n, items, scores))) goto fail;
    const br_idmap *uids = br_ratings_user_ids(ratings);
    for (size_t j = 0; j < n_users; j++) {
        const char *uid = br_idmap_name(uids, users[j]);
        const uint32_t *it = items + j * n;
        const float *sc = scores + j * n;
        if (json) {
            json_t *arr = json_array();
            for (uint32_t p = 0; p < n && it[p] != UINT32_MAX; p++) {
                json_t *o = json_pack("{s:s, s:f}", "book", br_catalog_book(cat, it[p])->id,
                                      "score", (double)sc[p]);
                if (explain) {
                    br_explanation ex;
                    if ((st = br_hybrid_explain(h, cat, e, users[j], it[p], &ex))) {
                        json_decref(o);
                        json_decref(arr);
                        goto fail;
                    }
                    json_object_set_new(o, "title", json_string(br_catalog_book(cat, it[p])->title));
                    json_object_set_new(o, "why", explain_json(&ex));
                }
                json_array_append_new(arr, o);
            }
            cli_print_json(json_pack("{s:s, s:s, s:o}", "user", uid, "engine", br_engine_name(e),
                                     "items", arr));
        } else if (explain) {
            printf("reader %s, %s:\n", uid, br_engine_name(e));
            for (uint32_t p = 0; p < n && it[p] != UINT32_MAX; p++) {
                const br_book *b = br_catalog_book(cat, it[p]);
                const char *tribe = NULL;
                br_hybrid_tribe(h, it[p], &tribe);
                printf("  %2u. %s (book %s%s%s)  score %.4f\n", p + 1, b->title, b->id,
                       *b->genre ? ", " : "", b->genre, (double)sc[p]);
                br_explanation ex;
                if ((st = br_hybrid_explain(h, cat, e, users[j], it[p], &ex))) goto fail;
                for (uint32_t q = 0; q < ex.n_parts; q++) {
                    const br_explain_part *x = &ex.part[q];
                    char rank[32] = "";
                    if (x->rank >= 0) snprintf(rank, sizeof rank, ", #%d there", x->rank + 1);
                    printf("      %s (%s: %+.3f%s)\n", x->why, br_engine_name(x->engine),
                           (double)x->contribution, rank);
                }
            }
        } else {
            printf("%s:", uid);
            for (uint32_t p = 0; p < n && it[p] != UINT32_MAX; p++)
                printf("%s %s (%.4f)", p ? "," : "", br_catalog_book(cat, it[p])->id,
                       (double)sc[p]);
            printf("\n");
        }
    }
    goto out;
fail:
    rc = cli_fail("recommend", st);
out:
    br_free(allow);
    br_free(users);
    br_free(items);
    br_free(scores);
    br_aligned_free(emb);
    br_hybrid_free(h);
    br_ratings_free(ratings);
    br_catalog_free(cat);
    return rc;
}

const cli_command cli_cmd_recommend = {"recommend", "top-N books per reader (collaborative)",
                                       run, usage};
