/* ctest-labels: dispatch;cpu */
/* The dispatcher's configuration and decision (contract: dispatch_strategy): defaults,
 * data_size, the config file (with errors by line number), the environment, forcing,
 * writing, and the decision: deterministic over many sizes and repeated calls, and
 * monotonic in the size (cpu up to the threshold, the offload backend above it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "kd_backend.h"
#include "kd_test_util.h"
#include "op_traits.h"

static const kd_backend_id offloads[] = {KD_BACKEND_OPENCL, KD_BACKEND_CUDA};

/* Writes text to a fresh temporary file; returns its path (static buffer per slot). */
static const char *temp_file(const char *text)
{
    static char paths[4][64];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, 64, "/tmp/kd_test_config_XXXXXX");
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    size_t len = strlen(text);
    CU_ASSERT_FATAL(write(fd, text, len) == (ssize_t)len);
    close(fd);
    return path;
}

static int same_config(const kd_config *a, const kd_config *b)
{
    return memcmp(a->threshold, b->threshold, sizeof a->threshold) == 0 &&
           a->forced == b->forced;
}

/* ---- defaults and data_size ------------------------------------------------------- */

static void test_defaults(void)
{
    kd_config c;
    kd_config_defaults(&c);
    CU_ASSERT_EQUAL(c.forced, KD_BACKEND_AUTO);
    CU_ASSERT_STRING_EQUAL(c.file, "");
    for (int op = 0; op < KD_OP_COUNT; op++) {
        for (int i = 0; i < 2; i++) {
            kd_backend_id b = offloads[i];
            uint64_t t = c.threshold[op][b];
            /* the contract: gpu_threshold > 0; a backend not built in never offloads, and
             * neither does a GEMV to an OpenCL CPU device (the cpu's q8 path is faster) */
            if (b == KD_BACKEND_OPENCL && kd_op_is_gemv((kd_op)op) && kd_backend_built(b)) {
                CU_ASSERT_EQUAL(t, KD_THRESHOLD_NEVER);
                CU_ASSERT(kd_config_default_threshold((kd_op)op, b, 1) < KD_THRESHOLD_NEVER);
            } else if (kd_backend_built(b)) {
                CU_ASSERT(t > 0 && t < KD_THRESHOLD_NEVER);
            } else {
                CU_ASSERT_EQUAL(t, KD_THRESHOLD_NEVER);
            }
            CU_ASSERT_EQUAL(c.source[op][b], KD_SRC_DEFAULT);
        }
        /* ids no backend has: never */
        for (int b = kd_backend_count(); b < KD_BACKEND_COUNT; b++)
            CU_ASSERT_EQUAL(c.threshold[op][b], KD_THRESHOLD_NEVER);
        if (!kd_backend_built(KD_BACKEND_CUDA) || !kd_backend_built(KD_BACKEND_OPENCL))
            continue; /* the comparisons below need both tables */
        /* A CUDA GPU offloads smaller ops than an OpenCL CPU device (PoCL). */
        CU_ASSERT(c.threshold[op][KD_BACKEND_CUDA] < c.threshold[op][KD_BACKEND_OPENCL]);
        /* GEMV sizes count multiply-adds: a higher threshold than elementwise ops. */
        if (kd_op_is_gemv((kd_op)op))
            CU_ASSERT(c.threshold[op][KD_BACKEND_CUDA] > c.threshold[KD_OP_SWIGLU][KD_BACKEND_CUDA]);
    }
    CU_ASSERT_EQUAL(kd_config_default_threshold(KD_OP_SWIGLU, KD_BACKEND_CPU, 1),
                    KD_THRESHOLD_NEVER);
    if (!kd_backend_built(KD_BACKEND_CUDA) || !kd_backend_built(KD_BACKEND_OPENCL))
        return; /* the magnitudes below are those of the two tables */
    /* Sane magnitudes: a 4096 x 4096 GEMV (one token of a 7B layer) goes to a CUDA GPU, a
     * 64-element residual add does not; PoCL gets neither. */
    uint64_t gemv = kd_op_data_size(KD_OP_Q4K_GEMV, 1, 4096, 4096);
    uint64_t tiny = kd_op_data_size(KD_OP_RESIDUAL_ADD, 1, 64, 0);
    CU_ASSERT_EQUAL(kd_dispatch_choose(&c, KD_OP_Q4K_GEMV, gemv, KD_BACKEND_CUDA), KD_BACKEND_CUDA);
    CU_ASSERT_EQUAL(kd_dispatch_choose(&c, KD_OP_RESIDUAL_ADD, tiny, KD_BACKEND_CUDA), KD_BACKEND_CPU);
    CU_ASSERT_EQUAL(kd_dispatch_choose(&c, KD_OP_Q4K_GEMV, gemv, KD_BACKEND_OPENCL), KD_BACKEND_CPU);

    /* An OpenCL GPU gets GPU defaults, except where the file or environment set one. */
    c.threshold[KD_OP_ROPE][KD_BACKEND_OPENCL] = 777;
    c.source[KD_OP_ROPE][KD_BACKEND_OPENCL] = KD_SRC_FILE;
    kd_config_use_device_defaults(&c, KD_BACKEND_OPENCL, 1);
    CU_ASSERT_EQUAL(c.threshold[KD_OP_ROPE][KD_BACKEND_OPENCL], 777);
    CU_ASSERT_EQUAL(c.threshold[KD_OP_SWIGLU][KD_BACKEND_OPENCL],
                    kd_config_default_threshold(KD_OP_SWIGLU, KD_BACKEND_OPENCL, 1));
    CU_ASSERT(c.threshold[KD_OP_SWIGLU][KD_BACKEND_OPENCL] <
              kd_config_default_threshold(KD_OP_SWIGLU, KD_BACKEND_OPENCL, 0));
    kd_config_use_device_defaults(&c, KD_BACKEND_OPENCL, 0);
    CU_ASSERT_EQUAL(c.threshold[KD_OP_SWIGLU][KD_BACKEND_OPENCL],
                    kd_config_default_threshold(KD_OP_SWIGLU, KD_BACKEND_OPENCL, 0));
}

