/*
 * The backend interface. Each backend (cpu, opencl, cuda) is one table: its function
 * pointers and what the dispatcher needs to know of it (offload or not, default
 * thresholds, preference rank and launch dialect by device kind), defined in its own
 * folder and listed once in registry.c. A backend's id is its place in the registry: the
 * built-in three have the ids of kdispatch.h's enum, a further one takes the next id, by
 * its line in registry.c or, for tests, by kd_backend_register at run time. Nothing else
 * names a backend: its name, defaults and rank come from its table. Entries marked
 * "optional" may be NULL.
 */
#ifndef KD_BACKEND_H
#define KD_BACKEND_H

#include <stdio.h>
#include "geometry.h"
#include "kdispatch.h"

/* One op call after validation, operands resolved to the backend's own buffers
 * (host pointers for cpu, cl_mem for opencl, CUdeviceptr cast to void* for cuda). */
typedef struct kd_call {
    kd_op op;
    int64_t m;            /* batch rows (1: single-row kernel) */
    int64_t n;            /* row length; for GEMV the output width N */
    int64_t k;            /* GEMV input width K (multiple of 256); 0 otherwise */
    void *src[2];         /* see kd_op_desc for the order */
    void *dst;
    int64_t w_groups;     /* GEMV on the host copy: leading rows of W in row groups
                           * (kd_row_groups.h); 0: all rows in GGUF order */
    const uint32_t *pos;  /* ROPE positions, host memory, m of them */
    float eps;
    float rope_base;
    int n_heads, head_dim;
    kd_rope_mode rope_mode;
    unsigned flags;       /* KD_RUN_* */
} kd_call;

/* What the dispatcher assumes of one kind of device of a backend. Zero-initialised: never
 * offloaded to automatically (only when forced). */
typedef struct kd_backend_device_kind {
    /* Default thresholds (config.h): an op offloads when its data_size > threshold.
     * data_size is elements; GEMV: multiply-adds. 0: "never" until configured. */
    uint64_t threshold_rowwise; /* rmsnorm, rope, swiglu, residual_add */
    uint64_t threshold_gemv;    /* q4k_gemv, q6k_gemv */
    /* Offload preference: of the offload backends present, the one with the highest rank
     * takes the automatic offloads. 0: never chosen automatically. */
    int rank;
    kd_dialect dialect;         /* launch geometry (geometry.h), for device backends */
} kd_backend_device_kind;

typedef struct kd_backend_ops {
    const char *name;       /* "cpu", "opencl", "cuda": kd_backend_name, config and KD_* names */
    int is_offload;         /* 1: an offload backend, counted as gpu in the metrics; every
                             * backend but the cpu (id 0) is one */
    const char *not_built;  /* non-NULL: the sources were not built, and why (the table
                             * then has only name and is_offload: see registry.c) */
    /* By the kind of device in use: [0] a CPU device, [1] a GPU. */
    kd_backend_device_kind device[2];
    int assumed_gpu;        /* the device kind before init, and always when is_gpu is NULL */

    /* Finds a device and creates the backend state. When absent: KD_ERR_UNAVAILABLE and
     * the reason in why. */
    kd_status (*init)(kd_context *ctx, void **state, char *why, size_t why_cap);
    /* Frees the backend state. */
    void (*shutdown)(void *state);
    /* One line naming the device in use. */
    void (*describe)(void *state, char *buf, size_t cap);
    /* optional: devices as data, without a context. Sets *count to the number of devices
     * the backend sees (0 when its driver is missing) and, when 0 <= index < *count, fills
     * *out (backend and index included). KD_ERR_UNAVAILABLE with why filled when the
     * driver fails; a missing driver is KD_OK with *count = 0. */
    kd_status (*device_info)(int index, kd_device_info *out, int *count, char *why,
                             size_t why_cap);
    /* optional: 1 if the device in use is a GPU, 0 if not (picks device[] above; NULL:
     * the device kind is assumed_gpu). */
    int (*is_gpu)(void *state);
    /* optional: the GEMV paths the device in use offers, a mask of kd_gemv_path, and the
     * default one in *default_path (NULL: exact only). */
    unsigned (*gemv_paths)(void *state, unsigned *default_path);

    /* Device memory: alloc, release, upload and download NULL for a backend that runs on host
     * memory (cpu). */
    kd_status (*alloc)(kd_context *ctx, void *state, size_t bytes, void **buf);
    /* optional: a read-only buffer over host bytes that stay unchanged while it lives
     * (quantized weights), used in place where the device shares host memory: no copy.
     * KD_ERR_UNAVAILABLE (or NULL): alloc and upload instead. Freed with release. */
    kd_status (*wrap_host)(kd_context *ctx, void *state, const void *host, size_t bytes,
                           void **buf);
    void (*release)(void *state, void *buf);
    kd_status (*upload)(kd_context *ctx, void *state, void *buf, const void *src,
                        size_t bytes);
    kd_status (*download)(kd_context *ctx, void *state, void *buf, void *dst, size_t bytes);

    /* Runs one validated op and waits for it to finish. */
    kd_status (*run)(kd_context *ctx, void *state, const kd_call *call);
} kd_backend_ops;

/* ---- the registry (registry.c) ---- */

/* Backends registered: ids 0 .. kd_backend_count()-1 (the built-in three, then any
 * registered at run time). */
int kd_backend_count(void);
/* The table of backend b; NULL when no backend has that id. A backend whose sources were
 * not built has a table with not_built set. */
const kd_backend_ops *kd_backend_ops_of(kd_backend_id b);
/* 1 when b is registered and built (its functions can be called). */
int kd_backend_built(kd_backend_id b);
/* Registers one more backend at run time (tests: a backend outside the library): it takes
 * the next free id, which is returned. KD_BACKEND_COUNT when the registry is full, ops is
 * incomplete (name, is_offload, init, shutdown, describe and run are required) or its
 * name is taken.
 * Register before creating the contexts that should see it; not concurrently with them. */
kd_backend_id kd_backend_register(const kd_backend_ops *ops);
/* The kind of device backend b runs on, from its state (1: GPU); assumed_gpu without one. */
int kd_backend_device_is_gpu(const kd_backend_ops *ops, void *state);

/* The built-in backends' tables, listed in registry.c. */
extern const kd_backend_ops kd_cpu_backend;
#ifdef KD_HAVE_OPENCL
extern const kd_backend_ops kd_opencl_backend;
#endif
#ifdef KD_HAVE_CUDA
extern const kd_backend_ops kd_cuda_backend;
#endif

/* Records an error on the context and returns s (printf-style message). */
kd_status kd_error(kd_context *ctx, kd_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Records a warning on the context (something degraded but the call goes on, e.g. a
 * corrupted cache entry that was rebuilt); read by kd_warnings(). Never printed here. */
void kd_warn(kd_context *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Fault injection for tests (KD_FAULT, see fault.c): returns 1 when the n-th call of
 * this kind on this backend must fail. */
typedef enum kd_fault_kind { KD_FAULT_ALLOC = 0, KD_FAULT_BUILD, KD_FAULT_LAUNCH } kd_fault_kind;
int kd_fault_hit(kd_context *ctx, kd_backend_id b, kd_fault_kind kind);

int kd_context_cpu_threads(const kd_context *ctx);
/* What the context was asked for: kd_context_options, else the environment, validated
 * once at kd_context_create (env.h). */
struct kd_settings;
const struct kd_settings *kd_context_settings(const kd_context *ctx);

#endif /* KD_BACKEND_H */
