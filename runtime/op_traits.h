/*
 * Op traits: what every part of kdispatch knows about an op, written once. A leaf: it
 * needs only kdispatch.h, so the runtime, the backends, the command, bench, the PTX
 * checker and the tests all take their op facts from here.
 *
 * KD_OP_TABLE is the table itself, one row per op in kd_op order:
 *     X(op, name, kind, weight type, single-row kernel, batched kernel)
 * The kernel names are the entry points in cl-kernels/ and cuda-kernels/ (the same in
 * both). A file that needs the rows as constant data (ptx-check's pair list) expands the
 * table with its own X; everything else calls the functions below.
 */
#ifndef KD_OP_TRAITS_H
#define KD_OP_TRAITS_H

#include "kdispatch.h"

/* How an op walks its data: what its data_size counts and which launch shape it takes. */
typedef enum kd_op_kind {
    KD_KIND_NORM = 0,    /* one reduction per row (rmsnorm) */
    KD_KIND_ROPE,        /* pairs of each row rotated by position */
    KD_KIND_ELEMENTWISE, /* two inputs, one output, element by element */
    KD_KIND_GEMV         /* a quantized weight W[N,K] times x[M,K] */
} kd_op_kind;

#define KD_OP_TABLE(X)                                                                      \
    X(KD_OP_RMSNORM, "rmsnorm", KD_KIND_NORM, KD_TYPE_F32, "kd_rmsnorm_f32",                \
      "kd_rmsnorm_f32_batched")                                                            \
    X(KD_OP_ROPE, "rope", KD_KIND_ROPE, KD_TYPE_F32, "kd_rope_f32", "kd_rope_f32_batched")  \
    X(KD_OP_SWIGLU, "swiglu", KD_KIND_ELEMENTWISE, KD_TYPE_F32, "kd_swiglu_f32",            \
      "kd_swiglu_f32_batched")                                                             \
    X(KD_OP_RESIDUAL_ADD, "residual_add", KD_KIND_ELEMENTWISE, KD_TYPE_F32,                 \
      "kd_residual_add_f32", "kd_residual_add_f32_batched")                                \
    X(KD_OP_Q4K_GEMV, "q4k_gemv", KD_KIND_GEMV, KD_TYPE_Q4_K, "kd_gemv_q4k",                \
      "kd_gemv_q4k_batched")                                                               \
    X(KD_OP_Q6K_GEMV, "q6k_gemv", KD_KIND_GEMV, KD_TYPE_Q6_K, "kd_gemv_q6k",                \
      "kd_gemv_q6k_batched")

typedef struct kd_op_traits {
    kd_op op;
    const char *name;       /* kd_op_name: "rmsnorm", ..., "q6k_gemv" */
    kd_op_kind kind;
    kd_type weight_type;    /* GEMV: the weight's type (src[0]); others KD_TYPE_F32 */
    const char *kernel[2];  /* device kernels: [0] single-row (M = 1), [1] batched */
} kd_op_traits;

/* The traits of op; NULL when op is not a kd_op. */
const kd_op_traits *kd_op_traits_of(kd_op op);
/* 1 for the quantized GEMV ops (data_size counts M*N*K; src[0] is a quantized weight). */
int kd_op_is_gemv(kd_op op);
/* Device kernel name of op, single-row (batched = 0) or batched; NULL when op is not a kd_op. */
const char *kd_op_kernel_name(kd_op op, int batched);
/* The GEMV op that takes a weight of type t; KD_OP_COUNT for a type no op takes. */
kd_op kd_op_gemv_of_type(kd_type t);

#endif /* KD_OP_TRAITS_H */
