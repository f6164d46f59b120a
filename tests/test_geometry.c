/* ctest-labels: dispatch;cpu */
/* Launch geometry (contract: kernel_dimensions), exhaustively over a bounded domain:
 * all four dialects (OpenCL CPU, CUDA, OpenCL GPU; OpenCL CPU q8: GEMV only) x six ops x batch sizes x row lengths x GEMV widths x device limits.
 * For every case: either the launch covers the problem (grid * block >= problem size, in
 * each op's work units, and not one block more than needed), fits every device limit
 * (threads per block, block and grid dimensions, shared memory), or the call refuses with
 * KD_ERR_TOO_LARGE, a message, and only when the natural launch really breaks a limit. */
#include <stdio.h>
#include <string.h>

#include "geometry.h"
#include "../cl-kernels/kd_cl_geometry.h"
#include "../cuda-kernels/kd_cuda_geometry.h"
#include "kd_test_util.h"
#include "op_traits.h"

static const kd_device_limits unlimited = {
    .max_threads_per_block = UINT32_MAX,
    .max_block = {UINT32_MAX, UINT32_MAX, UINT32_MAX},
    .max_grid = {UINT64_MAX, UINT64_MAX, UINT64_MAX},
    .max_shared_bytes = UINT64_MAX};

typedef struct named_limits {
    const char *name;
    kd_device_limits lim;
} named_limits;

static const named_limits devices[] = {
    /* An NVIDIA GPU as CUDA reports it. */
    {"cuda-gpu", {1024, {1024, 1024, 64}, {2147483647, 65535, 65535}, 49152}},
    /* PoCL's CPU device. */
    {"pocl-cpu", {4096, {4096, 4096, 4096}, {UINT64_MAX, UINT64_MAX, UINT64_MAX}, 524288}},
    /* A small embedded GPU: 256 threads, 16 KiB local memory, short grids. */
    {"small-gpu", {256, {256, 256, 64}, {65535, 65535, 65535}, 16384}},
    /* A device too small for most kernels: 32 threads, 1 KiB, grid y of 4. */
    {"tiny", {32, {32, 32, 1}, {1 << 20, 4, 1}, 1024}},
    /* Limits that each break one kernel: 128 threads, 255 bytes of shared memory. */
    {"odd", {128, {64, 8, 1}, {1000, 1000, 1}, 255}},
};

static const int64_t batch[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65,
                                255, 256, 257, 1000, 4096, 65535, 65536, 100000};
static const int64_t gemv_k[] = {256, 512, 768, 4096, 11008 / 256 * 256};


/* Row lengths: 1..130 exhaustively, then around powers of two and model sizes. */
static int row_lengths(int64_t *out, int cap)
{
    int n = 0;
    for (int64_t v = 1; v <= 130 && n < cap; v++)
        out[n++] = v;
    const int64_t more[] = {255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 2047, 2048,
                            4095, 4096, 4097, 5120, 11008, 14336, 32000, 128256, 1 << 20,
                            (1 << 20) + 1, INT64_C(1) << 31, (INT64_C(1) << 33) + 3};
    for (size_t i = 0; i < sizeof more / sizeof *more && n < cap; i++)
        out[n++] = more[i];
    return n;
}

/* Work units along x and how many of them one block covers. */
/* CUDA's swiglu and residual_add threads take KD_CU_EW_VEC elements (one float4) each. */
static uint64_t units_x(kd_dialect d, kd_op op, int64_t n, int64_t k)
{
    /* OpenCL CPU devices: KD_CL_ROPE_HEADS whole heads per item when k = head_dim allows
     * it (head_dim / 2 % 8 == 0, at most KD_CL_ROPE_MAX_VECS float8s), else 8 pairs */
    if (op == KD_OP_ROPE && d == KD_DIALECT_OPENCL && k > 0 && (k / 2) % KD_CL_ROPE_VEC == 0 &&
        k / 2 / KD_CL_ROPE_VEC <= KD_CL_ROPE_MAX_VECS)
        return ((uint64_t)(n / k) + KD_CL_ROPE_HEADS - 1) / KD_CL_ROPE_HEADS;
    if (op == KD_OP_ROPE && d == KD_DIALECT_OPENCL)
        return ((uint64_t)n / 2 + KD_CL_ROPE_VEC - 1) / KD_CL_ROPE_VEC;
    if (op == KD_OP_ROPE)
        return (uint64_t)n / 2;
    if (d == KD_DIALECT_CUDA && (op == KD_OP_SWIGLU || op == KD_OP_RESIDUAL_ADD))
        return ((uint64_t)n + KD_CU_EW_VEC - 1) / KD_CU_EW_VEC;
    /* OpenCL CPU devices: one float16 per work-item */
    if (d == KD_DIALECT_OPENCL && (op == KD_OP_SWIGLU || op == KD_OP_RESIDUAL_ADD))
        return ((uint64_t)n + KD_CL_EW_VEC - 1) / KD_CL_EW_VEC;
    return (uint64_t)n;
}

