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

/* A block's place in the stage: the 4-byte boundary at or below its (even) start, and
 * the byte-permute selector that takes 4 bytes from there (0x5432 when the start is 2
 * bytes past the boundary). Found once per block, so the reads below take offsets that
 * are multiples of 4 from it. */
typedef struct {
    int base;
    unsigned int sel;
} kd_q6k_at;

KD_DEV kd_q6k_at kd_q6k_place(int o)
{
    kd_q6k_at at;
    at.base = o & ~3;
    at.sel = (o & 2) ? 0x5432u : 0x3210u;
    return at;
}

/* The 4 bytes at offset c (a multiple of 4) from the block's start. */
KD_DEV unsigned int kd_q6k_word(const unsigned char *stage, kd_q6k_at at, int c)
{
    const unsigned int w0 = kd_lds_u32(stage + at.base + c), w1 = kd_lds_u32(stage + at.base + c + 4);
    return __byte_perm(w0, w1, at.sel);
}

/* The 8 bytes at offset c (a multiple of 4) from the block's start, as two words: up to
 * 12 bytes read from the boundary. */
KD_DEV void kd_q6k_read8(const unsigned char *stage, kd_q6k_at at, int c, unsigned int *out)
{
    const unsigned char *p = stage + at.base + c;
    const unsigned int w0 = kd_lds_u32(p), w1 = kd_lds_u32(p + 4), w2 = kd_lds_u32(p + 8);
    out[0] = __byte_perm(w0, w1, at.sel);
    out[1] = __byte_perm(w1, w2, at.sel);
}

/* A row's share of a step: the 16-byte boundary below its first block (from w), the
 * block's offset from there, and the 16-byte pieces that cover the step's blocks from
 * there (up to 15 bytes past the last block, inside the allocation's
 * KD_CU_OVERREAD_BYTES). */
typedef struct {
    size_t base;
    int lead, pieces;
} kd_q6k_span;

KD_DEV kd_q6k_span kd_q6k_row_span(size_t first, int nblk)
{
    kd_q6k_span sp;
    sp.base = first & ~(size_t)15;
    sp.lead = (int)(first - sp.base);
    sp.pieces = (int)((unsigned int)(sp.lead + nblk * KD_Q6K_BLOCK_BYTES + 15) / 16u);
    return sp;
}

/* Issues the streaming loads of this lane's pieces of a span into v. Nothing waits for
 * them here: the caller decodes the previous step meanwhile. */
KD_DEV void kd_q6k_fetch_row(const unsigned char *w, kd_q6k_span sp, uint4 *v)
{
    const int lane = threadIdx.x;
    const unsigned char *p = w + sp.base + 16 * lane;
    if (lane < sp.pieces)
        v[0] = kd_ld_stream_u4(p);
    if (lane + KD_CU_WARP < sp.pieces)
        v[1] = kd_ld_stream_u4(p + 16 * KD_CU_WARP);
}

/* Stores what kd_q6k_fetch_row loaded into stage. */
KD_DEV void kd_q6k_put_row(kd_q6k_span sp, const uint4 *v, unsigned char *stage)
{
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const int piece = (int)threadIdx.x + i * KD_CU_WARP;
        if (piece < sp.pieces)
            kd_sts_u4(stage + 16 * piece, v[i]);
    }
}

/* d * the scale in byte b (0..3) of sw, a word of scale bytes with their sign bits
 * flipped (sc + 128): the byte permute makes the float 2^23 + sc + 128, exactly, and one
 * subtraction leaves sc (no int-to-float conversion). */
KD_DEV float kd_q6k_ds(float d, unsigned int sw, unsigned int b)
{
    const float big = __uint_as_float(__byte_perm(sw, 0x4B000000u, 0x7440u | b));
    return d * (big - 8388736.0f);
}

/* The 6-bit quants of run j (4 bytes per word, < 64) from the lane's ql and qh words. */
KD_DEV unsigned int kd_q6k_quants(const unsigned int *qa, const unsigned int *qb,
                                  const unsigned int *qh, int j, int word)
{
    const unsigned int ql = (j & 1) ? qb[word] : qa[word];
    const unsigned int lo = (ql >> (4 * (j >> 1))) & 0x0F0F0F0Fu;
    return lo | (((qh[word] >> (2 * j)) & 0x03030303u) << 4);
}

