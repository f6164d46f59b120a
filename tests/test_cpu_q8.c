/* ctest-labels: cpu */
/* The cpu's activation-quantized (q8) GEMV path at the SIMD level KD_CPU_SIMD selects:
 * the quantization of x against a double reference, the GEMV against the oracle (NMSE
 * budget, SPEC section 7), the level's kernels against the scalar q8 reference, the path
 * flags and KD_CPU_GEMV, and the refusal of malformed cpu environment values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/gemv_q8.h"
#include "cpu_level.h"
#include "kd_internal.h"
#include "kd_quant.h"
#include "kd_test_util.h"


static kd_context *ctx;
static kd_simd level;
static int level_vnni;

/* Rows of x with the cases that matter: an all-zero block, tiny and huge magnitudes,
 * exact ties at .5 after scaling, one dominant value. */
static void fill_x(float *x, int64_t n, uint64_t seed)
{
    kd_rng r;
    kd_rng_seed(&r, seed);
    kd_fill_uniform(&r, x, n, -2.0f, 2.0f);
    for (int64_t i = 0; i < 256 && i < n; i++)
        x[i] = 0.0f;
    for (int64_t i = 256; i < 512 && i < n; i++)
        x[i] *= 1e-30f;
    for (int64_t i = 512; i < 768 && i < n; i++) /* amax 63.5, id 2: k + 0.25 -> ties */
        x[i] = i == 512 ? 63.5f : (float)((i % 120) - 60) + 0.25f;
    if (n >= 1024)
        x[800] = 3.0e4f;
}

/* Each block against a double reference: d = amax / 127, |q - x/d| <= 1/2 (plus float
 * slack), |q| <= 127, bsums the exact sums; the level's SIMD quantizer gives the same bytes. */
static void test_quantize_vs_reference(void)
{
    const int64_t k = 256 * 6;
    float x[256 * 6];
    fill_x(x, k, 17);
    kd_q8_block q[6], qs[6];
    memset(q, 0, sizeof q); /* the padding, which no quantizer writes */
    memset(qs, 0, sizeof qs);
    kd_q8_quantize_rows(NULL, level, x, 1, k, KD_TYPE_Q6_K, 0, q);
    kd_q8_quantize_rows(NULL, KD_SIMD_SCALAR, x, 1, k, KD_TYPE_Q6_K, 0, qs);
    CU_ASSERT(memcmp(q, qs, sizeof q) == 0);
    for (int b = 0; b < 6; b++) {
        double amax = 0.0;
        for (int i = 0; i < 256; i++)
            amax = fmax(amax, fabs((double)x[256 * b + i]));
        CU_ASSERT(fabs(q[b].d - amax / 127.0) <= 1e-6 * amax / 127.0);
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) {
                int i = 16 * g + l, v = q[b].qs[i];
                double want = amax > 0 ? (double)x[256 * b + i] * 127.0 / amax : 0.0;
                CU_ASSERT(v >= -127 && v <= 127);
                CU_ASSERT(fabs(v - want) <= 0.5 + 1e-4);
                sum += v;
            }
            CU_ASSERT_EQUAL(q[b].s.bsums[g], sum);
        }
    }
    /* for Q4_K the blocks carry xm[s] = d * (the sum of values 32s .. 32s + 31) instead */
    kd_q8_block q4[6];
    kd_q8_quantize_rows(NULL, level, x, 1, k, KD_TYPE_Q4_K, 0, q4);
    for (int b = 0; b < 6; b++) {
        CU_ASSERT(memcmp(q4[b].qs, q[b].qs, sizeof q[b].qs) == 0 && q4[b].d == q[b].d);
        for (int s = 0; s < 8; s++) {
            int sum = 0;
            for (int l = 0; l < 32; l++)
                sum += q4[b].qs[32 * s + l];
            CU_ASSERT_EQUAL(q4[b].s.xm[s], q4[b].d * (float)sum);
        }
    }
    /* in lane order the same blocks, each qword i of qs at kd_q8_lane_qword(i), which is a
     * permutation of the 32 */
    for (int t = 0; t < 2; t++) {
        kd_q8_block ql[6];
        const kd_q8_block *in_order = t ? q : q4;
        kd_q8_quantize_rows(NULL, level, x, 1, k, t ? KD_TYPE_Q6_K : KD_TYPE_Q4_K, 1, ql);
        unsigned seen = 0;
        for (int i = 0; i < 32; i++) {
            int at = kd_q8_lane_qword(i, !t);
            CU_ASSERT(at >= 0 && at < 32);
            seen |= 1u << (at & 31);
            for (int b = 0; b < 6; b++)
                CU_ASSERT(memcmp(ql[b].qs + 8 * at, in_order[b].qs + 8 * i, 8) == 0);
        }
        CU_ASSERT_EQUAL(seen, 0xffffffffu);
        for (int b = 0; b < 6; b++)
            CU_ASSERT(ql[b].d == in_order[b].d && memcmp(&ql[b].s, &in_order[b].s, sizeof ql[b].s) == 0);
    }
    /* the check can fail: a changed byte breaks the bsums or the rounding */
    q[3].qs[5] += 2;
    int sum = 0;
    for (int l = 0; l < 16; l++)
        sum += q[3].qs[l];
    CU_ASSERT_NOT_EQUAL(q[3].s.bsums[0], sum);
}

