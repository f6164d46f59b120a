/* ctest-labels: opencl */
/* The OpenCL backend (PoCL's CPU device on CI): all twelve kernels against the oracle and
 * the cpu backend, device choice by KD_OPENCL_PLATFORM / KD_OPENCL_DEVICE, build failures
 * reported with their log, the program binary cache, fault injection and the device list.
 * Without an OpenCL device (or built without OpenCL) it exits 77 with the reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kd_test_util.h"

#ifndef KD_HAVE_OPENCL
int main(void) { return kd_test_skip("kdispatch was built without the OpenCL backend"); }
#else

#include "cpu/cpu_ops.h"
#include "kd_internal.h"
#include "kd_row_groups.h"
#include "opencl/kd_opencl_internal.h"

static kd_context *ctx;
static char cache_dir[256];
static const int64_t batch_sizes[] = {1, 2, 7, 8, 33};

typedef kd_test_shape shape;

/* Row lengths that are not multiples of the local sizes (256 elementwise, 64 rmsnorm, 16
 * GEMV rows per group; on a GPU shape 4). */
static const shape ew_shapes[] = {{1, 0}, {7, 0}, {1000, 0}, {4099, 0}};
static const shape rope_shapes[] = {{42, 6}, {5 * 128, 128}, {3 * 64, 64}};
/* K = 8448: 264 sums of 32 in the single-row Q4_K pre-pass, more than one group of 256
 * work-items makes at one sum each (the CPU shape's elementwise geometry counts 16 per
 * item; with one per item sums 256.. were never written) */
static const shape gemv_shapes[] = {{1, 256}, {3, 768}, {67, 512}, {301, 2560}, {5, 8448}};

/* ---- environment helpers ---------------------------------------------------------- */

static kd_context *new_context(void)
{
    kd_context_options o = {.disable_cuda = 1};
    kd_context *c = NULL;
    if (kd_context_create(&o, &c) != KD_OK) {
        fprintf(stderr, "context: %s\n", kd_last_error(NULL));
        return NULL;
    }
    return c;
}

/* ---- kernels against the oracle and the cpu backend ------------------------------- */

static const kd_test_path opencl_path = {KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK, "opencl"};
static const kd_test_path cpu_exact = {KD_BACKEND_CPU, KD_RUN_CPU_EXACT, "cpu"};

/* 1 when the device offers the q8 path; on a GPU device the flag must be refused. */
static int device_has_q8(void)
{
    return (kd_backend_gemv_paths(ctx, KD_BACKEND_OPENCL, NULL) & KD_GEMV_Q8) != 0;
}

/* no fallback (opencl_path): a failing OpenCL launch must fail the test, not hide on cpu */
static void check_op_at(kd_op op, const shape *shapes, int nshapes, const int64_t *ms, int nms)
{
    kd_test_check_op(ctx, op, shapes, nshapes, ms, nms, 5000 + 1000 * (uint64_t)op, opencl_path,
                     cpu_exact);
}

#define N(a) ((int)(sizeof(a) / sizeof *(a)))
static void check_op(kd_op op, const shape *shapes, int nshapes)
{
    check_op_at(op, shapes, nshapes, batch_sizes, N(batch_sizes));
}
static void test_rmsnorm(void) { check_op(KD_OP_RMSNORM, ew_shapes, N(ew_shapes)); }
static void test_rope(void) { check_op(KD_OP_ROPE, rope_shapes, N(rope_shapes)); }
static void test_swiglu(void) { check_op(KD_OP_SWIGLU, ew_shapes, N(ew_shapes)); }
static void test_residual_add(void) { check_op(KD_OP_RESIDUAL_ADD, ew_shapes, N(ew_shapes)); }
static void test_q4k_gemv(void) { check_op(KD_OP_Q4K_GEMV, gemv_shapes, N(gemv_shapes)); }
static void test_q6k_gemv(void) { check_op(KD_OP_Q6K_GEMV, gemv_shapes, N(gemv_shapes)); }

/* The shapes the old kernels crashed on under PoCL's default work-group method (loopvec,
 * AVX-512 targets): an early return before a barrier in batched rmsnorm. Every M of 1..9
 * (no multiple of a rows-per-group count) on row lengths around the local sizes. */
static const int64_t odd_ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const shape odd_rows[] = {{1, 0}, {7, 0}, {31, 0}, {64, 0}, {255, 0}, {257, 0}, {4099, 0}};
static const shape odd_rope[] = {{2, 2}, {32, 8}, {254, 254}, {258, 6}, {4098, 6}};
static const shape odd_gemv[] = {{1, 256}, {17, 512}, {33, 256}};
static void test_odd_shapes_rmsnorm(void)
{
    check_op_at(KD_OP_RMSNORM, odd_rows, N(odd_rows), odd_ms, N(odd_ms));
}
static void test_odd_shapes_others(void)
{
    check_op_at(KD_OP_ROPE, odd_rope, N(odd_rope), odd_ms, N(odd_ms));
    check_op_at(KD_OP_SWIGLU, odd_rows, N(odd_rows), odd_ms, N(odd_ms));
    check_op_at(KD_OP_RESIDUAL_ADD, odd_rows, N(odd_rows), odd_ms, N(odd_ms));
    check_op_at(KD_OP_Q4K_GEMV, odd_gemv, N(odd_gemv), odd_ms, N(odd_ms));
    check_op_at(KD_OP_Q6K_GEMV, odd_gemv, N(odd_gemv), odd_ms, N(odd_ms));
}

