/*
 * kdispatch bench: kernel throughput as a fraction of the host's measured memory read
 * bandwidth, for every op, kernel (single-row and batched) and backend, and with
 * --all-devices every OpenCL device. Three parts:
 *   headline  Q4_K/Q6_K GEMV at N=4096 K=14336 for M = 1, 2, 4, 8, the elementwise ops on
 *             64 MiB tensors, and the batched GEMV speed-up;
 *   launch    a one-element op: the launch-and-wait overhead of each backend;
 *   sweep     every op at each M over working sets from 64 KiB to 4 x the last-level
 *             cache, so the curve shows the cache levels and the DRAM plateau.
 * Ratios to the measured ceiling, not absolute times, are what compare across machines.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h" /* kd_cmd_bench */
#include "bench_internal.h"
#include "env.h" /* kd_settings: KD_HUGE_PAGES */
#include "host_cpus.h"
#include "host_mem.h"
#include "kd_backend.h"
#include "kd_oracle.h"
#include "kd_quant.h"
#include "op_traits.h"

enum { SWEEP_K = 4096, ROPE_HEAD_DIM = 128, MAX_INNER = 100000 };

typedef struct plan {
    bench_case *c;
    int n, cap;
} plan;

/* Host inputs shared by every case: prefixes of one f32 buffer and of one buffer of
 * random valid blocks per quant type (random blocks fit any shape with as many blocks). */
typedef struct pool {
    float *f32;
    size_t nf32;
    void *blocks[2];
    size_t block_bytes[2];
} pool;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static kd_type quant_of(kd_op op) { return op == KD_OP_Q4K_GEMV ? KD_TYPE_Q4_K : KD_TYPE_Q6_K; }
static int qi(kd_op op) { return op == KD_OP_Q4K_GEMV ? 0 : 1; }

/* ---- options -------------------------------------------------------------------------------- */

static void usage(void)
{
    printf(
        "usage: kdispatch bench [options]\n"
        "\n"
        "Measures the host's memory read bandwidth (a thread per CPU the process may\n"
        "use) and reads the cache sizes from sysfs, then times every op with its\n"
        "single-row (M = 1) and batched (M > 1) kernel on every backend present,\n"
        "reporting bytes/s and the fraction of the measured read bandwidth:\n"
        "  headline  Q4_K/Q6_K GEMV N=4096 K=14336 at M = 1,2,4,8 (--quick: 2048 x 7168),\n"
        "            the elementwise ops on 64 MiB tensors (--quick: 16 MiB), and the\n"
        "            batched GEMV speed-up M x time(M=1) / time(M);\n"
        "  launch    a one-element residual add: launch-and-wait overhead per backend;\n"
        "  sweep     every op at each M over working sets from 64 KiB to 4 x the last-level\n"
        "            cache (steps of 2x; --quick: to 2 x LLC in steps of 4x), crossing L2\n"
        "            and LLC.\n"
        "Each case: one untimed run (uploads, builds), calls repeated until a sample lasts\n"
        "--sample-ms, --warmup-ms of warm-up, then --repeats samples; the median per call\n"
        "is reported with min/max and the quartiles (p25/p75). bytes = what one call must\n"
        "read and write (the working set); GB/s = bytes / median; frac = GB/s over the\n"
        "host read bandwidth; dfrac = GB/s over the device's own bandwidth (an offload\n"
        "device: a residual add over 384 MiB on it, --quick 96 MiB; cpu: the host's).\n"
        "The cpu's headline elementwise cases are also paired with the host bandwidth,\n"
        "for machines whose bandwidth drifts: a read pass after each sample, and nfrac =\n"
        "the median of each sample's GB/s over the pass after it (JSON: near_read_bw_gbps,\n"
        "frac_of_near_read_bw; 0 where not measured).\n"
        "\n"
        "options:\n"
        "  --backend LIST    cpu,opencl,cuda (default: all present)\n"
        "  --op LIST         ops (default: all six)\n"
        "  --m LIST          sweep batch sizes (default 1,2,4,8; --quick 1,8)\n"
        "  --n N, --k K      headline GEMV of N x K (K a multiple of 256) instead of\n"
        "                    4096 x 14336, at the --m batch sizes (bench/vs-ggml.sh)\n"
        "  --all-devices     every OpenCL device `kdispatch devices` lists, in turn (one\n"
        "                    context each), labelled opencl:<index>\n"
        "  --repeats N       timed samples per case (default 10; --quick 5); a case whose\n"
        "                    calls are slow gets fewer (at least 3), so that its samples\n"
        "                    take about --budget-ms\n"
        "  --budget-ms X     time for the samples of one slow case (default 2000;\n"
        "                    --quick 200)\n"
        "  --warmup-ms X     warm-up per case (default 20; --quick 5)\n"
        "  --sample-ms X     least duration of one sample (default 2; --quick 1)\n"
        "  --min-size SIZE   smallest sweep working set (default 64K)\n"
        "  --max-size SIZE   largest sweep working set (default 4 x LLC, at most 1G;\n"
        "                    --quick 2 x LLC, at most 256M); SIZE takes K, M, G suffixes\n"
        "  --no-sweep        headline and launch only\n"
        "  --default-path    time each backend's default GEMV path only, not also the\n"
        "                    other one (cpu-exact / cpu-q8, opencl-q8 / opencl-exact)\n"
        "  --borrow-weights  GEMV weights borrowed from the bench's own buffer (the\n"
        "                    4 KiB pages of malloc and GGUF's row order, as a mapped GGUF\n"
        "                    file has) instead of the library's copy (kd_tensor_quant:\n"
        "                    2 MiB pages from 4 MiB, the cpu's row groups from K > 8192)\n"
        "  --cold-weights    each GEMV cycles call by call through copies of its weights\n"
        "                    that together are at least 4 x the last-level cache (an\n"
        "                    offload device: 4 x 128 MiB at least), so that no call\n"
        "                    finds them in a cache: a decode step over a model far\n"
        "                    larger than the caches (default: one copy, which a cache of\n"
        "                    its size keeps from call to call, as ggml's benchmark does)\n"
        "  --no-headline     sweep only\n"
        "  --quick           the above smaller: finishes in under a minute on 2 cores\n"
        "  --csv FILE        write every row as CSV\n"
        "  --json FILE       write host, settings, devices and rows as JSON\n"
        "  --plot FILE.png   plot GB/s against working set per op and device, with the\n"
        "                    read bandwidth drawn as a line (runs python3 bench/plot.py,\n"
        "                    matplotlib; KD_PLOT_SCRIPT overrides the script's path)\n"
        "  --no-progress     no progress bar (shown on stderr when it is a terminal)\n"
        "  --metrics json|prom  print the dispatch metrics afterwards\n"
        "  -h, --help        this text\n"
        "\n"
        "Exit status: 0 all ran; 1 an op failed on a backend, or an output could not be\n"
        "written; 2 bad usage.\n");
}

