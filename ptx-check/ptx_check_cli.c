/*
 * `kdispatch ptx-check`: parses the PTX files given (or the PTX this build produced),
 * optionally the OpenCL backend's program binary, runs ptxas for the resource report
 * where it exists, checks the kernel pairs and prints the report.
 */
#include "ptx_check.h"

#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>

#if defined(KD_PTX_FROM_OPENCL)
#include "opencl/kd_opencl_internal.h"
#endif

#ifndef KD_PTX_BUILT_DIR
#define KD_PTX_BUILT_DIR ""
#endif

#define MAX_INPUTS 256

typedef struct cli {
    int json, strict, no_ptxas, from_opencl, list_pairs;
    double reg_factor;
    const char *arch;
    const char *ptxas;
    const char *files[MAX_INPUTS];
    int n_files;
    kd_ptx_pair_def pairs[MAX_INPUTS];
    char *pair_text[MAX_INPUTS];
    int n_pairs;
    /* loaded */
    kd_ptx_module *mods[MAX_INPUTS];
    kd_ptx_ptxas_result res[MAX_INPUTS];
    int n_mods;
    char (*errors)[KD_PTX_TEXT_MAX];
    char (*notes)[KD_PTX_TEXT_MAX];
    int n_errors, n_notes;
} cli;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: kdispatch ptx-check [options] [FILE.ptx ...]\n"
        "\n"
        "Checks that each batched kernel keeps the structure of its single-row twin\n"
        "(SPEC 6, contract ptx_parity). For each pair (single, batched):\n"
        "  rule 1 batch-dispatch  a value from %%ctaid.y/%%ctaid.z, or a loaded m_dim\n"
        "                         parameter bounding a loop over rows, reaches the address\n"
        "                         of a global load or store (data flow)\n"
        "  rule 2 shared-u64      no shared-memory access through a 64-bit address register\n"
        "  rule 3 shared-size     the same static and dynamic shared memory in both kernels\n"
        "Every definition of every pair member in every file is checked, in any order of the\n"
        "files; a function declared .extern in one file is taken from the file that\n"
        "defines it (-rdc builds: give the helpers' PTX too).\n"
        "\n"
        "  FILE.ptx ...       PTX to check; default: the PTX this build produced\n"
        "                     (%s/kdispatch_sm_*.ptx)\n"
        "  --pair S:B         check kernel S against batched kernel B (repeatable); replaces\n"
        "                     the six built-in pairs\n"
        "  --list-pairs       print the built-in pairs and exit\n"
        "  --json             print the report as JSON\n"
        "  --strict           ptxas warnings (spills, register jump) fail the pair\n"
        "  --reg-factor F     warn when the batched kernel uses more than F times the\n"
        "                     registers of the single one (default 1.5)\n"
        "  --arch SM          ptxas target for the resource report (default sm_90)\n"
        "  --ptxas PATH       ptxas to run (default: $KD_PTXAS, then PATH, then the CUDA\n"
        "                     toolkit found at build time)\n"
        "  --no-ptxas         no resource report\n"
        "  --from-opencl      also check the program binary of the OpenCL backend's device\n"
        "                     (NVIDIA's OpenCL gives PTX; other devices do not)\n"
        "  -h, --help         this help\n"
        "\n"
        "Prints a line per pair (PASS/FAIL, dispatch mechanism, shared bytes, violations\n"
        "with PTX line numbers) and \"N/M kernel pairs passed PTX parity\".\n"
        "Exit status: 0 every pair passed and at least one pair was compared; 1 a pair\n"
        "failed, no pairs were compared, or an input could not be read; 2 usage error.\n",
        KD_PTX_BUILT_DIR[0] ? KD_PTX_BUILT_DIR : "BUILD/ptx");
}

static int add_msg(char (**list)[KD_PTX_TEXT_MAX], int *n, const char *msg)
{
    void *nl = realloc(*list, (size_t)(*n + 1) * sizeof **list);
    if (!nl)
        return -1;
    *list = nl;
    snprintf((*list)[*n], KD_PTX_TEXT_MAX, "%s", msg);
    (*n)++;
    return 0;
}

static int cli_error(cli *c, const char *msg) { return add_msg(&c->errors, &c->n_errors, msg); }
static int cli_note(cli *c, const char *msg) { return add_msg(&c->notes, &c->n_notes, msg); }

