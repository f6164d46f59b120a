/*
 * The ptxas resource report: runs "ptxas -arch=ARCH -v" on a module (no shell: the
 * program is spawned with its arguments, output read through a pipe) and reads the
 * registers, spill bytes, shared and local bytes of each kernel from its output.
 */
#include "ptx_check.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef KD_PTX_DEFAULT_PTXAS
#define KD_PTX_DEFAULT_PTXAS "/usr/local/cuda/bin/ptxas"
#endif

#define MAX_PTXAS_OUTPUT ((size_t)16 << 20)

extern char **environ;

static int executable(const char *path)
{
    struct stat sb;
    return path && path[0] && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
           access(path, X_OK) == 0;
}

static int set_path(char *out, size_t cap, const char *path)
{
    if (strlen(path) >= cap)
        return -1;
    memcpy(out, path, strlen(path) + 1);
    return 0;
}

int kd_ptx_ptxas_find(const char *explicit_path, char *out, size_t cap)
{
    if (!out || cap == 0)
        return -1;
    out[0] = '\0';
    if (explicit_path)
        return executable(explicit_path) ? set_path(out, cap, explicit_path) : -1;
    const char *env = getenv("KD_PTXAS");
    if (env && env[0])
        return executable(env) ? set_path(out, cap, env) : -1;
    const char *path = getenv("PATH");
    for (const char *d = path; d && *d;) {
        size_t n = strcspn(d, ":");
        char cand[4096];
        if (n > 0 && n + sizeof "/ptxas" < sizeof cand) {
            memcpy(cand, d, n);
            memcpy(cand + n, "/ptxas", sizeof "/ptxas");
            if (executable(cand))
                return set_path(out, cap, cand);
        }
        d += n + (d[n] == ':');
    }
    return executable(KD_PTX_DEFAULT_PTXAS) ? set_path(out, cap, KD_PTX_DEFAULT_PTXAS) : -1;
}

/* ---- output parsing ---------------------------------------------------------------------- */

static kd_ptx_res_entry *entry_for(kd_ptx_ptxas_result *r, const char *name, size_t len)
{
    if (len >= KD_PTX_NAME_MAX)
        len = KD_PTX_NAME_MAX - 1;
    for (int i = 0; i < r->n; i++)
        if (strlen(r->entries[i].name) == len && strncmp(r->entries[i].name, name, len) == 0)
            return &r->entries[i];
    kd_ptx_res_entry *ne = realloc(r->entries, (size_t)(r->n + 1) * sizeof *ne);
    if (!ne)
        return NULL;
    r->entries = ne;
    kd_ptx_res_entry *e = &ne[r->n++];
    memset(e, 0, sizeof *e);
    memcpy(e->name, name, len);
    e->name[len] = '\0';
    return e;
}

/* The number written just before `what` in line ("128 bytes smem"), or -1. */
static int number_before(const char *line, size_t len, const char *what)
{
    size_t wn = strlen(what);
    for (size_t i = 0; i + wn <= len; i++) {
        if (strncmp(line + i, what, wn) != 0)
            continue;
        size_t e = i;
        while (e > 0 && line[e - 1] == ' ')
            e--;
        size_t s = e;
        while (s > 0 && line[s - 1] >= '0' && line[s - 1] <= '9')
            s--;
        if (s == e || e - s > 9)
            return -1;
        int v = 0;
        for (size_t k = s; k < e; k++)
            v = v * 10 + (line[k] - '0');
        return v;
    }
    return -1;
}

static int max_int(int a, int b) { return a > b ? a : b; }

/* Text between the quotes after key ("entry function 'NAME'"). */
static const char *quoted_after(const char *line, size_t len, const char *key, size_t *n)
{
    const char *k = NULL;
    size_t kn = strlen(key);
    for (size_t i = 0; i + kn <= len && !k; i++)
        if (strncmp(line + i, key, kn) == 0)
            k = line + i + kn;
    if (!k || k >= line + len || *k != '\'')
        return NULL;
    const char *e = memchr(k + 1, '\'', (size_t)(line + len - k - 1));
    if (!e)
        return NULL;
    *n = (size_t)(e - k - 1);
    return k + 1;
}

static int parse_line(const char *line, size_t len, kd_ptx_ptxas_result *r, int *entry,
                      int *props)
{
    static const char props_key[] = "Function properties for ";
    size_t n;
    const char *name = quoted_after(line, len, "Compiling entry function ", &n);
    if (name) {
        kd_ptx_res_entry *e = entry_for(r, name, n);
        if (!e)
            return -1;
        *entry = *props = (int)(e - r->entries);
        return 0;
    }
    const char *pk = NULL;
    for (size_t i = 0; i + sizeof props_key - 1 <= len && !pk; i++)
        if (strncmp(line + i, props_key, sizeof props_key - 1) == 0)
            pk = line + i + sizeof props_key - 1;
    if (pk) {
        kd_ptx_res_entry *e = entry_for(r, pk, (size_t)(line + len - pk));
        if (!e)
            return -1;
        *props = (int)(e - r->entries);
        return 0;
    }
    int stack = number_before(line, len, "bytes stack frame");
    if (stack >= 0 && *props >= 0) {
        kd_ptx_resources *res = &r->entries[*props].res;
        res->local_bytes = max_int(res->local_bytes, stack);
        res->spill_store_bytes = max_int(0, number_before(line, len, "bytes spill stores"));
        res->spill_load_bytes = max_int(0, number_before(line, len, "bytes spill loads"));
        return 0;
    }
    int regs = number_before(line, len, "registers");
    if (regs >= 0 && *entry >= 0 && strstr(line, "Used ") && strstr(line, "Used ") < line + len) {
        kd_ptx_resources *res = &r->entries[*entry].res;
        res->valid = 1;
        res->registers = regs;
        res->shared_bytes = max_int(0, number_before(line, len, "bytes smem"));
        res->local_bytes = max_int(res->local_bytes, number_before(line, len, "bytes lmem"));
    }
    return 0;
}