static uint64_t per_block_x(kd_op op, const kd_launch *l)
{
    if (kd_op_is_gemv(op))
        return l->rows_per_block;
    if (op == KD_OP_RMSNORM)
        return UINT64_MAX; /* one block per row: the block strides over the row */
    return l->block[0];
}

/* GEMV output rows one thread computes: several on OpenCL CPU devices' batched kernels
 * (they reuse each block of x from L1 across their rows), else one. */
static uint64_t gemv_rows_per_thread(kd_dialect d, int64_t m)
{
    return d == KD_DIALECT_OPENCL && m > 1 ? KD_CL_GEMV_ROWS / KD_CL_GEMV_BATCH_LOCAL : 1;
}

static uint64_t per_block_y(kd_op op, const kd_launch *l)
{
    /* GEMV passes and OpenCL CPU rmsnorm items cover m_per_pass batch rows */
    return l->m_per_pass ? l->m_per_pass : l->block[1];
}

typedef struct tally {
    long ok, refused, bad;
} tally;

static void fail(tally *t, const char *what, kd_dialect d, kd_op op, int64_t m, int64_t n,
                 int64_t k, const char *dev)
{
    if (t->bad++ < 10)
        printf("\n  %s: %s %s m=%lld n=%lld k=%lld on %s\n", what,
               d == KD_DIALECT_CUDA ? "cuda" : "opencl", kd_op_name(op), (long long)m,
               (long long)n, (long long)k, dev);
}

/* The natural launch breaks one of the limits. */
static int breaks_limit(const kd_launch *l, const kd_device_limits *lim)
{
    uint64_t threads = (uint64_t)l->block[0] * l->block[1] * l->block[2];
    if (threads > lim->max_threads_per_block || l->shared_bytes > lim->max_shared_bytes)
        return 1;
    for (int i = 0; i < 3; i++)
        if (l->block[i] > lim->max_block[i] || l->grid[i] > lim->max_grid[i])
            return 1;
    return 0;
}

static int same_launch(const kd_launch *a, const kd_launch *b)
{
    for (int i = 0; i < 3; i++)
        if (a->block[i] != b->block[i] || a->grid[i] != b->grid[i])
            return 0;
    return a->shared_bytes == b->shared_bytes && a->rows_per_block == b->rows_per_block &&
           a->m_per_pass == b->m_per_pass;
}

