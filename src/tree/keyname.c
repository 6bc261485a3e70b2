/*
 * keyname: a key id -> the directory name it is shown under.
 *
 * Most ids are used as they stand.  The few that cannot be a file name, or
 * would hide or collide with an escaped one, get a leading '%' and the three
 * bytes that matter escaped: every id has exactly one name, and a name that
 * was not cut belongs to one id only.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fnv1a.h"
#include "keyname.h"

/* A cut name ends in "%~" and the id's hash as 16 hex digits. */
#define HASH_HEX_LEN 16
#define CUT_SUFFIX_LEN (2 + HASH_HEX_LEN)

static bool id_needs_escape(const char *id, size_t len)
{
	/* A leading '.' covers "." and "..", and keeps every key visible to
	 * ls and to globs: `ls | wc -l` counts keys. */
	if (len == 0 || len > KEYNAME_MAX || id[0] == '%' || id[0] == '.')
		return true;
	return memchr(id, '/', len) != NULL || memchr(id, '\0', len) != NULL;
}

static const char *escape_byte(char c)
{
	switch (c) {
	case '%':
		return "%25";
	case '/':
		return "%2F";
	case '\0':
		return "%00";
	default:
		return NULL;
	}
}

void keyname_escape(const char *id, size_t id_len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 1, keep = 1;
	unsigned long long h;

	if (!id_needs_escape(id, id_len)) {
		memcpy(out, id, id_len);
		out[id_len] = '\0';
		return;
	}

	out[0] = '%';
	for (size_t i = 0; i < id_len; i++) {
		const char *esc = escape_byte(id[i]);
		size_t n = esc ? 3 : 1;

		if (o + n > KEYNAME_MAX)
			goto cut;
		if (esc)
			memcpy(out + o, esc, 3);
		else
			out[o] = id[i];
		o += n;
		/* Only whole escapes are kept, so a cut never splits a %XX. */
		if (o <= KEYNAME_MAX - CUT_SUFFIX_LEN)
			keep = o;
	}
	out[o] = '\0';
	return;

cut:
	/* The hash covers the whole id, so ids sharing a long prefix differ. */
	h = fnv1a64(id, id_len);
	out[keep++] = '%';
	out[keep++] = '~';
	for (int shift = 60; shift >= 0; shift -= 4)
		out[keep++] = hex[(h >> shift) & 0xf];
	out[keep] = '\0';
}
