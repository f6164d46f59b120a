/*
 * Q4_K GEMV: y[m, j] = sum_k W[j, k] x[m, k], W row j = K/256 block_q4_K of 144 bytes.
 *
 * A block_q4_K is nine 16-byte pieces (d, dmin and the 12 scale bytes, then 8 pieces of
 * quants), so rows of blocks stay 16-byte aligned and the weights are read with 16- and
 * 8-byte streaming loads.
 *
 * Decoding without int-to-float conversions: a byte permute turns a nibble q into the
 * float f = 0.5 + q/256 (kd_quant_byte_to_float), so the weight d*sc*q - dmin*m of
 * sub-block j is A_j f + B_j with A_j = 256 d sc, B_j = -(128 d sc + dmin m), and
 * sum_k w x = A_j sum f*x + B_j sum x over each sub-block.
 *
 * Single-row kernel (CUDA cores): eight lanes share a block, lane c (0..7) taking quant
 * piece c: the low nibbles of elements 64g + l0 .. +15 (sub-block 2g) and the high
 * nibbles of 64g + 32 + l0 .. +15 (sub-block 2g + 1), g = c / 2, l0 = 16 (c % 2); a warp
 * covers four consecutive blocks of each of its KD_R rows per step, sums f*x and x per
 * sub-block and applies A and B once per sub-block.
 * Batched kernel (tensor cores): see kd_gemv_q4k_tile.
 */
#include "kd_cuda_gemv.cuh"

#define KD_Q4K_PIECES 8                                  /* quant pieces per block */
#define KD_Q4K_STEP_BLOCKS (KD_CU_WARP / KD_Q4K_PIECES)  /* blocks per row per step */

/* ggml's get_scale_min_k4 (kd_q4k_scale_min in kd_blocks.h) for the two sub-blocks
 * j = 2g, 2g + 1 of a lane, on the 12 scale bytes held in registers (hdr.y, hdr.z,
 * hdr.w = bytes 0-3, 4-7, 8-11): kd_q4k_scale_min reads a byte array, which with a
 * per-lane j would go through local memory. Both forms are checked against each other
 * by tests/test_cuda_emu.c. */
KD_DEV void kd_q4k_scale_min_pair(uint4 hdr, int g, int *sc, int *mn)
{
    /* bytes j & 3 and (j & 3) + 1 of scales[0..3], [4..7], [8..11] in the low 16 bits */
    const unsigned int sh = (g & 1) * 16;
    const unsigned int s0 = hdr.y >> sh, s4 = hdr.z >> sh, s8 = hdr.w >> sh;
    /* both sub-blocks at once, one per byte; j < 4 (g < 2) or j >= 4, without a branch */
    const unsigned int sc_lo = s0 & 0x3F3Fu, mn_lo = s4 & 0x3F3Fu;
    const unsigned int sc_hi = (s8 & 0x0F0Fu) | ((s0 >> 2) & 0x3030u);
    const unsigned int mn_hi = ((s8 >> 4) & 0x0F0Fu) | ((s4 >> 2) & 0x3030u);
    const unsigned int scs = g < 2 ? sc_lo : sc_hi, mns = g < 2 ? mn_lo : mn_hi;
    sc[0] = (int)(scs & 0xFF);
    sc[1] = (int)(scs >> 8 & 0xFF);
    mn[0] = (int)(mns & 0xFF);
    mn[1] = (int)(mns >> 8 & 0xFF);
}

/* A_t, B_t of sub-blocks 2g + t (see the top comment). */
KD_DEV void kd_q4k_coeffs(uint4 hdr, int g, float *a, float *b)
{
    int sc[2], mn[2];
    kd_q4k_scale_min_pair(hdr, g, sc, mn);
    const float d = kd_f16_to_f32((kd_u16)(hdr.x & 0xFFFF));
    const float dmin = kd_f16_to_f32((kd_u16)(hdr.x >> 16));
#pragma unroll
    for (int t = 0; t < 2; t++) {
        float dl = d * (float)sc[t];
        a[t] = 256.0f * dl;
        b[t] = fmaf(-128.0f, dl, -dmin * (float)mn[t]);
    }
}

