/*
 * run.c: the evaluation protocol as one call (br_eval_run, bookrec/eval.h;
 * docs/evaluation.md), what `bookrec eval` prints and the Python bindings
 * call. Every engine is fitted once on the training part (br_hybrid_fit
 * shares what they have in common; one fit per book text, so each engine
 * ranks with its own embeddings) and ranked through br_eval_ranker. The
 * validation split that tunes the hybrid and learns its re-ranker is carved
 * from the training part only, never the held-out ratings.
 */
#include <string.h>

#include "bookrec/encoder.h"
#include "bookrec/eval.h"
#include "bookrec/hybrid.h"
#include "bookrec/npy.h"
#include "bookrec/text.h"

/* L2 penalty of the re-ranker on its standardised weights. */
#define RERANK_LAMBDA 1e-4
#define K_MAX         1000
/* The long tail: books with at most this many ratings in the whole data. */
#define LONG_TAIL_RATINGS 100
/* The protocols' shares (docs/evaluation.md): cold books of the rated
 * books, readers out of training of the readers evaluated. */
#define COLD_BOOK_FRACTION 0.1f
#define HELD_READER_FRACTION 0.2f

typedef enum protocol { PROTO_NONE, PROTO_RANDOM, PROTO_COLD_BOOKS, PROTO_READERS } protocol;
static const char *const protocol_names[] = {NULL, "random", "cold-books", "readers"};

static const char *const text_names[2] = {"full", "description"};

typedef struct run {
    const br_eval_options *o;
    br_eval_report *rep;
    br_engine eng[BR_ENGINE_COUNT];
    size_t ne;
    br_book_template text[BR_ENGINE_COUNT]; /* the text engine i ranks with */
    int reads[BR_ENGINE_COUNT];             /* engine i reads book embeddings */
    br_book_template main_text;             /* the hybrid's (tuning and learning) */
    int need_text[2], content;
    br_hybrid_options ho;
    br_catalog *cat;
    br_ratings *ratings;
    br_split s;
    float *emb[2];
    size_t dim;
    br_progress prog;
    uint64_t step;
    protocol proto;
} run;

void br_eval_options_default(br_eval_options *o)
{
    memset(o, 0, sizeof *o);
    o->k = 10;
    o->split = (br_split_options)BR_SPLIT_OPTIONS_DEFAULT;
    o->learn = 1;
}

void br_eval_report_free(br_eval_report *rep)
{
    if (!rep) return;
    for (size_t i = 0; i < rep->n_slices; i++) br_free(rep->slices[i].figures);
    br_free(rep->slices);
    br_free(rep->engines);
    br_free((char *)rep->embeddings);
    br_free((char *)rep->encoder);
    br_free((char *)rep->cache_file);
    br_free((char *)rep->protocol);
    br_free(rep->hybrid);
    br_free(rep->rerank);
    br_free(rep);
}

/* One step of the protocol done: the "eval" stage moves on, and a caller
 * that asked to stop is heard between steps that report nothing. */
static br_status step_done(run *r)
{
    return br_progress_update(&r->prog, ++r->step);
}

/* The engines and which book text each reads: the content engines, the
 * notebook's hybrid, and fusions or the hybrid when they use a content
 * engine read one; the hybrid's text is what tuning and learning use. An
 * engine without content goes with the hybrid's text: no extra fit. */