/* Rope at positions far beyond the test problems' (up to 2^20): the angle stays accurate. */
static void test_rope_long_positions(void)
{
    for (int mode = 0; mode < 2; mode++) {
        kd_problem p;
        CU_ASSERT_FATAL(kd_problem_make(ctx, KD_OP_ROPE, 9, 4 * 128, 128, 77 + mode, &p) == 0);
        for (int i = 0; i < 9; i++)
            p.pos[i] = (uint32_t)((i * 123457u) % (1u << 20));
        p.d.rope_mode = (kd_rope_mode)mode;
        double *ref = kd_problem_oracle(&p);
        kd_status st;
        float *cl = kd_problem_run(ctx, &p, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK, &st);
        CU_ASSERT_FATAL(ref && cl);
        kd_cmp c;
        kd_compare_to_ref(cl, ref, p.out_count, KD_TOLERANCE, &c);
        printf("\n  rope mode %d, positions up to 2^20: max abs error %.3g, NMSE %.3g", mode,
               c.max_abs, c.nmse);
        CU_ASSERT(c.pass);
        free(ref);
        free(cl);
        kd_problem_free(&p);
    }
}

/* An op's output stays on the device for the next op (no transfer), and reading it back
 * moves exactly its bytes. */
static void test_residency(void)
{
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(ctx, KD_OP_RESIDUAL_ADD, 4, 100, 0, 11, &p) == 0);
    kd_tensor *y2 = NULL;
    CU_ASSERT_FATAL(kd_tensor_f32(ctx, 4, 100, NULL, &y2) == KD_OK);
    CU_ASSERT_FATAL(kd_run(ctx, &p.d, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK) == KD_OK);
    kd_metrics_snapshot a, b;
    kd_metrics_get(ctx, &a);
    kd_op_desc d2 = {.op = KD_OP_RESIDUAL_ADD, .src = {p.dst, p.dst}, .dst = y2};
    CU_ASSERT_FATAL(kd_run(ctx, &d2, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK) == KD_OK);
    kd_metrics_get(ctx, &b);
    CU_ASSERT_EQUAL(b.bytes_to_device, a.bytes_to_device);
    float out[400];
    CU_ASSERT_FATAL(kd_tensor_read(ctx, y2, out, 400) == KD_OK);
    kd_metrics_get(ctx, &a);
    CU_ASSERT_EQUAL(a.bytes_from_device, b.bytes_from_device + 400 * sizeof(float));
    for (int i = 0; i < 400; i++)
        CU_ASSERT_DOUBLE_EQUAL(out[i], 2.0f * (p.h_src[0][i] + p.h_src[1][i]), 1e-5);
    kd_tensor_free(y2);
    kd_problem_free(&p);
}

/* Quantized weights: a CPU device reads them where they are (CL_MEM_USE_HOST_PTR), so a
 * GEMV uploads only x; a GPU copies them once. Borrowed bytes at an address that is not
 * 64-byte aligned give the same outputs as the library's own copy. */
/* p's GEMV on the OpenCL device; *sent: the bytes it moved to the device (metrics). */
static float *run_counting_upload(kd_problem *p, uint64_t *sent)
{
    kd_metrics_snapshot a, b;
    kd_metrics_get(ctx, &a);
    kd_status st;
    float *y = kd_problem_run(ctx, p, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK, &st);
    kd_metrics_get(ctx, &b);
    *sent = b.bytes_to_device - a.bytes_to_device;
    return y;
}

/* p's GEMV on the OpenCL device again, with w in place of its weight (p frees w). */
static float *run_with_weight(kd_problem *p, kd_tensor *w)
{
    kd_tensor_free(p->src[0]);
    p->src[0] = w;
    p->d.src[0] = w;
    kd_status st;
    return kd_problem_run(ctx, p, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK, &st);
}

static void test_weights_in_place(void)
{
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(ctx, KD_OP_Q4K_GEMV, 2, 67, 512, 5, &p) == 0);
    const size_t xbytes = 2 * 512 * sizeof(float);
    const int cpu_device = !kd_backend_device_is_gpu(ctx->backend[KD_BACKEND_OPENCL].ops,
                                                     ctx->backend[KD_BACKEND_OPENCL].state);
    uint64_t sent;
    float *y0 = run_counting_upload(&p, &sent);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y0);
    printf("\n  %s device: %llu bytes to the device for %zu of x and %zu of weights",
           cpu_device ? "CPU" : "GPU", (unsigned long long)sent,
           xbytes, p.blocks_bytes);
    CU_ASSERT_EQUAL(sent, cpu_device ? xbytes : xbytes + p.blocks_bytes);
    /* the same bytes borrowed at 34 bytes past a 64-byte boundary */
    unsigned char *raw = malloc(p.blocks_bytes + 128);
    CU_ASSERT_FATAL(raw != NULL);
    unsigned char *odd = raw + (64 - (uintptr_t)raw % 64) + 34;
    memcpy(odd, p.h_blocks, p.blocks_bytes);
    kd_tensor *w = NULL;
    CU_ASSERT_FATAL(kd_tensor_quant_borrow(ctx, KD_TYPE_Q4_K, 67, 512, odd, p.blocks_bytes, &w) ==
                    KD_OK);
    float *y1 = run_with_weight(&p, w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y1);
    CU_ASSERT_EQUAL(memcmp(y0, y1, sizeof(float) * (size_t)p.out_count), 0);
    free(y0);
    free(y1);
    kd_problem_free(&p); /* frees w (before raw, which it borrows) */
    free(raw);
}

