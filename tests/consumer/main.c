/* A downstream program built against an installed kdispatch (tests/consumer/check_install.sh
 * builds it twice: with find_package(kdispatch) and with pkg-config). It uses the public
 * header only: creates a context, runs an rmsnorm through the dispatcher, checks the
 * result against a reference computed here, and prints the version. Exit 0 on success. */
#include <kdispatch.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The library's private definitions must not reach its users. */
#if defined(KD_HAVE_OPENCL) || defined(KD_HAVE_CUDA) || defined(CL_TARGET_OPENCL_VERSION)
#error "kdispatch leaks a private definition into its users"
#endif

enum { ROWS = 2, COLS = 8 };

static int fail(const char *what, kd_context *ctx)
{
    fprintf(stderr, "consumer: %s: %s\n", what, kd_last_error(ctx));
    return 1;
}

/* y = x / sqrt(mean(x^2) + eps) * w, one row at a time. */
static void reference(const float *x, const float *w, float eps, float *y)
{
    for (int r = 0; r < ROWS; r++) {
        double ss = 0;
        for (int c = 0; c < COLS; c++)
            ss += (double)x[r * COLS + c] * x[r * COLS + c];
        double scale = 1.0 / sqrt(ss / COLS + eps);
        for (int c = 0; c < COLS; c++)
            y[r * COLS + c] = (float)(x[r * COLS + c] * scale * w[c]);
    }
}

static int run(kd_context *ctx)
{
    float x[ROWS * COLS], w[COLS], y[ROWS * COLS], want[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++)
        x[i] = (float)(i % 5) - 1.5f;
    for (int c = 0; c < COLS; c++)
        w[c] = 0.5f + 0.125f * (float)c;
    kd_tensor *tx = NULL, *tw = NULL, *ty = NULL;
    int rc = 1;
    if (kd_tensor_f32(ctx, ROWS, COLS, x, &tx) != KD_OK ||
        kd_tensor_f32(ctx, 1, COLS, w, &tw) != KD_OK ||
        kd_tensor_f32(ctx, ROWS, COLS, NULL, &ty) != KD_OK) {
        rc = fail("kd_tensor_f32", ctx);
    } else if (kd_rmsnorm(ctx, tx, tw, 1e-5f, ty) != KD_OK) {
        rc = fail("kd_rmsnorm", ctx);
    } else if (kd_tensor_read(ctx, ty, y, ROWS * COLS) != KD_OK) {
        rc = fail("kd_tensor_read", ctx);
    } else {
        reference(x, w, 1e-5f, want);
        rc = 0;
        for (int i = 0; i < ROWS * COLS; i++)
            if (fabsf(y[i] - want[i]) > 1e-5f * (1.0f + fabsf(want[i]))) {
                fprintf(stderr, "consumer: y[%d] = %g, want %g\n", i, y[i], want[i]);
                rc = 1;
            }
    }
    kd_tensor_free(tx);
    kd_tensor_free(tw);
    kd_tensor_free(ty);
    return rc;
}

int main(void)
{
    /* The header and the library it links must be the same version. */
    if (strcmp(kd_version(), KD_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: header %s, library %s\n", KD_VERSION_STRING, kd_version());
        return 1;
    }
    kd_context_options opts = {0};
    opts.disable_opencl = 1; /* the cpu backend: the dispatcher must choose it */
    opts.disable_cuda = 1;
    kd_context *ctx = NULL;
    if (kd_context_create(&opts, &ctx) != KD_OK)
        return fail("kd_context_create", NULL);
    kd_metrics_snapshot m;
    int rc = run(ctx);
    kd_metrics_get(ctx, &m);
    if (rc == 0 && m.per_backend[KD_BACKEND_CPU] != 1) {
        fprintf(stderr, "consumer: expected one cpu dispatch, got %llu\n",
                (unsigned long long)m.per_backend[KD_BACKEND_CPU]);
        rc = 1;
    }
    kd_context_destroy(ctx);
    if (rc == 0)
        printf("kdispatch %s: rmsnorm %dx%d on cpu OK\n", kd_version(), ROWS, COLS);
    return rc;
}
