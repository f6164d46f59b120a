/* The CPUs this process may use (host_cpus.h): online, affinity, cgroup CPU quota. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT_S */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_cpus.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* A decimal number > 0 at *s (spaces before it skipped), *s moved past it; 0 if there is
 * none, it overflows, or it runs into something other than a space or the end. */
static long long positive_number(const char **s)
{
    const char *p = *s;
    while (*p == ' ' || *p == '\t')
        p++;
    long long v = 0;
    const char *digits = p;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (LLONG_MAX - 9) / 10)
            return 0;
        v = 10 * v + (*p - '0');
    }
    if (p == digits || (*p && *p != ' ' && *p != '\t' && *p != '\n'))
        return 0;
    *s = p;
    return v;
}

static double quota_cpus(long long quota, long long period)
{
    return quota > 0 && period > 0 ? (double)quota / (double)period : 0;
}

double kd_cgroup2_cpu_max(const char *text)
{
    const char *p = text;
    long long quota = positive_number(&p);
    return quota_cpus(quota, positive_number(&p)); /* "max ..." reads as quota 0: none */
}

double kd_cgroup1_cpu_quota(const char *quota, const char *period)
{
    return quota_cpus(positive_number(&quota), positive_number(&period));
}

/* The first line of a small file (a cgroup's limit), or "" where it cannot be read. */
static void first_line(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (!fgets(buf, (int)cap, f))
        buf[0] = '\0';
    fclose(f);
}

/* The tighter of two quotas (0: none). */
static double tighter(double a, double b)
{
    return a > 0 && (b <= 0 || a < b) ? a : b;
}

/* The quota of the cgroup directory dir: cpu.max (v2) or the v1 pair. */
static double dir_quota(const char *dir, int v2)
{
    char path[PATH_MAX + 32], a[64], b[64];
    if (v2) {
        snprintf(path, sizeof path, "%s/cpu.max", dir);
        first_line(path, a, sizeof a);
        return kd_cgroup2_cpu_max(a);
    }
    snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    first_line(path, a, sizeof a);
    snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
    first_line(path, b, sizeof b);
    return kd_cgroup1_cpu_quota(a, b);
}

/* The tightest quota from dir up to top (a prefix of dir): a limit on an ancestor holds
 * for every cgroup below it. */
static double walk_up(char *dir, size_t top, int v2)
{
    double q = 0;
    for (;;) {
        q = tighter(q, dir_quota(dir, v2));
        char *slash = strrchr(dir, '/');
        if (strlen(dir) <= top || !slash || (size_t)(slash - dir) < top)
            return q;
        *slash = '\0';
    }
}

/* mountinfo writes space, tab, newline and backslash in names as \ooo. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (const char *r = s; *r; w++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
            r[3] <= '7') {
            *w = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w = *r++;
        }
    }
    *w = '\0';
}

/* Whether the comma-separated list holds word. */
static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list;; p++) {
        if (strncmp(p, word, n) == 0 && (p[n] == ',' || p[n] == '\0' || p[n] == '\n'))
            return 1;
        if (!(p = strchr(p, ',')))
            return 0;
    }
}

/* Calls match(line, arg) on each line of the file root/rel until it returns 1: whether one
 * did. */
static int find_line(const char *root, const char *rel, int (*match)(char *line, void *arg), void *arg)
{
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s%s", root, rel);
    FILE *f = fopen(file, "r");
    if (!f)
        return 0;
    char *line = NULL;
    size_t len = 0;
    int found = 0;
    while (!found && getline(&line, &len, f) > 0)
        found = match(line, arg);
    free(line);
    fclose(f);
    return found;
}

typedef struct cgroup_query {
    const char *root; /* "" or a test's tree */
    int v2;           /* the v2 hierarchy, else the v1 one with the cpu controller */
    char path[PATH_MAX]; /* the process's cgroup in it (/proc/self/cgroup) */
    char dir[PATH_MAX];  /* its directory (mountinfo) */
    size_t top;          /* the length of dir's mount point part */
} cgroup_query;

