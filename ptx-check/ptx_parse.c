/*
 * PTX parser: a lexer that turns the text into tokens (words, numbers, strings and
 * punctuation, each with its line), then a recursive-descent parser over the tokens for
 * module directives, variable declarations, functions (header, parameters, performance
 * directives, body) and instructions with their operands.
 *
 * Everything the module keeps lives in one arena freed with the module, so a failed
 * parse at any point frees cleanly. Sizes from the input (array dimensions, register
 * counts, nesting, token lengths) are bounded before use.
 */
#include "ptx_parse.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on what the input may ask for. */
#define MAX_INPUT_BYTES ((size_t)512 << 20)
#define MAX_TOKEN_LEN 4096
#define MAX_NESTING 64
#define MAX_REG_COUNT (1 << 24)
#define MAX_VAR_BYTES ((uint64_t)1 << 40)
#define MAX_ALIGN ((uint64_t)1 << 20)

/* ---- arena --------------------------------------------------------------------------- */

struct kd_ptx_arena {
    struct kd_ptx_arena *next;
    size_t used, cap;
    unsigned char *data;
};

static void *arena_alloc(kd_ptx_module *m, size_t n)
{
    n = (n + 7u) & ~(size_t)7u;
    kd_ptx_arena *a = m->arena;
    if (!a || a->cap - a->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        kd_ptx_arena *c = malloc(sizeof *c);
        if (!c)
            return NULL;
        c->data = malloc(cap);
        if (!c->data) {
            free(c);
            return NULL;
        }
        c->used = 0;
        c->cap = cap;
        c->next = a;
        m->arena = a = c;
    }
    void *p = a->data + a->used;
    a->used += n;
    return p;
}

/* Frees every chunk but the newest and empties it. */
static void scratch_reset(kd_ptx_module *m)
{
    kd_ptx_arena *a = m->arena;
    if (!a)
        return;
    kd_ptx_arena *old = a->next;
    while (old) {
        kd_ptx_arena *nx = old->next;
        free(old->data);
        free(old);
        old = nx;
    }
    a->next = NULL;
    a->used = 0;
}

static void scratch_free(kd_ptx_module *m)
{
    scratch_reset(m);
    if (m->arena) {
        free(m->arena->data);
        free(m->arena);
        m->arena = NULL;
    }
}

