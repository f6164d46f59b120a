/*
 * Data flow over parsed PTX: see ptx_flow.h. Per function: operands are resolved to
 * variables (scoped registers, special registers, memory slots), the instructions are
 * split into basic blocks, reaching definitions are solved over the blocks reachable
 * from the entry (bit sets), each use gets the definitions that reach it, and taint bits
 * flow along those chains to a fixed point (a worklist; every def only gains bits).
 */
#include "ptx_flow.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Taint bits. Bits 8.. stand for the function's parameters (summaries). */
enum {
    T_BATCH = 1u,     /* derived from the batch index */
    T_SHARED = 2u,    /* an address in the shared window */
    T_GSHARED = 4u,   /* a generic address that points into shared memory */
    T_GLOBAL = 8u,    /* a global pointer (cvta.to.global, a kernel's pointer parameter) */
    T_MDIM = 16u,     /* derived from the m_dim parameter */
    T_SHARED64 = 32u  /* a shared address computed in a 64-bit register */
};
#define T_PARAM_SHIFT 8
#define T_PARAMS (~(uint64_t)0 << T_PARAM_SHIFT)
#define MAX_PARAM_BITS 56
#define MAX_CALL_DEPTH 256
/* Above this many bit-set words (blocks x definitions / 64) reaching definitions fall
 * back to every definition reaching every use (flow-insensitive, never unsound for the
 * shared rule; documented in README). */
#define MAX_RD_WORDS ((size_t)1 << 22)

/* The bit of parameter k (the last bit stands for every parameter from it on). */
static uint64_t t_param(int k)
{
    return (uint64_t)1 << (T_PARAM_SHIFT + (k < MAX_PARAM_BITS - 1 ? k : MAX_PARAM_BITS - 1));
}

struct flow_summary {
    uint64_t addr_params;      /* params whose value reaches a global-like address */
    uint64_t shared64_params;  /* params that, holding a shared address, reach a 64-bit access */
    int addr_line;             /* line of the first such access */
    int shared64_line;
    int batch_internal;        /* its own batch index reaches a global address */
    char batch_path[KD_PTX_TEXT_MAX];
    int batch_line;
    char batch_mech[KD_PTX_NAME_MAX];
    int n_rets;
    uint64_t *ret_taint;
    uint64_t out_taint[MAX_PARAM_BITS]; /* stored through pointer parameter k */
    char flow_mech[KD_PTX_NAME_MAX];  /* where a batch index it returns or stores comes from */
    int shared_accesses;
    int n_issues;
    flow_issue *issues;
    int n_callees;
    int *callees;              /* functions called from its reachable code */
    flow_module **callee_fms;  /* the module each is in */
    int in_progress;
};

int flow_is_m_dim_param(const char *name)
{
    if (!name)
        return 0;
    size_t n = strlen(name);
    return strcmp(name, "m_dim") == 0 || (n > 6 && strcmp(name + n - 6, "_m_dim") == 0);
}

/* nvcc's and clang's own parameter names: "<kernel>_param_<digits>". */
static int generated_param_name(const char *kernel, const char *name)
{
    size_t kn = strlen(kernel);
    if (strncmp(name, kernel, kn) != 0 || strncmp(name + kn, "_param_", 7) != 0)
        return 0;
    const char *d = name + kn + 7;
    return *d && strspn(d, "0123456789") == strlen(d);
}

static int same_param_type(const kd_ptx_param *a, const kd_ptx_param *b)
{
    return a->type && b->type && strcmp(a->type, b->type) == 0 && a->bytes == b->bytes;
}

static int int32_param(const kd_ptx_param *p)
{
    return p->bytes == 4 && p->type &&
           (strcmp(p->type, ".u32") == 0 || strcmp(p->type, ".s32") == 0 ||
            strcmp(p->type, ".b32") == 0);
}

uint64_t flow_m_dim_params(const kd_ptx_func *single, const kd_ptx_func *b)
{
    uint64_t mask = 0;
    int nb = b->n_params < 64 ? b->n_params : 64;
    for (int k = 0; k < nb; k++)
        if (flow_is_m_dim_param(b->params[k].name))
            mask |= (uint64_t)1 << k;
    if (mask || !single || single->n_params >= nb)
        return mask;
    for (int k = 0; k < nb; k++)
        if (!b->params[k].name || !generated_param_name(b->name, b->params[k].name))
            return 0;
    /* the parameters the batched kernel adds to the single one's: those between the
     * common prefix and the common suffix of the two lists; a type change in between
     * (rope: pos becomes a pointer) leaves every 32-bit integer after the prefix */
    int ns = single->n_params, p = 0, q = 0;
    while (p < ns && same_param_type(&single->params[p], &b->params[p]))
        p++;
    while (q < ns - p && same_param_type(&single->params[ns - 1 - q], &b->params[nb - 1 - q]))
        q++;
    if (p + q == ns)
        for (int k = p; k < nb - q; k++)
            if (int32_param(&b->params[k]))
                mask |= (uint64_t)1 << k;
    for (int k = p; k < nb && !mask; k++)
        if (int32_param(&b->params[k]))
            mask |= (uint64_t)1 << k;
    return mask;
}

/* ---- small helpers ----------------------------------------------------------------------- */

static int opcode_is(const char *opcode, const char *name)
{
    size_t n = strlen(name);
    return strncmp(opcode, name, n) == 0 && (opcode[n] == '\0' || opcode[n] == '.');
}

static int has_mod(const char *opcode, const char *seg)
{
    size_t n = strlen(seg);
    for (const char *s = strchr(opcode, '.'); s; s = strchr(s + 1, '.'))
        if (strncmp(s + 1, seg, n) == 0 && (s[1 + n] == '\0' || s[1 + n] == '.' || s[1 + n] == ':'))
            return 1;
    return 0;
}

static size_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h ^ (h >> 31));
}

/* A growable array. */
typedef struct arr {
    void *d;
    int n, cap;
} arr;

static void *arr_push(arr *a, size_t elem)
{
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 16;
        void *nd = realloc(a->d, (size_t)cap * elem);
        if (!nd)
            return NULL;
        a->d = nd;
        a->cap = cap;
    }
    void *p = (char *)a->d + (size_t)a->n * elem;
    memset(p, 0, elem);
    a->n++;
    return p;
}

/* String -> dense id, open addressing; keys are copied. */
typedef struct strmap {
    char **keys;
    int *ids;
    size_t cap;
    int n;
} strmap;

static void strmap_free(strmap *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->keys[i]);
    free(s->keys);
    free(s->ids);
    memset(s, 0, sizeof *s);
}

static int strmap_grow(strmap *s)
{
    size_t cap = s->cap ? s->cap * 2 : 64;
    char **keys = calloc(cap, sizeof *keys);
    int *ids = calloc(cap, sizeof *ids);
    if (!keys || !ids) {
        free(keys);
        free(ids);
        return -1;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->keys[i])
            continue;
        size_t h = hash_str(s->keys[i]) & (cap - 1);
        while (keys[h])
            h = (h + 1) & (cap - 1);
        keys[h] = s->keys[i];
        ids[h] = s->ids[i];
    }
    free(s->keys);
    free(s->ids);
    s->keys = keys;
    s->ids = ids;
    s->cap = cap;
    return 0;
}

/* The id of key (find == 1: -1 when absent; else added). -2 without memory. */
static int strmap_id(strmap *s, const char *key, int find)
{
    if (s->cap) {
        size_t h = hash_str(key) & (s->cap - 1);
        while (s->keys[h]) {
            if (strcmp(s->keys[h], key) == 0)
                return s->ids[h];
            h = (h + 1) & (s->cap - 1);
        }
    }
    if (find)
        return -1;
    if ((size_t)(s->n + 1) * 2 > s->cap && strmap_grow(s) != 0)
        return -2;
    size_t h = hash_str(key) & (s->cap - 1);
    while (s->keys[h])
        h = (h + 1) & (s->cap - 1);
    if (!(s->keys[h] = strdup(key)))
        return -2;
    s->ids[h] = s->n++;
    return s->ids[h];
}

/* ---- per-function analysis state --------------------------------------------------------- */

enum { U_VAL, U_ADDR, U_GUARD, U_SLOT, U_ARG };
enum { SP_NONE, SP_GENERIC, SP_SHARED, SP_GLOBAL, SP_LOCAL, SP_PARAM, SP_OTHER };

typedef struct use_rec {
    int insn, var, op;
    short role, arg;
    int ud0, ud1; /* reaching defs: ud[ud0..ud1) */
} use_rec;

typedef struct def_rec {
    int insn;        /* -1: at the entry */
    int var;
    uint64_t init;   /* entry defs: their taint */
    unsigned char guarded, killing;
    short outk;      /* a call's write through its argument outk (an out-parameter), -1 */
} def_rec;

typedef struct var_info {
    int bits;        /* register width; 0 unknown */
    int special;     /* a special register */
    int def0, def1;  /* its defs: vdefs[def0..def1) */
    /* A local-frame address (nvcc's %SP/%SPL + constant): its one definition gives it;
     * frame_state 0 unknown yet, 1 known, 2 not a frame address (or defined twice). */
    int frame_state;
    const char *frame_sym;
    int64_t frame_off;
} var_info;

typedef struct insn_info {
    int use0, use1, def0, def1;
    int block;
    int callee;      /* call: index of the callee in cfm's module, else -1 */
    flow_module *cfm; /* call: the module defining the callee (another input: .extern) */
    int param_k;     /* ld.param of the function's own parameter k, else -1 */
    int space;       /* SP_* of its memory operand */
    int addr_op;     /* operand index of the address, -1 */
    int n_rets;      /* call: its return values (its first defs) */
    unsigned shared_sym : 1; /* a .shared symbol is a source operand */
    unsigned is_ret : 1;
} insn_info;

typedef struct fn_ctx {
    flow_module *fm;
    const kd_ptx_module *m;
    const kd_ptx_func *g;
    int kernel;       /* analysed as a kernel (params are the kernel's) */
    uint64_t m_dim;   /* kernel: bit k when parameter k is the batch size */
    int depth;
    strmap vars, labels;
    strmap regidx;    /* "scope|name" (a register) or "scope|prefix#" (a range) -> id */
    int *regidx_decl; /* id -> index into g->regs */
    arr var_info_a;   /* var_info */
    arr uses, defs;   /* use_rec, def_rec */
    insn_info *ii;
    int *ud;          /* use -> defs */
    int n_ud;
    int *du0, *du;    /* def -> using insns */
    int *vdefs;
    /* blocks */
    int n_blocks;
    int *label_block; /* block each label starts, -1 at the end */
    int *bstart, *bend, *succ0, *succ1, *succ_extra; /* succ_extra: -2 when "all labels" */
    unsigned char *breach;
    uint64_t *taint;
    int *from;        /* def that first gave T_BATCH, -1 */
    unsigned char *seed;
    arr issues;       /* flow_issue */
    flow_summary *sum;
    int nomem;
} fn_ctx;

static var_info *VI(fn_ctx *c, int v) { return &((var_info *)c->var_info_a.d)[v]; }
static use_rec *UR(fn_ctx *c, int u) { return &((use_rec *)c->uses.d)[u]; }
static def_rec *DR(fn_ctx *c, int d) { return &((def_rec *)c->defs.d)[d]; }

static kd_status summary_of(flow_module *fm, int fi, int depth, flow_summary **out);

/* ---- variables --------------------------------------------------------------------------- */

static int new_var(fn_ctx *c, const char *key, int bits, int special)
{
    int before = c->vars.n;
    int id = strmap_id(&c->vars, key, 0);
    if (id == -2) {
        c->nomem = 1;
        return -1;
    }
    if (id == before) {
        var_info *vi = arr_push(&c->var_info_a, sizeof *vi);
        if (!vi) {
            c->nomem = 1;
            return -1;
        }
        vi->bits = bits;
        vi->special = special;
    }
    return id;
}

static int param_index(const kd_ptx_param *ps, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (ps[i].name && strcmp(ps[i].name, name) == 0)
            return i;
    return -1;
}

