/* kdispatch compare: every op, single-row and batched, on every backend present, against
 * the double-precision oracle and against the cpu reference path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "kd_oracle.h"
#include "model_shapes.h"

#define MAX_M 16

typedef struct compare_opts {
    const kd_model_shape *shape;
    long long m[MAX_M];
    int nm;
    int use_backend[KD_BACKEND_COUNT]; /* all 0: every backend present */
    int use_op[KD_OP_COUNT];           /* all 0: every op */
    unsigned long long seed;
    double tol;
    int json;
    const char *metrics; /* NULL, "json" or "prom" */
} compare_opts;

typedef struct variant { const char *name; kd_backend_id backend; unsigned flags; } variant;

typedef struct result {
    kd_op op;
    long long m;
    const char *variant;
    kd_status status;
    kd_cmp vs_oracle, vs_cpu;
    int pass;
} result;

static void usage(void)
{
    printf("usage: kdispatch compare [options]\n\n"
           "Runs each op (rmsnorm, rope, swiglu, residual_add, q4k_gemv, q6k_gemv) with its\n"
           "single-row (M = 1) and batched (M > 1) kernel on every backend present and on the\n"
           "cpu's scalar reference path, and checks each against a double-precision oracle\n"
           "(pass: |a - oracle| <= tol * max(1, |oracle|) everywhere) and against cpu-scalar.\n"
           "Exit status 0 only if everything passed.\n\n"
           "options:\n"
           "  --shape NAME      model shape: 0.5b, 1.5b, 8b (default 8b)\n"
           "  --m LIST          batch sizes, e.g. 1,8 (default 1,8)\n"
           "  --backend LIST    backends to test: cpu,opencl,cuda (default: all present)\n"
           "  --op LIST         ops to run (default: all)\n"
           "  --seed N          input seed (default 42; printed)\n"
           "  --tol X           tolerance (default 1e-3)\n"
           "  --json            JSON instead of a table\n"
           "  --metrics json|prom  print the dispatch metrics afterwards\n");
}

static int parse_names(const char *s, int *flags, int count, int (*lookup)(const char *))
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int v = lookup(tok);
        if (v < 0 || v >= count)
            return -1;
        flags[v] = 1;
    }
    return 0;
}

static int lookup_backend(const char *s) { return (int)kd_backend_from_name(s); }
static int lookup_op(const char *s) { return (int)kd_op_from_name(s); }

static int parse_args(int argc, char **argv, compare_opts *o)
{
    *o = (compare_opts){.shape = kd_model_shape_find("8b"), .m = {1, 8}, .nm = 2, .seed = 42,
                        .tol = KD_TOLERANCE};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (kd_cli_is_help(a)) {
            usage();
            exit(0);
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        } else if (!v) {
            bad = 1;
        } else if (strcmp(a, "--shape") == 0) {
            bad = !(o->shape = kd_model_shape_find(v));
        } else if (strcmp(a, "--m") == 0) {
            bad = (o->nm = kd_cli_parse_list(v, o->m, MAX_M)) <= 0;
        } else if (strcmp(a, "--backend") == 0) {
            bad = parse_names(v, o->use_backend, KD_BACKEND_COUNT, lookup_backend) != 0;
        } else if (strcmp(a, "--op") == 0) {
            bad = parse_names(v, o->use_op, KD_OP_COUNT, lookup_op) != 0;
        } else if (strcmp(a, "--seed") == 0) {
            o->seed = strtoull(v, NULL, 0);
        } else if (strcmp(a, "--tol") == 0) {
            bad = (o->tol = atof(v)) <= 0;
        } else if (strcmp(a, "--metrics") == 0) {
            o->metrics = v;
            bad = strcmp(v, "json") != 0 && strcmp(v, "prom") != 0;
        } else {
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "kdispatch compare: bad option '%s%s%s' (see --help)\n", a,
                    v ? " " : "", v ? v : "");
            return -1;
        }
        i++;
    }
    return 0;
}

static int any_set(const int *f, int n)
{
    for (int i = 0; i < n; i++)
        if (f[i])
            return 1;
    return 0;
}

/* The variants to run: cpu-scalar (reference) always, then every selected backend. */
static int pick_variants(kd_context *ctx, const compare_opts *o, variant *v)
{
    int n = 0, all = !any_set(o->use_backend, KD_BACKEND_COUNT);
    v[n++] = (variant){"cpu-scalar", KD_BACKEND_CPU, KD_RUN_CPU_SCALAR};
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        if (!all && !o->use_backend[b])
            continue;
        if (!kd_backend_available(ctx, b)) {
            if (!all)
                fprintf(stderr, "kdispatch compare: backend %s requested but absent: %s\n",
                        kd_backend_name(b), kd_backend_reason(ctx, b));
            if (!all)
                return -1;
            continue;
        }
        v[n++] = (variant){kd_backend_name(b), (kd_backend_id)b, KD_RUN_NO_FALLBACK};
    }
    return n;
}

