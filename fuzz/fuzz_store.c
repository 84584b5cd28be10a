/*
 * fuzz_store.c: libFuzzer target for the store's record decoders
 * (src/store/store.c: the values both backends keep): the first byte
 * chooses the decoder (mod 7): a reader's recs (into a list, and into
 * indices through a resolver), a book, a posted book, an interaction
 * member; or the LMDB store's own values (src/store/store_lmdb.c), a
 * reader's seen set or interaction list, written into a real store's
 * database with the LMDB API and read back through the public store API
 * (is_seen, get_seen, get_recent, get_reader). The rest is the value. A book or posted book a
 * decoder accepts must encode, and its encoding decode and encode to the same bytes again (a NUL
 * inside a field may shorten it once, never twice); ids must be NUL-terminated within BR_ID_MAX.
 */
#include "fuzz_util.h"

#include <lmdb.h>

#include "store/store_internal.h"

static char store_dir[PATH_MAX], store_uri[PATH_MAX + 8];

static void lmdb_read(void)
{
    br_store *s;
    FZ_MUST(br_store_open(store_uri, BR_STORE_RDONLY, &s));
    int seen;
    (void)br_store_is_seen(s, "fuzz-user", "b1", &seen);
    (void)br_store_is_seen(s, "fuzz-user", "zzzz", &seen);
    br_store_ids *ids;
    if (br_store_get_seen(s, "fuzz-user", &ids) == BR_OK) {
        for (size_t i = 0; i < ids->n; i++)
            if (!ids->ids[i]) abort();
        br_free(ids); /* one allocation */
    }
    br_store_interaction it[8];
    size_t n;
    if (br_store_get_recent(s, "fuzz-user", it, 8, &n) == BR_OK && n > 8) abort();
    br_store_rec recs[4];
    br_store_reader r;
    memset(&r, 0, sizeof r);
    r.recs = recs;
    r.recs_cap = 4;
    r.recent = it;
    r.recent_cap = 8;
    if (br_store_get_reader(s, "fuzz-user", &r) == BR_OK) {
        if (r.n_recent > 8) abort();
        br_store_reader_free(&r);
    }
    br_store_close(s);
}

/* FUZZ_DUMP_SEEDS=DIR: one valid value per decoder, as the encoders write them. */
static void dump(const char *dir, const char *name, uint8_t sel, const unsigned char *v, size_t len)
{
    char p[PATH_MAX + 64];
    uint8_t *buf = malloc(len + 1);
    if (!buf) abort();
    buf[0] = sel;
    memcpy(buf + 1, v, len);
    snprintf(p, sizeof p, "%s/%s", dir, name);
    fz_write(p, buf, len + 1);
    free(buf);
}

/* The value under "fuzz-user" in the LMDB store's database `db`, behind
 * the store's back (it is closed meanwhile): written from *val, or, with
 * dump_dir, read into *val and dumped as the seed dump_dir/db (selector sel). */
static void lmdb_raw(const char *db, MDB_val *val, const char *dump_dir, uint8_t sel)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {9, (void *)"fuzz-user"};
    unsigned ro = dump_dir ? MDB_RDONLY : 0;
    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 16) ||
        mdb_env_open(env, store_dir, MDB_NOTLS | ro, 0644) || mdb_txn_begin(env, NULL, ro, &txn) ||
        mdb_dbi_open(txn, db, 0, &dbi))
        abort();
    if (dump_dir) {
        if (mdb_get(txn, dbi, &k, val)) abort();
        dump(dump_dir, db, sel, val->mv_data, val->mv_size);
        mdb_txn_abort(txn);
    } else if (mdb_put(txn, dbi, &k, val, 0) || mdb_txn_commit(txn)) {
        abort();
    }
    mdb_env_close(env);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    br_store *st;
    fz_path(store_dir, sizeof store_dir, "store");
    snprintf(store_uri, sizeof store_uri, "lmdb:%s", store_dir);
    FZ_MUST(br_store_open(store_uri, 0, &st));
    static const char *const seen[] = {"b1", "b2", "978-x"};
    FZ_MUST(br_store_add_seen(st, "fuzz-user", seen, 3));
    br_event ev[2] = {{"fuzz-user", "b1", BR_EVENT_RATING, 4, 1718000000},
                      {"fuzz-user", "b2", BR_EVENT_CLICK, 1, 1718000001}};
    FZ_MUST(br_store_push_recent(st, ev, 2));
    br_store_close(st);
    const char *dir = getenv("FUZZ_DUMP_SEEDS");
    if (!dir) return 0;
    unsigned char *v;
    size_t len;
    static const char *const books[] = {"b1", "978-0-00-000000-2", "x9"};
    static const float scores[] = {0.9f, 0.5f, -1.25f};
    FZ_MUST(br__store_recs_encode(books, scores, 3, &v, &len));
    dump(dir, "recs", 0, v, len);
    dump(dir, "recs-resolved", 1, v, len);
    br_free(v);
    br_store_book b = {
        "b1", "A Title", "An Author, Another", "fantasy", "http://x/y.jpg", "{\"tags\":\"a|b\"}",
        1999, 3};
    FZ_MUST(br__store_book_encode(&b, &v, &len));
    dump(dir, "book", 2, v, len);
    br_free(v);
    static const float vec[4] = {0.5f, -0.5f, 0.5f, -0.5f};
    br_store_posted pb = {b, "a|b", "A description.", "use-lite", "full", vec, 4, 1718000000};
    FZ_MUST(br__store_posted_encode(&pb, &v, &len));
    dump(dir, "posted", 3, v, len);
    br_free(v);
    br_event e = {"u1", "b7", BR_EVENT_RATING, 4.5f, 1718000000};
    char m[BR_STORE_MEMBER_MAX];
    len = br__store_member_format(&e, m);
    dump(dir, "member", 4, (const unsigned char *)m, len);
    MDB_val raw;
    lmdb_raw("seen", &raw, dir, 5);
    lmdb_raw("recent", &raw, dir, 6);
    return 0;
}

