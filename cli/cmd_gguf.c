/*
 * `kdispatch gguf FILE [--json] [--full]`: lists a GGUF file's metadata and tensors.
 *
 * argv[0] is the subcommand name ("gguf"), the options follow. Exit status: 0 listed,
 * 1 the file was refused (the reader's message on stderr), 2 bad usage.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "kd_json.h"
#include "kdispatch.h"


enum {
    TEXT_ARRAY_SHOWN = 8,   /* elements of a top-level array shown in text */
    TEXT_NESTED_SHOWN = 4,  /* elements of an array inside an array */
    TEXT_STRING_SHOWN = 64, /* bytes of a string shown in text */
    JSON_ARRAY_SHOWN = 16,  /* elements of any array in JSON */
    NAME_COL_MAX = 44,      /* widest key / tensor-name column */
};

typedef struct list_opts {
    int json;
    int full; /* nothing shortened */
} list_opts;

static void usage(FILE *f)
{
    fputs("usage: kdispatch gguf FILE [--json] [--full]\n"
          "\n"
          "Lists the metadata (key, type, value) and the tensors (name, type, shape, elements,\n"
          "bytes, file offset) of a GGUF v2/v3 file, after validating all of it. Shapes are in\n"
          "ggml order: ne[0], the row length, first. Long arrays and strings are shortened.\n"
          "\n"
          "  --json   print one JSON object instead of tables\n"
          "  --full   do not shorten arrays or strings\n"
          "  -h, --help\n"
          "\n"
          "Exit status: 0 listed, 1 the file is unreadable or corrupt, 2 bad usage.\n",
          f);
}

/* ---- strings ------------------------------------------------------------------------- */

/* Code points a terminal may act on rather than show: C1 controls (U+0080..U+009F, e.g.
 * U+009B is an 8-bit CSI) and the bidirectional overrides that reorder what is shown. */
static int is_terminal_control(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

/* Writes n bytes of file text so that nothing in it reaches the terminal as a control:
 * ESC and every other control byte become \xNN (\n, \t named), bytes that are not valid
 * UTF-8 \xNN, terminal-active code points \u{NNNN}; with quoted, '"' and '\' are escaped
 * too. Returns the number of columns written (one per character shown). */
static int put_escaped(FILE *f, const unsigned char *p, uint64_t n, int quoted)
{
    int cols = 0;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char ch = p[i];
        int u = ch >= 0x80 ? kd_json_utf8_len(p + i, n - i) : 0;
        if (u > 0 && is_terminal_control(kd_json_utf8_cp(p + i, u))) {
            cols += fprintf(f, "\\u{%04x}", (unsigned)kd_json_utf8_cp(p + i, u));
            i += (uint64_t)u - 1;
        } else if (u > 0) {
            fwrite(p + i, 1, (size_t)u, f);
            i += (uint64_t)u - 1;
            cols++;
        } else if (ch == '\\' || (quoted && ch == '"')) {
            cols += fprintf(f, "\\%c", ch);
        } else if (ch == '\n') {
            cols += fprintf(f, "\\n");
        } else if (ch == '\t') {
            cols += fprintf(f, "\\t");
        } else if (ch < 0x20 || ch >= 0x7f) {
            cols += fprintf(f, "\\x%02x", ch);
        } else {
            fputc(ch, f);
            cols++;
        }
    }
    return cols;
}

/* A key or tensor name, escaped, left-aligned in width columns (at most 1000 bytes). */
static void print_name_text(FILE *f, const kd_gguf_str *s, int width)
{
    uint64_t n = s->len > 1000 ? 1000 : s->len;
    int cols = put_escaped(f, (const unsigned char *)s->data, n, 0);
    if (cols < width)
        fprintf(f, "%*s", width - cols, "");
}

/* A string as a C-like literal: escapes, \xNN for bytes that are not valid UTF-8. */
static void print_str_text(FILE *f, const kd_gguf_str *s, int full)
{
    uint64_t shown = full || s->len <= TEXT_STRING_SHOWN ? s->len : TEXT_STRING_SHOWN;
    fputc('"', f);
    put_escaped(f, (const unsigned char *)s->data, shown, 1);
    fputc('"', f);
    if (shown < s->len)
        fprintf(f, "...(%" PRIu64 " bytes)", s->len);
}

/* A JSON string (kd_json's escaping: bytes that are not valid UTF-8 become \u00XX). */
static void print_str_json(FILE *f, const char *data, uint64_t len)
{
    kd_json_write_strn(f, data, (size_t)len);
}

/* ---- values ---------------------------------------------------------------------------- */

