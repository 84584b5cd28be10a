/*
 * engine.c: the engine registry, the one list of engines every caller
 * (the CLI, eval, train) names, parses and describes them by: names,
 * one-line summaries, what each needs (embeddings, one collaborative
 * model), which book text it reads by default, and the collaborative
 * engines' fit on their own.
 */
#include <string.h>

#include "bookrec/hybrid.h"

static const char *const engine_names[BR_ENGINE_COUNT] = {"popularity",
                                                          "svd",
                                                          "als",
                                                          "als-explicit",
                                                          "ease",
                                                          "content",
                                                          "content-favourite",
                                                          "content-cluster",
                                                          "notebook-hybrid",
                                                          "rank-fusion",
                                                          "rrf",
                                                          "hybrid"};

const char *br_engine_name(br_engine e)
{
    return (unsigned)e < BR_ENGINE_COUNT ? engine_names[e] : "?";
}

br_status br_engine_parse(const char *name, br_engine *out)
{
    if (!strcmp(name, "collab")) {
        *out = BR_ENGINE_SVD;
        return BR_OK;
    }
    for (int i = 0; i < BR_ENGINE_COUNT; i++)
        if (!strcmp(name, engine_names[i])) {
            *out = (br_engine)i;
            return BR_OK;
        }
    return br_error(BR_ENOTFOUND, "unknown engine '%s'", name);
}

int br_engine_predicts(br_engine e)
{
    return e == BR_ENGINE_SVD || e == BR_ENGINE_ALS_EXPLICIT;
}

static const char *const engine_summaries[BR_ENGINE_COUNT] = {
    "most-rated books (--popularity mean: damped mean rating)",
    "truncated SVD of the 0-filled matrix, predicted = U S V^T (the notebook)",
    "implicit-feedback ALS (confidence 1 + alpha * rating), CG solver",
    "rating-prediction ALS with biases, weighted-lambda",
    "item-item regression on rating weights, top 4000 books",
    "cosine to the reader's profile (book embeddings)",
    "cosine to the reader's favourite book",
    "the favourite book's tribe (the notebook's rule)",
    "0.5 min-max content + 0.5 min-max svd (the notebook)",
    "1/(rank+1) points from content-cluster and svd lists",
    "reciprocal-rank fusion (k 60) of ease, als and content",
    "bookrec's default: ease + als candidates, the learned re-ranker"};

const char *br_engine_summary(br_engine e)
{
    return (unsigned)e < BR_ENGINE_COUNT ? engine_summaries[e] : "?";
}

int br_engine_is_cf(br_engine e)
{
    return e == BR_ENGINE_POPULARITY || e == BR_ENGINE_SVD || e == BR_ENGINE_ALS ||
           e == BR_ENGINE_ALS_EXPLICIT;
}

br_status br_engine_fit_cf(br_engine e, const br_csr *r, const br_csr *rt,
                           const br_svd_options *svd, const br_als_options *als,
                           const br_popularity_options *pop, br_cf_model **out)
{
    br_als_options a = *als;
    switch (e) {
    case BR_ENGINE_POPULARITY:
        return br_popularity_fit(r, pop, out);
    case BR_ENGINE_SVD:
        return br_cf_svd_fit(r, rt, svd, out);
    case BR_ENGINE_ALS:
    case BR_ENGINE_ALS_EXPLICIT:
        a.kind = e == BR_ENGINE_ALS ? BR_ALS_IMPLICIT : BR_ALS_EXPLICIT;
        return br_als_fit(r, rt, &a, out);
    default:
        return br_error(BR_EINVAL, "engine %s is not one collaborative model", br_engine_name(e));
    }
}

int br_engine_needs_content(br_engine e)
{
    return e == BR_ENGINE_CONTENT || e == BR_ENGINE_CONTENT_FAVOURITE ||
           e == BR_ENGINE_CONTENT_CLUSTER || e == BR_ENGINE_NOTEBOOK_HYBRID;
}

br_book_template br_engine_template(br_engine e)
{
    /* The engines that reproduce the notebook's content recipe embed what
     * it embeds; bookrec's own engines read the whole book. */
    switch (e) {
    case BR_ENGINE_CONTENT_FAVOURITE:
    case BR_ENGINE_CONTENT_CLUSTER:
    case BR_ENGINE_NOTEBOOK_HYBRID:
    case BR_ENGINE_RANK_FUSION:
        return BR_TEXT_DESCRIPTION;
    default:
        return BR_TEXT_FULL;
    }
}
