/*
 * cmd_eval.c: `bookrec eval`, every engine measured on held-out ratings
 * under one protocol (bookrec/eval.h, docs/evaluation.md).
 *
 * All engines are fitted once on the training part (br_hybrid_fit shares
 * what they have in common) and ranked through br_eval_ranker. Extra
 * slices (--slices): the long tail (relevant books with at most 100 ratings
 * in the whole data, no refit), newcomers (a seeded quarter of the readers
 * keep 1 to 3 training ratings) and cold books (a seeded 5% of the books
 * lose every training rating: only content can find them); the last two
 * share one refit. --tune searches the default hybrid's settings on a
 * validation split carved from the training part, never the test part.
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
            "  --write-split DIR also write the split (DIR/train.csv, DIR/test.csv) for peers\n"
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

typedef struct eval_row {
    br_engine e;
    br_eval_result r;
    double fit_s;
} eval_row;

/* hs[i]: the fitted engines engine i ranks with (fit_texts). */
static br_status eval_all(const br_hybrid *const *hs, const br_split *s, const br_engine *eng,
                          size_t ne, uint32_t k, const uint32_t *users, size_t n_users,
                          eval_row *rows)
{
    for (size_t i = 0; i < ne; i++) {
        br_hybrid_engine c = {hs[i], eng[i]};
        br_ranker rk = br_hybrid_ranker(&c);
        rows[i].e = eng[i];
        rows[i].fit_s = br_hybrid_fit_seconds(hs[i], eng[i]);
        br_status st = br_eval_ranker(s, &rk, k, users, n_users, &rows[i].r);
        if (st) return st;
    }
    return BR_OK;
}

static json_t *rows_json(const eval_row *rows, size_t n, uint32_t k)
{
    json_t *o = json_object();
    char key[32];
    for (size_t i = 0; i < n; i++) {
        const br_eval_result *r = &rows[i].r;
        json_t *e = json_object();
        snprintf(key, sizeof key, "precision@%u", k);
        json_object_set_new(e, key, json_real(r->precision));
        snprintf(key, sizeof key, "recall@%u", k);
        json_object_set_new(e, key, json_real(r->recall));
        snprintf(key, sizeof key, "ndcg@%u", k);
        json_object_set_new(e, key, json_real(r->ndcg));
        snprintf(key, sizeof key, "map@%u", k);
        json_object_set_new(e, key, json_real(r->map));
        snprintf(key, sizeof key, "coverage@%u", k);
        json_object_set_new(e, key, json_real(r->coverage));
        json_object_set_new(e, "rmse", r->has_rmse ? json_real(r->rmse) : json_null());
        json_object_set_new(e, "fit_s", json_real(rows[i].fit_s));
        json_object_set_new(e, "recommend_s", json_real(r->rank_seconds));
        json_object_set_new(o, br_engine_name(rows[i].e), e);
    }
    return o;
}

static void print_table(const char *title, const eval_row *rows, size_t n, uint32_t k)
{
    printf("%s\n", title);
    printf("  %-18s %8s %8s %8s %8s %8s %7s %7s %7s\n", "engine", "P@k", "R@k", "NDCG@k", "MAP@k",
           "cov@k", "RMSE", "fit s", "rec s");
    (void)k;
    for (size_t i = 0; i < n; i++) {
        const br_eval_result *r = &rows[i].r;
        char rmse[16] = "-";
        if (r->has_rmse) snprintf(rmse, sizeof rmse, "%.3f", r->rmse);
        printf("  %-18s %8.4f %8.4f %8.4f %8.4f %8.4f %7s %7.2f %7.2f%s\n",
               br_engine_name(rows[i].e), r->precision, r->recall, r->ndcg, r->map, r->coverage,
               rmse, rows[i].fit_s, r->rank_seconds,
               rows[i].e == BR_ENGINE_HYBRID ? "  (default)" : "");
    }
    if (n) printf("  readers ranked: %zu\n", rows[0].r.users_ranked);
}

