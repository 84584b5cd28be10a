/*
 * events_file.c: the embedded event log, an append-only file (format in
 * docs/store.md):
 *
 *   header  "BREVENTS" u32 version (1) u32 header size (16)
 *   record  u32 payload length, u32 CRC-32C of the payload, payload:
 *           i64 timestamp, f32 value, u8 type, u8 reader-id length,
 *           u8 book-id length, u8 0, reader id, book id
 *   (little-endian)
 *
 * Appends are group-committed: concurrent appenders of one handle queue
 * their batches, and the first in the queue (the leader) writes every
 * batch queued so far under an exclusive lock (a mutex for this process's
 * threads, flock for other processes) and fdatasyncs once for all of them,
 * so N concurrent appends cost one sync instead of N. When append returns
 * BR_OK the events are on disk; when it fails, the leader has cut the file
 * back to where the group started (still under the lock), so every batch
 * of the group fails and the log is as it was. A crash can leave a torn tail: a
 * last record cut short, or one whose bytes never reached the disk (zeros,
 * a checksum mismatch). Opening for writing finds it and truncates it;
 * readers stop before it. What is told apart from a torn tail: a bad record
 * followed by a valid chain of records to the end of the file is damage in
 * the middle, reported as BR_EFORMAT and never dropped silently.
 *
 * Consumer groups keep their checkpoint (the offset of the first record not
 * yet acknowledged) in PATH.ckpt-GROUP, replaced atomically (write new,
 * fsync, rename, fsync the directory).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/afile.h"
#include "core/fault.h"
#include "core/idcheck.h"
#include "store/events_internal.h"
#include "store/store_internal.h"

#define MAGIC       "BREVENTS"
#define HEADER      16
#define FIXED       16 /* payload bytes before the ids */
#define MAX_PAYLOAD (FIXED + 2 * BR_ID_MAX)

/* An appender waiting in the group-commit queue (on its own stack). */
typedef struct gc_waiter {
    const unsigned char *buf;
    size_t len;
    int done;
    br_status st;
    char detail[256]; /* the leader's error detail, for a follower's br_error */
    struct gc_waiter *next;
} gc_waiter;

typedef struct file_log {
    br_events base;
    char *path;
    int fd;
    pthread_mutex_t mu;
    pthread_mutex_t q_mu; /* the group-commit queue */
    pthread_cond_t q_cv;
    gc_waiter *q_head, *q_tail;
} file_log;

/* ---------------------------------------------------------------- CRC-32C -- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32c(const unsigned char *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    uint32_t c = 0xFFFFFFFFu;
    while (n--) c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ---------------------------------------------------------------- records -- */

/* Checks the record at `off` of the mapped file `m` (size n): BR_OK and its
 * total size, or BR_EFORMAT. Decodes it into *e when e is not NULL (the ids
 * are copied into user/book). */
static br_status parse_record(const unsigned char *m, size_t n, size_t off, size_t *size,
                              br_event *e, char *user, char *book)
{
    if (n - off < 8) return BR_EFORMAT;
    uint32_t len = br_get_u32(m + off), crc = br_get_u32(m + off + 4);
    if (len < FIXED + 2 || len > MAX_PAYLOAD || n - off - 8 < len) return BR_EFORMAT;
    const unsigned char *p = m + off + 8;
    if (crc32c(p, len) != crc) return BR_EFORMAT;
    unsigned ul = p[13], bl = p[14];
    if (p[12] >= BR_EVENT_NTYPES || ul == 0 || bl == 0 || ul >= BR_ID_MAX || bl >= BR_ID_MAX ||
        FIXED + ul + bl != len)
        return BR_EFORMAT;
    /* ids as every writer checks them (a checksum only says the bytes are
     * the ones written, not that a valid writer wrote them) */
    if (br__id_bad_byte((const char *)p + FIXED, ul) < ul ||
        br__id_bad_byte((const char *)p + FIXED + ul, bl) < bl)
        return BR_EFORMAT;
    if (e) {
        memcpy(user, p + FIXED, ul);
        user[ul] = '\0';
        memcpy(book, p + FIXED + ul, bl);
        book[bl] = '\0';
        e->user_id = user;
        e->book_id = book;
        e->timestamp = (int64_t)br_get_u64(p);
        e->value = br_get_f32(p + 8);
        e->type = (br_event_type)p[12];
    }
    *size = 8 + len;
    return BR_OK;
}

/* Scans records from `from`; *end receives the end of the last valid one.
 * When a bad record is found: BR_OK if it is a torn tail (*torn = 1),
 * BR_EFORMAT if valid records follow it. */