static char *arena_strndup(kd_ptx_module *m, const char *s, size_t n)
{
    char *d = arena_alloc(m, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ---- growable arrays (copied into the arena when complete) -------------------------- */

typedef struct vec {
    void *data;
    size_t n, cap, elem;
} vec;

static void vec_init(vec *v, size_t elem)
{
    v->data = NULL;
    v->n = v->cap = 0;
    v->elem = elem;
}

static void *vec_push(vec *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void *d = realloc(v->data, cap * v->elem);
        if (!d)
            return NULL;
        v->data = d;
        v->cap = cap;
    }
    void *slot = (char *)v->data + v->n * v->elem;
    memset(slot, 0, v->elem);
    v->n++;
    return slot;
}

static void vec_free(vec *v)
{
    free(v->data);
    vec_init(v, v->elem);
}

/* Moves the array into the arena; returns 0, or -1 without memory. Empty: NULL. */
static int vec_finish(kd_ptx_module *m, vec *v, void **out, int *count)
{
    *out = NULL;
    *count = (int)v->n;
    if (v->n) {
        *out = arena_alloc(m, v->n * v->elem);
        if (!*out) {
            vec_free(v);
            return -1;
        }
        memcpy(*out, v->data, v->n * v->elem);
    }
    vec_free(v);
    return 0;
}

/* ---- lexer --------------------------------------------------------------------------- */

typedef enum tk_kind { TK_EOF, TK_WORD, TK_NUM, TK_STR, TK_PUNCT } tk_kind;

typedef struct tok {
    tk_kind kind;
    int line;
    const char *p;
    size_t len;
} tok;

/* Tokens live in fixed-size chunks so a pointer to one stays valid while more are
 * lexed; the store is reset (not freed) when the parser has consumed every token, so it
 * holds about one statement's tokens at a time, never the whole file's. */
#define TOK_SHIFT 10
#define TOK_CHUNK ((size_t)1 << TOK_SHIFT)
#define TOK_MASK (TOK_CHUNK - 1)

typedef struct tok_store {
    tok **chunks;
    size_t n_chunks, n; /* chunks allocated, tokens held */
} tok_store;

#define TOKAT(st, k) (&(st)->chunks[(k) >> TOK_SHIFT][(k) & TOK_MASK])

typedef struct lexer {
    const char *s;
    size_t n, i;
    int line;
    int depth;         /* ( and [ open in the current batch */
    int at_eof;        /* the EOF token has been produced */
    tok_store *toks;
    kd_ptx_error *err;
} lexer;

static void set_error(kd_ptx_error *err, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void set_error(kd_ptx_error *err, int line, const char *fmt, ...)
{
    if (!err)
        return;
    err->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

static int is_word_start(int c)
{
    return isalpha(c) || c == '_' || c == '$' || c == '%' || c == '.';
}

static int is_word_char(int c)
{
    return isalnum(c) || c == '_' || c == '$' || c == '.';
}

static int push_tok(lexer *lx, tk_kind kind, size_t start, size_t end)
{
    if (end - start > MAX_TOKEN_LEN) {
        set_error(lx->err, lx->line, "token longer than %d characters", MAX_TOKEN_LEN);
        return -1;
    }
    tok_store *st = lx->toks;
    if ((st->n >> TOK_SHIFT) == st->n_chunks) {
        tok **nc = realloc(st->chunks, (st->n_chunks + 1) * sizeof *nc);
        tok *c = nc ? malloc(TOK_CHUNK * sizeof *c) : NULL;
        if (nc)
            st->chunks = nc;
        if (!c) {
            set_error(lx->err, lx->line, "out of memory");
            return -1;
        }
        st->chunks[st->n_chunks++] = c;
    }
    tok *t = TOKAT(st, st->n);
    st->n++;
    if (kind == TK_PUNCT && (start < lx->n) && (lx->s[start] == '(' || lx->s[start] == '['))
        lx->depth++;
    else if (kind == TK_PUNCT && lx->depth > 0 && (lx->s[start] == ')' || lx->s[start] == ']'))
        lx->depth--;
    t->kind = kind;
    t->line = lx->line;
    t->p = lx->s + start;
    t->len = end - start;
    return 0;
}

static int lex_block_comment(lexer *lx)
{
    int open_line = lx->line;
    size_t i = lx->i + 2;
    while (i + 1 < lx->n && !(lx->s[i] == '*' && lx->s[i + 1] == '/')) {
        if (lx->s[i] == '\n')
            lx->line++;
        i++;
    }
    if (i + 1 >= lx->n) {
        set_error(lx->err, open_line, "unterminated /* comment");
        return -1;
    }
    lx->i = i + 2;
    return 0;
}

static int lex_string(lexer *lx)
{
    size_t start = lx->i, i = lx->i + 1;
    while (i < lx->n && lx->s[i] != '"' && lx->s[i] != '\n') {
        if (lx->s[i] == '\\' && i + 1 < lx->n && lx->s[i + 1] != '\n')
            i++;
        i++;
    }
    if (i >= lx->n || lx->s[i] != '"') {
        set_error(lx->err, lx->line, "unterminated string");
        return -1;
    }
    lx->i = i + 1;
    return push_tok(lx, TK_STR, start, lx->i);
}

static int lex_word(lexer *lx)
{
    size_t start = lx->i, i = lx->i + 1;
    for (;;) {
        if (i < lx->n && is_word_char((unsigned char)lx->s[i])) {
            i++;
        } else if (i + 2 < lx->n && lx->s[i] == ':' && lx->s[i + 1] == ':' &&
                   isalnum((unsigned char)lx->s[i + 2])) {
            i += 2; /* .shared::cta, ld.shared::cluster, ld.global.L2::256B */
        } else {
            break;
        }
    }
    lx->i = i;
    return push_tok(lx, TK_WORD, start, i);
}

static int lex_number(lexer *lx)
{
    size_t start = lx->i, i = lx->i;
    int plain = 1; /* only digits and '.' so far: a sign may follow an exponent */
    while (i < lx->n) {
        unsigned char c = (unsigned char)lx->s[i];
        if (isalnum(c) || c == '_' || c == '.') {
            if (!isdigit(c) && c != '.' && c != 'e' && c != 'E')
                plain = 0;
            i++;
        } else if ((c == '+' || c == '-') && plain && i > start &&
                   (lx->s[i - 1] == 'e' || lx->s[i - 1] == 'E')) {
            i++;
        } else {
            break;
        }
    }
    lx->i = i;
    return push_tok(lx, TK_NUM, start, i);
}

static int lex_one(lexer *lx)
{
    unsigned char c = (unsigned char)lx->s[lx->i];
    unsigned char c1 = lx->i + 1 < lx->n ? (unsigned char)lx->s[lx->i + 1] : 0;
    if (c == '\n') {
        lx->line++;
        lx->i++;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
        lx->i++;
    } else if (c == '/' && c1 == '/') {
        while (lx->i < lx->n && lx->s[lx->i] != '\n')
            lx->i++;
    } else if (c == '/' && c1 == '*') {
        return lex_block_comment(lx);
    } else if (c == '"') {
        return lex_string(lx);
    } else if (is_word_start(c)) {
        return lex_word(lx);
    } else if (isdigit(c)) {
        return lex_number(lx);
    } else if (c && strchr(",;:{}[]()+-<>@!|=*~&^/", c)) {
        lx->i++;
        return push_tok(lx, TK_PUNCT, lx->i - 1, lx->i);
    } else if (c == 0) {
        set_error(lx->err, lx->line, "binary data (NUL byte): not PTX text");
        return -1;
    } else {
        if (isprint(c))
            set_error(lx->err, lx->line, "unexpected character '%c'", c);
        else
            set_error(lx->err, lx->line, "unexpected byte 0x%02x: not PTX text", c);
        return -1;
    }
    return 0;
}

/* Bytes inside comments and strings are not otherwise checked, so look for NUL (binary
 * data) everywhere first. */
static int check_no_nul(const char *s, size_t n, kd_ptx_error *err)
{
    const char *z = memchr(s, '\0', n);
    if (!z)
        return 0;
    int line = 1;
    for (const char *q = s; q < z; q++)
        line += *q == '\n';
    set_error(err, line, "binary data (NUL byte): not PTX text");
    return -1;
}

/* A batch ends at a line end after a statement-ending token (';', '{', '}', a label's
 * ':') outside ( ) and [ ]: the parser then has whole statements, except in the rare
 * forms that cross such a line end (an initializer or .section opened with '{'), which
 * it reads token by token. */
static int batch_complete(const lexer *lx)
{
    if (lx->toks->n == 0 || lx->depth != 0)
        return 0;
    const tok *t = TOKAT(lx->toks, lx->toks->n - 1);
    return t->kind == TK_PUNCT && strchr(";{}:", t->p[0]) != NULL;
}

/* Lexes the next batch (appending to the store); at the end of the input, the EOF
 * token. Returns 0, or -1 with err set. */
static int lex_batch(lexer *lx)
{
    size_t before = lx->toks->n;
    lx->depth = 0;
    while (lx->i < lx->n) {
        if (lx->s[lx->i] == '\n' && lx->toks->n > before && batch_complete(lx)) {
            lx->line++;
            lx->i++;
            return 0;
        }
        if (lex_one(lx) != 0)
            return -1;
    }
    if (lx->toks->n > before)
        return 0;
    if (push_tok(lx, TK_EOF, lx->n, lx->n) != 0)
        return -1;
    lx->at_eof = 1;
    return 0;
}

static void tok_store_free(tok_store *st)
{
    for (size_t i = 0; i < st->n_chunks; i++)
        free(st->chunks[i]);
    free(st->chunks);
    st->chunks = NULL;
    st->n_chunks = st->n = 0;
}

/* ---- types, opcodes, special registers ---------------------------------------------- */

static const struct { const char *name; int bytes; } ptx_types[] = {
    {".b8", 1},      {".u8", 1},      {".s8", 1},     {".b16", 2},    {".u16", 2},
    {".s16", 2},     {".f16", 2},     {".bf16", 2},   {".e4m3", 1},   {".e5m2", 1},
    {".b32", 4},     {".u32", 4},     {".s32", 4},    {".f32", 4},    {".f16x2", 4},
    {".bf16x2", 4},  {".tf32", 4},    {".e4m3x2", 2}, {".e5m2x2", 2}, {".b64", 8},
    {".u64", 8},     {".s64", 8},     {".f64", 8},    {".b128", 16},  {".pred", 1},
    {".texref", 8},  {".samplerref", 8}, {".surfref", 8},
};

int kd_ptx_type_bytes(const char *type)
{
    if (!type)
        return 0;
    for (size_t i = 0; i < sizeof ptx_types / sizeof ptx_types[0]; i++)
        if (strcmp(type, ptx_types[i].name) == 0)
            return ptx_types[i].bytes;
    return 0;
}

/* Base opcodes of the PTX ISA (the part before the first '.'). */
static const char *const ptx_opcodes[] = {
    "abs", "activemask", "add", "addc", "alloca", "and", "applypriority", "atom", "bar",
    "barrier", "bfe", "bfi", "bfind", "bmsk", "bra", "brev", "brkpt", "brx", "call",
    "clusterlaunchcontrol", "clz", "cnot", "copysign", "cos", "cp", "createpolicy", "cvt",
    "cvta", "discard", "div", "dp2a", "dp4a", "elect", "ex2", "exit", "fence", "fma",
    "fns", "getctarank", "griddepcontrol", "isspacep", "istypeof", "ld", "ldmatrix", "ldu",
    "lg2", "lop3", "mad", "mad24", "madc", "mapa", "match", "max", "mbarrier", "membar",
    "min", "mma", "mov", "movmatrix", "mul", "mul24", "multimem", "nanosleep", "neg", "not",
    "or", "pmevent", "popc", "prefetch", "prefetchu", "prmt", "rcp", "red", "redux", "rem",
    "ret", "rsqrt", "sad", "selp", "set", "setmaxnreg", "setp", "shf", "shfl", "shl", "shr",
    "sin", "slct", "sqrt", "st", "stackrestore", "stacksave", "stmatrix", "sub", "subc",
    "suld", "suq", "sured", "sust", "szext", "tanh", "tcgen05", "tensormap", "testp", "tex",
    "tld4", "trap", "txq", "vabsdiff", "vabsdiff2", "vabsdiff4", "vadd", "vadd2", "vadd4",
    "vavrg2", "vavrg4", "vmad", "vmax", "vmax2", "vmax4", "vmin", "vmin2", "vmin4", "vote",
    "vset", "vset2", "vset4", "vshl", "vshr", "vsub", "vsub2", "vsub4", "wgmma", "wmma",
    "xor",
};

static int is_known_opcode(const char *p, size_t len)
{
    size_t base = 0;
    while (base < len && p[base] != '.')
        base++;
    for (size_t i = 0; i < sizeof ptx_opcodes / sizeof ptx_opcodes[0]; i++)
        if (strlen(ptx_opcodes[i]) == base && memcmp(ptx_opcodes[i], p, base) == 0)
            return 1;
    return 0;
}

int kd_ptx_is_special_reg(const char *reg)
{
    static const char *const dotted[] = {"%tid", "%ntid", "%ctaid", "%nctaid",
                                         "%clusterid", "%nclusterid", "%cluster_ctaid",
                                         "%cluster_nctaid"};
    static const char *const named[] = {
        "%laneid", "%warpid", "%nwarpid", "%smid", "%nsmid", "%gridid", "%lanemask_eq",
        "%lanemask_le", "%lanemask_lt", "%lanemask_ge", "%lanemask_gt", "%clock",
        "%clock_hi", "%clock64", "%globaltimer", "%globaltimer_lo", "%globaltimer_hi",
        "%total_smem_size", "%aggr_smem_size", "%dynamic_smem_size", "%is_explicit_cluster",
        "%cluster_ctarank", "%cluster_nctarank", "%current_graph_exec"};
    static const char *const numbered[] = {"%pm", "%envreg", "%reserved_smem_offset_"};
    if (!reg)
        return 0;
    for (size_t i = 0; i < sizeof dotted / sizeof dotted[0]; i++) {
        size_t n = strlen(dotted[i]);
        if (strncmp(reg, dotted[i], n) == 0 && (reg[n] == '\0' || reg[n] == '.'))
            return 1;
    }
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (strcmp(reg, named[i]) == 0)
            return 1;
    for (size_t i = 0; i < sizeof numbered / sizeof numbered[0]; i++) {
        size_t n = strlen(numbered[i]);
        if (strncmp(reg, numbered[i], n) == 0 && reg[n] != '\0')
            return 1;
    }
    return 0;
}

/* ---- parser state -------------------------------------------------------------------- */

typedef struct parser {
    kd_ptx_module *m;
    tok_store toks;
    lexer lx;
    size_t i;   /* next token in toks */
    int lex_failed;
    int lazy;   /* check bodies but keep no instructions, labels or registers */
    int hold;   /* > 0 while a statement keeps token indexes or pointers: no reset */
    kd_ptx_module scratch; /* lazy: operands are built here (and checked), then dropped */
    kd_ptx_error *err;
    int failed;
    vec funcs;  /* kd_ptx_func */
    vec shared; /* module-scope kd_ptx_var */
} parser;

/* Function being built. */
typedef struct func_builder {
    kd_ptx_func f;
    vec params, rets, regs, shared, insns, labels;
    vec scopes; /* int: parent of each { } block */
    int cur_scope;
} func_builder;

/* Token k of the store (valid for k < p->toks.n). */
#define PT(p, k) TOKAT(&(p)->toks, (k))

/* The EOF token stands in when lexing failed, so callers need no check: the failure
 * is already in err and p->failed. */
static const tok eof_tok = {TK_EOF, 0, "", 0};

static const tok *peek(parser *p)
{
    while (p->i >= p->toks.n) {
        if (p->lex_failed)
            return &eof_tok;
        if (p->lx.at_eof) /* the last token is the EOF token */
            return p->toks.n ? PT(p, p->toks.n - 1) : &eof_tok;
        if (!p->hold) { /* every token consumed and none held: start the store over */
            p->toks.n = 0;
            p->i = 0;
        }
        if (lex_batch(&p->lx) != 0) {
            p->lex_failed = 1;
            p->failed = 1;
            return &eof_tok;
        }
    }
    return PT(p, p->i);
}
static const tok *peek_at(parser *p, size_t k)
{
    peek(p);
    return p->i + k < p->toks.n ? PT(p, p->i + k) : peek(p);
}
static const tok *next(parser *p)
{
    const tok *t = peek(p);
    if (t->kind != TK_EOF)
        p->i++;
    return t;
}

/* At a statement boundary: when every token lexed so far is consumed, the store is
 * emptied, so it never holds more than the statements being parsed. */
static void statement_begin(parser *p)
{

    if (p->i == p->toks.n && !p->lx.at_eof) {
        p->toks.n = 0;
        p->i = 0;
    }
}

static int tok_is(const tok *t, tk_kind kind, const char *s)
{
    size_t n = strlen(s);
    return t->kind == kind && t->len == n && memcmp(t->p, s, n) == 0;
}
static int is_punct(const tok *t, char c) { return t->kind == TK_PUNCT && t->p[0] == c; }
static int is_word(const tok *t, const char *w) { return tok_is(t, TK_WORD, w); }
static int is_directive(const tok *t) { return t->kind == TK_WORD && t->p[0] == '.'; }
/* A name: a word that is not a directive (may be a register, starting with '%'). */
static int is_name(const tok *t) { return t->kind == TK_WORD && t->p[0] != '.'; }

/* Printable description of a token for messages. */
static void describe(const tok *t, char *buf, size_t cap)
{
    if (t->kind == TK_EOF) {
        snprintf(buf, cap, "end of file");
        return;
    }
    size_t n = t->len < 40 ? t->len : 40;
    snprintf(buf, cap, "'%.*s%s'", (int)n, t->p, t->len > 40 ? "..." : "");
}

static int fail(parser *p, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int fail(parser *p, int line, const char *fmt, ...)
{
    if (!p->failed && p->err) {
        p->err->line = line;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
        va_end(ap);
    }
    p->failed = 1;
    return -1;
}

static int fail_nomem(parser *p) { return fail(p, peek(p)->line, "out of memory"); }

static int fail_expected(parser *p, const char *what)
{
    char d[64];
    describe(peek(p), d, sizeof d);
    return fail(p, peek(p)->line, "expected %s, found %s", what, d);
}

static const char *intern(parser *p, const tok *t)
{
    return arena_strndup(p->m, t->p, t->len);
}

static int expect_punct(parser *p, char c)
{
    if (!is_punct(peek(p), c)) {
        char what[8];
        snprintf(what, sizeof what, "'%c'", c);
        return fail_expected(p, what);
    }
    next(p);
    return 0;
}

/* Parses an unsigned integer token: decimal, 0x hex, 0b binary, leading-0 octal, with an
 * optional U suffix. Returns 0, or -1 when it is not one or overflows. */
static int tok_uint(const tok *t, uint64_t *out)
{
    if (t->kind != TK_NUM)
        return -1;
    const char *s = t->p;
    size_t n = t->len, i = 0;
    unsigned base = 10;
    if (n > 0 && (s[n - 1] == 'U' || s[n - 1] == 'u'))
        n--;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    } else if (n > 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
        base = 2;
        i = 2;
    } else if (n > 1 && s[0] == '0') {
        base = 8;
        i = 1;
    }
    if (i >= n)
        return -1;
    uint64_t v = 0;
    for (; i < n; i++) {
        int c = (unsigned char)s[i], d;
        if (isdigit(c))
            d = c - '0';
        else if (isxdigit(c))
            d = 10 + tolower(c) - 'a';
        else
            return -1;
        if ((unsigned)d >= base || v > (UINT64_MAX - (uint64_t)d) / base)
            return -1;
        v = v * base + (uint64_t)d;
    }
    *out = v;
    return 0;
}

static int expect_uint(parser *p, const char *what, uint64_t *out)
{
    if (tok_uint(peek(p), out) != 0)
        return fail_expected(p, what);
    next(p);
    return 0;
}

/* Skips tokens up to and including the next ';' (for .pragma and similar). */
static int skip_to_semicolon(parser *p, const char *what)
{
    int line = peek(p)->line;
    while (!is_punct(peek(p), ';')) {
        if (peek(p)->kind == TK_EOF)
            return fail(p, line, "unexpected end of file in %s (missing ';')", what);
        next(p);
    }
    next(p);
    return 0;
}

/* ---- module directives ---------------------------------------------------------------- */

static int parse_version(parser *p)
{
    int line = next(p)->line;
    const tok *t = peek(p);
    unsigned maj = 0, min = 0;
    char buf[32];
    if (t->kind != TK_NUM || t->len >= sizeof buf)
        return fail_expected(p, "a version number after .version");
    memcpy(buf, t->p, t->len);
    buf[t->len] = '\0';
    char extra;
    if (sscanf(buf, "%3u.%3u%c", &maj, &min, &extra) != 2)
        return fail(p, line, "malformed .version '%s' (expected MAJOR.MINOR)", buf);
    if (p->m->version_major)
        return fail(p, line, "second .version directive");
    p->m->version_major = (int)maj;
    p->m->version_minor = (int)min;
    next(p);
    return 0;
}

static int parse_target(parser *p)
{
    next(p);
    for (;;) {
        if (!is_name(peek(p)))
            return fail_expected(p, "a target name after .target");
        if (!p->m->target && !(p->m->target = intern(p, peek(p))))
            return fail_nomem(p);
        next(p);
        if (!is_punct(peek(p), ','))
            return 0;
        next(p);
    }
}

static int parse_address_size(parser *p)
{
    int line = next(p)->line;
    uint64_t v;
    if (expect_uint(p, "32 or 64 after .address_size", &v) != 0)
        return -1;
    if (v != 32 && v != 64)
        return fail(p, line, ".address_size must be 32 or 64, not %llu", (unsigned long long)v);
    p->m->address_size = (int)v;
    return 0;
}

/* .file N "name" [, timestamp, size] */
static int parse_file_directive(parser *p)
{
    uint64_t v;
    next(p);
    if (expect_uint(p, "a file number after .file", &v) != 0)
        return -1;
    if (peek(p)->kind != TK_STR)
        return fail_expected(p, "a file name string after .file N");
    next(p);
    while (is_punct(peek(p), ',')) {
        next(p);
        if (expect_uint(p, "a number in .file", &v) != 0)
            return -1;
    }
    return 0;
}

/* .loc file line column [, function_name label[+off], inlined_at f l c] */
static int parse_loc(parser *p)
{
    int line = next(p)->line;
    uint64_t v;
    for (int k = 0; k < 3; k++)
        if (expect_uint(p, "a number in .loc", &v) != 0)
            return -1;
    while (is_punct(peek(p), ',')) {
        next(p);
        while (peek(p)->line == line && peek(p)->kind != TK_EOF && !is_punct(peek(p), ',') &&
               !is_punct(peek(p), ';') && !is_punct(peek(p), '{') && !is_punct(peek(p), '}'))
            next(p);
    }
    return 0;
}

/* .section name { anything with balanced braces } (DWARF data). */
static int parse_section(parser *p)
{
    int line = next(p)->line;
    if (!is_directive(peek(p)) && !is_name(peek(p)))
        return fail_expected(p, "a section name");
    next(p);
    if (expect_punct(p, '{') != 0)
        return -1;
    long depth = 1;
    while (depth > 0) {
        const tok *t = next(p);
        if (t->kind == TK_EOF)
            return fail(p, line, "unexpected end of file in .section (missing '}')");
        depth += is_punct(t, '{') - is_punct(t, '}');
    }
    return 0;
}

/* ---- variable declarations ------------------------------------------------------------ */

typedef struct decl_attrs {
    const char *type;
    uint64_t align;
    int vec;
} decl_attrs;

static int is_state_space(const tok *t)
{
    static const char *const spaces[] = {".global", ".const", ".shared", ".local", ".param",
                                         ".tex", ".reg"};
    for (size_t i = 0; i < sizeof spaces / sizeof spaces[0]; i++)
        if (is_word(t, spaces[i]))
            return 1;
    return 0;
}

/* Skips a parenthesized group, e.g. the argument of .attribute(...). */
static int skip_parens(parser *p)
{
    int line = peek(p)->line;
    if (expect_punct(p, '(') != 0)
        return -1;
    while (!is_punct(peek(p), ')')) {
        if (peek(p)->kind == TK_EOF || is_punct(peek(p), ';'))
            return fail(p, line, "missing ')'");
        next(p);
    }
    next(p);
    return 0;
}

/* Reads .align N, .vN, a type and qualifiers (.ptr, state spaces) before a name. */
static int parse_decl_attrs(parser *p, decl_attrs *a)
{
    a->type = NULL;
    a->align = 0;
    a->vec = 1;
    while (is_directive(peek(p))) {
        const tok *t = peek(p);
        int line = t->line;
        if (is_word(t, ".align")) {
            next(p);
            if (expect_uint(p, "a number after .align", &a->align) != 0)
                return -1;
            if (a->align == 0 || a->align > MAX_ALIGN || (a->align & (a->align - 1)))
                return fail(p, line, ".align must be a power of two up to %llu",
                            (unsigned long long)MAX_ALIGN);
        } else if (is_word(t, ".v2") || is_word(t, ".v4") || is_word(t, ".v8")) {
            a->vec = t->p[2] - '0';
            next(p);
        } else if (is_word(t, ".attribute")) {
            next(p);
            if (skip_parens(p) != 0)
                return -1;
        } else if (is_word(t, ".ptr") || is_state_space(t)) {
            next(p);
        } else {
            char *ty = arena_strndup(p->m, t->p, t->len);
            if (!ty)
                return fail_nomem(p);
            if (!kd_ptx_type_bytes(ty)) {
                char d[64];
                describe(t, d, sizeof d);
                return fail(p, line, "unknown type or attribute %s in a declaration", d);
            }
            if (a->type)
                return fail(p, line, "two types in one declaration");
            a->type = ty;
            next(p);
        }
    }
    if (!a->type)
        return fail_expected(p, "a type in the declaration");
    return 0;
}

/* [N][M]... after a name; unsized [] (first dimension only) marks a dynamic array. */
static int parse_dims(parser *p, uint64_t *count, int *unsized)
{
    *count = 1;
    *unsized = 0;
    int first = 1;
    while (is_punct(peek(p), '[')) {
        int line = next(p)->line;
        if (is_punct(peek(p), ']') && first) {
            *unsized = 1;
        } else {
            uint64_t d;
            if (expect_uint(p, "an array size", &d) != 0)
                return -1;
            if (d != 0 && *count > MAX_VAR_BYTES / d)
                return fail(p, line, "array too large");
            *count *= d;
        }
        if (expect_punct(p, ']') != 0)
            return -1;
        first = 0;
    }
    return 0;
}

/* Skips "= initializer" up to the ',' or ';' that ends it. */
static int skip_initializer(parser *p)
{
    int line = next(p)->line;
    long depth = 0;
    for (;;) {
        const tok *t = peek(p);
        if (t->kind == TK_EOF)
            return fail(p, line, "unexpected end of file in an initializer");
        if (depth == 0 && (is_punct(t, ',') || is_punct(t, ';')))
            return 0;
        if (is_punct(t, ';'))
            return fail(p, t->line, "missing '}' in an initializer");
        depth += is_punct(t, '{') - is_punct(t, '}');
        if (depth < 0)
            return fail(p, t->line, "unbalanced '}' in an initializer");
        next(p);
    }
}

static int add_var(parser *p, vec *dst, const tok *name, const decl_attrs *a, uint64_t count,
                   int unsized, int is_extern)
{
    kd_ptx_var *v = vec_push(dst);
    if (!v || !(v->name = intern(p, name)))
        return fail_nomem(p);
    uint64_t elem = (uint64_t)kd_ptx_type_bytes(a->type) * (uint64_t)a->vec;
    if (!unsized && count > MAX_VAR_BYTES / elem)
        return fail(p, name->line, "variable %s is too large", v->name);
    v->type = a->type;
    v->elem_bytes = elem;
    v->align = a->align ? a->align : elem;
    v->count = unsized ? 0 : count;
    v->bytes = unsized ? 0 : elem * count;
    v->is_extern = is_extern;
    v->is_dynamic = unsized;
    v->line = name->line;
    return 0;
}

/* A state-space declaration: .shared .align 4 .b8 name[128]; Kept when it is .shared
 * (into shared_out); other spaces are checked for form and dropped. */
static int parse_var_decl_held(parser *p, vec *shared_out, int is_extern);

/* An initializer may span batches while the name's token is still needed. */
static int parse_var_decl(parser *p, vec *shared_out, int is_extern)
{
    p->hold++;
    int rc = parse_var_decl_held(p, shared_out, is_extern);
    p->hold--;
    return rc;
}

static int parse_var_decl_held(parser *p, vec *shared_out, int is_extern)
{
    int is_shared = is_word(peek(p), ".shared");
    decl_attrs a;
    if (parse_decl_attrs(p, &a) != 0)
        return -1;
    for (;;) {
        const tok *name = peek(p);
        if (!is_name(name))
            return fail_expected(p, "a variable name");
        next(p);
        uint64_t count;
        int unsized;
        if (parse_dims(p, &count, &unsized) != 0)
            return -1;
        if (is_punct(peek(p), '=') && skip_initializer(p) != 0)
            return -1;
        if (is_shared && add_var(p, shared_out, name, &a, count, unsized, is_extern) != 0)
            return -1;
        if (is_punct(peek(p), ';')) {
            next(p);
            return 0;
        }
        if (expect_punct(p, ',') != 0)
            return -1;
    }
}

/* ---- functions ------------------------------------------------------------------------ */

static void fb_init(func_builder *b)
{
    memset(&b->f, 0, sizeof b->f);
    vec_init(&b->params, sizeof(kd_ptx_param));
    vec_init(&b->rets, sizeof(kd_ptx_param));
    vec_init(&b->regs, sizeof(kd_ptx_reg_decl));
    vec_init(&b->shared, sizeof(kd_ptx_var));
    vec_init(&b->insns, sizeof(kd_ptx_insn));
    vec_init(&b->labels, sizeof(kd_ptx_label));
    vec_init(&b->scopes, sizeof(int));
    b->cur_scope = -1;
}

static void fb_free(func_builder *b)
{
    vec_free(&b->params);
    vec_free(&b->rets);
    vec_free(&b->regs);
    vec_free(&b->shared);
    vec_free(&b->insns);
    vec_free(&b->labels);
    vec_free(&b->scopes);
}

/* One parameter: .param [.align N] [.ptr ...] .type name[N] (or .reg .type name). */
static int parse_param(parser *p, vec *dst)
{
    if (!is_word(peek(p), ".param") && !is_word(peek(p), ".reg"))
        return fail_expected(p, "'.param' or '.reg' in a parameter list");
    int is_reg = is_word(peek(p), ".reg");
    decl_attrs a;
    if (parse_decl_attrs(p, &a) != 0)
        return -1;
    const tok *name = peek(p);
    if (!is_name(name))
        return fail_expected(p, "a parameter name");
    next(p);
    uint64_t count;
    int unsized;
    if (parse_dims(p, &count, &unsized) != 0)
        return -1;
    kd_ptx_param *prm = vec_push(dst);
    if (!prm || !(prm->name = intern(p, name)))
        return fail_nomem(p);
    prm->type = a.type;
    prm->bytes = (uint64_t)kd_ptx_type_bytes(a.type) * (uint64_t)a.vec * (unsized ? 0 : count);
    prm->line = name->line;
    prm->is_reg = is_reg;
    return 0;
}

static int parse_param_list(parser *p, vec *dst)
{
    if (expect_punct(p, '(') != 0)
        return -1;
    if (is_punct(peek(p), ')')) {
        next(p);
        return 0;
    }
    for (;;) {
        if (parse_param(p, dst) != 0)
            return -1;
        if (is_punct(peek(p), ')')) {
            next(p);
            return 0;
        }
        if (expect_punct(p, ',') != 0)
            return -1;
    }
}

/* .maxntid 256, 1, 1 and the other performance directives between header and body. */
static int is_perf_directive(const tok *t)
{
    static const char *const dirs[] = {".maxntid", ".reqntid", ".minnctapersm", ".maxnctapersm",
                                       ".maxnreg", ".maxclusterrank", ".reqnctapercluster",
                                       ".explicitcluster", ".noreturn", ".blocksareclusters",
                                       ".abi_preserve", ".abi_preserve_control"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (is_word(t, dirs[i]))
            return 1;
    return 0;
}

static int parse_perf_directive(parser *p)
{
    next(p);
    uint64_t v;
    if (peek(p)->kind != TK_NUM)
        return 0;
    for (;;) {
        if (expect_uint(p, "a number", &v) != 0)
            return -1;
        if (!is_punct(peek(p), ','))
            return 0;
        next(p);
    }
}

/* .reg [.vN] .type %r<56>, %x; */
static int parse_reg_decl(parser *p, func_builder *b)
{
    decl_attrs a;
    if (parse_decl_attrs(p, &a) != 0)
        return -1;
    int bits = strcmp(a.type, ".pred") == 0 ? 1 : 8 * kd_ptx_type_bytes(a.type);
    for (;;) {
        const tok *name = peek(p);
        if (!is_name(name))
            return fail_expected(p, "a register name");
        next(p);
        int count = -1;
        if (is_punct(peek(p), '<')) {
            int line = next(p)->line;
            uint64_t n;
            if (expect_uint(p, "a register count", &n) != 0)
                return -1;
            if (n > MAX_REG_COUNT)
                return fail(p, line, "register count %llu out of range",
                            (unsigned long long)n);
            if (expect_punct(p, '>') != 0)
                return -1;
            count = (int)n;
        }
        if (p->lazy) {
            if (is_punct(peek(p), ';')) {
                next(p);
                return 0;
            }
            if (expect_punct(p, ',') != 0)
                return -1;
            continue;
        }
        kd_ptx_reg_decl *r = vec_push(&b->regs);
        if (!r || !(r->name = intern(p, name)))
            return fail_nomem(p);
        r->count = count;
        r->type = a.type;
        r->bits = bits;
        r->vec = a.vec;
        r->line = name->line;
        r->scope = b->cur_scope < 0 ? 0 : b->cur_scope;
        if (is_punct(peek(p), ';')) {
            next(p);
            return 0;
        }
        if (expect_punct(p, ',') != 0)
            return -1;
    }
}

/* ---- operands -------------------------------------------------------------------------- */

/* Joins tokens [a, b) into one string, a space only between two adjacent words. */
static const char *join_tokens(parser *p, size_t a, size_t b)
{
    size_t n = 0;
    for (size_t k = a; k < b; k++)
        n += PT(p, k)->len + 1;
    char *s = arena_alloc(p->m, n + 1);
    if (!s)
        return NULL;
    size_t o = 0;
    for (size_t k = a; k < b; k++) {
        const tok *t = PT(p, k);
        if (k > a && t->kind != TK_PUNCT && PT(p, k - 1)->kind != TK_PUNCT)
            s[o++] = ' ';
        memcpy(s + o, t->p, t->len);
        o += t->len;
    }
    s[o] = '\0';
    return s;
}

/* Sum of "+N", "-N", "+-N" terms in tokens [a, b). Returns 0, or -1 if they are not. */
static int const_offset(parser *p, size_t a, size_t b, int64_t *off)
{
    *off = 0;
    size_t k = a;
    while (k < b) {
        int neg = 0, signs = 0;
        while (k < b && (is_punct(PT(p, k), '+') || is_punct(PT(p, k), '-'))) {
            neg ^= is_punct(PT(p, k), '-');
            signs++;
            k++;
        }
        uint64_t v;
        if (!signs || k >= b || tok_uint(PT(p, k), &v) != 0 || v > ((uint64_t)1 << 62))
            return -1;
        *off += neg ? -(int64_t)v : (int64_t)v;
        if (*off > ((int64_t)1 << 62) || *off < -((int64_t)1 << 62))
            return -1;
        k++;
    }
    return 0;
}

/* Items of a {..} or (..) group in tokens [a, b): the first name of each. */
static int group_items(parser *p, kd_ptx_operand *o, size_t a, size_t b)
{
    int n = 0;
    for (size_t k = a; k < b; k++)
        n += is_punct(PT(p, k), ',');
    n += (b > a);
    o->n_items = n;
    if (!n)
        return 0;
    o->items = arena_alloc(p->m, (size_t)n * sizeof *o->items);
    if (!o->items)
        return fail_nomem(p);
    int it = 0;
    o->items[0] = NULL;
    for (size_t k = a; k < b; k++) {
        if (is_punct(PT(p, k), ',')) {
            o->items[++it] = NULL;
        } else if (!o->items[it] && is_name(PT(p, k))) {
            if (!(o->items[it] = intern(p, PT(p, k))))
                return fail_nomem(p);
        }
    }
    return 0;
}

static int operand_addr(parser *p, kd_ptx_operand *o, size_t a, size_t b)
{
    o->kind = KD_PTX_OPND_ADDR;
    size_t in = a + 1, end = b - 1; /* inside the brackets */
    if (in >= end)
        return fail(p, PT(p, a)->line, "empty address []");
    const tok *first = PT(p, in);
    uint64_t v;
    if (is_name(first)) {
        if (!(o->base = intern(p, first)))
            return fail_nomem(p);
        if (const_offset(p, in + 1, end, &o->offset) != 0)
            o->offset = 0; /* an address of another form, e.g. [tex, {..}] */
        return 0;
    }
    if (tok_uint(first, &v) == 0 && v <= ((uint64_t)1 << 62)) {
        o->offset = (int64_t)v;
        return 0;
    }
    return fail(p, first->line, "malformed address %s", o->text);
}

static void operand_first_name(parser *p, kd_ptx_operand *o, size_t a, size_t b)
{
    for (size_t k = a; k < b && !o->base; k++)
        if (is_name(PT(p, k)))
            o->base = intern(p, PT(p, k));
}

static int build_operand(parser *p, kd_ptx_operand *o, size_t a, size_t b)
{
    if (a >= b)
        return fail(p, PT(p, a)->line, "empty operand");
    if (!(o->text = join_tokens(p, a, b)))
        return fail_nomem(p);
    const tok *t = PT(p, a);
    uint64_t v;
    if (is_punct(t, '['))
        return is_punct(PT(p, b - 1), ']') ? operand_addr(p, o, a, b)
                                           : fail(p, t->line, "malformed address %s", o->text);
    if (is_punct(t, '{') || is_punct(t, '(')) {
        o->kind = is_punct(t, '{') ? KD_PTX_OPND_VEC : KD_PTX_OPND_LIST;
        return group_items(p, o, a + 1, b - 1);
    }
    if (is_punct(t, '!') && b - a == 2 && is_name(PT(p, a + 1))) {
        o->kind = KD_PTX_OPND_REG;
        o->negated = 1;
        o->base = intern(p, PT(p, a + 1));
        return o->base ? 0 : fail_nomem(p);
    }
    if (t->kind == TK_WORD && t->p[0] == '%' && (b - a == 1 || is_punct(PT(p, a + 1), '|'))) {
        o->kind = KD_PTX_OPND_REG; /* %r1 or the pair %r1|%p2 of setp */
        o->base = intern(p, t);
        return o->base ? 0 : fail_nomem(p);
    }
    if (is_name(t) && const_offset(p, a + 1, b, &o->offset) == 0) {
        o->kind = KD_PTX_OPND_SYM;
        o->base = intern(p, t);
        return o->base ? 0 : fail_nomem(p);
    }
    if (t->kind == TK_NUM || (is_punct(t, '-') && b - a == 2 && PT(p, a + 1)->kind == TK_NUM)) {
        o->kind = KD_PTX_OPND_IMM;
        const tok *num = t->kind == TK_NUM ? t : PT(p, a + 1);
        if (b - a <= 2 && tok_uint(num, &v) == 0 && v <= ((uint64_t)1 << 62))
            o->offset = t->kind == TK_NUM ? (int64_t)v : -(int64_t)v;
        if (b - a == 1 || t->kind != TK_NUM)
            return 0;
    }
    o->kind = KD_PTX_OPND_EXPR;
    operand_first_name(p, o, a, b);
    return 0;
}

/* ---- instructions and bodies ----------------------------------------------------------- */

/* Finds the operands of the instruction starting at the current token, up to its ';',
 * honouring nesting of (), [] and {}. */
static int parse_operands_held(parser *p, vec *ops, int line);

/* The operands' token indexes must survive a new batch: the store is held. */
static int parse_operands(parser *p, vec *ops, int line)
{
    p->hold++;
    int rc = parse_operands_held(p, ops, line);
    p->hold--;
    return rc;
}

static int parse_operands_held(parser *p, vec *ops, int line)
{
    char stack[MAX_NESTING];
    int depth = 0;
    size_t start = p->i;
    if (is_punct(peek(p), ';')) {
        next(p);
        return 0;
    }
    for (;;) {
        const tok *t = peek(p);
        if (t->kind == TK_EOF)
            return fail(p, line, "unexpected end of file in an instruction (missing ';')");
        if (t->kind == TK_PUNCT && strchr("([{", t->p[0])) {
            if (depth == MAX_NESTING)
                return fail(p, t->line, "operand nesting deeper than %d", MAX_NESTING);
            stack[depth++] = t->p[0] == '(' ? ')' : t->p[0] == '[' ? ']' : '}';
        } else if (t->kind == TK_PUNCT && strchr(")]}", t->p[0])) {
            if (depth == 0 || stack[depth - 1] != t->p[0])
                return fail(p, t->line, "unbalanced '%c' in an instruction", t->p[0]);
            depth--;
        } else if (is_punct(t, ';') || (is_punct(t, ',') && depth == 0)) {
            if (depth)
                return fail(p, t->line, "missing '%c' before ';'", stack[depth - 1]);
            if (p->lazy) {
                /* built (so refused exactly as in a full parse) in a scratch arena */
                kd_ptx_operand o;
                memset(&o, 0, sizeof o);
                kd_ptx_module *keep = p->m;
                p->m = &p->scratch;
                int rc = build_operand(p, &o, start, p->i);
                p->m = keep;
                scratch_reset(&p->scratch);
                if (rc != 0)
                    return -1;
            } else {
                kd_ptx_operand *o = vec_push(ops);
                if (!o)
                    return fail_nomem(p);
                if (build_operand(p, o, start, p->i) != 0)
                    return -1;
            }
            next(p);
            if (is_punct(t, ';'))
                return 0;
            start = p->i;
            continue;
        }
        next(p);
    }
}

static int parse_insn(parser *p, func_builder *b)
{
    kd_ptx_insn in;
    memset(&in, 0, sizeof in);
    in.line = peek(p)->line;
    in.scope = b->cur_scope < 0 ? 0 : b->cur_scope;
    if (is_punct(peek(p), '@')) {
        next(p);
        if (is_punct(peek(p), '!')) {
            in.guard_negated = 1;
            next(p);
        }
        /* a register name, with or without '%' (".reg .pred p<3>; @p1 bra ...") */
        const char c0 = peek(p)->kind == TK_WORD ? peek(p)->p[0] : '\0';
        if (c0 != '%' && c0 != '_' && c0 != '$' && !isalpha((unsigned char)c0))
            return fail_expected(p, "a predicate register after '@'");
        const tok *g = next(p);
        if (!p->lazy && !(in.guard = intern(p, g)))
            return fail_nomem(p);
    }
    const tok *op = peek(p);
    if (op->kind != TK_WORD || !isalpha((unsigned char)op->p[0]))
        return fail_expected(p, "an instruction");
    if (!is_known_opcode(op->p, op->len)) {
        char d[64];
        describe(op, d, sizeof d);
        return fail(p, op->line, "unknown instruction %s", d);
    }
    if (!p->lazy && !(in.opcode = intern(p, op)))
        return fail_nomem(p);
    next(p);
    vec ops;
    vec_init(&ops, sizeof(kd_ptx_operand));
    if (parse_operands(p, &ops, in.line) != 0) {
        vec_free(&ops);
        return -1;
    }
    if (vec_finish(p->m, &ops, (void **)&in.ops, &in.n_ops) != 0)
        return fail_nomem(p);
    if (p->lazy)
        return 0;
    kd_ptx_insn *slot = vec_push(&b->insns);
    if (!slot)
        return fail_nomem(p);
    *slot = in;
    return 0;
}

static int parse_label(parser *p, func_builder *b)
{
    const tok *name = next(p);
    next(p); /* ':' */
    kd_ptx_label *l = p->lazy ? NULL : vec_push(&b->labels);
    if (!p->lazy && (!l || !(l->name = intern(p, name))))
        return fail_nomem(p);
    if (l) {
        l->line = name->line;
        l->insn_index = (int)b->insns.n;
    }
    /* label: .callprototype / .branchtargets / .calltargets ... ; */
    if (is_word(peek(p), ".callprototype") || is_word(peek(p), ".branchtargets") ||
        is_word(peek(p), ".calltargets"))
        return skip_to_semicolon(p, "a label directive");
    return 0;
}

/* One statement inside a function body. */
static int parse_statement(parser *p, func_builder *b)
{
    statement_begin(p);
    const tok *t = peek(p);
    if (is_punct(t, ';')) {
        next(p);
        return 0;
    }
    if (is_word(t, ".reg")) {
        return parse_reg_decl(p, b);
    }
    if (is_word(t, ".shared") || is_word(t, ".local") || is_word(t, ".param") ||
        is_word(t, ".const") || is_word(t, ".global")) {
        return parse_var_decl(p, &b->shared, 0);
    }
    if (is_word(t, ".loc"))
        return parse_loc(p);
    if (is_word(t, ".pragma"))
        return skip_to_semicolon(p, ".pragma");
    if (is_name(t) && is_punct(peek_at(p, 1), ':'))
        return parse_label(p, b);
    if (is_punct(t, '@') || (t->kind == TK_WORD && isalpha((unsigned char)t->p[0])))
        return parse_insn(p, b);
    char d[64];
    describe(t, d, sizeof d);
    return fail(p, t->line, "unexpected %s in the body of %s", d, b->f.name);
}

static int parse_body(parser *p, func_builder *b)
{
    int depth = 0;
    do {
        const tok *t = peek(p);
        if (t->kind == TK_EOF)
            return fail(p, t->line, "unexpected end of file in the body of %s (opened at line %d)",
                        b->f.name, b->f.line);
        if (is_punct(t, '{')) {
            if (++depth > MAX_NESTING)
                return fail(p, t->line, "blocks nested deeper than %d", MAX_NESTING);
            int *parent = vec_push(&b->scopes);
            if (!parent)
                return fail_nomem(p);
            *parent = b->cur_scope;
            b->cur_scope = (int)b->scopes.n - 1;
            next(p);
        } else if (is_punct(t, '}')) {
            depth--;
            b->cur_scope = ((int *)b->scopes.data)[b->cur_scope];
            b->f.end_line = t->line;
            next(p);
        } else if (parse_statement(p, b) != 0) {
            return -1;
        }
    } while (depth > 0);
    b->f.has_body = 1;
    return 0;
}

/* Function header after .entry / .func, through the body or the ';' of a prototype. */
static int parse_func_rest(parser *p, func_builder *b)
{
    if (!b->f.is_entry && is_punct(peek(p), '(') && parse_param_list(p, &b->rets) != 0)
        return -1;
    if (!is_name(peek(p)) || peek(p)->p[0] == '%')
        return fail_expected(p, "a function name");
    if (!(b->f.name = intern(p, next(p))))
        return fail_nomem(p);
    if (is_punct(peek(p), '(') && parse_param_list(p, &b->params) != 0)
        return -1;
    for (;;) {
        const tok *t = peek(p);
        if (is_punct(t, '{')) {
            b->f.body_offset = (size_t)(t->p - p->m->text);
            b->f.body_line = t->line;
            b->f.lazy = p->lazy;
            return parse_body(p, b);
        }
        if (is_punct(t, ';')) {
            next(p);
            return 0;
        }
        if (is_perf_directive(t)) {
            if (parse_perf_directive(p) != 0)
                return -1;
        } else if (is_word(t, ".pragma")) {
            if (skip_to_semicolon(p, ".pragma") != 0)
                return -1;
        } else {
            char d[64];
            describe(t, d, sizeof d);
            return fail(p, t->line, "unexpected %s in the header of function %s", d, b->f.name);
        }
    }
}

static int finish_func(parser *p, func_builder *b)
{
    kd_ptx_func *f = &b->f;
    if (vec_finish(p->m, &b->params, (void **)&f->params, &f->n_params) != 0 ||
        vec_finish(p->m, &b->rets, (void **)&f->rets, &f->n_rets) != 0 ||
        vec_finish(p->m, &b->regs, (void **)&f->regs, &f->n_regs) != 0 ||
        vec_finish(p->m, &b->shared, (void **)&f->shared, &f->n_shared) != 0 ||
        vec_finish(p->m, &b->insns, (void **)&f->insns, &f->n_insns) != 0 ||
        vec_finish(p->m, &b->labels, (void **)&f->labels, &f->n_labels) != 0 ||
        vec_finish(p->m, &b->scopes, (void **)&f->scope_parent, &f->n_scopes) != 0)
        return fail_nomem(p);
    kd_ptx_func *slot = vec_push(&p->funcs);
    if (!slot)
        return fail_nomem(p);
    *slot = *f;
    return 0;
}

static int parse_function(parser *p, int is_extern)
{
    func_builder b;
    fb_init(&b);
    b.f.is_entry = is_word(peek(p), ".entry");
    b.f.is_extern = is_extern;
    b.f.line = next(p)->line;
    b.f.name = "?";
    int rc = parse_func_rest(p, &b);
    if (rc == 0)
        rc = finish_func(p, &b);
    fb_free(&b);
    return rc;
}

/* ---- module ----------------------------------------------------------------------------- */

static int parse_top_statement(parser *p)
{
    int is_extern = 0;
    statement_begin(p);
    /* linkage qualifiers */
    while (is_word(peek(p), ".visible") || is_word(peek(p), ".extern") ||
           is_word(peek(p), ".weak") || is_word(peek(p), ".common")) {
        is_extern |= is_word(peek(p), ".extern");
        next(p);
    }
    const tok *t = peek(p);
    if (is_word(t, ".entry") || is_word(t, ".func"))
        return parse_function(p, is_extern);
    if (is_word(t, ".global") || is_word(t, ".const") || is_word(t, ".shared") ||
        is_word(t, ".local") || is_word(t, ".tex"))
        return parse_var_decl(p, &p->shared, is_extern);
    if (is_extern)
        return fail_expected(p, "a function or variable after the linkage qualifier");
    if (is_word(t, ".version"))
        return parse_version(p);
    if (is_word(t, ".target"))
        return parse_target(p);
    if (is_word(t, ".address_size"))
        return parse_address_size(p);
    if (is_word(t, ".file"))
        return parse_file_directive(p);
    if (is_word(t, ".loc"))
        return parse_loc(p);
    if (is_word(t, ".section"))
        return parse_section(p);
    if (is_word(t, ".pragma") || is_word(t, ".alias"))
        return skip_to_semicolon(p, "a directive");
    if (is_punct(t, ';')) {
        next(p);
        return 0;
    }
    char d[64];
    describe(t, d, sizeof d);
    return fail(p, t->line, "unexpected %s at the top level of the module", d);
}

static int parse_module(parser *p)
{
    if (!is_word(peek(p), ".version")) {
        char d[64];
        describe(peek(p), d, sizeof d);
        return fail(p, peek(p)->line, "not PTX: expected the .version directive first, found %s",
                    d);
    }
    while (peek(p)->kind != TK_EOF)
        if (parse_top_statement(p) != 0)
            return -1;
    if (vec_finish(p->m, &p->funcs, (void **)&p->m->funcs, &p->m->n_funcs) != 0 ||
        vec_finish(p->m, &p->shared, (void **)&p->m->shared, &p->m->n_shared) != 0)
        return fail_nomem(p);
    return 0;
}

static int index_lines(kd_ptx_module *m)
{
    int n = 1;
    for (size_t i = 0; i < m->text_len; i++)
        n += m->text[i] == '\n';
    m->line_start = malloc((size_t)n * sizeof *m->line_start);
    if (!m->line_start)
        return -1;
    int k = 0;
    m->line_start[k++] = 0;
    for (size_t i = 0; i < m->text_len; i++)
        if (m->text[i] == '\n')
            m->line_start[k++] = i + 1;
    m->n_lines = n;
    return 0;
}

/* A module around text, which it takes over (a malloc'ed buffer of len + 1 bytes). */
static kd_ptx_module *module_new(const char *name, char *text, size_t len)
{
    kd_ptx_module *m = calloc(1, sizeof *m);
    if (!m) {
        free(text);
        return NULL;
    }
    m->address_size = 64;
    m->text = text;
    m->text[len] = '\0';
    m->text_len = len;
    if (!(m->name = arena_strndup(m, name, strlen(name))) || index_lines(m) != 0) {
        kd_ptx_module_free(m);
        return NULL;
    }
    return m;
}

static int build_indexes(kd_ptx_module *m);

/* Parses text (malloc'ed, len + 1 bytes), which the module takes over in every case. */
static kd_status parse_owned(const char *name, char *text, size_t len, int lazy,
                             kd_ptx_module **out, kd_ptx_error *err)
{
    while (len > 0 && text[len - 1] == '\0') /* OpenCL program binaries end in NUL */
        len--;
    if (len == 0) {
        free(text);
        set_error(err, 0, "empty input: no PTX");
        return KD_ERR_FORMAT;
    }
    kd_ptx_module *m = module_new(name ? name : "<ptx>", text, len);
    if (!m) {
        set_error(err, 0, "out of memory");
        return KD_ERR_NOMEM;
    }
    parser p;
    memset(&p, 0, sizeof p);
    p.m = m;
    p.err = err;
    p.lazy = lazy;
    vec_init(&p.funcs, sizeof(kd_ptx_func));
    vec_init(&p.shared, sizeof(kd_ptx_var));
    if (check_no_nul(m->text, len, err) != 0) {
        kd_ptx_module_free(m);
        return KD_ERR_FORMAT;
    }
    p.lx.s = m->text;
    p.lx.n = len;
    p.lx.line = 1;
    p.lx.err = err;
    p.lx.toks = &p.toks;
    int rc = parse_module(&p);
    if (rc == 0 && p.lex_failed)
        rc = -1;
    tok_store_free(&p.toks);
    scratch_free(&p.scratch);
    vec_free(&p.funcs);
    vec_free(&p.shared);
    if (rc == 0 && build_indexes(m) != 0) {
        set_error(err, 0, "out of memory");
        rc = -1;
    }
    if (rc != 0) {
        int nomem = err && strcmp(err->msg, "out of memory") == 0;
        kd_ptx_module_free(m);
        return nomem ? KD_ERR_NOMEM : KD_ERR_FORMAT;
    }
    *out = m;
    return KD_OK;
}

static kd_status parse_copy(const char *name, const char *text, size_t len, int lazy,
                            kd_ptx_module **out, kd_ptx_error *err);

kd_status kd_ptx_parse(const char *name, const char *text, size_t len, kd_ptx_module **out,
                       kd_ptx_error *err)
{
    return parse_copy(name, text, len, 0, out, err);
}

kd_status kd_ptx_parse_lazy(const char *name, const char *text, size_t len, kd_ptx_module **out,
                            kd_ptx_error *err)
{
    return parse_copy(name, text, len, 1, out, err);
}

static kd_status parse_copy(const char *name, const char *text, size_t len, int lazy,
                            kd_ptx_module **out, kd_ptx_error *err)
{
    if (err) {
        err->line = 0;
        err->msg[0] = '\0';
    }
    if (!out || (!text && len)) {
        set_error(err, 0, "NULL argument");
        return KD_ERR_NULL;
    }
    *out = NULL;
    if (len > MAX_INPUT_BYTES) {
        set_error(err, 0, "input of %zu bytes is larger than the %zu-byte limit", len,
                  MAX_INPUT_BYTES);
        return KD_ERR_TOO_LARGE;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        set_error(err, 0, "out of memory");
        return KD_ERR_NOMEM;
    }
    if (len)
        memcpy(copy, text, len);
    return parse_owned(name, copy, len, lazy, out, err);
}

/* Reads exactly size bytes (a file that changes size while read is refused). */
static kd_status read_all(int fd, char *buf, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return KD_ERR_IO;
        got += (size_t)r;
    }
    char extra;
    return read(fd, &extra, 1) == 0 ? KD_OK : KD_ERR_IO;
}

/* A FIFO, a device (/dev/zero), a directory or a file over the input cap is refused from
 * fstat, before any byte is read: O_NONBLOCK keeps open() from waiting on a FIFO. */
static kd_status parse_file(const char *path, int lazy, kd_ptx_module **out, kd_ptx_error *err)
{
    if (err) {
        err->line = 0;
        err->msg[0] = '\0';
    }
    if (!path || !out) {
        set_error(err, 0, "NULL argument");
        return KD_ERR_NULL;
    }
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        set_error(err, 0, "cannot open %s: %s", path, strerror(errno));
        return KD_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        set_error(err, 0, "cannot read %s: %s", path,
                  S_ISDIR(sb.st_mode) ? "a directory, not a PTX file"
                                      : "not a regular file (FIFO, device or socket)");
        close(fd);
        return KD_ERR_IO;
    }
    if ((uint64_t)sb.st_size > MAX_INPUT_BYTES) {
        set_error(err, 0, "cannot read %s: file of %lld bytes is larger than the %zu-byte limit",
                  path, (long long)sb.st_size, MAX_INPUT_BYTES);
        close(fd);
        return KD_ERR_TOO_LARGE;
    }
    size_t size = (size_t)sb.st_size;
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        set_error(err, 0, "cannot read %s: out of memory", path);
        return KD_ERR_NOMEM;
    }
    kd_status st = read_all(fd, buf, size);
    close(fd);
    if (st != KD_OK) {
        free(buf);
        set_error(err, 0, "cannot read %s: read failed or the file changed size while read",
                  path);
        return st;
    }
    return parse_owned(path, buf, size, lazy, out, err);
}

kd_status kd_ptx_parse_file(const char *path, kd_ptx_module **out, kd_ptx_error *err)
{
    return parse_file(path, 0, out, err);
}

kd_status kd_ptx_parse_file_lazy(const char *path, kd_ptx_module **out, kd_ptx_error *err)
{
    return parse_file(path, 1, out, err);
}

/* A body parsed on demand: its own arena (through a module shell) and the function. */
struct kd_ptx_body {
    kd_ptx_module shell; /* only its arena is used */
    kd_ptx_func f;
};

void kd_ptx_body_free(kd_ptx_body *body)
{
    if (!body)
        return;
    kd_ptx_arena *a = body->shell.arena;
    while (a) {
        kd_ptx_arena *nx = a->next;
        free(a->data);
        free(a);
        a = nx;
    }
    free(body);
}

kd_status kd_ptx_func_load(const kd_ptx_module *m, const kd_ptx_func *f, const kd_ptx_func **out,
                           kd_ptx_body **body)
{
    if (!m || !f || !out || !body)
        return KD_ERR_NULL;
    *out = f;
    *body = NULL;
    if (!f->lazy || !f->has_body)
        return KD_OK;
    if (f->body_offset >= m->text_len)
        return KD_ERR_ARG;
    kd_ptx_body *b = calloc(1, sizeof *b);
    if (!b)
        return KD_ERR_NOMEM;
    b->shell.text = m->text;
    b->shell.text_len = m->text_len;
    kd_ptx_error err;
    parser p;
    memset(&p, 0, sizeof p);
    p.m = &b->shell;
    p.err = &err;
    p.lx.s = m->text;
    p.lx.n = m->text_len;
    p.lx.i = f->body_offset;
    p.lx.line = f->body_line;
    p.lx.err = &err;
    p.lx.toks = &p.toks;
    func_builder fb;
    fb_init(&fb);
    fb.f = *f;
    fb.f.lazy = 0;
    int rc = parse_body(&p, &fb);
    kd_ptx_func *g = &fb.f;
    if (rc == 0 &&
        (vec_finish(p.m, &fb.regs, (void **)&g->regs, &g->n_regs) != 0 ||
         vec_finish(p.m, &fb.shared, (void **)&g->shared, &g->n_shared) != 0 ||
         vec_finish(p.m, &fb.insns, (void **)&g->insns, &g->n_insns) != 0 ||
         vec_finish(p.m, &fb.labels, (void **)&g->labels, &g->n_labels) != 0 ||
         vec_finish(p.m, &fb.scopes, (void **)&g->scope_parent, &g->n_scopes) != 0))
        rc = -1;
    b->f = *g;
    fb_free(&fb);
    tok_store_free(&p.toks);
    if (rc != 0 || p.lex_failed) {
        int nomem = strcmp(err.msg, "out of memory") == 0;
        kd_ptx_body_free(b);
        return nomem ? KD_ERR_NOMEM : KD_ERR_FORMAT;
    }
    *out = &b->f;
    *body = b;
    return KD_OK;
}

void kd_ptx_module_free(kd_ptx_module *m)
{
    if (!m)
        return;
    kd_ptx_arena *a = m->arena;
    while (a) {
        kd_ptx_arena *nx = a->next;
        free(a->data);
        free(a);
        a = nx;
    }
    free(m->text);
    free(m->line_start);
    free(m);
}

/* ---- queries ------------------------------------------------------------------------------ */

static size_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29));
}

