/*
 * hnsw.c: the HNSW graph index (include/bookrec/index.h): insertion with
 * the neighbour-selection heuristic, layered greedy search, tombstones,
 * the reader-writer lock, parallel batch insertion, and the file format.
 *
 * Layout. Vectors (cap, dim) float32 in one aligned block; layer-0 links
 * in one block of fixed-size records [count, id x M0] so a node's links sit
 * next to each other and the search loop touches one cache line per node
 * for them; upper-layer links (only ~1/M of the nodes have any) are one
 * small allocation per node. Levels are drawn from a hash of (seed, id):
 * the level structure does not depend on insertion order or threads.
 *
 * Distances are 1 - dot (cosine) or -dot (inner product): smaller is
 * closer; scores returned to callers are the dot products.
 *
 * Locks. The public rwlock (searches shared, modifications exclusive);
 * inside an exclusive batch insertion, threads lock a node's link lists
 * through a striped mutex array while reading or rewriting them (never two
 * at once, so no lock ordering issue), and the entry point through its own
 * mutex.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bookrec/index.h"
#include "content/vec.h"
#include "core/afile.h"
#include "core/fault.h"
#include "core/hash.h"

#define STRIPES   4096
#define MAX_LEVEL 30

typedef struct visited {
    uint16_t *mark;
    uint16_t tag;
    size_t cap;
} visited;

struct br_hnsw {
    size_t dim;
    br_hnsw_options opt;
    uint32_t M, M0;
    double mult; /* 1 / ln(M) */
    size_t count, cap, n_deleted;
    float *vec;       /* (cap, dim) */
    uint32_t *link0;  /* (cap, 1 + M0) */
    uint8_t *level;   /* (cap,) */
    uint8_t *deleted; /* (cap,) */
    uint32_t **upper; /* (cap,) level x (1 + M) words each, or NULL */
    uint32_t entry;
    int max_level;
    /* a loaded index: vec/link0/level/deleted may point into the mapping,
     * upper lists into one heap pool */
    void *map;
    size_t map_size;
    uint32_t *upper_pool;
    size_t upper_pool_words;
    int parallel; /* inside add_batch: take node locks */
    pthread_rwlock_t rw;
    pthread_mutex_t entry_lock;
    pthread_mutex_t stripe[STRIPES];
    pthread_mutex_t pool_lock;
    visited **pool;
    size_t pool_n, pool_cap;
};

/* ----------------------------------------------------------- utilities -- */

static inline float dist(const br_hnsw *h, const float *a, const float *b)
{
    float d = br__cv_dot(a, b, h->dim);
    return h->opt.metric == BR_METRIC_COSINE ? 1.0f - d : -d;
}

static inline float score_of(const br_hnsw *h, float d)
{
    return h->opt.metric == BR_METRIC_COSINE ? 1.0f - d : -d;
}

static inline const float *vec_of(const br_hnsw *h, uint32_t id)
{
    return h->vec + (size_t)id * h->dim;
}

/* Link list of id at layer lc: [count, ids...]. */
static inline uint32_t *links(const br_hnsw *h, uint32_t id, int lc)
{
    if (lc == 0) return h->link0 + (size_t)id * (1 + h->M0);
    return h->upper[id] + (size_t)(lc - 1) * (1 + h->M);
}

static inline void node_lock(br_hnsw *h, uint32_t id)
{
    if (h->parallel) pthread_mutex_lock(&h->stripe[id % STRIPES]);
}

static inline void node_unlock(br_hnsw *h, uint32_t id)
{
    if (h->parallel) pthread_mutex_unlock(&h->stripe[id % STRIPES]);
}

static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static int level_for(const br_hnsw *h, uint32_t id)
{
    uint64_t r = splitmix(h->opt.seed ^ splitmix(id));
    double u = ((double)(r >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    int l = (int)floor(-log(u) * h->mult);
    return l > MAX_LEVEL ? MAX_LEVEL : l;
}

/* ------------------------------------------------------- visited lists -- */

static visited *visited_get(br_hnsw *h)
{
    visited *v = NULL;
    pthread_mutex_lock(&h->pool_lock);
    if (h->pool_n) v = h->pool[--h->pool_n];
    pthread_mutex_unlock(&h->pool_lock);
    if (!v) {
        v = br_calloc(1, sizeof *v);
        if (!v) return NULL;
    }
    if (v->cap < h->count) {
        br_free(v->mark);
        v->cap = h->cap;
        v->mark = br_calloc(v->cap, sizeof(uint16_t));
        v->tag = 0;
        if (!v->mark) {
            br_free(v);
            return NULL;
        }
    }
    if (++v->tag == 0) { /* wrapped: clear once every 65535 searches */
        memset(v->mark, 0, v->cap * sizeof(uint16_t));
        v->tag = 1;
    }
    return v;
}

static void visited_put(br_hnsw *h, visited *v)
{
    pthread_mutex_lock(&h->pool_lock);
    if (h->pool_n == h->pool_cap) {
        size_t nc = h->pool_cap ? 2 * h->pool_cap : 8;
        visited **np = br_realloc(h->pool, nc * sizeof *np);
        if (!np) {
            pthread_mutex_unlock(&h->pool_lock);
            br_free(v->mark);
            br_free(v);
            return;
        }
        h->pool = np;
        h->pool_cap = nc;
    }
    h->pool[h->pool_n++] = v;
    pthread_mutex_unlock(&h->pool_lock);
}

/* --------------------------------------------------------------- heaps -- */

typedef struct cand {
    float d;
    uint32_t id;
} cand;

/* max-heap on d (worst on top) when max = 1, min-heap when max = 0 */
typedef struct heap {
    cand *a;
    size_t n, cap;
} heap;

static inline int before(cand x, cand y, int max)
{
    return max ? x.d > y.d : x.d < y.d;
}

static void heap_push(heap *hp, cand c, int max)
{
    size_t i = hp->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(c, hp->a[p], max)) break;
        hp->a[i] = hp->a[p];
        i = p;
    }
    hp->a[i] = c;
}

