/*
 * cmd_stats.c: `bookrec stats`, the summary of a catalogue and its ratings:
 * sizes, sparsity, the ratings histogram, activity per reader and per book,
 * genres (or top tags), with load times and duplicate/skip counts.
 */
#include <getopt.h>
#include <jansson.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec stats --books FILE [--ratings FILE] [--lenient]\n"
            "                     [--rating-scale MIN:MAX] [--json]\n\n"
            "Loads the catalogue (and ratings) and prints a summary: books, readers,\n"
            "ratings, sparsity, the ratings histogram, ratings per reader and per book,\n"
            "and genres (from the genre column, else each book's first tag).\n\n"
            "  --books FILE          books.csv: book_id, title required; authors, genre,\n"
            "                        tags (pipe-separated), year, description optional\n"
            "  --ratings FILE        ratings.csv: user_id, book_id, rating [, timestamp]\n"
            "  --lenient             skip bad rows (and report how many) instead of failing\n"
            "  --rating-scale A:B    the valid rating range (default 1:5)\n"
            "  --json                print JSON instead of text\n");
}

static void print_text(const br_stats *s, const br_load_report *br, const br_load_report *rr,
                       int have_ratings)
{
    printf("books      %u\n", s->n_books);
    if (have_ratings) {
        printf("readers    %u\n", s->n_users);
        printf("ratings    %zu\n", s->n_ratings);
        printf("sparsity   %.4f%% of the reader x book matrix is empty (density %.6f)\n",
               100.0 * s->sparsity, s->density);
        printf("mean       %.3f\n", s->mean_rating);
        printf("per reader min %u, median %.1f, max %u\n", s->user_min, s->user_median,
               s->user_max);
        printf("per book   min %u, median %.1f, max %u (%u books unrated)\n", s->book_min,
               s->book_median, s->book_max, s->books_unrated);
        printf("\nratings histogram\n");
        size_t peak = 1;
        for (int k = 0; k < s->n_bins; k++)
            if (s->bin_count[k] > peak) peak = s->bin_count[k];
        for (int k = 0; k < s->n_bins; k++) {
            int w = (int)(40.0 * (double)s->bin_count[k] / (double)peak + 0.5);
            printf("  %6g  %9zu  %5.1f%%  ", (double)s->bin_value[k], s->bin_count[k],
                   s->n_ratings ? 100.0 * (double)s->bin_count[k] / (double)s->n_ratings : 0);
            for (int i = 0; i < w; i++) putchar('#');
            putchar('\n');
        }
    }
    if (s->n_genres) {
        printf("\n%s (%d distinct)\n", s->genre_from_tags ? "first tags" : "genres",
               s->n_genres_total);
        int show = s->n_genres < 15 ? s->n_genres : 15;
        for (int k = 0; k < show; k++)
            printf("  %-28s %6u  %5.1f%%\n", s->genre[k], s->genre_count[k],
                   100.0 * s->genre_count[k] / (s->n_books ? s->n_books : 1));
        if (show < s->n_genres_total) printf("  ... and %d more\n", s->n_genres_total - show);
    }
    printf("\nloaded books in %.3f s", br->seconds);
    if (have_ratings) printf(", ratings in %.3f s", rr->seconds);
    printf("\n");
    if (br->duplicates || (have_ratings && rr->duplicates))
        printf("duplicates: %zu book rows and %zu (reader, book) rows superseded by later rows\n",
               br->duplicates, have_ratings ? rr->duplicates : 0);
    if (br->skipped) printf("skipped %zu bad book rows; first: %s\n", br->skipped, br->first_skip);
    if (have_ratings && rr->skipped)
        printf("skipped %zu bad rating rows; first: %s\n", rr->skipped, rr->first_skip);
}

static json_t *report_json(const br_load_report *r)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:f, s:s?}", "rows", (json_int_t)r->rows, "loaded",
                     (json_int_t)r->loaded, "skipped", (json_int_t)r->skipped, "duplicates",
                     (json_int_t)r->duplicates, "seconds", r->seconds, "first_skip",
                     r->first_skip[0] ? r->first_skip : NULL);
}

