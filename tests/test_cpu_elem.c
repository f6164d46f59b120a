/* ctest-labels: cpu */
/* The cpu rmsnorm and rope kernels at every SIMD level the host runs, against the double
 * oracle and the scalar reference: rmsnorm's one-pass row pipeline (rows of very different
 * size, lengths around the vector widths, M through the thread pool) and rope's table-free
 * cos/sin at positions up to 2^20 (near 2^20 and random in [0, 2^20]), both modes, head
 * dims 64 and 128, odd head counts; and both with outputs large enough for streaming
 * stores. Each check is shown to reject a wrong result. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_ops.h"
#include "kd_test_util.h"

#define N(a) ((int)(sizeof(a) / sizeof *(a)))
#define ROPE_MAX_POS (1u << 20)

static const char *const levels[] = {"avx2", "avx512"};
static kd_context *level_ctx[2]; /* NULL: not tested (host or KD_CPU_SIMD) */

/* A context whose cpu backend runs the given SIMD level; NULL (with a note) if the host
 * (or a KD_CPU_SIMD already set by the caller) caps it lower. */
static kd_context *context_at(const char *level, kd_simd want)
{
    const char *outer = getenv("KD_CPU_SIMD");
    if (outer && strcmp(outer, level) != 0) {
        printf("SIMD level %s: not tested (KD_CPU_SIMD=%s)\n", level, outer);
        return NULL;
    }
    int vnni;
    kd_simd best = kd_cpu_simd_supported(&vnni);
    kd_simd got = want < best ? want : best; /* what the cpu backend will run */
    kd_context *ctx = NULL;
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1};
    if (got == want && kd_test_context_under_env("KD_CPU_SIMD", level, &o, &ctx) != KD_OK)
        ctx = NULL;
    printf("SIMD level %s: %s\n", level, got != want ? "not supported by this host, not tested"
                                         : ctx ? "tested" : "context failed");
    return ctx;
}

/* The suite's level: its context and name (each level is one suite). */
static kd_context *ctx;
static const char *level;
static int use_avx2(void) { ctx = level_ctx[0]; level = levels[0]; return 0; }
static int use_avx512(void) { ctx = level_ctx[1]; level = levels[1]; return 0; }

/* The fast path at the suite's level and the scalar path, against the oracle and each
 * other. */
static void expect_both_paths_match(kd_problem *p, const double *ref)
{
    kd_test_path fast = {KD_BACKEND_CPU, 0, level};
    kd_test_path scalar = {KD_BACKEND_CPU, KD_RUN_CPU_SCALAR, "cpu-scalar"};
    kd_test_expect_agreement(ctx, p, ref, fast, scalar);
}

/* ---- rmsnorm ------------------------------------------------------------------------- */

/* Row r of x scaled by 1 or 37 in turn, so that a row normalized with its neighbour's
 * sum of squares is far off (the pipeline carries that sum from one row to the next). */
static int make_rmsnorm(int64_t m, int64_t n, uint64_t seed, kd_problem *p)
{
    if (kd_problem_make(ctx, KD_OP_RMSNORM, m, n, 0, seed, p))
        return -1;
    for (int64_t r = 1; r < m; r += 2)
        for (int64_t i = 0; i < n; i++)
            p->h_src[0][r * n + i] *= 37.0f;
    return kd_tensor_write(ctx, p->src[0], p->h_src[0], (size_t)(m * n)) == KD_OK ? 0 : -1;
}

static void test_rmsnorm_rows(void)
{
    static const int64_t ms[] = {1, 2, 3, 17, 64};
    static const int64_t ns[] = {1, 15, 16, 31, 33, 4096, 4099};
    for (int a = 0; a < N(ms); a++)
        for (int b = 0; b < N(ns); b++) {
            kd_problem p;
            CU_ASSERT_FATAL(make_rmsnorm(ms[a], ns[b], 100 + 10 * (uint64_t)a + (uint64_t)b, &p) == 0);
            double *ref = kd_problem_oracle(&p);
            CU_ASSERT_FATAL(ref != NULL);
            expect_both_paths_match(&p, ref);
            free(ref);
            kd_problem_free(&p);
        }
}

