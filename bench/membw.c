/* The machine's memory read bandwidth: every thread sums its slice of a buffer far larger
 * than the last-level cache; best of several passes. */
#include "membw.h"
#include "host_cpus.h"
#include "host_mem.h"

#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KD_MEMBW_MAX_THREADS 64

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct slice { const uint64_t *p; size_t n; uint64_t sum; } slice;

#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint64_t *p, size_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 4)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 8)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 12)));
    }
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out,
                        _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
    uint64_t s = out[0] + out[1] + out[2] + out[3];
    for (; i < n; i++)
        s += p[i];
    return s;
}
#endif

static void *read_slice(void *arg)
{
    slice *s = arg;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) {
        s->sum = sum_avx2(s->p, s->n);
        return NULL;
    }
#endif
    uint64_t acc = 0;
    for (size_t i = 0; i < s->n; i++)
        acc += s->p[i];
    s->sum = acc;
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int kd_membw_open(kd_membw *m, size_t bytes, int huge)
{
    kd_host_cpus cpus; /* a thread per CPU the process may use: the bandwidth it can get */
    kd_host_cpus_read(&cpus);
    m->threads = cpus.usable < KD_MEMBW_MAX_THREADS ? cpus.usable : KD_MEMBW_MAX_THREADS;
    m->bytes = bytes;
    m->buf = kd_host_alloc(bytes, huge); /* the pages the library's tensors get */
    if (!m->buf)
        return -1;
    memset(m->buf, 1, bytes); /* touch every page before timing */
    return 0;
}

double kd_membw_read(const kd_membw *m, int passes)
{
    const long nthreads = m->threads;
    size_t words = m->bytes / sizeof(uint64_t), per = words / (size_t)nthreads / 16 * 16;
    double best = 0;
    volatile uint64_t sink = 0;
    for (int pass = 0; pass < passes; pass++) {
        pthread_t th[KD_MEMBW_MAX_THREADS];
        slice sl[KD_MEMBW_MAX_THREADS];
        double t0 = now_s();
        for (long t = 0; t < nthreads; t++) {
            sl[t] = (slice){m->buf + (size_t)t * per, per, 0};
            pthread_create(&th[t], NULL, read_slice, &sl[t]);
        }
        for (long t = 0; t < nthreads; t++) {
            pthread_join(th[t], NULL);
            sink += sl[t].sum;
        }
        double bw = (double)(per * (size_t)nthreads * sizeof(uint64_t)) / (now_s() - t0);
        if (bw > best)
            best = bw;
    }
    (void)sink;
    return best;
}

void kd_membw_close(kd_membw *m)
{
    free(m->buf);
    m->buf = NULL;
}

/* ---- cache sizes and cpu model ------------------------------------------------------------ */

long long kd_parse_cache_size(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v <= 0)
        return 0;
    switch (*end) {
    case 'K': case 'k': v <<= 10; end++; break;
    case 'M': case 'm': v <<= 20; end++; break;
    case 'G': case 'g': v <<= 30; end++; break;
    default: break;
    }
    while (*end == '\n' || *end == ' ')
        end++;
    return *end ? 0 : v;
}

/* The first line of a small text file, without its newline; 0 if unreadable. */
static int read_line(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    if (ok)
        buf[strcspn(buf, "\n")] = '\0';
    return ok;
}

void kd_host_caches_read(const char *sysfs_root, kd_host_caches *out)
{
    const char *root = sysfs_root ? sysfs_root : "/sys/devices/system/cpu/cpu0/cache";
    *out = (kd_host_caches){0};
    for (int i = 0; i < 16; i++) {
        char path[512], level[32], type[32], size[32];
        snprintf(path, sizeof path, "%s/index%d/level", root, i);
        if (!read_line(path, level, sizeof level))
            continue;
        snprintf(path, sizeof path, "%s/index%d/type", root, i);
        if (!read_line(path, type, sizeof type) || strcmp(type, "Instruction") == 0)
            continue;
        snprintf(path, sizeof path, "%s/index%d/size", root, i);
        long long bytes = read_line(path, size, sizeof size) ? kd_parse_cache_size(size) : 0;
        int lv = atoi(level);
        if (bytes <= 0 || lv < 1)
            continue;
        out->from_sysfs = 1;
        if (lv == 1)
            out->l1d = bytes;
        else if (lv == 2)
            out->l2 = bytes;
        if (lv >= out->llc_level && lv >= 2) {
            out->llc_level = lv;
            out->llc = bytes;
        }
    }
    if (!out->l2)
        out->l2 = 512ll << 10;
    if (!out->llc) {
        out->llc = out->l2 > (8ll << 20) ? out->l2 : 8ll << 20;
        out->llc_level = out->llc == out->l2 ? 2 : 3;
    }
}

void kd_host_cpu_model(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            colon += 1 + (colon[1] == ' ');
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(buf, cap, "%s", colon);
            break;
        }
    }
    fclose(f);
}
