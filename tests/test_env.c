/* ctest-labels: cpu;env */
/* The environment read in one place, strictly (SPEC §11), context options, and devices
 * as data: every malformed value of each variable the context reads is refused with a
 * message naming the variable (or the option) and the value; options win over the
 * environment; the config file is never taken from the working directory; the device
 * lists agree with what a context finds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "env.h"
#include "host_cpus.h"
#include "kd_backend.h"
#include "kd_test_util.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- environment helpers ---------------------------------------------------------- */

static const kd_context_options cpu_only = {.disable_opencl = 1, .disable_cuda = 1, .config = ""};

/* The context refuses name=value with KD_ERR_ARG and a message naming both. */
static void expect_refused(const char *name, const char *value)
{
    kd_test_expect_env_refused(name, value, &cpu_only);
}

static void expect_accepted(const char *name, const char *value)
{
    kd_context *c = NULL;
    kd_status st = kd_test_context_under_env(name, value, &cpu_only, &c);
    if (st != KD_OK)
        printf("\n  %s='%s' refused: %s", name, value ? value : "(unset)", kd_last_error(NULL));
    CU_ASSERT_EQUAL(st, KD_OK);
    kd_context_destroy(c);
}

/* ---- the parsers ------------------------------------------------------------------ */

static void test_parse_int(void)
{
    long long v = 0;
    char why[256];
    CU_ASSERT_EQUAL(kd_env_parse_int("X", "7", 1, 10, &v, why, sizeof why), KD_OK);
    CU_ASSERT_EQUAL(v, 7);
    CU_ASSERT_EQUAL(kd_env_parse_int("X", "10", 1, 10, &v, why, sizeof why), KD_OK);
    CU_ASSERT_EQUAL(kd_env_parse_int("X", "-3", -5, 0, &v, why, sizeof why), KD_OK);
    CU_ASSERT_EQUAL(v, -3);
    const char *bad[] = {"", "abc", "12abc", " 5", "5 ", "0", "11", "-1", "0x5", "1e3",
                         "99999999999999999999999", "--1"};
    for (int i = 0; i < N(bad); i++) {
        v = 42;
        CU_ASSERT_EQUAL(kd_env_parse_int("KD_X", bad[i], 1, 10, &v, why, sizeof why), KD_ERR_ARG);
        CU_ASSERT_EQUAL(v, 42); /* left as it was */
        CU_ASSERT(strstr(why, "KD_X='") != NULL);
        CU_ASSERT(strstr(why, "[1, 10]") != NULL);
    }
    CU_ASSERT_EQUAL(kd_env_parse_int("KD_X", NULL, 1, 10, &v, why, sizeof why), KD_ERR_ARG);
}

static void test_parse_choice(void)
{
    static const char *const c[] = {"scalar", "avx2", "avx512"};
    int i = -1;
    char why[256];
    CU_ASSERT_EQUAL(kd_env_parse_choice("S", "AVX2", c, 3, &i, why, sizeof why), KD_OK);
    CU_ASSERT_EQUAL(i, 1);
    const char *bad[] = {"", "avx", "avx5120", "sse", " avx2"};
    for (int k = 0; k < N(bad); k++) {
        CU_ASSERT_EQUAL(kd_env_parse_choice("KD_S", bad[k], c, 3, &i, why, sizeof why), KD_ERR_ARG);
        CU_ASSERT(strstr(why, "KD_S='") != NULL);
        CU_ASSERT(strstr(why, "scalar, avx2, avx512") != NULL);
    }
    /* an unset or empty variable is "not given", not an error */
    kd_test_env e = kd_test_env_set("KD_TEST_ENV_CHOICE", "");
    int found = 1;
    i = -1;
    CU_ASSERT_EQUAL(kd_env_choice("KD_TEST_ENV_CHOICE", c, 3, &i, &found, why, sizeof why), KD_OK);
    CU_ASSERT_EQUAL(found, 0);
    CU_ASSERT_EQUAL(i, -1);
    kd_test_env_restore(&e);
}

/* ---- the variables a context reads ------------------------------------------------ */