/* Single-row kernel: rows row0 .. row0 + KD_R - 1, on CUDA cores (see the top comment).
 * stage: this warp's KD_R * KD_CU_Q6K_STAGE_BYTES of shared memory. */
KD_DEV void kd_gemv_q6k_rows(const unsigned char *__restrict__ w, const float *__restrict__ x,
                             float *__restrict__ y, int n_rows, int k, unsigned char *stage,
                             int row0)
{
    const int lane = threadIdx.x, t = lane / KD_Q6K_LANES, sub = lane % KD_Q6K_LANES;
    const int h = sub / 4, l0 = (sub % 4) * 8;
    const int nb = k / KD_QK_K;
    const size_t row_bytes = (size_t)nb * KD_Q6K_BLOCK_BYTES;

    /* where the next step's blocks start in each row; rows past the end repeat the last
     * one, not stored */
    size_t first[KD_R];
#pragma unroll
    for (int r = 0; r < KD_R; r++)
        first[r] = (size_t)(row0 + r < n_rows ? row0 + r : n_rows - 1) * row_bytes;

    float acc[KD_R];
#pragma unroll
    for (int r = 0; r < KD_R; r++)
        acc[r] = 0.0f;

    /* this lane's x, moved one step per iteration */
    const float *xrow = x + t * KD_QK_K + 128 * h + l0;

    /* software pipeline: the loads of step s + 1 are in flight while step s is decoded
     * from the stage */
    kd_q6k_span sp[KD_R];
    uint4 v[KD_R][2];
#pragma unroll
    for (int r = 0; r < KD_R; r++) {
        sp[r] = kd_q6k_row_span(first[r], nb < KD_Q6K_STEP_BLOCKS ? nb : KD_Q6K_STEP_BLOCKS);
        kd_q6k_fetch_row(w, sp[r], v[r]);
        first[r] += KD_Q6K_STEP_BLOCKS * KD_Q6K_BLOCK_BYTES;
    }

    for (int blk0 = 0; blk0 < nb; blk0 += KD_Q6K_STEP_BLOCKS) {
        const int nblk = nb - blk0 < KD_Q6K_STEP_BLOCKS ? nb - blk0 : KD_Q6K_STEP_BLOCKS;
        kd_q6k_at at[KD_R];
        __syncwarp(); /* every lane is done with the previous step's stage */
#pragma unroll
        for (int r = 0; r < KD_R; r++) {
            kd_q6k_put_row(sp[r], v[r], stage + r * KD_CU_Q6K_STAGE_BYTES);
            at[r] = kd_q6k_place(r * KD_CU_Q6K_STAGE_BYTES + sp[r].lead + t * KD_Q6K_BLOCK_BYTES);
        }
        __syncwarp(); /* the stage is written */
        const int next = blk0 + KD_Q6K_STEP_BLOCKS;
        if (next < nb) {
            const int nnext = nb - next < KD_Q6K_STEP_BLOCKS ? nb - next : KD_Q6K_STEP_BLOCKS;
#pragma unroll
            for (int r = 0; r < KD_R; r++) {
                sp[r] = kd_q6k_row_span(first[r], nnext);
                kd_q6k_fetch_row(w, sp[r], v[r]);
                first[r] += KD_Q6K_STEP_BLOCKS * KD_Q6K_BLOCK_BYTES;
            }
        }
        const float *xs = xrow;
        xrow += KD_Q6K_STEP_BLOCKS * KD_QK_K;
        if (t >= nblk)
            continue; /* no block for these lanes in the last step */

        /* this lane's quant words and the scale d*sc of its four runs, per row */
        unsigned int qa[KD_R][2], qb[KD_R][2], qh[KD_R][2];
        float ds[KD_R][4];
#pragma unroll
        for (int r = 0; r < KD_R; r++) {
            kd_q6k_read8(stage, at[r], 64 * h + l0, qa[r]);
            kd_q6k_read8(stage, at[r], 64 * h + 32 + l0, qb[r]);
            kd_q6k_read8(stage, at[r], 128 + 32 * h + l0, qh[r]);
            const float d = kd_f16_to_f32((kd_u16)(kd_q6k_word(stage, at[r], KD_Q6K_D) & 0xFFFF));
            /* scales 8h + l0/16 + 2j, j = 0..3: bytes of the words at 8h and 8h + 4 */
            const unsigned int sw[2] = {
                kd_q6k_word(stage, at[r], KD_Q6K_SCALES + 8 * h) ^ 0x80808080u,
                kd_q6k_word(stage, at[r], KD_Q6K_SCALES + 8 * h + 4) ^ 0x80808080u};
#pragma unroll
            for (int j = 0; j < 4; j++)
                ds[r][j] = kd_q6k_ds(d, sw[j / 2], 2 * (j % 2) + l0 / 16);
        }

#pragma unroll
        for (int j = 0; j < 4; j++) {
            /* weight = ds (256 f - 160): sum f*x and x over the run, scale once */
            float4 x0 = kd_ldg_f4(xs + 32 * j), x1 = kd_ldg_f4(xs + 32 * j + 4);
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
        }
    }
    kd_gemv_store(acc, 1, y, n_rows, row0, 0, 1);
}

