/* timestamp: RFC 3339 times as the API writes them -> struct timespec.
 * Pure: no time zone database, no environment. */
#ifndef OMIKEYFS_TIMESTAMP_H
#define OMIKEYFS_TIMESTAMP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/*
 * RFC 3339 time: "YYYY-MM-DDTHH:MM:SS", optional fraction (any number of
 * digits, nanoseconds kept), then "Z", "+HH:MM", "-HH:MM" or nothing (UTC).
 * 't', 'z' and ' ' as separator are accepted.  Returns false when s is not
 * such a time, leaving *out as it was.  s need not be NUL-terminated.
 */
bool timestamp_parse(const char *s, size_t len, struct timespec *out);

#endif
