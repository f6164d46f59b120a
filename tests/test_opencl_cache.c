/* ctest-labels: opencl */
/* The OpenCL program cache under damage: every corruption of an entry (byte flips at many
 * offsets, random 16-bit corruptions, truncations, an empty file, a header alone, an
 * entry made for another device or driver), two processes compiling into one empty
 * directory at once, and an unusable cache directory. Each case runs in a child process
 * (a crash or hang fails the case instead of killing the suite) that must get correct
 * results with at most one rebuild and one warning; a second context in the same child
 * must then load the repaired entry. The parent never touches OpenCL, so it can fork. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kd_test_util.h"

#ifndef KD_HAVE_OPENCL
int main(void) { return kd_test_skip("kdispatch was built without the OpenCL backend"); }
#else

#include "cpu/cpu_ops.h"
#include "opencl/kd_opencl_internal.h"
#include "sha256.h"

#define CHILD_SKIP 77
#define CHILD_TIMEOUT_S 240

static char root[256];   /* the test's temporary directory */
static char good[1100];  /* a valid entry's path, and its bytes */
static unsigned char *good_bytes;
static size_t good_len;

/* ---- children ------------------------------------------------------------------------ */

/* Runs fn in a child under an alarm; its exit status, or 128 + signal when it died. */
static int in_child(int (*fn)(const void *), const void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        alarm(CHILD_TIMEOUT_S);
        _exit(fn(arg));
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    if (WIFSIGNALED(status)) {
        printf("\n  child died of signal %d", WTERMSIG(status));
        return 128 + WTERMSIG(status);
    }
    return WEXITSTATUS(status);
}

/* Lines in a warnings text. */
static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* One context: program obtained as expected (expect_cache 0/1, -1 either), the number
 * of warnings as expected, and a Q4_K GEMV on OpenCL that matches the oracle. */
static int check_context(int expect_cache, int expect_warnings, const char *what)
{
    kd_context_options o = {.disable_cuda = 1};
    kd_context *c = NULL;
    if (kd_context_create(&o, &c) != KD_OK)
        return printf("\n  %s: context: %s", what, kd_last_error(NULL)), 10;
    if (!kd_backend_available(c, KD_BACKEND_OPENCL)) {
        printf("\n  no OpenCL device: %s", kd_backend_reason(c, KD_BACKEND_OPENCL));
        kd_context_destroy(c);
        return CHILD_SKIP;
    }
    int rc = 0;
    kd_opencl_build_info info;
    char warn[2048];
    kd_problem p;
    if (kd_opencl_build_info_get(c, &info) != KD_OK) {
        printf("\n  %s: build: %s", what, kd_last_error(c));
        rc = 11;
    } else if (expect_cache >= 0 && info.from_cache != expect_cache) {
        printf("\n  %s: from_cache %d, expected %d", what, info.from_cache, expect_cache);
        rc = 12;
    } else if (kd_warnings(c, warn, sizeof warn), count_lines(warn) != expect_warnings) {
        printf("\n  %s: %d warnings, expected %d: %s", what, count_lines(warn),
               expect_warnings, warn);
        rc = 13;
    } else if (kd_problem_make(c, KD_OP_Q4K_GEMV, 2, 20, 512, 5, &p) != 0) {
        rc = 14;
    } else {
        if (!kd_test_run_matches_oracle(c, &p, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK, what))
            rc = 15;
        kd_problem_free(&p);
    }
    kd_context_destroy(c);
    return rc;
}

/* A damaged entry: one rebuild with one warning, then the rewritten entry loads. */
static int child_damaged(const void *what)
{
    int rc = check_context(0, 1, what);
    return rc ? rc : check_context(1, 0, what);
}

static int child_fresh(const void *what) { return check_context(-1, 0, what); }

static int child_no_cache(const void *what)
{
    int rc = check_context(0, 1, what);
    return rc ? rc : check_context(0, 1, what); /* still no cache, still one warning */
}

/* A first build (empty caches) with the child's stderr in a file: the file must stay
 * empty. PoCL's compiler runs in the process and printed "60 warnings generated." there
 * on its haswell (AVX2) target before the backend built with -w. kernellib: a PoCL kernel
 * library to force (POCL_KERNELLIB_NAME), NULL for the host's own. */
