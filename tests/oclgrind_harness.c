/* The program tests/test_oclgrind.sh runs under `oclgrind --check-api --data-races
 * --uninitialized`: all twelve OpenCL kernels (six ops, single-row at M = 1 and batched
 * at M = 2..9) on small odd shapes, each checked against the oracle, and the q8 GEMV path
 * (its quantizer and two kernels, in their generic OpenCL form: oclgrind is no x86
 * target) where the device has it, checked against the cpu's q8 path (the same integer
 * sums: the exact tolerance holds between them). oclgrind reports
 * out-of-bounds accesses, races and uninitialized reads on its own log; the script fails
 * on any report and on a non-zero exit from here.
 *
 *   oclgrind_harness            the twelve kernels (exit 1 on a mismatch or failed run)
 *   oclgrind_harness --cache    one op only, then prints "from_cache=<0|1>" (the script
 *                               runs it after the full run: the program must come from
 *                               the KD_CACHE_DIR binary cache)
 *   oclgrind_harness --planted  a kernel with a planted out-of-bounds read, run through
 *                               the raw OpenCL API on the same platform: the script shows
 *                               that its oclgrind check fails on it
 *   oclgrind_harness --planted-uninit
 *                               the same for a planted read of a never-written buffer,
 *                               next to reads of written and host-pointer buffers that
 *                               must not be reported
 * Not a ctest of its own (oclgrind must wrap it); see tests/CMakeLists.txt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kd_oracle.h"
#include "kdispatch.h"
#include "opencl/kd_opencl_internal.h"

#define N(a) ((int)(sizeof(a) / sizeof *(a)))

/* Row lengths the issue asks for, each at every M of 1..9 (single-row and batched kernels;
 * one and two GEMV passes of 8 rows of x). */
static const int64_t row_lengths[] = {1, 7, 31, 64, 255, 257, 4099};
/* Rope: (row length, head_dim), even head dims that divide the row, both modes. */
static const int64_t rope_shapes[][2] = {{2, 2},   {6, 6},     {32, 8},  {64, 64},
                                         {254, 254}, {258, 6}, {4098, 6}};
/* GEMV: N never a multiple of the rows per group (16 on CPU devices, 4 on GPUs). */
static const int64_t gemv_rows[] = {1, 7, 17, 31, 33};
static const int64_t gemv_k[] = {256, 512};

/* KD_OCLGRIND_OPS (comma-separated op names) restricts the run; unset: all six ops. */
static int op_selected(kd_op op)
{
    const char *only = getenv("KD_OCLGRIND_OPS");
    if (!only || !*only)
        return 1;
    size_t len = strlen(kd_op_name(op));
    for (const char *p = strstr(only, kd_op_name(op)); p; p = strstr(p + 1, kd_op_name(op)))
        if ((p == only || p[-1] == ',') && (p[len] == '\0' || p[len] == ','))
            return 1;
    return 0;
}

/* flags: KD_RUN_OPENCL_Q8 runs the q8 GEMV path (NMSE budget), else the exact kernels. */
static int run_case(kd_context *ctx, kd_op op, int64_t m, int64_t n, int64_t k, int mode,
                    unsigned flags)
{
    if (!op_selected(op))
        return 0;
    kd_problem p;
    uint64_t seed = 1000 * (uint64_t)op + 31 * (uint64_t)m + (uint64_t)n;
    if (kd_problem_make(ctx, op, m, n, k, seed, &p) != 0) {
        fprintf(stderr, "%s M=%lld n=%lld: problem not made\n", kd_op_name(op), (long long)m,
                (long long)n);
        return 1;
    }
    if (op == KD_OP_ROPE)
        p.d.rope_mode = (kd_rope_mode)mode;
    double *ref = kd_problem_oracle(&p);
    kd_status st;
    float *got = kd_problem_run(ctx, &p, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK | flags, &st);
    int bad = 1;
    if (!ref || !got) {
        fprintf(stderr, "%s M=%lld n=%lld k=%lld: %s\n", kd_op_name(op), (long long)m,
                (long long)n, (long long)k, got ? "no oracle" : kd_last_error(ctx));
    } else if (flags & KD_RUN_OPENCL_Q8) {
        float *cpu = kd_problem_run(ctx, &p, KD_BACKEND_CPU, KD_RUN_CPU_Q8, &st);
        kd_cmp c = {0};
        if (cpu)
            kd_compare_f32(got, cpu, p.out_count, KD_TOLERANCE, &c);
        bad = !cpu || !c.pass;
        printf("%-12s M=%lld n=%lld k=%lld q8: %s (max abs difference from cpu-q8 %.3g)\n",
               kd_op_name(op), (long long)m, (long long)n, (long long)k, bad ? "MISMATCH" : "ok",
               c.max_abs);
        free(cpu);
    } else {
        kd_cmp c;
        kd_compare_to_ref(got, ref, p.out_count, KD_TOLERANCE, &c);
        bad = !c.pass;
        printf("%-12s M=%lld n=%lld k=%lld: %s (max abs error %.3g)\n", kd_op_name(op),
               (long long)m, (long long)n, (long long)k, c.pass ? "ok" : "MISMATCH", c.max_abs);
    }
    free(ref);
    free(got);
    kd_problem_free(&p);
    return bad;
}

