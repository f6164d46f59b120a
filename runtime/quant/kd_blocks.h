/*
 * GGUF's K-quant blocks and their decoding, written once for three compilers:
 * host C (gcc/clang), OpenCL C 1.2 and CUDA C. Every backend includes this file.
 *
 *   block_q4_K (144 B): f16 d, f16 dmin, 12 B of packed 6-bit (scale, min) pairs for
 *                       8 sub-blocks of 32, 128 B of 4-bit quants.
 *                       w[i] = d*sc[i/32] * q[i] - dmin*m[i/32]
 *   block_q6_K (210 B): ql[128] low 4 bits, qh[64] high 2 bits, int8 scales[16] (one per
 *                       16 values), f16 d last.
 *                       w[i] = d*scales[i/16] * (q[i] - 32)
 *
 * The element index helpers follow ggml's dequantize_row_q4_K / _q6_K loop order, so
 * element i of the decoded row is the i-th value ggml (and the gguf Python package) emit.
 */
#ifndef KD_BLOCKS_H
#define KD_BLOCKS_H

#if defined(__OPENCL_VERSION__)
#define KD_FN static inline
#define KD_GLOBAL __global
typedef uchar kd_u8;
typedef char kd_i8;
typedef ushort kd_u16;
typedef short kd_i16;
typedef uint kd_u32;
#elif defined(__CUDACC__)
#include <cuda_fp16.h>
#define KD_FN static __device__ __forceinline__
#define KD_GLOBAL
typedef unsigned char kd_u8;
typedef signed char kd_i8;
typedef unsigned short kd_u16;
typedef short kd_i16;
typedef unsigned int kd_u32;
#else
#include <stdint.h>
#include <string.h>
#define KD_FN static inline
#define KD_GLOBAL
typedef uint8_t kd_u8;
typedef int8_t kd_i8;
typedef uint16_t kd_u16;
typedef int16_t kd_i16;
typedef uint32_t kd_u32;
#endif

#define KD_QK_K 256          /* values per super-block */
#define KD_Q4K_SCALE_BYTES 12

typedef struct kd_block_q4_K {
    kd_u16 d;                         /* f16 super-block scale for the scales */
    kd_u16 dmin;                      /* f16 super-block scale for the mins */
    kd_u8 scales[KD_Q4K_SCALE_BYTES]; /* 8 x (6-bit scale, 6-bit min) */
    kd_u8 qs[KD_QK_K / 2];            /* 4-bit quants */
} kd_block_q4_K;

typedef struct kd_block_q6_K {
    kd_u8 ql[KD_QK_K / 2];      /* low 4 bits */
    kd_u8 qh[KD_QK_K / 4];      /* high 2 bits */
    kd_i8 scales[KD_QK_K / 16]; /* 8-bit scales */
    kd_u16 d;                   /* f16 super-block scale */
} kd_block_q6_K;

/* 256 activations quantized for the q8 GEMV paths (the cpu's, and OpenCL's on CPU
 * devices; ggml's q8_K idea): x[i] ~= d * qs[i] with d = amax / 127 and |qs| <= 127, and
 * what a weight type needs of their sums: Q6_K's bsums[g] = qs[16g] + .. + qs[16g + 15],
 * or Q4_K's xm[s] = d * (bsums[2s] + bsums[2s + 1]), which meets its 8 mins as one FMA per
 * block and row. The AVX2 kernels read qs in their lane order (kd_q8_lane_qword). 320
 * bytes with qs first: in a 64-byte aligned buffer no 32- or 64-byte load of qs straddles
 * two cache lines (in ggml's 292-byte q8_K order, d first, about half of them do), and
 * each block is 5 lines.
 * OpenCL stores 8 rows of x at a time, block by block (gemv_q8.cl), so that a group's rows
 * sit at fixed offsets from one pointer; the cpu stores rows one after the other.
 *
 * Lane sums (the AVX2 kernels of both, in a full tile of 8 rows of x): the kernel adds the
 * 8 rows' block sums into the lanes of one vector (lane i: row i) and does the floats once
 * for the tile, so it reads the rows' sums and d of block b transposed, from the tile's
 * blocks b (tile row i: row i). Q4_K, in place of xm: s.bsums of tile row j (j < 4) holds
 * at 2i and 2i + 1 row i's sums of sub-blocks 2j and 2j + 1 (|.| <= 32 * 127), s.xm of
 * tile row 4 at i row i's d; tile rows 5-7's s are not read. Q6_K: the bsums as ever, and
 * row i's d in pad1[i % 4] of tile row i / 4. */
typedef struct kd_block_q8 {
    kd_i8 qs[KD_QK_K];
    float d;
    float pad0[3];
    union {
        kd_i16 bsums[KD_QK_K / 16];
        float xm[KD_QK_K / 32]; /* OpenCL's Q4_K */
    } s;
    float pad1[4];
} kd_block_q8;

/* The lane order of qs that the AVX2 q8 kernels read (gemv_q8.cl's KD_Q8_XLANES, the
 * cpu's gemv_q8_ymm.h): where qword i (values 8i .. 8i + 7) of a block goes, so that the
 * int16 sums of several vpmaddubsw hold one sub-block per lane and take one vpmaddwd by
 * the scales. Q4_K: position 64k + 32h + 8j holds qword k of sub-block 2j + h (what a
 * 4 x 4 qword transpose of the weights meets); Q6_K: in each 64 values, qwords 0, 4, 2, 6,
 * then 1, 5, 3, 7 (what vpunpcklqdq / vpunpckhqdq of two 32-value vectors meet). */