static cand heap_pop(heap *hp, int max)
{
    cand top = hp->a[0], last = hp->a[--hp->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        cand best = last;
        if (l < hp->n && before(hp->a[l], best, max)) {
            m = l;
            best = hp->a[l];
        }
        if (r < hp->n && before(hp->a[r], best, max)) m = r;
        if (m == i) break;
        hp->a[i] = hp->a[m];
        i = m;
    }
    if (hp->n) hp->a[i] = last;
    return top;
}

/* Scratch of one search: two heaps sized for ef plus the neighbour list copy. */
typedef struct scratch {
    heap cands, results;
    uint32_t *nb;
    cand *sel;
} scratch;

static br_status scratch_init(scratch *s, size_t ef, uint32_t M0, size_t count)
{
    /* candidates can hold every node reached, bounded by ef * (M0 + 1) and count */
    size_t cap = ef * (M0 + 1) + 1;
    if (cap > count + 1) cap = count + 1;
    s->cands.a = br_malloc(cap * sizeof(cand));
    s->cands.cap = cap;
    s->results.a = br_malloc((ef + 2) * sizeof(cand));
    s->results.cap = ef + 2;
    s->nb = br_malloc((M0 + 2) * sizeof(uint32_t));
    s->sel = br_malloc((ef + M0 + 2) * sizeof(cand));
    s->cands.n = s->results.n = 0;
    if (!s->cands.a || !s->results.a || !s->nb || !s->sel) {
        /* the callers free only a scratch that was whole */
        br_free(s->cands.a);
        br_free(s->results.a);
        br_free(s->nb);
        br_free(s->sel);
        return br_error(BR_ENOMEM, "hnsw: out of memory for a search");
    }
    return BR_OK;
}

static void scratch_free(scratch *s)
{
    br_free(s->cands.a);
    br_free(s->results.a);
    br_free(s->nb);
    br_free(s->sel);
}

/* --------------------------------------------------------------- search -- */

/* Copies the link list of id at lc into out; returns the count. */
static uint32_t read_links(br_hnsw *h, uint32_t id, int lc, uint32_t *out)
{
    node_lock(h, id);
    uint32_t *l = links(h, id, lc);
    uint32_t n = l[0];
    memcpy(out, l + 1, n * sizeof(uint32_t));
    node_unlock(h, id);
    return n;
}

/* Greedy descent on one layer from *ep (distance *dep). */
static void greedy(br_hnsw *h, const float *q, int lc, uint32_t *ep, float *dep, uint32_t *buf)
{
    int changed = 1;
    while (changed) {
        changed = 0;
        uint32_t n = read_links(h, *ep, lc, buf);
        for (uint32_t i = 0; i < n; i++) {
            float d = dist(h, q, vec_of(h, buf[i]));
            if (d < *dep) {
                *dep = d;
                *ep = buf[i];
                changed = 1;
            }
        }
    }
}

/* The ef closest nodes to q on layer lc reachable from ep: s->results
 * (max-heap). Tombstones route but are not kept when skip_deleted. */
static void search_layer(br_hnsw *h, const float *q, uint32_t ep, float dep, size_t ef, int lc,
                         int skip_deleted, visited *vis, scratch *s)
{
    s->cands.n = s->results.n = 0;
    vis->mark[ep] = vis->tag;
    heap_push(&s->cands, (cand){dep, ep}, 0);
    if (!(skip_deleted && h->deleted[ep])) heap_push(&s->results, (cand){dep, ep}, 1);
    float bound = s->results.n ? dep : INFINITY;
    while (s->cands.n) {
        cand c = heap_pop(&s->cands, 0);
        if (c.d > bound && s->results.n >= ef) break;
        uint32_t n = read_links(h, c.id, lc, s->nb);
        for (uint32_t i = 0; i < n; i++) /* prefetch the vectors we are about to read */
            if (vis->mark[s->nb[i]] != vis->tag) __builtin_prefetch(vec_of(h, s->nb[i]));
        for (uint32_t i = 0; i < n; i++) {
            uint32_t id = s->nb[i];
            if (vis->mark[id] == vis->tag) continue;
            vis->mark[id] = vis->tag;
            if (i + 1 < n) __builtin_prefetch(vec_of(h, s->nb[i + 1]) + 16);
            float d = dist(h, q, vec_of(h, id));
            if (s->results.n < ef || d < bound) {
                if (s->cands.n < s->cands.cap) heap_push(&s->cands, (cand){d, id}, 0);
                if (!(skip_deleted && h->deleted[id])) {
                    heap_push(&s->results, (cand){d, id}, 1);
                    if (s->results.n > ef) heap_pop(&s->results, 1);
                }
                if (s->results.n) bound = s->results.a[0].d;
            }
        }
    }
}

/* --------------------------------------------------------------- insert -- */

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The heuristic of the paper (Algorithm 4, without extending or keeping
 * pruned connections): walk candidates from the closest; keep one if it is
 * closer to the base than to every kept neighbour. Spreads the links over
 * directions, which is what keeps clustered data navigable. c (n) sorted
 * in place; returns the kept count (<= m), kept first in c. */
