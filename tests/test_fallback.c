/* ctest-labels: fallback;opencl */
/* Fault fallback end to end (SPEC section 4): with KD_FAULT set before the context is
 * created, an offload allocation, program build or kernel launch failure makes the op run
 * on cpu: the caller gets KD_OK and the cpu result, the inputs are intact, and the
 * metrics count one fallback (and a cpu dispatch, no gpu dispatch). With
 * KD_RUN_NO_FALLBACK the failure is returned instead. Every offload backend present is
 * tested (PoCL's CPU device counts); skipped (77) when none is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kd_test_util.h"

typedef struct op_case {
    kd_op op;
    int64_t m, n, k;
} op_case;

static const op_case cases[] = {
    {KD_OP_RESIDUAL_ADD, 2, 1000, 0}, {KD_OP_SWIGLU, 3, 777, 0},
    {KD_OP_RMSNORM, 2, 4096, 0},      {KD_OP_ROPE, 2, 4 * 64, 64},
    {KD_OP_Q4K_GEMV, 2, 64, 512},     {KD_OP_Q6K_GEMV, 1, 32, 256},
};
#define N_CASES ((int)(sizeof cases / sizeof *cases))

static const char *const kind_names[] = {"alloc", "build", "launch"};
static const kd_status kind_status[] = {KD_ERR_NOMEM, KD_ERR_BUILD, KD_ERR_LAUNCH};

static kd_context *context_with_fault(const char *spec)
{
    kd_context *ctx = NULL;
    kd_status st = kd_test_context_under_env("KD_FAULT", spec, NULL, &ctx);
    if (st != KD_OK) {
        printf("\n  KD_FAULT=%s: context: %s\n", spec, kd_last_error(NULL));
        return NULL;
    }
    return ctx;
}

/* The f32 inputs still hold exactly what the problem was made with. */
static int inputs_intact(kd_context *ctx, const kd_problem *p)
{
    for (int i = 0; i < 2; i++) {
        const kd_tensor *t = p->src[i];
        if (!t || kd_tensor_type(t) != KD_TYPE_F32 || !p->h_src[i])
            continue;
        size_t count = (size_t)(kd_tensor_rows(t) * kd_tensor_cols(t));
        float *now = malloc(count * sizeof *now);
        if (!now)
            return 0;
        int same = kd_tensor_read(ctx, (kd_tensor *)t, now, count) == KD_OK &&
                   memcmp(now, p->h_src[i], count * sizeof *now) == 0;
        free(now);
        if (!same)
            return 0;
    }
    return 1;
}

/* One op under an always-failing fault: falls back with the cpu result; with
 * KD_RUN_NO_FALLBACK the fault's status comes back. */
static void check_fallback(kd_context *ctx, kd_backend_id b, int kind, const op_case *c,
                           uint64_t seed)
{
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(ctx, c->op, c->m, c->n, c->k, seed, &p) == 0);
    double *ref = kd_problem_oracle(&p);
    kd_status st;
    float *cpu = kd_problem_run(ctx, &p, KD_BACKEND_CPU, KD_RUN_CPU_EXACT, &st);
    CU_ASSERT_FATAL(ref && cpu);

    kd_metrics_snapshot before, after;
    kd_metrics_get(ctx, &before);
    float *y = kd_problem_run(ctx, &p, b, KD_RUN_CPU_EXACT, &st);
    kd_metrics_get(ctx, &after);
    if (!y) {
        printf("\n  %s %s fault, %s: %s: %s\n", kd_backend_name(b), kind_names[kind],
               kd_op_name(c->op), kd_status_name(st), kd_last_error(ctx));
        CU_FAIL("a faulted offload did not fall back");
    } else {
        kd_cmp vs_cpu, vs_ref;
        kd_compare_f32(y, cpu, p.out_count, KD_TOLERANCE, &vs_cpu);
        kd_compare_to_ref(y, ref, p.out_count, KD_TOLERANCE, &vs_ref);
        if (!vs_cpu.pass || !vs_ref.pass)
            printf("\n  %s %s fault, %s: max diff vs cpu %.3g, vs oracle %.3g\n",
                   kd_backend_name(b), kind_names[kind], kd_op_name(c->op), vs_cpu.max_abs,
                   vs_ref.max_abs);
        CU_ASSERT(vs_cpu.pass && vs_ref.pass);
    }
    CU_ASSERT_EQUAL(after.fallbacks, before.fallbacks + 1);
    CU_ASSERT_EQUAL(after.cpu_dispatches, before.cpu_dispatches + 1);
    CU_ASSERT_EQUAL(after.gpu_dispatches, before.gpu_dispatches);
    CU_ASSERT_EQUAL(after.total_dispatches, after.cpu_dispatches + after.gpu_dispatches);
    CU_ASSERT(inputs_intact(ctx, &p));

    /* No fallback asked: the failure is reported, nothing counted as a fallback. */
    kd_metrics_get(ctx, &before);
    st = kd_run(ctx, &p.d, b, KD_RUN_NO_FALLBACK);
    kd_metrics_get(ctx, &after);
    if (st != kind_status[kind])
        printf("\n  %s %s fault, %s, no fallback: %s (%s)\n", kd_backend_name(b),
               kind_names[kind], kd_op_name(c->op), kd_status_name(st), kd_last_error(ctx));
    CU_ASSERT_EQUAL(st, kind_status[kind]);
    CU_ASSERT_EQUAL(after.fallbacks, before.fallbacks);
    CU_ASSERT_EQUAL(after.total_dispatches, before.total_dispatches);
    CU_ASSERT(inputs_intact(ctx, &p));

    free(y);
    free(cpu);
    free(ref);
    kd_problem_free(&p);
}

