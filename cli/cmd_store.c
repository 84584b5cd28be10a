/*
 * cmd_store.c: `bookrec store restore`, putting back into a store that lost
 * its data (Redis restarted empty, the LMDB directory deleted) everything
 * a reader's answer depends on (br_models_restore, bookrec/train.h).
 */
#include <getopt.h>
#include <jansson.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: bookrec store restore --model-dir DIR [--store URI] [--ratings FILE]\n"
                 "                             [--json]\n\n"
                 "restore: puts back into the store what a reader's answer depends on, after it\n"
                 "  lost its data (docs/store.md, \"Recovering a store\"): the readers' seen sets\n"
                 "  and latest interactions, from the ratings the newest served version was\n"
                 "  trained on, its folded rating events and the events of the store's log and\n"
                 "  of the log `train --events` read; then the current version's lists, books\n"
                 "  and metadata when the store does not serve it. Running it twice adds\n"
                 "  nothing twice.\n\n"
                 "  --model-dir DIR  the model directory `bookrec train` writes\n"
                 "  --store URI      the store (default: the one the current version's manifest\n"
                 "                   names)\n"
                 "  --ratings FILE   the ratings file that version was trained on, when it is no\n"
                 "                   longer where its manifest says (checked by size and hash)\n"
                 "  --json           one JSON line with the figures\n");
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {{"model-dir", required_argument, 0, 'd'},
                                             {"store", required_argument, 0, 's'},
                                             {"ratings", required_argument, 0, 'r'},
                                             {"json", no_argument, 0, 'j'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const char *dir = NULL, *store = NULL, *ratings = NULL;
    int json = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 's':
            store = optarg;
            break;
        case 'r':
            ratings = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            return cli_bad_option("store", argv, longopts);
        }
    }
    if (optind >= argc) return cli_usage_error("store", "restore?");
    const char *sub = argv[optind++];
    if (strcmp(sub, "restore") != 0)
        return cli_usage_error("store", "unknown subcommand '%s'", sub);
    if (optind < argc) return cli_usage_error("store", "unexpected argument '%s'", argv[optind]);
    if (!dir) return cli_usage_error("store", "--model-dir DIR is required");
    br_models_restore_report rep;
    br_status st = br_models_restore(dir, store, ratings, &rep);
    if (st) return cli_fail("store", st);
    if (json) {
        cli_print_json(json_pack("{s:s, s:b, s:s, s:I, s:I, s:I}", "version", rep.version,
                                 "republished", rep.republished, "source", rep.source, "ratings",
                                 (json_int_t)rep.ratings, "events", (json_int_t)rep.events,
                                 "readers", (json_int_t)rep.readers));
        return CLI_OK;
    }
    printf("restored %llu readers (%llu ratings of %s, %llu events); serving %s%s\n",
           (unsigned long long)rep.readers, (unsigned long long)rep.ratings, rep.source,
           (unsigned long long)rep.events, rep.version,
           rep.republished ? " (lists republished)" : "");
    return CLI_OK;
}

const cli_command cli_cmd_store = {"store", "restore a store that lost its data", run, usage};
