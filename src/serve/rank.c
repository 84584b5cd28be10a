/*
 * rank.c: the online re-ranking of `bookrec serve` (docs/api.md,
 * "Re-ranking"). Candidates come from three places: the reader's
 * precomputed list (collab), the HNSW neighbours of their latest
 * interactions (content) and the popular books (popular; the cold-start
 * list, round-robin over tribes, for a reader we know nothing of). Each
 * candidate's signals are in [0, 1] and blended with weights that shift
 * with the reader's history and the request's context; seen books are
 * dropped; a per-tribe cap keeps lists varied where asked.
 *
 * Everything lives on the stack, but for one array of marks a thread
 * (allocated on its first request, grown with the catalogue): a request
 * allocates nothing here beyond what the output buffer needs.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "content/lexical.h"
#include "serve/serve_internal.h"

#define CAND_MAX 1024

enum {
    SRC_COLLAB = SRV_SRC_COLLAB,
    SRC_CONTENT = SRV_SRC_CONTENT,
    SRC_POPULAR = SRV_SRC_POPULAR,
    SRC_RECENT = SRV_SRC_RECENT
};

typedef struct cand {
    uint32_t book;
    float collab, content, pop, recent, score;
    float dislike;     /* cosine to the closest disliked seed, clamped to [0, 1] */
    int16_t seed;      /* the seed that gave `content`, -1 */
    uint16_t rec_rank; /* 1-based rank in the precomputed list, 0 */
    uint8_t src;
    uint16_t near_rank; /* a filter's fill: a neighbour of the list's book at this rank, 0 */
} cand;

/* Marks, one a book, kept per thread: a request's seen books and each
 * candidate's position in the pool, found with one load instead of two
 * hash tables probed ~500 times a request (a third of the ranking in
 * perf). A mark counts when its high bits equal the request's generation,
 * which moves on by one a request, so nothing is cleared in between; the
 * low bits hold the pool position or MARK_SEEN. */
#define MARK_BITS 11
#define MARK_LOW  ((1u << MARK_BITS) - 1)
#define MARK_SEEN MARK_LOW       /* seen: never a candidate */
#define MARK_FREE (MARK_LOW - 1) /* mark_get: neither seen nor a candidate */
_Static_assert(CAND_MAX <= MARK_FREE, "pool positions fit below MARK_FREE");

typedef struct marks {
    uint32_t *m; /* (cap,) */
    size_t cap;
    uint32_t gen; /* 1 .. UINT32_MAX >> MARK_BITS */
} marks;

static __thread marks *tls_marks; /* static TLS: leak checkers see it */
static pthread_key_t marks_key;   /* only to free a thread's marks when it ends */
static pthread_once_t marks_once = PTHREAD_ONCE_INIT;

static void marks_free(void *v)
{
    marks *k = v;
    if (k) br_free(k->m);
    br_free(k);
}

static void marks_key_init(void)
{
    pthread_key_create(&marks_key, marks_free);
}

/* The calling thread's marks for n books, with a fresh generation. */
static marks *marks_begin(size_t n)
{
    marks *k = tls_marks;
    if (!k) {
        pthread_once(&marks_once, marks_key_init);
        if (!(k = br_calloc(1, sizeof *k))) return NULL;
        tls_marks = k;
        pthread_setspecific(marks_key, k);
    }
    if (k->cap < n) { /* books posted since: grow, new marks are of generation 0 */
        size_t cap = n + n / 4 + 64;
        uint32_t *m = br_realloc(k->m, cap * sizeof *m);
        if (!m) return NULL;
        memset(m + k->cap, 0, (cap - k->cap) * sizeof *m);
        k->m = m;
        k->cap = cap;
    }
    if (++k->gen > UINT32_MAX >> MARK_BITS) { /* every 2^21 requests */
        memset(k->m, 0, k->cap * sizeof *k->m);
        k->gen = 1;
    }
    return k;
}

void br__srv_rank_set_generation(uint32_t gen)
{
    marks *k = marks_begin(0);
    if (k) k->gen = gen;
}

typedef struct pool {
    cand c[CAND_MAX];
    size_t n;
    uint32_t *mark; /* the thread's marks, (n_books,) */
    uint32_t tag;   /* the generation, shifted */
} pool;

