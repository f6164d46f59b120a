/* kdispatch compare's report writers: the table (printed as the checks are made) and the
 * JSON document, both from the structured results of compare_core.c. */
#include <inttypes.h>
#include <string.h>

#include "compare_internal.h"
#include "kd_json.h"
#include "op_traits.h"

static const char *kernel_of(const kd_compare_check *c) { return c->m == 1 ? "single" : "batched"; }

static const char *variant_name(const kd_compare_result *r, int i)
{
    return i < 0 ? "oracle" : r->variants[i].name;
}

/* ---- text ---------------------------------------------------------------------------------- */

static void size_text(const kd_compare_check *c, char *buf, size_t cap)
{
    if (kd_op_is_gemv(c->op))
        snprintf(buf, cap, "%" PRId64 "x%" PRId64, c->n, c->k);
    else
        snprintf(buf, cap, "%" PRId64, c->n);
}

static const char *result_word(const kd_compare_check *c)
{
    if (c->no_input)
        return "NO-INPUT";
    if (c->pass)
        return "pass";
    return c->reference < 0 && c->status != KD_OK ? kd_status_name(c->status) : "FAIL";
}

/* Each line of the notes, behind prefix. */
static void print_notes(FILE *f, const char *prefix, const char *notes)
{
    for (const char *line = notes; *line;) {
        const char *end = strchr(line, '\n');
        int len = end ? (int)(end - line) : (int)strlen(line);
        fprintf(f, "%s%.*s\n", prefix, len, line);
        line += len + (end != NULL);
    }
}

static void text_header(void *self, const kd_compare_result *r)
{
    FILE *f = ((kd_compare_writer *)self)->out;
    const kd_model_shape *sh = &r->shape;
    if (r->gguf)
        fprintf(f, "kdispatch compare: model file %s (architecture %s)\n  shape: hidden %" PRId64
                   ", intermediate %" PRId64 ", %d heads x %d, rms eps %g, rope base %g (%s)\n"
                   "  weights: %d picked of %" PRIu64 " Q4_K/Q6_K tensors, %s%s\n",
                r->gguf, r->arch, sh->hidden, sh->intermediate, sh->heads, sh->head_dim, r->eps,
                r->rope_base, r->rope_neox ? "neox" : "normal", r->nweights, r->n_candidates,
                r->copied_weights ? "copied into the library's layout (--copy-weights)"
                                  : "borrowed from the file in GGUF order",
                r->norm_from_file ? "; rmsnorm uses the file's norm weight" : "");
    else
        fprintf(f, "kdispatch compare: shape %s (%s: hidden %" PRId64 ", intermediate %" PRId64
                   ", %d heads x %d)\n",
                sh->name, sh->like, sh->hidden, sh->intermediate, sh->heads, sh->head_dim);
    fprintf(f, "  seed %llu, tolerance %g (|a - ref| <= tol * max(1, |ref|))\n", r->seed, r->tol);
    for (int i = 0; i < r->nvariants; i++)
        fprintf(f, "  %-10s %s\n", r->variants[i].name, r->variants[i].detail);
    print_notes(f, "  note: ", r->notes);
    fprintf(f, "\n%-12s %-7s %3s  %-12s %-10s %-10s %11s %11s  %s\n", "op", "kernel", "M", "size",
            "backend", "vs", "max_abs_err", "nmse", "result");
}

/* The heading of a GGUF weight's rows, when they start. */
static void text_weight_line(kd_compare_writer *w, const kd_compare_check *c)
{
    if (!c->tensor || c->tensor == w->last_tensor)
        return;
    w->last_tensor = c->tensor;
    char name[256];
    compare_printable(name, sizeof name, c->tensor, c->tensor_len);
    fprintf(w->out, "-- weight %s: %s, %" PRId64 " x %" PRId64, name, c->tensor_type,
            c->tensor_rows, c->k);
    if (c->n < c->tensor_rows)
        fprintf(w->out, ", first %" PRId64 " rows checked (--rows)", c->n);
    fputc('\n', w->out);
}

