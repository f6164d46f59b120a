/* kdispatch devices: every backend, present or not and why, and every device it sees. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "kd_backend.h"

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void print_text(const kd_context *ctx)
{
    printf("kdispatch %s\n\n%-8s %-10s %s\n", kd_version(), "backend", "status", "device / reason");
    for (int b = 0; b < KD_BACKEND_COUNT; b++)
        printf("%-8s %-10s %s\n", kd_backend_name(b),
               kd_backend_available(ctx, b) ? "present" : "absent", kd_backend_reason(ctx, b));
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        const kd_backend_ops *ops = kd_backend_table[b];
        if (ops && ops->list_devices) {
            printf("\n%s devices:\n", ops->name);
            ops->list_devices(stdout, 0);
        }
    }
}

static void print_json(const kd_context *ctx)
{
    printf("{\"version\":\"%s\",\"backends\":[", kd_version());
    for (int b = 0; b < KD_BACKEND_COUNT; b++) {
        const kd_backend_ops *ops = kd_backend_table[b];
        printf("%s{\"name\":\"%s\",\"present\":%s,\"detail\":", b ? "," : "", kd_backend_name(b),
               kd_backend_available(ctx, b) ? "true" : "false");
        json_string(stdout, kd_backend_reason(ctx, b));
        printf(",\"devices\":[");
        if (ops && ops->list_devices)
            ops->list_devices(stdout, 1);
        printf("]}");
    }
    printf("]}\n");
}

int kd_cmd_devices(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (kd_cli_is_help(argv[i])) {
            printf("usage: kdispatch devices [--json]\n\n"
                   "Lists the cpu, opencl and cuda backends: present with the device in use, or\n"
                   "absent with the reason; then every OpenCL platform/device and CUDA device.\n"
                   "Environment: KD_OPENCL_PLATFORM, KD_OPENCL_DEVICE (index or name substring).\n");
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else {
            fprintf(stderr, "kdispatch devices: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    kd_context *ctx;
    if (kd_context_create(NULL, &ctx) != KD_OK) {
        fprintf(stderr, "kdispatch: %s\n", kd_last_error(NULL));
        return 1;
    }
    if (json)
        print_json(ctx);
    else
        print_text(ctx);
    kd_context_destroy(ctx);
    return 0;
}
