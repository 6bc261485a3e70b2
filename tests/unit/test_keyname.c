/* Unit test of keyname: key ids -> directory names, and the hash. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fnv1a.h"
#include "keyname.h"
#include "name_is_of.h"
#include "test.h"

/* An id given as a literal, NUL bytes and all. */
#define LIT(s) (s), (sizeof(s) - 1)

static void check_escape(const char *id, size_t len, const char *want)
{
	char name[KEYNAME_MAX + 1];

	keyname_escape(id, len, name);
	if (strcmp(name, want) != 0)
		fprintf(stderr, "escape gave \"%s\", want \"%s\"\n", name, want);
	test_assert(strcmp(name, want) == 0);
	test_assert(name_is_of(name, id, len));
}

static void test_escape(void)
{
	check_escape(LIT("0b6e3c52-8f4d-4a8e-9d7a-3f1c2b5e6a70"),
		     "0b6e3c52-8f4d-4a8e-9d7a-3f1c2b5e6a70");
	check_escape(LIT("key_123abc"), "key_123abc");
	check_escape(LIT(""), "%");
	check_escape(LIT("."), "%.");
	check_escape(LIT(".."), "%..");
	check_escape(LIT("..."), "%...");
	check_escape(LIT(".hidden"), "%.hidden");
	check_escape(LIT("a/b"), "%a%2Fb");
	check_escape(LIT("/"), "%%2F");
	check_escape(LIT("../etc"), "%..%2Fetc");
	check_escape(LIT("%x"), "%%25x");
	check_escape(LIT("%"), "%%25");
	check_escape(LIT("a%b"), "a%b"); /* only a leading '%' is special */
	check_escape(LIT("a%b/"), "%a%25b%2F");
	check_escape(LIT("\0"), "%%00");
	check_escape(LIT("a\0b"), "%a%00b");
	check_escape(LIT("~/x"), "%~%2Fx"); /* a leading '~' is not a cut */
	check_escape(LIT("new\nline"), "new\nline");
	check_escape(LIT("\xff\xfe"), "\xff\xfe");
	check_escape(LIT(" "), " ");
}

/* After the leading '%', every '%' starts %25, %2F, %00 or the cut. */
static void check_whole_escapes(const char *name)
{
	const char *cut = strstr(name + 1, "%~");

	test_assert(name[0] == '%');
	test_assert(cut != NULL && strlen(cut) == 18);
	for (const char *c = cut + 2; *c; c++)
		test_assert((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'));
	for (const char *c = name + 1; c < cut; c++) {
		if (*c != '%')
			continue;
		test_assert(c + 3 <= cut);
		test_assert(strncmp(c, "%25", 3) == 0 || strncmp(c, "%2F", 3) == 0 ||
			    strncmp(c, "%00", 3) == 0);
		c += 2;
	}
}

static void test_escape_long(void)
{
	char id[1000], name[KEYNAME_MAX + 1], other[KEYNAME_MAX + 1], want[32];
	size_t n;

	memset(id, 'k', sizeof(id));

	/* 255 bytes is still a file name. */
	keyname_escape(id, 255, name);
	test_assert(strlen(name) == 255 && memcmp(name, id, 255) == 0);
	test_assert(name_is_of(name, id, 255));

	/* 256 and 1000 are cut and end in the hash of the whole id. */
	keyname_escape(id, 256, name);
	test_assert(strlen(name) <= KEYNAME_MAX);
	check_whole_escapes(name);
	snprintf(want, sizeof(want), "%%~%016" PRIx64, fnv1a64(id, 256));
	test_assert(strcmp(name + strlen(name) - 18, want) == 0);

	keyname_escape(id, 1000, other);
	test_assert(strlen(other) <= KEYNAME_MAX);
	check_whole_escapes(other);
	test_assert(strcmp(name, other) != 0);

	/* Deterministic. */
	keyname_escape(id, 1000, name);
	test_assert(strcmp(name, other) == 0);

	/* Long ids sharing a prefix differ only in their tail. */
	id[999] = 'x';
	keyname_escape(id, 1000, name);
	test_assert(strcmp(name, other) != 0);
	test_assert(strlen(name) == strlen(other));
	test_assert(memcmp(name, other, strlen(name) - 16) == 0);

	/* Escapes make an id too long: the cut lands between triplets,
	 * whatever the alignment. */
	for (n = 60; n < 300; n++) {
		memset(id, '/', n);
		keyname_escape(id, n, name);
		test_assert(strlen(name) <= KEYNAME_MAX);
		if (1 + 3 * n <= KEYNAME_MAX) {
			test_assert(strlen(name) == 1 + 3 * n);
			test_assert(name_is_of(name, id, n));
		} else {
			check_whole_escapes(name);
		}
		/* Mixed single bytes and triplets shift the boundary. */
		for (size_t i = 0; i < n; i += 2)
			id[i] = 'a';
		keyname_escape(id, n, name);
		test_assert(strlen(name) <= KEYNAME_MAX);
		if (strstr(name, "%~"))
			check_whole_escapes(name);
		else
			test_assert(name_is_of(name, id, n));
	}

	/* The boundary: 251 bytes and a '/' are exactly 255 escaped. */
	memset(id, 'a', 251);
	id[251] = '/';
	keyname_escape(id, 252, name);
	test_assert(strlen(name) == 255 && strstr(name, "%~") == NULL);
	test_assert(name_is_of(name, id, 252));
	memset(id, 'a', 252);
	id[252] = '/';
	keyname_escape(id, 253, name);
	check_whole_escapes(name);
}

int main(void)
{
	test_run(test_escape);
	test_run(test_escape_long);
	return 0;
}
