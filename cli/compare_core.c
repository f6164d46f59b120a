/*
 * kdispatch compare, the core: builds one seeded problem per op and batch size (or per
 * GGUF weight and batch size), runs it on every variant (the cpu's scalar reference path,
 * each backend present, and a test's extra variant), checks each output against the
 * double-precision oracle and every pair of outputs against each other, and prints a
 * table or JSON with a verdict.
 */
#include "compare_core.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kdispatch.h"
#include "kd_json.h"
#include "kd_quant.h"
#include "op_traits.h"

#define MAX_VARIANTS (KD_BACKEND_COUNT + 3)
/* The cpu q8 GEMV path is held to this NMSE against the oracle (SPEC section 7). */
#define Q8_NMSE_BUDGET 5e-4
/* The float slack of the q8 rounding bound: the exact path's tolerance. */
static const double s_tight_tol = KD_TOLERANCE;

typedef struct variant {
    const char *name;
    kd_backend_id backend;
    unsigned flags;
    const kd_compare_extra_variant *extra; /* non-NULL: the test's variant */
    int q8; /* the cpu's q8 GEMV path: GEMV jobs only, held to Q8_NMSE_BUDGET */
} variant;

/* The model the problems are shaped after: a built-in shape or a GGUF file's. */
typedef struct model_src {
    kd_model_shape shape;
    char arch[64];
    kd_gguf *g;
    double eps, rope_base;
    int rope_from_file;          /* rope_mode is the architecture's, not seed-chosen */
    kd_rope_mode rope_mode;
    const kd_gguf_tensor_info *norm; /* an F32 norm weight of `hidden` values, or NULL */
    const kd_gguf_tensor_info *weights[KD_COMPARE_MAX_TENSORS];
    int nweights;
    uint64_t n_candidates;       /* Q4_K / Q6_K tensors in the file */
} model_src;

/* One problem: an op at one batch size, on random blocks or on a GGUF weight. */
typedef struct job {
    kd_op op;
    long long m;
    int64_t n, k;
    const kd_gguf_tensor_info *weight; /* NULL: random inputs */
    int64_t weight_rows;               /* rows of the whole weight (n: the rows checked) */
    uint64_t seed;
} job;

/* One check: a variant against the oracle (reference -1) or against another variant. */
typedef struct result {
    int job, variant, reference;
    kd_status status;  /* of the variant's run */
    int no_input;      /* the problem's inputs could not be built */
    kd_cmp cmp;
    double max_rel;    /* q8 rows: max |a - ref| / max(1, |ref|) */
    int64_t count;
    int pass;
} result;

typedef struct run_state {
    kd_context *ctx;
    const kd_compare_opts *o;
    FILE *out;
    model_src src;
    variant v[MAX_VARIANTS];
    int nv;
    job *jobs;
    int njobs, jobs_cap;
    result *res;
    int nres, res_cap;
    const kd_gguf_tensor_info *last_weight_shown;
    int header_done;
    int missing;      /* installed backends that did not start (missing_backend) */
    char notes[4096]; /* notes found before the header is printed */
    char cpu_exact_detail[700]; /* the cpu's description, naming the exact GEMV path */
} run_state;

int kd_compare_tol_ok(double tol) { return isfinite(tol) && tol > 0 && tol <= 1; }

void kd_compare_opts_init(kd_compare_opts *o)
{
    *o = (kd_compare_opts){.shape = kd_model_shape_find("8b"), .m = {1, 8}, .nm = 2,
                           .seed = 42, .tol = KD_TOLERANCE,
                           .max_tensors = KD_COMPARE_DEFAULT_MAX_TENSORS};
}

/* Text from the model file made safe for a terminal: every byte outside printable ASCII
 * (ESC and other controls, and any non-ASCII byte) becomes '?'. At most cap - 1 bytes. */
