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

/* KD_VERSION_MAJOR, _MINOR, _PATCH and KD_VERSION_STRING, generated from the version in
 * the top CMakeLists.txt (project(kdispatch VERSION ...)) and installed beside this file. */
#include "kdispatch_version.h"

/* Marks the public API: libkdispatch is compiled with -fvisibility=hidden, so a shared
 * build exports only what this header declares with KD_API. */
#ifndef KD_API
#if defined(__GNUC__) && __GNUC__ >= 4
#define KD_API __attribute__((visibility("default")))
#else
#define KD_API
#endif
#endif

KD_API const char *kd_version(void); /* KD_VERSION_STRING of the library, e.g. "0.1.0" */

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
    KD_ERR_UNSUPPORTED, /* the backend does not implement this op (the dispatcher falls back) */
    KD_STATUS_COUNT
} kd_status;

KD_API const char *kd_status_name(kd_status s); /* "KD_ERR_SHAPE" */

typedef enum kd_backend_id {
    KD_BACKEND_AUTO = -1, /* let the dispatcher choose */
    KD_BACKEND_CPU = 0,
    KD_BACKEND_OPENCL = 1,
    KD_BACKEND_CUDA = 2,
    /* Ids from 3 on belong to further backends, in the order they are registered (find
     * them by name). KD_BACKEND_COUNT is how many ids there can be: the size of
     * per-backend arrays, and kd_backend_from_name's answer for an unknown name. */
    KD_BACKEND_COUNT = 4
} kd_backend_id;

/* "cpu", "opencl", "cuda" or a further backend's name; "auto" for an id no backend has. */
KD_API const char *kd_backend_name(kd_backend_id b);
KD_API kd_backend_id kd_backend_from_name(const char *name);   /* KD_BACKEND_COUNT if unknown */

typedef enum kd_type { KD_TYPE_F32 = 0, KD_TYPE_Q4_K, KD_TYPE_Q6_K, KD_TYPE_COUNT } kd_type;

KD_API const char *kd_type_name(kd_type t);

typedef enum kd_op {
    KD_OP_RMSNORM = 0,
    KD_OP_ROPE,
    KD_OP_SWIGLU,
    KD_OP_RESIDUAL_ADD,
    KD_OP_Q4K_GEMV,
    KD_OP_Q6K_GEMV,
    KD_OP_COUNT
} kd_op;

KD_API const char *kd_op_name(kd_op op);      /* "rmsnorm", "rope", ..., "q4k_gemv" */
KD_API kd_op kd_op_from_name(const char *s);  /* KD_OP_COUNT if unknown */

typedef enum kd_rope_mode { KD_ROPE_NORMAL = 0, KD_ROPE_NEOX = 1 } kd_rope_mode;

typedef struct kd_context kd_context;
typedef struct kd_tensor kd_tensor;

/* ---- context ---------------------------------------------------------------------- */

/* The most cpu threads a context takes (option or KD_CPU_THREADS); more is an error. */
#define KD_MAX_CPU_THREADS 1024

/* Context options. Zero-initialise the struct (kd_context_options o = {0};) and set what
 * you need: a zero or NULL field means "as the environment says, else the default", and
 * fields added in later versions keep that meaning. A malformed value, here or in the
 * environment variable it stands for, makes kd_context_create fail with KD_ERR_ARG and a
 * message naming the field or variable. */
typedef struct kd_context_options {
    int cpu_threads;       /* 1..KD_MAX_CPU_THREADS; 0: $KD_CPU_THREADS, else one per CPU the
                            * process may use (online, less its affinity mask and cgroup quota) */
    int disable_opencl;    /* 1: do not probe OpenCL */
    int disable_cuda;      /* 1: do not probe CUDA */
    /* Dispatcher config file. NULL: $KD_CONFIG, else the per-user file
     * $XDG_CONFIG_HOME/kdispatch/kdispatch.conf (~/.config/kdispatch/kdispatch.conf) if it
     * exists, else the built-in defaults. "": the built-in defaults, no file. */
    const char *config;
    /* Device choice and cpu tuning (see kd_device_info_get for the indices): */
    const char *cpu_simd;        /* "scalar", "avx2", "vnni" (AVX2 with 256-bit int8 dot
                                  * products) or "avx512" caps the cpu backend's SIMD
                                  * level; NULL: $KD_CPU_SIMD, else the best the CPU has */
    const char *opencl_platform; /* index or name substring; NULL: $KD_OPENCL_PLATFORM */
    const char *opencl_device;   /* index or name substring; NULL: $KD_OPENCL_DEVICE. Without
                                  * a platform, index i is kd_device_info(OPENCL, i) */
    const char *cuda_device;     /* a device index; NULL: $KD_CUDA_DEVICE, else 0 */
} kd_context_options;