static void test_data_size(void)
{
    CU_ASSERT_EQUAL(kd_op_data_size(KD_OP_Q4K_GEMV, 1, 4096, 4096), UINT64_C(16777216));
    CU_ASSERT_EQUAL(kd_op_data_size(KD_OP_Q6K_GEMV, 8, 11008, 4096), UINT64_C(8) * 11008 * 4096);
    CU_ASSERT_EQUAL(kd_op_data_size(KD_OP_RMSNORM, 7, 4096, 0), UINT64_C(7) * 4096);
    CU_ASSERT_EQUAL(kd_op_data_size(KD_OP_ROPE, 3, 4096, 0), UINT64_C(3) * 4096);
    CU_ASSERT_EQUAL(kd_op_data_size(KD_OP_SWIGLU, 1, 11008, 0), UINT64_C(11008));
    /* k is not part of an elementwise op's size. */
    CU_ASSERT_EQUAL(kd_op_data_size(KD_OP_RESIDUAL_ADD, 2, 10, 999), UINT64_C(20));
    CU_ASSERT_EQUAL(kd_op_data_size(KD_OP_SWIGLU, 0, 10, 0), 0);
    CU_ASSERT_EQUAL(kd_op_data_size(KD_OP_SWIGLU, 10, -1, 0), 0);
    CU_ASSERT_EQUAL(kd_op_data_size(KD_OP_Q4K_GEMV, 1, 256, 0), 0);
    CU_ASSERT_EQUAL(kd_op_data_size(KD_OP_Q4K_GEMV, INT64_MAX, INT64_MAX, 256), UINT64_MAX);
}

/* ---- the decision ----------------------------------------------------------------- */

