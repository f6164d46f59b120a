/* ctest-labels: opencl */
/* OpenCL allocations checked before the driver is asked (PoCL accepts buffers over its
 * limits and aborts when the host then runs out): a buffer over
 * CL_DEVICE_MAX_MEM_ALLOC_SIZE, and buffers over the device's global memory minus the
 * live ones, are KD_ERR_TOO_LARGE with the limit named, and an op whose buffers do not
 * fit falls back to cpu with the right result. The global-memory figure is lowered in the
 * backend's state so the test needs no gigabytes. Without an OpenCL device it exits 77. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kd_test_util.h"

#ifndef KD_HAVE_OPENCL
int main(void) { return kd_test_skip("kdispatch was built without the OpenCL backend"); }
#else

#include "kd_internal.h"
#include "opencl/kd_opencl_internal.h"

static kd_context *ctx;
static kd_cl_state *cl;
static const kd_backend_ops *ops;

static void test_max_alloc(void)
{
    void *buf = NULL;
    CU_ASSERT_FATAL(cl->max_alloc > 0);
    CU_ASSERT_EQUAL(ops->alloc(ctx, cl, (size_t)cl->max_alloc + 1, &buf), KD_ERR_TOO_LARGE);
    CU_ASSERT(buf == NULL);
    CU_ASSERT(strstr(kd_last_error(ctx), "CL_DEVICE_MAX_MEM_ALLOC_SIZE") != NULL);
    CU_ASSERT_EQUAL(ops->alloc(ctx, cl, SIZE_MAX, &buf), KD_ERR_TOO_LARGE);
}

static void test_global_memory_accounting(void)
{
    cl_ulong saved = cl->global_mem;
    uint64_t before = atomic_load(&cl->allocated);
    cl->global_mem = before + (1u << 20); /* 1 MiB free */
    void *a = NULL, *b = NULL;
    CU_ASSERT_EQUAL(ops->alloc(ctx, cl, 600u << 10, &a), KD_OK);
    CU_ASSERT_EQUAL(ops->alloc(ctx, cl, 600u << 10, &b), KD_ERR_TOO_LARGE);
    CU_ASSERT(strstr(kd_last_error(ctx), "global memory") != NULL);
    ops->release(cl, a); /* its bytes count as free again */
    CU_ASSERT_EQUAL(ops->alloc(ctx, cl, 600u << 10, &b), KD_OK);
    ops->release(cl, b);
    CU_ASSERT_EQUAL(atomic_load(&cl->allocated), before);
    cl->global_mem = saved;
}

/* An op whose operands do not fit the device: KD_ERR_TOO_LARGE without fallback, the
 * right answer (on cpu, counted as a fallback) with it. */
static void test_fallback_when_too_large(void)
{
    cl_ulong saved = cl->global_mem;
    cl->global_mem = atomic_load(&cl->allocated) + 4096;
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(ctx, KD_OP_Q4K_GEMV, 2, 64, 512, 3, &p) == 0);
    kd_status st;
    float *y = kd_problem_run(ctx, &p, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK, &st);
    CU_ASSERT(y == NULL);
    CU_ASSERT_EQUAL(st, KD_ERR_TOO_LARGE);
    free(y);
    kd_metrics_snapshot m0, m1;
    kd_metrics_get(ctx, &m0);
    /* the fallback runs the cpu's exact path, held to the tight tolerance */
    CU_ASSERT(kd_test_run_matches_oracle(ctx, &p, KD_BACKEND_OPENCL, KD_RUN_CPU_EXACT,
                                         "fallback"));
    kd_metrics_get(ctx, &m1);
    CU_ASSERT_EQUAL(m1.fallbacks, m0.fallbacks + 1);
    kd_problem_free(&p);
    cl->global_mem = saved;
}

int main(void)
{
    /* a private cache directory: runs do not depend on (or fill) the user's cache */
    char dir[128], cmd[200];
    snprintf(dir, sizeof dir, "/tmp/kd-cl-limits-XXXXXX");
    if (!mkdtemp(dir))
        return perror("mkdtemp"), 1;
    setenv("KD_CACHE_DIR", dir, 1);
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
    kd_context_options o = {.disable_cuda = 1};
    if (kd_context_create(&o, &ctx) != KD_OK)
        return printf("context: %s\n", kd_last_error(NULL)), 1;
    if (!kd_backend_available(ctx, KD_BACKEND_OPENCL)) {
        printf("SKIPPED: no OpenCL device: %s\n", kd_backend_reason(ctx, KD_BACKEND_OPENCL));
        kd_context_destroy(ctx);
        kd_test_system(cmd);
        return 77;
    }
    cl = ctx->backend[KD_BACKEND_OPENCL].state;
    ops = ctx->backend[KD_BACKEND_OPENCL].ops;
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("opencl allocation limits", NULL, NULL);
    CU_add_test(s, "over CL_DEVICE_MAX_MEM_ALLOC_SIZE", test_max_alloc);
    CU_add_test(s, "global memory minus live buffers", test_global_memory_accounting);
    CU_add_test(s, "too large for the device: cpu fallback", test_fallback_when_too_large);
    int rc = kd_test_main();
    kd_context_destroy(ctx);
    kd_test_system(cmd);
    return rc;
}

#endif
