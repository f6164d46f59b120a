/*
 * The parity rules over parsed PTX: register provenance of shared-memory addresses, the
 * per-kernel facts (dispatch mechanism, static shared size, shared accesses) and the
 * per-pair comparison.
 */
#include "ptx_check.h"
#include "ptx_flow.h"
#include "../runtime/op_traits.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The six pairs: the op table's names and kernels (one source for every copy). */
#define KD_PTX_PAIR(op, name, kind, wtype, single, batched) {name, single, batched},
const kd_ptx_pair_def kd_ptx_builtin_pairs[KD_PTX_BUILTIN_PAIRS] = {KD_OP_TABLE(KD_PTX_PAIR)};
#undef KD_PTX_PAIR
_Static_assert(KD_PTX_BUILTIN_PAIRS == KD_OP_COUNT, "one pair per op");

const char *kd_ptx_rule_name(int rule)
{
    switch (rule) {
    case KD_PTX_RULE_BATCH_DISPATCH: return "batch-dispatch";
    case KD_PTX_RULE_SHARED_U64: return "shared-u64";
    case KD_PTX_RULE_SHARED_SIZE: return "shared-size";
    case KD_PTX_RULE_MISSING: return "kernel-missing";
    case KD_PTX_RULE_PTXAS: return "ptxas";
    case KD_PTX_RULE_DUPLICATE: return "duplicate-definition";
    case KD_PTX_RULE_NOT_KERNEL: return "not-a-kernel";
    case KD_PTX_RULE_SPECIAL_WRITE: return "special-register-write";
    default: return "unknown";
    }
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Opcode base equal to name ("ld" for "ld.shared.f32"). */
static int opcode_is(const char *opcode, const char *name)
{
    size_t n = strlen(name);
    return strncmp(opcode, name, n) == 0 && (opcode[n] == '\0' || opcode[n] == '.');
}

/* 1 when the opcode has the modifier seg (".to" in "cvta.to.shared.u64"). */
static int has_modifier(const char *opcode, const char *seg)
{
    size_t n = strlen(seg);
    for (const char *s = strchr(opcode, '.'); s; s = strchr(s + 1, '.'))
        if (strncmp(s + 1, seg, n) == 0 && (s[1 + n] == '\0' || s[1 + n] == '.'))
            return 1;
    return 0;
}

/* ---- provenance --------------------------------------------------------------------------- */

struct kd_ptx_prov {
    size_t cap;          /* power of two */
    const char **names;  /* NULL: empty slot; names live in the module */
    unsigned char *bits;
    int *origin;
};

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull & (size_t)-1;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * (size_t)1099511628211ull;
    return h;
}

static size_t prov_slot(const kd_ptx_prov *p, const char *name)
{
    size_t i = hash_str(name) & (p->cap - 1);
    while (p->names[i] && strcmp(p->names[i], name) != 0)
        i = (i + 1) & (p->cap - 1);
    return i;
}

static size_t prov_insert(kd_ptx_prov *p, const char *name)
{
    size_t i = prov_slot(p, name);
    p->names[i] = name;
    return i;
}

static const kd_ptx_var *find_shared_var(const kd_ptx_module *m, const kd_ptx_func *f,
                                         const char *name)
{
    const kd_ptx_var *v = kd_ptx_find_func_shared(f, name);
    return v ? v : kd_ptx_find_module_shared(m, name);
}

