/*
 * store_lmdb.c: the embedded store backend on LMDB (docs/store.md has the
 * layout).
 *
 * Atomic publish by double buffering: the model lives in one of two slots
 * (named DBs recs.0/books.0 and recs.1/books.1) and meta["current"] names
 * the served one. A publish clears and fills the other slot in several
 * write transactions, then flips meta["current"] in a last, small one. A
 * reader reads the pointer and the data in one read transaction, i.e. one
 * MVCC snapshot, and in every snapshot the slot the pointer names is
 * complete: a slot is only rewritten while the pointer names the other one.
 * Why not one write transaction for the whole publish: it would hold
 * LMDB's single writer lock for minutes on a large model and stall the
 * server's online updates (seen sets, interactions) for as long; chunked
 * transactions stall them for one chunk at most.
 *
 * Threads: reads take a reset read transaction from a small pool and renew
 * it (MDB_NOTLS, so any thread may renew any of them); no read allocates
 * or touches LMDB's reader-table lock. Every transaction holds `maplock`
 * shared; growing the map (mdb_env_set_mapsize, which must not race with
 * live transactions of this process) holds it exclusively, and so does
 * following a store deleted and created again under this process (the
 * environment reopened on the new files; found by l_info, which readiness
 * checks call).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "core/fault.h"

#define FORMAT_TAG     "bookrec-store-lmdb 1"
#define POOL_MAX       64
#define DEFAULT_CHUNK  20000
#define DEFAULT_MAP_MB 1024
/* Free map space kept ahead of every write transaction. A chunk of the
 * default size writes well under this; a write that still hits MDB_MAP_FULL
 * fails cleanly with BR_ESTORE. */
#define HEADROOM ((size_t)256 << 20)

typedef struct lmdb_store {
    br_store base;
    char *dir;
    MDB_env *env;
    MDB_dbi meta, recs[2], books[2], seen, recent;
    MDB_dbi posted; /* books posted at run time; not versioned */
    int has_posted; /* 0: a read-only store written before posted books */
    pthread_rwlock_t maplock;
    pthread_mutex_t pool_mu;
    MDB_txn *pool[POOL_MAX];
    int npool;
    uint64_t chunk;
    uint64_t map_mb;
} lmdb_store;

typedef struct lmdb_pub {
    br_store_pub base;
    int slot;
    MDB_txn *txn; /* the open chunk, or NULL */
    uint64_t ops; /* puts in the open chunk */
} lmdb_pub;

static br_status lmdb_err(lmdb_store *s, int rc, const char *what)
{
    return br_error(BR_ESTORE, "lmdb:%s: %s: %s", s->dir, what, mdb_strerror(rc));
}

/* ---------------------------------------------------------- map growth -- */

/* Adopts a map grown by another process, or grows ours. Called with no
 * transaction of this thread open. */
static br_status resize_map(lmdb_store *s, int adopt)
{
    pthread_rwlock_wrlock(&s->maplock);
    int rc = 0;
    if (adopt) {
        rc = mdb_env_set_mapsize(s->env, 0);
    } else {
        MDB_envinfo info;
        MDB_stat st;
        mdb_env_info(s->env, &info);
        mdb_env_stat(s->env, &st);
        size_t used = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
        if (info.me_mapsize - used < HEADROOM) {
            size_t want = info.me_mapsize * 2;
            if (want < used + 4 * HEADROOM) want = used + 4 * HEADROOM;
            rc = mdb_env_set_mapsize(s->env, want);
            if (rc == 0) br_log(BR_LOG_INFO, "lmdb:%s: map grown to %zu MiB", s->dir, want >> 20);
        }
    }
    pthread_rwlock_unlock(&s->maplock);
    return rc ? lmdb_err(s, rc, "resizing the map") : BR_OK;
}

static int needs_growth(lmdb_store *s)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &st);
    size_t used = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
    return info.me_mapsize - used < HEADROOM;
}

/* ------------------------------------------------------------ transactions -- */

static br_status rd_begin(lmdb_store *s, MDB_txn **out)
{
    for (int attempt = 0;; attempt++) {
        pthread_rwlock_rdlock(&s->maplock);
        MDB_txn *txn = NULL;
        pthread_mutex_lock(&s->pool_mu);
        if (s->npool) txn = s->pool[--s->npool];
        pthread_mutex_unlock(&s->pool_mu);
        int rc = txn ? mdb_txn_renew(txn) : mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
        if (rc == 0) {
            *out = txn;
            return BR_OK;
        }
        if (txn && rc != 0) mdb_txn_abort(txn);
        pthread_rwlock_unlock(&s->maplock);
        if (rc == MDB_MAP_RESIZED && attempt == 0) {
            br_status st = resize_map(s, 1);
            if (st != BR_OK) return st;
            continue;
        }
        return lmdb_err(s, rc, "read transaction");
    }
}

static void rd_end(lmdb_store *s, MDB_txn *txn)
{
    mdb_txn_reset(txn);
    pthread_mutex_lock(&s->pool_mu);
    if (s->npool < POOL_MAX) {
        s->pool[s->npool++] = txn;
        txn = NULL;
    }
    pthread_mutex_unlock(&s->pool_mu);
    if (txn) mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->maplock);
}

static br_status wr_begin(lmdb_store *s, MDB_txn **out)
{
    if (needs_growth(s)) {
        br_status st = resize_map(s, 0);
        if (st != BR_OK) return st;
    }
    for (int attempt = 0;; attempt++) {
        pthread_rwlock_rdlock(&s->maplock);
        int rc = mdb_txn_begin(s->env, NULL, 0, out);
        if (rc == 0) return BR_OK;
        pthread_rwlock_unlock(&s->maplock);
        if (rc == MDB_MAP_RESIZED && attempt == 0) {
            br_status st = resize_map(s, 1);
            if (st != BR_OK) return st;
            continue;
        }
        return lmdb_err(s, rc, "write transaction");
    }
}

static br_status wr_commit(lmdb_store *s, MDB_txn *txn)
{
    /* core/fault.h: a commit that fails as on a full disk */
    int rc = br__fault_hit(BR__FAULT_WRITE) ? (mdb_txn_abort(txn), ENOSPC) : mdb_txn_commit(txn);
    pthread_rwlock_unlock(&s->maplock);
    return rc ? lmdb_err(s, rc, "commit") : BR_OK;
}

static void wr_abort(lmdb_store *s, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->maplock);
}

static MDB_val sval(const char *str)
{
    MDB_val v = {strlen(str), (void *)str};
    return v;
}

