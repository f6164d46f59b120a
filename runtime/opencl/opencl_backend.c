/* The OpenCL backend: any OpenCL 1.2 device through the ICD loader (PoCL's CPU device
 * where nothing else is installed). Device buffers are cl_mem; each op is one launch of
 * its single-row (M = 1) or batched kernel with the geometry of kd_launch_geometry, and
 * waits for it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kd_opencl_internal.h"

static const char *device_type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU)
        return "GPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR)
        return "accelerator";
    return t & CL_DEVICE_TYPE_CPU ? "CPU" : "other";
}

/* OpenCL memory errors map to KD_ERR_NOMEM, the rest of a failed call to fallback. */
static kd_status status_of(cl_int err, kd_status otherwise)
{
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_HOST_MEMORY)
        return KD_ERR_NOMEM;
    return otherwise;
}

/* ---- init / shutdown -------------------------------------------------------------- */

static void release_state(kd_cl_state *s)
{
    kd_cl_release_program(s);
    if (s->rope_tab)
        clReleaseMemObject(s->rope_tab);
    if (s->xsum)
        clReleaseMemObject(s->xsum);
    if (s->queue)
        clReleaseCommandQueue(s->queue);
    if (s->context)
        clReleaseContext(s->context);
    free(s->rope_host);
    free(s);
}

static kd_status cl_init(kd_context *ctx, void **state, char *why, size_t cap)
{
    kd_cl_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(why, cap, "out of host memory");
        return KD_ERR_NOMEM;
    }
    kd_status st = kd_cl_choose_device(s, kd_context_settings(ctx), why, cap);
    if (st != KD_OK) {
        free(s);
        return st;
    }
    if (!s->opencl_c_12) {
        snprintf(why, cap, "device '%s' does not compile OpenCL C 1.2 (%s)", s->device_name,
                 s->device_version);
        free(s);
        return KD_ERR_UNAVAILABLE;
    }
    cl_bool little = CL_FALSE;
    cl_int err = clGetDeviceInfo(s->device, CL_DEVICE_ENDIAN_LITTLE, sizeof little, &little, NULL);
    if (err != CL_SUCCESS || !little) { /* GGUF blocks are little-endian, read as words */
        snprintf(why, cap, "device '%s' is not little-endian (%s): its kernels would misread "
                 "GGUF blocks", s->device_name, err == CL_SUCCESS ? "big-endian"
                                                                   : kd_cl_error_name(err));
        free(s);
        return KD_ERR_UNAVAILABLE;
    }
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)s->platform, 0};
    s->context = clCreateContext(props, 1, &s->device, NULL, NULL, &err);
    if (err == CL_SUCCESS)
        s->queue = clCreateCommandQueue(s->context, s->device, 0, &err);
    if (err != CL_SUCCESS) {
        snprintf(why, cap, "%s on '%s' failed: %s",
                 s->context ? "clCreateCommandQueue" : "clCreateContext", s->device_name,
                 kd_cl_error_name(err));
        release_state(s);
        return KD_ERR_UNAVAILABLE;
    }
    /* GEMV shapes (cl-kernels/kd_cl_geometry.h): CPU devices get one work-item per output
     * row; other devices the GPU shape, where geometry.c knows it, with the build option
     * that makes the kernels match it. */
    s->dialect = kd_opencl_backend.device[!(s->type & CL_DEVICE_TYPE_CPU)].dialect;
    snprintf(s->options, sizeof s->options, "-cl-std=CL1.2%s",
             s->dialect != KD_DIALECT_OPENCL ? " -DKD_CL_GPU_SHAPES=1" : "");
    pthread_mutex_init(&s->lock, NULL);
    *state = s;
    return KD_OK;
}

static void cl_shutdown(void *state)
{
    kd_cl_state *s = state;
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    release_state(s);
}

