/*
 * loader.h (internal): what the catalogue and ratings loaders share: the
 * lenient-mode bookkeeping, a string arena, and strict number parsing.
 */
#ifndef BR_DATA_LOADER_H
#define BR_DATA_LOADER_H

#include "bookrec/data.h"
#include "data/csvread.h"

/* A row-level problem: in strict mode it stops the load with `st` (the
 * detail is already set); in lenient mode the row is skipped and counted. */
br_status br_loader_row_error(const br_load_options *opt, br_load_report *rep, br_status st);

/* Fails unless the record has as many fields as the header. */
br_status br_loader_check_width(const char *path, const br_csv_row *row, int want);

/* Growing byte arena; strings are addressed by offset until the load ends. */
typedef struct br_arena {
    char *buf;
    size_t used, cap;
} br_arena;

/* Appends s[0..n) plus a NUL; *off receives its offset. */
br_status br_arena_push(br_arena *a, const char *s, size_t n, size_t *off);

/* Whole-string parses; 0 on success. Leading/trailing spaces are allowed. */
int br_parse_i64(const char *s, int64_t *out);
int br_parse_float(const char *s, float *out);

#endif
