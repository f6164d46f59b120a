/* Reading files that may be hostile: a FIFO, a device (/dev/zero), a directory or a huge
 * file is refused before a byte is read, so no caller can hang or exhaust memory. */
#ifndef KD_FILE_UTIL_H
#define KD_FILE_UTIL_H

#include <stddef.h>

/* Opens path for reading without blocking (a FIFO with no writer returns at once) and
 * checks it is a regular file of at most max bytes: the descriptor and *size, or -1 with
 * the reason in why and errno set (ENOENT for a missing file). */
int kd_open_regular(const char *path, size_t max, size_t *size, char *why, size_t cap);

/* The whole regular file (kd_open_regular's checks) in *data, malloc'd with a NUL added,
 * and its length in *size: 0, or -1 with the reason in why and errno set. */
int kd_read_regular_file(const char *path, size_t max, char **data, size_t *size, char *why,
                         size_t cap);

#endif
