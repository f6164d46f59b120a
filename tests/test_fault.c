/* ctest-labels: dispatch;cpu */
/* Fault injection plans (KD_FAULT="<backend>:<alloc|build|launch>:<n>[:always]"): the
 * parser's accepted forms and errors, which calls fail, and exact counting when many
 * threads call at once. End-to-end fallback is in test_fallback.c. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "kd_test_util.h"

static void test_parse_valid(void)
{
    kd_fault_plan p;
    char why[256] = "";
    CU_ASSERT_EQUAL(kd_fault_plan_parse(NULL, &p, why, sizeof why), KD_OK);
    CU_ASSERT_EQUAL(p.active, 0);
    CU_ASSERT_EQUAL(kd_fault_plan_parse("", &p, why, sizeof why), KD_OK);
    CU_ASSERT_EQUAL(p.active, 0);

    CU_ASSERT_EQUAL(kd_fault_plan_parse("opencl:alloc:0", &p, why, sizeof why), KD_OK);
    CU_ASSERT(p.active && p.backend == KD_BACKEND_OPENCL && p.kind == KD_FAULT_ALLOC &&
              p.after == 0 && !p.always);
    CU_ASSERT_EQUAL(kd_fault_plan_parse("cuda:build:7", &p, why, sizeof why), KD_OK);
    CU_ASSERT(p.active && p.backend == KD_BACKEND_CUDA && p.kind == KD_FAULT_BUILD &&
              p.after == 7 && !p.always);
    CU_ASSERT_EQUAL(kd_fault_plan_parse("opencl:launch:3:always", &p, why, sizeof why), KD_OK);
    CU_ASSERT(p.active && p.kind == KD_FAULT_LAUNCH && p.after == 3 && p.always);
}

static void test_parse_errors(void)
{
    const char *bad[][2] = {
        {"cpu:alloc:0", "cpu cannot be faulted"},
        {"tpu:alloc:0", "unknown backend 'tpu'"},
        {"opencl:explode:1", "unknown kind 'explode'"},
        {"opencl:alloc", "expected <opencl|cuda>"},
        {"opencl", "expected <opencl|cuda>"},
        {"opencl:alloc:x", "'x' is not a count"},
        {"opencl:alloc:-1", "'-1' is not a count"},
        {"opencl:alloc:", "'' is not a count"},
        {"opencl:alloc:1:sometimes", "'sometimes' is not 'always'"},
        {"opencl:alloc:1:always:again", "expected <opencl|cuda>"},
        {"opencl:alloc:99999999999999999999999", "is not a count"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        kd_fault_plan p;
        char why[256] = "";
        kd_status st = kd_fault_plan_parse(bad[i][0], &p, why, sizeof why);
        int ok = st == KD_ERR_ARG && strstr(why, bad[i][1]) && !p.active;
        if (!ok)
            printf("\n  '%s': %s '%s'\n", bad[i][0], kd_status_name(st), why);
        CU_ASSERT(ok);
    }
    char longspec[300];
    memset(longspec, 'a', sizeof longspec - 1);
    longspec[sizeof longspec - 1] = '\0';
    kd_fault_plan p;
    char why[256];
    CU_ASSERT_EQUAL(kd_fault_plan_parse(longspec, &p, why, sizeof why), KD_ERR_ARG);
    CU_ASSERT_EQUAL(kd_fault_plan_parse("opencl:alloc:0", NULL, why, sizeof why), KD_ERR_NULL);
    CU_ASSERT_EQUAL(kd_fault_plan_parse("cpu:alloc:0", &p, NULL, 0), KD_ERR_ARG);
}

static void test_hits(void)
{
    kd_fault_plan p;
    char why[256];
    /* Once: exactly the call after n successful ones fails. */
    CU_ASSERT_FATAL(kd_fault_plan_parse("cuda:launch:3", &p, why, sizeof why) == KD_OK);
    int got[8];
    for (int i = 0; i < 8; i++) {
        /* Other backends and kinds neither fail nor count. */
        CU_ASSERT_EQUAL(kd_fault_plan_hit(&p, KD_BACKEND_OPENCL, KD_FAULT_LAUNCH), 0);
        CU_ASSERT_EQUAL(kd_fault_plan_hit(&p, KD_BACKEND_CUDA, KD_FAULT_ALLOC), 0);
        CU_ASSERT_EQUAL(kd_fault_plan_hit(&p, KD_BACKEND_CPU, KD_FAULT_LAUNCH), 0);
        got[i] = kd_fault_plan_hit(&p, KD_BACKEND_CUDA, KD_FAULT_LAUNCH);
    }
    const int once[8] = {0, 0, 0, 1, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(memcmp(got, once, sizeof got), 0);
    /* Always: every call from the (n+1)-th on. */
    CU_ASSERT_FATAL(kd_fault_plan_parse("opencl:alloc:2:always", &p, why, sizeof why) == KD_OK);
    for (int i = 0; i < 8; i++)
        got[i] = kd_fault_plan_hit(&p, KD_BACKEND_OPENCL, KD_FAULT_ALLOC);
    const int always[8] = {0, 0, 1, 1, 1, 1, 1, 1};
    CU_ASSERT_EQUAL(memcmp(got, always, sizeof got), 0);
    /* Inactive plan and NULL plan never fail. */
    CU_ASSERT_FATAL(kd_fault_plan_parse("", &p, why, sizeof why) == KD_OK);
    CU_ASSERT_EQUAL(kd_fault_plan_hit(&p, KD_BACKEND_OPENCL, KD_FAULT_ALLOC), 0);
    CU_ASSERT_EQUAL(kd_fault_plan_hit(NULL, KD_BACKEND_OPENCL, KD_FAULT_ALLOC), 0);
    /* Parsing again starts the count over. */
    CU_ASSERT_FATAL(kd_fault_plan_parse("opencl:build:0", &p, why, sizeof why) == KD_OK);
    CU_ASSERT_EQUAL(kd_fault_plan_hit(&p, KD_BACKEND_OPENCL, KD_FAULT_BUILD), 1);
    CU_ASSERT_EQUAL(kd_fault_plan_hit(&p, KD_BACKEND_OPENCL, KD_FAULT_BUILD), 0);
}

