/*
 * Dispatcher configuration (contract: dispatch_strategy). The decision is a pure function
 * of (op, data_size, configuration, best offload backend present):
 *     offload if data_size > threshold[op][offload backend], else cpu,
 * unless a backend is forced (KD_BACKEND=cpu|opencl|cuda).
 * Sources, later ones win: built-in defaults, the config file (KD_CONFIG or the context
 * option; written by `kdispatch tune`), the environment (KD_THRESHOLD_<OP>_<BACKEND>,
 * KD_BACKEND).
 *
 * Config file, one setting a line, '#' starts a comment:
 *     backend = auto|cpu|opencl|cuda
 *     threshold.<op>.<opencl|cuda> = <N>|never      (N > 0: offload when data_size > N)
 * with <op> one of rmsnorm, rope, swiglu, residual_add, q4k_gemv, q6k_gemv.
 * Environment: KD_THRESHOLD_Q4K_GEMV_OPENCL=123 (op and backend in upper case).
 */
#ifndef KD_CONFIG_H
#define KD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "kdispatch.h"


#define KD_THRESHOLD_NEVER UINT64_MAX           /* "never": no size offloads */

/* Where a threshold came from: a default may still be adapted to the device found. */
typedef enum kd_config_source {
    KD_SRC_DEFAULT = 0,
    KD_SRC_FILE,
    KD_SRC_ENV
} kd_config_source;

typedef struct kd_config {
    uint64_t threshold[KD_OP_COUNT][KD_BACKEND_COUNT]; /* [op][backend]; cpu column unused */
    unsigned char source[KD_OP_COUNT][KD_BACKEND_COUNT]; /* kd_config_source */
    kd_backend_id forced;                              /* KD_BACKEND_AUTO: not forced */
    char file[512];                                    /* config file read, "" if none */
} kd_config;

/* data_size of an op: GEMV M*N*K, others M * row length; 0 for a non-positive dimension,
 * UINT64_MAX when the product does not fit. */
uint64_t kd_op_data_size(kd_op op, int64_t m, int64_t n, int64_t k);

/* Built-in defaults; the OpenCL column assumes a CPU device (PoCL) until told otherwise
 * by kd_config_use_device_defaults. */
void kd_config_defaults(kd_config *c);
/* Replaces backend b's thresholds that are still defaults by the defaults for a GPU
 * (is_gpu = 1) or a CPU device (is_gpu = 0). For OpenCL, called once the device is known. */
void kd_config_use_device_defaults(kd_config *c, kd_backend_id b, int is_gpu);
/* The default threshold of op on backend b for a GPU or a CPU device. */
uint64_t kd_config_default_threshold(kd_op op, kd_backend_id b, int is_gpu);

/* Reads "threshold.<op>.<backend> = N" and "backend = <name>" lines; # comments.
 * KD_ERR_IO when the file cannot be read; KD_ERR_FORMAT with "path:line: what" in why for
 * a bad line (the config is then left as it was). */
kd_status kd_config_load_file(kd_config *c, const char *path, char *why, size_t cap);
/* Applies KD_BACKEND and every KD_THRESHOLD_* variable; KD_ERR_ARG for an unknown name
 * or a bad value (the config is then left as it was). */
kd_status kd_config_apply_env(kd_config *c, char *why, size_t cap);
/* Writes the config in the file format above (header_comment may hold several lines,
 * each is written as a comment). Written to a temporary file and renamed into place. */
kd_status kd_config_write_file(const kd_config *c, const char *path, const char *header_comment,
                               char *why, size_t cap);

/* Parses a threshold value: a whole number > 0, or "never". 0 on success. */
int kd_config_parse_threshold(const char *s, uint64_t *out);

/* The decision. offload: the best offload backend present (KD_BACKEND_AUTO if none).
 * A forced backend is returned as is (the caller reports it if it is absent). */
kd_backend_id kd_dispatch_choose(const kd_config *c, kd_op op, uint64_t data_size,
                                 kd_backend_id offload);

#endif
