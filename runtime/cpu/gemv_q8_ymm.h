/* The q8 GEMV block kernels on 256-bit registers, written once for the three ymm levels;
 * the including file says how a level multiplies:
 *
 *   KD_YMM_TARGET     the function attribute of the level's instructions
 *   KD_YMM_DPBUSD(a, w, x), KD_YMM_DPWSSD(a, p, s)  only with VNNI: vpdpbusd / vpdpwssd
 *                     in the level's encoding (VEX for AVX-VNNI, EVEX for AVX-512 VL)
 *
 *   AVX2  x's qs in lane order (kd_q8_lane_qword): per 32 weights a vpmaddubsw (u8 w x s8
 *         x -> 16 int16 pair sums); the sums of 4 (Q4_K) or 2 (Q6_K) of them, whose lanes
 *         hold the same sub-blocks, add up in int16 and take one vpmaddwd by the scales
 *   VNNI  x in order, the weights 32 values at a time in pairs of chunks, one scale-weighted
 *         dot per pair and row of x (pair_dot): per chunk vpdpbusd (4 products per int32
 *         lane; each lane lies in one scale group and its sum fits int16: 4 * 63 * 127 <
 *         2^15); per pair vpackssdw of the two chunks' lanes to int16, then vpdpwssd by
 *         their scales into the row's sum
 *
 * so per 256 values and row of x AVX2 issues 10 (Q4_K) or 12 (Q6_K) multiplies and VNNI 16
 * instructions. A block is decoded once for all rows of x; floats appear once per 256
 * values: one convert and FMA (Q4_K: two, for the mins). */
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

/* A Q4_K block's 8 scales as int16 in both 128-bit lanes (dup8_i8; they are 0..63, so
 * signed widening is exact), in *wmin lane s: -dmin * min s, which times x's xm gives a
 * row's mins in one FMA (q4k_finish), and in *mins (unless NULL) the 8 mins as the
 * scales (the AVX2 lane sums). */
KD_INLINE KD_YMM_TARGET __m256i q4k_scales(const kd_block_q4_K *blk, __m256 *wmin, __m256i *mins)
{
    uint32_t smb[4]; /* smb: 8 scale bytes, then 8 min bytes */
    kd_q4k_unpack_scales(blk->scales, smb, smb + 2);
    *wmin = kd_q4k_neg_mins(smb + 2, blk->dmin);
    if (mins)
        *mins = dup8_i8(smb + 2);
    return dup8_i8(smb);
}

/* acc += row xm's integer block sum s (8 int32 lanes) times d and x's scale, and the mins */
KD_INLINE KD_YMM_TARGET __m256 q4k_finish(__m256 acc, __m256i s, float d, __m256 wmin,
                                          const kd_q8_block *xm)
{
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d * xm->d), acc);
    return _mm256_fmadd_ps(wmin, _mm256_loadu_ps(xm->s.xm), acc);
}

/* The same for Q6_K, s summed over the unsigned values: the -32 offset is
 * 32 * sum_g scale[g] * bsums[g] (sc16: the 16 scales as int16). */
KD_INLINE KD_YMM_TARGET __m256 q6k_finish(__m256 acc, __m256i s, float d, __m256i sc16,
                                          const kd_q8_block *xm)
{
    const __m256i off = _mm256_slli_epi32(
        _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)xm->s.bsums), sc16), 5);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(s, off)), _mm256_set1_ps(d * xm->d),
                           acc);
}

#ifdef KD_YMM_DPBUSD
/* The scales of a pair of chunks, where vpackssdw leaves the chunks' lanes: int16 elements
 * 0-3 of each 128-bit lane from the first chunk, 4-7 from the second. */
typedef __m256i pair_scales;

