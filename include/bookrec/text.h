/*
 * bookrec/text.h: from a catalogue to book vectors. The text the encoder
 * reads for each book (two templates: the whole book, or the notebook's
 * description alone), and the embedding cache every command shares, so a
 * book's text is embedded once per encoder (bookrec/encoder.h: the
 * encoders themselves).
 */
#ifndef BOOKREC_TEXT_H
#define BOOKREC_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/core.h"
#include "bookrec/data.h"
#include "bookrec/encoder.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ book text -- */

typedef enum br_book_template {
    /* title. by authors. genre. tags joined by ", ". description */
    BR_TEXT_FULL = 0,
    /* the description alone (the title when there is none): the notebook */
    BR_TEXT_DESCRIPTION = 1,
} br_book_template;

/* The text the encoder reads for a book (`bookrec embed --books`). *out is
 * br_malloc'd; the caller releases it with br_free. */
BR_API br_status br_book_text(const br_book *b, br_book_template t, char **out);

/* ------------------------------------------------------ embedding cache -- */

/* Embeds every catalogue book (rows in catalogue order, out (n, dim) with
 * dim = br_encoder_dim) through the embedding caches: a book whose text is
 * in a cache for this encoder is read from it, the others are embedded, and
 * each cache gains what it lacked. The key is the encoder name
 * `encoder_key` (e.g. "use-lite" or "bert:DIR") and the 64-bit FNV-1a hash
 * and byte length of the exact text (so the template is in the key through
 * the text it makes; docs/formats.md, "Embedding cache"). Caches:
 *   file  the caller's own cache file (train: DIR/embeddings.brec, which
 *         keeps a model directory self-contained), read first; NULL: none.
 *         A damaged file is an error (BR_EFORMAT).
 *   dir   the shared cache directory, one file per encoder
 *         (br_embed_cache_file); NULL: br_embed_cache_dir's, "": none. A
 *         damaged or unwritable shared file is a warning (br_log), not an
 *         error.
 * Safe while other processes use the same files: additions are made under
 * an flock on FILE.lock after re-reading FILE, and land by rename.
 * *embedded (may be NULL) receives the number of books no cache held. */
typedef struct br_embed_caches {
    const char *file;
    const char *dir;
} br_embed_caches;
BR_API br_status br_embed_catalog_in(const br_encoder *enc, const char *encoder_key,
                                     const br_catalog *cat, br_book_template t,
                                     const br_embed_caches *caches, float *out, size_t *embedded);

/* br_embed_catalog_in with the caller's file cache_path (NULL: none) and
 * the default shared cache directory. */
BR_API br_status br_embed_catalog(const br_encoder *enc, const char *encoder_key,
                                  const br_catalog *cat, br_book_template t, const char *cache_path,
                                  float *out, size_t *embedded);

/* The shared cache directory: $BOOKREC_EMBED_CACHE when set ("none": no
 * shared cache), else $XDG_CACHE_HOME/bookrec/embeddings, else
 * ~/.cache/bookrec/embeddings (beside the encoder models). buf is "" when
 * there is none (BOOKREC_EMBED_CACHE=none, or neither variable set). */
BR_API br_status br_embed_cache_dir(char *buf, size_t cap);

/* The shared cache file of one encoder in dir: DIR/<key>.brec for a plain
 * key ("use-lite.brec"), else a readable part of the key and its hash. */
BR_API br_status br_embed_cache_file(const char *dir, const char *encoder_key, char *buf,
                                     size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_TEXT_H */
