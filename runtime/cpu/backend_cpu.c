/* The cpu backend: always present, runs on host memory, the reference for the others. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cpu_ops.h"
#include "env.h"

kd_simd kd_cpu_simd(void)
{
    kd_simd best = KD_SIMD_SCALAR;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        best = KD_SIMD_AVX2;
    if (best == KD_SIMD_AVX2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw"))
        best = KD_SIMD_AVX512;
#endif
    /* KD_CPU_SIMD=scalar|avx2|avx512 caps the level (to test each path on one machine). */
    const char *cap = getenv("KD_CPU_SIMD");
    if (cap) {
        kd_simd want = strcasecmp(cap, "scalar") == 0 ? KD_SIMD_SCALAR
                       : strcasecmp(cap, "avx2") == 0 ? KD_SIMD_AVX2
                                                       : KD_SIMD_AVX512;
        if (want < best)
            best = want;
    }
    return best;
}

const char *kd_simd_name(kd_simd s)
{
    return s == KD_SIMD_AVX512 ? "avx512" : s == KD_SIMD_AVX2 ? "avx2" : "scalar";
}

/* Below this M the fused decode-and-dot kernel wins; from it on, dequantize + sgemm.
 * Measured (README, "cpu GEMV crossover"): on 2 AVX2 cores with a 7281 x 4096 weight the
 * fused kernel costs ~1.4 ms per row of x and the sgemm path ~60-100 ms for any M up to
 * 128; they cross between M = 32 and 64 (Q4_K near 48, Q6_K between 48 and 64). */
#define KD_CPU_BLAS_MIN_M_DEFAULT 48

static kd_status cpu_init(kd_context *ctx, void **state, char *why, size_t cap)
{
    kd_cpu_env *e = calloc(1, sizeof *e);
    if (!e || !(e->pool = kd_pool_create(kd_context_cpu_threads(ctx)))) {
        free(e);
        snprintf(why, cap, "out of memory creating the thread pool");
        return KD_ERR_NOMEM;
    }
    e->simd = kd_cpu_simd();
    /* The context's cap: kd_context_options.cpu_simd, else KD_CPU_SIMD (validated in env.c). */
    int simd_cap = kd_context_settings(ctx)->cpu_simd_cap;
    if (simd_cap >= 0 && (kd_simd)simd_cap < e->simd)
        e->simd = (kd_simd)simd_cap;
    const char *m = getenv("KD_CPU_BLAS_MIN_M");
    e->blas_min_m = m && atoll(m) > 0 ? atoll(m) : KD_CPU_BLAS_MIN_M_DEFAULT;
    *state = e;
    return KD_OK;
}

static void cpu_shutdown(void *state)
{
    kd_cpu_env *e = state;
    kd_pool_destroy(e->pool);
    free(e);
}

static void cpu_describe(void *state, char *buf, size_t cap)
{
    const kd_cpu_env *e = state;
#ifdef KD_HAVE_OPENBLAS
    const char *blas = "OpenBLAS";
#else
    const char *blas = "no BLAS";
#endif
    snprintf(buf, cap, "host cpu, %d threads, SIMD %s, %s (sgemm from M >= %lld)",
             kd_pool_threads(e->pool), kd_simd_name(e->simd), blas, (long long)e->blas_min_m);
}

static kd_status cpu_run(kd_context *ctx, void *state, const kd_call *c)
{
    const kd_cpu_env *e = state;
    int scalar = (c->flags & KD_RUN_CPU_SCALAR) != 0;
    switch (c->op) {
    case KD_OP_RMSNORM: kd_cpu_rmsnorm(e, c, scalar); return KD_OK;
    case KD_OP_ROPE: kd_cpu_rope(e, c, scalar); return KD_OK;
    case KD_OP_SWIGLU: kd_cpu_swiglu(e, c, scalar); return KD_OK;
    case KD_OP_RESIDUAL_ADD: kd_cpu_residual_add(e, c, scalar); return KD_OK;
    case KD_OP_Q4K_GEMV:
    case KD_OP_Q6K_GEMV: {
        kd_status st = c->op == KD_OP_Q4K_GEMV ? kd_cpu_gemv_q4k(e, c, scalar)
                                               : kd_cpu_gemv_q6k(e, c, scalar);
        return st == KD_OK ? st : kd_error(ctx, st, "cpu %s: out of host memory", kd_op_name(c->op));
    }
    default: return kd_error(ctx, KD_ERR_ARG, "cpu: unknown op %d", (int)c->op);
    }
}

const kd_backend_ops kd_cpu_backend = {
    .name = "cpu",
    .is_offload = 0, /* what every offload falls back to: no thresholds, no rank */
    .init = cpu_init,
    .shutdown = cpu_shutdown,
    .describe = cpu_describe,
    .device_info = kd_cpu_device_info,
    .alloc = NULL,
    .release = NULL,
    .upload = NULL,
    .download = NULL,
    .run = cpu_run,
};
