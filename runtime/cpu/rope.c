/* Rope on the cpu. The D/2 frequencies base^(-2i/D) are computed once per call (in
 * double, as the oracle does); per row, the angles pos * freq are shared by every head,
 * so their cos/sin are computed once per row and applied to all H heads.
 *
 * The scalar reference takes cos/sin from libm in double. The SIMD paths take no libm call
 * per row: the angle a = pos * freq (up to 2^20 rad and more) is formed and reduced to
 * r = a - k*pi/2, |r| <= pi/4, in double, eight or sixteen lanes at a time (pi/2 split in
 * two parts, and the fused multiply-add makes k*pi/2 exact), then r is rounded to float
 * and sin/cos come from float minimax polynomials (Cephes sinf/cosf, error ~1e-7) with the
 * quadrant k mod 4 choosing swap and signs. Double is needed only for the reduction: a
 * float angle near 2^20 would carry an error of ~0.06 rad. An output larger than a
 * last-level cache is written around the cache (kd_cpu_stream_output). */
#include <math.h>

#include "cpu_ops.h"
#include "simd.h"

#define KD_ROPE_MAX_HALF 2048 /* head_dim <= 4096, checked by the dispatcher */
#define KD_ROPE_PAD 16        /* the SIMD sincos runs in whole vectors past half */

typedef struct rope_job {
    const kd_call *c;
    kd_simd simd;
    const double *freq;
    int nt; /* streaming stores of y (kd_cpu_stream_output) */
} rope_job;

/* ---- applying the rotation to one head ---------------------------------------------- */

static void rope_neox_tail(const float *x, float *y, const float *cs, const float *sn,
                           int half, int i)
{
    for (; i < half; i++) {
        float u = x[i], v = x[i + half];
        y[i] = u * cs[i] - v * sn[i];
        y[i + half] = u * sn[i] + v * cs[i];
    }
}

static void rope_normal_tail(const float *x, float *y, const float *cs, const float *sn,
                             int d, int i)
{
    for (; i < d; i += 2) {
        float u = x[i], v = x[i + 1];
        y[i] = u * cs[i / 2] - v * sn[i / 2];
        y[i + 1] = u * sn[i / 2] + v * cs[i / 2];
    }
}

static void rope_head_scalar(const kd_call *c, const float *x, float *y, const float *cs,
                             const float *sn)
{
    if (c->rope_mode == KD_ROPE_NEOX)
        rope_neox_tail(x, y, cs, sn, c->head_dim / 2, 0);
    else
        rope_normal_tail(x, y, cs, sn, c->head_dim, 0);
}

#ifdef KD_HAVE_X86
/* normal mode: pairs (2i, 2i+1) are adjacent; cs2/sn2 hold cos, and -sin/+sin, per value,
 * so y = x * cs2 + swap_pairs(x) * sn2. neox: the halves are rotated against each other. */
static KD_AVX2 void rope_head_avx2(const kd_call *c, const float *x, float *y, const float *cs,
                                   const float *sn, const float *cs2, const float *sn2, int nt)
{
    const int d = c->head_dim, half = d / 2;
    int i = 0;
    if (c->rope_mode == KD_ROPE_NEOX) {
        for (; i + 8 <= half; i += 8) {
            __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + half);
            __m256 co = _mm256_loadu_ps(cs + i), si = _mm256_loadu_ps(sn + i);
            kd_store256(y + i, _mm256_fmsub_ps(u, co, _mm256_mul_ps(v, si)), nt);
            kd_store256(y + i + half, _mm256_fmadd_ps(u, si, _mm256_mul_ps(v, co)), nt);
        }
        return rope_neox_tail(x, y, cs, sn, half, i);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 swapped = _mm256_permute_ps(v, 0xB1); /* (x1, x0, x3, x2, ...) */
        kd_store256(y + i, _mm256_fmadd_ps(v, _mm256_loadu_ps(cs2 + i),
                                           _mm256_mul_ps(swapped, _mm256_loadu_ps(sn2 + i))), nt);
    }
    rope_normal_tail(x, y, cs, sn, d, i);
}