static void test_choose_rules(void)
{
    kd_config c;
    kd_config_defaults(&c);
    c.threshold[KD_OP_SWIGLU][KD_BACKEND_CUDA] = 1000;
    CU_ASSERT_EQUAL(kd_dispatch_choose(&c, KD_OP_SWIGLU, 999, KD_BACKEND_CUDA), KD_BACKEND_CPU);
    CU_ASSERT_EQUAL(kd_dispatch_choose(&c, KD_OP_SWIGLU, 1000, KD_BACKEND_CUDA), KD_BACKEND_CPU);
    CU_ASSERT_EQUAL(kd_dispatch_choose(&c, KD_OP_SWIGLU, 1001, KD_BACKEND_CUDA), KD_BACKEND_CUDA);
    /* No offload backend present: always cpu. */
    CU_ASSERT_EQUAL(kd_dispatch_choose(&c, KD_OP_SWIGLU, UINT64_MAX, KD_BACKEND_AUTO), KD_BACKEND_CPU);
    CU_ASSERT_EQUAL(kd_dispatch_choose(&c, KD_OP_SWIGLU, UINT64_MAX, KD_BACKEND_CPU), KD_BACKEND_CPU);
    CU_ASSERT_EQUAL(kd_dispatch_choose(&c, KD_OP_COUNT, UINT64_MAX, KD_BACKEND_CUDA), KD_BACKEND_CPU);
    CU_ASSERT_EQUAL(kd_dispatch_choose(NULL, KD_OP_SWIGLU, UINT64_MAX, KD_BACKEND_CUDA), KD_BACKEND_CPU);
    /* "never" never offloads. */
    c.threshold[KD_OP_SWIGLU][KD_BACKEND_CUDA] = KD_THRESHOLD_NEVER;
    CU_ASSERT_EQUAL(kd_dispatch_choose(&c, KD_OP_SWIGLU, UINT64_MAX, KD_BACKEND_CUDA), KD_BACKEND_CPU);
    /* Forcing wins over size, both ways. */
    c.forced = KD_BACKEND_OPENCL;
    CU_ASSERT_EQUAL(kd_dispatch_choose(&c, KD_OP_SWIGLU, 1, KD_BACKEND_CUDA), KD_BACKEND_OPENCL);
    c.forced = KD_BACKEND_CPU;
    c.threshold[KD_OP_SWIGLU][KD_BACKEND_CUDA] = 1;
    CU_ASSERT_EQUAL(kd_dispatch_choose(&c, KD_OP_SWIGLU, UINT64_MAX, KD_BACKEND_CUDA), KD_BACKEND_CPU);
}

/* Sizes for the sweep: every size up to 4096, powers of two and their neighbours up to
 * 2^63, each threshold and its neighbours, and pseudo-random sizes. */