static void printable(char *dst, size_t cap, const char *src, uint64_t len)
{
    size_t n = 0;
    for (uint64_t i = 0; i < len && n + 1 < cap; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[n] = '\0';
}

static int is_gemv(kd_op op) { return kd_op_is_gemv(op); } /* op_traits.h */

static kd_op gemv_op_of(kd_type t) { return t == KD_TYPE_Q4_K ? KD_OP_Q4K_GEMV : KD_OP_Q6K_GEMV; }

static int any_set(const int *f, int n)
{
    for (int i = 0; i < n; i++)
        if (f[i])
            return 1;
    return 0;
}

static int op_selected(const kd_compare_opts *o, kd_op op)
{
    return !any_set(o->use_op, KD_OP_COUNT) || o->use_op[op];
}

/* ---- the model: built-in shape or GGUF file --------------------------------------------- */

static int value_as_int(const kd_gguf_value *v, int64_t *out)
{
    switch (v->type) {
    case KD_GGUF_INT8: case KD_GGUF_INT16: case KD_GGUF_INT32: case KD_GGUF_INT64:
        *out = v->v.i;
        return 1;
    case KD_GGUF_UINT8: case KD_GGUF_UINT16: case KD_GGUF_UINT32: case KD_GGUF_UINT64:
        if (v->v.u > (uint64_t)INT64_MAX)
            return 0;
        *out = (int64_t)v->v.u;
        return 1;
    default:
        return 0;
    }
}

/* "<arch>.<suffix>" as a positive integer; a per-layer array gives its first layer's. */
static int arch_int(const model_src *s, const char *suffix, int64_t *out)
{
    char key[192];
    snprintf(key, sizeof key, "%s.%s", s->arch, suffix);
    const kd_gguf_kv *kv = kd_gguf_find(s->g, key);
    kd_gguf_value first;
    if (!kv)
        return 0;
    if (kv->value.type == KD_GGUF_ARRAY)
        return kd_gguf_array_get(&kv->value, 0, &first) && value_as_int(&first, out) && *out > 0;
    return value_as_int(&kv->value, out) && *out > 0;
}

static int arch_float(const model_src *s, const char *suffix, double *out)
{
    char key[192];
    snprintf(key, sizeof key, "%s.%s", s->arch, suffix);
    return kd_gguf_get_float(s->g, key, out) && *out > 0;
}

static int name_ends_with(const kd_gguf_tensor_info *ti, const char *z)
{
    size_t n = strlen(z);
    return ti->name.len >= n && memcmp(ti->name.data + ti->name.len - n, z, n) == 0;
}

static int is_gemv_weight(const kd_gguf_tensor_info *ti)
{
    kd_type t = kd_gguf_kd_type(ti->ggml_type);
    return t == KD_TYPE_Q4_K || t == KD_TYPE_Q6_K;
}

/* The row length of the token embedding or else of the first GEMV weight: the hidden
 * size when the file does not say it. */
static int64_t guess_hidden(const kd_gguf *g)
{
    const kd_gguf_tensor_info *te = kd_gguf_find_tensor(g, "token_embd.weight");
    if (te)
        return (int64_t)te->ne[0];
    for (uint64_t i = 0; i < kd_gguf_n_tensors(g); i++)
        if (is_gemv_weight(kd_gguf_tensor_at(g, i)))
            return (int64_t)kd_gguf_tensor_at(g, i)->ne[0];
    return 0;
}

static void note(run_state *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Notes about the inputs: in the text output under the header, or on stderr when the
 * output is JSON. */
static void note(run_state *s, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (s->o->json)
        fprintf(stderr, "kdispatch compare: note: %s\n", line);
    else if (s->header_done)
        fprintf(s->out, "  note: %s\n", line);
    else
        snprintf(s->notes + strlen(s->notes), sizeof s->notes - strlen(s->notes),
                 "  note: %s\n", line);
}

/* Architectures whose rope rotates (x[i], x[i + D/2]) (llama.cpp's NEOX rope type). */
static int arch_uses_neox(const char *arch)
{
    static const char *const neox[] = {"qwen2", "qwen2moe", "qwen3", "qwen3moe", "gptneox",
                                       "phi2", "phi3", "stablelm", "falcon", "gemma", "gemma2",
                                       "gemma3", "olmo2", "starcoder2"};
    for (size_t i = 0; i < sizeof neox / sizeof *neox; i++)
        if (strcmp(arch, neox[i]) == 0)
            return 1;
    return 0;
}

/* Hidden, intermediate, heads and head size from the file's <arch>.* keys, with
 * fallbacks from the tensors' shapes; -1 if no usable shape can be found. */
static int read_gguf_shape(run_state *s)
{
    model_src *src = &s->src;
    kd_gguf_str a;
    snprintf(src->arch, sizeof src->arch, "llama");
    if (kd_gguf_get_string(src->g, "general.architecture", &a) && a.len > 0)
        printable(src->arch, sizeof src->arch, a.data, a.len);
    int64_t hidden = 0, ffn = 0, heads = 0, head_dim = 0;
    if (!arch_int(src, "embedding_length", &hidden)) {
        hidden = guess_hidden(src->g);
        note(s, "%s.embedding_length absent: hidden %" PRId64 " from the tensors' row length",
             src->arch, hidden);
    }
    if (hidden <= 0 || hidden > (1 << 24)) {
        fprintf(stderr, "kdispatch compare: %s: no usable hidden size (%s.embedding_length)\n",
                s->o->gguf, src->arch);
        return -1;
    }
    if (!arch_int(src, "feed_forward_length", &ffn)) {
        const kd_gguf_tensor_info *up = kd_gguf_find_tensor(src->g, "blk.0.ffn_up.weight");
        ffn = up && up->n_dims >= 2 ? (int64_t)up->ne[1] : 4 * hidden;
        note(s, "%s.feed_forward_length absent: intermediate %" PRId64 " (%s)", src->arch, ffn,
             up ? "blk.0.ffn_up.weight's rows" : "assumed 4 x hidden");
    }
    int have_heads = arch_int(src, "attention.head_count", &heads);
    if (!arch_int(src, "rope.dimension_count", &head_dim) &&
        !arch_int(src, "attention.key_length", &head_dim))
        head_dim = have_heads && hidden % heads == 0 ? hidden / heads
                                                     : (hidden % 128 == 0 ? 128 : 64);
    if (!have_heads) {
        heads = hidden / head_dim > 0 ? hidden / head_dim : 1;
        note(s, "%s.attention.head_count absent: %" PRId64 " heads of %" PRId64 " assumed",
             src->arch, heads, head_dim);
    }
    if (head_dim % 2 || heads > 4096 || head_dim > 65536 || ffn > (1 << 26)) {
        fprintf(stderr, "kdispatch compare: %s: unusable shape: %" PRId64 " heads of %" PRId64
                " (head size must be even), intermediate %" PRId64 "\n",
                s->o->gguf, heads, head_dim, ffn);
        return -1;
    }
    src->shape = (kd_model_shape){"gguf", src->arch, hidden, ffn, (int)heads, (int)head_dim};
    if (!arch_float(src, "attention.layer_norm_rms_epsilon", &src->eps))
        src->eps = 1e-5;
    if (!arch_float(src, "rope.freq_base", &src->rope_base))
        src->rope_base = 10000.0;
    src->rope_from_file = 1;
    src->rope_mode = arch_uses_neox(src->arch) ? KD_ROPE_NEOX : KD_ROPE_NORMAL;
    return 0;
}

/* The first F32 norm weight of `hidden` values: rmsnorm runs with the model's weights. */
static void find_norm_weight(model_src *src)
{
    const kd_gguf_tensor_info *ti = kd_gguf_find_tensor(src->g, "blk.0.attn_norm.weight");
    if (ti && ti->ggml_type == KD_GGML_TYPE_F32 && (int64_t)ti->n_elements == src->shape.hidden) {
        src->norm = ti;
        return;
    }
    for (uint64_t i = 0; i < kd_gguf_n_tensors(src->g); i++) {
        ti = kd_gguf_tensor_at(src->g, i);
        if (ti->ggml_type == KD_GGML_TYPE_F32 && name_ends_with(ti, "norm.weight") &&
            (int64_t)ti->n_elements == src->shape.hidden) {
            src->norm = ti;
            return;
        }
    }
}

/* The weights named with --tensor; -1 (message printed) if one is missing or not K-quant. */
static int pick_named_weights(run_state *s)
{
    model_src *src = &s->src;
    for (int i = 0; i < s->o->ntensors; i++) {
        const kd_gguf_tensor_info *ti = kd_gguf_find_tensor(src->g, s->o->tensors[i]);
        if (!ti) {
            fprintf(stderr, "kdispatch compare: %s has no tensor '%s' (kdispatch gguf %s lists "
                    "them)\n", s->o->gguf, s->o->tensors[i], s->o->gguf);
            return -1;
        }
        if (!is_gemv_weight(ti)) {
            fprintf(stderr, "kdispatch compare: tensor '%s' is %s: compare runs Q4_K and Q6_K "
                    "weights\n", s->o->tensors[i], kd_ggml_type_name(ti->ggml_type));
            return -1;
        }
        if (!op_selected(s->o, gemv_op_of(kd_gguf_kd_type(ti->ggml_type)))) {
            note(s, "tensor '%s' skipped: its op is not among --op", s->o->tensors[i]);
            continue;
        }
        src->weights[src->nweights++] = ti;
    }
    return 0;
}

/* Without --tensor: up to max_tensors weights in file order, alternating Q4_K and Q6_K so
 * that both kernels meet real weights when the file has both. */
static void pick_default_weights(run_state *s)
{
    model_src *src = &s->src;
    uint64_t next[2] = {0, 0}, n = kd_gguf_n_tensors(src->g);
    const kd_type types[2] = {KD_TYPE_Q4_K, KD_TYPE_Q6_K};
    int max = s->o->max_tensors < KD_COMPARE_MAX_TENSORS ? s->o->max_tensors
                                                         : KD_COMPARE_MAX_TENSORS;
    for (int turn = 0, stalled = 0; src->nweights < max && stalled < 2; turn ^= 1) {
        const kd_gguf_tensor_info *found = NULL;
        if (op_selected(s->o, gemv_op_of(types[turn])))
            for (; next[turn] < n && !found; next[turn]++) {
                const kd_gguf_tensor_info *ti = kd_gguf_tensor_at(src->g, next[turn]);
                if (kd_gguf_kd_type(ti->ggml_type) == types[turn])
                    found = ti;
            }
        stalled = found ? 0 : stalled + 1;
        if (found)
            src->weights[src->nweights++] = found;
    }
}

static int open_model(run_state *s)
{
    const kd_compare_opts *o = s->o;
    if (!o->gguf) {
        s->src.shape = *o->shape;
        s->src.eps = 1e-5;
        s->src.rope_base = 10000.0;
        return 0;
    }
    if (kd_gguf_open(s->ctx, o->gguf, &s->src.g) != KD_OK) {
        fprintf(stderr, "kdispatch compare: %s\n", kd_last_error(s->ctx));
        return -1;
    }
    if (read_gguf_shape(s))
        return -1;
    find_norm_weight(&s->src);
    for (uint64_t i = 0; i < kd_gguf_n_tensors(s->src.g); i++)
        s->src.n_candidates += is_gemv_weight(kd_gguf_tensor_at(s->src.g, i));
    if (o->ntensors > 0)
        return pick_named_weights(s);
    pick_default_weights(s);
    return 0;
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
    int all = !any_set(o->use_backend, KD_BACKEND_COUNT);
    s->nv = 0;
    s->v[s->nv++] = (variant){"cpu-scalar", KD_BACKEND_CPU, KD_RUN_CPU_SCALAR, NULL, 0};
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        if (!all && !o->use_backend[b])
            continue;
        if (!kd_backend_available(s->ctx, (kd_backend_id)b)) {
            if (all && missing_backend(s, (kd_backend_id)b)) {
                s->missing++;
                continue;
            }
            if (all)
                continue;
            fprintf(stderr, "kdispatch compare: backend %s requested but absent: %s\n",
                    kd_backend_name((kd_backend_id)b), kd_backend_reason(s->ctx, (kd_backend_id)b));
            return -1;
        }
        /* cpu: the exact GEMV path against the tolerance, and the q8 path on its own */
        unsigned exact = b == KD_BACKEND_CPU ? KD_RUN_CPU_EXACT : 0;
        s->v[s->nv++] = (variant){kd_backend_name((kd_backend_id)b), (kd_backend_id)b,
                                  KD_RUN_NO_FALLBACK | exact, NULL, 0};
        if (b == KD_BACKEND_CPU)
            s->v[s->nv++] = (variant){"cpu-q8", KD_BACKEND_CPU,
                                      KD_RUN_NO_FALLBACK | KD_RUN_CPU_Q8, NULL, 1};
    }
    if (o->extra)
        s->v[s->nv++] = (variant){o->extra->name, KD_BACKEND_CPU, 0, o->extra, 0};
    return 0;
}

static const char *variant_detail(run_state *s, const variant *v)
{
    if (v->extra)
        return "extra variant (test hook)";
    if (v->flags & KD_RUN_CPU_SCALAR)
        return "cpu backend, plain scalar path (reference)";
    if (v->q8)
        return "cpu backend, q8 GEMV path (x quantized to int8 blocks), GEMV only: NMSE <= 5e-4 "
               "against the oracle (from 64 outputs) and each value within x's rounding bound";
    if (v->flags & KD_RUN_CPU_EXACT) {
        snprintf(s->cpu_exact_detail, sizeof s->cpu_exact_detail, "%s; checked here: the exact "
                 "GEMV path (f32 x)", kd_backend_reason(s->ctx, v->backend));
        return s->cpu_exact_detail;
    }
    return kd_backend_reason(s->ctx, v->backend);
}

/* ---- jobs ------------------------------------------------------------------------------- */

static int add_job(run_state *s, job j)
{
    if (s->njobs == s->jobs_cap) {
        int cap = s->jobs_cap ? 2 * s->jobs_cap : 32;
        job *p = realloc(s->jobs, sizeof *p * (size_t)cap);
        if (!p)
            return -1;
        s->jobs = p;
        s->jobs_cap = cap;
    }
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
        n += gemv_op_of(kd_gguf_kd_type(src->weights[i]->ggml_type)) == op;
    return n;
}

/* GEMV on the file's weights, one job per weight and batch size (rows capped by --rows). */
static int add_weight_jobs(run_state *s, kd_op op)
{
    for (int i = 0; i < s->src.nweights; i++) {
        const kd_gguf_tensor_info *ti = s->src.weights[i];
        if (gemv_op_of(kd_gguf_kd_type(ti->ggml_type)) != op)
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
        if (!op_selected(s->o, (kd_op)op))
            continue;
        if (is_gemv((kd_op)op) && weights_of_op(&s->src, (kd_op)op) > 0) {
            if (add_weight_jobs(s, (kd_op)op))
                return -1;
            continue;
        }
        if (is_gemv((kd_op)op) && s->src.g)
            note(s, "no %s weight picked from the file: %s runs on random blocks of the model's "
                 "shape", op == KD_OP_Q4K_GEMV ? "Q4_K" : "Q6_K", kd_op_name((kd_op)op));
        int64_t n, k;
        kd_model_op_dims(&s->src.shape, (kd_op)op, &n, &k);
        for (int mi = 0; mi < s->o->nm; mi++)
            if (add_job(s, (job){(kd_op)op, s->o->m[mi], n, k, NULL, 0,
                                 job_seed(s->o, (kd_op)op, s->o->m[mi], 0)}))
                return -1;
    }
    return 0;
}

/* ---- problems --------------------------------------------------------------------------- */

/* A GEMV problem on the first j->n rows of a GGUF weight: the rows are contiguous, so the
 * weight tensor borrows that range of the mapping (copied only if not 4-byte aligned). The
 * oracle reads the same bytes through p->h_blocks, which free_problem does not free. */
static int make_weight_problem(kd_context *ctx, const job *j, kd_problem *p)
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
    kd_status st = ((uintptr_t)p->h_blocks % 4 == 0 ? kd_tensor_quant_borrow : kd_tensor_quant)(
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
        return make_weight_problem(s->ctx, j, p);
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

static result *new_result(run_state *s)
{
    if (s->nres == s->res_cap) {
        int cap = s->res_cap ? 2 * s->res_cap : 64;
        result *p = realloc(s->res, sizeof *p * (size_t)cap);
        if (!p)
            return NULL;
        s->res = p;
        s->res_cap = cap;
    }
    return memset(&s->res[s->nres++], 0, sizeof(result));
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

static void print_row(run_state *s, const result *r);

static int variant_applies(const variant *v, kd_op op) { return !v->q8 || is_gemv(op); }

/* Below this many outputs the NMSE is too noisy to hold to the budget (three outputs that
 * happen to be near 0 make any error large): it is reported, and the bound below holds. */
#define Q8_NMSE_MIN_OUTPUTS 64

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
    int nmse_ok = p->out_count < Q8_NMSE_MIN_OUTPUTS || (den > 0 ? num / den : num) <= Q8_NMSE_BUDGET;
    int bound_ok = q8_within_rounding_bound(p, y, ref, cmp); /* cmp->bad: elements past it */
    return finite && nmse_ok && bound_ok;
}

/* Adds and prints the checks of one problem: each variant against the oracle, then each
 * pair of variants that ran. */
static int check_outputs(run_state *s, int ji, const kd_problem *p, const double *ref,
                         float *const *y, const kd_status *st)
{
    for (int i = 0; i < s->nv; i++) {
        if (!variant_applies(&s->v[i], s->jobs[ji].op))
            continue;
        result *r = new_result(s);
        if (!r)
            return -1;
        *r = (result){.job = ji, .variant = i, .reference = -1, .status = st[i],
                      .count = p->out_count};
        if (y[i])
            kd_compare_to_ref(y[i], ref, p->out_count, s->o->tol, &r->cmp);
        r->pass = y[i] && r->cmp.pass;
        if (y[i] && s->v[i].q8)
            r->pass = q8_within_budget(p, y[i], ref, &r->max_rel, &r->cmp);
        print_row(s, r);
    }
    for (int i = 0; i < s->nv; i++)
        for (int k = i + 1; k < s->nv; k++) {
            if (!y[i] || !y[k] || s->v[i].q8 || s->v[k].q8)
                continue; /* the failed run is already a failed check; q8: oracle only */
            result *r = new_result(s);
            if (!r)
                return -1;
            *r = (result){.job = ji, .variant = k, .reference = i, .count = p->out_count};
            kd_compare_f32(y[k], y[i], p->out_count, s->o->tol, &r->cmp);
            r->pass = r->cmp.pass;
            print_row(s, r);
        }
    return 0;
}

/* Failed checks for a problem whose inputs could not be built: one per variant. why is
 * the reason make_problem left (never empty). */
static int record_no_input(run_state *s, int ji, const char *why)
{
    fprintf(stderr, "kdispatch compare: cannot build the %s inputs (M=%lld): %s\n",
            kd_op_name(s->jobs[ji].op), s->jobs[ji].m, why);
    for (int i = 0; i < s->nv; i++) {
        if (!variant_applies(&s->v[i], s->jobs[ji].op))
            continue;
        result *r = new_result(s);
        if (!r)
            return -1;
        *r = (result){.job = ji, .variant = i, .reference = -1, .no_input = 1, .cmp.first_bad = -1};
        print_row(s, r);
    }
    return 0;
}

static void print_weight_line(run_state *s, const job *j);

static int run_job(run_state *s, int ji)
{
    const job *j = &s->jobs[ji];
    if (j->weight && j->weight != s->last_weight_shown)
        print_weight_line(s, j);
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
    float *y[MAX_VARIANTS] = {0}, *poison = malloc(sizeof(float) * (size_t)p.out_count);
    kd_status st[MAX_VARIANTS];
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
            if (!y[i])
                fprintf(stderr, "  %s M=%lld on %s: %s: %s\n", kd_op_name(j->op), j->m,
                        s->v[i].name, kd_status_name(st[i]), kd_last_error(s->ctx));
        }
        rc = check_outputs(s, ji, &p, ref, y, st);
    }
    for (int i = 0; i < s->nv; i++)
        free(y[i]);
    free(poison);
    free(ref);
    free_problem(j, &p);
    return rc;
}

