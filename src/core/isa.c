/*
 * isa.c: the SIMD level every kernel runs at (see isa.h), chosen once per
 * process on first use: the best this CPU has, or lower when BOOKREC_ISA
 * says so. A request above what the CPU has falls back to the best it has
 * (running AVX-512 code there would be SIGILL); an unknown value is ignored
 * with a warning. Which level, and why, is logged once at DEBUG and told by
 * br_isa_name() / br_isa_detail().
 */
#include "core/isa.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "bookrec/core.h"

int br__isa_level = -1;
static pthread_once_t isa_once = PTHREAD_ONCE_INIT;
static char isa_detail[192];
static int isa_log_level = -1; /* the log line still to write, once */

static const char *const isa_names[] = {"portable", "avx2", "avx512"};

/* The levels are cumulative (isa.h): AVX-512 kernels sit next to AVX2+FMA
 * ones, so each level asks for everything below it. __builtin_cpu_supports
 * also checks that the OS saves the wide registers. */
static br_isa_level cpu_best(void)
{
#if BR_ISA_X86
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2 && __builtin_cpu_supports("avx512f")) return BR_ISA_AVX512;
    if (avx2) return BR_ISA_AVX2;
#endif
    return BR_ISA_PORTABLE;
}

static void isa_pick(void)
{
    const br_isa_level best = cpu_best();
    br_isa_level l = best;
    const char *env = getenv("BOOKREC_ISA");
    int unknown = 0;
    if (!env || !*env) {
        snprintf(isa_detail, sizeof isa_detail, "%s: the best this CPU has", isa_names[l]);
    } else {
        int want = -1;
        for (int i = 0; i < 3; i++)
            if (!strcasecmp(env, isa_names[i])) want = i;
        if (want < 0) {
            unknown = 1;
            snprintf(isa_detail, sizeof isa_detail,
                     "%s: BOOKREC_ISA=%.40s is not avx512, avx2 or portable; the best this CPU has",
                     isa_names[l], env);
        } else if ((br_isa_level)want > best) {
            snprintf(isa_detail, sizeof isa_detail,
                     "%s: BOOKREC_ISA=%s asks for more than this CPU has; the best it has",
                     isa_names[l], isa_names[want]);
        } else {
            l = (br_isa_level)want;
            snprintf(isa_detail, sizeof isa_detail, "%s: BOOKREC_ISA=%s (this CPU has %s)",
                     isa_names[l], isa_names[want], isa_names[best]);
        }
    }
    __atomic_store_n(&isa_log_level, unknown ? BR_LOG_WARN : BR_LOG_DEBUG, __ATOMIC_RELAXED);
    __atomic_store_n(&br__isa_level, (int)l, __ATOMIC_RELEASE);
}

br_isa_level br__isa_resolve(void)
{
    pthread_once(&isa_once, isa_pick);
    /* Logged outside pthread_once: the application's callback may call
     * back into the library. */
    int lv = __atomic_exchange_n(&isa_log_level, -1, __ATOMIC_ACQ_REL);
    if (lv >= 0) br_log((br_log_level)lv, "SIMD kernels: %s", isa_detail);
    return (br_isa_level)__atomic_load_n(&br__isa_level, __ATOMIC_ACQUIRE);
}

const char *br_isa_name(void)
{
    return isa_names[br__isa()];
}

const char *br_isa_detail(void)
{
    br__isa();
    return isa_detail;
}
