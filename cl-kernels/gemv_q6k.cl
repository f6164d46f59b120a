/* Q6_K GEMV: y[m, j] = sum_k W[j, k] x[m, k], W row j = k/256 block_q6_K (GGUF bytes as
 * is). Layout and accumulators: gemv_common.cl. Single-row kernel: one row of x.
 * Batched: group y takes rows [8*get_group_id(1), +8) of the m_dim rows of x and decodes
 * each weight block once for all of them. */
#include "kd_blocks.h"
#include "gemv_common.cl"

/* 8 values of each quarter of half h at offset l = 8 * lc (lc = 0..3): ql[64h + l] holds
 * quarters 0 (low nibble) and 2 (high), ql[64h + 32 + l] quarters 1 and 3, qh[32h + l] the
 * top 2 bits of quarters 0..3 in its bit pairs; element 128h + 32q + l has scale
 * scales[8h + 2q + l/16] (kd_blocks.h, kd_q6k_quant). */
KD_CL_INLINE void kd_q6k_step(__global const kd_block_q6_K *b, __global const float *xh,
                              size_t xs, const int nm, int h, int lc, const int slot,
                              const float *sc, float8 *acc)
{
    int l = 8 * lc;
    int8 lo = convert_int8(kd_gemv_load8(b->ql + 64 * h + l));
    int8 hi = convert_int8(kd_gemv_load8(b->ql + 64 * h + 32 + l));
    int8 top = convert_int8(kd_gemv_load8(b->qh + 32 * h + l));
    const float *s = sc + 8 * h + lc / 2; /* quarter q's scale is s[2q] */
    float8 w0 = convert_float8(((lo & 15) | ((top & 3) << 4)) - 32) * s[0];
    float8 w1 = convert_float8(((hi & 15) | ((top & 12) << 2)) - 32) * s[2];
    float8 w2 = convert_float8(((lo >> 4) | (top & 48)) - 32) * s[4];
    float8 w3 = convert_float8(((hi >> 4) | ((top & 192) >> 2)) - 32) * s[6];
    kd_gemv_fma(acc, nm, slot, w0, xh + l, xs);
    kd_gemv_fma(acc, nm, slot + 1, w1, xh + 32 + l, xs);
    kd_gemv_fma(acc, nm, slot + 2, w2, xh + 64 + l, xs);
    kd_gemv_fma(acc, nm, slot + 3, w3, xh + 96 + l, xs);
}

#if KD_GEMV_IPR == 1
/* The CPU shape's form of kd_q6k_step: 16 values of each quarter (l = 16g .. 16g + 15,
 * one scale per quarter) with the bit operations on byte vectors, 16 lanes per
 * instruction instead of 8 (PoCL, Zen 4: ~10% less CPU time at M = 1). */
KD_CL_INLINE void kd_q6k_step16(__global const kd_block_q6_K *b, __global const float *xh,
                                size_t xs, const int nm, int h, int g, const float *sc,
                                float8 *acc)
{
    int l = 16 * g;
    uchar16 a = kd_gemv_load16(b->ql + 64 * h + l);
    uchar16 c = kd_gemv_load16(b->ql + 64 * h + 32 + l);
    uchar16 t = kd_gemv_load16(b->qh + 32 * h + l);
    const float *s = sc + 8 * h + g; /* quarter q's scale is s[2q] */
    float16 w0 = convert_float16(as_char16((a & (uchar)15) | ((t & (uchar)3) << (uchar)4)) -
                                 (char)32) * s[0];
    float16 w1 = convert_float16(as_char16((c & (uchar)15) | ((t & (uchar)12) << (uchar)2)) -
                                 (char)32) * s[2];
    float16 w2 = convert_float16(as_char16((a >> (uchar)4) | (t & (uchar)48)) - (char)32) * s[4];
    float16 w3 = convert_float16(as_char16((c >> (uchar)4) | ((t & (uchar)192) >> (uchar)2)) -
                                 (char)32) * s[6];
    kd_gemv_fma(acc, nm, 0, w0.lo, xh + l, xs);
    kd_gemv_fma(acc, nm, 1, w0.hi, xh + l + 8, xs);
    kd_gemv_fma(acc, nm, 2, w1.lo, xh + 32 + l, xs);
    kd_gemv_fma(acc, nm, 3, w1.hi, xh + 32 + l + 8, xs);
    kd_gemv_fma(acc, nm, 4, w2.lo, xh + 64 + l, xs);
    kd_gemv_fma(acc, nm, 5, w2.hi, xh + 64 + l + 8, xs);
    kd_gemv_fma(acc, nm, 6, w3.lo, xh + 96 + l, xs);
    kd_gemv_fma(acc, nm, 7, w3.hi, xh + 96 + l + 8, xs);
}

#if defined(__clang__) && defined(__AVX2__)
/* One row of x on x86 with AVX2 (PoCL's haswell and later targets): a half's 128 values
 * decoded 32 bytes at a time (clang's 32-byte vectors, one ymm: half the byte operations
 * of kd_q6k_step16's 16), and each 16 values' scale applied once to their two products'
 * sum instead of to each weight. */
