/*
 * GGUF reader (see kdispatch.h, "GGUF files"). The file is parsed once, front to back, by one bounded
 * cursor; every field is checked before it is used and every size computed with
 * overflow-checked arithmetic, so a corrupt file ends in KD_ERR_FORMAT with a message
 * that names the field and its byte offset, never in an out-of-bounds read.
 *
 * Built with -DKD_GGUF_STANDALONE (the fuzz target) the file needs nothing but libc: the
 * part that makes kdispatch tensors is left out.
 */
#include "kdispatch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef KD_GGUF_STANDALONE
#include "kd_backend.h" /* kd_error */
#endif

struct kd_gguf {
    const uint8_t *base;
    uint64_t size;
    int mapped; /* 1: base is our mmap of size bytes */
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    uint64_t n_kv;
    kd_gguf_kv *kv;
    uint64_t n_tensors;
    kd_gguf_tensor_info *tensors;
};

/* ---- ggml types ---------------------------------------------------------------------- */

typedef struct ggml_type_desc {
    const char *name;
    uint32_t block_elems;
    uint32_t block_bytes;
} ggml_type_desc;

/* Ids and sizes as ggml's type traits (gguf-py GGML_QUANT_SIZES); gaps are ids ggml
 * retired (Q4_2, Q4_3, the 4x4/4x8 repacked types), which no valid file holds. */
static const ggml_type_desc ggml_types[] = {
    [0] = {"F32", 1, 4},        [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},     [6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},     [9] = {"Q8_1", 32, 40},     [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110},  [12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},  [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74}, [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},  [21] = {"IQ3_S", 256, 110}, [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},       [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},       [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},  [30] = {"BF16", 1, 2},      [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},  [39] = {"MXFP4", 32, 17},   [40] = {"NVFP4", 64, 36},
    [41] = {"Q1_0", 128, 18},
};

static const ggml_type_desc *ggml_type(uint32_t id)
{
    if (id >= sizeof ggml_types / sizeof ggml_types[0] || !ggml_types[id].name)
        return NULL;
    return &ggml_types[id];
}

const char *kd_ggml_type_name(uint32_t ggml_type_id)
{
    const ggml_type_desc *d = ggml_type(ggml_type_id);
    return d ? d->name : NULL;
}

int kd_ggml_type_size(uint32_t ggml_type_id, uint32_t *block_elems, uint32_t *block_bytes)
{
    const ggml_type_desc *d = ggml_type(ggml_type_id);
    if (!d)
        return 0;
    if (block_elems)
        *block_elems = d->block_elems;
    if (block_bytes)
        *block_bytes = d->block_bytes;
    return 1;
}

kd_type kd_gguf_kd_type(uint32_t ggml_type_id)
{
    switch (ggml_type_id) {
    case KD_GGML_TYPE_F32: return KD_TYPE_F32;
    case KD_GGML_TYPE_Q4_K: return KD_TYPE_Q4_K;
    case KD_GGML_TYPE_Q6_K: return KD_TYPE_Q6_K;
    default: return KD_TYPE_COUNT;
    }
}

static const char *const vtype_names[KD_GGUF_VTYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool", "string", "array", "uint64", "int64", "float64",
};

const char *kd_gguf_vtype_name(kd_gguf_vtype t)
{
    return (unsigned)t < KD_GGUF_VTYPE_COUNT ? vtype_names[t] : "?";
}

