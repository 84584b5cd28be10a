/*
 * lexical.c: the sparse lexical model of the catalogue (lexical.h). The
 * sentence encoder reads a book's text as one blurred meaning; what
 * readers follow is sharper: the same author, the next book of a series, a
 * shelf tag. Each book becomes a TF-IDF row: per field, 1 + ln(count)
 * times the field's weight, summed over fields, times the smoothed idf,
 * L2-normalised, so a dot product of two rows is their cosine.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "bookrec/core.h"
#include "content/lexical.h"

void br__lex_options_default(br__lex_options *o)
{
    memset(o, 0, sizeof *o);
    /* goodbooks validation NDCG@10 of the content engine (docs/content.md):
     * all 1: 0.054; author and series 4: 0.101; 8, with tags 0.5 and tag
     * words and description 0.25: 0.112 */
    o->field[BR__LEX_TITLE] = 1.0f;
    o->field[BR__LEX_AUTHOR] = 8.0f;
    o->field[BR__LEX_SERIES] = 8.0f;
    o->field[BR__LEX_TAG] = 0.5f;
    o->field[BR__LEX_TAGWORD] = 0.25f;
    o->field[BR__LEX_DESC] = 0.25f;
    o->other_authors = 0.5f;
    o->min_df = 2;
    o->max_df = 0.5f;
}

/* ------------------------------------------------------------ tokens -- */

/* Short English function words (sorted: bsearch). */
static const char *const stopwords[] = {
    "about", "after", "again",  "all",    "also",  "an",    "and",   "any",     "are",  "as",
    "at",    "be",    "been",   "before", "being", "both",  "but",   "by",      "can",  "could",
    "did",   "do",    "does",   "down",   "each",  "even",  "ever",  "every",   "for",  "from",
    "had",   "has",   "have",   "he",     "her",   "here",  "hers",  "him",     "his",  "how",
    "if",    "in",    "into",   "is",     "it",    "its",   "just",  "may",     "me",   "more",
    "most",  "much",  "must",   "my",     "no",    "nor",   "not",   "now",     "of",   "off",
    "on",    "once",  "one",    "only",   "or",    "other", "our",   "out",     "over", "own",
    "same",  "she",   "should", "so",     "some",  "such",  "than",  "that",    "the",  "their",
    "them",  "then",  "there",  "these",  "they",  "this",  "those", "through", "to",   "too",
    "under", "until", "up",     "upon",   "us",    "very",  "was",   "we",      "were", "what",
    "when",  "where", "which",  "while",  "who",   "whom",  "whose", "why",     "will", "with",
    "would", "yet",   "you",    "your",
};

