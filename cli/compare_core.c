/*
 * kdispatch compare, the core: builds one seeded problem per op and batch size (or per
 * GGUF weight and batch size), runs it on every variant (the cpu's scalar reference path,
 * each backend present, and a test's extra variant), checks each output against the
 * double-precision oracle and every pair of outputs against each other, into structured
 * results (kd_compare_result) that a report writer (compare_report.c) prints as they come.
 */
#include "compare_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "kdispatch.h"
#include "kd_quant.h"
#include "op_traits.h"

/* The float slack of the q8 rounding bound: the exact path's tolerance. */
static const double s_tight_tol = KD_TOLERANCE;

int kd_compare_tol_ok(double tol) { return isfinite(tol) && tol > 0 && tol <= 1; }

void kd_compare_opts_init(kd_compare_opts *o)
{
    *o = (kd_compare_opts){.shape = kd_model_shape_find("8b"), .m = {1, 8}, .nm = 2,
                           .seed = 42, .tol = KD_TOLERANCE,
                           .max_tensors = KD_COMPARE_DEFAULT_MAX_TENSORS};
}


kd_op compare_gemv_op_of(kd_type t) { return t == KD_TYPE_Q4_K ? KD_OP_Q4K_GEMV : KD_OP_Q6K_GEMV; }

int compare_op_selected(const kd_compare_opts *o, kd_op op)
{
    return !kd_cli_any_set(o->use_op, KD_OP_COUNT) || o->use_op[op];
}

void compare_note(run_state *s, const char *fmt, ...)
{
    char *notes = s->res->notes;
    size_t used = strlen(notes), cap = sizeof s->res->notes;
    va_list ap;
    va_start(ap, fmt);
    if (used + 1 < cap)
        vsnprintf(notes + used, cap - used - 1, fmt, ap);
    va_end(ap);
    used = strlen(notes);
    if (used + 1 < cap)
        memcpy(notes + used, "\n", 2);
}

/* ---- variants ------------------------------------------------------------------------------ */

/* A backend the machine has (a driver or device is there) that did not start: with all
 * backends selected it must not vanish silently from the checks. 1 if it fails the run. */
static int missing_backend(run_state *s, kd_backend_id b)
{
    kd_status st = kd_backend_init_status(s->ctx, b);
    if (st == KD_OK || st == KD_ERR_UNAVAILABLE)
        return 0; /* present, or not on this machine */
    fprintf(stderr, "kdispatch compare: backend %s is installed but did not start (%s): %s%s\n",
            kd_backend_name(b), kd_status_name(st), kd_backend_reason(s->ctx, b),
            s->o->skip_missing ? " (skipped: --skip-missing)" : "; pass --skip-missing to "
            "check the other backends anyway");
    return !s->o->skip_missing;
}

/* cpu-scalar (the reference path) always, every selected backend present, the extra. */
static int pick_variants(run_state *s)
{
    const kd_compare_opts *o = s->o;
    int all = !kd_cli_any_set(o->use_backend, KD_BACKEND_COUNT);
    s->nv = 0;
    s->v[s->nv++] = (variant){"cpu-scalar", KD_BACKEND_CPU, KD_RUN_CPU_SCALAR, NULL, 0};
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        if (!all && !o->use_backend[b])
            continue;
        if (!kd_backend_available(s->ctx, (kd_backend_id)b)) {
            if (all && missing_backend(s, (kd_backend_id)b)) {
                s->res->missing++;
                continue;
            }
            if (all)
                continue;
            fprintf(stderr, "kdispatch compare: backend %s requested but absent: %s\n",
                    kd_backend_name((kd_backend_id)b), kd_backend_reason(s->ctx, (kd_backend_id)b));
            return -1;
        }
        /* cpu and OpenCL CPU devices: the exact GEMV path against the tolerance, and the
         * q8 path on its own */
        unsigned exact = b == KD_BACKEND_CPU ? KD_RUN_CPU_EXACT
                         : b == KD_BACKEND_OPENCL ? KD_RUN_OPENCL_EXACT : 0;
        s->v[s->nv++] = (variant){kd_backend_name((kd_backend_id)b), (kd_backend_id)b,
                                  KD_RUN_NO_FALLBACK | exact, NULL, 0};
        if (b == KD_BACKEND_CPU)
            s->v[s->nv++] = (variant){"cpu-q8", KD_BACKEND_CPU,
                                      KD_RUN_NO_FALLBACK | KD_RUN_CPU_Q8, NULL, 1};
        if (b == KD_BACKEND_OPENCL && (kd_backend_gemv_paths(s->ctx, b, NULL) & KD_GEMV_Q8))
            s->v[s->nv++] = (variant){"opencl-q8", KD_BACKEND_OPENCL,
                                      KD_RUN_NO_FALLBACK | KD_RUN_OPENCL_Q8, NULL, 1};
    }
    if (o->extra)
        s->v[s->nv++] = (variant){o->extra->name, KD_BACKEND_CPU, 0, o->extra, 0};
    return 0;
}

