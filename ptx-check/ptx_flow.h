/*
 * Data flow over parsed PTX (internal to ptx-check): a control-flow graph per function,
 * reaching definitions and def-use chains over it, and a taint analysis on the chains
 * that the parity rules read:
 *   - the batch index (a read of %ctaid.y/%ctaid.z, or a loaded m_dim parameter that
 *     bounds a loop) reaching the address of a global access (rule 1);
 *   - shared-memory addresses (from .shared symbols, cvta) reaching a shared or generic
 *     access through a 64-bit register, or computed in 64 bits (rule 2).
 * Registers are resolved with PTX's block scoping; values are followed through moves,
 * arithmetic, local-memory slots (st.local then ld.local of the same slot), .param slots
 * and calls: each .func gets a summary (which parameters reach a global address or a
 * 64-bit shared access, what its return values carry), computed once per module.
 */
#ifndef KD_PTX_FLOW_H
#define KD_PTX_FLOW_H

#include <stdint.h>

#include "ptx_check.h"

/* One finding inside a function (rule 2, a write to a special register). */
typedef struct flow_issue {
    int rule;
    int line;
    char detail[KD_PTX_TEXT_MAX];
} flow_issue;

typedef struct flow_summary flow_summary;

/* The analyses of one module, made on demand and kept (so each function is analysed
 * once however many kernels call it). */
typedef struct flow_module {
    const kd_ptx_module *m;
    flow_summary **sum; /* per function, NULL until analysed */
    struct flow_module *peers; /* every input module (this one among them), for callees
                                * declared .extern here and defined in another input */
    int n_peers;
} flow_module;

kd_status flow_module_init(flow_module *fm, const kd_ptx_module *m);
void flow_module_free(flow_module *fm);
/* Lets the n modules resolve each other's .extern .func declarations (-rdc builds): a
 * callee with no body in its caller's module is the one definition of that name in the
 * other inputs (none, or more than one: unresolved). */
void flow_link_modules(flow_module *fms, int n);

/* flow_issue.rule of a warning (not a violation): a call to a function defined in no
 * input, whose effects are not checked. */
#define FLOW_WARNING 0

/* What the analysis of one kernel (and every function it can reach) found. */
typedef struct flow_kernel {
    int batch_found;                  /* rule 1 holds */
    char mechanism[KD_PTX_NAME_MAX];  /* "ctaid.y", "ctaid.z", "param m_dim" */
    int mechanism_line;
    char path[KD_PTX_TEXT_MAX];       /* "12 -> 14 -> 20": instruction lines, seed to access */
    int shared_accesses;
    unsigned char *reach;             /* per function of the module: reachable from the kernel */
    int n_issues;
    flow_issue *issues;               /* the kernel's and its callees' */
    const kd_ptx_func **issue_func;   /* the function each issue is in */
    const kd_ptx_module **issue_mod;  /* and its module */
    int n_ext;                        /* reachable functions of other modules (.extern here) */
    const kd_ptx_module **ext_mod;
    int *ext_func;                    /* index into ext_mod[k]->funcs */
} flow_kernel;

/* m_dim: bit k when the kernel's parameter k is its batch size (flow_m_dim_params). */
kd_status flow_analyze_kernel(flow_module *fm, const kd_ptx_func *k, uint64_t m_dim,
                              flow_kernel *out);
void flow_kernel_free(flow_kernel *r);

/* 1 when a kernel parameter name denotes the batch size: exactly "m_dim" or ending in
 * "_m_dim" (case-sensitive; nvcc's "<kernel>_param_<i>" never matches). */
int flow_is_m_dim_param(const char *name);

/* The parameters of batched kernel b that are its batch size (bit k: parameter k): those
 * named by flow_is_m_dim_param; where none is and every name is the compiler's own
 * ("<kernel>_param_<i>", nvcc and clang), the 32-bit integer parameters b adds to the
 * single kernel's list (between their common prefix and suffix). single may be NULL
 * (names only). */
uint64_t flow_m_dim_params(const kd_ptx_func *single, const kd_ptx_func *b);

#endif /* KD_PTX_FLOW_H */
