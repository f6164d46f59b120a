/* Shared by gemv_q4k.cl and gemv_q6k.cl (the embedded program has it before both).
 *
 * Work layout: a work-group of KD_GEMV_LOCAL items computes KD_GEMV_ROWS output rows; the
 * KD_GEMV_IPR items of one row take interleaved blocks (adjacent items, adjacent blocks)
 * and meet in local memory. On CPU devices the shape is one item per row (IPR 1: no
 * barrier, no local memory; batched: KD_GEMV_RPI rows per item); KD_CL_GPU_SHAPES (a build option the backend sets with the
 * GPU geometry) selects the GPU shape. Each item decodes whole blocks with vector loads (8
 * values at a time) and multiplies them with up to KD_CL_GEMV_MAX_M rows of x, so the
 * batched kernel reads each weight block once for all its rows of x. The accumulators are
 * float8 "chains" (4 in all for one or two rows of x, one per row beyond; the batched CPU
 * shape, further down, has its own layout), enough to hide
 * the FMA latency. No loop has to be unrolled for them to stay in registers: the row count
 * and the slot of each multiply-add are constants in every call (kd_gemv_fma). */
#ifndef KD_CL_GEMV_COMMON
#define KD_CL_GEMV_COMMON
#include "kd_blocks.h" /* kd_u8 (the runtime embeds it ahead; scripts/nvptx-from-cl.sh compiles this alone) */
#include "kd_cl_geometry.h"

#ifdef KD_CL_GPU_SHAPES
#define KD_GEMV_LOCAL KD_CL_GEMV_GPU_LOCAL
#define KD_GEMV_ROWS KD_CL_GEMV_GPU_ROWS
#else
#define KD_GEMV_LOCAL KD_CL_GEMV_LOCAL
#define KD_GEMV_ROWS KD_CL_GEMV_ROWS
#endif
#define KD_GEMV_IPR (KD_GEMV_LOCAL / KD_GEMV_ROWS) /* items per output row */

#if KD_CL_GEMV_MAX_M != 8
#error "KD_GEMV_FOR_NM (below) has one case per row count 1..8"
#endif

/* The GEMV helpers take constant row counts and slots: they must be inlined for those to
 * fold (LLVM's inliner, PoCL's included, leaves large multi-call helpers out of line). */
#ifdef __clang__
#define KD_CL_INLINE static inline __attribute__((always_inline))
#else
#define KD_CL_INLINE static inline
#endif

/* CPU shape (one item per row, blocks in order): a software prefetch KD_GEMV_PREFETCH
 * blocks ahead of the item's weights. Each item streams a row, and a core waits on the
 * hardware prefetcher alone (PoCL on a 2-core Zen 4: Q4_K M=1 25%, Q6_K M=1 in all 25%
 * less CPU time with it). A hint: it may point past the buffer. Compiled only for PoCL's
 * CPU targets: GPU shapes and SPIR (oclgrind) get none. */
#if KD_GEMV_IPR == 1 && (defined(__x86_64__) || defined(__aarch64__))
#define KD_GEMV_PREFETCH 16
#define kd_gemv_prefetch(p, bytes)                                               \
    do {                                                                         \
        for (int kd_o_ = 0; kd_o_ < (int)(bytes); kd_o_ += 64)                   \
            __builtin_prefetch((__global const char *)(p) + kd_o_);              \
    } while (0)
#else
#define KD_GEMV_PREFETCH 0
#define kd_gemv_prefetch(p, bytes) ((void)0)
#endif

/* 8 (16) bytes at p. On the CPU shape vload8 of a block field compiles (PoCL, x86) to one
 * 16-bit insert per 2 bytes where the block's alignment is 2 (block_q6_K, 210 bytes): a
 * packed struct gives LLVM alignment 1 and one unaligned load. GPUs and SPIR (oclgrind,
 * whose uninitialized-value check crashes on these loads) keep vload. */
