/*
 * Swiglu: y = gate / (1 + exp(-gate)) * up, elementwise over M rows of n.
 * Same shape as residual_add.cu: one thread per KD_CU_EW_VEC (4) consecutive elements,
 * 16-byte accesses when the row allows. expf is the accurate one (not __expf): for a
 * large negative gate exp overflows to inf and the quotient is -0, as on the host.
 * Batched: the row is blockIdx.y, m_dim rows in all.
 */
#include "kd_cuda_util.cuh"

KD_DEV float kd_silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

KD_DEV void kd_swiglu_row(const float *gate, const float *up, float *y, int n)
{
    long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * KD_CU_EW_VEC;
    if (i >= n)
        return;
    if ((n & 3) == 0 && kd_aligned16(gate, up, y)) {
        float4 g = kd_ld_f4(gate + i);
        float4 u = kd_ld_f4(up + i);
        kd_st_f4(y + i, make_float4(kd_silu_mul(g.x, u.x), kd_silu_mul(g.y, u.y),
                                    kd_silu_mul(g.z, u.z), kd_silu_mul(g.w, u.w)));
        return;
    }
#pragma unroll
    for (int j = 0; j < KD_CU_EW_VEC; j++)
        if (i + j < n)
            y[i + j] = kd_silu_mul(gate[i + j], up[i + j]);
}

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
