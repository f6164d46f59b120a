/*
 * Launch geometry (contract: kernel_dimensions), one function for the OpenCL and CUDA
 * backends: grid = (ceil(n/block_x), ceil(m/block_y), batch) in units of work that each
 * op defines below. Guarantees grid*block covers the problem and the shared memory fits
 * the device; refuses what cannot fit with a message.
 */
#ifndef KD_GEOMETRY_H
#define KD_GEOMETRY_H

#include <stddef.h>
#include <stdint.h>
#include "kdispatch.h"

typedef enum kd_dialect {
    KD_DIALECT_OPENCL = 0,     /* OpenCL on a CPU device (PoCL): GEMV one work-item per row */
    KD_DIALECT_CUDA = 1,
    KD_DIALECT_OPENCL_GPU = 2, /* OpenCL on a GPU or accelerator: KD_CL_GEMV_GPU_* shapes */
    KD_DIALECT_OPENCL_Q8 = 3   /* OpenCL on a CPU device, the q8 GEMV kernels (GEMV only):
                                * one work-item per output row at every M */
} kd_dialect;
#define KD_DIALECT_OPENCL_GPU KD_DIALECT_OPENCL_GPU /* backends test for it with #ifdef */

typedef struct kd_device_limits {
    uint32_t max_threads_per_block; /* product of block dims */
    uint32_t max_block[3];
    uint64_t max_grid[3];
    uint64_t max_shared_bytes;      /* per block / work-group */
} kd_device_limits;

typedef struct kd_launch {
    uint32_t block[3];     /* threads per block (CUDA) / local size (OpenCL) */
    uint64_t grid[3];      /* blocks (CUDA) / groups (OpenCL: global = grid*block) */
    uint64_t shared_bytes; /* static shared memory the kernel declares */
    uint32_t rows_per_block; /* GEMV: output rows per block; else 0 */
    uint32_t m_per_pass;     /* batch rows per block along y (grid y covers M): batched
                              * GEMV x rows; OpenCL CPU rmsnorm rows per item; else 0 */
} kd_launch;

/* Shape: m = batch rows, n = row length (GEMV: output rows N), k = GEMV K (rope: head_dim,
 * which the OpenCL CPU shape uses, or 0; else 0).
 * Rope: n is the row length H*D; one thread per rotated pair. */
kd_status kd_launch_geometry(kd_dialect dialect, kd_op op, int64_t m, int64_t n, int64_t k,
                             const kd_device_limits *lim, kd_launch *out, char *why,
                             size_t why_cap);

/* Threads (work-items) the launch provides for the problem, and the problem size it must
 * cover, in the same units: the kernel_dimensions invariant is covered >= needed. */
uint64_t kd_launch_threads(const kd_launch *l);

#endif
