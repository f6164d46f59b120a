/* The cpu backend's one device, the host CPU, as data (kd_device_info_get). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cpu_ops.h"
#include "host_cpus.h"

/* The value of the first "key : value" line of /proc/cpuinfo (Linux); 0 if absent. */
static int cpuinfo_field(const char *key, char *buf, size_t cap)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    size_t klen = strlen(key);
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f)) {
        const char *colon = strchr(line, ':');
        if (strncmp(line, key, klen) != 0 || !colon || strspn(line + klen, " \t") != (size_t)(colon - line) - klen)
            continue;
        const char *v = colon + 1 + strspn(colon + 1, " \t");
        snprintf(buf, cap, "%.*s", (int)strcspn(v, "\n"), v);
        found = 1;
    }
    if (f)
        fclose(f);
    return found;
}

/* What follows the best level's name: its VNNI encoding, where it has one. */
static const char *vnni_note(kd_simd best, int vnni)
{
    if (best == KD_SIMD_AVX512)
        return vnni & KD_VNNI_EVEX ? "-vnni" : "";
    if (best == KD_SIMD_VNNI)
        return vnni & KD_VNNI_VEX ? " (avx-vnni)" : " (avx512vl-vnni)";
    return "";
}

kd_status kd_cpu_device_info(int index, kd_device_info *out, int *count, char *why, size_t cap)
{
    *count = 1;
    if (!out || index != 0)
        return KD_OK;
    if (!cpuinfo_field("model name", out->name, sizeof out->name))
        snprintf(out->name, sizeof out->name, "host CPU");
    if (!cpuinfo_field("vendor_id", out->vendor, sizeof out->vendor))
        out->vendor[0] = '\0';
    /* No driver: the best SIMD level the CPU offers stands in its place. */
    int vnni;
    kd_simd best = kd_cpu_simd_supported(&vnni);
    snprintf(out->driver_version, sizeof out->driver_version, "simd %s%s", kd_simd_name(best),
             vnni_note(best, vnni));
    kd_host_cpus cpus;
    kd_host_cpus_read(&cpus);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    out->compute_units = cpus.usable;
    out->global_mem_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    out->is_gpu = 0;
    out->usable = 1;
    return KD_OK;
}
