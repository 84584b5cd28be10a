/*
 * tokenizer.c: the use-lite SentencePiece tokenizer, reproducing the
 * JavaScript one of @energetic-ai/embeddings 0.2.0 token for token.
 *
 * The reference is not the C++ SentencePiece library but a small JavaScript
 * port with its own behaviour, and the model was used through it, so its
 * quirks are the specification:
 *   - normalisation is NFKC only (String.prototype.normalize), then "▁" is
 *     prepended and every U+0020 (only that space) becomes "▁";
 *   - a trie of pieces 6..7999 (ids 0-5 are reserved and never matched); a
 *     piece listed twice keeps its last id and score;
 *   - from each position, every piece that matches is a candidate; when none
 *     does, one symbol becomes the unknown piece (id 0) with score 0, which
 *     beats every real piece's (negative) score;
 *   - Viterbi over positions with `best[end] === 0 || score >= best[end]`:
 *     0 means "unset", so a path whose total is exactly 0 can be replaced,
 *     and ties go to the later candidate (the one starting later);
 *   - the backtrack steps back by the UTF-16 length of the chosen piece
 *     (JavaScript's String.length), not by the symbols it matched;
 *   - runs of consecutive unknowns collapse into one id 0.
 * Scores are doubles, as in JavaScript, so sums round identically.
 */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "text/use_model.h"

#define SPACE_MARK 0x2581 /* ▁ */
#define RESERVED   6      /* ids 0..5: unknown, <s>, </s>, extra ids */

typedef struct trie_node {
    double score;
    int32_t id; /* -1 when no piece ends here */
} trie_node;

struct use_tokenizer {
    trie_node *nodes; /* nodes[0] is the root */
    uint32_t n_nodes;
    /* Children as an open-addressing hash: key (parent << 21 | code point). */
    uint64_t *keys; /* 0 = empty (the root has no parent 0 edge... see key()) */
    uint32_t *child;
    uint32_t mask;
    uint8_t *u16len; /* (vocab,) JavaScript length of each piece */
    uint32_t vocab;
};

/* +1 keeps key 0 free as the empty marker. */
static uint64_t key(uint32_t parent, int32_t cp)
{
    return (((uint64_t)parent << 21) | (uint32_t)cp) + 1;
}

static uint32_t slot_of(uint64_t k, uint32_t mask)
{
    k *= 0x9e3779b97f4a7c15ull;
    return (uint32_t)(k >> 32) & mask;
}

static int64_t find_child(const use_tokenizer *t, uint32_t parent, int32_t cp)
{
    uint64_t k = key(parent, cp);
    for (uint32_t i = slot_of(k, t->mask);; i = (i + 1) & t->mask) {
        if (t->keys[i] == k) return t->child[i];
        if (t->keys[i] == 0) return -1;
    }
}

void br__use_tokenizer_free(use_tokenizer *t)
{
    if (!t) return;
    br_free(t->nodes);
    br_free(t->keys);
    br_free(t->child);
    br_free(t->u16len);
    br_free(t);
}

