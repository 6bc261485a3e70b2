/* keyname: a key id -> the directory name it is shown under.  Pure. */
#ifndef OMIKEYFS_KEYNAME_H
#define OMIKEYFS_KEYNAME_H

#include <stddef.h>

/* Longest directory name omikeyfs produces (NAME_MAX). */
#define KEYNAME_MAX 255

/*
 * The directory name of an id.  An id is used as it stands unless it is
 * empty, longer than KEYNAME_MAX bytes, holds '/' or NUL, or starts with '.'
 * (which covers "." and "..", and keeps keys out of hiding) or '%'.  Such an
 * id is shown as '%' followed by the id with every '%', '/' and NUL byte
 * written as %25, %2F, %00.  If that is longer than KEYNAME_MAX, it is cut
 * (never inside a %XX) and ends in "%~" and 16 hex digits of the whole
 * id's fnv1a64.  out must hold KEYNAME_MAX + 1 bytes.
 */
void keyname_escape(const char *id, size_t id_len, char *out);

#endif
