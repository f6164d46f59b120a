/* RmsNorm: y = x * w / sqrt(mean(x^2) + eps). One work-group per row: each work-item sums
 * the squares of a strided slice (adjacent items read adjacent floats), the partial sums
 * meet in local memory by a tree reduction, then every item scales its slice.
 * Single-row: one group. Batched: row = get_group_id(1), m_dim rows. Both declare the
 * same local array (KD_CL_NORM_LOCAL floats).
 * Barrier-safe by construction: every item of a group reaches every barrier; a group
 * with no row to do (live == 0) runs the same code over zero elements. An early return
 * before the barriers crashed PoCL's default work-group method (loopvec) on AVX-512. */
#include "kd_cl_geometry.h"

static inline void kd_rmsnorm_row(__global const float *x, __global const float *w,
                                  __global float *y, int n, float eps, __local float *part,
                                  int live)
{
    int lid = (int)get_local_id(0);
    n = live ? n : 0; /* guard the work, not the barriers */
    float ss = 0.0f;
    for (int i = lid; i < n; i += KD_CL_NORM_LOCAL) {
        float v = x[i];
        ss = mad(v, v, ss);
    }
    part[lid] = ss;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int span = KD_CL_NORM_LOCAL / 2; span > 0; span >>= 1) {
        if (lid < span)
            part[lid] += part[lid + span];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float scale = 1.0f / sqrt(part[0] / (float)max(n, 1) + eps);
    for (int i = lid; i < n; i += KD_CL_NORM_LOCAL)
        y[i] = x[i] * scale * w[i];
}

__kernel __attribute__((reqd_work_group_size(KD_CL_NORM_LOCAL, 1, 1)))
void kd_rmsnorm_f32(__global const float *x, __global const float *w, __global float *y,
                    int n, float eps)
{
    __local float part[KD_CL_NORM_LOCAL];
    kd_rmsnorm_row(x, w, y, n, eps, part, 1);
}

__kernel __attribute__((reqd_work_group_size(KD_CL_NORM_LOCAL, 1, 1)))
void kd_rmsnorm_f32_batched(__global const float *x, __global const float *w,
                            __global float *y, int n, float eps, int m_dim)
{
    __local float part[KD_CL_NORM_LOCAL];
    int row = (int)get_group_id(1);
    int live = row < m_dim;
    size_t o = (size_t)(live ? row : 0) * (size_t)n;
    kd_rmsnorm_row(x + o, w, y + o, n, eps, part, live);
}