static br_status plan(run *r)
{
    const br_eval_options *o = r->o;
    if (o->k < 1 || o->k > K_MAX)
        return br_error(BR_EINVAL, "eval: k %u is not in 1..%d", o->k, K_MAX);
    if (!o->books || !o->ratings)
        return br_error(BR_EINVAL, "eval: the books and ratings files are required");
    if (o->protocol) {
        for (int p = PROTO_RANDOM; p <= PROTO_READERS && !r->proto; p++)
            if (!strcmp(o->protocol, protocol_names[p])) r->proto = (protocol)p;
        if (!r->proto)
            return br_error(BR_EINVAL, "eval: protocol '%s': random, cold-books or readers",
                            o->protocol);
        if (o->slices && r->proto != PROTO_RANDOM)
            return br_error(BR_EINVAL, "eval: slices are measured on the random protocol only");
        if (r->proto != PROTO_RANDOM && o->split.by_time)
            return br_error(BR_EINVAL, "eval: the %s protocol is not split by time", o->protocol);
    }
    if (o->engines) {
        if (!o->n_engines) return br_error(BR_EINVAL, "eval: no engine");
        if (o->n_engines > BR_ENGINE_COUNT)
            return br_error(BR_EINVAL, "eval: %zu engines, at most %d", o->n_engines,
                            BR_ENGINE_COUNT);
        for (size_t i = 0; i < o->n_engines; i++)
            if (!o->engines[i] || br_engine_parse(o->engines[i], &r->eng[r->ne++]))
                return br_error(BR_EINVAL, "eval: unknown engine '%s'",
                                o->engines[i] ? o->engines[i] : "(null)");
    } else {
        for (int i = 0; i < BR_ENGINE_COUNT; i++) r->eng[r->ne++] = (br_engine)i;
    }
    int tmpl_set = o->text != NULL;
    r->main_text = BR_TEXT_FULL;
    if (tmpl_set) {
        if (!strcmp(o->text, text_names[BR_TEXT_FULL]))
            r->main_text = BR_TEXT_FULL;
        else if (!strcmp(o->text, text_names[BR_TEXT_DESCRIPTION]))
            r->main_text = BR_TEXT_DESCRIPTION;
        else
            return br_error(BR_EINVAL, "eval: book text '%s': full or description", o->text);
    }
    if (o->hybrid)
        r->ho = *o->hybrid;
    else
        br_hybrid_options_default(&r->ho);
    const br_hybrid_options *ho = &r->ho;
    for (size_t i = 0; i < r->ne; i++) {
        br_engine e = r->eng[i];
        int c_i = br_engine_needs_content(e);
        if (e == BR_ENGINE_HYBRID && (ho->w_content != 0 || ho->rerank)) c_i = 1;
        for (uint32_t j = 0; e == BR_ENGINE_RANK_FUSION && j < ho->fusion_n; j++)
            c_i |= br_engine_needs_content(ho->fusion[j]);
        for (uint32_t j = 0; e == BR_ENGINE_RRF && j < ho->rrf_n; j++)
            c_i |= br_engine_needs_content(ho->rrf[j]);
        r->reads[i] = c_i;
        r->text[i] = c_i && !tmpl_set && !o->embeddings ? br_engine_template(e) : r->main_text;
        r->need_text[r->text[i]] |= c_i;
        r->content |= c_i;
    }
    r->need_text[r->main_text] |= o->tune != 0;
    r->content |= o->tune != 0;
    return BR_OK;
}

/* The encoder as `bookrec` names it: "bert:DIR" is the model directory,
 * anything else a model in the default place. */
static br_status open_encoder(const char *name, br_encoder **enc)
{
    char path[4200];
    if (!strncmp(name, BR_ENCODER_BERT_PREFIX, strlen(BR_ENCODER_BERT_PREFIX)))
        return br_encoder_open(name, enc);
    br_status st = br_encoder_model_path(name, path, sizeof path);
    return st ? st : br_encoder_open(path, enc);
}

/* Book embeddings of every text an engine reads: from the given .npy, or
 * from the encoder through the embedding caches. */