static int parse_names(const char *s, int *flags, int count, int is_op)
{
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        int v = is_op ? (int)kd_op_from_name(t) : (int)kd_backend_from_name(t);
        if (v < 0 || v >= count)
            return -1;
        flags[v] = 1;
    }
    return 0;
}

static int parse_ms(const char *v, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= 0) || x > 10000)
        return -1;
    *out = x * 1e-3;
    return 0;
}

static int parse_value(bench_opts *o, const char *a, const char *v)
{
    if (strcmp(a, "--backend") == 0)
        return parse_names(v, o->use_backend, KD_BACKEND_COUNT, 0);
    if (strcmp(a, "--op") == 0)
        return parse_names(v, o->use_op, KD_OP_COUNT, 1);
    if (strcmp(a, "--m") == 0)
        return (o->nm = kd_cli_parse_list(v, o->m, BENCH_MAX_M)) > 0 ? 0 : -1;
    if (strcmp(a, "--n") == 0)
        return (o->gemv_n = atoll(v)) >= 1 && o->gemv_n <= (1ll << 24) ? 0 : -1;
    if (strcmp(a, "--k") == 0)
        return (o->gemv_k = atoll(v)) >= 256 && o->gemv_k % 256 == 0 && o->gemv_k <= (1ll << 24)
                   ? 0 : -1;
    if (strcmp(a, "--repeats") == 0)
        return (o->repeats = atoi(v)) >= 1 && o->repeats <= BENCH_MAX_REPEATS ? 0 : -1;
    if (strcmp(a, "--warmup-ms") == 0)
        return parse_ms(v, &o->warmup_s);
    if (strcmp(a, "--sample-ms") == 0)
        return parse_ms(v, &o->sample_s);
    if (strcmp(a, "--budget-ms") == 0)
        return parse_ms(v, &o->budget_s);
    if (strcmp(a, "--min-size") == 0)
        return (o->min_size = kd_parse_cache_size(v)) >= 1024 ? 0 : -1;
    if (strcmp(a, "--max-size") == 0)
        return (o->max_size = kd_parse_cache_size(v)) >= 1024 ? 0 : -1;
    if (strcmp(a, "--csv") == 0)
        return (o->csv = v)[0] ? 0 : -1;
    if (strcmp(a, "--json") == 0)
        return (o->json = v)[0] ? 0 : -1;
    if (strcmp(a, "--plot") == 0)
        return (o->plot = v)[0] ? 0 : -1;
    if (strcmp(a, "--metrics") == 0)
        return strcmp(o->metrics = v, "json") == 0 || strcmp(v, "prom") == 0 ? 0 : -1;
    return KD_CLI_UNKNOWN;
}

static int parse_flag(bench_opts *o, const char *a)
{
    if (strcmp(a, "--quick") == 0)
        o->quick = 1;
    else if (strcmp(a, "--all-devices") == 0)
        o->all_devices = 1;
    else if (strcmp(a, "--no-sweep") == 0)
        o->no_sweep = 1;
    else if (strcmp(a, "--default-path") == 0)
        o->default_path_only = 1;
    else if (strcmp(a, "--borrow-weights") == 0)
        o->borrow_weights = 1;
    else if (strcmp(a, "--cold-weights") == 0)
        o->cold_weights = 1;
    else if (strcmp(a, "--no-headline") == 0)
        o->no_headline = 1;
    else if (strcmp(a, "--no-progress") == 0)
        o->progress = 0;
    else
        return 0;
    return 1;
}

/* Quick-mode defaults apply to what the command line did not set. */
static void apply_defaults(bench_opts *o)
{
    kd_cli_none_means_all(o->use_backend, KD_BACKEND_COUNT);
    kd_cli_none_means_all(o->use_op, KD_OP_COUNT);
    if (!o->nm) {
        static const long long full[] = {1, 2, 4, 8}, quick[] = {1, 8};
        o->nm = o->quick ? 2 : 4;
        memcpy(o->m, o->quick ? quick : full, sizeof(long long) * (size_t)o->nm);
    }
    if (!o->repeats)
        o->repeats = o->quick ? 5 : 10;
    if (o->warmup_s < 0)
        o->warmup_s = o->quick ? 5e-3 : 20e-3;
    if (o->sample_s < 0)
        o->sample_s = o->quick ? 1e-3 : 2e-3;
    if (o->budget_s < 0)
        o->budget_s = o->quick ? 0.2 : 2.0;
}

