/*
 * test_core.c: the library foundation: status strings and error detail, the
 * allocator hook, the log callback, the seeded RNG, the thread setting, the
 * SIMD level and the progress reporter.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "testutil.h"

static void test_strerror_covers_every_code(void **state)
{
    (void)state;
    for (int st = BR_OK; st >= BR_EINTERNAL; st--) {
        const char *s = br_strerror((br_status)st);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
    }
    assert_string_equal(br_strerror((br_status)-999), "unknown error");
    assert_string_equal(br_strerror(BR_OK), "success");
}

static void test_error_detail(void **state)
{
    (void)state;
    br_error_clear();
    assert_string_equal(br_error_detail(), "");
    assert_int_equal(br_error(BR_EPARSE, "%s:%d: bad %s", "f.csv", 7, "thing"), BR_EPARSE);
    assert_string_equal(br_error_detail(), "f.csv:7: bad thing");
    assert_int_equal(br_error(BR_EIO, NULL), BR_EIO);
    assert_string_equal(br_error_detail(), br_strerror(BR_EIO));
    /* Long details are truncated, never overflowed. */
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    br_error(BR_EINVAL, "%s", big);
    assert_true(strlen(br_error_detail()) < sizeof big - 1);
    br_error_clear();
}

static size_t n_alloc, n_free;

static void *count_malloc(size_t size, void *user)
{
    (void)user;
    n_alloc++;
    return malloc(size);
}

static void *count_realloc(void *p, size_t size, void *user)
{
    (void)user;
    if (!p) n_alloc++;
    return realloc(p, size);
}

static void count_free(void *p, void *user)
{
    (void)user;
    n_free++;
    free(p);
}

static void test_allocator_hook_sees_every_allocation(void **state)
{
    (void)state;
    br_allocator a = {count_malloc, count_realloc, count_free, NULL};
    br_set_allocator(&a);
    n_alloc = n_free = 0;
    char *path = tu_data_path("books_edge.csv");
    br_set_allocator(&a);
    size_t before_alloc = n_alloc, before_free = n_free;
    br_catalog *cat = NULL;
    assert_int_equal(br_catalog_load(path, NULL, &cat, NULL), BR_OK);
    br_catalog_free(cat);
    assert_true(n_alloc > before_alloc);
    assert_int_equal(n_alloc - before_alloc, n_free - before_free);
    br_set_allocator(NULL);
    free(path); /* allocated through the counting allocator = malloc */
}

static void test_aligned_alloc(void **state)
{
    (void)state;
    for (size_t align = 16; align <= 4096; align *= 2) {
        void *p = br_aligned_alloc(1000, align);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % align, 0);
        memset(p, 0xab, 1000);
        br_aligned_free(p);
    }
    assert_null(br_aligned_alloc(10, 3));
    assert_null(br_aligned_alloc(SIZE_MAX - 8, 64));
    assert_null(br_calloc(SIZE_MAX / 2, 4));
    char *s = br_strndup("abcdef", 3);
    assert_string_equal(s, "abc");
    br_free(s);
}

static int log_calls;
static br_log_level log_last;

static void log_cb(br_log_level level, const char *msg, void *user)
{
    (void)user;
    log_calls++;
    log_last = level;
    assert_string_equal(msg, "hello 42");
}

static void test_log_is_silent_until_set_and_filters(void **state)
{
    (void)state;
    log_calls = 0;
    br_log(BR_LOG_ERROR, "hello %d", 42); /* no callback: nothing */
    br_log_set(log_cb, NULL, BR_LOG_WARN);
    br_log(BR_LOG_INFO, "hello %d", 42);
    assert_int_equal(log_calls, 0);
    br_log(BR_LOG_ERROR, "hello %d", 42);
    assert_int_equal(log_calls, 1);
    assert_int_equal(log_last, BR_LOG_ERROR);
    br_log_set(NULL, NULL, BR_LOG_DEBUG);
    br_log(BR_LOG_ERROR, "hello %d", 42);
    assert_int_equal(log_calls, 1);
}

