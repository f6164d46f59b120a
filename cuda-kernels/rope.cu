/*
 * Rope over M rows of n_heads * head_dim: per head, pair i of head_dim/2 rotates by
 * a = pos * base^(-2i/head_dim); mode 0 (normal) pairs (x[2i], x[2i+1]), mode 1 (neox)
 * pairs (x[i], x[i + head_dim/2]); (u, v) -> (u cos a - v sin a, u sin a + v cos a).
 * One thread per pair. The angle is formed and reduced to [-pi, pi] in double, then
 * sin/cos run in float (sincospif: no large-argument path, no local memory): in float
 * alone a position in the thousands would already cost more than the 1e-3 tolerance. Normal-mode pairs are adjacent: one 8-byte access.
 * y may alias x (each thread reads its pair before writing it).
 * Single-row kernel: the position is a parameter. Batched: the row is blockIdx.y and
 * pos is a device array of m_dim positions.
 */
#include "kd_cuda_util.cuh"

#define KD_ROPE_NEOX 1

KD_DEV void kd_rope_row(const float *x, float *y, int n_heads, int head_dim, float base,
                        int mode, unsigned int pos)
{
    int half = head_dim >> 1;
    long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= (long long)n_heads * half)
        return;
    int h = (int)(p / half), i = (int)(p % half);
    /* the angle in half-turns (a / pi), reduced to [-1, 1] */
    double inv_freq = exp(-2.0 * i / head_dim * log((double)base)); /* base^(-2i/D) */
    double t = (double)pos * inv_freq * 0.3183098861837907;
    t -= 2.0 * rint(0.5 * t);
    float s, c;
    sincospif((float)t, &s, &c);

    size_t a = (size_t)h * head_dim;
    if (mode == KD_ROPE_NEOX) {
        float u = x[a + i], v = x[a + i + half];
        y[a + i] = u * c - v * s;
        y[a + i + half] = u * s + v * c;
    } else if ((((unsigned long long)x | (unsigned long long)y) & 7u) == 0) {
        float2 uv = kd_ld_f2(x + a + 2 * i);
        kd_st_f2(y + a + 2 * i, make_float2(uv.x * c - uv.y * s, uv.x * s + uv.y * c));
    } else {
        float u = x[a + 2 * i], v = x[a + 2 * i + 1];
        y[a + 2 * i] = u * c - v * s;
        y[a + 2 * i + 1] = u * s + v * c;
    }
}

#ifdef __cplusplus
extern "C" {
#endif

__global__ void __launch_bounds__(KD_CU_EW_BLOCK)
kd_rope_f32(const float *x, float *y, int n_heads, int head_dim, float base, int mode,
            unsigned int pos)
{
    kd_rope_row(x, y, n_heads, head_dim, base, mode, pos);
}

__global__ void __launch_bounds__(KD_CU_EW_BLOCK)
kd_rope_f32_batched(const float *x, float *y, int n_heads, int head_dim, float base, int mode,
                    const unsigned int *pos, int m_dim)
{
    int row = blockIdx.y;
    if (row >= m_dim)
        return;
    size_t off = (size_t)row * n_heads * head_dim;
    kd_rope_row(x + off, y + off, n_heads, head_dim, base, mode, pos[row]);
}

#ifdef __cplusplus
}
#endif
