/* Built-in model shapes for compare and bench (hidden, intermediate, heads, head size). */
#ifndef KD_MODEL_SHAPES_H
#define KD_MODEL_SHAPES_H

#include <stdint.h>
#include <string.h>

#include "kdispatch.h"

typedef struct kd_model_shape {
    const char *name;
    const char *like;
    int64_t hidden, intermediate;
    int heads, head_dim;
} kd_model_shape;

static const kd_model_shape kd_model_shapes[] = {
    {"0.5b", "Qwen2-0.5B", 896, 4864, 14, 64},
    {"1.5b", "Qwen2-1.5B", 1536, 8960, 12, 128},
    {"8b", "Llama-3-8B", 4096, 14336, 32, 128},
};

static inline const kd_model_shape *kd_model_shape_find(const char *name)
{
    for (size_t i = 0; i < sizeof kd_model_shapes / sizeof *kd_model_shapes; i++)
        if (strcmp(kd_model_shapes[i].name, name) == 0)
            return &kd_model_shapes[i];
    return NULL;
}

/* The op's first problem dimensions for a model: n (GEMV: output rows N) and k (GEMV: K;
 * rope: head size). Q4_K GEMV is the FFN up projection (K = hidden), Q6_K the FFN down
 * projection (K = intermediate), as in a Q4_K_M file (kd_model_op_shapes below adds
 * Q4_K's share of the down projections). K-quant rows hold whole blocks of
 * 256, so when the hidden size is not a multiple of 256 (Qwen2-0.5B's 896) the Q4_K GEMV
 * takes the down projection's shape too, as llama.cpp does by quantizing those weights
 * with another type. */
static inline void kd_model_op_dims(const kd_model_shape *s, kd_op op, int64_t *n, int64_t *k)
{
    int hidden_fits = s->hidden % 256 == 0;
    switch (op) {
    case KD_OP_ROPE: *n = (int64_t)s->heads * s->head_dim; *k = s->head_dim; break;
    case KD_OP_SWIGLU: *n = s->intermediate; *k = 0; break;
    case KD_OP_Q4K_GEMV:
        *n = hidden_fits ? s->intermediate : s->hidden;
        *k = hidden_fits ? s->hidden : s->intermediate;
        break;
    case KD_OP_Q6K_GEMV: *n = s->hidden; *k = s->intermediate; break;
    default: *n = s->hidden; *k = 0; break;
    }
}

/* Every shape a model gives op (1 or 2; n[i] x k[i] as kd_model_op_dims). Q4_K also takes
 * the FFN down projection (K = intermediate) when the up projection fits: a Q4_K_M file
 * keeps ffn_down in Q4_K in about half of the layers (llama.cpp gives Q6_K to the first
 * and last eighth and to every third layer between), so its long rows are a real shape, and
 * the one where a K-dependent bug shows (an OpenCL pre-pass once failed from K > 8192). */
static inline int kd_model_op_shapes(const kd_model_shape *s, kd_op op, int64_t n[2], int64_t k[2])
{
    kd_model_op_dims(s, op, &n[0], &k[0]);
    if (op != KD_OP_Q4K_GEMV || s->hidden % 256 || s->intermediate % 256)
        return 1;
    kd_model_op_dims(s, KD_OP_Q6K_GEMV, &n[1], &k[1]);
    return 2;
}

#endif