/* Bytes of a fixed-size value type; 0 for STRING and ARRAY. */
static uint64_t vtype_size(uint32_t t)
{
    switch (t) {
    case KD_GGUF_UINT8: case KD_GGUF_INT8: case KD_GGUF_BOOL: return 1;
    case KD_GGUF_UINT16: case KD_GGUF_INT16: return 2;
    case KD_GGUF_UINT32: case KD_GGUF_INT32: case KD_GGUF_FLOAT32: return 4;
    case KD_GGUF_UINT64: case KD_GGUF_INT64: case KD_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* Fewest bytes a value of a variable-size type takes: a string's length field, an
 * array's element type and count. Bounds how many can fit in what is left. */
static uint64_t vtype_min_size(uint32_t t)
{
    uint64_t s = vtype_size(t);
    return s ? s : (t == KD_GGUF_STRING ? 8 : 12);
}

/* ---- checked arithmetic ---------------------------------------------------------------- */

static int add_u64(uint64_t a, uint64_t b, uint64_t *r) { return !__builtin_add_overflow(a, b, r); }
static int mul_u64(uint64_t a, uint64_t b, uint64_t *r) { return !__builtin_mul_overflow(a, b, r); }

/* ---- the bounded cursor ------------------------------------------------------------------ */

typedef struct cursor {
    const uint8_t *base;
    uint64_t size;
    uint64_t pos;
    char *err;          /* may be NULL (re-decoding validated bytes) */
    size_t err_cap;
    char where[160];    /* what is being read, e.g. "metadata 3 'general.name': " */
} cursor;

static uint64_t left(const cursor *c) { return c->size - c->pos; }

/* Records "<where><field> (at byte <at>): <message>" and returns -1. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int fail(cursor *c, uint64_t at, const char *field, const char *fmt, ...)
{
    if (!c->err || c->err_cap == 0)
        return -1;
    int n = snprintf(c->err, c->err_cap, "%s%s (at byte %llu): ", c->where, field,
                     (unsigned long long)at);
    if (n >= 0 && (size_t)n < c->err_cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->err_cap - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Adds the innermost array element's index to a message recorded deeper down (outer
 * arrays of a nested one add nothing more). */
static void append_err(cursor *c, const char *fmt, unsigned long long a, unsigned long long b)
{
    if (!c->err || c->err_cap == 0 || strstr(c->err, " [element "))
        return;
    size_t n = strlen(c->err);
    if (n + 1 < c->err_cap)
        snprintf(c->err + n, c->err_cap - n, fmt, a, b);
}

static int need(cursor *c, uint64_t n, const char *field)
{
    if (n > left(c))
        return fail(c, c->pos, field,
                    "needs %llu bytes but the file ends at byte %llu (truncated)",
                    (unsigned long long)n, (unsigned long long)c->size);
    return 0;
}

static uint64_t load_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int get_u32(cursor *c, const char *field, uint32_t *out)
{
    if (need(c, 4, field))
        return -1;
    *out = (uint32_t)load_le(c->base + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int get_u64(cursor *c, const char *field, uint64_t *out)
{
    if (need(c, 8, field))
        return -1;
    *out = load_le(c->base + c->pos, 8);
    c->pos += 8;
    return 0;
}

static int get_str(cursor *c, const char *field, kd_gguf_str *out)
{
    uint64_t at = c->pos, len;
    if (get_u64(c, field, &len))
        return -1;
    if (len > left(c))
        return fail(c, at, field,
                    "string length %llu runs past the end of the file (%llu bytes remain)",
                    (unsigned long long)len, (unsigned long long)left(c));
    out->len = len;
    out->data = (const char *)(c->base + c->pos);
    c->pos += len;
    return 0;
}

/* Keys and tensor names are identifiers: not empty, no NUL inside. */
static int check_name(cursor *c, uint64_t at, const char *field, const kd_gguf_str *s)
{
    if (s->len == 0)
        return fail(c, at, field, "is empty");
    if (memchr(s->data, '\0', s->len))
        return fail(c, at, field, "contains a NUL byte");
    return 0;
}

/* Sets where to "<prefix> <index> '<name>': " with the name made printable. */
static void set_where(cursor *c, const char *prefix, uint64_t index, const kd_gguf_str *name)
{
    char shown[64];
    size_t n = 0;
    if (name) {
        for (uint64_t i = 0; i < name->len && n + 4 < sizeof shown; i++) {
            unsigned char ch = (unsigned char)name->data[i];
            shown[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
        }
        if (name->len > n)
            shown[n++] = '.', shown[n++] = '.', shown[n++] = '.';
    }
    shown[n] = '\0';
    if (name)
        snprintf(c->where, sizeof c->where, "%s %llu '%s': ", prefix, (unsigned long long)index,
                 shown);
    else
        snprintf(c->where, sizeof c->where, "%s %llu: ", prefix, (unsigned long long)index);
}

/* ---- values ------------------------------------------------------------------------------ */

static void decode_fixed(uint32_t type, const uint8_t *p, kd_gguf_value *out)
{
    uint64_t raw = load_le(p, (int)vtype_size(type));
    out->type = (kd_gguf_vtype)type;
    switch (type) {
    case KD_GGUF_INT8: out->v.i = (int8_t)raw; break;
    case KD_GGUF_INT16: out->v.i = (int16_t)raw; break;
    case KD_GGUF_INT32: out->v.i = (int32_t)raw; break;
    case KD_GGUF_INT64: out->v.i = (int64_t)raw; break;
    case KD_GGUF_FLOAT32: {
        uint32_t bits = (uint32_t)raw;
        float f;
        memcpy(&f, &bits, sizeof f);
        out->v.f = f;
        break;
    }
    case KD_GGUF_FLOAT64: memcpy(&out->v.f, &raw, sizeof out->v.f); break;
    default: out->v.u = raw; break; /* unsigned types and bool */
    }
}

static int read_value(cursor *c, uint32_t type, int depth, const char *field, kd_gguf_value *out);

/* An array: element type, count, then count elements, all validated. */
static int read_array(cursor *c, int depth, kd_gguf_value *out)
{
    uint64_t at = c->pos, count;
    uint32_t et;
    if (get_u32(c, "array element type", &et))
        return -1;
    if (et >= KD_GGUF_VTYPE_COUNT)
        return fail(c, at, "array element type", "unknown value type %u (0..%d are defined)",
                    et, KD_GGUF_VTYPE_COUNT - 1);
    if (et == KD_GGUF_ARRAY && depth + 1 >= KD_GGUF_MAX_DEPTH)
        return fail(c, at, "array element type", "arrays nested more than %d deep",
                    KD_GGUF_MAX_DEPTH);
    uint64_t count_at = c->pos;
    if (get_u64(c, "array count", &count))
        return -1;
    uint64_t min = vtype_min_size(et);
    if (count > left(c) / min)
        return fail(c, count_at, "array count",
                    "%llu elements of %s (at least %llu bytes each) cannot fit in the %llu bytes "
                    "left in the file",
                    (unsigned long long)count, vtype_names[et], (unsigned long long)min,
                    (unsigned long long)left(c));
    out->type = KD_GGUF_ARRAY;
    out->v.arr.type = (kd_gguf_vtype)et;
    out->v.arr.count = count;
    out->v.arr.data = c->base + c->pos;
    uint64_t start = c->pos;
    if (vtype_size(et) && et != KD_GGUF_BOOL) {
        c->pos += count * min; /* fits: checked above */
    } else {
        for (uint64_t i = 0; i < count; i++) {
            kd_gguf_value elem;
            if (read_value(c, et, depth + 1, "array element", &elem)) {
                append_err(c, " [element %llu of the array at byte %llu]",
                           (unsigned long long)i, (unsigned long long)at);
                return -1;
            }
        }
    }
    out->v.arr.bytes = c->pos - start;
    return 0;
}

static int read_value(cursor *c, uint32_t type, int depth, const char *field, kd_gguf_value *out)
{
    uint64_t at = c->pos;
    if (type >= KD_GGUF_VTYPE_COUNT)
        return fail(c, at, field, "unknown value type %u", type);
    if (type == KD_GGUF_STRING) {
        out->type = KD_GGUF_STRING;
        return get_str(c, field, &out->v.s);
    }
    if (type == KD_GGUF_ARRAY)
        return read_array(c, depth, out);
    uint64_t n = vtype_size(type);
    if (need(c, n, field))
        return -1;
    if (type == KD_GGUF_BOOL && c->base[c->pos] > 1)
        return fail(c, at, field, "bool byte is %u (must be 0 or 1)", c->base[c->pos]);
    decode_fixed(type, c->base + c->pos, out);
    c->pos += n;
    return 0;
}

/* ---- header, metadata, tensor infos -------------------------------------------------------- */

/* Smallest key-value pair: key length, a 1-byte key, value type, a 1-byte value. */
#define MIN_KV_BYTES 14u
/* Smallest tensor info: name length, 1-byte name, n_dims, one dim, type, offset. */
#define MIN_TENSOR_INFO_BYTES 33u

static int read_header(cursor *c, kd_gguf *g)
{
    uint32_t magic;
    snprintf(c->where, sizeof c->where, "header: ");
    if (get_u32(c, "magic", &magic))
        return -1;
    if (magic != KD_GGUF_MAGIC)
        return fail(c, 0, "magic", "0x%08x is not \"GGUF\" (0x%08x): not a GGUF file", magic,
                    KD_GGUF_MAGIC);
    if (get_u32(c, "version", &g->version))
        return -1;
    if (g->version == 1)
        return fail(c, 4, "version",
                    "GGUF v1 is not supported (it used 32-bit counts); only v2 and v3 are");
    if (g->version == 0x02000000u || g->version == 0x03000000u)
        return fail(c, 4, "version", "this is a big-endian GGUF file; only little-endian is "
                    "supported");
    if (g->version != 2 && g->version != 3)
        return fail(c, 4, "version", "unknown GGUF version %u (v2 and v3 are supported)",
                    g->version);
    if (get_u64(c, "tensor count", &g->n_tensors) || get_u64(c, "metadata count", &g->n_kv))
        return -1;
    if (g->n_kv > left(c) / MIN_KV_BYTES)
        return fail(c, 16, "metadata count",
                    "%llu key-value pairs (at least %u bytes each) cannot fit in the %llu bytes "
                    "after the header",
                    (unsigned long long)g->n_kv, MIN_KV_BYTES, (unsigned long long)left(c));
    if (g->n_tensors > (left(c) - g->n_kv * MIN_KV_BYTES) / MIN_TENSOR_INFO_BYTES)
        return fail(c, 8, "tensor count",
                    "%llu tensor infos (at least %u bytes each) cannot fit in the %llu bytes "
                    "after the header and metadata",
                    (unsigned long long)g->n_tensors, MIN_TENSOR_INFO_BYTES,
                    (unsigned long long)(left(c) - g->n_kv * MIN_KV_BYTES));
    return 0;
}

static int read_kvs(cursor *c, kd_gguf *g)
{
    for (uint64_t i = 0; i < g->n_kv; i++) {
        kd_gguf_kv *kv = &g->kv[i];
        set_where(c, "metadata", i, NULL);
        kv->offset = c->pos;
        if (get_str(c, "key", &kv->key) || check_name(c, kv->offset, "key", &kv->key))
            return -1;
        set_where(c, "metadata", i, &kv->key);
        uint64_t type_at = c->pos;
        uint32_t type;
        if (get_u32(c, "value type", &type))
            return -1;
        if (type >= KD_GGUF_VTYPE_COUNT)
            return fail(c, type_at, "value type", "unknown value type %u (0..%d are defined)",
                        type, KD_GGUF_VTYPE_COUNT - 1);
        if (read_value(c, type, 0, "value", &kv->value))
            return -1;
    }
    return 0;
}

static int cmp_str(const kd_gguf_str *a, const kd_gguf_str *b)
{
    uint64_t n = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->data, b->data, n);
    if (r)
        return r;
    return (a->len > b->len) - (a->len < b->len);
}

static int cmp_kv_ptr(const void *a, const void *b)
{
    return cmp_str(&(*(const kd_gguf_kv *const *)a)->key, &(*(const kd_gguf_kv *const *)b)->key);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return cmp_str(&(*(const kd_gguf_tensor_info *const *)a)->name,
                   &(*(const kd_gguf_tensor_info *const *)b)->name);
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    const kd_gguf_tensor_info *x = *(const kd_gguf_tensor_info *const *)a;
    const kd_gguf_tensor_info *y = *(const kd_gguf_tensor_info *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Sorted pointers to n items of size sz (caller frees); NULL when out of memory. */
static const void **sorted_ptrs(const void *items, uint64_t n, size_t sz,
                                int (*cmp)(const void *, const void *))
{
    const void **p = malloc((size_t)(n ? n : 1) * sizeof *p);
    if (!p)
        return NULL;
    for (uint64_t i = 0; i < n; i++)
        p[i] = (const uint8_t *)items + i * sz;
    qsort(p, (size_t)n, sizeof *p, cmp);
    return p;
}

/* Duplicate keys: refused, since a look-up would see only one of them. -2: no memory. */
static int check_unique_keys(cursor *c, const kd_gguf *g)
{
    const kd_gguf_kv **s =
        (const kd_gguf_kv **)sorted_ptrs(g->kv, g->n_kv, sizeof *g->kv, cmp_kv_ptr);
    if (!s)
        return -2;
    int rc = 0;
    for (uint64_t i = 1; i < g->n_kv && !rc; i++)
        if (cmp_str(&s[i - 1]->key, &s[i]->key) == 0) {
            const kd_gguf_kv *a = s[i - 1] < s[i] ? s[i - 1] : s[i];
            const kd_gguf_kv *b = s[i - 1] < s[i] ? s[i] : s[i - 1];
            set_where(c, "metadata", (uint64_t)(b - g->kv), &b->key);
            rc = fail(c, b->offset, "key", "duplicate of metadata %llu (at byte %llu)",
                      (unsigned long long)(a - g->kv), (unsigned long long)a->offset);
        }
    free(s);
    return rc;
}

/* general.alignment: a uint32 power of two when present; 32 otherwise. */
static int read_alignment(cursor *c, kd_gguf *g)
{
    g->alignment = KD_GGUF_DEFAULT_ALIGNMENT;
    const kd_gguf_kv *kv = kd_gguf_find(g, "general.alignment");
    if (!kv)
        return 0;
    set_where(c, "metadata", (uint64_t)(kv - g->kv), &kv->key);
    if (kv->value.type != KD_GGUF_UINT32)
        return fail(c, kv->offset, "value", "general.alignment has type %s; it must be uint32",
                    vtype_names[kv->value.type]);
    uint64_t a = kv->value.v.u;
    if (a == 0 || (a & (a - 1)) != 0)
        return fail(c, kv->offset, "value", "general.alignment %llu is not a power of two",
                    (unsigned long long)a);
    g->alignment = (uint32_t)a;
    return 0;
}

static int read_dims(cursor *c, kd_gguf_tensor_info *t)
{
    uint64_t at = c->pos;
    if (get_u32(c, "n_dims", &t->n_dims))
        return -1;
    if (t->n_dims == 0 || t->n_dims > KD_GGUF_MAX_DIMS)
        return fail(c, at, "n_dims", "%u is outside 1..%d", t->n_dims, KD_GGUF_MAX_DIMS);
    t->n_elements = 1;
    for (uint32_t j = 0; j < KD_GGUF_MAX_DIMS; j++)
        t->ne[j] = 1;
    for (uint32_t j = 0; j < t->n_dims; j++) {
        uint64_t ne_at = c->pos;
        if (get_u64(c, "dimension", &t->ne[j]))
            return -1;
        if (t->ne[j] > (uint64_t)INT64_MAX)
            return fail(c, ne_at, "dimension", "ne[%u] = %llu is larger than INT64_MAX", j,
                        (unsigned long long)t->ne[j]);
        if (!mul_u64(t->n_elements, t->ne[j], &t->n_elements) ||
            t->n_elements > (uint64_t)INT64_MAX)
            return fail(c, ne_at, "dimension",
                        "ne[%u] = %llu makes the element count overflow INT64_MAX", j,
                        (unsigned long long)t->ne[j]);
    }
    return 0;
}

static int read_type_and_size(cursor *c, kd_gguf_tensor_info *t)
{
    uint64_t at = c->pos;
    if (get_u32(c, "type", &t->ggml_type))
        return -1;
    const ggml_type_desc *d = ggml_type(t->ggml_type);
    if (!d)
        return fail(c, at, "type", "unknown ggml type %u", t->ggml_type);
    if (t->ne[0] % d->block_elems != 0)
        return fail(c, at, "type", "ne[0] = %llu is not a multiple of the %s block of %u values",
                    (unsigned long long)t->ne[0], d->name, d->block_elems);
    if (!mul_u64(t->n_elements / d->block_elems, d->block_bytes, &t->nbytes))
        return fail(c, at, "type", "the byte size of %llu %s values overflows 64 bits",
                    (unsigned long long)t->n_elements, d->name);
    return 0;
}

static int read_tensor_infos(cursor *c, kd_gguf *g)
{
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        kd_gguf_tensor_info *t = &g->tensors[i];
        set_where(c, "tensor", i, NULL);
        t->info_offset = c->pos;
        if (get_str(c, "name", &t->name) || check_name(c, t->info_offset, "name", &t->name))
            return -1;
        set_where(c, "tensor", i, &t->name);
        if (read_dims(c, t) || read_type_and_size(c, t))
            return -1;
        uint64_t at = c->pos;
        if (get_u64(c, "data offset", &t->offset))
            return -1;
        if (t->offset % g->alignment != 0)
            return fail(c, at, "data offset", "%llu is not a multiple of the alignment %u",
                        (unsigned long long)t->offset, g->alignment);
    }
    return 0;
}

/* File offset of a tensor info's data offset field (for messages after the parse). */
static uint64_t offset_field_at(const kd_gguf_tensor_info *t)
{
    return t->info_offset + 8 + t->name.len + 4 + 8ull * t->n_dims + 4;
}

/* Data section start (aligned), then every tensor inside the file and none overlapping. */
static int place_tensors(cursor *c, kd_gguf *g)
{
    uint64_t end_of_infos = c->pos;
    snprintf(c->where, sizeof c->where, "data section: ");
    if (!add_u64(end_of_infos, g->alignment - 1, &g->data_offset))
        return fail(c, end_of_infos, "start", "aligning to %u overflows", g->alignment);
    g->data_offset &= ~(uint64_t)(g->alignment - 1);
    uint64_t data_size = g->size > g->data_offset ? g->size - g->data_offset : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        kd_gguf_tensor_info *t = &g->tensors[i];
        set_where(c, "tensor", i, &t->name);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return fail(c, offset_field_at(t), "data offset",
                        "data [%llu, +%llu bytes) lies outside the file: the data section "
                        "starts at byte %llu and holds %llu bytes",
                        (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                        (unsigned long long)g->data_offset, (unsigned long long)data_size);
        t->file_offset = g->data_offset + t->offset;
        t->data = t->nbytes ? g->base + t->file_offset : NULL;
    }
    return 0;
}

static int check_tensor_layout(cursor *c, const kd_gguf *g)
{
    const kd_gguf_tensor_info **s = (const kd_gguf_tensor_info **)sorted_ptrs(
        g->tensors, g->n_tensors, sizeof *g->tensors, cmp_tensor_name);
    if (!s)
        return -2;
    int rc = 0;
    for (uint64_t i = 1; i < g->n_tensors && !rc; i++)
        if (cmp_str(&s[i - 1]->name, &s[i]->name) == 0) {
            const kd_gguf_tensor_info *b = s[i - 1] < s[i] ? s[i] : s[i - 1];
            set_where(c, "tensor", (uint64_t)(b - g->tensors), &b->name);
            rc = fail(c, b->info_offset, "name", "duplicate tensor name");
        }
    if (!rc) {
        qsort(s, (size_t)g->n_tensors, sizeof *s, cmp_tensor_offset);
        const kd_gguf_tensor_info *prev = NULL;
        for (uint64_t i = 0; i < g->n_tensors && !rc; i++) {
            if (s[i]->nbytes == 0)
                continue;
            if (prev && prev->offset + prev->nbytes > s[i]->offset) {
                set_where(c, "tensor", (uint64_t)(s[i] - g->tensors), &s[i]->name);
                rc = fail(c, offset_field_at(s[i]), "data offset",
                          "data at %llu overlaps tensor %llu's data [%llu, +%llu bytes)",
                          (unsigned long long)s[i]->offset,
                          (unsigned long long)(prev - g->tensors),
                          (unsigned long long)prev->offset, (unsigned long long)prev->nbytes);
            }
            prev = s[i];
        }
    }
    free(s);
    return rc;
}

static kd_status out_of_memory(char *err, size_t cap)
{
    if (err && cap)
        snprintf(err, cap, "out of host memory while reading the GGUF file");
    return KD_ERR_NOMEM;
}

/* Parses g->base[0..g->size). */
static kd_status parse(kd_gguf *g, char *err, size_t err_cap)
{
    cursor c = {.base = g->base, .size = g->size, .err = err, .err_cap = err_cap};
    if (read_header(&c, g))
        return KD_ERR_FORMAT;
    if (g->n_kv && !(g->kv = calloc((size_t)g->n_kv, sizeof *g->kv)))
        return out_of_memory(err, err_cap);
    if (g->n_tensors && !(g->tensors = calloc((size_t)g->n_tensors, sizeof *g->tensors)))
        return out_of_memory(err, err_cap);
    if (read_kvs(&c, g))
        return KD_ERR_FORMAT;
    int rc = check_unique_keys(&c, g);
    if (rc)
        return rc == -2 ? out_of_memory(err, err_cap) : KD_ERR_FORMAT;
    if (read_alignment(&c, g) || read_tensor_infos(&c, g) || place_tensors(&c, g))
        return KD_ERR_FORMAT;
    rc = check_tensor_layout(&c, g);
    if (rc)
        return rc == -2 ? out_of_memory(err, err_cap) : KD_ERR_FORMAT;
    return KD_OK;
}

/* ---- opening and closing ------------------------------------------------------------------ */

static kd_status open_image(const uint8_t *base, uint64_t size, int mapped, kd_gguf **out,
                            char *err, size_t err_cap)
{
    kd_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        if (mapped)
            munmap((void *)base, (size_t)size);
        return out_of_memory(err, err_cap);
    }
    g->base = base;
    g->size = size;
    g->mapped = mapped;
    kd_status st = parse(g, err, err_cap);
    if (st != KD_OK) {
        kd_gguf_close(g);
        return st;
    }
    *out = g;
    return KD_OK;
}

kd_status kd_gguf_from_memory(const void *data, size_t size, kd_gguf **out, char *err,
                              size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    if (!out || (!data && size)) {
        if (err && err_cap)
            snprintf(err, err_cap, "kd_gguf_from_memory: NULL data or output");
        return KD_ERR_NULL;
    }
    *out = NULL;
    static const uint8_t empty[1];
    return open_image(data ? data : empty, size, 0, out, err, err_cap);
}

kd_status kd_gguf_open_file(const char *path, kd_gguf **out, char *err, size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    if (!path || !out) {
        if (err && err_cap)
            snprintf(err, err_cap, "kd_gguf_open_file: NULL path or output");
        return KD_ERR_NULL;
    }
    *out = NULL;
    /* non-blocking: a FIFO without a writer is refused below instead of hanging here */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    kd_status status = KD_OK;
    const char *why = NULL;
    if (fd < 0)
        why = "cannot open", status = KD_ERR_IO;
    else if (fstat(fd, &st) != 0)
        why = "cannot stat", status = KD_ERR_IO;
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file", status = KD_ERR_IO, errno = 0;
    else if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX)
        why = "too large to map", status = KD_ERR_IO, errno = 0;
    if (status != KD_OK) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (err && err_cap)
            snprintf(err, err_cap, "GGUF '%s': %s%s%s", path, why, e ? ": " : "",
                     e ? strerror(e) : "");
        return status;
    }
    uint64_t size = (uint64_t)st.st_size;
    const uint8_t *base = NULL;
    if (size > 0) {
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            if (err && err_cap)
                snprintf(err, err_cap, "GGUF '%s': cannot map: %s", path, strerror(e));
            return KD_ERR_IO;
        }
        base = m;
    }
    close(fd); /* the mapping keeps the file */
    static const uint8_t empty[1];
    char msg[768];
    status = open_image(base ? base : empty, size, base != NULL, out, msg, sizeof msg);
    if (status != KD_OK && err && err_cap)
        snprintf(err, err_cap, "GGUF '%s': %s", path, msg);
    return status;
}

kd_status kd_gguf_open(kd_context *ctx, const char *path, kd_gguf **out)
{
    char msg[1024];
    kd_status st = kd_gguf_open_file(path, out, msg, sizeof msg);
#ifndef KD_GGUF_STANDALONE
    if (st != KD_OK)
        return kd_error(ctx, st, "%s", msg);
#else
    (void)ctx;
#endif
    return st;
}

void kd_gguf_close(kd_gguf *g)
{
    if (!g)
        return;
    if (g->mapped)
        munmap((void *)g->base, (size_t)g->size);
    free(g->kv);
    free(g->tensors);
    free(g);
}

/* ---- reading ------------------------------------------------------------------------------- */

uint32_t kd_gguf_version(const kd_gguf *g) { return g ? g->version : 0; }
uint32_t kd_gguf_alignment(const kd_gguf *g) { return g ? g->alignment : 0; }
uint64_t kd_gguf_data_offset(const kd_gguf *g) { return g ? g->data_offset : 0; }
uint64_t kd_gguf_size(const kd_gguf *g) { return g ? g->size : 0; }
const void *kd_gguf_base(const kd_gguf *g) { return g ? g->base : NULL; }
uint64_t kd_gguf_n_kv(const kd_gguf *g) { return g ? g->n_kv : 0; }
uint64_t kd_gguf_n_tensors(const kd_gguf *g) { return g ? g->n_tensors : 0; }

const kd_gguf_kv *kd_gguf_kv_at(const kd_gguf *g, uint64_t i)
{
    return g && i < g->n_kv ? &g->kv[i] : NULL;
}

static int str_is(const kd_gguf_str *s, const char *z)
{
    size_t n = strlen(z);
    return s->len == n && memcmp(s->data, z, n) == 0;
}

const kd_gguf_kv *kd_gguf_find(const kd_gguf *g, const char *key)
{
    if (!g || !key)
        return NULL;
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (str_is(&g->kv[i].key, key))
            return &g->kv[i];
    return NULL;
}

const kd_gguf_tensor_info *kd_gguf_tensor_at(const kd_gguf *g, uint64_t i)
{
    return g && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const kd_gguf_tensor_info *kd_gguf_find_tensor(const kd_gguf *g, const char *name)
{
    if (!g || !name)
        return NULL;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (str_is(&g->tensors[i].name, name))
            return &g->tensors[i];
    return NULL;
}

int kd_gguf_get_int(const kd_gguf *g, const char *key, int64_t *out)
{
    const kd_gguf_kv *kv = kd_gguf_find(g, key);
    if (!kv || !out)
        return 0;
    switch (kv->value.type) {
    case KD_GGUF_INT8: case KD_GGUF_INT16: case KD_GGUF_INT32: case KD_GGUF_INT64:
        *out = kv->value.v.i;
        return 1;
    case KD_GGUF_UINT8: case KD_GGUF_UINT16: case KD_GGUF_UINT32: case KD_GGUF_UINT64:
        if (kv->value.v.u > (uint64_t)INT64_MAX)
            return 0;
        *out = (int64_t)kv->value.v.u;
        return 1;
    default:
        return 0;
    }
}

int kd_gguf_get_float(const kd_gguf *g, const char *key, double *out)
{
    const kd_gguf_kv *kv = kd_gguf_find(g, key);
    if (!kv || !out)
        return 0;
    int64_t i;
    switch (kv->value.type) {
    case KD_GGUF_FLOAT32: case KD_GGUF_FLOAT64:
        *out = kv->value.v.f;
        return 1;
    case KD_GGUF_UINT64:
        *out = (double)kv->value.v.u;
        return 1;
    default:
        if (!kd_gguf_get_int(g, key, &i))
            return 0;
        *out = (double)i;
        return 1;
    }
}

int kd_gguf_get_string(const kd_gguf *g, const char *key, kd_gguf_str *out)
{
    const kd_gguf_kv *kv = kd_gguf_find(g, key);
    if (!kv || !out || kv->value.type != KD_GGUF_STRING)
        return 0;
    *out = kv->value.v.s;
    return 1;
}

void kd_gguf_array_begin(const kd_gguf_value *array, kd_gguf_array_iter *it)
{
    if (!it)
        return;
    memset(it, 0, sizeof *it);
    if (!array || array->type != KD_GGUF_ARRAY)
        return;
    it->p = array->v.arr.data;
    it->end = array->v.arr.data + array->v.arr.bytes;
    it->left = array->v.arr.count;
    it->type = array->v.arr.type;
}

int kd_gguf_array_next(kd_gguf_array_iter *it, kd_gguf_value *out)
{
    if (!it || !out || it->left == 0)
        return 0;
    /* The bytes were validated at open; decoding them again through a cursor bounded to
     * the array keeps even a misused iterator inside it. */
    cursor c = {.base = it->p, .size = (uint64_t)(it->end - it->p)};
    if (read_value(&c, it->type, 1, "array element", out)) {
        it->left = 0;
        return 0;
    }
    it->p += c.pos;
    it->left--;
    return 1;
}

int kd_gguf_array_get(const kd_gguf_value *array, uint64_t i, kd_gguf_value *out)
{
    if (!array || !out || array->type != KD_GGUF_ARRAY || i >= array->v.arr.count)
        return 0;
    uint64_t size = vtype_size(array->v.arr.type);
    if (size) {
        decode_fixed(array->v.arr.type, array->v.arr.data + i * size, out);
        return 1;
    }
    kd_gguf_array_iter it;
    kd_gguf_array_begin(array, &it);
    for (uint64_t k = 0; k <= i; k++)
        if (!kd_gguf_array_next(&it, out))
            return 0;
    return 1;
}

/* ---- kdispatch tensors ----------------------------------------------------------------------- */

#ifndef KD_GGUF_STANDALONE

/* "%.*s" arguments for a tensor name, shortened so the length fits an int. */
#define NAME_ARGS(ti) (int)((ti)->name.len > 200 ? 200 : (ti)->name.len), (ti)->name.data

static int owns_info(const kd_gguf *g, const kd_gguf_tensor_info *ti)
{
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (&g->tensors[i] == ti)
            return 1;
    return 0;
}

static kd_status make_f32(kd_context *ctx, const kd_gguf_tensor_info *ti, int64_t rows,
                          int64_t cols, kd_tensor **out)
{
    if (((uintptr_t)ti->data & (sizeof(float) - 1)) == 0)
        return kd_tensor_f32(ctx, rows, cols, (const float *)ti->data, out);
    /* general.alignment below 4 can leave f32 data unaligned: copy it first. */
    float *tmp = malloc((size_t)ti->nbytes);
    if (!tmp)
        return kd_error(ctx, KD_ERR_NOMEM, "GGUF tensor '%.*s': out of host memory",
                        NAME_ARGS(ti));
    memcpy(tmp, ti->data, (size_t)ti->nbytes);
    kd_status st = kd_tensor_f32(ctx, rows, cols, tmp, out);
    free(tmp);
    return st;
}

/* kd_gguf_tensor (copy = 0) and kd_gguf_tensor_copy (copy = 1). */
static kd_status make_tensor(kd_context *ctx, const kd_gguf *g, const kd_gguf_tensor_info *ti,
                             int copy, kd_tensor **out)
{
    if (!ctx || !g || !ti || !out)
        return kd_error(ctx, KD_ERR_NULL, "%s: NULL context, file, tensor or output",
                        copy ? "kd_gguf_tensor_copy" : "kd_gguf_tensor");
    *out = NULL;
    if (!owns_info(g, ti))
        return kd_error(ctx, KD_ERR_ARG, "kd_gguf_tensor: the tensor info is not from this file");
    if (ti->n_elements == 0)
        return kd_error(ctx, KD_ERR_ZERO_SIZE, "GGUF tensor '%.*s' has no elements",
                        NAME_ARGS(ti));
    int64_t cols = (int64_t)ti->ne[0];
    int64_t rows = (int64_t)(ti->n_elements / ti->ne[0]);
    kd_type t = kd_gguf_kd_type(ti->ggml_type);
    switch (t) {
    case KD_TYPE_Q4_K:
    case KD_TYPE_Q6_K:
        /* Zero copy: the weight reads the mapped blocks in place. */
        if (!copy && ((uintptr_t)ti->data & 3u) == 0)
            return kd_tensor_quant_borrow(ctx, t, rows, cols, ti->data, (size_t)ti->nbytes, out);
        return kd_tensor_quant(ctx, t, rows, cols, ti->data, (size_t)ti->nbytes, out);
    case KD_TYPE_F32:
        return make_f32(ctx, ti, rows, cols, out);
    default:
        return kd_error(ctx, KD_ERR_TYPE,
                        "GGUF tensor '%.*s' has type %s; kdispatch takes F32, Q4_K and Q6_K",
                        NAME_ARGS(ti), kd_ggml_type_name(ti->ggml_type));
    }
}

kd_status kd_gguf_tensor(kd_context *ctx, const kd_gguf *g, const kd_gguf_tensor_info *ti,
                         kd_tensor **out)
{
    return make_tensor(ctx, g, ti, 0, out);
}

kd_status kd_gguf_tensor_copy(kd_context *ctx, const kd_gguf *g, const kd_gguf_tensor_info *ti,
                              kd_tensor **out)
{
    return make_tensor(ctx, g, ti, 1, out);
}

kd_status kd_gguf_tensor_by_name(kd_context *ctx, const kd_gguf *g, const char *name,
                                 kd_tensor **out)
{
    if (!ctx || !g || !name || !out)
        return kd_error(ctx, KD_ERR_NULL, "kd_gguf_tensor_by_name: NULL argument");
    *out = NULL;
    const kd_gguf_tensor_info *ti = kd_gguf_find_tensor(g, name);
    if (!ti)
        return kd_error(ctx, KD_ERR_ARG, "GGUF file has no tensor named '%s'", name);
    return kd_gguf_tensor(ctx, g, ti, out);
}

#endif /* KD_GGUF_STANDALONE */
