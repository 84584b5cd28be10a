/*
 * util.c: presentation helpers shared by the subcommands: error messages,
 * strict option-value parsing, and the progress/log renderers.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_fail(const char *cmd, br_status st)
{
    const char *detail = br_error_detail();
    fprintf(stderr, "bookrec%s%s: error: %s%s%s\n", cmd ? " " : "", cmd ? cmd : "",
            br_strerror(st), detail[0] ? ": " : "", detail);
    return CLI_ERROR;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bookrec%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "\nTry 'bookrec %s --help'.\n", cmd);
    else
        fprintf(stderr, "\nTry 'bookrec --help'.\n");
    return CLI_USAGE;
}

/* With opterr 0 (main.c) getopt_long prints nothing and leaves what went
 * wrong in optind and optopt: the rejected element is argv[optind - 1]; a
 * long option's optopt is its val when the name was found (a value missing
 * or one given to a flag), 0 when it was not (unknown or ambiguous). A short
 * option inside a cluster (-xh) leaves optind on the cluster. */
int cli_bad_option(const char *cmd, char *const *argv, const struct option *longopts)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    if (!strncmp(arg, "--", 2) && arg[2]) {
        const char *name = arg + 2;
        size_t len = strcspn(name, "=");
        int has_value = name[len] == '=', n = 0;
        const struct option *hit = NULL;
        for (const struct option *o = longopts; o->name; o++) {
            if (strncmp(o->name, name, len)) continue;
            if (!o->name[len]) { /* an exact match is never ambiguous */
                hit = o, n = 1;
                break;
            }
            if (!hit || o->val == optopt) hit = o;
            n++;
        }
        if (optopt && hit && hit->val == optopt) {
            if (has_value) return cli_usage_error(cmd, "option '--%s' takes no value", hit->name);
            if (!argv[optind]) /* a value was missing: the option ended the line */
                return cli_usage_error(cmd, "option '--%s' needs a value", hit->name);
        } else if (!optopt && n > 1) {
            char names[256];
            size_t used = 0;
            for (const struct option *o = longopts; o->name && used < sizeof names; o++)
                if (!strncmp(o->name, name, len))
                    used += (size_t)snprintf(names + used, sizeof names - used, "%s--%s",
                                             used ? ", " : "", o->name);
            return cli_usage_error(cmd, "option '--%.*s' is ambiguous: %s", (int)len, name, names);
        } else if (!optopt) {
            static const char *const global[] = {"quiet", "verbose", "threads"};
            for (size_t g = 0; g < sizeof global / sizeof *global; g++)
                if (strlen(global[g]) == len && !strncmp(global[g], name, len))
                    return cli_usage_error(cmd,
                                           "'--%s' goes before the command: bookrec --%s %s ...",
                                           global[g], global[g], cmd);
            return cli_usage_error(cmd, "unknown option '--%.*s'", (int)len, name);
        }
    }
    if (optopt > 0 && optopt < 128) return cli_usage_error(cmd, "unknown option '-%c'", optopt);
    return cli_usage_error(cmd, "unknown option '%s'", arg);
}

int cli_help_only(const char *cmd, int argc, char **argv, void (*usage)(FILE *out))
{
    static const struct option longopts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c != 'h') return cli_bad_option(cmd, argv, longopts);
        usage(stdout);
        return CLI_OK;
    }
    return -1;
}

int cli_parse_u64(const char *s, unsigned long long *out)
{
    if (!s || !*s || *s == '-' || *s == '+') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

int cli_parse_int(const char *s, int *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < -2147483647L || v > 2147483647L) return -1;
    *out = (int)v;
    return 0;
}

int cli_parse_template(const char *s, br_book_template *out)
{
    if (!strcmp(s, "full"))
        *out = BR_TEXT_FULL;
    else if (!strcmp(s, "description"))
        *out = BR_TEXT_DESCRIPTION;
    else
        return -1;
    return 0;
}