#if KD_GEMV_IPR == 1 && (defined(__x86_64__) || defined(__aarch64__))
typedef struct __attribute__((packed)) kd_gemv_u8x8 { uchar8 v; } kd_gemv_u8x8;
typedef struct __attribute__((packed)) kd_gemv_u8x16 { uchar16 v; } kd_gemv_u8x16;
KD_CL_INLINE uchar8 kd_gemv_load8(__global const kd_u8 *p)
{
    return ((__global const kd_gemv_u8x8 *)p)->v;
}
KD_CL_INLINE uchar16 kd_gemv_load16(__global const kd_u8 *p)
{
    return ((__global const kd_gemv_u8x16 *)p)->v;
}
#else
KD_CL_INLINE uchar8 kd_gemv_load8(__global const kd_u8 *p) { return vload8(0, p); }
KD_CL_INLINE uchar16 kd_gemv_load16(__global const kd_u8 *p) { return vload16(0, p); }
#endif

/* independent accumulator chains per row of x: 4 in all with one or two rows (an FMA
 * latency of 4 cycles at 1 FMA/cycle), one per row beyond (x86 has 16 vector registers) */
#define KD_GEMV_CHAINS(nm) ((nm) == 1 ? 4 : (nm) == 2 ? 2 : 1)

/* Blocks of a row that one item sums: first, first + step, ... < end. */
typedef struct kd_gemv_span { int first, end, step; } kd_gemv_span;

KD_CL_INLINE kd_gemv_span kd_gemv_span_of(int nb, int lane)
{
    kd_gemv_span s;
    s.first = lane;
    s.end = nb;
    s.step = KD_GEMV_IPR;
    return s;
}

KD_CL_INLINE float kd_hsum8(float8 v)
{
    float4 a = v.lo + v.hi;
    float2 b = a.lo + a.hi;
    return b.x + b.y;
}

/* acc[m * ch + slot % ch] += w * x[m] for the nm rows of x (xs floats apart), where ch =
 * KD_GEMV_CHAINS(nm). Callers pass nm and slot as constants: once inlined every index is a
 * constant, so the accumulators live in registers without relying on loop unrolling. */
KD_CL_INLINE void kd_gemv_fma(float8 *acc, const int nm, const int slot, float8 w,
                               __global const float *x, size_t xs)
{
    const int ch = KD_GEMV_CHAINS(nm), c = slot % ch;
    acc[c] += w * vload8(0, x);
    if (nm > 1)
        acc[ch + c] += w * vload8(0, x + xs);
    if (nm > 2)
        acc[2 * ch + c] += w * vload8(0, x + 2 * xs);
    if (nm > 3)
        acc[3 * ch + c] += w * vload8(0, x + 3 * xs);
    if (nm > 4)
        acc[4 * ch + c] += w * vload8(0, x + 4 * xs);
    if (nm > 5)
        acc[5 * ch + c] += w * vload8(0, x + 5 * xs);
    if (nm > 6)
        acc[6 * ch + c] += w * vload8(0, x + 6 * xs);
    if (nm > 7)
        acc[7 * ch + c] += w * vload8(0, x + 7 * xs);
}

/* Row m's chains added up (m, nm constants). */
KD_CL_INLINE float8 kd_gemv_chain_vec(const float8 *acc, const int nm, const int m)
{
    const int ch = KD_GEMV_CHAINS(nm);
    float8 t = acc[m * ch];
    if (ch > 1)
        t += acc[m * ch + 1];
    if (ch > 2)
        t += acc[m * ch + 2] + acc[m * ch + 3];
    if (ch > 4)
        t += (acc[m * ch + 4] + acc[m * ch + 5]) + (acc[m * ch + 6] + acc[m * ch + 7]);
    return t;
}

/* The sum of row m's chains (m, nm constants). */
KD_CL_INLINE float kd_gemv_chain_sum(const float8 *acc, const int nm, const int m)
{
    return kd_hsum8(kd_gemv_chain_vec(acc, nm, m));
}