/* MARK_SEEN, MARK_FREE or the book's pool position. */
static inline uint32_t mark_get(const pool *p, uint32_t book)
{
    uint32_t m = p->mark[book];
    return (m & ~MARK_LOW) == p->tag ? m & MARK_LOW : MARK_FREE;
}

static inline void seen_add(pool *p, uint32_t book)
{
    p->mark[book] = p->tag | MARK_SEEN;
}

/* The candidate of a book not seen: the one in the pool, or a new one
 * (NULL: the pool is full). */
static cand *pool_get(pool *p, uint32_t book, uint32_t mark)
{
    if (mark != MARK_FREE) return &p->c[mark];
    if (p->n == CAND_MAX) return NULL;
    cand *c = &p->c[p->n];
    memset(c, 0, sizeof *c);
    c->book = book;
    c->seed = -1;
    p->mark[book] = p->tag | (uint32_t)p->n++;
    return c;
}

/* Candidates by score, best first, ties by the lower book index, as one
 * 64-bit key each: the score's bits made order-preserving above, the
 * complemented book index below. A quicksort of integers; sorting the
 * 28-byte candidates themselves cost a tenth of the route (perf). */
static uint64_t cand_key(const cand *c)
{
    uint32_t u;
    memcpy(&u, &c->score, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* IEEE order as unsigned */
    return (uint64_t)u << 32 | (uint32_t)~c->book;
}

static uint32_t key_book(uint64_t k)
{
    return ~(uint32_t)k;
}

/* Hoare partition around the middle element (n > 1): returns j with every
 * key of k[0..j] >= every key of k[j+1..n) (keys are distinct). */
static size_t partition_keys(uint64_t *k, size_t n)
{
    uint64_t pivot = k[n / 2];
    size_t i = 0, j = n - 1;
    for (;;) {
        while (k[i] > pivot) i++;
        while (pivot > k[j]) j--;
        if (i >= j) return j;
        uint64_t t = k[i];
        k[i] = k[j];
        k[j] = t;
        i++;
        j--;
    }
}

static void sort_keys(uint64_t *k, size_t n)
{
    while (n > 16) {
        size_t j = partition_keys(k, n);
        /* recurse on the smaller side */
        if (j + 1 < n - j - 1) {
            sort_keys(k, j + 1);
            k += j + 1;
            n -= j + 1;
        } else {
            sort_keys(k + j + 1, n - j - 1);
            n = j + 1;
        }
    }
    for (size_t i = 1; i < n; i++) {
        uint64_t t = k[i];
        size_t j = i;
        while (j > 0 && t > k[j - 1]) {
            k[j] = k[j - 1];
            j--;
        }
        k[j] = t;
    }
}

static void sift_down(uint64_t *h, size_t m, size_t i) /* min-heap */
{
    uint64_t x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1] < h[c]) c++;
        if (h[c] >= x) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

/* Puts the `m` largest of k[0..n) (n <= CAND_MAX) first, in order; the
 * rest, unordered, after them. The response needs a few of ~240
 * candidates. A min-heap of the best m finds the m-th key (once the heap
 * is full most keys lose one well-predicted comparison: a quickselect's
 * data-dependent branches cost more here), then one branch-free pass
 * splits the keys around it. */
static void top_keys(uint64_t *k, size_t n, size_t m)
{
    if (m >= n) {
        sort_keys(k, n);
        return;
    }
    if (m == 0) return;
    uint64_t heap[CAND_MAX];
    memcpy(heap, k, m * sizeof *k);
    for (size_t i = m / 2; i-- > 0;) sift_down(heap, m, i);
    for (size_t i = m; i < n; i++)
        if (k[i] > heap[0]) {
            heap[0] = k[i];
            sift_down(heap, m, 0);
        }
    uint64_t t = heap[0], front[CAND_MAX], back[CAND_MAX];
    size_t a = 0, z = 0;
    for (size_t i = 0; i < n; i++) { /* keys are distinct: exactly m are >= t */
        uint64_t x = k[i];
        int ge = x >= t;
        front[a] = x;
        back[z] = x;
        a += (size_t)ge;
        z += (size_t)!ge;
    }
    memcpy(k, front, m * sizeof *k);
    memcpy(k + m, back, (n - m) * sizeof *k);
    sort_keys(k, m);
}