/* Single-row kernel on CUDA cores: rows row0 .. row0 + KD_R - 1 (see the top comment). */
KD_DEV void kd_gemv_q4k_rows(const unsigned char *__restrict__ w, const float *__restrict__ x,
                             float *__restrict__ y, int n_rows, int k, int row0)
{
    const int lane = threadIdx.x, piece = lane % KD_Q4K_PIECES;
    const int g = piece / 2, l0 = (piece % 2) * 16;
    const int nb = k / KD_QK_K;
    const size_t row_bytes = (size_t)nb * KD_Q4K_BLOCK_BYTES;

    const unsigned char *wrow[KD_R];
#pragma unroll
    for (int r = 0; r < KD_R; r++) /* rows past the end repeat the last one, not stored */
        wrow[r] = w + (size_t)(row0 + r < n_rows ? row0 + r : n_rows - 1) * row_bytes;

    float acc[KD_ACC_MAX];
#pragma unroll
    for (int i = 0; i < KD_ACC_MAX; i++)
        acc[i] = 0.0f;

    const float *xb = x + (lane / KD_Q4K_PIECES) * KD_QK_K + 64 * g + l0;
    for (int blk = lane / KD_Q4K_PIECES; blk < nb; blk += KD_Q4K_STEP_BLOCKS) {
        uint4 hdr[KD_R], qs[KD_R];
#pragma unroll
        for (int r = 0; r < KD_R; r++) {
            const unsigned char *b = wrow[r] + (size_t)blk * KD_Q4K_BLOCK_BYTES;
            hdr[r] = kd_ld_stream_u4(b);
            qs[r] = kd_ld_stream_u4(b + 16 + 16 * piece);
        }
        float ca[KD_R][2], cb[KD_R][2];
#pragma unroll
        for (int r = 0; r < KD_R; r++)
            kd_q4k_coeffs(hdr[r], g, ca[r], cb[r]);

        /* weight = A f + B: sum f*x per sub-block and row, and x per sub-block (the same
         * for every row), then fold A and B in once per sub-block */
        float pl[KD_R], ph[KD_R], sxl = 0.0f, sxh = 0.0f;
#pragma unroll
        for (int r = 0; r < KD_R; r++)
            pl[r] = ph[r] = 0.0f;
#pragma unroll
        for (int u = 0; u < 4; u++) {
            float4 xl = kd_ldg_f4(xb + 4 * u), xh = kd_ldg_f4(xb + 32 + 4 * u);
            sxl += (xl.x + xl.y) + (xl.z + xl.w);
            sxh += (xh.x + xh.y) + (xh.z + xh.w);
#pragma unroll
            for (int r = 0; r < KD_R; r++) {
                unsigned int q = kd_u4_word(qs[r], u);
                unsigned int qlo = q & 0x0F0F0F0Fu, qhi = (q >> 4) & 0x0F0F0F0Fu;
                float fl[4], fh[4];
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    fl[e] = kd_quant_byte_to_float(qlo, e);
                    fh[e] = kd_quant_byte_to_float(qhi, e);
                }
                pl[r] = kd_dot4(pl[r], fl, xl);
                ph[r] = kd_dot4(ph[r], fh, xh);
            }
        }
#pragma unroll
        for (int r = 0; r < KD_R; r++) {
            float a = fmaf(ca[r][0], pl[r], acc[r]);
            a = fmaf(cb[r][0], sxl, a);
            a = fmaf(ca[r][1], ph[r], a);
            acc[r] = fmaf(cb[r][1], sxh, a);
        }
        xb += KD_Q4K_STEP_BLOCKS * KD_QK_K;
    }
    kd_gemv_store(acc, 1, y, n_rows, row0, 0, 1);
}

/*
 * Batched kernel: the warp's 16 rows as one tensor-core tile (kd_mma_tf32, m16n8k8):
 * A = the decoded weights f = 0.5 + q/256 (exact in tf32) of the 16 rows, B = the same
 * elements of the MT <= 8 rows of x, C[row][m] = sum f*x over a sub-block. x is split
 * into its tf32 part and the rest, one MMA each: x counts to about 2^-20, it is not
 * rounded to tf32. Lane (g, t) = (lane / 4, lane % 4) holds rows g and g + 8 and, of
 * every sub-block, elements 8t .. 8t + 7 (k-step s: 8t + 2s in slot t, 8t + 2s + 1 in
 * slot t + 4), which are quant bytes 8t .. 8t + 7 of the sub-block pair (one 8-byte
 * load per row), and x of batch row g. The sum of x per sub-block (the B_j term) comes
 * from the CUDA cores: 8 values per lane, then shuffles to the lanes whose C holds that
 * batch row. After each sub-block: acc += A_j C + B_j sum(x). Each weight is decoded
 * once for all rows of x, and no reduction is left at the end.
 */
