/* The kernel program: built once per context, on the first op that needs it, from the
 * embedded source or from the on-disk binary cache (keyed by device, driver, build
 * options and a hash of the source), plus the build entry points for tests and the PTX
 * checker. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kd_internal.h"
#include "kd_opencl_internal.h"
#include "op_traits.h"

#define KD_CL_CACHE_MAX_BYTES ((size_t)1 << 28) /* a larger cache file is not ours */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* FNV-1a, 64 bits: names cache files; the full key inside the file is what is compared. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
#define KD_FNV_OFFSET 0xcbf29ce484222325ull

/* ---- the disk cache --------------------------------------------------------------- */

int kd_cl_cache_dir(char *buf, size_t cap)
{
    const char *dir = getenv("KD_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (dir && *dir)
        n = snprintf(buf, cap, "%s", dir);
    else if (xdg && *xdg)
        n = snprintf(buf, cap, "%s/kdispatch", xdg);
    else if (home && *home)
        n = snprintf(buf, cap, "%s/.cache/kdispatch", home);
    else
        return 0;
    return n > 0 && (size_t)n < cap;
}

/* mkdir -p; 0 on success. */
static int make_dirs(const char *path)
{
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* What a cached binary depends on: device, driver, build options and the source. */
static void cache_key(const kd_cl_state *s, char *key, size_t cap)
{
    uint64_t src = fnv1a(KD_FNV_OFFSET, kd_opencl_source, kd_opencl_source_len);
    snprintf(key, cap,
             "kdispatch opencl program cache v1\ndevice=%s\nplatform=%s\ndevice_version=%s\n"
             "driver=%s\noptions=%s\nsource=%016llx/%zu\n",
             s->device_name, s->platform_name, s->device_version, s->driver_version,
             s->options, (unsigned long long)src, kd_opencl_source_len);
}

static void cache_file_name(const kd_cl_state *s, char *buf, size_t cap)
{
    char dir[768], key[2048];
    buf[0] = '\0';
    if (!kd_cl_cache_dir(dir, sizeof dir))
        return;
    cache_key(s, key, sizeof key);
    snprintf(buf, cap, "%s/opencl-%016llx.bin", dir,
             (unsigned long long)fnv1a(KD_FNV_OFFSET, key, strlen(key)));
}

/* Reads a cache file whose key matches; 1 with *bin (malloc'd) and *len, else 0. */
static int cache_load(const char *path, const char *key, unsigned char **bin, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    unsigned char *data = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 &&
        (size_t)size < KD_CL_CACHE_MAX_BYTES && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc((size_t)size + 1)) && fread(data, 1, (size_t)size, f) == (size_t)size) {
        data[size] = '\0';
    } else {
        free(data);
        data = NULL;
    }
    fclose(f);
    /* key, then "binary=<length>\n", then exactly <length> bytes */
    size_t klen = strlen(key), blen = 0, head = 0;
    if (data && (size_t)size > klen + 8 && memcmp(data, key, klen) == 0 &&
        memcmp(data + klen, "binary=", 7) == 0) {
        char *end = NULL;
        blen = (size_t)strtoull((char *)data + klen + 7, &end, 10);
        if (end && *end == '\n')
            head = (size_t)(end + 1 - (char *)data);
    }
    if (!head || blen == 0 || head + blen != (size_t)size) {
        free(data);
        return 0;
    }
    memmove(data, data + head, blen);
    *bin = data;
    *len = blen;
    return 1;
}

/* Writes the cache file atomically (temporary file + rename). Best effort: a cache that
 * cannot be written costs a compile next time, nothing else. */
static void cache_save(const char *path, const char *key, const unsigned char *bin, size_t len)
{
    char dir[1024], tmp[1100];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return;
    *slash = '\0';
    if (make_dirs(dir) != 0)
        return;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return;
    int ok = fputs(key, f) >= 0 && fprintf(f, "binary=%zu\n", len) > 0 &&
             fwrite(bin, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0)
        unlink(tmp);
}

/* ---- building --------------------------------------------------------------------- */