/* Which book text the engines that read one were ranked with. */
static void print_texts(const br_engine *eng, const br_book_template *text, const int *reads,
                        size_t ne, const int *need_text, const char *npy)
{
    if (!need_text[0] && !need_text[1]) return;
    if (npy) {
        printf("book embeddings: %s\n", npy);
        return;
    }
    printf("book text:");
    for (int t = 0, shown = 0; t < 2; t++) {
        if (!need_text[t]) continue;
        printf("%s %s (", shown++ ? ";" : "", cli_template_name((br_book_template)t));
        size_t m = 0;
        for (size_t i = 0; i < ne; i++)
            if ((int)text[i] == t && reads[i])
                printf("%s%s", m++ ? ", " : "", br_engine_name(eng[i]));
        printf("%s)", m ? "" : "--tune");
    }
    printf("\n");
}

/* A view of s whose held-out ratings are only the books with keep[b]. The
 * training arrays are shared with s: release with free_view. */
static br_status filter_view(const br_split *s, const unsigned char *keep, br_split *v)
{
    *v = *s;
    v->test_ptr = br_calloc((size_t)s->n_users + 1, sizeof *v->test_ptr);
    v->test_book = br_malloc((s->n_test + 1) * sizeof *v->test_book);
    v->test_value = br_malloc((s->n_test + 1) * sizeof *v->test_value);
    if (!v->test_ptr || !v->test_book || !v->test_value) return br_error(BR_ENOMEM, "slice");
    size_t w = 0;
    v->n_eval_users = 0;
    for (uint32_t u = 0; u < s->n_users; u++) {
        size_t w0 = w;
        for (uint64_t j = s->test_ptr[u]; j < s->test_ptr[u + 1]; j++)
            if (keep[s->test_book[j]]) {
                v->test_book[w] = s->test_book[j];
                v->test_value[w++] = s->test_value[j];
            }
        v->n_eval_users += w > w0;
        v->test_ptr[u + 1] = w;
    }
    v->n_test = w;
    return BR_OK;
}

static void free_view(br_split *v)
{
    br_free(v->test_ptr);
    br_free(v->test_book);
    br_free(v->test_value);
}

/* The cold split: s with the training ratings of the cold books removed
 * and the newcomers' training cut to 1-3 ratings (seeded). Owns its
 * training arrays, shares s's test arrays (release with free_cold). */
static br_status make_cold(const br_split *s, uint64_t seed, br_split *c, unsigned char *cold_book,
                           uint32_t **newcomers, size_t *n_new)
{
    *c = *s;
    br_rng rng;
    br_rng_seed(&rng, seed ^ 0xc01dc01dull);
    uint32_t nu = s->n_users, nbk = s->n_books;
    unsigned char *has = br_calloc((size_t)nbk + 1, 1);
    uint32_t *keep_n = br_calloc((size_t)nu + 1, sizeof *keep_n);
    uint32_t *seen = br_calloc((size_t)nu + 1, sizeof *seen);
    *newcomers = br_malloc(((size_t)nu + 1) * sizeof **newcomers);
    c->train_user = br_malloc((s->n_train + 1) * sizeof *c->train_user);
    c->train_book = br_malloc((s->n_train + 1) * sizeof *c->train_book);
    c->train_value = br_malloc((s->n_train + 1) * sizeof *c->train_value);
    br_status st = BR_OK;
    if (!has || !keep_n || !seen || !*newcomers || !c->train_user || !c->train_book ||
        !c->train_value) {
        st = br_error(BR_ENOMEM, "cold split");
        goto out;
    }
    for (size_t i = 0; i < s->n_train; i++) has[s->train_book[i]] = 1;
    for (uint32_t b = 0; b < nbk; b++) cold_book[b] = has[b] && br_rng_uniform(&rng) < 0.05;
    *n_new = 0;
    for (uint32_t u = 0; u < nu; u++) {
        keep_n[u] = UINT32_MAX;
        if (s->test_ptr[u + 1] > s->test_ptr[u] && br_rng_uniform(&rng) < 0.25) {
            keep_n[u] = 1 + (uint32_t)br_rng_below(&rng, 3);
            (*newcomers)[(*n_new)++] = u;
        }
    }
    /* A newcomer keeps their first 1-3 training ratings (input order: the
     * earliest when the file is chronological). */
    size_t w = 0;
    for (size_t i = 0; i < s->n_train; i++) {
        uint32_t u = s->train_user[i];
        if (cold_book[s->train_book[i]]) continue;
        if (seen[u] >= keep_n[u]) continue;
        seen[u]++;
        c->train_user[w] = u;
        c->train_book[w] = s->train_book[i];
        c->train_value[w++] = s->train_value[i];
    }
    c->n_train = w;
out:
    br_free(has);
    br_free(keep_n);
    br_free(seen);
    return st;
}