static size_t select_neighbors(br_hnsw *h, cand *c, size_t n, size_t m)
{
    qsort(c, n, sizeof *c, cand_cmp);
    if (n <= m) return n;
    size_t kept = 0;
    for (size_t i = 0; i < n && kept < m; i++) {
        int good = 1;
        for (size_t j = 0; j < kept; j++)
            if (dist(h, vec_of(h, c[i].id), vec_of(h, c[j].id)) < c[i].d) {
                good = 0;
                break;
            }
        if (good) c[kept++] = c[i];
    }
    return kept;
}

/* Adds `id` to the link list of `nb` at layer lc, pruning with the
 * heuristic when the list is full. */
static void connect_back(br_hnsw *h, uint32_t nb, uint32_t id, float d, int lc, cand *tmp)
{
    uint32_t cap = lc == 0 ? h->M0 : h->M;
    node_lock(h, nb);
    uint32_t *l = links(h, nb, lc);
    int present = 0;
    for (uint32_t i = 0; i < l[0]; i++)
        if (l[1 + i] == id) present = 1;
    if (!present) {
        if (l[0] < cap) {
            l[1 + l[0]++] = id;
        } else {
            size_t n = 0;
            const float *v = vec_of(h, nb);
            for (uint32_t i = 0; i < l[0]; i++)
                tmp[n++] = (cand){dist(h, v, vec_of(h, l[1 + i])), l[1 + i]};
            tmp[n++] = (cand){d, id};
            size_t kept = select_neighbors(h, tmp, n, cap);
            for (size_t i = 0; i < kept; i++) l[1 + i] = tmp[i].id;
            l[0] = (uint32_t)kept;
        }
    }
    node_unlock(h, nb);
}

/* Links node id (vector and level already in place) into the graph. */
static br_status insert(br_hnsw *h, uint32_t id, visited *vis, scratch *s)
{
    const float *q = vec_of(h, id);
    int L = h->level[id];
    pthread_mutex_lock(&h->entry_lock);
    uint32_t ep = h->entry;
    int top = h->max_level;
    int first = top < 0;
    if (first) {
        h->entry = id;
        h->max_level = L;
    }
    pthread_mutex_unlock(&h->entry_lock);
    if (first) return BR_OK;

    float dep = dist(h, q, vec_of(h, ep));
    for (int lc = top; lc > L; lc--) greedy(h, q, lc, &ep, &dep, s->nb);
    for (int lc = (L < top ? L : top); lc >= 0; lc--) {
        if (++vis->tag == 0) {
            memset(vis->mark, 0, vis->cap * sizeof(uint16_t));
            vis->tag = 1;
        }
        search_layer(h, q, ep, dep, h->opt.ef_construction, lc, 0, vis, s);
        size_t n = s->results.n;
        memcpy(s->sel, s->results.a, n * sizeof(cand));
        /* the closest found is the next layer's entry point */
        size_t kept = select_neighbors(h, s->sel, n, h->M);
        ep = s->sel[0].id;
        dep = s->sel[0].d;
        node_lock(h, id);
        uint32_t *l = links(h, id, lc);
        for (size_t i = 0; i < kept; i++) l[1 + i] = s->sel[i].id;
        l[0] = (uint32_t)kept;
        node_unlock(h, id);
        /* s->sel is reused by connect_back as scratch: copy the chosen */
        cand chosen[256];
        size_t nk = kept < 256 ? kept : 256;
        memcpy(chosen, s->sel, nk * sizeof(cand));
        for (size_t i = 0; i < nk; i++) connect_back(h, chosen[i].id, id, chosen[i].d, lc, s->sel);
    }
    if (L > top) {
        pthread_mutex_lock(&h->entry_lock);
        if (L > h->max_level) {
            h->entry = id;
            h->max_level = L;
        }
        pthread_mutex_unlock(&h->entry_lock);
    }
    return BR_OK;
}

/* ------------------------------------------------------------ capacity -- */

/* Moves a mapped index into heap memory (before it grows). */
static br_status grow(br_hnsw *h, size_t need)
{
    if (need <= h->cap && !h->map) return BR_OK;
    size_t nc = h->cap ? h->cap : 1024;
    while (nc < need) nc *= 2;
    float *v = br_aligned_alloc(nc * h->dim * sizeof(float), BR_ALIGN);
    uint32_t *l0 = br_aligned_alloc(nc * (1 + h->M0) * sizeof(uint32_t), BR_ALIGN);
    uint8_t *lv = br_calloc(nc, 1), *dl = br_calloc(nc, 1);
    uint32_t **up = br_calloc(nc, sizeof(uint32_t *));
    if (!v || !l0 || !lv || !dl || !up) {
        br_aligned_free(v);
        br_aligned_free(l0);
        br_free(lv);
        br_free(dl);
        br_free(up);
        return br_error(BR_ENOMEM, "hnsw: out of memory for %zu vectors", nc);
    }
    if (h->count) {
        memcpy(v, h->vec, h->count * h->dim * sizeof(float));
        memcpy(l0, h->link0, h->count * (1 + h->M0) * sizeof(uint32_t));
        memcpy(lv, h->level, h->count);
        memcpy(dl, h->deleted, h->count);
        memcpy(up, h->upper, h->count * sizeof(uint32_t *));
    }
    if (h->map) {
        munmap(h->map, h->map_size);
        h->map = NULL;
    } else {
        br_aligned_free(h->vec);
        br_aligned_free(h->link0);
        br_free(h->level);
        br_free(h->deleted);
    }
    br_free(h->upper);
    h->vec = v;
    h->link0 = l0;
    h->level = lv;
    h->deleted = dl;
    h->upper = up;
    h->cap = nc;
    return BR_OK;
}

