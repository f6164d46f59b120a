/*
 * kdispatch fleet, rank 0's report: reads every rank's record (fleet_local.c) and prints
 * the nodes, the compare verdicts per node x backend x op, the agreement of each kernel
 * across nodes and against the oracle (computed here, on the same seeded problem), the
 * bench figures as fractions of each node's own bandwidth and the tuned thresholds, as
 * text, JSON or CSV, and a plot of bench's GB/s by node and device.
 */
#include "fleet.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fleet_json.h"
#include "kd_json.h"
#include "kd_oracle.h"

extern char **environ;

#define MAX_KERNELS 256
#define MAX_ERRORS_SHOWN 8

/* One kernel's agreement across every node and backend that ran it. */
typedef struct agreement {
    char op[32];
    long long m, n, k, count;
    unsigned long long seed;
    int outputs;          /* node x backend outputs compared */
    int not_run;          /* outputs that did not run or sent no values */
    double max_diff;      /* largest spread of a value across outputs */
    double worst_oracle;  /* largest |value - oracle| */
    double max_ratio;     /* largest spread / (tol * max(1, |oracle|)): <= 1 passes */
    double worst_ratio;   /* same against the oracle */
    char worst_where[96]; /* node/backend of the worst value against the oracle */
    int pass;
} agreement;

typedef struct report {
    const kd_fleet_opts *o;
    int n;
    fj **rec;             /* NULL: no record or unreadable */
    char **why;           /* why a record is missing */
    agreement kern[MAX_KERNELS];
    int nkern;
    int *failed;          /* per rank: 1 if it failed */
    char **fail_reason;
} report;

static const char *node_of(const report *r, int i)
{
    return fj_str(fj_get(r->rec[i], "node"), "?");
}

static void add_failure(report *r, int rank, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Marks a rank failed; its first reason is the one reported. */
static void add_failure(report *r, int rank, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!r->failed[rank]) {
        r->failed[rank] = 1;
        r->fail_reason[rank] = strdup(buf);
    }
}

/* ---- reading ------------------------------------------------------------------------------ */

static int read_records(report *r, char *const *records, const size_t *lens)
{
    for (int i = 0; i < r->n; i++) {
        char why[160];
        r->rec[i] = records[i] ? fj_parse(records[i], lens[i], why, sizeof why) : NULL;
        if (!r->rec[i])
            r->why[i] = strdup(records[i] ? why : "sent no report");
    }
    return 0;
}

/* The last non-empty line of a rank's messages: what its subcommand said last. */
static const char *last_line(const char *text, char *buf, size_t cap)
{
    size_t end = strlen(text);
    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == ' '))
        end--;
    size_t start = end;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    snprintf(buf, cap, "%.*s", (int)(end - start), text + start);
    return buf;
}

/* A rank fails when its subcommand failed or a kernel it ran did not run. */
static void judge_ranks(report *r)
{
    char line[256];
    for (int i = 0; i < r->n; i++) {
        const fj *rec = r->rec[i];
        if (!rec) {
            add_failure(r, i, "no usable report: %s", r->why[i] ? r->why[i] : "?");
            continue;
        }
        int rc = (int)fj_num(fj_get(rec, "rc"), 0);
        const fj *res = fj_get(rec, "result");
        if (rc != 0 && res && res->type == FJ_OBJ && fj_get(res, "failed"))
            add_failure(r, i, "%s failed: %lld check(s) failed", r->o->sub,
                        (long long)fj_num(fj_get(res, "failed"), 0));
        else if (rc != 0)
            add_failure(r, i, "%s exited with status %d%s%s", r->o->sub, rc,
                        last_line(fj_str(fj_get(rec, "messages"), ""), line, sizeof line)[0]
                            ? ": " : "", line);
        else if (strcmp(r->o->sub, "devices") && strcmp(r->o->sub, "tune") &&
                 strcmp(fj_str(fj_get(rec, "role"), ""), "worker") == 0 && !res)
            add_failure(r, i, "%s printed no JSON result", r->o->sub);
    }
}

/* ---- agreement ---------------------------------------------------------------------------- */

