/* httperror: the errno and the one-line message of a failed request, for
 * http.c (which runs the transfer) and http_message (declared in http.h). */
#ifndef OMIKEYFS_HTTPERROR_H
#define OMIKEYFS_HTTPERROR_H

#include <stddef.h>

#include <curl/curl.h>

#include "http.h"

/* The one place out->error is set: kind, -errnum and the message made one
 * line (control characters become spaces). */
void httperror_set(struct http_response *out, enum http_error_kind kind, int errnum,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The errno a libcurl failure stands for (EIO when none fits). */
int httperror_curl_errno(CURLcode code);

/* The errno of an HTTP error status: 401/403 EACCES, 404 ENOENT, 429
 * EAGAIN, others EIO. */
int httperror_status_errno(long status);

/* " (retry after N s)" for a Retry-After of N seconds, or "" when it is < 0. */
void httperror_retry_note(double retry_after, char *buf, size_t len);

#endif