/* Copies vector i in (normalised for cosine) and gives it its level. */
static br_status place(br_hnsw *h, uint32_t id, const float *src)
{
    float *dst = h->vec + (size_t)id * h->dim;
    memcpy(dst, src, h->dim * sizeof(float));
    if (h->opt.metric == BR_METRIC_COSINE) {
        double nrm = 0;
        for (size_t j = 0; j < h->dim; j++) nrm += (double)dst[j] * dst[j];
        if (nrm > 0) {
            float inv = (float)(1.0 / sqrt(nrm));
            for (size_t j = 0; j < h->dim; j++) dst[j] *= inv;
        }
    }
    for (size_t j = 0; j < h->dim; j++)
        if (!isfinite(dst[j])) return br_error(BR_EINVAL, "hnsw: vector has a non-finite value");
    int L = level_for(h, id);
    h->level[id] = (uint8_t)L;
    h->deleted[id] = 0;
    /* the whole list, unused slots too: they are saved, and must not carry
     * the heap's old bytes into the file (a file per index, not per run) */
    memset(h->link0 + (size_t)id * (1 + h->M0), 0, (1 + (size_t)h->M0) * sizeof(uint32_t));
    h->upper[id] = NULL;
    if (L > 0) {
        h->upper[id] = br_calloc((size_t)L * (1 + h->M), sizeof(uint32_t));
        if (!h->upper[id]) return br_error(BR_ENOMEM, "hnsw: out of memory");
    }
    return BR_OK;
}

/* --------------------------------------------------------------- public -- */

static br_status alloc_handle(size_t dim, const br_hnsw_options *opt, br_hnsw **out)
{
    br_hnsw *h = br_calloc(1, sizeof *h);
    if (!h) return br_error(BR_ENOMEM, "hnsw: out of memory");
    h->dim = dim;
    h->opt = *opt;
    h->M = opt->m;
    h->M0 = 2 * opt->m;
    h->mult = 1.0 / log((double)opt->m);
    h->max_level = -1;
    pthread_rwlock_init(&h->rw, NULL);
    pthread_mutex_init(&h->entry_lock, NULL);
    pthread_mutex_init(&h->pool_lock, NULL);
    for (int i = 0; i < STRIPES; i++) pthread_mutex_init(&h->stripe[i], NULL);
    *out = h;
    return BR_OK;
}

static br_status check_options(size_t dim, const br_hnsw_options *o)
{
    if (dim == 0 || dim > (1u << 20)) return br_error(BR_EINVAL, "hnsw: bad dimension %zu", dim);
    if (o->m < 2 || o->m > 128) return br_error(BR_EINVAL, "hnsw: m must be 2..128 (got %u)", o->m);
    if (o->ef_construction < 1 || o->ef_construction > 100000)
        return br_error(BR_EINVAL, "hnsw: ef_construction must be 1..100000");
    if (o->metric != BR_METRIC_COSINE && o->metric != BR_METRIC_IP)
        return br_error(BR_EINVAL, "hnsw: unknown metric %d", (int)o->metric);
    return BR_OK;
}

br_status br_hnsw_create(size_t dim, const br_hnsw_options *opt, br_hnsw **out)
{
    if (!out) return br_error(BR_EINVAL, "hnsw: no output");
    *out = NULL;
    br_hnsw_options o = BR_HNSW_OPTIONS_DEFAULT;
    if (opt) o = *opt;
    br_status st = check_options(dim, &o);
    if (st != BR_OK) return st;
    return alloc_handle(dim, &o, out);
}

void br_hnsw_free(br_hnsw *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->count; i++) {
        uint32_t *u = h->upper ? h->upper[i] : NULL;
        if (u && !(h->upper_pool && u >= h->upper_pool && u < h->upper_pool + h->upper_pool_words))
            br_free(u);
    }
    br_free(h->upper_pool);
    if (h->map) {
        munmap(h->map, h->map_size);
    } else {
        br_aligned_free(h->vec);
        br_aligned_free(h->link0);
        br_free(h->level);
        br_free(h->deleted);
    }
    br_free(h->upper);
    for (size_t i = 0; i < h->pool_n; i++) {
        br_free(h->pool[i]->mark);
        br_free(h->pool[i]);
    }
    br_free(h->pool);
    pthread_rwlock_destroy(&h->rw);
    pthread_mutex_destroy(&h->entry_lock);
    pthread_mutex_destroy(&h->pool_lock);
    for (int i = 0; i < STRIPES; i++) pthread_mutex_destroy(&h->stripe[i]);
    br_free(h);
}