/* ---- text output -------------------------------------------------------------------------- */

static const char *kernel_of(const job *j) { return j->m == 1 ? "single" : "batched"; }

static void size_text(const job *j, char *buf, size_t cap)
{
    if (is_gemv(j->op))
        snprintf(buf, cap, "%" PRId64 "x%" PRId64, j->n, j->k);
    else
        snprintf(buf, cap, "%" PRId64, j->n);
}

static const char *result_word(const result *r)
{
    if (r->no_input)
        return "NO-INPUT";
    if (r->pass)
        return "pass";
    return r->reference < 0 && r->status != KD_OK ? kd_status_name(r->status) : "FAIL";
}

static void print_row(run_state *s, const result *r)
{
    if (s->o->json)
        return;
    const job *j = &s->jobs[r->job];
    char size[48];
    size_text(j, size, sizeof size);
    int ran = !r->no_input && (r->reference >= 0 || r->status == KD_OK);
    fprintf(s->out, "%-12s %-7s %3lld  %-12s %-10s %-10s ", kd_op_name(j->op), kernel_of(j),
            j->m, size, s->v[r->variant].name,
            r->reference < 0 ? "oracle" : s->v[r->reference].name);
    if (ran && s->v[r->variant].q8 && r->reference < 0)
        fprintf(s->out, "%11.3e %11.3e  %s (q8: nmse budget %g, max rel err %.3e)\n",
                r->cmp.max_abs, r->cmp.nmse, result_word(r), Q8_NMSE_BUDGET, r->max_rel);
    else if (ran)
        fprintf(s->out, "%11.3e %11.3e  %s\n", r->cmp.max_abs, r->cmp.nmse, result_word(r));
    else
        fprintf(s->out, "%11s %11s  %s\n", "-", "-", result_word(r));
    fflush(s->out);
}

