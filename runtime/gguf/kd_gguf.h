/*
 * GGUF reader: memory-maps a GGUF v2 or v3 file, validates all of it once at open time
 * and gives read-only views of its metadata and tensor infos that point into the mapping.
 *
 * What open checks (any failure: KD_ERR_FORMAT and a message naming the field and its
 * file offset): the magic, the version (2 or 3; v1 and big-endian files are refused), that
 * the counts can fit in the file, every string length, every value type (including the
 * element type of arrays, nested arrays up to KD_GGUF_MAX_DEPTH), bool bytes, unique and
 * non-empty keys and tensor names, general.alignment (uint32, power of two; default 32),
 * each tensor's n_dims (1..4), dims (product fits int64, ne[0] a multiple of the type's
 * block), type (a known ggml type), offset (a multiple of the alignment) and byte size
 * (inside the file), and that no two tensors overlap. All size arithmetic is checked.
 *
 * Shapes are in ggml order: ne[0] is the row length (fastest), ne[1] the number of rows.
 * A Q4_K / Q6_K weight of N rows of K values has ne = {K, N}.
 *
 * The mapping is read-only and private; a file truncated by another process while it is
 * mapped can still raise SIGBUS, as with any memory-mapped reader.
 */
#ifndef KD_GGUF_H
#define KD_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "kdispatch.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KD_GGUF_MAGIC 0x46554747u   /* "GGUF" read as a little-endian uint32 */
#define KD_GGUF_MAX_DIMS 4          /* GGML_MAX_DIMS */
#define KD_GGUF_DEFAULT_ALIGNMENT 32
#define KD_GGUF_MAX_DEPTH 16        /* nesting of arrays in arrays */

/* Metadata value types, numbered as in the file. */
typedef enum kd_gguf_vtype {
    KD_GGUF_UINT8 = 0,
    KD_GGUF_INT8 = 1,
    KD_GGUF_UINT16 = 2,
    KD_GGUF_INT16 = 3,
    KD_GGUF_UINT32 = 4,
    KD_GGUF_INT32 = 5,
    KD_GGUF_FLOAT32 = 6,
    KD_GGUF_BOOL = 7,
    KD_GGUF_STRING = 8,
    KD_GGUF_ARRAY = 9,
    KD_GGUF_UINT64 = 10,
    KD_GGUF_INT64 = 11,
    KD_GGUF_FLOAT64 = 12,
    KD_GGUF_VTYPE_COUNT
} kd_gguf_vtype;

/* "uint8", ..., "float64"; "?" when out of range. */
const char *kd_gguf_vtype_name(kd_gguf_vtype t);

/* A string inside the mapping: len bytes, not NUL-terminated (use "%.*s"). */
typedef struct kd_gguf_str {
    uint64_t len;
    const char *data;
} kd_gguf_str;

typedef struct kd_gguf_value {
    kd_gguf_vtype type;
    union {
        uint64_t u;    /* UINT8, UINT16, UINT32, UINT64, BOOL (0 or 1) */
        int64_t i;     /* INT8, INT16, INT32, INT64 */
        double f;      /* FLOAT32, FLOAT64 */
        kd_gguf_str s; /* STRING */
        struct {
            kd_gguf_vtype type;  /* element type */
            uint64_t count;      /* number of elements */
            const uint8_t *data; /* first element's bytes in the mapping */
            uint64_t bytes;      /* bytes of all elements */
        } arr;                   /* ARRAY */
    } v;
} kd_gguf_value;

typedef struct kd_gguf_kv {
    kd_gguf_str key;
    kd_gguf_value value;
    uint64_t offset;    /* file offset of the key's length field */
} kd_gguf_kv;

typedef struct kd_gguf_tensor_info {
    kd_gguf_str name;
    uint32_t n_dims;
    uint64_t ne[KD_GGUF_MAX_DIMS]; /* dims past n_dims are 1 */
    uint32_t ggml_type;            /* ggml type id (always a known one) */
    uint64_t n_elements;           /* product of ne; at most INT64_MAX */
    uint64_t nbytes;               /* bytes of the data */
    uint64_t offset;               /* relative to the data section, as in the file */
    uint64_t file_offset;          /* absolute file offset of the data */
    uint64_t info_offset;          /* file offset of this tensor's info record */
    const void *data;              /* the data in the mapping */
} kd_gguf_tensor_info;

typedef struct kd_gguf kd_gguf;

/* ---- ggml types -------------------------------------------------------------------- */

/* Name of a ggml type id ("F32", "Q4_K", ...); NULL if not a known type. */
const char *kd_ggml_type_name(uint32_t ggml_type);
/* Elements per block and bytes per block of a known type; 0 if unknown. */
int kd_ggml_type_size(uint32_t ggml_type, uint32_t *block_elems, uint32_t *block_bytes);