/* What a variant runs, in words: the report's variant list. */
static void describe_variant(run_state *s, const variant *v, char *buf, size_t cap)
{
    if (v->extra)
        snprintf(buf, cap, "extra variant (test hook)");
    else if (v->flags & KD_RUN_CPU_SCALAR)
        snprintf(buf, cap, "cpu backend, plain scalar path (reference)");
    else if (v->q8)
        snprintf(buf, cap, "%s backend, q8 GEMV path (x quantized to int8 blocks), GEMV only: "
                 "NMSE <= 5e-4 against the oracle (from %d outputs) and each value within x's "
                 "rounding bound", kd_backend_name(v->backend),
                 KD_COMPARE_Q8_NMSE_MIN_OUTPUTS); /* 5e-4: the budget */
    else if (v->flags & (KD_RUN_CPU_EXACT | KD_RUN_OPENCL_EXACT))
        snprintf(buf, cap, "%s; checked here: the exact GEMV path (f32 x)",
                 kd_backend_reason(s->ctx, v->backend));
    else
        snprintf(buf, cap, "%s", kd_backend_reason(s->ctx, v->backend));
}

/* The model and the variants, as the results report them. */
static void describe_run(run_state *s)
{
    kd_compare_result *r = s->res;
    const model_src *src = &s->src;
    r->gguf = src->g ? s->o->gguf : NULL;
    r->copied_weights = src->g && s->o->copy_weights;
    snprintf(r->arch, sizeof r->arch, "%s", src->arch);
    r->shape = src->shape;
    r->eps = src->eps;
    r->rope_base = src->rope_base;
    r->rope_neox = src->rope_mode == KD_ROPE_NEOX;
    r->nweights = src->nweights;
    r->n_candidates = src->n_candidates;
    r->norm_from_file = src->norm != NULL;
    r->seed = s->o->seed;
    r->tol = s->o->tol;
    r->nvariants = s->nv;
    for (int i = 0; i < s->nv; i++) {
        kd_compare_variant_info *vi = &r->variants[i];
        vi->name = s->v[i].name;
        vi->backend = s->v[i].backend;
        vi->q8 = s->v[i].q8;
        describe_variant(s, &s->v[i], vi->detail, sizeof vi->detail);
    }
}

/* ---- jobs ------------------------------------------------------------------------------- */

static int add_job(run_state *s, job j)
{
    if (kd_cli_grow(&s->jobs, &s->jobs_cap, s->njobs, sizeof *s->jobs))
        return -1;
    s->jobs[s->njobs++] = j;
    return 0;
}

/* Seeds differ per op, batch size and weight, and all follow from the printed seed. */
static uint64_t job_seed(const kd_compare_opts *o, kd_op op, long long m, int weight)
{
    return o->seed + 7919ull * (uint64_t)op + (uint64_t)m + 104729ull * (uint64_t)weight;
}

static int weights_of_op(const model_src *src, kd_op op)
{
    int n = 0;
    for (int i = 0; i < src->nweights; i++)
        n += compare_gemv_op_of(kd_gguf_kd_type(src->weights[i]->ggml_type)) == op;
    return n;
}

/* GEMV on the file's weights, one job per weight and batch size (rows capped by --rows). */
static int add_weight_jobs(run_state *s, kd_op op)
{
    for (int i = 0; i < s->src.nweights; i++) {
        const kd_gguf_tensor_info *ti = s->src.weights[i];
        if (compare_gemv_op_of(kd_gguf_kd_type(ti->ggml_type)) != op)
            continue;
        int64_t rows = (int64_t)(ti->n_elements / ti->ne[0]);
        int64_t checked = s->o->rows > 0 && s->o->rows < rows ? s->o->rows : rows;
        for (int mi = 0; mi < s->o->nm; mi++)
            if (add_job(s, (job){op, s->o->m[mi], checked, (int64_t)ti->ne[0], ti, rows,
                                 job_seed(s->o, op, s->o->m[mi], i + 1)}))
                return -1;
    }
    return 0;
}