static const char *verb(int type)
{
    switch (type & ~SRV_SEED_DISLIKED) {
    case BR_EVENT_RATING:
        return "rated";
    case BR_EVENT_CLICK:
        return "clicked";
    case BR_EVENT_VIEW:
        return "viewed";
    case BR_EVENT_PURCHASE:
        return "bought";
    default:
        return "picked";
    }
}

/* Why a book is on the list, as plain text (JSON-escaped when rendered). */
static void explain(const srv_snap *s, const rank_input *in, const srv_ranked *r, br__sbuf *b)
{
    int parts = 0;
    if (r->src & SRC_CONTENT && r->seed >= 0) {
        const char *title = in->seeds[r->seed] < s->n_base
                                ? br_catalog_book(s->cat, in->seeds[r->seed])->title
                                : s->added[in->seeds[r->seed] - s->n_base].title;
        br__sb_str(b, "similar to \"");
        br__sb_str(b, title);
        if (in->seed_types)
            br__sb_printf(b, "\", which you %s (cosine %.2f)", verb(in->seed_types[r->seed]),
                          (double)r->content);
        else
            br__sb_printf(b, "\" in this session (cosine %.2f)", (double)r->content);
        parts++;
    }
    if (r->near_rank && !(r->src & SRC_COLLAB)) { /* a filter's fill (near_fill) */
        uint32_t nb = in->rec_idx[r->near_rank - 1];
        br__sb_str(b, parts ? "; close to \"" : "close to \"");
        br__sb_str(b, nb < s->n_base ? br_catalog_book(s->cat, nb)->title
                                     : s->added[nb - s->n_base].title);
        br__sb_printf(b, "\", #%u on your list (cosine %.2f)", r->near_rank, (double)r->content);
        parts++;
    }
    if (r->src & SRC_COLLAB && r->book < s->n_base && s->counts && s->counts[r->book] == 0) {
        /* Nobody has rated it: train listed it from the vector its content
         * predicts (src/hybrid/coldvec.c); say what it shares with a book
         * the reader liked lately (never a disliked one). */
        uint32_t liked[16];
        size_t nl = 0;
        for (size_t i = 0; i < in->n_seeds && nl < 16; i++)
            if (in->seeds[i] < s->n_base &&
                !(in->seed_types && in->seed_types[i] & SRV_SEED_DISLIKED))
                liked[nl++] = in->seeds[i];
        br__lex_reason rs;
        br__sb_printf(b, "%snobody has rated it yet", parts ? "; " : "");
        if (br__lex_reason_find(s->cat, r->book, liked, nl, &rs)) {
            static const char *const lead[] = {"", ": in the \"", ": by ", ": tagged "};
            br__sb_str(b, lead[rs.kind]);
            br__sb_str(b, rs.what);
            br__sb_str(b, rs.kind == BR__REASON_SERIES ? "\" series, like \"" : ", like \"");
            br__sb_str(b, br_catalog_book(s->cat, liked[rs.which])->title);
            br__sb_str(b, "\"");
        } else {
            br__sb_printf(b, ": its content fits your taste (#%u on your list)", r->rec_rank);
        }
        parts++;
    } else if (r->src & SRC_COLLAB) {
        br__sb_printf(b, "%sreaders with similar taste put it #%u on your list", parts ? "; " : "",
                      r->rec_rank);
        parts++;
    }
    if (r->src & SRC_POPULAR) {
        int32_t t = s->books[r->book].tribe;
        if (t >= 0 && s->tribes && (uint32_t)t < s->tribes->k) {
            br__sb_printf(b, "%spopular in the tribe \"", parts ? "; " : "");
            br__sb_str(b, s->tribes->tribe[t].name);
            br__sb_str(b, "\"");
        } else {
            br__sb_printf(b, "%spopular", parts ? "; " : "");
        }
        parts++;
    }
    if (r->src & SRC_RECENT) {
        br__sb_printf(b, "%spublished in %d", parts ? "; " : "", s->books[r->book].year);
        parts++;
    }
    if (in->degraded)
        br__sb_printf(b, "%s(the store is unreachable: from what the server holds)",
                      parts ? "; " : "");
}

void br__srv_explain(const srv_snap *s, const rank_input *in, const srv_ranked *r, br__sbuf *b)
{
    explain(s, in, r, b);
}

