/*
 * cmd_eval.c: `bookrec eval`, every engine measured on held-out ratings
 * under one protocol (docs/evaluation.md). The protocol is the library's
 * (br_eval_run, bookrec/eval.h): this file parses the options and prints
 * the report, as a table or one JSON object, with what the run did (books
 * embedded, tuning, the re-ranker learned) on stderr.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec eval --books FILE --ratings FILE [--engines LIST] [--k K]\n"
            "                    [--seed N] [--by-time] [--slices] [--tune] [--json]\n"
            "                    [--protocol random|cold-books|readers]\n"
            "                    [--embeddings FILE.npy | --encoder MODEL] [--cache FILE|none]\n\n"
            "Measures every engine on held-out ratings. Protocol: readers with at least 5\n"
            "ratings; a seeded 20%% of each one's ratings (at least 1) held out (--by-time:\n"
            "the latest); relevant = held-out books rated >= 4; each engine ranks every\n"
            "book the reader did not rate in training. Precision, recall, NDCG, MAP and\n"
            "catalogue coverage at k; RMSE for engines that predict ratings; fit and\n"
            "recommend seconds.\n\n"
            "  --engines LIST    comma-separated, or all (default): popularity, svd, als,\n"
            "                    als-explicit, ease, content, content-favourite,\n"
            "                    content-cluster, notebook-hybrid, rank-fusion, rrf, hybrid\n"
            "  --k K             list length (default 10)\n"
            "  --seed N          split seed (default 42)\n"
            "  --protocol P      random: the split above; cold-books: 10%% of the rated\n"
            "                    books lose every training rating, each reader ranks only\n"
            "                    them; readers: 20%% of the readers out of training, 80%%\n"
            "                    of each one's ratings folded in, 20%% scored. With a\n"
            "                    protocol also NDCG@10, R@20, R@50, NDCG@100\n"
            "  --by-time         hold out each reader's latest ratings (timestamp column)\n"
            "  --slices          also: long tail, newcomers (1-3 ratings), cold books\n"
            "  --tune            tune the hybrid on a validation split of the training data\n"
            "                    (EASE lambda and rating weights, then the blend weights)\n"
            "                    and evaluate it with the tuned settings\n"
            "  --weights E,A,C,P hybrid: the blend (--blend) with these weights of ease, als,\n"
            "                    content, popularity\n"
            "  --candidates E,A  hybrid candidates: the top E of ease and A of als (the\n"
            "                    re-ranker: chosen on validation unless --no-learn, built-in\n"
            "                    30,30; --blend: 200,200)\n"
            "  --no-learn        hybrid: the built-in re-ranker coefficients instead of\n"
            "                    learning them on a validation split of the training part\n"
            "  --blend           hybrid: the --weights blend instead of the re-ranker\n"
            "  --cold-slot N     hybrid: a book nobody rated sharing an author or series\n"
            "                    with two liked books is listed no lower than N (default\n"
            "                    10; 0: off)\n"
            "  --write-split DIR also write the split (DIR/train.csv, DIR/test.csv, and\n"
            "                    candidates.csv / fold_in.csv for cold-books / readers)\n"
            "                    for peers\n"
            "  --ease-items M    item-item model: the M most-rated books (default 4000)\n"
            "  --ease-lambda L   (default 100)\n"
            "  --alpha A         implicit ALS confidence slope (default 0.3)\n"
            "  --embeddings F    book embeddings (.npy, one row per catalogue book)\n"
            "  --encoder MODEL   use-lite (default) or bert:DIR\n"
            "  --template T      book text of every engine: full or description; default:\n"
            "                    each engine its own, description (the notebook's text)\n"
            "                    for content-favourite, content-cluster, notebook-hybrid\n"
            "                    and rank-fusion, full (title, authors, genre, tags,\n"
            "                    description) for the others\n"
            "  --cache FILE|none also keep the embeddings in FILE; none: no cache at all\n"
            "                    (books are embedded through the shared cache,\n"
            "                    $BOOKREC_EMBED_CACHE, else ~/.cache/bookrec/embeddings)\n"
            "  --json            one JSON object instead of the table (\"embedded\": the\n"
            "                    books embedded now; protocol.book_text: each engine's text)\n");
}

/* One slice's figures: {engine: {metric@k: value, ...}}. */
static json_t *figures_json(const br_eval_report *rep, const br_eval_figures *f)
{
    json_t *o = json_object();
    char key[32];
    for (size_t i = 0; i < rep->n_engines; i++) {
        const br_eval_result *r = &f[i].r;
        json_t *e = json_object();
        snprintf(key, sizeof key, "precision@%u", rep->k);
        json_object_set_new(e, key, json_real(r->precision));
        snprintf(key, sizeof key, "recall@%u", rep->k);
        json_object_set_new(e, key, json_real(r->recall));
        snprintf(key, sizeof key, "ndcg@%u", rep->k);
        json_object_set_new(e, key, json_real(r->ndcg));
        snprintf(key, sizeof key, "map@%u", rep->k);
        json_object_set_new(e, key, json_real(r->map));
        snprintf(key, sizeof key, "coverage@%u", rep->k);
        json_object_set_new(e, key, json_real(r->coverage));
        if (r->deep) {
            json_object_set_new(e, "ndcg@10", json_real(r->ndcg10));
            json_object_set_new(e, "recall@20", json_real(r->recall20));
            json_object_set_new(e, "recall@50", json_real(r->recall50));
            json_object_set_new(e, "ndcg@100", json_real(r->ndcg100));
        }
        json_object_set_new(e, "rmse", r->has_rmse ? json_real(r->rmse) : json_null());
        json_object_set_new(e, "fit_s", json_real(f[i].fit_seconds));
        json_object_set_new(e, "recommend_s", json_real(r->rank_seconds));
        json_object_set_new(o, rep->engines[i].name, e);
    }
    return o;
}

