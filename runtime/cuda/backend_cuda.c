/*
 * The cuda backend: NVIDIA GPUs through the CUDA driver API, loaded at run time
 * (cuda_driver.c), running the twelve kernels of cuda-kernels/ from the PTX embedded in
 * the library (the sm_90 PTX on compute capability 9.0 and up, the sm_80 PTX below).
 *
 * - init finds the driver and the device ($KD_CUDA_DEVICE, default 0) and retains its
 *   primary context; no driver, no device or a device below sm_80 is KD_ERR_UNAVAILABLE
 *   with the reason. The module is JIT-loaded at the first run, so that a build failure
 *   (or an injected one) is an offload failure the dispatcher falls back from.
 * - Every entry point makes the primary context current on the calling thread for the
 *   duration of the call (push/pop); runs are serialised by a mutex (module load, the
 *   rope position buffer) and wait for the device before returning.
 * - Every driver call is checked; a failure becomes kd_error() with the CUresult's name.
 * - Launch geometry comes from kd_launch_geometry(KD_DIALECT_CUDA, ...) with the device's
 *   limits; a batch taller than the grid's y limit runs in several launches.
 * - Device buffers are allocated KD_CU_OVERREAD_BYTES longer than asked: the Q6_K kernels
 *   copy whole aligned 16-byte pieces and may read up to 15 bytes past a weight's end.
 */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cuda-kernels/kd_cuda_geometry.h"
#include "geometry.h"
#include "kd_backend.h"
#include "env.h"
#include "kd_cuda_internal.h"
#include "op_traits.h"

typedef struct cuda_kernel {
    CUfunction fn;
    int shared_bytes; /* static shared memory, checked against the geometry */
} cuda_kernel;

typedef struct cuda_state {
    kd_cuda_driver drv;
    CUdevice dev;
    int ordinal;
    CUcontext cu; /* the device's primary context, retained */
    char name[256];
    int cc_major, cc_minor, sms, driver_version;
    size_t total_mem;
    kd_device_limits limits;
    const char *ptx, *ptx_name;

    pthread_mutex_t lock; /* everything below */
    CUmodule module;      /* NULL until the first run */
    cuda_kernel kernel[KD_OP_COUNT][2];
    CUdeviceptr pos_buf; /* rope positions of the batched kernel */
    size_t pos_cap;      /* positions it holds */
} cuda_state;

/* ---- errors and the current context ----------------------------------------------- */

/* Records a failed driver call: "cuda: <what> failed: CUDA_ERROR_... (description)". */
static kd_status cu_fail(kd_context *ctx, const cuda_state *s, kd_status st, CUresult r,
                         const char *what)
{
    char text[256];
    kd_cuda_error_text(&s->drv, r, text, sizeof text);
    return kd_error(ctx, st, "cuda: %s failed: %s", what, text);
}

static kd_status ctx_push(kd_context *ctx, cuda_state *s)
{
    CUresult r = s->drv.cuCtxPushCurrent(s->cu);
    return r == CUDA_SUCCESS ? KD_OK : cu_fail(ctx, s, KD_ERR_LAUNCH, r, "cuCtxPushCurrent");
}

static void ctx_pop(cuda_state *s)
{
    CUcontext popped;
    s->drv.cuCtxPopCurrent(&popped); /* cannot fail after a successful push */
}

/* ---- init ------------------------------------------------------------------------- */

static kd_status why_driver(const cuda_state *s, CUresult r, const char *what, char *why,
                            size_t cap)
{
    char text[256];
    kd_cuda_error_text(&s->drv, r, text, sizeof text);
    if (r == CUDA_ERROR_NO_DEVICE)
        snprintf(why, cap, "no CUDA device (%s: %s)", what, text);
    else
        snprintf(why, cap, "%s failed: %s", what, text);
    return KD_ERR_UNAVAILABLE;
}

