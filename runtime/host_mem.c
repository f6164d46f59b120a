#include "host_mem.h"

#include <stdint.h>
#include <stdlib.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

void *kd_host_alloc(size_t nbytes)
{
    if (nbytes < KD_HOST_HUGE_MIN)
        return aligned_alloc(64, (nbytes + 63) & ~(size_t)63);
    if (nbytes > SIZE_MAX - KD_HOST_HUGE_PAGE)
        return NULL;
    size_t size = (nbytes + KD_HOST_HUGE_PAGE - 1) & ~(KD_HOST_HUGE_PAGE - 1);
    void *p = aligned_alloc(KD_HOST_HUGE_PAGE, size);
#ifdef MADV_HUGEPAGE
    if (p)
        (void)madvise(p, size, MADV_HUGEPAGE); /* advice: a refusal changes nothing */
#endif
    return p;
}