/* Creates a context: probes every backend built in. A backend that is absent is not an
 * error; kd_backend_available() says so and kd_backend_reason() says why. */
KD_API kd_status kd_context_create(const kd_context_options *opts, kd_context **out);
KD_API void kd_context_destroy(kd_context *ctx);

/* The message of the calling thread's last failed call on this context: errors are kept
 * per thread, so a thread sharing a context reads its own failure, never another
 * thread's. A thread that has had no failed call on ctx reads the newest message of any
 * thread ("" if none). The string stays valid until this thread's next call on ctx. With
 * ctx = NULL: the message of this thread's last failed kd_context_create. */
KD_API const char *kd_last_error(const kd_context *ctx);

/* Warnings: things that degraded without failing a call (a corrupted OpenCL program
 * cache entry that was deleted and rebuilt, an unusable cache directory), one per line,
 * oldest first, since the context was created. Copies at most cap - 1 bytes and a NUL
 * into buf; returns the full length ("" and 0 when none). The library never prints. */
KD_API size_t kd_warnings(const kd_context *ctx, char *buf, size_t cap);

/*
 * Thread safety.
 * - Separate contexts in separate threads never interact.
 * - One context may be shared by threads: kd_run, kd_dispatch_decide, kd_tensor_f32 /
 *   kd_tensor_quant* / kd_tensor_read / kd_tensor_write / kd_tensor_free on a thread's
 *   own tensors, kd_last_error, kd_warnings, kd_backend_available / kd_backend_reason /
 *   kd_backend_gemv_paths and the metrics calls may run concurrently. Each backend serializes its device
 *   work internally.
 * - A tensor is not: no two threads may use the same tensor at the same time (as an
 *   input or an output of kd_run, or in kd_tensor_read / write / free), since a use may
 *   move its data between the host and a device.
 * - kd_context_destroy must not run concurrently with any other call on that context.
 * - kd_context_create sets POCL_CACHE_DIR (see the README) when it is not set, and where
 *   the process may use fewer CPUs than are online, PoCL's thread count
 *   (POCL_CPU_MAX_CU_COUNT, POCL_MAX_PTHREAD_COUNT) when none of its variables is set:
 *   create the first context before starting threads that read the environment.
 */

KD_API int kd_backend_available(const kd_context *ctx, kd_backend_id b);
/* How the backend's start went: KD_OK (available); KD_ERR_UNAVAILABLE when it is not
 * built in, disabled, or the machine has no driver or device for it; any other status when
 * a driver or device is there but could not be started (out of memory, a failing
 * clCreateContext, a KD_OPENCL_DEVICE that names nothing): the machine has the backend
 * and it is missing, which kdispatch compare treats as a failure. */
KD_API kd_status kd_backend_init_status(const kd_context *ctx, kd_backend_id b);
/* Why the backend is absent, or a one-line description of its device when present. */
KD_API const char *kd_backend_reason(const kd_context *ctx, kd_backend_id b);

/* The two ways a backend may run the Q4_K / Q6_K GEMV (SPEC section 2): exact (f32
 * activations, the tight tolerance) or q8 (activations quantized to int8 blocks of 256,
 * NMSE <= 5e-4). */
typedef enum kd_gemv_path {
    KD_GEMV_EXACT = 1u << 0,
    KD_GEMV_Q8 = 1u << 1
} kd_gemv_path;
/* The GEMV paths backend b offers in this context, as a mask of kd_gemv_path (0 when b is
 * absent), and in *default_path (NULL: not wanted) the one kd_run takes when no
 * KD_RUN_*_EXACT / _Q8 flag picks one (0 when absent). The cpu offers both (default q8,
 * KD_CPU_GEMV); OpenCL both on a CPU device, the one that runs the row-per-item GEMV
 * shape (default exact, KD_OPENCL_GEMV), and exact on a GPU; CUDA exact. */
KD_API unsigned kd_backend_gemv_paths(const kd_context *ctx, kd_backend_id b,
                                      unsigned *default_path);

/* ---- devices ---------------------------------------------------------------------- */

