/* ctest-labels: cpu */
/* The cpu backend's thread pool (runtime/cpu/threads.c): every index of every job run
 * exactly once, on 1, 2 and 4 threads, with jobs back to back (workers still spinning),
 * after a pause longer than the spin (workers asleep), from several calling threads at
 * once, and a pool destroyed in both states. Run under ThreadSanitizer by scripts/test.sh:
 * the job hand-off is atomics plus a condition variable, and a missed publication shows
 * there as a race, here as an index run twice or never. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/cpu_ops.h"
#include "kd_test_util.h"

#define MAX_N 5000

typedef struct job {
    int *hits;   /* hits[i]: how often index i ran */
    int skip;    /* index the broken job leaves out (-1: none) */
} job;

static void mark(void *arg, int64_t b, int64_t e)
{
    job *j = arg;
    for (int64_t i = b; i < e; i++)
        if (i != j->skip)
            j->hits[i]++; /* plain writes: two threads on one index race under TSan */
}

/* Runs one job of n items and returns how many indices did not run exactly once. */
static int64_t run_and_count(kd_pool *p, int64_t n, int64_t grain, int skip, int *hits)
{
    memset(hits, 0, sizeof(int) * MAX_N);
    job j = {hits, skip};
    kd_pool_for(p, n, grain, mark, &j);
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; i++)
        wrong += hits[i] != 1;
    return wrong;
}

static void sleep_ms(int ms)
{
    struct timespec t = {0, ms * 1000000L};
    nanosleep(&t, NULL);
}

static void test_every_index_once(void)
{
    static const int threads[] = {1, 2, 4};
    static const int64_t grains[] = {1, 4, 32};
    int *hits = malloc(sizeof(int) * MAX_N);
    CU_ASSERT_FATAL(hits != NULL);
    for (int t = 0; t < 3; t++) {
        kd_pool *p = kd_pool_create(threads[t]);
        CU_ASSERT_FATAL(p != NULL);
        int64_t wrong = 0;
        for (int it = 0; it < 600; it++) /* back to back: the workers never sleep */
            wrong += run_and_count(p, (it * 37) % MAX_N, grains[it % 3], -1, hits);
        for (int it = 0; it < 3; it++) { /* past the spin: the workers sleep and wake */
            sleep_ms(5);
            wrong += run_and_count(p, 1000 + it, 4, -1, hits);
        }
        CU_ASSERT_EQUAL(wrong, 0);
        kd_pool_destroy(p); /* right after a job: workers still spinning */
    }
    free(hits);
}

/* The check can fail: a job that leaves one index out is seen. */
static void test_missed_index_detected(void)
{
    int *hits = malloc(sizeof(int) * MAX_N);
    CU_ASSERT_FATAL(hits != NULL);
    kd_pool *p = kd_pool_create(2);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_EQUAL(run_and_count(p, 1000, 4, 777, hits), 1);
    sleep_ms(5);
    kd_pool_destroy(p); /* idle: workers asleep on the condition variable */
    free(hits);
}

typedef struct caller {
    kd_pool *pool;
    int64_t wrong;
} caller;

static void *call_many(void *arg)
{
    caller *c = arg;
    int *hits = malloc(sizeof(int) * MAX_N);
    if (!hits) {
        c->wrong = -1;
        return NULL;
    }
    for (int it = 0; it < 200; it++)
        c->wrong += run_and_count(c->pool, 500 + (it * 53) % 4000, 4, -1, hits);
    free(hits);
    return NULL;
}

/* Callers on other threads share the pool: one job at a time, each whole. */
static void test_concurrent_callers(void)
{
    kd_pool *p = kd_pool_create(2);
    CU_ASSERT_FATAL(p != NULL);
    pthread_t th[3];
    caller c[3] = {{p, 0}, {p, 0}, {p, 0}};
    for (int i = 0; i < 3; i++)
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, call_many, &c[i]) == 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(c[i].wrong, 0);
    }
    kd_pool_destroy(p);
}

int main(void)
{
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("pool", NULL, NULL);
    CU_add_test(s, "every index once, 1/2/4 threads, spinning and sleeping", test_every_index_once);
    CU_add_test(s, "a missed index is detected", test_missed_index_detected);
    CU_add_test(s, "callers on several threads", test_concurrent_callers);
    return kd_test_main();
}
