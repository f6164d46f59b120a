/* kd_json, the one JSON writer: escaping (RFC 8259, control bytes, invalid UTF-8), numbers
 * (NaN and infinities as null), nesting and commas, and misuse reported by finish. The
 * fleet's JSON reader checks that what is written parses. */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_json.h"
#include "kd_json.h"
#include "kd_test_util.h"

/* A memory stream and what was written to it. */
typedef struct sink {
    char *buf;
    size_t len;
    FILE *f;
} sink;

static void sink_open(sink *s)
{
    memset(s, 0, sizeof *s);
    s->f = open_memstream(&s->buf, &s->len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->f);
}

/* Closes the stream; the text stays in s->buf (the caller frees it). */
static const char *sink_text(sink *s)
{
    fclose(s->f);
    s->f = NULL;
    return s->buf;
}

/* The JSON literal written for len bytes of s, compared with want. */
static void expect_escaped(const char *s, size_t len, const char *want)
{
    sink k;
    sink_open(&k);
    kd_json_write_strn(k.f, s, len);
    const char *got = sink_text(&k);
    CU_ASSERT_STRING_EQUAL(got, want);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "escaped: got %s want %s\n", got, want);
    fj *v = fj_parse(got, strlen(got), NULL, 0); /* and it is JSON */
    CU_ASSERT_PTR_NOT_NULL(v);
    fj_free(v);
    free(k.buf);
}

