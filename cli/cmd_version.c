/*
 * cmd_version.c: `bookrec version` (also `bookrec --version`).
 */
#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: bookrec version\n\nPrints the bookrec version.\n");
}

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("bookrec %s\n", br_version());
    return CLI_OK;
}

const cli_command cli_cmd_version = {"version", "print the version", run, usage};
