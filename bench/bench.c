/* kdispatch bench: kernel throughput as a fraction of the machine's measured memory read
 * bandwidth, every backend in one run (ratios, not absolute times, on shared machines). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../cli/commands.h"
#include "kd_oracle.h"
#include "kd_quant.h"
#include "membw.h"

typedef struct bench_opts {
    int use_backend[KD_BACKEND_COUNT];
    int quick, repeats;
    const char *csv, *json, *metrics;
} bench_opts;

typedef struct row {
    const char *op, *kernel;
    long long m, n, k;
    const char *backend;
    double median_s, min_s, max_s, bytes, frac;
} row;

#define MAX_ROWS 256
static row rows[MAX_ROWS];
static int nrows;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Times kd_run on a forced backend: one warm-up (uploads inputs), then repeats. */
static int time_op(kd_context *ctx, const kd_op_desc *d, kd_backend_id b, int repeats, double *t)
{
    if (kd_run(ctx, d, b, KD_RUN_NO_FALLBACK) != KD_OK)
        return -1;
    for (int i = 0; i < repeats; i++) {
        double t0 = now_s();
        if (kd_run(ctx, d, b, KD_RUN_NO_FALLBACK) != KD_OK)
            return -1;
        t[i] = now_s() - t0;
    }
    qsort(t, (size_t)repeats, sizeof *t, cmp_double);
    return 0;
}

static void add_row(const kd_op_desc *d, long long m, long long n, long long k, kd_backend_id b,
                    const double *t, int repeats, double bytes, double bw)
{
    if (nrows == MAX_ROWS)
        return;
    row *r = &rows[nrows++];
    *r = (row){kd_op_name(d->op), m == 1 ? "single" : "batched", m, n, k, kd_backend_name(b),
               t[repeats / 2], t[0], t[repeats - 1], bytes, 0};
    r->frac = bytes / r->median_s / bw;
    printf("%-13s %-8s %3lld %6lld %6lld  %-7s %9.3f %9.3f %9.3f %8.2f %6.2f\n", r->op, r->kernel,
           m, n, k, r->backend, r->median_s * 1e3, r->min_s * 1e3, r->max_s * 1e3,
           bytes / r->median_s / 1e9, r->frac);
    fflush(stdout);
}

static void bench_gemv(kd_context *ctx, const bench_opts *o, kd_op op, double bw)
{
    const int64_t n = o->quick ? 2048 : 4096, k = o->quick ? 7168 : 14336;
    const long long ms[] = {1, 2, 4, 8};
    kd_type type = op == KD_OP_Q4K_GEMV ? KD_TYPE_Q4_K : KD_TYPE_Q6_K;
    size_t bytes = (size_t)n * kd_quant_row_bytes(type, k);
    void *blocks = malloc(bytes);
    kd_tensor *w = NULL;
    if (!blocks)
        return;
    kd_quant_random_blocks(type, n * (k / 256), 1234, blocks);
    if (kd_tensor_quant(ctx, type, n, k, blocks, bytes, &w) != KD_OK)
        goto done;
    for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++) {
        kd_tensor *x = NULL, *y = NULL;
        float *xv = malloc(sizeof(float) * (size_t)(ms[mi] * k));
        kd_rng rng;
        kd_rng_seed(&rng, 5);
        kd_fill_uniform(&rng, xv, ms[mi] * k, -1, 1);
        kd_tensor_f32(ctx, ms[mi], k, xv, &x);
        kd_tensor_f32(ctx, ms[mi], n, NULL, &y);
        kd_op_desc d = {.op = op, .src = {w, x}, .dst = y};
        for (int b = 0; b < KD_BACKEND_COUNT; b++) {
            double t[64];
            if (!o->use_backend[b] || !kd_backend_available(ctx, b))
                continue;
            if (time_op(ctx, &d, b, o->repeats, t) == 0)
                add_row(&d, ms[mi], n, k, b, t, o->repeats, (double)bytes, bw);
            else
                printf("%-13s M=%lld on %s failed: %s\n", kd_op_name(op), ms[mi],
                       kd_backend_name(b), kd_last_error(ctx));
        }
        kd_tensor_free(x);
        kd_tensor_free(y);
        free(xv);
    }
done:
    kd_tensor_free(w);
    free(blocks);
}