/* Interactions read per request: enough for `seeds` distinct books when a
 * reader repeats a few, and for the cold-start count; decoding all 50 was a
 * fifth of the route's cost. */
size_t br__srv_recent_wanted(const br_serve_rank *cfg)
{
    size_t want = 4 * (size_t)cfg->seeds;
    if (want < cfg->cold_interactions) want = cfg->cold_interactions;
    return want < BR_STORE_RECENT_MAX ? want : BR_STORE_RECENT_MAX;
}

size_t br__srv_seeds(srv_snap *s, const br_store_interaction *recent, size_t n_recent,
                     uint32_t *seeds, int *types)
{
    /* The feedback rule's reader mean, from the ratings among the latest
     * interactions (all of them, old and new), shrunk toward the middle of
     * the version's scale: the server holds no global mean. */
    double rsum = 0;
    size_t rn = 0;
    for (size_t i = 0; i < n_recent; i++)
        if (recent[i].type == BR_EVENT_RATING) rsum += recent[i].value, rn++;
    float mean = br_reader_mean(rsum, rn, 0.5f * (s->rules.rating_min + s->rules.rating_max));
    size_t n = 0;
    for (size_t i = 0; i < n_recent; i++) {
        /* what the version learned from is in the published list already:
         * only the interactions since are news to re-rank by */
        if (recent[i].timestamp <= s->data_until) continue;
        int64_t bi = br__srv_snap_find(s, recent[i].book_id);
        if (bi < 0) continue;
        size_t j = 0;
        while (j < n && seeds[j] != (uint32_t)bi) j++;
        if (j < n) continue;
        seeds[n] = (uint32_t)bi;
        types[n++] = recent[i].type | (recent[i].type == BR_EVENT_RATING &&
                                               br_rating_is_dislike(recent[i].value, mean)
                                           ? SRV_SEED_DISLIKED
                                           : 0);
    }
    return n;
}

/* A filter's fill when the list has fewer than n books that pass it: the
 * neighbours (the version's lists) of the list's books, filtered or not,
 * that pass, until the pool holds `want`. Each keeps its closest list
 * book (cosine in `content`, that book's place in near_rank). */
static void near_fill(const srv_snap *s, const srv_filter *f, const rank_input *in, pool *p,
                      size_t want)
{
    size_t n_books = (size_t)s->n_base + s->n_added;
    for (size_t i = 0; i < in->n_recs && p->n < want; i++) {
        uint32_t rb = in->rec_idx[i];
        if (rb >= n_books) continue;
        float *sims;
        const int32_t *ids = srv_nbr(s, rb, &sims);
        for (size_t j = 0; j < SRV_NBR_K && p->n < want; j++) {
            if (ids[j] < 0 || (size_t)ids[j] >= n_books) continue;
            uint32_t bi = (uint32_t)ids[j];
            uint32_t m = mark_get(p, bi);
            if (m == MARK_SEEN || !br__srv_filter_ok(s, f, bi)) continue;
            cand *c = pool_get(p, bi, m);
            if (!c) return;
            if (c->src && !c->near_rank) continue; /* in the list, or a new interaction's */
            float sim = sims[j] < 0 ? 0 : sims[j] > 1 ? 1 : sims[j];
            if (!c->near_rank || sim > c->content) {
                c->content = sim;
                c->near_rank = (uint16_t)(i + 1);
            }
            c->src = SRC_CONTENT;
        }
    }
}

/* A knob of the request's configuration, else the version's. */
static float knob(float cfg, float version)
{
    return cfg >= 0 ? cfg : version;
}

