/*
 * http: one request to the client's one endpoint with libcurl; what comes
 * back is taken in by httpresponse.c.  Knows nothing of JSON: an error body
 * is handed back as bytes.
 *
 * Security rules kept here:
 *  - a client talks to its own URL only: redirects are never followed, and
 *    plain http (loopback only) never goes through a proxy;
 *  - the bearer goes into one header, built in a wiped buffer, as the header
 *    list is wiped; a POST body is handed to libcurl without a copy;
 *  - TLS peer and host verification are always on;
 *  - nothing logs, CURLOPT_VERBOSE is never set, and no message is made from
 *    a header or body sent, nor from the URL's path or query;
 *  - a 2xx body past max_size is never buffered, nor an error body past
 *    HTTP_ERROR_BODY_MAX (httpresponse.c); bodies are wiped before they are
 *    freed.
 *
 * Not thread-safe: the cache's single-flight refresh means one request at a
 * time, which is also what lets the one easy handle (and its connection) be
 * reused.  A revoke makes a client of its own for its key's URL.
 */
#include "http.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "httperror.h"
#include "httpresponse.h"
#include "secret.h"
#include "url.h"

#ifndef OMIKEYFS_VERSION
#define OMIKEYFS_VERSION "0"
#endif

struct http_client {
	CURL *curl;
	char *url;
	char url_error[256];  /* why url was refused, "" when it was not */
	char authority[128];  /* "host:port" of url, for messages */
	long timeout;         /* seconds */
	long connect_timeout; /* seconds */
	size_t max_size;
	char *cafile;
	char *etag; /* of the last 200, sent back as If-None-Match */
	bool (*cancelled)(void *ctx);
	void *cancel_ctx;
	char errbuf[CURL_ERROR_SIZE];
};

int http_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void http_global_cleanup(void)
{
	curl_global_cleanup();
}

struct http_client *http_new(const struct http_config *config)
{
	struct http_client *c;

	if (!config || !config->url || config->timeout <= 0 || config->max_size == 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->url = strdup(config->url);
	if (config->cafile)
		c->cafile = strdup(config->cafile);
	c->curl = curl_easy_init();
	if (!c->url || !c->curl || (config->cafile && !c->cafile)) {
		http_free(c);
		return NULL;
	}
	/* Defence in depth: the caller checked the URL already, but a refused
	 * URL must never get a request, whoever builds the client. */
	url_check_endpoint(c->url, c->url_error, sizeof(c->url_error));
	url_authority(c->url, c->authority, sizeof(c->authority));
	c->timeout = config->timeout;
	c->connect_timeout = config->connect_timeout;
	if (c->connect_timeout <= 0 || c->connect_timeout > c->timeout)
		c->connect_timeout = c->timeout;
	c->cancelled = config->cancelled;
	c->cancel_ctx = config->cancel_ctx;
	c->max_size = config->max_size;
	if (c->max_size > SIZE_MAX / 4)
		c->max_size = SIZE_MAX / 4;
	return c;
}

void http_free(struct http_client *client)
{
	if (!client)
		return;
	if (client->curl)
		curl_easy_cleanup(client->curl);
	free(client->url);
	free(client->cafile);
	free(client->etag);
	free(client);
}

void http_forget_validators(struct http_client *client)
{
	set_str(&client->etag, NULL);
}

void http_response_free(struct http_response *resp)
{
	if (!resp)
		return;
	secret_free_len(resp->body, resp->len);
	resp->body = NULL;
	resp->len = 0;
}

/* libcurl calls this at least once a second, even while nothing arrives:
 * non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK). */
static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct http_client *c = userp;

	return c->cancelled(c->cancel_ctx) ? 1 : 0;
}

/* libcurl refuses a header line past its limit (100 KiB) with
 * CURLE_OUT_OF_MEMORY up to 8.5, CURLE_TOO_LARGE since: no memory ran out. */