/* Elementwise ops on tensors of 64 MiB (16 Mi floats); bytes = what the op must move. */
static void bench_elementwise(kd_context *ctx, const bench_opts *o, double bw)
{
    const int64_t rows_ = o->quick ? 1024 : 4096, cols = 4096, count = rows_ * cols;
    float *a = malloc(sizeof(float) * (size_t)count);
    kd_tensor *x = NULL, *r = NULL, *y = NULL, *w = NULL;
    uint32_t *pos = malloc(sizeof(uint32_t) * (size_t)rows_);
    if (!a || !pos)
        goto done;
    kd_rng rng;
    kd_rng_seed(&rng, 9);
    kd_fill_uniform(&rng, a, count, -2, 2);
    for (int64_t i = 0; i < rows_; i++)
        pos[i] = (uint32_t)i;
    kd_tensor_f32(ctx, rows_, cols, a, &x);
    kd_tensor_f32(ctx, rows_, cols, a, &r);
    kd_tensor_f32(ctx, rows_, cols, NULL, &y);
    kd_tensor_f32(ctx, 1, cols, a, &w);
    double tensor = (double)count * sizeof(float);
    kd_op_desc ds[] = {
        {.op = KD_OP_RMSNORM, .src = {x, w}, .dst = y},
        {.op = KD_OP_ROPE, .src = {x, NULL}, .dst = y, .n_heads = 32, .head_dim = 128, .pos = pos},
        {.op = KD_OP_SWIGLU, .src = {x, r}, .dst = y},
        {.op = KD_OP_RESIDUAL_ADD, .src = {x, r}, .dst = y},
    };
    const double moved[] = {2 * tensor, 2 * tensor, 3 * tensor, 3 * tensor};
    for (size_t i = 0; i < sizeof ds / sizeof *ds; i++)
        for (int b = 0; b < KD_BACKEND_COUNT; b++) {
            double t[64];
            if (!o->use_backend[b] || !kd_backend_available(ctx, b))
                continue;
            if (time_op(ctx, &ds[i], b, o->repeats, t) == 0)
                add_row(&ds[i], rows_, cols, 0, b, t, o->repeats, moved[i], bw);
            else
                printf("%s on %s failed: %s\n", kd_op_name(ds[i].op), kd_backend_name(b),
                       kd_last_error(ctx));
        }
done:
    kd_tensor_free(x);
    kd_tensor_free(r);
    kd_tensor_free(y);
    kd_tensor_free(w);
    free(a);
    free(pos);
}

/* Launch-and-wait overhead: a one-element residual add. */
static void bench_launch(kd_context *ctx, const bench_opts *o, double bw)
{
    kd_tensor *x = NULL, *y = NULL;
    float one = 1.0f;
    kd_tensor_f32(ctx, 1, 1, &one, &x);
    kd_tensor_f32(ctx, 1, 1, NULL, &y);
    kd_op_desc d = {.op = KD_OP_RESIDUAL_ADD, .src = {x, x}, .dst = y};
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        double t[64];
        if (o->use_backend[b] && kd_backend_available(ctx, b) &&
            time_op(ctx, &d, b, o->repeats, t) == 0)
            add_row(&d, 1, 1, 0, b, t, o->repeats, 12, bw);
    }
    kd_tensor_free(x);
    kd_tensor_free(y);
}

/* Batched speed-up: 8 single-row launches against one M = 8 launch, per op and backend. */
static void print_batch_speedups(void)
{
    printf("\nbatched GEMV speed-up (8 x time(M=1) / time(M=8)):\n");
    for (int i = 0; i < nrows; i++) {
        if (rows[i].m != 1 || rows[i].k == 0)
            continue;
        for (int j = 0; j < nrows; j++)
            if (rows[j].m == 8 && rows[j].k && strcmp(rows[j].op, rows[i].op) == 0 &&
                strcmp(rows[j].backend, rows[i].backend) == 0)
                printf("  %-10s %-7s %.2fx\n", rows[i].op, rows[i].backend,
                       8 * rows[i].median_s / rows[j].median_s);
    }
}

static void write_csv(const char *path, double bw)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "kdispatch bench: cannot write %s\n", path);
        return;
    }
    fprintf(f, "op,kernel,m,n,k,backend,median_s,min_s,max_s,bytes,gbps,frac_of_read_bw,read_bw_gbps\n");
    for (int i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        fprintf(f, "%s,%s,%lld,%lld,%lld,%s,%.9f,%.9f,%.9f,%.0f,%.4f,%.4f,%.4f\n", r->op,
                r->kernel, r->m, r->n, r->k, r->backend, r->median_s, r->min_s, r->max_s,
                r->bytes, r->bytes / r->median_s / 1e9, r->frac, bw / 1e9);
    }
    fclose(f);
}

