/*
 * pkce: RFC 7636 strings.  The verifier and the state each come from 32
 * bytes of the kernel's CSPRNG, which is what Omi's own CLI draws too
 * (secrets.token_urlsafe(32)).
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "pkce.h"
#include "sha256.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t base64url_encode(const void *data, size_t len, char *out)
{
	const unsigned char *p = data;
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned long v = (unsigned long)p[i] << 16;
		size_t left = len - i;

		if (left > 1)
			v |= (unsigned long)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		if (left > 1)
			out[o++] = alphabet[(v >> 6) & 63];
		if (left > 2)
			out[o++] = alphabet[v & 63];
	}
	out[o] = '\0';
	return o;
}

static int random_string(char *out)
{
	unsigned char bytes[32];
	size_t got = 0;

	while (got < sizeof(bytes)) {
		ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			explicit_bzero(bytes, sizeof(bytes));
			return -errno;
		}
		got += (size_t)n;
	}
	base64url_encode(bytes, sizeof(bytes), out);
	explicit_bzero(bytes, sizeof(bytes));
	return 0;
}

int pkce_verifier(char *out)
{
	return random_string(out);
}

void pkce_challenge(const char *verifier, char *out)
{
	unsigned char digest[SHA256_DIGEST_LEN];

	sha256(verifier, strlen(verifier), digest);
	base64url_encode(digest, sizeof(digest), out);
}

int pkce_state(char *out)
{
	return random_string(out);
}