size_t br__srv_rank_list(srv_snap *s, const br_serve_rank *cfg, const rank_input *in,
                     srv_ranked *out)
{
    size_t n_books = (size_t)s->n_base + s->n_added;
    marks *mk = marks_begin(n_books);
    if (!mk) return SIZE_MAX;
    pool p;
    p.n = 0;
    p.mark = mk->m;
    p.tag = mk->gen << MARK_BITS;

    /* The seeds' neighbour rows are fetched while the seen set and the
     * collab list are built: on a large catalogue each row is a cache miss
     * the content loop would otherwise wait for. */
    size_t seeds = in->n_seeds < cfg->seeds ? in->n_seeds : cfg->seeds;
    for (size_t si = 0; si < seeds; si++) {
        float *sc;
        const char *row = (const char *)srv_nbr(s, in->seeds[si], &sc);
        const char *row_sc = (const char *)sc;
        for (size_t o = 0; o < SRV_NBR_K * sizeof(int32_t); o += 64) {
            __builtin_prefetch(row + o);
            __builtin_prefetch(row_sc + o);
        }
    }

    /* the seen set: the store's ids, the held indices, the seeds */
    for (size_t i = 0; i < in->n_seen_ids; i++) {
        int64_t bi = br__srv_snap_find(s, in->seen_ids[i]);
        if (bi >= 0) seen_add(&p, (uint32_t)bi);
    }
    for (size_t i = 0; i < in->n_seen_idx; i++)
        if (in->seen_idx[i] < n_books) seen_add(&p, in->seen_idx[i]);
    for (size_t i = 0; i < in->n_seeds; i++)
        if (in->seeds[i] < n_books) seen_add(&p, in->seeds[i]);

    /* collab: the published list, with the scores it was ranked by */
    float lo = INFINITY, hi = -INFINITY;
    size_t listed = 0;
    const srv_filter *f = br__srv_filter_active(in->filter) ? in->filter : NULL;
    for (size_t i = 0; i < in->n_recs; i++) {
        uint32_t bi = in->rec_idx[i];
        if (bi >= n_books) continue;
        uint32_t m = mark_get(&p, bi);
        if (m == MARK_SEEN) continue;
        if (f && !br__srv_filter_ok(s, f, bi)) { /* not a candidate, but the list's scale */
            float v = in->rec_score[i];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
            listed++;
            continue;
        }
        cand *c = pool_get(&p, bi, m);
        if (!c) break;
        if (c->src & SRC_COLLAB) continue;
        c->src |= SRC_COLLAB;
        c->collab = in->rec_score[i];
        c->rec_rank = (uint16_t)(i + 1);
        float v = in->rec_score[i]; /* not fminf/fmaxf: libm calls at -O2 */
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        listed++;
    }

    /* content: neighbours of the new interactions (the lists kept per
     * book), the closest seed wins */
    size_t k = cfg->neighbours < SRV_NBR_K ? cfg->neighbours : SRV_NBR_K;
    for (size_t si = 0; si < seeds; si++) {
        if (in->seed_types && in->seed_types[si] & SRV_SEED_DISLIKED) continue; /* below */
        float *sims;
        const int32_t *ids = srv_nbr(s, in->seeds[si], &sims);
        for (size_t j = 0; j < k; j++) {
            if (ids[j] < 0 || (size_t)ids[j] >= n_books) continue;
            uint32_t bi = (uint32_t)ids[j];
            uint32_t m = mark_get(&p, bi);
            if (m == MARK_SEEN) continue;
            if (f && !br__srv_filter_ok(s, f, bi)) continue;
            float sim = sims[j] < 0 ? 0 : sims[j] > 1 ? 1 : sims[j];
            cand *c = pool_get(&p, bi, m);
            if (!c) break;
            if (!(c->src & SRC_CONTENT) || sim > c->content) {
                c->content = sim;
                c->seed = (int16_t)si;
            }
            c->src |= SRC_CONTENT;
        }
    }

    /* a filter left fewer than n: the neighbours of the list's books that
     * pass it (below the list, closest first), before the popular ones */
    if (f && p.n < in->n) near_fill(s, f, in, &p, in->n + 20);

    /* popular: the cold-start list for a stranger, else the most popular */
    int stranger = listed == 0 && in->n_seeds == 0;
    size_t want_pop = 2 * in->n + 20, got_pop = 0;
    const uint32_t *order = stranger ? s->cold : s->pop_order;
    size_t n_order = stranger ? s->n_cold : f ? 0 : s->n_base;
    for (size_t i = 0; i < n_order && got_pop < want_pop; i++) {
        uint32_t bi = order[i];
        uint32_t m = mark_get(&p, bi);
        if (m == MARK_SEEN) continue;
        if (f && !br__srv_filter_ok(s, f, bi)) continue;
        cand *c = pool_get(&p, bi, m);
        if (!c) break;
        c->src |= SRC_POPULAR;
        got_pop++;
    }
    if (f && got_pop < want_pop) { /* the books that pass, by popularity */
        srv_filter_iter it;
        br__srv_filter_iter_init(&it, s, f);
        for (uint32_t bi; got_pop < want_pop && (bi = br__srv_filter_next(&it)) != UINT32_MAX;) {
            uint32_t m = mark_get(&p, bi);
            if (m == MARK_SEEN || (m != MARK_FREE && p.c[m].src & SRC_POPULAR)) continue;
            cand *c = pool_get(&p, bi, m);
            if (!c) break;
            c->src |= SRC_POPULAR;
            got_pop++;
        }
    }

    /* a disliked seed's neighbours: never added, and those already
     * candidates keep their closest such cosine (the scores subtract it) */
    for (size_t si = 0; in->seed_types && si < seeds; si++) {
        if (!(in->seed_types[si] & SRV_SEED_DISLIKED)) continue;
        float *sims;
        const int32_t *ids = srv_nbr(s, in->seeds[si], &sims);
        for (size_t j = 0; j < k; j++) {
            if (ids[j] < 0 || (size_t)ids[j] >= n_books) continue;
            uint32_t m = mark_get(&p, (uint32_t)ids[j]);
            if (m == MARK_SEEN || m == MARK_FREE) continue;
            float sim = sims[j] < 0 ? 0 : sims[j] > 1 ? 1 : sims[j];
            if (sim > p.c[m].dislike) p.c[m].dislike = sim;
        }
    }

    /* The scores (docs/api.md, "Re-ranking"). The published list keeps the
     * scores the learned ranker gave it, so with nothing new and no rule
     * asked for the list is the published one. What is new moves books on
     * that scale: a new interaction's neighbours gain w_content x cosine of
     * the list's span (more for a reader with a short history, and at
     * night), the recency rule w_recent of it. A book outside the list
     * starts at the list's last score; popular books only fill below it.
     * A reader without a list (new, or the store down): content and
     * popularity alone. */
    const br_model_online *on = &s->online;
    float w_content = knob(cfg->w_content, on->w_content), w_pop = knob(cfg->w_pop, on->w_pop),
          w_recent = knob(cfg->w_recent, on->w_recent);
    uint32_t recent_years = cfg->recent_years ? cfg->recent_years : on->recent_years;
    uint32_t cold_n = cfg->cold_interactions ? cfg->cold_interactions : on->cold_interactions;
    float span = listed && hi > lo ? hi - lo : 1.0f, base = listed ? lo : 0.0f;
    float alpha = cold_n == 0 || in->interactions >= cold_n
                      ? 1.0f
                      : (float)in->interactions / (float)cold_n;
    float wt = w_content * (2.0f - alpha);
    if (in->hour >= 0 &&
        ((uint32_t)in->hour >= cfg->night_from || (uint32_t)in->hour < cfg->night_to))
        wt *= cfg->night_content;
    for (size_t i = 0; i < p.n; i++) {
        cand *c = &p.c[i];
        srv_rk rk = s->rk[c->book];
        c->pop = rk.pop;
        int32_t year = rk.year;
        if (w_recent > 0 && recent_years && year != BR_YEAR_UNKNOWN && year <= s->this_year &&
            s->this_year - year < (int32_t)recent_years) {
            c->recent = 1.0f - (float)(s->this_year - year) / (float)recent_years;
            c->src |= SRC_RECENT;
        }
        float news = wt * (c->content - c->dislike) + w_recent * c->recent;
        if (c->src & SRC_COLLAB)
            c->score = c->collab + span * news;
        else if (c->src & SRC_CONTENT)
            c->score = base + span * news + (listed ? 0.0f : w_pop * c->pop);
        else /* popular only */
            c->score = listed ? base - span * (2.0f - c->pop) : w_pop * c->pop + news;
    }
    /* a filter's fill: below the list's last, by the cosine to its book */
    for (size_t i = 0; f && i < p.n; i++)
        if (p.c[i].near_rank && !(p.c[i].src & SRC_COLLAB))
            p.c[i].score = base - span * (1.0f - p.c[i].content);
    /* selection: a per-tribe cap (mobile) and, for a stranger, each tribe's
     * places among the first n of the cold-start list (its share of
     * readers), then a second pass fills what they left empty */
    uint32_t cap = 0;
    if (in->mobile && cfg->mobile_per_tribe) cap = cfg->mobile_per_tribe;
    uint16_t quota[256] = {0};
    int quotas = stranger && s->tribes && s->tribes->k;
    for (size_t i = 0; quotas && i < in->n && i < s->n_cold; i++) {
        int32_t t = s->books[s->cold[i]].tribe;
        if (t >= 0 && t < 256) quota[t]++;
    }
    /* Ordered up front: the list itself without a cap; with one, enough
     * for most lists (the selection sorts the rest if it gets that far). */
    uint64_t key[CAND_MAX];
    for (size_t i = 0; i < p.n; i++) key[i] = cand_key(&p.c[i]);
    size_t head = cap || quotas ? in->n * 2 + 8 : in->n;
    size_t sorted = head < p.n ? head : p.n;
    top_keys(key, p.n, sorted);
    uint16_t per_tribe[256] = {0};
    uint8_t taken[CAND_MAX] = {0};
    size_t out_idx[BR_SERVE_N_MAX]; /* positions in key[] */
    size_t n_out = 0;
    for (int pass = 0; pass < 2 && n_out < in->n; pass++) {
        for (size_t i = 0; i < p.n && n_out < in->n; i++) {
            if (i == sorted) {
                sort_keys(key + sorted, p.n - sorted);
                sorted = p.n;
            }
            if (taken[i]) continue;
            int32_t t = s->books[key_book(key[i])].tribe;
            if (pass == 0 && t >= 0 && t < 256 &&
                ((cap && per_tribe[t] >= cap) || (quotas && per_tribe[t] >= quota[t])))
                continue;
            if (t >= 0 && t < 256) per_tribe[t]++;
            taken[i] = 1;
            out_idx[n_out++] = i;
        }
        if (!cap && !quotas) break;
    }
    /* the second pass appended in score order after the first: re-sort */
    for (size_t i = 1; i < n_out; i++)
        for (size_t j = i; j > 0 && out_idx[j - 1] > out_idx[j]; j--) {
            size_t t = out_idx[j];
            out_idx[j] = out_idx[j - 1];
            out_idx[j - 1] = t;
        }
    for (size_t o = 0; o < n_out; o++) {
        const cand *c = &p.c[mark_get(&p, key_book(key[out_idx[o]]))];
        out[o] = (srv_ranked){c->book, c->score, c->content, c->seed, c->rec_rank, c->src,
                              c->near_rank};
    }
    return n_out;
}