enum { KD_GGML_TYPE_F32 = 0, KD_GGML_TYPE_F16 = 1, KD_GGML_TYPE_Q4_K = 12, KD_GGML_TYPE_Q6_K = 14 };

/* The kdispatch type of a ggml type; KD_TYPE_COUNT for a type kdispatch does not run. */
kd_type kd_gguf_kd_type(uint32_t ggml_type);

/* ---- opening ----------------------------------------------------------------------- */

/* Memory-maps and validates a file. Errors: KD_ERR_NULL, KD_ERR_IO (cannot open/map),
 * KD_ERR_FORMAT (truncated or corrupt), KD_ERR_NOMEM; the message goes to err (may be
 * NULL). Needs no context, so a listing does not probe the backends. */
kd_status kd_gguf_open_file(const char *path, kd_gguf **out, char *err, size_t err_cap);

/* As kd_gguf_open_file with the message recorded on ctx (kd_last_error). */
kd_status kd_gguf_open(kd_context *ctx, const char *path, kd_gguf **out);

/* Validates a GGUF image already in memory (not copied: it must outlive the handle).
 * The fuzz target and the tests use it. */
kd_status kd_gguf_from_memory(const void *data, size_t size, kd_gguf **out, char *err,
                              size_t err_cap);

/* Unmaps the file (if this handle mapped it) and frees the handle. NULL is fine. */
void kd_gguf_close(kd_gguf *g);

/* ---- reading ----------------------------------------------------------------------- */

uint32_t kd_gguf_version(const kd_gguf *g);
uint32_t kd_gguf_alignment(const kd_gguf *g);
uint64_t kd_gguf_data_offset(const kd_gguf *g); /* file offset of the data section */
uint64_t kd_gguf_size(const kd_gguf *g);        /* file size in bytes */
const void *kd_gguf_base(const kd_gguf *g);     /* start of the mapping */

uint64_t kd_gguf_n_kv(const kd_gguf *g);
const kd_gguf_kv *kd_gguf_kv_at(const kd_gguf *g, uint64_t i);  /* NULL if out of range */
const kd_gguf_kv *kd_gguf_find(const kd_gguf *g, const char *key); /* NULL if absent */

uint64_t kd_gguf_n_tensors(const kd_gguf *g);
const kd_gguf_tensor_info *kd_gguf_tensor_at(const kd_gguf *g, uint64_t i);
const kd_gguf_tensor_info *kd_gguf_find_tensor(const kd_gguf *g, const char *name);

/* Typed look-ups: 1 and the value when the key exists with a compatible type, else 0.
 * get_int takes any integer type whose value fits int64; get_float any float or integer
 * type; get_string a STRING (the pointer is into the mapping, not NUL-terminated). */
int kd_gguf_get_int(const kd_gguf *g, const char *key, int64_t *out);
int kd_gguf_get_float(const kd_gguf *g, const char *key, double *out);
int kd_gguf_get_string(const kd_gguf *g, const char *key, kd_gguf_str *out);

/* Arrays: elements are decoded in order from the validated bytes. */
typedef struct kd_gguf_array_iter {
    const uint8_t *p, *end;
    uint64_t left;
    kd_gguf_vtype type;
} kd_gguf_array_iter;

void kd_gguf_array_begin(const kd_gguf_value *array, kd_gguf_array_iter *it);
/* 1 and the next element in *out; 0 at the end. */
int kd_gguf_array_next(kd_gguf_array_iter *it, kd_gguf_value *out);
/* Element i (O(1) for fixed-size elements, O(i) for strings and arrays); 0 if out of
 * range or not an array. */
int kd_gguf_array_get(const kd_gguf_value *array, uint64_t i, kd_gguf_value *out);

/* ---- tensors for kdispatch ------------------------------------------------------------ */

/* Makes a kdispatch tensor of rows = n_elements / ne[0], cols = ne[0]:
 *   Q4_K, Q6_K: a weight that borrows the mapped bytes (kd_tensor_quant_borrow; no copy),
 *               so g must stay open while the tensor lives. The bytes are copied only if
 *               they are not 4-byte aligned in memory (general.alignment below 4).
 *   F32:        an activation / norm weight, copied (kd_tensor_f32).
 * Other types: KD_ERR_TYPE. */
kd_status kd_gguf_tensor(kd_context *ctx, const kd_gguf *g, const kd_gguf_tensor_info *ti,
                         kd_tensor **out);
/* The same by tensor name; KD_ERR_ARG if there is no such tensor. */
kd_status kd_gguf_tensor_by_name(kd_context *ctx, const kd_gguf *g, const char *name,
                                 kd_tensor **out);

#ifdef __cplusplus
}
#endif
#endif /* KD_GGUF_H */
