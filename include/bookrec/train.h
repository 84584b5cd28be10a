/*
 * bookrec/train.h: the nightly librarian. `bookrec train` as a library call:
 * ingest -> embed (only new or changed books, through the embedding cache)
 * -> tribes -> vector index (new books added to the previous version's
 * index) -> collaborative training -> top-N per reader -> publish.
 *
 * Model directory (docs/formats.md, "Model directory"):
 *
 *   DIR/versions/<id>/   one complete model version, manifest.json last
 *   DIR/current          symlink "versions/<id>": the version being served
 *   DIR/embeddings.brec  the embedding cache of this model directory
 *   DIR/store/           the LMDB store when no other store URI is given
 *   DIR/.lock            held (flock) by a run that writes the directory
 *
 * Paths a manifest records are relative to the model directory when they
 * lie inside it, else absolute, so a directory moved or copied elsewhere
 * still works from any working directory (br_models_store resolves them).
 *
 * A version is written under versions/.tmp-<id>, every file fsynced, the
 * directory renamed into place, then published to the store, and only then
 * is `current` re-pointed (a new symlink renamed over the old one). A run
 * that fails or is killed at any point leaves the previous version serving
 * and intact; the leftovers of a killed run are removed by the next one.
 *
 * The library never prints: progress goes through the br_progress callback
 * (one stage per step, named "train: <step>"), results into the report.
 */
#ifndef BOOKREC_TRAIN_H
#define BOOKREC_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/core.h"
#include "bookrec/eval.h"
#include "bookrec/events.h"
#include "bookrec/text.h" /* br_book_template */

