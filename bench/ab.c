/* kd-ab: two builds of libkdispatch in one process, their timings alternating, and the
 * ratio B / A.
 *
 * Why: these machines are shared and their speed drifts by 10-30 % from one minute to the
 * next, so two builds timed one after the other mostly measure the drift. Here the
 * timings go A B A B ... A, and each B is divided by the geometric mean of the A before
 * and the A after it: a steady drift cancels, and the median over the B ignores the ones
 * that a burst of noise hit. Each timing follows one of the other library, so both sides
 * see the same state (ABBA orders gave one side the other's spinning idle threads and
 * the other its own warm caches: 0.4-2.3 between two copies of one library at 60 us a
 * call). Each library has its own context and its own copy of the weights, so at the
 * default shape neither finds its weights in a cache. The same file given twice (or two
 * copies of it) measures the harness's own spread.
 *
 * The libraries are loaded with dlopen (RTLD_LOCAL: neither joins the global scope, so
 * each one's calls to its own functions bind to itself; LD_DEBUG=bindings shows it) and
 * called through the public API only (kdispatch.h); both must have this build's
 * kd_op_desc layout, so their versions are printed. Speed is never asserted here:
 * tests/test_ab.sh checks the output, not the times. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kd_blocks.h" /* the Q4_K / Q6_K block layouts (a header: no runtime linked) */
#include "kd_json.h"
#include "kdispatch.h"

#define AB_MAX_PAIRS 10000
#define AB_MAX_CALLS 1000000
#define AB_WARMUP_PAIRS 3

typedef struct ab_opts {
    const char *lib[2];
    const char *backend, *path, *op_name;
    kd_op op; /* from op_name, by library A's kd_op_from_name */
    int64_t n, k, m, m_b; /* m_b: B's rows of x (default m) */
    int pairs, calls, json; /* calls 0: enough that one timing lasts sample_ms */
    int64_t sample_ms;
} ab_opts;

/* The entry points used, looked up in one library. */
typedef struct ab_api {
    const char *(*version)(void);
    kd_status (*context_create)(const kd_context_options *, kd_context **);
    void (*context_destroy)(kd_context *);
    kd_status (*tensor_f32)(kd_context *, int64_t, int64_t, const float *, kd_tensor **);
    kd_status (*tensor_quant)(kd_context *, kd_type, int64_t, int64_t, const void *, size_t,
                              kd_tensor **);
    void (*tensor_free)(kd_tensor *);
    kd_status (*run)(kd_context *, const kd_op_desc *, kd_backend_id, unsigned);
    const char *(*last_error)(const kd_context *);
    kd_op (*op_from_name)(const char *);
    const char *(*op_name)(kd_op);
} ab_api;

/* One library under test: its API, context, the op's tensors and its timings. */
typedef struct ab_side {
    ab_api api;
    kd_context *ctx;
    kd_tensor *t[3];
    kd_op_desc desc;
    double *wall; /* seconds per call: A pairs + 1 timings, B pairs */
} ab_side;

/* The inputs both sides get: weights (GEMV), activations, RoPE positions. */
typedef struct ab_data {
    unsigned char *w;
    size_t w_bytes;
    float *x, *x2;
    uint32_t *pos;
} ab_data;

static int usage(FILE *f)
{
    fputs("usage: kd-ab [options] LIB_A LIB_B\n"
          "\n"
          "Loads two builds of libkdispatch.so into one process and times one op on each,\n"
          "alternating: A B A B ... A, after 3 untimed pairs. Prints each side's median\n"
          "wall time per call and B / A: the median over the B timings of B over the\n"
          "geometric mean of the A before and the A after it (with p25 and p75). The same\n"
          "library twice measures the harness's spread. Speed only: the outputs are not\n"
          "compared (kdispatch compare does that).\n"
          "\n"
          "options:\n"
          "  --op NAME       q4k_gemv (default), q6k_gemv, rmsnorm, rope, swiglu,\n"
          "                  residual_add\n"
          "  --backend B     cpu (default) or opencl\n"
          "  --path P        GEMV path: default, exact or q8 (KD_RUN_*_EXACT / _Q8)\n"
          "  --n N           GEMV output rows (default 4096)\n"
          "  --k K           GEMV row length, a multiple of 256 (default 14336); the\n"
          "                  elementwise ops' row length (rope: a multiple of 128)\n"
          "  --m M           rows of x (default 1)\n"
          "  --m-b M         B's rows of x, if not --m: with the same library twice,\n"
          "                  B/A is then the time at M-B over the time at M\n"
          "  --pairs P       timed pairs (default 30, at most 10000)\n"
          "  --calls C       calls per timing, back to back (default: doubled from 1\n"
          "                  until a timing of A lasts --sample-ms)\n"
          "  --sample-ms T   least duration of one timing (default 5): the idle cpu\n"
          "                  threads of the library that ran before spin for 200 us,\n"
          "                  which a short timing would feel\n"
          "  --json          one JSON object on stdout instead of the table\n"
          "  -h, --help      this text\n"
          "Weights are random bytes with sane f16 scales (seed 1), the same for A and B.\n"
          "Exit status: 0 done, 1 a library or call failed, 2 bad usage.\n",
          f);
    return f == stdout ? 0 : 2;
}

