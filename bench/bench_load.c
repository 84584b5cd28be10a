/*
 * bench_load.c: how long bookrec takes to load a catalogue (books.csv) and
 * its ratings (ratings.csv) through the public API, br_catalog_load and
 * br_ratings_load. Each of N runs loads both files and frees them; the time
 * of each load is taken around the call (wall clock, monotonic), so it is
 * comparable with the Python peers in bench/peers/load_pandas.py, which time
 * the same files the same way. bench/load.sh runs both and prints the ratios.
 * Each load's process CPU time is kept too: on a machine other jobs share,
 * it is the steadier figure (time spent waiting for a CPU is not in it).
 *
 *   bench_load --books B --ratings R [--repeat N] [--json]
 *
 * Output: a small table, or with --json one JSON object per line: a "run"
 * line per load and a "summary" line per file (best, median, rows/s, MB/s,
 * the bytes the loaded object holds by br_*_memory), then the process's peak
 * resident set size.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "bookrec/bookrec.h"

enum { WHAT_BOOKS, WHAT_RATINGS, WHAT_COUNT };

static const char *const what_name[WHAT_COUNT] = {"books", "ratings"};

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_load --books FILE --ratings FILE [--repeat N] [--json]\n\n"
                 "Loads books.csv and ratings.csv N times (default 5) with bookrec and\n"
                 "prints per-run, best and median seconds and rows/s for each file.\n");
}

/* CPU time of this process, in seconds. */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double best_of(const double *v, int n)
{
    double b = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] < b) b = v[i];
    return b;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return v[0];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