/* sums[m] for the nm rows of x. */
KD_CL_INLINE void kd_gemv_fold(const float8 *acc, const int nm, float *sums)
{
    sums[0] = kd_gemv_chain_sum(acc, nm, 0);
    if (nm > 1)
        sums[1] = kd_gemv_chain_sum(acc, nm, 1);
    if (nm > 2)
        sums[2] = kd_gemv_chain_sum(acc, nm, 2);
    if (nm > 3)
        sums[3] = kd_gemv_chain_sum(acc, nm, 3);
    if (nm > 4)
        sums[4] = kd_gemv_chain_sum(acc, nm, 4);
    if (nm > 5)
        sums[5] = kd_gemv_chain_sum(acc, nm, 5);
    if (nm > 6)
        sums[6] = kd_gemv_chain_sum(acc, nm, 6);
    if (nm > 7)
        sums[7] = kd_gemv_chain_sum(acc, nm, 7);
}

/* Zeroes the 8 accumulators. */
KD_CL_INLINE void kd_gemv_zero(float8 *acc)
{
    acc[0] = acc[1] = acc[2] = acc[3] = (float8)(0.0f);
    acc[4] = acc[5] = acc[6] = acc[7] = (float8)(0.0f);
}

/* kd_gemv_store's local memory, declared in the kernel (OpenCL C allows __local
 * variables at kernel scope only): none on the CPU shape. */
#if KD_GEMV_IPR > 1
#define KD_GEMV_RED_DECL __local float red[KD_GEMV_LOCAL * KD_CL_GEMV_MAX_M]
#else
#define KD_GEMV_RED_DECL __local float *red = 0
#endif

/* F(PRE..., n, POST...) for n = nm, the rows of x in a pass (1..8; 0: no call): one copy
 * of the call per row count, so that nm is a constant in each copy of the loop and its
 * accumulators stay in registers. PRE and POST: F's other arguments, parenthesized. */
#define KD_GEMV_ARGS(...) __VA_ARGS__
#define KD_GEMV_FOR_NM(nm, F, PRE, POST)                                              \
    switch (nm) {                                                                     \
    case 0: break;                                                                    \
    case 1: F(KD_GEMV_ARGS PRE, 1, KD_GEMV_ARGS POST); break;                         \
    case 2: F(KD_GEMV_ARGS PRE, 2, KD_GEMV_ARGS POST); break;                         \
    case 3: F(KD_GEMV_ARGS PRE, 3, KD_GEMV_ARGS POST); break;                         \
    case 4: F(KD_GEMV_ARGS PRE, 4, KD_GEMV_ARGS POST); break;                         \
    case 5: F(KD_GEMV_ARGS PRE, 5, KD_GEMV_ARGS POST); break;                         \
    case 6: F(KD_GEMV_ARGS PRE, 6, KD_GEMV_ARGS POST); break;                         \
    case 7: F(KD_GEMV_ARGS PRE, 7, KD_GEMV_ARGS POST); break;                         \
    default: F(KD_GEMV_ARGS PRE, 8, KD_GEMV_ARGS POST); break;                        \
    }

/* Adds the IPR partial sums of each output row and stores y[m * n_rows + row] for the
 * nm rows of x. Every item of the group calls it (it may hold a barrier). */
