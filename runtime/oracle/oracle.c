/* The double-precision oracle: written from SPEC section 2, one loop per definition. */
#include "kd_oracle.h"

#include <math.h>
#include <string.h>

#include "kd_blocks.h"

void kd_oracle_rmsnorm(const float *x, const float *w, int64_t m, int64_t n, double eps, double *y)
{
    for (int64_t r = 0; r < m; r++) {
        double ss = 0;
        for (int64_t i = 0; i < n; i++)
            ss += (double)x[r * n + i] * x[r * n + i];
        double scale = 1.0 / sqrt(ss / (double)n + eps);
        for (int64_t i = 0; i < n; i++)
            y[r * n + i] = (double)x[r * n + i] * scale * w[i];
    }
}

void kd_oracle_rope(const float *x, const uint32_t *pos, int64_t m, int n_heads, int head_dim,
                    double base, kd_rope_mode mode, double *y)
{
    const int64_t n = (int64_t)n_heads * head_dim;
    const int half = head_dim / 2;
    for (int64_t r = 0; r < m; r++)
        for (int h = 0; h < n_heads; h++)
            for (int i = 0; i < half; i++) {
                int64_t o = r * n + (int64_t)h * head_dim;
                int64_t iu = o + (mode == KD_ROPE_NEOX ? i : 2 * i);
                int64_t iv = o + (mode == KD_ROPE_NEOX ? i + half : 2 * i + 1);
                double a = (double)pos[r] * pow(base, -2.0 * i / head_dim);
                double u = x[iu], v = x[iv];
                y[iu] = u * cos(a) - v * sin(a);
                y[iv] = u * sin(a) + v * cos(a);
            }
}

void kd_oracle_swiglu(const float *gate, const float *up, int64_t count, double *y)
{
    for (int64_t i = 0; i < count; i++)
        y[i] = (double)gate[i] / (1.0 + exp(-(double)gate[i])) * up[i];
}

void kd_oracle_residual_add(const float *x, const float *r, int64_t count, double *y)
{
    for (int64_t i = 0; i < count; i++)
        y[i] = (double)x[i] + r[i];
}

/* One block, copied out of the caller's bytes: a GGUF file with general.alignment = 1
 * places blocks at odd addresses, and reading the structs in place would be misaligned. */
typedef union any_block {
    kd_block_q4_K q4;
    kd_block_q6_K q6;
} any_block;

static double block_weight(kd_type type, const any_block *blk, int i)
{
    if (type == KD_TYPE_Q4_K) {
        int sc, mn;
        kd_q4k_scale_min(i / 32, blk->q4.scales, &sc, &mn);
        return (double)kd_f16_to_f32(blk->q4.d) * sc * kd_q4k_quant(&blk->q4, i) -
               (double)kd_f16_to_f32(blk->q4.dmin) * mn;
    }
    return (double)kd_f16_to_f32(blk->q6.d) * blk->q6.scales[i / 16] * kd_q6k_quant(&blk->q6, i);
}

void kd_oracle_gemv(kd_type type, const void *blocks, int64_t n_rows, int64_t k, const float *x,
                    int64_t m, double *y)
{
    const int64_t nb = k / KD_QK_K;
    const size_t bsize = type == KD_TYPE_Q4_K ? sizeof(kd_block_q4_K) : sizeof(kd_block_q6_K);
    for (int64_t j = 0; j < n_rows; j++)
        for (int64_t r = 0; r < m; r++)
            y[r * n_rows + j] = 0;
    for (int64_t j = 0; j < n_rows; j++)
        for (int64_t b = 0; b < nb; b++) {
            any_block blk;
            memcpy(&blk, (const unsigned char *)blocks + (size_t)(j * nb + b) * bsize, bsize);
            for (int i = 0; i < KD_QK_K; i++) {
                double w = block_weight(type, &blk, i);
                int64_t c = b * KD_QK_K + i;
                for (int64_t r = 0; r < m; r++)
                    y[r * n_rows + j] += w * x[r * k + c];
            }
        }
}

void kd_oracle_run(const kd_op_desc *d, const void *src0, const void *src1, int64_t m,
                   int64_t n, int64_t k, double *y)
{
    switch (d->op) {
    case KD_OP_RMSNORM:
        kd_oracle_rmsnorm(src0, src1, m, n, d->eps > 0 ? d->eps : 1e-5, y);
        break;
    case KD_OP_ROPE:
        kd_oracle_rope(src0, d->pos, m, d->n_heads, d->head_dim,
                       d->rope_base > 0 ? d->rope_base : 10000.0, d->rope_mode, y);
        break;
    case KD_OP_SWIGLU: kd_oracle_swiglu(src0, src1, m * n, y); break;
    case KD_OP_RESIDUAL_ADD: kd_oracle_residual_add(src0, src1, m * n, y); break;
    case KD_OP_Q4K_GEMV: kd_oracle_gemv(KD_TYPE_Q4_K, src0, n, k, src1, m, y); break;
    case KD_OP_Q6K_GEMV: kd_oracle_gemv(KD_TYPE_Q6_K, src0, n, k, src1, m, y); break;
    default: break;
    }
}

static void finish(kd_cmp *o, double num, double den)
{
    o->nmse = den > 0 ? num / den : (num > 0 ? INFINITY : 0);
    o->pass = o->bad == 0;
}

void kd_compare_to_ref(const float *a, const double *ref, int64_t count, double tol, kd_cmp *o)
{
    double num = 0, den = 0;
    *o = (kd_cmp){0, 0, 0, -1, 0};
    for (int64_t i = 0; i < count; i++) {
        double diff = fabs((double)a[i] - ref[i]);
        int finite_ok = isfinite(a[i]) || !isfinite(ref[i]);
        if (!finite_ok || !(diff <= tol * fmax(1.0, fabs(ref[i])))) {
            if (o->first_bad < 0)
                o->first_bad = i;
            o->bad++;
        }
        if (isfinite(diff)) {
            o->max_abs = fmax(o->max_abs, diff);
            num += diff * diff;
            den += ref[i] * ref[i];
        } else {
            o->max_abs = INFINITY;
        }
    }
    finish(o, num, den);
}

void kd_compare_f32(const float *a, const float *b, int64_t count, double tol, kd_cmp *o)
{
    double num = 0, den = 0;
    *o = (kd_cmp){0, 0, 0, -1, 0};
    for (int64_t i = 0; i < count; i++) {
        double diff = fabs((double)a[i] - b[i]);
        if (!(diff <= tol * fmax(1.0, fabs((double)b[i])))) {
            if (o->first_bad < 0)
                o->first_bad = i;
            o->bad++;
        }
        if (isfinite(diff)) {
            o->max_abs = fmax(o->max_abs, diff);
            num += diff * diff;
            den += (double)b[i] * b[i];
        } else {
            o->max_abs = INFINITY;
        }
    }
    finish(o, num, den);
}
