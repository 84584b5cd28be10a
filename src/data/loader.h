/*
 * loader.h (internal): what the catalogue and ratings loaders share: the
 * lenient-mode bookkeeping and strict number parsing. Their strings live
 * in a pool (core/sbuf.h, br__sb_push), addressed by offset.
 */
#ifndef BR_DATA_LOADER_H
#define BR_DATA_LOADER_H

#include "bookrec/data.h"
#include "core/sbuf.h"
#include "data/csvread.h"

/* A row-level problem: in strict mode it stops the load with `st` (the
 * detail is already set); in lenient mode the row is skipped and counted. */
br_status br__loader_row_error(const br_load_options *opt, br_load_report *rep, br_status st);

/* Fails unless the record has as many fields as the header. */
br_status br__loader_check_width(const char *path, const br_csv_row *row, int want);

/* Fails unless an id (the `column` of the record at `line`) is free of
 * control characters (core/idcheck.h's rule). */
br_status br__loader_check_id(const char *path, size_t line, const char *column, const char *s,
                              size_t len);

/* Whole-string parses; 0 on success. Leading/trailing spaces are allowed. */
int br__parse_i64(const char *s, int64_t *out);
int br__parse_float(const char *s, float *out);

#endif
