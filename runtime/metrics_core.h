/*
 * The arithmetic core of the dispatch metrics, as plain C with ACSL contracts.
 *
 * metrics.c keeps its counters in atomics and calls these functions on the values it
 * loads, so the code proved by Frama-C/WP (proofs/prove.sh) is the code that runs:
 *   - kd_core_bucket_of:  which latency bucket a value goes to (a value equal to a
 *                         boundary goes to the upper bucket);
 *   - kd_core_summarize:  per-backend, cpu, gpu and total counts and gpu_ratio, derived
 *                         from the bucket counters (total = cpu + gpu by construction);
 *   - kd_core_gpu_ratio:  gpu / (cpu + gpu), 0 when nothing was dispatched;
 *   - kd_core_hist_stats: count, sum, min, max, mean, quantiles of one histogram.
 * kd_core_record is the sequential model of one recording (what metrics.c does with one
 * atomic operation per field); its contract is the induction step that proves the
 * invariants for every sequence of dispatches, of any length.
 *
 * Why counts are derived, never stored: a dispatch is one increment of one bucket
 * counter, so a reader that loads the counters and derives per-backend counts, cpu, gpu
 * and total from them sees total = cpu + gpu and sum(buckets) = count in every snapshot,
 * even while other threads record.
 *
 * Latencies: buckets are chosen on the microsecond value as a double (exact comparisons);
 * sum, min and max are kept in integer nanoseconds (exact, no floating-point drift).
 */
#ifndef KD_METRICS_CORE_H
#define KD_METRICS_CORE_H

#include <stdint.h>

#define KD_LAT_BUCKETS 5     /* [0,100), [100,500), [500,1000), [1000,5000), [5000,inf) us */
/* Backend ids the metrics count: KD_BACKEND_COUNT of kdispatch.h (metrics.c asserts they
 * agree; this header stays free of includes for the prover). Backend 0 is the host cpu,
 * every other id an offload backend. The sums below are written out for this count. */
#define KD_CORE_BACKENDS 4
#define KD_CORE_NO_MIN UINT64_MAX /* min_ns of an empty histogram */

/* Upper bound on any one counter or sum that the proofs assume (2^59): no overflow is
 * possible below it, also in cpu + gpu over every bucket of KD_CORE_BACKENDS backends
 * (20 * 2^59 < 2^64; 2^59 ns is 18 years of latency; 2^59 dispatches will not happen). */
#define KD_CORE_LIMIT 576460752303423488ULL
/* The most a gpu count can be: five buckets of each offload backend at the limit. */
#define KD_CORE_GPU_LIMIT ((unsigned long long)KD_LAT_BUCKETS * (KD_CORE_BACKENDS - 1) * KD_CORE_LIMIT)

/* Boundaries in microseconds and in nanoseconds. */
#define KD_LAT_B1_US 100.0
#define KD_LAT_B2_US 500.0
#define KD_LAT_B3_US 1000.0
#define KD_LAT_B4_US 5000.0
#define KD_LAT_B1_NS 100000ULL
#define KD_LAT_B2_NS 500000ULL
#define KD_LAT_B3_NS 1000000ULL
#define KD_LAT_B4_NS 5000000ULL

/* One histogram: bucket counts, and the sum, min and max of the values in ns. */
typedef struct kd_core_hist {
    uint64_t bucket[KD_LAT_BUCKETS];
    uint64_t sum_ns;
    uint64_t min_ns; /* KD_CORE_NO_MIN when empty */
    uint64_t max_ns; /* 0 when empty */
} kd_core_hist;

/* The metrics state as loaded from the atomics (or as kept by the sequential model). */
typedef struct kd_core_state {
    kd_core_hist hist[KD_CORE_BACKENDS];
} kd_core_state;

/* What a snapshot reports. */
typedef struct kd_core_summary {
    uint64_t per_backend[KD_CORE_BACKENDS];
    uint64_t cpu, gpu, total;
    double gpu_ratio;
} kd_core_summary;

typedef struct kd_core_stats {
    uint64_t count;
    uint64_t sum_ns, min_ns, max_ns; /* min and max 0 when empty */
    double mean_ns, p50_ns, p95_ns, p99_ns;
} kd_core_stats;