static br_status embed(run *r)
{
    const br_eval_options *o = r->o;
    br_eval_report *rep = r->rep;
    size_t nb = br_catalog_count(r->cat);
    const char *key = o->encoder ? o->encoder : "use-lite";
    int none = o->cache && !strcmp(o->cache, "none");
    br_encoder *enc = NULL;
    char dir[4096], shared[4300] = "";
    br_status st = BR_OK;
    if (!(rep->encoder = br_strdup(key))) return br_error(BR_ENOMEM, "eval: encoder");
    for (int t = 0; t < 2 && r->content && !st; t++) {
        if (!r->need_text[t]) continue;
        if (o->embeddings) {
            br_array a;
            if ((st = br_npy_read(o->embeddings, BR_DTYPE_F32, &a))) break;
            if (a.rows != nb) {
                br_array_free(&a);
                st = br_error(BR_EINVAL, "%s: %zu rows, the catalogue has %zu books", o->embeddings,
                              a.rows, nb);
                break;
            }
            r->dim = a.cols;
            r->emb[t] = a.data; /* br_aligned_alloc'd: released with br_aligned_free */
            continue;
        }
        if (!enc) {
            /* The cache key names what makes the vectors: the encoder. */
            if ((st = open_encoder(key, &enc))) break;
            if (!none && (st = br_embed_cache_dir(dir, sizeof dir))) break;
            if (!none && *dir && (st = br_embed_cache_file(dir, key, shared, sizeof shared))) break;
            r->dim = br_encoder_dim(enc);
        }
        br_embed_caches caches = {none ? NULL : o->cache, none ? "" : NULL};
        r->emb[t] = br_aligned_alloc(nb * r->dim * sizeof(float) + 64, BR_ALIGN);
        if (!r->emb[t]) {
            st = br_error(BR_ENOMEM, "embeddings");
            break;
        }
        uint64_t t0 = br_now_ns();
        st = br_embed_catalog_in(enc, key, r->cat, (br_book_template)t, &caches, r->emb[t],
                                 &rep->text[t].embedded);
        rep->text[t].seconds = (double)(br_now_ns() - t0) / 1e9;
        rep->embedded += rep->text[t].embedded;
    }
    br_encoder_close(enc);
    if (!st && !(rep->cache_file = br_strdup(shared))) st = br_error(BR_ENOMEM, "eval: cache");
    return st;
}

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

/* EASE settings by the item-item model's own validation NDCG, then the
 * blend weights by the hybrid's. Writes the winners into r->ho. */
static br_status tune(run *r)
{
    br_hybrid_options *o = &r->ho;
    br_eval_tuning *tu = &r->rep->tuning;
    const float *emb = r->emb[r->main_text];
    uint32_t k = r->o->k;
    br_split val;
    br_status st = validation_split(&r->s, r->o->split.seed, &val);
    if (st) return st;
    br_train_data td = train_of(&val);
    static const float lambdas[] = {60, 100, 150};
    static const float weights[][5] = {
        {1, 1, 1, 1, 1}, {0.2f, 0.3f, 0.5f, 1.0f, 1.3f}, {0.3f, 0.3f, 0.3f, 1.3f, 1.3f}};
    double best = -1;
    br_ease_options best_e = o->ease;
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
            tu->ease[tu->n_ease].lambda = lambdas[a];
            memcpy(tu->ease[tu->n_ease].weight, weights[b], sizeof tu->ease[0].weight);
            tu->ease[tu->n_ease++].ndcg = nd;
            if (nd > best) best = nd, best_e = t.ease;
            if (!st) st = step_done(r);
        }
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
    if (!st) st = br_hybrid_fit(&td, r->cat, emb, r->dim, o, need, emb ? 4 : 3, &h);
    if (!st) st = br_hybrid_tune(h, &val, k, (const float(*)[4])grid, ng, nd);
    br_hybrid_free(h);
    if (!st) {
        size_t bi = 0;
        for (size_t g = 1; g < ng; g++)
            if (nd[g] > nd[bi]) bi = g;
        o->w_ease = grid[bi][0], o->w_als = grid[bi][1], o->w_content = grid[bi][2];
        o->w_popularity = grid[bi][3];
        tu->ease_lambda = o->ease.lambda;
        tu->ease_ndcg = best;
        tu->w_ease = o->w_ease, tu->w_als = o->w_als, tu->w_content = o->w_content;
        tu->w_popularity = o->w_popularity;
        tu->ndcg = nd[bi];
        r->rep->tuned = 1;
    }
    br_split_free(&val);
    return st;
}

