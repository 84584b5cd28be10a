/*
 * cmd_embed.c: `bookrec embed`, texts or a catalogue's books -> a float32
 * .npy matrix of sentence embeddings, one row per text in input order.
 *
 * The book text template (--books): the parts present, joined by ". ":
 *   title, "by " + authors, genre, tags (the pipe-separated list joined
 *   with ", "), description
 * e.g. "Dune. by Frank Herbert. science-fiction, classics. A desert planet ...".
 * --template description embeds the description alone (the title when a
 * book has none), which is what the seed notebook embeds.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: bookrec embed [--encoder use-lite | --encoder bert:DIR | --model PATH]\n"
                 "                     (--in TEXTS.json | --books books.csv [--template T])\n"
                 "                     --out EMB.npy\n\n"
                 "Embeds each text (or each book) with the sentence encoder and writes a\n"
                 "float32 matrix (n, dim) in NumPy .npy format, rows in input order\n"
                 "(dim 512 for use-lite, 384 for all-MiniLM-L6-v2).\n\n"
                 "  --in FILE        a JSON array of strings ('-' for stdin)\n"
                 "  --books FILE     books.csv; each book's text is its title, 'by' authors,\n"
                 "                   genre, tags and description, where present, joined by '. '\n"
                 "  --template T     full (default) or description (description only; the\n"
                 "                   title when there is none)\n"
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



static int run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"in", required_argument, 0, 'i'},       {"books", required_argument, 0, 'b'},
        {"template", required_argument, 0, 't'}, {"out", required_argument, 0, 'o'},
        {"encoder", required_argument, 0, 'e'},  {"model", required_argument, 0, 'm'},
        {"max-length", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    const char *in = NULL, *books = NULL, *outp = NULL, *encoder = "use-lite", *model = NULL;
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
            return cli_usage_error("embed", "bad option");
        }
    }
    if (optind < argc) return cli_usage_error("embed", "unexpected argument '%s'", argv[optind]);
    if (!in == !books) return cli_usage_error("embed", "give one of --in TEXTS.json or --books");
    if (!outp) return cli_usage_error("embed", "--out EMB.npy is required");
    br_encoder *enc = NULL;
    int rc = cli_open_encoder("embed", encoder, model, max_length, &enc);
    if (rc != CLI_OK) return rc;

    /* Gather the texts. */
    char **texts = NULL;
    size_t n = 0;
    if (in) {
        rc = cli_read_texts("embed", in, &texts, &n);
    } else {
        br_load_options opt = BR_LOAD_OPTIONS_DEFAULT;
        br_catalog *cat = NULL;
        br_status st = br_catalog_load(books, &opt, &cat, NULL);
        if (st != BR_OK) {
            br_encoder_close(enc);
            return cli_fail("embed", st);
        }
        n = br_catalog_count(cat);
        texts = br_calloc(n ? n : 1, sizeof *texts);
        for (size_t i = 0; texts && i < n && rc == CLI_OK; i++) {
            st = br_book_text(br_catalog_book(cat, (uint32_t)i),
                              desc_only ? BR_TEXT_DESCRIPTION : BR_TEXT_FULL, &texts[i]);
            if (st != BR_OK) rc = cli_fail("embed", st);
        }
        if (!texts) rc = cli_fail("embed", br_error(BR_ENOMEM, "book texts"));
        br_catalog_free(cat);
    }

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