static int cmp_word(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_stop(const char *tok, size_t n)
{
    char w[16];
    if (n > 7) return 0; /* the longest stopword: "through" */
    memcpy(w, tok, n);
    w[n] = 0;
    const char *k = w;
    return bsearch(&k, stopwords, sizeof stopwords / sizeof *stopwords, sizeof *stopwords,
                   cmp_word) != NULL;
}

void br__lex_tokens(const char *s, size_t len, uint32_t min_len, int skip_stop,
                    void (*emit)(void *ctx, const char *tok, size_t n), void *ctx)
{
    char buf[256];
    size_t bn = 0;
    uint32_t cps = 0;
    utf8proc_ssize_t pos = 0;
    while (1) {
        utf8proc_int32_t c = -1;
        utf8proc_ssize_t k = 0;
        unsigned char a = (size_t)pos < len ? (unsigned char)s[pos] : 0;
        if ((size_t)pos < len && a < 0x80) { /* ASCII without utf8proc: most of the text */
            int al = (a >= 'a' && a <= 'z') || (a >= '0' && a <= '9');
            if (a >= 'A' && a <= 'Z') a = (unsigned char)(a + 32), al = 1;
            if (al) {
                if (bn < sizeof buf) buf[bn++] = (char)a;
                cps++;
                pos++;
                continue;
            }
            k = 1; /* a separator */
        } else if ((size_t)pos < len) {
            k = utf8proc_iterate((const utf8proc_uint8_t *)s + pos,
                                 (utf8proc_ssize_t)(len - (size_t)pos), &c);
            if (k <= 0) k = 1, c = -1; /* an invalid byte separates */
        }
        int word = 0;
        if (c >= 0) {
            utf8proc_category_t cat = utf8proc_category(c);
            word = (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
                   (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
        }
        if (word) {
            utf8proc_uint8_t enc[4];
            utf8proc_ssize_t e = utf8proc_encode_char(utf8proc_tolower(c), enc);
            if (bn + (size_t)e <= sizeof buf) { /* a longer token is cut, not split */
                memcpy(buf + bn, enc, (size_t)e);
                bn += (size_t)e;
            }
            cps++;
        } else {
            if (bn && cps >= min_len && !(skip_stop && is_stop(buf, bn))) emit(ctx, buf, bn);
            bn = 0;
            cps = 0;
            if ((size_t)pos >= len) break;
        }
        pos += k;
    }
}

/* ------------------------------------------------------------ series -- */

int br__lex_series(const char *title, char *name, size_t cap, float *index, size_t *bare)
{
    size_t n = strlen(title);
    while (n && title[n - 1] == ' ') n--;
    *bare = strlen(title);
    if (cap) name[0] = 0;
    *index = NAN;
    if (!n || title[n - 1] != ')') return 0;
    /* the '(' that matches the last ')' (a name may hold parentheses) */
    size_t open = n - 1;
    int depth = 0;
    for (;; open--) {
        depth += title[open] == ')' ? 1 : title[open] == '(' ? -1 : 0;
        if (depth == 0) break;
        if (open == 0) return 0;
    }
    if (open == 0) return 0; /* the whole title in parentheses: no bare title */
    const char *in = title + open + 1, *end = title + n - 1;
    const char *hash = NULL;
    for (const char *p = in; p < end; p++)
        if (*p == '#') hash = p;
    if (!hash) return 0;
    const char *ne = hash;
    while (ne > in && (ne[-1] == ' ' || ne[-1] == ',')) ne--;
    const char *nb = in;
    while (nb < ne && *nb == ' ') nb++;
    if (nb == ne) return 0;
    size_t nl = (size_t)(ne - nb);
    if (cap) {
        if (nl > cap - 1) nl = cap - 1;
        memcpy(name, nb, nl);
        name[nl] = 0;
    }
    char *stop = NULL;
    double v = strtod(hash + 1, &stop);
    if (stop != hash + 1 && stop <= end) *index = (float)v;
    size_t b = open;
    while (b && title[b - 1] == ' ') b--;
    *bare = b;
    return 1;
}

/* ------------------------------------------------------------- build -- */

typedef struct occ {
    uint32_t term;
    uint32_t field; /* with the author's weight factor folded in: field * 2 + other */
} occ;

typedef struct collect {
    br_idmap *vocab;
    occ *v;
    size_t n, cap;
    uint32_t field;
    const char *prefix; /* identity features: the prefix and the joined tokens */
    char key[512];
    size_t kn;
    br_status st;
    const br__lex_options *o;
} collect;

static void push_term(collect *c, const char *s, size_t n)
{
    if (c->st || !(c->o->field[c->field / 2] > 0)) return; /* a field left out */
    uint32_t t;
    if ((c->st = br_idmap_intern(c->vocab, s, n, &t, NULL))) return;
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 256;
        occ *nv = br_realloc(c->v, nc * sizeof *nv);
        if (!nv) {
            c->st = br_error(BR_ENOMEM, "lexical model");
            return;
        }
        c->v = nv;
        c->cap = nc;
    }
    c->v[c->n++] = (occ){t, c->field};
}

static void emit_word(void *ctx, const char *tok, size_t n)
{
    push_term(ctx, tok, n);
}

/* Identity features: the tokens of a name joined by '_' after a prefix. */
static void emit_key(void *ctx, const char *tok, size_t n)
{
    collect *c = ctx;
    if (c->kn + n + 1 >= sizeof c->key) return;
    if (c->kn > strlen(c->prefix)) c->key[c->kn++] = '_';
    memcpy(c->key + c->kn, tok, n);
    c->kn += n;
}

static void push_key(collect *c, const char *prefix, const char *s, size_t n)
{
    c->prefix = prefix;
    c->kn = strlen(prefix);
    memcpy(c->key, prefix, c->kn);
    br__lex_tokens(s, n, 1, 0, emit_key, c);
    if (c->kn > strlen(prefix)) push_term(c, c->key, c->kn);
}

static int cmp_occ(const void *a, const void *b)
{
    const occ *x = a, *y = b;
    if (x->term != y->term) return x->term < y->term ? -1 : 1;
    return x->field < y->field ? -1 : x->field > y->field;
}

/* One book's terms, appended to c->v. */
static void book_terms(collect *c, const br_book *bk)
{
    char series[256];
    float idx;
    size_t bare;
    c->field = BR__LEX_TITLE * 2;
    int has = br__lex_series(bk->title, series, sizeof series, &idx, &bare);
    br__lex_tokens(bk->title, bare, 2, 1, emit_word, c);
    if (has) {
        c->field = BR__LEX_SERIES * 2;
        push_key(c, "s:", series, strlen(series));
    }
    const char *a = bk->authors;
    for (int first = 1; a && *a; first = 0) {
        const char *e = strchr(a, ',');
        size_t n = e ? (size_t)(e - a) : strlen(a);
        c->field = BR__LEX_AUTHOR * 2 + !first;
        push_key(c, "a:", a, n);
        a = e ? e + 1 : NULL;
    }
    const char *t = bk->tags;
    while (t && *t) {
        const char *e = strchr(t, '|');
        size_t n = e ? (size_t)(e - t) : strlen(t);
        c->field = BR__LEX_TAG * 2;
        push_key(c, "t:", t, n);
        c->field = BR__LEX_TAGWORD * 2;
        br__lex_tokens(t, n, 2, 1, emit_word, c);
        t = e ? e + 1 : NULL;
    }
    c->field = BR__LEX_DESC * 2;
    if (bk->description)
        br__lex_tokens(bk->description, strlen(bk->description), 2, 1, emit_word, c);
}

void br__lex_free(br__lex *m)
{
    if (!m) return;
    br_csr_free(&m->x);
    br_csr_free(&m->xt);
    br_idmap_free(m->vocab);
    br_free(m->idf);
    br_free(m);
}

br_status br__lex_build(const br_catalog *cat, const br__lex_options *o, br__lex **out)
{
    *out = NULL;
    uint32_t nb = br_catalog_count(cat);
    br__lex *m = br_calloc(1, sizeof *m);
    collect c = {.o = o};
    size_t *start = br_malloc(((size_t)nb + 1) * sizeof *start);
    uint32_t *df = NULL, *remap = NULL, *ri = NULL, *ci = NULL;
    float *val = NULL;
    br_status st = BR_OK;
    if (!m || !start) {
        st = br_error(BR_ENOMEM, "lexical model");
        goto done;
    }
    if ((st = br_idmap_create(&c.vocab)) || (st = br_idmap_create(&m->vocab))) goto done;
    /* Every book's (term, field) occurrences, sorted per book. */
    for (uint32_t b = 0; b < nb && !c.st; b++) {
        start[b] = c.n;
        book_terms(&c, br_catalog_book(cat, b));
        /* (c.v is NULL until a first term: qsort's pointer must not be) */
        if (c.n > start[b]) qsort(c.v + start[b], c.n - start[b], sizeof *c.v, cmp_occ);
    }
    start[nb] = c.n;
    if ((st = c.st)) goto done;
    uint32_t nv = br_idmap_count(c.vocab);
    df = br_calloc((size_t)nv + 1, sizeof *df);
    remap = br_malloc(((size_t)nv + 1) * sizeof *remap);
    if (!df || !remap) {
        st = br_error(BR_ENOMEM, "lexical model");
        goto done;
    }
    for (uint32_t b = 0; b < nb; b++)
        for (size_t q = start[b]; q < start[b + 1]; q++)
            if (q == start[b] || c.v[q].term != c.v[q - 1].term) df[c.v[q].term]++;
    double maxdf = (double)o->max_df * nb;
    uint32_t kept = 0;
    for (uint32_t t = 0; t < nv; t++) {
        remap[t] = UINT32_MAX;
        if (df[t] < o->min_df || (o->max_df > 0 && df[t] > maxdf && df[t] > 1)) continue;
        const char *s = br_idmap_name(c.vocab, t);
        if ((st = br_idmap_intern(m->vocab, s, strlen(s), &remap[t], NULL))) goto done;
        kept++;
    }
    m->idf = br_malloc(((size_t)kept + 1) * sizeof *m->idf);
    ri = br_malloc((c.n + 1) * sizeof *ri);
    ci = br_malloc((c.n + 1) * sizeof *ci);
    val = br_malloc((c.n + 1) * sizeof *val);
    if (!m->idf || !ri || !ci || !val) {
        st = br_error(BR_ENOMEM, "lexical model");
        goto done;
    }
    for (uint32_t t = 0; t < nv; t++)
        if (remap[t] != UINT32_MAX)
            m->idf[remap[t]] = (float)(log((1.0 + nb) / (1.0 + df[t])) + 1.0);
    /* Weights: per field 1 + ln(count) times the field's weight. */
    size_t nnz = 0;
    for (uint32_t b = 0; b < nb; b++) {
        size_t row0 = nnz;
        for (size_t q = start[b]; q < start[b + 1];) {
            uint32_t t = c.v[q].term;
            double w = 0;
            while (q < start[b + 1] && c.v[q].term == t) {
                uint32_t f = c.v[q].field;
                size_t r = q;
                while (q < start[b + 1] && c.v[q].term == t && c.v[q].field == f) q++;
                double fw = o->field[f / 2] * (f % 2 ? o->other_authors : 1.0f);
                w += fw * (1.0 + log((double)(q - r)));
            }
            if (remap[t] == UINT32_MAX || !(w > 0)) continue;
            ri[nnz] = b;
            ci[nnz] = remap[t];
            val[nnz] = (float)(w * m->idf[remap[t]]);
            nnz++;
        }
        double s2 = 0;
        for (size_t q = row0; q < nnz; q++) s2 += (double)val[q] * val[q];
        if (s2 > 0)
            for (size_t q = row0; q < nnz; q++) val[q] = (float)(val[q] / sqrt(s2));
    }
    if ((st = br_csr_from_coo(nb, kept, nnz, ri, ci, val, &m->x))) goto done;
    st = br_csr_transpose(&m->x, &m->xt);
done:
    br_idmap_free(c.vocab);
    br_free(c.v);
    br_free(start);
    br_free(df);
    br_free(remap);
    br_free(ri);
    br_free(ci);
    br_free(val);
    if (st)
        br__lex_free(m);
    else
        *out = m;
    return st;
}

/* ----------------------------------------------------------- profiles -- */

/* The k-th largest (1-based) of v[0..n), 1 <= k <= n: quickselect in
 * place (Lomuto, middle pivot). */
static float kth_largest(float *v, uint32_t n, uint32_t k)
{
    uint32_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2, st = lo;
        float t = v[mid];
        v[mid] = v[hi];
        v[hi] = t;
        float piv = v[hi];
        for (uint32_t i = lo; i < hi; i++)
            if (v[i] > piv) t = v[i], v[i] = v[st], v[st++] = t;
        t = v[st], v[st] = v[hi], v[hi] = t;
        if (st == want) return v[st];
        if (st < want)
            lo = st + 1;
        else
            hi = st - 1;
    }
    return v[lo];
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

uint32_t br__lex_profile(const br__lex *m, const uint32_t *books, const float *w, size_t n,
                         uint32_t max_terms, float *acc, uint32_t *terms, float *vals)
{
    uint32_t nt = 0;
    for (size_t q = 0; q < n; q++) {
        const br_csr *x = &m->x;
        for (uint64_t e = x->indptr[books[q]]; e < x->indptr[books[q] + 1]; e++) {
            uint32_t t = x->indices[e];
            if (acc[t] == 0) terms[nt++] = t; /* a sum back at 0: listed again, merged below */
            acc[t] += w[q] * x->values[e];
        }
    }
    /* Unique terms: acc[t] is taken once (reset as read). */
    uint32_t u = 0;
    for (uint32_t p = 0; p < nt; p++) {
        uint32_t t = terms[p];
        if (acc[t] == 0) continue;
        vals[u] = acc[t];
        terms[u++] = t;
        acc[t] = 0;
    }
    if (max_terms && u > max_terms) {
        for (uint32_t p = 0; p < u; p++) acc[p] = fabsf(vals[p]); /* acc as scratch, zeroed below */
        float thr = kth_largest(acc, u, max_terms);
        memset(acc, 0, u * sizeof *acc);
        uint32_t k = 0;
        for (uint32_t p = 0; p < u && k < max_terms; p++)
            if (fabsf(vals[p]) > thr) terms[k] = terms[p], vals[k++] = vals[p];
        for (uint32_t p = 0; p < u && k < max_terms; p++)
            if (fabsf(vals[p]) == thr) terms[k] = terms[p], vals[k++] = vals[p];
        u = k;
    }
    /* Sorted by term (dot products merge), normalised. */
    for (uint32_t p = 0; p < u; p++) acc[terms[p]] = vals[p];
    qsort(terms, u, sizeof *terms, cmp_u32);
    double s2 = 0;
    for (uint32_t p = 0; p < u; p++) {
        vals[p] = acc[terms[p]];
        acc[terms[p]] = 0;
        s2 += (double)vals[p] * vals[p];
    }
    if (s2 > 0)
        for (uint32_t p = 0; p < u; p++) vals[p] = (float)(vals[p] / sqrt(s2));
    return u;
}

void br__lex_scores(const br__lex *m, const uint32_t *terms, const float *vals, uint32_t n,
                    float scale, float *s)
{
    const br_csr *xt = &m->xt;
    for (uint32_t p = 0; p < n; p++) {
        float v = scale * vals[p];
        uint32_t t = terms[p];
        for (uint64_t e = xt->indptr[t]; e < xt->indptr[t + 1]; e++)
            s[xt->indices[e]] += v * xt->values[e];
    }
}

float br__lex_dot(const br__lex *m, const uint32_t *terms, const float *vals, uint32_t n,
                  uint32_t b)
{
    const br_csr *x = &m->x;
    uint64_t e = x->indptr[b], end = x->indptr[b + 1];
    uint32_t p = 0;
    float s = 0;
    while (p < n && e < end) {
        if (terms[p] < x->indices[e])
            p++;
        else if (terms[p] > x->indices[e])
            e++;
        else
            s += vals[p++] * x->values[e++];
    }
    return s;
}

void br__lex_scores_ref(const br__lex *m, const uint32_t *terms, const float *vals, uint32_t n,
                        float scale, float *s)
{
    for (uint32_t b = 0; b < m->x.rows; b++) s[b] += scale * br__lex_dot(m, terms, vals, n, b);
}
