/* The activation-quantized GEMV path (SPEC §2): x is quantized once per call to int8
 * blocks of 256 (ggml's q8_K idea), the weights stay in their GGUF K-quant blocks, and
 * each 32-value sub-block is an integer dot product; floats appear once per 256 values.
 *
 *   Q4_K: y += dx * (d * sum_s sc[s] * (q4_s . q8_s) - dmin * sum_s mn[s] * bsum_s)
 *   Q6_K: y += dx * d * sum_g scale[g] * (q6u_g . q8_g - 32 * bsums[g])   (q6u = q6 + 32)
 *
 * The integer parts are exact at every SIMD level; levels differ only in the order of the
 * float sums over blocks. */
#ifndef KD_CPU_GEMV_Q8_H
#define KD_CPU_GEMV_Q8_H

#include <string.h>

#include "cpu_ops.h"
#include "kd_blocks.h"
#include "kd_row_groups.h"

#define KD_Q8_BLOCK 256

/* 256 values of x (kd_blocks.h, shared with the OpenCL q8 kernels). */
typedef kd_block_q8 kd_q8_block;

/* Quantizes one block of 256 floats (round to nearest even, |q| <= 127, d = amax / 127).
 * Every level gives the same bytes: the same float operations in the same order. */
void kd_q8_quantize_block_scalar(const float *x, kd_q8_block *out);
void kd_q8_quantize_block_avx2(const float *x, kd_q8_block *out);
void kd_q8_quantize_block_avx512(const float *x, kd_q8_block *out);
/* How a level's kernels read x (kd_q8_kernels.x_layout), flags: */
#define KD_Q8_X_LANES 1     /* qs in lane order (kd_q8_lane_qword, kd_blocks.h) */
#define KD_Q8_X_LANE_SUMS 2 /* full tiles of 8 rows: the lane sums layout (kd_blocks.h) */

/* M rows of K values (K a multiple of 256) -> M * K/256 blocks, threaded on the pool when
 * pool is not NULL, with the sums the weight type's kernels read: Q4_K's xm (its mins
 * then cost one FMA per block and row, where the bsums took a vpmaddwd, a convert and a
 * broadcast), else bsums; qs in order, or in the kernels' lane order (x_layout
 * KD_Q8_X_LANES); with KD_Q8_X_LANE_SUMS, full tiles of 8 rows (rows 8t .. 8t + 7) in the
 * lane sums layout (kd_blocks.h). */
void kd_q8_quantize_rows(kd_pool *pool, kd_simd simd, const float *x, int64_t m, int64_t k,
                         kd_type type, int x_layout, kd_q8_block *out);

typedef struct kd_q8_job {
    const void *w;          /* N rows of K/256 weight blocks */
    const kd_q8_block *xq;  /* M rows of K/256 quantized blocks */
    float *y;               /* M x N */
    int64_t n, nb, m;       /* nb = K / 256 */
    int64_t grouped;        /* leading rows of w in row groups (kd_row_groups.h) */
} kd_q8_job;

/* Block b of weight row r, in either layout. */
static inline const void *kd_q8_weight_block(const kd_q8_job *j, size_t block_bytes, int64_t r,
                                             int64_t b)
{
    return (const char *)j->w + (size_t)kd_row_block_index(r, b, j->nb, j->grouped) * block_bytes;
}

/* Output rows r0 .. r1 - 1 for rows m0 .. m0 + mc - 1 of x (mc <= 8). A range rather than
 * one row per call, so that the call and the kernel's constant vectors are paid once per
 * range (1-3 % at K = 4096, where a row is 16 blocks). The row kernels take rows in GGUF
 * order (r >= grouped); the group kernels take whole row groups (r0, r1 multiples of 8,
 * r1 <= grouped), each group's weight blocks read once, in order, for its 8 rows. */
typedef void (*kd_q8_row_fn)(const kd_q8_job *j, int64_t r0, int64_t r1, int64_t m0, int mc);

/* The kernels of one level, for Q4_K and Q6_K. */
typedef struct kd_q8_kernels {
    kd_q8_row_fn q4k, q6k;               /* rows in GGUF order */
    kd_q8_row_fn q4k_groups, q6k_groups; /* row groups */
    int x_layout;                        /* KD_Q8_X_* flags (kd_q8_quantize_rows) */
} kd_q8_kernels;

extern const kd_q8_kernels kd_q8_scalar_kernels;  /* the reference (tests) */
extern const kd_q8_kernels kd_q8_generic_kernels; /* portable C: levels without SIMD kernels */
extern const kd_q8_kernels kd_q8_avx2_kernels;
extern const kd_q8_kernels kd_q8_vnni_vex_kernels;  /* 256-bit VNNI, AVX-VNNI's encoding */
extern const kd_q8_kernels kd_q8_vnni_evex_kernels; /* the same kernels, AVX-512 VL's */
extern const kd_q8_kernels kd_q8_vnni512_kernels;

/* Rows of x that one decoded weight block serves (accumulators in registers). */
#define KD_Q8_MAX_MC 8

