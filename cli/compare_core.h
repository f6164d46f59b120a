/*
 * The core of `kdispatch compare`, as a library so that tests can run it in-process:
 * every op, single-row and batched, on every backend present, against the double-precision
 * oracle and pairwise between backends, on a built-in model shape or on the shapes and
 * Q4_K / Q6_K weights of a GGUF model file.
 */
#ifndef KD_COMPARE_CORE_H
#define KD_COMPARE_CORE_H

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

/* Runs the comparison and prints the table (or JSON) to out; messages about inputs that
 * cannot be used go to stderr. Returns 0 when every check passed, 1 when any failed (a
 * wrong value or a backend that could not run an op), 2 when the inputs are unusable (a
 * GGUF file refused, a named tensor missing or not Q4_K/Q6_K, a requested backend absent). */
int kd_compare_run(kd_context *ctx, const kd_compare_opts *o, FILE *out);

/* For kdispatch fleet: the seed compare uses for the random problem of op at batch m. */
uint64_t kd_compare_problem_seed(const kd_compare_opts *o, kd_op op, long long m);

#endif