br_status br_hnsw_add_batch(br_hnsw *h, const float *vecs, size_t n, uint32_t *first)
{
    if (!h || (!vecs && n)) return br_error(BR_EINVAL, "hnsw_add: bad arguments");
    if (h->count + n > UINT32_MAX - 1) return br_error(BR_ERANGE, "hnsw: too many vectors");
    pthread_rwlock_wrlock(&h->rw);
    br_status st = grow(h, h->count + n);
    size_t base = h->count;
    for (size_t i = 0; i < n && st == BR_OK; i++)
        st = place(h, (uint32_t)(base + i), vecs + i * h->dim);
    if (st != BR_OK) {
        for (size_t i = 0; i < n; i++) {
            br_free(h->upper[base + i]);
            h->upper[base + i] = NULL;
        }
        pthread_rwlock_unlock(&h->rw);
        return st;
    }
    h->count = base + n;
    if (first) *first = (uint32_t)base;
    br_progress prog;
    br_progress_begin(&prog, "hnsw build", n);
    int nt = n >= 256 ? br_get_num_threads() : 1;
    h->parallel = nt > 1;
    volatile int failed = 0;
    size_t done = 0;
    /* The first few nodes go in one by one so the threads start from a
     * graph with some structure. */
    size_t serial = n < 64 ? n : 64;
#pragma omp parallel num_threads(nt)
    {
        visited *vis = visited_get(h);
        scratch s;
        br_status ls = vis ? scratch_init(&s, h->opt.ef_construction, h->M0, h->count)
                           : br_error(BR_ENOMEM, "hnsw: out of memory");
        if (ls != BR_OK) failed = 1;
#pragma omp single
        for (size_t i = 0; i < serial && !failed; i++) insert(h, (uint32_t)(base + i), vis, &s);
#pragma omp for schedule(dynamic, 64)
        for (size_t i = serial; i < n; i++) {
            if (failed) continue;
            insert(h, (uint32_t)(base + i), vis, &s);
            size_t d = __atomic_add_fetch(&done, 1, __ATOMIC_RELAXED);
            if ((d & 1023) == 0) {
#pragma omp critical
                if (br_progress_update(&prog, d + serial) != BR_OK) failed = 2;
            }
        }
        if (ls == BR_OK) scratch_free(&s);
        if (vis) visited_put(h, vis);
    }
    h->parallel = 0;
    br_progress_end(&prog);
    pthread_rwlock_unlock(&h->rw);
    if (failed == 2) return br_error(BR_ECANCELLED, "hnsw: build cancelled");
    if (failed) return br_error(BR_ENOMEM, "hnsw: out of memory while inserting");
    return BR_OK;
}

br_status br_hnsw_add(br_hnsw *h, const float *vec, uint32_t *id)
{
    return br_hnsw_add_batch(h, vec, 1, id);
}

br_status br_hnsw_remove(br_hnsw *h, uint32_t id)
{
    if (!h) return br_error(BR_EINVAL, "hnsw_remove: no index");
    pthread_rwlock_wrlock(&h->rw);
    br_status st = BR_OK;
    if (id >= h->count || h->deleted[id])
        st = br_error(BR_ENOTFOUND, "hnsw: id %u is not in the index", id);
    else {
        h->deleted[id] = 1;
        h->n_deleted++;
    }
    pthread_rwlock_unlock(&h->rw);
    return st;
}

/* One query under the read lock (held by the caller). */
static br_status search_one(br_hnsw *h, const float *query, size_t k, size_t ef, int32_t *ids,
                            float *scores, size_t *found, visited *vis, scratch *s, float *qn)
{
    size_t nf = 0;
    const float *q = query;
    if (h->opt.metric == BR_METRIC_COSINE) {
        double nrm = 0;
        for (size_t j = 0; j < h->dim; j++) nrm += (double)query[j] * query[j];
        float inv = nrm > 0 ? (float)(1.0 / sqrt(nrm)) : 0;
        for (size_t j = 0; j < h->dim; j++) qn[j] = query[j] * inv;
        q = qn;
    }
    if (h->max_level >= 0 && h->count > h->n_deleted) {
        uint32_t ep = h->entry;
        float dep = dist(h, q, vec_of(h, ep));
        for (int lc = h->max_level; lc > 0; lc--) greedy(h, q, lc, &ep, &dep, s->nb);
        search_layer(h, q, ep, dep, ef, 0, 1, vis, s);
        while (s->results.n > k) heap_pop(&s->results, 1);
        nf = s->results.n;
        for (size_t i = nf; i-- > 0;) {
            cand c = heap_pop(&s->results, 1);
            ids[i] = (int32_t)c.id;
            if (scores) scores[i] = score_of(h, c.d);
        }
    }
    for (size_t i = nf; i < k; i++) {
        ids[i] = -1;
        if (scores) scores[i] = -INFINITY;
    }
    if (found) *found = nf;
    return BR_OK;
}

br_status br_hnsw_search_batch(const br_hnsw *hc, const float *queries, size_t nq, size_t k,
                               size_t ef, int32_t *ids, float *scores)
{
    br_hnsw *h = (br_hnsw *)hc; /* the locks and the visited pool mutate */
    if (!h || (!queries && nq) || (!ids && nq && k))
        return br_error(BR_EINVAL, "hnsw_search: bad arguments");
    if (k == 0 || nq == 0) return BR_OK;
    if (ef < k) ef = k;
    pthread_rwlock_rdlock(&h->rw);
    int nt = nq >= 16 ? br_get_num_threads() : 1;
    volatile int failed = 0;
#pragma omp parallel num_threads(nt)
    {
        visited *vis = visited_get(h);
        scratch s;
        float *qn = br_aligned_alloc(h->dim * sizeof(float), BR_ALIGN);
        br_status ls = vis && qn ? scratch_init(&s, ef, h->M0, h->count) : BR_ENOMEM;
        if (ls != BR_OK) failed = 1;
#pragma omp for schedule(dynamic, 16)
        for (size_t i = 0; i < nq; i++) {
            if (failed) continue;
            if (vis->cap < h->count) continue; /* cannot happen under the read lock */
            if (++vis->tag == 0) {
                memset(vis->mark, 0, vis->cap * sizeof(uint16_t));
                vis->tag = 1;
            }
            search_one(h, queries + i * h->dim, k, ef, ids + i * k, scores ? scores + i * k : NULL,
                       NULL, vis, &s, qn);
        }
        if (ls == BR_OK) scratch_free(&s);
        br_aligned_free(qn);
        if (vis) visited_put(h, vis);
    }
    pthread_rwlock_unlock(&h->rw);
    if (failed) return br_error(BR_ENOMEM, "hnsw: out of memory for a search");
    return BR_OK;
}

