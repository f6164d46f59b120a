/* The environment, read strictly: see env.h. */
#include "env.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "host_cpus.h"

const char *kd_env_get(const char *name)
{
    const char *v = name ? getenv(name) : NULL;
    return v && v[0] ? v : NULL;
}

kd_status kd_env_parse_int(const char *name, const char *value, long long lo, long long hi,
                           long long *out, char *why, size_t cap)
{
    char *end = NULL;
    errno = 0;
    long long v = value ? strtoll(value, &end, 10) : 0;
    /* strtoll skips leading white space; a strict reader refuses it like any other junk. */
    int ok = value && value[0] && value[0] != ' ' && value[0] != '\t' && end != value &&
             *end == '\0' && errno == 0 && v >= lo && v <= hi;
    if (!ok) {
        if (why && cap)
            snprintf(why, cap, "%s='%s' is not a whole number in [%lld, %lld]", name,
                     value ? value : "(null)", lo, hi);
        return KD_ERR_ARG;
    }
    *out = v;
    return KD_OK;
}

kd_status kd_env_int(const char *name, long long lo, long long hi, long long *out, int *found,
                     char *why, size_t cap)
{
    const char *v = kd_env_get(name);
    *found = v != NULL;
    return v ? kd_env_parse_int(name, v, lo, hi, out, why, cap) : KD_OK;
}

kd_status kd_env_parse_choice(const char *name, const char *value, const char *const *choices,
                              int n, int *index, char *why, size_t cap)
{
    for (int i = 0; value && i < n; i++)
        if (strcasecmp(value, choices[i]) == 0) {
            *index = i;
            return KD_OK;
        }
    if (why && cap) {
        int len = snprintf(why, cap, "%s='%s' is not one of", name, value ? value : "(null)");
        for (int i = 0; i < n && len >= 0 && (size_t)len < cap; i++)
            len += snprintf(why + len, cap - (size_t)len, "%s %s", i ? "," : "", choices[i]);
    }
    return KD_ERR_ARG;
}

kd_status kd_env_choice(const char *name, const char *const *choices, int n, int *index,
                        int *found, char *why, size_t cap)
{
    const char *v = kd_env_get(name);
    *found = v != NULL;
    return v ? kd_env_parse_choice(name, v, choices, n, index, why, cap) : KD_OK;
}

int kd_env_user_config_path(char *buf, size_t cap)
{
    const char *xdg = kd_env_get("XDG_CONFIG_HOME"), *home = kd_env_get("HOME");
    int len;
    /* The XDG spec: a relative $XDG_CONFIG_HOME is invalid and must be ignored. */
    if (xdg && xdg[0] == '/')
        len = snprintf(buf, cap, "%s/kdispatch/kdispatch.conf", xdg);
    else if (home)
        len = snprintf(buf, cap, "%s/.config/kdispatch/kdispatch.conf", home);
    else
        return 0;
    return len > 0 && (size_t)len < cap;
}

/* ---- a context's settings ------------------------------------------------------------- */

const char *const kd_simd_level_names[KD_SIMD_LEVEL_COUNT] = {"scalar", "avx2", "vnni", "avx512"};

/* An index or a name substring. A value of digits only is an index and must fit an int;
 * anything else is matched against names when the device is chosen. */
static kd_status device_choice(const char *label, const char *value, char *dst, size_t dst_cap,
                               char *why, size_t cap)
{
    dst[0] = '\0';
    if (!value || !value[0])
        return KD_OK;
    if (strlen(value) >= dst_cap) {
        snprintf(why, cap, "%s is longer than %zu characters", label, dst_cap - 1);
        return KD_ERR_ARG;
    }
    if (strspn(value, "0123456789") == strlen(value)) {
        long long index;
        kd_status st = kd_env_parse_int(label, value, 0, INT32_MAX, &index, why, cap);
        if (st != KD_OK)
            return st;
    }
    snprintf(dst, dst_cap, "%s", value);
    return KD_OK;
}

/* KD_OPENCL_OPTIONS: build options added to the program's own (e.g. -cl-opt-disable, which
 * tests/test_oclgrind.sh needs). Printable ASCII, to fit the cache key and the messages. */
static kd_status opencl_options(const char *value, kd_settings *s, char *why, size_t cap)
{
    s->opencl_options[0] = '\0';
    if (!value)
        return KD_OK;
    if (strlen(value) >= sizeof s->opencl_options) {
        snprintf(why, cap, "KD_OPENCL_OPTIONS='%s' is longer than %zu characters", value,
                 sizeof s->opencl_options - 1);
        return KD_ERR_ARG;
    }
    for (const char *c = value; *c; c++)
        if (*c < 0x20 || *c > 0x7e) {
            snprintf(why, cap, "KD_OPENCL_OPTIONS='%s' has a control or non-ASCII byte (0x%02x) "
                     "at offset %td", value, (unsigned)(unsigned char)*c, c - value);
            return KD_ERR_ARG;
        }
    snprintf(s->opencl_options, sizeof s->opencl_options, "%s", value);
    return KD_OK;
}

