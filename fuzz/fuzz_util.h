/*
 * fuzz_util.h: what the libFuzzer targets share: a private temporary
 * folder (on /dev/shm when there is one: most loaders take a path, and each
 * run writes its input to a file there), and a small trained model version
 * for the targets that need one whole (the HTTP server, the manifest): the
 * seed universe trained once per fuzz output folder, the embedding cache
 * seeded from the reference vectors as the tests do (tests/testutil.c), so
 * nothing is embedded. Header-only: each target is one .c file.
 */
#ifndef BR_FUZZ_UTIL_H
#define BR_FUZZ_UTIL_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bookrec/bookrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A setup step that must work (a target's fixed files, its seeds). */
#define FZ_MUST(expr)                                                                              \
    do {                                                                                           \
        if ((expr) != BR_OK) {                                                                     \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, br_error_detail());      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char fz_dir[PATH_MAX];

static int fz_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static void fz_cleanup(void)
{
    if (fz_dir[0]) nftw(fz_dir, fz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The target's private folder, created on the first call, removed at exit;
 * named after the process, so that the folders a crash left behind (no
 * exit handler runs then) are removed by the next run. */
static const char *fz_tmpdir(void)
{
    if (fz_dir[0]) return fz_dir;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (!base) base = "/tmp";
    DIR *d = opendir(base);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int pid;
        if (sscanf(e->d_name, "bookrec-fuzz-%d", &pid) == 1 && pid > 0 && kill(pid, 0) != 0 &&
            errno == ESRCH) {
            snprintf(fz_dir, sizeof fz_dir, "%s/%s", base, e->d_name);
            fz_cleanup();
        }
    }
    if (d) closedir(d);
    snprintf(fz_dir, sizeof fz_dir, "%s/bookrec-fuzz-%d", base, (int)getpid());
    fz_cleanup(); /* a reused pid's */
    if (mkdir(fz_dir, 0700) != 0) abort();
    atexit(fz_cleanup);
    return fz_dir;
}

/* fz_tmpdir()/name, in a static buffer per call site's `buf`. */
static const char *fz_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", fz_tmpdir(), name);
    return buf;
}

/* Writes data to path (replacing it); aborts on an I/O error, which is the
 * machine's problem, not the input's. */
static void fz_write(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) abort();
    for (size_t off = 0; off < size;) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) abort();
        off += (size_t)w;
    }
    close(fd);
}

/* A folder of files, one of which each run replaces: a model that is
 * several files (a tribes model, a model version) fuzzed one file at a
 * time, the others valid. fz_files_init links every file of `tmpl` into a
 * fresh folder; fz_files_put writes the input over names[sel]; the next
 * put puts the template's file back first. */
typedef struct fz_files {
    char tmpl[PATH_MAX], dir[PATH_MAX];
    const char *const *names;
    size_t n, last;
} fz_files;

static void fz_files_link(fz_files *f, size_t i)
{
    char a[PATH_MAX * 2], b[PATH_MAX * 2];
    snprintf(a, sizeof a, "%s/%s", f->tmpl, f->names[i]);
    snprintf(b, sizeof b, "%s/%s", f->dir, f->names[i]);
    unlink(b);
    if (symlink(a, b) != 0) abort();
}

static void fz_files_init(fz_files *f, const char *tmpl, const char *name, const char *const *names,
                          size_t n)
{
    snprintf(f->tmpl, sizeof f->tmpl, "%s", tmpl);
    fz_path(f->dir, sizeof f->dir, name);
    if (mkdir(f->dir, 0777) != 0) abort();
    f->names = names;
    f->n = n;
    f->last = 0;
    for (size_t i = 0; i < n; i++) fz_files_link(f, i);
}

/* The first byte chooses the file (mod n), the rest is its content. */
static void fz_files_put(fz_files *f, const uint8_t *data, size_t size)
{
    fz_files_link(f, f->last);
    if (!size) return;
    f->last = data[0] % f->n;
    char b[PATH_MAX * 2];
    snprintf(b, sizeof b, "%s/%s", f->dir, f->names[f->last]);
    unlink(b);
    fz_write(b, data + 1, size - 1);
}

