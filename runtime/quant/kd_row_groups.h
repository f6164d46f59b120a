/* Row groups: the host layout of the quantized weights the library copies
 * (kd_tensor_quant), when their rows are long.
 *
 * GGUF stores a weight row after row, each row K/256 blocks. A GEMV with long rows
 * (K = 14336: 56 blocks) reads the quantized x of a whole row (16 KB) once per weight row,
 * and the weight stream pushes it out of the 32 KB L1. In row groups, the first
 * `grouped` rows (a multiple of KD_ROW_GROUP) are stored KD_ROW_GROUP rows at a time,
 * block by block: block b of rows 8g .. 8g+7, then block b+1 of the same rows. The
 * kernels walk one group as one sequential stream and use each x block for 8 weight
 * blocks while it is in L1. The rows after `grouped` (N mod 8) stay in GGUF order. The
 * blocks' bytes are GGUF's; only their order changes, and each row's sums run in the
 * same order as in GGUF order, so the outputs are bit-identical.
 *
 * Measured on a 2-core Zen 4 (AVX-512 q8 kernels, 2 threads, M = 1, same weights in both
 * layouts in one process): 4096 x 14336 0.71-0.82 of the GGUF-order time (Q4_K and Q6_K,
 * in and out of the caches), 4096 x 28672 0.59-0.71, 8192 x 8192 1.00-1.03,
 * 14336 x 4096 1.07-1.15: hence groups only above KD_ROW_GROUP_MIN_BLOCKS. */
#ifndef KD_ROW_GROUPS_H
#define KD_ROW_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#define KD_ROW_GROUP 8
/* Blocks per row above which copied weights are grouped (K > 8192). */
#define KD_ROW_GROUP_MIN_BLOCKS 32

/* How many leading rows of a rows x cols quantized weight go in groups (0: GGUF order). */
static inline int64_t kd_row_groups_rows(int64_t rows, int64_t cols)
{
    return cols / 256 > KD_ROW_GROUP_MIN_BLOCKS ? rows - rows % KD_ROW_GROUP : 0;
}

/* Index (in blocks) of block 0 of row r, and the step in blocks from one block of the
 * row to the next: block b of row r is at kd_row_first_block + b * kd_row_block_step. */
static inline int64_t kd_row_first_block(int64_t r, int64_t nb, int64_t grouped)
{
    return r < grouped ? (r - r % KD_ROW_GROUP) * nb + r % KD_ROW_GROUP : r * nb;
}
static inline int64_t kd_row_block_step(int64_t r, int64_t grouped)
{
    return r < grouped ? KD_ROW_GROUP : 1;
}

/* Index (in blocks) of block b of row r. */
static inline int64_t kd_row_block_index(int64_t r, int64_t b, int64_t nb, int64_t grouped)
{
    return kd_row_first_block(r, nb, grouped) + b * kd_row_block_step(r, grouped);
}

/* GGUF order -> row groups (dst and src distinct; rows of nb blocks of block_bytes). */
void kd_row_groups_pack(void *dst, const void *src, int64_t rows, int64_t nb, size_t block_bytes,
                        int64_t grouped);
/* Row groups -> GGUF order (uploads to backends that read GGUF order). */
void kd_row_groups_unpack(void *dst, const void *src, int64_t rows, int64_t nb, size_t block_bytes,
                          int64_t grouped);

#endif
