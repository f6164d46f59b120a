/* Q6_K GEMV on the cpu: w = (d*scale[g]) * (q - 32), a scale per 16 values. */
#include "gemv.h"
#include "kd_quant.h"
#include "simd.h"

#ifdef KD_HAVE_X86
/* 32 signed quants (one per byte) -> 4 vectors of 8 floats. */
static inline __attribute__((always_inline)) KD_AVX2 void i8_to_f32(__m256i v, __m256 q[4])
{
    __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    q[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
    q[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
    q[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
    q[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
}

/* The four quarters of one 128-value half: ql[64], qh[32] -> 4 x 32 quants in [-32, 31].
 * Quarter t takes ql[(t&1)*32 + l] >> 4*(t>>1) and qh[l] >> 2*t (see kd_blocks.h). */
static inline __attribute__((always_inline)) KD_AVX2 void
q6k_half_quants(const kd_block_q6_K *blk, int half, __m256i q[4])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30);
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * half));
    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * half + 32));
    const __m256i h = _mm256_loadu_si256((const __m256i *)(blk->qh + 32 * half));
    const __m256i off = _mm256_set1_epi8(32);
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m2));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m2));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m2));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_and_si256(_mm256_srli_epi16(h, 2), m2));
    for (int t = 0; t < 4; t++)
        q[t] = _mm256_sub_epi8(q[t], off);
}

static inline __attribute__((always_inline)) KD_AVX2 void
q6k_block_avx2(const kd_gemv_job *j, const kd_block_q6_K *blk, int64_t b, int64_t m0, const int mc,
               __m256 acc[])
{
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(blk->d));
    const __m128i sc = _mm_loadu_si128((const __m128i *)blk->scales);
    float ds[16]; /* d * scales[g] */
    _mm256_storeu_ps(ds, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc))));
    _mm256_storeu_ps(ds + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(
                                                  _mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8)))));
#pragma GCC unroll 2
    for (int half = 0; half < 2; half++) {
        __m256i qi[4];
        q6k_half_quants(blk, half, qi);
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) {
            const int g = 8 * half + 2 * t; /* scale groups g (values 0-15), g+1 (16-31) */
            const __m256 s0 = _mm256_broadcast_ss(ds + g), s1 = _mm256_broadcast_ss(ds + g + 1);
            __m256 q[4];
            i8_to_f32(qi[t], q);
            for (int m = 0; m < mc; m++) {
                const float *x = j->x + (m0 + m) * j->k + b * KD_QK_K + 128 * half + 32 * t;
                __m256 t0 = _mm256_mul_ps(q[0], _mm256_loadu_ps(x));
                t0 = _mm256_fmadd_ps(q[1], _mm256_loadu_ps(x + 8), t0);
                __m256 t1 = _mm256_mul_ps(q[2], _mm256_loadu_ps(x + 16));
                t1 = _mm256_fmadd_ps(q[3], _mm256_loadu_ps(x + 24), t1);
                acc[m] = _mm256_fmadd_ps(s0, t0, acc[m]);
                acc[m] = _mm256_fmadd_ps(s1, t1, acc[m]);
            }
        }
    }
}

KD_GEMV_ROWS(q6k_rows_avx2, kd_block_q6_K, q6k_block_avx2, __m256, _mm256_setzero_ps, kd_hsum256, KD_AVX2)

KD_GEMV_ROWS_BY_M(q6k_rows_simd, q6k_rows_avx2, KD_AVX2)
#endif

kd_status kd_cpu_gemv_q6k(const kd_cpu_env *e, const kd_call *c, int scalar)
{
#ifdef KD_HAVE_X86
    static const kd_gemv_levels levels = {q6k_rows_simd, kd_q6k_rows_avx512};
#else
    static const kd_gemv_levels levels = {NULL, NULL};
#endif
    return kd_cpu_gemv_drive(e, c, KD_TYPE_Q6_K, &levels, scalar);
}
