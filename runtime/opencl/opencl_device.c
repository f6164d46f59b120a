/* OpenCL devices: error names, device queries, the choice of device by environment
 * variables or by type, and the device listing (`kdispatch devices`). */
#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "env.h"
#include "host_cpus.h"
#include "kd_opencl_internal.h"

#define KD_CL_MAX_PLATFORMS 16
#define KD_CL_MAX_DEVICES 64 /* per platform */
/* cl_khr_icd: the loader found no vendor driver (cl_ext.h names it) */
#define KD_CL_PLATFORM_NOT_FOUND (-1001)

const char *kd_cl_error_name(cl_int err)
{
    switch (err) {
#define N(x) case x: return #x;
    N(CL_SUCCESS) N(CL_DEVICE_NOT_FOUND) N(CL_DEVICE_NOT_AVAILABLE)
    N(CL_COMPILER_NOT_AVAILABLE) N(CL_MEM_OBJECT_ALLOCATION_FAILURE) N(CL_OUT_OF_RESOURCES)
    N(CL_OUT_OF_HOST_MEMORY) N(CL_PROFILING_INFO_NOT_AVAILABLE) N(CL_MEM_COPY_OVERLAP)
    N(CL_IMAGE_FORMAT_MISMATCH) N(CL_IMAGE_FORMAT_NOT_SUPPORTED) N(CL_BUILD_PROGRAM_FAILURE)
    N(CL_MAP_FAILURE) N(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    N(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST) N(CL_COMPILE_PROGRAM_FAILURE)
    N(CL_LINKER_NOT_AVAILABLE) N(CL_LINK_PROGRAM_FAILURE) N(CL_DEVICE_PARTITION_FAILED)
    N(CL_KERNEL_ARG_INFO_NOT_AVAILABLE) N(CL_INVALID_VALUE) N(CL_INVALID_DEVICE_TYPE)
    N(CL_INVALID_PLATFORM) N(CL_INVALID_DEVICE) N(CL_INVALID_CONTEXT)
    N(CL_INVALID_QUEUE_PROPERTIES) N(CL_INVALID_COMMAND_QUEUE) N(CL_INVALID_HOST_PTR)
    N(CL_INVALID_MEM_OBJECT) N(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) N(CL_INVALID_IMAGE_SIZE)
    N(CL_INVALID_SAMPLER) N(CL_INVALID_BINARY) N(CL_INVALID_BUILD_OPTIONS)
    N(CL_INVALID_PROGRAM) N(CL_INVALID_PROGRAM_EXECUTABLE) N(CL_INVALID_KERNEL_NAME)
    N(CL_INVALID_KERNEL_DEFINITION) N(CL_INVALID_KERNEL) N(CL_INVALID_ARG_INDEX)
    N(CL_INVALID_ARG_VALUE) N(CL_INVALID_ARG_SIZE) N(CL_INVALID_KERNEL_ARGS)
    N(CL_INVALID_WORK_DIMENSION) N(CL_INVALID_WORK_GROUP_SIZE) N(CL_INVALID_WORK_ITEM_SIZE)
    N(CL_INVALID_GLOBAL_OFFSET) N(CL_INVALID_EVENT_WAIT_LIST) N(CL_INVALID_EVENT)
    N(CL_INVALID_OPERATION) N(CL_INVALID_GL_OBJECT) N(CL_INVALID_BUFFER_SIZE)
    N(CL_INVALID_MIP_LEVEL) N(CL_INVALID_GLOBAL_WORK_SIZE) N(CL_INVALID_PROPERTY)
    N(CL_INVALID_IMAGE_DESCRIPTOR) N(CL_INVALID_COMPILER_OPTIONS)
    N(CL_INVALID_LINKER_OPTIONS) N(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef N
    /* newer or extension codes, by value so that older headers still compile */
    case -69: return "CL_INVALID_PIPE_SIZE";
    case -70: return "CL_INVALID_DEVICE_QUEUE";
    case -71: return "CL_INVALID_SPEC_ID";
    case -72: return "CL_MAX_SIZE_RESTRICTION_EXCEEDED";
    case -1000: return "CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: {
        static _Thread_local char buf[48];
        snprintf(buf, sizeof buf, "CL_UNKNOWN_ERROR(%d)", (int)err);
        return buf;
    }
    }
}

/* ---- queries ---------------------------------------------------------------------- */

/* clGetDeviceInfo or clGetPlatformInfo on *obj, so that one function reads strings of both. */
typedef cl_int (*info_query)(const void *obj, cl_uint what, size_t size, void *value,
                             size_t *size_ret);

static cl_int query_device(const void *obj, cl_uint what, size_t size, void *value,
                           size_t *size_ret)
{
    return clGetDeviceInfo(*(const cl_device_id *)obj, what, size, value, size_ret);
}

static cl_int query_platform(const void *obj, cl_uint what, size_t size, void *value,
                             size_t *size_ret)
{
    return clGetPlatformInfo(*(const cl_platform_id *)obj, what, size, value, size_ret);
}

/* A string property, truncated to cap; "?" if the query fails. */
static void info_str(info_query query, const void *obj, cl_uint what, char *buf, size_t cap)
{
    size_t need = 0;
    snprintf(buf, cap, "?");
    if (query(obj, what, 0, NULL, &need) != CL_SUCCESS || need == 0)
        return;
    char *tmp = malloc(need + 1);
    if (tmp && query(obj, what, need, tmp, NULL) == CL_SUCCESS) {
        tmp[need] = '\0';
        snprintf(buf, cap, "%s", tmp);
    }
    free(tmp);
}

static void dev_str(cl_device_id d, cl_device_info what, char *buf, size_t cap)
{
    info_str(query_device, &d, what, buf, cap);
}

static void plat_str(cl_platform_id p, cl_platform_info what, char *buf, size_t cap)
{
    info_str(query_platform, &p, what, buf, cap);
}

/* A fixed-size property (cl_uint, cl_ulong, size_t, ...); 0 if the query fails. */
static void dev_val(cl_device_id d, cl_device_info what, void *out, size_t size)
{
    if (clGetDeviceInfo(d, what, size, out, NULL) != CL_SUCCESS)
        memset(out, 0, size);
}

const char *kd_cl_device_type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU)
        return "GPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR)
        return "accelerator";
    if (t & CL_DEVICE_TYPE_CPU)
        return "CPU";
    return "other";
}

