/* http: one request to one endpoint with libcurl.  Knows nothing of JSON. */
#ifndef OMIKEYFS_HTTP_H
#define OMIKEYFS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct http_config {
	const char *url;      /* the one endpoint this client talks to */
	long timeout;         /* seconds for the whole request, > 0 */
	long connect_timeout; /* seconds to connect, 0 < connect_timeout <= timeout */
	size_t max_size;      /* a larger 2xx body is an error, never buffered; > 0 */
	const char *cafile;   /* extra CA bundle, or NULL */
	/* Polled about once a second during a transfer (NULL: never): true
	 * aborts it with -ECANCELED, however the network behaves. */
	bool (*cancelled)(void *ctx);
	void *cancel_ctx;
};

enum http_error_kind {
	HTTP_ERR_NONE,      /* 2xx, or 304 to a conditional GET */
	HTTP_ERR_LOCAL,     /* not the network: a refused URL, out of memory */
	HTTP_ERR_TRANSPORT, /* DNS, connect, TLS, timeout, a cut transfer */
	HTTP_ERR_STATUS,    /* the server answered 4xx or 5xx */
	HTTP_ERR_REDIRECT,  /* a 3xx other than 304: never followed */
	HTTP_ERR_TOO_LARGE, /* a 2xx body passed max_size */
	HTTP_ERR_PROTOCOL,  /* no status, a 304 nobody asked for, or a header
			     * line larger than libcurl takes */
};

/* Set once, where the failure is seen. */
struct http_error {
	enum http_error_kind kind;
	int err;           /* 0, or -errno: 401/403/426 -EACCES, 404 -ENOENT,
			    * 429 -EAGAIN, other statuses -EIO; timeout
			    * -ETIMEDOUT, connect -ECONNREFUSED, DNS
			    * -EHOSTUNREACH, TLS -EPROTO, too large -EFBIG,
			    * refused URL -EINVAL, memory -ENOMEM, aborted
			    * by config.cancelled -ECANCELED, else -EIO */
	char message[256]; /* one line, never a secret; "" for HTTP_ERR_NONE */
};

struct http_response {
	long status; /* HTTP status, 0 when no response */
	char *body;  /* malloc'd, NUL-terminated (not counted in len);
		      * a 2xx body, or an error body (status >= 300) of
		      * at most 1 MiB; "" otherwise */
	size_t len;
	bool conditional;   /* If-None-Match was sent */
	double retry_after; /* Retry-After in seconds, or -1 */
	struct http_error error;
};

struct http_client;

/* Process-wide libcurl setup and teardown (main calls these once). */
int http_global_init(void);
void http_global_cleanup(void);

/*
 * A client for config->url alone, so that each secret reaches only its own
 * host.  A URL that url_check_endpoint refuses gets a client that refuses
 * every request.  NULL when out of memory or config is invalid.
 */
struct http_client *http_new(const struct http_config *config);
void http_free(struct http_client *client);

/*
 * GET the endpoint, with "Authorization: Bearer BEARER" unless bearer is
 * NULL.  The caller checks the bearer first (token_ok).  Redirects are
 * never followed; TLS is always verified; compressed bodies are accepted;
 * the connection is reused between calls; an ETag seen on an earlier 200
 * (and free of control bytes) is sent back, so a 304 answers "unchanged".
 * An error body past 1 MiB stops the transfer and the status alone decides.
 * Always fills *out (free it with http_response_free) and returns
 * out->error.err.
 */
int http_get(struct http_client *client, const char *bearer, struct http_response *out);

/*
 * POST len bytes of body as content_type to the endpoint, by the same rules
 * as http_get but never conditional.  The body is handed to libcurl
 * without a copy, the header holding the bearer is wiped, and neither ever
 * shows in a message.
 */
int http_post(struct http_client *client, const char *content_type, const char *body, size_t len,
	      const char *bearer, struct http_response *out);

/* DELETE the endpoint, by the same rules as http_get but never conditional
 * and with no body sent; a 204 is a success with an empty body. */
int http_delete(struct http_client *client, const char *bearer, struct http_response *out);

/* Wipes and frees out->body (it may hold a token). */
void http_response_free(struct http_response *resp);

/* Forget the ETag of the last 200: its body was not accepted, so a 304 to
 * it must not read as "the list is unchanged". */
void http_forget_validators(struct http_client *client);

/*
 * resp->error.message, except that for HTTP_ERR_STATUS a non-empty detail
 * (the server's own words, one line, from the error body) is put in:
 * "HTTP 401: Invalid authentication credentials" where the message alone
 * says "HTTP 401 (no detail)".  msg gets "" when there is no error.
 */
void http_message(const struct http_response *resp, const char *detail, char *msg, size_t msglen);

#endif
