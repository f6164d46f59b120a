/* Context: backend probing, errors, names. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kd_internal.h"

const char *kd_version(void) { return KD_VERSION_STRING; }

const char *kd_status_name(kd_status s)
{
    static const char *const names[KD_STATUS_COUNT] = {
        "KD_OK", "KD_ERR_NULL", "KD_ERR_SHAPE", "KD_ERR_ALIGN", "KD_ERR_ZERO_SIZE",
        "KD_ERR_TOO_LARGE", "KD_ERR_ARG", "KD_ERR_TYPE", "KD_ERR_NOMEM", "KD_ERR_UNAVAILABLE",
        "KD_ERR_BUILD", "KD_ERR_LAUNCH", "KD_ERR_IO", "KD_ERR_FORMAT", "KD_ERR_MISMATCH",
        "KD_ERR_UNSUPPORTED"};
    return (unsigned)s < KD_STATUS_COUNT ? names[s] : "KD_ERR_UNKNOWN";
}


/* Errors are per thread (kdispatch.h): each thread keeps the last message of each of the
 * few contexts it used most recently, so one thread's failure never overwrites, or races
 * with, what another thread reads. A slot names its context by address and serial number,
 * so a new context at a freed one's address does not inherit its messages. */
#define KD_ERROR_SLOTS 8
typedef struct error_slot {
    const kd_context *ctx;
    uint64_t serial;
    char msg[2048];
} error_slot;
static _Thread_local error_slot error_slots[KD_ERROR_SLOTS];
static _Thread_local unsigned error_slot_next;
static _Thread_local char error_snapshot[2048]; /* kd_last_error's copy of ctx->error */
static atomic_uint_fast64_t context_serial;

static error_slot *find_slot(const kd_context *ctx)
{
    for (int i = 0; i < KD_ERROR_SLOTS; i++)
        if (error_slots[i].ctx == ctx && error_slots[i].serial == ctx->serial)
            return &error_slots[i];
    return NULL;
}

static error_slot *slot_for(const kd_context *ctx)
{
    error_slot *e = find_slot(ctx);
    if (!e) {
        e = &error_slots[error_slot_next++ % KD_ERROR_SLOTS];
        e->ctx = ctx;
        e->serial = ctx->serial;
    }
    return e;
}

kd_status kd_error(kd_context *ctx, kd_status s, const char *fmt, ...)
{
    if (!ctx)
        return s;
    char msg[sizeof ctx->error]; /* an argument may be this thread's previous message */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(slot_for(ctx)->msg, msg, sizeof msg);
    pthread_mutex_lock(&ctx->error_lock);
    memcpy(ctx->error, msg, sizeof ctx->error);
    pthread_mutex_unlock(&ctx->error_lock);
    return s;
}

void kd_warn(kd_context *ctx, const char *fmt, ...)
{
    if (!ctx)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&ctx->error_lock);
    size_t used = strlen(ctx->warnings);
    if (used + strlen(line) + 2 <= sizeof ctx->warnings) /* a full buffer keeps the first */
        snprintf(ctx->warnings + used, sizeof ctx->warnings - used, "%s\n", line);
    pthread_mutex_unlock(&ctx->error_lock);
}

size_t kd_warnings(const kd_context *ctx, char *buf, size_t cap)
{
    if (!ctx)
        return 0;
    kd_context *c = (kd_context *)ctx; /* the lock is not part of the context's value */
    pthread_mutex_lock(&c->error_lock);
    size_t n = strlen(c->warnings);
    if (buf && cap)
        snprintf(buf, cap, "%s", c->warnings);
    pthread_mutex_unlock(&c->error_lock);
    return n;
}

/* A failed kd_context_create has no context to hold its message: it is kept per thread
 * and returned by kd_last_error(NULL). */
static _Thread_local char create_error[2304];

const char *kd_last_error(const kd_context *ctx)
{
    if (!ctx)
        return create_error;
    const error_slot *e = find_slot(ctx);
    if (e)
        return e->msg;
    /* this thread has had no error on ctx: a copy of the newest one of any thread */
    kd_context *c = (kd_context *)ctx;
    pthread_mutex_lock(&c->error_lock);
    memcpy(error_snapshot, c->error, sizeof error_snapshot);
    pthread_mutex_unlock(&c->error_lock);
    return error_snapshot;
}

static kd_status fail_create(kd_context *ctx, kd_status st, const char *what)
{
    snprintf(create_error, sizeof create_error, "%.200s%s", what, kd_last_error(ctx));
    kd_context_destroy(ctx);
    return st;
}