static void write_json(const char *path, double bw)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "kdispatch bench: cannot write %s\n", path);
        return;
    }
    fprintf(f, "{\"read_bw_gbps\":%.4f,\"rows\":[", bw / 1e9);
    for (int i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        fprintf(f, "%s\n {\"op\":\"%s\",\"kernel\":\"%s\",\"m\":%lld,\"n\":%lld,\"k\":%lld,"
                   "\"backend\":\"%s\",\"median_s\":%.9f,\"min_s\":%.9f,\"max_s\":%.9f,"
                   "\"bytes\":%.0f,\"gbps\":%.4f,\"frac_of_read_bw\":%.4f}",
                i ? "," : "", r->op, r->kernel, r->m, r->n, r->k, r->backend, r->median_s,
                r->min_s, r->max_s, r->bytes, r->bytes / r->median_s / 1e9, r->frac);
    }
    fprintf(f, "\n]}\n");
    fclose(f);
}

static void usage(void)
{
    printf("usage: kdispatch bench [options]\n\n"
           "Measures the host's memory read bandwidth, then times Q4_K/Q6_K GEMV (N=4096,\n"
           "K=14336, M = 1,2,4,8), the elementwise ops on 64 MiB tensors and the launch\n"
           "overhead of a tiny op on every backend present, reporting bytes/s as a fraction\n"
           "of the measured read bandwidth.\n\n"
           "options:\n"
           "  --backend LIST   cpu,opencl,cuda (default: all present)\n"
           "  --repeats N      timed runs per case, median reported (default 10)\n"
           "  --quick          smaller shapes, 3 repeats\n"
           "  --csv FILE       write the rows as CSV\n"
           "  --json FILE      write the rows as JSON\n"
           "  --metrics json|prom  print the dispatch metrics afterwards\n");
}

static int parse(int argc, char **argv, bench_opts *o)
{
    int any = 0;
    *o = (bench_opts){.repeats = 10};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (kd_cli_is_help(a)) {
            usage();
            exit(0);
        } else if (strcmp(a, "--quick") == 0) {
            o->quick = 1;
            o->repeats = 3;
            continue;
        } else if (v && strcmp(a, "--repeats") == 0) {
            o->repeats = atoi(v);
            if (o->repeats < 1 || o->repeats > 64)
                return -1;
        } else if (v && strcmp(a, "--csv") == 0) {
            o->csv = v;
        } else if (v && strcmp(a, "--json") == 0) {
            o->json = v;
        } else if (v && strcmp(a, "--metrics") == 0) {
            o->metrics = v;
        } else if (v && strcmp(a, "--backend") == 0) {
            char buf[128];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
                kd_backend_id b = kd_backend_from_name(t);
                if ((unsigned)b >= KD_BACKEND_COUNT)
                    return -1;
                o->use_backend[b] = any = 1;
            }
        } else {
            return -1;
        }
        i++;
    }
    if (!any)
        for (int b = 0; b < KD_BACKEND_COUNT; b++)
            o->use_backend[b] = 1;
    return 0;
}

int kd_cmd_bench(int argc, char **argv)
{
    bench_opts o;
    if (parse(argc, argv, &o)) {
        fprintf(stderr, "kdispatch bench: bad options (see --help)\n");
        return 2;
    }
    kd_context *ctx;
    if (kd_context_create(NULL, &ctx) != KD_OK) {
        fprintf(stderr, "kdispatch: %s\n", kd_last_error(NULL));
        return 1;
    }
    for (int b = 0; b < KD_BACKEND_COUNT; b++)
        printf("%-7s %s\n", kd_backend_name(b), kd_backend_reason(ctx, b));
    double bw = kd_measure_read_bandwidth((size_t)(o.quick ? 256 : 1024) << 20, o.quick ? 3 : 5);
    printf("\nhost memory read bandwidth: %.2f GB/s (all cores, best of passes)\n\n", bw / 1e9);
    printf("%-13s %-8s %3s %6s %6s  %-7s %9s %9s %9s %8s %6s\n", "op", "kernel", "M", "N", "K",
           "backend", "med_ms", "min_ms", "max_ms", "GB/s", "frac");
    nrows = 0;
    bench_gemv(ctx, &o, KD_OP_Q4K_GEMV, bw);
    bench_gemv(ctx, &o, KD_OP_Q6K_GEMV, bw);
    bench_elementwise(ctx, &o, bw);
    bench_launch(ctx, &o, bw);
    print_batch_speedups();
    if (o.csv)
        write_csv(o.csv, bw);
    if (o.json)
        write_json(o.json, bw);
    if (o.metrics) {
        static char buf[1 << 16];
        kd_metrics_export(ctx, o.metrics, buf, sizeof buf);
        fputs(buf, stdout);
    }
    kd_context_destroy(ctx);
    return 0;
}
