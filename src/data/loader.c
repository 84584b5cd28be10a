/*
 * loader.c: helpers shared by the catalogue and ratings loaders.
 */
#include "data/loader.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/idcheck.h"

br_status br__loader_row_error(const br_load_options *opt, br_load_report *rep, br_status st)
{
    if (!opt->lenient || st == BR_ENOMEM || st == BR_ECANCELLED) return st;
    if (rep->skipped++ == 0)
        snprintf(rep->first_skip, sizeof rep->first_skip, "%s", br_error_detail());
    br_error_clear();
    return BR_OK;
}

br_status br__loader_check_width(const char *path, const br_csv_row *row, int want)
{
    if (row->n == want) return BR_OK;
    return br_error(BR_EPARSE, "%s:%zu: expected %d fields like the header, found %d", path,
                    row->line, want, row->n);
}

br_status br__loader_check_id(const char *path, size_t line, const char *column, const char *s,
                              size_t len)
{
    size_t i = br__id_bad_byte(s, len);
    if (i < len)
        return br_error(BR_EPARSE, "%s:%zu: %s holds a control character (0x%02x)", path, line,
                        column, (unsigned char)s[i]);
    return BR_OK;
}

static int only_spaces(const char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    return *s == '\0';
}

int br__parse_i64(const char *s, int64_t *out)
{
    if (only_spaces(s)) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !only_spaces(end)) return -1;
    *out = v;
    return 0;
}

int br__parse_float(const char *s, float *out)
{
    if (only_spaces(s)) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !only_spaces(end) || !isfinite(v)) return -1;
    *out = (float)v;
    return 0;
}
