/* The OpenCL backend: any OpenCL 1.2 device through the ICD loader (PoCL's CPU device
 * where nothing else is installed). Device buffers are cl_mem; each op is one launch of
 * its single-row (M = 1) or batched kernel with the geometry of kd_launch_geometry, and
 * waits for it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cpu/cpu_ops.h"
#include "env.h"
#include "kd_blocks.h"
#include "kd_internal.h"
#include "kd_opencl_internal.h"
#include "op_traits.h"

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
    if (s->xq)
        clReleaseMemObject(s->xq);
    if (s->queue)
        clReleaseCommandQueue(s->queue);
    if (s->context)
        clReleaseContext(s->context);
    free(s->rope_host);
    free(s);
}

/* Address space an OpenCL driver needs to start and compile: PoCL maps its LLVM
 * libraries and starts worker threads (about 400 MB of address space with no limit), and
 * when a thread, thread-local data or LLVM's compile cannot get memory it aborts the
 * whole process ("LLVM ERROR: out of memory", exit 134). Under an address-space limit
 * (ulimit -v) with less room than this left, the backend is refused instead, with this
 * reason. Measured with PoCL 3.1 / LLVM 15 (tests/test_memory_limit.sh): aborts with
 * 340 MiB left at start-up, and with 424 MiB left when a kernel's final link (PoCL spawns
 * the linker at the first launch of each work-group size) finds no memory; runs with
 * 445 MiB and more. A heuristic with a margin, not a guarantee. */
#define KD_CL_DRIVER_HEADROOM ((uint64_t)512 << 20)

static int driver_has_room(char *why, size_t cap)
{
    struct rlimit r;
    unsigned long long pages = 0;
    if (getrlimit(RLIMIT_AS, &r) != 0 || r.rlim_cur == RLIM_INFINITY)
        return 1;
    FILE *f = fopen("/proc/self/statm", "r"); /* first field: the address space in pages */
    int got = f && fscanf(f, "%llu", &pages) == 1;
    if (f)
        fclose(f);
    if (!got)
        return 1;
    uint64_t used = (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t left = r.rlim_cur > used ? (uint64_t)r.rlim_cur - used : 0;
    if (left >= KD_CL_DRIVER_HEADROOM)
        return 1;
    snprintf(why, cap, "the address-space limit (ulimit -v %llu KiB) leaves %llu MiB, less than "
             "the %llu MiB an OpenCL driver needs to start (PoCL aborts the process when it "
             "cannot create its threads)", (unsigned long long)r.rlim_cur / 1024,
             (unsigned long long)(left >> 20), (unsigned long long)(KD_CL_DRIVER_HEADROOM >> 20));
    return 0;
}

/* The q8 GEMV kernels (gemv_q8.cl) come with the CPU-device shapes, and only with them. */
static int offers_q8(const kd_cl_state *s) { return s->dialect == KD_DIALECT_OPENCL; }

/* Whether the host has AVX-512 (F, BW) with VNNI, as the cpu backend reads it. A CPU
 * device is the host's CPU, but PoCL compiles for a named CPU whose feature list may lack
 * VNNI (skylake-avx512 does, on Zen 4 and Sapphire Rapids): -DKD_Q8_VNNI lets gemv_q8.cl
 * write vpdpbusd / vpdpwssd itself. */
static int host_has_avx512_vnni(void)
{
    int vnni = 0;
    return kd_cpu_simd_supported(&vnni) == KD_SIMD_AVX512 && (vnni & KD_VNNI_EVEX);
}

static kd_status cl_init(kd_context *ctx, void **state, char *why, size_t cap)
{
    if (!driver_has_room(why, cap))
        return KD_ERR_NOMEM;
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
        return status_of(err, KD_ERR_LAUNCH); /* the device is there: not "no driver" */
    }
    /* GEMV shapes (cl-kernels/kd_cl_geometry.h): CPU devices get one work-item per output
     * row; other devices the GPU shape, where geometry.c knows it, with the build option
     * that makes the kernels match it. */
    s->dialect = kd_opencl_backend.device[!(s->type & CL_DEVICE_TYPE_CPU)].dialect;
    snprintf(s->extra_options, sizeof s->extra_options, "%s",
             kd_context_settings(ctx)->opencl_options);
    s->q8_vnni = offers_q8(s) && host_has_avx512_vnni();
    /* KD_OPENCL_OPTIONS=-DKD_Q8_NO_VNNI undoes KD_Q8_VNNI (OpenCL build options have no -U).
     * -w: PoCL compiles in the caller's process and its compiler prints the count of its
     * warnings to stderr ("60 warnings generated.": -Wpsabi on every float16 in the
     * kernels, for CPU targets without AVX-512) on each first build; a library does not
     * write to its user's terminal. Errors still fail the build, with the log. */
    snprintf(s->options, sizeof s->options, "-cl-std=CL1.2 -w%s%s%s%s",
             s->dialect != KD_DIALECT_OPENCL ? " -DKD_CL_GPU_SHAPES=1" : "",
             s->q8_vnni ? " -DKD_Q8_VNNI" : "", s->extra_options[0] ? " " : "", s->extra_options);
    /* KD_OPENCL_GEMV=q8 applies to CPU devices (GPU shapes have the exact kernels alone) */
    s->gemv_q8 = kd_context_settings(ctx)->opencl_gemv_q8 && offers_q8(s);
    clGetDeviceInfo(s->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof s->max_alloc,
                    &s->max_alloc, NULL); /* 0 (no check) if the query fails */
    clGetDeviceInfo(s->device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof s->global_mem,
                    &s->global_mem, NULL);
    atomic_init(&s->allocated, 0);
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
    snprintf(buf, cap, "%s [%s] on %s: %s, driver %s, %u compute units, %s GEMV shape, "
             "GEMV %s%s%s%s%s", s->device_name, kd_cl_device_type_name(s->type), s->platform_name,
             s->device_version, s->driver_version, s->compute_units,
             s->dialect == KD_DIALECT_OPENCL ? "row-per-item" : "GPU",
             s->gemv_q8 ? "q8" : offers_q8(s) ? "exact (q8 selectable)" : "exact",
             s->q8_vnni ? ", q8 built for AVX-512 VNNI" : "",
             s->extra_options[0] ? ", build options '" : "", s->extra_options,
             s->extra_options[0] ? "' (KD_OPENCL_OPTIONS)" : "");
}

