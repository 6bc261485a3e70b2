/*
 * http: one GET of the key list with libcurl.  Knows nothing of the key
 * list's JSON; parses only an error body's "detail" for the message.
 *
 * Security rules kept here:
 *  - the token goes into exactly one header, "Authorization: Bearer TOKEN",
 *    built in a buffer that is wiped after use, and only to the configured
 *    URL: redirects are never followed, and a plain-http (loopback) URL
 *    never goes through a proxy;
 *  - a token with a CR or LF (or any other control character) is refused
 *    before anything is sent, so it cannot inject headers;
 *  - TLS peer and host verification are always on;
 *  - nothing here logs, and CURLOPT_VERBOSE is never set, so neither the
 *    token nor the Authorization header can reach a log;
 *  - a 2xx body larger than max_size is never buffered, nor any error body
 *    past HTTP_DETAIL_PARSE_MAX;
 *  - an ETag or Last-Modified holding a control byte is never sent back.
 *
 * An http_client is not thread-safe: the cache's single-flight refresh means
 * one request at a time, which is also what lets the one easy handle (and
 * its connection) be reused.
 */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#ifndef OMIKEYFS_VERSION
#define OMIKEYFS_VERSION "0"
#endif

#define HTTP_DEFAULT_MAX_SIZE ((size_t)64 * 1024 * 1024)
#define HTTP_DEFAULT_TIMEOUT 30L
#define HTTP_DETAIL_MAX 300        /* bytes of "detail" kept for a message */
#define HTTP_DETAIL_PARSE_MAX (1024 * 1024) /* larger error bodies: no detail */
#define HTTP_VALIDATOR_MAX 1024    /* longest ETag / Last-Modified we keep */
#define HTTP_RETRY_AFTER_MAX 86400.0 /* one day, as the cache caps it */
#define HTTP_FIRST_ALLOC 16384

struct http_client {
	CURL *curl;
	char *url;
	bool url_ok;
	char url_error[256];
	bool plain_http;
	long timeout;          /* seconds */
	long connect_timeout;  /* seconds */
	size_t max_size;
	char *cafile;
	/* validators of the last 200, sent back as a conditional request */
	char *etag;
	char *last_modified;
	char errbuf[CURL_ERROR_SIZE];
};

/* The state of one transfer, shared by the write and header callbacks. */
struct transfer {
	struct http_client *client;
	char *buf;
	size_t len;
	size_t cap;
	bool too_large;        /* a 2xx body passed max_size */
	bool error_body_cut;   /* an error body passed HTTP_DETAIL_PARSE_MAX */
	/* headers of the (last) response */
	char *etag;
	char *last_modified;
	char *retry_after;
};

/* ------------------------------------------------------------------ */
/* small helpers                                                      */

