/*
 * wordpiece.c: BERT WordPiece tokenization (see wordpiece.h for the pipeline).
 *
 * The reference is the transformers.js tokenizer (the same code
 * ../shared/reference/minilm/wordpiece_reference.js runs), which in turn
 * mirrors Hugging Face `tokenizers`. Its JavaScript details are part of the
 * contract and are reproduced on purpose:
 *   - the CJK test walks UTF-16 code units, so only BMP ideographs get spaces
 *     around them (an ideograph outside the BMP stays inside its word);
 *   - "whitespace" is JavaScript's \s (Unicode Zs plus TAB, LF, VT, FF, CR,
 *     U+2028, U+2029, U+FEFF), and control means categories Cc/Cf/Co/Cs;
 *   - lowercasing is String.prototype.toLowerCase: the full Unicode mapping,
 *     so U+0130 becomes "i" + U+0307 and capital sigma becomes final sigma at
 *     the end of a word (the Final_Sigma context);
 *   - accents are stripped by NFD and removing category Mn;
 *   - Unicode data is utf8proc's (15.0) completed by wordpiece_unicode.h with
 *     the characters Unicode 17 (the reference's Node) added since;
 *   - added tokens ([CLS], [SEP], ...) are cut out of the raw text first,
 *     longest match at each position, before any normalisation.
 * Text is processed as code points (uint32); pieces are looked up as UTF-8
 * bytes in an open-addressing hash table.
 */
#include "text/wordpiece.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/hash.h"
#include "text/wordpiece_unicode.h"

#define MAX_ADDED 64

typedef struct added_token {
    char *s;
    size_t len;
    int32_t id;
} added_token;

struct wordpiece {
    wp_config cfg;
    int strip;       /* resolved strip_accents */
    char prefix[16]; /* continuing-subword prefix, "##" */
    size_t prefix_len;
    size_t n;       /* pieces */
    char *bytes;    /* all pieces, back to back */
    size_t *off;    /* piece i = bytes[off[i], off[i+1]) */
    int32_t *slots; /* hash table of ids, -1 empty */
    size_t mask;
    size_t max_piece; /* longest piece in bytes */
    int32_t cls, sep, unk, pad;
    size_t n_added;
    added_token added[MAX_ADDED];
};

/* ------------------------------------------------------------- the vocab -- */

/* The table lives in memory only (built at load), so its hash may change
 * freely: a lookup compares the piece itself, and equal pieces keep their
 * insertion order along a probe chain whatever the hash. */
static uint64_t hash_bytes(const char *s, size_t n)
{
    return br__fnv1a64_update(BR__FNV1A64_INIT, s, n);
}

int32_t br__wordpiece_id(const wordpiece *wp, const char *piece, size_t len)
{
    if (len > wp->max_piece) return -1;
    size_t i = (size_t)hash_bytes(piece, len) & wp->mask;
    for (;;) {
        int32_t id = wp->slots[i];
        if (id < 0) return -1;
        size_t pl = wp->off[id + 1] - wp->off[id];
        if (pl == len && !memcmp(wp->bytes + wp->off[id], piece, len)) return id;
        i = (i + 1) & wp->mask;
    }
}

void br__wordpiece_free(wordpiece *wp)
{
    if (!wp) return;
    br_free(wp->bytes);
    br_free(wp->off);
    br_free(wp->slots);
    for (size_t i = 0; i < wp->n_added; i++) br_free(wp->added[i].s);
    br_free(wp);
}

static br_status add_added(wordpiece *wp, const char *s, int32_t id)
{
    for (size_t i = 0; i < wp->n_added; i++)
        if (!strcmp(wp->added[i].s, s)) {
            wp->added[i].id = id;
            return BR_OK;
        }
    if (wp->n_added == MAX_ADDED)
        return br_error(BR_EUNSUPPORTED, "more than %d added tokens", MAX_ADDED);
    if (!*s) return BR_OK;
    added_token *a = &wp->added[wp->n_added];
    a->s = br_strdup(s);
    if (!a->s) return br_error(BR_ENOMEM, "added token");
    a->len = strlen(s);
    a->id = id;
    wp->n_added++;
    return BR_OK;
}

