/*
 * isa.h (internal): the one SIMD policy. The library is built for the
 * target's baseline (x86-64: SSE2) so that one binary runs anywhere; every
 * SIMD kernel also has variants compiled for AVX2 and AVX-512, and one
 * level, chosen once per process (isa.c), decides which variant every
 * kernel runs: the best the CPU has, or a lower one named by
 * BOOKREC_ISA=avx512|avx2|portable, so that the AVX2 and portable paths
 * run (and are tested) on an AVX-512 machine too. Not GCC target_clones:
 * its ifunc resolver runs before main and cannot be told what to pick.
 *
 * A compiled-for-each-ISA kernel is written once, as a static inline
 * BR_ISA_BODY function NAME_body; BR_ISA_VARIANTS stamps out NAME_avx512,
 * NAME_avx2 and NAME_portable, each the body inlined into a function
 * compiled for that instruction set (the vectoriser and GCC's vector
 * extensions then emit its instructions), and BR_ISA_CALL runs the one the
 * level picks:
 *
 *     static inline BR_ISA_BODY void scale_body(float *x, size_t n, float s) {...}
 *     BR_ISA_VARIANTS(scale, (float *x, size_t n, float s), (x, n, s))
 *     ...
 *     BR_ISA_CALL(scale, (x, n, s));
 *
 * Kernels written with intrinsics define the variants they have (under
 * BR_ISA_X86, with BR_TARGET_*) and choose by br__isa() themselves; a level
 * without a variant of its own runs the next lower one. The levels are
 * cumulative: AVX-512 means AVX-512F + AVX2 + FMA, AVX2 means AVX2 + FMA.
 * The target strings are the ones the kernels were tuned and checked with:
 * "avx512f" and "avx2" (no FMA contraction in the AVX2 variants).
 */
#ifndef BR_CORE_ISA_H
#define BR_CORE_ISA_H

typedef enum br_isa_level {
    BR_ISA_PORTABLE = 0,
    BR_ISA_AVX2 = 1,
    BR_ISA_AVX512 = 2,
} br_isa_level;

/* The level, resolved on the first call (thread-safe), then a load. */
extern int br__isa_level; /* -1 until resolved; read it through br__isa() */
br_isa_level br__isa_resolve(void);
static inline br_isa_level br__isa(void)
{
    int l = __atomic_load_n(&br__isa_level, __ATOMIC_ACQUIRE);
    return l >= 0 ? (br_isa_level)l : br__isa_resolve();
}

#if defined(__x86_64__) && defined(__GNUC__)
#define BR_ISA_X86           1
#define BR_TARGET_AVX512     __attribute__((target("avx512f")))
#define BR_TARGET_AVX512_FMA __attribute__((target("avx512f,fma")))
#define BR_TARGET_AVX2       __attribute__((target("avx2")))
#define BR_TARGET_AVX2_FMA   __attribute__((target("avx2,fma")))
#else
#define BR_ISA_X86 0
#endif

#define BR_ISA_BODY __attribute__((always_inline))
/* Each variant starts on a 64-byte boundary, so that where its loops fall
 * relative to the fetch windows does not depend on the code before it
 * (it moved ALS's row solve by 8% between two builds of the same code). */
#define BR_ISA_ALIGN __attribute__((aligned(64)))

/* One line per variant (clang-format would spread each over four). */
/* clang-format off */
#if BR_ISA_X86
#define BR_ISA_VARIANTS(name, params, args)                                                        \
    BR_ISA_ALIGN BR_TARGET_AVX512 static void name##_avx512 params { name##_body args; }           \
    BR_ISA_ALIGN BR_TARGET_AVX2 static void name##_avx2 params { name##_body args; }               \
    BR_ISA_ALIGN static void name##_portable params { name##_body args; }
/* The same for a kernel that returns a value of type `ret`. */
#define BR_ISA_VARIANTS_RET(ret, name, params, args)                                               \
    BR_ISA_ALIGN BR_TARGET_AVX512 static ret name##_avx512 params { return name##_body args; }     \
    BR_ISA_ALIGN BR_TARGET_AVX2 static ret name##_avx2 params { return name##_body args; }         \
    BR_ISA_ALIGN static ret name##_portable params { return name##_body args; }
/* The variant of `name` for the process's level (a function pointer, so a
 * loop can pick once and call many times). */
#define BR_ISA_PICK(name)                                                                          \
    __extension__({                                                                                \
        br_isa_level br_isa_l_ = br__isa();                                                        \
        br_isa_l_ == BR_ISA_AVX512 ? name##_avx512                                                 \
        : br_isa_l_ == BR_ISA_AVX2 ? name##_avx2                                                   \
                                   : name##_portable;                                              \
    })
#else
#define BR_ISA_VARIANTS(name, params, args)                                                        \
    BR_ISA_ALIGN static void name##_portable params { name##_body args; }
#define BR_ISA_VARIANTS_RET(ret, name, params, args)                                               \
    BR_ISA_ALIGN static ret name##_portable params { return name##_body args; }
#define BR_ISA_PICK(name) name##_portable
#endif
/* clang-format on */
#define BR_ISA_CALL(name, args) (BR_ISA_PICK(name) args)

#endif /* BR_CORE_ISA_H */