static int plan_jobs(run_state *s)
{
    for (int op = 0; op < KD_OP_COUNT; op++) {
        if (!compare_op_selected(s->o, (kd_op)op))
            continue;
        if (kd_op_is_gemv((kd_op)op) && weights_of_op(&s->src, (kd_op)op) > 0) {
            if (add_weight_jobs(s, (kd_op)op))
                return -1;
            continue;
        }
        if (kd_op_is_gemv((kd_op)op) && s->src.g)
            compare_note(s, "no %s weight picked from the file: %s runs on random blocks of the model's "
                 "shape", op == KD_OP_Q4K_GEMV ? "Q4_K" : "Q6_K", kd_op_name((kd_op)op));
        int64_t n[2], k[2];
        int nshapes = kd_model_op_shapes(&s->src.shape, (kd_op)op, n, k);
        for (int si = 0; si < nshapes; si++)
            for (int mi = 0; mi < s->o->nm; mi++)
                if (add_job(s, (job){(kd_op)op, s->o->m[mi], n[si], k[si], NULL, 0,
                                     job_seed(s->o, (kd_op)op, s->o->m[mi], si)}))
                    return -1;
    }
    return 0;
}

/* ---- problems --------------------------------------------------------------------------- */

/* A GEMV problem on the first j->n rows of a GGUF weight: the rows are contiguous, so the
 * weight tensor borrows that range of the mapping (copied if not 4-byte aligned, or when
 * copy is set: then in the library's own layout, as kd_gguf_tensor_copy makes it). The
 * oracle reads the same bytes through p->h_blocks, which free_problem does not free. */
static int make_weight_problem(kd_context *ctx, const job *j, int copy, kd_problem *p)
{
    kd_type t = kd_gguf_kd_type(j->weight->ggml_type);
    kd_rng rng;
    kd_rng_seed(&rng, j->seed);
    memset(p, 0, sizeof *p);
    p->m = j->m;
    p->n = j->n;
    p->k = j->k;
    p->d.op = j->op;
    p->blocks_bytes = (size_t)j->n * kd_quant_row_bytes(t, j->k);
    p->h_blocks = (void *)j->weight->data;
    int borrow = !copy && (uintptr_t)p->h_blocks % 4 == 0;
    kd_status st = (borrow ? kd_tensor_quant_borrow : kd_tensor_quant)(
        ctx, t, j->n, j->k, p->h_blocks, p->blocks_bytes, &p->src[0]);
    if (st != KD_OK)
        return -1;
    if (!(p->h_src[1] = malloc(sizeof(float) * (size_t)(j->m * j->k))))
        return -1;
    kd_fill_uniform(&rng, p->h_src[1], j->m * j->k, -1.0f, 1.0f);
    if (kd_tensor_f32(ctx, j->m, j->k, p->h_src[1], &p->src[1]) != KD_OK)
        return -1;
    p->out_count = j->m * j->n;
    if (kd_tensor_f32(ctx, j->m, j->n, NULL, &p->dst) != KD_OK)
        return -1;
    p->d.src[0] = p->src[0];
    p->d.src[1] = p->src[1];
    p->d.dst = p->dst;
    return 0;
}

/* With a model file: rmsnorm takes the model's norm weight and eps, rope its base and mode. */
static int apply_model_params(run_state *s, kd_problem *p)
{
    const model_src *src = &s->src;
    p->d.eps = (float)src->eps;
    p->d.rope_base = (float)src->rope_base;
    if (p->d.op == KD_OP_ROPE && src->rope_from_file)
        p->d.rope_mode = src->rope_mode;
    if (p->d.op != KD_OP_RMSNORM || !src->norm)
        return 0;
    memcpy(p->h_src[1], src->norm->data, sizeof(float) * (size_t)p->n);
    return kd_tensor_write(s->ctx, p->src[1], p->h_src[1], (size_t)p->n) == KD_OK ? 0 : -1;
}

static int make_problem(run_state *s, const job *j, kd_problem *p)
{
    if (j->weight)
        return make_weight_problem(s->ctx, j, s->o->copy_weights, p);
    if (kd_problem_make(s->ctx, j->op, j->m, j->n, j->k, j->seed, p))
        return -1;
    return apply_model_params(s, p);
}

static void free_problem(const job *j, kd_problem *p)
{
    if (j->weight)
        p->h_blocks = NULL; /* the file's bytes */
    kd_problem_free(p);
}

/* ---- running and checking ------------------------------------------------------------------ */

