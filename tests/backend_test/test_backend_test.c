/* A fourth backend in one folder: "hosttest" (backend_test.c) is registered by one line
 * (kd_backend_register in main) and then, with no other file aware of it, takes the next
 * id, resolves by name, is probed by every new context, runs ops forced on it through the
 * dispatcher (the unsupported ones fall back to cpu, counted), shows up in the metrics
 * (snapshot, JSON, Prometheus) and in compare, which also fails when it computes wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_test.h"
#include "compare_core.h"
#include "kd_test_util.h"

static kd_backend_id hosttest = KD_BACKEND_COUNT;
static kd_context *ctx;

#define N_REFUSALS 4
static kd_backend_id refusals[N_REFUSALS];

/* Tables the registry must refuse, tried before hosttest registers. */
static void try_bad_tables(void)
{
    kd_backend_ops no_run = kd_hosttest_backend, host_class = kd_hosttest_backend,
                   taken = kd_hosttest_backend;
    no_run.name = "hosttest_no_run";
    no_run.run = NULL;
    host_class.name = "hosttest_host";
    host_class.is_offload = 0;
    taken.name = "CPU"; /* names compare without case */
    refusals[0] = kd_backend_register(NULL);
    refusals[1] = kd_backend_register(&no_run);
    refusals[2] = kd_backend_register(&host_class);
    refusals[3] = kd_backend_register(&taken);
}

static void test_registered(void)
{
    CU_ASSERT_EQUAL(hosttest, KD_BACKEND_CUDA + 1); /* the first id after the built-ins */
    CU_ASSERT_EQUAL(kd_backend_count(), KD_BACKEND_CUDA + 2);
    CU_ASSERT_EQUAL(kd_backend_from_name("hosttest"), hosttest);
    CU_ASSERT_STRING_EQUAL(kd_backend_name(hosttest), "hosttest");
    CU_ASSERT(kd_backend_available(ctx, hosttest));
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_backend_reason(ctx, hosttest), "plain loops"));
    /* no gemv_paths entry in its table: the exact GEMV path only */
    unsigned dflt = 0;
    CU_ASSERT_EQUAL(kd_backend_gemv_paths(ctx, hosttest, &dflt), KD_GEMV_EXACT);
    CU_ASSERT_EQUAL(dflt, KD_GEMV_EXACT);
    /* Refused while id 3 was still free (hosttest took it after them): no table, a table
     * without run, a non-offload table (only id 0 counts as cpu), a name already taken. */
    for (int i = 0; i < N_REFUSALS; i++)
        CU_ASSERT_EQUAL(refusals[i], KD_BACKEND_COUNT);
    /* Now every id is taken: a good table of a new name is refused too. */
    kd_backend_ops another = kd_hosttest_backend;
    another.name = "hosttest2";
    CU_ASSERT_EQUAL(kd_backend_register(&another), KD_BACKEND_COUNT);
    CU_ASSERT_EQUAL(kd_backend_register(&kd_hosttest_backend), KD_BACKEND_COUNT);
    CU_ASSERT_EQUAL(kd_backend_register(NULL), KD_BACKEND_COUNT);
}

/* Runs op forced on b; the output vs the oracle; the status in *st. */
static void run_checked(kd_op op, int64_t m, kd_backend_id b, unsigned flags, kd_status *st)
{
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(ctx, op, m, 1024, 0, 11 + (uint64_t)op, &p) == 0);
    float *y = kd_problem_run(ctx, &p, b, flags, st);
    if (y) {
        double *ref = kd_problem_oracle(&p);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
        kd_test_expect_match(&p, kd_backend_name(b), y, ref, NULL, NULL);
        free(ref);
    }
    free(y);
    kd_problem_free(&p);
}