/*
 * Batched kernel: the warp's 16 rows as one tensor-core tile (kd_mma_tf32, m16n8k8), as
 * in kd_gemv_q4k_tile: A = the quants q - 32 (small integers, exact in tf32) of the 16
 * rows, B = the same elements of the MT <= 8 rows of x split into a tf32 part and the
 * rest (one MMA each), C[row][m] = sum (q - 32) x over one 16-element sub-block (one
 * scale), then acc += d*sc C. Lane (g, t) = (lane / 4, lane % 4) holds rows g and g + 8
 * and batch row g of x; of every sub-block it takes elements 4t .. 4t + 3 (k-step s:
 * 4t + 2s in slot t, 4t + 2s + 1 in slot t + 4), which are byte t of a 16-byte piece of
 * ql and of qh: word t of pieces 0..11 of the block.
 *
 * Per block the warp stages its 16 rows in shared memory (kd_q6k_tile_fetch / _put:
 * 14 coalesced 16-byte pieces per row from the 16-byte boundary below the block), and the
 * loads of block b + 1 are in flight while block b is decoded.
 */
#define KD_Q6K_TILE_PIECES 14 /* 16-byte pieces that cover a block from the boundary below */
#define KD_Q6K_TILE_LOADS (KD_CU_GEMV_ROWS_PER_WARP / 2) /* per lane: lanes 0-13 and 16-29 */

#if KD_Q6K_TILE_PIECES * 16 > KD_CU_Q6K_TILE_ROW_BYTES || KD_CU_Q6K_TILE_ROW_BYTES % 16
#error "KD_CU_Q6K_TILE_ROW_BYTES cannot hold a block's pieces"
#endif
#if KD_R * KD_CU_Q6K_STAGE_BYTES > KD_CU_Q6K_WARP_BYTES
#error "KD_CU_Q6K_WARP_BYTES cannot hold the single-row kernel's stage"
#endif

/* Byte offset of row r's block blk from w; rows past the end repeat the last one. */
KD_DEV size_t kd_q6k_block_off(int row0, int r, int n_rows, size_t row_bytes, int blk)
{
    const int row = row0 + r < n_rows ? row0 + r : n_rows - 1;
    return (size_t)row * row_bytes + (size_t)blk * KD_Q6K_BLOCK_BYTES;
}

/* Lane (half, c) = (lane / 16, lane % 16), c < 14, loads piece c of rows 2u + half. */
KD_DEV void kd_q6k_tile_fetch(const unsigned char *w, int row0, int n_rows, size_t row_bytes,
                              int blk, uint4 *v)
{
    const int half = threadIdx.x / 16, c = threadIdx.x % 16;
    if (c >= KD_Q6K_TILE_PIECES)
        return;
#pragma unroll
    for (int u = 0; u < KD_Q6K_TILE_LOADS; u++) {
        const size_t off = kd_q6k_block_off(row0, 2 * u + half, n_rows, row_bytes, blk);
        v[u] = kd_ld_stream_u4(w + (off & ~(size_t)15) + 16 * c);
    }
}