static int bad(const char *what, const char *value)
{
    fprintf(stderr, "kd-ab: %s '%s' (see --help)\n", what, value ? value : "");
    return 2;
}

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* One option at argv[*i] (its value at argv[*i + 1]); 0 ok, else the exit status. */
static int parse_option(int argc, char **argv, int *i, ab_opts *o)
{
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    int64_t x;
    if (!strcmp(a, "--json")) {
        o->json = 1;
        return 0;
    }
    if (!v)
        return bad("option needs a value:", a);
    ++*i;
    if (!strcmp(a, "--op")) {
        o->op_name = v;
    } else if (!strcmp(a, "--backend")) {
        if (strcmp(v, "cpu") && strcmp(v, "opencl"))
            return bad("unknown backend", v);
        o->backend = v;
    } else if (!strcmp(a, "--path")) {
        if (strcmp(v, "default") && strcmp(v, "exact") && strcmp(v, "q8"))
            return bad("unknown GEMV path", v);
        o->path = v;
    } else if (!strcmp(a, "--m-b")) {
        if (parse_int(v, 1, INT64_C(1) << 24, &o->m_b))
            return bad("bad --m-b", v);
    } else if (!strcmp(a, "--n") || !strcmp(a, "--k") || !strcmp(a, "--m")) {
        if (parse_int(v, 1, INT64_C(1) << 24, &x))
            return bad(a[2] == 'n' ? "bad --n" : a[2] == 'k' ? "bad --k" : "bad --m", v);
        *(a[2] == 'n' ? &o->n : a[2] == 'k' ? &o->k : &o->m) = x;
    } else if (!strcmp(a, "--sample-ms")) {
        if (parse_int(v, 1, 60000, &o->sample_ms))
            return bad("bad --sample-ms", v);
    } else if (!strcmp(a, "--pairs") || !strcmp(a, "--calls")) {
        if (parse_int(v, 1, a[2] == 'p' ? AB_MAX_PAIRS : AB_MAX_CALLS, &x))
            return bad(a[2] == 'p' ? "bad --pairs" : "bad --calls", v);
        *(a[2] == 'p' ? &o->pairs : &o->calls) = (int)x;
    } else {
        return bad("unknown option", a);
    }
    return 0;
}

static int is_gemv(kd_op op) { return op == KD_OP_Q4K_GEMV || op == KD_OP_Q6K_GEMV; }

static int parse_args(int argc, char **argv, ab_opts *o)
{
    int nlib = 0;
    *o = (ab_opts){.backend = "cpu", .path = "default", .op_name = "q4k_gemv", .op = KD_OP_COUNT,
                   .n = 4096, .k = 14336, .m = 1, .pairs = 30, .sample_ms = 5};
    for (int i = 1; i < argc; i++) {
        int st;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return usage(stdout) - 1; /* -1: done, exit 0 */
        if (argv[i][0] == '-' && argv[i][1] == '-') {
            if ((st = parse_option(argc, argv, &i, o)))
                return st;
        } else if (nlib < 2) {
            o->lib[nlib++] = argv[i];
        } else {
            return bad("unexpected argument", argv[i]);
        }
    }
    if (nlib < 2)
        return usage(stderr);
    if (!o->m_b)
        o->m_b = o->m;
    return 0;
}

/* The shape checks, once library A has named the op. */
static int check_op(ab_opts *o, const ab_api *a)
{
    if ((o->op = a->op_from_name(o->op_name)) == KD_OP_COUNT)
        return bad("unknown op", o->op_name);
    char k[32];
    snprintf(k, sizeof k, "%lld", (long long)o->k);
    if (is_gemv(o->op) && o->k % 256)
        return bad("a GEMV needs --k a multiple of 256, not", k);
    if (o->op == KD_OP_ROPE && o->k % 128)
        return bad("rope needs --k a multiple of 128 (head_dim 128), not", k);
    return 0;
}

