/* Loading the CUDA driver at run time: dlopen + dlsym of the entry points the backend
 * uses (kd_cuda_internal.h). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kd_cuda_internal.h"

#define KD_CUDA_DEFAULT_DRIVER "libcuda.so.1"

/* One entry point: its slot in the table and its exported (ABI) name. */
typedef struct driver_symbol {
    size_t offset;
    const char *name;
} driver_symbol;

#define SYM(field, abi) {offsetof(kd_cuda_driver, field), abi}
static const driver_symbol symbols[] = {
    SYM(cuInit, "cuInit"),
    SYM(cuDriverGetVersion, "cuDriverGetVersion"),
    SYM(cuGetErrorName, "cuGetErrorName"),
    SYM(cuGetErrorString, "cuGetErrorString"),
    SYM(cuDeviceGetCount, "cuDeviceGetCount"),
    SYM(cuDeviceGet, "cuDeviceGet"),
    SYM(cuDeviceGetName, "cuDeviceGetName"),
    SYM(cuDeviceGetAttribute, "cuDeviceGetAttribute"),
    SYM(cuDeviceTotalMem, "cuDeviceTotalMem_v2"),
    SYM(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
    SYM(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"),
    SYM(cuCtxPushCurrent, "cuCtxPushCurrent_v2"),
    SYM(cuCtxPopCurrent, "cuCtxPopCurrent_v2"),
    SYM(cuCtxSynchronize, "cuCtxSynchronize"),
    SYM(cuModuleLoadDataEx, "cuModuleLoadDataEx"),
    SYM(cuModuleUnload, "cuModuleUnload"),
    SYM(cuModuleGetFunction, "cuModuleGetFunction"),
    SYM(cuFuncGetAttribute, "cuFuncGetAttribute"),
    SYM(cuMemAlloc, "cuMemAlloc_v2"),
    SYM(cuMemFree, "cuMemFree_v2"),
    SYM(cuMemcpyHtoD, "cuMemcpyHtoD_v2"),
    SYM(cuMemcpyDtoH, "cuMemcpyDtoH_v2"),
    SYM(cuLaunchKernel, "cuLaunchKernel"),
};
#undef SYM

kd_status kd_cuda_driver_open(kd_cuda_driver *drv, char *why, size_t why_cap)
{
    memset(drv, 0, sizeof *drv);
    const char *path = getenv("KD_CUDA_DRIVER");
    if (!path || !path[0])
        path = KD_CUDA_DEFAULT_DRIVER;
    dlerror();
    drv->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!drv->lib) {
        const char *err = dlerror();
        snprintf(why, why_cap, "%s not found: %s (no NVIDIA driver installed)", path,
                 err ? err : "dlopen failed");
        return KD_ERR_UNAVAILABLE;
    }
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        void *fn = dlsym(drv->lib, symbols[i].name);
        if (!fn) {
            snprintf(why, why_cap, "%s does not export %s (driver too old, or not the CUDA "
                     "driver)", path, symbols[i].name);
            dlclose(drv->lib);
            memset(drv, 0, sizeof *drv);
            return KD_ERR_UNAVAILABLE;
        }
        /* dlsym returns an object pointer; POSIX guarantees it converts to a function
         * pointer, which memcpy expresses without a cast C forbids. */
        memcpy((char *)drv + symbols[i].offset, &fn, sizeof fn);
    }
    return KD_OK;
}

void kd_cuda_driver_close(kd_cuda_driver *drv)
{
    if (drv->lib)
        dlclose(drv->lib);
    memset(drv, 0, sizeof *drv);
}

void kd_cuda_error_text(const kd_cuda_driver *drv, CUresult r, char *buf, size_t cap)
{
    const char *name = NULL, *desc = NULL;
    if (drv->cuGetErrorName && drv->cuGetErrorName(r, &name) != CUDA_SUCCESS)
        name = NULL;
    if (drv->cuGetErrorString && drv->cuGetErrorString(r, &desc) != CUDA_SUCCESS)
        desc = NULL;
    if (name && desc)
        snprintf(buf, cap, "%s (%s)", name, desc);
    else if (name)
        snprintf(buf, cap, "%s", name);
    else
        snprintf(buf, cap, "CUresult %d", (int)r);
}
