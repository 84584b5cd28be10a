/*
 * kmeans.c: k-means for book tribes. k-means++ seeding (scikit-learn's
 * greedy variant), then Lloyd iterations, either plain (every distance,
 * through sgemm, each iteration) or Hamerly's (2010) accelerated form.
 *
 * Why Hamerly and not Elkan: Elkan keeps k lower bounds per point (n x k
 * floats) and pays k-squared centre distances per iteration; Hamerly keeps
 * one upper and one lower bound per point, which for the small k of tribes
 * (10-100) prunes nearly as well after the first iterations at a fraction
 * of the memory. Points whose bounds cannot prove their label are
 * re-examined; when most points need it (the first iterations), a full
 * sgemm pass is cheaper than point-by-point distances, so we switch.
 *
 * Centroids are kept as double-precision sums updated incrementally when a
 * point changes cluster, so an iteration costs O(changes x dim), not
 * O(n x dim). Distances of a full pass use ||x||^2 - 2 x.c + ||c||^2 with
 * the cross term from sgemm; bounds are tightened with direct differences,
 * which do not suffer the cancellation of that form.
 *
 * Empty clusters: a cluster left without points is re-seeded with the
 * point farthest from its own centroid (that point moves to it), as
 * scikit-learn does; so no cluster stays empty while x has k distinct rows.
 */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "content/internal.h"
#include "content/vec.h"

#define CHUNK 4096 /* rows per sgemm pass block: CHUNK x k floats of scores */
#define SMALL_K 24  /* up to this many centres, distances by br__cv_dots instead of sgemm */

/* ------------------------------------------------------------ helpers ---- */

static void row_sqnorms(const float *x, size_t n, size_t dim, float *out)
{
#pragma omp parallel for schedule(static) num_threads(br_get_num_threads()) if (n > 4096)
    for (size_t i = 0; i < n; i++) out[i] = br__cv_dot(x + i * dim, x + i * dim, dim);
}

double br__kmeans_tol(const float *x, size_t n, size_t dim, double tol)
{
    if (n == 0 || tol == 0) return 0;
    /* sum and sum of squares per feature in row order (cache friendly),
     * double accumulators per thread */
    double *s1 = br_calloc(dim, sizeof(double)), *s2 = br_calloc(dim, sizeof(double));
    if (!s1 || !s2) {
        br_free(s1);
        br_free(s2);
        return 0; /* no tolerance: runs to strict convergence or max_iter */
    }
#pragma omp parallel num_threads(br_get_num_threads()) if (n * dim > (1u << 22))
    {
        double *a = br_calloc(2 * dim, sizeof(double));
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++)
            if (a)
                for (size_t j = 0; j < dim; j++) {
                    double v = x[i * dim + j];
                    a[j] += v;
                    a[dim + j] += v * v;
                }
#pragma omp critical
        if (a)
            for (size_t j = 0; j < dim; j++) {
                s1[j] += a[j];
                s2[j] += a[dim + j];
            }
        br_free(a);
    }
    double total = 0;
    for (size_t j = 0; j < dim; j++) {
        double m = s1[j] / (double)n, v = s2[j] / (double)n - m * m;
        total += v > 0 ? v : 0;
    }
    br_free(s1);
    br_free(s2);
    return tol * total / (double)dim;
}

/* ---------------------------------------------------------- k-means++ ---- */

/* Index of the first prefix sum > r (numpy searchsorted, side='left' on
 * the cumulative sum), clipped to n - 1. */
static size_t search_cum(const double *cum, size_t n, double r)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cum[mid] < r) lo = mid + 1;
        else hi = mid;
    }
    return lo < n ? lo : n - 1;
}