static void test_cpu_threads(void)
{
    const char *bad[] = {"0", "-1", "abc", "100000", "4x", "1025", "2.5"};
    for (int i = 0; i < N(bad); i++)
        expect_refused("KD_CPU_THREADS", bad[i]);
    expect_accepted("KD_CPU_THREADS", NULL);
    expect_accepted("KD_CPU_THREADS", "");
    expect_accepted("KD_CPU_THREADS", "1024");

    /* the value reaches the cpu backend */
    kd_test_env e = kd_test_env_set("KD_CPU_THREADS", "3");
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1, .config = ""};
    kd_context *c = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_context_create(&o, &c), KD_OK);
    CU_ASSERT(strstr(kd_backend_reason(c, KD_BACKEND_CPU), "3 threads (KD_CPU_THREADS)") != NULL);
    kd_context_destroy(c);
    /* the option wins over the environment, even a malformed one */
    kd_test_env_restore(&e);
    e = kd_test_env_set("KD_CPU_THREADS", "abc");
    o.cpu_threads = 2;
    CU_ASSERT_EQUAL_FATAL(kd_context_create(&o, &c), KD_OK);
    CU_ASSERT(strstr(kd_backend_reason(c, KD_BACKEND_CPU), "2 threads (kd_context_options.cpu_threads)") != NULL);
    kd_context_destroy(c);
    kd_test_env_restore(&e);
    /* neither: one per CPU the process may use */
    o.cpu_threads = 0;
    e = kd_test_env_set("KD_CPU_THREADS", NULL);
    CU_ASSERT_EQUAL_FATAL(kd_context_create(&o, &c), KD_OK);
    kd_test_env_restore(&e);
    kd_host_cpus cpus;
    kd_host_cpus_read(&cpus);
    char want[64];
    snprintf(want, sizeof want, "host cpu, %d thread%s (one per CPU", cpus.usable, cpus.usable == 1 ? "" : "s");
    CU_ASSERT(strncmp(kd_backend_reason(c, KD_BACKEND_CPU), want, strlen(want)) == 0);
    kd_context_destroy(c);
    /* and an option out of range is refused by name */
    const int bad_opt[] = {-1, KD_MAX_CPU_THREADS + 1};
    for (int i = 0; i < N(bad_opt); i++) {
        o.cpu_threads = bad_opt[i];
        CU_ASSERT_EQUAL(kd_context_create(&o, &c), KD_ERR_ARG);
        CU_ASSERT(strstr(kd_last_error(NULL), "kd_context_options.cpu_threads") != NULL);
    }
}

static void test_huge_pages(void)
{
    expect_refused("KD_HUGE_PAGES", "maybe");
    expect_refused("KD_HUGE_PAGES", "0");
    expect_accepted("KD_HUGE_PAGES", "off");
    expect_accepted("KD_HUGE_PAGES", "ON");
}

static void test_cpu_simd(void)
{
    expect_refused("KD_CPU_SIMD", "avx1024");
    expect_refused("KD_CPU_SIMD", "sse4");
    expect_accepted("KD_CPU_SIMD", "scalar");
    expect_accepted("KD_CPU_SIMD", "AVX2");
    expect_refused("KD_CPU_BLAS_MIN_M", "abc");
    expect_refused("KD_CPU_BLAS_MIN_M", "0");
    expect_refused("KD_CPU_BLAS_MIN_M", "64k");
    expect_accepted("KD_CPU_BLAS_MIN_M", "64");
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1, .config = "",
                            .cpu_simd = "neon"};
    kd_context *c = NULL;
    CU_ASSERT_EQUAL(kd_context_create(&o, &c), KD_ERR_ARG);
    CU_ASSERT(strstr(kd_last_error(NULL), "kd_context_options.cpu_simd='neon'") != NULL);
    /* the option caps the level the cpu backend uses, over the environment */
    kd_test_env e = kd_test_env_set("KD_CPU_SIMD", "avx512");
    o.cpu_simd = "scalar";
    CU_ASSERT_EQUAL_FATAL(kd_context_create(&o, &c), KD_OK);
    CU_ASSERT_EQUAL(kd_context_settings(c)->cpu_simd_cap, 0);
    printf("\n  cpu_simd='scalar': %s", kd_backend_reason(c, KD_BACKEND_CPU));
    CU_ASSERT(strstr(kd_backend_reason(c, KD_BACKEND_CPU), "SIMD scalar") != NULL);
    kd_context_destroy(c);
    kd_test_env_restore(&e);
}