/* Builds the table from n pieces; ids are indices. Later duplicates lose
 * (the first id of a piece wins, as in a vocab.txt read top to bottom). */
static br_status build(wordpiece *wp, const char *const *pieces, const size_t *lens, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += lens[i];
    wp->n = n;
    wp->bytes = br_malloc(total ? total : 1);
    wp->off = br_malloc((n + 1) * sizeof *wp->off);
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    wp->slots = br_malloc(cap * sizeof *wp->slots);
    if (!wp->bytes || !wp->off || !wp->slots) return br_error(BR_ENOMEM, "vocabulary");
    wp->mask = cap - 1;
    memset(wp->slots, 0xff, cap * sizeof *wp->slots);
    size_t o = 0;
    wp->max_piece = 0;
    for (size_t i = 0; i < n; i++) {
        wp->off[i] = o;
        memcpy(wp->bytes + o, pieces[i], lens[i]);
        o += lens[i];
        if (lens[i] > wp->max_piece) wp->max_piece = lens[i];
    }
    wp->off[n] = o;
    for (size_t i = 0; i < n; i++) {
        if (br__wordpiece_id(wp, pieces[i], lens[i]) >= 0) continue;
        size_t h = (size_t)hash_bytes(pieces[i], lens[i]) & wp->mask;
        while (wp->slots[h] >= 0) h = (h + 1) & wp->mask;
        wp->slots[h] = (int32_t)i;
    }
    wp->cls = br__wordpiece_id(wp, "[CLS]", 5);
    wp->sep = br__wordpiece_id(wp, "[SEP]", 5);
    wp->unk = br__wordpiece_id(wp, "[UNK]", 5);
    wp->pad = br__wordpiece_id(wp, "[PAD]", 5);
    if (wp->unk < 0) return br_error(BR_EFORMAT, "vocabulary has no [UNK]");
    if (wp->cls < 0 || wp->sep < 0) return br_error(BR_EFORMAT, "vocabulary has no [CLS]/[SEP]");
    return BR_OK;
}

static void resolve_cfg(wordpiece *wp, const wp_config *cfg)
{
    wp_config d = WP_CONFIG_DEFAULT;
    wp->cfg = cfg ? *cfg : d;
    if (wp->cfg.max_word_chars <= 0) wp->cfg.max_word_chars = 100;
    /* transformers.js: lowercase strips accents unless strip_accents is
     * false; without lowercase only strip_accents = true strips. */
    wp->strip = wp->cfg.lowercase ? wp->cfg.strip_accents != 0 : wp->cfg.strip_accents == 1;
    memcpy(wp->prefix, "##", 3);
    wp->prefix_len = 2;
}

/* The five BERT specials are never split when the vocabulary has them. */
static br_status add_default_specials(wordpiece *wp)
{
    static const char *const sp[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (size_t i = 0; i < 5; i++) {
        int32_t id = br__wordpiece_id(wp, sp[i], strlen(sp[i]));
        if (id >= 0) {
            br_status s = add_added(wp, sp[i], id);
            if (s != BR_OK) return s;
        }
    }
    return BR_OK;
}

br_status br__wordpiece_create(const char *const *pieces, size_t n, const wp_config *cfg,
                           wordpiece **out)
{
    *out = NULL;
    wordpiece *wp = br_calloc(1, sizeof *wp);
    size_t *lens = br_malloc((n ? n : 1) * sizeof *lens);
    if (!wp || !lens) {
        br_free(wp), br_free(lens);
        return br_error(BR_ENOMEM, "tokenizer");
    }
    resolve_cfg(wp, cfg);
    for (size_t i = 0; i < n; i++) lens[i] = strlen(pieces[i]);
    br_status s = build(wp, pieces, lens, n);
    br_free(lens);
    if (s == BR_OK) s = add_default_specials(wp);
    if (s != BR_OK) {
        br__wordpiece_free(wp);
        return s;
    }
    *out = wp;
    return BR_OK;
}

br_status br__wordpiece_load_vocab(const char *path, const wp_config *cfg, wordpiece **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return br_error(errno == ENOENT ? BR_ENOTFOUND : BR_EIO, "%s: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            cap = (len + 65536 + 1) * 2;
            char *t = br_realloc(text, cap);
            if (!t) {
                br_free(text);
                fclose(f);
                return br_error(BR_ENOMEM, "%s", path);
            }
            text = t;
        }
        size_t r = fread(text + len, 1, 65536, f);
        len += r;
        if (r < 65536) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        br_free(text);
        return br_error(BR_EIO, "%s: read error", path);
    }
    text[len] = '\0';
    /* One piece per line; "\r\n" endings tolerated; a final newline does not
     * make an empty last piece. */
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    if (len && text[len - 1] != '\n') n++;
    const char **pieces = br_malloc((n ? n : 1) * sizeof *pieces);
    if (!pieces) {
        br_free(text);
        return br_error(BR_ENOMEM, "%s", path);
    }
    size_t k = 0;
    for (char *p = text; k < n; k++) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r') p[l - 1] = '\0';
        pieces[k] = p;
        p = nl ? nl + 1 : p + l;
    }
    br_status s = br__wordpiece_create(pieces, n, cfg, out);
    br_free(pieces);
    br_free(text);
    if (s != BR_OK) {
        char why[256]; /* the detail buffer is the one br_error writes */
        snprintf(why, sizeof why, "%s", br_error_detail());
        return br_error(s, "%s: %s", path, why);
    }
    return BR_OK;
}

