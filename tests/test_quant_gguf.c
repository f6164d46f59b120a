/* ctest-labels: cpu;gguf */
/* The host dequantizer (kd_dequant_row) is bit-exact with the gguf Python package's
 * gguf.quants.dequantize on Q4_K and Q6_K blocks: random valid blocks, blocks from the
 * host quantizer, and blocks with edge-case f16 scales (zeros, signed zero, subnormals,
 * the largest finite values) and saturated quant bits. The Python side is
 * tests/dequant_ref.py; python3 with gguf and numpy is required (a failure, not a skip). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "kd_quant.h"
#include "kd_test_util.h"

#define BLOCKS_FILE "test_quant_gguf_blocks.bin"
#define VALUES_FILE "test_quant_gguf_values.f32"

/* gguf-py's dequantization of nblocks blocks (caller frees), NULL on failure. */
static float *python_dequant(kd_type t, const void *blocks, int64_t nblocks)
{
    size_t bytes = (size_t)nblocks * kd_quant_block_bytes(t);
    if (kd_test_write_file(BLOCKS_FILE, blocks, bytes) != 0)
        return NULL;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/dequant_ref.py' %s %s %s", KD_SOURCE_DIR,
             t == KD_TYPE_Q4_K ? "q4_k" : "q6_k", BLOCKS_FILE, VALUES_FILE);
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        fprintf(stderr,
                "\nFAILED: tests/dequant_ref.py did not run (status %d). This test needs python3 "
                "with the 'gguf' and 'numpy' packages: run the project's set-up, "
                "scripts/setup.sh, which installs them (by hand: python3 -m pip install gguf "
                "numpy).\n",
                rc == -1 || !WIFEXITED(rc) ? -1 : WEXITSTATUS(rc));
        return NULL;
    }
    size_t got = 0;
    float *v = (float *)kd_test_read_file(VALUES_FILE, &got);
    if (v && got != (size_t)nblocks * KD_QK_K * sizeof(float)) {
        fprintf(stderr, "\ndequant_ref.py wrote %zu bytes, expected %zu\n", got,
                (size_t)nblocks * KD_QK_K * sizeof(float));
        free(v);
        v = NULL;
    }
    remove(BLOCKS_FILE);
    remove(VALUES_FILE);
    return v;
}

/* Number of values whose bits differ; prints the first few. */
static int64_t count_bit_mismatches(const char *what, const float *host, const float *ref,
                                    int64_t n)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t a, b;
        memcpy(&a, &host[i], 4);
        memcpy(&b, &ref[i], 4);
        if (a != b && bad++ < 5)
            printf("\n  %s: value %lld (block %lld): host %a (0x%08x), gguf-py %a (0x%08x)", what,
                   (long long)i, (long long)(i / KD_QK_K), host[i], a, ref[i], b);
    }
    return bad;
}

/* Host vs gguf-py on nblocks blocks: the number of differing values (-1: Python failed). */
static int64_t compare_blocks(const char *what, kd_type t, const void *blocks, int64_t nblocks)
{
    int64_t k = nblocks * KD_QK_K;
    float *host = malloc((size_t)k * sizeof(float));
    CU_ASSERT_FATAL(host != NULL);
    kd_dequant_row(t, blocks, k, host);
    float *ref = python_dequant(t, blocks, nblocks);
    int64_t bad = ref ? count_bit_mismatches(what, host, ref, k) : -1;
    if (ref)
        printf("\n  %-30s %5lld blocks, %7lld values: %lld differ", what, (long long)nblocks,
               (long long)k, (long long)bad);
    free(host);
    free(ref);
    return bad;
}

static const kd_type types[] = {KD_TYPE_Q4_K, KD_TYPE_Q6_K};

static void test_random_blocks(void)
{
    const int64_t nblocks = 1024;
    for (int ti = 0; ti < 2; ti++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            void *b = malloc((size_t)nblocks * kd_quant_block_bytes(types[ti]));
            CU_ASSERT_FATAL(b != NULL);
            kd_quant_random_blocks(types[ti], nblocks, seed, b);
            char what[64];
            snprintf(what, sizeof what, "%s random, seed %llu", kd_type_name(types[ti]),
                     (unsigned long long)seed);
            CU_ASSERT_EQUAL(compare_blocks(what, types[ti], b, nblocks), 0);
            free(b);
        }
}

/* Blocks the host quantizer makes from f32 rows of several magnitudes (and all zeros). */
static void test_quantizer_blocks(void)
{
    const int64_t k = 64 * KD_QK_K;
    float *x = malloc((size_t)k * sizeof(float));
    CU_ASSERT_FATAL(x != NULL);
    uint64_t s = 12345;
    for (int ti = 0; ti < 2; ti++) {
        void *b = malloc(kd_quant_row_bytes(types[ti], k));
        CU_ASSERT_FATAL(b != NULL);
        for (int64_t i = 0; i < k; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            double u = (double)(s >> 11) * 0x1.0p-53 * 2.0 - 1.0;
            /* block j gets magnitude 10^(j%7 - 3); block 5 stays zero */
            int64_t j = i / KD_QK_K;
            static const double mag[7] = {1e-3, 1e-2, 1e-1, 1, 10, 100, 1000};
            x[i] = j == 5 ? 0.0f : (float)(u * mag[j % 7]);
        }
        kd_quantize_row(types[ti], x, k, b);
        char what[64];
        snprintf(what, sizeof what, "%s from the quantizer", kd_type_name(types[ti]));
        CU_ASSERT_EQUAL(compare_blocks(what, types[ti], b, k / KD_QK_K), 0);
        free(b);
    }
    free(x);
}

