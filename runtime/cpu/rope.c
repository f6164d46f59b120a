/* Rope on the cpu. Per row, the D/2 angles pos * base^(-2i/D) are shared by every head:
 * their cos/sin are computed once per row (in double, so large positions keep their
 * accuracy) and applied to all H heads. */
#include <math.h>

#include "cpu_ops.h"

#define KD_ROPE_MAX_HALF 2048 /* head_dim <= 4096, checked by the dispatcher */

typedef struct rope_job { const kd_call *c; } rope_job;

static void rope_row(const kd_call *c, int64_t r, float *cs, float *sn)
{
    const int half = c->head_dim / 2;
    const double pos = (double)c->pos[r];
    for (int i = 0; i < half; i++) {
        double a = pos * pow((double)c->rope_base, -2.0 * i / c->head_dim);
        cs[i] = (float)cos(a);
        sn[i] = (float)sin(a);
    }
    const float *x = (const float *)c->src[0] + r * c->n;
    float *y = (float *)c->dst + r * c->n;
    for (int h = 0; h < c->n_heads; h++) {
        const float *xh = x + (int64_t)h * c->head_dim;
        float *yh = y + (int64_t)h * c->head_dim;
        for (int i = 0; i < half; i++) {
            int iu = c->rope_mode == KD_ROPE_NEOX ? i : 2 * i;
            int iv = c->rope_mode == KD_ROPE_NEOX ? i + half : 2 * i + 1;
            float u = xh[iu], v = xh[iv];
            yh[iu] = u * cs[i] - v * sn[i];
            yh[iv] = u * sn[i] + v * cs[i];
        }
    }
}

static void rope_rows(void *arg, int64_t b, int64_t e)
{
    const kd_call *c = arg;
    float cs[KD_ROPE_MAX_HALF], sn[KD_ROPE_MAX_HALF];
    for (int64_t r = b; r < e; r++)
        rope_row(c, r, cs, sn);
}

void kd_cpu_rope(const kd_cpu_env *e, const kd_call *c, int scalar)
{
    if (c->m == 1 || scalar)
        rope_rows((void *)c, 0, c->m);
    else
        kd_pool_for(e->pool, c->m, (16384 + c->n - 1) / c->n, rope_rows, (void *)c);
}