KD_CL_INLINE void kd_gemv_store(const float *sums, int nm, __global float *y, int n_rows,
                                 int row, __local float *red)
{
#if KD_GEMV_IPR == 1
    (void)red;
    if (row < n_rows)
        for (int m = 0; m < nm; m++)
            y[(size_t)m * (size_t)n_rows + (size_t)row] = sums[m];
#else
    int lid = (int)get_local_id(0);
    int lane = lid % KD_GEMV_IPR;
    for (int m = 0; m < nm; m++)
        red[m * KD_GEMV_LOCAL + lid] = sums[m];
    barrier(CLK_LOCAL_MEM_FENCE);
    if (row < n_rows) {
        for (int m = lane; m < nm; m += KD_GEMV_IPR) {
            float t = 0.0f;
            for (int j = 0; j < KD_GEMV_IPR; j++)
                t += red[m * KD_GEMV_LOCAL + lid - lane + j];
            y[(size_t)m * (size_t)n_rows + (size_t)row] = t;
        }
    }
#endif
}
#if KD_GEMV_IPR == 1
/* Batched CPU shape: each item owns KD_GEMV_RPI output rows and walks the blocks in order;
 * at each tile of KD_GEMV_TILE blocks it takes its rows two at a time (kd_gemv_pair_fma),
 * so each float16 of x,
 * loaded once, feeds two FMAs, and the block's x (at most 8 KB) stays in L1 for all the
 * item's rows. With one row per item x came from L2 at one load per FMA (PoCL, Zen 4: half
 * the FMA rate at M = 8). A pair's accumulators (2 x 8 float16: 16 of AVX-512's 32
 * registers) start at zero at each tile and are added into the item's sums in memory
 * (docs/opencl-gemv-cpu.md has the measurements).
 * Targets with 16 vector registers of 256 bits or fewer (AVX2, AVX, SSE, NEON) hold a
 * float16 in 2 or 4 registers, so a pair's 16 accumulators alone would fill 32 to 64
 * (PoCL's haswell build of the kernel has 2.3x the stack accesses of its skylake-avx512
 * build). There (KD_GEMV_PAIRS 0) the tile takes the item's rows one at a time with 8
 * float8 accumulators (kd_T_block8, the GPU shape's block code), each x vector loaded
 * from L1 for its FMA: on PoCL's haswell target, 4096 x 14336 at M = 8, Q4_K 7.6-7.8 ms
 * against 11.7-14.6 with pairs, Q6_K 8.2-8.5 against 11.7-12.1. With AVX-512 pairs stay
 * faster (Q4_K 6.4-6.9 against 7.7-7.9 ms). A pass with one row of x (nm == 1) always
 * takes pairs: kd_q4k_block lays out a single row's sums differently. */
#ifndef KD_GEMV_PAIRS
#ifdef __AVX512F__
#define KD_GEMV_PAIRS 1
#else
#define KD_GEMV_PAIRS 0
#endif
#endif
#define KD_GEMV_RPI (KD_CL_GEMV_ROWS / KD_CL_GEMV_BATCH_LOCAL)
/* blocks a pair sums in registers before adding into the item's sums in memory (x of a
 * tile: 8 KB per block at M = 8, in L1) */
#ifndef KD_GEMV_TILE
#define KD_GEMV_TILE 2
#endif
#ifndef KD_GEMV_BATCH_PREFETCH
#define KD_GEMV_BATCH_PREFETCH 2
#endif
#if KD_GEMV_RPI % 2 != 0
#error "the batched CPU GEMV takes its rows two at a time"
#endif

/* acc[m] += w0 * x[m], acc[8 + m] += w1 * x[m] for the nm rows of x (xs floats apart); nm
 * a constant at every call, so each index folds. */
KD_CL_INLINE void kd_gemv_pair_fma(float16 *acc, const int nm, float16 w0, float16 w1,
                                   __global const float *x, size_t xs)
{
    float16 v;
#define KD_GEMV_PAIR_ROW(m)                                                          \
    if (nm > (m)) {                                                                  \
        v = vload16(0, x + (m) * xs);                                                \
        acc[m] += w0 * v;                                                            \
        acc[8 + (m)] += w1 * v;                                                      \
    }
    KD_GEMV_PAIR_ROW(0) KD_GEMV_PAIR_ROW(1) KD_GEMV_PAIR_ROW(2) KD_GEMV_PAIR_ROW(3)
    KD_GEMV_PAIR_ROW(4) KD_GEMV_PAIR_ROW(5) KD_GEMV_PAIR_ROW(6) KD_GEMV_PAIR_ROW(7)
#undef KD_GEMV_PAIR_ROW
}

