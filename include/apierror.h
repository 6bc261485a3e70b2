/* apierror: the "detail" of an API error body as one line a user can read. */
#ifndef OMIKEYFS_APIERROR_H
#define OMIKEYFS_APIERROR_H

#include <stddef.h>

/*
 * The "detail" of an API error body ({"detail": "..."}, FastAPI's style) as
 * one line of at most 300 bytes: a string as it is, a list or object as
 * compact JSON, control bytes as spaces.  Returns malloc'd text, or NULL
 * when the body is no such JSON.
 */
char *apierror_detail(const char *body, size_t len);

#endif