/* Operations through which a register keeps (or gains) a shared address. */
static int propagates(const char *opcode)
{
    static const char *const ops[] = {"mov", "add", "sub", "mad", "mad24", "shl", "shr",
                                      "and", "or", "xor", "cvt", "selp", "cvta"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (opcode_is(opcode, ops[i]))
            return 1;
    return 0;
}

static unsigned source_bits(const kd_ptx_module *m, const kd_ptx_func *f, const kd_ptx_prov *p,
                            const kd_ptx_insn *in)
{
    unsigned bits = 0;
    for (int k = 1; k < in->n_ops; k++) {
        const kd_ptx_operand *o = &in->ops[k];
        if (!o->base)
            continue;
        if (o->kind == KD_PTX_OPND_REG) {
            size_t s = prov_slot(p, o->base);
            bits |= p->names[s] ? p->bits[s] : 0u;
        } else if ((o->kind == KD_PTX_OPND_SYM || o->kind == KD_PTX_OPND_EXPR) &&
                   find_shared_var(m, f, o->base)) {
            bits |= KD_PTX_PROV_SHARED;
        }
    }
    return bits;
}

/* What the destination of in gets: cvta.to.shared makes a shared-window address,
 * cvta.shared turns one into a generic address; other cvta forms leave shared memory. */
static unsigned transfer(const char *opcode, unsigned src)
{
    if (!opcode_is(opcode, "cvta"))
        return src;
    int shared = has_modifier(opcode, "shared") || has_modifier(opcode, "shared::cta") ||
                 has_modifier(opcode, "shared::cluster");
    if (!shared)
        return 0;
    return has_modifier(opcode, "to") ? KD_PTX_PROV_SHARED : KD_PTX_PROV_GENERIC_SHARED;
}

static int is_propagating(const kd_ptx_insn *in)
{
    return in->n_ops >= 2 && in->ops[0].kind == KD_PTX_OPND_REG && propagates(in->opcode);
}

/* Gives in's destination what its sources give it; returns its slot if it gained a bit,
 * else (size_t)-1. */
static size_t prov_apply(const kd_ptx_module *m, const kd_ptx_func *f, kd_ptx_prov *p,
                         const kd_ptx_insn *in)
{
    unsigned add = transfer(in->opcode, source_bits(m, f, p, in));
    size_t d = prov_slot(p, in->ops[0].base);
    if (!add || (p->bits[d] | add) == p->bits[d])
        return (size_t)-1;
    if (!p->bits[d])
        p->origin[d] = in->line;
    p->bits[d] |= (unsigned char)add;
    return d;
}

/* Def-use lists: for each register slot, the propagating instructions that read it. */
typedef struct uses {
    size_t *start; /* cap + 1 offsets into list */
    int *list;
} uses;

static int build_uses(const kd_ptx_func *f, kd_ptx_prov *p, uses *u, size_t n_src)
{
    u->start = calloc(p->cap + 1, sizeof *u->start);
    u->list = malloc((n_src + 1) * sizeof *u->list);
    if (!u->start || !u->list)
        return -1;
    for (int i = 0; i < f->n_insns; i++)
        for (int k = 1; is_propagating(&f->insns[i]) && k < f->insns[i].n_ops; k++)
            if (f->insns[i].ops[k].kind == KD_PTX_OPND_REG)
                u->start[prov_slot(p, f->insns[i].ops[k].base) + 1]++;
    for (size_t s = 0; s < p->cap; s++)
        u->start[s + 1] += u->start[s];
    size_t *fill = calloc(p->cap, sizeof *fill);
    if (!fill)
        return -1;
    for (int i = 0; i < f->n_insns; i++) {
        for (int k = 1; is_propagating(&f->insns[i]) && k < f->insns[i].n_ops; k++) {
            if (f->insns[i].ops[k].kind != KD_PTX_OPND_REG)
                continue;
            size_t s = prov_slot(p, f->insns[i].ops[k].base);
            u->list[u->start[s] + fill[s]++] = i;
        }
    }
    free(fill);
    return 0;
}

/* Worklist to the fixed point: a register that gains a bit re-applies the instructions
 * that read it. Each register gains at most two bits, so each is pushed at most twice
 * and the work is linear in the code (loops included). */
static int prov_solve(const kd_ptx_module *m, const kd_ptx_func *f, kd_ptx_prov *p,
                      size_t n_src)
{
    uses u = {0};
    size_t *stack = malloc((2 * p->cap + 1) * sizeof *stack), top = 0;
    int rc = stack && build_uses(f, p, &u, n_src) == 0 ? 0 : -1;
    for (int i = 0; rc == 0 && i < f->n_insns; i++) {
        size_t d = is_propagating(&f->insns[i]) ? prov_apply(m, f, p, &f->insns[i])
                                                 : (size_t)-1;
        if (d != (size_t)-1)
            stack[top++] = d;
    }
    while (rc == 0 && top > 0) {
        size_t s = stack[--top];
        for (size_t j = u.start[s]; j < u.start[s + 1]; j++) {
            size_t d = prov_apply(m, f, p, &f->insns[u.list[j]]);
            if (d != (size_t)-1)
                stack[top++] = d;
        }
    }
    free(stack);
    free(u.start);
    free(u.list);
    return rc;
}

kd_status kd_ptx_prov_compute(const kd_ptx_module *m, const kd_ptx_func *f, kd_ptx_prov **out)
{
    if (!m || !f || !out)
        return KD_ERR_NULL;
    *out = NULL;
    size_t n_ops = 1;
    for (int i = 0; i < f->n_insns; i++)
        n_ops += (size_t)f->insns[i].n_ops;
    size_t cap = 16;
    while (cap < 2 * n_ops)
        cap *= 2;
    kd_ptx_prov *p = calloc(1, sizeof *p);
    if (!p)
        return KD_ERR_NOMEM;
    p->cap = cap;
    p->names = calloc(cap, sizeof *p->names);
    p->bits = calloc(cap, 1);
    p->origin = calloc(cap, sizeof *p->origin);
    if (!p->names || !p->bits || !p->origin) {
        kd_ptx_prov_free(p);
        return KD_ERR_NOMEM;
    }
    /* every register a propagating instruction names gets its slot now (at most n_ops,
     * so the table stays at most half full) */
    for (int i = 0; i < f->n_insns; i++)
        for (int k = 0; is_propagating(&f->insns[i]) && k < f->insns[i].n_ops; k++)
            if (f->insns[i].ops[k].kind == KD_PTX_OPND_REG)
                prov_insert(p, f->insns[i].ops[k].base);
    if (prov_solve(m, f, p, n_ops) != 0) {
        kd_ptx_prov_free(p);
        return KD_ERR_NOMEM;
    }
    *out = p;
    return KD_OK;
}

unsigned kd_ptx_prov_of(const kd_ptx_prov *p, const char *reg, int *origin_line)
{
    if (origin_line)
        *origin_line = 0;
    if (!p || !reg)
        return 0;
    size_t s = prov_slot(p, reg);
    if (!p->names[s])
        return 0;
    if (origin_line)
        *origin_line = p->origin[s];
    return p->bits[s];
}

void kd_ptx_prov_free(kd_ptx_prov *p)
{
    if (!p)
        return;
    free(p->names);
    free(p->bits);
    free(p->origin);
    free(p);
}

/* ---- violations --------------------------------------------------------------------------- */

typedef struct viol_list {
    kd_ptx_violation *v;
    int n, cap;
} viol_list;

static kd_ptx_violation *viol_add(viol_list *l, const kd_ptx_module *m, const char *kernel,
                                  int rule, int line)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 4;
        kd_ptx_violation *nv = realloc(l->v, (size_t)cap * sizeof *nv);
        if (!nv)
            return NULL;
        l->v = nv;
        l->cap = cap;
    }
    kd_ptx_violation *v = &l->v[l->n++];
    memset(v, 0, sizeof *v);
    v->rule = rule;
    v->line = line;
    copy_str(v->kernel, sizeof v->kernel, kernel);
    copy_str(v->file, sizeof v->file, m ? m->name : "");
    if (m && line > 0)
        kd_ptx_line_text(m, line, v->text, sizeof v->text);
    return v;
}

