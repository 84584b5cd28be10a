/*
 * bookrec/core.h: the library's foundation, shared by every module.
 *
 * Status codes and error detail, the allocator hook, the log callback, the
 * seeded random number generator, the thread-count setting and the progress
 * reporter. Nothing here prints or exits: the caller (usually the `bookrec`
 * CLI) decides what the user sees.
 */
#ifndef BOOKREC_CORE_H
#define BOOKREC_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version, defined here and nowhere else: CMakeLists.txt reads these
 * three lines (the project's version, the shared library's, bookrec.pc's),
 * br_version() returns BR_VERSION_STRING, made of them. */
#define BR_VERSION_MAJOR    0
#define BR_VERSION_MINOR    1
#define BR_VERSION_PATCH    0
#define BR_VERSION_STR_(x)  #x
#define BR_VERSION_XSTR_(x) BR_VERSION_STR_(x)
#define BR_VERSION_STRING                                                                          \
    BR_VERSION_XSTR_(BR_VERSION_MAJOR)                                                             \
    "." BR_VERSION_XSTR_(BR_VERSION_MINOR) "." BR_VERSION_XSTR_(BR_VERSION_PATCH)

#if defined(__GNUC__)
#define BR_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define BR_PRINTF(fmt, args)
#endif

/* BR_API marks the public API, every function and variable declared in
 * the headers of include/bookrec/: the library is built with hidden
 * visibility, so libbookrec.so exports these and nothing else
 * (docs/architecture.md, "What the library exports"; the `symbols` test
 * checks both ways). */
#if defined(__GNUC__)
#define BR_API __attribute__((visibility("default")))
#else
#define BR_API
#endif

/* ---------------------------------------------------------------- status -- */

/* Every fallible library call returns one of these. BR_OK is 0; failures are
 * negative so `if (st < 0)` and `if (st != BR_OK)` both read naturally. */
typedef enum br_status {
    BR_OK = 0,
    BR_ENOMEM = -1,       /* allocation failed */
    BR_EINVAL = -2,       /* invalid argument from the caller */
    BR_EIO = -3,          /* operating-system I/O error (open, read, write, fsync) */
    BR_EPARSE = -4,       /* malformed input data (CSV, JSON, numbers) */
    BR_ENOTFOUND = -5,    /* unknown id, missing file or key */
    BR_EFORMAT = -6,      /* bad file format: magic, version, truncation */
    BR_EUNSUPPORTED = -7, /* valid request this build cannot do */
    BR_ERANGE = -8,       /* value out of the allowed range */
    BR_EEXIST = -9,       /* already exists */
    BR_ECANCELLED = -10,  /* stopped by the caller (progress callback) */
    BR_ESTORE = -11,      /* store backend error (LMDB, Redis) */
    BR_ENET = -12,        /* network error */
    BR_EINTERNAL = -13,   /* a bug: an invariant did not hold */
} br_status;

/* A short, static, human-readable description of a status code. */
BR_API const char *br_strerror(br_status st);

/* Detail of the most recent failure on the calling thread, for example
 * "ratings.csv:17: rating 'five' is not a number". Valid until the next
 * failing call on this thread; "" when there is none. */
BR_API const char *br_error_detail(void);

/* Clears the calling thread's error detail. */
BR_API void br_error_clear(void);

/* Sets the calling thread's error detail and returns `st`, so library code
 * can `return br_error(BR_EPARSE, "%s:%zu: ...", ...)`. Public so that
 * modules built on bookrec report errors the same way. */
BR_API br_status br_error(br_status st, const char *fmt, ...) BR_PRINTF(2, 3);

/* Library version as "MAJOR.MINOR.PATCH". */
BR_API const char *br_version(void);

/* ------------------------------------------------------------ allocation -- */

/* All library allocations go through these; install your own allocator with
 * br_set_allocator before any other call. Aligned blocks must be released
 * with br_aligned_free. */
typedef struct br_allocator {
    void *(*malloc_fn)(size_t size, void *user);
    void *(*realloc_fn)(void *ptr, size_t size, void *user);
    void (*free_fn)(void *ptr, void *user);
    void *user;
} br_allocator;

/* NULL restores the C library allocator. */
BR_API void br_set_allocator(const br_allocator *alloc);

BR_API void *br_malloc(size_t size);
BR_API void *br_calloc(size_t n, size_t size); /* overflow-checked, zeroed */
BR_API void *br_realloc(void *ptr, size_t size);
BR_API void br_free(void *ptr);
BR_API char *br_strdup(const char *s);
BR_API char *br_strndup(const char *s, size_t n);
/* `align` a power of two >= sizeof(void *); BR_ALIGN suits SIMD kernels. */
#define BR_ALIGN 64
BR_API void *br_aligned_alloc(size_t size, size_t align);
BR_API void br_aligned_free(void *ptr);

/* ------------------------------------------------------------------- log -- */

typedef enum br_log_level {
    BR_LOG_DEBUG = 0,
    BR_LOG_INFO = 1,
    BR_LOG_WARN = 2,
    BR_LOG_ERROR = 3,
} br_log_level;

typedef void (*br_log_fn)(br_log_level level, const char *msg, void *user);

/* The library is silent until a callback is installed. Messages below
 * `min_level` are not formatted at all. fn = NULL silences it again. */
BR_API void br_log_set(br_log_fn fn, void *user, br_log_level min_level);
BR_API void br_log(br_log_level level, const char *fmt, ...) BR_PRINTF(2, 3);

/* ------------------------------------------------------------------- rng -- */

/* xoshiro256** (Blackman & Vigna, 2018), state seeded from a 64-bit seed
 * through splitmix64. Period 2^256 - 1; br_rng_jump advances by 2^128 steps
 * to hand non-overlapping streams to threads. The state is a plain value:
 * copy it to fork a stream. */
typedef struct br_rng {
    uint64_t s[4];
} br_rng;

BR_API void br_rng_seed(br_rng *rng, uint64_t seed);
BR_API uint64_t br_rng_next(br_rng *rng);
/* Uniform in [0, n) without modulo bias (Lemire's multiply-and-reject). n > 0. */
BR_API uint64_t br_rng_below(br_rng *rng, uint64_t n);
/* Uniform double in [0, 1) with 53 random bits. */
BR_API double br_rng_uniform(br_rng *rng);
/* Standard normal (Box-Muller on two uniforms; no cached second value so
 * the stream stays a pure function of the state). */
BR_API double br_rng_normal(br_rng *rng);
BR_API void br_rng_jump(br_rng *rng);

/* ------------------------------------------------------------------ hash -- */

/* 64-bit FNV-1a of n bytes (the standard offset basis and prime: "" ->
 * 0xcbf29ce484222325). Stable across versions: the embedding cache's keys
 * and train's manifest store its values. */
BR_API uint64_t br_fnv1a64(const void *data, size_t n);

/* --------------------------------------------------------------- threads -- */

/* Number of threads every parallel kernel uses (OpenMP and OpenBLAS).
 * n <= 0 means "all processors" (the default). */
BR_API void br_set_num_threads(int n);
BR_API int br_get_num_threads(void);

/* OpenBLAS chooses its kernels when it is loaded, from the CPU model. A CPU
 * newer than the OpenBLAS build (Debian 12's 0.3.21 does not know Sapphire
 * Rapids) gets the generic "Prescott" kernels, 3-5x slower than the AVX2 or
 * AVX-512 ones. br_blas_core() names the kernels in use;
 * br_blas_better_core() names the OpenBLAS core type this CPU can run when
 * the generic one is in use and OPENBLAS_CORETYPE is unset, else NULL. The
 * choice can only be made before OpenBLAS loads: the CLI re-executes itself
 * with OPENBLAS_CORETYPE set; an application sets it in its environment. */
BR_API const char *br_blas_core(void);
BR_API const char *br_blas_better_core(void);

/* ------------------------------------------------------------------ SIMD -- */

/* The instruction set bookrec's own kernels run: "avx512", "avx2" or
 * "portable" (the build's baseline). Chosen once per process, on first use:
 * the best the CPU has, or a lower one named by the environment variable
 * BOOKREC_ISA=avx512|avx2|portable; a higher one than the CPU has falls
 * back to the best it has. br_isa_detail() says which and why, e.g.
 * "avx2: BOOKREC_ISA=avx512 asks for more than this CPU has; the best it
 * has" (also logged once at BR_LOG_DEBUG). OpenBLAS picks its own kernels
 * (OPENBLAS_CORETYPE, above). */
BR_API const char *br_isa_name(void);
BR_API const char *br_isa_detail(void);

/* -------------------------------------------------------------- progress -- */

/* Long jobs report progress through one process-wide callback. `stage` names
 * what runs ("load ratings", "embed"), `done` of `total` units (total 0 when
 * unknown). Called with done == total once at the end of each stage. Return
 * non-zero to ask the job to stop; it then fails with BR_ECANCELLED. The
 * library throttles calls to a few per second per stage. */
typedef int (*br_progress_fn)(const char *stage, uint64_t done, uint64_t total, void *user);

BR_API void br_progress_set(br_progress_fn fn, void *user);

/* Used by library stages (and by code built on bookrec) to report. */
typedef struct br_progress {
    const char *stage;
    uint64_t total;
    uint64_t last_ns; /* monotonic time of the last callback */
    int cancelled;
} br_progress;

BR_API void br_progress_begin(br_progress *p, const char *stage, uint64_t total);
/* Returns BR_ECANCELLED once the callback asked to stop, else BR_OK. */
BR_API br_status br_progress_update(br_progress *p, uint64_t done);
BR_API br_status br_progress_end(br_progress *p);

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC). */
BR_API uint64_t br_now_ns(void);

#ifdef __cplusplus
}
#endif

#endif /* BOOKREC_CORE_H */
