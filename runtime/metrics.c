/* Dispatch metrics: atomic recording, consistent snapshots, JSON and Prometheus export.
 * See metrics.h for the invariants and metrics_core.h for the proved arithmetic. */
#include "metrics.h"
#include "kd_backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

_Static_assert(KD_BACKEND_COUNT == KD_CORE_BACKENDS, "metrics_core.h models every backend id");
_Static_assert(KD_BACKEND_CPU == 0, "metrics_core.h treats backend 0 as the host cpu");

const double kd_latency_bounds_us[KD_LAT_BUCKETS - 1] = {KD_LAT_B1_US, KD_LAT_B2_US,
                                                        KD_LAT_B3_US, KD_LAT_B4_US};

/* Latencies above this (in us) are recorded as this: keeps every sum below the limit the
 * proofs assume for a very long time (2^59 ns). */
#define KD_MAX_LATENCY_US 1.0e12

static void hist_clear(kd_histogram *h)
{
    kd_core_hist empty = kd_core_hist_empty();
    for (int i = 0; i < KD_LAT_BUCKETS; i++)
        atomic_store_explicit(&h->bucket[i], empty.bucket[i], memory_order_relaxed);
    atomic_store_explicit(&h->sum_ns, empty.sum_ns, memory_order_relaxed);
    atomic_store_explicit(&h->min_ns, empty.min_ns, memory_order_relaxed);
    atomic_store_explicit(&h->max_ns, empty.max_ns, memory_order_relaxed);
}

void kd_metrics_init(kd_metrics *m)
{
    if (!m)
        return;
    for (int b = 0; b < KD_BACKEND_COUNT; b++)
        hist_clear(&m->latency[b]);
    atomic_store_explicit(&m->fallbacks, 0, memory_order_relaxed);
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        atomic_store_explicit(&m->gemv[b][0], 0, memory_order_relaxed);
        atomic_store_explicit(&m->gemv[b][1], 0, memory_order_relaxed);
    }
    atomic_store_explicit(&m->bytes_to_device, 0, memory_order_relaxed);
    atomic_store_explicit(&m->bytes_from_device, 0, memory_order_relaxed);
}

/* NaN and negative latencies count as 0; huge ones are capped. */
static double clean_latency_us(double us)
{
    if (!(us >= 0.0))
        return 0.0;
    return us > KD_MAX_LATENCY_US ? KD_MAX_LATENCY_US : us;
}