/* ---- per-kernel analysis ------------------------------------------------------------------- */

static unsigned long long add_var_bytes(unsigned long long off, const kd_ptx_var *v,
                                        int *dynamic)
{
    if (v->is_dynamic) {
        *dynamic = 1;
        return off;
    }
    const unsigned long long cap = 1ull << 62;
    unsigned long long a = v->align ? v->align : 1;
    off = (off + a - 1) / a * a;
    return off + v->bytes > cap ? cap : off + v->bytes; /* saturate: sizes are bounded */
}

static void mark_module_shared(const kd_ptx_module *m, const char *name, unsigned char *used)
{
    const kd_ptx_var *v = name ? kd_ptx_find_module_shared(m, name) : NULL;
    if (v)
        used[v - m->shared] = 1;
}

/* Function i's own .shared (added to *off) and the module-scope ones it names (used). */
static int func_shared(const kd_ptx_module *m, int i, unsigned char *used,
                       unsigned long long *off, kd_ptx_kernel_facts *facts)
{
    const kd_ptx_func *g = NULL;
    kd_ptx_body *body = NULL;
    if (kd_ptx_func_load(m, &m->funcs[i], &g, &body) != KD_OK)
        return -1;
    for (int j = 0; j < g->n_shared; j++)
        *off = add_var_bytes(*off, &g->shared[j], &facts->dynamic_shared);
    for (int j = 0; j < g->n_insns; j++)
        for (int k = 0; k < g->insns[j].n_ops; k++) {
            const kd_ptx_operand *o = &g->insns[j].ops[k];
            mark_module_shared(m, o->base, used);
            for (int t = 0; t < o->n_items; t++)
                mark_module_shared(m, o->items[t], used);
        }
    kd_ptx_body_free(body);
    return 0;
}