/* ---- memory ----------------------------------------------------------------------- */

/* Reserves bytes against the device's limits: 0, or -1 with why (then KD_ERR_TOO_LARGE,
 * and the dispatcher falls back to cpu). A CPU device's new buffers are host memory
 * (probe_host): a trial host allocation of the same size finds an address-space limit
 * (ulimit -v) that PoCL would otherwise hit by aborting. */
static int reserve(kd_cl_state *s, size_t bytes, int probe_host, char *why, size_t cap)
{
    if (s->max_alloc && bytes > s->max_alloc) {
        snprintf(why, cap, "more than the device's largest buffer (CL_DEVICE_MAX_MEM_ALLOC_SIZE "
                 "%llu bytes)", (unsigned long long)s->max_alloc);
        return -1;
    }
    uint64_t have = atomic_load(&s->allocated);
    do {
        if (s->global_mem && (have > s->global_mem || bytes > s->global_mem - have)) {
            snprintf(why, cap, "more than the device's free global memory (%llu of %llu bytes "
                     "in use)", (unsigned long long)have, (unsigned long long)s->global_mem);
            return -1;
        }
    } while (!atomic_compare_exchange_weak(&s->allocated, &have, have + bytes));
    if (probe_host && (s->type & CL_DEVICE_TYPE_CPU)) {
        void *probe = malloc(bytes + ((size_t)1 << 20)); /* PoCL adds its own bookkeeping */
        if (!probe) {
            atomic_fetch_sub(&s->allocated, bytes);
            snprintf(why, cap, "the host cannot allocate that much (the device's memory is "
                     "host memory)");
            return -1;
        }
        free(probe);
    }
    return 0;
}

/* A buffer of bytes reserved against the device's limits: a new one (host NULL, probed
 * on a CPU device), or one over the host's bytes (flags with CL_MEM_USE_HOST_PTR, which
 * allocate nothing). */