static void print_weight_line(run_state *s, const job *j)
{
    s->last_weight_shown = j->weight;
    if (s->o->json)
        return;
    const kd_gguf_tensor_info *ti = j->weight;
    char name[256];
    printable(name, sizeof name, ti->name.data, ti->name.len);
    fprintf(s->out, "-- weight %s: %s, %" PRId64 " x %" PRId64, name,
            kd_ggml_type_name(ti->ggml_type), j->weight_rows, j->k);
    if (j->n < j->weight_rows)
        fprintf(s->out, ", first %" PRId64 " rows checked (--rows)", j->n);
    fputc('\n', s->out);
}

static void print_header(run_state *s)
{
    const model_src *src = &s->src;
    const kd_model_shape *sh = &src->shape;
    FILE *f = s->out;
    if (src->g)
        fprintf(f, "kdispatch compare: model file %s (architecture %s)\n  shape: hidden %" PRId64
                   ", intermediate %" PRId64 ", %d heads x %d, rms eps %g, rope base %g (%s)\n"
                   "  weights: %d picked of %" PRIu64 " Q4_K/Q6_K tensors%s\n",
                s->o->gguf, src->arch, sh->hidden, sh->intermediate, sh->heads, sh->head_dim,
                src->eps, src->rope_base, src->rope_mode == KD_ROPE_NEOX ? "neox" : "normal",
                src->nweights, src->n_candidates,
                src->norm ? "; rmsnorm uses the file's norm weight" : "");
    else
        fprintf(f, "kdispatch compare: shape %s (%s: hidden %" PRId64 ", intermediate %" PRId64
                   ", %d heads x %d)\n",
                sh->name, sh->like, sh->hidden, sh->intermediate, sh->heads, sh->head_dim);
    fprintf(f, "  seed %llu, tolerance %g (|a - ref| <= tol * max(1, |ref|))\n", s->o->seed,
            s->o->tol);
    for (int i = 0; i < s->nv; i++)
        fprintf(f, "  %-10s %s\n", s->v[i].name, variant_detail(s, &s->v[i]));
    fputs(s->notes, f);
    s->header_done = 1;
    fprintf(f, "\n%-12s %-7s %3s  %-12s %-10s %-10s %11s %11s  %s\n", "op", "kernel", "M", "size",
            "backend", "vs", "max_abs_err", "nmse", "result");
}

