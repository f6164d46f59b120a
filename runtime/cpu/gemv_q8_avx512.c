/* q8 GEMV kernels for AVX-512 with VNNI. One 512-bit register holds 64 weights as bytes
 * in natural order (two 32-value sub-blocks of Q4_K, four 16-value groups of Q6_K); per
 * 256 values and row of x (scaled_dot256):
 *   4 x vpdpbusd  (u8 weight x s8 x, 4 products per int32 lane: each lane lies inside one
 *                  scale group, and its sum fits int16)
 *   2 x vpackssdw (two chunks' lanes to int16) + 2 x vpdpwssd (x the int16 scale of each
 *                  lane, summed into 16 int32 lanes)
 * so the scales are applied in integers and the only float work is one convert and one
 * FMA per 256 values. (The first version, vpmaddubsw + vpdpwssd per 64 values, measured
 * the same on Zen 4; this one issues 6 instead of 8 multiplies per 256 values.) */
#include <string.h>

#include "gemv_q8.h"
#include "kd_quant.h"
#include "simd.h"

#ifdef KD_HAVE_X86
#define KD_VNNI512 KD_TARGET("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")

/* vpermw indices: lane i of the result takes int16 element idx[i]. */
static inline KD_VNNI512 __m512i repeat_index(int first, int run)
{
    int16_t idx[32];
    for (int i = 0; i < 32; i++)
        idx[i] = (int16_t)(first + i / run);
    return _mm512_loadu_si512(idx);
}

/* vpermw indices for a vpackssdw of the vpdpbusd sums of chunks 2q and 2q+1 (64 values
 * each): int16 element e comes from 128-bit lane L = e / 8 of chunk 2q + (e % 8 >= 4),
 * int32 lane i = 4L + e % 4, which sums values 64p + 4i .. +3: scale group
 * (64p + 4i) / group_size. */
static inline KD_VNNI512 __m512i packed_scale_index(int q, int group_size)
{
    int16_t idx[32];
    for (int e = 0; e < 32; e++) {
        int p = 2 * q + (e % 8 >= 4), i = 4 * (e / 8) + e % 4;
        idx[e] = (int16_t)((64 * p + 4 * i) / group_size);
    }
    return _mm512_loadu_si512(idx);
}

/* sum over 256 values of scale(value) * w * x for one row: per 64 values one vpdpbusd (the
 * sums of 4 products fit int16: |4 * 63 * 128| < 2^15), the pairs of chunks packed to
 * int16 and multiplied by their scales with vpdpwssd. */
static inline __attribute__((always_inline)) KD_VNNI512 __m512i
scaled_dot256(const __m512i w[4], const int8_t *xq, const __m512i scale[2])
{
    __m512i s[4];
    for (int p = 0; p < 4; p++)
        s[p] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[p], _mm512_loadu_si512(xq + 64 * p));
    __m512i acc = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_packs_epi32(s[0], s[1]), scale[0]);
    return _mm512_dpwssd_epi32(acc, _mm512_packs_epi32(s[2], s[3]), scale[1]);
}

/* acc[m] += one Q4_K block of a weight row . block b of row m of x, for m < mc (x: block b
 * of the first row of x; the next rows of x are nb blocks apart). */
KD_INLINE KD_VNNI512 void q4k_block(const kd_block_q4_K *blk, const kd_q8_block *x, int64_t nb,
                                    const int mc, __m512 acc[])
{
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    /* 32 bytes of qs broadcast to both halves: low nibbles below, high nibbles above */
    const __m512i nib_shift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    const __m512i sc_idx[2] = {packed_scale_index(0, 32), packed_scale_index(1, 32)};
    uint32_t sc[2], mn[2];
    kd_q4k_unpack_scales(blk->scales, sc, mn);
    const __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc)));
    /* kd_q4k_neg_mins in lanes 0-7 (times x's xm, per row), lanes 8-15 0 */
    const __m512 wmin = _mm512_maskz_mov_ps(0x00ff, _mm512_castps256_ps512(kd_q4k_neg_mins(mn, blk->dmin)));
    __m512i q4[4], scale[2];
    for (int p = 0; p < 4; p++) {
        __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk->qs + 32 * p)));
        q4[p] = _mm512_and_si512(_mm512_srlv_epi16(v, nib_shift), m4);
    }
    for (int q = 0; q < 2; q++)
        scale[q] = _mm512_permutexvar_epi16(sc_idx[q], sc16);
    /* x's scale last, one FMA per row (a scalar d * dx and dmin * dx per row, each then
     * broadcast, cost more; the OpenCL q8 kernels measured the same) */
    const __m512 d16 = _mm512_set1_ps(_cvtsh_ss(blk->d));
    for (int m = 0; m < mc; m++) {
        const kd_q8_block *xm = x + m * nb;
        const __m512i s = scaled_dot256(q4, xm->qs, scale);
        acc[m] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s), d16), _mm512_set1_ps(xm->d), acc[m]);
        acc[m] = _mm512_fmadd_ps(wmin, _mm512_maskz_loadu_ps(0x00ff, xm->s.xm), acc[m]);
    }
}

KD_INLINE KD_VNNI512 void q6k_block(const kd_block_q6_K *blk, const kd_q8_block *x, int64_t nb,
                                    const int mc, __m512 acc[])
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    /* qh broadcast to both halves: bits 0-1 (values 0-31) and 2-3 (32-63) to bits 4-5;
     * then bits 4-5 (64-95) and 6-7 (96-127) */
    const __m512i hi_lo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i hi_hi = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i sc_idx[2] = {packed_scale_index(0, 16), packed_scale_index(1, 16)};
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk->scales));
    __m512i q6[4], scale[2];
    for (int h = 0; h < 2; h++) {
        const __m512i l = _mm512_loadu_si512(blk->ql + 64 * h);
        const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk->qh + 32 * h)));
        q6[2 * h] = _mm512_or_si512(_mm512_and_si512(l, m4),
                                    _mm512_and_si512(_mm512_sllv_epi16(hb, hi_lo), m30));
        q6[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                        _mm512_and_si512(_mm512_srlv_epi16(hb, hi_hi), m30));
    }
    for (int q = 0; q < 2; q++)
        scale[q] = _mm512_permutexvar_epi16(sc_idx[q], _mm512_castsi256_si512(sc16));
    const float d = _cvtsh_ss(blk->d);
    for (int m = 0; m < mc; m++) {
        const kd_q8_block *xm = x + m * nb;
        __m512i s = scaled_dot256(q6, xm->qs, scale);
        /* the -32 offset: 32 * sum_g scale[g] * bsums[g] */
        const __m256i off = _mm256_slli_epi32(
            _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)xm->s.bsums), sc16), 5);
        s = _mm512_sub_epi32(s, _mm512_zextsi256_si512(off));
        acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(d * xm->d), acc[m]);
    }
}

KD_Q8_LEVEL_KERNELS(vnni512, __m512, _mm512_setzero_ps(), _mm512_reduce_add_ps, KD_VNNI512, 0)
#endif