/* The lane sums layout (KD_Q8_X_LANE_SUMS, gemv_q8.h) of 19 rows: in the two full tiles,
 * block b's sums and d where the lane-sum kernels read them, transposed from each row's
 * own bsums and d (the in-order Q6_K quantization); the last 3 rows as without it. */
static void test_lane_sums_layout(void)
{
    enum { M = 19, NB = 2 };
    float *x = malloc(sizeof(float) * M * NB * 256);
    kd_q8_block *ref = aligned_alloc(64, sizeof *ref * M * NB), *q4 = aligned_alloc(64, sizeof *q4 * M * NB);
    kd_q8_block *q4l = aligned_alloc(64, sizeof *q4l * M * NB), *q6l = aligned_alloc(64, sizeof *q6l * M * NB);
    CU_ASSERT_FATAL(x && ref && q4 && q4l && q6l);
    fill_x(x, M * NB * 256, 23);
    const int lanes = KD_Q8_X_LANES | KD_Q8_X_LANE_SUMS;
    kd_q8_quantize_rows(NULL, level, x, M, NB * 256, KD_TYPE_Q6_K, KD_Q8_X_LANES, ref);
    kd_q8_quantize_rows(NULL, level, x, M, NB * 256, KD_TYPE_Q4_K, KD_Q8_X_LANES, q4);
    kd_q8_quantize_rows(NULL, level, x, M, NB * 256, KD_TYPE_Q4_K, lanes, q4l);
    kd_q8_quantize_rows(NULL, level, x, M, NB * 256, KD_TYPE_Q6_K, lanes, q6l);
    int bad = 0;
    for (int r = 0; r < M; r++)
        for (int b = 0; b < NB; b++) {
            const kd_q8_block *o = &ref[r * NB + b], *o4 = &q4[r * NB + b]; /* each type's lanes */
            const kd_q8_block *l4 = &q4l[r * NB + b], *l6 = &q6l[r * NB + b];
            bad += memcmp(l4->qs, o4->qs, sizeof o->qs) != 0 || l4->d != o->d;
            bad += memcmp(l6->qs, o->qs, sizeof o->qs) != 0 || l6->d != o->d;
            bad += memcmp(&l6->s, &o->s, sizeof o->s) != 0; /* Q6_K: bsums stay */
            if (r >= 16) { /* not in a full tile: as without lane sums */
                bad += memcmp(&l4->s, &o4->s, sizeof o->s) != 0;
                continue;
            }
            const int t0 = r - r % 8, i = r % 8; /* tile row 0, row in the tile */
            const kd_q8_block *t4 = &q4l[t0 * NB + b], *t6 = &q6l[t0 * NB + b];
            for (int sb = 0; sb < 8; sb++)
                bad += t4[sb / 2 * NB].s.bsums[2 * i + sb % 2] != o->s.bsums[2 * sb] + o->s.bsums[2 * sb + 1];
            bad += t4[4 * NB].s.xm[i] != o->d;
            bad += t6[i / 4 * NB].pad1[i % 4] != o->d;
        }
    CU_ASSERT_EQUAL(bad, 0);
    free(x), free(ref), free(q4), free(q4l), free(q6l);
}

