/* ctest-labels: cpu;gguf;cli */
/* kdispatch compare: on a GGUF file written by the gguf Python package (tests/gen_gguf.py:
 * Q4_K / Q6_K weights of random valid blocks, F32 norm weights, llama.* shape keys), in
 * process through kd_compare_run and through the command (its JSON checked by python3);
 * and with a deliberately wrong extra variant, which must make compare fail and name the
 * failing check, while a perturbation inside the tolerance must still pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "compare_core.h"
#include "kd_test_util.h"

#define GEN_FILE "test_compare_gen.gguf"

static kd_context *ctx;
static int have_file;

/* Runs kd_compare_run into a file; returns its exit status and the text in *text. */
static int compare_to_file(const kd_compare_opts *o, const char *path, char **text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    int rc = kd_compare_run(ctx, o, f);
    fclose(f);
    *text = kd_test_read_file(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(*text);
    return rc;
}

static void gguf_opts(kd_compare_opts *o)
{
    kd_compare_opts_init(o);
    o->gguf = GEN_FILE;
    o->seed = 7;
}

#define NEED_FILE()                                                                           \
    do {                                                                                      \
        if (!have_file) {                                                                     \
            CU_FAIL("the GGUF test file was not written");                                    \
            return;                                                                           \
        }                                                                                     \
    } while (0)

/* ---- the test file ------------------------------------------------------------------------- */

static void test_generate(void)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/gen_gguf.py' '%s' --seed 99", KD_SOURCE_DIR,
             GEN_FILE);
    int rc = kd_test_system(cmd);
    if (rc != 0)
        fprintf(stderr, "\nFAILED to write %s with tests/gen_gguf.py (exit status %d). This test "
                "needs python3 with the 'gguf' and 'numpy' packages: run scripts/setup.sh.\n",
                GEN_FILE, rc);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    have_file = 1;
}

/* ---- in process ------------------------------------------------------------------------------ */

static void test_gguf_passes(void)
{
    NEED_FILE();
    kd_compare_opts o;
    gguf_opts(&o);
    o.max_tensors = 8; /* all four K-quant weights of the file */
    char *text;
    int rc = compare_to_file(&o, "test_compare_gguf.txt", &text);
    printf("\n%s", text);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "verdict: PASS"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "hidden 512, intermediate 768, 8 heads x 64"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "seed 7"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "weights: 4 picked of 4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "rmsnorm uses the file's norm weight"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "-- weight blk.0.ffn_down.weight: Q4_K, 6 x 512"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "-- weight blk.0.ffn_gate.weight: Q6_K, 5 x 768"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "-- weight blk.0.ffn_up_exps.weight: Q4_K, 6 x 256"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "-- weight output.weight: Q6_K, 3 x 256"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "q6k_gemv     batched   8  5x768"));
    CU_ASSERT_PTR_NULL(strstr(text, "FAIL"));
    CU_ASSERT_PTR_NULL(strstr(text, "random blocks")); /* both GEMVs met real weights */
    free(text);
}

/* The default pick alternates types: with two weights, one Q4_K and one Q6_K. */
static void test_default_pick_and_rows(void)
{
    NEED_FILE();
    kd_compare_opts o;
    gguf_opts(&o);
    o.max_tensors = 2;
    o.rows = 4;
    o.m[0] = 3;
    o.nm = 1;
    o.use_op[KD_OP_Q4K_GEMV] = o.use_op[KD_OP_Q6K_GEMV] = 1;
    char *text;
    int rc = compare_to_file(&o, "test_compare_pick.txt", &text);
    printf("\n%s", text);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "weights: 2 picked of 4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "blk.0.ffn_down.weight: Q4_K, 6 x 512, first 4 rows"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "blk.0.ffn_gate.weight: Q6_K, 5 x 768, first 4 rows"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "q4k_gemv     batched   3  4x512"));
    CU_ASSERT_PTR_NULL(strstr(text, "\nrmsnorm")); /* --op: GEMVs only */
    CU_ASSERT_PTR_NULL(strstr(text, "output.weight"));
    free(text);
}

/* The extra variant: the cpu backend's result, then a change to one value of one op at one
 * batch size, the size of the change relative to the tolerance. */
typedef struct breakage {
    kd_op op;
    long long m;
    double scale;   /* added: scale * tol * max(1, |y|) to one value */
    int skip_write; /* leave the output as handed over (NaN) */
    kd_status fail; /* return this instead of running */
    int hits;
} breakage;

