/* The environment, read strictly: see env.h. */
#include "env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *kd_env_get(const char *name)
{
    const char *v = name ? getenv(name) : NULL;
    return v && v[0] ? v : NULL;
}

kd_status kd_env_parse_int(const char *name, const char *value, long long lo, long long hi,
                           long long *out, char *why, size_t cap)
{
    char *end = NULL;
    errno = 0;
    long long v = value ? strtoll(value, &end, 10) : 0;
    /* strtoll skips leading white space; a strict reader refuses it like any other junk. */
    int ok = value && value[0] && value[0] != ' ' && value[0] != '\t' && end != value &&
             *end == '\0' && errno == 0 && v >= lo && v <= hi;
    if (!ok) {
        if (why && cap)
            snprintf(why, cap, "%s='%s' is not a whole number in [%lld, %lld]", name,
                     value ? value : "(null)", lo, hi);
        return KD_ERR_ARG;
    }
    *out = v;
    return KD_OK;
}

kd_status kd_env_int(const char *name, long long lo, long long hi, long long *out, int *found,
                     char *why, size_t cap)
{
    const char *v = kd_env_get(name);
    *found = v != NULL;
    return v ? kd_env_parse_int(name, v, lo, hi, out, why, cap) : KD_OK;
}

kd_status kd_env_parse_choice(const char *name, const char *value, const char *const *choices,
                              int n, int *index, char *why, size_t cap)
{
    for (int i = 0; value && i < n; i++)
        if (strcasecmp(value, choices[i]) == 0) {
            *index = i;
            return KD_OK;
        }
    if (why && cap) {
        int len = snprintf(why, cap, "%s='%s' is not one of", name, value ? value : "(null)");
        for (int i = 0; i < n && len >= 0 && (size_t)len < cap; i++)
            len += snprintf(why + len, cap - (size_t)len, "%s %s", i ? "," : "", choices[i]);
    }
    return KD_ERR_ARG;
}

kd_status kd_env_choice(const char *name, const char *const *choices, int n, int *index,
                        int *found, char *why, size_t cap)
{
    const char *v = kd_env_get(name);
    *found = v != NULL;
    return v ? kd_env_parse_choice(name, v, choices, n, index, why, cap) : KD_OK;
}

int kd_env_user_config_path(char *buf, size_t cap)
{
    const char *xdg = kd_env_get("XDG_CONFIG_HOME"), *home = kd_env_get("HOME");
    int len;
    /* The XDG spec: a relative $XDG_CONFIG_HOME is invalid and must be ignored. */
    if (xdg && xdg[0] == '/')
        len = snprintf(buf, cap, "%s/kdispatch/kdispatch.conf", xdg);
    else if (home)
        len = snprintf(buf, cap, "%s/.config/kdispatch/kdispatch.conf", home);
    else
        return 0;
    return len > 0 && (size_t)len < cap;
}