br_status br__use_tokenizer_create(const use_model *m, use_tokenizer **out)
{
    *out = NULL;
    use_tokenizer *t = br_calloc(1, sizeof *t);
    if (!t) return br_error(BR_ENOMEM, "tokenizer");
    uint32_t V = m->vocab_size;
    size_t total = m->piece_off[V]; /* an upper bound on trie edges */
    uint32_t cap = 1024;
    while (cap < 2 * total + 2) cap *= 2;
    t->vocab = V;
    t->mask = cap - 1;
    t->nodes = br_malloc((total + 1) * sizeof *t->nodes);
    t->keys = br_calloc(cap, sizeof *t->keys);
    t->child = br_malloc(cap * sizeof *t->child);
    t->u16len = br_calloc(V, 1);
    if (!t->nodes || !t->keys || !t->child || !t->u16len) {
        br__use_tokenizer_free(t);
        return br_error(BR_ENOMEM, "tokenizer");
    }
    t->nodes[0] = (trie_node){0.0, -1};
    t->n_nodes = 1;
    for (uint32_t id = 0; id < V; id++) {
        const uint8_t *p = (const uint8_t *)m->piece_bytes + m->piece_off[id];
        utf8proc_ssize_t len = (utf8proc_ssize_t)(m->piece_off[id + 1] - m->piece_off[id]);
        uint32_t node = 0, u16 = 0;
        utf8proc_ssize_t i = 0;
        while (i < len) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate(p + i, len - i, &cp);
            if (k <= 0) {
                br__use_tokenizer_free(t);
                return br_error(BR_EFORMAT, "use-lite vocabulary: piece %u is not UTF-8", id);
            }
            i += k;
            u16 += cp > 0xFFFF ? 2 : 1;
            if (id < RESERVED) continue; /* only its length matters */
            int64_t c = find_child(t, node, cp);
            if (c < 0) {
                uint64_t kk = key(node, cp);
                uint32_t s = slot_of(kk, t->mask);
                while (t->keys[s]) s = (s + 1) & t->mask;
                t->keys[s] = kk;
                t->child[s] = t->n_nodes;
                t->nodes[t->n_nodes] = (trie_node){0.0, -1};
                c = t->n_nodes++;
            }
            node = (uint32_t)c;
        }
        /* The JavaScript length is what the backtrack subtracts; a piece
         * longer than 255 UTF-16 units does not occur (and is refused). */
        if (u16 == 0 || u16 > 255) {
            br__use_tokenizer_free(t);
            return br_error(BR_EFORMAT, "use-lite vocabulary: piece %u empty or too long", id);
        }
        t->u16len[id] = (uint8_t)u16;
        if (id >= RESERVED && node != 0) {
            t->nodes[node].score = m->scores[id];
            t->nodes[node].id = (int32_t)id;
        }
    }
    *out = t;
    return BR_OK;
}

char *br__use_utf8_sanitize(const char *s, size_t len, size_t *out_len)
{
    const uint8_t *p = (const uint8_t *)s;
    /* Worst case: every byte becomes U+FFFD (3 bytes). */
    if (len > (SIZE_MAX - 1) / 3) return NULL;
    uint8_t *o = br_malloc(3 * len + 1), *w = o;
    if (!o) return NULL;
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c < 0x80) {
            *w++ = c;
            i++;
            continue;
        }
        /* Expected continuation count and the allowed range of the first
         * continuation byte (it excludes overlongs and surrogates). */
        int need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            need = 0; /* 0x80-0xC1, 0xF5-0xFF: never valid */
        }
        size_t j = i + 1;
        int ok = need > 0;
        for (int k = 0; k < need && ok; k++, j++) {
            if (j >= len || p[j] < lo || p[j] > hi) {
                ok = 0;
                break;
            }
            lo = 0x80, hi = 0xBF;
        }
        if (ok) {
            memcpy(w, p + i, j - i);
            w += j - i;
            i = j;
        } else {
            /* Maximal subpart: skip the lead byte and the continuation
             * bytes that were valid so far, emit one U+FFFD. */
            *w++ = 0xEF, *w++ = 0xBF, *w++ = 0xBD;
            i = need > 0 ? j : i + 1;
        }
    }
    *w = '\0';
    *out_len = (size_t)(w - o);
    return (char *)o;
}

/* NFKC of valid UTF-8 into code points (br_malloc'd), as JavaScript's
 * normalize("NFKC"). */
