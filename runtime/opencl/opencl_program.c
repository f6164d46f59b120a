/* The kernel program: built once per context, on the first op that needs it, from the
 * embedded source or from the on-disk binary cache (keyed by device, driver, build
 * options and a hash of the source), plus the build entry points for tests and the PTX
 * checker. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kd_clock.h"
#include "kd_internal.h"
#include "kd_opencl_internal.h"
#include "file_util.h"
#include "sha256.h"
#include "op_traits.h"

#define KD_CL_CACHE_MAX_BYTES ((size_t)1 << 28) /* a larger cache file is not ours */

/* ---- the disk cache --------------------------------------------------------------- */
/*
 * One file per device, driver and source: opencl-<sha256 of the key, 16 digits>.bin,
 *   the key: "kdispatch opencl program cache v2\n" and one "name=value\n" line each for
 *            the device, platform, platform version (PoCL's names its LLVM build),
 *            device version, driver version, build options and the source's SHA-256
 *   "binary=<length>\n"
 *   "sha256=<64 hex digits>\n"   of everything above it and the binary
 *   <length> bytes of program binary
 * Nothing reaches clCreateProgramWithBinary before the key, the length and the checksum
 * match: a flipped bit, a truncated write or another device's entry is deleted and the
 * program rebuilt from source with one warning (kd_warnings). Writes go to a temporary
 * file in the same directory, renamed over the entry, so readers see whole entries.
 */

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

/* The cache directory, created if needed: 1 when it is a directory this process can
 * write, else 0 with the reason in why ("" when no directory is named at all). */