static void check_q8_vs_oracle(kd_op op, int64_t m, int64_t n, int64_t k, uint64_t seed)
{
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(ctx, op, m, n, k, seed, &p) == 0);
    double *ref = kd_problem_oracle(&p);
    kd_status st;
    float *y = kd_problem_run(ctx, &p, KD_BACKEND_CPU, KD_RUN_CPU_Q8, &st);
    CU_ASSERT_FATAL(ref && y);
    double max_rel, nmse = kd_test_nmse(y, ref, p.out_count, &max_rel);
    int finite = 1;
    for (int64_t i = 0; i < p.out_count; i++)
        finite &= isfinite(y[i]);
    if (!(nmse <= KD_TEST_Q8_NMSE_BUDGET) || !finite)
        printf("\n  %s q8 M=%lld N=%lld K=%lld: nmse %.3g max rel %.3g\n", kd_op_name(op),
               (long long)m, (long long)n, (long long)k, nmse, max_rel);
    CU_ASSERT(nmse <= KD_TEST_Q8_NMSE_BUDGET && finite);
    free(ref);
    free(y);
    kd_problem_free(&p);
}

static const int64_t q8_batches[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17};

static void check_op_vs_oracle(kd_op op)
{
    for (size_t i = 0; i < sizeof q8_batches / sizeof *q8_batches; i++) {
        check_q8_vs_oracle(op, q8_batches[i], 37, 256, 100 + i);
        check_q8_vs_oracle(op, q8_batches[i], 13, 4096, 200 + i);
    }
}

static void test_q4k_q8_vs_oracle(void) { check_op_vs_oracle(KD_OP_Q4K_GEMV); }
static void test_q6k_q8_vs_oracle(void) { check_op_vs_oracle(KD_OP_Q6K_GEMV); }

/* The NMSE check can fail: 5% too large everywhere is an NMSE of 2.5e-3. */
static void test_nmse_check_detects_error(void)
{
    kd_problem p;
    CU_ASSERT_FATAL(kd_problem_make(ctx, KD_OP_Q4K_GEMV, 2, 37, 512, 5, &p) == 0);
    double *ref = kd_problem_oracle(&p);
    kd_status st;
    float *y = kd_problem_run(ctx, &p, KD_BACKEND_CPU, KD_RUN_CPU_Q8, &st);
    CU_ASSERT_FATAL(ref && y);
    double max_rel;
    CU_ASSERT(kd_test_nmse(y, ref, p.out_count, &max_rel) <= KD_TEST_Q8_NMSE_BUDGET);
    for (int64_t i = 0; i < p.out_count; i++)
        y[i] *= 1.05f;
    CU_ASSERT(kd_test_nmse(y, ref, p.out_count, &max_rel) > KD_TEST_Q8_NMSE_BUDGET);
    free(ref);
    free(y);
    kd_problem_free(&p);
}

/* The scalar q8 kernels against a double dot with the quantized x, and the level's kernels
 * against the scalar ones on the same quantized x: the integer parts are exact, so the
 * outputs differ only by the order of the float sums. */