/* An open-addressing table of n names (get(i) is name i), at most half full; each slot
 * holds the index of the first name of its spelling, -1 when empty. */
static int *index_names(kd_ptx_module *m, int n, const char *(*get)(const kd_ptx_module *, int),
                        int *cap_out, int *next)
{
    int cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    int *slot = arena_alloc(m, (size_t)cap * sizeof *slot);
    if (!slot)
        return NULL;
    for (int i = 0; i < cap; i++)
        slot[i] = -1;
    int *last = next ? malloc((size_t)cap * sizeof *last) : NULL;
    if (next && !last)
        return NULL;
    for (int i = 0; i < n; i++) {
        const char *name = get(m, i);
        size_t h = name_hash(name) & (size_t)(cap - 1);
        while (slot[h] >= 0 && strcmp(get(m, slot[h]), name) != 0)
            h = (h + 1) & (size_t)(cap - 1);
        if (next)
            next[i] = -1;
        if (slot[h] < 0) {
            slot[h] = i;
        } else if (next) {
            next[last[h]] = i;
        }
        if (next)
            last[h] = i;
    }
    free(last);
    *cap_out = cap;
    return slot;
}

static const char *func_name_at(const kd_ptx_module *m, int i) { return m->funcs[i].name; }
static const char *shared_name_at(const kd_ptx_module *m, int i) { return m->shared[i].name; }