static agreement *kernel_slot(report *r, const fj *k)
{
    const char *op = fj_str(fj_get(k, "op"), "?");
    long long m = (long long)fj_num(fj_get(k, "m"), 0);
    for (int i = 0; i < r->nkern; i++)
        if (strcmp(r->kern[i].op, op) == 0 && r->kern[i].m == m)
            return &r->kern[i];
    if (r->nkern == MAX_KERNELS)
        return NULL;
    agreement *a = &r->kern[r->nkern++];
    *a = (agreement){.m = m, .n = (long long)fj_num(fj_get(k, "n"), 0),
                     .k = (long long)fj_num(fj_get(k, "k"), 0),
                     .count = (long long)fj_num(fj_get(k, "count"), 0),
                     .seed = (unsigned long long)fj_num(fj_get(k, "seed"), 0), .pass = 1};
    snprintf(a->op, sizeof a->op, "%s", op);
    return a;
}

/* The oracle at the digest's positions, and sum |oracle|-scaled bound of the checksum. */
static double *oracle_digest(kd_context *ctx, const agreement *a, int digest, double *sum,
                             double *bound)
{
    kd_op op = kd_op_from_name(a->op);
    kd_problem p;
    double *sub = NULL;
    *sum = *bound = 0;
    if (op == KD_OP_COUNT || kd_problem_make(ctx, op, a->m, a->n, a->k, a->seed, &p)) {
        if (op != KD_OP_COUNT)
            kd_problem_free(&p);
        return NULL;
    }
    double *ref = p.out_count == a->count ? kd_problem_oracle(&p) : NULL;
    if (ref && (sub = malloc(sizeof *sub * (size_t)digest))) {
        for (int i = 0; i < digest; i++)
            sub[i] = ref[(int64_t)i * a->count / digest];
        for (int64_t i = 0; i < p.out_count; i++) {
            *sum += ref[i];
            *bound += fmax(1.0, fabs(ref[i]));
        }
    }
    free(ref);
    kd_problem_free(&p);
    return sub;
}

/* Every node x backend output of kernel a (digest values each) against the oracle and
 * against each other: the spread of each value across outputs. */
static void judge_kernel(report *r, kd_context *ctx, agreement *a, int digest)
{
    double osum, bound, tol = r->o->tol;
    double *ref = oracle_digest(ctx, a, digest, &osum, &bound);
    double *lo = calloc((size_t)digest, sizeof *lo), *hi = calloc((size_t)digest, sizeof *hi);
    if (!ref || !lo || !hi) {
        a->pass = 0;
        snprintf(a->worst_where, sizeof a->worst_where, "oracle could not be computed");
        goto done;
    }
    for (int i = 0; i < digest; i++)
        lo[i] = INFINITY, hi[i] = -INFINITY;
    for (int ri = 0; ri < r->n; ri++) {
        const fj *kernels = fj_get(fj_get(r->rec[ri], "agreement"), "kernels");
        for (int ki = 0; ki < fj_len(kernels); ki++) {
            const fj *k = fj_at(kernels, ki);
            if (strcmp(fj_str(fj_get(k, "op"), ""), a->op) || fj_num(fj_get(k, "m"), 0) != a->m)
                continue;
            const fj *outs = fj_get(k, "outputs");
            for (int oi = 0; oi < fj_len(outs); oi++) {
                const fj *out = fj_at(outs, oi), *vals = fj_get(out, "values");
                const char *be = fj_str(fj_get(out, "backend"), "?");
                char where[96];
                snprintf(where, sizeof where, "%s/%s", node_of(r, ri), be);
                if (fj_len(vals) != digest || fj_num(fj_get(k, "seed"), -1) != (double)a->seed ||
                    fj_num(fj_get(k, "count"), -1) != (double)a->count) {
                    a->not_run++;
                    a->pass = 0;
                    add_failure(r, ri, "%s did not run or sent another problem (agreement)",
                                where);
                    continue;
                }
                a->outputs++;
                double sum = fj_num(fj_get(out, "sum"), NAN);
                if (!(fabs(sum - osum) <= tol * bound) || fj_num(fj_get(out, "nonfinite"), 1) != 0) {
                    a->pass = 0;
                    add_failure(r, ri, "%s: output checksum off the oracle's (agreement)",
                                where);
                }
                for (int i = 0; i < digest; i++) {
                    const fj *v = fj_at(vals, i);
                    double x = v && v->type == FJ_NUM ? v->num : NAN;
                    double scale = tol * fmax(1.0, fabs(ref[i])), e = fabs(x - ref[i]);
                    if (!(e <= a->worst_oracle)) {
                        a->worst_oracle = isnan(e) ? INFINITY : e;
                        a->worst_ratio = a->worst_oracle / scale;
                        snprintf(a->worst_where, sizeof a->worst_where, "%s", where);
                    }
                    if (!(e <= scale)) {
                        a->pass = 0;
                        add_failure(r, ri, "%s: a value out of tolerance of the oracle "
                                    "(agreement)", where);
                    }
                    lo[i] = fmin(lo[i], isnan(x) ? -INFINITY : x);
                    hi[i] = fmax(hi[i], isnan(x) ? INFINITY : x);
                }
            }
        }
    }
    for (int i = 0; i < digest && a->outputs > 1; i++) {
        double spread = hi[i] - lo[i], scale = tol * fmax(1.0, fabs(ref[i]));
        a->max_diff = fmax(a->max_diff, spread);
        a->max_ratio = fmax(a->max_ratio, spread / scale);
    }
    if (!(a->max_ratio <= 1.0))
        a->pass = 0;
done:
    free(ref);
    free(lo);
    free(hi);
}