static void cl_describe(void *state, char *buf, size_t cap)
{
    const kd_cl_state *s = state;
    snprintf(buf, cap, "%s [%s] on %s: %s, driver %s, %u compute units, %s GEMV shape",
             s->device_name, device_type_name(s->type), s->platform_name, s->device_version,
             s->driver_version, s->compute_units,
             s->dialect == KD_DIALECT_OPENCL ? "row-per-item" : "GPU");
}

/* ---- memory ----------------------------------------------------------------------- */

/* The core counts KD_FAULT allocation faults before it calls alloc (tensor.c), so they
 * are not counted here a second time. */
static kd_status cl_alloc(kd_context *ctx, void *state, size_t bytes, void **buf)
{
    kd_cl_state *s = state;
    if (bytes == 0)
        return kd_error(ctx, KD_ERR_ZERO_SIZE, "opencl: buffer of 0 bytes");
    cl_int err;
    cl_mem m = clCreateBuffer(s->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS)
        return kd_error(ctx, status_of(err, err == CL_INVALID_BUFFER_SIZE ? KD_ERR_TOO_LARGE
                                                                           : KD_ERR_NOMEM),
                        "opencl: clCreateBuffer(%zu bytes) on '%s' failed: %s", bytes,
                        s->device_name, kd_cl_error_name(err));
    *buf = m;
    return KD_OK;
}

static void cl_release(void *state, void *buf)
{
    if (buf)
        clReleaseMemObject((cl_mem)buf);
}

static kd_status cl_upload(kd_context *ctx, void *state, void *buf, const void *src,
                           size_t bytes)
{
    kd_cl_state *s = state;
    cl_int err = clEnqueueWriteBuffer(s->queue, (cl_mem)buf, CL_TRUE, 0, bytes, src, 0, NULL,
                                      NULL);
    if (err != CL_SUCCESS)
        return kd_error(ctx, status_of(err, KD_ERR_LAUNCH),
                        "opencl: clEnqueueWriteBuffer(%zu bytes) failed: %s", bytes,
                        kd_cl_error_name(err));
    return KD_OK;
}

static kd_status cl_download(kd_context *ctx, void *state, void *buf, void *dst, size_t bytes)
{
    kd_cl_state *s = state;
    cl_int err = clEnqueueReadBuffer(s->queue, (cl_mem)buf, CL_TRUE, 0, bytes, dst, 0, NULL,
                                     NULL);
    if (err != CL_SUCCESS)
        return kd_error(ctx, status_of(err, KD_ERR_LAUNCH),
                        "opencl: clEnqueueReadBuffer(%zu bytes) failed: %s", bytes,
                        kd_cl_error_name(err));
    return KD_OK;
}

/* ---- kernel arguments ------------------------------------------------------------- */

typedef struct cl_args {
    kd_context *ctx;
    cl_kernel kernel;
    const char *name;
    cl_uint next;
    kd_status st;
} cl_args;

static void arg(cl_args *a, size_t size, const void *value)
{
    if (a->st != KD_OK)
        return;
    cl_int err = clSetKernelArg(a->kernel, a->next, size, value);
    if (err != CL_SUCCESS)
        a->st = kd_error(a->ctx, KD_ERR_LAUNCH, "opencl: clSetKernelArg(%s, %u) failed: %s",
                         a->name, a->next, kd_cl_error_name(err));
    a->next++;
}

static void arg_mem(cl_args *a, void *buf)
{
    cl_mem m = (cl_mem)buf;
    arg(a, sizeof m, &m);
}

static void arg_int(cl_args *a, int64_t v)
{
    cl_int x = (cl_int)v;
    arg(a, sizeof x, &x);
}

static void arg_float(cl_args *a, float v)
{
    cl_float x = v;
    arg(a, sizeof x, &x);
}

/* ---- scratch buffers -------------------------------------------------------------- */

/* Makes *buf (of *have bytes) hold at least need bytes: the backend's own buffers (rope
 * table, GEMV sums of x) grow and are kept for the next op. Counted as allocations for
 * KD_FAULT. */