/* Prints a JSON string literal (the paths are the only strings we print). */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"books", required_argument, 0, 'b'},  {"ratings", required_argument, 0, 'r'},
        {"repeat", required_argument, 0, 'n'}, {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *path[WHAT_COUNT] = {NULL, NULL};
    int repeat = 5, json = 0, c;
    while ((c = getopt_long(argc, argv, "b:r:n:jh", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            path[WHAT_BOOKS] = optarg;
            break;
        case 'r':
            path[WHAT_RATINGS] = optarg;
            break;
        case 'n': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1000) {
                fprintf(stderr, "bench_load: --repeat wants an integer in 1..1000\n");
                return 2;
            }
            repeat = (int)v;
            break;
        }
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!path[WHAT_BOOKS] || !path[WHAT_RATINGS] || optind != argc) {
        usage(stderr);
        return 2;
    }

    double *secs[WHAT_COUNT], *cpu[WHAT_COUNT];
    size_t rows[WHAT_COUNT] = {0, 0}, held[WHAT_COUNT] = {0, 0};
    long long bytes[WHAT_COUNT];
    for (int w = 0; w < WHAT_COUNT; w++) {
        struct stat st;
        bytes[w] = stat(path[w], &st) == 0 ? (long long)st.st_size : -1;
        secs[w] = calloc((size_t)repeat, sizeof *secs[w]);
        cpu[w] = calloc((size_t)repeat, sizeof *cpu[w]);
        if (!secs[w] || !cpu[w]) {
            fprintf(stderr, "bench_load: out of memory\n");
            return 1;
        }
    }

    br_load_options opt = BR_LOAD_OPTIONS_DEFAULT;
    if (!json)
        printf("%-8s %4s %10s %10s %12s  %s\n", "file", "run", "seconds", "cpu s", "rows/s",
               "path");
    for (int run = 0; run < repeat; run++) {
        br_catalog *cat = NULL;
        br_ratings *rat = NULL;
        br_load_report rep[WHAT_COUNT];
        memset(rep, 0, sizeof rep);

        double c0 = cpu_seconds();
        uint64_t t0 = br_now_ns();
        br_status st = br_catalog_load(path[WHAT_BOOKS], &opt, &cat, &rep[WHAT_BOOKS]);
        uint64_t t1 = br_now_ns();
        double c1 = cpu_seconds();
        if (st == BR_OK)
            st = br_ratings_load(path[WHAT_RATINGS], cat, &opt, &rat, &rep[WHAT_RATINGS]);
        uint64_t t2 = br_now_ns();
        double c2 = cpu_seconds();
        if (st != BR_OK) {
            fprintf(stderr, "bench_load: %s: %s\n", br_strerror(st), br_error_detail());
            br_catalog_free(cat);
            return 1;
        }
        secs[WHAT_BOOKS][run] = (double)(t1 - t0) * 1e-9;
        secs[WHAT_RATINGS][run] = (double)(t2 - t1) * 1e-9;
        cpu[WHAT_BOOKS][run] = c1 - c0;
        cpu[WHAT_RATINGS][run] = c2 - c1;
        rows[WHAT_BOOKS] = br_catalog_count(cat);
        rows[WHAT_RATINGS] = br_ratings_count(rat);
        held[WHAT_BOOKS] = br_catalog_memory(cat);
        held[WHAT_RATINGS] = br_ratings_memory(rat);
        br_ratings_free(rat);
        br_catalog_free(cat);

        for (int w = 0; w < WHAT_COUNT; w++) {
            double s = secs[w][run];
            if (json) {
                printf("{\"bench\":\"load\",\"impl\":\"bookrec\",\"kind\":\"run\",\"file\":\"%s\","
                       "\"run\":%d,\"seconds\":%.6f,\"cpu_seconds\":%.6f,\"rows\":%zu,"
                       "\"library_seconds\":%.6f}\n",
                       what_name[w], run + 1, s, cpu[w][run], rows[w], rep[w].seconds);
            } else {
                printf("%-8s %4d %10.4f %10.4f %12.0f  %s\n", what_name[w], run + 1, s, cpu[w][run],
                       (double)rows[w] / s, path[w]);
            }
        }
        fflush(stdout);
    }

    struct rusage ru;
    long peak_kb = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
    if (!json)
        printf("\n%-8s %10s %10s %10s %10s %10s %12s %10s\n", "file", "rows", "best s", "median s",
               "cpu best", "cpu med", "rows/s", "MB/s");
    for (int w = 0; w < WHAT_COUNT; w++) {
        double best = best_of(secs[w], repeat), med = median(secs[w], repeat);
        double cbest = best_of(cpu[w], repeat), cmed = median(cpu[w], repeat);
        double rps = (double)rows[w] / best;
        double mbps = bytes[w] >= 0 ? (double)bytes[w] / 1e6 / best : 0.0;
        if (json) {
            printf("{\"bench\":\"load\",\"impl\":\"bookrec\",\"kind\":\"summary\",\"file\":\"%s\","
                   "\"path\":",
                   what_name[w]);
            json_str(path[w]);
            printf(",\"bytes\":%lld,\"rows\":%zu,\"repeat\":%d,\"best\":%.6f,\"median\":%.6f,"
                   "\"cpu_best\":%.6f,\"cpu_median\":%.6f,\"rows_per_s\":%.0f,"
                   "\"mb_per_s\":%.1f,\"memory_bytes\":%zu}\n",
                   bytes[w], rows[w], repeat, best, med, cbest, cmed, rps, mbps, held[w]);
        } else {
            printf("%-8s %10zu %10.4f %10.4f %10.4f %10.4f %12.0f %10.1f\n", what_name[w], rows[w],
                   best, med, cbest, cmed, rps, mbps);
        }
    }
    if (json)
        printf("{\"bench\":\"load\",\"impl\":\"bookrec\",\"kind\":\"memory\","
               "\"peak_rss_kb\":%ld}\n",
               peak_kb);
    else
        printf("held after loading: books %zu bytes, ratings %zu bytes (br_*_memory)\n"
               "peak resident set size %ld kB (one books + ratings load at a time)\n",
               held[WHAT_BOOKS], held[WHAT_RATINGS], peak_kb);
    for (int w = 0; w < WHAT_COUNT; w++) {
        free(secs[w]);
        free(cpu[w]);
    }
    return 0;
}
