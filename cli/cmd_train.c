/*
 * cmd_train.c: `bookrec train`, the nightly librarian. Parses options and
 * prints the summary; the pipeline, the model versions and the publish are
 * the library's (bookrec/train.h, src/train/).
 */
#include <getopt.h>
#include <jansson.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec train --books FILE --ratings FILE --model-dir DIR [--store URI]\n"
            "                     [--encoder use-lite|bert:DIR] [--cf als|svd] [--clusters K]\n"
            "                     [--factors N] [--iterations N] [--top-n N] [--seed N]\n"
            "                     [--template full|description] [--events URI] [--keep N]\n"
            "                     [--rating-scale MIN:MAX]\n"
            "                     [--eval [--eval-k K] [--eval-readers N]]\n"
            "                     [--json]\n\n"
            "Trains a new model version and publishes it: ingest -> embed (only new or\n"
            "changed books, through DIR/embeddings.brec and the shared cache:\n"
            "$BOOKREC_EMBED_CACHE, else ~/.cache/bookrec/embeddings/) -> tribes ->\n"
            "vector index (new books added to the previous version's index) ->\n"
            "collaborative training -> top-N per reader -> publish to the store, then\n"
            "DIR/current is re-pointed.\n"
            "A run that fails or is killed leaves the previous version serving.\n\n"
            "  --books FILE          books.csv\n"
            "  --ratings FILE        ratings.csv: user_id, book_id, rating [, timestamp]\n"
            "  --model-dir DIR       versions/<id>/, current, embeddings.brec (created)\n"
            "  --store URI           lmdb:DIR, redis://HOST:PORT[/DB] or\n"
            "                        redis-cluster://HOST:PORT[,HOST:PORT...]\n"
            "                        (default lmdb:<model-dir>/store)\n"
            "  --events URI          fold in the rating events of this event log (the\n"
            "                        store URI `bookrec ingest --store` appended to);\n"
            "                        events outside the scale or the catalogue are not\n"
            "                        folded, and counted\n"
            "  --rating-scale A:B    the valid rating range (default 1:5), recorded in\n"
            "                        the version: ingest and the server check by it\n"
            "  --encoder MODEL       use-lite (default) or bert:DIR\n"
            "  --template T          book text: full (default) or description\n"
            "  --cf als|svd          als: the default hybrid (ease + als + content);\n"
            "                        svd: the notebook's hybrid (content + svd)\n"
            "  --clusters K          tribes (default 10)\n"
            "  --factors N           collaborative factors (default 64 als, 50 svd)\n"
            "  --iterations N        als iterations (default 15)\n"
            "  --top-n N             recommendations kept per reader (default 100)\n"
            "  --seed N              every seeded step (default 42)\n"
            "  --keep N              keep the newest N versions (default: all)\n"
            "  --eval                evaluation figures in the manifest: docs/evaluation.md's\n"
            "                        protocol on a seeded split of the CSV ratings, the\n"
            "                        same engine fitted on its training part\n"
            "  --eval-k K            cut-off of the figures (default 10)\n"
            "  --eval-readers N      readers ranked, thinned evenly (default 10000)\n"
            "  --json                the summary as one JSON line\n");
}