static int parse_pair(cli *c, const char *arg, FILE *err)
{
    const char *colon = strchr(arg, ':');
    if (!colon || colon == arg || !colon[1] || strchr(colon + 1, ':')) {
        fprintf(err, "ptx-check: --pair wants SINGLE:BATCHED, got '%s'\n", arg);
        return -1;
    }
    if (c->n_pairs == MAX_INPUTS) {
        fprintf(err, "ptx-check: more than %d pairs\n", MAX_INPUTS);
        return -1;
    }
    char *s = malloc(strlen(arg) + 1);
    if (!s) {
        fprintf(err, "ptx-check: out of memory\n");
        return -1;
    }
    strcpy(s, arg);
    s[colon - arg] = '\0';
    c->pair_text[c->n_pairs] = s;
    c->pairs[c->n_pairs].label = s;
    c->pairs[c->n_pairs].single = s;
    c->pairs[c->n_pairs].batched = s + (colon - arg) + 1;
    c->n_pairs++;
    return 0;
}

static int parse_factor(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 1.0 && v <= 1000.0))
        return -1;
    *out = v;
    return 0;
}

/* Returns 0 to go on, 1 to stop with status 0 (help), 2 on a usage error. */
static int parse_args(cli *c, int argc, char **argv, FILE *out, FILE *err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(out);
            return 1;
        } else if (!strcmp(a, "--json")) {
            c->json = 1;
        } else if (!strcmp(a, "--strict")) {
            c->strict = 1;
        } else if (!strcmp(a, "--no-ptxas")) {
            c->no_ptxas = 1;
        } else if (!strcmp(a, "--from-opencl")) {
            c->from_opencl = 1;
        } else if (!strcmp(a, "--list-pairs")) {
            c->list_pairs = 1;
        } else if (!strcmp(a, "--pair") || !strcmp(a, "--reg-factor") || !strcmp(a, "--arch") ||
                   !strcmp(a, "--ptxas")) {
            if (!val) {
                fprintf(err, "ptx-check: %s needs a value\n", a);
                return 2;
            }
            i++;
            if (!strcmp(a, "--pair") && parse_pair(c, val, err) != 0)
                return 2;
            if (!strcmp(a, "--reg-factor") && parse_factor(val, &c->reg_factor) != 0) {
                fprintf(err, "ptx-check: --reg-factor wants a number from 1 to 1000, got '%s'\n",
                        val);
                return 2;
            }
            if (!strcmp(a, "--arch"))
                c->arch = val;
            if (!strcmp(a, "--ptxas"))
                c->ptxas = val;
        } else if (a[0] == '-' && a[1]) {
            fprintf(err, "ptx-check: unknown option '%s' (see --help)\n", a);
            return 2;
        } else {
            if (c->n_files == MAX_INPUTS) {
                fprintf(err, "ptx-check: more than %d files\n", MAX_INPUTS);
                return 2;
            }
            c->files[c->n_files++] = a;
        }
    }
    return 0;
}

static int add_module(cli *c, kd_ptx_module *m)
{
    if (c->n_mods == MAX_INPUTS) {
        kd_ptx_module_free(m);
        return cli_error(c, "too many PTX modules");
    }
    c->mods[c->n_mods++] = m;
    return 0;
}

static int load_file(cli *c, const char *path)
{
    kd_ptx_module *m = NULL;
    kd_ptx_error e;
    kd_status st = kd_ptx_parse_file_lazy(path, &m, &e); /* bodies read again on demand */
    if (st == KD_OK)
        return add_module(c, m);
    char msg[KD_PTX_TEXT_MAX];
    if (e.line > 0)
        snprintf(msg, sizeof msg, "%s:%d: %s", path, e.line, e.msg);
    else
        snprintf(msg, sizeof msg, "%s", e.msg);
    return cli_error(c, msg);
}

/* No file given: the PTX the build wrote (BUILD/ptx/kdispatch_sm_*.ptx). */
static int load_built(cli *c)
{
    char pattern[4096], msg[KD_PTX_TEXT_MAX];
    if (!KD_PTX_BUILT_DIR[0])
        return cli_note(c, "no PTX file given and this build has no PTX directory");
    snprintf(pattern, sizeof pattern, "%s/kdispatch_sm_*.ptx", KD_PTX_BUILT_DIR);
    glob_t g;
    int rc = glob(pattern, 0, NULL, &g);
    if (rc != 0) {
        if (rc != GLOB_NOMATCH)
            return cli_error(c, "cannot list the built PTX directory");
        snprintf(msg, sizeof msg,
                 "no PTX file given and no built PTX in %s (this build has no CUDA toolkit, "
                 "or it was not built yet)", KD_PTX_BUILT_DIR);
        return cli_note(c, msg);
    }
    int out = 0;
    for (size_t i = 0; i < g.gl_pathc && out == 0; i++)
        out = load_file(c, g.gl_pathv[i]);
    globfree(&g);
    return out;
}