static void compute_agreement(report *r)
{
    if (strcmp(r->o->sub, "compare") != 0)
        return;
    int digest = 0;
    for (int i = 0; i < r->n; i++) {
        const fj *kernels = fj_get(fj_get(r->rec[i], "agreement"), "kernels");
        for (int k = 0; k < fj_len(kernels); k++) {
            kernel_slot(r, fj_at(kernels, k));
            digest = (int)fj_num(fj_get(fj_at(kernels, k), "digest"), digest);
        }
    }
    kd_context *ctx;
    if (r->nkern == 0 || kd_context_create(NULL, &ctx) != KD_OK)
        return;
    for (int i = 0; i < r->nkern; i++) {
        int d = r->kern[i].count < digest ? (int)r->kern[i].count : digest;
        judge_kernel(r, ctx, &r->kern[i], d);
    }
    kd_context_destroy(ctx);
}

/* ---- text ---------------------------------------------------------------------------------- */

static const fj *backend_entry(const fj *rec, const char *name)
{
    const fj *b = fj_get(fj_get(rec, "devices"), "backends");
    for (int i = 0; i < fj_len(b); i++)
        if (strcmp(fj_str(fj_get(fj_at(b, i), "name"), ""), name) == 0)
            return fj_at(b, i);
    return NULL;
}

static void text_nodes(const report *r)
{
    int hosts = 0;
    for (int i = 0; i < r->n; i++)
        hosts += r->rec[i] && fj_num(fj_get(r->rec[i], "host_rank"), 0) == 0;
    printf("kdispatch fleet %s: %d ranks on %d hosts, seed %llu\n\nnodes\n", r->o->sub, r->n,
           hosts, r->o->seed);
    printf("%4s  %-12s %-11s %-7s %4s  %-28s %s\n", "rank", "node", "role", "simd", "cpus",
           "cpu", "backends present");
    for (int i = 0; i < r->n; i++) {
        const fj *rec = r->rec[i];
        if (!rec) {
            printf("%4d  %-12s %s\n", i, "?", r->why[i]);
            continue;
        }
        char present[64] = "";
        for (int b = 0; b < KD_BACKEND_COUNT; b++) {
            const fj *e = backend_entry(rec, kd_backend_name((kd_backend_id)b));
            if (fj_bool(fj_get(e, "present"), 0))
                snprintf(present + strlen(present), sizeof present - strlen(present), "%s%s",
                         present[0] ? "," : "", kd_backend_name((kd_backend_id)b));
        }
        printf("%4d  %-12s %-11s %-7s %4d  %-28.28s %s\n", i, node_of(r, i),
               fj_str(fj_get(rec, "role"), "?"), fj_str(fj_get(rec, "simd"), "-"),
               (int)fj_num(fj_get(rec, "cpus"), 0), fj_str(fj_get(rec, "cpu"), "?"),
               present[0] ? present : "-");
    }
    printf("\nbackends and devices\n%4s  %-12s %-7s %-8s %s\n", "rank", "node", "backend",
           "status", "device / driver / reason");
    for (int i = 0; i < r->n; i++)
        for (int b = 0; r->rec[i] && b < KD_BACKEND_COUNT; b++) {
            const fj *e = backend_entry(r->rec[i], kd_backend_name((kd_backend_id)b));
            if (!e)
                continue;
            printf("%4d  %-12s %-7s %-8s %s\n", i, node_of(r, i), kd_backend_name((kd_backend_id)b),
                   fj_bool(fj_get(e, "present"), 0) ? "present" : "absent",
                   fj_str(fj_get(e, "detail"), ""));
            const fj *devs = fj_get(e, "devices");
            for (int d = 0; d < fj_len(devs); d++)
                printf("%4s  %-12s %-7s %-8s device %s, driver %s\n", "", "", "", "",
                       fj_str(fj_get(fj_at(devs, d), "name"), "?"),
                       fj_str(fj_get(fj_at(devs, d), "driver_version"), "?"));
        }
}