static char *dup_range(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static void set_str(char **slot, char *value)
{
	free(*slot);
	*slot = value;
}

static void copy_str(char *dst, size_t dstlen, const char *src)
{
	if (dstlen == 0)
		return;
	snprintf(dst, dstlen, "%s", src ? src : "");
}

/* One line of text: control characters (and DEL) become spaces. */
static void sanitize_line(char *s)
{
	for (unsigned char *p = (unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

/* Cut s to at most max bytes without splitting a UTF-8 sequence, marking
 * the cut with "...". */
static void cap_utf8(char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max || max < 4)
		return;
	n = max - 3;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(s + n, "...", 4);
}

static bool ascii_ieq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

/* ------------------------------------------------------------------ */
/* URL check                                                          */

static int url_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int url_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		sanitize_line(err);
	}
	return -EINVAL;
}

/* A dotted quad of four decimal numbers 0..255 (no leading zeros, which
 * some parsers read as octal) whose first number is 127. */
static bool is_loopback_ipv4(const char *host)
{
	const char *p = host;
	int parts[4];

	for (int i = 0; i < 4; i++) {
		int v = 0, digits = 0;

		if (i > 0) {
			if (*p != '.')
				return false;
			p++;
		}
		while (*p >= '0' && *p <= '9') {
			if (digits == 1 && v == 0)
				return false; /* leading zero */
			v = v * 10 + (*p - '0');
			if (++digits > 3 || v > 255)
				return false;
			p++;
		}
		if (digits == 0)
			return false;
		parts[i] = v;
	}
	return *p == '\0' && parts[0] == 127;
}

static bool is_loopback_ipv6(const char *host)
{
	size_t n = strlen(host);
	char inner[64];
	struct in6_addr a;

	if (n < 3 || n - 2 >= sizeof(inner) || host[0] != '[' || host[n - 1] != ']')
		return false;
	memcpy(inner, host + 1, n - 2);
	inner[n - 2] = '\0';
	if (inet_pton(AF_INET6, inner, &a) != 1)
		return false;
	return IN6_IS_ADDR_LOOPBACK(&a);
}

static bool is_loopback_host(const char *host)
{
	return ascii_ieq(host, "localhost") || is_loopback_ipv4(host) ||
	       is_loopback_ipv6(host);
}

int http_check_url(const char *url, char *err, size_t errlen)
{
	const char *rest, *end;
	bool https;
	CURLU *u;
	CURLUcode rc;
	char *host = NULL, *part = NULL;
	int ret = 0;

	if (err && errlen)
		err[0] = '\0';
	if (!url || !*url)
		return url_fail(err, errlen, "empty URL");
	for (const unsigned char *p = (const unsigned char *)url; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return url_fail(err, errlen,
					"URL contains a space or control character");

	if (strncasecmp(url, "https://", 8) == 0) {
		https = true;
		rest = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		https = false;
		rest = url + 7;
	} else if ((rest = strstr(url, "://")) != NULL) {
		return url_fail(err, errlen,
				"unsupported URL scheme %.*s:// (use https://)",
				(int)(rest - url > 16 ? 16 : rest - url), url);
	} else {
		return url_fail(err, errlen,
				"URL must start with https://");
	}

	/* The authority ends at the first '/', '?' or '#'; credentials in it
	 * would be sent as Basic auth (or confuse a reader about the host). */
	end = rest + strcspn(rest, "/?#");
	if (end == rest)
		return url_fail(err, errlen, "URL has no host");
	if (memchr(rest, '@', (size_t)(end - rest)))
		return url_fail(err, errlen,
				"URL must not contain user:password@");
	if (strpbrk(url, "?#"))
		return url_fail(err, errlen,
				"API URL must not have a query or fragment");
	if (strchr(url, '\\'))
		return url_fail(err, errlen, "URL contains a backslash");

	u = curl_url();
	if (!u)
		return url_fail(err, errlen, "out of memory");
	rc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (rc != CURLUE_OK) {
		ret = url_fail(err, errlen, "malformed URL: %s",
			       curl_url_strerror(rc));
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_OPTIONS, &part, 0) == CURLUE_OK) {
		ret = url_fail(err, errlen,
			       "URL must not contain user:password@");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host ||
	    !*host) {
		ret = url_fail(err, errlen, "URL has no host");
		goto out;
	}
	if (!https && !is_loopback_host(host)) {
		ret = url_fail(err, errlen,
			       "refusing http:// to a non-loopback host %s "
			       "(use https://)", host);
		goto out;
	}
out:
	curl_free(part);
	curl_free(host);
	curl_url_cleanup(u);
	return ret;
}

/* ------------------------------------------------------------------ */
/* global init, client                                                */

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

	if (!config || !config->url)
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
	/* Defence in depth: the caller checked the base URL already, but a
	 * refused URL must never get a request, whoever builds the client. */
	c->url_ok = http_check_url(c->url, c->url_error, sizeof(c->url_error)) == 0;
	c->plain_http = strncasecmp(c->url, "http://", 7) == 0;
	c->timeout = config->timeout > 0 ? config->timeout : HTTP_DEFAULT_TIMEOUT;
	c->connect_timeout = config->connect_timeout > 0 &&
					     config->connect_timeout <= c->timeout
				     ? config->connect_timeout
				     : c->timeout;
	c->max_size = config->max_size ? config->max_size : HTTP_DEFAULT_MAX_SIZE;
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
	free(client->last_modified);
	free(client);
}

