/*
 * jsonscan: look at JSON bytes without parsing them.
 *
 * keylist walks the top-level array itself and hands json-c one element at
 * a time; these are the byte-level steps of that walk.  They never allocate
 * and never recurse, so neither size nor depth of the input costs stack.
 */
#include <stdbool.h>
#include <string.h>

#include "jsonscan.h"

bool jsonscan_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t jsonscan_skip_space(const char *body, size_t i, size_t len)
{
	while (i < len && jsonscan_is_space(body[i]))
		i++;
	return i;
}

/*
 * json-c keeps field names as C strings, so "id\u0000" would read as "id"
 * and, coming later, replace the real id.  Such an entry is refused: this
 * looks at the element's own bytes for a field name holding \u0000.
 */
bool jsonscan_has_nul_name(const char *s, size_t n)
{
	if (!memmem(s, n, "\\u0000", 6))
		return false; /* the common case: nothing to look for */
	for (size_t i = 0; i < n; i++) {
		bool nul = false;

		if (s[i] != '"')
			continue;
		for (i++; i < n && s[i] != '"'; i++) {
			if (s[i] != '\\')
				continue;
			if (i + 5 < n && memcmp(s + i + 1, "u0000", 5) == 0)
				nul = true;
			i++; /* the escaped character */
		}
		if (nul) {
			size_t j = i + 1;

			while (j < n && jsonscan_is_space(s[j]))
				j++;
			if (j < n && s[j] == ':')
				return true;
		}
	}
	return false;
}

/*
 * The end (one past it) of the array or object starting at body[start], or
 * 0 when it does not end within len: brackets counted outside strings,
 * with a counter rather than recursion, so any depth costs no stack.
 * Brackets are not matched by kind: what is skipped is never read.
 */
size_t jsonscan_skip_element(const char *body, size_t start, size_t len)
{
	size_t depth = 0;

	for (size_t i = start; i < len; i++) {
		switch (body[i]) {
		case '"':
			for (i++; i < len && body[i] != '"'; i++)
				if (body[i] == '\\')
					i++;
			if (i >= len)
				return 0;
			break;
		case '[':
		case '{':
			depth++;
			break;
		case ']':
		case '}':
			if (depth == 0)
				return 0;
			if (--depth == 0)
				return i + 1;
			break;
		}
	}
	return 0;
}