br_status br_hnsw_search(const br_hnsw *hc, const float *query, size_t k, size_t ef, int32_t *ids,
                         float *scores, size_t *found)
{
    br_hnsw *h = (br_hnsw *)hc;
    if (!h || !query || (!ids && k)) return br_error(BR_EINVAL, "hnsw_search: bad arguments");
    if (found) *found = 0;
    if (k == 0) return BR_OK;
    if (ef < k) ef = k;
    pthread_rwlock_rdlock(&h->rw);
    visited *vis = visited_get(h);
    scratch s;
    float *qn = br_aligned_alloc(h->dim * sizeof(float), BR_ALIGN);
    br_status st = vis && qn ? scratch_init(&s, ef, h->M0, h->count)
                             : br_error(BR_ENOMEM, "hnsw: out of memory for a search");
    if (st == BR_OK) {
        search_one(h, query, k, ef, ids, scores, found, vis, &s, qn);
        scratch_free(&s);
    }
    br_aligned_free(qn);
    if (vis) visited_put(h, vis);
    pthread_rwlock_unlock(&h->rw);
    return st;
}

size_t br_hnsw_count(const br_hnsw *h)
{
    return h ? h->count : 0;
}

size_t br_hnsw_deleted(const br_hnsw *h)
{
    return h ? h->n_deleted : 0;
}

size_t br_hnsw_dim(const br_hnsw *h)
{
    return h ? h->dim : 0;
}

void br_hnsw_get_options(const br_hnsw *h, br_hnsw_options *opt)
{
    if (h && opt) *opt = h->opt;
}

size_t br_hnsw_memory(const br_hnsw *h)
{
    if (!h) return 0;
    size_t b = sizeof *h + h->cap * (h->dim * sizeof(float) + (1 + h->M0) * sizeof(uint32_t) + 2 +
                                     sizeof(uint32_t *));
    for (size_t i = 0; i < h->count; i++) b += (size_t)h->level[i] * (1 + h->M) * sizeof(uint32_t);
    return b;
}

/* ----------------------------------------------------------------- file -- */

/* Layout (all little-endian; docs/formats.md):
 *   header, 128 bytes (struct file_header)
 *   vectors  count x dim float32            at align64(128)
 *   links0   count x (1 + M0) uint32        at align64(...)
 *   levels   count uint8
 *   deleted  count uint8
 *   offsets  count uint64: word offset of the node's upper lists in the pool
 *   pool     upper_words uint32: per node with level L > 0, L records of
 *            [count, id x M] for layers 1..L
 * each section starting at a 64-byte boundary; the file ends after the pool. */
#define HNSW_MAGIC   "BRHNSW\x1a\n"
#define HNSW_VERSION 1

typedef struct file_header {
    char magic[8];
    uint32_t version, header_bytes;
    uint32_t dim, metric, m, m0, ef_construction;
    int32_t max_level;
    uint64_t count, entry, seed, n_deleted, upper_words;
    uint64_t data_hash;   /* of every byte after the header */
    uint64_t header_hash; /* of the bytes before this field */
    uint8_t reserved[32];
} file_header;

_Static_assert(sizeof(file_header) == 128, "header is 128 bytes");

static size_t align64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

typedef struct layout {
    size_t vec, link0, level, deleted, offs, pool, end;
} layout;

static int make_layout(const file_header *fh, layout *lo)
{
    uint64_t c = fh->count;
    if (c > (1ull << 32) || fh->dim == 0 || fh->dim > (1u << 20) || fh->m0 > 256 ||
        fh->upper_words > (1ull << 40))
        return -1;
    lo->vec = align64(sizeof(file_header));
    lo->link0 = align64(lo->vec + c * fh->dim * sizeof(float));
    lo->level = align64(lo->link0 + c * (1 + (uint64_t)fh->m0) * sizeof(uint32_t));
    lo->deleted = align64(lo->level + c);
    lo->offs = align64(lo->deleted + c);
    lo->pool = align64(lo->offs + c * sizeof(uint64_t));
    lo->end = lo->pool + fh->upper_words * sizeof(uint32_t);
    return 0;
}

/* Four interleaved multiply-xor lanes over 8-byte words: fast enough to
 * check gigabytes at load, sensitive to any flipped bit. */
static uint64_t hash_bytes(const void *p, size_t n, uint64_t h0)
{
    const uint8_t *b = p;
    uint64_t h[4] = {h0 ^ 0x243f6a8885a308d3ULL, h0 ^ 0x13198a2e03707344ULL,
                     h0 ^ 0xa4093822299f31d0ULL, h0 ^ 0x082efa98ec4e6c89ULL};
    const uint64_t k = 0x9e3779b97f4a7c15ULL;
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int j = 0; j < 4; j++) {
            uint64_t w;
            memcpy(&w, b + i + 8 * j, 8);
            h[j] = (h[j] ^ w) * k;
            h[j] ^= h[j] >> 29;
        }
    uint64_t r = splitmix(h[0]) ^ splitmix(h[1] + 1) ^ splitmix(h[2] + 2) ^ splitmix(h[3] + 3);
    r = br__fnv1a64_update(r, b + i, n - i); /* the tail: FNV-1a steps */
    return splitmix(r ^ n);
}

