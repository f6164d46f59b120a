/* The q8 GEMV path on CPU devices (PoCL): the cpu backend's activation-quantized GEMV
 * (runtime/cpu/gemv_q8.h) in OpenCL C. x is quantized once per call to kd_block_q8
 * (kd_q8_quantize, the cpu's formula and bytes; kd_blocks.h); each 32 weights times a row
 * of x is then an integer dot product, with floats once per 256 values:
 *
 *   Q4_K: y += dx * d * sum_s sc[s] * (q4_s . q8_s) - dmin * sum_s mn[s] * xm_s
 *         (xm_s = dx * the sum of x's 32 values s, from the quantizer)
 *   Q6_K: y += dx * d * sum_g scale[g] * (q6u_g . q8_g - 32 * bsums[g])   (q6u = q6 + 32)
 *
 * Why: the exact kernels are bound by one f32 FMA per weight and row of x. PoCL's
 * compiler turns none of the generic forms into x86's byte dot products, so on x86 with
 * AVX2 (clang: PoCL, oclgrind is not) each 32 weights are one vpmaddubsw (u8 weight x s8 x
 * -> int16 pairs), whose int16 sums over several sub-blocks (x stored in their lane
 * order, KD_Q8_XLANES) take one vpmaddwd by the int16 scales; with AVX-512BW each 64
 * weights are one vpmaddubsw and one vpmaddwd on zmm (M = 8: 0.79-0.94 of the ymm time
 * before the lane order); with AVX-512 VNNI on the host as well (the backend sets
 * -DKD_Q8_VNNI) each 128 weights are two vpdpbusd, a vpackssdw and a vpdpwssd
 * (kd_q8_mac128); elsewhere the same sums in OpenCL vectors. Integer sums are exact
 * either way. Those in-order block functions work in pairs of 64-weight chunks
 * (kd_q8_w64). Build options -DKD_Q8_YMM / -DKD_Q8_GENERIC / -DKD_Q8_NO_VNNI
 * (KD_OPENCL_OPTIONS) force the lower levels, to compare them.
 *
 * Shape: one work-item per output row (16 per group), group y takes rows
 * [8 * get_group_id(1), +8) of x; a weight block is decoded once for those rows.
 * CPU devices only: GPU shapes (KD_CL_GPU_SHAPES) have the exact kernels alone. */
#ifndef KD_CL_GPU_SHAPES
#include "kd_blocks.h"
#include "gemv_common.cl"

#if defined(__clang__) && defined(__AVX2__) && !defined(KD_Q8_GENERIC)
/* 32 bytes of weights (one x86 ymm register) */
typedef char kd_q8_w __attribute__((vector_size(32)));
typedef uchar kd_q8_wu __attribute__((vector_size(32)));
typedef short kd_q8_s16 __attribute__((vector_size(32)));
typedef struct __attribute__((packed)) kd_q8_pk { kd_q8_w v; } kd_q8_pk;
typedef struct __attribute__((packed)) kd_q8_pk16 { kd_q8_s16 v; } kd_q8_pk16;

KD_CL_INLINE kd_q8_w kd_q8_load(__global const void *p) { return ((__global const kd_q8_pk *)p)->v; }
KD_CL_INLINE kd_q8_w kd_q8_and(kd_q8_w v, char m) { return v & m; }
KD_CL_INLINE kd_q8_w kd_q8_or(kd_q8_w a, kd_q8_w b) { return a | b; }
KD_CL_INLINE kd_q8_w kd_q8_shr(kd_q8_w v, int s) { return (kd_q8_w)((kd_q8_wu)v >> (uchar)s); }
KD_CL_INLINE kd_q8_w kd_q8_shl(kd_q8_w v, int s) { return (kd_q8_w)((kd_q8_wu)v << (uchar)s); }
/* sum_i a[i] * b[i] over 16 int16 (8 partial sums) */
KD_CL_INLINE int8 kd_q8_dot16(__global const short *a, short16 b)
{
    return as_int8(__builtin_ia32_pmaddwd256(((__global const kd_q8_pk16 *)a)->v, as_short16(b)));
}

#if defined(__AVX512BW__) && !defined(KD_Q8_YMM)
/* 64 weights are one zmm register: one vpmaddubsw and one vpmaddwd per 64 weights and
 * row of x, half the instructions of two ymm. */
typedef char kd_q8_w64 __attribute__((vector_size(64)));
typedef short kd_q8_scale64 __attribute__((vector_size(64))); /* int16 lanes 8g .. 8g+7: group g */
typedef int16 kd_q8_isum;
typedef struct __attribute__((packed)) kd_q8_pk64 { kd_q8_w64 v; } kd_q8_pk64;

KD_CL_INLINE kd_q8_w64 kd_q8_join(kd_q8_w a, kd_q8_w b)
{
    return __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                   16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
                                   32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
                                   48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63);
}
KD_CL_INLINE kd_q8_scale64 kd_q8_scales4(short a, short b, short c, short d)
{
    return (kd_q8_scale64){a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b,
                           c, c, c, c, c, c, c, c, d, d, d, d, d, d, d, d};
}
KD_CL_INLINE kd_q8_isum kd_q8_dot64(kd_q8_w64 w, __global const char *x, kd_q8_scale64 sc)
{
    kd_q8_w64 xv = ((__global const kd_q8_pk64 *)x)->v;
    return as_int16(__builtin_ia32_pmaddwd512(__builtin_ia32_pmaddubsw512(w, xv), sc));
}
KD_CL_INLINE int8 kd_q8_isum8(kd_q8_isum s) { return s.lo + s.hi; }