static int backends_tested;

static void test_kind(int kind)
{
    const kd_backend_id offloads[] = {KD_BACKEND_OPENCL, KD_BACKEND_CUDA};
    for (int i = 0; i < 2; i++) {
        kd_backend_id b = offloads[i];
        char spec[64];
        snprintf(spec, sizeof spec, "%s:%s:0:always", kd_backend_name(b), kind_names[kind]);
        kd_context *ctx = context_with_fault(spec);
        CU_ASSERT_FATAL(ctx != NULL);
        if (kd_backend_available(ctx, b)) {
            backends_tested++;
            for (int c = 0; c < N_CASES; c++)
                check_fallback(ctx, b, kind, &cases[c], 100 * (uint64_t)kind + (uint64_t)c);
        }
        kd_context_destroy(ctx);
    }
}

static void test_alloc_fault(void) { test_kind(0); }
static void test_build_fault(void) { test_kind(1); }
static void test_launch_fault(void) { test_kind(2); }

/* A one-shot fault: only the second launch fails; the ops before and after it run on the
 * offload backend. */
static void test_one_shot_fault(void)
{
    const kd_backend_id offloads[] = {KD_BACKEND_OPENCL, KD_BACKEND_CUDA};
    for (int i = 0; i < 2; i++) {
        kd_backend_id b = offloads[i];
        char spec[64];
        snprintf(spec, sizeof spec, "%s:launch:1", kd_backend_name(b));
        kd_context *ctx = context_with_fault(spec);
        CU_ASSERT_FATAL(ctx != NULL);
        if (!kd_backend_available(ctx, b)) {
            kd_context_destroy(ctx);
            continue;
        }
        kd_problem p;
        CU_ASSERT_FATAL(kd_problem_make(ctx, KD_OP_RESIDUAL_ADD, 4, 300, 0, 7, &p) == 0);
        double *ref = kd_problem_oracle(&p);
        for (int run = 0; run < 3; run++) {
            kd_status st;
            float *y = kd_problem_run(ctx, &p, b, 0, &st);
            CU_ASSERT_EQUAL(st, KD_OK);
            if (y) {
                kd_cmp c;
                kd_compare_to_ref(y, ref, p.out_count, KD_TOLERANCE, &c);
                CU_ASSERT(c.pass);
            }
            free(y);
        }
        kd_metrics_snapshot s;
        kd_metrics_get(ctx, &s);
        CU_ASSERT_EQUAL(s.fallbacks, 1);
        CU_ASSERT_EQUAL(s.per_backend[b], 2);
        CU_ASSERT_EQUAL(s.cpu_dispatches, 1);
        free(ref);
        kd_problem_free(&p);
        kd_context_destroy(ctx);
    }
}

int main(void)
{
    kd_context *probe = NULL;
    if (kd_context_create(NULL, &probe) != KD_OK) {
        fprintf(stderr, "context: %s\n", kd_last_error(NULL));
        return 1;
    }
    int any = kd_backend_available(probe, KD_BACKEND_OPENCL) ||
              kd_backend_available(probe, KD_BACKEND_CUDA);
    printf("opencl: %s\ncuda: %s\n", kd_backend_reason(probe, KD_BACKEND_OPENCL),
           kd_backend_reason(probe, KD_BACKEND_CUDA));
    kd_context_destroy(probe);
    if (!any)
        return kd_test_skip("no offload backend (opencl or cuda) is available");
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("fallback", NULL, NULL);
    CU_add_test(s, "allocation fault falls back to cpu", test_alloc_fault);
    CU_add_test(s, "build fault falls back to cpu", test_build_fault);
    CU_add_test(s, "launch fault falls back to cpu", test_launch_fault);
    CU_add_test(s, "one-shot launch fault", test_one_shot_fault);
    int rc = kd_test_main();
    printf("offload backends tested: %d\n", backends_tested / 3);
    return rc;
}