static kd_status broken_run(kd_context *c, kd_problem *p, float *y, void *user)
{
    breakage *b = user;
    int target = p->d.op == b->op && p->m == b->m;
    if (target && b->fail != KD_OK)
        return b->fail;
    if (target && b->skip_write) {
        b->hits++;
        return KD_OK;
    }
    kd_status st = kd_run(c, &p->d, KD_BACKEND_CPU, KD_RUN_CPU_EXACT);
    if (st == KD_OK)
        st = kd_tensor_read(c, p->dst, y, (size_t)p->out_count);
    if (st == KD_OK && target) {
        int64_t i = p->out_count / 2;
        y[i] += (float)(b->scale * KD_TOLERANCE * fmax(1.0, fabs(y[i])));
        b->hits++;
    }
    return st;
}

static int run_broken(breakage *b, const char *path, char **text)
{
    kd_compare_opts o;
    gguf_opts(&o);
    kd_compare_extra_variant extra = {"broken", broken_run, b};
    o.extra = &extra;
    return compare_to_file(&o, path, text);
}

static void test_injected_mismatch_fails(void)
{
    NEED_FILE();
    breakage b = {.op = KD_OP_Q4K_GEMV, .m = 8, .scale = 3.0};
    char *text;
    int rc = run_broken(&b, "test_compare_broken.txt", &text);
    printf("\n%s", strstr(text, "verdict") ? strstr(text, "verdict") : text);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT(b.hits > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "verdict: FAIL"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "  broken     extra variant (test hook)"));
    /* the wrong value is one of out_count, found against the oracle and every other variant */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "FAIL q4k_gemv batched M=8 blk.0.ffn_down.weight: "
                                        "broken vs oracle: 1 of 48 values out of tolerance, "
                                        "first at row 4, column 0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "broken vs cpu-scalar: 1 of 48"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "broken vs cpu: 1 of 48"));
    /* every other check passed: the failures are exactly those */
    int fails = 0;
    for (const char *p = text; (p = strstr(p, "  FAIL ")); p++)
        fails++;
    CU_ASSERT_EQUAL(fails, 3 * 2); /* two Q4_K weights, M = 8, three references */
    free(text);
}

static void test_small_perturbation_passes(void)
{
    NEED_FILE();
    breakage b = {.op = KD_OP_Q6K_GEMV, .m = 1, .scale = 0.25};
    char *text;
    int rc = run_broken(&b, "test_compare_small.txt", &text);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(b.hits > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "verdict: PASS"));
    free(text);
}

static void test_unwritten_output_fails(void)
{
    NEED_FILE();
    breakage b = {.op = KD_OP_SWIGLU, .m = 1, .skip_write = 1};
    char *text;
    int rc = run_broken(&b, "test_compare_unwritten.txt", &text);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_EQUAL(b.hits, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "FAIL swiglu single M=1: broken vs oracle: 768 of 768"));
    free(text);
}

static void test_failed_run_fails(void)
{
    NEED_FILE();
    breakage b = {.op = KD_OP_ROPE, .m = 8, .fail = KD_ERR_LAUNCH};
    char *text;
    int rc = run_broken(&b, "test_compare_launch.txt", &text);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "rope         batched   8  512          broken     oracle"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "KD_ERR_LAUNCH"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "FAIL rope batched M=8: broken vs oracle: did not run"));
    free(text);
}

static void test_unusable_inputs(void)
{
    NEED_FILE();
    kd_compare_opts o;
    char *text;
    gguf_opts(&o);
    o.tensors[o.ntensors++] = "no.such.tensor";
    CU_ASSERT_EQUAL(compare_to_file(&o, "test_compare_bad.txt", &text), 2);
    free(text);
    gguf_opts(&o);
    o.tensors[o.ntensors++] = "blk.0.f16"; /* F16: listed, not run */
    CU_ASSERT_EQUAL(compare_to_file(&o, "test_compare_bad.txt", &text), 2);
    free(text);
    gguf_opts(&o);
    o.gguf = "no/such/file.gguf";
    CU_ASSERT_EQUAL(compare_to_file(&o, "test_compare_bad.txt", &text), 2);
    free(text);
}

/* A built-in shape whose hidden size (896) is not a multiple of 256: the Q4_K GEMV takes
 * the down projection's shape and passes. */
static void test_builtin_shape(void)
{
    kd_compare_opts o;
    kd_compare_opts_init(&o);
    o.shape = kd_model_shape_find("0.5b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o.shape);
    o.use_op[KD_OP_Q4K_GEMV] = o.use_op[KD_OP_ROPE] = 1;
    char *text;
    CU_ASSERT_EQUAL(compare_to_file(&o, "test_compare_shape.txt", &text), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "q4k_gemv     batched   8  896x4864"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "rope         single    1  896"));
    free(text);
}

