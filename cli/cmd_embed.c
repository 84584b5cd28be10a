/*
 * cmd_embed.c: `bookrec embed`, texts or a catalogue's books -> a float32
 * .npy matrix of sentence embeddings, one row per text in input order.
 *
 * The book text template (--books): the parts present, joined by ". ":
 *   title, "by " + authors, genre, tags (the pipe-separated list joined
 *   with ", "), description
 * e.g. "Dune. by Frank Herbert. science-fiction, classics. A desert planet ...".
 * --template description embeds the description alone (the title when a
 * book has none), which is what the seed notebook embeds. Books go through
 * the shared embedding cache (cli/embeddings.c), texts (--in) do not.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: bookrec embed [--encoder use-lite | --encoder bert:DIR | --model PATH]\n"
                 "                     (--in TEXTS.json | --books books.csv [--template T]\n"
                 "                     [--cache FILE|none]) --out EMB.npy\n\n"
                 "Embeds each text (or each book) with the sentence encoder and writes a\n"
                 "float32 matrix (n, dim) in NumPy .npy format, rows in input order\n"
                 "(dim 512 for use-lite, 384 for all-MiniLM-L6-v2).\n\n"
                 "  --in FILE        a JSON array of strings ('-' for stdin)\n"
                 "  --books FILE     books.csv; each book's text is its title, 'by' authors,\n"
                 "                   genre, tags and description, where present, joined by '. '\n"
                 "  --template T     full (default; what `train` and the API embed) or\n"
                 "                   description (description only, the title when there is\n"
                 "                   none: the notebook's text)\n"
                 "  --cache FILE     books are embedded through the shared embedding cache\n"
                 "                   ($BOOKREC_EMBED_CACHE, else ~/.cache/bookrec/embeddings):\n"
                 "                   a book any command embedded is read, not embedded again;\n"
                 "                   FILE: also keep them there; none: no cache at all\n"
                 "  --out FILE       the .npy file to write\n"
                 "  --encoder NAME   use-lite (the default): the model in the default location\n"
                 "  --model PATH     a model file instead\n"
                 "  --encoder bert:DIR  a BERT / sentence-transformers model directory\n"
                 "                   (config.json, model.safetensors, vocab.txt or\n"
                 "                   tokenizer.json), e.g. all-MiniLM-L6-v2 from\n"
                 "                   `bookrec model fetch minilm`\n"
                 "  --max-length N   BERT: tokens per text with [CLS]/[SEP] (default: the\n"
                 "                   directory's sentence_bert_config.json, else 256)\n");
}

/* --books: the catalogue's texts through the embedding cache. */
static int embed_books(const char *books, br_book_template t, const char *encoder,
                       const char *model, size_t max_length, const char *cache, const char *outp)
{
    br_load_options opt = BR_LOAD_OPTIONS_DEFAULT;
    br_catalog *cat = NULL;
    br_status st = br_catalog_load(books, &opt, &cat, NULL);
    if (st != BR_OK) return cli_fail("embed", st);
    cli_embed_options eo = {NULL, encoder, cache, t, model, max_length};
    float *emb = NULL;
    size_t dim = 0, n = br_catalog_count(cat);
    int rc = cli_book_embeddings("embed", cat, &eo, &emb, &dim, NULL);
    if (rc == CLI_OK && (st = br_npy_write(outp, BR_DTYPE_F32, 2, n, dim, emb)) != BR_OK)
        rc = cli_fail("embed", st);
    else if (rc == CLI_OK && !cli_quiet)
        fprintf(stderr, "bookrec embed: %zu books -> %s\n", n, outp);
    br_aligned_free(emb);
    br_catalog_free(cat);
    return rc;
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"in", required_argument, 0, 'i'},       {"books", required_argument, 0, 'b'},
        {"template", required_argument, 0, 't'}, {"out", required_argument, 0, 'o'},
        {"encoder", required_argument, 0, 'e'},  {"model", required_argument, 0, 'm'},
        {"max-length", required_argument, 0, 'L'}, {"cache", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    const char *in = NULL, *books = NULL, *outp = NULL, *encoder = "use-lite", *model = NULL,
               *cache = NULL;
    int desc_only = 0, c;
    size_t max_length = 0; /* --max-length (BERT encoders) */
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            in = optarg;
            break;
        case 'b':
            books = optarg;
            break;
        case 't':
            if (!strcmp(optarg, "description"))
                desc_only = 1;
            else if (!strcmp(optarg, "full"))
                desc_only = 0;
            else
                return cli_usage_error("embed", "--template is full or description");
            break;
        case 'o':
            outp = optarg;
            break;
        case 'c':
            cache = optarg;
            break;
        case 'e':
            encoder = optarg;
            break;
        case 'm':
            model = optarg;
            break;
        case 'L': {
            unsigned long long v;
            if (cli_parse_u64(optarg, &v) || v < 2 || v > 100000)
                return cli_usage_error("embed", "--max-length is a number of tokens >= 2");
            max_length = (size_t)v;
            break;
        }
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            return cli_bad_option("embed", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("embed", "unexpected argument '%s'", argv[optind]);
    if (!in == !books) return cli_usage_error("embed", "give one of --in TEXTS.json or --books");
    if (!outp) return cli_usage_error("embed", "--out EMB.npy is required");
    if (cache && !books) return cli_usage_error("embed", "--cache goes with --books");
    if (books) return embed_books(books, desc_only ? BR_TEXT_DESCRIPTION : BR_TEXT_FULL, encoder,
                                  model, max_length, cache, outp);
    br_encoder *enc = NULL;
    int rc = cli_open_encoder("embed", encoder, model, max_length, &enc);
    if (rc != CLI_OK) return rc;

    char **texts = NULL;
    size_t n = 0;
    rc = cli_read_texts("embed", in, &texts, &n);

    float *emb = NULL;
    if (rc == CLI_OK) {
        size_t dim = br_encoder_dim(enc);
        emb = malloc((n ? n : 1) * dim * sizeof *emb);
        br_status st = emb ? BR_OK : br_error(BR_ENOMEM, "%zu embeddings", n);
        uint64_t t0 = br_now_ns();
        if (st == BR_OK) st = br_encoder_embed(enc, (const char *const *)texts, n, emb);
        double secs = (double)(br_now_ns() - t0) / 1e9;
        if (st != BR_OK)
            rc = cli_fail("embed", st);
        else if ((st = br_npy_write(outp, BR_DTYPE_F32, 2, n, dim, emb)) != BR_OK)
            rc = cli_fail("embed", st);
        else if (!cli_quiet) {
            fprintf(stderr, "bookrec embed: %zu texts in %.2f s (%.1f texts/s) -> %s\n", n, secs,
                    secs > 0 ? (double)n / secs : 0.0, outp);
        }
    }
    cli_free_texts(texts, n);
    free(emb);
    br_encoder_close(enc);
    return rc;
}

const cli_command cli_cmd_embed = {"embed", "embed texts or books into a .npy matrix", run, usage};