/* Devices as data: what each backend can see, without creating a context. Indices run
 * 0..kd_device_count(b)-1 in the order the backend enumerates (OpenCL: platform by
 * platform), the order kd_context_options.opencl_device / cuda_device take. */
typedef struct kd_device_info {
    kd_backend_id backend;
    int index;
    char name[128];          /* "NVIDIA H100 80GB HBM3", "cpu-znver4-AMD EPYC ..." */
    char vendor[64];         /* "NVIDIA Corporation", "AuthenticAMD", ... */
    char platform[64];       /* OpenCL platform name; "" for other backends */
    char driver_version[64]; /* driver (OpenCL, CUDA) or kernel SIMD level (cpu) */
    int is_gpu;              /* 1: a GPU; 0: a CPU or another device */
    int usable;              /* 1: kdispatch can run on it (OpenCL: available, has a
                              * compiler; CUDA: sm_80 or newer) */
    uint64_t global_mem_bytes; /* device memory; host memory for the cpu */
    int compute_units;       /* OpenCL compute units, CUDA SMs, cpu: the CPUs this process
                              * may use (online, less its affinity mask and cgroup quota) */
} kd_device_info;

/* Devices of backend b: 0 when the backend is not built in or finds no device (a missing
 * driver is not an error here). The cpu backend has one device, the host CPU. */
KD_API int kd_device_count(kd_backend_id b);
/* Device index of backend b into *out. KD_ERR_ARG for an index out of range,
 * KD_ERR_UNAVAILABLE when the backend is not built in or its driver fails. */
KD_API kd_status kd_device_info_get(kd_backend_id b, int index, kd_device_info *out);

/* ---- tensors ---------------------------------------------------------------------- */

/* An f32 matrix of rows x cols, row-major. data may be NULL (zero-filled). */
KD_API kd_status kd_tensor_f32(kd_context *ctx, int64_t rows, int64_t cols, const float *data,
                        kd_tensor **out);

/* A quantized weight of rows x cols (cols a multiple of 256) from raw GGUF block bytes,
 * rows * cols/256 blocks, row-major. The bytes are copied, into the cpu's layout: 2 MiB
 * pages from 4 MiB on (unless KD_HUGE_PAGES=off), and with rows longer than 8192 values,
 * 8 rows at a time block by block (row groups: the cpu GEMV reads each x block once per 8
 * weight blocks; 1.3-2x faster at K = 14336, docs/cpu-gemv-q8.md). Other backends get
 * GGUF order. */
KD_API kd_status kd_tensor_quant(kd_context *ctx, kd_type type, int64_t rows, int64_t cols,
                          const void *blocks, size_t nbytes, kd_tensor **out);

/* As kd_tensor_quant but borrows the bytes (e.g. a memory-mapped GGUF file): they must
 * outlive the tensor and stay unchanged. The cpu reads them as they are (GGUF order, the
 * caller's pages): no second copy of the model, a slower GEMV with long rows. */
KD_API kd_status kd_tensor_quant_borrow(kd_context *ctx, kd_type type, int64_t rows, int64_t cols,
                                 const void *blocks, size_t nbytes, kd_tensor **out);

/* Copies an f32 tensor's values to host memory (count = rows*cols floats), transferring
 * from the backend that holds the newest data if needed (counted in the metrics). */
KD_API kd_status kd_tensor_read(kd_context *ctx, kd_tensor *t, float *dst, size_t count);
/* Overwrites an f32 tensor's values from host memory. */
KD_API kd_status kd_tensor_write(kd_context *ctx, kd_tensor *t, const float *src, size_t count);

/* Frees a tensor and its device buffers; free every tensor before its context. A tensor
 * is used only with the context that made it (KD_ERR_ARG otherwise). */
KD_API void kd_tensor_free(kd_tensor *t);
KD_API int64_t kd_tensor_rows(const kd_tensor *t);
KD_API int64_t kd_tensor_cols(const kd_tensor *t);
KD_API kd_type kd_tensor_type(const kd_tensor *t);
/* Backend that holds the newest copy of the tensor's data. */
KD_API kd_backend_id kd_tensor_residency(const kd_tensor *t);

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
    KD_RUN_NO_FALLBACK = 1u << 1, /* do not fall back to cpu when an offload fails */
    /* cpu GEMV path for this call, overriding KD_CPU_GEMV (default q8, SPEC section 2):
     * EXACT = f32 activations (held to the tight tolerance), Q8 = x quantized to int8
     * blocks (NMSE <= 5e-4). KD_RUN_CPU_SCALAR implies the exact scalar reference. */
    KD_RUN_CPU_EXACT = 1u << 2,
    KD_RUN_CPU_Q8 = 1u << 3,
    /* OpenCL GEMV path for this call, overriding KD_OPENCL_GEMV (default exact): Q8 = x
     * quantized to int8 blocks as on the cpu (NMSE <= 5e-4), on CPU devices (PoCL) only;
     * a GPU device refuses it with KD_ERR_ARG. */
    KD_RUN_OPENCL_EXACT = 1u << 4,
    KD_RUN_OPENCL_Q8 = 1u << 5
};

