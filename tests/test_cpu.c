/* ctest-labels: cpu */
/* The cpu backend: every op, single-row (M = 1) and batched kernels, scalar and fast
 * paths, against the double-precision oracle and against each other. The GEMVs here are
 * the exact path (KD_RUN_CPU_EXACT); the default q8 path is test_cpu_q8's. Run once per
 * SIMD level (KD_CPU_SIMD, see tests/CMakeLists.txt). */
#include <stdio.h>
#include <stdlib.h>

#include "cpu_level.h"
#include "kd_test_util.h"

static kd_context *ctx;
static const int64_t batch_sizes[] = {1, 2, 7, 8, 33};

typedef kd_test_shape shape;

/* Row lengths that are not multiples of the SIMD width where the op allows it. */
static const shape ew_shapes[] = {{1, 0}, {7, 0}, {1000, 0}, {4099, 0}};
static const shape rope_shapes[] = {{42, 6}, {5 * 128, 128}, {3 * 64, 64}};
static const shape gemv_shapes[] = {{1, 256}, {3, 768}, {67, 512}};

static const kd_test_path cpu_exact = {KD_BACKEND_CPU, KD_RUN_CPU_EXACT, "cpu"};
static const kd_test_path cpu_scalar = {KD_BACKEND_CPU, KD_RUN_CPU_SCALAR, "cpu-scalar"};

#define N(a) ((int)(sizeof(a) / sizeof *(a)))
static void check_op(kd_op op, const shape *shapes, int nshapes)
{
    kd_test_check_op(ctx, op, shapes, nshapes, batch_sizes, N(batch_sizes), 1000 * (uint64_t)op,
                     cpu_exact, cpu_scalar);
}
static void test_rmsnorm(void) { check_op(KD_OP_RMSNORM, ew_shapes, N(ew_shapes)); }
static void test_rope(void) { check_op(KD_OP_ROPE, rope_shapes, N(rope_shapes)); }
static void test_swiglu(void) { check_op(KD_OP_SWIGLU, ew_shapes, N(ew_shapes)); }
static void test_residual_add(void) { check_op(KD_OP_RESIDUAL_ADD, ew_shapes, N(ew_shapes)); }
static void test_q4k_gemv(void) { check_op(KD_OP_Q4K_GEMV, gemv_shapes, N(gemv_shapes)); }
static void test_q6k_gemv(void) { check_op(KD_OP_Q6K_GEMV, gemv_shapes, N(gemv_shapes)); }

/* The oracle comparison must be able to fail: a perturbed output is caught. */
static void test_comparison_detects_error(void)
{
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(ctx, KD_OP_Q4K_GEMV, 2, 5, 256, 7, &p) == 0);
    double *ref = kd_problem_oracle(&p);
    kd_status st;
    float *y = kd_problem_run(ctx, &p, KD_BACKEND_CPU, KD_RUN_CPU_EXACT, &st);
    CU_ASSERT_FATAL(ref && y);
    y[3] += 0.01f * (1.0f + (float)(ref[3] < 0 ? -ref[3] : ref[3]));
    kd_cmp c;
    kd_compare_to_ref(y, ref, p.out_count, KD_TOLERANCE, &c);
    CU_ASSERT(!c.pass);
    CU_ASSERT_EQUAL(c.first_bad, 3);
    y[3] = 0.0f / 0.0f;
    kd_compare_to_ref(y, ref, p.out_count, KD_TOLERANCE, &c);
    CU_ASSERT(!c.pass);
    free(ref);
    free(y);
    kd_problem_free(&p);
}

/* The exact path's large-M paths agree with the oracle: tiles of 8 over panels below
 * KD_CPU_BLAS_MIN_M (256; N = 1000 rows of K = 4096 make several panels per pool piece),
 * dequantize + sgemm from it. (q8: test_cpu_q8.) */
static void test_gemv_blas_crossover(void)
{
    static const int64_t cases[][3] = {{9, 130, 512}, {70, 1000, 4096}, {KD_CPU_BLAS_MIN_M_DEFAULT, 130, 512}};
    for (int op = KD_OP_Q4K_GEMV; op <= KD_OP_Q6K_GEMV; op++)
        for (int i = 0; i < 3; i++) {
            kd_problem p;
            CU_ASSERT_FATAL(kd_problem_make(ctx, (kd_op)op, cases[i][0], cases[i][1], cases[i][2],
                                            99 + (uint64_t)i, &p) == 0);
            CU_ASSERT(kd_test_run_matches_oracle(ctx, &p, KD_BACKEND_CPU, KD_RUN_CPU_EXACT,
                                                 "large M"));
            kd_problem_free(&p);
        }
}

int main(void)
{
    char why[256];
    if (kd_test_cpu_level_untestable(why, sizeof why))
        return kd_test_skip(why);
    if (!(ctx = kd_test_cpu_context()))
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("cpu", NULL, NULL);
    CU_add_test(s, "rmsnorm vs oracle", test_rmsnorm);
    CU_add_test(s, "rope vs oracle", test_rope);
    CU_add_test(s, "swiglu vs oracle", test_swiglu);
    CU_add_test(s, "residual_add vs oracle", test_residual_add);
    CU_add_test(s, "q4k_gemv vs oracle", test_q4k_gemv);
    CU_add_test(s, "q6k_gemv vs oracle", test_q6k_gemv);
    CU_add_test(s, "comparison detects errors", test_comparison_detects_error);
    CU_add_test(s, "gemv blas path", test_gemv_blas_crossover);
    int rc = kd_test_main();
    kd_context_destroy(ctx);
    return rc;
}
