/*
 * csvread.h (internal): the CSV reader under the catalogue and ratings
 * loaders. libcsv does the RFC 4180 parsing; this layer adds what a data
 * loader needs: physical line numbers for error messages, header lookup by
 * name, UTF-8 validation, BOM and CRLF handling, and mmap'd input.
 */
#ifndef BR_DATA_CSVREAD_H
#define BR_DATA_CSVREAD_H

#include <stddef.h>

#include "bookrec/core.h"

#define BR_CSV_MAX_FIELDS 64

typedef struct br_csv_row {
    size_t line;    /* physical line (1-based) where the record starts */
    int n;          /* fields in this record */
    const char *field[BR_CSV_MAX_FIELDS]; /* NUL-terminated, valid during the callback */
    size_t len[BR_CSV_MAX_FIELDS];
} br_csv_row;

/* Called once per record, header included (row->line == first line).
 * Return BR_OK to go on; any other status stops the read and is returned
 * (the callback sets the error detail). */
typedef br_status (*br_csv_row_fn)(const br_csv_row *row, void *user);

/* Reads `path` record by record. Fails with a "path:line: ..." detail on an
 * unreadable or empty file, malformed quoting, invalid UTF-8 or a record
 * with more than BR_CSV_MAX_FIELDS fields. `progress_stage` (may be NULL)
 * reports bytes read. */
br_status br__csv_read(const char *path, br_csv_row_fn fn, void *user, const char *progress_stage);

/* Index of the header field named `name`, or -1. */
int br__csv_column(const br_csv_row *header, const char *name);

#endif
