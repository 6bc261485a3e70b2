/* pkce: the random strings and the S256 code challenge of an RFC 7636
 * (PKCE) sign-in, written in unpadded base64url. */
#ifndef OMIKEYFS_PKCE_H
#define OMIKEYFS_PKCE_H

#include <stddef.h>

/* 32 random bytes or a SHA-256 digest in unpadded base64url: 43 chars. */
#define PKCE_STRING_LEN 43

/*
 * A code verifier (RFC 7636 4.1): 32 bytes of getrandom() in base64url.
 * out must hold PKCE_STRING_LEN + 1 bytes.  Returns 0 or -errno.
 */
int pkce_verifier(char *out);

/* The S256 code challenge of a verifier: base64url(SHA-256(verifier)).
 * out must hold PKCE_STRING_LEN + 1 bytes. */
void pkce_challenge(const char *verifier, char *out);

/* An OAuth state: 32 random bytes in base64url, like the verifier but
 * drawn separately.  Returns 0 or -errno. */
int pkce_state(char *out);

#endif
