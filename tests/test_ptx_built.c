/* ctest-labels: cpu;ptx */
/* The PTX parity check on the PTX this build produced from cuda-kernels/ with nvcc
 * (BUILD/ptx/kdispatch_sm_*.ptx): the contract's FALSIFY-KERN-003
 * (test_validate_all_kernel_pairs_no_cuda_gh219) and mutation fixtures that the test makes
 * from that real PTX: a shared access rewritten through a 64-bit register, the %ctaid.y read
 * removed from each batched kernel, a shared array resized, truncated files and binary
 * junk. Each mutation must fail with the expected rule or error, and never crash.
 *
 * Without a CUDA toolkit there is no built PTX: the check then reports "no pairs
 * compared", and this test exits 77 (skipped) with that reason, never passed. */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kd_test_util.h"
#include "ptx_check.h"

#define BUILT_GLOB KD_BINARY_DIR "/ptx/kdispatch_sm_*.ptx"
#define MAX_BUILT 8

#if defined(KD_HAVE_CUDA)
static const int built_expected = 1;
#else
static const int built_expected = 0;
#endif

static char *built_path[MAX_BUILT];
static char *built_text[MAX_BUILT];
static int n_built;

/* ---- helpers ---------------------------------------------------------------------------- */

static int write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int rc = fwrite(p, 1, n, f) == n ? 0 : -1;
    return fclose(f) == 0 ? rc : -1;
}

static size_t line_offset(const char *text, int line)
{
    size_t off = 0;
    for (int l = 1; l < line && text[off]; off++)
        l += text[off] == '\n';
    return off;
}

/* A copy of text with line `line` (1-based) replaced by repl (no newline in repl). */
static char *replace_line(const char *text, int line, const char *repl)
{
    size_t s = line_offset(text, line), e = s + strcspn(text + s, "\n");
    size_t n = strlen(text), rl = strlen(repl);
    char *out = malloc(n - (e - s) + rl + 1);
    if (!out)
        return NULL;
    memcpy(out, text, s);
    memcpy(out + s, repl, rl);
    memcpy(out + s + rl, text + e, n - e + 1);
    return out;
}

/* Line `line` of text as a new string. */
static char *get_line(const char *text, int line)
{
    size_t s = line_offset(text, line), n = strcspn(text + s, "\n");
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, text + s, n);
        out[n] = '\0';
    }
    return out;
}

/* s with the first `from` replaced by `to` (NULL if absent). */
static char *replace_in(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at)
        return NULL;
    size_t a = (size_t)(at - s), fl = strlen(from), tl = strlen(to), n = strlen(s);
    char *out = malloc(n - fl + tl + 1);
    if (!out)
        return NULL;
    memcpy(out, s, a);
    memcpy(out + a, to, tl);
    memcpy(out + a + tl, at + fl, n - a - fl + 1);
    return out;
}

static kd_ptx_module *parse_or_report(const char *name, const char *text)
{
    kd_ptx_module *m = NULL;
    kd_ptx_error e;
    if (kd_ptx_parse(name, text, strlen(text), &m, &e) != KD_OK)
        fprintf(stderr, "%s:%d: %s\n", name, e.line, e.msg);
    return m;
}

static kd_ptx_report *check_builtin(const kd_ptx_module *m)
{
    const kd_ptx_module *mods[1] = {m};
    kd_ptx_report *r = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs(mods, NULL, 1, kd_ptx_builtin_pairs,
                                             KD_PTX_BUILTIN_PAIRS, NULL, &r), KD_OK);
    return r;
}

static int pair_of_kernel(const char *name)
{
    for (int i = 0; i < KD_PTX_BUILTIN_PAIRS; i++)
        if (!strcmp(kd_ptx_builtin_pairs[i].single, name) ||
            !strcmp(kd_ptx_builtin_pairs[i].batched, name))
            return i;
    return -1;
}

/* The mutated module fails exactly pair `bad` (with a violation of rule at line, in
 * kernel) and passes the other five. */