br_status br__kmeans_plusplus(const float *x, const float *xsq, size_t n, size_t dim, uint32_t k,
                             uint64_t seed, float *centroids)
{
    uint32_t trials = 2 + (uint32_t)floor(log((double)k));
    float *closest = br_malloc(n * sizeof(float));
    double *cum = br_malloc(n * sizeof(double));
    float *cand_d =
        br_aligned_alloc((size_t)trials * n * sizeof(float), BR_ALIGN); /* (n, trials) */
    float *cand_x = br_aligned_alloc((size_t)trials * dim * sizeof(float), BR_ALIGN);
    size_t *cand = br_malloc(trials * sizeof(size_t));
    if (!closest || !cum || !cand_d || !cand_x || !cand) {
        br_free(closest);
        br_free(cum);
        br_aligned_free(cand_d);
        br_aligned_free(cand_x);
        br_free(cand);
        return br_error(BR_ENOMEM, "kmeans++: out of memory for %zu points", n);
    }
    br_rng rng;
    br_rng_seed(&rng, seed);
    size_t first = (size_t)br_rng_below(&rng, n);
    memcpy(centroids, x + first * dim, dim * sizeof(float));
    double pot = 0;
    for (size_t i = 0; i < n; i++) {
        float d = xsq[i] + xsq[first] - 2 * br__cv_dot(x + i * dim, x + first * dim, dim);
        closest[i] = d > 0 ? d : 0;
    }
    for (size_t i = 0; i < n; i++) pot += closest[i];

    for (uint32_t c = 1; c < k; c++) {
        double acc = 0;
        for (size_t i = 0; i < n; i++) cum[i] = (acc += closest[i]);
        for (uint32_t t = 0; t < trials; t++) {
            cand[t] = search_cum(cum, n, br_rng_uniform(&rng) * pot);
            memcpy(cand_x + t * dim, x + cand[t] * dim, dim * sizeof(float));
        }
        // cand_d (trials, n) = cand_x (trials, dim) . x^T (dim, n)
        // cand_d (n, trials) = x (n, dim) . cand_x^T (dim, trials): x streamed once
        br__cv_dots(x, n, cand_x, trials, dim, cand_d);
        double best_pot = INFINITY;
        uint32_t best = 0;
        for (uint32_t t = 0; t < trials; t++) {
            double p = 0;
            float cs = xsq[cand[t]];
            for (size_t i = 0; i < n; i++) {
                float d = xsq[i] + cs - 2 * cand_d[i * trials + t];
                d = d > 0 ? d : 0;
                p += d < closest[i] ? d : closest[i];
            }
            if (p < best_pot) {
                best_pot = p;
                best = t;
            }
        }
        float cs = xsq[cand[best]];
        for (size_t i = 0; i < n; i++) {
            float d = xsq[i] + cs - 2 * cand_d[i * trials + best];
            d = d > 0 ? d : 0;
            closest[i] = d < closest[i] ? d : closest[i];
        }
        pot = best_pot;
        memcpy(centroids + (size_t)c * dim, x + cand[best] * dim, dim * sizeof(float));
    }
    br_free(closest);
    br_free(cum);
    br_aligned_free(cand_d);
    br_aligned_free(cand_x);
    br_free(cand);
    return BR_OK;
}

/* -------------------------------------------------------------- one run -- */

typedef struct run_state {
    const float *x;
    const float *xsq;
    size_t n, dim;
    uint32_t k;
    float *c;       /* (k, dim) current centroids */
    float *csq;     /* (k,) */
    double *sum;    /* (k, dim) sums of the members */
    int64_t *count; /* (k,) */
    int32_t *label; /* (n,) */
    float *upper;   /* (n,) bound on the distance to the own centroid */
    float *lower;   /* (n,) bound on the distance to every other centroid */
    float *scores;  /* (CHUNK, k) */
    float *shift;   /* (k,) */
    float *half;    /* (k,) half the distance to the nearest other centroid */
    float *oldc;    /* (k, dim) */
} run_state;

static void run_free(run_state *s)
{
    br_aligned_free(s->csq);
    br_free(s->sum);
    br_free(s->count);
    br_free(s->upper);
    br_free(s->lower);
    br_aligned_free(s->scores);
    br_free(s->shift);
    br_free(s->half);
    br_aligned_free(s->oldc);
}

/* Full assignment through sgemm: labels, upper = distance to the nearest,
 * lower = distance to the second nearest. Returns how many labels changed
 * (every point counts on the first pass, label < 0). */
