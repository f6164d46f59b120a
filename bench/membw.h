/* The host's memory read bandwidth and cache sizes: the ceiling and the sweep points of
 * kdispatch bench. */
#ifndef KD_BENCH_MEMBW_H
#define KD_BENCH_MEMBW_H
#include <stddef.h>

#include <stdint.h>

/* A buffer far larger than the last-level cache, kept so that the bandwidth can be
 * measured again during a run (kdispatch bench: around each headline case on host memory,
 * on machines whose bandwidth drifts). */
typedef struct kd_membw {
    uint64_t *buf;
    size_t bytes;
    int threads; /* one per CPU the process may use (host_cpus.h), counted at open */
} kd_membw;

/* Allocates and touches `bytes`; huge: in the pages the library's tensors get (kd_host_alloc,
 * KD_HUGE_PAGES). 0, or -1 when out of memory. */
int kd_membw_open(kd_membw *m, size_t bytes, int huge);
/* Bytes per second read from the buffer by m->threads threads; best of `passes`. */
double kd_membw_read(const kd_membw *m, int passes);
void kd_membw_close(kd_membw *m);

typedef struct kd_host_caches {
    long long l1d, l2, llc; /* bytes; 0 when unknown */
    int llc_level;          /* level of the last-level cache (2 or 3 usually) */
    int from_sysfs;         /* 0: sysfs had nothing, the sizes are assumed */
} kd_host_caches;

/* Data/unified cache sizes of cpu0 from /sys/devices/system/cpu/cpu0/cache/index<i>/
 * {level,type,size} (sysfs_root NULL: that path; tests can pass another root). When
 * nothing can be read: L2 512 KiB and LLC 8 MiB, from_sysfs = 0. */
void kd_host_caches_read(const char *sysfs_root, kd_host_caches *out);

/* The CPU's model name from /proc/cpuinfo ("unknown cpu" if absent). */
void kd_host_cpu_model(char *buf, size_t cap);

/* Parses a sysfs cache size ("32K", "512K", "32768K", "8M", "1024"); 0 if malformed. */
long long kd_parse_cache_size(const char *s);

#endif