/* A weight the library copies with long rows is in the cpu's row groups (kd_row_groups.h);
 * a device gets it back in GGUF order through an upload, never wrapped in place, and its
 * outputs are the bits it gives for the same bytes borrowed in GGUF order. */
static void test_row_groups_uploaded_in_gguf_order(void)
{
    const int64_t n = 19, k = 256 * (KD_ROW_GROUP_MIN_BLOCKS + 1);
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(ctx, KD_OP_Q6K_GEMV, 2, n, k, 6, &p) == 0);
    CU_ASSERT_EQUAL_FATAL(p.src[0]->grouped_rows, 16);
    uint64_t sent;
    float *y0 = run_counting_upload(&p, &sent);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y0);
    CU_ASSERT_EQUAL(sent, 2 * k * sizeof(float) + p.blocks_bytes);
    kd_tensor *w = NULL;
    CU_ASSERT_FATAL(kd_tensor_quant_borrow(ctx, KD_TYPE_Q6_K, n, k, p.h_blocks, p.blocks_bytes, &w) ==
                    KD_OK);
    CU_ASSERT_EQUAL(w->grouped_rows, 0);
    float *y1 = run_with_weight(&p, w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y1);
    CU_ASSERT_EQUAL(memcmp(y0, y1, sizeof(float) * (size_t)p.out_count), 0);
    free(y0);
    free(y1);
    kd_problem_free(&p);
}

/* ---- device choice ---------------------------------------------------------------- */

/* A context's OpenCL state, or NULL if the backend is absent (reason printed). */
static int opencl_available(kd_context *c, const char *what)
{
    int ok = kd_backend_available(c, KD_BACKEND_OPENCL);
    printf("\n  %s: %s: %s", what, ok ? "available" : "absent",
           kd_backend_reason(c, KD_BACKEND_OPENCL));
    return ok;
}

static void device_name(char *buf, size_t cap)
{
    const char *r = kd_backend_reason(ctx, KD_BACKEND_OPENCL); /* "<name> [<type>] on ..." */
    const char *end = strstr(r, " [");
    size_t n = end ? (size_t)(end - r) : strlen(r);
    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), r);
}