/* 0 parsed, 1 help printed, -1 bad usage (message printed). */
static int parse(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.warmup_s = -1, .sample_s = -1, .budget_s = -1, .progress = isatty(2)};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (kd_cli_is_help(a)) {
            usage();
            return 1;
        }
        if (parse_flag(o, a))
            continue;
        if (!v || parse_value(o, a, v)) {
            bench_opts scratch = *o; /* is a an option at all? ask without keeping it */
            kd_cli_bad_option("kdispatch bench", a, v, parse_value(&scratch, a, "") != KD_CLI_UNKNOWN,
                              NULL);
            return -1;
        }
        i++;
    }
    apply_defaults(o);
    if (o->no_sweep && o->no_headline) {
        fprintf(stderr, "kdispatch bench: --no-sweep and --no-headline leave nothing to run\n");
        return -1;
    }
    if (o->borrow_weights && o->cold_weights) {
        fprintf(stderr, "kdispatch bench: --cold-weights makes copies of the weights, "
                        "--borrow-weights borrows one buffer: use one of them\n");
        return -1;
    }
    return 0;
}

/* ---- targets: backends and devices ---------------------------------------------------------- */

static void add_target(bench_target *t, int *n, kd_context *ctx, int owns, kd_backend_id b,
                       const char *label)
{
    bench_target *x = &t[(*n)++];
    *x = (bench_target){.ctx = ctx, .owns_ctx = owns, .backend = b};
    snprintf(x->label, sizeof x->label, "%s", label);
    snprintf(x->device, sizeof x->device, "%s", kd_backend_reason(ctx, b));
}

/* --all-devices: a context per OpenCL device, every device kd_device_info_get lists
 * (across all platforms, chosen by index through the context options, so the
 * environment's KD_OPENCL_PLATFORM / KD_OPENCL_DEVICE do not narrow it). A device that
 * exists but cannot be used is reported and skipped. */
static void add_opencl_devices(bench_target *t, int *n)
{
    int count = kd_device_count(KD_BACKEND_OPENCL);
    if (count == 0)
        fprintf(stderr, "kdispatch bench: --all-devices: no OpenCL device\n");
    for (int i = 0; *n < BENCH_MAX_TARGETS && i < count; i++) {
        kd_device_info d;
        char idx[16], label[32];
        if (kd_device_info_get(KD_BACKEND_OPENCL, i, &d) != KD_OK || !d.usable) {
            fprintf(stderr, "kdispatch bench: OpenCL device %d (%s) skipped: not usable\n", i,
                    d.name);
            continue;
        }
        snprintf(idx, sizeof idx, "%d", i);
        kd_context_options co = {.disable_cuda = 1, .opencl_platform = "", .opencl_device = idx};
        kd_context *ctx = NULL;
        if (kd_context_create(&co, &ctx) != KD_OK) {
            fprintf(stderr, "kdispatch bench: OpenCL device %d: %s\n", i, kd_last_error(NULL));
            continue;
        }
        if (!kd_backend_available(ctx, KD_BACKEND_OPENCL)) {
            fprintf(stderr, "kdispatch bench: OpenCL device %d skipped: %s\n", i,
                    kd_backend_reason(ctx, KD_BACKEND_OPENCL));
            kd_context_destroy(ctx);
            continue;
        }
        snprintf(label, sizeof label, "opencl:%d", i);
        add_target(t, n, ctx, 1, KD_BACKEND_OPENCL, label);
    }
}

/* The cpu's GEMV path that "cpu" does not run (its device line names the default, q8
 * unless KD_CPU_GEMV=exact), timed on the headline GEMV shapes so that both paths are
 * measured in one run. */
static void add_other_gemv_path(bench_target *t, int *n, kd_context *ctx)
{
    unsigned dflt;
    kd_backend_gemv_paths(ctx, KD_BACKEND_CPU, &dflt);
    int default_exact = dflt == KD_GEMV_EXACT;
    bench_target *x = &t[*n];
    add_target(t, n, ctx, 0, KD_BACKEND_CPU, default_exact ? "cpu-q8" : "cpu-exact");
    x->run_flags = default_exact ? KD_RUN_CPU_Q8 : KD_RUN_CPU_EXACT;
    x->gemv_only = 1;
    snprintf(x->device, sizeof x->device, "the same cpu, GEMV %s path (%s), headline GEMV only",
             default_exact ? "q8" : "exact", default_exact ? "KD_RUN_CPU_Q8" : "KD_RUN_CPU_EXACT");
}

/* The same for an OpenCL CPU device (PoCL), whose default is exact unless
 * KD_OPENCL_GEMV=q8. */
static void add_other_opencl_gemv_path(bench_target *t, int *n, kd_context *ctx)
{
    unsigned dflt;
    if (!(kd_backend_gemv_paths(ctx, KD_BACKEND_OPENCL, &dflt) & KD_GEMV_Q8))
        return;
    int default_q8 = dflt == KD_GEMV_Q8;
    bench_target *x = &t[*n];
    add_target(t, n, ctx, 0, KD_BACKEND_OPENCL, default_q8 ? "opencl-exact" : "opencl-q8");
    x->run_flags = default_q8 ? KD_RUN_OPENCL_EXACT : KD_RUN_OPENCL_Q8;
    x->gemv_only = 1;
    snprintf(x->device, sizeof x->device, "the same OpenCL device, GEMV %s path (%s), "
             "headline GEMV only", default_q8 ? "exact" : "q8",
             default_q8 ? "KD_RUN_OPENCL_EXACT" : "KD_RUN_OPENCL_Q8");
}

static int pick_targets(const bench_opts *o, kd_context *ctx, bench_target *t)
{
    int n = 0;
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        if (!o->use_backend[b] || !kd_backend_available(ctx, (kd_backend_id)b))
            continue;
        if (b == KD_BACKEND_OPENCL && o->all_devices)
            continue;
        add_target(t, &n, ctx, 0, (kd_backend_id)b, kd_backend_name((kd_backend_id)b));
        if (b == KD_BACKEND_CPU && !o->default_path_only)
            add_other_gemv_path(t, &n, ctx);
        if (b == KD_BACKEND_OPENCL && !o->default_path_only)
            add_other_opencl_gemv_path(t, &n, ctx);
    }
    if (o->all_devices && o->use_backend[KD_BACKEND_OPENCL])
        add_opencl_devices(t, &n);
    return n;
}

