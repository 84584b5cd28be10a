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
 * Everything lives on the stack: a request allocates nothing here beyond
 * what the output buffer needs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"

#define CAND_MAX   1024
#define HASH_SLOTS 2048 /* power of two, >= 2 x CAND_MAX */

enum { SRC_COLLAB = 1, SRC_CONTENT = 2, SRC_POPULAR = 4, SRC_RECENT = 8 };

typedef struct cand {
    uint32_t book;
    float collab, content, pop, recent, score;
    int16_t seed;      /* the seed that gave `content`, -1 */
    uint16_t rec_rank; /* 1-based rank in the precomputed list, 0 */
    uint8_t src;
} cand;

typedef struct pool {
    cand c[CAND_MAX];
    int16_t slot[HASH_SLOTS];
    size_t n;
} pool;

static cand *pool_get(pool *p, uint32_t book)
{
    uint32_t h = (book * 2654435761u) & (HASH_SLOTS - 1);
    while (p->slot[h] >= 0) {
        cand *c = &p->c[p->slot[h]];
        if (c->book == book) return c;
        h = (h + 1) & (HASH_SLOTS - 1);
    }
    if (p->n == CAND_MAX) return NULL;
    cand *c = &p->c[p->n];
    memset(c, 0, sizeof *c);
    c->book = book;
    c->seed = -1;
    p->slot[h] = (int16_t)p->n++;
    return c;
}

/* The seen set as book indices in an open-addressing set (the ids are
 * looked up once; a candidate test is then a probe or two). */
#define SEEN_STACK 4096

typedef struct seen_set {
    uint32_t *slot; /* UINT32_MAX: empty */
    uint32_t mask;
} seen_set;

static void seen_add(seen_set *z, uint32_t b)
{
    uint32_t h = (b * 2654435761u) & z->mask;
    while (z->slot[h] != UINT32_MAX) {
        if (z->slot[h] == b) return;
        h = (h + 1) & z->mask;
    }
    z->slot[h] = b;
}

static int is_seen(const seen_set *z, uint32_t b)
{
    uint32_t h = (b * 2654435761u) & z->mask;
    while (z->slot[h] != UINT32_MAX) {
        if (z->slot[h] == b) return 1;
        h = (h + 1) & z->mask;
    }
    return 0;
}

/* Candidates by score, best first, ties by the lower book index: a plain
 * quicksort with insertion sort below 16 (no indirect calls). */
static int before(const cand *x, const cand *y)
{
    return x->score > y->score || (x->score == y->score && x->book < y->book);
}

/* Hoare partition around the middle element (n > 1): returns j with every
 * candidate of c[0..j] ordered before every one of c[j+1..n). */
static size_t partition_cands(cand *c, size_t n)
{
    cand pivot = c[n / 2];
    size_t i = 0, j = n - 1;
    for (;;) {
        while (before(&c[i], &pivot)) i++;
        while (before(&pivot, &c[j])) j--;
        if (i >= j) return j;
        cand t = c[i];
        c[i] = c[j];
        c[j] = t;
        i++;
        j--;
    }
}

static void sort_cands(cand *c, size_t n)
{
    while (n > 16) {
        size_t j = partition_cands(c, n);
        /* recurse on the smaller side */
        if (j + 1 < n - j - 1) {
            sort_cands(c, j + 1);
            c += j + 1;
            n -= j + 1;
        } else {
            sort_cands(c + j + 1, n - j - 1);
            n = j + 1;
        }
    }
    for (size_t i = 1; i < n; i++) {
        cand t = c[i];
        size_t j = i;
        while (j > 0 && before(&t, &c[j - 1])) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = t;
    }
}

/* Puts the `m` best of c[0..n) first, in order; the rest (unordered) all
 * come after them. The response needs a few of ~240 candidates: ordering
 * only those was the single largest cost of the route (perf). The result
 * is the prefix a full sort_cands would give: `before` is a strict total
 * order (one candidate per book). */
static void top_cands(cand *c, size_t n, size_t m)
{
    if (m >= n) {
        sort_cands(c, n);
        return;
    }
    cand *c0 = c;
    size_t m0 = m;
    while (n > 16 && m > 0) {
        size_t j = partition_cands(c, n);
        /* c[0..j] all come before c[j+1..n) */
        if (m <= j + 1) {
            n = j + 1;
        } else {
            c += j + 1;
            m -= j + 1;
            n -= j + 1;
        }
    }
    if (m > 0) sort_cands(c, n); /* the small segment holding the boundary */
    sort_cands(c0, m0);
}