static int64_t resolve(void *ctx, const char *id, size_t len)
{
    (void)ctx;
    return len && id[0] == 'x' ? -1 : (int64_t)(len % 7);
}

static void same(const unsigned char *a, size_t al, const unsigned char *b, size_t bl)
{
    if (al != bl || memcmp(a, b, al)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const unsigned char *v = data + 1;
    size_t len = size - 1;
    unsigned char *enc = NULL;
    size_t elen = 0;
    switch (data[0] % 7) {
    case 0: {
        br_store_rec out[8];
        size_t n = 0;
        if (br__store_recs_decode(v, len, out, 8, &n) == BR_OK) {
            if (n > 8) abort();
            for (size_t i = 0; i < n; i++)
                if (strnlen(out[i].book_id, BR_ID_MAX) == BR_ID_MAX) abort();
        }
        break;
    }
    case 1: {
        br_store_rec recs[4];
        uint32_t idx[4];
        float sc[4];
        br_store_reader r;
        memset(&r, 0, sizeof r);
        r.recs = recs;
        r.recs_cap = 4;
        if (br__store_recs_read(v, len, &r) == BR_OK && r.n_recs > 4) abort();
        memset(&r, 0, sizeof r);
        r.recs_cap = 4;
        r.resolve = resolve;
        r.rec_idx = idx;
        r.rec_score = sc;
        if (br__store_recs_read(v, len, &r) == BR_OK) {
            if (r.n_recs > 4) abort();
            for (size_t i = 0; i < r.n_recs; i++)
                if (idx[i] >= 7 && idx[i] != UINT32_MAX) abort(); /* UINT32_MAX: unresolved */
        }
        break;
    }
    case 2: {
        br_store_book *b;
        if (br__store_book_decode("fuzz", v, len, &b) == BR_OK) {
            if (!b->title || !b->authors || !b->genre || !b->image_url || !b->extra) abort();
            if (br__store_book_encode(b, &enc, &elen) != BR_OK) abort();
            br_free(b);
            unsigned char *again;
            size_t alen;
            if (br__store_book_decode("fuzz", enc, elen, &b) != BR_OK) abort();
            if (br__store_book_encode(b, &again, &alen) != BR_OK) abort();
            same(enc, elen, again, alen);
            br_free(again);
            br_free(b);
        }
        break;
    }
    case 3: {
        br_store_posted *p;
        if (br__store_posted_decode("fuzz", 4, v, len, &p) == BR_OK) {
            if (!p->book.title || !p->tags || !p->description || !p->encoder || !p->text_template ||
                (p->dim && !p->vec))
                abort();
            volatile float sink = p->dim ? p->vec[p->dim - 1] : 0;
            (void)sink;
            if (br__store_posted_encode(p, &enc, &elen) != BR_OK) abort();
            br_free(p);
            unsigned char *again;
            size_t alen;
            if (br__store_posted_decode("fuzz", 4, enc, elen, &p) != BR_OK) abort();
            if (br__store_posted_encode(p, &again, &alen) != BR_OK) abort();
            same(enc, elen, again, alen);
            br_free(again);
            br_free(p);
        }
        break;
    }
    case 4: {
        br_store_interaction it;
        if (br__store_member_parse((const char *)v, len, &it) == BR_OK) {
            if (strnlen(it.book_id, BR_ID_MAX) == BR_ID_MAX) abort();
            if ((unsigned)it.type >= BR_EVENT_NTYPES) abort();
        }
        break;
    }
    case 5:
    case 6: {
        MDB_val raw = {len, (void *)v};
        lmdb_raw(data[0] % 7 == 5 ? "seen" : "recent", &raw, NULL, 0);
        lmdb_read();
        break;
    }
    }
    br_free(enc);
    return 0;
}