static kd_status new_buffer(kd_context *ctx, kd_cl_state *s, cl_mem_flags flags, void *host,
                            size_t bytes, void **buf)
{
    char why[256] = "larger than the address space";
    if (bytes > SIZE_MAX - ((size_t)1 << 20) ||
        reserve(s, bytes, host == NULL, why, sizeof why) != 0)
        return kd_error(ctx, KD_ERR_TOO_LARGE, "opencl: buffer of %zu bytes on '%s': %s", bytes,
                        s->device_name, why);
    cl_int err;
    cl_mem m = clCreateBuffer(s->context, flags, bytes, host, &err);
    if (err != CL_SUCCESS) {
        atomic_fetch_sub(&s->allocated, bytes);
        return kd_error(ctx, status_of(err, err == CL_INVALID_BUFFER_SIZE ? KD_ERR_TOO_LARGE
                                                                           : KD_ERR_NOMEM),
                        "opencl: clCreateBuffer(%zu bytes%s) on '%s' failed: %s", bytes,
                        host ? ", CL_MEM_USE_HOST_PTR" : "", s->device_name,
                        kd_cl_error_name(err));
    }
    *buf = m;
    return KD_OK;
}

/* The core counts KD_FAULT allocation faults before it calls alloc (tensor.c), so they
 * are not counted here a second time. */
static kd_status cl_alloc(kd_context *ctx, void *state, size_t bytes, void **buf)
{
    if (bytes == 0)
        return kd_error(ctx, KD_ERR_ZERO_SIZE, "opencl: buffer of 0 bytes");
    return new_buffer(ctx, state, CL_MEM_READ_WRITE, NULL, bytes, buf);
}

/* A CPU device reads the host's bytes where they are (CL_MEM_USE_HOST_PTR; PoCL uses the
 * pointer itself): the weights are not copied into a second buffer of their size, and
 * they keep the library's huge pages (host_mem.h). A GPU would read them across the bus
 * at every op: it gets its own copy (KD_ERR_UNAVAILABLE: alloc and upload). */
static kd_status cl_wrap_host(kd_context *ctx, void *state, const void *host, size_t bytes,
                              void **buf)
{
    kd_cl_state *s = state;
    if (!(s->type & CL_DEVICE_TYPE_CPU))
        return KD_ERR_UNAVAILABLE;
    /* the cast: OpenCL 1.2 takes a non-const host_ptr; CL_MEM_READ_ONLY keeps the kernels
     * from writing through it */
    return new_buffer(ctx, s, CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR, (void *)(uintptr_t)host,
                      bytes, buf);
}

