/*
 * Q6_K GEMV: y[m, j] = sum_k W[j, k] x[m, k], W row j = K/256 block_q6_K of 210 bytes
 * (ql[128], qh[64], int8 scales[16], f16 d).
 *
 * 210 bytes leave a block only 2-byte aligned, so no wide load fits it in place. Per step
 * a warp copies, for each row of its pass (KD_R), the span of the next four blocks from the
 * 16-byte boundary below them into its own part of shared memory with coalesced 16-byte
 * streaming loads (every byte read once), then each lane reads what it decodes from
 * there at any even offset: 4-byte shared loads and a byte permute.
 *
 * Eight lanes share a block; lane (h, l0) (h = 0..1, l0 = 0, 8, 16, 24) takes ql bytes
 * 64h + l0 .. +7 and 64h + 32 + l0 .. +7, qh bytes 32h + l0 .. +7: the 32 elements
 * 128h + 32j + l0 .. +7 for j = 0..3 (low nibbles of the first ql run for j = 0, of the
 * second for j = 1, high nibbles for j = 2, 3; qh bits 2j), scales 8h + 2j + l0/16.
 *
 * As in gemv_q4k.cu a byte permute makes the 6-bit quant q into f = 0.5 + q/256, so that
 * the weight d*sc*(q - 32) = d*sc*(256 f - 160). Single-row kernel: sum f*x and x per run
 * and fold the scale in once per run. Batched: each weight decoded once (one FMA) and
 * used for the MT rows of x.
 */
#include "kd_cuda_gemv.cuh"

#define KD_Q6K_LANES 8                                 /* lanes per block */
#define KD_Q6K_STEP_BLOCKS (KD_CU_WARP / KD_Q6K_LANES) /* blocks per row per step: 4 */
#define KD_Q6K_SCALES 192                              /* byte offsets inside the block */
#define KD_Q6K_D 208

#if KD_Q6K_STEP_BLOCKS * KD_Q6K_BLOCK_BYTES + 15 > KD_CU_Q6K_STAGE_BYTES
#error "KD_CU_Q6K_STAGE_BYTES cannot hold a step's blocks"
#endif

/* 8 bytes at an even offset o of the stage, as two words. Reads up to 12 bytes from the
 * 4-byte boundary below o. */
KD_DEV void kd_q6k_read8(const unsigned char *stage, int o, unsigned int *out)
{
    const unsigned char *p = stage + (o & ~3);
    const unsigned int w0 = kd_lds_u32(p), w1 = kd_lds_u32(p + 4), w2 = kd_lds_u32(p + 8);
    const unsigned int sel = (o & 2) ? 0x5432u : 0x3210u;
    out[0] = __byte_perm(w0, w1, sel);
    out[1] = __byte_perm(w1, w2, sel);
}

/* Copies blocks [blk0, blk0 + nblk) of the row at row_off into stage (from the 16-byte
 * boundary below them, whole 16-byte pieces: up to 15 bytes past the last block, inside
 * the allocation's KD_CU_OVERREAD_BYTES). Returns the first block's offset in stage. */
KD_DEV int kd_q6k_stage_row(const unsigned char *w, size_t row_off, int blk0, int nblk,
                            unsigned char *stage)
{
    const size_t first = row_off + (size_t)blk0 * KD_Q6K_BLOCK_BYTES;
    const size_t base = first & ~(size_t)15;
    const int pieces = (int)((first + (size_t)nblk * KD_Q6K_BLOCK_BYTES - base + 15) / 16);
    uint4 v[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const int piece = (int)threadIdx.x + i * KD_CU_WARP;
        if (piece < pieces)
            v[i] = kd_ld_stream_u4(w + base + 16 * (size_t)piece);
    }
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const int piece = (int)threadIdx.x + i * KD_CU_WARP;
        if (piece < pieces)
            kd_sts_u4(stage + 16 * piece, v[i]);
    }
    return (int)(first - base);
}

