/* ctest-labels: cpu;cli;bench */
/* kdispatch bench: the sysfs cache reader on a made-up sysfs tree, then the command:
 * `bench --quick --csv F --json G` must run, its CSV must have the expected columns and
 * consistent positive values, its JSON must parse (python3) with the expected keys, and
 * --plot must write a PNG through bench/plot.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kd_test_util.h"
#include "membw.h"
#include "op_traits.h"

#define CSV_HEADER                                                                             \
    "section,op,kernel,m,n,k,backend,device,bytes,repeats,inner,median_s,min_s,max_s,p25_s,"   \
    "p75_s,gbps,frac_of_read_bw,read_bw_gbps,frac_of_device_bw,device_bw_gbps,l2_bytes,"    \
    "llc_bytes"
enum { NCOLS = 23 };

/* ---- sysfs cache sizes -------------------------------------------------------------------- */

static void test_parse_cache_size(void)
{
    CU_ASSERT_EQUAL(kd_parse_cache_size("32K"), 32768);
    CU_ASSERT_EQUAL(kd_parse_cache_size("32768K\n"), 32ll << 20);
    CU_ASSERT_EQUAL(kd_parse_cache_size("8M"), 8ll << 20);
    CU_ASSERT_EQUAL(kd_parse_cache_size("1G"), 1ll << 30);
    CU_ASSERT_EQUAL(kd_parse_cache_size("1024"), 1024);
    CU_ASSERT_EQUAL(kd_parse_cache_size(""), 0);
    CU_ASSERT_EQUAL(kd_parse_cache_size("K"), 0);
    CU_ASSERT_EQUAL(kd_parse_cache_size("12Q"), 0);
    CU_ASSERT_EQUAL(kd_parse_cache_size("-5K"), 0);
    CU_ASSERT_EQUAL(kd_parse_cache_size("5KB"), 0);
}

static void put_file(const char *dir, int index, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/index%d", dir, index);
    mkdir(dir, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/index%d/%s", dir, index, name);
    CU_ASSERT_FATAL(kd_test_write_file(path, text, strlen(text)) == 0);
}

static void put_cache(const char *dir, int index, const char *level, const char *type,
                      const char *size)
{
    put_file(dir, index, "level", level);
    put_file(dir, index, "type", type);
    put_file(dir, index, "size", size);
}

static void test_caches_from_sysfs(void)
{
    int rc = kd_test_system("rm -rf test_bench_sysfs3 test_bench_sysfs2 test_bench_sysfs0");
    CU_ASSERT_EQUAL(rc, 0);
    /* an L3 machine; the instruction cache is not a data cache */
    put_cache("test_bench_sysfs3", 0, "1\n", "Data\n", "48K\n");
    put_cache("test_bench_sysfs3", 1, "1\n", "Instruction\n", "64K\n");
    put_cache("test_bench_sysfs3", 2, "2\n", "Unified\n", "1024K\n");
    put_cache("test_bench_sysfs3", 3, "3\n", "Unified\n", "98304K\n");
    kd_host_caches c;
    kd_host_caches_read("test_bench_sysfs3", &c);
    CU_ASSERT_EQUAL(c.l1d, 48 << 10);
    CU_ASSERT_EQUAL(c.l2, 1 << 20);
    CU_ASSERT_EQUAL(c.llc, 96ll << 20);
    CU_ASSERT_EQUAL(c.llc_level, 3);
    CU_ASSERT_EQUAL(c.from_sysfs, 1);

    /* no L3: the L2 is the last level */
    put_cache("test_bench_sysfs2", 0, "1", "Data", "32K");
    put_cache("test_bench_sysfs2", 2, "2", "Unified", "2048K");
    kd_host_caches_read("test_bench_sysfs2", &c);
    CU_ASSERT_EQUAL(c.l2, 2 << 20);
    CU_ASSERT_EQUAL(c.llc, 2 << 20);
    CU_ASSERT_EQUAL(c.llc_level, 2);

    /* nothing readable: assumed sizes, and said so */
    mkdir("test_bench_sysfs0", 0755);
    put_cache("test_bench_sysfs0", 0, "2", "Unified", "garbage");
    kd_host_caches_read("test_bench_sysfs0", &c);
    CU_ASSERT_EQUAL(c.from_sysfs, 0);
    CU_ASSERT_EQUAL(c.l2, 512 << 10);
    CU_ASSERT_EQUAL(c.llc, 8 << 20);

    kd_host_caches_read(NULL, &c); /* this machine */
    printf("\n  this machine: L1d %lld, L2 %lld, LLC %lld (L%d), %s", c.l1d, c.l2, c.llc,
           c.llc_level, c.from_sysfs ? "from sysfs" : "assumed");
    CU_ASSERT(c.l2 > 0 && c.llc >= c.l2);
    CU_ASSERT_EQUAL(kd_test_system("rm -rf test_bench_sysfs3 test_bench_sysfs2 test_bench_sysfs0"), 0);
}

/* ---- the CSV -------------------------------------------------------------------------------- */

typedef struct csv_row {
    char f[NCOLS][96];
} csv_row;

/* Splits one line into exactly NCOLS fields (no quoting in bench's CSV); -1 otherwise. */
static int split(const char *line, size_t len, csv_row *r)
{
    int col = 0;
    size_t at = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && line[i] != ',')
            continue;
        if (col == NCOLS || i - at >= sizeof r->f[0])
            return -1;
        memcpy(r->f[col], line + at, i - at);
        r->f[col++][i - at] = '\0';
        at = i + 1;
    }
    return col == NCOLS ? 0 : -1;
}

