/* RmsNorm on the cpu: y = x * w / sqrt(mean(x^2) + eps), per row; f32 accumulation. */
#include <math.h>

#include "cpu_ops.h"
#include "simd.h"

typedef struct norm_job { const float *x, *w; float *y; int64_t n; float eps; kd_simd simd; } norm_job;

static void rmsnorm_row_scalar(const float *x, const float *w, float *y, int64_t n, float eps)
{
    float ss = 0.0f;
    for (int64_t i = 0; i < n; i++)
        ss += x[i] * x[i];
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * scale * w[i];
}

#ifdef KD_HAVE_X86
static KD_AVX2 void rmsnorm_row_avx2(const float *x, const float *w, float *y, int64_t n, float eps)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        a0 = _mm256_fmadd_ps(v0, v0, a0);
        a1 = _mm256_fmadd_ps(v1, v1, a1);
    }
    float ss = kd_hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++)
        ss += x[i] * x[i];
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    __m256 s = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), s),
                                              _mm256_loadu_ps(w + i)));
    for (; i < n; i++)
        y[i] = x[i] * scale * w[i];
}

static KD_AVX512 void rmsnorm_row_avx512(const float *x, const float *w, float *y, int64_t n,
                                         float eps)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
        a0 = _mm512_fmadd_ps(v0, v0, a0);
        a1 = _mm512_fmadd_ps(v1, v1, a1);
    }
    float ss = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; i < n; i++)
        ss += x[i] * x[i];
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    __m512 s = _mm512_set1_ps(scale);
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), s),
                                              _mm512_loadu_ps(w + i)));
    for (; i < n; i++)
        y[i] = x[i] * scale * w[i];
}
#endif

/* The single-row kernel. */
static void rmsnorm_row(const norm_job *j, int64_t r)
{
    const float *x = j->x + r * j->n;
    float *y = j->y + r * j->n;
#ifdef KD_HAVE_X86
    if (j->simd == KD_SIMD_AVX512)
        return rmsnorm_row_avx512(x, j->w, y, j->n, j->eps);
    if (j->simd == KD_SIMD_AVX2)
        return rmsnorm_row_avx2(x, j->w, y, j->n, j->eps);
#endif
    rmsnorm_row_scalar(x, j->w, y, j->n, j->eps);
}

static void rmsnorm_rows(void *arg, int64_t begin, int64_t end)
{
    for (int64_t r = begin; r < end; r++)
        rmsnorm_row(arg, r);
}

/* Single-row kernel for M = 1 (and the scalar reference); the batched kernel spreads
 * rows over the threads in pieces of at least 64K values, since waking a thread costs
 * more than normalizing a smaller piece. */
void kd_cpu_rmsnorm(const kd_cpu_env *e, const kd_call *c, int scalar)
{
    norm_job j = {c->src[0], c->src[1], c->dst, c->n, c->eps, scalar ? KD_SIMD_SCALAR : e->simd};
    if (c->m == 1 || scalar)
        rmsnorm_rows(&j, 0, c->m);
    else
        kd_pool_for(e->pool, c->m, (65536 + c->n - 1) / c->n, rmsnorm_rows, &j);
}
