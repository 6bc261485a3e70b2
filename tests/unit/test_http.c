/* Unit tests for http.c: http_get and http_post against a tiny scripted
 * HTTP server on a loopback socket in a thread of this process, and
 * http_message on synthetic responses. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "test.h"

#ifndef OMIKEYFS_VERSION
#define OMIKEYFS_VERSION "0"
#endif

/* ------------------------------------------------------------------ */
/* http_message on synthetic responses                                */

static struct http_response synth(enum http_error_kind kind, long status, const char *message)
{
	struct http_response r;

	memset(&r, 0, sizeof(r));
	r.status = status;
	r.retry_after = -1;
	r.error.kind = kind;
	r.error.err = kind == HTTP_ERR_NONE ? 0 : -EIO;
	snprintf(r.error.message, sizeof(r.error.message), "%s", message);
	return r;
}

static void test_message(void)
{
	char msg[512];
	struct http_response r;

	r = synth(HTTP_ERR_STATUS, 401, "HTTP 401 (no detail)");
	http_message(&r, "Invalid authentication credentials", msg, sizeof(msg));
	test_assert(strcmp(msg, "HTTP 401: Invalid authentication credentials") == 0);
	http_message(&r, NULL, msg, sizeof(msg));
	test_assert(strcmp(msg, "HTTP 401 (no detail)") == 0);
	http_message(&r, "", msg, sizeof(msg));
	test_assert(strcmp(msg, "HTTP 401 (no detail)") == 0);

	r = synth(HTTP_ERR_STATUS, 429, "HTTP 429 (no detail) (retry after 5 s)");
	r.retry_after = 5;
	http_message(&r, "Too Many Requests", msg, sizeof(msg));
	test_assert(strcmp(msg, "HTTP 429: Too Many Requests (retry after 5 s)") == 0);

	/* A detail with control characters still gives one line. */
	r = synth(HTTP_ERR_STATUS, 400, "HTTP 400 (no detail)");
	http_message(&r, "bad\r\nInjected: yes\tand\033[31mred", msg, sizeof(msg));
	test_assert(strcmp(msg, "HTTP 400: bad  Injected: yes and [31mred") == 0);

	/* A tiny buffer is filled, truncated, NUL-terminated. */
	r = synth(HTTP_ERR_STATUS, 401, "HTTP 401 (no detail)");
	http_message(&r, "Invalid authentication credentials", msg, 8);
	test_assert(strcmp(msg, "HTTP 40") == 0);

	/* Only an error status takes a detail. */
	r = synth(HTTP_ERR_REDIRECT, 302, "HTTP 302: redirects are not followed (Location: x:1)");
	http_message(&r, "ignored", msg, sizeof(msg));
	test_assert(strcmp(msg, "HTTP 302: redirects are not followed (Location: x:1)") == 0);
	r = synth(HTTP_ERR_NONE, 200, "");
	strcpy(msg, "junk");
	http_message(&r, "ignored", msg, sizeof(msg));
	test_assert(msg[0] == '\0');
}

/* ------------------------------------------------------------------ */
/* a scripted loopback server                                         */

#define REQUEST_MAX 16384

struct canned {
	const char *response; /* sent verbatim */
	int delay_ms;         /* before answering */
	bool close_after;     /* close the connection after answering */
};

struct server {
	int lfd;
	int port;
	pthread_t thread;
	const struct canned *script;
	int nscript;
	/* written by the server thread, read after pthread_join */
	int served;
	int connections;
	char requests[8][REQUEST_MAX]; /* head and body of each request */
};