static int child_quiet(const void *kernellib)
{
    char dir[300], log[320];
    snprintf(dir, sizeof dir, "%s/quiet-%s", root, kernellib ? (const char *)kernellib : "host");
    snprintf(log, sizeof log, "%s.stderr", dir);
    setenv("KD_CACHE_DIR", dir, 1);
    if (kernellib) {
        setenv("POCL_KERNELLIB_NAME", kernellib, 1);
        kd_context_options o = {.disable_cuda = 1};
        kd_context *c = NULL;
        int taken = kd_context_create(&o, &c) == KD_OK &&
                    strstr(kd_backend_reason(c, KD_BACKEND_OPENCL), "-haswell-") != NULL;
        kd_context_destroy(c);
        if (!taken)
            return CHILD_SKIP;
    }
    fflush(stderr);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
        return 30;
    close(fd);
    int rc = check_context(0, 0, "first build, stderr to a file");
    fflush(stderr);
    size_t n = 0;
    char *text = kd_test_read_file(log, &n);
    if (!text)
        rc = rc ? rc : 31;
    else if (n > 0 && !rc) {
        printf("\n  a first build wrote %zu bytes to stderr: %.300s", n, text);
        rc = 32;
    }
    free(text);
    return rc;
}

/* ---- entries ------------------------------------------------------------------------- */

/* The entry in dir (the only opencl-*.bin file); 1 when found. */
static int find_entry(const char *dir, char *path, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, "opencl-", 7) == 0 && strstr(e->d_name, ".bin") &&
            !strstr(e->d_name, ".tmp")) {
            snprintf(path, cap, "%s/%s", dir, e->d_name);
            found++;
        }
    if (d)
        closedir(d);
    return found == 1;
}

/* Offset of the binary (after the "sha256=" line). */
static size_t header_len(void)
{
    const unsigned char *p = good_bytes;
    const char *sum = strstr((const char *)p, "\nsha256=");
    return sum ? (size_t)(sum - (const char *)p) + 1 + 7 + 64 + 1 : 0;
}

/* Writes bytes as the entry, runs the damaged-entry child, and checks the outcome. */
static void expect_rebuild(const unsigned char *bytes, size_t n, const char *what)
{
    CU_ASSERT_FATAL(kd_test_write_file(good, bytes, n) == 0);
    int rc = in_child(child_damaged, what);
    if (rc != 0)
        printf("\n  case '%s': child exit %d", what, rc);
    CU_ASSERT_EQUAL(rc, 0);
}

static void test_first_build(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/cache", root);
    int rc = in_child(child_fresh, "first build");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_FATAL(find_entry(dir, good, sizeof good));
    good_bytes = (unsigned char *)kd_test_read_file(good, &good_len);
    CU_ASSERT_FATAL(good_bytes && good_len > 1000);
    CU_ASSERT_FATAL(header_len() > 0 && header_len() < good_len);
    rc = in_child(child_damaged, "control: a good entry must not rebuild");
    CU_ASSERT_NOT_EQUAL(rc, 0); /* the check itself fails on a good entry */
}

static void test_byte_flips(void)
{
    CU_ASSERT_FATAL(good_bytes != NULL);
    size_t h = header_len();
    size_t offsets[] = {0, 5, 40, h / 2, h - 80, h - 70, h - 66, h - 30, h - 2, h - 1, h,
                        h + 1, h + 100, (h + good_len) / 2, good_len - 100, good_len - 1};
    unsigned char *b = malloc(good_len);
    CU_ASSERT_FATAL(b != NULL);
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        char what[64];
        memcpy(b, good_bytes, good_len);
        b[offsets[i]] ^= 0x01u << (i % 8);
        snprintf(what, sizeof what, "bit flip at %zu", offsets[i]);
        expect_rebuild(b, good_len, what);
    }
    free(b);
}

static void test_random_corruptions(void)
{
    CU_ASSERT_FATAL(good_bytes != NULL);
    unsigned char *b = malloc(good_len);
    CU_ASSERT_FATAL(b != NULL);
    kd_rng r;
    kd_rng_seed(&r, 1515);
    for (int i = 0; i < 8; i++) {
        char what[64];
        memcpy(b, good_bytes, good_len);
        size_t at = (size_t)(kd_rng_next(&r) % (good_len - 1));
        uint16_t v = (uint16_t)kd_rng_next(&r);
        if (b[at] == (v & 0xff) && b[at + 1] == (v >> 8))
            v ^= 0x8001; /* it must change the entry */
        b[at] = (unsigned char)(v & 0xff);
        b[at + 1] = (unsigned char)(v >> 8);
        snprintf(what, sizeof what, "16-bit corruption at %zu", at);
        expect_rebuild(b, good_len, what);
    }
    free(b);
}