/* ---- the plan ---------------------------------------------------------------------------- */

static int plan_add(plan *p, bench_case c)
{
    if (kd_cli_grow(&p->c, &p->cap, p->n, sizeof *p->c))
        return -1;
    p->c[p->n++] = c;
    return 0;
}

/* Bytes an elementwise op moves per value of a row: m-row tensors read or written (x and
 * y; swiglu and residual add also a second input), and rmsnorm's one weight row. */
static double bytes_per_column(kd_op op, long long m)
{
    int tensors = op == KD_OP_SWIGLU || op == KD_OP_RESIDUAL_ADD ? 3 : 2;
    return 4.0 * ((double)tensors * (double)m + (op == KD_OP_RMSNORM ? 1 : 0));
}

/* Bytes one call must move: inputs read and output written once. */
static double case_bytes(kd_op op, long long m, int64_t n, int64_t k)
{
    if (kd_op_is_gemv(op))
        return (double)n * (double)kd_quant_row_bytes(quant_of(op), k) + 4.0 * m * k + 4.0 * m * n;
    return bytes_per_column(op, m) * (double)n;
}

static bench_case make_case(bench_section s, kd_op op, long long m, int64_t n, int64_t k, int t)
{
    return (bench_case){s, op, m, n, k, t, case_bytes(op, m, n, k)};
}

/* The shape whose working set is about ws bytes: GEMV N rows of K = 4096; elementwise
 * rows of n values (rope: whole heads of 128). */
static void sweep_shape(kd_op op, long long m, long long ws, int64_t *n, int64_t *k)
{
    if (kd_op_is_gemv(op)) {
        *k = SWEEP_K;
        *n = ws / (long long)kd_quant_row_bytes(quant_of(op), SWEEP_K);
    } else {
        *k = 0;
        *n = (int64_t)((double)ws / bytes_per_column(op, m));
        if (op == KD_OP_ROPE)
            *n = *n / ROPE_HEAD_DIM * ROPE_HEAD_DIM;
    }
    int64_t least = op == KD_OP_ROPE ? ROPE_HEAD_DIM : 1;
    if (*n < least)
        *n = least;
}

/* Sweep points: min, min*f, min*f^2, ... below max, then max (f = 2, or 4 with --quick). */
static int sweep_sizes(const bench_opts *o, const kd_host_caches *c, long long *out, int cap)
{
    long long lo = o->min_size ? o->min_size : 64ll << 10;
    long long hi = o->max_size ? o->max_size : (o->quick ? 2 : 4) * c->llc;
    if (!o->max_size && hi > (o->quick ? 256ll << 20 : 1ll << 30))
        hi = o->quick ? 256ll << 20 : 1ll << 30;
    if (hi < lo)
        hi = lo;
    int n = 0;
    for (long long s = lo; s < hi && n < cap - 1; s *= o->quick ? 4 : 2)
        out[n++] = s;
    out[n++] = hi;
    return n;
}

static int plan_headline(const bench_opts *o, int t, int gemv_only, plan *p)
{
    static const long long ms[] = {1, 2, 4, 8};
    /* --n/--k: that one GEMV shape at the --m sizes (the side-by-side runs of vs-ggml.sh) */
    const int shaped = o->gemv_n || o->gemv_k;
    const int64_t n = o->gemv_n ? o->gemv_n : o->quick ? 2048 : 4096;
    const int64_t k = o->gemv_k ? o->gemv_k : o->quick ? 7168 : 14336;
    const long long *msel = shaped ? o->m : ms;
    const int nms = shaped ? o->nm : 4;
    const int64_t rows = o->quick ? 1024 : 4096, cols = 4096;
    for (int op = KD_OP_Q4K_GEMV; op <= KD_OP_Q6K_GEMV; op++)
        for (int i = 0; i < nms && o->use_op[op]; i++)
            if (plan_add(p, make_case(BENCH_HEADLINE, (kd_op)op, msel[i], n, k, t)))
                return -1;
    for (int op = KD_OP_RMSNORM; op <= KD_OP_RESIDUAL_ADD && !gemv_only; op++)
        if (o->use_op[op] && plan_add(p, make_case(BENCH_HEADLINE, (kd_op)op, rows, cols, 0, t)))
            return -1;
    return 0;
}

static int plan_sweep(const bench_opts *o, const bench_report *rep, int t, plan *p)
{
    for (int op = 0; op < KD_OP_COUNT; op++)
        for (int mi = 0; mi < o->nm && o->use_op[op]; mi++)
            for (int si = 0; si < rep->nsweep; si++) {
                int64_t n, k;
                sweep_shape((kd_op)op, o->m[mi], rep->sweep_sizes[si], &n, &k);
                bench_case c = make_case(BENCH_SWEEP, (kd_op)op, o->m[mi], n, k, t);
                if (plan_add(p, c))
                    return -1;
            }
    return 0;
}

/* Headline and launch rows of every target first (printed as they come), then the sweep. */
static int make_plan(const bench_opts *o, const bench_report *rep, plan *p)
{
    for (int t = 0; t < rep->ntargets && !o->no_headline; t++)
        if (plan_headline(o, t, rep->targets[t].gemv_only, p))
            return -1;
    for (int t = 0; t < rep->ntargets && !o->no_headline; t++)
        if (!rep->targets[t].gemv_only &&
            plan_add(p, make_case(BENCH_LAUNCH, KD_OP_RESIDUAL_ADD, 1, 1, 0, t)))
            return -1;
    for (int t = 0; t < rep->ntargets && !o->no_sweep; t++)
        if (!rep->targets[t].gemv_only && plan_sweep(o, rep, t, p))
            return -1;
    return 0;
}

