/* The dispatcher: validates an op, chooses its backend (config.c's pure decision), runs
 * it there with its operands made resident, records metrics, and falls back to cpu when
 * an offload fails. */
#include <math.h>
#include <string.h>

#include "kd_clock.h"
#include "kd_internal.h"
#include "op_traits.h"

/* Shape of a validated op: m rows of batch, n row length (GEMV: N), k (GEMV K). */
typedef struct op_shape { int64_t m, n, k; } op_shape;

static kd_status need_f32(kd_context *ctx, const kd_tensor *t, const char *what)
{
    if (!t)
        return kd_error(ctx, KD_ERR_NULL, "%s: tensor is NULL", what);
    if (t->type != KD_TYPE_F32)
        return kd_error(ctx, KD_ERR_TYPE, "%s: must be f32, is %s", what, kd_type_name(t->type));
    return KD_OK;
}

static kd_status need_shape(kd_context *ctx, const kd_tensor *t, int64_t rows, int64_t cols,
                            const char *what)
{
    if (t->rows != rows || t->cols != cols)
        return kd_error(ctx, KD_ERR_SHAPE, "%s: shape %lld x %lld, expected %lld x %lld", what,
                        (long long)t->rows, (long long)t->cols, (long long)rows, (long long)cols);
    return KD_OK;
}

#define TRY(x)                     \
    do {                           \
        kd_status st_ = (x);       \
        if (st_ != KD_OK)          \
            return st_;            \
    } while (0)

static kd_status validate_gemv(kd_context *ctx, const kd_op_desc *d, op_shape *s)
{
    kd_type want = kd_op_traits_of(d->op)->weight_type;
    const kd_tensor *w = d->src[0], *x = d->src[1];
    if (!w)
        return kd_error(ctx, KD_ERR_NULL, "%s: weight is NULL", kd_op_name(d->op));
    if (w->type != want)
        return kd_error(ctx, KD_ERR_TYPE, "%s: weight must be %s, is %s", kd_op_name(d->op),
                        kd_type_name(want), kd_type_name(w->type));
    TRY(need_f32(ctx, x, "gemv x"));
    TRY(need_f32(ctx, d->dst, "gemv y"));
    if (x->cols != w->cols)
        return kd_error(ctx, KD_ERR_SHAPE, "%s: x has %lld columns, weight K = %lld",
                        kd_op_name(d->op), (long long)x->cols, (long long)w->cols);
    if (w->cols % 256 != 0)
        return kd_error(ctx, KD_ERR_ALIGN, "%s: K = %lld is not a multiple of 256",
                        kd_op_name(d->op), (long long)w->cols);
    TRY(need_shape(ctx, d->dst, x->rows, w->rows, "gemv y"));
    if (d->dst == x)
        return kd_error(ctx, KD_ERR_ARG, "%s: y must not alias x", kd_op_name(d->op));
    *s = (op_shape){x->rows, w->rows, w->cols};
    return KD_OK;
}

static kd_status validate_rope(kd_context *ctx, const kd_op_desc *d, op_shape *s)
{
    const kd_tensor *x = d->src[0];
    if (!d->pos)
        return kd_error(ctx, KD_ERR_NULL, "rope: positions are NULL");
    if (d->n_heads <= 0 || d->head_dim <= 0)
        return kd_error(ctx, KD_ERR_ZERO_SIZE, "rope: n_heads = %d and head_dim = %d must be > 0",
                        d->n_heads, d->head_dim);
    if (d->head_dim > 4096)
        return kd_error(ctx, KD_ERR_TOO_LARGE, "rope: head_dim = %d is above 4096", d->head_dim);
    if (d->head_dim % 2 != 0)
        return kd_error(ctx, KD_ERR_SHAPE, "rope: head_dim = %d must be even", d->head_dim);
    if ((int64_t)d->n_heads * d->head_dim != x->cols)
        return kd_error(ctx, KD_ERR_SHAPE, "rope: n_heads * head_dim = %lld != row length %lld",
                        (long long)d->n_heads * d->head_dim, (long long)x->cols);
    if (d->rope_mode != KD_ROPE_NORMAL && d->rope_mode != KD_ROPE_NEOX)
        return kd_error(ctx, KD_ERR_ARG, "rope: unknown mode %d", (int)d->rope_mode);
    if (!(d->rope_base >= 0) || isinf(d->rope_base) || (d->rope_base > 0 && d->rope_base <= 1))
        return kd_error(ctx, KD_ERR_ARG, "rope: base %g must be > 1 (0 for 10000)", d->rope_base);
    TRY(need_shape(ctx, d->dst, x->rows, x->cols, "rope y"));
    *s = (op_shape){x->rows, x->cols, 0};
    return KD_OK;
}