static bool header_too_large(const struct transfer *t, CURLcode code)
{
#if LIBCURL_VERSION_NUM >= 0x080600
	if (code == CURLE_TOO_LARGE)
		return true;
#endif
	return code == CURLE_OUT_OF_MEMORY && t->in_headers;
}

static void transport_fail(struct http_client *c, const struct transfer *t, CURLcode code,
			   struct http_response *out)
{
	int e = httperror_curl_errno(code);
	const char *words = c->errbuf[0] ? c->errbuf : curl_easy_strerror(code);
	curl_off_t sending = 0, resolved = 0;
	long os_errno = 0;

	if (header_too_large(t, code)) {
		httperror_set(out, HTTP_ERR_PROTOCOL, EIO,
			      "the API sent a response header larger "
			      "than libcurl accepts");
		return;
	}
	switch (e) {
	case ETIMEDOUT:
		/* Which limit fired, the timers tell: nothing sent yet means the
		 * connect one (nothing resolved yet: DNS).  Not the connect
		 * timer, which stays 0 on a reused connection. */
		curl_easy_getinfo(c->curl, CURLINFO_PRETRANSFER_TIME_T, &sending);
		curl_easy_getinfo(c->curl, CURLINFO_NAMELOOKUP_TIME_T, &resolved);
		httperror_set(out, HTTP_ERR_TRANSPORT, e, "%stimed out after %ld s",
			      sending > 0    ? ""
			      : resolved > 0 ? "connect "
					     : "DNS lookup ",
			      sending > 0 ? c->timeout : c->connect_timeout);
		break;
	case ECONNREFUSED:
		/* curl says "Couldn't connect to server"; the socket says why. */
		curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
		httperror_set(out, HTTP_ERR_TRANSPORT, e, "could not connect to %s: %s",
			      c->authority,
			      os_errno > 0 ? strerror((int)os_errno) : curl_easy_strerror(code));
		break;
	case EHOSTUNREACH:
		httperror_set(out, HTTP_ERR_TRANSPORT, e, "DNS: %s", words);
		break;
	case EPROTO:
		httperror_set(out, HTTP_ERR_TRANSPORT, e, "TLS: %s", words);
		break;
	case EINVAL:
		httperror_set(out, HTTP_ERR_LOCAL, e, "%s", words);
		break;
	case ENOMEM:
		httperror_set(out, HTTP_ERR_LOCAL, e, "out of memory");
		break;
	case ECANCELED:
		httperror_set(out, HTTP_ERR_LOCAL, e, "transfer aborted: stop requested");
		break;
	default:
		httperror_set(out, HTTP_ERR_TRANSPORT, e, "transfer failed: %s", words);
		break;
	}
}

/* What the finished transfer amounts to, set once in out->error. */
static void classify(struct http_client *c, const struct transfer *t, CURLcode code,
		     struct http_response *out)
{
	long s = out->status;
	char wait[48];

	if (t->too_large || code == CURLE_FILESIZE_EXCEEDED) {
		httperror_set(out, HTTP_ERR_TOO_LARGE, EFBIG,
			      "response larger than %zu bytes (max_size)", c->max_size);
	} else if (code != CURLE_OK) {
		transport_fail(c, t, code, out);
	} else if (s == 304 && !out->conditional) {
		/* Nothing was sent to compare with: "unchanged" since what? */
		httperror_set(out, HTTP_ERR_PROTOCOL, EIO,
			      "HTTP 304 to a request that was not conditional");
	} else if ((s >= 200 && s < 300) || s == 304) {
		return;
	} else if (s == 0) {
		httperror_set(out, HTTP_ERR_PROTOCOL, EIO, "no HTTP response");
	} else if (s < 400) {
		char *location = NULL;
		char where[128] = "";

		curl_easy_getinfo(c->curl, CURLINFO_REDIRECT_URL, &location);
		url_authority(location, where, sizeof(where));
		httperror_set(out, HTTP_ERR_REDIRECT, EIO,
			      "HTTP %ld: redirects are not followed (Location: %s)", s,
			      where[0] ? where : "(none)");
	} else {
		httperror_retry_note(out->retry_after, wait, sizeof(wait));
		httperror_set(out, HTTP_ERR_STATUS, httperror_status_errno(s),
			      "HTTP %ld (no detail)%s", s, wait);
	}
}