static int usable_cache_dir(char *dir, size_t cap, char *why, size_t why_cap)
{
    why[0] = '\0';
    if (!kd_cl_cache_dir(dir, cap))
        return 0;
    struct stat st;
    if (make_dirs(dir) != 0 || stat(dir, &st) != 0)
        snprintf(why, why_cap, "%s", strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        snprintf(why, why_cap, "not a directory");
    else if (access(dir, W_OK | X_OK) != 0)
        snprintf(why, why_cap, "not writable: %s", strerror(errno));
    return why[0] == '\0';
}

/* PoCL keeps its own cache of compiled kernels, $POCL_CACHE_DIR else ~/.cache/pocl.
 * Pointed inside kdispatch's directory, clearing one clears both and kdispatch can drop
 * it when an entry of its own proves bad. PoCL reads the variable when it initializes,
 * so this runs before the first clGetPlatformIDs; a value the user set is kept. */
static char pocl_dir_ours[1100]; /* the POCL_CACHE_DIR this process set, or "" */

static void point_driver_cache(void)
{
    char dir[768], why[256];
    const char *user = getenv("POCL_CACHE_DIR");
    if ((user && *user) || !usable_cache_dir(dir, sizeof dir, why, sizeof why))
        return;
    char pocl[1100];
    if (snprintf(pocl, sizeof pocl, "%s/pocl", dir) >= (int)sizeof pocl)
        return;
    if (setenv("POCL_CACHE_DIR", pocl, 0) == 0)
        snprintf(pocl_dir_ours, sizeof pocl_dir_ours, "%s", pocl);
}

void kd_cl_prepare_driver_cache(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, point_driver_cache);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Drops PoCL's cache when kdispatch chose its place (never a directory the user named):
 * an entry of ours that proved bad may have left a bad one of PoCL's. */
static void drop_driver_cache(void)
{
    const char *now = getenv("POCL_CACHE_DIR");
    if (pocl_dir_ours[0] && now && strcmp(now, pocl_dir_ours) == 0)
        nftw(pocl_dir_ours, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void sha256_text(const char *text, char hex[65])
{
    kd_sha256_hex(text, strlen(text), hex);
}

static void platform_version(const kd_cl_state *s, char *buf, size_t cap)
{
    size_t n = 0;
    snprintf(buf, cap, "?");
    if (clGetPlatformInfo(s->platform, CL_PLATFORM_VERSION, cap - 1, buf, &n) != CL_SUCCESS)
        snprintf(buf, cap, "?");
    buf[cap - 1] = '\0';
}

/* What a cached binary depends on: device, driver, build options and the source. */
static void cache_key(const kd_cl_state *s, char *key, size_t cap)
{
    char src[65], pver[512];
    kd_sha256_hex(kd_opencl_source, kd_opencl_source_len, src);
    platform_version(s, pver, sizeof pver);
    snprintf(key, cap,
             "kdispatch opencl program cache v2\ndevice=%s\nplatform=%s\nplatform_version=%s\n"
             "device_version=%s\ndriver=%s\noptions=%s\nsource=%s/%zu\n",
             s->device_name, s->platform_name, pver, s->device_version, s->driver_version,
             s->options, src, kd_opencl_source_len);
}

static void cache_file_name(const char *dir, const char *key, char *buf, size_t cap)
{
    char h[65];
    sha256_text(key, h);
    snprintf(buf, cap, "%s/opencl-%.16s.bin", dir, h);
}

/* The checksum line's digest: the key, the length line and the binary. */
static void entry_digest(const char *key, const char *len_line, const unsigned char *bin,
                         size_t len, char hex[65])
{
    kd_sha256 h;
    unsigned char d[32];
    kd_sha256_init(&h);
    kd_sha256_update(&h, key, strlen(key));
    kd_sha256_update(&h, len_line, strlen(len_line));
    kd_sha256_update(&h, bin, len);
    kd_sha256_final(&h, d);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* Checks an entry's bytes against key; 1 with the binary's place, else 0 with why. */
static int parse_entry(const unsigned char *data, size_t size, const char *key,
                       size_t *bin_at, size_t *bin_len, char *why, size_t cap)
{
    size_t klen = strlen(key);
    if (size < klen || memcmp(data, key, klen) != 0) {
        snprintf(why, cap, "made for another device, driver or source, or its header is "
                 "damaged");
        return 0;
    }
    const char *p = (const char *)data + klen, *end = (const char *)data + size;
    /* "binary=<digits>\n" "sha256=<64 hex>\n": bounded scans, the file ends anywhere */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    unsigned long long blen = 0;
    int digits = 0;
    if (nl && end - p > 7 && memcmp(p, "binary=", 7) == 0) {
        for (const char *q = p + 7; q < nl && digits >= 0; q++, digits++) {
            if (*q < '0' || *q > '9' || digits >= 12)
                digits = -2; /* the loop's ++ leaves it negative */
            else
                blen = blen * 10 + (unsigned)(*q - '0');
        }
    }
    if (!nl || digits <= 0) {
        snprintf(why, cap, "no valid length line");
        return 0;
    }
    char len_line[32];
    snprintf(len_line, sizeof len_line, "%.*s", (int)(nl + 1 - p), p);
    const char *sum = nl + 1;
    if (end - sum < 7 + 64 + 1 || memcmp(sum, "sha256=", 7) != 0 || sum[7 + 64] != '\n') {
        snprintf(why, cap, "no checksum line");
        return 0;
    }
    size_t at = (size_t)(sum + 7 + 64 + 1 - (const char *)data);
    if (blen == 0 || size - at != blen) {
        snprintf(why, cap, "%zu bytes of binary where the header says %llu", size - at, blen);
        return 0;
    }
    char want[65];
    entry_digest(key, len_line, data + at, (size_t)blen, want);
    if (memcmp(want, sum + 7, 64) != 0) {
        snprintf(why, cap, "checksum mismatch");
        return 0;
    }
    *bin_at = at;
    *bin_len = (size_t)blen;
    return 1;
}

/* Reads the entry for key: 1 with *bin (malloc'd) and *len, 0 if there is none, -1 when
 * one exists but is not usable (why says how). */
static int cache_load(const char *path, const char *key, unsigned char **bin, size_t *len,
                      char *why, size_t cap)
{
    unsigned char *data = NULL;
    size_t size = 0, at = 0, blen = 0;
    /* non-blocking and regular files only: a FIFO put in its place cannot hang us */
    if (kd_read_regular_file(path, KD_CL_CACHE_MAX_BYTES, (char **)&data, &size, why, cap))
        return errno == ENOENT ? 0 : -1;
    if (!parse_entry(data, size, key, &at, &blen, why, cap)) {
        free(data);
        return -1;
    }
    memmove(data, data + at, blen);
    *bin = data;
    *len = blen;
    return 1;
}

/* Writes the entry atomically: a temporary file in the same directory, flushed to disk,
 * then renamed over the entry (two processes compiling at once each rename a whole
 * entry). Best effort: a cache that cannot be written costs a compile next time. */
static void cache_save(const char *path, const char *key, const unsigned char *bin, size_t len)
{
    char tmp[1100], len_line[32], sum[65];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
        return;
    int fd = mkstemp(tmp);
    if (fd < 0)
        return;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        return;
    }
    snprintf(len_line, sizeof len_line, "binary=%zu\n", len);
    entry_digest(key, len_line, bin, len, sum);
    int ok = fputs(key, f) >= 0 && fputs(len_line, f) >= 0 &&
             fprintf(f, "sha256=%s\n", sum) > 0 && fwrite(bin, 1, len, f) == len &&
             fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || chmod(tmp, 0644) != 0 || rename(tmp, path) != 0)
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
    if (s->q8_quantize_kernel)
        clReleaseKernel(s->q8_quantize_kernel);
    s->q8_quantize_kernel = NULL;
    for (int t = 0; t < 2; t++) {
        if (s->q8_gemv_kernel[t])
            clReleaseKernel(s->q8_gemv_kernel[t]);
        s->q8_gemv_kernel[t] = NULL;
    }
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
    if (err == CL_SUCCESS && s->dialect == KD_DIALECT_OPENCL) { /* gemv_q8.cl: CPU shapes */
        name = "kd_q8_quantize";
        err = create_kernel(s, p, name, &s->q8_quantize_kernel, &s->q8_quantize_wg_max);
        for (int t = 0; t < 2 && err == CL_SUCCESS; t++) {
            name = t ? "kd_gemv_q6k_q8" : "kd_gemv_q4k_q8";
            err = create_kernel(s, p, name, &s->q8_gemv_kernel[t], &s->q8_gemv_wg_max[t]);
        }
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

/* The cache entry's path for this device and source, or "" (with one warning when a
 * directory is named but cannot be used: no cache then, every run compiles). */
static void cache_path(kd_context *ctx, const char *key, char *path, size_t cap)
{
    char dir[768], why[256];
    path[0] = '\0';
    if (usable_cache_dir(dir, sizeof dir, why, sizeof why))
        cache_file_name(dir, key, path, cap);
    else if (why[0])
        kd_warn(ctx, "opencl: program cache directory '%s' is not usable (%s): compiling "
                "without a cache", dir, why);
}

/* A program from the cache entry, or NULL: a bad entry is deleted and reported once, so
 * the caller compiles and rewrites it. */
static cl_program program_from_cache(kd_context *ctx, kd_cl_state *s, const char *key)
{
    unsigned char *bin = NULL;
    size_t len = 0;
    char why[256] = "";
    int rc = cache_load(s->cache_file, key, &bin, &len, why, sizeof why);
    cl_program p = NULL;
    if (rc > 0) {
        cl_int err = build_from_binary(s, bin, len, &p);
        free(bin);
        if (err == CL_SUCCESS)
            return p;
        snprintf(why, sizeof why, "the driver refused it: %s", kd_cl_error_name(err));
        /* an intact entry the driver refuses: PoCL's own cache is suspect too (a
         * damaged entry of ours never reached the driver, so it leaves PoCL's alone) */
        drop_driver_cache();
        rc = -1;
    }
    if (rc < 0) {
        unlink(s->cache_file);
        kd_warn(ctx, "opencl: program cache entry '%s' was unusable (%s): deleted, "
                "rebuilt from source", s->cache_file, why);
    }
    return NULL;
}

kd_status kd_cl_ensure_program(kd_context *ctx, kd_cl_state *s)
{
    if (s->program)
        return KD_OK;
    if (s->build_status != KD_OK)
        return kd_error(ctx, s->build_status, "%s", s->build_message);
    if (kd_fault_hit(ctx, KD_BACKEND_OPENCL, KD_FAULT_BUILD))
        return kd_error(ctx, KD_ERR_BUILD, "opencl: injected program build fault (KD_FAULT)");
    int64_t t0 = kd_monotonic_ns();
    char key[2048];
    cache_key(s, key, sizeof key);
    cache_path(ctx, key, s->cache_file, sizeof s->cache_file);
    cl_program p = s->cache_file[0] ? program_from_cache(ctx, s, key) : NULL;
    int from_cache = p != NULL;
    if (!p) {
        kd_status st = build_from_source(ctx, s, kd_opencl_source, kd_opencl_source_len,
                                         s->options, &p);
        if (st != KD_OK)
            return remember_failure(ctx, s, st);
        unsigned char *bin = NULL;
        size_t len = 0;
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
    s->build_ms = (double)(kd_monotonic_ns() - t0) / 1e6;
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