/* The shared bytes of the reachable functions of module m (reach, or only function fi
 * when reach is NULL), added to *off. */
static int module_shared(const kd_ptx_module *m, const unsigned char *reach, int fi,
                         unsigned long long *off, kd_ptx_kernel_facts *facts)
{
    unsigned char *used = calloc((size_t)m->n_shared + 1, 1);
    if (!used)
        return -1;
    for (int i = 0; i < m->n_funcs; i++)
        if ((reach ? reach[i] : i == fi) && func_shared(m, i, used, off, facts) != 0) {
            free(used);
            return -1;
        }
    for (int s = 0; s < m->n_shared; s++)
        if (used[s])
            *off = add_var_bytes(*off, &m->shared[s], &facts->dynamic_shared);
    free(used);
    return 0;
}

/* Static shared bytes: the function-scope .shared of every reachable function, then the
 * module-scope .shared variables they name, laid out with their alignment; then those of
 * the reachable functions of other inputs (-rdc: defined there, .extern here). An
 * unsized (.extern) array they name is dynamic shared memory. */
static int shared_size(const kd_ptx_module *m, const flow_kernel *fk,
                       kd_ptx_kernel_facts *facts)
{
    unsigned long long off = 0;
    if (module_shared(m, fk->reach, -1, &off, facts) != 0)
        return -1;
    for (int k = 0; k < fk->n_ext; k++)
        if (module_shared(fk->ext_mod[k], NULL, fk->ext_func[k], &off, facts) != 0)
            return -1;
    facts->static_shared_bytes = off;
    return 0;
}

static int add_warning(kd_ptx_comparison *c, const char *text)
{
    void *nw = realloc(c->warnings, (size_t)(c->n_warnings + 1) * sizeof *c->warnings);
    if (!nw)
        return -1;
    c->warnings = nw;
    copy_str(c->warnings[c->n_warnings++], sizeof c->warnings[0], text);
    return 0;
}

/* twin: the single kernel when f is the batched one (which parameter is m_dim), else NULL */
static kd_status analyze(flow_module *fm, const kd_ptx_func *f, const kd_ptx_func *twin,
                         kd_ptx_kernel_facts *facts, viol_list *viol, kd_ptx_comparison *cmp)
{
    const kd_ptx_module *m = fm->m;
    memset(facts, 0, sizeof *facts);
    copy_str(facts->name, sizeof facts->name, f->name);
    copy_str(facts->file, sizeof facts->file, m->name);
    copy_str(facts->target, sizeof facts->target, m->target ? m->target : "?");
    facts->found = f->has_body;
    facts->line = f->line;
    flow_kernel fk;
    kd_status st = flow_analyze_kernel(fm, f, flow_m_dim_params(twin, f), &fk);
    if (st != KD_OK)
        return st;
    if (shared_size(m, &fk, facts) != 0)
        st = KD_ERR_NOMEM;
    if (fk.batch_found) {
        copy_str(facts->mechanism, sizeof facts->mechanism, fk.mechanism);
        facts->mechanism_line = fk.mechanism_line;
        copy_str(facts->mechanism_path, sizeof facts->mechanism_path, fk.path);
    }
    facts->shared_accesses = fk.shared_accesses;
    for (int i = 0; i < fk.n_issues && st == KD_OK; i++) {
        if (fk.issues[i].rule == FLOW_WARNING) {
            char w[KD_PTX_TEXT_MAX];
            snprintf(w, sizeof w, "%.200s (%.200s:%d): %.500s", fk.issue_func[i]->name,
                     fk.issue_mod[i]->name, fk.issues[i].line, fk.issues[i].detail);
            if (cmp && add_warning(cmp, w) != 0)
                st = KD_ERR_NOMEM;
            continue;
        }
        kd_ptx_violation *v = viol_add(viol, fk.issue_mod[i], fk.issue_func[i]->name,
                                       fk.issues[i].rule, fk.issues[i].line);
        if (!v)
            st = KD_ERR_NOMEM;
        else
            copy_str(v->detail, sizeof v->detail, fk.issues[i].detail);
    }
    flow_kernel_free(&fk);
    return st;
}