#if defined(KD_Q8_VNNI) && !defined(KD_Q8_NO_VNNI) && defined(__x86_64__)
/* AVX-512 VNNI (the host sets KD_Q8_VNNI on CPUs that have it; PoCL's skylake-avx512
 * target does not name it, so the two instructions are written as asm). 128 weights times
 * a row of x: two vpdpbusd (u8 x s8, 4 products per int32), one vpackssdw of the pair to
 * int16 (|sum of 4| <= 63 * 127 * 4 < 2^15) and one vpdpwssd by the scales, 4
 * instructions where vpmaddubsw + vpmaddwd + vpaddd take 6. After the pack, 128-bit lane
 * L holds four sums of 16-value group L of the first chunk, then four of the second: the
 * scales are laid out the same. */
typedef kd_q8_scale64 kd_q8_scale128; /* 32 int16 */
KD_CL_INLINE kd_q8_scale128 kd_q8_scales8(short a0, short a1, short a2, short a3,
                                          short b0, short b1, short b2, short b3)
{
    return (kd_q8_scale128){a0, a0, a0, a0, b0, b0, b0, b0, a1, a1, a1, a1, b1, b1, b1, b1,
                            a2, a2, a2, a2, b2, b2, b2, b2, a3, a3, a3, a3, b3, b3, b3, b3};
}
KD_CL_INLINE int16 kd_q8_dpbusd(kd_q8_w64 w, __global const char *x)
{
    int16 t = (int16)(0);
    __asm__("vpdpbusd %2, %1, %0" : "+v"(t) : "v"(w), "m"(*(__global const kd_q8_pk64 *)x));
    return t;
}
KD_CL_INLINE kd_q8_isum kd_q8_mac128(kd_q8_isum acc, kd_q8_w64 w0, kd_q8_w64 w1,
                                     __global const char *x, kd_q8_scale128 sc)
{
    kd_q8_scale64 p = __builtin_ia32_packssdw512(kd_q8_dpbusd(w0, x), kd_q8_dpbusd(w1, x + 64));
    __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(p), "v"(sc));
    return acc;
}
#define KD_Q8_HAVE_MAC128
#endif
#else
/* 16 ymm registers (AVX2): x in lane order (KD_Q8_XLANES). The quantizer stores each
 * block's qwords (8 values) in the order the block functions read them, so that one
 * vpmaddwd by the scales takes the int16 sums of several vpmaddubsw whose lanes hold the
 * same sub-blocks: 10 (Q4_K) and 12 (Q6_K) multiplies a block and row of x, where taking
 * the sub-blocks in order takes 16 (M = 8: 0.93-0.95 of the time, Zen 3). */
#define KD_Q8_XLANES
typedef long kd_q8_l4 __attribute__((vector_size(32)));
/* qwords a0 b0 a2 b2 (vpunpcklqdq), a1 b1 a3 b3 (vpunpckhqdq) */
KD_CL_INLINE kd_q8_w kd_q8_unpacklo(kd_q8_w a, kd_q8_w b)
{
    return (kd_q8_w)__builtin_shufflevector((kd_q8_l4)a, (kd_q8_l4)b, 0, 4, 2, 6);
}
KD_CL_INLINE kd_q8_w kd_q8_unpackhi(kd_q8_w a, kd_q8_w b)
{
    return (kd_q8_w)__builtin_shufflevector((kd_q8_l4)a, (kd_q8_l4)b, 1, 5, 3, 7);
}
/* 128-bit halves a.lo b.lo, a.hi b.hi (vperm2i128) */
KD_CL_INLINE kd_q8_w kd_q8_halves_lo(kd_q8_w a, kd_q8_w b)
{
    return (kd_q8_w)__builtin_shufflevector((kd_q8_l4)a, (kd_q8_l4)b, 0, 1, 4, 5);
}
KD_CL_INLINE kd_q8_w kd_q8_halves_hi(kd_q8_w a, kd_q8_w b)
{
    return (kd_q8_w)__builtin_shufflevector((kd_q8_l4)a, (kd_q8_l4)b, 2, 3, 6, 7);
}
/* int16 pair sums of u8 weights w times s8 x (32 values) */
KD_CL_INLINE kd_q8_s16 kd_q8_maddubs(kd_q8_w w, __global const char *x)
{
    return __builtin_ia32_pmaddubsw256(w, kd_q8_load(x));
}
/* int16 sums a times scales sc, as 8 int32 pair sums */
KD_CL_INLINE int8 kd_q8_madd(kd_q8_s16 a, kd_q8_s16 sc)
{
    return as_int8(__builtin_ia32_pmaddwd256(a, sc));
}
/* Lane sums (KD_Q8_LANE_SUMS_*, below): 8 rows' int32 sums (8 lanes each) into one
 * vector, lane i row i's sum, in 3 steps of unpack-and-add (21 instructions), where a
 * vector per row spilled 8 accumulators (Q4_K M = 8: 0.92-0.94 of the time, Zen 3).
 * fold2: rows a, b to lanes a b a b | a b a b; fold4: rows a, b and c, d to a b c d |
 * a b c d; fold8: rows 0-3 and 4-7 to 0 1 .. 7. */
