/*
 * A PTX parser: enough of the PTX ISA's grammar to know, for every kernel, its
 * parameters, its register declarations (with their widths), its shared-memory
 * declarations (with their sizes), and every instruction with its operands and source
 * line. It is a real parser (tokens, then statements), not substring matching: the
 * parity rules in ptx_check.h depend on knowing which operand is an address and which
 * register it goes through.
 *
 * Malformed input (a truncated file, binary data, an unknown instruction, unbalanced
 * brackets, a bad declaration) is refused with the line number and a message; the parser
 * never reads outside its input and bounds every size it accepts.
 */
#ifndef KD_PTX_PARSE_H
#define KD_PTX_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "kdispatch.h" /* kd_status */

/* Where and why parsing failed. line is 1-based; 0 when not tied to a line (I/O). */
typedef struct kd_ptx_error {
    int line;
    char msg[256];
} kd_ptx_error;

typedef enum kd_ptx_opnd_kind {
    KD_PTX_OPND_REG,  /* %r5, %rd2, %ctaid.y, !%p1, %r1|%p2 (base = first register) */
    KD_PTX_OPND_IMM,  /* 4, -1, 0f3F800000, 0x10 */
    KD_PTX_OPND_SYM,  /* a symbol or label, optionally sym+off */
    KD_PTX_OPND_ADDR, /* [base], [base+off], [imm] */
    KD_PTX_OPND_VEC,  /* {%f1, %f2} */
    KD_PTX_OPND_LIST, /* (param0, param1) of call */
    KD_PTX_OPND_EXPR  /* anything else well formed, e.g. generic(sym) */
} kd_ptx_opnd_kind;

typedef struct kd_ptx_operand {
    kd_ptx_opnd_kind kind;
    const char *text;  /* the operand's tokens joined, e.g. "[%r55+-256]" */
    const char *base;  /* REG: the register; SYM: the symbol; ADDR: the base register or
                        * symbol (NULL for an absolute [imm] address); EXPR: the first
                        * symbol or register in it, or NULL; otherwise NULL */
    int64_t offset;    /* SYM / ADDR: the constant offset; IMM: the value when integer */
    int negated;       /* REG: written as !%p */
    int n_items;       /* VEC / LIST: number of comma-separated items */
    const char **items; /* VEC / LIST: the items' bases (register or symbol names) */
} kd_ptx_operand;

typedef struct kd_ptx_insn {
    int line;
    const char *guard;   /* guard predicate register (@%p1) or NULL */
    int guard_negated;   /* @!%p1 */
    const char *opcode;  /* full opcode with modifiers: "ld.shared.f32" */
    int n_ops;
    kd_ptx_operand *ops;
    int scope;           /* the { } block it is in (index into its function's scopes) */
} kd_ptx_insn;

/* One .reg declaration item: "%r<56>" (count 56: %r0..%r55) or "%SP" (count -1). */
typedef struct kd_ptx_reg_decl {
    const char *name;  /* the name or the prefix of a range */
    int count;         /* -1 for a single named register */
    const char *type;  /* ".b32", ".pred", ... */
    int bits;          /* width of one register: 1 (pred), 16, 32, 64, 128 */
    int vec;           /* 1, or 2/4/8 for .v2/.v4/.v8 */
    int line;
    int scope;         /* the { } block that declares it; it shadows outer blocks' names */
} kd_ptx_reg_decl;

/* A variable in a state space (.shared here; other spaces are parsed but not kept). */
typedef struct kd_ptx_var {
    const char *name;
    const char *type;    /* element type: ".b8", ".f32", ... */
    uint64_t align;      /* bytes; the element size when not given */
    uint64_t elem_bytes; /* one element, .vN included */
    uint64_t count;      /* elements (product of the array dimensions; 1 for a scalar) */
    uint64_t bytes;      /* elem_bytes * count; 0 for a dynamic (unsized) array */
    int is_extern;       /* declared .extern */
    int is_dynamic;      /* an unsized array "name[]": dynamic shared memory */
    int line;
} kd_ptx_var;

typedef struct kd_ptx_param {
    const char *name;
    const char *type;  /* ".u64", ".b8", ... */
    uint64_t bytes;    /* element size times array size */
    int line;
    int is_reg;        /* declared .reg (a register parameter), not .param */
} kd_ptx_param;

typedef struct kd_ptx_label {
    const char *name;
    int line;
    int insn_index;    /* index of the next instruction in the function */
} kd_ptx_label;

typedef struct kd_ptx_func {
    const char *name;
    int is_entry;      /* .entry (a kernel) or .func */
    int is_extern;     /* declared .extern */
    int has_body;      /* 0 for a prototype (declaration ending in ';') */
    int line;          /* line of the .entry/.func directive */
    int end_line;      /* line of the closing brace */
    int n_params, n_rets, n_regs, n_shared, n_insns, n_labels;
    kd_ptx_param *params;
    kd_ptx_param *rets;     /* .func return parameters */
    kd_ptx_reg_decl *regs;  /* all .reg declarations in the body, nested blocks too */
    kd_ptx_var *shared;     /* function-scope .shared declarations */
    kd_ptx_insn *insns;
    kd_ptx_label *labels;
    /* PTX scopes registers to { } blocks: scope 0 is the body, scope_parent[i] is the
     * block around block i (-1 for the body). */
    int n_scopes;
    int *scope_parent;
    /* Where the body starts in the module text (its '{'), for kd_ptx_func_load. lazy: the
     * module was parsed with kd_ptx_parse_file_lazy and this function keeps no
     * instructions, labels or registers (its .shared declarations are kept). */
    size_t body_offset;
    int body_line;
    int lazy;
} kd_ptx_func;