static kd_status resolve_threads(const kd_context_options *o, kd_settings *s, char *why,
                                 size_t cap)
{
    long long n = 0;
    int found = 0;
    if (o && o->cpu_threads != 0) {
        if (o->cpu_threads < 1 || o->cpu_threads > KD_MAX_CPU_THREADS) {
            snprintf(why, cap, "kd_context_options.cpu_threads=%d is not in [1, %d]",
                     o->cpu_threads, KD_MAX_CPU_THREADS);
            return KD_ERR_ARG;
        }
        s->cpu_threads = o->cpu_threads;
        s->cpu_threads_from = "kd_context_options.cpu_threads";
        return KD_OK;
    }
    kd_status st = kd_env_int("KD_CPU_THREADS", 1, KD_MAX_CPU_THREADS, &n, &found, why, cap);
    if (st != KD_OK)
        return st;
    if (found) {
        s->cpu_threads = (int)n;
        s->cpu_threads_from = "KD_CPU_THREADS";
        return KD_OK;
    }
    kd_host_cpus cpus; /* one thread per CPU the process may use (host_cpus.h) */
    kd_host_cpus_read(&cpus);
    s->cpu_threads = cpus.usable < KD_MAX_CPU_THREADS ? cpus.usable : KD_MAX_CPU_THREADS;
    s->cpu_threads_from = cpus.bound;
    return KD_OK;
}

/* The cpu backend's SIMD cap (option, else KD_CPU_SIMD) and KD_CPU_BLAS_MIN_M. */
static kd_status resolve_cpu(const kd_context_options *o, kd_settings *s, char *why, size_t cap)
{
    int found = 0, level = -1;
    const int n = KD_SIMD_LEVEL_COUNT;
    kd_status st = o && o->cpu_simd
                       ? kd_env_parse_choice("kd_context_options.cpu_simd", o->cpu_simd,
                                             kd_simd_level_names, n, &level, why, cap)
                       : kd_env_choice("KD_CPU_SIMD", kd_simd_level_names, n, &level, &found,
                                       why, cap);
    s->cpu_simd_cap = level;
    if (st != KD_OK)
        return st;
    /* The batch size from which the cpu GEMV uses dequantize + sgemm (cpu backend). */
    return kd_env_int("KD_CPU_BLAS_MIN_M", 1, 1LL << 30, &s->cpu_blas_min_m, &found, why, cap);
}

static kd_status resolve_devices(const kd_context_options *o, kd_settings *s, char *why,
                                 size_t cap)
{
    const char *plat = o && o->opencl_platform ? o->opencl_platform : kd_env_get("KD_OPENCL_PLATFORM");
    const char *dev = o && o->opencl_device ? o->opencl_device : kd_env_get("KD_OPENCL_DEVICE");
    const char *plat_label = o && o->opencl_platform ? "kd_context_options.opencl_platform"
                                                     : "KD_OPENCL_PLATFORM";
    const char *dev_label = o && o->opencl_device ? "kd_context_options.opencl_device"
                                                  : "KD_OPENCL_DEVICE";
    s->opencl_platform_from = plat_label;
    s->opencl_device_from = dev_label;
    kd_status st = device_choice(plat_label, plat, s->opencl_platform, sizeof s->opencl_platform,
                                 why, cap);
    if (st == KD_OK)
        st = device_choice(dev_label, dev, s->opencl_device, sizeof s->opencl_device, why, cap);
    if (st != KD_OK)
        return st;
    /* the OpenCL GEMV path (a typo is an error, not silently the other path) */
    static const char *const gemv_paths[] = {"exact", "q8"};
    int path = 0, found_path = 0;
    if ((st = kd_env_choice("KD_OPENCL_GEMV", gemv_paths, 2, &path, &found_path, why, cap)) != KD_OK)
        return st;
    s->opencl_gemv_q8 = path == 1;
    static const char *const on_off[] = {"off", "on"};
    int huge = 1, found_huge = 0;
    if ((st = kd_env_choice("KD_HUGE_PAGES", on_off, 2, &huge, &found_huge, why, cap)) != KD_OK)
        return st;
    s->huge_pages = huge;
    if ((st = opencl_options(kd_env_get("KD_OPENCL_OPTIONS"), s, why, cap)) != KD_OK)
        return st;
    s->cuda_device = -1;
    if (o && o->cuda_device) {
        long long d;
        st = kd_env_parse_int("kd_context_options.cuda_device", o->cuda_device, 0, INT32_MAX,
                              &d, why, cap);
        s->cuda_device = (int)d;
        return st;
    }
    long long d = -1;
    int found = 0;
    st = kd_env_int("KD_CUDA_DEVICE", 0, INT32_MAX, &d, &found, why, cap);
    s->cuda_device = found ? (int)d : -1;
    return st;
}

/* The option (a path; "" for none), else KD_CONFIG, else the per-user file if it exists.
 * Never a file in the working directory: what a library reads must not depend on where
 * its program happens to run. */
static kd_status resolve_config(const kd_context_options *o, kd_settings *s, char *why,
                                size_t cap)
{
    const char *file = o && o->config ? o->config : kd_env_get("KD_CONFIG");
    s->config[0] = '\0';
    s->config_explicit = file != NULL;
    if (!file) {
        char user[sizeof s->config];
        if (kd_env_user_config_path(user, sizeof user) && access(user, R_OK) == 0) {
            snprintf(s->config, sizeof s->config, "%s", user);
            s->config_from = "the per-user config file";
        }
        return KD_OK;
    }
    s->config_from = o && o->config ? "kd_context_options.config" : "KD_CONFIG";
    if (strlen(file) >= sizeof s->config) {
        snprintf(why, cap, "%s is longer than %zu characters", s->config_from,
                 sizeof s->config - 1);
        return KD_ERR_ARG;
    }
    snprintf(s->config, sizeof s->config, "%s", file);
    return KD_OK;
}

kd_status kd_settings_resolve(const kd_context_options *o, kd_settings *s, char *why,
                              size_t cap)
{
    memset(s, 0, sizeof *s);
    kd_status st = resolve_threads(o, s, why, cap);
    if (st == KD_OK)
        st = resolve_cpu(o, s, why, cap);
    if (st == KD_OK)
        st = resolve_devices(o, s, why, cap);
    if (st == KD_OK)
        st = resolve_config(o, s, why, cap);
    return st;
}
