/* The cpu backend: always present, runs on host memory, the reference for the others. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cpu_ops.h"
#include "env.h"
#include "gemv_q8.h"
#include "kd_row_groups.h"
#include "kd_internal.h"

#if (defined(__x86_64__) || defined(__i386__)) && !defined(KD_SIMD_EMULATED)
#include <cpuid.h>

/* AVX-VNNI: CPUID leaf 7 sub-leaf 1, EAX bit 4 (read directly: not every compiler's
 * __builtin_cpu_supports knows the name). */
static int cpu_has_avx_vnni(void)
{
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 4 & 1);
}
#endif

kd_simd kd_cpu_simd_supported(int *vnni)
{
    kd_simd best = KD_SIMD_SCALAR;
    *vnni = 0;
#if defined(KD_SIMD_EMULATED)
    /* every level's intrinsics are SIMDe's portable C (simd_emulated.h): all can run.
     * KD_EMULATED_VNNI=vex|evex (this test build only) offers one VNNI encoding, as a CPU
     * with just that one has: with both, level vnni takes VEX and the EVEX form never runs. */
    const char *enc = getenv("KD_EMULATED_VNNI");
    *vnni = enc && strcmp(enc, "vex") == 0    ? KD_VNNI_VEX
            : enc && strcmp(enc, "evex") == 0 ? KD_VNNI_EVEX
                                              : KD_VNNI_VEX | KD_VNNI_EVEX;
    best = KD_SIMD_AVX512;
#elif defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return best;
    best = KD_SIMD_AVX2;
    *vnni = (cpu_has_avx_vnni() ? KD_VNNI_VEX : 0) |
            (__builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") ? KD_VNNI_EVEX : 0);
    if (*vnni)
        best = KD_SIMD_VNNI;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
        best = KD_SIMD_AVX512;
#endif
    return best;
}

kd_simd kd_cpu_simd_level(int cap, kd_simd best, int vnni)
{
    kd_simd level = cap >= 0 && (kd_simd)cap < best ? (kd_simd)cap : best;
    return level == KD_SIMD_VNNI && !vnni ? KD_SIMD_AVX2 : level;
}

const char *kd_simd_name(kd_simd s)
{
    return kd_simd_level_names[s];
}

/* The cpu settings: the SIMD cap and BLAS crossover as the context resolved them (options
 * or environment, validated in env.c), and KD_CPU_GEMV, where a typo is an error rather
 * than silently another path. */
static kd_status read_cpu_settings(const kd_context *ctx, kd_cpu_env *e, char *why, size_t cap)
{
    static const char *const gemv_paths[] = {"q8", "exact"};
    int vnni, path = 0, found;
    kd_simd best = kd_cpu_simd_supported(&vnni);
    const kd_settings *st = kd_context_settings(ctx);
    e->simd = kd_cpu_simd_level(st->cpu_simd_cap, best, vnni);
    e->vnni = vnni;
    e->blas_min_m = st->cpu_blas_min_m > 0 ? st->cpu_blas_min_m : KD_CPU_BLAS_MIN_M_DEFAULT;
    e->blas_min_m_named = st->cpu_blas_min_m > 0;
    kd_status s = kd_env_choice("KD_CPU_GEMV", gemv_paths, 2, &path, &found, why, cap);
    e->gemv_exact = path == 1; /* the q8 path is the default (SPEC section 2) */
    return s;
}

static kd_status cpu_init(kd_context *ctx, void **state, char *why, size_t cap)
{
    kd_cpu_env *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(why, cap, "out of memory creating the cpu backend");
        return KD_ERR_NOMEM;
    }
    kd_status st = read_cpu_settings(ctx, e, why, cap);
    if (st != KD_OK) {
        free(e);
        return st;
    }
    if (!(e->pool = kd_pool_create(kd_context_cpu_threads(ctx)))) {
        free(e);
        snprintf(why, cap, "out of memory creating the thread pool");
        return KD_ERR_NOMEM;
    }
    e->threads_from = kd_context_settings(ctx)->cpu_threads_from;
    *state = e;
    return KD_OK;
}