static void test_device_variables(void)
{
    expect_refused("KD_OPENCL_DEVICE", "99999999999");
    expect_refused("KD_OPENCL_PLATFORM", "4294967296");
    expect_refused("KD_CUDA_DEVICE", "x");
    expect_refused("KD_CUDA_DEVICE", "-1");
    expect_refused("KD_CUDA_DEVICE", "1 ");
    expect_accepted("KD_OPENCL_DEVICE", "pthread"); /* a name substring */
    expect_accepted("KD_CUDA_DEVICE", "0");
    expect_refused("KD_BACKEND", "gpu");
    /* KD_OPENCL_OPTIONS: printable ASCII below 128 characters */
    char long_opts[200];
    memset(long_opts, 'x', sizeof long_opts - 1);
    long_opts[sizeof long_opts - 1] = '\0';
    long_opts[0] = '-';
    expect_refused("KD_OPENCL_OPTIONS", long_opts);
    long_opts[127] = '\0'; /* 127 characters: the longest that fits */
    expect_accepted("KD_OPENCL_OPTIONS", long_opts);
    expect_refused("KD_OPENCL_OPTIONS", "-DA=1\t-DB=2");
    expect_refused("KD_OPENCL_OPTIONS", "-DA=\xc3\xa9");
    expect_accepted("KD_OPENCL_OPTIONS", "-cl-mad-enable -DKD_X=1");
}

/* ---- the config file: explicit, KD_CONFIG or the per-user file, never ./ ----------- */

static char tmp_dir[64];

static void write_file(const char *path, const char *text)
{
    CU_ASSERT_FATAL(kd_test_write_file(path, text, strlen(text)) == 0);
}

/* A temporary directory holding a malformed kdispatch.conf, and one under
 * <dir>/xdg/kdispatch/ and <dir>/home/.config/kdispatch/. */
static void make_config_tree(void)
{
    char path[256];
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/kd_test_env_XXXXXX");
    CU_ASSERT_FATAL(mkdtemp(tmp_dir) != NULL);
    const char *dirs[] = {"xdg", "xdg/kdispatch", "home", "home/.config",
                          "home/.config/kdispatch"};
    for (int i = 0; i < N(dirs); i++) {
        snprintf(path, sizeof path, "%s/%s", tmp_dir, dirs[i]);
        CU_ASSERT_FATAL(mkdir(path, 0700) == 0);
    }
    const char *files[] = {"kdispatch.conf", "xdg/kdispatch/kdispatch.conf",
                           "home/.config/kdispatch/kdispatch.conf"};
    for (int i = 0; i < N(files); i++) {
        snprintf(path, sizeof path, "%s/%s", tmp_dir, files[i]);
        write_file(path, "this is not a setting\n");
    }
}

static void remove_config_tree(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    CU_ASSERT(kd_test_system(cmd) == 0);
}

/* kd_context_create (opts) with the given XDG_CONFIG_HOME, HOME and KD_CONFIG. */
static kd_status create_config(const kd_context_options *o, const char *xdg, const char *home,
                               const char *kd_config)
{
    kd_test_env e[3] = {kd_test_env_set("XDG_CONFIG_HOME", xdg), kd_test_env_set("HOME", home),
                        kd_test_env_set("KD_CONFIG", kd_config)};
    kd_context *c = NULL;
    kd_status st = kd_context_create(o, &c);
    if (st != KD_OK)
        printf("\n  config: %s: %s", kd_status_name(st), kd_last_error(NULL));
    kd_context_destroy(c);
    for (int i = 2; i >= 0; i--)
        kd_test_env_restore(&e[i]);
    return st;
}