KD_CL_INLINE int8 kd_q8_fold2(int8 a, int8 b)
{
    return __builtin_shufflevector(a, b, 0, 8, 1, 9, 4, 12, 5, 13) +
           __builtin_shufflevector(a, b, 2, 10, 3, 11, 6, 14, 7, 15);
}
KD_CL_INLINE int8 kd_q8_fold4(int8 ab, int8 cd)
{
    return __builtin_shufflevector(ab, cd, 0, 1, 8, 9, 4, 5, 12, 13) +
           __builtin_shufflevector(ab, cd, 2, 3, 10, 11, 6, 7, 14, 15);
}
KD_CL_INLINE int8 kd_q8_fold8(int8 lo, int8 hi)
{
    return (int8)(lo.lo, hi.lo) + (int8)(lo.hi, hi.hi);
}
/* 16 int16 at p; a pair of int16 (one int32) in every pair of lanes */
KD_CL_INLINE kd_q8_s16 kd_q8_load16(__global const short *p) { return ((__global const kd_q8_pk16 *)p)->v; }
KD_CL_INLINE kd_q8_s16 kd_q8_pair_bcast(int pair) { return (kd_q8_s16)(int8)(pair); }
/* scales a, b, c, d, each on 4 int16 lanes */
KD_CL_INLINE kd_q8_s16 kd_q8_scales4x4(short a, short b, short c, short d)
{
    return (kd_q8_s16){a, a, a, a, b, b, b, b, c, c, c, c, d, d, d, d};
}
#endif
#else
typedef struct kd_q8_w { uchar16 a, b; } kd_q8_w;
typedef struct kd_q8_w64 { kd_q8_w a, b; } kd_q8_w64;
typedef short4 kd_q8_scale64; /* one scale per 16 weights */
typedef int8 kd_q8_isum;

KD_CL_INLINE kd_q8_w kd_q8_load(__global const void *p)
{
    kd_q8_w w = {vload16(0, (__global const uchar *)p), vload16(1, (__global const uchar *)p)};
    return w;
}
KD_CL_INLINE kd_q8_w kd_q8_and(kd_q8_w v, char m)
{
    kd_q8_w r = {v.a & (uchar)m, v.b & (uchar)m};
    return r;
}
KD_CL_INLINE kd_q8_w kd_q8_or(kd_q8_w x, kd_q8_w y)
{
    kd_q8_w r = {x.a | y.a, x.b | y.b};
    return r;
}
KD_CL_INLINE kd_q8_w kd_q8_shr(kd_q8_w v, int s)
{
    kd_q8_w r = {v.a >> (uchar)s, v.b >> (uchar)s};
    return r;
}
KD_CL_INLINE kd_q8_w kd_q8_shl(kd_q8_w v, int s)
{
    kd_q8_w r = {v.a << (uchar)s, v.b << (uchar)s};
    return r;
}
KD_CL_INLINE kd_q8_w64 kd_q8_join(kd_q8_w a, kd_q8_w b)
{
    kd_q8_w64 r = {a, b};
    return r;
}
KD_CL_INLINE kd_q8_scale64 kd_q8_scales4(short a, short b, short c, short d) { return (short4)(a, b, c, d); }
KD_CL_INLINE int8 kd_q8_dot(kd_q8_w w, __global const char *x, short2 sc)
{
    int16 p = convert_int16(w.a) * convert_int16(vload16(0, x)) * (int)sc.x +
              convert_int16(w.b) * convert_int16(vload16(1, x)) * (int)sc.y;
    return p.lo + p.hi;
}
KD_CL_INLINE kd_q8_isum kd_q8_dot64(kd_q8_w64 w, __global const char *x, kd_q8_scale64 sc)
{
    return kd_q8_dot(w.a, x, sc.xy) + kd_q8_dot(w.b, x + 32, sc.zw);
}
KD_CL_INLINE int8 kd_q8_isum8(kd_q8_isum s) { return s; }
KD_CL_INLINE int8 kd_q8_dot16(__global const short *a, short16 b)
{
    int16 p = convert_int16(vload16(0, a)) * convert_int16(b);
    return p.lo + p.hi;
}
#endif

#if !defined(KD_Q8_HAVE_MAC128) && !defined(KD_Q8_XLANES)
/* 128 weights (two chunks of 64) times a row of x, added to acc; a0..a3 the scales of the
 * first chunk's 16-value groups, b0..b3 the second's */
typedef struct kd_q8_scale128 { kd_q8_scale64 a, b; } kd_q8_scale128;
KD_CL_INLINE kd_q8_scale128 kd_q8_scales8(short a0, short a1, short a2, short a3,
                                          short b0, short b1, short b2, short b3)
{
    kd_q8_scale128 s = {kd_q8_scales4(a0, a1, a2, a3), kd_q8_scales4(b0, b1, b2, b3)};
    return s;
}
KD_CL_INLINE kd_q8_isum kd_q8_mac128(kd_q8_isum acc, kd_q8_w64 w0, kd_q8_w64 w1,
                                     __global const char *x, kd_q8_scale128 sc)
{
    return acc + kd_q8_dot64(w0, x, sc.a) + kd_q8_dot64(w1, x + 64, sc.b);
}
#endif

/* Where a block's qword i (values 8i .. 8i + 7) goes in x's qs: in order, or in the lane
 * order of KD_Q8_XLANES (kd_blocks.h; the block functions there say why each). */
KD_CL_INLINE int kd_q8_xlane(int i, int q4k)
{
#ifdef KD_Q8_XLANES
    return kd_q8_lane_qword(i, q4k);
#else
    return i;
#endif
}

