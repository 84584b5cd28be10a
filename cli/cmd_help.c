/*
 * cmd_help.c: `bookrec help [COMMAND]`, the command list and per-command help.
 */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: bookrec [--threads N] [--quiet] [--verbose] <command> [options]\n"
                 "       bookrec --version | --help\n\n"
                 "bookrec is a hybrid book recommendation engine: content, collaborative\n"
                 "and hybrid recommenders, an offline training job and an online API.\n\n"
                 "Commands:\n");
    for (const cli_command *const *c = cli_commands(); *c; c++)
        fprintf(out, "  %-12s %s\n", (*c)->name, (*c)->summary);
    fprintf(out, "\nGlobal options:\n"
                 "  --threads N   threads for every parallel kernel (default: all processors)\n"
                 "  --quiet       no progress output\n"
                 "  --verbose     log what the library does (twice: debug)\n\n"
                 "Run 'bookrec help <command>' or 'bookrec <command> --help' for details.\n"
                 "Exit status: 0 success, 1 runtime error, 2 usage error.\n");
}

static int run(int argc, char **argv)
{
    int rc = cli_help_only("help", argc, argv, usage);
    if (rc >= 0) return rc;
    if (optind >= argc) {
        usage(stdout);
        return CLI_OK;
    }
    if (optind + 1 < argc)
        return cli_usage_error("help", "unexpected argument '%s'", argv[optind + 1]);
    const cli_command *cmd = cli_find_command(argv[optind]);
    if (!cmd) return cli_usage_error("help", "'%s' is not a bookrec command", argv[optind]);
    cmd->usage(stdout);
    return CLI_OK;
}

const cli_command cli_cmd_help = {"help", "show help for bookrec or one command", run, usage};
