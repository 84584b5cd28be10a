/*
 * train_internal.h: what train.c and versions.c share (not installed).
 */
#ifndef BOOKREC_TRAIN_INTERNAL_H
#define BOOKREC_TRAIN_INTERNAL_H

#include <limits.h>
#include <stdarg.h>

#include "bookrec/events.h"
#include "bookrec/store.h"
#include "bookrec/train.h"
#include "core/afile.h"

/* What a train run publishes besides the version's files: the readers'
 * seen sets (seen[u], seen_n[u] books, u in user_ids.txt order) and the
 * latest interactions. Rollbacks publish without them (they are not
 * versioned: docs/store.md). */
typedef struct br__publish_extra {
    const char *const *const *seen;
    const size_t *seen_n;
    const br_event *recent;
    size_t n_recent;
} br__publish_extra;

br_status br__train_path(char *buf, size_t cap, const char *fmt, ...) BR_PRINTF(3, 4);
br_status br__train_rmtree(const char *path);
br_status br__read_text(const char *path, char **out);
br_status br__read_ids(const char *path, char ***ids, size_t *n, char **blob);
br_status br__models_next_id(const char *model_dir, char *id, size_t cap);
/* Writes versions/<id>/served (once): the version was published to a
 * store (br_model_version.served). */
br_status br__models_mark_served(const char *model_dir, const char *id);
/* Marks id served and points `current` at it, in two halves around a
 * store's switch (train's publish, models rollback): prepare
 * writes the marker and the new link under temporary names (fsynced);
 * after the switch, commit only renames them (and fsyncs the directories),
 * which needs no free space: a full disk cannot leave the store serving a
 * version `current` does not name. Commit and abort release `p`. */
typedef struct br__models_pointer {
    br__afile mark;
    char *link_tmp;
    char link[PATH_MAX];
} br__models_pointer;
br_status br__models_pointer_prepare(const char *model_dir, const char *id, br__models_pointer *p);
br_status br__models_pointer_commit(br__models_pointer *p);
void br__models_pointer_abort(br__models_pointer *p);
/* br_models_prune for a caller that holds the directory's lock. */
br_status br__models_prune_locked(const char *model_dir, uint32_t keep, uint64_t *removed);
/* Publishes version `id` of model_dir (read with br_model_open) to the
 * store, with the seen sets and latest interactions of `extra` (NULL: none,
 * as for a rollback). */
br_status br__publish_version(const char *model_dir, const char *id, br_store *s,
                              const br__publish_extra *extra);
/* A store or event-log URI as a manifest records it (format_version 2): a
 * local path (lmdb:, file:) inside the model directory relative to it,
 * another made absolute; other URIs as they are. */
br_status br__uri_record(const char *model_dir, const char *uri, char *buf, size_t cap);
/* 1 when `uri` names a local path (lmdb:DIR[?...], file:PATH): *len is
 * the path's length after the 5-byte scheme. */
int br__uri_local_path(const char *uri, size_t *len);
/* The reverse, for opening from the caller's working directory: relative
 * paths of a format_version >= 2 manifest are relative to model_dir,
 * those of version 1 (or none) to the working directory. */
br_status br__uri_resolve(const char *model_dir, long long format_version, const char *uri,
                          char *buf, size_t cap);
/* 1 when two URIs name the same place (local paths compared by realpath). */
int br__uri_same(const char *a, const char *b);
/* Streaming FNV-1a 64 of a file and its size (the manifest's input record);
 * BR_EIO when it cannot be read. */
br_status br__train_hash_file(const char *path, uint64_t *hash, uint64_t *size);
/* Merges into store `s` (at `store_uri`) the readers' seen sets and latest
 * interactions (restore.c): the training ratings of the newest served
 * version (`ratings` NULL: the file its manifest names) and every event of
 * the store's log and of the log that version read. strict 0 (a rollback):
 * training ratings that cannot be read are a warning (rep->ratings_missing),
 * not an error. Adds to rep's counts and sets rep->source. */
br_status br__restore_readers(const char *model_dir, br_store *s, const char *store_uri,
                              const char *ratings, int strict, br_models_restore_report *rep);
/* flock on DIR/.lock (created with DIR): BR_EEXIST while another run holds it. */
br_status br__train_lock(const char *model_dir, int *fd_out);
void br__train_unlock(int fd);

#endif /* BOOKREC_TRAIN_INTERNAL_H */
