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

#include "cpu_ops.h"

#define KD_Q8_BLOCK 256

/* 256 values of x: x[i] ~= d * qs[i]; bsums[g] = sum of qs[16g .. 16g+15]. */
typedef struct kd_q8_block {
    float d;
    int8_t qs[KD_Q8_BLOCK];
    int16_t bsums[KD_Q8_BLOCK / 16];
} kd_q8_block;

/* Quantizes one block of 256 floats (round to nearest even, |q| <= 127, d = amax / 127).
 * Every level gives the same bytes: the same float operations in the same order. */
void kd_q8_quantize_block_scalar(const float *x, kd_q8_block *out);
void kd_q8_quantize_block_avx2(const float *x, kd_q8_block *out);
void kd_q8_quantize_block_avx512(const float *x, kd_q8_block *out);
/* M rows of K values (K a multiple of 256) -> M * K/256 blocks, threaded on the pool when
 * pool is not NULL. */
void kd_q8_quantize_rows(kd_pool *pool, kd_simd simd, const float *x, int64_t m, int64_t k,
                         kd_q8_block *out);

typedef struct kd_q8_job {
    const void *w;          /* N rows of K/256 weight blocks */
    const kd_q8_block *xq;  /* M rows of K/256 quantized blocks */
    float *y;               /* M x N */
    int64_t n, nb, m;       /* nb = K / 256 */
} kd_q8_job;

/* One output row r for rows m0 .. m0 + mc - 1 of x (mc <= 8). */
typedef void (*kd_q8_row_fn)(const kd_q8_job *j, int64_t r, int64_t m0, int mc);

/* The kernels of one level, for Q4_K and Q6_K. */
typedef struct kd_q8_kernels {
    kd_q8_row_fn q4k, q6k;
} kd_q8_kernels;

extern const kd_q8_kernels kd_q8_scalar_kernels;
extern const kd_q8_kernels kd_q8_avx2_kernels;
extern const kd_q8_kernels kd_q8_vnni512_kernels;

/* Rows of x that one decoded weight block serves (accumulators in registers). */
#define KD_Q8_MAX_MC 8

/* Defines NAME(j, r, m0, mc) dispatching to ROW specialized for mc = 1..8, so that each
 * specialization keeps its per-row accumulators in registers. */
#define KD_Q8_ROW_BY_MC(NAME, ROW, TARGET)                                               \
    static TARGET void NAME##_1(const kd_q8_job *j, int64_t r, int64_t m0) { ROW(j, r, m0, 1); } \
    static TARGET void NAME##_2(const kd_q8_job *j, int64_t r, int64_t m0) { ROW(j, r, m0, 2); } \
    static TARGET void NAME##_3(const kd_q8_job *j, int64_t r, int64_t m0) { ROW(j, r, m0, 3); } \
    static TARGET void NAME##_4(const kd_q8_job *j, int64_t r, int64_t m0) { ROW(j, r, m0, 4); } \
    static TARGET void NAME##_5(const kd_q8_job *j, int64_t r, int64_t m0) { ROW(j, r, m0, 5); } \
    static TARGET void NAME##_6(const kd_q8_job *j, int64_t r, int64_t m0) { ROW(j, r, m0, 6); } \
    static TARGET void NAME##_7(const kd_q8_job *j, int64_t r, int64_t m0) { ROW(j, r, m0, 7); } \
    static TARGET void NAME##_8(const kd_q8_job *j, int64_t r, int64_t m0) { ROW(j, r, m0, 8); } \
    static void NAME(const kd_q8_job *j, int64_t r, int64_t m0, int mc)                  \
    {                                                                                    \
        static void (*const by_mc[9])(const kd_q8_job *, int64_t, int64_t) = {           \
            NULL, NAME##_1, NAME##_2, NAME##_3, NAME##_4, NAME##_5, NAME##_6, NAME##_7,  \
            NAME##_8};                                                                   \
        by_mc[mc](j, r, m0);                                                             \
    }

/* The q8 GEMV of one call (Q4_K or Q6_K) on the pool: quantize x, then rows of W in
 * parallel, M in tiles of 8. simd picks the kernels (KD_SIMD_SCALAR: the reference). */
kd_status kd_cpu_gemv_q8(const kd_cpu_env *e, const kd_call *c, kd_type type, kd_simd simd);
/* The level's kernels: AVX-512 needs VNNI, else the AVX2 kernels serve. */
const kd_q8_kernels *kd_q8_kernels_for(const kd_cpu_env *e, kd_simd simd);
/* Name of the q8 kernels a level runs: "scalar", "avx2", "avx512-vnni". */
const char *kd_q8_kernels_name(const kd_cpu_env *e, kd_simd simd);

#endif
