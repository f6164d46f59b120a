/* Shared helpers for the CUnit suites. */
#include "kd_test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>


int kd_test_main(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}

int kd_test_skip(const char *reason)
{
    printf("SKIPPED: %s\n", reason);
    return 77;
}

int kd_test_system(const char *cmd)
{
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc))
        return -1;
    return WEXITSTATUS(rc);
}

char *kd_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        if (len)
            *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

int kd_test_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return fclose(f) == 0 && w == n ? 0 : -1;
}

kd_test_env kd_test_env_set(const char *name, const char *value)
{
    const char *old = getenv(name);
    kd_test_env saved = {name, old ? strdup(old) : NULL};
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
    return saved;
}

void kd_test_env_restore(kd_test_env *saved)
{
    if (saved->old)
        setenv(saved->name, saved->old, 1);
    else
        unsetenv(saved->name);
    free(saved->old);
    saved->old = NULL;
}

double kd_test_nmse(const float *got, const double *ref, int64_t n, double *max_rel)
{
    double num = 0.0, den = 0.0;
    *max_rel = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)got[i] - ref[i];
        num += e * e;
        den += ref[i] * ref[i];
        *max_rel = fmax(*max_rel, fabs(e) / fmax(1.0, fabs(ref[i])));
    }
    return den > 0 ? num / den : num;
}

kd_status kd_test_context_under_env(const char *name, const char *value,
                                    const kd_context_options *o, kd_context **out)
{
    kd_test_env saved = kd_test_env_set(name, value);
    *out = NULL;
    kd_status st = kd_context_create(o, out);
    kd_test_env_restore(&saved);
    return st;
}

void kd_test_expect_env_refused(const char *name, const char *value, const kd_context_options *o)
{
    kd_context *c = NULL;
    kd_status st = kd_test_context_under_env(name, value, o, &c);
    const char *msg = st == KD_OK ? "" : kd_last_error(NULL);
    int named = strstr(msg, name) && strstr(msg, value);
    if (st != KD_ERR_ARG || !named)
        printf("\n  %s='%s': %s: '%s' (want KD_ERR_ARG naming both)", name, value,
               kd_status_name(st), msg);
    CU_ASSERT_EQUAL(st, KD_ERR_ARG);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT(named);
    kd_context_destroy(c);
}

const char *kd_test_kdispatch_exe(void)
{
    static char exe[1024];
    struct stat st;
    snprintf(exe, sizeof exe, "%s/cli/kdispatch", KD_BINARY_DIR);
    if (stat(exe, &st) != 0) {
        printf("\n  %s is not built: build the whole project before running the tests", exe);
        return NULL;
    }
    return exe;
}

void kd_test_expect_match(const kd_problem *p, const char *name, const float *got,
                          const double *ref, const float *other, const char *other_name)
{
    kd_cmp vs_ref, vs_other = {.pass = 1, .first_bad = -1};
    kd_compare_to_ref(got, ref, p->out_count, KD_TOLERANCE, &vs_ref);
    if (other)
        kd_compare_f32(got, other, p->out_count, KD_TOLERANCE, &vs_other);
    if (!vs_ref.pass || !vs_other.pass) {
        printf("\n  %s on %s, M=%lld n=%lld k=%lld: vs oracle max %.3g nmse %.3g bad %lld",
               kd_op_name(p->d.op), name, (long long)p->m, (long long)p->n, (long long)p->k,
               vs_ref.max_abs, vs_ref.nmse, (long long)vs_ref.bad);
        if (vs_ref.first_bad >= 0)
            printf(" (first %lld: %g, want %g)", (long long)vs_ref.first_bad,
                   got[vs_ref.first_bad], ref[vs_ref.first_bad]);
        if (other)
            printf("; vs %s max %.3g bad %lld", other_name, vs_other.max_abs,
                   (long long)vs_other.bad);
        printf("\n");
    }
    CU_ASSERT(vs_ref.pass);
    if (other)
        CU_ASSERT(vs_other.pass);
}

