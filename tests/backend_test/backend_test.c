/*
 * A fourth backend for tests: "hosttest" runs residual_add and rmsnorm with plain loops on
 * host memory (no device buffers: alloc and the copies are NULL, so the dispatcher hands it
 * the host copies) and refuses every other op with KD_ERR_UNSUPPORTED, which the dispatcher
 * recovers from by running the op on cpu. It is an offload backend with rank 0 and no
 * default thresholds: it runs only when forced (kd_run with its id), never by itself.
 *
 * It lives outside the library; kd_backend_register (one line in the test) gives it the
 * next free id. It counts the ops it ran, so a test can tell them from a fallback.
 */
#include "backend_test.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

atomic_int kd_hosttest_runs;
int kd_hosttest_break;

static kd_status hosttest_init(kd_context *ctx, void **state, char *why, size_t why_cap)
{
    (void)ctx;
    (void)why;
    (void)why_cap;
    *state = &kd_hosttest_runs; /* no state of its own; non-NULL for the registry */
    return KD_OK;
}

static void hosttest_shutdown(void *state) { (void)state; }

static void hosttest_describe(void *state, char *buf, size_t cap)
{
    (void)state;
    snprintf(buf, cap, "hosttest: plain loops on host memory (residual_add, rmsnorm)");
}

static void residual_add(const kd_call *c)
{
    const float *x = c->src[0], *r = c->src[1];
    float *y = c->dst;
    for (int64_t i = 0; i < c->m * c->n; i++)
        y[i] = x[i] + r[i] + (kd_hosttest_break ? 1.0f : 0.0f);
}

static void rmsnorm(const kd_call *c)
{
    const float *x = c->src[0], *w = c->src[1];
    float *y = c->dst;
    for (int64_t row = 0; row < c->m; row++) {
        const float *xr = x + row * c->n;
        double ss = 0;
        for (int64_t i = 0; i < c->n; i++)
            ss += (double)xr[i] * xr[i];
        float scale = (float)(1.0 / sqrt(ss / (double)c->n + c->eps));
        for (int64_t i = 0; i < c->n; i++)
            y[row * c->n + i] = xr[i] * scale * w[i];
    }
}

static kd_status hosttest_run(kd_context *ctx, void *state, const kd_call *c)
{
    (void)state;
    if (c->op == KD_OP_RESIDUAL_ADD)
        residual_add(c);
    else if (c->op == KD_OP_RMSNORM)
        rmsnorm(c);
    else
        return kd_error(ctx, KD_ERR_UNSUPPORTED, "hosttest: %s is not implemented",
                        kd_op_name(c->op));
    atomic_fetch_add(&kd_hosttest_runs, 1);
    return KD_OK;
}

const kd_backend_ops kd_hosttest_backend = {
    .name = "hosttest",
    .is_offload = 1, /* counted as gpu; rank 0 and no thresholds: only when forced */
    .init = hosttest_init,
    .shutdown = hosttest_shutdown,
    .describe = hosttest_describe,
    .run = hosttest_run,
};