/* ---- inputs ---------------------------------------------------------------------------------- */

static size_t case_floats(const bench_case *c)
{
    return (size_t)(c->m * (kd_op_is_gemv(c->op) ? c->k : c->n));
}

static size_t case_block_bytes(const bench_case *c)
{
    return kd_op_is_gemv(c->op) ? (size_t)c->n * kd_quant_row_bytes(quant_of(c->op), c->k) : 0;
}

static int make_pool(const plan *p, pool *pl)
{
    memset(pl, 0, sizeof *pl);
    for (int i = 0; i < p->n; i++) {
        const bench_case *c = &p->c[i];
        size_t f = case_floats(c), b = case_block_bytes(c);
        if (f > pl->nf32)
            pl->nf32 = f;
        if (kd_op_is_gemv(c->op) && b > pl->block_bytes[qi(c->op)])
            pl->block_bytes[qi(c->op)] = b;
    }
    if (!(pl->f32 = malloc(sizeof(float) * (pl->nf32 ? pl->nf32 : 1))))
        return -1;
    kd_rng rng;
    kd_rng_seed(&rng, 9);
    kd_fill_uniform(&rng, pl->f32, (int64_t)pl->nf32, -2.0f, 2.0f);
    for (int t = 0; t < 2; t++) {
        if (!pl->block_bytes[t])
            continue;
        kd_type type = t == 0 ? KD_TYPE_Q4_K : KD_TYPE_Q6_K;
        size_t bb = kd_quant_block_bytes(type);
        if (!(pl->blocks[t] = malloc(pl->block_bytes[t])))
            return -1;
        kd_quant_random_blocks(type, (int64_t)(pl->block_bytes[t] / bb), 1234u + (unsigned)t,
                               pl->blocks[t]);
    }
    return 0;
}

static void free_pool(pool *pl)
{
    free(pl->f32);
    free(pl->blocks[0]);
    free(pl->blocks[1]);
}

/* --cold-weights: most copies of one GEMV's weights. The headline's 33 MB needs 4 against
 * a 32 MiB cache; sweep cases under 4 x LLC / 64 of weights (2 MiB there) stay partly
 * cached even so. */
#define BENCH_MAX_COPIES 64

typedef struct case_data {
    kd_tensor *a, *b, *y;
    uint32_t *pos;
    kd_op_desc d[BENCH_MAX_COPIES]; /* d[i] reads weight copy i (GEMV); one desc otherwise */
    kd_tensor *copies[BENCH_MAX_COPIES]; /* copies[0] is a */
    int ncopies;
} case_data;

/* An offload device's last cache is not the host's: at least this much is assumed for it
 * (GPU L2 caches: 50 MB on an H100, 126 MB on a B200). */
#define BENCH_DEVICE_CACHE_MIN (128ll << 20)

/* Copies of bytes of weights that together are at least 4 x the last-level cache, so that
 * cycling through them evicts each before its next use: 1 when one copy is that large. */
static int cold_copies(const bench_host *h, kd_backend_id b, double bytes)
{
    long long cache = h->caches.llc > 0 ? h->caches.llc : 32ll << 20;
    if (b != KD_BACKEND_CPU && cache < BENCH_DEVICE_CACHE_MIN)
        cache = BENCH_DEVICE_CACHE_MIN;
    double want = 4.0 * (double)cache;
    double n = ceil(want / bytes);
    return n < 1 ? 1 : n > BENCH_MAX_COPIES ? BENCH_MAX_COPIES : (int)n;
}

static void free_case(case_data *cd)
{
    for (int i = 1; i < cd->ncopies; i++)
        kd_tensor_free(cd->copies[i]);
    kd_tensor_free(cd->a);
    kd_tensor_free(cd->b);
    kd_tensor_free(cd->y);
    free(cd->pos);
}

/* The GEMV weights are the library's own copy unless --borrow-weights: that copy is in
 * huge pages (host_mem.h) and, with long rows, in the cpu's row groups (kd_row_groups.h);
 * the pool's malloc'd buffer is neither. */
static kd_status make_inputs(kd_context *ctx, const bench_case *c, const pool *pl, int borrow,
                             int copies, case_data *cd)
{
    memset(cd, 0, sizeof *cd);
    cd->ncopies = 1;
    kd_op_desc *d = &cd->d[0];
    d->op = c->op;
    if (kd_op_is_gemv(c->op)) {
        kd_status st = (borrow ? kd_tensor_quant_borrow : kd_tensor_quant)(
            ctx, quant_of(c->op), c->n, c->k, pl->blocks[qi(c->op)], case_block_bytes(c), &cd->a);
        cd->copies[0] = cd->a;
        for (; st == KD_OK && cd->ncopies < copies; cd->ncopies++)
            st = kd_tensor_quant(ctx, quant_of(c->op), c->n, c->k, pl->blocks[qi(c->op)],
                                 case_block_bytes(c), &cd->copies[cd->ncopies]);
        if (st == KD_OK)
            st = kd_tensor_f32(ctx, c->m, c->k, pl->f32, &cd->b);
        return st == KD_OK ? kd_tensor_f32(ctx, c->m, c->n, NULL, &cd->y) : st;
    }
    kd_status st = kd_tensor_f32(ctx, c->m, c->n, pl->f32, &cd->a);
    if (st == KD_OK && c->op != KD_OP_ROPE)
        st = kd_tensor_f32(ctx, c->op == KD_OP_RMSNORM ? 1 : c->m, c->n, pl->f32, &cd->b);
    if (st == KD_OK)
        st = kd_tensor_f32(ctx, c->m, c->n, NULL, &cd->y);
    if (st == KD_OK && c->op == KD_OP_ROPE) {
        if (!(cd->pos = malloc(sizeof(uint32_t) * (size_t)c->m)))
            return KD_ERR_NOMEM;
        for (long long i = 0; i < c->m; i++)
            cd->pos[i] = (uint32_t)(i % 4096);
        d->pos = cd->pos;
        d->head_dim = c->n % ROPE_HEAD_DIM == 0 ? ROPE_HEAD_DIM : (int)c->n;
        d->n_heads = (int)(c->n / d->head_dim);
    }
    return st;
}

