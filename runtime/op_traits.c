/* Op traits and names: see op_traits.h. A leaf: no other kdispatch file is needed. */
#include "op_traits.h"

#include <stddef.h>
#include <strings.h>

#define KD_TRAITS_ROW(op, name, kind, wtype, single, batched) \
    [op] = {op, name, kind, wtype, {single, batched}},
static const kd_op_traits traits[KD_OP_COUNT] = {KD_OP_TABLE(KD_TRAITS_ROW)};
#undef KD_TRAITS_ROW

static const char *const type_names[KD_TYPE_COUNT] = {"f32", "q4_K", "q6_K"};

const kd_op_traits *kd_op_traits_of(kd_op op)
{
    return (unsigned)op < KD_OP_COUNT ? &traits[op] : NULL;
}

int kd_op_is_gemv(kd_op op)
{
    return (unsigned)op < KD_OP_COUNT && traits[op].kind == KD_KIND_GEMV;
}

const char *kd_op_kernel_name(kd_op op, int batched)
{
    return (unsigned)op < KD_OP_COUNT ? traits[op].kernel[batched != 0] : NULL;
}

kd_op kd_op_gemv_of_type(kd_type t)
{
    for (int op = 0; op < KD_OP_COUNT; op++)
        if (traits[op].kind == KD_KIND_GEMV && traits[op].weight_type == t)
            return (kd_op)op;
    return KD_OP_COUNT;
}

const char *kd_op_name(kd_op op) { return (unsigned)op < KD_OP_COUNT ? traits[op].name : "?"; }

kd_op kd_op_from_name(const char *s)
{
    for (int i = 0; s && i < KD_OP_COUNT; i++)
        if (strcasecmp(s, traits[i].name) == 0)
            return (kd_op)i;
    return KD_OP_COUNT;
}

const char *kd_type_name(kd_type t) { return (unsigned)t < KD_TYPE_COUNT ? type_names[t] : "?"; }