br_status br__srv_rank(srv_snap *s, const br_serve_rank *cfg, const rank_input *in, br__sbuf *b)
{
    srv_ranked out[BR_SERVE_N_MAX];
    size_t n_out = br__srv_rank_list(s, cfg, in, out);
    if (n_out == SIZE_MAX) return br_error(BR_ENOMEM, "ranking marks");
    br__sb_str(b, "\"recommendations\":[");
    br__sbuf why = {0};
    for (size_t o = 0; o < n_out; o++) {
        const srv_ranked *r = &out[o];
        const srv_book *bk = &s->books[r->book];
        br__sb_str(b, o ? ",{" : "{");
        br__sb_put(b, bk->frag, bk->frag_len);
        br__sb_str(b, ",\"score\":");
        br__sb_score(b, (double)r->score);
        br__sb_str(b, ",\"sources\":[");
        int first = 1;
        static const char *names[] = {"\"collab\"", "\"content\"", "\"popular\"", "\"recent\""};
        for (int f = 0; f < 4; f++)
            if (r->src & (1 << f)) {
                if (!first) br__sb_str(b, ",");
                br__sb_str(b, names[f]);
                first = 0;
            }
        if (in->degraded) br__sb_str(b, first ? "\"degraded\"" : ",\"degraded\"");
        br__sb_str(b, "]");
        if (in->explain) {
            br__sb_reset(&why);
            explain(s, in, r, &why);
            br__sb_str(b, ",\"explanation\":\"");
            if (why.p) br__sb_json_esc(b, why.p);
            br__sb_str(b, "\"");
        }
        br__sb_str(b, "}");
    }
    br__sb_free(&why);
    br__sb_str(b, "]");
    return b->oom || why.oom ? br_error(BR_ENOMEM, "response") : BR_OK;
}