/* Auto choice order: a GPU, then an accelerator, then a CPU device. */
static int type_rank(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU)
        return 3;
    if (t & CL_DEVICE_TYPE_ACCELERATOR)
        return 2;
    if (t & CL_DEVICE_TYPE_CPU)
        return 1;
    return 0;
}

/* ---- enumeration ------------------------------------------------------------------ */

typedef struct cl_entry {
    cl_platform_id platform;
    cl_device_id device;
    int pi, di;             /* platform index, device index within the platform */
    cl_device_type type;
    int usable;             /* available and with a compiler */
    char pname[128];
    char dname[128];
} cl_entry;

typedef struct cl_list {
    cl_entry e[KD_CL_MAX_PLATFORMS * KD_CL_MAX_DEVICES];
    int count;
    int platforms;
    char pnames[KD_CL_MAX_PLATFORMS][128];
} cl_list;

/* PoCL's CPU device runs one thread per online CPU, whatever the process's affinity mask or
 * cgroup quota (PoCL 3.1: 2 compute units under `taskset -c 0` on 2 CPUs). Where the
 * process may use fewer CPUs (host_cpus.h), PoCL is told so, unless the user set its
 * count: POCL_MAX_PTHREAD_COUNT is PoCL 3's name, POCL_CPU_MAX_CU_COUNT PoCL 4's (which
 * still reads the old one). PoCL reads them when it initializes, as POCL_CACHE_DIR. */
static void limit_driver_threads(void)
{
    static const char *const counts[] = {"POCL_CPU_MAX_CU_COUNT", "POCL_MAX_PTHREAD_COUNT",
                                         "POCL_MAX_COMPUTE_UNITS"};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
        if (getenv(counts[i]))
            return;
    kd_host_cpus cpus;
    kd_host_cpus_read(&cpus);
    if (cpus.usable >= cpus.online)
        return;
    char n[16];
    snprintf(n, sizeof n, "%d", cpus.usable);
    setenv("POCL_CPU_MAX_CU_COUNT", n, 0);
    setenv("POCL_MAX_PTHREAD_COUNT", n, 0);
}

static void prepare_driver_env(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, limit_driver_threads);
    kd_cl_prepare_driver_cache();
}