static kd_status device_attribute(cuda_state *s, CUdevice_attribute a, const char *name,
                                  int *value, char *why, size_t cap)
{
    CUresult r = s->drv.cuDeviceGetAttribute(value, a, s->dev);
    return r == CUDA_SUCCESS ? KD_OK : why_driver(s, r, name, why, cap);
}

/* Which device: the one the context was asked for (kd_context_options.cuda_device, else
 * $KD_CUDA_DEVICE, validated as an index in env.c), else 0. */
static kd_status pick_device(int want, int count, int *ordinal, char *why, size_t cap)
{
    *ordinal = want < 0 ? 0 : want;
    if (want >= count) {
        snprintf(why, cap, "CUDA device %d was asked for (KD_CUDA_DEVICE or "
                 "kd_context_options.cuda_device) but the driver sees %d (0..%d)", want, count,
                 count - 1);
        return KD_ERR_UNAVAILABLE;
    }
    return KD_OK;
}

static kd_status read_limits(cuda_state *s, char *why, size_t cap)
{
    static const struct { CUdevice_attribute a; const char *name; } attrs[] = {
        {CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, "MAX_THREADS_PER_BLOCK"},
        {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, "MAX_BLOCK_DIM_X"},
        {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, "MAX_BLOCK_DIM_Y"},
        {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, "MAX_BLOCK_DIM_Z"},
        {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, "MAX_GRID_DIM_X"},
        {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, "MAX_GRID_DIM_Y"},
        {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, "MAX_GRID_DIM_Z"},
        {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, "MAX_SHARED_MEMORY_PER_BLOCK"},
    };
    int v[8];
    for (int i = 0; i < 8; i++) {
        kd_status st = device_attribute(s, attrs[i].a, attrs[i].name, &v[i], why, cap);
        if (st != KD_OK)
            return st;
    }
    s->limits.max_threads_per_block = (uint32_t)v[0];
    for (int i = 0; i < 3; i++) {
        s->limits.max_block[i] = (uint32_t)v[1 + i];
        s->limits.max_grid[i] = (uint64_t)v[4 + i];
    }
    s->limits.max_shared_bytes = (uint64_t)v[7];
    return KD_OK;
}

static kd_status open_device(cuda_state *s, int want, char *why, size_t cap)
{
    CUresult r = s->drv.cuInit(0);
    if (r != CUDA_SUCCESS)
        return why_driver(s, r, "cuInit", why, cap);
    int count = 0;
    if ((r = s->drv.cuDeviceGetCount(&count)) != CUDA_SUCCESS)
        return why_driver(s, r, "cuDeviceGetCount", why, cap);
    if (count <= 0) {
        snprintf(why, cap, "no CUDA device (the driver sees none)");
        return KD_ERR_UNAVAILABLE;
    }
    kd_status st = pick_device(want, count, &s->ordinal, why, cap);
    if (st != KD_OK)
        return st;
    if ((r = s->drv.cuDeviceGet(&s->dev, s->ordinal)) != CUDA_SUCCESS)
        return why_driver(s, r, "cuDeviceGet", why, cap);
    if ((r = s->drv.cuDeviceGetName(s->name, (int)sizeof s->name, s->dev)) != CUDA_SUCCESS)
        return why_driver(s, r, "cuDeviceGetName", why, cap);
    if ((r = s->drv.cuDeviceTotalMem(&s->total_mem, s->dev)) != CUDA_SUCCESS)
        return why_driver(s, r, "cuDeviceTotalMem", why, cap);
    if ((r = s->drv.cuDriverGetVersion(&s->driver_version)) != CUDA_SUCCESS)
        return why_driver(s, r, "cuDriverGetVersion", why, cap);
    if ((st = device_attribute(s, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "CC_MAJOR",
                               &s->cc_major, why, cap)) != KD_OK ||
        (st = device_attribute(s, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "CC_MINOR",
                               &s->cc_minor, why, cap)) != KD_OK ||
        (st = device_attribute(s, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "SM_COUNT",
                               &s->sms, why, cap)) != KD_OK ||
        (st = read_limits(s, why, cap)) != KD_OK)
        return st;
    if (s->cc_major < 8) {
        snprintf(why, cap, "device %d (%s) is sm_%d%d: the kernels need sm_80 or newer",
                 s->ordinal, s->name, s->cc_major, s->cc_minor);
        return KD_ERR_UNAVAILABLE;
    }
    s->ptx = s->cc_major >= 9 ? kd_cuda_ptx_sm_90 : kd_cuda_ptx_sm_80;
    s->ptx_name = s->cc_major >= 9 ? "sm_90" : "sm_80";
    if ((r = s->drv.cuDevicePrimaryCtxRetain(&s->cu, s->dev)) != CUDA_SUCCESS)
        return why_driver(s, r, "cuDevicePrimaryCtxRetain", why, cap);
    return KD_OK;
}

