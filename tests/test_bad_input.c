/* ctest-labels: cpu */
/* Bad input (SPEC section 8): each check fires with the right status and a message that
 * says what is wrong, and nothing is written to the output. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kd_quant.h"
#include "kd_test_util.h"

static kd_context *ctx;

static kd_tensor *f32(int64_t r, int64_t c)
{
    kd_tensor *t = NULL;
    CU_ASSERT_FATAL(kd_tensor_f32(ctx, r, c, NULL, &t) == KD_OK);
    return t;
}

/* Runs d on the cpu, expects status want and a message containing needle. */
static void expect(const kd_op_desc *d, kd_status want, const char *needle)
{
    kd_status st = kd_run(ctx, d, KD_BACKEND_CPU, 0);
    if (st != want || !strstr(kd_last_error(ctx), needle))
        printf("\n  expected %s '%s', got %s '%s'\n", kd_status_name(want), needle,
               kd_status_name(st), kd_last_error(ctx));
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(ctx), needle));
}

static void test_null_pointers(void)
{
    kd_tensor *x = f32(2, 8), *y = f32(2, 8);
    CU_ASSERT_EQUAL(kd_run(NULL, NULL, KD_BACKEND_CPU, 0), KD_ERR_NULL);
    expect(NULL, KD_ERR_NULL, "NULL");
    kd_op_desc d = {.op = KD_OP_RESIDUAL_ADD, .src = {x, NULL}, .dst = y};
    expect(&d, KD_ERR_NULL, "NULL");
    d.src[1] = x;
    d.dst = NULL;
    expect(&d, KD_ERR_NULL, "output");
    kd_op_desc r = {.op = KD_OP_ROPE, .src = {x, NULL}, .dst = y, .n_heads = 2, .head_dim = 4};
    expect(&r, KD_ERR_NULL, "positions");
    CU_ASSERT_EQUAL(kd_tensor_f32(ctx, 1, 1, NULL, NULL), KD_ERR_NULL);
    CU_ASSERT_EQUAL(kd_tensor_read(ctx, x, NULL, 16), KD_ERR_NULL);
    kd_tensor_free(x);
    kd_tensor_free(y);
}

static void test_zero_and_huge_sizes(void)
{
    kd_tensor *t = NULL;
    CU_ASSERT_EQUAL(kd_tensor_f32(ctx, 0, 4, NULL, &t), KD_ERR_ZERO_SIZE);
    CU_ASSERT_EQUAL(kd_tensor_f32(ctx, 4, -1, NULL, &t), KD_ERR_ZERO_SIZE);
    CU_ASSERT_PTR_NULL(t);
    CU_ASSERT_EQUAL(kd_tensor_f32(ctx, INT64_C(1) << 40, INT64_C(1) << 40, NULL, &t), KD_ERR_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(ctx), "too large"));
}

static void test_shape_mismatch(void)
{
    kd_tensor *x = f32(3, 10), *r = f32(3, 11), *y = f32(3, 10), *w = f32(1, 9);
    kd_op_desc d = {.op = KD_OP_SWIGLU, .src = {x, r}, .dst = y};
    expect(&d, KD_ERR_SHAPE, "shape 3 x 11");
    kd_op_desc n = {.op = KD_OP_RMSNORM, .src = {x, w}, .dst = y};
    expect(&n, KD_ERR_SHAPE, "rmsnorm weight");
    kd_op_desc a = {.op = KD_OP_RESIDUAL_ADD, .src = {x, x}, .dst = r};
    expect(&a, KD_ERR_SHAPE, "expected 3 x 10");
    uint32_t pos[3] = {0, 1, 2};
    kd_op_desc ro = {.op = KD_OP_ROPE, .src = {x, NULL}, .dst = y, .pos = pos, .n_heads = 3, .head_dim = 4};
    expect(&ro, KD_ERR_SHAPE, "n_heads * head_dim");
    ro.n_heads = 2;
    ro.head_dim = 5;
    expect(&ro, KD_ERR_SHAPE, "even");
    ro.head_dim = 0;
    expect(&ro, KD_ERR_ZERO_SIZE, "head_dim");
    kd_tensor_free(x);
    kd_tensor_free(r);
    kd_tensor_free(y);
    kd_tensor_free(w);
}

static void test_quant_checks(void)
{
    void *blocks = calloc(4, sizeof(kd_block_q4_K));
    kd_tensor *w = NULL;
    CU_ASSERT_EQUAL(kd_tensor_quant(ctx, KD_TYPE_Q4_K, 1, 300, blocks, 144, &w), KD_ERR_ALIGN);
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(ctx), "multiple of 256"));
    CU_ASSERT_EQUAL(kd_tensor_quant(ctx, KD_TYPE_Q4_K, 2, 256, blocks, 144, &w), KD_ERR_SHAPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(ctx), "needs 288 bytes"));
    CU_ASSERT_EQUAL(kd_tensor_quant(ctx, KD_TYPE_F32, 1, 256, blocks, 144, &w), KD_ERR_TYPE);
    CU_ASSERT_EQUAL(kd_tensor_quant(ctx, KD_TYPE_Q4_K, 1, 256, NULL, 144, &w), KD_ERR_NULL);
    CU_ASSERT_FATAL(kd_tensor_quant(ctx, KD_TYPE_Q4_K, 2, 512, blocks, 576, &w) == KD_OK);
    kd_tensor *x = f32(1, 512), *xk = f32(1, 256), *y = f32(1, 2), *y3 = f32(1, 3);
    kd_op_desc d = {.op = KD_OP_Q6K_GEMV, .src = {w, x}, .dst = y};
    expect(&d, KD_ERR_TYPE, "must be q6_K");
    d.op = KD_OP_Q4K_GEMV;
    d.src[1] = xk;
    expect(&d, KD_ERR_SHAPE, "weight K = 512");
    d.src[1] = x;
    d.dst = y3;
    expect(&d, KD_ERR_SHAPE, "gemv y");
    d.dst = x;
    d.src[0] = x;
    expect(&d, KD_ERR_TYPE, "weight must be q4_K");
    kd_tensor_free(w);
    kd_tensor_free(x);
    kd_tensor_free(xk);
    kd_tensor_free(y);
    kd_tensor_free(y3);
    free(blocks);
}

