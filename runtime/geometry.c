/* Launch geometry for every kernel: see geometry.h. The block shapes come from the kernel
 * folders' headers, which the kernels include too. */
#include "geometry.h"
#include "op_traits.h"

#include <stdio.h>

#include "../cl-kernels/kd_cl_geometry.h"
#include "../cuda-kernels/kd_cuda_geometry.h"

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

static kd_status refuse(char *why, size_t cap, kd_status s, const char *msg)
{
    if (why && cap)
        snprintf(why, cap, "%s", msg);
    return s;
}

/* Rope work-items on OpenCL CPU devices (cl-kernels/rope.cl, the same rule): with k =
 * head_dim, head_dim / 2 a multiple of KD_CL_ROPE_VEC and at most KD_CL_ROPE_MAX_VECS
 * float8s, one item per KD_CL_ROPE_HEADS whole heads; otherwise (or k = 0: head_dim not
 * given) one per 8 pairs. */
static uint64_t rope_cpu_units(int64_t n, int64_t head_dim)
{
    if (head_dim > 0 && (head_dim / 2) % KD_CL_ROPE_VEC == 0 &&
        head_dim / 2 / KD_CL_ROPE_VEC <= KD_CL_ROPE_MAX_VECS && n % head_dim == 0)
        return ceil_div((uint64_t)(n / head_dim), KD_CL_ROPE_HEADS);
    return ceil_div((uint64_t)n / 2, KD_CL_ROPE_VEC);
}

/* Block shape and static shared memory of one kernel in one dialect. */
static void kernel_shape(kd_dialect d, kd_op op, kd_launch *l)
{
    int cuda = d == KD_DIALECT_CUDA;
    l->block[0] = l->block[1] = l->block[2] = 1;
    l->shared_bytes = 0;
    l->rows_per_block = 0;
    l->m_per_pass = 0;
    switch (op) {
    case KD_OP_RMSNORM:
        if (d == KD_DIALECT_OPENCL) {
            /* CPU devices: one work-item per KD_CL_NORM_CPU_ROWS rows, no local memory */
            l->m_per_pass = KD_CL_NORM_CPU_ROWS;
            break;
        }
        l->block[0] = cuda ? KD_CU_NORM_BLOCK : KD_CL_NORM_LOCAL;
        /* CUDA: one partial sum per warp; OpenCL 1.2 (no sub-groups): one per item. */
        l->shared_bytes = cuda ? (KD_CU_NORM_BLOCK / KD_CU_WARP) * sizeof(float)
                               : KD_CL_NORM_LOCAL * sizeof(float);
        break;
    case KD_OP_Q4K_GEMV:
    case KD_OP_Q6K_GEMV:
        if (cuda) {
            l->block[0] = KD_CU_WARP;
            l->block[1] = KD_CU_GEMV_WARPS;
            l->rows_per_block = KD_CU_GEMV_ROWS_PER_BLOCK; /* each warp owns several rows */
            l->m_per_pass = KD_CU_GEMV_MAX_M;
            /* Q6_K blocks (210 bytes) are staged through shared memory */
            l->shared_bytes = op == KD_OP_Q6K_GEMV ? KD_CU_Q6K_SHARED_BYTES : 0;
        } else {
            int gpu = d == KD_DIALECT_OPENCL_GPU;
            uint32_t local = gpu ? KD_CL_GEMV_GPU_LOCAL : KD_CL_GEMV_LOCAL;
            l->block[0] = local;
            l->rows_per_block = gpu ? KD_CL_GEMV_GPU_ROWS : KD_CL_GEMV_ROWS;
            l->m_per_pass = KD_CL_GEMV_MAX_M;
            /* partial sums meet in local memory only when several items share a row */
            l->shared_bytes = local > l->rows_per_block
                                  ? (uint64_t)local * KD_CL_GEMV_MAX_M * sizeof(float) : 0;
        }
        break;
    default: /* rope, swiglu, residual_add */
        l->block[0] = cuda ? KD_CU_EW_BLOCK : KD_CL_EW_LOCAL;
        if (op == KD_OP_ROPE && d == KD_DIALECT_OPENCL)
            l->block[0] = KD_CL_ROPE_CPU_LOCAL; /* an item does whole heads */
        break;
    }
}