static kd_status cuda_init(kd_context *ctx, void **state, char *why, size_t cap)
{
    (void)ctx;
    cuda_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(why, cap, "out of host memory");
        return KD_ERR_NOMEM;
    }
    kd_status st = kd_cuda_driver_open(&s->drv, why, cap);
    if (st == KD_OK)
        st = open_device(s, kd_context_settings(ctx)->cuda_device, why, cap); /* on failure the driver stays loaded: cuInit ran */
    if (st != KD_OK) {
        free(s);
        return st;
    }
    pthread_mutex_init(&s->lock, NULL);
    *state = s;
    return KD_OK;
}

static void cuda_shutdown(void *state)
{
    cuda_state *s = state;
    if (!s)
        return;
    CUcontext popped;
    if (s->drv.cuCtxPushCurrent(s->cu) == CUDA_SUCCESS) {
        if (s->pos_buf)
            s->drv.cuMemFree(s->pos_buf);
        if (s->module)
            s->drv.cuModuleUnload(s->module);
        s->drv.cuCtxPopCurrent(&popped);
    }
    s->drv.cuDevicePrimaryCtxRelease(s->dev);
    pthread_mutex_destroy(&s->lock);
    free(s); /* the driver library stays loaded: see kd_cuda_driver_close */
}

static void cuda_describe(void *state, char *buf, size_t cap)
{
    const cuda_state *s = state;
    snprintf(buf, cap, "%s (device %d, sm_%d%d, %d SMs, %.1f GiB, CUDA driver %d.%d, %s PTX)",
             s->name, s->ordinal, s->cc_major, s->cc_minor, s->sms,
             (double)s->total_mem / (1024.0 * 1024.0 * 1024.0), s->driver_version / 1000,
             s->driver_version % 1000 / 10, s->ptx_name);
}

/* ---- devices as data -------------------------------------------------------------- */

static void fill_info(kd_cuda_driver *drv, int i, int version, kd_device_info *out)
{
    CUdevice dev;
    int major = 0, minor = 0, sms = 0;
    size_t mem = 0;
    if (drv->cuDeviceGet(&dev, i) != CUDA_SUCCESS)
        return;
    drv->cuDeviceGetName(out->name, (int)sizeof out->name, dev);
    drv->cuDeviceTotalMem(&mem, dev);
    drv->cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
    drv->cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
    drv->cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
    snprintf(out->vendor, sizeof out->vendor, "NVIDIA");
    snprintf(out->driver_version, sizeof out->driver_version, "CUDA %d.%d (sm_%d%d)",
             version / 1000, version % 1000 / 10, major, minor);
    out->is_gpu = 1;
    out->usable = major >= 8; /* the embedded PTX targets sm_80 and newer */
    out->global_mem_bytes = mem;
    out->compute_units = sms;
}

