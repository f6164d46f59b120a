/* ResidualAdd on the cpu: y = x + r. One flat pass over M*n values; threads split it. */
#include "cpu_ops.h"
#include "simd.h"

typedef struct add_job { const float *x, *r; float *y; int simd; } add_job;

#ifdef KD_HAVE_X86
static KD_AVX2 void add_avx2(const float *x, const float *r, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(r + i)));
    for (; i < n; i++)
        y[i] = x[i] + r[i];
}
#endif

static void add_range(void *arg, int64_t b, int64_t e)
{
    const add_job *j = arg;
#ifdef KD_HAVE_X86
    if (j->simd)
        return add_avx2(j->x + b, j->r + b, j->y + b, e - b);
#endif
    for (int64_t i = b; i < e; i++)
        j->y[i] = j->x[i] + j->r[i];
}

void kd_cpu_residual_add(const kd_cpu_env *e, const kd_call *c, int scalar)
{
    add_job j = {c->src[0], c->src[1], c->dst, !scalar && e->simd >= KD_SIMD_AVX2};
    int64_t count = c->m * c->n;
    if (scalar)
        add_range(&j, 0, count);
    else
        kd_pool_for(e->pool, count, 1 << 16, add_range, &j);
}
