/* q8-kernel-ab's driver: times two builds of one cpu q8 kernel file in one process, the
 * kernels alone (no pool, no quantizer), calls alternating A B A B. bench/q8-kernel-ab.sh
 * compiles the file twice, with its kernel table renamed to kd_q8_ab_a and kd_q8_ab_b,
 * and links them here (docs/ab.md). With the weights and x in the caches, a change to a
 * block function shows within 1-2 % even on a VM whose GEMV timings move by 30 %.
 *
 * The weights are random bytes with sane f16 scales, x random bytes in whatever layout the
 * kernels read (its values are not a valid quantization: this times, it does not check
 * the math; test_cpu_q8 does). A and B get the same inputs; the largest relative
 * difference of their outputs is printed (0 when a change keeps the arithmetic). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemv_q8.h"

extern const kd_q8_kernels kd_q8_ab_a, kd_q8_ab_b;

typedef struct ab_opts {
    int q6k;       /* weight type: Q6_K, else Q4_K */
    int groups;    /* row groups (the layout of copied weights with K > 8192), else GGUF order */
    int64_t nb;    /* blocks per weight row */
    int64_t rows;  /* weight rows (a multiple of KD_ROW_GROUP with groups) */
    int reps;      /* timed pairs */
    int mc[KD_Q8_MAX_MC];
    int n_mc;
} ab_opts;

static void usage(FILE *f)
{
    fputs("usage: q8-kernel-ab [--type q4k|q6k] [--layout groups|rows] [--nb N] [--rows N]\n"
          "                    [--mc LIST] [--reps N]\n"
          "Times kernel tables kd_q8_ab_a (A) and kd_q8_ab_b (B), linked in by\n"
          "bench/q8-kernel-ab.sh, alternating, per tile size mc (rows of x, 1..8;\n"
          "default 1,8). Defaults: q4k, groups, nb 56 (K = 14336), rows 128, reps 40.\n"
          "Prints per mc the mean and best ns per weight block of each and B / A.\n",
          f);
}

static int parse_mc(const char *s, ab_opts *o)
{
    o->n_mc = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > KD_Q8_MAX_MC || o->n_mc == KD_Q8_MAX_MC)
            return -1;
        o->mc[o->n_mc++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return o->n_mc ? 0 : -1;
}

static int parse(int argc, char **argv, ab_opts *o)
{
    *o = (ab_opts){0, 1, 56, 128, 40, {1, 8}, 2};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (!v)
            return -1;
        i++;
        if (!strcmp(a, "--type") && (!strcmp(v, "q4k") || !strcmp(v, "q6k")))
            o->q6k = !strcmp(v, "q6k");
        else if (!strcmp(a, "--layout") && (!strcmp(v, "groups") || !strcmp(v, "rows")))
            o->groups = !strcmp(v, "groups");
        else if (!strcmp(a, "--nb") && atoll(v) > 0 && atoll(v) <= 4096)
            o->nb = atoll(v);
        else if (!strcmp(a, "--rows") && atoll(v) > 0 && atoll(v) <= 65536)
            o->rows = atoll(v);
        else if (!strcmp(a, "--reps") && atoi(v) > 0 && atoi(v) <= 10000)
            o->reps = atoi(v);
        else if (strcmp(a, "--mc") || parse_mc(v, o) != 0)
            return -1;
    }
    if (o->groups && o->rows % KD_ROW_GROUP)
        return -1;
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Random weights with f16 scales near 1/64 (0x2400), so the sums stay finite. */
static void *make_weights(const ab_opts *o)
{
    size_t bb = o->q6k ? sizeof(kd_block_q6_K) : sizeof(kd_block_q4_K), n = (size_t)(o->rows * o->nb);
    unsigned char *w = aligned_alloc(64, (bb * n + 63) / 64 * 64);
    if (!w)
        return NULL;
    for (size_t i = 0; i < bb * n; i++)
        w[i] = (unsigned char)rand();
    for (size_t i = 0; i < n; i++) {
        if (o->q6k) {
            ((kd_block_q6_K *)w)[i].d = 0x2400;
        } else {
            ((kd_block_q4_K *)w)[i].d = 0x2400;
            ((kd_block_q4_K *)w)[i].dmin = 0x2400;
        }
    }
    return w;
}