static void test_config_sources(void)
{
    char xdg[128], home[128], cwd[512], path[256];
    make_config_tree();
    snprintf(xdg, sizeof xdg, "%s/xdg", tmp_dir);
    snprintf(home, sizeof home, "%s/home", tmp_dir);
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1};
    CU_ASSERT_FATAL(getcwd(cwd, sizeof cwd) != NULL);
    CU_ASSERT_FATAL(chdir(tmp_dir) == 0);

    /* a malformed ./kdispatch.conf is not read: nothing names it */
    CU_ASSERT_EQUAL(create_config(&o, NULL, NULL, NULL), KD_OK);
    /* the per-user file is: $XDG_CONFIG_HOME first, then ~/.config */
    CU_ASSERT_EQUAL(create_config(&o, xdg, home, NULL), KD_ERR_FORMAT);
    snprintf(path, sizeof path, "%s/kdispatch/kdispatch.conf", xdg);
    CU_ASSERT(strstr(kd_last_error(NULL), path) != NULL);
    CU_ASSERT_EQUAL(create_config(&o, NULL, home, NULL), KD_ERR_FORMAT);
    snprintf(path, sizeof path, "%s/.config/kdispatch/kdispatch.conf", home);
    CU_ASSERT(strstr(kd_last_error(NULL), path) != NULL);
    /* a relative XDG_CONFIG_HOME is invalid (XDG spec): ~/.config is used */
    CU_ASSERT_EQUAL(create_config(&o, "xdg", home, NULL), KD_ERR_FORMAT);
    CU_ASSERT(strstr(kd_last_error(NULL), path) != NULL);
    /* KD_CONFIG and the option name the file instead; "" means none. (Not /dev/null:
     * a config that is not a regular file is refused, issue 15.) */
    char good[256];
    snprintf(good, sizeof good, "%s/empty.conf", tmp_dir);
    write_file(good, "");
    CU_ASSERT_EQUAL(create_config(&o, xdg, home, good), KD_OK);
    o.config = "";
    CU_ASSERT_EQUAL(create_config(&o, xdg, home, NULL), KD_OK);
    o.config = "/nonexistent/kdispatch.conf"; /* named explicitly: must be readable */
    CU_ASSERT_NOT_EQUAL(create_config(&o, NULL, NULL, NULL), KD_OK);
    CU_ASSERT(strstr(kd_last_error(NULL), "/nonexistent/kdispatch.conf") != NULL);

    CU_ASSERT_FATAL(chdir(cwd) == 0);
    remove_config_tree();
}

static void test_user_config_path(void)
{
    char buf[256];
    kd_test_env e[2] = {kd_test_env_set("XDG_CONFIG_HOME", "/x/cfg"),
                        kd_test_env_set("HOME", "/home/u")};
    CU_ASSERT(kd_env_user_config_path(buf, sizeof buf));
    CU_ASSERT_STRING_EQUAL(buf, "/x/cfg/kdispatch/kdispatch.conf");
    kd_test_env_restore(&e[0]);
    e[0] = kd_test_env_set("XDG_CONFIG_HOME", NULL);
    CU_ASSERT(kd_env_user_config_path(buf, sizeof buf));
    CU_ASSERT_STRING_EQUAL(buf, "/home/u/.config/kdispatch/kdispatch.conf");
    kd_test_env_restore(&e[1]);
    e[1] = kd_test_env_set("HOME", NULL);
    CU_ASSERT(!kd_env_user_config_path(buf, sizeof buf));
    kd_test_env_restore(&e[1]);
    e[1] = kd_test_env_set("HOME", "/a/path/longer/than/the/buffer");
    CU_ASSERT(!kd_env_user_config_path(buf, 16)); /* does not fit: refused, not cut */
    kd_test_env_restore(&e[1]);
    kd_test_env_restore(&e[0]);
}

/* ---- devices as data ---------------------------------------------------------------- */

