/* ctest-labels: cuda */
/*
 * The cuda backend without a GPU: the PTX that nvcc built (build/ptx/kdispatch_sm_80.ptx
 * and _sm_90.ptx) is the PTX embedded in the library; it has the twelve kernels with
 * the parameters the backend passes; ptxas (when present) compiles both files with no
 * spills; the geometry and the kernels agree on static shared memory; and the driver
 * loading fails cleanly, with the reason, when libcuda.so.1 is absent or is not a CUDA
 * driver. Skipped (77) when the backend was not built (no CUDA toolkit).
 * The kernels' numerics are test_cuda_emu.c (emulated) and test_cuda_gpu.c (a device).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "geometry.h"
#include "kd_backend.h"
#include "kd_test_util.h"
#include "op_traits.h"
#include "../cuda-kernels/kd_cuda_geometry.h"

#ifdef KD_HAVE_CUDA
#include "cuda/kd_cuda_internal.h"

static const int archs[2] = {80, 90};

/* ---- reading the PTX -------------------------------------------------------------- */

static void ptx_path(int arch, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/ptx/kdispatch_sm_%d.ptx", KD_BINARY_DIR, arch);
}

static char *read_ptx(int arch, size_t *len)
{
    char path[1024];
    ptx_path(arch, path, sizeof path);
    char *text = kd_test_read_file(path, len);
    if (!text)
        printf("\n  cannot read %s\n", path);
    return text;
}

/* The kernels' parameter types, as nvcc declares them (.u64 pointers, .u32 int/unsigned,
 * .f32 float), in the order backend_cuda.c passes them. */
static const char *const expected_params[KD_OP_COUNT][2] = {
    [KD_OP_RMSNORM] = {"u64 u64 u64 u32 f32", "u64 u64 u64 u32 u32 f32"},
    [KD_OP_ROPE] = {"u64 u64 u32 u32 f32 u32 u32", "u64 u64 u32 u32 f32 u32 u64 u32"},
    [KD_OP_SWIGLU] = {"u64 u64 u64 u32", "u64 u64 u64 u32 u32"},
    [KD_OP_RESIDUAL_ADD] = {"u64 u64 u64 u32", "u64 u64 u64 u32 u32"},
    [KD_OP_Q4K_GEMV] = {"u64 u64 u64 u32 u32", "u64 u64 u64 u32 u32 u32"},
    [KD_OP_Q6K_GEMV] = {"u64 u64 u64 u32 u32", "u64 u64 u64 u32 u32 u32"},
};

/* The body of `.entry name(...) { ... }`: from the entry to its closing brace at the
 * start of a line. NULL when absent. *params gets the parameter list's text. */
static const char *find_entry(const char *ptx, const char *name, const char **params,
                              const char **body_end)
{
    char key[128];
    snprintf(key, sizeof key, ".entry %s(", name);
    const char *e = strstr(ptx, key);
    if (!e)
        return NULL;
    *params = e + strlen(key);
    const char *open = strstr(e, "\n{");
    const char *close = open ? strstr(open, "\n}") : NULL;
    if (!close)
        return NULL;
    *body_end = close;
    return open;
}

/* "u64 u32 f32" from the `.param .u64 .ptr .align 1 name_param_0, ...)` list. */
static void param_types(const char *params, char *out, size_t cap)
{
    out[0] = '\0';
    const char *end = strchr(params, ')');
    for (const char *p = strstr(params, ".param"); p && end && p < end; p = strstr(p + 1, ".param")) {
        const char *t = p + strlen(".param");
        while (*t == ' ' || *t == '\t')
            t++;
        char type[8] = "";
        if (*t == '.')
            sscanf(t + 1, "%7[a-z0-9]", type);
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", len ? " " : "", type);
    }
}

