/*
 * Dispatcher configuration (contract: dispatch_strategy). The decision is a pure function
 * of (op, data_size, configuration, best offload backend present):
 *     offload if data_size > threshold[op][offload backend], else cpu,
 * unless a backend is forced (KD_BACKEND=cpu|opencl|cuda).
 * Sources, later ones win: built-in defaults, the config file (KD_CONFIG or the context
 * option; written by `kdispatch tune`), the environment (KD_THRESHOLD_<OP>_<BACKEND>,
 * KD_BACKEND).
 */
#ifndef KD_CONFIG_H
#define KD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "kdispatch.h"

typedef struct kd_config {
    uint64_t threshold[KD_OP_COUNT][KD_BACKEND_COUNT]; /* [op][backend]; cpu column unused */
    kd_backend_id forced;                              /* KD_BACKEND_AUTO: not forced */
    char file[512];                                    /* config file read, "" if none */
} kd_config;

/* data_size of an op: GEMV M*N*K, others M * row length. */
uint64_t kd_op_data_size(kd_op op, int64_t m, int64_t n, int64_t k);

void kd_config_defaults(kd_config *c);
/* Reads "threshold.<op>.<backend> = N" and "backend = <name>" lines; # comments. */
kd_status kd_config_load_file(kd_config *c, const char *path, char *why, size_t cap);
kd_status kd_config_apply_env(kd_config *c, char *why, size_t cap);
kd_status kd_config_write_file(const kd_config *c, const char *path, const char *header_comment,
                               char *why, size_t cap);

/* The decision. offload: the best offload backend present (KD_BACKEND_AUTO if none). */
kd_backend_id kd_dispatch_choose(const kd_config *c, kd_op op, uint64_t data_size,
                                 kd_backend_id offload);

#endif
