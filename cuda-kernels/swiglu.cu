/*
 * Swiglu: y = gate / (1 + exp(-gate)) * up, elementwise over M rows of n.
 * Same shape as residual_add.cu (KD_CU_ELEMENTWISE_ROW in kd_cuda_util.cuh): one thread per
 * KD_CU_EW_VEC (4) consecutive elements, 16-byte accesses when the row allows. expf is the
 * accurate one (not __expf): for a large negative gate exp overflows to inf and the
 * quotient is -0, as on the host.
 * Batched: the row is blockIdx.y, m_dim rows in all.
 */
#include "kd_cuda_util.cuh"

KD_DEV float kd_silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

KD_CU_ELEMENTWISE_ROW(kd_swiglu_row, kd_silu_mul)

#ifdef __cplusplus
extern "C" {
#endif

__global__ void __launch_bounds__(KD_CU_EW_BLOCK)
kd_swiglu_f32(const float *gate, const float *up, float *y, int n)
{
    kd_swiglu_row(gate, up, y, n);
}

__global__ void __launch_bounds__(KD_CU_EW_BLOCK)
kd_swiglu_f32_batched(const float *gate, const float *up, float *y, int n, int m_dim)
{
    int row = blockIdx.y;
    if (row >= m_dim)
        return;
    size_t off = (size_t)row * n;
    kd_swiglu_row(gate + off, up + off, y + off, n);
}

#ifdef __cplusplus
}
#endif
