#ifndef KD_BENCH_MEMBW_H
#define KD_BENCH_MEMBW_H
#include <stddef.h>
/* Bytes per second read from a buffer of `bytes` by every core; best of `passes`. */
double kd_measure_read_bandwidth(size_t bytes, int passes);
#endif