static int parse_count(const char *s, uint32_t *out, uint32_t min)
{
    int v;
    if (cli_parse_int(s, &v) || v < (int)min) return -1;
    *out = (uint32_t)v;
    return 0;
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {{"books", required_argument, 0, 'b'},
                                             {"ratings", required_argument, 0, 'r'},
                                             {"model-dir", required_argument, 0, 'd'},
                                             {"store", required_argument, 0, 's'},
                                             {"encoder", required_argument, 0, 'e'},
                                             {"cf", required_argument, 0, 'c'},
                                             {"clusters", required_argument, 0, 'k'},
                                             {"factors", required_argument, 0, 'f'},
                                             {"iterations", required_argument, 0, 'i'},
                                             {"top-n", required_argument, 0, 'n'},
                                             {"seed", required_argument, 0, 'S'},
                                             {"keep", required_argument, 0, 'K'},
                                             {"template", required_argument, 0, 'T'},
                                             {"events", required_argument, 0, 'E'},
                                             {"rating-scale", required_argument, 0, 'G'},
                                             {"eval", no_argument, 0, 'v'},
                                             {"eval-k", required_argument, 0, 'V'},
                                             {"eval-readers", required_argument, 0, 'R'},
                                             {"json", no_argument, 0, 'j'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    br_train_options o = BR_TRAIN_OPTIONS_DEFAULT;
    int json = 0, c;
    unsigned long long u64;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            o.books = optarg;
            break;
        case 'r':
            o.ratings = optarg;
            break;
        case 'd':
            o.model_dir = optarg;
            break;
        case 's':
            o.store = optarg;
            break;
        case 'e':
            if (strcmp(optarg, "use-lite") && strncmp(optarg, "bert:", 5))
                return cli_usage_error("train", "--encoder is use-lite or bert:DIR");
            o.encoder = optarg;
            break;
        case 'c':
            if (!strcmp(optarg, "als"))
                o.cf = BR_TRAIN_CF_ALS;
            else if (!strcmp(optarg, "svd"))
                o.cf = BR_TRAIN_CF_SVD;
            else
                return cli_usage_error("train", "--cf is als or svd");
            break;
        case 'k':
            if (parse_count(optarg, &o.clusters, 1))
                return cli_usage_error("train", "--clusters needs a count >= 1");
            break;
        case 'f':
            if (parse_count(optarg, &o.factors, 1))
                return cli_usage_error("train", "--factors needs a count >= 1");
            break;
        case 'i':
            if (parse_count(optarg, &o.iterations, 1))
                return cli_usage_error("train", "--iterations needs a count >= 1");
            break;
        case 'n':
            if (parse_count(optarg, &o.top_n, 1))
                return cli_usage_error("train", "--top-n needs a count >= 1");
            break;
        case 'S':
            if (cli_parse_u64(optarg, &u64))
                return cli_usage_error("train", "--seed needs a number");
            o.seed = u64;
            break;
        case 'K':
            if (parse_count(optarg, &o.keep, 1))
                return cli_usage_error("train", "--keep needs a count >= 1");
            break;
        case 'T':
            if (cli_parse_template(optarg, &o.text))
                return cli_usage_error("train", "--template is full or description");
            break;
        case 'E':
            o.events = optarg;
            break;
        case 'G': {
            double lo, hi;
            if (cli_parse_range(optarg, &lo, &hi))
                return cli_usage_error("train", "--rating-scale needs MIN:MAX with MIN < MAX");
            o.rating_min = (float)lo;
            o.rating_max = (float)hi;
            break;
        }
        case 'v':
            o.eval = 1;
            break;
        case 'V':
            if (parse_count(optarg, &o.eval_k, 1))
                return cli_usage_error("train", "--eval-k needs a count >= 1");
            o.eval = 1;
            break;
        case 'R':
            if (parse_count(optarg, &o.eval_readers, 1))
                return cli_usage_error("train", "--eval-readers needs a count >= 1");
            o.eval = 1;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            return cli_bad_option("train", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (!o.books || !o.ratings || !o.model_dir)
        return cli_usage_error("train", "--books, --ratings and --model-dir are required");
    br_train_report rep;
    br_status st = br_train_run(&o, &rep);
    if (st) return cli_fail("train", st);
    if (json) {
        json_t *stages = json_object();
        for (int i = 0; i < BR_TRAIN_STAGES; i++)
            json_object_set_new(stages, rep.stage[i].name,
                                json_pack("{s:f, s:I}", "seconds", rep.stage[i].seconds, "count",
                                          (json_int_t)rep.stage[i].count));
        json_t *j = json_pack(
            "{s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:I, s:f, s:o}", "version",
            rep.version, "previous", rep.previous[0] ? rep.previous : NULL, "books",
            (json_int_t)rep.n_books, "readers", (json_int_t)rep.n_users, "ratings",
            (json_int_t)rep.n_ratings, "events", (json_int_t)rep.n_events, "events_new",
            (json_int_t)rep.n_events_new, "events_trimmed", (json_int_t)rep.events_trimmed,
            "embedded", (json_int_t)rep.embedded, "index_added", (json_int_t)rep.index_added,
            "index_incremental", rep.index_incremental, "pruned", (json_int_t)rep.pruned, "seconds",
            rep.seconds, "stages", stages);
        if (j) {
            json_object_set_new(j, "events_rejected",
                                json_integer((json_int_t)rep.events_rejected));
            json_object_set_new(j, "events_rejected_first",
                                rep.events_rejected ? json_string(rep.events_rejected_first)
                                                    : json_null());
        }
        if (j && rep.evaluated)
            json_object_set_new(
                j, "evaluation",
                json_pack("{s:I, s:I, s:f, s:f, s:f, s:f, s:f}", "k", (json_int_t)rep.eval.k,
                          "readers", (json_int_t)rep.eval.users_ranked, "precision",
                          rep.eval.precision, "recall", rep.eval.recall, "ndcg", rep.eval.ndcg,
                          "map", rep.eval.map, "seconds", rep.eval_seconds));
        cli_print_json(j);
        return CLI_OK;
    }
    printf("version %s published (previous: %s)\n", rep.version,
           rep.previous[0] ? rep.previous : "none");
    printf("%llu books, %llu readers, %llu ratings; embedded %llu books; index %s +%llu\n",
           (unsigned long long)rep.n_books, (unsigned long long)rep.n_users,
           (unsigned long long)rep.n_ratings, (unsigned long long)rep.embedded,
           rep.index_incremental ? "extended" : "built", (unsigned long long)rep.index_added);
    if (rep.n_events)
        printf("%llu rating events folded in (%llu new from the log); stream trimmed of %llu\n",
               (unsigned long long)rep.n_events, (unsigned long long)rep.n_events_new,
               (unsigned long long)rep.events_trimmed);
    if (rep.events_rejected)
        printf("%llu rating events rejected, not folded in; the first: %s\n",
               (unsigned long long)rep.events_rejected, rep.events_rejected_first);
    for (int i = 0; i < BR_TRAIN_STAGES; i++)
        printf("  %-8s %8.2f s  %llu\n", rep.stage[i].name, rep.stage[i].seconds,
               (unsigned long long)rep.stage[i].count);
    if (rep.evaluated)
        printf("  %-8s %8.2f s  precision@%u %.4f recall@%u %.4f ndcg@%u %.4f (%zu readers)\n",
               "eval", rep.eval_seconds, rep.eval.k, rep.eval.precision, rep.eval.k,
               rep.eval.recall, rep.eval.k, rep.eval.ndcg, rep.eval.users_ranked);
    printf("  %-8s %8.2f s\n", "total", rep.seconds);
    if (rep.pruned) printf("pruned %llu old versions\n", (unsigned long long)rep.pruned);
    return CLI_OK;
}

const cli_command cli_cmd_train = {"train", "train and publish a new model version", run, usage};
