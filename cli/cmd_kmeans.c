/*
 * cmd_kmeans.c: `bookrec kmeans`, the k-means kernel on a .npy matrix, for
 * scripting and benchmarks: labels, inertia and iterations as JSON, the
 * centroids optionally as .npy.
 */
#include <getopt.h>
#include <jansson.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec kmeans --in X.npy --k K [--n-init N] [--seed S] [--max-iter N]\n"
            "                      [--tol T] [--algo auto|lloyd|hamerly]\n"
            "                      [--centroids-out C.npy] [--labels-out L.npy] [--json]\n\n"
            "Clusters the rows of a float32 (or float64) .npy matrix with k-means\n"
            "(k-means++ seeding, N restarts keeping the lowest inertia).\n\n"
            "  --in FILE            the (n, dim) matrix\n"
            "  --k K                clusters (1..n)\n"
            "  --n-init N           restarts (default 10)\n"
            "  --seed S             random seed (default 42)\n"
            "  --max-iter N         iterations per restart (default 300)\n"
            "  --tol T              relative centre-shift tolerance (default 1e-4)\n"
            "  --algo A             auto (default), lloyd or hamerly\n"
            "  --centroids-out FILE write the (k, dim) centroids as float32 .npy\n"
            "  --labels-out FILE    write the (n,) labels as int32 .npy\n"
            "  --json               print {\"inertia\", \"iterations\", \"seconds\", \"labels\"}\n");
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"in", required_argument, 0, 'i'},       {"k", required_argument, 0, 'k'},
        {"n-init", required_argument, 0, 'n'},   {"seed", required_argument, 0, 's'},
        {"max-iter", required_argument, 0, 'm'}, {"tol", required_argument, 0, 't'},
        {"algo", required_argument, 0, 'a'},     {"centroids-out", required_argument, 0, 'c'},
        {"labels-out", required_argument, 0, 'l'}, {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    const char *in = NULL, *cout = NULL, *lout = NULL;
    br_kmeans_options o = BR_KMEANS_OPTIONS_DEFAULT;
    int json = 0, have_k = 0, c;
    unsigned long long v;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 'k':
            if (cli_parse_u64(optarg, &v) || v == 0 || v > UINT32_MAX)
                return cli_usage_error("kmeans", "--k needs a positive count");
            o.k = (uint32_t)v;
            have_k = 1;
            break;
        case 'n':
            if (cli_parse_u64(optarg, &v) || v == 0 || v > 100000)
                return cli_usage_error("kmeans", "--n-init needs a positive count");
            o.n_init = (uint32_t)v;
            break;
        case 's':
            if (cli_parse_u64(optarg, &v)) return cli_usage_error("kmeans", "--seed needs a number");
            o.seed = v;
            break;
        case 'm':
            if (cli_parse_u64(optarg, &v) || v == 0 || v > UINT32_MAX)
                return cli_usage_error("kmeans", "--max-iter needs a positive count");
            o.max_iter = (uint32_t)v;
            break;
        case 't':
            if (cli_parse_double(optarg, &o.tol) || o.tol < 0)
                return cli_usage_error("kmeans", "--tol needs a number >= 0");
            break;
        case 'a':
            if (!strcmp(optarg, "auto")) o.algo = BR_KMEANS_AUTO;
            else if (!strcmp(optarg, "lloyd")) o.algo = BR_KMEANS_LLOYD;
            else if (!strcmp(optarg, "hamerly")) o.algo = BR_KMEANS_HAMERLY;
            else return cli_usage_error("kmeans", "--algo is auto, lloyd or hamerly");
            break;
        case 'c': cout = optarg; break;
        case 'l': lout = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("kmeans", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("kmeans", "unexpected argument '%s'", argv[optind]);
    if (!in) return cli_usage_error("kmeans", "--in X.npy is required");
    if (!have_k) return cli_usage_error("kmeans", "--k K is required");

    br_array x;
    br_status st = br_npy_read(in, BR_DTYPE_F32, &x);
    if (st != BR_OK) return cli_fail("kmeans", st);
    br_kmeans_result r;
    uint64_t t0 = br_now_ns();
    st = br_kmeans_fit(x.data, x.rows, x.cols, &o, &r);
    double secs = (double)(br_now_ns() - t0) / 1e9;
    if (st == BR_OK && cout)
        st = br_npy_write(cout, BR_DTYPE_F32, 2, r.k, r.dim, r.centroids);
    if (st == BR_OK && lout) st = br_npy_write(lout, BR_DTYPE_I32, 1, r.n, 1, r.labels);
    if (st != BR_OK) {
        br_array_free(&x);
        return cli_fail("kmeans", st);
    }
    if (json) {
        json_t *labels = json_array();
        for (size_t i = 0; i < r.n; i++) json_array_append_new(labels, json_integer(r.labels[i]));
        cli_print_json(json_pack("{s:f, s:i, s:i, s:i, s:f, s:o}", "inertia", r.inertia,
                                 "iterations", (int)r.iterations, "best_init", (int)r.best_init,
                                 "reseeded", (int)r.reseeded, "seconds", secs, "labels", labels));
    } else {
        size_t *size = calloc(r.k, sizeof(size_t));
        for (size_t i = 0; size && i < r.n; i++) size[r.labels[i]]++;
        printf("k-means: %zu points x %zu, k = %u, %u restarts in %.3f s\n", r.n, r.dim, r.k,
               o.n_init, secs);
        printf("inertia %.6f after %u iterations (restart %u)\n", r.inertia, r.iterations,
               r.best_init);
        for (uint32_t j = 0; size && j < r.k; j++) printf("  cluster %-3u %8zu points\n", j, size[j]);
        free(size);
    }
    br_kmeans_result_free(&r);
    br_array_free(&x);
    return CLI_OK;
}

const cli_command cli_cmd_kmeans = {"kmeans", "k-means clustering of a .npy matrix", run, usage};
