/* Rope: per head of head_dim values, pair i of head_dim/2 turns by a = pos * base^(-2i/D);
 * mode 0 (normal) rotates (x[2i], x[2i+1]), mode 1 (neox) rotates (x[i], x[i+D/2]):
 * (u, v) -> (u cos a - v sin a, u sin a + v cos a).
 * GPU devices (KD_CL_GPU_SHAPES): one work-item per pair. CPU devices: when head_dim / 2
 * is a multiple of KD_CL_ROPE_VEC (8) and at most KD_CL_ROPE_MAX_VECS float8s, one
 * work-item per KD_CL_ROPE_HEADS whole heads: it forms the sines and cosines of all
 * head_dim / 2 frequencies once (float8 vectors, kept in private arrays), then rotates its
 * heads front to back, so each item streams a contiguous span. Otherwise one work-item per
 * 8 consecutive pairs, pair by pair. (PoCL vectorizes only innermost loops over
 * work-items: the per-pair kernel ran scalar, at 0.05 of the streaming bandwidth; 8
 * frequencies of 4 heads per item, 64-byte pieces 512 bytes apart, reached 0.41; whole
 * heads per item 0.9, see docs/opencl-checks.md.)
 *
 * Accuracy: a reaches thousands of radians at long positions, where a float product
 * pos * freq is off by up to half an ulp of a (1e-4 rad at pos 4096). The host computes
 * each frequency in double and passes it as two floats (hi + lo); the kernel forms
 * pos * freq as an exact two-term product with fma and reduces it modulo 2*pi with a
 * two-term 2*pi, so the angle is good to ~1e-7 rad (positions < 2^24).
 *
 * tab (uint words): freq hi[D/2] as float bits, freq lo[D/2] as float bits, pos[m].
 * Single-row: pos[0]. Batched: row = get_group_id(1), m_dim rows. */
#include "kd_cl_geometry.h"

#define KD_TWO_PI_HI 6.28318548202514648438f     /* float nearest 2*pi */
#define KD_TWO_PI_LO (-1.74845553146951715e-07f) /* 2*pi - KD_TWO_PI_HI */
#define KD_INV_TWO_PI 0.159154943091895335769f
#define KD_HALF_PI_HI 1.57079637050628662109f    /* float nearest pi/2 */
#define KD_HALF_PI_LO (-4.37113900018624283e-08f) /* pi/2 - KD_HALF_PI_HI */
#define KD_TWO_OVER_PI 0.636619772367581343076f

/* sin and cos of r, |r| <= ~pi, in plain arithmetic and selects (Cephes' sinf/cosf
 * polynomials on [-pi/4, pi/4], quadrant by rint(2r/pi)): good to ~1e-7 and, unlike a
 * library sincos with its large-argument path, vectorizable across work-items by PoCL. */
static inline float kd_sincos_reduced(float r, float *c)
{
    float q = rint(r * KD_TWO_OVER_PI);
    float y = fma(-q, KD_HALF_PI_LO, fma(-q, KD_HALF_PI_HI, r));
    float z = y * y;
    float sy = fma(y * z, fma(z, fma(z, -1.9515295891e-4f, 8.3321608736e-3f),
                              -1.6666654611e-1f), y);
    float cy = fma(z * z, fma(z, fma(z, 2.443315711809948e-5f, -1.388731625493765e-3f),
                              4.166664568298827e-2f), fma(-0.5f, z, 1.0f));
    int quad = (int)q;
    float s = (quad & 1) ? cy : sy, co = (quad & 1) ? sy : cy;
    *c = ((quad + 1) & 2) ? -co : co;
    return (quad & 2) ? -s : s;
}

/* cos and sin of pos * (hi + lo). */
static inline float kd_rope_sincos(uint pos, float hi, float lo, float *c)
{
    float p = (float)pos;
    float ah = p * hi;
    float al = fma(p, hi, -ah) + p * lo; /* ah + al = p * (hi + lo) to ~2^-48 relative */
    float k = rint(ah * KD_INV_TWO_PI);
    float r = fma(-k, KD_TWO_PI_HI, ah);
    r = fma(-k, KD_TWO_PI_LO, r) + al;
    return kd_sincos_reduced(r, c);
}

