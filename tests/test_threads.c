/* ctest-labels: cpu */
/* Threads (kdispatch.h, "Thread safety"): threads sharing one context, half of them making
 * failing calls with messages of their own and half succeeding calls checked against the
 * oracle, every thread reading kd_last_error right after its own calls; then one context
 * per thread. Run under ThreadSanitizer by scripts/test.sh: a race on the error message
 * (or anywhere else) fails it there; here each thread must read its own message. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kd_test_util.h"

#define THREADS 4
#define ROUNDS 60

typedef struct worker {
    kd_context *ctx; /* shared, or NULL: the worker makes its own */
    int id;
    int errors;      /* wrong status, wrong message or wrong result */
} worker;

/* A failing call whose message names this thread: rmsnorm with a weight one column too
 * wide, "w: shape 1 x <n+1>, expected 1 x <n>", n unique per thread. Then the message
 * read back must be this thread's, whatever the others did meanwhile. */
static int failing_call(kd_context *ctx, int id)
{
    int64_t n = 100 + id;
    kd_tensor *x = NULL, *w = NULL, *y = NULL;
    int bad = 0;
    if (kd_tensor_f32(ctx, 1, n, NULL, &x) != KD_OK || kd_tensor_f32(ctx, 1, n + 1, NULL, &w) ||
        kd_tensor_f32(ctx, 1, n, NULL, &y) != KD_OK) {
        bad = 1;
    } else {
        char want[64];
        snprintf(want, sizeof want, "expected 1 x %lld", (long long)n);
        bad = kd_rmsnorm(ctx, x, w, 1e-5f, y) != KD_ERR_SHAPE ||
              strstr(kd_last_error(ctx), want) == NULL;
        if (bad)
            printf("\n  thread %d read '%s', wanted '%s'", id, kd_last_error(ctx), want);
    }
    kd_tensor_free(x);
    kd_tensor_free(w);
    kd_tensor_free(y);
    return bad;
}

/* A succeeding call (a Q4_K GEMV on cpu, the exact path) checked against the oracle. */
static int succeeding_call(kd_context *ctx, int id, int round)
{
    kd_problem p;
    if (kd_problem_make(ctx, KD_OP_Q4K_GEMV, 1 + round % 3, 8 + id, 256, (uint64_t)(id * 1000 + round), &p))
        return 1;
    int ok = kd_test_run_matches_oracle(ctx, &p, KD_BACKEND_CPU, KD_RUN_CPU_EXACT, "thread");
    kd_problem_free(&p);
    return !ok;
}

static void *work(void *arg)
{
    worker *w = arg;
    kd_context *ctx = w->ctx;
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1, .cpu_threads = 2};
    if (!ctx && kd_context_create(&o, &ctx) != KD_OK) {
        w->errors++;
        return NULL;
    }
    for (int r = 0; r < ROUNDS; r++) {
        w->errors += (w->id % 2 == 0 || r % 5 == 0) ? failing_call(ctx, w->id) : 0;
        w->errors += succeeding_call(ctx, w->id, r);
        kd_metrics_snapshot m;
        kd_metrics_get(ctx, &m);
        char warn[64];
        kd_warnings(ctx, warn, sizeof warn);
    }
    if (!w->ctx)
        kd_context_destroy(ctx);
    return NULL;
}

static void run_workers(kd_context *shared)
{
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){shared, i, 0};
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, work, &w[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(w[i].errors, 0);
    }
}

static void test_shared_context(void)
{
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1, .cpu_threads = 2};
    kd_context *ctx = NULL;
    CU_ASSERT_FATAL(kd_context_create(&o, &ctx) == KD_OK);
    run_workers(ctx);
    /* the main thread made no call that failed: it reads the newest message of any */
    CU_ASSERT(strstr(kd_last_error(ctx), "expected 1 x 10") != NULL);
    kd_context_destroy(ctx);
}

static void test_context_per_thread(void) { run_workers(NULL); }

/* A context created at a destroyed one's address does not inherit its messages. */
static void test_fresh_context_has_no_message(void)
{
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1};
    kd_context *ctx = NULL;
    CU_ASSERT_FATAL(kd_context_create(&o, &ctx) == KD_OK);
    CU_ASSERT_EQUAL(failing_call(ctx, 7), 0);
    kd_context_destroy(ctx);
    CU_ASSERT_FATAL(kd_context_create(&o, &ctx) == KD_OK);
    CU_ASSERT_STRING_EQUAL(kd_last_error(ctx), "");
    kd_context_destroy(ctx);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("threads", NULL, NULL);
    CU_add_test(s, "threads sharing one context: own error messages", test_shared_context);
    CU_add_test(s, "one context per thread", test_context_per_thread);
    CU_add_test(s, "a new context starts without a message", test_fresh_context_has_no_message);
    return kd_test_main();
}
