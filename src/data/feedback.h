/*
 * feedback.h (internal): the feedback rule's shared helpers
 * (bookrec/data.h: br_rating_weight; feedback.c).
 */
#ifndef BR_DATA_FEEDBACK_H
#define BR_DATA_FEEDBACK_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/data.h"

/* m_u of a reader's n ratings vals (br_reader_mean). */
float br__feedback_mean(const float *vals, size_t n, float global_mean);

/* The content profile of one reader's n ratings (books[i] rated vals[i]),
 * emb (n_books, dim) L2-normalised rows: unit(sum of liked books x rating;
 * every book not disliked when none is liked) - BR_DISLIKE_PULL
 * unit(sum of disliked books x |weight|) (the whole of it when nothing
 * else is left), L2-normalised into out (dim,); neg (dim,) is scratch.
 * Returns 0 (out all zero) when the reader has no ratings. */
int br__feedback_profile(const float *emb, size_t dim, const uint32_t *books, const float *vals,
                         size_t n, float global_mean, float *out, float *neg);

#endif /* BR_DATA_FEEDBACK_H */