static br_status scan(const char *path, const unsigned char *m, size_t n, size_t from, size_t *end,
                      int *torn, uint64_t *count)
{
    size_t off = from, sz;
    uint64_t c = 0;
    *torn = 0;
    while (off < n) {
        if (parse_record(m, n, off, &sz, NULL, NULL, NULL) != BR_OK) {
            /* Does a valid chain start after the bad record's claimed size? */
            uint32_t len = n - off >= 8 ? br_get_u32(m + off) : 0;
            size_t next = off + 8 + (size_t)len;
            if (len >= FIXED + 2 && len <= MAX_PAYLOAD && next < n) {
                size_t q = next;
                while (q < n && parse_record(m, n, q, &sz, NULL, NULL, NULL) == BR_OK) q += sz;
                if (q == n)
                    return br_error(BR_EFORMAT,
                                    "%s: corrupt record at byte %zu (valid records follow it: "
                                    "not a torn tail; refusing to drop events)",
                                    path, off);
            }
            *torn = 1;
            break;
        }
        off += sz;
        c++;
    }
    *end = off;
    if (count) *count = c;
    return BR_OK;
}

/* Maps the file read-only; *m = NULL for an empty file. */
static br_status map_file(file_log *l, unsigned char **m, size_t *n)
{
    struct stat sb;
    if (fstat(l->fd, &sb) != 0) return br_error(BR_EIO, "%s: %s", l->path, strerror(errno));
    *n = (size_t)sb.st_size;
    *m = NULL;
    if (*n == 0) return BR_OK;
    void *p = mmap(NULL, *n, PROT_READ, MAP_SHARED, l->fd, 0);
    if (p == MAP_FAILED) return br_error(BR_EIO, "%s: mmap: %s", l->path, strerror(errno));
    *m = p;
    return BR_OK;
}

static br_status check_header(file_log *l, const unsigned char *m, size_t n)
{
    if (n < HEADER || memcmp(m, MAGIC, 8) != 0)
        return br_error(BR_EFORMAT, "%s: not a bookrec event log (bad magic)", l->path);
    uint32_t v = br_get_u32(m + 8);
    if (v != 1 || br_get_u32(m + 12) != HEADER)
        return br_error(BR_EFORMAT, "%s: event log version %u, this build reads version 1", l->path,
                        v);
    return BR_OK;
}

/* Locks the log against this process's threads and other processes. */
static void lock(file_log *l, int exclusive)
{
    pthread_mutex_lock(&l->mu);
    while (flock(l->fd, exclusive ? LOCK_EX : LOCK_SH) != 0 && errno == EINTR) {
    }
}

static void unlock(file_log *l)
{
    flock(l->fd, LOCK_UN);
    pthread_mutex_unlock(&l->mu);
}

/* -------------------------------------------------------------- operations -- */

static void f_close(br_events *ev)
{
    file_log *l = (file_log *)ev;
    if (l->fd >= 0) close(l->fd);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->q_mu);
    pthread_cond_destroy(&l->q_cv);
    br_free(l->path);
    br_free(l);
}

/* Writes the batches of waiters first..last (a chain of the queue) and
 * syncs once: BR_OK when all are on disk; otherwise the file is cut back
 * to where it was, so none of them is. Called by the leader alone. */
static br_status write_group(file_log *l, gc_waiter *first, gc_waiter *last)
{
    lock(l, 1);
    br_status st = BR_OK;
    struct stat sb;
    off_t before = fstat(l->fd, &sb) == 0 ? sb.st_size : -1;
    for (gc_waiter *w = first; st == BR_OK; w = w->next) {
        size_t done = 0;
        while (done < w->len && st == BR_OK) {
            ssize_t r = br__fault_write(l->fd, w->buf + done, w->len - done);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0)
                st = br_error(BR_EIO, "%s: write: %s", l->path, strerror(errno));
            else
                done += (size_t)r;
        }
        if (w == last) break;
    }
    if (st == BR_OK && br__fault_fdatasync(l->fd) != 0)
        st = br_error(BR_EIO, "%s: fdatasync: %s", l->path, strerror(errno));
    /* A half-written group is cut off again, so a failed append leaves the
     * log as it was (and a crash here leaves a torn tail for open to cut). */
    if (st != BR_OK && before >= 0 && ftruncate(l->fd, before) == 0) fdatasync(l->fd);
    unlock(l);
    return st;
}

/* Queues w; the appender at the head of the queue leads: it takes every
 * batch queued so far, writes and syncs them (write_group), hands each its
 * result and passes the lead to the next one queued meanwhile. A follower
 * only waits. Returns w's result (with its detail). */