static void text_row(void *self, const kd_compare_result *r, const kd_compare_check *c)
{
    kd_compare_writer *w = self;
    FILE *f = w->out;
    text_weight_line(w, c);
    char size[48];
    size_text(c, size, sizeof size);
    int ran = !c->no_input && (c->reference >= 0 || c->status == KD_OK);
    fprintf(f, "%-12s %-7s %3lld  %-12s %-10s %-10s ", kd_op_name(c->op), kernel_of(c), c->m,
            size, variant_name(r, c->variant), variant_name(r, c->reference));
    if (ran && c->q8 && c->reference < 0)
        fprintf(f, "%11.3e %11.3e  %s (q8: nmse budget %g, max rel err %.3e)\n", c->cmp.max_abs,
                c->cmp.nmse, result_word(c), KD_COMPARE_Q8_NMSE_BUDGET, c->max_rel);
    else if (ran)
        fprintf(f, "%11.3e %11.3e  %s\n", c->cmp.max_abs, c->cmp.nmse, result_word(c));
    else
        fprintf(f, "%11s %11s  %s\n", "-", "-", result_word(c));
    fflush(f);
}

/* Where the first bad element is: (row, column) of the output. */
static void text_failure(FILE *f, const kd_compare_result *r, const kd_compare_check *c)
{
    fprintf(f, "  FAIL %s %s M=%lld", kd_op_name(c->op), kernel_of(c), c->m);
    if (c->tensor) {
        char name[256];
        compare_printable(name, sizeof name, c->tensor, c->tensor_len);
        fprintf(f, " %s", name);
    }
    fprintf(f, ": %s vs %s: ", variant_name(r, c->variant), variant_name(r, c->reference));
    if (c->no_input)
        fprintf(f, "inputs could not be built\n");
    else if (c->reference < 0 && c->status != KD_OK)
        fprintf(f, "did not run (%s)\n", kd_status_name(c->status));
    else if (c->q8)
        fprintf(f, "nmse %.3e (budget %g from %d outputs), or an error beyond what "
                "quantizing x explains, or a non-finite value; max rel err %.3e\n",
                c->cmp.nmse, KD_COMPARE_Q8_NMSE_BUDGET, KD_COMPARE_Q8_NMSE_MIN_OUTPUTS,
                c->max_rel);
    else
        fprintf(f, "%" PRId64 " of %" PRId64 " values out of tolerance, first at row %" PRId64
                ", column %" PRId64 "; max abs err %.3e\n",
                c->cmp.bad, c->count, c->cmp.first_bad / c->n, c->cmp.first_bad % c->n,
                c->cmp.max_abs);
}

static void text_verdict(void *self, const kd_compare_result *r)
{
    FILE *f = ((kd_compare_writer *)self)->out;
    int failed = kd_compare_failed(r), vs_oracle = 0;
    for (int i = 0; i < r->nchecks; i++)
        vs_oracle += r->checks[i].reference < 0;
    fprintf(f, "\nverdict: %s (%d checks: %d against the oracle, %d pairwise; %d failed",
            kd_compare_passed(r) ? "PASS" : "FAIL", r->nchecks, vs_oracle,
            r->nchecks - vs_oracle, failed);
    if (r->missing)
        fprintf(f, "; %d installed backend(s) did not run", r->missing);
    fputs(")\n", f);
    for (int i = 0; i < r->nchecks; i++)
        if (!r->checks[i].pass)
            text_failure(f, r, &r->checks[i]);
}

