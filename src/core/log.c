/*
 * log.c: the library's log callback. Silent by default; the CLI installs a
 * callback that writes to stderr when asked to be verbose.
 */
#include "bookrec/core.h"

#include <stdio.h>

static br_log_fn log_fn;
static void *log_user;
static br_log_level log_min = BR_LOG_INFO;

void br_log_set(br_log_fn fn, void *user, br_log_level min_level)
{
    log_fn = fn;
    log_user = user;
    log_min = min_level;
}

void br_log(br_log_level level, const char *fmt, ...)
{
    if (!log_fn || level < log_min) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_fn(level, buf, log_user);
}
