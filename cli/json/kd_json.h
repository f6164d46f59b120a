/*
 * kd_json: the one JSON writer of the command, bench and ptx-check (the library's metrics
 * export writes only fixed keys and numbers and needs none). RFC 8259 output:
 *  - strings: '"' and '\' escaped with a backslash; every control byte (below 0x20, and
 *    DEL) as \u00XX; valid UTF-8 passes through, except the code points a terminal or a
 *    JavaScript parser may act on (C1 controls, bidirectional overrides, U+2028/U+2029),
 *    written as \uXXXX; a byte that is not part of valid UTF-8 is written as \u00XX (the
 *    byte read as Latin-1), so any input gives valid JSON and no byte is lost silently.
 *  - numbers: NaN and infinities (JSON has none) are written as null.
 * Two levels: the kd_json_write_* primitives write one value to a FILE, and the kd_json
 * writer adds the commas and keys of nested objects and arrays.
 */
#ifndef KD_JSON_H
#define KD_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- primitives -------------------------------------------------------------------------- */

/* len bytes of s as a JSON string literal (quotes included). */
void kd_json_write_strn(FILE *f, const char *s, size_t len);
/* A NUL-terminated string as a JSON string literal; NULL is written as null. */
void kd_json_write_str(FILE *f, const char *s);
/* x with the printf format fmt (one double conversion, e.g. "%.6e"; NULL: "%.17g"), or null
 * when x is NaN or infinite. */
void kd_json_write_num(FILE *f, double x, const char *fmt);

/* Length of the valid UTF-8 sequence at p (n bytes available; RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF), 0 if p does not start one. */
int kd_json_utf8_len(const unsigned char *p, size_t n);
/* The code point of a valid UTF-8 sequence of len bytes (from kd_json_utf8_len). */
uint32_t kd_json_utf8_cp(const unsigned char *p, int len);

/* ---- the writer: nesting, keys and commas ------------------------------------------------ */

#define KD_JSON_MAX_DEPTH 32

typedef struct kd_json {
    FILE *f;
    int depth;                              /* open objects and arrays */
    unsigned char is_obj[KD_JSON_MAX_DEPTH]; /* per level: an object (keys) or an array */
    unsigned char items[KD_JSON_MAX_DEPTH];  /* per level: 1 once an item was written */
    int have_key;   /* in an object: the key of the next value was written */
    int newline;    /* write a line break before the next item or closing bracket */
    int misuse;     /* a value without a key in an object, a key in an array, too deep, ... */
} kd_json;

void kd_json_init(kd_json *w, FILE *f);
void kd_json_begin_object(kd_json *w);
void kd_json_end_object(kd_json *w);
void kd_json_begin_array(kd_json *w);
void kd_json_end_array(kd_json *w);
/* The key of the next value (in an object only). */
void kd_json_key(kd_json *w, const char *key);
void kd_json_str(kd_json *w, const char *s); /* NULL: null */
void kd_json_strn(kd_json *w, const char *s, size_t len);
void kd_json_num(kd_json *w, double x, const char *fmt); /* as kd_json_write_num */
void kd_json_int(kd_json *w, long long v);
void kd_json_uint(kd_json *w, unsigned long long v); /* e.g. a 64-bit seed */
void kd_json_bool(kd_json *w, int b);
void kd_json_null(kd_json *w);
/* A value that is already JSON text (e.g. a subcommand's --json output), copied as is. */
void kd_json_raw(kd_json *w, const char *json, size_t len);
/* A key and its value in one call. */
void kd_json_key_str(kd_json *w, const char *key, const char *s);
void kd_json_key_num(kd_json *w, const char *key, double x, const char *fmt);
void kd_json_key_int(kd_json *w, const char *key, long long v);
void kd_json_key_bool(kd_json *w, const char *key, int b);
/* Layout only: a line break before the next item (or the closing bracket). */
void kd_json_newline(kd_json *w);
/* 0 when every object and array was closed and the writer was used as documented (then
 * the text is one JSON value), -1 otherwise. Writes a final line break. */
int kd_json_finish(kd_json *w);

#endif