static char *build_log(cl_program p, cl_device_id d)
{
    size_t n = 0;
    if (clGetProgramBuildInfo(p, d, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return NULL;
    char *log = malloc(n + 1);
    if (log && clGetProgramBuildInfo(p, d, CL_PROGRAM_BUILD_LOG, n, log, NULL) != CL_SUCCESS) {
        free(log);
        return NULL;
    }
    if (log)
        log[n] = '\0';
    return log;
}

static kd_status build_from_source(kd_context *ctx, kd_cl_state *s, const char *src,
                                   size_t len, const char *options, cl_program *out)
{
    cl_int err;
    cl_program p = clCreateProgramWithSource(s->context, 1, &src, &len, &err);
    if (err != CL_SUCCESS)
        return kd_error(ctx, KD_ERR_BUILD, "opencl: clCreateProgramWithSource failed: %s",
                        kd_cl_error_name(err));
    err = clBuildProgram(p, 1, &s->device, options, NULL, NULL);
    if (err != CL_SUCCESS) {
        char *log = build_log(p, s->device);
        kd_status st = kd_error(ctx, KD_ERR_BUILD,
                                "opencl: clBuildProgram on '%s' (options '%s') failed: %s; "
                                "build log:\n%s", s->device_name, options,
                                kd_cl_error_name(err), log && *log ? log : "(empty)");
        free(log);
        clReleaseProgram(p);
        return st;
    }
    *out = p;
    return KD_OK;
}

/* A program from a cached binary; CL_SUCCESS or why it was refused (then compile). */
static cl_int build_from_binary(kd_cl_state *s, const unsigned char *bin, size_t len,
                                cl_program *out)
{
    cl_int err, bin_status = CL_SUCCESS;
    cl_program p = clCreateProgramWithBinary(s->context, 1, &s->device, &len, &bin,
                                             &bin_status, &err);
    if (err == CL_SUCCESS && bin_status != CL_SUCCESS)
        err = bin_status;
    if (err == CL_SUCCESS)
        err = clBuildProgram(p, 1, &s->device, s->options, NULL, NULL);
    if (err != CL_SUCCESS) {
        if (p)
            clReleaseProgram(p);
        return err;
    }
    *out = p;
    return CL_SUCCESS;
}

static kd_status program_binary(kd_context *ctx, cl_program p, unsigned char **bin, size_t *len)
{
    cl_uint ndev = 0;
    size_t size = 0;
    cl_int err = clGetProgramInfo(p, CL_PROGRAM_NUM_DEVICES, sizeof ndev, &ndev, NULL);
    if (err == CL_SUCCESS && ndev != 1)
        return kd_error(ctx, KD_ERR_BUILD, "opencl: program has %u devices, expected 1", ndev);
    if (err == CL_SUCCESS)
        err = clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL);
    if (err != CL_SUCCESS)
        return kd_error(ctx, KD_ERR_BUILD, "opencl: clGetProgramInfo(binary size) failed: %s",
                        kd_cl_error_name(err));
    if (size == 0)
        return kd_error(ctx, KD_ERR_BUILD, "opencl: the driver returned an empty program binary");
    unsigned char *b = malloc(size);
    if (!b)
        return kd_error(ctx, KD_ERR_NOMEM, "opencl: out of host memory (%zu bytes)", size);
    unsigned char *ptrs[1] = {b};
    err = clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof ptrs, ptrs, NULL);
    if (err != CL_SUCCESS) {
        free(b);
        return kd_error(ctx, KD_ERR_BUILD, "opencl: clGetProgramInfo(binaries) failed: %s",
                        kd_cl_error_name(err));
    }
    *bin = b;
    *len = size;
    return KD_OK;
}

static void release_kernels(kd_cl_state *s)
{
    for (int op = 0; op < KD_OP_COUNT; op++)
        for (int b = 0; b < 2; b++) {
            if (s->kernel[op][b])
                clReleaseKernel(s->kernel[op][b]);
            s->kernel[op][b] = NULL;
        }
    if (s->xsum_kernel)
        clReleaseKernel(s->xsum_kernel);
    s->xsum_kernel = NULL;
}

static cl_int create_kernel(kd_cl_state *s, cl_program p, const char *name, cl_kernel *k,
                            size_t *wg_max)
{
    cl_int err;
    *k = clCreateKernel(p, name, &err);
    if (err == CL_SUCCESS)
        err = clGetKernelWorkGroupInfo(*k, s->device, CL_KERNEL_WORK_GROUP_SIZE,
                                       sizeof *wg_max, wg_max, NULL);
    return err;
}

static kd_status create_kernels(kd_context *ctx, kd_cl_state *s, cl_program p)
{
    cl_int err = CL_SUCCESS;
    const char *name = "kd_gemv_xsum";
    for (int op = 0; op < KD_OP_COUNT && err == CL_SUCCESS; op++)
        for (int b = 0; b < 2 && err == CL_SUCCESS; b++) {
            name = kd_op_kernel_name((kd_op)op, b);
            err = create_kernel(s, p, name, &s->kernel[op][b], &s->kernel_wg_max[op][b]);
        }
    if (err == CL_SUCCESS) {
        name = "kd_gemv_xsum";
        err = create_kernel(s, p, name, &s->xsum_kernel, &s->xsum_wg_max);
    }
    if (err == CL_SUCCESS)
        return KD_OK;
    release_kernels(s);
    return kd_error(ctx, KD_ERR_BUILD, "opencl: kernel %s: %s", name, kd_cl_error_name(err));
}

/* Keeps a real build failure so that later ops fail fast with the same message. */
static kd_status remember_failure(kd_context *ctx, kd_cl_state *s, kd_status st)
{
    s->build_status = st;
    snprintf(s->build_message, sizeof s->build_message, "%s", kd_last_error(ctx));
    return st;
}

