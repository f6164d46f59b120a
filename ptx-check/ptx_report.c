/* The parity report as text (a line per pair, details below it, the summary line) and
 * as JSON. */
#include "ptx_check.h"
#include "kd_json.h"

#include <string.h>

static void print_violation(const kd_ptx_violation *v, FILE *out)
{
    fprintf(out, "     rule %d %s: %s", v->rule, kd_ptx_rule_name(v->rule), v->kernel);
    if (v->line > 0)
        fprintf(out, " at %s:%d: `%s`", v->file, v->line, v->text);
    fprintf(out, " -- %s\n", v->detail);
}

static void print_res_pair(const kd_ptx_comparison *c, FILE *out)
{
    const kd_ptx_resources *s = &c->single.res, *b = &c->batched.res;
    if (!s->valid || !b->valid)
        return;
    fprintf(out,
            "; ptxas: registers %d/%d, spill %d/%d bytes, smem %d/%d bytes, local %d/%d bytes",
            s->registers, b->registers, s->spill_store_bytes + s->spill_load_bytes,
            b->spill_store_bytes + b->spill_load_bytes, s->shared_bytes, b->shared_bytes,
            s->local_bytes, b->local_bytes);
}

static void print_comparison(const kd_ptx_comparison *c, FILE *out)
{
    fprintf(out, "     %s %s", c->passed ? "pass" : "FAIL", c->single.file);
    if (strcmp(c->single.file, c->batched.file) != 0)
        fprintf(out, " + %s", c->batched.file);
    fprintf(out, " (%s): mechanism %s", c->batched.target,
            c->batched.mechanism[0] ? c->batched.mechanism : "none");
    if (c->batched.mechanism_line)
        fprintf(out, " (line %d; path %s)", c->batched.mechanism_line,
                c->batched.mechanism_path);
    fprintf(out, ", static shared %llu/%llu bytes%s, shared accesses %d/%d",
            c->single.static_shared_bytes, c->batched.static_shared_bytes,
            c->single.dynamic_shared || c->batched.dynamic_shared ? " (+ dynamic)" : "",
            c->single.shared_accesses, c->batched.shared_accesses);
    print_res_pair(c, out);
    fputc('\n', out);
    for (int i = 0; i < c->n_violations; i++)
        print_violation(&c->violations[i], out);
    for (int i = 0; i < c->n_warnings; i++)
        fprintf(out, "     warning: %s\n", c->warnings[i]);
}

static void print_pair(const kd_ptx_pair_result *p, FILE *out)
{
    fprintf(out, "%s %s: %s / %s", p->passed ? "PASS" : "FAIL", p->label, p->single, p->batched);
    if (!p->compared) {
        fprintf(out, "  not compared: %s\n", p->missing);
        return;
    }
    const kd_ptx_comparison *c0 = &p->comparisons[0];
    int violations = 0;
    for (int i = 0; i < p->n_comparisons; i++)
        violations += p->comparisons[i].n_violations;
    fprintf(out, "  mechanism=%s shared=%llu/%llu bytes violations=%d",
            c0->batched.mechanism[0] ? c0->batched.mechanism : "none",
            c0->single.static_shared_bytes, c0->batched.static_shared_bytes, violations);
    if (p->n_comparisons > 1)
        fprintf(out, " (%d modules)", p->n_comparisons);
    fputc('\n', out);
    for (int i = 0; i < p->n_comparisons; i++)
        print_comparison(&p->comparisons[i], out);
}

void kd_ptx_report_print_text(const kd_ptx_report *r, FILE *out)
{
    if (!r || !out)
        return;
    for (int i = 0; i < r->n_notes; i++)
        fprintf(out, "note: %s\n", r->notes[i]);
    for (int i = 0; i < r->n_errors; i++)
        fprintf(out, "error: %s\n", r->errors[i]);
    for (int i = 0; i < r->n_pairs; i++)
        print_pair(&r->pairs[i], out);
    char summary[128];
    kd_ptx_report_summary(r, summary, sizeof summary);
    fprintf(out, "%s\n", summary);
    if (r->n_compared == 0)
        fprintf(out, "no pairs compared: this is not a pass\n");
}

/* ---- JSON ------------------------------------------------------------------------------------ */

/* NULL as "" (the report's texts are fixed arrays; a missing one is empty). */
static void json_str(const char *s, FILE *out) { kd_json_write_str(out, s ? s : ""); }

static void json_strings(const char (*list)[KD_PTX_TEXT_MAX], int n, FILE *out)
{
    fputc('[', out);
    for (int i = 0; i < n; i++) {
        if (i)
            fputc(',', out);
        json_str(list[i], out);
    }
    fputc(']', out);
}

