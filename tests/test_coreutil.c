/*
 * test_coreutil.c: the shared helpers of src/core/, each tested here once:
 * the FNV-1a hash (hash.h, br_fnv1a64) against the standard vectors, the
 * atomic file writer (afile.h: concurrent writers of one path, failed
 * writes, no temporary left behind), the string builder (sbuf.h) and the
 * top-k heap (topk.h) against its plain twin.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "core/afile.h"
#include "core/hash.h"
#include "core/sbuf.h"
#include "core/topk.h"

/* ------------------------------------------------------------------ hash -- */

static void test_fnv1a64_vectors(void **state)
{
    (void)state;
    /* The published FNV-1a 64 test vectors (offset basis
     * 14695981039346656037, prime 1099511628211). */
    static const struct {
        const char *s;
        uint64_t h;
    } v[] = {
        {"", 0xcbf29ce484222325ULL},
        {"a", 0xaf63dc4c8601ec8cULL},
        {"foobar", 0x85944171f73967e8ULL},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_true(br_fnv1a64(v[i].s, strlen(v[i].s)) == v[i].h);
        assert_true(br__fnv1a64_update(BR__FNV1A64_INIT, v[i].s, strlen(v[i].s)) == v[i].h);
    }
    assert_true(BR__FNV1A64_INIT == 14695981039346656037ULL);
    /* Incremental: any split of the input gives the one-shot value. */
    const char *text = "the quick brown fox jumps over the lazy dog";
    size_t n = strlen(text);
    uint64_t whole = br_fnv1a64(text, n);
    for (size_t cut = 0; cut <= n; cut++) {
        uint64_t h = br__fnv1a64_update(BR__FNV1A64_INIT, text, cut);
        assert_true(br__fnv1a64_update(h, text + cut, n - cut) == whole);
    }
}

/* ----------------------------------------------------------- atomic file -- */

/* Entries of dir other than "." and ".."; names joined by ' ' into buf. */
static int dir_entries(const char *dir, char *buf, size_t cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    buf[0] = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        n++;
        strncat(buf, e->d_name, cap - strlen(buf) - 2);
        strcat(buf, " ");
    }
    closedir(d);
    return n;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = br_malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void test_afile_write_commit_abort(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("afile_basic");
    char *path = join(dir, "f.bin"), names[512];
    mode_t old_mask = umask(022);
    assert_int_equal(br__afile_write(path, "old\n", 4), BR_OK);
    umask(old_mask);
    size_t len;
    char *t = tu_read_file(path, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(t, "old\n", 4);
    br_free(t);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644); /* 0666 less the umask, as fopen */
    assert_int_equal(dir_entries(dir, names, sizeof names), 1);

    /* Aborted: the old file stays, no temporary. */
    br__afile a;
    assert_int_equal(br__afile_open(&a, path), BR_OK);
    assert_non_null(a.f);
    assert_int_equal(dir_entries(dir, names, sizeof names), 2); /* the temporary, beside */
    assert_non_null(strstr(names, "f.bin.tmp."));
    fputs("half a new fi", a.f);
    br__afile_abort(&a);
    br__afile_abort(&a); /* released: a no-op */
    t = tu_read_file(path, &len);
    assert_int_equal(len, 4);
    br_free(t);
    assert_int_equal(dir_entries(dir, names, sizeof names), 1);

    /* Committed: the new content, read back through the same stream first. */
    assert_int_equal(br__afile_open(&a, path), BR_OK);
    fputs("new content", a.f);
    assert_int_equal(fflush(a.f), 0);
    assert_int_equal(fseek(a.f, 0, SEEK_SET), 0);
    char back[4] = {0};
    assert_int_equal(fread(back, 1, 3, a.f), 3);
    assert_string_equal(back, "new");
    assert_int_equal(fseek(a.f, 0, SEEK_END), 0);
    assert_int_equal(br__afile_commit(&a), BR_OK);
    assert_null(a.f);
    t = tu_read_file(path, &len);
    assert_int_equal(len, 11);
    assert_memory_equal(t, "new content", 11);
    br_free(t);
    assert_int_equal(dir_entries(dir, names, sizeof names), 1);

    /* A folder that does not exist. */
    assert_status_detail(br__afile_write("/nonexistent/dir/x.bin", "x", 1), BR_EIO,
                         "/nonexistent/dir/x.bin: cannot create");
    br_free(path);
    br_free(dir);
}

