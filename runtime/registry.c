/* The backend registry: one line per backend. A backend whose sources were not built
 * (no OpenCL headers, no CUDA toolkit) is NULL here and says why. */
#include "kd_backend.h"

const kd_backend_ops *const kd_backend_table[KD_BACKEND_COUNT] = {
    [KD_BACKEND_CPU] = &kd_cpu_backend,
#ifdef KD_HAVE_OPENCL
    [KD_BACKEND_OPENCL] = &kd_opencl_backend,
#endif
#ifdef KD_HAVE_CUDA
    [KD_BACKEND_CUDA] = &kd_cuda_backend,
#endif
};

const char *kd_backend_not_built_reason(kd_backend_id b)
{
    switch (b) {
    case KD_BACKEND_OPENCL: return "not built: " KD_OPENCL_NOT_BUILT;
    case KD_BACKEND_CUDA: return "not built: " KD_CUDA_NOT_BUILT;
    default: return "";
    }
}