void kd_test_expect_agreement(kd_context *ctx, kd_problem *p, const double *ref,
                              kd_test_path path, kd_test_path other)
{
    kd_status st_path, st_other;
    kd_metrics_snapshot before, after;
    kd_metrics_get(ctx, &before);
    float *got = kd_problem_run(ctx, p, path.backend, path.flags, &st_path);
    kd_metrics_get(ctx, &after);
    if (!got)
        printf("\n  %s on %s, M=%lld n=%lld: %s: %s\n", kd_op_name(p->d.op), path.name,
               (long long)p->m, (long long)p->n, kd_status_name(st_path), kd_last_error(ctx));
    kd_backend_id resident = kd_tensor_residency(p->dst);
    float *second = kd_problem_run(ctx, p, other.backend, other.flags, &st_other);
    CU_ASSERT_FATAL(ref && got && second);
    CU_ASSERT_EQUAL(resident, path.backend);
    CU_ASSERT_EQUAL(after.per_backend[path.backend], before.per_backend[path.backend] + 1);
    CU_ASSERT_EQUAL(after.fallbacks, before.fallbacks);
    kd_test_expect_match(p, other.name, second, ref, NULL, NULL);
    kd_test_expect_match(p, path.name, got, ref, second, other.name);
    free(got);
    free(second);
}

kd_context *kd_test_cpu_context(void)
{
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1};
    kd_context *ctx = NULL;
    if (kd_context_create(&o, &ctx) != KD_OK) {
        fprintf(stderr, "context: %s\n", kd_last_error(NULL));
        return NULL;
    }
    printf("cpu backend: %s\n", kd_backend_reason(ctx, KD_BACKEND_CPU));
    return ctx;
}

void kd_test_check_op(kd_context *ctx, kd_op op, const kd_test_shape *shapes, int nshapes,
                      const int64_t *ms, int nms, uint64_t seed0, kd_test_path path,
                      kd_test_path other)
{
    for (int s = 0; s < nshapes; s++)
        for (int mi = 0; mi < nms; mi++)
            for (int mode = 0; mode < (op == KD_OP_ROPE ? 2 : 1); mode++) {
                uint64_t seed = seed0 + 10 * (uint64_t)s + 2 * (uint64_t)mi + (uint64_t)mode;
                kd_problem p;
                CU_ASSERT_FATAL(kd_problem_make(ctx, op, ms[mi], shapes[s].n, shapes[s].k, seed,
                                                &p) == 0);
                double *ref = kd_problem_oracle(&p);
                kd_test_expect_agreement(ctx, &p, ref, path, other);
                free(ref);
                kd_problem_free(&p);
            }
}

int kd_test_run_matches_oracle(kd_context *ctx, kd_problem *p, kd_backend_id b,
                               unsigned flags, const char *label)
{
    double *ref = kd_problem_oracle(p);
    kd_status st;
    float *y = kd_problem_run(ctx, p, b, flags, &st);
    kd_cmp cmp = {.pass = 0};
    if (!y)
        printf("\n  %s: %s on %s: %s: %s\n", label, kd_op_name(p->d.op), kd_backend_name(b),
               kd_status_name(st), kd_last_error(ctx));
    else if (!ref)
        printf("\n  %s: the oracle failed (out of memory?)\n", label);
    else if (kd_compare_to_ref(y, ref, p->out_count, KD_TOLERANCE, &cmp), !cmp.pass)
        printf("\n  %s: %s on %s: vs oracle max %.3g nmse %.3g bad %lld\n", label,
               kd_op_name(p->d.op), kd_backend_name(b), cmp.max_abs, cmp.nmse,
               (long long)cmp.bad);
    free(ref);
    free(y);
    return cmp.pass;
}

void kd_test_expect_help(const char *command, const char *const *want, size_t n)
{
    const char *exe = kd_test_kdispatch_exe();
    CU_ASSERT_PTR_NOT_NULL_FATAL(exe);
    char cmd[2048], file[256];
    snprintf(file, sizeof file, "test_%s_help.txt", command);
    snprintf(cmd, sizeof cmd, "'%s' %s --help > '%s'", exe, command, file);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);
    char *help = kd_test_read_file(file, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(help);
    for (size_t i = 0; i < n; i++)
        if (!strstr(help, want[i])) {
            printf("\n  kdispatch %s --help does not mention '%s'", command, want[i]);
            CU_FAIL("help text incomplete");
        }
    free(help);
}