/* Q4_K chunks 2p (low nibbles) and 2p+1 (high): one scale each. */
KD_INLINE KD_YMM_TARGET pair_scales q4k_pair_scales(__m256i dup8, int p)
{
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

/* The VNNI levels read x's qs in order, a row's sums in its own block. */
#define KD_YMM_X_LAYOUT 0

/* acc[m] += one Q4_K block of a weight row . block b of row m of x, for m < mc (x: block b
 * of the first row of x; the next rows of x are nb blocks apart). */
KD_INLINE KD_YMM_TARGET void q4k_block(const kd_block_q4_K *blk, const kd_q8_block *x, int64_t nb,
                                       const int mc, __m256 acc[])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 wmin;
    const __m256i sc_dup = q4k_scales(blk, &wmin, NULL);
    __m256i s[KD_Q8_MAX_MC];
    for (int m = 0; m < mc; m++)
        s[m] = _mm256_setzero_si256();
    for (int p = 0; p < 4; p++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * p));
        const __m256i lo = _mm256_and_si256(v, m4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        const pair_scales sc = q4k_pair_scales(sc_dup, p);
        pair_dot(s, mc, lo, hi, x, nb, 64 * p, sc);
    }
    const float d = _cvtsh_ss(blk->d);
    for (int m = 0; m < mc; m++)
        acc[m] = q4k_finish(acc[m], s[m], d, wmin, x + m * nb);
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
    for (int m = 0; m < mc; m++)
        acc[m] = q6k_finish(acc[m], s[m], d, sc16, x + m * nb);
}
#else
/* AVX2: x's qs in lane order (kd_q8_lane_qword, kd_blocks.h), so that the int16 pair sums
 * of several vpmaddubsw hold one sub-block per lane and one vpmaddwd by the scales takes
 * them: per 256 values and row of x 10 multiplies (Q4_K) and 12 (Q6_K), where chunk by
 * chunk (vpmaddubsw, then vpmaddwd by that chunk's scales) took 16. In full tiles of 8
 * rows (mc = 8) the rows' integer sums go into the lanes of one vector (lane_sum8, x in
 * KD_Q8_X_LANE_SUMS) and the floats are done once for the 8 rows, where a vector per row
 * kept 8 accumulators live besides the decoded block: M = 8 Q4_K 0.94-0.98 of the time,
 * Q6_K 0.88-0.96 (kd-ab, both shapes, Zen 3). A row then rounds differently in a full
 * tile than alone (the same integer sums, the floats in another order). */
#define KD_YMM_X_LAYOUT (KD_Q8_X_LANES | KD_Q8_X_LANE_SUMS)

/* the int16 pair sums of u8 weights w times the 32 s8 values of x at xq */
KD_INLINE KD_YMM_TARGET __m256i maddubs_x(__m256i w, const int8_t *xq)
{
    return _mm256_maddubs_epi16(w, _mm256_loadu_si256((const __m256i *)xq));
}

/* 8 rows' int32 sums s[0..7] (8 lanes each) into one vector, lane m: row m's sum, in 3
 * steps of unpack-and-add (gemv_q8.cl's kd_q8_fold2/4/8): rows a, b to lanes a b a b,
 * rows a-d to a b c d (in each 128-bit lane), then the two halves. */