static void check_kernels_vs_scalar(kd_type type, int64_t m, int64_t n, int64_t k, uint64_t seed)
{
    const int64_t nb = k / 256;
    void *w = malloc(kd_quant_row_bytes(type, k) * (size_t)n);
    float *x = malloc(sizeof(float) * (size_t)(m * k)), *wf = malloc(sizeof(float) * (size_t)k);
    float *ys = malloc(sizeof(float) * (size_t)(m * n)), *yl = malloc(sizeof(float) * (size_t)(m * n));
    kd_q8_block *xq = aligned_alloc(64, sizeof *xq * (size_t)(m * nb)); /* as the library's */
    kd_q8_block *xl = aligned_alloc(64, sizeof *xl * (size_t)(m * nb)); /* the level's order */
    CU_ASSERT_FATAL(w && x && wf && ys && yl && xq && xl);
    kd_quant_random_blocks(type, n * nb, seed, w);
    kd_rng r;
    kd_rng_seed(&r, seed + 1);
    kd_fill_uniform(&r, x, m * k, -3.0f, 3.0f);
    kd_q8_quantize_rows(NULL, KD_SIMD_SCALAR, x, m, k, type, 0, xq);
    kd_cpu_env e = {.simd = level, .vnni = level_vnni};
    const kd_q8_kernels *lk = kd_q8_kernels_for(&e, level), *sk = &kd_q8_scalar_kernels;
    kd_q8_quantize_rows(NULL, KD_SIMD_SCALAR, x, m, k, type, lk->x_layout, xl);
    kd_q8_job j = {w, xq, NULL, n, nb, m, 0};
    for (int pass = 0; pass < 2; pass++) {
        const kd_q8_kernels *kk = pass ? lk : sk;
        j.y = pass ? yl : ys;
        j.xq = pass ? xl : xq;
        for (int64_t m0 = 0; m0 < m; m0 += KD_Q8_MAX_MC) /* all rows in one call */
            (type == KD_TYPE_Q4_K ? kk->q4k : kk->q6k)(&j, 0, n, m0,
                                                       (int)(m - m0 < 8 ? m - m0 : 8));
    }
    int64_t bad = 0;
    for (int64_t row = 0; row < n; row++) {
        kd_dequant_row(type, (const char *)w + kd_quant_row_bytes(type, k) * (size_t)row, k, wf);
        for (int64_t mi = 0; mi < m; mi++) {
            /* the dot with the quantized x in double; the sum of |terms|, to which float
             * rounding is relative */
            double scale = 0.0, exact = 0.0;
            for (int64_t i = 0; i < k; i++) {
                const kd_q8_block *xb = &xq[mi * nb + i / 256];
                double t = (double)wf[i] * xb->d * xb->qs[i % 256];
                exact += t;
                scale += fabs(t);
            }
            float a = yl[mi * n + row], b = ys[mi * n + row];
            /* the scalar q8 reference is the exact dot with the quantized x */
            CU_ASSERT(fabs((double)b - exact) <= 1e-5 * scale + 1e-30);
            if (!(fabs((double)a - b) <= 1e-5 * scale + 1e-30)) {
                if (bad++ < 3)
                    printf("\n  %s M=%lld row %lld x-row %lld: %s %.9g vs scalar %.9g (scale %.3g)\n",
                           type == KD_TYPE_Q4_K ? "Q4_K" : "Q6_K", (long long)m, (long long)row,
                           (long long)mi, kd_q8_kernels_name(&e, level), a, b, scale);
            }
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(w), free(x), free(wf), free(ys), free(yl), free(xq), free(xl);
}

static void test_kernels_vs_scalar(void)
{
    for (int t = 0; t < 2; t++) {
        kd_type type = t ? KD_TYPE_Q6_K : KD_TYPE_Q4_K;
        for (size_t i = 0; i < sizeof q8_batches / sizeof *q8_batches; i++) {
            check_kernels_vs_scalar(type, q8_batches[i], 11, 256, 300 + i);
            check_kernels_vs_scalar(type, q8_batches[i], 5, 4096, 400 + i);
        }
    }
}

/* Runs the GEMV of w (N x K) with the m rows of x at x_rows on the cpu, path by flags. */
static float *run_cpu_gemv_flags(kd_tensor *w, const float *x_rows, int64_t m, int64_t n, int64_t k,
                                 unsigned flags)
{
    kd_tensor *x = NULL, *y = NULL;
    float *out = malloc(sizeof(float) * (size_t)(m * n));
    kd_op_desc d = {.op = w ? (kd_tensor_type(w) == KD_TYPE_Q4_K ? KD_OP_Q4K_GEMV : KD_OP_Q6K_GEMV)
                            : KD_OP_Q4K_GEMV};
    if (!out || kd_tensor_f32(ctx, m, k, x_rows, &x) != KD_OK ||
        kd_tensor_f32(ctx, m, n, NULL, &y) != KD_OK) {
        free(out);
        out = NULL;
    } else {
        d.src[0] = w, d.src[1] = x, d.dst = y;
        if (kd_run(ctx, &d, KD_BACKEND_CPU, KD_RUN_NO_FALLBACK | flags) != KD_OK ||
            kd_tensor_read(ctx, y, out, (size_t)(m * n)) != KD_OK) {
            printf("\n  M=%lld: %s\n", (long long)m, kd_last_error(ctx));
            free(out);
            out = NULL;
        }
    }
    kd_tensor_free(x);
    kd_tensor_free(y);
    return out;
}

/* ... on the q8 path. */
static float *run_cpu_gemv(kd_tensor *w, const float *x_rows, int64_t m, int64_t n, int64_t k)
{
    return run_cpu_gemv_flags(w, x_rows, m, n, k, KD_RUN_CPU_Q8);
}

/* Row groups (kd_row_groups.h): a weight the library copies with K > 8192 is stored 8 rows
 * at a time, block by block; borrowed bytes keep GGUF order. Every cpu path at this level
 * (q8, exact, the scalar reference) must give the same bits from both: N = 67 (8 groups,
 * then 3 rows in GGUF order), M from 1 to 300 (tiles over panels of whole groups; the
 * exact path's sgemm from 256). Telling the kernels the copy is in GGUF order must change
 * the outputs, so the comparison sees the layout. */
static void test_row_groups_same_bits(void)
{
    static const int64_t ms[] = {1, 2, 3, 8, 9, 17, 70, 300};
    static const unsigned paths[] = {KD_RUN_CPU_Q8, KD_RUN_CPU_EXACT, KD_RUN_CPU_SCALAR};
    const int64_t n = 67, k = 256 * (KD_ROW_GROUP_MIN_BLOCKS + 1);
    for (int t = 0; t < 2; t++) {
        const kd_type type = t ? KD_TYPE_Q6_K : KD_TYPE_Q4_K;
        const size_t bytes = kd_quant_row_bytes(type, k) * (size_t)n;
        void *blocks = malloc(bytes);
        float *x = malloc(sizeof(float) * (size_t)(300 * k));
        CU_ASSERT_FATAL(blocks && x);
        kd_quant_random_blocks(type, n * (k / 256), 77 + t, blocks);
        kd_rng r;
        kd_rng_seed(&r, 78 + t);
        kd_fill_uniform(&r, x, 300 * k, -2.0f, 2.0f);
        kd_tensor *copy = NULL, *gguf = NULL;
        CU_ASSERT_FATAL(kd_tensor_quant(ctx, type, n, k, blocks, bytes, &copy) == KD_OK);
        CU_ASSERT_FATAL(kd_tensor_quant_borrow(ctx, type, n, k, blocks, bytes, &gguf) == KD_OK);
        CU_ASSERT_EQUAL(copy->grouped_rows, 64);
        CU_ASSERT_EQUAL(gguf->grouped_rows, 0);
        for (size_t p = 0; p < sizeof paths / sizeof *paths; p++)
            for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) {
                if (paths[p] == KD_RUN_CPU_SCALAR && ms[i] > 17)
                    continue; /* the scalar reference: slow, and its M has no tiles */
                float *a = run_cpu_gemv_flags(copy, x, ms[i], n, k, paths[p]);
                float *b = run_cpu_gemv_flags(gguf, x, ms[i], n, k, paths[p]);
                CU_ASSERT_FATAL(a && b);
                if (memcmp(a, b, sizeof(float) * (size_t)(ms[i] * n)) != 0) {
                    CU_FAIL("row groups change the outputs");
                    printf("\n  %s M=%lld path flag 0x%x\n", kd_type_name(type), (long long)ms[i], paths[p]);
                }
                free(a), free(b);
            }
        copy->grouped_rows = 0; /* the same bytes read as GGUF order */
        float *a = run_cpu_gemv_flags(copy, x, 1, n, k, KD_RUN_CPU_Q8);
        float *b = run_cpu_gemv_flags(gguf, x, 1, n, k, KD_RUN_CPU_Q8);
        CU_ASSERT_FATAL(a && b);
        CU_ASSERT(memcmp(a, b, sizeof(float) * (size_t)n) != 0);
        free(a), free(b);
        kd_tensor_free(copy);
        kd_tensor_free(gguf);
        free(blocks), free(x);
    }
}

/* M > 8 on the q8 path: tiles of 8 rows of x over panels of weight rows, split across the
 * pool's pieces (N = 400 rows of K = 4096: Q6_K panels of 39 rows, pieces of 50). With
 * SIMD kernels it must not hand any M to dequantize + sgemm (from 48 before), which
 * was 7.7-10x slower at M = 48: each output row must be bit for bit what the same rows of x
 * give alone, M = 8 for a full tile and M = 1 for a row of the last one (the same kernel
 * sums in the same order; sgemm would give the exact product, not the quantized one). A
 * row of a full tile need not give M = 1's bits: kernels with lane sums (AVX2) add its
 * block sums in another order there. With the generic kernels sgemm serves from 48 and the
 * tight tolerance against the oracle holds. */
static void test_large_m(void)
{
    static const int64_t ms[] = {9, 47, 48, 70};
    kd_cpu_env e = {.simd = level, .vnni = level_vnni};
    const int64_t sgemm_from = kd_q8_sgemm_min_m(&e, level);
    for (int t = 0; t < 2; t++) {
        kd_op op = t ? KD_OP_Q6K_GEMV : KD_OP_Q4K_GEMV;
        for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) {
            kd_problem p;
            CU_ASSERT_FATAL(kd_problem_make(ctx, op, ms[i], 400, 4096, 900 + i, &p) == 0);
            float *y = run_cpu_gemv(p.src[0], p.h_src[1], p.m, p.n, p.k);
            CU_ASSERT_FATAL(y != NULL);
            if (p.m >= sgemm_from) {
                CU_ASSERT(kd_test_run_matches_oracle(ctx, &p, KD_BACKEND_CPU, 0, "q8 large M, sgemm"));
            } else {
                int64_t differ = 0, full = p.m - p.m % KD_Q8_MAX_MC;
                for (int64_t r = 0; r < p.m;) {
                    const int64_t mr = r < full ? KD_Q8_MAX_MC : 1; /* a tile, or one row */
                    float *ya = run_cpu_gemv(p.src[0], p.h_src[1] + r * p.k, mr, p.n, p.k);
                    CU_ASSERT_FATAL(ya != NULL);
                    for (int64_t j = 0; j < mr; j++, r++)
                        differ += memcmp(ya + j * p.n, y + r * p.n, sizeof(float) * (size_t)p.n) != 0;
                    free(ya);
                }
                if (differ)
                    printf("\n  %s M=%lld: %lld rows differ from their tile alone\n",
                           kd_op_name(op), (long long)p.m, (long long)differ);
                CU_ASSERT_EQUAL(differ, 0);
            }
            free(y);
            kd_problem_free(&p);
        }
    }
}

