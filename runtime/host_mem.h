/* Host memory for tensors the library owns. Large buffers are put on 2 MiB boundaries and
 * offered to the kernel's transparent huge pages (madvise, Linux): a GEMV streams its
 * weights once per call, and with 4 KiB pages every 4 KiB of weights costs a TLB miss. On
 * the development machine (Zen 4, 2 threads) the q8 GEMV over 33-48 MB of weights ran up
 * to 11 % faster in 2 MiB pages than in 4 KiB ones (6 % in the middle of 16 cases, slower
 * in none; median of 41, the same bytes in both alternating in one process). Where huge
 * pages are off (transparent_hugepage=never) the advice is ignored. */
#ifndef KD_HOST_MEM_H
#define KD_HOST_MEM_H

#include <stddef.h>

/* From this size on a buffer is put in huge pages: the rounding up to whole 2 MiB pages
 * then costs at most a third of it. */
#define KD_HOST_HUGE_MIN ((size_t)4 << 20)
#define KD_HOST_HUGE_PAGE ((size_t)2 << 20)

/* nbytes (> 0) of memory aligned to 64 bytes, and with huge set, to KD_HOST_HUGE_PAGE with
 * the huge-page advice from KD_HOST_HUGE_MIN on (huge: the context's KD_HUGE_PAGES, on
 * unless a user turns it off, e.g. where the rounding up or the kernel's compaction
 * costs more than the TLB misses); NULL when out of memory. Freed with free(). */
void *kd_host_alloc(size_t nbytes, int huge);

/* The host's transparent huge page mode as the kernel names it ("always", "madvise",
 * "never"), or "" where it has none (not Linux, or no sysfs entry): whether the advice
 * above takes effect ("madvise", "always"). Writes at most cap bytes. */
void kd_host_huge_page_mode(char *out, size_t cap);

#endif
