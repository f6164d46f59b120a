/* kdispatch bench, the reports: the headline table, the sweep matrix, the batched
 * speed-ups, CSV, JSON and the plot (bench/plot.py run on the CSV). */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "bench_internal.h"
#include "kd_json.h"

#ifndef KD_BENCH_SOURCE_DIR
#define KD_BENCH_SOURCE_DIR "."
#endif

extern char **environ;

double bench_gbps(const bench_row *r) { return r->c.bytes / r->median_s / 1e9; }

double bench_frac(const bench_report *rep, const bench_row *r)
{
    return rep->host->read_bw > 0 ? r->c.bytes / r->median_s / rep->host->read_bw : 0;
}

double bench_device_frac(const bench_report *rep, const bench_row *r)
{
    double bw = rep->targets[r->c.target].device_bw;
    return bw > 0 ? r->c.bytes / r->median_s / bw : 0;
}

const char *bench_section_name(bench_section s)
{
    return s == BENCH_HEADLINE ? "headline" : s == BENCH_SWEEP ? "sweep" : "launch";
}

static const char *kernel_of(const bench_row *r) { return r->c.m == 1 ? "single" : "batched"; }

static const char *label_of(const bench_report *rep, const bench_row *r)
{
    return rep->targets[r->c.target].label;
}

/* "64K", "1.5M", "2G": short binary sizes for column headings. */
static void size_text(double bytes, char *buf, size_t cap)
{
    static const char *unit[] = {"", "K", "M", "G", "T"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, cap, bytes == floor(bytes) ? "%.0f%s" : "%.1f%s", bytes, unit[u]);
}

/* ---- text ------------------------------------------------------------------------------------ */

void bench_print_table_header(FILE *f)
{
    fprintf(f, "%-8s %-12s %-7s %4s %6s %6s  %-9s %9s %9s %9s %9s %8s %6s %6s\n", "section",
            "op", "kernel", "M", "N", "K", "device", "med_ms", "p25_ms", "p75_ms", "max_ms",
            "GB/s", "frac", "dfrac");
}

void bench_print_row(FILE *f, const bench_report *rep, const bench_row *r)
{
    fprintf(f, "%-8s %-12s %-7s %4lld %6lld %6lld  %-9s %9.4f %9.4f %9.4f %9.4f %8.2f %6.3f %6.3f\n",
            bench_section_name(r->c.section), kd_op_name(r->c.op), kernel_of(r), r->c.m,
            (long long)r->c.n, (long long)r->c.k, label_of(rep, r), r->median_s * 1e3,
            r->p25_s * 1e3, r->p75_s * 1e3, r->max_s * 1e3, bench_gbps(r), bench_frac(rep, r),
            bench_device_frac(rep, r));
}

void bench_print_near(FILE *f, const bench_report *rep)
{
    int header = 0;
    for (int i = 0; i < rep->nrows; i++) {
        const bench_row *r = &rep->rows[i];
        if (!r->ok || r->near_frac <= 0)
            continue;
        if (!header++)
            fprintf(f, "\npaired with the host read bandwidth (a pass after each sample): nfrac is "
                       "the median\nof each sample's GB/s over the pass after it; frac is over "
                       "the %.2f GB/s of the start\n%-12s %-7s %4s %-9s %8s %8s %6s %6s\n",
                    rep->host->read_bw / 1e9, "op", "kernel", "M", "device", "GB/s", "read", "frac",
                    "nfrac");
        fprintf(f, "%-12s %-7s %4lld %-9s %8.2f %8.2f %6.3f %6.3f\n", kd_op_name(r->c.op),
                kernel_of(r), r->c.m, label_of(rep, r), bench_gbps(r), r->near_bw / 1e9,
                bench_frac(rep, r), r->near_frac);
    }
}

/* The row of the sweep for (target, op, m) at sweep point si, or NULL. */
static const bench_row *sweep_row(const bench_report *rep, int t, kd_op op, long long m, int si)
{
    int seen = -1;
    for (int i = 0; i < rep->nrows; i++) {
        const bench_row *r = &rep->rows[i];
        if (r->c.section == BENCH_SWEEP && r->c.target == t && r->c.op == op && r->c.m == m &&
            ++seen == si)
            return r->ok ? r : NULL;
    }
    return NULL;
}