/* Wipe every header string (the Authorization one holds the token) before
 * the list is freed. */
static void free_headers(struct curl_slist *list)
{
	for (struct curl_slist *l = list; l; l = l->next)
		if (l->data)
			explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

/* Appends name (with its ": ") and value, joined in a buffer wiped once
 * libcurl has copied it (the value may be a token); false without memory. */
static bool add_header(struct curl_slist **list, const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 1;
	struct curl_slist *l;
	char *h = malloc(n);

	if (!h)
		return false;
	snprintf(h, n, "%s%s", name, value);
	l = curl_slist_append(*list, h);
	secret_free_len(h, n);
	if (l)
		*list = l;
	return l != NULL;
}

static long ms(long seconds)
{
	return seconds > LONG_MAX / 1000 ? LONG_MAX : seconds * 1000;
}

static void setup_handle(struct http_client *c, struct transfer *t, struct curl_slist *headers)
{
	CURL *h = c->curl;

	/* Everything is set again for each request, on a handle kept between
	 * requests only for its connection cache. */
	curl_easy_setopt(h, CURLOPT_URL, c->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
	curl_easy_setopt(h, CURLOPT_VERBOSE, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* The progress callback only to abort: a stuck transfer must not
	 * outlive a stop request by more than a second. */
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, c->cancelled ? 0L : 1L);
	if (c->cancelled) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
	}
	curl_easy_setopt(h, CURLOPT_FAILONERROR, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	/* CURLOPT_CAINFO replaces the default bundle file, but libcurl keeps
	 * its default CA directory (/etc/ssl/certs on Debian), so cafile=
	 * adds a CA to the system's rather than replacing them. */
	if (c->cafile)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cafile);
	/* A plain http:// URL is loopback only (url_check); its token must
	 * not travel in clear text to a proxy from the environment. */
	if (strncasecmp(c->url, "http://", 7) == 0)
		curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "omikeyfs/" OMIKEYFS_VERSION);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms(c->timeout));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms(c->connect_timeout));
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	/* No CURLOPT_MAXFILESIZE: httpresponse_on_body applies max_size to
	 * 2xx bodies only, so an error body keeps its status. */
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)0);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, httpresponse_on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, httpresponse_on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
	c->errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
}

enum http_method { HTTP_GET, HTTP_POST, HTTP_DELETE };

/* The request's headers: the bearer, Accept, and a POST's content type or
 * a GET's If-None-Match (then out->conditional).  False without memory. */
static bool request_headers(const struct http_client *c, enum http_method method,
			    const char *content_type, const char *bearer,
			    struct curl_slist **headers, struct http_response *out)
{
	/* No check of the bearer here: callers check it with token_ok. */
	bool ok = (!bearer || add_header(headers, "Authorization: Bearer ", bearer)) &&
		  add_header(headers, "Accept: ", "application/json");

	if (method == HTTP_POST) {
		/* No "Expect: 100-continue" wait before a larger body. */
		ok = ok && add_header(headers, "Content-Type: ", content_type) &&
		     add_header(headers, "Expect:", "");
	} else if (method == HTTP_GET && c->etag) {
		/* Only then may a 304 answer "unchanged" (classify). */
		out->conditional = true;
		ok = ok && add_header(headers, "If-None-Match: ", c->etag);
	}
	return ok;
}

/* One transfer on c's handle; the handle keeps no pointer into it after. */
static CURLcode perform(struct http_client *c, struct transfer *t, struct curl_slist *headers,
			enum http_method method, const char *body, size_t len)
{
	CURLcode code;