static void test_select_by_index_and_name(void)
{
    char name[256], upper[256], sub[64];
    device_name(name, sizeof name);
    size_t len = strlen(name);
    for (size_t i = 0; i <= len; i++)
        upper[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
    /* a substring from the middle of the name, in upper case: case-insensitive match */
    snprintf(sub, sizeof sub, "%.*s", (int)(len > 6 ? 6 : len), upper + (len > 10 ? 2 : 0));

    const char *values[] = {"0", sub};
    for (int v = 0; v < 2; v++) {
        kd_test_env e = kd_test_env_set("KD_OPENCL_DEVICE", values[v]);
        kd_context *c = new_context();
        CU_ASSERT_FATAL(c != NULL);
        CU_ASSERT(opencl_available(c, values[v]));
        CU_ASSERT(strstr(kd_backend_reason(c, KD_BACKEND_OPENCL), name) != NULL);
        kd_context_destroy(c);
        kd_test_env_restore(&e);
    }
    kd_test_env e = kd_test_env_set("KD_OPENCL_PLATFORM", "0");
    kd_context *c = new_context();
    CU_ASSERT_FATAL(c != NULL);
    CU_ASSERT(opencl_available(c, "platform 0"));
    kd_context_destroy(c);
    kd_test_env_restore(&e);
}

static void test_select_no_match(void)
{
    char name[256];
    device_name(name, sizeof name);
    struct { const char *var, *value, *expect; } cases[] = {
        {"KD_OPENCL_DEVICE", "no-such-device-xyz", "matches no OpenCL device"},
        {"KD_OPENCL_DEVICE", "999", "matches no OpenCL device"},
        {"KD_OPENCL_PLATFORM", "no-such-platform-xyz", "matches no OpenCL platform"},
    };
    for (int i = 0; i < N(cases); i++) {
        kd_test_env e = kd_test_env_set(cases[i].var, cases[i].value);
        kd_context *c = new_context(); /* an absent backend is not a context error */
        CU_ASSERT_FATAL(c != NULL);
        CU_ASSERT(!opencl_available(c, cases[i].value));
        const char *why = kd_backend_reason(c, KD_BACKEND_OPENCL);
        CU_ASSERT(strstr(why, cases[i].var) != NULL);
        CU_ASSERT(strstr(why, cases[i].value) != NULL);
        CU_ASSERT(strstr(why, cases[i].expect) != NULL);
        if (strcmp(cases[i].var, "KD_OPENCL_DEVICE") == 0) /* it lists what exists */
            CU_ASSERT(strstr(why, name) != NULL);
        /* forcing the absent backend is a clear error, not a crash */
        kd_problem p;
        CU_ASSERT_FATAL(kd_problem_make(c, KD_OP_SWIGLU, 1, 10, 0, 3, &p) == 0);
        CU_ASSERT_EQUAL(kd_run(c, &p.d, KD_BACKEND_OPENCL, 0), KD_ERR_UNAVAILABLE);
        kd_problem_free(&p);
        kd_context_destroy(c);
        kd_test_env_restore(&e);
    }
}

/* ---- builds, cache, faults -------------------------------------------------------- */

static void test_build_failure_has_log(void)
{
    const char *bad = "__kernel void kd_broken(__global float *y)\n"
                      "{\n    y[0] = kd_undefined_name * 2.0f;\n}\n";
    kd_status st = kd_opencl_build_source(ctx, bad, "");
    const char *msg = kd_last_error(ctx);
    printf("\n  build failure message: %.300s", msg);
    CU_ASSERT_EQUAL(st, KD_ERR_BUILD);
    CU_ASSERT(strstr(msg, "CL_BUILD_PROGRAM_FAILURE") != NULL);
    CU_ASSERT(strstr(msg, "build log") != NULL);
    CU_ASSERT(strstr(msg, "kd_undefined_name") != NULL); /* the compiler's own words */
    const char *good = "__kernel void kd_fine(__global float *y) { y[0] = 1.0f; }\n";
    CU_ASSERT_EQUAL(kd_opencl_build_source(ctx, good, ""), KD_OK);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && sb.st_size > 0;
}

static int info_of(kd_context *c, kd_opencl_build_info *info)
{
    kd_status st = kd_opencl_build_info_get(c, info);
    if (st != KD_OK)
        printf("\n  build: %s", kd_last_error(c));
    return st == KD_OK;
}

/* A fresh cache directory: the first start compiles and writes the binary, the second
 * loads it; a corrupt file is rebuilt, not trusted. */
static void test_binary_cache(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/cache-test", cache_dir);
    kd_test_env e = kd_test_env_set("KD_CACHE_DIR", dir);
    kd_opencl_build_info first, second, third;

    kd_context *c = new_context();
    CU_ASSERT_FATAL(c && info_of(c, &first));
    kd_context_destroy(c);
    CU_ASSERT_EQUAL(first.from_cache, 0);
    CU_ASSERT(strncmp(first.cache_file, dir, strlen(dir)) == 0);
    CU_ASSERT(file_exists(first.cache_file));

    c = new_context();
    CU_ASSERT_FATAL(c && info_of(c, &second));
    CU_ASSERT_EQUAL(second.from_cache, 1);
    CU_ASSERT_STRING_EQUAL(second.cache_file, first.cache_file);
    printf("\n  program: compiled in %.1f ms, loaded from the cache in %.1f ms (%s)",
           first.build_ms, second.build_ms, second.cache_file);
    kd_problem p; /* the cached program computes */
    CU_ASSERT_FATAL(kd_problem_make(c, KD_OP_Q4K_GEMV, 2, 20, 512, 5, &p) == 0);
    CU_ASSERT(kd_test_run_matches_oracle(c, &p, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK,
                                         "cached program"));
    kd_problem_free(&p);
    kd_context_destroy(c);

    FILE *f = fopen(first.cache_file, "r+b"); /* corrupt the length field's first digit */
    CU_ASSERT_FATAL(f != NULL);
    char head[4096];
    size_t n = fread(head, 1, sizeof head - 1, f);
    head[n] = '\0';
    char *len = strstr(head, "binary=");
    CU_ASSERT_FATAL(len != NULL);
    fseek(f, (long)(len - head) + 7, SEEK_SET);
    fputc(len[7] == '1' ? '2' : '1', f);
    fclose(f);
    c = new_context();
    CU_ASSERT_FATAL(c && info_of(c, &third));
    CU_ASSERT_EQUAL(third.from_cache, 0);
    kd_context_destroy(c);
    c = new_context(); /* the rebuilt file is good again */
    CU_ASSERT_FATAL(c && info_of(c, &third));
    CU_ASSERT_EQUAL(third.from_cache, 1);
    kd_context_destroy(c);
    unlink(first.cache_file);
    rmdir(dir);
    kd_test_env_restore(&e);
}

/* KD_FAULT makes the n-th build / launch fail: the op falls back to cpu (counted) with the
 * right answer, or with KD_RUN_NO_FALLBACK returns the error. */
static void test_fault_injection(void)
{
    const char *specs[] = {"opencl:build:0:always", "opencl:launch:0:always",
                           "opencl:alloc:0:always"};
    const kd_status expect[] = {KD_ERR_BUILD, KD_ERR_LAUNCH, KD_ERR_NOMEM};
    for (int i = 0; i < N(specs); i++) {
        kd_test_env e = kd_test_env_set("KD_FAULT", specs[i]);
        kd_context *c = new_context();
        CU_ASSERT_FATAL(c != NULL);
        kd_problem p;
        CU_ASSERT_FATAL(kd_problem_make(c, KD_OP_Q6K_GEMV, 3, 10, 256, 8, &p) == 0);
        CU_ASSERT_EQUAL(kd_run(c, &p.d, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK), expect[i]);
        CU_ASSERT(strstr(kd_last_error(c), "injected") != NULL);
        if (device_has_q8()) { /* the q8 path meets the same faults */
            CU_ASSERT_EQUAL(kd_run(c, &p.d, KD_BACKEND_OPENCL,
                                   KD_RUN_NO_FALLBACK | KD_RUN_OPENCL_Q8), expect[i]);
            CU_ASSERT(strstr(kd_last_error(c), "injected") != NULL);
        }
        /* the fallback runs the cpu's exact path, held to the tight tolerance */
        CU_ASSERT(kd_test_run_matches_oracle(c, &p, KD_BACKEND_OPENCL, KD_RUN_CPU_EXACT,
                                             specs[i]));
        kd_metrics_snapshot m;
        kd_metrics_get(c, &m);
        CU_ASSERT(m.fallbacks >= 1);
        CU_ASSERT_EQUAL(kd_tensor_residency(p.dst), KD_BACKEND_CPU);
        kd_problem_free(&p);
        kd_context_destroy(c);
        kd_test_env_restore(&e);
    }
}

/* ---- devices and binary ----------------------------------------------------------- */

/* Devices as data: the device in use is in the list, with its properties filled, and
 * choosing it by its list index through the context options gives the same device. */
static void test_device_info(void)
{
    char name[256];
    device_name(name, sizeof name);
    int count = kd_device_count(KD_BACKEND_OPENCL), found = -1;
    CU_ASSERT_FATAL(count >= 1);
    for (int i = 0; i < count; i++) {
        kd_device_info d;
        CU_ASSERT_EQUAL_FATAL(kd_device_info_get(KD_BACKEND_OPENCL, i, &d), KD_OK);
        CU_ASSERT_EQUAL(d.backend, KD_BACKEND_OPENCL);
        CU_ASSERT_EQUAL(d.index, i);
        CU_ASSERT(d.name[0] && d.platform[0] && d.driver_version[0]);
        CU_ASSERT(d.compute_units > 0 && d.global_mem_bytes > 0);
        printf("\n  opencl %d: %s (%s, %s), %d units, %llu bytes%s", i, d.name, d.vendor,
               d.platform, d.compute_units, (unsigned long long)d.global_mem_bytes,
               d.is_gpu ? ", GPU" : "");
        if (found < 0 && strcmp(d.name, name) == 0)
            found = i;
    }
    CU_ASSERT_FATAL(found >= 0);
    kd_device_info d;
    CU_ASSERT_EQUAL(kd_device_info_get(KD_BACKEND_OPENCL, count, &d), KD_ERR_ARG);
    CU_ASSERT_EQUAL(kd_device_info_get(KD_BACKEND_OPENCL, -1, &d), KD_ERR_ARG);

    char idx[16];
    snprintf(idx, sizeof idx, "%d", found);
    kd_context_options o = {.disable_cuda = 1, .opencl_platform = "", .opencl_device = idx};
    kd_context *c = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_context_create(&o, &c), KD_OK);
    CU_ASSERT(opencl_available(c, idx));
    CU_ASSERT(strstr(kd_backend_reason(c, KD_BACKEND_OPENCL), name) != NULL);
    kd_context_destroy(c);
    /* a device the option names that does not exist: the message names the option */
    o.opencl_device = "no-such-device-xyz";
    CU_ASSERT_EQUAL_FATAL(kd_context_create(&o, &c), KD_OK);
    CU_ASSERT(!kd_backend_available(c, KD_BACKEND_OPENCL));
    CU_ASSERT(strstr(kd_backend_reason(c, KD_BACKEND_OPENCL), "kd_context_options.opencl_device") != NULL);
    kd_context_destroy(c);
}

