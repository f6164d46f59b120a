/*
 * kdispatch: a portable kernel dispatch runtime for LLM inference kernels.
 *
 * Six ops (RmsNorm, Rope, Swiglu, ResidualAdd, Q4_K GEMV, Q6_K GEMV), each with a
 * single-row kernel (M = 1) and a batched kernel (M > 1), on three backends: the host
 * CPU, OpenCL through the ICD loader and NVIDIA GPUs through the CUDA driver API.
 *
 * This is the one public header. Handles are opaque; every call returns a kd_status and
 * leaves a message in the context (kd_last_error) that says what was wrong.
 */
#ifndef KDISPATCH_H
#define KDISPATCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KD_VERSION_MAJOR 0
#define KD_VERSION_MINOR 1
#define KD_VERSION_PATCH 0

const char *kd_version(void); /* "0.1.0" */

typedef enum kd_status {
    KD_OK = 0,
    KD_ERR_NULL,        /* a required pointer was NULL */
    KD_ERR_SHAPE,       /* tensor shapes do not fit the op */
    KD_ERR_ALIGN,       /* K is not a multiple of the quant block size (256) */
    KD_ERR_ZERO_SIZE,   /* a dimension is zero or negative */
    KD_ERR_TOO_LARGE,   /* the problem does not fit the backend or device */
    KD_ERR_ARG,         /* any other invalid argument */
    KD_ERR_TYPE,        /* wrong tensor type for this argument */
    KD_ERR_NOMEM,       /* host or device allocation failed */
    KD_ERR_UNAVAILABLE, /* backend not built, no driver, or no device */
    KD_ERR_BUILD,       /* a device program failed to build */
    KD_ERR_LAUNCH,      /* a kernel launch or device call failed */
    KD_ERR_IO,          /* a file could not be read or written */
    KD_ERR_FORMAT,      /* truncated or corrupt input file (GGUF, PTX, config) */
    KD_ERR_MISMATCH,    /* a numerical comparison failed */
    KD_STATUS_COUNT
} kd_status;

const char *kd_status_name(kd_status s); /* "KD_ERR_SHAPE" */

typedef enum kd_backend_id {
    KD_BACKEND_AUTO = -1, /* let the dispatcher choose */
    KD_BACKEND_CPU = 0,
    KD_BACKEND_OPENCL = 1,
    KD_BACKEND_CUDA = 2,
    KD_BACKEND_COUNT
} kd_backend_id;

const char *kd_backend_name(kd_backend_id b);           /* "cpu", "opencl", "cuda" */
kd_backend_id kd_backend_from_name(const char *name);   /* KD_BACKEND_COUNT if unknown */

typedef enum kd_type { KD_TYPE_F32 = 0, KD_TYPE_Q4_K, KD_TYPE_Q6_K, KD_TYPE_COUNT } kd_type;

const char *kd_type_name(kd_type t);

typedef enum kd_op {
    KD_OP_RMSNORM = 0,
    KD_OP_ROPE,
    KD_OP_SWIGLU,
    KD_OP_RESIDUAL_ADD,
    KD_OP_Q4K_GEMV,
    KD_OP_Q6K_GEMV,
    KD_OP_COUNT
} kd_op;

const char *kd_op_name(kd_op op);      /* "rmsnorm", "rope", ..., "q4k_gemv" */
kd_op kd_op_from_name(const char *s);  /* KD_OP_COUNT if unknown */

typedef enum kd_rope_mode { KD_ROPE_NORMAL = 0, KD_ROPE_NEOX = 1 } kd_rope_mode;

typedef struct kd_context kd_context;
typedef struct kd_tensor kd_tensor;

/* ---- context ---------------------------------------------------------------------- */

typedef struct kd_context_options {
    int cpu_threads;       /* 0: $KD_CPU_THREADS, else one per online core */
    int disable_opencl;    /* 1: do not probe OpenCL */
    int disable_cuda;      /* 1: do not probe CUDA */
    const char *config;    /* dispatcher config file; NULL: $KD_CONFIG, else built-in */
} kd_context_options;

/* Creates a context: probes every backend built in. A backend that is absent is not an
 * error; kd_backend_available() says so and kd_backend_reason() says why. */
kd_status kd_context_create(const kd_context_options *opts, kd_context **out);
void kd_context_destroy(kd_context *ctx);

/* The message of the last failed call on this context ("" if none). With ctx = NULL: the
 * message of this thread's last failed kd_context_create. */
const char *kd_last_error(const kd_context *ctx);

int kd_backend_available(const kd_context *ctx, kd_backend_id b);
/* Why the backend is absent, or a one-line description of its device when present. */
const char *kd_backend_reason(const kd_context *ctx, kd_backend_id b);

/* ---- tensors ---------------------------------------------------------------------- */

/* An f32 matrix of rows x cols, row-major. data may be NULL (zero-filled). */
kd_status kd_tensor_f32(kd_context *ctx, int64_t rows, int64_t cols, const float *data,
                        kd_tensor **out);

/* A quantized weight of rows x cols (cols a multiple of 256) from raw GGUF block bytes,
 * rows * cols/256 blocks, row-major. The bytes are copied. */
