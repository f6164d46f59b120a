/* The q8 GEMV path's scalar reference kernels (the others are checked against them), the
 * choice of kernels per level, and the driver (quantize x on the pool, then output rows on
 * the pool, M in tiles of KD_Q8_MAX_MC rows). */
#include <stdlib.h>

#include "gemv_q8.h"
#include "kd_quant.h"
#include "simd.h"

/* Scalar reference: integer dot per sub-block straight from the block helpers, each
 * block found through kd_q8_weight_block (either layout). */
static void q4k_row_scalar(const kd_q8_job *j, int64_t r, int64_t m0, int mc)
{
    for (int m = 0; m < mc; m++) {
        const kd_q8_block *xq = j->xq + (m0 + m) * j->nb;
        float acc = 0.0f;
        for (int64_t b = 0; b < j->nb; b++) {
            const kd_block_q4_K *blk = kd_q8_weight_block(j, sizeof *blk, r, b);
            int32_t sumi = 0;
            float summ = 0.0f; /* the mins times x's sums, d included (xm) */
            for (int s = 0; s < 8; s++) {
                int sc, mn;
                kd_q4k_scale_min(s, blk->scales, &sc, &mn);
                int32_t dot = 0;
                for (int l = 0; l < 32; l++)
                    dot += kd_q4k_quant(blk, 32 * s + l) * xq[b].qs[32 * s + l];
                sumi += sc * dot;
                summ += (float)mn * xq[b].s.xm[s];
            }
            acc += xq[b].d * kd_f16_to_f32(blk->d) * (float)sumi - kd_f16_to_f32(blk->dmin) * summ;
        }
        j->y[(m0 + m) * j->n + r] = acc;
    }
}

static void q6k_row_scalar(const kd_q8_job *j, int64_t r, int64_t m0, int mc)
{
    for (int m = 0; m < mc; m++) {
        const kd_q8_block *xq = j->xq + (m0 + m) * j->nb;
        float acc = 0.0f;
        for (int64_t b = 0; b < j->nb; b++) {
            const kd_block_q6_K *blk = kd_q8_weight_block(j, sizeof *blk, r, b);
            int32_t sumi = 0;
            for (int g = 0; g < 16; g++) {
                /* unsigned q6 (q + 32) times q8, the offset taken out through bsums */
                int32_t dot = 0;
                for (int l = 0; l < 16; l++)
                    dot += (kd_q6k_quant(blk, 16 * g + l) + 32) * xq[b].qs[16 * g + l];
                sumi += blk->scales[g] * (dot - 32 * xq[b].s.bsums[g]);
            }
            acc += xq[b].d * kd_f16_to_f32(blk->d) * (float)sumi;
        }
        j->y[(m0 + m) * j->n + r] = acc;
    }
}

KD_Q8_ROW_BY_MC(q4k_rows_scalar, q4k_row_scalar, )
KD_Q8_ROW_BY_MC(q6k_rows_scalar, q6k_row_scalar, )

/* the reference's rows take either layout: a group is its 8 rows */
const kd_q8_kernels kd_q8_scalar_kernels = {q4k_rows_scalar, q6k_rows_scalar, q4k_rows_scalar,
                                            q6k_rows_scalar, 0};

/* AVX-512 with VNNI runs the 512-bit kernels; the VNNI level (or AVX-512 with only the
 * VEX form) the 256-bit ones, in the VEX encoding where the CPU has it. */
const kd_q8_kernels *kd_q8_kernels_for(const kd_cpu_env *e, kd_simd simd)
{
#ifdef KD_HAVE_X86
    if (simd == KD_SIMD_AVX512 && (e->vnni & KD_VNNI_EVEX))
        return &kd_q8_vnni512_kernels;
    if (simd >= KD_SIMD_VNNI && (e->vnni & KD_VNNI_VEX))
        return &kd_q8_vnni_vex_kernels;
    if (simd >= KD_SIMD_VNNI && (e->vnni & KD_VNNI_EVEX))
        return &kd_q8_vnni_evex_kernels;
    if (simd >= KD_SIMD_AVX2)
        return &kd_q8_avx2_kernels;
#endif
    return &kd_q8_generic_kernels;
}