/*@ // ---------------------------------------------------------------- logic model
  logic integer hist_count(kd_core_hist h) =
      h.bucket[0] + h.bucket[1] + h.bucket[2] + h.bucket[3] + h.bucket[4];

  logic integer cpu_count(kd_core_state s) = hist_count(s.hist[0]);
  logic integer gpu_count(kd_core_state s) =
      hist_count(s.hist[1]) + hist_count(s.hist[2]) + hist_count(s.hist[3]);
  logic integer total_count(kd_core_state s) = cpu_count(s) + gpu_count(s);

  predicate bucket_in_range(kd_core_hist h) =
      \forall integer i; 0 <= i < 5 ==> 0 <= h.bucket[i] <= KD_CORE_LIMIT;

  predicate bounded(kd_core_state s) =
      \forall integer b; 0 <= b < KD_CORE_BACKENDS ==> bucket_in_range(s.hist[b]);

  // The histogram invariant: empty histograms have no sum, min or max; otherwise
  // min <= max and the mean lies between them (min * count <= sum <= max * count).
  predicate hist_ok(kd_core_hist h) =
      (hist_count(h) == 0 ==> h.sum_ns == 0 && h.min_ns == KD_CORE_NO_MIN && h.max_ns == 0) &&
      (hist_count(h) > 0 ==> h.min_ns <= h.max_ns &&
                             h.min_ns * hist_count(h) <= h.sum_ns &&
                             h.sum_ns <= h.max_ns * hist_count(h));

  predicate state_ok(kd_core_state s) =
      \forall integer b; 0 <= b < KD_CORE_BACKENDS ==> hist_ok(s.hist[b]);

  lemma mul_mono: \forall integer a, b, c; 0 <= a <= b && 0 <= c ==> a * c <= b * c;
*/

/*@ requires \is_finite(us) && us >= 0.0;
    assigns \nothing;
    ensures 0 <= \result < KD_LAT_BUCKETS;
    ensures \result == 0 <==> us < 100.0;
    ensures \result == 1 <==> 100.0 <= us < 500.0;
    ensures \result == 2 <==> 500.0 <= us < 1000.0;
    ensures \result == 3 <==> 1000.0 <= us < 5000.0;
    ensures \result == 4 <==> 5000.0 <= us;
*/
static inline unsigned kd_core_bucket_of(double us)
{
    if (us < KD_LAT_B1_US)
        return 0;
    if (us < KD_LAT_B2_US)
        return 1;
    if (us < KD_LAT_B3_US)
        return 2;
    if (us < KD_LAT_B4_US)
        return 3;
    return 4;
}

/*@ requires bucket_in_range(h);
    assigns \nothing;
    ensures \result == hist_count(h);
*/
static inline uint64_t kd_core_hist_count(kd_core_hist h)
{
    return h.bucket[0] + h.bucket[1] + h.bucket[2] + h.bucket[3] + h.bucket[4];
}

/*@ requires cpu <= 5 * KD_CORE_LIMIT && gpu <= KD_CORE_GPU_LIMIT;
    assigns \nothing;
    ensures 0.0 <= \result <= 1.0;
    ensures cpu + gpu == 0 ==> \result == 0.0;
    ensures gpu == 0 ==> \result == 0.0;
    ensures cpu == 0 && gpu > 0 ==> \result == 1.0;
*/
static inline double kd_core_gpu_ratio(uint64_t cpu, uint64_t gpu)
{
    uint64_t total = cpu + gpu;
    if (total == 0)
        return 0.0;
    return (double)gpu / (double)total;
}

/*@ requires bounded(s);
    assigns \nothing;
    ensures \result.per_backend[0] == hist_count(s.hist[0]);
    ensures \result.per_backend[1] == hist_count(s.hist[1]);
    ensures \result.per_backend[2] == hist_count(s.hist[2]);
    ensures \result.per_backend[3] == hist_count(s.hist[3]);
    ensures \result.cpu == cpu_count(s);
    ensures \result.gpu == gpu_count(s);
    ensures \result.total == \result.cpu + \result.gpu;
    ensures \result.total == total_count(s);
    ensures 0.0 <= \result.gpu_ratio <= 1.0;
    ensures \result.total == 0 ==> \result.gpu_ratio == 0.0;
*/
static inline kd_core_summary kd_core_summarize(kd_core_state s)
{
    kd_core_summary out;
    out.per_backend[0] = kd_core_hist_count(s.hist[0]);
    out.per_backend[1] = kd_core_hist_count(s.hist[1]);
    out.per_backend[2] = kd_core_hist_count(s.hist[2]);
    out.per_backend[3] = kd_core_hist_count(s.hist[3]);
    out.cpu = out.per_backend[0];
    out.gpu = out.per_backend[1] + out.per_backend[2] + out.per_backend[3];
    out.total = out.cpu + out.gpu;
    out.gpu_ratio = kd_core_gpu_ratio(out.cpu, out.gpu);
    return out;
}