static int build_indexes(kd_ptx_module *m)
{
    m->func_next = arena_alloc(m, (size_t)(m->n_funcs + 1) * sizeof *m->func_next);
    if (!m->func_next)
        return -1;
    m->func_slot = index_names(m, m->n_funcs, func_name_at, &m->func_slot_cap, m->func_next);
    m->shared_slot = index_names(m, m->n_shared, shared_name_at, &m->shared_slot_cap, NULL);
    return m->func_slot && m->shared_slot ? 0 : -1;
}

static int lookup(const int *slot, int cap, const kd_ptx_module *m, const char *name,
                  const char *(*get)(const kd_ptx_module *, int))
{
    if (!slot || cap <= 0)
        return -1;
    size_t h = name_hash(name) & (size_t)(cap - 1);
    while (slot[h] >= 0 && strcmp(get(m, slot[h]), name) != 0)
        h = (h + 1) & (size_t)(cap - 1);
    return slot[h];
}

const kd_ptx_func *kd_ptx_first_func(const kd_ptx_module *m, const char *name)
{
    if (!m || !name)
        return NULL;
    int i = lookup(m->func_slot, m->func_slot_cap, m, name, func_name_at);
    return i >= 0 ? &m->funcs[i] : NULL;
}

const kd_ptx_func *kd_ptx_next_func(const kd_ptx_module *m, const kd_ptx_func *f)
{
    if (!m || !f || f < m->funcs || f >= m->funcs + m->n_funcs || !m->func_next)
        return NULL;
    int nx = m->func_next[f - m->funcs];
    return nx >= 0 ? &m->funcs[nx] : NULL;
}