static void test_cpu_device(void)
{
    kd_device_info d;
    CU_ASSERT_EQUAL(kd_device_count(KD_BACKEND_CPU), 1);
    CU_ASSERT_EQUAL_FATAL(kd_device_info_get(KD_BACKEND_CPU, 0, &d), KD_OK);
    printf("\n  cpu 0: '%s' (%s), %d cores, %llu bytes, %s", d.name, d.vendor,
           d.compute_units, (unsigned long long)d.global_mem_bytes, d.driver_version);
    CU_ASSERT_EQUAL(d.backend, KD_BACKEND_CPU);
    CU_ASSERT_EQUAL(d.index, 0);
    CU_ASSERT(d.name[0] != '\0');
    kd_host_cpus cpus; /* the CPUs this process may use (test_host_cpus.c) */
    kd_host_cpus_read(&cpus);
    CU_ASSERT_EQUAL(d.compute_units, cpus.usable);
    CU_ASSERT(d.compute_units <= (int)sysconf(_SC_NPROCESSORS_ONLN));
    CU_ASSERT(d.global_mem_bytes > 0);
    CU_ASSERT(strncmp(d.driver_version, "simd ", 5) == 0);
    CU_ASSERT(!d.is_gpu && d.usable);
    CU_ASSERT_EQUAL(kd_device_info_get(KD_BACKEND_CPU, 1, &d), KD_ERR_ARG);
    CU_ASSERT_EQUAL(kd_device_info_get(KD_BACKEND_CPU, -1, &d), KD_ERR_ARG);
    CU_ASSERT_EQUAL(kd_device_info_get(KD_BACKEND_CPU, 0, NULL), KD_ERR_NULL);
    CU_ASSERT_EQUAL(kd_device_count(KD_BACKEND_COUNT), 0);
    CU_ASSERT_EQUAL(kd_device_count(KD_BACKEND_AUTO), 0);
    CU_ASSERT_EQUAL(kd_device_info_get(KD_BACKEND_COUNT, 0, &d), KD_ERR_UNAVAILABLE);
}

/* Each offload backend: its list and a context agree (no device listed: the backend is
 * absent; devices listed: every entry is filled, and an index past the end is refused). */
static void test_offload_devices_agree(void)
{
    kd_context_options o = {.config = ""};
    kd_context *c = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_context_create(&o, &c), KD_OK);
    const kd_backend_id offload[] = {KD_BACKEND_OPENCL, KD_BACKEND_CUDA};
    for (int k = 0; k < N(offload); k++) {
        kd_backend_id b = offload[k];
        int n = kd_device_count(b);
        printf("\n  %s: %d device(s), backend %s", kd_backend_name(b), n,
               kd_backend_available(c, b) ? "present" : "absent");
        if (n == 0)
            CU_ASSERT(!kd_backend_available(c, b));
        for (int i = 0; i < n; i++) {
            kd_device_info d;
            CU_ASSERT_EQUAL_FATAL(kd_device_info_get(b, i, &d), KD_OK);
            printf("\n    %d: %s (%s%s%s), %d units, %llu bytes, driver %s%s", i, d.name,
                   d.vendor, d.platform[0] ? ", " : "", d.platform, d.compute_units,
                   (unsigned long long)d.global_mem_bytes, d.driver_version,
                   d.usable ? "" : ", not usable");
            CU_ASSERT(d.backend == b && d.index == i);
            CU_ASSERT(d.name[0] && d.driver_version[0]);
            CU_ASSERT(d.compute_units > 0 && d.global_mem_bytes > 0);
        }
        kd_device_info d;
        /* past the end: refused; a backend not built in has no list at all */
        CU_ASSERT_EQUAL(kd_device_info_get(b, n, &d),
                        kd_backend_built((kd_backend_id)b) ? KD_ERR_ARG : KD_ERR_UNAVAILABLE);
    }
    kd_context_destroy(c);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("env", NULL, NULL);
    CU_add_test(s, "whole numbers, strictly", test_parse_int);
    CU_add_test(s, "choices, strictly", test_parse_choice);
    CU_add_test(s, "KD_CPU_THREADS and the cpu_threads option", test_cpu_threads);
    CU_add_test(s, "KD_CPU_SIMD and the cpu_simd option", test_cpu_simd);
    CU_add_test(s, "KD_HUGE_PAGES: on or off, anything else refused", test_huge_pages);
    CU_add_test(s, "device variables and KD_BACKEND", test_device_variables);
    CU_add_test(s, "config file: explicit, KD_CONFIG, XDG; never ./", test_config_sources);
    CU_add_test(s, "per-user config path", test_user_config_path);
    CU_add_test(s, "the cpu device", test_cpu_device);
    CU_add_test(s, "offload device lists agree with a context", test_offload_devices_agree);
    return kd_test_main();
}