static kd_status validate(kd_context *ctx, const kd_op_desc *d, op_shape *s)
{
    if (!d)
        return kd_error(ctx, KD_ERR_NULL, "kd_run: op description is NULL");
    if ((unsigned)d->op >= KD_OP_COUNT)
        return kd_error(ctx, KD_ERR_ARG, "kd_run: unknown op %d", (int)d->op);
    if (!d->dst)
        return kd_error(ctx, KD_ERR_NULL, "%s: output tensor is NULL", kd_op_name(d->op));
    /* A tensor's device buffers belong to its own context's backends. */
    for (int i = 0; i < 2; i++)
        if (d->src[i] && d->src[i]->ctx != ctx)
            return kd_error(ctx, KD_ERR_ARG, "%s: input %d belongs to another context",
                            kd_op_name(d->op), i);
    if (d->dst->ctx != ctx)
        return kd_error(ctx, KD_ERR_ARG, "%s: output belongs to another context", kd_op_name(d->op));
    if (kd_op_is_gemv(d->op))
        return validate_gemv(ctx, d, s);
    TRY(need_f32(ctx, d->src[0], kd_op_name(d->op)));
    TRY(need_f32(ctx, d->dst, kd_op_name(d->op)));
    const kd_tensor *x = d->src[0];
    switch (d->op) {
    case KD_OP_RMSNORM:
        TRY(need_f32(ctx, d->src[1], "rmsnorm weight"));
        TRY(need_shape(ctx, d->src[1], 1, x->cols, "rmsnorm weight"));
        if (!(d->eps >= 0) || isinf(d->eps))
            return kd_error(ctx, KD_ERR_ARG, "rmsnorm: eps %g must be >= 0 and finite", d->eps);
        break;
    case KD_OP_ROPE:
        return validate_rope(ctx, d, s);
    default: /* swiglu, residual_add */
        TRY(need_f32(ctx, d->src[1], kd_op_name(d->op)));
        TRY(need_shape(ctx, d->src[1], x->rows, x->cols, kd_op_name(d->op)));
        break;
    }
    TRY(need_shape(ctx, d->dst, x->rows, x->cols, kd_op_name(d->op)));
    *s = (op_shape){x->rows, x->cols, 0};
    return KD_OK;
}

static kd_call make_call(const kd_op_desc *d, const op_shape *s, kd_backend_id b, unsigned flags)
{
    kd_call c = {0};
    c.op = d->op;
    c.m = s->m;
    c.n = s->n;
    c.k = s->k;
    for (int i = 0; i < 2; i++)
        c.src[i] = d->src[i] ? kd_tensor_buffer(d->src[i], b) : NULL;
    c.dst = kd_tensor_buffer(d->dst, b);
    c.w_groups = d->src[0] ? kd_tensor_buffer_groups(d->src[0], b) : 0;
    c.pos = d->pos;
    c.eps = d->eps > 0 ? d->eps : 1e-5f;
    c.rope_base = d->rope_base > 0 ? d->rope_base : 10000.0f;
    c.n_heads = d->n_heads;
    c.head_dim = d->head_dim;
    c.rope_mode = d->rope_mode;
    c.flags = flags;
    return c;
}

/* Runs the op on backend b: operands made resident there, output marked as written. */
static kd_status run_on(kd_context *ctx, const kd_op_desc *d, const op_shape *s,
                        kd_backend_id b, unsigned flags)
{
    struct kd_backend_slot *slot = &ctx->backend[b];
    int64_t t0 = kd_monotonic_ns();
    for (int i = 0; i < 2; i++)
        if (d->src[i])
            TRY(kd_tensor_make_resident(ctx, (kd_tensor *)d->src[i], b));
    TRY(kd_tensor_prepare_output(ctx, d->dst, b));
    kd_call call = make_call(d, s, b, flags);
    TRY(slot->ops->run(ctx, slot->state, &call));
    kd_tensor_mark_written(d->dst, b);
    double us = (double)(kd_monotonic_ns() - t0) / 1e3;
    kd_metrics_record(&ctx->metrics, b, slot->ops->is_offload, us);
    return KD_OK;
}

