/* The backend registry: one line per backend, its id is its place. A backend whose sources
 * were not built (no OpenCL headers, no CUDA toolkit) keeps its id, its name and the fact
 * that it is an offload backend, so that configs and names that mention it still parse,
 * and says why it is absent. Tests add a backend at run time with kd_backend_register. */
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "kd_backend.h"

#define KD_NOT_BUILT(backend_name, why) \
    (&(const kd_backend_ops){.name = backend_name, .is_offload = 1, .not_built = "not built: " why})

static const kd_backend_ops *table[KD_BACKEND_COUNT] = {
    &kd_cpu_backend,
#ifdef KD_HAVE_OPENCL
    &kd_opencl_backend,
#else
    KD_NOT_BUILT("opencl", KD_OPENCL_NOT_BUILT),
#endif
#ifdef KD_HAVE_CUDA
    &kd_cuda_backend,
#else
    KD_NOT_BUILT("cuda", KD_CUDA_NOT_BUILT),
#endif
};

static pthread_mutex_t register_lock = PTHREAD_MUTEX_INITIALIZER;

int kd_backend_count(void)
{
    int n = 0;
    pthread_mutex_lock(&register_lock);
    while (n < KD_BACKEND_COUNT && table[n])
        n++;
    pthread_mutex_unlock(&register_lock);
    return n;
}

const kd_backend_ops *kd_backend_ops_of(kd_backend_id b)
{
    if ((unsigned)b >= KD_BACKEND_COUNT)
        return NULL;
    pthread_mutex_lock(&register_lock);
    const kd_backend_ops *ops = table[b];
    pthread_mutex_unlock(&register_lock);
    return ops;
}

int kd_backend_built(kd_backend_id b)
{
    const kd_backend_ops *ops = kd_backend_ops_of(b);
    return ops && !ops->not_built;
}

/* A table the dispatcher can use. Only id 0 is the host cpu: the metrics count every other
 * id as an offload (gpu) dispatch, so a further backend must be an offload backend. */
static int complete(const kd_backend_ops *ops)
{
    return ops && ops->name && ops->name[0] && !ops->not_built && ops->is_offload && ops->init &&
           ops->shutdown && ops->describe && ops->run;
}

kd_backend_id kd_backend_register(const kd_backend_ops *ops)
{
    if (!complete(ops) || kd_backend_from_name(ops->name) != KD_BACKEND_COUNT)
        return KD_BACKEND_COUNT;
    kd_backend_id id = KD_BACKEND_COUNT;
    pthread_mutex_lock(&register_lock);
    for (int b = 0; b < KD_BACKEND_COUNT && id == KD_BACKEND_COUNT; b++)
        if (!table[b]) {
            table[b] = ops;
            id = (kd_backend_id)b;
        }
    pthread_mutex_unlock(&register_lock);
    return id;
}

int kd_backend_device_is_gpu(const kd_backend_ops *ops, void *state)
{
    return ops->is_gpu && state ? ops->is_gpu(state) != 0 : ops->assumed_gpu != 0;
}

const char *kd_backend_name(kd_backend_id b)
{
    const kd_backend_ops *ops = kd_backend_ops_of(b);
    return ops ? ops->name : "auto";
}

kd_backend_id kd_backend_from_name(const char *name)
{
    if (!name)
        return KD_BACKEND_COUNT;
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        const kd_backend_ops *ops = kd_backend_ops_of((kd_backend_id)b);
        if (ops && strcasecmp(name, ops->name) == 0)
            return (kd_backend_id)b;
    }
    return strcasecmp(name, "auto") == 0 ? KD_BACKEND_AUTO : KD_BACKEND_COUNT;
}