static kd_status scratch(kd_context *ctx, kd_cl_state *s, cl_mem *buf, size_t *have,
                         size_t need)
{
    if (need <= *have)
        return KD_OK;
    if (*buf)
        clReleaseMemObject(*buf);
    *buf = NULL;
    *have = 0;
    if (kd_fault_hit(ctx, KD_BACKEND_OPENCL, KD_FAULT_ALLOC))
        return kd_error(ctx, KD_ERR_NOMEM, "opencl: injected allocation fault (KD_FAULT)");
    size_t want = need < 16384 ? 16384 : need;
    kd_status st = cl_alloc(ctx, s, want, (void **)buf);
    if (st == KD_OK)
        *have = want;
    return st;
}

/* ---- rope table ------------------------------------------------------------------- */

/* rope.cl's table: each frequency base^(-2i/D) in double, split into two floats (hi, lo),
 * then the m positions. Uploaded per call (a few KiB); the buffer grows as needed. */
static kd_status rope_table(kd_context *ctx, kd_cl_state *s, const kd_call *c)
{
    size_t npair = (size_t)c->head_dim / 2, words = 2 * npair + (size_t)c->m;
    if (words > s->rope_host_words) {
        uint32_t *h = realloc(s->rope_host, words * sizeof *h);
        if (!h)
            return kd_error(ctx, KD_ERR_NOMEM, "opencl: out of host memory (rope table)");
        s->rope_host = h;
        s->rope_host_words = words;
    }
    for (size_t i = 0; i < npair; i++) {
        double f = pow((double)c->rope_base, -2.0 * (double)i / (double)c->head_dim);
        float hi = (float)f, lo = (float)(f - (double)hi);
        memcpy(&s->rope_host[i], &hi, sizeof hi);
        memcpy(&s->rope_host[npair + i], &lo, sizeof lo);
    }
    memcpy(&s->rope_host[2 * npair], c->pos, (size_t)c->m * sizeof *c->pos);
    size_t bytes = words * sizeof(uint32_t);
    kd_status st = scratch(ctx, s, &s->rope_tab, &s->rope_tab_bytes, bytes);
    if (st != KD_OK)
        return st;
    /* not blocking: the host copy lives in the state and the op waits for the queue */
    cl_int err = clEnqueueWriteBuffer(s->queue, s->rope_tab, CL_FALSE, 0, bytes, s->rope_host,
                                      0, NULL, NULL);
    if (err != CL_SUCCESS)
        return kd_error(ctx, status_of(err, KD_ERR_LAUNCH),
                        "opencl: clEnqueueWriteBuffer(rope table) failed: %s",
                        kd_cl_error_name(err));
    return KD_OK;
}

/* ---- run -------------------------------------------------------------------------- */

static kd_status set_args(kd_context *ctx, kd_cl_state *s, const kd_call *c, cl_kernel k,
                          const char *name, int batched)
{
    cl_args a = {ctx, k, name, 0, KD_OK};
    switch (c->op) {
    case KD_OP_RMSNORM: /* x, w, y, n, eps */
        arg_mem(&a, c->src[0]);
        arg_mem(&a, c->src[1]);
        arg_mem(&a, c->dst);
        arg_int(&a, c->n);
        arg_float(&a, c->eps);
        break;
    case KD_OP_ROPE: { /* x, y, tab, n, head_dim, mode */
        kd_status st = rope_table(ctx, s, c);
        if (st != KD_OK)
            return st;
        arg_mem(&a, c->src[0]);
        arg_mem(&a, c->dst);
        arg_mem(&a, s->rope_tab);
        arg_int(&a, c->n);
        arg_int(&a, c->head_dim);
        arg_int(&a, c->rope_mode == KD_ROPE_NEOX);
        break;
    }
    case KD_OP_SWIGLU:       /* gate, up, y, n */
    case KD_OP_RESIDUAL_ADD: /* x, r, y, n */
        arg_mem(&a, c->src[0]);
        arg_mem(&a, c->src[1]);
        arg_mem(&a, c->dst);
        arg_int(&a, c->n);
        break;
    case KD_OP_Q4K_GEMV: /* w, x, y, n_rows, k; single-row: xsum */
    case KD_OP_Q6K_GEMV:
        arg_mem(&a, c->src[0]);
        arg_mem(&a, c->src[1]);
        arg_mem(&a, c->dst);
        arg_int(&a, c->n);
        arg_int(&a, c->k);
        if (c->op == KD_OP_Q4K_GEMV && !batched)
            arg(&a, sizeof s->xsum, &s->xsum);
        break;
    default:
        return kd_error(ctx, KD_ERR_ARG, "opencl: unknown op %d", (int)c->op);
    }
    if (batched)
        arg_int(&a, c->m); /* m_dim, always the last argument */
    return a.st;
}