/* The driver's devices; no driver library or no device: none, not an error. */
static kd_status cuda_device_info(int index, kd_device_info *out, int *count, char *why,
                                  size_t cap)
{
    kd_cuda_driver drv;
    int version = 0;
    *count = 0;
    if (kd_cuda_driver_open(&drv, why, cap) != KD_OK)
        return KD_OK;
    CUresult r = drv.cuInit(0);
    if (r == CUDA_SUCCESS)
        r = drv.cuDeviceGetCount(count);
    if (r == CUDA_ERROR_NO_DEVICE) {
        *count = 0;
        return KD_OK;
    }
    if (r != CUDA_SUCCESS) {
        *count = 0;
        char text[256];
        kd_cuda_error_text(&drv, r, text, sizeof text);
        snprintf(why, cap, "cuda: %s", text);
        return KD_ERR_UNAVAILABLE;
    }
    drv.cuDriverGetVersion(&version);
    if (out && index >= 0 && index < *count)
        fill_info(&drv, index, version, out);
    return KD_OK;
}

/* ---- memory ----------------------------------------------------------------------- */

static kd_status cuda_alloc(kd_context *ctx, void *state, size_t bytes, void **buf)
{
    /* The allocation fault of a tensor buffer is injected by the caller (tensor.c);
     * this backend's own buffers inject theirs (ensure_pos_buf). */
    cuda_state *s = state;
    if (bytes > SIZE_MAX - KD_CU_OVERREAD_BYTES)
        return kd_error(ctx, KD_ERR_TOO_LARGE, "cuda: %zu bytes cannot be allocated", bytes);
    kd_status st = ctx_push(ctx, s);
    if (st != KD_OK)
        return st;
    CUdeviceptr p = 0;
    CUresult r = s->drv.cuMemAlloc(&p, bytes + KD_CU_OVERREAD_BYTES);
    ctx_pop(s);
    if (r != CUDA_SUCCESS) {
        char what[64];
        snprintf(what, sizeof what, "cuMemAlloc(%zu bytes)", bytes);
        return cu_fail(ctx, s, r == CUDA_ERROR_OUT_OF_MEMORY ? KD_ERR_NOMEM : KD_ERR_LAUNCH, r,
                       what);
    }
    *buf = (void *)(uintptr_t)p;
    return KD_OK;
}

static void cuda_release(void *state, void *buf)
{
    cuda_state *s = state;
    CUcontext popped;
    if (!buf || s->drv.cuCtxPushCurrent(s->cu) != CUDA_SUCCESS)
        return;
    s->drv.cuMemFree((CUdeviceptr)(uintptr_t)buf);
    s->drv.cuCtxPopCurrent(&popped);
}

static kd_status cuda_upload(kd_context *ctx, void *state, void *buf, const void *src,
                             size_t bytes)
{
    cuda_state *s = state;
    kd_status st = ctx_push(ctx, s);
    if (st != KD_OK)
        return st;
    CUresult r = s->drv.cuMemcpyHtoD((CUdeviceptr)(uintptr_t)buf, src, bytes);
    ctx_pop(s);
    if (r == CUDA_SUCCESS)
        return KD_OK;
    char what[64];
    snprintf(what, sizeof what, "cuMemcpyHtoD(%zu bytes)", bytes);
    return cu_fail(ctx, s, KD_ERR_LAUNCH, r, what);
}

static kd_status cuda_download(kd_context *ctx, void *state, void *buf, void *dst, size_t bytes)
{
    cuda_state *s = state;
    kd_status st = ctx_push(ctx, s);
    if (st != KD_OK)
        return st;
    CUresult r = s->drv.cuMemcpyDtoH(dst, (CUdeviceptr)(uintptr_t)buf, bytes);
    ctx_pop(s);
    if (r == CUDA_SUCCESS)
        return KD_OK;
    char what[64];
    snprintf(what, sizeof what, "cuMemcpyDtoH(%zu bytes)", bytes);
    return cu_fail(ctx, s, KD_ERR_LAUNCH, r, what);
}

/* ---- module ----------------------------------------------------------------------- */

