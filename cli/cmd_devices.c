/* kdispatch devices: every backend, present or not and why, and every device it sees. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "env.h" /* kd_settings */
#include "kd_json.h"
#include "kd_backend.h"
#include "kdispatch.h"

/* Every device of every backend, from kd_device_count / kd_device_info_get. */
static void print_device_table(void)
{
    printf("\n%-7s %3s %-5s %-6s %5s %9s  %-40s %s\n", "backend", "#", "kind", "usable",
           "units", "memory", "name", "vendor / platform / driver");
    for (int b = 0; b < kd_backend_count(); b++) {
        int n = kd_device_count((kd_backend_id)b);
        for (int i = 0; i < n; i++) {
            kd_device_info d;
            if (kd_device_info_get((kd_backend_id)b, i, &d) != KD_OK)
                continue;
            printf("%-7s %3d %-5s %-6s %5d %7.1f G  %-40.40s %s%s%s / %s\n",
                   kd_backend_name(d.backend), d.index, d.is_gpu ? "gpu" : "cpu",
                   d.usable ? "yes" : "no", d.compute_units,
                   (double)d.global_mem_bytes / (1024.0 * 1024.0 * 1024.0), d.name, d.vendor,
                   d.platform[0] ? " / " : "", d.platform, d.driver_version);
        }
    }
}

static void print_text(const kd_context *ctx)
{
    printf("kdispatch %s\n\n%-8s %-10s %s\n", kd_version(), "backend", "status", "device / reason");
    for (int b = 0; b < kd_backend_count(); b++)
        printf("%-8s %-10s %s\n", kd_backend_name(b),
               kd_backend_available(ctx, b) ? "present" : "absent", kd_backend_reason(ctx, b));
    print_device_table();
}

static void print_device_json(kd_json *w, const kd_device_info *d)
{
    kd_json_begin_object(w);
    kd_json_key_str(w, "backend", kd_backend_name(d->backend));
    kd_json_key_int(w, "index", d->index);
    kd_json_key_str(w, "name", d->name);
    kd_json_key_str(w, "vendor", d->vendor);
    kd_json_key_str(w, "platform", d->platform);
    kd_json_key_str(w, "driver_version", d->driver_version);
    kd_json_key_bool(w, "is_gpu", d->is_gpu);
    kd_json_key_bool(w, "usable", d->usable);
    kd_json_key_int(w, "global_mem_bytes", (long long)d->global_mem_bytes);
    kd_json_key_int(w, "compute_units", d->compute_units);
    kd_json_end_object(w);
}

/* "gemv_paths": the GEMV paths backend b offers, default first; "gemv_default": the one a
 * call without a path flag takes. Only for a backend that is present. */
static void print_gemv_paths_json(kd_json *w, const kd_context *ctx, kd_backend_id b)
{
    unsigned dflt, paths = kd_backend_gemv_paths(ctx, b, &dflt);
    if (!paths)
        return;
    const unsigned order[2] = {dflt, dflt == KD_GEMV_Q8 ? KD_GEMV_EXACT : KD_GEMV_Q8};
    kd_json_key(w, "gemv_paths");
    kd_json_begin_array(w);
    for (int i = 0; i < 2; i++)
        if (paths & order[i])
            kd_json_str(w, order[i] == KD_GEMV_Q8 ? "q8" : "exact");
    kd_json_end_array(w);
    kd_json_key_str(w, "gemv_default", dflt == KD_GEMV_Q8 ? "q8" : "exact");
}

/* The cpu backend's "threads" and "threads_from": what set them ("online", "affinity",
 * "cgroup quota": one per CPU the process may use; else "KD_CPU_THREADS" or
 * "kd_context_options.cpu_threads"). */
static void print_threads_json(kd_json *w, const kd_context *ctx, kd_backend_id b)
{
    if (b != KD_BACKEND_CPU || !kd_backend_available(ctx, b))
        return;
    const kd_settings *s = kd_context_settings(ctx);
    kd_json_key_int(w, "threads", kd_context_cpu_threads(ctx));
    kd_json_key_str(w, "threads_from", s->cpu_threads_from ? s->cpu_threads_from : "online");
}

static void print_json(const kd_context *ctx)
{
    kd_json w;
    kd_json_init(&w, stdout);
    kd_json_begin_object(&w);
    kd_json_key_str(&w, "version", kd_version());
    kd_json_key(&w, "backends");
    kd_json_begin_array(&w);
    for (int b = 0; b < kd_backend_count(); b++) {
        kd_json_begin_object(&w);
        kd_json_key_str(&w, "name", kd_backend_name(b));
        kd_json_key_bool(&w, "present", kd_backend_available(ctx, b));
        kd_json_key_str(&w, "detail", kd_backend_reason(ctx, b));
        print_gemv_paths_json(&w, ctx, b);
        print_threads_json(&w, ctx, b);
        kd_json_key(&w, "devices");
        kd_json_begin_array(&w);
        int n = kd_device_count((kd_backend_id)b);
        for (int i = 0; i < n; i++) {
            kd_device_info d;
            if (kd_device_info_get((kd_backend_id)b, i, &d) == KD_OK)
                print_device_json(&w, &d);
        }
        kd_json_end_array(&w);
        kd_json_end_object(&w);
    }
    kd_json_end_array(&w);
    kd_json_end_object(&w);
    kd_json_finish(&w);
}

int kd_cmd_devices(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (kd_cli_is_help(argv[i])) {
            printf("usage: kdispatch devices [--json]\n\n"
                   "Lists the cpu, opencl and cuda backends: present with the device in use, or\n"
                   "absent with the reason; then a table of every device each backend sees\n"
                   "(kd_device_info_get); its '#' is the index KD_OPENCL_DEVICE / KD_CUDA_DEVICE\n"
                   "take. With --json, each present backend also lists its GEMV paths\n"
                   "(\"gemv_paths\", the default first, and \"gemv_default\": q8 or exact;\n"
                   "KD_CPU_GEMV, KD_OPENCL_GEMV choose), and the cpu its \"threads\" and\n"
                   "\"threads_from\": online, affinity or cgroup quota (one per CPU the process\n"
                   "may use), KD_CPU_THREADS or kd_context_options.cpu_threads.\n"
                   "Environment: KD_OPENCL_PLATFORM, KD_OPENCL_DEVICE (index or name\n"
                   "substring), KD_CUDA_DEVICE, KD_CPU_THREADS.\n");
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else {
            fprintf(stderr, "kdispatch devices: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    kd_context *ctx = kd_cli_context("kdispatch");
    if (!ctx)
        return 1;
    if (json)
        print_json(ctx);
    else
        print_text(ctx);
    kd_context_destroy(ctx);
    return 0;
}