/* An output large enough for streaming stores (kd_cpu_stream_output). */
static void test_rmsnorm_streaming(void)
{
    const int64_t n = 4096, m = KD_CPU_STREAM_MIN_BYTES / (4 * n);
    kd_problem p;
    CU_ASSERT_FATAL(make_rmsnorm(m, n, 31, &p) == 0);
    double *ref = kd_problem_oracle(&p);
    CU_ASSERT_FATAL(ref != NULL);
    expect_both_paths_match(&p, ref);
    free(ref);
    kd_problem_free(&p);
}

/* The check rejects the pipeline's likely bug: row r scaled by row r+1's 1/rms. */
static void test_rmsnorm_check_rejects_neighbour_scale(void)
{
    const int64_t m = 4, n = 100;
    kd_problem p;
    CU_ASSERT_FATAL(make_rmsnorm(m, n, 5, &p) == 0);
    double *ref = kd_problem_oracle(&p);
    float *bad = malloc(sizeof(float) * (size_t)(m * n));
    CU_ASSERT_FATAL(ref && bad);
    double inv[4];
    for (int64_t r = 0; r < m; r++) {
        double ss = 0;
        for (int64_t i = 0; i < n; i++)
            ss += (double)p.h_src[0][r * n + i] * p.h_src[0][r * n + i];
        inv[r] = 1.0 / sqrt(ss / (double)n + p.d.eps);
    }
    for (int64_t r = 0; r < m; r++)
        for (int64_t i = 0; i < n; i++)
            bad[r * n + i] = (float)(ref[r * n + i] * (r + 1 < m ? inv[r + 1] / inv[r] : 1.0));
    kd_cmp c;
    kd_compare_to_ref(bad, ref, m * n, KD_TOLERANCE, &c);
    CU_ASSERT(!c.pass);
    CU_ASSERT_EQUAL(c.first_bad, 0);
    free(bad);
    free(ref);
    kd_problem_free(&p);
}

/* ---- rope ---------------------------------------------------------------------------- */

/* Positions: the first rows at 2^20 and just below it (and one at 2^32 - 1, past an int32
 * count of quarter turns), the rest uniform in [0, 2^20]. */
static void large_positions(kd_problem *p, uint64_t seed)
{
    static const uint32_t near[] = {ROPE_MAX_POS, ROPE_MAX_POS - 1, ROPE_MAX_POS - 3,
                                    ROPE_MAX_POS - 1000, 1000003, 4294967295u};
    kd_rng rng;
    kd_rng_seed(&rng, seed);
    for (int64_t r = 0; r < p->m; r++)
        p->pos[r] = r < N(near) ? near[r] : (uint32_t)(kd_rng_next(&rng) % (ROPE_MAX_POS + 1));
}

static int make_rope(int64_t m, int n_heads, int head_dim, kd_rope_mode mode, float base,
                     uint64_t seed, kd_problem *p)
{
    if (kd_problem_make(ctx, KD_OP_ROPE, m, (int64_t)n_heads * head_dim, head_dim, seed, p))
        return -1;
    p->d.rope_mode = mode;
    p->d.rope_base = base;
    large_positions(p, seed);
    return 0;
}

static void test_rope_large_positions(void)
{
    static const int head_dims[] = {64, 128};
    static const int heads[] = {1, 3, 7};
    static const int64_t ms[] = {1, 9, 40};
    static const float bases[] = {10000.0f, 500000.0f};
    uint64_t seed = 1;
    for (int d = 0; d < N(head_dims); d++)
        for (int h = 0; h < N(heads); h++)
            for (int mode = KD_ROPE_NORMAL; mode <= KD_ROPE_NEOX; mode++)
                for (int mi = 0; mi < N(ms); mi++) {
                    kd_problem p;
                    float base = bases[seed % 2];
                    CU_ASSERT_FATAL(make_rope(ms[mi], heads[h], head_dims[d], (kd_rope_mode)mode,
                                              base, seed++, &p) == 0);
                    double *ref = kd_problem_oracle(&p);
                    CU_ASSERT_FATAL(ref != NULL);
                    expect_both_paths_match(&p, ref);
                    free(ref);
                    kd_problem_free(&p);
                }
}