/* Where the first bad element is: (row, column) of the output. */
static void print_failure(run_state *s, const result *r)
{
    const job *j = &s->jobs[r->job];
    fprintf(s->out, "  FAIL %s %s M=%lld", kd_op_name(j->op), kernel_of(j), j->m);
    if (j->weight) {
        char name[256];
        printable(name, sizeof name, j->weight->name.data, j->weight->name.len);
        fprintf(s->out, " %s", name);
    }
    fprintf(s->out, ": %s vs %s: ", s->v[r->variant].name,
            r->reference < 0 ? "oracle" : s->v[r->reference].name);
    if (r->no_input)
        fprintf(s->out, "inputs could not be built\n");
    else if (r->reference < 0 && r->status != KD_OK)
        fprintf(s->out, "did not run (%s)\n", kd_status_name(r->status));
    else if (s->v[r->variant].q8)
        fprintf(s->out, "nmse %.3e (budget %g from %d outputs), or an error beyond what "
                "quantizing x explains, or a non-finite value; max rel err %.3e\n",
                r->cmp.nmse, Q8_NMSE_BUDGET, Q8_NMSE_MIN_OUTPUTS, r->max_rel);
    else
        fprintf(s->out, "%" PRId64 " of %" PRId64 " values out of tolerance, first at row %" PRId64
                ", column %" PRId64 "; max abs err %.3e\n",
                r->cmp.bad, r->count, r->cmp.first_bad / j->n, r->cmp.first_bad % j->n,
                r->cmp.max_abs);
}

