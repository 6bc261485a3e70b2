/* text: one sanitizer for every untrusted string that reaches a human.
 *
 * A replacement is '?', not U+FFFD: it is one byte, so the output is never
 * longer than the input (callers can sanitize in place and keep their
 * buffer sizes), it reads the same in an ASCII-only terminal or syslog file,
 * and it is easy to grep for.  Invalid UTF-8 is replaced too, not only raw
 * 0x80-0x9F: a terminal in a Latin-1 locale runs those as C1 controls (0x9B
 * is CSI), and journald stores a message that is not UTF-8 as a blob that
 * journalctl shows only as "[N bytes blob data]". */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "text.h"

/* Length of the valid, shortest-form UTF-8 sequence at s (at most n bytes
 * available) and its code point, or 0 when s does not start one. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		*cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		*cp = s[0] & 0x0f;
		if (s[0] == 0xe0)
			lo = 0xa0; /* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f; /* UTF-16 surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		*cp = s[0] & 0x07;
		if (s[0] == 0xf0)
			lo = 0x90; /* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if (i > 1 && (s[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	return len;
}

static bool text_unsafe(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x2028 && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

void text_one_line(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

size_t text_cut(char *s, size_t len, size_t max)
{
	size_t n;

	if (len <= max || max < 3)
		return len;
	n = max - 3;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(s + n, "...", 4);
	return n + 3;
}

size_t text_sanitize(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t in = 0, out = 0;

	if (dstlen == 0)
		return 0;
	while (in < srclen) {
		uint32_t cp = 0;
		size_t len = utf8_decode(s + in, srclen - in, &cp);
		bool bad = len == 0 || text_unsafe(cp);
		size_t outlen = bad ? 1 : len;

		if (out + outlen > dstlen - 1)
			break;
		if (bad)
			dst[out] = '?';
		else
			memmove(dst + out, s + in, len);
		out += outlen;
		in += len ? len : 1;
	}
	dst[out] = '\0';
	return out;
}