static KD_AVX512 void rope_head_avx512(const kd_call *c, const float *x, float *y,
                                       const float *cs, const float *sn, const float *cs2,
                                       const float *sn2, int nt)
{
    const int d = c->head_dim, half = d / 2;
    int i = 0;
    if (c->rope_mode == KD_ROPE_NEOX) {
        for (; i + 16 <= half; i += 16) {
            __m512 u = _mm512_loadu_ps(x + i), v = _mm512_loadu_ps(x + i + half);
            __m512 co = _mm512_loadu_ps(cs + i), si = _mm512_loadu_ps(sn + i);
            kd_store512(y + i, _mm512_fmsub_ps(u, co, _mm512_mul_ps(v, si)), nt);
            kd_store512(y + i + half, _mm512_fmadd_ps(u, si, _mm512_mul_ps(v, co)), nt);
        }
        return rope_neox_tail(x, y, cs, sn, half, i);
    }
    for (; i + 16 <= d; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m512 swapped = _mm512_permute_ps(v, 0xB1);
        kd_store512(y + i, _mm512_fmadd_ps(v, _mm512_loadu_ps(cs2 + i),
                                           _mm512_mul_ps(swapped, _mm512_loadu_ps(sn2 + i))), nt);
    }
    rope_normal_tail(x, y, cs, sn, d, i);
}

/* ---- cos/sin of pos * freq[i] --------------------------------------------------------- */

#define KD_2_OVER_PI 0.63661977236758134308
#define KD_PIO2_HI 1.57079632679489655800e+00 /* double nearest pi/2 */
#define KD_PIO2_LO 6.12323399573676603587e-17 /* pi/2 - KD_PIO2_HI */

/* sin/cos of r (|r| <= pi/4 + rounding) for quadrant q: swap when q is odd, sin negated
 * for q = 2, 3 and cos for q = 1, 2. */
static KD_AVX2 void sincos_poly_avx2(__m256 r, __m256i q, float *c, float *s)
{
    __m256 z = _mm256_mul_ps(r, r);
    __m256 ps = _mm256_fmadd_ps(_mm256_set1_ps(-1.9515295891e-4f), z, _mm256_set1_ps(8.3321608736e-3f));
    ps = _mm256_fmadd_ps(ps, z, _mm256_set1_ps(-1.6666654611e-1f));
    ps = _mm256_fmadd_ps(_mm256_mul_ps(ps, z), r, r);
    __m256 pc = _mm256_fmadd_ps(_mm256_set1_ps(2.443315711809948e-5f), z, _mm256_set1_ps(-1.388731625493765e-3f));
    pc = _mm256_fmadd_ps(pc, z, _mm256_set1_ps(4.166664568298827e-2f));
    pc = _mm256_fmadd_ps(_mm256_mul_ps(pc, z), z, _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, _mm256_set1_ps(1.0f)));
    const __m256i one = _mm256_set1_epi32(1), two = _mm256_set1_epi32(2);
    __m256 swap = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(q, one), one));
    __m256 sv = _mm256_blendv_ps(ps, pc, swap), cv = _mm256_blendv_ps(pc, ps, swap);
    __m256i sneg = _mm256_slli_epi32(_mm256_and_si256(q, two), 30);
    __m256i cneg = _mm256_slli_epi32(_mm256_and_si256(_mm256_add_epi32(q, one), two), 30);
    _mm256_storeu_ps(s, _mm256_xor_ps(sv, _mm256_castsi256_ps(sneg)));
    _mm256_storeu_ps(c, _mm256_xor_ps(cv, _mm256_castsi256_ps(cneg)));
}