/*@ assigns \nothing;
    ensures hist_count(\result) == 0 && hist_ok(\result) && bucket_in_range(\result);
*/
static inline kd_core_hist kd_core_hist_empty(void)
{
    kd_core_hist h;
    h.bucket[0] = h.bucket[1] = h.bucket[2] = h.bucket[3] = h.bucket[4] = 0;
    h.sum_ns = 0;
    h.min_ns = KD_CORE_NO_MIN;
    h.max_ns = 0;
    return h;
}

/*
 * The sequential model of one dispatch on backend b with latency ns in bucket i. The
 * atomic recording in metrics.c does the same four steps, each as one atomic operation:
 * fetch-add on the bucket, fetch-add on the sum, compare-and-swap minimum and maximum.
 * Proved: the invariants hold after every step of any sequence, and the step adds exactly
 * one dispatch to backend b's count (so to cpu for b = 0, to gpu otherwise).
 */
/*@ requires 0 <= i < 5;
    requires bucket_in_range(h) && hist_ok(h);
    requires h.bucket[i] < KD_CORE_LIMIT;
    requires h.sum_ns + ns <= KD_CORE_LIMIT;
    assigns \nothing;
    ensures bucket_in_range(\result) && hist_ok(\result);
    ensures hist_count(\result) == hist_count(h) + 1;
    ensures \result.bucket[i] == h.bucket[i] + 1;
    ensures \forall integer j; 0 <= j < 5 && j != i ==> \result.bucket[j] == h.bucket[j];
    ensures \result.sum_ns == h.sum_ns + ns;
    ensures \result.min_ns <= ns <= \result.max_ns;
*/
static inline kd_core_hist kd_core_hist_record(kd_core_hist h, unsigned i, uint64_t ns)
{
    uint64_t count = kd_core_hist_count(h); /* used by the proof's assertions only */
    (void)count;
    /*@ ghost uint64_t min0 = h.min_ns, max0 = h.max_ns, sum0 = h.sum_ns; */
    h.bucket[i] += 1;
    h.sum_ns += ns;
    if (ns < h.min_ns)
        h.min_ns = ns;
    if (ns > h.max_ns)
        h.max_ns = ns;
    /*@ assert hist_count(h) == count + 1; */
    /*@ assert count == 0 ==> h.min_ns == ns && h.max_ns == ns && h.sum_ns == ns; */
    /*@ assert count > 0 ==> h.min_ns * count <= min0 * count <= sum0; */
    /*@ assert count > 0 ==> max0 * count <= h.max_ns * count && sum0 <= max0 * count; */
    /*@ assert h.min_ns * (count + 1) == h.min_ns * count + h.min_ns; */
    /*@ assert h.max_ns * (count + 1) == h.max_ns * count + h.max_ns; */
    return h;
}

/*@ requires 0 <= b < KD_CORE_BACKENDS && 0 <= i < 5;
    requires bounded(s) && state_ok(s);
    requires s.hist[b].bucket[i] < KD_CORE_LIMIT;
    requires s.hist[b].sum_ns + ns <= KD_CORE_LIMIT;
    assigns \nothing;
    ensures bounded(\result) && state_ok(\result);
    ensures total_count(\result) == total_count(s) + 1;
    ensures b == 0 ==> cpu_count(\result) == cpu_count(s) + 1 &&
                       gpu_count(\result) == gpu_count(s);
    ensures b != 0 ==> gpu_count(\result) == gpu_count(s) + 1 &&
                       cpu_count(\result) == cpu_count(s);
*/
static inline kd_core_state kd_core_record(kd_core_state s, int b, unsigned i, uint64_t ns)
{
    s.hist[b] = kd_core_hist_record(s.hist[b], i, ns);
    return s;
}

/* Lower and upper edge of bucket i in ns (the last bucket's upper edge is the max). */
/*@ requires 0 <= i < 5;
    assigns \nothing;
    ensures 0 <= \result <= 5000000;
*/
static inline uint64_t kd_core_bucket_lo_ns(unsigned i)
{
    switch (i) {
    case 0: return 0;
    case 1: return KD_LAT_B1_NS;
    case 2: return KD_LAT_B2_NS;
    case 3: return KD_LAT_B3_NS;
    default: return KD_LAT_B4_NS;
    }
}