void http_forget_validators(struct http_client *client)
{
	set_str(&client->etag, NULL);
	set_str(&client->last_modified, NULL);
}

void http_response_free(struct http_response *resp)
{
	if (!resp)
		return;
	free(resp->body);
	free(resp->detail);
	resp->body = NULL;
	resp->detail = NULL;
	resp->len = 0;
}

/* ------------------------------------------------------------------ */
/* callbacks                                                          */

/*
 * Content-Length already says the body passes max: refused at its first
 * bytes.  Checked here rather than with CURLOPT_MAXFILESIZE, which would
 * refuse an error body too and hide its status.
 */
static bool length_over(const struct transfer *t, size_t max)
{
	curl_off_t length = -1;

	if (t->len > 0)
		return false; /* checked on the first bytes already */
	if (curl_easy_getinfo(t->client->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
			      &length) != CURLE_OK)
		return false;
	return length > 0 && length > (curl_off_t)max;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct transfer *t = userp;
	size_t n = size * nmemb;
	size_t max = t->client->max_size;
	long status = 0;

	/* The status line is in by the time the body starts. */
	curl_easy_getinfo(t->client->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 300) {
		/* An error body only feeds "detail": past what extract_detail
		 * reads, the status alone decides, so stop without calling the
		 * response too large. */
		max = HTTP_DETAIL_PARSE_MAX;
		if (n > max || t->len > max - n) {
			t->error_body_cut = true;
			return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
		}
	} else if (n > max || t->len > max - n || length_over(t, max)) {
		t->too_large = true;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : HTTP_FIRST_ALLOC;
		char *p;

		while (cap < t->len + n + 1)
			cap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
		if (cap > max + 1)
			cap = max + 1;
		p = realloc(t->buf, cap);
		if (!p)
			return 0;
		t->buf = p;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, data, n);
	t->len += n;
	t->buf[t->len] = '\0';
	return n;
}

/* A control byte (tab aside) or DEL: such a validator is not sent back. */
static bool has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return true;
	}
	return false;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
	struct transfer *t = userp;
	size_t n = size * nmemb;
	const char *colon, *v, *e;
	size_t namelen;
	char **slot = NULL;

	/* A new status line starts a new response: forget earlier headers. */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		set_str(&t->etag, NULL);
		set_str(&t->last_modified, NULL);
		set_str(&t->retry_after, NULL);
		return n;
	}
	colon = memchr(data, ':', n);
	if (!colon)
		return n;
	namelen = (size_t)(colon - data);
	if (namelen == 4 && strncasecmp(data, "ETag", 4) == 0)
		slot = &t->etag;
	else if (namelen == 13 && strncasecmp(data, "Last-Modified", 13) == 0)
		slot = &t->last_modified;
	else if (namelen == 11 && strncasecmp(data, "Retry-After", 11) == 0)
		slot = &t->retry_after;
	else
		return n;

	v = colon + 1;
	e = data + n;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' ||
			 e[-1] == '\t'))
		e--;
	if (e == v || (size_t)(e - v) > HTTP_VALIDATOR_MAX ||
	    memchr(v, '\0', (size_t)(e - v)) || memchr(v, '\r', (size_t)(e - v)) ||
	    memchr(v, '\n', (size_t)(e - v)) ||
	    (slot != &t->retry_after && has_control(v, (size_t)(e - v)))) {
		set_str(slot, NULL);
		return n;
	}
	set_str(slot, dup_range(v, (size_t)(e - v)));
	return n;
}

/* ------------------------------------------------------------------ */
/* response helpers                                                   */

static double cap_wait(double seconds)
{
	return seconds > HTTP_RETRY_AFTER_MAX ? HTTP_RETRY_AFTER_MAX : seconds;
}

static double parse_retry_after(const char *v)
{
	time_t when, now;
	size_t i;

	if (!v || !*v)
		return -1;
	for (i = 0; v[i] >= '0' && v[i] <= '9'; i++)
		;
	/* Capped at a day: a longer wait is no use to anyone, and the
	 * message then says what the cache will really do. */
	if (v[i] == '\0')
		return cap_wait(strtod(v, NULL));
	when = curl_getdate(v, NULL);
	if (when == (time_t)-1)
		return -1;
	now = time(NULL);
	if (when <= now)
		return 0.0;
	return cap_wait((double)(when - now));
}