typedef struct kd_ptx_arena kd_ptx_arena;

typedef struct kd_ptx_module {
    const char *name;          /* file name or a caller-given label */
    int version_major, version_minor;
    const char *target;        /* first .target item: "sm_90" */
    int address_size;          /* 32 or 64 (64 when not given) */
    int n_funcs, n_shared;
    kd_ptx_func *funcs;
    kd_ptx_var *shared;        /* module-scope .shared declarations */
    /* Name indexes (hash tables) so look-ups stay O(1) on modules of 30,000 functions:
     * func_slot[h] is the first function of a name, func_next chains the others of the
     * same name in file order; shared_slot likewise for module-scope .shared. */
    int func_slot_cap, shared_slot_cap;
    int *func_slot, *func_next, *shared_slot;
    /* The source text (a copy) and where each line starts, for line text in reports. */
    char *text;
    size_t text_len;
    size_t *line_start;
    int n_lines;
    kd_ptx_arena *arena;
} kd_ptx_module;

/* Parses len bytes of PTX text (NUL bytes at the very end, as in an OpenCL program
 * binary, are ignored). name labels the module in reports. On failure *out is NULL and
 * err says which line and why: KD_ERR_FORMAT for malformed PTX, KD_ERR_NOMEM,
 * KD_ERR_NULL / KD_ERR_ARG for bad arguments. */
kd_status kd_ptx_parse(const char *name, const char *text, size_t len, kd_ptx_module **out,
                       kd_ptx_error *err);
/* Reads and parses a file (KD_ERR_IO when it cannot be read). */
kd_status kd_ptx_parse_file(const char *path, kd_ptx_module **out, kd_ptx_error *err);
void kd_ptx_module_free(kd_ptx_module *m);

/* As kd_ptx_parse_file, checking the whole file the same way, but function bodies keep
 * no instructions: memory stays near the input size (the text and a line index). The
 * checker reads each body again when it needs it (kd_ptx_func_load). */
kd_status kd_ptx_parse_file_lazy(const char *path, kd_ptx_module **out, kd_ptx_error *err);
kd_status kd_ptx_parse_lazy(const char *name, const char *text, size_t len, kd_ptx_module **out,
                            kd_ptx_error *err);

/* A function's body read on demand. */
typedef struct kd_ptx_body kd_ptx_body;
/* *out is f itself when its body is kept (*body NULL), else a copy of f with the body
 * parsed again from the module text into *body (free with kd_ptx_body_free). */
kd_status kd_ptx_func_load(const kd_ptx_module *m, const kd_ptx_func *f, const kd_ptx_func **out,
                           kd_ptx_body **body);
void kd_ptx_body_free(kd_ptx_body *body);

/* The function of that name with a body (a definition), else the declaration, else NULL. */
const kd_ptx_func *kd_ptx_find_func(const kd_ptx_module *m, const char *name);
/* The first function (definition or declaration) of that name, else NULL; the next one
 * of the same name after f (in file order), else NULL. */
const kd_ptx_func *kd_ptx_first_func(const kd_ptx_module *m, const char *name);
const kd_ptx_func *kd_ptx_next_func(const kd_ptx_module *m, const kd_ptx_func *f);
/* The declaration that covers register reg as seen from block scope (shadowing: the
 * innermost block wins; names with or without '%'), or NULL. */
const kd_ptx_reg_decl *kd_ptx_find_reg_in_scope(const kd_ptx_func *f, const char *reg, int scope);
/* A module-scope .shared variable of that name, or NULL. */
const kd_ptx_var *kd_ptx_find_module_shared(const kd_ptx_module *m, const char *name);
/* A function-scope .shared variable of that name, or NULL. */
const kd_ptx_var *kd_ptx_find_func_shared(const kd_ptx_func *f, const char *name);
/* The declaration that covers register reg ("%rd5" is covered by "%rd<19>"), or NULL. */
const kd_ptx_reg_decl *kd_ptx_find_reg(const kd_ptx_func *f, const char *reg);
/* Copies line `line` of the source, trimmed of surrounding blanks, into buf (cut to
 * fit); returns 0, or -1 when there is no such line. */
int kd_ptx_line_text(const kd_ptx_module *m, int line, char *buf, size_t cap);

/* Size in bytes of a PTX fundamental type (".f32" -> 4), 0 if not one. */
int kd_ptx_type_bytes(const char *type);
/* 1 when reg names a special register (%tid.x, %ctaid.y, %laneid, ...). */
int kd_ptx_is_special_reg(const char *reg);

#endif /* KD_PTX_PARSE_H */