/*@ requires 0 <= i < 5;
    assigns \nothing;
    ensures \result >= 100000;
*/
static inline uint64_t kd_core_bucket_hi_ns(unsigned i, uint64_t max_ns)
{
    switch (i) {
    case 0: return KD_LAT_B1_NS;
    case 1: return KD_LAT_B2_NS;
    case 2: return KD_LAT_B3_NS;
    case 3: return KD_LAT_B4_NS;
    default:
        if (max_ns > KD_LAT_B4_NS)
            return max_ns;
        return KD_LAT_B4_NS;
    }
}

/*
 * Quantile q of a histogram by linear interpolation inside the bucket that holds rank
 * q*count (as Prometheus's histogram_quantile does). The bucket edges are narrowed to
 * the observed min and max: the first bucket starts at min, the last (open) bucket ends
 * at max, so the estimate always lies in [min, max] and q = 0 / q = 1 give min / max.
 */
/*@ requires bucket_in_range(h);
    assigns \nothing;
    ensures hist_count(h) == 0 ==> \result == 0.0;
    ensures hist_count(h) > 0 ==> \result <= h.max_ns;
    ensures hist_count(h) > 0 && h.min_ns <= h.max_ns ==> h.min_ns <= \result;
    ensures hist_count(h) > 0 && h.min_ns > h.max_ns ==> \result == h.max_ns;
*/
static inline double kd_core_quantile_ns(kd_core_hist h, double q)
{
    uint64_t count = kd_core_hist_count(h);
    if (count == 0)
        return 0.0;
    double lo_clamp = (double)h.min_ns, hi_clamp = (double)h.max_ns;
    if (!(q > 0.0))
        q = 0.0;
    if (q > 1.0)
        q = 1.0;
    double rank = q * (double)count;
    double cum = 0.0, v = hi_clamp;
    /*@ loop invariant 0 <= i <= 5;
        loop assigns i, cum, v;
        loop variant 5 - i;
    */
    for (unsigned i = 0; i < KD_LAT_BUCKETS; i++) {
        uint64_t n = h.bucket[i];
        if (n == 0)
            continue;
        if (cum + (double)n >= rank) {
            double lo = (double)kd_core_bucket_lo_ns(i);
            double hi = (double)kd_core_bucket_hi_ns(i, h.max_ns);
            if (lo < lo_clamp)
                lo = lo_clamp;
            if (hi > hi_clamp)
                hi = hi_clamp;
            double frac = (rank - cum) / (double)n;
            v = lo + (hi - lo) * frac;
            break;
        }
        cum += (double)n;
    }
    /* Torn reads under concurrent recording can leave v outside [min, max] (or NaN when
     * lo > hi); keep the estimate inside the observed range. */
    if (!(v >= lo_clamp))
        v = lo_clamp;
    if (v > hi_clamp)
        v = hi_clamp;
    return v;
}

/*@ requires bucket_in_range(h);
    assigns \nothing;
    ensures \result.count == hist_count(h);
    ensures \result.count == 0 ==> \result.min_ns == 0 && \result.max_ns == 0 &&
                                   \result.mean_ns == 0.0 && \result.p50_ns == 0.0;
    ensures \result.min_ns <= \result.max_ns;
    ensures \result.count > 0 ==> \result.min_ns <= \result.mean_ns <= \result.max_ns;
    ensures \result.count > 0 ==> \result.min_ns <= \result.p50_ns <= \result.max_ns;
    ensures \result.count > 0 ==> \result.min_ns <= \result.p95_ns <= \result.max_ns;
    ensures \result.count > 0 ==> \result.min_ns <= \result.p99_ns <= \result.max_ns;
*/
static inline kd_core_stats kd_core_hist_stats(kd_core_hist h)
{
    kd_core_stats out;
    out.count = kd_core_hist_count(h);
    out.sum_ns = h.sum_ns;
    out.min_ns = 0;
    out.max_ns = 0;
    out.mean_ns = 0.0;
    if (out.count > 0) {
        out.min_ns = h.min_ns;
        out.max_ns = h.max_ns;
        /* A concurrent recording between the loads can leave min > max: report a range
         * that still holds what was read. */
        if (out.min_ns > out.max_ns)
            out.min_ns = out.max_ns;
        double lo = (double)out.min_ns, hi = (double)out.max_ns;
        double mean = (double)h.sum_ns / (double)out.count;
        if (mean < lo)
            mean = lo;
        if (mean > hi)
            mean = hi;
        out.mean_ns = mean;
    }
    out.p50_ns = kd_core_quantile_ns(h, 0.50);
    out.p95_ns = kd_core_quantile_ns(h, 0.95);
    out.p99_ns = kd_core_quantile_ns(h, 0.99);
    return out;
}

#endif /* KD_METRICS_CORE_H */