#define KD_Q6K_HALF32
typedef uchar kd_q6k_u8x32 __attribute__((vector_size(32)));
typedef char kd_q6k_i8x32 __attribute__((vector_size(32)));
typedef struct __attribute__((packed)) kd_q6k_pk32 { kd_q6k_u8x32 v; } kd_q6k_pk32;
KD_CL_INLINE kd_q6k_u8x32 kd_q6k_load32(__global const kd_u8 *p)
{
    return ((__global const kd_q6k_pk32 *)p)->v;
}
/* values 8j .. 8j + 7 of q (j a literal) as floats */
#define KD_Q6K_F8(q, j)                                                                  \
    __builtin_convertvector(__builtin_shufflevector(q, q, 8 * (j), 8 * (j) + 1, 8 * (j) + 2, \
                                                    8 * (j) + 3, 8 * (j) + 4, 8 * (j) + 5, \
                                                    8 * (j) + 6, 8 * (j) + 7),             \
                            float8)
/* quarter Q's 32 values q times x at xq: values 0-15 have scale s0, 16-31 s1 */
#define KD_Q6K_QUARTER32(q, xq, s0, s1, acc0, acc1)                                      \
    {                                                                                    \
        float8 t0 = fma(KD_Q6K_F8(q, 1), vload8(1, xq), KD_Q6K_F8(q, 0) * vload8(0, xq)); \
        float8 t1 = fma(KD_Q6K_F8(q, 3), vload8(3, xq), KD_Q6K_F8(q, 2) * vload8(2, xq)); \
        acc0 = fma(t0, (float8)(s0), acc0);                                              \
        acc1 = fma(t1, (float8)(s1), acc1);                                              \
    }
KD_CL_INLINE void kd_q6k_half32(__global const kd_block_q6_K *b, __global const float *xh,
                                int h, const float *sc, float8 *acc)
{
    kd_q6k_u8x32 a = kd_q6k_load32(b->ql + 64 * h), c = kd_q6k_load32(b->ql + 64 * h + 32);
    kd_q6k_u8x32 t = kd_q6k_load32(b->qh + 32 * h);
    kd_q6k_i8x32 q0 = (kd_q6k_i8x32)((a & 15) | ((t & 3) << 4)) - 32;
    kd_q6k_i8x32 q1 = (kd_q6k_i8x32)((c & 15) | ((t & 12) << 2)) - 32;
    kd_q6k_i8x32 q2 = (kd_q6k_i8x32)((a >> 4) | (t & 48)) - 32;
    kd_q6k_i8x32 q3 = (kd_q6k_i8x32)((c >> 4) | ((t & 192) >> 2)) - 32;
    const float *s = sc + 8 * h; /* quarter Q: s[2Q], s[2Q + 1] */
    KD_Q6K_QUARTER32(q0, xh, s[0], s[1], acc[0], acc[1])
    KD_Q6K_QUARTER32(q1, xh + 32, s[2], s[3], acc[2], acc[3])
    KD_Q6K_QUARTER32(q2, xh + 64, s[4], s[5], acc[0], acc[1])
    KD_Q6K_QUARTER32(q3, xh + 96, s[6], s[7], acc[2], acc[3])
}
#endif
#endif

/* Block b times nm rows of x (xs floats apart; x at the block's first value), into acc.
 * The 16 scales d * scales[g] are formed once per block (one vector conversion instead of
 * a scalar one per use). Runs of 8 values alternate between accumulator slots 0..3 and
 * 4..7; the loops stay loops (unrolled, the eight batched variants take PoCL many seconds
 * to compile). */
KD_CL_INLINE void kd_q6k_block(__global const kd_block_q6_K *b, __global const float *x,
                               size_t xs, const int nm, float8 *acc)
{
    float sc[16];
    char16 s16 = as_char16(kd_gemv_load16((__global const kd_u8 *)b->scales));
    vstore16(kd_f16_to_f32(b->d) * convert_float16(s16), 0, sc);
    for (int h = 0; h < 2; h++) { /* 128 values each */
        __global const float *xh = x + 128 * h;
#ifdef KD_Q6K_HALF32
        if (nm == 1) {
            kd_q6k_half32(b, xh, h, sc, acc);
            continue;
        }
#endif
#if KD_GEMV_IPR == 1
        kd_q6k_step16(b, xh, xs, nm, h, 0, sc, acc);
        kd_q6k_step16(b, xh, xs, nm, h, 1, sc, acc);
#else
        for (int lc = 0; lc < 4; lc += 2) {
            kd_q6k_step(b, xh, xs, nm, h, lc, 0, sc, acc);
            kd_q6k_step(b, xh, xs, nm, h, lc + 1, 4, sc, acc);
        }
#endif
    }
}