static kd_status load_module(kd_context *ctx, cuda_state *s)
{
    if (s->module)
        return KD_OK;
    if (kd_fault_hit(ctx, KD_BACKEND_CUDA, KD_FAULT_BUILD))
        return kd_error(ctx, KD_ERR_BUILD, "cuda: injected build fault (KD_FAULT)");
    char err_log[8192] = "", info_log[4096] = "";
    CUjit_option opt[4] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                           CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES};
    void *val[4] = {err_log, (void *)(uintptr_t)sizeof err_log, info_log,
                    (void *)(uintptr_t)sizeof info_log};
    CUmodule m;
    CUresult r = s->drv.cuModuleLoadDataEx(&m, s->ptx, 4, opt, val);
    if (r != CUDA_SUCCESS) {
        char text[256];
        kd_cuda_error_text(&s->drv, r, text, sizeof text);
        return kd_error(ctx, KD_ERR_BUILD, "cuda: cuModuleLoadDataEx(%s PTX) failed: %s%s; "
                        "JIT log: %.4000s", s->ptx_name, text,
                        r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION
                            ? " (the driver is older than the nvcc that wrote the PTX)" : "",
                        err_log[0] ? err_log : "(empty)");
    }
    for (int op = 0; op < KD_OP_COUNT; op++)
        for (int b = 0; b < 2; b++) {
            cuda_kernel *k = &s->kernel[op][b];
            const char *name = kd_op_kernel_name((kd_op)op, b);
            char what[128];
            snprintf(what, sizeof what, "cuModuleGetFunction(%s)", name);
            if ((r = s->drv.cuModuleGetFunction(&k->fn, m, name)) == CUDA_SUCCESS) {
                snprintf(what, sizeof what, "cuFuncGetAttribute(%s, SHARED_SIZE_BYTES)", name);
                r = s->drv.cuFuncGetAttribute(&k->shared_bytes, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES,
                                              k->fn);
            }
            if (r != CUDA_SUCCESS) {
                s->drv.cuModuleUnload(m);
                return cu_fail(ctx, s, KD_ERR_BUILD, r, what);
            }
        }
    s->module = m;
    return KD_OK;
}

/* ---- launches --------------------------------------------------------------------- */

/* Device room for n rope positions (grown, never shrunk). */
static kd_status ensure_pos_buf(kd_context *ctx, cuda_state *s, size_t n)
{
    if (n <= s->pos_cap)
        return KD_OK;
    if (kd_fault_hit(ctx, KD_BACKEND_CUDA, KD_FAULT_ALLOC))
        return kd_error(ctx, KD_ERR_NOMEM, "cuda: injected allocation fault (KD_FAULT)");
    size_t want = n < 4096 ? 4096 : n;
    if (s->pos_buf)
        s->drv.cuMemFree(s->pos_buf);
    s->pos_buf = 0;
    s->pos_cap = 0;
    CUresult r = s->drv.cuMemAlloc(&s->pos_buf, want * sizeof(uint32_t));
    if (r != CUDA_SUCCESS)
        return cu_fail(ctx, s, r == CUDA_ERROR_OUT_OF_MEMORY ? KD_ERR_NOMEM : KD_ERR_LAUNCH, r,
                       "cuMemAlloc(rope positions)");
    s->pos_cap = want;
    return KD_OK;
}

/* One launch's operands: the call's rows [m0, m0 + m) and every kernel parameter. */
typedef struct launch_args {
    CUdeviceptr in0, in1, out, pos_buf;
    int n, k, m, n_heads, head_dim, mode;
    unsigned int pos0;
    float eps, base;
} launch_args;

static CUdeviceptr dptr(void *p) { return (CUdeviceptr)(uintptr_t)p; }

