/*
 * What the two GEMV kernels (gemv_q4k.cu, gemv_q6k.cu) share: the row/batch mapping and
 * the final warp reduction.
 *
 * Mapping: a block is KD_CU_GEMV_WARPS warps; warp w of block b owns the
 * KD_CU_GEMV_ROWS_PER_WARP (16) consecutive output rows from (b * WARPS + w) * 16. Grid y
 * walks the batch KD_CU_GEMV_MAX_M rows of x at a time.
 * The single-row kernels (CUDA cores) take those rows in passes of KD_R =
 * KD_CU_GEMV_GROUP_ROWS (4): the lanes split K, and each lane keeps KD_R accumulators
 * (one x load serves all of the rows); kd_gemv_store also reduces KD_R * MT of them for
 * a kernel with MT rows of x. The batched kernels (Q4_K and Q6_K) take all 16 rows at
 * once on the tensor cores, each weight decoded once for all rows of x.
 */
#ifndef KD_CUDA_GEMV_CUH
#define KD_CUDA_GEMV_CUH

#include "kd_cuda_util.cuh"

#define KD_R KD_CU_GEMV_GROUP_ROWS
#define KD_PASSES (KD_CU_GEMV_ROWS_PER_WARP / KD_CU_GEMV_GROUP_ROWS)
#define KD_ACC_MAX (KD_CU_GEMV_GROUP_ROWS * KD_CU_GEMV_MAX_M)

#if (KD_ACC_MAX > KD_CU_WARP) || (KD_ACC_MAX & (KD_ACC_MAX - 1))
#error "rows per pass * max M must be a power of two <= 32 (one sum per lane at the end)"
#endif
#if KD_CU_GEMV_ROWS_PER_WARP % KD_CU_GEMV_GROUP_ROWS
#error "rows per warp must be whole passes"
#endif

/* First output row of this warp; >= n_rows when the warp has nothing to do. */
KD_DEV int kd_gemv_first_row(void)
{
    return (blockIdx.x * blockDim.y + threadIdx.y) * KD_CU_GEMV_ROWS_PER_WARP;
}

/* The rows of x this pass covers: [*m0, *m0 + *mcount). */
KD_DEV void kd_gemv_batch_pass(int m_dim, int *m0, int *mcount)
{
    *m0 = blockIdx.y * KD_CU_GEMV_MAX_M;
    int left = m_dim - *m0;
    *mcount = left < KD_CU_GEMV_MAX_M ? left : KD_CU_GEMV_MAX_M;
}

/* One step of kd_warp_reduce_scatter: lanes with bit o set keep v[half..2 half), the
 * others v[0..half); each sends the other half to lane ^ o and adds what it receives. */
KD_DEV void kd_reduce_scatter_step(float *v, const int half, const int o)
{
    const int upper = (threadIdx.x & o) != 0;
#pragma unroll
    for (int i = 0; i < half; i++) {
        float send = upper ? v[i] : v[i + half];
        float keep = upper ? v[i + half] : v[i];
        v[i] = keep + __shfl_xor_sync(KD_FULL_MASK, send, o);
    }
}

/* Step s (0..4, offset 16 >> s): a reduce-scatter step while values are left to split,
 * then a plain butterfly on the one value left. */
#define KD_REDUCE_STEP(v, count, s)                                        \
    do {                                                                   \
        if (((count) >> ((s) + 1)) >= 1)                                  \
            kd_reduce_scatter_step(v, (count) >> ((s) + 1), 16 >> (s));    \
        else                                                               \
            v[0] += __shfl_xor_sync(KD_FULL_MASK, v[0], 16 >> (s));        \
    } while (0)

/*
 * Reduces the count (a power of two <= 32, compile-time after inlining) accumulators of
 * every lane across the warp with count - 1 + log2(32 / count) shuffles instead of
 * 5 * count: at each step a lane keeps one half of its values, sends the other half to
 * its partner and adds what the partner sent (a reduce-scatter). Afterwards lane l holds
 * in v[0] the warp total of value l / (32 / count). The steps are written out so that
 * every index is a constant and v stays in registers.
 */
KD_DEV void kd_warp_reduce_scatter(float *v, const int count)
{
    KD_REDUCE_STEP(v, count, 0);
    KD_REDUCE_STEP(v, count, 1);
    KD_REDUCE_STEP(v, count, 2);
    KD_REDUCE_STEP(v, count, 3);
    KD_REDUCE_STEP(v, count, 4);
}

/* Reduces acc[r * mt + m] over the warp and stores y[m0 + m][row0 + r]. */
KD_DEV void kd_gemv_store(float *acc, const int mt, float *y, int n_rows, int row0, int m0,
                          int mcount)
{
    const int count = KD_R * mt;
    kd_warp_reduce_scatter(acc, count);
    const int lane = threadIdx.x, stride = KD_CU_WARP / count;
    if (lane % stride != 0)
        return;
    const int idx = lane / stride, r = idx / mt, m = idx % mt;
    if (row0 + r < n_rows && m < mcount)
        y[(size_t)(m0 + m) * n_rows + row0 + r] = acc[0];
}

/* Word u (0..3, compile-time) of a 16-byte vector. */
KD_DEV unsigned int kd_u4_word(uint4 v, const int u)
{
    return u == 0 ? v.x : u == 1 ? v.y : u == 2 ? v.z : v.w;
}

/* acc += dot(w[0..3], x) */
KD_DEV float kd_dot4(float acc, const float *w, float4 x)
{
    acc = fmaf(w[0], x.x, acc);
    acc = fmaf(w[1], x.y, acc);
    acc = fmaf(w[2], x.z, acc);
    return fmaf(w[3], x.w, acc);
}

#endif /* KD_CUDA_GEMV_CUH */
