// The helpers rdc_kernels.cu calls (-rdc=true: a separate PTX module).
__device__ float load_row(const float *x, int row, int n, int i)
{
    return x[(long)row * n + i];
}

__device__ void put(float *p, int i, float v) { p[i] = v; }

__device__ void store_row(float *y, int row, float v) { y[row] = v; }
