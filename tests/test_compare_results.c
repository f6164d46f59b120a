/* ctest-labels: cpu;cli */
/* compare's structured results (kd_compare_collect): the checks a report hears, in order
 * (begin, every check, end), their fields (kernel, M, variant pair, errors, verdict), a
 * wrong variant and a variant that cannot run failing the verdict with their reasons, and
 * the JSON writer's document read back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare_core.h"
#include "fleet_json.h"
#include "kd_test_util.h"

static kd_context *ctx;

/* A report that counts what it hears and checks the order. */
typedef struct listener {
    int begins, checks, ends, out_of_order;
} listener;

static void on_begin(void *self, const kd_compare_result *r)
{
    listener *l = self;
    l->out_of_order |= l->checks || l->ends || r->nvariants < 2;
    l->begins++;
}

static void on_check(void *self, const kd_compare_result *r, const kd_compare_check *c)
{
    listener *l = self;
    l->out_of_order |= !l->begins || l->ends || c != &r->checks[r->nchecks - 1];
    l->checks++;
}

static void on_end(void *self, const kd_compare_result *r)
{
    listener *l = self;
    l->out_of_order |= l->checks != r->nchecks;
    l->ends++;
}

/* rmsnorm and Q4_K GEMV on the 0.5b shape at M = 1 and 4, on the cpu only. */
static void small_opts(kd_compare_opts *o)
{
    kd_compare_opts_init(o);
    o->shape = kd_model_shape_find("0.5b");
    o->use_op[KD_OP_RMSNORM] = o->use_op[KD_OP_Q4K_GEMV] = 1;
    o->use_backend[KD_BACKEND_CPU] = 1;
    o->m[0] = 1;
    o->m[1] = 4;
    o->nm = 2;
    o->seed = 3;
}

static int find_variant(const kd_compare_result *r, const char *name)
{
    for (int i = 0; i < r->nvariants; i++)
        if (strcmp(r->variants[i].name, name) == 0)
            return i;
    return -1;
}

static void test_checks_and_verdict(void)
{
    kd_compare_opts o;
    small_opts(&o);
    listener l = {0};
    kd_compare_report rep = {on_begin, on_check, on_end, &l};
    kd_compare_result r;
    CU_ASSERT_EQUAL_FATAL(kd_compare_collect(ctx, &o, &rep, &r), 0);
    CU_ASSERT_EQUAL(l.begins, 1);
    CU_ASSERT_EQUAL(l.ends, 1);
    CU_ASSERT_EQUAL(l.checks, r.nchecks);
    CU_ASSERT_FALSE(l.out_of_order);
    /* cpu-scalar, cpu (exact GEMV) and cpu-q8 (GEMV only) */
    int scalar = find_variant(&r, "cpu-scalar"), cpu = find_variant(&r, "cpu"),
        q8 = find_variant(&r, "cpu-q8");
    CU_ASSERT(scalar >= 0 && cpu >= 0 && q8 >= 0);
    CU_ASSERT(r.variants[q8].q8 && !r.variants[cpu].q8);
    /* per (op, M): rmsnorm 2 vs oracle + 1 pair; q4k_gemv 3 vs oracle + 1 pair */
    CU_ASSERT_EQUAL(r.nchecks, 2 * (3 + 4));
    int vs_oracle = 0, q8_checks = 0;
    for (int i = 0; i < r.nchecks; i++) {
        const kd_compare_check *c = &r.checks[i];
        CU_ASSERT(c->op == KD_OP_RMSNORM || c->op == KD_OP_Q4K_GEMV);
        CU_ASSERT(c->m == 1 || c->m == 4);
        CU_ASSERT(c->pass && c->status == KD_OK && !c->no_input && c->error[0] == '\0');
        CU_ASSERT(c->count == c->m * c->n && c->cmp.bad == 0 && isfinite(c->cmp.nmse));
        CU_ASSERT_PTR_NULL(c->tensor);
        vs_oracle += c->reference < 0;
        q8_checks += c->q8;
        CU_ASSERT(!c->q8 || (c->op == KD_OP_Q4K_GEMV && c->reference < 0));
    }
    CU_ASSERT_EQUAL(vs_oracle, 2 * (2 + 3));
    CU_ASSERT_EQUAL(q8_checks, 2);
    CU_ASSERT_EQUAL(kd_compare_failed(&r), 0);
    CU_ASSERT_TRUE(kd_compare_passed(&r));
    CU_ASSERT_STRING_EQUAL(r.shape.name, "0.5b");
    CU_ASSERT_PTR_NULL(r.gguf);
    kd_compare_result_free(&r);
}

/* The extra variant: wrong by 10 tolerances in one value of rmsnorm at M = 4, and no run
 * at all (an error status) for the Q4_K GEMV at M = 1. */