static void store_min(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);
    while (v < cur &&
           !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

static void store_max(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);
    while (v > cur &&
           !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

/* kd_core_hist_record, done with one atomic operation per field. The bucket increment
 * is the dispatch count: cpu, gpu and total are derived from it when read. */
void kd_metrics_record(kd_metrics *m, kd_backend_id b, int offload, double latency_us)
{
    (void)offload; /* the class is the backend's, so that it is derived when read */
    if (!m || (unsigned)b >= KD_BACKEND_COUNT)
        return;
    double us = clean_latency_us(latency_us);
    uint64_t ns = (uint64_t)(us * 1000.0); /* floor: exact at the integer-us boundaries */
    kd_histogram *h = &m->latency[b];
    atomic_fetch_add_explicit(&h->bucket[kd_core_bucket_of(us)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
    store_min(&h->min_ns, ns);
    store_max(&h->max_ns, ns);
}

void kd_metrics_add_fallback(kd_metrics *m)
{
    if (m)
        atomic_fetch_add_explicit(&m->fallbacks, 1, memory_order_relaxed);
}

void kd_metrics_add_gemv(kd_metrics *m, kd_backend_id b, int exact)
{
    if (m && (unsigned)b < KD_BACKEND_COUNT)
        atomic_fetch_add_explicit(&m->gemv[b][exact ? 0 : 1], 1, memory_order_relaxed);
}

void kd_metrics_add_transfer(kd_metrics *m, int to_device, uint64_t bytes)
{
    if (!m)
        return;
    atomic_fetch_add_explicit(to_device ? &m->bytes_to_device : &m->bytes_from_device, bytes,
                              memory_order_relaxed);
}

/* Loads a counter, capped at the limit the proved core assumes. */
static uint64_t load_capped(const _Atomic uint64_t *a)
{
    uint64_t v = atomic_load_explicit((_Atomic uint64_t *)a, memory_order_relaxed);
    return v > KD_CORE_LIMIT ? KD_CORE_LIMIT : v;
}

static kd_core_hist load_hist(const kd_histogram *h)
{
    kd_core_hist c;
    for (int i = 0; i < KD_LAT_BUCKETS; i++)
        c.bucket[i] = load_capped(&h->bucket[i]);
    c.sum_ns = atomic_load_explicit((_Atomic uint64_t *)&h->sum_ns, memory_order_relaxed);
    c.min_ns = atomic_load_explicit((_Atomic uint64_t *)&h->min_ns, memory_order_relaxed);
    c.max_ns = atomic_load_explicit((_Atomic uint64_t *)&h->max_ns, memory_order_relaxed);
    return c;
}

static kd_core_state load_state(const kd_metrics *m)
{
    kd_core_state s;
    for (int b = 0; b < KD_BACKEND_COUNT; b++)
        s.hist[b] = load_hist(&m->latency[b]);
    return s;
}

static uint64_t load_u64(const _Atomic uint64_t *a)
{
    return atomic_load_explicit((_Atomic uint64_t *)a, memory_order_relaxed);
}

/* The per-path GEMV counts the snapshot carries (the backends that have two paths). */
static void gemv_counts_of(const kd_metrics *m, kd_metrics_snapshot *out)
{
    out->cpu_gemv_exact = load_u64(&m->gemv[KD_BACKEND_CPU][0]);
    out->cpu_gemv_q8 = load_u64(&m->gemv[KD_BACKEND_CPU][1]);
    out->opencl_gemv_exact = load_u64(&m->gemv[KD_BACKEND_OPENCL][0]);
    out->opencl_gemv_q8 = load_u64(&m->gemv[KD_BACKEND_OPENCL][1]);
}

void kd_metrics_snapshot_of(const kd_metrics *m, kd_metrics_snapshot *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!m)
        return;
    kd_core_summary s = kd_core_summarize(load_state(m));
    for (int b = 0; b < KD_BACKEND_COUNT; b++)
        out->per_backend[b] = s.per_backend[b];
    out->cpu_dispatches = s.cpu;
    out->gpu_dispatches = s.gpu;
    out->total_dispatches = s.total;
    out->gpu_ratio = s.gpu_ratio;
    out->fallbacks = load_u64(&m->fallbacks);
    out->bytes_to_device = load_u64(&m->bytes_to_device);
    out->bytes_from_device = load_u64(&m->bytes_from_device);
    gemv_counts_of(m, out);
}

static void stats_from_hist(const kd_core_hist *h, kd_latency_stats *out)
{
    kd_core_stats s = kd_core_hist_stats(*h);
    out->count = s.count;
    for (int i = 0; i < KD_LAT_BUCKETS; i++)
        out->bucket[i] = h->bucket[i];
    out->sum_us = (double)s.sum_ns / 1000.0;
    out->min_us = (double)s.min_ns / 1000.0;
    out->max_us = (double)s.max_ns / 1000.0;
    out->mean_us = s.mean_ns / 1000.0;
    out->p50_us = s.p50_ns / 1000.0;
    out->p95_us = s.p95_ns / 1000.0;
    out->p99_us = s.p99_ns / 1000.0;
}

void kd_metrics_latency_of(const kd_metrics *m, kd_backend_id b, kd_latency_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!m || (unsigned)b >= KD_BACKEND_COUNT)
        return;
    kd_core_hist h = load_hist(&m->latency[b]);
    stats_from_hist(&h, out);
}

double kd_metrics_gpu_ratio(uint64_t cpu, uint64_t gpu)
{
    if (cpu <= 5 * KD_CORE_LIMIT && gpu <= KD_CORE_GPU_LIMIT)
        return kd_core_gpu_ratio(cpu, gpu);
    /* Beyond the proved range cpu + gpu may not fit in 64 bits: add as doubles (the sum is
     * > 0 and >= gpu, so the quotient stays in [0, 1]). */
    double g = (double)gpu;
    return g / ((double)cpu + g);
}

double kd_metrics_latency_quantile(const kd_metrics *m, kd_backend_id b, double q)
{
    if (!m || (unsigned)b >= KD_BACKEND_COUNT)
        return 0.0;
    return kd_core_quantile_ns(load_hist(&m->latency[b]), q) / 1000.0;
}

/* ---- export ----------------------------------------------------------------------- */

/* snprintf-style appender: counts what it would write even past the end of buf. */
typedef struct text_out {
    char *buf;
    size_t cap, len;
} text_out;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void put(text_out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n;
    if (o->buf && o->len < o->cap)
        n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    else
        n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

typedef struct metrics_view {
    int nbackends; /* the registered backends: the ones the export names */
    kd_metrics_snapshot snap;
    kd_latency_stats lat[KD_BACKEND_COUNT];
} metrics_view;

/* One snapshot for the whole export: the counts of the text agree with each other. */
static void view_of(const kd_metrics *m, metrics_view *v)
{
    kd_core_state s = load_state(m);
    kd_core_summary sum = kd_core_summarize(s);
    memset(v, 0, sizeof *v);
    v->nbackends = kd_backend_count();
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        v->snap.per_backend[b] = sum.per_backend[b];
        stats_from_hist(&s.hist[b], &v->lat[b]);
    }
    v->snap.cpu_dispatches = sum.cpu;
    v->snap.gpu_dispatches = sum.gpu;
    v->snap.total_dispatches = sum.total;
    v->snap.gpu_ratio = sum.gpu_ratio;
    v->snap.fallbacks = load_u64(&m->fallbacks);
    v->snap.bytes_to_device = load_u64(&m->bytes_to_device);
    v->snap.bytes_from_device = load_u64(&m->bytes_from_device);
    gemv_counts_of(m, &v->snap);
}

static void json_latency(text_out *o, const kd_latency_stats *l)
{
    put(o, "{\"count\": %llu, \"sum\": %.3f, \"min\": %.3f, \"max\": %.3f, \"mean\": %.3f, ",
        (unsigned long long)l->count, l->sum_us, l->min_us, l->max_us, l->mean_us);
    put(o, "\"p50\": %.3f, \"p95\": %.3f, \"p99\": %.3f, \"buckets\": [", l->p50_us,
        l->p95_us, l->p99_us);
    for (int i = 0; i < KD_LAT_BUCKETS; i++)
        put(o, "%s%llu", i ? ", " : "", (unsigned long long)l->bucket[i]);
    put(o, "]}");
}

static void export_json(text_out *o, const metrics_view *v)
{
    const kd_metrics_snapshot *s = &v->snap;
    put(o, "{\n  \"cpu_dispatches\": %llu,\n  \"gpu_dispatches\": %llu,\n"
           "  \"total_dispatches\": %llu,\n  \"gpu_ratio\": %.17g,\n",
        (unsigned long long)s->cpu_dispatches, (unsigned long long)s->gpu_dispatches,
        (unsigned long long)s->total_dispatches, s->gpu_ratio);
    put(o, "  \"fallbacks\": %llu,\n  \"bytes_to_device\": %llu,\n  \"bytes_from_device\": %llu,\n",
        (unsigned long long)s->fallbacks, (unsigned long long)s->bytes_to_device,
        (unsigned long long)s->bytes_from_device);
    put(o, "  \"cpu_gemv\": {\"exact\": %llu, \"q8\": %llu},\n",
        (unsigned long long)s->cpu_gemv_exact, (unsigned long long)s->cpu_gemv_q8);
    put(o, "  \"opencl_gemv\": {\"exact\": %llu, \"q8\": %llu},\n",
        (unsigned long long)s->opencl_gemv_exact, (unsigned long long)s->opencl_gemv_q8);
    put(o, "  \"latency_bucket_bounds_us\": [");
    for (int i = 0; i < KD_LAT_BUCKETS - 1; i++)
        put(o, "%s%g", i ? ", " : "", kd_latency_bounds_us[i]);
    put(o, "],\n  \"backends\": {\n");
    for (int b = 0; b < v->nbackends; b++) {
        put(o, "    \"%s\": {\"dispatches\": %llu, \"latency_us\": ",
            kd_backend_name((kd_backend_id)b), (unsigned long long)s->per_backend[b]);
        json_latency(o, &v->lat[b]);
        put(o, "}%s\n", b + 1 < v->nbackends ? "," : "");
    }
    put(o, "  }\n}\n");
}

static void prom_family(text_out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_histograms(text_out *o, const metrics_view *v)
{
    const char *h = "kdispatch_dispatch_latency_microseconds";
    prom_family(o, h, "histogram",
                "Dispatch latency per backend. A latency equal to a bucket bound is counted "
                "in the next bucket (bounds are exclusive, as the contract requires).");
    for (int b = 0; b < v->nbackends; b++) {
        const char *name = kd_backend_name((kd_backend_id)b);
        const kd_latency_stats *l = &v->lat[b];
        uint64_t cum = 0;
        for (int i = 0; i < KD_LAT_BUCKETS - 1; i++) {
            cum += l->bucket[i];
            put(o, "%s_bucket{backend=\"%s\",le=\"%g\"} %llu\n", h, name,
                kd_latency_bounds_us[i], (unsigned long long)cum);
        }
        cum += l->bucket[KD_LAT_BUCKETS - 1];
        put(o, "%s_bucket{backend=\"%s\",le=\"+Inf\"} %llu\n", h, name, (unsigned long long)cum);
        put(o, "%s_sum{backend=\"%s\"} %.3f\n", h, name, l->sum_us);
        put(o, "%s_count{backend=\"%s\"} %llu\n", h, name, (unsigned long long)l->count);
    }
    const char *q = "kdispatch_dispatch_latency_quantile_microseconds";
    prom_family(o, q, "gauge",
                "Latency quantiles estimated by linear interpolation inside the buckets.");
    for (int b = 0; b < v->nbackends; b++) {
        const char *name = kd_backend_name((kd_backend_id)b);
        const kd_latency_stats *l = &v->lat[b];
        put(o, "%s{backend=\"%s\",quantile=\"0.5\"} %.3f\n", q, name, l->p50_us);
        put(o, "%s{backend=\"%s\",quantile=\"0.95\"} %.3f\n", q, name, l->p95_us);
        put(o, "%s{backend=\"%s\",quantile=\"0.99\"} %.3f\n", q, name, l->p99_us);
    }
    prom_family(o, "kdispatch_dispatch_latency_min_microseconds", "gauge",
                "Smallest dispatch latency (0 when none).");
    for (int b = 0; b < v->nbackends; b++)
        put(o, "kdispatch_dispatch_latency_min_microseconds{backend=\"%s\"} %.3f\n",
            kd_backend_name((kd_backend_id)b), v->lat[b].min_us);
    prom_family(o, "kdispatch_dispatch_latency_max_microseconds", "gauge",
                "Largest dispatch latency (0 when none).");
    for (int b = 0; b < v->nbackends; b++)
        put(o, "kdispatch_dispatch_latency_max_microseconds{backend=\"%s\"} %.3f\n",
            kd_backend_name((kd_backend_id)b), v->lat[b].max_us);
}

static void export_prom(text_out *o, const metrics_view *v)
{
    const kd_metrics_snapshot *s = &v->snap;
    prom_family(o, "kdispatch_backend_dispatches_total", "counter", "Ops run, by backend.");
    for (int b = 0; b < v->nbackends; b++)
        put(o, "kdispatch_backend_dispatches_total{backend=\"%s\"} %llu\n",
            kd_backend_name((kd_backend_id)b), (unsigned long long)s->per_backend[b]);
    prom_family(o, "kdispatch_cpu_dispatches_total", "counter",
                "Ops run on the host cpu backend.");
    put(o, "kdispatch_cpu_dispatches_total %llu\n", (unsigned long long)s->cpu_dispatches);
    prom_family(o, "kdispatch_gpu_dispatches_total", "counter",
                "Ops run on an offload backend (opencl, cuda).");
    put(o, "kdispatch_gpu_dispatches_total %llu\n", (unsigned long long)s->gpu_dispatches);
    prom_family(o, "kdispatch_dispatches_total", "counter", "All ops run: cpu + gpu.");
    put(o, "kdispatch_dispatches_total %llu\n", (unsigned long long)s->total_dispatches);
    prom_family(o, "kdispatch_gpu_ratio", "gauge", "gpu / total dispatches, 0 when none.");
    put(o, "kdispatch_gpu_ratio %.17g\n", s->gpu_ratio);
    prom_family(o, "kdispatch_fallbacks_total", "counter",
                "Offloads that failed and ran on cpu instead.");
    put(o, "kdispatch_fallbacks_total %llu\n", (unsigned long long)s->fallbacks);
    prom_family(o, "kdispatch_transfer_bytes_total", "counter",
                "Bytes moved between host and offload devices.");
    put(o, "kdispatch_transfer_bytes_total{direction=\"to_device\"} %llu\n",
        (unsigned long long)s->bytes_to_device);
    put(o, "kdispatch_transfer_bytes_total{direction=\"from_device\"} %llu\n",
        (unsigned long long)s->bytes_from_device);
    prom_family(o, "kdispatch_gemv_calls_total", "counter",
                "GEMV calls by backend and path: exact (f32 x) or q8 (x quantized to int8).");
    const struct { const char *backend, *path; uint64_t n; } gemv[] = {
        {"cpu", "exact", s->cpu_gemv_exact},       {"cpu", "q8", s->cpu_gemv_q8},
        {"opencl", "exact", s->opencl_gemv_exact}, {"opencl", "q8", s->opencl_gemv_q8}};
    for (size_t i = 0; i < sizeof gemv / sizeof *gemv; i++)
        put(o, "kdispatch_gemv_calls_total{backend=\"%s\",path=\"%s\"} %llu\n", gemv[i].backend,
            gemv[i].path, (unsigned long long)gemv[i].n);
    prom_histograms(o, v);
}

size_t kd_metrics_export_to(const kd_metrics *m, const char *format, char *buf, size_t cap)
{
    if (buf && cap)
        buf[0] = '\0';
    if (!m || !format)
        return 0;
    int json = strcmp(format, "json") == 0;
    int prom = strcmp(format, "prom") == 0 || strcmp(format, "prometheus") == 0;
    if (!json && !prom)
        return 0;
    metrics_view v;
    view_of(m, &v);
    text_out o = {buf, buf ? cap : 0, 0};
    if (json)
        export_json(&o, &v);
    else
        export_prom(&o, &v);
    return o.len;
}
