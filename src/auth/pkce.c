/*
 * pkce: RFC 7636 strings.  The verifier and the state each come from 32
 * bytes of the kernel's CSPRNG, which is what Omi's own CLI draws too
 * (secrets.token_urlsafe(32)).
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "base64url.h"
#include "pkce.h"
#include "sha256.h"

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
