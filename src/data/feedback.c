/*
 * feedback.c: the one rule that reads a rating as liked, neutral or
 * disliked (bookrec/data.h, docs/evaluation.md "Negative feedback"), and
 * the content profile built with it, which the content engine, the
 * default hybrid and `similar --user` share.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "data/feedback.h"

float br_reader_mean(double sum, size_t n, float global_mean)
{
    return (float)((sum + BR_FEEDBACK_PRIOR * (double)global_mean) /
                   ((double)n + BR_FEEDBACK_PRIOR));
}

int br_rating_is_dislike(float rating, float reader_mean)
{
    /* a NAN mean fails the comparison: the relative half never fires */
    return rating <= BR_DISLIKE_MAX || reader_mean - rating >= BR_DISLIKE_MARGIN;
}

float br_rating_weight(float rating, float reader_mean)
{
    float below = reader_mean - rating;
    if (br_rating_is_dislike(rating, reader_mean))
        return -(below < 1.0f ? 1.0f : below > 2.0f ? 2.0f : below);
    return rating >= BR_LIKE_MIN ? rating : 0.0f;
}

float br__feedback_mean(const float *vals, size_t n, float global_mean)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += vals[i];
    return br_reader_mean(sum, n, global_mean);
}

int br__feedback_profile(const float *emb, size_t dim, const uint32_t *books, const float *vals,
                         size_t n, float global_mean, float *out, float *neg)
{
    memset(out, 0, dim * sizeof *out);
    memset(neg, 0, dim * sizeof *neg);
    float m = br__feedback_mean(vals, n, global_mean);
    int any_liked = 0, any_neg = 0, any_pos = 0;
    for (size_t q = 0; q < n; q++) any_liked |= br_rating_weight(vals[q], m) > 0;
    for (size_t q = 0; q < n; q++) {
        float w = br_rating_weight(vals[q], m);
        const float *e = emb + (size_t)books[q] * dim;
        if (w < 0) {
            cblas_saxpy((int)dim, -w, e, 1, neg, 1);
            any_neg = 1;
            continue;
        }
        /* neutral books count (by their rating) only for a reader who
         * liked nothing */
        if (w == 0 && any_liked) continue;
        if (w == 0) w = vals[q] > 0 ? vals[q] : 1e-6f;
        cblas_saxpy((int)dim, w, e, 1, out, 1);
        any_pos = 1;
    }
    float np = cblas_snrm2((int)dim, out, 1), nn = cblas_snrm2((int)dim, neg, 1);
    if (np > 0) cblas_sscal((int)dim, 1.0f / np, out, 1);
    if (nn > 0) cblas_saxpy((int)dim, -(any_pos ? BR_DISLIKE_PULL : 1.0f) / nn, neg, 1, out, 1);
    float nrm = cblas_snrm2((int)dim, out, 1);
    if (nrm > 0) cblas_sscal((int)dim, 1.0f / nrm, out, 1);
    return any_pos || any_neg;
}