/* x: random qs and sums, every float field 1/128 (d, xm, the lane sums' d slots). */
static kd_q8_block *make_x(const ab_opts *o)
{
    size_t n = (size_t)(KD_Q8_MAX_MC * o->nb);
    kd_q8_block *x = aligned_alloc(64, sizeof *x * n);
    if (!x)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < KD_QK_K; j++)
            x[i].qs[j] = (int8_t)(rand() % 255 - 127);
        x[i].d = 1.0f / 128;
        for (int j = 0; j < 4; j++)
            x[i].pad1[j] = 1.0f / 128;
        if (o->q6k)
            for (int j = 0; j < KD_QK_K / 16; j++)
                x[i].s.bsums[j] = (int16_t)(rand() % 4065 - 2032);
        else
            for (int j = 0; j < KD_QK_K / 32; j++)
                x[i].s.xm[j] = 1.0f / 128;
    }
    return x;
}

static kd_q8_row_fn kernel(const kd_q8_kernels *k, const ab_opts *o)
{
    return o->q6k ? (o->groups ? k->q6k_groups : k->q6k) : (o->groups ? k->q4k_groups : k->q4k);
}

/* ns per weight block of one call of f over all rows at tile size mc, the mean of calls
 * calls back to back */
static double time_call(kd_q8_row_fn f, const kd_q8_job *j, int mc, int calls)
{
    double t0 = now_s();
    for (int c = 0; c < calls; c++)
        f(j, 0, j->n, 0, mc);
    return (now_s() - t0) / calls / (double)(j->n * j->nb) * 1e9;
}

static double max_rel_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / (fabs((double)a[i]) + 1e-30);
        if (d > m || d != d)
            m = d;
    }
    return m;
}

/* Times A and B at tile size mc (calls doubled until a timing lasts 2 ms) and prints the
 * line. */
static void run_mc(const ab_opts *o, void *w, kd_q8_block *x, int mc, float *ya, float *yb)
{
    kd_q8_job ja = {w, x, ya, o->rows, o->nb, mc, o->groups ? o->rows : 0}, jb = ja;
    jb.y = yb;
    kd_q8_row_fn fa = kernel(&kd_q8_ab_a, o), fb = kernel(&kd_q8_ab_b, o);
    int calls = 1;
    for (double t = 0; t * calls * (double)(o->rows * o->nb) < 2e6 && calls < (1 << 20); calls *= 2)
        t = time_call(fa, &ja, mc, calls); /* also the warm-up */
    time_call(fb, &jb, mc, calls);
    double sum[2] = {0, 0}, best[2] = {INFINITY, INFINITY};
    for (int r = 0; r < o->reps; r++) {
        double t[2] = {time_call(fa, &ja, mc, calls), time_call(fb, &jb, mc, calls)};
        for (int s = 0; s < 2; s++) {
            sum[s] += t[s];
            best[s] = t[s] < best[s] ? t[s] : best[s];
        }
    }
    printf("%-4s %-6s mc=%d  A mean %7.2f best %7.2f  B mean %7.2f best %7.2f  ns/block  "
           "B/A mean %.3f best %.3f  max rel diff %.2g\n",
           o->q6k ? "q6k" : "q4k", o->groups ? "groups" : "rows", mc, sum[0] / o->reps, best[0],
           sum[1] / o->reps, best[1], sum[1] / sum[0], best[1] / best[0],
           max_rel_diff(ya, yb, (size_t)(mc * o->rows)));
}

int main(int argc, char **argv)
{
    ab_opts o;
    if (parse(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    srand(1);
    void *w = make_weights(&o);
    kd_q8_block *x = make_x(&o);
    float *ya = malloc(sizeof(float) * (size_t)(KD_Q8_MAX_MC * o.rows));
    float *yb = malloc(sizeof(float) * (size_t)(KD_Q8_MAX_MC * o.rows));
    if (!w || !x || !ya || !yb) {
        fprintf(stderr, "q8-kernel-ab: out of memory\n");
        return 1;
    }
    for (int i = 0; i < o.n_mc; i++)
        run_mc(&o, w, x, o.mc[i], ya, yb);
    free(w);
    free(x);
    free(ya);
    free(yb);
    return 0;
}
