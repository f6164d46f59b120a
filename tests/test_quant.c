/* ctest-labels: cpu */
/* Quant formats: block sizes, f16 conversion, the shared element decoder against a
 * straight transcription of ggml's loops, the quantizer's accuracy, random block validity. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kd_quant.h"
#include "kd_row_groups.h"
#include "kd_test_util.h"

static void test_block_layout(void)
{
    CU_ASSERT_EQUAL(sizeof(kd_block_q4_K), 144);
    CU_ASSERT_EQUAL(sizeof(kd_block_q6_K), 210);
    CU_ASSERT_EQUAL(offsetof(kd_block_q4_K, scales), 4);
    CU_ASSERT_EQUAL(offsetof(kd_block_q4_K, qs), 16);
    CU_ASSERT_EQUAL(offsetof(kd_block_q6_K, qh), 128);
    CU_ASSERT_EQUAL(offsetof(kd_block_q6_K, scales), 192);
    CU_ASSERT_EQUAL(offsetof(kd_block_q6_K, d), 208);
    CU_ASSERT_EQUAL(kd_quant_row_bytes(KD_TYPE_Q6_K, 512), 420);
}

static void test_f16_round_trip(void)
{
    /* Every finite f16 converts to f32 and back unchanged. */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00)
            continue;
        float f = kd_f16_to_f32((uint16_t)h);
        CU_ASSERT_EQUAL_FATAL(kd_f32_to_f16(f), (uint16_t)h);
    }
    CU_ASSERT_EQUAL(kd_f16_to_f32(0x3c00), 1.0f);
    CU_ASSERT_EQUAL(kd_f16_to_f32(0xc000), -2.0f);
    CU_ASSERT_EQUAL(kd_f16_to_f32(0x0001), 5.9604644775390625e-8f);
    CU_ASSERT(isinf(kd_f16_to_f32(0x7c00)));
    CU_ASSERT(isnan(kd_f16_to_f32(0x7e00)));
    CU_ASSERT_EQUAL(kd_f32_to_f16(1.0f + 1.0f / 4096), 0x3c00); /* ties to even */
    CU_ASSERT_EQUAL(kd_f32_to_f16(65520.0f), 0x7c00);           /* overflow -> inf */
}

/* ggml's dequantize_row_q4_K / q6_K loops, transcribed from the format description,
 * independent of kd_blocks.h's index arithmetic. */
static void ref_q4k(const kd_block_q4_K *b, float *y)
{
    float d = kd_f16_to_f32(b->d), dmin = kd_f16_to_f32(b->dmin);
    const uint8_t *q = b->qs;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
        int sc[2], m[2];
        for (int t = 0; t < 2; t++) {
            int k = is + t;
            sc[t] = k < 4 ? b->scales[k] & 63 : (b->scales[k + 4] & 0xF) | ((b->scales[k - 4] >> 6) << 4);
            m[t] = k < 4 ? b->scales[k + 4] & 63 : (b->scales[k + 4] >> 4) | ((b->scales[k] >> 6) << 4);
        }
        for (int l = 0; l < 32; l++)
            *y++ = d * sc[0] * (q[l] & 0xF) - dmin * m[0];
        for (int l = 0; l < 32; l++)
            *y++ = d * sc[1] * (q[l] >> 4) - dmin * m[1];
    }
}

static void ref_q6k(const kd_block_q6_K *b, float *y)
{
    float d = kd_f16_to_f32(b->d);
    const uint8_t *ql = b->ql, *qh = b->qh;
    const int8_t *sc = b->scales;
    for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
}

static void test_decoder_matches_ggml_loops(void)
{
    enum { NB = 64 };
    kd_block_q4_K q4[NB];
    kd_block_q6_K q6[NB];
    kd_quant_random_blocks(KD_TYPE_Q4_K, NB, 11, q4);
    kd_quant_random_blocks(KD_TYPE_Q6_K, NB, 12, q6);
    float a[256 * NB], b[256 * NB];
    kd_dequant_row(KD_TYPE_Q4_K, q4, 256 * NB, a);
    for (int i = 0; i < NB; i++)
        ref_q4k(&q4[i], b + 256 * i);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    kd_dequant_row(KD_TYPE_Q6_K, q6, 256 * NB, a);
    for (int i = 0; i < NB; i++)
        ref_q6k(&q6[i], b + 256 * i);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
}