/* The 6-bit quants of run j (4 bytes per word, < 64) from the lane's ql and qh words. */
KD_DEV unsigned int kd_q6k_quants(const unsigned int *qa, const unsigned int *qb,
                                  const unsigned int *qh, int j, int word)
{
    const unsigned int ql = (j & 1) ? qb[word] : qa[word];
    const unsigned int lo = (ql >> (4 * (j >> 1))) & 0x0F0F0F0Fu;
    return lo | (((qh[word] >> (2 * j)) & 0x03030303u) << 4);
}

/* Rows row0 .. row0 + KD_R - 1. mt: 1 (single-row kernel) or KD_CU_GEMV_MAX_M (batched);
 * compile-time after inlining. stage: this warp's KD_R * KD_CU_Q6K_STAGE_BYTES of shared
 * memory. */
KD_DEV void kd_gemv_q6k_body(const unsigned char *__restrict__ w, const float *__restrict__ x,
                             float *__restrict__ y, int n_rows, int k, int m0, int mcount,
                             const int mt, unsigned char *stage, int row0)
{
    const int lane = threadIdx.x, t = lane / KD_Q6K_LANES, sub = lane % KD_Q6K_LANES;
    const int h = sub / 4, l0 = (sub % 4) * 8;
    const int nb = k / KD_QK_K;
    const size_t row_bytes = (size_t)nb * KD_Q6K_BLOCK_BYTES;

    size_t row_off[KD_R];
#pragma unroll
    for (int r = 0; r < KD_R; r++) /* rows past the end repeat the last one, not stored */
        row_off[r] = (size_t)(row0 + r < n_rows ? row0 + r : n_rows - 1) * row_bytes;

    float acc[KD_ACC_MAX];
#pragma unroll
    for (int i = 0; i < KD_ACC_MAX; i++)
        acc[i] = 0.0f;

    /* this lane's x pointers, one per row of x, moved one step per iteration; rows of x
     * past mcount repeat the last one (no branch in the loop; their sums are not
     * stored) */
    const float *xrow[KD_CU_GEMV_MAX_M];
#pragma unroll
    for (int m = 0; m < mt; m++)
        xrow[m] = x + (size_t)(m0 + (m < mcount ? m : mcount - 1)) * k + t * KD_QK_K + 128 * h + l0;

    for (int blk0 = 0; blk0 < nb; blk0 += KD_Q6K_STEP_BLOCKS) {
        const int nblk = nb - blk0 < KD_Q6K_STEP_BLOCKS ? nb - blk0 : KD_Q6K_STEP_BLOCKS;
        int bo[KD_R];
        __syncwarp(); /* every lane is done with the previous step's stage */
#pragma unroll
        for (int r = 0; r < KD_R; r++)
            bo[r] = r * KD_CU_Q6K_STAGE_BYTES +
                    kd_q6k_stage_row(w, row_off[r], blk0, nblk, stage + r * KD_CU_Q6K_STAGE_BYTES) +
                    t * KD_Q6K_BLOCK_BYTES;
        __syncwarp(); /* the stage is written */
        const float *xs[KD_CU_GEMV_MAX_M];
#pragma unroll
        for (int m = 0; m < mt; m++) {
            xs[m] = xrow[m];
            xrow[m] += KD_Q6K_STEP_BLOCKS * KD_QK_K;
        }
        if (t >= nblk)
            continue; /* no block for these lanes in the last step */

        /* this lane's quant words and the scale d*sc of its four runs, per row */
        unsigned int qa[KD_R][2], qb[KD_R][2], qh[KD_R][2];
        float ds[KD_R][4];
#pragma unroll
        for (int r = 0; r < KD_R; r++) {
            kd_q6k_read8(stage, bo[r] + 64 * h + l0, qa[r]);
            kd_q6k_read8(stage, bo[r] + 64 * h + 32 + l0, qb[r]);
            kd_q6k_read8(stage, bo[r] + 128 + 32 * h + l0, qh[r]);
            const unsigned char *blk = stage + bo[r];
            const float d = kd_f16_to_f32((kd_u16)(blk[KD_Q6K_D] | (blk[KD_Q6K_D + 1] << 8)));
#pragma unroll
            for (int j = 0; j < 4; j++)
                ds[r][j] = d * (float)(kd_i8)blk[KD_Q6K_SCALES + 8 * h + l0 / 16 + 2 * j];
        }

#pragma unroll
        for (int j = 0; j < 4; j++) {
            if (mt == 1) {
                /* weight = ds (256 f - 160): sum f*x and x over the run, scale once */
                float4 x0 = kd_ldg_f4(xs[0] + 32 * j), x1 = kd_ldg_f4(xs[0] + 32 * j + 4);
                const float sx = ((x0.x + x0.y) + (x0.z + x0.w)) + ((x1.x + x1.y) + (x1.z + x1.w));
#pragma unroll
                for (int r = 0; r < KD_R; r++) {
                    float f[8];
#pragma unroll
                    for (int e = 0; e < 8; e++)
                        f[e] = kd_quant_byte_to_float(kd_q6k_quants(qa[r], qb[r], qh[r], j, e / 4), e % 4);
                    float p = kd_dot4(kd_dot4(0.0f, f, x0), f + 4, x1);
                    acc[r] = fmaf(ds[r][j], fmaf(256.0f, p, -160.0f * sx), acc[r]);
                }
            } else {
                float wv[KD_R][8];
#pragma unroll
                for (int r = 0; r < KD_R; r++) {
                    const float a = 256.0f * ds[r][j], b = -160.0f * ds[r][j];
#pragma unroll
                    for (int e = 0; e < 8; e++)
                        wv[r][e] = fmaf(a, kd_quant_byte_to_float(kd_q6k_quants(qa[r], qb[r], qh[r], j, e / 4), e % 4), b);
                }
#pragma unroll
                for (int m = 0; m < mt; m++) {
                    float4 x0 = kd_ldg_f4(xs[m] + 32 * j), x1 = kd_ldg_f4(xs[m] + 32 * j + 4);
#pragma unroll
                    for (int r = 0; r < KD_R; r++)
                        acc[r * mt + m] = kd_dot4(kd_dot4(acc[r * mt + m], wv[r], x0), wv[r] + 4, x1);
                }
            }
        }
    }
    kd_gemv_store(acc, mt, y, n_rows, row0, m0, mcount);
}

