/*
 * topk.h (internal): batched partial sort, the last step of top-N
 * recommendation. Pure kernels: caller-owned buffers, no allocation.
 *
 * Order: higher score first, ties by lower column index. Entries that are
 * -INFINITY or NaN are never selected (callers mask excluded columns with
 * -INFINITY). Rows with fewer than n selectable entries are padded with
 * index UINT32_MAX and score -INFINITY.
 */
#ifndef BR_LINALG_TOPK_H
#define BR_LINALG_TOPK_H

#include <stddef.h>
#include <stdint.h>

/* For each of `rows` rows of scores (rows, cols) with row stride ld:
 * idx (rows, n) and val (rows, n). A bounded min-heap per row: one compare
 * per entry against the current n-th best, O(cols + n log n) typical. */
void topk_rows(const float *scores, size_t rows, size_t cols, size_t ld, uint32_t n, uint32_t *idx,
               float *val);
/* The oracle: sorts every selectable entry of the row. Allocates. */
void topk_rows_ref(const float *scores, size_t rows, size_t cols, size_t ld, uint32_t n,
                   uint32_t *idx, float *val);

#endif
