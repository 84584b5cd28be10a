/*
 * texts.c: what `bookrec tokenize` and `bookrec embed` share: resolving
 * --encoder / --model / --max-length to an open encoder, and reading a JSON
 * array of texts.
 */
#include <jansson.h>
#include <string.h>

#include "cli.h"

/* "bert:DIR" -> "DIR"; anything else unchanged. */
static const char *bert_dir(const char *model)
{
    size_t n = strlen(BR_ENCODER_BERT_PREFIX);
    return strncmp(model, BR_ENCODER_BERT_PREFIX, n) ? model : model + n;
}

int cli_open_encoder(const char *cmd, const char *encoder, const char *model, size_t max_length,
                     br_encoder **out)
{
    char path[4200];
    *out = NULL;
    /* --encoder bert:DIR names the model directory itself. */
    if (!model && !strncmp(encoder, BR_ENCODER_BERT_PREFIX, strlen(BR_ENCODER_BERT_PREFIX)))
        model = encoder;
    if (max_length && (!model || (bert_dir(model) == model && !br_bert_is_model_dir(model))))
        return cli_usage_error(cmd, "--max-length needs a BERT model (--encoder bert:DIR)");
    if (!model) {
        br_status st = br_encoder_model_path(encoder, path, sizeof path);
        if (st != BR_OK) return cli_fail(cmd, st);
        model = path;
    }
    br_status st = max_length ? br_encoder_open_bert(bert_dir(model), max_length, out)
                              : br_encoder_open(model, out);
    return st == BR_OK ? CLI_OK : cli_fail(cmd, st);
}

int cli_read_texts(const char *cmd, const char *path, char ***texts, size_t *n)
{
    *texts = NULL;
    *n = 0;
    json_error_t jerr;
    json_t *arr = !strcmp(path, "-") ? json_loadf(stdin, 0, &jerr) : json_load_file(path, 0, &jerr);
    if (!arr) {
        fprintf(stderr, "bookrec %s: error: %s:%d: %s\n", cmd, path, jerr.line, jerr.text);
        return CLI_ERROR;
    }
    if (!json_is_array(arr)) {
        fprintf(stderr, "bookrec %s: error: %s: not a JSON array of strings\n", cmd, path);
        json_decref(arr);
        return CLI_ERROR;
    }
    size_t count = json_array_size(arr);
    char **t = br_calloc(count ? count : 1, sizeof *t);
    int rc = t ? CLI_OK : cli_fail(cmd, br_error(BR_ENOMEM, "texts"));
    for (size_t i = 0; rc == CLI_OK && i < count; i++) {
        json_t *s = json_array_get(arr, i);
        if (!json_is_string(s)) {
            fprintf(stderr, "bookrec %s: error: %s: item %zu is not a string\n", cmd, path, i);
            rc = CLI_ERROR;
        } else if (!(t[i] = br_strdup(json_string_value(s)))) {
            rc = cli_fail(cmd, br_error(BR_ENOMEM, "texts"));
        }
    }
    json_decref(arr);
    if (rc != CLI_OK) {
        cli_free_texts(t, count);
        return rc;
    }
    *texts = t;
    *n = count;
    return CLI_OK;
}

void cli_free_texts(char **texts, size_t n)
{
    for (size_t i = 0; texts && i < n; i++) br_free(texts[i]);
    br_free(texts);
}