/* Validates and runs one op. backend = KD_BACKEND_AUTO lets the dispatcher choose by
 * size; another value forces that backend. A failed offload falls back to cpu (counted)
 * unless KD_RUN_NO_FALLBACK is set. */
KD_API kd_status kd_run(kd_context *ctx, const kd_op_desc *d, kd_backend_id backend, unsigned flags);

/* Which backend the dispatcher would choose for this op (pure: same input, same answer). */
KD_API kd_backend_id kd_dispatch_decide(const kd_context *ctx, const kd_op_desc *d);

/* Convenience wrappers through the dispatcher. */
KD_API kd_status kd_rmsnorm(kd_context *ctx, const kd_tensor *x, const kd_tensor *w, float eps,
                     kd_tensor *y);
KD_API kd_status kd_rope(kd_context *ctx, const kd_tensor *x, const uint32_t *pos, int n_heads,
                  int head_dim, float base, kd_rope_mode mode, kd_tensor *y);
KD_API kd_status kd_swiglu(kd_context *ctx, const kd_tensor *gate, const kd_tensor *up, kd_tensor *y);
KD_API kd_status kd_residual_add(kd_context *ctx, const kd_tensor *x, const kd_tensor *r,
                          kd_tensor *y);
KD_API kd_status kd_gemv(kd_context *ctx, const kd_tensor *w, const kd_tensor *x, kd_tensor *y);

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
    uint64_t cpu_gemv_exact;  /* cpu GEMV calls on the exact path (f32 x) */
    uint64_t cpu_gemv_q8;     /* cpu GEMV calls on the q8 path (x quantized to int8) */
    uint64_t opencl_gemv_exact; /* OpenCL GEMV calls on the exact kernels */
    uint64_t opencl_gemv_q8;  /* OpenCL GEMV calls on the q8 kernels (CPU devices) */
} kd_metrics_snapshot;

KD_API void kd_metrics_get(const kd_context *ctx, kd_metrics_snapshot *out);
KD_API void kd_metrics_reset(kd_context *ctx);
/* Writes the metrics as JSON ("json") or Prometheus text ("prom") into buf; returns the
 * length it needed (like snprintf). */
KD_API size_t kd_metrics_export(const kd_context *ctx, const char *format, char *buf, size_t cap);

/* ---- GGUF files ------------------------------------------------------------------ */

/* GGUF reader: memory-maps a GGUF v2 or v3 file, validates all of it once at open time
 * and gives read-only views of its metadata and tensor infos that point into the mapping.
 *
 * What open checks (any failure: KD_ERR_FORMAT and a message naming the field and its
 * file offset): the magic, the version (2 or 3; v1 and big-endian files are refused), that
 * the counts can fit in the file, every string length, every value type (including the
 * element type of arrays, nested arrays up to KD_GGUF_MAX_DEPTH), bool bytes, unique and
 * non-empty keys and tensor names, general.alignment (uint32, power of two; default 32),
 * each tensor's n_dims (1..4), dims (product fits int64, ne[0] a multiple of the type's
 * block), type (a known ggml type), offset (a multiple of the alignment) and byte size
 * (inside the file), and that no two tensors overlap. All size arithmetic is checked.
 *
 * Shapes are in ggml order: ne[0] is the row length (fastest), ne[1] the number of rows.
 * A Q4_K / Q6_K weight of N rows of K values has ne = {K, N}.
 *
 * The mapping is read-only and private; a file truncated by another process while it is
 * mapped can still raise SIGBUS, as with any memory-mapped reader.
 */
#define KD_GGUF_MAGIC 0x46554747u   /* "GGUF" read as a little-endian uint32 */
#define KD_GGUF_MAX_DIMS 4          /* GGML_MAX_DIMS */
#define KD_GGUF_DEFAULT_ALIGNMENT 32
#define KD_GGUF_MAX_DEPTH 16        /* nesting of arrays in arrays */

