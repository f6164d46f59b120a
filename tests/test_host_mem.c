/* The library's host buffers (host_mem.h): 64-byte alignment always; from
 * KD_HOST_HUGE_MIN on, 2 MiB alignment and the huge-page advice, checked in the kernel's
 * own account of the mapping (/proc/self/smaps, THPeligible) where the host has
 * transparent huge pages. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_mem.h"
#include "kd_internal.h"
#include "kd_quant.h"
#include "kd_test_util.h"

/* THPeligible of the mapping that holds p: 0 or 1, -1 if not found. */
static int thp_eligible(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    int inside = 0, eligible = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        else if (inside && sscanf(line, "THPeligible: %d", &eligible) == 1)
            break;
    }
    fclose(f);
    return eligible;
}

static void test_small_buffers_64_byte_aligned(void)
{
    const size_t sizes[] = {1, 63, 4096, KD_HOST_HUGE_MIN - 1};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned char *p = kd_host_alloc(sizes[i], 1);
        CU_ASSERT_FATAL(p != NULL);
        CU_ASSERT_EQUAL((uintptr_t)p % 64, 0);
        memset(p, 0xa5, sizes[i]); /* the whole size is ours (ASan checks) */
        free(p);
    }
}

static void test_large_buffers_on_huge_page_boundaries(void)
{
    const size_t sizes[] = {KD_HOST_HUGE_MIN, KD_HOST_HUGE_MIN + 1, (size_t)33 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned char *p = kd_host_alloc(sizes[i], 1);
        CU_ASSERT_FATAL(p != NULL);
        CU_ASSERT_EQUAL((uintptr_t)p % KD_HOST_HUGE_PAGE, 0);
        memset(p, 0x5a, sizes[i]);
        free(p);
        /* without huge pages: 64 bytes, and the size asked for (ASan sees any rounding) */
        p = kd_host_alloc(sizes[i], 0);
        CU_ASSERT_FATAL(p != NULL);
        CU_ASSERT_EQUAL((uintptr_t)p % 64, 0);
        memset(p, 0x5a, sizes[i]);
        free(p);
    }
    CU_ASSERT_PTR_NULL(kd_host_alloc(SIZE_MAX - 10, 1)); /* no wrap in the rounding */
}

/* The copies the library makes (weights from kd_tensor_quant, f32 tensors) get the
 * advice; a malloc'd buffer of the same size does not (so the check can fail). Where
 * the mode is "always" every large mapping is eligible and only the first half holds. */
static void test_huge_page_advice_reaches_the_kernel(void)
{
    char mode[32];
    kd_host_huge_page_mode(mode, sizeof mode);
    kd_context *ctx = kd_test_cpu_context();
    CU_ASSERT_FATAL(ctx != NULL);
    const int64_t n = 4096, k = 4096; /* 9 MiB of Q4_K */
    size_t nbytes = (size_t)n * kd_quant_row_bytes(KD_TYPE_Q4_K, k);
    unsigned char *blocks = malloc(nbytes);
    CU_ASSERT_FATAL(blocks != NULL);
    kd_quant_random_blocks(KD_TYPE_Q4_K, (int64_t)(nbytes / KD_Q4K_BLOCK_BYTES), 7, blocks);
    kd_tensor *w = NULL, *x = NULL;
    CU_ASSERT_FATAL(kd_tensor_quant(ctx, KD_TYPE_Q4_K, n, k, blocks, nbytes, &w) == KD_OK);
    CU_ASSERT_FATAL(kd_tensor_f32(ctx, 1024, 2048, NULL, &x) == KD_OK); /* 8 MiB */
    CU_ASSERT_EQUAL((uintptr_t)w->host % KD_HOST_HUGE_PAGE, 0);
    CU_ASSERT_EQUAL(thp_eligible(w->host), 1);
    CU_ASSERT_EQUAL(thp_eligible(x->host), 1);
    if (strcmp(mode, "madvise") == 0)
        CU_ASSERT_EQUAL(thp_eligible(blocks), 0);
    kd_tensor_free(w);
    kd_tensor_free(x);
    free(blocks);
    kd_context_destroy(ctx);
}

/* KD_HUGE_PAGES=off: the same tensors are not advised (madvise mode: not eligible; test_env
 * checks that a value other than on/off is refused). */
static void test_huge_pages_off(void)
{
    char mode[32];
    kd_host_huge_page_mode(mode, sizeof mode);
    kd_test_env e = kd_test_env_set("KD_HUGE_PAGES", "off");
    kd_context *ctx = kd_test_cpu_context();
    CU_ASSERT_FATAL(ctx != NULL);
    CU_ASSERT_EQUAL(ctx->settings.huge_pages, 0);
    kd_tensor *x = NULL;
    CU_ASSERT_FATAL(kd_tensor_f32(ctx, 1024, 2048, NULL, &x) == KD_OK); /* 8 MiB */
    if (strcmp(mode, "madvise") == 0)
        CU_ASSERT_EQUAL(thp_eligible(x->host), 0);
    kd_tensor_free(x);
    kd_context_destroy(ctx);
    kd_test_env_restore(&e);
}

/* The mode as sysfs says it, brackets off; a buffer too small for it gets "". */
static void test_huge_page_mode(void)
{
    char mode[32], tiny[3] = "xx";
    kd_host_huge_page_mode(mode, sizeof mode);
    printf("\n  transparent huge pages: '%s'", mode);
    CU_ASSERT(mode[0] == 0 || strcmp(mode, "always") == 0 || strcmp(mode, "madvise") == 0 ||
              strcmp(mode, "never") == 0);
    kd_host_huge_page_mode(tiny, sizeof tiny);
    CU_ASSERT(tiny[0] == 0 || strlen(tiny) < sizeof tiny);
    CU_ASSERT(mode[0] == 0 || tiny[0] == 0); /* no mode name fits in 2 characters */
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("host_mem", NULL, NULL);
    CU_add_test(s, "the huge page mode from sysfs", test_huge_page_mode);
    CU_add_test(s, "small buffers: 64-byte aligned", test_small_buffers_64_byte_aligned);
    CU_add_test(s, "large buffers: 2 MiB aligned", test_large_buffers_on_huge_page_boundaries);
    char mode[32];
    kd_host_huge_page_mode(mode, sizeof mode);
    int here = 0; /* a mapping that surely exists: does smaps say THPeligible (Linux 5.0+)? */
    const int have_field = thp_eligible(&here) >= 0;
    if ((strcmp(mode, "madvise") == 0 || strcmp(mode, "always") == 0) && have_field) {
        CU_add_test(s, "tensors' buffers advised for huge pages", test_huge_page_advice_reaches_the_kernel);
        CU_add_test(s, "KD_HUGE_PAGES=off: not advised", test_huge_pages_off);
    }
    else
        printf("not tested here: the huge-page advice (transparent huge pages: %s; "
               "THPeligible in /proc/self/smaps: %s)\n",
               mode[0] ? mode : "not in sysfs", have_field ? "yes" : "no");
    return kd_test_main();
}
