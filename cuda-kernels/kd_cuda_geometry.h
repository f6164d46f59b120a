/* Block shapes of the CUDA kernels: included by the kernels (CUDA C) and by
 * runtime/geometry.c (host C), so the two cannot disagree. */
#ifndef KD_CUDA_GEOMETRY_H
#define KD_CUDA_GEOMETRY_H
#define KD_CU_EW_BLOCK 256         /* elementwise ops and rope: threads per block */
#define KD_CU_NORM_BLOCK 256       /* rmsnorm: one block per row */
#define KD_CU_GEMV_WARPS 4         /* gemv: warps per block, one output row per warp */
#define KD_CU_GEMV_MAX_M 8         /* batched gemv: rows of x per pass (accumulators) */
#define KD_CU_WARP 32
#endif
