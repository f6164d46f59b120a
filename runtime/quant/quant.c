/* Host quant utilities: see kd_quant.h. */
#include "kd_quant.h"

#include <math.h>
#include <string.h>

uint16_t kd_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t exp = (u >> 23) & 0xffu;
    uint32_t mant = u & 0x7fffffu;
    if (exp == 0xff) /* inf or nan: keep a nan a nan */
        return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) { /* subnormal or zero in f16 */
        if (e < -10)
            return (uint16_t)sign;
        mant |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1)))
        half++; /* may carry into the exponent, which is the right rounding */
    return (uint16_t)(sign | half);
}

size_t kd_quant_block_bytes(kd_type t)
{
    switch (t) {
    case KD_TYPE_Q4_K: return sizeof(kd_block_q4_K);
    case KD_TYPE_Q6_K: return sizeof(kd_block_q6_K);
    default: return 0;
    }
}

size_t kd_quant_row_bytes(kd_type t, int64_t k)
{
    return (size_t)(k / KD_QK_K) * kd_quant_block_bytes(t);
}

/* ggml's loop order: per sub-block of 32, y = (d*sc)*q - (dmin*m). */
static void dequant_q4k(const kd_block_q4_K *b, float *y)
{
    for (int j = 0; j < 8; j++) {
        float dl, ml;
        kd_q4k_sub_coeffs(b, j, &dl, &ml);
        for (int l = 0; l < 32; l++)
            y[32 * j + l] = dl * (float)kd_q4k_quant(b, 32 * j + l) - ml;
    }
}

static void dequant_q6k(const kd_block_q6_K *b, float *y)
{
    for (int g = 0; g < 16; g++) {
        float s = kd_q6k_sub_scale(b, g);
        for (int l = 0; l < 16; l++)
            y[16 * g + l] = s * (float)kd_q6k_quant(b, 16 * g + l);
    }
}

/* Each block is copied out first: the bytes may sit at any address (a GGUF file with
 * general.alignment = 1), and reading the structs in place would be misaligned. */
void kd_dequant_row(kd_type t, const void *blocks, int64_t k, float *out)
{
    const unsigned char *p = blocks;
    for (int64_t i = 0; i < k / KD_QK_K; i++) {
        if (t == KD_TYPE_Q4_K) {
            kd_block_q4_K b;
            memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
            dequant_q4k(&b, out + i * KD_QK_K);
        } else {
            kd_block_q6_K b;
            memcpy(&b, p + (size_t)i * sizeof b, sizeof b);
            dequant_q6k(&b, out + i * KD_QK_K);
        }
    }
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Q4_K: per sub-block an affine map [min, max] -> 0..15; the 8 scales and mins are then
 * quantized to 6 bits against the block's d and dmin. Simple, not ggml's search. */
static void quantize_q4k_block(const float *x, kd_block_q4_K *b)
{
    float scale[8], minv[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float lo = x[32 * j], hi = x[32 * j];
        for (int l = 1; l < 32; l++) {
            lo = fminf(lo, x[32 * j + l]);
            hi = fmaxf(hi, x[32 * j + l]);
        }
        if (lo > 0)
            lo = 0;
        scale[j] = (hi - lo) / 15.0f;
        minv[j] = -lo;
        max_scale = fmaxf(max_scale, scale[j]);
        max_min = fmaxf(max_min, minv[j]);
    }
    b->d = kd_f32_to_f16(max_scale / 63.0f);
    b->dmin = kd_f32_to_f16(max_min / 63.0f);
    float d = kd_f16_to_f32(b->d), dmin = kd_f16_to_f32(b->dmin);
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = (uint8_t)(d > 0 ? clampi((int)lrintf(scale[j] / d), 0, 63) : 0);
        mn[j] = (uint8_t)(dmin > 0 ? clampi((int)lrintf(minv[j] / dmin), 0, 63) : 0);
    }
    for (int j = 0; j < 4; j++) {
        b->scales[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        b->scales[j + 4] = (uint8_t)(mn[j] | ((mn[j + 4] >> 4) << 6));
        b->scales[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
    }
    memset(b->qs, 0, sizeof b->qs);
    for (int i = 0; i < KD_QK_K; i++) {
        float dl, ml;
        kd_q4k_sub_coeffs(b, i >> 5, &dl, &ml);
        int q = dl > 0 ? clampi((int)lrintf((x[i] + ml) / dl), 0, 15) : 0;
        b->qs[(i >> 6) * 32 + (i & 31)] |= (uint8_t)(q << (((i >> 5) & 1) * 4));
    }
}

/* Q6_K: per group of 16 a symmetric scale, quantized to int8 against the block's d. */
static void quantize_q6k_block(const float *x, kd_block_q6_K *b)
{
    float gscale[16], amax_all = 0;
    for (int g = 0; g < 16; g++) {
        float amax = 0;
        for (int l = 0; l < 16; l++)
            amax = fmaxf(amax, fabsf(x[16 * g + l]));
        gscale[g] = amax / 31.0f;
        amax_all = fmaxf(amax_all, gscale[g]);
    }
    b->d = kd_f32_to_f16(amax_all / 127.0f);
    float d = kd_f16_to_f32(b->d);
    for (int g = 0; g < 16; g++)
        b->scales[g] = (int8_t)(d > 0 ? clampi((int)lrintf(gscale[g] / d), -128, 127) : 0);
    memset(b->ql, 0, sizeof b->ql);
    memset(b->qh, 0, sizeof b->qh);
    for (int i = 0; i < KD_QK_K; i++) {
        float s = kd_q6k_sub_scale(b, i >> 4);
        int q = s != 0 ? clampi((int)lrintf(x[i] / s), -32, 31) : 0;
        int u = q + 32;
        b->ql[(i >> 7) * 64 + ((i >> 5) & 1) * 32 + (i & 31)] |=
            (uint8_t)((u & 0xF) << (((i >> 6) & 1) * 4));
        b->qh[(i >> 7) * 32 + (i & 31)] |= (uint8_t)((u >> 4) << (((i >> 5) & 3) * 2));
    }
}

void kd_quantize_row(kd_type t, const float *x, int64_t k, void *out)
{
    for (int64_t i = 0; i < k / KD_QK_K; i++) {
        if (t == KD_TYPE_Q4_K)
            quantize_q4k_block(x + i * KD_QK_K, (kd_block_q4_K *)out + i);
        else
            quantize_q6k_block(x + i * KD_QK_K, (kd_block_q6_K *)out + i);
    }
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rand_unit(uint64_t *s) { return (float)(splitmix64(s) >> 40) / 16777216.0f; }

void kd_quant_random_blocks(kd_type t, int64_t nblocks, uint64_t seed, void *out)
{
    uint64_t s = seed;
    size_t bytes = kd_quant_block_bytes(t);
    uint8_t *p = out;
    for (int64_t i = 0; i < nblocks; i++, p += bytes) {
        for (size_t j = 0; j < bytes; j++)
            p[j] = (uint8_t)splitmix64(&s);
        /* Scales: finite f16 of moderate size so that outputs stay well inside f32. */
        if (t == KD_TYPE_Q4_K) {
            kd_block_q4_K *b = (kd_block_q4_K *)p;
            b->d = kd_f32_to_f16(0.0005f + 0.002f * rand_unit(&s));
            b->dmin = kd_f32_to_f16(0.0005f + 0.002f * rand_unit(&s));
        } else {
            kd_block_q6_K *b = (kd_block_q6_K *)p;
            b->d = kd_f32_to_f16(0.0001f + 0.0004f * rand_unit(&s));
        }
    }
}