static void test_program_binary(void)
{
    unsigned char *bin = NULL;
    size_t len = 0;
    char dev[256] = "";
    CU_ASSERT_EQUAL_FATAL(kd_opencl_program_binary(ctx, &bin, &len, dev, sizeof dev), KD_OK);
    CU_ASSERT(bin != NULL && len > 0);
    CU_ASSERT(dev[0] != '\0');
    printf("\n  program binary: %zu bytes for '%s'", len, dev);
    free(bin);
}

/* ---- main ------------------------------------------------------------------------- */

/* ---- GEMV: every batch size 1..9, odd row counts, rows past the prefetch distance ---- */

/* M = 1..9 (single-row, one pass of 8 and a partial one, the batched kernel's edge), N
 * not a multiple of the rows per group (16 CPU, 4 GPU) nor of 8, K of 1 block (the
 * CPU shape prefetches 16 blocks past it: a hint that must not fault) and of 17 blocks
 * (past the prefetch distance). */
static void check_gemv_all_m(kd_op op)
{
    static const shape shapes[] = {{1, 256}, {17, 4352}, {33, 256}, {5, 768}};
    for (int s = 0; s < N(shapes); s++)
        for (int64_t m = 1; m <= 9; m++) {
            kd_problem p;
            uint64_t seed = 9000 + 100 * (uint64_t)op + 10 * (uint64_t)s + (uint64_t)m;
            CU_ASSERT_FATAL(kd_problem_make(ctx, op, m, shapes[s].n, shapes[s].k, seed, &p) == 0);
            double *ref = kd_problem_oracle(&p);
            kd_status st_cl, st_cpu;
            float *cl = kd_problem_run(ctx, &p, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK, &st_cl);
            float *cpu = kd_problem_run(ctx, &p, KD_BACKEND_CPU, KD_RUN_CPU_EXACT, &st_cpu);
            if (!cl)
                printf("\n  %s M=%lld n=%lld k=%lld: %s\n", kd_op_name(op), (long long)m,
                       (long long)shapes[s].n, (long long)shapes[s].k, kd_last_error(ctx));
            CU_ASSERT_FATAL(ref && cl && cpu);
            kd_test_expect_match(&p, "opencl", cl, ref, cpu, "cpu");
            free(ref);
            free(cl);
            free(cpu);
            kd_problem_free(&p);
        }
}

