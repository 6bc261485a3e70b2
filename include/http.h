/* http: one GET of the key list with libcurl.  Knows nothing of JSON. */
#ifndef OMIKEYFS_HTTP_H
#define OMIKEYFS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct http_config {
	const char *url;       /* full URL of the list: base + "/v1/dev/keys" */
	long timeout;          /* seconds for the whole request */
	long connect_timeout;  /* seconds to connect (<= timeout) */
	size_t max_size;       /* a larger 2xx body is an error, never buffered */
	const char *cafile;    /* extra CA bundle, or NULL */
};

struct http_response {
	long status;           /* HTTP status, 0 when no response */
	int curl_code;         /* CURLcode, 0 when the transfer completed */
	char curl_error[256];  /* curl's own words for curl_code */
	char *body;            /* malloc'd, NUL-terminated (not counted in len) */
	size_t len;
	bool too_large;        /* a 2xx body passed max_size */
	bool conditional;      /* If-None-Match / If-Modified-Since was sent */
	double retry_after;    /* Retry-After in seconds (<= 86400), or -1 */
	char *detail;          /* the API's "detail" rendered as text, or NULL */
};

struct http_client;

/*
 * Check an API base URL before any traffic: https://, or http:// to a
 * loopback host (127.0.0.0/8, [::1], localhost).  Returns 0, or -EINVAL with
 * a one-line reason in err.
 */
int http_check_url(const char *url, char *err, size_t errlen);

/* Process-wide libcurl setup and teardown (main calls these once). */
int http_global_init(void);
void http_global_cleanup(void);

struct http_client *http_new(const struct http_config *config);
void http_free(struct http_client *client);

/*
 * GET the list with "Authorization: Bearer token".  Redirects are not
 * followed; TLS is always verified; compressed bodies are accepted; the
 * connection is reused between calls; an ETag or Last-Modified seen earlier
 * (and free of control bytes) is sent back, so a 304 answers "unchanged".
 * An error body (status >= 300) is read only as far as 1 MiB for its
 * "detail"; past that the transfer stops and the status alone decides.
 * Always fills *out (free it with http_response_free) and returns what
 * http_describe returns.
 */
int http_get(struct http_client *client, const char *token,
	     struct http_response *out);
void http_response_free(struct http_response *resp);

/* Forget the ETag and Last-Modified of the last 200: its body was not
 * accepted, so a 304 to them must not read as "the list is unchanged". */
void http_forget_validators(struct http_client *client);

/*
 * The one place HTTP and transport failures become an errno and a human
 * line: 0 for 2xx and for 304 to a conditional request (a 304 to any other
 * is -EIO), otherwise -errno (401/403 -EACCES, 404 -ENOENT,
 * 429 -EAGAIN, 5xx -EIO, timeout -ETIMEDOUT, refused -ECONNREFUSED, DNS
 * -EHOSTUNREACH, TLS -EPROTO, too large -EFBIG, anything else -EIO) and msg
 * gets e.g. "HTTP 401: Invalid authentication credentials".  msg may be NULL.
 */
int http_describe(const struct http_response *resp, char *msg, size_t msglen);

#endif