static void print_table(const char *title, const br_eval_report *rep, const br_eval_figures *f)
{
    printf("%s\n", title);
    int deep = rep->protocol != NULL;
    printf("  %-18s %8s %8s %8s %8s %8s", "engine", "P@k", "R@k", "NDCG@k", "MAP@k", "cov@k");
    if (deep) printf(" %8s %8s %8s %8s", "NDCG@10", "R@20", "R@50", "NDCG@100");
    printf(" %7s %7s %7s\n", "RMSE", "fit s", "rec s");
    const char *dflt = br_engine_name(BR_ENGINE_HYBRID);
    for (size_t i = 0; i < rep->n_engines; i++) {
        const br_eval_result *r = &f[i].r;
        char rmse[16] = "-";
        if (r->has_rmse) snprintf(rmse, sizeof rmse, "%.3f", r->rmse);
        printf("  %-18s %8.4f %8.4f %8.4f %8.4f %8.4f", rep->engines[i].name, r->precision,
               r->recall, r->ndcg, r->map, r->coverage);
        if (deep)
            printf(" %8.4f %8.4f %8.4f %8.4f", r->ndcg10, r->recall20, r->recall50, r->ndcg100);
        printf(" %7s %7.2f %7.2f%s\n", rmse, f[i].fit_seconds, r->rank_seconds,
               !strcmp(rep->engines[i].name, dflt) ? "  (default)" : "");
    }
    if (rep->n_engines) printf("  readers ranked: %zu\n", f[0].r.users_ranked);
}

/* Which book text the engines that read one were ranked with. */
static void print_texts(const br_eval_report *rep)
{
    if (!rep->text[0].used && !rep->text[1].used) return;
    if (rep->embeddings) {
        printf("book embeddings: %s\n", rep->embeddings);
        return;
    }
    printf("book text:");
    for (int t = 0, shown = 0; t < 2; t++) {
        if (!rep->text[t].used) continue;
        printf("%s %s (", shown++ ? ";" : "", rep->text[t].name);
        size_t m = 0;
        for (size_t i = 0; i < rep->n_engines; i++)
            if (rep->engines[i].text && !strcmp(rep->engines[i].text, rep->text[t].name))
                printf("%s%s", m++ ? ", " : "", rep->engines[i].name);
        printf("%s)", m ? "" : "--tune");
    }
    printf("\n");
}

/* What the run says on stderr: the books embedded (as cli_book_embeddings
 * says it), the tuning search and the re-ranker learned. */