#if defined(KD_PTX_FROM_OPENCL)
/* PTX text starts with a comment or a directive; PoCL and other devices give ELF or
 * their own binary formats. */
static int looks_like_ptx(const unsigned char *b, size_t len)
{
    size_t i = 0;
    while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
        i++;
    if (len - i >= 2 && b[i] == '/' && (b[i + 1] == '/' || b[i + 1] == '*'))
        return 1;
    return len - i >= 8 && memcmp(b + i, ".version", 8) == 0;
}

static int load_opencl(cli *c)
{
    char msg[KD_PTX_TEXT_MAX], dev[256] = "";
    kd_context_options o;
    memset(&o, 0, sizeof o);
    o.disable_cuda = 1;
    kd_context *ctx = NULL;
    kd_status st = kd_context_create(&o, &ctx);
    if (st != KD_OK) {
        snprintf(msg, sizeof msg, "--from-opencl: cannot create a context (%s)",
                 kd_status_name(st));
        return cli_error(c, msg);
    }
    int rc = 0;
    unsigned char *bin = NULL;
    size_t len = 0;
    if (!kd_backend_available(ctx, KD_BACKEND_OPENCL)) {
        snprintf(msg, sizeof msg, "--from-opencl: the OpenCL backend is not available: %s",
                 kd_backend_reason(ctx, KD_BACKEND_OPENCL));
        rc = cli_error(c, msg);
    } else if ((st = kd_opencl_program_binary(ctx, &bin, &len, dev, sizeof dev)) != KD_OK) {
        snprintf(msg, sizeof msg, "--from-opencl: cannot get the program binary: %s",
                 kd_last_error(ctx));
        rc = cli_error(c, msg);
    } else if (!looks_like_ptx(bin, len)) {
        snprintf(msg, sizeof msg,
                 "--from-opencl: the program binary of OpenCL device '%s' (%zu bytes) is not "
                 "PTX (only NVIDIA's OpenCL gives PTX; e.g. PoCL gives native code): "
                 "nothing to check", dev, len);
        rc = cli_error(c, msg);
    } else {
        char name[300];
        snprintf(name, sizeof name, "opencl:%s", dev);
        kd_ptx_module *m = NULL;
        kd_ptx_error e;
        if (kd_ptx_parse(name, (const char *)bin, len, &m, &e) == KD_OK) {
            rc = add_module(c, m);
        } else {
            snprintf(msg, sizeof msg, "%s:%d: %s", name, e.line, e.msg);
            rc = cli_error(c, msg);
        }
    }
    free(bin);
    kd_context_destroy(ctx);
    return rc;
}
#else
#ifndef KD_PTX_OPENCL_WHY
#define KD_PTX_OPENCL_WHY "this build has no OpenCL backend"
#endif
static int load_opencl(cli *c)
{
    return cli_error(c, "--from-opencl: " KD_PTX_OPENCL_WHY);
}
#endif

static int run_ptxas(cli *c)
{
    char path[4096], msg[KD_PTX_TEXT_MAX];
    if (c->no_ptxas || c->n_mods == 0)
        return 0;
    if (kd_ptx_ptxas_find(c->ptxas, path, sizeof path) != 0) {
        if (c->ptxas) {
            snprintf(msg, sizeof msg, "--ptxas %s: not an executable file", c->ptxas);
            return cli_error(c, msg);
        }
        return cli_note(c, "ptxas not found ($KD_PTXAS, PATH, CUDA toolkit): no resource "
                           "report");
    }
    const char *arch = c->arch ? c->arch : "sm_90";
    for (int i = 0; i < c->n_mods; i++) {
        kd_status st = kd_ptx_ptxas_run(path, arch, c->mods[i], &c->res[i]);
        if (st == KD_OK && c->res[i].ok)
            continue;
        snprintf(msg, sizeof msg, "ptxas -arch=%s on %s: %s", arch, c->mods[i]->name,
                 c->res[i].why);
        if ((c->strict ? cli_error(c, msg) : cli_note(c, msg)) != 0)
            return -1;
    }
    snprintf(msg, sizeof msg, "resource report: %.900s -arch=%s", path, arch);
    return cli_note(c, msg);
}