/* Bytes of the static .shared arrays declared inside [body, end). */
static long shared_bytes(const char *body, const char *end)
{
    long total = 0;
    for (const char *p = strstr(body, ".shared"); p && p < end; p = strstr(p + 1, ".shared")) {
        const char *line_end = strchr(p, '\n');
        const char *lb = strchr(p, '[');
        if (lb && line_end && lb < line_end && strncmp(p - 1, "\t.shared", 8) == 0)
            total += atol(lb + 1); /* `.shared .align 4 .b8 name[32];` */
    }
    return total;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_ptx_files_are_the_embedded_ptx(void)
{
    const char *embedded[2] = {kd_cuda_ptx_sm_80, kd_cuda_ptx_sm_90};
    const size_t sizes[2] = {kd_cuda_ptx_sm_80_size, kd_cuda_ptx_sm_90_size};
    for (int i = 0; i < 2; i++) {
        size_t len = 0;
        char *text = read_ptx(archs[i], &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        CU_ASSERT_EQUAL(len, sizes[i]);
        CU_ASSERT(len == sizes[i] && memcmp(text, embedded[i], len) == 0);
        CU_ASSERT_EQUAL(embedded[i][sizes[i]], '\0'); /* cuModuleLoadData takes text */
        char target[32];
        snprintf(target, sizeof target, "\n.target sm_%d\n", archs[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(text, target));
        CU_ASSERT_PTR_NOT_NULL(strstr(text, "\n.address_size 64\n"));
        CU_ASSERT_PTR_NOT_NULL(strstr(text, "\n.version "));
        free(text);
    }
}

static void test_ptx_has_every_kernel_with_its_parameters(void)
{
    for (int i = 0; i < 2; i++) {
        size_t len;
        char *ptx = read_ptx(archs[i], &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ptx);
        int entries = 0;
        for (const char *p = strstr(ptx, ".entry "); p; p = strstr(p + 1, ".entry "))
            entries++;
        CU_ASSERT_EQUAL(entries, 2 * KD_OP_COUNT);
        for (int op = 0; op < KD_OP_COUNT; op++)
            for (int b = 0; b < 2; b++) {
                const char *name = kd_op_kernel_name((kd_op)op, b), *params = NULL, *end = NULL;
                const char *body = find_entry(ptx, name, &params, &end);
                CU_ASSERT_PTR_NOT_NULL(body);
                if (!body) {
                    printf("\n  sm_%d: no .entry %s\n", archs[i], name);
                    continue;
                }
                char types[128];
                param_types(params, types, sizeof types);
                if (strcmp(types, expected_params[op][b]) != 0)
                    printf("\n  sm_%d %s: parameters '%s', expected '%s'\n", archs[i], name,
                           types, expected_params[op][b]);
                CU_ASSERT_STRING_EQUAL(types, expected_params[op][b]);
            }
        free(ptx);
    }
}

/* Light structural checks (the real parser is ptx-check/): every batched kernel reads
 * %ctaid.y; shared memory is never addressed through a 64-bit register; both kernels of
 * a pair declare the static shared memory the launch geometry reserves. */
static void test_ptx_batch_axis_and_shared_memory(void)
{
    const kd_device_limits lim = {1024, {1024, 1024, 64}, {2147483647u, 65535, 65535}, 48 * 1024};
    for (int i = 0; i < 2; i++) {
        size_t len;
        char *ptx = read_ptx(archs[i], &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ptx);
        for (int op = 0; op < KD_OP_COUNT; op++) {
            kd_launch L;
            char why[128];
            int64_t k = kd_op_is_gemv((kd_op)op) ? 256 : 0;
            CU_ASSERT_EQUAL_FATAL(kd_launch_geometry(KD_DIALECT_CUDA, (kd_op)op, 2, 64, k, &lim,
                                                     &L, why, sizeof why), KD_OK);
            for (int b = 0; b < 2; b++) {
                const char *name = kd_op_kernel_name((kd_op)op, b), *params = NULL, *end = NULL;
                const char *body = find_entry(ptx, name, &params, &end);
                CU_ASSERT_PTR_NOT_NULL_FATAL(body);
                size_t n = (size_t)(end - body);
                char *copy = malloc(n + 1);
                CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
                memcpy(copy, body, n);
                copy[n] = '\0';
                if (b)
                    CU_ASSERT_PTR_NOT_NULL(strstr(copy, "%ctaid.y"));
                for (const char *p = strstr(copy, ".shared."); p; p = strstr(p + 1, ".shared.")) {
                    const char *lb = strchr(p, '['), *nl = strchr(p, '\n');
                    int bad = lb && nl && lb < nl && strncmp(lb + 1, "%rd", 3) == 0;
                    if (bad)
                        printf("\n  sm_%d %s: 64-bit shared address: %.60s\n", archs[i], name, p);
                    CU_ASSERT(!bad);
                }
                long sb = shared_bytes(copy, copy + n);
                if (sb != (long)L.shared_bytes)
                    printf("\n  sm_%d %s: %ld bytes of static shared memory, geometry says %llu\n",
                           archs[i], name, sb, (unsigned long long)L.shared_bytes);
                CU_ASSERT_EQUAL(sb, (long)L.shared_bytes);
                free(copy);
            }
        }
        free(ptx);
    }
}

/* ptxas next to nvcc: $KD_PTXAS, $CUDA_HOME/bin, $CUDA_PATH/bin, /usr/local/cuda/bin, PATH. */
static int find_ptxas(char *buf, size_t cap)
{
    const char *env = getenv("KD_PTXAS");
    if (env && access(env, X_OK) == 0)
        return snprintf(buf, cap, "%s", env), 1;
    const char *homes[] = {getenv("CUDA_HOME"), getenv("CUDA_PATH"), "/usr/local/cuda"};
    for (int i = 0; i < 3; i++)
        if (homes[i]) {
            snprintf(buf, cap, "%s/bin/ptxas", homes[i]);
            if (access(buf, X_OK) == 0)
                return 1;
        }
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        snprintf(buf, cap, "%.*s/ptxas", (int)n, path);
        if (n && access(buf, X_OK) == 0)
            return 1;
        path = colon ? colon + 1 : NULL;
    }
    return 0;
}

/* ptxas -v: every kernel compiled, with no spill and no stack frame (local memory). */
static void test_ptxas_compiles_without_spills(void)
{
    char ptxas[1024];
    if (!find_ptxas(ptxas, sizeof ptxas)) {
        printf("\n  ptxas not found (KD_PTXAS, CUDA_HOME, /usr/local/cuda, PATH): check left out\n");
        return;
    }
    for (int i = 0; i < 2; i++) {
        char path[1024], cmd[3072], line[512];
        ptx_path(archs[i], path, sizeof path);
        snprintf(cmd, sizeof cmd, "'%s' -v -arch=sm_%d -o /dev/null '%s' 2>&1", ptxas, archs[i],
                 path);
        FILE *p = popen(cmd, "r");
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        char current[128] = "";
        int compiled = 0, props = 0, regs_seen = 0;
        printf("\n  ptxas -v -arch=sm_%d:", archs[i]);
        while (fgets(line, sizeof line, p)) {
            const char *q;
            int stack, st, ld, regs;
            if ((q = strstr(line, "Compiling entry function '"))) {
                sscanf(q + strlen("Compiling entry function '"), "%127[^']", current);
                compiled++;
            } else if (sscanf(line, " %d bytes stack frame, %d bytes spill stores, %d bytes "
                                    "spill loads", &stack, &st, &ld) == 3) {
                props++;
                if (stack || st || ld)
                    printf("\n    %s: %d bytes stack, %d spill stores, %d spill loads", current,
                           stack, st, ld);
                CU_ASSERT_EQUAL(st, 0);
                CU_ASSERT_EQUAL(ld, 0);
                CU_ASSERT_EQUAL(stack, 0);
            } else if ((q = strstr(line, "Used ")) && sscanf(q, "Used %d registers", &regs) == 1) {
                regs_seen++;
                printf("\n    %-28s %3d registers", current, regs);
            } else if (strstr(line, "error") || strstr(line, "fatal")) {
                printf("\n    %s", line);
                CU_FAIL("ptxas reported an error");
            }
        }
        int rc = pclose(p);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(compiled, 2 * KD_OP_COUNT);
        CU_ASSERT(props >= 2 * KD_OP_COUNT);
        CU_ASSERT_EQUAL(regs_seen, 2 * KD_OP_COUNT);
    }
    printf("\n");
}

/* The kernels cover every element with the launch geometry the backend computes. */
static void test_geometry_covers_the_kernels(void)
{
    const kd_device_limits lim = {1024, {1024, 1024, 64}, {2147483647u, 65535, 65535}, 48 * 1024};
    const int64_t ns[] = {1, 7, 31, 4096, 4099, 100000};
    for (int op = 0; op < KD_OP_COUNT; op++)
        for (size_t j = 0; j < sizeof ns / sizeof *ns; j++)
            for (int64_t m = 1; m <= 33; m += 8) {
                int gemv = kd_op_is_gemv((kd_op)op);
                int64_t n = op == KD_OP_ROPE ? 2 * ns[j] : ns[j];
                kd_launch L;
                char why[128];
                CU_ASSERT_EQUAL_FATAL(kd_launch_geometry(KD_DIALECT_CUDA, (kd_op)op, m, n,
                                                         gemv ? 512 : 0, &lim, &L, why, sizeof why),
                                      KD_OK);
                uint64_t threads = L.grid[0] * L.block[0] * L.block[1];
                if (gemv) { /* rows a grid x covers; x rows per grid y */
                    CU_ASSERT(L.grid[0] * KD_CU_GEMV_ROWS_PER_BLOCK >= (uint64_t)n);
                    CU_ASSERT(L.block[0] == KD_CU_WARP && L.block[1] == KD_CU_GEMV_WARPS);
                    CU_ASSERT(L.grid[1] * KD_CU_GEMV_MAX_M >= (uint64_t)m);
                } else if (op == KD_OP_RMSNORM) {
                    CU_ASSERT(L.block[0] == KD_CU_NORM_BLOCK && L.grid[1] == (uint64_t)m);
                } else if (op == KD_OP_ROPE) {
                    CU_ASSERT(threads >= (uint64_t)n / 2 && L.grid[1] == (uint64_t)m);
                } else {
                    CU_ASSERT(threads * KD_CU_EW_VEC >= (uint64_t)n && L.grid[1] == (uint64_t)m);
                }
            }
}

/* ---- the driver path without a driver --------------------------------------------- */

static void test_missing_driver_is_unavailable_with_reason(void)
{
    kd_test_env saved = kd_test_env_set("KD_CUDA_DRIVER", "/nonexistent/libcuda.so.1");
    kd_cuda_driver drv;
    char why[512] = "";
    CU_ASSERT_EQUAL(kd_cuda_driver_open(&drv, why, sizeof why), KD_ERR_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "libcuda.so.1 not found"));
    CU_ASSERT_PTR_NULL(drv.lib);

    void *state = NULL;
    why[0] = '\0';
    CU_ASSERT_EQUAL(kd_cuda_backend.init(NULL, &state, why, sizeof why), KD_ERR_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "libcuda"));
    CU_ASSERT_PTR_NULL(state);

    /* through the public API: the context works, cuda is absent and says why */
    kd_context *ctx = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_context_create(NULL, &ctx), KD_OK);
    CU_ASSERT_FALSE(kd_backend_available(ctx, KD_BACKEND_CUDA));
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_backend_reason(ctx, KD_BACKEND_CUDA), "libcuda"));
    CU_ASSERT(kd_backend_available(ctx, KD_BACKEND_CPU));
    kd_context_destroy(ctx);
    kd_test_env_restore(&saved);
}