static void test_truncations(void)
{
    CU_ASSERT_FATAL(good_bytes != NULL);
    size_t h = header_len();
    size_t lengths[] = {0, 1, h / 2, h - 1, h, h + 1, (h + good_len) / 2, good_len - 1};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu bytes%s", lengths[i],
                 lengths[i] == h ? " (header only)" : "");
        expect_rebuild(good_bytes, lengths[i], what);
    }
    unsigned char *b = malloc(good_len + 1); /* and one byte too many */
    CU_ASSERT_FATAL(b != NULL);
    memcpy(b, good_bytes, good_len);
    b[good_len] = 0;
    expect_rebuild(b, good_len + 1, "one byte appended");
    free(b);
}

/* A well-formed entry (right checksum) whose key names another device or driver. */
static void foreign_entry(const char *field, const char *what)
{
    size_t h = header_len();
    char *head = malloc(h + 1);
    CU_ASSERT_FATAL(head != NULL);
    memcpy(head, good_bytes, h);
    head[h] = '\0';
    char *line = strstr(head, field);
    CU_ASSERT_FATAL(line != NULL);
    for (char *p = line + strlen(field); *p && *p != '\n'; p++)
        *p = *p == 'X' ? 'Y' : 'X'; /* same length, other value */
    /* re-sign it: key + length line, then the binary */
    char *len_line = strstr(head, "binary=");
    char *sum = strstr(head, "sha256=");
    CU_ASSERT_FATAL(len_line && sum);
    kd_sha256 s;
    unsigned char d[32];
    kd_sha256_init(&s);
    kd_sha256_update(&s, head, (size_t)(sum - head));
    kd_sha256_update(&s, good_bytes + h, good_len - h);
    kd_sha256_final(&s, d);
    for (int i = 0; i < 32; i++)
        snprintf(sum + 7 + 2 * i, 3, "%02x", d[i]);
    sum[7 + 64] = '\n';
    unsigned char *b = malloc(good_len);
    CU_ASSERT_FATAL(b != NULL);
    memcpy(b, head, h);
    memcpy(b + h, good_bytes + h, good_len - h);
    expect_rebuild(b, good_len, what);
    free(b);
    free(head);
}

static void test_foreign_entries(void)
{
    CU_ASSERT_FATAL(good_bytes != NULL);
    foreign_entry("\ndevice=", "entry of another device");
    foreign_entry("\ndriver=", "entry of another driver version");
    foreign_entry("\nplatform_version=", "entry of another PoCL/LLVM build");
}

/* Two processes start at once on one empty directory: both compile, both rename whole
 * entries, and a third process loads the survivor. */
static void test_two_writers(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/shared", root);
    setenv("KD_CACHE_DIR", dir, 1);
    fflush(NULL);
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        pid[i] = fork();
        CU_ASSERT_FATAL(pid[i] >= 0);
        if (pid[i] == 0) {
            alarm(CHILD_TIMEOUT_S);
            _exit(check_context(-1, 0, "concurrent writer")); /* one may find the other's */
        }
    }
    for (int i = 0; i < 2; i++) {
        int status = 0;
        CU_ASSERT_EQUAL(waitpid(pid[i], &status, 0), pid[i]);
        CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    char entry[1100];
    CU_ASSERT(find_entry(dir, entry, sizeof entry)); /* one entry, no temporary left */
    CU_ASSERT_EQUAL(in_child(child_fresh, "after two writers"), 0);
    snprintf(dir, sizeof dir, "%s/cache", root);
    setenv("KD_CACHE_DIR", dir, 1);
}

/* KD_OPENCL_OPTIONS (in a child, set before its contexts): the options reach the build,
 * the device line names them, and the program gets its own cache entry, so a build with
 * other options never loads this one (first context compiles, the second loads). */
static int child_extra_options(const void *unused)
{
    (void)unused;
    setenv("KD_OPENCL_OPTIONS", "-DKD_OPTIONS_TEST=1", 1);
    int rc = check_context(0, 0, "KD_OPENCL_OPTIONS, first");
    if (!rc)
        rc = check_context(1, 0, "KD_OPENCL_OPTIONS, second");
    kd_context *c = NULL;
    kd_opencl_build_info info;
    kd_context_options o = {.disable_cuda = 1};
    if (!rc && (kd_context_create(&o, &c) != KD_OK || kd_opencl_build_info_get(c, &info) != KD_OK ||
                !strstr(info.options, " -DKD_OPTIONS_TEST=1") ||
                !strstr(kd_backend_reason(c, KD_BACKEND_OPENCL),
                        "build options '-DKD_OPTIONS_TEST=1' (KD_OPENCL_OPTIONS)")))
        rc = 20;
    kd_context_destroy(c);
    return rc;
}

