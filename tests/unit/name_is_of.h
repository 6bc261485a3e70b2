/* name_is_of: does an uncut directory name decode to exactly this id? */
#ifndef OMIKEYFS_TEST_NAME_IS_OF_H
#define OMIKEYFS_TEST_NAME_IS_OF_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Whether name, as keyname_escape writes an uncut name, decodes to exactly
 * the len bytes of id.  Holding for every id is what makes escaping
 * lossless: no two ids share a name unless it is cut.
 */
bool name_is_of(const char *name, const char *id, size_t len);

#endif
