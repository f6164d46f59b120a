/* Tensors and residency: a tensor's newest data lives on the backend that last wrote it;
 * it moves only when an op on another backend reads it or the host reads it back, and
 * every byte moved is counted in the metrics. */
#include <stdlib.h>
#include <string.h>

#include "host_mem.h"
#include "kd_internal.h"
#include "kd_quant.h"
#include "kd_row_groups.h"

/* Largest tensor we accept: keeps every byte count inside size_t and int64 arithmetic. */
#define KD_MAX_ELEMENTS (INT64_C(1) << 40)

static kd_status check_dims(kd_context *ctx, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0)
        return kd_error(ctx, KD_ERR_ZERO_SIZE, "tensor shape %lld x %lld: both must be > 0",
                        (long long)rows, (long long)cols);
    if (rows > KD_MAX_ELEMENTS / cols)
        return kd_error(ctx, KD_ERR_TOO_LARGE, "tensor shape %lld x %lld is too large",
                        (long long)rows, (long long)cols);
    return KD_OK;
}

static kd_tensor *tensor_new(kd_context *ctx, kd_type type, int64_t rows, int64_t cols,
                             size_t nbytes)
{
    kd_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ctx = ctx;
    t->type = type;
    t->rows = rows;
    t->cols = cols;
    t->nbytes = nbytes;
    t->valid[KD_BACKEND_CPU] = 1;
    return t;
}

kd_status kd_tensor_f32(kd_context *ctx, int64_t rows, int64_t cols, const float *data,
                        kd_tensor **out)
{
    if (!ctx || !out)
        return kd_error(ctx, KD_ERR_NULL, "kd_tensor_f32: NULL context or output");
    *out = NULL;
    kd_status st = check_dims(ctx, rows, cols);
    if (st != KD_OK)
        return st;
    size_t nbytes = (size_t)(rows * cols) * sizeof(float);
    kd_tensor *t = tensor_new(ctx, KD_TYPE_F32, rows, cols, nbytes);
    if (!t || !(t->host = kd_host_alloc(nbytes, ctx->settings.huge_pages))) {
        free(t);
        return kd_error(ctx, KD_ERR_NOMEM, "kd_tensor_f32: out of host memory (%zu bytes)", nbytes);
    }
    t->host_owned = 1;
    if (data)
        memcpy(t->host, data, nbytes);
    else
        memset(t->host, 0, nbytes);
    *out = t;
    return KD_OK;
}

static kd_status make_quant(kd_context *ctx, kd_type type, int64_t rows, int64_t cols,
                            const void *blocks, size_t nbytes, int borrow, kd_tensor **out)
{
    if (!ctx || !out || !blocks)
        return kd_error(ctx, KD_ERR_NULL, "kd_tensor_quant: NULL context, blocks or output");
    *out = NULL;
    if (type != KD_TYPE_Q4_K && type != KD_TYPE_Q6_K)
        return kd_error(ctx, KD_ERR_TYPE, "kd_tensor_quant: type %s is not a quantized type",
                        kd_type_name(type));
    kd_status st = check_dims(ctx, rows, cols);
    if (st != KD_OK)
        return st;
    if (cols % KD_QK_K != 0)
        return kd_error(ctx, KD_ERR_ALIGN, "kd_tensor_quant: K = %lld is not a multiple of 256",
                        (long long)cols);
    size_t need = (size_t)rows * kd_quant_row_bytes(type, cols);
    if (nbytes != need)
        return kd_error(ctx, KD_ERR_SHAPE,
                        "kd_tensor_quant: %lld x %lld %s needs %zu bytes, got %zu",
                        (long long)rows, (long long)cols, kd_type_name(type), need, nbytes);
    kd_tensor *t = tensor_new(ctx, type, rows, cols, nbytes);
    if (!t)
        return kd_error(ctx, KD_ERR_NOMEM, "kd_tensor_quant: out of host memory");
    /* the cpu kernels read blocks as structs: bytes at an address the structs cannot
     * take (a GGUF file with general.alignment = 1) are copied, not borrowed */
    if (borrow && (uintptr_t)blocks % _Alignof(kd_block_q4_K) == 0 &&
        (uintptr_t)blocks % _Alignof(kd_block_q6_K) == 0) {
        t->host = (void *)blocks;
    } else {
        if (!(t->host = kd_host_alloc(nbytes, ctx->settings.huge_pages))) {
            free(t);
            return kd_error(ctx, KD_ERR_NOMEM, "kd_tensor_quant: out of host memory (%zu bytes)", nbytes);
        }
        /* a copy of our own can take the cpu's layout; borrowed bytes keep the caller's */
        t->grouped_rows = kd_row_groups_rows(rows, cols);
        if (t->grouped_rows)
            kd_row_groups_pack(t->host, blocks, rows, cols / KD_QK_K, kd_quant_block_bytes(type),
                               t->grouped_rows);
        else
            memcpy(t->host, blocks, nbytes);
        t->host_owned = 1;
    }
    *out = t;
    return KD_OK;
}