/* --------------------------------------------------------------- meta -- */

/* The served slot, or -1 when nothing is published (also on failure, so
 * that no caller reads an unset slot). */
static br_status current_slot(lmdb_store *s, MDB_txn *txn, int *slot)
{
    *slot = -1;
    MDB_val k = sval("current"), v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) return BR_OK;
    if (rc) return lmdb_err(s, rc, "reading the current slot");
    if (v.mv_size != 1 || ((unsigned char *)v.mv_data)[0] > 1)
        return br_error(BR_ESTORE, "lmdb:%s: corrupt current-slot record", s->dir);
    *slot = ((unsigned char *)v.mv_data)[0];
    return BR_OK;
}

/* info.N: u64 published_at, u64 n_users, u64 n_books, version bytes. */
static br_status read_info(lmdb_store *s, MDB_txn *txn, int slot, br_store_info *info)
{
    /* per request: a constant key, not snprintf */
    char key[] = "info.0";
    key[5] = (char)('0' + slot);
    MDB_val k = sval(key), v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc) return lmdb_err(s, rc, "reading the version record");
    if (v.mv_size < 25 || v.mv_size - 24 >= BR_STORE_VERSION_MAX)
        return br_error(BR_ESTORE, "lmdb:%s: corrupt version record", s->dir);
    const unsigned char *p = v.mv_data;
    info->published_at = (int64_t)br_get_u64(p);
    info->n_users = br_get_u64(p + 8);
    info->n_books = br_get_u64(p + 16);
    memcpy(info->version, p + 24, v.mv_size - 24);
    info->version[v.mv_size - 24] = '\0';
    return BR_OK;
}

static br_status no_version(lmdb_store *s)
{
    return br_error(BR_ENOTFOUND, "lmdb:%s: no model version has been published", s->dir);
}

/* --------------------------------------------------------------- reads -- */

/* The slot the served version lives in; no published version is an error. */
static br_status served_slot(lmdb_store *s, MDB_txn *txn, int *slot)
{
    br_status st = current_slot(s, txn, slot);
    return st == BR_OK && *slot < 0 ? no_version(s) : st;
}

/* key in the served version's slot of dbs (recs or books): *v points into
 * the transaction. `missing` formats the not-found detail with the key. */
static br_status served_get(lmdb_store *s, MDB_txn *txn, const MDB_dbi dbs[2], const char *key,
                            const char *missing, const char *doing, int *slot, MDB_val *v)
{
    br_status st = served_slot(s, txn, slot);
    if (st != BR_OK) return st;
    MDB_val k = sval(key);
    int rc = mdb_get(txn, dbs[*slot], &k, v);
    if (rc == MDB_NOTFOUND) return br_error(BR_ENOTFOUND, missing, key);
    return rc ? lmdb_err(s, rc, doing) : BR_OK;
}

/* --------------------------------------------------------- a lost store -- */

static br_status open_dbs(lmdb_store *s, int rdonly);

/* A new environment on s->dir with the store's settings; an LMDB code. */
static int env_open(lmdb_store *s, int rdonly, MDB_env **out)
{
    MDB_env *env = NULL;
    int rc = mdb_env_create(&env);
    if (!rc) rc = mdb_env_set_maxdbs(env, 12);
    if (!rc) rc = mdb_env_set_maxreaders(env, 1024);
    if (!rc) rc = mdb_env_set_mapsize(env, (size_t)s->map_mb << 20);
    if (!rc) rc = mdb_env_open(env, s->dir, MDB_NOTLS | (rdonly ? MDB_RDONLY : 0), 0644);
    if (rc && env) {
        mdb_env_close(env);
        env = NULL;
    }
    *out = env;
    return rc;
}

/* 1 when DIR/data.mdb is no longer the file this environment has open: the
 * store was deleted (and perhaps created again, by a restore) under a
 * running process, which would otherwise go on reading and writing a file
 * nobody else sees, and call it ready. */
