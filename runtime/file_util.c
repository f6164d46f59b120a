/* See file_util.h. */
#include "file_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kd_open_regular(const char *path, size_t max, size_t *size, char *why, size_t cap)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(why, cap, "cannot open '%s': %s", path, strerror(e));
        errno = e;
        return -1;
    }
    struct stat st;
    int e = 0;
    if (fstat(fd, &st) != 0) {
        e = errno;
        snprintf(why, cap, "cannot stat '%s': %s", path, strerror(e));
    } else if (!S_ISREG(st.st_mode)) {
        e = EINVAL;
        snprintf(why, cap, "'%s' is not a regular file (%s)", path,
                 S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
                 : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "a socket or other");
    } else if ((uint64_t)st.st_size > (uint64_t)max) {
        e = EFBIG;
        snprintf(why, cap, "'%s' is %lld bytes, more than the %zu allowed", path,
                 (long long)st.st_size, max);
    }
    if (e) {
        close(fd);
        errno = e;
        return -1;
    }
    *size = (size_t)st.st_size;
    return fd;
}

int kd_read_regular_file(const char *path, size_t max, char **data, size_t *size, char *why,
                         size_t cap)
{
    size_t n = 0, got = 0;
    int fd = kd_open_regular(path, max, &n, why, cap);
    if (fd < 0)
        return -1;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        snprintf(why, cap, "out of host memory reading '%s' (%zu bytes)", path, n);
        errno = ENOMEM;
        return -1;
    }
    while (got < n) { /* the file may shrink meanwhile: a short read is an error */
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    int e = errno;
    close(fd);
    if (got != n) {
        free(buf);
        snprintf(why, cap, "short read of '%s' (%zu of %zu bytes)", path, got, n);
        errno = e ? e : EIO;
        return -1;
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return 0;
}
