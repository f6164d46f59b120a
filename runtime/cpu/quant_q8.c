/* Quantization of the activations for the q8 GEMV path: blocks of 256 floats -> int8
 * with one f32 scale and int16 sums per 16 values (for Q4_K weights: f32 sums per 32,
 * times the scale). The scalar version is the reference;
 * the SIMD versions do the same float operations (max of |x|, one multiply, clamp, round
 * to nearest even), so all levels give identical blocks. */
#include <math.h>
#include <string.h>

#include "gemv_q8.h"
#include "simd.h"

/* 127 / amax, or 0 for an all-zero block (then every q is 0). */
static float inverse_scale(float amax) { return amax > 0.0f ? 127.0f / amax : 0.0f; }

void kd_q8_quantize_block_scalar(const float *x, kd_q8_block *out)
{
    float amax = 0.0f;
    for (int i = 0; i < KD_Q8_BLOCK; i++) {
        float a = fabsf(x[i]);
        if (a > amax) /* NaN is skipped, as the SIMD max with |x| first skips it */
            amax = a;
    }
    const float id = inverse_scale(amax);
    out->d = amax / 127.0f;
    for (int g = 0; g < KD_Q8_BLOCK / 16; g++) {
        int sum = 0;
        for (int l = 0; l < 16; l++) {
            /* clamp before the conversion: NaN maps to -127 like maxps(v, -127) */
            float v = fminf(fmaxf(x[16 * g + l] * id, -127.0f), 127.0f);
            int q = (int)nearbyintf(v);
            out->qs[16 * g + l] = (int8_t)q;
            sum += q;
        }
        out->s.bsums[g] = (int16_t)sum;
    }
}

#ifdef KD_HAVE_X86
void KD_AVX2 kd_q8_quantize_block_avx2(const float *x, kd_q8_block *out)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 vmax = _mm256_setzero_ps();
    for (int i = 0; i < KD_Q8_BLOCK; i += 8) /* |x| first: a NaN lane keeps the old max */
        vmax = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), vmax);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const __m256 id = _mm256_set1_ps(inverse_scale(amax));
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    out->d = amax / 127.0f;
    for (int c = 0; c < KD_Q8_BLOCK; c += 32) {
        __m256i q[4];
        for (int t = 0; t < 4; t++) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + c + 8 * t), id);
            v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
            q[t] = _mm256_cvtps_epi32(v); /* MXCSR default: round to nearest even */
        }
        for (int g = 0; g < 2; g++) {
            __m256i s = _mm256_add_epi32(q[2 * g], q[2 * g + 1]);
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            s4 = _mm_hadd_epi32(s4, s4);
            s4 = _mm_hadd_epi32(s4, s4);
            out->s.bsums[c / 16 + g] = (int16_t)_mm_cvtsi128_si32(s4);
        }
        /* packs work per 128-bit lane; the permute puts the 32 bytes back in order */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(out->qs + c), p);
    }
}

void KD_AVX512 kd_q8_quantize_block_avx512(const float *x, kd_q8_block *out)
{
    __m512 vmax = _mm512_setzero_ps();
    for (int i = 0; i < KD_Q8_BLOCK; i += 16)
        vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), vmax);
    const float amax = _mm512_reduce_max_ps(vmax);
    const __m512 id = _mm512_set1_ps(inverse_scale(amax));
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    out->d = amax / 127.0f;
    for (int g = 0; g < KD_Q8_BLOCK / 16; g++) {
        __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + 16 * g), id);
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        __m512i q = _mm512_cvtps_epi32(v);
        out->s.bsums[g] = (int16_t)_mm512_reduce_add_epi32(q);
        _mm_storeu_si128((__m128i *)(out->qs + 16 * g), _mm512_cvtepi32_epi8(q));
    }
}
#else
void kd_q8_quantize_block_avx2(const float *x, kd_q8_block *out) { kd_q8_quantize_block_scalar(x, out); }
void kd_q8_quantize_block_avx512(const float *x, kd_q8_block *out) { kd_q8_quantize_block_scalar(x, out); }
#endif

typedef struct quant_job {
    const float *x;
    kd_q8_block *out;
    void (*block_fn)(const float *, kd_q8_block *);
    int q4k;           /* the blocks carry Q4_K's xm, not bsums */
    int x_layout;      /* KD_Q8_X_* flags */
    int64_t nb, tiled; /* blocks per row; rows in full tiles of 8 (with lane sums) */
} quant_job;

