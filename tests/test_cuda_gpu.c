/* ctest-labels: cuda;gpu */
/*
 * The cuda backend on a real device: all twelve kernels (M = 1: single-row kernel,
 * M > 1: batched) against the double-precision oracle and against the cpu backend, for
 * M in {1, 2, 7, 8, 33}; residency and transfer counting; a batch taller than one
 * launch; injected alloc/build/launch faults falling back to cpu with the right answer.
 * Exits 77 (skipped, with the reason) where the backend was not built or no CUDA device
 * is present: never counted as passed there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kd_backend.h"
#include "kd_test_util.h"

#ifdef KD_HAVE_CUDA

static kd_context *ctx;
static const int64_t batch_sizes[] = {1, 2, 7, 8, 33};

typedef kd_test_shape shape;

/* n: vector path (n % 4 == 0), scalar path, shorter than a warp */
static const shape ew_shapes[] = {{4096, 0}, {1003, 0}, {7, 0}};
/* n = heads * head_dim, k = head_dim */
static const shape rope_shapes[] = {{32 * 128, 128}, {3 * 6, 6}, {4 * 64, 64}};
/* N rows not a multiple of the rows per block; K of 1, 3 and 16 blocks */
static const shape gemv_shapes[] = {{5, 256}, {37, 768}, {300, 4096}};

static const kd_test_path cuda_path = {KD_BACKEND_CUDA, KD_RUN_NO_FALLBACK, "cuda"};
static const kd_test_path cpu_exact = {KD_BACKEND_CPU, KD_RUN_CPU_EXACT, "cpu"};

/* Runs every shape and batch size on cuda (no fallback) and on cpu; both must match the
 * oracle and each other. Seeds vary the rope mode (odd seed: neox). */
#define N(a) ((int)(sizeof(a) / sizeof *(a)))
static void check_op(kd_op op, const shape *shapes, int nshapes)
{
    kd_test_check_op(ctx, op, shapes, nshapes, batch_sizes, N(batch_sizes),
                     5000 + 100 * (uint64_t)op, cuda_path, cpu_exact);
}
static void test_rmsnorm(void) { check_op(KD_OP_RMSNORM, ew_shapes, N(ew_shapes)); }
static void test_rope(void) { check_op(KD_OP_ROPE, rope_shapes, N(rope_shapes)); }
static void test_swiglu(void) { check_op(KD_OP_SWIGLU, ew_shapes, N(ew_shapes)); }
static void test_residual_add(void) { check_op(KD_OP_RESIDUAL_ADD, ew_shapes, N(ew_shapes)); }
static void test_q4k_gemv(void) { check_op(KD_OP_Q4K_GEMV, gemv_shapes, N(gemv_shapes)); }
static void test_q6k_gemv(void) { check_op(KD_OP_Q6K_GEMV, gemv_shapes, N(gemv_shapes)); }

/* Inputs move to the device once, the output stays there until read; counted bytes. */
static void test_residency_and_transfers(void)
{
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(ctx, KD_OP_Q4K_GEMV, 8, 64, 1024, 42, &p) == 0);
    kd_metrics_reset(ctx);
    CU_ASSERT_EQUAL_FATAL(kd_run(ctx, &p.d, KD_BACKEND_CUDA, KD_RUN_NO_FALLBACK), KD_OK);
    kd_metrics_snapshot a;
    kd_metrics_get(ctx, &a);
    size_t wbytes = p.blocks_bytes, xbytes = sizeof(float) * 8 * 1024;
    CU_ASSERT_EQUAL(a.bytes_to_device, wbytes + xbytes);
    CU_ASSERT_EQUAL(a.bytes_from_device, 0);
    CU_ASSERT_EQUAL(a.gpu_dispatches, 1);
    CU_ASSERT_EQUAL(a.per_backend[KD_BACKEND_CUDA], 1);
    CU_ASSERT_EQUAL(kd_tensor_residency(p.dst), KD_BACKEND_CUDA);
    /* second run: nothing moves */
    CU_ASSERT_EQUAL_FATAL(kd_run(ctx, &p.d, KD_BACKEND_CUDA, KD_RUN_NO_FALLBACK), KD_OK);
    kd_metrics_get(ctx, &a);
    CU_ASSERT_EQUAL(a.bytes_to_device, wbytes + xbytes);
    float *y = malloc(sizeof(float) * 8 * 64);
    CU_ASSERT_FATAL(y != NULL);
    CU_ASSERT_EQUAL(kd_tensor_read(ctx, p.dst, y, 8 * 64), KD_OK);
    kd_metrics_get(ctx, &a);
    CU_ASSERT_EQUAL(a.bytes_from_device, sizeof(float) * 8 * 64);
    double *ref = kd_problem_oracle(&p);
    kd_cmp c;
    kd_compare_to_ref(y, ref, 8 * 64, KD_TOLERANCE, &c);
    CU_ASSERT(c.pass);
    free(ref);
    free(y);
    kd_problem_free(&p);
}