kd_status kd_cl_ensure_program(kd_context *ctx, kd_cl_state *s)
{
    if (s->program)
        return KD_OK;
    if (s->build_status != KD_OK)
        return kd_error(ctx, s->build_status, "%s", s->build_message);
    if (kd_fault_hit(ctx, KD_BACKEND_OPENCL, KD_FAULT_BUILD))
        return kd_error(ctx, KD_ERR_BUILD, "opencl: injected program build fault (KD_FAULT)");
    double t0 = now_ms();
    char key[2048];
    cache_key(s, key, sizeof key);
    cache_file_name(s, s->cache_file, sizeof s->cache_file);
    cl_program p = NULL;
    unsigned char *bin = NULL;
    size_t len = 0;
    if (s->cache_file[0] && cache_load(s->cache_file, key, &bin, &len)) {
        if (build_from_binary(s, bin, len, &p) != CL_SUCCESS)
            p = NULL; /* stale or foreign binary: compile and overwrite it */
        free(bin);
    }
    int from_cache = p != NULL;
    if (!p) {
        kd_status st = build_from_source(ctx, s, kd_opencl_source, kd_opencl_source_len,
                                         s->options, &p);
        if (st != KD_OK)
            return remember_failure(ctx, s, st);
        if (s->cache_file[0] && program_binary(ctx, p, &bin, &len) == KD_OK) {
            cache_save(s->cache_file, key, bin, len);
            free(bin);
        }
    }
    kd_status st = create_kernels(ctx, s, p);
    if (st != KD_OK) {
        clReleaseProgram(p);
        return remember_failure(ctx, s, st);
    }
    s->program = p;
    s->from_cache = from_cache;
    s->build_ms = now_ms() - t0;
    return KD_OK;
}

void kd_cl_release_program(kd_cl_state *s)
{
    release_kernels(s);
    if (s->program)
        clReleaseProgram(s->program);
    s->program = NULL;
}

/* ---- entry points for tests and the PTX checker ----------------------------------- */

static kd_cl_state *state_of(kd_context *ctx, kd_status *st)
{
    if (!ctx) {
        *st = KD_ERR_NULL;
        return NULL;
    }
    if (!kd_backend_available(ctx, KD_BACKEND_OPENCL)) {
        *st = kd_error(ctx, KD_ERR_UNAVAILABLE, "opencl backend is not available: %s",
                       kd_backend_reason(ctx, KD_BACKEND_OPENCL));
        return NULL;
    }
    return ctx->backend[KD_BACKEND_OPENCL].state;
}

kd_status kd_opencl_build_source(kd_context *ctx, const char *src, const char *options)
{
    kd_status st = KD_OK;
    kd_cl_state *s = state_of(ctx, &st);
    if (!s)
        return st;
    if (!src)
        return kd_error(ctx, KD_ERR_NULL, "kd_opencl_build_source: source is NULL");
    if (kd_fault_hit(ctx, KD_BACKEND_OPENCL, KD_FAULT_BUILD))
        return kd_error(ctx, KD_ERR_BUILD, "opencl: injected program build fault (KD_FAULT)");
    cl_program p = NULL;
    st = build_from_source(ctx, s, src, strlen(src), options ? options : "", &p);
    if (p)
        clReleaseProgram(p);
    return st;
}

kd_status kd_opencl_program_binary(kd_context *ctx, unsigned char **bin, size_t *len,
                                   char *dev_name, size_t cap)
{
    kd_status st = KD_OK;
    kd_cl_state *s = state_of(ctx, &st);
    if (!s)
        return st;
    if (!bin || !len)
        return kd_error(ctx, KD_ERR_NULL, "kd_opencl_program_binary: NULL output");
    pthread_mutex_lock(&s->lock);
    st = kd_cl_ensure_program(ctx, s);
    if (st == KD_OK)
        st = program_binary(ctx, s->program, bin, len);
    pthread_mutex_unlock(&s->lock);
    if (st == KD_OK && dev_name && cap)
        snprintf(dev_name, cap, "%s", s->device_name);
    return st;
}

kd_status kd_opencl_build_info_get(kd_context *ctx, kd_opencl_build_info *out)
{
    kd_status st = KD_OK;
    kd_cl_state *s = state_of(ctx, &st);
    if (!s)
        return st;
    if (!out)
        return kd_error(ctx, KD_ERR_NULL, "kd_opencl_build_info_get: NULL output");
    pthread_mutex_lock(&s->lock);
    st = kd_cl_ensure_program(ctx, s);
    if (st == KD_OK) {
        out->from_cache = s->from_cache;
        out->build_ms = s->build_ms;
        snprintf(out->cache_file, sizeof out->cache_file, "%s", s->cache_file);
        snprintf(out->options, sizeof out->options, "%s", s->options);
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}
