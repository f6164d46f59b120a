/* ResidualAdd: y = x + r.
 * CPU devices: one work-item per KD_CL_EW_VEC (16) floats as one float16; the item past
 * the last whole vector takes the n % 16 tail. GPU devices (KD_CL_GPU_SHAPES): one
 * work-item per element.
 * Single-row: one row of n. Batched: row = get_group_id(1), m_dim rows. */
#include "kd_cl_geometry.h"

/* Work unit `unit` of a row of n (see above); no barrier. */
static inline void kd_residual_add_unit(__global const float *x, __global const float *r,
                                        __global float *y, int n, int unit)
{
#ifdef KD_CL_GPU_SHAPES
    if (unit < n)
        y[unit] = x[unit] + r[unit];
#else
    int nv = n / KD_CL_EW_VEC;
    if (unit < nv) {
        vstore16(vload16(unit, x) + vload16(unit, r), unit, y);
    } else if (unit == nv) {
        for (int i = nv * KD_CL_EW_VEC; i < n; i++)
            y[i] = x[i] + r[i];
    }
#endif
}

__kernel __attribute__((reqd_work_group_size(KD_CL_EW_LOCAL, 1, 1)))
void kd_residual_add_f32(__global const float *x, __global const float *r, __global float *y,
                         int n)
{
    kd_residual_add_unit(x, r, y, n, (int)get_global_id(0));
}

__kernel __attribute__((reqd_work_group_size(KD_CL_EW_LOCAL, 1, 1)))
void kd_residual_add_f32_batched(__global const float *x, __global const float *r,
                                 __global float *y, int n, int m_dim)
{
    int row = (int)get_group_id(1);
    if (row < m_dim) { /* guarded work, no early return */
        size_t o = (size_t)row * (size_t)n;
        kd_residual_add_unit(x + o, r + o, y + o, n, (int)get_global_id(0));
    }
}
