/* The SIMD level a cpu suite runs at (KD_CPU_SIMD, set per level by ctest) and whether
 * this host can run it: a level above what the CPU supports is not testable here, and
 * the suite says so and exits as skipped (never counted as passed). */
#ifndef KD_TEST_CPU_LEVEL_H
#define KD_TEST_CPU_LEVEL_H

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "cpu/cpu_ops.h"

/* 0: testable (printed); otherwise the reason is written to why. */
static inline int kd_test_cpu_level_untestable(char *why, size_t cap)
{
    int vnni;
    kd_simd best = kd_cpu_simd_supported(&vnni);
    const char *want = getenv("KD_CPU_SIMD");
    kd_simd level = best;
    if (want) {
        level = strcasecmp(want, "scalar") == 0 ? KD_SIMD_SCALAR
                : strcasecmp(want, "avx2") == 0 ? KD_SIMD_AVX2
                                                : KD_SIMD_AVX512;
        if (level > best) {
            snprintf(why, cap, "KD_CPU_SIMD=%s is not testable on this host (it supports up to %s)",
                     want, kd_simd_name(best));
            return 1;
        }
    }
    printf("SIMD level under test: %s%s\n", kd_simd_name(level),
           level == KD_SIMD_AVX512 ? (vnni ? " (with VNNI)" : " (no VNNI: q8 uses the AVX2 kernels)") : "");
    return 0;
}

#endif