static void print_notes(const br_eval_report *rep, const char *cache, int json)
{
    int none = cache && !strcmp(cache, "none");
    for (int t = 0; t < 2 && !rep->embeddings && !cli_quiet; t++) {
        const br_eval_text *x = &rep->text[t];
        if (!x->used || !(x->embedded || cli_verbose)) continue;
        fprintf(stderr, "bookrec eval: embedded %zu of %u books (%s text, %s) in %.1f s; cache: ",
                x->embedded, rep->n_books, x->name, rep->encoder, x->seconds);
        if (cache && !none) fprintf(stderr, "%s and ", cache);
        fprintf(stderr, "%s\n", *rep->cache_file ? rep->cache_file : "none");
    }
    if (json) return;
    const br_hybrid_options *o = rep->hybrid;
    if (rep->tuned) {
        const br_eval_tuning *tu = &rep->tuning;
        for (size_t i = 0; i < tu->n_ease; i++)
            fprintf(stderr, "tune: ease lambda %g weights %g,%g,%g,%g,%g: NDCG@%u %.4f\n",
                    (double)tu->ease[i].lambda, (double)tu->ease[i].weight[0],
                    (double)tu->ease[i].weight[1], (double)tu->ease[i].weight[2],
                    (double)tu->ease[i].weight[3], (double)tu->ease[i].weight[4], rep->k,
                    tu->ease[i].ndcg);
        fprintf(stderr,
                "tune: best ease lambda %g; weights ease %g als %g content %g popularity %g: "
                "validation NDCG@%u %.4f\n",
                (double)tu->ease_lambda, (double)tu->w_ease, (double)tu->w_als,
                (double)tu->w_content, (double)tu->w_popularity, rep->k, tu->ndcg);
    }
    const br_rerank_report *rr = rep->rerank;
    if (!rr) return;
    fprintf(stderr, "rerank: validation fit %.1f s, learning %.1f s\n", rep->rerank_fit_seconds,
            rep->rerank_learn_seconds);
    fprintf(stderr,
            "rerank: learned on %zu validation readers (%zu candidates, %zu relevant) in "
            "%u Newton steps, log loss %.5f -> %.5f, %.1f s\n",
            rr->readers, rr->rows, rr->positives, rr->iterations, rr->loss[0],
            rr->loss[rr->iterations], rep->rerank_seconds);
    fprintf(stderr, "rerank: candidate depth by validation NDCG@10:");
    for (int g = 0; g < BR_RERANK_GRID; g++)
        fprintf(stderr, " %u: %.4f", rr->grid[g], rr->grid_ndcg[g]);
    fprintf(stderr, "; chosen %u\n", rr->cand);
    fprintf(stderr, "rerank: coefficients");
    for (uint32_t f = 0; f < BR_RERANK_FEATURES; f++)
        fprintf(stderr, " %s %.4g", br_rerank_feature_name(f), (double)o->rerank_coef[f]);
    fprintf(stderr, "\n");
}

/* The tuning search and the re-ranker learned, as JSON. */
static json_t *tuning_json(const br_eval_report *rep)
{
    json_t *report = json_object();
    const br_hybrid_options *o = rep->hybrid;
    if (rep->tuned) {
        const br_eval_tuning *tu = &rep->tuning;
        json_t *ej = json_array();
        for (size_t i = 0; i < tu->n_ease; i++)
            json_array_append_new(
                ej, json_pack("{s:f, s:[f,f,f,f,f], s:f}", "lambda", (double)tu->ease[i].lambda,
                              "weights", (double)tu->ease[i].weight[0],
                              (double)tu->ease[i].weight[1], (double)tu->ease[i].weight[2],
                              (double)tu->ease[i].weight[3], (double)tu->ease[i].weight[4], "ndcg",
                              tu->ease[i].ndcg));
        json_object_set_new(report, "ease", ej);
        json_object_set_new(report, "weights",
                            json_pack("{s:f, s:f, s:f, s:f, s:f}", "ease", (double)tu->w_ease,
                                      "als", (double)tu->w_als, "content", (double)tu->w_content,
                                      "popularity", (double)tu->w_popularity, "ndcg", tu->ndcg));
        json_object_set_new(
            report, "ease_best",
            json_pack("{s:f, s:f}", "lambda", (double)tu->ease_lambda, "ndcg", tu->ease_ndcg));
    }
    const br_rerank_report *rr = rep->rerank;
    if (rr) {
        json_t *cj = json_object(), *lj = json_array();
        for (uint32_t f = 0; f < BR_RERANK_FEATURES; f++)
            json_object_set_new(cj, br_rerank_feature_name(f), json_real(o->rerank_coef[f]));
        for (uint32_t i = 0; i <= rr->iterations; i++)
            json_array_append_new(lj, json_real(rr->loss[i]));
        json_object_set_new(report, "rerank",
                            json_pack("{s:o, s:o, s:I, s:I, s:I, s:I, s:f}", "coef", cj, "loss", lj,
                                      "readers", (json_int_t)rr->readers, "cand",
                                      (json_int_t)rr->cand, "rows", (json_int_t)rr->rows,
                                      "positives", (json_int_t)rr->positives, "seconds",
                                      rep->rerank_seconds));
    }
    return report;
}