static void test_q4k_gemv_all_m(void) { check_gemv_all_m(KD_OP_Q4K_GEMV); }
static void test_q6k_gemv_all_m(void) { check_gemv_all_m(KD_OP_Q6K_GEMV); }

/* ---- the q8 GEMV path (cl-kernels/gemv_q8.cl, CPU devices) --------------------------- */

/* opencl-q8 against the oracle (NMSE budget) and against cpu-q8: both quantize x with the
 * same float operations, so their integer sums are equal and the outputs differ only in
 * the order of the float sums, within the exact path's tolerance. 0 when it ran. */
static int check_q8_case_in(kd_context *c, kd_op op, int64_t m, int64_t n, int64_t k,
                            uint64_t seed, float scale)
{
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(c, op, m, n, k, seed, &p) == 0);
    double *ref = kd_problem_oracle(&p), *cpu_ref = malloc(sizeof(double) * (size_t)p.out_count);
    kd_status st_cl, st_cpu;
    float *cl = kd_problem_run(c, &p, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK | KD_RUN_OPENCL_Q8,
                               &st_cl);
    float *cpu = kd_problem_run(c, &p, KD_BACKEND_CPU, KD_RUN_CPU_Q8, &st_cpu);
    if (!cl)
        printf("\n  %s q8 M=%lld n=%lld k=%lld: %s\n", kd_op_name(op), (long long)m,
               (long long)n, (long long)k, kd_last_error(c));
    CU_ASSERT_FATAL(ref && cpu_ref && cl && cpu);
    for (int64_t i = 0; i < p.out_count; i++) {
        cl[i] *= scale; /* the negative test's planted error */
        cpu_ref[i] = cpu[i];
    }
    double max_rel, nmse = kd_test_nmse(cl, ref, p.out_count, &max_rel);
    kd_cmp vs_cpu;
    kd_compare_to_ref(cl, cpu_ref, p.out_count, KD_TOLERANCE, &vs_cpu);
    int ok = nmse <= KD_TEST_Q8_NMSE_BUDGET && vs_cpu.pass;
    if (!ok && scale == 1.0f)
        printf("\n  %s q8 M=%lld n=%lld k=%lld: nmse %.3g (max rel %.3g), vs cpu-q8 max abs "
               "%.3g\n", kd_op_name(op), (long long)m, (long long)n, (long long)k, nmse,
               max_rel, vs_cpu.max_abs);
    free(ref), free(cpu_ref), free(cl), free(cpu);
    kd_problem_free(&p);
    return ok;
}

static int check_q8_case(kd_op op, int64_t m, int64_t n, int64_t k, uint64_t seed, float scale)
{
    return check_q8_case_in(ctx, op, m, n, k, seed, scale);
}

/* M = 1..9 and 17 (three passes of 8 rows of x), N not a multiple of the 16 rows per
 * group, K from one block to more than 8192. */
static void check_q8_gemv(kd_op op)
{
    static const shape shapes[] = {{1, 256}, {37, 512}, {301, 2560}, {5, 8448}};
    static const int64_t ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17};
    /* The q8 kernels come with the CPU-device GEMV shapes only: the paths reported as data
     * agree with the shape the device line names, and below, with what the q8 flag does. */
    unsigned dflt = 0;
    int cpu_shapes = strstr(kd_backend_reason(ctx, KD_BACKEND_OPENCL), "row-per-item GEMV shape") != NULL;
    CU_ASSERT_EQUAL(kd_backend_gemv_paths(ctx, KD_BACKEND_OPENCL, &dflt),
                    cpu_shapes ? KD_GEMV_EXACT | KD_GEMV_Q8 : KD_GEMV_EXACT);
    CU_ASSERT_EQUAL(dflt, KD_GEMV_EXACT);
    if (!device_has_q8()) {
        kd_problem p;
        CU_ASSERT_FATAL(kd_problem_make(ctx, op, 1, 16, 256, 1, &p) == 0);
        kd_status st;
        float *y = kd_problem_run(ctx, &p, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK | KD_RUN_OPENCL_Q8,
                                  &st);
        CU_ASSERT(y == NULL && st == KD_ERR_ARG); /* a GPU device refuses the q8 path */
        free(y);
        kd_problem_free(&p);
        return;
    }
    for (int s = 0; s < N(shapes); s++)
        for (int mi = 0; mi < N(ms); mi++)
            CU_ASSERT(check_q8_case(op, ms[mi], shapes[s].n, shapes[s].k,
                                    7000 + 100 * (uint64_t)s + (uint64_t)mi, 1.0f));
}

static void test_q4k_q8(void) { check_q8_gemv(KD_OP_Q4K_GEMV); }
static void test_q6k_q8(void) { check_q8_gemv(KD_OP_Q6K_GEMV); }

/* The check above can fail: outputs 1e-3 too large stay inside the NMSE budget but not
 * inside the exact tolerance against cpu-q8; 5% too large fail both. */
