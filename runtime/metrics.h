/*
 * Dispatch metrics (contract: dispatch_metrics): per-backend atomic counters, latency
 * histograms with bucket boundaries 100/500/1000/5000 us (a value equal to a boundary
 * goes to the upper bucket), fallbacks and transfer bytes.
 * Invariants: total = cpu + gpu at all times; 0 <= gpu_ratio <= 1 (0 with no dispatch);
 * the bucket counts of a histogram sum to its count.
 */
#ifndef KD_METRICS_H
#define KD_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "kdispatch.h"

#define KD_LAT_BUCKETS 5 /* <100, [100,500), [500,1000), [1000,5000), >=5000 us */
extern const double kd_latency_bounds_us[KD_LAT_BUCKETS - 1];

typedef struct kd_histogram {
    atomic_uint_fast64_t bucket[KD_LAT_BUCKETS];
    atomic_uint_fast64_t count;
    _Atomic double sum_us;
    _Atomic double min_us;
    _Atomic double max_us;
} kd_histogram;

typedef struct kd_metrics {
    atomic_uint_fast64_t dispatches[KD_BACKEND_COUNT];
    atomic_uint_fast64_t cpu_dispatches;
    atomic_uint_fast64_t gpu_dispatches;
    atomic_uint_fast64_t fallbacks;
    atomic_uint_fast64_t bytes_to_device;
    atomic_uint_fast64_t bytes_from_device;
    kd_histogram latency[KD_BACKEND_COUNT];
} kd_metrics;

void kd_metrics_init(kd_metrics *m);
/* One dispatch on backend b that took latency_us; offload: counts as gpu. */
void kd_metrics_record(kd_metrics *m, kd_backend_id b, int offload, double latency_us);
void kd_metrics_add_fallback(kd_metrics *m);
void kd_metrics_add_transfer(kd_metrics *m, int to_device, uint64_t bytes);
void kd_metrics_snapshot_of(const kd_metrics *m, kd_metrics_snapshot *out);
double kd_metrics_gpu_ratio(uint64_t cpu, uint64_t gpu);
/* Quantile q in [0,1] of a histogram by linear interpolation inside its bucket. */
double kd_histogram_quantile(const kd_histogram *h, double q);
size_t kd_metrics_export_to(const kd_metrics *m, const char *format, char *buf, size_t cap);

#endif
