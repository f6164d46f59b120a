// -rdc=true across two files (gen_fixtures.sh): the kernels call helpers declared
// .extern here and defined in rdc_helpers.cu's PTX; the row reaches a global address only
// in the helpers, and the shared array is stored to in another helper.
extern __device__ float load_row(const float *x, int row, int n, int i);
extern __device__ void put(float *p, int i, float v);
extern __device__ void store_row(float *y, int row, float v);

extern "C" __global__ void kd_demo(const float *x, float *y, int n)
{
    __shared__ float part[128];
    int i = threadIdx.x;
    float v = i < n ? load_row(x, 0, n, i) : 0.0f;
    put(part, i, v);
    __syncthreads();
    if (i == 0)
        y[0] = part[0] + part[1];
}

extern "C" __global__ void kd_demo_batched(const float *x, float *y, int n, int m_dim)
{
    __shared__ float part[128];
    int row = blockIdx.y;
    if (row >= m_dim)
        return;
    int i = threadIdx.x;
    float v = i < n ? load_row(x, row, n, i) : 0.0f;
    put(part, i, v);
    __syncthreads();
    if (i == 0)
        store_row(y, row, part[0] + part[1]);
}