/* Where the hidden size fits, the Q4_K GEMV runs both FFN shapes: the up projection and
 * the down projection (K = intermediate, Q4_K in about half of a Q4_K_M file's layers),
 * whose long rows are where a K-dependent bug shows; 0.5b keeps its one shape. */
static void test_builtin_shape_q4k_down(void)
{
    kd_compare_opts o;
    kd_compare_opts_init(&o);
    o.shape = kd_model_shape_find("1.5b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(o.shape);
    o.use_op[KD_OP_Q4K_GEMV] = 1;
    o.use_backend[KD_BACKEND_CPU] = 1;
    o.m[0] = 1;
    o.nm = 1;
    char *text;
    CU_ASSERT_EQUAL(compare_to_file(&o, "test_compare_shape_down.txt", &text), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "q4k_gemv     single    1  8960x1536"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "q4k_gemv     single    1  1536x8960"));
    free(text);
    int64_t n[2], k[2];
    CU_ASSERT_EQUAL(kd_model_op_shapes(kd_model_shape_find("8b"), KD_OP_Q4K_GEMV, n, k), 2);
    CU_ASSERT(n[0] == 14336 && k[0] == 4096 && n[1] == 4096 && k[1] == 14336);
    CU_ASSERT_EQUAL(kd_model_op_shapes(kd_model_shape_find("0.5b"), KD_OP_Q4K_GEMV, n, k), 1);
    CU_ASSERT_EQUAL(kd_model_op_shapes(kd_model_shape_find("8b"), KD_OP_Q6K_GEMV, n, k), 1);
}

/* ---- the command ----------------------------------------------------------------------------- */

static void test_cli_json(void)
{
    NEED_FILE();
    const char *exe = kd_test_kdispatch_exe();
    CU_ASSERT_PTR_NOT_NULL_FATAL(exe);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' compare --gguf %s --json --seed 11 > test_compare_cli.json",
             exe, GEN_FILE);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import json; d=json.load(open('test_compare_cli.json')); "
             "keys={'op','kernel','m','n','k','tensor','backend','reference','status',"
             "'max_abs_err','nmse','bad','count','pass'}; rs=d['results']; "
             "assert d['command']=='compare' and d['seed']==11 and d['tolerance']==0.001; "
             "m=d['model']; assert m['source']=='gguf' and m['architecture']=='llama'; "
             "assert (m['hidden'],m['intermediate'],m['heads'],m['head_dim'])==(512,768,8,64); "
             "assert [v['name'] for v in d['variants']][0]=='cpu-scalar'; "
             "assert all(keys <= set(r) for r in rs); "
             "assert all(r['pass'] and r['status']=='KD_OK' and r['bad']==0 for r in rs); "
             "assert all(r['max_abs_err'] is not None and r['max_abs_err'] < 1e-3 for r in rs "
             "if not r['backend'].endswith('-q8')); "
             "q8=[r for r in rs if r['backend'].endswith('-q8')]; "
             "assert any(r['backend']=='cpu-q8' for r in q8) and all(r['gemv_path']=="
             "'q8' and (r['nmse']<=5e-4 or r['count']<64) and r['max_rel_err']>0 and "
             "r['reference']=='oracle' for r in q8); assert {r['op'] for r in q8}=={'q4k_gemv','q6k_gemv'}; "
             "assert {r['op'] for r in rs}=={'rmsnorm','rope','swiglu','residual_add',"
             "'q4k_gemv','q6k_gemv'}; assert {r['m'] for r in rs}=={1,8}; "
             "t={(r['tensor'],r['tensor_type']) for r in rs if r['tensor']}; "
             "assert t=={('blk.0.ffn_down.weight','Q4_K'),('blk.0.ffn_gate.weight','Q6_K'),"
             "('blk.0.ffn_up_exps.weight','Q4_K'),('output.weight','Q6_K')}, t; "
             "assert any(r['reference']!='oracle' for r in rs); "
             "assert d['checks']==len(rs) and d['failed']==0 and d['verdict']=='PASS'\"");
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);

    /* --tensor and --rows: the first 2 of output.weight's 3 rows */
    snprintf(cmd, sizeof cmd,
             "'%s' compare --gguf %s --json --tensor output.weight --rows 2 --m 1,4 "
             "--op q6k_gemv --backend cpu > test_compare_rows.json && python3 -c \"import json; "
             "rs=json.load(open('test_compare_rows.json'))['results']; "
             "assert rs and all(r['tensor']=='output.weight' and r['rows_checked']==2 and "
             "r['tensor_rows']==3 and r['n']==2 and r['count']==2*r['m'] for r in rs); "
             "assert {r['m'] for r in rs}=={1,4}\"",
             exe, GEN_FILE);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);
}

