// Source of the nvcc row-loop fixtures (tests/data/ptx/nvcc_rows_*.ptx; see
// gen_fixtures.sh): a batched kernel that loops over its m_dim rows instead of taking the
// row from blockIdx.y. nvcc -O3 strength-reduces x + row * n into pointers advanced each
// iteration (unrolled by 4 with a down-counter, or with #pragma unroll 1), so the row
// counter itself never reaches an address. Variants (-D) select one change each.
#if defined(NOINLINE) || defined(NOINLINE_ROW0)
// __noinline__ helpers: the advanced pointers reach memory through .func parameters
__device__ __noinline__ float load_at(const float *p) { return *p; }
__device__ __noinline__ void store_at(float *p, float v) { *p = v; }
#endif

extern "C" __global__ void kd_demo(const float *x, float *y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = x[i] * 2.0f;
}

extern "C" __global__ void kd_demo_batched(const float *x, float *y, int n, int m_dim)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
#if defined(POINTER_END)
    // the loop written over pointers: the exit compare is p < x + m_dim * n
    const float *p = x + i;
    float *q = y + i;
    for (const float *e = x + (long)m_dim * n; p < e; p += n, q += n)
        *q = *p * 2.0f;
#elif defined(DOWN_COUNTER)
    const float *p = x + i;
    float *q = y + i;
#pragma unroll 1
    for (int r = m_dim; r > 0; r--, p += n, q += n)
        *q = *p * 2.0f;
#elif defined(BOUND_BY_N)
    // wrong: m_dim is only checked; the loop runs over n rows
    if (m_dim < 1)
        return;
#pragma unroll 1
    for (int row = 0; row < n; row++)
        y[(long)row * n + i] = x[(long)row * n + i] * 2.0f;
#elif defined(NO_ROW_ACCESS)
    // wrong: m_dim bounds a loop, but every iteration reads and writes row 0
    float s = 0.0f;
#pragma unroll 1
    for (int row = 0; row < m_dim; row++)
        s = s * 0.5f + x[i];
    y[i] = s;
#elif defined(FLAT_POINTER)
    // one thread walks every row: the pointers go on from row to row through the inner
    // loop (each row's elements, then the next row's)
    if (i != 0)
        return;
    const float *p = x;
    float *q = y;
    for (int row = 0; row < m_dim; row++)
#pragma unroll 1
        for (int k = 0; k < n; k++)
            *q++ = *p++ * 2.0f;
#elif defined(INNER_LOOP_ROW0)
    // wrong: the row loop holds a loop over the elements (its counter advances), but every
    // row reads and writes row 0
    if (i != 0)
        return;
    for (int row = 0; row < m_dim; row++)
#pragma unroll 1
        for (int k = 0; k < n; k++)
            y[k] += x[k] * row;
#elif defined(NOINLINE)
    for (int row = 0; row < m_dim; row++)
        store_at(y + (long)row * n + i, load_at(x + (long)row * n + i) * 2.0f);
#elif defined(NOINLINE_ROW0)
    // wrong: the row only scales the value
    for (int row = 0; row < m_dim; row++)
        store_at(y + i, load_at(x + i) * row);
#else
#if defined(UNROLL1)
#pragma unroll 1
#endif
    for (int row = 0; row < m_dim; row++)
        y[(long)row * n + i] = x[(long)row * n + i] * 2.0f;
#endif
}