/* A batch taller than the grid's y limit (65535 rows) runs in several launches. */
static void test_batch_taller_than_one_launch(void)
{
    const int64_t m = 70000, n = 8;
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(ctx, KD_OP_RESIDUAL_ADD, m, n, 0, 77, &p) == 0);
    CU_ASSERT(kd_test_run_matches_oracle(ctx, &p, KD_BACKEND_CUDA, KD_RUN_NO_FALLBACK,
                                         "70000 rows"));
    kd_problem_free(&p);
}

/* KD_FAULT: the failed offload falls back to cpu, is counted, and the answer is right. */
static void check_fault(const char *spec, kd_op op)
{
    kd_context *fctx;
    CU_ASSERT_EQUAL_FATAL(kd_test_context_under_env("KD_FAULT", spec, NULL, &fctx), KD_OK);
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(fctx, op, 4, 64, op == KD_OP_ROPE ? 16 : 256, 9, &p) == 0);
    kd_status st;
    float *y = kd_problem_run(fctx, &p, KD_BACKEND_CUDA, KD_RUN_CPU_EXACT, &st); /* the fallback: exact */
    CU_ASSERT_FATAL(y != NULL);
    kd_metrics_snapshot s;
    kd_metrics_get(fctx, &s);
    if (s.fallbacks != 1)
        printf("\n  %s: %llu fallbacks\n", spec, (unsigned long long)s.fallbacks);
    CU_ASSERT_EQUAL(s.fallbacks, 1);
    CU_ASSERT_EQUAL(s.per_backend[KD_BACKEND_CPU], 1);
    double *ref = kd_problem_oracle(&p);
    kd_cmp c;
    kd_compare_to_ref(y, ref, p.out_count, KD_TOLERANCE, &c);
    CU_ASSERT(c.pass);
    /* without fallback the fault is the caller's, with cuda's message */
    kd_context *nctx;
    CU_ASSERT_EQUAL_FATAL(kd_test_context_under_env("KD_FAULT", spec, NULL, &nctx), KD_OK);
    kd_problem q;
    CU_ASSERT_FATAL(kd_problem_make(nctx, op, 4, 64, op == KD_OP_ROPE ? 16 : 256, 9, &q) == 0);
    CU_ASSERT_NOT_EQUAL(kd_run(nctx, &q.d, KD_BACKEND_CUDA, KD_RUN_NO_FALLBACK), KD_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(nctx), "KD_FAULT"));
    kd_problem_free(&q);
    kd_context_destroy(nctx);
    free(ref);
    free(y);
    kd_problem_free(&p);
    kd_context_destroy(fctx);
}

static void test_fault_alloc(void) { check_fault("cuda:alloc:0", KD_OP_Q6K_GEMV); }
static void test_fault_build(void) { check_fault("cuda:build:0", KD_OP_RMSNORM); }
static void test_fault_launch(void) { check_fault("cuda:launch:0", KD_OP_Q4K_GEMV); }
/* the rope position buffer is the backend's own allocation */
static void test_fault_rope_positions(void) { check_fault("cuda:alloc:2", KD_OP_ROPE); }

int main(void)
{
    if (kd_context_create(NULL, &ctx) != KD_OK) {
        fprintf(stderr, "kd_context_create: %s\n", kd_last_error(NULL));
        return 1;
    }
    if (!kd_backend_available(ctx, KD_BACKEND_CUDA)) {
        char reason[2200];
        snprintf(reason, sizeof reason, "no CUDA device: %s",
                 kd_backend_reason(ctx, KD_BACKEND_CUDA));
        kd_context_destroy(ctx);
        return kd_test_skip(reason);
    }
    printf("cuda: %s\n", kd_backend_reason(ctx, KD_BACKEND_CUDA));
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("cuda_gpu", NULL, NULL);
    CU_add_test(s, "rmsnorm: cuda vs oracle and cpu", test_rmsnorm);
    CU_add_test(s, "rope: cuda vs oracle and cpu", test_rope);
    CU_add_test(s, "swiglu: cuda vs oracle and cpu", test_swiglu);
    CU_add_test(s, "residual_add: cuda vs oracle and cpu", test_residual_add);
    CU_add_test(s, "q4k gemv: cuda vs oracle and cpu", test_q4k_gemv);
    CU_add_test(s, "q6k gemv: cuda vs oracle and cpu", test_q6k_gemv);
    CU_add_test(s, "residency and transfers", test_residency_and_transfers);
    CU_add_test(s, "batch taller than one launch", test_batch_taller_than_one_launch);
    CU_add_test(s, "fault: alloc falls back", test_fault_alloc);
    CU_add_test(s, "fault: build falls back", test_fault_build);
    CU_add_test(s, "fault: launch falls back", test_fault_launch);
    CU_add_test(s, "fault: rope position buffer falls back", test_fault_rope_positions);
    int rc = kd_test_main();
    kd_context_destroy(ctx);
    return rc;
}

#else /* !KD_HAVE_CUDA */

int main(void)
{
    return kd_test_skip(kd_backend_ops_of(KD_BACKEND_CUDA)->not_built);
}

#endif