static int sweep_sizes(const kd_config *c, uint64_t *out, int cap)
{
    int n = 0;
    for (uint64_t s = 0; s <= 4096 && n < cap; s++)
        out[n++] = s;
    for (int e = 12; e < 64 && n + 3 <= cap; e++) {
        uint64_t p = UINT64_C(1) << e;
        out[n++] = p - 1;
        out[n++] = p;
        out[n++] = p + 1;
    }
    for (int op = 0; op < KD_OP_COUNT; op++)
        for (int b = 1; b < KD_BACKEND_COUNT && n + 3 <= cap; b++) {
            uint64_t t = c->threshold[op][b];
            out[n++] = t - 1;
            out[n++] = t;
            out[n++] = t + 1 ? t + 1 : t;
        }
    uint64_t x = 0x9E3779B97F4A7C15ull;
    while (n < cap) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[n++] = x >> (x & 63);
    }
    return n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_choose_deterministic_and_monotonic(void)
{
    enum { N = 20000 };
    static uint64_t sizes[N];
    kd_config c;
    kd_config_defaults(&c);
    c.threshold[KD_OP_ROPE][KD_BACKEND_CUDA] = 12345; /* a tuned value in the mix */
    int n = sweep_sizes(&c, sizes, N);
    qsort(sizes, (size_t)n, sizeof *sizes, cmp_u64);
    long calls = 0, bad = 0;
    for (int op = 0; op < KD_OP_COUNT; op++)
        for (int i = 0; i < 2; i++) {
            kd_backend_id off = offloads[i];
            int offloaded = 0;
            for (int s = 0; s < n; s++) {
                kd_backend_id d = kd_dispatch_choose(&c, (kd_op)op, sizes[s], off);
                /* Same input, same answer: repeated calls, also after other decisions. */
                for (int r = 0; r < 3; r++) {
                    kd_dispatch_choose(&c, (kd_op)((op + r) % KD_OP_COUNT), sizes[n - 1 - s], off);
                    bad += kd_dispatch_choose(&c, (kd_op)op, sizes[s], off) != d;
                    calls += 2;
                }
                /* The rule itself, and monotonic: cpu ... cpu offload ... offload. */
                kd_backend_id want = sizes[s] > c.threshold[op][off] ? off : KD_BACKEND_CPU;
                bad += d != want;
                bad += offloaded && d != off;
                offloaded |= d == off;
            }
        }
    printf("\n  %ld decisions over %d sizes: %ld wrong or changed\n", calls, n, bad);
    CU_ASSERT_EQUAL(bad, 0);

    /* The decision reads nothing but its arguments: a copy of the config decides alike. */
    kd_config copy = c;
    for (int s = 0; s < n; s += 7)
        CU_ASSERT_EQUAL(kd_dispatch_choose(&copy, KD_OP_Q4K_GEMV, sizes[s], KD_BACKEND_CUDA),
                        kd_dispatch_choose(&c, KD_OP_Q4K_GEMV, sizes[s], KD_BACKEND_CUDA));
}

/* Through the public API on a cpu-only context: every decision is cpu, every time. */
static void test_decide_public_api(void)
{
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1};
    kd_context *ctx;
    CU_ASSERT_FATAL(kd_context_create(&o, &ctx) == KD_OK);
    kd_tensor *x, *y;
    CU_ASSERT_FATAL(kd_tensor_f32(ctx, 4, 1024, NULL, &x) == KD_OK);
    CU_ASSERT_FATAL(kd_tensor_f32(ctx, 4, 1024, NULL, &y) == KD_OK);
    kd_op_desc d = {.op = KD_OP_RESIDUAL_ADD, .src = {x, x}, .dst = y};
    for (int i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(kd_dispatch_decide(ctx, &d), KD_BACKEND_CPU);
    kd_tensor_free(x);
    kd_tensor_free(y);
    kd_context_destroy(ctx);
}

/* ---- the config file -------------------------------------------------------------- */

static void test_file_parse(void)
{
    const char *path = temp_file("# tuned on this machine\n"
                                 "\n"
                                 "backend = auto\n"
                                 "threshold.q4k_gemv.cuda = 4194304   # 2048 x 2048\n"
                                 "  threshold.rmsnorm.opencl=123\n"
                                 "threshold.swiglu.cuda = never\n"
                                 "\t# indented comment\n");
    kd_config c;
    kd_config_defaults(&c);
    char why[512] = "";
    CU_ASSERT_EQUAL_FATAL(kd_config_load_file(&c, path, why, sizeof why), KD_OK);
    CU_ASSERT_EQUAL(c.threshold[KD_OP_Q4K_GEMV][KD_BACKEND_CUDA], 4194304);
    CU_ASSERT_EQUAL(c.threshold[KD_OP_RMSNORM][KD_BACKEND_OPENCL], 123);
    CU_ASSERT_EQUAL(c.threshold[KD_OP_SWIGLU][KD_BACKEND_CUDA], KD_THRESHOLD_NEVER);
    CU_ASSERT_EQUAL(c.source[KD_OP_Q4K_GEMV][KD_BACKEND_CUDA], KD_SRC_FILE);
    CU_ASSERT_EQUAL(c.source[KD_OP_ROPE][KD_BACKEND_CUDA], KD_SRC_DEFAULT);
    CU_ASSERT_EQUAL(c.forced, KD_BACKEND_AUTO);
    CU_ASSERT_STRING_EQUAL(c.file, path);
    unlink(path);

    path = temp_file("backend = cuda\n");
    CU_ASSERT_EQUAL(kd_config_load_file(&c, path, why, sizeof why), KD_OK);
    CU_ASSERT_EQUAL(c.forced, KD_BACKEND_CUDA);
    unlink(path);
}

