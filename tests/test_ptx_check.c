/* ctest-labels: cpu;ptx */
/* The PTX parser and parity checker on small handwritten PTX (tests/data/ptx/ and
 * strings below): what the parser sees, the refusals of malformed input with their line
 * numbers, shared-address provenance, each rule firing on a mutated fixture, the ptxas
 * report, the report formats and the command's exit status. Runs without a GPU or CUDA;
 * the checks on the PTX the build produced are in test_ptx_built.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kd_test_util.h"
#include "ptx_check.h"
#include "ptx_flow.h"

#define DATA_DIR KD_SOURCE_DIR "/tests/data/ptx/"

/* ---- helpers --------------------------------------------------------------------------- */

static kd_ptx_module *parse_str(const char *text)
{
    kd_ptx_module *m = NULL;
    kd_ptx_error e;
    kd_status st = kd_ptx_parse("inline.ptx", text, strlen(text), &m, &e);
    if (st != KD_OK)
        fprintf(stderr, "unexpected parse error at line %d: %s\n", e.line, e.msg);
    return m;
}

static kd_ptx_module *parse_fixture(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, DATA_DIR "%s", name);
    kd_ptx_module *m = NULL;
    kd_ptx_error e;
    if (kd_ptx_parse_file(path, &m, &e) != KD_OK)
        fprintf(stderr, "%s:%d: %s\n", path, e.line, e.msg);
    return m;
}

/* A copy of text with the first occurrence of from replaced by to (NULL if absent). */
static char *replace_once(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    if (!at)
        return NULL;
    size_t a = (size_t)(at - text), fl = strlen(from), tl = strlen(to), n = strlen(text);
    char *out = malloc(n - fl + tl + 1);
    if (!out)
        return NULL;
    memcpy(out, text, a);
    memcpy(out + a, to, tl);
    memcpy(out + a + tl, at + fl, n - a - fl + 1);
    return out;
}

/* The 1-based line of the first occurrence of needle in text, 0 if absent. */
static int line_of(const char *text, const char *needle)
{
    const char *at = strstr(text, needle);
    if (!at)
        return 0;
    int line = 1;
    for (const char *p = text; p < at; p++)
        line += *p == '\n';
    return line;
}

static const kd_ptx_insn *insn_at_line(const kd_ptx_func *f, int line)
{
    for (int i = 0; f && i < f->n_insns; i++)
        if (f->insns[i].line == line)
            return &f->insns[i];
    return NULL;
}

static kd_ptx_report *check_one(const kd_ptx_module *m, const char *single, const char *batched,
                                const kd_ptx_check_options *opt)
{
    kd_ptx_pair_def pair = {"pair", single, batched};
    const kd_ptx_module *mods[1] = {m};
    kd_ptx_report *r = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs(mods, NULL, 1, &pair, 1, opt, &r), KD_OK);
    return r;
}

/* Runs the command with output captured; returns its exit status and the text. */
static int run_cmd(char **argv, int argc, char **out_text, char **err_text)
{
    FILE *out = tmpfile(), *err = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    int rc = kd_ptx_check_main(argc, argv, out, err);
    FILE *fs[2] = {out, err};
    char **texts[2] = {out_text, err_text};
    for (int i = 0; i < 2; i++) {
        long n = ftell(fs[i]);
        char *buf = malloc((size_t)(n > 0 ? n : 0) + 1);
        rewind(fs[i]);
        size_t got = buf && n > 0 ? fread(buf, 1, (size_t)n, fs[i]) : 0;
        if (buf)
            buf[got] = '\0';
        *texts[i] = buf;
        fclose(fs[i]);
    }
    return rc;
}

static int count_rule(const kd_ptx_comparison *c, int rule)
{
    int n = 0;
    for (int i = 0; i < c->n_violations; i++)
        n += c->violations[i].rule == rule;
    return n;
}

/* ---- parser ------------------------------------------------------------------------------ */