static void test_escapes(void)
{
    expect_escaped("plain", 5, "\"plain\"");
    expect_escaped("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    expect_escaped("\n\t\r\b\f", 5, "\"\\u000a\\u0009\\u000d\\u0008\\u000c\"");
    expect_escaped("\x1b[31m", 5, "\"\\u001b[31m\""); /* ESC: never raw to a terminal */
    expect_escaped("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
    expect_escaped("a\0b", 3, "\"a\\u0000b\""); /* an embedded NUL with an explicit length */
    expect_escaped("", 0, "\"\"");
}

static void test_utf8(void)
{
    expect_escaped("h\xc3\xa9llo \xf0\x9f\x98\x80", 11, "\"h\xc3\xa9llo \xf0\x9f\x98\x80\"");
    expect_escaped("\xe9", 1, "\"\\u00e9\"");             /* a lone Latin-1 byte */
    expect_escaped("\xc3", 1, "\"\\u00c3\"");             /* truncated sequence */
    expect_escaped("\xc0\xaf", 2, "\"\\u00c0\\u00af\"");  /* overlong '/' */
    expect_escaped("\xed\xa0\x80", 3, "\"\\u00ed\\u00a0\\u0080\""); /* a surrogate */
    expect_escaped("\xf4\x90\x80\x80", 4, "\"\\u00f4\\u0090\\u0080\\u0080\""); /* > U+10FFFF */
    expect_escaped("\xc2\x9b", 2, "\"\\u009b\"");         /* C1 CSI */
    expect_escaped("\xe2\x80\xae", 3, "\"\\u202e\"");     /* bidi override */
    expect_escaped("\xe2\x80\xa8", 3, "\"\\u2028\"");     /* line separator */
    CU_ASSERT_EQUAL(kd_json_utf8_len((const unsigned char *)"\xe2\x82\xac", 3), 3);
    CU_ASSERT_EQUAL(kd_json_utf8_len((const unsigned char *)"\xe2\x82\xac", 2), 0);
    CU_ASSERT_EQUAL(kd_json_utf8_cp((const unsigned char *)"\xe2\x82\xac", 3), 0x20acu);
}

static void test_null_string_and_numbers(void)
{
    sink k;
    sink_open(&k);
    kd_json_write_str(k.f, NULL);
    fputc(' ', k.f);
    kd_json_write_num(k.f, NAN, "%.6e");
    fputc(' ', k.f);
    kd_json_write_num(k.f, INFINITY, NULL);
    fputc(' ', k.f);
    kd_json_write_num(k.f, -INFINITY, NULL);
    fputc(' ', k.f);
    kd_json_write_num(k.f, 0.5, "%.6e");
    fputc(' ', k.f);
    kd_json_write_num(k.f, 0.1, NULL);
    CU_ASSERT_STRING_EQUAL(sink_text(&k), "null null null null 5.000000e-01 0.10000000000000001");
    free(k.buf);
}

static void test_nesting_and_commas(void)
{
    sink k;
    sink_open(&k);
    kd_json w;
    kd_json_init(&w, k.f);
    kd_json_begin_object(&w);
    kd_json_key(&w, "a");
    kd_json_int(&w, -3);
    kd_json_key(&w, "list");
    kd_json_begin_array(&w);
    kd_json_newline(&w);
    kd_json_num(&w, 1.5, "%g");
    kd_json_newline(&w);
    kd_json_str(&w, "x\"");
    kd_json_begin_object(&w);
    kd_json_end_object(&w);
    kd_json_begin_array(&w);
    kd_json_end_array(&w);
    kd_json_null(&w);
    kd_json_bool(&w, 1);
    kd_json_num(&w, NAN, NULL);
    kd_json_newline(&w);
    kd_json_end_array(&w);
    kd_json_key(&w, "raw");
    kd_json_raw(&w, "{\"k\":[1]}", 9);
    kd_json_key(&w, "s");
    kd_json_strn(&w, "ab", 1);
    kd_json_key_str(&w, "t", NULL);
    kd_json_key_num(&w, "n", INFINITY, NULL);
    kd_json_key_int(&w, "i", 7);
    kd_json_key(&w, "u");
    kd_json_uint(&w, 18446744073709551615ull);
    kd_json_key_bool(&w, "b", 0);
    kd_json_end_object(&w);
    CU_ASSERT_EQUAL(kd_json_finish(&w), 0);
    const char *got = sink_text(&k);
    CU_ASSERT_STRING_EQUAL(got, "{\"a\":-3,\"list\":[\n1.5,\n\"x\\\"\",{},[],null,true,null\n],"
                                "\"raw\":{\"k\":[1]},\"s\":\"a\",\"t\":null,\"n\":null,"
                                "\"i\":7,\"u\":18446744073709551615,\"b\":false}\n");
    fj *v = fj_parse(got, strlen(got), NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(fj_len(fj_get(v, "list")), 7);
    CU_ASSERT_STRING_EQUAL(fj_str(fj_at(fj_get(v, "list"), 1), ""), "x\"");
    fj_free(v);
    free(k.buf);
}

/* finish fails on each misuse: an unclosed level, a value without its key, a key in an
 * array, a key without its value, a mismatched bracket. */
static void test_misuse_is_reported(void)
{
    for (int c = 0; c < 5; c++) {
        sink k;
        sink_open(&k);
        kd_json w;
        kd_json_init(&w, k.f);
        if (c == 0) {
            kd_json_begin_object(&w);
        } else if (c == 1) {
            kd_json_begin_object(&w);
            kd_json_int(&w, 1);
            kd_json_end_object(&w);
        } else if (c == 2) {
            kd_json_begin_array(&w);
            kd_json_key(&w, "k");
            kd_json_int(&w, 1);
            kd_json_end_array(&w);
        } else if (c == 3) {
            kd_json_begin_object(&w);
            kd_json_key(&w, "k");
            kd_json_end_object(&w);
        } else {
            kd_json_begin_object(&w);
            kd_json_end_array(&w);
        }
        CU_ASSERT_EQUAL(kd_json_finish(&w), -1);
        sink_text(&k);
        free(k.buf);
    }
    /* and too deep */
    sink k;
    sink_open(&k);
    kd_json w;
    kd_json_init(&w, k.f);
    for (int i = 0; i <= KD_JSON_MAX_DEPTH; i++)
        kd_json_begin_array(&w);
    for (int i = 0; i <= KD_JSON_MAX_DEPTH; i++)
        kd_json_end_array(&w);
    CU_ASSERT_EQUAL(kd_json_finish(&w), -1);
    sink_text(&k);
    free(k.buf);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("kd_json", NULL, NULL);
    CU_add_test(s, "quotes, backslash, control bytes, ESC, NUL", test_escapes);
    CU_add_test(s, "UTF-8 kept, invalid bytes and active code points escaped", test_utf8);
    CU_add_test(s, "NULL strings, NaN and infinities as null, formats", test_null_string_and_numbers);
    CU_add_test(s, "nesting, keys, commas, line breaks, raw values", test_nesting_and_commas);
    CU_add_test(s, "finish reports misuse", test_misuse_is_reported);
    return kd_test_main();
}
