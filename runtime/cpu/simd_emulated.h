/* The x86 intrinsics of every level in portable C, for the emulated-SIMD test build only
 * (-DKD_SIMD_EMULATED=ON, tests/test_simd_emulated.sh): SIMDe (Debian: libsimde-dev)
 * implements _mm256_* and _mm512_* under their own names, so that the AVX-512, AVX-512
 * VNNI and AVX-VNNI kernels run, slowly, on a CPU without those instructions. simd.h
 * includes this instead of <immintrin.h> in that build and leaves out the target
 * attributes; never in the library that is installed or timed.
 *
 * Below: the intrinsics the kernels use that SIMDe 0.7.4 (Debian 12) lacks, written from
 * Intel's definitions lane by lane. */
#ifndef KD_SIMD_EMULATED_H
#define KD_SIMD_EMULATED_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#include <simde/x86/fma.h>

#ifndef _MM_FROUND_TO_NEAREST_INT
#define _MM_FROUND_TO_NEAREST_INT SIMDE_MM_FROUND_TO_NEAREST_INT
#endif
#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#endif

typedef simde__mmask16 __mmask16; /* SIMDe 0.7.4 aliases the vector types only */

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* lanes of a vector as an array, and back */
#define KD_EMU_LANES(type, name, v)                                                      \
    type name[sizeof(v) / sizeof(type)];                                                 \
    memcpy(name, &(v), sizeof(v))
#define KD_EMU_RETURN(rtype, arr)                                                        \
    do {                                                                                 \
        rtype r_;                                                                        \
        memcpy(&r_, (arr), sizeof r_);                                                   \
        return r_;                                                                       \
    } while (0)

/* float -> int32 in the default rounding (to nearest even); NaN and out of range give
 * INT32_MIN (the "integer indefinite" of cvtps2dq) */
static inline int32_t kd_emu_cvt_i32(double v)
{
    if (!(v >= -2147483648.0 && v < 2147483648.0))
        return INT32_MIN;
    return (int32_t)nearbyint(v);
}

/* AVX-VNNI: the VEX forms compute what the EVEX (AVX512VL) ones do */
#define _mm256_dpbusd_avx_epi32(src, a, b) simde_mm256_dpbusd_epi32(src, a, b)
#define _mm256_dpwssd_avx_epi32(src, a, b) simde_mm256_dpwssd_epi32(src, a, b)

/* vrndscale: x rounded to a multiple of 2^-M (M = imm >> 4) in the mode of imm & 3 (imm
 * & 4: the current mode, which is to nearest here). SIMDe 0.7.4 reads the scale from
 * the wrong bits once the no-exception bit (8) is set: 0.75 to -inf gave 0.5. */
static inline double kd_emu_roundscale(double x, int imm)
{
    double scale = ldexp(1.0, (imm >> 4) & 15), v = x * scale;
    switch ((imm & 4) ? 0 : imm & 3) {
    case 1: v = floor(v); break;
    case 2: v = ceil(v); break;
    case 3: v = trunc(v); break;
    default: v = nearbyint(v); break;
    }
    return v / scale;
}

#undef _mm512_roundscale_pd
#undef _mm512_roundscale_ps
#define _mm512_roundscale_pd(a, imm) kd_emu_roundscale_pd(a, imm)
#define _mm512_roundscale_ps(a, imm) kd_emu_roundscale_ps(a, imm)
static inline __m512d kd_emu_roundscale_pd(__m512d a, int imm)
{
    KD_EMU_LANES(double, v, a);
    for (int i = 0; i < 8; i++)
        v[i] = kd_emu_roundscale(v[i], imm);
    KD_EMU_RETURN(__m512d, v);
}

static inline __m512 kd_emu_roundscale_ps(__m512 a, int imm)
{
    KD_EMU_LANES(float, v, a);
    for (int i = 0; i < 16; i++)
        v[i] = (float)kd_emu_roundscale(v[i], imm);
    KD_EMU_RETURN(__m512, v);
}

/* F16C's scalar half -> float */
static inline float _cvtsh_ss(unsigned short h)
{
    return simde_mm_cvtss_f32(simde_mm_cvtph_ps(simde_mm_cvtsi32_si128(h)));
}

/* NAME(a): N lanes of IN (in vector type AT) mapped one by one by EXPR of in[i] to N lanes
 * of OUT (in vector type RT) */
#define KD_EMU_MAP(NAME, RT, OUT, AT, IN, N, EXPR)                                       \
    static inline RT NAME(AT a)                                                          \
    {                                                                                    \
        KD_EMU_LANES(IN, in, a);                                                         \
        OUT out[N];                                                                      \
        for (int i = 0; i < (N); i++)                                                    \
            out[i] = (EXPR);                                                             \
        KD_EMU_RETURN(RT, out);                                                          \
    }