int cli_parse_double(const char *s, double *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int cli_parse_range(const char *s, double *lo, double *hi)
{
    const char *colon = s ? strchr(s, ':') : NULL;
    if (!colon) return -1;
    char buf[64];
    size_t n = (size_t)(colon - s);
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (cli_parse_double(buf, lo) || cli_parse_double(colon + 1, hi) || *lo >= *hi) return -1;
    return 0;
}

/* --------------------------------------------------------------- progress -- */

/* Stages shorter than this never show anything: quick commands stay quiet. */
#define SHOW_AFTER_NS 1000000000ULL
/* Off a TTY, one plain line at most this often. */
#define LINE_EVERY_NS 5000000000ULL

static struct {
    int tty;
    char stage[64];
    uint64_t start_ns, last_line_ns;
    int drawn;
} bar;

static void bar_draw(uint64_t done, uint64_t total, double secs)
{
    char line[160];
    if (total) {
        const int width = 30;
        double frac = (double)done / (double)total;
        if (frac > 1) frac = 1;
        int fill = (int)(frac * width + 0.5);
        char cells[64];
        for (int i = 0; i < width; i++) cells[i] = i < fill ? '#' : '.';
        cells[width] = '\0';
        snprintf(line, sizeof line, "%-22.22s [%s] %5.1f%%  %.1fs", bar.stage, cells, 100 * frac,
                 secs);
    } else {
        snprintf(line, sizeof line, "%-22.22s %llu  %.1fs", bar.stage, (unsigned long long)done,
                 secs);
    }
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
}

static int progress_cb(const char *stage, uint64_t done, uint64_t total, void *user)
{
    (void)user;
    uint64_t now = br_now_ns();
    if (strncmp(bar.stage, stage, sizeof bar.stage - 1) != 0 || (done == 0 && !bar.drawn)) {
        if (bar.drawn && bar.tty) fputc('\n', stderr);
        snprintf(bar.stage, sizeof bar.stage, "%s", stage);
        bar.start_ns = now;
        bar.last_line_ns = now;
        bar.drawn = 0;
    }
    uint64_t elapsed = now - bar.start_ns;
    int finished = total && done >= total;
    double secs = (double)elapsed / 1e9;
    if (elapsed < SHOW_AFTER_NS) return 0;
    if (bar.tty) {
        bar_draw(done, total, secs);
        bar.drawn = 1;
        if (finished) {
            fputc('\n', stderr);
            bar.drawn = 0;
            bar.stage[0] = '\0';
        }
    } else if (finished) {
        fprintf(stderr, "%s: done in %.1fs\n", stage, secs);
        bar.stage[0] = '\0';
    } else if (now - bar.last_line_ns >= LINE_EVERY_NS) {
        if (total)
            fprintf(stderr, "%s: %llu/%llu (%.0f%%) %.1fs\n", stage, (unsigned long long)done,
                    (unsigned long long)total, 100.0 * (double)done / (double)total, secs);
        else
            fprintf(stderr, "%s: %llu %.1fs\n", stage, (unsigned long long)done, secs);
        bar.last_line_ns = now;
    }
    return 0;
}

static void log_cb(br_log_level level, const char *msg, void *user)
{
    (void)user;
    static const char *names[] = {"debug", "info", "warning", "error"};
    fprintf(stderr, "bookrec: %s: %s\n", names[level], msg);
}

void cli_setup_reporting(void)
{
    bar.tty = isatty(STDERR_FILENO);
    if (!cli_quiet) br_progress_set(progress_cb, NULL);
    br_log_set(log_cb, NULL,
               cli_verbose >= 2 ? BR_LOG_DEBUG : cli_verbose ? BR_LOG_INFO : BR_LOG_WARN);
}

void cli_print_json(json_t *value)
{
    if (!value) {
        fprintf(stderr, "bookrec: error: could not build the JSON output\n");
        return;
    }
    json_dumpf(value, stdout, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10));
    fputc('\n', stdout);
    json_decref(value);
}
