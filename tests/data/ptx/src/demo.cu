// Source of the nvcc-built ptx-check fixtures (tests/data/ptx/nvcc_*.ptx; see
// gen_fixtures.sh). A single-row kernel and its batched twin with a shared reduction;
// the variants are selected with -D so every fixture differs from the base by one change.
#ifndef ROWS_ONLY_CHECKED
#define ROWS_ONLY_CHECKED 0
#endif

#if defined(HELPER)
// -rdc with a __noinline__ helper: the row offset goes through a .func parameter.
__device__ __noinline__ float load_row(const float *x, int row, int n, int i)
{
    return x[(long)row * n + i];
}
#endif

#if defined(SHARED_HELPER)
// A shared-memory pointer passed to a __noinline__ helper: nvcc clones the helper for
// shared memory (cvta.to.shared, then a 32-bit address), so rule 2 holds.
__device__ __noinline__ void put(float *p, int i, float v) { p[i] = v; }
#endif

extern "C" __global__ void kd_demo(const float *x, float *y, int n)
{
    __shared__ float part[128];
    int i = threadIdx.x;
    float v = i < n ? x[i] : 0.0f;
    part[i] = v;
    __syncthreads();
    if (i == 0) {
        float s = 0.0f;
#pragma unroll 1
        for (int k = 0; k < 128; k++)
            s += part[k];
        y[0] = s;
    }
}

extern "C" __global__ void kd_demo_batched(const float *x, float *y, int n, int m_dim)
{
    __shared__ float part[128];
#if defined(DYN_SHARED)
    extern __shared__ float extra[];
#endif
    int row = blockIdx.y;
    if (row >= m_dim)
        return;
#if ROWS_ONLY_CHECKED
    row = 0; // blockIdx.y is only bounds-checked: every block works on row 0
#endif
    int i = threadIdx.x;
#if defined(HELPER)
    float v = i < n ? load_row(x, row, n, i) : 0.0f;
#else
    float v = i < n ? x[(long)row * n + i] : 0.0f;
#endif
#if defined(SHARED_HELPER)
    put(part, i, v);
#else
    part[i] = v;
#endif
#if defined(DYN_SHARED)
    extra[i] = v;
#endif
    __syncthreads();
    if (i == 0) {
        float s = 0.0f;
#pragma unroll 1
        for (int k = 0; k < 128; k++)
            s += part[k];
        y[row] = s;
    }
}
