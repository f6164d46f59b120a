/* kdispatch tune: measures, for each op and each offload backend present, the data_size
 * above which the offload backend beats the host cpu backend, and writes the dispatcher
 * config file (threshold.<op>.<backend> = N) that the runtime reads through KD_CONFIG.
 *
 * Method: a ladder of sizes growing 4x; at each, the median of a few timed runs on cpu
 * and on the offload backend (forced, no fallback). The first rung where the offload
 * backend wins (and still wins on the next rung, so one noisy point does not decide) and
 * the rung below it bracket the crossover, which is then bisected. What is timed per
 * call: the activation inputs written from host memory, then the op (weights stay
 * resident on the backend after a warm-up run; the output stays where it was computed).
 * Uses the public API only, plus config.h to write the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "commands.h"
#include "config.h"
#include "env.h"
#include "kd_backend.h"
#include "kdispatch.h"
#include "op_traits.h"

/* GGUF block sizes (bytes per 256 weights) and where each block keeps its f16 scale(s). */
#define Q4K_BLOCK_BYTES 144 /* f16 d at 0, f16 dmin at 2 */
#define Q6K_BLOCK_BYTES 210 /* f16 d at 208 */
#define F16_SMALL 0x1800u   /* 2^-9: keeps dequantized weights small and finite */

#define ROW 4096        /* row length of the elementwise ops and rope (32 heads of 128) */
#define GEMV_K 4096     /* GEMV input width; the ladder grows N, at M = 1 (decode) */
#define MAX_RUNGS 16

typedef struct tune_opts {
    const char *out;
    int quick;
    int reps;
    uint64_t max_size;           /* 0: default per op */
    int use_backend[KD_BACKEND_COUNT];
    int use_op[KD_OP_COUNT];
    int dry_run;
} tune_opts;

/* One measurement point. */
typedef struct point {
    uint64_t param;              /* M rows (elementwise) or N rows (GEMV) */
    uint64_t size;               /* data_size */
    double cpu_us, off_us;       /* medians; < 0: failed */
} point;

typedef struct op_result {
    kd_op op;
    kd_backend_id backend;
    uint64_t threshold;          /* to write */
    const char *why;             /* how it was found */
    char note[160];
} op_result;

/* ---- options ---------------------------------------------------------------------- */

static void usage(void)
{
    printf("usage: kdispatch tune [options]\n\n"
           "Measures, for each op and each offload backend present (opencl, cuda), the op size\n"
           "(data_size: elements, GEMV: M*N*K) above which the offload backend is faster than\n"
           "the host cpu, and writes the dispatcher config file with those thresholds. The\n"
           "runtime reads it when KD_CONFIG names it (or kd_context_options.config does).\n\n"
           "A ladder of sizes (x4 per rung) is timed on both backends (median of --reps runs;\n"
           "each run writes the op's activations from host memory and runs the op, weights\n"
           "stay on the device), then the crossover is bisected. Elementwise ops and rope use\n"
           "rows of %d; GEMV uses K = %d, M = 1 and grows N.\n\n"
           "options:\n"
           "  --out PATH        config file to write (default: the per-user file every\n"
           "                    context reads, $XDG_CONFIG_HOME/kdispatch/kdispatch.conf,\n"
           "                    else ~/.config/kdispatch/kdispatch.conf)\n"
           "  --quick           smaller ladder and fewer runs (seconds, not minutes)\n"
           "  --reps N          timed runs per point (default 5, --quick 3)\n"
           "  --max-size N      largest data_size to try (default 8388608 elementwise,\n"
           "                    67108864 GEMV; --quick 1048576 / 16777216)\n"
           "  --backend LIST    offload backends to tune: opencl,cuda (default: all present)\n"
           "  --op LIST         ops to tune (default: all six)\n"
           "  --dry-run         measure and print, do not write the file\n",
           ROW, GEMV_K);
}

static int parse_list(const char *s, int *flags, int count, int is_backend)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int v = is_backend ? (int)kd_backend_from_name(tok) : (int)kd_op_from_name(tok);
        if (v < 0 || v >= count || (is_backend && v == KD_BACKEND_CPU))
            return -1;
        flags[v] = 1;
    }
    return 0;
}

/* mkdir -p of path's folders (a failure shows when the file is written). */
static void make_parent_dirs(const char *path)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0700);
            *p = '/';
        }
}