static br_status group_commit(file_log *l, gc_waiter *w)
{
    pthread_mutex_lock(&l->q_mu);
    if (l->q_tail)
        l->q_tail->next = w;
    else
        l->q_head = w;
    l->q_tail = w;
    while (!w->done && l->q_head != w) pthread_cond_wait(&l->q_cv, &l->q_mu);
    if (w->done) {
        pthread_mutex_unlock(&l->q_mu);
        return w->st == BR_OK ? BR_OK : br_error(w->st, "%s", w->detail);
    }
    gc_waiter *last = l->q_tail; /* the group: everything queued so far */
    pthread_mutex_unlock(&l->q_mu);

    br_status st = write_group(l, w, last);

    pthread_mutex_lock(&l->q_mu);
    gc_waiter *next = last->next;
    for (gc_waiter *q = w; q; q = q == last ? NULL : q->next) {
        q->st = st;
        if (st != BR_OK) snprintf(q->detail, sizeof q->detail, "%s", br_error_detail());
        q->done = 1;
    }
    l->q_head = next;
    if (!next) l->q_tail = NULL;
    pthread_cond_broadcast(&l->q_cv);
    pthread_mutex_unlock(&l->q_mu);
    return st;
}

static br_status f_append(br_events *ev, const br_event *events, size_t n)
{
    file_log *l = (file_log *)ev;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += 8 + FIXED + strlen(events[i].user_id) + strlen(events[i].book_id);
    unsigned char *buf = br_malloc(total);
    if (!buf) return br_error(BR_ENOMEM, "event batch of %zu bytes", total);
    unsigned char *q = buf;
    for (size_t i = 0; i < n; i++) {
        const br_event *e = &events[i];
        size_t ul = strlen(e->user_id), bl = strlen(e->book_id), len = FIXED + ul + bl;
        unsigned char *p = q + 8;
        br_put_u64(p, (uint64_t)e->timestamp);
        br_put_f32(p + 8, e->value);
        p[12] = (unsigned char)e->type;
        p[13] = (unsigned char)ul;
        p[14] = (unsigned char)bl;
        p[15] = 0;
        memcpy(p + FIXED, e->user_id, ul);
        memcpy(p + FIXED + ul, e->book_id, bl);
        br_put_u32(q, (uint32_t)len);
        br_put_u32(q + 4, crc32c(p, len));
        q += 8 + len;
    }
    gc_waiter w = {.buf = buf, .len = total};
    br_status st = group_commit(l, &w);
    br_free(buf);
    return st;
}

/* ---------------------------------------------------------- checkpoints -- */

static char *ckpt_path(file_log *l, const char *group)
{
    size_t n = strlen(l->path) + strlen(group) + 8;
    char *p = br_malloc(n);
    if (p) snprintf(p, n, "%s.ckpt-%s", l->path, group);
    return p;
}

static br_status read_ckpt(file_log *l, const char *group, uint64_t *off)
{
    *off = HEADER;
    char *path = ckpt_path(l, group);
    if (!path) return br_error(BR_ENOMEM, "path");
    FILE *f = fopen(path, "r");
    br_status st = BR_OK;
    if (f) {
        unsigned long long v;
        if (fscanf(f, "bookrec-events-checkpoint 1\n%llu", &v) != 1 || v < HEADER)
            st = br_error(BR_EFORMAT, "%s: not a checkpoint file", path);
        else
            *off = v;
        fclose(f);
    } else if (errno != ENOENT) {
        st = br_error(BR_EIO, "%s: %s", path, strerror(errno));
    }
    br_free(path);
    return st;
}

static br_status write_ckpt(file_log *l, const char *group, uint64_t off)
{
    char *path = ckpt_path(l, group);
    if (!path) return br_error(BR_ENOMEM, "path");
    char text[64];
    int tl = snprintf(text, sizeof text, "bookrec-events-checkpoint 1\n%" PRIu64 "\n", off);
    br_status st = br__afile_write(path, text, (size_t)tl);
    br_free(path);
    return st;
}

static br_status f_read(br_events *ev, const char *group, size_t max, br_event_fn fn, void *user,
                        size_t *count, char *last)
{
    file_log *l = (file_log *)ev;
    uint64_t from;
    br_status st = read_ckpt(l, group, &from);
    if (st != BR_OK) return st;
    lock(l, 0);
    unsigned char *m;
    size_t n;
    st = map_file(l, &m, &n);
    unlock(l); /* appends only add past n; the mapped prefix does not change */
    if (st != BR_OK) return st;
    if (from > n) {
        if (m) munmap(m, n);
        return br_error(BR_EFORMAT,
                        "%s: checkpoint of group '%s' (byte %" PRIu64
                        ") is past the end of the log (%zu bytes)",
                        l->path, group, from, n);
    }
    size_t off = (size_t)from, sz;
    char ub[BR_ID_MAX], bb[BR_ID_MAX], pos[BR_EVENTS_POS_MAX];
    br_event e;
    while (off < n && (max == 0 || *count < max)) {
        if (parse_record(m, n, off, &sz, &e, ub, bb) != BR_OK) break; /* torn tail: the end */
        off += sz;
        snprintf(pos, sizeof pos, "%zu", off);
        st = fn(&e, pos, user);
        if (st != BR_OK) break;
        (*count)++;
        memcpy(last, pos, sizeof pos);
    }
    if (m) munmap(m, n);
    return st;
}