/* A .reg parameter (a register), not a .param symbol. */
static int reg_param_index(const kd_ptx_param *ps, int n, const char *name)
{
    int k = param_index(ps, n, name);
    return k >= 0 && ps[k].is_reg ? k : -1;
}

/* Indexes the function's .reg declarations by scope and name (declarations are
 * looked up per operand: a scan of all of them would be quadratic in bodies with many
 * call blocks, each declaring its own registers). */
static int index_regs(fn_ctx *c)
{
    const kd_ptx_func *g = c->g;
    c->regidx_decl = malloc(((size_t)g->n_regs + 1) * sizeof *c->regidx_decl);
    if (!c->regidx_decl)
        return -1;
    for (int i = 0; i < g->n_regs; i++) {
        char key[600];
        const kd_ptx_reg_decl *d = &g->regs[i];
        snprintf(key, sizeof key, "%d|%s%s", d->scope, d->name, d->count < 0 ? "" : "#");
        int before = c->regidx.n;
        int id = strmap_id(&c->regidx, key, 0);
        if (id == -2)
            return -1;
        if (id == before)
            c->regidx_decl[id] = i; /* the first of a name in a block */
    }
    return 0;
}

/* "%rd12" against "%rd<19>" in one block: the digits after a range's prefix are a number
 * below its count, written without leading zeros. */
static const kd_ptx_reg_decl *reg_in_block(fn_ctx *c, const char *name, size_t n, int s)
{
    char key[600];
    snprintf(key, sizeof key, "%d|%s", s, name);
    int id = strmap_id(&c->regidx, key, 1);
    const kd_ptx_reg_decl *d = id >= 0 ? &c->g->regs[c->regidx_decl[id]] : NULL;
    if (d && d->count < 0)
        return d;
    size_t q = n;
    while (q > 0 && name[q - 1] >= '0' && name[q - 1] <= '9')
        q--;
    for (; q < n; q++) {
        if (n - q > 9 || (name[q] == '0' && n - q > 1))
            continue;
        snprintf(key, sizeof key, "%d|%.*s#", s, (int)q, name);
        id = strmap_id(&c->regidx, key, 1);
        if (id >= 0 && atol(name + q) < c->g->regs[c->regidx_decl[id]].count)
            return &c->g->regs[c->regidx_decl[id]];
    }
    return NULL;
}

/* The declaration of a register name seen from block scope: the innermost block that
 * declares it. */
static const kd_ptx_reg_decl *scoped_reg(fn_ctx *c, const char *name, int scope)
{
    const kd_ptx_func *g = c->g;
    if (g->n_scopes == 0)
        return kd_ptx_find_reg(g, name);
    size_t n = strlen(name);
    if (n > 500)
        return NULL;
    for (int s = scope, guard = 0; s >= 0 && s < g->n_scopes && guard <= g->n_scopes;
         s = g->scope_parent[s], guard++) {
        const kd_ptx_reg_decl *d = reg_in_block(c, name, n, s);
        if (d)
            return d;
    }
    return NULL;
}

/* The variable a register name denotes at block scope, or -1 if it is not a register
 * (a symbol, a label). Names without '%' are registers when a .reg declares them. */
static int reg_var(fn_ctx *c, const char *name, int scope)
{
    char key[600];
    if (!name)
        return -1;
    if (kd_ptx_is_special_reg(name)) {
        snprintf(key, sizeof key, "S:%s", name);
        return new_var(c, key, 32, 1);
    }
    const kd_ptx_reg_decl *d = scoped_reg(c, name, scope);
    if (d) {
        snprintf(key, sizeof key, "R%d:%s", (int)(d - c->g->regs), name);
        return new_var(c, key, d->bits, 0);
    }
    int k = reg_param_index(c->g->params, c->g->n_params, name);
    if (k >= 0) { /* a .reg parameter */
        snprintf(key, sizeof key, "A:%d", k);
        return new_var(c, key, (int)c->g->params[k].bytes * 8, 0);
    }
    k = reg_param_index(c->g->rets, c->g->n_rets, name);
    if (k >= 0) {
        snprintf(key, sizeof key, "RV:%d", k);
        return new_var(c, key, (int)c->g->rets[k].bytes * 8, 0);
    }
    if (name[0] == '%') {
        snprintf(key, sizeof key, "U:%s", name);
        return new_var(c, key, 0, 0);
    }
    return -1;
}

static const kd_ptx_var *shared_var(fn_ctx *c, const char *name)
{
    const kd_ptx_var *v = kd_ptx_find_func_shared(c->g, name);
    return v ? v : kd_ptx_find_module_shared(c->m, name);
}

/* ---- building uses and defs -------------------------------------------------------------- */

static int add_use(fn_ctx *c, int insn, int var, int op, int role, int arg)
{
    if (var < 0)
        return 0;
    use_rec *u = arr_push(&c->uses, sizeof *u);
    if (!u)
        return c->nomem = 1, -1;
    u->insn = insn;
    u->var = var;
    u->op = op;
    u->role = (short)role;
    u->arg = (short)arg;
    return 0;
}

static int add_def(fn_ctx *c, int insn, int var, int guarded, int killing, uint64_t init)
{
    if (var < 0)
        return 0;
    def_rec *d = arr_push(&c->defs, sizeof *d);
    if (!d)
        return c->nomem = 1, -1;
    d->insn = insn;
    d->var = var;
    d->guarded = (unsigned char)guarded;
    d->killing = (unsigned char)killing;
    d->init = init;
    d->outk = -1;
    return 0;
}

/* The state space of an instruction's (first) memory operand. */
static int opcode_space(const char *op)
{
    if (has_mod(op, "shared") || strstr(op, ".shared::"))
        return SP_SHARED;
    if (has_mod(op, "global"))
        return SP_GLOBAL;
    if (has_mod(op, "local"))
        return SP_LOCAL;
    if (has_mod(op, "param"))
        return SP_PARAM;
    if (has_mod(op, "const") || has_mod(op, "tex"))
        return SP_OTHER;
    return SP_GENERIC;
}