/* The head of a request, then as many body bytes as its Content-Length. */
static int read_request(int fd, char *buf, size_t len)
{
	size_t n = 0, want = 0;
	char *end = NULL;

	while (n + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (end && n >= want)
			return 0;
		if (poll(&p, 1, 5000) <= 0)
			return -1;
		r = read(fd, buf + n, len - 1 - n);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
		if (!end && (end = strstr(buf, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(buf, "\r\nContent-Length: ");

			want = (size_t)(end + 4 - buf);
			if (cl && cl < end)
				want += strtoul(cl + 18, NULL, 10);
		}
	}
	return -1;
}

static void *serve(void *arg)
{
	struct server *s = arg;

	while (s->served < s->nscript) {
		struct pollfd p = { .fd = s->lfd, .events = POLLIN };
		int fd;

		if (poll(&p, 1, 5000) <= 0)
			break;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			break;
		s->connections++;
		while (s->served < s->nscript) {
			const struct canned *c = &s->script[s->served];
			char *req = s->requests[s->served < 8 ? s->served : 7];
			size_t left;
			const char *p2;

			if (read_request(fd, req, sizeof(s->requests[0])) < 0)
				break;
			s->served++;
			if (c->delay_ms)
				usleep((useconds_t)c->delay_ms * 1000);
			p2 = c->response;
			left = strlen(p2);
			while (left > 0) {
				ssize_t w = send(fd, p2, left, MSG_NOSIGNAL);

				if (w <= 0)
					break;
				p2 += w;
				left -= (size_t)w;
			}
			if (c->close_after)
				break;
		}
		close(fd);
	}
	return NULL;
}

/* Bound to an ephemeral loopback port; listening only when script != NULL. */
static void server_start(struct server *s, const struct canned *script, int n)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->script = script;
	s->nscript = n;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	test_assert(s->lfd >= 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	test_assert(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
	test_assert(getsockname(s->lfd, (struct sockaddr *)&a, &alen) == 0);
	s->port = ntohs(a.sin_port);
	if (script) {
		test_assert(listen(s->lfd, 8) == 0);
		test_assert(pthread_create(&s->thread, NULL, serve, s) == 0);
	}
}

static void server_stop(struct server *s)
{
	if (s->script)
		pthread_join(s->thread, NULL);
	close(s->lfd);
}

static struct http_client *client_at(const struct server *s, const char *path, size_t max,
				     long timeout)
{
	char url[128];
	struct http_config cfg = {
		.url = url,
		.timeout = timeout,
		.connect_timeout = timeout,
		.max_size = max,
	};
	struct http_client *c;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path);
	c = http_new(&cfg);
	test_assert(c != NULL);
	return c;
}

static struct http_client *client_for(const struct server *s, size_t max, long timeout)
{
	return client_at(s, "/v1/dev/keys", max, timeout);
}

static bool has_header(const char *req, const char *line)
{
	const char *p = req;
	size_t n = strlen(line);

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, line, n) == 0 && (p[n] == '\r' || line[n - 1] == ' '))
			return true;
	}
	return false;
}

/* What came after the head of a request. */
static const char *request_body(const char *req)
{
	const char *end = strstr(req, "\r\n\r\n");

	return end ? end + 4 : "";
}

/* No error message may show a secret. */
static void assert_no_secret(const struct http_response *r, const char *secret)
{
	char msg[512];

	test_assert(strstr(r->error.message, secret) == NULL);
	http_message(r, NULL, msg, sizeof(msg));
	test_assert(strstr(msg, secret) == NULL);
}

/* ------------------------------------------------------------------ */
/* GET                                                                */

#define BODY "[{\"id\":\"a\"}]"

static const struct canned conditional_script[] = {
	{ "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	  "ETag: \"v1\"\r\nLast-Modified: Tue, 15 Nov 1994 12:45:26 GMT\r\n"
	  "Content-Length: 12\r\n\r\n" BODY,
	  0, false },
	{ "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n", 0, false },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", 0, false },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", 0, true },
};