/* The default hybrid's re-ranker, learned on the validation split: the
 * components are fitted on its training part, their candidates for its
 * readers labelled by its held-out ratings. Writes the coefficients and
 * the candidate depth into r->ho. */
static br_status learn_rerank(run *r)
{
    br_eval_report *rep = r->rep;
    br_hybrid_options *o = &r->ho;
    uint64_t t0 = br_now_ns();
    br_split val;
    if (!(rep->rerank = br_calloc(1, sizeof *rep->rerank)))
        return br_error(BR_ENOMEM, "eval: rerank");
    br_status st = validation_split(&r->s, r->o->split.seed, &val);
    if (st) return st;
    br_train_data td = train_of(&val);
    br_hybrid *h = NULL;
    br_engine e = BR_ENGINE_HYBRID;
    uint64_t t1 = 0;
    if (!(st = br_hybrid_fit(&td, r->cat, r->emb[r->main_text], r->dim, o, &e, 1, &h))) {
        t1 = br_now_ns();
        st = br_hybrid_learn_rerank(h, &val, 0, RERANK_LAMBDA, o->rerank_coef, rep->rerank);
        rep->rerank_fit_seconds = (double)(t1 - t0) * 1e-9;
        rep->rerank_learn_seconds = (double)(br_now_ns() - t1) * 1e-9;
    }
    br_hybrid_free(h);
    br_split_free(&val);
    if (st) return st;
    o->cand_ease = o->cand_als = rep->rerank->cand;
    rep->rerank_seconds = (double)(br_now_ns() - t0) * 1e-9;
    return BR_OK;
}

/* One br_hybrid per book text (h[BR_TEXT_FULL], h[BR_TEXT_DESCRIPTION])
 * over the engines that read it, so that each engine ranks with its own
 * embeddings, as `recommend --engine` would; hs[i] is engine i's. */
static br_status fit_texts(run *r, const br_split *s, br_hybrid *h[2], const br_hybrid **hs)
{
    br_train_data td = train_of(s);
    for (int t = 0; t < 2; t++) {
        br_engine list[BR_ENGINE_COUNT];
        size_t n = 0;
        for (size_t i = 0; i < r->ne; i++)
            if ((int)r->text[i] == t) list[n++] = r->eng[i];
        if (!n) continue;
        br_status st =
            br_hybrid_fit(&td, r->cat, r->emb[t], r->emb[t] ? r->dim : 0, &r->ho, list, n, &h[t]);
        if (st) return st;
    }
    for (size_t i = 0; i < r->ne; i++) hs[i] = h[r->text[i]];
    return step_done(r);
}

/* Every engine on s (users/n_users restrict the readers, NULL: all), as
 * the next slice of the report. */
static br_status eval_all(run *r, const char *name, const br_hybrid *const *hs, const br_split *s,
                          const uint32_t *users, size_t n_users)
{
    br_eval_report *rep = r->rep;
    br_eval_slice *sl = &rep->slices[rep->n_slices];
    sl->name = name;
    if (!(sl->figures = br_calloc(r->ne, sizeof *sl->figures)))
        return br_error(BR_ENOMEM, "eval: slice");
    rep->n_slices++;
    for (size_t i = 0; i < r->ne; i++) {
        br_hybrid_engine c = {hs[i], r->eng[i]};
        br_ranker rk = br_hybrid_ranker(&c);
        sl->figures[i].fit_seconds = br_hybrid_fit_seconds(hs[i], r->eng[i]);
        br_status st = r->proto ? br_eval_ranker_deep(s, &rk, r->o->k, users, n_users,
                                                      &sl->figures[i].r)
                                : br_eval_ranker(s, &rk, r->o->k, users, n_users,
                                                 &sl->figures[i].r);
        if (st) return st;
    }
    return step_done(r);
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
    memset(v, 0, sizeof *v);
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
    memset(c, 0, sizeof *c);
}