static int replaced(lmdb_store *s)
{
    int fd;
    struct stat a, b;
    char path[PATH_MAX];
    if (mdb_env_get_fd(s->env, &fd) || fstat(fd, &a)) return 0;
    snprintf(path, sizeof path, "%s/data.mdb", s->dir);
    return stat(path, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev;
}

/* Follows a replaced store: BR_ENOTFOUND while DIR holds none, else the
 * environment is opened again on the new files. Holds maplock exclusively,
 * so no transaction of this process is live while the old one closes. */
static br_status follow(lmdb_store *s)
{
    pthread_rwlock_rdlock(&s->maplock); /* s->env is swapped under the write lock */
    int gone = replaced(s);
    pthread_rwlock_unlock(&s->maplock);
    if (!gone) return BR_OK;
    pthread_rwlock_wrlock(&s->maplock);
    br_status st = BR_OK;
    char path[PATH_MAX];
    struct stat sb;
    snprintf(path, sizeof path, "%s/data.mdb", s->dir);
    int rdonly = (s->base.flags & BR_STORE_RDONLY) != 0;
    if (!replaced(s)) {
        /* another thread followed it meanwhile */
    } else if (stat(path, &sb) != 0) {
        st = br_error(BR_ENOTFOUND,
                      "lmdb:%s: the store was deleted while open (no data.mdb): it lost its "
                      "data; `bookrec store restore` puts it back",
                      s->dir);
    } else {
        MDB_env *env = NULL, *old = s->env;
        MDB_dbi keep[8] = {s->meta,     s->recs[0], s->recs[1], s->books[0],
                           s->books[1], s->seen,    s->recent,  s->posted};
        int keep_posted = s->has_posted;
        int rc = env_open(s, rdonly, &env);
        if (rc) {
            st = lmdb_err(s, rc, "opening the replaced store");
        } else {
            pthread_mutex_lock(&s->pool_mu);
            for (int i = 0; i < s->npool; i++) mdb_txn_abort(s->pool[i]);
            s->npool = 0;
            pthread_mutex_unlock(&s->pool_mu);
            s->env = env;
            st = open_dbs(s, rdonly);
            if (st != BR_OK) {
                s->env = old;
                s->meta = keep[0], s->recs[0] = keep[1], s->recs[1] = keep[2];
                s->books[0] = keep[3], s->books[1] = keep[4], s->seen = keep[5];
                s->recent = keep[6], s->posted = keep[7], s->has_posted = keep_posted;
                mdb_env_close(env);
            } else {
                mdb_env_close(old);
                br_log(BR_LOG_WARN, "lmdb:%s: the store was replaced while open: reopened", s->dir);
            }
        }
    }
    pthread_rwlock_unlock(&s->maplock);
    return st;
}

static br_status l_info(br_store *bs, br_store_info *info, char **meta)
{
    lmdb_store *s = (lmdb_store *)bs;
    MDB_txn *txn;
    /* What readiness checks ask (br_store_version): a deleted store is
     * seen here, and a restored one followed. */
    br_status st = follow(s);
    if (st != BR_OK) return st;
    st = rd_begin(s, &txn);
    if (st != BR_OK) return st;
    int slot;
    st = served_slot(s, txn, &slot);
    if (st == BR_OK) st = read_info(s, txn, slot, info);
    if (st == BR_OK && meta) {
        char key[8];
        snprintf(key, sizeof key, "meta.%d", slot);
        MDB_val k = sval(key), v;
        int rc = mdb_get(txn, s->meta, &k, &v);
        if (rc == MDB_NOTFOUND) {
            *meta = br_strdup("{}");
        } else if (rc) {
            st = lmdb_err(s, rc, "reading the metadata");
        } else {
            *meta = br_strndup(v.mv_data, v.mv_size);
        }
        if (st == BR_OK && !*meta) st = br_error(BR_ENOMEM, "metadata");
    }
    rd_end(s, txn);
    return st;
}

/* The reader's recs (and the version) inside txn. */
static br_status recs_in(lmdb_store *s, MDB_txn *txn, const char *user, br_store_rec *out,
                         size_t cap, size_t *n, char *version)
{
    int slot;
    MDB_val v;
    br_status st = served_get(s, txn, s->recs, user, "reader '%s' has no recommendations",
                              "reading recs", &slot, &v);
    if (st == BR_OK) st = br__store_recs_decode(v.mv_data, v.mv_size, out, cap, n);
    if (st == BR_OK && version) {
        br_store_info info;
        st = read_info(s, txn, slot, &info);
        if (st == BR_OK) memcpy(version, info.version, sizeof info.version);
    }
    return st;
}

static br_status l_get_recs(br_store *bs, const char *user, br_store_rec *out, size_t cap,
                            size_t *n, char *version)
{
    lmdb_store *s = (lmdb_store *)bs;
    MDB_txn *txn;
    br_status st = rd_begin(s, &txn);
    if (st != BR_OK) return st;
    st = recs_in(s, txn, user, out, cap, n, version);
    rd_end(s, txn);
    return st;
}

/* seen value: u32 n, u32 off[n + 1] (into the byte area), then the ids
 * sorted bytewise. Sorted so that membership is a binary search in place. */
static int seen_check(const MDB_val *v)
{
    if (v->mv_size < 8) return 0;
    const unsigned char *p = v->mv_data;
    uint32_t n = br_get_u32(p);
    if (v->mv_size < 4 + 4 * ((size_t)n + 1)) return 0;
    size_t area = 4 + 4 * ((size_t)n + 1);
    /* The offsets from 0, never decreasing: seen_entry trusts them (a
     * damaged value read past its end). */
    if (br_get_u32(p + 4) != 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (br_get_u32(p + 8 + 4 * i) < br_get_u32(p + 4 + 4 * i)) return 0;
    return br_get_u32(p + 4 + 4 * (size_t)n) == v->mv_size - area;
}

static void seen_entry(const MDB_val *v, uint32_t i, const char **id, size_t *len)
{
    const unsigned char *p = v->mv_data;
    uint32_t n = br_get_u32(p);
    size_t area = 4 + 4 * ((size_t)n + 1);
    uint32_t a = br_get_u32(p + 4 + 4 * (size_t)i), b = br_get_u32(p + 8 + 4 * (size_t)i);
    *id = (const char *)p + area + a;
    *len = b - a;
}

static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al == bl ? 0 : (al < bl ? -1 : 1));
}

static br_status get_seen_val(lmdb_store *s, MDB_txn *txn, const char *user, MDB_val *v)
{
    MDB_val k = sval(user);
    int rc = mdb_get(txn, s->seen, &k, v);
    if (rc == MDB_NOTFOUND) {
        v->mv_size = 0;
        return BR_OK;
    }
    if (rc) return lmdb_err(s, rc, "reading a seen set");
    if (!seen_check(v))
        return br_error(BR_ESTORE, "lmdb:%s: corrupt seen set of '%s'", s->dir, user);
    return BR_OK;
}

