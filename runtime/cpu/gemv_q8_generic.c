/* Portable q8 GEMV kernels: what a CPU without the AVX2 / AVX-512 kernels runs (every
 * non-x86 host, an x86 without AVX2, KD_CPU_SIMD=scalar). Plain C for the compiler to
 * vectorize for its target (NEON, SSE2): each weight block is decoded once into bytes for
 * all rows of x, then each 32- or 16-value group is one integer dot loop. The reference
 * kernels (gemv_q8.c) decode every value through the block helpers for every row of x:
 * clear, and measured 4-7x slower. The integer sums and the float expression per block are
 * the reference's, so the outputs agree with it up to how the compiler contracts the
 * float multiply-adds (test_cpu_q8_scalar compares them). */
#include "gemv_q8.h"
#include "kd_quant.h"

/* sum over n of w[i] * x[i]: unsigned weights (Q4_K quants, Q6_K quants + 32) times q8 */
static inline int32_t dot_u8_i8(const uint8_t *w, const int8_t *x, int n)
{
    int32_t s = 0;
    for (int i = 0; i < n; i++)
        s += (int32_t)w[i] * x[i];
    return s;
}

/* A Q4_K block's 256 quants in value order, and its 8 scales and mins. */
static void q4k_decode(const kd_block_q4_K *b, uint8_t q[KD_QK_K], int sc[8], int mn[8])
{
    for (int c = 0; c < 4; c++) /* 32 bytes: values 64c .. 64c+31 low, 64c+32 .. high */
        for (int l = 0; l < 32; l++) {
            uint8_t v = b->qs[32 * c + l];
            q[64 * c + l] = v & 0xF;
            q[64 * c + 32 + l] = v >> 4;
        }
    for (int s = 0; s < 8; s++)
        kd_q4k_scale_min(s, b->scales, &sc[s], &mn[s]);
}

/* A Q6_K block's 256 quants + 32 (0..63) in value order (kd_q6k_quant's layout). */
static void q6k_decode(const kd_block_q6_K *b, uint8_t q[KD_QK_K])
{
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const int lo0 = b->ql[64 * h + l], lo1 = b->ql[64 * h + 32 + l], hi = b->qh[32 * h + l];
            uint8_t *o = q + 128 * h + l;
            o[0] = (uint8_t)((lo0 & 0xF) | (hi & 3) << 4);
            o[32] = (uint8_t)((lo1 & 0xF) | (hi >> 2 & 3) << 4);
            o[64] = (uint8_t)((lo0 >> 4) | (hi >> 4 & 3) << 4);
            o[96] = (uint8_t)((lo1 >> 4) | (hi >> 6 & 3) << 4);
        }
}

/* acc[m] += one weight block . block b of row m of x (KD_Q8_ROWS's BLOCK). */
static inline void q4k_block(const kd_block_q4_K *blk, const kd_q8_block *x, int64_t nb, const int mc,
                             float acc[])
{
    uint8_t q[KD_QK_K];
    int sc[8], mn[8];
    q4k_decode(blk, q, sc, mn);
    const float d = kd_f16_to_f32(blk->d), dmin = kd_f16_to_f32(blk->dmin);
    for (int m = 0; m < mc; m++) {
        const kd_q8_block *xm = x + m * nb;
        int32_t sumi = 0;
        float summ = 0.0f;
        for (int s = 0; s < 8; s++) {
            sumi += sc[s] * dot_u8_i8(q + 32 * s, xm->qs + 32 * s, 32);
            summ += (float)mn[s] * xm->s.xm[s];
        }
        acc[m] += xm->d * d * (float)sumi - dmin * summ;
    }
}

static inline void q6k_block(const kd_block_q6_K *blk, const kd_q8_block *x, int64_t nb, const int mc,
                             float acc[])
{
    uint8_t q[KD_QK_K];
    q6k_decode(blk, q);
    const float d = kd_f16_to_f32(blk->d);
    for (int m = 0; m < mc; m++) {
        const kd_q8_block *xm = x + m * nb;
        int32_t sumi = 0;
        for (int g = 0; g < 16; g++) /* the +32 comes back out through bsums */
            sumi += blk->scales[g] * (dot_u8_i8(q + 16 * g, xm->qs + 16 * g, 16) - 32 * xm->s.bsums[g]);
        acc[m] += xm->d * d * (float)sumi;
    }
}

static inline float acc_value(float acc) { return acc; }

KD_Q8_LEVEL_KERNELS(generic, float, 0.0f, acc_value, , 0)
