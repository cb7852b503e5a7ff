/* sha256.h: SHA-256 (FIPS 180-4), used to fingerprint task files for
   run.json. Written for hymeval; no external dependency. */
#ifndef HYMEVAL_SHA256_H
#define HYMEVAL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t state[8];
    uint64_t total_bytes;    /* message length so far */
    uint8_t block[64];       /* partial block waiting for more input */
    size_t block_used;
} Sha256;

/* Incremental use: init, update any number of times, final. */
void sha256_init(Sha256 *h);
void sha256_update(Sha256 *h, const void *data, size_t len);
void sha256_final(Sha256 *h, uint8_t digest[32]);

/* One-shot: the digest of data[0..len) as 64 lowercase hex digits + NUL. */
void sha256_hex(const void *data, size_t len, char out[65]);

#endif
