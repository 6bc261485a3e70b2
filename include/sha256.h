/* sha256: SHA-256 (FIPS 180-4), for the PKCE code challenge. */
#ifndef OMIKEYFS_SHA256_H
#define OMIKEYFS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32

struct sha256 {
	uint32_t h[8];
	uint64_t bytes;          /* message length so far */
	unsigned char block[64]; /* partial block */
	size_t used;             /* bytes in block */
};

void sha256_init(struct sha256 *ctx);
void sha256_update(struct sha256 *ctx, const void *data, size_t len);
/* Writes the digest and wipes *ctx. */
void sha256_final(struct sha256 *ctx, unsigned char out[SHA256_DIGEST_LEN]);
/* The digest of one buffer. */
void sha256(const void *data, size_t len, unsigned char out[SHA256_DIGEST_LEN]);

#endif
