/* q8 GEMV kernels for AVX-512 with VNNI. One 512-bit register holds 64 weights as bytes
 * in natural order (two 32-value sub-blocks); per 64 values and row of x:
 *   vpmaddubsw (u8 weight x s8 x -> 32 int16 pair sums, no saturation: |sum| <= 2*63*127)
 *   vpdpwssd   (x the int16 scale of each pair, accumulated into 16 int32 lanes)
 * so the scales are applied in integers and the only float work is one convert and one
 * FMA per 256 values. (vpdpbusd would sum four bytes into a lane before the per-32 scale
 * could be applied, so the scaled int16 form is the one that fits K-quants.) */
#include <string.h>

#include "gemv_q8.h"
#include "kd_quant.h"
#include "simd.h"

#ifdef KD_HAVE_X86
#define KD_VNNI512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define KD_INLINE static inline __attribute__((always_inline))

/* vpermw indices: lane i of the result takes int16 element idx[i]. */
static inline KD_VNNI512 __m512i repeat_index(int first, int run)
{
    int16_t idx[32];
    for (int i = 0; i < 32; i++)
        idx[i] = (int16_t)(first + i / run);
    return _mm512_loadu_si512(idx);
}

/* The 8 six-bit scales (sc) and mins (mn) of a Q4_K block as 8 bytes each. */
KD_INLINE void q4k_scales_mins(const uint8_t *s, uint32_t sc[2], uint32_t mn[2])
{
    uint32_t w[3];
    memcpy(w, s, 12);
    sc[0] = w[0] & 0x3f3f3f3fu;
    sc[1] = (w[2] & 0x0f0f0f0fu) | ((w[0] >> 2) & 0x30303030u);
    mn[0] = w[1] & 0x3f3f3f3fu;
    mn[1] = ((w[2] >> 4) & 0x0f0f0f0fu) | ((w[1] >> 2) & 0x30303030u);
}

KD_INLINE KD_VNNI512 void q4k_row(const kd_q8_job *j, int64_t r, int64_t m0, const int mc)
{
    const kd_block_q4_K *row = (const kd_block_q4_K *)j->w + r * j->nb;
    const kd_q8_block *x0 = j->xq + m0 * j->nb;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    /* 32 bytes of qs broadcast to both halves: low nibbles below, high nibbles above */
    const __m512i nib_shift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    const __m512i sc_idx[4] = {repeat_index(0, 16), repeat_index(2, 16), repeat_index(4, 16),
                               repeat_index(6, 16)};
    const __m256i mn_idx = _mm512_castsi512_si256(repeat_index(0, 2));
    __m512 acc[KD_Q8_MAX_MC];
    for (int m = 0; m < mc; m++)
        acc[m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < j->nb; b++) {
        const kd_block_q4_K *blk = row + b;
        uint32_t sc[2], mn[2];
        q4k_scales_mins(blk->scales, sc, mn);
        const __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc)));
        const __m256i mn16 = _mm256_permutexvar_epi16(
            mn_idx, _mm256_castsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn))));
        __m512i q4[4], scale[4];
        for (int p = 0; p < 4; p++) {
            __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk->qs + 32 * p)));
            q4[p] = _mm512_and_si512(_mm512_srlv_epi16(v, nib_shift), m4);
            scale[p] = _mm512_permutexvar_epi16(sc_idx[p], sc16);
        }
        const float d = _cvtsh_ss(blk->d), dmin = _cvtsh_ss(blk->dmin);
        for (int m = 0; m < mc; m++) {
            const kd_q8_block *x = x0 + m * j->nb + b;
            __m512i s = _mm512_setzero_si512();
            for (int p = 0; p < 4; p++)
                s = _mm512_dpwssd_epi32(
                    s, _mm512_maddubs_epi16(q4[p], _mm512_loadu_si512(x->qs + 64 * p)), scale[p]);
            const __m256i mins = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)x->bsums), mn16);
            acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(d * x->d), acc[m]);
            acc[m] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(_mm512_zextsi256_si512(mins)),
                                      _mm512_set1_ps(dmin * x->d), acc[m]);
        }
    }
    for (int m = 0; m < mc; m++)
        j->y[(m0 + m) * j->n + r] = _mm512_reduce_add_ps(acc[m]);
}

KD_INLINE KD_VNNI512 void q6k_row(const kd_q8_job *j, int64_t r, int64_t m0, const int mc)
{
    const kd_block_q6_K *row = (const kd_block_q6_K *)j->w + r * j->nb;
    const kd_q8_block *x0 = j->xq + m0 * j->nb;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    /* qh broadcast to both halves: bits 0-1 (values 0-31) and 2-3 (32-63) to bits 4-5;
     * then bits 4-5 (64-95) and 6-7 (96-127) */
    const __m512i hi_lo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i hi_hi = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i sc_idx[4] = {repeat_index(0, 8), repeat_index(4, 8), repeat_index(8, 8),
                               repeat_index(12, 8)};
    __m512 acc[KD_Q8_MAX_MC];
    for (int m = 0; m < mc; m++)
        acc[m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < j->nb; b++) {
        const kd_block_q6_K *blk = row + b;
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk->scales));
        __m512i q6[4], scale[4];
        for (int h = 0; h < 2; h++) {
            const __m512i l = _mm512_loadu_si512(blk->ql + 64 * h);
            const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk->qh + 32 * h)));
            q6[2 * h] = _mm512_or_si512(_mm512_and_si512(l, m4),
                                        _mm512_and_si512(_mm512_sllv_epi16(hb, hi_lo), m30));
            q6[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                            _mm512_and_si512(_mm512_srlv_epi16(hb, hi_hi), m30));
        }
        for (int q = 0; q < 4; q++)
            scale[q] = _mm512_permutexvar_epi16(sc_idx[q], _mm512_castsi256_si512(sc16));
        const float d = _cvtsh_ss(blk->d);
        for (int m = 0; m < mc; m++) {
            const kd_q8_block *x = x0 + m * j->nb + b;
            __m512i s = _mm512_setzero_si512();
            for (int q = 0; q < 4; q++)
                s = _mm512_dpwssd_epi32(
                    s, _mm512_maddubs_epi16(q6[q], _mm512_loadu_si512(x->qs + 64 * q)), scale[q]);
            /* the -32 offset: 32 * sum_g scale[g] * bsums[g] */
            const __m256i off = _mm256_slli_epi32(
                _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)x->bsums), sc16), 5);
            s = _mm512_sub_epi32(s, _mm512_zextsi256_si512(off));
            acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(d * x->d), acc[m]);
        }
    }
    for (int m = 0; m < mc; m++)
        j->y[(m0 + m) * j->n + r] = _mm512_reduce_add_ps(acc[m]);
}

KD_Q8_ROW_BY_MC(q4k_vnni512, q4k_row, KD_VNNI512)
KD_Q8_ROW_BY_MC(q6k_vnni512, q6k_row, KD_VNNI512)

const kd_q8_kernels kd_q8_vnni512_kernels = {q4k_vnni512, q6k_vnni512};
#endif