/* Four angles pos * freq reduced: the remainder in float, the quadrant (k mod 4) in *k. */
static KD_AVX2 __m128 reduce4_avx2(__m256d pos, const double *freq, __m128i *k)
{
    __m256d a = _mm256_mul_pd(pos, _mm256_loadu_pd(freq));
    __m256d kd = _mm256_round_pd(_mm256_mul_pd(a, _mm256_set1_pd(KD_2_OVER_PI)),
                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(kd, _mm256_set1_pd(KD_PIO2_HI), a);
    r = _mm256_fnmadd_pd(kd, _mm256_set1_pd(KD_PIO2_LO), r);
    /* k mod 4 in double (exact), so that k beyond int32 (positions past ~3e9) still works */
    __m256d q = _mm256_fnmadd_pd(_mm256_floor_pd(_mm256_mul_pd(kd, _mm256_set1_pd(0.25))),
                                 _mm256_set1_pd(4.0), kd);
    *k = _mm256_cvtpd_epi32(q);
    return _mm256_cvtpd_ps(r);
}

static KD_AVX2 void sincos_avx2(double pos, const double *freq, int half, float *c, float *s)
{
    const __m256d p = _mm256_set1_pd(pos);
    for (int i = 0; i < half; i += 8) {
        __m128i k0, k1;
        __m128 r0 = reduce4_avx2(p, freq + i, &k0), r1 = reduce4_avx2(p, freq + i + 4, &k1);
        sincos_poly_avx2(_mm256_set_m128(r1, r0), _mm256_set_m128i(k1, k0), c + i, s + i);
    }
}

static KD_AVX512 void sincos_poly_avx512(__m512 r, __m512i q, float *c, float *s)
{
    __m512 z = _mm512_mul_ps(r, r);
    __m512 ps = _mm512_fmadd_ps(_mm512_set1_ps(-1.9515295891e-4f), z, _mm512_set1_ps(8.3321608736e-3f));
    ps = _mm512_fmadd_ps(ps, z, _mm512_set1_ps(-1.6666654611e-1f));
    ps = _mm512_fmadd_ps(_mm512_mul_ps(ps, z), r, r);
    __m512 pc = _mm512_fmadd_ps(_mm512_set1_ps(2.443315711809948e-5f), z, _mm512_set1_ps(-1.388731625493765e-3f));
    pc = _mm512_fmadd_ps(pc, z, _mm512_set1_ps(4.166664568298827e-2f));
    pc = _mm512_fmadd_ps(_mm512_mul_ps(pc, z), z, _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), z, _mm512_set1_ps(1.0f)));
    const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2);
    __mmask16 swap = _mm512_test_epi32_mask(q, one);
    __m512 sv = _mm512_mask_blend_ps(swap, ps, pc), cv = _mm512_mask_blend_ps(swap, pc, ps);
    __m512i sneg = _mm512_slli_epi32(_mm512_and_si512(q, two), 30);
    __m512i cneg = _mm512_slli_epi32(_mm512_and_si512(_mm512_add_epi32(q, one), two), 30);
    _mm512_storeu_ps(s, _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(sv), sneg)));
    _mm512_storeu_ps(c, _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(cv), cneg)));
}

static KD_AVX512 __m256 reduce8_avx512(__m512d pos, const double *freq, __m256i *k)
{
    __m512d a = _mm512_mul_pd(pos, _mm512_loadu_pd(freq));
    __m512d kd = _mm512_roundscale_pd(_mm512_mul_pd(a, _mm512_set1_pd(KD_2_OVER_PI)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(KD_PIO2_HI), a);
    r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(KD_PIO2_LO), r);
    __m512d q = _mm512_fnmadd_pd(_mm512_roundscale_pd(_mm512_mul_pd(kd, _mm512_set1_pd(0.25)),
                                                      _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC),
                                 _mm512_set1_pd(4.0), kd);
    *k = _mm512_cvtpd_epi32(q);
    return _mm512_cvtpd_ps(r);
}

static KD_AVX512 void sincos_avx512(double pos, const double *freq, int half, float *c, float *s)
{
    const __m512d p = _mm512_set1_pd(pos);
    for (int i = 0; i < half; i += 16) {
        __m256i k0, k1;
        __m256 r0 = reduce8_avx512(p, freq + i, &k0), r1 = reduce8_avx512(p, freq + i + 8, &k1);
        /* two halves into one register with AVX512F only (insertf32x8 needs DQ) */
        __m512 r = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(r0)),
                                                       _mm256_castps_pd(r1), 1));
        __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(k0), k1, 1);
        sincos_poly_avx512(r, q, c + i, s + i);
    }
}

/* cs2/sn2 of normal mode: cos repeated per pair, sin as (-sin, +sin). */
static KD_AVX2 void expand_pairs_avx2(const float *cs, const float *sn, int half, float *cs2,
                                      float *sn2)
{
    const __m256i lo = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    const __m256i hi = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
    const __m256 neg_even = _mm256_setr_ps(-0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f);
    for (int i = 0; i < half; i += 8) {
        __m256 c = _mm256_loadu_ps(cs + i), s = _mm256_loadu_ps(sn + i);
        _mm256_storeu_ps(cs2 + 2 * i, _mm256_permutevar8x32_ps(c, lo));
        _mm256_storeu_ps(cs2 + 2 * i + 8, _mm256_permutevar8x32_ps(c, hi));
        _mm256_storeu_ps(sn2 + 2 * i, _mm256_xor_ps(_mm256_permutevar8x32_ps(s, lo), neg_even));
        _mm256_storeu_ps(sn2 + 2 * i + 8, _mm256_xor_ps(_mm256_permutevar8x32_ps(s, hi), neg_even));
    }
}
#endif

