/* RmsNorm on the cpu: y = x * w / sqrt(mean(x^2) + eps), per row; f32 accumulation.
 *
 * The fast paths make one pass over memory: a row's sum of squares is taken while the
 * previous row is scaled, in the same loop. Row r is then read from memory once (as the
 * "next" row) and read again for its scaling from cache (it was read one row ago, so it
 * is still in L1/L2 while a row fits there); the memory sees one steady stream of reads
 * of x and writes of y instead of a read-only phase followed by a write-only phase per
 * row. Rows longer than the cache still come out right, they are just read twice. An
 * output larger than a last-level cache is written around the cache (kd_cpu_stream_output). */
#include <math.h>
#include <stddef.h>

#include "cpu_ops.h"
#include "simd.h"

typedef struct norm_job {
    const float *x, *w;
    float *y;
    int64_t n;
    float eps;
    kd_simd simd;
    int nt; /* streaming (non-temporal) stores of y */
} norm_job;

static float inv_rms(float ss, int64_t n, float eps) { return 1.0f / sqrtf(ss / (float)n + eps); }

/* The reference: two plain passes per row. */
static void rmsnorm_row_scalar(const float *x, const float *w, float *y, int64_t n, float eps)
{
    float ss = 0.0f;
    for (int64_t i = 0; i < n; i++)
        ss += x[i] * x[i];
    float scale = inv_rms(ss, n, eps);
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * scale * w[i];
}

/* A SIMD level's kernels: sum of squares of a row; y = x * s * w; and both at once, the
 * second on row x and the first on the next row xn (same summation order as sumsq). */
typedef struct norm_kernels {
    float (*sumsq)(const float *x, int64_t n);
    void (*scale)(const float *x, const float *w, float *y, int64_t n, float s, int nt);
    float (*scale_and_sumsq)(const float *x, const float *w, float *y, int64_t n, float s,
                             const float *xn, int nt);
} norm_kernels;

/* The fused loops read the next row from memory while they re-read this one (and w) from
 * L2: from rows of 16 KiB on, x and w no longer fit L1 together, and those L2 reads left
 * the memory stream fewer misses in flight, so rmsnorm took 1.3-1.5x rope's time for the
 * same bytes. Asking for the next row this far ahead, into L2, took 0.80-0.82 of the time
 * on rows of 4096 and 14336 values with AVX-512, 0.82-0.90 with AVX2, and lost nothing
 * at 1024 (Zen 4, 2 threads, 64 MiB; the two builds alternating, 3 s each). */
#define NEXT_ROW_PREFETCH 2048 /* floats */

#ifdef KD_HAVE_X86
static KD_AVX2 float sumsq_avx2(const float *x, int64_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        a0 = _mm256_fmadd_ps(v0, v0, a0);
        a1 = _mm256_fmadd_ps(v1, v1, a1);
    }
    float ss = kd_hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++)
        ss += x[i] * x[i];
    return ss;
}

static KD_AVX2 __m256 scaled8(const float *x, const float *w, __m256 s)
{
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x), s), _mm256_loadu_ps(w));
}

static KD_AVX2 void scale_avx2(const float *x, const float *w, float *y, int64_t n, float scale,
                               int nt)
{
    __m256 s = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        kd_store256(y + i, scaled8(x + i, w + i, s), nt);
    for (; i < n; i++)
        y[i] = x[i] * scale * w[i];
}

static KD_AVX2 float scale_and_sumsq_avx2(const float *x, const float *w, float *y, int64_t n,
                                          float scale, const float *xn, int nt)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), s = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm_prefetch((const char *)(xn + i + NEXT_ROW_PREFETCH), _MM_HINT_T1);
        __m256 v0 = _mm256_loadu_ps(xn + i), v1 = _mm256_loadu_ps(xn + i + 8);
        a0 = _mm256_fmadd_ps(v0, v0, a0);
        a1 = _mm256_fmadd_ps(v1, v1, a1);
        kd_store256(y + i, scaled8(x + i, w + i, s), nt);
        kd_store256(y + i + 8, scaled8(x + i + 8, w + i + 8, s), nt);
    }
    float ss = kd_hsum256(_mm256_add_ps(a0, a1));
    scale_avx2(x + i, w + i, y + i, n - i, scale, nt);
    for (; i < n; i++)
        ss += xn[i] * xn[i];
    return ss;
}