/* The long tail (no refit), then newcomers and cold books (one refit
 * without them). */
static br_status slices(run *r, const br_hybrid *const *hs_all)
{
    const br_split *s = &r->s;
    br_split view = {0}, cold = {0};
    br_hybrid *hc[2] = {NULL, NULL};
    const br_hybrid *hs[BR_ENGINE_COUNT];
    uint32_t *newcomers = NULL;
    size_t n_new = 0;
    uint32_t *cnt = br_calloc((size_t)s->n_books + 1, sizeof *cnt);
    unsigned char *mask = br_calloc((size_t)s->n_books + 1, 1);
    br_status st = BR_OK;
    if (!cnt || !mask) {
        st = br_error(BR_ENOMEM, "slices");
        goto out;
    }
    const uint32_t *rb = br_ratings_books(r->ratings);
    for (size_t i = 0; i < br_ratings_count(r->ratings); i++) cnt[rb[i]]++;
    for (uint32_t b = 0; b < s->n_books; b++) mask[b] = cnt[b] <= LONG_TAIL_RATINGS;
    if ((st = filter_view(s, mask, &view))) goto out;
    if ((st = eval_all(r, "long-tail", hs_all, &view, NULL, 0))) goto out;
    free_view(&view);
    if ((st = make_cold(s, r->o->split.seed, &cold, mask, &newcomers, &n_new))) goto out;
    if ((st = fit_texts(r, &cold, hc, hs))) goto out;
    if ((st = eval_all(r, "newcomers", hs, &cold, newcomers, n_new))) goto out;
    if ((st = filter_view(&cold, mask, &view))) goto out;
    st = eval_all(r, "cold-books", hs, &view, NULL, 0);
out:
    free_view(&view);
    if (cold.train_user) free_cold(&cold);
    for (int t = 0; t < 2; t++) br_hybrid_free(hc[t]);
    br_free(newcomers);
    br_free(mask);
    br_free(cnt);
    return st;
}

static br_status report_setup(run *r)
{
    br_eval_report *rep = r->rep;
    if (r->proto && !(rep->protocol = br_strdup(protocol_names[r->proto])))
        return br_error(BR_ENOMEM, "eval: report");
    rep->split = r->o->split;
    rep->k = r->o->k;
    rep->n_engines = r->ne;
    rep->engines = br_calloc(r->ne, sizeof *rep->engines);
    rep->slices = br_calloc(4, sizeof *rep->slices);
    rep->hybrid = br_malloc(sizeof *rep->hybrid);
    if (r->o->embeddings && !(rep->embeddings = br_strdup(r->o->embeddings)))
        return br_error(BR_ENOMEM, "eval: report");
    if (!rep->engines || !rep->slices || !rep->hybrid) return br_error(BR_ENOMEM, "eval: report");
    for (int t = 0; t < 2; t++) {
        rep->text[t].name = text_names[t];
        rep->text[t].used = r->need_text[t];
    }
    for (size_t i = 0; i < r->ne; i++) {
        rep->engines[i].name = br_engine_name(r->eng[i]);
        if (r->reads[i])
            rep->engines[i].text = r->o->embeddings ? "embeddings" : text_names[r->text[i]];
    }
    return BR_OK;
}

