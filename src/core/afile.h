/*
 * afile.h (internal): the one way the library replaces a file. Every file
 * that outlives a run (npy arrays, model files, indexes, manifests, the
 * events checkpoint, pictures) is written to a temporary file beside its
 * destination, flushed, fsynced and renamed over it, then the directory is
 * fsynced: a reader (or a crash) sees the old file or the new one, never a
 * mixture, and a failed write leaves the old file as it was and no
 * temporary behind.
 *
 * The temporary's name is unique ("<path>.tmp.<16 hex digits>", created
 * with O_EXCL, so never shared): two writers of the same path at once each
 * write their own, and the last rename wins whole. It is created with mode
 * 0666 less the umask, as fopen would create the destination.
 *
 *     br__afile a;
 *     br_status st = br__afile_open(&a, path);
 *     if (st) return st;
 *     fwrite(..., a.f);                 // or fprintf, cairo streams, ...
 *     return br__afile_commit(&a);      // or br__afile_abort(&a)
 */
#ifndef BR_CORE_AFILE_H
#define BR_CORE_AFILE_H

#include <stddef.h>
#include <stdio.h>

#include "bookrec/core.h"

typedef struct br__afile {
    FILE *f;    /* the temporary, open "w+b" (a writer may read it back) */
    char *path; /* the destination */
    char *tmp;  /* the temporary, in the destination's directory */
} br__afile;

/* Creates the temporary for `path`. On failure (BR_EIO "PATH: cannot
 * create: ...", BR_ENOMEM) nothing is left to release. */
br_status br__afile_open(br__afile *a, const char *path);

/* Flushes, checks that every write succeeded (the stream's error flag),
 * fsyncs, closes and renames the temporary over the destination, then
 * fsyncs the directory. On any failure the temporary is removed and the
 * destination is untouched (unless only the directory's fsync failed).
 * Releases `a` either way. */
br_status br__afile_commit(br__afile *a);

/* Flushes and fsyncs the temporary, checking every write, and keeps it
 * open: a commit after it writes no data, so it needs no free space (a
 * step that must not fail on a full disk comes after). On failure the
 * caller aborts. */
br_status br__afile_prepare(br__afile *a);

/* Closes and removes the temporary: the destination is untouched. Releases
 * `a`; a no-op on a released or zeroed one. */
void br__afile_abort(br__afile *a);

/* The whole file at once: open, write data[0..n), commit. */
br_status br__afile_write(const char *path, const void *data, size_t n);

/* Points the symbolic link `linkpath` at `target` atomically: a new link
 * under a unique temporary name, renamed over linkpath, the directory
 * fsynced. */
br_status br__afile_symlink(const char *target, const char *linkpath);

/* br__afile_symlink in two halves: the new link under its temporary name
 * (*tmp), then (commit) renamed over linkpath and the directory fsynced.
 * Commit and abort (which removes the link) free *tmp. */
br_status br__afile_symlink_prepare(const char *target, const char *linkpath, char **tmp);
br_status br__afile_symlink_commit(char *tmp, const char *linkpath);
void br__afile_symlink_abort(char *tmp);

/* fsync of a directory, so that renames in it survive a crash. */
br_status br__fsync_dir(const char *dir);

#endif