static int json_flag(json_t *obj, const char *key, int dflt)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_boolean(v)) return json_is_true(v);
    return dflt;
}

br_status br__wordpiece_load_json(const char *path, wordpiece **out)
{
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        FILE *f = fopen(path, "rb");
        if (!f) return br_error(BR_ENOTFOUND, "%s: %s", path, strerror(errno));
        fclose(f);
        return br_error(BR_EPARSE, "%s:%d: %s", path, jerr.line, jerr.text);
    }
    br_status s = BR_OK;
    json_t *model = json_object_get(root, "model");
    json_t *vocab = json_object_get(model, "vocab");
    json_t *type = json_object_get(model, "type");
    json_t *norm = json_object_get(root, "normalizer");
    wp_config cfg = WP_CONFIG_DEFAULT;
    if (!json_is_object(vocab) ||
        (type && (!json_is_string(type) || strcmp(json_string_value(type), "WordPiece"))))
        s = br_error(BR_EUNSUPPORTED, "%s: not a WordPiece tokenizer", path);
    if (s == BR_OK && json_is_object(norm)) {
        json_t *nt = json_object_get(norm, "type");
        if (!json_is_string(nt) || strcmp(json_string_value(nt), "BertNormalizer"))
            s = br_error(BR_EUNSUPPORTED, "%s: normalizer '%s' (only BertNormalizer)", path,
                         json_is_string(nt) ? json_string_value(nt) : "?");
        cfg.clean_text = json_flag(norm, "clean_text", 1);
        cfg.chinese_chars = json_flag(norm, "handle_chinese_chars", 1);
        cfg.lowercase = json_flag(norm, "lowercase", 1);
        json_t *sa = json_object_get(norm, "strip_accents");
        cfg.strip_accents = json_is_boolean(sa) ? json_is_true(sa) : -1;
    } else if (s == BR_OK) {
        /* No normaliser at all: the text goes to the pre-tokenizer as is. */
        cfg.clean_text = cfg.chinese_chars = cfg.lowercase = 0;
        cfg.strip_accents = 0;
    }
    json_t *mx = json_object_get(model, "max_input_chars_per_word");
    if (json_is_integer(mx)) cfg.max_word_chars = (int)json_integer_value(mx);

    size_t n = 0;
    const char **pieces = NULL;
    size_t *lens = NULL;
    if (s == BR_OK) {
        const char *key;
        json_t *v;
        json_object_foreach(vocab, key, v)
        {
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > (1 << 24)) {
                s = br_error(BR_EFORMAT, "%s: vocab entry '%s' has a bad id", path, key);
                break;
            }
            if ((size_t)json_integer_value(v) + 1 > n) n = (size_t)json_integer_value(v) + 1;
        }
    }
    if (s == BR_OK) {
        pieces = br_calloc(n ? n : 1, sizeof *pieces);
        lens = br_calloc(n ? n : 1, sizeof *lens);
        if (!pieces || !lens) s = br_error(BR_ENOMEM, "%s", path);
    }
    if (s == BR_OK) {
        const char *key;
        json_t *v;
        json_object_foreach(vocab, key, v)
        {
            size_t id = (size_t)json_integer_value(v);
            if (pieces[id]) {
                s = br_error(BR_EFORMAT, "%s: id %zu used twice in vocab", path, id);
                break;
            }
            pieces[id] = key;
            lens[id] = json_object_iter_key_len(json_object_key_to_iter(key));
        }
        for (size_t i = 0; s == BR_OK && i < n; i++)
            if (!pieces[i]) s = br_error(BR_EFORMAT, "%s: vocab has no id %zu", path, i);
    }
    wordpiece *wp = NULL;
    if (s == BR_OK) {
        wp = br_calloc(1, sizeof *wp);
        if (!wp) s = br_error(BR_ENOMEM, "%s", path);
    }
    if (s == BR_OK) {
        resolve_cfg(wp, &cfg);
        json_t *pre = json_object_get(model, "continuing_subword_prefix");
        if (json_is_string(pre)) {
            size_t pl = json_string_length(pre);
            if (pl >= sizeof wp->prefix)
                s = br_error(BR_EUNSUPPORTED, "%s: subword prefix too long", path);
            else {
                memcpy(wp->prefix, json_string_value(pre), pl + 1);
                wp->prefix_len = pl;
            }
        }
    }
    if (s == BR_OK) s = build(wp, pieces, lens, n);
    if (s == BR_OK) {
        json_t *unk = json_object_get(model, "unk_token");
        if (json_is_string(unk)) {
            int32_t id = br__wordpiece_id(wp, json_string_value(unk), json_string_length(unk));
            if (id < 0) s = br_error(BR_EFORMAT, "%s: unk_token not in vocab", path);
            wp->unk = id;
        }
    }
    json_t *added = json_object_get(root, "added_tokens");
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a)
    {
        if (s != BR_OK) break;
        json_t *c = json_object_get(a, "content"), *id = json_object_get(a, "id");
        if (!json_is_string(c) || !json_is_integer(id) || json_integer_value(id) < 0 ||
            (size_t)json_integer_value(id) >= n) {
            s = br_error(BR_EFORMAT, "%s: added token %zu is malformed", path, i);
            break;
        }
        if (json_flag(a, "lstrip", 0) || json_flag(a, "rstrip", 0) ||
            json_flag(a, "single_word", 0))
            s = br_error(BR_EUNSUPPORTED, "%s: added token '%s' strips or matches single words",
                         path, json_string_value(c));
        else
            s = add_added(wp, json_string_value(c), (int32_t)json_integer_value(id));
    }
    br_free(pieces);
    br_free(lens);
    json_decref(root);
    if (s != BR_OK) {
        br__wordpiece_free(wp);
        return s;
    }
    *out = wp;
    return BR_OK;
}