/* One (node, backend, op) group of compare's checks. */
typedef struct group {
    char backend[24], op[24];
    int checks, failed;
    double max_abs, nmse;
    char status[32];
} group;

static int group_checks(const fj *results, group *g, int cap)
{
    int ng = 0;
    for (int i = 0; i < fj_len(results); i++) {
        const fj *c = fj_at(results, i);
        const char *be = fj_str(fj_get(c, "backend"), "?"), *op = fj_str(fj_get(c, "op"), "?");
        int j = 0;
        while (j < ng && (strcmp(g[j].backend, be) || strcmp(g[j].op, op)))
            j++;
        if (j == ng) {
            if (ng == cap)
                continue;
            g[ng] = (group){.max_abs = 0};
            snprintf(g[ng].backend, sizeof g->backend, "%s", be);
            snprintf(g[ng].op, sizeof g->op, "%s", op);
            snprintf(g[ng].status, sizeof g->status, "KD_OK");
            ng++;
        }
        g[j].checks++;
        g[j].failed += !fj_bool(fj_get(c, "pass"), 0);
        const fj *e = fj_get(c, "max_abs_err"), *nm = fj_get(c, "nmse");
        g[j].max_abs = e && e->type == FJ_NUM ? fmax(g[j].max_abs, e->num) : g[j].max_abs;
        g[j].nmse = nm && nm->type == FJ_NUM ? fmax(g[j].nmse, nm->num) : g[j].nmse;
        if (strcmp(fj_str(fj_get(c, "status"), "KD_OK"), "KD_OK"))
            snprintf(g[j].status, sizeof g->status, "%s", fj_str(fj_get(c, "status"), "?"));
    }
    return ng;
}

static void text_compare(const report *r)
{
    printf("\ncompare: per node x backend x op (checks against the oracle and pairwise)\n"
           "%4s  %-12s %-10s %-12s %6s %6s %11s %11s  %s\n", "rank", "node", "backend", "op",
           "checks", "failed", "max_abs_err", "nmse", "result");
    group g[64];
    for (int i = 0; i < r->n; i++) {
        const fj *res = fj_get(r->rec[i], "result");
        int ng = group_checks(fj_get(res, "results"), g, 64);
        for (int j = 0; j < ng; j++)
            printf("%4d  %-12s %-10s %-12s %6d %6d %11.3e %11.3e  %s\n", i, node_of(r, i),
                   g[j].backend, g[j].op, g[j].checks, g[j].failed, g[j].max_abs, g[j].nmse,
                   g[j].failed ? (strcmp(g[j].status, "KD_OK") ? g[j].status : "FAIL") : "pass");
        int shown = 0;
        const fj *results = fj_get(res, "results");
        for (int k = 0; k < fj_len(results) && shown < MAX_ERRORS_SHOWN; k++) {
            const fj *c = fj_at(results, k);
            if (fj_bool(fj_get(c, "pass"), 1))
                continue;
            printf("      error: rank %d %s: %s %s M=%lld on %s vs %s: %s, %lld of %lld values "
                   "bad\n", i, node_of(r, i), fj_str(fj_get(c, "op"), "?"),
                   fj_str(fj_get(c, "kernel"), "?"), (long long)fj_num(fj_get(c, "m"), 0),
                   fj_str(fj_get(c, "backend"), "?"), fj_str(fj_get(c, "reference"), "?"),
                   fj_str(fj_get(c, "status"), "?"), (long long)fj_num(fj_get(c, "bad"), 0),
                   (long long)fj_num(fj_get(c, "count"), 0));
            shown++;
        }
    }
}

static void text_agreement(const report *r)
{
    if (r->nkern == 0)
        return;
    printf("\nagreement across nodes: the same seeded problem on every node x backend, %d "
           "values per output\n(pass: every spread and every error <= %g * max(1, |oracle|); "
           "ratio = the largest of them / that bound)\n"
           "%-12s %-7s %3s %8s %7s %12s %12s %8s  %-20s %s\n", r->o->digest, r->o->tol, "op",
           "kernel", "M", "size", "outputs", "max_diff", "worst_vs_or", "ratio", "worst at",
           "result");
    for (int i = 0; i < r->nkern; i++) {
        const agreement *a = &r->kern[i];
        char size[32];
        snprintf(size, sizeof size, a->k && strstr(a->op, "gemv") ? "%lldx%lld" : "%lld", a->n,
                 a->k);
        printf("%-12s %-7s %3lld %8s %7d %12.3e %12.3e %8.3f  %-20s %s\n", a->op,
               a->m == 1 ? "single" : "batched", a->m, size, a->outputs, a->max_diff,
               a->worst_oracle, fmax(a->max_ratio, a->worst_ratio), a->worst_where,
               a->pass ? "pass" : "FAIL");
    }
}