/* A new check of job ji: variant vi against reference (-1: the oracle); NULL if out of
 * memory. Pointers into the checks stay valid until the next new_check. */
static kd_compare_check *new_check(run_state *s, int ji, int vi, int reference)
{
    kd_compare_result *r = s->res;
    if (kd_cli_grow(&r->checks, &s->checks_cap, r->nchecks, sizeof *r->checks))
        return NULL;
    const job *j = &s->jobs[ji];
    kd_compare_check *c = &r->checks[r->nchecks++];
    *c = (kd_compare_check){.op = j->op, .m = j->m, .n = j->n, .k = j->k,
                            .variant = vi, .reference = reference,
                            .q8 = s->v[vi].q8, .cmp.first_bad = -1};
    if (j->weight) {
        c->tensor = j->weight->name.data;
        c->tensor_len = (size_t)j->weight->name.len;
        c->tensor_type = kd_ggml_type_name(j->weight->ggml_type);
        c->tensor_rows = j->weight_rows;
    }
    return c;
}

/* The check is made: the report hears of it. */
static void report_check(run_state *s, const kd_compare_check *c)
{
    if (s->rep && s->rep->check)
        s->rep->check(s->rep->self, s->res, c);
}

/* Runs one variant; the output is first filled with NaN so that a kernel that leaves
 * elements unwritten cannot pass on the previous variant's values. */
static float *run_variant(run_state *s, const variant *v, kd_problem *p, const float *poison,
                          kd_status *st)
{
    *st = kd_tensor_write(s->ctx, p->dst, poison, (size_t)p->out_count);
    if (*st != KD_OK)
        return NULL;
    if (!v->extra)
        return kd_problem_run(s->ctx, p, v->backend, v->flags, st);
    float *y = malloc(sizeof(float) * (size_t)p->out_count);
    if (!y) {
        *st = KD_ERR_NOMEM;
        return NULL;
    }
    memcpy(y, poison, sizeof(float) * (size_t)p->out_count);
    if ((*st = v->extra->run(s->ctx, p, y, v->extra->user)) != KD_OK) {
        free(y);
        return NULL;
    }
    return y;
}

static int variant_applies(const variant *v, kd_op op) { return !v->q8 || kd_op_is_gemv(op); }


/* Every element within what quantizing x can explain: x is rounded to the nearest step of
 * d_b = amax_b / 127 in each block b of 256, so |y_q8 - y| <= sum_b d_b / 2 * sum_{k in b}
 * |w_k| (the integer dot products are exact), plus the tight tolerance for the floats. */
static int q8_within_rounding_bound(const kd_problem *p, const float *y, const double *ref,
                                    kd_cmp *cmp)
{
    kd_type t = p->d.op == KD_OP_Q4K_GEMV ? KD_TYPE_Q4_K : KD_TYPE_Q6_K;
    const size_t row_bytes = kd_quant_row_bytes(t, p->k);
    const int64_t nb = p->k / 256;
    float *w = malloc(sizeof(float) * (size_t)p->k);
    double *half_step = malloc(sizeof(double) * (size_t)(p->m * nb));
    int ok = w && half_step;
    cmp->bad = 0;
    cmp->first_bad = -1;
    for (int64_t i = 0; ok && i < p->m * nb; i++) {
        double amax = 0.0;
        for (int l = 0; l < 256; l++)
            amax = fmax(amax, fabs(p->h_src[1][256 * i + l]));
        half_step[i] = amax / 127.0 / 2.0;
    }
    for (int64_t j = 0; ok && j < p->n; j++) {
        kd_dequant_row(t, (const char *)p->h_blocks + (size_t)j * row_bytes, p->k, w);
        for (int64_t m = 0; m < p->m; m++) {
            double bound = 0.0;
            for (int64_t b = 0; b < nb; b++) {
                double wsum = 0.0;
                for (int l = 0; l < 256; l++)
                    wsum += fabs(w[256 * b + l]);
                bound += half_step[m * nb + b] * wsum;
            }
            int64_t i = m * p->n + j;
            if (!(fabs((double)y[i] - ref[i]) <= bound + s_tight_tol * fmax(1.0, fabs(ref[i])))) {
                cmp->bad++;
                if (cmp->first_bad < 0 || i < cmp->first_bad)
                    cmp->first_bad = i;
            }
        }
    }
    free(w);
    free(half_step);
    return ok && cmp->bad == 0;
}

