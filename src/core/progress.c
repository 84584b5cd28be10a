/*
 * progress.c: throttled progress reporting for long jobs. Stages call
 * br_progress_update as often as they like; the callback sees at most a few
 * calls per second, plus the final one.
 */
#include "bookrec/core.h"

#include <time.h>

#define BR_PROGRESS_INTERVAL_NS 100000000ULL /* 10 updates per second */

static br_progress_fn progress_fn;
static void *progress_user;

void br_progress_set(br_progress_fn fn, void *user)
{
    progress_fn = fn;
    progress_user = user;
}

uint64_t br_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void br_progress_begin(br_progress *p, const char *stage, uint64_t total)
{
    p->stage = stage;
    p->total = total;
    p->last_ns = br_now_ns();
    p->cancelled = 0;
    if (progress_fn && progress_fn(stage, 0, total, progress_user)) p->cancelled = 1;
}

br_status br_progress_update(br_progress *p, uint64_t done)
{
    if (p->cancelled) return BR_ECANCELLED;
    if (!progress_fn) return BR_OK;
    uint64_t now = br_now_ns();
    if (now - p->last_ns < BR_PROGRESS_INTERVAL_NS) return BR_OK;
    p->last_ns = now;
    if (progress_fn(p->stage, done, p->total, progress_user)) {
        p->cancelled = 1;
        return br_error(BR_ECANCELLED, "%s: cancelled", p->stage);
    }
    return BR_OK;
}

br_status br_progress_end(br_progress *p)
{
    if (p->cancelled) return BR_ECANCELLED;
    if (progress_fn && progress_fn(p->stage, p->total, p->total, progress_user)) {
        p->cancelled = 1;
        return br_error(BR_ECANCELLED, "%s: cancelled", p->stage);
    }
    return BR_OK;
}
