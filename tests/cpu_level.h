/* The SIMD level a cpu suite runs at (KD_CPU_SIMD, set per level by ctest) and whether
 * this host can run it: a level above what the CPU supports is not testable here, and
 * the suite says so and exits as skipped (never counted as passed). */
#ifndef KD_TEST_CPU_LEVEL_H
#define KD_TEST_CPU_LEVEL_H

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "cpu/cpu_ops.h"
#include "env.h"

/* The level under test and the CPU's VNNI bits (kd_cpu_simd_supported); returns 0 when
 * this host can run it (printed), otherwise writes the reason to why. */
static inline int kd_test_cpu_level(kd_simd *level, int *vnni, char *why, size_t cap)
{
    kd_simd best = kd_cpu_simd_supported(vnni);
    const char *want = getenv("KD_CPU_SIMD");
    *level = best;
    if (want) {
        int i = KD_SIMD_AVX512;
        if (kd_env_parse_choice("KD_CPU_SIMD", want, kd_simd_level_names, KD_SIMD_LEVEL_COUNT,
                                &i, why, cap) != KD_OK)
            i = KD_SIMD_AVX512;
        *level = (kd_simd)i;
        if (*level > best) {
            snprintf(why, cap, "KD_CPU_SIMD=%s is not testable on this host (it supports up to %s)",
                     want, kd_simd_name(best));
            return 1;
        }
        if (*level == KD_SIMD_VNNI && !*vnni) {
            snprintf(why, cap, "KD_CPU_SIMD=vnni is not testable on this host (neither AVX-VNNI "
                     "nor AVX-512 VNNI)");
            return 1;
        }
    }
    const char *note = "";
    if (*level == KD_SIMD_AVX512)
        note = *vnni & KD_VNNI_EVEX ? " (with VNNI)" : " (no VNNI: q8 uses the AVX2 kernels)";
    else if (*level == KD_SIMD_VNNI)
        note = *vnni & KD_VNNI_VEX ? " (AVX-VNNI, the VEX encoding)"
                                   : " (the AVX-512 VL encoding; the same kernels in AVX-VNNI's "
                                     "VEX encoding do not run on this host: not tested)";
    printf("SIMD level under test: %s%s\n", kd_simd_name(*level), note);
    return 0;
}

/* kd_test_cpu_level for the suites that need only the verdict. */
static inline int kd_test_cpu_level_untestable(char *why, size_t cap)
{
    kd_simd level;
    int vnni;
    return kd_test_cpu_level(&level, &vnni, why, cap);
}

#endif
