/*
 * PTX parity validator (SPEC §6, contract equation ptx_parity). For each pair of kernels
 * (single-row, batched) found in one or more parsed PTX modules, by data flow over each
 * function's control-flow graph (ptx_flow.h; README.md says exactly what counts):
 *   rule 1 batch-dispatch: in the batched kernel, the batch index (a read of %ctaid.y or
 *          %ctaid.z, or a loaded m_dim parameter bounding the row loop) reaches the
 *          address of a global load or store on a path from the entry;
 *   rule 2 shared-u64: no shared-memory access goes through a 64-bit address (a 64-bit
 *          register, a generic pointer into shared memory, or a shared address computed
 *          in 64 bits), in either kernel or a function they call;
 *   rule 3 shared-size: both kernels use the same static shared memory, and both or
 *          neither dynamic shared memory.
 * A pair whose kernels are not found is reported (rule 4 kernel-missing) and fails; a
 * pair member defined twice in a module (6), a .func pair member (7) and a write to a
 * special register (8) are errors. With a ptxas resource report, spills and a batched
 * kernel that uses more than reg_factor times the registers of the single one are
 * warnings (rule 5 ptxas when strict). Zero pairs compared is never a pass.
 */
#ifndef KD_PTX_CHECK_H
#define KD_PTX_CHECK_H

#include <stdio.h>

#include "ptx_parse.h"

#define KD_PTX_NAME_MAX 256
#define KD_PTX_TEXT_MAX 1024 /* details, warnings, notes */

typedef enum kd_ptx_rule {
    KD_PTX_RULE_BATCH_DISPATCH = 1,
    KD_PTX_RULE_SHARED_U64 = 2,
    KD_PTX_RULE_SHARED_SIZE = 3,
    KD_PTX_RULE_MISSING = 4,
    KD_PTX_RULE_PTXAS = 5,
    KD_PTX_RULE_DUPLICATE = 6,     /* a pair member defined twice in one module */
    KD_PTX_RULE_NOT_KERNEL = 7,    /* a pair member that is a .func, not an .entry */
    KD_PTX_RULE_SPECIAL_WRITE = 8  /* a write to a special register (%ctaid.y, ...) */
} kd_ptx_rule;

/* "batch-dispatch", "shared-u64", "shared-size", "kernel-missing", "ptxas",
 * "duplicate-definition", "not-a-kernel", "special-register-write" */
const char *kd_ptx_rule_name(int rule);

/* A pair of kernel names. label names the op ("rmsnorm"). */
typedef struct kd_ptx_pair_def {
    const char *label;
    const char *single;
    const char *batched;
} kd_ptx_pair_def;

/* The six pairs of SPEC §2 with kdispatch's kernel names. */
#define KD_PTX_BUILTIN_PAIRS 6
extern const kd_ptx_pair_def kd_ptx_builtin_pairs[KD_PTX_BUILTIN_PAIRS];

typedef struct kd_ptx_violation {
    int rule;                       /* kd_ptx_rule */
    char kernel[KD_PTX_NAME_MAX];
    char file[KD_PTX_NAME_MAX];
    int line;                       /* 0 when not tied to a line */
    char text[KD_PTX_NAME_MAX];     /* that PTX line, trimmed */
    char detail[KD_PTX_TEXT_MAX];   /* why it breaks the rule */
} kd_ptx_violation;

/* One kernel's numbers from ptxas -v. */
typedef struct kd_ptx_resources {
    int valid;
    int registers;
    int spill_store_bytes, spill_load_bytes;
    int shared_bytes;
    int local_bytes;   /* stack frame / lmem */
} kd_ptx_resources;

/* What the checker found out about one kernel. */
typedef struct kd_ptx_kernel_facts {
    char name[KD_PTX_NAME_MAX];
    char file[KD_PTX_NAME_MAX];
    char target[32];
    int found;                        /* defined (with a body) in file */
    int line;                         /* line of .entry */
    char mechanism[KD_PTX_NAME_MAX];  /* "ctaid.y", "ctaid.z", "param NAME", "" if none */
    int mechanism_line;               /* the global access the batch index reaches */
    char mechanism_path[KD_PTX_TEXT_MAX]; /* instruction lines, batch index to that access */
    unsigned long long static_shared_bytes;
    int dynamic_shared;               /* uses an extern (unsized) .shared array */
    int shared_accesses;              /* instructions that access shared memory */
    kd_ptx_resources res;
} kd_ptx_kernel_facts;

/* Analyses one kernel (and the functions it calls) on its own: its facts and its rule-2
 * violations. *viol is malloc'ed (free it), *n_viol its count. */
kd_status kd_ptx_analyze_kernel(const kd_ptx_module *m, const kd_ptx_func *f,
                                kd_ptx_kernel_facts *facts, kd_ptx_violation **viol,
                                int *n_viol);

/* Shared-address provenance of a function's registers: a flow-insensitive view by
 * register name, kept for tools and tests; the rules use the data flow of ptx_flow.h. */