static void test_rng_matches_reference_xoshiro(void **state)
{
    (void)state;
    /* Values from an independent Python transcription of splitmix64 +
     * xoshiro256** (Vigna's reference), seed 42. */
    br_rng r;
    br_rng_seed(&r, 42);
    assert_true(br_rng_next(&r) == 0x15780b2e0c2ec716ULL);
    assert_true(br_rng_next(&r) == 0x6104d9866d113a7eULL);
    assert_true(br_rng_next(&r) == 0xae17533239e499a1ULL);
}

static void test_rng_determinism_and_streams(void **state)
{
    (void)state;
    br_rng a, b;
    br_rng_seed(&a, 7);
    br_rng_seed(&b, 7);
    for (int i = 0; i < 1000; i++) assert_true(br_rng_next(&a) == br_rng_next(&b));
    br_rng_seed(&b, 8);
    int same = 0;
    for (int i = 0; i < 100; i++) same += br_rng_next(&a) == br_rng_next(&b);
    assert_int_equal(same, 0);
    br_rng c = a;
    br_rng_jump(&c);
    same = 0;
    for (int i = 0; i < 100; i++) same += br_rng_next(&a) == br_rng_next(&c);
    assert_int_equal(same, 0);
}

static void test_rng_below_is_in_range_and_uniform(void **state)
{
    (void)state;
    br_rng r;
    br_rng_seed(&r, 1);
    enum { K = 7, N = 70000 };
    int count[K] = {0};
    for (int i = 0; i < N; i++) {
        uint64_t v = br_rng_below(&r, K);
        assert_true(v < K);
        count[v]++;
    }
    /* chi-square with 6 degrees of freedom; 22.46 is the 0.999 quantile */
    double chi = 0, e = (double)N / K;
    for (int k = 0; k < K; k++) chi += (count[k] - e) * (count[k] - e) / e;
    assert_true(chi < 22.46);
    assert_true(br_rng_below(&r, 1) == 0);
    double sum = 0, sq = 0;
    for (int i = 0; i < N; i++) {
        double u = br_rng_uniform(&r);
        assert_true(u >= 0 && u < 1);
        double z = br_rng_normal(&r);
        sum += z;
        sq += z * z;
    }
    assert_true(fabs(sum / N) < 0.03);
    assert_true(fabs(sq / N - 1) < 0.03);
}

static void test_threads_setting(void **state)
{
    (void)state;
    br_set_num_threads(1);
    assert_int_equal(br_get_num_threads(), 1);
    br_set_num_threads(3);
    assert_int_equal(br_get_num_threads(), 3);
    br_set_num_threads(0);
    assert_true(br_get_num_threads() >= 1);
}

static int isa_logs;
static char isa_logged[256];

static void isa_log_cb(br_log_level level, const char *msg, void *user)
{
    (void)user;
    if (!strstr(msg, "SIMD")) return;
    isa_logs++;
    snprintf(isa_logged, sizeof isa_logged, "%d %s", (int)level, msg);
}

/* The SIMD level (src/core/isa.c): the best this CPU has, or the lower one
 * BOOKREC_ISA names; a higher one or an unknown name falls back to the best.
 * tests/CMakeLists.txt runs this program again under BOOKREC_ISA=avx2,
 * portable, avx512 and an unknown name, with BR_TEST_ISA saying what it
 * set: the same way it runs the kernel tests under each level, so a level
 * that is not honoured fails here rather than silently testing the default
 * path twice. The CPU's best is found here independently of the library. */