KD_INLINE KD_YMM_TARGET __m256i fold2(__m256i a, __m256i b)
{
    return _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
}
KD_INLINE KD_YMM_TARGET __m256i fold4(__m256i ab, __m256i cd)
{
    return _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
}
KD_INLINE KD_YMM_TARGET __m256i lane_sum8(const __m256i s[KD_Q8_MAX_MC])
{
    const __m256i lo = fold4(fold2(s[0], s[1]), fold2(s[2], s[3]));
    const __m256i hi = fold4(fold2(s[4], s[5]), fold2(s[6], s[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31));
}

/* The decoded Q4_K block: lo[k], hi[k] the low and high nibbles of qword k of every chunk
 * (below), slo and shi their scales. */
typedef struct q4k_lanes {
    __m256i lo[4], hi[4], slo, shi;
} q4k_lanes;

/* a row of x's integer block sum (8 int32 lanes): per nibble half the 4 vectors'
 * vpmaddubsw add up in int16 (8 products a lane, at most 8 * 15 * 127 < 2^15), then one
 * vpmaddwd by the scales */
KD_INLINE KD_YMM_TARGET __m256i q4k_row_sum(const q4k_lanes *w, const int8_t *xq)
{
    __m256i alo = maddubs_x(w->lo[0], xq), ahi = maddubs_x(w->hi[0], xq + 32);
    for (int k = 1; k < 4; k++) {
        alo = _mm256_add_epi16(alo, maddubs_x(w->lo[k], xq + 64 * k));
        ahi = _mm256_add_epi16(ahi, maddubs_x(w->hi[k], xq + 64 * k + 32));
    }
    return _mm256_add_epi32(_mm256_madd_epi16(alo, w->slo), _mm256_madd_epi16(ahi, w->shi));
}

/* acc[m] += one Q4_K block of a weight row . block b of row m of x, for m < mc (x: block b
 * of the first row of x; the next rows of x are nb blocks apart); at mc = 8 lane m of
 * acc[0] instead. The 4 chunks of 32 bytes (low nibbles: sub-block 2c, high: 2c + 1) go
 * through a 4 x 4 transpose of their qwords: vector k holds qword k of every chunk, its
 * low nibbles values 8k .. 8k + 7 of sub-blocks 0, 2, 4, 6 and its high ones of 1, 3, 5,
 * 7. A full tile's mins: 4 vpmaddwd of the mins by the 8 rows' transposed sums. */
KD_INLINE KD_YMM_TARGET void q4k_block(const kd_block_q4_K *blk, const kd_q8_block *x, int64_t nb,
                                       const int mc, __m256 acc[])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 wmin;
    __m256i mins;
    const __m256i sc_dup = q4k_scales(blk, &wmin, &mins);
    __m256i c[4];
    q4k_lanes w;
    for (int p = 0; p < 4; p++)
        c[p] = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * p));
    const __m256i t0 = _mm256_unpacklo_epi64(c[0], c[1]), t1 = _mm256_unpackhi_epi64(c[0], c[1]);
    const __m256i t2 = _mm256_unpacklo_epi64(c[2], c[3]), t3 = _mm256_unpackhi_epi64(c[2], c[3]);
    const __m256i u[4] = {_mm256_permute2x128_si256(t0, t2, 0x20), _mm256_permute2x128_si256(t1, t3, 0x20),
                          _mm256_permute2x128_si256(t0, t2, 0x31), _mm256_permute2x128_si256(t1, t3, 0x31)};
    for (int k = 0; k < 4; k++) {
        w.lo[k] = _mm256_and_si256(u[k], m4);
        w.hi[k] = _mm256_and_si256(_mm256_srli_epi16(u[k], 4), m4);
    }
    w.slo = spread_scales(sc_dup, 0, 2, 4, 6);
    w.shi = spread_scales(sc_dup, 1, 3, 5, 7);
    const float d = _cvtsh_ss(blk->d);
    if (mc == KD_Q8_MAX_MC) {
        __m256i s[KD_Q8_MAX_MC];
        for (int m = 0; m < mc; m++)
            s[m] = q4k_row_sum(&w, x[m * nb].qs);
        /* lane m: row m's mins . sums; tile row j holds sub-blocks 2j, 2j + 1 */
#define KD_Q4K_MINS(j, imm)                                                                   \
    _mm256_madd_epi16(_mm256_shuffle_epi32(mins, imm), _mm256_loadu_si256((const __m256i *)x[(j) * nb].s.bsums))
        const __m256i mn = _mm256_add_epi32(_mm256_add_epi32(KD_Q4K_MINS(0, 0x00), KD_Q4K_MINS(1, 0x55)),
                                            _mm256_add_epi32(KD_Q4K_MINS(2, 0xaa), KD_Q4K_MINS(3, 0xff)));
#undef KD_Q4K_MINS
        const __m256 t = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mn), _mm256_set1_ps(_cvtsh_ss(blk->dmin)),
                                          _mm256_mul_ps(_mm256_cvtepi32_ps(lane_sum8(s)), _mm256_set1_ps(d)));
        acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(x[4 * nb].s.xm), t, acc[0]);
        return;
    }
    for (int m = 0; m < mc; m++)
        acc[m] = q4k_finish(acc[m], q4k_row_sum(&w, x[m * nb].qs), d, wmin, x + m * nb);
}