static br_status l_is_seen(br_store *bs, const char *user, const char *book, int *seen)
{
    lmdb_store *s = (lmdb_store *)bs;
    MDB_txn *txn;
    br_status st = rd_begin(s, &txn);
    if (st != BR_OK) return st;
    MDB_val v;
    st = get_seen_val(s, txn, user, &v);
    if (st == BR_OK && v.mv_size) {
        uint32_t lo = 0, hi = br_get_u32(v.mv_data);
        size_t bl = strlen(book);
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            const char *id;
            size_t len;
            seen_entry(&v, mid, &id, &len);
            int c = bytes_cmp(id, len, book, bl);
            if (c == 0) {
                *seen = 1;
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    rd_end(s, txn);
    return st;
}

/* The entry count of a seen value read by get_seen_val (0: none). */
static uint32_t seen_count(const MDB_val *v)
{
    return v->mv_size ? br_get_u32(v->mv_data) : 0;
}

/* A seen value as an id list. */
static br_status seen_ids(const MDB_val *v, br_store_ids **out)
{
    uint32_t n = seen_count(v);
    br_status st = BR_OK;
    const char **ids = NULL;
    size_t *lens = NULL;
    if (n) {
        ids = br_malloc(n * sizeof *ids);
        lens = br_malloc(n * sizeof *lens);
        if (!ids || !lens) st = br_error(BR_ENOMEM, "seen set of %u", n);
        for (uint32_t i = 0; st == BR_OK && i < n; i++) seen_entry(v, i, &ids[i], &lens[i]);
    }
    if (st == BR_OK) st = br__store_ids_build(ids, lens, n, out);
    br_free(ids);
    br_free(lens);
    return st;
}

static br_status seen_in(lmdb_store *s, MDB_txn *txn, const char *user, br_store_ids **out)
{
    MDB_val v;
    br_status st = get_seen_val(s, txn, user, &v);
    return st == BR_OK ? seen_ids(&v, out) : st;
}

static br_status l_get_seen(br_store *bs, const char *user, br_store_ids **out)
{
    lmdb_store *s = (lmdb_store *)bs;
    MDB_txn *txn;
    br_status st = rd_begin(s, &txn);
    if (st != BR_OK) return st;
    st = seen_in(s, txn, user, out);
    rd_end(s, txn);
    return st;
}

/* recent value: u32 n, then n x {u16 len, member bytes}, in list order
 * (most recent first; br__store_member_cmp). */
typedef struct member {
    const char *m;
    size_t len;
    int64_t ts;
} member;

static br_status recent_corrupt(lmdb_store *s, const char *user)
{
    return br_error(BR_ESTORE, "lmdb:%s: corrupt interactions of '%s'", s->dir, user);
}

/* The value's entry count; entries start at offset 4. */
static br_status recent_count(lmdb_store *s, const char *user, const MDB_val *v, uint32_t *count)
{
    if (v->mv_size < 4) return recent_corrupt(s, user);
    *count = br_get_u32(v->mv_data);
    return BR_OK;
}

/* The entry at *off (then *off moves past it); -1 when its length runs
 * past the value. */
static int recent_entry(const MDB_val *v, size_t *off, const char **m, size_t *len)
{
    const unsigned char *p = v->mv_data;
    if (*off + 2 > v->mv_size) return -1;
    size_t l = br_get_u16(p + *off);
    if (l > v->mv_size - *off - 2) return -1;
    *m = (const char *)p + *off + 2;
    *len = l;
    *off += 2 + l;
    return 0;
}

static br_status recent_decode(lmdb_store *s, const char *user, const MDB_val *v, member **out,
                               size_t *n)
{
    uint32_t count = 0;
    br_status st = recent_count(s, user, v, &count);
    if (st != BR_OK) return st;
    member *m = br_malloc((count + 1) * sizeof *m);
    if (!m) return br_error(BR_ENOMEM, "interactions");
    size_t off = 4;
    for (uint32_t i = 0; i < count; i++) {
        if (recent_entry(v, &off, &m[i].m, &m[i].len)) {
            br_free(m);
            return recent_corrupt(s, user);
        }
        m[i].ts = strtoll(m[i].m, NULL, 10); /* the member starts with the timestamp */
    }
    *out = m;
    *n = count;
    return BR_OK;
}

static br_status recent_in(lmdb_store *s, MDB_txn *txn, const char *user, br_store_interaction *out,
                           size_t cap, size_t *n)
{
    MDB_val k = sval(user), v;
    int rc = mdb_get(txn, s->recent, &k, &v);
    if (rc == MDB_NOTFOUND || cap == 0) return BR_OK;
    if (rc) return lmdb_err(s, rc, "reading interactions");
    /* The list is stored newest first: only the first `cap` entries are
     * decoded (a request asks for a few seeds, not the whole list). */
    uint32_t count = 0;
    br_status st = recent_count(s, user, &v, &count);
    size_t off = 4;
    for (uint32_t i = 0; st == BR_OK && i < count && i < cap; i++) {
        const char *m;
        size_t len;
        if (recent_entry(&v, &off, &m, &len)) return recent_corrupt(s, user);
        st = br__store_member_parse(m, len, &out[i]);
        if (st == BR_OK) *n = i + 1;
    }
    return st;
}

static br_status l_get_recent(br_store *bs, const char *user, br_store_interaction *out, size_t cap,
                              size_t *n)
{
    lmdb_store *s = (lmdb_store *)bs;
    MDB_txn *txn;
    br_status st = rd_begin(s, &txn);
    if (st != BR_OK) return st;
    st = recent_in(s, txn, user, out, cap, n);
    rd_end(s, txn);
    return st;
}

/* The three reads in one read transaction: a consistent snapshot, one
 * transaction renewal instead of three. */
static br_status l_get_reader(br_store *bs, const char *user, br_store_reader *r)
{
    lmdb_store *s = (lmdb_store *)bs;
    MDB_txn *txn;
    br_status st = rd_begin(s, &txn);
    if (st != BR_OK) return st;
    int slot;
    st = current_slot(s, txn, &slot);
    if (st == BR_OK && slot >= 0) {
        br_store_info info;
        st = read_info(s, txn, slot, &info);
        if (st == BR_OK) memcpy(r->version, info.version, sizeof info.version);
        MDB_val k = sval(user), v;
        int rc = st == BR_OK ? mdb_get(txn, s->recs[slot], &k, &v) : MDB_NOTFOUND;
        if (rc && rc != MDB_NOTFOUND) st = lmdb_err(s, rc, "reading recs");
        if (st == BR_OK && rc == 0 && r->recs_cap)
            st = br__store_recs_read(v.mv_data, v.mv_size, r);
    }
    if (st == BR_OK) st = recent_in(s, txn, user, r->recent, r->recent_cap, &r->n_recent);
    MDB_val v;
    if (st == BR_OK) st = get_seen_val(s, txn, user, &v);
    if (st == BR_OK) {
        if (br__store_seen_resolving(r, seen_count(&v))) {
            /* the seen ids mapped in place, from the value itself */
            for (uint32_t i = 0; i < r->n_seen; i++) {
                const char *id;
                size_t len;
                seen_entry(&v, i, &id, &len);
                br__store_seen_resolve(r, id, len);
            }
        } else {
            st = seen_ids(&v, &r->seen);
        }
    }
    rd_end(s, txn);
    return st;
}

static br_status l_get_book(br_store *bs, const char *book, br_store_book **out)
{
    lmdb_store *s = (lmdb_store *)bs;
    MDB_txn *txn;
    br_status st = rd_begin(s, &txn);
    if (st != BR_OK) return st;
    int slot;
    MDB_val v;
    st = served_get(s, txn, s->books, book, "book '%s' is not in the store", "reading a book",
                    &slot, &v);
    if (st == BR_OK) st = br__store_book_decode(book, v.mv_data, v.mv_size, out);
    rd_end(s, txn);
    return st;
}

/* ------------------------------------------------------ merged writes -- */

typedef struct idref {
    const char *id;
    size_t len;
} idref;

static int idref_cmp(const void *a, const void *b)
{
    const idref *x = a, *y = b;
    return bytes_cmp(x->id, x->len, y->id, y->len);
}

/* seen[user] |= books. */
static br_status seen_merge(lmdb_store *s, MDB_txn *txn, const char *user, const char *const *books,
                            size_t nb)
{
    MDB_val old;
    br_status st = get_seen_val(s, txn, user, &old);
    if (st != BR_OK) return st;
    uint32_t no = old.mv_size ? br_get_u32(old.mv_data) : 0;
    idref *all = br_malloc((no + nb) * sizeof *all);
    if (!all) return br_error(BR_ENOMEM, "seen merge");
    size_t n = 0;
    for (uint32_t i = 0; i < no; i++, n++) seen_entry(&old, i, &all[n].id, &all[n].len);
    for (size_t i = 0; i < nb; i++, n++) {
        all[n].id = books[i];
        all[n].len = strlen(books[i]);
    }
    qsort(all, n, sizeof *all, idref_cmp);
    size_t u = 0, bytes = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || idref_cmp(&all[u - 1], &all[i]) != 0) {
            all[u++] = all[i];
            bytes += all[i].len;
        }
    if (u == no) { /* nothing new: no write, no page copied */
        br_free(all);
        return BR_OK;
    }
    size_t area = 4 + 4 * (u + 1);
    /* The new value is built in a separate buffer: `all` may point into the
     * old value, which mdb_put may overwrite in place. */
    unsigned char *v = br_malloc(area + bytes);
    if (!v) {
        br_free(all);
        return br_error(BR_ENOMEM, "seen merge");
    }
    br_put_u32(v, (uint32_t)u);
    uint32_t off = 0;
    for (size_t i = 0; i < u; i++) {
        br_put_u32(v + 4 + 4 * i, off);
        memcpy(v + area + off, all[i].id, all[i].len);
        off += (uint32_t)all[i].len;
    }
    br_put_u32(v + 4 + 4 * u, off);
    br_free(all);
    MDB_val k = sval(user), nv = {area + bytes, v};
    int rc = mdb_put(txn, s->seen, &k, &nv, 0);
    br_free(v);
    return rc ? lmdb_err(s, rc, "writing a seen set") : BR_OK;
}

static int member_qcmp(const void *a, const void *b)
{
    const member *x = a, *y = b;
    return br__store_member_cmp(x->m, x->len, x->ts, y->m, y->len, y->ts);
}

/* recent[user] = the first BR_STORE_RECENT_MAX of (old + events), ordered,
 * identical entries once. `events` all belong to `user`. */
static br_status recent_merge(lmdb_store *s, MDB_txn *txn, const char *user, const br_event *events,
                              size_t ne)
{
    MDB_val k = sval(user), old;
    int rc = mdb_get(txn, s->recent, &k, &old);
    if (rc && rc != MDB_NOTFOUND) return lmdb_err(s, rc, "reading interactions");
    member *om = NULL;
    size_t no = 0;
    br_status st = BR_OK;
    if (rc == 0 && (st = recent_decode(s, user, &old, &om, &no)) != BR_OK) return st;
    member *all = br_malloc((no + ne) * sizeof *all);
    char *buf = br_malloc(ne * BR_STORE_MEMBER_MAX + 1);
    if (!all || !buf) {
        br_free(om);
        br_free(all);
        br_free(buf);
        return br_error(BR_ENOMEM, "interactions merge");
    }
    size_t n = 0;
    for (size_t i = 0; i < no; i++) all[n++] = om[i];
    for (size_t i = 0; i < ne; i++) {
        char *m = buf + i * BR_STORE_MEMBER_MAX;
        all[n].len = br__store_member_format(&events[i], m);
        all[n].m = m;
        all[n].ts = events[i].timestamp;
        n++;
    }
    qsort(all, n, sizeof *all, member_qcmp);
    size_t u = 0, bytes = 4;
    for (size_t i = 0; i < n && u < BR_STORE_RECENT_MAX; i++)
        if (u == 0 || member_qcmp(&all[u - 1], &all[i]) != 0) {
            all[u++] = all[i];
            bytes += 2 + all[i].len;
        }
    unsigned char *v = br_malloc(bytes);
    if (!v) {
        st = br_error(BR_ENOMEM, "interactions merge");
    } else {
        br_put_u32(v, (uint32_t)u);
        size_t off = 4;
        for (size_t i = 0; i < u; i++) {
            br_put_u16(v + off, (uint16_t)all[i].len);
            memcpy(v + off + 2, all[i].m, all[i].len);
            off += 2 + all[i].len;
        }
        MDB_val nv = {bytes, v};
        rc = mdb_put(txn, s->recent, &k, &nv, 0);
        if (rc) st = lmdb_err(s, rc, "writing interactions");
    }
    br_free(v);
    br_free(om);
    br_free(all);
    br_free(buf);
    return st;
}

/* Applies events reader by reader: consecutive events of one reader are
 * merged together (one read and one write of the list). */
static br_status apply_events(lmdb_store *s, MDB_txn *txn, const br_event *ev, size_t n,
                              int mark_seen)
{
    br_status st = BR_OK;
    const char **books = mark_seen ? br_malloc((n ? n : 1) * sizeof *books) : NULL;
    if (mark_seen && !books) return br_error(BR_ENOMEM, "events");
    for (size_t i = 0; i < n && st == BR_OK;) {
        size_t j = i + 1;
        while (j < n && !strcmp(ev[j].user_id, ev[i].user_id)) j++;
        st = recent_merge(s, txn, ev[i].user_id, ev + i, j - i);
        if (st == BR_OK && mark_seen) {
            for (size_t k = i; k < j; k++) books[k - i] = ev[k].book_id;
            st = seen_merge(s, txn, ev[i].user_id, books, j - i);
        }
        i = j;
    }
    br_free(books);
    return st;
}

/* ---------------------------------------------------------- online writes -- */

static br_status l_update(br_store *bs, const char *seen_user, const char *const *seen_books,
                          size_t n_seen, const br_event *events, size_t n_events, int mark_seen)
{
    lmdb_store *s = (lmdb_store *)bs;
    MDB_txn *txn;
    br_status st = wr_begin(s, &txn);
    if (st != BR_OK) return st;
    if (n_seen) st = seen_merge(s, txn, seen_user, seen_books, n_seen);
    if (st == BR_OK && n_events) st = apply_events(s, txn, events, n_events, mark_seen);
    if (st != BR_OK) {
        wr_abort(s, txn);
        return st;
    }
    return wr_commit(s, txn);
}

static br_status put_book_in(lmdb_store *s, MDB_txn *txn, int slot, const br_store_book *b)
{
    unsigned char *v;
    size_t len;
    br_status st = br__store_book_encode(b, &v, &len);
    if (st != BR_OK) return st;
    MDB_val k = sval(b->id), val = {len, v};
    int rc = mdb_put(txn, s->books[slot], &k, &val, 0);
    br_free(v);
    return rc ? lmdb_err(s, rc, "writing a book") : BR_OK;
}

static br_status l_put_book(br_store *bs, const br_store_book *b)
{
    lmdb_store *s = (lmdb_store *)bs;
    MDB_txn *txn;
    br_status st = wr_begin(s, &txn);
    if (st != BR_OK) return st;
    int slot;
    st = served_slot(s, txn, &slot);
    if (st == BR_OK) st = put_book_in(s, txn, slot, b);
    if (st != BR_OK) {
        wr_abort(s, txn);
        return st;
    }
    return wr_commit(s, txn);
}

/* -------------------------------------------------------- posted books -- */

static br_status l_put_posted(br_store *bs, const char *book, const void *val, size_t len)
{
    lmdb_store *s = (lmdb_store *)bs;
    MDB_txn *txn;
    br_status st = wr_begin(s, &txn);
    if (st != BR_OK) return st;
    MDB_val k = sval(book), v = {len, (void *)val};
    int rc = mdb_put(txn, s->posted, &k, &v, 0);
    if (rc) {
        wr_abort(s, txn);
        return lmdb_err(s, rc, "writing a posted book");
    }
    return wr_commit(s, txn);
}

static br_status l_get_posted(br_store *bs, const char *book, unsigned char **val, size_t *len)
{
    lmdb_store *s = (lmdb_store *)bs;
    if (!s->has_posted) return BR_ENOTFOUND;
    MDB_txn *txn;
    br_status st = rd_begin(s, &txn);
    if (st != BR_OK) return st;
    MDB_val k = sval(book), v;
    int rc = mdb_get(txn, s->posted, &k, &v);
    if (rc == MDB_NOTFOUND) {
        st = BR_ENOTFOUND;
    } else if (rc) {
        st = lmdb_err(s, rc, "reading a posted book");
    } else {
        *val = br_malloc(v.mv_size ? v.mv_size : 1);
        if (*val) {
            memcpy(*val, v.mv_data, v.mv_size);
            *len = v.mv_size;
        } else {
            st = br_error(BR_ENOMEM, "posted book");
        }
    }
    rd_end(s, txn);
    return st;
}

static br_status l_list_posted(br_store *bs,
                               br_status (*fn)(const char *book, size_t book_len,
                                               const unsigned char *val, size_t len, void *user),
                               void *user)
{
    lmdb_store *s = (lmdb_store *)bs;
    if (!s->has_posted) return BR_OK;
    MDB_txn *txn;
    br_status st = rd_begin(s, &txn);
    if (st != BR_OK) return st;
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->posted, &c);
    if (rc) {
        rd_end(s, txn);
        return lmdb_err(s, rc, "listing posted books");
    }
    MDB_val k, v;
    /* fn runs inside the read transaction: the pages stay valid for it */
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && st == BR_OK;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        st = fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, user);
    if (st == BR_OK && rc != MDB_NOTFOUND) st = lmdb_err(s, rc, "listing posted books");
    mdb_cursor_close(c);
    rd_end(s, txn);
    return st;
}

