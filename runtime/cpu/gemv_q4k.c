/* Q4_K GEMV on the cpu. Per sub-block of 32: w = dl*q - ml, so
 *   sum_k w_k x_k = dl * sum(q_k x_k) - ml * sum(x_k);
 * the second sum depends on x alone and comes precomputed (job->xsum). */
#include <string.h>

#include "gemv.h"
#include "kd_quant.h"
#include "simd.h"

#ifdef KD_HAVE_X86
/* A Q4_K row's sums: the scaled quants' dot and the mins' (8 lanes each). */
typedef struct q4k_acc { __m256 dot, mins; } q4k_acc;

/* Sub-blocks 2p and 2p+1 share the 32 bytes qs[32p..32p+31]: byte l holds value l of
 * sub-block 2p (low nibble) and of 2p+1 (high nibble). Eight bytes at a time are widened
 * to 32-bit lanes once and split into both nibbles there:
 *   acc[m] += dl[0] * dot(lo, x[m] + 64p) + dl[1] * dot(hi, x[m] + 64p + 32). */
static inline __attribute__((always_inline)) KD_AVX2 void
q4k_pair(const uint8_t *qs, const float *dl, const kd_gemv_job *j, const float *x0, q4k_acc *acc,
         const int mc)
{
    const __m256i mask = _mm256_set1_epi32(0x0F);
    __m256 lo[4], hi[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(qs + 8 * i)));
        lo[i] = _mm256_cvtepi32_ps(_mm256_and_si256(v, mask));
        hi[i] = _mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4));
    }
    const __m256 s0 = _mm256_broadcast_ss(dl), s1 = _mm256_broadcast_ss(dl + 1);
    for (int m = 0; m < mc; m++) {
        const float *x = x0 + m * j->k;
        __m256 t0 = _mm256_mul_ps(lo[0], _mm256_loadu_ps(x));
        __m256 t1 = _mm256_mul_ps(hi[0], _mm256_loadu_ps(x + 32));
#pragma GCC unroll 3
        for (int i = 1; i < 4; i++) {
            t0 = _mm256_fmadd_ps(lo[i], _mm256_loadu_ps(x + 8 * i), t0);
            t1 = _mm256_fmadd_ps(hi[i], _mm256_loadu_ps(x + 32 + 8 * i), t1);
        }
        acc[m].dot = _mm256_fmadd_ps(s0, t0, acc[m].dot);
        acc[m].dot = _mm256_fmadd_ps(s1, t1, acc[m].dot);
    }
}

static inline __attribute__((always_inline)) KD_AVX2 q4k_acc q4k_zero(void)
{
    return (q4k_acc){_mm256_setzero_ps(), _mm256_setzero_ps()};
}

static inline __attribute__((always_inline)) KD_AVX2 float q4k_sum(q4k_acc a)
{
    return kd_hsum256(_mm256_sub_ps(a.dot, a.mins));
}

static inline __attribute__((always_inline)) KD_AVX2 void
q4k_block_avx2(const kd_gemv_job *j, const kd_block_q4_K *blk, int64_t b, int64_t m0, const int mc,
               q4k_acc acc[])
{
    float dl[8];
    /* sum_sb dmin*mn[sb] * xsum[m][sb], eight sub-blocks at once */
    const __m256 ml = kd_q4k_block_coeffs(blk, dl);
    for (int m = 0; m < mc; m++)
        acc[m].mins = _mm256_fmadd_ps(ml, _mm256_loadu_ps(j->xsum + (m0 + m) * (j->k / 32) + b * 8), acc[m].mins);
    const float *xb = j->x + m0 * j->k + b * KD_QK_K;
#pragma GCC unroll 4
    for (int p = 0; p < 4; p++)
        q4k_pair(blk->qs + 32 * p, dl + 2 * p, j, xb + 64 * p, acc, mc);
}

KD_GEMV_ROWS(q4k_rows_avx2, kd_block_q4_K, q4k_block_avx2, q4k_acc, q4k_zero, q4k_sum, KD_AVX2)

KD_GEMV_ROWS_BY_M(q4k_rows_simd, q4k_rows_avx2, KD_AVX2)
#endif

kd_status kd_cpu_gemv_q4k(const kd_cpu_env *e, const kd_call *c, int scalar)
{
#ifdef KD_HAVE_X86
    static const kd_gemv_levels levels = {q4k_rows_simd, kd_q4k_rows_avx512};
#else
    static const kd_gemv_levels levels = {NULL, NULL};
#endif
    return kd_cpu_gemv_drive(e, c, KD_TYPE_Q4_K, &levels, scalar);
}
