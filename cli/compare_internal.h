/*
 * What compare_core.c (running the checks) and compare_model.c (the model: a built-in
 * shape or a GGUF file's shapes and weights) share. Not for other callers.
 */
#ifndef KD_COMPARE_INTERNAL_H
#define KD_COMPARE_INTERNAL_H

#include "compare_core.h"

/* The model the problems are shaped after: a built-in shape or a GGUF file's. */
typedef struct model_src {
    kd_model_shape shape;
    char arch[64];
    kd_gguf *g;
    double eps, rope_base;
    int rope_from_file;          /* rope_mode is the architecture's, not seed-chosen */
    kd_rope_mode rope_mode;
    const kd_gguf_tensor_info *norm; /* an F32 norm weight of `hidden` values, or NULL */
    const kd_gguf_tensor_info *weights[KD_COMPARE_MAX_TENSORS];
    int nweights;
    uint64_t n_candidates;       /* Q4_K / Q6_K tensors in the file */
} model_src;

typedef struct variant {
    const char *name;
    kd_backend_id backend;
    unsigned flags;
    const kd_compare_extra_variant *extra; /* non-NULL: the test's variant */
    int q8; /* the cpu's q8 GEMV path: GEMV jobs only, held to the NMSE budget */
} variant;

/* One problem: an op at one batch size, on random blocks or on a GGUF weight. */
typedef struct job {
    kd_op op;
    long long m;
    int64_t n, k;
    const kd_gguf_tensor_info *weight; /* NULL: random inputs */
    int64_t weight_rows;               /* rows of the whole weight (n: the rows checked) */
    uint64_t seed;
} job;

typedef struct run_state {
    kd_context *ctx;
    const kd_compare_opts *o;
    const kd_compare_report *rep; /* NULL: nobody listens */
    kd_compare_result *res;       /* the checks and what the report needs */
    model_src src;
    variant v[KD_COMPARE_MAX_VARIANTS];
    int nv;
    job *jobs;
    int njobs, jobs_cap;
    int checks_cap;
} run_state;

/* Opens the model (-1 with a message on stderr when it cannot be used) and picks weights. */
int compare_open_model(run_state *s);
/* A note about the inputs, kept in s->res->notes. */
void compare_note(run_state *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int compare_op_selected(const kd_compare_opts *o, kd_op op);
kd_op compare_gemv_op_of(kd_type t);
/* Text from the model file made safe for a terminal ('?' for all but printable ASCII). */
void compare_printable(char *dst, size_t cap, const char *src, uint64_t len);

#endif