/* KD_Q8_ROW_BY_MC(NAME, ROW, TARGET) defines NAME(j, r0, r1, m0, mc): the rows r0 .. r1 - 1
 * with ROW(j, r, m0, mc) specialized for mc = 1..8, so that each specialization keeps its
 * per-row accumulators in registers and its constants stay loaded across the rows. */
#define KD_Q8_ROWS_MC(NAME, ROW, TARGET, MC, STEP)                                       \
    static TARGET void NAME##_##MC(const kd_q8_job *j, int64_t r0, int64_t r1, int64_t m0) \
    {                                                                                    \
        for (int64_t r = r0; r < r1; r += STEP)                                          \
            ROW(j, r, m0, MC);                                                           \
    }
#define KD_Q8_BY_MC(NAME, ROW, TARGET, STEP)                                             \
    KD_Q8_ROWS_MC(NAME, ROW, TARGET, 1, STEP) KD_Q8_ROWS_MC(NAME, ROW, TARGET, 2, STEP)  \
    KD_Q8_ROWS_MC(NAME, ROW, TARGET, 3, STEP) KD_Q8_ROWS_MC(NAME, ROW, TARGET, 4, STEP)  \
    KD_Q8_ROWS_MC(NAME, ROW, TARGET, 5, STEP) KD_Q8_ROWS_MC(NAME, ROW, TARGET, 6, STEP)  \
    KD_Q8_ROWS_MC(NAME, ROW, TARGET, 7, STEP) KD_Q8_ROWS_MC(NAME, ROW, TARGET, 8, STEP)  \
    static void NAME(const kd_q8_job *j, int64_t r0, int64_t r1, int64_t m0, int mc)     \
    {                                                                                    \
        static void (*const by_mc[9])(const kd_q8_job *, int64_t, int64_t, int64_t) = {  \
            NULL, NAME##_1, NAME##_2, NAME##_3, NAME##_4, NAME##_5, NAME##_6, NAME##_7,  \
            NAME##_8};                                                                   \
        by_mc[mc](j, r0, r1, m0);                                                        \
    }
#define KD_Q8_ROW_BY_MC(NAME, ROW, TARGET) KD_Q8_BY_MC(NAME, ROW, TARGET, 1)
/* The same for GROUP(j, g, m0, mc): the 8 rows of the group starting at row g. */
#define KD_Q8_GROUP_BY_MC(NAME, GROUP, TARGET) KD_Q8_BY_MC(NAME, GROUP, TARGET, KD_ROW_GROUP)

/* Asks for the weight bytes [p, p + bytes) KD_Q8_PREFETCH_AHEAD bytes ahead, one request per
 * cache line (prefetches do not fault: past the end of the weights they are dropped). On
 * Zen 3 (AVX2, 2 threads, weights out of the L3) the hardware prefetcher alone left M = 1
 * at 13-14 GB/s of 18; with this, M = 1 took 0.66-0.97 of the time at both shapes and both
 * types (14 runs, most 0.80-0.90), M = 8 0.78-0.99 (1024-4096 ahead alike). Zen 4 had
 * shown no gain, and no loss. */
#define KD_Q8_PREFETCH_AHEAD 2048
static inline __attribute__((always_inline)) void kd_q8_prefetch(const void *p, size_t bytes)
{
    for (size_t o = 0; o < bytes; o += 64)
        __builtin_prefetch((const char *)p + KD_Q8_PREFETCH_AHEAD + o);
}

/* KD_Q8_ROWS(NAME, BLOCK_T, BLOCK, ACC_T, ZERO, SUM, TARGET) defines the always-inline
 * NAME(j, r, m0, mc, g): the g weight rows from row r (g = 1: one row in GGUF order;
 * g = KD_ROW_GROUP: a row group, block b of its row i at r * nb + b * g + i) for rows
 * m0 .. m0 + mc - 1 of x, through BLOCK(blk, x, nb, mc, acc): acc[m] += one weight block
 * . block b of row m of x, for m < mc (x: block b of the first row, the others nb blocks
 * apart). SUM(acc) is the output; with LANE_SUMS (a constant) and mc = 8 BLOCK adds row m
 * into lane m of acc[0] (KD_Q8_X_LANE_SUMS), the output is that lane. A level writes BLOCK
 * once and gets both layouts, each row's sums in the same order. A group's accumulators
 * (8 x mc) spill to the stack when mc > 1: measured level with the row kernel at M = 8. */
#define KD_Q8_ROWS(NAME, BLOCK_T, BLOCK, ACC_T, ZERO, SUM, TARGET, LANE_SUMS)                    \
    static inline __attribute__((always_inline)) TARGET void NAME(                               \
        const kd_q8_job *j, int64_t r, int64_t m0, const int mc, const int g)                    \
    {                                                                                            \
        const BLOCK_T *w = (const BLOCK_T *)j->w + r * j->nb;                                    \
        const kd_q8_block *x0 = j->xq + m0 * j->nb;                                              \
        ACC_T acc[KD_ROW_GROUP][KD_Q8_MAX_MC];                                                   \
        for (int i = 0; i < g; i++)                                                              \
            for (int m = 0; m < mc; m++)                                                         \
                acc[i][m] = ZERO;                                                                \
        for (int64_t b = 0; b < j->nb; b++) {                                                    \
            kd_q8_prefetch(w + b * g, sizeof(BLOCK_T) * g);                                      \
            for (int i = 0; i < g; i++)                                                          \
                BLOCK(w + b * g + i, x0 + b, j->nb, mc, acc[i]);                                 \
        }                                                                                        \
        for (int i = 0; i < g; i++)                                                              \
            for (int m = 0; m < mc; m++)                                                         \
                j->y[(m0 + m) * j->n + r + i] = (LANE_SUMS) && mc == KD_Q8_MAX_MC                \
                                                    ? kd_q8_lane(&acc[i][0], m)                  \
                                                    : SUM(acc[i][m]);                            \
    }                                                                                            \
    static inline __attribute__((always_inline)) TARGET void NAME##_row(                         \
        const kd_q8_job *j, int64_t r, int64_t m0, const int mc)                                 \
    {                                                                                            \
        NAME(j, r, m0, mc, 1);                                                                   \
    }                                                                                            \
    static inline __attribute__((always_inline)) TARGET void NAME##_group(                       \
        const kd_q8_job *j, int64_t r, int64_t m0, const int mc)                                 \
    {                                                                                            \
        NAME(j, r, m0, mc, KD_ROW_GROUP);                                                        \
    }