/* The API's "detail" as one capped line, or NULL. */
static char *extract_detail(const char *body, size_t len)
{
	struct json_tokener *tok;
	struct json_object *root, *detail;
	const char *text = NULL;
	size_t textlen = 0;
	char *out = NULL;

	if (!body || len == 0 || len > HTTP_DETAIL_PARSE_MAX || len > INT_MAX)
		return NULL;
	tok = json_tokener_new();
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, body, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success)
		goto out;
	/* Only white space may follow the JSON value. */
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
		if (!isspace((unsigned char)body[i]))
			goto out;
	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "detail", &detail))
		goto out;
	switch (json_object_get_type(detail)) {
	case json_type_string:
		text = json_object_get_string(detail);
		textlen = (size_t)json_object_get_string_len(detail);
		break;
	case json_type_object:
	case json_type_array:
		text = json_object_to_json_string_ext(
			detail, JSON_C_TO_STRING_PLAIN |
					JSON_C_TO_STRING_NOSLASHESCAPE);
		textlen = text ? strlen(text) : 0;
		break;
	default:
		break;
	}
	if (!text)
		goto out;
	if (textlen > HTTP_DETAIL_MAX + 8)
		textlen = HTTP_DETAIL_MAX + 8;
	out = malloc(textlen + 1);
	if (!out)
		goto out;
	/* A string may hold "\u0000": copy by length, then make it one line. */
	for (size_t i = 0; i < textlen; i++) {
		unsigned char ch = (unsigned char)text[i];

		out[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	out[textlen] = '\0';
	cap_utf8(out, HTTP_DETAIL_MAX);
out:
	if (root)
		json_object_put(root);
	json_tokener_free(tok);
	return out;
}

/* "host[:port]" of an absolute URL (never its userinfo, path or query). */
static void url_host(const char *url, char *out, size_t outlen)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL;

	copy_str(out, outlen, "");
	if (!u)
		return;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host) {
		CURLUcode prc = curl_url_get(u, CURLUPART_PORT, &port,
					      CURLU_DEFAULT_PORT);

		if (prc == CURLUE_OK && port)
			snprintf(out, outlen, "%s:%s", host, port);
		else
			copy_str(out, outlen, host);
		sanitize_line(out);
		cap_utf8(out, 100);
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

/* Refuse locally: no request is sent.  Encoded as a curl "bad argument"
 * so that http_describe, which sees only the response, maps it to -EINVAL
 * with this message. */
static void refuse(struct http_response *out, const char *why)
{
	out->curl_code = CURLE_BAD_FUNCTION_ARGUMENT;
	copy_str(out->curl_error, sizeof(out->curl_error), why);
}

static bool token_ok(const char *token, struct http_response *out)
{
	if (!token || !*token) {
		refuse(out, "no API token");
		return false;
	}
	for (const unsigned char *p = (const unsigned char *)token; *p; p++) {
		if (*p == '\r' || *p == '\n') {
			refuse(out, "refusing to send an API token that contains "
				    "a line break (CR or LF)");
			return false;
		}
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
			refuse(out, "refusing to send an API token that contains "
				    "a control character");
			return false;
		}
	}
	return true;
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

static struct curl_slist *add_header(struct curl_slist *list, const char *h,
				     bool *failed)
{
	struct curl_slist *n;

	if (*failed)
		return list;
	n = curl_slist_append(list, h);
	if (!n) {
		*failed = true;
		return list;
	}
	return n;
}

static long ms(long seconds)
{
	return seconds > LONG_MAX / 1000 ? LONG_MAX : seconds * 1000;
}

static void setup_handle(struct http_client *c, struct transfer *t,
			 struct curl_slist *headers)
{
	CURL *h = c->curl;

	/* Everything is set again for each request, on a handle kept between
	 * requests only for its connection cache. */
	curl_easy_setopt(h, CURLOPT_URL, c->url);
	curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
	curl_easy_setopt(h, CURLOPT_VERBOSE, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
	curl_easy_setopt(h, CURLOPT_FAILONERROR, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	/* CURLOPT_CAINFO replaces the default bundle file, but libcurl keeps
	 * its default CA directory (/etc/ssl/certs on Debian), so cafile=
	 * adds a CA to the system's rather than replacing them. */
	if (c->cafile)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cafile);
	/* A plain http:// URL is loopback only (http_check_url); its token
	 * must not travel in clear text to a proxy from the environment. */
	if (c->plain_http)
		curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "omikeyfs/" OMIKEYFS_VERSION);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms(c->timeout));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms(c->connect_timeout));
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	/* No CURLOPT_MAXFILESIZE: on_body applies max_size to 2xx bodies
	 * only (length_over), so an error body keeps its status. */
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)0);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
	c->errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
}

