/*
 * cmd_similar.c: `bookrec similar`, content recommendations: the books most
 * similar (cosine of embeddings) to a book, or to a reader's profile
 * (unread books only), plus the notebook's tribe rule for a reader. By
 * default it embeds what `train` embeds (the full text, use-lite), so
 * `similar --book` answers as the API's /api/books/{id}/similar of a model
 * trained with the defaults; a trained --model-dir gives that model's own
 * embeddings.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec similar --books FILE (--book ID | --user ID --ratings FILE)\n"
            "                       [--embeddings E.npy | --model-dir DIR]\n"
            "                       [--template full|description] [--encoder use-lite|bert:DIR]\n"
            "                       [--cache FILE|none] [--n 10] [--json]\n"
            "       bookrec similar --model-dir TRAINED-DIR --book ID [--n 10] [--json]\n\n"
            "Content-based recommendations from the books' sentence embeddings:\n"
            "  --book ID    the n books most similar to this one (cosine)\n"
            "  --user ID    the n unread books most similar to the reader's profile (the\n"
            "               rating-weighted mean of the books rated >= 4, else of all);\n"
            "               with --model-dir, also the notebook's rule: unread books of\n"
            "               the favourite book's tribe\n\n"
            "Embeddings come from --embeddings; else from --model-dir DIR: a model\n"
            "directory of `bookrec train` (its current version's embeddings and tribes,\n"
            "what the API's /api/books/{id}/similar searches; --books defaults to the\n"
            "version's books.csv) or of `bookrec cluster` (DIR/embeddings.npy); else\n"
            "the books are embedded now, through the shared embedding cache\n"
            "($BOOKREC_EMBED_CACHE, else ~/.cache/bookrec/embeddings: books any command\n"
            "or `train` embedded before are read, not embedded again):\n"
            "  --template T   full (default: title, authors, genre, tags, description,\n"
            "                 the text `train` and the API embed, so the answer is the\n"
            "                 API's for a model trained with the defaults) or description\n"
            "                 (the notebook's text)\n"
            "  --encoder E    use-lite (default) or bert:DIR\n"
            "  --cache FILE   also keep the embeddings in FILE; none: no cache at all\n"
            "  --json         {\"similar\": [...], \"embedded\": books embedded now}\n");
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"books", required_argument, 0, 'b'},      {"book", required_argument, 0, 'B'},
        {"user", required_argument, 0, 'u'},       {"ratings", required_argument, 0, 'r'},
        {"embeddings", required_argument, 0, 'e'}, {"model-dir", required_argument, 0, 'd'},
        {"n", required_argument, 0, 'n'},          {"template", required_argument, 0, 't'},
        {"encoder", required_argument, 0, 'E'},    {"cache", required_argument, 0, 'c'},
        {"json", no_argument, 0, 'j'},             {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *books = NULL, *book = NULL, *user = NULL, *ratings = NULL, *embp = NULL,
               *dir = NULL;
    unsigned long long n = 10;
    /* the text `train` and the API embed by default */
    cli_embed_options eo = {NULL, NULL, NULL, BR_TEXT_FULL, NULL, 0};
    int json = 0, c, embed_opts = 0;
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
            if (cli_parse_template(optarg, &eo.tmpl))
                return cli_usage_error("similar", "--template is full or description");
            embed_opts = 1;
            break;
        case 'E': eo.encoder = optarg, embed_opts = 1; break;
        case 'c': eo.cache = optarg, embed_opts = 1; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("similar", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("similar", "unexpected argument '%s'", argv[optind]);
    /* A trained model directory: its current version's files. */
    char vdir[4096], vbooks[4200], vemb[4200], vtribes[4200];
    int trained = 0;
    if (dir && br_models_path(dir, NULL, vdir, sizeof vdir) == BR_OK) {
        trained = 1;
        snprintf(vbooks, sizeof vbooks, "%s/books.csv", vdir);
        snprintf(vemb, sizeof vemb, "%s/embeddings.npy", vdir);
        snprintf(vtribes, sizeof vtribes, "%s/tribes", vdir);
        if (!books) books = vbooks;
    }
    br_error_clear();
    if (!books) return cli_usage_error("similar", "--books FILE is required");
    if (!book == !user) return cli_usage_error("similar", "give one of --book ID or --user ID");
    if (user && !ratings) return cli_usage_error("similar", "--user needs --ratings FILE");
    if (embed_opts && (embp || trained))
        return cli_usage_error("similar", "--template, --encoder and --cache choose how books "
                                          "are embedded: the embeddings come from %s",
                               embp ? embp : vemb);

    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat = NULL;
    br_ratings *rt = NULL;
    br_tribes *t = NULL;
    br_array e = {0};
    float *emb = NULL, *own = NULL;
    size_t dim = 0, nb = 0, embedded = 0;
    int32_t *ids = br_malloc(n * sizeof(int32_t)), *tribe_ids = br_malloc(n * sizeof(int32_t));
    float *scores = br_malloc(n * sizeof(float));
    size_t n_tribe = 0;
    int64_t bi = -1, ui = -1;
    int rc = CLI_OK;
    br_status st = ids && scores && tribe_ids ? br_catalog_load(books, &lo, &cat, NULL)
                                              : br_error(BR_ENOMEM, "out of memory");
    if (st == BR_OK) nb = br_catalog_count(cat);
    if (st == BR_OK && ratings) st = br_ratings_load(ratings, cat, &lo, &rt, NULL);
    if (st == BR_OK && dir) st = br_tribes_load(trained ? vtribes : dir, &t);
    if (st == BR_OK && t && t->n_books != nb)
        st = br_error(BR_EINVAL, "%s has %zu books; %s has %zu", dir, t->n_books, books, nb);
    if (st == BR_OK) {
        if (embp || trained) {
            const char *path = embp ? embp : vemb;
            st = br_npy_read(path, BR_DTYPE_F32, &e);
            emb = e.data;
            dim = e.cols;
            if (st == BR_OK && e.rows != nb)
                st = br_error(BR_EINVAL, "%s has %zu rows; %s has %zu books", path, e.rows, books,
                              nb);
        } else if (t && t->embeddings) {
            if (embed_opts) {
                rc = cli_usage_error("similar", "--template, --encoder and --cache choose how "
                                                "books are embedded: the embeddings come from "
                                                "%s/embeddings.npy",
                                     dir);
                goto done;
            }
            emb = t->embeddings;
            dim = t->dim;
        } else {
            if ((rc = cli_book_embeddings("similar", cat, &eo, &own, &dim, &embedded))) goto done;
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
            json_t *o = json_pack("{s:o, s:I}", "similar", arr, "embedded", (json_int_t)embedded);
            if (user && t) json_object_set_new(o, "tribe", tr);
            else json_decref(tr);
            cli_print_json(o);
        } else {
            json_decref(arr);
            json_decref(tr);
        }
    }
done:
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
