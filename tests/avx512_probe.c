/* Executes one AVX-512 instruction and exits 0: on a CPU without AVX-512 it dies of SIGILL.
 * test_qemu_cpu.sh runs it under the emulated CPU to show that the emulation refuses
 * AVX-512 (so the suites it runs there are on an AVX2-only CPU), and natively to show
 * that the probe itself works where the host has AVX-512. No CPUID check on purpose. */
#include <immintrin.h>
#include <stdio.h>

__attribute__((target("avx512f"), noinline)) static float sum16(const float *x)
{
    return _mm512_reduce_add_ps(_mm512_loadu_ps(x));
}

int main(void)
{
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    volatile float s = sum16(x);
    printf("avx512_probe: ran an AVX-512 instruction (sum %.0f)\n", (double)s);
    return s == 120.0f ? 0 : 1;
}
