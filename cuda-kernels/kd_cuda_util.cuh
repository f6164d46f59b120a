/*
 * Helpers shared by the CUDA kernels: warp reductions and the memory accesses that need
 * a particular instruction (16-byte vectors, streaming weight loads).
 *
 * The kernels are written in the C subset of CUDA C++ (no templates, references or
 * casts of the C++ kind), so that tests/test_cuda_emu.c can compile the very same
 * source as host C against a small emulator (KD_CUDA_EMU defined) and check every
 * kernel's indexing and arithmetic on a machine without a GPU. The memory-access helpers
 * and the inline-PTX ones (streaming loads, the tensor-core MMA) have emulator twins
 * there, which also check alignment and bounds.
 */
#ifndef KD_CUDA_UTIL_CUH
#define KD_CUDA_UTIL_CUH

#include "kd_cuda_geometry.h"
#include "../runtime/quant/kd_blocks.h"

#define KD_FULL_MASK 0xffffffffu
#define KD_DEV static __device__ __forceinline__

/* Sum of v over the 32 lanes of the warp; every lane gets the total. */
KD_DEV float kd_warp_sum(float v)
{
#pragma unroll
    for (int o = KD_CU_WARP / 2; o > 0; o >>= 1)
        v += __shfl_xor_sync(KD_FULL_MASK, v, o);
    return v;
}

/* 1 when every pointer is 16-byte aligned (float4 accesses allowed). */
KD_DEV int kd_aligned16(const void *a, const void *b, const void *c)
{
    return (((unsigned long long)a | (unsigned long long)b | (unsigned long long)c) & 15u) == 0;
}

#ifndef KD_CUDA_EMU
/* The emulator (tests/test_cuda_emu.c) provides its own versions of the memory-access
 * helpers below, which also check the alignment that the vector accesses assume. */

/* Plain (coherent) 8- and 16-byte accesses: used where the output may alias an input. */
KD_DEV float4 kd_ld_f4(const float *p) { return *(const float4 *)p; }
KD_DEV void kd_st_f4(float *p, float4 v) { *(float4 *)p = v; }
KD_DEV float2 kd_ld_f2(const float *p) { return *(const float2 *)p; }
KD_DEV void kd_st_f2(float *p, float2 v) { *(float2 *)p = v; }

/* Shared memory: 16-byte store, 4-byte load (the stage of gemv_q6k.cu). */
KD_DEV void kd_sts_u4(unsigned char *p, uint4 v) { *(uint4 *)p = v; }
KD_DEV unsigned int kd_lds_u32(const unsigned char *p) { return *(const unsigned int *)p; }

/* Read-only activations (GEMV x): through the non-coherent path, cached in L1, where
 * the rows of a warp reuse them. */
KD_DEV float4 kd_ldg_f4(const float *p) { return __ldg((const float4 *)p); }

/* Quantized weights are streamed: read once per pass, so they must not evict the
 * activations from L1 (L1::no_allocate); read-only for the whole kernel (.nc). */
KD_DEV uint4 kd_ld_stream_u4(const void *p)
{
    uint4 v;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p));
    return v;
}

KD_DEV uint2 kd_ld_stream_u2(const void *p)
{
    uint2 v;
    asm("ld.global.nc.L1::no_allocate.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(p));
    return v;
}

/* d += A B on the tensor cores, tf32 inputs (the top 19 bits of each f32 word are used),
 * f32 accumulation: mma.m16n8k8 with the PTX ISA's fragments (g = lane / 4,
 * t = lane % 4): A 16x8 a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4);
 * B 8x8 b0 (t, g), b1 (t + 4, g); C/D 16x8 d0 (g, 2t), d1 (g, 2t + 1), d2 (g + 8, 2t),
 * d3 (g + 8, 2t + 1). Warp-wide: every lane must call it. */
KD_DEV void kd_mma_tf32(float *d, const unsigned int *a, const unsigned int *b)
{
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif /* KD_CUDA_EMU */

/* Float 0.5 + q/256 for a byte q < 128, built from bits: 0x3F000000 | q << 16. This
 * turns a quant into a float with one byte permute and no int-to-float conversion; the
 * caller folds the 0.5 offset and the 1/256 into the block's scale and bias. byte_sel
 * (0..3) picks the byte of word. */
KD_DEV float kd_quant_byte_to_float(unsigned int word, unsigned int byte_sel)
{
    /* __byte_perm(x, y, s): result byte i = byte (s >> 4i & 7) of the pair {y:x}, bytes
     * 0-3 from x, 4-7 from y. Result bytes 0 and 1 take byte 4 (y's 0x00), byte 2 takes
     * the quant, byte 3 takes byte 7 (y's 0x3F). */
    return __uint_as_float(__byte_perm(word, 0x3F000000u, 0x7044u | (byte_sel << 8)));
}

/* KD_CU_ELEMENTWISE_ROW(NAME, F) defines NAME(a, b, y, n): y[i] = F(a[i], b[i]) over one
 * row of n, KD_CU_EW_VEC (4) consecutive elements per thread: one 16-byte load of each
 * input and one 16-byte store when the row allows it (n % 4 == 0, 16-byte aligned
 * pointers), four scalar accesses otherwise. y may alias a or b (in-place): each thread
 * reads its elements before it writes them, through plain (coherent) loads. The
 * elementwise ops (swiglu.cu, residual_add.cu) differ only in F. */
#define KD_CU_ELEMENTWISE_ROW(NAME, F)                                                     \
    KD_DEV void NAME(const float *a, const float *b, float *y, int n)                      \
    {                                                                                      \
        long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * KD_CU_EW_VEC;  \
        if (i >= n)                                                                        \
            return;                                                                        \
        if ((n & 3) == 0 && kd_aligned16(a, b, y)) {                                       \
            float4 va = kd_ld_f4(a + i);                                                   \
            float4 vb = kd_ld_f4(b + i);                                                   \
            kd_st_f4(y + i, make_float4(F(va.x, vb.x), F(va.y, vb.y), F(va.z, vb.z),       \
                                        F(va.w, vb.w)));                                   \
            return;                                                                        \
        }                                                                                  \
        _Pragma("unroll") for (int j = 0; j < KD_CU_EW_VEC; j++)                           \
            if (i + j < n)                                                                 \
                y[i + j] = F(a[i + j], b[i + j]);                                          \
    }

#endif /* KD_CUDA_UTIL_CUH */