static inline void kd_rope_pair(__global const float *x, __global float *y,
                                __global const uint *tab, uint pos, int p, int head_dim,
                                int mode)
{
    int npair = head_dim / 2;
    int h = p / npair;
    int i = p - h * npair;
    int iu = h * head_dim + (mode ? i : 2 * i);
    int iv = iu + (mode ? npair : 1);
    float c;
    float s = kd_rope_sincos(pos, as_float(tab[i]), as_float(tab[npair + i]), &c);
    float u = x[iu], v = x[iv];
    y[iu] = u * c - v * s;
    y[iv] = u * s + v * c;
}

/* kd_sincos_reduced and kd_rope_sincos on float8. Rounding to an integer adds and
 * subtracts 1.5 * 2^23 (exact for |x| < 2^22; here |x| < 2^22 for positions < 2^24), and
 * the quadrant is the low bits of the sum's mantissa: PoCL's vector rint and integer
 * conversions ran as scalar code with branches (rope at 0.2 of the bandwidth). */
#define KD_ROUND_MAGIC 12582912.0f /* 1.5 * 2^23 */

static inline float8 kd_round8(float8 x, int8 *low_bits)
{
    float8 t = x + KD_ROUND_MAGIC;
    *low_bits = as_int8(t);
    return t - KD_ROUND_MAGIC;
}

static inline float8 kd_sincos_reduced8(float8 r, float8 *c)
{
    int8 quad;
    float8 q = kd_round8(r * KD_TWO_OVER_PI, &quad);
    float8 y = fma(-q, (float8)(KD_HALF_PI_LO), fma(-q, (float8)(KD_HALF_PI_HI), r));
    float8 z = y * y;
    float8 sy = fma(y * z, fma(z, fma(z, (float8)(-1.9515295891e-4f), (float8)(8.3321608736e-3f)),
                               (float8)(-1.6666654611e-1f)), y);
    float8 cy = fma(z * z, fma(z, fma(z, (float8)(2.443315711809948e-5f),
                                      (float8)(-1.388731625493765e-3f)),
                               (float8)(4.166664568298827e-2f)), fma((float8)(-0.5f), z, (float8)(1.0f)));
    int8 odd = (quad & 1) != 0; /* -1 where true: select() takes the second value */
    float8 s = select(sy, cy, odd), co = select(cy, sy, odd);
    *c = select(co, -co, ((quad + 1) & 2) != 0);
    return select(s, -s, (quad & 2) != 0);
}

static inline float8 kd_rope_sincos8(uint pos, float8 hi, float8 lo, float8 *c)
{
    float p = (float)pos;
    float8 ah = p * hi;
    float8 al = fma((float8)(p), hi, -ah) + p * lo;
    int8 unused;
    float8 k = kd_round8(ah * KD_INV_TWO_PI, &unused);
    float8 r = fma(-k, (float8)(KD_TWO_PI_HI), ah);
    r = fma(-k, (float8)(KD_TWO_PI_LO), r) + al;
    return kd_sincos_reduced8(r, c);
}

/* CPU devices: 8 pairs of one head starting at pair i0 of head h, rotated by c, s. */
static inline void kd_rope_rotate8(__global const float *x, __global float *y, int h, int i0,
                                   int head_dim, int mode, float8 c, float8 s)
{
    int npair = head_dim / 2;
    if (mode) {
        int iu = h * head_dim + i0;
        float8 u = vload8(0, x + iu), v = vload8(0, x + iu + npair);
        vstore8(u * c - v * s, 0, y + iu);
        vstore8(u * s + v * c, 0, y + iu + npair);
    } else {
        int iu = h * head_dim + 2 * i0;
        float16 uv = vload16(0, x + iu), out;
        out.even = uv.even * c - uv.odd * s;
        out.odd = uv.even * s + uv.odd * c;
        vstore16(out, 0, y + iu);
    }
}