/* Runs one op at one M on every variant; appends a result per variant. */
static int compare_one(kd_context *ctx, const compare_opts *o, kd_op op, long long m,
                       const variant *v, int nv, result *out)
{
    int64_t n, k;
    kd_model_op_dims(o->shape, op, &n, &k);
    kd_problem p;
    if (kd_problem_make(ctx, op, m, n, k, o->seed + 7919ull * op + (unsigned long long)m, &p)) {
        fprintf(stderr, "kdispatch compare: cannot build %s inputs: %s\n", kd_op_name(op),
                kd_last_error(ctx));
        kd_problem_free(&p);
        return -1;
    }
    double *ref = kd_problem_oracle(&p);
    float *cpu = NULL;
    for (int i = 0; i < nv; i++) {
        result *r = &out[i];
        *r = (result){.op = op, .m = m, .variant = v[i].name};
        float *y = kd_problem_run(ctx, &p, v[i].backend, v[i].flags, &r->status);
        if (y && ref) {
            kd_compare_to_ref(y, ref, p.out_count, o->tol, &r->vs_oracle);
            if (cpu)
                kd_compare_f32(y, cpu, p.out_count, o->tol, &r->vs_cpu);
            else
                r->vs_cpu = (kd_cmp){.pass = 1, .first_bad = -1};
        }
        r->pass = y && ref && r->vs_oracle.pass && r->vs_cpu.pass;
        if (!y)
            fprintf(stderr, "  %s on %s: %s: %s\n", kd_op_name(op), v[i].name,
                    kd_status_name(r->status), kd_last_error(ctx));
        if (i == 0)
            cpu = y;
        else
            free(y);
    }
    free(cpu);
    free(ref);
    kd_problem_free(&p);
    return 0;
}

static void print_row(const result *r)
{
    printf("%-13s %-8s %4lld  %-10s %11.3e %11.3e %11.3e  %s\n", kd_op_name(r->op),
           r->m == 1 ? "single" : "batched", r->m, r->variant, r->vs_oracle.max_abs,
           r->vs_oracle.nmse, r->vs_cpu.max_abs,
           r->pass ? "pass" : r->status != KD_OK ? kd_status_name(r->status) : "FAIL");
}

static void print_json_row(const result *r, int first)
{
    printf("%s\n  {\"op\":\"%s\",\"kernel\":\"%s\",\"m\":%lld,\"backend\":\"%s\",\"status\":\"%s\","
           "\"max_abs_err\":%.6e,\"nmse\":%.6e,\"vs_cpu_max_abs\":%.6e,\"pass\":%s}",
           first ? "" : ",", kd_op_name(r->op), r->m == 1 ? "single" : "batched", r->m,
           r->variant, kd_status_name(r->status), r->vs_oracle.max_abs, r->vs_oracle.nmse,
           r->vs_cpu.max_abs, r->pass ? "true" : "false");
}

static void print_metrics(const kd_context *ctx, const char *fmt)
{
    size_t need = kd_metrics_export(ctx, fmt, NULL, 0) + 1;
    char *buf = malloc(need);
    if (buf) {
        kd_metrics_export(ctx, fmt, buf, need);
        fputs(buf, stdout);
        free(buf);
    }
}

int kd_cmd_compare(int argc, char **argv)
{
    compare_opts o;
    if (parse_args(argc, argv, &o))
        return 2;
    kd_context *ctx;
    if (kd_context_create(NULL, &ctx) != KD_OK) {
        fprintf(stderr, "kdispatch: %s\n", kd_last_error(NULL));
        return 1;
    }
    variant v[KD_BACKEND_COUNT + 1];
    int nv = pick_variants(ctx, &o, v);
    if (nv < 0) {
        kd_context_destroy(ctx);
        return 2;
    }
    result *res = calloc((size_t)(KD_OP_COUNT * o.nm * nv), sizeof *res);
    int nres = 0, failed = 0;
    int all_ops = !any_set(o.use_op, KD_OP_COUNT);
    if (!o.json) {
        printf("kdispatch compare: shape %s (%s), seed %llu, tolerance %g\n", o.shape->name,
               o.shape->like, o.seed, o.tol);
        for (int i = 0; i < nv; i++)
            printf("  %-10s %s\n", v[i].name, kd_backend_reason(ctx, v[i].backend));
        printf("\n%-13s %-8s %4s  %-10s %11s %11s %11s  %s\n", "op", "kernel", "M", "backend",
               "max_abs_err", "nmse", "vs_cpu_max", "result");
    }
    for (int op = 0; op < KD_OP_COUNT && res; op++) {
        if (!all_ops && !o.use_op[op])
            continue;
        for (int mi = 0; mi < o.nm; mi++) {
            if (compare_one(ctx, &o, (kd_op)op, o.m[mi], v, nv, res + nres)) {
                failed++;
                continue;
            }
            for (int i = 0; i < nv; i++, nres++) {
                failed += !res[nres].pass;
                if (!o.json)
                    print_row(&res[nres]);
            }
        }
    }
    if (o.json) {
        printf("{\"shape\":\"%s\",\"seed\":%llu,\"tolerance\":%g,\"results\":[", o.shape->name,
               o.seed, o.tol);
        for (int i = 0; i < nres; i++)
            print_json_row(&res[i], i == 0);
        printf("\n],\"failed\":%d,\"verdict\":\"%s\"}\n", failed, failed ? "FAIL" : "PASS");
    } else {
        printf("\nverdict: %s (%d of %d checks failed)\n", failed ? "FAIL" : "PASS", failed, nres);
    }
    if (o.metrics)
        print_metrics(ctx, o.metrics);
    free(res);
    kd_context_destroy(ctx);
    return failed || !res ? 1 : 0;
}