/* Geometry of one kernel of op for the call's shape (m, n, k), within the device's and
 * the kernel's limits. */
static kd_status geometry(kd_context *ctx, const kd_cl_state *s, kd_op op, int64_t m,
                          int64_t n, int64_t k, size_t kernel_wg_max, const char *name,
                          kd_launch *L)
{
    kd_device_limits lim = s->limits;
    if (kernel_wg_max < lim.max_threads_per_block)
        lim.max_threads_per_block = (uint32_t)kernel_wg_max;
    char why[256] = "";
    kd_status st = kd_launch_geometry(s->dialect, op, m, n, k, &lim, L, why, sizeof why);
    if (st != KD_OK)
        return kd_error(ctx, st, "opencl %s on '%s': %s", name, s->device_name, why);
    return KD_OK;
}

static kd_status enqueue(kd_context *ctx, kd_cl_state *s, cl_kernel k, const char *name,
                         int dims, const kd_launch *L)
{
    size_t global[2] = {(size_t)(L->grid[0] * L->block[0]), (size_t)(L->grid[1] * L->block[1])};
    size_t local[2] = {L->block[0], L->block[1]};
    cl_int err = clEnqueueNDRangeKernel(s->queue, k, (cl_uint)dims, NULL, global, local, 0,
                                        NULL, NULL);
    if (err != CL_SUCCESS)
        return kd_error(ctx, status_of(err, KD_ERR_LAUNCH),
                        "opencl: clEnqueueNDRangeKernel(%s, global %zu x %zu, local %zu) "
                        "failed: %s", name, global[0], global[1], local[0],
                        kd_cl_error_name(err));
    return KD_OK;
}

/* The single-row Q4_K GEMV's pre-pass: the k/32 sums of x into s->xsum. It is an
 * elementwise kernel over k/32 values: the elementwise geometry. */
static kd_status xsum_prepass(kd_context *ctx, kd_cl_state *s, const kd_call *c)
{
    kd_status st = scratch(ctx, s, &s->xsum, &s->xsum_bytes,
                           (size_t)(c->k / 32) * sizeof(float));
    kd_launch L;
    if (st == KD_OK)
        st = geometry(ctx, s, KD_OP_RESIDUAL_ADD, 1, c->k / 32, 0, s->xsum_wg_max,
                      "q4k_gemv sums of x", &L);
    if (st != KD_OK)
        return st;
    cl_args a = {ctx, s->xsum_kernel, "kd_gemv_xsum", 0, KD_OK};
    arg_mem(&a, c->src[1]);
    arg(&a, sizeof s->xsum, &s->xsum);
    arg_int(&a, c->k);
    arg_int(&a, 1);
    if (a.st != KD_OK)
        return a.st;
    return enqueue(ctx, s, s->xsum_kernel, "kd_gemv_xsum", 2, &L);
}

