/* httpresponse: what a transfer receives, for http.c: the body, buffered
 * within its cap and wiped as it grows, and the headers kept of it (ETag,
 * Retry-After).  libcurl's write and header callbacks. */
#ifndef OMIKEYFS_HTTPRESPONSE_H
#define OMIKEYFS_HTTPRESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include <curl/curl.h>

#define HTTP_ERROR_BODY_MAX (1024 * 1024) /* larger error bodies: status only */

/* The state of one transfer, shared by the write and header callbacks. */
struct transfer {
	CURL *curl;      /* the client's handle: the status, Content-Length */
	size_t max_size; /* the client's cap on a 2xx body */
	char *buf;
	size_t len;
	size_t cap;
	bool too_large;      /* a 2xx body passed max_size */
	bool error_body_cut; /* an error body passed HTTP_ERROR_BODY_MAX */
	bool in_headers;     /* between a status line and the blank line */
	/* headers of the (last) response */
	char *etag;
	char *retry_after;
};

/* Frees the string in *slot and puts value there. */
static inline void set_str(char **slot, char *value)
{
	free(*slot);
	*slot = value;
}

/* CURLOPT_WRITEFUNCTION, with a struct transfer as userp: appends to
 * t->buf, or aborts the transfer past max_size (t->too_large) or past
 * HTTP_ERROR_BODY_MAX of an error body (t->error_body_cut). */
size_t httpresponse_on_body(char *data, size_t size, size_t nmemb, void *userp);

/* CURLOPT_HEADERFUNCTION, with a struct transfer as userp: keeps the last
 * response's ETag and Retry-After, when short and free of control bytes. */
size_t httpresponse_on_header(char *data, size_t size, size_t nmemb, void *userp);

/* Seconds or an HTTP date; -1 when absent or unreadable.  Not capped: the
 * cache decides how long it really waits. */
double httpresponse_retry_after(const char *v);

#endif
