/* kdispatch compare's model: a built-in shape, or a GGUF file's shapes (its <arch>.* keys,
 * with fallbacks from the tensors) and the Q4_K / Q6_K weights the GEMV checks run on. */
#include "compare_internal.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Text from the model file made safe for a terminal: every byte outside printable ASCII
 * (ESC and other controls, and any non-ASCII byte) becomes '?'. At most cap - 1 bytes. */
void compare_printable(char *dst, size_t cap, const char *src, uint64_t len)
{
    size_t n = 0;
    for (uint64_t i = 0; i < len && n + 1 < cap; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[n] = '\0';
}

static int value_as_int(const kd_gguf_value *v, int64_t *out)
{
    switch (v->type) {
    case KD_GGUF_INT8: case KD_GGUF_INT16: case KD_GGUF_INT32: case KD_GGUF_INT64:
        *out = v->v.i;
        return 1;
    case KD_GGUF_UINT8: case KD_GGUF_UINT16: case KD_GGUF_UINT32: case KD_GGUF_UINT64:
        if (v->v.u > (uint64_t)INT64_MAX)
            return 0;
        *out = (int64_t)v->v.u;
        return 1;
    default:
        return 0;
    }
}

/* "<arch>.<suffix>" as a positive integer; a per-layer array gives its first layer's. */
static int arch_int(const model_src *s, const char *suffix, int64_t *out)
{
    char key[192];
    snprintf(key, sizeof key, "%s.%s", s->arch, suffix);
    const kd_gguf_kv *kv = kd_gguf_find(s->g, key);
    kd_gguf_value first;
    if (!kv)
        return 0;
    if (kv->value.type == KD_GGUF_ARRAY)
        return kd_gguf_array_get(&kv->value, 0, &first) && value_as_int(&first, out) && *out > 0;
    return value_as_int(&kv->value, out) && *out > 0;
}

static int arch_float(const model_src *s, const char *suffix, double *out)
{
    char key[192];
    snprintf(key, sizeof key, "%s.%s", s->arch, suffix);
    return kd_gguf_get_float(s->g, key, out) && *out > 0;
}

static int name_ends_with(const kd_gguf_tensor_info *ti, const char *z)
{
    size_t n = strlen(z);
    return ti->name.len >= n && memcmp(ti->name.data + ti->name.len - n, z, n) == 0;
}

static int is_gemv_weight(const kd_gguf_tensor_info *ti)
{
    kd_type t = kd_gguf_kd_type(ti->ggml_type);
    return t == KD_TYPE_Q4_K || t == KD_TYPE_Q6_K;
}

/* The row length of the token embedding or else of the first GEMV weight: the hidden
 * size when the file does not say it. */
static int64_t guess_hidden(const kd_gguf *g)
{
    const kd_gguf_tensor_info *te = kd_gguf_find_tensor(g, "token_embd.weight");
    if (te)
        return (int64_t)te->ne[0];
    for (uint64_t i = 0; i < kd_gguf_n_tensors(g); i++)
        if (is_gemv_weight(kd_gguf_tensor_at(g, i)))
            return (int64_t)kd_gguf_tensor_at(g, i)->ne[0];
    return 0;
}

/* Architectures whose rope rotates (x[i], x[i + D/2]) (llama.cpp's NEOX rope type). */
static int arch_uses_neox(const char *arch)
{
    static const char *const neox[] = {"qwen2", "qwen2moe", "qwen3", "qwen3moe", "gptneox",
                                       "phi2", "phi3", "stablelm", "falcon", "gemma", "gemma2",
                                       "gemma3", "olmo2", "starcoder2"};
    for (size_t i = 0; i < sizeof neox / sizeof *neox; i++)
        if (strcmp(arch, neox[i]) == 0)
            return 1;
    return 0;
}

/* Hidden, intermediate, heads and head size from the file's <arch>.* keys, with
 * fallbacks from the tensors' shapes; -1 if no usable shape can be found. */
static int read_gguf_shape(run_state *s)
{
    model_src *src = &s->src;
    kd_gguf_str a;
    snprintf(src->arch, sizeof src->arch, "llama");
    if (kd_gguf_get_string(src->g, "general.architecture", &a) && a.len > 0)
        compare_printable(src->arch, sizeof src->arch, a.data, a.len);
    int64_t hidden = 0, ffn = 0, heads = 0, head_dim = 0;
    if (!arch_int(src, "embedding_length", &hidden)) {
        hidden = guess_hidden(src->g);
        compare_note(s, "%s.embedding_length absent: hidden %" PRId64 " from the tensors' row length",
             src->arch, hidden);
    }
    if (hidden <= 0 || hidden > (1 << 24)) {
        fprintf(stderr, "kdispatch compare: %s: no usable hidden size (%s.embedding_length)\n",
                s->o->gguf, src->arch);
        return -1;
    }
    if (!arch_int(src, "feed_forward_length", &ffn)) {
        const kd_gguf_tensor_info *up = kd_gguf_find_tensor(src->g, "blk.0.ffn_up.weight");
        ffn = up && up->n_dims >= 2 ? (int64_t)up->ne[1] : 4 * hidden;
        compare_note(s, "%s.feed_forward_length absent: intermediate %" PRId64 " (%s)", src->arch, ffn,
             up ? "blk.0.ffn_up.weight's rows" : "assumed 4 x hidden");
    }
    int have_heads = arch_int(src, "attention.head_count", &heads);
    if (!arch_int(src, "rope.dimension_count", &head_dim) &&
        !arch_int(src, "attention.key_length", &head_dim))
        head_dim = have_heads && hidden % heads == 0 ? hidden / heads
                                                     : (hidden % 128 == 0 ? 128 : 64);
    if (!have_heads) {
        heads = hidden / head_dim > 0 ? hidden / head_dim : 1;
        compare_note(s, "%s.attention.head_count absent: %" PRId64 " heads of %" PRId64 " assumed",
             src->arch, heads, head_dim);
    }
    if (head_dim % 2 || heads > 4096 || head_dim > 65536 || ffn > (1 << 26)) {
        fprintf(stderr, "kdispatch compare: %s: unusable shape: %" PRId64 " heads of %" PRId64
                " (head size must be even), intermediate %" PRId64 "\n",
                s->o->gguf, heads, head_dim, ffn);
        return -1;
    }
    src->shape = (kd_model_shape){"gguf", src->arch, hidden, ffn, (int)heads, (int)head_dim};
    if (!arch_float(src, "attention.layer_norm_rms_epsilon", &src->eps))
        src->eps = 1e-5;
    if (!arch_float(src, "rope.freq_base", &src->rope_base))
        src->rope_base = 10000.0;
    src->rope_from_file = 1;
    src->rope_mode = arch_uses_neox(src->arch) ? KD_ROPE_NEOX : KD_ROPE_NORMAL;
    return 0;
}

/* The first F32 norm weight of `hidden` values: rmsnorm runs with the model's weights. */
static void find_norm_weight(model_src *src)
{
    const kd_gguf_tensor_info *ti = kd_gguf_find_tensor(src->g, "blk.0.attn_norm.weight");
    if (ti && ti->ggml_type == KD_GGML_TYPE_F32 && (int64_t)ti->n_elements == src->shape.hidden) {
        src->norm = ti;
        return;
    }
    for (uint64_t i = 0; i < kd_gguf_n_tensors(src->g); i++) {
        ti = kd_gguf_tensor_at(src->g, i);
        if (ti->ggml_type == KD_GGML_TYPE_F32 && name_ends_with(ti, "norm.weight") &&
            (int64_t)ti->n_elements == src->shape.hidden) {
            src->norm = ti;
            return;
        }
    }
}

/* The weights named with --tensor; -1 (message printed) if one is missing or not K-quant. */
static int pick_named_weights(run_state *s)
{
    model_src *src = &s->src;
    for (int i = 0; i < s->o->ntensors; i++) {
        const kd_gguf_tensor_info *ti = kd_gguf_find_tensor(src->g, s->o->tensors[i]);
        if (!ti) {
            fprintf(stderr, "kdispatch compare: %s has no tensor '%s' (kdispatch gguf %s lists "
                    "them)\n", s->o->gguf, s->o->tensors[i], s->o->gguf);
            return -1;
        }
        if (!is_gemv_weight(ti)) {
            fprintf(stderr, "kdispatch compare: tensor '%s' is %s: compare runs Q4_K and Q6_K "
                    "weights\n", s->o->tensors[i], kd_ggml_type_name(ti->ggml_type));
            return -1;
        }
        if (!compare_op_selected(s->o, compare_gemv_op_of(kd_gguf_kd_type(ti->ggml_type)))) {
            compare_note(s, "tensor '%s' skipped: its op is not among --op", s->o->tensors[i]);
            continue;
        }
        src->weights[src->nweights++] = ti;
    }
    return 0;
}

/* Without --tensor: up to max_tensors weights in file order, alternating Q4_K and Q6_K so
 * that both kernels meet real weights when the file has both. */
static void pick_default_weights(run_state *s)
{
    model_src *src = &s->src;
    uint64_t next[2] = {0, 0}, n = kd_gguf_n_tensors(src->g);
    const kd_type types[2] = {KD_TYPE_Q4_K, KD_TYPE_Q6_K};
    int max = s->o->max_tensors < KD_COMPARE_MAX_TENSORS ? s->o->max_tensors
                                                         : KD_COMPARE_MAX_TENSORS;
    for (int turn = 0, stalled = 0; src->nweights < max && stalled < 2; turn ^= 1) {
        const kd_gguf_tensor_info *found = NULL;
        if (compare_op_selected(s->o, compare_gemv_op_of(types[turn])))
            for (; next[turn] < n && !found; next[turn]++) {
                const kd_gguf_tensor_info *ti = kd_gguf_tensor_at(src->g, next[turn]);
                if (kd_gguf_kd_type(ti->ggml_type) == types[turn])
                    found = ti;
            }
        stalled = found ? 0 : stalled + 1;
        if (found)
            src->weights[src->nweights++] = found;
    }
}

int compare_open_model(run_state *s)
{
    const kd_compare_opts *o = s->o;
    if (!o->gguf) {
        s->src.shape = *o->shape;
        s->src.eps = 1e-5;
        s->src.rope_base = 10000.0;
        return 0;
    }
    if (kd_gguf_open(s->ctx, o->gguf, &s->src.g) != KD_OK) {
        fprintf(stderr, "kdispatch compare: %s\n", kd_last_error(s->ctx));
        return -1;
    }
    if (read_gguf_shape(s))
        return -1;
    find_norm_weight(&s->src);
    for (uint64_t i = 0; i < kd_gguf_n_tensors(s->src.g); i++)
        s->src.n_candidates += is_gemv_weight(kd_gguf_tensor_at(s->src.g, i));
    if (o->ntensors > 0)
        return pick_named_weights(s);
    pick_default_weights(s);
    return 0;
}

