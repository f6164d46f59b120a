/* ctest-labels: metrics;proof;cpu */
/* The contract's bounded-proof harnesses, as exhaustive C tests over every sequence of
 * dispatches up to the bound (what Kani would explore symbolically):
 *   kern-kani-001  "GPU ratio bounded"            bound 4: every sequence of up to 4
 *                  dispatches over {cpu, opencl, cuda}; after every step
 *                  0 <= gpu_ratio <= 1, and it is exactly gpu/total (0 when total = 0).
 *   kern-kani-002  "Dispatch metrics consistency" bound 8: every sequence of up to 8
 *                  dispatches over {cpu, opencl, cuda} x latencies {99.999, 5000} us
 *                  (just below the first boundary, and on the last one, which must go
 *                  to the open last bucket): 6^8 sequences of 8; after every step
 *                  total = cpu + gpu = steps taken, per-backend counts, every bucket
 *                  count, sum, min and max are exact, and the runtime's snapshot equals
 *                  the proved sequential model (metrics_core.h) fed the same sequence.
 * The runtime metrics (runtime/metrics.c) are what is exercised; the expected values are
 * counted here independently. proofs/ proves the same invariants for any length. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kd_test_util.h"
#include "metrics.h"

/* ---- kern-kani-001 ---------------------------------------------------------------- */

typedef struct ratio_search {
    long nodes;
    long bad;
} ratio_search;

static void check_ratio(const kd_metrics *m, uint64_t cpu, uint64_t gpu, ratio_search *rs)
{
    kd_metrics_snapshot s;
    kd_metrics_snapshot_of(m, &s);
    uint64_t total = cpu + gpu;
    double want = total ? (double)gpu / (double)total : 0.0;
    int ok = s.gpu_ratio >= 0.0 && s.gpu_ratio <= 1.0 && s.gpu_ratio == want &&
             s.cpu_dispatches == cpu && s.gpu_dispatches == gpu &&
             s.total_dispatches == total && (gpu == 0) == (s.gpu_ratio == 0.0) &&
             (total > 0 && cpu == 0) == (s.gpu_ratio == 1.0);
    rs->nodes++;
    if (!ok && rs->bad++ < 5)
        printf("\n  kern-kani-001: cpu=%llu gpu=%llu: ratio %.17g (want %.17g), total %llu\n",
               (unsigned long long)cpu, (unsigned long long)gpu, s.gpu_ratio, want,
               (unsigned long long)s.total_dispatches);
}

/* Depth-first over every continuation of the sequence that led to m. */
static void ratio_dfs(const kd_metrics *m, int depth, int bound, uint64_t cpu, uint64_t gpu,
                      ratio_search *rs)
{
    check_ratio(m, cpu, gpu, rs);
    if (depth == bound)
        return;
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        kd_metrics next;
        memcpy(&next, m, sizeof next); /* single-threaded copy of the state */
        kd_metrics_record(&next, (kd_backend_id)b, b != KD_BACKEND_CPU, 1.0);
        ratio_dfs(&next, depth + 1, bound, cpu + (b == KD_BACKEND_CPU),
                  gpu + (b != KD_BACKEND_CPU), rs);
    }
}

static void test_kern_kani_001_gpu_ratio_bounded(void)
{
    const int bound = 4;
    kd_metrics m;
    kd_metrics_init(&m);
    ratio_search rs = {0, 0};
    ratio_dfs(&m, 0, bound, 0, 0, &rs);
    long want_nodes = 0, level = 1;
    for (int d = 0; d <= bound; d++, level *= KD_BACKEND_COUNT)
        want_nodes += level; /* 1 + 3 + 9 + 27 + 81 sequences */
    printf("\n  kern-kani-001: %ld sequences of up to %d dispatches checked\n", rs.nodes, bound);
    CU_ASSERT_EQUAL(rs.nodes, want_nodes);
    CU_ASSERT_EQUAL(rs.bad, 0);
}

/* ---- kern-kani-002 ---------------------------------------------------------------- */

/* Latencies of the search and the bucket each belongs to, written out by hand (not
 * computed by the code under test). Two values keep the search at 2 million states, a
 * few seconds; test_metrics checks every other boundary. */
static const double lat_us[] = {99.999, 5000.0};
static const int lat_bucket[] = {0, 4};
static const uint64_t lat_ns[] = {99999, 5000000};
#define N_LAT ((int)(sizeof lat_us / sizeof *lat_us))

typedef struct expected {
    uint64_t count[KD_BACKEND_COUNT];
    uint64_t bucket[KD_BACKEND_COUNT][KD_LAT_BUCKETS];
    uint64_t sum_ns[KD_BACKEND_COUNT], min_ns[KD_BACKEND_COUNT], max_ns[KD_BACKEND_COUNT];
    int steps;
} expected;

typedef struct consistency_search {
    long nodes;
    long bad;
} consistency_search;

