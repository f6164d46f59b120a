/* ResidualAdd on the cpu: y = x + r. One flat pass over M*n values; threads split it. */
#include "cpu_ops.h"
#include "simd.h"

typedef struct add_job { const float *x, *r; float *y; kd_simd simd; } add_job;

#ifdef KD_HAVE_X86
static KD_AVX2 void add_avx2(const float *x, const float *r, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(r + i)));
    for (; i < n; i++)
        y[i] = x[i] + r[i];
}

static KD_AVX512 void add_avx512(const float *x, const float *r, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(r + i)));
    add_avx2(x + i, r + i, y + i, n - i);
}
#endif

static void add_range(void *arg, int64_t b, int64_t e)
{
    const add_job *j = arg;
#ifdef KD_HAVE_X86
    if (j->simd == KD_SIMD_AVX512)
        return add_avx512(j->x + b, j->r + b, j->y + b, e - b);
    if (j->simd >= KD_SIMD_AVX2)
        return add_avx2(j->x + b, j->r + b, j->y + b, e - b);
#endif
    for (int64_t i = b; i < e; i++)
        j->y[i] = j->x[i] + j->r[i];
}

void kd_cpu_residual_add(const kd_cpu_env *e, const kd_call *c, int scalar)
{
    add_job j = {c->src[0], c->src[1], c->dst, scalar ? KD_SIMD_SCALAR : e->simd};
    int64_t count = c->m * c->n;
    if (scalar)
        add_range(&j, 0, count);
    else
        kd_pool_for(e->pool, count, 1 << 16, add_range, &j);
}
