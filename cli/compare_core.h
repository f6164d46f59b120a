/*
 * The core of `kdispatch compare`, as a library so that tests can run it in-process:
 * every op, single-row and batched, on every backend present, against the double-precision
 * oracle and pairwise between backends, on a built-in model shape or on the shapes and
 * Q4_K / Q6_K weights of a GGUF model file.
 */
#ifndef KD_COMPARE_CORE_H
#define KD_COMPARE_CORE_H

#include <stdint.h>
#include <stdio.h>

#include "kd_oracle.h"
#include "kdispatch.h"
#include "model_shapes.h"

#define KD_COMPARE_MAX_M 16
#define KD_COMPARE_M_LIMIT 4096 /* the largest batch size M --m takes */
#define KD_COMPARE_MAX_TENSORS 64
#define KD_COMPARE_DEFAULT_MAX_TENSORS 4

/* One more variant beside the backends, for tests: run computes the op of p into y
 * (p->out_count floats) however it likes, e.g. a deliberately wrong kernel, so a test can
 * show that a wrong result makes compare fail. */
typedef struct kd_compare_extra_variant {
    const char *name;
    kd_status (*run)(kd_context *ctx, kd_problem *p, float *y, void *user);
    void *user;
} kd_compare_extra_variant;

typedef struct kd_compare_opts {
    const kd_model_shape *shape; /* built-in shape; ignored when gguf is set */
    const char *gguf;            /* model file: shapes and the GEMV weights */
    const char *tensors[KD_COMPARE_MAX_TENSORS]; /* GEMV weights by name; none: pick */
    int ntensors;
    int max_tensors;             /* weights picked when none are named */
    long long rows;              /* GGUF weights: check only the first rows (0: all) */
    int copy_weights;            /* GGUF weights copied into the library's layout
                                    (kd_tensor_quant: the cpu's row groups) instead of
                                    borrowed from the mapping in GGUF order */
    long long m[KD_COMPARE_MAX_M];
    int nm;
    int use_backend[KD_BACKEND_COUNT]; /* all 0: every backend present */
    int use_op[KD_OP_COUNT];           /* all 0: every op */
    unsigned long long seed;
    double tol;
    int json;
    const kd_compare_extra_variant *extra; /* NULL, or one more variant (tests) */
    int skip_missing;            /* 1: a backend the machine has that did not start is
                                    reported, not a failure (--skip-missing) */
} kd_compare_opts;

/* A usable tolerance: finite, > 0 and <= 1 (inf would pass every check). */
int kd_compare_tol_ok(double tol);

/* Defaults: shape 8b, M = 1 and 8, seed 42, tolerance KD_TOLERANCE, 4 weights at most. */
void kd_compare_opts_init(kd_compare_opts *o);

/* ---- structured results ------------------------------------------------------------------ */

#define KD_COMPARE_MAX_VARIANTS (KD_BACKEND_COUNT + 3)
#define KD_COMPARE_ERROR_MAX 256
/* The cpu q8 GEMV path is held to this NMSE against the oracle (SPEC section 7), from this
 * many outputs (fewer are too noisy to hold to it; the rounding bound still holds). */
#define KD_COMPARE_Q8_NMSE_BUDGET 5e-4
#define KD_COMPARE_Q8_NMSE_MIN_OUTPUTS 64

/* One check: a variant's output against the oracle, or against another variant's. */
typedef struct kd_compare_check {
    kd_op op;
    long long m;                 /* batch size: 1 runs the single-row kernel */
    int64_t n, k;                /* outputs per row (GEMV: weight rows checked), inner size */
    const char *tensor;          /* a GGUF weight's name (tensor_len bytes, not NUL-ended;
                                    valid until kd_compare_result_free), or NULL: random */
    size_t tensor_len;
    const char *tensor_type;     /* its GGML type name */
    int64_t tensor_rows;         /* rows of the whole weight */
    int variant;                 /* index into kd_compare_result.variants */
    int reference;               /* the other variant's index, or -1: the oracle */
    kd_status status;            /* of the variant's run (checks against the oracle) */
    int no_input;                /* the problem's inputs could not be built */
    int q8;                      /* the cpu's q8 GEMV path: NMSE budget and rounding bound */
    kd_cmp cmp;                  /* max abs error, NMSE, values out of tolerance (q8:
                                    past the rounding bound) and the first (row * n + col) */
    double max_rel;              /* q8 only: max |a - ref| / max(1, |ref|) */
    int64_t count;               /* values compared */
    int pass;
    char error[KD_COMPARE_ERROR_MAX]; /* why it did not run or had no input, else "" */
} kd_compare_check;