/* Lane m of an accumulator vector (a float each). */
static inline float kd_q8_lane(const void *acc, int m)
{
    float v;
    memcpy(&v, (const char *)acc + sizeof v * (size_t)m, sizeof v);
    return v;
}

/* KD_Q8_LEVEL_KERNELS(LEVEL, ACC_T, ZERO, SUM, TARGET, X_LAYOUT): a level's whole kernel
 * table, const kd_q8_kernels kd_q8_<LEVEL>_kernels, from the file's q4k_block and
 * q6k_block (row and group loops, each specialized per mc: q4k_<LEVEL>, q4k_groups_<LEVEL>,
 * ...); X_LAYOUT: how the blocks read x (KD_Q8_X_* flags). */
#define KD_Q8_LEVEL_KERNELS(LEVEL, ACC_T, ZERO, SUM, TARGET, X_LAYOUT)                        \
    KD_Q8_ROWS(q4k_rows, kd_block_q4_K, q4k_block, ACC_T, ZERO, SUM, TARGET,                  \
               ((X_LAYOUT) & KD_Q8_X_LANE_SUMS) != 0)                                         \
    KD_Q8_ROWS(q6k_rows, kd_block_q6_K, q6k_block, ACC_T, ZERO, SUM, TARGET,                  \
               ((X_LAYOUT) & KD_Q8_X_LANE_SUMS) != 0)                                         \
    KD_Q8_ROW_BY_MC(q4k_##LEVEL, q4k_rows_row, TARGET)                                        \
    KD_Q8_ROW_BY_MC(q6k_##LEVEL, q6k_rows_row, TARGET)                                        \
    KD_Q8_GROUP_BY_MC(q4k_groups_##LEVEL, q4k_rows_group, TARGET)                             \
    KD_Q8_GROUP_BY_MC(q6k_groups_##LEVEL, q6k_rows_group, TARGET)                             \
    const kd_q8_kernels kd_q8_##LEVEL##_kernels = {q4k_##LEVEL, q6k_##LEVEL,                  \
                                                   q4k_groups_##LEVEL, q6k_groups_##LEVEL,   \
                                                   X_LAYOUT};

/* The q8 GEMV of one call (Q4_K or Q6_K) on the pool: quantize x, then rows of W in
 * parallel, M in tiles of 8. simd picks the kernels (KD_SIMD_SCALAR: the reference). */
kd_status kd_cpu_gemv_q8(const kd_cpu_env *e, const kd_call *c, kd_type type, kd_simd simd);
/* The M from which the q8 path hands a call to dequantize + sgemm: INT64_MAX (never) with
 * SIMD kernels; with the generic ones KD_CPU_BLAS_MIN_M_Q8_GENERIC unless
 * KD_CPU_BLAS_MIN_M is set. */
int64_t kd_q8_sgemm_min_m(const kd_cpu_env *e, kd_simd simd);
/* The level's kernels: AVX-512 and VNNI need a VNNI encoding, else the AVX2 kernels serve;
 * below AVX2 (and off x86) the generic ones. */
const kd_q8_kernels *kd_q8_kernels_for(const kd_cpu_env *e, kd_simd simd);
/* Name of the q8 kernels a level runs: "generic", "avx2", "avx-vnni", "avx512vl-vnni"
 * (256-bit, EVEX), "avx512-vnni". */
const char *kd_q8_kernels_name(const kd_cpu_env *e, kd_simd simd);

#endif
