/* RmsNorm: y = x * w / sqrt(mean(x^2) + eps).
 * GPU devices (KD_CL_GPU_SHAPES): one work-group of KD_CL_NORM_LOCAL items per row, strided
 * (adjacent items read adjacent floats); the partial sums of squares meet in local memory
 * by a tree reduction, then every item scales its part.
 * CPU devices: one work-item per KD_CL_NORM_CPU_ROWS rows, no barrier, no local memory.
 * The item sums the squares of its rows in one pass (a read stream per row), then scales
 * them in a second pass from cache that reads w once for all of them (float16 vectors:
 * PoCL vectorizes only innermost loops over work-items). Measured on PoCL (docs/opencl-
 * checks.md): 16 items per row with a local reduction reached 0.55 of the streaming
 * bandwidth, one row per item 0.62 (reading w again per row cost a fifth of the time),
 * four rows per item 0.77.
 * Single-row: row 0. Batched: rows from get_global_id(1) * rows per item, m_dim rows.
 * Barrier-safe by construction: every item of a group reaches every barrier; a group
 * with no row to do (live == 0) runs the same code over zero elements. An early return
 * before the barriers crashed PoCL's default work-group method (loopvec) on AVX-512. */
#include "kd_cl_geometry.h"

#ifdef KD_CL_GPU_SHAPES
#define KD_NORM_LOCAL KD_CL_NORM_LOCAL

/* Sum of the squares of this item's part of x[0 .. n). */
static inline float kd_norm_sumsq(__global const float *x, int n, int lid)
{
    float ss = 0.0f;
    for (int i = lid; i < n; i += KD_NORM_LOCAL) {
        float v = x[i];
        ss = mad(v, v, ss);
    }
    return ss;
}

/* y = x * scale * w over this item's part. */
static inline void kd_norm_scale(__global const float *x, __global const float *w,
                                 __global float *y, int n, int lid, float scale)
{
    for (int i = lid; i < n; i += KD_NORM_LOCAL)
        y[i] = x[i] * scale * w[i];
}

static inline void kd_rmsnorm_row(__global const float *x, __global const float *w,
                                  __global float *y, int n, float eps, __local float *part,
                                  int live)
{
    int lid = (int)get_local_id(0);
    n = live ? n : 0; /* guard the work, not the barriers */
    part[lid] = kd_norm_sumsq(x, n, lid);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int span = KD_NORM_LOCAL / 2; span > 0; span >>= 1) {
        if (lid < span)
            part[lid] += part[lid + span];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float scale = 1.0f / sqrt(part[0] / (float)max(n, 1) + eps);
    kd_norm_scale(x, w, y, n, lid, scale);
}

__kernel __attribute__((reqd_work_group_size(KD_NORM_LOCAL, 1, 1)))
void kd_rmsnorm_f32(__global const float *x, __global const float *w, __global float *y,
                    int n, float eps)
{
    __local float part[KD_NORM_LOCAL];
    kd_rmsnorm_row(x, w, y, n, eps, part, 1);
}

__kernel __attribute__((reqd_work_group_size(KD_NORM_LOCAL, 1, 1)))
void kd_rmsnorm_f32_batched(__global const float *x, __global const float *w,
                            __global float *y, int n, float eps, int m_dim)
{
    __local float part[KD_NORM_LOCAL];
    int row = (int)get_group_id(1);
    int live = row < m_dim;
    size_t o = (size_t)(live ? row : 0) * (size_t)n;
    kd_rmsnorm_row(x + o, w, y + o, n, eps, part, live);
}

#else /* CPU devices */
#define KD_NORM_LOCAL 1

static inline float kd_norm_hsum16(float16 a)
{
    float8 a8 = a.lo + a.hi;
    float4 a4 = a8.lo + a8.hi;
    return (a4.x + a4.y) + (a4.z + a4.w);
}

/* Rows r0 .. r0 + rows - 1 of x (those below m_dim); rows <= KD_CL_NORM_CPU_ROWS, a
 * constant at each call, so the loops over rows unroll. A row past m_dim reads the last
 * row again (from cache) and is not stored. */
static inline void kd_rmsnorm_rows(__global const float *x, __global const float *w,
                                   __global float *y, int n, float eps, int m_dim, int r0,
                                   const int rows)
{
    int nr = clamp(m_dim - r0, 0, rows);
    int nv = nr > 0 ? n / 16 : 0; /* whole float16 vectors, then the tail to nt */
    int nt = nr > 0 ? n : 0;
    size_t off[KD_CL_NORM_CPU_ROWS];
    float16 acc[KD_CL_NORM_CPU_ROWS];
    float scale[KD_CL_NORM_CPU_ROWS];
    for (int k = 0; k < rows; k++) {
        off[k] = (size_t)max(min(r0 + k, m_dim - 1), 0) * (size_t)n;
        acc[k] = (float16)(0.0f);
    }
    for (int v = 0; v < nv; v++)
        for (int k = 0; k < rows; k++) {
            float16 t = vload16(v, x + off[k]);
            acc[k] = mad(t, t, acc[k]);
        }
    for (int k = 0; k < rows; k++) {
        float ss = kd_norm_hsum16(acc[k]);
        for (int i = nv * 16; i < nt; i++)
            ss = mad(x[off[k] + i], x[off[k] + i], ss);
        scale[k] = 1.0f / sqrt(ss / (float)max(n, 1) + eps);
    }
    for (int v = 0; v < nv; v++) {
        float16 wv = vload16(v, w);
        for (int k = 0; k < rows; k++)
            if (k < nr)
                vstore16(vload16(v, x + off[k]) * scale[k] * wv, v, y + off[k]);
    }
    for (int k = 0; k < nr; k++)
        for (int i = nv * 16; i < nt; i++)
            y[off[k] + i] = x[off[k] + i] * scale[k] * w[i];
}

__kernel __attribute__((reqd_work_group_size(KD_NORM_LOCAL, 1, 1)))
void kd_rmsnorm_f32(__global const float *x, __global const float *w, __global float *y,
                    int n, float eps)
{
    kd_rmsnorm_rows(x, w, y, n, eps, 1, 0, 1);
}

__kernel __attribute__((reqd_work_group_size(KD_NORM_LOCAL, 1, 1)))
void kd_rmsnorm_f32_batched(__global const float *x, __global const float *w,
                            __global float *y, int n, float eps, int m_dim)
{
    kd_rmsnorm_rows(x, w, y, n, eps, m_dim, (int)get_global_id(1) * KD_CL_NORM_CPU_ROWS,
                    KD_CL_NORM_CPU_ROWS);
}
#endif