int kd_fault_hit(kd_context *ctx, kd_backend_id b, kd_fault_kind kind)
{
    return ctx && kd_fault_plan_hit(&ctx->fault, b, kind);
}

int kd_context_cpu_threads(const kd_context *ctx) { return ctx->settings.cpu_threads; }
const kd_settings *kd_context_settings(const kd_context *ctx) { return &ctx->settings; }

/* Returns the init status (KD_ERR_UNAVAILABLE when not built in or disabled). */
static kd_status probe_backend(kd_context *ctx, kd_backend_id b, int disabled)
{
    struct kd_backend_slot *s = &ctx->backend[b];
    s->ops = kd_backend_ops_of(b);
    s->init_status = KD_ERR_UNAVAILABLE;
    if (!s->ops) {
        snprintf(s->reason, sizeof s->reason, "no backend is registered with id %d", (int)b);
        return KD_ERR_UNAVAILABLE;
    }
    if (s->ops->not_built) {
        snprintf(s->reason, sizeof s->reason, "%s", s->ops->not_built);
        return KD_ERR_UNAVAILABLE;
    }
    if (disabled) {
        snprintf(s->reason, sizeof s->reason, "disabled by the context options");
        return KD_ERR_UNAVAILABLE;
    }
    char why[512] = "";
    kd_status st = s->init_status = s->ops->init(ctx, &s->state, why, sizeof why);
    if (st != KD_OK) {
        snprintf(s->reason, sizeof s->reason, "%.2000s", why[0] ? why : kd_last_error(ctx));
        s->state = NULL;
        return st;
    }
    s->available = 1;
    s->ops->describe(s->state, s->reason, sizeof s->reason);
    return KD_OK;
}

/* The offload backend present with the highest rank for its kind of device (each
 * backend's table says: cuda, then an OpenCL GPU, then an OpenCL CPU device); rank 0
 * is never chosen automatically. */
static kd_backend_id best_offload(const kd_context *ctx)
{
    kd_backend_id best = KD_BACKEND_AUTO;
    int best_rank = 0;
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        const struct kd_backend_slot *s = &ctx->backend[b];
        if (!s->available || !s->ops->is_offload)
            continue;
        int rank = s->ops->device[kd_backend_device_is_gpu(s->ops, s->state)].rank;
        if (rank > best_rank) {
            best = (kd_backend_id)b;
            best_rank = rank;
        }
    }
    return best;
}

/* Whether the context options turn backend b off. */
static int disabled_by(const kd_context_options *opts, kd_backend_id b)
{
    return opts && ((b == KD_BACKEND_OPENCL && opts->disable_opencl) ||
                    (b == KD_BACKEND_CUDA && opts->disable_cuda));
}

static kd_status load_config(kd_context *ctx)
{
    char why[512] = "";
    const kd_settings *set = &ctx->settings;
    kd_config_defaults(&ctx->config);
    kd_status st = set->config[0] ? kd_config_load_file(&ctx->config, set->config, why, sizeof why)
                                  : KD_OK;
    if (st != KD_OK) /* a missing file is KD_ERR_IO, a bad line KD_ERR_FORMAT */
        return kd_error(ctx, st, "config (%s): %s", set->config_from, why);
    if (kd_config_apply_env(&ctx->config, why, sizeof why) != KD_OK)
        return kd_error(ctx, KD_ERR_ARG, "environment: %s", why);
    if (kd_fault_plan_parse(getenv("KD_FAULT"), &ctx->fault, why, sizeof why) != KD_OK)
        return kd_error(ctx, KD_ERR_ARG, "KD_FAULT: %s", why);
    return KD_OK;
}