static const fj *bench_target(const fj *res, const char *label)
{
    const fj *t = fj_get(res, "targets");
    for (int i = 0; i < fj_len(t); i++)
        if (strcmp(fj_str(fj_get(fj_at(t, i), "label"), ""), label) == 0)
            return fj_at(t, i);
    return NULL;
}

static void text_bench(const report *r)
{
    printf("\nbench: each node's own bandwidth, and the headline rows as fractions of it\n"
           "%4s  %-12s %-10s %12s  %s\n", "rank", "node", "device", "bw GB/s", "measured on");
    for (int i = 0; i < r->n; i++) {
        const fj *res = fj_get(r->rec[i], "result"), *t = fj_get(res, "targets");
        if (res)
            printf("%4d  %-12s %-10s %12.2f  host read bandwidth (%s)\n", i, node_of(r, i),
                   "host", fj_num(fj_get(fj_get(res, "host"), "read_bw_gbps"), 0),
                   fj_str(fj_get(fj_get(res, "host"), "cpu"), "?"));
        for (int k = 0; k < fj_len(t); k++)
            printf("%4d  %-12s %-10s %12.2f  %s\n", i, node_of(r, i),
                   fj_str(fj_get(fj_at(t, k), "label"), "?"),
                   fj_num(fj_get(fj_at(t, k), "device_bw_gbps"), 0),
                   fj_str(fj_get(fj_at(t, k), "device"), "?"));
    }
    printf("\n%4s  %-12s %-10s %-12s %-7s %3s %10s %9s %9s\n", "rank", "node", "device", "op",
           "kernel", "M", "GB/s", "of host", "of dev");
    for (int i = 0; i < r->n; i++) {
        const fj *rows = fj_get(fj_get(r->rec[i], "result"), "rows");
        for (int k = 0; k < fj_len(rows); k++) {
            const fj *w = fj_at(rows, k);
            if (strcmp(fj_str(fj_get(w, "section"), ""), "headline"))
                continue;
            printf("%4d  %-12s %-10s %-12s %-7s %3lld %10.2f %9.3f %9.3f\n", i, node_of(r, i),
                   fj_str(fj_get(w, "device"), "?"), fj_str(fj_get(w, "op"), "?"),
                   fj_str(fj_get(w, "kernel"), "?"), (long long)fj_num(fj_get(w, "m"), 0),
                   fj_num(fj_get(w, "gbps"), 0), fj_num(fj_get(w, "frac_of_read_bw"), 0),
                   fj_num(fj_get(w, "frac_of_device_bw"), 0));
        }
    }
}

static void text_tune(const report *r)
{
    printf("\ntune: thresholds per node (offload when data_size > threshold)\n"
           "%4s  %-12s %-8s %-12s %s\n", "rank", "node", "backend", "op", "threshold");
    for (int i = 0; i < r->n; i++) {
        const fj *t = fj_get(r->rec[i], "thresholds");
        if (r->rec[i] && fj_len(t) == 0 && fj_get(r->rec[i], "devices"))
            printf("%4d  %-12s no offload backend tuned (every op runs on cpu)\n", i,
                   node_of(r, i));
        for (int k = 0; k < fj_len(t); k++) {
            const fj *th = fj_get(fj_at(t, k), "threshold");
            char v[32];
            if (th && th->type == FJ_NUM)
                snprintf(v, sizeof v, "%.0f", th->num);
            else
                snprintf(v, sizeof v, "%s", fj_str(th, "?"));
            printf("%4d  %-12s %-8s %-12s %s\n", i, node_of(r, i),
                   fj_str(fj_get(fj_at(t, k), "backend"), "?"),
                   fj_str(fj_get(fj_at(t, k), "op"), "?"), v);
        }
    }
}

static void text_ptx(const report *r)
{
    printf("\nptx-check per node\n");
    for (int i = 0; i < r->n; i++) {
        const fj *res = fj_get(r->rec[i], "result");
        if (res)
            printf("%4d  %-12s %s\n", i, node_of(r, i), fj_str(fj_get(res, "summary"), "?"));
    }
}