static kd_status faulty_run(kd_context *c, kd_problem *p, float *y, void *user)
{
    (void)user;
    if (p->d.op == KD_OP_Q4K_GEMV && p->m == 1)
        return KD_ERR_UNSUPPORTED;
    kd_status st = kd_run(c, &p->d, KD_BACKEND_CPU, KD_RUN_CPU_EXACT);
    if (st == KD_OK)
        st = kd_tensor_read(c, p->dst, y, (size_t)p->out_count);
    if (st == KD_OK && p->d.op == KD_OP_RMSNORM && p->m == 4)
        y[5] += (float)(10 * KD_TOLERANCE * fmax(1.0, fabs(y[5])));
    return st;
}

static void test_failures_have_reasons(void)
{
    kd_compare_opts o;
    small_opts(&o);
    kd_compare_extra_variant extra = {"faulty", faulty_run, NULL};
    o.extra = &extra;
    kd_compare_result r;
    CU_ASSERT_EQUAL_FATAL(kd_compare_collect(ctx, &o, NULL, &r), 0);
    int faulty = find_variant(&r, "faulty"), wrong = 0, not_run = 0;
    CU_ASSERT_FATAL(faulty >= 0);
    for (int i = 0; i < r.nchecks; i++) {
        const kd_compare_check *c = &r.checks[i];
        int involved = c->variant == faulty || c->reference == faulty;
        if (c->pass) {
            CU_ASSERT(!involved || c->op != KD_OP_RMSNORM || c->m != 4);
            continue;
        }
        CU_ASSERT(involved);
        if (c->op == KD_OP_RMSNORM) {
            CU_ASSERT(c->m == 4 && c->cmp.bad == 1 && c->cmp.first_bad == 5);
            CU_ASSERT(c->cmp.max_abs > KD_TOLERANCE);
            wrong++;
        } else {
            CU_ASSERT(c->m == 1 && c->reference < 0 && c->status == KD_ERR_UNSUPPORTED);
            not_run++;
        }
    }
    CU_ASSERT_EQUAL(wrong, 3); /* against the oracle, cpu-scalar and cpu */
    CU_ASSERT_EQUAL(not_run, 1);
    CU_ASSERT_EQUAL(kd_compare_failed(&r), 4);
    CU_ASSERT_FALSE(kd_compare_passed(&r));
    kd_compare_result_free(&r);
}

/* The JSON writer over the same failing run: the document parses and says so. */
static void test_json_writer(void)
{
    kd_compare_opts o;
    small_opts(&o);
    kd_compare_extra_variant extra = {"faulty", faulty_run, NULL};
    o.extra = &extra;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    kd_compare_writer w;
    kd_compare_report rep = kd_compare_json_writer(&w, f);
    kd_compare_result r;
    CU_ASSERT_EQUAL(kd_compare_collect(ctx, &o, &rep, &r), 0);
    fclose(f);
    char why[256] = "";
    fj *doc = fj_parse(buf, len, why, sizeof why);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_STRING_EQUAL(fj_str(fj_get(doc, "verdict"), ""), "FAIL");
    CU_ASSERT_EQUAL((int)fj_num(fj_get(doc, "failed"), -1), 4);
    CU_ASSERT_EQUAL(fj_len(fj_get(doc, "results")), r.nchecks);
    int statuses = 0;
    for (int i = 0; i < fj_len(fj_get(doc, "results")); i++) {
        const fj *c = fj_at(fj_get(doc, "results"), i);
        statuses += strcmp(fj_str(fj_get(c, "status"), ""), kd_status_name(KD_ERR_UNSUPPORTED)) == 0;
    }
    CU_ASSERT_EQUAL(statuses, 1);
    fj_free(doc);
    free(buf);
    kd_compare_result_free(&r);
}

/* Unusable options: 2, and the report hears nothing. */
static void test_unusable_inputs(void)
{
    kd_compare_opts o;
    small_opts(&o);
    o.gguf = "no-such-file.gguf";
    listener l = {0};
    kd_compare_report rep = {on_begin, on_check, on_end, &l};
    kd_compare_result r;
    CU_ASSERT_EQUAL(kd_compare_collect(ctx, &o, &rep, &r), 2);
    CU_ASSERT_EQUAL(l.begins + l.checks + l.ends, 0);
    kd_compare_result_free(&r);
    small_opts(&o);
    o.tol = NAN;
    CU_ASSERT_EQUAL(kd_compare_collect(ctx, &o, &rep, &r), 2);
    kd_compare_result_free(&r);
}

static int setup(void)
{
    kd_context_options co = {.disable_opencl = 1, .disable_cuda = 1}; /* the cpu is enough */
    return kd_context_create(&co, &ctx) == KD_OK ? 0 : 1;
}
static int teardown(void)
{
    kd_context_destroy(ctx);
    return 0;
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("compare_results", setup, teardown);
    CU_add_test(s, "checks, their order and the verdict", test_checks_and_verdict);
    CU_add_test(s, "a wrong and a failed variant fail with reasons", test_failures_have_reasons);
    CU_add_test(s, "the JSON writer's document", test_json_writer);
    CU_add_test(s, "unusable inputs: 2, nothing reported", test_unusable_inputs);
    return kd_test_main();
}
