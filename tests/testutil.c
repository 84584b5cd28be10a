/*
 * testutil.c: see testutil.h.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = br_malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

char *tu_data_path(const char *name)
{
    return join(BR_TEST_DATA_DIR, name);
}

char *tu_shared_path(const char *name)
{
    char *p = join(BR_SHARED_DIR, name);
    if (access(p, R_OK) != 0) {
        printf("[  SKIP    ] %s is absent (no ../shared beside the repository): "
               "test skipped\n",
               p);
        br_free(p);
        return NULL;
    }
    return p;
}

static void mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(buf, 0755);
            *s = '/';
        }
    mkdir(buf, 0755);
}

static void rm_rf(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not clean %s\n", path);
}

char *tu_tmpdir(const char *tag)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%ld", tag, (long)getpid());
    char *p = join(BR_TEST_TMP_DIR, name);
    rm_rf(p);
    mkdir_p(p);
    return p;
}

char *tu_write_file(const char *dir, const char *name, const char *text)
{
    char *p = join(dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return p;
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = br_malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        br_free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}