static br_status l_posted_count(br_store *bs, uint64_t *n)
{
    lmdb_store *s = (lmdb_store *)bs;
    if (!s->has_posted) return BR_OK;
    MDB_txn *txn;
    br_status st = rd_begin(s, &txn);
    if (st != BR_OK) return st;
    MDB_stat ms;
    int rc = mdb_stat(txn, s->posted, &ms);
    if (rc)
        st = lmdb_err(s, rc, "counting posted books");
    else
        *n = ms.ms_entries;
    rd_end(s, txn);
    return st;
}

/* ---------------------------------------------------------------- publish -- */

/* Publishes of this process not yet committed or aborted. */
static atomic_int live_pubs;

/* meta["publish"] = "PID\tVERSION" while a publish runs. A marker whose
 * process is gone (killed mid-publish) is stale and taken over; so is one
 * of this process while it publishes nothing (an abort that could not
 * remove it: a full disk), else the process could never publish again. */
static br_status check_marker(lmdb_store *s, MDB_txn *txn)
{
    MDB_val k = sval("publish"), v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) return BR_OK;
    if (rc) return lmdb_err(s, rc, "reading the publish marker");
    char buf[128];
    size_t l = v.mv_size < sizeof buf - 1 ? v.mv_size : sizeof buf - 1;
    memcpy(buf, v.mv_data, l);
    buf[l] = '\0';
    long pid = strtol(buf, NULL, 10);
    char *tab = strchr(buf, '\t');
    int mine_done = pid == (long)getpid() && atomic_load(&live_pubs) == 0;
    if (pid > 0 && !mine_done && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
        return br_error(BR_EEXIST, "lmdb:%s: a publish of '%s' by process %ld is in progress",
                        s->dir, tab ? tab + 1 : "?", pid);
    br_log(BR_LOG_WARN, "lmdb:%s: taking over from an interrupted publish of '%s' (pid %ld)",
           s->dir, tab ? tab + 1 : "?", pid);
    return BR_OK;
}

