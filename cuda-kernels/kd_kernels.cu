/*
 * The one translation unit nvcc compiles to PTX (build/ptx/kdispatch_sm_80.ptx and
 * kdispatch_sm_90.ptx): all twelve kernels, extern "C" so their .entry names are the
 * plain kernel names the backend and the PTX checker look up.
 *   kd_rmsnorm_f32        kd_rmsnorm_f32_batched
 *   kd_rope_f32           kd_rope_f32_batched
 *   kd_swiglu_f32         kd_swiglu_f32_batched
 *   kd_residual_add_f32   kd_residual_add_f32_batched
 *   kd_gemv_q4k           kd_gemv_q4k_batched
 *   kd_gemv_q6k           kd_gemv_q6k_batched
 */
#include "rmsnorm.cu"
#include "rope.cu"
#include "swiglu.cu"
#include "residual_add.cu"
#include "gemv_q4k.cu"
#include "gemv_q6k.cu"