/* The reference's cos/sin: libm in double. */
static void sincos_scalar(double pos, const double *freq, int half, float *c, float *s)
{
    for (int i = 0; i < half; i++) {
        double a = pos * freq[i];
        c[i] = (float)cos(a);
        s[i] = (float)sin(a);
    }
}

/* ---- rows ----------------------------------------------------------------------------- */

static void rope_rows(void *arg, int64_t b, int64_t e)
{
    const rope_job *j = arg;
    const kd_call *c = j->c;
    const int half = c->head_dim / 2;
    float cs[KD_ROPE_MAX_HALF + KD_ROPE_PAD], sn[KD_ROPE_MAX_HALF + KD_ROPE_PAD];
#ifdef KD_HAVE_X86 /* the SIMD heads' pairwise tables (unused elsewhere: a warning off x86) */
    float cs2[2 * (KD_ROPE_MAX_HALF + KD_ROPE_PAD)], sn2[2 * (KD_ROPE_MAX_HALF + KD_ROPE_PAD)];
#endif
    for (int64_t r = b; r < e; r++) {
        const double pos = (double)c->pos[r];
#ifdef KD_HAVE_X86
        if (j->simd == KD_SIMD_AVX512)
            sincos_avx512(pos, j->freq, half, cs, sn);
        else if (j->simd >= KD_SIMD_AVX2)
            sincos_avx2(pos, j->freq, half, cs, sn);
        if (j->simd != KD_SIMD_SCALAR && c->rope_mode == KD_ROPE_NORMAL)
            expand_pairs_avx2(cs, sn, half, cs2, sn2);
#endif
        if (j->simd == KD_SIMD_SCALAR)
            sincos_scalar(pos, j->freq, half, cs, sn);
        const float *x = (const float *)c->src[0] + r * c->n;
        float *y = (float *)c->dst + r * c->n;
        for (int h = 0; h < c->n_heads; h++) {
            const int64_t o = (int64_t)h * c->head_dim;
#ifdef KD_HAVE_X86
            if (j->simd == KD_SIMD_AVX512) {
                rope_head_avx512(c, x + o, y + o, cs, sn, cs2, sn2, j->nt);
                continue;
            }
            if (j->simd >= KD_SIMD_AVX2) {
                rope_head_avx2(c, x + o, y + o, cs, sn, cs2, sn2, j->nt);
                continue;
            }
#endif
            rope_head_scalar(c, x + o, y + o, cs, sn);
        }
    }
#ifdef KD_HAVE_X86
    if (j->nt)
        _mm_sfence(); /* streaming stores are weakly ordered: make them visible first */
#endif
}

/* Single-row kernel for M = 1 (and the scalar reference); the batched kernel spreads rows
 * over the threads. */
void kd_cpu_rope(const kd_cpu_env *e, const kd_call *c, int scalar)
{
    double freq[KD_ROPE_MAX_HALF + KD_ROPE_PAD];
    const int half = c->head_dim / 2;
    for (int i = 0; i < half; i++)
        freq[i] = pow((double)c->rope_base, -2.0 * i / c->head_dim);
    for (int i = half; i < half + KD_ROPE_PAD; i++)
        freq[i] = 0.0; /* the SIMD sincos computes whole vectors; these lanes go unused */
    /* streaming stores need 64-byte aligned heads: rows aligned (n % 16) and whole heads
     * of a multiple of 16 values, so no tail loop meets them unaligned */
    rope_job j = {c, scalar ? KD_SIMD_SCALAR : e->simd, freq,
                  !scalar && c->head_dim % 32 == 0 && kd_cpu_stream_output(c->dst, c->m, c->n)};
    if (c->m == 1 || scalar)
        rope_rows(&j, 0, c->m);
    else
        kd_pool_for(e->pool, c->m, (16384 + c->n - 1) / c->n, rope_rows, &j);
}