KD_DEV void kd_gemv_q4k_tile(const unsigned char *__restrict__ w, const float *__restrict__ x,
                             float *__restrict__ y, int n_rows, int k, int m0, int mcount,
                             int row0)
{
    const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
    const int nb = k / KD_QK_K;
    const size_t row_bytes = (size_t)nb * KD_Q4K_BLOCK_BYTES;
    /* rows past the end repeat the last one, rows of x past mcount the last one: their
     * results are not stored */
    const int ra = row0 + g < n_rows ? row0 + g : n_rows - 1;
    const int rb = row0 + g + 8 < n_rows ? row0 + g + 8 : n_rows - 1;
    const unsigned char *wa = w + (size_t)ra * row_bytes, *wb = w + (size_t)rb * row_bytes;
    const float *xg = x + (size_t)(m0 + (g < mcount ? g : mcount - 1)) * k + 8 * t;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};

    for (int blk = 0; blk < nb; blk++) {
        const unsigned char *ba = wa + (size_t)blk * KD_Q4K_BLOCK_BYTES;
        const unsigned char *bb = wb + (size_t)blk * KD_Q4K_BLOCK_BYTES;
        const uint4 ha = kd_ld_stream_u4(ba), hb = kd_ld_stream_u4(bb);
        uint2 qa[4], qb[4];
#pragma unroll
        for (int gp = 0; gp < 4; gp++) {
            qa[gp] = kd_ld_stream_u2(ba + 16 + 32 * gp + 8 * t);
            qb[gp] = kd_ld_stream_u2(bb + 16 + 32 * gp + 8 * t);
        }
        const float *xb = xg + (size_t)blk * KD_QK_K;
#pragma unroll
        for (int gp = 0; gp < 4; gp++) {
            float aa[2], ba2[2], ab[2], bb2[2]; /* A_j, B_j of rows g, g + 8 */
            kd_q4k_coeffs(ha, gp, aa, ba2);
            kd_q4k_coeffs(hb, gp, ab, bb2);
#pragma unroll
            for (int half = 0; half < 2; half++) { /* sub-block j = 2 gp + half */
                const float *xj = xb + 32 * (2 * gp + half);
                const float4 x0 = kd_ldg_f4(xj), x1 = kd_ldg_f4(xj + 4);
                const float xv[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
                /* sum of x over the sub-block: batch row g, then rows 2t and 2t + 1 */
                float sx = ((xv[0] + xv[1]) + (xv[2] + xv[3])) + ((xv[4] + xv[5]) + (xv[6] + xv[7]));
                sx += __shfl_xor_sync(KD_FULL_MASK, sx, 1);
                sx += __shfl_xor_sync(KD_FULL_MASK, sx, 2);
                const float sx0 = __shfl_sync(KD_FULL_MASK, sx, 8 * t);
                const float sx1 = __shfl_sync(KD_FULL_MASK, sx, 8 * t + 4);
                unsigned int hi[8], lo[8];
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    hi[e] = __float_as_uint(xv[e]) & 0xFFFFE000u;
                    lo[e] = __float_as_uint(xv[e] - __uint_as_float(hi[e]));
                }
                const unsigned int sh = 4 * half; /* low nibbles, or high */
                const unsigned int na[2] = {(qa[gp].x >> sh) & 0x0F0F0F0Fu, (qa[gp].y >> sh) & 0x0F0F0F0Fu};
                const unsigned int nbq[2] = {(qb[gp].x >> sh) & 0x0F0F0F0Fu, (qb[gp].y >> sh) & 0x0F0F0F0Fu};
                float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
                for (int st = 0; st < 4; st++) {
                    const unsigned int byte = 2 * (st % 2);
                    const unsigned int a[4] = {
                        __float_as_uint(kd_quant_byte_to_float(na[st / 2], byte)),
                        __float_as_uint(kd_quant_byte_to_float(nbq[st / 2], byte)),
                        __float_as_uint(kd_quant_byte_to_float(na[st / 2], byte + 1)),
                        __float_as_uint(kd_quant_byte_to_float(nbq[st / 2], byte + 1))};
                    const unsigned int bh[2] = {hi[2 * st], hi[2 * st + 1]};
                    const unsigned int bl[2] = {lo[2 * st], lo[2 * st + 1]};
                    kd_mma_tf32(c, a, bh);
                    kd_mma_tf32(c, a, bl);
                }
                acc[0] = fmaf(aa[half], c[0], fmaf(ba2[half], sx0, acc[0]));
                acc[1] = fmaf(aa[half], c[1], fmaf(ba2[half], sx1, acc[1]));
                acc[2] = fmaf(ab[half], c[2], fmaf(bb2[half], sx0, acc[2]));
                acc[3] = fmaf(ab[half], c[3], fmaf(bb2[half], sx1, acc[3]));
            }
        }
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int row = row0 + g + 8 * (i / 2), m = 2 * t + i % 2;
        if (row < n_rows && m < mcount)
            y[(size_t)(m0 + m) * n_rows + row] = acc[i];
    }
}

#ifdef __cplusplus
extern "C" {
#endif

__global__ void __launch_bounds__(KD_CU_GEMV_WARPS * KD_CU_WARP)
kd_gemv_q4k(const unsigned char *__restrict__ w, const float *__restrict__ x,
            float *__restrict__ y, int n_rows, int k)
{
    const int first = kd_gemv_first_row();
#pragma unroll 1
    for (int p = 0; p < KD_PASSES; p++) {
        const int row0 = first + p * KD_R;
        if (row0 >= n_rows)
            return; /* the whole warp */
        kd_gemv_q4k_rows(w, x, y, n_rows, k, row0);
    }
}

__global__ void __launch_bounds__(KD_CU_GEMV_WARPS * KD_CU_WARP)
kd_gemv_q4k_batched(const unsigned char *__restrict__ w, const float *__restrict__ x,
                    float *__restrict__ y, int n_rows, int k, int m_dim)
{
    int m0, mcount;
    kd_gemv_batch_pass(m_dim, &m0, &mcount);
    const int row0 = kd_gemv_first_row();
    if (mcount <= 0 || row0 >= n_rows)
        return; /* the whole warp */
    kd_gemv_q4k_tile(w, x, y, n_rows, k, m0, mcount, row0);
}

#ifdef __cplusplus
}
#endif
