/* Drives the cpu GEMV kernels: threads over output rows, the x sub-block sums Q4_K needs,
 * and, for large M, dequantize-then-cblas_sgemm in panels of rows. */
#include <stdlib.h>

#include "gemv.h"
#include "kd_quant.h"
#include "kd_row_groups.h"

#ifdef KD_HAVE_OPENBLAS
#include <cblas.h>
#endif

typedef struct rows_job { const kd_gemv_job *j; kd_gemv_rows_fn fn; } rows_job;

static void run_rows(void *arg, int64_t r0, int64_t r1)
{
    const rows_job *rj = arg;
    rj->fn(rj->j, r0, r1);
}

void kd_gemv_rows_scalar(const kd_gemv_job *j, int64_t r0, int64_t r1)
{
    const int64_t nb = j->k / KD_QK_K;
    const size_t block_bytes = kd_quant_block_bytes(j->type);
    float w[KD_QK_K];
    for (int64_t r = r0; r < r1; r++) { /* block by block: either layout */
        for (int64_t m = 0; m < j->m; m++)
            j->y[m * j->n + r] = 0.0f;
        for (int64_t b = 0; b < nb; b++) {
            kd_dequant_row(j->type, (const char *)j->w + (size_t)kd_row_block_index(r, b, nb, j->grouped) * block_bytes,
                           KD_QK_K, w);
            for (int64_t m = 0; m < j->m; m++) {
                const float *x = j->x + m * j->k + b * KD_QK_K;
                float s = 0.0f;
                for (int i = 0; i < KD_QK_K; i++)
                    s += w[i] * x[i];
                j->y[m * j->n + r] += s;
            }
        }
    }
}

/* xsum[m][s] = sum of x[m][32s .. 32s+31], in f32 like the kernels. */
static float *x_subblock_sums(const float *x, int64_t m, int64_t k)
{
    float *s = malloc(sizeof(float) * (size_t)(m * (k / 32)));
    if (!s)
        return NULL;
    for (int64_t i = 0; i < m * (k / 32); i++) {
        float acc = 0.0f;
        for (int l = 0; l < 32; l++)
            acc += x[32 * i + l];
        s[i] = acc;
    }
    return s;
}

static kd_gemv_rows_fn rows_fn_for(kd_simd simd, const kd_gemv_levels *levels)
{
    if (simd >= KD_SIMD_AVX512 && levels->avx512)
        return levels->avx512;
    if (simd >= KD_SIMD_AVX2 && levels->avx2)
        return levels->avx2;
    return kd_gemv_rows_scalar;
}

kd_status kd_cpu_gemv_drive(const kd_cpu_env *e, const kd_call *c, kd_type type,
                            const kd_gemv_levels *levels, int scalar)
{
    if (!scalar && c->m >= e->blas_min_m) {
        kd_status st = kd_cpu_gemv_blas(e, c, type);
        if (st != KD_ERR_UNAVAILABLE)
            return st;
    }
    kd_gemv_job j = {c->src[0], c->w_groups, c->src[1], NULL, c->dst, c->n, c->k, c->m,
                     scalar ? KD_SIMD_SCALAR : e->simd, type};
    float *xsum = NULL;
    if (type == KD_TYPE_Q4_K && j.simd && !(xsum = x_subblock_sums(j.x, j.m, j.k)))
        return KD_ERR_NOMEM;
    j.xsum = xsum;
    rows_job rj = {&j, rows_fn_for(j.simd, levels)};
    if (scalar)
        run_rows(&rj, 0, c->n);
    else /* pieces of whole groups */
        kd_pool_for_units(e->pool, c->n, c->w_groups ? KD_ROW_GROUP : 1, 4, run_rows, &rj);
    free(xsum);
    return KD_OK;
}

#ifdef KD_HAVE_OPENBLAS
#define KD_BLAS_PANEL 64 /* weight rows dequantized per sgemm call */

typedef struct panel_job { const kd_call *c; kd_type type; float *buf; int64_t r0; } panel_job;

static void dequant_panel_rows(void *arg, int64_t b, int64_t e)
{
    const panel_job *p = arg;
    const size_t block_bytes = kd_quant_block_bytes(p->type);
    const int64_t nb = p->c->k / KD_QK_K, g = p->c->w_groups;
    for (int64_t r = p->r0 + b; r < p->r0 + e; r++) { /* block by block: either layout */
        const char *w = (const char *)p->c->src[0];
        for (int64_t i = 0; i < nb; i++)
            kd_dequant_row(p->type, w + (size_t)kd_row_block_index(r, i, nb, g) * block_bytes, KD_QK_K,
                           p->buf + (r - p->r0) * p->c->k + i * KD_QK_K);
    }
}

kd_status kd_cpu_gemv_blas(const kd_cpu_env *e, const kd_call *c, kd_type type)
{
    float *buf = malloc(sizeof(float) * (size_t)(KD_BLAS_PANEL * c->k));
    if (!buf)
        return KD_ERR_NOMEM;
    for (int64_t r0 = 0; r0 < c->n; r0 += KD_BLAS_PANEL) {
        int64_t rows = c->n - r0 < KD_BLAS_PANEL ? c->n - r0 : KD_BLAS_PANEL;
        panel_job p = {c, type, buf, r0};
        kd_pool_for(e->pool, rows, 4, dequant_panel_rows, &p);
        /* y[:, r0:r0+rows] = x[M,K] * panel[rows,K]^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c->m, (int)rows, (int)c->k,
                    1.0f, c->src[1], (int)c->k, buf, (int)c->k, 0.0f,
                    (float *)c->dst + r0, (int)c->n);
    }
    free(buf);
    return KD_OK;
}
#else
kd_status kd_cpu_gemv_blas(const kd_cpu_env *e, const kd_call *c, kd_type type)
{
    return KD_ERR_UNAVAILABLE; /* built without OpenBLAS: the fused kernels serve every M */
}
#endif