/* ---- timing -------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-quantile of n sorted values, linearly interpolated. */
static double quantile(const double *s, int n, double p)
{
    double at = p * (n - 1);
    int lo = (int)at;
    return lo + 1 < n ? s[lo] + (at - lo) * (s[lo + 1] - s[lo]) : s[n - 1];
}

/* The descs of one case, called in turn (more than one: --cold-weights' copies). */
typedef struct case_calls {
    const kd_op_desc *d;
    int nd, next;
} case_calls;

static kd_status run_n(const bench_target *t, case_calls *cc, int n)
{
    for (int i = 0; i < n; i++) {
        kd_status st = kd_run(t->ctx, &cc->d[cc->next], t->backend,
                              KD_RUN_NO_FALLBACK | t->run_flags);
        if (st != KD_OK)
            return st;
        cc->next = (cc->next + 1) % cc->nd;
    }
    return KD_OK;
}

/* The medians of the passes after the samples and of each sample's bytes/s over the
 * pass after it (bench_row.near_bw, near_frac). */
static void pair_with_bandwidth(bench_row *r, const double *s, double *bw, int n)
{
    double ratio[BENCH_MAX_REPEATS];
    for (int i = 0; i < n; i++)
        ratio[i] = bw[i] > 0 ? r->c.bytes / s[i] / bw[i] : 0;
    qsort(ratio, (size_t)n, sizeof *ratio, cmp_double);
    qsort(bw, (size_t)n, sizeof *bw, cmp_double);
    r->near_frac = quantile(ratio, n, 0.5);
    r->near_bw = quantile(bw, n, 0.5);
}

/* One untimed run of every desc (uploads inputs, builds programs), calibration of the
 * calls per sample, warm-up, then the samples; with near, a bandwidth pass over it after
 * each sample. */
static kd_status time_case(const bench_opts *o, const bench_target *t, case_calls *cc,
                           const kd_membw *near, bench_row *r)
{
    kd_status st = run_n(t, cc, cc->nd);
    double t0 = now_s();
    if (st != KD_OK || (st = run_n(t, cc, 1)) != KD_OK)
        return st;
    double one = now_s() - t0;
    double want = o->sample_s / (one > 1e-8 ? one : 1e-8);
    r->inner = one >= o->sample_s ? 1 : want > MAX_INNER ? MAX_INNER : (int)ceil(want);
    /* a call slower than the warm-up time was warm-up enough */
    for (t0 = now_s(); one < o->warmup_s && now_s() - t0 < o->warmup_s;)
        if ((st = run_n(t, cc, r->inner)) != KD_OK)
            return st;
    /* slow cases get fewer samples (at least 3) to stay near the time budget */
    int repeats = o->repeats;
    if (one * repeats > o->budget_s && repeats > 3)
        repeats = one * 3 >= o->budget_s ? 3 : (int)(o->budget_s / one);
    double s[BENCH_MAX_REPEATS], bw[BENCH_MAX_REPEATS];
    for (int i = 0; i < repeats; i++) {
        t0 = now_s();
        if ((st = run_n(t, cc, r->inner)) != KD_OK)
            return st;
        s[i] = (now_s() - t0) / r->inner;
        if (near)
            bw[i] = kd_membw_read(near, 1);
    }
    if (near)
        pair_with_bandwidth(r, s, bw, repeats);
    qsort(s, (size_t)repeats, sizeof *s, cmp_double);
    r->repeats = repeats;
    r->min_s = s[0];
    r->max_s = s[repeats - 1];
    r->median_s = quantile(s, repeats, 0.5);
    r->p25_s = quantile(s, repeats, 0.25);
    r->p75_s = quantile(s, repeats, 0.75);
    return KD_OK;
}

/* ---- progress -------------------------------------------------------------------------------- */

static void progress_clear(const bench_opts *o)
{
    if (o->progress)
        fputs("\r\033[K", stderr);
}

static void progress_draw(const bench_opts *o, const bench_report *rep, int done, int total,
                          const bench_case *c)
{
    if (!o->progress)
        return;
    enum { WIDTH = 30 };
    int fill = total ? done * WIDTH / total : WIDTH;
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r[%s] %3d%% %d/%d", bar, total ? 100 * done / total : 100, done, total);
    if (c)
        fprintf(stderr, "  %s %s M=%lld %.0f KiB on %s", bench_section_name(c->section),
                kd_op_name(c->op), c->m, c->bytes / 1024, rep->targets[c->target].label);
    fputs("\033[K", stderr);
    fflush(stderr);
}

/* ---- the run --------------------------------------------------------------------------------- */

/* The cases timed with a bandwidth pass after each sample (bench_row.near_bw): the cpu's
 * headline elementwise ops. Not the GEMVs: their weights are about the LLC's size, and the
 * pass would evict what the next sample finds there now. */
static const kd_membw *near_bw_buffer(const bench_report *rep, const bench_case *c)
{
    return c->section == BENCH_HEADLINE && !kd_op_is_gemv(c->op) &&
                   rep->targets[c->target].backend == KD_BACKEND_CPU && rep->host->membw.buf
               ? &rep->host->membw
               : NULL;
}