size_t br__wordpiece_vocab_size(const wordpiece *wp)
{
    return wp ? wp->n : 0;
}

const char *br__wordpiece_piece(const wordpiece *wp, int32_t id, size_t *len)
{
    if (!wp || id < 0 || (size_t)id >= wp->n) return NULL;
    if (len) *len = wp->off[id + 1] - wp->off[id];
    return wp->bytes + wp->off[id];
}

int32_t br__wordpiece_cls(const wordpiece *wp)
{
    return wp->cls;
}
int32_t br__wordpiece_sep(const wordpiece *wp)
{
    return wp->sep;
}
int32_t br__wordpiece_unk(const wordpiece *wp)
{
    return wp->unk;
}
int32_t br__wordpiece_pad(const wordpiece *wp)
{
    return wp->pad;
}

/* ---------------------------------------------------------------- text ---- */

/* A growable code point buffer. */
typedef struct cpbuf {
    uint32_t *v;
    size_t n, cap;
} cpbuf;

static int cp_reserve(cpbuf *b, size_t extra)
{
    if (b->n + extra <= b->cap) return 0;
    size_t nc = (b->n + extra) * 2 + 16;
    uint32_t *nv = br_realloc(b->v, nc * sizeof *nv);
    if (!nv) return -1;
    b->v = nv, b->cap = nc;
    return 0;
}

