/*
 * cmd_models.c: `bookrec models list|show|rollback|prune`, the model
 * versions of a model directory written by `bookrec train`
 * (bookrec/train.h).
 */
#include <getopt.h>
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: bookrec models list --model-dir DIR [--json]\n"
                 "       bookrec models show [ID] --model-dir DIR\n"
                 "       bookrec models rollback [ID] --model-dir DIR [--store URI]\n"
                 "       bookrec models prune --keep N --model-dir DIR\n\n"
                 "list: every complete version, oldest first, '*' marks the current one.\n"
                 "show: a version's manifest (default: the current one).\n"
                 "rollback: serves version ID again (default: the newest served one before\n"
                 "  the current; never an interrupted run's):\n"
                 "  re-publishes its recommendations and books to the store (the one in its\n"
                 "  manifest, a path there being relative to DIR, unless --store), with the\n"
                 "  readers' seen sets and latest interactions as `bookrec store restore`\n"
                 "  puts them back, then re-points DIR/current.\n"
                 "prune: removes all but the newest N versions, never the current one.\n");
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {{"model-dir", required_argument, 0, 'd'},
                                             {"store", required_argument, 0, 's'},
                                             {"keep", required_argument, 0, 'k'},
                                             {"json", no_argument, 0, 'j'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const char *dir = NULL, *store = NULL;
    int json = 0, c, keep = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 's':
            store = optarg;
            break;
        case 'k':
            if (cli_parse_int(optarg, &keep) || keep < 1)
                return cli_usage_error("models", "--keep needs a count >= 1");
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            return cli_bad_option("models", argv, longopts);
        }
    }
    if (optind >= argc) return cli_usage_error("models", "list, show, rollback or prune?");
    const char *sub = argv[optind++];
    const char *id = optind < argc ? argv[optind++] : NULL;
    if (optind < argc) return cli_usage_error("models", "unexpected argument '%s'", argv[optind]);
    if (!dir) return cli_usage_error("models", "--model-dir DIR is required");
    br_status st;
    if (!strcmp(sub, "list")) {
        if (id) return cli_usage_error("models", "list takes no id");
        br_model_version *v;
        size_t n;
        if ((st = br_models_list(dir, &v, &n))) return cli_fail("models", st);
        for (size_t i = 0; i < n; i++) {
            if (json) {
                cli_print_json(json_pack(
                    "{s:s, s:b, s:b, s:I, s:I, s:I}", "id", v[i].id, "current", v[i].current,
                    "served", v[i].served, "created_at", (json_int_t)v[i].created_at, "books",
                    (json_int_t)v[i].n_books, "readers", (json_int_t)v[i].n_users));
                continue;
            }
            char when[32] = "?";
            time_t t = (time_t)v[i].created_at;
            struct tm tm;
            if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
            printf("%c %s  %s  %llu books  %llu readers%s\n", v[i].current ? '*' : ' ', v[i].id,
                   when, (unsigned long long)v[i].n_books, (unsigned long long)v[i].n_users,
                   v[i].served ? "" : "  (never served: an interrupted run's)");
        }
        br_free(v);
        return CLI_OK;
    }
    if (!strcmp(sub, "show")) {
        char *text;
        if ((st = br_models_manifest(dir, id, &text))) return cli_fail("models", st);
        fputs(text, stdout);
        if (!*text || text[strlen(text) - 1] != '\n') putchar('\n');
        br_free(text);
        return CLI_OK;
    }
    if (!strcmp(sub, "rollback")) {
        char to[BR_MODEL_ID_MAX];
        if ((st = br_models_rollback(dir, id, store, to))) return cli_fail("models", st);
        printf("serving %s\n", to);
        return CLI_OK;
    }
    if (!strcmp(sub, "prune")) {
        if (!keep) return cli_usage_error("models", "prune needs --keep N");
        uint64_t removed;
        if ((st = br_models_prune(dir, (uint32_t)keep, &removed))) return cli_fail("models", st);
        printf("removed %llu versions\n", (unsigned long long)removed);
        return CLI_OK;
    }
    return cli_usage_error("models", "unknown subcommand '%s'", sub);
}

const cli_command cli_cmd_models = {"models", "list, show, roll back or prune model versions", run,
                                    usage};