static int same_hist_as_model(const kd_metrics *m, const kd_core_state *model)
{
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        const kd_histogram *h = &m->latency[b];
        const kd_core_hist *c = &model->hist[b];
        for (int i = 0; i < KD_LAT_BUCKETS; i++)
            if (atomic_load(&h->bucket[i]) != c->bucket[i])
                return 0;
        if (atomic_load(&h->sum_ns) != c->sum_ns || atomic_load(&h->min_ns) != c->min_ns ||
            atomic_load(&h->max_ns) != c->max_ns)
            return 0;
    }
    return 1;
}

static int check_state(const kd_metrics *m, const expected *e, const kd_core_state *model)
{
    kd_metrics_snapshot s;
    kd_metrics_snapshot_of(m, &s);
    uint64_t cpu = e->count[KD_BACKEND_CPU];
    uint64_t gpu = 0; /* every backend id but the cpu's is an offload backend */
    for (int b = 0; b < KD_BACKEND_COUNT; b++)
        gpu += b == KD_BACKEND_CPU ? 0 : e->count[b];
    if (s.total_dispatches != s.cpu_dispatches + s.gpu_dispatches ||
        s.total_dispatches != (uint64_t)e->steps || s.cpu_dispatches != cpu ||
        s.gpu_dispatches != gpu || !(s.gpu_ratio >= 0.0 && s.gpu_ratio <= 1.0))
        return 0;
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        if (s.per_backend[b] != e->count[b])
            return 0;
        kd_latency_stats l;
        kd_metrics_latency_of(m, (kd_backend_id)b, &l);
        uint64_t bsum = 0;
        for (int i = 0; i < KD_LAT_BUCKETS; i++) {
            if (l.bucket[i] != e->bucket[b][i])
                return 0;
            bsum += l.bucket[i];
        }
        if (bsum != l.count || l.count != e->count[b])
            return 0;
        double min = e->count[b] ? (double)e->min_ns[b] / 1000.0 : 0.0;
        double max = e->count[b] ? (double)e->max_ns[b] / 1000.0 : 0.0;
        if (l.sum_us != (double)e->sum_ns[b] / 1000.0 || l.min_us != min || l.max_us != max)
            return 0;
        if (e->count[b] && !(l.min_us <= l.mean_us && l.mean_us <= l.max_us &&
                             l.min_us <= l.p50_us && l.p99_us <= l.max_us))
            return 0;
    }
    /* The proved model, fed the same sequence, holds the same state and summary. */
    kd_core_summary ms = kd_core_summarize(*model);
    if (!same_hist_as_model(m, model) || ms.total != s.total_dispatches ||
        ms.cpu != s.cpu_dispatches || ms.gpu != s.gpu_dispatches || ms.gpu_ratio != s.gpu_ratio)
        return 0;
    return 1;
}

static void consistency_dfs(const kd_metrics *m, const expected *e, const kd_core_state *model,
                            int bound, consistency_search *cs)
{
    cs->nodes++;
    if (!check_state(m, e, model) && cs->bad++ < 5)
        printf("\n  kern-kani-002: inconsistent after %d steps\n", e->steps);
    if (e->steps == bound)
        return;
    for (int b = 0; b < KD_BACKEND_COUNT; b++)
        for (int li = 0; li < N_LAT; li++) {
            kd_metrics next;
            memcpy(&next, m, sizeof next);
            kd_metrics_record(&next, (kd_backend_id)b, b != KD_BACKEND_CPU, lat_us[li]);
            expected ne = *e;
            ne.steps++;
            ne.count[b]++;
            ne.bucket[b][lat_bucket[li]]++;
            ne.sum_ns[b] += lat_ns[li];
            if (e->count[b] == 0 || lat_ns[li] < ne.min_ns[b])
                ne.min_ns[b] = lat_ns[li];
            if (e->count[b] == 0 || lat_ns[li] > ne.max_ns[b])
                ne.max_ns[b] = lat_ns[li];
            kd_core_state nm = kd_core_record(*model, b, (unsigned)lat_bucket[li], lat_ns[li]);
            consistency_dfs(&next, &ne, &nm, bound, cs);
        }
}

static void test_kern_kani_002_metrics_consistency(void)
{
    const int bound = 8;
    kd_metrics m;
    kd_metrics_init(&m);
    expected e;
    memset(&e, 0, sizeof e);
    kd_core_state model;
    for (int b = 0; b < KD_BACKEND_COUNT; b++)
        model.hist[b] = kd_core_hist_empty();
    consistency_search cs = {0, 0};
    consistency_dfs(&m, &e, &model, bound, &cs);
    long want_nodes = 0, level = 1;
    for (int d = 0; d <= bound; d++, level *= KD_BACKEND_COUNT * N_LAT)
        want_nodes += level;
    printf("\n  kern-kani-002: %ld sequences of up to %d dispatches checked, %ld inconsistent\n",
           cs.nodes, bound, cs.bad);
    CU_ASSERT_EQUAL(cs.nodes, want_nodes);
    CU_ASSERT_EQUAL(cs.bad, 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("kani_harnesses", NULL, NULL);
    CU_add_test(s, "kern-kani-001 gpu ratio bounded (bound 4)",
                test_kern_kani_001_gpu_ratio_bounded);
    CU_add_test(s, "kern-kani-002 metrics consistency (bound 8)",
                test_kern_kani_002_metrics_consistency);
    return kd_test_main();
}