/* Lane sums (the AVX2 kernels, a full group of 8 rows; x's layout: kd_blocks.h): the GEMV
 * adds the 8 rows' block sums into the lanes of one vector (lane i: row i; kd_q8_fold8)
 * rather than keeping a vector per row, multiplies by the 8 rows' d at once and takes
 * Q4_K's mins with 4 vpmaddwd for all 8 rows. */
#ifdef KD_Q8_XLANES
#define KD_Q8_LANE_SUMS_q4k(nm) ((nm) == KD_CL_GEMV_MAX_M)
#define KD_Q8_LANE_SUMS_q6k(nm) ((nm) == KD_CL_GEMV_MAX_M)
#else
#define KD_Q8_LANE_SUMS_q4k(nm) 0
#define KD_Q8_LANE_SUMS_q6k(nm) 0
#endif

/* x: 256 floats -> one kd_block_q8, the cpu's kd_q8_quantize_block_scalar float for float
 * (max of |x| skipping NaN, one multiply by 127 / amax, clamp, round to nearest even), so
 * both paths see the same bytes; with Q4_K's xm (q4k) or else Q6_K's bsums. lane_row >= 0:
 * out is the block of group row lane_row of a full group, in the lane sums layout. */
KD_CL_INLINE void kd_q8_quantize_block(__global const float *x, __global kd_block_q8 *out,
                                       int q4k, int lane_row)
{
    __global kd_block_q8 *grp = out - max(lane_row, 0); /* the group's row 0 */
    float16 vmax = (float16)(0.0f);
    for (int i = 0; i < KD_QK_K / 16; i++) {
        float16 a = fabs(vload16(i, x));
        vmax = select(vmax, a, a > vmax); /* NaN compares false: skipped */
    }
    float8 m8 = fmax(vmax.lo, vmax.hi);
    float4 m4 = fmax(m8.lo, m8.hi);
    float2 m2 = fmax(m4.lo, m4.hi);
    float amax = fmax(m2.x, m2.y);
    float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    float d = amax / 127.0f;
    out->d = d;
    for (int g = 0; g < KD_QK_K / 32; g++) {
        int sum32 = 0; /* exact: |.| <= 32 * 127 */
        for (int h = 0; h < 2; h++) {
            /* fmax(NaN, -127) is -127, as on the cpu */
            int16 q = convert_int16_rte(fmin(fmax(vload16(2 * g + h, x) * id, -127.0f), 127.0f));
            char16 c = convert_char16(q);
            int i = 2 * (2 * g + h); /* the qword of values 8i .. 8i + 7 */
            vstore8(c.lo, kd_q8_xlane(i, q4k), out->qs);
            vstore8(c.hi, kd_q8_xlane(i + 1, q4k), out->qs);
            int8 s8 = q.lo + q.hi;
            int4 s4 = s8.lo + s8.hi;
            int2 s2 = s4.lo + s4.hi;
            int sum = s2.x + s2.y;
            sum32 += sum;
            if (!q4k)
                out->s.bsums[2 * g + h] = (short)sum;
        }
        if (q4k && lane_row >= 0)
            grp[kd_q8_lane_sum_row(g)].s.bsums[kd_q8_lane_sum_slot(lane_row, g)] = (short)sum32;
        else if (q4k)
            out->s.xm[g] = d * (float)sum32;
    }
    if (lane_row >= 0) {
        __global kd_block_q8 *dt = grp + kd_q8_lane_d_row(lane_row, q4k);
        (q4k ? dt->s.xm : dt->pad1)[kd_q8_lane_d_slot(lane_row, q4k)] = d;
    }
}

/* m_dim rows of k values (k a multiple of 256) -> m_dim * k/256 kd_block_q8 in groups of
 * KD_CL_GEMV_MAX_M rows (the last group: the rest), each group block by block: block b of
 * row m0 + i of the group at m0 * nb + b * nm + i, where nm is the group's row count. So
 * the GEMV finds a group's rows at fixed offsets from one pointer: on ymm, 325 -> 302
 * instructions a Q4_K block at M = 8, 23 -> 16 of them on the stack. Elementwise geometry
 * over the k/256 blocks of a row, KD_CL_EW_VEC blocks per work-item (the CPU shape's
 * count), rows on group y. */
__kernel __attribute__((reqd_work_group_size(KD_CL_EW_LOCAL, 1, 1)))
void kd_q8_quantize(__global const float *x, __global kd_block_q8 *xq, int k, int m_dim,
                    int q4k)
{
    int row = (int)get_group_id(1), nb = k / KD_QK_K;
    if (row < m_dim) { /* guarded work, no early return */
        int m0 = row - row % KD_CL_GEMV_MAX_M, nm = min(m_dim - m0, KD_CL_GEMV_MAX_M);
        __global kd_block_q8 *xg = xq + (size_t)m0 * (size_t)nb + (size_t)(row - m0);
        int b0 = (int)get_global_id(0) * KD_CL_EW_VEC;
        for (int b = b0; b < min(b0 + KD_CL_EW_VEC, nb); b++)
            kd_q8_quantize_block(x + ((size_t)row * (size_t)nb + (size_t)b) * KD_QK_K,
                                 xg + (size_t)b * (size_t)nm, q4k,
                                 (q4k ? KD_Q8_LANE_SUMS_q4k(nm) : KD_Q8_LANE_SUMS_q6k(nm))
                                     ? row - m0
                                     : -1);
    }
}