static void test_q8_check_detects_error(void)
{
    if (!device_has_q8())
        return;
    CU_ASSERT(check_q8_case(KD_OP_Q4K_GEMV, 3, 37, 512, 5, 1.0f));
    CU_ASSERT(!check_q8_case(KD_OP_Q4K_GEMV, 3, 37, 512, 5, 1.01f));
    CU_ASSERT(!check_q8_case(KD_OP_Q6K_GEMV, 3, 37, 512, 5, 1.05f));
}

/* On a host with AVX-512 VNNI (and BW) a CPU device's q8 kernels are built with
 * -DKD_Q8_VNNI, and the device line says so; the suite's other q8 tests then run that
 * form, and this one the form every other AVX-512 host gets (KD_OPENCL_OPTIONS=
 * -DKD_Q8_NO_VNNI overrides the backend's -DKD_Q8_VNNI), on the same cases. */
static void test_q8_with_and_without_vnni(void)
{
    if (!device_has_q8())
        return;
    const char *line = kd_backend_reason(ctx, KD_BACKEND_OPENCL);
    int vnni = strstr(line, "q8 built for AVX-512 VNNI") != NULL;
    int bits = 0;
    int host_vnni = kd_cpu_simd_supported(&bits) == KD_SIMD_AVX512 && (bits & KD_VNNI_EVEX);
    CU_ASSERT_EQUAL(vnni, host_vnni && strstr(line, "[CPU]") != NULL);
    if (!vnni) {
        printf("\n  the device's q8 kernels have no VNNI form here (%s): the default form is "
               "the suite's; the VNNI form is not tested on this host\n", line);
        return;
    }
    kd_context_options o = {.disable_cuda = 1};
    kd_context *c = NULL;
    CU_ASSERT_FATAL(kd_test_context_under_env("KD_OPENCL_OPTIONS", "-DKD_Q8_NO_VNNI", &o, &c) == KD_OK);
    static const int64_t ms[] = {1, 3, 8, 9};
    for (int t = 0; t < 2; t++)
        for (int mi = 0; mi < N(ms); mi++) {
            kd_op op = t ? KD_OP_Q6K_GEMV : KD_OP_Q4K_GEMV;
            CU_ASSERT(check_q8_case_in(c, op, ms[mi], 37, 512, 9100 + (uint64_t)mi, 1.0f));
            CU_ASSERT(check_q8_case_in(c, op, ms[mi], 5, 8448, 9200 + (uint64_t)mi, 1.0f));
        }
    printf("\n  q8 kernels: the VNNI form in the suite's other tests, the form without it here");
    kd_context_destroy(c);
}

/* KD_OPENCL_GEMV=q8 makes q8 the default on a CPU device; the flags still pick a path per
 * call. */
static void test_q8_env_default(void)
{
    if (!device_has_q8())
        return;
    kd_context_options o = {.disable_cuda = 1};
    kd_context *c = NULL;
    CU_ASSERT_FATAL(kd_test_context_under_env("KD_OPENCL_GEMV", "q8", &o, &c) == KD_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_backend_reason(c, KD_BACKEND_OPENCL), "GEMV q8"));
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_backend_reason(ctx, KD_BACKEND_OPENCL), "GEMV exact"));
    unsigned dflt = 0;
    CU_ASSERT_EQUAL(kd_backend_gemv_paths(c, KD_BACKEND_OPENCL, &dflt), KD_GEMV_EXACT | KD_GEMV_Q8);
    CU_ASSERT_EQUAL(dflt, KD_GEMV_Q8);
    CU_ASSERT_EQUAL(kd_backend_gemv_paths(ctx, KD_BACKEND_OPENCL, &dflt), KD_GEMV_EXACT | KD_GEMV_Q8);
    CU_ASSERT_EQUAL(dflt, KD_GEMV_EXACT);
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(c, KD_OP_Q6K_GEMV, 3, 29, 512, 77, &p) == 0);
    kd_status st;
    kd_metrics_snapshot before, after;
    kd_metrics_get(c, &before);
    float *def = kd_problem_run(c, &p, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK, &st);
    float *q8 = kd_problem_run(c, &p, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK | KD_RUN_OPENCL_Q8, &st);
    float *ex = kd_problem_run(c, &p, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK | KD_RUN_OPENCL_EXACT,
                               &st);
    CU_ASSERT_FATAL(def && q8 && ex);
    /* the metrics count the calls per path: JSON and Prometheus */
    kd_metrics_get(c, &after);
    CU_ASSERT_EQUAL(after.opencl_gemv_q8 - before.opencl_gemv_q8, 2u);
    CU_ASSERT_EQUAL(after.opencl_gemv_exact - before.opencl_gemv_exact, 1u);
    CU_ASSERT_EQUAL(after.cpu_gemv_q8 + after.cpu_gemv_exact, before.cpu_gemv_q8 + before.cpu_gemv_exact);
    char text[16384], want[128];
    kd_metrics_export(c, "json", text, sizeof text);
    snprintf(want, sizeof want, "\"opencl_gemv\": {\"exact\": %llu, \"q8\": %llu}",
             (unsigned long long)after.opencl_gemv_exact, (unsigned long long)after.opencl_gemv_q8);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
    kd_metrics_export(c, "prom", text, sizeof text);
    snprintf(want, sizeof want, "kdispatch_gemv_calls_total{backend=\"opencl\",path=\"q8\"} %llu\n",
             (unsigned long long)after.opencl_gemv_q8);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
    size_t bytes = sizeof(float) * (size_t)p.out_count;
    CU_ASSERT(memcmp(def, q8, bytes) == 0);
    CU_ASSERT(memcmp(q8, ex, bytes) != 0); /* two different paths */
    free(def), free(q8), free(ex);
    kd_problem_free(&p);
    kd_context_destroy(c);
    kd_test_expect_env_refused("KD_OPENCL_GEMV", "fast", &o);
}