#ifdef __cplusplus
extern "C" {
#endif

/* Version ids are "v" and six or more digits, increasing: v000001, ... */
/* The consumer group `train` reads the event log through. */
#define BR_TRAIN_EVENTS_GROUP "bookrec-train"

#define BR_MODEL_ID_MAX 64

typedef enum br_train_cf {
    BR_TRAIN_CF_ALS = 0, /* the default hybrid: ease + implicit als + content */
    BR_TRAIN_CF_SVD = 1, /* the notebook's hybrid: content + exact/randomized svd */
} br_train_cf;

typedef struct br_train_options {
    const char *books;     /* books.csv */
    const char *ratings;   /* ratings.csv */
    const char *model_dir; /* created when missing */
    const char *store;     /* store URI; NULL: "lmdb:<model_dir>/store" */
    const char *encoder;   /* "use-lite" (NULL) or "bert:DIR" */
    br_book_template text; /* what the encoder reads of a book (BR_TEXT_FULL) */
    br_train_cf cf;
    uint32_t clusters;   /* tribes (k-means k) */
    uint32_t factors;    /* collaborative factors; 0: the engine's default */
    uint32_t iterations; /* als iterations; 0: the default */
    uint32_t top_n;      /* recommendations kept per reader */
    uint32_t keep;       /* versions kept after a successful run; 0: all */
    uint64_t seed;
    /* The event log to fold in (br_events_open URI, e.g. the store's, where
     * `bookrec ingest` appends), or NULL. Every rating event is a rating (a
     * later one replaces an earlier rating of the same book by the same
     * reader, the CSV's included); other event types are the store's
     * online business and not trained on. Incremental: a run reads only
     * what the consumer group BR_TRAIN_EVENTS_GROUP has not acknowledged,
     * adds it to the rating events the newest version folded in (its
     * snapshot, versions/<id>/events.log), writes the sum as the new
     * version's snapshot and, once published, acknowledges the log up to
     * the position recorded in the manifest and trims the Redis stream.
     * So each version is trained from the CSV files plus every event ever
     * folded, each exactly once, and the log is read once. */
    const char *events;
    /* Evaluation figures in the manifest (docs/evaluation.md's protocol):
     * a held-out split of the CSV ratings (seeded with `seed`), the same
     * engine and parameters fitted on its training part, precision, recall,
     * NDCG, MAP and coverage at eval_k over at most eval_readers readers
     * (0: 10,000; more are thinned to every m-th). The published model is
     * still trained on everything. */
    int eval;
    uint32_t eval_k;       /* 0: 10 */
    uint32_t eval_readers; /* 0: 10,000 */
    /* The rating scale (inclusive): a CSV rating outside it fails the run,
     * a rating event outside it is not folded (counted in the report).
     * Recorded in the manifest, so the store's metadata carries it too
     * (br_event_rules_from_manifest). */
    float rating_min, rating_max;
} br_train_options;

#define BR_TRAIN_OPTIONS_DEFAULT                                                                   \
    {                                                                                              \
        NULL, NULL, NULL, NULL, NULL, BR_TEXT_FULL, BR_TRAIN_CF_ALS, 10, 0, 0, 100, 0, 42, NULL,   \
            0, 0, 0, 1.0f, 5.0f                                                                    \
    }

enum {
    BR_TRAIN_INGEST = 0,
    BR_TRAIN_EMBED,
    BR_TRAIN_TRIBES,
    BR_TRAIN_INDEX,
    BR_TRAIN_COLLAB,
    BR_TRAIN_TOPN,
    BR_TRAIN_PUBLISH,
    BR_TRAIN_STAGES
};

typedef struct br_train_stage {
    const char *name; /* "ingest", "embed", ... */
    double seconds;
    uint64_t count; /* what the stage produced (rows, books, readers) */
} br_train_stage;

typedef struct br_train_report {
    char version[BR_MODEL_ID_MAX];  /* the version written and published */
    char previous[BR_MODEL_ID_MAX]; /* the version served before ("" when none) */
    uint64_t n_books, n_users, n_ratings;
    uint64_t n_events;       /* rating events in the model (all ever folded) */
    uint64_t n_events_new;   /* ... of which this run read from the log */
    uint64_t events_trimmed; /* entries the Redis stream was trimmed of */
    uint64_t embedded;       /* books this run had to embed (0: nothing changed) */
    uint64_t index_added;    /* vectors inserted into the index */
    int index_incremental;   /* 1: the previous version's index was extended */
    uint64_t pruned;         /* old versions removed (--keep) */
    br_train_stage stage[BR_TRAIN_STAGES];
    double seconds;
    /* With opt->eval: the figures (also in the manifest's "evaluation")
     * and the seconds the extra fit and ranking took. */
    int evaluated;
    br_eval_result eval;
    size_t eval_readers;
    double eval_seconds;
    /* Rating events (of the base version's snapshot or the log) that fail
     * br_event_check with the run's scale, or name a book outside the
     * catalogue: not folded, so a bad event in an append-only log never
     * fails every later run. The first one's problem, with its position. */
    uint64_t events_rejected;
    char events_rejected_first[256];
} br_train_report;

/* Runs the whole pipeline. report may be NULL. On failure nothing the
 * served version uses has changed. BR_EEXIST when another run holds the
 * model directory. */
BR_API br_status br_train_run(const br_train_options *opt, br_train_report *report);

/* ------------------------------------------------------------ versions -- */

typedef struct br_model_version {
    char id[BR_MODEL_ID_MAX];
    int current;        /* 1 for the version `current` points to */
    int64_t created_at; /* Unix seconds (from the manifest) */
    uint64_t n_books, n_users;
    /* 1 once the version was published to a store (its `served` marker,
     * written before `current` moves to it; versions from before markers
     * count as served). 0: a run killed after its directory was complete
     * but before it published: never served, never chosen by a default
     * rollback, removed by the next train. */
    int served;
} br_model_version;

/* Complete versions (those with a manifest), oldest first; *out is one
 * allocation (br_free). An empty or missing directory gives n = 0. */
BR_API br_status br_models_list(const char *model_dir, br_model_version **out, size_t *n);
/* The id `current` points to; BR_ENOTFOUND when nothing was published. */
BR_API br_status br_models_current(const char *model_dir, char *id, size_t cap);
/* A version's manifest.json text (id NULL: current); heap, br_free. */
BR_API br_status br_models_manifest(const char *model_dir, const char *id, char **json);
/* Path of a version's directory into buf (id NULL: current). */
BR_API br_status br_models_path(const char *model_dir, const char *id, char *buf, size_t cap);
/* The store URI version `id` (NULL: current) was published to, as its
 * manifest's "store" resolved for opening from the caller's working
 * directory: a relative lmdb: path is relative to model_dir (manifest
 * format_version 2 and later) or to the working directory (format_version
 * 1, as it was then). What `models rollback`, `recommend --model-dir` and
 * `serve` open when no store is given. */
BR_API br_status br_models_store(const char *model_dir, const char *id, char *buf, size_t cap);
/* The event rules (the rating scale) a model version was trained with, from
 * its manifest text or the store's metadata of the version (the same text,
 * br_store_get_meta): "parameters.rating_scale". A bookrec manifest
 * without one (written before train had --rating-scale) gives 1..5, the
 * scale every such run used. BR_ENOTFOUND for metadata that is no bookrec
 * manifest (nothing known), BR_EFORMAT for text that is not JSON or a
 * malformed scale. */
BR_API br_status br_event_rules_from_manifest(const char *manifest, br_event_rules *out);
/* Serves version `id` again (NULL: the newest version older than the
 * current one): re-publishes its recommendations and books to the store
 * (`store` NULL: the one its manifest names), with the readers' seen sets
 * and latest interactions as br_models_restore puts them back (a ratings
 * file that cannot be read is a warning through the log, not an error),
 * then re-points `current`.
 * `to` (BR_MODEL_ID_MAX bytes, may be NULL) receives the id. */
BR_API br_status br_models_rollback(const char *model_dir, const char *id, const char *store,
                                    char *to);
/* What br_models_restore (and a rollback) put back besides the lists. */
typedef struct br_models_restore_report {
    char version[BR_MODEL_ID_MAX]; /* the version the store serves */
    int republished;               /* 1: its lists, books and metadata were published again */
    char source[BR_MODEL_ID_MAX];  /* the version whose training ratings were read */
    uint64_t ratings;              /* training ratings merged (one per reader and book) */
    uint64_t events;               /* events merged from the event logs */
    uint64_t readers;              /* readers whose seen sets and interactions were merged */
    int ratings_missing;           /* rollback only: the training ratings were unreadable */
} br_models_restore_report;

/* Puts back into the store (`store` NULL: the one the current version's
 * manifest names) everything a reader's answer depends on, after it lost
 * its data (docs/store.md, "Recovering a store"): the seen sets and latest
 * interactions, from the ratings the newest served version was trained on
 * (`ratings` NULL: the file its manifest names, which must still have the
 * size and hash recorded there; else that file, checked the same way), its
 * folded rating events and every event of the store's event log and of
 * the log `train --events` read; then the current version's lists, books
 * and metadata when the store does not serve it. Idempotent: seen sets are
 * unions, interactions are kept once. report may be NULL. */
BR_API br_status br_models_restore(const char *model_dir, const char *store, const char *ratings,
                                   br_models_restore_report *report);
/* Removes all but the newest `keep` versions, never the current one.
 * *removed (may be NULL) receives how many went. */
BR_API br_status br_models_prune(const char *model_dir, uint32_t keep, uint64_t *removed);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_TRAIN_H */
