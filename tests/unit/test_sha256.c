/* Unit test of sha256: the FIPS 180-2 / NIST example vectors. */
#include <stdio.h>
#include <string.h>

#include "sha256.h"
#include "test.h"

static void hex(const unsigned char *d, char *out)
{
	for (int i = 0; i < SHA256_DIGEST_LEN; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void check(const char *msg, const char *want)
{
	unsigned char d[SHA256_DIGEST_LEN];
	char h[2 * SHA256_DIGEST_LEN + 1];

	sha256(msg, strlen(msg), d);
	hex(d, h);
	test_assert(strcmp(h, want) == 0);
}

static void test_vectors(void)
{
	check("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	/* 112 bytes: the padding needs a block of its own. */
	check("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
	      "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

/* One million 'a', fed in uneven pieces so block boundaries fall anywhere. */
static void test_million(void)
{
	static char a[1000000];
	unsigned char d[SHA256_DIGEST_LEN];
	char h[2 * SHA256_DIGEST_LEN + 1];
	struct sha256 ctx;
	size_t done = 0, step = 1;

	memset(a, 'a', sizeof(a));
	sha256(a, sizeof(a), d);
	hex(d, h);
	test_assert(strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") ==
		    0);

	sha256_init(&ctx);
	while (done < sizeof(a)) {
		size_t n = step < sizeof(a) - done ? step : sizeof(a) - done;

		sha256_update(&ctx, a + done, n);
		done += n;
		step = step * 3 % 997 + 1;
	}
	memset(d, 0, sizeof(d));
	sha256_final(&ctx, d);
	hex(d, h);
	test_assert(strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") ==
		    0);
}

/* Lengths 55, 56 and 64 sit on the padding's edges. */
static void test_edges(void)
{
	check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	      "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
	check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	      "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
	check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	      "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

int main(void)
{
	test_run(test_vectors);
	test_run(test_million);
	test_run(test_edges);
	return 0;
}
