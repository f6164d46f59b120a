/* The cpu GEMV kernels' common shape: y[m, j] = sum_k W[j, k] x[m, k] for output rows
 * [r0, r1) and all M rows of x, each weight block decoded once for all M rows. */
#ifndef KD_CPU_GEMV_H
#define KD_CPU_GEMV_H

#include "cpu_ops.h"
#include "kd_quant.h"
#include "kd_row_groups.h"
#include "simd.h"

/* Rows of x one decoded block serves at most (the fast kernels' accumulators, in
 * registers); more rows (below the BLAS crossover, KD_CPU_BLAS_MIN_M) go in tiles of 8
 * over panels of weight rows (KD_CPU_PANEL_BYTES). */
#define KD_CPU_GEMV_MC 8

typedef struct kd_gemv_job {
    const void *w;      /* N rows of K/256 blocks */
    int64_t grouped;    /* leading rows of w in row groups (kd_row_groups.h) */
    const float *x;     /* M x K */
    const float *xsum;  /* Q4_K: M x K/32 sums of x over each sub-block (for the mins) */
    float *y;           /* M x N */
    int64_t n, k, m;
    kd_simd simd;       /* KD_SIMD_SCALAR: the scalar reference path */
    kd_type type;       /* KD_TYPE_Q4_K or KD_TYPE_Q6_K */
} kd_gemv_job;

typedef void (*kd_gemv_rows_fn)(const kd_gemv_job *j, int64_t r0, int64_t r1);

/* The scalar reference for either type: each block decoded to floats once
 * (kd_dequant_row), then dotted with every row of x. */
void kd_gemv_rows_scalar(const kd_gemv_job *j, int64_t r0, int64_t r1);

/* KD_GEMV_ROWS(NAME, BLOCK_T, BLOCK, ACC_T, ZERO, SUM, TARGET) defines the always-inline
 * NAME(j, r, m0, mc, g): the g weight rows from row r (g = 1: one row in GGUF order;
 * g = KD_ROW_GROUP: a row group, block b of its row i at r * nb + b * g + i) for rows
 * m0 .. m0 + mc - 1 of x, through BLOCK(j, blk, b, m0, mc, acc): acc[m] += weight block
 * blk (block b of its row) . x[m0 + m][256 b ..], for m < mc. SUM(acc) is the output;
 * ZERO() a cleared accumulator. NAME##_row and NAME##_group are its two layouts. Each
 * row's sums run in the same order in both, so the outputs are bit-identical. */
#define KD_GEMV_ROWS(NAME, BLOCK_T, BLOCK, ACC_T, ZERO, SUM, TARGET)                            \
    static inline __attribute__((always_inline)) TARGET void NAME(                              \
        const kd_gemv_job *j, int64_t r, int64_t m0, const int mc, const int g)                 \
    {                                                                                           \
        const int64_t nb = j->k / KD_QK_K;                                                      \
        const BLOCK_T *w = (const BLOCK_T *)j->w + r * nb;                                      \
        ACC_T acc[KD_ROW_GROUP][KD_CPU_GEMV_MC];                                                \
        for (int i = 0; i < g; i++)                                                             \
            for (int m = 0; m < mc; m++)                                                        \
                acc[i][m] = ZERO();                                                             \
        for (int64_t b = 0; b < nb; b++)                                                        \
            for (int i = 0; i < g; i++)                                                         \
                BLOCK(j, w + b * g + i, b, m0, mc, acc[i]);                                     \
        for (int i = 0; i < g; i++)                                                             \
            for (int m = 0; m < mc; m++)                                                        \
                j->y[(m0 + m) * j->n + r + i] = SUM(acc[i][m]);                                 \
    }                                                                                           \
    static inline __attribute__((always_inline)) TARGET void NAME##_row(                        \
        const kd_gemv_job *j, int64_t r, int64_t m0, const int mc)                              \
    {                                                                                           \
        NAME(j, r, m0, mc, 1);                                                                  \
    }                                                                                           \
    static inline __attribute__((always_inline)) TARGET void NAME##_group(                      \
        const kd_gemv_job *j, int64_t r, int64_t m0, const int mc)                              \
    {                                                                                           \
        NAME(j, r, m0, mc, KD_ROW_GROUP);                                                       \
    }