static size_t assign_full(run_state *s)
{
    size_t changed = 0;
    const size_t dim = s->dim;
    const uint32_t k = s->k;
    for (uint32_t j = 0; j < k; j++) s->csq[j] = br__cv_dot(s->c + j * dim, s->c + j * dim, dim);
    for (size_t i0 = 0; i0 < s->n; i0 += CHUNK) {
        size_t m = s->n - i0 < CHUNK ? s->n - i0 : CHUNK;
        // scores (m, k) = x[i0:i0+m] (m, dim) . c^T (dim, k); few centres: one
        // streaming pass over x beats sgemm's packing of x
        if (k <= SMALL_K)
            br__cv_dots(s->x + i0 * dim, m, s->c, k, dim, s->scores);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)k, (int)dim, 1.0f,
                        s->x + i0 * dim, (int)dim, s->c, (int)dim, 0.0f, s->scores, (int)k);
        for (size_t r = 0; r < m; r++) {
            size_t i = i0 + r;
            const float *row = s->scores + r * k;
            float d1 = INFINITY, d2 = INFINITY;
            int32_t a = 0;
            for (uint32_t j = 0; j < k; j++) {
                float d = s->xsq[i] - 2 * row[j] + s->csq[j];
                if (d < d1) {
                    d2 = d1;
                    d1 = d;
                    a = (int32_t)j;
                } else if (d < d2) {
                    d2 = d;
                }
            }
            s->upper[i] = sqrtf(d1 > 0 ? d1 : 0);
            s->lower[i] = k > 1 ? sqrtf(d2 > 0 ? d2 : 0) : INFINITY;
            if (s->label[i] != a) {
                changed++;
                if (s->label[i] >= 0) {
                    const float *xi = s->x + i * dim;
                    double *so = s->sum + (size_t)s->label[i] * dim, *sn = s->sum + (size_t)a * dim;
                    for (size_t t = 0; t < dim; t++) {
                        so[t] -= xi[t];
                        sn[t] += xi[t];
                    }
                    s->count[s->label[i]]--;
                } else {
                    const float *xi = s->x + i * dim;
                    double *sn = s->sum + (size_t)a * dim;
                    for (size_t t = 0; t < dim; t++) sn[t] += xi[t];
                }
                s->count[a]++;
                s->label[i] = a;
            }
        }
    }
    return changed;
}

static void move_point(run_state *s, size_t i, int32_t to)
{
    const float *xi = s->x + i * s->dim;
    int32_t from = s->label[i];
    double *so = s->sum + (size_t)from * s->dim, *sn = s->sum + (size_t)to * s->dim;
    for (size_t t = 0; t < s->dim; t++) {
        so[t] -= xi[t];
        sn[t] += xi[t];
    }
    s->count[from]--;
    s->count[to]++;
    s->label[i] = to;
}

/* Hamerly's pass: only points whose bounds do not prove their label are
 * examined. Returns the number of label changes. */
static size_t assign_hamerly(run_state *s)
{
    const size_t dim = s->dim;
    const uint32_t k = s->k;
    size_t changed = 0;
    for (uint32_t j = 0; j < k; j++) {
        float best = INFINITY;
        for (uint32_t m = 0; m < k; m++)
            if (m != j) {
                float d = sqrtf(br__cv_l2sq(s->c + j * dim, s->c + m * dim, dim));
                if (d < best) best = d;
            }
        s->half[j] = best / 2;
    }
    for (size_t i = 0; i < s->n; i++) {
        int32_t a = s->label[i];
        float bound = s->half[a] > s->lower[i] ? s->half[a] : s->lower[i];
        if (s->upper[i] <= bound) continue;
        const float *xi = s->x + i * dim;
        s->upper[i] = sqrtf(br__cv_l2sq(xi, s->c + (size_t)a * dim, dim));
        if (s->upper[i] <= bound) continue;
        float d1 = INFINITY, d2 = INFINITY;
        int32_t b = a;
        for (uint32_t j = 0; j < k; j++) {
            float d = (int32_t)j == a ? s->upper[i] * s->upper[i]
                                      : br__cv_l2sq(xi, s->c + (size_t)j * dim, dim);
            if (d < d1 || (d == d1 && (int32_t)j < b)) {
                d2 = d1;
                d1 = d;
                b = (int32_t)j;
            } else if (d < d2) {
                d2 = d;
            }
        }
        s->upper[i] = sqrtf(d1);
        s->lower[i] = sqrtf(d2);
        if (b != a) {
            move_point(s, i, b);
            changed++;
        }
    }
    return changed;
}

/* New centroids from the sums; empty clusters re-seeded. Fills shift[] and
 * returns the summed squared shift. */
