/* ctest-labels: bench;cli */
/* bench/vs-ggml.sh against a stand-in for ggml's test-backend-ops (a shell script written
 * here that answers like it, with a fixed time): usage errors, the MUL_MAT op-number probe,
 * the table and the JSON with kdispatch's real timings and the ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kd_test_util.h"

#define STUB "test_vs_ggml_stub.sh"

/* Answers `support` with the probe line of op number 29 only, and `perf` with 2000 us. */
static int write_stub(void)
{
    FILE *f = fopen(STUB, "w");
    if (!f)
        return -1;
    fputs("#!/bin/sh\n"
          "mode=$1; f=\n"
          "while [ $# -gt 0 ]; do [ \"$1\" = --test-file ] && f=$2; shift; done\n"
          "if [ \"$mode\" = support ]; then\n"
          "  grep -q '^29 .*kdprobe_op29$' \"$f\" && echo '  MUL_MAT(name=kdprobe_op29,type=f32): OK'\n"
          "  exit 0\n"
          "fi\n"
          "set -- $(cat \"$f\")\n"
          "[ \"$1\" = 29 ] || exit 1\n"
          "eval name=\\${$#}\n"
          "echo \"  MUL_MAT(name=$name,type=f32,ne=[1]):     10 runs -  2000.00 us/run - 1 kB/run\"\n",
          f);
    return fclose(f) == 0 && kd_test_system("chmod +x " STUB) == 0 ? 0 : -1;
}

static void test_usage(void)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "env -u GGML_TEST_BACKEND_OPS %s/bench/vs-ggml.sh 2>/dev/null",
             KD_SOURCE_DIR);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 2); /* no ggml binary given */
    snprintf(cmd, sizeof cmd, "%s/bench/vs-ggml.sh --ggml-bin /nonexistent 2>/dev/null",
             KD_SOURCE_DIR);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 2);
    snprintf(cmd, sizeof cmd, "%s/bench/vs-ggml.sh --rounds x 2>/dev/null", KD_SOURCE_DIR);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 2);
    snprintf(cmd, sizeof cmd, "%s/bench/vs-ggml.sh --ggml-bin /bin/true --backend vulkan 2>/dev/null",
             KD_SOURCE_DIR);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 2); /* only cpu and opencl */
    static const char *const bad_m[] = {"0", "1,x", "5000", "", "08"};
    for (int i = 0; i < 5; i++) {
        snprintf(cmd, sizeof cmd, "%s/bench/vs-ggml.sh --ggml-bin /bin/true --m '%s' 2>/dev/null",
                 KD_SOURCE_DIR, bad_m[i]);
        CU_ASSERT_EQUAL(kd_test_system(cmd), 2);
    }
    snprintf(cmd, sizeof cmd, "%s/bench/vs-ggml.sh --help | grep -q 'GGML_BUILD_TESTS=ON'",
             KD_SOURCE_DIR);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);
}