static void test_get_conditional(void)
{
	struct server s;
	struct http_client *c;
	struct http_response r;

	server_start(&s, conditional_script, 4);
	c = client_for(&s, 1024, 5);

	test_assert(http_get(c, "tok-123", &r) == 0);
	test_assert(r.status == 200 && r.error.kind == HTTP_ERR_NONE && r.error.err == 0);
	test_assert(r.error.message[0] == '\0');
	test_assert(r.len == 12 && strcmp(r.body, BODY) == 0);
	test_assert(r.retry_after == -1 && !r.conditional);
	http_response_free(&r);
	test_assert(r.body == NULL && r.len == 0);

	test_assert(http_get(c, "tok-123", &r) == 0);
	test_assert(r.status == 304 && r.len == 0 && r.body && r.body[0] == '\0');
	test_assert(r.conditional && r.error.kind == HTTP_ERR_NONE);
	http_response_free(&r);

	test_assert(http_get(c, "tok-123", &r) == 0);
	test_assert(r.status == 200 && strcmp(r.body, "[]") == 0);
	http_response_free(&r);

	test_assert(http_get(c, "tok-123", &r) == 0);
	http_response_free(&r);
	http_free(c);
	server_stop(&s);

	test_assert(s.served == 4);
	test_assert(s.connections == 1); /* the connection was reused */
	test_assert(strncmp(s.requests[0], "GET /v1/dev/keys HTTP/1.1\r\n", 27) == 0);
	test_assert(has_header(s.requests[0], "Authorization: Bearer tok-123"));
	test_assert(has_header(s.requests[0], "Accept: application/json"));
	test_assert(has_header(s.requests[0], "User-Agent: omikeyfs/" OMIKEYFS_VERSION));
	test_assert(has_header(s.requests[0], "Accept-Encoding: "));
	test_assert(!has_header(s.requests[0], "If-None-Match: "));
	test_assert(has_header(s.requests[1], "If-None-Match: \"v1\""));
	/* The ETag alone: the API sends no Last-Modified. */
	test_assert(!has_header(s.requests[1], "If-Modified-Since: "));
	test_assert(has_header(s.requests[2], "If-None-Match: \"v1\""));
	/* the 200 without an ETag made the client forget it */
	test_assert(!has_header(s.requests[3], "If-None-Match: "));
	test_assert(has_header(s.requests[3], "Authorization: Bearer tok-123"));
}

static const struct canned forget_script[] = {
	{ "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: 2\r\n\r\n[]", 0, false },
	{ "HTTP/1.1 200 OK\r\nETag: \"v2\"\r\nContent-Length: 2\r\n\r\n[]", 0, false },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", 0, true },
};

static void test_get_forget_and_no_bearer(void)
{
	struct server s;
	struct http_client *c;
	struct http_response r;

	server_start(&s, forget_script, 3);
	c = client_for(&s, 1024, 5);
	test_assert(http_get(c, NULL, &r) == 0);
	http_response_free(&r);
	http_forget_validators(c);
	test_assert(http_get(c, NULL, &r) == 0 && !r.conditional);
	http_response_free(&r);
	test_assert(http_get(c, "t", &r) == 0 && r.conditional);
	http_response_free(&r);
	http_free(c);
	server_stop(&s);

	test_assert(s.served == 3);
	test_assert(strcasestr(s.requests[0], "\r\nAuthorization:") == NULL);
	test_assert(!has_header(s.requests[1], "If-None-Match: "));
	test_assert(strcasestr(s.requests[1], "\r\nAuthorization:") == NULL);
	test_assert(has_header(s.requests[2], "If-None-Match: \"v2\""));
	test_assert(has_header(s.requests[2], "Authorization: Bearer t"));
}

#define DETAIL_401 "{\"detail\":\"Invalid authentication credentials\"}"

