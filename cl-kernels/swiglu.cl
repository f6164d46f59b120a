/* Swiglu: y = g / (1 + exp(-g)) * up.
 * CPU devices: one work-item per KD_CL_EW_VEC (16) floats as one float16 (PoCL's vector
 * exp); the item past the last whole vector takes the n % 16 tail element by element.
 * GPU devices (KD_CL_GPU_SHAPES): one work-item per element.
 * Single-row: one row of n. Batched: row = get_group_id(1), m_dim rows. */
#include "kd_cl_geometry.h"

static inline float kd_swiglu_one(float g, float u)
{
    return g / (1.0f + exp(-g)) * u;
}

/* Work unit `unit` of a row of n (see above); no barrier. */
static inline void kd_swiglu_unit(__global const float *gate, __global const float *up,
                                  __global float *y, int n, int unit)
{
#ifdef KD_CL_GPU_SHAPES
    if (unit < n)
        y[unit] = kd_swiglu_one(gate[unit], up[unit]);
#else
    int nv = n / KD_CL_EW_VEC;
    if (unit < nv) {
        float16 g = vload16(unit, gate);
        vstore16(g / (1.0f + exp(-g)) * vload16(unit, up), unit, y);
    } else if (unit == nv) {
        for (int i = nv * KD_CL_EW_VEC; i < n; i++)
            y[i] = kd_swiglu_one(gate[i], up[i]);
    }
#endif
}

__kernel __attribute__((reqd_work_group_size(KD_CL_EW_LOCAL, 1, 1)))
void kd_swiglu_f32(__global const float *gate, __global const float *up, __global float *y,
                   int n)
{
    kd_swiglu_unit(gate, up, y, n, (int)get_global_id(0));
}

__kernel __attribute__((reqd_work_group_size(KD_CL_EW_LOCAL, 1, 1)))
void kd_swiglu_f32_batched(__global const float *gate, __global const float *up,
                           __global float *y, int n, int m_dim)
{
    int row = (int)get_group_id(1);
    if (row < m_dim) { /* guarded work, no early return */
        size_t o = (size_t)row * (size_t)n;
        kd_swiglu_unit(gate + o, up + o, y + o, n, (int)get_global_id(0));
    }
}