static void cl_release(void *state, void *buf)
{
    kd_cl_state *s = state;
    size_t bytes = 0;
    if (!buf)
        return;
    if (clGetMemObjectInfo((cl_mem)buf, CL_MEM_SIZE, sizeof bytes, &bytes, NULL) == CL_SUCCESS)
        atomic_fetch_sub(&s->allocated, bytes);
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
    cl_release(s, *buf);
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
static kd_status geometry_in(kd_context *ctx, const kd_cl_state *s, kd_dialect dialect,
                             kd_op op, int64_t m, int64_t n, int64_t k, size_t kernel_wg_max,
                             const char *name, kd_launch *L)
{
    kd_device_limits lim = s->limits;
    if (kernel_wg_max < lim.max_threads_per_block)
        lim.max_threads_per_block = (uint32_t)kernel_wg_max;
    char why[256] = "";
    kd_status st = kd_launch_geometry(dialect, op, m, n, k, &lim, L, why, sizeof why);
    if (st != KD_OK)
        return kd_error(ctx, st, "opencl %s on '%s': %s", name, s->device_name, why);
    return KD_OK;
}

static kd_status geometry(kd_context *ctx, const kd_cl_state *s, kd_op op, int64_t m,
                          int64_t n, int64_t k, size_t kernel_wg_max, const char *name,
                          kd_launch *L)
{
    return geometry_in(ctx, s, s->dialect, op, m, n, k, kernel_wg_max, name, L);
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

/* Waits for the op's launches (st: how queueing them went). After a failed launch the
 * queue still drains: a queued pre-pass must not outlive the call. */
static kd_status wait_for_queue(kd_context *ctx, kd_cl_state *s, kd_status st, const char *name)
{
    if (st != KD_OK) {
        clFinish(s->queue);
        return st;
    }
    cl_int err = clFinish(s->queue);
    if (err != CL_SUCCESS)
        return kd_error(ctx, status_of(err, KD_ERR_LAUNCH), "opencl: clFinish after %s: %s",
                        name, kd_cl_error_name(err));
    return KD_OK;
}

/* The q8 GEMV path (cl-kernels/gemv_q8.cl): x quantized into s->xq, then the type's q8
 * kernel, both queued; run_locked waits. */
static kd_status run_q8_gemv(kd_context *ctx, kd_cl_state *s, const kd_call *c)
{
    int t = c->op == KD_OP_Q6K_GEMV;
    const char *qname = "kd_q8_quantize", *gname = t ? "kd_gemv_q6k_q8" : "kd_gemv_q4k_q8";
    int64_t nb = c->k / KD_QK_K;
    kd_launch Lq, Lg;
    kd_status st = scratch(ctx, s, &s->xq, &s->xq_bytes,
                           (size_t)c->m * (size_t)nb * sizeof(kd_block_q8));
    /* the quantizer: elementwise over a row's k/256 blocks, rows on y */
    if (st == KD_OK)
        st = geometry(ctx, s, KD_OP_RESIDUAL_ADD, c->m, nb, 0, s->q8_quantize_wg_max,
                      "q8 quantize", &Lq);
    if (st == KD_OK)
        st = geometry_in(ctx, s, KD_DIALECT_OPENCL_Q8, c->op, c->m, c->n, c->k,
                         s->q8_gemv_wg_max[t], gname, &Lg);
    if (st != KD_OK)
        return st;
    cl_args q = {ctx, s->q8_quantize_kernel, qname, 0, KD_OK};
    arg_mem(&q, c->src[1]);
    arg(&q, sizeof s->xq, &s->xq);
    arg_int(&q, c->k);
    arg_int(&q, c->m);
    arg_int(&q, !t); /* Q4_K: the sums of 32 times d (kd_block_q8.s.xm), else bsums */
    if (q.st != KD_OK || (st = enqueue(ctx, s, s->q8_quantize_kernel, qname, 2, &Lq)) != KD_OK)
        return q.st != KD_OK ? q.st : st;
    cl_args g = {ctx, s->q8_gemv_kernel[t], gname, 0, KD_OK};
    arg_mem(&g, c->src[0]);
    arg(&g, sizeof s->xq, &s->xq);
    arg_mem(&g, c->dst);
    arg_int(&g, c->n);
    arg_int(&g, c->k);
    arg_int(&g, c->m);
    if (g.st != KD_OK)
        return g.st;
    return enqueue(ctx, s, s->q8_gemv_kernel[t], gname, 2, &Lg);
}

/* KD_RUN_OPENCL_EXACT / KD_RUN_OPENCL_Q8 pick a GEMV path for one call; otherwise
 * KD_OPENCL_GEMV (default exact). 1: q8, 0: exact, -1: q8 asked of a device without it. */
static int gemv_runs_q8(const kd_cl_state *s, unsigned flags)
{
    if (flags & KD_RUN_OPENCL_EXACT)
        return 0;
    if (flags & KD_RUN_OPENCL_Q8)
        return s->q8_gemv_kernel[0] ? 1 : -1;
    return s->gemv_q8;
}

/* The op's own kernel (single-row or batched; for a single-row Q4_K GEMV its pre-pass
 * first), queued; run_locked waits. */
static kd_status run_kernel(kd_context *ctx, kd_cl_state *s, const kd_call *c, const char *name)
{
    int batched = c->m > 1;
    cl_kernel k = s->kernel[c->op][batched];
    kd_launch L;
    /* rope's CPU shape depends on head_dim, which it gets in k (geometry.c) */
    int64_t geom_k = c->op == KD_OP_ROPE ? c->head_dim : c->k;
    kd_status st = geometry(ctx, s, c->op, c->m, c->n, geom_k, s->kernel_wg_max[c->op][batched],
                            name, &L);
    if (st == KD_OK && c->op == KD_OP_Q4K_GEMV && !batched)
        st = xsum_prepass(ctx, s, c);
    if (st == KD_OK)
        st = set_args(ctx, s, c, k, name, batched);
    if (st == KD_OK)
        st = enqueue(ctx, s, k, name, batched ? 2 : 1, &L);
    return st;
}

/* Debug aid (scripts/gpu-check.sh): with KD_OPENCL_DUMP_BINARY=DIR, the first op after a
 * program is built or loaded writes the device's program binary (PTX text on NVIDIA's
 * OpenCL) to DIR/kdispatch-opencl-<device>.<ptx|bin>, once per program. Best effort: a
 * dump that fails never fails the op. */
static void dump_binary_once(kd_cl_state *s)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static cl_program dumped; /* the last program written */
    const char *dir = getenv("KD_OPENCL_DUMP_BINARY");
    if (!dir || !*dir || !s->program)
        return;
    pthread_mutex_lock(&lock);
    size_t len = 0;
    unsigned char *bin = NULL;
    if (dumped != s->program &&
        clGetProgramInfo(s->program, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) ==
            CL_SUCCESS && len > 0 && (bin = calloc(1, len + 1))) { /* + NUL for strstr */
        if (clGetProgramInfo(s->program, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) ==
            CL_SUCCESS) {
            char name[256], path[1024];
            snprintf(name, sizeof name, "%s", s->device_name);
            for (char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
                    *p = '_';
            int ptx = len > 8 && (strstr((const char *)bin, ".version") != NULL ||
                                  !strncmp((const char *)bin, "//", 2));
            snprintf(path, sizeof path, "%s/kdispatch-opencl-%s.%s", dir, name, ptx ? "ptx" : "bin");
            FILE *f = fopen(path, "wb");
            if (f) {
                if (fwrite(bin, 1, len, f) == len)
                    dumped = s->program;
                fclose(f);
            }
        }
    }
    free(bin);
    pthread_mutex_unlock(&lock);
}

static kd_status run_locked(kd_context *ctx, kd_cl_state *s, const kd_call *c)
{
    kd_status st = kd_cl_ensure_program(ctx, s);
    if (st != KD_OK)
        return st;
    dump_binary_once(s);
    if ((unsigned)c->op >= KD_OP_COUNT)
        return kd_error(ctx, KD_ERR_ARG, "opencl: unknown op %d", (int)c->op);
    /* the kernels take int sizes and index with int work-item ids */
    if (c->m > INT32_MAX || c->n > INT32_MAX || c->k > INT32_MAX ||
        (c->op == KD_OP_ROPE && c->m > INT32_MAX - c->head_dim))
        return kd_error(ctx, KD_ERR_TOO_LARGE, "opencl %s: m = %lld, n = %lld, k = %lld "
                        "exceed the kernels' 32-bit sizes", kd_op_name(c->op),
                        (long long)c->m, (long long)c->n, (long long)c->k);
    int gemv = kd_op_is_gemv(c->op), q8 = gemv ? gemv_runs_q8(s, c->flags) : 0;
    if (q8 < 0)
        return kd_error(ctx, KD_ERR_ARG, "opencl %s: the q8 GEMV path runs on CPU devices "
                        "only; '%s' is a %s", kd_op_name(c->op), s->device_name,
                        kd_cl_device_type_name(s->type));
    char name[64];
    snprintf(name, sizeof name, "%s%s", kd_op_name(c->op),
             q8 ? " q8" : c->m > 1 ? " batched" : "");
    if (kd_fault_hit(ctx, KD_BACKEND_OPENCL, KD_FAULT_LAUNCH))
        return kd_error(ctx, KD_ERR_LAUNCH, "opencl: injected launch fault (KD_FAULT) in %s",
                        name);
    st = wait_for_queue(ctx, s, q8 ? run_q8_gemv(ctx, s, c) : run_kernel(ctx, s, c, name), name);
    if (st == KD_OK && gemv)
        kd_metrics_add_gemv(&ctx->metrics, KD_BACKEND_OPENCL, !q8);
    return st;
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

static unsigned cl_gemv_paths(void *state, unsigned *default_path)
{
    const kd_cl_state *s = state;
    *default_path = s->gemv_q8 ? KD_GEMV_Q8 : KD_GEMV_EXACT;
    return offers_q8(s) ? KD_GEMV_EXACT | KD_GEMV_Q8 : KD_GEMV_EXACT;
}

const kd_backend_ops kd_opencl_backend = {
    .name = "opencl",
    .is_offload = 1,
    /* Defaults until `kdispatch tune` measures the machine. A CPU device (PoCL) runs on the
     * same cores as the cpu backend with more overhead: only very large elementwise ops,
     * and only when no GPU backend is present; never a GEMV, which the cpu's default q8
     * path runs faster at every size measured (M = 1 to 2048: 1.1-2x; the exact PoCL
     * kernels 2x slower at M = 2048, where 1 << 34 used to send them). A GPU pays ~10-30 us
     * per op for launch and synchronisation, which the cpu backend spends on ~1M elements
     * of an elementwise op or ~8M multiply-adds of a GEMV; OpenCL has more overhead than
     * CUDA (rank below it). */
    .device = {
        [0] = {.threshold_rowwise = UINT64_C(1) << 28, .threshold_gemv = 0 /* never */,
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
    .gemv_paths = cl_gemv_paths,
    .alloc = cl_alloc,
    .wrap_host = cl_wrap_host,
    .release = cl_release,
    .upload = cl_upload,
    .download = cl_download,
    .run = cl_run,
};