static kd_backend_id decide(const kd_context *ctx, const op_shape *s, kd_op op)
{
    uint64_t size = kd_op_data_size(op, s->m, s->n, s->k);
    return kd_dispatch_choose(&ctx->config, op, size, ctx->best_offload);
}

kd_backend_id kd_dispatch_decide(const kd_context *ctx, const kd_op_desc *d)
{
    op_shape s;
    if (!ctx || validate((kd_context *)ctx, d, &s) != KD_OK)
        return KD_BACKEND_CPU;
    return decide(ctx, &s, d->op);
}

/* Failures an offload can recover from by running on cpu. */
static int recoverable(kd_status st)
{
    return st == KD_ERR_NOMEM || st == KD_ERR_BUILD || st == KD_ERR_LAUNCH ||
           st == KD_ERR_TOO_LARGE || st == KD_ERR_UNAVAILABLE || st == KD_ERR_UNSUPPORTED;
}

kd_status kd_run(kd_context *ctx, const kd_op_desc *d, kd_backend_id backend, unsigned flags)
{
    if (!ctx)
        return KD_ERR_NULL;
    op_shape s;
    TRY(validate(ctx, d, &s));
    kd_backend_id b = backend == KD_BACKEND_AUTO ? decide(ctx, &s, d->op) : backend;
    if ((unsigned)b >= KD_BACKEND_COUNT)
        return kd_error(ctx, KD_ERR_ARG, "kd_run: unknown backend %d", (int)b);
    if (!ctx->backend[b].available)
        return kd_error(ctx, KD_ERR_UNAVAILABLE, "backend %s is not available: %s",
                        kd_backend_name(b), ctx->backend[b].reason);
    kd_status st = run_on(ctx, d, &s, b, flags);
    if (st == KD_OK || b == KD_BACKEND_CPU || (flags & KD_RUN_NO_FALLBACK) || !recoverable(st))
        return st;
    kd_metrics_add_fallback(&ctx->metrics);
    return run_on(ctx, d, &s, KD_BACKEND_CPU, flags);
}

/* ---- convenience wrappers --------------------------------------------------------- */

kd_status kd_rmsnorm(kd_context *ctx, const kd_tensor *x, const kd_tensor *w, float eps,
                     kd_tensor *y)
{
    kd_op_desc d = {.op = KD_OP_RMSNORM, .src = {x, w}, .dst = y, .eps = eps};
    return kd_run(ctx, &d, KD_BACKEND_AUTO, 0);
}

kd_status kd_rope(kd_context *ctx, const kd_tensor *x, const uint32_t *pos, int n_heads,
                  int head_dim, float base, kd_rope_mode mode, kd_tensor *y)
{
    kd_op_desc d = {.op = KD_OP_ROPE, .src = {x, NULL}, .dst = y, .pos = pos,
                    .n_heads = n_heads, .head_dim = head_dim, .rope_base = base,
                    .rope_mode = mode};
    return kd_run(ctx, &d, KD_BACKEND_AUTO, 0);
}

kd_status kd_swiglu(kd_context *ctx, const kd_tensor *gate, const kd_tensor *up, kd_tensor *y)
{
    kd_op_desc d = {.op = KD_OP_SWIGLU, .src = {gate, up}, .dst = y};
    return kd_run(ctx, &d, KD_BACKEND_AUTO, 0);
}

kd_status kd_residual_add(kd_context *ctx, const kd_tensor *x, const kd_tensor *r, kd_tensor *y)
{
    kd_op_desc d = {.op = KD_OP_RESIDUAL_ADD, .src = {x, r}, .dst = y};
    return kd_run(ctx, &d, KD_BACKEND_AUTO, 0);
}

kd_status kd_gemv(kd_context *ctx, const kd_tensor *w, const kd_tensor *x, kd_tensor *y)
{
    if (!w)
        return kd_error(ctx, KD_ERR_NULL, "kd_gemv: weight is NULL");
    kd_op op = w->type == KD_TYPE_Q6_K ? KD_OP_Q6K_GEMV : KD_OP_Q4K_GEMV;
    kd_op_desc d = {.op = op, .src = {w, x}, .dst = y};
    return kd_run(ctx, &d, KD_BACKEND_AUTO, 0);
}