/* Every device of every platform; CL_SUCCESS or the failing call's code in *err. */
static void enumerate(cl_list *l, cl_int *err, const char **call)
{
    cl_platform_id plats[KD_CL_MAX_PLATFORMS];
    cl_uint np = 0;
    l->count = l->platforms = 0;
    prepare_driver_env(); /* before PoCL initializes */
    *call = "clGetPlatformIDs";
    *err = clGetPlatformIDs(KD_CL_MAX_PLATFORMS, plats, &np);
    if (*err != CL_SUCCESS)
        return;
    l->platforms = (int)(np < KD_CL_MAX_PLATFORMS ? np : KD_CL_MAX_PLATFORMS);
    for (int p = 0; p < l->platforms; p++) {
        plat_str(plats[p], CL_PLATFORM_NAME, l->pnames[p], sizeof l->pnames[p]);
        cl_device_id devs[KD_CL_MAX_DEVICES];
        cl_uint nd = 0;
        cl_int e = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, KD_CL_MAX_DEVICES, devs, &nd);
        if (e == CL_DEVICE_NOT_FOUND)
            continue; /* a platform with no device is not an error */
        if (e != CL_SUCCESS) {
            *err = e;
            *call = "clGetDeviceIDs";
            return;
        }
        for (cl_uint d = 0; d < nd && d < KD_CL_MAX_DEVICES; d++) {
            cl_entry *x = &l->e[l->count++];
            cl_bool avail = CL_FALSE, compiler = CL_FALSE;
            x->platform = plats[p];
            x->device = devs[d];
            x->pi = p;
            x->di = (int)d;
            dev_val(devs[d], CL_DEVICE_TYPE, &x->type, sizeof x->type);
            dev_val(devs[d], CL_DEVICE_AVAILABLE, &avail, sizeof avail);
            dev_val(devs[d], CL_DEVICE_COMPILER_AVAILABLE, &compiler, sizeof compiler);
            x->usable = avail && compiler;
            snprintf(x->pname, sizeof x->pname, "%s", l->pnames[p]);
            dev_str(devs[d], CL_DEVICE_NAME, x->dname, sizeof x->dname);
        }
    }
}

/* ---- choice by environment -------------------------------------------------------- */

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return n == 0;
}

