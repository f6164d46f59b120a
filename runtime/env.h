/*
 * The environment, read strictly (SPEC §11). Every KD_* variable the library reads goes
 * through these helpers: an unset or empty variable means "not given"; a malformed one is
 * an error whose message names the variable and its value, never silently ignored or
 * replaced by a default.
 *
 * Variables read at context creation (context.c): KD_CPU_THREADS, KD_CPU_SIMD,
 * KD_CPU_BLAS_MIN_M, KD_OPENCL_PLATFORM, KD_OPENCL_DEVICE, KD_CUDA_DEVICE, KD_HUGE_PAGES,
 * KD_CONFIG (KD_BACKEND and KD_THRESHOLD_* in config.c, KD_FAULT in fault.c).
 */
#ifndef KD_ENV_H
#define KD_ENV_H

#include <stddef.h>
#include "kdispatch.h"

/* The value of name, or NULL when it is unset or empty. */
const char *kd_env_get(const char *name);

/* Parses value as a whole decimal number in [lo, hi]: optional sign, digits, nothing else
 * (no spaces, no "12abc", no overflow). KD_ERR_ARG with "NAME='value' is not a whole
 * number in [lo, hi]" in why otherwise. name only labels the message. */
kd_status kd_env_parse_int(const char *name, const char *value, long long lo, long long hi,
                           long long *out, char *why, size_t cap);

/* kd_env_parse_int on $name. Unset or empty: KD_OK, *found = 0 and *out untouched. */
kd_status kd_env_int(const char *name, long long lo, long long hi, long long *out, int *found,
                     char *why, size_t cap);

/* value must be one of the n choices (any case): *index is its position. KD_ERR_ARG with
 * "NAME='value' is not one of a, b, c" in why otherwise. */
kd_status kd_env_parse_choice(const char *name, const char *value, const char *const *choices,
                              int n, int *index, char *why, size_t cap);

/* kd_env_parse_choice on $name. Unset or empty: KD_OK, *found = 0, *index untouched. */
kd_status kd_env_choice(const char *name, const char *const *choices, int n, int *index,
                        int *found, char *why, size_t cap);

/* The per-user config file: $XDG_CONFIG_HOME/kdispatch/kdispatch.conf, else
 * $HOME/.config/kdispatch/kdispatch.conf (the XDG default). 0 when neither variable is
 * set or the path does not fit; it is not checked that the file exists. */
int kd_env_user_config_path(char *buf, size_t cap);

/* What a context was asked for: each field from its kd_context_options, or else from the
 * environment, read once and validated at kd_context_create (kd_settings_resolve). */
typedef struct kd_settings {
    int cpu_threads;           /* 1..KD_MAX_CPU_THREADS */
    /* Where it came from, for messages: "kd_context_options.cpu_threads", "KD_CPU_THREADS",
     * or the usable CPUs' bound (host_cpus.h: "online", "affinity", "cgroup quota"). */
    const char *cpu_threads_from;
    int cpu_simd_cap;          /* -1: no cap; else a kd_simd level (0 scalar, 1 avx2, 2 vnni, 3 avx512) */
    long long cpu_blas_min_m;  /* KD_CPU_BLAS_MIN_M, 1..2^30; 0: not named (backend default) */
    char opencl_platform[256]; /* index or name substring; "": not named */
    char opencl_device[256];   /* index or name substring; "": not named */
    /* Where each came from, for messages: "KD_OPENCL_DEVICE" or
     * "kd_context_options.opencl_device". */
    const char *opencl_platform_from, *opencl_device_from;
    int cuda_device;           /* -1: not named */
    int opencl_gemv_q8;        /* KD_OPENCL_GEMV=q8: OpenCL CPU devices run the q8 GEMV path
                                * for calls that name no path (default 0: exact) */
    char opencl_options[128];  /* KD_OPENCL_OPTIONS: more OpenCL build options ("": none) */
    int huge_pages;            /* KD_HUGE_PAGES=on|off (default on): the library's large host
                                * buffers offered to transparent huge pages (host_mem.h) */
    char config[1024];         /* the config file to read; "": none */
    int config_explicit;       /* 1: named by the option or KD_CONFIG (must be readable) */
    /* Who named it, for messages: "KD_CONFIG", "kd_context_options.config" or "the
     * per-user config file" (NULL: none). */
    const char *config_from;
} kd_settings;

/* The names KD_CPU_SIMD and kd_context_options.cpu_simd take, in kd_simd order. */
#define KD_SIMD_LEVEL_COUNT 4
extern const char *const kd_simd_level_names[KD_SIMD_LEVEL_COUNT];

/* Fills s from the options (NULL: none) and the environment: KD_CPU_THREADS,
 * KD_CPU_SIMD, KD_CPU_BLAS_MIN_M, KD_OPENCL_PLATFORM, KD_OPENCL_DEVICE, KD_OPENCL_GEMV,
 * KD_OPENCL_OPTIONS, KD_CUDA_DEVICE, KD_HUGE_PAGES, KD_CONFIG, and the
 * per-user config file when it exists. KD_ERR_ARG with a message naming the option or
 * variable when a value is malformed. */
kd_status kd_settings_resolve(const kd_context_options *o, kd_settings *s, char *why,
                              size_t cap);

#endif /* KD_ENV_H */