static const struct canned error_script[] = {
	{ "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
	  "Content-Length: 47\r\n\r\n" DETAIL_401,
	  0, false },
	{ "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0, false },
	{ "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
	  "Content-Length: 31\r\n\r\n{\"detail\":\"Too Many Requests\"}\n",
	  0, false },
	{ "HTTP/1.1 503 Service Unavailable\r\n"
	  "Retry-After: Fri, 31 Dec 2100 23:59:59 GMT\r\n"
	  "Content-Length: 13\r\n\r\n<html></html>",
	  0, false },
	{ "HTTP/1.1 403 Forbidden\r\nRetry-After: Thu, 01 Jan 1970 00:00:01 GMT\r\n"
	  "Content-Length: 0\r\n\r\n",
	  0, false },
	{ "HTTP/1.1 302 Found\r\n"
	  "Location: http://user:pw@evil.example:8080/steal?token=1\r\n"
	  "Content-Length: 0\r\n\r\n",
	  0, true },
};

static void test_get_errors(void)
{
	struct server s;
	struct http_client *c;
	struct http_response r;
	char msg[512];

	server_start(&s, error_script, 6);
	c = client_for(&s, 1024, 5);

	test_assert(http_get(c, "secret-token", &r) == -EACCES);
	test_assert(r.status == 401 && r.error.kind == HTTP_ERR_STATUS && r.error.err == -EACCES);
	test_assert(strcmp(r.error.message, "HTTP 401 (no detail)") == 0);
	/* The error body is the caller's to read its detail from. */
	test_assert(r.len == 47 && strcmp(r.body, DETAIL_401) == 0);
	http_message(&r, "Invalid authentication credentials", msg, sizeof(msg));
	test_assert(strcmp(msg, "HTTP 401: Invalid authentication credentials") == 0);
	assert_no_secret(&r, "secret-token");
	http_response_free(&r);

	test_assert(http_get(c, "secret-token", &r) == -ENOENT);
	test_assert(strcmp(r.error.message, "HTTP 404 (no detail)") == 0);
	http_response_free(&r);

	test_assert(http_get(c, "secret-token", &r) == -EAGAIN);
	test_assert(r.retry_after == 7);
	test_assert(strcmp(r.error.message, "HTTP 429 (no detail) (retry after 7 s)") == 0);
	http_message(&r, "Too Many Requests", msg, sizeof(msg));
	test_assert(strcmp(msg, "HTTP 429: Too Many Requests (retry after 7 s)") == 0);
	http_response_free(&r);

	/* A date: the seconds until then, as the server asked (the cache caps). */
	test_assert(http_get(c, "secret-token", &r) == -EIO);
	test_assert(r.retry_after > 86400.0 * 365 * 50);
	test_assert(strncmp(r.error.message, "HTTP 503 (no detail) (retry after ", 34) == 0);
	test_assert(strcmp(r.body, "<html></html>") == 0);
	http_response_free(&r);

	/* A date in the past: now. */
	test_assert(http_get(c, "secret-token", &r) == -EACCES);
	test_assert(r.retry_after == 0);
	test_assert(strcmp(r.error.message, "HTTP 403 (no detail) (retry after 0 s)") == 0);
	http_response_free(&r);

	test_assert(http_get(c, "secret-token", &r) == -EIO);
	test_assert(r.status == 302 && r.error.kind == HTTP_ERR_REDIRECT);
	test_assert(strcmp(r.error.message, "HTTP 302: redirects are not followed "
					    "(Location: evil.example:8080)") == 0);
	http_message(&r, "a detail", msg, sizeof(msg));
	test_assert(strcmp(msg, r.error.message) == 0);
	assert_no_secret(&r, "pw");
	assert_no_secret(&r, "token");
	http_response_free(&r);

	http_free(c);
	server_stop(&s);
	test_assert(s.served == 6); /* the redirect was not followed */
}

static char big_response[4096];
static char chunked_response[4096];

static const struct canned size_script[] = {
	{ big_response, 0, true },
	{ chunked_response, 0, true },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", 0, true },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", 1500, true },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", 0, false },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", 1500, true },
};

