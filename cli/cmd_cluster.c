/*
 * cmd_cluster.c: `bookrec cluster`, the tribes step until the training
 * pipeline exists: embeddings (read, or computed with the encoder), k-means,
 * names, central books, the PCA picture data, saved into a model directory.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bookrec cluster --books FILE --model-dir DIR [--embeddings E.npy]\n"
            "                       [--template description|full] [--encoder E | --model PATH]\n"
            "                       [--cache FILE|none]\n"
            "                       [--k 10] [--n-init 10] [--seed 42] [--no-embeddings] [--json]\n\n"
            "Groups the catalogue into k book tribes (k-means on the books' sentence\n"
            "embeddings), names each tribe after its most frequent genre (or its most\n"
            "distinctive tags when the catalogue has no genre column), finds its most\n"
            "central books and the 2-D PCA view, and saves it all in DIR (tribes.json,\n"
            "labels.npy, centroids.npy, pca2.npy, embeddings.npy). `bookrec plot` and\n"
            "`bookrec similar` read it.\n\n"
            "  --embeddings E.npy  (n_books, dim) embeddings in catalogue order; without\n"
            "                      it the books are embedded with the encoder, through the\n"
            "                      shared embedding cache ($BOOKREC_EMBED_CACHE, else\n"
            "                      ~/.cache/bookrec/embeddings): a book any command or\n"
            "                      `train` embedded is not embedded again\n"
            "  --template T        text embedded: description (default: the notebook's\n"
            "                      tribes, as `recommend --engine content-cluster`) or full\n"
            "                      (title, authors, genre, tags, description: `train`'s)\n"
            "  --encoder E         use-lite (default) or bert:DIR\n"
            "  --model PATH        an encoder model file instead\n"
            "  --cache FILE|none   also keep the embeddings in FILE; none: no cache at all\n"
            "  --k K               tribes (default 10)\n"
            "  --n-init N          k-means restarts (default 10)\n"
            "  --seed S            random seed (default 42)\n"
            "  --no-embeddings     do not store the embeddings in DIR\n"
            "  --json              print the tribes as JSON (and \"embedded\": the books\n"
            "                      embedded now)\n");
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"books", required_argument, 0, 'b'},    {"model-dir", required_argument, 0, 'd'},
        {"embeddings", required_argument, 0, 'e'}, {"template", required_argument, 0, 't'},
        {"model", required_argument, 0, 'm'},    {"k", required_argument, 0, 'k'},
        {"n-init", required_argument, 0, 'n'},   {"seed", required_argument, 0, 's'},
        {"no-embeddings", no_argument, 0, 'E'},  {"json", no_argument, 0, 'j'},
        {"encoder", required_argument, 0, 'C'},  {"cache", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    const char *books = NULL, *dir = NULL, *embp = NULL;
    /* the notebook's text: its tribes are clusters of descriptions */
    cli_embed_options eo = {NULL, NULL, NULL, BR_TEXT_DESCRIPTION, NULL, 0};
    int keep = 1, json = 0, c;
    br_kmeans_options o = BR_KMEANS_OPTIONS_DEFAULT;
    o.k = 10;
    unsigned long long v;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': books = optarg; break;
        case 'd': dir = optarg; break;
        case 'e': embp = optarg; break;
        case 'm': eo.model = optarg; break;
        case 'C': eo.encoder = optarg; break;
        case 'c': eo.cache = optarg; break;
        case 't':
            if (cli_parse_template(optarg, &eo.tmpl))
                return cli_usage_error("cluster", "--template is description or full");
            break;
        case 'k':
            if (cli_parse_u64(optarg, &v) || v == 0 || v > 10000)
                return cli_usage_error("cluster", "--k needs 1..10000");
            o.k = (uint32_t)v;
            break;
        case 'n':
            if (cli_parse_u64(optarg, &v) || v == 0 || v > 1000)
                return cli_usage_error("cluster", "--n-init needs 1..1000");
            o.n_init = (uint32_t)v;
            break;
        case 's':
            if (cli_parse_u64(optarg, &v)) return cli_usage_error("cluster", "--seed needs a number");
            o.seed = v;
            break;
        case 'E': keep = 0; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_bad_option("cluster", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("cluster", "unexpected argument '%s'", argv[optind]);
    if (!books || !dir) return cli_usage_error("cluster", "--books and --model-dir are required");

    br_catalog *cat = NULL;
    br_load_options lo = BR_LOAD_OPTIONS_DEFAULT;
    br_array e = {0};
    float *emb = NULL;
    size_t dim = 0, embedded = 0;
    br_tribes *t = NULL;
    int rc = CLI_OK;
    br_status st = br_catalog_load(books, &lo, &cat, NULL);
    if (st == BR_OK && embp) {
        st = br_npy_read(embp, BR_DTYPE_F32, &e);
        if (st == BR_OK && e.rows != br_catalog_count(cat))
            st = br_error(BR_EINVAL, "%s has %zu rows; %s has %u books", embp, e.rows, books,
                          br_catalog_count(cat));
        emb = e.data;
        dim = e.cols;
    } else if (st == BR_OK) {
        rc = cli_book_embeddings("cluster", cat, &eo, &emb, &dim, &embedded);
        if (rc) goto done;
    }
    if (st == BR_OK) st = br_tribes_build(cat, emb, br_catalog_count(cat), dim, &o, keep, &t);
    if (st == BR_OK) st = br_tribes_save(t, dir);
    if (st != BR_OK) {
        rc = cli_fail("cluster", st);
    } else if (json) {
        json_t *arr = json_array();
        for (uint32_t j = 0; j < t->k; j++) {
            json_t *central = json_array();
            for (uint32_t q = 0; q < t->tribe[j].n_central; q++)
                json_array_append_new(central, json_string(t->book_ids[t->tribe[j].central[q]]));
            json_array_append_new(arr, json_pack("{s:i, s:s, s:i, s:f, s:o}", "tribe", (int)j,
                                                 "name", t->tribe[j].name, "size",
                                                 (int)t->tribe[j].size, "purity",
                                                 (double)t->tribe[j].purity, "central", central));
        }
        cli_print_json(json_pack("{s:f, s:i, s:[f,f], s:o, s:I}", "inertia", t->inertia,
                                 "iterations", (int)t->iterations, "pca_explained_variance_ratio",
                                 t->evr[0], t->evr[1], "tribes", arr, "embedded",
                                 (json_int_t)embedded));
    } else {
        printf("%u tribes of %zu books (inertia %.4f, %u iterations); PCA: %.1f%% + %.1f%%\n",
               t->k, t->n_books, t->inertia, t->iterations, 100 * t->evr[0], 100 * t->evr[1]);
        for (uint32_t j = 0; j < t->k; j++) {
            const br_tribe *tr = &t->tribe[j];
            printf("  %2u  %-34s %5u books  %5.1f%% %s\n", j, tr->name, tr->size,
                   100 * tr->purity, t->named_by_tags ? "tagged" : "of its genre");
            for (uint32_t q = 0; q < tr->n_central && q < 3; q++)
                printf("        %s  %s\n", t->book_ids[tr->central[q]], t->titles[tr->central[q]]);
        }
        printf("saved to %s\n", dir);
    }
done:
    br_tribes_free(t);
    if (embp) br_array_free(&e);
    else br_aligned_free(emb);
    br_catalog_free(cat);
    return rc;
}

const cli_command cli_cmd_cluster = {"cluster", "group books into tribes (k-means) and save them",
                                     run, usage};