/* Metadata value types, numbered as in the file. */
typedef enum kd_gguf_vtype {
    KD_GGUF_UINT8 = 0,
    KD_GGUF_INT8 = 1,
    KD_GGUF_UINT16 = 2,
    KD_GGUF_INT16 = 3,
    KD_GGUF_UINT32 = 4,
    KD_GGUF_INT32 = 5,
    KD_GGUF_FLOAT32 = 6,
    KD_GGUF_BOOL = 7,
    KD_GGUF_STRING = 8,
    KD_GGUF_ARRAY = 9,
    KD_GGUF_UINT64 = 10,
    KD_GGUF_INT64 = 11,
    KD_GGUF_FLOAT64 = 12,
    KD_GGUF_VTYPE_COUNT
} kd_gguf_vtype;

/* "uint8", ..., "float64"; "?" when out of range. */
KD_API const char *kd_gguf_vtype_name(kd_gguf_vtype t);

/* A string inside the mapping: len bytes, not NUL-terminated (use "%.*s"). */
typedef struct kd_gguf_str {
    uint64_t len;
    const char *data;
} kd_gguf_str;

typedef struct kd_gguf_value {
    kd_gguf_vtype type;
    union {
        uint64_t u;    /* UINT8, UINT16, UINT32, UINT64, BOOL (0 or 1) */
        int64_t i;     /* INT8, INT16, INT32, INT64 */
        double f;      /* FLOAT32, FLOAT64 */
        kd_gguf_str s; /* STRING */
        struct {
            kd_gguf_vtype type;  /* element type */
            uint64_t count;      /* number of elements */
            const uint8_t *data; /* first element's bytes in the mapping */
            uint64_t bytes;      /* bytes of all elements */
        } arr;                   /* ARRAY */
    } v;
} kd_gguf_value;

typedef struct kd_gguf_kv {
    kd_gguf_str key;
    kd_gguf_value value;
    uint64_t offset;    /* file offset of the key's length field */
} kd_gguf_kv;

typedef struct kd_gguf_tensor_info {
    kd_gguf_str name;
    uint32_t n_dims;
    uint64_t ne[KD_GGUF_MAX_DIMS]; /* dims past n_dims are 1 */
    uint32_t ggml_type;            /* ggml type id (always a known one) */
    uint64_t n_elements;           /* product of ne; at most INT64_MAX */
    uint64_t nbytes;               /* bytes of the data */
    uint64_t offset;               /* relative to the data section, as in the file */
    uint64_t file_offset;          /* absolute file offset of the data */
    uint64_t info_offset;          /* file offset of this tensor's info record */
    const void *data;              /* the data in the mapping */
} kd_gguf_tensor_info;

typedef struct kd_gguf kd_gguf;

/* ---- ggml types -------------------------------------------------------------------- */

/* Name of a ggml type id ("F32", "Q4_K", ...); NULL if not a known type. */
KD_API const char *kd_ggml_type_name(uint32_t ggml_type);
/* Elements per block and bytes per block of a known type; 0 if unknown. */
KD_API int kd_ggml_type_size(uint32_t ggml_type, uint32_t *block_elems, uint32_t *block_bytes);

enum { KD_GGML_TYPE_F32 = 0, KD_GGML_TYPE_F16 = 1, KD_GGML_TYPE_Q4_K = 12, KD_GGML_TYPE_Q6_K = 14 };

/* The kdispatch type of a ggml type; KD_TYPE_COUNT for a type kdispatch does not run. */
KD_API kd_type kd_gguf_kd_type(uint32_t ggml_type);

/* ---- opening ----------------------------------------------------------------------- */

/* Memory-maps and validates a file. Errors: KD_ERR_NULL, KD_ERR_IO (cannot open/map),
 * KD_ERR_FORMAT (truncated or corrupt), KD_ERR_NOMEM; the message goes to err (may be
 * NULL). Needs no context, so a listing does not probe the backends. */
KD_API kd_status kd_gguf_open_file(const char *path, kd_gguf **out, char *err, size_t err_cap);

/* As kd_gguf_open_file with the message recorded on ctx (kd_last_error). */
KD_API kd_status kd_gguf_open(kd_context *ctx, const char *path, kd_gguf **out);

/* Validates a GGUF image already in memory (not copied: it must outlive the handle).
 * The fuzz target and the tests use it. */