static void check_quantizer(kd_type t, double max_rel)
{
    enum { K = 1024 };
    float x[K], y[K];
    kd_rng rng;
    kd_rng_seed(&rng, 3);
    kd_fill_uniform(&rng, x, K, -1.5f, 2.0f);
    unsigned char blocks[4 * 210];
    kd_quantize_row(t, x, K, blocks);
    kd_dequant_row(t, blocks, K, y);
    double err = 0, amax = 0;
    for (int i = 0; i < K; i++) {
        CU_ASSERT_FATAL(isfinite(y[i]));
        err = fmax(err, fabs((double)y[i] - x[i]));
        amax = fmax(amax, fabs(x[i]));
    }
    CU_ASSERT(err <= max_rel * amax);
}

static void test_quantizer_round_trip(void)
{
    check_quantizer(KD_TYPE_Q4_K, 0.12); /* 4 bits: step ~ range/15 */
    check_quantizer(KD_TYPE_Q6_K, 0.04); /* 6 bits: step ~ amax/31 */
}

static void test_random_blocks_are_valid(void)
{
    enum { NB = 256 };
    void *b4 = malloc(NB * 144), *b6 = malloc(NB * 210), *again = malloc(NB * 210);
    float *y = malloc(sizeof(float) * 256 * NB);
    kd_quant_random_blocks(KD_TYPE_Q4_K, NB, 5, b4);
    kd_quant_random_blocks(KD_TYPE_Q6_K, NB, 5, b6);
    kd_quant_random_blocks(KD_TYPE_Q6_K, NB, 5, again);
    CU_ASSERT_EQUAL(memcmp(b6, again, NB * 210), 0); /* reproducible */
    kd_dequant_row(KD_TYPE_Q4_K, b4, 256 * NB, y);
    for (int i = 0; i < 256 * NB; i++)
        CU_ASSERT_FATAL(isfinite(y[i]) && fabsf(y[i]) < 100.0f);
    kd_dequant_row(KD_TYPE_Q6_K, b6, 256 * NB, y);
    for (int i = 0; i < 256 * NB; i++)
        CU_ASSERT_FATAL(isfinite(y[i]) && fabsf(y[i]) < 100.0f);
    free(b4);
    free(b6);
    free(again);
    free(y);
}

/* Row groups (kd_row_groups.h): 19 rows of 3 blocks of 5 bytes, the first 16 grouped.
 * Each block's place is checked against the layout written out by hand, then unpacking
 * must give the GGUF bytes back; from 33 blocks per row on, copies are grouped. */
static void test_row_groups(void)
{
    enum { ROWS = 19, NB = 3, BB = 5, GROUPED = 16 };
    unsigned char gguf[ROWS * NB * BB], packed[ROWS * NB * BB], back[ROWS * NB * BB];
    for (int i = 0; i < ROWS * NB * BB; i++)
        gguf[i] = (unsigned char)(i * 7 + 3);
    kd_row_groups_pack(packed, gguf, ROWS, NB, BB, GROUPED);
    for (int r = 0; r < ROWS; r++)
        for (int b = 0; b < NB; b++) {
            /* group r / 8 holds 8 rows x NB blocks; inside it block b of all 8 rows, then b + 1 */
            int want = r < GROUPED ? (r / 8) * 8 * NB + b * 8 + r % 8 : r * NB + b;
            CU_ASSERT_EQUAL(kd_row_first_block(r, NB, GROUPED) + b * kd_row_block_step(r, GROUPED), want);
            CU_ASSERT(memcmp(packed + want * BB, gguf + (r * NB + b) * BB, BB) == 0);
        }
    CU_ASSERT(memcmp(packed, gguf, sizeof gguf) != 0);
    kd_row_groups_unpack(back, packed, ROWS, NB, BB, GROUPED);
    CU_ASSERT(memcmp(back, gguf, sizeof gguf) == 0);
    CU_ASSERT_EQUAL(kd_row_groups_rows(19, 256 * KD_ROW_GROUP_MIN_BLOCKS), 0);
    CU_ASSERT_EQUAL(kd_row_groups_rows(19, 256 * (KD_ROW_GROUP_MIN_BLOCKS + 1)), 16);
    CU_ASSERT_EQUAL(kd_row_groups_rows(7, 256 * 56), 0);
    CU_ASSERT_EQUAL(kd_row_groups_rows(4096, 256 * 56), 4096);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("quant", NULL, NULL);
    CU_add_test(s, "block layout", test_block_layout);
    CU_add_test(s, "row groups: placement, round trip, when", test_row_groups);
    CU_add_test(s, "f16 round trip", test_f16_round_trip);
    CU_add_test(s, "decoder matches ggml's loops", test_decoder_matches_ggml_loops);
    CU_add_test(s, "quantizer round trip", test_quantizer_round_trip);
    CU_add_test(s, "random blocks are valid", test_random_blocks_are_valid);
    return kd_test_main();
}