/* curl says "Couldn't connect to server"; the socket's errno says why. */
static void describe_connect_failure(struct http_client *c,
				     struct http_response *out)
{
	long os_errno = 0;
	char where[160];

	curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
	if (os_errno <= 0)
		return;
	url_host(c->url, where, sizeof(where));
	if (where[0])
		snprintf(out->curl_error, sizeof(out->curl_error),
			 "Failed to connect to %s: %s", where,
			 strerror((int)os_errno));
	else
		snprintf(out->curl_error, sizeof(out->curl_error),
			 "Failed to connect: %s", strerror((int)os_errno));
}

int http_get(struct http_client *client, const char *token,
	     struct http_response *out)
{
	struct transfer t = { .client = client };
	struct curl_slist *headers = NULL;
	bool failed = false;
	char *auth = NULL;
	size_t authlen = 0;
	CURLcode code;

	memset(out, 0, sizeof(*out));
	out->retry_after = -1;
	if (!client) {
		refuse(out, "no HTTP client");
		goto done;
	}
	if (!client->url_ok) {
		refuse(out, client->url_error);
		goto done;
	}
	if (!token_ok(token, out))
		goto done;

	authlen = strlen("Authorization: Bearer ") + strlen(token) + 1;
	auth = malloc(authlen);
	if (!auth) {
		out->curl_code = CURLE_OUT_OF_MEMORY;
		goto done;
	}
	snprintf(auth, authlen, "Authorization: Bearer %s", token);
	headers = add_header(headers, auth, &failed);
	explicit_bzero(auth, authlen);
	free(auth);
	headers = add_header(headers, "Accept: application/json", &failed);
	if (client->etag || client->last_modified) {
		const char *name = client->etag ? "If-None-Match: "
						: "If-Modified-Since: ";
		const char *value = client->etag ? client->etag
						 : client->last_modified;
		size_t n = strlen(name) + strlen(value) + 1;
		char *h = malloc(n);

		/* Only then may a 304 answer "unchanged" (http_describe). */
		out->conditional = true;

		if (h) {
			snprintf(h, n, "%s%s", name, value);
			headers = add_header(headers, h, &failed);
			free(h);
		} else {
			failed = true;
		}
		/* Both validators, as RFC 9110 allows; a server that
		 * knows ETags uses If-None-Match and ignores the other. */
		if (client->etag && client->last_modified) {
			n = strlen("If-Modified-Since: ") +
			    strlen(client->last_modified) + 1;
			h = malloc(n);
			if (h) {
				snprintf(h, n, "If-Modified-Since: %s",
					 client->last_modified);
				headers = add_header(headers, h, &failed);
				free(h);
			} else {
				failed = true;
			}
		}
	}
	if (failed) {
		out->curl_code = CURLE_OUT_OF_MEMORY;
		goto done;
	}