typedef struct writer {
    FILE *f;
    uint64_t pos;
    int err;
} writer;

static void w_bytes(writer *w, const void *p, size_t n)
{
    if (w->err || n == 0) return;
    if (br__fault_fwrite(p, 1, n, w->f) != n) w->err = errno ? errno : EIO;
    w->pos += n;
}

/* Zeros up to offset `to`. After a failed write w_bytes no longer moves
 * the position: stop there too (a full disk once made this loop forever,
 * holding train's lock). */
static void w_pad(writer *w, size_t to)
{
    static const uint8_t zero[64];
    while (!w->err && w->pos < to) w_bytes(w, zero, to - w->pos < 64 ? to - w->pos : 64);
}

br_status br_hnsw_save(const br_hnsw *hc, const char *path)
{
    br_hnsw *h = (br_hnsw *)hc;
    if (!h || !path) return br_error(BR_EINVAL, "hnsw_save: bad arguments");
    pthread_rwlock_rdlock(&h->rw);
    file_header fh;
    memset(&fh, 0, sizeof fh);
    memcpy(fh.magic, HNSW_MAGIC, 8);
    fh.version = HNSW_VERSION;
    fh.header_bytes = sizeof fh;
    fh.dim = (uint32_t)h->dim;
    fh.metric = (uint32_t)h->opt.metric;
    fh.m = h->M;
    fh.m0 = h->M0;
    fh.ef_construction = h->opt.ef_construction;
    fh.max_level = h->max_level;
    fh.count = h->count;
    fh.entry = h->max_level >= 0 ? h->entry : 0;
    fh.seed = h->opt.seed;
    fh.n_deleted = h->n_deleted;
    uint64_t *offs = br_malloc((h->count ? h->count : 1) * sizeof(uint64_t));
    if (!offs) {
        pthread_rwlock_unlock(&h->rw);
        return br_error(BR_ENOMEM, "hnsw_save: out of memory");
    }
    uint64_t words = 0;
    for (size_t i = 0; i < h->count; i++) {
        offs[i] = words;
        words += (uint64_t)h->level[i] * (1 + h->M);
    }
    fh.upper_words = words;
    layout lo;
    make_layout(&fh, &lo);

    /* The data hash is computed over exactly the bytes written after the
     * header; build it in one pass over an in-memory image of the padding
     * rule by hashing section by section into a running value. */
    br__afile af; /* opened "w+b": read back to hash */
    br_status st = br__afile_open(&af, path);
    if (st) {
        br_free(offs);
        pthread_rwlock_unlock(&h->rw);
        return st;
    }
    FILE *f = af.f;
    writer w = {f, 0, 0};
    w_bytes(&w, &fh, sizeof fh); /* placeholder, rewritten with the hashes */
    w_pad(&w, lo.vec);
    w_bytes(&w, h->vec, h->count * h->dim * sizeof(float));
    w_pad(&w, lo.link0);
    w_bytes(&w, h->link0, h->count * (1 + h->M0) * sizeof(uint32_t));
    w_pad(&w, lo.level);
    w_bytes(&w, h->level, h->count);
    w_pad(&w, lo.deleted);
    w_bytes(&w, h->deleted, h->count);
    w_pad(&w, lo.offs);
    w_bytes(&w, offs, h->count * sizeof(uint64_t));
    w_pad(&w, lo.pool);
    for (size_t i = 0; i < h->count; i++)
        if (h->level[i])
            w_bytes(&w, h->upper[i], (size_t)h->level[i] * (1 + h->M) * sizeof(uint32_t));
    br_free(offs);
    pthread_rwlock_unlock(&h->rw);
    if (!w.err && fflush(f) != 0) w.err = errno;
    /* hash what was written, by mapping it back */
    if (!w.err) {
        int fd = fileno(f);
        void *m = mmap(NULL, lo.end, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            w.err = errno;
        } else {
            fh.data_hash = hash_bytes((const char *)m + sizeof fh, lo.end - sizeof fh, 0);
            munmap(m, lo.end);
            fh.header_hash = hash_bytes(&fh, offsetof(file_header, header_hash), 1);
            if (fseek(f, 0, SEEK_SET) != 0 || fwrite(&fh, sizeof fh, 1, f) != 1 || fflush(f) != 0)
                w.err = errno ? errno : EIO;
        }
    }
    if (w.err) {
        br__afile_abort(&af);
        return br_error(BR_EIO, "%s: cannot write the index: %s", path, strerror(w.err));
    }
    return br__afile_commit(&af);
}

