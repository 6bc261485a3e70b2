/* name_is_of: the inverse of keyname_escape for uncut names, which the
 * keyname unit test and the key-list fuzzer both check escaping against. */
#include <stdbool.h>
#include <string.h>

#include "name_is_of.h"

/*
 * Whether an uncut name decodes to exactly this id.  Holding for every id
 * is what makes escaping lossless: no two ids share a name unless it is cut.
 */
bool name_is_of(const char *name, const char *id, size_t len)
{
	size_t j = 0;

	if (name[0] != '%')
		return strlen(name) == len && memcmp(name, id, len) == 0;
	for (const char *c = name + 1; *c; c++, j++) {
		char byte = *c;

		if (*c == '%') {
			if (strncmp(c, "%25", 3) == 0)
				byte = '%';
			else if (strncmp(c, "%2F", 3) == 0)
				byte = '/';
			else if (strncmp(c, "%00", 3) == 0)
				byte = '\0';
			else
				return false;
			c += 2;
		}
		if (j >= len || id[j] != byte)
			return false;
	}
	return j == len;
}
