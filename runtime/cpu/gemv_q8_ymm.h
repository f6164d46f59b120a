/* The q8 GEMV block kernels on 256-bit registers, written once for the three ymm levels;
 * the including file says how a level multiplies:
 *
 *   KD_YMM_TARGET     the function attribute of the level's instructions
 *   KD_YMM_DPBUSD(a, w, x), KD_YMM_DPWSSD(a, p, s)  only with VNNI: vpdpbusd / vpdpwssd
 *                     in the level's encoding (VEX for AVX-VNNI, EVEX for AVX-512 VL)
 *
 * The weights go 32 values (one register of bytes) at a time, in pairs of chunks, and each
 * pair is one scale-weighted integer dot product per row of x (pair_dot):
 *
 *   AVX2  per chunk: vpmaddubsw (u8 w x s8 x -> 16 int16 pair sums), vpmaddwd by the int16
 *         scale of each pair (-> 8 int32), vpaddd
 *   VNNI  per chunk: vpdpbusd (4 products per int32 lane; each lane lies in one scale group
 *         and its sum fits int16: 4 * 63 * 127 < 2^15); per pair: vpackssdw of the two
 *         chunks' lanes to int16, then vpdpwssd by their scales into the row's sum
 *
 * so per 256 values and row of x AVX2 issues 24 integer ops and VNNI 16. The loop over
 * chunks is outside the loop over rows: a chunk is decoded once for all rows while the
 * rows' sums stay in registers. Floats appear once per 256 values: one convert and FMA
 * (Q4_K: two, for the mins). */
#ifndef KD_CPU_GEMV_Q8_YMM_H
#define KD_CPU_GEMV_Q8_YMM_H

#include "gemv_q8.h"
#include "kd_quant.h"
#include "simd.h"

#ifdef KD_HAVE_X86

/* Four int16 scales spread over a register: in the low 128-bit lane int16 elements 0-3
 * get scale a and 4-7 scale b, in the high lane c and d. dup8: 8 int16 scales in both
 * lanes (dup8_i8). One vpshufb; for Q6_K (two scales per 32 weights) this replaced two
 * scalar loads, two broadcasts and an insert per chunk: 1.47x faster on an L2-resident
 * matrix. */
KD_INLINE KD_AVX2 __m256i spread_scales(__m256i dup8, int a, int b, int c, int d)
{
    /* spelled out byte by byte: gcc folds it to a constant; the shorter
     * _mm256_setr_m128i(_mm_set1_epi16(..)) form made it keep the eight indices on the
     * stack at M=8 (measured 10-25 % slower) */
    const __m256i idx = _mm256_setr_epi8(
        (char)(2 * a), (char)(2 * a + 1), (char)(2 * a), (char)(2 * a + 1), (char)(2 * a), (char)(2 * a + 1),
        (char)(2 * a), (char)(2 * a + 1), (char)(2 * b), (char)(2 * b + 1), (char)(2 * b), (char)(2 * b + 1),
        (char)(2 * b), (char)(2 * b + 1), (char)(2 * b), (char)(2 * b + 1),
        (char)(2 * c), (char)(2 * c + 1), (char)(2 * c), (char)(2 * c + 1), (char)(2 * c), (char)(2 * c + 1),
        (char)(2 * c), (char)(2 * c + 1), (char)(2 * d), (char)(2 * d + 1), (char)(2 * d), (char)(2 * d + 1),
        (char)(2 * d), (char)(2 * d + 1), (char)(2 * d), (char)(2 * d + 1));
    return _mm256_shuffle_epi8(dup8, idx);
}

/* 8 signed bytes widened to int16, in both 128-bit lanes. */
KD_INLINE KD_AVX2 __m256i dup8_i8(const void *p)
{
    return _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)p)));
}

#ifdef KD_YMM_DPBUSD
/* The scales of a pair of chunks, where vpackssdw leaves the chunks' lanes: int16 elements
 * 0-3 of each 128-bit lane from the first chunk, 4-7 from the second. */
typedef __m256i pair_scales;

/* Q4_K chunks 2p (low nibbles) and 2p+1 (high): one scale each. */
KD_INLINE KD_YMM_TARGET pair_scales q4k_pair_scales(__m256i dup8, const uint8_t *scb, int p)
{
    (void)scb;
    return spread_scales(dup8, 2 * p, 2 * p + 1, 2 * p, 2 * p + 1);
}

/* Q6_K chunks 2q and 2q+1 of the half whose 8 scales dup8 holds (r = q % 2): int32 lane i
 * of chunk c sums values 32c + 4i .. +3, scale group 2c + i / 4, so the low 128-bit lane
 * has the groups 4r and 4r+2, the high lane 4r+1 and 4r+3. */
KD_INLINE KD_YMM_TARGET pair_scales q6k_pair_scales(__m256i dup8, int r)
{
    return spread_scales(dup8, 4 * r, 4 * r + 2, 4 * r + 1, 4 * r + 3);
}

/* s[m] += the scaled dot of chunks wa, wb with values off .. off + 63 of row m of x, for
 * m < mc (the rows of x nb blocks apart). */
KD_INLINE KD_YMM_TARGET void pair_dot(__m256i s[], int mc, __m256i wa, __m256i wb,
                                      const kd_q8_block *x, int64_t nb, int off, pair_scales sc)
{
    const __m256i z = _mm256_setzero_si256();
    for (int m = 0; m < mc; m++) {
        const int8_t *xq = x[m * nb].qs + off;
        const __m256i a = KD_YMM_DPBUSD(z, wa, _mm256_loadu_si256((const __m256i *)xq));
        const __m256i b = KD_YMM_DPBUSD(z, wb, _mm256_loadu_si256((const __m256i *)(xq + 32)));
        s[m] = KD_YMM_DPWSSD(s[m], _mm256_packs_epi32(a, b), sc);
    }
}
#else
/* One scale register per chunk: vpmaddubsw leaves a chunk's 16 pair sums in value order. */
typedef struct pair_scales {
    __m256i a, b;
} pair_scales;

