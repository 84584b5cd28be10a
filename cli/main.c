/*
 * main.c: the `bookrec` binary. Parses the global options, then hands the
 * rest of the command line to a git-style subcommand (cmd_<name>.c).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_quiet;
int cli_verbose;

#include "cli_commands.h"

static const cli_command *const commands[] = {CLI_COMMAND_TABLE};

const cli_command *const *cli_commands(void)
{
    return commands;
}

const cli_command *cli_find_command(const char *name)
{
    for (int i = 0; commands[i]; i++)
        if (strcmp(commands[i]->name, name) == 0) return commands[i];
    return NULL;
}

/* Two settings only take effect before the libraries load, so the CLI sets
 * them and runs itself again (once: they are then set):
 * - OpenBLAS picks its kernels as it loads; on a CPU its build does not know
 *   it falls back to slow generic ones (br_blas_better_core names better).
 * - OpenMP threads spin while they wait at a barrier. On a small machine
 *   whose two vCPUs share one core, a spinning thread takes the FP units
 *   from the one computing: passive waiting makes 2 threads faster, not
 *   slower, than 1. An explicit OMP_WAIT_POLICY is kept.
 * BOOKREC_NO_REEXEC=1 turns this off. */
static void reexec_with_settings(char **argv)
{
    if (getenv("BOOKREC_NO_REEXEC")) return;
    const char *core = br_blas_better_core();
    int need_wait = getenv("OMP_WAIT_POLICY") == NULL;
    if (!core && !need_wait) return;
    if (core && setenv("OPENBLAS_CORETYPE", core, 0) != 0) return;
    if (need_wait && setenv("OMP_WAIT_POLICY", "passive", 0) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed: go on as we are */
}

int main(int argc, char **argv)
{
    reexec_with_settings(argv);
    opterr = 0; /* a rejected option is reported once, by cli_bad_option */
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
            return cli_cmd_version.run(1, (char *[]){"version", NULL});
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            return cli_cmd_help.run(1, (char *[]){"help", NULL});
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            cli_quiet = 1;
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            cli_verbose++;
        } else if (!strcmp(a, "--threads") || !strncmp(a, "--threads=", 10)) {
            const char *v = a[9] == '=' ? a + 10 : (i + 1 < argc ? argv[++i] : NULL);
            int n;
            if (!v || cli_parse_int(v, &n) || n < 0)
                return cli_usage_error(NULL, "--threads needs a count >= 0 (0: all processors)");
            br_set_num_threads(n);
        } else {
            return cli_usage_error(NULL, "unknown option '%s'", a);
        }
    }
    if (i >= argc) {
        cli_cmd_help.usage(stderr);
        return CLI_USAGE;
    }
    const cli_command *cmd = cli_find_command(argv[i]);
    if (!cmd) return cli_usage_error(NULL, "'%s' is not a bookrec command", argv[i]);
    cli_setup_reporting();
    return cmd->run(argc - i, argv + i);
}
