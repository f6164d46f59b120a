/* ctest-labels: cpu */
/* Hostile inputs (issue 15): files that are not regular files (a FIFO with no writer,
 * /dev/zero, a directory) refused promptly as KD_CONFIG and as GGUF files; a config line
 * with a NUL byte refused with its line; a missing config is KD_ERR_IO; a valid GGUF file
 * with general.alignment = 1, whose blocks sit at odd addresses, read by the oracle, the
 * dequantizer and the cpu backend without a misaligned access (this suite runs under
 * UBSan's alignment check in the sanitizer build); and `kdispatch gguf` escaping every
 * control character of keys, tensor names and values. The whole run is under alarm(), so
 * a hang fails the suite instead of blocking ctest. */
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "kd_quant.h"
#include "kd_test_util.h"

#define SUITE_DEADLINE_S 300 /* a cold OpenCL compile included */

static char dir[128];       /* the suite's temporary directory */
static char fifo[192];

/* ---- files that are not regular files ------------------------------------------------ */

static const char *not_regular[] = {fifo, "/dev/zero", "/tmp"};

static void test_config_refuses_non_regular(void)
{
    for (size_t i = 0; i < sizeof not_regular / sizeof *not_regular; i++) {
        kd_config c;
        char why[512] = "";
        kd_config_defaults(&c);
        CU_ASSERT_EQUAL(kd_config_load_file(&c, not_regular[i], why, sizeof why), KD_ERR_IO);
        CU_ASSERT(strstr(why, "not a regular file") != NULL);
    }
}

static void test_config_env_dev_zero(void)
{
    const char *cases[] = {"/dev/zero", fifo, "/nonexistent/kd.conf"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1, .config = cases[i]};
        kd_context *c = NULL;
        CU_ASSERT_EQUAL(kd_context_create(&o, &c), KD_ERR_IO); /* missing is IO too */
        CU_ASSERT(c == NULL);
        CU_ASSERT(strstr(kd_last_error(NULL), cases[i]) != NULL);
        CU_ASSERT(strstr(kd_last_error(NULL), "kd_context_options.config") != NULL);
    }
}

static void test_config_nul_byte(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/nul.conf", dir);
    static const char text[] = "backend = cpu\n# fine\nthreshold.rmsnorm.opencl = 10\0000\n";
    CU_ASSERT_FATAL(kd_test_write_file(path, text, sizeof text - 1) == 0);
    kd_config c;
    char why[512] = "", where[300];
    kd_config_defaults(&c);
    CU_ASSERT_EQUAL(kd_config_load_file(&c, path, why, sizeof why), KD_ERR_FORMAT);
    snprintf(where, sizeof where, "%s:3: NUL byte", path);
    CU_ASSERT(strstr(why, where) == why);
    if (strstr(why, where) != why)
        printf("\n  got: %s", why);
}

static void test_gguf_refuses_non_regular(void)
{
    for (size_t i = 0; i < sizeof not_regular / sizeof *not_regular; i++) {
        kd_gguf *g = NULL;
        char why[512] = "";
        CU_ASSERT_EQUAL(kd_gguf_open_file(not_regular[i], &g, why, sizeof why), KD_ERR_IO);
        CU_ASSERT(g == NULL);
        CU_ASSERT(strstr(why, "not a regular file") != NULL);
    }
}

/* ---- general.alignment = 1 ------------------------------------------------------------ */

static char aligned1[256];

static void put_u32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); }
static void put_u64(FILE *f, uint64_t v) { fwrite(&v, 8, 1, f); }
static void put_str(FILE *f, const char *s)
{
    put_u64(f, strlen(s));
    fputs(s, f);
}

/* A new GGUF v3 file at path (fatal if it cannot be made): the magic, the version and
 * the tensor and metadata-key counts written; the caller writes the rest and closes it. */
