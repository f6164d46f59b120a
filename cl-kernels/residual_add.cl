/* ResidualAdd: y = x + r, one work-item per element.
 * Single-row: one row of n. Batched: row = get_group_id(1), m_dim rows. */
#include "kd_cl_geometry.h"

__kernel __attribute__((reqd_work_group_size(KD_CL_EW_LOCAL, 1, 1)))
void kd_residual_add_f32(__global const float *x, __global const float *r, __global float *y,
                         int n)
{
    int i = (int)get_global_id(0);
    if (i < n)
        y[i] = x[i] + r[i];
}

__kernel __attribute__((reqd_work_group_size(KD_CL_EW_LOCAL, 1, 1)))
void kd_residual_add_f32_batched(__global const float *x, __global const float *r,
                                 __global float *y, int n, int m_dim)
{
    int row = (int)get_group_id(1);
    int i = (int)get_global_id(0);
    if (row < m_dim && i < n) { /* guarded work, no early return */
        size_t o = (size_t)row * (size_t)n + (size_t)i;
        y[o] = x[o] + r[o];
    }
}
