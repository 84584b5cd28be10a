/*
 * afile.c: atomic file replacement (see afile.h): a uniquely named
 * temporary beside the destination, fsync, rename, fsync of the directory.
 */
#define _GNU_SOURCE
#include "core/afile.h"
#include "core/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_TRIES 64

/* 64 bits that differ between every call of every process: a counter, the
 * process id and the clock, mixed (splitmix64's finaliser). O_EXCL makes a
 * collision a retry, never a shared file. */
static uint64_t unique_bits(void)
{
    static atomic_uint_fast64_t counter;
    uint64_t z = (uint64_t)atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ULL;
    z ^= (uint64_t)getpid() << 32 ^ br_now_ns();
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* "<path>.tmp.<16 hex>" into tmp (cap >= strlen(path) + 22). */
static void temp_name(char *tmp, size_t cap, const char *path)
{
    snprintf(tmp, cap, "%s.tmp.%016llx", path, (unsigned long long)unique_bits());
}

#define TEMP_EXTRA 24

/* The directory part of path ("." for a bare name), fsynced. */
static br_status fsync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return br__fsync_dir(".");
    if (slash == path) return br__fsync_dir("/");
    char *dir = br_strndup(path, (size_t)(slash - path));
    if (!dir) return br_error(BR_ENOMEM, "%s: out of memory", path);
    br_status st = br__fsync_dir(dir);
    br_free(dir);
    return st;
}

br_status br__fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return br_error(BR_EIO, "%s: %s", dir, strerror(errno));
    int rc = br__fault_fsync(fd);
    int e = errno;
    close(fd);
    if (rc) return br_error(BR_EIO, "%s: fsync: %s", dir, strerror(e));
    return BR_OK;
}

static void release(br__afile *a)
{
    br_free(a->path);
    br_free(a->tmp);
    a->f = NULL;
    a->path = a->tmp = NULL;
}

br_status br__afile_open(br__afile *a, const char *path)
{
    memset(a, 0, sizeof *a);
    size_t cap = strlen(path) + TEMP_EXTRA;
    a->path = br_strdup(path);
    a->tmp = br_malloc(cap);
    if (!a->path || !a->tmp) {
        release(a);
        return br_error(BR_ENOMEM, "%s: out of memory", path);
    }
    int fd = -1;
    for (int i = 0; i < NAME_TRIES && fd < 0; i++) {
        temp_name(a->tmp, cap, path);
        /* 0666 less the umask: the mode fopen would give the file */
        fd = open(a->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        br_status st = br_error(BR_EIO, "%s: cannot create: %s", path, strerror(errno));
        release(a);
        return st;
    }
    a->f = fdopen(fd, "w+b");
    if (!a->f) {
        br_status st = br_error(BR_EIO, "%s: cannot create: %s", path, strerror(errno));
        close(fd);
        unlink(a->tmp);
        release(a);
        return st;
    }
    return BR_OK;
}

br_status br__afile_prepare(br__afile *a)
{
    if (!a->f) return br_error(BR_EINVAL, "atomic file: not open");
    if (br__fault_fflush(a->f) != 0 || ferror(a->f))
        return br_error(BR_EIO, "%s: write failed: %s", a->path, strerror(errno ? errno : EIO));
    if (br__fault_fsync(fileno(a->f)) != 0)
        return br_error(BR_EIO, "%s: fsync failed: %s", a->path, strerror(errno));
    return BR_OK;
}

br_status br__afile_commit(br__afile *a)
{
    if (!a->f) {
        release(a);
        return br_error(BR_EINVAL, "atomic file: not open");
    }
    br_status st = BR_OK;
    /* fflush first: ferror then covers the buffered bytes too */
    if (br__fault_fflush(a->f) != 0 || ferror(a->f))
        st = br_error(BR_EIO, "%s: write failed: %s", a->path, strerror(errno ? errno : EIO));
    else if (br__fault_fsync(fileno(a->f)) != 0)
        st = br_error(BR_EIO, "%s: fsync failed: %s", a->path, strerror(errno));
    if (fclose(a->f) != 0 && st == BR_OK)
        st = br_error(BR_EIO, "%s: close failed: %s", a->path, strerror(errno));
    a->f = NULL;
    if (st == BR_OK && br__fault_rename(a->tmp, a->path) != 0)
        st = br_error(BR_EIO, "%s: rename failed: %s", a->path, strerror(errno));
    if (st != BR_OK)
        unlink(a->tmp);
    else
        st = fsync_dir_of(a->path);
    release(a);
    return st;
}

void br__afile_abort(br__afile *a)
{
    if (a->f) {
        fclose(a->f);
        unlink(a->tmp);
    }
    release(a);
}

br_status br__afile_write(const char *path, const void *data, size_t n)
{
    br__afile a;
    br_status st = br__afile_open(&a, path);
    if (st) return st;
    if (n && br__fault_fwrite(data, 1, n, a.f) != n) {
        st = br_error(BR_EIO, "%s: write failed: %s", path, strerror(errno ? errno : EIO));
        br__afile_abort(&a);
        return st;
    }
    return br__afile_commit(&a);
}

br_status br__afile_symlink_prepare(const char *target, const char *linkpath, char **tmp_out)
{
    *tmp_out = NULL;
    size_t cap = strlen(linkpath) + TEMP_EXTRA;
    char *tmp = br_malloc(cap);
    if (!tmp) return br_error(BR_ENOMEM, "%s: out of memory", linkpath);
    int rc = -1;
    for (int i = 0; i < NAME_TRIES && rc != 0; i++) {
        temp_name(tmp, cap, linkpath);
        rc = symlink(target, tmp);
        if (rc != 0 && errno != EEXIST) break;
    }
    if (rc != 0) {
        br_status st = br_error(BR_EIO, "%s: symlink: %s", linkpath, strerror(errno));
        br_free(tmp);
        return st;
    }
    *tmp_out = tmp;
    return BR_OK;
}

br_status br__afile_symlink_commit(char *tmp, const char *linkpath)
{
    br_status st = BR_OK;
    if (br__fault_rename(tmp, linkpath) != 0) {
        st = br_error(BR_EIO, "%s: rename: %s", linkpath, strerror(errno));
        unlink(tmp);
    }
    br_free(tmp);
    return st ? st : fsync_dir_of(linkpath);
}

void br__afile_symlink_abort(char *tmp)
{
    if (!tmp) return;
    unlink(tmp);
    br_free(tmp);
}

br_status br__afile_symlink(const char *target, const char *linkpath)
{
    char *tmp;
    br_status st = br__afile_symlink_prepare(target, linkpath, &tmp);
    return st ? st : br__afile_symlink_commit(tmp, linkpath);
}