kd_status kd_launch_geometry(kd_dialect dialect, kd_op op, int64_t m, int64_t n, int64_t k,
                             const kd_device_limits *lim, kd_launch *out, char *why,
                             size_t why_cap)
{
    if (!lim || !out)
        return refuse(why, why_cap, KD_ERR_NULL, "geometry: NULL limits or output");
    if ((unsigned)op >= KD_OP_COUNT || (dialect != KD_DIALECT_OPENCL && dialect != KD_DIALECT_CUDA &&
                                     dialect != KD_DIALECT_OPENCL_GPU &&
                                     dialect != KD_DIALECT_OPENCL_Q8))
        return refuse(why, why_cap, KD_ERR_ARG, "geometry: unknown op or dialect");
    /* the q8 kernels: the CPU device's single-row GEMV shape, grid y over M (gemv_q8.cl) */
    int q8 = dialect == KD_DIALECT_OPENCL_Q8;
    if (q8 && !kd_op_is_gemv(op))
        return refuse(why, why_cap, KD_ERR_ARG, "geometry: the q8 dialect has GEMV kernels only");
    if (q8)
        dialect = KD_DIALECT_OPENCL;
    if (m <= 0 || n <= 0)
        return refuse(why, why_cap, KD_ERR_ZERO_SIZE, "geometry: m and n must be > 0");
    int gemv = kd_op_is_gemv(op);
    if (gemv && (k <= 0 || k % 256 != 0))
        return refuse(why, why_cap, KD_ERR_ALIGN, "geometry: GEMV K must be a positive multiple of 256");
    if (op == KD_OP_ROPE && n % 2 != 0)
        return refuse(why, why_cap, KD_ERR_SHAPE, "geometry: rope row length must be even");

    kernel_shape(dialect, op, out);
    if (gemv && dialect == KD_DIALECT_OPENCL && m > 1 && !q8)
        out->block[0] = KD_CL_GEMV_BATCH_LOCAL; /* batched CPU kernels: several rows per item */
    uint64_t units = (uint64_t)n; /* work units along x */
    int ew = op == KD_OP_SWIGLU || op == KD_OP_RESIDUAL_ADD;
    if (op == KD_OP_ROPE)
        units = (uint64_t)n / 2;
    if (op == KD_OP_ROPE && dialect == KD_DIALECT_OPENCL)
        units = rope_cpu_units(n, k);
    else if (dialect == KD_DIALECT_CUDA && ew)
        units = ceil_div((uint64_t)n, KD_CU_EW_VEC); /* one float4 per thread */
    else if (dialect == KD_DIALECT_OPENCL && ew)
        units = ceil_div((uint64_t)n, KD_CL_EW_VEC); /* CPU devices: one float16 per item */
    if (op == KD_OP_RMSNORM)
        out->grid[0] = 1; /* one block per row; the block strides over the row */
    else if (gemv)
        out->grid[0] = ceil_div(units, out->rows_per_block);
    else
        out->grid[0] = ceil_div(units, out->block[0]);
    /* batch rows per block along y: GEMV passes, OpenCL CPU rmsnorm rows per item */
    out->grid[1] = out->m_per_pass ? ceil_div((uint64_t)m, out->m_per_pass) : (uint64_t)m;
    out->grid[2] = 1;

    uint64_t threads = (uint64_t)out->block[0] * out->block[1] * out->block[2];
    if (threads > lim->max_threads_per_block)
        return refuse(why, why_cap, KD_ERR_TOO_LARGE,
                      "geometry: block has more threads than the device allows");
    for (int i = 0; i < 3; i++) {
        if (out->block[i] > lim->max_block[i])
            return refuse(why, why_cap, KD_ERR_TOO_LARGE,
                          "geometry: block dimension exceeds the device limit");
        if (out->grid[i] > lim->max_grid[i])
            return refuse(why, why_cap, KD_ERR_TOO_LARGE,
                          "geometry: grid dimension exceeds the device limit (problem too large)");
    }
    if (out->shared_bytes > lim->max_shared_bytes)
        return refuse(why, why_cap, KD_ERR_TOO_LARGE,
                      "geometry: shared memory exceeds the device limit");
    return KD_OK;
}

uint64_t kd_launch_threads(const kd_launch *l)
{
    return l->grid[0] * l->grid[1] * l->grid[2] * l->block[0] * l->block[1] * l->block[2];
}