/* The same for Q6_K: each 64 values (chunks 2p, 2p + 1 of a half: sub-blocks A, B and C, D
 * of 16) as qwords 0 and 2, then 1 and 3, of both chunks (vpunpcklqdq, vpunpckhqdq): lanes
 * A, C, B, D, values 0-7, then 8-15. Their two vpmaddubsw add up in int16 (4 products a
 * lane, at most 4 * 63 * 127 < 2^15) before one vpmaddwd by scales A, C, B, D. A full
 * tile takes its rows 64 values at a time (8 int32 sums and those values' 3 vectors live,
 * where row by row all 12 of the block were), each row's -32 offset last. Two empty asm
 * statements (simd.h) keep gcc to that plan. KD_OPAQUE_PTR hides that x is the same
 * block for every weight row of a group: gcc had loaded the tile's 64 vectors of x once
 * and copied them to the stack. KD_KEEP_VEC keeps each row's running sum in a register:
 * gcc had spilled all 32 partial sums and added them at the end. With x in L1 0.87 of
 * the time; kd-ab M = 8 0.90 (4096 x 14336) and 0.95 (14336 x 4096), M = 2 and 4
 * 0.88-0.99 (Zen 3). Clang's code was as fast without them. */
KD_INLINE KD_YMM_TARGET void q6k_block(const kd_block_q6_K *blk, const kd_q8_block *x, int64_t nb,
                                       const int mc, __m256 acc[])
{
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk->scales));
    __m256i wa[4], wb[4], sc[4];
#define KD_Q6K_DECODE64(q)                                                                    \
    do { /* values 64q .. 64q + 63: chunks 2p, 2p + 1 of half h */                            \
        const int h = (q) / 2, p = (q) % 2;                                                   \
        const __m256i v0 = q6k_chunk(blk, h, 2 * p), v1 = q6k_chunk(blk, h, 2 * p + 1);      \
        wa[q] = _mm256_unpacklo_epi64(v0, v1);                                                \
        wb[q] = _mm256_unpackhi_epi64(v0, v1);                                                \
        sc[q] = spread_scales(dup8_i8(blk->scales + 8 * h), 4 * p, 4 * p + 2, 4 * p + 1, 4 * p + 3); \
    } while (0)
#define KD_Q6K_DOT64(q, xq)                                                                   \
    _mm256_madd_epi16(_mm256_add_epi16(maddubs_x(wa[q], (xq) + 64 * (q)),                     \
                                       maddubs_x(wb[q], (xq) + 64 * (q) + 32)),               \
                      sc[q])
    KD_OPAQUE_PTR(x); /* x: not the same block across the group's rows */
    if (mc == KD_Q8_MAX_MC) {
        __m256i s[KD_Q8_MAX_MC];
        _Pragma("GCC unroll 4") /* constant chunk numbers: shifts, shuffle indices */
        for (int q = 0; q < 4; q++) {
            KD_Q6K_DECODE64(q);
            for (int m = 0; m < mc; m++) {
                const __m256i t = KD_Q6K_DOT64(q, x[m * nb].qs);
                s[m] = q ? _mm256_add_epi32(s[m], t) : t;
                KD_KEEP_VEC(s[m]); /* the running sum, in a register */
            }
        }
        const __m256i sc32 = _mm256_slli_epi16(sc16, 5); /* |.| <= 128 * 32 */
        for (int m = 0; m < mc; m++)
            s[m] = _mm256_sub_epi32(
                s[m], _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)x[m * nb].s.bsums), sc32));
        const __m256 dx = _mm256_setr_m128(_mm_loadu_ps(x[0].pad1), _mm_loadu_ps(x[nb].pad1));
        const __m256 dxd = _mm256_mul_ps(dx, _mm256_set1_ps(_cvtsh_ss(blk->d)));
        acc[0] = _mm256_fmadd_ps(dxd, _mm256_cvtepi32_ps(lane_sum8(s)), acc[0]);
        return;
    }
    _Pragma("GCC unroll 4") /* as above; row by row, the whole block first */
    for (int q = 0; q < 4; q++)
        KD_Q6K_DECODE64(q);
    const float d = _cvtsh_ss(blk->d);
    for (int m = 0; m < mc; m++) {
        const kd_q8_block *xm = x + m * nb;
        __m256i s = _mm256_setzero_si256();
        for (int q = 0; q < 4; q++) {
            s = _mm256_add_epi32(s, KD_Q6K_DOT64(q, xm->qs));
            KD_KEEP_VEC(s);
        }
        acc[m] = q6k_finish(acc[m], s, d, sc16, xm);
    }
#undef KD_Q6K_DECODE64
#undef KD_Q6K_DOT64
}
#endif
#endif

#endif