KD_EMU_MAP(_mm512_cvtepi32_ps, __m512, float, __m512i, int32_t, 16, (float)in[i])
KD_EMU_MAP(_mm512_cvtps_epi32, __m512i, int32_t, __m512, float, 16, kd_emu_cvt_i32(in[i]))
KD_EMU_MAP(_mm512_cvtpd_epi32, __m256i, int32_t, __m512d, double, 8, kd_emu_cvt_i32(in[i]))
KD_EMU_MAP(_mm512_cvtpd_ps, __m256, float, __m512d, double, 8, (float)in[i])
/* 16 int32 -> 16 int8, truncated (vpmovdb) */
KD_EMU_MAP(_mm512_cvtepi32_epi8, __m128i, int8_t, __m512i, uint32_t, 16, (int8_t)(in[i] & 0xffu))
KD_EMU_MAP(_mm512_cvtepi8_epi32, __m512i, int32_t, __m128i, int8_t, 16, in[i])
KD_EMU_MAP(_mm512_cvtepu8_epi32, __m512i, int32_t, __m128i, uint8_t, 16, in[i])

/* vpermilps with an immediate: in each 128-bit lane, element i takes element
 * (imm >> 2i) & 3 of the same lane */
static inline __m512 _mm512_permute_ps(__m512 a, int imm)
{
    KD_EMU_LANES(float, in, a);
    float out[16];
    for (int i = 0; i < 16; i++)
        out[i] = in[(i & ~3) + ((imm >> (2 * (i & 3))) & 3)];
    KD_EMU_RETURN(__m512, out);
}

/* The reductions as GCC 12's headers write them: halves added, 256 then 128
 * bits, then within the 128. */
static inline float _mm512_reduce_add_ps(__m512 a)
{
    KD_EMU_LANES(float, v, a);
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++)
            v[i] += v[i + w];
    return v[0];
}

/* maxps: the second operand where either is NaN */
static inline float kd_emu_maxps(float a, float b) { return a > b ? a : b; }

/* GCC's order of operands too (it decides which NaN survives): the upper half first in
 * the 256- and 128-bit steps, the lower lane first in the last two */
static inline float _mm512_reduce_max_ps(__m512 a)
{
    KD_EMU_LANES(float, v, a);
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++)
            v[i] = w >= 4 ? kd_emu_maxps(v[i + w], v[i]) : kd_emu_maxps(v[i], v[i + w]);
    return v[0];
}

static inline int _mm512_reduce_add_epi32(__m512i a)
{
    KD_EMU_LANES(uint32_t, v, a);
    uint32_t s = 0; /* wraps, as the vector adds do */
    for (int i = 0; i < 16; i++)
        s += v[i];
    return (int)s;
}

/* The aligned loads and stores the kernels use fault on a real CPU (#GP) when the address
 * is not a multiple of the vector size; SIMDe's do not, and nothing here would notice a
 * misaligned one. So they check, and abort as the hardware would. */
static inline void kd_emu_need_aligned(const void *p, size_t n, const char *what)
{
    if ((uintptr_t)p % n) {
        fprintf(stderr, "%s: address %p is not %zu-byte aligned (a fault on a real CPU)\n", what, p, n);
        abort();
    }
}

#undef _mm_load_si128
#undef _mm256_store_si256
#undef _mm256_stream_ps
#define _mm_load_si128(p) kd_emu_load_si128(p)
#define _mm256_store_si256(p, a) kd_emu_store_si256(p, a)
#define _mm256_stream_ps(p, a) kd_emu_stream256_ps(p, a)
static inline __m128i kd_emu_load_si128(const __m128i *p)
{
    kd_emu_need_aligned(p, 16, "_mm_load_si128");
    return simde_mm_loadu_si128(p);
}
static inline void kd_emu_store_si256(__m256i *p, __m256i a)
{
    kd_emu_need_aligned(p, 32, "_mm256_store_si256");
    simde_mm256_storeu_si256(p, a);
}
static inline void kd_emu_stream256_ps(float *p, __m256 a)
{
    kd_emu_need_aligned(p, 32, "_mm256_stream_ps");
    simde_mm256_storeu_ps(p, a);
}
static inline void _mm512_stream_ps(float *p, __m512 a)
{
    kd_emu_need_aligned(p, 64, "_mm512_stream_ps");
    memcpy(p, &a, sizeof a);
}

/* lanes with their mask bit clear are 0 and not read (the instruction suppresses their
 * faults) */
static inline __m512 _mm512_maskz_loadu_ps(__mmask16 k, const void *p)
{
    float v[16];
    for (int i = 0; i < 16; i++)
        v[i] = (k >> i) & 1 ? ((const float *)p)[i] : 0.0f;
    KD_EMU_RETURN(__m512, v);
}

static inline __m512i _mm512_zextsi256_si512(__m256i a)
{
    unsigned char out[64] = {0};
    memcpy(out, &a, sizeof a);
    KD_EMU_RETURN(__m512i, out);
}

#undef KD_EMU_MAP
#undef KD_EMU_LANES
#undef KD_EMU_RETURN
#endif