static void print_number(FILE *f, const kd_gguf_value *v, int json)
{
    switch (v->type) {
    case KD_GGUF_INT8: case KD_GGUF_INT16: case KD_GGUF_INT32: case KD_GGUF_INT64:
        fprintf(f, "%" PRId64, v->v.i);
        break;
    case KD_GGUF_FLOAT32: case KD_GGUF_FLOAT64:
        if (json)
            kd_json_write_num(f, v->v.f, v->type == KD_GGUF_FLOAT32 ? "%.9g" : "%.17g");
        else
            fprintf(f, v->type == KD_GGUF_FLOAT32 ? "%.9g" : "%.17g", v->v.f);
        break;
    case KD_GGUF_BOOL:
        fputs(v->v.u ? "true" : "false", f);
        break;
    default:
        fprintf(f, "%" PRIu64, v->v.u);
        break;
    }
}

/* A value as text (C-like strings; arrays shortened with "... N more") or, with json, as
 * JSON (arrays shortened to JSON_ARRAY_SHOWN, which sets *truncated). */
static void print_value(FILE *f, const kd_gguf_value *v, int depth, int full, int json,
                        int *truncated)
{
    if (v->type == KD_GGUF_STRING) {
        if (json)
            print_str_json(f, v->v.s.data, v->v.s.len);
        else
            print_str_text(f, &v->v.s, full);
        return;
    }
    if (v->type != KD_GGUF_ARRAY) {
        print_number(f, v, json);
        return;
    }
    uint64_t limit = json ? JSON_ARRAY_SHOWN : depth == 0 ? TEXT_ARRAY_SHOWN : TEXT_NESTED_SHOWN;
    kd_gguf_array_iter it;
    kd_gguf_value e;
    uint64_t i = 0;
    fputc('[', f);
    kd_gguf_array_begin(v, &it);
    while ((full || i < limit) && kd_gguf_array_next(&it, &e)) {
        if (i++)
            fputs(", ", f);
        print_value(f, &e, depth + 1, full, json, truncated);
    }
    if (i < v->v.arr.count && json)
        *truncated = 1;
    else if (i < v->v.arr.count)
        fprintf(f, "%s... %" PRIu64 " more", i ? ", " : "", v->v.arr.count - i);
    fputc(']', f);
}

/* "uint32", or "array[uint32; 100]" / "array[array; 3]". */
static void type_label(const kd_gguf_value *v, char *buf, size_t cap)
{
    if (v->type == KD_GGUF_ARRAY)
        snprintf(buf, cap, "array[%s; %" PRIu64 "]", kd_gguf_vtype_name(v->v.arr.type),
                 v->v.arr.count);
    else
        snprintf(buf, cap, "%s", kd_gguf_vtype_name(v->type));
}