typedef struct hitter_arg {
    kd_fault_plan *p;
    pthread_barrier_t *start;
    int calls, hits;
} hitter_arg;

static void *hitter(void *v)
{
    hitter_arg *a = v;
    pthread_barrier_wait(a->start);
    for (int i = 0; i < a->calls; i++)
        a->hits += kd_fault_plan_hit(a->p, KD_BACKEND_OPENCL, KD_FAULT_LAUNCH);
    return NULL;
}

static int hits_from_threads(kd_fault_plan *p)
{
    enum { THREADS = 8, CALLS = 20000 };
    pthread_t t[THREADS];
    hitter_arg a[THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        a[i] = (hitter_arg){.p = p, .start = &start, .calls = CALLS};
        pthread_create(&t[i], NULL, hitter, &a[i]);
    }
    int hits = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        hits += a[i].hits;
    }
    pthread_barrier_destroy(&start);
    return hits;
}

/* Many threads: exactly one failure (once), exactly calls - n failures (always). */
static void test_hits_concurrent(void)
{
    kd_fault_plan p;
    char why[256];
    CU_ASSERT_FATAL(kd_fault_plan_parse("opencl:launch:5000", &p, why, sizeof why) == KD_OK);
    CU_ASSERT_EQUAL(hits_from_threads(&p), 1);
    CU_ASSERT_FATAL(kd_fault_plan_parse("opencl:launch:5000:always", &p, why, sizeof why) == KD_OK);
    CU_ASSERT_EQUAL(hits_from_threads(&p), 8 * 20000 - 5000);
}

/* Through a context: a bad KD_FAULT stops kd_context_create with a message. */
static void test_context_rejects_bad_fault(void)
{
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1};
    kd_test_expect_env_refused("KD_FAULT", "cpu:launch:0", &o);
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(NULL), "cpu cannot be faulted"));
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("fault", NULL, NULL);
    CU_add_test(s, "parse valid plans", test_parse_valid);
    CU_add_test(s, "parse errors", test_parse_errors);
    CU_add_test(s, "which calls fail", test_hits);
    CU_add_test(s, "exact under 8 threads", test_hits_concurrent);
    CU_add_test(s, "context rejects a bad KD_FAULT", test_context_rejects_bad_fault);
    return kd_test_main();
}