static void expect_only_pair_fails(const char *name, const char *text, int bad, int rule,
                                   const char *kernel, int line)
{
    kd_ptx_module *m = parse_or_report(name, text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    kd_ptx_report *r = check_builtin(m);
    CU_ASSERT_EQUAL(r->n_compared, KD_PTX_BUILTIN_PAIRS);
    CU_ASSERT_EQUAL(r->n_passed, KD_PTX_BUILTIN_PAIRS - 1);
    CU_ASSERT_FALSE(kd_ptx_report_ok(r));
    for (int i = 0; i < r->n_pairs; i++)
        CU_ASSERT_EQUAL(r->pairs[i].passed, i != bad);
    int found = 0;
    const kd_ptx_comparison *c = &r->pairs[bad].comparisons[0];
    for (int i = 0; i < c->n_violations; i++)
        found |= c->violations[i].rule == rule && c->violations[i].line == line &&
                 !strcmp(c->violations[i].kernel, kernel);
    CU_ASSERT_TRUE(found);
    if (!found) {
        fprintf(stderr, "%s: expected rule %d at line %d in %s; report:\n", name, rule, line,
                kernel);
        kd_ptx_report_print_text(r, stderr);
    }
    kd_ptx_report_free(r);
    kd_ptx_module_free(m);
}

/* ---- FALSIFY-KERN-003 ---------------------------------------------------------------------- */

static void check_no_ptx_is_no_pass(void)
{
    kd_ptx_report *r = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs(NULL, NULL, 0, kd_ptx_builtin_pairs,
                                             KD_PTX_BUILTIN_PAIRS, NULL, &r), KD_OK);
    CU_ASSERT_EQUAL(r->n_pairs, KD_PTX_BUILTIN_PAIRS);
    CU_ASSERT_EQUAL(r->n_compared, 0);
    CU_ASSERT_FALSE(kd_ptx_report_ok(r));
    kd_ptx_report_free(r);

    FILE *out = tmpfile(), *err = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    char *argv[] = {"ptx-check", "--no-ptxas", KD_BINARY_DIR "/ptx/absent_for_test.ptx"};
    CU_ASSERT_EQUAL(kd_ptx_check_main(3, argv, out, err), 1);
    long n = ftell(out);
    char *text = calloc((size_t)n + 1, 1);
    rewind(out);
    CU_ASSERT_EQUAL(fread(text, 1, (size_t)n, out), (size_t)n);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "0/6 kernel pairs passed PTX parity"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "no pairs compared"));
    free(text);
    fclose(out);
    fclose(err);
}

static void test_validate_all_kernel_pairs_no_cuda_gh219(void)
{
    check_no_ptx_is_no_pass();
    if (n_built == 0) {
        if (built_expected)
            fprintf(stderr, "KD_HAVE_CUDA is on but no PTX matches %s\n", BUILT_GLOB);
        CU_ASSERT_FALSE(built_expected);
        return;
    }
    kd_ptx_module *mods[MAX_BUILT] = {0};
    for (int i = 0; i < n_built; i++) {
        mods[i] = parse_or_report(built_path[i], built_text[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(mods[i]);
    }
    kd_ptx_report *r = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs((const kd_ptx_module *const *)mods, NULL, n_built,
                                             kd_ptx_builtin_pairs, KD_PTX_BUILTIN_PAIRS, NULL,
                                             &r), KD_OK);
    CU_ASSERT_EQUAL(r->n_pairs, 6);
    CU_ASSERT_EQUAL(r->n_compared, 6);
    CU_ASSERT_EQUAL(r->n_passed, 6);
    CU_ASSERT_TRUE(kd_ptx_report_ok(r));
    for (int i = 0; i < r->n_pairs; i++)
        CU_ASSERT_EQUAL(r->pairs[i].n_comparisons, n_built); /* every pair in every file */
    char summary[128];
    kd_ptx_report_summary(r, summary, sizeof summary);
    CU_ASSERT_STRING_EQUAL(summary, "6/6 kernel pairs passed PTX parity");
    printf("\n");
    kd_ptx_report_print_text(r, stdout);
    kd_ptx_report_free(r);
    for (int i = 0; i < n_built; i++)
        kd_ptx_module_free(mods[i]);

    /* the command on the same files, ptxas report included where ptxas exists */
    char *argv[2 + MAX_BUILT] = {"ptx-check", "--json"};
    for (int i = 0; i < n_built; i++)
        argv[2 + i] = built_path[i];
    FILE *out = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_EQUAL(kd_ptx_check_main(2 + n_built, argv, out, stderr), 0);
    long n = ftell(out);
    char *text = calloc((size_t)n + 1, 1);
    rewind(out);
    CU_ASSERT_EQUAL(fread(text, 1, (size_t)n, out), (size_t)n);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"summary\":\"6/6 kernel pairs passed PTX parity\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"ok\":true"));
    free(text);
    fclose(out);
}