static br_status l_pub_begin(br_store *bs, const char *version, br_store_pub **out)
{
    lmdb_store *s = (lmdb_store *)bs;
    MDB_txn *txn;
    br_status st = wr_begin(s, &txn);
    if (st != BR_OK) return st;
    int cur;
    st = current_slot(s, txn, &cur);
    if (st == BR_OK) st = check_marker(s, txn);
    if (st == BR_OK && cur >= 0) {
        br_store_info info;
        st = read_info(s, txn, cur, &info);
        if (st == BR_OK && !strcmp(info.version, version))
            st = br_error(BR_EEXIST, "lmdb:%s: version '%s' is the one being served", s->dir,
                          version);
    }
    int slot = cur < 0 ? 0 : cur ^ 1;
    int rc = 0;
    if (st == BR_OK) {
        /* Empty the spare slot: what a previous publish left there is older
         * than the served version, or half-written. */
        if ((rc = mdb_drop(txn, s->recs[slot], 0)) || (rc = mdb_drop(txn, s->books[slot], 0)))
            st = lmdb_err(s, rc, "clearing the spare slot");
    }
    if (st == BR_OK) {
        char marker[128];
        snprintf(marker, sizeof marker, "%ld\t%s", (long)getpid(), version);
        MDB_val k = sval("publish"), v = sval(marker);
        if ((rc = mdb_put(txn, s->meta, &k, &v, 0))) st = lmdb_err(s, rc, "writing the marker");
    }
    if (st != BR_OK) {
        wr_abort(s, txn);
        return st;
    }
    if ((st = wr_commit(s, txn)) != BR_OK) return st;
    lmdb_pub *p = br_calloc(1, sizeof *p);
    if (!p) return br_error(BR_ENOMEM, "publish");
    p->slot = slot;
    atomic_fetch_add(&live_pubs, 1);
    *out = &p->base;
    return BR_OK;
}