typedef struct bad_file {
    const char *text;
    int line;
    const char *says; /* a piece of the message */
} bad_file;

static void test_file_errors(void)
{
    const bad_file cases[] = {
        {"threshold.q4k_gemv.cuda = 10\nthis is not a setting\n", 2, "key = value"},
        {"# ok\n\nthreshold.matmul.cuda = 10\n", 3, "unknown op 'matmul'"},
        {"threshold.rope.tpu = 10\n", 1, "unknown backend 'tpu'"},
        {"threshold.rope.cpu = 10\n", 1, "cpu has no threshold"},
        {"\n\n\n\nthreshold.rope.cuda = ten\n", 5, "'ten'"},
        {"threshold.rope.cuda = 0\n", 1, "> 0"},
        {"threshold.rope.cuda = -5\n", 1, "'-5'"},
        {"threshold.rope.cuda = 99999999999999999999999\n", 1, "whole number"},
        {"threshold.rope.cuda = 12 34\n", 1, "'12 34'"},
        {"backend = gpu\n", 1, "backend must be auto, cpu, opencl or cuda"},
        {"thresholds.rope.cuda = 1\n", 1, "unknown key"},
        {"threshold.rope = 1\n", 1, "threshold.<op>.<opencl|cuda>"},
        {"threshold.rope.cuda =\n", 1, "value is empty"},
        {"= 5\n", 1, "key is empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *path = temp_file(cases[i].text);
        kd_config c, before;
        kd_config_defaults(&c);
        before = c;
        char why[512] = "", where[128];
        kd_status st = kd_config_load_file(&c, path, why, sizeof why);
        snprintf(where, sizeof where, "%s:%d: ", path, cases[i].line);
        int ok = st == KD_ERR_FORMAT && strstr(why, where) == why && strstr(why, cases[i].says);
        if (!ok)
            printf("\n  case %zu: status %s, message '%s' (want '%s...%s')\n", i,
                   kd_status_name(st), why, where, cases[i].says);
        CU_ASSERT(ok);
        CU_ASSERT(same_config(&c, &before)); /* a bad file changes nothing */
        unlink(path);
    }
    /* A line too long to be a setting. */
    char *longtext = malloc(3000);
    CU_ASSERT_FATAL(longtext != NULL);
    memset(longtext, 'x', 2998);
    longtext[2998] = '\n';
    longtext[2999] = '\0';
    const char *path = temp_file(longtext);
    free(longtext);
    kd_config c;
    kd_config_defaults(&c);
    char why[512];
    CU_ASSERT_EQUAL(kd_config_load_file(&c, path, why, sizeof why), KD_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, ":1: line longer"));
    unlink(path);
    /* A file that does not exist. */
    CU_ASSERT_EQUAL(kd_config_load_file(&c, "/nonexistent/kd.conf", why, sizeof why), KD_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "cannot open '/nonexistent/kd.conf'"));
    CU_ASSERT_EQUAL(kd_config_load_file(&c, NULL, why, sizeof why), KD_ERR_NULL);
}