/* The q8 path's check (cmp->bad and first_bad then count the elements past the bound; a
 * NaN is past it): every value finite and within the rounding bound, and the NMSE
 * within the budget where there are enough outputs to measure it; also measures the max
 * error relative to max(1, |ref|), which is printed. */
static int q8_within_budget(const kd_problem *p, const float *y, const double *ref,
                            double *max_rel, kd_cmp *cmp)
{
    double num = 0.0, den = 0.0;
    int finite = 1;
    *max_rel = 0.0;
    for (int64_t i = 0; i < p->out_count; i++) {
        double e = (double)y[i] - ref[i];
        finite &= isfinite(y[i]);
        num += e * e;
        den += ref[i] * ref[i];
        *max_rel = fmax(*max_rel, fabs(e) / fmax(1.0, fabs(ref[i])));
    }
    int nmse_ok = p->out_count < KD_COMPARE_Q8_NMSE_MIN_OUTPUTS || (den > 0 ? num / den : num) <= KD_COMPARE_Q8_NMSE_BUDGET;
    int bound_ok = q8_within_rounding_bound(p, y, ref, cmp); /* cmp->bad: elements past it */
    return finite && nmse_ok && bound_ok;
}

/* Adds and reports the checks of one problem: each variant against the oracle (err: why
 * a variant did not run), then each pair of variants that ran. p NULL: the problem's
 * inputs could not be built (err says why), so no variant ran. */
static int check_outputs(run_state *s, int ji, const kd_problem *p, const double *ref,
                         float *const *y, const kd_status *st,
                         char (*err)[KD_COMPARE_ERROR_MAX])
{
    for (int i = 0; i < s->nv; i++) {
        if (!variant_applies(&s->v[i], s->jobs[ji].op))
            continue;
        kd_compare_check *c = new_check(s, ji, i, -1);
        if (!c)
            return -1;
        c->status = st[i];
        c->no_input = !p;
        snprintf(c->error, sizeof c->error, "%s", err[i]);
        if (!y[i]) {
            report_check(s, c);
            continue;
        }
        c->count = p->out_count;
        kd_compare_to_ref(y[i], ref, p->out_count, s->o->tol, &c->cmp);
        c->pass = c->cmp.pass;
        if (s->v[i].q8)
            c->pass = q8_within_budget(p, y[i], ref, &c->max_rel, &c->cmp);
        report_check(s, c);
    }
    for (int i = 0; i < s->nv; i++)
        for (int k = i + 1; k < s->nv; k++) {
            if (!y[i] || !y[k] || s->v[i].q8 || s->v[k].q8)
                continue; /* the failed run is already a failed check; q8: oracle only */
            kd_compare_check *c = new_check(s, ji, k, i);
            if (!c)
                return -1;
            c->count = p->out_count;
            kd_compare_f32(y[k], y[i], p->out_count, s->o->tol, &c->cmp);
            c->pass = c->cmp.pass;
            report_check(s, c);
        }
    return 0;
}

/* Failed checks for a problem whose inputs could not be built: one per variant. why is
 * the reason make_problem left (never empty). */
static int record_no_input(run_state *s, int ji, const char *why)
{
    fprintf(stderr, "kdispatch compare: cannot build the %s inputs (M=%lld): %s\n",
            kd_op_name(s->jobs[ji].op), s->jobs[ji].m, why);
    float *y[KD_COMPARE_MAX_VARIANTS] = {0};
    kd_status st[KD_COMPARE_MAX_VARIANTS] = {KD_OK};
    char err[KD_COMPARE_MAX_VARIANTS][KD_COMPARE_ERROR_MAX];
    for (int i = 0; i < s->nv; i++)
        snprintf(err[i], sizeof err[i], "%s", why);
    return check_outputs(s, ji, NULL, NULL, y, st, err);
}

