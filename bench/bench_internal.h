/* kdispatch bench: the plan (cases), the measured rows and the reports, shared by bench.c
 * (planning and timing) and bench_report.c (table, sweep matrix, CSV, JSON, plot). */
#ifndef KD_BENCH_INTERNAL_H
#define KD_BENCH_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "kdispatch.h"
#include "membw.h"

#define BENCH_MAX_M 8
#define BENCH_MAX_TARGETS 66
#define BENCH_MAX_REPEATS 100

/* One backend on one device: what a row was measured on. */
typedef struct bench_target {
    kd_context *ctx;
    int owns_ctx;       /* a per-device context (--all-devices) */
    kd_backend_id backend;
    char label[32];     /* "cpu", "cpu-exact" (or "cpu-q8"), "opencl", "opencl:1", "cuda" */
    char device[512];   /* the backend's one-line device description */
    double device_bw;   /* bytes/s: the host read bandwidth for cpu; for an offload device
                           a large residual add on it; 0 if it could not be measured */
    unsigned run_flags; /* kd_run flags of its calls: the cpu GEMV path it times */
    int gemv_only;      /* the cpu's other GEMV path: headline GEMV rows only */
} bench_target;

typedef enum bench_section {
    BENCH_HEADLINE = 0, /* fixed model shapes: GEMV N x K, elementwise at 64 MiB */
    BENCH_SWEEP,        /* working sets from --min-size to --max-size */
    BENCH_LAUNCH        /* one-element op: launch-and-wait overhead */
} bench_section;

typedef struct bench_case {
    bench_section section;
    kd_op op;
    long long m;        /* rows of the activation (1: single-row kernel) */
    int64_t n, k;       /* row length (GEMV: N); GEMV K, else 0 */
    int target;
    double bytes;       /* bytes one call must move: its working set */
} bench_case;

typedef struct bench_row {
    bench_case c;
    int ok;             /* 0: the op failed on this target (message printed) */
    int repeats, inner; /* samples, and calls timed together in each sample */
    int weight_copies;  /* GEMV weights cycled through (--cold-weights), else 1 */
    double median_s, min_s, max_s, p25_s, p75_s; /* seconds per call */
    /* Paired with the host read bandwidth (the cpu's headline elementwise cases, whose
     * working sets are far past the LLC): one bandwidth pass after each sample, so that a
     * drift of the machine's bandwidth during the run moves both. 0 where not measured. */
    double near_bw;   /* bytes/s: the median of those passes */
    double near_frac; /* the median over samples of the sample's bytes/s over its pass */
} bench_row;

typedef struct bench_opts {
    int use_backend[KD_BACKEND_COUNT];
    int use_op[KD_OP_COUNT];
    long long m[BENCH_MAX_M];
    int nm;
    int quick, repeats, all_devices, no_sweep, no_headline, progress;
    int default_path_only; /* --default-path: no row for the other GEMV path */
    int borrow_weights;    /* --borrow-weights: GEMV weights borrowed, not copied */
    int cold_weights;      /* --cold-weights: GEMV weights cycled through copies */
    long long min_size, max_size; /* sweep bounds in bytes; 0: defaults */
    double warmup_s, sample_s;    /* warm-up time per case, least time of one sample */
    double budget_s;              /* time for the samples of a slow case */
    const char *csv, *json, *plot, *metrics;
    long long gemv_n, gemv_k;     /* --n/--k: headline GEMV shape at the --m sizes; 0: default */
} bench_opts;

typedef struct bench_host {
    double read_bw;       /* bytes/s, a thread per usable CPU, at the start */
    kd_membw membw;       /* its buffer, kept for the near bandwidth of each case */
    kd_host_caches caches;
    int cpus;             /* the CPUs the process may use (host_cpus.h) */
    int cpus_online;
    const char *cpus_bound; /* what set cpus: "online", "affinity", "cgroup quota" */
    char cpu_model[128];
    char huge_pages[32];  /* transparent huge page mode ("" where the host has none) */
    int huge_advice;      /* the library asks for them (KD_HUGE_PAGES, default on) */
} bench_host;

typedef struct bench_report {
    const bench_opts *o;
    const bench_host *host;
    const bench_target *targets;
    int ntargets;
    const bench_row *rows;
    int nrows;
    long long sweep_sizes[64];
    int nsweep;
} bench_report;

double bench_gbps(const bench_row *r);
double bench_frac(const bench_report *rep, const bench_row *r);
double bench_device_frac(const bench_report *rep, const bench_row *r);
const char *bench_section_name(bench_section s);

void bench_print_table_header(FILE *f);
void bench_print_row(FILE *f, const bench_report *rep, const bench_row *r);
void bench_print_sweep(FILE *f, const bench_report *rep);
void bench_print_speedups(FILE *f, const bench_report *rep);
/* The rows with a near bandwidth (nothing when none was measured). */
void bench_print_near(FILE *f, const bench_report *rep);
/* 0 written; -1 (message on stderr) if the file cannot be written. */
int bench_write_csv(const bench_report *rep, const char *path);
int bench_write_json(const bench_report *rep, const char *path);
/* Runs bench/plot.py on a CSV; 0 if it made the image. */
int bench_run_plot(const bench_report *rep, const char *csv, const char *png);

#endif