static void make_args(const kd_call *c, int64_t m0, int64_t m, launch_args *a)
{
    const CUdeviceptr f = sizeof(float);
    memset(a, 0, sizeof *a);
    a->n = (int)c->n;
    a->k = (int)c->k;
    a->m = (int)m;
    a->eps = c->eps > 0.0f ? c->eps : 1e-5f;
    a->base = c->rope_base > 0.0f ? c->rope_base : 10000.0f;
    a->n_heads = c->n_heads;
    a->head_dim = c->head_dim;
    a->mode = (int)c->rope_mode;
    a->pos0 = c->pos ? c->pos[m0] : 0;
    a->in0 = dptr(c->src[0]);
    a->in1 = dptr(c->src[1]);
    a->out = dptr(c->dst) + (CUdeviceptr)m0 * (CUdeviceptr)c->n * f;
    switch (c->op) {
    case KD_OP_RMSNORM: /* src[1] is the weight row */
    case KD_OP_ROPE:
        a->in0 += (CUdeviceptr)m0 * (CUdeviceptr)c->n * f;
        break;
    case KD_OP_Q4K_GEMV: /* src[0] is the weight */
    case KD_OP_Q6K_GEMV:
        a->in1 += (CUdeviceptr)m0 * (CUdeviceptr)c->k * f;
        break;
    default:
        a->in0 += (CUdeviceptr)m0 * (CUdeviceptr)c->n * f;
        a->in1 += (CUdeviceptr)m0 * (CUdeviceptr)c->n * f;
        break;
    }
}

/* The parameter list of kernel [op][batched], in the order the kernels declare them. */
static int fill_params(kd_op op, int batched, launch_args *a, void **p)
{
    int n = 0;
    switch (op) {
    case KD_OP_RMSNORM:
        p[n++] = &a->in0, p[n++] = &a->in1, p[n++] = &a->out, p[n++] = &a->n;
        if (batched)
            p[n++] = &a->m;
        p[n++] = &a->eps;
        break;
    case KD_OP_ROPE:
        p[n++] = &a->in0, p[n++] = &a->out, p[n++] = &a->n_heads, p[n++] = &a->head_dim;
        p[n++] = &a->base, p[n++] = &a->mode;
        if (batched)
            p[n++] = &a->pos_buf, p[n++] = &a->m;
        else
            p[n++] = &a->pos0;
        break;
    case KD_OP_Q4K_GEMV:
    case KD_OP_Q6K_GEMV:
        p[n++] = &a->in0, p[n++] = &a->in1, p[n++] = &a->out, p[n++] = &a->n, p[n++] = &a->k;
        if (batched)
            p[n++] = &a->m;
        break;
    default: /* swiglu, residual_add */
        p[n++] = &a->in0, p[n++] = &a->in1, p[n++] = &a->out, p[n++] = &a->n;
        if (batched)
            p[n++] = &a->m;
        break;
    }
    return n;
}

/* Rows [m0, m0 + m) of the call: one launch, then waits for it. */
static kd_status launch_rows(kd_context *ctx, cuda_state *s, const kd_call *c, int64_t m0,
                             int64_t m)
{
    const int batched = m > 1;
    const char *name = kd_op_kernel_name(c->op, batched);
    const cuda_kernel *k = &s->kernel[c->op][batched];
    kd_launch L;
    char why[256] = "";
    kd_status st = kd_launch_geometry(kd_cuda_backend.device[1].dialect, c->op, m, c->n, c->k, &s->limits, &L,
                                      why, sizeof why);
    if (st != KD_OK)
        return kd_error(ctx, st, "cuda: %s: %s", name, why);
    if (L.shared_bytes != (uint64_t)k->shared_bytes)
        return kd_error(ctx, KD_ERR_LAUNCH, "cuda: %s declares %d bytes of static shared memory, "
                        "the launch geometry %llu (kd_cuda_geometry.h and geometry.c disagree)",
                        name, k->shared_bytes, (unsigned long long)L.shared_bytes);

    launch_args a;
    make_args(c, m0, m, &a);
    if (c->op == KD_OP_ROPE && batched) {
        if ((st = ensure_pos_buf(ctx, s, (size_t)m)) != KD_OK)
            return st;
        CUresult r = s->drv.cuMemcpyHtoD(s->pos_buf, c->pos + m0, (size_t)m * sizeof(uint32_t));
        if (r != CUDA_SUCCESS)
            return cu_fail(ctx, s, KD_ERR_LAUNCH, r, "cuMemcpyHtoD(rope positions)");
        a.pos_buf = s->pos_buf;
    }
    void *params[10];
    fill_params(c->op, batched, &a, params);

    if (kd_fault_hit(ctx, KD_BACKEND_CUDA, KD_FAULT_LAUNCH))
        return kd_error(ctx, KD_ERR_LAUNCH, "cuda: injected launch fault (KD_FAULT)");
    CUresult r = s->drv.cuLaunchKernel(k->fn, (unsigned)L.grid[0], (unsigned)L.grid[1],
                                       (unsigned)L.grid[2], L.block[0], L.block[1], L.block[2],
                                       0, NULL, params, NULL);
    char what[160];
    if (r != CUDA_SUCCESS) {
        snprintf(what, sizeof what, "cuLaunchKernel(%s, grid %llux%llu, block %ux%u)", name,
                 (unsigned long long)L.grid[0], (unsigned long long)L.grid[1], L.block[0],
                 L.block[1]);
        return cu_fail(ctx, s, KD_ERR_LAUNCH, r, what);
    }
    if ((r = s->drv.cuCtxSynchronize()) != CUDA_SUCCESS) {
        snprintf(what, sizeof what, "%s (while running; cuCtxSynchronize)", name);
        return cu_fail(ctx, s, KD_ERR_LAUNCH, r, what);
    }
    return KD_OK;
}