static int run_job(run_state *s, int ji)
{
    const job *j = &s->jobs[ji];
    kd_problem p;
    char before[256], why[256];
    snprintf(before, sizeof before, "%s", kd_last_error(s->ctx));
    errno = 0;
    if (make_problem(s, j, &p)) {
        /* a host malloc that failed leaves no message on the context: errno says it */
        int e = errno;
        const char *now = kd_last_error(s->ctx);
        snprintf(why, sizeof why, "%s", strcmp(now, before) != 0 && now[0] ? now
                 : e == ENOMEM ? "out of host memory" : e ? strerror(e) : "unknown failure");
        free_problem(j, &p);
        return record_no_input(s, ji, why);
    }
    float *y[KD_COMPARE_MAX_VARIANTS] = {0}, *poison = malloc(sizeof(float) * (size_t)p.out_count);
    kd_status st[KD_COMPARE_MAX_VARIANTS];
    char err[KD_COMPARE_MAX_VARIANTS][KD_COMPARE_ERROR_MAX] = {{0}};
    double *ref = kd_problem_oracle(&p);
    int rc = -1;
    if (poison && ref) {
        for (int64_t i = 0; i < p.out_count; i++)
            poison[i] = NAN;
        for (int i = 0; i < s->nv; i++) {
            st[i] = KD_OK;
            if (!variant_applies(&s->v[i], j->op))
                continue;
            y[i] = run_variant(s, &s->v[i], &p, poison, &st[i]);
            if (y[i])
                continue;
            snprintf(err[i], sizeof err[i], "%s", kd_last_error(s->ctx));
            fprintf(stderr, "  %s M=%lld on %s: %s: %s\n", kd_op_name(j->op), j->m,
                    s->v[i].name, kd_status_name(st[i]), err[i]);
        }
        rc = check_outputs(s, ji, &p, ref, y, st, err);
    }
    for (int i = 0; i < s->nv; i++)
        free(y[i]);
    free(poison);
    free(ref);
    free_problem(j, &p);
    return rc;
}

/* ---- results ------------------------------------------------------------------------------ */

int kd_compare_failed(const kd_compare_result *r)
{
    int failed = 0;
    for (int i = 0; i < r->nchecks; i++)
        failed += !r->checks[i].pass;
    return failed;
}

int kd_compare_passed(const kd_compare_result *r)
{
    return kd_compare_failed(r) == 0 && r->missing == 0;
}

void kd_compare_result_free(kd_compare_result *res)
{
    if (!res)
        return;
    free(res->checks);
    kd_gguf_close(res->file);
    memset(res, 0, sizeof *res);
}

static int options_ok(const kd_compare_opts *o)
{
    return o && (o->gguf || o->shape) && o->nm >= 1 && o->nm <= KD_COMPARE_MAX_M &&
           o->ntensors >= 0 && o->ntensors <= KD_COMPARE_MAX_TENSORS && kd_compare_tol_ok(o->tol);
}

int kd_compare_collect(kd_context *ctx, const kd_compare_opts *o, const kd_compare_report *rep,
                       kd_compare_result *res)
{
    memset(res, 0, sizeof *res);
    if (!ctx || !options_ok(o)) {
        fprintf(stderr, "kdispatch compare: invalid options\n");
        return 2;
    }
    run_state s = {.ctx = ctx, .o = o, .rep = rep, .res = res};
    int picked = pick_variants(&s), opened = picked ? -1 : compare_open_model(&s);
    res->file = s.src.g; /* the checks' tensor names point into it */
    if (picked || opened)
        return 2;
    if (plan_jobs(&s)) {
        fprintf(stderr, "kdispatch compare: out of memory\n");
        free(s.jobs);
        return 2;
    }
    describe_run(&s);
    if (rep && rep->begin)
        rep->begin(rep->self, res);
    int rc = 0;
    for (int i = 0; i < s.njobs && rc == 0; i++)
        if (run_job(&s, i)) {
            fprintf(stderr, "kdispatch compare: out of memory\n");
            rc = 1;
        }
    if (rep && rep->end)
        rep->end(rep->self, res);
    free(s.jobs);
    return rc;
}

int kd_compare_run(kd_context *ctx, const kd_compare_opts *o, FILE *out)
{
    if (!out) {
        fprintf(stderr, "kdispatch compare: invalid options\n");
        return 2;
    }
    kd_compare_writer w;
    kd_compare_report rep = o && o->json ? kd_compare_json_writer(&w, out)
                                         : kd_compare_text_writer(&w, out);
    kd_compare_result res;
    int rc = kd_compare_collect(ctx, o, &rep, &res);
    if (rc == 0 && kd_compare_failed(&res))
        rc = 1;
    if (rc == 0 && res.missing) {
        fprintf(stderr, "kdispatch compare: FAIL: %d installed backend(s) did not run (see "
                "above)\n", res.missing);
        rc = 1;
    }
    kd_compare_result_free(&res);
    return rc;
}

/* For kdispatch fleet: the seed of compare's random problem of op at batch size m, so
 * that fleet's agreement check runs the very problems compare ran. */
uint64_t kd_compare_problem_seed(const kd_compare_opts *o, kd_op op, long long m)
{
    return job_seed(o, op, m, 0);
}