static inline void cp_push(cpbuf *b, uint32_t c)
{
    b->v[b->n++] = c; /* caller reserved */
}

/* UTF-8 -> code points with the WHATWG decoder's error handling: each
 * maximal invalid subsequence becomes one U+FFFD (what Node's readFileSync
 * + JSON.parse hand the reference). */
static int decode_utf8(const unsigned char *s, size_t len, cpbuf *out)
{
    if (cp_reserve(out, len)) return -1;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            cp_push(out, c);
            i++;
            continue;
        }
        int need;
        uint32_t cp;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, cp = c & 0xf;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, cp = c & 0x7;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else {
            cp_push(out, 0xfffd);
            i++;
            continue;
        }
        size_t j = i + 1;
        int ok = 1;
        for (int k = 0; k < need; k++, j++) {
            if (j >= len || s[j] < lo || s[j] > hi) {
                ok = 0;
                break;
            }
            cp = cp << 6 | (s[j] & 0x3f);
            lo = 0x80, hi = 0xbf;
        }
        if (!ok) {
            cp_push(out, 0xfffd);
            i = j; /* the bytes consumed so far were a valid prefix */
            continue;
        }
        cp_push(out, cp);
        i = j;
    }
    return 0;
}

/* JavaScript's \s. */
static inline int is_js_space(uint32_t c)
{
    return (c >= 9 && c <= 13) || c == 0x20 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000 || c == 0xfeff;
}