/* Rows of x one launch can cover: grid y is the batch (GEMV: KD_CU_GEMV_MAX_M per y). */
static int64_t rows_per_launch(const cuda_state *s, kd_op op)
{
    int64_t y = (int64_t)s->limits.max_grid[1];
    return kd_op_is_gemv(op) ? y * KD_CU_GEMV_MAX_M : y;
}

static kd_status run_op(kd_context *ctx, cuda_state *s, const kd_call *c)
{
    const int64_t step = rows_per_launch(s, c->op);
    for (int64_t m0 = 0; m0 < c->m; m0 += step) {
        int64_t m = c->m - m0 < step ? c->m - m0 : step;
        kd_status st = launch_rows(ctx, s, c, m0, m);
        if (st != KD_OK)
            return st;
    }
    return KD_OK;
}

static kd_status cuda_run(kd_context *ctx, void *state, const kd_call *c)
{
    cuda_state *s = state;
    if (c->n > INT_MAX || c->k > INT_MAX || c->m > INT_MAX)
        return kd_error(ctx, KD_ERR_TOO_LARGE, "cuda: a dimension exceeds the kernels' "
                        "32-bit sizes (m=%lld n=%lld k=%lld)", (long long)c->m,
                        (long long)c->n, (long long)c->k);
    if (c->m <= 0 || c->n <= 0)
        return kd_error(ctx, KD_ERR_ZERO_SIZE, "cuda: empty op (m=%lld n=%lld)",
                        (long long)c->m, (long long)c->n);
    if (c->op == KD_OP_ROPE && !c->pos)
        return kd_error(ctx, KD_ERR_NULL, "cuda: rope without positions");
    pthread_mutex_lock(&s->lock);
    kd_status st = ctx_push(ctx, s);
    if (st == KD_OK) {
        st = load_module(ctx, s);
        if (st == KD_OK)
            st = run_op(ctx, s, c);
        ctx_pop(s);
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

const kd_backend_ops kd_cuda_backend = {
    .name = "cuda",
    .is_offload = 1,
    /* Every CUDA device is a GPU (device[0] stays "never"). A GPU pays ~10-30 us per op
     * for launch and synchronisation, which the cpu backend spends on ~1M elements of an
     * elementwise op or ~8M multiply-adds of a GEMV. The first choice for offloads. */
    .device = {[1] = {.threshold_rowwise = UINT64_C(1) << 20,
                      .threshold_gemv = UINT64_C(1) << 23, .rank = 3,
                      .dialect = KD_DIALECT_CUDA}},
    .assumed_gpu = 1,
    .init = cuda_init,
    .shutdown = cuda_shutdown,
    .describe = cuda_describe,
    .device_info = cuda_device_info,
    .alloc = cuda_alloc,
    .release = cuda_release,
    .upload = cuda_upload,
    .download = cuda_download,
    .run = cuda_run,
};
