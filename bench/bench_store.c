/*
 * bench_store.c: the serving store's two figures that matter: how fast a
 * model version publishes (readers x recs), and how many get_recs point
 * reads per second it then serves, with per-read latency percentiles.
 *
 *   bench_store --uri URI [--users N] [--recs K] [--reads R] [--threads T]
 *               [--no-publish] [--json] [--mode recs|separate|reader]
 *               [--events E]
 *
 * --mode: what one timed read is: get_recs (default); what `bookrec serve`
 * needs per request as three calls (get_recs, get_recent, get_seen); the
 * same as one br_store_get_reader. --events E first gives every reader E
 * interactions (and as many seen books) so those parts are not empty.
 *
 * Book ids are "b" + a number below 100,000 (the generated universe's
 * size), scores descending; readers are "u0".."u{N-1}", read in a random
 * order (xoshiro, fixed seed) so the reads are not a sequential scan.
 * bench/store.sh runs it against LMDB and Redis with redis-benchmark as
 * the peer.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bookrec/bookrec.h"

enum { MODE_RECS, MODE_SEPARATE, MODE_READER };
static const char *const mode_names[] = {"get_recs", "separate reads", "get_reader"};

typedef struct worker {
    br_store *s;
    int mode;
    uint64_t users, reads, seed;
    uint64_t *lat; /* ns per read */
    uint64_t failed;
    br_status st;
} worker;