	setup_handle(client, &t, headers);
	code = curl_easy_perform(client->curl);
	/* The handle must not keep pointers to what is freed below. */
	curl_easy_setopt(client->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(client->curl, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(client->curl, CURLOPT_HEADERDATA, NULL);
	curl_easy_setopt(client->curl, CURLOPT_ERRORBUFFER, NULL);

	curl_easy_getinfo(client->curl, CURLINFO_RESPONSE_CODE, &out->status);
	/* on_body stopped an error body it had no use for: the transfer
	 * did what was wanted, and the status tells what happened. */
	if (code == CURLE_WRITE_ERROR && t.error_body_cut)
		code = CURLE_OK;
	out->curl_code = (int)code;
	if (code != CURLE_OK)
		copy_str(out->curl_error, sizeof(out->curl_error),
			 client->errbuf[0] ? client->errbuf
					   : curl_easy_strerror(code));
	sanitize_line(out->curl_error);
	if (code == CURLE_COULDNT_CONNECT)
		describe_connect_failure(client, out);
	if (t.too_large || code == CURLE_FILESIZE_EXCEEDED) {
		out->too_large = true;
		snprintf(out->curl_error, sizeof(out->curl_error),
			 "response larger than %zu bytes (max_size)",
			 client->max_size);
	}
	out->retry_after = parse_retry_after(t.retry_after);

	if (out->status >= 300 && out->status < 400 && out->status != 304 &&
	    code == CURLE_OK) {
		char *location = NULL;
		char host[160];

		curl_easy_getinfo(client->curl, CURLINFO_REDIRECT_URL, &location);
		url_host(location ? location : "", host, sizeof(host));
		/* curl_code is 0 here, so curl_error is free to carry this. */
		snprintf(out->curl_error, sizeof(out->curl_error),
			 "Location: %s", host[0] ? host : "(none)");
	}

	if (code == CURLE_OK && !t.too_large) {
		if (out->status == 200) {
			set_str(&client->etag, t.etag);
			set_str(&client->last_modified, t.last_modified);
			t.etag = t.last_modified = NULL;
		} else if (out->status == 304 && out->conditional) {
			/* A 304 may refresh the validators, never drop them. */
			if (t.etag) {
				set_str(&client->etag, t.etag);
				t.etag = NULL;
			}
			if (t.last_modified) {
				set_str(&client->last_modified, t.last_modified);
				t.last_modified = NULL;
			}
		}
	}

	if (out->status >= 300 && out->status != 304 && !t.too_large &&
	    !t.error_body_cut)
		out->detail = extract_detail(t.buf, t.len);

	if (code != CURLE_OK || out->status == 304 || t.too_large ||
	    t.error_body_cut) {
		/* 304 has no body; a cut-off body is never handed out. */
		free(t.buf);
		t.buf = NULL;
		t.len = 0;
	}
	out->body = t.buf;
	out->len = t.len;
	t.buf = NULL;

done:
	free_headers(headers);
	free(t.buf);
	free(t.etag);
	free(t.last_modified);
	free(t.retry_after);
	if (!out->body) {
		out->body = calloc(1, 1);
		out->len = 0;
		if (!out->body && out->curl_code == 0 &&
		    (out->status == 304 || (out->status >= 200 && out->status < 300)))
			out->curl_code = CURLE_OUT_OF_MEMORY;
	}
	return http_describe(out, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* describe                                                           */

/* "after 30001 milliseconds" / "after 10000 ms" -> 30 / 10; -1 if absent */
static long timeout_seconds(const char *s)
{
	const char *p = strstr(s, " after ");
	char *end;
	long msec;

	if (!p)
		return -1;
	p += 7;
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	msec = strtol(p, &end, 10);
	if (errno || msec < 0)
		return -1;
	if (strncmp(end, " ms", 3) != 0 && strncmp(end, " milli", 6) != 0)
		return -1;
	return msec / 1000; /* curl reports 30001 for a 30 s limit */
}

static int describe_transport(const struct http_response *r, char *msg,
			      size_t msglen)
{
	const char *words = r->curl_error[0]
				    ? r->curl_error
				    : curl_easy_strerror((CURLcode)r->curl_code);

	switch ((CURLcode)r->curl_code) {
	case CURLE_OPERATION_TIMEDOUT: {
		long s = timeout_seconds(words);
		const char *what = strncmp(words, "Connection", 10) == 0
					   ? "connect timed out"
				   : strncmp(words, "Resolving", 9) == 0
					   ? "DNS lookup timed out"
					   : "timed out";

		if (s >= 0)
			snprintf(msg, msglen, "%s after %ld s", what, s);
		else
			snprintf(msg, msglen, "timed out: %s", words);
		return -ETIMEDOUT;
	}
	case CURLE_COULDNT_CONNECT: {
		/* "Failed to connect to H port P[ after T ms]: reason" */
		const char *reason = strrchr(words, ':');
		const char *to = strstr(words, "connect to ");

		reason = reason ? reason + 1 : words;
		while (*reason == ' ')
			reason++;
		if (to) {
			const char *stop = strstr(to, " after ");
			const char *colon = strrchr(to, ':');
			int n;

			to += 11;
			if (!stop || (colon && colon < stop))
				stop = colon;
			n = stop ? (int)(stop - to) : 0;
			if (n > 0 && n < 200) {
				snprintf(msg, msglen, "could not connect to %.*s: %s",
					 n, to, reason);
				return -ECONNREFUSED;
			}
		}
		snprintf(msg, msglen, "could not connect: %s", reason);
		return -ECONNREFUSED;
	}
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		snprintf(msg, msglen, "DNS: %s", words);
		return -EHOSTUNREACH;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_USE_SSL_FAILED:
		snprintf(msg, msglen, "TLS: %s", words);
		return -EPROTO;
	case CURLE_FILESIZE_EXCEEDED:
		snprintf(msg, msglen, "response larger than max_size");
		return -EFBIG;
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		snprintf(msg, msglen, "%s", words);
		return -EINVAL;
	case CURLE_OUT_OF_MEMORY:
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	default:
		snprintf(msg, msglen, "transfer failed: %s", words);
		return -EIO;
	}
}

static int status_errno(long status)
{
	if (status == 401 || status == 403)
		return -EACCES;
	if (status == 404)
		return -ENOENT;
	if (status == 429)
		return -EAGAIN;
	return -EIO;
}

int http_describe(const struct http_response *resp, char *msg, size_t msglen)
{
	char scratch[512];
	int ret;

	if (!msg || msglen == 0) {
		msg = scratch;
		msglen = sizeof(scratch);
	}
	msg[0] = '\0';
	if (!resp) {
		snprintf(msg, msglen, "no response");
		return -EIO;
	}

	if (resp->too_large) {
		if (resp->curl_error[0] &&
		    strncmp(resp->curl_error, "response larger", 15) == 0)
			snprintf(msg, msglen, "%s", resp->curl_error);
		else
			snprintf(msg, msglen, "response larger than max_size");
		ret = -EFBIG;
	} else if (resp->curl_code != 0) {
		ret = describe_transport(resp, msg, msglen);
	} else if (resp->status == 304 && !resp->conditional) {
		/* Nothing was sent to compare with: "unchanged" since what? */
		snprintf(msg, msglen, "HTTP 304 to a request that was not conditional");
		ret = -EIO;
	} else if ((resp->status >= 200 && resp->status < 300) ||
		   resp->status == 304) {
		return 0;
	} else if (resp->status == 0) {
		snprintf(msg, msglen, "no HTTP response");
		ret = -EIO;
	} else if (resp->status >= 300 && resp->status < 400) {
		const char *loc = strncmp(resp->curl_error, "Location: ", 10) == 0
					  ? resp->curl_error
					  : NULL;

		if (loc)
			snprintf(msg, msglen,
				 "HTTP %ld: redirects are not followed (%s)",
				 resp->status, loc);
		else
			snprintf(msg, msglen, "HTTP %ld: redirects are not followed",
				 resp->status);
		ret = -EIO;
	} else {
		char wait[48] = "";

		if (resp->retry_after >= 0)
			snprintf(wait, sizeof(wait), " (retry after %.0f s)",
				 resp->retry_after);
		if (resp->detail && resp->detail[0])
			snprintf(msg, msglen, "HTTP %ld: %s%s", resp->status,
				 resp->detail, wait);
		else
			snprintf(msg, msglen, "HTTP %ld (no detail)%s",
				 resp->status, wait);
		ret = status_errno(resp->status);
	}
	sanitize_line(msg);
	return ret;
}