static kd_status run_locked(kd_context *ctx, kd_cl_state *s, const kd_call *c)
{
    kd_status st = kd_cl_ensure_program(ctx, s);
    if (st != KD_OK)
        return st;
    if ((unsigned)c->op >= KD_OP_COUNT)
        return kd_error(ctx, KD_ERR_ARG, "opencl: unknown op %d", (int)c->op);
    /* the kernels take int sizes and index with int work-item ids */
    if (c->m > INT32_MAX || c->n > INT32_MAX || c->k > INT32_MAX ||
        (c->op == KD_OP_ROPE && c->m > INT32_MAX - c->head_dim))
        return kd_error(ctx, KD_ERR_TOO_LARGE, "opencl %s: m = %lld, n = %lld, k = %lld "
                        "exceed the kernels' 32-bit sizes", kd_op_name(c->op),
                        (long long)c->m, (long long)c->n, (long long)c->k);
    int batched = c->m > 1;
    cl_kernel k = s->kernel[c->op][batched];
    char name[64];
    snprintf(name, sizeof name, "%s%s", kd_op_name(c->op), batched ? " batched" : "");
    kd_launch L;
    if ((st = geometry(ctx, s, c->op, c->m, c->n, c->k, s->kernel_wg_max[c->op][batched],
                       name, &L)) != KD_OK)
        return st;
    if (kd_fault_hit(ctx, KD_BACKEND_OPENCL, KD_FAULT_LAUNCH))
        return kd_error(ctx, KD_ERR_LAUNCH, "opencl: injected launch fault (KD_FAULT) in %s",
                        name);
    if (c->op == KD_OP_Q4K_GEMV && !batched && (st = xsum_prepass(ctx, s, c)) != KD_OK)
        return st;
    if ((st = set_args(ctx, s, c, k, name, batched)) != KD_OK ||
        (st = enqueue(ctx, s, k, name, batched ? 2 : 1, &L)) != KD_OK) {
        clFinish(s->queue); /* a queued pre-pass must not outlive the call */
        return st;
    }
    cl_int err = clFinish(s->queue);
    if (err != CL_SUCCESS)
        return kd_error(ctx, status_of(err, KD_ERR_LAUNCH), "opencl: clFinish after %s: %s",
                        name, kd_cl_error_name(err));
    return KD_OK;
}

static kd_status cl_run(kd_context *ctx, void *state, const kd_call *c)
{
    kd_cl_state *s = state;
    pthread_mutex_lock(&s->lock);
    kd_status st = run_locked(ctx, s, c);
    pthread_mutex_unlock(&s->lock);
    return st;
}

static int cl_is_gpu(void *state)
{
    return (((const kd_cl_state *)state)->type & CL_DEVICE_TYPE_GPU) != 0;
}

const kd_backend_ops kd_opencl_backend = {
    .name = "opencl",
    .is_offload = 1,
    /* Defaults until `kdispatch tune` measures the machine. A CPU device (PoCL) runs on the
     * same cores as the cpu backend with more overhead: only very large ops, and only when
     * no GPU backend is present. A GPU pays ~10-30 us per op for launch and
     * synchronisation, which the cpu backend spends on ~1M elements of an elementwise op
     * or ~8M multiply-adds of a GEMV; OpenCL has more overhead than CUDA (rank below it). */
    .device = {
        [0] = {.threshold_rowwise = UINT64_C(1) << 28, .threshold_gemv = UINT64_C(1) << 34,
               .rank = 1, .dialect = KD_DIALECT_OPENCL},
        [1] = {.threshold_rowwise = UINT64_C(1) << 21, .threshold_gemv = UINT64_C(1) << 24,
               .rank = 2,
#ifdef KD_DIALECT_OPENCL_GPU
               .dialect = KD_DIALECT_OPENCL_GPU},
#else
               .dialect = KD_DIALECT_OPENCL},
#endif
    },
    .assumed_gpu = 0, /* until the device is known: PoCL on this kind of machine */
    .init = cl_init,
    .shutdown = cl_shutdown,
    .describe = cl_describe,
    .device_info = kd_cl_device_info,
    .is_gpu = cl_is_gpu,
    .alloc = cl_alloc,
    .release = cl_release,
    .upload = cl_upload,
    .download = cl_download,
    .run = cl_run,
};
