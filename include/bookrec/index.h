/*
 * bookrec/index.h: the approximate nearest-neighbour index of the content
 * engine, for catalogues too large for exact search: HNSW (Malkov &
 * Yashunin, "Efficient and robust approximate nearest neighbor search using
 * Hierarchical Navigable Small World graphs", 2016/2018).
 *
 * Similarity is the inner product, or cosine (vectors and queries are
 * L2-normalised on the way in). Ids are dense: the i-th vector added gets
 * id i, matching the catalogue's book indices. A new vector is searchable
 * as soon as br_hnsw_add returns (no rebuild); br_hnsw_remove leaves a
 * tombstone: the node still routes searches but is never returned.
 *
 * Concurrency: a reader-writer lock. Any number of threads may search at
 * once; add, add_batch, remove and save take the lock exclusively, so an
 * insertion waits for running searches and searches wait for it.
 * br_hnsw_add_batch inserts in parallel internally (per-node locks).
 *
 * File format (docs/formats.md, "HNSW index"): magic, version, checksummed
 * header and data; loaded with mmap (pages are shared with the page cache
 * until the index is modified); a corrupt or truncated file is refused.
 */
#ifndef BOOKREC_INDEX_H
#define BOOKREC_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Below this many vectors exact search (br_topk_search) is the default:
 * it is exact and, at this size, about as fast. */
#define BR_INDEX_EXACT_THRESHOLD 20000

typedef enum br_metric {
    BR_METRIC_COSINE = 0, /* vectors and queries normalised; score = cosine */
    BR_METRIC_IP = 1,     /* score = inner product, vectors stored as given */
} br_metric;

typedef struct br_hnsw_options {
    uint32_t m;               /* links per node on upper layers (2 x m on layer 0); 2..128 */
    uint32_t ef_construction; /* candidate list size while inserting */
    br_metric metric;
    uint64_t seed; /* levels are a pure function of (seed, id): builds are reproducible */
} br_hnsw_options;

#define BR_HNSW_OPTIONS_DEFAULT {16, 200, BR_METRIC_COSINE, 42}

typedef struct br_hnsw br_hnsw;

BR_API br_status br_hnsw_create(size_t dim, const br_hnsw_options *opt, br_hnsw **out);
BR_API void br_hnsw_free(br_hnsw *h);

/* Adds one vector (dim,); *id (may be NULL) receives its id. */
BR_API br_status br_hnsw_add(br_hnsw *h, const float *vec, uint32_t *id);
/* Adds n vectors (n, dim) with ids first, first+1, ...; threads insert in
 * parallel (the graph then depends slightly on thread timing). */
BR_API br_status br_hnsw_add_batch(br_hnsw *h, const float *vecs, size_t n, uint32_t *first);
/* Tombstones id: it is never returned again. BR_ENOTFOUND for an unknown
 * or already removed id. */
BR_API br_status br_hnsw_remove(br_hnsw *h, uint32_t id);

/* The k most similar live vectors to query (dim,), best first: ids (k,)
 * and scores (k,) (scores may be NULL); ef >= k candidates are explored
 * (ef < k is raised to k). *found (may be NULL) receives how many were
 * found; the tail is -1 / -INFINITY. */
BR_API br_status br_hnsw_search(const br_hnsw *h, const float *query, size_t k, size_t ef,
                                int32_t *ids, float *scores, size_t *found);
/* nq queries (nq, dim) in parallel: ids (nq, k), scores (nq, k) or NULL. */
BR_API br_status br_hnsw_search_batch(const br_hnsw *h, const float *queries, size_t nq, size_t k,
                                      size_t ef, int32_t *ids, float *scores);

BR_API size_t br_hnsw_count(const br_hnsw *h);   /* ids handed out, tombstones included */
BR_API size_t br_hnsw_deleted(const br_hnsw *h); /* tombstones */
BR_API size_t br_hnsw_dim(const br_hnsw *h);
BR_API size_t br_hnsw_memory(const br_hnsw *h); /* bytes held (mapped file pages included) */
BR_API void br_hnsw_get_options(const br_hnsw *h, br_hnsw_options *opt);

/* Writes the index to path: a temporary file beside it, fsynced, renamed. */
BR_API br_status br_hnsw_save(const br_hnsw *h, const char *path);
/* Maps and checks an index file: BR_ENOTFOUND when missing, BR_EFORMAT
 * with a detail when corrupt, truncated or of another version. */
BR_API br_status br_hnsw_load(const char *path, br_hnsw **out);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_INDEX_H */