static int run_case(const bench_opts *o, bench_report *rep, const pool *pl, const bench_case *c,
                    bench_row *r)
{
    const bench_target *t = &rep->targets[c->target];
    case_data cd;
    *r = (bench_row){.c = *c};
    int copies = o->cold_weights && kd_op_is_gemv(c->op)
                     ? cold_copies(rep->host, t->backend, (double)case_block_bytes(c))
                     : 1;
    kd_status st = make_inputs(t->ctx, c, pl, o->borrow_weights, copies, &cd);
    if (st == KD_OK) {
        cd.d[0].src[0] = cd.a;
        cd.d[0].src[1] = cd.b;
        cd.d[0].dst = cd.y;
        for (int i = 1; i < cd.ncopies; i++) {
            cd.d[i] = cd.d[0];
            cd.d[i].src[0] = cd.copies[i];
        }
        case_calls cc = {cd.d, cd.ncopies, 0};
        r->weight_copies = cd.ncopies;
        st = time_case(o, t, &cc, near_bw_buffer(rep, c), r);
    }
    r->ok = st == KD_OK;
    if (!r->ok) {
        progress_clear(o);
        fprintf(stderr, "kdispatch bench: %s M=%lld n=%lld k=%lld on %s failed: %s: %s\n",
                kd_op_name(c->op), c->m, (long long)c->n, (long long)c->k, t->label,
                kd_status_name(st), kd_last_error(t->ctx));
    }
    free_case(&cd);
    return r->ok ? 0 : -1;
}

static int run_plan(const bench_opts *o, bench_report *rep, const plan *p, const pool *pl,
                    bench_row *rows)
{
    int failed = 0, header = 0;
    for (int i = 0; i < p->n; i++) {
        progress_draw(o, rep, i, p->n, &p->c[i]);
        failed += run_case(o, rep, pl, &p->c[i], &rows[i]) != 0;
        rep->nrows = i + 1;
        if (p->c[i].section == BENCH_SWEEP || !rows[i].ok)
            continue;
        progress_clear(o);
        if (!header++)
            bench_print_table_header(stdout);
        bench_print_row(stdout, rep, &rows[i]);
        fflush(stdout);
    }
    progress_draw(o, rep, p->n, p->n, NULL);
    progress_clear(o);
    return failed;
}

static void print_intro(const bench_opts *o, const bench_report *rep, kd_context *ctx)
{
    const bench_host *h = rep->host;
    const kd_host_caches *c = &h->caches;
    printf("kdispatch bench%s on %s, %d cpus", o->quick ? " --quick" : "", h->cpu_model, h->cpus);
    if (h->cpus < h->cpus_online)
        printf(" of %d online (%s)", h->cpus_online, h->cpus_bound);
    printf("\ntimed:\n");
    for (int t = 0; t < rep->ntargets; t++) {
        const bench_target *x = &rep->targets[t];
        printf("  %-9s %s\n", x->label, x->device);
        if (x->backend != KD_BACKEND_CPU)
            printf("  %-9s device bandwidth %.2f GB/s (residual add over %d MiB: dfrac)\n", "",
                   x->device_bw / 1e9, o->quick ? 96 : 384);
    }
    int header = 0;
    for (int b = 0; b < kd_backend_count(); b++)
        if (!kd_backend_available(ctx, (kd_backend_id)b) || !o->use_backend[b])
            printf("%s  %-9s %s\n", header++ ? "" : "not timed:\n", kd_backend_name((kd_backend_id)b),
                   kd_backend_available(ctx, (kd_backend_id)b)
                       ? "not asked for (--backend)"
                       : kd_backend_reason(ctx, (kd_backend_id)b));
    printf("caches (%s): L1d %lld KiB, L2 %lld KiB, LLC (L%d) %lld KiB\n",
           c->from_sysfs ? "sysfs" : "not in sysfs, assumed", c->l1d >> 10, c->l2 >> 10,
           c->llc_level, c->llc >> 10);
    printf("host memory read bandwidth: %.2f GB/s (a thread per usable CPU, best of passes)\n",
           h->read_bw / 1e9);
    printf("timing: up to %d samples per case (fewer, at least 3, when they would take over "
           "%.1f s), warm-up %.0f ms, samples of at least %.1f ms\n",
           o->repeats, o->budget_s, o->warmup_s * 1e3, o->sample_s * 1e3);
    printf("GEMV weights: %s; transparent huge pages: %s%s\n",
           o->borrow_weights ? "borrowed from the bench's malloc'd buffer (--borrow-weights)"
                             : "the library's own copy (kd_tensor_quant: on the cpu, rows "
                               "of K > 8192 in row groups)",
           h->huge_pages[0] ? h->huge_pages : "not offered",
           h->huge_advice ? "" : ", not asked for (KD_HUGE_PAGES=off)");
    if (o->cold_weights)
        printf("cold weights: each GEMV cycles through copies of its weights, together >= 4 x "
               "LLC (%lld KiB; offload devices: >= 4 x %lld MiB; copies per row in the JSON, "
               "weight_copies)\n",
               h->caches.llc >> 10, BENCH_DEVICE_CACHE_MIN >> 20);
    printf("\n");
}

static void measure_host(const bench_opts *o, kd_context *ctx, bench_host *h)
{
    kd_host_caches_read(NULL, &h->caches);
    kd_host_cpu_model(h->cpu_model, sizeof h->cpu_model);
    kd_host_huge_page_mode(h->huge_pages, sizeof h->huge_pages);
    h->huge_advice = kd_context_settings(ctx)->huge_pages;
    kd_host_cpus cpus;
    kd_host_cpus_read(&cpus);
    h->cpus = cpus.usable;
    h->cpus_online = cpus.online;
    h->cpus_bound = cpus.bound;
    /* far beyond the last-level cache, so the passes read DRAM */
    size_t bytes = (size_t)(o->quick ? 256 : 1024) << 20;
    if ((size_t)(8 * h->caches.llc) > bytes)
        bytes = (size_t)(8 * h->caches.llc);
    if (bytes > (2ull << 30))
        bytes = 2ull << 30;
    h->read_bw = kd_membw_open(&h->membw, bytes, h->huge_advice) == 0
                     ? kd_membw_read(&h->membw, o->quick ? 5 : 8) : 0;
}

