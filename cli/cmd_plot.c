/*
 * cmd_plot.c: `bookrec plot`, the tribes picture of a model directory
 * written by `bookrec cluster`: PNG, SVG or PDF by the extension.
 */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec plot --model DIR --out FILE.png|.svg|.pdf\n"
            "                    [--width W] [--height H] [--labels N] [--title TEXT]\n\n"
            "Draws the books of a tribes model (bookrec cluster) in the plane of the two\n"
            "leading principal components, coloured by tribe, with a legend of tribe names,\n"
            "axis titles carrying the explained variance, and each tribe's most central\n"
            "book(s) labelled.\n\n"
            "  --width W, --height H  size in pixels / points (default 1400 x 900)\n"
            "  --labels N             central books labelled per tribe (default 1; 0: none)\n"
            "  --title TEXT           the title (default: describes the model)\n");
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},  {"out", required_argument, 0, 'o'},
        {"width", required_argument, 0, 'W'},  {"height", required_argument, 0, 'H'},
        {"labels", required_argument, 0, 'l'}, {"title", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *dir = NULL, *outp = NULL;
    br_plot_options o = BR_PLOT_OPTIONS_DEFAULT;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': dir = optarg; break;
        case 'o': outp = optarg; break;
        case 'W':
            if (cli_parse_int(optarg, &o.width)) return cli_usage_error("plot", "--width needs a number");
            break;
        case 'H':
            if (cli_parse_int(optarg, &o.height)) return cli_usage_error("plot", "--height needs a number");
            break;
        case 'l':
            if (cli_parse_int(optarg, &o.label_per_tribe) || o.label_per_tribe < 0)
                return cli_usage_error("plot", "--labels needs a count >= 0");
            break;
        case 't': o.title = optarg; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("plot", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("plot", "unexpected argument '%s'", argv[optind]);
    if (!dir || !outp) return cli_usage_error("plot", "--model DIR and --out FILE are required");
    br_tribes *t = NULL;
    br_status st = br_tribes_load(dir, &t);
    if (st == BR_OK) st = br_plot_tribes(t, &o, outp);
    br_tribes_free(t);
    br_plot_release_caches(); /* one-shot process: leave leak checkers a clean exit */
    if (st != BR_OK) return cli_fail("plot", st);
    return CLI_OK;
}

const cli_command cli_cmd_plot = {"plot", "draw the tribes picture (PNG, SVG, PDF)", run, usage};
