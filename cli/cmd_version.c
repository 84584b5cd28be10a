/*
 * cmd_version.c: `bookrec version` (also `bookrec --version`).
 */
#include <getopt.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: bookrec version\n\nPrints the bookrec version.\n");
}

static int run(int argc, char **argv)
{
    int rc = cli_help_only("version", argc, argv, usage);
    if (rc >= 0) return rc;
    if (optind < argc) return cli_usage_error("version", "unexpected argument '%s'", argv[optind]);
    printf("bookrec %s\n", br_version());
    return CLI_OK;
}

const cli_command cli_cmd_version = {"version", "print the version", run, usage};