const char *kd_q8_kernels_name(const kd_cpu_env *e, kd_simd simd)
{
    const kd_q8_kernels *k = kd_q8_kernels_for(e, simd);
#ifdef KD_HAVE_X86
    static const struct {
        const kd_q8_kernels *k;
        const char *name;
    } names[] = {{&kd_q8_avx2_kernels, "avx2"},
                 {&kd_q8_vnni_vex_kernels, "avx-vnni"},
                 {&kd_q8_vnni_evex_kernels, "avx512vl-vnni"},
                 {&kd_q8_vnni512_kernels, "avx512-vnni"}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i].k == k)
            return names[i].name;
#endif
    (void)k; /* off x86 every level runs the generic kernels */
    return "generic";
}

typedef struct q8_rows_job {
    kd_q8_job j;
    kd_q8_row_fn row, groups;
    int64_t panel; /* weight rows per panel (kd_cpu_panel_rows, in whole groups) */
} q8_rows_job;

/* Rows [p0, p1) for rows m0 .. m0 + mc - 1 of x: the row groups by the group kernel, the
 * rest by the row kernel. */
static void q8_tile(const void *arg, int64_t p0, int64_t p1, int64_t m0, int mc)
{
    const q8_rows_job *q = arg;
    const int64_t g = q->j.grouped, split = g < p0 ? p0 : g > p1 ? p1 : g;
    if (p0 < split)
        q->groups(&q->j, p0, split, m0, mc);
    if (split < p1)
        q->row(&q->j, split, p1, m0, mc);
}

/* Output rows [r0, r1) in panels (KD_CPU_PANEL_BYTES), tiles of 8 rows of x in each.
 * (Row by row instead, x was read from memory once per weight row: at M = 1024, K = 4096
 * that is 4.8 MB per row of 2.3 KB.) */
static void q8_rows(void *arg, int64_t r0, int64_t r1)
{
    const q8_rows_job *q = arg;
    kd_cpu_for_tiles(r0, r1, q->j.m, q->panel, KD_Q8_MAX_MC, q8_tile, q);
}

/* With SIMD kernels the q8 path never hands off to dequantize + sgemm: the tiles above
 * beat it at every M measured (2048 x 4096, M = 64 to 4096: 6.3x to 2.0x faster on
 * AVX-512, 7.5x to 1.6x on AVX2): int8 dot products do four times the multiply-adds per
 * instruction of f32 FMAs, and the panels keep the cost linear in M. The generic kernels
 * do (KD_CPU_BLAS_MIN_M_Q8_GENERIC, or KD_CPU_BLAS_MIN_M when it is set). */
int64_t kd_q8_sgemm_min_m(const kd_cpu_env *e, kd_simd simd)
{
    if (kd_q8_kernels_for(e, simd) != &kd_q8_generic_kernels)
        return INT64_MAX;
    return e->blas_min_m_named ? e->blas_min_m : KD_CPU_BLAS_MIN_M_Q8_GENERIC;
}

kd_status kd_cpu_gemv_q8(const kd_cpu_env *e, const kd_call *c, kd_type type, kd_simd simd)
{
    const kd_q8_kernels *k = kd_q8_kernels_for(e, simd);
    if (c->m >= kd_q8_sgemm_min_m(e, simd)) {
        kd_status st = kd_cpu_gemv_blas(e, c, type);
        if (st != KD_ERR_UNAVAILABLE)
            return st;
    }
    const int64_t nb = c->k / KD_QK_K;
    kd_q8_block *xq = aligned_alloc(64, sizeof *xq * (size_t)(c->m * nb));
    if (!xq)
        return KD_ERR_NOMEM;
    /* Threads at every level: the generic kernels are what a CPU without AVX2 (or not x86)
     * runs, and each output row comes from one thread, so the result is the same on any
     * number of them. */
    kd_q8_quantize_rows(e->pool, simd, c->src[1], c->m, c->k, type, k->x_layout, xq);
    const int64_t row_bytes = nb * (int64_t)kd_quant_block_bytes(type);
    const int64_t unit = c->w_groups ? KD_ROW_GROUP : 1;
    q8_rows_job q = {{c->src[0], xq, c->dst, c->n, nb, c->m, c->w_groups},
                     type == KD_TYPE_Q4_K ? k->q4k : k->q6k,
                     type == KD_TYPE_Q4_K ? k->q4k_groups : k->q6k_groups,
                     kd_cpu_panel_units(row_bytes, unit)};
    kd_pool_for_units(e->pool, c->n, unit, 4, q8_rows, &q);
    free(xq);
    return KD_OK;
}