static double update_centroids(run_state *s, uint32_t *reseeded)
{
    const size_t dim = s->dim;
    const uint32_t k = s->k;
    memcpy(s->oldc, s->c, (size_t)k * dim * sizeof(float));
    for (uint32_t j = 0; j < k; j++) {
        if (s->count[j] > 0) continue;
        /* the point farthest from its centroid, among clusters that keep a member */
        size_t far = SIZE_MAX;
        float fd = -1;
        for (size_t i = 0; i < s->n; i++) {
            if (s->count[s->label[i]] < 2) continue;
            float d = br__cv_l2sq(s->x + i * dim, s->c + (size_t)s->label[i] * dim, dim);
            if (d > fd) {
                fd = d;
                far = i;
            }
        }
        if (far == SIZE_MAX) break; /* fewer distinct points than clusters */
        move_point(s, far, (int32_t)j);
        s->upper[far] = INFINITY; /* forces a re-examination next pass */
        s->lower[far] = 0;
        (*reseeded)++;
    }
    double total = 0;
    for (uint32_t j = 0; j < k; j++) {
        float *cj = s->c + (size_t)j * dim;
        if (s->count[j] > 0) {
            double inv = 1.0 / (double)s->count[j];
            for (size_t t = 0; t < dim; t++) cj[t] = (float)(s->sum[(size_t)j * dim + t] * inv);
        }
        float d2 = br__cv_l2sq(cj, s->oldc + (size_t)j * dim, dim);
        s->shift[j] = sqrtf(d2);
        total += d2;
    }
    return total;
}

static double inertia_of(const run_state *s)
{
    double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static) num_threads(br_get_num_threads()) \
    if (s->n > 4096)
    for (size_t i = 0; i < s->n; i++)
        total += br__cv_l2sq(s->x + i * s->dim, s->c + (size_t)s->label[i] * s->dim, s->dim);
    return total;
}

br_status br__kmeans_run(const float *x, size_t n, size_t dim, uint32_t k, br_kmeans_algo algo,
                        uint32_t max_iter, double tol_abs, float *centroids, int32_t *labels,
                        double *inertia, uint32_t *iterations, uint32_t *reseeded)
{
    if (!x || !centroids || !labels || k == 0 || k > n || dim == 0)
        return br_error(BR_EINVAL, "kmeans: bad arguments (k %u, n %zu, dim %zu)", k, n, dim);
    run_state s = {0};
    s.x = x;
    s.n = n;
    s.dim = dim;
    s.k = k;
    s.c = centroids;
    s.label = labels;
    float *xsq = br_malloc(n * sizeof(float));
    s.csq = br_aligned_alloc(k * sizeof(float), BR_ALIGN);
    s.sum = br_calloc((size_t)k * dim, sizeof(double));
    s.count = br_calloc(k, sizeof(int64_t));
    s.upper = br_malloc(n * sizeof(float));
    s.lower = br_malloc(n * sizeof(float));
    s.scores = br_aligned_alloc((size_t)CHUNK * k * sizeof(float), BR_ALIGN);
    s.shift = br_malloc(k * sizeof(float));
    s.half = br_malloc(k * sizeof(float));
    s.oldc = br_aligned_alloc((size_t)k * dim * sizeof(float), BR_ALIGN);
    if (!xsq || !s.csq || !s.sum || !s.count || !s.upper || !s.lower || !s.scores || !s.shift ||
        !s.half || !s.oldc) {
        br_free(xsq);
        run_free(&s);
        return br_error(BR_ENOMEM, "kmeans: out of memory for %zu x %zu", n, dim);
    }
    row_sqnorms(x, n, dim, xsq);
    s.xsq = xsq;
    for (size_t i = 0; i < n; i++) labels[i] = -1;
    uint32_t rs = 0;
    assign_full(&s);
    uint32_t it = 0;
    while (it < max_iter) {
        it++;
        double shift2 = update_centroids(&s, &rs);
        float maxs = 0, second = 0;
        uint32_t argmax = 0;
        for (uint32_t j = 0; j < k; j++) {
            if (s.shift[j] > maxs) {
                second = maxs;
                maxs = s.shift[j];
                argmax = j;
            } else if (s.shift[j] > second) {
                second = s.shift[j];
            }
        }
        size_t changed;
        if (algo == BR_KMEANS_LLOYD) {
            changed = assign_full(&s);
        } else {
            /* Move the bounds by the centroid shifts; count the points they
             * can no longer vouch for. */
            size_t loose = 0;
            for (size_t i = 0; i < n; i++) {
                int32_t a = labels[i];
                s.upper[i] += s.shift[a];
                s.lower[i] -= (uint32_t)a == argmax ? second : maxs;
                if (s.upper[i] > s.lower[i]) loose++;
            }
            /* Most points loose (early iterations): one sgemm pass beats
             * point-by-point distances. */
            if (loose * 2 > n) changed = assign_full(&s);
            else changed = assign_hamerly(&s);
        }
        if (changed == 0 || shift2 <= tol_abs) break;
    }
    /* Labels are those of the final centroids; the centroids are not
     * re-averaged after the last assignment (scikit-learn's convention). */
    *inertia = inertia_of(&s);
    *iterations = it;
    if (reseeded) *reseeded += rs;
    br_free(xsq);
    run_free(&s);
    return BR_OK;
}