/* An offload device's bandwidth: a residual add (reads x and r, writes y) over tensors
 * far larger than a GPU's L2, timed like any case; the cpu's is the host read bandwidth.
 * The tensors are zero-filled: the values do not change the time. */
static void measure_devices(const bench_opts *o, const bench_host *h, bench_target *t, int nt)
{
    const int64_t rows = 1024, cols = (o->quick ? 32ll << 20 : 128ll << 20) / 4 / rows;
    for (int i = 0; i < nt; i++) {
        t[i].device_bw = h->read_bw;
        if (t[i].backend == KD_BACKEND_CPU)
            continue;
        kd_tensor *x = NULL, *r = NULL, *y = NULL;
        bench_row row = {0};
        kd_status st = kd_tensor_f32(t[i].ctx, rows, cols, NULL, &x);
        if (st == KD_OK)
            st = kd_tensor_f32(t[i].ctx, rows, cols, NULL, &r);
        if (st == KD_OK)
            st = kd_tensor_f32(t[i].ctx, rows, cols, NULL, &y);
        kd_op_desc d = {.op = KD_OP_RESIDUAL_ADD, .src = {x, r}, .dst = y};
        case_calls cc = {&d, 1, 0};
        if (st == KD_OK)
            st = time_case(o, &t[i], &cc, NULL, &row);
        t[i].device_bw = st == KD_OK ? 3.0 * 4.0 * (double)(rows * cols) / row.median_s : 0;
        if (st != KD_OK)
            fprintf(stderr, "kdispatch bench: %s: device bandwidth not measured: %s: %s\n",
                    t[i].label, kd_status_name(st), kd_last_error(t[i].ctx));
        kd_tensor_free(x);
        kd_tensor_free(r);
        kd_tensor_free(y);
    }
}

static int write_outputs(const bench_opts *o, const bench_report *rep)
{
    int rc = 0;
    if (o->csv && bench_write_csv(rep, o->csv))
        rc = 1;
    if (o->json && bench_write_json(rep, o->json))
        rc = 1;
    if (!o->plot)
        return rc;
    /* the plot reads a CSV: the one asked for, or a temporary one */
    char tmp[] = "/tmp/kdispatch-bench-XXXXXX";
    const char *csv = o->csv;
    if (!csv || rc) {
        int fd = mkstemp(tmp);
        if (fd < 0) {
            fprintf(stderr, "kdispatch bench: cannot create a temporary CSV for the plot\n");
            return 1;
        }
        close(fd);
        csv = tmp;
        if (bench_write_csv(rep, csv)) {
            remove(tmp);
            return 1;
        }
    }
    if (bench_run_plot(rep, csv, o->plot))
        rc = 1;
    else
        printf("plot: %s\n", o->plot);
    if (csv == tmp)
        remove(tmp);
    return rc;
}

static int bench_with(const bench_opts *o, kd_context *ctx, bench_target *targets)
{
    bench_host host = {0};
    bench_report rep = {.o = o, .host = &host, .targets = targets};
    plan p = {0};
    pool pl = {0};
    bench_row *rows = NULL;
    int rc = 1;
    rep.ntargets = pick_targets(o, ctx, targets);
    if (rep.ntargets == 0) {
        fprintf(stderr, "kdispatch bench: none of the backends asked for is present\n");
        goto done;
    }
    if (o->progress)
        fputs("measuring the host's and the devices' memory bandwidth...", stderr);
    measure_host(o, ctx, &host);
    measure_devices(o, &host, targets, rep.ntargets);
    progress_clear(o);
    rep.nsweep = sweep_sizes(o, &host.caches, rep.sweep_sizes, 64);
    print_intro(o, &rep, ctx);
    if (make_plan(o, &rep, &p) || !(rows = calloc((size_t)p.n, sizeof *rows)) ||
        make_pool(&p, &pl)) {
        fprintf(stderr, "kdispatch bench: out of host memory\n");
        goto done;
    }
    rep.rows = rows;
    double t0 = now_s();
    int failed = run_plan(o, &rep, &p, &pl, rows);
    bench_print_near(stdout, &rep);
    bench_print_sweep(stdout, &rep);
    bench_print_speedups(stdout, &rep);
    printf("\n%d cases timed in %.1f s\n", p.n, now_s() - t0);
    rc = write_outputs(o, &rep) || failed ? 1 : 0;
    if (failed)
        fprintf(stderr, "kdispatch bench: %d case(s) failed\n", failed);
done:
    kd_membw_close(&host.membw);
    free(rows);
    free(p.c);
    free_pool(&pl);
    for (int t = 0; t < rep.ntargets; t++)
        if (targets[t].owns_ctx)
            kd_context_destroy(targets[t].ctx);
    return rc;
}

int kd_cmd_bench(int argc, char **argv)
{
    bench_opts o;
    int parsed = parse(argc, argv, &o);
    if (parsed)
        return parsed > 0 ? 0 : 2;
    kd_context *ctx = kd_cli_context("kdispatch");
    if (!ctx)
        return 1;
    static bench_target targets[BENCH_MAX_TARGETS];
    int rc = bench_with(&o, ctx, targets);
    if (o.metrics)
        kd_cli_print_metrics(ctx, o.metrics, stdout);
    kd_context_destroy(ctx);
    return rc;
}
