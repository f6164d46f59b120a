/* RmsNorm: y = x * w / sqrt(mean(x^2) + eps). One work-group per row: each work-item sums
 * the squares of its part of the row, the partial sums meet in local memory by a tree
 * reduction, then every item scales its part.
 * GPU devices (KD_CL_GPU_SHAPES): KD_CL_NORM_LOCAL items, strided (adjacent items read
 * adjacent floats). CPU devices: KD_CL_NORM_CPU_LOCAL items, each a contiguous slice of
 * whole float16 vectors (PoCL vectorizes only innermost loops over work-items, so an item
 * looping over floats ran scalar); the last item also takes the n % 16 tail.
 * Single-row: one group. Batched: row = get_group_id(1), m_dim rows. Both declare the
 * same local array (KD_NORM_LOCAL floats).
 * Barrier-safe by construction: every item of a group reaches every barrier; a group
 * with no row to do (live == 0) runs the same code over zero elements. An early return
 * before the barriers crashed PoCL's default work-group method (loopvec) on AVX-512. */
#include "kd_cl_geometry.h"

#ifdef KD_CL_GPU_SHAPES
#define KD_NORM_LOCAL KD_CL_NORM_LOCAL
#else
#define KD_NORM_LOCAL KD_CL_NORM_CPU_LOCAL
#endif

/* This item's slice: whole float16 vectors [*v0, *v1) (CPU devices). */
static inline void kd_norm_slice(int n, int lid, int *v0, int *v1)
{
    int nv = n / 16;
    int per = (nv + KD_NORM_LOCAL - 1) / KD_NORM_LOCAL;
    *v0 = min(lid * per, nv);
    *v1 = min(*v0 + per, nv);
}

/* Sum of the squares of this item's part of x[0 .. n). */
static inline float kd_norm_sumsq(__global const float *x, int n, int lid)
{
    float ss = 0.0f;
#ifdef KD_CL_GPU_SHAPES
    for (int i = lid; i < n; i += KD_NORM_LOCAL) {
        float v = x[i];
        ss = mad(v, v, ss);
    }
#else
    int v0, v1;
    kd_norm_slice(n, lid, &v0, &v1);
    float16 acc = (float16)(0.0f);
    for (int v = v0; v < v1; v++) {
        float16 t = vload16(v, x);
        acc = mad(t, t, acc);
    }
    float8 a8 = acc.lo + acc.hi;
    float4 a4 = a8.lo + a8.hi;
    ss = (a4.x + a4.y) + (a4.z + a4.w);
    if (lid == KD_NORM_LOCAL - 1)
        for (int i = n / 16 * 16; i < n; i++)
            ss = mad(x[i], x[i], ss);
#endif
    return ss;
}

/* y = x * scale * w over this item's part. */
static inline void kd_norm_scale(__global const float *x, __global const float *w,
                                 __global float *y, int n, int lid, float scale)
{
#ifdef KD_CL_GPU_SHAPES
    for (int i = lid; i < n; i += KD_NORM_LOCAL)
        y[i] = x[i] * scale * w[i];
#else
    int v0, v1;
    kd_norm_slice(n, lid, &v0, &v1);
    for (int v = v0; v < v1; v++)
        vstore16(vload16(v, x) * scale * vload16(v, w), v, y);
    if (lid == KD_NORM_LOCAL - 1)
        for (int i = n / 16 * 16; i < n; i++)
            y[i] = x[i] * scale * w[i];
#endif
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