enum {
    KD_PTX_PROV_SHARED = 1u,         /* holds an address in the shared window */
    KD_PTX_PROV_GENERIC_SHARED = 2u  /* holds a generic address that points into shared */
};
typedef struct kd_ptx_prov kd_ptx_prov;
kd_status kd_ptx_prov_compute(const kd_ptx_module *m, const kd_ptx_func *f, kd_ptx_prov **out);
/* KD_PTX_PROV_* bits of reg (0: no shared address); *origin_line (may be NULL) gets the
 * line of the instruction that first gave it one. */
unsigned kd_ptx_prov_of(const kd_ptx_prov *p, const char *reg, int *origin_line);
void kd_ptx_prov_free(kd_ptx_prov *p);

/* ---- ptxas ------------------------------------------------------------------------------ */

typedef struct kd_ptx_res_entry {
    char name[KD_PTX_NAME_MAX];
    kd_ptx_resources res;
} kd_ptx_res_entry;

typedef struct kd_ptx_ptxas_result {
    int ok;                 /* ptxas ran and accepted the module */
    char arch[32];
    char why[512];          /* when !ok: what went wrong */
    int n;
    kd_ptx_res_entry *entries;
} kd_ptx_ptxas_result;

/* Finds ptxas: explicit (if not NULL) must be executable; else $KD_PTXAS, ptxas on PATH,
 * then the one found at configure time. Returns 0 with the path in out, -1 if none. */
int kd_ptx_ptxas_find(const char *explicit_path, char *out, size_t cap);
/* Runs "ptxas -arch=ARCH -v" (no shell) on the module's text and reads the resource
 * report into out (free with kd_ptx_ptxas_result_free). A failure of ptxas is reported in
 * out->why with out->ok = 0 and KD_OK returned; KD_ERR_* only for a failure to run. */
kd_status kd_ptx_ptxas_run(const char *ptxas, const char *arch, const kd_ptx_module *m,
                           kd_ptx_ptxas_result *out);
/* Reads ptxas -v output text into out (appends entries). Returns 0, -1 without memory. */
int kd_ptx_ptxas_parse_output(const char *text, kd_ptx_ptxas_result *out);
void kd_ptx_ptxas_result_free(kd_ptx_ptxas_result *r);

/* ---- the pair check and its report ------------------------------------------------------ */

typedef struct kd_ptx_check_options {
    double reg_factor; /* warn above batched/single register ratio; <= 0 means 1.5 */
    int strict;        /* warnings fail the pair */
} kd_ptx_check_options;

typedef struct kd_ptx_comparison {
    kd_ptx_kernel_facts single, batched;
    int passed;
    int n_violations, n_warnings;
    kd_ptx_violation *violations;
    char (*warnings)[KD_PTX_TEXT_MAX];
} kd_ptx_comparison;

typedef struct kd_ptx_pair_result {
    char label[64];
    char single[KD_PTX_NAME_MAX];
    char batched[KD_PTX_NAME_MAX];
    int compared;      /* at least one comparison was made */
    int passed;        /* compared and every comparison passed */
    int n_comparisons;
    kd_ptx_comparison *comparisons;
    char missing[KD_PTX_TEXT_MAX]; /* why it was not compared */
} kd_ptx_pair_result;

typedef struct kd_ptx_report {
    int n_pairs, n_passed, n_compared;
    kd_ptx_pair_result *pairs;
    int n_notes, n_errors;
    char (*notes)[KD_PTX_TEXT_MAX];   /* e.g. "ptxas not found: no resource report" */
    char (*errors)[KD_PTX_TEXT_MAX];  /* input errors (a file that did not parse); any fails the run */
    double reg_factor;
    int strict;
} kd_ptx_report;

/* Checks every pair against the modules; ptxas results (res, may be NULL or hold NULL
 * entries) run parallel to mods. Every definition of each pair member in every module is
 * compared, independent of the modules' order: within each module that defines both,
 * and across modules for a module that defines only one (README.md, Pairing). */
kd_status kd_ptx_check_pairs(const kd_ptx_module *const *mods,
                             const kd_ptx_ptxas_result *const *res, int n_mods,
                             const kd_ptx_pair_def *pairs, int n_pairs,
                             const kd_ptx_check_options *opt, kd_ptx_report **out);
void kd_ptx_report_free(kd_ptx_report *r);
kd_status kd_ptx_report_add_note(kd_ptx_report *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
kd_status kd_ptx_report_add_error(kd_ptx_report *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* 1 when at least one pair was compared, every pair passed, and there were no errors. */
int kd_ptx_report_ok(const kd_ptx_report *r);
/* "N/M kernel pairs passed PTX parity" */
void kd_ptx_report_summary(const kd_ptx_report *r, char *buf, size_t cap);
void kd_ptx_report_print_text(const kd_ptx_report *r, FILE *out);
void kd_ptx_report_print_json(const kd_ptx_report *r, FILE *out);

/* ---- the command ------------------------------------------------------------------------- */

/* `kdispatch ptx-check [options] [FILE.ptx ...]` with argv[0] the command's name; writes
 * the report to out and diagnostics to err. Exit status: 0 every pair passed (and at least
 * one was compared), 1 a pair failed / no pairs compared / an input error, 2 usage. */
int kd_ptx_check_main(int argc, char **argv, FILE *out, FILE *err);
/* The same on stdout/stderr: the entry `kdispatch ptx-check` calls. */
int kd_cmd_ptx_check(int argc, char **argv);

#endif /* KD_PTX_CHECK_H */