br_status br_eval_run(const br_eval_options *opt, br_eval_report **out)
{
    if (!out) return br_error(BR_EINVAL, "eval: no report");
    *out = NULL;
    if (!opt) return br_error(BR_EINVAL, "eval: no options");
    run r = {.o = opt};
    br_hybrid *h[2] = {NULL, NULL};
    const br_hybrid *hs[BR_ENGINE_COUNT];
    br_status st = BR_OK;
    if (!(r.rep = br_calloc(1, sizeof *r.rep))) return br_error(BR_ENOMEM, "eval: report");
    if ((st = plan(&r)) || (st = report_setup(&r))) goto out;
    int has_hybrid = 0;
    for (size_t i = 0; i < r.ne; i++) has_hybrid |= r.eng[i] == BR_ENGINE_HYBRID;
    int learn = has_hybrid && r.ho.rerank && opt->learn;
    /* The steps: load, split, embed, each tuning fit, learning, a fit and
     * an evaluation per slice. */
    uint64_t steps =
        5 + (opt->tune ? BR_EVAL_TUNE_EASE + 1 : 0) + (uint64_t)learn + (opt->slices ? 4 : 0);
    br_progress_begin(&r.prog, "eval", steps);

    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    if ((st = br_catalog_load(opt->books, &lo, &r.cat, NULL))) goto out;
    if ((st = br_ratings_load(opt->ratings, r.cat, &lo, &r.ratings, NULL))) goto out;
    if ((st = step_done(&r))) goto out;
    if (r.proto == PROTO_COLD_BOOKS)
        st = br_split_cold_books(r.ratings, &opt->split, COLD_BOOK_FRACTION, &r.s);
    else if (r.proto == PROTO_READERS)
        st = br_split_readers(r.ratings, &opt->split, HELD_READER_FRACTION, &r.s);
    else
        st = br_split_ratings(r.ratings, &opt->split, &r.s);
    if (st) goto out;
    for (uint32_t b = 0; r.s.candidate && b < r.s.n_books; b++)
        r.rep->n_cold_books += r.s.candidate[b];
    for (uint32_t u = 0; r.s.fold_in && u < r.s.n_users; u++)
        r.rep->n_fold_readers += r.s.fold_in[u];
    if (opt->write_split && (st = br_split_write(&r.s, opt->write_split))) goto out;
    if ((st = step_done(&r))) goto out;
    if ((st = embed(&r)) || (st = step_done(&r))) goto out;
    if (opt->tune && ((st = tune(&r)) || (st = step_done(&r)))) goto out;
    double learn_s = 0;
    if (learn) {
        if ((st = learn_rerank(&r)) || (st = step_done(&r))) goto out;
        learn_s = r.rep->rerank_seconds;
    }
    /* Only the test fit folds readers in and restricts the lists: the
     * validation fits above train on the training readers' ratings and
     * rank every book. */
    r.ho.fold_in = r.s.fold_in;
    r.ho.rank_only = r.s.candidate;
    st = fit_texts(&r, &r.s, h, hs);
    r.ho.fold_in = r.ho.rank_only = NULL;
    if (st) goto out;
    if ((st = eval_all(&r, "all", hs, &r.s, NULL, 0))) goto out;
    for (size_t i = 0; i < r.ne; i++)
        if (r.eng[i] == BR_ENGINE_HYBRID) r.rep->slices[0].figures[i].fit_seconds += learn_s;
    br_eval_report *rep = r.rep;
    rep->n_users = r.s.n_users;
    rep->n_books = r.s.n_books;
    rep->n_eval_users = r.s.n_eval_users;
    rep->n_ranked = rep->slices[0].figures[0].r.users_ranked;
    rep->n_train = r.s.n_train;
    rep->n_test = r.s.n_test;
    *rep->hybrid = r.ho;
    if (opt->slices && (st = slices(&r, hs))) goto out;
    st = br_progress_end(&r.prog);
out:
    for (int t = 0; t < 2; t++) {
        br_hybrid_free(h[t]);
        br_aligned_free(r.emb[t]);
    }
    br_split_free(&r.s);
    br_ratings_free(r.ratings);
    br_catalog_free(r.cat);
    if (st)
        br_eval_report_free(r.rep);
    else
        *out = r.rep;
    return st;
}