/* ---- mutations of the real PTX ------------------------------------------------------------------ */

/* A register of the given width declared in f, as it would be written ("%rd1"). */
static int pick_reg(const kd_ptx_func *f, int bits, char *out, size_t cap)
{
    for (int i = 0; i < f->n_regs; i++) {
        const kd_ptx_reg_decl *d = &f->regs[i];
        if (d->bits != bits || d->vec != 1 || d->name[0] != '%')
            continue;
        if (d->count < 0)
            snprintf(out, cap, "%s", d->name);
        else if (d->count >= 2)
            snprintf(out, cap, "%s1", d->name);
        else
            continue;
        return 0;
    }
    return -1;
}

/* First instruction of f that accesses .shared through a register: its index, else -1. */
static int first_shared_reg_access(const kd_ptx_func *f, const char **base)
{
    for (int i = 0; i < f->n_insns; i++) {
        const kd_ptx_insn *in = &f->insns[i];
        if (!strstr(in->opcode, ".shared"))
            continue;
        for (int j = 0; j < in->n_ops; j++) {
            if (in->ops[j].kind == KD_PTX_OPND_ADDR && in->ops[j].base &&
                in->ops[j].base[0] == '%') {
                *base = in->ops[j].base;
                return i;
            }
        }
    }
    return -1;
}

