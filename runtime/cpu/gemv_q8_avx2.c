/* q8 GEMV kernels for AVX2 (also the AVX-512 CPUs without VNNI). Per 32 weights and row of
 * x: vpmaddubsw (u8 weight x s8 x -> 16 int16 pair sums) then vpmaddwd by the int16 scale
 * (-> 8 int32), added into one int32 accumulator per row; one convert and FMA per 256
 * values. The loop over 32-value chunks is outside the loop over rows, so a chunk is
 * decoded once for all rows while the rows' accumulators stay in the 16 registers. */
#include <string.h>

#include "gemv_q8.h"
#include "kd_quant.h"
#include "simd.h"

#ifdef KD_HAVE_X86
#define KD_INLINE static inline __attribute__((always_inline))

KD_INLINE KD_AVX2 __m256i dot32(__m256i wq, const int8_t *xq, __m256i scale)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(wq, _mm256_loadu_si256((const __m256i *)xq)), scale);
}

/* Scales as int16 lanes, each spread to where vpmaddubsw leaves its products. A block's 8
 * scales are widened to int16 once per block, 8 at a time with the same 8 in both 128-bit
 * lanes of a register (dup8_i8); then one in-lane vpshufb per chunk puts scale a in the
 * low lane's 8 int16 and scale b in the high lane's. For Q6_K (two scales per 32 weights)
 * this replaced two scalar loads, two broadcasts and an insert per chunk: the kernel ran
 * 1.47x faster on an L2-resident matrix. */
KD_INLINE KD_AVX2 __m256i spread_scales(__m256i dup8, int a, int b)
{
    /* spelled out byte by byte: gcc folds it to a constant; the shorter
     * _mm256_setr_m128i(_mm_set1_epi16(..)) form made it keep the eight indices on the
     * stack at M=8 (measured 10-25 % slower) */
    const __m256i idx = _mm256_setr_epi8(
        (char)(2 * a), (char)(2 * a + 1), (char)(2 * a), (char)(2 * a + 1), (char)(2 * a), (char)(2 * a + 1),
        (char)(2 * a), (char)(2 * a + 1), (char)(2 * a), (char)(2 * a + 1), (char)(2 * a), (char)(2 * a + 1),
        (char)(2 * a), (char)(2 * a + 1), (char)(2 * a), (char)(2 * a + 1),
        (char)(2 * b), (char)(2 * b + 1), (char)(2 * b), (char)(2 * b + 1), (char)(2 * b), (char)(2 * b + 1),
        (char)(2 * b), (char)(2 * b + 1), (char)(2 * b), (char)(2 * b + 1), (char)(2 * b), (char)(2 * b + 1),
        (char)(2 * b), (char)(2 * b + 1), (char)(2 * b), (char)(2 * b + 1));
    return _mm256_shuffle_epi8(dup8, idx);
}

/* 8 signed bytes widened to int16, in both 128-bit lanes. */
KD_INLINE KD_AVX2 __m256i dup8_i8(const void *p)
{
    return _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)p)));
}

/* acc[m] += one Q4_K block of a weight row . block b of row m of x, for m < mc (x: block b
 * of the first row of x; the next rows of x are nb blocks apart). */
KD_INLINE KD_AVX2 void q4k_block(const kd_block_q4_K *blk, const kd_q8_block *x, int64_t nb,
                                 const int mc, __m256 acc[])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    uint32_t smb[4]; /* smb: 8 scale bytes, then 8 min bytes */
    kd_q4k_unpack_scales(blk->scales, smb, smb + 2);
    const uint8_t *scb = (const uint8_t *)smb;
    /* each min twice, for the two bsums of its sub-block */
    const __m128i mn = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(smb + 2)));
    const __m256i mn16 = _mm256_setr_m128i(_mm_unpacklo_epi16(mn, mn), _mm_unpackhi_epi16(mn, mn));
    __m256i s[KD_Q8_MAX_MC];
    for (int m = 0; m < mc; m++)
        s[m] = _mm256_setzero_si256();
    for (int p = 0; p < 4; p++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * p));
        const __m256i lo = _mm256_and_si256(v, m4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        /* (spread_scales measured 5 % slower here: these broadcast from memory) */
        const __m256i sl = _mm256_set1_epi16(scb[2 * p]), sh = _mm256_set1_epi16(scb[2 * p + 1]);
        for (int m = 0; m < mc; m++) {
            const int8_t *xq = x[m * nb].qs + 64 * p;
            s[m] = _mm256_add_epi32(s[m], _mm256_add_epi32(dot32(lo, xq, sl), dot32(hi, xq + 32, sh)));
        }
    }
    const float d = _cvtsh_ss(blk->d), dmin = _cvtsh_ss(blk->dmin);
    for (int m = 0; m < mc; m++) {
        const kd_q8_block *xm = x + m * nb;
        const __m256i mins = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)xm->bsums), mn16);
        acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[m]), _mm256_set1_ps(d * xm->d), acc[m]);
        acc[m] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(dmin * xm->d), acc[m]);
    }
}

/* Chunk t (values 128h + 32t .. +31) of half h of a Q6_K block as unsigned bytes 0..63:
 * low nibbles from ql, bits 2t..2t+1 of qh moved to bits 4-5 (see kd_blocks.h). */
KD_INLINE KD_AVX2 __m256i q6k_chunk(const kd_block_q6_K *blk, int h, int t)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const __m256i l = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * h + 32 * (t & 1)));
    const __m256i hb = _mm256_loadu_si256((const __m256i *)(blk->qh + 32 * h));
    const __m256i lo = t < 2 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
    __m256i hi;
    switch (t) {
    case 0: hi = _mm256_slli_epi16(hb, 4); break;
    case 1: hi = _mm256_slli_epi16(hb, 2); break;
    case 2: hi = hb; break;
    default: hi = _mm256_srli_epi16(hb, 2); break;
    }
    return _mm256_or_si256(lo, _mm256_and_si256(hi, m30));
}

KD_INLINE KD_AVX2 void q6k_block(const kd_block_q6_K *blk, const kd_q8_block *x, int64_t nb,
                                 const int mc, __m256 acc[])
{
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk->scales));
    const __m256i sc_dup[2] = {dup8_i8(blk->scales), dup8_i8(blk->scales + 8)};
    __m256i s[KD_Q8_MAX_MC];
    for (int m = 0; m < mc; m++)
        s[m] = _mm256_setzero_si256();
    _Pragma("GCC unroll 8") /* constant c: shifts, shuffle indices */
    for (int c = 0; c < 8; c++) {
        const __m256i wq = q6k_chunk(blk, c / 4, c % 4);
        /* int16 pairs 0-7 are scale group 2c, pairs 8-15 group 2c+1 */
        const __m256i scale = spread_scales(sc_dup[c / 4], 2 * (c % 4), 2 * (c % 4) + 1);
        for (int m = 0; m < mc; m++)
            s[m] = _mm256_add_epi32(s[m], dot32(wq, x[m * nb].qs + 32 * c, scale));
    }
    const float d = _cvtsh_ss(blk->d);
    for (int m = 0; m < mc; m++) {
        const kd_q8_block *xm = x + m * nb;
        /* the -32 offset: 32 * sum_g scale[g] * bsums[g] */
        const __m256i off = _mm256_slli_epi32(
            _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)xm->bsums), sc16), 5);
        acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(s[m], off)),
                                 _mm256_set1_ps(d * xm->d), acc[m]);
    }
}

KD_Q8_LEVEL_KERNELS(avx2, __m256, _mm256_setzero_ps(), kd_hsum256, KD_AVX2)
#endif
