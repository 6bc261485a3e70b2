/* base64url: RFC 4648 section 5, without '=' padding, as PKCE strings and
 * the parts of a JWT are written. */
#ifndef OMIKEYFS_BASE64URL_H
#define OMIKEYFS_BASE64URL_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the unpadded base64url of len bytes. */
#define BASE64URL_LEN(len) (((len) / 3) * 4 + ((len) % 3 ? (len) % 3 + 1 : 0))

/* Write data as base64url and NUL-terminate it.  out must hold
 * BASE64URL_LEN(len) + 1 bytes.  Returns the length written. */
size_t base64url_encode(const void *data, size_t len, char *out);

/* Decode the len characters at s into out, which must hold len * 3 / 4
 * bytes, and set *outlen.  False when a character is not of the alphabet
 * ('=' included); bits left over after the last whole byte are dropped. */
bool base64url_decode(const char *s, size_t len, unsigned char *out, size_t *outlen);

#endif