/* The CPU-device shapes' edges (cl-kernels/kd_cl_geometry.h): rope takes 4 whole heads per
 * work-item when head_dim / 16 <= 32 (head_dim 512 at the limit, 528 just past it: 8 pairs
 * per item), heads not a multiple of 4; rmsnorm takes 4 rows per work-item, M not a
 * multiple of 4, rows with a tail after the last float16 and rows longer than L2. */
static void test_cpu_shape_edges(void)
{
    static const int64_t ms[] = {1, 3, 5, 6};
    static const shape rope[] = {{5 * 512, 512}, {3 * 528, 528}, {7 * 16, 16}, {9 * 128, 128}};
    static const shape norm[] = {{16, 0}, {17, 0}, {16 * 1000 + 5, 0}, {300000, 0}};
    check_op_at(KD_OP_ROPE, rope, N(rope), ms, N(ms));
    check_op_at(KD_OP_RMSNORM, norm, N(norm), ms, N(ms));
}

static void remove_cache_dir(void)
{
    kd_opencl_build_info info;
    if (ctx && kd_opencl_build_info_get(ctx, &info) == KD_OK && info.cache_file[0])
        unlink(info.cache_file);
    char cmd[400]; /* PoCL's cache lives inside it too (POCL_CACHE_DIR) */
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", cache_dir);
    kd_test_system(cmd);
}

int main(void)
{
    /* a private cache directory: runs do not depend on (or fill) the user's cache */
    snprintf(cache_dir, sizeof cache_dir, "%s/kd-opencl-test-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(cache_dir)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("KD_CACHE_DIR", cache_dir, 1);
    unsetenv("KD_FAULT");
    ctx = new_context();
    if (!ctx)
        return 1;
    if (!kd_backend_available(ctx, KD_BACKEND_OPENCL)) {
        char why[700];
        snprintf(why, sizeof why, "OpenCL backend absent: %s",
                 kd_backend_reason(ctx, KD_BACKEND_OPENCL));
        kd_context_destroy(ctx);
        rmdir(cache_dir);
        return kd_test_skip(why);
    }
    printf("opencl backend: %s\n", kd_backend_reason(ctx, KD_BACKEND_OPENCL));
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("opencl", NULL, NULL);
    CU_add_test(s, "rmsnorm vs oracle and cpu", test_rmsnorm);
    CU_add_test(s, "rope vs oracle and cpu", test_rope);
    CU_add_test(s, "swiglu vs oracle and cpu", test_swiglu);
    CU_add_test(s, "residual_add vs oracle and cpu", test_residual_add);
    CU_add_test(s, "q4k_gemv vs oracle and cpu", test_q4k_gemv);
    CU_add_test(s, "q6k_gemv vs oracle and cpu", test_q6k_gemv);
    CU_add_test(s, "batched rmsnorm, M 1..9, odd rows (old loopvec crash)",
                test_odd_shapes_rmsnorm);
    CU_add_test(s, "other kernels, M 1..9, odd rows", test_odd_shapes_others);
    CU_add_test(s, "rope at long positions", test_rope_long_positions);
    CU_add_test(s, "outputs stay resident", test_residency);
    CU_add_test(s, "quantized weights in place on a CPU device", test_weights_in_place);
    CU_add_test(s, "row-grouped weights uploaded in GGUF order", test_row_groups_uploaded_in_gguf_order);
    CU_add_test(s, "device by index and name", test_select_by_index_and_name);
    CU_add_test(s, "device name that matches nothing", test_select_no_match);
    CU_add_test(s, "build failure reports the log", test_build_failure_has_log);
    CU_add_test(s, "binary cache", test_binary_cache);
    CU_add_test(s, "fault injection", test_fault_injection);
    CU_add_test(s, "devices as data", test_device_info);
    CU_add_test(s, "program binary", test_program_binary);
    CU_add_test(s, "q4k_gemv at M = 1..9, odd N", test_q4k_gemv_all_m);
    CU_add_test(s, "q6k_gemv at M = 1..9, odd N", test_q6k_gemv_all_m);
    CU_add_test(s, "rope and rmsnorm at the CPU shapes' edges", test_cpu_shape_edges);
    CU_add_test(s, "q4k q8 path vs oracle (nmse) and cpu-q8", test_q4k_q8);
    CU_add_test(s, "q6k q8 path vs oracle (nmse) and cpu-q8", test_q6k_q8);
    CU_add_test(s, "q8 checks detect errors", test_q8_check_detects_error);
    CU_add_test(s, "KD_OPENCL_GEMV and the path flags", test_q8_env_default);
    CU_add_test(s, "q8 kernels with and without AVX-512 VNNI", test_q8_with_and_without_vnni);
    int rc = kd_test_main();
    remove_cache_dir();
    kd_context_destroy(ctx);
    return rc;
}
#endif