/* A write that fails half-way (the file size limit: EFBIG) leaves the old
 * file as it was and no temporary behind. */
static void test_afile_failed_write_keeps_old(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("afile_fail");
    char *path = join(dir, "f.bin"), names[512];
    assert_int_equal(br__afile_write(path, "old\n", 4), BR_OK);
    size_t big = 1 << 20;
    char *data = br_malloc(big);
    memset(data, 'x', big);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64 << 10;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of the signal */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    br_status st = br__afile_write(path, data, big);
    /* also through the stream: writes the writer did not check */
    br__afile a;
    br_status st2 = br__afile_open(&a, path);
    if (st2 == BR_OK) {
        fwrite(data, 1, big, a.f);
        st2 = br__afile_commit(&a);
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_status_detail(st, BR_EIO, "f.bin: write failed");
    assert_int_equal(st2, BR_EIO);
    size_t len;
    char *t = tu_read_file(path, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(t, "old\n", 4);
    br_free(t);
    assert_int_equal(dir_entries(dir, names, sizeof names), 1);
    br_free(data);
    br_free(path);
    br_free(dir);
}

#define RACE_LEN    (192 << 10)
#define RACE_ROUNDS 40

typedef struct race {
    const char *path;
    char fill;
    atomic_int *writing, *failed, *torn, *reads;
} race;

static void *race_writer(void *arg)
{
    race *r = arg;
    char *buf = br_malloc(RACE_LEN);
    memset(buf, r->fill, RACE_LEN);
    for (int i = 0; i < RACE_ROUNDS; i++)
        if (br__afile_write(r->path, buf, RACE_LEN) != BR_OK) atomic_fetch_add(r->failed, 1);
    br_free(buf);
    atomic_fetch_sub(r->writing, 1);
    return NULL;
}

/* Every read of the file, while both write, is one writer's whole file. */
static void *race_reader(void *arg)
{
    race *r = arg;
    while (atomic_load(r->writing) > 0) {
        size_t len = 0;
        char *t = tu_read_file(r->path, &len);
        if (!t) {
            atomic_fetch_add(r->torn, 1);
            continue;
        }
        int whole = len == RACE_LEN && (t[0] == 'A' || t[0] == 'B');
        for (size_t i = 1; whole && i < len; i++) whole = t[i] == t[0];
        if (!whole) atomic_fetch_add(r->torn, 1);
        atomic_fetch_add(r->reads, 1);
        br_free(t);
    }
    return NULL;
}

/* Two writers of the same path at once (threads of one process: the same
 * pid, so a temporary named after the pid would be shared, as a fixed
 * ".tmp" would be between processes) each succeed every time, a reader
 * never sees a mixture or a short file, and no temporary is left. */
static void test_afile_concurrent_writers(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("afile_race");
    char *path = join(dir, "shared.bin"), names[512];
    char *init = br_malloc(RACE_LEN);
    memset(init, 'A', RACE_LEN);
    assert_int_equal(br__afile_write(path, init, RACE_LEN), BR_OK);
    br_free(init);
    atomic_int writing = 2, failed = 0, torn = 0, reads = 0;
    race ra = {path, 'A', &writing, &failed, &torn, &reads};
    race rb = {path, 'B', &writing, &failed, &torn, &reads};
    pthread_t ta, tb, tr;
    assert_int_equal(pthread_create(&tr, NULL, race_reader, &ra), 0);
    assert_int_equal(pthread_create(&ta, NULL, race_writer, &ra), 0);
    assert_int_equal(pthread_create(&tb, NULL, race_writer, &rb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_join(tr, NULL);
    assert_int_equal(atomic_load(&failed), 0);
    assert_int_equal(atomic_load(&torn), 0);
    assert_true(atomic_load(&reads) > 0);
    assert_int_equal(dir_entries(dir, names, sizeof names), 1);
    br_free(path);
    br_free(dir);
}

static void test_afile_symlink(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("afile_link");
    char *link = join(dir, "current"), got[64], names[512];
    assert_int_equal(br__afile_symlink("versions/v1", link), BR_OK);
    assert_int_equal(br__afile_symlink("versions/v2", link), BR_OK); /* over the old one */
    ssize_t n = readlink(link, got, sizeof got - 1);
    assert_true(n > 0);
    got[n] = 0;
    assert_string_equal(got, "versions/v2");
    assert_int_equal(dir_entries(dir, names, sizeof names), 1);
    assert_int_equal(br__fsync_dir(dir), BR_OK);
    assert_status_detail(br__fsync_dir("/nonexistent/dir"), BR_EIO, "/nonexistent/dir");
    br_free(link);
    br_free(dir);
}

/* -------------------------------------------------------- string builder -- */

static void test_sbuf_build(void **state)
{
    (void)state;
    br__sbuf b = {0};
    char *t = br__sb_take(&b); /* nothing appended: "" */
    assert_string_equal(t, "");
    br_free(t);
    br__sb_str(&b, "{\"n\":");
    br__sb_printf(&b, "%d", 42);
    br__sb_put(&b, "}", 1);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.p, "{\"n\":42}");
    /* printf past its 256-byte stack buffer */
    char longs[600];
    memset(longs, 'z', sizeof longs - 1);
    longs[sizeof longs - 1] = 0;
    br__sb_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.p, "");
    br__sb_printf(&b, "<%s>", longs);
    assert_int_equal(b.len, 601);
    assert_int_equal(b.p[0], '<');
    assert_int_equal(b.p[600], '>');
    assert_int_equal(b.p[601], 0);
    /* growth past the first block keeps the content */
    br__sb_reset(&b);
    for (int i = 0; i < 2000; i++) br__sb_printf(&b, "%04d,", i);
    assert_int_equal(b.len, 10000);
    assert_memory_equal(b.p + 5 * 1234, "1234,", 5);
    /* scores */
    static const struct {
        double x;
        const char *s;
    } sc[] = {{0.5, "0.5"},
              {1, "1"},
              {0.1234567, "0.123457"},
              {-2.5, "-2.5"},
              {-1e-7, "0"},
              {0, "0"},
              {123456.0000004, "123456"},
              {1e9, "1e+09"},
              {-1e9, "-1e+09"},
              {INFINITY, "inf"},
              {NAN, "nan"}};
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) {
        br__sb_reset(&b);
        br__sb_score(&b, sc[i].x);
        assert_string_equal(b.p, sc[i].s);
    }
    /* JSON strings */
    br__sb_reset(&b);
    br__sb_json_str(&b, "a\"b\\c\n\t\r\x01\x7f\xc3\xa9");
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\n\\t\\r\\u0001\\u007f\xc3\xa9\"");
    t = br__sb_take(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_string_equal(t, "\"a\\\"b\\\\c\\n\\t\\r\\u0001\\u007f\xc3\xa9\"");
    br_free(t);
    br__sb_free(&b);
}

static void test_sbuf_pool(void **state)
{
    (void)state;
    br__sbuf b = {0};
    size_t off[3];
    assert_int_equal(br__sb_push(&b, "alpha", 5, &off[0]), BR_OK);
    assert_int_equal(br__sb_push(&b, "", 0, &off[1]), BR_OK);
    assert_int_equal(br__sb_push(&b, "gamma-and-more", 5, &off[2]), BR_OK); /* n bytes only */
    assert_int_equal(off[0], 0);
    assert_int_equal(off[1], 6);
    assert_int_equal(off[2], 7);
    assert_int_equal(b.len, 13);
    assert_string_equal(b.p + off[0], "alpha");
    assert_string_equal(b.p + off[1], "");
    assert_string_equal(b.p + off[2], "gamma");
    br__sb_free(&b);
}

/* An allocator that fails after `left` more calls. */
static int alloc_left;
static void *lim_malloc(size_t n, void *u)
{
    (void)u;
    return alloc_left-- > 0 ? malloc(n) : NULL;
}
static void *lim_realloc(void *p, size_t n, void *u)
{
    (void)u;
    return alloc_left-- > 0 ? realloc(p, n) : NULL;
}
static void lim_free(void *p, void *u)
{
    (void)u;
    free(p);
}

static void test_sbuf_oom_is_sticky(void **state)
{
    (void)state;
    br_allocator lim = {lim_malloc, lim_realloc, lim_free, NULL};
    br__sbuf b = {0};
    alloc_left = 1; /* the first block, not the second */
    br_set_allocator(&lim);
    br__sb_str(&b, "short");
    char big[5000];
    memset(big, 'q', sizeof big);
    br__sb_put(&b, big, sizeof big); /* needs a second block: fails */
    alloc_left = 100;
    br__sb_str(&b, "after"); /* sticky: dropped */
    size_t off;
    br_status st = br__sb_push(&b, "x", 1, &off);
    br_set_allocator(NULL);
    assert_int_equal(st, BR_ENOMEM);
    assert_true(b.oom);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.p, "short");
    br__sb_reset(&b); /* clears it */
    assert_false(b.oom);
    br__sb_str(&b, "again");
    assert_string_equal(b.p, "again");
    alloc_left = 0;
    br_set_allocator(&lim);
    br__sb_put(&b, big, sizeof big);
    br_set_allocator(NULL);
    assert_null(br__sb_take(&b)); /* incomplete: freed */
    assert_null(b.p);
}