static br_status nfkc(const char *s, size_t len, int32_t **out, size_t *n)
{
    const utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE;
    *out = NULL;
    *n = 0;
    if (len == 0) return BR_OK;
    utf8proc_ssize_t cap = (utf8proc_ssize_t)len + 8;
    for (;;) {
        int32_t *buf = br_malloc((size_t)cap * sizeof *buf);
        if (!buf) return br_error(BR_ENOMEM, "normalising text");
        utf8proc_ssize_t r =
            utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, buf, cap, opt);
        if (r < 0) {
            br_free(buf);
            return br_error(BR_EINTERNAL, "utf8proc: %s", utf8proc_errmsg(r));
        }
        if (r > cap) { /* decomposition longer than guessed: retry */
            br_free(buf);
            cap = r;
            continue;
        }
        r = utf8proc_normalize_utf32(buf, r, opt);
        if (r < 0) {
            br_free(buf);
            return br_error(BR_EINTERNAL, "utf8proc: %s", utf8proc_errmsg(r));
        }
        *out = buf;
        *n = (size_t)r;
        return BR_OK;
    }
}

br_status br__use_tokenizer_encode(const use_tokenizer *t, const char *text, size_t len,
                                   int32_t **ids, size_t *n_ids)
{
    *ids = NULL;
    *n_ids = 0;
    size_t clen;
    char *clean = br__use_utf8_sanitize(text, len, &clen);
    if (!clean) return br_error(BR_ENOMEM, "tokenizing");
    int32_t *cps;
    size_t ncp;
    br_status st = nfkc(clean, clen, &cps, &ncp);
    br_free(clean);
    if (st != BR_OK) return st;
    if (ncp == 0) {
        br_free(cps);
        return BR_OK; /* "" after normalisation: no symbols, no tokens */
    }

    /* Symbols: "▁" + text with ' ' -> "▁". */
    size_t N = ncp + 1;
    int32_t *sym = br_malloc(N * sizeof *sym);
    double *best = br_calloc(N + 1, sizeof *best);
    int32_t *words = br_calloc(N + 1, sizeof *words);
    int32_t *res = br_malloc(N * sizeof *res);
    if (!sym || !best || !words || !res) {
        br_free(cps), br_free(sym), br_free(best), br_free(words), br_free(res);
        return br_error(BR_ENOMEM, "tokenizing");
    }
    sym[0] = SPACE_MARK;
    for (size_t i = 0; i < ncp; i++) sym[i + 1] = cps[i] == ' ' ? SPACE_MARK : cps[i];
    br_free(cps);

    /* Forward relaxation in order of start position visits each end
     * position's candidates in the order the reference does (ascending
     * start), and best[start] is final when its candidates are relaxed. */
    for (size_t i = 0; i < N; i++) {
        int found = 0;
        int64_t node = find_child(t, 0, sym[i]);
        for (size_t j = i; node >= 0;) {
            const trie_node *tn = &t->nodes[node];
            if (tn->id >= 0) {
                size_t e = j + 1;
                double sc = tn->score + best[i];
                if (best[e] == 0 || sc >= best[e]) best[e] = sc, words[e] = tn->id;
                found = 1;
            }
            if (++j >= N) break;
            node = find_child(t, (uint32_t)node, sym[j]);
        }
        if (!found) {
            double sc = 0.0 + best[i];
            if (best[i + 1] == 0 || sc >= best[i + 1]) best[i + 1] = sc, words[i + 1] = 0;
        }
    }

    /* Backtrack (by the JavaScript length of each piece), collapsing runs of
     * unknowns; res is in reverse order until the final flip. */
    size_t n = 0;
    int prev_unk = 0;
    for (int64_t it = (int64_t)N; it > 0;) {
        int32_t id = words[it];
        if (!(prev_unk && id == 0)) res[n++] = id;
        prev_unk = id == 0;
        it -= t->u16len[id];
    }
    for (size_t i = 0; i < n / 2; i++) {
        int32_t tmp = res[i];
        res[i] = res[n - 1 - i];
        res[n - 1 - i] = tmp;
    }
    br_free(sym);
    br_free(best);
    br_free(words);
    *ids = res;
    *n_ids = n;
    return BR_OK;
}
