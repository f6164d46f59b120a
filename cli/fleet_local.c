/*
 * kdispatch fleet, one rank's part: the node's facts, the subcommand run in-process with
 * its output captured in memory (its --json output becomes part of the record), and for
 * compare a digest of every kernel's output on the same seeded problems, so rank 0 can
 * compare nodes with each other and with the oracle. No MPI here.
 */
#include "fleet.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "fleet_json.h"
#include "host_cpus.h"
#include "kd_json.h"
#include "kd_oracle.h"
#include "membw.h"

#define FLEET_STDERR_KEEP 2048 /* bytes of a rank's messages kept in its record */

typedef int (*subcommand_fn)(int argc, char **argv);

typedef struct captured {
    char *out, *err;
    size_t out_len, err_len;
    int rc;
} captured;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Points fd (1 or 2) at a temporary file until redirect_end. At the descriptor, not by
 * swapping the FILE pointers: a library initialised inside the subcommand (PoCL) keeps
 * the stderr it saw, and would write to a closed stream later. */
static int redirect_begin(FILE *stream, int fd, int *saved, FILE **tmp)
{
    fflush(stream);
    *tmp = tmpfile();
    *saved = *tmp ? dup(fd) : -1;
    if (*saved < 0 || dup2(fileno(*tmp), fd) < 0) {
        if (*saved >= 0)
            close(*saved);
        if (*tmp)
            fclose(*tmp);
        return -1;
    }
    return 0;
}

/* Restores fd and returns what was written to it (malloc'd, NUL-terminated). */
static char *redirect_end(FILE *stream, int fd, int saved, FILE *tmp, size_t *len)
{
    fflush(stream);
    dup2(saved, fd);
    close(saved);
    long size = fseek(tmp, 0, SEEK_END) == 0 ? ftell(tmp) : -1;
    char *buf = size >= 0 ? malloc((size_t)size + 1) : NULL;
    *len = 0;
    rewind(tmp);
    if (buf) {
        *len = fread(buf, 1, (size_t)size, tmp);
        buf[*len] = '\0';
    }
    fclose(tmp);
    return buf;
}

/* Runs a subcommand in this process with its stdout and stderr captured; its messages are
 * then passed on to the real stderr, each line tagged with the rank, so mpirun's merged
 * stream still says who wrote what. */
static int run_captured(subcommand_fn fn, int argc, char **argv, const kd_fleet_identity *id,
                        captured *c)
{
    int so, se;
    FILE *to, *te;
    memset(c, 0, sizeof *c);
    if (redirect_begin(stdout, STDOUT_FILENO, &so, &to))
        return -1;
    if (redirect_begin(stderr, STDERR_FILENO, &se, &te)) {
        free(redirect_end(stdout, STDOUT_FILENO, so, to, &c->out_len));
        return -1;
    }
    c->rc = fn(argc, argv);
    c->err = redirect_end(stderr, STDERR_FILENO, se, te, &c->err_len);
    c->out = redirect_end(stdout, STDOUT_FILENO, so, to, &c->out_len);
    for (char *line = c->err, *nl; line && *line; line = nl ? nl + 1 : line + strlen(line)) {
        nl = strchr(line, '\n');
        fprintf(stderr, "[fleet rank %d %s] %.*s\n", id->rank, id->node,
                (int)(nl ? nl - line : (long)strlen(line)), line);
    }
    return 0;
}

static void free_captured(captured *c)
{
    free(c->out);
    free(c->err);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (*len + 4096 + 1 > cap) {
            char *p = realloc(buf, cap = 2 * cap + 8192);
            if (!p)
                break;
            buf = p;
        }
        size_t got = fread(buf + *len, 1, cap - *len - 1, f);
        *len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    if (buf)
        buf[*len] = '\0';
    return buf;
}

/* ---- the node ------------------------------------------------------------------------------ */

/* "SIMD avx512" in the cpu backend's description. */
static void simd_of(const char *cpu_detail, char *buf, size_t cap)
{
    const char *p = strstr(cpu_detail, "SIMD ");
    snprintf(buf, cap, "unknown");
    if (p) {
        p += 5;
        snprintf(buf, cap, "%.*s", (int)strcspn(p, ", "), p);
    }
}