/* The whole report as one JSON object. */
static json_t *report_json(const br_eval_report *rep)
{
    json_t *doc = json_object();
    const br_split_options *so = &rep->split;
    const br_hybrid_options *ho = rep->hybrid;
    json_t *proto = json_pack(
        "{s:s, s:f, s:i, s:f, s:I, s:i, s:I, s:I, s:I, s:I, s:I}", "split",
        so->by_time ? "time" : "random", "test_fraction", (double)so->test_fraction,
        "min_ratings", (int)so->min_ratings, "relevant_min", (double)so->relevant_min, "seed",
        (json_int_t)so->seed, "k", (int)rep->k, "readers", (json_int_t)rep->n_users,
        "readers_evaluated", (json_int_t)rep->n_eval_users, "readers_ranked",
        (json_int_t)rep->n_ranked, "train_ratings", (json_int_t)rep->n_train, "test_ratings",
        (json_int_t)rep->n_test);
    json_object_set_new(proto, "books", json_integer(rep->n_books));
    if (rep->protocol) {
        json_object_set_new(proto, "protocol", json_string(rep->protocol));
        json_object_set_new(proto, "cold_books", json_integer(rep->n_cold_books));
        json_object_set_new(proto, "readers_out_of_training", json_integer(rep->n_fold_readers));
    }
    json_t *texts = json_object();
    for (size_t i = 0; i < rep->n_engines; i++)
        if (rep->engines[i].text)
            json_object_set_new(texts, rep->engines[i].name, json_string(rep->engines[i].text));
    json_object_set_new(proto, "book_text", texts);
    json_object_set_new(doc, "embedded", json_integer((json_int_t)rep->embedded));
    json_object_set_new(proto, "hybrid",
                        json_pack("{s:f, s:f, s:f, s:f, s:i, s:f}", "w_ease", (double)ho->w_ease,
                                  "w_als", (double)ho->w_als, "w_content", (double)ho->w_content,
                                  "w_popularity", (double)ho->w_popularity, "ease_items",
                                  (int)ho->ease.max_items, "ease_lambda", (double)ho->ease.lambda));
    json_object_set_new(doc, "default", json_string(br_engine_name(BR_ENGINE_HYBRID)));
    json_object_set_new(doc, "protocol", proto);
    json_object_set_new(doc, "engines", figures_json(rep, rep->slices[0].figures));
    if (rep->tuned || rep->rerank) json_object_set_new(doc, "tuning", tuning_json(rep));
    if (rep->n_slices > 1) {
        json_t *sl = json_object();
        for (size_t i = 1; i < rep->n_slices; i++)
            json_object_set_new(sl, rep->slices[i].name, figures_json(rep, rep->slices[i].figures));
        json_object_set_new(doc, "slices", sl);
    }
    return doc;
}

/* The table's title of each slice. */
static const char *slice_title(const char *name)
{
    static const char *const titles[][2] = {
        {"all", "all readers"},
        {"long-tail", "\nlong tail: relevant = held-out books with <= 100 ratings"},
        {"newcomers", "\nnewcomers: a quarter of the readers keep 1-3 training ratings"},
        {"cold-books", "\ncold books: 5% of the books without any training rating; "
                       "relevant = those books"}};
    for (size_t i = 0; i < sizeof titles / sizeof titles[0]; i++)
        if (!strcmp(titles[i][0], name)) return titles[i][1];
    return name;
}

