/* Work-group shapes of the OpenCL kernels: included by the kernels (as OpenCL C) and by
 * runtime/geometry.c (as host C), so the two cannot disagree. */
#ifndef KD_CL_GEOMETRY_H
#define KD_CL_GEOMETRY_H
#define KD_CL_EW_LOCAL 64          /* elementwise ops and rope: work-items per group */
#define KD_CL_NORM_LOCAL 64        /* rmsnorm: one group per row */
#define KD_CL_GEMV_LOCAL 16        /* gemv: work-items per group */
#define KD_CL_GEMV_ROWS 16         /* gemv: output rows per group */
#define KD_CL_GEMV_MAX_M 8         /* batched gemv: rows of x per pass (accumulators) */
/* gemv: work-items that share one output row (their partial sums meet in local memory) */
#define KD_CL_GEMV_IPR (KD_CL_GEMV_LOCAL / KD_CL_GEMV_ROWS)
#endif
