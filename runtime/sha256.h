/* SHA-256 (FIPS 180-4), small and self-contained: the checksum of the OpenCL program
 * cache's entries (a corrupted binary must never reach the driver). */
#ifndef KD_SHA256_H
#define KD_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct kd_sha256 {
    uint32_t h[8];
    uint64_t bytes;      /* message length so far */
    unsigned char buf[64];
    size_t fill;         /* bytes in buf */
} kd_sha256;

void kd_sha256_init(kd_sha256 *s);
void kd_sha256_update(kd_sha256 *s, const void *data, size_t n);
void kd_sha256_final(kd_sha256 *s, unsigned char out[32]);
/* The digest of data[0..n) as 64 lower-case hex digits and a NUL. */
void kd_sha256_hex(const void *data, size_t n, char out[65]);

#endif
