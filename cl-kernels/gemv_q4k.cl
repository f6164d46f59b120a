/* Q4_K GEMV: y[m, j] = sum_k W[j, k] x[m, k], W row j = k/256 block_q4_K (GGUF bytes as
 * is). Layout and accumulators: gemv_common.cl. Single-row kernel: one row of x, after
 * the kd_gemv_xsum pre-pass (its sums of x arrive in xsum).
 * Batched: group y takes rows [8*get_group_id(1), +8) of the m_dim rows of x and decodes
 * each weight block once for all of them. */
#include "kd_blocks.h"
#include "gemv_common.cl"

/* One row of x, chunk c (64 values: sub-blocks 2c and 2c + 1). With a single row the
 * scales are applied per sub-block, not per value: sum(w x) = dl * sum(q x) - ml * sum(x).
 * sum(x) comes from the kd_gemv_xsum pre-pass (single-row kernel) or is added up here
 * (sum_x: the batched kernel's last pass when it has one row of x), so each 8 values cost
 * a conversion and an FMA (and an add), with only short-lived registers. */
KD_CL_INLINE void kd_q4k_step1(__global const kd_u8 *qs, __global const float *xc,
                               const int j, const int sum_x, float8 *t)
{
    int8 q = convert_int8(vload8(j, qs));
    float8 a = vload8(j, xc), b = vload8(j + 4, xc);
    t[0] += convert_float8(q & 15) * a;
    t[1] += convert_float8(q >> 4) * b;
    if (sum_x) {
        t[2] += a;
        t[3] += b;
    }
}

KD_CL_INLINE void kd_q4k_chunk1(__global const kd_u8 *qs, __global const float *xc,
                                const int sum_x, float dl0, float ml0, float dl1, float ml1,
                                float8 *acc)
{
    float8 t[4];
    t[0] = t[1] = t[2] = t[3] = (float8)(0.0f);
    kd_q4k_step1(qs, xc, 0, sum_x, t);
    kd_q4k_step1(qs, xc, 1, sum_x, t);
    kd_q4k_step1(qs, xc, 2, sum_x, t);
    kd_q4k_step1(qs, xc, 3, sum_x, t);
    acc[0] += dl0 * t[0];
    acc[1] += dl1 * t[1];
    if (sum_x) {
        acc[2] += ml0 * t[2];
        acc[3] += ml1 * t[3];
    }
}

/* 8 bytes of quants (j-th of the 32 bytes of chunk c) times nm > 1 rows of x: their low
 * nibbles are elements 64c + 8j.. of sub-block 2c, their high nibbles elements
 * 64c + 32 + 8j.. of sub-block 2c + 1 (kd_blocks.h, kd_q4k_quant). Decoded once, used
 * nm times. */
KD_CL_INLINE void kd_q4k_step(__global const kd_u8 *qs, __global const float *xc, size_t xs,
                              const int nm, const int j, float8 dl0, float8 ml0, float8 dl1,
                              float8 ml1, float8 *acc)
{
    int8 q = convert_int8(vload8(j, qs));
    float8 w0 = convert_float8(q & 15) * dl0 - ml0;
    float8 w1 = convert_float8(q >> 4) * dl1 - ml1;
    kd_gemv_fma(acc, nm, 2 * j, w0, xc + 8 * j, xs);
    kd_gemv_fma(acc, nm, 2 * j + 1, w1, xc + 32 + 8 * j, xs);
}

/* Chunk c (64 values: sub-blocks 2c and 2c + 1) times nm rows of x; dl/ml the scale and
 * offset of sub-blocks 2c and 2c + 1. */
KD_CL_INLINE void kd_q4k_chunk(__global const kd_block_q4_K *b, __global const float *x,
                               size_t xs, const int nm, const int sum_x, int c, float dl0,
                               float ml0, float dl1, float ml1, float8 *acc)
{
    __global const kd_u8 *qs = b->qs + 32 * c;
    __global const float *xc = x + 64 * c;
    if (nm == 1) {
        kd_q4k_chunk1(qs, xc, sum_x, dl0, ml0, dl1, ml1, acc);
        return;
    }
    float8 d0 = (float8)(dl0), m0 = (float8)(ml0), d1 = (float8)(dl1), m1 = (float8)(ml1);
    kd_q4k_step(qs, xc, xs, nm, 0, d0, m0, d1, m1, acc);
    kd_q4k_step(qs, xc, xs, nm, 1, d0, m0, d1, m1, acc);
    kd_q4k_step(qs, xc, xs, nm, 2, d0, m0, d1, m1, acc);
    kd_q4k_step(qs, xc, xs, nm, 3, d0, m0, d1, m1, acc);
}

/* Block b's scales (lanes 0..7) and mins (lanes 8..15) as floats (kd_q4k_scale_min_bytes,
 * gemv_common.cl). */
KD_CL_INLINE float16 kd_q4k_scales_mins(__global const kd_block_q4_K *b)
{
    return convert_float16(kd_q4k_scale_min_bytes(b));
}

/* Block b times nm rows of x (xs floats apart; x at the block's first value), into acc,
 * with b's scales and mins from kd_q4k_scales_mins. The chunk loop stays a loop: unrolled,
 * the eight batched variants take PoCL tens of seconds to compile. */
