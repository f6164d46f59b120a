/* Swiglu on the cpu: y = gate / (1 + exp(-gate)) * up. One flat pass over M*n values. */
#include <math.h>

#include "cpu_ops.h"
#include "simd.h"

typedef struct swiglu_job { const float *g, *u; float *y; kd_simd simd; } swiglu_job;

#ifdef KD_HAVE_X86
static KD_AVX2 void swiglu_avx2(const float *g, const float *u, float *y, int64_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 den = _mm256_add_ps(one, kd_exp256(_mm256_xor_ps(gv, sign)));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_div_ps(gv, den), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++)
        y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static KD_AVX512 void swiglu_avx512(const float *g, const float *u, float *y, int64_t n)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 gv = _mm512_loadu_ps(g + i);
        __m512 den = _mm512_add_ps(one, kd_exp512(_mm512_sub_ps(_mm512_setzero_ps(), gv)));
        _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_div_ps(gv, den), _mm512_loadu_ps(u + i)));
    }
    swiglu_avx2(g + i, u + i, y + i, n - i);
}
#endif

static void swiglu_range(void *arg, int64_t b, int64_t e)
{
    const swiglu_job *j = arg;
#ifdef KD_HAVE_X86
    if (j->simd == KD_SIMD_AVX512)
        return swiglu_avx512(j->g + b, j->u + b, j->y + b, e - b);
    if (j->simd >= KD_SIMD_AVX2)
        return swiglu_avx2(j->g + b, j->u + b, j->y + b, e - b);
#endif
    for (int64_t i = b; i < e; i++)
        j->y[i] = j->g[i] / (1.0f + expf(-j->g[i])) * j->u[i];
}

void kd_cpu_swiglu(const kd_cpu_env *e, const kd_call *c, int scalar)
{
    swiglu_job j = {c->src[0], c->src[1], c->dst, scalar ? KD_SIMD_SCALAR : e->simd};
    int64_t count = c->m * c->n;
    if (scalar)
        swiglu_range(&j, 0, count);
    else
        kd_pool_for(e->pool, count, 1 << 15, swiglu_range, &j);
}
