/*
 * The double-precision scalar oracle: every op of SPEC section 2 on host arrays, written
 * from the definitions, accumulating in double. Tests and `kdispatch compare` judge every
 * backend against it. Quantized weights are decoded with kd_blocks.h's element helpers.
 */
#ifndef KD_ORACLE_H
#define KD_ORACLE_H

#include <stddef.h>
#include <stdint.h>
#include "kdispatch.h"

/* y[m*n] = x * w / sqrt(mean(x^2) + eps), per row. */
void kd_oracle_rmsnorm(const float *x, const float *w, int64_t m, int64_t n, double eps,
                       double *y);
void kd_oracle_rope(const float *x, const uint32_t *pos, int64_t m, int n_heads, int head_dim,
                    double base, kd_rope_mode mode, double *y);
void kd_oracle_swiglu(const float *gate, const float *up, int64_t count, double *y);
void kd_oracle_residual_add(const float *x, const float *r, int64_t count, double *y);
/* y[m*n_rows] = W x for a Q4_K / Q6_K weight of n_rows x k (blocks row-major). */
void kd_oracle_gemv(kd_type type, const void *blocks, int64_t n_rows, int64_t k,
                    const float *x, int64_t m, double *y);

/* Numerical comparison of SPEC section 7. */
typedef struct kd_cmp {
    double max_abs;    /* max |a - ref| */
    double nmse;       /* sum (a-ref)^2 / sum ref^2 */
    int64_t bad;       /* elements outside |a-ref| <= tol * max(1,|ref|), or non-finite */
    int64_t first_bad; /* index of the first bad element, -1 if none */
    int pass;          /* bad == 0 */
} kd_cmp;

#define KD_TOLERANCE 1e-3

void kd_compare_to_ref(const float *a, const double *ref, int64_t count, double tol,
                       kd_cmp *out);
void kd_compare_f32(const float *a, const float *b, int64_t count, double tol, kd_cmp *out);

/* Runs the oracle for an op described as kd_op_desc over host copies of its inputs:
 * src0/src1 are f32 arrays or raw blocks (GEMV src0). y has m * out_cols doubles. */
void kd_oracle_run(const kd_op_desc *d, const void *src0, const void *src1, int64_t m,
                   int64_t n, int64_t k, double *y);

/* ---- seeded test problems (problem.c): tests, compare and bench share them ---- */

/* splitmix64-seeded xorshift; reproducible across platforms. */
typedef struct kd_rng { uint64_t s; } kd_rng;
void kd_rng_seed(kd_rng *r, uint64_t seed);
uint64_t kd_rng_next(kd_rng *r);
float kd_rng_uniform(kd_rng *r, float lo, float hi);
void kd_fill_uniform(kd_rng *r, float *x, int64_t n, float lo, float hi);

/* Random test problem of an op with all inputs and host copies. */
typedef struct kd_problem {
    kd_op_desc d;
    int64_t m, n, k;       /* batch rows, row length (GEMV: N), GEMV K */
    float *h_src[2];       /* host f32 inputs (GEMV: h_src[1] = x) */
    void *h_blocks;        /* GEMV weight blocks */
    size_t blocks_bytes;
    uint32_t *pos;
    kd_tensor *src[2];
    kd_tensor *dst;
    int64_t out_count;
} kd_problem;

/* Builds a problem of op with batch m, row length n (GEMV: N rows) and k (GEMV K). For
 * ROPE, n = n_heads * head_dim with head_dim given in k (k = 0 means 64). */
int kd_problem_make(kd_context *ctx, kd_op op, int64_t m, int64_t n, int64_t k, uint64_t seed,
                    kd_problem *p);
void kd_problem_free(kd_problem *p);
/* Double-precision reference of the problem (out_count doubles, caller frees). */
double *kd_problem_oracle(const kd_problem *p);
/* Runs the problem on a backend and reads back out_count floats (caller frees); NULL on
 * failure with the status in *st. */
float *kd_problem_run(kd_context *ctx, kd_problem *p, kd_backend_id b, unsigned flags,
                      kd_status *st);

#endif