#ifdef __cplusplus
extern "C" {
#endif

__global__ void __launch_bounds__(KD_CU_GEMV_WARPS * KD_CU_WARP)
kd_gemv_q6k(const unsigned char *__restrict__ w, const float *__restrict__ x,
            float *__restrict__ y, int n_rows, int k)
{
    __shared__ __align__(16) unsigned char stage[KD_CU_Q6K_SHARED_BYTES];
    const int first = kd_gemv_first_row();
#pragma unroll 1
    for (int p = 0; p < KD_PASSES; p++) {
        const int row0 = first + p * KD_R;
        if (row0 >= n_rows)
            return; /* the whole warp */
        kd_gemv_q6k_body(w, x, y, n_rows, k, 0, 1, 1,
                         stage + threadIdx.y * KD_R * KD_CU_Q6K_STAGE_BYTES, row0);
    }
}

__global__ void __launch_bounds__(KD_CU_GEMV_WARPS * KD_CU_WARP)
kd_gemv_q6k_batched(const unsigned char *__restrict__ w, const float *__restrict__ x,
                    float *__restrict__ y, int n_rows, int k, int m_dim)
{
    __shared__ __align__(16) unsigned char stage[KD_CU_Q6K_SHARED_BYTES];
    int m0, mcount;
    kd_gemv_batch_pass(m_dim, &m0, &mcount);
    if (mcount <= 0)
        return;
    const int first = kd_gemv_first_row();
#pragma unroll 1
    for (int p = 0; p < KD_PASSES; p++) {
        const int row0 = first + p * KD_R;
        if (row0 >= n_rows)
            return; /* the whole warp */
        kd_gemv_q6k_body(w, x, y, n_rows, k, m0, mcount, KD_CU_GEMV_MAX_M,
                         stage + threadIdx.y * KD_R * KD_CU_Q6K_STAGE_BYTES, row0);
    }
}

#ifdef __cplusplus
}
#endif