static void cpu_shutdown(void *state)
{
    kd_cpu_env *e = state;
    kd_pool_destroy(e->pool);
    free(e);
}

/* Why the pool has its size, in words (kd_settings.cpu_threads_from). */
static const char *threads_reason(const char *from)
{
    if (!from || strcmp(from, "online") == 0)
        return "one per CPU";
    if (strcmp(from, "affinity") == 0)
        return "one per CPU of its affinity mask";
    if (strcmp(from, "cgroup quota") == 0)
        return "one per CPU of its cgroup's CPU quota";
    return from; /* KD_CPU_THREADS, kd_context_options.cpu_threads */
}

static void cpu_describe(void *state, char *buf, size_t cap)
{
    const kd_cpu_env *e = state;
#ifdef KD_HAVE_OPENBLAS
    const char *blas = "OpenBLAS";
#else
    const char *blas = "no BLAS";
#endif
    const int64_t q8_min_m = kd_q8_sgemm_min_m(e, e->simd);
    char q8[64] = "";
    if (q8_min_m != e->blas_min_m && q8_min_m != INT64_MAX)
        snprintf(q8, sizeof q8, ", from %lld on the q8 path", (long long)q8_min_m);
    const int threads = kd_pool_threads(e->pool);
    snprintf(buf, cap, "host cpu, %d thread%s (%s), SIMD %s, GEMV %s (%s kernels), %s (sgemm from M >= %lld%s%s), "
             "copied weights with K > %d in row groups of %d",
             threads, threads == 1 ? "" : "s", threads_reason(e->threads_from), kd_simd_name(e->simd),
             kd_cpu_gemv_path_name(e->gemv_exact),
             e->gemv_exact ? kd_simd_name(e->simd) : kd_q8_kernels_name(e, e->simd), blas,
             (long long)e->blas_min_m, q8_min_m == e->blas_min_m ? "" : " on the exact path", q8,
             256 * KD_ROW_GROUP_MIN_BLOCKS, KD_ROW_GROUP);
}

const char *kd_cpu_gemv_path_name(int exact) { return exact ? "exact" : "q8"; }

/* KD_RUN_CPU_SCALAR: the scalar exact reference as before; KD_RUN_CPU_EXACT /
 * KD_RUN_CPU_Q8 pick a path for one call; otherwise KD_CPU_GEMV (default q8). */
static int gemv_runs_exact(const kd_cpu_env *e, unsigned flags)
{
    if (flags & (KD_RUN_CPU_SCALAR | KD_RUN_CPU_EXACT))
        return 1;
    if (flags & KD_RUN_CPU_Q8)
        return 0;
    return e->gemv_exact;
}

static unsigned cpu_gemv_paths(void *state, unsigned *default_path)
{
    const kd_cpu_env *e = state;
    *default_path = e->gemv_exact ? KD_GEMV_EXACT : KD_GEMV_Q8;
    return KD_GEMV_EXACT | KD_GEMV_Q8;
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
        kd_status st;
        kd_type type = c->op == KD_OP_Q4K_GEMV ? KD_TYPE_Q4_K : KD_TYPE_Q6_K;
        int exact = gemv_runs_exact(e, c->flags);
        if (exact)
            st = c->op == KD_OP_Q4K_GEMV ? kd_cpu_gemv_q4k(e, c, scalar) : kd_cpu_gemv_q6k(e, c, scalar);
        else
            st = kd_cpu_gemv_q8(e, c, type, e->simd);
        if (st == KD_OK)
            kd_metrics_add_gemv(&ctx->metrics, KD_BACKEND_CPU, exact);
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
    .gemv_paths = cpu_gemv_paths,
    .alloc = NULL,
    .release = NULL,
    .upload = NULL,
    .download = NULL,
    .run = cpu_run,
};