KD_DEV void kd_q6k_tile_put(const uint4 *v, unsigned char *stage)
{
    const int half = threadIdx.x / 16, c = threadIdx.x % 16;
    if (c >= KD_Q6K_TILE_PIECES)
        return;
#pragma unroll
    for (int u = 0; u < KD_Q6K_TILE_LOADS; u++)
        kd_sts_u4(stage + (2 * u + half) * KD_CU_Q6K_TILE_ROW_BYTES + 16 * c, v[u]);
}

/* A fragment of k-step st: quant bytes 2 st (slot t) and 2 st + 1 (slot t + 4) of rows
 * g (qa) and g + 8 (qb), as the floats q - 32 = 256 (0.5 + q/256) - 160. */
KD_DEV void kd_q6k_tile_a(unsigned int qa, unsigned int qb, int st, unsigned int *a)
{
    a[0] = __float_as_uint(fmaf(256.0f, kd_quant_byte_to_float(qa, 2 * st), -160.0f));
    a[1] = __float_as_uint(fmaf(256.0f, kd_quant_byte_to_float(qb, 2 * st), -160.0f));
    a[2] = __float_as_uint(fmaf(256.0f, kd_quant_byte_to_float(qa, 2 * st + 1), -160.0f));
    a[3] = __float_as_uint(fmaf(256.0f, kd_quant_byte_to_float(qb, 2 * st + 1), -160.0f));
}

/* acc += (the 16-row sub-block with quant words qa, qb and scales dsa, dsb) x the four x
 * values xv of this lane (see above). */
KD_DEV void kd_q6k_tile_sub(unsigned int qa, unsigned int qb, float dsa, float dsb, float4 xv,
                            float *acc)
{
    const float xs[4] = {xv.x, xv.y, xv.z, xv.w};
    unsigned int hi[4], lo[4];
#pragma unroll
    for (int e = 0; e < 4; e++) {
        hi[e] = __float_as_uint(xs[e]) & 0xFFFFE000u;
        lo[e] = __float_as_uint(xs[e] - __uint_as_float(hi[e]));
    }
    float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int st = 0; st < 2; st++) {
        unsigned int a[4];
        kd_q6k_tile_a(qa, qb, st, a);
        const unsigned int bh[2] = {hi[2 * st], hi[2 * st + 1]};
        const unsigned int bl[2] = {lo[2 * st], lo[2 * st + 1]};
        kd_mma_tf32(c, a, bh);
        kd_mma_tf32(c, a, bl);
    }
    acc[0] = fmaf(dsa, c[0], acc[0]);
    acc[1] = fmaf(dsa, c[1], acc[1]);
    acc[2] = fmaf(dsb, c[2], acc[2]);
    acc[3] = fmaf(dsb, c[3], acc[3]);
}

/* The 6-bit quants (4 bytes) from a ql word (nibble hi) and a qh word (bits 2j). */
KD_DEV unsigned int kd_q6k_merge(unsigned int ql, unsigned int qh, int hi, int j)
{
    return ((ql >> (4 * hi)) & 0x0F0F0F0Fu) | (((qh >> (2 * j)) & 0x03030303u) << 4);
}