/* The open chunk transaction, starting one when needed. */
static br_status pub_txn(lmdb_pub *p, MDB_txn **txn)
{
    lmdb_store *s = (lmdb_store *)p->base.store;
    if (!p->txn) {
        br_status st = wr_begin(s, &p->txn);
        if (st != BR_OK) return st;
        p->ops = 0;
    }
    *txn = p->txn;
    return BR_OK;
}

/* Counts a put; commits the chunk when it is full. */
static br_status pub_done(lmdb_pub *p, br_status st, uint64_t ops)
{
    lmdb_store *s = (lmdb_store *)p->base.store;
    if (st != BR_OK) {
        wr_abort(s, p->txn);
        p->txn = NULL;
        return st;
    }
    p->ops += ops;
    if (p->ops >= s->chunk) {
        MDB_txn *txn = p->txn;
        p->txn = NULL;
        return wr_commit(s, txn);
    }
    return BR_OK;
}

static br_status l_pub_recs(br_store_pub *bp, const char *user, const void *val, size_t len)
{
    lmdb_pub *p = (lmdb_pub *)bp;
    lmdb_store *s = (lmdb_store *)bp->store;
    MDB_txn *txn;
    br_status st = pub_txn(p, &txn);
    if (st != BR_OK) return st;
    MDB_val k = sval(user), v = {len, (void *)val};
    int rc = mdb_put(txn, s->recs[p->slot], &k, &v, 0);
    return pub_done(p, rc ? lmdb_err(s, rc, "writing recs") : BR_OK, 1);
}

static br_status l_pub_seen(br_store_pub *bp, const char *user, const char *const *books, size_t n)
{
    lmdb_pub *p = (lmdb_pub *)bp;
    MDB_txn *txn;
    br_status st = pub_txn(p, &txn);
    if (st != BR_OK) return st;
    return pub_done(p, seen_merge((lmdb_store *)bp->store, txn, user, books, n), 1);
}

static br_status l_pub_recent(br_store_pub *bp, const br_event *events, size_t n)
{
    lmdb_pub *p = (lmdb_pub *)bp;
    MDB_txn *txn;
    br_status st = pub_txn(p, &txn);
    if (st != BR_OK) return st;
    return pub_done(p, apply_events((lmdb_store *)bp->store, txn, events, n, 0), n);
}

static br_status l_pub_book(br_store_pub *bp, const br_store_book *b)
{
    lmdb_pub *p = (lmdb_pub *)bp;
    MDB_txn *txn;
    br_status st = pub_txn(p, &txn);
    if (st != BR_OK) return st;
    return pub_done(p, put_book_in((lmdb_store *)bp->store, txn, p->slot, b), 1);
}

static void pub_free(lmdb_pub *p)
{
    atomic_fetch_sub(&live_pubs, 1);
    br_free(p->base.meta);
    br_free(p);
}

static br_status l_pub_commit(br_store_pub *bp)
{
    lmdb_pub *p = (lmdb_pub *)bp;
    lmdb_store *s = (lmdb_store *)bp->store;
    br_status st = BR_OK;
    if (p->txn) {
        MDB_txn *t = p->txn;
        p->txn = NULL;
        st = wr_commit(s, t);
    }
    MDB_txn *txn = NULL;
    if (st == BR_OK) st = wr_begin(s, &txn);
    if (st != BR_OK) {
        br_store_publish_abort(bp);
        return st;
    }
    /* The switch: info and metadata of the new slot, then the pointer, in
     * one transaction. */
    size_t vl = strlen(bp->version);
    unsigned char info[24 + BR_STORE_VERSION_MAX];
    br_put_u64(info, (uint64_t)time(NULL));
    br_put_u64(info + 8, bp->n_users);
    br_put_u64(info + 16, bp->n_books);
    memcpy(info + 24, bp->version, vl);
    char ik[8], mk[8];
    snprintf(ik, sizeof ik, "info.%d", p->slot);
    snprintf(mk, sizeof mk, "meta.%d", p->slot);
    unsigned char slot = (unsigned char)p->slot;
    MDB_val k1 = sval(ik), v1 = {24 + vl, info};
    MDB_val k2 = sval(mk), v2 = sval(bp->meta ? bp->meta : "{}");
    MDB_val k3 = sval("current"), v3 = {1, &slot};
    MDB_val k4 = sval("publish");
    int rc;
    if ((rc = mdb_put(txn, s->meta, &k1, &v1, 0)) || (rc = mdb_put(txn, s->meta, &k2, &v2, 0)) ||
        (rc = mdb_put(txn, s->meta, &k3, &v3, 0)) ||
        ((rc = mdb_del(txn, s->meta, &k4, NULL)) && rc != MDB_NOTFOUND)) {
        st = lmdb_err(s, rc, "switching versions");
        wr_abort(s, txn);
        br_store_publish_abort(bp);
        return st;
    }
    st = wr_commit(s, txn);
    if (st != BR_OK) {
        br_store_publish_abort(bp);
        return st;
    }
    br_log(BR_LOG_INFO, "lmdb:%s: serving version '%s' (%llu readers, %llu books)", s->dir,
           bp->version, (unsigned long long)bp->n_users, (unsigned long long)bp->n_books);
    pub_free(p);
    return BR_OK;
}

static void l_pub_abort(br_store_pub *bp)
{
    lmdb_pub *p = (lmdb_pub *)bp;
    lmdb_store *s = (lmdb_store *)bp->store;
    if (p->txn) wr_abort(s, p->txn);
    p->txn = NULL;
    /* Best effort: drop our marker and free the half-written slot. If this
     * fails too, the next publish clears the slot and takes the marker over. */
    MDB_txn *txn;
    if (wr_begin(s, &txn) == BR_OK) {
        int cur = -1;
        current_slot(s, txn, &cur);
        MDB_val k = sval("publish");
        mdb_del(txn, s->meta, &k, NULL);
        if (cur != p->slot) {
            mdb_drop(txn, s->recs[p->slot], 0);
            mdb_drop(txn, s->books[p->slot], 0);
        }
        wr_commit(s, txn);
    }
    pub_free(p);
}