KD_CL_INLINE void kd_q4k_block(__global const kd_block_q4_K *b, __global const float *x,
                               size_t xs, const int nm, const int pre,
                               __global const float *xsum, float8 *acc)
{
    float d = kd_f16_to_f32(b->d), dmin = kd_f16_to_f32(b->dmin);
    float16 sm = kd_q4k_scales_mins(b);
    float dl[8], ml[8];
    vstore8(d * sm.lo, 0, dl);
    vstore8(dmin * sm.hi, 0, ml);
    const int sum_x = nm == 1 && !pre;
    if (nm == 1 && pre) /* the eight min terms at once */
        acc[2] += (dmin * sm.hi) * vload8(0, xsum);
    for (int c = 0; c < 4; c++)
        kd_q4k_chunk(b, x, xs, nm, sum_x, c, dl[2 * c], ml[2 * c], dl[2 * c + 1],
                     ml[2 * c + 1], acc);
}

/* One item's share of one output row for nm rows of x: sums[m]. pre (a constant): xsum
 * holds the pre-pass's sums of the one row of x. */
KD_CL_INLINE void kd_q4k_row(__global const kd_block_q4_K *w, __global const float *x,
                             size_t xs, int nb, int lane, const int nm, const int pre,
                             __global const float *xsum, float *sums)
{
    float8 acc[8];
    kd_gemv_zero(acc);
    kd_gemv_span s = kd_gemv_span_of(nb, lane);
    for (int ib = s.first; ib < s.end; ib += s.step) {
        kd_gemv_prefetch(w + ib + KD_GEMV_PREFETCH, sizeof(kd_block_q4_K));
        kd_q4k_block(w + ib, x + (size_t)ib * KD_QK_K, xs, nm, pre, xsum + 8 * ib, acc);
    }
    if (nm == 1) /* kd_q4k_chunk1's layout: scaled dot products, then min terms */
        sums[0] = kd_hsum8(acc[0] + acc[1]) - kd_hsum8(acc[2] + acc[3]);
    else
        kd_gemv_fold(acc, nm, sums);
}

__kernel __attribute__((reqd_work_group_size(KD_GEMV_LOCAL, 1, 1)))
void kd_gemv_q4k(__global const kd_block_q4_K *w, __global const float *x, __global float *y,
                 int n_rows, int k, __global const float *xsum)
{
    KD_GEMV_RED_DECL;
    int lid = (int)get_local_id(0);
    int row = (int)get_group_id(0) * KD_GEMV_ROWS + lid / KD_GEMV_IPR;
    int nb = row < n_rows ? k / KD_QK_K : 0;
    float sums[1];
    kd_q4k_row(w + (size_t)min(row, n_rows - 1) * (size_t)(k / KD_QK_K), x, 0, nb,
               lid % KD_GEMV_IPR, 1, 1, xsum, sums);
    kd_gemv_store(sums, 1, y, n_rows, row, red);
}

#if KD_GEMV_IPR == 1
/* Batched CPU shape (gemv_common.cl, kd_gemv_pair_fma): block b0 of one row and b1 of the
 * next times nm rows of x, into a pair's accumulators. Each 16 bytes of quants hold 16
 * values of sub-block 2c (low nibbles) and 16 of sub-block 2c + 1 (high nibbles). */
KD_CL_INLINE void kd_q4k_pair_block(__global const kd_block_q4_K *b0,
                                    __global const kd_block_q4_K *b1,
                                    __global const float *x, size_t xs, const int nm,
                                    float16 *acc)
{
    float c0[16], c1[16]; /* d * scales 0..7, dmin * mins 0..7 */
    float16 sm0 = kd_q4k_scales_mins(b0), sm1 = kd_q4k_scales_mins(b1);
    float16 dd0 = (float16)((float8)(kd_f16_to_f32(b0->d)), (float8)(kd_f16_to_f32(b0->dmin)));
    float16 dd1 = (float16)((float8)(kd_f16_to_f32(b1->d)), (float8)(kd_f16_to_f32(b1->dmin)));
    vstore16(dd0 * sm0, 0, c0);
    vstore16(dd1 * sm1, 0, c1);
    for (int c = 0; c < 4; c++) {
        for (int h = 0; h < 2; h++) {
            uchar16 q0 = kd_gemv_load16(b0->qs + 32 * c + 16 * h);
            uchar16 q1 = kd_gemv_load16(b1->qs + 32 * c + 16 * h);
            __global const float *xc = x + 64 * c + 16 * h;
            kd_gemv_pair_fma(acc, nm, convert_float16(q0 & (uchar)15) * c0[2 * c] - c0[8 + 2 * c],
                             convert_float16(q1 & (uchar)15) * c1[2 * c] - c1[8 + 2 * c], xc,
                             xs);
            kd_gemv_pair_fma(acc, nm,
                             convert_float16(q0 >> (uchar)4) * c0[2 * c + 1] - c0[9 + 2 * c],
                             convert_float16(q1 >> (uchar)4) * c1[2 * c + 1] - c1[9 + 2 * c],
                             xc + 32, xs);
        }
    }
}

/* One row's block times nm > 1 rows of x into float8 accumulators (targets without
 * AVX-512: KD_GEMV_PAIRS 0). */
KD_CL_INLINE void kd_q4k_block8(__global const kd_block_q4_K *b, __global const float *x,
                                size_t xs, const int nm, float8 *acc)
{
    kd_q4k_block(b, x, xs, nm, 0, x, acc);
}

/* __kernel kd_gemv_q4k_batched, CPU shape: the scaffold of gemv_common.cl around
 * kd_q4k_pair_block and kd_q4k_block8 above. */
KD_GEMV_CPU_BATCHED(q4k, kd_block_q4_K)
#else
/* __kernel kd_gemv_q4k_batched, GPU shape: the scaffold of gemv_common.cl around kd_q4k_row. */
KD_GEMV_GPU_BATCHED(q4k, kd_block_q4_K, (0, xr, sums))
#endif
