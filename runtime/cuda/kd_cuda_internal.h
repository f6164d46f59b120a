/*
 * The CUDA backend's internals: the few CUDA driver API types and entry points it uses,
 * declared here (values as in the toolkit's cuda.h) and loaded with dlopen at run time,
 * so the library neither includes cuda.h nor links libcuda/libcudart and builds, links
 * and runs where no driver exists; and the PTX embedded at build time.
 */
#ifndef KD_CUDA_INTERNAL_H
#define KD_CUDA_INTERNAL_H

#include <stddef.h>

#include "kdispatch.h"

/* ---- driver API subset (cuda.h) --------------------------------------------------- */

typedef int CUresult;              /* CUDA_SUCCESS = 0 */
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef int CUjit_option;
typedef int CUdevice_attribute;
typedef int CUfunction_attribute;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_NO_DEVICE 100
#define CUDA_ERROR_UNSUPPORTED_PTX_VERSION 222

#define CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK 1
#define CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X 2
#define CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y 3
#define CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z 4
#define CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X 5
#define CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y 6
#define CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z 7
#define CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK 8
#define CU_DEVICE_ATTRIBUTE_CLOCK_RATE 13
#define CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT 16
#define CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE 36
#define CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH 37
#define CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE 38
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR 75
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR 76

#define CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES 1
#define CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES 3
#define CU_FUNC_ATTRIBUTE_NUM_REGS 4

#define CU_JIT_INFO_LOG_BUFFER 3
#define CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES 4
#define CU_JIT_ERROR_LOG_BUFFER 5
#define CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES 6

/* The driver's entry points, by the ABI names that cuda.h's macros map to (_v2). */
typedef struct kd_cuda_driver {
    void *lib; /* dlopen handle */
    CUresult (*cuInit)(unsigned int flags);
    CUresult (*cuDriverGetVersion)(int *version);
    CUresult (*cuGetErrorName)(CUresult error, const char **str);
    CUresult (*cuGetErrorString)(CUresult error, const char **str);
    CUresult (*cuDeviceGetCount)(int *count);
    CUresult (*cuDeviceGet)(CUdevice *dev, int ordinal);
    CUresult (*cuDeviceGetName)(char *name, int len, CUdevice dev);
    CUresult (*cuDeviceGetAttribute)(int *value, CUdevice_attribute attrib, CUdevice dev);
    CUresult (*cuDeviceTotalMem)(size_t *bytes, CUdevice dev);                 /* _v2 */
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *ctx, CUdevice dev);
    CUresult (*cuDevicePrimaryCtxRelease)(CUdevice dev);                       /* _v2 */
    CUresult (*cuCtxPushCurrent)(CUcontext ctx);                               /* _v2 */
    CUresult (*cuCtxPopCurrent)(CUcontext *ctx);                               /* _v2 */
    CUresult (*cuCtxSynchronize)(void);
    CUresult (*cuModuleLoadDataEx)(CUmodule *module, const void *image, unsigned int n,
                                   CUjit_option *options, void **values);
    CUresult (*cuModuleUnload)(CUmodule module);
    CUresult (*cuModuleGetFunction)(CUfunction *fn, CUmodule module, const char *name);
    CUresult (*cuFuncGetAttribute)(int *value, CUfunction_attribute attrib, CUfunction fn);
    CUresult (*cuMemAlloc)(CUdeviceptr *ptr, size_t bytes);                    /* _v2 */
    CUresult (*cuMemFree)(CUdeviceptr ptr);                                    /* _v2 */
    CUresult (*cuMemcpyHtoD)(CUdeviceptr dst, const void *src, size_t bytes);  /* _v2 */
    CUresult (*cuMemcpyDtoH)(void *dst, CUdeviceptr src, size_t bytes);        /* _v2 */
    CUresult (*cuLaunchKernel)(CUfunction fn, unsigned int gx, unsigned int gy, unsigned int gz,
                               unsigned int bx, unsigned int by, unsigned int bz,
                               unsigned int shared_bytes, CUstream stream, void **params,
                               void **extra);
} kd_cuda_driver;

/* Loads the driver library ($KD_CUDA_DRIVER if set, else libcuda.so.1) and every entry
 * point above. KD_ERR_UNAVAILABLE with the reason in why when the library or a symbol is
 * missing. Does not call cuInit. */
kd_status kd_cuda_driver_open(kd_cuda_driver *drv, char *why, size_t why_cap);
/* Closes a driver opened by kd_cuda_driver_open on which cuInit was never called (an
 * initialised driver stays loaded: unloading libcuda is not supported). */
void kd_cuda_driver_close(kd_cuda_driver *drv);

/* "CUDA_ERROR_OUT_OF_MEMORY (out of memory)", or the number when the driver cannot name
 * it. */
void kd_cuda_error_text(const kd_cuda_driver *drv, CUresult r, char *buf, size_t cap);

/* ---- embedded PTX (generated at build time from build/ptx/kdispatch_sm_*.ptx) ------ */

extern const char kd_cuda_ptx_sm_80[];  /* NUL-terminated PTX text */
extern const size_t kd_cuda_ptx_sm_80_size; /* bytes, without the NUL */
extern const char kd_cuda_ptx_sm_90[];
extern const size_t kd_cuda_ptx_sm_90_size;

#endif /* KD_CUDA_INTERNAL_H */