static void print_report(const br_eval_report *rep)
{
    if (rep->protocol && !strcmp(rep->protocol, "cold-books"))
        printf("protocol cold-books: %u of the rated books without any training rating; "
               "each reader ranks only them\n",
               rep->n_cold_books);
    else if (rep->protocol && !strcmp(rep->protocol, "readers"))
        printf("protocol readers: %u readers out of training, %.0f%% of each one's ratings "
               "folded in, the rest scored\n",
               rep->n_fold_readers, 100.0 * (1.0 - (double)rep->split.test_fraction));
    else if (rep->protocol)
        printf("protocol random: a share of each reader's ratings held out\n");
    const char *how = rep->split.by_time ? "time-ordered" : "random";
    if (rep->protocol && strcmp(rep->protocol, "random")) how = rep->protocol;
    printf("protocol: %s split, seed %llu, %u readers evaluated (%zu with a relevant "
           "held-out book), %zu training / %zu held-out ratings, %u books\n",
           how, (unsigned long long)rep->split.seed,
           rep->n_eval_users, rep->n_ranked, rep->n_train, rep->n_test, rep->n_books);
    print_texts(rep);
    for (size_t i = 0; i < rep->n_slices; i++)
        print_table(slice_title(rep->slices[i].name), rep, rep->slices[i].figures);
}