/* bsums -> xm[s] = d * (bsums[2s] + bsums[2s + 1]), as OpenCL's kd_q8_quantize forms it */
static void sums_for_q4k(kd_q8_block *b)
{
    float xm[KD_Q8_BLOCK / 32];
    for (int s = 0; s < KD_Q8_BLOCK / 32; s++)
        xm[s] = b->d * (float)(b->s.bsums[2 * s] + b->s.bsums[2 * s + 1]);
    memcpy(b->s.xm, xm, sizeof xm);
}

/* qs's qwords moved to the lane order of kd_q8_lane_qword */
static void lane_order(kd_q8_block *b, int q4k)
{
    int8_t qs[KD_Q8_BLOCK];
    for (int i = 0; i < KD_Q8_BLOCK / 8; i++)
        memcpy(qs + 8 * kd_q8_lane_qword(i, q4k), b->qs + 8 * i, 8);
    memcpy(b->qs, qs, sizeof qs);
}

static void quantize_range(void *arg, int64_t b0, int64_t b1)
{
    const quant_job *q = arg;
    for (int64_t b = b0; b < b1; b++) {
        q->block_fn(q->x + b * KD_Q8_BLOCK, q->out + b);
        if (q->q4k && b / q->nb >= q->tiled) /* a full tile's bsums go to lane_sums */
            sums_for_q4k(q->out + b);
        if (q->x_layout & KD_Q8_X_LANES)
            lane_order(q->out + b, q->q4k);
    }
}

/* Block b of a full tile's rows (t: tile row 0's, the rows nb blocks apart) in the lane
 * sums layout (kd_q8_quantize_rows), from each row's bsums and d. */
static void lane_sums(kd_q8_block *t, int64_t nb, int q4k)
{
    int16_t bs[KD_Q8_MAX_MC][KD_Q8_BLOCK / 16];
    float d[KD_Q8_MAX_MC];
    for (int i = 0; i < KD_Q8_MAX_MC; i++) {
        memcpy(bs[i], t[i * nb].s.bsums, sizeof bs[i]);
        d[i] = t[i * nb].d;
    }
    for (int i = 0; i < KD_Q8_MAX_MC; i++) { /* every row's bsums are in bs[] by now */
        for (int s = 0; q4k && s < KD_Q8_BLOCK / 32; s++) /* |.| <= 32 * 127 */
            t[kd_q8_lane_sum_row(s) * nb].s.bsums[kd_q8_lane_sum_slot(i, s)] =
                (int16_t)(bs[i][2 * s] + bs[i][2 * s + 1]);
        kd_q8_block *dt = t + kd_q8_lane_d_row(i, q4k) * nb;
        (q4k ? dt->s.xm : dt->pad1)[kd_q8_lane_d_slot(i, q4k)] = d[i];
    }
}

static void lane_sums_range(void *arg, int64_t u0, int64_t u1)
{
    const quant_job *q = arg;
    for (int64_t u = u0; u < u1; u++) /* u: tile u / nb, block u % nb */
        lane_sums(q->out + u / q->nb * KD_Q8_MAX_MC * q->nb + u % q->nb, q->nb, q->q4k);
}

void kd_q8_quantize_rows(kd_pool *pool, kd_simd simd, const float *x, int64_t m, int64_t k,
                         kd_type type, int x_layout, kd_q8_block *out)
{
    const int64_t nb = k / KD_Q8_BLOCK;
    const int64_t tiled = x_layout & KD_Q8_X_LANE_SUMS ? m - m % KD_Q8_MAX_MC : 0;
    quant_job q = {x, out,
                   simd == KD_SIMD_AVX512 ? kd_q8_quantize_block_avx512
                   : simd >= KD_SIMD_AVX2 ? kd_q8_quantize_block_avx2
                                          : kd_q8_quantize_block_scalar,
                   type == KD_TYPE_Q4_K, x_layout, nb, tiled};
    const int64_t blocks = m * nb, units = tiled / KD_Q8_MAX_MC * nb;
    /* rows are contiguous, so blocks of all rows form one range; 32 blocks (32 KiB of x)
     * per piece keeps the hand-off cost small next to the work. The lane sums read whole
     * tiles, so they follow once every block is done. */
    if (pool) {
        kd_pool_for(pool, blocks, 32, quantize_range, &q);
        if (units)
            kd_pool_for(pool, units, 32, lane_sums_range, &q);
    } else {
        quantize_range(&q, 0, blocks);
        lane_sums_range(&q, 0, units);
    }
}
