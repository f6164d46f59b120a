/* Block shapes of the CUDA kernels: included by the kernels (CUDA C) and by
 * runtime/geometry.c (host C), so the two cannot disagree. */
#ifndef KD_CUDA_GEOMETRY_H
#define KD_CUDA_GEOMETRY_H
#define KD_CU_EW_BLOCK 256          /* elementwise ops and rope: threads per block */
#define KD_CU_EW_VEC 4              /* swiglu, residual_add: elements per thread (one float4) */
#define KD_CU_NORM_BLOCK 256        /* rmsnorm: one block per row */
#define KD_CU_GEMV_WARPS 4          /* gemv: warps per block */
#define KD_CU_GEMV_ROWS_PER_WARP 16 /* gemv: output rows per warp (one tensor-core tile) */
#define KD_CU_GEMV_GROUP_ROWS 4     /* gemv on CUDA cores: rows per pass (share each x load) */
#define KD_CU_GEMV_ROWS_PER_BLOCK (KD_CU_GEMV_WARPS * KD_CU_GEMV_ROWS_PER_WARP)
#define KD_CU_GEMV_MAX_M 8          /* batched gemv: rows of x per pass (accumulators) */
#define KD_CU_Q6K_STAGE_BYTES 864   /* q6k gemv: shared staging of one row's 4 blocks (840 B)
                                      from the 16-byte boundary below them, rounded to 16 */
#define KD_CU_Q6K_TILE_ROW_BYTES 240 /* q6k batched gemv: shared staging of one row's block
                                      (224 B from the 16-byte boundary below it), padded so
                                      that the 8 rows one shared load touches hit distinct banks */
#define KD_CU_Q6K_WARP_BYTES (KD_CU_GEMV_ROWS_PER_WARP * KD_CU_Q6K_TILE_ROW_BYTES)
                                   /* 3840: one warp's stage, >= KD_CU_GEMV_GROUP_ROWS *
                                      KD_CU_Q6K_STAGE_BYTES (3456) for the single-row kernel */
#define KD_CU_Q6K_SHARED_BYTES (KD_CU_GEMV_WARPS * KD_CU_Q6K_WARP_BYTES)
                                   /* 15360: a stage per warp, the same in both kernels */
#define KD_CU_WARP 32
#define KD_CU_OVERREAD_BYTES 16     /* kernels may read this far past a weight buffer's end:
                                      the backend pads every allocation by it */
#endif