/* CPU devices: heads h0 .. h1 - 1 whole (none when h1 <= h0). The sines and cosines of
 * the head_dim / 2 frequencies, the costly part, are the same for every head of the row:
 * formed once here, then each head is rotated front to back. The loops over heads and
 * frequency blocks stay loops: unrolled, PoCL's work-item loop vectorizer widens this
 * vector code across items (2.5x slower). */
static inline void kd_rope_heads8(__global const float *x, __global float *y,
                                  __global const uint *tab, uint pos, int h0, int h1,
                                  int head_dim, int mode)
{
    int npair = head_dim / 2;
    int nblk = h1 > h0 ? npair / KD_CL_ROPE_VEC : 0;
    float8 c[KD_CL_ROPE_MAX_VECS], s[KD_CL_ROPE_MAX_VECS];
    for (int b = 0; b < nblk; b++)
        s[b] = kd_rope_sincos8(pos, as_float8(vload8(b, tab)),
                               as_float8(vload8(b, tab + npair)), &c[b]);
    for (int h = h0; h < h1; h++)
        for (int b = 0; b < nblk; b++)
            kd_rope_rotate8(x, y, h, b * KD_CL_ROPE_VEC, head_dim, mode, c[b], s[b]);
}

/* Work unit `unit` of a row (see above and runtime/geometry.c, which sizes the grid by the
 * same rule); no barrier. */
static inline void kd_rope_unit(__global const float *x, __global float *y,
                                __global const uint *tab, uint pos, int unit, int n,
                                int head_dim, int mode)
{
#ifdef KD_CL_GPU_SHAPES
    if (unit < n / 2)
        kd_rope_pair(x, y, tab, pos, unit, head_dim, mode);
#else
    int npair = head_dim / 2, nblk = npair / KD_CL_ROPE_VEC;
    if (npair % KD_CL_ROPE_VEC == 0 && nblk <= KD_CL_ROPE_MAX_VECS && n % head_dim == 0) {
        int h0 = unit * KD_CL_ROPE_HEADS, h1 = min(h0 + KD_CL_ROPE_HEADS, n / head_dim);
        if (pos < (1u << 24)) { /* kd_round8 holds for positions below 2^24 */
            kd_rope_heads8(x, y, tab, pos, h0, h1, head_dim, mode);
        } else {
            for (int p = h0 * npair; p < h1 * npair; p++)
                kd_rope_pair(x, y, tab, pos, p, head_dim, mode);
        }
    } else {
        int p0 = unit * KD_CL_ROPE_VEC;
        for (int p = p0; p < min(p0 + KD_CL_ROPE_VEC, n / 2); p++)
            kd_rope_pair(x, y, tab, pos, p, head_dim, mode);
    }
#endif
}

#ifdef KD_CL_GPU_SHAPES
#define KD_ROPE_LOCAL KD_CL_EW_LOCAL
#else
#define KD_ROPE_LOCAL KD_CL_ROPE_CPU_LOCAL
#endif

__kernel __attribute__((reqd_work_group_size(KD_ROPE_LOCAL, 1, 1)))
void kd_rope_f32(__global const float *x, __global float *y, __global const uint *tab, int n,
                 int head_dim, int mode)
{
    kd_rope_unit(x, y, tab, tab[head_dim], (int)get_global_id(0), n, head_dim, mode);
}

__kernel __attribute__((reqd_work_group_size(KD_ROPE_LOCAL, 1, 1)))
void kd_rope_f32_batched(__global const float *x, __global float *y, __global const uint *tab,
                         int n, int head_dim, int mode, int m_dim)
{
    int row = (int)get_group_id(1);
    if (row < m_dim) { /* guarded work, no early return */
        size_t o = (size_t)row * (size_t)n;
        kd_rope_unit(x + o, y + o, tab, tab[head_dim + row], (int)get_global_id(0), n,
                     head_dim, mode);
    }
}