/* One option with a value: 0, -1 for a bad value, KD_CLI_UNKNOWN for another name. */
static int parse_value(tune_opts *o, const char *a, const char *v)
{
    if (strcmp(a, "--out") == 0)
        return (o->out = v)[0] ? 0 : -1;
    if (strcmp(a, "--reps") == 0)
        return (o->reps = atoi(v)) > 0 && o->reps <= 1000 ? 0 : -1;
    if (strcmp(a, "--max-size") == 0)
        return kd_config_parse_threshold(v, &o->max_size) == 0 && o->max_size >= ROW ? 0 : -1;
    if (strcmp(a, "--backend") == 0)
        return parse_list(v, o->use_backend, KD_BACKEND_COUNT, 1) ? -1 : 0;
    if (strcmp(a, "--op") == 0)
        return parse_list(v, o->use_op, KD_OP_COUNT, 0) ? -1 : 0;
    return KD_CLI_UNKNOWN;
}

static int parse_args(int argc, char **argv, tune_opts *o)
{
    *o = (tune_opts){.out = NULL}; /* NULL: the per-user config file (write_config) */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (kd_cli_is_help(a)) {
            usage();
            return 1;
        }
        if (strcmp(a, "--quick") == 0) {
            o->quick = 1;
            continue;
        }
        if (strcmp(a, "--dry-run") == 0) {
            o->dry_run = 1;
            continue;
        }
        if (!v || parse_value(o, a, v)) {
            tune_opts scratch = *o; /* is a an option at all? ask without keeping it */
            kd_cli_bad_option("kdispatch tune", a, v, parse_value(&scratch, a, "") != KD_CLI_UNKNOWN,
                              NULL);
            return 2;
        }
        i++;
    }
    if (!o->reps)
        o->reps = o->quick ? 3 : 5;
    return 0;
}

/* ---- one op at one size ----------------------------------------------------------- */

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}


/* The tensors of one op instance; activations are rewritten from host before each run. */
typedef struct instance {
    kd_op_desc d;
    kd_tensor *t[4];          /* everything to free */
    kd_tensor *act[2];        /* activations written each run */
    const float *act_src[2];
    size_t act_count[2];
    uint32_t *pos;
} instance;

static void instance_free(instance *in)
{
    for (int i = 0; i < 4; i++)
        kd_tensor_free(in->t[i]);
    free(in->pos);
    memset(in, 0, sizeof *in);
}

/* Pseudo-random quant blocks with a small, finite scale in every block. */
static void *make_blocks(kd_op op, uint64_t n_rows, size_t *nbytes)
{
    size_t bsize = op == KD_OP_Q4K_GEMV ? Q4K_BLOCK_BYTES : Q6K_BLOCK_BYTES;
    size_t nblocks = (size_t)n_rows * (GEMV_K / 256);
    unsigned char *b = malloc(nblocks * bsize);
    if (!b)
        return NULL;
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < nblocks * bsize; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (unsigned char)x;
    }
    for (size_t i = 0; i < nblocks; i++) {
        unsigned char *blk = b + i * bsize;
        size_t at = op == KD_OP_Q4K_GEMV ? 0 : 208;
        blk[at] = F16_SMALL & 0xff;
        blk[at + 1] = F16_SMALL >> 8;
        if (op == KD_OP_Q4K_GEMV) {
            blk[2] = F16_SMALL & 0xff;
            blk[3] = F16_SMALL >> 8;
        }
    }
    *nbytes = nblocks * bsize;
    return b;
}

