/* A small recursive-descent JSON reader (RFC 8259 values; depth limited). */
#include "fleet_json.h"
#include "kd_json.h"

#include <stdlib.h>
#include <string.h>

#define FJ_MAX_DEPTH 64

typedef struct reader {
    const char *s;
    size_t len, pos;
    char *why;
    size_t cap;
    int failed;
} reader;

static int fail(reader *r, const char *what)
{
    if (!r->failed)
        snprintf(r->why, r->cap, "JSON: %s at byte %zu", what, r->pos);
    r->failed = 1;
    return -1;
}

static void skip_ws(reader *r)
{
    while (r->pos < r->len && strchr(" \t\r\n", r->s[r->pos]) && r->s[r->pos])
        r->pos++;
}

static int literal(reader *r, const char *word)
{
    size_t n = strlen(word);
    if (r->len - r->pos < n || memcmp(r->s + r->pos, word, n) != 0)
        return fail(r, "unknown literal");
    r->pos += n;
    return 0;
}

static int hex4(reader *r, unsigned *out)
{
    *out = 0;
    if (r->len - r->pos < 4)
        return fail(r, "short \\u escape");
    for (int i = 0; i < 4; i++) {
        char c = r->s[r->pos++];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;
        if (d == 16)
            return fail(r, "bad \\u escape");
        *out = *out * 16 + d;
    }
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int escape(reader *r, char *o, size_t *w)
{
    char c = r->s[r->pos++];
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *p = c ? strchr(from, c) : NULL;
    if (p) {
        o[(*w)++] = to[p - from];
        return 0;
    }
    unsigned cp;
    if (c != 'u' || hex4(r, &cp))
        return fail(r, "bad escape");
    if (cp >= 0xd800 && cp < 0xdc00 && r->len - r->pos >= 6 && r->s[r->pos] == '\\' &&
        r->s[r->pos + 1] == 'u') {
        unsigned lo;
        r->pos += 2;
        if (hex4(r, &lo))
            return -1;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    *w += put_utf8(o + *w, cp);
    return 0;
}

/* The string at pos (after its opening quote); escapes decoded. */
static char *string(reader *r)
{
    size_t start = r->pos, end = start;
    while (end < r->len && r->s[end] != '"')
        end += r->s[end] == '\\' ? 2 : 1;
    if (end >= r->len) {
        fail(r, "unterminated string");
        return NULL;
    }
    char *o = malloc(end - start + 1); /* decoded text is never longer */
    size_t w = 0;
    if (!o) {
        fail(r, "out of memory");
        return NULL;
    }
    while (r->pos < end) {
        char c = r->s[r->pos++];
        if ((unsigned char)c < 0x20 || (c == '\\' && escape(r, o, &w))) {
            free(o);
            fail(r, "bad character in string");
            return NULL;
        }
        if (c != '\\')
            o[w++] = c;
    }
    o[w] = '\0';
    r->pos = end + 1;
    return o;
}

static int value(reader *r, fj *v, int depth);

static int push(reader *r, fj *v, char *key)
{
    if ((v->n & (v->n - 1)) == 0) { /* grow at 0, 1, 2, 4, 8, ... */
        int cap = v->n ? 2 * v->n : 1;
        fj *items = realloc(v->items, sizeof *items * (size_t)cap);
        if (items)
            v->items = items;
        char **keys = v->type == FJ_OBJ ? realloc(v->keys, sizeof *keys * (size_t)cap) : NULL;
        if (keys)
            v->keys = keys;
        if (!items || (v->type == FJ_OBJ && !keys)) {
            free(key);
            return fail(r, "out of memory");
        }
    }
    memset(&v->items[v->n], 0, sizeof *v->items);
    if (v->type == FJ_OBJ)
        v->keys[v->n] = key;
    v->n++;
    return 0;
}

static int container(reader *r, fj *v, int depth)
{
    char close = v->type == FJ_OBJ ? '}' : ']';
    skip_ws(r);
    if (r->pos < r->len && r->s[r->pos] == close) {
        r->pos++;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(r);
        if (v->type == FJ_OBJ) {
            if (r->pos >= r->len || r->s[r->pos++] != '"' || !(key = string(r)))
                return fail(r, "expected a key");
            skip_ws(r);
            if (r->pos >= r->len || r->s[r->pos++] != ':') {
                free(key);
                return fail(r, "expected ':'");
            }
        }
        if (push(r, v, key) || value(r, &v->items[v->n - 1], depth + 1))
            return -1;
        skip_ws(r);
        char c = r->pos < r->len ? r->s[r->pos++] : '\0';
        if (c == close)
            return 0;
        if (c != ',')
            return fail(r, "expected ',' or the end of a container");
    }
}

static int number(reader *r, fj *v)
{
    char buf[64];
    size_t n = 0;
    while (r->pos + n < r->len && n < sizeof buf - 1 && strchr("+-0123456789.eE", r->s[r->pos + n]) &&
           r->s[r->pos + n])
        n++;
    memcpy(buf, r->s + r->pos, n);
    buf[n] = '\0';
    char *end;
    v->type = FJ_NUM;
    v->num = strtod(buf, &end);
    if (n == 0 || end != buf + n)
        return fail(r, "bad number");
    r->pos += n;
    return 0;
}

static int value(reader *r, fj *v, int depth)
{
    if (depth > FJ_MAX_DEPTH)
        return fail(r, "nested too deeply");
    skip_ws(r);
    if (r->pos >= r->len)
        return fail(r, "unexpected end");
    char c = r->s[r->pos];
    switch (c) {
    case '{': case '[':
        r->pos++;
        v->type = c == '{' ? FJ_OBJ : FJ_ARR;
        return container(r, v, depth);
    case '"':
        r->pos++;
        v->type = FJ_STR;
        return (v->str = string(r)) ? 0 : -1;
    case 't': v->type = FJ_BOOL; v->boolean = 1; return literal(r, "true");
    case 'f': v->type = FJ_BOOL; return literal(r, "false");
    case 'n': v->type = FJ_NULL; return literal(r, "null");
    default: return number(r, v);
    }
}

static void free_inner(fj *v)
{
    for (int i = 0; i < v->n; i++) {
        free_inner(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

void fj_free(fj *v)
{
    if (v) {
        free_inner(v);
        free(v);
    }
}

fj *fj_parse(const char *text, size_t len, char *why, size_t cap)
{
    char scratch[8];
    reader r = {text, len, 0, why && cap ? why : scratch, why && cap ? cap : sizeof scratch, 0};
    fj *v = calloc(1, sizeof *v);
    if (!v || !text) {
        free(v);
        snprintf(r.why, r.cap, "JSON: %s", text ? "out of memory" : "no text");
        return NULL;
    }
    if (value(&r, v, 0) == 0) {
        skip_ws(&r);
        if (r.pos == r.len)
            return v;
        fail(&r, "text after the value");
    }
    fj_free(v);
    return NULL;
}

const fj *fj_get(const fj *obj, const char *key)
{
    if (!obj || obj->type != FJ_OBJ)
        return NULL;
    for (int i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return &obj->items[i];
    return NULL;
}

const fj *fj_at(const fj *arr, int i)
{
    return arr && arr->type == FJ_ARR && i >= 0 && i < arr->n ? &arr->items[i] : NULL;
}

int fj_len(const fj *arr) { return arr && arr->type == FJ_ARR ? arr->n : 0; }

const char *fj_str(const fj *v, const char *dflt)
{
    return v && v->type == FJ_STR ? v->str : dflt;
}

double fj_num(const fj *v, double dflt) { return v && v->type == FJ_NUM ? v->num : dflt; }

int fj_bool(const fj *v, int dflt) { return v && v->type == FJ_BOOL ? v->boolean : dflt; }

void fj_write(FILE *f, const fj *v)
{
    switch (v ? v->type : FJ_NULL) {
    case FJ_NULL: fputs("null", f); return;
    case FJ_BOOL: fputs(v->boolean ? "true" : "false", f); return;
    case FJ_NUM:
        kd_json_write_num(f, v->num, "%.10g");
        return;
    case FJ_STR: kd_json_write_str(f, v->str); return;
    case FJ_ARR: case FJ_OBJ:
        fputc(v->type == FJ_OBJ ? '{' : '[', f);
        for (int i = 0; i < v->n; i++) {
            if (i)
                fputc(',', f);
            if (v->type == FJ_OBJ) {
                kd_json_write_str(f, v->keys[i]);
                fputc(':', f);
            }
            fj_write(f, &v->items[i]);
        }
        fputc(v->type == FJ_OBJ ? '}' : ']', f);
        return;
    }
}
