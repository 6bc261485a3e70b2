/* Unit tests for text_sanitize: controls, C1, invalid UTF-8 and bidi become
 * '?', valid UTF-8 stays, and a cut never splits a character. */
#include <string.h>

#include "test.h"
#include "text.h"

/* Sanitize src (n bytes) into a roomy buffer and compare with want. */
static void check(const char *src, size_t n, const char *want)
{
	char out[256];
	size_t len = text_sanitize(out, sizeof(out), src, n);

	if (strcmp(out, want) != 0)
		fprintf(stderr, "got \"%s\", want \"%s\"\n", out, want);
	test_assert(strcmp(out, want) == 0);
	test_assert(len == strlen(want));
}

#define CHECK(lit, want) check(lit, sizeof(lit) - 1, want)

static void test_c0_and_del(void)
{
	CHECK("a\tb\nc\rd", "a?b?c?d");
	CHECK("\x1b[31mred\x1b[0m", "?[31mred?[0m");
	CHECK("nul\0here", "nul?here");
	CHECK("\x01\x1f del\x7f", "?? del?");
	CHECK(" ~", " ~");
}

static void test_c1(void)
{
	/* U+0085 NEL and U+009B CSI as UTF-8: one '?' each. */
	CHECK("a\xc2\x85"
	      "b\xc2\x9b"
	      "c",
	      "a?b?c");
	/* U+00A0 and U+00E9 are printable and kept. */
	CHECK("\xc2\xa0\xc3\xa9", "\xc2\xa0\xc3\xa9");
	/* A lone 0x9B is CSI in 8-bit terminals. */
	CHECK("x\x9b"
	      "31m",
	      "x?31m");
	CHECK("\x80\x9f", "??");
}

static void test_invalid_utf8(void)
{
	CHECK("\xff\xfe", "??");
	CHECK("\xc0\xaf", "??");           /* overlong '/' */
	CHECK("\xe0\x80\xaf", "???");      /* overlong */
	CHECK("\xed\xa0\x80", "???");      /* surrogate */
	CHECK("\xf4\x90\x80\x80", "????"); /* above U+10FFFF */
	CHECK("\xe2\x82", "??");           /* cut short at the end */
	CHECK("\xe2\x82x", "??x");         /* cut short in the middle */
}

static void test_bidi(void)
{
	/* U+202E RIGHT-TO-LEFT OVERRIDE, U+202A, U+2066..U+2069 isolates. */
	CHECK("evil\xe2\x80\xaetxt.exe", "evil?txt.exe");
	CHECK("\xe2\x80\xaa\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9", "?????");
	/* U+2028 LINE SEPARATOR breaks lines in some viewers. */
	CHECK("a\xe2\x80\xa8"
	      "b",
	      "a?b");
	/* Their neighbours U+2065, U+206A, U+2027 and U+202F are kept. */
	CHECK("\xe2\x81\xa5\xe2\x81\xaa", "\xe2\x81\xa5\xe2\x81\xaa");
	CHECK("\xe2\x80\xa7\xe2\x80\xaf", "\xe2\x80\xa7\xe2\x80\xaf");
}

static void test_valid_kept(void)
{
	const char s[] = "caf\xc3\xa9 \xe2\x82\xac \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x91";

	CHECK(s, s);
}

static void test_truncation(void)
{
	const char s[] = "ab\xe2\x82\xac"
			 "cd"; /* "ab€cd" */
	char out[16];

	memset(out, 'X', sizeof(out));
	/* Room for 4 bytes: "ab" and not half of the euro sign. */
	test_assert(text_sanitize(out, 5, s, sizeof(s) - 1) == 2);
	test_assert(strcmp(out, "ab") == 0);
	test_assert(text_sanitize(out, 6, s, sizeof(s) - 1) == 5);
	test_assert(strcmp(out, "ab\xe2\x82\xac") == 0);
	test_assert(text_sanitize(out, 1, s, sizeof(s) - 1) == 0);
	test_assert(out[0] == '\0');
	/* dstlen 0 writes nothing at all. */
	out[0] = 'X';
	test_assert(text_sanitize(out, 0, s, sizeof(s) - 1) == 0);
	test_assert(out[0] == 'X');
	/* A 4-byte character with room for 3 is dropped whole. */
	test_assert(text_sanitize(out, 4, "\xf0\x9f\x94\x91", 4) == 0);
	test_assert(out[0] == '\0');
	/* A replacement is one byte and fits where the original would not. */
	test_assert(text_sanitize(out, 2, "\xe2\x80\xae", 3) == 1);
	test_assert(strcmp(out, "?") == 0);
}

/* text_cut: only what is longer than max, never inside a character. */
static void test_cut(void)
{
	char s[32];

	strcpy(s, "abcdef");
	test_assert(text_cut(s, 6, 6) == 6 && strcmp(s, "abcdef") == 0);
	test_assert(text_cut(s, 6, 5) == 5 && strcmp(s, "ab...") == 0);
	/* "ab" then a euro sign (3 bytes): cutting at byte 3 or 4 would
	 * split it, so the cut goes back to its first byte. */
	strcpy(s, "ab\xe2\x82\xac"
		  "cd");
	test_assert(text_cut(s, 7, 7) == 7);
	test_assert(text_cut(s, 7, 6) == 5 && strcmp(s, "ab...") == 0);
	strcpy(s, "a\xf0\x9f\x98\x80"
		  "bcd"); /* a 4-byte emoji at 1..4 */
	test_assert(text_cut(s, 8, 7) == 4 && strcmp(s, "a...") == 0);
	strcpy(s, "\xc3\xa9\xc3\xa9\xc3\xa9");
	test_assert(text_cut(s, 6, 5) == 5 && strcmp(s, "\xc3\xa9...") == 0);
	/* The length it would have had: only max - 3 bytes are read. */
	strcpy(s, "abcdefg");
	test_assert(text_cut(s, 1000, 7) == 7 && strcmp(s, "abcd...") == 0);
	/* No room for the dots: left as it is. */
	strcpy(s, "abcdef");
	test_assert(text_cut(s, 6, 2) == 6 && strcmp(s, "abcdef") == 0);
}

static void test_in_place(void)
{
	char buf[] = "a\xe2\x80\xae"
		     "b\xc2\x9b"
		     "c\xc3\xa9\x9b";

	test_assert(text_sanitize(buf, sizeof(buf), buf, sizeof(buf) - 1) == 8);
	test_assert(strcmp(buf, "a?b?c\xc3\xa9?") == 0);
}

int main(void)
{
	test_run(test_c0_and_del);
	test_run(test_c1);
	test_run(test_invalid_utf8);
	test_run(test_bidi);
	test_run(test_valid_kept);
	test_run(test_truncation);
	test_run(test_in_place);
	test_run(test_cut);
	return 0;
}
