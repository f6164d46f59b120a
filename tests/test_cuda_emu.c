/* ctest-labels: cuda */
/*
 * The twelve CUDA kernels, checked on a machine without a GPU: cuda-kernels/kd_kernels.cu
 * is compiled here as host C against a small emulator of the CUDA execution model, and
 * every kernel's output is compared with the double-precision oracle.
 *
 * The emulator runs each thread of a block as a fiber (ucontext). __syncthreads() waits
 * for every live thread of the block, a warp shuffle waits for the 32 lanes of the warp
 * (twice: values posted, values read), so the warp-synchronous code runs as written. A
 * barrier that can never complete (a shuffle in a divergent branch, a lane that exited
 * before a shuffle) is reported as a deadlock. The memory helpers check the alignment
 * that the 8/16-byte accesses assume and that weight loads stay inside the weight buffer
 * plus KD_CU_OVERREAD_BYTES. The launch geometry is the library's own
 * (kd_launch_geometry), and a second run uses the tightest grid the kernels allow.
 *
 * What it cannot see: timing, memory-model races between blocks, real PTX. Those are
 * test_cuda.c (PTX, ptxas) and test_cuda_gpu.c (a real device).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "geometry.h"
#include "kd_quant.h"
#include "kd_test_util.h"

#if defined(__SANITIZE_THREAD__)
#define KD_EMU_UNSUPPORTED "ThreadSanitizer does not follow ucontext fibers"
#endif

/* ---- the emulator ----------------------------------------------------------------- */

typedef struct kd_emu_dim3 { unsigned int x, y, z; } kd_emu_dim3;

enum { EMU_RUN, EMU_WAIT_WARP, EMU_WAIT_BLOCK, EMU_DONE };

typedef struct emu_thread {
    ucontext_t ctx;
    kd_emu_dim3 tid;
    int state;
} emu_thread;

#define EMU_MAX_THREADS 1024
#define EMU_STACK (64 * 1024)
#define EMU_MAX_RANGES 4

static struct {
    kd_emu_dim3 grid, block, block_idx;
    emu_thread *th;
    int nth;
    char *stacks;
    ucontext_t sched;
    emu_thread *self;
    unsigned int slot[EMU_MAX_THREADS];
    void (*entry)(const void *);
    const void *args;
    const unsigned char *range_lo[EMU_MAX_RANGES], *range_hi[EMU_MAX_RANGES];
    int nranges;
    char error[512];
} emu;

static void emu_fail(const char *fmt, ...)
{
    if (emu.error[0])
        return; /* keep the first */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(emu.error, sizeof emu.error, fmt, ap);
    va_end(ap);
}

static void emu_yield(int state)
{
    emu_thread *t = emu.self;
    t->state = state;
    swapcontext(&t->ctx, &emu.sched);
}

static void emu_trampoline(void)
{
    emu.entry(emu.args);
    emu.self->state = EMU_DONE; /* returns to uc_link: the scheduler */
}

/* Releases the warps whose live lanes all wait at a shuffle, else the block when every
 * live thread waits at __syncthreads. Returns 0 when nothing can move (deadlock). */
static int emu_release(int *all_done)
{
    int done = 0, at_block = 0, released = 0;
    for (int i = 0; i < emu.nth; i++) {
        done += emu.th[i].state == EMU_DONE;
        at_block += emu.th[i].state == EMU_WAIT_BLOCK;
    }
    *all_done = done == emu.nth;
    if (*all_done)
        return 1;
    for (int w = 0; w < emu.nth; w += 32) {
        int lanes = emu.nth - w < 32 ? emu.nth - w : 32, waiting = 0;
        for (int l = 0; l < lanes; l++)
            waiting += emu.th[w + l].state == EMU_WAIT_WARP;
        if (waiting == lanes) {
            for (int l = 0; l < lanes; l++)
                emu.th[w + l].state = EMU_RUN;
            released = 1;
        }
    }
    if (!released && at_block > 0 && at_block == emu.nth - done) {
        for (int i = 0; i < emu.nth; i++)
            if (emu.th[i].state == EMU_WAIT_BLOCK)
                emu.th[i].state = EMU_RUN;
        released = 1;
    }
    return released;
}