static int count_failed(const report *r)
{
    int n = 0;
    for (int i = 0; i < r->n; i++)
        n += r->failed[i];
    return n;
}

static int agreement_failed(const report *r)
{
    for (int i = 0; i < r->nkern; i++)
        if (!r->kern[i].pass)
            return 1;
    return 0;
}

static void print_text(const report *r)
{
    text_nodes(r);
    if (strcmp(r->o->sub, "compare") == 0) {
        text_compare(r);
        text_agreement(r);
    } else if (strcmp(r->o->sub, "bench") == 0) {
        text_bench(r);
    } else if (strcmp(r->o->sub, "tune") == 0) {
        text_tune(r);
    } else if (strcmp(r->o->sub, "ptx-check") == 0) {
        text_ptx(r);
    }
    int failed = count_failed(r);
    printf("\n");
    for (int i = 0; i < r->n; i++)
        if (r->failed[i])
            printf("FAILED: rank %d (node %s, host %s): %s\n", i, r->rec[i] ? node_of(r, i) : "?",
                   fj_str(fj_get(r->rec[i], "hostname"), "?"), r->fail_reason[i]);
    printf("verdict: %s (%d of %d ranks failed%s)\n",
           failed || agreement_failed(r) ? "FAIL" : "PASS", failed, r->n,
           agreement_failed(r) ? "; nodes disagree" : "");
}

/* ---- JSON --------------------------------------------------------------------------------- */

static void json_agreement(kd_json *w, const agreement *a)
{
    kd_json_begin_object(w);
    kd_json_key_str(w, "op", a->op);
    kd_json_key_int(w, "m", a->m);
    kd_json_key_int(w, "n", a->n);
    kd_json_key_int(w, "k", a->k);
    kd_json_key(w, "seed");
    kd_json_uint(w, a->seed);
    kd_json_key_int(w, "outputs", a->outputs);
    kd_json_key_int(w, "not_run", a->not_run);
    kd_json_key_num(w, "max_diff", a->max_diff, "%.6e");
    kd_json_key_num(w, "worst_vs_oracle", a->worst_oracle, "%.6e");
    kd_json_key_str(w, "worst_at", a->worst_where);
    kd_json_key_bool(w, "pass", a->pass);
    kd_json_end_object(w);
}

static void print_json(const report *r, char *const *records, const size_t *lens)
{
    kd_json w;
    kd_json_init(&w, stdout);
    kd_json_begin_object(&w);
    kd_json_key_str(&w, "command", "fleet");
    kd_json_key_str(&w, "subcommand", r->o->sub);
    kd_json_key_int(&w, "ranks", r->n);
    kd_json_key(&w, "seed");
    kd_json_uint(&w, r->o->seed);
    kd_json_key_num(&w, "tolerance", r->o->tol, "%g");
    kd_json_key_int(&w, "digest", r->o->digest);
    kd_json_newline(&w);
    kd_json_key(&w, "records");
    kd_json_begin_array(&w);
    for (int i = 0; i < r->n; i++) {
        kd_json_newline(&w);
        if (r->rec[i]) /* each rank's record as it sent it, but its final line break */
            kd_json_raw(&w, records[i], lens[i] - (records[i][lens[i] - 1] == '\n'));
        else
            kd_json_null(&w);
    }
    kd_json_end_array(&w);
    kd_json_newline(&w);
    kd_json_key(&w, "agreement");
    kd_json_begin_array(&w);
    for (int i = 0; i < r->nkern; i++) {
        kd_json_newline(&w);
        json_agreement(&w, &r->kern[i]);
    }
    kd_json_end_array(&w);
    kd_json_newline(&w);
    kd_json_key(&w, "failures");
    kd_json_begin_array(&w);
    for (int i = 0; i < r->n; i++)
        if (r->failed[i]) {
            kd_json_begin_object(&w);
            kd_json_key_int(&w, "rank", i);
            kd_json_key_str(&w, "node", r->rec[i] ? node_of(r, i) : "?");
            kd_json_key_str(&w, "reason", r->fail_reason[i]);
            kd_json_end_object(&w);
        }
    kd_json_end_array(&w);
    kd_json_newline(&w);
    kd_json_key_int(&w, "failed_ranks", count_failed(r));
    kd_json_key_str(&w, "verdict", count_failed(r) || agreement_failed(r) ? "FAIL" : "PASS");
    kd_json_end_object(&w);
    kd_json_finish(&w);
}