/* ROW(m) for m = 0 .. nm - 1: the type's statement for row m of x. nm is a constant at
 * every use, so the rows past it fold away and the accumulators stay in registers. */
#define KD_Q8_FOR_ROWS(nm, ROW)                                                         \
    ROW(0) if (nm > 1) ROW(1) if (nm > 2) ROW(2) if (nm > 3) ROW(3)                       \
    if (nm > 4) ROW(4) if (nm > 5) ROW(5) if (nm > 6) ROW(6) if (nm > 7) ROW(7)

/* The rows' statements of the in-order block functions, in their names (isum, x): zero
 * the sums; add the pair of 64-weight chunks w0, w1 with scales s times values
 * 128p .. 128p + 127 of each row of x. */
#define KD_Q8_ZERO_ROW(m) isum[m] = (kd_q8_isum)(0);
#define KD_Q8_MAC_ROW(m) isum[m] = kd_q8_mac128(isum[m], w0, w1, x[m].qs + 128 * p, s);
#define KD_Q8_PAIR_ROWS(nm) KD_Q8_FOR_ROWS(nm, KD_Q8_MAC_ROW)

/* Row xm's integer block sum isum (8 int32 lanes) into acc, the floats once per block.
 * dx last, in one FMA whose dx the compiler broadcasts from memory: a d * dx and a
 * dmin * dx per row took a scalar multiply and a broadcast each (and spilled at nm = 8).
 * Q4_K's mins: one FMA with x's xm (wmin lane s: -dmin * min s), where the bsums took a
 * vpmaddwd and a convert (removing the mins altogether made M = 8 0.86 of the time: they
 * were that dear). Q6_K's -32 offset: 32 * sum_g scale[g] * bsums[g]. */
KD_CL_INLINE float8 kd_q4k_q8_finish(float8 acc, int8 isum, float d, float8 wmin,
                                     __global const kd_block_q8 *xm)
{
    return fma(wmin, vload8(0, xm->s.xm), fma((float8)(xm->d), convert_float8(isum) * d, acc));
}
KD_CL_INLINE float8 kd_q6k_q8_finish(float8 acc, int8 isum, float d, short16 sc16,
                                     __global const kd_block_q8 *xm)
{
    return fma((float8)(xm->d), convert_float8(isum - (kd_q8_dot16(xm->s.bsums, sc16) << 5)) * d,
               acc);
}

#ifdef KD_Q8_XLANES
/* Q4_K block b times nm rows of x, 16 registers (AVX2): the 4 chunks of 32 bytes (the low
 * nibbles of chunk c are sub-block 2c, the high ones 2c + 1) go through a 4 x 4 transpose
 * of their qwords, so that vector k holds qword k of every chunk: its low nibbles are
 * values 8k .. 8k + 7 of sub-blocks 0, 2, 4, 6, its high ones of 1, 3, 5, 7. The 4 vectors'
 * vpmaddubsw then add up in int16 (a lane: 8 products, |.| <= 8 * 15 * 127 < 2^15) before
 * one vpmaddwd by the scales for the low nibbles and one for the high: 10 multiplies a row
 * of x where sub-block by sub-block takes 16. x's qs hold the same lane order (position
 * 64k + 32h + 8j + t: value 8k + t of sub-block 2j + h, kd_q8_xlane). */
