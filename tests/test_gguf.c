/* ctest-labels: cpu;gguf */
/* The GGUF reader, on files written by the gguf Python package (tests/gen_gguf.py, run
 * from here: python3 with gguf and numpy is required, and its absence is a failure, not a
 * skip) and on bad files crafted from them: every refusal must fire, with KD_ERR_FORMAT and
 * a message that names the field and its byte offset. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kdispatch.h"
#include "kd_internal.h" /* struct kd_tensor: proves the weight borrows the mapping */
#include "kd_quant.h"
#include "kd_row_groups.h"
#include "kd_test_util.h"

#define GEN_FILE "test_gguf_gen.gguf"
#define GEN_LONG "test_gguf_long.gguf"
#define GEN_FILE64 "test_gguf_gen64.gguf"

static kd_context *ctx;
static uint8_t *img;        /* GEN_FILE's bytes */
static size_t img_size;
static kd_gguf *good;       /* img parsed: field offsets for the crafted files */
static uint8_t *img64;      /* GEN_FILE64's bytes (general.alignment = 64) */
static size_t img64_size;
static kd_gguf *good64;

/* ---- helpers ------------------------------------------------------------------------- */

/* Writes a test file with tests/gen_gguf.py. The gguf package is part of the set-up, so
 * its absence fails the test with the fix in the message. */