/* The API of the library at path, or -1 with the reason on stderr. */
static int load_api(const char *path, ab_api *a)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "kd-ab: cannot load %s: %s\n", path, dlerror());
        return -1;
    }
#define AB_SYM(field, name)                                                                 \
    if (!(*(void **)&a->field = dlsym(h, name))) {                                          \
        fprintf(stderr, "kd-ab: %s has no %s: not a libkdispatch\n", path, name);            \
        return -1;                                                                          \
    }
    AB_SYM(version, "kd_version")
    AB_SYM(context_create, "kd_context_create")
    AB_SYM(context_destroy, "kd_context_destroy")
    AB_SYM(tensor_f32, "kd_tensor_f32")
    AB_SYM(tensor_quant, "kd_tensor_quant")
    AB_SYM(tensor_free, "kd_tensor_free")
    AB_SYM(run, "kd_run")
    AB_SYM(last_error, "kd_last_error")
    AB_SYM(op_from_name, "kd_op_from_name")
    AB_SYM(op_name, "kd_op_name")
#undef AB_SYM
    return 0;
}

/* Random bytes with each block's f16 scales set to small normal values (0x2000 | r: about
 * 2^-7), so that no block decodes to inf or NaN. */
static int make_data(const ab_opts *o, ab_data *d)
{
    srand(1);
    memset(d, 0, sizeof *d);
    int64_t rows = o->m > o->m_b ? o->m : o->m_b; /* both sides read the first rows */
    size_t xn = (size_t)(rows * o->k);
    if (is_gemv(o->op)) {
        int q4 = o->op == KD_OP_Q4K_GEMV;
        size_t bb = q4 ? sizeof(kd_block_q4_K) : sizeof(kd_block_q6_K);
        size_t nblocks = (size_t)(o->n * (o->k / KD_QK_K));
        d->w_bytes = nblocks * bb;
        if (!(d->w = malloc(d->w_bytes)))
            return -1;
        for (size_t i = 0; i < d->w_bytes; i++)
            d->w[i] = (unsigned char)rand();
        for (size_t b = 0; b < nblocks; b++) {
            unsigned char *p = d->w + b * bb;
            uint16_t h = (uint16_t)(0x2000 + (rand() & 0x3ff));
            memcpy(p + (q4 ? offsetof(kd_block_q4_K, d) : offsetof(kd_block_q6_K, d)), &h, 2);
            if (q4)
                memcpy(p + offsetof(kd_block_q4_K, dmin), &h, 2);
        }
    }
    d->x = malloc(sizeof(float) * xn);
    d->x2 = malloc(sizeof(float) * xn);
    d->pos = malloc(sizeof(uint32_t) * (size_t)rows);
    if (!d->x || !d->x2 || !d->pos)
        return -1;
    for (size_t i = 0; i < xn; i++) {
        d->x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        d->x2[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    }
    for (int64_t i = 0; i < rows; i++)
        d->pos[i] = (uint32_t)i;
    return 0;
}

static void free_data(ab_data *d)
{
    free(d->w);
    free(d->x);
    free(d->x2);
    free(d->pos);
}

static int fail(const ab_side *s, const char *what, const char *lib)
{
    fprintf(stderr, "kd-ab: %s: %s failed: %s\n", lib, what,
            s->ctx ? s->api.last_error(s->ctx) : "no context");
    return -1;
}

/* The op's tensors and descriptor on one side (GEMV: W, x, y; elementwise: x, the second
 * input, the output). */
static int make_side(ab_side *s, const ab_opts *o, int64_t m, const ab_data *d, const char *lib)
{
    kd_context_options co = {0};
    co.disable_cuda = 1;
    co.disable_opencl = !strcmp(o->backend, "cpu");
    if (s->api.context_create(&co, &s->ctx))
        return fail(s, "kd_context_create", lib);
    const ab_api *a = &s->api;
    kd_op_desc *ds = &s->desc;
    memset(ds, 0, sizeof *ds);
    ds->op = o->op;
    if (is_gemv(o->op)) {
        kd_type ty = o->op == KD_OP_Q4K_GEMV ? KD_TYPE_Q4_K : KD_TYPE_Q6_K;
        if (a->tensor_quant(s->ctx, ty, o->n, o->k, d->w, d->w_bytes, &s->t[0]) ||
            a->tensor_f32(s->ctx, m, o->k, d->x, &s->t[1]) ||
            a->tensor_f32(s->ctx, m, o->n, NULL, &s->t[2]))
            return fail(s, "making the tensors", lib);
    } else {
        int64_t second_rows = o->op == KD_OP_RMSNORM ? 1 : m;
        if (a->tensor_f32(s->ctx, m, o->k, d->x, &s->t[0]) ||
            (o->op != KD_OP_ROPE && a->tensor_f32(s->ctx, second_rows, o->k, d->x2, &s->t[1])) ||
            a->tensor_f32(s->ctx, m, o->k, NULL, &s->t[2]))
            return fail(s, "making the tensors", lib);
        if (o->op == KD_OP_ROPE) {
            ds->head_dim = 128;
            ds->n_heads = (int)(o->k / 128);
            ds->pos = d->pos;
        }
    }
    ds->src[0] = s->t[0];
    ds->src[1] = s->t[1];
    ds->dst = s->t[2];
    s->wall = calloc((size_t)o->pairs + 1, sizeof(double));
    return s->wall ? 0 : fail(s, "allocating", lib);
}

static void free_side(ab_side *s)
{
    for (int i = 0; i < 3; i++)
        if (s->t[i])
            s->api.tensor_free(s->t[i]);
    if (s->ctx)
        s->api.context_destroy(s->ctx);
    free(s->wall);
}

static double now(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static unsigned run_flags(const ab_opts *o)
{
    int cpu = !strcmp(o->backend, "cpu");
    if (!strcmp(o->path, "exact"))
        return cpu ? KD_RUN_CPU_EXACT : KD_RUN_OPENCL_EXACT;
    if (!strcmp(o->path, "q8"))
        return cpu ? KD_RUN_CPU_Q8 : KD_RUN_OPENCL_Q8;
    return 0;
}

/* Runs o->calls calls (kd_run returns when the backend is done); their wall time per
 * call in *sec. */
static int time_side(ab_side *s, const ab_opts *o, double *sec, const char *lib)
{
    kd_backend_id b = strcmp(o->backend, "cpu") ? KD_BACKEND_OPENCL : KD_BACKEND_CPU;
    unsigned flags = run_flags(o) | KD_RUN_NO_FALLBACK;
    double t0 = now(CLOCK_MONOTONIC);
    for (int c = 0; c < o->calls; c++)
        if (s->api.run(s->ctx, &s->desc, b, flags))
            return fail(s, "kd_run", lib);
    *sec = (now(CLOCK_MONOTONIC) - t0) / o->calls;
    return 0;
}

/* Without --calls: the calls per timing doubled until one timing of A lasts sample_ms
 * (the first call also uploads and, on OpenCL, builds: it is not counted). */
static int pick_calls(ab_side s[2], ab_opts *o)
{
    double sec;
    if (o->calls)
        return 0;
    o->calls = 1;
    if (time_side(&s[0], o, &sec, o->lib[0]))
        return -1;
    for (;;) {
        if (time_side(&s[0], o, &sec, o->lib[0]))
            return -1;
        if (sec * o->calls >= 1e-3 * (double)o->sample_ms || o->calls >= AB_MAX_CALLS / 2)
            return 0;
        o->calls *= 2;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of v[0..n), nearest rank; v is sorted in place. */
static double quantile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[(int)(q * (n - 1) + 0.5)];
}

typedef struct ab_result {
    double ms[2];   /* median per call, A and B */
    double ratio[3]; /* B_i / sqrt(A_i * A_i+1): p25, median, p75 */
} ab_result;

static int summarize(ab_side s[2], int pairs, ab_result *r)
{
    double *ratio = malloc(sizeof(double) * (size_t)pairs);
    static const double q[3] = {0.25, 0.5, 0.75};
    if (!ratio)
        return -1;
    for (int i = 0; i < pairs; i++)
        ratio[i] = s[1].wall[i] / sqrt(s[0].wall[i] * s[0].wall[i + 1]);
    for (int j = 0; j < 3; j++)
        r->ratio[j] = quantile(ratio, pairs, q[j]);
    r->ms[0] = 1e3 * quantile(s[0].wall, pairs + 1, 0.5);
    r->ms[1] = 1e3 * quantile(s[1].wall, pairs, 0.5);
    free(ratio);
    return 0;
}

static void print_table(const ab_opts *o, ab_side s[2], const ab_result *r)
{
    if (is_gemv(o->op))
        printf("kd-ab: %s N=%lld K=%lld M=%lld on %s (GEMV path %s)", s[0].api.op_name(o->op),
               (long long)o->n, (long long)o->k, (long long)o->m, o->backend, o->path);
    else
        printf("kd-ab: %s %lld x %lld on %s", s[0].api.op_name(o->op), (long long)o->m,
               (long long)o->k, o->backend);
    if (o->m_b != o->m)
        printf(", B at M=%lld", (long long)o->m_b);
    printf(", %d pairs of %d call%s\n", o->pairs, o->calls, o->calls > 1 ? "s" : "");
    printf("  %-2s %-9s %12s  %s\n", "", "version", "ms/call", "library");
    for (int l = 0; l < 2; l++)
        printf("  %-2s %-9s %12.4f  %s\n", l ? "B" : "A", s[l].api.version(), r->ms[l],
               o->lib[l]);
    printf("  B/A %.3f (median; p25 %.3f, p75 %.3f)\n", r->ratio[1], r->ratio[0], r->ratio[2]);
}

static int print_json(const ab_opts *o, ab_side s[2], const ab_result *r)
{
    kd_json w;
    kd_json_init(&w, stdout);
    kd_json_begin_object(&w);
    kd_json_key_str(&w, "op", s[0].api.op_name(o->op));
    kd_json_key_str(&w, "backend", o->backend);
    kd_json_key_str(&w, "gemv_path", o->path);
    kd_json_key_int(&w, "n", o->n);
    kd_json_key_int(&w, "k", o->k);
    kd_json_key_int(&w, "m", o->m);
    kd_json_key_int(&w, "m_b", o->m_b);
    kd_json_key_int(&w, "pairs", o->pairs);
    kd_json_key_int(&w, "calls", o->calls);
    for (int l = 0; l < 2; l++) {
        kd_json_key(&w, l ? "b" : "a");
        kd_json_begin_object(&w);
        kd_json_key_str(&w, "library", o->lib[l]);
        kd_json_key_str(&w, "version", s[l].api.version());
        kd_json_key_num(&w, "median_ms", r->ms[l], "%.6g");
        kd_json_end_object(&w);
    }
    kd_json_key(&w, "b_over_a");
    kd_json_begin_object(&w);
    static const char *const names[3] = {"p25", "median", "p75"};
    for (int q = 0; q < 3; q++)
        kd_json_key_num(&w, names[q], r->ratio[q], "%.6g");
    kd_json_end_object(&w);
    kd_json_end_object(&w);
    return kd_json_finish(&w);
}

/* A B A B ... A: AB_WARMUP_PAIRS untimed pairs, then pairs + 1 timings of A around pairs
 * of B. Each timing follows one of the other library, so both see the same state (the
 * other's data in the caches, its idle threads still spinning), and each B is compared
 * with the A before and after it, which cancels a steady drift of the machine. */
static int run_pairs(ab_side s[2], const ab_opts *o)
{
    double sec;
    for (int i = -AB_WARMUP_PAIRS; i <= o->pairs; i++)
        for (int l = 0; l < (i < o->pairs ? 2 : 1); l++) {
            if (time_side(&s[l], o, &sec, o->lib[l]))
                return -1;
            if (i >= 0)
                s[l].wall[i] = sec;
        }
    return 0;
}

int main(int argc, char **argv)
{
    ab_opts o;
    int st = parse_args(argc, argv, &o);
    if (st)
        return st < 0 ? 0 : st;
    ab_data d = {0};
    ab_side s[2];
    memset(s, 0, sizeof s);
    int rc = 1;
    for (int l = 0; l < 2; l++)
        if (load_api(o.lib[l], &s[l].api))
            goto done;
    if ((st = check_op(&o, &s[0].api))) {
        rc = st;
        goto done;
    }
    if (make_data(&o, &d)) {
        fprintf(stderr, "kd-ab: out of memory\n");
        goto done;
    }
    for (int l = 0; l < 2; l++)
        if (make_side(&s[l], &o, l ? o.m_b : o.m, &d, o.lib[l]))
            goto done;
    ab_result r;
    if (pick_calls(s, &o) || run_pairs(s, &o) || summarize(s, o.pairs, &r))
        goto done;
    if (o.json)
        rc = print_json(&o, s, &r) ? 1 : 0;
    else
        print_table(&o, s, &r);
    if (fflush(stdout) || ferror(stdout))
        rc = 1;
    else if (!o.json)
        rc = 0;
done:
    for (int l = 0; l < 2; l++)
        if (s[l].api.tensor_free)
            free_side(&s[l]);
    free_data(&d);
    return rc;
}
