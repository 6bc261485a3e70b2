/* Unit test of pkce: RFC 7636's S256 example, random strings. */
#include <string.h>

#include "base64url.h"
#include "pkce.h"
#include "test.h"

/* RFC 7636 appendix B. */
static void test_rfc7636(void)
{
	static const unsigned char octets[32] = {
		116, 24,  223, 180, 151, 153, 224, 37,  79, 250, 96, 125, 216, 173, 187, 186,
		22,  212, 37,  77,  105, 214, 191, 240, 91, 88,  5,  88,  83,  132, 141, 121,
	};
	char v[PKCE_STRING_LEN + 1], c[PKCE_STRING_LEN + 1];

	test_assert(base64url_encode(octets, sizeof(octets), v) == PKCE_STRING_LEN);
	test_assert(strcmp(v, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == 0);
	pkce_challenge(v, c);
	test_assert(strcmp(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM") == 0);
}

static void check_random(const char *s)
{
	test_assert(strlen(s) == PKCE_STRING_LEN);
	for (const char *p = s; *p; p++)
		test_assert((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_');
}

static void test_random(void)
{
	char a[PKCE_STRING_LEN + 1], b[PKCE_STRING_LEN + 1], s[PKCE_STRING_LEN + 1];

	test_assert(pkce_verifier(a) == 0);
	test_assert(pkce_verifier(b) == 0);
	test_assert(pkce_state(s) == 0);
	check_random(a);
	check_random(b);
	check_random(s);
	/* 256 random bits: equal strings mean the randomness is broken. */
	test_assert(strcmp(a, b) != 0);
	test_assert(strcmp(a, s) != 0);
}

int main(void)
{
	test_run(test_rfc7636);
	test_run(test_random);
	return 0;
}