/* Appends printf-style text to buf (bounded). */
#if defined(__GNUC__)
static void append(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#endif
static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

static void list_platforms(const cl_list *l, char *why, size_t cap)
{
    append(why, cap, "; platforms:");
    for (int p = 0; p < l->platforms; p++)
        append(why, cap, " [%d] '%s'", p, l->pnames[p]);
}

static void list_devices_of(const cl_list *l, const int *keep, char *why, size_t cap)
{
    append(why, cap, "; devices:");
    for (int i = 0; i < l->count; i++)
        if (keep[i])
            append(why, cap, " [%d] '%s' (%s, platform %d '%s')%s", l->e[i].di, l->e[i].dname,
                   kd_cl_device_type_name(l->e[i].type), l->e[i].pi, l->e[i].pname,
                   l->e[i].usable ? "" : " not usable");
}

/* keep[i] = 1 for the devices of the platform env names (all if NULL); from labels the
 * messages (KD_OPENCL_PLATFORM or the context option). */
static kd_status filter_platform(const cl_list *l, const char *env, const char *from, int *keep,
                                 char *why, size_t cap)
{
    int any = 0;
    for (int i = 0; i < l->count; i++) {
        const cl_entry *e = &l->e[i];
        keep[i] = !env || !*env ||
                  (all_digits(env) ? e->pi == atoi(env) : contains_nocase(e->pname, env));
        any |= keep[i];
    }
    if (any)
        return KD_OK;
    snprintf(why, cap, "%s='%s' matches no OpenCL platform with a device", from, env);
    list_platforms(l, why, cap);
    return KD_ERR_ARG;
}

/* The index in l of the device KD_OPENCL_DEVICE names among the kept ones, or the best
 * usable one when it is unset; -1 with why filled if none. An index counts devices
 * within the chosen platform, or across all platforms when none is chosen. */
static int pick_device(const cl_list *l, const int *keep, const char *env, const char *from,
                       int by_platform, char *why, size_t cap)
{
    if (env && *env) {
        int want = all_digits(env) ? atoi(env) : -1, seen = 0;
        for (int i = 0; i < l->count; i++) {
            if (!keep[i])
                continue;
            int index = by_platform ? l->e[i].di : seen;
            seen++;
            if (want >= 0 ? index == want : contains_nocase(l->e[i].dname, env)) {
                if (l->e[i].usable)
                    return i;
                snprintf(why, cap, "%s='%s': device '%s' is not available or has no compiler",
                         from, env, l->e[i].dname);
                return -1;
            }
        }
        snprintf(why, cap, "%s='%s' matches no OpenCL device", from, env);
        list_devices_of(l, keep, why, cap);
        return -1;
    }
    int best = -1;
    for (int i = 0; i < l->count; i++)
        if (keep[i] && l->e[i].usable &&
            (best < 0 || type_rank(l->e[i].type) > type_rank(l->e[best].type)))
            best = i;
    if (best < 0) {
        snprintf(why, cap, "no usable OpenCL device (available, with a compiler)");
        list_devices_of(l, keep, why, cap);
    }
    return best;
}

/* The limits kd_launch_geometry needs; CL_SUCCESS or the first failing query's code. */
static cl_int read_limits(kd_cl_state *s, const char **what)
{
    size_t wg = 0, items[16] = {0};
    cl_uint dims = 0;
    cl_ulong local = 0;
    cl_int err;
    *what = "CL_DEVICE_MAX_WORK_GROUP_SIZE";
    if ((err = clGetDeviceInfo(s->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL)))
        return err;
    *what = "CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS";
    if ((err = clGetDeviceInfo(s->device, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS, sizeof dims, &dims,
                               NULL)))
        return err;
    if (dims < 3 || dims > 16)
        return CL_INVALID_VALUE;
    *what = "CL_DEVICE_MAX_WORK_ITEM_SIZES";
    if ((err = clGetDeviceInfo(s->device, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof(size_t) * dims,
                               items, NULL)))
        return err;
    *what = "CL_DEVICE_LOCAL_MEM_SIZE";
    if ((err = clGetDeviceInfo(s->device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local, &local, NULL)))
        return err;
    kd_device_limits *lim = &s->limits;
    lim->max_threads_per_block = (uint32_t)(wg > UINT32_MAX ? UINT32_MAX : wg);
    for (int i = 0; i < 3; i++) {
        lim->max_block[i] = (uint32_t)(items[i] > UINT32_MAX ? UINT32_MAX : items[i]);
        /* the kernels index work-items with int: global = grid * block < 2^31 */
        lim->max_grid[i] = INT32_MAX / (items[i] ? items[i] : 1);
    }
    lim->max_shared_bytes = local;
    return CL_SUCCESS;
}

static kd_status read_device(kd_cl_state *s, const cl_entry *e, char *why, size_t cap)
{
    char cver[64];
    s->platform = e->platform;
    s->device = e->device;
    s->type = e->type;
    plat_str(e->platform, CL_PLATFORM_NAME, s->platform_name, sizeof s->platform_name);
    dev_str(e->device, CL_DEVICE_NAME, s->device_name, sizeof s->device_name);
    dev_str(e->device, CL_DEVICE_VERSION, s->device_version, sizeof s->device_version);
    dev_str(e->device, CL_DRIVER_VERSION, s->driver_version, sizeof s->driver_version);
    dev_str(e->device, CL_DEVICE_OPENCL_C_VERSION, cver, sizeof cver);
    int major = 0, minor = 0;
    s->opencl_c_12 = sscanf(cver, "OpenCL C %d.%d", &major, &minor) == 2 &&
                     (major > 1 || (major == 1 && minor >= 2));
    dev_val(e->device, CL_DEVICE_MAX_COMPUTE_UNITS, &s->compute_units, sizeof s->compute_units);
    const char *what = "";
    cl_int err = read_limits(s, &what);
    if (err == CL_SUCCESS)
        return KD_OK;
    snprintf(why, cap, "clGetDeviceInfo(%s) on '%s' failed: %s", what, s->device_name,
             kd_cl_error_name(err));
    return KD_ERR_UNAVAILABLE;
}

/* The first OpenCL driver the ICD loader is told about ($OCL_ICD_VENDORS, else
 * /etc/OpenCL/vendors/NAME.icd): 1 with its file name, 0 when none is registered. */
static int registered_driver(char *name, size_t cap)
{
    const char *env = getenv("OCL_ICD_VENDORS");
    const char *dir = env && *env ? env : "/etc/OpenCL/vendors";
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISREG(st.st_mode)) { /* OCL_ICD_VENDORS may name one file */
        snprintf(name, cap, "%s", dir);
        return 1;
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && !found && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".icd") == 0) {
            snprintf(name, cap, "%s/%s", dir, e->d_name);
            found = 1;
        }
    }
    if (d)
        closedir(d);
    return found;
}

/* A failed OpenCL call during the device choice: memory errors are KD_ERR_NOMEM, the
 * rest of a driver that is there but failing KD_ERR_LAUNCH (kd_backend_init_status). */
static kd_status status_of_call(cl_int err)
{
    return err == CL_OUT_OF_HOST_MEMORY || err == CL_OUT_OF_RESOURCES ? KD_ERR_NOMEM
                                                                       : KD_ERR_LAUNCH;
}