/* Builds the op at parameter p (rows M, or GEMV rows N) from the host buffer data. */
static kd_status instance_make(kd_context *ctx, kd_op op, uint64_t p, const float *data,
                               instance *in)
{
    memset(in, 0, sizeof *in);
    in->d.op = op;
    kd_status st = KD_OK;
    int64_t m = (int64_t)p;
    if (kd_op_is_gemv(op)) {
        size_t nbytes;
        void *blocks = make_blocks(op, p, &nbytes);
        if (!blocks)
            return KD_ERR_NOMEM;
        kd_type type = op == KD_OP_Q4K_GEMV ? KD_TYPE_Q4_K : KD_TYPE_Q6_K;
        st = kd_tensor_quant(ctx, type, (int64_t)p, GEMV_K, blocks, nbytes, &in->t[0]);
        free(blocks);
        if (st == KD_OK)
            st = kd_tensor_f32(ctx, 1, GEMV_K, data, &in->t[1]);
        if (st == KD_OK)
            st = kd_tensor_f32(ctx, 1, (int64_t)p, NULL, &in->t[2]);
        in->d.src[0] = in->t[0];
        in->d.src[1] = in->t[1];
        in->d.dst = in->t[2];
        in->act[0] = in->t[1];
        in->act_count[0] = GEMV_K;
    } else {
        st = kd_tensor_f32(ctx, m, ROW, data, &in->t[0]);
        if (st == KD_OK)
            st = kd_tensor_f32(ctx, m, ROW, NULL, &in->t[1]);
        in->d.src[0] = in->t[0];
        in->d.dst = in->t[1];
        in->act[0] = in->t[0];
        in->act_count[0] = (size_t)m * ROW;
        if (st == KD_OK && op == KD_OP_RMSNORM) {
            st = kd_tensor_f32(ctx, 1, ROW, data, &in->t[2]); /* weight, resident */
            in->d.src[1] = in->t[2];
            in->d.eps = 1e-5f;
        } else if (st == KD_OK && (op == KD_OP_SWIGLU || op == KD_OP_RESIDUAL_ADD)) {
            st = kd_tensor_f32(ctx, m, ROW, data, &in->t[2]);
            in->d.src[1] = in->t[2];
            in->act[1] = in->t[2];
            in->act_count[1] = (size_t)m * ROW;
        } else if (st == KD_OK && op == KD_OP_ROPE) {
            in->pos = malloc((size_t)m * sizeof *in->pos);
            if (!in->pos)
                st = KD_ERR_NOMEM;
            for (int64_t i = 0; in->pos && i < m; i++)
                in->pos[i] = (uint32_t)(i * 7 % 4096);
            in->d.pos = in->pos;
            in->d.n_heads = ROW / 128;
            in->d.head_dim = 128;
            in->d.rope_base = 10000.0f;
            in->d.rope_mode = KD_ROPE_NORMAL;
        }
    }
    in->act_src[0] = data;
    in->act_src[1] = data;
    if (st != KD_OK)
        instance_free(in);
    return st;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median time of reps runs on backend b (after one warm-up run); -1 on failure. */
static double time_runs(kd_context *ctx, instance *in, kd_backend_id b, int reps)
{
    double t[1000];
    unsigned flags = b == KD_BACKEND_CPU ? 0 : KD_RUN_NO_FALLBACK;
    if (kd_run(ctx, &in->d, b, flags) != KD_OK)
        return -1.0;
    for (int r = 0; r < reps; r++) {
        double t0 = now_us();
        for (int a = 0; a < 2; a++)
            if (in->act[a] &&
                kd_tensor_write(ctx, in->act[a], in->act_src[a], in->act_count[a]) != KD_OK)
                return -1.0;
        if (kd_run(ctx, &in->d, b, flags) != KD_OK)
            return -1.0;
        t[r] = now_us() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    return reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
}

static uint64_t unit_of(kd_op op) { return kd_op_is_gemv(op) ? GEMV_K : ROW; }

static int measure(kd_context *ctx, kd_op op, kd_backend_id b, uint64_t param,
                   const float *data, int reps, point *pt)
{
    instance in;
    pt->param = param;
    pt->size = kd_op_data_size(op, kd_op_is_gemv(op) ? 1 : (int64_t)param,
                               kd_op_is_gemv(op) ? (int64_t)param : ROW,
                               kd_op_is_gemv(op) ? GEMV_K : 0);
    pt->cpu_us = pt->off_us = -1.0;
    if (instance_make(ctx, op, param, data, &in) != KD_OK)
        return -1;
    pt->cpu_us = time_runs(ctx, &in, KD_BACKEND_CPU, reps);
    pt->off_us = time_runs(ctx, &in, b, reps);
    instance_free(&in);
    return pt->cpu_us >= 0 && pt->off_us >= 0 ? 0 : -1;
}

static void print_point(kd_op op, kd_backend_id b, const point *pt, const char *tag)
{
    const char *win = pt->off_us < 0 ? "failed" : pt->off_us < pt->cpu_us ? kd_backend_name(b)
                                                                           : "cpu";
    printf("  %-13s %-7s %12llu %8llu %12.1f %12.1f  %-7s %s\n", kd_op_name(op),
           kd_backend_name(b), (unsigned long long)pt->size, (unsigned long long)pt->param,
           pt->cpu_us, pt->off_us, win, tag);
}

/* ---- the crossover ---------------------------------------------------------------- */

static int offload_wins(const point *p) { return p->off_us >= 0 && p->off_us < p->cpu_us; }

static void tune_op(kd_context *ctx, kd_op op, kd_backend_id b, const tune_opts *o,
                    const float *data, op_result *res)
{
    uint64_t unit = unit_of(op);
    uint64_t max_size = o->max_size ? o->max_size
                        : kd_op_is_gemv(op) ? (o->quick ? (UINT64_C(1) << 24) : (UINT64_C(1) << 26))
                                      : (o->quick ? (UINT64_C(1) << 20) : (UINT64_C(1) << 23));
    uint64_t first = 1; /* one row: M = 1, or a GEMV with N = 1 */
    point rung[MAX_RUNGS];
    int n = 0;
    res->op = op;
    res->backend = b;
    for (uint64_t p = first; n < MAX_RUNGS && p * unit <= max_size; p *= 4) {
        if (measure(ctx, op, b, p, data, o->reps, &rung[n]) != 0) {
            print_point(op, b, &rung[n], "(failed: stopping the ladder here)");
            break;
        }
        print_point(op, b, &rung[n], "");
        n++;
    }
    if (n == 0) {
        res->threshold = KD_THRESHOLD_NEVER;
        res->why = "no size could be measured";
        snprintf(res->note, sizeof res->note, "%s", kd_last_error(ctx));
        return;
    }
    /* The first rung from which the offload backend wins, confirmed by the next rung. */
    int win = -1;
    for (int i = 0; i < n && win < 0; i++)
        if (offload_wins(&rung[i]) && (i + 1 == n || offload_wins(&rung[i + 1])))
            win = i;
    if (win < 0) {
        res->threshold = KD_THRESHOLD_NEVER;
        res->why = "cpu faster at every size";
        snprintf(res->note, sizeof res->note, "up to %llu", (unsigned long long)rung[n - 1].size);
        return;
    }
    if (win == 0) {
        res->threshold = rung[0].size - 1;
        res->why = "offload faster at the smallest size";
        snprintf(res->note, sizeof res->note, "%llu", (unsigned long long)rung[0].size);
        return;
    }
    /* Bisect the parameter between the last cpu rung and the first offload rung. */
    uint64_t lo = rung[win - 1].param, hi = rung[win].param;
    for (int it = 0; it < (o->quick ? 3 : 5) && hi - lo > 1 && hi - lo > lo / 8; it++) {
        point mid;
        uint64_t p = lo + (hi - lo) / 2;
        if (measure(ctx, op, b, p, data, o->reps, &mid) != 0)
            break;
        print_point(op, b, &mid, "(bisect)");
        if (offload_wins(&mid))
            hi = p;
        else
            lo = p;
    }
    res->threshold = lo * unit; /* cpu still won here: offload above it */
    res->why = "crossover";
    snprintf(res->note, sizeof res->note, "between %llu and %llu",
             (unsigned long long)(lo * unit), (unsigned long long)(hi * unit));
}

/* ---- the command ------------------------------------------------------------------ */

static int write_config(const tune_opts *o, kd_context *ctx, const op_result *res, int nres)
{
    kd_config c;
    kd_config_defaults(&c);
    for (int i = 0; i < nres; i++)
        c.threshold[res[i].op][res[i].backend] = res[i].threshold;
    char header[2048];
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&now));
    int len = snprintf(header, sizeof header,
                       "written by kdispatch tune %s on %s (%d runs per point, median)\n"
                       "cpu: %s",
                       kd_version(), when, o->reps, kd_backend_reason(ctx, KD_BACKEND_CPU));
    for (int b = 1; b < KD_BACKEND_COUNT && len > 0 && len < (int)sizeof header; b++)
        if (kd_backend_available(ctx, (kd_backend_id)b))
            len += snprintf(header + len, sizeof header - (size_t)len, "\n%s: %s",
                            kd_backend_name((kd_backend_id)b),
                            kd_backend_reason(ctx, (kd_backend_id)b));
    char why[512], user[1024];
    const char *out = o->out;
    if (!out) { /* the file contexts read when nothing names one (runtime/env.c) */
        if (!kd_env_user_config_path(user, sizeof user)) {
            fprintf(stderr, "kdispatch tune: neither XDG_CONFIG_HOME nor HOME is set: "
                            "name the file with --out\n");
            return 1;
        }
        make_parent_dirs(user);
        out = user;
    }
    if (kd_config_write_file(&c, out, header, why, sizeof why) != KD_OK) {
        fprintf(stderr, "kdispatch tune: %s\n", why);
        return 1;
    }
    if (o->out)
        printf("\nwrote %s; use it with: export KD_CONFIG=%s\n", out, out);
    else
        printf("\nwrote %s: every new context reads it (KD_CONFIG names another)\n", out);
    return 0;
}

