/*
 * cmd_svd.c: `bookrec svd`, the truncated SVD of the reader x book rating
 * matrix (0 for unrated, the notebook's recipe): singular values, the share
 * of the matrix's energy they capture and the relative reconstruction
 * error, with timings. The error comes from the identity
 * |A - U S V^T|_F^2 = |A|_F^2 - sum s^2, which holds for both routes
 * because U S V^T is A projected onto span(U).
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec svd --books FILE --ratings FILE [--factors K]\n"
            "                   [--exact | --randomized] [--oversample N] [--power-iters N]\n"
            "                   [--seed N] [--json]\n\n"
            "Truncated SVD of the reader x book rating matrix (unrated = 0): the top K\n"
            "singular values, the share of |A|_F^2 they capture and the relative\n"
            "reconstruction error |A - U S V^T|_F / |A|_F.\n\n"
            "  --books FILE        books.csv (the columns: every book of the catalogue)\n"
            "  --ratings FILE      ratings.csv: user_id, book_id, rating\n"
            "  --factors K         singular triplets (default 50)\n"
            "  --exact             LAPACK on the Gram matrix of the smaller side (<= %d)\n"
            "  --randomized        randomized block Krylov (Musco & Musco), 16 columns a block\n"
            "                      (default: exact when the smaller side is <= 1024)\n"
            "  --oversample N      randomized: the Krylov space has >= K + N columns (default 10)\n"
            "  --power-iters N     randomized: Krylov depth, products with A A^T (default:\n"
            "                      a space of 3K columns, at least 4)\n"
            "  --seed N            randomized: seed of the Gaussian start block (default 42)\n"
            "  --json              print JSON instead of text\n",
            BR_SVD_EXACT_MAX);
}

static const char *method_name(br_svd_method m)
{
    return m == BR_SVD_EXACT ? "exact" : m == BR_SVD_RANDOMIZED ? "randomized" : "auto";
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {{"books", required_argument, 0, 'b'},
                                              {"ratings", required_argument, 0, 'r'},
                                              {"factors", required_argument, 0, 'k'},
                                              {"exact", no_argument, 0, 'E'},
                                              {"randomized", no_argument, 0, 'R'},
                                              {"oversample", required_argument, 0, 'o'},
                                              {"power-iters", required_argument, 0, 'q'},
                                              {"seed", required_argument, 0, 's'},
                                              {"json", no_argument, 0, 'j'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    const char *books_path = NULL, *ratings_path = NULL;
    br_svd_options opt = BR_SVD_OPTIONS_DEFAULT;
    int json = 0, c, n;
    unsigned long long u;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': books_path = optarg; break;
        case 'r': ratings_path = optarg; break;
        case 'k':
            if (cli_parse_int(optarg, &n) || n < 1)
                return cli_usage_error("svd", "--factors needs a count >= 1");
            opt.k = (uint32_t)n;
            break;
        case 'E': opt.method = BR_SVD_EXACT; break;
        case 'R': opt.method = BR_SVD_RANDOMIZED; break;
        case 'o':
            if (cli_parse_int(optarg, &n) || n < 0)
                return cli_usage_error("svd", "--oversample needs a count >= 0");
            opt.oversample = (uint32_t)n;
            break;
        case 'q':
            if (cli_parse_int(optarg, &n) || n < 0)
                return cli_usage_error("svd", "--power-iters needs a count >= 0");
            opt.power_iters = n;
            break;
        case 's':
            if (cli_parse_u64(optarg, &u)) return cli_usage_error("svd", "--seed needs a number");
            opt.seed = u;
            break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("svd", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("svd", "unexpected argument '%s'", argv[optind]);
    if (!books_path || !ratings_path)
        return cli_usage_error("svd", "--books FILE and --ratings FILE are required");

    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat = NULL;
    br_ratings *ratings = NULL;
    br_csr a = {0};
    br_svd svd = {0};
    uint64_t t0 = br_now_ns(), t1 = 0, t2 = 0;
    br_status st = br_catalog_load(books_path, &lo, &cat, NULL);
    if (!st) st = br_ratings_load(ratings_path, cat, &lo, &ratings, NULL);
    if (!st) st = br_csr_from_ratings(ratings, &a);
    if (!st) {
        t1 = br_now_ns();
        st = br_svd_compute(&a, NULL, &opt, &svd);
        t2 = br_now_ns();
    }
    int rc = CLI_OK;
    if (st) {
        rc = cli_fail("svd", st);
        goto done;
    }
    double norm2 = 0, cap = 0;
    for (uint64_t p = 0; p < a.nnz; p++) norm2 += (double)a.values[p] * a.values[p];
    for (uint32_t j = 0; j < svd.k; j++) cap += (double)svd.s[j] * svd.s[j];
    double share = norm2 > 0 ? cap / norm2 : 0;
    double err = sqrt(share < 1 ? 1 - share : 0);
    double load_s = (double)(t1 - t0) * 1e-9, svd_s = (double)(t2 - t1) * 1e-9;
    if (json) {
        json_t *o = json_object();
        json_t *sv = json_array();
        for (uint32_t j = 0; j < svd.k; j++) json_array_append_new(sv, json_real(svd.s[j]));
        json_object_set_new(o, "singular_values", sv);
        json_object_set_new(o, "method", json_string(method_name(svd.method)));
        if (svd.method == BR_SVD_RANDOMIZED) {
            json_object_set_new(o, "power_iters", json_integer(svd.power_iters));
            json_object_set_new(o, "oversample", json_integer(opt.oversample));
        }
        json_object_set_new(o, "factors", json_integer(svd.k));
        json_object_set_new(o, "users", json_integer(a.rows));
        json_object_set_new(o, "books", json_integer(a.cols));
        json_object_set_new(o, "ratings", json_integer((json_int_t)a.nnz));
        json_object_set_new(o, "matrix_bytes", json_integer((json_int_t)(2 * br_csr_memory(&a))));
        json_object_set_new(o, "energy_captured", json_real(share));
        json_object_set_new(o, "relative_error", json_real(err));
        json_object_set_new(o, "load_seconds", json_real(load_s));
        json_object_set_new(o, "svd_seconds", json_real(svd_s));
        cli_print_json(o);
    } else {
        printf("matrix     %u readers x %u books, %llu ratings (CSR + CSC %.1f MB)\n", a.rows,
               a.cols, (unsigned long long)a.nnz, 2.0 * (double)br_csr_memory(&a) / 1e6);
        printf("method     %s", method_name(svd.method));
        if (svd.method == BR_SVD_RANDOMIZED)
            printf(" (oversample %u, %d power iterations, seed %llu)", opt.oversample,
                   svd.power_iters, (unsigned long long)opt.seed);
        printf("\ncaptured   %.4f%% of |A|_F^2; relative error %.6f\n", 100 * share, err);
        printf("time       load %.3f s, svd %.3f s\n", load_s, svd_s);
        printf("singular values\n");
        for (uint32_t j = 0; j < svd.k; j++)
            printf("  %3u  %.6f\n", j + 1, (double)svd.s[j]);
    }
done:
    br_svd_free(&svd);
    br_csr_free(&a);
    br_ratings_free(ratings);
    br_catalog_free(cat);
    return rc;
}

const cli_command cli_cmd_svd = {"svd", "truncated SVD of the rating matrix", run, usage};