kd_status kd_ptx_analyze_kernel(const kd_ptx_module *m, const kd_ptx_func *f,
                                kd_ptx_kernel_facts *facts, kd_ptx_violation **viol,
                                int *n_viol)
{
    if (!m || !f || !facts || !viol || !n_viol)
        return KD_ERR_NULL;
    if (f < m->funcs || f >= m->funcs + m->n_funcs)
        return KD_ERR_ARG;
    viol_list l = {0};
    flow_module fm;
    kd_status st = flow_module_init(&fm, m);
    if (st == KD_OK)
        st = analyze(&fm, f, NULL, facts, &l, NULL);
    flow_module_free(&fm);
    if (st != KD_OK) {
        free(l.v);
        l.v = NULL;
        l.n = 0;
    }
    *viol = l.v;
    *n_viol = l.n;
    return st;
}

/* ---- pairs ----------------------------------------------------------------------------------- */

typedef struct side {
    const kd_ptx_module *m;
    const kd_ptx_func *f;
    const kd_ptx_ptxas_result *res;
    flow_module *fm;
} side;

static void lookup_resources(const kd_ptx_ptxas_result *res, kd_ptx_kernel_facts *facts)
{
    if (!res || !res->ok)
        return;
    for (int i = 0; i < res->n; i++)
        if (strcmp(res->entries[i].name, facts->name) == 0)
            facts->res = res->entries[i].res;
}