static void test_dispatch_and_metrics(void)
{
    kd_metrics_reset(ctx);
    int runs0 = atomic_load(&kd_hosttest_runs);
    kd_status st;
    run_checked(KD_OP_RESIDUAL_ADD, 1, hosttest, KD_RUN_NO_FALLBACK, &st);
    CU_ASSERT_EQUAL(st, KD_OK);
    run_checked(KD_OP_RMSNORM, 4, hosttest, KD_RUN_NO_FALLBACK, &st);
    CU_ASSERT_EQUAL(st, KD_OK);
    CU_ASSERT_EQUAL(atomic_load(&kd_hosttest_runs), runs0 + 2); /* it ran them, not cpu */

    /* rope is not implemented: refused when fallback is off, else run on cpu. */
    run_checked(KD_OP_ROPE, 2, hosttest, KD_RUN_NO_FALLBACK, &st);
    CU_ASSERT_EQUAL(st, KD_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(ctx), "hosttest: rope"));
    run_checked(KD_OP_ROPE, 2, hosttest, 0, &st);
    CU_ASSERT_EQUAL(st, KD_OK);
    CU_ASSERT_EQUAL(atomic_load(&kd_hosttest_runs), runs0 + 2);

    kd_metrics_snapshot s;
    kd_metrics_get(ctx, &s);
    CU_ASSERT_EQUAL(s.per_backend[hosttest], 2);
    CU_ASSERT_EQUAL(s.per_backend[KD_BACKEND_CPU], 1); /* the fallback */
    CU_ASSERT_EQUAL(s.fallbacks, 1);
    CU_ASSERT_EQUAL(s.gpu_dispatches, 2); /* an offload backend */
    CU_ASSERT_EQUAL(s.bytes_to_device, 0); /* host memory: nothing moved */
    CU_ASSERT_EQUAL(s.total_dispatches, s.cpu_dispatches + s.gpu_dispatches);

    char buf[16384];
    CU_ASSERT(kd_metrics_export(ctx, "json", buf, sizeof buf) < sizeof buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"hosttest\": {\"dispatches\": 2,"));
    CU_ASSERT(kd_metrics_export(ctx, "prom", buf, sizeof buf) < sizeof buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "kdispatch_backend_dispatches_total{backend=\"hosttest\"} 2\n"));
}

/* Rank 0 and no default thresholds: the dispatcher never picks it by itself. */
static void test_never_chosen_automatically(void)
{
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(ctx, KD_OP_RESIDUAL_ADD, 64, 1 << 16, 0, 3, &p) == 0);
    CU_ASSERT_NOT_EQUAL(kd_dispatch_decide(ctx, &p.d), hosttest);
    kd_problem_free(&p);
}

static int compare_hosttest(char **text)
{
    kd_compare_opts o;
    kd_compare_opts_init(&o);
    o.use_backend[KD_BACKEND_CPU] = 1;
    o.use_backend[hosttest] = 1;
    o.use_op[KD_OP_RESIDUAL_ADD] = 1;
    o.use_op[KD_OP_RMSNORM] = 1;
    const char *path = "test_backend_test_compare.txt";
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    int rc = kd_compare_run(ctx, &o, f);
    fclose(f);
    *text = kd_test_read_file(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(*text);
    return rc;
}

static void test_compare(void)
{
    char *text;
    CU_ASSERT_EQUAL(compare_hosttest(&text), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "hosttest"));
    CU_ASSERT_PTR_NULL(strstr(text, "FAIL"));
    free(text);
    /* Negative: a wrong residual_add on hosttest must make compare fail. */
    kd_hosttest_break = 1;
    int rc = compare_hosttest(&text);
    kd_hosttest_break = 0;
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "FAIL"));
    free(text);
}

int main(void)
{
    try_bad_tables();
    hosttest = kd_backend_register(&kd_hosttest_backend); /* the one registration line */
    kd_context_options opts = {.disable_opencl = 1, .disable_cuda = 1};
    if (kd_context_create(&opts, &ctx) != KD_OK) {
        fprintf(stderr, "kd_context_create: %s\n", kd_last_error(NULL));
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("backend_test", NULL, NULL);
    CU_add_test(s, "registers and is probed", test_registered);
    CU_add_test(s, "runs through the dispatcher; metrics", test_dispatch_and_metrics);
    CU_add_test(s, "never chosen automatically", test_never_chosen_automatically);
    CU_add_test(s, "shows up in compare", test_compare);
    int rc = kd_test_main();
    kd_context_destroy(ctx);
    return rc;
}
