/* The cpu backend's kernels. Each op has a plain scalar path (the reference) and a fast
 * path (SIMD chosen at run time + threads), and for each a single-row kernel (M = 1) and a
 * batched kernel (M > 1). */
#ifndef KD_CPU_OPS_H
#define KD_CPU_OPS_H

#include <stdint.h>
#include "kd_backend.h"

/* ---- thread pool (threads.c) ---- */
typedef struct kd_pool kd_pool;
typedef void (*kd_range_fn)(void *arg, int64_t begin, int64_t end);
kd_pool *kd_pool_create(int threads);
void kd_pool_destroy(kd_pool *p);
int kd_pool_threads(const kd_pool *p);
/* Runs fn over [0, n) split into pieces of at least grain items, on all threads. */
void kd_pool_for(kd_pool *p, int64_t n, int64_t grain, kd_range_fn fn, void *arg);

/* ---- SIMD level, chosen once at run time ---- */
typedef enum kd_simd { KD_SIMD_SCALAR = 0, KD_SIMD_AVX2 = 1, KD_SIMD_AVX512 = 2 } kd_simd;
/* Best level the CPU supports; *vnni: it also has AVX-512 VNNI (the q8 GEMV's kernels). */
kd_simd kd_cpu_simd_supported(int *vnni);
const char *kd_simd_name(kd_simd s);
/* The backend's device_info entry: one device, the host CPU (cpu_device.c). */
kd_status kd_cpu_device_info(int index, kd_device_info *out, int *count, char *why, size_t cap);

typedef struct kd_cpu_env {
    kd_pool *pool;
    kd_simd simd;
    int64_t blas_min_m; /* batched GEMV: from this M on, dequantize + cblas_sgemm */
    int vnni;           /* simd is AVX-512 and the CPU has VNNI */
    int gemv_exact;     /* default GEMV path: 1 exact (f32 x), 0 q8 (KD_CPU_GEMV) */
} kd_cpu_env;

/* "exact" or "q8": the GEMV path's name in devices, compare, bench and the metrics. */
const char *kd_cpu_gemv_path_name(int exact);

/* Each entry runs one op; scalar = 1 selects the plain scalar path. */
void kd_cpu_rmsnorm(const kd_cpu_env *e, const kd_call *c, int scalar);
void kd_cpu_rope(const kd_cpu_env *e, const kd_call *c, int scalar);
void kd_cpu_swiglu(const kd_cpu_env *e, const kd_call *c, int scalar);
void kd_cpu_residual_add(const kd_cpu_env *e, const kd_call *c, int scalar);
kd_status kd_cpu_gemv_q4k(const kd_cpu_env *e, const kd_call *c, int scalar);
kd_status kd_cpu_gemv_q6k(const kd_cpu_env *e, const kd_call *c, int scalar);
/* Dequantize-then-sgemm for large M (gemv_blas.c); KD_ERR_UNAVAILABLE without OpenBLAS. */
kd_status kd_cpu_gemv_blas(const kd_cpu_env *e, const kd_call *c, kd_type type);

/* Whether an elementwise op's f32 output of m rows of n values is written with streaming
 * (non-temporal) stores: when it is far larger than a last-level cache, so that the
 * consumer would find it in memory anyway, writing around the cache saves the read of
 * each line before it is written (a third of a read+write stream's traffic); and only
 * when every row starts 64-byte aligned, as the stores need. */
#define KD_CPU_STREAM_MIN_BYTES (32ll << 20)
static inline int kd_cpu_stream_output(const void *y, int64_t m, int64_t n)
{
    return 4 * m * n >= KD_CPU_STREAM_MIN_BYTES && (uintptr_t)y % 64 == 0 && n % 16 == 0;
}

#endif
