/*
 * bench_handler.c: the recommendation route's own work, without HTTP: what
 * `bookrec serve` does for GET /api/recommendations/user/{id}?n=N between
 * parsing the request and handing the body to libmicrohttpd (one
 * br_store_get_reader mapping the recs' and the seen set's ids to book
 * indices as it reads, the seeds mapped to books, br__srv_rank writing the
 * JSON), timed part by part on one thread. wrk's figures (bench/serve.sh)
 * move with the kernel's loopback path and the scheduler; these do not, so
 * a change to the handler is judged here first.
 *
 *   bench_handler --model-dir DIR --ids FILE [--store URI] [--requests R]
 *                 [--n N] [--tags T,..] [--exclude-tags T,..] [--authors A,..]
 *
 * The ids (one a line) are cycled from a fixed pseudo-random offset after
 * one unreported pass over them (the store's pages and the
 * snapshot in cache, as in a server that has been up a while). Prints the
 * mean microseconds of the store read, the seed mapping and the ranking,
 * the p50/p99 of their sum, and the mean response size. bench/serve.sh
 * runs it on the same model as wrk.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bookrec/bookrec.h"
#include "serve/serve_internal.h"

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_handler --model-dir DIR --ids FILE [--store URI] "
                    "[--requests R] [--n N] [--tags T,..] [--exclude-tags T,..] "
                    "[--authors A,..]\n");
}

int main(int argc, char **argv)
{
    const char *model_dir = NULL, *ids_path = NULL, *store_uri = NULL;
    long requests = 200000, n_list = 10;
    const char *filter_arg[SRV_F_KINDS] = {NULL, NULL, NULL}; /* the route's ?tags= etc. */
    static const struct option opts[] = {{"model-dir", required_argument, 0, 'm'},
                                         {"ids", required_argument, 0, 'i'},
                                         {"store", required_argument, 0, 's'},
                                         {"requests", required_argument, 0, 'r'},
                                         {"n", required_argument, 0, 'n'},
                                         {"tags", required_argument, 0, 'T'},
                                         {"exclude-tags", required_argument, 0, 'X'},
                                         {"authors", required_argument, 0, 'A'},
                                         {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'm':
            model_dir = optarg;
            break;
        case 'i':
            ids_path = optarg;
            break;
        case 's':
            store_uri = optarg;
            break;
        case 'r':
            requests = strtol(optarg, NULL, 10);
            break;
        case 'n':
            n_list = strtol(optarg, NULL, 10);
            break;
        case 'T':
            filter_arg[SRV_F_TAGS] = optarg;
            break;
        case 'X':
            filter_arg[SRV_F_EXCLUDE] = optarg;
            break;
        case 'A':
            filter_arg[SRV_F_AUTHORS] = optarg;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (!model_dir || !ids_path || requests <= 0 || n_list < 1 || n_list > BR_SERVE_N_MAX) {
        usage();
        return 2;
    }

    /* the reader ids */
    FILE *f = fopen(ids_path, "r");
    if (!f) {
        perror(ids_path);
        return 1;
    }
    size_t n_ids = 0, cap = 1024;
    char(*ids)[BR_ID_MAX] = malloc(cap * sizeof *ids);
    char line[BR_ID_MAX + 2];
    while (ids && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        size_t len = strlen(line);
        if (len == 0 || len >= BR_ID_MAX) continue; /* not a valid id */
        if (n_ids == cap) ids = realloc(ids, (cap *= 2) * sizeof *ids);
        if (ids) memcpy(ids[n_ids++], line, len + 1);
    }
    fclose(f);
    if (!ids || n_ids == 0) {
        fprintf(stderr, "bench_handler: no ids in %s\n", ids_path);
        return 1;
    }

    char mdir_store[4200];
    if (!store_uri) { /* the model directory's own LMDB store */
        snprintf(mdir_store, sizeof mdir_store, "lmdb:%s/store", model_dir);
        store_uri = mdir_store;
    }
    double t0 = now_us();
    srv_snap *p = NULL;
    br_status st = br__srv_snap_load(model_dir, &p);
    if (st) {
        fprintf(stderr, "bench_handler: %s\n", br_error_detail());
        return 1;
    }
    br_store *store = NULL;
    st = br_store_open(store_uri, BR_STORE_RDONLY, &store);
    if (st) {
        fprintf(stderr, "bench_handler: %s\n", br_error_detail());
        return 1;
    }
    double t_load = now_us() - t0;
    static srv_filter filter; /* parsed per request, as the route does */
    char fmsg[256];
    for (int k = 0; k < SRV_F_KINDS; k++)
        if (filter_arg[k] && br__srv_filter_parse(p, &filter, k, filter_arg[k], fmsg, sizeof fmsg)) {
            fprintf(stderr, "bench_handler: %s\n", fmsg);
            return 1;
        }

    br_serve_rank cfg = BR_SERVE_RANK_DEFAULT;
    uint32_t rec_idx[BR_SERVE_N_MAX], seen_idx[SRV_SEEN_IDX];
    float rec_score[BR_SERVE_N_MAX];
    br_store_interaction recent[BR_STORE_RECENT_MAX];
    uint32_t seeds[BR_STORE_RECENT_MAX];
    int types[BR_STORE_RECENT_MAX];
    br__sbuf b = {0};
    double *total = malloc((size_t)requests * sizeof *total);
    if (!total) return 1;
    double s_get = 0, s_seeds = 0, s_rank = 0, bytes = 0;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    rng ^= rng << 13;
    size_t at = (size_t)(rng % n_ids);
    long known = 0;
    for (long r = -(long)n_ids; r < requests; r++) { /* the first pass warms, unreported */
        const char *user = ids[at];
        at = at + 1 == n_ids ? 0 : at + 1;
        double a = now_us();
        pthread_rwlock_rdlock(&p->add_lock);
        for (int k = 0; k < SRV_F_KINDS; k++)
            if (filter_arg[k]) br__srv_filter_parse(p, &filter, k, filter_arg[k], fmsg, sizeof fmsg);
        br_store_reader rd = br__srv_reader(p, &cfg, recent, rec_idx, rec_score, seen_idx);
        st = br_store_get_reader(store, user, &rd);
        if (st) {
            fprintf(stderr, "bench_handler: %s\n", br_error_detail());
            return 1;
        }
        double c = now_us();
        size_t n_seeds = br__srv_seeds(p, recent, rd.n_recent, seeds, types);
        double d = now_us();
        rank_input in = {.rec_idx = rec_idx,
                         .rec_score = rec_score,
                         .n_recs = rd.n_recs,
                         .seeds = seeds,
                         .seed_types = types,
                         .n_seeds = n_seeds,
                         .interactions = rd.n_recent,
                         .seen_ids = rd.seen ? rd.seen->ids : NULL,
                         .n_seen_ids = rd.seen ? rd.seen->n : 0,
                         .seen_idx = seen_idx,
                         .n_seen_idx = rd.n_seen_idx,
                         .hour = -1,
                         .n = (size_t)n_list,
                         .filter = &filter};
        if (rd.n_seen > in.interactions) in.interactions = rd.n_seen;
        br__sb_reset(&b);
        st = br__srv_rank(p, &cfg, &in, &b);
        pthread_rwlock_unlock(&p->add_lock);
        br_store_reader_free(&rd);
        double e = now_us();
        if (st) {
            fprintf(stderr, "bench_handler: %s\n", br_error_detail());
            return 1;
        }
        if (r < 0) continue;
        known += rd.n_recs > 0;
        s_get += c - a;
        s_seeds += d - c;
        s_rank += e - d;
        bytes += (double)b.len;
        total[r] = e - a;
    }
    qsort(total, (size_t)requests, sizeof *total, cmp_double);
    double mean = (s_get + s_seeds + s_rank) / (double)requests;
    printf("handler alone (no HTTP), %ld requests over %zu reader ids (%ld with a stored list), "
           "n=%ld, 1 thread; model loaded in %.1f s\n",
           requests, n_ids, known, n_list, t_load / 1e6);
    printf("  per request: store read %.2f us, seeds %.2f us, ranking + JSON %.2f us; "
           "total mean %.2f us, p50 %.2f us, p99 %.2f us; %.0f bytes of JSON\n",
           s_get / (double)requests, s_seeds / (double)requests, s_rank / (double)requests, mean,
           total[(size_t)requests / 2], total[(size_t)((double)requests * 0.99)],
           bytes / (double)requests);
    free(total);
    br__sb_free(&b);
    free(ids);
    br_store_close(store);
    br__srv_snap_release(p);
    return 0;
}
