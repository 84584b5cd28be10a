/*
 * metrics.c: ranking and rating metrics of the evaluation protocol, and the
 * driver that feeds an engine blocks of readers and averages its scores.
 */
#include <math.h>
#include <string.h>

#include "bookrec/eval.h"

#define BLOCK 256

static int contains(const uint32_t *sorted, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sorted[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && sorted[lo] == x;
}

void br_eval_list(const uint32_t *items, uint32_t k, const uint32_t *rel, size_t n_rel,
                  br_list_metrics *out)
{
    memset(out, 0, sizeof *out);
    if (k == 0 || n_rel == 0) return;
    double dcg = 0, idcg = 0, ap = 0;
    uint32_t hits = 0;
    for (uint32_t i = 0; i < k; i++) {
        if (items[i] == BR_EVAL_NONE || !contains(rel, n_rel, items[i])) continue;
        /* A ranking never repeats a book; guard anyway so a buggy engine
         * cannot score a hit twice. */
        int dup = 0;
        for (uint32_t j = 0; j < i && !dup; j++) dup = items[j] == items[i];
        if (dup) continue;
        hits++;
        dcg += 1.0 / log2((double)i + 2.0);
        ap += (double)hits / (double)(i + 1);
    }
    size_t ideal = n_rel < k ? n_rel : k;
    for (size_t i = 0; i < ideal; i++) idcg += 1.0 / log2((double)i + 2.0);
    out->hits = hits;
    out->precision = (double)hits / k;
    out->recall = (double)hits / (double)n_rel;
    out->ndcg = dcg / idcg;
    out->ap = ap / (double)ideal;
}

/* Held-out (reader, book, rating) triples waiting for one predict() call. */
typedef struct pred_batch {
    const br_ranker *rk;
    uint32_t user[BLOCK], book[BLOCK];
    float truth[BLOCK], pred[BLOCK];
    size_t fill, count;
    double sse;
} pred_batch;

static br_status pred_flush(pred_batch *pb)
{
    if (pb->fill == 0) return BR_OK;
    br_status st = pb->rk->predict(pb->rk->ctx, pb->user, pb->book, pb->fill, pb->pred);
    if (st != BR_OK) return st;
    for (size_t q = 0; q < pb->fill; q++) {
        double e = (double)pb->pred[q] - (double)pb->truth[q];
        pb->sse += e * e;
    }
    pb->count += pb->fill;
    pb->fill = 0;
    return BR_OK;
}

/* One ranked list's deep metrics into the sums d[4]: NDCG@10, recall@20,
 * recall@50, NDCG@100 (the list holds at least BR_EVAL_DEEP books). */
static void deep_list(const uint32_t *list, const uint32_t *rel, size_t n_rel, double *d)
{
    static const uint32_t cut[4] = {10, 20, 50, BR_EVAL_DEEP};
    for (int c = 0; c < 4; c++) {
        br_list_metrics m;
        br_eval_list(list, cut[c], rel, n_rel, &m);
        d[c] += c == 1 || c == 2 ? m.recall : m.ndcg;
    }
}

/* The driver: each reader's list of `depth` books (>= k), the figures at k
 * from its first k, the deep metrics from all of it when deep. */
static br_status evaluate(const br_split *s, const br_ranker *rk, uint32_t k, int deep,
                          const uint32_t *users, size_t n_users, br_eval_result *out)
{
    memset(out, 0, sizeof *out);
    out->k = k;
    if (k == 0) return br_error(BR_EINVAL, "eval: k must be positive");
    uint32_t depth = deep && k < BR_EVAL_DEEP ? BR_EVAL_DEEP : k;
    if (!rk || !rk->rank) return br_error(BR_EINVAL, "eval: no ranking function");

    /* The readers to rank: those given (or all) with a relevant held-out book. */
    size_t cap = users ? n_users : s->n_users;
    uint32_t *ranked = br_malloc((cap + 1) * sizeof *ranked);
    uint32_t *rel = br_malloc(((size_t)s->n_test + 1) * sizeof *rel);
    uint32_t *items = br_malloc((size_t)BLOCK * depth * sizeof *items);
    unsigned char *shown = br_calloc((size_t)s->n_books + 1, 1);
    br_status st = BR_OK;
    if (!ranked || !rel || !items || !shown) {
        st = br_error(BR_ENOMEM, "eval: out of memory");
        goto out;
    }
    size_t n_ranked = 0;
    for (size_t i = 0; i < cap; i++) {
        uint32_t u = users ? users[i] : (uint32_t)i;
        if (u >= s->n_users) {
            st = br_error(BR_EINVAL, "eval: reader index %u out of range", u);
            goto out;
        }
        for (uint64_t j = s->test_ptr[u]; j < s->test_ptr[u + 1]; j++)
            if (s->test_value[j] >= s->relevant_min) {
                ranked[n_ranked++] = u;
                break;
            }
    }

    uint64_t t0 = br_now_ns();
    double sum_p = 0, sum_r = 0, sum_n = 0, sum_ap = 0, sum_d[4] = {0, 0, 0, 0};
    br_progress prog;
    br_progress_begin(&prog, "evaluate", n_ranked);
    for (size_t b = 0; b < n_ranked; b += BLOCK) {
        size_t nb = n_ranked - b < BLOCK ? n_ranked - b : BLOCK;
        if ((st = rk->rank(rk->ctx, ranked + b, nb, depth, items)) != BR_OK) goto out;
        for (size_t i = 0; i < nb; i++) {
            uint32_t u = ranked[b + i];
            size_t n_rel = 0;
            for (uint64_t j = s->test_ptr[u]; j < s->test_ptr[u + 1]; j++)
                if (s->test_value[j] >= s->relevant_min) rel[n_rel++] = s->test_book[j];
            br_list_metrics m;
            const uint32_t *list = items + i * depth;
            br_eval_list(list, k, rel, n_rel, &m);
            if (deep) deep_list(list, rel, n_rel, sum_d);
            sum_p += m.precision;
            sum_r += m.recall;
            sum_n += m.ndcg;
            sum_ap += m.ap;
            for (uint32_t j = 0; j < k; j++)
                if (list[j] < s->n_books) shown[list[j]] = 1;
        }
        if ((st = br_progress_update(&prog, b + nb)) != BR_OK) goto out;
    }
    if ((st = br_progress_end(&prog)) != BR_OK) goto out;
    out->rank_seconds = (double)(br_now_ns() - t0) / 1e9;
    out->users_ranked = n_ranked;
    if (n_ranked) {
        out->precision = sum_p / (double)n_ranked;
        out->recall = sum_r / (double)n_ranked;
        out->ndcg = sum_n / (double)n_ranked;
        out->map = sum_ap / (double)n_ranked;
    }
    if (deep) {
        double d = n_ranked ? (double)n_ranked : 1.0;
        out->deep = 1;
        out->ndcg10 = sum_d[0] / d;
        out->recall20 = sum_d[1] / d;
        out->recall50 = sum_d[2] / d;
        out->ndcg100 = sum_d[3] / d;
    }
    size_t n_shown = 0;
    for (uint32_t i = 0; i < s->n_books; i++) n_shown += shown[i];
    out->coverage = s->n_books ? (double)n_shown / (double)s->n_books : 0;

    if (rk->predict) {
        /* RMSE over every held-out rating of the readers considered. */
        t0 = br_now_ns();
        pred_batch pb = {.rk = rk};
        for (size_t i = 0; i < cap && st == BR_OK; i++) {
            uint32_t u = users ? users[i] : (uint32_t)i;
            for (uint64_t j = s->test_ptr[u]; j < s->test_ptr[u + 1] && st == BR_OK; j++) {
                pb.user[pb.fill] = u;
                pb.book[pb.fill] = s->test_book[j];
                pb.truth[pb.fill] = s->test_value[j];
                if (++pb.fill == BLOCK) st = pred_flush(&pb);
            }
        }
        if (st == BR_OK) st = pred_flush(&pb);
        if (st != BR_OK) goto out;
        out->has_rmse = 1;
        out->n_rmse = pb.count;
        out->rmse = pb.count ? sqrt(pb.sse / (double)pb.count) : 0;
        out->predict_seconds = (double)(br_now_ns() - t0) / 1e9;
    }
out:
    br_free(ranked);
    br_free(rel);
    br_free(items);
    br_free(shown);
    return st;
}

br_status br_eval_ranker(const br_split *s, const br_ranker *rk, uint32_t k,
                         const uint32_t *users, size_t n_users, br_eval_result *out)
{
    return evaluate(s, rk, k, 0, users, n_users, out);
}

br_status br_eval_ranker_deep(const br_split *s, const br_ranker *rk, uint32_t k,
                              const uint32_t *users, size_t n_users, br_eval_result *out)
{
    return evaluate(s, rk, k, 1, users, n_users, out);
}