static void print_json(const br_stats *s, const br_load_report *br, const br_load_report *rr,
                       int have_ratings)
{
    json_t *o = json_object();
    json_object_set_new(o, "books", json_integer(s->n_books));
    json_t *genres = json_array();
    for (int k = 0; k < s->n_genres; k++)
        json_array_append_new(genres, json_pack("{s:s, s:I}", "name", s->genre[k], "books",
                                                (json_int_t)s->genre_count[k]));
    json_object_set_new(o, s->genre_from_tags ? "first_tags" : "genres", genres);
    json_object_set_new(o, "distinct_genres", json_integer(s->n_genres_total));
    json_object_set_new(o, "books_load", report_json(br));
    if (have_ratings) {
        json_object_set_new(o, "users", json_integer(s->n_users));
        json_object_set_new(o, "ratings", json_integer((json_int_t)s->n_ratings));
        json_object_set_new(o, "density", json_real(s->density));
        json_object_set_new(o, "sparsity", json_real(s->sparsity));
        json_object_set_new(o, "mean_rating", json_real(s->mean_rating));
        json_t *hist = json_array();
        for (int k = 0; k < s->n_bins; k++)
            json_array_append_new(hist, json_pack("{s:f, s:I}", "rating", (double)s->bin_value[k],
                                                  "count", (json_int_t)s->bin_count[k]));
        json_object_set_new(o, "histogram", hist);
        json_object_set_new(o, "per_user",
                            json_pack("{s:I, s:f, s:I}", "min", (json_int_t)s->user_min, "median",
                                      s->user_median, "max", (json_int_t)s->user_max));
        json_object_set_new(o, "per_book",
                            json_pack("{s:I, s:f, s:I, s:I}", "min", (json_int_t)s->book_min,
                                      "median", s->book_median, "max", (json_int_t)s->book_max,
                                      "unrated", (json_int_t)s->books_unrated));
        json_object_set_new(o, "ratings_load", report_json(rr));
    }
    cli_print_json(o);
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {{"books", required_argument, 0, 'b'},
                                              {"ratings", required_argument, 0, 'r'},
                                              {"lenient", no_argument, 0, 'l'},
                                              {"rating-scale", required_argument, 0, 's'},
                                              {"json", no_argument, 0, 'j'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    const char *books_path = NULL, *ratings_path = NULL;
    br_load_options opt = BR_LOAD_OPTIONS_DEFAULT;
    int json = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': books_path = optarg; break;
        case 'r': ratings_path = optarg; break;
        case 'l': opt.lenient = 1; break;
        case 's': {
            double lo, hi;
            if (cli_parse_range(optarg, &lo, &hi))
                return cli_usage_error("stats", "--rating-scale needs MIN:MAX with MIN < MAX");
            opt.rating_min = (float)lo;
            opt.rating_max = (float)hi;
            break;
        }
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("stats", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("stats", "unexpected argument '%s'", argv[optind]);
    if (!books_path) return cli_usage_error("stats", "--books FILE is required");

    br_catalog *cat = NULL;
    br_ratings *ratings = NULL;
    br_load_report brep, rrep;
    memset(&rrep, 0, sizeof rrep);
    br_stats s;
    br_status st = br_catalog_load(books_path, &opt, &cat, &brep);
    if (st == BR_OK && ratings_path) st = br_ratings_load(ratings_path, cat, &opt, &ratings, &rrep);
    if (st == BR_OK) st = br_stats_compute(cat, ratings, &s);
    int rc = CLI_OK;
    if (st != BR_OK) rc = cli_fail("stats", st);
    else if (json) print_json(&s, &brep, &rrep, ratings != NULL);
    else print_text(&s, &brep, &rrep, ratings != NULL);
    br_ratings_free(ratings);
    br_catalog_free(cat);
    return rc;
}

const cli_command cli_cmd_stats = {"stats", "summarise a catalogue and its ratings", run, usage};
