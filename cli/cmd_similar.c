/*
 * cmd_similar.c: `bookrec similar`, content recommendations: the books most
 * similar (cosine of embeddings) to a book, or to a reader's profile
 * (unread books only), plus the notebook's tribe rule for a reader.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* cmd_cluster.c */
br_status cli_content_embed_books(const br_catalog *cat, int description_only, const char *model,
                                  float **out, size_t *dim);

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec similar --books FILE (--book ID | --user ID --ratings FILE)\n"
            "                       [--embeddings E.npy | --model-dir DIR] [--n 10]\n"
            "                       [--template description|full] [--json]\n\n"
            "Content-based recommendations from the books' sentence embeddings:\n"
            "  --book ID    the n books most similar to this one (cosine)\n"
            "  --user ID    the n unread books most similar to the reader's profile (the\n"
            "               rating-weighted mean of the books rated >= 4, else of all);\n"
            "               with --model-dir, also the notebook's rule: unread books of\n"
            "               the favourite book's tribe\n"
            "Embeddings come from --embeddings, else from DIR/embeddings.npy (bookrec\n"
            "cluster), else the books are embedded now with the encoder.\n");
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"books", required_argument, 0, 'b'},      {"book", required_argument, 0, 'B'},
        {"user", required_argument, 0, 'u'},       {"ratings", required_argument, 0, 'r'},
        {"embeddings", required_argument, 0, 'e'}, {"model-dir", required_argument, 0, 'd'},
        {"n", required_argument, 0, 'n'},          {"template", required_argument, 0, 't'},
        {"json", no_argument, 0, 'j'},             {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *books = NULL, *book = NULL, *user = NULL, *ratings = NULL, *embp = NULL,
               *dir = NULL;
    unsigned long long n = 10;
    int desc_only = 1, json = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': books = optarg; break;
        case 'B': book = optarg; break;
        case 'u': user = optarg; break;
        case 'r': ratings = optarg; break;
        case 'e': embp = optarg; break;
        case 'd': dir = optarg; break;
        case 'n':
            if (cli_parse_u64(optarg, &n) || n == 0 || n > 100000)
                return cli_usage_error("similar", "--n needs 1..100000");
            break;
        case 't':
            if (!strcmp(optarg, "description")) desc_only = 1;
            else if (!strcmp(optarg, "full")) desc_only = 0;
            else return cli_usage_error("similar", "--template is description or full");
            break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_usage_error("similar", "bad option");
        }
    }
    if (optind < argc) return cli_usage_error("similar", "unexpected argument '%s'", argv[optind]);
    if (!books) return cli_usage_error("similar", "--books FILE is required");
    if (!book == !user) return cli_usage_error("similar", "give one of --book ID or --user ID");
    if (user && !ratings) return cli_usage_error("similar", "--user needs --ratings FILE");

    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat = NULL;
    br_ratings *rt = NULL;
    br_tribes *t = NULL;
    br_array e = {0};
    float *emb = NULL, *own = NULL;
    size_t dim = 0, nb = 0;
    int32_t *ids = br_malloc(n * sizeof(int32_t)), *tribe_ids = br_malloc(n * sizeof(int32_t));
    float *scores = br_malloc(n * sizeof(float));
    size_t n_tribe = 0;
    int64_t bi = -1, ui = -1;
    br_status st = ids && scores && tribe_ids ? br_catalog_load(books, &lo, &cat, NULL)
                                              : br_error(BR_ENOMEM, "out of memory");
    if (st == BR_OK) nb = br_catalog_count(cat);
    if (st == BR_OK && ratings) st = br_ratings_load(ratings, cat, &lo, &rt, NULL);
    if (st == BR_OK && dir) st = br_tribes_load(dir, &t);
    if (st == BR_OK && t && t->n_books != nb)
        st = br_error(BR_EINVAL, "%s has %zu books; %s has %zu", dir, t->n_books, books, nb);
    if (st == BR_OK) {
        if (embp) {
            st = br_npy_read(embp, BR_DTYPE_F32, &e);
            emb = e.data;
            dim = e.cols;
            if (st == BR_OK && e.rows != nb)
                st = br_error(BR_EINVAL, "%s has %zu rows; %s has %zu books", embp, e.rows, books,
                              nb);
        } else if (t && t->embeddings) {
            emb = t->embeddings;
            dim = t->dim;
        } else {
            st = cli_content_embed_books(cat, desc_only, NULL, &own, &dim);
            emb = own;
        }
    }
    if (st == BR_OK && book) {
        bi = br_catalog_find(cat, book);
        if (bi < 0) st = br_error(BR_ENOTFOUND, "book '%s' is not in %s", book, books);
        else st = br_content_similar_book(emb, nb, dim, (uint32_t)bi, n, ids, scores);
    } else if (st == BR_OK) {
        ui = br_ratings_find_user(rt, user);
        if (ui < 0) st = br_error(BR_ENOTFOUND, "reader '%s' is not in %s", user, ratings);
        else st = br_content_similar_user(emb, nb, dim, rt, (uint32_t)ui, n, ids, scores);
        if (st == BR_OK && t)
            st = br_content_tribe_recs(t, rt, (uint32_t)ui, n, tribe_ids, &n_tribe);
    }
    int rc = CLI_OK;
    if (st != BR_OK) {
        rc = cli_fail("similar", st);
    } else {
        json_t *arr = json_array();
        if (!json) {
            if (book)
                printf("books most similar to %s \"%s\"\n", book,
                       br_catalog_book(cat, (uint32_t)bi)->title);
            else
                printf("unread books closest to reader %s's profile\n", user);
        }
        for (size_t i = 0; i < n && ids[i] >= 0; i++) {
            const br_book *b = br_catalog_book(cat, (uint32_t)ids[i]);
            if (json)
                json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:f}", "book_id", b->id,
                                                     "title", b->title, "genre", b->genre, "score",
                                                     (double)scores[i]));
            else
                printf("  %2zu. %-8s %.4f  %s%s%s%s\n", i + 1, b->id, (double)scores[i], b->title,
                       b->genre[0] ? " [" : "", b->genre, b->genre[0] ? "]" : "");
        }
        json_t *tr = json_array();
        if (user && t) {
            uint32_t fav = 0;
            br_content_favourite(rt, (uint32_t)ui, &fav);
            if (!json)
                printf("tribe rule: favourite %s \"%s\", tribe \"%s\"\n",
                       br_catalog_book(cat, fav)->id, br_catalog_book(cat, fav)->title,
                       t->tribe[t->labels[fav]].name);
            for (size_t i = 0; i < n_tribe; i++) {
                const br_book *b = br_catalog_book(cat, (uint32_t)tribe_ids[i]);
                if (json)
                    json_array_append_new(tr, json_pack("{s:s, s:s}", "book_id", b->id, "title",
                                                        b->title));
                else
                    printf("  %2zu. %-8s %s\n", i + 1, b->id, b->title);
            }
        }
        if (json) {
            json_t *o = json_pack("{s:o}", "similar", arr);
            if (user && t) json_object_set_new(o, "tribe", tr);
            else json_decref(tr);
            cli_print_json(o);
        } else {
            json_decref(arr);
            json_decref(tr);
        }
    }
    br_free(ids);
    br_free(tribe_ids);
    br_free(scores);
    br_array_free(&e);
    br_aligned_free(own);
    br_tribes_free(t);
    br_ratings_free(rt);
    br_catalog_free(cat);
    return rc;
}

const cli_command cli_cmd_similar = {"similar", "books similar to a book or to a reader (content)",
                                     run, usage};
