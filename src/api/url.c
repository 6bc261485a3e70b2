/*
 * url: the policy for where omikeyfs may send a secret, checked before any
 * traffic, and the joining of a base URL with an endpoint's path.
 *
 * https:// only, except http:// to a loopback host, which the tests and the
 * demo use and which never leaves the machine.  The host is judged as
 * libcurl reads it (curl_url), since libcurl is what connects: "127.1" and
 * "127.0.0.01" come back as "127.0.0.1", and whatever is not then a plain
 * dotted quad or bracketed IPv6 literal is a name, of which only
 * "localhost" counts as loopback.
 */
#include "url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "errmsg.h"
#include "text.h"

#define URL_AUTHORITY_MAX 100 /* bytes of "host:port" shown in a message */

static int url_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int url_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errmsg_vset(err, errlen, fmt, ap);
	va_end(ap);
	if (err && errlen)
		text_one_line(err);
	return -EINVAL;
}

bool url_host_is_loopback(const char *host)
{
	size_t n = strlen(host);
	struct in_addr a4;
	struct in6_addr a6;
	char inner[INET6_ADDRSTRLEN + 1];

	if (strcasecmp(host, "localhost") == 0)
		return true;
	/* inet_pton takes only four decimal parts, no leading zeros. */
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(inner))
		return false;
	memcpy(inner, host, n);
	inner[n] = '\0';
	return inet_pton(AF_INET6, inner, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static int url_policy(const char *url, bool query_ok, char *err, size_t errlen)
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
			return url_fail(err, errlen, "URL contains a space or control character");

	if (strncasecmp(url, "https://", 8) == 0) {
		https = true;
		rest = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		https = false;
		rest = url + 7;
	} else if ((rest = strstr(url, "://")) != NULL) {
		return url_fail(err, errlen, "unsupported URL scheme %.*s:// (use https://)",
				(int)(rest - url > 16 ? 16 : rest - url), url);
	} else {
		return url_fail(err, errlen, "URL must start with https://");
	}

	/* The authority ends at the first '/', '?' or '#'; credentials in it
	 * would be sent as Basic auth (or confuse a reader about the host). */
	end = rest + strcspn(rest, "/?#");
	if (end == rest)
		return url_fail(err, errlen, "URL has no host");
	if (memchr(rest, '@', (size_t)(end - rest)))
		return url_fail(err, errlen, "URL must not contain user:password@");
	if (strchr(url, '#') || (!query_ok && strchr(url, '?')))
		return url_fail(err, errlen, "API URL must not have a query or fragment");
	if (strchr(url, '\\'))
		return url_fail(err, errlen, "URL contains a backslash");

	u = curl_url();
	if (!u)
		return url_fail(err, errlen, "out of memory");
	rc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (rc != CURLUE_OK) {
		ret = url_fail(err, errlen, "malformed URL: %s", curl_url_strerror(rc));
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_OPTIONS, &part, 0) == CURLUE_OK) {
		ret = url_fail(err, errlen, "URL must not contain user:password@");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
		ret = url_fail(err, errlen, "URL has no host");
		goto out;
	}
	if (!https && !url_host_is_loopback(host)) {
		ret = url_fail(err, errlen,
			       "refusing http:// to a non-loopback host %s (use https://)", host);
		goto out;
	}
out:
	curl_free(part);
	curl_free(host);
	curl_url_cleanup(u);
	return ret;
}

int url_check(const char *url, char *err, size_t errlen)
{
	return url_policy(url, false, err, errlen);
}

int url_check_endpoint(const char *url, char *err, size_t errlen)
{
	return url_policy(url, true, err, errlen);
}

char *url_join(const char *base, const char *path)
{
	size_t len = strlen(base);
	char *url;

	while (len && base[len - 1] == '/')
		len--;
	if (asprintf(&url, "%.*s%s%s", (int)len, base, path[0] == '/' ? "" : "/", path) < 0)
		return NULL;
	return url;
}

char *url_join_segment(const char *base, const char *seg, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t blen = strlen(base);
	char *url, *o;

	while (blen && base[blen - 1] == '/')
		blen--;
	if (len > (SIZE_MAX - blen - 2) / 3 || !(url = malloc(blen + 1 + 3 * len + 1)))
		return NULL;
	memcpy(url, base, blen);
	o = url + blen;
	*o++ = '/';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)seg[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return url;
}

void url_authority(const char *url, char *out, size_t outlen)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL;

	if (!outlen)
		return;
	out[0] = '\0';
	if (!u)
		return;
	if (url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host) {
		if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK && port)
			snprintf(out, outlen, "%s:%s", host, port);
		else
			snprintf(out, outlen, "%s", host);
		text_one_line(out);
		text_cut(out, strlen(out), URL_AUTHORITY_MAX);
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}