static double num(const csv_row *r, int col) { return atof(r->f[col]); }

enum { C_SECTION, C_OP, C_KERNEL, C_M, C_N, C_K, C_BACKEND, C_DEVICE, C_BYTES, C_REPEATS,
       C_INNER, C_MEDIAN, C_MIN, C_MAX, C_P25, C_P75, C_GBPS, C_FRAC, C_BW, C_DFRAC, C_DBW,
       C_L2, C_LLC };

typedef struct csv_summary {
    int rows, headline_gemv, launch, sweep;
    int sweep_ops[KD_OP_COUNT];
    int sweep_m1, sweep_m8, bad_values;
    double min_ws, max_ws, llc;
} csv_summary;

static void check_row(const csv_row *r, csv_summary *s)
{
    int ok = num(r, C_M) >= 1 && num(r, C_N) >= 1 && num(r, C_BYTES) > 0 &&
             num(r, C_REPEATS) >= 1 && num(r, C_INNER) >= 1 && num(r, C_MIN) > 0 &&
             num(r, C_MIN) <= num(r, C_P25) && num(r, C_P25) <= num(r, C_MEDIAN) &&
             num(r, C_MEDIAN) <= num(r, C_P75) && num(r, C_P75) <= num(r, C_MAX) &&
             num(r, C_GBPS) > 0 && num(r, C_FRAC) > 0 && num(r, C_BW) > 0 && num(r, C_L2) > 0 &&
             num(r, C_LLC) >= num(r, C_L2);
    /* gbps = bytes / median, frac = gbps / read bandwidth (to the printed digits) */
    double gbps = num(r, C_BYTES) / num(r, C_MEDIAN) / 1e9;
    ok = ok && fabs(gbps - num(r, C_GBPS)) <= 1e-3 * gbps + 1e-4;
    ok = ok && fabs(gbps / num(r, C_BW) - num(r, C_FRAC)) <= 1e-3 * gbps / num(r, C_BW) + 1e-4;
    /* dfrac against the device's bandwidth, which is the host's for the cpu */
    ok = ok && num(r, C_DBW) > 0 &&
         fabs(gbps / num(r, C_DBW) - num(r, C_DFRAC)) <= 1e-3 * gbps / num(r, C_DBW) + 1e-4;
    ok = ok && (strcmp(r->f[C_BACKEND], "cpu") != 0 || num(r, C_DBW) == num(r, C_BW));
    ok = ok && strcmp(r->f[C_KERNEL], num(r, C_M) == 1 ? "single" : "batched") == 0;
    ok = ok && kd_backend_from_name(r->f[C_BACKEND]) != KD_BACKEND_COUNT;
    if (!ok) {
        s->bad_values++;
        printf("\n  bad row: %s %s M=%s median %s gbps %s", r->f[C_SECTION], r->f[C_OP],
               r->f[C_M], r->f[C_MEDIAN], r->f[C_GBPS]);
    }
    kd_op op = kd_op_from_name(r->f[C_OP]);
    CU_ASSERT_FATAL(op != KD_OP_COUNT);
    s->llc = num(r, C_LLC);
    if (strcmp(r->f[C_SECTION], "headline") == 0) {
        s->headline_gemv += kd_op_is_gemv(op);
    } else if (strcmp(r->f[C_SECTION], "launch") == 0) {
        s->launch++;
    } else {
        CU_ASSERT_STRING_EQUAL(r->f[C_SECTION], "sweep");
        s->sweep++;
        s->sweep_ops[op]++;
        s->sweep_m1 += num(r, C_M) == 1;
        s->sweep_m8 += num(r, C_M) == 8;
        double ws = num(r, C_BYTES);
        s->min_ws = s->sweep == 1 || ws < s->min_ws ? ws : s->min_ws;
        s->max_ws = ws > s->max_ws ? ws : s->max_ws;
    }
}