/* KD_GEMV_ROWS_BY_M(NAME, ROWS, TARGET) defines NAME(job, r0, r1): output rows r0..r1
 * through ROWS##_group (rows below job->grouped, whole groups) and ROWS##_row (the rest),
 * specialized for each mc of 1..8 (a constant, so the accumulators stay in registers);
 * above 8 rows of x, tiles of 8 over panels of weight rows (whole groups). (The tiles of
 * 32 before, with their accumulators in memory, took 8.6x the time of M = 8 at M = 32.) */
#define KD_GEMV_ROWS_FOR_M(NAME, ROWS, TARGET, MC)                                             \
    static TARGET void NAME##_m##MC(const kd_gemv_job *j, int64_t r0, int64_t r1, int64_t m0) \
    {                                                                                          \
        int64_t r = r0;                                                                        \
        for (; r < r1 && r < j->grouped; r += KD_ROW_GROUP)                                    \
            ROWS##_group(j, r, m0, MC);                                                        \
        for (; r < r1; r++)                                                                    \
            ROWS##_row(j, r, m0, MC);                                                          \
    }
#define KD_GEMV_ROWS_BY_M(NAME, ROWS, TARGET)                                           \
    KD_GEMV_ROWS_FOR_M(NAME, ROWS, TARGET, 1) KD_GEMV_ROWS_FOR_M(NAME, ROWS, TARGET, 2)   \
    KD_GEMV_ROWS_FOR_M(NAME, ROWS, TARGET, 3) KD_GEMV_ROWS_FOR_M(NAME, ROWS, TARGET, 4)   \
    KD_GEMV_ROWS_FOR_M(NAME, ROWS, TARGET, 5) KD_GEMV_ROWS_FOR_M(NAME, ROWS, TARGET, 6)   \
    KD_GEMV_ROWS_FOR_M(NAME, ROWS, TARGET, 7) KD_GEMV_ROWS_FOR_M(NAME, ROWS, TARGET, 8)   \
    static void NAME##_tile(const void *arg, int64_t p0, int64_t p1, int64_t m0, int mc) \
    {                                                                                 \
        static void (*const by_m[9])(const kd_gemv_job *, int64_t, int64_t, int64_t) = { \
            NULL, NAME##_m1, NAME##_m2, NAME##_m3, NAME##_m4,                         \
            NAME##_m5, NAME##_m6, NAME##_m7, NAME##_m8};                              \
        by_m[mc]((const kd_gemv_job *)arg, p0, p1, m0);                               \
    }                                                                                 \
    static void NAME(const kd_gemv_job *j, int64_t r0, int64_t r1)                    \
    {                                                                                 \
        const int64_t row_bytes = j->k / KD_QK_K * (int64_t)kd_quant_block_bytes(j->type); \
        kd_cpu_for_tiles(r0, r1, j->m,                                                \
                         kd_cpu_panel_units(row_bytes, j->grouped ? KD_ROW_GROUP : 1), \
                         KD_CPU_GEMV_MC, NAME##_tile, j);                              \
    }

#ifdef KD_HAVE_X86
/* A Q4_K block's sub-block scales d * sc into dl[8], and its 8 mins dmin * mn as the
 * return value (the exact kernels take the mins against the x sums, job->xsum). */
static inline __attribute__((always_inline)) KD_AVX2 __m256 kd_q4k_block_coeffs(const kd_block_q4_K *blk,
                                                                               float dl[8])
{
    uint32_t sc[2], mn[2];
    kd_q4k_unpack_scales(blk->scales, sc, mn);
    _mm256_storeu_ps(dl, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(blk->d)), kd_u8x8_to_f32(sc)));
    return _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(blk->dmin)), kd_u8x8_to_f32(mn));
}
#endif

/* AVX-512 row kernels (gemv_avx512.c). */
void kd_q4k_rows_avx512(const kd_gemv_job *j, int64_t r0, int64_t r1);
void kd_q6k_rows_avx512(const kd_gemv_job *j, int64_t r0, int64_t r1);

/* A type's row kernels per SIMD level (NULL where not built: the next lower level serves,
 * down to kd_gemv_rows_scalar). */
typedef struct kd_gemv_levels { kd_gemv_rows_fn avx2, avx512; } kd_gemv_levels;

/* Runs the kernel of the context's SIMD level over all N rows on the pool (scalar: the
 * reference on one thread). Q4_K jobs get their xsum table here. */
kd_status kd_cpu_gemv_drive(const kd_cpu_env *e, const kd_call *c, kd_type type,
                            const kd_gemv_levels *levels, int scalar);

#endif