static void *reader(void *arg)
{
    worker *w = arg;
    br_rng rng;
    br_rng_seed(&rng, w->seed);
    br_store_rec out[128];
    br_store_interaction recent[BR_STORE_RECENT_MAX];
    char u[32];
    for (uint64_t i = 0; i < w->reads; i++) {
        snprintf(u, sizeof u, "u%llu", (unsigned long long)br_rng_below(&rng, w->users));
        size_t n;
        uint64_t t0 = br_now_ns();
        br_status st;
        if (w->mode == MODE_READER) {
            br_store_reader r = {
                .recs = out, .recs_cap = 128, .recent = recent, .recent_cap = BR_STORE_RECENT_MAX};
            st = br_store_get_reader(w->s, u, &r);
            br_store_reader_free(&r);
        } else {
            st = br_store_get_recs(w->s, u, out, 128, &n, NULL);
            if (st == BR_OK && w->mode == MODE_SEPARATE) {
                br_store_ids *seen = NULL;
                st = br_store_get_recent(w->s, u, recent, BR_STORE_RECENT_MAX, &n);
                if (st == BR_OK) st = br_store_get_seen(w->s, u, &seen);
                br_free(seen);
            }
        }
        w->lat[i] = br_now_ns() - t0;
        if (st != BR_OK) {
            w->failed++;
            w->st = st;
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int fail(const char *what, br_status st)
{
    fprintf(stderr, "bench_store: %s: %s: %s\n", what, br_strerror(st), br_error_detail());
    return 1;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"uri", required_argument, 0, 'u'},     {"users", required_argument, 0, 'n'},
        {"recs", required_argument, 0, 'k'},    {"reads", required_argument, 0, 'r'},
        {"threads", required_argument, 0, 't'}, {"no-publish", no_argument, 0, 'P'},
        {"json", no_argument, 0, 'j'},          {"mode", required_argument, 0, 'm'},
        {"events", required_argument, 0, 'e'},  {0, 0, 0, 0}};
    const char *uri = NULL;
    uint64_t users = 100000, recs = 100, reads = 200000, threads = 1, events = 0;
    int publish = 1, json = 0, mode = MODE_RECS, c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'u': uri = optarg; break;
        case 'n': users = strtoull(optarg, NULL, 10); break;
        case 'k': recs = strtoull(optarg, NULL, 10); break;
        case 'r': reads = strtoull(optarg, NULL, 10); break;
        case 't': threads = strtoull(optarg, NULL, 10); break;
        case 'P': publish = 0; break;
        case 'j': json = 1; break;
        case 'e': events = strtoull(optarg, NULL, 10); break;
        case 'm':
            mode = !strcmp(optarg, "recs")       ? MODE_RECS
                   : !strcmp(optarg, "separate") ? MODE_SEPARATE
                   : !strcmp(optarg, "reader")   ? MODE_READER
                                                 : -1;
            if (mode < 0) return 2;
            break;
        default: return 2;
        }
    }
    if (!uri || users == 0 || recs == 0 || recs > 128 || threads == 0 || threads > 64) {
        fprintf(stderr, "usage: bench_store --uri URI [--users N] [--recs K<=128] [--reads R] "
                        "[--threads T<=64] [--no-publish] [--json] "
                        "[--mode recs|separate|reader] [--events E]\n");
        return 2;
    }
    br_store *s;
    br_status st = br_store_open(uri, 0, &s);
    if (st != BR_OK) return fail("open", st);
    const char *backend = br_store_backend(s);

    if (publish) {
        char ids[128][16], version[32];
        const char *ptr[128];
        float scores[128];
        br_rng rng;
        br_rng_seed(&rng, 42);
        snprintf(version, sizeof version, "bench-%llu", (unsigned long long)(br_now_ns() % 1000000007));
        br_store_pub *p;
        uint64_t t0 = br_now_ns();
        st = br_store_publish_begin(s, version, &p);
        if (st != BR_OK) return fail("publish_begin", st);
        for (uint64_t i = 0; i < users && st == BR_OK; i++) {
            for (uint64_t j = 0; j < recs; j++) {
                snprintf(ids[j], sizeof ids[j], "b%llu", (unsigned long long)br_rng_below(&rng, 100000));
                ptr[j] = ids[j];
                scores[j] = (float)(recs - j) / (float)recs;
            }
            char u[32];
            snprintf(u, sizeof u, "u%llu", (unsigned long long)i);
            st = br_store_pub_put_recs(p, u, ptr, scores, recs);
        }
        if (st != BR_OK) {
            br_store_publish_abort(p);
            return fail("put_recs", st);
        }
        uint64_t t1 = br_now_ns();
        st = br_store_publish_commit(p);
        if (st != BR_OK) return fail("commit", st);
        double secs = (double)(br_now_ns() - t0) / 1e9;
        double commit = (double)(br_now_ns() - t1) / 1e9;
        if (json)
            printf("{\"kind\":\"publish\",\"backend\":\"%s\",\"users\":%llu,\"recs\":%llu,"
                   "\"seconds\":%.3f,\"commit_seconds\":%.3f,\"users_per_s\":%.0f}\n",
                   backend, (unsigned long long)users, (unsigned long long)recs, secs, commit,
                   (double)users / secs);
        else
            printf("%s publish: %llu readers x %llu recs in %.2f s (commit %.2f s): %.0f "
                   "readers/s\n",
                   backend, (unsigned long long)users, (unsigned long long)recs, secs, commit,
                   (double)users / secs);
        fflush(stdout);
    }

    if (events) { /* E interactions per reader, each also marking its book seen */
        br_rng rng;
        br_rng_seed(&rng, 7);
        br_event ev[64];
        char books[64][16], u[32];
        for (uint64_t i = 0; i < users && st == BR_OK; i++) {
            snprintf(u, sizeof u, "u%llu", (unsigned long long)i);
            for (uint64_t done = 0; done < events && st == BR_OK;) {
                size_t k = events - done < 64 ? (size_t)(events - done) : 64;
                for (size_t j = 0; j < k; j++) {
                    snprintf(books[j], sizeof books[j], "b%llu",
                             (unsigned long long)br_rng_below(&rng, 100000));
                    ev[j] = (br_event){u, books[j], BR_EVENT_VIEW, 1, (int64_t)(done + j)};
                }
                st = br_store_apply_events(s, ev, k);
                done += k;
            }
        }
        if (st != BR_OK) return fail("apply_events", st);
    }

    worker w[64];
    pthread_t th[64];
    uint64_t per = reads / threads;
    for (uint64_t t = 0; t < threads; t++) {
        w[t] = (worker){s, mode, users, per, 1000 + t, malloc(per * sizeof(uint64_t)), 0, BR_OK};
        if (!w[t].lat) return fail("malloc", BR_ENOMEM);
    }
    uint64_t t0 = br_now_ns();
    for (uint64_t t = 0; t < threads; t++) pthread_create(&th[t], NULL, reader, &w[t]);
    for (uint64_t t = 0; t < threads; t++) pthread_join(th[t], NULL);
    double secs = (double)(br_now_ns() - t0) / 1e9;
    uint64_t total = per * threads, failed = 0;
    uint64_t *all = malloc(total * sizeof *all);
    for (uint64_t t = 0; t < threads; t++) {
        memcpy(all + t * per, w[t].lat, per * sizeof *all);
        failed += w[t].failed;
        if (w[t].failed) fprintf(stderr, "bench_store: %llu reads failed: %s\n",
                                 (unsigned long long)w[t].failed, br_strerror(w[t].st));
        free(w[t].lat);
    }
    qsort(all, total, sizeof *all, cmp_u64);
    double p50 = (double)all[total / 2] / 1e3, p99 = (double)all[total * 99 / 100] / 1e3,
           p999 = (double)all[total * 999 / 1000] / 1e3;
    if (json)
        printf("{\"kind\":\"reads\",\"backend\":\"%s\",\"mode\":\"%s\",\"threads\":%llu,\"reads\":%"
               "llu,"
               "\"failed\":%llu,\"seconds\":%.3f,\"reads_per_s\":%.0f,\"p50_us\":%.1f,"
               "\"p99_us\":%.1f,\"p999_us\":%.1f}\n",
               backend, mode_names[mode], (unsigned long long)threads, (unsigned long long)total,
               (unsigned long long)failed, secs, (double)total / secs, p50, p99, p999);
    else
        printf("%s %s: %llu threads, %llu reads in %.2f s: %.0f reads/s, p50 %.1f us, "
               "p99 %.1f us, p99.9 %.1f us%s\n",
               backend, mode_names[mode], (unsigned long long)threads, (unsigned long long)total,
               secs, (double)total / secs, p50, p99, p999, failed ? " (SOME FAILED)" : "");
    free(all);
    br_store_close(s);
    return failed ? 1 : 0;
}