static void test_file_write_roundtrip(void)
{
    kd_config c, back;
    kd_config_defaults(&c);
    c.threshold[KD_OP_Q6K_GEMV][KD_BACKEND_CUDA] = 31337;
    c.threshold[KD_OP_ROPE][KD_BACKEND_OPENCL] = KD_THRESHOLD_NEVER;
    c.threshold[KD_OP_RMSNORM][KD_BACKEND_OPENCL] = 1;
    c.forced = KD_BACKEND_OPENCL;
    char path[] = "/tmp/kd_test_config_out_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    char why[512] = "";
    CU_ASSERT_EQUAL_FATAL(kd_config_write_file(&c, path, "written by test_config\nsecond line",
                                               why, sizeof why), KD_OK);
    kd_config_defaults(&back);
    CU_ASSERT_EQUAL_FATAL(kd_config_load_file(&back, path, why, sizeof why), KD_OK);
    CU_ASSERT(same_config(&c, &back));
    FILE *f = fopen(path, "r");
    CU_ASSERT_FATAL(f != NULL);
    char line[256];
    CU_ASSERT(fgets(line, sizeof line, f) && strcmp(line, "# written by test_config\n") == 0);
    CU_ASSERT(fgets(line, sizeof line, f) && strcmp(line, "# second line\n") == 0);
    fclose(f);
    unlink(path);
    CU_ASSERT_EQUAL(kd_config_write_file(&c, "/nonexistent/dir/kd.conf", NULL, why, sizeof why),
                    KD_ERR_IO);
}

/* ---- the environment -------------------------------------------------------------- */

static void test_env_override(void)
{
    const char *path = temp_file("threshold.q4k_gemv.opencl = 5\nbackend = cpu\n");
    kd_config c;
    kd_config_defaults(&c);
    char why[512] = "";
    CU_ASSERT_EQUAL_FATAL(kd_config_load_file(&c, path, why, sizeof why), KD_OK);
    unlink(path);
    setenv("KD_THRESHOLD_Q4K_GEMV_OPENCL", "123", 1);
    setenv("KD_THRESHOLD_RESIDUAL_ADD_CUDA", "never", 1);
    setenv("KD_BACKEND", "cuda", 1);
    CU_ASSERT_EQUAL(kd_config_apply_env(&c, why, sizeof why), KD_OK);
    CU_ASSERT_EQUAL(c.threshold[KD_OP_Q4K_GEMV][KD_BACKEND_OPENCL], 123); /* env beats file */
    CU_ASSERT_EQUAL(c.source[KD_OP_Q4K_GEMV][KD_BACKEND_OPENCL], KD_SRC_ENV);
    CU_ASSERT_EQUAL(c.threshold[KD_OP_RESIDUAL_ADD][KD_BACKEND_CUDA], KD_THRESHOLD_NEVER);
    CU_ASSERT_EQUAL(c.forced, KD_BACKEND_CUDA);
    unsetenv("KD_THRESHOLD_Q4K_GEMV_OPENCL");
    unsetenv("KD_THRESHOLD_RESIDUAL_ADD_CUDA");
    setenv("KD_BACKEND", "auto", 1);
    CU_ASSERT_EQUAL(kd_config_apply_env(&c, why, sizeof why), KD_OK);
    CU_ASSERT_EQUAL(c.forced, KD_BACKEND_AUTO);
    unsetenv("KD_BACKEND");

    /* Bad values and names: an error that names the variable, nothing changed. */
    const char *bad[][3] = {
        {"KD_THRESHOLD_ROPE_CUDA", "0", "KD_THRESHOLD_ROPE_CUDA='0'"},
        {"KD_THRESHOLD_ROPE_CUDA", "lots", "'lots'"},
        {"KD_THRESHOLD_MATMUL_CUDA", "5", "unknown op 'matmul'"},
        {"KD_THRESHOLD_ROPE_CPU", "5", "cpu has no threshold"},
        {"KD_THRESHOLD_ROPE_TPU", "5", "unknown backend 'tpu'"},
        {"KD_THRESHOLD_ROPE", "5", "KD_THRESHOLD_ROPE"},
        {"KD_BACKEND", "tpu", "KD_BACKEND='tpu'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        kd_config before = c;
        kd_test_env saved = kd_test_env_set(bad[i][0], bad[i][1]);
        kd_status st = kd_config_apply_env(&c, why, sizeof why);
        kd_test_env_restore(&saved);
        int ok = st == KD_ERR_ARG && strstr(why, bad[i][2]) != NULL;
        if (!ok)
            printf("\n  %s=%s: %s '%s'\n", bad[i][0], bad[i][1], kd_status_name(st), why);
        CU_ASSERT(ok);
        CU_ASSERT(same_config(&c, &before));
    }
}

/* KD_BACKEND forcing through a context: the decision is the forced backend whatever
 * the size (even one that is absent: kd_run then reports it). */
static void test_forcing_public_api(void)
{
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1};
    kd_context *ctx;
    CU_ASSERT_EQUAL_FATAL(kd_test_context_under_env("KD_BACKEND", "opencl", &o, &ctx), KD_OK);
    kd_tensor *x, *y;
    CU_ASSERT_FATAL(kd_tensor_f32(ctx, 1, 8, NULL, &x) == KD_OK);
    CU_ASSERT_FATAL(kd_tensor_f32(ctx, 1, 8, NULL, &y) == KD_OK);
    kd_op_desc d = {.op = KD_OP_SWIGLU, .src = {x, x}, .dst = y};
    CU_ASSERT_EQUAL(kd_dispatch_decide(ctx, &d), KD_BACKEND_OPENCL); /* 8 elements, forced */
    kd_tensor_free(x);
    kd_tensor_free(y);
    kd_context_destroy(ctx);

    /* A config file with an error stops the context, naming the line. */
    const char *path = temp_file("backend = auto\nthreshold.rope.cuda = -1\n");
    o.config = path;
    CU_ASSERT_NOT_EQUAL(kd_context_create(&o, &ctx), KD_OK);
    char where[128];
    snprintf(where, sizeof where, "%s:2:", path);
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(NULL), where));
    unlink(path);
}

