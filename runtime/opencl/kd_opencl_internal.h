/*
 * The OpenCL backend's internals: its state, the device helpers shared by its files, and
 * the entry points tests and the PTX checker use (they take a context whose OpenCL
 * backend is available).
 */
#ifndef KD_OPENCL_INTERNAL_H
#define KD_OPENCL_INTERNAL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "geometry.h"
#include "kd_backend.h"

/* The program text: cl-kernels/ and the block decoding header, embedded at build time
 * (generated kd_opencl_source.c). */
extern const char kd_opencl_source[];
extern const size_t kd_opencl_source_len;

typedef struct kd_cl_state {
    cl_platform_id platform;
    cl_device_id device;
    cl_device_type type;
    char device_name[256];
    char platform_name[256];
    char device_version[256]; /* "OpenCL 3.0 ..." */
    char driver_version[128];
    cl_uint compute_units;
    int opencl_c_12;          /* the device compiles OpenCL C 1.2 */
    kd_device_limits limits;  /* device limits for kd_launch_geometry */
    kd_dialect dialect;       /* its shapes: CPU devices one GEMV row per work-item */
    cl_context context;
    cl_command_queue queue;

    pthread_mutex_t lock;     /* one op at a time: kernel arguments, scratch, the build */
    cl_program program;       /* NULL until the first op needs it */
    cl_kernel kernel[KD_OP_COUNT][2];     /* [op][0: single-row, 1: batched] */
    size_t kernel_wg_max[KD_OP_COUNT][2]; /* CL_KERNEL_WORK_GROUP_SIZE */
    cl_kernel xsum_kernel;    /* kd_gemv_xsum: the single-row Q4_K GEMV's pre-pass */
    size_t xsum_wg_max;
    /* the q8 GEMV path (cl-kernels/gemv_q8.cl), CPU devices only (NULL elsewhere) */
    cl_kernel q8_quantize_kernel;         /* kd_q8_quantize: x -> kd_block_q8 */
    size_t q8_quantize_wg_max;
    cl_kernel q8_gemv_kernel[2];          /* [0] kd_gemv_q4k_q8, [1] kd_gemv_q6k_q8 */
    size_t q8_gemv_wg_max[2];
    int q8_vnni;              /* the q8 kernels are built with -DKD_Q8_VNNI (host_has_avx512_vnni) */
    int gemv_q8;              /* the GEMV path when a call names none: 1 q8 (KD_OPENCL_GEMV=q8
                               * on a CPU device), 0 exact */
    char options[256];        /* build options */
    char extra_options[128];  /* those of them from KD_OPENCL_OPTIONS ("": none) */
    kd_status build_status;   /* a real build failure, kept so it is not retried */
    char build_message[4096];
    int from_cache;           /* the program came from the binary cache */
    double build_ms;          /* time to get the program ready (load or compile) */
    char cache_file[1024];    /* "" if no cache directory could be used */

    cl_mem xsum;              /* kd_gemv_xsum's output: k/32 sums of x */
    size_t xsum_bytes;
    cl_mem xq;                /* kd_q8_quantize's output: m * k/256 blocks */
    size_t xq_bytes;
    cl_mem rope_tab;          /* rope frequencies and positions (see rope.cl) */
    size_t rope_tab_bytes;
    uint32_t *rope_host;      /* host staging of rope_tab */
    size_t rope_host_words;

    /* allocation limits, checked before the driver is asked: PoCL accepts buffers over
     * its limits and aborts when the host then runs out */
    cl_ulong max_alloc;       /* CL_DEVICE_MAX_MEM_ALLOC_SIZE (0: unknown) */
    cl_ulong global_mem;      /* CL_DEVICE_GLOBAL_MEM_SIZE (0: unknown) */
    atomic_uint_fast64_t allocated; /* bytes of this backend's live buffers */
} kd_cl_state;

/* "CL_OUT_OF_RESOURCES" etc.; "CL_UNKNOWN_ERROR(<n>)" for codes it does not know. */
const char *kd_cl_error_name(cl_int err);
/* "GPU", "accelerator", "CPU" or "other" (the first that t has, in that order). */
const char *kd_cl_device_type_name(cl_device_type t);

/* Chooses the device (the platform and device the context was asked for, else the best
 * one) and fills the device fields of s. On failure why says what exists. */
kd_status kd_cl_choose_device(kd_cl_state *s, const struct kd_settings *want, char *why,
                              size_t cap);
/* The backend's device_info entry (kd_backend.h). */
kd_status kd_cl_device_info(int index, kd_device_info *out, int *count, char *why, size_t cap);

/* Builds the kernels once per context (disk cache first); called with s->lock held. */
kd_status kd_cl_ensure_program(kd_context *ctx, kd_cl_state *s);
void kd_cl_release_program(kd_cl_state *s);
/* The cache directory: $KD_CACHE_DIR, else $XDG_CACHE_HOME/kdispatch, else
 * ~/.cache/kdispatch; 0 if none can be named. */
int kd_cl_cache_dir(char *buf, size_t cap);
/* Points PoCL's own kernel cache inside the cache directory ($POCL_CACHE_DIR, when the
 * user has not set it); must run before the first clGetPlatformIDs of the process. */
void kd_cl_prepare_driver_cache(void);

/* ---- for tests and the PTX checker ---- */

/* Builds an arbitrary OpenCL C source with options on the context's device and releases
 * it: KD_OK, or KD_ERR_BUILD with the OpenCL error name and the build log in
 * kd_last_error(ctx). */
kd_status kd_opencl_build_source(kd_context *ctx, const char *src, const char *options);

/* The kernel program's binary for the device (PTX text on NVIDIA's OpenCL); the caller
 * frees *bin. dev_name receives the device name. Builds the program if needed. */
kd_status kd_opencl_program_binary(kd_context *ctx, unsigned char **bin, size_t *len,
                                   char *dev_name, size_t cap);

typedef struct kd_opencl_build_info {
    int from_cache;        /* 1: loaded from the binary cache, 0: compiled from source */
    double build_ms;       /* time it took */
    char cache_file[1024]; /* the cache file of this device and source ("" if none) */
    char options[256];     /* build options */
} kd_opencl_build_info;

/* Builds the program if needed and says how it was obtained. */
kd_status kd_opencl_build_info_get(kd_context *ctx, kd_opencl_build_info *out);

#endif