static void test_table_and_json(void)
{
    const char *exe = kd_test_kdispatch_exe();
    CU_ASSERT_PTR_NOT_NULL_FATAL(exe);
    CU_ASSERT_EQUAL_FATAL(write_stub(), 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s/bench/vs-ggml.sh --ggml-bin ./" STUB " --kdispatch '%s' --quick --rounds 1 "
             "--m 1,3 --json test_vs_ggml.json > test_vs_ggml.txt 2> test_vs_ggml.err",
             KD_SOURCE_DIR, exe);
    int rc = kd_test_system(cmd);
    char *out = kd_test_read_file("test_vs_ggml.txt", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    printf("\n%s", out);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "kdispatch/ggml"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "rounds' ratios")); /* per-round ratio range */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "ggml frac")); /* of the host's read bandwidth */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "kd frac"));
    /* the device kdispatch timed, as `kdispatch devices` names it (SIMD level, GEMV path) */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "kdispatch device: host cpu, "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "kdispatch weights: kdispatch's own copy"));
    free(out);
    /* 8 shapes (--m 1,3), ggml's stand-in time, kdispatch's own, ratio = kdispatch / ggml */
    CU_ASSERT_EQUAL(kd_test_system(
        "python3 -c \"import json; d=json.load(open('test_vs_ggml.json')); r=d['rows']; "
        "assert len(r)==8 and d['rounds']==1 and d['kd_backend']=='cpu'; "
        "assert d['kd_device'].startswith('host cpu, ') and 'GEMV' in d['kd_device'], d; "
        "assert {(x['type'],x['n'],x['k'],x['m']) for x in r}=={(q,n,k,m) for q in ('q4_K','q6_K') "
        "for (n,k) in ((4096,14336),(14336,4096)) for m in (1,3)}; "
        "assert all(x['ggml_median_us']==2000 and x['kdispatch_median_us']>0 and "
        "abs(x['ratio']-x['kdispatch_median_us']/2000)<0.01 and len(x['round_ratios'])==1 and "
        "abs(x['round_ratios'][0]-x['kdispatch_us'][0]/2000)<1e-3 for x in r), r; "
        "assert d['kd_weights'].startswith(\\\"kdispatch's own\\\"), d\""), 0);
    /* each round's bytes per second over the read bandwidth that kdispatch bench measured
     * in that round: ggml's from its stand-in 2000 us, kdispatch's from its own time */
    CU_ASSERT_EQUAL(kd_test_system(
        "python3 -c \"import json; r=json.load(open('test_vs_ggml.json'))['rows']; "
        "assert all(x['bytes']>0 and len(x['read_bw_gbps'])==1 and x['read_bw_gbps'][0]>0 and "
        "abs(x['ggml_frac_of_read_bw'][0]-x['bytes']/2e-3/(x['read_bw_gbps'][0]*1e9))<1e-3 and "
        "abs(x['kdispatch_frac_of_read_bw'][0]-x['bytes']/(x['kdispatch_us'][0]*1e-6)/"
        "(x['read_bw_gbps'][0]*1e9))<2e-3*x['kdispatch_frac_of_read_bw'][0]+1e-4 and "
        "x['ggml_frac_median']==x['ggml_frac_of_read_bw'][0] and "
        "x['kdispatch_frac_median']==x['kdispatch_frac_of_read_bw'][0] for x in r), r\""), 0);
    /* --borrow-weights reaches kdispatch bench, and the run says so */
    snprintf(cmd, sizeof cmd,
             "%s/bench/vs-ggml.sh --ggml-bin ./" STUB " --kdispatch '%s' --quick --rounds 1 "
             "--m 1 --borrow-weights --json test_vs_ggml_b.json > test_vs_ggml_b.txt",
             KD_SOURCE_DIR, exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);
    CU_ASSERT_EQUAL(kd_test_system("grep -q '^kdispatch weights: borrowed' test_vs_ggml_b.txt"), 0);
    CU_ASSERT_EQUAL(kd_test_system(
        "python3 -c \"import json; d=json.load(open('test_vs_ggml_b.json')); "
        "assert len(d['rows'])==4 and '--borrow-weights' in d['kdispatch_command'] and "
        "d['kd_weights'].startswith('borrowed'), d\""), 0);
}

/* A ggml that times nothing makes the run fail (exit 1), not print a made-up table. */
static void test_failed_runs_reported(void)
{
    const char *exe = kd_test_kdispatch_exe();
    CU_ASSERT_PTR_NOT_NULL_FATAL(exe);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "printf '#!/bin/sh\\nexit 0\\n' > test_vs_ggml_mute.sh && "
             "chmod +x test_vs_ggml_mute.sh && %s/bench/vs-ggml.sh --ggml-bin "
             "./test_vs_ggml_mute.sh --kdispatch '%s' --quick --rounds 1 > /dev/null 2>&1",
             KD_SOURCE_DIR, exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 1);
}

int main(void)
{
    if (kd_test_system("command -v bash > /dev/null && command -v python3 > /dev/null") != 0)
        return kd_test_skip("bash or python3 missing");
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("vs-ggml.sh", NULL, NULL);
    CU_add_test(s, "usage errors", test_usage);
    CU_add_test(s, "table and JSON with a stand-in ggml", test_table_and_json);
    CU_add_test(s, "a ggml that times nothing fails the run", test_failed_runs_reported);
    return kd_test_main();
}
