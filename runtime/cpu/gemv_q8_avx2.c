/* q8 GEMV kernels for AVX2 (also the AVX-512 CPUs without VNNI): vpmaddubsw + vpmaddwd
 * per 32 weights and row of x (the block kernels: gemv_q8_ymm.h). */
#include "simd.h"

#ifdef KD_HAVE_X86
#define KD_YMM_TARGET KD_AVX2
#include "gemv_q8_ymm.h"

KD_Q8_LEVEL_KERNELS(avx2, __m256, _mm256_setzero_ps(), kd_hsum256, KD_AVX2, KD_YMM_X_LAYOUT)
#endif
