/* Internal state of a context and a tensor; shared by context.c, tensor.c, dispatch.c. */
#ifndef KD_INTERNAL_H
#define KD_INTERNAL_H

#include <pthread.h>

#include "config.h"
#include "env.h"
#include "fault.h"
#include "kd_backend.h"
#include "metrics.h"

struct kd_backend_slot {
    const kd_backend_ops *ops; /* NULL: not built or not available */
    void *state;
    int available;
    kd_status init_status;     /* what init returned (KD_ERR_UNAVAILABLE if not built) */
    char reason[2048];         /* why absent, or the device in use */
};

struct kd_context {
    struct kd_backend_slot backend[KD_BACKEND_COUNT];
    kd_backend_id best_offload; /* KD_BACKEND_AUTO if none */
    kd_config config;
    kd_metrics metrics;
    kd_fault_plan fault;
    kd_settings settings;       /* options and environment, resolved once (env.c) */
    pthread_mutex_t error_lock; /* error and warnings */
    char error[2048];           /* the newest error of any thread */
    char warnings[2048];        /* kd_warn's lines, oldest first */
    uint64_t serial;            /* distinguishes contexts for per-thread error slots */
};

struct kd_tensor {
    kd_context *ctx;
    kd_type type;
    int64_t rows, cols;
    size_t nbytes;
    void *host;        /* host copy: the cpu backend's memory */
    int host_owned;    /* 0: borrowed (kd_tensor_quant_borrow) */
    int64_t grouped_rows; /* quantized host copy: rows stored in row groups (kd_row_groups.h) */
    int valid[KD_BACKEND_COUNT]; /* which copies hold the newest data; [CPU] is host */
    void *dev[KD_BACKEND_COUNT]; /* device buffers of offload backends */
};

/* Makes t's newest data present on backend b (transfers counted). */
kd_status kd_tensor_make_resident(kd_context *ctx, kd_tensor *t, kd_backend_id b);
/* Prepares t as an output on backend b: buffer allocated; after the op, only b is valid. */
kd_status kd_tensor_prepare_output(kd_context *ctx, kd_tensor *t, kd_backend_id b);
void kd_tensor_mark_written(kd_tensor *t, kd_backend_id b);
/* The buffer the backend's kernels take: host pointer for cpu, device buffer otherwise. */
void *kd_tensor_buffer(const kd_tensor *t, kd_backend_id b);
/* Rows of that buffer in row groups (kd_row_groups.h): only the host copy has them. */
int64_t kd_tensor_buffer_groups(const kd_tensor *t, kd_backend_id b);

#endif