KD_FN int kd_q8_lane_qword(int i, int q4k)
{
    int r = i % 8;
    if (q4k)
        return 8 * (i % 4) + 4 * (i / 4 % 2) + i / 8;
    return i - r + 4 * (r & 1) + 2 * ((r >> 1) & 1) + (r >> 2);
}

/* The lane sums layout (above) as indices, for its two writers (the cpu's quant_q8.c,
 * gemv_q8.cl's quantizer): row i's sum of sub-block s (Q4_K) in s.bsums[kd_q8_lane_sum_slot]
 * of tile row kd_q8_lane_sum_row; row i's d at kd_q8_lane_d_slot of s.xm (Q4_K) or pad1
 * (Q6_K) of tile row kd_q8_lane_d_row. */
KD_FN int kd_q8_lane_sum_row(int s) { return s / 2; }
KD_FN int kd_q8_lane_sum_slot(int i, int s) { return 2 * i + s % 2; }
KD_FN int kd_q8_lane_d_row(int i, int q4k) { return q4k ? 4 : i / 4; }
KD_FN int kd_q8_lane_d_slot(int i, int q4k) { return q4k ? i : i % 4; }

#define KD_Q4K_BLOCK_BYTES 144
#define KD_Q6K_BLOCK_BYTES 210

/* ---- f16 -> f32, exact ------------------------------------------------------------ */

KD_FN float kd_bits_to_f32(kd_u32 u)
{
#if defined(__OPENCL_VERSION__)
    return as_float(u);
#elif defined(__CUDACC__)
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

KD_FN float kd_f16_to_f32(kd_u16 h)
{
#if defined(__CUDACC__)
    return __half2float(__ushort_as_half(h));
#elif defined(__OPENCL_VERSION__) && defined(__x86_64__) && defined(__F16C__) && defined(__clang__)
    /* PoCL on x86 with F16C (haswell and later targets): one vcvtph2ps. PoCL's vload_half
     * is a software conversion, about 20 instructions and a branch a value. */
    return __builtin_ia32_vcvtph2ps((short8)((short)h, 0, 0, 0, 0, 0, 0, 0))[0];
#elif defined(__OPENCL_VERSION__) && defined(__x86_64__)
    /* PoCL on x86: its vload_half took about 10 instructions a value fewer than the bit
     * operations below in the q8 Q4_K loop (two values a block; 0.96-0.97 of the time at
     * M = 1 and 8, Zen 3). Not on other OpenCL targets: clang 14's NVPTX headers declare
     * no vload_half for private pointers. */
    return vload_half(0, (const __private half *)&h);
#else
    kd_u32 sign = (kd_u32)(h & 0x8000u) << 16;
    kd_u32 exp = (h >> 10) & 0x1fu;
    kd_u32 mant = h & 0x3ffu;
    if (exp == 0) { /* zero or subnormal: mant * 2^-24, exact in f32 */
        float v = (float)mant * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31) /* inf or nan */
        return kd_bits_to_f32(sign | 0x7f800000u | (mant << 13));
    return kd_bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13));
#endif
}

/* ---- Q4_K -------------------------------------------------------------------------- */

/* 6-bit scale and min of sub-block j (0..7): ggml's get_scale_min_k4. */
KD_FN void kd_q4k_scale_min(int j, const KD_GLOBAL kd_u8 *s, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* The 4-bit quant of element i (0..255). */
KD_FN int kd_q4k_quant(const KD_GLOBAL kd_block_q4_K *b, int i)
{
    int byte = b->qs[(i >> 6) * 32 + (i & 31)];
    return (byte >> (((i >> 5) & 1) * 4)) & 0xF;
}

/* Sub-block j's scale d*sc and offset dmin*m: element value = dl * q - ml. */
KD_FN void kd_q4k_sub_coeffs(const KD_GLOBAL kd_block_q4_K *b, int j, float *dl, float *ml)
{
    int sc, m;
    kd_q4k_scale_min(j, b->scales, &sc, &m);
    *dl = kd_f16_to_f32(b->d) * (float)sc;
    *ml = kd_f16_to_f32(b->dmin) * (float)m;
}

KD_FN float kd_q4k_value(const KD_GLOBAL kd_block_q4_K *b, int i)
{
    float dl, ml;
    kd_q4k_sub_coeffs(b, i >> 5, &dl, &ml);
    return dl * (float)kd_q4k_quant(b, i) - ml;
}

/* ---- Q6_K -------------------------------------------------------------------------- */

/* The signed 6-bit quant of element i (0..255), in [-32, 31]. */
KD_FN int kd_q6k_quant(const KD_GLOBAL kd_block_q6_K *b, int i)
{
    int lo = b->ql[(i >> 7) * 64 + ((i >> 5) & 1) * 32 + (i & 31)];
    int hi = b->qh[(i >> 7) * 32 + (i & 31)];
    lo = (lo >> (((i >> 6) & 1) * 4)) & 0xF;
    hi = (hi >> (((i >> 5) & 3) * 2)) & 3;
    return (lo | (hi << 4)) - 32;
}

/* Scale of the 16 elements starting at 16*g: d * scales[g]. */
KD_FN float kd_q6k_sub_scale(const KD_GLOBAL kd_block_q6_K *b, int g)
{
    return kd_f16_to_f32(b->d) * (float)b->scales[g];
}

KD_FN float kd_q6k_value(const KD_GLOBAL kd_block_q6_K *b, int i)
{
    return kd_q6k_sub_scale(b, i >> 4) * (float)kd_q6k_quant(b, i);
}

#endif /* KD_BLOCKS_H */