/* One item's share of one output row for nm rows of x: sums[m]. */
KD_CL_INLINE void kd_q6k_row(__global const kd_block_q6_K *w, __global const float *x,
                              size_t xs, int nb, int lane, const int nm, float *sums)
{
    float8 acc[8];
    kd_gemv_zero(acc);
    kd_gemv_span s = kd_gemv_span_of(nb, lane);
    for (int ib = s.first; ib < s.end; ib += s.step) {
        kd_gemv_prefetch(w + ib + KD_GEMV_PREFETCH, sizeof(kd_block_q6_K));
        kd_q6k_block(w + ib, x + (size_t)ib * KD_QK_K, xs, nm, acc);
    }
    kd_gemv_fold(acc, nm, sums);
}

__kernel __attribute__((reqd_work_group_size(KD_GEMV_LOCAL, 1, 1)))
void kd_gemv_q6k(__global const kd_block_q6_K *w, __global const float *x, __global float *y,
                 int n_rows, int k)
{
    KD_GEMV_RED_DECL;
    int lid = (int)get_local_id(0);
    int row = (int)get_group_id(0) * KD_GEMV_ROWS + lid / KD_GEMV_IPR;
    int nb = row < n_rows ? k / KD_QK_K : 0;
    float sums[1];
    kd_q6k_row(w + (size_t)min(row, n_rows - 1) * (size_t)(k / KD_QK_K), x, 0, nb,
               lid % KD_GEMV_IPR, 1, sums);
    kd_gemv_store(sums, 1, y, n_rows, row, red);
}

#if KD_GEMV_IPR == 1
/* 16 values of each quarter of half h (l = 16g .. 16g + 15) of block b, one scale per
 * quarter (kd_q6k_step16's decoding): w[q]. */
KD_CL_INLINE void kd_q6k_quarters16(__global const kd_block_q6_K *b, int h, int g,
                                    const float *sc, float16 *w)
{
    int l = 16 * g;
    uchar16 a = kd_gemv_load16(b->ql + 64 * h + l);
    uchar16 c = kd_gemv_load16(b->ql + 64 * h + 32 + l);
    uchar16 t = kd_gemv_load16(b->qh + 32 * h + l);
    const float *s = sc + 8 * h + g; /* quarter q's scale is s[2q] */
    w[0] = convert_float16(as_char16((a & (uchar)15) | ((t & (uchar)3) << (uchar)4)) -
                           (char)32) * s[0];
    w[1] = convert_float16(as_char16((c & (uchar)15) | ((t & (uchar)12) << (uchar)2)) -
                           (char)32) * s[2];
    w[2] = convert_float16(as_char16((a >> (uchar)4) | (t & (uchar)48)) - (char)32) * s[4];
    w[3] = convert_float16(as_char16((c >> (uchar)4) | ((t & (uchar)192) >> (uchar)2)) -
                           (char)32) * s[6];
}

/* d * scales[g] of block b: sc[16]. */
KD_CL_INLINE void kd_q6k_scales(__global const kd_block_q6_K *b, float *sc)
{
    char16 s16 = as_char16(kd_gemv_load16((__global const kd_u8 *)b->scales));
    vstore16(kd_f16_to_f32(b->d) * convert_float16(s16), 0, sc);
}

/* Batched CPU shape (gemv_common.cl, kd_gemv_pair_fma): block b0 of one row and b1 of the
 * next times nm rows of x, into a pair's accumulators. */
KD_CL_INLINE void kd_q6k_pair_block(__global const kd_block_q6_K *b0,
                                    __global const kd_block_q6_K *b1,
                                    __global const float *x, size_t xs, const int nm,
                                    float16 *acc)
{
    float sc0[16], sc1[16];
    kd_q6k_scales(b0, sc0);
    kd_q6k_scales(b1, sc1);
    for (int h = 0; h < 2; h++) {
        for (int g = 0; g < 2; g++) {
            float16 w0[4], w1[4];
            kd_q6k_quarters16(b0, h, g, sc0, w0);
            kd_q6k_quarters16(b1, h, g, sc1, w1);
            __global const float *xq = x + 128 * h + 16 * g;
            kd_gemv_pair_fma(acc, nm, w0[0], w1[0], xq, xs);
            kd_gemv_pair_fma(acc, nm, w0[1], w1[1], xq + 32, xs);
            kd_gemv_pair_fma(acc, nm, w0[2], w1[2], xq + 64, xs);
            kd_gemv_pair_fma(acc, nm, w0[3], w1[3], xq + 96, xs);
        }
    }
}

/* One row's block times nm > 1 rows of x into float8 accumulators (targets without
 * AVX-512: KD_GEMV_PAIRS 0). */
KD_CL_INLINE void kd_q6k_block8(__global const kd_block_q6_K *b, __global const float *x,
                                size_t xs, const int nm, float8 *acc)
{
    kd_q6k_block(b, x, xs, nm, acc);
}

/* __kernel kd_gemv_q6k_batched, CPU shape: the scaffold of gemv_common.cl around
 * kd_q6k_pair_block and kd_q6k_block8 above. */
KD_GEMV_CPU_BATCHED(q6k, kd_block_q6_K)
#else
/* __kernel kd_gemv_q6k_batched, GPU shape: the scaffold of gemv_common.cl around kd_q6k_row. */
KD_GEMV_GPU_BATCHED(q6k, kd_block_q6_K, (sums))
#endif
