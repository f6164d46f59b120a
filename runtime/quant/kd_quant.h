/* Host-side quant utilities: f16 conversion, row dequantization, a quantizer from f32 (for
 * test data) and a generator of random valid blocks. The per-element decoding they use is
 * kd_blocks.h, the same code the OpenCL and CUDA kernels compile. */
#ifndef KD_QUANT_H
#define KD_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include "kd_blocks.h"
#include "kdispatch.h"

_Static_assert(sizeof(kd_block_q4_K) == KD_Q4K_BLOCK_BYTES, "block_q4_K is 144 bytes in GGUF");
_Static_assert(sizeof(kd_block_q6_K) == KD_Q6K_BLOCK_BYTES, "block_q6_K is 210 bytes in GGUF");
/* the q8 paths' x blocks: whole cache lines, so that no load of qs straddles two */
_Static_assert(sizeof(kd_block_q8) % 64 == 0 && offsetof(kd_block_q8, qs) == 0,
               "kd_block_q8 is whole 64-byte lines with qs first");

uint16_t kd_f32_to_f16(float f); /* round to nearest even */

/* Bytes of one block, of one row of k values (k a multiple of 256); 0 for f32. */
size_t kd_quant_block_bytes(kd_type t);
size_t kd_quant_row_bytes(kd_type t, int64_t k);

/* out[k] = decoded row of k/256 blocks, bit-exact with ggml's dequantize_row_*. */
void kd_dequant_row(kd_type t, const void *blocks, int64_t k, float *out);
/* Quantizes k values (k multiple of 256) into k/256 valid blocks. */
void kd_quantize_row(kd_type t, const float *x, int64_t k, void *out);
/* nblocks random valid blocks (finite scales, any quant bits), reproducible by seed. */
void kd_quant_random_blocks(kd_type t, int64_t nblocks, uint64_t seed, void *out);

#endif