/* Adds a ptxas warning about the kernel of side k; when strict it is also a violation. */
static int ptxas_warn(kd_ptx_comparison *c, viol_list *viol, const side *k, int strict,
                      const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static int ptxas_warn(kd_ptx_comparison *c, viol_list *viol, const side *k, int strict,
                      const char *fmt, ...)
{
    void *nw = realloc(c->warnings, (size_t)(c->n_warnings + 1) * sizeof *c->warnings);
    if (!nw)
        return -1;
    c->warnings = nw;
    char *w = c->warnings[c->n_warnings++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w, sizeof c->warnings[0], fmt, ap);
    va_end(ap);
    if (!strict)
        return 0;
    kd_ptx_violation *v = viol_add(viol, k->m, k->f->name, KD_PTX_RULE_PTXAS, k->f->line);
    if (!v)
        return -1;
    copy_str(v->detail, sizeof v->detail, w);
    return 0;
}

/* Spills and the register jump, from ptxas. */
static int ptxas_findings(kd_ptx_comparison *c, viol_list *viol, const side *s, const side *b,
                          const kd_ptx_check_options *opt)
{
    double factor = opt && opt->reg_factor > 0 ? opt->reg_factor : 1.5;
    int strict = opt && opt->strict;
    const kd_ptx_kernel_facts *k[2] = {&c->single, &c->batched};
    const side *sd[2] = {s, b};
    for (int i = 0; i < 2; i++) {
        const kd_ptx_resources *r = &k[i]->res;
        if (r->valid && r->spill_store_bytes + r->spill_load_bytes > 0 &&
            ptxas_warn(c, viol, sd[i], strict,
                       "%s spills registers: %d bytes spill stores, %d bytes spill loads",
                       k[i]->name, r->spill_store_bytes, r->spill_load_bytes) != 0)
            return -1;
    }
    const kd_ptx_resources *rs = &c->single.res, *rb = &c->batched.res;
    if (rs->valid && rb->valid && rs->registers > 0 &&
        (double)rb->registers > factor * (double)rs->registers &&
        ptxas_warn(c, viol, b, strict, "%s uses %d registers, more than %.2f x the %d of %s",
                   c->batched.name, rb->registers, factor, rs->registers, c->single.name) != 0)
        return -1;
    return 0;
}

/* Definition errors of one side: a .func as a pair member, a second definition of the
 * same name in its module. */
static kd_status definition_errors(viol_list *viol, const side *k)
{
    if (!k->f->is_entry) {
        kd_ptx_violation *v = viol_add(viol, k->m, k->f->name, KD_PTX_RULE_NOT_KERNEL, k->f->line);
        if (!v)
            return KD_ERR_NOMEM;
        snprintf(v->detail, sizeof v->detail, "%s is a .func, not a kernel (.entry)", k->f->name);
    }
    for (const kd_ptx_func *o = kd_ptx_first_func(k->m, k->f->name); o;
         o = kd_ptx_next_func(k->m, o)) {
        if (o == k->f || !o->has_body)
            continue;
        kd_ptx_violation *v = viol_add(viol, k->m, k->f->name, KD_PTX_RULE_DUPLICATE, o->line);
        if (!v)
            return KD_ERR_NOMEM;
        snprintf(v->detail, sizeof v->detail,
                 "%s is defined more than once in %s (lines %d and %d)", k->f->name, k->m->name,
                 k->f->line, o->line);
    }
    return KD_OK;
}

static kd_status rule_violations(viol_list *viol, kd_ptx_comparison *c, const side *s,
                                 const side *b)
{
    if (!c->batched.mechanism[0]) {
        kd_ptx_violation *v =
            viol_add(viol, b->m, b->f->name, KD_PTX_RULE_BATCH_DISPATCH, b->f->line);
        if (!v)
            return KD_ERR_NOMEM;
        snprintf(v->detail, sizeof v->detail,
                 "no value derived from %%ctaid.y/%%ctaid.z or from a loaded m_dim parameter "
                 "that bounds a loop reaches the address of a global load or store on a path "
                 "from the entry");
    }
    if (c->single.static_shared_bytes != c->batched.static_shared_bytes ||
        c->single.dynamic_shared != c->batched.dynamic_shared) {
        int line = b->f->n_shared ? b->f->shared[0].line : b->f->line;
        kd_ptx_violation *v = viol_add(viol, b->m, b->f->name, KD_PTX_RULE_SHARED_SIZE, line);
        if (!v)
            return KD_ERR_NOMEM;
        snprintf(v->detail, sizeof v->detail,
                 "shared memory differs: %s has %llu static bytes%s, %s has %llu static "
                 "bytes%s", c->batched.name, c->batched.static_shared_bytes,
                 c->batched.dynamic_shared ? " + dynamic" : "", c->single.name,
                 c->single.static_shared_bytes, c->single.dynamic_shared ? " + dynamic" : "");
    }
    (void)s;
    return KD_OK;
}

static kd_status compare(kd_ptx_pair_result *pr, const side *s, const side *b,
                         const kd_ptx_check_options *opt)
{
    kd_ptx_comparison *nc =
        realloc(pr->comparisons, (size_t)(pr->n_comparisons + 1) * sizeof *nc);
    if (!nc)
        return KD_ERR_NOMEM;
    pr->comparisons = nc;
    kd_ptx_comparison *c = &nc[pr->n_comparisons++];
    memset(c, 0, sizeof *c);
    viol_list viol = {0};
    kd_status st = definition_errors(&viol, s);
    if (st == KD_OK)
        st = definition_errors(&viol, b);
    if (st == KD_OK)
        st = analyze(s->fm, s->f, NULL, &c->single, &viol, c);
    if (st == KD_OK)
        st = analyze(b->fm, b->f, s->f, &c->batched, &viol, c);
    lookup_resources(s->res, &c->single);
    lookup_resources(b->res, &c->batched);
    if (st == KD_OK)
        st = rule_violations(&viol, c, s, b);
    if (st == KD_OK && ptxas_findings(c, &viol, s, b, opt) != 0)
        st = KD_ERR_NOMEM;
    c->violations = viol.v;
    c->n_violations = viol.n;
    c->passed = st == KD_OK && viol.n == 0;
    return st;
}

static void describe_missing(kd_ptx_pair_result *pr, int n_mods, int have_s, int have_b)
{
    const char *why = n_mods == 0 ? "no PTX input" : "not defined in any input";
    if (!have_s && !have_b)
        snprintf(pr->missing, sizeof pr->missing, "%s and %s: %s", pr->single, pr->batched, why);
    else
        snprintf(pr->missing, sizeof pr->missing, "%s: %s", have_s ? pr->batched : pr->single,
                 why);
}

/* Every definition (with a body, .entry or not) of name in module m. */
static int defs_in(const kd_ptx_module *m, const char *name, const kd_ptx_func **out, int cap)
{
    int n = 0;
    for (const kd_ptx_func *f = kd_ptx_first_func(m, name); f; f = kd_ptx_next_func(m, f))
        if (f->has_body) {
            if (n < cap)
                out[n] = f;
            n++;
        }
    return n < cap ? n : cap;
}

#define MAX_DEFS_PER_MODULE 8

typedef struct pair_ctx {
    kd_ptx_pair_result *pr;
    const kd_ptx_module *const *mods;
    const kd_ptx_ptxas_result *const *res;
    flow_module *fms;
    int n_mods;
    const kd_ptx_check_options *opt;
} pair_ctx;

static side make_side(const pair_ctx *p, int i, const kd_ptx_func *f)
{
    side sd = {p->mods[i], f, p->res ? p->res[i] : NULL, &p->fms[i]};
    return sd;
}

/* All comparisons of module i's definitions: with the other member in the same module,
 * or, where module i has only one member, with every definition of the other member in
 * the modules that do not define both (order-independent: every such pair, once). */
static kd_status pair_module(pair_ctx *p, int i, const char *sname, const char *bname)
{
    const kd_ptx_func *S[MAX_DEFS_PER_MODULE], *B[MAX_DEFS_PER_MODULE];
    int ns = defs_in(p->mods[i], sname, S, MAX_DEFS_PER_MODULE);
    int nb = defs_in(p->mods[i], bname, B, MAX_DEFS_PER_MODULE);
    kd_status st = KD_OK;
    for (int a = 0; a < ns && st == KD_OK; a++)
        for (int b = 0; b < nb && st == KD_OK; b++) {
            side ss = make_side(p, i, S[a]), bs = make_side(p, i, B[b]);
            st = compare(p->pr, &ss, &bs, p->opt);
        }
    if (ns == 0 || nb > 0)
        return st;
    /* module i has only the single kernel: each batched definition elsewhere */
    for (int j = 0; j < p->n_mods && st == KD_OK; j++) {
        const kd_ptx_func *B2[MAX_DEFS_PER_MODULE], *S2[MAX_DEFS_PER_MODULE];
        if (j == i || defs_in(p->mods[j], sname, S2, MAX_DEFS_PER_MODULE) > 0)
            continue;
        int nb2 = defs_in(p->mods[j], bname, B2, MAX_DEFS_PER_MODULE);
        for (int a = 0; a < ns && st == KD_OK; a++)
            for (int b = 0; b < nb2 && st == KD_OK; b++) {
                side ss = make_side(p, i, S[a]), bs = make_side(p, j, B2[b]);
                st = compare(p->pr, &ss, &bs, p->opt);
            }
    }
    return st;
}

/* A batched-only module whose single kernel exists only in modules that define both
 * pairs it with those too, so its definitions are never left unchecked. */
static kd_status pair_batched_only(pair_ctx *p, int i, const char *sname, const char *bname)
{
    const kd_ptx_func *S[MAX_DEFS_PER_MODULE], *B[MAX_DEFS_PER_MODULE];
    if (defs_in(p->mods[i], sname, S, MAX_DEFS_PER_MODULE) > 0)
        return KD_OK;
    int nb = defs_in(p->mods[i], bname, B, MAX_DEFS_PER_MODULE);
    kd_status st = KD_OK;
    for (int j = 0; j < p->n_mods && nb > 0 && st == KD_OK; j++) {
        const kd_ptx_func *S2[MAX_DEFS_PER_MODULE], *B2[MAX_DEFS_PER_MODULE];
        int ns2 = defs_in(p->mods[j], sname, S2, MAX_DEFS_PER_MODULE);
        if (j == i || ns2 == 0 || defs_in(p->mods[j], bname, B2, MAX_DEFS_PER_MODULE) == 0)
            continue; /* single-only modules were paired with this one in pair_module */
        for (int a = 0; a < ns2 && st == KD_OK; a++)
            for (int b = 0; b < nb && st == KD_OK; b++) {
                side ss = make_side(p, j, S2[a]), bs = make_side(p, i, B[b]);
                st = compare(p->pr, &ss, &bs, p->opt);
            }
    }
    return st;
}

static kd_status check_pair(kd_ptx_pair_result *pr, const kd_ptx_pair_def *def,
                            const kd_ptx_module *const *mods,
                            const kd_ptx_ptxas_result *const *res, flow_module *fms,
                            int n_mods, const kd_ptx_check_options *opt)
{
    copy_str(pr->label, sizeof pr->label, def->label ? def->label : def->single);
    copy_str(pr->single, sizeof pr->single, def->single);
    copy_str(pr->batched, sizeof pr->batched, def->batched);
    if (!def->single || !def->batched || !def->single[0] || !def->batched[0]) {
        snprintf(pr->missing, sizeof pr->missing, "pair definition lacks a kernel name");
        return KD_OK;
    }
    pair_ctx p = {pr, mods, res, fms, n_mods, opt};
    int have_s = 0, have_b = 0;
    kd_status st = KD_OK;
    for (int i = 0; i < n_mods && st == KD_OK; i++) {
        const kd_ptx_func *tmp[1];
        have_s |= defs_in(mods[i], def->single, tmp, 1) > 0;
        have_b |= defs_in(mods[i], def->batched, tmp, 1) > 0;
        st = pair_module(&p, i, def->single, def->batched);
        if (st == KD_OK)
            st = pair_batched_only(&p, i, def->single, def->batched);
    }
    if (st != KD_OK)
        return st;
    pr->compared = pr->n_comparisons > 0;
    if (!pr->compared)
        describe_missing(pr, n_mods, have_s, have_b);
    pr->passed = pr->compared;
    for (int i = 0; i < pr->n_comparisons; i++)
        pr->passed &= pr->comparisons[i].passed;
    return KD_OK;
}

kd_status kd_ptx_check_pairs(const kd_ptx_module *const *mods,
                             const kd_ptx_ptxas_result *const *res, int n_mods,
                             const kd_ptx_pair_def *pairs, int n_pairs,
                             const kd_ptx_check_options *opt, kd_ptx_report **out)
{
    if (!out || (n_mods > 0 && !mods) || (n_pairs > 0 && !pairs))
        return KD_ERR_NULL;
    *out = NULL;
    if (n_mods < 0 || n_pairs < 0)
        return KD_ERR_ARG;
    for (int i = 0; i < n_mods; i++)
        if (!mods[i])
            return KD_ERR_NULL;
    kd_ptx_report *r = calloc(1, sizeof *r);
    flow_module *fms = calloc((size_t)n_mods + 1, sizeof *fms);
    if (!r || !fms) {
        free(r);
        free(fms);
        return KD_ERR_NOMEM;
    }
    kd_status st = KD_OK;
    for (int i = 0; i < n_mods && st == KD_OK; i++)
        st = flow_module_init(&fms[i], mods[i]);
    if (st == KD_OK)
        flow_link_modules(fms, n_mods);
    r->reg_factor = opt && opt->reg_factor > 0 ? opt->reg_factor : 1.5;
    r->strict = opt && opt->strict;
    r->n_pairs = n_pairs;
    r->pairs = n_pairs ? calloc((size_t)n_pairs, sizeof *r->pairs) : NULL;
    if (n_pairs && !r->pairs)
        st = KD_ERR_NOMEM;
    for (int i = 0; i < n_pairs && st == KD_OK; i++) {
        st = check_pair(&r->pairs[i], &pairs[i], mods, res, fms, n_mods, opt);
        r->n_compared += r->pairs[i].compared;
        r->n_passed += r->pairs[i].passed;
    }
    for (int i = 0; i < n_mods; i++)
        flow_module_free(&fms[i]);
    free(fms);
    if (st != KD_OK) {
        kd_ptx_report_free(r);
        return st;
    }
    *out = r;
    return KD_OK;
}

void kd_ptx_report_free(kd_ptx_report *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_pairs; i++) {
        for (int j = 0; j < r->pairs[i].n_comparisons; j++) {
            free(r->pairs[i].comparisons[j].violations);
            free(r->pairs[i].comparisons[j].warnings);
        }
        free(r->pairs[i].comparisons);
    }
    free(r->pairs);
    free(r->notes);
    free(r->errors);
    free(r);
}