static int emu_run_block(void)
{
    for (int i = 0; i < emu.nth; i++) {
        emu_thread *t = &emu.th[i];
        getcontext(&t->ctx);
        t->ctx.uc_stack.ss_sp = emu.stacks + (size_t)i * EMU_STACK;
        t->ctx.uc_stack.ss_size = EMU_STACK;
        t->ctx.uc_link = &emu.sched;
        makecontext(&t->ctx, emu_trampoline, 0);
        t->tid.x = (unsigned)i % emu.block.x;
        t->tid.y = (unsigned)i / emu.block.x % emu.block.y;
        t->tid.z = (unsigned)i / (emu.block.x * emu.block.y);
        t->state = EMU_RUN;
    }
    for (;;) {
        for (int i = 0; i < emu.nth; i++) {
            if (emu.th[i].state != EMU_RUN)
                continue;
            emu.self = &emu.th[i];
            swapcontext(&emu.sched, &emu.th[i].ctx);
        }
        int all_done;
        if (!emu_release(&all_done)) {
            emu_fail("deadlock in block (%u,%u): a barrier or shuffle that not every "
                     "thread reaches", emu.block_idx.x, emu.block_idx.y);
            return -1;
        }
        if (all_done)
            return 0;
    }
}

/* Runs entry(args) on every thread of grid x block; 0 or -1 with emu.error set. */
static int emu_launch(const uint64_t grid[3], const uint32_t block[3],
                      void (*entry)(const void *), const void *args)
{
    emu.nth = (int)(block[0] * block[1] * block[2]);
    if (emu.nth <= 0 || emu.nth > EMU_MAX_THREADS || emu.nth % 32) {
        emu_fail("block of %d threads (the kernels use whole warps)", emu.nth);
        return -1;
    }
    emu.th = calloc((size_t)emu.nth, sizeof *emu.th);
    emu.stacks = malloc((size_t)emu.nth * EMU_STACK);
    if (!emu.th || !emu.stacks) {
        emu_fail("out of memory");
        free(emu.th);
        free(emu.stacks);
        return -1;
    }
    emu.block = (kd_emu_dim3){block[0], block[1], block[2]};
    emu.grid = (kd_emu_dim3){(unsigned)grid[0], (unsigned)grid[1], (unsigned)grid[2]};
    emu.entry = entry;
    emu.args = args;
    int rc = 0;
    for (unsigned z = 0; z < emu.grid.z && rc == 0; z++)
        for (unsigned y = 0; y < emu.grid.y && rc == 0; y++)
            for (unsigned x = 0; x < emu.grid.x && rc == 0; x++) {
                emu.block_idx = (kd_emu_dim3){x, y, z};
                rc = emu_run_block();
            }
    free(emu.th);
    free(emu.stacks);
    emu.th = NULL;
    emu.stacks = NULL;
    return rc || emu.error[0] ? -1 : 0;
}

/* ---- CUDA built-ins as the kernels use them --------------------------------------- */

#define KD_CUDA_EMU 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__ restrict
#define __launch_bounds__(...)
#define threadIdx (emu.self->tid)
#define blockIdx (emu.block_idx)
#define blockDim (emu.block)
#define gridDim (emu.grid)
#define __syncthreads() emu_yield(EMU_WAIT_BLOCK)
#define __syncwarp() emu_yield(EMU_WAIT_WARP)
#define __align__(n) _Alignas(n)

typedef struct { _Alignas(16) float x; float y, z, w; } float4;
typedef struct { _Alignas(8) float x; float y; } float2;
typedef struct { _Alignas(16) unsigned int x; unsigned int y, z, w; } uint4;
typedef struct { _Alignas(8) unsigned int x; unsigned int y; } uint2;

static inline float4 make_float4(float x, float y, float z, float w) { return (float4){x, y, z, w}; }
static inline float2 make_float2(float x, float y) { return (float2){x, y}; }