static void check_case(kd_dialect d, kd_op op, int64_t m, int64_t n, int64_t k,
                       const named_limits *dev, tally *t)
{
    kd_launch natural, l;
    char why[256] = "";
    kd_status st0 = kd_launch_geometry(d, op, m, n, k, &unlimited, &natural, why, sizeof why);
    if (st0 != KD_OK) {
        fail(t, "refused without limits", d, op, m, n, k, "unlimited");
        return;
    }
    memset(&l, 0xA5, sizeof l);
    why[0] = '\0';
    kd_status st = kd_launch_geometry(d, op, m, n, k, &dev->lim, &l, why, sizeof why);
    if (st == KD_ERR_TOO_LARGE) {
        t->refused++;
        if (!breaks_limit(&natural, &dev->lim))
            fail(t, "refused a launch that fits", d, op, m, n, k, dev->name);
        if (strlen(why) < 10 || !strstr(why, "geometry"))
            fail(t, "refused without a clear message", d, op, m, n, k, dev->name);
        return;
    }
    if (st != KD_OK) {
        fail(t, "unexpected status", d, op, m, n, k, dev->name);
        return;
    }
    t->ok++;
    if (breaks_limit(&l, &dev->lim))
        fail(t, "accepted a launch that breaks a device limit", d, op, m, n, k, dev->name);
    if (!same_launch(&l, &natural))
        fail(t, "launch depends on limits it fits", d, op, m, n, k, dev->name);
    /* grid * block covers the problem: along x (elements, pairs or GEMV rows)... */
    uint64_t ux = units_x(d, op, n, k), px = per_block_x(op, &l), py = per_block_y(op, &l);
    if (op != KD_OP_RMSNORM) {
        if (l.grid[0] * px < ux)
            fail(t, "grid x does not cover the row", d, op, m, n, k, dev->name);
        if ((l.grid[0] - 1) * px >= ux)
            fail(t, "grid x has a block with no work", d, op, m, n, k, dev->name);
    } else if (l.grid[0] != 1) {
        fail(t, "rmsnorm needs one block per row", d, op, m, n, k, dev->name);
    }
    /* ...and along y (batch rows). */
    if (py == 0 || l.grid[1] * py < (uint64_t)m)
        fail(t, "grid y does not cover the batch", d, op, m, n, k, dev->name);
    else if ((l.grid[1] - 1) * py >= (uint64_t)m)
        fail(t, "grid y has a block with no work", d, op, m, n, k, dev->name);
    if (l.grid[2] != 1)
        fail(t, "grid z is not 1", d, op, m, n, k, dev->name);
    /* The contract's formula in threads: grid * block >= problem size, in what one
     * thread does: an element or a rope pair per batch row; a GEMV output row (OpenCL CPU
     * batched: several) per pass of
     * m_per_pass batch rows (a thread keeps that many accumulators); an rmsnorm row (one
     * block strides over each row; an OpenCL CPU item takes m_per_pass rows). */
    uint64_t threads = kd_launch_threads(&l);
    uint64_t need = op == KD_OP_RMSNORM ? ((uint64_t)m + py - 1) / py
                    : kd_op_is_gemv(op)
                        ? (ux + gemv_rows_per_thread(d, m) - 1) / gemv_rows_per_thread(d, m) *
                              (((uint64_t)m + py - 1) / py)
                                        : ux * (uint64_t)m;
    if (threads < need)
        fail(t, "grid * block < problem size", d, op, m, n, k, dev->name);
    if (l.shared_bytes > dev->lim.max_shared_bytes)
        fail(t, "shared memory over the limit", d, op, m, n, k, dev->name);
}

static void test_geometry_exhaustive(void)
{
    int64_t rows[200];
    int nrows = row_lengths(rows, 200);
    tally t = {0, 0, 0};
    for (int d = 0; d <= KD_DIALECT_OPENCL_Q8; d++)
        for (int op = 0; op < KD_OP_COUNT; op++)
            for (size_t di = 0; di < sizeof devices / sizeof *devices; di++)
                for (size_t mi = 0; mi < sizeof batch / sizeof *batch; mi++)
                    for (int ni = 0; ni < nrows; ni++) {
                        int64_t n = rows[ni];
                        if (d == KD_DIALECT_OPENCL_Q8 && !kd_op_is_gemv((kd_op)op))
                            continue; /* refused: test_geometry_bad_shapes */
                        if (op == KD_OP_ROPE && n % 2)
                            continue; /* checked in test_geometry_bad_shapes */
                        if (op == KD_OP_ROPE) { /* k = head_dim: 0 (not given) or one that divides n */
                            const int64_t head_dims[] = {0, 6, 16, 64, 128};
                            for (size_t hi = 0; hi < sizeof head_dims / sizeof *head_dims; hi++)
                                if (head_dims[hi] == 0 || n % head_dims[hi] == 0)
                                    check_case((kd_dialect)d, (kd_op)op, batch[mi], n,
                                               head_dims[hi], &devices[di], &t);
                            continue;
                        }
                        if (!kd_op_is_gemv((kd_op)op)) {
                            check_case((kd_dialect)d, (kd_op)op, batch[mi], n, 0,
                                       &devices[di], &t);
                            continue;
                        }
                        for (size_t ki = 0; ki < sizeof gemv_k / sizeof *gemv_k; ki++)
                            check_case((kd_dialect)d, (kd_op)op, batch[mi], n, gemv_k[ki],
                                       &devices[di], &t);
                    }
    printf("\n  %ld launches checked: %ld fit, %ld refused as too large, %ld wrong\n",
           t.ok + t.refused, t.ok, t.refused, t.bad);
    CU_ASSERT_EQUAL(t.bad, 0);
    CU_ASSERT(t.ok > 0 && t.refused > 0); /* the domain reaches both outcomes */
}