/* f16 scales at the edges of the format, with random or saturated quant bits. */
static const uint16_t edge_f16[] = {
    0x0000, 0x8000,         /* +0, -0 */
    0x0001, 0x03ff, 0x8001, /* subnormals */
    0x0400, 0x3c00, 0xbc00, /* smallest normal, 1, -1 */
    0x7bff, 0xfbff,         /* largest finite */
};
#define N_EDGE (sizeof edge_f16 / sizeof *edge_f16)

static void put_f16(uint8_t *p, uint16_t h)
{
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

static void test_edge_blocks(void)
{
    /* Q4_K: every (d, dmin) pair, three fillings of scales and quants */
    const int64_t n4 = (int64_t)(N_EDGE * N_EDGE * 3);
    uint8_t *b4 = malloc((size_t)n4 * KD_Q4K_BLOCK_BYTES);
    CU_ASSERT_FATAL(b4 != NULL);
    kd_quant_random_blocks(KD_TYPE_Q4_K, n4, 77, b4);
    int64_t i = 0;
    for (size_t d = 0; d < N_EDGE; d++)
        for (size_t m = 0; m < N_EDGE; m++)
            for (int fill = 0; fill < 3; fill++, i++) {
                uint8_t *blk = b4 + i * KD_Q4K_BLOCK_BYTES;
                if (fill > 0) /* 1: all bits set, 2: all clear (random otherwise) */
                    memset(blk + 4, fill == 1 ? 0xff : 0x00, KD_Q4K_BLOCK_BYTES - 4);
                put_f16(blk, edge_f16[d]);
                put_f16(blk + 2, edge_f16[m]);
            }
    CU_ASSERT_EQUAL(compare_blocks("Q4_K edge scales", KD_TYPE_Q4_K, b4, n4), 0);
    free(b4);

    /* Q6_K: each d, three fillings; d is the last two bytes */
    const int64_t n6 = (int64_t)(N_EDGE * 3);
    uint8_t *b6 = malloc((size_t)n6 * KD_Q6K_BLOCK_BYTES);
    CU_ASSERT_FATAL(b6 != NULL);
    kd_quant_random_blocks(KD_TYPE_Q6_K, n6, 78, b6);
    i = 0;
    for (size_t d = 0; d < N_EDGE; d++)
        for (int fill = 0; fill < 3; fill++, i++) {
            uint8_t *blk = b6 + i * KD_Q6K_BLOCK_BYTES;
            if (fill == 1) { /* quants 63 (all bits), scales -128 */
                memset(blk, 0xff, 192);
                memset(blk + 192, 0x80, 16);
            } else if (fill == 2) { /* quants 0 -> -32, scales 127 */
                memset(blk, 0x00, 192);
                memset(blk + 192, 0x7f, 16);
            }
            put_f16(blk + KD_Q6K_BLOCK_BYTES - 2, edge_f16[d]);
        }
    CU_ASSERT_EQUAL(compare_blocks("Q6_K edge scales", KD_TYPE_Q6_K, b6, n6), 0);
    free(b6);
}

/* The comparison can fail: one value off by one ulp is caught. */
static void test_comparison_detects_error(void)
{
    const int64_t nblocks = 4, k = nblocks * KD_QK_K;
    uint8_t b[4 * KD_Q4K_BLOCK_BYTES];
    kd_quant_random_blocks(KD_TYPE_Q4_K, nblocks, 5, b);
    float *host = malloc((size_t)k * sizeof(float));
    CU_ASSERT_FATAL(host != NULL);
    kd_dequant_row(KD_TYPE_Q4_K, b, k, host);
    float *ref = python_dequant(KD_TYPE_Q4_K, b, nblocks);
    CU_ASSERT_FATAL(ref != NULL);
    CU_ASSERT_EQUAL(count_bit_mismatches("exact", host, ref, k), 0);
    uint32_t bits;
    memcpy(&bits, &host[300], 4);
    bits ^= 1;
    memcpy(&host[300], &bits, 4);
    CU_ASSERT_EQUAL(count_bit_mismatches("one ulp off (expected)", host, ref, k), 1);
    free(host);
    free(ref);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("quant vs gguf-py", NULL, NULL);
    CU_add_test(s, "random valid blocks, bit-exact", test_random_blocks);
    CU_add_test(s, "quantizer's blocks, bit-exact", test_quantizer_blocks);
    CU_add_test(s, "edge-case scales, bit-exact", test_edge_blocks);
    CU_add_test(s, "comparison detects a one-ulp error", test_comparison_detects_error);
    return kd_test_main();
}