static int count_failed(const run_state *s)
{
    int failed = 0;
    for (int i = 0; i < s->nres; i++)
        failed += !s->res[i].pass;
    return failed;
}

static void print_verdict(run_state *s)
{
    int failed = count_failed(s), vs_oracle = 0;
    for (int i = 0; i < s->nres; i++)
        vs_oracle += s->res[i].reference < 0;
    fprintf(s->out, "\nverdict: %s (%d checks: %d against the oracle, %d pairwise; %d failed",
            failed || s->missing ? "FAIL" : "PASS", s->nres, vs_oracle, s->nres - vs_oracle,
            failed);
    if (s->missing)
        fprintf(s->out, "; %d installed backend(s) did not run", s->missing);
    fputs(")\n", s->out);
    for (int i = 0; i < s->nres; i++)
        if (!s->res[i].pass)
            print_failure(s, &s->res[i]);
}

/* ---- JSON output -------------------------------------------------------------------------- */

static void print_json_model(run_state *s)
{
    const model_src *src = &s->src;
    const kd_model_shape *sh = &src->shape;
    FILE *f = s->out;
    fprintf(f, "\"model\":{\"source\":\"%s\",", src->g ? "gguf" : "builtin");
    if (src->g) {
        fputs("\"file\":", f);
        kd_json_write_str(f, s->o->gguf);
        fputs(",\"architecture\":", f);
        kd_json_write_str(f, src->arch);
    } else {
        fputs("\"name\":", f);
        kd_json_write_str(f, sh->name);
        fputs(",\"like\":", f);
        kd_json_write_str(f, sh->like);
    }
    fprintf(f, ",\"hidden\":%" PRId64 ",\"intermediate\":%" PRId64 ",\"heads\":%d,"
               "\"head_dim\":%d,\"rms_eps\":%g,\"rope_base\":%g},\n",
            sh->hidden, sh->intermediate, sh->heads, sh->head_dim, src->eps, src->rope_base);
}