kd_status kd_context_create(const kd_context_options *opts, kd_context **out)
{
    if (!out)
        return KD_ERR_NULL;
    *out = NULL;
    create_error[0] = '\0';
    kd_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return KD_ERR_NOMEM;
    pthread_mutex_init(&ctx->error_lock, NULL);
    ctx->serial = atomic_fetch_add(&context_serial, 1) + 1;
    kd_metrics_init(&ctx->metrics);
    char why[512] = "";
    if (kd_settings_resolve(opts, &ctx->settings, why, sizeof why) != KD_OK) {
        kd_error(ctx, KD_ERR_ARG, "%s", why);
        return fail_create(ctx, KD_ERR_ARG, "");
    }
    kd_status st = load_config(ctx);
    if (st != KD_OK)
        return fail_create(ctx, st, "");
    /* the cpu backend is always built: its failure is a bad setting or no memory */
    st = probe_backend(ctx, KD_BACKEND_CPU, 0);
    if (st != KD_OK) {
        kd_error(ctx, st, "%s", ctx->backend[KD_BACKEND_CPU].reason);
        return fail_create(ctx, st, "cpu backend: ");
    }
    for (int b = 0; b < KD_BACKEND_COUNT; b++)
        if (b != KD_BACKEND_CPU)
            probe_backend(ctx, (kd_backend_id)b, disabled_by(opts, (kd_backend_id)b));
    ctx->best_offload = best_offload(ctx);
    /* Default thresholds depend on the device kind (PoCL on this CPU vs a GPU); values
     * from the config file or the environment are kept. */
    for (int b = 1; b < KD_BACKEND_COUNT; b++) {
        const struct kd_backend_slot *s = &ctx->backend[b];
        if (s->available && s->ops->is_gpu)
            kd_config_use_device_defaults(&ctx->config, (kd_backend_id)b,
                                          kd_backend_device_is_gpu(s->ops, s->state));
    }
    ctx->error[0] = '\0';
    error_slot *e = find_slot(ctx); /* probing's errors are in the reasons, not here */
    if (e)
        e->msg[0] = '\0';
    *out = ctx;
    return KD_OK;
}

void kd_context_destroy(kd_context *ctx)
{
    if (!ctx)
        return;
    for (int b = KD_BACKEND_COUNT - 1; b >= 0; b--)
        if (ctx->backend[b].available && ctx->backend[b].ops->shutdown)
            ctx->backend[b].ops->shutdown(ctx->backend[b].state);
    pthread_mutex_destroy(&ctx->error_lock);
    free(ctx);
}

int kd_backend_available(const kd_context *ctx, kd_backend_id b)
{
    return ctx && (unsigned)b < KD_BACKEND_COUNT && ctx->backend[b].available;
}

kd_status kd_backend_init_status(const kd_context *ctx, kd_backend_id b)
{
    if (!ctx || (unsigned)b >= KD_BACKEND_COUNT)
        return KD_ERR_ARG;
    return ctx->backend[b].available ? KD_OK : ctx->backend[b].init_status;
}

const char *kd_backend_reason(const kd_context *ctx, kd_backend_id b)
{
    if (!ctx || (unsigned)b >= KD_BACKEND_COUNT)
        return "unknown backend";
    return ctx->backend[b].reason;
}

unsigned kd_backend_gemv_paths(const kd_context *ctx, kd_backend_id b, unsigned *default_path)
{
    unsigned paths = 0, dflt = 0;
    if (kd_backend_available(ctx, b)) {
        const kd_backend_ops *ops = ctx->backend[b].ops;
        if (ops->gemv_paths)
            paths = ops->gemv_paths(ctx->backend[b].state, &dflt);
        else
            paths = dflt = KD_GEMV_EXACT;
    }
    if (default_path)
        *default_path = dflt;
    return paths;
}

void kd_metrics_get(const kd_context *ctx, kd_metrics_snapshot *out)
{
    if (ctx && out)
        kd_metrics_snapshot_of(&ctx->metrics, out);
}

void kd_metrics_reset(kd_context *ctx)
{
    if (ctx)
        kd_metrics_init(&ctx->metrics);
}

size_t kd_metrics_export(const kd_context *ctx, const char *format, char *buf, size_t cap)
{
    return ctx ? kd_metrics_export_to(&ctx->metrics, format, buf, cap) : 0;
}

/* ---- devices as data -------------------------------------------------------------- */

static const kd_backend_ops *device_backend(kd_backend_id b)
{
    return kd_backend_built(b) ? kd_backend_ops_of(b) : NULL;
}

int kd_device_count(kd_backend_id b)
{
    const kd_backend_ops *ops = device_backend(b);
    char why[256];
    int count = 0;
    if (!ops || !ops->device_info || ops->device_info(-1, NULL, &count, why, sizeof why) != KD_OK)
        return 0;
    return count;
}

kd_status kd_device_info_get(kd_backend_id b, int index, kd_device_info *out)
{
    const kd_backend_ops *ops = device_backend(b);
    char why[256];
    int count = 0;
    if (!out)
        return KD_ERR_NULL;
    memset(out, 0, sizeof *out);
    if (!ops || !ops->device_info)
        return KD_ERR_UNAVAILABLE;
    kd_status st = ops->device_info(index, out, &count, why, sizeof why);
    if (st != KD_OK)
        return st;
    if (index < 0 || index >= count)
        return KD_ERR_ARG;
    out->backend = b;
    out->index = index;
    return KD_OK;
}