static void test_get_limits(void)
{
	struct server s;
	struct http_client *c;
	struct http_response r;
	size_t n;

	/* Content-Length says 1000 > max_size 100: rejected at once. */
	n = (size_t)snprintf(big_response, sizeof(big_response),
			     "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
	memset(big_response + n, 'x', 1000);
	big_response[n + 1000] = '\0';
	/* No length, 3 chunks of 60 bytes: cut off while receiving. */
	n = (size_t)snprintf(chunked_response, sizeof(chunked_response),
			     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 3; i++) {
		n += (size_t)snprintf(chunked_response + n, sizeof(chunked_response) - n,
				      "3c\r\n%060d\r\n", i);
	}
	snprintf(chunked_response + n, sizeof(chunked_response) - n, "0\r\n\r\n");

	server_start(&s, size_script, 6);
	c = client_for(&s, 100, 1);

	test_assert(http_get(c, "t", &r) == -EFBIG);
	test_assert(r.error.kind == HTTP_ERR_TOO_LARGE);
	test_assert(r.len == 0 && r.body && r.body[0] == '\0');
	test_assert(strcmp(r.error.message, "response larger than 100 bytes (max_size)") == 0);
	http_response_free(&r);

	test_assert(http_get(c, "t", &r) == -EFBIG);
	test_assert(r.error.kind == HTTP_ERR_TOO_LARGE && r.len == 0);
	http_response_free(&r);

	/* The connection closes 90 bytes short. */
	test_assert(http_get(c, "t", &r) == -EIO);
	test_assert(r.error.kind == HTTP_ERR_TRANSPORT && r.len == 0);
	test_assert(strncmp(r.error.message, "transfer failed: ", 17) == 0);
	http_response_free(&r);

	test_assert(http_get(c, "t", &r) == -ETIMEDOUT);
	test_assert(r.error.kind == HTTP_ERR_TRANSPORT);
	test_assert(strcmp(r.error.message, "timed out after 1 s") == 0);
	http_response_free(&r);

	/* The same on a connection kept from an earlier request. */
	test_assert(http_get(c, "t", &r) == 0);
	http_response_free(&r);
	test_assert(http_get(c, "t", &r) == -ETIMEDOUT);
	test_assert(strcmp(r.error.message, "timed out after 1 s") == 0);
	http_response_free(&r);

	http_free(c);
	server_stop(&s);
	test_assert(s.served == 6);
}

static const struct canned unconditional_script[] = {
	/* nothing was sent to compare with */
	{ "HTTP/1.1 304 Not Modified\r\nETag: \"v0\"\r\n\r\n", 0, false },
	/* an ETag holding a control byte */
	{ "HTTP/1.1 200 OK\r\nETag: \"v\x01"
	  "1\"\r\n"
	  "Content-Length: 2\r\n\r\n[]",
	  0, false },
	{ "HTTP/1.1 304 Not Modified\r\n\r\n", 0, false },
	/* a tab is no control byte here */
	{ "HTTP/1.1 200 OK\r\nETag: \"v\t2\"\r\n"
	  "Content-Length: 2\r\n\r\n[]",
	  0, false },
	{ "HTTP/1.1 304 Not Modified\r\n\r\n", 0, true },
};

static void test_get_unconditional_304(void)
{
	struct server s;
	struct http_client *c;
	struct http_response r;

	server_start(&s, unconditional_script, 5);
	c = client_for(&s, 1024, 5);

	test_assert(http_get(c, "tok", &r) == -EIO);
	test_assert(r.status == 304 && !r.conditional && r.error.kind == HTTP_ERR_PROTOCOL);
	test_assert(strcmp(r.error.message, "HTTP 304 to a request that was not conditional") == 0);
	http_response_free(&r);

	/* The stray 304's ETag was not kept either. */
	test_assert(http_get(c, "tok", &r) == 0);
	test_assert(r.status == 200 && !r.conditional);
	http_response_free(&r);

	test_assert(http_get(c, "tok", &r) == -EIO);
	test_assert(r.status == 304 && !r.conditional);
	http_response_free(&r);

	test_assert(http_get(c, "tok", &r) == 0);
	http_response_free(&r);

	test_assert(http_get(c, "tok", &r) == 0);
	test_assert(r.status == 304 && r.conditional);
	http_response_free(&r);

	http_free(c);
	server_stop(&s);
	test_assert(s.served == 5);
	test_assert(!has_header(s.requests[0], "If-None-Match: "));
	test_assert(!has_header(s.requests[1], "If-None-Match: "));
	test_assert(!has_header(s.requests[2], "If-None-Match: "));
	test_assert(strchr(s.requests[2], '\x01') == NULL);
	test_assert(has_header(s.requests[4], "If-None-Match: \"v\t2\""));
}

/* "HTTP/1.1 401 ...", a JSON detail padded with n spaces; chunked or with
 * a Content-Length. */
static char *padded_401(size_t n, bool chunked)
{
	static const char json[] = DETAIL_401;
	size_t len = sizeof(json) - 1 + n, o;
	char *buf = malloc(len + 256);

	test_assert(buf != NULL);
	if (chunked)
		o = (size_t)sprintf(buf,
				    "HTTP/1.1 401 Unauthorized\r\n"
				    "Transfer-Encoding: chunked\r\n\r\n%zx\r\n",
				    len);
	else
		o = (size_t)sprintf(buf,
				    "HTTP/1.1 401 Unauthorized\r\n"
				    "Content-Length: %zu\r\n\r\n",
				    len);
	memcpy(buf + o, json, sizeof(json) - 1);
	o += sizeof(json) - 1;
	memset(buf + o, ' ', n);
	o += n;
	strcpy(buf + o, chunked ? "\r\n0\r\n\r\n" : "");
	return buf;
}

static void test_get_error_bodies(void)
{
	/* Larger than max_size (100), smaller than an error body may be. */
	char *small_cl = padded_401(5000, false), *small_chunked = padded_401(5000, true);
	/* Larger than an error body may be (1 MiB): cut, not handed out. */
	char *huge_cl = padded_401(3 << 20, false), *huge_chunked = padded_401(3 << 20, true);
	const struct canned script[] = {
		{ small_cl, 0, false },
		{ small_chunked, 0, false },
		{ huge_cl, 0, true },
		{ huge_chunked, 0, true },
		{ "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 100000\r\n"
		  "Content-Length: 0\r\n\r\n",
		  0, false },
		{ "HTTP/1.1 429 Too Many Requests\r\n"
		  "Retry-After: 123456789012345678901234567890\r\n"
		  "Content-Length: 0\r\n\r\n",
		  0, false },
		{ "HTTP/1.1 429 Too Many Requests\r\nRetry-After: soon\r\n"
		  "Content-Length: 0\r\n\r\n",
		  0, true },
	};
	struct server s;
	struct http_client *c;
	struct http_response r;

	server_start(&s, script, 7);
	c = client_for(&s, 100, 5);

	for (int i = 0; i < 2; i++) {
		test_assert(http_get(c, "t", &r) == -EACCES);
		test_assert(r.status == 401 && r.error.kind == HTTP_ERR_STATUS);
		test_assert(r.len == 47 + 5000 && strncmp(r.body, DETAIL_401, 47) == 0);
		http_response_free(&r);
	}
	for (int i = 0; i < 2; i++) {
		test_assert(http_get(c, "t", &r) == -EACCES);
		test_assert(r.status == 401 && r.error.kind == HTTP_ERR_STATUS);
		test_assert(r.len == 0 && r.body && r.body[0] == '\0');
		test_assert(strcmp(r.error.message, "HTTP 401 (no detail)") == 0);
		http_response_free(&r);
	}

	test_assert(http_get(c, "t", &r) == -EAGAIN);
	test_assert(r.retry_after == 100000);
	test_assert(strcmp(r.error.message, "HTTP 429 (no detail) (retry after 100000 s)") == 0);
	http_response_free(&r);
	/* As the server asked (the cache caps the wait), in one short line. */
	test_assert(http_get(c, "t", &r) == -EAGAIN);
	test_assert(r.retry_after > 1e29);
	test_assert(strcmp(r.error.message, "HTTP 429 (no detail) (retry after 1.23e+29 s)") == 0);
	http_response_free(&r);
	test_assert(http_get(c, "t", &r) == -EAGAIN);
	test_assert(r.retry_after == -1);
	test_assert(strcmp(r.error.message, "HTTP 429 (no detail)") == 0);
	http_response_free(&r);

	http_free(c);
	server_stop(&s);
	test_assert(s.served == 7);
	free(small_cl);
	free(small_chunked);
	free(huge_cl);
	free(huge_chunked);
}

static void test_get_refused(void)
{
	struct server s;
	struct http_client *c;
	struct http_response r;
	char want[128];

	/* Bound but not listening: a connection attempt is refused. */
	server_start(&s, NULL, 0);
	c = client_for(&s, 1024, 5);

	test_assert(http_get(c, "tok", &r) == -ECONNREFUSED);
	test_assert(r.status == 0 && r.error.kind == HTTP_ERR_TRANSPORT);
	snprintf(want, sizeof(want), "could not connect to 127.0.0.1:%d: Connection refused",
		 s.port);
	test_assert(strcmp(r.error.message, want) == 0);
	test_assert(r.body && r.len == 0);
	http_response_free(&r);
	http_free(c);

	/* A client built for a refused URL never sends anything. */
	{
		struct http_config cfg = { .url = "http://example.com/v1/dev/keys",
					   .timeout = 1,
					   .max_size = 1024 };

		c = http_new(&cfg);
		test_assert(c != NULL);
		test_assert(http_get(c, "tok", &r) == -EINVAL);
		test_assert(r.error.kind == HTTP_ERR_LOCAL && r.body != NULL);
		test_assert(strcmp(r.error.message, "refusing http:// to a non-loopback host "
						    "example.com (use https://)") == 0);
		http_response_free(&r);
		test_assert(http_post(c, "text/plain", "x", 1, "tok", &r) == -EINVAL);
		test_assert(r.error.kind == HTTP_ERR_LOCAL);
		http_response_free(&r);
		http_free(c);
	}
	test_assert(http_get(NULL, "tok", &r) == -EINVAL);
	test_assert(r.error.kind == HTTP_ERR_LOCAL);
	http_response_free(&r);
	server_stop(&s);
}

static void test_new_config(void)
{
	struct http_config cfg = { .url = "https://api.omi.me/v1/dev/keys",
				   .timeout = 30,
				   .connect_timeout = 10,
				   .max_size = 1024 };
	struct http_client *c = http_new(&cfg);

	test_assert(c != NULL);
	http_free(c);
	http_free(NULL);
	/* No defaults here: the options' owner gives every limit. */
	cfg.timeout = 0;
	test_assert(http_new(&cfg) == NULL);
	cfg.timeout = 30;
	cfg.max_size = 0;
	test_assert(http_new(&cfg) == NULL);
	cfg.max_size = 1024;
	cfg.url = NULL;
	test_assert(http_new(&cfg) == NULL);
	test_assert(http_new(NULL) == NULL);
}

/* ------------------------------------------------------------------ */
/* POST                                                               */

#define FORM "grant_type=refresh_token&refresh_token=SECRET-REFRESH"
#define TOKEN_JSON "{\"id_token\":\"SECRET-ID\",\"refresh_token\":\"SECRET-REFRESH-2\"}"
#define EXPIRED "{\"error\":{\"code\":400,\"message\":\"TOKEN_EXPIRED\"}}"

static char big_form[6001];

static const struct canned post_script[] = {
	{ "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
	  "59\r\n\r\n" TOKEN_JSON,
	  0, false },
	{ "HTTP/1.1 400 Bad Request\r\nContent-Length: 48\r\n\r\n" EXPIRED, 0, false },
	{ "HTTP/1.1 307 Temporary Redirect\r\nLocation: https://evil.example/t\r\n"
	  "Content-Length: 0\r\n\r\n",
	  0, false },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 0, false },
	/* a GET on the same client after the POSTs */
	{ "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 2\r\n\r\n[]", 0, false },
	/* a POST is never conditional, even with an ETag known */
	{ "HTTP/1.1 304 Not Modified\r\n\r\n", 0, true },
};

