/*
 * Dispatch metrics (contract: dispatch_metrics): per-backend latency histograms with
 * bucket boundaries 100/500/1000/5000 us (a value equal to a boundary goes to the upper
 * bucket), fallbacks and transfer bytes, all in atomics.
 *
 * Invariants: total = cpu + gpu at all times; 0 <= gpu_ratio <= 1 (0 with no dispatch);
 * the bucket counts of a histogram sum to its count. They hold in every snapshot, also
 * while other threads record, because only bucket counters are stored: a dispatch is one
 * atomic increment of one bucket of its backend's histogram, and the per-backend, cpu,
 * gpu and total counts are derived from the loaded bucket counters by the proved core
 * (metrics_core.h). cpu = the host cpu backend; gpu = every offload backend.
 *
 * What a snapshot does not promise under concurrent recording: sum/min/max of a histogram
 * are separate atomics, so a snapshot taken mid-recording may include a latency in the
 * sum but not yet in the count (the mean and quantiles are kept inside [min, max]).
 */
#ifndef KD_METRICS_H
#define KD_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "kdispatch.h"
#include "metrics_core.h"

extern const double kd_latency_bounds_us[KD_LAT_BUCKETS - 1]; /* 100, 500, 1000, 5000 */

typedef struct kd_histogram {
    _Atomic uint64_t bucket[KD_LAT_BUCKETS];
    _Atomic uint64_t sum_ns;
    _Atomic uint64_t min_ns; /* KD_CORE_NO_MIN while empty */
    _Atomic uint64_t max_ns;
} kd_histogram;

typedef struct kd_metrics {
    kd_histogram latency[KD_BACKEND_COUNT]; /* the dispatch counts are their bucket sums */
    _Atomic uint64_t fallbacks;
    _Atomic uint64_t bytes_to_device;
    _Atomic uint64_t bytes_from_device;
    /* GEMV calls by backend and path: [b][0] exact, [b][1] q8 (x quantized to int8) */
    _Atomic uint64_t gemv[KD_BACKEND_COUNT][2];
} kd_metrics;

/* Latency statistics of one backend, in microseconds. */
typedef struct kd_latency_stats {
    uint64_t count;
    uint64_t bucket[KD_LAT_BUCKETS]; /* not cumulative */
    double sum_us, min_us, max_us, mean_us; /* 0 when count is 0 */
    double p50_us, p95_us, p99_us;
} kd_latency_stats;

/* Empties every counter (also the reset). Safe while other threads record: each counter
 * is stored atomically, and counts derived at read time stay consistent. */
void kd_metrics_init(kd_metrics *m);
/* One dispatch on backend b that took latency_us (NaN or negative counts as 0). The
 * cpu/gpu class is the backend's: b == KD_BACKEND_CPU is cpu, any other backend is gpu;
 * offload is accepted for the caller's convenience and must agree. */
void kd_metrics_record(kd_metrics *m, kd_backend_id b, int offload, double latency_us);
void kd_metrics_add_fallback(kd_metrics *m);
/* One GEMV call on backend b, on the exact (exact = 1) or the q8 path. */
void kd_metrics_add_gemv(kd_metrics *m, kd_backend_id b, int exact);
void kd_metrics_add_transfer(kd_metrics *m, int to_device, uint64_t bytes);
void kd_metrics_snapshot_of(const kd_metrics *m, kd_metrics_snapshot *out);
void kd_metrics_latency_of(const kd_metrics *m, kd_backend_id b, kd_latency_stats *out);
double kd_metrics_gpu_ratio(uint64_t cpu, uint64_t gpu);
/* Quantile q in [0,1] of backend b's latencies (us), by linear interpolation inside its
 * bucket; 0 when empty. */
double kd_metrics_latency_quantile(const kd_metrics *m, kd_backend_id b, double q);
/* format "json" or "prom"; returns the length needed (like snprintf), 0 for an unknown
 * format or NULL metrics. buf may be NULL when cap is 0. */
size_t kd_metrics_export_to(const kd_metrics *m, const char *format, char *buf, size_t cap);

#endif