/* GB/s per op, M and device (rows) against the working set (columns). */
void bench_print_sweep(FILE *f, const bench_report *rep)
{
    if (rep->o->no_sweep)
        return;
    fprintf(f, "\nsweep: GB/s against working set (L2 %lld KiB, LLC %lld KiB; host read %.2f GB/s)\n",
            rep->host->caches.l2 >> 10, rep->host->caches.llc >> 10, rep->host->read_bw / 1e9);
    fprintf(f, "%-12s %3s %-9s", "op", "M", "device");
    for (int si = 0; si < rep->nsweep; si++) {
        char s[16];
        size_text((double)rep->sweep_sizes[si], s, sizeof s);
        fprintf(f, " %6s", s);
    }
    fputc('\n', f);
    for (int t = 0; t < rep->ntargets; t++)
        for (int op = 0; op < KD_OP_COUNT; op++)
            for (int mi = 0; mi < rep->o->nm && rep->o->use_op[op]; mi++) {
                fprintf(f, "%-12s %3lld %-9s", kd_op_name((kd_op)op), rep->o->m[mi],
                        rep->targets[t].label);
                for (int si = 0; si < rep->nsweep; si++) {
                    const bench_row *r = sweep_row(rep, t, (kd_op)op, rep->o->m[mi], si);
                    if (r)
                        fprintf(f, " %6.1f", bench_gbps(r));
                    else
                        fprintf(f, " %6s", "-");
                }
                fputc('\n', f);
            }
}

static const bench_row *headline_gemv(const bench_report *rep, int t, kd_op op, long long m)
{
    for (int i = 0; i < rep->nrows; i++) {
        const bench_row *r = &rep->rows[i];
        if (r->ok && r->c.section == BENCH_HEADLINE && r->c.target == t && r->c.op == op &&
            r->c.m == m)
            return r;
    }
    return NULL;
}

/* speed-up of one M-row launch over M single-row launches */
static double speedup(const bench_row *one, const bench_row *batch)
{
    return (double)batch->c.m * one->median_s / batch->median_s;
}

/* The headline GEMV rows of target t and op with M > 1, in the order they ran. */
static int is_batched_headline(const bench_row *r, int t, kd_op op)
{
    return r->ok && r->c.section == BENCH_HEADLINE && r->c.target == t && r->c.op == op &&
           r->c.m > 1;
}

/* One line per target and GEMV op that has M = 1 and at least one M > 1 (a run of M = 1
 * alone has no speed-up to show). */
void bench_print_speedups(FILE *f, const bench_report *rep)
{
    int header = 0;
    for (int t = 0; t < rep->ntargets; t++)
        for (int op = KD_OP_Q4K_GEMV; op <= KD_OP_Q6K_GEMV; op++) {
            const bench_row *one = headline_gemv(rep, t, (kd_op)op, 1);
            int batched = 0;
            for (int i = 0; one && i < rep->nrows && !batched; i++)
                batched = is_batched_headline(&rep->rows[i], t, (kd_op)op);
            if (!batched)
                continue;
            if (!header++)
                fprintf(f, "\nbatched GEMV speed-up (M x time(M=1) / time(M)):\n");
            fprintf(f, "  %-10s %-9s", kd_op_name((kd_op)op), rep->targets[t].label);
            for (int i = 0; i < rep->nrows; i++)
                if (is_batched_headline(&rep->rows[i], t, (kd_op)op))
                    fprintf(f, "  M=%lld %.2fx", rep->rows[i].c.m, speedup(one, &rep->rows[i]));
            fputc('\n', f);
        }
}

