/* SHA-256 (FIPS 180-4): content addresses for checkpoints and the hashes
 * that status reports show for model files. */
#ifndef LETHE_SHA256_H
#define LETHE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef struct lethe_sha256 {
    uint32_t h[8];
    uint64_t len;          /* bytes hashed so far */
    unsigned char buf[64]; /* pending partial block */
    size_t n;              /* bytes in buf */
} lethe_sha256;

void lethe_sha256_init(lethe_sha256 *s);
void lethe_sha256_update(lethe_sha256 *s, const void *data, size_t len);
/* The digest as 64 lower-case hex digits and a NUL into hex[65]. */
void lethe_sha256_final(lethe_sha256 *s, char hex[65]);

/* The digest of a whole file; LETHE_ERR_IO naming it when unreadable. */
lethe_status lethe_sha256_file(const char *path, char hex[65]);

LETHE_API_END
#endif
