/*
 * RmsNorm: y = x * w / sqrt(mean(x^2) + eps), per row of n.
 * One block of KD_CU_NORM_BLOCK threads per row: each thread sums the squares of a
 * strided part of the row (16-byte loads when n % 4 == 0 and the pointers are aligned),
 * the warp reduces by shuffles, warp 0 reduces the per-warp partials from shared memory
 * (KD_CU_NORM_BLOCK / 32 floats, the same array in both kernels), and the scale comes
 * back to every thread through shared memory. y may alias x: every read of the first
 * pass happens before the barrier, and in the second pass a thread reads x[i] before it
 * writes y[i].
 * Batched: the row is blockIdx.y, m_dim rows in all.
 */
#include "kd_cuda_util.cuh"

#define KD_NORM_WARPS (KD_CU_NORM_BLOCK / KD_CU_WARP)

KD_DEV void kd_rmsnorm_row(const float *x, const float *w, float *y, int n, float eps,
                           float *partial)
{
    const int tid = threadIdx.x, lane = tid % KD_CU_WARP, warp = tid / KD_CU_WARP;
    const int vec = (n & 3) == 0 && kd_aligned16(x, w, y);
    float ss = 0.0f;
    if (vec) {
        for (int i = 4 * tid; i < n; i += 4 * blockDim.x) {
            float4 v = kd_ld_f4(x + i);
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
    } else {
        for (int i = tid; i < n; i += blockDim.x)
            ss += x[i] * x[i];
    }
    ss = kd_warp_sum(ss);
    if (lane == 0)
        partial[warp] = ss;
    __syncthreads();
    if (warp == 0) {
        float t = kd_warp_sum(lane < KD_NORM_WARPS ? partial[lane] : 0.0f);
        if (lane == 0)
            partial[0] = t; /* every lane has read partial[] before the shuffles */
    }
    __syncthreads();
    const float scale = 1.0f / sqrtf(partial[0] / (float)(n > 0 ? n : 1) + eps);

    if (vec) {
        for (int i = 4 * tid; i < n; i += 4 * blockDim.x) {
            float4 v = kd_ld_f4(x + i), g = kd_ld_f4(w + i);
            kd_st_f4(y + i, make_float4(v.x * scale * g.x, v.y * scale * g.y,
                                        v.z * scale * g.z, v.w * scale * g.w));
        }
    } else {
        for (int i = tid; i < n; i += blockDim.x)
            y[i] = x[i] * scale * w[i];
    }
}

#ifdef __cplusplus
extern "C" {
#endif

__global__ void __launch_bounds__(KD_CU_NORM_BLOCK)
kd_rmsnorm_f32(const float *x, const float *w, float *y, int n, float eps)
{
    __shared__ float partial[KD_NORM_WARPS];
    kd_rmsnorm_row(x, w, y, n, eps, partial);
}

__global__ void __launch_bounds__(KD_CU_NORM_BLOCK)
kd_rmsnorm_f32_batched(const float *x, const float *w, float *y, int n, int m_dim, float eps)
{
    __shared__ float partial[KD_NORM_WARPS];
    /* no return before the barriers in kd_rmsnorm_row: a block past m_dim runs the
     * same code over zero elements, so every thread reaches every __syncthreads */
    const int live = (int)blockIdx.y < m_dim;
    size_t off = (size_t)(live ? blockIdx.y : 0) * n;
    kd_rmsnorm_row(x + off, w, y + off, live ? n : 0, eps, partial);
}

#ifdef __cplusplus
}
#endif