/* Zeroes a pair's 16 accumulators (constant indices: they stay in registers). */
KD_CL_INLINE void kd_gemv_pair_zero(float16 *acc)
{
    acc[0] = acc[1] = acc[2] = acc[3] = acc[4] = acc[5] = acc[6] = acc[7] = (float16)(0.0f);
    acc[8] = acc[9] = acc[10] = acc[11] = (float16)(0.0f);
    acc[12] = acc[13] = acc[14] = acc[15] = (float16)(0.0f);
}

/* Adds one row's float8 accumulators (KD_GEMV_CHAINS layout) into its sums s[m]. */
KD_CL_INLINE void kd_gemv_row_add(float16 *s, const float8 *acc, const int nm)
{
#define KD_GEMV_ROW_ADD(m)                                                           \
    if (nm > (m))                                                                    \
        s[m].lo += kd_gemv_chain_vec(acc, nm, m);
    KD_GEMV_ROW_ADD(0) KD_GEMV_ROW_ADD(1) KD_GEMV_ROW_ADD(2) KD_GEMV_ROW_ADD(3)
    KD_GEMV_ROW_ADD(4) KD_GEMV_ROW_ADD(5) KD_GEMV_ROW_ADD(6) KD_GEMV_ROW_ADD(7)
#undef KD_GEMV_ROW_ADD
}

/* Adds a pair's accumulators into the item's sums (sum[r * 8 + m], r = 2p, 2p + 1). */
KD_CL_INLINE void kd_gemv_pair_add(float16 *sum, int p, const float16 *acc, const int nm)
{
    float16 *s = sum + 16 * p;
#define KD_GEMV_PAIR_ADD(m)                                                          \
    if (nm > (m)) {                                                                  \
        s[m] += acc[m];                                                              \
        s[8 + (m)] += acc[8 + (m)];                                                  \
    }
    KD_GEMV_PAIR_ADD(0) KD_GEMV_PAIR_ADD(1) KD_GEMV_PAIR_ADD(2) KD_GEMV_PAIR_ADD(3)
    KD_GEMV_PAIR_ADD(4) KD_GEMV_PAIR_ADD(5) KD_GEMV_PAIR_ADD(6) KD_GEMV_PAIR_ADD(7)
#undef KD_GEMV_PAIR_ADD
}

KD_CL_INLINE float kd_hsum16(float16 v) { return kd_hsum8(v.lo + v.hi); }

/* y[m * n_rows + row0 + r] for the item's rows that exist and the nm rows of x. */
KD_CL_INLINE void kd_gemv_store_rows(const float16 *sum, int nm, __global float *y,
                                     int n_rows, int row0)
{
    for (int r = 0; r < KD_GEMV_RPI; r++)
        if (row0 + r < n_rows)
            for (int m = 0; m < nm; m++)
                y[(size_t)m * (size_t)n_rows + (size_t)(row0 + r)] = kd_hsum16(sum[8 * r + m]);
}

/* The batched CPU-shape kernel of one weight type T (q4k, q6k) with blocks BLOCK: the
 * scaffold around the type's own math, kd_T_pair_block (two weight rows' block times the
 * nm rows of x) and kd_T_block8 (one row's block, nm > 1, into float8 accumulators), which
 * the type's file defines before it expands this. Defines
 * kd_T_rows (the item's rows row0.., clamped to n_rows - 1 since kd_gemv_store_rows skips
 * the copies, times nm rows of x: sum[8 r + m]) and __kernel kd_gemv_T_batched. */