/* ----------------------------------------------------------------- top-k -- */

static void check_sorted(const uint32_t *id, const float *v, uint32_t n)
{
    for (uint32_t p = 1; p < n; p++) {
        if (id[p] == UINT32_MAX) break;
        assert_true(v[p - 1] > v[p] || (v[p - 1] == v[p] && id[p - 1] < id[p]));
    }
}

/* The batched kernel against the oracle, row by row: few distinct values
 * (many ties), -inf (masked) and NaN entries, k from 0 past the row. */
static void test_topk_rows(void **state)
{
    (void)state;
    br_rng rng;
    br_rng_seed(&rng, 11);
    size_t rows = 40, cols = 517, ld = 520;
    float *s = br_malloc(rows * ld * 4);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < ld; j++) {
            float v = (float)br_rng_below(&rng, r % 2 ? 9 : 1000) - 4.0f;
            uint64_t z = br_rng_below(&rng, 10);
            if (z == 0) v = -INFINITY;
            if (z == 1 && r % 3 == 0) v = NAN;
            s[r * ld + j] = v;
        }
    /* A row with only 3 selectable entries. */
    for (size_t j = 0; j < cols; j++) s[5 * ld + j] = -INFINITY;
    s[5 * ld + 400] = 1;
    s[5 * ld + 3] = 1;
    s[5 * ld + 9] = 2;
    uint32_t ns[] = {0, 1, 10, 100, 600};
    for (int t = 0; t < 5; t++) {
        uint32_t n = ns[t];
        uint32_t *i1 = br_malloc(rows * n * 4 + 4), *i2 = br_malloc(n * 4 + 4);
        float *v1 = br_malloc(rows * n * 4 + 4), *v2 = br_malloc(n * 4 + 4);
        br__topk_rows(s, rows, cols, ld, n, i1, v1);
        for (size_t r = 0; r < rows; r++) {
            assert_int_equal(br__topk_ref(s + r * ld, cols, n, i2, v2), 0);
            assert_memory_equal(i1 + r * n, i2, n * 4);
            for (uint32_t p = 0; p < n; p++)
                assert_true(v1[r * n + p] == v2[p] || (isinf(v1[r * n + p]) && isinf(v2[p])));
            check_sorted(i2, v2, n);
        }
        if (n >= 10) {
            assert_int_equal(i1[5 * n + 0], 9);
            assert_int_equal(i1[5 * n + 1], 3); /* tie: lower index first */
            assert_int_equal(i1[5 * n + 2], 400);
            assert_int_equal(i1[5 * n + 3], UINT32_MAX);
            assert_true(v1[5 * n + 3] == -INFINITY);
        }
        br_free(i1);
        br_free(i2);
        br_free(v1);
        br_free(v2);
    }
    br_free(s);
}