static FILE *start_gguf_v3(const char *path, uint64_t tensors, uint64_t keys)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    fwrite("GGUF", 1, 4, f);
    put_u32(f, 3);
    put_u64(f, tensors);
    put_u64(f, keys);
    return f;
}

static void put_tensor_info(FILE *f, const char *name, uint32_t type, uint64_t ne0, uint64_t ne1,
                            uint64_t offset)
{
    put_str(f, name);
    put_u32(f, 2);
    put_u64(f, ne0);
    put_u64(f, ne1);
    put_u32(f, type);
    put_u64(f, offset);
}

/* A valid GGUF v3 file with general.alignment = 1: a one-byte I8 tensor first, so the
 * Q4_K and Q6_K weights after it start at odd addresses in the mapping (gen_gguf.py's
 * files keep every tensor at an even offset, which hides the problem). */
static void write_alignment_one_gguf(const char *path)
{
    FILE *f = start_gguf_v3(path, 3, 2);
    put_str(f, "general.architecture");
    put_u32(f, 8);
    put_str(f, "llama");
    put_str(f, "general.alignment");
    put_u32(f, 4); /* uint32 */
    put_u32(f, 1);
    size_t q4 = 3 * sizeof(kd_block_q4_K), q6 = 2 * 2 * sizeof(kd_block_q6_K);
    put_tensor_info(f, "pad.byte", 24, 1, 1, 0);                /* I8 */
    put_tensor_info(f, "blk.0.ffn_down.weight", 12, 256, 3, 1); /* Q4_K */
    put_tensor_info(f, "blk.0.ffn_gate.weight", 14, 512, 2, 1 + q4); /* Q6_K */
    fputc(7, f);
    unsigned char *blocks = malloc(q4 + q6);
    CU_ASSERT_FATAL(blocks != NULL);
    kd_quant_random_blocks(KD_TYPE_Q4_K, 3, 11, blocks);
    kd_quant_random_blocks(KD_TYPE_Q6_K, 4, 12, blocks + q4);
    fwrite(blocks, 1, q4 + q6, f);
    free(blocks);
    CU_ASSERT(fclose(f) == 0);
}