int kd_ptx_ptxas_parse_output(const char *text, kd_ptx_ptxas_result *out)
{
    if (!text || !out)
        return -1;
    int entry = -1, props = -1;
    for (const char *s = text; *s;) {
        size_t len = strcspn(s, "\n");
        if (parse_line(s, len, out, &entry, &props) != 0)
            return -1;
        s += len + (s[len] == '\n');
    }
    return 0;
}

void kd_ptx_ptxas_result_free(kd_ptx_ptxas_result *r)
{
    if (!r)
        return;
    free(r->entries);
    r->entries = NULL;
    r->n = 0;
}

/* ---- running ptxas --------------------------------------------------------------------------- */

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Writes the module's text to a temporary .ptx file; path gets its name. */
static int write_temp(const kd_ptx_module *m, char *path, size_t cap)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !dir[0])
        dir = "/tmp";
    if ((size_t)snprintf(path, cap, "%s/kd-ptx-check-XXXXXX.ptx", dir) >= cap)
        return -1;
    int fd = mkstemps(path, 4);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, m->text, m->text_len);
    if (close(fd) != 0)
        rc = -1;
    if (rc != 0)
        unlink(path);
    return rc;
}

/* Spawns argv with stdout and stderr into a pipe; reads all of it into *text. */
static kd_status spawn_capture(char *const argv[], char **text, int *status, char *why,
                               size_t cap)
{
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(why, cap, "pipe: %s", strerror(errno));
        return KD_ERR_IO;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        snprintf(why, cap, "cannot run %s: %s", argv[0], strerror(rc));
        return KD_ERR_UNAVAILABLE;
    }
    size_t len = 0, bufcap = 1 << 14;
    char *buf = malloc(bufcap);
    kd_status st = buf ? KD_OK : KD_ERR_NOMEM;
    for (;;) {
        /* when full, grow up to the limit; past it (or without memory) keep draining the
         * pipe so ptxas can finish, and keep what fits */
        if (buf && len + 1 == bufcap && bufcap < MAX_PTXAS_OUTPUT) {
            char *nb = realloc(buf, bufcap * 2);
            if (nb) {
                buf = nb;
                bufcap *= 2;
            }
        }
        char sink[4096];
        int keep = buf && len + 1 < bufcap;
        ssize_t r = keep ? read(fds[0], buf + len, bufcap - 1 - len)
                         : read(fds[0], sink, sizeof sink);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (keep)
            len += (size_t)r;
    }
    close(fds[0]);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    if (st != KD_OK) {
        free(buf);
        snprintf(why, cap, "out of memory reading ptxas output");
        return st;
    }
    buf[len] = '\0';
    *text = buf;
    return KD_OK;
}

/* First line of ptxas output that says "error", for the report. */
static void first_error(const char *text, char *why, size_t cap, int status)
{
    const char *e = strstr(text, "error");
    if (e) {
        const char *s = e;
        while (s > text && s[-1] != '\n')
            s--;
        size_t n = strcspn(s, "\n");
        snprintf(why, cap, "ptxas failed (exit %d): %.*s", status, (int)(n > 300 ? 300 : n), s);
    } else {
        snprintf(why, cap, "ptxas failed (exit %d)", status);
    }
}

kd_status kd_ptx_ptxas_run(const char *ptxas, const char *arch, const kd_ptx_module *m,
                           kd_ptx_ptxas_result *out)
{
    if (!ptxas || !m || !out)
        return KD_ERR_NULL;
    memset(out, 0, sizeof *out);
    if (!arch || !arch[0])
        arch = "sm_90";
    snprintf(out->arch, sizeof out->arch, "%s", arch);
    char tmp[4096], archarg[64];
    if (write_temp(m, tmp, sizeof tmp) != 0) {
        snprintf(out->why, sizeof out->why, "cannot write a temporary PTX file: %s",
                 strerror(errno));
        return KD_ERR_IO;
    }
    snprintf(archarg, sizeof archarg, "-arch=%s", arch);
    char *argv[] = {(char *)ptxas, archarg, "-v", tmp, "-o", "/dev/null", NULL};
    char *text = NULL;
    int status = 0;
    kd_status st = spawn_capture(argv, &text, &status, out->why, sizeof out->why);
    unlink(tmp);
    if (st != KD_OK)
        return st;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0) {
        first_error(text, out->why, sizeof out->why, code);
    } else if (kd_ptx_ptxas_parse_output(text, out) != 0) {
        st = KD_ERR_NOMEM;
        snprintf(out->why, sizeof out->why, "out of memory reading ptxas output");
    } else {
        out->ok = 1;
    }
    free(text);
    return st;
}