static void test_mutation_shared_through_u64(void)
{
    for (int b = 0; b < n_built; b++) {
        kd_ptx_module *m = parse_or_report(built_path[b], built_text[b]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        char *mut = NULL, r64[64], r32[64];
        const kd_ptx_func *target = NULL;
        int line = 0;
        /* rewrite an existing shared access, if any kernel of the pairs has one */
        for (int i = 0; i < m->n_funcs && !mut; i++) {
            const kd_ptx_func *f = &m->funcs[i];
            const char *base;
            int k = pair_of_kernel(f->name) >= 0 ? first_shared_reg_access(f, &base) : -1;
            if (k < 0 || pick_reg(f, 64, r64, sizeof r64) != 0)
                continue;
            line = f->insns[k].line;
            char from[80], to[80], *old = get_line(built_text[b], line);
            snprintf(from, sizeof from, "[%s", base);
            snprintf(to, sizeof to, "[%s", r64);
            char *new_line = old ? replace_in(old, from, to) : NULL;
            if (new_line) {
                mut = replace_line(built_text[b], line, new_line);
                target = f;
                printf("\n  %s:%d: `%s` -> `%s`", built_path[b], line, old, new_line);
            }
            free(new_line);
            free(old);
        }
        /* else add one to the first batched kernel */
        if (!mut) {
            const kd_ptx_func *f = kd_ptx_find_func(m, kd_ptx_builtin_pairs[0].batched);
            CU_ASSERT_PTR_NOT_NULL_FATAL(f);
            CU_ASSERT_FATAL(f->n_insns > 0 && pick_reg(f, 64, r64, sizeof r64) == 0 &&
                            pick_reg(f, 32, r32, sizeof r32) == 0);
            line = f->insns[0].line;
            char *old = get_line(built_text[b], line), repl[512];
            snprintf(repl, sizeof repl, "\tst.shared.u32 \t[%s], %s; %s", r64, r32, old);
            mut = replace_line(built_text[b], line, repl);
            target = f;
            free(old);
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(mut);
        expect_only_pair_fails("mut_u64.ptx", mut, pair_of_kernel(target->name),
                               KD_PTX_RULE_SHARED_U64, target->name, line);
        free(mut);
        kd_ptx_module_free(m);
    }
}

static void test_mutation_ctaid_removed(void)
{
    for (int b = 0; b < n_built; b++) {
        kd_ptx_module *m = parse_or_report(built_path[b], built_text[b]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        for (int p = 0; p < KD_PTX_BUILTIN_PAIRS; p++) {
            const kd_ptx_func *f = kd_ptx_find_func(m, kd_ptx_builtin_pairs[p].batched);
            CU_ASSERT_PTR_NOT_NULL_FATAL(f);
            for (int i = 0; i < f->n_params; i++)
                CU_ASSERT_PTR_NULL(strstr(f->params[i].name, "m_dim"));
            /* every line of the kernel that reads %ctaid.y or %ctaid.z becomes a comment
             * (line numbers stay as they were) */
            char *mut = malloc(strlen(built_text[b]) + 1);
            CU_ASSERT_PTR_NOT_NULL_FATAL(mut);
            strcpy(mut, built_text[b]);
            int removed = 0;
            for (int line = f->line; line <= f->end_line; line++) {
                char *l = get_line(mut, line);
                if (l && (strstr(l, "%ctaid.y") || strstr(l, "%ctaid.z"))) {
                    char *nm = replace_line(mut, line, "\t// read of the batch index removed");
                    free(mut);
                    mut = nm;
                    removed++;
                }
                free(l);
                CU_ASSERT_PTR_NOT_NULL_FATAL(mut);
            }
            CU_ASSERT(removed > 0);
            expect_only_pair_fails("mut_ctaid.ptx", mut, p, KD_PTX_RULE_BATCH_DISPATCH, f->name,
                                   f->line);
            free(mut);
        }
        kd_ptx_module_free(m);
    }
}

/* The read of %ctaid.y/z stays, but its value no longer reaches any address (the
 * register takes %ctaid.x; the batch index goes to a dead register in a block on the same
 * line): rule 1 is data flow, so the pair fails. */
static void test_mutation_ctaid_dead(void)
{
    for (int b = 0; b < n_built; b++) {
        kd_ptx_module *m = parse_or_report(built_path[b], built_text[b]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        for (int p = 0; p < KD_PTX_BUILTIN_PAIRS; p++) {
            const kd_ptx_func *f = kd_ptx_find_func(m, kd_ptx_builtin_pairs[p].batched);
            CU_ASSERT_PTR_NOT_NULL_FATAL(f);
            char *mut = malloc(strlen(built_text[b]) + 1);
            CU_ASSERT_PTR_NOT_NULL_FATAL(mut);
            strcpy(mut, built_text[b]);
            int changed = 0;
            for (int line = f->line; line <= f->end_line; line++) {
                char *l = get_line(mut, line);
                char *at = l ? strstr(l, "%ctaid.") : NULL;
                if (at && (at[7] == 'y' || at[7] == 'z')) {
                    char repl[1024];
                    char dim = at[7];
                    at[7] = 'x';
                    snprintf(repl, sizeof repl,
                             "%s { .reg .b32 %%kd_dead; mov.u32 %%kd_dead, %%ctaid.%c; }", l, dim);
                    char *nm = replace_line(mut, line, repl);
                    free(mut);
                    mut = nm;
                    changed++;
                }
                free(l);
                CU_ASSERT_PTR_NOT_NULL_FATAL(mut);
            }
            CU_ASSERT(changed > 0);
            expect_only_pair_fails("mut_ctaid_dead.ptx", mut, p, KD_PTX_RULE_BATCH_DISPATCH,
                                   f->name, f->line);
            free(mut);
        }
        kd_ptx_module_free(m);
    }
}

static void test_mutation_shared_resized(void)
{
    for (int b = 0; b < n_built; b++) {
        kd_ptx_module *m = parse_or_report(built_path[b], built_text[b]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        char *mut = NULL;
        const kd_ptx_func *target = NULL;
        int line = 0;
        /* grow a batched kernel's own static shared array by one element */
        for (int p = 0; p < KD_PTX_BUILTIN_PAIRS && !mut; p++) {
            const kd_ptx_func *f = kd_ptx_find_func(m, kd_ptx_builtin_pairs[p].batched);
            for (int i = 0; f && i < f->n_shared && !mut; i++) {
                const kd_ptx_var *v = &f->shared[i];
                if (v->is_dynamic)
                    continue;
                char from[600], to[600], *old = get_line(built_text[b], v->line);
                snprintf(from, sizeof from, "%s[%llu]", v->name, (unsigned long long)v->count);
                snprintf(to, sizeof to, "%s[%llu]", v->name, (unsigned long long)v->count + 1);
                char *nl = old ? replace_in(old, from, to) : NULL;
                if (nl) {
                    mut = replace_line(built_text[b], v->line, nl);
                    target = f;
                    line = v->line;
                    printf("\n  %s:%d: `%s` -> `%s`", built_path[b], line, old, nl);
                }
                free(nl);
                free(old);
            }
        }
        /* else declare one more array in the first batched kernel */
        if (!mut) {
            target = kd_ptx_find_func(m, kd_ptx_builtin_pairs[0].batched);
            CU_ASSERT_PTR_NOT_NULL_FATAL(target);
            CU_ASSERT_FATAL(target->n_regs > 0);
            line = target->regs[0].line;
            char *old = get_line(built_text[b], line), repl[512];
            snprintf(repl, sizeof repl, "\t.shared .align 4 .b8 kd_test_extra[16]; %s", old);
            mut = replace_line(built_text[b], line, repl);
            free(old);
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(mut);
        expect_only_pair_fails("mut_resized.ptx", mut, pair_of_kernel(target->name),
                               KD_PTX_RULE_SHARED_SIZE, target->name,
                               target->n_shared ? target->shared[0].line : line);
        free(mut);
        kd_ptx_module_free(m);
    }
}

/* Runs the command on one file; returns its exit status, output in *text. */
static int run_on_file(const char *path, char **text)
{
    FILE *out = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    char *argv[] = {"ptx-check", "--no-ptxas", (char *)path};
    FILE *err = fopen("/dev/null", "w");
    int rc = kd_ptx_check_main(3, argv, out, err);
    if (err)
        fclose(err);
    long n = ftell(out);
    *text = calloc((size_t)n + 1, 1);
    rewind(out);
    CU_ASSERT_EQUAL(fread(*text, 1, (size_t)n, out), (size_t)n);
    fclose(out);
    return rc;
}

static void test_mutation_truncated(void)
{
    for (int b = 0; b < n_built; b++) {
        const char *text = built_text[b];
        size_t len = strlen(text);
        kd_ptx_module *m = parse_or_report(built_path[b], text);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        const kd_ptx_func *last = kd_ptx_find_func(m, kd_ptx_builtin_pairs[5].batched);
        CU_ASSERT_PTR_NOT_NULL_FATAL(last);
        /* cut inside a kernel body, at the start of a line: an error with a line number */
        int mid_line = (last->line + last->end_line) / 2;
        size_t mid = line_offset(text, mid_line);
        kd_ptx_module *t = NULL;
        kd_ptx_error e;
        CU_ASSERT_EQUAL(kd_ptx_parse("cut.ptx", text, mid, &t, &e), KD_ERR_FORMAT);
        CU_ASSERT_PTR_NULL(t);
        CU_ASSERT_EQUAL(e.line, mid_line);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "unexpected end of file in the body of"));
        /* cut anywhere: refused, or parsed but then not all six pairs pass */
        for (int k = 1; k < 64; k++) {
            size_t cut = len * (size_t)k / 64;
            if (kd_ptx_parse("cut.ptx", text, cut, &t, &e) == KD_OK) {
                kd_ptx_report *r = check_builtin(t);
                CU_ASSERT_FALSE(kd_ptx_report_ok(r));
                kd_ptx_report_free(r);
                kd_ptx_module_free(t);
            } else {
                CU_ASSERT(e.line > 0 || cut == 0);
            }
        }
        /* the command on a truncated file fails and says where */
        CU_ASSERT_EQUAL_FATAL(write_bytes("ptx_built_truncated.ptx", text, mid), 0);
        char *out;
        CU_ASSERT_EQUAL(run_on_file("ptx_built_truncated.ptx", &out), 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "error: ptx_built_truncated.ptx:"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "no pairs compared"));
        free(out);
        kd_ptx_module_free(m);
    }
}

static void test_mutation_binary_junk(void)
{
    kd_rng rng;
    kd_rng_seed(&rng, 219);
    for (int b = 0; b < n_built; b++) {
        const char *text = built_text[b];
        size_t len = strlen(text);
        kd_ptx_module *m = parse_or_report(built_path[b], text);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        const kd_ptx_func *f = kd_ptx_find_func(m, kd_ptx_builtin_pairs[0].batched);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_FATAL(f->n_insns > 0);
        char *junk = malloc(len + 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(junk);
        kd_ptx_module *t = NULL;
        kd_ptx_error e;
        /* high bytes over the start of an instruction line */
        int line = f->insns[0].line;
        memcpy(junk, text, len + 1);
        size_t at = line_offset(junk, line);
        for (size_t i = 0; i < 32 && at + i < len; i++)
            junk[at + i] = (char)(0x80 | (kd_rng_next(&rng) & 0x7f));
        CU_ASSERT_EQUAL(kd_ptx_parse("junk.ptx", junk, len, &t, &e), KD_ERR_FORMAT);
        CU_ASSERT_EQUAL(e.line, line);
        /* random bytes (with a NUL) in the middle of the file */
        memcpy(junk, text, len + 1);
        for (size_t i = 0; i < 64; i++)
            junk[len / 2 + i] = (char)kd_rng_next(&rng);
        junk[len / 2 + 7] = '\0';
        CU_ASSERT_EQUAL(kd_ptx_parse("junk.ptx", junk, len, &t, &e), KD_ERR_FORMAT);
        CU_ASSERT(e.line > 0);
        /* a whole file of random bytes, and one that looks like an ELF binary */
        for (size_t i = 0; i < 4096 && i < len; i++)
            junk[i] = (char)kd_rng_next(&rng);
        CU_ASSERT_EQUAL(kd_ptx_parse("junk.ptx", junk, len < 4096 ? len : 4096, &t, &e),
                        KD_ERR_FORMAT);
        memcpy(junk, "\x7f" "ELF\x02\x01\x01", 7);
        CU_ASSERT_EQUAL(kd_ptx_parse("elf.bin", junk, 4096, &t, &e), KD_ERR_FORMAT);
        CU_ASSERT_EQUAL_FATAL(write_bytes("ptx_built_junk.ptx", junk, 4096), 0);
        char *out;
        CU_ASSERT_EQUAL(run_on_file("ptx_built_junk.ptx", &out), 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "error: ptx_built_junk.ptx:"));
        free(out);
        free(junk);
        kd_ptx_module_free(m);
    }
}

static void find_built_ptx(void)
{
    glob_t g;
    if (glob(BUILT_GLOB, 0, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc && n_built < MAX_BUILT; i++) {
        char *text = kd_test_read_file(g.gl_pathv[i], NULL);
        if (!text)
            continue;
        built_text[n_built] = text;
        built_path[n_built] = malloc(strlen(g.gl_pathv[i]) + 1);
        if (built_path[n_built])
            strcpy(built_path[n_built], g.gl_pathv[i]);
        n_built += built_path[n_built] != NULL;
    }
    globfree(&g);
}

int main(void)
{
    find_built_ptx();
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("ptx_built", NULL, NULL);
    CU_add_test(s, "test_validate_all_kernel_pairs_no_cuda_gh219 (FALSIFY-KERN-003)",
                test_validate_all_kernel_pairs_no_cuda_gh219);
    if (n_built > 0) {
        CU_add_test(s, "mutation: shared access through a 64-bit register",
                    test_mutation_shared_through_u64);
        CU_add_test(s, "mutation: %ctaid.y read removed from each batched kernel",
                    test_mutation_ctaid_removed);
        CU_add_test(s, "mutation: %ctaid.y read kept but dead in each batched kernel",
                    test_mutation_ctaid_dead);
        CU_add_test(s, "mutation: shared array resized", test_mutation_shared_resized);
        CU_add_test(s, "mutation: truncated files", test_mutation_truncated);
        CU_add_test(s, "mutation: binary junk", test_mutation_binary_junk);
    }
    int rc = kd_test_main();
    for (int i = 0; i < n_built; i++) {
        free(built_path[i]);
        free(built_text[i]);
    }
    if (rc == 0 && n_built == 0)
        return kd_test_skip("no pairs compared: no built PTX (" BUILT_GLOB "); this build has "
                            "no CUDA toolkit, so the real kernels' PTX parity is not checked");
    return rc;
}
