/*
 * ResidualAdd: y = x + r, elementwise over M rows of n. One thread per KD_CU_EW_VEC (4)
 * consecutive elements, 16-byte accesses when the row allows; y may alias x or r
 * (in-place): see KD_CU_ELEMENTWISE_ROW in kd_cuda_util.cuh.
 * Batched: the row is blockIdx.y, m_dim rows in all.
 */
#include "kd_cuda_util.cuh"

KD_DEV float kd_add(float x, float r) { return x + r; }

KD_CU_ELEMENTWISE_ROW(kd_residual_add_row, kd_add)

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