static void test_parse_pair_fixture(void)
{
    size_t len;
    char *text = kd_test_read_file(DATA_DIR "pair_ok.ptx", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    kd_ptx_module *m = parse_fixture("pair_ok.ptx");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->version_major, 8);
    CU_ASSERT_EQUAL(m->version_minor, 0);
    CU_ASSERT_STRING_EQUAL(m->target, "sm_80");
    CU_ASSERT_EQUAL(m->address_size, 64);
    CU_ASSERT_EQUAL(m->n_funcs, 2);
    CU_ASSERT_EQUAL(m->n_shared, 1);
    const kd_ptx_var *table = kd_ptx_find_module_shared(m, "kd_demo_table");
    CU_ASSERT_PTR_NOT_NULL_FATAL(table);
    CU_ASSERT_EQUAL(table->bytes, 256);
    CU_ASSERT_EQUAL(table->align, 4);
    CU_ASSERT_EQUAL(table->line, line_of(text, ".shared .align 4 .b8 kd_demo_table"));

    const kd_ptx_func *f = kd_ptx_find_func(m, "kd_demo");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_TRUE(f->is_entry);
    CU_ASSERT_TRUE(f->has_body);
    CU_ASSERT_EQUAL(f->n_params, 3);
    CU_ASSERT_STRING_EQUAL(f->params[2].name, "kd_demo_param_2");
    CU_ASSERT_STRING_EQUAL(f->params[2].type, ".u32");
    CU_ASSERT_EQUAL(f->n_regs, 4);
    const kd_ptx_reg_decl *rd = kd_ptx_find_reg(f, "%rd7");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rd);
    CU_ASSERT_EQUAL(rd->bits, 64);
    CU_ASSERT_EQUAL(rd->count, 8);
    CU_ASSERT_PTR_NULL(kd_ptx_find_reg(f, "%rd8"));  /* %rd<8> is %rd0..%rd7 */
    CU_ASSERT_PTR_NULL(kd_ptx_find_reg(f, "%rd07"));
    CU_ASSERT_EQUAL(kd_ptx_find_reg(f, "%r11")->bits, 32);
    CU_ASSERT_EQUAL(kd_ptx_find_reg(f, "%p2")->bits, 1);
    CU_ASSERT_EQUAL(f->n_shared, 1);
    CU_ASSERT_EQUAL(f->shared[0].bytes, 128);
    CU_ASSERT_EQUAL(f->shared[0].align, 16);
    CU_ASSERT_EQUAL(f->n_labels, 1);
    CU_ASSERT_STRING_EQUAL(f->labels[0].name, "$L__BB0_2");

    /* st.shared.f32 [%r7+-4], %f1: an address with a negative offset */
    const kd_ptx_insn *st = insn_at_line(f, line_of(text, "st.shared.f32 \t[%r7+-4]"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_STRING_EQUAL(st->opcode, "st.shared.f32");
    CU_ASSERT_EQUAL_FATAL(st->n_ops, 2);
    CU_ASSERT_EQUAL(st->ops[0].kind, KD_PTX_OPND_ADDR);
    CU_ASSERT_STRING_EQUAL(st->ops[0].base, "%r7");
    CU_ASSERT_EQUAL(st->ops[0].offset, -4);
    CU_ASSERT_STRING_EQUAL(st->ops[0].text, "[%r7+-4]");
    CU_ASSERT_EQUAL(st->ops[1].kind, KD_PTX_OPND_REG);

    /* ld.shared.v2.f32 {%f3, %f2}, [kd_demo_buf+8]: a vector and a symbol address */
    const kd_ptx_insn *ld = insn_at_line(f, line_of(text, "ld.shared.v2.f32"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ld);
    CU_ASSERT_EQUAL(ld->ops[0].kind, KD_PTX_OPND_VEC);
    CU_ASSERT_EQUAL_FATAL(ld->ops[0].n_items, 2);
    CU_ASSERT_STRING_EQUAL(ld->ops[0].items[1], "%f2");
    CU_ASSERT_EQUAL(ld->ops[1].kind, KD_PTX_OPND_ADDR);
    CU_ASSERT_STRING_EQUAL(ld->ops[1].base, "kd_demo_buf");
    CU_ASSERT_EQUAL(ld->ops[1].offset, 8);

    /* @!%p1 st.global.f32: a negated guard */
    const kd_ptx_insn *g = insn_at_line(f, line_of(text, "@!%p1 st.global.f32"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_STRING_EQUAL(g->guard, "%p1");
    CU_ASSERT_TRUE(g->guard_negated);
    CU_ASSERT_STRING_EQUAL(g->opcode, "st.global.f32");

    char line[256];
    CU_ASSERT_EQUAL(kd_ptx_line_text(m, g->line, line, sizeof line), 0);
    CU_ASSERT_STRING_EQUAL(line, "@!%p1 st.global.f32 \t[%rd4], %f3;");
    CU_ASSERT_EQUAL(kd_ptx_line_text(m, m->n_lines + 1, line, sizeof line), -1);
    kd_ptx_module_free(m);
    free(text);
}

static void test_parse_features_fixture(void)
{
    size_t len;
    char *text = kd_test_read_file(DATA_DIR "parse_features.ptx", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    kd_ptx_module *m = parse_fixture("parse_features.ptx");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->version_major, 7);
    CU_ASSERT_EQUAL(m->version_minor, 8);
    CU_ASSERT_STRING_EQUAL(m->target, "sm_80");

    const kd_ptx_var *dyn = kd_ptx_find_module_shared(m, "dyn_smem");
    CU_ASSERT_PTR_NOT_NULL_FATAL(dyn);
    CU_ASSERT_TRUE(dyn->is_extern);
    CU_ASSERT_TRUE(dyn->is_dynamic);
    CU_ASSERT_EQUAL(dyn->bytes, 0);
    const kd_ptx_var *grid = kd_ptx_find_module_shared(m, "grid2d");
    CU_ASSERT_PTR_NOT_NULL_FATAL(grid);
    CU_ASSERT_EQUAL(grid->elem_bytes, 8); /* .v2 .f32 */
    CU_ASSERT_EQUAL(grid->count, 32);     /* [4][8] */
    CU_ASSERT_EQUAL(grid->bytes, 256);
    CU_ASSERT_EQUAL(grid->align, 8);
    CU_ASSERT_PTR_NULL(kd_ptx_find_module_shared(m, "lut")); /* .global, not .shared */

    const kd_ptx_func *h = kd_ptx_find_func(m, "helper_add");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_FALSE(h->is_entry);
    CU_ASSERT_EQUAL(h->n_rets, 1);
    CU_ASSERT_EQUAL(h->n_params, 2);

    const kd_ptx_func *k = kd_ptx_find_func(m, "features_kernel");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL_FATAL(k->n_params, 3);
    CU_ASSERT_STRING_EQUAL(k->params[1].name, "m_dim");
    CU_ASSERT_EQUAL(k->params[2].bytes, 16);
    CU_ASSERT_PTR_NOT_NULL(kd_ptx_find_reg(k, "%tmp"));
    CU_ASSERT_PTR_NOT_NULL(kd_ptx_find_reg(k, "temp_param_reg")); /* nested block */
    CU_ASSERT_EQUAL(kd_ptx_find_reg(k, "%rs1")->bits, 16);

    const kd_ptx_insn *setp = insn_at_line(k, line_of(text, "setp.lt.u32"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(setp);
    CU_ASSERT_STRING_EQUAL(setp->ops[0].base, "%p1");
    CU_ASSERT_STRING_EQUAL(setp->ops[0].text, "%p1|%p2");

    /* call.uni (retval0), helper_add, (param0, param1); spread over lines */
    const kd_ptx_insn *call = insn_at_line(k, line_of(text, "call.uni"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(call);
    CU_ASSERT_EQUAL_FATAL(call->n_ops, 3);
    CU_ASSERT_EQUAL(call->ops[0].kind, KD_PTX_OPND_LIST);
    CU_ASSERT_EQUAL(call->ops[1].kind, KD_PTX_OPND_SYM);
    CU_ASSERT_STRING_EQUAL(call->ops[1].base, "helper_add");
    CU_ASSERT_EQUAL(call->ops[2].kind, KD_PTX_OPND_LIST);
    CU_ASSERT_EQUAL(call->ops[2].n_items, 2);

    const kd_ptx_insn *neg = insn_at_line(k, line_of(text, "mov.b32 \t%tmp, -1"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(neg);
    CU_ASSERT_EQUAL(neg->ops[1].kind, KD_PTX_OPND_IMM);
    CU_ASSERT_EQUAL(neg->ops[1].offset, -1);
    const kd_ptx_insn *flt = insn_at_line(k, line_of(text, "0f3F800000"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(flt);
    CU_ASSERT_EQUAL(flt->ops[1].kind, KD_PTX_OPND_IMM);

    /* facts: ctaid.z read, 256 static bytes (grid2d only) plus dynamic shared */
    kd_ptx_kernel_facts facts;
    kd_ptx_violation *v = NULL;
    int nv = -1;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_analyze_kernel(m, k, &facts, &v, &nv), KD_OK);
    /* %ctaid.z only reaches a float value (through helper_add's return), and m_dim only
     * a forward branch: neither is a batch mechanism (rule 1 is data flow) */
    CU_ASSERT_STRING_EQUAL(facts.mechanism, "");
    CU_ASSERT_EQUAL(facts.mechanism_line, 0);
    CU_ASSERT_EQUAL(facts.static_shared_bytes, 256);
    CU_ASSERT_TRUE(facts.dynamic_shared);
    CU_ASSERT_EQUAL(facts.shared_accesses, 4);
    CU_ASSERT_EQUAL(nv, 0);
    free(v);
    kd_ptx_module_free(m);
    free(text);
}

static void test_parse_comments_and_lines(void)
{
    const char *text = ".version 8.0 // trailing comment\n"
                       "/* a block comment\n"
                       "   over three lines .entry fake() { } */\n"
                       ".target sm_90\n"
                       ".address_size 64\n"
                       ".visible .entry k(.param .u32 k_param_0) {\n"
                       "  .reg .b32 %r<3>; /* inline */ .reg .b64 %rd<2>;\n"
                       "  mov.u32 %r1, %ctaid.y; // comment with [brackets; and {braces\n"
                       "  ret;\n"
                       "}\n";
    kd_ptx_module *m = parse_str(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(m->n_funcs, 1);
    CU_ASSERT_STRING_EQUAL(m->target, "sm_90");
    const kd_ptx_func *f = kd_ptx_find_func(m, "k");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->line, 6);
    CU_ASSERT_EQUAL(f->end_line, 10);
    CU_ASSERT_EQUAL(f->n_regs, 2);
    CU_ASSERT_EQUAL_FATAL(f->n_insns, 2);
    CU_ASSERT_EQUAL(f->insns[0].line, 8);
    CU_ASSERT_STRING_EQUAL(f->insns[0].ops[1].base, "%ctaid.y");
    CU_ASSERT_TRUE(kd_ptx_is_special_reg("%ctaid.y"));
    CU_ASSERT_FALSE(kd_ptx_is_special_reg("%r1"));
    CU_ASSERT_EQUAL(f->insns[1].line, 9);
    kd_ptx_module_free(m);

    /* NUL bytes at the end, as in an OpenCL program binary, are not part of the text */
    size_t n = strlen(text);
    char *z = calloc(n + 4, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(z);
    memcpy(z, text, n);
    kd_ptx_error e;
    CU_ASSERT_EQUAL(kd_ptx_parse("z", z, n + 4, &m, &e), KD_OK);
    kd_ptx_module_free(m);
    free(z);
}

/* Malformed inputs: each refused with KD_ERR_FORMAT, at the expected line, saying why. */
static void test_parse_errors_have_lines(void)
{
#define HDR ".version 8.0\n.target sm_90\n.address_size 64\n"
#define K_OPEN ".visible .entry k()\n{\n.reg .b32 %r<4>;\n.reg .b64 %rd<4>;\n"
    static char long_name[6000];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[0] = '.';
    static const struct { const char *text; int line; const char *msg; } cases[] = {
        {"hello world", 1, "expected the .version directive first"},
        {"\n\n.target sm_90\n", 3, "expected the .version directive first"},
        {".version 8\n", 1, "malformed .version"},
        {".version 8.0\n.version 8.1\n", 2, "second .version"},
        {HDR ".address_size 48\n", 4, ".address_size must be 32 or 64"},
        {".version 8.0\n/* never closed\n\n", 2, "unterminated /* comment"},
        {HDR ".file 1 \"abc\n", 4, "unterminated string"},
        /* a lexer error inside a body (the fuzzer's hang: the parser looped on it) */
        {HDR ".entry k()\n{\n.pragma \"x;\nret;\n}\n", 6, "unterminated string"},
        {HDR K_OPEN "foo.bar %r1, %r2;\n}\n", 8, "unknown instruction 'foo.bar'"},
        {HDR K_OPEN "mov.u32 %r1, 1;\n", 9,
         "unexpected end of file in the body of k (opened at line 4)"},
        {HDR K_OPEN "mov.u32 %r1, 1\n}\n", 9, "unbalanced '}'"},
        {HDR K_OPEN "ld.shared.f32 %r1, [%r2;\n}\n", 8, "missing ']' before ';'"},
        {HDR K_OPEN "ld.shared.f32 %r1, %r2];\n}\n", 8, "unbalanced ']'"},
        {HDR K_OPEN "add.s32 %r1, , %r2;\n}\n", 8, "empty operand"},
        {HDR K_OPEN "ld.shared.f32 %r1, [];\n}\n", 8, "empty address"},
        {HDR K_OPEN ".reg .b32 %q<99999999999>;\n}\n", 8, "register count"},
        {HDR K_OPEN ".reg .q32 %q;\n}\n", 8, "unknown type or attribute '.q32'"},
        {HDR ".shared .b8 big[4294967296][4294967296];\n", 4, "array too large"},
        {HDR ".shared .align 3 .b8 x[4];\n", 4, ".align must be a power of two"},
        {HDR ".shared .align 4 x[4];\n", 4, "expected a type"},
        {HDR ".entry k() .maxntid 1 junk { ret; }\n", 4, "in the header of function k"},
        {HDR ".visible .entry k(.param .u32) { ret; }\n", 4, "expected a parameter name"},
        {HDR "mov.u32 %r1, 1;\n", 4, "at the top level"},
        {HDR K_OPEN "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\n",
         8, "nested deeper than"},
        {HDR "\x01\x02\x03", 4, "unexpected byte 0x01"},
        {HDR "\xff\xfe junk", 4, "unexpected byte 0xff"},
        {HDR "#include <x>\n", 4, "unexpected character '#'"},
        {"", 0, "empty input"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kd_ptx_module *m = (kd_ptx_module *)1;
        kd_ptx_error e;
        kd_status st = kd_ptx_parse("bad.ptx", cases[i].text, strlen(cases[i].text), &m, &e);
        CU_ASSERT_EQUAL(st, KD_ERR_FORMAT);
        CU_ASSERT_PTR_NULL(m);
        CU_ASSERT_EQUAL(e.line, cases[i].line);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, cases[i].msg));
        if (st != KD_ERR_FORMAT || e.line != cases[i].line || !strstr(e.msg, cases[i].msg))
            fprintf(stderr, "case %zu: status %d line %d '%s'\n", i, st, e.line, e.msg);
    }
    /* binary data with a NUL inside: refused, never read past the end */
    static const char bin[] = {'.', 'v', 'e', 'r', 0, 1, 2, '\n', 'x'};
    kd_ptx_module *m = NULL;
    kd_ptx_error e;
    CU_ASSERT_EQUAL(kd_ptx_parse("bin", bin, sizeof bin, &m, &e), KD_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "binary data"));
    CU_ASSERT_EQUAL(e.line, 1);
    /* a token longer than the limit */
    char *t = malloc(strlen(HDR) + sizeof long_name + 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    sprintf(t, "%s%s;\n", HDR, long_name);
    CU_ASSERT_EQUAL(kd_ptx_parse("long", t, strlen(t), &m, &e), KD_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "token longer than"));
    free(t);
    /* arguments */
    CU_ASSERT_EQUAL(kd_ptx_parse("x", NULL, 4, &m, &e), KD_ERR_NULL);
    CU_ASSERT_EQUAL(kd_ptx_parse("x", HDR, 10, NULL, &e), KD_ERR_NULL);
    CU_ASSERT_EQUAL(kd_ptx_parse_file("/nonexistent/x.ptx", &m, &e), KD_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "/nonexistent/x.ptx"));
#undef K_OPEN
#undef HDR
}

/* ---- provenance and rule 2 ------------------------------------------------------------------ */

static const char *prov_ptx =
    ".version 8.0\n.target sm_90\n.address_size 64\n"              /* 1-3 */
    ".shared .align 4 .b8 smem[64];\n"                             /* 4 */
    ".visible .entry k(.param .u64 k_param_0)\n{\n"                /* 5-6 */
    ".reg .b32 %r<12>;\n.reg .b64 %rd<8>;\n.reg .f32 %f<2>;\n"     /* 7-9 */
    "add.s32 %r5, %r6, 4;\n"                                       /* 10: use before def */
    "mov.u32 %r1, smem;\n"                                         /* 11 */
    "add.s32 %r2, %r1, %r3;\n"                                     /* 12 */
    "mov.b32 %r6, %r2;\n"                                          /* 13 */
    "mad.lo.s32 %r7, %r3, 4, %r2;\n"                               /* 14 */
    "ld.param.u64 %rd1, [k_param_0];\n"                            /* 15 */
    "cvta.to.shared.u64 %rd2, %rd1;\n"                             /* 16 */
    "cvta.shared.u64 %rd3, %rd2;\n"                                /* 17 */
    "cvt.u32.u64 %r8, %rd2;\n"                                     /* 18 */
    "cvta.to.global.u64 %rd4, %rd1;\n"                             /* 19 */
    "ld.shared.f32 %f1, [%r7+4];\n"                                /* 20: fine */
    "ld.shared.f32 %f1, [smem+8];\n"                               /* 21: fine */
    "ld.shared.f32 %f1, [%rd2];\n"                                 /* 22: rule 2 */
    "ld.f32 %f1, [%rd3];\n"                                        /* 23: fine (cvta.shared) */
    "st.shared.f32 [%rd5+4], %f1;\n"                               /* 24: rule 2, no origin */
    "atom.shared.add.u32 %r9, [%rd2+8], 1;\n"                      /* 25: rule 2 */
    "red.shared.add.u32 [%rd2], %r9;\n"                            /* 26: rule 2 */
    "cp.async.ca.shared.global [%r2], [%rd4], 16;\n"               /* 27: fine */
    "cp.async.ca.shared.global [%rd2], [%rd4], 16;\n"              /* 28: rule 2 */
    "st.shared.u32 [%zz], %r9;\n"                                  /* 29: undeclared */
    "ld.global.f32 %f1, [%rd4];\n"                                 /* 30: not shared */
    "ret;\n}\n";

static void test_provenance(void)
{
    kd_ptx_module *m = parse_str(prov_ptx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    const kd_ptx_func *f = kd_ptx_find_func(m, "k");
    kd_ptx_prov *p = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_prov_compute(m, f, &p), KD_OK);
    int origin;
    CU_ASSERT_EQUAL(kd_ptx_prov_of(p, "%r1", &origin), KD_PTX_PROV_SHARED);
    CU_ASSERT_EQUAL(origin, 11);
    CU_ASSERT_EQUAL(kd_ptx_prov_of(p, "%r2", &origin), KD_PTX_PROV_SHARED);
    CU_ASSERT_EQUAL(origin, 12);
    CU_ASSERT_EQUAL(kd_ptx_prov_of(p, "%r3", NULL), 0);
    CU_ASSERT_EQUAL(kd_ptx_prov_of(p, "%r6", NULL), KD_PTX_PROV_SHARED); /* mov */
    CU_ASSERT_EQUAL(kd_ptx_prov_of(p, "%r5", &origin), KD_PTX_PROV_SHARED); /* loop-carried */
    CU_ASSERT_EQUAL(origin, 10);
    CU_ASSERT_EQUAL(kd_ptx_prov_of(p, "%r7", NULL), KD_PTX_PROV_SHARED); /* mad */
    CU_ASSERT_EQUAL(kd_ptx_prov_of(p, "%rd1", NULL), 0);
    CU_ASSERT_EQUAL(kd_ptx_prov_of(p, "%rd2", &origin), KD_PTX_PROV_SHARED); /* cvta.to */
    CU_ASSERT_EQUAL(origin, 16);
    CU_ASSERT_EQUAL(kd_ptx_prov_of(p, "%rd3", NULL), KD_PTX_PROV_GENERIC_SHARED);
    CU_ASSERT_EQUAL(kd_ptx_prov_of(p, "%r8", NULL), KD_PTX_PROV_SHARED); /* cvt */
    CU_ASSERT_EQUAL(kd_ptx_prov_of(p, "%rd4", NULL), 0); /* cvta.to.global */
    CU_ASSERT_EQUAL(kd_ptx_prov_of(p, "%unknown", NULL), 0);
    kd_ptx_prov_free(p);
    kd_ptx_module_free(m);
}

/* A chain written backwards (each mov reads the register the next line defines) needs one
 * step per link: the worklist reaches the end of a long chain. */
static void test_provenance_long_backward_chain(void)
{
    enum { N = 20000 };
    size_t cap = 256 + (size_t)N * 40;
    char *t = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    size_t o = (size_t)snprintf(t, cap, ".version 8.0\n.target sm_90\n.address_size 64\n"
                                        ".shared .b8 s[4];\n.entry k()\n{\n.reg .b32 %%r<%d>;\n",
                                N + 1);
    for (int i = 0; i < N; i++)
        o += (size_t)snprintf(t + o, cap - o, "mov.b32 %%r%d, %%r%d;\n", i, i + 1);
    o += (size_t)snprintf(t + o, cap - o, "mov.u32 %%r%d, s;\nret;\n}\n", N);
    kd_ptx_module *m = parse_str(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    kd_ptx_prov *p = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_prov_compute(m, kd_ptx_find_func(m, "k"), &p), KD_OK);
    int origin = 0;
    CU_ASSERT_EQUAL(kd_ptx_prov_of(p, "%r0", &origin), KD_PTX_PROV_SHARED);
    CU_ASSERT_EQUAL(origin, 8);
    kd_ptx_prov_free(p);
    kd_ptx_module_free(m);
    free(t);
}

static void test_rule_shared_u64_lines(void)
{
    kd_ptx_module *m = parse_str(prov_ptx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    kd_ptx_kernel_facts facts;
    kd_ptx_violation *v = NULL;
    int nv = 0;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_analyze_kernel(m, kd_ptx_find_func(m, "k"), &facts, &v, &nv),
                          KD_OK);
    static const int expect[] = {22, 24, 25, 26, 28, 29};
    CU_ASSERT_EQUAL_FATAL(nv, (int)(sizeof expect / sizeof expect[0]));
    for (int i = 0; i < nv; i++) {
        CU_ASSERT_EQUAL(v[i].rule, KD_PTX_RULE_SHARED_U64);
        CU_ASSERT_EQUAL(v[i].line, expect[i]);
        CU_ASSERT_STRING_EQUAL(v[i].kernel, "k");
        CU_ASSERT_STRING_EQUAL(v[i].file, "inline.ptx");
    }
    CU_ASSERT_STRING_EQUAL(v[0].text, "ld.shared.f32 %f1, [%rd2];");
    CU_ASSERT_PTR_NOT_NULL(strstr(v[0].detail, "64-bit register %rd2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(v[0].detail, "from line 16"));
    CU_ASSERT_PTR_NOT_NULL(strstr(v[5].detail, "not declared"));
    /* shared accesses counted: lines 20-22 and 24-29 (23 generic into shared) */
    CU_ASSERT_EQUAL(facts.shared_accesses, 10);
    CU_ASSERT_EQUAL(facts.static_shared_bytes, 64);
    CU_ASSERT_STRING_EQUAL(facts.mechanism, ""); /* no ctaid.y/z, no m_dim */
    free(v);
    kd_ptx_module_free(m);
}

/* Other instructions that address shared memory, and the ::cta / ::cluster forms. */
static void test_rule_shared_u64_other_forms(void)
{
    const char *text =
        ".version 8.0\n.target sm_90\n.address_size 64\n"                           /* 1-3 */
        ".visible .entry k()\n{\n.reg .b32 %r<8>;\n.reg .b64 %rd<4>;\n"             /* 4-7 */
        "ld.shared::cta.u32 %r1, [%rd1];\n"                                          /* 8: bad */
        "ld.shared::cta.u32 %r1, [%r2];\n"                                           /* 9 */
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%r1, %r2, %r3, %r4}, [%rd2];\n" /* 10: bad */
        "mbarrier.init.shared.b64 [%r5], 1;\n"                                       /* 11 */
        "st.shared::cluster.u32 [%rd3+16], %r1;\n"                                   /* 12: bad */
        "ld.volatile.shared.u32 %r6, [%r5+4];\n"                                     /* 13 */
        "ret;\n}\n";
    kd_ptx_module *m = parse_str(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    kd_ptx_kernel_facts facts;
    kd_ptx_violation *v = NULL;
    int nv = 0;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_analyze_kernel(m, kd_ptx_find_func(m, "k"), &facts, &v, &nv),
                          KD_OK);
    CU_ASSERT_EQUAL_FATAL(nv, 3);
    CU_ASSERT_EQUAL(v[0].line, 8);
    CU_ASSERT_EQUAL(v[1].line, 10);
    CU_ASSERT_EQUAL(v[2].line, 12);
    CU_ASSERT_EQUAL(facts.shared_accesses, 6);
    free(v);
    kd_ptx_module_free(m);
}

/* ---- each rule fails on a mutated fixture ------------------------------------------------------ */

static char *pair_text;

static void expect_pair(const char *text, int passed, int rule, const char *kernel, int line)
{
    kd_ptx_module *m = parse_str(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    kd_ptx_report *r = check_one(m, "kd_demo", "kd_demo_batched", NULL);
    CU_ASSERT_EQUAL(r->n_compared, 1);
    CU_ASSERT_EQUAL(r->n_passed, passed);
    CU_ASSERT_EQUAL(kd_ptx_report_ok(r), passed);
    CU_ASSERT_EQUAL_FATAL(r->pairs[0].n_comparisons, 1);
    const kd_ptx_comparison *c = &r->pairs[0].comparisons[0];
    if (passed) {
        CU_ASSERT_EQUAL(c->n_violations, 0);
    } else {
        CU_ASSERT_EQUAL_FATAL(c->n_violations, 1);
        CU_ASSERT_EQUAL(c->violations[0].rule, rule);
        CU_ASSERT_STRING_EQUAL(c->violations[0].kernel, kernel);
        CU_ASSERT_EQUAL(c->violations[0].line, line);
    }
    kd_ptx_report_free(r);
    kd_ptx_module_free(m);
}

static void test_fixture_pair_passes(void)
{
    expect_pair(pair_text, 1, 0, NULL, 0);
    kd_ptx_module *m = parse_str(pair_text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    kd_ptx_report *r = check_one(m, "kd_demo", "kd_demo_batched", NULL);
    const kd_ptx_comparison *c = &r->pairs[0].comparisons[0];
    CU_ASSERT_STRING_EQUAL(c->batched.mechanism, "ctaid.y");
    CU_ASSERT_EQUAL(c->single.static_shared_bytes, 384); /* 128 + table 256; ptxas agrees */
    CU_ASSERT_EQUAL(c->batched.static_shared_bytes, 384);
    char summary[128];
    kd_ptx_report_summary(r, summary, sizeof summary);
    CU_ASSERT_STRING_EQUAL(summary, "1/1 kernel pairs passed PTX parity");
    kd_ptx_report_free(r);
    kd_ptx_module_free(m);
}

static void test_rule1_ctaid_removed(void)
{
    char *t = replace_once(pair_text, "\tmov.u32 \t%r8, %ctaid.y;\n", "");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    expect_pair(t, 0, KD_PTX_RULE_BATCH_DISPATCH, "kd_demo_batched",
                line_of(t, ".visible .entry kd_demo_batched("));
    /* an m_dim parameter that is never loaded is no batch mechanism */
    char *t2 = replace_once(t, "kd_demo_batched_param_3", "kd_demo_batched_m_dim");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t2);
    expect_pair(t2, 0, KD_PTX_RULE_BATCH_DISPATCH, "kd_demo_batched",
                line_of(t2, ".visible .entry kd_demo_batched("));
    free(t2);
    /* %ctaid.x is not a batch mechanism */
    char *t3 = replace_once(pair_text, "%r8, %ctaid.y", "%r8, %ctaid.x");
    expect_pair(t3, 0, KD_PTX_RULE_BATCH_DISPATCH, "kd_demo_batched",
                line_of(t3, ".visible .entry kd_demo_batched("));
    free(t3);
    free(t);
}

static void test_rule2_shared_through_u64(void)
{
    /* the batched kernel's store rewritten through a 64-bit register */
    const char *at = strstr(pair_text, "kd_demo_batched(");
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    size_t head = (size_t)(at - pair_text);
    char *tail = replace_once(at, "st.shared.f32 \t[%r7+-4]", "st.shared.f32 \t[%rd7+-4]");
    CU_ASSERT_PTR_NOT_NULL_FATAL(tail);
    char *t = malloc(head + strlen(tail) + 1);
    memcpy(t, pair_text, head);
    strcpy(t + head, tail);
    int line = line_of(t, "[%rd7+-4]");
    expect_pair(t, 0, KD_PTX_RULE_SHARED_U64, "kd_demo_batched", line);
    free(tail);
    free(t);
    /* in the single kernel too: rule 2 applies to both */
    char *s = replace_once(pair_text, "ld.shared.f32 \t%f2, [kd_demo_table+4];",
                           "cvta.to.shared.u64 %rd7, %rd1;\n\tld.shared.f32 \t%f2, [%rd7];");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    expect_pair(s, 0, KD_PTX_RULE_SHARED_U64, "kd_demo", line_of(s, "[%rd7];"));
    free(s);
}

static void test_rule3_shared_resized(void)
{
    char *t = replace_once(pair_text, "kd_demo_batched_buf[128]", "kd_demo_batched_buf[132]");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    expect_pair(t, 0, KD_PTX_RULE_SHARED_SIZE, "kd_demo_batched",
                line_of(t, "kd_demo_batched_buf[132]"));
    kd_ptx_module *m = parse_str(t);
    kd_ptx_report *r = check_one(m, "kd_demo", "kd_demo_batched", NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->pairs[0].comparisons[0].violations[0].detail, "388"));
    kd_ptx_report_free(r);
    kd_ptx_module_free(m);
    free(t);
    /* a module-scope table only the batched kernel uses counts for it alone */
    char *u = replace_once(pair_text, "%f2, [kd_demo_table+4];\n\tld.shared.v2.f32 \t{%f3, %f2}, [kd_demo_buf",
                           "%f2, [kd_demo_buf+4];\n\tld.shared.v2.f32 \t{%f3, %f2}, [kd_demo_buf");
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    char *u2 = replace_once(u, "mov.u32 \t%r4, kd_demo_table;", "mov.u32 \t%r4, kd_demo_buf;");
    CU_ASSERT_PTR_NOT_NULL_FATAL(u2);
    m = parse_str(u2);
    r = check_one(m, "kd_demo", "kd_demo_batched", NULL);
    CU_ASSERT_EQUAL(r->pairs[0].comparisons[0].single.static_shared_bytes, 128);
    CU_ASSERT_EQUAL(r->pairs[0].comparisons[0].batched.static_shared_bytes, 384);
    CU_ASSERT_EQUAL(count_rule(&r->pairs[0].comparisons[0], KD_PTX_RULE_SHARED_SIZE), 1);
    CU_ASSERT_FALSE(kd_ptx_report_ok(r));
    kd_ptx_report_free(r);
    kd_ptx_module_free(m);
    free(u2);
    free(u);
}

/* ---- pairs, missing kernels, no input ------------------------------------------------------------ */

static void test_no_input_is_never_a_pass(void)
{
    kd_ptx_report *r = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs(NULL, NULL, 0, kd_ptx_builtin_pairs,
                                             KD_PTX_BUILTIN_PAIRS, NULL, &r), KD_OK);
    CU_ASSERT_EQUAL(r->n_pairs, 6);
    CU_ASSERT_EQUAL(r->n_compared, 0);
    CU_ASSERT_EQUAL(r->n_passed, 0);
    CU_ASSERT_FALSE(kd_ptx_report_ok(r));
    FILE *f = tmpfile();
    kd_ptx_report_print_text(r, f);
    long n = ftell(f);
    char *buf = calloc((size_t)n + 1, 1);
    rewind(f);
    CU_ASSERT_EQUAL(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "0/6 kernel pairs passed PTX parity\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "no pairs compared"));
    free(buf);
    kd_ptx_report_free(r);
    /* zero pairs requested is not a pass either */
    CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs(NULL, NULL, 0, NULL, 0, NULL, &r), KD_OK);
    CU_ASSERT_FALSE(kd_ptx_report_ok(r));
    kd_ptx_report_free(r);
    CU_ASSERT_EQUAL(kd_ptx_check_pairs(NULL, NULL, 0, NULL, 0, NULL, NULL), KD_ERR_NULL);

    /* the command: absent file, empty file */
    char *out, *err;
    char *argv1[] = {"ptx-check", "--no-ptxas", "/nonexistent/none.ptx"};
    CU_ASSERT_EQUAL(run_cmd(argv1, 3, &out, &err), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "0/6 kernel pairs passed PTX parity"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "no pairs compared"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot open /nonexistent/none.ptx"));
    free(out);
    free(err);
    FILE *e = fopen("ptx_check_empty.ptx", "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    fclose(e);
    char *argv2[] = {"ptx-check", "--no-ptxas", "--json", "ptx_check_empty.ptx"};
    CU_ASSERT_EQUAL(run_cmd(argv2, 4, &out, &err), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"no_pairs_compared\":true"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"ok\":false"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "empty input"));
    free(out);
    free(err);
}

static void test_missing_kernel_fails_pair(void)
{
    kd_ptx_module *m = parse_str(pair_text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    kd_ptx_pair_def pairs[2] = {{"demo", "kd_demo", "kd_demo_batched"},
                                {"ghost", "kd_demo", "kd_ghost_batched"}};
    const kd_ptx_module *mods[1] = {m};
    kd_ptx_report *r = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs(mods, NULL, 1, pairs, 2, NULL, &r), KD_OK);
    CU_ASSERT_EQUAL(r->n_pairs, 2);
    CU_ASSERT_EQUAL(r->n_compared, 1);
    CU_ASSERT_EQUAL(r->n_passed, 1);
    CU_ASSERT_FALSE(kd_ptx_report_ok(r));
    CU_ASSERT_FALSE(r->pairs[1].compared);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->pairs[1].missing, "kd_ghost_batched"));
    kd_ptx_report_free(r);
    /* the built-in pairs are kdispatch's names: none of them is in this fixture */
    CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs(mods, NULL, 1, kd_ptx_builtin_pairs,
                                             KD_PTX_BUILTIN_PAIRS, NULL, &r), KD_OK);
    CU_ASSERT_EQUAL(r->n_compared, 0);
    CU_ASSERT_FALSE(kd_ptx_report_ok(r));
    kd_ptx_report_free(r);
    kd_ptx_module_free(m);
}

/* Kernels looked up across modules: the single kernel in one, the batched in another. */
static void test_pair_across_modules(void)
{
    const char *b = strstr(pair_text, "\t// .globl\tkd_demo_batched");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    const char *hdr_end = strstr(pair_text, ".visible .entry kd_demo(");
    CU_ASSERT_PTR_NOT_NULL_FATAL(hdr_end);
    size_t hl = (size_t)(hdr_end - pair_text);
    char *first = malloc((size_t)(b - pair_text) + 1);
    char *second = malloc(hl + strlen(b) + 1);
    memcpy(first, pair_text, (size_t)(b - pair_text));
    first[b - pair_text] = '\0';
    memcpy(second, pair_text, hl);
    strcpy(second + hl, b);
    kd_ptx_module *m1 = parse_str(first), *m2 = parse_str(second);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m2);
    CU_ASSERT_EQUAL(m1->n_funcs, 1);
    CU_ASSERT_EQUAL(m2->n_funcs, 1);
    const kd_ptx_module *mods[2] = {m1, m2};
    kd_ptx_pair_def pair = {"demo", "kd_demo", "kd_demo_batched"};
    kd_ptx_report *r = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs(mods, NULL, 2, &pair, 1, NULL, &r), KD_OK);
    CU_ASSERT_TRUE(kd_ptx_report_ok(r));
    CU_ASSERT_EQUAL(r->pairs[0].n_comparisons, 1);
    kd_ptx_report_free(r);
    /* the same module twice: compared in each */
    const kd_ptx_module *twice[2] = {mods[0], mods[0]};
    kd_ptx_module *full = parse_str(pair_text);
    twice[0] = twice[1] = full;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs(twice, NULL, 2, &pair, 1, NULL, &r), KD_OK);
    CU_ASSERT_EQUAL(r->pairs[0].n_comparisons, 2);
    CU_ASSERT_TRUE(kd_ptx_report_ok(r));
    kd_ptx_report_free(r);
    kd_ptx_module_free(full);
    kd_ptx_module_free(m1);
    kd_ptx_module_free(m2);
    free(first);
    free(second);
}

/* ---- ptxas ---------------------------------------------------------------------------------------- */

static const char *ptxas_text =
    "ptxas info    : 0 bytes gmem\n"
    "ptxas info    : Compiling entry function 'kd_demo_batched' for 'sm_90'\n"
    "ptxas info    : Function properties for kd_demo_batched\n"
    "    24 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads\n"
    "ptxas info    : Used 40 registers, used 1 barriers, 384 bytes smem, 380 bytes cmem[0]\n"
    "ptxas info    : Compile time = 3.1 ms\n"
    "ptxas info    : Compiling entry function 'kd_demo' for 'sm_90'\n"
    "ptxas info    : Function properties for kd_demo\n"
    "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
    "ptxas info    : Used 20 registers, 16 bytes lmem, 384 bytes smem, 376 bytes cmem[0]\n";

static void test_ptxas_output_parse(void)
{
    kd_ptx_ptxas_result res;
    memset(&res, 0, sizeof res);
    CU_ASSERT_EQUAL_FATAL(kd_ptx_ptxas_parse_output(ptxas_text, &res), 0);
    CU_ASSERT_EQUAL_FATAL(res.n, 2);
    CU_ASSERT_STRING_EQUAL(res.entries[0].name, "kd_demo_batched");
    CU_ASSERT_TRUE(res.entries[0].res.valid);
    CU_ASSERT_EQUAL(res.entries[0].res.registers, 40);
    CU_ASSERT_EQUAL(res.entries[0].res.spill_store_bytes, 8);
    CU_ASSERT_EQUAL(res.entries[0].res.spill_load_bytes, 12);
    CU_ASSERT_EQUAL(res.entries[0].res.shared_bytes, 384);
    CU_ASSERT_EQUAL(res.entries[0].res.local_bytes, 24);
    CU_ASSERT_EQUAL(res.entries[1].res.registers, 20);
    CU_ASSERT_EQUAL(res.entries[1].res.local_bytes, 16);
    kd_ptx_ptxas_result_free(&res);
}

static void test_ptxas_warnings_and_strict(void)
{
    kd_ptx_module *m = parse_str(pair_text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    kd_ptx_ptxas_result res;
    memset(&res, 0, sizeof res);
    CU_ASSERT_EQUAL_FATAL(kd_ptx_ptxas_parse_output(ptxas_text, &res), 0);
    res.ok = 1;
    const kd_ptx_module *mods[1] = {m};
    const kd_ptx_ptxas_result *rs[1] = {&res};
    kd_ptx_pair_def pair = {"demo", "kd_demo", "kd_demo_batched"};
    kd_ptx_report *r = NULL;
    /* 40 > 1.5 x 20 registers and a spill: two warnings, still a pass */
    CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs(mods, rs, 1, &pair, 1, NULL, &r), KD_OK);
    const kd_ptx_comparison *c = &r->pairs[0].comparisons[0];
    CU_ASSERT_EQUAL(c->n_warnings, 2);
    CU_ASSERT_TRUE(kd_ptx_report_ok(r));
    CU_ASSERT_EQUAL(c->batched.res.registers, 40);
    kd_ptx_report_free(r);
    /* factor 2.5: only the spill */
    kd_ptx_check_options opt = {.reg_factor = 2.5};
    CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs(mods, rs, 1, &pair, 1, &opt, &r), KD_OK);
    CU_ASSERT_EQUAL(r->pairs[0].comparisons[0].n_warnings, 1);
    kd_ptx_report_free(r);
    /* strict: the warnings fail the pair as rule 5 */
    opt.reg_factor = 1.5;
    opt.strict = 1;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs(mods, rs, 1, &pair, 1, &opt, &r), KD_OK);
    CU_ASSERT_FALSE(kd_ptx_report_ok(r));
    CU_ASSERT_EQUAL(count_rule(&r->pairs[0].comparisons[0], KD_PTX_RULE_PTXAS), 2);
    kd_ptx_report_free(r);
    kd_ptx_ptxas_result_free(&res);
    kd_ptx_module_free(m);
}

static void test_ptxas_real_if_present(void)
{
    char path[4096];
    CU_ASSERT_EQUAL(kd_ptx_ptxas_find("/nonexistent/ptxas", path, sizeof path), -1);
    if (kd_ptx_ptxas_find(NULL, path, sizeof path) != 0) {
        printf("\n  ptxas not found: the real ptxas run is not exercised here\n");
        return;
    }
    kd_ptx_module *m = parse_str(pair_text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    kd_ptx_ptxas_result res;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_ptxas_run(path, "sm_90", m, &res), KD_OK);
    CU_ASSERT_TRUE(res.ok);
    const kd_ptx_module *mods[1] = {m};
    const kd_ptx_ptxas_result *rs[1] = {&res};
    kd_ptx_pair_def pair = {"demo", "kd_demo", "kd_demo_batched"};
    kd_ptx_report *r = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs(mods, rs, 1, &pair, 1, NULL, &r), KD_OK);
    const kd_ptx_comparison *c = &r->pairs[0].comparisons[0];
    CU_ASSERT_TRUE(c->single.res.valid && c->batched.res.valid);
    CU_ASSERT(c->single.res.registers > 0);
    /* ptxas's shared size is the one the parser computed */
    CU_ASSERT_EQUAL((unsigned long long)c->single.res.shared_bytes, c->single.static_shared_bytes);
    CU_ASSERT_EQUAL((unsigned long long)c->batched.res.shared_bytes,
                    c->batched.static_shared_bytes);
    kd_ptx_report_free(r);
    kd_ptx_ptxas_result_free(&res);
    /* a module ptxas refuses (an sm_90a instruction in an sm_80 module): reported, not fatal */
    char *bad = replace_once(pair_text, "bar.sync \t0;",
                             "bar.sync \t0;\n\tsetmaxnreg.inc.sync.aligned.u32 64;");
    CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
    kd_ptx_module *mb = parse_str(bad);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mb);
    CU_ASSERT_EQUAL(kd_ptx_ptxas_run(path, "sm_90", mb, &res), KD_OK);
    CU_ASSERT_FALSE(res.ok);
    CU_ASSERT_PTR_NOT_NULL(strstr(res.why, "ptxas failed"));
    kd_ptx_ptxas_result_free(&res);
    kd_ptx_module_free(mb);
    free(bad);
    kd_ptx_module_free(m);
}