static br_status f_ack(br_events *ev, const char *group, const char *pos)
{
    file_log *l = (file_log *)ev;
    char *end;
    errno = 0;
    unsigned long long to = strtoull(pos, &end, 10);
    if (errno || *end || to < HEADER)
        return br_error(BR_EINVAL, "%s: '%s' is not a position of this log", l->path, pos);
    uint64_t from;
    br_status st = read_ckpt(l, group, &from);
    if (st != BR_OK || to <= from) return st;
    /* The position must be a record boundary reached from the checkpoint. */
    lock(l, 0);
    unsigned char *m;
    size_t n;
    st = map_file(l, &m, &n);
    unlock(l);
    if (st != BR_OK) return st;
    size_t off = (size_t)from, sz;
    while (off < to && off < n && parse_record(m, n, off, &sz, NULL, NULL, NULL) == BR_OK)
        off += sz;
    if (m) munmap(m, n);
    if (off != to)
        return br_error(BR_EINVAL, "%s: '%s' is not a record boundary of this log", l->path, pos);
    return write_ckpt(l, group, to);
}

static br_status f_count(br_events *ev, uint64_t *count)
{
    file_log *l = (file_log *)ev;
    lock(l, 0);
    unsigned char *m;
    size_t n, end;
    int torn;
    br_status st = map_file(l, &m, &n);
    unlock(l);
    if (st != BR_OK) return st;
    st = scan(l->path, m, n, HEADER, &end, &torn, count);
    if (m) munmap(m, n);
    return st;
}

static const br_events_ops file_ops = {f_close, f_append, f_read, f_ack, f_count, NULL};

br_status br__events_file_open(const char *path, unsigned flags, br_events **out)
{
    file_log *l = br_calloc(1, sizeof *l);
    if (!l) return br_error(BR_ENOMEM, "event log");
    l->base.ops = &file_ops;
    l->base.flags = flags;
    l->fd = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->q_mu, NULL);
    pthread_cond_init(&l->q_cv, NULL);
    l->path = br_strdup(path);
    int rdonly = (flags & BR_EVENTS_RDONLY) != 0;
    if (!l->path) {
        f_close(&l->base);
        return br_error(BR_ENOMEM, "path");
    }
    l->fd = open(path, rdonly ? O_RDONLY : O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (l->fd < 0) {
        br_status st =
            br_error(errno == ENOENT ? BR_ENOTFOUND : BR_EIO, "%s: %s", path, strerror(errno));
        f_close(&l->base);
        return st;
    }
    lock(l, !rdonly);
    unsigned char *m;
    size_t n;
    br_status st = map_file(l, &m, &n);
    if (st == BR_OK && n == 0 && !rdonly) {
        unsigned char h[HEADER];
        memcpy(h, MAGIC, 8);
        br_put_u32(h + 8, 1);
        br_put_u32(h + 12, HEADER);
        if (write(l->fd, h, HEADER) != HEADER || fsync(l->fd) != 0)
            st = br_error(BR_EIO, "%s: writing the header: %s", path, strerror(errno));
    } else if (st == BR_OK && n == 0) {
        st = br_error(BR_EFORMAT, "%s: empty file, not an event log", path);
    } else if (st == BR_OK) {
        st = check_header(l, m, n);
        size_t end;
        int torn;
        if (st == BR_OK) st = scan(path, m, n, HEADER, &end, &torn, NULL);
        if (st == BR_OK && torn && !rdonly) {
            br_log(BR_LOG_WARN,
                   "%s: cutting a torn tail of %zu bytes at byte %zu (an append "
                   "interrupted by a crash)",
                   path, n - end, end);
            if (ftruncate(l->fd, (off_t)end) != 0 || fsync(l->fd) != 0)
                st = br_error(BR_EIO, "%s: truncating the torn tail: %s", path, strerror(errno));
        }
    }
    if (m) munmap(m, n);
    unlock(l);
    if (st != BR_OK) {
        f_close(&l->base);
        return st;
    }
    *out = &l->base;
    return BR_OK;
}
