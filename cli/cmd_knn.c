/*
 * cmd_knn.c: `bookrec knn`, cosine nearest neighbours of query rows among
 * base rows (.npy in, int32 .npy of ids out): exact (blocked sgemm + partial
 * sort) or through an HNSW index, built on the fly or loaded from a file.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec knn --in BASE.npy --queries Q.npy --k K --out IDS.npy\n"
            "                   [--index auto|exact|hnsw] [--m M] [--ef EF]\n"
            "                   [--ef-construction EF] [--save-index F | --load-index F]\n"
            "                   [--scores-out S.npy] [--json]\n\n"
            "For each query row, the K base rows of highest cosine similarity, best\n"
            "first, as an int32 (n_queries, K) .npy of base row numbers.\n\n"
            "  --index auto     exact below %d base rows, HNSW above (default)\n"
            "  --index exact    exact search: blocked sgemm + partial sort\n"
            "  --index hnsw     HNSW graph index (approximate)\n"
            "  --m M            HNSW links per node (default 16)\n"
            "  --ef EF          HNSW search candidates (default 64)\n"
            "  --ef-construction EF  HNSW build candidates (default 200)\n"
            "  --save-index F   write the built HNSW index to F\n"
            "  --load-index F   use the HNSW index in F instead of building one\n"
            "  --scores-out F   the (n_queries, K) cosine similarities, float32 .npy\n"
            "  --json           print timings and sizes as JSON\n",
            BR_INDEX_EXACT_THRESHOLD);
}

/* Rows normalised in place (cosine). */
static void normalise(float *x, size_t n, size_t d)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
        float inv = s > 0 ? (float)(1 / sqrt(s)) : 0;
        for (size_t j = 0; j < d; j++) x[i * d + j] *= inv;
    }
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"in", required_argument, 0, 'i'},      {"queries", required_argument, 0, 'q'},
        {"k", required_argument, 0, 'k'},       {"out", required_argument, 0, 'o'},
        {"index", required_argument, 0, 'x'},   {"m", required_argument, 0, 'm'},
        {"ef", required_argument, 0, 'e'},      {"ef-construction", required_argument, 0, 'c'},
        {"save-index", required_argument, 0, 's'}, {"load-index", required_argument, 0, 'l'},
        {"scores-out", required_argument, 0, 'S'}, {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *in = NULL, *qp = NULL, *outp = NULL, *save = NULL, *load = NULL, *sout = NULL;
    const char *kind = "auto";
    unsigned long long k = 10, m = 16, ef = 64, efc = 200;
    int json = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 'q': qp = optarg; break;
        case 'o': outp = optarg; break;
        case 'x':
            if (strcmp(optarg, "auto") && strcmp(optarg, "exact") && strcmp(optarg, "hnsw"))
                return cli_usage_error("knn", "--index is auto, exact or hnsw");
            kind = optarg;
            break;
        case 'k':
            if (cli_parse_u64(optarg, &k) || k == 0 || k > 100000)
                return cli_usage_error("knn", "--k needs a count 1..100000");
            break;
        case 'm':
            if (cli_parse_u64(optarg, &m) || m < 2 || m > 128)
                return cli_usage_error("knn", "--m needs 2..128");
            break;
        case 'e':
            if (cli_parse_u64(optarg, &ef) || ef == 0 || ef > 100000)
                return cli_usage_error("knn", "--ef needs 1..100000");
            break;
        case 'c':
            if (cli_parse_u64(optarg, &efc) || efc == 0 || efc > 100000)
                return cli_usage_error("knn", "--ef-construction needs 1..100000");
            break;
        case 's': save = optarg; break;
        case 'l': load = optarg; break;
        case 'S': sout = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("knn", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("knn", "unexpected argument '%s'", argv[optind]);
    if (!qp || !outp) return cli_usage_error("knn", "--queries and --out are required");
    if (!in && !load) return cli_usage_error("knn", "--in BASE.npy (or --load-index) is required");
    if (load && save) return cli_usage_error("knn", "--save-index and --load-index exclude each other");

    br_array base = {0}, q = {0};
    br_hnsw *h = NULL;
    int32_t *ids = NULL;
    float *scores = NULL;
    double build_s = 0, search_s = 0;
    br_status st = in ? br_npy_read(in, BR_DTYPE_F32, &base) : BR_OK;
    if (st == BR_OK) st = br_npy_read(qp, BR_DTYPE_F32, &q);
    size_t dim = in ? base.cols : 0;
    if (st == BR_OK && in && q.cols != dim)
        st = br_error(BR_EINVAL, "queries have %zu columns, base rows %zu", q.cols, dim);
    int use_hnsw = load || !strcmp(kind, "hnsw") ||
                   (!strcmp(kind, "auto") && base.rows >= BR_INDEX_EXACT_THRESHOLD);
    if (st == BR_OK) {
        ids = br_malloc(q.rows * k * sizeof(int32_t) + 1);
        scores = br_malloc(q.rows * k * sizeof(float) + 1);
        if (!ids || !scores) st = br_error(BR_ENOMEM, "knn: out of memory");
    }
    uint64_t t0 = br_now_ns();
    if (st == BR_OK && use_hnsw) {
        if (load) {
            st = br_hnsw_load(load, &h);
            if (st == BR_OK && br_hnsw_dim(h) != q.cols)
                st = br_error(BR_EINVAL, "index has dimension %zu, queries %zu", br_hnsw_dim(h),
                              q.cols);
        } else {
            br_hnsw_options o = BR_HNSW_OPTIONS_DEFAULT;
            o.m = (uint32_t)m;
            o.ef_construction = (uint32_t)efc;
            st = br_hnsw_create(dim, &o, &h);
            if (st == BR_OK) st = br_hnsw_add_batch(h, base.data, base.rows, NULL);
            if (st == BR_OK && save) st = br_hnsw_save(h, save);
        }
        build_s = (double)(br_now_ns() - t0) / 1e9;
        t0 = br_now_ns();
        if (st == BR_OK) st = br_hnsw_search_batch(h, q.data, q.rows, k, ef, ids, scores);
    } else if (st == BR_OK) {
        normalise(base.data, base.rows, dim);
        normalise(q.data, q.rows, dim);
        build_s = (double)(br_now_ns() - t0) / 1e9;
        t0 = br_now_ns();
        st = br_topk_search(base.data, base.rows, dim, q.data, q.rows, k, NULL, ids, scores);
    }
    search_s = (double)(br_now_ns() - t0) / 1e9;
    if (st == BR_OK) st = br_npy_write(outp, BR_DTYPE_I32, 2, q.rows, k, ids);
    if (st == BR_OK && sout) st = br_npy_write(sout, BR_DTYPE_F32, 2, q.rows, k, scores);
    int rc = CLI_OK;
    if (st != BR_OK) {
        rc = cli_fail("knn", st);
    } else if (json) {
        cli_print_json(json_pack("{s:s, s:I, s:I, s:I, s:f, s:f, s:f}", "index",
                                 use_hnsw ? "hnsw" : "exact", "base",
                                 (json_int_t)(h ? br_hnsw_count(h) : base.rows), "queries",
                                 (json_int_t)q.rows, "k", (json_int_t)k, "build_seconds", build_s,
                                 "search_seconds", search_s, "queries_per_second",
                                 search_s > 0 ? (double)q.rows / search_s : 0.0));
    } else {
        fprintf(stderr, "knn: %zu queries, %s search in %.3f s (%.0f queries/s)%s\n", q.rows,
                use_hnsw ? "hnsw" : "exact", search_s,
                search_s > 0 ? (double)q.rows / search_s : 0.0, use_hnsw && !load ? "" : "");
    }
    br_hnsw_free(h);
    br_free(ids);
    br_free(scores);
    br_array_free(&base);
    br_array_free(&q);
    return rc;
}

const cli_command cli_cmd_knn = {"knn", "nearest neighbours of .npy rows (exact or HNSW)", run,
                                 usage};