kd_compare_report kd_compare_text_writer(kd_compare_writer *w, FILE *out)
{
    *w = (kd_compare_writer){.out = out};
    return (kd_compare_report){text_header, text_row, text_verdict, w};
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static void json_notes(void *self, const kd_compare_result *r)
{
    print_notes(stderr, "kdispatch compare: note: ", r->notes);
}

static void json_model(kd_json *w, const kd_compare_result *r)
{
    const kd_model_shape *sh = &r->shape;
    kd_json_key(w, "model");
    kd_json_begin_object(w);
    kd_json_key_str(w, "source", r->gguf ? "gguf" : "builtin");
    if (r->gguf) {
        kd_json_key_str(w, "file", r->gguf);
        kd_json_key_str(w, "architecture", r->arch);
        kd_json_key_str(w, "weights", r->copied_weights ? "copied" : "borrowed");
    } else {
        kd_json_key_str(w, "name", sh->name);
        kd_json_key_str(w, "like", sh->like);
    }
    kd_json_key_int(w, "hidden", sh->hidden);
    kd_json_key_int(w, "intermediate", sh->intermediate);
    kd_json_key_int(w, "heads", sh->heads);
    kd_json_key_int(w, "head_dim", sh->head_dim);
    kd_json_key_num(w, "rms_eps", r->eps, "%g");
    kd_json_key_num(w, "rope_base", r->rope_base, "%g");
    kd_json_end_object(w);
}

static void json_check(kd_json *w, const kd_compare_result *r, const kd_compare_check *c)
{
    kd_json_begin_object(w);
    kd_json_key_str(w, "op", kd_op_name(c->op));
    kd_json_key_str(w, "kernel", kernel_of(c));
    kd_json_key_int(w, "m", c->m);
    kd_json_key_int(w, "n", c->n);
    kd_json_key_int(w, "k", c->k);
    kd_json_key(w, "tensor");
    if (c->tensor) {
        kd_json_strn(w, c->tensor, c->tensor_len);
        kd_json_key_str(w, "tensor_type", c->tensor_type);
        kd_json_key_int(w, "tensor_rows", c->tensor_rows);
        kd_json_key_int(w, "rows_checked", c->n);
    } else {
        kd_json_null(w);
    }
    kd_json_key_str(w, "backend", variant_name(r, c->variant));
    kd_json_key_str(w, "reference", variant_name(r, c->reference));
    kd_json_key_str(w, "status", c->no_input ? "no_input" : kd_status_name(c->status));
    kd_json_key_num(w, "max_abs_err", c->cmp.max_abs, "%.6e");
    kd_json_key_num(w, "nmse", c->cmp.nmse, "%.6e");
    if (c->q8) {
        kd_json_key_str(w, "gemv_path", "q8");
        kd_json_key_num(w, "nmse_budget", KD_COMPARE_Q8_NMSE_BUDGET, "%g");
        kd_json_key_num(w, "max_rel_err", c->max_rel, "%.6e");
    }
    kd_json_key_int(w, "bad", c->cmp.bad);
    kd_json_key_int(w, "count", c->count);
    kd_json_key_bool(w, "pass", c->pass);
    if (c->error[0])
        kd_json_key_str(w, "error", c->error);
    kd_json_end_object(w);
}

static void json_document(void *self, const kd_compare_result *r)
{
    kd_json w;
    kd_json_init(&w, ((kd_compare_writer *)self)->out);
    kd_json_begin_object(&w);
    kd_json_key_str(&w, "command", "compare");
    kd_json_key_str(&w, "version", kd_version());
    kd_json_key(&w, "seed");
    kd_json_uint(&w, r->seed);
    kd_json_key_num(&w, "tolerance", r->tol, "%g");
    kd_json_newline(&w);
    json_model(&w, r);
    kd_json_newline(&w);
    kd_json_key(&w, "variants");
    kd_json_begin_array(&w);
    for (int i = 0; i < r->nvariants; i++) {
        kd_json_begin_object(&w);
        kd_json_key_str(&w, "name", r->variants[i].name);
        kd_json_key_str(&w, "backend", kd_backend_name(r->variants[i].backend));
        kd_json_key_str(&w, "detail", r->variants[i].detail);
        kd_json_end_object(&w);
    }
    kd_json_end_array(&w);
    kd_json_newline(&w);
    kd_json_key(&w, "results");
    kd_json_begin_array(&w);
    for (int i = 0; i < r->nchecks; i++) {
        kd_json_newline(&w);
        json_check(&w, r, &r->checks[i]);
    }
    kd_json_newline(&w);
    kd_json_end_array(&w);
    kd_json_newline(&w);
    kd_json_key_int(&w, "checks", r->nchecks);
    kd_json_key_int(&w, "failed", kd_compare_failed(r));
    kd_json_key_int(&w, "missing_backends", r->missing);
    kd_json_key_str(&w, "verdict", kd_compare_passed(r) ? "PASS" : "FAIL");
    kd_json_end_object(&w);
    kd_json_finish(&w);
}

kd_compare_report kd_compare_json_writer(kd_compare_writer *w, FILE *out)
{
    *w = (kd_compare_writer){.out = out};
    return (kd_compare_report){json_notes, NULL, json_document, w};
}