static void test_isa_level(void **state)
{
    (void)state;
    static const char *const names[] = {"portable", "avx2", "avx512"};
    int best = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        best = __builtin_cpu_supports("avx512f") ? 2 : 1;
#endif
    const char *req = getenv("BOOKREC_ISA"), *set = getenv("BR_TEST_ISA");
    if (set) assert_string_equal(req ? req : "(unset)", set);
    int asked = -1;
    for (int i = 0; req && i < 3; i++)
        if (!strcasecmp(req, names[i])) asked = i;
    int want = asked >= 0 && asked < best ? asked : best;

    /* chosen once, on first use, and logged then: DEBUG, WARN for a bad name */
    br_log_set(isa_log_cb, NULL, BR_LOG_DEBUG);
    assert_string_equal(br_isa_name(), names[want]);
    assert_string_equal(br_isa_name(), names[want]);
    br_log_set(NULL, NULL, BR_LOG_INFO);
    assert_int_equal(isa_logs, 1);
    char expect[256];
    snprintf(expect, sizeof expect, "%d SIMD kernels: %s",
             req && *req && asked < 0 ? BR_LOG_WARN : BR_LOG_DEBUG, br_isa_detail());
    assert_string_equal(isa_logged, expect);

    const char *detail = br_isa_detail();
    printf("isa: %s\n", detail);
    assert_true(!strncmp(detail, names[want], strlen(names[want])));
    assert_int_equal(detail[strlen(names[want])], ':');
    if (req && *req) assert_non_null(strstr(detail, "BOOKREC_ISA="));
    if (req && *req && asked < 0)
        assert_non_null(strstr(detail, "is not avx512, avx2 or portable"));
    if (asked > best) assert_non_null(strstr(detail, "asks for more than this CPU has"));
}

static int prog_calls, prog_stop_at;
static uint64_t prog_last_done, prog_last_total;

static int prog_cb(const char *stage, uint64_t done, uint64_t total, void *user)
{
    (void)user;
    assert_string_equal(stage, "unit");
    prog_calls++;
    prog_last_done = done;
    prog_last_total = total;
    return prog_stop_at && prog_calls >= prog_stop_at;
}

static void test_progress_throttles_and_cancels(void **state)
{
    (void)state;
    br_progress_set(prog_cb, NULL);
    prog_calls = 0;
    prog_stop_at = 0;
    br_progress p;
    br_progress_begin(&p, "unit", 1000000);
    for (uint64_t i = 0; i < 1000000; i++) assert_int_equal(br_progress_update(&p, i), BR_OK);
    assert_int_equal(br_progress_end(&p), BR_OK);
    /* begin + end + at most a few throttled updates in a fast loop */
    assert_true(prog_calls >= 2 && prog_calls < 50);
    assert_true(prog_last_done == 1000000 && prog_last_total == 1000000);

    prog_calls = 0;
    prog_stop_at = 1; /* the very first call asks to stop */
    br_progress_begin(&p, "unit", 10);
    assert_int_equal(br_progress_update(&p, 1), BR_ECANCELLED);
    assert_int_equal(br_progress_end(&p), BR_ECANCELLED);
    br_progress_set(NULL, NULL);
    prog_stop_at = 0;
}

/* The version is defined once, by core.h's three numbers; the library that
 * runs, CMake's project version and the generated bookrec.pc must all say
 * the same (a second definition, or a stale libbookrec, shows here). */
static void test_version(void **state)
{
    (void)state;
    char want[48];
    snprintf(want, sizeof want, "%d.%d.%d", BR_VERSION_MAJOR, BR_VERSION_MINOR, BR_VERSION_PATCH);
    assert_string_equal(br_version(), want);
    assert_string_equal(BR_VERSION_STRING, want);
    assert_string_equal(BR_TEST_PROJECT_VERSION, want);

    FILE *pc = fopen(BR_TEST_PC_FILE, "r");
    assert_non_null(pc);
    char line[256], pc_version[64] = "";
    while (fgets(line, sizeof line, pc))
        if (sscanf(line, "Version: %63s", pc_version) == 1) break;
    fclose(pc);
    assert_string_equal(pc_version, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_covers_every_code),
        cmocka_unit_test(test_error_detail),
        cmocka_unit_test(test_allocator_hook_sees_every_allocation),
        cmocka_unit_test(test_aligned_alloc),
        cmocka_unit_test(test_log_is_silent_until_set_and_filters),
        cmocka_unit_test(test_rng_matches_reference_xoshiro),
        cmocka_unit_test(test_rng_determinism_and_streams),
        cmocka_unit_test(test_rng_below_is_in_range_and_uniform),
        cmocka_unit_test(test_threads_setting),
        cmocka_unit_test(test_isa_level),
        cmocka_unit_test(test_progress_throttles_and_cancels),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