/* (spread_scales measured 5 % slower here: these broadcast from memory) */
KD_INLINE KD_YMM_TARGET pair_scales q4k_pair_scales(__m256i dup8, const uint8_t *scb, int p)
{
    (void)dup8;
    return (pair_scales){_mm256_set1_epi16(scb[2 * p]), _mm256_set1_epi16(scb[2 * p + 1])};
}

/* int16 pairs 0-7 of chunk c are scale group 2c, pairs 8-15 group 2c+1 */
KD_INLINE KD_YMM_TARGET pair_scales q6k_pair_scales(__m256i dup8, int r)
{
    return (pair_scales){spread_scales(dup8, 4 * r, 4 * r, 4 * r + 1, 4 * r + 1),
                         spread_scales(dup8, 4 * r + 2, 4 * r + 2, 4 * r + 3, 4 * r + 3)};
}

KD_INLINE KD_YMM_TARGET __m256i dot32(__m256i wq, const int8_t *xq, __m256i scale)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(wq, _mm256_loadu_si256((const __m256i *)xq)), scale);
}

/* The rows once per chunk: measured 1-5 % faster than once per pair for Q6_K at M = 8. */
KD_INLINE KD_YMM_TARGET void pair_dot(__m256i s[], int mc, __m256i wa, __m256i wb,
                                      const kd_q8_block *x, int64_t nb, int off, pair_scales sc)
{
    for (int m = 0; m < mc; m++)
        s[m] = _mm256_add_epi32(s[m], dot32(wa, x[m * nb].qs + off, sc.a));
    for (int m = 0; m < mc; m++)
        s[m] = _mm256_add_epi32(s[m], dot32(wb, x[m * nb].qs + off + 32, sc.b));
}
#endif

/* acc[m] += one Q4_K block of a weight row . block b of row m of x, for m < mc (x: block b
 * of the first row of x; the next rows of x are nb blocks apart). */
KD_INLINE KD_YMM_TARGET void q4k_block(const kd_block_q4_K *blk, const kd_q8_block *x, int64_t nb,
                                       const int mc, __m256 acc[])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    uint32_t smb[4]; /* smb: 8 scale bytes, then 8 min bytes */
    kd_q4k_unpack_scales(blk->scales, smb, smb + 2);
    const uint8_t *scb = (const uint8_t *)smb;
    const __m256i sc_dup = dup8_i8(smb); /* (the scales are 0..63: signed widening is exact) */
    const __m256 wmin = kd_q4k_neg_mins(smb + 2, blk->dmin); /* times x's xm, per row */
    __m256i s[KD_Q8_MAX_MC];
    for (int m = 0; m < mc; m++)
        s[m] = _mm256_setzero_si256();
    for (int p = 0; p < 4; p++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * p));
        const __m256i lo = _mm256_and_si256(v, m4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        const pair_scales sc = q4k_pair_scales(sc_dup, scb, p);
        pair_dot(s, mc, lo, hi, x, nb, 64 * p, sc);
    }
    const float d = _cvtsh_ss(blk->d);
    for (int m = 0; m < mc; m++) {
        const kd_q8_block *xm = x + m * nb;
        acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[m]), _mm256_set1_ps(d * xm->d), acc[m]);
        acc[m] = _mm256_fmadd_ps(wmin, _mm256_loadu_ps(xm->s.xm), acc[m]);
    }
}

/* Chunk t (values 128h + 32t .. +31) of half h of a Q6_K block as unsigned bytes 0..63:
 * low nibbles from ql, bits 2t..2t+1 of qh moved to bits 4-5 (see kd_blocks.h). */
KD_INLINE KD_YMM_TARGET __m256i q6k_chunk(const kd_block_q6_K *blk, int h, int t)
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

KD_INLINE KD_YMM_TARGET void q6k_block(const kd_block_q6_K *blk, const kd_q8_block *x, int64_t nb,
                                       const int mc, __m256 acc[])
{
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk->scales));
    const __m256i sc_dup[2] = {dup8_i8(blk->scales), dup8_i8(blk->scales + 8)};
    __m256i s[KD_Q8_MAX_MC];
    for (int m = 0; m < mc; m++)
        s[m] = _mm256_setzero_si256();
    _Pragma("GCC unroll 4") /* constant q: shifts, shuffle indices */
    for (int q = 0; q < 4; q++) {
        /* chunks 2q and 2q+1: half q / 2, chunks 2 (q % 2) and 2 (q % 2) + 1 of it */
        const __m256i wa = q6k_chunk(blk, q / 2, 2 * (q % 2)), wb = q6k_chunk(blk, q / 2, 2 * (q % 2) + 1);
        const pair_scales sc = q6k_pair_scales(sc_dup[q / 2], q % 2);
        pair_dot(s, mc, wa, wb, x, nb, 64 * q, sc);
    }
    const float d = _cvtsh_ss(blk->d);
    for (int m = 0; m < mc; m++) {
        const kd_q8_block *xm = x + m * nb;
        /* the -32 offset: 32 * sum_g scale[g] * bsums[g] */
        const __m256i off = _mm256_slli_epi32(
            _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)xm->s.bsums), sc16), 5);
        acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(s[m], off)),
                                 _mm256_set1_ps(d * xm->d), acc[m]);
    }
}
#endif

#endif