static void print_json_result(run_state *s, const result *r, int first)
{
    const job *j = &s->jobs[r->job];
    FILE *f = s->out;
    fprintf(f, "%s\n  {\"op\":\"%s\",\"kernel\":\"%s\",\"m\":%lld,\"n\":%" PRId64 ",\"k\":%" PRId64
               ",\"tensor\":",
            first ? "" : ",", kd_op_name(j->op), kernel_of(j), j->m, j->n, j->k);
    if (j->weight) {
        kd_json_write_strn(f, j->weight->name.data, (size_t)j->weight->name.len);
        fprintf(f, ",\"tensor_type\":\"%s\",\"tensor_rows\":%" PRId64 ",\"rows_checked\":%" PRId64,
                kd_ggml_type_name(j->weight->ggml_type), j->weight_rows, j->n);
    } else {
        fputs("null", f);
    }
    fputs(",\"backend\":", f);
    kd_json_write_str(f, s->v[r->variant].name);
    fputs(",\"reference\":", f);
    kd_json_write_str(f, r->reference < 0 ? "oracle" : s->v[r->reference].name);
    fprintf(f, ",\"status\":\"%s\",\"max_abs_err\":",
            r->no_input ? "no_input" : kd_status_name(r->status));
    kd_json_write_num(f, r->cmp.max_abs, "%.6e");
    fputs(",\"nmse\":", f);
    kd_json_write_num(f, r->cmp.nmse, "%.6e");
    if (s->v[r->variant].q8) {
        fprintf(f, ",\"gemv_path\":\"q8\",\"nmse_budget\":%g,\"max_rel_err\":", Q8_NMSE_BUDGET);
        kd_json_write_num(f, r->max_rel, "%.6e");
    }
    fprintf(f, ",\"bad\":%" PRId64 ",\"count\":%" PRId64 ",\"pass\":%s}", r->cmp.bad, r->count,
            r->pass ? "true" : "false");
}

