/* ctest-labels: cpu;cli */
/* The JSON reader kdispatch fleet's rank 0 reads every rank's record with (cli/fleet_json.c):
 * what it accepts, what it refuses, and that writing back gives the same document. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_json.h"
#include "kd_test_util.h"

static fj *parse(const char *s)
{
    char why[128];
    return fj_parse(s, strlen(s), why, sizeof why);
}

static void test_values(void)
{
    fj *v = parse(" {\"a\": [1, -2.5e3, true, false, null], \"s\": \"x\\\"y\\\\z\\n\","
                  " \"u\": \"\\u00e9\\ud83d\\ude00\", \"o\": {\"k\": {}}, \"e\": []} ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    const fj *a = fj_get(v, "a");
    CU_ASSERT_EQUAL(fj_len(a), 5);
    CU_ASSERT_DOUBLE_EQUAL(fj_num(fj_at(a, 0), 0), 1.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(fj_num(fj_at(a, 1), 0), -2500.0, 0);
    CU_ASSERT_EQUAL(fj_bool(fj_at(a, 2), 0), 1);
    CU_ASSERT_EQUAL(fj_bool(fj_at(a, 3), 1), 0);
    CU_ASSERT_EQUAL(fj_at(a, 4)->type, FJ_NULL);
    CU_ASSERT_PTR_NULL(fj_at(a, 5));
    CU_ASSERT_STRING_EQUAL(fj_str(fj_get(v, "s"), ""), "x\"y\\z\n");
    CU_ASSERT_STRING_EQUAL(fj_str(fj_get(v, "u"), ""), "\xc3\xa9\xf0\x9f\x98\x80");
    CU_ASSERT_EQUAL(fj_get(fj_get(v, "o"), "k")->type, FJ_OBJ);
    CU_ASSERT_EQUAL(fj_len(fj_get(v, "e")), 0);
    /* absent keys and other types read as the default */
    CU_ASSERT_PTR_NULL(fj_get(v, "missing"));
    CU_ASSERT_STRING_EQUAL(fj_str(fj_get(v, "a"), "dflt"), "dflt");
    CU_ASSERT_DOUBLE_EQUAL(fj_num(fj_get(v, "s"), 7), 7, 0);
    fj_free(v);
}

static void test_refused(void)
{
    static const char *const bad[] = {
        "", "{", "[1,", "{\"a\" 1}", "{\"a\":1,}", "[1 2]", "{\"a\":1} x", "\"abc",
        "\"bad \\q escape\"", "\"ctl \x01 char\"", "tru", "nul", "-", "1e", "{1:2}",
        "\"\\u12g4\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char why[128] = "";
        fj *v = fj_parse(bad[i], strlen(bad[i]), why, sizeof why);
        if (v)
            fprintf(stderr, "accepted bad JSON: '%s'\n", bad[i]);
        CU_ASSERT_PTR_NULL(v);
        CU_ASSERT(strncmp(why, "JSON: ", 6) == 0);
        fj_free(v);
    }
    /* nesting deeper than the limit is refused, not a stack overflow */
    char deep[300];
    memset(deep, '[', 200);
    deep[200] = '\0';
    CU_ASSERT_PTR_NULL(parse(deep));
    /* a length shorter than the text: only that much is read */
    CU_ASSERT_PTR_NULL(fj_parse("[1,2]", 4, NULL, 0));
}

static void test_round_trip(void)
{
    const char *doc = "{\"rank\":3,\"node\":\"n\\u0001\\\"q\",\"x\":[0.5,null,true],\"o\":{}}";
    fj *v = parse(doc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fj_write(f, v);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(buf, doc);
    fj *again = fj_parse(buf, len, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL(again);
    fj_free(again);
    free(buf);
    fj_free(v);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("fleet_json", NULL, NULL);
    CU_add_test(s, "values, escapes, UTF-16 pairs, defaults", test_values);
    CU_add_test(s, "malformed JSON is refused with a message", test_refused);
    CU_add_test(s, "write back gives the same document", test_round_trip);
    return kd_test_main();
}
