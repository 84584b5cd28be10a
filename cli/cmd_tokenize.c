/*
 * cmd_tokenize.c: `bookrec tokenize`, the encoder's token ids of each text,
 * for checking the tokenizer against the reference (same JSON shape as the
 * reference's token_ids).
 */
#include <getopt.h>
#include <jansson.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: bookrec tokenize [--encoder use-lite | --encoder bert:DIR | --model PATH]\n"
                 "                        --in TEXTS.json\n\n"
                 "Prints the token ids of each text as a JSON array of id arrays (the full\n"
                 "tokenization; the encoder reads only the first 128 of each).\n\n"
                 "  --in FILE       a JSON array of strings ('-' for stdin)\n"
                 "  --encoder NAME  use-lite (the default): the model in the default location\n"
                 "  --model PATH    a model file instead\n"
                 "  --encoder bert:DIR  a BERT model directory: WordPiece ids with [CLS] and\n"
                 "                  [SEP], untruncated (the encoder reads the first\n"
                 "                  --max-length N of them, default 256)\n");
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {{"in", required_argument, 0, 'i'},
                                             {"encoder", required_argument, 0, 'e'},
                                             {"model", required_argument, 0, 'm'},
                                             {"max-length", required_argument, 0, 'L'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const char *in = NULL, *encoder = "use-lite", *model = NULL;
    int c;
    size_t max_length = 0; /* --max-length (BERT encoders) */
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            in = optarg;
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
                return cli_usage_error("tokenize", "--max-length is a number of tokens >= 2");
            max_length = (size_t)v;
            break;
        }
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            return cli_bad_option("tokenize", argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error("tokenize", "unexpected argument '%s'", argv[optind]);
    if (!in) return cli_usage_error("tokenize", "--in TEXTS.json is required");
    br_encoder *enc;
    int rc = cli_open_encoder("tokenize", encoder, model, max_length, &enc);
    if (rc != CLI_OK) return rc;
    char **texts;
    size_t count;
    if ((rc = cli_read_texts("tokenize", in, &texts, &count)) != CLI_OK) {
        br_encoder_close(enc);
        return rc;
    }
    json_t *outj = json_array();
    br_status st = BR_OK;
    for (size_t i = 0; i < count && st == BR_OK; i++) {
        int32_t *ids;
        size_t n;
        st = br_encoder_tokenize(enc, texts[i], &ids, &n);
        if (st != BR_OK) break;
        json_t *row = json_array();
        for (size_t k = 0; k < n; k++) json_array_append_new(row, json_integer(ids[k]));
        json_array_append_new(outj, row);
        br_free(ids);
    }
    if (st != BR_OK) rc = cli_fail("tokenize", st);
    if (rc == CLI_OK)
        cli_print_json(outj);
    else
        json_decref(outj);
    cli_free_texts(texts, count);
    br_encoder_close(enc);
    return rc;
}

const cli_command cli_cmd_tokenize = {"tokenize", "print the encoder's token ids of texts", run,
                                      usage};
