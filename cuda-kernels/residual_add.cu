/*
 * ResidualAdd: y = x + r, elementwise over M rows of n.
 * One thread per KD_CU_EW_VEC (4) consecutive elements: one 16-byte load of each input
 * and one 16-byte store when the row allows it (n % 4 == 0, 16-byte aligned pointers),
 * four scalar accesses otherwise. y may alias x or r (in-place): each thread reads its
 * elements before it writes them, through plain (coherent) loads.
 * Batched: the row is blockIdx.y, m_dim rows in all.
 */
#include "kd_cuda_util.cuh"

KD_DEV void kd_residual_add_row(const float *x, const float *r, float *y, int n)
{
    long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * KD_CU_EW_VEC;
    if (i >= n)
        return;
    if ((n & 3) == 0 && kd_aligned16(x, r, y)) {
        float4 a = kd_ld_f4(x + i);
        float4 b = kd_ld_f4(r + i);
        kd_st_f4(y + i, make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w));
        return;
    }
#pragma unroll
    for (int j = 0; j < KD_CU_EW_VEC; j++)
        if (i + j < n)
            y[i + j] = x[i + j] + r[i + j];
}

#ifdef __cplusplus
extern "C" {
#endif

__global__ void __launch_bounds__(KD_CU_EW_BLOCK)
kd_residual_add_f32(const float *x, const float *r, float *y, int n)
{
    kd_residual_add_row(x, r, y, n);
}

__global__ void __launch_bounds__(KD_CU_EW_BLOCK)
kd_residual_add_f32_batched(const float *x, const float *r, float *y, int n, int m_dim)
{
    int row = blockIdx.y;
    if (row >= m_dim)
        return;
    size_t off = (size_t)row * n;
    kd_residual_add_row(x + off, r + off, y + off, n);
}

#ifdef __cplusplus
}
#endif
