/* errmsg: write a one-line reason into a caller's err buffer, the way every
 * module that reports through (char *err, size_t errlen) does. */
#ifndef OMIKEYFS_ERRMSG_H
#define OMIKEYFS_ERRMSG_H

#include <stddef.h>

/* printf into err (truncated to errlen); does nothing when err is NULL or
 * errlen is 0, so callers may pass either. */
void errmsg_set(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