kd_status kd_tensor_quant(kd_context *ctx, kd_type type, int64_t rows, int64_t cols,
                          const void *blocks, size_t nbytes, kd_tensor **out)
{
    return make_quant(ctx, type, rows, cols, blocks, nbytes, 0, out);
}

kd_status kd_tensor_quant_borrow(kd_context *ctx, kd_type type, int64_t rows, int64_t cols,
                                 const void *blocks, size_t nbytes, kd_tensor **out)
{
    return make_quant(ctx, type, rows, cols, blocks, nbytes, 1, out);
}

void kd_tensor_free(kd_tensor *t)
{
    if (!t)
        return;
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        struct kd_backend_slot *s = &t->ctx->backend[b];
        if (t->dev[b] && s->ops && s->ops->release)
            s->ops->release(s->state, t->dev[b]);
    }
    if (t->host_owned)
        free(t->host);
    free(t);
}

int64_t kd_tensor_rows(const kd_tensor *t) { return t ? t->rows : 0; }
int64_t kd_tensor_cols(const kd_tensor *t) { return t ? t->cols : 0; }
kd_type kd_tensor_type(const kd_tensor *t) { return t ? t->type : KD_TYPE_COUNT; }

/* Backends without device memory (the cpu, or a table whose alloc is NULL) run on the
 * host copy: for them the host copy is the one to keep current. */
static int on_host(const kd_tensor *t, kd_backend_id b)
{
    const kd_backend_ops *ops = t->ctx->backend[b].ops;
    return b == KD_BACKEND_CPU || !ops || !ops->alloc;
}

kd_backend_id kd_tensor_residency(const kd_tensor *t)
{
    if (!t)
        return KD_BACKEND_AUTO;
    /* A device copy is valid only if it is the newest (a host read-back keeps it valid
     * too): the tensor resides on that device until the host writes it. */
    for (int b = KD_BACKEND_COUNT - 1; b > 0; b--)
        if (t->valid[b])
            return (kd_backend_id)b;
    return KD_BACKEND_CPU;
}

void *kd_tensor_buffer(const kd_tensor *t, kd_backend_id b)
{
    return on_host(t, b) ? t->host : t->dev[b];
}

int64_t kd_tensor_buffer_groups(const kd_tensor *t, kd_backend_id b)
{
    return on_host(t, b) ? t->grouped_rows : 0;
}

/* Brings the host copy up to date from a device that holds the newest data. */
static kd_status sync_to_host(kd_context *ctx, kd_tensor *t)
{
    if (t->valid[KD_BACKEND_CPU])
        return KD_OK;
    for (int b = 1; b < KD_BACKEND_COUNT; b++) {
        if (!t->valid[b])
            continue;
        struct kd_backend_slot *s = &ctx->backend[b];
        kd_status st = s->ops->download(ctx, s->state, t->dev[b], t->host, t->nbytes);
        if (st != KD_OK)
            return st;
        kd_metrics_add_transfer(&ctx->metrics, 0, t->nbytes);
        t->valid[KD_BACKEND_CPU] = 1;
        return KD_OK;
    }
    return kd_error(ctx, KD_ERR_ARG, "tensor has no valid copy (internal error)");
}

/* The device buffer of t on b. Quantized weights never change after they are made, so
 * a device that can read host memory in place gets them that way (*in_place = 1, no
 * upload), unless they are in row groups, which only the cpu reads; everything else gets
 * a buffer of its own. */
static kd_status ensure_buffer(kd_context *ctx, kd_tensor *t, kd_backend_id b, int *in_place)
{
    *in_place = 0;
    if (on_host(t, b) || t->dev[b])
        return KD_OK;
    struct kd_backend_slot *s = &ctx->backend[b];
    if (kd_fault_hit(ctx, b, KD_FAULT_ALLOC))
        return kd_error(ctx, KD_ERR_NOMEM, "%s: injected allocation fault (KD_FAULT)",
                        kd_backend_name(b));
    if (t->type != KD_TYPE_F32 && !t->grouped_rows && s->ops->wrap_host) {
        kd_status st = s->ops->wrap_host(ctx, s->state, t->host, t->nbytes, &t->dev[b]);
        *in_place = st == KD_OK;
        if (st != KD_ERR_UNAVAILABLE)
            return st;
    }
    return s->ops->alloc(ctx, s->state, t->nbytes, &t->dev[b]);
}