/* --copy-weights: the weights of rows longer than 8192 copied into the cpu's row groups
 * (kd_tensor_quant) give the same verdict as borrowed; the report says which it ran. */
static void test_cli_copy_weights(void)
{
    const char *exe = kd_test_kdispatch_exe();
    CU_ASSERT_PTR_NOT_NULL_FATAL(exe);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/gen_gguf.py' test_compare_long.gguf --long-rows --seed 3",
             KD_SOURCE_DIR);
    CU_ASSERT_EQUAL_FATAL(kd_test_system(cmd), 0);
    const char *layouts[] = {"copied", "borrowed"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd,
                 "'%s' compare --gguf test_compare_long.gguf %s --json --tensor blk.1.ffn_up.weight "
                 "--tensor blk.1.ffn_down.weight --op q4k_gemv,q6k_gemv --backend cpu --m 1,3,9 "
                 "> test_compare_long.json && python3 -c \"import json; "
                 "d=json.load(open('test_compare_long.json')); rs=d['results']; "
                 "assert d['model']['weights']=='%s', d['model']; "
                 "assert {(r['tensor'],r['k']) for r in rs}=={('blk.1.ffn_up.weight',8448),"
                 "('blk.1.ffn_down.weight',8448)}; assert {r['backend'] for r in rs}>={'cpu','cpu-q8'}; "
                 "assert {r['m'] for r in rs}=={1,3,9}; assert all(r['pass'] for r in rs) and "
                 "d['verdict']=='PASS'\"",
                 exe, i == 0 ? "--copy-weights" : "", layouts[i]);
        CU_ASSERT_EQUAL(kd_test_system(cmd), 0);
    }
}

static void test_cli_usage(void)
{
    NEED_FILE();
    const char *exe = kd_test_kdispatch_exe();
    CU_ASSERT_PTR_NOT_NULL_FATAL(exe);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' compare --gguf %s --tensor nope 2>/dev/null >/dev/null", exe,
             GEN_FILE);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 2);
    snprintf(cmd, sizeof cmd, "'%s' compare --rows 4 2>/dev/null", exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 2);
    snprintf(cmd, sizeof cmd, "'%s' compare --copy-weights 2>/dev/null", exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 2);
    snprintf(cmd, sizeof cmd, "'%s' compare --m 0 2>/dev/null", exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 2);
    const char *want[] = {"--gguf FILE", "--tensor NAME", "--max-tensors N", "--rows N", "--copy-weights", "--m LIST",
                          "--backend LIST", "--op LIST", "--seed N", "--tol X", "--json",
                          "Exit status"};
    kd_test_expect_help("compare", want, sizeof want / sizeof *want);
    /* the same seed gives the same numbers */
    snprintf(cmd, sizeof cmd,
             "'%s' compare --shape 0.5b --op rmsnorm,q6k_gemv --seed 5 --json > test_compare_s1.json"
             " && '%s' compare --shape 0.5b --op rmsnorm,q6k_gemv --seed 5 --json > "
             "test_compare_s2.json && cmp -s test_compare_s1.json test_compare_s2.json",
             exe, exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);
}

int main(void)
{
    kd_context_options co = {.disable_opencl = 1, .disable_cuda = 1};
    if (kd_context_create(&co, &ctx) != KD_OK) {
        fprintf(stderr, "context: %s\n", kd_last_error(NULL));
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("compare", NULL, NULL);
    CU_add_test(s, "write the GGUF test file (tests/gen_gguf.py)", test_generate);
    CU_add_test(s, "GGUF shapes and weights: every check passes", test_gguf_passes);
    CU_add_test(s, "default weight pick, --rows, --op", test_default_pick_and_rows);
    CU_add_test(s, "injected mismatch: exit 1 and FAIL named", test_injected_mismatch_fails);
    CU_add_test(s, "perturbation inside the tolerance passes", test_small_perturbation_passes);
    CU_add_test(s, "unwritten output fails", test_unwritten_output_fails);
    CU_add_test(s, "failed run fails", test_failed_run_fails);
    CU_add_test(s, "unusable inputs: exit 2", test_unusable_inputs);
    CU_add_test(s, "built-in shape with hidden 896", test_builtin_shape);
    CU_add_test(s, "built-in shape: Q4_K GEMV at both FFN shapes", test_builtin_shape_q4k_down);
    CU_add_test(s, "kdispatch compare --json parses", test_cli_json);
    CU_add_test(s, "kdispatch compare --copy-weights: row-grouped copies pass", test_cli_copy_weights);
    CU_add_test(s, "kdispatch compare usage and seed", test_cli_usage);
    int rc = kd_test_main();
    kd_context_destroy(ctx);
    return rc;
}