static void test_alignment_one(void)
{
    snprintf(aligned1, sizeof aligned1, "%s/align1.gguf", dir);
    write_alignment_one_gguf(aligned1);
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1};
    kd_context *ctx = NULL;
    CU_ASSERT_FATAL(kd_context_create(&o, &ctx) == KD_OK);
    kd_gguf *g = NULL;
    CU_ASSERT_FATAL(kd_gguf_open(ctx, aligned1, &g) == KD_OK);
    CU_ASSERT_EQUAL(kd_gguf_alignment(g), 1);
    int misaligned = 0, checked = 0;
    for (uint64_t i = 0; i < kd_gguf_n_tensors(g); i++) {
        const kd_gguf_tensor_info *t = kd_gguf_tensor_at(g, i);
        kd_type type = kd_gguf_kd_type(t->ggml_type);
        if (type != KD_TYPE_Q4_K && type != KD_TYPE_Q6_K)
            continue;
        int64_t k = (int64_t)t->ne[0], rows = (int64_t)(t->n_elements / t->ne[0]);
        misaligned += (uintptr_t)t->data % 2 != 0;
        /* the same bytes at an aligned address are the reference */
        void *copy = aligned_alloc(64, (t->nbytes + 63) & ~(size_t)63);
        float *x = malloc(sizeof(float) * (size_t)k), *deq_a = malloc(sizeof(float) * (size_t)k);
        float *deq_b = malloc(sizeof(float) * (size_t)k);
        double *ya = malloc(sizeof(double) * (size_t)rows), *yb = malloc(sizeof(double) * (size_t)rows);
        CU_ASSERT_FATAL(copy && x && deq_a && deq_b && ya && yb);
        memcpy(copy, t->data, t->nbytes);
        for (int64_t c = 0; c < k; c++)
            x[c] = (float)((c % 7) - 3) * 0.25f;
        kd_oracle_gemv(type, t->data, rows, k, x, 1, ya);   /* in place: odd addresses */
        kd_oracle_gemv(type, copy, rows, k, x, 1, yb);
        CU_ASSERT(memcmp(ya, yb, sizeof(double) * (size_t)rows) == 0);
        kd_dequant_row(type, t->data, k, deq_a);
        kd_dequant_row(type, copy, k, deq_b);
        CU_ASSERT(memcmp(deq_a, deq_b, sizeof(float) * (size_t)k) == 0);
        /* the cpu backend on a borrowed, misaligned weight: copied, and right */
        kd_tensor *w = NULL, *tx = NULL, *ty = NULL;
        CU_ASSERT_FATAL(kd_tensor_quant_borrow(ctx, type, rows, k, t->data, t->nbytes, &w) == KD_OK);
        CU_ASSERT_FATAL(kd_tensor_f32(ctx, 1, k, x, &tx) == KD_OK);
        CU_ASSERT_FATAL(kd_tensor_f32(ctx, 1, rows, NULL, &ty) == KD_OK);
        CU_ASSERT_EQUAL(kd_gemv(ctx, w, tx, ty), KD_OK);
        float *y = malloc(sizeof(float) * (size_t)rows);
        CU_ASSERT_FATAL(y && kd_tensor_read(ctx, ty, y, (size_t)rows) == KD_OK);
        /* the cpu's default GEMV is the q8 path: held to its NMSE budget (SPEC section 7) */
        kd_cmp cmp;
        kd_compare_to_ref(y, yb, rows, KD_TOLERANCE, &cmp);
        CU_ASSERT(cmp.nmse <= 5e-4 && isfinite(cmp.nmse));
        kd_tensor_free(w);
        kd_tensor_free(tx);
        kd_tensor_free(ty);
        free(y), free(copy), free(x), free(deq_a), free(deq_b), free(ya), free(yb);
        checked++;
    }
    CU_ASSERT(checked >= 2);
    CU_ASSERT(misaligned >= 1); /* else the file does not test what it should */
    kd_gguf_close(g);
    kd_context_destroy(ctx);
    /* the audit's path: compare on the file (oracle and every backend present) passes;
     * in the sanitizer build a misaligned read anywhere aborts it (PoCL's own leaks are
     * not this test's business) */
    const char *exe = kd_test_kdispatch_exe();
    CU_ASSERT_FATAL(exe != NULL);
    char cmd[900];
    snprintf(cmd, sizeof cmd, "ASAN_OPTIONS=detect_leaks=0 KD_CACHE_DIR='%s/cache' '%s' "
             "compare --gguf '%s' --skip-missing >/dev/null", dir, exe, aligned1);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);
}

/* ---- terminal injection --------------------------------------------------------------- */

/* A GGUF v3 file whose key, string value and tensor name carry escape sequences (ESC,
 * BEL, an 8-bit CSI as U+009B, a right-to-left override, an invalid UTF-8 byte). */
static void write_evil_gguf(const char *path)
{
    FILE *f = start_gguf_v3(path, 1, 1);
    put_str(f, "evil\x1b[31m.key\xc2\x9b" "2J");
    put_u32(f, 8); /* string */
    put_str(f, "value\x1b]0;owned\x07 \xe2\x80\xae" "txt\xff");
    put_str(f, "tensor\x1b[2J\x1b[H.name");
    put_u32(f, 1);  /* dims */
    put_u64(f, 8);  /* ne[0] */
    put_u32(f, 0);  /* F32 */
    put_u64(f, 0);  /* offset in the data section */
    long at = ftell(f);
    for (long pad = (32 - at % 32) % 32; pad > 0; pad--)
        fputc(0, f);
    for (int i = 0; i < 8; i++) {
        float v = (float)i;
        fwrite(&v, 4, 1, f);
    }
    fclose(f);
}

