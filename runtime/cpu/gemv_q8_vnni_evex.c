/* q8 GEMV kernels for 256-bit VNNI in its EVEX form (AVX-512 VL + VNNI): the kernels of
 * gemv_q8_vnni_vex.c, which an AVX-512 VNNI host runs at KD_CPU_SIMD=vnni when it has no
 * AVX-VNNI (AMD Zen 4 and 5, Intel Ice Lake), so that the source of the AVX-VNNI kernels
 * is tested wherever either encoding runs (the block kernels: gemv_q8_ymm.h). */
#include "simd.h"

#ifdef KD_HAVE_X86
#define KD_TARGET_VNNI_EVEX KD_TARGET("avx512vl,avx512vnni,avx2,fma,f16c")
#define KD_YMM_TARGET KD_TARGET_VNNI_EVEX
#define KD_YMM_DPBUSD _mm256_dpbusd_epi32
#define KD_YMM_DPWSSD _mm256_dpwssd_epi32
#include "gemv_q8_ymm.h"

KD_Q8_LEVEL_KERNELS(vnni_evex, __m256, _mm256_setzero_ps(), kd_hsum256, KD_TARGET_VNNI_EVEX, KD_YMM_X_LAYOUT)
#endif