static void shape_text(const kd_gguf_tensor_info *t, char *buf, size_t cap)
{
    size_t n = 0;
    n += (size_t)snprintf(buf, cap, "[");
    for (uint32_t j = 0; j < t->n_dims && n < cap; j++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRIu64, j ? ", " : "", t->ne[j]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

static int name_width(uint64_t len, int current)
{
    int w = len > NAME_COL_MAX ? NAME_COL_MAX : (int)len;
    return w > current ? w : current;
}

/* ---- listings ---------------------------------------------------------------------------- */

static void list_text(FILE *f, const char *path, const kd_gguf *g, const list_opts *o)
{
    uint64_t nkv = kd_gguf_n_kv(g), nt = kd_gguf_n_tensors(g);
    fprintf(f, "%s: GGUF v%u, %" PRIu64 " metadata keys, %" PRIu64 " tensors, alignment %u, "
            "data section at byte %" PRIu64 ", file %" PRIu64 " bytes\n",
            path, kd_gguf_version(g), nkv, nt, kd_gguf_alignment(g), kd_gguf_data_offset(g),
            kd_gguf_size(g));

    int kw = 3, tw = 4;
    char label[64];
    for (uint64_t i = 0; i < nkv; i++) {
        const kd_gguf_kv *kv = kd_gguf_kv_at(g, i);
        kw = name_width(kv->key.len, kw);
        type_label(&kv->value, label, sizeof label);
        tw = name_width(strlen(label), tw);
    }
    fprintf(f, "\nmetadata:\n  %-*s  %-*s  %s\n", kw, "KEY", tw, "TYPE", "VALUE");
    for (uint64_t i = 0; i < nkv; i++) {
        const kd_gguf_kv *kv = kd_gguf_kv_at(g, i);
        type_label(&kv->value, label, sizeof label);
        fputs("  ", f);
        print_name_text(f, &kv->key, kw);
        fprintf(f, "  %-*s  ", tw, label);
        print_value(f, &kv->value, 0, o->full, 0, NULL);
        fputc('\n', f);
    }

    int nw = 4;
    char shape[128];
    uint64_t total = 0;
    for (uint64_t i = 0; i < nt; i++)
        nw = name_width(kd_gguf_tensor_at(g, i)->name.len, nw);
    fprintf(f, "\ntensors (shape in ggml order, ne[0] = row length; offset = byte in the file):\n"
            "  %-*s  %-7s  %-22s  %12s  %12s  %12s\n",
            nw, "NAME", "TYPE", "SHAPE", "ELEMENTS", "BYTES", "OFFSET");
    for (uint64_t i = 0; i < nt; i++) {
        const kd_gguf_tensor_info *t = kd_gguf_tensor_at(g, i);
        shape_text(t, shape, sizeof shape);
        fputs("  ", f);
        print_name_text(f, &t->name, nw);
        fprintf(f, "  %-7s  %-22s  %12" PRIu64 "  %12" PRIu64 "  %12" PRIu64 "\n",
                kd_ggml_type_name(t->ggml_type), shape, t->n_elements, t->nbytes,
                t->file_offset);
        total += t->nbytes;
    }
    fprintf(f, "  %" PRIu64 " tensors, %" PRIu64 " bytes of tensor data\n", nt, total);
}

static void list_json(FILE *f, const char *path, const kd_gguf *g, const list_opts *o)
{
    uint64_t nkv = kd_gguf_n_kv(g), nt = kd_gguf_n_tensors(g);
    fputs("{\n  \"file\": ", f);
    print_str_json(f, path, strlen(path));
    fprintf(f, ",\n  \"version\": %u,\n  \"alignment\": %u,\n  \"data_offset\": %" PRIu64
            ",\n  \"size\": %" PRIu64 ",\n  \"metadata\": [",
            kd_gguf_version(g), kd_gguf_alignment(g), kd_gguf_data_offset(g), kd_gguf_size(g));
    for (uint64_t i = 0; i < nkv; i++) {
        const kd_gguf_kv *kv = kd_gguf_kv_at(g, i);
        fputs(i ? ",\n    {\"key\": " : "\n    {\"key\": ", f);
        print_str_json(f, kv->key.data, kv->key.len);
        fprintf(f, ", \"type\": \"%s\"", kd_gguf_vtype_name(kv->value.type));
        if (kv->value.type == KD_GGUF_ARRAY)
            fprintf(f, ", \"element_type\": \"%s\", \"count\": %" PRIu64,
                    kd_gguf_vtype_name(kv->value.v.arr.type), kv->value.v.arr.count);
        fputs(", \"value\": ", f);
        int truncated = 0;
        print_value(f, &kv->value, 0, o->full, 1, &truncated);
        fprintf(f, "%s}", truncated ? ", \"truncated\": true" : "");
    }
    fputs(nkv ? "\n  ],\n  \"tensors\": [" : "],\n  \"tensors\": [", f);
    for (uint64_t i = 0; i < nt; i++) {
        const kd_gguf_tensor_info *t = kd_gguf_tensor_at(g, i);
        fputs(i ? ",\n    {\"name\": " : "\n    {\"name\": ", f);
        print_str_json(f, t->name.data, t->name.len);
        fprintf(f, ", \"type\": \"%s\", \"shape\": [", kd_ggml_type_name(t->ggml_type));
        for (uint32_t j = 0; j < t->n_dims; j++)
            fprintf(f, "%s%" PRIu64, j ? ", " : "", t->ne[j]);
        fprintf(f, "], \"elements\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"offset\": %" PRIu64
                ", \"data_offset\": %" PRIu64 "}",
                t->n_elements, t->nbytes, t->file_offset, t->offset);
    }
    fputs(nt ? "\n  ]\n}\n" : "]\n}\n", f);
}

int kd_cmd_gguf(int argc, char **argv)
{
    list_opts o = {0};
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            o.json = 1;
        } else if (!strcmp(argv[i], "--full")) {
            o.full = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "kdispatch gguf: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (path) {
            fprintf(stderr, "kdispatch gguf: one FILE only ('%s' and '%s')\n", path, argv[i]);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    kd_gguf *g = NULL;
    char err[1024];
    kd_status st = kd_gguf_open_file(path, &g, err, sizeof err);
    if (st != KD_OK) {
        fprintf(stderr, "kdispatch gguf: %s: %s\n", kd_status_name(st), err);
        return 1;
    }
    if (o.json)
        list_json(stdout, path, g, &o);
    else
        list_text(stdout, path, g, &o);
    kd_gguf_close(g);
    return fflush(stdout) == 0 ? 0 : 1;
}
