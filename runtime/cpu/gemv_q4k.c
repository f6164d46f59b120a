/* Q4_K GEMV on the cpu. Per sub-block of 32: w = dl*q - ml, so
 *   sum_k w_k x_k = dl * sum(q_k x_k) - ml * sum(x_k);
 * the second sum depends on x alone and comes precomputed (job->xsum). */
#include <string.h>

#include "gemv.h"
#include "kd_quant.h"
#include "simd.h"

/* Scalar reference: decode a block to floats once, then dot it with every row of x. */
static void q4k_rows_scalar(const kd_gemv_job *j, int64_t r0, int64_t r1)
{
    const int64_t nb = j->k / KD_QK_K;
    float w[KD_QK_K];
    for (int64_t r = r0; r < r1; r++) {
        const kd_block_q4_K *row = (const kd_block_q4_K *)j->w + r * nb;
        for (int64_t m = 0; m < j->m; m++)
            j->y[m * j->n + r] = 0.0f;
        for (int64_t b = 0; b < nb; b++) {
            kd_dequant_row(KD_TYPE_Q4_K, row + b, KD_QK_K, w);
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

#ifdef KD_HAVE_X86
/* 32 4-bit quants (one per byte of v) -> 4 vectors of 8 floats. */
static inline __attribute__((always_inline)) KD_AVX2 void nibbles_to_f32(__m256i v, __m256 q[4])
{
    __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    q[0] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo));
    q[1] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)));
    q[2] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi));
    q[3] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)));
}

/* One output row for mc rows of x; mc is a constant in each caller, so acc[] lives in
 * registers for mc <= 8. */
static inline __attribute__((always_inline)) KD_AVX2 void
q4k_row_avx2(const kd_gemv_job *j, int64_t r, int64_t m0, const int mc)
{
    const int64_t nb = j->k / KD_QK_K, ns = j->k / 32;
    const kd_block_q4_K *row = (const kd_block_q4_K *)j->w + r * nb;
    const __m256i mask = _mm256_set1_epi8(0x0F);
    __m256 acc[KD_CPU_GEMV_MC];
    float mins[KD_CPU_GEMV_MC];
    for (int m = 0; m < mc; m++) {
        acc[m] = _mm256_setzero_ps();
        mins[m] = 0.0f;
    }
    for (int64_t b = 0; b < nb; b++) {
        const kd_block_q4_K *blk = row + b;
        const float d = _cvtsh_ss(blk->d), dmin = _cvtsh_ss(blk->dmin);
        for (int p = 0; p < 4; p++) {
            __m256i raw = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * p));
            __m256i nib[2] = {_mm256_and_si256(raw, mask),
                              _mm256_and_si256(_mm256_srli_epi16(raw, 4), mask)};
            for (int h = 0; h < 2; h++) {
                const int sb = 2 * p + h;
                int sc, mn;
                kd_q4k_scale_min(sb, blk->scales, &sc, &mn);
                const __m256 dl = _mm256_set1_ps(d * (float)sc);
                const float ml = dmin * (float)mn;
                __m256 q[4];
                nibbles_to_f32(nib[h], q);
                for (int m = 0; m < mc; m++) {
                    const float *x = j->x + (m0 + m) * j->k + b * KD_QK_K + 32 * sb;
                    __m256 t = _mm256_mul_ps(q[0], _mm256_loadu_ps(x));
                    t = _mm256_fmadd_ps(q[1], _mm256_loadu_ps(x + 8), t);
                    t = _mm256_fmadd_ps(q[2], _mm256_loadu_ps(x + 16), t);
                    t = _mm256_fmadd_ps(q[3], _mm256_loadu_ps(x + 24), t);
                    acc[m] = _mm256_fmadd_ps(dl, t, acc[m]);
                    mins[m] += ml * j->xsum[(m0 + m) * ns + b * 8 + sb];
                }
            }
        }
    }
    for (int m = 0; m < mc; m++)
        j->y[(m0 + m) * j->n + r] = kd_hsum256(acc[m]) - mins[m];
}

#define Q4K_ROWS_FOR(MC)                                                              \
    static KD_AVX2 void q4k_rows_m##MC(const kd_gemv_job *j, int64_t r0, int64_t r1) \
    {                                                                                \
        for (int64_t r = r0; r < r1; r++)                                            \
            q4k_row_avx2(j, r, 0, MC);                                                \
    }
Q4K_ROWS_FOR(1)
Q4K_ROWS_FOR(2)
Q4K_ROWS_FOR(3)
Q4K_ROWS_FOR(4)
Q4K_ROWS_FOR(5)
Q4K_ROWS_FOR(6)
Q4K_ROWS_FOR(7)
Q4K_ROWS_FOR(8)

/* M > 8: one block decode serves KD_CPU_GEMV_MC rows of x (acc[] on the stack). */
static KD_AVX2 void q4k_rows_any(const kd_gemv_job *j, int64_t r0, int64_t r1)
{
    for (int64_t r = r0; r < r1; r++)
        for (int64_t m0 = 0; m0 < j->m; m0 += KD_CPU_GEMV_MC) {
            int64_t mc = j->m - m0 < KD_CPU_GEMV_MC ? j->m - m0 : KD_CPU_GEMV_MC;
            q4k_row_avx2(j, r, m0, (int)mc);
        }
}

static void q4k_rows_simd(const kd_gemv_job *j, int64_t r0, int64_t r1)
{
    static const kd_gemv_rows_fn by_m[9] = {NULL, q4k_rows_m1, q4k_rows_m2, q4k_rows_m3,
                                            q4k_rows_m4, q4k_rows_m5, q4k_rows_m6,
                                            q4k_rows_m7, q4k_rows_m8};
    (j->m <= 8 ? by_m[j->m] : q4k_rows_any)(j, r0, r1);
}
#endif

static void q4k_rows(const kd_gemv_job *j, int64_t r0, int64_t r1)
{
#ifdef KD_HAVE_X86
    if (j->simd)
        return q4k_rows_simd(j, r0, r1);
#endif
    q4k_rows_scalar(j, r0, r1);
}

kd_status kd_cpu_gemv_q4k(const kd_cpu_env *e, const kd_call *c, int scalar)
{
    return kd_cpu_gemv_drive(e, c, KD_TYPE_Q4_K, q4k_rows, scalar);
}
