/* The runtime's one clock: monotonic nanoseconds, for durations (metrics latency, program
 * build time, the thread pool's spin limit). */
#ifndef KD_CLOCK_H
#define KD_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t kd_monotonic_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

#endif