static inline float __uint_as_float(unsigned int u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline unsigned int __float_as_uint(float f)
{
    unsigned int u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline unsigned int __byte_perm(unsigned int x, unsigned int y, unsigned int s)
{
    unsigned long long v = ((unsigned long long)y << 32) | x;
    unsigned int r = 0;
    for (int i = 0; i < 4; i++)
        r |= (unsigned int)((v >> (8 * ((s >> (4 * i)) & 7))) & 0xFF) << (8 * i);
    return r;
}

static inline void sincospif(float x, float *s, float *c)
{
    *s = (float)sin(3.14159265358979323846 * x);
    *c = (float)cos(3.14159265358979323846 * x);
}

enum { EMU_SHFL_XOR, EMU_SHFL_IDX, EMU_SHFL_DOWN };

/* Every lane posts its value, then reads its source lane's. */
static unsigned int emu_shfl(unsigned int mask, unsigned int v, int mode, int arg)
{
    if (mask != 0xffffffffu)
        emu_fail("shuffle with a partial mask");
    int self = (int)(emu.self - emu.th), base = self & ~31, lane = self & 31, src;
    switch (mode) {
    case EMU_SHFL_XOR: src = lane ^ arg; break;
    case EMU_SHFL_IDX: src = arg & 31; break;
    default: src = lane + arg < 32 ? lane + arg : lane; break;
    }
    emu.slot[self] = v;
    emu_yield(EMU_WAIT_WARP);
    unsigned int r = emu.slot[base + src];
    emu_yield(EMU_WAIT_WARP);
    return r;
}

static float emu_shfl_f(unsigned int mask, float v, int mode, int arg)
{
    return __uint_as_float(emu_shfl(mask, __float_as_uint(v), mode, arg));
}

static unsigned int emu_shfl_u(unsigned int mask, unsigned int v, int mode, int arg)
{
    return emu_shfl(mask, v, mode, arg);
}

#define EMU_SHFL(mask, v, mode, arg) \
    _Generic((v), float: emu_shfl_f, default: emu_shfl_u)(mask, v, mode, arg)
#define __shfl_xor_sync(mask, v, o) EMU_SHFL(mask, v, EMU_SHFL_XOR, o)
#define __shfl_sync(mask, v, l) EMU_SHFL(mask, v, EMU_SHFL_IDX, l)
#define __shfl_down_sync(mask, v, d) EMU_SHFL(mask, v, EMU_SHFL_DOWN, d)

static void emu_check_align(const void *p, unsigned int a, const char *what)
{
    if ((unsigned long long)p % a)
        emu_fail("%s at %p is not %u-byte aligned", what, p, a);
}

/* Weight loads must stay inside a registered buffer (+ KD_CU_OVERREAD_BYTES). */
static void emu_check_range(const void *p, size_t n, const char *what)
{
    const unsigned char *b = p;
    for (int i = 0; i < emu.nranges; i++)
        if (b >= emu.range_lo[i] && b + n <= emu.range_hi[i])
            return;
    emu_fail("%s of %zu bytes at %p is outside every weight buffer", what, n, p);
}

static inline float4 kd_ld_f4(const float *p)
{
    emu_check_align(p, 16, "float4 load");
    float4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void kd_st_f4(float *p, float4 v)
{
    emu_check_align(p, 16, "float4 store");
    memcpy(p, &v, sizeof v);
}

static inline float2 kd_ld_f2(const float *p)
{
    emu_check_align(p, 8, "float2 load");
    float2 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void kd_st_f2(float *p, float2 v)
{
    emu_check_align(p, 8, "float2 store");
    memcpy(p, &v, sizeof v);
}

static inline float4 kd_ldg_f4(const float *p) { return kd_ld_f4(p); }

static inline void kd_sts_u4(unsigned char *p, uint4 v)
{
    emu_check_align(p, 16, "16-byte shared store");
    memcpy(p, &v, sizeof v);
}

static inline unsigned int kd_lds_u32(const unsigned char *p)
{
    emu_check_align(p, 4, "4-byte shared load");
    unsigned int v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint4 kd_ld_stream_u4(const void *p)
{
    emu_check_align(p, 16, "16-byte weight load");
    emu_check_range(p, 16, "16-byte weight load");
    uint4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint2 kd_ld_stream_u2(const void *p)
{
    emu_check_align(p, 8, "8-byte weight load");
    emu_check_range(p, 8, "8-byte weight load");
    uint2 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* mma.m16n8k8 tf32: every lane posts its A and B fragment words, then computes its own
 * four D elements from them, with the PTX ISA's fragment layout (kd_cuda_util.cuh) and
 * the tensor core's arithmetic: inputs cut to tf32 (the low 13 bits dropped), the 8-term
 * sum of products exact (double here), one rounding when it is added to C. */
static unsigned int emu_mma_a[EMU_MAX_THREADS][4], emu_mma_b[EMU_MAX_THREADS][2];

static void kd_mma_tf32(float *d, const unsigned int *a, const unsigned int *b)
{
    int self = (int)(emu.self - emu.th), base = self & ~31, lane = self & 31;
    memcpy(emu_mma_a[self], a, sizeof emu_mma_a[self]);
    memcpy(emu_mma_b[self], b, sizeof emu_mma_b[self]);
    emu_yield(EMU_WAIT_WARP);
    const int g = lane / 4, t = lane % 4;
    for (int i = 0; i < 4; i++) {
        int row = g + 8 * (i / 2), col = 2 * t + i % 2;
        double sum = 0.0;
        for (int kk = 0; kk < 8; kk++) {
            /* A[row][kk]: lane (row % 8) * 4 + kk % 4, register (row >= 8) + 2 (kk >= 4) */
            unsigned int av = emu_mma_a[base + (row % 8) * 4 + kk % 4][(row >= 8) + 2 * (kk >= 4)];
            /* B[kk][col]: lane col * 4 + kk % 4, register kk >= 4 */
            unsigned int bv = emu_mma_b[base + col * 4 + kk % 4][kk >= 4];
            sum += (double)__uint_as_float(av & 0xFFFFE000u) * (double)__uint_as_float(bv & 0xFFFFE000u);
        }
        d[i] = (float)((double)d[i] + sum);
    }
    emu_yield(EMU_WAIT_WARP);
}

/* ---- the kernels, as host C ------------------------------------------------------- */

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#include "../cuda-kernels/kd_kernels.cu"
#include "op_traits.h"
#pragma GCC diagnostic pop

/* One argument block for every kernel; each entry unpacks what its kernel takes. */
typedef struct emu_args {
    const void *in[2];
    float *y;
    const unsigned int *pos;
    int n, k, m, n_heads, head_dim, mode;
    float eps, base;
} emu_args;

#define A ((const emu_args *)v)
static void e_rmsnorm(const void *v) { kd_rmsnorm_f32(A->in[0], A->in[1], A->y, A->n, A->eps); }
static void e_rmsnorm_b(const void *v)
{
    kd_rmsnorm_f32_batched(A->in[0], A->in[1], A->y, A->n, A->m, A->eps);
}
static void e_rope(const void *v)
{
    kd_rope_f32(A->in[0], A->y, A->n_heads, A->head_dim, A->base, A->mode, A->pos[0]);
}
static void e_rope_b(const void *v)
{
    kd_rope_f32_batched(A->in[0], A->y, A->n_heads, A->head_dim, A->base, A->mode, A->pos, A->m);
}
static void e_swiglu(const void *v) { kd_swiglu_f32(A->in[0], A->in[1], A->y, A->n); }
static void e_swiglu_b(const void *v) { kd_swiglu_f32_batched(A->in[0], A->in[1], A->y, A->n, A->m); }
static void e_resadd(const void *v) { kd_residual_add_f32(A->in[0], A->in[1], A->y, A->n); }
static void e_resadd_b(const void *v)
{
    kd_residual_add_f32_batched(A->in[0], A->in[1], A->y, A->n, A->m);
}
static void e_q4k(const void *v) { kd_gemv_q4k(A->in[0], A->in[1], A->y, A->n, A->k); }
static void e_q4k_b(const void *v) { kd_gemv_q4k_batched(A->in[0], A->in[1], A->y, A->n, A->k, A->m); }
static void e_q6k(const void *v) { kd_gemv_q6k(A->in[0], A->in[1], A->y, A->n, A->k); }
static void e_q6k_b(const void *v) { kd_gemv_q6k_batched(A->in[0], A->in[1], A->y, A->n, A->k, A->m); }
#undef A

static void (*const emu_entry[KD_OP_COUNT][2])(const void *) = {
    [KD_OP_RMSNORM] = {e_rmsnorm, e_rmsnorm_b},   [KD_OP_ROPE] = {e_rope, e_rope_b},
    [KD_OP_SWIGLU] = {e_swiglu, e_swiglu_b},      [KD_OP_RESIDUAL_ADD] = {e_resadd, e_resadd_b},
    [KD_OP_Q4K_GEMV] = {e_q4k, e_q4k_b},          [KD_OP_Q6K_GEMV] = {e_q6k, e_q6k_b},
};

/* ---- test cases ------------------------------------------------------------------- */

static const kd_device_limits h100_limits = {
    .max_threads_per_block = 1024,
    .max_block = {1024, 1024, 64},
    .max_grid = {2147483647u, 65535, 65535},
    .max_shared_bytes = 48 * 1024,
};

/* The smallest grid x the kernels cover a row with (the geometry proposed for
 * runtime/geometry.c: KD_CU_EW_VEC elements per thread, ROWS_PER_BLOCK GEMV rows). */
static uint64_t tight_grid_x(kd_op op, int64_t n)
{
    switch (op) {
    case KD_OP_RMSNORM: return 1;
    case KD_OP_ROPE: return (uint64_t)(n / 2 + KD_CU_EW_BLOCK - 1) / KD_CU_EW_BLOCK;
    case KD_OP_Q4K_GEMV:
    case KD_OP_Q6K_GEMV:
        return (uint64_t)(n + KD_CU_GEMV_ROWS_PER_BLOCK - 1) / KD_CU_GEMV_ROWS_PER_BLOCK;
    default: {
        uint64_t per_block = (uint64_t)KD_CU_EW_BLOCK * KD_CU_EW_VEC;
        return ((uint64_t)n + per_block - 1) / per_block;
    }
    }
}

typedef struct emu_case {
    kd_op op;
    int64_t m, n, k; /* k: GEMV K, rope head_dim */
    int mode;        /* rope */
} emu_case;


/* Inputs, oracle and both launches of one case; returns the number of failures. */
static int run_case(const emu_case *c, uint64_t seed)
{
    kd_rng rng;
    kd_rng_seed(&rng, seed);
    const int gemv = kd_op_is_gemv(c->op);
    const kd_type qt = c->op == KD_OP_Q4K_GEMV ? KD_TYPE_Q4_K : KD_TYPE_Q6_K;
    const int64_t in_cols = gemv ? c->k : c->n;
    const int64_t out_count = c->m * c->n;
    size_t wbytes = gemv ? (size_t)c->n * kd_quant_row_bytes(qt, c->k) : 0;

    float *x = malloc(sizeof(float) * (size_t)(c->m * in_cols));
    float *x2 = malloc(sizeof(float) * (size_t)(c->m * c->n));
    unsigned char *wq = gemv ? malloc(wbytes + KD_CU_OVERREAD_BYTES) : NULL;
    unsigned int *pos = malloc(sizeof(unsigned int) * (size_t)c->m);
    float *y = malloc(sizeof(float) * (size_t)out_count);
    double *ref = malloc(sizeof(double) * (size_t)out_count);
    if (!x || !x2 || (gemv && !wq) || !pos || !y || !ref) {
        CU_FAIL("out of memory");
        return 1;
    }
    kd_fill_uniform(&rng, x, c->m * in_cols, -2.0f, 2.0f);
    kd_fill_uniform(&rng, x2, c->m * c->n, -2.0f, 2.0f);
    for (int64_t i = 0; i < c->m; i++)
        pos[i] = (unsigned int)(kd_rng_next(&rng) % 4096);
    if (gemv) {
        kd_quant_random_blocks(qt, c->n * (c->k / KD_QK_K), kd_rng_next(&rng), wq);
        memset(wq + wbytes, 0xA5, KD_CU_OVERREAD_BYTES);
    }

    emu_args a = {.n = (int)c->n, .k = (int)c->k, .m = (int)c->m, .eps = 1e-5f,
                  .base = 10000.0f, .pos = pos, .y = y};
    switch (c->op) {
    case KD_OP_RMSNORM:
        a.in[0] = x, a.in[1] = x2; /* w = first row of x2 */
        kd_oracle_rmsnorm(x, x2, c->m, c->n, 1e-5, ref);
        break;
    case KD_OP_ROPE:
        a.in[0] = x, a.head_dim = (int)c->k, a.n_heads = (int)(c->n / c->k), a.mode = c->mode;
        kd_oracle_rope(x, pos, c->m, a.n_heads, a.head_dim, 10000.0, (kd_rope_mode)c->mode, ref);
        break;
    case KD_OP_SWIGLU:
        a.in[0] = x, a.in[1] = x2;
        kd_oracle_swiglu(x, x2, out_count, ref);
        break;
    case KD_OP_RESIDUAL_ADD:
        a.in[0] = x, a.in[1] = x2;
        kd_oracle_residual_add(x, x2, out_count, ref);
        break;
    default:
        a.in[0] = wq, a.in[1] = x;
        kd_oracle_gemv(qt, wq, c->n, c->k, x, c->m, ref);
        break;
    }

    kd_launch L;
    char why[256] = "";
    kd_status st = kd_launch_geometry(KD_DIALECT_CUDA, c->op, c->m, c->n, gemv ? c->k : 0,
                                      &h100_limits, &L, why, sizeof why);
    CU_ASSERT_EQUAL_FATAL(st, KD_OK);

    int failures = 0;
    for (int variant = 0; variant < 2; variant++) {
        uint64_t grid[3] = {L.grid[0], L.grid[1], L.grid[2]};
        if (variant == 1)
            grid[0] = tight_grid_x(c->op, c->n);
        for (int64_t i = 0; i < out_count; i++)
            y[i] = NAN; /* an output no thread writes fails the comparison */
        memset(&emu.error, 0, sizeof emu.error);
        emu.nranges = 0;
        if (gemv) {
            emu.range_lo[0] = wq;
            emu.range_hi[0] = wq + wbytes + KD_CU_OVERREAD_BYTES;
            emu.nranges = 1;
        }
        int rc = emu_launch(grid, L.block, emu_entry[c->op][c->m > 1], &a);
        kd_cmp cmp;
        kd_compare_to_ref(y, ref, out_count, KD_TOLERANCE, &cmp);
        if (rc != 0 || !cmp.pass) {
            failures++;
            printf("\n  FAIL %s m=%lld n=%lld k=%lld mode=%d grid=(%llu,%llu) %s: %s "
                   "bad=%lld first_bad=%lld (got %g, want %g) max_abs=%g\n",
                   kd_op_name(c->op), (long long)c->m, (long long)c->n, (long long)c->k,
                   c->mode, (unsigned long long)grid[0], (unsigned long long)grid[1],
                   variant ? "tight grid" : "kd_launch_geometry",
                   rc ? emu.error : "mismatch", (long long)cmp.bad, (long long)cmp.first_bad,
                   cmp.first_bad >= 0 ? y[cmp.first_bad] : 0.0,
                   cmp.first_bad >= 0 ? ref[cmp.first_bad] : 0.0, cmp.max_abs);
        }
    }
    free(x);
    free(x2);
    free(wq);
    free(pos);
    free(y);
    free(ref);
    return failures;
}

static const int64_t batch_sizes[] = {1, 2, 7, 8, 33};
#define NBATCH (sizeof batch_sizes / sizeof batch_sizes[0])

static void run_cases(kd_op op, const int64_t (*shapes)[2], int nshapes, int modes)
{
    int failures = 0, cases = 0;
    for (int s = 0; s < nshapes; s++)
        for (size_t b = 0; b < NBATCH; b++)
            for (int mode = 0; mode < modes; mode++) {
                emu_case c = {op, batch_sizes[b], shapes[s][0], shapes[s][1], mode};
                failures += run_case(&c, 1000 + 17 * (uint64_t)cases++);
            }
    CU_ASSERT_EQUAL(failures, 0);
}

/* n values: a multiple of 4 (vector path), not (scalar path), smaller than a warp */
static void test_emu_rmsnorm(void)
{
    static const int64_t s[][2] = {{4096, 0}, {1003, 0}, {7, 0}};
    run_cases(KD_OP_RMSNORM, s, 3, 1);
}

static void test_emu_rope(void)
{
    static const int64_t s[][2] = {{4 * 64, 64}, {3 * 6, 6}, {2 * 128, 128}};
    run_cases(KD_OP_ROPE, s, 3, 2);
}

static void test_emu_swiglu(void)
{
    static const int64_t s[][2] = {{2048, 0}, {1027, 0}, {3, 0}};
    run_cases(KD_OP_SWIGLU, s, 3, 1);
}

static void test_emu_residual_add(void)
{
    static const int64_t s[][2] = {{2048, 0}, {1027, 0}, {3, 0}};
    run_cases(KD_OP_RESIDUAL_ADD, s, 3, 1);
}

/* N: below one block of rows, not a multiple of the rows per warp; K: 1, 3, 8 and 5
 * blocks (fewer blocks than a warp step, whole steps, a partial last step; Q6_K: odd
 * counts, so rows start at every even offset from a 16-byte boundary) */
static const int64_t gemv_shapes[][2] = {{5, 256}, {37, 768}, {20, 2048}, {17, 1280}};

static void test_emu_gemv_q4k(void) { run_cases(KD_OP_Q4K_GEMV, gemv_shapes, 4, 1); }
static void test_emu_gemv_q6k(void) { run_cases(KD_OP_Q6K_GEMV, gemv_shapes, 4, 1); }

/* The register form of get_scale_min_k4 in gemv_q4k.cu against kd_blocks.h's. */
static void test_q4k_scale_min_pair(void)
{
    kd_rng rng;
    kd_rng_seed(&rng, 7);
    int bad = 0;
    for (int iter = 0; iter < 2000; iter++) {
        unsigned char s[12];
        for (int i = 0; i < 12; i++)
            s[i] = (unsigned char)kd_rng_next(&rng);
        uint4 hdr;
        hdr.x = 0;
        memcpy(&hdr.y, s, 4);
        memcpy(&hdr.z, s + 4, 4);
        memcpy(&hdr.w, s + 8, 4);
        for (int g = 0; g < 4; g++) {
            int sc[2], mn[2];
            kd_q4k_scale_min_pair(hdr, g, sc, mn);
            for (int t = 0; t < 2; t++) {
                int rsc, rm;
                kd_q4k_scale_min(2 * g + t, s, &rsc, &rm);
                bad += rsc != sc[t] || rm != mn[t];
            }
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* The byte-permute conversion: every byte position, every quant below 128. */
static void test_quant_byte_to_float(void)
{
    int bad = 0;
    for (unsigned int q = 0; q < 128; q++)
        for (unsigned int b = 0; b < 4; b++) {
            unsigned int word = 0x80808080u ^ (0x80u << (8 * b)) ^ (q << (8 * b));
            bad += kd_quant_byte_to_float(word, b) != 0.5f + (float)q / 256.0f;
        }
    CU_ASSERT_EQUAL(bad, 0);
}

/* The emulator itself must catch a shuffle that not every lane reaches. */
static void e_divergent(const void *v)
{
    (void)v;
    if (threadIdx.x < 16)
        (void)__shfl_xor_sync(KD_FULL_MASK, 1.0f, 1);
}

static void test_emu_detects_divergent_shuffle(void)
{
    uint64_t grid[3] = {1, 1, 1};
    uint32_t block[3] = {32, 1, 1};
    memset(&emu.error, 0, sizeof emu.error);
    CU_ASSERT_EQUAL(emu_launch(grid, block, e_divergent, NULL), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(emu.error, "deadlock"));
}

int main(void)
{
#ifdef KD_EMU_UNSUPPORTED
    return kd_test_skip(KD_EMU_UNSUPPORTED);
#endif
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("cuda_kernels_emulated", NULL, NULL);
    CU_add_test(s, "emulator detects a divergent shuffle", test_emu_detects_divergent_shuffle);
    CU_add_test(s, "q4k scale/min pair == kd_q4k_scale_min", test_q4k_scale_min_pair);
    CU_add_test(s, "quant byte to float", test_quant_byte_to_float);
    CU_add_test(s, "rmsnorm vs oracle", test_emu_rmsnorm);
    CU_add_test(s, "rope vs oracle", test_emu_rope);
    CU_add_test(s, "swiglu vs oracle", test_emu_swiglu);
    CU_add_test(s, "residual_add vs oracle", test_emu_residual_add);
    CU_add_test(s, "gemv q4k vs oracle", test_emu_gemv_q4k);
    CU_add_test(s, "gemv q6k vs oracle", test_emu_gemv_q6k);
    return kd_test_main();
}