/* ------------------------------------------------------------ open/close -- */

static void l_close(br_store *bs)
{
    lmdb_store *s = (lmdb_store *)bs;
    for (int i = 0; i < s->npool; i++) mdb_txn_abort(s->pool[i]);
    if (s->env) mdb_env_close(s->env);
    pthread_rwlock_destroy(&s->maplock);
    pthread_mutex_destroy(&s->pool_mu);
    br_free(s->dir);
    br_free(s);
}

static const br_store_ops lmdb_ops = {
    .name = "lmdb",
    .close = l_close,
    .info = l_info,
    .get_recs = l_get_recs,
    .is_seen = l_is_seen,
    .get_seen = l_get_seen,
    .get_recent = l_get_recent,
    .get_reader = l_get_reader,
    .get_book = l_get_book,
    .update = l_update,
    .put_book = l_put_book,
    .put_posted = l_put_posted,
    .get_posted = l_get_posted,
    .list_posted = l_list_posted,
    .posted_count = l_posted_count,
    .pub_begin = l_pub_begin,
    .pub_recs = l_pub_recs,
    .pub_seen = l_pub_seen,
    .pub_recent = l_pub_recent,
    .pub_book = l_pub_book,
    .pub_commit = l_pub_commit,
    .pub_abort = l_pub_abort,
};

static br_status lmdb_opt(const char *key, const char *val, void *user)
{
    lmdb_store *s = user;
    if (!strcmp(key, "chunk")) return br__store_opt_u64(key, val, 1, 100000000, &s->chunk);
    if (!strcmp(key, "map_mb")) return br__store_opt_u64(key, val, 1, 1u << 24, &s->map_mb);
    return br_error(BR_EINVAL, "unknown lmdb store option '%s' (chunk, map_mb)", key);
}

/* Opens the named DBs (creating them when writable) and checks the format. */
static br_status open_dbs(lmdb_store *s, int rdonly)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, rdonly ? MDB_RDONLY : 0, &txn);
    if (rc) return lmdb_err(s, rc, "opening");
    unsigned fl = rdonly ? 0 : MDB_CREATE;
    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {{"meta", &s->meta},        {"recs.0", &s->recs[0]},   {"recs.1", &s->recs[1]},
               {"books.0", &s->books[0]}, {"books.1", &s->books[1]}, {"seen", &s->seen},
               {"recent", &s->recent}};
    br_status st = BR_OK;
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0] && st == BR_OK; i++) {
        rc = mdb_dbi_open(txn, dbs[i].name, fl, dbs[i].dbi);
        if (rc == MDB_NOTFOUND)
            st = br_error(BR_ENOTFOUND, "lmdb:%s: not a bookrec store (no '%s' database)", s->dir,
                          dbs[i].name);
        else if (rc)
            st = lmdb_err(s, rc, "opening a database");
    }
    /* added after the format's first release: absent from an older store
     * opened read-only, which then simply has no posted books */
    if (st == BR_OK) {
        rc = mdb_dbi_open(txn, "posted", fl, &s->posted);
        if (rc == 0)
            s->has_posted = 1;
        else if (rc != MDB_NOTFOUND || !rdonly)
            st = lmdb_err(s, rc, "opening a database");
    }
    if (st == BR_OK) {
        MDB_val k = sval("format"), v;
        rc = mdb_get(txn, s->meta, &k, &v);
        if (rc == MDB_NOTFOUND && !rdonly) {
            MDB_val nv = sval(FORMAT_TAG);
            rc = mdb_put(txn, s->meta, &k, &nv, 0);
            if (rc) st = lmdb_err(s, rc, "writing the format tag");
        } else if (rc == MDB_NOTFOUND) {
            st = br_error(BR_EFORMAT, "lmdb:%s: no format tag", s->dir);
        } else if (rc) {
            st = lmdb_err(s, rc, "reading the format tag");
        } else if (v.mv_size != strlen(FORMAT_TAG) || memcmp(v.mv_data, FORMAT_TAG, v.mv_size)) {
            st = br_error(BR_EFORMAT, "lmdb:%s: format '%.*s', this build reads '%s'", s->dir,
                          (int)(v.mv_size < 64 ? v.mv_size : 64), (char *)v.mv_data, FORMAT_TAG);
        }
    }
    if (st != BR_OK) {
        mdb_txn_abort(txn);
        return st;
    }
    rc = mdb_txn_commit(txn);
    return rc ? lmdb_err(s, rc, "opening") : BR_OK;
}

br_status br__store_lmdb_open(const char *uri, unsigned flags, br_store **out)
{
    lmdb_store *s = br_calloc(1, sizeof *s);
    if (!s) return br_error(BR_ENOMEM, "store");
    s->base.ops = &lmdb_ops;
    s->base.flags = flags;
    s->chunk = DEFAULT_CHUNK;
    s->map_mb = DEFAULT_MAP_MB;
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Writer preference: a map resize must not starve behind a stream of
     * readers. No code path takes the lock twice on one thread. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->maplock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&s->pool_mu, NULL);
    br_status st = br__store_parse_options(uri, &s->dir, lmdb_opt, s);
    if (st != BR_OK) {
        l_close(&s->base);
        return st;
    }
    if (!s->dir[0]) {
        l_close(&s->base);
        return br_error(BR_EINVAL, "store URI lmdb: needs a directory (lmdb:DIR)");
    }
    int rdonly = (flags & BR_STORE_RDONLY) != 0;
    struct stat sb;
    if (stat(s->dir, &sb) != 0) {
        if (rdonly || mkdir(s->dir, 0755) != 0) {
            st = br_error(rdonly ? BR_ENOTFOUND : BR_EIO, "lmdb:%s: %s", s->dir, strerror(errno));
            l_close(&s->base);
            return st;
        }
    } else if (!S_ISDIR(sb.st_mode)) {
        st = br_error(BR_EINVAL, "lmdb:%s: not a directory", s->dir);
        l_close(&s->base);
        return st;
    }
    int rc = env_open(s, rdonly, &s->env);
    if (rc) {
        st = lmdb_err(s, rc, "opening the environment");
        l_close(&s->base);
        return st;
    }
    int dead = 0;
    mdb_reader_check(s->env, &dead); /* reader slots of crashed processes */
    st = open_dbs(s, rdonly);
    if (st != BR_OK) {
        l_close(&s->base);
        return st;
    }
    *out = &s->base;
    return BR_OK;
}