KD_DEV void kd_gemv_q6k_tile(const unsigned char *__restrict__ w, const float *__restrict__ x,
                             float *__restrict__ y, int n_rows, int k, int m0, int mcount,
                             int row0, unsigned char *stage)
{
    const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
    const int nb = k / KD_QK_K;
    const size_t row_bytes = (size_t)nb * KD_Q6K_BLOCK_BYTES;
    /* rows of x past mcount repeat the last one: their results are not stored */
    const float *xg = x + (size_t)(m0 + (g < mcount ? g : mcount - 1)) * k + 4 * t;
    /* the stage rows of this lane's two weight rows */
    const int sa = g * KD_CU_Q6K_TILE_ROW_BYTES, sb = (g + 8) * KD_CU_Q6K_TILE_ROW_BYTES;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};

    uint4 v[KD_Q6K_TILE_LOADS];
    kd_q6k_tile_fetch(w, row0, n_rows, row_bytes, 0, v);
    for (int blk = 0; blk < nb; blk++) {
        __syncwarp(); /* every lane is done with the previous block's stage */
        kd_q6k_tile_put(v, stage);
        __syncwarp(); /* the stage is written */
        if (blk + 1 < nb)
            kd_q6k_tile_fetch(w, row0, n_rows, row_bytes, blk + 1, v);

        /* where the block starts in each of the lane's stage rows */
        const kd_q6k_at pa = kd_q6k_place(sa + (int)(kd_q6k_block_off(row0, g, n_rows, row_bytes, blk) & 15));
        const kd_q6k_at pb = kd_q6k_place(sb + (int)(kd_q6k_block_off(row0, g + 8, n_rows, row_bytes, blk) & 15));
        unsigned int swa[4], swb[4];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            swa[i] = kd_q6k_word(stage, pa, KD_Q6K_SCALES + 4 * i) ^ 0x80808080u;
            swb[i] = kd_q6k_word(stage, pb, KD_Q6K_SCALES + 4 * i) ^ 0x80808080u;
        }
        const float da = kd_f16_to_f32((kd_u16)(kd_q6k_word(stage, pa, KD_Q6K_D) & 0xFFFF));
        const float db = kd_f16_to_f32((kd_u16)(kd_q6k_word(stage, pb, KD_Q6K_D) & 0xFFFF));
        const float *xb = xg + (size_t)blk * KD_QK_K;

        /* element 128 h + 32 j + 16 s + 4 t + e: ql piece 4h + 2(j % 2) + s (nibble
         * j / 2), qh piece 8 + 2h + s (bits 2j), scale 8h + 2j + s */
#pragma unroll
        for (int h = 0; h < 2; h++) {
#pragma unroll
            for (int s = 0; s < 2; s++) {
                const int qho = 16 * (8 + 2 * h + s) + 4 * t;
                const unsigned int qha = kd_q6k_word(stage, pa, qho);
                const unsigned int qhb = kd_q6k_word(stage, pb, qho);
#pragma unroll
                for (int jj = 0; jj < 2; jj++) {
                    const int qlo = 16 * (4 * h + 2 * jj + s) + 4 * t;
                    const unsigned int qla = kd_q6k_word(stage, pa, qlo);
                    const unsigned int qlb = kd_q6k_word(stage, pb, qlo);
#pragma unroll
                    for (int nib = 0; nib < 2; nib++) {
                        const int j = jj + 2 * nib, sc = 8 * h + 2 * j + s;
                        const float4 xv = kd_ldg_f4(xb + 128 * h + 32 * j + 16 * s);
                        kd_q6k_tile_sub(kd_q6k_merge(qla, qha, nib, j),
                                        kd_q6k_merge(qlb, qhb, nib, j),
                                        kd_q6k_ds(da, swa[sc / 4], sc % 4),
                                        kd_q6k_ds(db, swb[sc / 4], sc % 4), xv, acc);
                    }
                }
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
        kd_gemv_q6k_rows(w, x, y, n_rows, k,
                         stage + threadIdx.y * KD_CU_Q6K_WARP_BYTES, row0);
    }
}

__global__ void __launch_bounds__(KD_CU_GEMV_WARPS * KD_CU_WARP)
kd_gemv_q6k_batched(const unsigned char *__restrict__ w, const float *__restrict__ x,
                    float *__restrict__ y, int n_rows, int k, int m_dim)
{
    __shared__ __align__(16) unsigned char stage[KD_CU_Q6K_SHARED_BYTES];
    int m0, mcount;
    kd_gemv_batch_pass(m_dim, &m0, &mcount);
    const int row0 = kd_gemv_first_row();
    if (mcount <= 0 || row0 >= n_rows)
        return; /* the whole warp */
    kd_gemv_q6k_tile(w, x, y, n_rows, k, m0, mcount, row0,
                     stage + threadIdx.y * KD_CU_Q6K_WARP_BYTES);
}

#ifdef __cplusplus
}
#endif