/* Pushes in any order give the oracle's list (the order is total), and a
 * scan in blocks with a skip mask the oracle's list of the unskipped. */
static void test_topk_push_any_order_and_scan(void **state)
{
    (void)state;
    br_rng rng;
    br_rng_seed(&rng, 5);
    size_t n = 3000;
    float *s = br_malloc(n * 4), *masked = br_malloc(n * 4);
    uint32_t *perm = br_malloc(n * 4);
    uint8_t *skip = br_malloc(n);
    for (size_t i = 0; i < n; i++) {
        s[i] = (float)br_rng_below(&rng, 50) * 0.25f - 3.0f;
        if (i % 97 == 0) s[i] = NAN;
        if (i % 89 == 0) s[i] = -INFINITY;
        if (i % 83 == 0) s[i] = i % 2 ? -0.0f : 0.0f;
        perm[i] = (uint32_t)i;
        skip[i] = br_rng_below(&rng, 4) == 0;
        masked[i] = skip[i] ? -INFINITY : s[i];
    }
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = br_rng_below(&rng, i + 1);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    uint32_t ks[] = {0, 1, 7, 64, 2500, 3500};
    for (int t = 0; t < 6; t++) {
        uint32_t k = ks[t];
        uint32_t *hi = br_malloc(k * 4 + 4), *ri = br_malloc(k * 4 + 4);
        float *hs = br_malloc(k * 4 + 4), *rs = br_malloc(k * 4 + 4);
        assert_int_equal(br__topk_ref(s, n, k, ri, rs), 0);
        br__topk h = {k, 0, hs, hi};
        for (size_t i = 0; i < n; i++) br__topk_push(&h, s[perm[i]], perm[i]);
        uint32_t got = br__topk_sort(&h, k);
        assert_int_equal(h.n, 0);
        assert_memory_equal(hi, ri, k * 4);
        assert_memory_equal(hs, rs, k * 4); /* the same floats, -0.0 and all */
        assert_true(got <= k);
        for (uint32_t p = got; p < k; p++) assert_int_equal(hi[p], UINT32_MAX);
        /* blocks of 250 with the skip mask */
        assert_int_equal(br__topk_ref(masked, n, k, ri, rs), 0);
        h = (br__topk){k, 0, hs, hi};
        for (size_t b0 = 0; b0 < n; b0 += 250)
            br__topk_scan(&h, s + b0, n - b0 < 250 ? n - b0 : 250, (uint32_t)b0, skip);
        br__topk_sort(&h, k);
        assert_memory_equal(hi, ri, k * 4);
        assert_memory_equal(hs, rs, k * 4);
        br_free(hi);
        br_free(ri);
        br_free(hs);
        br_free(rs);
    }
    br_free(s);
    br_free(masked);
    br_free(perm);
    br_free(skip);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a64_vectors),
        cmocka_unit_test(test_afile_write_commit_abort),
        cmocka_unit_test(test_afile_failed_write_keeps_old),
        cmocka_unit_test(test_afile_concurrent_writers),
        cmocka_unit_test(test_afile_symlink),
        cmocka_unit_test(test_sbuf_build),
        cmocka_unit_test(test_sbuf_pool),
        cmocka_unit_test(test_sbuf_oom_is_sticky),
        cmocka_unit_test(test_topk_rows),
        cmocka_unit_test(test_topk_push_any_order_and_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
