/* urlenc: percent-encoding (RFC 3986) for the sign-in URLs, the callback's
 * query and form bodies. */
#ifndef OMIKEYFS_URLENC_H
#define OMIKEYFS_URLENC_H

#include <stddef.h>

/*
 * Percent-encode every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~),
 * which makes the result safe in a query value, a path segment and an
 * application/x-www-form-urlencoded body alike.  Returns a malloc'd string,
 * or NULL when out of memory.
 */
char *url_escape(const char *s);

/*
 * Decode len bytes of a query value: %XX (either case) and '+' as a space,
 * as HTML forms and Python's urlencode write it.  Returns a malloc'd
 * NUL-terminated string, or NULL for a bad %-sequence, a decoded NUL byte,
 * or no memory.
 */
char *url_unescape(const char *s, size_t len);

#endif
