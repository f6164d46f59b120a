/* ctest-labels: metrics;cpu */
/* Dispatch metrics (contract: dispatch_metrics): FALSIFY-KERN-001 (total = cpu + gpu,
 * also under 8 recording threads), FALSIFY-KERN-002 (gpu_ratio in [0,1], 0 with no
 * dispatch), FALSIFY-KERN-004 (histogram buckets sum to the count, boundaries go to the
 * upper bucket), quantiles, JSON and Prometheus export, reset, and the public API. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kd_test_util.h"
#include "metrics.h"

/* ---- helpers ---------------------------------------------------------------------- */

/* Dispatches of every offload backend id (all but the cpu): what gpu must equal. */
static uint64_t offload_sum(const uint64_t per_backend[KD_BACKEND_COUNT])
{
    uint64_t sum = 0;
    for (int b = 0; b < KD_BACKEND_COUNT; b++)
        sum += b == KD_BACKEND_CPU ? 0 : per_backend[b];
    return sum;
}

static void check_consistent(const kd_metrics_snapshot *s)
{
    CU_ASSERT_EQUAL(s->total_dispatches, s->cpu_dispatches + s->gpu_dispatches);
    CU_ASSERT_EQUAL(s->cpu_dispatches, s->per_backend[KD_BACKEND_CPU]);
    CU_ASSERT_EQUAL(s->gpu_dispatches, offload_sum(s->per_backend));
    CU_ASSERT(s->gpu_ratio >= 0.0 && s->gpu_ratio <= 1.0);
}

static void record_n(kd_metrics *m, kd_backend_id b, int n, double us)
{
    for (int i = 0; i < n; i++)
        kd_metrics_record(m, b, b != KD_BACKEND_CPU, us);
}

/* ---- FALSIFY-KERN-001 ------------------------------------------------------------- */

typedef struct recorder_arg {
    kd_metrics *m;
    pthread_barrier_t *start;
    int thread;
    int count;
} recorder_arg;

/* Thread t records count dispatches; dispatch i goes to backend (i + t) % 3. */
static void *recorder(void *p)
{
    recorder_arg *a = p;
    pthread_barrier_wait(a->start); /* all start together: as much overlap as possible */
    for (int i = 0; i < a->count; i++) {
        kd_backend_id b = (kd_backend_id)((i + a->thread) % KD_BACKEND_COUNT);
        kd_metrics_record(a->m, b, b != KD_BACKEND_CPU, (double)(i % 7000));
    }
    return NULL;
}

typedef struct reader_arg {
    kd_metrics *m;
    _Atomic int stop;
    long snapshots, inconsistent, went_back;
} reader_arg;

/* Snapshots while the recorders run: every one must be consistent, totals never fall. */
static void *reader(void *p)
{
    reader_arg *a = p;
    uint64_t last = 0;
    while (!atomic_load(&a->stop)) {
        kd_metrics_snapshot s;
        kd_metrics_snapshot_of(a->m, &s);
        a->snapshots++;
        if (s.total_dispatches != s.cpu_dispatches + s.gpu_dispatches ||
            s.cpu_dispatches != s.per_backend[KD_BACKEND_CPU] ||
            s.gpu_dispatches != offload_sum(s.per_backend) ||
            !(s.gpu_ratio >= 0.0 && s.gpu_ratio <= 1.0))
            a->inconsistent++;
        if (s.total_dispatches < last)
            a->went_back++;
        last = s.total_dispatches;
        kd_latency_stats l;
        kd_metrics_latency_of(a->m, KD_BACKEND_CPU, &l);
        uint64_t sum = 0;
        for (int i = 0; i < KD_LAT_BUCKETS; i++)
            sum += l.bucket[i];
        if (sum != l.count || l.min_us > l.max_us || l.mean_us < l.min_us || l.mean_us > l.max_us)
            a->inconsistent++;
    }
    return NULL;
}

