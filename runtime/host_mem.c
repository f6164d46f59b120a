#include "host_mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

void *kd_host_alloc(size_t nbytes, int huge)
{
    if (nbytes < KD_HOST_HUGE_MIN || !huge)
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

void kd_host_huge_page_mode(char *out, size_t cap)
{
    if (!cap)
        return;
    out[0] = 0;
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f)
        return;
    char line[128];
    if (fgets(line, sizeof line, f)) { /* "always [madvise] never": the mode in brackets */
        const char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
        if (b && (size_t)(b - a - 1) < cap)
            snprintf(out, cap, "%.*s", (int)(b - a - 1), a + 1);
    }
    fclose(f);
}