const kd_ptx_func *kd_ptx_find_func(const kd_ptx_module *m, const char *name)
{
    const kd_ptx_func *decl = kd_ptx_first_func(m, name);
    for (const kd_ptx_func *f = decl; f; f = kd_ptx_next_func(m, f))
        if (f->has_body)
            return f;
    return decl;
}

const kd_ptx_var *kd_ptx_find_module_shared(const kd_ptx_module *m, const char *name)
{
    if (!m || !name)
        return NULL;
    int i = lookup(m->shared_slot, m->shared_slot_cap, m, name, shared_name_at);
    return i >= 0 ? &m->shared[i] : NULL;
}

const kd_ptx_var *kd_ptx_find_func_shared(const kd_ptx_func *f, const char *name)
{
    if (!f || !name)
        return NULL;
    for (int i = 0; i < f->n_shared; i++)
        if (strcmp(f->shared[i].name, name) == 0)
            return &f->shared[i];
    return NULL;
}

/* "%rd5" against the range "%rd<19>": the rest after the prefix is a number below 19,
 * written without leading zeros. */
static int in_range(const char *reg, const kd_ptx_reg_decl *d)
{
    size_t n = strlen(d->name);
    if (strncmp(reg, d->name, n) != 0)
        return 0;
    const char *s = reg + n;
    if (!*s || (s[0] == '0' && s[1]) || strlen(s) > 9)
        return 0;
    long v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return 0;
        v = v * 10 + (*s - '0');
    }
    return v < d->count;
}