static void test_bad_params_leave_output_untouched(void)
{
    float sentinel[8] = {7, 7, 7, 7, 7, 7, 7, 7}, back[8];
    kd_tensor *x = f32(1, 8), *w = f32(1, 8), *y = NULL;
    CU_ASSERT_FATAL(kd_tensor_f32(ctx, 1, 8, sentinel, &y) == KD_OK);
    kd_op_desc d = {.op = KD_OP_RMSNORM, .src = {x, w}, .dst = y, .eps = -1.0f};
    expect(&d, KD_ERR_ARG, "eps");
    d.eps = NAN;
    expect(&d, KD_ERR_ARG, "eps");
    uint32_t pos = 3;
    kd_op_desc r = {.op = KD_OP_ROPE, .src = {x, NULL}, .dst = y, .pos = &pos, .n_heads = 2,
                    .head_dim = 4, .rope_mode = (kd_rope_mode)5};
    expect(&r, KD_ERR_ARG, "mode");
    r.rope_mode = KD_ROPE_NORMAL;
    r.rope_base = 0.5f;
    expect(&r, KD_ERR_ARG, "base");
    kd_op_desc bad_op = {.op = (kd_op)99, .src = {x, w}, .dst = y};
    expect(&bad_op, KD_ERR_ARG, "unknown op");
    CU_ASSERT_EQUAL(kd_run(ctx, &d, (kd_backend_id)7, 0), KD_ERR_ARG);
    CU_ASSERT_FATAL(kd_tensor_read(ctx, y, back, 8) == KD_OK);
    CU_ASSERT_EQUAL(memcmp(back, sentinel, sizeof back), 0);
    CU_ASSERT_EQUAL(kd_tensor_read(ctx, y, back, 7), KD_ERR_SHAPE);
    kd_tensor_free(x);
    kd_tensor_free(w);
    kd_tensor_free(y);
}

static void test_absent_backend(void)
{
    kd_tensor *x = f32(1, 8), *y = f32(1, 8);
    kd_op_desc d = {.op = KD_OP_RESIDUAL_ADD, .src = {x, x}, .dst = y};
    /* This context was created with the offload backends disabled. */
    CU_ASSERT_EQUAL(kd_run(ctx, &d, KD_BACKEND_CUDA, 0), KD_ERR_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(ctx), "not available"));
    CU_ASSERT_FALSE(kd_backend_available(ctx, KD_BACKEND_OPENCL));
    CU_ASSERT(strlen(kd_backend_reason(ctx, KD_BACKEND_OPENCL)) > 0);
    kd_tensor_free(x);
    kd_tensor_free(y);
}

static void test_foreign_context(void)
{
    kd_context *other = NULL;
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1};
    CU_ASSERT_FATAL(kd_context_create(&o, &other) == KD_OK);
    kd_tensor *x = f32(1, 8), *y = NULL;
    CU_ASSERT_FATAL(kd_tensor_f32(other, 1, 8, NULL, &y) == KD_OK);
    kd_op_desc d = {.op = KD_OP_RESIDUAL_ADD, .src = {x, x}, .dst = y};
    expect(&d, KD_ERR_ARG, "another context");
    float v[8];
    CU_ASSERT_EQUAL(kd_tensor_read(ctx, y, v, 8), KD_ERR_ARG);
    kd_tensor_free(x);
    kd_tensor_free(y);
    kd_context_destroy(other);
}

static void test_bad_environment(void)
{
    kd_context *c2 = NULL;
    kd_test_expect_env_refused("KD_BACKEND", "tpu", NULL);
    kd_test_expect_env_refused("KD_FAULT", "opencl:explode:1", NULL);
    kd_context_options o = {.config = "/nonexistent/kdispatch.conf"};
    CU_ASSERT_EQUAL(kd_context_create(&o, &c2), KD_ERR_IO); /* missing: IO, not FORMAT */
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(NULL), "cannot open"));
}

int main(void)
{
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1};
    if (kd_context_create(&o, &ctx) != KD_OK)
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("bad input", NULL, NULL);
    CU_add_test(s, "null pointers", test_null_pointers);
    CU_add_test(s, "zero and huge sizes", test_zero_and_huge_sizes);
    CU_add_test(s, "shape mismatch", test_shape_mismatch);
    CU_add_test(s, "quant checks (K % 256, bytes, types)", test_quant_checks);
    CU_add_test(s, "bad params leave output untouched", test_bad_params_leave_output_untouched);
    CU_add_test(s, "absent backend", test_absent_backend);
    CU_add_test(s, "tensor from another context", test_foreign_context);
    CU_add_test(s, "bad environment and config", test_bad_environment);
    int rc = kd_test_main();
    kd_context_destroy(ctx);
    return rc;
}