static KD_AVX512 float sumsq_avx512(const float *x, int64_t n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
        a0 = _mm512_fmadd_ps(v0, v0, a0);
        a1 = _mm512_fmadd_ps(v1, v1, a1);
    }
    float ss = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; i < n; i++)
        ss += x[i] * x[i];
    return ss;
}

static KD_AVX512 __m512 scaled16(const float *x, const float *w, __m512 s)
{
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x), s), _mm512_loadu_ps(w));
}

static KD_AVX512 void scale_avx512(const float *x, const float *w, float *y, int64_t n,
                                   float scale, int nt)
{
    __m512 s = _mm512_set1_ps(scale);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        kd_store512(y + i, scaled16(x + i, w + i, s), nt);
    for (; i < n; i++)
        y[i] = x[i] * scale * w[i];
}

static KD_AVX512 float scale_and_sumsq_avx512(const float *x, const float *w, float *y,
                                              int64_t n, float scale, const float *xn,
                                              int nt)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), s = _mm512_set1_ps(scale);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm_prefetch((const char *)(xn + i + NEXT_ROW_PREFETCH), _MM_HINT_T1);
        _mm_prefetch((const char *)(xn + i + NEXT_ROW_PREFETCH + 16), _MM_HINT_T1);
        __m512 v0 = _mm512_loadu_ps(xn + i), v1 = _mm512_loadu_ps(xn + i + 16);
        a0 = _mm512_fmadd_ps(v0, v0, a0);
        a1 = _mm512_fmadd_ps(v1, v1, a1);
        kd_store512(y + i, scaled16(x + i, w + i, s), nt);
        kd_store512(y + i + 16, scaled16(x + i + 16, w + i + 16, s), nt);
    }
    float ss = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    scale_avx512(x + i, w + i, y + i, n - i, scale, nt);
    for (; i < n; i++)
        ss += xn[i] * xn[i];
    return ss;
}

static const norm_kernels avx2_kernels = {sumsq_avx2, scale_avx2, scale_and_sumsq_avx2};
static const norm_kernels avx512_kernels = {sumsq_avx512, scale_avx512, scale_and_sumsq_avx512};
#endif

/* The SIMD kernels of a level, NULL for the scalar reference. */
static const norm_kernels *kernels_for(kd_simd simd)
{
#ifdef KD_HAVE_X86
    if (simd == KD_SIMD_AVX512)
        return &avx512_kernels;
    if (simd >= KD_SIMD_AVX2)
        return &avx2_kernels;
#endif
    (void)simd;
    return NULL;
}

/* Rows [b, e): each row's sum of squares is taken in the loop that scales the row before. */
static void rmsnorm_rows(void *arg, int64_t b, int64_t e)
{
    const norm_job *j = arg;
    const int64_t n = j->n;
    const norm_kernels *k = kernels_for(j->simd);
    if (!k) {
        for (int64_t r = b; r < e; r++)
            rmsnorm_row_scalar(j->x + r * n, j->w, j->y + r * n, n, j->eps);
        return;
    }
    float ss = k->sumsq(j->x + b * n, n);
    for (int64_t r = b; r < e; r++) {
        const float *x = j->x + r * n;
        float *y = j->y + r * n, scale = inv_rms(ss, n, j->eps);
        if (r + 1 < e)
            ss = k->scale_and_sumsq(x, j->w, y, n, scale, x + n, j->nt);
        else
            k->scale(x, j->w, y, n, scale, j->nt);
    }
#ifdef KD_HAVE_X86
    if (j->nt)
        _mm_sfence(); /* streaming stores are weakly ordered: make them visible first */
#endif
}

/* Single-row kernel for M = 1 (and the scalar reference); the batched kernel spreads
 * rows over the threads in pieces of at least 64K values, since waking a thread costs
 * more than normalizing a smaller piece. */
void kd_cpu_rmsnorm(const kd_cpu_env *e, const kd_call *c, int scalar)
{
    norm_job j = {c->src[0], c->src[1], c->dst, c->n, c->eps, scalar ? KD_SIMD_SCALAR : e->simd,
                  kd_cpu_stream_output(c->dst, c->m, c->n)};
    if (c->m == 1 || scalar)
        rmsnorm_rows(&j, 0, c->m);
    else
        kd_pool_for(e->pool, c->m, (65536 + c->n - 1) / c->n, rmsnorm_rows, &j);
}