static int generate(const char *out, const char *extra)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/gen_gguf.py' '%s' %s", KD_SOURCE_DIR, out, extra);
    int rc = kd_test_system(cmd);
    if (rc != 0)
        fprintf(stderr,
                "\nFAILED to write %s with tests/gen_gguf.py (exit status %d%s).\n"
                "This test needs python3 with the 'gguf' and 'numpy' packages: run the project's "
                "set-up, scripts/setup.sh, which installs them (by hand: python3 -m pip install "
                "gguf numpy).\n",
                out, rc, rc == 127 ? ": python3 not found" : "");
    return rc;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int str_eq(kd_gguf_str s, const char *z)
{
    return s.len == strlen(z) && memcmp(s.data, z, s.len) == 0;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float rng_uniform(void) /* [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

/* ---- field locations in the good file -------------------------------------------------- */

static const kd_gguf_kv *kv_named(const kd_gguf *g, const char *key)
{
    const kd_gguf_kv *kv = kd_gguf_find(g, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
    return kv;
}

static uint64_t kv_type_at(const kd_gguf_kv *kv) { return kv->offset + 8 + kv->key.len; }
static uint64_t kv_value_at(const kd_gguf_kv *kv) { return kv_type_at(kv) + 4; }

static const kd_gguf_tensor_info *tensor(uint64_t i)
{
    const kd_gguf_tensor_info *t = kd_gguf_tensor_at(good, i);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    return t;
}

static uint64_t ndims_at(const kd_gguf_tensor_info *t) { return t->info_offset + 8 + t->name.len; }
static uint64_t ne_at(const kd_gguf_tensor_info *t, int j)
{
    return ndims_at(t) + 4 + 8 * (uint64_t)j;
}
static uint64_t type_at(const kd_gguf_tensor_info *t) { return ndims_at(t) + 4 + 8ull * t->n_dims; }
static uint64_t offset_at(const kd_gguf_tensor_info *t) { return type_at(t) + 4; }

/* ---- the refusal check ------------------------------------------------------------------ */

static int refusals_seen;

/* Parses size bytes of data from a buffer of exactly that size (so ASan sees any read past
 * the end); expects KD_ERR_FORMAT, no handle, and a message holding want and a byte offset. */
static void expect_refusal(const char *what, const uint8_t *data, size_t size, const char *want)
{
    uint8_t *copy = malloc(size ? size : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    memcpy(copy, data, size);
    kd_gguf *g = (kd_gguf *)1;
    char err[1024] = "";
    kd_status st = kd_gguf_from_memory(copy, size, &g, err, sizeof err);
    int ok = st == KD_ERR_FORMAT && g == NULL && strstr(err, want) && strstr(err, "(at byte ");
    printf("\n  %-34s %s: %s", what, ok ? "refused" : "NOT REFUSED AS EXPECTED", err);
    if (!ok)
        printf("\n    (status %s, wanted a message with \"%s\")", kd_status_name(st), want);
    CU_ASSERT(ok);
    refusals_seen += ok;
    if (st == KD_OK)
        kd_gguf_close(g);
    free(copy);
}

/* A copy of the good image with v written at a byte offset, as a u32 (width 4) or a u64
 * (width 8). */
static uint8_t *patched(const uint8_t *base, size_t size, uint64_t at, int width, uint64_t v)
{
    uint8_t *c = malloc(size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    memcpy(c, base, size);
    CU_ASSERT_FATAL(at + (uint64_t)width <= size);
    if (width == 4)
        put_u32(c + at, (uint32_t)v);
    else
        put_u64(c + at, v);
    return c;
}
static uint8_t *patched_u32(const uint8_t *base, size_t size, uint64_t at, uint32_t v)
{
    return patched(base, size, at, 4, v);
}

static void refuse_u32(const char *what, uint64_t at, uint32_t v, const char *want)
{
    uint8_t *c = patched_u32(img, img_size, at, v);
    expect_refusal(what, c, img_size, want);
    free(c);
}

static void refuse_u64(const char *what, uint64_t at, uint64_t v, const char *want)
{
    uint8_t *c = patched(img, img_size, at, 8, v);
    expect_refusal(what, c, img_size, want);
    free(c);
}

/* ---- a tiny GGUF writer for files the Python package cannot make ------------------------ */

typedef struct bytes {
    uint8_t b[4096];
    size_t n;
} bytes;

static void b_u32(bytes *b, uint32_t v)
{
    CU_ASSERT_FATAL(b->n + 4 <= sizeof b->b);
    put_u32(b->b + b->n, v);
    b->n += 4;
}

static void b_u64(bytes *b, uint64_t v)
{
    CU_ASSERT_FATAL(b->n + 8 <= sizeof b->b);
    put_u64(b->b + b->n, v);
    b->n += 8;
}

static void b_str(bytes *b, const char *s)
{
    size_t n = strlen(s);
    b_u64(b, n);
    CU_ASSERT_FATAL(b->n + n <= sizeof b->b);
    memcpy(b->b + b->n, s, n);
    b->n += n;
}

static void b_header(bytes *b, uint64_t n_tensors, uint64_t n_kv)
{
    b->n = 0;
    b_u32(b, KD_GGUF_MAGIC);
    b_u32(b, 3);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}

/* One key holding `levels` arrays nested in each other, the innermost of one uint8. */
static void b_nested(bytes *b, int levels)
{
    b_header(b, 0, 1);
    b_str(b, "deep");
    b_u32(b, KD_GGUF_ARRAY);
    for (int i = 0; i < levels - 1; i++) {
        b_u32(b, KD_GGUF_ARRAY);
        b_u64(b, 1);
    }
    b_u32(b, KD_GGUF_UINT8);
    b_u64(b, 1);
    b->b[b->n++] = 7;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_generate(void)
{
    CU_ASSERT_FATAL(generate(GEN_FILE, "") == 0);
    CU_ASSERT_FATAL(generate(GEN_FILE64, "--alignment 64 --seed 99") == 0);
    img = (uint8_t *)kd_test_read_file(GEN_FILE, &img_size);
    img64 = (uint8_t *)kd_test_read_file(GEN_FILE64, &img64_size);
    CU_ASSERT_FATAL(img && img64);
    char err[1024];
    CU_ASSERT_FATAL(kd_gguf_from_memory(img, img_size, &good, err, sizeof err) == KD_OK);
    CU_ASSERT_FATAL(kd_gguf_from_memory(img64, img64_size, &good64, err, sizeof err) == KD_OK);
}

#define NEED_FILES() CU_ASSERT_FATAL(good != NULL && good64 != NULL)

static void check_int(const kd_gguf *g, const char *key, kd_gguf_vtype type, int64_t want)
{
    const kd_gguf_kv *kv = kv_named(g, key);
    int64_t v = 0;
    CU_ASSERT_EQUAL(kv->value.type, type);
    CU_ASSERT(kd_gguf_get_int(g, key, &v) && v == want);
}

static void test_metadata_scalars(void)
{
    NEED_FILES();
    kd_gguf *g = NULL;
    CU_ASSERT_FATAL(kd_gguf_open(ctx, GEN_FILE, &g) == KD_OK);
    CU_ASSERT_EQUAL(kd_gguf_version(g), 3);
    CU_ASSERT_EQUAL(kd_gguf_alignment(g), 32);
    CU_ASSERT_PTR_NULL(kd_gguf_find(g, "general.alignment"));
    CU_ASSERT_EQUAL(kd_gguf_data_offset(g) % 32, 0);
    CU_ASSERT_EQUAL(kd_gguf_size(g), img_size);
    CU_ASSERT(kd_gguf_n_kv(g) >= 30);

    check_int(g, "test.u8", KD_GGUF_UINT8, 200);
    check_int(g, "test.i8", KD_GGUF_INT8, -100);
    check_int(g, "test.u16", KD_GGUF_UINT16, 60000);
    check_int(g, "test.i16", KD_GGUF_INT16, -30000);
    check_int(g, "test.u32", KD_GGUF_UINT32, 4000000000ll);
    check_int(g, "test.i32", KD_GGUF_INT32, -2000000000ll);
    check_int(g, "test.i64", KD_GGUF_INT64, -9000000000000000000ll);
    check_int(g, "llama.embedding_length", KD_GGUF_UINT32, 512);
    check_int(g, "llama.feed_forward_length", KD_GGUF_UINT32, 768);
    check_int(g, "llama.attention.head_count", KD_GGUF_UINT32, 8);

    const kd_gguf_kv *u64 = kv_named(g, "test.u64");
    int64_t iv;
    CU_ASSERT(u64->value.type == KD_GGUF_UINT64 && u64->value.v.u == UINT64_MAX);
    CU_ASSERT_FALSE(kd_gguf_get_int(g, "test.u64", &iv)); /* does not fit int64 */

    double f;
    CU_ASSERT(kv_named(g, "test.f32")->value.type == KD_GGUF_FLOAT32);
    CU_ASSERT(kd_gguf_get_float(g, "test.f32", &f) && f == 0.15625);
    CU_ASSERT(kv_named(g, "test.f64")->value.type == KD_GGUF_FLOAT64);
    CU_ASSERT(kd_gguf_get_float(g, "test.f64", &f) && f == 3.141592653589793);
    CU_ASSERT(kd_gguf_get_float(g, "llama.rope.freq_base", &f) && f == 10000.0);
    CU_ASSERT(kv_named(g, "test.bool_true")->value.type == KD_GGUF_BOOL);
    CU_ASSERT_EQUAL(kv_named(g, "test.bool_true")->value.v.u, 1);
    CU_ASSERT_EQUAL(kv_named(g, "test.bool_false")->value.v.u, 0);

    kd_gguf_str s;
    CU_ASSERT(kd_gguf_get_string(g, "general.architecture", &s) && str_eq(s, "llama"));
    CU_ASSERT(kd_gguf_get_string(g, "test.string", &s) &&
              str_eq(s, "h\xc3\xa9llo \"w\xc3\xb6rld\"\n\ttab"));
    CU_ASSERT(kd_gguf_get_string(g, "test.empty_string", &s) && s.len == 0);
    CU_ASSERT_FALSE(kd_gguf_get_string(g, "test.u8", &s)); /* wrong type */
    CU_ASSERT_FALSE(kd_gguf_get_int(g, "no.such.key", &iv));
    kd_gguf_close(g);
}

/* Flattens an array of (arrays of) integers into out; returns the element count. */
static int flatten_ints(const kd_gguf_value *v, int64_t *out, int cap, int n)
{
    kd_gguf_array_iter it;
    kd_gguf_value e;
    kd_gguf_array_begin(v, &it);
    while (kd_gguf_array_next(&it, &e)) {
        if (e.type == KD_GGUF_ARRAY)
            n = flatten_ints(&e, out, cap, n);
        else if (n < cap)
            out[n++] = e.v.i;
    }
    return n;
}

static void test_metadata_arrays(void)
{
    NEED_FILES();
    const kd_gguf *g = good;
    kd_gguf_value e;

    const kd_gguf_value *a = &kv_named(g, "test.arr_u32")->value;
    CU_ASSERT(a->type == KD_GGUF_ARRAY && a->v.arr.type == KD_GGUF_UINT32 && a->v.arr.count == 100);
    uint64_t sum = 0, n = 0;
    kd_gguf_array_iter it;
    kd_gguf_array_begin(a, &it);
    while (kd_gguf_array_next(&it, &e))
        sum += e.v.u, n++;
    CU_ASSERT(n == 100 && sum == 4950);
    CU_ASSERT(kd_gguf_array_get(a, 57, &e) && e.type == KD_GGUF_UINT32 && e.v.u == 57);
    CU_ASSERT_FALSE(kd_gguf_array_get(a, 100, &e));

    a = &kv_named(g, "test.arr_i16")->value;
    CU_ASSERT(a->v.arr.type == KD_GGUF_INT16 && a->v.arr.count == 3);
    CU_ASSERT(kd_gguf_array_get(a, 0, &e) && e.v.i == -3);
    CU_ASSERT(kd_gguf_array_get(a, 2, &e) && e.v.i == 7);
    a = &kv_named(g, "test.arr_u64")->value;
    CU_ASSERT(kd_gguf_array_get(a, 0, &e) && e.v.u == UINT64_MAX);
    a = &kv_named(g, "test.arr_f64")->value;
    CU_ASSERT(kd_gguf_array_get(a, 1, &e) && e.type == KD_GGUF_FLOAT64 && e.v.f == -1.25);
    a = &kv_named(g, "test.arr_f32")->value;
    CU_ASSERT(kd_gguf_array_get(a, 2, &e) && e.type == KD_GGUF_FLOAT32 && e.v.f == -0.25);
    a = &kv_named(g, "test.arr_bool")->value;
    CU_ASSERT(a->v.arr.type == KD_GGUF_BOOL && a->v.arr.count == 3);
    CU_ASSERT(kd_gguf_array_get(a, 1, &e) && e.v.u == 0);
    CU_ASSERT(kd_gguf_array_get(a, 2, &e) && e.v.u == 1);

    a = &kv_named(g, "test.arr_str")->value;
    CU_ASSERT(a->v.arr.type == KD_GGUF_STRING && a->v.arr.count == 40);
    CU_ASSERT(kd_gguf_array_get(a, 17, &e) && e.type == KD_GGUF_STRING && str_eq(e.v.s, "tok17"));
    CU_ASSERT(kd_gguf_array_get(a, 39, &e) && str_eq(e.v.s, "tok39"));

    int64_t flat[16];
    a = &kv_named(g, "test.arr_nested")->value;
    CU_ASSERT(a->v.arr.type == KD_GGUF_ARRAY && a->v.arr.count == 3);
    CU_ASSERT(kd_gguf_array_get(a, 1, &e) && e.type == KD_GGUF_ARRAY && e.v.arr.count == 2);
    CU_ASSERT_EQUAL(flatten_ints(a, flat, 16, 0), 6);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(flat[i], i + 1);
    a = &kv_named(g, "test.arr_nested3")->value;
    CU_ASSERT_EQUAL(flatten_ints(a, flat, 16, 0), 4);
    CU_ASSERT(flat[0] == 1 && flat[3] == 4);
    a = &kv_named(g, "test.arr_nested_str")->value;
    kd_gguf_value inner;
    CU_ASSERT(kd_gguf_array_get(a, 1, &inner) && inner.v.arr.type == KD_GGUF_STRING);
    CU_ASSERT(kd_gguf_array_get(&inner, 0, &e) && str_eq(e.v.s, "c"));
}

typedef struct want_tensor {
    const char *name;
    uint32_t ggml_type;
    uint32_t n_dims;
    uint64_t ne[4];
    uint64_t nbytes;
} want_tensor;

/* What gen_gguf.py writes, in file order. */
static const want_tensor want[] = {
    {"blk.0.ffn_down.weight", 12, 2, {512, 6, 1, 1}, 6 * 2 * 144},
    {"blk.0.attn_norm.weight", 0, 1, {512, 1, 1, 1}, 512 * 4},
    {"blk.0.ffn_gate.weight", 14, 2, {768, 5, 1, 1}, 5 * 3 * 210},
    {"blk.0.f16", 1, 2, {64, 2, 1, 1}, 128 * 2},
    {"blk.0.f32_matrix", 0, 2, {256, 3, 1, 1}, 768 * 4},
    {"blk.0.ffn_up_exps.weight", 12, 3, {256, 3, 2, 1}, 6 * 144},
    {"blk.0.q8_0", 8, 2, {64, 2, 1, 1}, 4 * 34},
    {"blk.0.bf16", 30, 1, {64, 1, 1, 1}, 64 * 2},
    {"output.weight", 14, 2, {256, 3, 1, 1}, 3 * 210},
};
#define N_WANT (sizeof want / sizeof *want)

static void check_tensor_table(const kd_gguf *g, uint32_t alignment)
{
    CU_ASSERT_EQUAL_FATAL(kd_gguf_n_tensors(g), N_WANT);
    const uint8_t *base = kd_gguf_base(g);
    for (uint64_t i = 0; i < N_WANT; i++) {
        const kd_gguf_tensor_info *t = kd_gguf_tensor_at(g, i);
        const want_tensor *w = &want[i];
        CU_ASSERT(str_eq(t->name, w->name));
        CU_ASSERT_EQUAL(t->ggml_type, w->ggml_type);
        CU_ASSERT_EQUAL(t->n_dims, w->n_dims);
        for (int j = 0; j < 4; j++)
            CU_ASSERT_EQUAL(t->ne[j], w->ne[j]);
        CU_ASSERT_EQUAL(t->n_elements, w->ne[0] * w->ne[1] * w->ne[2] * w->ne[3]);
        CU_ASSERT_EQUAL(t->nbytes, w->nbytes);
        CU_ASSERT_EQUAL(t->offset % alignment, 0);
        CU_ASSERT_EQUAL(t->file_offset % alignment, 0);
        CU_ASSERT_EQUAL(t->file_offset, kd_gguf_data_offset(g) + t->offset);
        CU_ASSERT(t->data == base + t->file_offset);
        CU_ASSERT(t->file_offset + t->nbytes <= kd_gguf_size(g));
        CU_ASSERT_PTR_EQUAL(kd_gguf_find_tensor(g, w->name), t);
    }
    CU_ASSERT_PTR_NULL(kd_gguf_find_tensor(g, "no.such.tensor"));
    CU_ASSERT_PTR_NULL(kd_gguf_tensor_at(g, N_WANT));
}

static void test_tensor_infos(void)
{
    NEED_FILES();
    check_tensor_table(good, 32);
    check_tensor_table(good64, 64);
    CU_ASSERT_EQUAL(kd_gguf_alignment(good64), 64);
    CU_ASSERT_EQUAL(kd_gguf_data_offset(good64) % 64, 0);
    const kd_gguf_kv *a = kv_named(good64, "general.alignment");
    CU_ASSERT(a->value.type == KD_GGUF_UINT32 && a->value.v.u == 64);

    /* the type table knows every listed type with ggml's block sizes */
    static const struct { uint32_t id; const char *name; uint32_t elems, bytes; } types[] = {
        {0, "F32", 1, 4},      {1, "F16", 1, 2},      {2, "Q4_0", 32, 18},   {3, "Q4_1", 32, 20},
        {6, "Q5_0", 32, 22},   {7, "Q5_1", 32, 24},   {8, "Q8_0", 32, 34},   {10, "Q2_K", 256, 84},
        {11, "Q3_K", 256, 110}, {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176},
        {14, "Q6_K", 256, 210}, {15, "Q8_K", 256, 292}, {30, "BF16", 1, 2},
    };
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        uint32_t e = 0, b = 0;
        CU_ASSERT(kd_ggml_type_size(types[i].id, &e, &b));
        CU_ASSERT(e == types[i].elems && b == types[i].bytes);
        CU_ASSERT_STRING_EQUAL(kd_ggml_type_name(types[i].id), types[i].name);
    }
    CU_ASSERT_PTR_NULL(kd_ggml_type_name(4)); /* retired Q4_2 */
    CU_ASSERT_PTR_NULL(kd_ggml_type_name(1000));
    CU_ASSERT_FALSE(kd_ggml_type_size(5, NULL, NULL));
}

/* Q4_K/Q6_K become borrowed weights with the right values; F32 become copied tensors. */
static void test_tensor_values(void)
{
    NEED_FILES();
    size_t ref_size = 0;
    float *ref = (float *)kd_test_read_file(GEN_FILE ".ref", &ref_size);
    CU_ASSERT_FATAL(ref != NULL);
    kd_gguf *g = NULL;
    CU_ASSERT_FATAL(kd_gguf_open(ctx, GEN_FILE, &g) == KD_OK);
    size_t at = 0; /* floats of ref used so far */
    for (uint64_t i = 0; i < kd_gguf_n_tensors(g); i++) {
        const kd_gguf_tensor_info *ti = kd_gguf_tensor_at(g, i);
        kd_type type = kd_gguf_kd_type(ti->ggml_type);
        kd_tensor *t = NULL;
        kd_status st = kd_gguf_tensor(ctx, g, ti, &t);
        if (type == KD_TYPE_COUNT) {
            CU_ASSERT_EQUAL(st, KD_ERR_TYPE);
            CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(ctx), kd_ggml_type_name(ti->ggml_type)));
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(st, KD_OK);
        int64_t cols = (int64_t)ti->ne[0], rows = (int64_t)(ti->n_elements / ti->ne[0]);
        CU_ASSERT(kd_tensor_type(t) == type && kd_tensor_rows(t) == rows &&
                  kd_tensor_cols(t) == cols);
        CU_ASSERT_FATAL((at + ti->n_elements) * sizeof(float) <= ref_size);
        const float *expect = ref + at;
        at += ti->n_elements;
        float *got = malloc(ti->n_elements * sizeof(float));
        CU_ASSERT_FATAL(got != NULL);
        if (type == KD_TYPE_F32) {
            CU_ASSERT(kd_tensor_read(ctx, t, got, ti->n_elements) == KD_OK);
        } else {
            /* zero copy: the tensor's host memory is the mapped file */
            CU_ASSERT(t->host == ti->data && !t->host_owned);
            size_t row_bytes = kd_quant_row_bytes(type, cols);
            for (int64_t r = 0; r < rows; r++)
                kd_dequant_row(type, (const uint8_t *)ti->data + (size_t)r * row_bytes, cols,
                               got + r * cols);
        }
        CU_ASSERT(memcmp(got, expect, ti->n_elements * sizeof(float)) == 0);
        free(got);
        kd_tensor_free(t);
    }
    CU_ASSERT_EQUAL(at * sizeof(float), ref_size);
    kd_tensor *t = NULL;
    CU_ASSERT_EQUAL(kd_gguf_tensor_by_name(ctx, g, "no.such.tensor", &t), KD_ERR_ARG);
    CU_ASSERT_PTR_NULL(t);
    kd_gguf_close(g);
    free(ref);
}

/* A GEMV on a weight borrowed from the file agrees with a double-precision sum over the
 * values gguf-py dequantized, single-row and batched: the exact path (KD_RUN_CPU_EXACT
 * where it runs on the cpu) to the tight tolerance; the default path (kd_gemv, the cpu's
 * q8 GEMV) to the quantized path's NMSE budget, 5e-4 (SPEC section 7). */
static void check_gemv(kd_gguf *g, const char *name, const float *wref, int64_t m)
{
    kd_tensor *w = NULL, *x = NULL, *y = NULL;
    CU_ASSERT_FATAL(kd_gguf_tensor_by_name(ctx, g, name, &w) == KD_OK);
    int64_t n = kd_tensor_rows(w), k = kd_tensor_cols(w);
    float *hx = malloc((size_t)(m * k) * sizeof(float));
    float *hy = malloc((size_t)(m * n) * sizeof(float));
    CU_ASSERT_FATAL(hx && hy);
    for (int64_t i = 0; i < m * k; i++)
        hx[i] = rng_uniform();
    CU_ASSERT_FATAL(kd_tensor_f32(ctx, m, k, hx, &x) == KD_OK);
    CU_ASSERT_FATAL(kd_tensor_f32(ctx, m, n, NULL, &y) == KD_OK);
    kd_op op = kd_tensor_type(w) == KD_TYPE_Q6_K ? KD_OP_Q6K_GEMV : KD_OP_Q4K_GEMV;
    kd_op_desc desc = {.op = op, .src = {w, x}, .dst = y};
    kd_status st = kd_run(ctx, &desc, KD_BACKEND_AUTO, KD_RUN_CPU_EXACT);
    if (st != KD_OK)
        printf("\n  gemv %s: %s", name, kd_last_error(ctx));
    CU_ASSERT_FATAL(st == KD_OK);
    CU_ASSERT_FATAL(kd_tensor_read(ctx, y, hy, (size_t)(m * n)) == KD_OK);
    int bad = 0;
    double *ref = malloc((size_t)(m * n) * sizeof(double));
    CU_ASSERT_FATAL(ref != NULL);
    for (int64_t r = 0; r < m; r++)
        for (int64_t j = 0; j < n; j++) {
            double o = 0;
            for (int64_t c = 0; c < k; c++)
                o += (double)wref[j * k + c] * hx[r * k + c];
            ref[r * n + j] = o;
            double tol = 1e-3 * (o < 0 ? (o < -1 ? -o : 1) : (o > 1 ? o : 1));
            double d = hy[r * n + j] - o;
            bad += !(d <= tol && d >= -tol);
        }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_FATAL(kd_gemv(ctx, w, x, y) == KD_OK);
    CU_ASSERT_FATAL(kd_tensor_read(ctx, y, hy, (size_t)(m * n)) == KD_OK);
    kd_cmp q8;
    kd_compare_to_ref(hy, ref, m * n, KD_TOLERANCE, &q8);
    if (!(q8.nmse <= 5e-4))
        printf("\n  gemv %s M=%lld, default path: nmse %.3g", name, (long long)m, q8.nmse);
    CU_ASSERT(q8.nmse <= 5e-4);
    free(ref);
    free(hx);
    free(hy);
    kd_tensor_free(x);
    kd_tensor_free(y);
    kd_tensor_free(w);
}

/* kd_gguf_tensor_copy of a quantized weight: the library's own copy (in row groups where
 * its rows are long enough), not the mapping, and GEMVs on it (q8 and exact paths, M = 1
 * and 3) give the bits the borrowed weight gives. Returns the copy's grouped rows. */
static int64_t check_copy_matches(kd_gguf *g, const kd_gguf_tensor_info *ti)
{
    kd_tensor *c = NULL, *b = NULL, *x = NULL, *y = NULL;
    CU_ASSERT_FATAL(kd_gguf_tensor_copy(ctx, g, ti, &c) == KD_OK);
    CU_ASSERT_FATAL(kd_gguf_tensor(ctx, g, ti, &b) == KD_OK);
    const int64_t n = kd_tensor_rows(c), k = kd_tensor_cols(c), grouped = c->grouped_rows;
    CU_ASSERT(c->host_owned && c->host != ti->data && !b->host_owned);
    CU_ASSERT_EQUAL(grouped, kd_row_groups_rows(n, k));
    float *hx = malloc((size_t)(3 * k) * sizeof(float));
    float *ya = malloc((size_t)(3 * n) * sizeof(float)), *yb = malloc((size_t)(3 * n) * sizeof(float));
    CU_ASSERT_FATAL(hx && ya && yb);
    for (int64_t i = 0; i < 3 * k; i++)
        hx[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    static const unsigned paths[] = {KD_RUN_CPU_Q8, KD_RUN_CPU_EXACT};
    for (int64_t m = 1; m <= 3; m += 2)
        for (int p = 0; p < 2; p++) {
            CU_ASSERT_FATAL(kd_tensor_f32(ctx, m, k, hx, &x) == KD_OK &&
                            kd_tensor_f32(ctx, m, n, NULL, &y) == KD_OK);
            kd_op_desc d = {.op = kd_tensor_type(c) == KD_TYPE_Q4_K ? KD_OP_Q4K_GEMV : KD_OP_Q6K_GEMV,
                            .src = {c, x}, .dst = y};
            const unsigned f = KD_RUN_NO_FALLBACK | paths[p];
            CU_ASSERT(kd_run(ctx, &d, KD_BACKEND_CPU, f) == KD_OK &&
                      kd_tensor_read(ctx, y, ya, (size_t)(m * n)) == KD_OK);
            d.src[0] = b;
            CU_ASSERT(kd_run(ctx, &d, KD_BACKEND_CPU, f) == KD_OK &&
                      kd_tensor_read(ctx, y, yb, (size_t)(m * n)) == KD_OK);
            CU_ASSERT(memcmp(ya, yb, (size_t)(m * n) * sizeof(float)) == 0);
            kd_tensor_free(x), kd_tensor_free(y);
        }
    kd_tensor_free(c), kd_tensor_free(b);
    free(hx), free(ya), free(yb);
    return grouped;
}

/* GEMVs on every Q4_K / Q6_K weight of file (written with its .ref by gen_gguf.py) against
 * gguf-py's values, and the same weights copied (kd_gguf_tensor_copy) against borrowed.
 * Returns how many of the copies were in row groups. */
static int gemv_on_file_weights(const char *file)
{
    size_t ref_size = 0;
    char ref_name[256];
    snprintf(ref_name, sizeof ref_name, "%s.ref", file);
    float *ref = (float *)kd_test_read_file(ref_name, &ref_size);
    CU_ASSERT_FATAL(ref != NULL);
    kd_gguf *g = NULL;
    CU_ASSERT_FATAL(kd_gguf_open(ctx, file, &g) == KD_OK);
    /* ref holds the F32/Q4_K/Q6_K tensors in file order: find each weight's values */
    size_t at = 0;
    int grouped = 0;
    for (uint64_t i = 0; i < kd_gguf_n_tensors(g); i++) {
        const kd_gguf_tensor_info *ti = kd_gguf_tensor_at(g, i);
        kd_type type = kd_gguf_kd_type(ti->ggml_type);
        if (type == KD_TYPE_COUNT)
            continue;
        if (type != KD_TYPE_F32) {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)ti->name.len, ti->name.data);
            check_gemv(g, name, ref + at, 1);
            check_gemv(g, name, ref + at, 3);
            grouped += check_copy_matches(g, ti) > 0;
        }
        at += ti->n_elements;
    }
    CU_ASSERT_EQUAL(at * sizeof(float), ref_size);
    kd_gguf_close(g);
    free(ref);
    return grouped;
}

static void test_gemv_on_file_weights(void)
{
    NEED_FILES();
    CU_ASSERT_EQUAL(gemv_on_file_weights(GEN_FILE), 0);
}

/* Two weights with rows of 8448 values: their copies go in row groups. */
static void test_gemv_on_long_rows(void)
{
    CU_ASSERT_FATAL(generate(GEN_LONG, "--long-rows --seed 7") == 0);
    CU_ASSERT_EQUAL(gemv_on_file_weights(GEN_LONG), 2);
}

static void test_v2_accepted(void)
{
    NEED_FILES();
    uint8_t *c = patched_u32(img, img_size, 4, 2);
    kd_gguf *g = NULL;
    char err[512];
    CU_ASSERT(kd_gguf_from_memory(c, img_size, &g, err, sizeof err) == KD_OK);
    CU_ASSERT_EQUAL(kd_gguf_version(g), 2);
    CU_ASSERT_EQUAL(kd_gguf_n_tensors(g), N_WANT);
    kd_gguf_close(g);
    free(c);
}

static void test_small_valid_files(void)
{
    bytes b;
    kd_gguf *g = NULL;
    char err[512];
    b_header(&b, 0, 0); /* nothing but a header */
    CU_ASSERT(kd_gguf_from_memory(b.b, b.n, &g, err, sizeof err) == KD_OK);
    CU_ASSERT(kd_gguf_n_kv(g) == 0 && kd_gguf_n_tensors(g) == 0);
    kd_gguf_close(g);
    b_header(&b, 0, 1); /* an empty array */
    b_str(&b, "empty");
    b_u32(&b, KD_GGUF_ARRAY);
    b_u32(&b, KD_GGUF_STRING);
    b_u64(&b, 0);
    CU_ASSERT(kd_gguf_from_memory(b.b, b.n, &g, err, sizeof err) == KD_OK);
    CU_ASSERT(kd_gguf_n_kv(g) == 1 && kd_gguf_kv_at(g, 0)->value.v.arr.count == 0);
    kd_gguf_close(g);
    b_nested(&b, KD_GGUF_MAX_DEPTH); /* the deepest nesting allowed */
    CU_ASSERT(kd_gguf_from_memory(b.b, b.n, &g, err, sizeof err) == KD_OK);
    kd_gguf_close(g);
}

static void test_refuse_header(void)
{
    NEED_FILES();
    uint8_t *c = patched_u32(img, img_size, 0, 0x47554747u); /* "GGUG" */
    expect_refusal("bad magic", c, img_size, "not \"GGUF\"");
    free(c);
    refuse_u32("version 1", 4, 1, "v1 is not supported");
    refuse_u32("version 4", 4, 4, "unknown GGUF version 4");
    refuse_u32("version 0", 4, 0, "unknown GGUF version 0");
    refuse_u32("big-endian version", 4, 0x03000000u, "big-endian");
    refuse_u64("huge metadata count", 16, 1ull << 62, "cannot fit");
    refuse_u64("metadata count + 1", 16, kd_gguf_n_kv(good) + 1, "");
    refuse_u64("huge tensor count", 8, UINT64_MAX, "cannot fit");
    refuse_u64("tensor count + 1", 8, kd_gguf_n_tensors(good) + 1, "tensor");
    expect_refusal("empty file", img, 0, "truncated");
    expect_refusal("3 bytes", img, 3, "truncated");
}

static void test_refuse_metadata(void)
{
    NEED_FILES();
    const kd_gguf_kv *arch = kd_gguf_kv_at(good, 0);
    CU_ASSERT_FATAL(str_eq(arch->key, "general.architecture"));
    refuse_u64("key length past EOF", arch->offset, img_size, "runs past the end");
    refuse_u64("key length 2^64-1", arch->offset, UINT64_MAX, "runs past the end");
    refuse_u64("empty key", arch->offset, 0, "key (at byte 24): is empty");
    refuse_u64("string value length past EOF", kv_value_at(arch), 1ull << 63, "runs past the end");
    refuse_u32("unknown value type", kv_type_at(arch), 13, "unknown value type 13");

    const kd_gguf_kv *arr = kv_named(good, "test.arr_u32");
    refuse_u32("unknown array element type", kv_value_at(arr), 99, "unknown value type 99");
    refuse_u64("huge array count", kv_value_at(arr) + 4, 1ull << 61, "cannot fit");
    refuse_u64("array count 2^64-1", kv_value_at(arr) + 4, UINT64_MAX, "cannot fit");
    const kd_gguf_kv *strs = kv_named(good, "test.arr_str");
    refuse_u64("string array count too big", kv_value_at(strs) + 4, 1000000, "");
    refuse_u64("string in array past EOF", kv_value_at(strs) + 12, UINT64_MAX / 2,
               "element 0 of the array");
    const kd_gguf_kv *nest = kv_named(good, "test.arr_nested");
    refuse_u32("nested element type unknown", kv_value_at(nest) + 12, 77, "unknown value type 77");

    const kd_gguf_kv *bt = kv_named(good, "test.bool_true");
    uint8_t *c = malloc(img_size);
    CU_ASSERT_FATAL(c != NULL);
    memcpy(c, img, img_size);
    c[kv_value_at(bt)] = 2;
    expect_refusal("bool byte 2", c, img_size, "bool byte is 2");
    const kd_gguf_kv *ab = kv_named(good, "test.arr_bool");
    memcpy(c, img, img_size);
    c[kv_value_at(ab) + 12 + 1] = 0xff;
    expect_refusal("bool array byte 255", c, img_size, "bool byte is 255");

    /* "test.i8" -> "test.u8": the same key twice */
    const kd_gguf_kv *i8 = kv_named(good, "test.i8");
    memcpy(c, img, img_size);
    c[i8->offset + 8 + 5] = 'u';
    expect_refusal("duplicate key", c, img_size, "duplicate of metadata");
    memcpy(c, img, img_size);
    c[i8->offset + 8 + 2] = '\0';
    expect_refusal("NUL in key", c, img_size, "NUL");
    free(c);

    bytes b;
    b_nested(&b, KD_GGUF_MAX_DEPTH + 1);
    expect_refusal("arrays nested too deep", b.b, b.n, "nested more than");
}

static void test_refuse_alignment(void)
{
    NEED_FILES();
    const kd_gguf_kv *al = kv_named(good64, "general.alignment");
    uint8_t *c = patched_u32(img64, img64_size, kv_value_at(al), 48);
    expect_refusal("general.alignment 48", c, img64_size, "not a power of two");
    free(c);
    c = patched_u32(img64, img64_size, kv_value_at(al), 0);
    expect_refusal("general.alignment 0", c, img64_size, "not a power of two");
    free(c);
    c = patched_u32(img64, img64_size, kv_type_at(al), KD_GGUF_INT32);
    expect_refusal("general.alignment int32", c, img64_size, "must be uint32");
    free(c);
    /* alignment 128: the file's 64-aligned offsets are now misaligned */
    c = patched_u32(img64, img64_size, kv_value_at(al), 128);
    expect_refusal("general.alignment 128", c, img64_size, "not a multiple of the alignment 128");
    free(c);
}

static void test_refuse_tensor_infos(void)
{
    NEED_FILES();
    const kd_gguf_tensor_info *t0 = tensor(0), *t1 = tensor(1), *last = tensor(N_WANT - 1);
    uint64_t data_size = img_size - kd_gguf_data_offset(good);

    refuse_u64("tensor name past EOF", t0->info_offset, img_size, "runs past the end");
    refuse_u64("empty tensor name", t0->info_offset, 0, "is empty");
    refuse_u32("n_dims 5", ndims_at(t0), 5, "n_dims (at byte");
    refuse_u32("n_dims 0", ndims_at(t0), 0, "0 is outside 1..4");
    refuse_u32("n_dims 2^32-1", ndims_at(t0), UINT32_MAX, "outside 1..4");
    refuse_u64("dims product overflow", ne_at(t0, 1), 1ull << 62, "overflow INT64_MAX");
    refuse_u64("dim above INT64_MAX", ne_at(t0, 0), (1ull << 63) + 256, "larger than INT64_MAX");
    refuse_u64("ne[0] not a multiple of 256", ne_at(t0, 0), 500,
               "not a multiple of the Q4_K block");
    refuse_u64("dims grow past EOF", ne_at(last, 1), 3000, "outside the file");
    refuse_u32("unknown type 4", type_at(t0), 4, "unknown ggml type 4");
    refuse_u32("unknown type 1000", type_at(t0), 1000, "unknown ggml type 1000");
    refuse_u64("offset outside the file", offset_at(t0), data_size + 32, "outside the file");
    refuse_u64("offset near 2^64", offset_at(t0), UINT64_MAX & ~31ull, "outside the file");
    refuse_u64("data runs past EOF", offset_at(last), (data_size & ~31ull), "outside the file");
    refuse_u64("misaligned offset", offset_at(t1), t1->offset + 4,
               "not a multiple of the alignment 32");
    refuse_u64("overlapping tensors", offset_at(t1), t0->offset, "overlaps tensor");

    /* "blk.0.bf16" -> "blk.0.q8_0": two tensors of one name */
    const kd_gguf_tensor_info *bf = kd_gguf_find_tensor(good, "blk.0.bf16");
    CU_ASSERT_FATAL(bf != NULL);
    uint8_t *c = malloc(img_size);
    CU_ASSERT_FATAL(c != NULL);
    memcpy(c, img, img_size);
    memcpy(c + bf->info_offset + 8, "blk.0.q8_0", 10);
    expect_refusal("duplicate tensor name", c, img_size, "duplicate tensor name");
    free(c);
}

/* Every cut of the file before the end of the last tensor's data is refused; the cut
 * buffers are exactly cut bytes long, so ASan would see any read past them. */
static void test_refuse_truncation(void)
{
    NEED_FILES();
    const kd_gguf_tensor_info *last = tensor(N_WANT - 1);
    uint64_t end = last->file_offset + last->nbytes;
    int refused = 0, truncated = 0, outside = 0, cannot_fit = 0, other = 0;
    char err[1024], example[1024] = "";
    for (uint64_t cut = 0; cut < end; cut++) {
        uint8_t *c = malloc(cut ? cut : 1);
        CU_ASSERT_FATAL(c != NULL);
        memcpy(c, img, cut);
        kd_gguf *g = NULL;
        kd_status st = kd_gguf_from_memory(c, cut, &g, err, sizeof err);
        if (st == KD_ERR_FORMAT && !g && strstr(err, "(at byte ")) {
            refused++;
            if (strstr(err, "truncated") || strstr(err, "runs past the end"))
                truncated++;
            else if (strstr(err, "outside the file"))
                outside++;
            else if (strstr(err, "cannot fit"))
                cannot_fit++;
            else
                other++;
            if (cut == kd_gguf_data_offset(good) - 100)
                snprintf(example, sizeof example, "%s", err);
        } else {
            printf("\n  cut at %llu NOT refused: %s %s", (unsigned long long)cut,
                   kd_status_name(st), err);
        }
        kd_gguf_close(g);
        free(c);
    }
    printf("\n  %llu cuts (every byte before %llu): %d refused: %d truncated, %d data outside "
           "the file, %d counts cannot fit, %d other\n  e.g. %s",
           (unsigned long long)end, (unsigned long long)end, refused, truncated, outside,
           cannot_fit, other, example);
    CU_ASSERT_EQUAL(refused, (int)end);
    CU_ASSERT_EQUAL(other, 0);
    CU_ASSERT(truncated > 0 && outside > 0 && cannot_fit > 0);
    /* a cut inside the padding after the last tensor loses nothing: still valid */
    if (end < img_size) {
        kd_gguf *g = NULL;
        CU_ASSERT(kd_gguf_from_memory(img, (size_t)end, &g, err, sizeof err) == KD_OK);
        kd_gguf_close(g);
    }
}

/* The file path: I/O errors, and a corrupt file's message on the context. */
static void test_open_file_errors(void)
{
    NEED_FILES();
    kd_gguf *g = (kd_gguf *)1;
    CU_ASSERT_EQUAL(kd_gguf_open(ctx, "no/such/file.gguf", &g), KD_ERR_IO);
    CU_ASSERT_PTR_NULL(g);
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(ctx), "no/such/file.gguf"));
    CU_ASSERT_EQUAL(kd_gguf_open(ctx, ".", &g), KD_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(ctx), "not a regular file"));
    CU_ASSERT_EQUAL(kd_gguf_open(ctx, NULL, &g), KD_ERR_NULL);

    CU_ASSERT_FATAL(kd_test_write_file("test_gguf_empty.gguf", "", 0) == 0);
    CU_ASSERT_EQUAL(kd_gguf_open(ctx, "test_gguf_empty.gguf", &g), KD_ERR_FORMAT);
    printf("\n  empty file: %s", kd_last_error(ctx));
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(ctx), "truncated"));

    const kd_gguf_tensor_info *last = tensor(N_WANT - 1);
    CU_ASSERT_FATAL(kd_test_write_file("test_gguf_cut.gguf", img, (size_t)last->file_offset + 10) == 0);
    CU_ASSERT_EQUAL(kd_gguf_open(ctx, "test_gguf_cut.gguf", &g), KD_ERR_FORMAT);
    printf("\n  truncated file: %s", kd_last_error(ctx));
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(ctx), "test_gguf_cut.gguf"));
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(ctx), "output.weight"));
    CU_ASSERT_PTR_NOT_NULL(strstr(kd_last_error(ctx), "outside the file"));
    remove("test_gguf_empty.gguf");
    remove("test_gguf_cut.gguf");
}