KD_API kd_status kd_gguf_from_memory(const void *data, size_t size, kd_gguf **out, char *err,
                              size_t err_cap);

/* Unmaps the file (if this handle mapped it) and frees the handle. NULL is fine. */
KD_API void kd_gguf_close(kd_gguf *g);

/* ---- reading ----------------------------------------------------------------------- */

KD_API uint32_t kd_gguf_version(const kd_gguf *g);
KD_API uint32_t kd_gguf_alignment(const kd_gguf *g);
KD_API uint64_t kd_gguf_data_offset(const kd_gguf *g); /* file offset of the data section */
KD_API uint64_t kd_gguf_size(const kd_gguf *g);        /* file size in bytes */
KD_API const void *kd_gguf_base(const kd_gguf *g);     /* start of the mapping */

KD_API uint64_t kd_gguf_n_kv(const kd_gguf *g);
KD_API const kd_gguf_kv *kd_gguf_kv_at(const kd_gguf *g, uint64_t i);  /* NULL if out of range */
KD_API const kd_gguf_kv *kd_gguf_find(const kd_gguf *g, const char *key); /* NULL if absent */

KD_API uint64_t kd_gguf_n_tensors(const kd_gguf *g);
KD_API const kd_gguf_tensor_info *kd_gguf_tensor_at(const kd_gguf *g, uint64_t i);
KD_API const kd_gguf_tensor_info *kd_gguf_find_tensor(const kd_gguf *g, const char *name);

/* Typed look-ups: 1 and the value when the key exists with a compatible type, else 0.
 * get_int takes any integer type whose value fits int64; get_float any float or integer
 * type; get_string a STRING (the pointer is into the mapping, not NUL-terminated). */
KD_API int kd_gguf_get_int(const kd_gguf *g, const char *key, int64_t *out);
KD_API int kd_gguf_get_float(const kd_gguf *g, const char *key, double *out);
KD_API int kd_gguf_get_string(const kd_gguf *g, const char *key, kd_gguf_str *out);

/* Arrays: elements are decoded in order from the validated bytes. */
typedef struct kd_gguf_array_iter {
    const uint8_t *p, *end;
    uint64_t left;
    kd_gguf_vtype type;
} kd_gguf_array_iter;

KD_API void kd_gguf_array_begin(const kd_gguf_value *array, kd_gguf_array_iter *it);
/* 1 and the next element in *out; 0 at the end. */
KD_API int kd_gguf_array_next(kd_gguf_array_iter *it, kd_gguf_value *out);
/* Element i (O(1) for fixed-size elements, O(i) for strings and arrays); 0 if out of
 * range or not an array. */
KD_API int kd_gguf_array_get(const kd_gguf_value *array, uint64_t i, kd_gguf_value *out);

/* ---- tensors for kdispatch ------------------------------------------------------------ */

/* Makes a kdispatch tensor of rows = n_elements / ne[0], cols = ne[0]:
 *   Q4_K, Q6_K: a weight that borrows the mapped bytes (kd_tensor_quant_borrow; no copy),
 *               so g must stay open while the tensor lives. The bytes are copied only if
 *               they are not 4-byte aligned in memory (general.alignment below 4). For
 *               the cpu's fastest GEMV, copy instead (kd_gguf_tensor_copy).
 *   F32:        an activation / norm weight, copied (kd_tensor_f32).
 * Other types: KD_ERR_TYPE. */
KD_API kd_status kd_gguf_tensor(kd_context *ctx, const kd_gguf *g, const kd_gguf_tensor_info *ti,
                         kd_tensor **out);
/* As kd_gguf_tensor, but Q4_K / Q6_K weights are copied (kd_tensor_quant) into the
 * library's own layout: 2 MiB pages, and rows longer than 8192 values in the cpu's row
 * groups (docs/cpu-gemv-q8.md), the cpu's fastest GEMV. The model's weights then take
 * their size in memory a second time, unless the file is closed; the tensor does not
 * need g afterwards. */
KD_API kd_status kd_gguf_tensor_copy(kd_context *ctx, const kd_gguf *g, const kd_gguf_tensor_info *ti,
                                     kd_tensor **out);
/* The same by tensor name; KD_ERR_ARG if there is no such tensor. */
KD_API kd_status kd_gguf_tensor_by_name(kd_context *ctx, const kd_gguf *g, const char *name,
                                 kd_tensor **out);

#ifdef __cplusplus
}
#endif
#endif /* KDISPATCH_H */
