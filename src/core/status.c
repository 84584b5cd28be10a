/*
 * status.c: status codes, their messages, and the per-thread error detail
 * that names what failed ("books.csv:12: missing title").
 */
#include "bookrec/core.h"

#include <stdio.h>
#include <string.h>

#define BR_DETAIL_MAX 1024

static _Thread_local char detail[BR_DETAIL_MAX];

const char *br_strerror(br_status st)
{
    switch (st) {
    case BR_OK: return "success";
    case BR_ENOMEM: return "out of memory";
    case BR_EINVAL: return "invalid argument";
    case BR_EIO: return "input/output error";
    case BR_EPARSE: return "malformed input";
    case BR_ENOTFOUND: return "not found";
    case BR_EFORMAT: return "bad file format";
    case BR_EUNSUPPORTED: return "not supported";
    case BR_ERANGE: return "value out of range";
    case BR_EEXIST: return "already exists";
    case BR_ECANCELLED: return "cancelled";
    case BR_ESTORE: return "store error";
    case BR_ENET: return "network error";
    case BR_EINTERNAL: return "internal error";
    }
    return "unknown error";
}

const char *br_error_detail(void)
{
    return detail;
}

void br_error_clear(void)
{
    detail[0] = '\0';
}

br_status br_error(br_status st, const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    } else {
        snprintf(detail, sizeof detail, "%s", br_strerror(st));
    }
    return st;
}

const char *br_version(void)
{
    return BR_VERSION_STRING;
}