#define KD_GEMV_CPU_BATCHED(T, BLOCK)                                                     \
KD_CL_INLINE void kd_##T##_rows(__global const BLOCK *w, int row0, int n_rows, int nb,    \
                                __global const float *x, size_t xs, const int nm,         \
                                float16 *sum)                                             \
{                                                                                         \
    for (int i = 0; i < 8 * KD_GEMV_RPI; i++)                                             \
        sum[i] = (float16)(0.0f);                                                         \
    for (int t = 0; t < nb; t += KD_GEMV_TILE) {                                          \
        int t_end = min(t + KD_GEMV_TILE, nb);                                            \
        for (int r = 0; !KD_GEMV_PAIRS && nm > 1 && r < KD_GEMV_RPI; r++) {               \
            __global const BLOCK *wr = w + (size_t)min(row0 + r, n_rows - 1) * (size_t)nb; \
            float8 acc[8];                                                                \
            kd_gemv_zero(acc);                                                            \
            for (int ib = t; ib < t_end; ib++) {                                          \
                kd_gemv_prefetch(wr + ib + KD_GEMV_BATCH_PREFETCH, sizeof(BLOCK));        \
                kd_##T##_block8(wr + ib, x + (size_t)ib * KD_QK_K, xs, nm, acc);          \
            }                                                                             \
            kd_gemv_row_add(sum + 8 * r, acc, nm);                                        \
        }                                                                                 \
        for (int p = 0; (KD_GEMV_PAIRS || nm == 1) && p < KD_GEMV_RPI / 2; p++) {        \
            __global const BLOCK *w0 = w + (size_t)min(row0 + 2 * p, n_rows - 1) * (size_t)nb; \
            __global const BLOCK *w1 = w + (size_t)min(row0 + 2 * p + 1, n_rows - 1) * (size_t)nb; \
            float16 acc[16];                                                              \
            kd_gemv_pair_zero(acc);                                                       \
            for (int ib = t; ib < t_end; ib++) {                                          \
                kd_gemv_prefetch(w0 + ib + KD_GEMV_BATCH_PREFETCH, sizeof(BLOCK));        \
                kd_gemv_prefetch(w1 + ib + KD_GEMV_BATCH_PREFETCH, sizeof(BLOCK));        \
                kd_##T##_pair_block(w0 + ib, w1 + ib, x + (size_t)ib * KD_QK_K, xs, nm, acc); \
            }                                                                             \
            kd_gemv_pair_add(sum, p, acc, nm);                                            \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
                                                                                          \
__kernel __attribute__((reqd_work_group_size(KD_CL_GEMV_BATCH_LOCAL, 1, 1)))              \
void kd_gemv_##T##_batched(__global const BLOCK *w, __global const float *x,              \
                           __global float *y, int n_rows, int k, int m_dim)               \
{                                                                                         \
    int row0 = (int)get_group_id(0) * KD_GEMV_ROWS + (int)get_local_id(0) * KD_GEMV_RPI;  \
    int m0 = (int)get_group_id(1) * KD_CL_GEMV_MAX_M;                                     \
    int nm = clamp(m_dim - m0, 0, KD_CL_GEMV_MAX_M);                                      \
    int nb = row0 < n_rows && nm > 0 ? k / KD_QK_K : 0;                                   \
    __global const float *xr = x + (size_t)m0 * (size_t)k;                                \
    float16 sum[8 * KD_GEMV_RPI];                                                         \
    KD_GEMV_FOR_NM(nm, kd_##T##_rows, (w, row0, n_rows, nb, xr, k), (sum))                \
    kd_gemv_store_rows(sum, nm, y + (size_t)m0 * (size_t)n_rows, n_rows, row0);           \
}
#else
/* The batched GPU-shape kernel of one weight type T with blocks BLOCK: KD_GEMV_IPR items
 * per output row, each calls the type's kd_T_row (TAIL: its arguments after nm, in this
 * kernel's names) and the row's items meet in kd_gemv_store. A group past m_dim does no
 * work but still reaches kd_gemv_store's barrier: no return before it. */
#define KD_GEMV_GPU_BATCHED(T, BLOCK, TAIL)                                               \
__kernel __attribute__((reqd_work_group_size(KD_GEMV_LOCAL, 1, 1)))                       \
void kd_gemv_##T##_batched(__global const BLOCK *w, __global const float *x,              \
                           __global float *y, int n_rows, int k, int m_dim)               \
{                                                                                         \
    KD_GEMV_RED_DECL;                                                                     \
    int lid = (int)get_local_id(0);                                                       \
    int row = (int)get_group_id(0) * KD_GEMV_ROWS + lid / KD_GEMV_IPR;                    \
    int lane = lid % KD_GEMV_IPR;                                                         \
    int m0 = (int)get_group_id(1) * KD_CL_GEMV_MAX_M;                                     \
    int nm = clamp(m_dim - m0, 0, KD_CL_GEMV_MAX_M);                                      \
    int nb = row < n_rows && nm > 0 ? k / KD_QK_K : 0;                                    \
    __global const BLOCK *wr = w + (size_t)min(row, n_rows - 1) * (size_t)(k / KD_QK_K);  \
    __global const float *xr = x + (size_t)m0 * (size_t)k;                                \
    float sums[KD_CL_GEMV_MAX_M];                                                         \
    KD_GEMV_FOR_NM(nm, kd_##T##_row, (wr, xr, k, nb, lane), TAIL)                         \
    kd_gemv_store(sums, nm, y + (size_t)m0 * (size_t)n_rows, n_rows, row, red);           \
}
#endif

/* The eight 6-bit scales (lanes 0..7) and mins (lanes 8..15) of Q4_K block b, unpacked
 * four at a time from the 12 bytes read as three little-endian words (ggml's packing;
 * kd_q4k_scale_min is the one-at-a-time form): pairs 0..3 are the low 6 bits of bytes 0..3
 * and 4..7, pairs 4..7 take their low 4 bits from bytes 8..11 and their top 2 from the top
 * bits of bytes 0..3 and 4..7. Shared by the exact (gemv_q4k.cl) and q8 (gemv_q8.cl)
 * kernels. */
KD_CL_INLINE uchar16 kd_q4k_scale_min_bytes(__global const kd_block_q4_K *b)
{
    uint3 w = vload3(0, (__global const uint *)b->scales);
    uint4 lo = (uint4)(w.x, w.z, w.y, w.z) >> (uint4)(0, 0, 0, 4);
    uint4 hi = (uint4)(w.x, w.x, w.y, w.y) >> (uint4)(2, 2, 2, 2);
    return as_uchar16((lo & (uint4)(0x3f3f3f3fu, 0x0f0f0f0fu, 0x3f3f3f3fu, 0x0f0f0f0fu)) |
                      (hi & (uint4)(0, 0x30303030u, 0, 0x30303030u)));
}

/* The single-row Q4_K kernel's pre-pass: xsum[r * k/32 + j] = sum of x[r, 32j .. 32j + 31]
 * for the m_dim rows of x. Every output row needs these sums (the sub-block mins multiply
 * them), so they are formed once per call instead of once per row. Elementwise geometry
 * over the k/32 sums: on CPU devices a work-item forms KD_CL_EW_VEC of them (the geometry
 * counts one float16 per item there), on GPU shapes one. */
KD_CL_INLINE void kd_gemv_xsum_one(__global const float *x, __global float *xsum, int j)
{
    __global const float *p = x + 32 * (size_t)j;
    float8 t = (vload8(0, p) + vload8(1, p)) + (vload8(2, p) + vload8(3, p));
    xsum[j] = kd_hsum8(t);
}

__kernel __attribute__((reqd_work_group_size(KD_CL_EW_LOCAL, 1, 1)))
void kd_gemv_xsum(__global const float *x, __global float *xsum, int k, int m_dim)
{
    int row = (int)get_group_id(1), nsum = k / 32;
    if (row < m_dim) { /* guarded work, no early return */
        __global const float *xr = x + (size_t)row * (size_t)k;
        __global float *sr = xsum + (size_t)row * (size_t)nsum;
#ifdef KD_CL_GPU_SHAPES
        int j = (int)get_global_id(0);
        if (j < nsum)
            kd_gemv_xsum_one(xr, sr, j);
#else
        int j0 = (int)get_global_id(0) * KD_CL_EW_VEC;
        for (int j = j0; j < min(j0 + KD_CL_EW_VEC, nsum); j++)
            kd_gemv_xsum_one(xr, sr, j);
#endif
    }
}
#endif /* KD_CL_GEMV_COMMON */