/* An option the compiler refuses: the op fails (no fallback asked) with KD_ERR_BUILD, and
 * the message names the options. */
static int child_bad_options(const void *unused)
{
    (void)unused;
    setenv("KD_OPENCL_OPTIONS", "-cl-kd-no-such-option", 1);
    kd_context_options o = {.disable_cuda = 1};
    kd_context *c = NULL;
    kd_problem p;
    if (kd_context_create(&o, &c) != KD_OK || kd_problem_make(c, KD_OP_RESIDUAL_ADD, 1, 64, 0, 3, &p))
        return 21;
    kd_status st;
    float *y = kd_problem_run(c, &p, KD_BACKEND_OPENCL, KD_RUN_NO_FALLBACK, &st);
    int rc = y || st != KD_ERR_BUILD || !strstr(kd_last_error(c), "-cl-kd-no-such-option") ? 22 : 0;
    if (rc)
        printf("\n  bad options: status %s: %s", kd_status_name(st), kd_last_error(c));
    free(y);
    kd_problem_free(&p);
    kd_context_destroy(c);
    return rc;
}

static void test_extra_options(void)
{
    CU_ASSERT_FATAL(good_bytes != NULL); /* the default entry is in the directory */
    CU_ASSERT_EQUAL(in_child(child_extra_options, NULL), 0);
    CU_ASSERT_EQUAL(in_child(child_bad_options, NULL), 0);
}

/* On the host's PoCL target, and on PoCL's AVX2 target where this CPU runs it (the one
 * that printed: an AVX-512 host's own target did not). */
static void test_quiet_first_build(void)
{
    CU_ASSERT_EQUAL(in_child(child_quiet, NULL), 0);
    int vnni = 0;
    if (kd_cpu_simd_supported(&vnni) < KD_SIMD_AVX2) {
        printf("\n  this CPU has no AVX2: PoCL's avx2 target not tried");
        return;
    }
    int rc = in_child(child_quiet, "avx2");
    if (rc == CHILD_SKIP)
        printf("\n  PoCL did not take POCL_KERNELLIB_NAME=avx2: that target not tried");
    else
        CU_ASSERT_EQUAL(rc, 0);
}

/* A cache directory that is a file, or below a file: no cache, one warning, correct. */
static void test_unusable_dir(void)
{
    char file[300], below[400];
    snprintf(file, sizeof file, "%s/plain-file", root);
    CU_ASSERT_FATAL(kd_test_write_file(file, "x", 1) == 0);
    snprintf(below, sizeof below, "%s/sub", file);
    const char *cases[] = {file, below};
    for (int i = 0; i < 2; i++) {
        setenv("KD_CACHE_DIR", cases[i], 1);
        CU_ASSERT_EQUAL(in_child(child_no_cache, cases[i]), 0);
    }
    char dir[300];
    snprintf(dir, sizeof dir, "%s/cache", root);
    setenv("KD_CACHE_DIR", dir, 1);
}

int main(void)
{
    snprintf(root, sizeof root, "%s/kd-cl-cache-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        return perror("mkdtemp"), 1;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/cache", root);
    setenv("KD_CACHE_DIR", dir, 1);
    unsetenv("POCL_CACHE_DIR"); /* kdispatch places PoCL's cache inside its own */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", root);
    if (in_child(child_fresh, "probe") == CHILD_SKIP) {
        kd_test_system(cmd);
        return kd_test_skip("no OpenCL device");
    }
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("opencl program cache", NULL, NULL);
    CU_add_test(s, "first build writes one entry; a good one loads", test_first_build);
    CU_add_test(s, "single-byte flips", test_byte_flips);
    CU_add_test(s, "random 16-bit corruptions", test_random_corruptions);
    CU_add_test(s, "truncations, empty file, header only", test_truncations);
    CU_add_test(s, "entries of another device or driver", test_foreign_entries);
    CU_add_test(s, "two processes compiling at once", test_two_writers);
    CU_add_test(s, "unusable cache directory", test_unusable_dir);
    CU_add_test(s, "a first build writes nothing to stderr", test_quiet_first_build);
    CU_add_test(s, "KD_OPENCL_OPTIONS: own entry, named, refused options fail", test_extra_options);
    int rc = kd_test_main();
    free(good_bytes);
    kd_test_system(cmd);
    return rc;
}

#endif
