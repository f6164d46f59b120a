/* Work-group shapes of the OpenCL kernels: included by the kernels (as OpenCL C) and by
 * runtime/geometry.c (as host C), so the two cannot disagree. */
#ifndef KD_CL_GEOMETRY_H
#define KD_CL_GEOMETRY_H
#define KD_CL_EW_LOCAL 256         /* elementwise ops and rope: work-items per group */
#define KD_CL_NORM_LOCAL 64        /* rmsnorm: one group per row */
/* CPU devices (PoCL): the elementwise ops, rope and rmsnorm work in explicit vectors per
 * work-item (float16, vload16/vstore16). PoCL's default work-group method vectorizes only
 * innermost loops over work-items, so per-element items with a bounds check, or items
 * that loop over a row, ran scalar (0.05-0.27 of the streaming bandwidth). */
#define KD_CL_EW_VEC 16            /* swiglu, residual_add: floats per work-item */
#define KD_CL_ROPE_VEC 8           /* rope: pairs (frequencies) per float8 */
#define KD_CL_ROPE_HEADS 4         /* rope: whole heads per work-item (see rope.cl) */
#define KD_CL_ROPE_MAX_VECS 32     /* rope: head_dim / 16 at most for whole heads (512) */
#define KD_CL_ROPE_CPU_LOCAL 8     /* rope: work-items per group */
#define KD_CL_NORM_CPU_ROWS 4      /* rmsnorm: rows per work-item (one item per group) */
/* GEMV on CPU devices (PoCL): one work-item per output row (M = 1; batched: below), no
 * barrier, no local memory.
 * PoCL runs a group's items one after the other on one core; an item that owns a whole
 * row streams it with vector code and needs no reduction. */
#define KD_CL_GEMV_LOCAL 16        /* gemv: work-items per group */
#define KD_CL_GEMV_ROWS 16         /* gemv: output rows per group */
/* Batched GEMV (M > 1) on CPU devices: KD_CL_GEMV_ROWS / KD_CL_GEMV_BATCH_LOCAL (an even
 * count) rows per work-item, so an item reuses each block's x (8 rows of x: 8 KB) from L1
 * for all its rows, two rows at a time, instead of streaming x from L2 once per row. */
#define KD_CL_GEMV_BATCH_LOCAL 2   /* batched gemv, CPU: work-items per group */
/* GEMV on GPU devices (dialect KD_DIALECT_OPENCL_GPU): 16 work-items per row take
 * interleaved blocks (coalesced loads) and meet in local memory. */
#define KD_CL_GEMV_GPU_LOCAL 64
#define KD_CL_GEMV_GPU_ROWS 4
#define KD_CL_GEMV_MAX_M 8         /* batched gemv: rows of x per pass (accumulators) */
#endif