/* Streaming stores, both modes (head_dim 128: aligned heads). */
static void test_rope_streaming(void)
{
    const int heads = 32, dim = 128;
    const int64_t m = KD_CPU_STREAM_MIN_BYTES / (4 * heads * dim);
    for (int mode = KD_ROPE_NORMAL; mode <= KD_ROPE_NEOX; mode++) {
        kd_problem p;
        CU_ASSERT_FATAL(make_rope(m, heads, dim, (kd_rope_mode)mode, 10000.0f, 900 + (uint64_t)mode,
                                  &p) == 0);
        double *ref = kd_problem_oracle(&p);
        CU_ASSERT_FATAL(ref != NULL);
        expect_both_paths_match(&p, ref);
        free(ref);
        kd_problem_free(&p);
    }
}

/* The positions near 2^20 are a real test of the angle's precision: cos/sin of the angle
 * formed in float (error ~0.06 rad there) is rejected. */
static void test_rope_check_rejects_float_angle(void)
{
    kd_problem p;
    CU_ASSERT_FATAL(make_rope(6, 3, 128, KD_ROPE_NEOX, 10000.0f, 77, &p) == 0);
    double *ref = kd_problem_oracle(&p);
    float *bad = malloc(sizeof(float) * (size_t)p.out_count);
    CU_ASSERT_FATAL(ref && bad);
    const int dim = p.d.head_dim, half = dim / 2;
    for (int64_t r = 0; r < p.m; r++)
        for (int h = 0; h < p.d.n_heads; h++)
            for (int i = 0; i < half; i++) {
                const float *x = p.h_src[0] + r * p.n + (int64_t)h * dim;
                float *y = bad + r * p.n + (int64_t)h * dim;
                float a = (float)p.pos[r] * powf(10000.0f, -2.0f * (float)i / (float)dim);
                y[i] = x[i] * cosf(a) - x[i + half] * sinf(a);
                y[i + half] = x[i] * sinf(a) + x[i + half] * cosf(a);
            }
    kd_cmp c;
    kd_compare_to_ref(bad, ref, p.out_count, KD_TOLERANCE, &c);
    CU_ASSERT(!c.pass);
    free(bad);
    free(ref);
    kd_problem_free(&p);
}

int main(void)
{
    level_ctx[0] = context_at("avx2", KD_SIMD_AVX2);
    level_ctx[1] = context_at("avx512", KD_SIMD_AVX512);
    if (!level_ctx[0] && !level_ctx[1])
        return kd_test_skip("no SIMD level to test on this host (the scalar path is in test_cpu)");
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    static const char *const suite_names[] = {"cpu elementwise avx2", "cpu elementwise avx512"};
    static int (*const init[])(void) = {use_avx2, use_avx512};
    int negatives_added = 0;
    for (int l = 0; l < N(levels); l++) {
        if (!level_ctx[l])
            continue;
        CU_pSuite s = CU_add_suite(suite_names[l], init[l], NULL);
        CU_add_test(s, "rmsnorm one-pass rows vs oracle", test_rmsnorm_rows);
        CU_add_test(s, "rope positions to 2^20 vs oracle", test_rope_large_positions);
        CU_add_test(s, "rmsnorm streaming stores", test_rmsnorm_streaming);
        CU_add_test(s, "rope streaming stores", test_rope_streaming);
        if (!negatives_added++) {
            CU_add_test(s, "rmsnorm check rejects a neighbour's scale",
                        test_rmsnorm_check_rejects_neighbour_scale);
            CU_add_test(s, "rope check rejects a float angle", test_rope_check_rejects_float_angle);
        }
    }
    int rc = kd_test_main();
    for (int l = 0; l < N(levels); l++)
        kd_context_destroy(level_ctx[l]);
    return rc;
}