static void test_post(void)
{
	struct server s;
	struct http_client *c;
	struct http_response r;
	const char *form_type = "application/x-www-form-urlencoded";

	memset(big_form, 'a', sizeof(big_form) - 1);
	server_start(&s, post_script, 6);
	c = client_at(&s, "/v1/token?key=public", 1024, 5);

	test_assert(http_post(c, form_type, FORM, strlen(FORM), NULL, &r) == 0);
	test_assert(r.status == 200 && r.error.kind == HTTP_ERR_NONE);
	test_assert(r.len == 59 && strcmp(r.body, TOKEN_JSON) == 0);
	test_assert(!r.conditional);
	http_response_free(&r);

	/* The error body is kept, for the caller to read Firebase's reason. */
	test_assert(http_post(c, form_type, FORM, strlen(FORM), NULL, &r) == -EIO);
	test_assert(r.status == 400 && r.error.kind == HTTP_ERR_STATUS);
	test_assert(r.len == 48 && strcmp(r.body, EXPIRED) == 0);
	test_assert(strcmp(r.error.message, "HTTP 400 (no detail)") == 0);
	assert_no_secret(&r, "SECRET");
	http_response_free(&r);

	/* Never followed: the body stays with this host. */
	test_assert(http_post(c, "application/json", "{\"token\":\"SECRET-CUSTOM\"}", 25,
			      "SECRET-BEARER", &r) == -EIO);
	test_assert(r.error.kind == HTTP_ERR_REDIRECT);
	test_assert(strcmp(r.error.message, "HTTP 307: redirects are not followed "
					    "(Location: evil.example:443)") == 0);
	assert_no_secret(&r, "SECRET");
	http_response_free(&r);

	/* A larger body goes at once (no Expect: 100-continue), by length. */
	test_assert(http_post(c, "text/plain", big_form, 5000, "b", &r) == 0);
	http_response_free(&r);

	test_assert(http_get(c, "g", &r) == 0);
	http_response_free(&r);
	test_assert(http_post(c, "text/plain", "", 0, NULL, &r) == -EIO);
	test_assert(r.error.kind == HTTP_ERR_PROTOCOL && !r.conditional);
	http_response_free(&r);

	http_free(c);
	server_stop(&s);
	test_assert(s.served == 6 && s.connections == 1);

	test_assert(strncmp(s.requests[0], "POST /v1/token?key=public HTTP/1.1\r\n", 36) == 0);
	test_assert(has_header(s.requests[0], "Content-Type: application/x-www-form-urlencoded"));
	test_assert(has_header(s.requests[0], "Content-Length: 53"));
	test_assert(has_header(s.requests[0], "Accept: application/json"));
	test_assert(strcasestr(s.requests[0], "\r\nAuthorization:") == NULL);
	test_assert(strcmp(request_body(s.requests[0]), FORM) == 0);

	test_assert(has_header(s.requests[2], "Authorization: Bearer SECRET-BEARER"));
	test_assert(has_header(s.requests[2], "Content-Type: application/json"));
	test_assert(strcmp(request_body(s.requests[2]), "{\"token\":\"SECRET-CUSTOM\"}") == 0);

	test_assert(has_header(s.requests[3], "Content-Length: 5000"));
	test_assert(strcasestr(s.requests[3], "\r\nExpect:") == NULL);
	test_assert(strlen(request_body(s.requests[3])) == 5000);

	test_assert(strncmp(s.requests[4], "GET /v1/token?key=public HTTP/1.1\r\n", 35) == 0);
	test_assert(strcasestr(s.requests[4], "\r\nContent-Type:") == NULL);
	test_assert(request_body(s.requests[4])[0] == '\0');

	test_assert(strncmp(s.requests[5], "POST ", 5) == 0);
	test_assert(has_header(s.requests[5], "Content-Length: 0"));
	test_assert(!has_header(s.requests[5], "If-None-Match: "));
}