/* The flags pick the path for one call; without one, KD_CPU_GEMV does (default q8);
 * the exact path still meets the tight tolerance. */
static kd_context *context_with_gemv_env(const char *value)
{
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1};
    kd_context *c = NULL;
    if (kd_test_context_under_env("KD_CPU_GEMV", value, &o, &c) != KD_OK)
        printf("\n  KD_CPU_GEMV=%s: %s\n", value ? value : "(unset)", kd_last_error(NULL));
    return c;
}

/* Which kernels each level runs for each set of VNNI encodings a CPU may have: pure
 * choice, so every case is checked here, on any host (the kernels themselves run where
 * the host can: test_kernels_vs_scalar at each level). */
static void test_kernel_choice(void)
{
    static const struct {
        kd_simd level;
        int vnni;
        const char *kernels;
    } cases[] = {
        {KD_SIMD_AVX512, KD_VNNI_EVEX, "avx512-vnni"},      /* Zen 4, Ice Lake */
        {KD_SIMD_AVX512, KD_VNNI_EVEX | KD_VNNI_VEX, "avx512-vnni"}, /* Sapphire Rapids */
        {KD_SIMD_AVX512, 0, "avx2"},                        /* Skylake-X */
        {KD_SIMD_VNNI, KD_VNNI_VEX, "avx-vnni"},            /* Alder Lake */
        {KD_SIMD_VNNI, KD_VNNI_EVEX | KD_VNNI_VEX, "avx-vnni"},
        {KD_SIMD_VNNI, KD_VNNI_EVEX, "avx512vl-vnni"},
        {KD_SIMD_AVX2, KD_VNNI_EVEX | KD_VNNI_VEX, "avx2"},
        {KD_SIMD_SCALAR, KD_VNNI_EVEX, "generic"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        kd_cpu_env e = {.simd = cases[i].level, .vnni = cases[i].vnni};
        const char *got = kd_q8_kernels_name(&e, cases[i].level);
        if (strcmp(got, cases[i].kernels) != 0)
            printf("\n  level %s, vnni %d: %s, expected %s", kd_simd_name(cases[i].level),
                   cases[i].vnni, got, cases[i].kernels);
        CU_ASSERT_STRING_EQUAL(got, cases[i].kernels);
    }
    /* a cap at the VNNI level runs AVX2 on a CPU without VNNI; caps above the host fall
     * to its best; no cap is the best */
    CU_ASSERT_EQUAL(kd_cpu_simd_level(KD_SIMD_VNNI, KD_SIMD_AVX512, 0), KD_SIMD_AVX2);
    CU_ASSERT_EQUAL(kd_cpu_simd_level(KD_SIMD_VNNI, KD_SIMD_AVX512, KD_VNNI_EVEX), KD_SIMD_VNNI);
    CU_ASSERT_EQUAL(kd_cpu_simd_level(KD_SIMD_AVX512, KD_SIMD_VNNI, KD_VNNI_VEX), KD_SIMD_VNNI);
    CU_ASSERT_EQUAL(kd_cpu_simd_level(KD_SIMD_VNNI, KD_SIMD_AVX2, 0), KD_SIMD_AVX2);
    CU_ASSERT_EQUAL(kd_cpu_simd_level(-1, KD_SIMD_VNNI, KD_VNNI_VEX), KD_SIMD_VNNI);
    CU_ASSERT_EQUAL(kd_cpu_simd_level(KD_SIMD_SCALAR, KD_SIMD_AVX512, KD_VNNI_EVEX), KD_SIMD_SCALAR);
}

static void test_path_selection(void)
{
    for (int env = 0; env < 3; env++) {
        const char *value = env == 0 ? NULL : env == 1 ? "q8" : "exact";
        kd_context *c = context_with_gemv_env(value);
        CU_ASSERT_FATAL(c != NULL);
        CU_ASSERT_PTR_NOT_NULL(strstr(kd_backend_reason(c, KD_BACKEND_CPU),
                                      env == 2 ? "GEMV exact" : "GEMV q8"));
        /* the same as data: both paths, the default one per KD_CPU_GEMV */
        unsigned dflt = 0;
        CU_ASSERT_EQUAL(kd_backend_gemv_paths(c, KD_BACKEND_CPU, &dflt), KD_GEMV_EXACT | KD_GEMV_Q8);
        CU_ASSERT_EQUAL(dflt, env == 2 ? KD_GEMV_EXACT : KD_GEMV_Q8);
        CU_ASSERT_EQUAL(kd_backend_gemv_paths(c, KD_BACKEND_CPU, NULL), KD_GEMV_EXACT | KD_GEMV_Q8);
        /* a backend that is absent (disabled here) offers none */
        dflt = 99;
        CU_ASSERT_EQUAL(kd_backend_gemv_paths(c, KD_BACKEND_OPENCL, &dflt), 0u);
        CU_ASSERT_EQUAL(dflt, 0u);
        CU_ASSERT_EQUAL(kd_backend_gemv_paths(NULL, KD_BACKEND_CPU, NULL), 0u);
        CU_ASSERT_EQUAL(kd_backend_gemv_paths(c, KD_BACKEND_COUNT, NULL), 0u);
        kd_problem p;
        CU_ASSERT_FATAL(kd_problem_make(c, KD_OP_Q6K_GEMV, 3, 29, 512, 77, &p) == 0);
        double *ref = kd_problem_oracle(&p);
        kd_status st;
        kd_metrics_snapshot before, after;
        kd_metrics_get(c, &before);
        float *def = kd_problem_run(c, &p, KD_BACKEND_CPU, 0, &st);
        float *q8 = kd_problem_run(c, &p, KD_BACKEND_CPU, KD_RUN_CPU_Q8, &st);
        float *ex = kd_problem_run(c, &p, KD_BACKEND_CPU, KD_RUN_CPU_EXACT, &st);
        CU_ASSERT_FATAL(ref && def && q8 && ex);
        /* the metrics count the calls per path */
        kd_metrics_get(c, &after);
        CU_ASSERT_EQUAL(after.cpu_gemv_q8 - before.cpu_gemv_q8, env == 2 ? 1u : 2u);
        CU_ASSERT_EQUAL(after.cpu_gemv_exact - before.cpu_gemv_exact, env == 2 ? 2u : 1u);
        char json[4096];
        kd_metrics_export(c, "json", json, sizeof json);
        char want[64];
        snprintf(want, sizeof want, "\"cpu_gemv\": {\"exact\": %llu, \"q8\": %llu}",
                 (unsigned long long)after.cpu_gemv_exact, (unsigned long long)after.cpu_gemv_q8);
        CU_ASSERT_PTR_NOT_NULL(strstr(json, want));
        size_t bytes = sizeof(float) * (size_t)p.out_count;
        CU_ASSERT(memcmp(def, env == 2 ? ex : q8, bytes) == 0);
        CU_ASSERT(memcmp(q8, ex, bytes) != 0); /* two different paths */
        kd_cmp cmp;
        kd_compare_to_ref(ex, ref, p.out_count, KD_TOLERANCE, &cmp);
        CU_ASSERT(cmp.pass);
        free(ref), free(def), free(q8), free(ex);
        kd_problem_free(&p);
        kd_context_destroy(c);
    }
}

/* A malformed cpu variable makes context creation fail with a message naming it. */
static void expect_refused(const char *var, const char *value)
{
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1};
    kd_test_expect_env_refused(var, value, &o);
}

