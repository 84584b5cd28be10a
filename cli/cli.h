/*
 * cli.h: shared declarations of the `bookrec` command-line tool. The tool is
 * a client of the public library API only (include/bookrec/); what is here is
 * presentation: option parsing helpers, error printing, the progress bar.
 */
#ifndef BOOKREC_CLI_H
#define BOOKREC_CLI_H

#include <stdio.h>

#include "bookrec/bookrec.h"

/* Exit codes of every subcommand. */
enum { CLI_OK = 0, CLI_ERROR = 1, CLI_USAGE = 2 };

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    void (*usage)(FILE *out);
} cli_command;

/* Global options (before the subcommand). */
extern int cli_quiet;   /* --quiet: no progress output */
extern int cli_verbose; /* --verbose: library log at INFO (twice: DEBUG) */

/* Subcommands: cli/cmd_<name>.c defines `const cli_command cli_cmd_<name>`;
 * the build generates the table from the file names (cli_commands.h). */

const cli_command *cli_find_command(const char *name);
const cli_command *const *cli_commands(void);

/* Prints "bookrec <cmd>: error: <strerror>: <detail>" to stderr; returns CLI_ERROR. */
int cli_fail(const char *cmd, br_status st);
/* Prints "bookrec <cmd>: <message>" and a hint to use --help; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) BR_PRINTF(2, 3);

/* Strict number parsing for option values: the whole string must parse. */
int cli_parse_u64(const char *s, unsigned long long *out);
int cli_parse_int(const char *s, int *out);
/* --template full|description; 0 or -1 (the caller reports a usage error). */
int cli_parse_template(const char *s, br_book_template *out);
int cli_parse_double(const char *s, double *out);
/* "MIN:MAX" */
int cli_parse_range(const char *s, double *lo, double *hi);

/* Opens the encoder named by --encoder (use-lite, bert:DIR) or --model PATH,
 * with --max-length for BERT models (0: the model's own). Returns CLI_OK, or
 * prints the problem and returns CLI_USAGE / CLI_ERROR. */
int cli_open_encoder(const char *cmd, const char *encoder, const char *model, size_t max_length,
                     br_encoder **out);
/* Reads a JSON array of strings from a file ("-": stdin) into a br_malloc'd
 * array of br_strdup'd texts; release with cli_free_texts. */
int cli_read_texts(const char *cmd, const char *path, char ***texts, size_t *n);
void cli_free_texts(char **texts, size_t n);

/* Prints a JSON value on one line to stdout and releases it. */
struct json_t;
void cli_print_json(struct json_t *value);

/* Installs the progress renderer (bar on a TTY, plain lines otherwise) and
 * the log callback, honouring --quiet and --verbose. */
void cli_setup_reporting(void);

/* Book embeddings for the content engines (cli/embeddings.c): from a .npy
 * file (npy), else from the encoder (NULL: use-lite) through the embedding
 * cache (cache NULL: the default file; "none": no cache). *out is
 * br_aligned_alloc'd, (books, *dim). Returns CLI_OK or prints the error and
 * returns CLI_ERROR. */
typedef struct cli_embed_options {
    const char *npy, *encoder, *cache;
    br_book_template tmpl;
} cli_embed_options;
int cli_book_embeddings(const char *cmd, const br_catalog *cat, const cli_embed_options *o,
                        float **out, size_t *dim);

/* `bookrec recommend --model-dir DIR [--store URI]` (cli/served.c): the
 * published recs of readers (comma-separated ids or "all") read back from
 * the store of the current model version. */
int cli_recommend_served(const char *dir, const char *store_uri, const char *users_arg,
                         uint32_t n, int json, int explain);

#endif /* BOOKREC_CLI_H */