static void test_dispatch_metrics_record_dispatches(void)
{
    kd_metrics m;
    kd_metrics_init(&m);
    kd_metrics_snapshot s;
    kd_metrics_snapshot_of(&m, &s);
    CU_ASSERT_EQUAL(s.total_dispatches, 0);
    check_consistent(&s);

    /* Sequential: N dispatches in a known mix. */
    int n_cpu = 0, n_ocl = 0, n_cuda = 0;
    for (int i = 0; i < 1000; i++) {
        kd_backend_id b = i % 5 == 0 ? KD_BACKEND_CUDA : i % 3 == 0 ? KD_BACKEND_OPENCL
                                                                   : KD_BACKEND_CPU;
        n_cpu += b == KD_BACKEND_CPU;
        n_ocl += b == KD_BACKEND_OPENCL;
        n_cuda += b == KD_BACKEND_CUDA;
        kd_metrics_record(&m, b, b != KD_BACKEND_CPU, 10.0 * (i % 900));
        kd_metrics_snapshot_of(&m, &s);
        CU_ASSERT_EQUAL_FATAL(s.total_dispatches, (uint64_t)i + 1);
        check_consistent(&s);
    }
    CU_ASSERT_EQUAL(s.cpu_dispatches, (uint64_t)n_cpu);
    CU_ASSERT_EQUAL(s.gpu_dispatches, (uint64_t)(n_ocl + n_cuda));
    CU_ASSERT_EQUAL(s.per_backend[KD_BACKEND_OPENCL], (uint64_t)n_ocl);
    CU_ASSERT_EQUAL(s.per_backend[KD_BACKEND_CUDA], (uint64_t)n_cuda);

    /* Concurrent: 8 threads record, one thread snapshots all along; counts exact. */
    enum { THREADS = 8, PER_THREAD = 100000 };
    kd_metrics_init(&m);
    pthread_barrier_t start;
    CU_ASSERT_FATAL(pthread_barrier_init(&start, NULL, THREADS) == 0);
    pthread_t rec[THREADS], rd;
    recorder_arg ra[THREADS];
    reader_arg rda = {.m = &m};
    atomic_init(&rda.stop, 0);
    CU_ASSERT_FATAL(pthread_create(&rd, NULL, reader, &rda) == 0);
    for (int t = 0; t < THREADS; t++) {
        ra[t] = (recorder_arg){.m = &m, .start = &start, .thread = t, .count = PER_THREAD};
        CU_ASSERT_FATAL(pthread_create(&rec[t], NULL, recorder, &ra[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(rec[t], NULL);
    atomic_store(&rda.stop, 1);
    pthread_join(rd, NULL);
    pthread_barrier_destroy(&start);

    uint64_t expect[KD_BACKEND_COUNT] = {0};
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++)
            expect[(i + t) % KD_BACKEND_COUNT]++;
    kd_metrics_snapshot_of(&m, &s);
    check_consistent(&s);
    CU_ASSERT_EQUAL(s.total_dispatches, (uint64_t)THREADS * PER_THREAD);
    for (int b = 0; b < KD_BACKEND_COUNT; b++)
        CU_ASSERT_EQUAL(s.per_backend[b], expect[b]);
    CU_ASSERT_EQUAL(s.cpu_dispatches, expect[KD_BACKEND_CPU]);
    CU_ASSERT_EQUAL(s.gpu_dispatches, offload_sum(expect));
    printf("\n  concurrent: %ld snapshots taken while recording, %ld inconsistent, "
           "%ld went back\n", rda.snapshots, rda.inconsistent, rda.went_back);
    CU_ASSERT_EQUAL(rda.inconsistent, 0);
    CU_ASSERT_EQUAL(rda.went_back, 0);

    /* The latency sums of the concurrent run are exact too (integer ns). */
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        double sum_us = 0;
        for (int t = 0; t < THREADS; t++)
            for (int i = 0; i < PER_THREAD; i++)
                if ((i + t) % KD_BACKEND_COUNT == b)
                    sum_us += (double)(i % 7000);
        kd_latency_stats l;
        kd_metrics_latency_of(&m, (kd_backend_id)b, &l);
        CU_ASSERT_EQUAL(l.count, expect[b]);
        CU_ASSERT_DOUBLE_EQUAL(l.sum_us, sum_us, 1e-6);
        CU_ASSERT_DOUBLE_EQUAL(l.min_us, 0.0, 0.0);
        CU_ASSERT_DOUBLE_EQUAL(l.max_us, 6999.0, 0.0);
    }

    /* Records on an unknown backend or a NULL metrics are ignored, not counted. */
    kd_metrics_record(&m, KD_BACKEND_COUNT, 1, 1.0);
    kd_metrics_record(&m, KD_BACKEND_AUTO, 1, 1.0);
    kd_metrics_record(NULL, KD_BACKEND_CPU, 0, 1.0);
    kd_metrics_snapshot_of(&m, &s);
    CU_ASSERT_EQUAL(s.total_dispatches, (uint64_t)THREADS * PER_THREAD);
}

/* ---- FALSIFY-KERN-002 ------------------------------------------------------------- */

static void test_dispatch_metrics_gpu_ratio(void)
{
    kd_metrics m;
    kd_metrics_init(&m);
    kd_metrics_snapshot s;
    kd_metrics_snapshot_of(&m, &s);
    CU_ASSERT_EQUAL(s.gpu_ratio, 0.0); /* no dispatch: 0, not NaN */
    CU_ASSERT(!isnan(s.gpu_ratio));

    record_n(&m, KD_BACKEND_CPU, 3, 1.0);
    kd_metrics_snapshot_of(&m, &s);
    CU_ASSERT_EQUAL(s.gpu_ratio, 0.0); /* only cpu */

    record_n(&m, KD_BACKEND_CUDA, 1, 1.0);
    kd_metrics_snapshot_of(&m, &s);
    CU_ASSERT_EQUAL(s.gpu_ratio, 0.25); /* 1 of 4 */

    record_n(&m, KD_BACKEND_OPENCL, 4, 1.0);
    kd_metrics_snapshot_of(&m, &s);
    CU_ASSERT_EQUAL(s.gpu_ratio, 5.0 / 8.0); /* opencl and cuda both count as gpu */

    kd_metrics_init(&m);
    record_n(&m, KD_BACKEND_OPENCL, 7, 1.0);
    kd_metrics_snapshot_of(&m, &s);
    CU_ASSERT_EQUAL(s.gpu_ratio, 1.0); /* only gpu */

    /* Every mix of up to 60 cpu and 60 gpu dispatches: the exact quotient, in [0,1]. */
    for (uint64_t c = 0; c <= 60; c++)
        for (uint64_t g = 0; g <= 60; g++) {
            double r = kd_metrics_gpu_ratio(c, g);
            double want = c + g ? (double)g / (double)(c + g) : 0.0;
            CU_ASSERT_EQUAL(r, want);
            CU_ASSERT(r >= 0.0 && r <= 1.0);
        }
    /* Extremes: no overflow, no value outside [0,1]. */
    const uint64_t big[] = {0, 1, UINT64_C(1) << 53, UINT64_MAX / 2, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof big / sizeof *big; i++)
        for (size_t j = 0; j < sizeof big / sizeof *big; j++) {
            double r = kd_metrics_gpu_ratio(big[i], big[j]);
            CU_ASSERT(r >= 0.0 && r <= 1.0);
            if (big[j] == 0)
                CU_ASSERT_EQUAL(r, 0.0);
            if (big[i] == 0 && big[j] > 0)
                CU_ASSERT_EQUAL(r, 1.0);
            if (big[i] == big[j] && big[i] > 0)
                CU_ASSERT_EQUAL(r, 0.5);
        }
}

/* ---- FALSIFY-KERN-004 ------------------------------------------------------------- */

typedef struct lat_case {
    double us;
    int bucket;
} lat_case;

static void test_dispatch_metrics_cpu_latency(void)
{
    const lat_case cases[] = {
        {0.0, 0},    {50.0, 0},   {99.999, 0}, {100.0, 1},  {250.0, 1},   {499.0, 1},
        {500.0, 2},  {999.9, 2},  {1000.0, 3}, {4999.0, 3}, {5000.0, 4},  {12000.0, 4},
        {3.5, 0},    {777.0, 2},  {100.0, 1},  {5000.0, 4}, {1000.0, 3},  {500.0, 2},
    };
    const int n = (int)(sizeof cases / sizeof *cases);
    kd_metrics m;
    kd_metrics_init(&m);
    uint64_t want[KD_LAT_BUCKETS] = {0};
    double sum = 0, min = 1e300, max = -1;
    for (int i = 0; i < n; i++) {
        kd_metrics_record(&m, KD_BACKEND_CPU, 0, cases[i].us);
        want[cases[i].bucket]++;
        sum += cases[i].us;
        min = fmin(min, cases[i].us);
        max = fmax(max, cases[i].us);
        /* The bucket sum equals the count after every record. */
        kd_latency_stats l;
        kd_metrics_latency_of(&m, KD_BACKEND_CPU, &l);
        uint64_t bsum = 0;
        for (int b = 0; b < KD_LAT_BUCKETS; b++)
            bsum += l.bucket[b];
        CU_ASSERT_EQUAL(bsum, l.count);
        CU_ASSERT_EQUAL(l.count, (uint64_t)i + 1);
    }
    kd_latency_stats l;
    kd_metrics_latency_of(&m, KD_BACKEND_CPU, &l);
    for (int b = 0; b < KD_LAT_BUCKETS; b++) {
        if (l.bucket[b] != want[b])
            printf("\n  bucket %d: %llu, expected %llu\n", b, (unsigned long long)l.bucket[b],
                   (unsigned long long)want[b]);
        CU_ASSERT_EQUAL(l.bucket[b], want[b]);
    }
    CU_ASSERT_EQUAL(l.count, (uint64_t)n);
    CU_ASSERT_DOUBLE_EQUAL(l.sum_us, sum, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(l.min_us, min, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(l.max_us, max, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(l.mean_us, sum / n, 1e-9);

    /* The just-below-boundary doubles stay below; the boundaries go up. */
    const double bounds[] = {100.0, 500.0, 1000.0, 5000.0};
    for (int i = 0; i < 4; i++) {
        kd_metrics_init(&m);
        kd_metrics_record(&m, KD_BACKEND_CPU, 0, nextafter(bounds[i], 0.0));
        kd_metrics_record(&m, KD_BACKEND_CPU, 0, bounds[i]);
        kd_metrics_latency_of(&m, KD_BACKEND_CPU, &l);
        CU_ASSERT_EQUAL(l.bucket[i], 1);
        CU_ASSERT_EQUAL(l.bucket[i + 1], 1);
        CU_ASSERT_EQUAL(l.count, 2);
    }

    /* NaN and negative latencies count (as 0 us): nothing is dropped. */
    kd_metrics_init(&m);
    kd_metrics_record(&m, KD_BACKEND_CPU, 0, NAN);
    kd_metrics_record(&m, KD_BACKEND_CPU, 0, -5.0);
    kd_metrics_record(&m, KD_BACKEND_CPU, 0, INFINITY);
    kd_metrics_latency_of(&m, KD_BACKEND_CPU, &l);
    CU_ASSERT_EQUAL(l.count, 3);
    CU_ASSERT_EQUAL(l.bucket[0], 2);
    CU_ASSERT_EQUAL(l.bucket[4], 1);
    CU_ASSERT(isfinite(l.sum_us) && isfinite(l.mean_us) && isfinite(l.p99_us));

    /* Histograms are per backend: cpu latencies do not show in cuda's. */
    kd_metrics_init(&m);
    record_n(&m, KD_BACKEND_CPU, 5, 200.0);
    kd_metrics_latency_of(&m, KD_BACKEND_CUDA, &l);
    CU_ASSERT_EQUAL(l.count, 0);
    CU_ASSERT_EQUAL(l.min_us, 0.0);
    CU_ASSERT_EQUAL(l.max_us, 0.0);
    CU_ASSERT_EQUAL(l.mean_us, 0.0);
    CU_ASSERT_EQUAL(l.p50_us, 0.0);
}

/* ---- quantiles -------------------------------------------------------------------- */

static void test_metrics_latency_quantiles(void)
{
    kd_metrics m;
    kd_metrics_init(&m);
    CU_ASSERT_EQUAL(kd_metrics_latency_quantile(&m, KD_BACKEND_CPU, 0.5), 0.0); /* empty */

    /* 10 values in [1000, 5000) from 1000 to 4000: the bucket narrowed to [min, max] =
     * [1000, 4000]; rank 5 of 10 is half way: 2500. */
    for (int i = 0; i < 10; i++)
        kd_metrics_record(&m, KD_BACKEND_CPU, 0, i == 9 ? 4000.0 : 1000.0 + 100.0 * i);
    CU_ASSERT_DOUBLE_EQUAL(kd_metrics_latency_quantile(&m, KD_BACKEND_CPU, 0.5), 2500.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(kd_metrics_latency_quantile(&m, KD_BACKEND_CPU, 0.0), 1000.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(kd_metrics_latency_quantile(&m, KD_BACKEND_CPU, 1.0), 4000.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(kd_metrics_latency_quantile(&m, KD_BACKEND_CPU, 0.9), 3700.0, 1e-9);

    /* 50 values at 10 us and 50 at 300 us: p50 is the top of the first bucket (its edge
     * 100), p95 lies in [100, 500) at rank 45/50 of it, narrowed to max 300:
     * 100 + (300 - 100) * 45/50 = 280. */
    kd_metrics_init(&m);
    record_n(&m, KD_BACKEND_CPU, 50, 10.0);
    record_n(&m, KD_BACKEND_CPU, 50, 300.0);
    kd_latency_stats l;
    kd_metrics_latency_of(&m, KD_BACKEND_CPU, &l);
    CU_ASSERT_DOUBLE_EQUAL(l.p50_us, 100.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(l.p95_us, 280.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(l.p99_us, 100.0 + 200.0 * 49.0 / 50.0, 1e-9);

    /* The open last bucket ends at the max: 4 values 6000..9000, p50 = rank 2 of 4 in
     * [6000, 9000] -> 7500. */
    kd_metrics_init(&m);
    const double big[] = {6000.0, 7000.0, 8000.0, 9000.0};
    for (int i = 0; i < 4; i++)
        kd_metrics_record(&m, KD_BACKEND_CUDA, 1, big[i]);
    CU_ASSERT_DOUBLE_EQUAL(kd_metrics_latency_quantile(&m, KD_BACKEND_CUDA, 0.5), 7500.0, 1e-9);

    /* Random data: quantiles ordered and inside [min, max]. */
    kd_metrics_init(&m);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 5000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        kd_metrics_record(&m, KD_BACKEND_OPENCL, 1, (double)(x % 20000000) / 1000.0);
    }
    kd_metrics_latency_of(&m, KD_BACKEND_OPENCL, &l);
    CU_ASSERT(l.min_us <= l.p50_us && l.p50_us <= l.p95_us && l.p95_us <= l.p99_us &&
              l.p99_us <= l.max_us);
    CU_ASSERT(l.min_us <= l.mean_us && l.mean_us <= l.max_us);
}

/* ---- a small JSON parser: checks the syntax, collects numbers by path ---------------- */

typedef struct json_num {
    char path[128];
    double value;
} json_num;

typedef struct json_parser {
    const char *p;
    json_num nums[256];
    int n_nums;
    int ok;
} json_parser;

static void js_ws(json_parser *j)
{
    while (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r')
        j->p++;
}

static void js_value(json_parser *j, const char *path);

static int js_string(json_parser *j, char *out, size_t cap)
{
    if (*j->p != '"')
        return j->ok = 0;
    j->p++;
    size_t n = 0;
    while (*j->p && *j->p != '"') {
        if (*j->p == '\\' || (unsigned char)*j->p < 0x20)
            return j->ok = 0; /* the export never needs escapes */
        if (n + 1 < cap)
            out[n++] = *j->p;
        j->p++;
    }
    if (*j->p != '"')
        return j->ok = 0;
    j->p++;
    out[n] = '\0';
    return 1;
}

static void js_number(json_parser *j, const char *path)
{
    const char *start = j->p;
    if (*j->p == '-')
        j->p++;
    if (!(*j->p >= '0' && *j->p <= '9')) {
        j->ok = 0;
        return;
    }
    if (*j->p == '0' && j->p[1] >= '0' && j->p[1] <= '9') {
        j->ok = 0; /* no leading zeros in JSON */
        return;
    }
    char *end;
    double v = strtod(start, &end);
    /* strtod accepts more than JSON (inf, nan, hex): only digits . e E + - may follow. */
    for (const char *c = start; c < end; c++)
        if (!strchr("0123456789.eE+-", *c)) {
            j->ok = 0;
            return;
        }
    j->p = end;
    if (j->n_nums < 256) {
        snprintf(j->nums[j->n_nums].path, sizeof j->nums[0].path, "%s", path);
        j->nums[j->n_nums++].value = v;
    }
}

/* After a member or element: 1 when a ',' says another follows; 0 at the closing
 * character (consumed) or on an error (j->ok = 0, e.g. anything else there). */
static int js_more(json_parser *j, char close)
{
    if (!j->ok)
        return 0;
    js_ws(j);
    if (*j->p == ',' || *j->p == close)
        return *j->p++ == ',';
    j->ok = 0;
    return 0;
}

static void js_object(json_parser *j, const char *path)
{
    j->p++;
    js_ws(j);
    if (*j->p == '}') {
        j->p++;
        return;
    }
    for (;;) {
        char key[64], sub[128];
        js_ws(j);
        if (!js_string(j, key, sizeof key))
            return;
        js_ws(j);
        if (*j->p != ':') {
            j->ok = 0;
            return;
        }
        j->p++;
        snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", key);
        js_value(j, sub);
        if (!js_more(j, '}'))
            return;
    }
}

static void js_array(json_parser *j, const char *path)
{
    j->p++;
    js_ws(j);
    if (*j->p == ']') {
        j->p++;
        return;
    }
    for (int i = 0;; i++) {
        char sub[128];
        snprintf(sub, sizeof sub, "%s[%d]", path, i);
        js_value(j, sub);
        if (!js_more(j, ']'))
            return;
    }
}

static void js_value(json_parser *j, const char *path)
{
    js_ws(j);
    char tmp[64];
    if (*j->p == '{')
        js_object(j, path);
    else if (*j->p == '[')
        js_array(j, path);
    else if (*j->p == '"')
        js_string(j, tmp, sizeof tmp);
    else if (strncmp(j->p, "true", 4) == 0 || strncmp(j->p, "null", 4) == 0)
        j->p += 4;
    else if (strncmp(j->p, "false", 5) == 0)
        j->p += 5;
    else
        js_number(j, path);
}

static int json_parse(const char *text, json_parser *j)
{
    memset(j, 0, sizeof *j);
    j->p = text;
    j->ok = 1;
    js_value(j, "");
    js_ws(j);
    return j->ok && *j->p == '\0';
}

static int json_get(const json_parser *j, const char *path, double *out)
{
    for (int i = 0; i < j->n_nums; i++)
        if (strcmp(j->nums[i].path, path) == 0) {
            *out = j->nums[i].value;
            return 1;
        }
    return 0;
}

static char *export_alloc(const kd_metrics *m, const char *format)
{
    size_t need = kd_metrics_export_to(m, format, NULL, 0);
    CU_ASSERT_FATAL(need > 0);
    char *buf = malloc(need + 1);
    CU_ASSERT_FATAL(buf != NULL);
    CU_ASSERT_EQUAL(kd_metrics_export_to(m, format, buf, need + 1), need);
    CU_ASSERT_EQUAL(strlen(buf), need);
    return buf;
}

static void fill_sample(kd_metrics *m)
{
    kd_metrics_init(m);
    record_n(m, KD_BACKEND_CPU, 3, 50.0);
    record_n(m, KD_BACKEND_CPU, 2, 100.0);
    record_n(m, KD_BACKEND_CPU, 1, 6000.0);
    record_n(m, KD_BACKEND_OPENCL, 2, 700.0);
    record_n(m, KD_BACKEND_CUDA, 1, 1000.0);
    kd_metrics_add_fallback(m);
    kd_metrics_add_transfer(m, 1, 4096);
    kd_metrics_add_transfer(m, 0, 1024);
    kd_metrics_add_transfer(m, 1, 10);
}

static void test_metrics_export_json(void)
{
    kd_metrics m;
    fill_sample(&m);
    char *text = export_alloc(&m, "json");
    json_parser j;
    int ok = json_parse(text, &j);
    if (!ok)
        printf("\n  JSON does not parse at: %.40s\n", j.p);
    CU_ASSERT_FATAL(ok);
    double v = 0;
    CU_ASSERT(json_get(&j, "cpu_dispatches", &v) && v == 6);
    CU_ASSERT(json_get(&j, "gpu_dispatches", &v) && v == 3);
    CU_ASSERT(json_get(&j, "total_dispatches", &v) && v == 9);
    CU_ASSERT(json_get(&j, "gpu_ratio", &v) && v == 3.0 / 9.0);
    CU_ASSERT(json_get(&j, "fallbacks", &v) && v == 1);
    CU_ASSERT(json_get(&j, "bytes_to_device", &v) && v == 4106);
    CU_ASSERT(json_get(&j, "bytes_from_device", &v) && v == 1024);
    CU_ASSERT(json_get(&j, "latency_bucket_bounds_us[0]", &v) && v == 100);
    CU_ASSERT(json_get(&j, "latency_bucket_bounds_us[3]", &v) && v == 5000);
    CU_ASSERT(json_get(&j, "backends.cpu.dispatches", &v) && v == 6);
    CU_ASSERT(json_get(&j, "backends.opencl.dispatches", &v) && v == 2);
    CU_ASSERT(json_get(&j, "backends.cuda.dispatches", &v) && v == 1);
    CU_ASSERT(json_get(&j, "backends.cpu.latency_us.count", &v) && v == 6);
    CU_ASSERT(json_get(&j, "backends.cpu.latency_us.sum", &v) && v == 6350);
    CU_ASSERT(json_get(&j, "backends.cpu.latency_us.min", &v) && v == 50);
    CU_ASSERT(json_get(&j, "backends.cpu.latency_us.max", &v) && v == 6000);
    CU_ASSERT(json_get(&j, "backends.cpu.latency_us.buckets[0]", &v) && v == 3);
    CU_ASSERT(json_get(&j, "backends.cpu.latency_us.buckets[1]", &v) && v == 2);
    CU_ASSERT(json_get(&j, "backends.cpu.latency_us.buckets[4]", &v) && v == 1);
    CU_ASSERT(json_get(&j, "backends.cuda.latency_us.buckets[3]", &v) && v == 1);
    /* Bucket sums equal counts in the export too. */
    const char *names[] = {"cpu", "opencl", "cuda"};
    for (int b = 0; b < 3; b++) {
        double count = 0, sum = 0;
        char path[96];
        snprintf(path, sizeof path, "backends.%s.latency_us.count", names[b]);
        CU_ASSERT_FATAL(json_get(&j, path, &count));
        for (int i = 0; i < KD_LAT_BUCKETS; i++) {
            snprintf(path, sizeof path, "backends.%s.latency_us.buckets[%d]", names[b], i);
            CU_ASSERT_FATAL(json_get(&j, path, &v));
            sum += v;
        }
        CU_ASSERT_EQUAL(sum, count);
    }
    /* The parser rejects what is not JSON, so the checks above mean something. */
    json_parser bad;
    CU_ASSERT(!json_parse("{\"a\": 1,}", &bad));
    CU_ASSERT(!json_parse("{\"a\": nan}", &bad));
    CU_ASSERT(!json_parse("{\"a\": 01}", &bad));
    CU_ASSERT(!json_parse("{\"a\": 1} x", &bad));
    CU_ASSERT(!json_parse("{\"a\": [1 2]}", &bad));
    CU_ASSERT(!json_parse("{\"a\": 1 \"b\": 2}", &bad));
    CU_ASSERT(!json_parse("{\"a\": [1, 2}", &bad));

    /* Truncation: snprintf semantics, always NUL-terminated. */
    size_t need = strlen(text);
    char small[32];
    CU_ASSERT_EQUAL(kd_metrics_export_to(&m, "json", small, sizeof small), need);
    CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);
    CU_ASSERT_EQUAL(strncmp(small, text, sizeof small - 1), 0);
    CU_ASSERT_EQUAL(kd_metrics_export_to(&m, "xml", small, sizeof small), 0);
    CU_ASSERT_EQUAL(small[0], '\0');
    CU_ASSERT_EQUAL(kd_metrics_export_to(NULL, "json", small, sizeof small), 0);
    free(text);

    /* Empty metrics export valid JSON with zeros (gpu_ratio 0, not NaN). */
    kd_metrics_init(&m);
    text = export_alloc(&m, "json");
    CU_ASSERT_FATAL(json_parse(text, &j));
    CU_ASSERT(json_get(&j, "gpu_ratio", &v) && v == 0.0);
    CU_ASSERT(json_get(&j, "backends.cpu.latency_us.min", &v) && v == 0.0);
    free(text);
}

/* ---- Prometheus text -------------------------------------------------------------- */

/* Value of the sample line "name{labels} value" (labels exact, "" for none). */
static int prom_get(const char *text, const char *name, const char *labels, double *out)
{
    char want[256];
    snprintf(want, sizeof want, "%s%s%s%s ", name, labels[0] ? "{" : "", labels,
             labels[0] ? "}" : "");
    size_t wl = strlen(want);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, want, wl) == 0) {
            *out = strtod(line + wl, NULL);
            return 1;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return 0;
}

/* Every sample's family has # HELP and # TYPE lines before its first sample, and every
 * sample line is "name[{labels}] number". */
static int prom_well_formed(const char *text)
{
    char typed[64][96];
    int n_typed = 0;
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        if (!nl)
            return 0; /* the text ends with a newline */
        int len = (int)(nl - line);
        if (strncmp(line, "# TYPE ", 7) == 0 && n_typed < 64) {
            sscanf(line + 7, "%95s", typed[n_typed++]);
        } else if (line[0] != '#') {
            char name[96];
            if (sscanf(line, "%95[a-z_]", name) != 1)
                return 0;
            const char *sp = memchr(line, ' ', (size_t)len);
            if (!sp)
                return 0;
            char *end;
            strtod(sp + 1, &end);
            if (end != nl)
                return 0;
            int known = 0;
            for (int i = 0; i < n_typed; i++) {
                size_t tl = strlen(typed[i]);
                if (strncmp(name, typed[i], tl) == 0 &&
                    (name[tl] == '\0' || strcmp(name + tl, "_bucket") == 0 ||
                     strcmp(name + tl, "_sum") == 0 || strcmp(name + tl, "_count") == 0))
                    known = 1;
            }
            if (!known)
                return 0;
        }
        line = nl + 1;
    }
    return 1;
}

static void test_metrics_export_prometheus(void)
{
    kd_metrics m;
    fill_sample(&m);
    char *text = export_alloc(&m, "prom");
    CU_ASSERT(prom_well_formed(text));
    double v = 0;
    CU_ASSERT(prom_get(text, "kdispatch_cpu_dispatches_total", "", &v) && v == 6);
    CU_ASSERT(prom_get(text, "kdispatch_gpu_dispatches_total", "", &v) && v == 3);
    CU_ASSERT(prom_get(text, "kdispatch_dispatches_total", "", &v) && v == 9);
    CU_ASSERT(prom_get(text, "kdispatch_gpu_ratio", "", &v) && v == 3.0 / 9.0);
    CU_ASSERT(prom_get(text, "kdispatch_fallbacks_total", "", &v) && v == 1);
    CU_ASSERT(prom_get(text, "kdispatch_backend_dispatches_total", "backend=\"opencl\"", &v) &&
              v == 2);
    CU_ASSERT(prom_get(text, "kdispatch_transfer_bytes_total", "direction=\"to_device\"", &v) &&
              v == 4106);
    CU_ASSERT(prom_get(text, "kdispatch_transfer_bytes_total", "direction=\"from_device\"", &v) &&
              v == 1024);

    /* Cumulative buckets: cpu has 3 x 50, 2 x 100 (upper bucket), 1 x 6000. */
    const char *h = "kdispatch_dispatch_latency_microseconds_bucket";
    const char *les[] = {"100", "500", "1000", "5000", "+Inf"};
    const double cpu_cum[] = {3, 5, 5, 5, 6};
    const char *backends[] = {"cpu", "opencl", "cuda"};
    const double counts[] = {6, 2, 1};
    for (int b = 0; b < 3; b++) {
        double prev = 0, count, sum;
        for (int i = 0; i < 5; i++) {
            char labels[96];
            snprintf(labels, sizeof labels, "backend=\"%s\",le=\"%s\"", backends[b], les[i]);
            CU_ASSERT_FATAL(prom_get(text, h, labels, &v));
            CU_ASSERT(v >= prev); /* cumulative */
            prev = v;
            if (b == 0)
                CU_ASSERT_EQUAL(v, cpu_cum[i]);
        }
        char labels[64];
        snprintf(labels, sizeof labels, "backend=\"%s\"", backends[b]);
        CU_ASSERT_FATAL(prom_get(text, "kdispatch_dispatch_latency_microseconds_count", labels,
                                 &count));
        CU_ASSERT_FATAL(prom_get(text, "kdispatch_dispatch_latency_microseconds_sum", labels,
                                 &sum));
        CU_ASSERT_EQUAL(prev, count); /* +Inf bucket = _count */
        CU_ASSERT_EQUAL(count, counts[b]);
    }
    CU_ASSERT(prom_get(text, "kdispatch_dispatch_latency_microseconds_sum", "backend=\"cpu\"", &v) &&
              v == 6350);
    /* The checker rejects a malformed text. */
    CU_ASSERT(!prom_well_formed("kdispatch_x 1\n"));
    CU_ASSERT(!prom_well_formed("# TYPE kdispatch_x counter\nkdispatch_x one\n"));
    free(text);
}

/* ---- reset and the public API ----------------------------------------------------- */

static void test_metrics_reset(void)
{
    kd_metrics m;
    fill_sample(&m);
    kd_metrics_init(&m);
    kd_metrics_snapshot s;
    kd_metrics_snapshot_of(&m, &s);
    CU_ASSERT_EQUAL(s.total_dispatches, 0);
    CU_ASSERT_EQUAL(s.cpu_dispatches, 0);
    CU_ASSERT_EQUAL(s.gpu_dispatches, 0);
    CU_ASSERT_EQUAL(s.fallbacks, 0);
    CU_ASSERT_EQUAL(s.bytes_to_device, 0);
    CU_ASSERT_EQUAL(s.bytes_from_device, 0);
    CU_ASSERT_EQUAL(s.gpu_ratio, 0.0);
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        kd_latency_stats l;
        kd_metrics_latency_of(&m, (kd_backend_id)b, &l);
        CU_ASSERT_EQUAL(l.count, 0);
        CU_ASSERT_EQUAL(l.sum_us, 0.0);
        CU_ASSERT_EQUAL(l.max_us, 0.0);
    }
    /* After a reset, min starts over (a reset that left min would keep 50 here). */
    kd_metrics_record(&m, KD_BACKEND_CPU, 0, 700.0);
    kd_latency_stats l;
    kd_metrics_latency_of(&m, KD_BACKEND_CPU, &l);
    CU_ASSERT_EQUAL(l.min_us, 700.0);
    CU_ASSERT_EQUAL(l.max_us, 700.0);
    CU_ASSERT_EQUAL(l.count, 1);
}

/* Through a context: a cpu op is counted once, on cpu, with its latency; reset clears. */
static void test_metrics_public_api(void)
{
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1};
    kd_context *ctx;
    CU_ASSERT_FATAL(kd_context_create(&o, &ctx) == KD_OK);
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, r[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    kd_tensor *tx, *tr, *ty;
    CU_ASSERT_FATAL(kd_tensor_f32(ctx, 1, 8, x, &tx) == KD_OK);
    CU_ASSERT_FATAL(kd_tensor_f32(ctx, 1, 8, r, &tr) == KD_OK);
    CU_ASSERT_FATAL(kd_tensor_f32(ctx, 1, 8, NULL, &ty) == KD_OK);
    kd_metrics_snapshot s;
    kd_metrics_get(ctx, &s);
    CU_ASSERT_EQUAL(s.total_dispatches, 0);
    CU_ASSERT_EQUAL(kd_residual_add(ctx, tx, tr, ty), KD_OK);
    CU_ASSERT_EQUAL(kd_residual_add(ctx, tx, tr, ty), KD_OK);
    kd_metrics_get(ctx, &s);
    CU_ASSERT_EQUAL(s.cpu_dispatches, 2);
    CU_ASSERT_EQUAL(s.gpu_dispatches, 0);
    CU_ASSERT_EQUAL(s.total_dispatches, 2);
    CU_ASSERT_EQUAL(s.per_backend[KD_BACKEND_CPU], 2);
    CU_ASSERT_EQUAL(s.gpu_ratio, 0.0);

    size_t need = kd_metrics_export(ctx, "json", NULL, 0);
    char *text = malloc(need + 1);
    CU_ASSERT_FATAL(text != NULL);
    CU_ASSERT_EQUAL(kd_metrics_export(ctx, "json", text, need + 1), need);
    json_parser j;
    double v = 0;
    CU_ASSERT(json_parse(text, &j));
    CU_ASSERT(json_get(&j, "backends.cpu.latency_us.count", &v) && v == 2);
    CU_ASSERT(json_get(&j, "backends.cpu.latency_us.sum", &v) && v >= 0);
    free(text);

    kd_metrics_reset(ctx);
    kd_metrics_get(ctx, &s);
    CU_ASSERT_EQUAL(s.total_dispatches, 0);
    kd_tensor_free(tx);
    kd_tensor_free(tr);
    kd_tensor_free(ty);
    kd_context_destroy(ctx);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("metrics", NULL, NULL);
    CU_add_test(s, "test_dispatch_metrics_record_dispatches (FALSIFY-KERN-001)",
                test_dispatch_metrics_record_dispatches);
    CU_add_test(s, "test_dispatch_metrics_gpu_ratio (FALSIFY-KERN-002)",
                test_dispatch_metrics_gpu_ratio);
    CU_add_test(s, "test_dispatch_metrics_cpu_latency (FALSIFY-KERN-004)",
                test_dispatch_metrics_cpu_latency);
    CU_add_test(s, "latency quantiles", test_metrics_latency_quantiles);
    CU_add_test(s, "export json", test_metrics_export_json);
    CU_add_test(s, "export prometheus", test_metrics_export_prometheus);
    CU_add_test(s, "reset", test_metrics_reset);
    CU_add_test(s, "public api", test_metrics_public_api);
    return kd_test_main();
}