/* ------------------------------------------------------------- reference -- */

br_status br__kmeans_run_ref(const float *x, size_t n, size_t dim, uint32_t k, uint32_t max_iter,
                            double tol_abs, float *centroids, int32_t *labels, double *inertia,
                            uint32_t *iterations, uint32_t *reseeded)
{
    if (!x || !centroids || !labels || k == 0 || k > n || dim == 0)
        return br_error(BR_EINVAL, "kmeans_ref: bad arguments");
    double *sum = br_calloc((size_t)k * dim, sizeof(double));
    int64_t *count = br_calloc(k, sizeof(int64_t));
    float *old = br_malloc((size_t)k * dim * sizeof(float));
    if (!sum || !count || !old) {
        br_free(sum);
        br_free(count);
        br_free(old);
        return br_error(BR_ENOMEM, "kmeans_ref: out of memory");
    }
    for (size_t i = 0; i < n; i++) labels[i] = -1;
    uint32_t it = 0, rs = 0;
    for (;;) {
        /* assignment: nearest centroid, the lower index on ties */
        size_t changed = 0;
        for (size_t i = 0; i < n; i++) {
            double best = INFINITY;
            int32_t a = 0;
            for (uint32_t j = 0; j < k; j++) {
                double d = br__cv_l2sq_ref(x + i * dim, centroids + (size_t)j * dim, dim);
                if (d < best) {
                    best = d;
                    a = (int32_t)j;
                }
            }
            if (labels[i] != a) changed++;
            labels[i] = a;
        }
        if (it > 0 && changed == 0) break;
        if (it == max_iter) break;
        it++;
        /* update, with the same empty-cluster rule */
        memset(sum, 0, (size_t)k * dim * sizeof(double));
        memset(count, 0, k * sizeof(int64_t));
        for (size_t i = 0; i < n; i++) {
            count[labels[i]]++;
            for (size_t t = 0; t < dim; t++) sum[(size_t)labels[i] * dim + t] += x[i * dim + t];
        }
        for (uint32_t j = 0; j < k; j++) {
            if (count[j] > 0) continue;
            size_t far = SIZE_MAX;
            double fd = -1;
            for (size_t i = 0; i < n; i++) {
                if (count[labels[i]] < 2) continue;
                double d = br__cv_l2sq_ref(x + i * dim, centroids + (size_t)labels[i] * dim, dim);
                if (d > fd) {
                    fd = d;
                    far = i;
                }
            }
            if (far == SIZE_MAX) break;
            int32_t from = labels[far];
            for (size_t t = 0; t < dim; t++) {
                sum[(size_t)from * dim + t] -= x[far * dim + t];
                sum[(size_t)j * dim + t] += x[far * dim + t];
            }
            count[from]--;
            count[j]++;
            labels[far] = (int32_t)j;
            rs++;
        }
        memcpy(old, centroids, (size_t)k * dim * sizeof(float));
        double shift = 0;
        for (uint32_t j = 0; j < k; j++) {
            if (count[j] > 0)
                for (size_t t = 0; t < dim; t++)
                    centroids[(size_t)j * dim + t] =
                        (float)(sum[(size_t)j * dim + t] / (double)count[j]);
            shift += br__cv_l2sq_ref(centroids + (size_t)j * dim, old + (size_t)j * dim, dim);
        }
        if (shift <= tol_abs) {
            /* final labels for the final centroids */
            for (size_t i = 0; i < n; i++) {
                double best = INFINITY;
                int32_t a = 0;
                for (uint32_t j = 0; j < k; j++) {
                    double d = br__cv_l2sq_ref(x + i * dim, centroids + (size_t)j * dim, dim);
                    if (d < best) {
                        best = d;
                        a = (int32_t)j;
                    }
                }
                labels[i] = a;
            }
            break;
        }
    }
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += br__cv_l2sq_ref(x + i * dim, centroids + (size_t)labels[i] * dim, dim);
    *inertia = total;
    *iterations = it;
    if (reseeded) *reseeded += rs;
    br_free(sum);
    br_free(count);
    br_free(old);
    return BR_OK;
}

