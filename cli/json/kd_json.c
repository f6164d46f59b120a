/* kd_json: one JSON writer (see kd_json.h for the escaping rules). */
#include "kd_json.h"

#include <math.h>
#include <string.h>

/* ---- strings ----------------------------------------------------------------------------- */

int kd_json_utf8_len(const unsigned char *p, size_t n)
{
    if (n == 0)
        return 0;
    int len = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0;
    if (len == 0 || p[0] > 0xf4 || (size_t)len > n || p[0] == 0xc0 || p[0] == 0xc1)
        return 0;
    for (int i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    uint32_t cp = kd_json_utf8_cp(p, len);
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

uint32_t kd_json_utf8_cp(const unsigned char *p, int len)
{
    uint32_t cp = p[0] & (0x7f >> len);
    for (int i = 1; i < len; i++)
        cp = cp << 6 | (p[i] & 0x3f);
    return cp;
}

/* Code points a terminal may act on rather than show (C1 controls such as the 8-bit CSI
 * U+009B, bidirectional overrides) and the line separators that end a JavaScript string. */
static int is_active_code_point(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

void kd_json_write_strn(FILE *f, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        int u = c >= 0x80 ? kd_json_utf8_len(p + i, len - i) : 0;
        if (u > 0 && is_active_code_point(kd_json_utf8_cp(p + i, u))) {
            fprintf(f, "\\u%04x", (unsigned)kd_json_utf8_cp(p + i, u));
            i += (size_t)u - 1;
        } else if (u > 0) {
            fwrite(p + i, 1, (size_t)u, f);
            i += (size_t)u - 1;
        } else if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
        } else if (c < 0x20 || c >= 0x7f) { /* controls, DEL, bytes not in valid UTF-8 */
            fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
}

void kd_json_write_str(FILE *f, const char *s)
{
    if (s)
        kd_json_write_strn(f, s, strlen(s));
    else
        fputs("null", f);
}

void kd_json_write_num(FILE *f, double x, const char *fmt)
{
    if (isfinite(x))
        fprintf(f, fmt ? fmt : "%.17g", x);
    else
        fputs("null", f);
}

/* ---- the writer -------------------------------------------------------------------------- */

void kd_json_init(kd_json *w, FILE *f)
{
    memset(w, 0, sizeof *w);
    w->f = f;
}

static int in_object(const kd_json *w) { return w->depth > 0 && w->is_obj[w->depth - 1]; }

static void flush_newline(kd_json *w)
{
    if (w->newline)
        fputc('\n', w->f);
    w->newline = 0;
}

/* Before a key, or a value in an array or at the top: the comma after the previous item. */
static void separate(kd_json *w)
{
    if (w->depth > 0 && w->items[w->depth - 1])
        fputc(',', w->f);
    flush_newline(w);
    if (w->depth > 0)
        w->items[w->depth - 1] = 1;
}

/* Before any value: in an object its key must have come first. */
static void before_value(kd_json *w)
{
    if (in_object(w)) {
        if (!w->have_key)
            w->misuse = 1;
        w->have_key = 0;
        return;
    }
    separate(w);
}

void kd_json_key(kd_json *w, const char *key)
{
    if (!in_object(w) || w->have_key)
        w->misuse = 1;
    separate(w);
    kd_json_write_str(w->f, key ? key : "");
    fputc(':', w->f);
    w->have_key = 1;
}

static void open_level(kd_json *w, int is_obj)
{
    before_value(w);
    fputc(is_obj ? '{' : '[', w->f);
    if (w->depth == KD_JSON_MAX_DEPTH) {
        w->misuse = 1;
        return;
    }
    w->is_obj[w->depth] = (unsigned char)is_obj;
    w->items[w->depth] = 0;
    w->depth++;
}

static void close_level(kd_json *w, int is_obj)
{
    if (w->depth == 0 || w->is_obj[w->depth - 1] != is_obj || w->have_key)
        w->misuse = 1;
    flush_newline(w);
    fputc(is_obj ? '}' : ']', w->f);
    if (w->depth > 0)
        w->depth--;
}

void kd_json_begin_object(kd_json *w) { open_level(w, 1); }
void kd_json_end_object(kd_json *w) { close_level(w, 1); }
void kd_json_begin_array(kd_json *w) { open_level(w, 0); }
void kd_json_end_array(kd_json *w) { close_level(w, 0); }

void kd_json_str(kd_json *w, const char *s)
{
    before_value(w);
    kd_json_write_str(w->f, s);
}

void kd_json_strn(kd_json *w, const char *s, size_t len)
{
    before_value(w);
    kd_json_write_strn(w->f, s, len);
}

void kd_json_num(kd_json *w, double x, const char *fmt)
{
    before_value(w);
    kd_json_write_num(w->f, x, fmt);
}

void kd_json_int(kd_json *w, long long v)
{
    before_value(w);
    fprintf(w->f, "%lld", v);
}

void kd_json_uint(kd_json *w, unsigned long long v)
{
    before_value(w);
    fprintf(w->f, "%llu", v);
}

void kd_json_bool(kd_json *w, int b)
{
    before_value(w);
    fputs(b ? "true" : "false", w->f);
}

void kd_json_null(kd_json *w)
{
    before_value(w);
    fputs("null", w->f);
}

void kd_json_raw(kd_json *w, const char *json, size_t len)
{
    before_value(w);
    fwrite(json, 1, len, w->f);
}

void kd_json_key_str(kd_json *w, const char *key, const char *s)
{
    kd_json_key(w, key);
    kd_json_str(w, s);
}

void kd_json_key_num(kd_json *w, const char *key, double x, const char *fmt)
{
    kd_json_key(w, key);
    kd_json_num(w, x, fmt);
}

void kd_json_key_int(kd_json *w, const char *key, long long v)
{
    kd_json_key(w, key);
    kd_json_int(w, v);
}

void kd_json_key_bool(kd_json *w, const char *key, int b)
{
    kd_json_key(w, key);
    kd_json_bool(w, b);
}

void kd_json_newline(kd_json *w) { w->newline = 1; }

int kd_json_finish(kd_json *w)
{
    w->newline = 0;
    fputc('\n', w->f);
    return w->depth == 0 && !w->have_key && !w->misuse ? 0 : -1;
}
