/* q8 GEMV kernels for AVX-VNNI (the VEX form of vpdpbusd, 256-bit: Intel's AVX2 CPUs from
 * Alder Lake and its E-core Xeons): vpdpbusd per 32 weights, vpdpwssd by the scales per
 * 64 (the block kernels: gemv_q8_ymm.h). The same source as gemv_q8_vnni_evex.c in the
 * other encoding, which the hosts with AVX-512 VNNI run and test. */
#include "simd.h"

#ifdef KD_HAVE_X86
#define KD_TARGET_VNNI_VEX KD_TARGET("avxvnni,avx2,fma,f16c")
#define KD_YMM_TARGET KD_TARGET_VNNI_VEX
#define KD_YMM_DPBUSD _mm256_dpbusd_avx_epi32
#define KD_YMM_DPWSSD _mm256_dpwssd_avx_epi32
#include "gemv_q8_ymm.h"

KD_Q8_LEVEL_KERNELS(vnni_vex, __m256, _mm256_setzero_ps(), kd_hsum256, KD_TARGET_VNNI_VEX, KD_YMM_X_LAYOUT)
#endif