/* Checks every row of a bench CSV; returns the row count (-1 if the header is wrong). */
static int check_csv(const char *path, csv_summary *s)
{
    memset(s, 0, sizeof *s);
    char *text = kd_test_read_file(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    char *nl = strchr(text, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
    *nl = '\0';
    CU_ASSERT_STRING_EQUAL(text, CSV_HEADER);
    if (strcmp(text, CSV_HEADER) != 0) {
        free(text);
        return -1;
    }
    for (char *line = nl + 1; *line;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        csv_row r;
        int ok = split(line, len, &r) == 0;
        CU_ASSERT(ok);
        if (ok) {
            check_row(&r, s);
            s->rows++;
        }
        line += len + (end != NULL);
    }
    free(text);
    return s->rows;
}

/* ---- the command ------------------------------------------------------------------------------ */

static void test_quick_csv_json(void)
{
    const char *exe = kd_test_kdispatch_exe();
    CU_ASSERT_PTR_NOT_NULL_FATAL(exe);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "'%s' bench --quick --csv test_bench.csv --json test_bench.json > test_bench.txt "
             "2> test_bench.err",
             exe);
    int rc = kd_test_system(cmd);
    char *out = kd_test_read_file("test_bench.txt", NULL), *err = kd_test_read_file("test_bench.err", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    printf("\n%s%s", out, err);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "host memory read bandwidth:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "sweep: GB/s against working set"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "batched GEMV speed-up"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "paired with the host read bandwidth"));
    CU_ASSERT_PTR_NULL(strstr(err, "\r[")); /* no progress bar when stderr is a file */
    free(out);
    free(err);

    csv_summary s;
    int rows = check_csv("test_bench.csv", &s);
    printf("\n  CSV: %d rows (%d headline GEMV, %d launch, %d sweep; working sets %.0f..%.0f "
           "bytes, LLC %.0f)", rows, s.headline_gemv, s.launch, s.sweep, s.min_ws, s.max_ws, s.llc);
    CU_ASSERT(rows > 0);
    CU_ASSERT_EQUAL(s.bad_values, 0);
    CU_ASSERT(s.headline_gemv >= 8); /* Q4_K and Q6_K at M = 1, 2, 4, 8 per device */
    CU_ASSERT(s.launch >= 1);
    for (int op = 0; op < KD_OP_COUNT; op++)
        CU_ASSERT(s.sweep_ops[op] > 0);
    CU_ASSERT(s.sweep_m1 > 0 && s.sweep_m8 > 0);
    /* the sweep crosses the caches: from about 64 KiB past the LLC (--quick: to 2 x LLC,
     * capped at 256 MiB) */
    CU_ASSERT(s.min_ws <= 256 << 10);
    CU_ASSERT(s.max_ws >= fmin(2 * s.llc, 256 << 20) * 0.9);

    snprintf(cmd, sizeof cmd,
             "python3 -c \"import json, csv; d=json.load(open('test_bench.json')); "
             "rows=list(csv.DictReader(open('test_bench.csv'))); "
             "assert {'command','version','host','settings','targets','batched_speedup','rows',"
             "'failed'} <= set(d) and d['command']=='bench' and d['failed']==0; "
             "h=d['host']; assert h['read_bw_gbps']>0 and h['cpus']>=1 and "
             "h['llc_bytes']>=h['l2_bytes']>0; s=d['settings']; assert s['quick'] is True and "
             "s['m']==[1,8] and s['sweep_bytes']==sorted(s['sweep_bytes']); "
             "assert any(t['backend']=='cpu' and t['label']=='cpu' for t in d['targets']); "
             "keys={'section','op','kernel','m','n','k','backend','device','bytes','repeats',"
             "'inner','weight_copies','median_s','min_s','max_s','p25_s','p75_s','gbps','frac_of_read_bw',"
             "'frac_of_device_bw','near_read_bw_gbps','frac_of_near_read_bw'}; "
             "assert all(t['device_bw_gbps']>0 for t in d['targets']); "
             "assert len(d['rows'])==len(rows)>0; "
             "assert all(keys==set(r) for r in d['rows']); "
             "assert all(r[k]>0 for r in d['rows'] for k in ('bytes','median_s','min_s','max_s',"
             "'gbps','frac_of_read_bw','frac_of_device_bw')); "
             "assert all(r['min_s']<=r['median_s']<=r['max_s'] for r in d['rows']); "
             "paired=lambda r: r['section']=='headline' and r['backend']=='cpu' and "
             "not r['op'].endswith('gemv'); "
             "assert any(paired(r) for r in d['rows']); "
             "assert all((r['near_read_bw_gbps']>0 and r['frac_of_near_read_bw']>0)==paired(r) "
             "for r in d['rows']); "
             "labels={t['label'] for t in d['targets']}; "
             "assert all(r['device'] in labels for r in d['rows']); "
             "sp=d['batched_speedup']; assert sp and all(x['speedup']>0 and x['m'] in (2,4,8) "
             "for x in sp)\"");
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);
}

/* A small sweep with a plot; every device label is cpu, cuda or opencl:<index>. */
static void test_plot_and_devices(void)
{
    const char *exe = kd_test_kdispatch_exe();
    CU_ASSERT_PTR_NOT_NULL_FATAL(exe);
    char cmd[4096];
    remove("test_bench_plot.png");
    snprintf(cmd, sizeof cmd,
             "'%s' bench --no-headline --all-devices --op residual_add,q6k_gemv --m 1,2 "
             "--max-size 512K --repeats 3 --csv test_bench_small.csv --plot test_bench_plot.png "
             "> test_bench_small.txt",
             exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);
    size_t n = 0;
    char *png = kd_test_read_file("test_bench_plot.png", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(png);
    CU_ASSERT(n > 1000 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
    free(png);
    csv_summary s;
    CU_ASSERT(check_csv("test_bench_small.csv", &s) > 0);
    CU_ASSERT_EQUAL(s.bad_values, 0);
    CU_ASSERT_EQUAL(s.headline_gemv + s.launch, 0);
    CU_ASSERT(s.sweep_ops[KD_OP_RESIDUAL_ADD] > 0 && s.sweep_ops[KD_OP_Q6K_GEMV] > 0);
    CU_ASSERT_EQUAL(s.sweep_ops[KD_OP_ROPE], 0);
    CU_ASSERT(s.max_ws <= 600 << 10);
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import csv, re; rows=list(csv.DictReader(open('test_bench_small.csv')));"
             " devs={r['device'] for r in rows}; print('  devices:', sorted(devs)); "
             "assert all(d in ('cpu','cuda') or re.fullmatch(r'opencl:[0-9]+', d) for d in devs); "
             "assert {int(r['m']) for r in rows}=={1,2}\"");
    CU_ASSERT_EQUAL(kd_test_system(cmd), 0);

    /* the plot script missing: a clear failure, exit 1 */
    snprintf(cmd, sizeof cmd,
             "KD_PLOT_SCRIPT=/nonexistent/plot.py '%s' bench --no-headline --op residual_add "
             "--backend cpu --m 1 --max-size 64K --repeats 1 --plot test_bench_never.png "
             ">/dev/null 2>test_bench_noplot.err",
             exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 1);
    char *err = kd_test_read_file("test_bench_noplot.err", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/plot.py not found"));
    free(err);
}

static void test_usage(void)
{
    const char *exe = kd_test_kdispatch_exe();
    CU_ASSERT_PTR_NOT_NULL_FATAL(exe);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' bench --bogus 2>/dev/null", exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 2);
    snprintf(cmd, sizeof cmd, "'%s' bench --repeats 0 2>/dev/null", exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 2);
    snprintf(cmd, sizeof cmd, "'%s' bench --max-size 12Q 2>/dev/null", exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 2);
    const char *want[] = {"--quick", "--all-devices", "--csv FILE", "--json FILE", "--plot",
                          "--repeats", "--m LIST", "--max-size", "--borrow-weights", "--cold-weights",
                          "Exit status"};
    kd_test_expect_help("bench", want, sizeof want / sizeof *want);
}

/* --n/--k: the headline GEMV is that one shape at the --m sizes (bench/vs-ggml.sh). */
static void test_gemv_shape(void)
{
    const char *exe = kd_test_kdispatch_exe();
    CU_ASSERT_PTR_NOT_NULL_FATAL(exe);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' bench --quick --backend cpu --op q6k_gemv --no-sweep --n 300 --k 512 "
             "--m 1,3 --no-progress --csv test_bench_shape.csv --json test_bench_shape.json "
             "> test_bench_shape.txt", exe);
    CU_ASSERT_EQUAL_FATAL(kd_test_system(cmd), 0);
    /* the speed-up of every batched M asked for, not only 2, 4 and 8 */
    char *out = kd_test_read_file("test_bench_shape.txt", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "batched GEMV speed-up"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "  M=3 "));
    free(out);
    CU_ASSERT_EQUAL(kd_test_system(
        "python3 -c \"import json; sp=json.load(open('test_bench_shape.json'))['batched_speedup']; "
        "assert sorted((x['device'],x['m']) for x in sp)==[('cpu',3),('cpu-exact',3)], sp\""), 0);
    CU_ASSERT_EQUAL(kd_test_system(
        "python3 -c \"import json; s=json.load(open('test_bench_shape.json'))['settings']; "
        "assert s['gemv_weights']=='copied' and s['transparent_huge_pages'] in "
        "('', 'always', 'madvise', 'never') and s['huge_page_advice'] is True, s\""), 0);
    CU_ASSERT_EQUAL(kd_test_system(
        "python3 -c \"import csv; r=[x for x in csv.DictReader(open('test_bench_shape.csv')) "
        "if x['section']=='headline' and x['device']=='cpu']; "
        "assert sorted((x['op'],x['n'],x['k'],x['m']) for x in r)=="
        "[('q6k_gemv','300','512','1'),('q6k_gemv','300','512','3')], r; "
        "assert any(x['device']=='cpu-exact' for x in csv.DictReader(open('test_bench_shape.csv')))\""),
        0);
    /* --default-path: the same rows for "cpu", none for the other GEMV path;
     * --borrow-weights: said in the header and the JSON */
    snprintf(cmd, sizeof cmd,
             "'%s' bench --quick --backend cpu --op q6k_gemv --no-sweep --n 300 --k 512 "
             "--m 1 --default-path --borrow-weights --no-progress --csv test_bench_path.csv "
             "--json test_bench_path.json > test_bench_path.txt", exe);
    CU_ASSERT_EQUAL_FATAL(kd_test_system(cmd), 0);
    CU_ASSERT_EQUAL(kd_test_system(
        "python3 -c \"import csv; d={x['device'] for x in csv.DictReader(open('test_bench_path.csv')) "
        "if x['section']=='headline'}; assert d=={'cpu'}, d\""), 0);
    CU_ASSERT_EQUAL(kd_test_system(
        "python3 -c \"import json; s=json.load(open('test_bench_path.json'))['settings']; "
        "assert s['gemv_weights']=='borrowed', s\""), 0);
    CU_ASSERT_EQUAL(kd_test_system("grep -q '^GEMV weights: borrowed.*; transparent huge pages: ' test_bench_path.txt"), 0);
    /* --cold-weights: copies of the weights adding up to 4 x LLC (9.4 MB of weights: 15
     * copies against 32 MiB); other ops and runs without it use one; it cannot be
     * combined with --borrow-weights */
    snprintf(cmd, sizeof cmd,
             "'%s' bench --quick --backend cpu --op q4k_gemv --no-sweep --n 4096 --k 4096 "
             "--m 1,2 --default-path --cold-weights --no-progress --json test_bench_cold.json "
             "> test_bench_cold.txt", exe);
    CU_ASSERT_EQUAL_FATAL(kd_test_system(cmd), 0);
    CU_ASSERT_EQUAL(kd_test_system("grep -q '^cold weights: ' test_bench_cold.txt"), 0);
    CU_ASSERT_EQUAL(kd_test_system(
        "python3 -c \"import json, math; d=json.load(open('test_bench_cold.json')); "
        "assert d['settings']['cold_weights'] is True; llc=d['host']['llc_bytes']; "
        "want=min(64, math.ceil(4*llc/(4096*16*144))); "
        "g=[r['weight_copies'] for r in d['rows'] if r['op']=='q4k_gemv']; "
        "o=[r['weight_copies'] for r in d['rows'] if r['op']!='q4k_gemv']; "
        "assert g==[want, want] and want>1 and all(c==1 for c in o), (want, g, o)\""), 0);
    CU_ASSERT_EQUAL(kd_test_system(
        "python3 -c \"import json; d=json.load(open('test_bench_path.json')); "
        "assert d['settings']['cold_weights'] is False and "
        "all(r['weight_copies']==1 for r in d['rows']), d['rows']\""), 0);
    snprintf(cmd, sizeof cmd, "'%s' bench --cold-weights --borrow-weights 2>/dev/null", exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 2);
    /* M = 1 alone: no speed-up section (it had an empty line per op before) */
    snprintf(cmd, sizeof cmd,
             "'%s' bench --quick --backend cpu --op q6k_gemv --no-sweep --n 300 --k 512 "
             "--m 1 --default-path --no-progress | grep -q 'speed-up'", exe);
    CU_ASSERT_NOT_EQUAL(kd_test_system(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' bench --k 100 2>/dev/null", exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 2);
    snprintf(cmd, sizeof cmd, "'%s' bench --n 0 2>/dev/null", exe);
    CU_ASSERT_EQUAL(kd_test_system(cmd), 2);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("bench", NULL, NULL);
    CU_add_test(s, "cache size strings", test_parse_cache_size);
    CU_add_test(s, "cache sizes from a sysfs tree", test_caches_from_sysfs);
    CU_add_test(s, "bench --quick: CSV and JSON", test_quick_csv_json);
    CU_add_test(s, "bench --plot, --all-devices, small sweep", test_plot_and_devices);
    CU_add_test(s, "bench usage", test_usage);
    CU_add_test(s, "bench --n/--k GEMV shape", test_gemv_shape);
    return kd_test_main();
}