kd_status kd_tensor_quant(kd_context *ctx, kd_type type, int64_t rows, int64_t cols,
                          const void *blocks, size_t nbytes, kd_tensor **out);

/* As kd_tensor_quant but borrows the bytes (e.g. a memory-mapped GGUF file): they must
 * outlive the tensor and stay unchanged. */
kd_status kd_tensor_quant_borrow(kd_context *ctx, kd_type type, int64_t rows, int64_t cols,
                                 const void *blocks, size_t nbytes, kd_tensor **out);

/* Copies an f32 tensor's values to host memory (count = rows*cols floats), transferring
 * from the backend that holds the newest data if needed (counted in the metrics). */
kd_status kd_tensor_read(kd_context *ctx, kd_tensor *t, float *dst, size_t count);
/* Overwrites an f32 tensor's values from host memory. */
kd_status kd_tensor_write(kd_context *ctx, kd_tensor *t, const float *src, size_t count);

void kd_tensor_free(kd_tensor *t);
int64_t kd_tensor_rows(const kd_tensor *t);
int64_t kd_tensor_cols(const kd_tensor *t);
kd_type kd_tensor_type(const kd_tensor *t);
/* Backend that holds the newest copy of the tensor's data. */
kd_backend_id kd_tensor_residency(const kd_tensor *t);

/* ---- ops -------------------------------------------------------------------------- */

/* One op call. src[] and params by op:
 *   RMSNORM:      src[0] x[M,n], src[1] w[1,n];               eps
 *   ROPE:         src[0] x[M,H*D]; pos[M] (host array);        n_heads, head_dim, rope_base, rope_mode
 *   SWIGLU:       src[0] gate[M,n], src[1] up[M,n]
 *   RESIDUAL_ADD: src[0] x[M,n], src[1] r[M,n]
 *   Q4K_GEMV:     src[0] W[N,K] (Q4_K), src[1] x[M,K];         dst y[M,N]
 *   Q6K_GEMV:     src[0] W[N,K] (Q6_K), src[1] x[M,K];         dst y[M,N]
 * dst has the shape of the output; M = rows of the activation (1: single-row kernel). */
typedef struct kd_op_desc {
    kd_op op;
    const kd_tensor *src[2];
    kd_tensor *dst;
    float eps;             /* RMSNORM; 0 means 1e-5 */
    int n_heads, head_dim; /* ROPE */
    float rope_base;       /* ROPE; 0 means 10000 */
    kd_rope_mode rope_mode;
    const uint32_t *pos;   /* ROPE: M positions */
} kd_op_desc;

enum {
    KD_RUN_CPU_SCALAR = 1u << 0, /* cpu backend: the plain scalar path (reference) */
    KD_RUN_NO_FALLBACK = 1u << 1 /* do not fall back to cpu when an offload fails */
};

/* Validates and runs one op. backend = KD_BACKEND_AUTO lets the dispatcher choose by
 * size; another value forces that backend. A failed offload falls back to cpu (counted)
 * unless KD_RUN_NO_FALLBACK is set. */
kd_status kd_run(kd_context *ctx, const kd_op_desc *d, kd_backend_id backend, unsigned flags);

/* Which backend the dispatcher would choose for this op (pure: same input, same answer). */
kd_backend_id kd_dispatch_decide(const kd_context *ctx, const kd_op_desc *d);

/* Convenience wrappers through the dispatcher. */
kd_status kd_rmsnorm(kd_context *ctx, const kd_tensor *x, const kd_tensor *w, float eps,
                     kd_tensor *y);
kd_status kd_rope(kd_context *ctx, const kd_tensor *x, const uint32_t *pos, int n_heads,
                  int head_dim, float base, kd_rope_mode mode, kd_tensor *y);
kd_status kd_swiglu(kd_context *ctx, const kd_tensor *gate, const kd_tensor *up, kd_tensor *y);
kd_status kd_residual_add(kd_context *ctx, const kd_tensor *x, const kd_tensor *r,
                          kd_tensor *y);
kd_status kd_gemv(kd_context *ctx, const kd_tensor *w, const kd_tensor *x, kd_tensor *y);

/* ---- metrics ---------------------------------------------------------------------- */

typedef struct kd_metrics_snapshot {
    uint64_t cpu_dispatches;  /* ops run on the host cpu backend */
    uint64_t gpu_dispatches;  /* ops run on any offload backend */
    uint64_t total_dispatches;
    double gpu_ratio;         /* gpu / total, 0 when total is 0 */
    uint64_t fallbacks;       /* offloads that failed and ran on cpu */
    uint64_t bytes_to_device;
    uint64_t bytes_from_device;
    uint64_t per_backend[KD_BACKEND_COUNT];
} kd_metrics_snapshot;

void kd_metrics_get(const kd_context *ctx, kd_metrics_snapshot *out);
void kd_metrics_reset(kd_context *ctx);
/* Writes the metrics as JSON ("json") or Prometheus text ("prom") into buf; returns the
 * length it needed (like snprintf). */
size_t kd_metrics_export(const kd_context *ctx, const char *format, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* KDISPATCH_H */