KD_CL_INLINE void kd_q4k_q8_block(__global const kd_block_q4_K *b, __global const kd_block_q8 *x,
                                  const int nm, float8 *acc)
{
    uchar16 sm = kd_q4k_scale_min_bytes(b); /* scales 0..7, mins 8..15 */
    short8 smw = convert_short8(sm.lo);
    float d = kd_f16_to_f32(b->d), dmin = kd_f16_to_f32(b->dmin);
    kd_q8_w c0 = kd_q8_load(b->qs), c1 = kd_q8_load(b->qs + 32);
    kd_q8_w c2 = kd_q8_load(b->qs + 64), c3 = kd_q8_load(b->qs + 96);
    kd_q8_w t0 = kd_q8_unpacklo(c0, c1), t1 = kd_q8_unpackhi(c0, c1);
    kd_q8_w t2 = kd_q8_unpacklo(c2, c3), t3 = kd_q8_unpackhi(c2, c3);
    kd_q8_w u0 = kd_q8_halves_lo(t0, t2), u1 = kd_q8_halves_lo(t1, t3);
    kd_q8_w u2 = kd_q8_halves_hi(t0, t2), u3 = kd_q8_halves_hi(t1, t3);
    kd_q8_w lo0 = kd_q8_and(u0, 15), lo1 = kd_q8_and(u1, 15);
    kd_q8_w lo2 = kd_q8_and(u2, 15), lo3 = kd_q8_and(u3, 15);
    kd_q8_w hi0 = kd_q8_and(kd_q8_shr(u0, 4), 15), hi1 = kd_q8_and(kd_q8_shr(u1, 4), 15);
    kd_q8_w hi2 = kd_q8_and(kd_q8_shr(u2, 4), 15), hi3 = kd_q8_and(kd_q8_shr(u3, 4), 15);
    kd_q8_s16 slo = kd_q8_scales4x4(smw.s0, smw.s2, smw.s4, smw.s6);
    kd_q8_s16 shi = kd_q8_scales4x4(smw.s1, smw.s3, smw.s5, smw.s7);
    float8 wmin = convert_float8(sm.hi) * -dmin; /* lane s: -dmin * min s */
    /* a row of x's integer block sum (8 int32 lanes), x's qs at xq */
#define KD_Q4K_Q8_ISUM(xq)                                                               \
    (kd_q8_madd(kd_q8_maddubs(lo0, xq) + kd_q8_maddubs(lo1, xq + 64) +                   \
                    kd_q8_maddubs(lo2, xq + 128) + kd_q8_maddubs(lo3, xq + 192),         \
                slo) +                                                                   \
     kd_q8_madd(kd_q8_maddubs(hi0, xq + 32) + kd_q8_maddubs(hi1, xq + 96) +              \
                    kd_q8_maddubs(hi2, xq + 160) + kd_q8_maddubs(hi3, xq + 224),         \
                shi))
#define KD_Q4K_Q8_ROW(m) acc[m] = kd_q4k_q8_finish(acc[m], KD_Q4K_Q8_ISUM(x[m].qs), d, wmin, x + m);
    if (KD_Q8_LANE_SUMS_q4k(nm)) {
        /* the rows' integer sums into lanes 0-7, then the floats once for all 8 rows */
        int8 s01 = kd_q8_fold2(KD_Q4K_Q8_ISUM(x[0].qs), KD_Q4K_Q8_ISUM(x[1].qs));
        int8 s03 = kd_q8_fold4(s01, kd_q8_fold2(KD_Q4K_Q8_ISUM(x[2].qs), KD_Q4K_Q8_ISUM(x[3].qs)));
        int8 s45 = kd_q8_fold2(KD_Q4K_Q8_ISUM(x[4].qs), KD_Q4K_Q8_ISUM(x[5].qs));
        int8 s47 = kd_q8_fold4(s45, kd_q8_fold2(KD_Q4K_Q8_ISUM(x[6].qs), KD_Q4K_Q8_ISUM(x[7].qs)));
        int8 sums = kd_q8_fold8(s03, s47);
        int4 mn = as_int4(convert_short8(sm.hi)); /* int32 j: mins 2j, 2j + 1 as int16 */
        int8 mins = kd_q8_madd(kd_q8_pair_bcast(mn.s0), kd_q8_load16(x[0].s.bsums)) +
                    kd_q8_madd(kd_q8_pair_bcast(mn.s1), kd_q8_load16(x[1].s.bsums)) +
                    kd_q8_madd(kd_q8_pair_bcast(mn.s2), kd_q8_load16(x[2].s.bsums)) +
                    kd_q8_madd(kd_q8_pair_bcast(mn.s3), kd_q8_load16(x[3].s.bsums));
        acc[0] = fma(vload8(0, x[4].s.xm), convert_float8(sums) * d - convert_float8(mins) * dmin,
                     acc[0]);
    } else {
        KD_Q8_FOR_ROWS(nm, KD_Q4K_Q8_ROW)
    }
}
#else
/* Q4_K block b times nm rows of x (adjacent blocks), into acc. The f16 scales are decoded
 * before the chunk loop: decoded after it, LLVM moved all 64 vpmaddubsw of a block at
 * nm = 8 ahead of their vpmaddwd and spilled the products (15-20 % slower). */
KD_CL_INLINE void kd_q4k_q8_block(__global const kd_block_q4_K *b, __global const kd_block_q8 *x,
                                  const int nm, float8 *acc)
{
    uchar16 sm = kd_q4k_scale_min_bytes(b); /* scales 0..7, mins 8..15 */
    /* the scales widened as one vector, then taken lane by lane: LLVM makes each scale
     * vector a shuffle of it, where from the bytes it took a vpextrb, a vmovd and a
     * broadcast each (haswell: M = 1 0.90, M = 8 0.96 of the time, Zen 3) */
    short8 smw = convert_short8(sm.lo);
    float d = kd_f16_to_f32(b->d), dmin = kd_f16_to_f32(b->dmin);
    kd_q8_isum isum[KD_CL_GEMV_MAX_M];
    KD_Q8_FOR_ROWS(nm, KD_Q8_ZERO_ROW)
    /* unrolled: the scale indices are constants, read from registers. Chunk c: 64 values,
     * the low nibbles of 32 bytes (sub-block 2c), then their high nibbles (2c + 1). */
    _Pragma("unroll") for (int p = 0; p < 2; p++) {
        kd_q8_w q0 = kd_q8_load(b->qs + 64 * p), q1 = kd_q8_load(b->qs + 64 * p + 32);
        kd_q8_w64 w0 = kd_q8_join(kd_q8_and(q0, 15), kd_q8_and(kd_q8_shr(q0, 4), 15));
        kd_q8_w64 w1 = kd_q8_join(kd_q8_and(q1, 15), kd_q8_and(kd_q8_shr(q1, 4), 15));
        short s0 = smw[4 * p], s1 = smw[4 * p + 1], s2 = smw[4 * p + 2], s3 = smw[4 * p + 3];
        kd_q8_scale128 s = kd_q8_scales8(s0, s0, s1, s1, s2, s2, s3, s3);
        KD_Q8_PAIR_ROWS(nm)
    }
    float8 wmin = convert_float8(sm.hi) * -dmin; /* lane s: -dmin * min s */
#define KD_Q4K_Q8_FINISH(m) acc[m] = kd_q4k_q8_finish(acc[m], kd_q8_isum8(isum[m]), d, wmin, x + m);
    KD_Q8_FOR_ROWS(nm, KD_Q4K_Q8_FINISH)
}
#endif