static void print_json(run_state *s)
{
    FILE *f = s->out;
    int failed = count_failed(s);
    fprintf(f, "{\"command\":\"compare\",\"version\":\"%s\",\"seed\":%llu,\"tolerance\":%g,\n",
            kd_version(), s->o->seed, s->o->tol);
    print_json_model(s);
    fputs("\"variants\":[", f);
    for (int i = 0; i < s->nv; i++) {
        fprintf(f, "%s{\"name\":", i ? "," : "");
        kd_json_write_str(f, s->v[i].name);
        fprintf(f, ",\"backend\":\"%s\",\"detail\":", kd_backend_name(s->v[i].backend));
        kd_json_write_str(f, variant_detail(s, &s->v[i]));
        fputc('}', f);
    }
    fputs("],\n\"results\":[", f);
    for (int i = 0; i < s->nres; i++)
        print_json_result(s, &s->res[i], i == 0);
    fprintf(f, "\n],\n\"checks\":%d,\"failed\":%d,\"missing_backends\":%d,\"verdict\":\"%s\"}\n",
            s->nres, failed, s->missing, failed || s->missing ? "FAIL" : "PASS");
}

/* ---- entry ---------------------------------------------------------------------------------- */

int kd_compare_run(kd_context *ctx, const kd_compare_opts *o, FILE *out)
{
    if (!ctx || !o || !out || (!o->gguf && !o->shape) || o->nm < 1 || o->nm > KD_COMPARE_MAX_M ||
        o->ntensors < 0 || o->ntensors > KD_COMPARE_MAX_TENSORS || !kd_compare_tol_ok(o->tol)) {
        fprintf(stderr, "kdispatch compare: invalid options\n");
        return 2;
    }
    run_state s = {.ctx = ctx, .o = o, .out = out};
    int rc = 2;
    if (pick_variants(&s) || open_model(&s))
        goto done;
    if (plan_jobs(&s)) {
        fprintf(stderr, "kdispatch compare: out of memory\n");
        goto done;
    }
    if (!o->json)
        print_header(&s);
    rc = 0;
    for (int i = 0; i < s.njobs && rc == 0; i++)
        if (run_job(&s, i)) {
            fprintf(stderr, "kdispatch compare: out of memory\n");
            rc = 1;
        }
    if (o->json)
        print_json(&s);
    else
        print_verdict(&s);
    if (rc == 0)
        rc = count_failed(&s) ? 1 : 0;
    if (rc == 0 && s.missing) {
        fprintf(stderr, "kdispatch compare: FAIL: %d installed backend(s) did not run (see "
                "above)\n", s.missing);
        rc = 1;
    }
done:
    free(s.jobs);
    free(s.res);
    kd_gguf_close(s.src.g);
    return rc;
}

/* For kdispatch fleet: the seed of compare's random problem of op at batch size m, so
 * that fleet's agreement check runs the very problems compare ran. */
uint64_t kd_compare_problem_seed(const kd_compare_opts *o, kd_op op, long long m)
{
    return job_seed(o, op, m, 0);
}