/* ---- CSV ---------------------------------------------------------------------------------- */

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

/* section,rank,node,backend,device,op,kernel,m,metric,value */
static void csv_row(FILE *f, const char *section, int rank, const char *node, const char *backend,
                    const char *device, const char *op, const char *kernel, long long m,
                    const char *metric, const char *value)
{
    const char *fields[] = {section, node, backend, device, op, kernel};
    csv_field(f, fields[0]);
    fprintf(f, ",%d,", rank);
    for (int i = 1; i < 6; i++) {
        csv_field(f, fields[i] ? fields[i] : "");
        fputc(',', f);
    }
    if (m > 0)
        fprintf(f, "%lld", m);
    fputc(',', f);
    csv_field(f, metric);
    fputc(',', f);
    csv_field(f, value);
    fputc('\n', f);
}

static void csv_num(FILE *f, const char *section, int rank, const char *node, const char *backend,
                    const char *device, const char *op, const char *kernel, long long m,
                    const char *metric, double value)
{
    char v[40];
    snprintf(v, sizeof v, "%.6g", value);
    csv_row(f, section, rank, node, backend, device, op, kernel, m, metric, v);
}

static void csv_nodes(FILE *f, const report *r)
{
    for (int i = 0; i < r->n; i++) {
        const fj *rec = r->rec[i];
        const char *node = rec ? node_of(r, i) : "?";
        csv_row(f, "node", i, node, NULL, NULL, NULL, NULL, 0, "role", fj_str(fj_get(rec, "role"), "?"));
        csv_row(f, "node", i, node, NULL, NULL, NULL, NULL, 0, "cpu", fj_str(fj_get(rec, "cpu"), "?"));
        csv_row(f, "node", i, node, NULL, NULL, NULL, NULL, 0, "simd", fj_str(fj_get(rec, "simd"), "-"));
        for (int b = 0; b < KD_BACKEND_COUNT; b++) {
            const fj *e = backend_entry(rec, kd_backend_name((kd_backend_id)b));
            if (e)
                csv_row(f, "backend", i, node, kd_backend_name((kd_backend_id)b),
                        fj_str(fj_get(e, "detail"), ""), NULL, NULL, 0, "present",
                        fj_bool(fj_get(e, "present"), 0) ? "true" : "false");
        }
    }
}

static void csv_sections(FILE *f, const report *r)
{
    group g[64];
    for (int i = 0; i < r->n; i++) {
        const fj *res = fj_get(r->rec[i], "result");
        const char *node = r->rec[i] ? node_of(r, i) : "?";
        int ng = group_checks(fj_get(res, "results"), g, 64);
        for (int j = 0; j < ng; j++) {
            csv_num(f, "compare", i, node, g[j].backend, NULL, g[j].op, NULL, 0, "failed", g[j].failed);
            csv_num(f, "compare", i, node, g[j].backend, NULL, g[j].op, NULL, 0, "max_abs_err",
                    g[j].max_abs);
        }
        if (res && fj_get(res, "host"))
            csv_num(f, "bench_bw", i, node, "cpu", "host", NULL, NULL, 0, "gbps",
                    fj_num(fj_get(fj_get(res, "host"), "read_bw_gbps"), 0));
        const fj *rows = fj_get(res, "rows");
        for (int k = 0; k < fj_len(rows); k++) {
            const fj *w = fj_at(rows, k);
            if (strcmp(fj_str(fj_get(w, "section"), ""), "headline"))
                continue;
            const char *dev = fj_str(fj_get(w, "device"), "?");
            const fj *t = bench_target(res, dev);
            csv_num(f, "bench", i, node, fj_str(fj_get(w, "backend"), "?"), dev,
                    fj_str(fj_get(w, "op"), "?"), fj_str(fj_get(w, "kernel"), "?"),
                    (long long)fj_num(fj_get(w, "m"), 0), "gbps", fj_num(fj_get(w, "gbps"), 0));
            csv_num(f, "bench", i, node, fj_str(fj_get(w, "backend"), "?"), dev,
                    fj_str(fj_get(w, "op"), "?"), fj_str(fj_get(w, "kernel"), "?"),
                    (long long)fj_num(fj_get(w, "m"), 0), "frac_of_own_bw",
                    fj_num(fj_get(w, t && fj_num(fj_get(t, "device_bw_gbps"), 0) > 0 &&
                                         strcmp(dev, "cpu")
                                     ? "frac_of_device_bw" : "frac_of_read_bw"), 0));
        }
        const fj *th = fj_get(r->rec[i], "thresholds");
        for (int k = 0; k < fj_len(th); k++) {
            const fj *v = fj_get(fj_at(th, k), "threshold");
            char s[32];
            snprintf(s, sizeof s, "%.0f", fj_num(v, 0));
            csv_row(f, "tune", i, node, fj_str(fj_get(fj_at(th, k), "backend"), "?"), NULL,
                    fj_str(fj_get(fj_at(th, k), "op"), "?"), NULL, 0, "threshold",
                    v && v->type == FJ_NUM ? s : fj_str(v, "?"));
        }
        if (r->failed[i])
            csv_row(f, "failure", i, node, NULL, NULL, NULL, NULL, 0, "reason", r->fail_reason[i]);
    }
    for (int i = 0; i < r->nkern; i++) {
        const agreement *a = &r->kern[i];
        csv_num(f, "agreement", -1, "all", NULL, NULL, a->op, a->m == 1 ? "single" : "batched",
                a->m, "max_diff", a->max_diff);
        csv_num(f, "agreement", -1, "all", NULL, NULL, a->op, a->m == 1 ? "single" : "batched",
                a->m, "worst_vs_oracle", a->worst_oracle);
        csv_row(f, "agreement", -1, "all", NULL, NULL, a->op, a->m == 1 ? "single" : "batched",
                a->m, "pass", a->pass ? "true" : "false");
    }
}