br_status br_hnsw_load(const char *path, br_hnsw **out)
{
    if (!path || !out) return br_error(BR_EINVAL, "hnsw_load: bad arguments");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return br_error(errno == ENOENT ? BR_ENOTFOUND : BR_EIO, "%s: cannot open: %s", path,
                        strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return br_error(BR_EIO, "%s: cannot stat: %s", path, strerror(errno));
    }
    size_t size = (size_t)sb.st_size;
    if (size < sizeof(file_header)) {
        close(fd);
        return br_error(BR_EFORMAT, "%s: not a bookrec HNSW index (only %zu bytes)", path, size);
    }
    /* MAP_PRIVATE + write: the pages stay shared with the page cache until
     * an insertion rewrites a link list (copy on write); the file itself is
     * never modified. */
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return br_error(BR_EIO, "%s: cannot map: %s", path, strerror(errno));
    file_header fh;
    memcpy(&fh, m, sizeof fh);
    br_status st = BR_OK;
    layout lo;
#define REFUSE(...)                                                                                \
    do {                                                                                           \
        st = br_error(BR_EFORMAT, __VA_ARGS__);                                                    \
        goto fail;                                                                                 \
    } while (0)
    if (memcmp(fh.magic, HNSW_MAGIC, 8) != 0)
        REFUSE("%s: not a bookrec HNSW index (bad magic)", path);
    if (fh.version != HNSW_VERSION)
        REFUSE("%s: HNSW index version %u; this build reads version %u", path, fh.version,
               HNSW_VERSION);
    if (fh.header_hash != hash_bytes(&fh, offsetof(file_header, header_hash), 1))
        REFUSE("%s: corrupt HNSW index (header checksum mismatch)", path);
    if (fh.header_bytes != sizeof fh || make_layout(&fh, &lo) != 0 || fh.m < 2 || fh.m > 128 ||
        fh.m0 != 2 * fh.m || fh.metric > 1 || fh.max_level > MAX_LEVEL ||
        (fh.count == 0) != (fh.max_level < 0) || fh.n_deleted > fh.count)
        REFUSE("%s: corrupt HNSW index (inconsistent header)", path);
    if (size != lo.end)
        REFUSE("%s: truncated or padded HNSW index (%zu bytes, expected %zu)", path, size, lo.end);
    if (fh.data_hash != hash_bytes((const char *)m + sizeof fh, size - sizeof fh, 0))
        REFUSE("%s: corrupt HNSW index (data checksum mismatch)", path);
    /* The checksum proves the bytes are what was written; the structural
     * checks below guard the search loops against a file written by
     * something else that got the checksum right. */
    const uint8_t *lev = (const uint8_t *)m + lo.level;
    const uint64_t *offs = (const uint64_t *)((const char *)m + lo.offs);
    const uint32_t *l0 = (const uint32_t *)((const char *)m + lo.link0);
    const uint32_t *pool = (const uint32_t *)((const char *)m + lo.pool);
    for (uint64_t i = 0; i < fh.count; i++) {
        if (lev[i] > fh.max_level)
            REFUSE("%s: corrupt HNSW index (node %llu level)", path, (unsigned long long)i);
        const uint32_t *l = l0 + i * (1 + fh.m0);
        if (l[0] > fh.m0)
            REFUSE("%s: corrupt HNSW index (node %llu links)", path, (unsigned long long)i);
        for (uint32_t j = 0; j < l[0]; j++)
            if (l[1 + j] >= fh.count) REFUSE("%s: corrupt HNSW index (link out of range)", path);
        if (lev[i]) {
            uint64_t need = (uint64_t)lev[i] * (1 + fh.m);
            if (offs[i] > fh.upper_words || need > fh.upper_words - offs[i])
                REFUSE("%s: corrupt HNSW index (upper links of node %llu)", path,
                       (unsigned long long)i);
            for (uint32_t L = 0; L < lev[i]; L++) {
                const uint32_t *u = pool + offs[i] + (uint64_t)L * (1 + fh.m);
                if (u[0] > fh.m) REFUSE("%s: corrupt HNSW index (upper link count)", path);
                for (uint32_t j = 0; j < u[0]; j++)
                    if (u[1 + j] >= fh.count)
                        REFUSE("%s: corrupt HNSW index (link out of range)", path);
            }
        }
    }
    if (fh.count && (fh.entry >= fh.count || lev[fh.entry] != fh.max_level))
        REFUSE("%s: corrupt HNSW index (entry point)", path);
#undef REFUSE
    br_hnsw_options o = {fh.m, fh.ef_construction, (br_metric)fh.metric, fh.seed};
    br_hnsw *h;
    if ((st = check_options(fh.dim, &o)) != BR_OK || (st = alloc_handle(fh.dim, &o, &h)) != BR_OK)
        goto fail;
    h->map = m;
    h->map_size = size;
    h->count = h->cap = fh.count;
    h->n_deleted = fh.n_deleted;
    h->entry = (uint32_t)fh.entry;
    h->max_level = fh.max_level;
    h->vec = (float *)((char *)m + lo.vec);
    h->link0 = (uint32_t *)((char *)m + lo.link0);
    h->level = (uint8_t *)m + lo.level;
    h->deleted = (uint8_t *)m + lo.deleted;
    h->upper = br_calloc(fh.count ? fh.count : 1, sizeof(uint32_t *));
    h->upper_pool_words = fh.upper_words;
    h->upper_pool = br_malloc((fh.upper_words ? fh.upper_words : 1) * sizeof(uint32_t));
    if (!h->upper || !h->upper_pool) {
        br_hnsw_free(h); /* unmaps */
        return br_error(BR_ENOMEM, "hnsw_load: out of memory");
    }
    memcpy(h->upper_pool, pool, fh.upper_words * sizeof(uint32_t));
    for (uint64_t i = 0; i < fh.count; i++)
        if (lev[i]) h->upper[i] = h->upper_pool + offs[i];
    *out = h;
    return BR_OK;
fail:
    munmap(m, size);
    return st;
}