static void test_post_refused(void)
{
	struct server s;
	struct http_client *c;
	struct http_response r;

	server_start(&s, NULL, 0);
	c = client_at(&s, "/v1/auth/token", 1024, 5);
	test_assert(http_post(c, "application/x-www-form-urlencoded", FORM, strlen(FORM),
			      "SECRET-BEARER", &r) == -ECONNREFUSED);
	test_assert(r.error.kind == HTTP_ERR_TRANSPORT);
	assert_no_secret(&r, "SECRET");
	http_response_free(&r);
	test_assert(http_post(c, NULL, FORM, strlen(FORM), NULL, &r) == -EINVAL);
	test_assert(r.error.kind == HTTP_ERR_LOCAL);
	http_response_free(&r);
	http_free(c);
	server_stop(&s);
}

int main(void)
{
	test_assert(http_global_init() == 0);
	test_run(test_message);
	test_run(test_get_conditional);
	test_run(test_get_forget_and_no_bearer);
	test_run(test_get_errors);
	test_run(test_get_limits);
	test_run(test_get_unconditional_304);
	test_run(test_get_error_bodies);
	test_run(test_get_refused);
	test_run(test_new_config);
	test_run(test_post);
	test_run(test_post_refused);
	http_global_cleanup();
	return 0;
}