/* A /proc/self/cgroup line ("id:controllers:path") of the hierarchy asked for: its path. */
static int cgroup_path_line(char *line, void *arg)
{
    cgroup_query *q = arg;
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2)
        return 0;
    *c2 = '\0';
    const char *controllers = c1 + 1, *path = c2 + 1;
    if (q->v2 ? strncmp(line, "0:", 2) != 0 || *controllers : !has_word(controllers, "cpu"))
        return 0;
    snprintf(q->path, sizeof q->path, "%s", path);
    q->path[strcspn(q->path, "\n")] = '\0';
    return 1;
}

/* A mountinfo line ("id parent major:minor root mount-point options [optional...] -
 * fstype source super-options") of the hierarchy asked for (cgroup2, or cgroup with the
 * cpu option) whose root holds the path: the path's directory under its mount point. A
 * mount whose root does not hold it (a container's view of another cgroup) does not
 * serve. */
static int cgroup_mount_line(char *line, void *arg)
{
    cgroup_query *q = arg;
    char *field[5], *save = NULL, *sep = strstr(line, " - ");
    if (!sep)
        return 0;
    *sep = '\0';
    int n = 0;
    for (char *t = strtok_r(line, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
        field[n++] = t;
    char *fstype = strtok_r(sep + 3, " ", &save), *source = strtok_r(NULL, " ", &save);
    char *super = strtok_r(NULL, " \n", &save);
    if (n < 5 || !fstype || !source || !super)
        return 0;
    if (q->v2 ? strcmp(fstype, "cgroup2") != 0 : strcmp(fstype, "cgroup") != 0 || !has_word(super, "cpu"))
        return 0;
    unescape_octal(field[3]);
    unescape_octal(field[4]);
    const char *mroot = field[3], *rest = q->path;
    size_t rl = strlen(mroot);
    if (strcmp(mroot, "/") != 0) {
        if (strncmp(q->path, mroot, rl) != 0 || (q->path[rl] != '/' && q->path[rl] != '\0'))
            return 0;
        rest = q->path + rl;
    }
    if (strcmp(rest, "/") == 0)
        rest = "";
    q->top = strlen(q->root) + strlen(field[4]);
    return snprintf(q->dir, sizeof q->dir, "%s%s%s", q->root, field[4], rest) < (int)sizeof q->dir;
}

double kd_cgroup_cpu_quota(const char *root)
{
    double quota = 0;
    for (int v2 = 0; v2 <= 1; v2++) {
        cgroup_query q = {.root = root, .v2 = v2};
        if (find_line(root, "/proc/self/cgroup", cgroup_path_line, &q) &&
            find_line(root, "/proc/self/mountinfo", cgroup_mount_line, &q))
            quota = tighter(quota, walk_up(q.dir, q.top, v2));
    }
    return quota;
}

/* CPUs in this process's affinity mask, 0 where unknown. */
static int affinity_cpus(void)
{
#ifdef __linux__
    for (int n = 1024; n <= 1 << 16; n *= 4) {
        cpu_set_t *set = CPU_ALLOC((size_t)n);
        if (!set)
            return 0;
        size_t size = CPU_ALLOC_SIZE((size_t)n);
        int got = sched_getaffinity(0, size, set) == 0 ? CPU_COUNT_S(size, set) : errno == EINVAL ? -1 : 0;
        CPU_FREE(set);
        if (got >= 0)
            return got;
    }
#endif
    return 0;
}

void kd_host_cpus_read(kd_host_cpus *out)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    out->online = online > 0 ? (online < INT_MAX ? (int)online : INT_MAX) : 1;
    out->affinity = affinity_cpus();
    out->quota = kd_cgroup_cpu_quota("");
    out->usable = out->online;
    out->bound = "online";
    if (out->affinity > 0 && out->affinity < out->usable) {
        out->usable = out->affinity;
        out->bound = "affinity";
    }
    if (out->quota > 0 && ceil(out->quota) < out->usable) {
        out->usable = (int)ceil(out->quota);
        out->bound = "cgroup quota";
    }
}