static int is_memory_op(const char *op)
{
    static const char *const ops[] = {"ld", "ldu", "st", "atom", "red", "prefetch", "prefetchu",
                                      "cp", "ldmatrix", "stmatrix", "mbarrier", "wmma"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (opcode_is(op, ops[i]))
            return 1;
    return 0;
}

static int is_load(const char *op)
{
    return opcode_is(op, "ld") || opcode_is(op, "ldu");
}

/* Instructions whose result is not a function of their register sources' values as
 * addresses/indices: compares, votes, memory reads (handled apart). */
static int blocks_taint(const char *op)
{
    static const char *const ops[] = {"setp", "set", "vote", "testp", "isspacep", "atom", "tex",
                                      "tld4", "suld", "ldmatrix", "match", "activemask",
                                      "elect", "mbarrier", "wmma", "mma"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (opcode_is(op, ops[i]))
            return 1;
    return 0;
}

/* A .param slot of a call sequence (param0, retval0) is keyed by its { } block: nvcc
 * declares the same names in every call's block, and one variable for all of them
 * would make every call's arguments reach every later call. */
static void key_slot(fn_ctx *c, char *key, size_t cap, int space, const char *sym, int var,
                     int64_t off, int scope)
{
    int own = sym && (param_index(c->g->params, c->g->n_params, sym) >= 0 ||
                      param_index(c->g->rets, c->g->n_rets, sym) >= 0);
    if (space == SP_PARAM && own)
        snprintf(key, cap, "P:%s", sym);
    else if (space == SP_PARAM)
        snprintf(key, cap, "P%d:%s", scope, sym ? sym : "?");
    else if (sym)
        snprintf(key, cap, "L:%s:%lld", sym, (long long)off);
    else
        snprintf(key, cap, "L#%d:%lld", var, (long long)off);
}

/* The slot variable an ld/st.local or ld/st.param operand names. */
static int slot_var(fn_ctx *c, const kd_ptx_insn *in, const kd_ptx_operand *o, int space)
{
    char key[600];
    int rv = reg_var(c, o->base, in->scope);
    key_slot(c, key, sizeof key, space, rv < 0 ? o->base : NULL, rv, o->offset, in->scope);
    return new_var(c, key, 0, 0);
}

/* Sources of an ALU instruction (operands after the destination). */
static int add_value_uses(fn_ctx *c, int i, const kd_ptx_insn *in, int first)
{
    insn_info *ii = &c->ii[i];
    for (int k = first; k < in->n_ops; k++) {
        const kd_ptx_operand *o = &in->ops[k];
        if (o->kind == KD_PTX_OPND_VEC || o->kind == KD_PTX_OPND_LIST) {
            for (int t = 0; t < o->n_items; t++)
                if (add_use(c, i, reg_var(c, o->items[t], in->scope), k, U_VAL, 0) != 0)
                    return -1;
            continue;
        }
        if (o->kind == KD_PTX_OPND_ADDR || !o->base)
            continue;
        int v = reg_var(c, o->base, in->scope);
        if (v >= 0) {
            if (add_use(c, i, v, k, U_VAL, 0) != 0)
                return -1;
        } else if (shared_var(c, o->base)) {
            ii->shared_sym = 1;
        }
    }
    return 0;
}

static int add_dests(fn_ctx *c, int i, const kd_ptx_insn *in)
{
    const kd_ptx_operand *o = &in->ops[0];
    int guarded = in->guard != NULL;
    if (o->kind == KD_PTX_OPND_VEC) {
        for (int t = 0; t < o->n_items; t++)
            if (add_def(c, i, reg_var(c, o->items[t], in->scope), guarded, 1, 0) != 0)
                return -1;
        return 0;
    }
    return add_def(c, i, reg_var(c, o->base, in->scope), guarded, 1, 0);
}

static int has_dest(fn_ctx *c, const kd_ptx_insn *in)
{
    if (in->n_ops == 0 || opcode_is(in->opcode, "call") || opcode_is(in->opcode, "bra") ||
        opcode_is(in->opcode, "brx") || opcode_is(in->opcode, "st") || opcode_is(in->opcode, "red"))
        return 0;
    const kd_ptx_operand *o = &in->ops[0];
    if (o->kind == KD_PTX_OPND_REG || o->kind == KD_PTX_OPND_VEC)
        return 1;
    return o->kind == KD_PTX_OPND_SYM && o->base && reg_var(c, o->base, in->scope) >= 0;
}

static int frame_slot(fn_ctx *c, const kd_ptx_insn *in, const kd_ptx_operand *o);

/* The frame slot argument a of call i points to: a frame register, or a .param symbol
 * that an st.param just before the call (nvcc's call sequence) filled from one. */
static int arg_frame_slot(fn_ctx *c, int i, const kd_ptx_insn *in, const char *a)
{
    kd_ptx_operand o;
    memset(&o, 0, sizeof o);
    o.kind = KD_PTX_OPND_ADDR;
    if (!a)
        return -1;
    if (reg_var(c, a, in->scope) >= 0) {
        o.base = a;
        return frame_slot(c, in, &o);
    }
    for (int j = i - 1; j >= 0 && j >= i - 64; j--) {
        const kd_ptx_insn *st = &c->g->insns[j];
        if (opcode_is(st->opcode, "call"))
            break;
        if (!opcode_is(st->opcode, "st") || !has_mod(st->opcode, "param") || st->n_ops < 2 ||
            st->ops[0].kind != KD_PTX_OPND_ADDR || !st->ops[0].base ||
            strcmp(st->ops[0].base, a) != 0)
            continue;
        if (st->ops[1].kind != KD_PTX_OPND_REG && st->ops[1].kind != KD_PTX_OPND_SYM)
            return -1;
        o.base = st->ops[1].base;
        return frame_slot(c, st, &o);
    }
    return -1;
}

static int same_target(const kd_ptx_module *a, const kd_ptx_module *b)
{
    return !a->target || !b->target || strcmp(a->target, b->target) == 0;
}

/* A callee declared here without a body: the one definition of that name among the other
 * inputs for the same target (the sm_80 and sm_90 builds of a helper are two programs).
 * None, or more than one: left unresolved (no summary). Returns how many there are. */
static int resolve_extern(flow_module *fm, const char *name, flow_module **cfm,
                          const kd_ptx_func **f)
{
    flow_module *found_fm = NULL;
    const kd_ptx_func *found = NULL;
    int n = 0;
    for (int k = 0; k < fm->n_peers; k++) {
        flow_module *p = &fm->peers[k];
        if (p == fm || !p->m || !same_target(fm->m, p->m))
            continue;
        for (const kd_ptx_func *g = kd_ptx_first_func(p->m, name); g;
             g = kd_ptx_next_func(p->m, g))
            if (g->has_body && !g->is_entry) {
                found_fm = p;
                found = g;
                n++;
            }
    }
    if (n == 1) {
        *cfm = found_fm;
        *f = found;
    }
    return n;
}

/* call [.uni] [(rets),] target, [(args)] [, proto] */
static int build_call(fn_ctx *c, int i, const kd_ptx_insn *in)
{
    insn_info *ii = &c->ii[i];
    int t = -1;
    for (int k = 0; k < in->n_ops && t < 0; k++)
        if (in->ops[k].kind != KD_PTX_OPND_LIST)
            t = k;
    if (t < 0)
        return 0;
    const kd_ptx_operand *target = &in->ops[t];
    if (target->kind == KD_PTX_OPND_SYM && target->base) {
        flow_module *cfm = c->fm;
        const kd_ptx_func *f = kd_ptx_find_func(c->m, target->base);
        if (!f || !f->has_body)
            resolve_extern(c->fm, target->base, &cfm, &f);
        ii->cfm = cfm;
        ii->callee = f ? (int)(f - cfm->m->funcs) : -1;
    }
    const kd_ptx_operand *args = t + 1 < in->n_ops && in->ops[t + 1].kind == KD_PTX_OPND_LIST
                                     ? &in->ops[t + 1] : NULL;
    const kd_ptx_operand *rets = t > 0 ? &in->ops[0] : NULL;
    for (int k = 0; args && k < args->n_items; k++) {
        const char *a = args->items[k];
        int v = reg_var(c, a, in->scope);
        if (v < 0 && a) {
            char key[600];
            key_slot(c, key, sizeof key, SP_PARAM, a, -1, 0, in->scope);
            v = new_var(c, key, 0, 0);
        }
        if (add_use(c, i, v, t + 1, U_ARG, k) != 0)
            return -1;
    }
    for (int k = 0; rets && k < rets->n_items; k++) {
        const char *r = rets->items[k];
        int v = reg_var(c, r, in->scope);
        if (v < 0 && r) {
            char key[600];
            key_slot(c, key, sizeof key, SP_PARAM, r, -1, 0, in->scope);
            v = new_var(c, key, 0, 0);
        }
        if (add_def(c, i, v, in->guard != NULL, 1, 0) != 0)
            return -1;
        ii->n_rets++;
    }
    /* an argument that is a frame address (a pointer to the caller's local variable):
     * the callee may store through it (out-parameter; not killing: it may not) */
    for (int k = 0; args && k < args->n_items && k < MAX_PARAM_BITS; k++) {
        int fs = arg_frame_slot(c, i, in, args->items[k]);
        if (fs >= 0) {
            if (add_def(c, i, fs, 1, 0, 0) != 0)
                return -1;
            ((def_rec *)c->defs.d)[c->defs.n - 1].outk = (short)k;
        }
    }
    /* the argument slots are consumed by the call: a later call sees only its own */
    for (int k = 0; args && k < args->n_items; k++) {
        if (!args->items[k] || reg_var(c, args->items[k], in->scope) >= 0)
            continue;
        char key[600];
        key_slot(c, key, sizeof key, SP_PARAM, args->items[k], -1, 0, in->scope);
        if (add_def(c, i, new_var(c, key, 0, 0), 0, 1, 0) != 0)
            return -1;
    }
    return 0;
}

/* ---- local-frame addresses (nvcc's %SP = cvta.local(%SPL = __local_depotN)) ------------- */

static int is_depot(const char *sym)
{
    return sym && strncmp(sym, "__local_depot", 13) == 0;
}

/* The frame address a register holds, from its single definition; 0 if none. */
static int frame_of(fn_ctx *c, int v, const char **sym, int64_t *off)
{
    if (v < 0 || VI(c, v)->frame_state != 1)
        return 0;
    *sym = VI(c, v)->frame_sym;
    *off = VI(c, v)->frame_off;
    return 1;
}

static void set_frame(fn_ctx *c, int v, const char *sym, int64_t off)
{
    var_info *vi = VI(c, v);
    if (vi->frame_state != 0) { /* a second definition: no longer one address */
        vi->frame_state = 2;
        return;
    }
    vi->frame_state = sym ? 1 : 2;
    vi->frame_sym = sym;
    vi->frame_off = off;
}

/* Pass over the body before the def-use build: which registers hold frame addresses
 * (mov of a __local_depot symbol, cvta.local / cvta.to.local, mov and add of a constant),
 * each from its only definition (nvcc's frame registers are defined once). */
static int find_frames(fn_ctx *c)
{
    for (int i = 0; i < c->g->n_insns; i++) {
        const kd_ptx_insn *in = &c->g->insns[i];
        if (in->n_ops < 1 || !has_dest(c, in) || in->ops[0].kind == KD_PTX_OPND_VEC)
            continue;
        int d = reg_var(c, in->ops[0].base, in->scope);
        if (d < 0 || c->nomem)
            continue;
        const char *sym = NULL;
        int64_t off = 0;
        const char *op = in->opcode;
        int simple = opcode_is(op, "mov") || opcode_is(op, "cvta") || opcode_is(op, "add");
        if (simple && !in->guard && in->n_ops >= 2) {
            const kd_ptx_operand *s1 = &in->ops[1];
            int sv = reg_var(c, s1->base, in->scope);
            if (opcode_is(op, "mov") && sv < 0 && is_depot(s1->base)) {
                sym = s1->base;
                off = s1->offset;
            } else if ((opcode_is(op, "mov") || (opcode_is(op, "cvta") && has_mod(op, "local"))) &&
                       frame_of(c, sv, &sym, &off)) {
                /* copy */
            } else if (opcode_is(op, "add") && in->n_ops == 3 &&
                       in->ops[2].kind == KD_PTX_OPND_IMM && frame_of(c, sv, &sym, &off)) {
                off += in->ops[2].offset;
            } else {
                sym = NULL;
            }
        }
        set_frame(c, d, sym, off);
    }
    return c->nomem ? -1 : 0;
}

/* ld/st of a frame slot (local, or generic through a frame address). */
static int build_frame_access(fn_ctx *c, int i, const kd_ptx_insn *in, int slot)
{
    insn_info *ii = &c->ii[i];
    ii->space = SP_LOCAL;
    if (opcode_is(in->opcode, "st")) {
        if (add_value_uses(c, i, in, ii->addr_op + 1) != 0)
            return -1;
        return add_def(c, i, slot, in->guard != NULL, !in->guard, 0);
    }
    if (add_use(c, i, slot, ii->addr_op, U_SLOT, 0) != 0)
        return -1;
    return has_dest(c, in) ? add_dests(c, i, in) : 0;
}

/* The frame slot an address operand names ([%SP+8], [%rd5] with %rd5 = %SPL + 4,
 * [__local_depot0+8]), or -1. */
static int frame_slot(fn_ctx *c, const kd_ptx_insn *in, const kd_ptx_operand *o)
{
    const char *sym = NULL;
    int64_t off = 0;
    if (!o || !o->base)
        return -1;
    if (is_depot(o->base) && reg_var(c, o->base, in->scope) < 0) {
        sym = o->base;
    } else if (!frame_of(c, reg_var(c, o->base, in->scope), &sym, &off)) {
        return -1;
    }
    char key[600];
    snprintf(key, sizeof key, "F:%s:%lld", sym, (long long)(off + o->offset));
    return new_var(c, key, 0, 0);
}

static int build_memory(fn_ctx *c, int i, const kd_ptx_insn *in)
{
    insn_info *ii = &c->ii[i];
    ii->space = opcode_space(in->opcode);
    for (int k = 0; k < in->n_ops; k++) {
        if (in->ops[k].kind != KD_PTX_OPND_ADDR)
            continue;
        if (ii->addr_op < 0)
            ii->addr_op = k;
        const kd_ptx_operand *o = &in->ops[k];
        if (o->base && reg_var(c, o->base, in->scope) >= 0 &&
            add_use(c, i, reg_var(c, o->base, in->scope), k, U_ADDR, 0) != 0)
            return -1;
    }
    const kd_ptx_operand *a = ii->addr_op >= 0 ? &in->ops[ii->addr_op] : NULL;
    int fslot = (ii->space == SP_LOCAL || ii->space == SP_GENERIC) && a ? frame_slot(c, in, a) : -1;
    if (fslot >= 0 && (is_load(in->opcode) || opcode_is(in->opcode, "st")))
        return build_frame_access(c, i, in, fslot);
    int slot_space = ii->space == SP_LOCAL || ii->space == SP_PARAM;
    if (is_load(in->opcode) && a && slot_space) {
        int own = ii->space == SP_PARAM && a->base
                      ? param_index(c->g->params, c->g->n_params, a->base)
                      : -1;
        if (own >= 0)
            ii->param_k = own;
        else if (add_use(c, i, slot_var(c, in, a, ii->space), ii->addr_op, U_SLOT, 0) != 0)
            return -1;
    }
    if (opcode_is(in->opcode, "st") && a && slot_space) {
        if (add_value_uses(c, i, in, ii->addr_op + 1) != 0)
            return -1;
        /* .param slots gather several stores (offsets) of one argument: not killing */
        int killing = ii->space == SP_LOCAL && !in->guard;
        if (add_def(c, i, slot_var(c, in, a, ii->space), in->guard != NULL, killing, 0) != 0)
            return -1;
        return 0;
    }
    if (has_dest(c, in) && add_dests(c, i, in) != 0)
        return -1;
    return add_value_uses(c, i, in, has_dest(c, in) ? 1 : 0);
}

static int build_insn(fn_ctx *c, int i)
{
    const kd_ptx_insn *in = &c->g->insns[i];
    insn_info *ii = &c->ii[i];
    ii->callee = -1;
    ii->cfm = c->fm;
    ii->param_k = -1;
    ii->addr_op = -1;
    ii->use0 = c->uses.n;
    ii->def0 = c->defs.n;
    if (in->guard && add_use(c, i, reg_var(c, in->guard, in->scope), -1, U_GUARD, 0) != 0)
        return -1;
    int rc;
    if (opcode_is(in->opcode, "call"))
        rc = build_call(c, i, in);
    else if (is_memory_op(in->opcode))
        rc = build_memory(c, i, in);
    else if (opcode_is(in->opcode, "bra") || opcode_is(in->opcode, "brx"))
        rc = add_value_uses(c, i, in, 0);
    else {
        ii->is_ret = opcode_is(in->opcode, "ret");
        int hd = has_dest(c, in);
        rc = (hd ? add_dests(c, i, in) : 0) == 0 ? add_value_uses(c, i, in, hd ? 1 : 0) : -1;
    }
    ii->use1 = c->uses.n;
    ii->def1 = c->defs.n;
    return rc == 0 && !c->nomem ? 0 : -1;
}

/* Entry definitions: special registers (the batch index for %ctaid.y/z) and .reg params. */
static int add_entry_defs(fn_ctx *c)
{
    for (size_t h = 0; h < c->vars.cap; h++) {
        const char *key = c->vars.keys[h];
        if (!key)
            continue;
        int v = c->vars.ids[h];
        uint64_t t = 0;
        if (strcmp(key, "S:%ctaid.y") == 0 || strcmp(key, "S:%ctaid.z") == 0)
            t = T_BATCH;
        else if (strncmp(key, "A:", 2) == 0)
            t = c->kernel ? 0 : t_param(atoi(key + 2));
        else
            continue;
        if (add_def(c, -1, v, 0, 1, t) != 0)
            return -1;
    }
    return 0;
}

/* ---- control flow ------------------------------------------------------------------------ */

static int label_insn(fn_ctx *c, const char *name)
{
    int id = name ? strmap_id(&c->labels, name, 1) : -1;
    return id >= 0 ? c->g->labels[id].insn_index : -1;
}

static int is_terminator(const kd_ptx_insn *in)
{
    return opcode_is(in->opcode, "bra") || opcode_is(in->opcode, "brx") ||
           opcode_is(in->opcode, "ret") || opcode_is(in->opcode, "exit") ||
           opcode_is(in->opcode, "trap");
}

static int build_cfg(fn_ctx *c)
{
    const kd_ptx_func *g = c->g;
    int n = g->n_insns;
    for (int l = 0; l < g->n_labels; l++)
        if (strmap_id(&c->labels, g->labels[l].name, 0) == -2)
            return -1;
    unsigned char *leader = calloc((size_t)n + 1, 1);
    int *block_of = malloc(((size_t)n + 1) * sizeof *block_of);
    if (!leader || !block_of) {
        free(leader);
        free(block_of);
        return -1;
    }
    leader[0] = 1;
    for (int l = 0; l < g->n_labels; l++)
        leader[g->labels[l].insn_index] = 1;
    for (int i = 0; i < n; i++)
        if (is_terminator(&g->insns[i]))
            leader[i + 1] = 1;
    int nb = 0;
    for (int i = 0; i < n; i++)
        nb += leader[i];
    c->n_blocks = nb;
    c->bstart = malloc((size_t)(nb + 1) * sizeof(int));
    c->bend = malloc((size_t)(nb + 1) * sizeof(int));
    c->succ0 = malloc((size_t)(nb + 1) * sizeof(int));
    c->succ1 = malloc((size_t)(nb + 1) * sizeof(int));
    c->succ_extra = malloc((size_t)(nb + 1) * sizeof(int));
    c->breach = calloc((size_t)nb + 1, 1);
    if (!c->bstart || !c->bend || !c->succ0 || !c->succ1 || !c->succ_extra || !c->breach) {
        free(leader);
        free(block_of);
        return -1;
    }
    int b = -1;
    for (int i = 0; i < n; i++) {
        if (leader[i]) {
            b++;
            c->bstart[b] = i;
        }
        c->bend[b] = i + 1;
        c->ii[i].block = b;
        block_of[i] = b;
    }
    block_of[n] = -1; /* falling off the end */
    c->label_block = malloc(((size_t)g->n_labels + 1) * sizeof *c->label_block);
    if (!c->label_block) {
        free(leader);
        free(block_of);
        return -1;
    }
    for (int l = 0; l < g->n_labels; l++)
        c->label_block[l] = block_of[g->labels[l].insn_index];
    for (b = 0; b < nb; b++) {
        const kd_ptx_insn *last = &g->insns[c->bend[b] - 1];
        int fall = block_of[c->bend[b]];
        c->succ0[b] = fall;
        c->succ1[b] = -1;
        c->succ_extra[b] = 0;
        if (opcode_is(last->opcode, "bra")) {
            int t = -1;
            for (int k = 0; k < last->n_ops; k++)
                if (last->ops[k].kind == KD_PTX_OPND_SYM && label_insn(c, last->ops[k].base) >= 0)
                    t = block_of[label_insn(c, last->ops[k].base)];
            c->succ0[b] = last->guard ? fall : -1;
            c->succ1[b] = t;
        } else if (opcode_is(last->opcode, "brx")) {
            c->succ_extra[b] = -2; /* an indirect branch: any label */
        } else if (opcode_is(last->opcode, "ret") || opcode_is(last->opcode, "exit") ||
                   opcode_is(last->opcode, "trap")) {
            c->succ0[b] = last->guard ? fall : -1;
        }
    }
    /* reachability from the entry */
    int *stack = malloc((size_t)(nb + 1) * sizeof *stack), top = 0;
    if (!stack) {
        free(leader);
        free(block_of);
        return -1;
    }
    if (nb > 0) {
        c->breach[0] = 1;
        stack[top++] = 0;
    }
    while (top > 0) {
        int x = stack[--top];
        int s[2] = {c->succ0[x], c->succ1[x]};
        for (int k = 0; k < 2; k++)
            if (s[k] >= 0 && !c->breach[s[k]]) {
                c->breach[s[k]] = 1;
                stack[top++] = s[k];
            }
        if (c->succ_extra[x] == -2)
            for (int l = 0; l < g->n_labels; l++) {
                int t = block_of[g->labels[l].insn_index];
                if (t >= 0 && !c->breach[t]) {
                    c->breach[t] = 1;
                    stack[top++] = t;
                }
            }
    }
    free(stack);
    free(leader);
    free(block_of);
    return 0;
}

/* ---- reaching definitions ---------------------------------------------------------------- */

static int index_var_defs(fn_ctx *c)
{
    int nv = c->vars.n, nd = c->defs.n;
    int *cnt = calloc((size_t)nv + 1, sizeof *cnt);
    c->vdefs = malloc(((size_t)nd + 1) * sizeof *c->vdefs);
    if (!cnt || !c->vdefs) {
        free(cnt);
        return -1;
    }
    for (int d = 0; d < nd; d++)
        cnt[DR(c, d)->var + 1]++;
    for (int v = 0; v < nv; v++)
        cnt[v + 1] += cnt[v];
    for (int v = 0; v < nv; v++) {
        VI(c, v)->def0 = cnt[v];
        VI(c, v)->def1 = cnt[v];
    }
    for (int d = 0; d < nd; d++)
        c->vdefs[VI(c, DR(c, d)->var)->def1++] = d;
    free(cnt);
    return 0;
}

/* Applies instruction i's definitions to the set. */
static void rd_apply(fn_ctx *c, int i, uint64_t *set)
{
    insn_info *ii = &c->ii[i];
    for (int d = ii->def0; d < ii->def1; d++) {
        def_rec *dr = DR(c, d);
        if (dr->killing && !dr->guarded) {
            var_info *vi = VI(c, dr->var);
            for (int k = vi->def0; k < vi->def1; k++)
                set[c->vdefs[k] >> 6] &= ~((uint64_t)1 << (c->vdefs[k] & 63));
        }
        set[d >> 6] |= (uint64_t)1 << (d & 63);
    }
}

static void record_use_defs(fn_ctx *c, int i, const uint64_t *set, arr *ud)
{
    insn_info *ii = &c->ii[i];
    for (int u = ii->use0; u < ii->use1; u++) {
        use_rec *ur = UR(c, u);
        var_info *vi = VI(c, ur->var);
        ur->ud0 = ud->n;
        for (int k = vi->def0; k < vi->def1; k++) {
            int d = c->vdefs[k];
            if (!set || (set[d >> 6] >> (d & 63)) & 1) {
                int *slot = arr_push(ud, sizeof(int));
                if (!slot) {
                    c->nomem = 1;
                    return;
                }
                *slot = d;
            }
        }
        ur = UR(c, u);
        ur->ud1 = ud->n;
    }
}

static int solve_rd(fn_ctx *c)
{
    int nb = c->n_blocks, nd = c->defs.n;
    size_t w = ((size_t)nd + 63) / 64;
    arr ud = {0};
    if (w * (size_t)(nb + 1) > MAX_RD_WORDS) {
        for (int i = 0; i < c->g->n_insns; i++)
            if (c->breach[c->ii[i].block])
                record_use_defs(c, i, NULL, &ud);
        c->ud = ud.d;
        c->n_ud = ud.n;
        return c->nomem ? -1 : 0;
    }
    uint64_t *in = calloc((size_t)(nb + 1) * (w ? w : 1), sizeof *in);
    uint64_t *tmp = calloc(w ? w : 1, sizeof *tmp);
    if (!in || !tmp) {
        free(in);
        free(tmp);
        return -1;
    }
    uint64_t *entry = calloc(w ? w : 1, sizeof *entry);
    if (!entry) {
        free(in);
        free(tmp);
        return -1;
    }
    for (int d = 0; d < nd; d++)
        if (DR(c, d)->insn < 0)
            entry[d >> 6] |= (uint64_t)1 << (d & 63);
    if (nb > 0)
        memcpy(in, entry, w * sizeof *in);
    int changed = 1;
    while (changed) {
        changed = 0;
        for (int b = 0; b < nb; b++) {
            if (!c->breach[b])
                continue;
            memcpy(tmp, in + (size_t)b * w, w * sizeof *tmp);
            for (int i = c->bstart[b]; i < c->bend[b]; i++)
                rd_apply(c, i, tmp);
            int s[2] = {c->succ0[b], c->succ1[b]};
            for (int k = 0; k < 2 + (c->succ_extra[b] == -2 ? c->g->n_labels : 0); k++) {
                int t = k < 2 ? s[k] : c->label_block[k - 2];
                if (t < 0)
                    continue;
                uint64_t *dst = in + (size_t)t * w;
                for (size_t j = 0; j < w; j++) {
                    uint64_t nv = dst[j] | tmp[j];
                    if (nv != dst[j]) {
                        dst[j] = nv;
                        changed = 1;
                    }
                }
            }
        }
    }
    for (int b = 0; b < nb; b++) {
        if (!c->breach[b])
            continue;
        memcpy(tmp, in + (size_t)b * w, w * sizeof *tmp);
        for (int i = c->bstart[b]; i < c->bend[b]; i++) {
            record_use_defs(c, i, tmp, &ud);
            rd_apply(c, i, tmp);
        }
    }
    free(in);
    free(tmp);
    free(entry);
    c->ud = ud.d;
    c->n_ud = ud.n;
    return c->nomem ? -1 : 0;
}

/* def -> instructions that use it */
static int build_du(fn_ctx *c)
{
    int nd = c->defs.n;
    c->du0 = calloc((size_t)nd + 2, sizeof *c->du0);
    c->du = malloc(((size_t)c->n_ud + 1) * sizeof *c->du);
    if (!c->du0 || !c->du)
        return -1;
    for (int u = 0; u < c->uses.n; u++)
        for (int k = UR(c, u)->ud0; k < UR(c, u)->ud1; k++)
            c->du0[c->ud[k] + 1]++;
    for (int d = 0; d < nd; d++)
        c->du0[d + 1] += c->du0[d];
    int *fill = calloc((size_t)nd + 1, sizeof *fill);
    if (!fill)
        return -1;
    for (int u = 0; u < c->uses.n; u++)
        for (int k = UR(c, u)->ud0; k < UR(c, u)->ud1; k++) {
            int d = c->ud[k];
            c->du[c->du0[d] + fill[d]++] = UR(c, u)->insn;
        }
    free(fill);
    return 0;
}

/* ---- taint ------------------------------------------------------------------------------- */

/* OR of the taint of the defs reaching use u; *src gets one def carrying T_BATCH. */
static uint64_t use_taint(fn_ctx *c, int u, int *src)
{
    uint64_t t = 0;
    use_rec *ur = UR(c, u);
    for (int k = ur->ud0; k < ur->ud1; k++) {
        uint64_t dt = c->taint[c->ud[k]];
        if ((dt & T_BATCH) && src && *src < 0)
            *src = c->ud[k];
        t |= dt;
    }
    return t;
}

static uint64_t sources(fn_ctx *c, int i, int role, int *src)
{
    uint64_t t = 0;
    for (int u = c->ii[i].use0; u < c->ii[i].use1; u++)
        if (UR(c, u)->role == role)
            t |= use_taint(c, u, src);
    return t;
}

static uint64_t arg_taint(fn_ctx *c, int i, int k, int *src)
{
    uint64_t t = 0;
    for (int u = c->ii[i].use0; u < c->ii[i].use1; u++)
        if (UR(c, u)->role == U_ARG && UR(c, u)->arg == k)
            t |= use_taint(c, u, src);
    return t;
}

/* What a callee's result carries, given the taint of the call's arguments. */
static uint64_t apply_summary(fn_ctx *c, int i, uint64_t ret, int *src)
{
    uint64_t t = ret & ~T_PARAMS;
    for (int k = 0; k < MAX_PARAM_BITS; k++)
        if (ret & t_param(k))
            t |= arg_taint(c, i, k, src);
    return t;
}

static uint64_t cvta_transfer(const char *op, uint64_t t)
{
    int shared = has_mod(op, "shared");
    if (has_mod(op, "to")) {
        if (shared)
            return (t & ~(T_GSHARED | T_GLOBAL | T_SHARED64)) | T_SHARED;
        if (has_mod(op, "global"))
            return (t & ~(T_SHARED | T_GSHARED | T_SHARED64)) | T_GLOBAL;
        return t & ~(T_SHARED | T_GSHARED | T_SHARED64);
    }
    if (shared)
        return (t & ~(T_SHARED | T_SHARED64)) | T_GSHARED;
    if (has_mod(op, "global"))
        return (t & ~(T_SHARED | T_GSHARED | T_SHARED64)) | T_GLOBAL;
    return t & ~(T_SHARED | T_GSHARED | T_SHARED64);
}

/* The constant that use u always holds (through st.param of a mov'ed immediate), for
 * the dimension argument of OpenCL's get_group_id when libclc is not linked in. */
static int use_const(fn_ctx *c, int u, int depth, int64_t *v)
{
    use_rec *ur = UR(c, u);
    int found = 0;
    for (int k = ur->ud0; k < ur->ud1; k++) {
        int j = DR(c, c->ud[k])->insn;
        if (j < 0 || depth > 3)
            return 0;
        const kd_ptx_insn *in = &c->g->insns[j];
        int64_t x = 0;
        int vi = opcode_is(in->opcode, "st") ? c->ii[j].addr_op + 1 : 1;
        if (!(opcode_is(in->opcode, "st") || opcode_is(in->opcode, "mov")) || vi >= in->n_ops)
            return 0;
        if (in->ops[vi].kind == KD_PTX_OPND_IMM) {
            x = in->ops[vi].offset;
        } else {
            int su = -1;
            for (int w = c->ii[j].use0; w < c->ii[j].use1 && su < 0; w++)
                if (UR(c, w)->role == U_VAL)
                    su = w;
            if (su < 0 || !use_const(c, su, depth + 1, &x))
                return 0;
        }
        if (found && x != *v)
            return 0;
        *v = x;
        found = 1;
    }
    return found;
}

/* OpenCL's work-group index builtins left as calls (no libclc): dimension 1 or 2 is
 * the batch index. */
static uint64_t builtin_call_taint(fn_ctx *c, int i, const char *name, int *src)
{
    if (strcmp(name, "_Z12get_group_idj") != 0 && strcmp(name, "_Z13get_global_idj") != 0)
        return 0;
    for (int u = c->ii[i].use0; u < c->ii[i].use1; u++) {
        int64_t dim = 0;
        if (UR(c, u)->role == U_ARG && UR(c, u)->arg == 0 && use_const(c, u, 0, &dim) &&
            (dim == 1 || dim == 2)) {
            (void)src;
            return T_BATCH;
        }
    }
    return 0;
}

/* The taint instruction i gives to its def d. */
static uint64_t def_taint(fn_ctx *c, int i, int d, int *src)
{
    const kd_ptx_insn *in = &c->g->insns[i];
    insn_info *ii = &c->ii[i];
    def_rec *dr = DR(c, d);
    const char *op = in->opcode;
    if (opcode_is(op, "call")) {
        int ret_k = d - ii->def0; /* rets come first among the call's defs */
        if (ii->callee < 0 || (ret_k >= ii->n_rets && dr->outk < 0))
            return 0;
        flow_summary *s = NULL;
        if (summary_of(ii->cfm, ii->callee, c->depth + 1, &s) != KD_OK) {
            c->nomem = 1;
            return 0;
        }
        if (!ii->cfm->m->funcs[ii->callee].has_body)
            return builtin_call_taint(c, i, ii->cfm->m->funcs[ii->callee].name, src);
        if (s && dr->outk >= 0)
            return apply_summary(c, i, s->out_taint[dr->outk], src);
        if (!s || ret_k >= s->n_rets)
            return 0;
        return apply_summary(c, i, s->ret_taint[ret_k], src);
    }
    if (opcode_is(op, "st"))
        return sources(c, i, U_VAL, src);
    if (is_load(op)) {
        if (ii->param_k >= 0) {
            if (!c->kernel)
                return t_param(ii->param_k);
            const kd_ptx_param *p = &c->g->params[ii->param_k];
            int is_m = ii->param_k < 64 && ((c->m_dim >> ii->param_k) & 1);
            return (p->bytes == 8 ? T_GLOBAL : 0) | (is_m ? T_MDIM : 0);
        }
        return sources(c, i, U_SLOT, src);
    }
    if (blocks_taint(op))
        return 0;
    uint64_t t = sources(c, i, U_VAL, src) | (ii->shared_sym ? T_SHARED : 0);
    if (opcode_is(op, "cvta"))
        return cvta_transfer(op, t);
    if ((t & T_SHARED) && VI(c, dr->var)->bits == 64)
        t |= T_SHARED64;
    return t;
}

static int taint_solve(fn_ctx *c, int *work, unsigned char *queued, int top)
{
    while (top > 0) {
        int i = work[--top];
        queued[i] = 0;
        for (int d = c->ii[i].def0; d < c->ii[i].def1; d++) {
            int src = -1;
            uint64_t t = def_taint(c, i, d, &src) | c->taint[d];
            if (c->nomem)
                return -1;
            if (t == c->taint[d])
                continue;
            if ((t & T_BATCH) && !(c->taint[d] & T_BATCH))
                c->from[d] = src;
            c->taint[d] = t;
            for (int k = c->du0[d]; k < c->du0[d + 1]; k++) {
                int j = c->du[k];
                if (!queued[j]) {
                    queued[j] = 1;
                    work[top++] = j;
                }
            }
        }
    }
    return 0;
}

static int taint_all(fn_ctx *c)
{
    int n = c->g->n_insns, nd = c->defs.n;
    c->taint = calloc((size_t)nd + 1, sizeof *c->taint);
    c->from = malloc(((size_t)nd + 1) * sizeof *c->from);
    c->seed = calloc((size_t)nd + 1, 1);
    int *work = malloc(((size_t)n + 1) * sizeof *work);
    unsigned char *queued = calloc((size_t)n + 1, 1);
    if (!c->taint || !c->from || !c->seed || !work || !queued) {
        free(work);
        free(queued);
        return -1;
    }
    int top = 0;
    for (int d = 0; d < nd; d++) {
        c->from[d] = -1;
        c->taint[d] = DR(c, d)->init;
        if (DR(c, d)->insn < 0)
            for (int k = c->du0[d]; k < c->du0[d + 1]; k++)
                if (!queued[c->du[k]]) {
                    queued[c->du[k]] = 1;
                    work[top++] = c->du[k];
                }
    }
    for (int i = n - 1; i >= 0; i--)
        if (c->breach[c->ii[i].block] && !queued[i]) {
            queued[i] = 1;
            work[top++] = i;
        }
    int rc = taint_solve(c, work, queued, top);
    free(work);
    free(queued);
    return rc;
}

/* ---- findings ---------------------------------------------------------------------------- */

static int add_issue(fn_ctx *c, int rule, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int add_issue(fn_ctx *c, int rule, int line, const char *fmt, ...)
{
    flow_issue *is = arr_push(&c->issues, sizeof *is);
    if (!is)
        return c->nomem = 1, -1;
    is->rule = rule;
    is->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(is->detail, sizeof is->detail, fmt, ap);
    va_end(ap);
    return 0;
}

static int def_line(fn_ctx *c, int d)
{
    return DR(c, d)->insn >= 0 ? c->g->insns[DR(c, d)->insn].line : 0;
}

/* "a -> b -> c": the chain of defs that carried T_BATCH into def d, then line end. */
static void batch_path(fn_ctx *c, int d, int end_line, char *buf, size_t cap)
{
    int lines[64], n = 0;
    for (int x = d; x >= 0 && n < 63; x = c->from[x])
        if (DR(c, x)->insn >= 0 && (n == 0 || lines[n - 1] != def_line(c, x)))
            lines[n++] = def_line(c, x);
    size_t o = 0;
    buf[0] = '\0';
    for (int k = n - 1; k >= 0 && o < cap; k--)
        o += (size_t)snprintf(buf + o, cap - o, "%d -> ", lines[k]);
    if (o < cap)
        snprintf(buf + o, cap - o, "%d", end_line);
}

/* The seed def (no from) at the root of d's T_BATCH chain. */
static int batch_root(fn_ctx *c, int d)
{
    int guard = 0;
    while (c->from[d] >= 0 && guard++ < 100000)
        d = c->from[d];
    return d;
}

/* The mechanism at the root of d's batch chain. */
static void batch_mechanism(fn_ctx *c, int d, char *buf, size_t cap)
{
    int root = batch_root(c, d);
    const char *key = NULL;
    for (size_t h = 0; h < c->vars.cap && !key; h++)
        if (c->vars.keys[h] && c->vars.ids[h] == DR(c, root)->var)
            key = c->vars.keys[h];
    int ri = DR(c, root)->insn;
    int callee = ri >= 0 && opcode_is(c->g->insns[ri].opcode, "call") ? c->ii[ri].callee : -1;
    flow_summary *cs = callee >= 0 ? c->ii[ri].cfm->sum[callee] : NULL;
    if (cs && cs->flow_mech[0])
        snprintf(buf, cap, "%s", cs->flow_mech);
    else if (ri >= 0 && opcode_is(c->g->insns[ri].opcode, "call"))
        snprintf(buf, cap, "get_group_id");
    else if (key && strcmp(key, "S:%ctaid.z") == 0)
        snprintf(buf, cap, "ctaid.z");
    else if (key && strcmp(key, "S:%ctaid.y") == 0)
        snprintf(buf, cap, "ctaid.y");
    else {
        const char *pn = "m_dim";
        for (int k = 0; k < c->g->n_params && k < 64; k++)
            if ((c->m_dim >> k) & 1)
                pn = c->g->params[k].name;
        snprintf(buf, cap, "param %s", pn);
    }
}

static void note_batch(fn_ctx *c, int d, int line)
{
    flow_summary *s = c->sum;
    if (s->batch_internal)
        return;
    s->batch_internal = 1;
    s->batch_line = line;
    batch_path(c, d, line, s->batch_path, sizeof s->batch_path);
    batch_mechanism(c, d, s->batch_mech, sizeof s->batch_mech);
}

static int addr_use(fn_ctx *c, int i)
{
    for (int u = c->ii[i].use0; u < c->ii[i].use1; u++)
        if (UR(c, u)->role == U_ADDR)
            return u;
    return -1;
}

static int var_bits(fn_ctx *c, int u) { return VI(c, UR(c, u)->var)->bits; }

/* Line of a definition reaching use u that holds a shared address (0: none). */
static int shared_origin(fn_ctx *c, int u)
{
    for (int k = UR(c, u)->ud0; k < UR(c, u)->ud1; k++)
        if (c->taint[c->ud[k]] & (T_SHARED | T_GSHARED | T_SHARED64))
            return def_line(c, c->ud[k]);
    return 0;
}

/* Rule 1 and rule 2 at a memory access. */
static int check_access(fn_ctx *c, int i)
{
    const kd_ptx_insn *in = &c->g->insns[i];
    insn_info *ii = &c->ii[i];
    if (ii->addr_op < 0 || opcode_is(in->opcode, "cvta"))
        return 0;
    int u = addr_use(c, i);
    int src = -1;
    uint64_t t = u >= 0 ? use_taint(c, u, &src) : 0;
    const char *reg = in->ops[ii->addr_op].base;
    int generic = ii->space == SP_GENERIC;
    /* A generic access through a cvta.shared pointer (T_GSHARED) is fine: generic
     * addresses are 64-bit by definition, and it is how nvcc reaches shared memory from a
     * -rdc __noinline__ helper it did not clone. A shared-window address (T_SHARED: no
     * cvta.shared) used as a generic 64-bit address is not. */
    if (generic && (t & T_GSHARED))
        c->sum->shared_accesses++;
    if (ii->space == SP_SHARED || (generic && (t & T_SHARED))) {
        c->sum->shared_accesses++;
        if (u >= 0 && var_bits(c, u) == 64) {
            int origin = shared_origin(c, u);
            char from[64] = "";
            if (origin > 0)
                snprintf(from, sizeof from, "; its shared address comes from line %d", origin);
            return add_issue(c, KD_PTX_RULE_SHARED_U64, in->line,
                             "%s access to shared memory through 64-bit register %s%s",
                             generic ? "generic" : "shared", reg, from);
        }
        if (u >= 0 && var_bits(c, u) == 0 && !generic)
            return add_issue(c, KD_PTX_RULE_SHARED_U64, in->line,
                             "shared access through register %s, which is not declared "
                             "(width unknown)", reg);
        if (u >= 0 && (t & T_SHARED64))
            return add_issue(c, KD_PTX_RULE_SHARED_U64, in->line,
                             "shared address in %s was computed in a 64-bit register", reg);
    }
    if (generic && u >= 0 && var_bits(c, u) == 64 && (t & T_PARAMS)) {
        c->sum->shared64_params |= t & T_PARAMS;
        if (!c->sum->shared64_line)
            c->sum->shared64_line = in->line;
    }
    return 0;
}

/* The state space of the n-th address operand: the n-th space modifier of the opcode
 * (cp.async.ca.shared.global: shared, then global), the last one past them, generic
 * with none. */
static int nth_space(const char *op, int n)
{
    static const struct { const char *name; int space; } spaces[] = {
        {"shared", SP_SHARED}, {"global", SP_GLOBAL}, {"local", SP_LOCAL},
        {"param", SP_PARAM},   {"const", SP_OTHER},   {"tex", SP_OTHER}};
    int found = SP_GENERIC, k = 0;
    for (const char *s = strchr(op, '.'); s; s = strchr(s + 1, '.')) {
        size_t len = strcspn(s + 1, ".:");
        for (size_t i = 0; i < sizeof spaces / sizeof spaces[0]; i++)
            if (len == strlen(spaces[i].name) && strncmp(s + 1, spaces[i].name, len) == 0) {
                found = spaces[i].space;
                if (k++ == n)
                    return found;
            }
    }
    return found;
}

/* Rule 1 at a global load or store: ld/ldu/st/atom/red/cp, each address operand in its
 * space; a generic one counts when its address comes from a global pointer. */
static void check_global(fn_ctx *c, int i)
{
    const kd_ptx_insn *in = &c->g->insns[i];
    const char *op = in->opcode;
    if (!(is_load(op) || opcode_is(op, "st") || opcode_is(op, "atom") || opcode_is(op, "red") ||
          opcode_is(op, "cp")))
        return;
    int n = 0;
    for (int u = c->ii[i].use0; u < c->ii[i].use1; u++) {
        if (UR(c, u)->role != U_ADDR)
            continue;
        int space = nth_space(op, n++);
        int src = -1;
        uint64_t t = use_taint(c, u, &src);
        int global_like = space == SP_GLOBAL ||
                          (space == SP_GENERIC && (t & (T_GLOBAL | T_PARAMS)) &&
                           !(t & (T_GSHARED | T_SHARED)));
        if (!global_like)
            continue;
        if (t & T_PARAMS) {
            c->sum->addr_params |= t & T_PARAMS;
            if (!c->sum->addr_line)
                c->sum->addr_line = in->line;
        }
        if ((t & T_BATCH) && src >= 0)
            note_batch(c, src, in->line);
    }
}

/* Functions the CUDA runtime or the OpenCL library provide: declared, never defined in
 * the PTX, known not to touch the arguments' memory in a way the rules care about. */
static int runtime_function(const char *name)
{
    static const char *const names[] = {"vprintf", "malloc", "free", "__assertfail",
                                        "cudaMalloc", "cudaFree", "cudaGetParameterBufferV2",
                                        "cudaLaunchDeviceV2", "cudaGetDevice",
                                        "cudaDeviceGetAttribute", "cudaFuncGetAttributes",
                                        "cudaOccupancyMaxActiveBlocksPerMultiprocessor"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (strcmp(name, names[k]) == 0)
            return 1;
    /* OpenCL work-item functions left as calls (clang without libclc) */
    return strncmp(name, "_Z", 2) == 0 && strstr(name, "get_") != NULL;
}

/* A call whose callee is defined in no input (or an indirect call): nothing flows through
 * it. For rule 1 that is the safe side (it cannot supply the batch index); for rule 2 a
 * shared address it receives is not followed, so the report says so (a warning, not a
 * violation: the callee's code is not there to prove or refute anything). */
static int warn_unresolved(fn_ctx *c, int i, const char *name)
{
    if (name && runtime_function(name))
        return 0;
    char head[KD_PTX_NAME_MAX + 16];
    snprintf(head, sizeof head, "call to %s,", name ? name : "an indirect target");
    for (int k = 0; k < c->issues.n; k++) { /* one warning per callee and function */
        const flow_issue *is = &((const flow_issue *)c->issues.d)[k];
        if (is->rule == FLOW_WARNING && strncmp(is->detail, head, strlen(head)) == 0)
            return 0;
    }
    uint64_t t = 0;
    for (int u = c->ii[i].use0; u < c->ii[i].use1; u++)
        if (UR(c, u)->role == U_ARG)
            t |= use_taint(c, u, NULL);
    flow_module *cfm = NULL;
    const kd_ptx_func *f = NULL;
    int n = name ? resolve_extern(c->fm, name, &cfm, &f) : 0;
    return add_issue(c, FLOW_WARNING, c->g->insns[i].line,
                     "call to %s, defined in %s: not followed (cannot carry the batch "
                     "index)%s", name ? name : "an indirect target",
                     n > 1 ? "more than one input for this target" : "no input",
                     t & (T_SHARED | T_GSHARED | T_SHARED64)
                         ? "; it receives a shared-memory address, whose accesses there are "
                           "not checked"
                         : "");
}

/* Rule 1 and 2 through a call: the callee's summary against the arguments. */
static int check_call(fn_ctx *c, int i)
{
    const kd_ptx_insn *in = &c->g->insns[i];
    flow_summary *s = NULL;
    if (c->ii[i].callee < 0)
        return warn_unresolved(c, i, NULL);
    if (summary_of(c->ii[i].cfm, c->ii[i].callee, c->depth + 1, &s) != KD_OK)
        return -1;
    const char *name = c->ii[i].cfm->m->funcs[c->ii[i].callee].name;
    if (!c->ii[i].cfm->m->funcs[c->ii[i].callee].has_body)
        return warn_unresolved(c, i, name);
    if (!s)
        return 0;
    if (s->batch_internal && !c->sum->batch_internal) {
        c->sum->batch_internal = 1;
        c->sum->batch_line = s->batch_line;
        snprintf(c->sum->batch_mech, sizeof c->sum->batch_mech, "%s", s->batch_mech);
        snprintf(c->sum->batch_path, sizeof c->sum->batch_path, "call %d -> %.200s: %.700s",
                 in->line, name, s->batch_path);
    }
    for (int k = 0; k < MAX_PARAM_BITS; k++) {
        if (s->out_taint[k]) { /* our pointer parameter passed on: their stores are ours */
            uint64_t at = arg_taint(c, i, k, NULL) & T_PARAMS;
            uint64_t v = at ? apply_summary(c, i, s->out_taint[k], NULL) : 0;
            for (int m = 0; m < MAX_PARAM_BITS; m++)
                if (at & t_param(m))
                    c->sum->out_taint[m] |= v;
        }
        if (!((s->addr_params | s->shared64_params) & t_param(k)))
            continue;
        int src = -1;
        uint64_t t = arg_taint(c, i, k, &src);
        if ((s->addr_params & t_param(k)) && (t & T_BATCH) && src >= 0 && !c->sum->batch_internal) {
            char head[KD_PTX_TEXT_MAX / 2];
            batch_path(c, src, in->line, head, sizeof head);
            c->sum->batch_internal = 1;
            c->sum->batch_line = in->line;
            batch_mechanism(c, src, c->sum->batch_mech, sizeof c->sum->batch_mech);
            char at[KD_PTX_NAME_MAX + 16];
            if (c->ii[i].cfm != c->fm) /* the callee is in another input */
                snprintf(at, sizeof at, "%.200s:%d", c->ii[i].cfm->m->name, s->addr_line);
            else
                snprintf(at, sizeof at, "%d", s->addr_line);
            snprintf(c->sum->batch_path, sizeof c->sum->batch_path,
                     "%.400s -> %.200s parameter %d -> %s", head, name, k, at);
        }
        if (s->addr_params & t_param(k)) {
            c->sum->addr_params |= t & T_PARAMS;
            if (!c->sum->addr_line && (t & T_PARAMS))
                c->sum->addr_line = in->line;
        }
        if (s->shared64_params & t_param(k)) {
            if (t & T_SHARED) {
                if (add_issue(c, KD_PTX_RULE_SHARED_U64, in->line,
                              "shared address passed to %s (parameter %d) is accessed through "
                              "a 64-bit register at line %d", name, k, s->shared64_line) != 0)
                    return -1;
            }
            c->sum->shared64_params |= t & T_PARAMS;
            if (!c->sum->shared64_line && (t & T_PARAMS))
                c->sum->shared64_line = in->line;
        }
    }
    return 0;
}

/* A store through a pointer parameter: what the caller's variable receives. */
static void record_out_params(fn_ctx *c, int i)
{
    const kd_ptx_insn *in = &c->g->insns[i];
    /* st.local through a parameter-derived address is a store to the caller's variable
     * too (nvcc clones helpers with cvta.to.local for local pointers) */
    if (!opcode_is(in->opcode, "st") || c->ii[i].space == SP_PARAM)
        return;
    int u = addr_use(c, i);
    uint64_t t = u >= 0 ? use_taint(c, u, NULL) : 0;
    if (!(t & T_PARAMS))
        return;
    int src = -1;
    uint64_t v = sources(c, i, U_VAL, &src);
    for (int k = 0; k < MAX_PARAM_BITS; k++)
        if (t & t_param(k))
            c->sum->out_taint[k] |= v;
    if (src >= 0 && !c->sum->flow_mech[0])
        batch_mechanism(c, src, c->sum->flow_mech, sizeof c->sum->flow_mech);
}

static int check_special_writes(fn_ctx *c, int i)
{
    for (int d = c->ii[i].def0; d < c->ii[i].def1; d++)
        if (VI(c, DR(c, d)->var)->special)
            return add_issue(c, KD_PTX_RULE_SPECIAL_WRITE, c->g->insns[i].line,
                             "write to special register %s (read-only)",
                             c->g->insns[i].ops[0].base ? c->g->insns[i].ops[0].base : "?");
    return 0;
}

/* m_dim seeds: def d becomes a batch index (a seed) and its users are queued. */
static void seed_def(fn_ctx *c, int d, int *work, int *top, unsigned char *queued)
{
    if (c->taint[d] & T_BATCH)
        return;
    c->taint[d] |= T_BATCH;
    c->from[d] = -1;
    c->seed[d] = 1;
    for (int q = c->du0[d]; q < c->du0[d + 1]; q++)
        if (!queued[c->du[q]]) {
            queued[c->du[q]] = 1;
            work[(*top)++] = c->du[q];
        }
}

static int bra_target(fn_ctx *c, const kd_ptx_insn *br)
{
    for (int o = 0; o < br->n_ops; o++)
        if (br->ops[o].kind == KD_PTX_OPND_SYM)
            return label_insn(c, br->ops[o].base);
    return -1;
}

/* 1 when instruction in makes a predicate from predicate sources: and/or/not/xor/mov of
 * predicates, a setp that combines one (setp.lt.and.s32 %p2, %r1, %r2, %p1), a vote. */
static int combines_predicate(const kd_ptx_insn *in)
{
    const char *op = in->opcode;
    return ((opcode_is(op, "and") || opcode_is(op, "or") || opcode_is(op, "not") ||
             opcode_is(op, "xor") || opcode_is(op, "mov")) && has_mod(op, "pred")) ||
           opcode_is(op, "setp") || opcode_is(op, "vote");
}

/* 1 when predicate def d (directly or through combines_predicate) guards a branch of the
 * loop [top, end] that leaves it or goes back to its top: the compare ends the loop. */
static int pred_exits_loop(fn_ctx *c, int d, int top, int end, int depth)
{
    for (int k = c->du0[d]; k < c->du0[d + 1]; k++) {
        int j = c->du[k];
        const kd_ptx_insn *in = &c->g->insns[j];
        if (opcode_is(in->opcode, "bra") && in->guard && j >= top && j <= end) {
            int t = bra_target(c, in);
            if (j == end || t < top || t > end)
                return 1;
        } else if (depth < 4 && combines_predicate(in)) {
            for (int e = c->ii[j].def0; e < c->ii[j].def1; e++)
                if (pred_exits_loop(c, e, top, end, depth + 1))
                    return 1;
        }
    }
    return 0;
}

/* The compare in [top, end] that bounds the loop with an m_dim-derived value, -1. */
static int m_dim_compare(fn_ctx *c, int top, int end)
{
    for (int i = top; i <= end; i++) {
        const kd_ptx_insn *in = &c->g->insns[i];
        if (!opcode_is(in->opcode, "setp") || !(sources(c, i, U_VAL, NULL) & T_MDIM))
            continue;
        for (int d = c->ii[i].def0; d < c->ii[i].def1; d++)
            if (pred_exits_loop(c, d, top, end, 0))
                return i;
    }
    return -1;
}

/* Reaching definitions inside one loop (its blocks b0..b1, in text order), over the
 * loop's own definitions only (loc: def -> local index, -1 outside the loop). gen
 * LOOP_GEN_ALL: every definition is added; LOOP_GEN_CARRIED: only those of instructions
 * that read one in the set (values computed from the start set: what the loop carries). */
enum { LOOP_GEN_ALL = 1, LOOP_GEN_CARRIED = 2 };
typedef struct loop_rd {
    int b0, b1;
    size_t w;
    const int *loc;
    uint64_t *in; /* per block of the loop */
    uint64_t *tmp;
} loop_rd;

static int use_in_set(fn_ctx *c, const loop_rd *L, int u, const uint64_t *set);

/* 1 when instruction i computes its result from its register sources' values. */
static int computes_from_sources(fn_ctx *c, int i)
{
    const char *op = c->g->insns[i].opcode;
    return !blocks_taint(op) && !is_memory_op(op) && !opcode_is(op, "call");
}

/* 1 when instruction i reads a value of set. */
static int reads_set(fn_ctx *c, const loop_rd *L, int i, const uint64_t *set)
{
    for (int u = c->ii[i].use0; u < c->ii[i].use1; u++)
        if (UR(c, u)->role == U_VAL && use_in_set(c, L, u, set))
            return 1;
    return 0;
}

static void loop_apply(fn_ctx *c, const loop_rd *L, int i, uint64_t *set, int gen)
{
    if (gen == LOOP_GEN_CARRIED)
        gen = computes_from_sources(c, i) && reads_set(c, L, i, set);
    for (int d = c->ii[i].def0; d < c->ii[i].def1; d++) {
        def_rec *dr = DR(c, d);
        if (dr->killing && !dr->guarded) {
            var_info *vi = VI(c, dr->var);
            for (int k = vi->def0; k < vi->def1; k++) {
                int l = L->loc[c->vdefs[k]];
                if (l >= 0)
                    set[l >> 6] &= ~((uint64_t)1 << (l & 63));
            }
        }
        if (gen && L->loc[d] >= 0)
            set[L->loc[d] >> 6] |= (uint64_t)1 << (L->loc[d] & 63);
    }
}

static void loop_flow(fn_ctx *c, loop_rd *L, const uint64_t *start, int gen)
{
    size_t w = L->w;
    memset(L->in, 0, (size_t)(L->b1 - L->b0 + 1) * w * sizeof *L->in);
    if (start)
        memcpy(L->in, start, w * sizeof *L->in);
    for (int changed = 1; changed;) {
        changed = 0;
        for (int b = L->b0; b <= L->b1; b++) {
            if (!c->breach[b])
                continue;
            memcpy(L->tmp, L->in + (size_t)(b - L->b0) * w, w * sizeof *L->tmp);
            for (int i = c->bstart[b]; i < c->bend[b]; i++)
                loop_apply(c, L, i, L->tmp, gen);
            int s[2] = {c->succ0[b], c->succ1[b]};
            int extra = c->succ_extra[b] == -2 ? c->g->n_labels : 0;
            for (int k = 0; k < 2 + extra; k++) {
                int t = k < 2 ? s[k] : c->label_block[k - 2];
                if (t < L->b0 || t > L->b1)
                    continue;
                uint64_t *dst = L->in + (size_t)(t - L->b0) * w;
                for (size_t j = 0; j < w; j++)
                    if ((dst[j] | L->tmp[j]) != dst[j]) {
                        dst[j] |= L->tmp[j];
                        changed = 1;
                    }
            }
        }
    }
}

/* 1 when use u reads one of the loop's definitions in set (as a local bit set). */
static int use_in_set(fn_ctx *c, const loop_rd *L, int u, const uint64_t *set)
{
    for (int k = UR(c, u)->ud0; k < UR(c, u)->ud1; k++) {
        int l = L->loc[c->ud[k]];
        if (l >= 0 && ((set[l >> 6] >> (l & 63)) & 1))
            return 1;
    }
    return 0;
}

/* The fallback for a loop too big for bit sets (as MAX_RD_WORDS): an arithmetic
 * instruction that reads a definition at or after it in the loop's text (it came round a
 * back edge: this loop's or an inner one's, so more is seeded than with the sets). */
static int seed_carried_by_text(fn_ctx *c, int head, int end, int *work, int *top,
                                unsigned char *queued)
{
    for (int i = head; i <= end; i++) {
        if (!computes_from_sources(c, i) || opcode_is(c->g->insns[i].opcode, "mov"))
            continue;
        int carried = 0;
        for (int u = c->ii[i].use0; u < c->ii[i].use1 && !carried; u++)
            for (int k = UR(c, u)->ud0; UR(c, u)->role == U_VAL && k < UR(c, u)->ud1; k++) {
                int j = DR(c, c->ud[k])->insn;
                carried |= j >= i && j <= end;
            }
        for (int d = c->ii[i].def0; carried && d < c->ii[i].def1; d++)
            seed_def(c, d, work, top, queued);
    }
    return 0;
}

/* Seeds the values loop [head, end] advances round its own back edge: an arithmetic
 * instruction (not a move) of the loop that reads a value carried round it: a definition
 * of the loop that reached the loop's head from its end (and was not redefined since), or
 * a value computed from one in this iteration (nvcc -G moves each carried value into a
 * fresh register at the head). An inner loop's counter, set again before the inner loop
 * each time, is not advanced by this loop; a pointer that goes on from row to row through
 * an inner loop is. */
static int seed_carried(fn_ctx *c, int head, int end, int *loc, int *work, int *top,
                        unsigned char *queued)
{
    int d0 = -1, d1 = -1;
    for (int i = head; i <= end; i++)
        if (c->ii[i].def1 > c->ii[i].def0) {
            if (d0 < 0)
                d0 = c->ii[i].def0;
            d1 = c->ii[i].def1;
        }
    if (d0 < 0)
        return 0;
    loop_rd L = {c->ii[head].block, c->ii[end].block, ((size_t)(d1 - d0) + 63) / 64, loc,
                 NULL, NULL};
    if ((size_t)(L.b1 - L.b0 + 1) * L.w > MAX_RD_WORDS)
        return seed_carried_by_text(c, head, end, work, top, queued);
    L.in = calloc((size_t)(L.b1 - L.b0 + 1) * L.w, sizeof *L.in);
    L.tmp = calloc(L.w, sizeof *L.tmp);
    uint64_t *at_head = calloc(L.w, sizeof *at_head);
    int rc = L.in && L.tmp && at_head ? 0 : -1;
    for (int d = d0; d < d1; d++)
        loc[d] = d - d0;
    if (rc == 0) {
        loop_flow(c, &L, NULL, LOOP_GEN_ALL);
        memcpy(at_head, L.in, L.w * sizeof *at_head);
        loop_flow(c, &L, at_head, LOOP_GEN_CARRIED);
        for (int b = L.b0; b <= L.b1; b++) {
            if (!c->breach[b])
                continue;
            memcpy(L.tmp, L.in + (size_t)(b - L.b0) * L.w, L.w * sizeof *L.tmp);
            for (int i = c->bstart[b]; i < c->bend[b]; i++) {
                /* a move only passes a value round the loop; arithmetic advances it */
                int arith = computes_from_sources(c, i) &&
                            !opcode_is(c->g->insns[i].opcode, "mov");
                if (arith && reads_set(c, &L, i, L.tmp))
                    for (int d = c->ii[i].def0; d < c->ii[i].def1; d++)
                        seed_def(c, d, work, top, queued);
                loop_apply(c, &L, i, L.tmp, LOOP_GEN_CARRIED);
            }
        }
    }
    for (int d = d0; d < d1; d++)
        loc[d] = -1;
    free(L.in);
    free(L.tmp);
    free(at_head);
    return rc;
}

/* m_dim bounds a loop over rows: a loop (a backward branch and its target: [top, end])
 * whose exit compare reads an m_dim-derived value (the row counter against m_dim, a
 * down-counter set from it, a pointer against base + m_dim * stride). Then the compare's
 * operands and every value the loop carries round its back edge (the counter, pointers
 * nvcc strength-reduced from row * stride) are the batch index: they count when they
 * reach a global address. A compare whose loop carries nothing to an address adds
 * nothing. */
static int seed_m_dim(fn_ctx *c)
{
    int n = c->g->n_insns, top = 0, any = 0;
    int *work = malloc(((size_t)n + 1) * sizeof *work);
    unsigned char *queued = calloc((size_t)n + 1, 1);
    int *mdim_before = malloc(((size_t)n + 1) * sizeof *mdim_before);
    int *loc = malloc(((size_t)c->defs.n + 1) * sizeof *loc);
    if (!work || !queued || !mdim_before || !loc) {
        free(work);
        free(queued);
        free(mdim_before);
        free(loc);
        return -1;
    }
    for (int d = 0; d < c->defs.n; d++)
        loc[d] = -1;
    /* compares of m_dim-derived values before each instruction: loops without one cost
     * nothing */
    mdim_before[0] = 0;
    for (int i = 0; i < n; i++)
        mdim_before[i + 1] = mdim_before[i] + (c->breach[c->ii[i].block] &&
                                               opcode_is(c->g->insns[i].opcode, "setp") &&
                                               (sources(c, i, U_VAL, NULL) & T_MDIM) != 0);
    for (int end = 0; end < n && mdim_before[n] > 0; end++) {
        const kd_ptx_insn *br = &c->g->insns[end];
        if (!c->breach[c->ii[end].block] || !opcode_is(br->opcode, "bra"))
            continue;
        int head = bra_target(c, br);
        if (head < 0 || head > end || mdim_before[end + 1] == mdim_before[head])
            continue;
        int cmp = m_dim_compare(c, head, end);
        if (cmp < 0)
            continue;
        any = 1;
        for (int u = c->ii[cmp].use0; u < c->ii[cmp].use1; u++)
            if (UR(c, u)->role == U_VAL)
                for (int k = UR(c, u)->ud0; k < UR(c, u)->ud1; k++)
                    seed_def(c, c->ud[k], work, &top, queued);
        if (seed_carried(c, head, end, loc, work, &top, queued) != 0) {
            any = -1;
            break;
        }
    }
    int rc = any < 0 ? -1 : any ? taint_solve(c, work, queued, top) : 0;
    free(work);
    free(queued);
    free(mdim_before);
    free(loc);
    return rc;
}

static int collect_rets(fn_ctx *c)
{
    flow_summary *s = c->sum;
    s->n_rets = c->g->n_rets;
    if (!s->n_rets)
        return 0;
    s->ret_taint = calloc((size_t)s->n_rets, sizeof *s->ret_taint);
    if (!s->ret_taint)
        return -1;
    for (int j = 0; j < s->n_rets; j++) {
        char key[600];
        int v = -1;
        snprintf(key, sizeof key, "P:%s", c->g->rets[j].name);
        v = strmap_id(&c->vars, key, 1);
        if (v < 0) {
            snprintf(key, sizeof key, "RV:%d", j);
            v = strmap_id(&c->vars, key, 1);
        }
        if (v < 0)
            continue;
        for (int k = VI(c, v)->def0; k < VI(c, v)->def1; k++) {
            int d = c->vdefs[k];
            if (DR(c, d)->insn >= 0 && c->breach[c->ii[DR(c, d)->insn].block]) {
                s->ret_taint[j] |= c->taint[d];
                if ((c->taint[d] & T_BATCH) && !s->flow_mech[0])
                    batch_mechanism(c, d, s->flow_mech, sizeof s->flow_mech);
            }
        }
    }
    return 0;
}

static int add_callee(fn_ctx *c, flow_module *cfm, int fi)
{
    flow_summary *s = c->sum;
    for (int k = 0; k < s->n_callees; k++)
        if (s->callees[k] == fi && s->callee_fms[k] == cfm)
            return 0;
    int *nc = realloc(s->callees, (size_t)(s->n_callees + 1) * sizeof *nc);
    if (!nc)
        return -1;
    s->callees = nc;
    flow_module **nf = realloc(s->callee_fms, (size_t)(s->n_callees + 1) * sizeof *nf);
    if (!nf)
        return -1;
    s->callee_fms = nf;
    s->callee_fms[s->n_callees] = cfm;
    s->callees[s->n_callees++] = fi;
    return 0;
}

static int run_checks(fn_ctx *c)
{
    for (int i = 0; i < c->g->n_insns; i++) {
        if (!c->breach[c->ii[i].block])
            continue;
        const char *op = c->g->insns[i].opcode;
        int rc = check_special_writes(c, i);
        if (rc == 0 && opcode_is(op, "call") && c->ii[i].callee >= 0) {
            rc = check_call(c, i);
            if (rc == 0)
                rc = add_callee(c, c->ii[i].cfm, c->ii[i].callee);
        } else if (rc == 0 && is_memory_op(op)) {
            rc = check_access(c, i);
            if (rc == 0) {
                check_global(c, i);
                record_out_params(c, i);
            }
        }
        if (rc != 0 || c->nomem)
            return -1;
    }
    return 0;
}

static void ctx_free(fn_ctx *c)
{
    strmap_free(&c->vars);
    strmap_free(&c->labels);
    strmap_free(&c->regidx);
    free(c->regidx_decl);
    free(c->var_info_a.d);
    free(c->uses.d);
    free(c->defs.d);
    free(c->ii);
    free(c->ud);
    free(c->du0);
    free(c->du);
    free(c->vdefs);
    free(c->bstart);
    free(c->label_block);
    free(c->bend);
    free(c->succ0);
    free(c->succ1);
    free(c->succ_extra);
    free(c->breach);
    free(c->taint);
    free(c->from);
    free(c->seed);
    free(c->issues.d);
}

/* Analyses function fi into s (kernel: parameters are the kernel's). */
static kd_status analyze_fn(flow_module *fm, int fi, int kernel, uint64_t m_dim, int depth,
                            flow_summary *s)
{
    fn_ctx c;
    memset(&c, 0, sizeof c);
    c.fm = fm;
    c.m = fm->m;
    kd_ptx_body *body = NULL;
    kd_status lst = kd_ptx_func_load(fm->m, &fm->m->funcs[fi], &c.g, &body);
    if (lst != KD_OK)
        return lst;
    c.kernel = kernel;
    c.m_dim = m_dim;
    c.depth = depth;
    c.sum = s;
    int n = c.g->n_insns;
    int rc = 0;
    if (n > 0) {
        c.ii = calloc((size_t)n, sizeof *c.ii);
        rc = c.ii ? index_regs(&c) : -1;
        if (rc == 0)
            rc = find_frames(&c);
        for (int i = 0; rc == 0 && i < n; i++)
            rc = build_insn(&c, i);
        if (rc == 0)
            rc = add_entry_defs(&c);
        if (rc == 0)
            rc = build_cfg(&c);
        if (rc == 0)
            rc = index_var_defs(&c);
        if (rc == 0)
            rc = solve_rd(&c);
        if (rc == 0)
            rc = build_du(&c);
        if (rc == 0)
            rc = taint_all(&c);
        if (rc == 0 && kernel)
            rc = seed_m_dim(&c);
        if (rc == 0)
            rc = run_checks(&c);
        if (rc == 0)
            rc = collect_rets(&c);
    }
    if (rc == 0) {
        s->issues = c.issues.d;
        s->n_issues = c.issues.n;
        c.issues.d = NULL;
    }
    ctx_free(&c);
    kd_ptx_body_free(body);
    return rc == 0 ? KD_OK : KD_ERR_NOMEM;
}

static void summary_free(flow_summary *s)
{
    if (!s)
        return;
    free(s->ret_taint);
    free(s->issues);
    free(s->callees);
    free(s->callee_fms);
    free(s);
}

/* The summary of .func fi, analysed on first use. A recursive call (or one deeper than
 * MAX_CALL_DEPTH) sees no summary: nothing flows through it. */
static kd_status summary_of(flow_module *fm, int fi, int depth, flow_summary **out)
{
    *out = NULL;
    const kd_ptx_func *f = &fm->m->funcs[fi];
    if (!f->has_body || depth > MAX_CALL_DEPTH)
        return KD_OK;
    if (fm->sum[fi]) {
        *out = fm->sum[fi]->in_progress ? NULL : fm->sum[fi];
        return KD_OK;
    }
    flow_summary *s = calloc(1, sizeof *s);
    if (!s)
        return KD_ERR_NOMEM;
    s->in_progress = 1;
    fm->sum[fi] = s;
    kd_status st = analyze_fn(fm, fi, 0, 0, depth, s);
    s->in_progress = 0;
    if (st != KD_OK) {
        fm->sum[fi] = NULL;
        summary_free(s);
        return st;
    }
    *out = s;
    return KD_OK;
}

void flow_link_modules(flow_module *fms, int n)
{
    for (int i = 0; i < n; i++) {
        fms[i].peers = fms;
        fms[i].n_peers = n;
    }
}

kd_status flow_module_init(flow_module *fm, const kd_ptx_module *m)
{
    fm->m = m;
    fm->peers = fm;
    fm->n_peers = 1;
    fm->sum = calloc((size_t)m->n_funcs + 1, sizeof *fm->sum);
    return fm->sum ? KD_OK : KD_ERR_NOMEM;
}

void flow_module_free(flow_module *fm)
{
    if (!fm || !fm->sum)
        return;
    for (int i = 0; i < fm->m->n_funcs; i++)
        summary_free(fm->sum[i]);
    free(fm->sum);
    fm->sum = NULL;
}

static int append_issues(flow_kernel *r, const flow_summary *s, const kd_ptx_module *m,
                         const kd_ptx_func *f)
{
    if (!s->n_issues)
        return 0;
    size_t n = (size_t)(r->n_issues + s->n_issues);
    flow_issue *ni = realloc(r->issues, n * sizeof *ni);
    if (!ni)
        return -1;
    r->issues = ni;
    const kd_ptx_func **nf = realloc(r->issue_func, n * sizeof *nf);
    if (!nf)
        return -1;
    r->issue_func = nf;
    const kd_ptx_module **nm = realloc(r->issue_mod, n * sizeof *nm);
    if (!nm)
        return -1;
    r->issue_mod = nm;
    for (int k = 0; k < s->n_issues; k++) {
        r->issues[r->n_issues] = s->issues[k];
        r->issue_mod[r->n_issues] = m;
        r->issue_func[r->n_issues++] = f;
    }
    return 0;
}

/* Marks function fi of module cfm reachable; 1 when it was not yet. */
static int mark_reached(flow_module *fm, flow_kernel *r, flow_module *cfm, int fi)
{
    if (cfm == fm) {
        if (r->reach[fi])
            return 0;
        r->reach[fi] = 1;
        return 1;
    }
    for (int k = 0; k < r->n_ext; k++)
        if (r->ext_mod[k] == cfm->m && r->ext_func[k] == fi)
            return 0;
    const kd_ptx_module **nm = realloc(r->ext_mod, (size_t)(r->n_ext + 1) * sizeof *nm);
    if (!nm)
        return -1;
    r->ext_mod = nm;
    int *nf = realloc(r->ext_func, (size_t)(r->n_ext + 1) * sizeof *nf);
    if (!nf)
        return -1;
    r->ext_func = nf;
    r->ext_mod[r->n_ext] = cfm->m;
    r->ext_func[r->n_ext++] = fi;
    return 1;
}

typedef struct reach_item {
    flow_module *fm;
    int fi;
} reach_item;

/* Pushes the callees of s not yet reached. */
static int push_callees(flow_module *fm, flow_kernel *r, const flow_summary *s,
                        reach_item **stack, int *top, int *cap)
{
    for (int j = 0; j < s->n_callees; j++) {
        int new_one = mark_reached(fm, r, s->callee_fms[j], s->callees[j]);
        if (new_one < 0)
            return -1;
        if (!new_one)
            continue;
        if (*top == *cap) {
            int nc = *cap ? *cap * 2 : 16;
            reach_item *ns = realloc(*stack, (size_t)nc * sizeof *ns);
            if (!ns)
                return -1;
            *stack = ns;
            *cap = nc;
        }
        (*stack)[(*top)++] = (reach_item){s->callee_fms[j], s->callees[j]};
    }
    return 0;
}

kd_status flow_analyze_kernel(flow_module *fm, const kd_ptx_func *k, uint64_t m_dim,
                              flow_kernel *out)
{
    memset(out, 0, sizeof *out);
    const kd_ptx_module *m = fm->m;
    int ki = (int)(k - m->funcs);
    out->reach = calloc((size_t)m->n_funcs + 1, 1);
    flow_summary *s = calloc(1, sizeof *s);
    if (!out->reach || !s) {
        free(s);
        flow_kernel_free(out);
        return KD_ERR_NOMEM;
    }
    reach_item *stack = NULL;
    int top = 0, cap = 0;
    kd_status st = analyze_fn(fm, ki, 1, m_dim, 0, s);
    if (st == KD_OK) {
        out->batch_found = s->batch_internal;
        snprintf(out->mechanism, sizeof out->mechanism, "%s",
                 s->batch_internal ? s->batch_mech : "");
        out->mechanism_line = s->batch_line;
        snprintf(out->path, sizeof out->path, "%s", s->batch_path);
        out->shared_accesses = s->shared_accesses;
        out->reach[ki] = 1;
        if (append_issues(out, s, m, k) != 0 ||
            push_callees(fm, out, s, &stack, &top, &cap) != 0)
            st = KD_ERR_NOMEM;
        while (st == KD_OK && top > 0) {
            reach_item it = stack[--top];
            flow_summary *cs = it.fm->sum[it.fi];
            if (!cs || cs->in_progress)
                continue;
            out->shared_accesses += cs->shared_accesses;
            if (append_issues(out, cs, it.fm->m, &it.fm->m->funcs[it.fi]) != 0 ||
                push_callees(fm, out, cs, &stack, &top, &cap) != 0)
                st = KD_ERR_NOMEM;
        }
    }
    summary_free(s);
    free(stack);
    if (st != KD_OK)
        flow_kernel_free(out);
    return st;
}

void flow_kernel_free(flow_kernel *r)
{
    if (!r)
        return;
    free(r->reach);
    free(r->issues);
    free(r->issue_func);
    free(r->issue_mod);
    free(r->ext_mod);
    free(r->ext_func);
    memset(r, 0, sizeof *r);
}