static void free_cold(br_split *c)
{
    br_free(c->train_user);
    br_free(c->train_book);
    br_free(c->train_value);
}

/* L2 penalty of the re-ranker on its standardised weights. */
#define RERANK_LAMBDA 1e-4

static br_train_data train_of(const br_split *s)
{
    return (br_train_data){s->n_users,    s->n_books,    s->n_train,
                           s->train_user, s->train_book, s->train_value};
}

/* The validation split tuning and re-ranker learning use: carved from the
 * training ratings only, with its own seed. */
static br_status validation_split(const br_split *s, uint64_t seed, br_split *val)
{
    br_split_options so = BR_SPLIT_OPTIONS_DEFAULT;
    so.seed = seed + 1000;
    return br_split_train(s, &so, val);
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

/* --write-split DIR: the split as DIR/train.csv and DIR/test.csv (and
 * the shape in DIR/meta.json)
 * (reader,book,rating in bookrec's 0-based indices, training ratings in
 * input order), so a peer in another language evaluates on exactly the
 * same held-out ratings. */
static int write_split(const br_split *s, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    FILE *m = fopen(path, "w");
    if (!m || fprintf(m, "{\"readers\": %u, \"books\": %u}\n", s->n_users, s->n_books) < 0 ||
        fclose(m)) {
        fprintf(stderr, "bookrec eval: cannot write %s\n", path);
        return -1;
    }
    for (int part = 0; part < 2; part++) {
        snprintf(path, sizeof path, "%s/%s", dir, part ? "test.csv" : "train.csv");
        FILE *f = fopen(path, "w");
        if (!f) {
            fprintf(stderr, "bookrec eval: cannot write %s\n", path);
            return -1;
        }
        fprintf(f, "reader,book,rating\n");
        if (!part)
            for (size_t i = 0; i < s->n_train; i++)
                fprintf(f, "%u,%u,%g\n", s->train_user[i], s->train_book[i],
                        (double)s->train_value[i]);
        else
            for (uint32_t u = 0; u < s->n_users; u++)
                for (uint64_t j = s->test_ptr[u]; j < s->test_ptr[u + 1]; j++)
                    fprintf(f, "%u,%u,%g\n", u, s->test_book[j], (double)s->test_value[j]);
        if (fclose(f)) {
            fprintf(stderr, "bookrec eval: cannot write %s\n", path);
            return -1;
        }
    }
    return 0;
}

/* One br_hybrid per book text (h[BR_TEXT_FULL], h[BR_TEXT_DESCRIPTION])
 * over the engines that read it (text[i]), so that each engine ranks with
 * its own embeddings, as `recommend --engine` would; hs[i] is engine i's. */
static br_status fit_texts(const br_train_data *td, const br_catalog *cat, float *const emb[2],
                           size_t dim, const br_hybrid_options *ho, const br_engine *eng,
                           const br_book_template *text, size_t ne, br_hybrid *h[2],
                           const br_hybrid **hs)
{
    for (int t = 0; t < 2; t++) {
        br_engine list[BR_ENGINE_COUNT];
        size_t n = 0;
        for (size_t i = 0; i < ne; i++)
            if ((int)text[i] == t) list[n++] = eng[i];
        if (!n) continue;
        br_status st = br_hybrid_fit(td, cat, emb[t], emb[t] ? dim : 0, ho, list, n, &h[t]);
        if (st) return st;
    }
    for (size_t i = 0; i < ne; i++) hs[i] = h[text[i]];
    return BR_OK;
}

/* The default hybrid's re-ranker, learned on a validation split carved
 * from the training part (never the held-out ratings): the components are
 * fitted on the validation split's training part, their candidates for
 * its readers labelled by its held-out ratings. Writes the coefficients
 * into *o and returns the seconds it took in *secs. */
static br_status learn_rerank(const br_split *s, const br_catalog *cat, const float *emb,
                              size_t dim, uint64_t seed, br_hybrid_options *o, json_t *report,
                              int json, double *secs)
{
    uint64_t t0 = br_now_ns();
    br_split val;
    br_status st = validation_split(s, seed, &val);
    if (st) return st;
    br_train_data td = train_of(&val);
    br_hybrid *h = NULL;
    br_engine e = BR_ENGINE_HYBRID;
    br_rerank_report rep;
    uint64_t t1 = 0;
    if (!(st = br_hybrid_fit(&td, cat, emb, dim, o, &e, 1, &h))) {
        t1 = br_now_ns();
        st = br_hybrid_learn_rerank(h, &val, 0, RERANK_LAMBDA, o->rerank_coef, &rep);
    }
    if (!st && !json)
        fprintf(stderr, "rerank: validation fit %.1f s, learning %.1f s\n",
                (double)(t1 - t0) * 1e-9, (double)(br_now_ns() - t1) * 1e-9);
    br_hybrid_free(h);
    br_split_free(&val);
    if (st) return st;
    o->cand_ease = o->cand_als = rep.cand;
    *secs = (double)(br_now_ns() - t0) * 1e-9;
    json_t *cj = json_object(), *lj = json_array();
    for (uint32_t f = 0; f < BR_RERANK_FEATURES; f++)
        json_object_set_new(cj, br_rerank_feature_name(f), json_real(o->rerank_coef[f]));
    for (uint32_t i = 0; i <= rep.iterations; i++)
        json_array_append_new(lj, json_real(rep.loss[i]));
    json_object_set_new(report, "rerank",
                        json_pack("{s:o, s:o, s:I, s:I, s:I, s:I, s:f}", "coef", cj, "loss", lj,
                                  "readers", (json_int_t)rep.readers, "cand", (json_int_t)rep.cand,
                                  "rows", (json_int_t)rep.rows, "positives",
                                  (json_int_t)rep.positives, "seconds", *secs));
    if (!json) {
        fprintf(stderr,
                "rerank: learned on %zu validation readers (%zu candidates, %zu relevant) in "
                "%u Newton steps, log loss %.5f -> %.5f, %.1f s\n",
                rep.readers, rep.rows, rep.positives, rep.iterations, rep.loss[0],
                rep.loss[rep.iterations], *secs);
        fprintf(stderr, "rerank: candidate depth by validation NDCG@10:");
        for (int g = 0; g < BR_RERANK_GRID; g++)
            fprintf(stderr, " %u: %.4f", rep.grid[g], rep.grid_ndcg[g]);
        fprintf(stderr, "; chosen %u\n", rep.cand);
        fprintf(stderr, "rerank: coefficients");
        for (uint32_t f = 0; f < BR_RERANK_FEATURES; f++)
            fprintf(stderr, " %s %.4g", br_rerank_feature_name(f), (double)o->rerank_coef[f]);
        fprintf(stderr, "\n");
    }
    return BR_OK;
}

/* --tune: EASE settings by the item-item model's own validation NDCG, then
 * the blend weights by the hybrid's. Writes the winners into *o. */
static br_status tune(const br_split *s, const br_catalog *cat, const float *emb, size_t dim,
                      uint64_t seed, uint32_t k, br_hybrid_options *o, json_t *report, int json)
{
    br_split val;
    br_status st = validation_split(s, seed, &val);
    if (st) return st;
    br_train_data td = train_of(&val);
    static const float lambdas[] = {60, 100, 150};
    static const float weights[][5] = {
        {1, 1, 1, 1, 1}, {0.2f, 0.3f, 0.5f, 1.0f, 1.3f}, {0.3f, 0.3f, 0.3f, 1.3f, 1.3f}};
    double best = -1;
    br_ease_options best_e = o->ease;
    json_t *ej = json_array();
    for (size_t a = 0; a < 3 && !st; a++)
        for (size_t b = 0; b < 3 && !st; b++) {
            br_hybrid_options t = *o;
            t.ease.lambda = lambdas[a];
            memcpy(t.ease.weight, weights[b], sizeof t.ease.weight);
            br_engine e = BR_ENGINE_EASE;
            br_hybrid *h = NULL;
            if ((st = br_hybrid_fit(&td, NULL, NULL, 0, &t, &e, 1, &h))) break;
            const float g[1][4] = {{1, 0, 0, 0}};
            double nd;
            st = br_hybrid_tune(h, &val, k, g, 1, &nd);
            br_hybrid_free(h);
            if (st) break;
            json_array_append_new(
                ej, json_pack("{s:f, s:[f,f,f,f,f], s:f}", "lambda", (double)lambdas[a], "weights",
                              (double)weights[b][0], (double)weights[b][1], (double)weights[b][2],
                              (double)weights[b][3], (double)weights[b][4], "ndcg", nd));
            if (!json)
                fprintf(stderr, "tune: ease lambda %g weights %g,%g,%g,%g,%g: NDCG@%u %.4f\n",
                        (double)lambdas[a], (double)weights[b][0], (double)weights[b][1],
                        (double)weights[b][2], (double)weights[b][3], (double)weights[b][4], k, nd);
            if (nd > best) best = nd, best_e = t.ease;
        }
    json_object_set_new(report, "ease", ej);
    if (!st) o->ease = best_e;
    /* Blend weights. */
    static const float wa[] = {0, 0.1f, 0.2f, 0.3f, 0.5f};
    static const float wc[] = {0, 0.05f, 0.1f, 0.2f, 0.3f};
    static const float wp[] = {0, 0.05f, 0.1f};
    float grid[75][4];
    size_t ng = 0;
    for (size_t a = 0; a < 5; a++)
        for (size_t c = 0; c < 5; c++)
            for (size_t p = 0; p < 3; p++) {
                grid[ng][0] = 1, grid[ng][1] = wa[a], grid[ng][2] = emb ? wc[c] : 0;
                grid[ng++][3] = wp[p];
            }
    br_hybrid *h = NULL;
    const br_engine need[4] = {BR_ENGINE_EASE, BR_ENGINE_ALS, BR_ENGINE_POPULARITY,
                               BR_ENGINE_CONTENT};
    double nd[75];
    if (!st) st = br_hybrid_fit(&td, cat, emb, dim, o, need, emb ? 4 : 3, &h);
    if (!st) st = br_hybrid_tune(h, &val, k, (const float(*)[4])grid, ng, nd);
    br_hybrid_free(h);
    if (!st) {
        size_t bi = 0;
        for (size_t g = 1; g < ng; g++)
            if (nd[g] > nd[bi]) bi = g;
        o->w_ease = grid[bi][0], o->w_als = grid[bi][1], o->w_content = grid[bi][2];
        o->w_popularity = grid[bi][3];
        json_object_set_new(report, "weights",
                            json_pack("{s:f, s:f, s:f, s:f, s:f}", "ease", (double)o->w_ease, "als",
                                      (double)o->w_als, "content", (double)o->w_content,
                                      "popularity", (double)o->w_popularity, "ndcg", nd[bi]));
        json_object_set_new(
            report, "ease_best",
            json_pack("{s:f, s:f}", "lambda", (double)o->ease.lambda, "ndcg", best));
        if (!json)
            fprintf(stderr,
                    "tune: best ease lambda %g; weights ease %g als %g content %g popularity %g: "
                    "validation NDCG@%u %.4f\n",
                    (double)o->ease.lambda, (double)o->w_ease, (double)o->w_als,
                    (double)o->w_content, (double)o->w_popularity, k, nd[bi]);
    }
    br_split_free(&val);
    return st;
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
                                             {"write-split", required_argument, 0, 'X'},
                                             {0, 0, 0, 0}};
    const char *books_path = NULL, *ratings_path = NULL, *engines_arg = "all", *split_dir = NULL;
    cli_embed_options eo = {NULL, NULL, NULL, BR_TEXT_FULL, NULL, 0};
    int tmpl_set = 0; /* --template: every engine's text, else each its own */
    br_hybrid_options ho;
    br_hybrid_options_default(&ho);
    br_split_options so = BR_SPLIT_OPTIONS_DEFAULT;
    int json = 0, slices = 0, do_tune = 0, learn = 1, cand_set = 0, c, v, kk = 10;
    unsigned long long u64;
    double d;
    float w4[4];
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            books_path = optarg;
            break;
        case 'r':
            ratings_path = optarg;
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
            so.seed = u64;
            break;
        case 'T':
            so.by_time = 1;
            break;
        case 'S':
            slices = 1;
            break;
        case 'U':
            do_tune = 1;
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
            learn = 0;
            break;
        case 'X':
            split_dir = optarg;
            break;
        case 'B':
            ho.rerank = 0;
            if (!cand_set) ho.cand_ease = ho.cand_als = 200;
            break;
        case 'E':
            eo.npy = optarg;
            break;
        case 'C':
            eo.encoder = optarg;
            break;
        case 't':
            if (cli_parse_template(optarg, &eo.tmpl))
                return cli_usage_error("eval", "--template is full or description");
            tmpl_set = 1;
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
    if (!books_path || !ratings_path)
        return cli_usage_error("eval", "--books FILE and --ratings FILE are required");
    br_engine eng[BR_ENGINE_COUNT];
    size_t ne = 0;
    int content = 0;
    if (!strcmp(engines_arg, "all")) {
        for (int i = 0; i < BR_ENGINE_COUNT; i++) eng[ne++] = (br_engine)i;
    } else {
        char *list = br_strdup(engines_arg), *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            br_engine e;
            if (br_engine_parse(t, &e) || ne == BR_ENGINE_COUNT) {
                int rc = cli_usage_error("eval", "unknown engine '%s'", t); /* t is in list */
                br_free(list);
                return rc;
            }
            eng[ne++] = e;
        }
        br_free(list);
        if (!ne) return cli_usage_error("eval", "--engines is empty");
    }
    /* What needs embeddings: the content engines, the notebook's hybrid,
     * and fusions or the hybrid when they use a content engine; and which
     * text each reads (the hybrid's is what tuning and learning use). An
     * engine without content goes with the hybrid's text: no extra fit. */
    br_book_template text[BR_ENGINE_COUNT];
    int reads[BR_ENGINE_COUNT]; /* engine i reads book embeddings */
    const br_book_template main_text = tmpl_set ? eo.tmpl : BR_TEXT_FULL;
    int need_text[2] = {0, 0};
    for (size_t i = 0; i < ne; i++) {
        int c_i = br_engine_needs_content(eng[i]);
        if (eng[i] == BR_ENGINE_HYBRID && (ho.w_content != 0 || ho.rerank)) c_i = 1;
        for (uint32_t j = 0; eng[i] == BR_ENGINE_RANK_FUSION && j < ho.fusion_n; j++)
            c_i |= br_engine_needs_content(ho.fusion[j]);
        for (uint32_t j = 0; eng[i] == BR_ENGINE_RRF && j < ho.rrf_n; j++)
            c_i |= br_engine_needs_content(ho.rrf[j]);
        reads[i] = c_i;
        text[i] = c_i && !tmpl_set && !eo.npy ? br_engine_template(eng[i]) : main_text;
        need_text[text[i]] |= c_i;
        content |= c_i;
    }
    need_text[main_text] |= do_tune;
    content |= do_tune;

    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat = NULL;
    br_ratings *ratings = NULL;
    br_split s = {0}, view = {0}, cold = {0};
    br_hybrid *h[2] = {NULL, NULL}, *hc[2] = {NULL, NULL};
    const br_hybrid *hs[BR_ENGINE_COUNT];
    float *emb[2] = {NULL, NULL};
    size_t dim = 0, embedded = 0;
    eval_row rows[BR_ENGINE_COUNT];
    json_t *doc = json_object(), *tuning = json_object(), *sl = json_object();
    uint32_t *newcomers = NULL;
    unsigned char *mask = NULL;
    int rc = CLI_OK;
    uint32_t k = (uint32_t)kk;
    br_status st = br_catalog_load(books_path, &lo, &cat, NULL);
    if (!st) st = br_ratings_load(ratings_path, cat, &lo, &ratings, NULL);
    if (!st) st = br_split_ratings(ratings, &so, &s);
    if (st) {
        rc = cli_fail("eval", st);
        goto out;
    }
    if (split_dir && write_split(&s, split_dir)) {
        rc = CLI_ERROR;
        goto out;
    }
    for (int t = 0; t < 2 && content; t++) {
        size_t n_emb = 0;
        if (!need_text[t]) continue;
        eo.tmpl = (br_book_template)t;
        if ((rc = cli_book_embeddings("eval", cat, &eo, &emb[t], &dim, &n_emb))) goto out;
        embedded += n_emb;
    }
    if (do_tune && (st = tune(&s, cat, emb[main_text], dim, so.seed, k, &ho, tuning, json)))
        goto fail;
    double learn_s = 0;
    int has_hybrid = 0;
    for (size_t i = 0; i < ne; i++) has_hybrid |= eng[i] == BR_ENGINE_HYBRID;
    if (has_hybrid && ho.rerank && learn &&
        (st = learn_rerank(&s, cat, emb[main_text], dim, so.seed, &ho, tuning, json, &learn_s)))
        goto fail;
    br_train_data td = train_of(&s);
    if ((st = fit_texts(&td, cat, emb, dim, &ho, eng, text, ne, h, hs))) goto fail;
    if ((st = eval_all(hs, &s, eng, ne, k, NULL, 0, rows))) goto fail;
    for (size_t i = 0; i < ne; i++)
        if (eng[i] == BR_ENGINE_HYBRID) rows[i].fit_s += learn_s;

    json_t *proto = json_pack(
        "{s:s, s:f, s:i, s:f, s:I, s:i, s:I, s:I, s:I, s:I, s:I}", "split",
        so.by_time ? "time" : "random", "test_fraction", (double)so.test_fraction, "min_ratings",
        (int)so.min_ratings, "relevant_min", (double)so.relevant_min, "seed", (json_int_t)so.seed,
        "k", (int)k, "readers", (json_int_t)s.n_users, "readers_evaluated",
        (json_int_t)s.n_eval_users, "readers_ranked", (json_int_t)rows[0].r.users_ranked,
        "train_ratings", (json_int_t)s.n_train, "test_ratings", (json_int_t)s.n_test);
    json_object_set_new(proto, "books", json_integer(s.n_books));
    json_t *texts = json_object();
    for (size_t i = 0; i < ne; i++)
        if (reads[i])
            json_object_set_new(texts, br_engine_name(eng[i]),
                                json_string(eo.npy ? "embeddings" : cli_template_name(text[i])));
    json_object_set_new(proto, "book_text", texts);
    json_object_set_new(doc, "embedded", json_integer((json_int_t)embedded));
    json_object_set_new(proto, "hybrid",
                        json_pack("{s:f, s:f, s:f, s:f, s:i, s:f}", "w_ease", (double)ho.w_ease,
                                  "w_als", (double)ho.w_als, "w_content", (double)ho.w_content,
                                  "w_popularity", (double)ho.w_popularity, "ease_items",
                                  (int)ho.ease.max_items, "ease_lambda", (double)ho.ease.lambda));
    json_object_set_new(doc, "default", json_string(br_engine_name(BR_ENGINE_HYBRID)));
    json_object_set_new(doc, "protocol", proto);
    json_object_set_new(doc, "engines", rows_json(rows, ne, k));
    if (do_tune || (has_hybrid && ho.rerank && learn))
        json_object_set_new(doc, "tuning", json_incref(tuning));
    if (!json) {
        printf("protocol: %s split, seed %llu, %u readers evaluated (%zu with a relevant "
               "held-out book), %zu training / %zu held-out ratings, %u books\n",
               so.by_time ? "time-ordered" : "random", (unsigned long long)so.seed, s.n_eval_users,
               rows[0].r.users_ranked, s.n_train, s.n_test, s.n_books);
        print_texts(eng, text, reads, ne, need_text, eo.npy);
        print_table("all readers", rows, ne, k);
    }

    if (slices) {
        /* Long tail: relevant books with at most 100 ratings in the data. */
        uint32_t *cnt = br_calloc((size_t)s.n_books + 1, sizeof *cnt);
        mask = br_calloc((size_t)s.n_books + 1, 1);
        if (!cnt || !mask) {
            br_free(cnt);
            st = br_error(BR_ENOMEM, "slices");
            goto fail;
        }
        const uint32_t *rb = br_ratings_books(ratings);
        for (size_t i = 0; i < br_ratings_count(ratings); i++) cnt[rb[i]]++;
        for (uint32_t b = 0; b < s.n_books; b++) mask[b] = cnt[b] <= 100;
        br_free(cnt);
        if ((st = filter_view(&s, mask, &view))) goto fail;
        if ((st = eval_all(hs, &view, eng, ne, k, NULL, 0, rows))) goto fail;
        json_object_set_new(sl, "long-tail", rows_json(rows, ne, k));
        if (!json)
            print_table("\nlong tail: relevant = held-out books with <= 100 ratings", rows, ne, k);
        free_view(&view);
        memset(&view, 0, sizeof view);
        /* Newcomers and cold books: one refit without them. */
        size_t n_new = 0;
        if ((st = make_cold(&s, so.seed, &cold, mask, &newcomers, &n_new))) goto fail;
        br_train_data cd = train_of(&cold);
        if ((st = fit_texts(&cd, cat, emb, dim, &ho, eng, text, ne, hc, hs))) goto fail;
        if ((st = eval_all(hs, &cold, eng, ne, k, newcomers, n_new, rows))) goto fail;
        json_object_set_new(sl, "newcomers", rows_json(rows, ne, k));
        if (!json)
            print_table("\nnewcomers: a quarter of the readers keep 1-3 training ratings", rows, ne,
                        k);
        if ((st = filter_view(&cold, mask, &view))) goto fail;
        if ((st = eval_all(hs, &view, eng, ne, k, NULL, 0, rows))) goto fail;
        json_object_set_new(sl, "cold-books", rows_json(rows, ne, k));
        if (!json)
            print_table("\ncold books: 5% of the books without any training rating; "
                        "relevant = those books",
                        rows, ne, k);
        json_object_set_new(doc, "slices", json_incref(sl));
    }
    if (json) {
        cli_print_json(doc);
        doc = NULL;
    }
    goto out;
fail:
    rc = cli_fail("eval", st);
out:
    free_view(&view);
    if (cold.train_user) free_cold(&cold);
    br_free(newcomers);
    br_free(mask);
    for (int t = 0; t < 2; t++) {
        br_hybrid_free(h[t]);
        br_hybrid_free(hc[t]);
        br_aligned_free(emb[t]);
    }
    br_split_free(&s);
    br_ratings_free(ratings);
    br_catalog_free(cat);
    json_decref(doc);
    json_decref(tuning);
    json_decref(sl);
    return rc;
}

const cli_command cli_cmd_eval = {"eval", "measure every engine on held-out ratings", run, usage};