/* Copies the host bytes to b's buffer; weights in row groups go back to GGUF order on the
 * way, through a buffer that lives for the upload only. */
static kd_status upload(kd_context *ctx, kd_tensor *t, kd_backend_id b)
{
    struct kd_backend_slot *s = &ctx->backend[b];
    if (!t->grouped_rows)
        return s->ops->upload(ctx, s->state, t->dev[b], t->host, t->nbytes);
    void *gguf = kd_host_alloc(t->nbytes, ctx->settings.huge_pages);
    if (!gguf)
        return kd_error(ctx, KD_ERR_NOMEM, "%s upload: out of host memory (%zu bytes)",
                        kd_backend_name(b), t->nbytes);
    kd_row_groups_unpack(gguf, t->host, t->rows, t->cols / KD_QK_K, kd_quant_block_bytes(t->type),
                         t->grouped_rows);
    kd_status st = s->ops->upload(ctx, s->state, t->dev[b], gguf, t->nbytes);
    free(gguf);
    return st;
}

kd_status kd_tensor_make_resident(kd_context *ctx, kd_tensor *t, kd_backend_id b)
{
    if (t->valid[b])
        return KD_OK;
    kd_status st = sync_to_host(ctx, t);
    if (st != KD_OK || on_host(t, b))
        return st;
    int in_place;
    if ((st = ensure_buffer(ctx, t, b, &in_place)) != KD_OK)
        return st;
    if (in_place) { /* nothing moved, nothing counted */
        t->valid[b] = 1;
        return KD_OK;
    }
    if ((st = upload(ctx, t, b)) != KD_OK)
        return st;
    kd_metrics_add_transfer(&ctx->metrics, 1, t->nbytes);
    t->valid[b] = 1;
    return KD_OK;
}

kd_status kd_tensor_prepare_output(kd_context *ctx, kd_tensor *t, kd_backend_id b)
{
    int in_place; /* outputs are f32: never in place */
    return ensure_buffer(ctx, t, b, &in_place);
}

void kd_tensor_mark_written(kd_tensor *t, kd_backend_id b)
{
    kd_backend_id holder = on_host(t, b) ? KD_BACKEND_CPU : b;
    for (int i = 0; i < KD_BACKEND_COUNT; i++)
        t->valid[i] = i == (int)holder;
}

kd_status kd_tensor_read(kd_context *ctx, kd_tensor *t, float *dst, size_t count)
{
    if (!ctx || !t || !dst)
        return kd_error(ctx, KD_ERR_NULL, "kd_tensor_read: NULL argument");
    if (t->ctx != ctx)
        return kd_error(ctx, KD_ERR_ARG, "kd_tensor_read: tensor belongs to another context");
    if (t->type != KD_TYPE_F32)
        return kd_error(ctx, KD_ERR_TYPE, "kd_tensor_read: tensor is %s, not f32", kd_type_name(t->type));
    if (count != (size_t)(t->rows * t->cols))
        return kd_error(ctx, KD_ERR_SHAPE, "kd_tensor_read: count %zu != %lld elements", count,
                        (long long)(t->rows * t->cols));
    kd_status st = sync_to_host(ctx, t);
    if (st != KD_OK)
        return st;
    memcpy(dst, t->host, t->nbytes);
    return KD_OK;
}

kd_status kd_tensor_write(kd_context *ctx, kd_tensor *t, const float *src, size_t count)
{
    if (!ctx || !t || !src)
        return kd_error(ctx, KD_ERR_NULL, "kd_tensor_write: NULL argument");
    if (t->ctx != ctx)
        return kd_error(ctx, KD_ERR_ARG, "kd_tensor_write: tensor belongs to another context");
    if (t->type != KD_TYPE_F32)
        return kd_error(ctx, KD_ERR_TYPE, "kd_tensor_write: tensor is %s, not f32", kd_type_name(t->type));
    if (count != (size_t)(t->rows * t->cols))
        return kd_error(ctx, KD_ERR_SHAPE, "kd_tensor_write: count %zu != %lld elements", count,
                        (long long)(t->rows * t->cols));
    memcpy(t->host, src, t->nbytes);
    kd_tensor_mark_written(t, KD_BACKEND_CPU);
    return KD_OK;
}