static int run_all(kd_context *ctx)
{
    int failures = 0;
    const kd_op ew[] = {KD_OP_RMSNORM, KD_OP_SWIGLU, KD_OP_RESIDUAL_ADD};
    for (int m = 1; m <= 9; m++) {
        for (int o = 0; o < N(ew); o++)
            for (int s = 0; s < N(row_lengths); s++)
                failures += run_case(ctx, ew[o], m, row_lengths[s], 0, 0, 0);
        for (int s = 0; s < N(rope_shapes); s++)
            failures += run_case(ctx, KD_OP_ROPE, m, rope_shapes[s][0], rope_shapes[s][1],
                                 (m + s) % 2, 0);
    }
    const kd_op gemv[] = {KD_OP_Q4K_GEMV, KD_OP_Q6K_GEMV};
    int q8 = (kd_backend_gemv_paths(ctx, KD_BACKEND_OPENCL, NULL) & KD_GEMV_Q8) != 0;
    for (int o = 0; o < N(gemv); o++)
        for (int m = 1; m <= 9; m++)
            for (int s = 0; s < N(gemv_rows); s++)
                for (int path = 0; path <= q8; path++)
                    failures += run_case(ctx, gemv[o], m, gemv_rows[s],
                                         gemv_k[(m + s) % N(gemv_k)], 0,
                                         path ? KD_RUN_OPENCL_Q8 : 0);
    return failures;
}

/* ---- the planted bugs: raw OpenCL on the platform the library would choose --------- */

static const char planted_src[] =
    "__kernel void kd_planted_oob(__global const float *x, __global float *y, int n)\n"
    "{\n"
    "    int i = (int)get_global_id(0);\n"
    "    if (i < n)\n"
    "        y[i] = x[i + 1]; /* planted: reads x[n] */\n"
    "}\n"
    "__kernel void kd_planted_clean(__global const float *x, __global float *y, int n)\n"
    "{\n"
    "    int i = (int)get_global_id(0);\n"
    "    if (i < n)\n"
    "        y[i] = 2.0f * x[i];\n"
    "}\n"
    "__kernel void kd_planted_uninit(__global const float *x, __global float *y, int n)\n"
    "{\n"
    "    int i = (int)get_global_id(0);\n"
    "    if (i < n)\n"
    "        y[i] = 2.0f * x[i]; /* planted: x was never written */\n"
    "}\n";

enum { planted_n = 7 };

typedef struct planted_cl {
    cl_context c;
    cl_command_queue q;
    cl_program prog;
} planted_cl;

static int planted_open(planted_cl *p)
{
    cl_platform_id plat;
    cl_device_id dev;
    cl_int err = clGetPlatformIDs(1, &plat, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, NULL);
    if (err != CL_SUCCESS) {
        fprintf(stderr, "planted: no OpenCL device (%d)\n", err);
        return 1;
    }
    p->c = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    p->q = clCreateCommandQueue(p->c, dev, 0, &err);
    const char *src = planted_src;
    p->prog = clCreateProgramWithSource(p->c, 1, &src, NULL, &err);
    err = clBuildProgram(p->prog, 1, &dev, "", NULL, NULL);
    if (err != CL_SUCCESS)
        fprintf(stderr, "planted: program not built (%d)\n", err);
    return err != CL_SUCCESS;
}

