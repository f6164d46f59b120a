/*
 * libFuzzer target: any bytes go through the parser; what parses goes through the whole
 * checker (provenance, facts, the built-in pairs and pairs made of its own functions) and
 * both report formats. Build with -DKD_FUZZ=ON and clang; see README.md for the command.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ptx_check.h"

static FILE *null_out(void)
{
    static FILE *f;
    if (!f)
        f = fopen("/dev/null", "w");
    return f;
}

static void exercise_functions(const kd_ptx_module *m)
{
    char line[256];
    for (int i = 0; i < m->n_funcs; i++) {
        const kd_ptx_func *f = &m->funcs[i];
        kd_ptx_kernel_facts facts;
        kd_ptx_violation *v = NULL;
        int nv = 0;
        if (kd_ptx_analyze_kernel(m, f, &facts, &v, &nv) == KD_OK)
            free(v);
        for (int j = 0; j < f->n_insns; j++) {
            kd_ptx_line_text(m, f->insns[j].line, line, sizeof line);
            for (int k = 0; k < f->insns[j].n_ops; k++)
                kd_ptx_find_reg(f, f->insns[j].ops[k].base);
        }
    }
}

/* The lazy parse accepts exactly what the full one does, and every body it skipped
 * reads back to the same instructions. */
static void exercise_lazy(const kd_ptx_module *full, const uint8_t *data, size_t size)
{
    kd_ptx_module *m = NULL;
    kd_ptx_error err;
    if (kd_ptx_parse_lazy("fuzz.ptx", (const char *)data, size, &m, &err) != KD_OK)
        abort(); /* the full parse accepted it */
    if (m->n_funcs != full->n_funcs)
        abort();
    for (int i = 0; i < m->n_funcs; i++) {
        const kd_ptx_func *g = NULL;
        kd_ptx_body *body = NULL;
        if (kd_ptx_func_load(m, &m->funcs[i], &g, &body) != KD_OK ||
            g->n_insns != full->funcs[i].n_insns)
            abort();
        for (int j = 0; j < g->n_insns; j++)
            kd_ptx_find_reg_in_scope(g, g->insns[j].n_ops ? g->insns[j].ops[0].base : NULL,
                                     g->insns[j].scope);
        kd_ptx_body_free(body);
    }
    kd_ptx_module_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kd_ptx_module *m = NULL;
    kd_ptx_error err;
    if (kd_ptx_parse("fuzz.ptx", (const char *)data, size, &m, &err) != KD_OK)
        return 0;
    exercise_functions(m);
    exercise_lazy(m, data, size);
    kd_ptx_pair_def pairs[KD_PTX_BUILTIN_PAIRS + 2];
    int n = 0;
    for (; n < KD_PTX_BUILTIN_PAIRS; n++)
        pairs[n] = kd_ptx_builtin_pairs[n];
    if (m->n_funcs >= 2) {
        pairs[n++] = (kd_ptx_pair_def){"a", m->funcs[0].name, m->funcs[1].name};
        pairs[n++] = (kd_ptx_pair_def){"b", m->funcs[1].name, m->funcs[0].name};
    }
    const kd_ptx_module *mods[2] = {m, m};
    kd_ptx_check_options opt = {.reg_factor = 1.5, .strict = 1};
    kd_ptx_report *r = NULL;
    if (kd_ptx_check_pairs(mods, NULL, 2, pairs, n, &opt, &r) == KD_OK) {
        FILE *out = null_out();
        if (out) {
            kd_ptx_report_print_text(r, out);
            kd_ptx_report_print_json(r, out);
        }
        kd_ptx_report_free(r);
    }
    kd_ptx_module_free(m);
    return 0;
}