static void write_identity(FILE *f, const kd_fleet_identity *id)
{
    char cpu[128];
    kd_host_cpu_model(cpu, sizeof cpu);
    fprintf(f, "{\"rank\":%d,\"ranks\":%d,\"node\":", id->rank, id->size);
    kd_json_write_str(f, id->node);
    fputs(",\"hostname\":", f);
    kd_json_write_str(f, id->hostname);
    fprintf(f, ",\"host_rank\":%d,\"host_ranks\":%d,\"role\":\"%s\",\"cpu\":", id->host_rank,
            id->host_size, id->worker ? "worker" : "shared-host");
    kd_json_write_str(f, cpu);
    kd_host_cpus cpus;
    kd_host_cpus_read(&cpus);
    fprintf(f, ",\"cpus\":%d,\"cpus_online\":%d,\"version\":\"%s\"", cpus.usable, cpus.online,
            kd_version());
}

/* The devices subcommand's JSON: backends present or absent and why, devices, drivers. */
static void write_devices(FILE *f, const kd_fleet_identity *id)
{
    char *argv[] = {"devices", "--json", NULL};
    captured c;
    fputs(",\"devices\":", f);
    if (run_captured(kd_cmd_devices, 2, argv, id, &c) == 0 && c.rc == 0 && c.out_len > 0) {
        fwrite(c.out, 1, c.out_len - (c.out[c.out_len - 1] == '\n'), f);
        fj *d = fj_parse(c.out, c.out_len, NULL, 0);
        const fj *b = fj_get(d, "backends");
        for (int i = 0; i < fj_len(b); i++)
            if (strcmp(fj_str(fj_get(fj_at(b, i), "name"), ""), "cpu") == 0) {
                char simd[32];
                simd_of(fj_str(fj_get(fj_at(b, i), "detail"), ""), simd, sizeof simd);
                fputs(",\"simd\":", f);
                kd_json_write_str(f, simd);
            }
        fj_free(d);
    } else {
        fputs("null", f);
    }
    free_captured(&c);
}

/* ---- agreement: each kernel's output on compare's problems, subsampled ------------------------ */

/* A selection where none set means all. */
static int op_in(const int *use, kd_op op) { return !kd_cli_any_set(use, KD_OP_COUNT) || use[op]; }

static int backend_in(const int *use, int b)
{
    return !kd_cli_any_set(use, KD_BACKEND_COUNT) || use[b];
}

/* KD_FLEET_TEST_SKEW=<rank>: that rank's digests are shifted by 1e-2, as a kernel giving
 * wrong values there would be, so a test shows the agreement check failing for it alone. */
static double test_skew(int rank)
{
    const char *v = getenv("KD_FLEET_TEST_SKEW");
    return v && *v && atoi(v) == rank ? 1e-2 : 0.0;
}

static void write_digest(FILE *f, const float *y, int64_t count, int k, double skew)
{
    double sum = skew * (double)count;
    int64_t nonfinite = 0;
    for (int64_t i = 0; i < count; i++) {
        if (isfinite(y[i]))
            sum += y[i];
        else
            nonfinite++;
    }
    fputs(",\"sum\":", f);
    fprintf(f, "%.17g,\"nonfinite\":%lld,\"values\":[", sum, (long long)nonfinite);
    for (int i = 0; i < k; i++) {
        float v = y[(int64_t)i * count / k] + (float)skew;
        if (isfinite(v))
            fprintf(f, "%s%.9g", i ? "," : "", v);
        else
            fprintf(f, "%snull", i ? "," : "");
    }
    fputc(']', f);
}

/* One backend's run of p (the cpu's exact path); the output is poisoned first so
 * unwritten values show. */
