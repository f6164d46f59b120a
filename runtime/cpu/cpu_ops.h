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
/* The same over rows [0, n) in pieces that begin on multiples of unit (row groups: a piece
 * never splits a group), of at least grain rows. */
void kd_pool_for_units(kd_pool *p, int64_t n, int64_t unit, int64_t grain, kd_range_fn fn, void *arg);

/* GEMV with more rows of x than one kernel call serves (8): the weight rows go in panels
 * of this many bytes, which stay in L2 while every tile of 8 rows of x passes over them,
 * so the weights come from memory once and x once per panel. A quarter of a 512 KiB L2
 * leaves room for the tile (q8: 37 KB at K = 4096; f32: 131 KB). */
#define KD_CPU_PANEL_BYTES (128 * 1024)
/* Weight rows per panel for rows of row_bytes bytes (at least 1). */
static inline int64_t kd_cpu_panel_rows(int64_t row_bytes)
{
    return row_bytes < KD_CPU_PANEL_BYTES ? KD_CPU_PANEL_BYTES / row_bytes : 1;
}

/* The same in whole units of rows (row groups: KD_ROW_GROUP), at least one unit. */
static inline int64_t kd_cpu_panel_units(int64_t row_bytes, int64_t unit)
{
    const int64_t rows = kd_cpu_panel_rows(row_bytes);
    return rows > unit ? rows - rows % unit : unit;
}

/* A kernel call on weight rows [p0, p1) for rows m0 .. m0 + mc - 1 of x. */
typedef void (*kd_cpu_tile_fn)(const void *arg, int64_t p0, int64_t p1, int64_t m0, int mc);
/* Weight rows [r0, r1) of a GEMV with m rows of x: panel by panel, each with every tile
 * of up to tile_m rows of x (the exact and q8 paths both). */
static inline void kd_cpu_for_tiles(int64_t r0, int64_t r1, int64_t m, int64_t panel, int tile_m,
                                    kd_cpu_tile_fn tile, const void *arg)
{
    for (int64_t p0 = r0; p0 < r1; p0 += panel) {
        const int64_t p1 = r1 - p0 < panel ? r1 : p0 + panel;
        for (int64_t m0 = 0; m0 < m; m0 += tile_m)
            tile(arg, p0, p1, m0, (int)(m - m0 < tile_m ? m - m0 : tile_m));
    }
}

/* ---- SIMD level, chosen once at run time ---- */
/* VNNI: AVX2 with 256-bit int8 dot products (vpdpbusd), for the q8 GEMV; the other ops
 * run their AVX2 kernels there. */
typedef enum kd_simd {
    KD_SIMD_SCALAR = 0,
    KD_SIMD_AVX2 = 1,
    KD_SIMD_VNNI = 2,
    KD_SIMD_AVX512 = 3
} kd_simd;
/* The encodings of vpdpbusd a CPU has, as bits. */
enum {
    KD_VNNI_VEX = 1, /* AVX-VNNI: 256-bit (Intel from Alder Lake) */
    KD_VNNI_EVEX = 2 /* AVX-512 VNNI with VL: 512- and 256-bit */
};
/* Best level the CPU supports; *vnni: its KD_VNNI_* bits. */
kd_simd kd_cpu_simd_supported(int *vnni);
/* The level that runs under a cap (-1: none): the cap, or best where the cap is above it;
 * VNNI on a CPU without it (AVX-512 without VNNI) runs AVX2. */
kd_simd kd_cpu_simd_level(int cap, kd_simd best, int vnni);
const char *kd_simd_name(kd_simd s);
/* The backend's device_info entry: one device, the host CPU (cpu_device.c). */
kd_status kd_cpu_device_info(int index, kd_device_info *out, int *count, char *why, size_t cap);

/* The exact GEMV path's crossover to dequantize + sgemm (KD_CPU_BLAS_MIN_M's default).
 * Measured with the panels (gemv.h), kdispatch bench --n 4096 --k 4096, 2 threads, fused
 * against sgemm in ms: M = 48 18.7 / 50.9 (Q4_K) and 17.0 / 61.3 (Q6_K); 192 74.1 / 74.7
 * and 68.2 / 84.4; 256 106 / 97 and 87 / 96; 1024 411 / 232 and 363 / 244 (AVX-512; AVX2
 * kernels at 256: 88 / 96 and 92 / 94). Before the panels the fused kernel's tiles of 32
 * took 8.6x M = 8 at M = 32, and the crossover was 48. */
#define KD_CPU_BLAS_MIN_M_DEFAULT 256
/* The q8 path's, with the generic kernels (no AVX2): 2 threads, 4096 x 4096, M = 64
 * generic 75 / 121 ms against sgemm 44 / 67. With SIMD kernels the q8 path never hands
 * off (gemv_q8.c). */
#define KD_CPU_BLAS_MIN_M_Q8_GENERIC 48

typedef struct kd_cpu_env {
    kd_pool *pool;
    kd_simd simd;
    int64_t blas_min_m; /* exact GEMV: from this M on, dequantize + cblas_sgemm */
    int blas_min_m_named; /* KD_CPU_BLAS_MIN_M set: it applies to the generic q8 kernels too */
    int vnni;           /* the CPU's KD_VNNI_* bits (the q8 kernels of a level: gemv_q8.c) */
    int gemv_exact;     /* default GEMV path: 1 exact (f32 x), 0 q8 (KD_CPU_GEMV) */
    const char *threads_from; /* what set the pool's size (kd_settings.cpu_threads_from) */
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