static int parse_floats(const char *s, float *out, int n)
{
    for (int i = 0; i < n; i++) {
        char *end;
        double d = strtod(s, &end);
        if (end == s || !isfinite(d)) return -1;
        out[i] = (float)d;
        if (i + 1 < n) {
            if (*end != ',') return -1;
            s = end + 1;
        } else if (*end)
            return -1;
    }
    return 0;
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {{"books", required_argument, 0, 'b'},
                                             {"ratings", required_argument, 0, 'r'},
                                             {"engines", required_argument, 0, 'e'},
                                             {"k", required_argument, 0, 'k'},
                                             {"seed", required_argument, 0, 's'},
                                             {"by-time", no_argument, 0, 'T'},
                                             {"slices", no_argument, 0, 'S'},
                                             {"tune", no_argument, 0, 'U'},
                                             {"weights", required_argument, 0, 'w'},
                                             {"ease-items", required_argument, 0, 'M'},
                                             {"ease-lambda", required_argument, 0, 'L'},
                                             {"alpha", required_argument, 0, 'a'},
                                             {"embeddings", required_argument, 0, 'E'},
                                             {"encoder", required_argument, 0, 'C'},
                                             {"template", required_argument, 0, 't'},
                                             {"cache", required_argument, 0, 'c'},
                                             {"json", no_argument, 0, 'j'},
                                             {"help", no_argument, 0, 'h'},
                                             {"candidates", required_argument, 0, 'N'},
                                             {"no-learn", no_argument, 0, 'G'},
                                             {"blend", no_argument, 0, 'B'},
                                             {"cold-slot", required_argument, 0, 'O'},
                                             {"write-split", required_argument, 0, 'X'},
                                             {"protocol", required_argument, 0, 'P'},
                                             {0, 0, 0, 0}};
    const char *engines_arg = "all";
    br_eval_options eo;
    br_eval_options_default(&eo);
    br_book_template tmpl; /* --template: every engine's text, else each its own */
    br_hybrid_options ho;
    br_hybrid_options_default(&ho);
    int json = 0, cand_set = 0, c, v, kk = 10;
    unsigned long long u64;
    double d;
    float w4[4];
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            eo.books = optarg;
            break;
        case 'r':
            eo.ratings = optarg;
            break;
        case 'e':
            engines_arg = optarg;
            break;
        case 'k':
            if (cli_parse_int(optarg, &kk) || kk < 1 || kk > 1000)
                return cli_usage_error("eval", "--k needs a count in 1..1000");
            break;
        case 's':
            if (cli_parse_u64(optarg, &u64))
                return cli_usage_error("eval", "--seed needs a number");
            eo.split.seed = u64;
            break;
        case 'T':
            eo.split.by_time = 1;
            break;
        case 'S':
            eo.slices = 1;
            break;
        case 'U':
            eo.tune = 1;
            break;
        case 'w':
            if (parse_floats(optarg, w4, 4))
                return cli_usage_error("eval", "--weights needs four numbers E,A,C,P");
            ho.w_ease = w4[0], ho.w_als = w4[1], ho.w_content = w4[2], ho.w_popularity = w4[3];
            /* explicit weights: the blend they weigh */
            ho.rerank = 0;
            if (!cand_set) ho.cand_ease = ho.cand_als = 200;
            break;
        case 'M':
            if (cli_parse_int(optarg, &v) || v < 1)
                return cli_usage_error("eval", "--ease-items needs a count >= 1");
            ho.ease.max_items = (uint32_t)v;
            break;
        case 'L':
            if (cli_parse_double(optarg, &d) || !(d > 0))
                return cli_usage_error("eval", "--ease-lambda needs a number > 0");
            ho.ease.lambda = (float)d;
            break;
        case 'a':
            if (cli_parse_double(optarg, &d) || d < 0)
                return cli_usage_error("eval", "--alpha needs a number >= 0");
            ho.als.alpha = (float)d;
            break;
        case 'N':
            if (parse_floats(optarg, w4, 2) || !(w4[0] >= 0 && w4[0] <= 1e6) ||
                !(w4[1] >= 0 && w4[1] <= 1e6) || w4[0] + w4[1] < 1)
                return cli_usage_error("eval", "--candidates needs two counts EASE,ALS");
            ho.cand_ease = (uint32_t)w4[0], ho.cand_als = (uint32_t)w4[1];
            cand_set = 1;
            break;
        case 'G':
            eo.learn = 0;
            break;
        case 'O':
            if (cli_parse_int(optarg, &v) || v < 0 || v > 1000)
                return cli_usage_error("eval", "--cold-slot needs 0..1000");
            ho.cold_slot = (uint32_t)v;
            break;
        case 'X':
            eo.write_split = optarg;
            break;
        case 'P':
            if (strcmp(optarg, "random") && strcmp(optarg, "cold-books") &&
                strcmp(optarg, "readers"))
                return cli_usage_error("eval", "--protocol is random, cold-books or readers");
            eo.protocol = optarg;
            break;
        case 'B':
            ho.rerank = 0;
            if (!cand_set) ho.cand_ease = ho.cand_als = 200;
            break;
        case 'E':
            eo.embeddings = optarg;
            break;
        case 'C':
            eo.encoder = optarg;
            break;
        case 't':
            if (cli_parse_template(optarg, &tmpl))
                return cli_usage_error("eval", "--template is full or description");
            eo.text = cli_template_name(tmpl);
            break;
        case 'c':
            eo.cache = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            return cli_bad_option("eval", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!eo.books || !eo.ratings)
        return cli_usage_error("eval", "--books FILE and --ratings FILE are required");
    if (eo.protocol && strcmp(eo.protocol, "random") && (eo.slices || eo.split.by_time))
        return cli_usage_error("eval", "--slices and --by-time go with --protocol random only");
    const char *names[BR_ENGINE_COUNT];
    char *list = NULL;
    if (strcmp(engines_arg, "all")) {
        char *save = NULL;
        if (!(list = br_strdup(engines_arg)))
            return cli_fail("eval", br_error(BR_ENOMEM, "engines"));
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            br_engine e;
            if (br_engine_parse(t, &e) || eo.n_engines == BR_ENGINE_COUNT) {
                int rc = cli_usage_error("eval", "unknown engine '%s'", t); /* t is in list */
                br_free(list);
                return rc;
            }
            names[eo.n_engines++] = t;
        }
        if (!eo.n_engines) {
            br_free(list);
            return cli_usage_error("eval", "--engines is empty");
        }
        eo.engines = names;
    }
    eo.k = (uint32_t)kk;
    eo.hybrid = &ho;
    br_eval_report *rep = NULL;
    br_status st = br_eval_run(&eo, &rep);
    br_free(list);
    if (st) return cli_fail("eval", st);
    print_notes(rep, eo.cache, json);
    if (json) cli_print_json(report_json(rep));
    else print_report(rep);
    br_eval_report_free(rep);
    return CLI_OK;
}

const cli_command cli_cmd_eval = {"eval", "measure every engine on held-out ratings", run, usage};