static kd_status add_line(char (**list)[KD_PTX_TEXT_MAX], int *n, const char *fmt, va_list ap)
{
    void *nl = realloc(*list, (size_t)(*n + 1) * sizeof **list);
    if (!nl)
        return KD_ERR_NOMEM;
    *list = nl;
    vsnprintf((*list)[*n], sizeof **list, fmt, ap);
    (*n)++;
    return KD_OK;
}

kd_status kd_ptx_report_add_note(kd_ptx_report *r, const char *fmt, ...)
{
    if (!r || !fmt)
        return KD_ERR_NULL;
    va_list ap;
    va_start(ap, fmt);
    kd_status st = add_line(&r->notes, &r->n_notes, fmt, ap);
    va_end(ap);
    return st;
}

kd_status kd_ptx_report_add_error(kd_ptx_report *r, const char *fmt, ...)
{
    if (!r || !fmt)
        return KD_ERR_NULL;
    va_list ap;
    va_start(ap, fmt);
    kd_status st = add_line(&r->errors, &r->n_errors, fmt, ap);
    va_end(ap);
    return st;
}

int kd_ptx_report_ok(const kd_ptx_report *r)
{
    return r && r->n_compared > 0 && r->n_passed == r->n_pairs && r->n_errors == 0;
}

void kd_ptx_report_summary(const kd_ptx_report *r, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    snprintf(buf, cap, "%d/%d kernel pairs passed PTX parity", r ? r->n_passed : 0,
             r ? r->n_pairs : 0);
}