static void test_gguf_listing_escapes(void)
{
    const char *exe = kd_test_kdispatch_exe();
    CU_ASSERT_FATAL(exe != NULL);
    char path[256], out[300], cmd[900];
    snprintf(path, sizeof path, "%s/evil.gguf", dir);
    snprintf(out, sizeof out, "%s/evil.txt", dir);
    write_evil_gguf(path);
    snprintf(cmd, sizeof cmd, "'%s' gguf '%s' > '%s'", exe, path, out);
    CU_ASSERT_EQUAL_FATAL(kd_test_system(cmd), 0);
    size_t len = 0;
    char *text = kd_test_read_file(out, &len);
    CU_ASSERT_FATAL(text != NULL);
    int raw_controls = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        raw_controls += (ch < 0x20 && ch != '\n') || ch == 0x7f || ch == 0xff ||
                        (ch == 0xc2 && i + 1 < len && (unsigned char)text[i + 1] == 0x9b) ||
                        (ch == 0xe2 && i + 2 < len && (unsigned char)text[i + 2] == 0xae);
    }
    CU_ASSERT_EQUAL(raw_controls, 0);
    CU_ASSERT(strstr(text, "evil\\x1b[31m.key\\u{009b}2J") != NULL);    /* the key */
    CU_ASSERT(strstr(text, "tensor\\x1b[2J\\x1b[H.name") != NULL);      /* the name */
    CU_ASSERT(strstr(text, "value\\x1b]0;owned\\x07 \\u{202e}txt\\xff") != NULL);
    if (raw_controls)
        printf("\n  listing:\n%s", text);
    free(text);
}

/* ---- backend start status ------------------------------------------------------------- */

static void test_init_status(void)
{
    kd_context_options o = {.disable_opencl = 1, .disable_cuda = 1};
    kd_context *ctx = NULL;
    CU_ASSERT_FATAL(kd_context_create(&o, &ctx) == KD_OK);
    CU_ASSERT_EQUAL(kd_backend_init_status(ctx, KD_BACKEND_CPU), KD_OK);
    CU_ASSERT_EQUAL(kd_backend_init_status(ctx, KD_BACKEND_OPENCL), KD_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(kd_backend_init_status(ctx, KD_BACKEND_COUNT), KD_ERR_ARG);
    CU_ASSERT_EQUAL(kd_backend_init_status(NULL, KD_BACKEND_CPU), KD_ERR_ARG);
    char w[64] = "x";
    CU_ASSERT_EQUAL(kd_warnings(ctx, w, sizeof w), 0);
    CU_ASSERT_STRING_EQUAL(w, "");
    kd_context_destroy(ctx);
}

int main(void)
{
    alarm(SUITE_DEADLINE_S); /* a hang is a failure (SIGALRM ends the process) */
    snprintf(dir, sizeof dir, "/tmp/kd-hostile-XXXXXX");
    if (!mkdtemp(dir))
        return perror("mkdtemp"), 1;
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    if (mkfifo(fifo, 0600) != 0)
        return perror("mkfifo"), 1;
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("hostile input", NULL, NULL);
    CU_add_test(s, "config: FIFO, /dev/zero, directory refused", test_config_refuses_non_regular);
    CU_add_test(s, "KD_CONFIG: /dev/zero, FIFO, missing -> KD_ERR_IO", test_config_env_dev_zero);
    CU_add_test(s, "config: a NUL byte names its line", test_config_nul_byte);
    CU_add_test(s, "GGUF: FIFO, /dev/zero, directory refused", test_gguf_refuses_non_regular);
    CU_add_test(s, "GGUF general.alignment = 1: unaligned-safe reads", test_alignment_one);
    CU_add_test(s, "kdispatch gguf escapes keys, names, values", test_gguf_listing_escapes);
    CU_add_test(s, "backend start status", test_init_status);
    int rc = kd_test_main();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
    kd_test_system(cmd);
    return rc;
}