static void print_csv(FILE *f, const report *r)
{
    fputs("section,rank,node,backend,device,op,kernel,m,metric,value\n", f);
    csv_nodes(f, r);
    csv_sections(f, r);
}

/* ---- plot --------------------------------------------------------------------------------- */

static int run_plot(const report *r, const char *png)
{
    char tmp[] = "/tmp/kdispatch-fleet-plot-XXXXXX", script[1024];
    const char *env = getenv("KD_FLEET_PLOT_SCRIPT");
    snprintf(script, sizeof script, "%s", env && *env ? env : KD_CLI_SOURCE_DIR "/fleet_plot.py");
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "kdispatch fleet: cannot write a temporary CSV for the plot\n");
        return 1;
    }
    print_csv(f, r);
    fclose(f);
    char *argv[] = {"python3", script, "--csv", tmp, "--out", (char *)png, NULL};
    pid_t pid;
    int status = 1;
    fflush(stdout);
    if (posix_spawnp(&pid, "python3", NULL, NULL, argv, environ) != 0 ||
        waitpid(pid, &status, 0) < 0)
        fprintf(stderr, "kdispatch fleet: cannot run python3 %s: %s\n", script, strerror(errno));
    remove(tmp);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (!r->o->json && !r->o->csv)
            printf("plot: %s\n", png);
        return 0;
    }
    fprintf(stderr, "kdispatch fleet: the plot was not made\n");
    return 1;
}

/* ---- entry -------------------------------------------------------------------------------- */

int kd_fleet_report(const kd_fleet_opts *o, char *const *records, const size_t *lens, int n)
{
    report r = {.o = o, .n = n, .rec = calloc((size_t)n, sizeof(fj *)),
                .why = calloc((size_t)n, sizeof(char *)), .failed = calloc((size_t)n, sizeof(int)),
                .fail_reason = calloc((size_t)n, sizeof(char *))};
    int rc = 1;
    if (!r.rec || !r.why || !r.failed || !r.fail_reason) {
        fprintf(stderr, "kdispatch fleet: out of memory for the report\n");
        goto done;
    }
    read_records(&r, records, lens);
    judge_ranks(&r);
    compute_agreement(&r);
    if (o->json)
        print_json(&r, records, lens);
    else if (o->csv)
        print_csv(stdout, &r);
    else
        print_text(&r);
    rc = count_failed(&r) || agreement_failed(&r) ? 1 : 0;
    if (o->plot && run_plot(&r, o->plot))
        rc = rc ? rc : 1;
    for (int i = 0; i < n && o->json + o->csv; i++)
        if (r.failed[i])
            fprintf(stderr, "kdispatch fleet: FAILED: rank %d (node %s): %s\n", i,
                    r.rec[i] ? node_of(&r, i) : "?", r.fail_reason[i]);
done:
    for (int i = 0; i < n && r.rec; i++) {
        fj_free(r.rec[i]);
        free(r.why[i]);
        free(r.fail_reason[i]);
    }
    free(r.rec);
    free(r.why);
    free(r.failed);
    free(r.fail_reason);
    return rc;
}