/* FUZZ_DUMP_SEEDS=DIR: writes, for each file of `tmpl` no larger than
 * `max`, a seed that puts it back unchanged (its selector byte, then it). */
static void fz_files_dump(const char *tmpl, const char *const *names, size_t n, size_t max)
{
    const char *dump = getenv("FUZZ_DUMP_SEEDS");
    if (!dump) return;
    for (size_t i = 0; i < n; i++) {
        char a[PATH_MAX * 2], b[PATH_MAX * 2];
        snprintf(a, sizeof a, "%s/%s", tmpl, names[i]);
        FILE *in = fopen(a, "rb");
        if (!in) abort();
        static uint8_t buf[1 << 20];
        buf[0] = (uint8_t)i;
        size_t len = fread(buf + 1, 1, sizeof buf - 1, in);
        fclose(in);
        if (len > max) continue;
        snprintf(b, sizeof b, "%s/%s", dump, names[i]);
        for (char *c = b + strlen(dump) + 1; *c; c++)
            if (*c == '/') *c = '-';
        fz_write(b, buf, len + 1);
    }
}

#ifdef FUZZ_WANT_MODEL
int tu_train_seed(const char *seed_dir, const char *model_dir); /* tests/testutil.c */
int tu_have_use_lite(void);                                     /* tests/testutil.c */

/* fz_copy_tree's state: nftw passes none. */
static size_t fz_copy_from_len;
static const char *fz_copy_to;

static int fz_copy_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    char dst[PATH_MAX * 2], link[PATH_MAX];
    snprintf(dst, sizeof dst, "%s%s", fz_copy_to, p + fz_copy_from_len);
    if (flag == FTW_D) return mkdir(dst, 0777) != 0 && errno != EEXIST;
    if (flag == FTW_SL) {
        ssize_t n = readlink(p, link, sizeof link - 1);
        if (n < 0) return 1;
        link[n] = '\0';
        return symlink(link, dst) != 0;
    }
    if (flag != FTW_F || !S_ISREG(st->st_mode)) return 0;
    int in = open(p, O_RDONLY | O_CLOEXEC);
    if (in < 0) return 1;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    char buf[1 << 16];
    ssize_t n;
    while (out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) break;
    close(in);
    return out < 0 || close(out) != 0;
}

/* Copies the folder `from` (files, folders, symbolic links) to `to`:
 * without a child process (this one may have run OpenMP). */
static void fz_copy_tree(const char *from, const char *to)
{
    fz_copy_from_len = strlen(from);
    fz_copy_to = to;
    if (nftw(from, fz_copy_one, 16, FTW_PHYS) != 0) {
        fprintf(stderr, "fuzz: copying %s to %s failed\n", from, to);
        abort();
    }
}

/* A model directory with one published version (v000001) of the seed
 * universe: $FUZZ_MODEL_DIR when set (fuzz/build.sh: OUT_DIR/model, trained
 * by the first target that needs it and reused), else one in fz_tmpdir().
 * NULL (after saying why) without the use-lite encoder (`make model`). */
static const char *fz_model_dir(void)
{
    static char dir[PATH_MAX];
    if (dir[0]) return dir;
    char p[PATH_MAX + 64];
    if (!tu_have_use_lite()) {
        fprintf(stderr, "fuzz: no use-lite model (make model): nothing to serve\n");
        return NULL;
    }
    const char *env = getenv("FUZZ_MODEL_DIR");
    if (env && *env) {
        snprintf(dir, sizeof dir, "%s", env);
    } else {
        fz_path(dir, sizeof dir, "model");
    }
    snprintf(p, sizeof p, "%s/versions/v000001/manifest.json", dir);
    if (access(p, R_OK) == 0) return dir;
    fprintf(stderr, "fuzz: training the seed universe into %s (once)\n", dir);
    char seed[PATH_MAX + 16];
    snprintf(seed, sizeof seed, "%s.seed", dir);
    if (tu_train_seed(seed, dir) == 0) return dir;
    fprintf(stderr, "fuzz: training the model failed: %s\n", br_error_detail());
    abort();
}
#endif

#endif