/* Each limit alone makes the refusal, with a message that says which. */
static void test_geometry_refusals(void)
{
    kd_launch l;
    char why[256];
    kd_device_limits lim = devices[0].lim;
    lim.max_shared_bytes = 0;
    CU_ASSERT_EQUAL(kd_launch_geometry(KD_DIALECT_OPENCL_GPU, KD_OP_RMSNORM, 1, 4096, 0, &lim,
                                       &l, why, sizeof why), KD_ERR_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "shared memory"));
    lim = devices[0].lim;
    lim.max_threads_per_block = 16;
    CU_ASSERT_EQUAL(kd_launch_geometry(KD_DIALECT_CUDA, KD_OP_SWIGLU, 1, 4096, 0, &lim, &l, why,
                                       sizeof why), KD_ERR_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "threads"));
    lim = devices[0].lim;
    lim.max_grid[1] = 10;
    CU_ASSERT_EQUAL(kd_launch_geometry(KD_DIALECT_CUDA, KD_OP_RESIDUAL_ADD, 11, 64, 0, &lim, &l,
                                       why, sizeof why), KD_ERR_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "grid"));
    CU_ASSERT_EQUAL(kd_launch_geometry(KD_DIALECT_CUDA, KD_OP_RESIDUAL_ADD, 10, 64, 0, &lim, &l,
                                       why, sizeof why), KD_OK);
    lim = devices[0].lim;
    lim.max_block[0] = 31;
    CU_ASSERT_EQUAL(kd_launch_geometry(KD_DIALECT_CUDA, KD_OP_Q4K_GEMV, 1, 64, 256, &lim, &l,
                                       why, sizeof why), KD_ERR_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "block"));
}

static void test_geometry_bad_shapes(void)
{
    kd_launch l;
    char why[256];
    const kd_device_limits *lim = &devices[0].lim;
    for (int d = 0; d < 3; d++) {
        kd_dialect dd = (kd_dialect)d;
        CU_ASSERT_EQUAL(kd_launch_geometry(dd, KD_OP_SWIGLU, 0, 8, 0, lim, &l, why, sizeof why),
                        KD_ERR_ZERO_SIZE);
        CU_ASSERT_EQUAL(kd_launch_geometry(dd, KD_OP_SWIGLU, 1, -8, 0, lim, &l, why, sizeof why),
                        KD_ERR_ZERO_SIZE);
        CU_ASSERT_EQUAL(kd_launch_geometry(dd, KD_OP_Q6K_GEMV, 1, 8, 300, lim, &l, why, sizeof why),
                        KD_ERR_ALIGN);
        CU_ASSERT_EQUAL(kd_launch_geometry(dd, KD_OP_Q6K_GEMV, 1, 8, 0, lim, &l, why, sizeof why),
                        KD_ERR_ALIGN);
        for (int64_t n = 1; n < 200; n += 2)
            CU_ASSERT_EQUAL(kd_launch_geometry(dd, KD_OP_ROPE, 1, n, 0, lim, &l, why, sizeof why),
                            KD_ERR_SHAPE);
        CU_ASSERT_EQUAL(kd_launch_geometry(dd, KD_OP_COUNT, 1, 8, 0, lim, &l, why, sizeof why),
                        KD_ERR_ARG);
        CU_ASSERT_EQUAL(kd_launch_geometry(dd, KD_OP_SWIGLU, 1, 8, 0, NULL, &l, why, sizeof why),
                        KD_ERR_NULL);
        CU_ASSERT_EQUAL(kd_launch_geometry(dd, KD_OP_SWIGLU, 1, 8, 0, lim, NULL, why, sizeof why),
                        KD_ERR_NULL);
    }
    for (int op = 0; op < KD_OP_COUNT; op++) /* the q8 dialect has GEMV kernels only */
        CU_ASSERT_EQUAL(kd_launch_geometry(KD_DIALECT_OPENCL_Q8, (kd_op)op, 1, 256, 256, lim, &l,
                                           why, sizeof why),
                        kd_op_is_gemv((kd_op)op) ? KD_OK : KD_ERR_ARG);
    CU_ASSERT_EQUAL(kd_launch_geometry((kd_dialect)7, KD_OP_SWIGLU, 1, 8, 0, lim, &l, why,
                                       sizeof why), KD_ERR_ARG);
    /* A NULL message buffer is allowed. */
    CU_ASSERT_EQUAL(kd_launch_geometry(KD_DIALECT_CUDA, KD_OP_SWIGLU, 0, 8, 0, lim, &l, NULL, 0),
                    KD_ERR_ZERO_SIZE);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("geometry", NULL, NULL);
    CU_add_test(s, "exhaustive: coverage, limits, refusals", test_geometry_exhaustive);
    CU_add_test(s, "each limit refuses with its message", test_geometry_refusals);
    CU_add_test(s, "bad shapes", test_geometry_bad_shapes);
    return kd_test_main();
}