/* `kdispatch gguf` lists the file (text and JSON that parses) and refuses a bad one. */
static void test_cli_listing(void)
{
    NEED_FILES();
    char exe[1024], cmd[4096];
    snprintf(exe, sizeof exe, "%s/cli/kdispatch", KD_BINARY_DIR);
    struct stat st;
    if (stat(exe, &st) != 0) {
        printf("\n  %s is not built: build the whole project before running the tests", exe);
        CU_FAIL("kdispatch command not built");
        return;
    }
    snprintf(cmd, sizeof cmd, "'%s' gguf '%s' > test_gguf_list.txt", exe, GEN_FILE);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);
    size_t n = 0;
    char *text = kd_test_read_file("test_gguf_list.txt", &n);
    CU_ASSERT_FATAL(text != NULL);
    text[n] = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "blk.0.ffn_down.weight"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "[512, 6]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "array[string; 40]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "... 92 more")); /* arr_u32 shortened */
    free(text);

    snprintf(cmd, sizeof cmd,
             "'%s' gguf '%s' --json | python3 -c \"import json,sys; d=json.load(sys.stdin); "
             "t={x['name']: x for x in d['tensors']}; m={x['key']: x for x in d['metadata']}; "
             "assert d['version'] == 3 and d['alignment'] == 32; "
             "assert t['blk.0.ffn_gate.weight']['type'] == 'Q6_K'; "
             "assert t['blk.0.ffn_gate.weight']['shape'] == [768, 5]; "
             "assert t['blk.0.ffn_gate.weight']['bytes'] == 3150; "
             "assert m['test.u64']['value'] == 2**64 - 1; "
             "assert m['test.arr_nested']['value'] == [[1, 2, 3], [4, 5], [6]]; "
             "assert m['test.arr_u32']['count'] == 100 and m['test.arr_u32']['truncated']; "
             "assert m['test.string']['value'] == 'h\\u00e9llo \\\"w\\u00f6rld\\\"\\n\\ttab'\"",
             exe, GEN_FILE);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);

    uint8_t *c = patched_u32(img, img_size, 4, 1);
    CU_ASSERT_FATAL(kd_test_write_file("test_gguf_v1.gguf", c, img_size) == 0);
    free(c);
    snprintf(cmd, sizeof cmd, "'%s' gguf test_gguf_v1.gguf 2>/dev/null", exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 1);
    snprintf(cmd, sizeof cmd, "'%s' gguf --help >/dev/null", exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);
    remove("test_gguf_v1.gguf");
    remove("test_gguf_list.txt");
}