static void write_output(FILE *f, kd_context *ctx, kd_problem *p, int b, int k, double skew)
{
    float *poison = malloc(sizeof(float) * (size_t)p->out_count);
    kd_status st = poison ? KD_OK : KD_ERR_NOMEM;
    for (int64_t i = 0; poison && i < p->out_count; i++)
        poison[i] = NAN;
    if (st == KD_OK)
        st = kd_tensor_write(ctx, p->dst, poison, (size_t)p->out_count);
    /* the cpu's exact GEMV path: agreement is held to SPEC section 7's tight tolerance */
    float *y = st == KD_OK ? kd_problem_run(ctx, p, (kd_backend_id)b,
                                            KD_RUN_NO_FALLBACK | KD_RUN_CPU_EXACT, &st)
                           : NULL;
    fprintf(f, "{\"backend\":\"%s\",\"status\":\"%s\"", kd_backend_name((kd_backend_id)b),
            kd_status_name(st));
    if (y)
        write_digest(f, y, p->out_count, k, skew);
    else {
        fputs(",\"error\":", f);
        kd_json_write_str(f, kd_last_error(ctx));
    }
    fputc('}', f);
    free(y);
    free(poison);
}

static void write_kernel(FILE *f, kd_context *ctx, const kd_fleet_opts *o, kd_op op, long long m,
                         const kd_compare_opts *co, int rank, int *first)
{
    int64_t n, k;
    kd_model_op_dims(o->shape, op, &n, &k);
    uint64_t seed = kd_compare_problem_seed(co, op, m);
    kd_problem p;
    if (kd_problem_make(ctx, op, m, n, k, seed, &p)) {
        kd_problem_free(&p);
        return;
    }
    int count = p.out_count < o->digest ? (int)p.out_count : o->digest;
    fprintf(f, "%s\n {\"op\":\"%s\",\"m\":%lld,\"n\":%lld,\"k\":%lld,\"seed\":%llu,"
               "\"count\":%lld,\"digest\":%d,\"outputs\":[",
            *first ? "" : ",", kd_op_name(op), m, (long long)n, (long long)k,
            (unsigned long long)seed, (long long)p.out_count, count);
    *first = 0;
    int any = 0;
    for (int b = 0; b < KD_BACKEND_COUNT; b++)
        if (backend_in(o->use_backend, b) && kd_backend_available(ctx, (kd_backend_id)b)) {
            if (any++)
                fputc(',', f);
            write_output(f, ctx, &p, b, count, test_skew(rank));
        }
    fputs("]}", f);
    kd_problem_free(&p);
}

static void write_agreement(FILE *f, const kd_fleet_opts *o, int rank)
{
    kd_context *ctx;
    fputs(",\"agreement\":", f);
    if (o->gguf || !o->shape || kd_context_create(NULL, &ctx) != KD_OK) {
        fputs("null", f);
        return;
    }
    kd_compare_opts co;
    kd_compare_opts_init(&co);
    co.seed = o->seed;
    fprintf(f, "{\"shape\":\"%s\",\"kernels\":[", o->shape->name);
    int first = 1;
    for (int op = 0; op < KD_OP_COUNT; op++)
        for (int i = 0; i < o->nm && op_in(o->use_op, (kd_op)op); i++)
            write_kernel(f, ctx, o, (kd_op)op, o->m[i], &co, rank, &first);
    fputs("]}", f);
    kd_context_destroy(ctx);
}

/* ---- tune: the thresholds it wrote ------------------------------------------------------------ */

static void write_thresholds(FILE *f, const char *path, const kd_fleet_opts *o)
{
    kd_config c;
    char why[256];
    kd_config_defaults(&c);
    fputs(",\"thresholds\":[", f);
    if (access(path, R_OK) != 0 || kd_config_load_file(&c, path, why, sizeof why) != KD_OK) {
        fputs("]", f);
        return;
    }
    kd_context *ctx;
    if (kd_context_create(NULL, &ctx) != KD_OK) {
        fputs("]", f);
        return;
    }
    int n = 0;
    for (int b = 1; b < KD_BACKEND_COUNT; b++)
        for (int op = 0; op < KD_OP_COUNT && kd_backend_available(ctx, (kd_backend_id)b); op++) {
            if (!op_in(o->use_op, (kd_op)op) || !backend_in(o->use_backend, b))
                continue;
            uint64_t t = c.threshold[op][b];
            fprintf(f, "%s{\"op\":\"%s\",\"backend\":\"%s\",\"threshold\":", n++ ? "," : "",
                    kd_op_name((kd_op)op), kd_backend_name((kd_backend_id)b));
            if (t == KD_THRESHOLD_NEVER)
                fputs("\"never\"}", f);
            else
                fprintf(f, "%llu}", (unsigned long long)t);
        }
    fputs("]", f);
    kd_context_destroy(ctx);
}

