/*
 * simd.h (internal): BR_SIMD_CLONES, the attribute that compiles a kernel
 * for AVX-512, AVX2 and plain x86-64 and picks one at load time (GCC
 * target_clones), so a generic build still runs the wide code where the
 * CPU has it. Feature names, not arch= names: arch= dispatch matches CPU
 * models and misses newer ones. Empty on other compilers and targets.
 */
#ifndef BR_CORE_SIMD_H
#define BR_CORE_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BR_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BR_SIMD_CLONES
#endif

#endif /* BR_CORE_SIMD_H */
