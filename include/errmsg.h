/* errmsg: write a one-line reason into a caller's err buffer, the way every
 * module that reports through (char *err, size_t errlen) does. */
#ifndef OMIKEYFS_ERRMSG_H
#define OMIKEYFS_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>

/* printf into err (truncated to errlen); does nothing when err is NULL or
 * errlen is 0, so callers may pass either. */
void errmsg_set(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* errmsg_set for a module's own formatter that takes "..." and sets more
 * than the text (a kind, an errno) before wording it. */
void errmsg_vset(char *err, size_t errlen, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#endif