/* ---- the subcommand ----------------------------------------------------------------------- */

static subcommand_fn sub_fn(const char *sub)
{
    if (strcmp(sub, "compare") == 0)
        return kd_cmd_compare;
    if (strcmp(sub, "bench") == 0)
        return kd_cmd_bench;
    if (strcmp(sub, "tune") == 0)
        return kd_cmd_tune;
    if (strcmp(sub, "ptx-check") == 0)
        return kd_cmd_ptx_check;
    return kd_cmd_devices;
}

/* The subcommand's JSON document: its stdout (compare, ptx-check) or a file (bench). */
static void write_result_json(FILE *f, const char *text, size_t len)
{
    char why[128];
    fj *v = text && len ? fj_parse(text, len, why, sizeof why) : NULL;
    fputs(",\"result\":", f);
    fj_write(f, v); /* re-written compactly; null if it printed no JSON */
    fj_free(v);
}

static void write_stderr_tail(FILE *f, const captured *c)
{
    fputs(",\"messages\":", f);
    if (!c->err || !c->err_len) {
        fputs("\"\"", f);
        return;
    }
    size_t from = c->err_len > FLEET_STDERR_KEEP ? c->err_len - FLEET_STDERR_KEEP : 0;
    kd_json_write_str(f, c->err + from);
}

static void run_sub(FILE *f, const kd_fleet_opts *o, const kd_fleet_identity *id)
{
    char *argv[FLEET_MAX_ARGS + 1];
    int argc = o->sub_argc;
    char seed[32], tmp[] = "/tmp/kdispatch-fleet-XXXXXX";
    memcpy(argv, o->sub_argv, sizeof(char *) * (size_t)argc);
    int fd = -1, is = 0;
    if ((is = strcmp(o->sub, "compare") == 0)) {
        snprintf(seed, sizeof seed, "%llu", o->seed); /* rank 0's, broadcast */
        argv[argc++] = "--json";
        argv[argc++] = "--seed";
        argv[argc++] = seed;
    } else if (strcmp(o->sub, "ptx-check") == 0) {
        argv[argc++] = "--json";
    } else if (strcmp(o->sub, "bench") == 0 || strcmp(o->sub, "tune") == 0) {
        if ((fd = mkstemp(tmp)) < 0) {
            fprintf(f, ",\"rc\":1,\"result\":null,\"messages\":\"cannot create a temporary "
                       "file in /tmp\"");
            return;
        }
        close(fd);
        is = strcmp(o->sub, "bench") == 0;
        argv[argc++] = is ? "--json" : "--out";
        argv[argc++] = tmp;
        if (is)
            argv[argc++] = "--no-progress";
    }
    argv[argc] = NULL;
    captured c;
    double t0 = now_s();
    int rc = strcmp(o->sub, "devices") == 0 ? 0
             : run_captured(sub_fn(o->sub), argc, argv, id, &c) == 0 ? c.rc : 1;
    fprintf(f, ",\"rc\":%d,\"seconds\":%.3f", rc, now_s() - t0);
    if (strcmp(o->sub, "devices") == 0) {
        fputs(",\"result\":null,\"messages\":\"\"", f);
        return;
    }
    if (strcmp(o->sub, "bench") == 0) {
        size_t len;
        char *text = read_file(tmp, &len);
        write_result_json(f, text, len);
        free(text);
    } else if (strcmp(o->sub, "tune") == 0) {
        fputs(",\"result\":null", f);
        write_thresholds(f, tmp, o);
    } else {
        write_result_json(f, c.out, c.out_len);
    }
    write_stderr_tail(f, &c);
    if (strcmp(o->sub, "compare") == 0)
        write_agreement(f, o, id->rank);
    if (fd >= 0)
        remove(tmp);
    free_captured(&c);
}

char *kd_fleet_local_record(const kd_fleet_opts *o, const kd_fleet_identity *id, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    write_identity(f, id);
    fprintf(f, ",\"command\":\"%s\",\"seed\":%llu", o->sub, o->seed);
    if (id->worker) {
        write_devices(f, id);
        run_sub(f, o, id);
    } else {
        fputs(",\"devices\":null,\"rc\":0,\"result\":null", f);
    }
    fputs("}\n", f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
