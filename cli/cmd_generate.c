/*
 * cmd_generate.c: `bookrec generate`, the seed universe (and the scale-test
 * generator): books.csv and ratings.csv built by the seed notebook's recipe.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec generate [--books N] [--users N] [--seed S] [--rng numpy|xoshiro]\n"
            "                        [--min-per-user N] [--max-per-user N] --out DIR\n\n"
            "Writes DIR/books.csv (book_id,title,genre,description) and DIR/ratings.csv\n"
            "(user_id,book_id,rating) by the seed notebook's recipe: 7 genres, titles from\n"
            "adjective + noun + volume, a description template per genre, each reader\n"
            "rating 20 to 49 distinct books uniformly 1 to 5. Deterministic for a seed.\n\n"
            "  --books N         books (default 1000)\n"
            "  --users N         readers (default 100)\n"
            "  --seed S          random seed (default 42)\n"
            "  --rng numpy       replay numpy's legacy MT19937 stream as the notebook draws\n"
            "                    it: seed 42, 1000 x 100 is the notebook's universe exactly.\n"
            "                    Costs O(books) per reader.\n"
            "  --rng xoshiro     bookrec's own stream, O(ratings): use it for large\n"
            "                    universes such as --books 100000 --users 1000000 (default)\n"
            "  --min-per-user N  fewest books a reader rates (default 20)\n"
            "  --max-per-user N  most books a reader rates (default 49)\n"
            "  --out DIR         output folder (created if missing)\n"
            "  --json            print the summary as JSON\n");
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"books", required_argument, 0, 'b'},  {"users", required_argument, 0, 'u'},
        {"seed", required_argument, 0, 's'},   {"rng", required_argument, 0, 'r'},
        {"min-per-user", required_argument, 0, 'm'},
        {"max-per-user", required_argument, 0, 'M'},
        {"out", required_argument, 0, 'o'},    {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    br_generate_options o = BR_GENERATE_OPTIONS_DEFAULT;
    const char *out = NULL;
    int json = 0, c;
    unsigned long long v;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (cli_parse_u64(optarg, &v) || v == 0)
                return cli_usage_error("generate", "--books needs a positive count");
            o.n_books = v;
            break;
        case 'u':
            if (cli_parse_u64(optarg, &v) || v == 0)
                return cli_usage_error("generate", "--users needs a positive count");
            o.n_users = v;
            break;
        case 's':
            if (cli_parse_u64(optarg, &v))
                return cli_usage_error("generate", "--seed needs a non-negative integer");
            o.seed = v;
            break;
        case 'r':
            if (!strcmp(optarg, "numpy")) o.rng = BR_GEN_NUMPY;
            else if (!strcmp(optarg, "xoshiro")) o.rng = BR_GEN_XOSHIRO;
            else return cli_usage_error("generate", "--rng is numpy or xoshiro");
            break;
        case 'm':
        case 'M': {
            int n;
            if (cli_parse_int(optarg, &n) || n < 1)
                return cli_usage_error("generate", "--%s needs a positive count",
                                       c == 'm' ? "min-per-user" : "max-per-user");
            if (c == 'm') o.min_per_user = n;
            else o.max_per_user = n;
            break;
        }
        case 'o': out = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("generate", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("generate", "unexpected argument '%s'", argv[optind]);
    if (!out) return cli_usage_error("generate", "--out DIR is required");
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        br_status st = br_error(BR_EIO, "%s: cannot create folder: %s", out, strerror(errno));
        return cli_fail("generate", st);
    }
    br_generate_report rep;
    br_status st = br_generate(&o, out, &rep);
    if (st != BR_OK) return cli_fail("generate", st);
    if (json) {
        json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:f, s:s}", "books",
                              (json_int_t)rep.n_books, "users", (json_int_t)rep.n_users,
                              "ratings", (json_int_t)rep.n_ratings, "books_bytes",
                              (json_int_t)rep.books_bytes, "ratings_bytes",
                              (json_int_t)rep.ratings_bytes, "seconds", rep.seconds, "out", out);
        cli_print_json(j);
    } else {
        printf("wrote %s/books.csv (%llu books) and %s/ratings.csv (%llu ratings of %llu "
               "readers) in %.2f s\n",
               out, (unsigned long long)rep.n_books, out, (unsigned long long)rep.n_ratings,
               (unsigned long long)rep.n_users, rep.seconds);
    }
    return CLI_OK;
}

const cli_command cli_cmd_generate = {"generate", "write a seed universe (books.csv, ratings.csv)",
                                      run, usage};