static int covers(const kd_ptx_reg_decl *d, const char *reg)
{
    return d->count < 0 ? strcmp(reg, d->name) == 0 : in_range(reg, d);
}

const kd_ptx_reg_decl *kd_ptx_find_reg(const kd_ptx_func *f, const char *reg)
{
    if (!f || !reg)
        return NULL;
    for (int i = 0; i < f->n_regs; i++)
        if (covers(&f->regs[i], reg))
            return &f->regs[i];
    return NULL;
}

const kd_ptx_reg_decl *kd_ptx_find_reg_in_scope(const kd_ptx_func *f, const char *reg, int scope)
{
    if (!f || !reg)
        return NULL;
    /* innermost block first; a bad scope index falls back to the whole function */
    for (int s = scope, guard = 0; s >= 0 && s < f->n_scopes && guard <= f->n_scopes;
         s = f->scope_parent[s], guard++)
        for (int i = 0; i < f->n_regs; i++)
            if (f->regs[i].scope == s && covers(&f->regs[i], reg))
                return &f->regs[i];
    return f->n_scopes == 0 ? kd_ptx_find_reg(f, reg) : NULL;
}

int kd_ptx_line_text(const kd_ptx_module *m, int line, char *buf, size_t cap)
{
    if (!m || !buf || cap == 0 || line < 1 || line > m->n_lines)
        return -1;
    size_t s = m->line_start[line - 1];
    size_t e = line < m->n_lines ? m->line_start[line] : m->text_len;
    while (s < e && isspace((unsigned char)m->text[s]))
        s++;
    while (e > s && isspace((unsigned char)m->text[e - 1]))
        e--;
    size_t n = e - s < cap - 1 ? e - s : cap - 1;
    memcpy(buf, m->text + s, n);
    buf[n] = '\0';
    return 0;
}
