/*
 * testutil.h: helpers shared by the cmocka tests: paths to test data, the
 * ../shared folder (skipping cleanly when it is absent), temporary files.
 */
#ifndef BR_TESTUTIL_H
#define BR_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "bookrec/bookrec.h"

/* Path under tests/data (static buffer per call site is not needed: returns
 * a heap string the test frees with br_free). */
char *tu_data_path(const char *name);
/* Path under ../shared, or NULL (after printing why) when it is absent:
 * callers then `skip()`. */
char *tu_shared_path(const char *name);
/* A fresh empty temporary directory for this test (under the build tree). */
char *tu_tmpdir(const char *tag);
/* Writes `text` to dir/name and returns the path (heap string). */
char *tu_write_file(const char *dir, const char *name, const char *text);
/* A catalogue loaded from CSV text (written to a fresh tmp dir named after
 * tag); fails the test on a load error. */
br_catalog *tu_catalog(const char *tag, const char *csv);
/* Reads a whole file; NULL on failure. *len may be NULL. */
char *tu_read_file(const char *path, size_t *len);

/* Writes the embedding cache (docs/formats.md) of the seed universe's
 * descriptions from the golden USE-lite vectors: a `train` of the seed
 * universe with the description template then embeds nothing. 0 on
 * success. */
int tu_seed_embed_cache(const char *path);

/* The seed universe (br_generate, numpy rng) written into SEED_DIR and
 * trained into MODEL_DIR (both created) with the tests' small settings:
 * the description template (embedded from tu_seed_embed_cache: nothing
 * is encoded), 4 tribes, 3 ALS iterations, 16 factors, top 20. 0, or -1
 * with br_error_detail() saying why. Needs the use-lite model. */
int tu_train_seed(const char *seed_dir, const char *model_dir);
/* 1 when the use-lite model is installed (`make model`): what
 * tu_train_seed and a server's posted books need. */
int tu_have_use_lite(void);
/* The options tu_train_seed trains with, for other books, ratings or a
 * store. */
br_train_options tu_seed_train_options(const char *books, const char *ratings,
                                       const char *model_dir);

/* Writes DIR/embeddings.brec (the cache `train` reads, docs/formats.md)
 * for the catalogue at `books` (at most 512 books): book i's use-lite
 * vector is the i-th unit vector, so a `train` embeds no text. */
void tu_embed_cache_onehot(const char *dir, const char *books);

/* Asserts that `st` is `expect` and the error detail contains `needle`. */
#define assert_status_detail(st, expect, needle)                                                   \
    do {                                                                                           \
        br_status st_ = (st);                                                                      \
        if (st_ != (expect) || !strstr(br_error_detail(), (needle)))                               \
            fail_msg("got %d (%s) detail '%s'; want %d with '%s'", st_, br_strerror(st_),          \
                     br_error_detail(), (int)(expect), (needle));                                  \
    } while (0)

/* Skips the current test (saying why) when the use-lite encoder model is
 * absent (`make model`): `have` is the group setup's check, `what` names
 * the tests skipped ("serve" prints "serve tests skipped"). */
#define NEED_MODEL(have, what)                                                                     \
    do {                                                                                           \
        if (!(have)) {                                                                             \
            printf("[  SKIP    ] no use-lite model (make model): %s tests skipped\n", (what));     \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

#endif
