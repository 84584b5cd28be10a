/*
 * cmd_pca.c: `bookrec pca`, exact PCA of a .npy matrix: the projection to
 * --dim components as .npy and the explained-variance ratios.
 */
#include <getopt.h>
#include <jansson.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec pca --in X.npy [--dim D] [--out P.npy] [--components-out V.npy]\n"
            "                   [--json]\n\n"
            "Exact principal component analysis (centred covariance, LAPACK): projects\n"
            "the rows onto the D leading components. Each component's entry of largest\n"
            "magnitude is positive, so results are reproducible.\n\n"
            "  --in FILE              the (n, dim) matrix\n"
            "  --dim D                components (default 2)\n"
            "  --out FILE             the (n, D) projection, float32 .npy\n"
            "  --components-out FILE  the (D, dim) components, float32 .npy\n"
            "  --json                 print {\"explained_variance_ratio\": [...], ...}\n");
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {{"in", required_argument, 0, 'i'},
                                              {"dim", required_argument, 0, 'd'},
                                              {"out", required_argument, 0, 'o'},
                                              {"components-out", required_argument, 0, 'c'},
                                              {"json", no_argument, 0, 'j'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    const char *in = NULL, *outp = NULL, *cout = NULL;
    unsigned long long dim = 2;
    int json = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 'd':
            if (cli_parse_u64(optarg, &dim) || dim == 0 || dim > 1000000)
                return cli_usage_error("pca", "--dim needs a positive count");
            break;
        case 'o': outp = optarg; break;
        case 'c': cout = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("pca", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("pca", "unexpected argument '%s'", argv[optind]);
    if (!in) return cli_usage_error("pca", "--in X.npy is required");

    br_array x;
    br_status st = br_npy_read(in, BR_DTYPE_F32, &x);
    if (st != BR_OK) return cli_fail("pca", st);
    br_pca p;
    float *proj = NULL;
    uint64_t t0 = br_now_ns();
    st = br_pca_fit(x.data, x.rows, x.cols, (size_t)dim, &p);
    if (st == BR_OK && outp) {
        proj = br_malloc(x.rows * (size_t)dim * sizeof(float));
        st = proj ? br_pca_transform(&p, x.data, x.rows, proj)
                  : br_error(BR_ENOMEM, "pca: out of memory");
    }
    double secs = (double)(br_now_ns() - t0) / 1e9;
    if (st == BR_OK && outp) st = br_npy_write(outp, BR_DTYPE_F32, 2, x.rows, (size_t)dim, proj);
    if (st == BR_OK && cout)
        st = br_npy_write(cout, BR_DTYPE_F32, 2, (size_t)dim, p.dim, p.components);
    if (st != BR_OK) {
        br_free(proj);
        br_array_free(&x);
        return cli_fail("pca", st);
    }
    if (json) {
        json_t *r = json_array(), *ev = json_array();
        for (size_t i = 0; i < p.n_components; i++) {
            json_array_append_new(r, json_real(p.explained_variance_ratio[i]));
            json_array_append_new(ev, json_real(p.explained_variance[i]));
        }
        cli_print_json(json_pack("{s:o, s:o, s:f, s:f}", "explained_variance_ratio", r,
                                 "explained_variance", ev, "total_variance", p.total_variance,
                                 "seconds", secs));
    } else {
        printf("PCA: %zu rows x %zu -> %zu components in %.3f s\n", x.rows, x.cols,
               p.n_components, secs);
        double cum = 0;
        for (size_t i = 0; i < p.n_components; i++) {
            cum += p.explained_variance_ratio[i];
            printf("  PC%-3zu explained variance %10.6f  ratio %7.4f  cumulative %7.4f\n", i + 1,
                   p.explained_variance[i], p.explained_variance_ratio[i], cum);
        }
    }
    br_pca_free(&p);
    br_free(proj);
    br_array_free(&x);
    return CLI_OK;
}

const cli_command cli_cmd_pca = {"pca", "exact PCA of a .npy matrix", run, usage};