/* ------------------------------------------------------------------ fit -- */

br_status br_kmeans_fit(const float *x, size_t n, size_t dim, const br_kmeans_options *opt,
                        br_kmeans_result *out)
{
    if (!out) return br_error(BR_EINVAL, "kmeans: no result");
    memset(out, 0, sizeof *out);
    br_kmeans_options o = BR_KMEANS_OPTIONS_DEFAULT;
    if (opt) o = *opt;
    if (!x || n == 0 || dim == 0) return br_error(BR_EINVAL, "kmeans: empty input");
    if (o.k == 0) return br_error(BR_EINVAL, "kmeans: k must be at least 1");
    if (o.k > n)
        return br_error(BR_EINVAL, "kmeans: k = %u clusters but only %zu points (k must be <= n)",
                        o.k, n);
    if (o.n_init == 0) return br_error(BR_EINVAL, "kmeans: n_init must be at least 1");
    if (!(o.tol >= 0)) return br_error(BR_EINVAL, "kmeans: tol must be >= 0");
    for (size_t i = 0; i < n * dim; i++)
        if (!isfinite(x[i]))
            return br_error(BR_EINVAL, "kmeans: row %zu has a non-finite value", i / dim);
    br_kmeans_algo algo = o.algo;
    if (algo == BR_KMEANS_AUTO) algo = o.k >= 4 ? BR_KMEANS_HAMERLY : BR_KMEANS_LLOYD;

    size_t kd = (size_t)o.k * dim;
    float *xsq = br_malloc(n * sizeof(float));
    float *c = br_aligned_alloc(kd * sizeof(float), BR_ALIGN);
    int32_t *lab = br_malloc(n * sizeof(int32_t));
    out->centroids = br_aligned_alloc(kd * sizeof(float), BR_ALIGN);
    out->labels = br_malloc(n * sizeof(int32_t));
    if (!xsq || !c || !lab || !out->centroids || !out->labels) {
        br_free(xsq);
        br_aligned_free(c);
        br_free(lab);
        br_kmeans_result_free(out);
        return br_error(BR_ENOMEM, "kmeans: out of memory for %zu x %zu", n, dim);
    }
    row_sqnorms(x, n, dim, xsq);
    double tol_abs = br__kmeans_tol(x, n, dim, o.tol);
    br_status st = BR_OK;
    br_progress prog;
    br_progress_begin(&prog, "k-means", o.n_init);
    out->inertia = INFINITY;
    for (uint32_t r = 0; r < o.n_init && st == BR_OK; r++) {
        /* restart r draws from its own stream: seed, then r jumps */
        br_rng rng;
        br_rng_seed(&rng, o.seed);
        for (uint32_t j = 0; j < r; j++) br_rng_jump(&rng);
        st = br__kmeans_plusplus(x, xsq, n, dim, o.k, br_rng_next(&rng), c);
        double inertia;
        uint32_t iters;
        if (st == BR_OK)
            st = br__kmeans_run(x, n, dim, o.k, algo, o.max_iter ? o.max_iter : 1, tol_abs, c, lab,
                               &inertia, &iters, &out->reseeded);
        if (st == BR_OK && inertia < out->inertia) {
            out->inertia = inertia;
            out->iterations = iters;
            out->best_init = r;
            memcpy(out->centroids, c, kd * sizeof(float));
            memcpy(out->labels, lab, n * sizeof(int32_t));
        }
        if (st == BR_OK) st = br_progress_update(&prog, r + 1);
    }
    br_progress_end(&prog);
    br_free(xsq);
    br_aligned_free(c);
    br_free(lab);
    if (st != BR_OK) {
        br_kmeans_result_free(out);
        return st;
    }
    out->k = o.k;
    out->n = n;
    out->dim = dim;
    return BR_OK;
}

void br_kmeans_result_free(br_kmeans_result *r)
{
    if (!r) return;
    br_free(r->labels);
    br_aligned_free(r->centroids);
    r->labels = NULL;
    r->centroids = NULL;
}