static void planted_close(planted_cl *p)
{
    clReleaseProgram(p->prog);
    clReleaseCommandQueue(p->q);
    clReleaseContext(p->c);
}

/* Runs kernel `name` on x (planted_n floats) into a new buffer; 0 when it ran. */
static int planted_run(planted_cl *p, const char *name, cl_mem x)
{
    cl_int err;
    cl_kernel k = clCreateKernel(p->prog, name, &err);
    cl_mem y = clCreateBuffer(p->c, CL_MEM_WRITE_ONLY, planted_n * sizeof(float), NULL, &err);
    int n = planted_n;
    clSetKernelArg(k, 0, sizeof x, &x);
    clSetKernelArg(k, 1, sizeof y, &y);
    clSetKernelArg(k, 2, sizeof n, &n);
    size_t global = 8, local = 8;
    err = clEnqueueNDRangeKernel(p->q, k, 1, NULL, &global, &local, 0, NULL, NULL);
    clFinish(p->q);
    printf("planted: %s ran: %d\n", name, err);
    clReleaseMemObject(y);
    clReleaseKernel(k);
    return err != CL_SUCCESS;
}

/* --planted: an out-of-bounds read. */
static int run_planted_oob(void)
{
    planted_cl p;
    if (planted_open(&p))
        return 1;
    float host[planted_n] = {1, 2, 3, 4, 5, 6, 7};
    cl_int err;
    cl_mem x = clCreateBuffer(p.c, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof host, host, &err);
    int failed = planted_run(&p, "kd_planted_oob", x);
    clReleaseMemObject(x);
    planted_close(&p);
    return failed;
}

/* --planted-uninit: kd_planted_uninit reads a buffer that nothing wrote, created where a
 * written buffer was just released (oclgrind reuses the slot), and kd_planted_clean reads
 * a written buffer and one over host bytes (CL_MEM_USE_HOST_PTR, as the backend's weights
 * on a CPU device): the check must report the first and only it. */
static int run_planted_uninit(void)
{
    planted_cl p;
    if (planted_open(&p))
        return 1;
    float host[planted_n] = {1, 2, 3, 4, 5, 6, 7};
    const size_t bytes = sizeof host;
    cl_int err;
    cl_mem a = clCreateBuffer(p.c, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, host, &err);
    int failed = planted_run(&p, "kd_planted_clean", a);
    clReleaseMemObject(a);
    cl_mem b = clCreateBuffer(p.c, CL_MEM_READ_ONLY, bytes, NULL, &err);
    failed |= planted_run(&p, "kd_planted_uninit", b);
    clReleaseMemObject(b);
    cl_mem c = clCreateBuffer(p.c, CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR, bytes, host, &err);
    failed |= planted_run(&p, "kd_planted_clean", c);
    clReleaseMemObject(c);
    planted_close(&p);
    return failed;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* a crash under oclgrind still shows the last case */
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "--planted"))
        return run_planted_oob();
    if (!strcmp(mode, "--planted-uninit"))
        return run_planted_uninit();
    kd_context_options o = {.disable_cuda = 1};
    kd_context *ctx = NULL;
    if (kd_context_create(&o, &ctx) != KD_OK) {
        fprintf(stderr, "context: %s\n", kd_last_error(NULL));
        return 1;
    }
    if (!kd_backend_available(ctx, KD_BACKEND_OPENCL)) {
        fprintf(stderr, "OpenCL backend absent: %s\n", kd_backend_reason(ctx, KD_BACKEND_OPENCL));
        kd_context_destroy(ctx);
        return 1;
    }
    printf("opencl backend: %s\n", kd_backend_reason(ctx, KD_BACKEND_OPENCL));
    int failures;
    if (!strcmp(mode, "--cache")) {
        failures = run_case(ctx, KD_OP_RESIDUAL_ADD, 3, 7, 0, 0, 0);
    } else {
        failures = run_all(ctx);
    }
    kd_opencl_build_info info;
    if (kd_opencl_build_info_get(ctx, &info) == KD_OK)
        printf("from_cache=%d build_ms=%.0f cache_file=%s\n", info.from_cache, info.build_ms,
               info.cache_file);
    else
        failures++;
    printf("%d case(s) failed\n", failures);
    kd_context_destroy(ctx);
    return failures != 0;
}
