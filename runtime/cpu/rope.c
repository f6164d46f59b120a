/* Rope on the cpu. The D/2 frequencies base^(-2i/D) are computed once per call; per row,
 * the angles pos * freq are shared by every head, so their cos/sin are computed once per
 * row (in double, so that large positions keep their accuracy) and applied to all H
 * heads: the scalar reference pair by pair, the AVX2 path eight values at a time. */
#include <math.h>

#include "cpu_ops.h"
#include "simd.h"

#define KD_ROPE_MAX_HALF 2048 /* head_dim <= 4096, checked by the dispatcher */

typedef struct rope_job { const kd_call *c; int simd; } rope_job;

static void rope_head_scalar(const kd_call *c, const float *x, float *y, const float *cs,
                             const float *sn)
{
    const int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        int iu = c->rope_mode == KD_ROPE_NEOX ? i : 2 * i;
        int iv = c->rope_mode == KD_ROPE_NEOX ? i + half : 2 * i + 1;
        float u = x[iu], v = x[iv];
        y[iu] = u * cs[i] - v * sn[i];
        y[iv] = u * sn[i] + v * cs[i];
    }
}

#ifdef KD_HAVE_X86
/* normal mode: pairs (2i, 2i+1) are adjacent; cs2/sn2 hold cos, and -sin/+sin, per value,
 * so y = x * cs2 + swap_pairs(x) * sn2. neox: the halves are rotated against each other. */
static KD_AVX2 void rope_head_avx2(const kd_call *c, const float *x, float *y, const float *cs,
                                   const float *sn, const float *cs2, const float *sn2)
{
    const int d = c->head_dim, half = d / 2;
    int i = 0;
    if (c->rope_mode == KD_ROPE_NEOX) {
        for (; i + 8 <= half; i += 8) {
            __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + half);
            __m256 co = _mm256_loadu_ps(cs + i), si = _mm256_loadu_ps(sn + i);
            _mm256_storeu_ps(y + i, _mm256_fmsub_ps(u, co, _mm256_mul_ps(v, si)));
            _mm256_storeu_ps(y + i + half, _mm256_fmadd_ps(u, si, _mm256_mul_ps(v, co)));
        }
        for (; i < half; i++) {
            float u = x[i], v = x[i + half];
            y[i] = u * cs[i] - v * sn[i];
            y[i + half] = u * sn[i] + v * cs[i];
        }
        return;
    }
    for (; i + 8 <= d; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 swapped = _mm256_permute_ps(v, 0xB1); /* (x1, x0, x3, x2, ...) */
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(v, _mm256_loadu_ps(cs2 + i),
                                                _mm256_mul_ps(swapped, _mm256_loadu_ps(sn2 + i))));
    }
    for (; i < d; i += 2) {
        float u = x[i], v = x[i + 1];
        y[i] = u * cs[i / 2] - v * sn[i / 2];
        y[i + 1] = u * sn[i / 2] + v * cs[i / 2];
    }
}
#endif

static void rope_rows(void *arg, int64_t b, int64_t e)
{
    const rope_job *j = arg;
    const kd_call *c = j->c;
    const int half = c->head_dim / 2;
    double freq[KD_ROPE_MAX_HALF];
    float cs[KD_ROPE_MAX_HALF], sn[KD_ROPE_MAX_HALF];
    float cs2[2 * KD_ROPE_MAX_HALF], sn2[2 * KD_ROPE_MAX_HALF];
    for (int i = 0; i < half; i++)
        freq[i] = pow((double)c->rope_base, -2.0 * i / c->head_dim);
    for (int64_t r = b; r < e; r++) {
        for (int i = 0; i < half; i++) {
            double a = (double)c->pos[r] * freq[i];
            cs[i] = (float)cos(a);
            sn[i] = (float)sin(a);
            cs2[2 * i] = cs2[2 * i + 1] = cs[i];
            sn2[2 * i] = -sn[i];
            sn2[2 * i + 1] = sn[i];
        }
        const float *x = (const float *)c->src[0] + r * c->n;
        float *y = (float *)c->dst + r * c->n;
        for (int h = 0; h < c->n_heads; h++) {
            const int64_t o = (int64_t)h * c->head_dim;
#ifdef KD_HAVE_X86
            if (j->simd) {
                rope_head_avx2(c, x + o, y + o, cs, sn, cs2, sn2);
                continue;
            }
#endif
            rope_head_scalar(c, x + o, y + o, cs, sn);
        }
    }
}

/* Single-row kernel for M = 1 (and the scalar reference); the batched kernel spreads rows
 * over the threads. */
void kd_cpu_rope(const kd_cpu_env *e, const kd_call *c, int scalar)
{
    rope_job j = {c, !scalar && e->simd >= KD_SIMD_AVX2};
    if (c->m == 1 || scalar)
        rope_rows(&j, 0, c->m);
    else
        kd_pool_for(e->pool, c->m, (16384 + c->n - 1) / c->n, rope_rows, &j);
}
