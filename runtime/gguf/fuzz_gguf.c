/*
 * libFuzzer target for the GGUF reader (build and run: runtime/gguf/README.md).
 *
 * Each input is parsed as a whole GGUF image; when the reader accepts it, everything it
 * hands out is walked (every key, every value, every array element recursively, every
 * tensor's data bytes), so a view that points outside the input is caught by ASan.
 * Refusals must come with a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kdispatch.h"

static volatile uint64_t sink; /* keeps the reads from being optimised away */

static void touch(const void *p, uint64_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0;
    for (uint64_t i = 0; i < n; i++)
        h = h * 31 + b[i];
    sink += h;
}

static void walk_value(const kd_gguf_value *v, int depth)
{
    if (depth > KD_GGUF_MAX_DEPTH + 1)
        abort(); /* the reader let through deeper nesting than it promises */
    switch (v->type) {
    case KD_GGUF_STRING:
        touch(v->v.s.data, v->v.s.len);
        break;
    case KD_GGUF_ARRAY: {
        touch(v->v.arr.data, v->v.arr.bytes);
        kd_gguf_array_iter it;
        kd_gguf_value e;
        uint64_t n = 0;
        kd_gguf_array_begin(v, &it);
        while (kd_gguf_array_next(&it, &e)) {
            walk_value(&e, depth + 1);
            n++;
        }
        if (n != v->v.arr.count)
            abort(); /* a validated array must decode to its count */
        if (n && !kd_gguf_array_get(v, n - 1, &e))
            abort();
        break;
    }
    default:
        sink += v->v.u;
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kd_gguf *g = NULL;
    char err[1024];
    kd_status st = kd_gguf_from_memory(data, size, &g, err, sizeof err);
    if (st != KD_OK) {
        if (g || err[0] == '\0')
            abort(); /* a refusal must leave no handle and say why */
        return 0;
    }
    for (uint64_t i = 0; i < kd_gguf_n_kv(g); i++) {
        const kd_gguf_kv *kv = kd_gguf_kv_at(g, i);
        touch(kv->key.data, kv->key.len);
        walk_value(&kv->value, 0);
    }
    for (uint64_t i = 0; i < kd_gguf_n_tensors(g); i++) {
        const kd_gguf_tensor_info *t = kd_gguf_tensor_at(g, i);
        touch(t->name.data, t->name.len);
        if (!kd_ggml_type_name(t->ggml_type) || t->file_offset % kd_gguf_alignment(g) != 0)
            abort();
        if (t->nbytes)
            touch(t->data, t->nbytes);
    }
    int64_t iv;
    double fv;
    kd_gguf_str sv;
    sink += (uint64_t)kd_gguf_get_int(g, "general.alignment", &iv);
    sink += (uint64_t)kd_gguf_get_float(g, "general.alignment", &fv);
    sink += (uint64_t)kd_gguf_get_string(g, "general.architecture", &sv);
    kd_gguf_close(g);
    return 0;
}