int main(void)
{
    if (!(ctx = kd_test_cpu_context()))
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("gguf", NULL, NULL);
    CU_add_test(s, "write test files with gguf-py (tests/gen_gguf.py)", test_generate);
    CU_add_test(s, "metadata scalars of every type", test_metadata_scalars);
    CU_add_test(s, "metadata arrays, nested arrays", test_metadata_arrays);
    CU_add_test(s, "tensor infos, alignment 32 and 64", test_tensor_infos);
    CU_add_test(s, "tensors: borrowed Q4_K/Q6_K, copied F32", test_tensor_values);
    CU_add_test(s, "gemv on weights from the file", test_gemv_on_file_weights);
    CU_add_test(s, "gemv on long rows from a file: copies in row groups", test_gemv_on_long_rows);
    CU_add_test(s, "GGUF v2 accepted", test_v2_accepted);
    CU_add_test(s, "small valid files", test_small_valid_files);
    CU_add_test(s, "refuses: header", test_refuse_header);
    CU_add_test(s, "refuses: metadata", test_refuse_metadata);
    CU_add_test(s, "refuses: alignment", test_refuse_alignment);
    CU_add_test(s, "refuses: tensor infos", test_refuse_tensor_infos);
    CU_add_test(s, "refuses: every truncation", test_refuse_truncation);
    CU_add_test(s, "open: I/O errors and messages", test_open_file_errors);
    CU_add_test(s, "kdispatch gguf listing", test_cli_listing);
    int rc = kd_test_main();
    printf("%d crafted files refused with the expected message\n", refusals_seen);
    kd_gguf_close(good);
    kd_gguf_close(good64);
    free(img);
    free(img64);
    kd_context_destroy(ctx);
    return rc;
}