/* ---- output formats and the command ------------------------------------------------------------------ */

static void test_json_escapes_line_text(void)
{
    char *t = replace_once(pair_text, "st.shared.f32 \t[%r5], %f1;",
                           "st.shared.f32 \t[%rd5], %f1; // \"q\" \\ \xe9");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    kd_ptx_module *m = parse_str(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    kd_ptx_report *r = check_one(m, "kd_demo", "kd_demo_batched", NULL);
    FILE *f = tmpfile();
    kd_ptx_report_print_json(r, f);
    long n = ftell(f);
    char *buf = calloc((size_t)n + 1, 1);
    rewind(f);
    CU_ASSERT_EQUAL(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "// \\\"q\\\" \\\\ \\u00e9\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"rule_name\":\"shared-u64\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"summary\":\"0/1 kernel pairs passed PTX parity\""));
    for (long i = 0; i < n; i++) /* plain ASCII, no raw control characters but the end */
        CU_ASSERT(((unsigned char)buf[i] >= 0x20 && (unsigned char)buf[i] < 0x7f) || i == n - 1);
    free(buf);
    kd_ptx_report_free(r);
    kd_ptx_module_free(m);
    free(t);
}

static void test_command(void)
{
    char *out, *err;
    char *help[] = {"ptx-check", "--help"};
    CU_ASSERT_EQUAL(run_cmd(help, 2, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "usage: kdispatch ptx-check"));
    free(out);
    free(err);

    char *ok[] = {"ptx-check", "--no-ptxas", "--pair", "kd_demo:kd_demo_batched",
                  DATA_DIR "pair_ok.ptx"};
    CU_ASSERT_EQUAL(run_cmd(ok, 5, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "PASS kd_demo: kd_demo / kd_demo_batched"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "mechanism=ctaid.y shared=384/384 bytes violations=0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\n1/1 kernel pairs passed PTX parity\n"));
    free(out);
    free(err);

    char *json[] = {"ptx-check", "--json", "--no-ptxas", "--pair", "kd_demo:kd_demo_batched",
                    DATA_DIR "pair_ok.ptx"};
    CU_ASSERT_EQUAL(run_cmd(json, 6, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"summary\":\"1/1 kernel pairs passed PTX parity\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"ok\":true"));
    free(out);
    free(err);

    /* a malformed file among the inputs fails the run, with file:line */
    FILE *f = fopen("ptx_check_bad.ptx", "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(".version 8.0\n.target sm_90\n.entry k() {\n ld.shared.f32 %f1, [%r1;\n}\n", f);
    fclose(f);
    char *mixed[] = {"ptx-check", "--no-ptxas", "--pair", "kd_demo:kd_demo_batched",
                     DATA_DIR "pair_ok.ptx", "ptx_check_bad.ptx"};
    CU_ASSERT_EQUAL(run_cmd(mixed, 6, &out, &err), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "error: ptx_check_bad.ptx:4: missing ']' before ';'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "1/1 kernel pairs passed PTX parity"));
    free(out);
    free(err);

    static const char *const usage_errors[][3] = {
        {"--pair", "nocolon", NULL}, {"--pair", ":b", NULL}, {"--reg-factor", "abc", NULL},
        {"--reg-factor", "0.5", NULL}, {"--bogus", NULL, NULL}, {"--arch", NULL, NULL}};
    for (size_t i = 0; i < sizeof usage_errors / sizeof usage_errors[0]; i++) {
        char *argv[3] = {"ptx-check", (char *)usage_errors[i][0], (char *)usage_errors[i][1]};
        CU_ASSERT_EQUAL(run_cmd(argv, usage_errors[i][1] ? 3 : 2, &out, &err), 2);
        CU_ASSERT(strlen(err) > 0);
        free(out);
        free(err);
    }
    char *list[] = {"ptx-check", "--list-pairs"};
    CU_ASSERT_EQUAL(run_cmd(list, 2, &out, &err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "q6k_gemv kd_gemv_q6k:kd_gemv_q6k_batched"));
    free(out);
    free(err);
}

/* --from-opencl: PTX from NVIDIA's OpenCL is checked; any other device's binary (PoCL's
 * native code) or a build without OpenCL is reported and fails, never passes. */
static void test_from_opencl(void)
{
    char *out, *err;
    char *argv[] = {"ptx-check", "--no-ptxas", "--from-opencl"};
    int rc = run_cmd(argv, 3, &out, &err);
    CU_ASSERT(rc == 0 || rc == 1);
    if (rc == 1)
        CU_ASSERT(strstr(err, "--from-opencl") != NULL || strstr(out, "FAIL") != NULL);
    printf("\n  --from-opencl here: exit %d: %s", rc, err[0] ? err : out);
    free(out);
    free(err);
}

/* ---- mutation suite: data flow, scoping, pairing (issue 12) ---------------------------------- */

static char *read_fixture(const char *name)
{
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, DATA_DIR "%s", name);
    char *t = kd_test_read_file(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    return t;
}

/* Checks text for one pair: it passes, or it fails with at least one violation of rule
 * (at line when line > 0). */
static void expect_text(const char *what, const char *text, const char *single,
                        const char *batched, int passed, int rule, int line)
{
    kd_ptx_module *m = parse_str(text);
    if (!m)
        fprintf(stderr, "  %s: does not parse\n", what);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    kd_ptx_report *r = check_one(m, single, batched, NULL);
    CU_ASSERT_EQUAL(r->n_compared, 1);
    if (r->n_passed != passed) {
        fprintf(stderr, "\n  %s: expected %s\n", what, passed ? "pass" : "fail");
        kd_ptx_report_print_text(r, stderr);
    }
    CU_ASSERT_EQUAL(r->n_passed, passed);
    for (int i = 0; !passed && i < r->pairs[0].n_comparisons; i++) {
        const kd_ptx_comparison *c = &r->pairs[0].comparisons[i];
        int found = 0;
        for (int k = 0; k < c->n_violations; k++)
            found |= c->violations[k].rule == rule && (line <= 0 || c->violations[k].line == line);
        if (!found) {
            fprintf(stderr, "\n  %s: rule %d at line %d not reported\n", what, rule, line);
            kd_ptx_report_print_text(r, stderr);
        }
        CU_ASSERT_TRUE(found);
    }
    kd_ptx_report_free(r);
    kd_ptx_module_free(m);
}

/* text with every occurrence of from replaced by to */
static char *replace_all(const char *text, const char *from, const char *to)
{
    char *cur = strdup(text);
    size_t fl = strlen(from), tl = strlen(to), off = 0;
    for (;;) {
        char *at = strstr(cur + off, from);
        if (!at)
            return cur;
        size_t a = (size_t)(at - cur), n = strlen(cur);
        char *nx = malloc(n - fl + tl + 1);
        memcpy(nx, cur, a);
        memcpy(nx + a, to, tl);
        memcpy(nx + a + tl, at + fl, n - a - fl + 1);
        free(cur);
        cur = nx;
        off = a + tl;
    }
}

/* clang output without libclc: get_group_id(1) stays a call; get_group_id(0) is no batch */
static void test_clang_get_group_id_call(void)
{
    char *t = read_fixture("clang_rmsnorm_nolibclc.ptx");
    expect_text("get_group_id(1) call", t, "kd_rmsnorm_f32", "kd_rmsnorm_f32_batched", 1, 0, 0);
    char *at = strstr(t, ".entry kd_rmsnorm_f32_batched(");
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    char *one = strstr(at, "mov.u32 \t%r14, 1;");
    CU_ASSERT_PTR_NOT_NULL_FATAL(one);
    one[strlen("mov.u32 \t%r14, ")] = '0';
    expect_text("get_group_id(0) call", t, "kd_rmsnorm_f32", "kd_rmsnorm_f32_batched", 0,
                KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(t);
}

/* rows.cu: the batched kernel loops over its m_dim rows; nvcc -O3 turns x + row * n into
 * pointers advanced each iteration (unrolled with a down-counter, unroll 1, a pointer end,
 * a down-counter from m_dim). m_dim is nvcc's "kd_demo_batched_param_3": the parameter
 * the batched kernel adds to the single one's. */
static void test_nvcc_row_loops(void)
{
    static const char *const pass[] = {"nvcc_rows_loop.ptx", "nvcc_rows_loop_unroll1.ptx",
                                       "nvcc_rows_pointer_end.ptx",
                                       "nvcc_rows_down_counter.ptx",
                                       "nvcc_rows_flat_pointer.ptx",
                                       "nvcc_rows_G_down_counter.ptx",
                                       "nvcc_rows_G_flat_pointer.ptx",
                                       "nvcc_rows_noinline_rdc.ptx"};
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) {
        char *t = read_fixture(pass[i]);
        expect_text(pass[i], t, "kd_demo", "kd_demo_batched", 1, 0, 0);
        free(t);
    }
    /* m_dim only checked, the loop over n rows; m_dim bounds a loop that reads one row;
     * the row loop's inner loop over the elements advances, but each row is row 0 */
    static const char *const fail[] = {"nvcc_rows_bound_by_n.ptx", "nvcc_rows_no_row_access.ptx",
                                       "nvcc_rows_inner_loop_row0.ptx",
                                       "nvcc_rows_G_inner_loop_row0.ptx",
                                       "nvcc_rows_noinline_rdc_row0.ptx"};
    for (size_t i = 0; i < sizeof fail / sizeof fail[0]; i++) {
        char *t = read_fixture(fail[i]);
        expect_text(fail[i], t, "kd_demo", "kd_demo_batched", 0, KD_PTX_RULE_BATCH_DISPATCH,
                    line_of(t, ".entry kd_demo_batched("));
        free(t);
    }
    char *t = read_fixture("nvcc_rows_loop_unroll1.ptx");
    kd_ptx_module *m = parse_str(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    kd_ptx_report *r = check_one(m, "kd_demo", "kd_demo_batched", NULL);
    CU_ASSERT_STRING_EQUAL(r->pairs[0].comparisons[0].batched.mechanism,
                           "param kd_demo_batched_param_3");
    kd_ptx_report_free(r);
    kd_ptx_module_free(m);
    /* the loop compares the counter with n, not m_dim */
    char *e = replace_once(t, "setp.lt.s32 \t%p4, %r10, %r5;", "setp.lt.s32 \t%p4, %r10, %r4;");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    expect_text("row loop bound by n", e, "kd_demo", "kd_demo_batched", 0,
                KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(e);
    /* the pointers are no longer advanced: every iteration the same row */
    e = replace_all(t, "add.s64 \t%rd14, %rd14, %rd2;", "mov.u64 \t%rd14, %rd14;");
    char *e2 = replace_all(e, "add.s64 \t%rd13, %rd13, %rd2;", "mov.u64 \t%rd13, %rd13;");
    CU_ASSERT_PTR_NOT_EQUAL(strstr(e2, "mov.u64 \t%rd13, %rd13;"), NULL);
    expect_text("row loop, pointers not advanced", e2, "kd_demo", "kd_demo_batched", 0,
                KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(e2);
    free(e);
    /* no parameter added to the single kernel's: no m_dim (the single kernel's own loops
     * never count) */
    e = replace_all(t, "\t.param .u32 kd_demo_batched_param_3\n", "");
    char *e4 = replace_all(e, ",\n)\n{", "\n)\n{");
    char *e3 = replace_all(e4, "[kd_demo_batched_param_3]", "[kd_demo_batched_param_2]");
    free(e4);
    expect_text("no m_dim parameter", e3, "kd_demo", "kd_demo_batched", 0,
                KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(e3);
    free(e);
    free(t);
}

/* Checks kd_demo/kd_demo_batched over n texts (each parsed under its name). */
static kd_ptx_report *check_texts(const char *const *texts, const char *const *names, int n)
{
    kd_ptx_module *mods[4] = {NULL};
    for (int i = 0; i < n; i++) {
        kd_ptx_error e;
        CU_ASSERT_EQUAL_FATAL(kd_ptx_parse(names[i], texts[i], strlen(texts[i]), &mods[i], &e),
                              KD_OK);
    }
    kd_ptx_pair_def pair = {"pair", "kd_demo", "kd_demo_batched"};
    kd_ptx_report *r = NULL;
    CU_ASSERT_EQUAL_FATAL(
        kd_ptx_check_pairs((const kd_ptx_module *const *)mods, NULL, n, &pair, 1, NULL, &r), KD_OK);
    for (int i = 0; i < n; i++)
        kd_ptx_module_free(mods[i]);
    return r;
}

/* 1 when some comparison of the report has a violation of rule in file (NULL: any). */
static int has_violation(const kd_ptx_report *r, int rule, const char *file)
{
    for (int i = 0; i < r->pairs[0].n_comparisons; i++)
        for (int k = 0; k < r->pairs[0].comparisons[i].n_violations; k++) {
            const kd_ptx_violation *v = &r->pairs[0].comparisons[i].violations[k];
            if (v->rule == rule && (!file || strcmp(v->file, file) == 0))
                return 1;
        }
    return 0;
}

static int has_warning(const kd_ptx_report *r, const char *text)
{
    for (int i = 0; i < r->pairs[0].n_comparisons; i++)
        for (int k = 0; k < r->pairs[0].comparisons[i].n_warnings; k++)
            if (strstr(r->pairs[0].comparisons[i].warnings[k], text))
                return 1;
    return 0;
}

/* -rdc=true across files: the kernels' helpers are .extern in one PTX file and defined in
 * another. Given both (in either order) the helpers are followed; given the kernels alone
 * (or a helper defined twice for the target) nothing flows through the calls: rule 1 cannot
 * be proved there, and the report warns that the calls were not followed. */
static void test_rdc_across_files(void)
{
    char *k = read_fixture("nvcc_rdc_extern_kernels.ptx");
    char *h = read_fixture("nvcc_rdc_extern_helpers.ptx");
    const char *kn = "kernels.ptx", *hn = "helpers.ptx";
    const char *t1[] = {k, h}, *n1[] = {kn, hn};
    kd_ptx_report *r = check_texts(t1, n1, 2);
    CU_ASSERT_TRUE(r->pairs[0].passed);
    CU_ASSERT_STRING_EQUAL(r->pairs[0].comparisons[0].batched.mechanism, "ctaid.y");
    CU_ASSERT_PTR_NOT_NULL(strstr(r->pairs[0].comparisons[0].batched.mechanism_path,
                                  "parameter 1 -> helpers.ptx:"));
    CU_ASSERT_EQUAL(r->pairs[0].comparisons[0].batched.static_shared_bytes, 512);
    kd_ptx_report_free(r);
    const char *t2[] = {h, k}, *n2[] = {hn, kn};
    r = check_texts(t2, n2, 2);
    CU_ASSERT_TRUE(r->pairs[0].passed);
    kd_ptx_report_free(r);
    /* the kernels alone: the helpers are defined in no input */
    r = check_texts(t1, n1, 1);
    CU_ASSERT_FALSE(r->pairs[0].passed);
    CU_ASSERT_TRUE(has_violation(r, KD_PTX_RULE_BATCH_DISPATCH, kn));
    CU_ASSERT_TRUE(has_warning(r, "defined in no input"));
    CU_ASSERT_TRUE(has_warning(r, "receives a shared-memory address"));
    kd_ptx_report_free(r);
    /* the helpers twice for sm_80: which one is linked is not known */
    const char *t3[] = {k, h, h}, *n3[] = {kn, hn, "helpers2.ptx"};
    r = check_texts(t3, n3, 3);
    CU_ASSERT_FALSE(r->pairs[0].passed);
    CU_ASSERT_TRUE(has_warning(r, "more than one input"));
    kd_ptx_report_free(r);
    /* helpers built for another target are another program */
    char *h90 = replace_once(h, ".target sm_80", ".target sm_90");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h90);
    const char *t4[] = {k, h90}, *n4[] = {kn, hn};
    r = check_texts(t4, n4, 2);
    CU_ASSERT_FALSE(r->pairs[0].passed);
    kd_ptx_report_free(r);
    /* a 64-bit shared access in the other file's helper fails rule 2 there */
    char *hbad = replace_once(h, "st.f32 \t[%rd3], %f1;", "st.shared.f32 \t[%rd3], %f1;");
    CU_ASSERT_PTR_NOT_NULL_FATAL(hbad);
    const char *t5[] = {k, hbad}, *n5[] = {kn, hn};
    r = check_texts(t5, n5, 2);
    CU_ASSERT_FALSE(r->pairs[0].passed);
    CU_ASSERT_TRUE(has_violation(r, KD_PTX_RULE_SHARED_U64, hn));
    kd_ptx_report_free(r);
    /* the row offset no longer reaches the helper's address */
    char *hrow1 =
        replace_once(h, "mul.wide.s32 \t%rd3, %r2, %r1;", "mul.wide.s32 \t%rd3, %r2, %r2;");
    CU_ASSERT_PTR_NOT_NULL_FATAL(hrow1);
    /* and store_row stores to y[0] */
    char *hrow = hrow1;
    char *sr = strstr(hrow, ".func _Z9store_rowPfif(");
    CU_ASSERT_PTR_NOT_NULL_FATAL(sr);
    char *st = strstr(sr, "st.f32 \t[%rd3]");
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    memcpy(st, "st.f32 \t[%rd1]", strlen("st.f32 \t[%rd1]"));
    const char *t6[] = {k, hrow}, *n6[] = {kn, hn};
    r = check_texts(t6, n6, 2);
    CU_ASSERT_FALSE(r->pairs[0].passed);
    CU_ASSERT_TRUE(has_violation(r, KD_PTX_RULE_BATCH_DISPATCH, kn));
    kd_ptx_report_free(r);
    free(hbad);
    free(h90);
    free(hrow);
    free(h);
    free(k);
}

/* nvcc_base with both uses of the row (the load's and the store's offset) cut, and
 * extra code where the store's offset was; NULL-safe for the caller's asserts. */
static char *base_row_cut(const char *base, const char *extra)
{
    char *a = replace_once(base, "mul.wide.s32 \t%rd4, %r7, %r1;", "mul.wide.s32 \t%rd4, %r7, 0;");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    char to[512];
    snprintf(to, sizeof to, "mul.wide.s32 \t%%rd10, %%r2, 0;\n\t%s", extra);
    char *b = replace_once(a, "mul.wide.s32 \t%rd10, %r1, 4;", to);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    free(a);
    return b;
}

/* the batch index reaches memory, but not a global address: fails */
static void test_rule1_not_global(void)
{
    char *base = read_fixture("nvcc_base.ptx");
    static const struct {
        const char *what, *extra;
    } cases[] = {
        {"row only in the stored value", "cvt.rn.f32.s32 \t%f9, %r1;"},
        {"row only in a shared address",
         "shl.b32 \t%r13, %r1, 2;\n\tadd.s32 \t%r13, %r14, %r13;\n\t"
         "ld.shared.f32 \t%f9, [%r13];"},
        {"row only in a .const address",
         "{ .reg .b64 %c;\n\tcvt.u64.u32 %c, %r1;\n\tld.const.f32 \t%f7, [%c]; }"},
        {"row only in a generic address of local memory",
         "{ .reg .b64 %c;\n\t.local .b8 buf[64];\n\tmov.u64 %c, buf;\n\t"
         "cvta.local.u64 %c, %c;\n\tcvt.u64.u32 %rd5, %r1;\n\tadd.s64 %c, %c, %rd5;\n\t"
         "ld.f32 \t%f7, [%c]; }"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = base_row_cut(base, cases[i].extra);
        expect_text(cases[i].what, t, "kd_demo", "kd_demo_batched", 0,
                    KD_PTX_RULE_BATCH_DISPATCH, 0);
        free(t);
    }
    /* the control: the same cut with the row back in the store's global address */
    char *t = base_row_cut(base, "mul.wide.s32 \t%rd10, %r1, 4;");
    expect_text("row back in the store address", t, "kd_demo", "kd_demo_batched", 1, 0, 0);
    free(t);
    /* the single kernel renamed, with an m_dim parameter added and loaded */
    const char *bat = strstr(base, ".visible .entry kd_demo_batched(");
    const char *sgl = strstr(base, ".visible .entry kd_demo(");
    CU_ASSERT_PTR_NOT_NULL_FATAL(bat);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sgl);
    char *copy = strndup(sgl, (size_t)(bat - sgl));
    char *ren = replace_all(copy, "kd_demo", "kd_demo_batched");
    char *ren2 = replace_once(ren, "\t.param .u32 kd_demo_batched_param_2\n",
                              "\t.param .u32 kd_demo_batched_param_2,\n"
                              "\t.param .u32 kd_demo_batched_param_3\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ren2);
    size_t hl = (size_t)(bat - base);
    char *whole = malloc(hl + strlen(ren2) + 1);
    memcpy(whole, base, hl);
    strcpy(whole + hl, ren2);
    expect_text("single kernel renamed", whole, "kd_demo", "kd_demo_batched", 0,
                KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(whole);
    free(ren2);
    free(ren);
    free(copy);
    free(base);
}

/* the nvcc fixtures: harmless builds pass, real bugs fail */
static void test_nvcc_builds(void)
{
    static const char *const pass[] = {"nvcc_base.ptx", "nvcc_lineinfo.ptx",
                                       "nvcc_fast_math.ptx", "nvcc_host_O0.ptx",
                                       "nvcc_rdc_helper.ptx", "nvcc_rdc_shared_helper.ptx"};
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) {
        char *t = read_fixture(pass[i]);
        expect_text(pass[i], t, "kd_demo", "kd_demo_batched", 1, 0, 0);
        free(t);
    }
    /* blockIdx.y only bounds-checked (row = 0 after the check): rule 1 */
    test_nvcc_row_loops();
    char *t = read_fixture("nvcc_rows_only_checked.ptx");
    expect_text("rows only checked", t, "kd_demo", "kd_demo_batched", 0,
                KD_PTX_RULE_BATCH_DISPATCH, line_of(t, ".entry kd_demo_batched("));
    free(t);
    /* dynamic shared memory added to the batched kernel only: rule 3 */
    t = read_fixture("nvcc_dyn_shared.ptx");
    expect_text("dynamic shared", t, "kd_demo", "kd_demo_batched", 0, KD_PTX_RULE_SHARED_SIZE, 0);
    free(t);
    /* the report names the path: ctaid.y read, ..., the global access; through the
     * -rdc helper's parameter */
    kd_ptx_module *m = parse_fixture("nvcc_rdc_helper.ptx");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    kd_ptx_report *r = check_one(m, "kd_demo", "kd_demo_batched", NULL);
    const kd_ptx_kernel_facts *b = &r->pairs[0].comparisons[0].batched;
    CU_ASSERT_STRING_EQUAL(b->mechanism, "ctaid.y");
    CU_ASSERT_PTR_NOT_NULL(strstr(b->mechanism_path, "load_row"));
    kd_ptx_report_free(r);
    kd_ptx_module_free(m);
}

/* clang/LLVM NVPTX output of the OpenCL rmsnorm kernels (libclc linked, -nvptx-short-ptr) */
static void test_clang_opencl_ptx(void)
{
    char *t = read_fixture("clang_rmsnorm.ptx");
    expect_text("clang rmsnorm", t, "kd_rmsnorm_f32", "kd_rmsnorm_f32_batched", 1, 0, 0);
    /* -O0: everything through local memory (%SP frames) and calls */
    char *o0 = read_fixture("clang_O0_rmsnorm.ptx");
    expect_text("clang -O0 rmsnorm", o0, "kd_rmsnorm_f32", "kd_rmsnorm_f32_batched", 1, 0, 0);
    free(o0);
    /* without -nvptx-short-ptr shared addresses are 64-bit: rule 2 */
    char *lp = read_fixture("clang_longptr_rmsnorm.ptx");
    expect_text("clang 64-bit shared pointers", lp, "kd_rmsnorm_f32", "kd_rmsnorm_f32_batched", 0,
                KD_PTX_RULE_SHARED_U64, 0);
    free(lp);
    char *bad = replace_once(t, "mov.u32 \t%r1, %ctaid.y;", "mov.u32 \t%r1, %ctaid.x;");
    CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
    expect_text("clang rmsnorm, ctaid.x", bad, "kd_rmsnorm_f32", "kd_rmsnorm_f32_batched", 0,
                KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(bad);
    free(t);
}

#define BASE_CTAID "mov.u32 \t%r1, %ctaid.y;"
#define BASE_CTAIDX "mov.u32 \t%r1, %ctaid.x;"
#define BASE_RET "$L__BB1_7:\n\tret;\n"

/* rule 1 is data flow: reads that do not reach a global address do not count */
static void test_rule1_data_flow(void)
{
    char *base = read_fixture("nvcc_base.ptx");
    char *x = replace_once(base, BASE_CTAID, BASE_CTAIDX);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    const char *dead_tail = "\tmov.u32 \t%r13, %ctaid.y;\n\tmul.wide.s32 \t%rd10, %r13, 4;\n"
                            "\tadd.s64 \t%rd11, %rd1, %rd10;\n\tst.global.f32 \t[%rd11], %f9;\n";
    struct { const char *what, *from, *to; } bad[] = {
        /* a read after ret (dead code) feeding an address */
        {"dead after ret", BASE_RET, NULL},
        /* branched around with an unconditional bra */
        {"branched around", BASE_CTAIDX,
         BASE_CTAIDX "\n\tbra.uni \t$L__skip;\n\tmov.u32 \t%r1, %ctaid.y;\n$L__skip:"},
        /* read, then overwritten before any use */
        {"overwritten", BASE_CTAIDX, "mov.u32 \t%r1, %ctaid.y;\n\tmov.u32 \t%r1, %ctaid.x;"},
        /* only compared: in setp, never in an address */
        {"only compared", BASE_CTAIDX, "mov.u32 \t%r13, %ctaid.y;\n\tsetp.ge.s32 \t%p4, %r13, "
                                       "%r8;\n\t@%p4 bra \t$L__BB1_7;\n\t" BASE_CTAIDX},
        /* in a comment and a string only */
        {"comment and string", BASE_CTAIDX,
         BASE_CTAIDX " // mov.u32 %r1, %ctaid.y;\n\t.pragma \"%ctaid.y\";"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *t;
        if (!bad[i].to) {
            char tail[512];
            snprintf(tail, sizeof tail, "%s%s", BASE_RET, dead_tail);
            t = replace_once(x, bad[i].from, tail);
        } else {
            t = replace_once(x, bad[i].from, bad[i].to);
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        expect_text(bad[i].what, t, "kd_demo", "kd_demo_batched", 0, KD_PTX_RULE_BATCH_DISPATCH,
                    line_of(t, ".entry kd_demo_batched("));
        free(t);
    }
    /* a prefetch is no load or store; cp.async's global source is */
    const char *pre = "cvta.to.global.u64 \t%rd7, %rd2;\n\tmov.u32 \t%r13, %ctaid.y;\n"
                      "\tmul.wide.s32 \t%rd10, %r13, 4;\n\tadd.s64 \t%rd11, %rd7, %rd10;\n";
    char buf[1024];
    snprintf(buf, sizeof buf, "%s\tprefetch.global.L2 \t[%%rd11];", pre);
    char *t = replace_once(x, "cvta.to.global.u64 \t%rd7, %rd2;", buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    expect_text("prefetch only", t, "kd_demo", "kd_demo_batched", 0, KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(t);
    snprintf(buf, sizeof buf, "%s\tcp.async.ca.shared.global \t[%%r13], [%%rd11], 4;", pre);
    t = replace_once(x, "cvta.to.global.u64 \t%rd7, %rd2;", buf);
    expect_text("cp.async global source", t, "kd_demo", "kd_demo_batched", 1, 0, 0);
    free(t);
    /* in a function nobody calls */
    const char *uncalled = ".func dead_helper(.param .b64 dead_helper_param_0)\n{\n"
                           ".reg .b32 %r<3>;\n.reg .b64 %rd<4>;\n"
                           "ld.param.u64 %rd1, [dead_helper_param_0];\nmov.u32 %r1, %ctaid.y;\n"
                           "mul.wide.s32 %rd2, %r1, 4;\nadd.s64 %rd3, %rd1, %rd2;\n"
                           "st.global.u32 [%rd3], %r1;\nret;\n}\n";
    t = replace_once(x, "\t// .globl\tkd_demo_batched", uncalled);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    expect_text("uncalled function", t, "kd_demo", "kd_demo_batched", 0,
                KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(t);
    /* a write to the special register is an error with its line */
    t = replace_once(base, BASE_CTAID, BASE_CTAID "\n\tmov.u32 \t%ctaid.y, %r7;");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    expect_text("write to %ctaid.y", t, "kd_demo", "kd_demo_batched", 0,
                KD_PTX_RULE_SPECIAL_WRITE, line_of(t, "%ctaid.y, %r7"));
    free(t);
    /* the good read stays found when a dead one is added */
    char tail[512];
    snprintf(tail, sizeof tail, "%s%s", BASE_RET, dead_tail);
    t = replace_once(base, BASE_RET, tail);
    expect_text("extra dead read", t, "kd_demo", "kd_demo_batched", 1, 0, 0);
    free(t);
    free(x);
    free(base);
}

/* harmless rewrites of the built PTX pass */
static void test_harmless_rewrites(void)
{
    char *base = read_fixture("nvcc_base.ptx");
    /* register renaming (%rd -> %q), and names without '%' */
    char *t = replace_all(base, "%rd", "%q");
    expect_text("renamed registers", t, "kd_demo", "kd_demo_batched", 1, 0, 0);
    free(t);
    t = replace_all(base, "%r", "r");
    expect_text("registers without %", t, "kd_demo", "kd_demo_batched", 1, 0, 0);
    /* cache-hint qualifiers with a digit after '::' (nvcc -Xptxas / inline PTX) */
    char *hint = replace_once(base, "ld.global.f32 \t%f8, [%rd9];",
                              "ld.global.nc.L1::no_allocate.L2::256B.f32 \t%f8, [%rd9];");
    CU_ASSERT_PTR_NOT_NULL_FATAL(hint);
    expect_text("ld.global.L2::256B", hint, "kd_demo", "kd_demo_batched", 1, 0, 0);
    free(hint);
    /* predicates without '%' too, guards included (@p1 bra) */
    char *np = replace_all(t, "%p", "p");
    CU_ASSERT_PTR_NOT_NULL(strstr(np, "@p1 bra"));
    expect_text("predicates without %", np, "kd_demo", "kd_demo_batched", 1, 0, 0);
    char *np2 = replace_all(np, "mov.u32 \tr1, %ctaid.y;", "mov.u32 \tr1, %ctaid.x;");
    expect_text("predicates without %, ctaid.x", np2, "kd_demo", "kd_demo_batched", 0,
                KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(np2);
    free(np);
    free(t);
    /* kernels in the other order */
    const char *b = strstr(base, "\t// .globl\tkd_demo_batched");
    const char *s = strstr(base, "\t// .globl\tkd_demo\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    size_t n = strlen(base);
    t = malloc(n + 1);
    size_t hl = (size_t)(s - base), sl = (size_t)(b - s), bl = n - (size_t)(b - base);
    memcpy(t, base, hl);
    memcpy(t + hl, b, bl);
    memcpy(t + hl + bl, s, sl);
    t[n] = '\0';
    expect_text("kernels reordered", t, "kd_demo", "kd_demo_batched", 1, 0, 0);
    free(t);
    /* comments, .loc and an extra scoped block */
    t = replace_all(base, "\tbar.sync \t0;",
                    "\t/* %ctaid.y in a comment */\n\t.loc 1 20 3\n\t{ .reg .b64 %t;\n"
                    "\tmov.u64 %t, 0;\n\t}\n\tbar.sync \t0; // done");
    expect_text("comments and .loc", t, "kd_demo", "kd_demo_batched", 1, 0, 0);
    free(t);
    free(base);
}

/* m_dim: the exact name rule, loaded, bounding a loop over rows */
static const char *mdim_ptx =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry kd_m(.param .u64 kd_m_param_0)\n{\n.reg .b64 %rd<3>;\n"
    "ld.param.u64 %rd1, [kd_m_param_0];\ncvta.to.global.u64 %rd2, %rd1;\n"
    "st.global.u32 [%rd2], 0;\nret;\n}\n"
    ".visible .entry kd_m_batched(.param .u64 kd_m_batched_param_0, .param .u32 m_dim)\n{\n"
    ".reg .pred %p<2>;\n.reg .b32 %r<4>;\n.reg .b64 %rd<6>;\n"
    "ld.param.u64 %rd1, [kd_m_batched_param_0];\nld.param.u32 %r1, [m_dim];\n"
    "cvta.to.global.u64 %rd2, %rd1;\nmov.u32 %r2, 0;\n"
    "LOOP:\nmul.wide.u32 %rd3, %r2, 4;\nadd.s64 %rd4, %rd2, %rd3;\n"
    "st.global.u32 [%rd4], 0;\nadd.s32 %r2, %r2, 1;\nsetp.lt.u32 %p1, %r2, %r1;\n"
    "@%p1 bra LOOP;\nret;\n}\n";

/* the same loop over rows with the row offset strength-reduced into a pointer */
static const char *mdim_ptr_ptx =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".visible .entry kd_m(.param .u64 kd_m_param_0)\n{\n.reg .b64 %rd<3>;\n"
    "ld.param.u64 %rd1, [kd_m_param_0];\ncvta.to.global.u64 %rd2, %rd1;\n"
    "st.global.u32 [%rd2], 0;\nret;\n}\n"
    ".visible .entry kd_m_batched(.param .u64 kd_m_batched_param_0, .param .u32 m_dim)\n{\n"
    ".reg .pred %p<4>;\n.reg .b32 %r<6>;\n.reg .b64 %rd<6>;\n"
    "ld.param.u64 %rd1, [kd_m_batched_param_0];\nld.param.u32 %r1, [m_dim];\n"
    "cvta.to.global.u64 %rd2, %rd1;\nmov.u32 %r2, 0;\n"
    "LOOP:\nst.global.u32 [%rd2], 0;\nadd.s64 %rd2, %rd2, 64;\nadd.s32 %r2, %r2, 1;\n"
    "setp.lt.u32 %p1, %r2, %r1;\n@%p1 bra LOOP;\nret;\n}\n";

#define MDIM_EXIT "setp.lt.u32 %p1, %r2, %r1;\n@%p1 bra LOOP;"

static void test_rule1_m_dim_pointer_loops(void)
{
    expect_text("m_dim loop, advanced pointer", mdim_ptr_ptx, "kd_m", "kd_m_batched", 1, 0, 0);
    static const struct {
        const char *what, *to;
        int passes;
    } cases[] = {
        {"exit predicate combined by setp.and",
         "setp.lt.u32 %p1, %r2, %r1;\nsetp.ne.and.u32 %p2, %r2, 999, %p1;\n@%p2 bra LOOP;", 1},
        {"exit predicate through a vote",
         "setp.lt.u32 %p1, %r2, %r1;\nvote.sync.any.pred %p2, %p1, -1;\n@%p2 bra LOOP;", 1},
        {"down-counter from m_dim",
         "add.s32 %r1, %r1, -1;\nsetp.ne.u32 %p1, %r1, 0;\n@%p1 bra LOOP;", 1},
        /* the m_dim compare only guards an if inside a loop bounded by a constant */
        {"m_dim compare inside, not the exit",
         "setp.lt.u32 %p3, %r2, %r1;\n@%p3 bra SKIP;\nadd.s32 %r3, %r3, 1;\nSKIP:\n"
         "setp.lt.u32 %p1, %r2, 100;\n@%p1 bra LOOP;", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = replace_once(mdim_ptr_ptx, MDIM_EXIT, cases[i].to);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        expect_text(cases[i].what, t, "kd_m", "kd_m_batched", cases[i].passes,
                    KD_PTX_RULE_BATCH_DISPATCH, 0);
        free(t);
    }
    /* a loop tested at the top, left by a forward branch, closed by bra.uni */
    char *t = replace_once(mdim_ptr_ptx,
                           "LOOP:\nst.global.u32 [%rd2], 0;\nadd.s64 %rd2, %rd2, 64;\n"
                           "add.s32 %r2, %r2, 1;\n" MDIM_EXIT,
                           "LOOP:\nsetp.ge.u32 %p1, %r2, %r1;\n@%p1 bra DONE;\n"
                           "st.global.u32 [%rd2], 0;\nadd.s64 %rd2, %rd2, 64;\n"
                           "add.s32 %r2, %r2, 1;\nbra.uni LOOP;\nDONE:");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    expect_text("top-tested loop", t, "kd_m", "kd_m_batched", 1, 0, 0);
    free(t);
    /* the pointer is not advanced (every row the same address) */
    t = replace_once(mdim_ptr_ptx, "add.s64 %rd2, %rd2, 64;", "add.s64 %rd3, %rd2, 64;");
    expect_text("pointer not advanced", t, "kd_m", "kd_m_batched", 0, KD_PTX_RULE_BATCH_DISPATCH,
                0);
    free(t);
    /* the advanced pointer reaches only a shared address */
    t = replace_once(mdim_ptr_ptx, "LOOP:\nst.global.u32 [%rd2], 0;",
                     "LOOP:\nst.global.u32 [%rd1], 0;\n{ .reg .b32 %s;\ncvt.u32.u64 %s, %rd2;\n"
                     "st.shared.u32 [%s], 0; }");
    expect_text("advanced pointer, shared only", t, "kd_m", "kd_m_batched", 0,
                KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(t);
}

static void test_rule1_m_dim(void)
{
    expect_text("m_dim bounds the row loop", mdim_ptx, "kd_m", "kd_m_batched", 1, 0, 0);
    kd_ptx_module *m = parse_str(mdim_ptx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    kd_ptx_report *r = check_one(m, "kd_m", "kd_m_batched", NULL);
    const kd_ptx_kernel_facts *bf = &r->pairs[0].comparisons[0].batched;
    CU_ASSERT_STRING_EQUAL(bf->mechanism, "param m_dim");
    CU_ASSERT_EQUAL(bf->mechanism_line, line_of(mdim_ptx, "st.global.u32 [%rd4]"));
    kd_ptx_report_free(r);
    kd_ptx_module_free(m);
    /* the compare feeds a forward branch only: no loop over rows */
    char *t = replace_once(mdim_ptx, "@%p1 bra LOOP;\nret;", "@%p1 bra DONE;\nDONE:\nret;");
    expect_text("m_dim, no loop", t, "kd_m", "kd_m_batched", 0, KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(t);
    /* nvcc's own name of the parameter the batched kernel adds: m_dim by position */
    t = replace_all(mdim_ptx, "m_dim", "kd_m_batched_param_1");
    expect_text("nvcc name, added parameter", t, "kd_m", "kd_m_batched", 1, 0, 0);
    /* ... not when the single kernel has it too (nothing added) */
    char *t2 = replace_once(t, ".entry kd_m(.param .u64 kd_m_param_0)",
                            ".entry kd_m(.param .u64 kd_m_param_0, .param .u32 kd_m_param_1)");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t2);
    expect_text("nvcc name, nothing added", t2, "kd_m", "kd_m_batched", 0,
                KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(t2);
    free(t);
    /* the exact-name rule: "<kernel>_param_1" of another kernel whose name contains m_dim
     * does not count, nor a case-insensitive spelling */
    t = replace_all(mdim_ptx, "m_dim", "kd_m_dim_batched_param_1");
    expect_text("nvcc name, m_dim in kernel name", t, "kd_m", "kd_m_batched", 0,
                KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(t);
    t = replace_all(mdim_ptx, "m_dim", "M_DIM");
    expect_text("M_DIM", t, "kd_m", "kd_m_batched", 0, KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(t);
    t = replace_all(mdim_ptx, "m_dim", "kd_m_batched_m_dim");
    expect_text("suffix _m_dim", t, "kd_m", "kd_m_batched", 1, 0, 0);
    free(t);
    CU_ASSERT_TRUE(flow_is_m_dim_param("m_dim"));
    CU_ASSERT_TRUE(flow_is_m_dim_param("k_m_dim"));
    CU_ASSERT_FALSE(flow_is_m_dim_param("m_dims"));
    CU_ASSERT_FALSE(flow_is_m_dim_param("xm_dim"));
    CU_ASSERT_FALSE(flow_is_m_dim_param("kd_m_dim_param_3"));
}

/* the batch index stored by a helper through a pointer to the caller's local variable
 * (nvcc -rdc, __noinline__ helpers with out-parameters) */
static const char *outparam_ptx =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".func put_row(.param .b64 put_row_param_0)\n{\n.reg .b32 %r<3>;\n.reg .b64 %rd<3>;\n"
    "ld.param.u64 %rd1, [put_row_param_0];\ncvta.to.local.u64 %rd2, %rd1;\n"
    "mov.u32 %r1, %ctaid.y;\nshl.b32 %r2, %r1, 3;\nst.local.u32 [%rd2], %r2;\nret;\n}\n"
    ".visible .entry kd_o(.param .u64 kd_o_param_0)\n{\n.reg .b64 %rd<3>;\n"
    "ld.param.u64 %rd1, [kd_o_param_0];\ncvta.to.global.u64 %rd2, %rd1;\n"
    "st.global.u32 [%rd2], 0;\nret;\n}\n"
    ".visible .entry kd_o_batched(.param .u64 kd_o_batched_param_0)\n{\n"
    ".local .align 4 .b8 __local_depot1[8];\n.reg .b64 %SP;\n.reg .b64 %SPL;\n"
    ".reg .b32 %r<3>;\n.reg .b64 %rd<8>;\nmov.u64 %SPL, __local_depot1;\n"
    "cvta.local.u64 %SP, %SPL;\nld.param.u64 %rd1, [kd_o_batched_param_0];\n"
    "add.u64 %rd3, %SP, 4;\nadd.u64 %rd4, %SPL, 4;\n"
    "{\n.param .b64 param0;\nst.param.b64 [param0+0], %rd3;\ncall.uni put_row, (param0);\n}\n"
    "ld.local.u32 %r1, [%rd4];\ncvta.to.global.u64 %rd2, %rd1;\nmul.wide.u32 %rd5, %r1, 4;\n"
    "add.s64 %rd6, %rd2, %rd5;\nst.global.u32 [%rd6], 0;\nret;\n}\n";

static void test_rule1_out_parameter(void)
{
    expect_text("out-parameter", outparam_ptx, "kd_o", "kd_o_batched", 1, 0, 0);
    /* the helper stores through the generic pointer itself */
    char *t = replace_once(outparam_ptx, "st.local.u32 [%rd2], %r2;", "st.u32 [%rd1], %r2;");
    expect_text("out-parameter, generic store", t, "kd_o", "kd_o_batched", 1, 0, 0);
    free(t);
    /* the helper stores %tid.x: no batch index */
    t = replace_once(outparam_ptx, "%ctaid.y", "%tid.x");
    expect_text("out-parameter, tid.x", t, "kd_o", "kd_o_batched", 0, KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(t);
    /* the caller reads another slot of its frame */
    t = replace_once(outparam_ptx, "add.u64 %rd4, %SPL, 4;", "add.u64 %rd4, %SPL, 0;");
    expect_text("out-parameter, other slot", t, "kd_o", "kd_o_batched", 0,
                KD_PTX_RULE_BATCH_DISPATCH, 0);
    free(t);
}

/* rule 2 with scopes, local memory, .func parameters and return values */
static const char *r2_head =
    ".version 8.0\n.target sm_80\n.address_size 64\n"
    ".shared .align 4 .b8 sm[64];\n"
    ".visible .entry kd_s(.param .u64 kd_s_param_0)\n{\n.reg .b32 %r<4>;\n.reg .f32 %f<2>;\n"
    "mov.u32 %r1, sm;\nld.shared.f32 %f1, [%r1];\nmov.u32 %r2, %ctaid.y;\nret;\n}\n";

static char *r2_text(const char *batched_body, const char *extra)
{
    size_t n = strlen(r2_head) + strlen(batched_body) + strlen(extra) + 512;
    char *t = malloc(n);
    snprintf(t, n,
             "%s%s.visible .entry kd_s_batched(.param .u64 kd_s_batched_param_0)\n{\n"
             ".reg .pred %%p<2>;\n.reg .b32 %%r<8>;\n.reg .f32 %%f<4>;\n.reg .b64 %%rd<12>;\n"
             ".local .align 8 .b8 __local_depot0[16];\n"
             "ld.param.u64 %%rd1, [kd_s_batched_param_0];\ncvta.to.global.u64 %%rd2, %%rd1;\n"
             "mov.u32 %%r1, %%ctaid.y;\nmul.wide.u32 %%rd3, %%r1, 4;\nadd.s64 %%rd4, %%rd2, %%rd3;\n"
             "ld.global.f32 %%f3, [%%rd4];\n%s"
             "mov.u32 %%r2, sm;\nld.shared.f32 %%f1, [%%r2];\nret;\n}\n",
             r2_head, extra, batched_body);
    return t;
}

static void expect_r2(const char *what, const char *body, const char *extra, int passed,
                      const char *bad_line)
{
    char *t = r2_text(body, extra);
    expect_text(what, t, "kd_s", "kd_s_batched", passed, KD_PTX_RULE_SHARED_U64,
                bad_line ? line_of(t, bad_line) : 0);
    free(t);
}

static void test_rule2_flow(void)
{
    expect_r2("plain", "", "", 1, NULL);
    /* scoping: an inner block's 64-bit %t shadows the outer 32-bit %t ... */
    expect_r2("inner 64-bit shadow", ".reg .b32 %t;\n{\n.reg .b64 %t;\nmov.u64 %t, sm;\n"
              "ld.shared.f32 %f2, [%t];\n}\n", "", 0, "[%t];");
    /* ... and outside the block the 32-bit one is meant again (declared after) */
    expect_r2("outer 32-bit after inner", "{\n.reg .b64 %t;\nmov.u64 %t, 0;\n}\n.reg .b32 %t;\n"
              "mov.u32 %t, sm;\nld.shared.f32 %f2, [%t];\n", "", 1, NULL);
    /* a shared-window address (no cvta.shared) spilled to local memory, reloaded and
     * used as a generic pointer */
    expect_r2("through local memory",
              "mov.u64 %rd5, sm;\nmov.u64 %rd6, %rd5;\n"
              "st.local.u64 [__local_depot0+8], %rd6;\nld.local.u64 %rd7, [__local_depot0+8];\n"
              "ld.f32 %f2, [%rd7];\n", "", 0, "ld.f32 %f2, [%rd7];");
    /* another slot holds a global pointer: fine */
    expect_r2("other local slot",
              "mov.u64 %rd5, sm;\ncvta.shared.u64 %rd6, %rd5;\n"
              "st.local.u64 [__local_depot0+8], %rd6;\nst.local.u64 [__local_depot0+0], %rd2;\n"
              "ld.local.u64 %rd7, [__local_depot0+0];\nld.f32 %f2, [%rd7];\n", "", 1, NULL);
    /* through a .func parameter */
    const char *callee = ".func use_p(.param .b64 use_p_param_0)\n{\n.reg .b64 %rd<2>;\n"
                         ".reg .f32 %f<2>;\nld.param.u64 %rd1, [use_p_param_0];\n"
                         "ld.f32 %f1, [%rd1];\nret;\n}\n";
    expect_r2("through a .func parameter",
              "mov.u64 %rd5, sm;\nmov.u64 %rd6, %rd5;\n{\n.param .b64 param0;\n"
              "st.param.b64 [param0+0], %rd6;\ncall.uni use_p, (param0);\n}\n",
              callee, 0, "call.uni use_p");
    expect_r2("global pointer to the same .func",
              "{\n.param .b64 param0;\nst.param.b64 [param0+0], %rd2;\ncall.uni use_p, (param0);\n}\n",
              callee, 1, NULL);
    /* through a .reg parameter and a .reg return value */
    const char *reg_callee = ".func (.reg .b64 %rv) use_r(.reg .b64 %pa)\n{\n.reg .f32 %f<2>;\n"
                             "ld.f32 %f1, [%pa];\nmov.b64 %rv, %pa;\nret;\n}\n";
    expect_r2("through a .reg parameter",
              "mov.u64 %rd5, sm;\nmov.u64 %rd6, %rd5;\n"
              "call.uni (%rd9), use_r, (%rd6);\n", reg_callee, 0, "call.uni (%rd9)");
    expect_r2("a .reg return value", "mov.u64 %rd5, sm;\ncvta.shared.u64 %rd6, %rd5;\n"
              "call.uni (%rd9), use_r, (%rd2);\nld.f32 %f2, [%rd9];\n", reg_callee, 1, NULL);
    /* through a return value */
    const char *ret_fn = ".func (.param .b64 get_p_retval0) get_p()\n{\n.reg .b64 %rd<3>;\n"
                         "mov.u64 %rd1, sm;\nmov.u64 %rd2, %rd1;\n"
                         "st.param.b64 [get_p_retval0+0], %rd2;\nret;\n}\n";
    expect_r2("through a return value",
              "{\n.param .b64 retval0;\ncall.uni (retval0), get_p, ();\n"
              "ld.param.b64 %rd8, [retval0+0];\n}\nld.f32 %f2, [%rd8];\n",
              ret_fn, 0, "ld.f32 %f2, [%rd8];");
    /* a shared address computed in 64 bits, then used through a 32-bit register */
    expect_r2("computed in 64 bits", "mov.u64 %rd5, sm;\nadd.s64 %rd6, %rd5, 8;\n"
              "cvt.u32.u64 %r3, %rd6;\nld.shared.f32 %f2, [%r3];\n", "", 0, "[%r3];");
    /* nvcc's idiom: cvta.to.shared in a scoped 64-bit temporary, then 32 bits: fine */
    expect_r2("cvta.to.shared idiom", "mov.u64 %rd5, sm;\ncvta.shared.u64 %rd6, %rd5;\n"
              "{ .reg .b64 %tmp;\ncvta.to.shared.u64 %tmp, %rd6;\ncvt.u32.u64 %r3, %tmp; }\n"
              "ld.shared.f32 %f2, [%r3];\n", "", 1, NULL);
}

/* rule 3 with dynamic shared memory */
static void test_rule3_dynamic(void)
{
    const char *dyn = "mov.u32 %r3, dsm;\nld.shared.f32 %f2, [%r3];\n";
    char *t = r2_text(dyn, ".extern .shared .align 4 .b8 dsm[];\n");
    expect_text("dynamic in batched only", t, "kd_s", "kd_s_batched", 0, KD_PTX_RULE_SHARED_SIZE, 0);
    /* used by both: fine */
    char *t2 = replace_once(t, "mov.u32 %r2, %ctaid.y;", "mov.u32 %r2, dsm;");
    expect_text("dynamic in both", t2, "kd_s", "kd_s_batched", 1, 0, 0);
    free(t2);
    free(t);
}

/* pairing: every definition in every file, in any order; duplicates and .func members */
static void test_pairing_every_definition(void)
{
    char *base = read_fixture("nvcc_base.ptx");
    char *bad = replace_once(base, BASE_CTAID, BASE_CTAIDX);
    /* a second file defining only the (bad) batched kernel */
    const char *b = strstr(bad, "\t// .globl\tkd_demo_batched");
    const char *s = strstr(bad, "\t// .globl\tkd_demo\n");
    size_t hl = (size_t)(s - bad);
    char *only_b = malloc(hl + strlen(b) + 1);
    memcpy(only_b, bad, hl);
    strcpy(only_b + hl, b);
    kd_ptx_module *good = parse_str(base), *ob = parse_str(only_b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(good);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    kd_ptx_pair_def pair = {"demo", "kd_demo", "kd_demo_batched"};
    const kd_ptx_module *orders[2][2] = {{good, ob}, {ob, good}};
    for (int o = 0; o < 2; o++) {
        kd_ptx_report *r = NULL;
        CU_ASSERT_EQUAL_FATAL(kd_ptx_check_pairs(orders[o], NULL, 2, &pair, 1, NULL, &r), KD_OK);
        CU_ASSERT_EQUAL(r->pairs[0].n_comparisons, 2);
        CU_ASSERT_FALSE(kd_ptx_report_ok(r));
        kd_ptx_report_free(r);
    }
    kd_ptx_module_free(ob);
    kd_ptx_module_free(good);
    free(only_b);
    /* a duplicate definition in one file */
    const char *bb = strstr(base, "\t// .globl\tkd_demo_batched");
    size_t n = strlen(base);
    char *dup = malloc(n + strlen(bb) + 1);
    memcpy(dup, base, n);
    strcpy(dup + n, bb);
    expect_text("duplicate definition", dup, "kd_demo", "kd_demo_batched", 0,
                KD_PTX_RULE_DUPLICATE, 0);
    free(dup);
    /* the batched member as a .func */
    char *fn = replace_once(base, ".visible .entry kd_demo_batched(", ".visible .func kd_demo_batched(");
    expect_text(".func member", fn, "kd_demo", "kd_demo_batched", 0, KD_PTX_RULE_NOT_KERNEL,
                line_of(fn, ".func kd_demo_batched("));
    free(fn);
    free(bad);
    free(base);
}

/* statements that cross a batch boundary of the lexer (a line ending in '{' inside an
 * initializer or an operand): parsed whole, in both the full and the lazy parse */
static void test_parse_statements_across_batches(void)
{
    const char *text =
        ".version 8.0\n.target sm_80\n.address_size 64\n"
        ".global .align 4 .b8 tab[4] = {\n1, 2,\n3, 4};\n"
        ".visible .entry k(.param .u64 k_param_0)\n{\n.reg .b32 %r<4>;\n.reg .b64 %rd<3>;\n"
        "mov.b64 {\n%r1, %r2}, %rd1;\nld.global.v2.u32 {%r1,\n%r2}, [%rd2+8];\nret;\n}\n";
    kd_ptx_module *m = parse_str(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    const kd_ptx_func *k = kd_ptx_find_func(m, "k");
    CU_ASSERT_EQUAL_FATAL(k->n_insns, 3);
    CU_ASSERT_EQUAL(k->insns[0].ops[0].kind, KD_PTX_OPND_VEC);
    CU_ASSERT_EQUAL(k->insns[0].ops[0].n_items, 2);
    CU_ASSERT_STRING_EQUAL(k->insns[0].ops[1].base, "%rd1");
    CU_ASSERT_STRING_EQUAL(k->insns[1].ops[1].base, "%rd2");
    CU_ASSERT_EQUAL(k->insns[1].ops[1].offset, 8);
    kd_ptx_module *lz = NULL;
    kd_ptx_error e;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_parse_lazy("lazy.ptx", text, strlen(text), &lz, &e), KD_OK);
    const kd_ptx_func *lk = kd_ptx_find_func(lz, "k"), *g = NULL;
    CU_ASSERT_EQUAL(lk->n_insns, 0); /* the lazy parse keeps no instructions */
    kd_ptx_body *body = NULL;
    CU_ASSERT_EQUAL_FATAL(kd_ptx_func_load(lz, lk, &g, &body), KD_OK);
    CU_ASSERT_EQUAL(g->n_insns, 3);
    CU_ASSERT_EQUAL(g->insns[2].line, k->insns[2].line);
    kd_ptx_body_free(body);
    /* the lazy parse refuses what the full one refuses, with the same line */
    const char *bad = ".version 8.0\n.target sm_80\n.address_size 64\n"
                      ".visible .entry k()\n{\nmov.u32 %r1, [];\nret;\n}\n";
    kd_ptx_module *b1 = NULL, *b2 = NULL;
    kd_ptx_error e1, e2;
    CU_ASSERT_EQUAL(kd_ptx_parse("b", bad, strlen(bad), &b1, &e1), KD_ERR_FORMAT);
    CU_ASSERT_EQUAL(kd_ptx_parse_lazy("b", bad, strlen(bad), &b2, &e2), KD_ERR_FORMAT);
    CU_ASSERT_EQUAL(e1.line, 6);
    CU_ASSERT_EQUAL(e2.line, 6);
    CU_ASSERT_STRING_EQUAL(e1.msg, e2.msg);
    kd_ptx_module_free(lz);
    kd_ptx_module_free(m);
}

/* inputs that are not regular files are refused before reading */
static void test_parse_file_refusals(void)
{
    const char *paths[] = {"/dev/zero", "/tmp", DATA_DIR};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        kd_ptx_module *m = NULL;
        kd_ptx_error e;
        CU_ASSERT_EQUAL(kd_ptx_parse_file(paths[i], &m, &e), KD_ERR_IO);
        CU_ASSERT_PTR_NULL(m);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "not a") != NULL ? e.msg : NULL);
    }
    /* a (sparse) file over the 512 MiB cap: refused from its size, nothing read */
    char path[] = "/tmp/kd_ptx_big_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(ftruncate(fd, (off_t)600 << 20), 0);
    close(fd);
    kd_ptx_module *m = NULL;
    kd_ptx_error e;
    CU_ASSERT_EQUAL(kd_ptx_parse_file(path, &m, &e), KD_ERR_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "larger than"));
    CU_ASSERT_EQUAL(kd_ptx_parse_file_lazy(path, &m, &e), KD_ERR_TOO_LARGE);
    unlink(path);
}

int main(void)
{
    size_t len;
    pair_text = kd_test_read_file(DATA_DIR "pair_ok.ptx", &len);
    if (!pair_text) {
        fprintf(stderr, "cannot read " DATA_DIR "pair_ok.ptx\n");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("ptx_check", NULL, NULL);
    CU_add_test(s, "parser: pair fixture", test_parse_pair_fixture);
    CU_add_test(s, "parser: features fixture", test_parse_features_fixture);
    CU_add_test(s, "parser: comments and line numbers", test_parse_comments_and_lines);
    CU_add_test(s, "parser: malformed input refused with line numbers",
                test_parse_errors_have_lines);
    CU_add_test(s, "provenance of shared addresses", test_provenance);
    CU_add_test(s, "provenance along a long backward chain", test_provenance_long_backward_chain);
    CU_add_test(s, "rule 2: 64-bit shared accesses and their lines", test_rule_shared_u64_lines);
    CU_add_test(s, "rule 2: ::cta, ldmatrix, mbarrier, volatile forms",
                test_rule_shared_u64_other_forms);
    CU_add_test(s, "fixture pair passes", test_fixture_pair_passes);
    CU_add_test(s, "rule 1 fails: %ctaid.y removed", test_rule1_ctaid_removed);
    CU_add_test(s, "rule 2 fails: shared through a 64-bit register", test_rule2_shared_through_u64);
    CU_add_test(s, "rule 3 fails: shared array resized", test_rule3_shared_resized);
    CU_add_test(s, "no input: no pairs compared, not a pass", test_no_input_is_never_a_pass);
    CU_add_test(s, "missing kernel fails its pair", test_missing_kernel_fails_pair);
    CU_add_test(s, "kernels looked up across modules", test_pair_across_modules);
    CU_add_test(s, "ptxas output parsing", test_ptxas_output_parse);
    CU_add_test(s, "ptxas warnings, --strict", test_ptxas_warnings_and_strict);
    CU_add_test(s, "ptxas run (where present)", test_ptxas_real_if_present);
    CU_add_test(s, "JSON escaping", test_json_escapes_line_text);
    CU_add_test(s, "command: help, text, JSON, errors, usage", test_command);
    CU_add_test(s, "command: --from-opencl", test_from_opencl);
    CU_add_test(s, "mutations: nvcc builds", test_nvcc_builds);
    CU_add_test(s, "mutations: -rdc helpers in another file", test_rdc_across_files);
    CU_add_test(s, "mutations: rule 1 needs a global address", test_rule1_not_global);
    CU_add_test(s, "mutations: clang OpenCL PTX", test_clang_opencl_ptx);
    CU_add_test(s, "mutations: clang PTX, get_group_id calls", test_clang_get_group_id_call);
    CU_add_test(s, "mutations: rule 1 is data flow", test_rule1_data_flow);
    CU_add_test(s, "mutations: harmless rewrites pass", test_harmless_rewrites);
    CU_add_test(s, "mutations: rule 1 m_dim", test_rule1_m_dim);
    CU_add_test(s, "mutations: rule 1 m_dim, pointer loops", test_rule1_m_dim_pointer_loops);
    CU_add_test(s, "mutations: rule 1 through out-parameters", test_rule1_out_parameter);
    CU_add_test(s, "mutations: rule 2 scopes, local memory, calls", test_rule2_flow);
    CU_add_test(s, "mutations: rule 3 dynamic shared", test_rule3_dynamic);
    CU_add_test(s, "mutations: every definition, duplicates, .func", test_pairing_every_definition);
    CU_add_test(s, "parser: non-regular files refused", test_parse_file_refusals);
    CU_add_test(s, "parser: statements across lexer batches, lazy parse",
                test_parse_statements_across_batches);
    int rc = kd_test_main();
    free(pair_text);
    return rc;
}