/* NULL with a message if path cannot be written. */
static FILE *open_for_writing(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "kdispatch bench: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

/* ---- CSV --------------------------------------------------------------------------------------- */

int bench_write_csv(const bench_report *rep, const char *path)
{
    FILE *f = open_for_writing(path);
    if (!f)
        return -1;
    fprintf(f, "section,op,kernel,m,n,k,backend,device,bytes,repeats,inner,median_s,min_s,max_s,"
               "p25_s,p75_s,gbps,frac_of_read_bw,read_bw_gbps,frac_of_device_bw,device_bw_gbps,"
               "l2_bytes,llc_bytes\n");
    for (int i = 0; i < rep->nrows; i++) {
        const bench_row *r = &rep->rows[i];
        if (!r->ok)
            continue;
        fprintf(f, "%s,%s,%s,%lld,%lld,%lld,%s,%s,%.0f,%d,%d,%.9e,%.9e,%.9e,%.9e,%.9e,%.6g,%.6g,"
                   "%.6g,%.6g,%.6g,%lld,%lld\n",
                bench_section_name(r->c.section), kd_op_name(r->c.op), kernel_of(r), r->c.m,
                (long long)r->c.n, (long long)r->c.k,
                kd_backend_name(rep->targets[r->c.target].backend), label_of(rep, r), r->c.bytes,
                r->repeats, r->inner, r->median_s, r->min_s, r->max_s, r->p25_s, r->p75_s,
                bench_gbps(r), bench_frac(rep, r), rep->host->read_bw / 1e9,
                bench_device_frac(rep, r), rep->targets[r->c.target].device_bw / 1e9,
                rep->host->caches.l2, rep->host->caches.llc);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "kdispatch bench: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* ---- JSON -------------------------------------------------------------------------------------- */

static void json_host(kd_json *w, const bench_report *rep)
{
    const bench_host *h = rep->host;
    kd_json_key(w, "host");
    kd_json_begin_object(w);
    kd_json_key_str(w, "cpu", h->cpu_model);
    kd_json_key_int(w, "cpus", h->cpus);
    kd_json_key_int(w, "cpus_online", h->cpus_online);
    kd_json_key_str(w, "cpus_bound", h->cpus_bound);
    kd_json_key_num(w, "read_bw_gbps", h->read_bw / 1e9, "%.4f");
    kd_json_key_int(w, "l1d_bytes", h->caches.l1d);
    kd_json_key_int(w, "l2_bytes", h->caches.l2);
    kd_json_key_int(w, "llc_bytes", h->caches.llc);
    kd_json_key_int(w, "llc_level", h->caches.llc_level);
    kd_json_key_bool(w, "caches_from_sysfs", h->caches.from_sysfs);
    kd_json_end_object(w);
    kd_json_newline(w);
}

static void json_ints(kd_json *w, const char *key, const long long *v, int n)
{
    kd_json_key(w, key);
    kd_json_begin_array(w);
    for (int i = 0; i < n; i++)
        kd_json_int(w, v[i]);
    kd_json_end_array(w);
}

static void json_settings(kd_json *w, const bench_report *rep)
{
    const bench_opts *o = rep->o;
    kd_json_key(w, "settings");
    kd_json_begin_object(w);
    kd_json_key_bool(w, "quick", o->quick);
    kd_json_key_int(w, "repeats", o->repeats);
    kd_json_key_num(w, "warmup_s", o->warmup_s, "%g");
    kd_json_key_num(w, "sample_s", o->sample_s, "%g");
    kd_json_key_str(w, "gemv_weights", o->borrow_weights ? "borrowed" : "copied");
    kd_json_key_bool(w, "cold_weights", o->cold_weights);
    kd_json_key_str(w, "transparent_huge_pages", rep->host->huge_pages);
    kd_json_key_bool(w, "huge_page_advice", rep->host->huge_advice);
    json_ints(w, "m", o->m, o->nm);
    json_ints(w, "sweep_bytes", rep->sweep_sizes, rep->nsweep);
    kd_json_end_object(w);
    kd_json_newline(w);
    kd_json_key(w, "targets");
    kd_json_begin_array(w);
    for (int t = 0; t < rep->ntargets; t++) {
        kd_json_begin_object(w);
        kd_json_key_str(w, "label", rep->targets[t].label);
        kd_json_key_str(w, "backend", kd_backend_name(rep->targets[t].backend));
        kd_json_key_str(w, "device", rep->targets[t].device);
        kd_json_key_num(w, "device_bw_gbps", rep->targets[t].device_bw / 1e9, "%.6g");
        kd_json_end_object(w);
    }
    kd_json_end_array(w);
    kd_json_newline(w);
}

static void json_row(kd_json *w, const bench_report *rep, const bench_row *r)
{
    kd_json_begin_object(w);
    kd_json_key_str(w, "section", bench_section_name(r->c.section));
    kd_json_key_str(w, "op", kd_op_name(r->c.op));
    kd_json_key_str(w, "kernel", kernel_of(r));
    kd_json_key_int(w, "m", r->c.m);
    kd_json_key_int(w, "n", (long long)r->c.n);
    kd_json_key_int(w, "k", (long long)r->c.k);
    kd_json_key_str(w, "backend", kd_backend_name(rep->targets[r->c.target].backend));
    kd_json_key_str(w, "device", label_of(rep, r));
    kd_json_key_num(w, "bytes", r->c.bytes, "%.0f");
    kd_json_key_int(w, "repeats", r->repeats);
    kd_json_key_int(w, "inner", r->inner);
    kd_json_key_int(w, "weight_copies", r->weight_copies);
    kd_json_key_num(w, "median_s", r->median_s, "%.9e");
    kd_json_key_num(w, "min_s", r->min_s, "%.9e");
    kd_json_key_num(w, "max_s", r->max_s, "%.9e");
    kd_json_key_num(w, "p25_s", r->p25_s, "%.9e");
    kd_json_key_num(w, "p75_s", r->p75_s, "%.9e");
    kd_json_key_num(w, "gbps", bench_gbps(r), "%.6g");
    kd_json_key_num(w, "frac_of_read_bw", bench_frac(rep, r), "%.6g");
    kd_json_key_num(w, "frac_of_device_bw", bench_device_frac(rep, r), "%.6g");
    kd_json_key_num(w, "near_read_bw_gbps", r->near_bw / 1e9, "%.6g");
    kd_json_key_num(w, "frac_of_near_read_bw", r->near_frac, "%.6g");
    kd_json_end_object(w);
}

static void json_speedups(kd_json *w, const bench_report *rep)
{
    kd_json_key(w, "batched_speedup");
    kd_json_begin_array(w);
    for (int t = 0; t < rep->ntargets; t++)
        for (int op = KD_OP_Q4K_GEMV; op <= KD_OP_Q6K_GEMV; op++) {
            const bench_row *one = headline_gemv(rep, t, (kd_op)op, 1);
            for (int i = 0; one && i < rep->nrows; i++) {
                const bench_row *b = &rep->rows[i];
                if (!is_batched_headline(b, t, (kd_op)op))
                    continue;
                kd_json_newline(w);
                kd_json_begin_object(w);
                kd_json_key_str(w, "op", kd_op_name((kd_op)op));
                kd_json_key_str(w, "device", rep->targets[t].label);
                kd_json_key_int(w, "m", b->c.m);
                kd_json_key_num(w, "speedup", speedup(one, b), "%.4f");
                kd_json_end_object(w);
            }
        }
    kd_json_end_array(w);
    kd_json_newline(w);
}

int bench_write_json(const bench_report *rep, const char *path)
{
    FILE *f = open_for_writing(path);
    if (!f)
        return -1;
    int failed = 0;
    kd_json w;
    kd_json_init(&w, f);
    kd_json_begin_object(&w);
    kd_json_key_str(&w, "command", "bench");
    kd_json_key_str(&w, "version", kd_version());
    kd_json_newline(&w);
    json_host(&w, rep);
    json_settings(&w, rep);
    json_speedups(&w, rep);
    kd_json_key(&w, "rows");
    kd_json_begin_array(&w);
    for (int i = 0; i < rep->nrows; i++) {
        if (!rep->rows[i].ok) {
            failed++;
            continue;
        }
        kd_json_newline(&w);
        json_row(&w, rep, &rep->rows[i]);
    }
    kd_json_newline(&w);
    kd_json_end_array(&w);
    kd_json_newline(&w);
    kd_json_key_int(&w, "failed", failed);
    kd_json_end_object(&w);
    int bad = kd_json_finish(&w);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "kdispatch bench: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* ---- plot ---------------------------------------------------------------------------------- */

/* bench/plot.py: $KD_PLOT_SCRIPT, else the source tree's copy (its path compiled in). */
static const char *plot_script(char *buf, size_t cap)
{
    const char *env = getenv("KD_PLOT_SCRIPT");
    if (env && *env)
        return env;
    snprintf(buf, cap, "%s/bench/plot.py", KD_BENCH_SOURCE_DIR);
    return buf;
}

int bench_run_plot(const bench_report *rep, const char *csv, const char *png)
{
    char buf[1024], title[512], date[32];
    struct stat st;
    const char *script = plot_script(buf, sizeof buf);
    if (stat(script, &st) != 0) {
        fprintf(stderr, "kdispatch bench: plot script %s not found (set KD_PLOT_SCRIPT to "
                "bench/plot.py's path)\n", script);
        return -1;
    }
    time_t now = time(NULL);
    struct tm tm;
    strftime(date, sizeof date, "%Y-%m-%d", gmtime_r(&now, &tm));
    snprintf(title, sizeof title, "kdispatch bench%s on %s (%d cpus), %s",
             rep->o->quick ? " --quick" : "", rep->host->cpu_model, rep->host->cpus, date);
    char *argv[] = {"python3", (char *)script, "--csv", (char *)csv, "--out", (char *)png,
                    "--title", title, NULL};
    pid_t pid;
    fflush(stdout); /* the script's messages come after ours */
    fflush(stderr);
    int rc = posix_spawnp(&pid, "python3", NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "kdispatch bench: cannot run python3 for the plot: %s\n", strerror(rc));
        return -1;
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "kdispatch bench: %s failed (matplotlib is installed by scripts/setup.sh)\n",
                script);
        return -1;
    }
    return 0;
}