static void test_bad_env_refused(void)
{
    expect_refused("KD_CPU_GEMV", "fast");
    expect_refused("KD_CPU_SIMD", "avx3");
    expect_refused("KD_CPU_BLAS_MIN_M", "12x");
    expect_refused("KD_CPU_BLAS_MIN_M", "0");
    /* an empty value means "not given" for every KD_* variable (runtime/env.h) */
    /* and the good values are accepted (the refusals above are not blanket failures) */
    kd_context *c = context_with_gemv_env("EXACT");
    CU_ASSERT_PTR_NOT_NULL(c);
    kd_context_destroy(c);
}

int main(void)
{
    char why[256];
    if (kd_test_cpu_level(&level, &level_vnni, why, sizeof why))
        return kd_test_skip(why);
    kd_cpu_env e = {.simd = level, .vnni = level_vnni};
    printf("q8 kernels under test: %s\n", kd_q8_kernels_name(&e, level));
    if (!(ctx = kd_test_cpu_context()))
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("cpu_q8", NULL, NULL);
    CU_add_test(s, "quantize x vs double reference", test_quantize_vs_reference);
    CU_add_test(s, "lane sums layout of full tiles", test_lane_sums_layout);
    CU_add_test(s, "q4k q8 gemv vs oracle (nmse)", test_q4k_q8_vs_oracle);
    CU_add_test(s, "q6k q8 gemv vs oracle (nmse)", test_q6k_q8_vs_oracle);
    CU_add_test(s, "nmse check detects errors", test_nmse_check_detects_error);
    CU_add_test(s, "scalar q8 exact on quantized x; level kernels vs scalar", test_kernels_vs_scalar);
    CU_add_test(s, "M > 8: panels, tiles, no sgemm with SIMD kernels", test_large_m);
    CU_add_test(s, "row groups: the same bits as GGUF order on every path", test_row_groups_same_bits);
    CU_add_test(s, "q8 kernels per level and VNNI encodings", test_kernel_choice);
    CU_add_test(s, "path flags and KD_CPU_GEMV", test_path_selection);
    CU_add_test(s, "bad cpu env values refused", test_bad_env_refused);
    int rc = kd_test_main();
    kd_context_destroy(ctx);
    return rc;
}
