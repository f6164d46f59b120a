/* AVX-512 GEMV kernels (chosen at run time on CPUs with AVX-512F/BW). Same math as the
 * AVX2 kernels in gemv_q4k.c / gemv_q6k.c with 16 lanes: each decoded weight vector is
 * scaled once (w = dl * q) and FMA'd into every row of x it serves. */
#include <string.h>

#include "gemv.h"
#include "kd_quant.h"
#include "simd.h"

#ifdef KD_HAVE_X86

static inline const float *xb_at(const kd_gemv_job *j, int64_t m, int64_t b, int off)
{
    return j->x + m * j->k + b * KD_QK_K + off;
}

/* A Q4_K row's sums: the scaled quants' dot in 16 lanes, and the mins' in 8. */
typedef struct q4k512_acc { __m512 dot; __m256 mins; } q4k512_acc;

static inline __attribute__((always_inline)) KD_AVX512 q4k512_acc q4k512_zero(void)
{
    return (q4k512_acc){_mm512_setzero_ps(), _mm256_setzero_ps()};
}

static inline __attribute__((always_inline)) KD_AVX512 float q4k512_sum(q4k512_acc a)
{
    return _mm512_reduce_add_ps(a.dot) - kd_hsum256(a.mins);
}

static inline __attribute__((always_inline)) KD_AVX512 void
q4k_block_512(const kd_gemv_job *j, const kd_block_q4_K *blk, int64_t b, int64_t m0, const int mc,
              q4k512_acc acc[])
{
    const __m512i mask = _mm512_set1_epi32(0x0F);
    /* d * sc and dmin * mn as 8 floats each, once per block (scalar converts and a
     * scalar dot for the mins took a fifth of the block's time) */
    float dl[8];
    const __m256 ml = kd_q4k_block_coeffs(blk, dl);
    for (int m = 0; m < mc; m++)
        acc[m].mins = _mm256_fmadd_ps(ml, _mm256_loadu_ps(j->xsum + (m0 + m) * (j->k / 32) + b * 8), acc[m].mins);
    const float *xb = j->x + m0 * j->k + b * KD_QK_K;
#pragma GCC unroll 4
    for (int p = 0; p < 4; p++) {
        __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk->qs + 32 * p)));
        __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk->qs + 32 * p + 16)));
        const __m512 s0 = _mm512_set1_ps(dl[2 * p]), s1 = _mm512_set1_ps(dl[2 * p + 1]);
        const __m512 w[4] = {
            _mm512_mul_ps(s0, _mm512_cvtepi32_ps(_mm512_and_si512(v0, mask))),
            _mm512_mul_ps(s0, _mm512_cvtepi32_ps(_mm512_and_si512(v1, mask))),
            _mm512_mul_ps(s1, _mm512_cvtepi32_ps(_mm512_srli_epi32(v0, 4))),
            _mm512_mul_ps(s1, _mm512_cvtepi32_ps(_mm512_srli_epi32(v1, 4)))};
        for (int m = 0; m < mc; m++) {
            const float *x = xb + m * j->k + 64 * p;
            for (int i = 0; i < 4; i++)
                acc[m].dot = _mm512_fmadd_ps(w[i], _mm512_loadu_ps(x + 16 * i), acc[m].dot);
        }
    }
}

static inline __attribute__((always_inline)) KD_AVX512 void
q6k_block_512(const kd_gemv_job *j, const kd_block_q6_K *blk, int64_t b, int64_t m0, const int mc,
              __m512 acc[])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30);
    const __m256i off = _mm256_set1_epi8(32);
    /* d * scales[g] as 16 floats, once per block */
    float ds[16];
    const __m128i sc = _mm_loadu_si128((const __m128i *)blk->scales);
    _mm512_storeu_ps(ds, _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(blk->d)),
                                       _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc))));
#pragma GCC unroll 2
    for (int half = 0; half < 2; half++) {
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * half));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * half + 32));
        const __m256i h = _mm256_loadu_si256((const __m256i *)(blk->qh + 32 * half));
        /* quarter t: low/high nibbles of ql, bits 2t..2t+1 of qh (see kd_blocks.h), less
         * the offset 32 while still bytes: signed quants -32..31 */
        int8_t qb[128] __attribute__((aligned(32)));
        _mm256_store_si256((__m256i *)qb, _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(l0, m4),
                                                         _mm256_and_si256(_mm256_slli_epi16(h, 4), m2)), off));
        _mm256_store_si256((__m256i *)(qb + 32), _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(l1, m4),
                                                                _mm256_and_si256(_mm256_slli_epi16(h, 2), m2)), off));
        _mm256_store_si256((__m256i *)(qb + 64), _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                                                _mm256_and_si256(h, m2)), off));
        _mm256_store_si256((__m256i *)(qb + 96), _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                                                _mm256_and_si256(_mm256_srli_epi16(h, 2), m2)), off));
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) { /* 16 values per scale group */
            const __m512 s = _mm512_set1_ps(ds[8 * half + g]);
            const __m512 w = _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                                  _mm_load_si128((const __m128i *)(qb + 16 * g)))));
            for (int m = 0; m < mc; m++)
                acc[m] = _mm512_fmadd_ps(w, _mm512_loadu_ps(xb_at(j, m0 + m, b, 128 * half + 16 * g)), acc[m]);
        }
    }
}

KD_GEMV_ROWS(q4k_rows_512, kd_block_q4_K, q4k_block_512, q4k512_acc, q4k512_zero, q4k512_sum, KD_AVX512)
KD_GEMV_ROWS(q6k_rows_512, kd_block_q6_K, q6k_block_512, __m512, _mm512_setzero_ps, _mm512_reduce_add_ps, KD_AVX512)

KD_GEMV_ROWS_BY_M(q4k512, q4k_rows_512, KD_AVX512)
KD_GEMV_ROWS_BY_M(q6k512, q6k_rows_512, KD_AVX512)

void kd_q4k_rows_avx512(const kd_gemv_job *j, int64_t r0, int64_t r1) { q4k512(j, r0, r1); }
void kd_q6k_rows_avx512(const kd_gemv_job *j, int64_t r0, int64_t r1) { q6k512(j, r0, r1); }
#endif