static void print_summary(const op_result *res, int nres)
{
    printf("\n  %-13s %-7s %-20s %-36s %s\n", "op", "backend", "threshold", "found", "");
    for (int i = 0; i < nres; i++) {
        char t[32];
        if (res[i].threshold == KD_THRESHOLD_NEVER)
            snprintf(t, sizeof t, "never");
        else
            snprintf(t, sizeof t, "%llu", (unsigned long long)res[i].threshold);
        printf("  %-13s %-7s %-20s %s (%s)\n", kd_op_name(res[i].op),
               kd_backend_name(res[i].backend), t, res[i].why, res[i].note);
    }
}

int kd_cmd_tune(int argc, char **argv)
{
    tune_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    kd_context *ctx = kd_cli_context("kdispatch tune");
    if (!ctx)
        return 1;
    int any_b = 0, any_op = 0;
    for (int b = 0; b < KD_BACKEND_COUNT; b++)
        any_b |= o.use_backend[b];
    for (int op = 0; op < KD_OP_COUNT; op++)
        any_op |= o.use_op[op];

    uint64_t max_f = o.max_size ? o.max_size : (o.quick ? (UINT64_C(1) << 20) : (UINT64_C(1) << 23));
    if (max_f < GEMV_K)
        max_f = GEMV_K;
    float *data = malloc((size_t)max_f * sizeof *data);
    if (!data) {
        fprintf(stderr, "kdispatch tune: out of memory for %llu floats\n", (unsigned long long)max_f);
        kd_context_destroy(ctx);
        return 1;
    }
    uint32_t x = 88675123u;
    for (uint64_t i = 0; i < max_f; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (float)(x % 2001) / 1000.0f - 1.0f; /* [-1, 1] */
    }

    printf("kdispatch tune%s: cpu vs each offload backend, median of %d runs per point\n",
           o.quick ? " (quick)" : "", o.reps);
    printf("  cpu:    %s\n", kd_backend_reason(ctx, KD_BACKEND_CPU));
    op_result res[KD_OP_COUNT * KD_BACKEND_COUNT];
    int nres = 0, tuned_backends = 0;
    for (int b = 1; b < kd_backend_count(); b++) {
        const char *name = kd_backend_name((kd_backend_id)b);
        if (any_b && !o.use_backend[b])
            continue;
        if (!kd_backend_available(ctx, (kd_backend_id)b)) {
            printf("  %-7s absent: %s\n", name, kd_backend_reason(ctx, (kd_backend_id)b));
            continue;
        }
        tuned_backends++;
        printf("  %-7s %s\n\n", name, kd_backend_reason(ctx, (kd_backend_id)b));
        printf("  %-13s %-7s %12s %8s %12s %12s  %s\n", "op", "backend", "data_size",
               "M|N", "cpu us", "offload us", "faster");
        for (int op = 0; op < KD_OP_COUNT; op++)
            if (!any_op || o.use_op[op])
                tune_op(ctx, (kd_op)op, (kd_backend_id)b, &o, data, &res[nres++]);
    }
    free(data);
    if (!tuned_backends) {
        printf("\nno offload backend present: nothing to tune (every op runs on cpu)\n");
        kd_context_destroy(ctx);
        return 0;
    }
    print_summary(res, nres);
    rc = o.dry_run ? 0 : write_config(&o, ctx, res, nres);
    kd_context_destroy(ctx);
    return rc;
}