#ifdef KD_Q8_XLANES
/* Q6_K's 64 values as two vectors V0, V1 of 32 (sub-blocks A, B and C, D of 16), in the
 * lane order of KD_Q8_XLANES: (Va, Vb) = (qwords 0 and 2, 1 and 3 of V0 and V1): lanes
 * A, C, B, D, values 0-7 then 8-15. The vpmaddubsw of Va and Vb add up in int16 (a lane:
 * 4 products, |.| <= 4 * 63 * 127 < 2^15) before one vpmaddwd by scales A, C, B, D. */
typedef struct kd_q6k_q8_lanes { kd_q8_w a, b; kd_q8_s16 sc; } kd_q6k_q8_lanes;
KD_CL_INLINE kd_q6k_q8_lanes kd_q6k_q8_lanes_of(kd_q8_w v0, kd_q8_w v1, short sa, short sb,
                                                 short sc, short sd)
{
    kd_q6k_q8_lanes l = {kd_q8_unpacklo(v0, v1), kd_q8_unpackhi(v0, v1),
                         kd_q8_scales4x4(sa, sc, sb, sd)};
    return l;
}
KD_CL_INLINE int8 kd_q6k_q8_dot64(kd_q6k_q8_lanes l, __global const char *x)
{
    return kd_q8_madd(kd_q8_maddubs(l.a, x) + kd_q8_maddubs(l.b, x + 32), l.sc);
}

/* Q6_K block b times nm rows of x (16 registers, AVX2), into acc: as below, with each 64
 * values in lane order (kd_q6k_q8_lanes), 12 multiplies a row of x where 16 in order. */
KD_CL_INLINE void kd_q6k_q8_block(__global const kd_block_q6_K *b, __global const kd_block_q8 *x,
                                  const int nm, float8 *acc)
{
    float d = kd_f16_to_f32(b->d);
    kd_q6k_q8_lanes l[4];
    _Pragma("unroll") for (int p = 0; p < 2; p++) {
        kd_q8_w la = kd_q8_load(b->ql + 64 * p), lb = kd_q8_load(b->ql + 64 * p + 32);
        kd_q8_w hb = kd_q8_load(b->qh + 32 * p);
        short8 sc = convert_short8(vload8(0, b->scales + 8 * p));
        l[2 * p] = kd_q6k_q8_lanes_of(
            kd_q8_or(kd_q8_and(la, 15), kd_q8_and(kd_q8_shl(hb, 4), 0x30)),
            kd_q8_or(kd_q8_and(lb, 15), kd_q8_and(kd_q8_shl(hb, 2), 0x30)), sc.s0, sc.s1,
            sc.s2, sc.s3);
        l[2 * p + 1] = kd_q6k_q8_lanes_of(
            kd_q8_or(kd_q8_and(kd_q8_shr(la, 4), 15), kd_q8_and(hb, 0x30)),
            kd_q8_or(kd_q8_and(kd_q8_shr(lb, 4), 15), kd_q8_and(kd_q8_shr(hb, 2), 0x30)),
            sc.s4, sc.s5, sc.s6, sc.s7);
    }
    short16 sc16 = convert_short16(vload16(0, b->scales));
#define KD_Q6K_Q8_ISUM(xq)                                                               \
    (kd_q6k_q8_dot64(l[0], xq) + kd_q6k_q8_dot64(l[1], xq + 64) +                        \
     kd_q6k_q8_dot64(l[2], xq + 128) + kd_q6k_q8_dot64(l[3], xq + 192))
#define KD_Q6K_Q8_ROW(m) acc[m] = kd_q6k_q8_finish(acc[m], KD_Q6K_Q8_ISUM(x[m].qs), d, sc16, x + m);
    if (KD_Q8_LANE_SUMS_q6k(nm)) {
        /* chunk by chunk over the rows, each row's -32 offset last: 8 int32 sums and one
         * chunk's vectors live, 288 instructions a block and 20 on the stack, where row by
         * row (all 12 vectors of the block live) took 337 and 49; M = 8 0.89-0.99 of the
         * time (Zen 3, noisy) */
        kd_q8_s16 sc32 = as_short16(sc16) << (short)5; /* the scales times 32: |.| <= 4096 */
        int8 isum[KD_CL_GEMV_MAX_M];
#define KD_Q6K_Q8_Q0(m) isum[m] = kd_q6k_q8_dot64(l[0], x[m].qs);
        KD_Q8_FOR_ROWS(nm, KD_Q6K_Q8_Q0)
        _Pragma("unroll") for (int q = 1; q < 4; q++) {
#define KD_Q6K_Q8_Q(m) isum[m] += kd_q6k_q8_dot64(l[q], x[m].qs + 64 * q);
            KD_Q8_FOR_ROWS(nm, KD_Q6K_Q8_Q)
        }
#define KD_Q6K_Q8_OFF(m) isum[m] -= kd_q8_madd(kd_q8_load16(x[m].s.bsums), sc32);
        KD_Q8_FOR_ROWS(nm, KD_Q6K_Q8_OFF)
        int8 s03 = kd_q8_fold4(kd_q8_fold2(isum[0], isum[1]), kd_q8_fold2(isum[2], isum[3]));
        int8 s47 = kd_q8_fold4(kd_q8_fold2(isum[4], isum[5]), kd_q8_fold2(isum[6], isum[7]));
        float8 dx = (float8)(vload4(0, x[0].pad1), vload4(0, x[1].pad1));
        acc[0] = fma(dx * d, convert_float8(kd_q8_fold8(s03, s47)), acc[0]);
    } else {
        KD_Q8_FOR_ROWS(nm, KD_Q6K_Q8_ROW)
    }
}
#else
/* Q6_K block b times nm rows of x (adjacent blocks), into acc, as unsigned values 0..63.
 * Chunk j: values 64j .. 64j + 63 (kd_blocks.h's layout: half p = j / 2 holds ql's 64
 * bytes and qh's 32; j even takes ql's low nibbles and qh's bits 0-1, then 2-3; j odd
 * ql's high nibbles and qh's bits 4-5, then 6-7). Chunks 2p and 2p + 1 share their loads. */
