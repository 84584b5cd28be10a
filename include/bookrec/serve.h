/*
 * bookrec/serve.h: the online half, `bookrec serve`: an HTTP API
 * (libmicrohttpd, its internal epoll thread pool; JSON by jansson) over a
 * published model version (bookrec/train.h) and the serving store
 * (bookrec/store.h). Endpoints, limits, errors, the re-ranking formula and
 * the metrics are in docs/api.md.
 *
 * The server holds one model snapshot (catalogue, embeddings, HNSW index,
 * tribes, PCA picture, popularity, precomputed JSON fragments) behind a
 * reference-counted pointer: a reload (br_server_reload, or the watcher
 * thread noticing that the model directory's `current` pointer moved) loads
 * the new version completely, then swaps the pointer; requests already
 * running finish on the old snapshot, which is freed by the last of them.
 *
 * When the store is unreachable (Redis down) the server answers from what
 * it holds (popular and content candidates, marked "degraded"), /readyz
 * says why, and a background probe reconnects with backoff.
 */
#ifndef BOOKREC_SERVE_H
#define BOOKREC_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "bookrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most recommendations one request may ask for (n above it: 400). */
#define BR_SERVE_N_MAX 100
/* Default and largest request body (POST). */
#define BR_SERVE_BODY_DEFAULT (64u * 1024u)
/* Points the tribe map (/api/tribes) returns at most: a larger catalogue
 * is sampled evenly (every ceil(n / max)-th book). */
#define BR_SERVE_MAP_POINTS_MAX 5000

/* The online re-ranking knobs (docs/api.md, "Re-ranking"). The published
 * list keeps the scores the learned ranker gave it; only what is new since
 * the version (interactions after its data) and the request's context
 * move books on that scale. The weights and the recency rule default to
 * what the version records (its manifest's ranking.online: train's
 * defaults); a negative weight (a zero count) means "the version's". */
typedef struct br_serve_rank {
    float w_content; /* a new interaction's neighbours gain w_content x cosine x the list's span */
    float w_pop;     /* popularity, for a reader without a published list */
    float w_recent;  /* books of the last `recent_years` (a business rule; 0 off) */
    uint32_t recent_years;
    /* A reader with fewer than `cold_interactions` interactions weighs
     * content up to twice as much (a new reader's list is mostly "more
     * like what you just read"). */
    uint32_t cold_interactions;
    uint32_t seeds;      /* new interactions used as content seeds */
    uint32_t neighbours; /* index neighbours per seed */
    /* device=mobile: at most this many books of one tribe in the list (a
     * small screen shows a few; make them varied). 0: no cap. */
    uint32_t mobile_per_tribe;
    /* hour in [night_from, 24) or [0, night_to): content weight x night_content
     * (evening reading continues what one reads). */
    uint32_t night_from, night_to;
    float night_content;
} br_serve_rank;

#define BR_SERVE_RANK_DEFAULT                                                                      \
    {                                                                                              \
        -1.0f, -1.0f, -1.0f, 0, 0, 5, 20, 3, 21, 6, 1.5f                                           \
    }

typedef struct br_server_options {
    const char *model_dir; /* required: DIR/current is served */
    const char *store;     /* store URI; NULL: the one the version's manifest names */
    const char *bind;      /* address or name, IPv4 or IPv6; NULL: 127.0.0.1 */
    uint16_t port;         /* 0: a free port (br_server_port tells which) */
    uint32_t threads;      /* 0: 2; 8 with a Redis store */
    const char *api_key;   /* NULL: write endpoints need no key */
    size_t max_body;       /* 0: BR_SERVE_BODY_DEFAULT */
    uint32_t poll_ms;      /* `current` watch and store probe period; 0: 1000 */
    int no_watch;          /* 1: reload only through br_server_reload */
    br_serve_rank rank;
    /* An origin whose pages may call the API from a browser (CORS), e.g.
     * "https://books.example.org", or "*"; NULL: none (same origin only). */
    const char *cors;
    /* Books POST /api/books may add to a version (each holds its vector and
     * text in memory until a train folds it in): past it, 429. 0:
     * BR_SERVE_ADDED_DEFAULT. */
    size_t max_added;
    /* What one client cannot take from the others (docs/api.md, "Slow and
     * greedy clients"). Connections one client address may hold open,
     * loopback included: past it a new one is closed at once. 0:
     * BR_SERVE_PER_IP_DEFAULT. */
    uint32_t max_per_ip;
    /* Milliseconds a connection has to deliver a whole request (head and
     * body), from its opening or from its previous answer, however slowly
     * its bytes come: then it is closed. 0: BR_SERVE_DEADLINE_DEFAULT_MS. */
    uint32_t request_deadline_ms;
    /* Open connections served as usual. Past it a reserve of 64 more is
     * kept for health checks: /healthz and /readyz only (anything else
     * 503), each closed 2 s after it opened. Lowered to what the process'
     * open-file limit (ulimit -n) allows. 0: BR_SERVE_CONNECTIONS_DEFAULT. */
    uint32_t max_connections;
    /* Bound beyond loopback without api_key, the write endpoints (POST
     * /api/events, /api/books) answer 401 unless this is 1. Loopback binds
     * never need it. */
    int allow_open_writes;
} br_server_options;

#define BR_SERVE_ADDED_DEFAULT       10000
#define BR_SERVE_PER_IP_DEFAULT      64
#define BR_SERVE_DEADLINE_DEFAULT_MS 10000
#define BR_SERVE_CONNECTIONS_DEFAULT 4000

#define BR_SERVER_OPTIONS_DEFAULT                                                                  \
    {                                                                                              \
        NULL, NULL, NULL, 8080, 0, NULL, 0, 0, 0, BR_SERVE_RANK_DEFAULT, NULL, 0, 0, 0, 0, 0       \
    }

typedef struct br_server br_server;

/* Loads the current version, opens the store and the event log, starts
 * listening. BR_ENOTFOUND when nothing was published; BR_EIO when the
 * address cannot be bound. A Redis store that is down at start is not an
 * error: the server starts degraded. */
BR_API br_status br_server_start(const br_server_options *opt, br_server **out);
/* The port actually bound. */
BR_API uint16_t br_server_port(const br_server *srv);
/* The served model version's id into buf. */
BR_API void br_server_version(br_server *srv, char *buf, size_t cap);
/* Loads DIR/current if it differs from the served version (force: always)
 * and swaps it in; on failure the old version keeps serving. */
BR_API br_status br_server_reload(br_server *srv, int force);
/* Stops listening and waits for running requests; then br_server_free. */
BR_API void br_server_stop(br_server *srv);
BR_API void br_server_free(br_server *srv);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_SERVE_H */
