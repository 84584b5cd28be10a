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

/* The one message for an option getopt_long rejected (main.c sets opterr to 0
 * so getopt prints nothing): names the option and what is wrong (unknown,
 * ambiguous, a value missing or not wanted); returns CLI_USAGE. Call it from
 * the '?' branch of the getopt_long loop: default: return cli_bad_option(...). */
struct option;
int cli_bad_option(const char *cmd, char *const *argv, const struct option *longopts);
/* The options of a command whose only option is --help: prints the usage
 * and returns CLI_OK for it, CLI_USAGE for any other, -1 to go on (optind
 * on the first argument). */
int cli_help_only(const char *cmd, int argc, char **argv, void (*usage)(FILE *out));

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
 * file (npy), else from the encoder (encoder: use-lite when NULL, or
 * bert:DIR; model: a model file instead) through the shared embedding
 * cache and, with --cache FILE, that file too (cache "none": no cache at
 * all). Says on stderr how many books it embedded (under --verbose also
 * when none; never under --quiet) and stores it in *embedded (may be
 * NULL). *out is br_aligned_alloc'd, (books, *dim). Returns CLI_OK or
 * prints the error and returns CLI_ERROR / CLI_USAGE. */
typedef struct cli_embed_options {
    const char *npy, *encoder, *cache;
    br_book_template tmpl;
    const char *model;
    size_t max_length; /* BERT tokens per text; 0: the model's own */
} cli_embed_options;
int cli_book_embeddings(const char *cmd, const br_catalog *cat, const cli_embed_options *o,
                        float **out, size_t *dim, size_t *embedded);
/* The name of a template ("full", "description"). */
const char *cli_template_name(br_book_template t);

/* `bookrec recommend --model-dir DIR [--store URI]` (cli/served.c): the
 * published recs of readers (comma-separated ids or "all") read back from
 * the store of the current model version. */
int cli_recommend_served(const char *dir, const char *store_uri, const char *users_arg,
                         uint32_t n, int json, int explain, const char *cand, const char *excl);
/* --candidates FILE (NULL: every book) less --exclude FILE (NULL: none) as
 * a mask (n_books,) of the books admitted, NULL when neither is given;
 * *n_out: how many it forbids (cmd_recommend.c). */
br_status cli_book_mask(const char *cand, const char *excl, const br_catalog *cat, uint8_t **out,
                        uint32_t *n_out);

#endif /* BOOKREC_CLI_H */