KD_CL_INLINE void kd_q6k_q8_block(__global const kd_block_q6_K *b, __global const kd_block_q8 *x,
                                  const int nm, float8 *acc)
{
    float d = kd_f16_to_f32(b->d);
    kd_q8_isum isum[KD_CL_GEMV_MAX_M];
    KD_Q8_FOR_ROWS(nm, KD_Q8_ZERO_ROW)
    _Pragma("unroll") for (int p = 0; p < 2; p++) {
        kd_q8_w la = kd_q8_load(b->ql + 64 * p), lb = kd_q8_load(b->ql + 64 * p + 32);
        kd_q8_w hb = kd_q8_load(b->qh + 32 * p);
        kd_q8_w64 w0 = kd_q8_join(kd_q8_or(kd_q8_and(la, 15), kd_q8_and(kd_q8_shl(hb, 4), 0x30)),
                                  kd_q8_or(kd_q8_and(lb, 15), kd_q8_and(kd_q8_shl(hb, 2), 0x30)));
        kd_q8_w64 w1 = kd_q8_join(kd_q8_or(kd_q8_and(kd_q8_shr(la, 4), 15), kd_q8_and(hb, 0x30)),
                                  kd_q8_or(kd_q8_and(kd_q8_shr(lb, 4), 15),
                                           kd_q8_and(kd_q8_shr(hb, 2), 0x30)));
        short8 sc = convert_short8(vload8(0, b->scales + 8 * p)); /* as Q4_K's smw: M = 1 0.85 */
        kd_q8_scale128 s = kd_q8_scales8(sc.s0, sc.s1, sc.s2, sc.s3, sc.s4, sc.s5, sc.s6, sc.s7);
        KD_Q8_PAIR_ROWS(nm)
    }
    short16 sc16 = convert_short16(vload16(0, b->scales));
#define KD_Q6K_Q8_FINISH(m) acc[m] = kd_q6k_q8_finish(acc[m], kd_q8_isum8(isum[m]), d, sc16, x + m);
    KD_Q8_FOR_ROWS(nm, KD_Q6K_Q8_FINISH)
}
#endif

/* The kernel of one weight type T with blocks BLOCK: row get_global_id(0) of W times the
 * group's rows of x (xq: kd_q8_quantize's groups). */
#define KD_GEMV_Q8_KERNEL(T, BLOCK)                                                       \
KD_CL_INLINE void kd_##T##_q8_row(__global const BLOCK *w, __global const kd_block_q8 *x, \
                                  int nb, const int nm, float *sums)                       \
{                                                                                         \
    float8 acc[KD_CL_GEMV_MAX_M];                                                         \
    kd_gemv_zero(acc);                                                                    \
    for (int ib = 0; ib < nb; ib++) {                                                     \
        kd_gemv_prefetch(w + ib + KD_GEMV_PREFETCH, sizeof(BLOCK));                       \
        kd_##T##_q8_block(w + ib, x + (size_t)ib * (size_t)nm, nm, acc);                  \
    }                                                                                     \
    for (int m = 0; m < nm; m++)                                                          \
        sums[m] = KD_Q8_LANE_SUMS_##T(nm) ? acc[0][m] : kd_hsum8(acc[m]);                 \
}                                                                                         \
                                                                                          \
__kernel __attribute__((reqd_work_group_size(KD_CL_GEMV_LOCAL, 1, 1)))                    \
void kd_gemv_##T##_q8(__global const BLOCK *w, __global const kd_block_q8 *xq,            \
                      __global float *y, int n_rows, int k, int m_dim)                    \
{                                                                                         \
    int row = (int)get_global_id(0), nb = k / KD_QK_K;                                    \
    int m0 = (int)get_group_id(1) * KD_CL_GEMV_MAX_M;                                     \
    int nm = clamp(m_dim - m0, 0, KD_CL_GEMV_MAX_M);                                      \
    __global const BLOCK *wr = w + (size_t)min(row, n_rows - 1) * (size_t)nb;             \
    __global const kd_block_q8 *xr = xq + (size_t)m0 * (size_t)nb;                        \
    float acc[KD_CL_GEMV_MAX_M];                                                          \
    if (row >= n_rows)                                                                    \
        nm = 0;                                                                           \
    KD_GEMV_FOR_NM(nm, kd_##T##_q8_row, (wr, xr, nb), (acc))                              \
    for (int m = 0; m < nm; m++)                                                          \
        y[(size_t)(m0 + m) * (size_t)n_rows + (size_t)row] = acc[m];                      \
}

KD_GEMV_Q8_KERNEL(q4k, kd_block_q4_K)
KD_GEMV_Q8_KERNEL(q6k, kd_block_q6_K)
#endif /* !KD_CL_GPU_SHAPES */