static void json_facts(const kd_ptx_kernel_facts *k, FILE *out)
{
    fputs("{\"name\":", out);
    json_str(k->name, out);
    fputs(",\"file\":", out);
    json_str(k->file, out);
    fputs(",\"target\":", out);
    json_str(k->target, out);
    fprintf(out, ",\"line\":%d,\"mechanism\":", k->line);
    if (k->mechanism[0])
        json_str(k->mechanism, out);
    else
        fputs("null", out);
    fputs(",\"mechanism_path\":", out);
    json_str(k->mechanism_path, out);
    fprintf(out,
            ",\"mechanism_line\":%d,\"static_shared_bytes\":%llu,\"dynamic_shared\":%s,"
            "\"shared_accesses\":%d,\"ptxas\":",
            k->mechanism_line, k->static_shared_bytes, k->dynamic_shared ? "true" : "false",
            k->shared_accesses);
    if (k->res.valid)
        fprintf(out,
                "{\"registers\":%d,\"spill_store_bytes\":%d,\"spill_load_bytes\":%d,"
                "\"shared_bytes\":%d,\"local_bytes\":%d}",
                k->res.registers, k->res.spill_store_bytes, k->res.spill_load_bytes,
                k->res.shared_bytes, k->res.local_bytes);
    else
        fputs("null", out);
    fputc('}', out);
}

static void json_violation(const kd_ptx_violation *v, FILE *out)
{
    fprintf(out, "{\"rule\":%d,\"rule_name\":", v->rule);
    json_str(kd_ptx_rule_name(v->rule), out);
    fputs(",\"kernel\":", out);
    json_str(v->kernel, out);
    fputs(",\"file\":", out);
    json_str(v->file, out);
    fprintf(out, ",\"line\":%d,\"text\":", v->line);
    json_str(v->text, out);
    fputs(",\"detail\":", out);
    json_str(v->detail, out);
    fputc('}', out);
}

static void json_comparison(const kd_ptx_comparison *c, FILE *out)
{
    fprintf(out, "{\"passed\":%s,\"single\":", c->passed ? "true" : "false");
    json_facts(&c->single, out);
    fputs(",\"batched\":", out);
    json_facts(&c->batched, out);
    fputs(",\"violations\":[", out);
    for (int i = 0; i < c->n_violations; i++) {
        if (i)
            fputc(',', out);
        json_violation(&c->violations[i], out);
    }
    fputs("],\"warnings\":", out);
    json_strings((const char(*)[KD_PTX_TEXT_MAX])c->warnings, c->n_warnings, out);
    fputc('}', out);
}

static void json_pair(const kd_ptx_pair_result *p, FILE *out)
{
    fputs("{\"label\":", out);
    json_str(p->label, out);
    fputs(",\"single\":", out);
    json_str(p->single, out);
    fputs(",\"batched\":", out);
    json_str(p->batched, out);
    fprintf(out, ",\"compared\":%s,\"passed\":%s,\"missing\":", p->compared ? "true" : "false",
            p->passed ? "true" : "false");
    if (p->compared)
        fputs("null", out);
    else
        json_str(p->missing, out);
    fputs(",\"comparisons\":[", out);
    for (int i = 0; i < p->n_comparisons; i++) {
        if (i)
            fputc(',', out);
        json_comparison(&p->comparisons[i], out);
    }
    fputs("]}", out);
}

void kd_ptx_report_print_json(const kd_ptx_report *r, FILE *out)
{
    if (!r || !out)
        return;
    char summary[128];
    kd_ptx_report_summary(r, summary, sizeof summary);
    fputs("{\"summary\":", out);
    json_str(summary, out);
    fprintf(out,
            ",\"ok\":%s,\"pairs_total\":%d,\"pairs_passed\":%d,\"pairs_compared\":%d,"
            "\"no_pairs_compared\":%s,\"strict\":%s,\"reg_factor\":%.3f,\"notes\":",
            kd_ptx_report_ok(r) ? "true" : "false", r->n_pairs, r->n_passed, r->n_compared,
            r->n_compared == 0 ? "true" : "false", r->strict ? "true" : "false", r->reg_factor);
    json_strings((const char(*)[KD_PTX_TEXT_MAX])r->notes, r->n_notes, out);
    fputs(",\"errors\":", out);
    json_strings((const char(*)[KD_PTX_TEXT_MAX])r->errors, r->n_errors, out);
    fputs(",\"pairs\":[", out);
    for (int i = 0; i < r->n_pairs; i++) {
        if (i)
            fputc(',', out);
        json_pair(&r->pairs[i], out);
    }
    fputs("]}\n", out);
}
