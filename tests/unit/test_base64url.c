/* Unit tests for base64url: RFC 4648's vectors both ways (unpadded), the
 * two characters that differ from base64, refused characters, and a round
 * trip of every length and byte value. */
#include <string.h>

#include "base64url.h"
#include "test.h"

static void both_ways(const char *in, const char *want)
{
	char out[64];
	unsigned char back[64];
	size_t n = 99;

	test_assert(base64url_encode(in, strlen(in), out) == strlen(want));
	test_assert(strcmp(out, want) == 0);
	test_assert(BASE64URL_LEN(strlen(in)) == strlen(want));
	test_assert(base64url_decode(want, strlen(want), back, &n));
	test_assert(n == strlen(in) && memcmp(back, in, n) == 0);
}

static void test_rfc4648(void)
{
	both_ways("", "");
	both_ways("f", "Zg");
	both_ways("fo", "Zm8");
	both_ways("foo", "Zm9v");
	both_ways("foob", "Zm9vYg");
	both_ways("fooba", "Zm9vYmE");
	both_ways("foobar", "Zm9vYmFy");
	/* The two characters that differ from plain base64. */
	both_ways("\xfb\xff\xbf", "-_-_");
}

static void test_refused(void)
{
	unsigned char out[16];
	size_t n;

	test_assert(!base64url_decode("Zg==", 4, out, &n)); /* no padding */
	test_assert(!base64url_decode("+/+/", 4, out, &n)); /* plain base64 */
	test_assert(!base64url_decode("Zm 9v", 5, out, &n));
	test_assert(!base64url_decode("Zm\0v", 4, out, &n));
	/* Only len characters are read. */
	test_assert(base64url_decode("Zm9v!", 4, out, &n) && n == 3);
}

static void test_round_trip(void)
{
	unsigned char data[256], back[256];
	char text[BASE64URL_LEN(sizeof(data)) + 1];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(255 - i);
	for (size_t len = 0; len <= sizeof(data); len++) {
		size_t n = base64url_encode(data, len, text), m = 0;

		test_assert(n == BASE64URL_LEN(len) && strlen(text) == n);
		test_assert(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					 "0123456789-_") == n);
		test_assert(base64url_decode(text, n, back, &m));
		test_assert(m == len && memcmp(back, data, len) == 0);
	}
}

int main(void)
{
	test_run(test_rfc4648);
	test_run(test_refused);
	test_run(test_round_trip);
	return 0;
}