kd_status kd_cl_choose_device(kd_cl_state *s, const kd_settings *want, char *why, size_t cap)
{
    cl_list *l = calloc(1, sizeof *l);
    int *keep = calloc(KD_CL_MAX_PLATFORMS * KD_CL_MAX_DEVICES, sizeof *keep);
    if (!l || !keep) {
        free(l);
        free(keep);
        snprintf(why, cap, "out of host memory listing OpenCL devices");
        return KD_ERR_NOMEM;
    }
    cl_int err;
    const char *call;
    kd_status st = KD_OK;
    enumerate(l, &err, &call);
    char icd[256] = "";
    if (err == KD_CL_PLATFORM_NOT_FOUND && registered_driver(icd, sizeof icd)) {
        /* a driver is installed but did not load: say so, not "install a driver" */
        snprintf(why, cap, "the OpenCL driver registered as '%s' did not load (clGetPlatformIDs: "
                 "%s; out of memory or address space? OCL_ICD_DEBUG=7 shows the loader's "
                 "reason)", icd, kd_cl_error_name(err));
        st = KD_ERR_LAUNCH;
    } else if (err == KD_CL_PLATFORM_NOT_FOUND || (err == CL_SUCCESS && l->count == 0)) {
        snprintf(why, cap, "no OpenCL device: the ICD loader found %s (install a driver, e.g. "
                 "pocl-opencl-icd)", err == CL_SUCCESS ? "platforms but no device" : "no platform");
        st = KD_ERR_UNAVAILABLE;
    } else if (err != CL_SUCCESS) {
        snprintf(why, cap, "%s failed: %s", call, kd_cl_error_name(err));
        st = status_of_call(err);
    } else {
        /* Read and validated once, at context creation (env.c): an index there fits an int. */
        const char *penv = want->opencl_platform[0] ? want->opencl_platform : NULL;
        const char *denv = want->opencl_device[0] ? want->opencl_device : NULL;
        st = filter_platform(l, penv, want->opencl_platform_from, keep, why, cap);
        if (st == KD_OK) {
            int i = pick_device(l, keep, denv, want->opencl_device_from, penv != NULL, why, cap);
            if (i < 0)
                st = denv ? KD_ERR_ARG : KD_ERR_UNAVAILABLE;
            else
                st = read_device(s, &l->e[i], why, cap);
        }
    }
    free(keep);
    free(l);
    return st;
}

/* ---- devices as data -------------------------------------------------------------- */

static void fill_info(const cl_entry *e, kd_device_info *out)
{
    cl_uint cus = 0;
    cl_ulong gmem = 0;
    /* cut to the public struct's fields */
    snprintf(out->name, sizeof out->name, "%.*s", (int)sizeof out->name - 1, e->dname);
    snprintf(out->platform, sizeof out->platform, "%.*s", (int)sizeof out->platform - 1,
             e->pname);
    dev_str(e->device, CL_DEVICE_VENDOR, out->vendor, sizeof out->vendor);
    dev_str(e->device, CL_DRIVER_VERSION, out->driver_version, sizeof out->driver_version);
    dev_val(e->device, CL_DEVICE_MAX_COMPUTE_UNITS, &cus, sizeof cus);
    dev_val(e->device, CL_DEVICE_GLOBAL_MEM_SIZE, &gmem, sizeof gmem);
    out->is_gpu = (e->type & CL_DEVICE_TYPE_GPU) != 0;
    out->usable = e->usable;
    out->global_mem_bytes = gmem;
    out->compute_units = (int)cus;
}

/* Devices in enumeration order (platform by platform): the indices KD_OPENCL_DEVICE takes
 * when no platform is named. No ICD driver installed: no device, not an error. */
kd_status kd_cl_device_info(int index, kd_device_info *out, int *count, char *why, size_t cap)
{
    cl_list *l = calloc(1, sizeof *l);
    *count = 0;
    if (!l) {
        snprintf(why, cap, "out of host memory listing OpenCL devices");
        return KD_ERR_NOMEM;
    }
    cl_int err;
    const char *call;
    kd_status st = KD_OK;
    enumerate(l, &err, &call);
    if (err == CL_SUCCESS) {
        *count = l->count;
        if (out && index >= 0 && index < l->count)
            fill_info(&l->e[index], out);
    } else if (err != KD_CL_PLATFORM_NOT_FOUND) {
        snprintf(why, cap, "%s failed: %s", call, kd_cl_error_name(err));
        st = KD_ERR_UNAVAILABLE;
    }
    free(l);
    return st;
}
