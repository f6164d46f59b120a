/* Seeded, reproducible op problems with host copies of their inputs. */
#include <stdlib.h>
#include <string.h>

#include "kd_oracle.h"
#include "kd_quant.h"
#include "op_traits.h"

void kd_rng_seed(kd_rng *r, uint64_t seed) { r->s = seed * 0x9e3779b97f4a7c15ull + 1; }

uint64_t kd_rng_next(kd_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float kd_rng_uniform(kd_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)(kd_rng_next(r) >> 40) / 16777216.0f;
}

void kd_fill_uniform(kd_rng *r, float *x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = kd_rng_uniform(r, lo, hi);
}

static int make_f32(kd_context *ctx, kd_rng *rng, int64_t rows, int64_t cols, float lo, float hi,
                    float **host, kd_tensor **t)
{
    *host = malloc(sizeof(float) * (size_t)(rows * cols));
    if (!*host)
        return -1;
    kd_fill_uniform(rng, *host, rows * cols, lo, hi);
    return kd_tensor_f32(ctx, rows, cols, *host, t) == KD_OK ? 0 : -1;
}

static int make_gemv(kd_context *ctx, kd_rng *rng, kd_op op, kd_problem *p)
{
    kd_type t = kd_op_traits_of(op)->weight_type;
    p->blocks_bytes = (size_t)p->n * kd_quant_row_bytes(t, p->k);
    p->h_blocks = malloc(p->blocks_bytes);
    if (!p->h_blocks)
        return -1;
    kd_quant_random_blocks(t, p->n * (p->k / 256), kd_rng_next(rng), p->h_blocks);
    if (kd_tensor_quant(ctx, t, p->n, p->k, p->h_blocks, p->blocks_bytes, &p->src[0]) != KD_OK)
        return -1;
    if (make_f32(ctx, rng, p->m, p->k, -1.0f, 1.0f, &p->h_src[1], &p->src[1]))
        return -1;
    p->out_count = p->m * p->n;
    return kd_tensor_f32(ctx, p->m, p->n, NULL, &p->dst) == KD_OK ? 0 : -1;
}

int kd_problem_make(kd_context *ctx, kd_op op, int64_t m, int64_t n, int64_t k, uint64_t seed,
                    kd_problem *p)
{
    kd_rng rng;
    kd_rng_seed(&rng, seed);
    memset(p, 0, sizeof *p);
    p->m = m;
    p->n = n;
    p->k = kd_op_is_gemv(op) ? k : 0;
    p->d.op = op;
    if (kd_op_is_gemv(op)) {
        if (make_gemv(ctx, &rng, op, p))
            return -1;
    } else {
        if (make_f32(ctx, &rng, m, n, -2.0f, 2.0f, &p->h_src[0], &p->src[0]))
            return -1;
        int64_t rows1 = op == KD_OP_RMSNORM ? 1 : m;
        if (op != KD_OP_ROPE && make_f32(ctx, &rng, rows1, n, -2.0f, 2.0f, &p->h_src[1], &p->src[1]))
            return -1;
        p->out_count = m * n;
        if (kd_tensor_f32(ctx, m, n, NULL, &p->dst) != KD_OK)
            return -1;
    }
    if (op == KD_OP_ROPE) {
        p->d.head_dim = k > 0 ? (int)k : 64;
        p->d.n_heads = (int)(n / p->d.head_dim);
        p->d.rope_mode = (seed & 1) ? KD_ROPE_NEOX : KD_ROPE_NORMAL;
        p->pos = malloc(sizeof(uint32_t) * (size_t)m);
        if (!p->pos)
            return -1;
        for (int64_t i = 0; i < m; i++)
            p->pos[i] = (uint32_t)(kd_rng_next(&rng) % 4096);
        p->d.pos = p->pos;
    }
    p->d.src[0] = p->src[0];
    p->d.src[1] = p->src[1];
    p->d.dst = p->dst;
    return 0;
}

void kd_problem_free(kd_problem *p)
{
    for (int i = 0; i < 2; i++) {
        kd_tensor_free(p->src[i]);
        free(p->h_src[i]);
    }
    kd_tensor_free(p->dst);
    free(p->h_blocks);
    free(p->pos);
    memset(p, 0, sizeof *p);
}

double *kd_problem_oracle(const kd_problem *p)
{
    double *y = malloc(sizeof(double) * (size_t)p->out_count);
    if (!y)
        return NULL;
    const void *s0 = kd_op_is_gemv(p->d.op) ? p->h_blocks : (const void *)p->h_src[0];
    kd_oracle_run(&p->d, s0, p->h_src[1], p->m, p->n, p->k, y);
    return y;
}

float *kd_problem_run(kd_context *ctx, kd_problem *p, kd_backend_id b, unsigned flags,
                      kd_status *st)
{
    *st = kd_run(ctx, &p->d, b, flags);
    if (*st != KD_OK)
        return NULL;
    float *y = malloc(sizeof(float) * (size_t)p->out_count);
    if (!y) {
        *st = KD_ERR_NOMEM;
        return NULL;
    }
    if ((*st = kd_tensor_read(ctx, p->dst, y, (size_t)p->out_count)) != KD_OK) {
        free(y);
        return NULL;
    }
    return y;
}