typedef struct kd_compare_variant_info {
    const char *name;            /* cpu-scalar, a backend's name, cpu-q8, a test's extra */
    kd_backend_id backend;
    int q8;
    char detail[700];            /* what it runs (device, path) */
} kd_compare_variant_info;

typedef struct kd_compare_result {
    /* the model the problems follow */
    const char *gguf;            /* the model file, or NULL: the built-in shape */
    char arch[64];               /* the file's architecture (printable ASCII) */
    kd_model_shape shape;
    double eps, rope_base;
    int rope_neox;
    int nweights;                /* weights picked from the file */
    int copied_weights;          /* 1: they were copied (--copy-weights), 0: borrowed */
    uint64_t n_candidates;       /* Q4_K / Q6_K tensors in the file */
    int norm_from_file;          /* rmsnorm uses the file's norm weight */
    unsigned long long seed;
    double tol;
    kd_compare_variant_info variants[KD_COMPARE_MAX_VARIANTS];
    int nvariants;
    kd_compare_check *checks;
    int nchecks;
    int missing;                 /* installed backends that did not start */
    char notes[4096];            /* lines about the inputs, each ending in a line break */
    kd_gguf *file;               /* owned: the checks' tensor names point into it */
} kd_compare_result;

int kd_compare_failed(const kd_compare_result *r); /* checks that failed */
/* The verdict: every check passed and no installed backend was left out. */
int kd_compare_passed(const kd_compare_result *r);

/* Where the results go as they are made: begin once the problems are planned (the model,
 * the variants, the notes), check for each check when it is made, end after the last. */
typedef struct kd_compare_report {
    void (*begin)(void *self, const kd_compare_result *r);
    void (*check)(void *self, const kd_compare_result *r, const kd_compare_check *c);
    void (*end)(void *self, const kd_compare_result *r);
    void *self;
} kd_compare_report;

/* Runs every check into *res (free it with kd_compare_result_free, also after a failure),
 * telling rep (NULL: nobody) as it goes; messages about inputs that cannot be used go to
 * stderr. Returns 0 when all checks were made (they may have failed), 1 out of memory
 * part way, 2 when the inputs are unusable (then rep heard nothing). */
int kd_compare_collect(kd_context *ctx, const kd_compare_opts *o, const kd_compare_report *rep,
                       kd_compare_result *res);
void kd_compare_result_free(kd_compare_result *res);

/* ---- report writers (compare_report.c) ------------------------------------------------------ */

typedef struct kd_compare_writer {
    FILE *out;
    const char *last_tensor; /* text: the weight whose heading was printed last */
} kd_compare_writer;

/* The table: a header, a row per check as it is made, the verdict and every failure. */
kd_compare_report kd_compare_text_writer(kd_compare_writer *w, FILE *out);
/* One JSON document at the end (notes go to stderr). */
kd_compare_report kd_compare_json_writer(kd_compare_writer *w, FILE *out);

/* Runs the comparison and prints the table (or JSON) to out; messages about inputs that
 * cannot be used go to stderr. Returns 0 when every check passed, 1 when any failed (a
 * wrong value or a backend that could not run an op), 2 when the inputs are unusable (a
 * GGUF file refused, a named tensor missing or not Q4_K/Q6_K, a requested backend absent). */
int kd_compare_run(kd_context *ctx, const kd_compare_opts *o, FILE *out);

/* For kdispatch fleet: the seed compare uses for the random problem of op at batch m. */
uint64_t kd_compare_problem_seed(const kd_compare_opts *o, kd_op op, long long m);

#endif
