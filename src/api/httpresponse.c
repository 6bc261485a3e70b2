/*
 * httpresponse: a response as libcurl hands it over.  A 2xx body past
 * max_size is never buffered, nor an error body past HTTP_ERROR_BODY_MAX;
 * a buffer outgrown is wiped before it is freed, as it may hold a token.
 * Of the headers only the ETag and Retry-After are kept.
 */
#include "httpresponse.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "secret.h"

#define HTTP_HEADER_VALUE_MAX 1024 /* longest ETag / Retry-After kept */
#define HTTP_FIRST_ALLOC 16384

/* Content-Length already says the body passes max: refused at its first
 * bytes.  Not CURLOPT_MAXFILESIZE, which would refuse an error body too and
 * hide its status. */
static bool length_over(const struct transfer *t, size_t max)
{
	curl_off_t length = -1;

	return t->len == 0 && /* checked on the first bytes only */
	       curl_easy_getinfo(t->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) ==
		       CURLE_OK &&
	       length > (curl_off_t)max;
}

/* Grows t->buf to hold need bytes.  Not realloc: the old buffer may hold a
 * token (a sign-in answer), and is wiped before it is freed. */
static bool grow(struct transfer *t, size_t need, size_t max)
{
	size_t cap = t->cap ? t->cap : HTTP_FIRST_ALLOC;
	char *p;

	while (cap < need)
		cap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
	if (cap > max + 1)
		cap = max + 1;
	p = malloc(cap);
	if (!p)
		return false;
	if (t->buf)
		memcpy(p, t->buf, t->len + 1);
	secret_free_len(t->buf, t->cap);
	t->buf = p;
	t->cap = cap;
	return true;
}

size_t httpresponse_on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct transfer *t = userp;
	size_t n = size * nmemb;
	size_t max = t->max_size;
	long status = 0;

	/* The status line is in by the time the body starts. */
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 300) {
		/* Past what the caller will read of an error body, the status
		 * alone decides: stop without calling the response too large. */
		max = HTTP_ERROR_BODY_MAX;
		if (n > max || t->len > max - n) {
			t->error_body_cut = true;
			return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
		}
	} else if (n > max || t->len > max - n || length_over(t, max)) {
		t->too_large = true;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (t->len + n + 1 > t->cap && !grow(t, t->len + n + 1, max))
		return 0;
	memcpy(t->buf + t->len, data, n);
	t->len += n;
	t->buf[t->len] = '\0';
	return n;
}

/* A control byte (tab aside) or DEL: such a value is not kept (an ETag
 * would be sent back). */
static bool has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return true;
	}
	return false;
}

size_t httpresponse_on_header(char *data, size_t size, size_t nmemb, void *userp)
{
	struct transfer *t = userp;
	size_t n = size * nmemb;
	const char *colon, *v, *e;
	size_t namelen;
	char **slot;

	/* A new status line starts a new response: forget earlier headers. */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		set_str(&t->etag, NULL);
		set_str(&t->retry_after, NULL);
		t->in_headers = true;
		return n;
	}
	if ((n == 2 && data[0] == '\r' && data[1] == '\n') || (n == 1 && data[0] == '\n')) {
		t->in_headers = false;
		return n;
	}
	colon = memchr(data, ':', n);
	if (!colon)
		return n;
	namelen = (size_t)(colon - data);
	if (namelen == 4 && strncasecmp(data, "ETag", 4) == 0)
		slot = &t->etag;
	else if (namelen == 11 && strncasecmp(data, "Retry-After", 11) == 0)
		slot = &t->retry_after;
	else
		return n;

	v = colon + 1;
	e = data + n;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e == v || (size_t)(e - v) > HTTP_HEADER_VALUE_MAX || has_control(v, (size_t)(e - v))) {
		set_str(slot, NULL);
		return n;
	}
	set_str(slot, strndup(v, (size_t)(e - v)));
	return n;
}

double httpresponse_retry_after(const char *v)
{
	time_t when, now;
	size_t i;

	if (!v || !*v)
		return -1;
	for (i = 0; v[i] >= '0' && v[i] <= '9'; i++)
		;
	if (v[i] == '\0')
		return strtod(v, NULL);
	when = curl_getdate(v, NULL);
	if (when == (time_t)-1)
		return -1;
	now = time(NULL);
	return when <= now ? 0.0 : (double)(when - now);
}
