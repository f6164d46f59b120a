/* AVX2 helpers shared by the cpu kernels (compiled per function with target attributes,
 * so the library still runs on CPUs without AVX2). */
#ifndef KD_CPU_SIMD_H
#define KD_CPU_SIMD_H

#if defined(__x86_64__) || defined(__i386__)
#ifdef KD_SIMD_EMULATED
#include "simd_emulated.h" /* the emulated-SIMD test build: every level in portable C */
#define KD_TARGET(features)
#else
#include <immintrin.h>
/* a function compiled for an instruction set beyond the build's baseline */
#define KD_TARGET(features) __attribute__((target(features)))
#endif
/* Empty asm statements, which the compiler must assume change their operand; they emit
 * no instruction. KD_OPAQUE_PTR(p): loads through p cannot be shared with loads through
 * the same pointer elsewhere (no hoisting out of a loop). KD_KEEP_VEC(v): v is computed
 * here, into a register, not deferred. The emulated build's vectors are structs, which
 * may stay in memory. */
#define KD_OPAQUE_PTR(p) __asm__("" : "+r"(p))
#ifdef KD_SIMD_EMULATED
#define KD_KEEP_VEC(v) __asm__("" : "+m"(v))
#else
#define KD_KEEP_VEC(v) __asm__("" : "+x"(v))
#endif
#define KD_HAVE_X86 1
#define KD_AVX2 KD_TARGET("avx2,fma,f16c")
#define KD_AVX512 KD_TARGET("avx512f,avx512bw,avx2,fma,f16c")
/* the kernels' block functions: inlined into each specialization that calls them */
#define KD_INLINE static inline __attribute__((always_inline))

#include <stdint.h>
#include <string.h>

/* The 8 six-bit scales (sc) and mins (mn) of a Q4_K block's 12 packed bytes s, as 8
 * bytes each: words w0, w1, w2 hold sc[0..3] = w0 & 63, mn[0..3] = w1 & 63, and for
 * j = 4..7 the low nibbles in w2 with the top two bits from bits 6-7 of the first eight
 * bytes (kd_q4k_scale_min in kd_blocks.h, one at a time). */
static inline __attribute__((always_inline)) void kd_q4k_unpack_scales(const uint8_t *s, uint32_t sc[2],
                                                                       uint32_t mn[2])
{
    uint32_t w[3];
    memcpy(w, s, 12);
    sc[0] = w[0] & 0x3f3f3f3fu;
    sc[1] = (w[2] & 0x0f0f0f0fu) | ((w[0] >> 2) & 0x30303030u);
    mn[0] = w[1] & 0x3f3f3f3fu;
    mn[1] = ((w[2] >> 4) & 0x0f0f0f0fu) | ((w[1] >> 2) & 0x30303030u);
}

/* 8 unsigned bytes as 8 floats. */
static inline __attribute__((always_inline)) KD_AVX2 __m256 kd_u8x8_to_f32(const void *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/* A Q4_K block's mins against x's xm (the q8 kernels): lane s is -dmin * min s, from the
 * 8 unpacked min bytes (kd_q4k_unpack_scales) and the block's f16 dmin. */
static inline __attribute__((always_inline)) KD_AVX2 __m256 kd_q4k_neg_mins(const void *mins, uint16_t dmin)
{
    return _mm256_mul_ps(kd_u8x8_to_f32(mins), _mm256_set1_ps(-_cvtsh_ss(dmin)));
}

static inline KD_AVX2 float kd_hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* exp(x) for x in float range: 2^n * p(r), |r| <= ln2/2, degree-6 polynomial;
 * relative error about 2 ulp. Inputs below -87 flush to 0, above 88.3 saturate. */
static inline KD_AVX2 __m256 kd_exp256(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* kd_exp256 with 16 lanes (same polynomial, same range). */
static inline KD_AVX512 __m512 kd_exp512(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}
/* A store of 8 / 16 floats; nt: streaming (non-temporal, y 32/64-byte aligned), for an
 * output too large to stay in cache (kd_cpu_stream_output). */
static inline KD_AVX2 void kd_store256(float *y, __m256 v, int nt)
{
    if (nt)
        _mm256_stream_ps(y, v);
    else
        _mm256_storeu_ps(y, v);
}

static inline KD_AVX512 void kd_store512(float *y, __m512 v, int nt)
{
    if (nt)
        _mm512_stream_ps(y, v);
    else
        _mm512_storeu_ps(y, v);
}
#endif

#endif