/* The entry of the newer-Unicode table for c, or NULL. */
static const wpu_entry *wpu_find(uint32_t c)
{
    size_t lo = 0, hi = sizeof wpu_table / sizeof wpu_table[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (wpu_table[mid].cp == c) return &wpu_table[mid];
        if (wpu_table[mid].cp < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* utf8proc's general category, completed with the reference's newer
 * Unicode data (wordpiece_unicode.h) where utf8proc has none. */
static inline int category(uint32_t c)
{
    if (c > 0x10ffff) return UTF8PROC_CATEGORY_CN;
    int k = (int)utf8proc_category((utf8proc_int32_t)c);
    if (k != UTF8PROC_CATEGORY_CN && k != UTF8PROC_CATEGORY_MN) return k;
    const wpu_entry *e = wpu_find(c);
    if (!e) return k;
    switch (e->kind) {
    case WPU_MN:
        return UTF8PROC_CATEGORY_MN;
    case WPU_P:
        return UTF8PROC_CATEGORY_PO;
    case WPU_C:
        return UTF8PROC_CATEGORY_CF;
    case WPU_MC:
        return UTF8PROC_CATEGORY_MC;
    default:
        return e->lower ? UTF8PROC_CATEGORY_LU : UTF8PROC_CATEGORY_LO;
    }
}

static uint32_t to_lower(uint32_t c)
{
    uint32_t l = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
    if (l != c || utf8proc_category((utf8proc_int32_t)c) != UTF8PROC_CATEGORY_CN) return l;
    const wpu_entry *e = wpu_find(c);
    return e && e->lower ? e->lower : c;
}

static inline int is_control(uint32_t c)
{
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    if (c < 0x20) return 1;
    if (c < 0x7f) return 0;
    int k = category(c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CO ||
           k == UTF8PROC_CATEGORY_CS;
}

static inline int is_punct(uint32_t c)
{
    if (c < 0x80)
        return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
               (c >= 0x7b && c <= 0x7e);
    int k = category(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

/* BMP ideograph ranges only (see the top of the file). */
static inline int is_cjk_bmp(uint32_t c)
{
    return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) ||
           (c >= 0xf900 && c <= 0xfaff);
}

/* Unicode Case_Ignorable: Mn, Me, Cf, Lm, Sk and the word-internal
 * punctuation of Word_Break MidLetter / MidNumLet / Single_Quote. */
static int is_case_ignorable(uint32_t c)
{
    switch (c) {
    case 0x27:
    case 0x2e:
    case 0x3a:
    case 0xb7:
    case 0x387:
    case 0x55f:
    case 0x5f4:
    case 0x2018:
    case 0x2019:
    case 0x2024:
    case 0x2027:
    case 0xfe13:
    case 0xfe52:
    case 0xfe55:
    case 0xff07:
    case 0xff0e:
    case 0xff1a:
        return 1;
    default:
        break;
    }
    int k = category(c);
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
           k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK;
}

/* Unicode Cased: Lu, Ll, Lt, plus Other_Lowercase / Other_Uppercase. */
static int is_cased(uint32_t c)
{
    int k = category(c);
    if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT)
        return 1;
    return c == 0xaa || c == 0xba || (c >= 0x2b0 && c <= 0x2b8) || (c >= 0x2c0 && c <= 0x2c1) ||
           (c >= 0x2e0 && c <= 0x2e4) || c == 0x345 || c == 0x37a || c == 0x10fc ||
           (c >= 0x1d2c && c <= 0x1d6a) || c == 0x1d78 || (c >= 0x1d9b && c <= 0x1dbf) ||
           c == 0x2071 || c == 0x207f || (c >= 0x2090 && c <= 0x209c) ||
           (c >= 0x2160 && c <= 0x217f) || (c >= 0x24b6 && c <= 0x24e9) ||
           (c >= 0x2c7c && c <= 0x2c7d) || (c >= 0xa69c && c <= 0xa69d) || c == 0xa770 ||
           (c >= 0xa7f8 && c <= 0xa7f9) || (c >= 0xab5c && c <= 0xab5f) ||
           (c >= 0x1f130 && c <= 0x1f149) || (c >= 0x1f150 && c <= 0x1f169) ||
           (c >= 0x1f170 && c <= 0x1f189);
}

/* Final_Sigma: a cased letter before (skipping case-ignorables) and none
 * after. */
static int final_sigma(const uint32_t *s, size_t n, size_t i)
{
    size_t j = i;
    int before = 0;
    while (j > 0) {
        uint32_t c = s[--j];
        if (is_case_ignorable(c)) continue;
        before = is_cased(c);
        break;
    }
    if (!before) return 0;
    for (j = i + 1; j < n; j++) {
        if (is_case_ignorable(s[j])) continue;
        return !is_cased(s[j]);
    }
    return 1;
}

/* Canonical ordering of a decomposed buffer: stable sort of each run of
 * non-starters by combining class. */
static void canonical_order(uint32_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint32_t c = v[i];
        int cc = utf8proc_get_property((utf8proc_int32_t)c)->combining_class;
        if (cc == 0) continue;
        size_t j = i;
        while (j > 0) {
            int pc = utf8proc_get_property((utf8proc_int32_t)v[j - 1])->combining_class;
            if (pc <= cc) break;
            v[j] = v[j - 1];
            j--;
        }
        v[j] = c;
    }
}

/* The BertNormalizer: in -> out (out is reset). */
static int normalize(const wordpiece *wp, const uint32_t *in, size_t n, cpbuf *out, cpbuf *tmp)
{
    /* clean_text + CJK spacing into tmp */
    tmp->n = 0;
    if (cp_reserve(tmp, 3 * n)) return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (wp->cfg.clean_text) {
            if (c == 0 || c == 0xfffd || is_control(c)) continue;
            if (is_js_space(c)) c = ' ';
        }
        if (wp->cfg.chinese_chars && is_cjk_bmp(c)) {
            cp_push(tmp, ' ');
            cp_push(tmp, c);
            cp_push(tmp, ' ');
        } else {
            cp_push(tmp, c);
        }
    }
    out->n = 0;
    if (!wp->cfg.lowercase && !wp->strip) {
        if (cp_reserve(out, tmp->n)) return -1;
        memcpy(out->v, tmp->v, tmp->n * sizeof *tmp->v);
        out->n = tmp->n;
        return 0;
    }
    /* lowercase into out */
    if (cp_reserve(out, 2 * tmp->n)) return -1;
    for (size_t i = 0; i < tmp->n; i++) {
        uint32_t c = tmp->v[i];
        if (!wp->cfg.lowercase || c < 'A') {
            cp_push(out, c);
        } else if (c <= 'Z') {
            cp_push(out, c + 32);
        } else if (c < 0x80) {
            cp_push(out, c);
        } else if (c == 0x130) {
            cp_push(out, 'i');
            cp_push(out, 0x307);
        } else if (c == 0x3a3) {
            cp_push(out, final_sigma(tmp->v, tmp->n, i) ? 0x3c2 : 0x3c3);
        } else {
            cp_push(out, to_lower(c));
        }
    }
    if (!wp->strip) return 0;
    /* NFD, then drop Mn; back into tmp, then swap */
    tmp->n = 0;
    for (size_t i = 0; i < out->n; i++) {
        uint32_t c = out->v[i];
        if (c < 0x80) {
            if (cp_reserve(tmp, 1)) return -1;
            cp_push(tmp, c);
            continue;
        }
        utf8proc_int32_t buf[32];
        int bc = 0;
        utf8proc_ssize_t k =
            utf8proc_decompose_char((utf8proc_int32_t)c, buf, 32, UTF8PROC_DECOMPOSE, &bc);
        if (k < 0 || k > 32) {
            buf[0] = (utf8proc_int32_t)c;
            k = 1;
        }
        if (cp_reserve(tmp, (size_t)k)) return -1;
        for (utf8proc_ssize_t j = 0; j < k; j++) cp_push(tmp, (uint32_t)buf[j]);
    }
    canonical_order(tmp->v, tmp->n);
    size_t w = 0;
    for (size_t i = 0; i < tmp->n; i++)
        if (tmp->v[i] < 0x300 || category(tmp->v[i]) != UTF8PROC_CATEGORY_MN)
            tmp->v[w++] = tmp->v[i];
    tmp->n = w;
    cpbuf t = *out;
    *out = *tmp;
    *tmp = t;
    return 0;
}

/* A growable id buffer. */
typedef struct idbuf {
    int32_t *v;
    size_t n, cap;
} idbuf;

static int id_push(idbuf *b, int32_t id)
{
    if (b->n == b->cap) {
        size_t nc = b->cap * 2 + 64;
        int32_t *nv = br_realloc(b->v, nc * sizeof *nv);
        if (!nv) return -1;
        b->v = nv, b->cap = nc;
    }
    b->v[b->n++] = id;
    return 0;
}

/* WordPiece of one word (n code points). */
static int encode_word(const wordpiece *wp, const uint32_t *w, size_t n, idbuf *ids)
{
    if (n > (size_t)wp->cfg.max_word_chars) return id_push(ids, wp->unk);
    /* UTF-8 of the word, with the byte offset of each char, behind room for
     * the prefix so a continuation lookup is one contiguous key. */
    char stackbuf[16 + 4 * 128];
    size_t offs_stack[129];
    size_t need = wp->prefix_len + 4 * n;
    char *buf = need <= sizeof stackbuf ? stackbuf : br_malloc(need);
    size_t *off = n + 1 <= 129 ? offs_stack : br_malloc((n + 1) * sizeof *off);
    if (!buf || !off) {
        if (buf != stackbuf) br_free(buf);
        if (off != offs_stack) br_free(off);
        return -1;
    }
    char *u = buf + wp->prefix_len;
    size_t b = 0;
    for (size_t i = 0; i < n; i++) {
        off[i] = b;
        b += (size_t)utf8proc_encode_char((utf8proc_int32_t)w[i], (utf8proc_uint8_t *)u + b);
    }
    off[n] = b;
    size_t mark = ids->n;
    int rc = 0;
    for (size_t start = 0; start < n;) {
        int32_t found = -1;
        size_t end = n;
        for (; end > start; end--) {
            size_t len = off[end] - off[start];
            const char *key = u + off[start];
            if (start > 0) {
                /* Write the prefix right before the substring. */
                key -= wp->prefix_len;
                len += wp->prefix_len;
                if (len > wp->max_piece) continue;
                char save[16];
                memcpy(save, (char *)key, wp->prefix_len);
                memcpy((char *)key, wp->prefix, wp->prefix_len);
                found = br__wordpiece_id(wp, key, len);
                memcpy((char *)key, save, wp->prefix_len);
            } else {
                if (len > wp->max_piece) continue;
                found = br__wordpiece_id(wp, key, len);
            }
            if (found >= 0) break;
        }
        if (found < 0) {
            ids->n = mark;
            rc = id_push(ids, wp->unk);
            break;
        }
        if ((rc = id_push(ids, found)) != 0) break;
        start = end;
    }
    if (buf != stackbuf) br_free(buf);
    if (off != offs_stack) br_free(off);
    return rc;
}

/* Normalise, pre-tokenize and WordPiece one section (no added tokens). */
static int encode_section(const wordpiece *wp, const unsigned char *s, size_t len, cpbuf *raw,
                          cpbuf *norm, cpbuf *tmp, idbuf *ids)
{
    raw->n = 0;
    if (decode_utf8(s, len, raw)) return -1;
    if (normalize(wp, raw->v, raw->n, norm, tmp)) return -1;
    const uint32_t *v = norm->v;
    size_t n = norm->n;
    for (size_t i = 0; i < n;) {
        uint32_t c = v[i];
        if (is_js_space(c)) {
            i++;
            continue;
        }
        if (is_punct(c)) {
            if (encode_word(wp, v + i, 1, ids)) return -1;
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && !is_js_space(v[j]) && !is_punct(v[j])) j++;
        if (encode_word(wp, v + i, j - i, ids)) return -1;
        i = j;
    }
    return 0;
}

br_status br__wordpiece_encode(const wordpiece *wp, const char *text, size_t len, int add_special,
                           int32_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!wp || (!text && len)) return br_error(BR_EINVAL, "br__wordpiece_encode: NULL argument");
    idbuf ids = {0};
    cpbuf raw = {0}, norm = {0}, tmp = {0};
    int bad = add_special ? id_push(&ids, wp->cls) : 0;
    const unsigned char *s = (const unsigned char *)text;
    size_t sec = 0;
    for (size_t i = 0; !bad && i <= len;) {
        /* Longest added token starting at i. */
        const added_token *hit = NULL;
        if (i < len)
            for (size_t k = 0; k < wp->n_added; k++) {
                const added_token *a = &wp->added[k];
                if (s[i] == (unsigned char)a->s[0] && a->len <= len - i &&
                    (!hit || a->len > hit->len) && !memcmp(s + i, a->s, a->len))
                    hit = a;
            }
        if (!hit && i < len) {
            i++;
            continue;
        }
        if (i > sec) bad = encode_section(wp, s + sec, i - sec, &raw, &norm, &tmp, &ids);
        if (!hit) break;
        if (!bad) bad = id_push(&ids, hit->id);
        i += hit->len;
        sec = i;
    }
    if (!bad && add_special) bad = id_push(&ids, wp->sep);
    br_free(raw.v);
    br_free(norm.v);
    br_free(tmp.v);
    if (bad) {
        br_free(ids.v);
        return br_error(BR_ENOMEM, "tokenizing %zu bytes", len);
    }
    *out = ids.v;
    *n_out = ids.n;
    return BR_OK;
}

br_status br__wordpiece_normalize(const wordpiece *wp, const char *text, size_t len, char **out)
{
    *out = NULL;
    cpbuf raw = {0}, norm = {0}, tmp = {0};
    int bad = decode_utf8((const unsigned char *)text, len, &raw);
    if (!bad) bad = normalize(wp, raw.v, raw.n, &norm, &tmp);
    char *s = bad ? NULL : br_malloc(4 * norm.n + 1);
    if (s) {
        size_t b = 0;
        for (size_t i = 0; i < norm.n; i++)
            b += (size_t)utf8proc_encode_char((utf8proc_int32_t)norm.v[i],
                                              (utf8proc_uint8_t *)s + b);
        s[b] = '\0';
    }
    br_free(raw.v);
    br_free(norm.v);
    br_free(tmp.v);
    if (!s) return br_error(BR_ENOMEM, "normalizing %zu bytes", len);
    *out = s;
    return BR_OK;
}