	setup_handle(c, t, headers);
	if (method == HTTP_POST) {
		/* Not COPYPOSTFIELDS: libcurl keeps no copy of the body to wipe. */
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(body ? len : 0));
	} else {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
		/* After HTTPGET, which resets the method: no body either way. */
		if (method == HTTP_DELETE)
			curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
	code = curl_easy_perform(c->curl);
	/* The handle must not keep pointers to what the caller frees. */
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, NULL);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
	if (method == HTTP_POST)
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, NULL);
	return code;
}

/* What of a classified transfer is kept: the ETag, and the body when it
 * may be handed out (then t->buf is NULL). */
static void keep_response(struct http_client *c, struct transfer *t, enum http_method method,
			  struct http_response *out)
{
	/* A 304 may refresh the ETag, never drop it; a 200 replaces it. */
	if (method == HTTP_GET && out->error.kind == HTTP_ERR_NONE &&
	    (out->status == 200 || (out->status == 304 && t->etag))) {
		set_str(&c->etag, t->etag);
		t->etag = NULL;
	}
	/* A 304 has no body; a cut-off or failed one is never handed out. */
	if ((out->error.kind == HTTP_ERR_NONE && out->status != 304) ||
	    ((out->error.kind == HTTP_ERR_STATUS || out->error.kind == HTTP_ERR_REDIRECT) &&
	     !t->error_body_cut)) {
		out->body = t->buf;
		out->len = t->len;
		t->buf = NULL;
	}
}

/* The request behind http_get, http_post (with content_type) and
 * http_delete. */
static int http_request(struct http_client *c, enum http_method method, const char *content_type,
			const char *body, size_t len, const char *bearer, struct http_response *out)
{
	struct transfer t = { 0 };
	struct curl_slist *headers = NULL;
	CURLcode code;

	memset(out, 0, sizeof(*out));
	out->retry_after = -1;
	if (!c || (method == HTTP_POST && !content_type)) {
		httperror_set(out, HTTP_ERR_LOCAL, EINVAL, "no HTTP client or content type");
		goto done;
	}
	if (c->url_error[0]) {
		httperror_set(out, HTTP_ERR_LOCAL, EINVAL, "%s", c->url_error);
		goto done;
	}
	if (!request_headers(c, method, content_type, bearer, &headers, out)) {
		httperror_set(out, HTTP_ERR_LOCAL, ENOMEM, "out of memory");
		goto done;
	}
	t.curl = c->curl;
	t.max_size = c->max_size;
	code = perform(c, &t, headers, method, body, len);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &out->status);
	/* httpresponse_on_body stopped an error body it had no use for: the
	 * transfer did what was wanted, and the status tells what happened. */
	if (code == CURLE_WRITE_ERROR && t.error_body_cut)
		code = CURLE_OK;
	out->retry_after = httpresponse_retry_after(t.retry_after);
	classify(c, &t, code, out);
	keep_response(c, &t, method, out);

done:
	free_headers(headers);
	secret_free_len(t.buf, t.cap);
	free(t.etag);
	free(t.retry_after);
	if (!out->body) {
		out->body = calloc(1, 1);
		out->len = 0;
		if (!out->body && out->error.kind == HTTP_ERR_NONE)
			httperror_set(out, HTTP_ERR_LOCAL, ENOMEM, "out of memory");
	}
	return out->error.err;
}

int http_get(struct http_client *client, const char *bearer, struct http_response *out)
{
	return http_request(client, HTTP_GET, NULL, NULL, 0, bearer, out);
}

int http_post(struct http_client *client, const char *content_type, const char *body, size_t len,
	      const char *bearer, struct http_response *out)
{
	return http_request(client, HTTP_POST, content_type, body, len, bearer, out);
}

int http_delete(struct http_client *client, const char *bearer, struct http_response *out)
{
	return http_request(client, HTTP_DELETE, NULL, NULL, 0, bearer, out);
}