/* A library that is not the CUDA driver: refused, naming the missing entry point. */
static void test_wrong_library_is_unavailable_with_reason(void)
{
    kd_test_env saved = kd_test_env_set("KD_CUDA_DRIVER", "libm.so.6");
    kd_cuda_driver drv;
    char why[512] = "";
    CU_ASSERT_EQUAL(kd_cuda_driver_open(&drv, why, sizeof why), KD_ERR_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "does not export cuInit"));
    CU_ASSERT_PTR_NULL(drv.lib);
    kd_test_env_restore(&saved);
}

/* With the default name: where this machine has no driver, the reason names it. */
static void test_default_driver_reason(void)
{
    kd_cuda_driver drv;
    char why[512] = "";
    kd_status st = kd_cuda_driver_open(&drv, why, sizeof why);
    if (st == KD_OK) {
        printf("\n  libcuda.so.1 is installed here: the absent-driver case is covered by the "
               "KD_CUDA_DRIVER override\n");
        kd_cuda_driver_close(&drv); /* loaded but never initialised */
        return;
    }
    CU_ASSERT_EQUAL(st, KD_ERR_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "libcuda.so.1"));
    kd_context *ctx = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_context_create(NULL, &ctx), KD_OK);
    CU_ASSERT_FALSE(kd_backend_available(ctx, KD_BACKEND_CUDA));
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_backend_reason(ctx, KD_BACKEND_CUDA), "libcuda.so.1"));
    /* a forced cuda run is refused, the answer does not come from elsewhere */
    kd_tensor *x = NULL, *y = NULL;
    float v[4] = {1, 2, 3, 4};
    CU_ASSERT_EQUAL_FATAL(kd_tensor_f32(ctx, 1, 4, v, &x), KD_OK);
    CU_ASSERT_EQUAL_FATAL(kd_tensor_f32(ctx, 1, 4, NULL, &y), KD_OK);
    kd_op_desc d = {.op = KD_OP_RESIDUAL_ADD, .src = {x, x}, .dst = y};
    CU_ASSERT_NOT_EQUAL(kd_run(ctx, &d, KD_BACKEND_CUDA, KD_RUN_NO_FALLBACK), KD_OK);
    kd_tensor_free(x);
    kd_tensor_free(y);
    kd_context_destroy(ctx);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("cuda_without_gpu", NULL, NULL);
    CU_add_test(s, "PTX files are the embedded PTX", test_ptx_files_are_the_embedded_ptx);
    CU_add_test(s, "PTX has every kernel with its parameters",
                test_ptx_has_every_kernel_with_its_parameters);
    CU_add_test(s, "PTX batch axis and shared memory", test_ptx_batch_axis_and_shared_memory);
    CU_add_test(s, "ptxas compiles sm_80 and sm_90 without spills",
                test_ptxas_compiles_without_spills);
    CU_add_test(s, "geometry covers the kernels", test_geometry_covers_the_kernels);
    CU_add_test(s, "missing driver: unavailable with reason",
                test_missing_driver_is_unavailable_with_reason);
    CU_add_test(s, "wrong library: unavailable with reason",
                test_wrong_library_is_unavailable_with_reason);
    CU_add_test(s, "default driver name in the reason", test_default_driver_reason);
    return kd_test_main();
}

#else /* !KD_HAVE_CUDA */

int main(void)
{
    return kd_test_skip(kd_backend_ops_of(KD_BACKEND_CUDA)->not_built);
}

#endif