static void note_modules(cli *c)
{
    char msg[KD_PTX_TEXT_MAX];
    for (int i = 0; i < c->n_mods; i++) {
        const kd_ptx_module *m = c->mods[i];
        int kernels = 0;
        for (int j = 0; j < m->n_funcs; j++)
            kernels += m->funcs[j].is_entry && m->funcs[j].has_body;
        snprintf(msg, sizeof msg, "input %s: PTX %d.%d, target %s, %d-bit addresses, %d kernels",
                 m->name, m->version_major, m->version_minor, m->target ? m->target : "?",
                 m->address_size, kernels);
        cli_note(c, msg);
    }
}

static int report(cli *c, FILE *out, FILE *err)
{
    const kd_ptx_module *mods[MAX_INPUTS];
    const kd_ptx_ptxas_result *res[MAX_INPUTS];
    for (int i = 0; i < c->n_mods; i++) {
        mods[i] = c->mods[i];
        res[i] = &c->res[i];
    }
    const kd_ptx_pair_def *pairs = c->n_pairs ? c->pairs : kd_ptx_builtin_pairs;
    int n_pairs = c->n_pairs ? c->n_pairs : KD_PTX_BUILTIN_PAIRS;
    kd_ptx_check_options opt = {.reg_factor = c->reg_factor, .strict = c->strict};
    kd_ptx_report *r = NULL;
    kd_status st = kd_ptx_check_pairs(mods, res, c->n_mods, pairs, n_pairs, &opt, &r);
    if (st != KD_OK) {
        fprintf(err, "ptx-check: the check failed: %s\n",
                st == KD_ERR_NOMEM ? "out of memory" : "bad arguments");
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < c->n_notes && rc == 0; i++)
        rc = kd_ptx_report_add_note(r, "%s", c->notes[i]) != KD_OK;
    for (int i = 0; i < c->n_errors && rc == 0; i++)
        rc = kd_ptx_report_add_error(r, "%s", c->errors[i]) != KD_OK;
    if (rc == 0) {
        if (c->json)
            kd_ptx_report_print_json(r, out);
        else
            kd_ptx_report_print_text(r, out);
        rc = kd_ptx_report_ok(r) ? 0 : 1;
    }
    for (int i = 0; i < c->n_errors; i++)
        fprintf(err, "ptx-check: %s\n", c->errors[i]);
    kd_ptx_report_free(r);
    return rc;
}

static void cli_free(cli *c)
{
    for (int i = 0; i < c->n_mods; i++) {
        kd_ptx_module_free(c->mods[i]);
        kd_ptx_ptxas_result_free(&c->res[i]);
    }
    for (int i = 0; i < c->n_pairs; i++)
        free(c->pair_text[i]);
    free(c->errors);
    free(c->notes);
    free(c);
}

int kd_ptx_check_main(int argc, char **argv, FILE *out, FILE *err)
{
    if (!out)
        out = stdout;
    if (!err)
        err = stderr;
    cli *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(err, "ptx-check: out of memory\n");
        return 1;
    }
    c->reg_factor = 1.5;
    int rc = parse_args(c, argc, argv, out, err);
    if (rc != 0) {
        cli_free(c);
        return rc == 1 ? 0 : 2;
    }
    if (c->list_pairs) {
        for (int i = 0; i < KD_PTX_BUILTIN_PAIRS; i++)
            fprintf(out, "%s %s:%s\n", kd_ptx_builtin_pairs[i].label,
                    kd_ptx_builtin_pairs[i].single, kd_ptx_builtin_pairs[i].batched);
        cli_free(c);
        return 0;
    }
    int load = 0;
    for (int i = 0; i < c->n_files && load == 0; i++)
        load = load_file(c, c->files[i]);
    if (load == 0 && c->n_files == 0 && !c->from_opencl)
        load = load_built(c);
    if (load == 0 && c->from_opencl)
        load = load_opencl(c);
    note_modules(c);
    if (load == 0)
        load = run_ptxas(c);
    rc = load == 0 ? report(c, out, err) : 1;
    if (load != 0)
        fprintf(err, "ptx-check: out of memory\n");
    cli_free(c);
    return rc;
}

int kd_cmd_ptx_check(int argc, char **argv)
{
    return kd_ptx_check_main(argc, argv, stdout, stderr);
}