static void test_threshold_parse(void)
{
    uint64_t v;
    CU_ASSERT(kd_config_parse_threshold("1", &v) == 0 && v == 1);
    CU_ASSERT(kd_config_parse_threshold("18446744073709551615", &v) == 0 && v == UINT64_MAX);
    CU_ASSERT(kd_config_parse_threshold("never", &v) == 0 && v == KD_THRESHOLD_NEVER);
    CU_ASSERT(kd_config_parse_threshold("18446744073709551616", &v) != 0);
    CU_ASSERT(kd_config_parse_threshold("0", &v) != 0);
    CU_ASSERT(kd_config_parse_threshold("", &v) != 0);
    CU_ASSERT(kd_config_parse_threshold("+5", &v) != 0);
    CU_ASSERT(kd_config_parse_threshold("5k", &v) != 0);
    CU_ASSERT(kd_config_parse_threshold(NULL, &v) != 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("config", NULL, NULL);
    CU_add_test(s, "defaults", test_defaults);
    CU_add_test(s, "data_size", test_data_size);
    CU_add_test(s, "decision rules", test_choose_rules);
    CU_add_test(s, "decision deterministic and monotonic", test_choose_deterministic_and_monotonic);
    CU_add_test(s, "kd_dispatch_decide public api", test_decide_public_api);
    CU_add_test(s, "threshold values", test_threshold_parse);
    CU_add_test(s, "config file", test_file_parse);
    CU_add_test(s, "config file errors with line numbers", test_file_errors);
    CU_add_test(s, "config file write and read back", test_file_write_roundtrip);
    CU_add_test(s, "environment overrides", test_env_override);
    CU_add_test(s, "KD_BACKEND forcing and bad file through a context", test_forcing_public_api);
    return kd_test_main();
}