static const char *verb(int type)
{
    switch (type) {
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

static void explain(const srv_snap *s, const rank_input *in, const cand *c, sbuf *b)
{
    int parts = 0;
    sb_str(b, ",\"explanation\":\"");
    if (c->src & SRC_CONTENT && c->seed >= 0) {
        sb_str(b, "similar to \\\"");
        sb_str(b, s->books[in->seeds[c->seed]].title_esc);
        if (in->seed_types)
            sb_printf(b, "\\\", which you %s (cosine %.2f)", verb(in->seed_types[c->seed]),
                      (double)c->content);
        else
            sb_printf(b, "\\\" in this session (cosine %.2f)", (double)c->content);
        parts++;
    }
    if (c->src & SRC_COLLAB) {
        sb_printf(b, "%sreaders with similar taste put it #%u on your list", parts ? "; " : "",
                  c->rec_rank);
        parts++;
    }
    if (c->src & SRC_POPULAR) {
        const srv_book *bk = &s->books[c->book];
        if (bk->tribe >= 0 && s->tribe_esc) {
            sb_printf(b, "%spopular in the tribe \\\"", parts ? "; " : "");
            sb_str(b, s->tribe_esc[bk->tribe]);
            sb_str(b, "\\\"");
        } else {
            sb_printf(b, "%spopular", parts ? "; " : "");
        }
        parts++;
    }
    if (c->src & SRC_RECENT) {
        sb_printf(b, "%spublished in %d", parts ? "; " : "", s->books[c->book].year);
        parts++;
    }
    if (in->degraded)
        sb_printf(b, "%s(the store is unreachable: from what the server holds)", parts ? "; " : "");
    sb_str(b, "\"");
}

br_status srv_rank(srv_snap *s, const br_serve_rank *cfg, const rank_input *in, sbuf *b)
{
    pool p;
    p.n = 0;
    memset(p.slot, 0xff, sizeof p.slot);
    size_t n_books = (size_t)s->n_base + s->n_added;

    /* the seen set: the store's ids, the held indices, the seeds */
    uint32_t seen_stack[SEEN_STACK];
    size_t n_seen = in->n_seen_ids + in->n_seen_idx + in->n_seeds, scap = 64;
    while (scap < 2 * n_seen) scap *= 2;
    seen_set seen = {scap <= SEEN_STACK ? seen_stack : br_malloc(scap * sizeof(uint32_t)),
                     (uint32_t)scap - 1};
    if (!seen.slot) return br_error(BR_ENOMEM, "seen set");
    memset(seen.slot, 0xff, scap * sizeof(uint32_t));
    for (size_t i = 0; i < in->n_seen_ids; i++) {
        int64_t bi = srv_snap_find(s, in->seen_ids[i]);
        if (bi >= 0) seen_add(&seen, (uint32_t)bi);
    }
    for (size_t i = 0; i < in->n_seen_idx; i++) seen_add(&seen, in->seen_idx[i]);
    for (size_t i = 0; i < in->n_seeds; i++) seen_add(&seen, in->seeds[i]);

    /* collab: the precomputed list, min-max scaled (a flat list scores 1) */
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < in->n_recs; i++) {
        lo = fminf(lo, in->recs[i].score);
        hi = fmaxf(hi, in->recs[i].score);
    }
    for (size_t i = 0; i < in->n_recs; i++) {
        int64_t bi = srv_snap_find(s, in->recs[i].book_id);
        if (bi < 0 || is_seen(&seen, (uint32_t)bi)) continue;
        cand *c = pool_get(&p, (uint32_t)bi);
        if (!c) break;
        if (c->src & SRC_COLLAB) continue;
        c->src |= SRC_COLLAB;
        c->collab = hi > lo ? (in->recs[i].score - lo) / (hi - lo) : 1.0f;
        c->rec_rank = (uint16_t)(i + 1);
    }

    /* content: neighbours of the latest interactions (the lists kept per
     * book), the closest seed wins */
    size_t k = cfg->neighbours < SRV_NBR_K ? cfg->neighbours : SRV_NBR_K;
    size_t seeds = in->n_seeds < cfg->seeds ? in->n_seeds : cfg->seeds;
    for (size_t si = 0; si < seeds; si++) {
        const int32_t *ids = s->nbr + (size_t)in->seeds[si] * SRV_NBR_K;
        const float *sims = s->nbr_sc + (size_t)in->seeds[si] * SRV_NBR_K;
        for (size_t j = 0; j < k; j++) {
            if (ids[j] < 0 || (size_t)ids[j] >= n_books) continue;
            uint32_t bi = (uint32_t)ids[j];
            if (is_seen(&seen, bi)) continue;
            float sim = sims[j] < 0 ? 0 : sims[j] > 1 ? 1 : sims[j];
            cand *c = pool_get(&p, bi);
            if (!c) break;
            if (!(c->src & SRC_CONTENT) || sim > c->content) {
                c->content = sim;
                c->seed = (int16_t)si;
            }
            c->src |= SRC_CONTENT;
        }
    }

    /* popular: the cold-start list for a stranger, else the most popular */
    int stranger = in->n_recs == 0 && in->n_seeds == 0;
    size_t want_pop = 2 * in->n + 20, got_pop = 0;
    const uint32_t *order = stranger ? s->cold : s->pop_order;
    size_t n_order = stranger ? s->n_cold : s->n_base;
    for (size_t i = 0; i < n_order && got_pop < want_pop; i++) {
        uint32_t bi = order[i];
        if (is_seen(&seen, bi)) continue;
        cand *c = pool_get(&p, bi);
        if (!c) break;
        c->src |= SRC_POPULAR;
        got_pop++;
    }

    /* the blend */
    float alpha = cfg->cold_interactions == 0 || in->interactions >= cfg->cold_interactions
                      ? 1.0f
                      : (float)in->interactions / (float)cfg->cold_interactions;
    float wc = cfg->w_collab * alpha;
    float wt = cfg->w_content + cfg->w_collab * (1.0f - alpha);
    if (in->hour >= 0 &&
        ((uint32_t)in->hour >= cfg->night_from || (uint32_t)in->hour < cfg->night_to))
        wt *= cfg->night_content;
    for (size_t i = 0; i < p.n; i++) {
        cand *c = &p.c[i];
        c->pop = c->book < s->n_base ? s->pop[c->book] : 0;
        int32_t year = s->books[c->book].year;
        if (cfg->recent_years && year != BR_YEAR_UNKNOWN && year <= s->this_year &&
            s->this_year - year < (int32_t)cfg->recent_years) {
            c->recent = 1.0f - (float)(s->this_year - year) / (float)cfg->recent_years;
            c->src |= SRC_RECENT;
        }
        c->score =
            wc * c->collab + wt * c->content + cfg->w_pop * c->pop + cfg->w_recent * c->recent;
    }
    /* Enough for the list when no tribe cap skips anything; the selection
     * below sorts the rest when it gets that far. */
    size_t sorted = in->n * 2 + 8 < p.n ? in->n * 2 + 8 : p.n;
    top_cands(p.c, p.n, sorted);

    /* selection: a per-tribe cap (mobile; a stranger's list spans tribes),
     * then a second pass fills what the cap left empty */
    uint32_t k_tribes = s->tribes ? s->tribes->k : 0;
    uint32_t cap = 0;
    if (in->mobile && cfg->mobile_per_tribe) cap = cfg->mobile_per_tribe;
    if (stranger && k_tribes) {
        uint32_t even = (uint32_t)((in->n + k_tribes - 1) / k_tribes);
        cap = cap && cap < even ? cap : even;
    }
    uint16_t per_tribe[256] = {0};
    uint8_t taken[CAND_MAX] = {0};
    size_t out_idx[BR_SERVE_N_MAX];
    size_t n_out = 0;
    for (int pass = 0; pass < 2 && n_out < in->n; pass++) {
        for (size_t i = 0; i < p.n && n_out < in->n; i++) {
            if (i == sorted) {
                sort_cands(p.c + sorted, p.n - sorted);
                sorted = p.n;
            }
            if (taken[i]) continue;
            int32_t t = s->books[p.c[i].book].tribe;
            if (pass == 0 && cap && t >= 0 && t < 256 && per_tribe[t] >= cap) continue;
            if (t >= 0 && t < 256) per_tribe[t]++;
            taken[i] = 1;
            out_idx[n_out++] = i;
        }
        if (!cap) break;
    }
    /* the second pass appended in score order after the first: re-sort */
    for (size_t i = 1; i < n_out; i++)
        for (size_t j = i; j > 0 && out_idx[j - 1] > out_idx[j]; j--) {
            size_t t = out_idx[j];
            out_idx[j] = out_idx[j - 1];
            out_idx[j - 1] = t;
        }

    sb_str(b, "\"recommendations\":[");
    for (size_t o = 0; o < n_out; o++) {
        const cand *c = &p.c[out_idx[o]];
        const srv_book *bk = &s->books[c->book];
        sb_str(b, o ? ",{" : "{");
        sb_put(b, bk->frag, bk->frag_len);
        sb_printf(b, ",\"score\":%.6g,\"sources\":[", (double)c->score);
        int first = 1;
        static const char *names[] = {"collab", "content", "popular", "recent"};
        for (int f = 0; f < 4; f++)
            if (c->src & (1 << f)) {
                sb_printf(b, "%s\"%s\"", first ? "" : ",", names[f]);
                first = 0;
            }
        if (in->degraded) sb_str(b, first ? "\"degraded\"" : ",\"degraded\"");
        sb_str(b, "]");
        if (in->explain) explain(s, in, c, b);
        sb_str(b, "}");
    }
    sb_str(b, "]");
    if (seen.slot != seen_stack) br_free(seen.slot);
    return b->oom ? br_error(BR_ENOMEM, "response") : BR_OK;
}
