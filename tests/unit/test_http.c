/* Unit tests for http.c: URL checks and http_describe on synthetic
 * responses (no network), then http_get against a tiny scripted HTTP server
 * on a loopback socket in a thread of this process. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "test.h"

#ifndef OMIKEYFS_VERSION
#define OMIKEYFS_VERSION "0"
#endif

/* ------------------------------------------------------------------ */
/* http_check_url                                                     */

static int check(const char *url)
{
	char err[256] = "unset";
	int r = http_check_url(url, err, sizeof(err));

	if (r == 0)
		test_assert(err[0] == '\0');
	else
		test_assert(err[0] != '\0' && strchr(err, '\n') == NULL);
	return r;
}

static void test_check_url_accepts(void)
{
	test_assert(check("https://api.omi.me") == 0);
	test_assert(check("https://api.omi.me/") == 0);
	test_assert(check("https://api.omi.me:8443/base/path") == 0);
	test_assert(check("HTTPS://API.OMI.ME") == 0);
	test_assert(check("https://[2001:db8::1]:443") == 0);
	test_assert(check("http://127.0.0.1") == 0);
	test_assert(check("http://127.0.0.1:8080") == 0);
	test_assert(check("http://127.0.0.1:8080/") == 0);
	test_assert(check("http://127.1.2.3:9/x") == 0);
	test_assert(check("http://127.255.255.255") == 0);
	test_assert(check("http://[::1]:8080") == 0);
	test_assert(check("http://[::1]") == 0);
	test_assert(check("http://localhost:1234") == 0);
	test_assert(check("http://LOCALHOST") == 0);
	test_assert(check("HTTP://LocalHost:80/api") == 0);
	/* curl reads these as 127.0.0.1 and connects there */
	test_assert(check("http://127.0.0.01") == 0);
	test_assert(check("http://127.1") == 0);
	test_assert(check("http://[0:0:0:0:0:0:0:1]:9") == 0);
}

static void test_check_url_refuses(void)
{
	char err[256];

	test_assert(http_check_url("http://example.com", err, sizeof(err)) ==
		    -EINVAL);
	test_assert(strstr(err, "http://") && strstr(err, "https://"));
	test_assert(check("http://example.com:80/") == -EINVAL);
	test_assert(check("http://127.0.0.1.evil.com") == -EINVAL);
	test_assert(check("http://127.0.0.1.evil.com:8080/") == -EINVAL);
	test_assert(check("http://localhost.evil") == -EINVAL);
	test_assert(check("http://localhost.") == -EINVAL);
	test_assert(check("http://evil-localhost") == -EINVAL);
	test_assert(check("http://128.0.0.1") == -EINVAL);
	test_assert(check("http://10.0.0.1") == -EINVAL);
	test_assert(check("http://127.0.0.08") == -EINVAL);
	test_assert(check("http://127.0.0.1.") == -EINVAL);
	test_assert(check("http://[::ffff:127.0.0.1]") == -EINVAL);
	test_assert(check("http://127.0.0.256") == -EINVAL);
	test_assert(check("http://[::2]") == -EINVAL);
	test_assert(check("http://[::ffff:8.8.8.8]") == -EINVAL);
	test_assert(check("http://0.0.0.0") == -EINVAL);
	test_assert(check("ftp://127.0.0.1") == -EINVAL);
	test_assert(check("file:///etc/passwd") == -EINVAL);
	test_assert(check("gopher://api.omi.me") == -EINVAL);
	test_assert(check("api.omi.me") == -EINVAL);
	test_assert(check("https://user:pass@api.omi.me") == -EINVAL);
	test_assert(check("https://user@api.omi.me") == -EINVAL);
	test_assert(check("http://user:pass@127.0.0.1") == -EINVAL);
	test_assert(check("http://evil.com@127.0.0.1") == -EINVAL);
	test_assert(check("http://127.0.0.1@evil.com") == -EINVAL);
	test_assert(check("http://127.0.0.1:80@evil.com/") == -EINVAL);
	test_assert(check("https://") == -EINVAL);
	test_assert(check("https:///path") == -EINVAL);
	test_assert(check("http://:8080") == -EINVAL);
	test_assert(check("https://api.omi.me/a b") == -EINVAL);
	test_assert(check("https://api.omi.me\r\nX: y") == -EINVAL);
	test_assert(check("https://api.omi.me\t") == -EINVAL);
	test_assert(check("https://api.omi.me:99999") == -EINVAL);
	test_assert(check("https://api.omi.me?x=1") == -EINVAL);
	test_assert(check("https://api.omi.me#frag") == -EINVAL);
	test_assert(check("http://127.0.0.1\\@evil.com") == -EINVAL);
	test_assert(check("") == -EINVAL);
	test_assert(check("not a url") == -EINVAL);
	test_assert(check("://") == -EINVAL);
	test_assert(http_check_url(NULL, err, sizeof(err)) == -EINVAL);
	test_assert(http_check_url("ftp://x", NULL, 0) == -EINVAL);
}

/* ------------------------------------------------------------------ */
/* http_describe on synthetic responses                               */

static struct http_response synth(long status, const char *detail)
{
	struct http_response r;

	memset(&r, 0, sizeof(r));
	r.status = status;
	r.retry_after = -1;
	r.detail = detail ? strdup(detail) : NULL;
	return r;
}

static void test_describe_http(void)
{
	char msg[512];
	struct http_response r;

	r = synth(401, "Invalid authentication credentials");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EACCES);
	test_assert(strcmp(msg, "HTTP 401: Invalid authentication credentials") == 0);
	http_response_free(&r);

	r = synth(403, "Not authenticated");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EACCES);
	test_assert(strcmp(msg, "HTTP 403: Not authenticated") == 0);
	http_response_free(&r);

	r = synth(422, "[{\"loc\":[\"header\",\"authorization\"],\"msg\":\"field required\"}]");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EIO);
	test_assert(strncmp(msg, "HTTP 422: [{", 12) == 0);
	http_response_free(&r);

	r = synth(500, NULL);
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EIO);
	test_assert(strcmp(msg, "HTTP 500 (no detail)") == 0);
	http_response_free(&r);

	r = synth(503, NULL);
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EIO);
	test_assert(strcmp(msg, "HTTP 503 (no detail)") == 0);
	http_response_free(&r);

	r = synth(404, "Not Found");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -ENOENT);
	http_response_free(&r);

	r = synth(429, "Too Many Requests");
	r.retry_after = 5;
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EAGAIN);
	test_assert(strcmp(msg, "HTTP 429: Too Many Requests (retry after 5 s)") == 0);
	http_response_free(&r);

	r = synth(429, NULL);
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EAGAIN);
	test_assert(strcmp(msg, "HTTP 429 (no detail)") == 0);
	http_response_free(&r);

	r = synth(304, NULL);
	r.conditional = true;
	strcpy(msg, "junk");
	test_assert(http_describe(&r, msg, sizeof(msg)) == 0);
	test_assert(msg[0] == '\0');
	http_response_free(&r);

	/* No validator was sent: a 304 cannot mean "unchanged". */
	r = synth(304, NULL);
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EIO);
	test_assert(strcmp(msg, "HTTP 304 to a request that was not conditional") == 0);
	http_response_free(&r);

	r = synth(200, NULL);
	strcpy(msg, "junk");
	test_assert(http_describe(&r, msg, sizeof(msg)) == 0);
	test_assert(msg[0] == '\0');
	test_assert(http_describe(&r, NULL, 0) == 0);
	http_response_free(&r);

	r = synth(302, NULL);
	strcpy(r.curl_error, "Location: evil.example:8443");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EIO);
	test_assert(strcmp(msg, "HTTP 302: redirects are not followed "
				"(Location: evil.example:8443)") == 0);
	http_response_free(&r);

	r = synth(0, NULL);
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EIO);
	test_assert(msg[0] != '\0');
	http_response_free(&r);

	/* A detail with control characters still gives one line. */
	r = synth(400, "bad\r\nInjected: yes\tand\033[31mred");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EIO);
	test_assert(strpbrk(msg, "\r\n\t\033") == NULL);
	http_response_free(&r);

	/* A tiny buffer is filled, truncated, NUL-terminated. */
	r = synth(401, "Invalid authentication credentials");
	test_assert(http_describe(&r, msg, 8) == -EACCES);
	test_assert(strcmp(msg, "HTTP 40") == 0);
	http_response_free(&r);
}

static void test_describe_transport(void)
{
	char msg[512];
	struct http_response r;

	r = synth(0, NULL);
	r.curl_code = CURLE_OPERATION_TIMEDOUT;
	strcpy(r.curl_error, "Operation timed out after 30001 milliseconds "
			     "with 0 bytes received");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -ETIMEDOUT);
	test_assert(strcmp(msg, "timed out after 30 s") == 0);

	strcpy(r.curl_error, "Connection timed out after 10002 milliseconds");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -ETIMEDOUT);
	test_assert(strcmp(msg, "connect timed out after 10 s") == 0);

	r.curl_error[0] = '\0';
	test_assert(http_describe(&r, msg, sizeof(msg)) == -ETIMEDOUT);
	test_assert(strstr(msg, "timed out") != NULL);

	r.curl_code = CURLE_COULDNT_CONNECT;
	strcpy(r.curl_error, "Failed to connect to 127.0.0.1 port 9: Connection refused");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -ECONNREFUSED);
	test_assert(strcmp(msg, "could not connect to 127.0.0.1 port 9: "
				"Connection refused") == 0);

	strcpy(r.curl_error, "Failed to connect to ::1 port 9 after 0 ms: "
			     "Couldn't connect to server");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -ECONNREFUSED);
	test_assert(strcmp(msg, "could not connect to ::1 port 9: "
				"Couldn't connect to server") == 0);

	r.curl_error[0] = '\0';
	test_assert(http_describe(&r, msg, sizeof(msg)) == -ECONNREFUSED);
	test_assert(strncmp(msg, "could not connect: ", 19) == 0);

	r.curl_code = CURLE_COULDNT_RESOLVE_HOST;
	strcpy(r.curl_error, "Could not resolve host: api.omi.me");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EHOSTUNREACH);
	test_assert(strstr(msg, "api.omi.me") != NULL);

	r.curl_code = CURLE_PEER_FAILED_VERIFICATION;
	strcpy(r.curl_error, "SSL certificate problem: self-signed certificate");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EPROTO);
	test_assert(strstr(msg, "self-signed") != NULL);

	r.curl_code = CURLE_SSL_CONNECT_ERROR;
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EPROTO);

	r.curl_code = CURLE_RECV_ERROR;
	strcpy(r.curl_error, "Recv failure: Connection reset by peer");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EIO);
	test_assert(strstr(msg, "Connection reset by peer") != NULL);

	r.curl_code = CURLE_PARTIAL_FILE;
	r.status = 200; /* a transport error wins over a 200 status line */
	strcpy(r.curl_error, "transfer closed with 90 bytes remaining to read");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EIO);

	/* too_large wins over everything else */
	r = synth(200, NULL);
	r.too_large = true;
	r.curl_code = CURLE_WRITE_ERROR;
	strcpy(r.curl_error, "response larger than 67108864 bytes (max_size)");
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EFBIG);
	test_assert(strcmp(msg, "response larger than 67108864 bytes (max_size)") == 0);
	r.curl_error[0] = '\0';
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EFBIG);
	test_assert(strstr(msg, "larger") != NULL);

	r = synth(0, NULL);
	r.curl_code = CURLE_FILESIZE_EXCEEDED;
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EFBIG);

	test_assert(http_describe(NULL, msg, sizeof(msg)) == -EIO);
}

/* ------------------------------------------------------------------ */
/* a scripted loopback server                                         */

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
	char requests[8][2048];
};

static int read_request(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 5000) <= 0)
			return -1;
		r = read(fd, buf + n, len - 1 - n);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			return 0;
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

static struct http_client *client_for(const struct server *s, size_t max,
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

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/dev/keys", s->port);
	c = http_new(&cfg);
	test_assert(c != NULL);
	return c;
}

static bool has_header(const char *req, const char *line)
{
	const char *p = req;
	size_t n = strlen(line);

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, line, n) == 0 &&
		    (p[n] == '\r' || line[n - 1] == ' '))
			return true;
	}
	return false;
}

#define BODY "[{\"id\":\"a\"}]"

static const struct canned conditional_script[] = {
	{ "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	  "ETag: \"v1\"\r\nLast-Modified: Tue, 15 Nov 1994 12:45:26 GMT\r\n"
	  "Content-Length: 12\r\n\r\n" BODY, 0, false },
	{ "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n", 0, false },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", 0, false },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", 0, true },
};

static void test_get_conditional(void)
{
	struct server s;
	struct http_client *c;
	struct http_response r;
	char msg[256];

	server_start(&s, conditional_script, 4);
	c = client_for(&s, 1024, 5);

	test_assert(http_get(c, "tok-123", &r) == 0);
	test_assert(r.status == 200 && r.curl_code == 0);
	test_assert(r.len == 12 && strcmp(r.body, BODY) == 0);
	test_assert(r.retry_after == -1 && r.detail == NULL && !r.too_large);
	test_assert(http_describe(&r, msg, sizeof(msg)) == 0 && msg[0] == '\0');
	http_response_free(&r);

	test_assert(http_get(c, "tok-123", &r) == 0);
	test_assert(r.status == 304 && r.len == 0 && r.body && r.body[0] == '\0');
	test_assert(r.conditional);
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
	test_assert(has_header(s.requests[1], "If-Modified-Since: Tue, 15 Nov 1994 12:45:26 GMT"));
	test_assert(has_header(s.requests[2], "If-None-Match: \"v1\""));
	/* the 200 without validators made the client forget them */
	test_assert(!has_header(s.requests[3], "If-None-Match: "));
	test_assert(!has_header(s.requests[3], "If-Modified-Since: "));
	test_assert(has_header(s.requests[3], "Authorization: Bearer tok-123"));
}

static const struct canned error_script[] = {
	{ "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
	  "Content-Length: 47\r\n\r\n"
	  "{\"detail\":\"Invalid authentication credentials\"}", 0, false },
	{ "HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: 51\r\n\r\n"
	  "{\"detail\":[{\"loc\":[\"query\"],\"msg\":\"bad\\nthing\"}]}  ", 0, false },
	{ "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
	  "Content-Length: 31\r\n\r\n{\"detail\":\"Too Many Requests\"}\n", 0, false },
	{ "HTTP/1.1 503 Service Unavailable\r\n"
	  "Retry-After: Fri, 31 Dec 2100 23:59:59 GMT\r\n"
	  "Content-Length: 13\r\n\r\n<html></html>", 0, false },
	{ "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 13\r\n\r\n"
	  "{\"detail\":42}", 0, false },
	{ "HTTP/1.1 302 Found\r\n"
	  "Location: http://user:pw@evil.example:8080/steal?token=1\r\n"
	  "Content-Length: 0\r\n\r\n", 0, true },
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
	test_assert(r.status == 401);
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EACCES);
	test_assert(strcmp(msg, "HTTP 401: Invalid authentication credentials") == 0);
	http_response_free(&r);

	test_assert(http_get(c, "secret-token", &r) == -EIO);
	test_assert(r.detail && strcmp(r.detail, "[{\"loc\":[\"query\"],\"msg\":\"bad\\nthing\"}]") == 0);
	http_response_free(&r);

	test_assert(http_get(c, "secret-token", &r) == -EAGAIN);
	test_assert(r.retry_after == 7);
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EAGAIN);
	test_assert(strcmp(msg, "HTTP 429: Too Many Requests (retry after 7 s)") == 0);
	http_response_free(&r);

	/* A date far ahead waits a day at most. */
	test_assert(http_get(c, "secret-token", &r) == -EIO);
	test_assert(r.retry_after == 86400 && r.detail == NULL);
	http_describe(&r, msg, sizeof(msg));
	test_assert(strcmp(msg, "HTTP 503 (no detail) (retry after 86400 s)") == 0);
	http_response_free(&r);

	test_assert(http_get(c, "secret-token", &r) == -EIO);
	test_assert(r.detail == NULL);
	http_describe(&r, msg, sizeof(msg));
	test_assert(strcmp(msg, "HTTP 500 (no detail)") == 0);
	http_response_free(&r);

	test_assert(http_get(c, "secret-token", &r) == -EIO);
	test_assert(r.status == 302);
	http_describe(&r, msg, sizeof(msg));
	test_assert(strstr(msg, "redirects are not followed") != NULL);
	test_assert(strstr(msg, "evil.example:8080") != NULL);
	test_assert(strstr(msg, "token") == NULL && strstr(msg, "pw") == NULL);
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
};

static void test_get_limits(void)
{
	struct server s;
	struct http_client *c;
	struct http_response r;
	char msg[512];
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

	server_start(&s, size_script, 4);
	c = client_for(&s, 100, 1);

	test_assert(http_get(c, "t", &r) == -EFBIG);
	test_assert(r.too_large && r.len == 0 && r.body && r.body[0] == '\0');
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EFBIG);
	test_assert(strcmp(msg, "response larger than 100 bytes (max_size)") == 0);
	http_response_free(&r);

	test_assert(http_get(c, "t", &r) == -EFBIG);
	test_assert(r.too_large && r.len == 0);
	http_response_free(&r);

	test_assert(http_get(c, "t", &r) == -EIO);
	test_assert(r.curl_code == CURLE_PARTIAL_FILE);
	http_describe(&r, msg, sizeof(msg));
	test_assert(strncmp(msg, "transfer failed: ", 17) == 0);
	http_response_free(&r);

	test_assert(http_get(c, "t", &r) == -ETIMEDOUT);
	http_describe(&r, msg, sizeof(msg));
	test_assert(strcmp(msg, "timed out after 1 s") == 0);
	http_response_free(&r);

	http_free(c);
	server_stop(&s);
}

static const struct canned unconditional_script[] = {
	/* nothing was sent to compare with */
	{ "HTTP/1.1 304 Not Modified\r\nETag: \"v0\"\r\n\r\n", 0, false },
	/* validators holding control bytes */
	{ "HTTP/1.1 200 OK\r\nETag: \"v\x01" "1\"\r\n"
	  "Last-Modified: Tue, 15 Nov 1994\x7f 12:45:26 GMT\r\n"
	  "Content-Length: 2\r\n\r\n[]", 0, false },
	{ "HTTP/1.1 304 Not Modified\r\n\r\n", 0, false },
	/* a tab is no control byte here */
	{ "HTTP/1.1 200 OK\r\nETag: \"v\t2\"\r\n"
	  "Last-Modified: Wed, 16 Nov 1994 12:45:26 GMT\r\n"
	  "Content-Length: 2\r\n\r\n[]", 0, false },
	{ "HTTP/1.1 304 Not Modified\r\n\r\n", 0, true },
};

static void test_get_unconditional_304(void)
{
	struct server s;
	struct http_client *c;
	struct http_response r;
	char msg[256];

	server_start(&s, unconditional_script, 5);
	c = client_for(&s, 1024, 5);

	test_assert(http_get(c, "tok", &r) == -EIO);
	test_assert(r.status == 304 && !r.conditional);
	test_assert(http_describe(&r, msg, sizeof(msg)) == -EIO);
	test_assert(strcmp(msg, "HTTP 304 to a request that was not conditional") == 0);
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
	test_assert(!has_header(s.requests[0], "If-Modified-Since: "));
	test_assert(!has_header(s.requests[1], "If-None-Match: "));
	test_assert(!has_header(s.requests[1], "If-Modified-Since: "));
	test_assert(!has_header(s.requests[2], "If-None-Match: "));
	test_assert(!has_header(s.requests[2], "If-Modified-Since: "));
	test_assert(strchr(s.requests[2], '\x01') == NULL);
	test_assert(strchr(s.requests[2], '\x7f') == NULL);
	test_assert(has_header(s.requests[4], "If-None-Match: \"v\t2\""));
	test_assert(has_header(s.requests[4],
			       "If-Modified-Since: Wed, 16 Nov 1994 12:45:26 GMT"));
}

/* "HTTP/1.1 401 ...", a JSON detail padded with n spaces; chunked or with
 * a Content-Length. */
static char *padded_401(size_t n, bool chunked)
{
	static const char json[] = "{\"detail\":\"Invalid authentication credentials\"}";
	size_t len = sizeof(json) - 1 + n, o;
	char *buf = malloc(len + 256);

	test_assert(buf != NULL);
	if (chunked)
		o = (size_t)sprintf(buf, "HTTP/1.1 401 Unauthorized\r\n"
				    "Transfer-Encoding: chunked\r\n\r\n%zx\r\n", len);
	else
		o = (size_t)sprintf(buf, "HTTP/1.1 401 Unauthorized\r\n"
				    "Content-Length: %zu\r\n\r\n", len);
	memcpy(buf + o, json, sizeof(json) - 1);
	o += sizeof(json) - 1;
	memset(buf + o, ' ', n);
	o += n;
	strcpy(buf + o, chunked ? "\r\n0\r\n\r\n" : "");
	return buf;
}

static void test_get_error_bodies(void)
{
	/* Larger than max_size (100), smaller than what detail reads. */
	char *small_cl = padded_401(5000, false), *small_chunked = padded_401(5000, true);
	/* Larger than what detail reads (1 MiB): cut, no detail. */
	char *huge_cl = padded_401(3 << 20, false), *huge_chunked = padded_401(3 << 20, true);
	const struct canned script[] = {
		{ small_cl, 0, false },
		{ small_chunked, 0, false },
		{ huge_cl, 0, true },
		{ huge_chunked, 0, true },
		{ "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 100000\r\n"
		  "Content-Length: 0\r\n\r\n", 0, false },
		{ "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 123456789012345678901234567890\r\n"
		  "Content-Length: 0\r\n\r\n", 0, false },
		{ "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 86400\r\n"
		  "Content-Length: 0\r\n\r\n", 0, true },
	};
	struct server s;
	struct http_client *c;
	struct http_response r;
	char msg[512];

	server_start(&s, script, 7);
	c = client_for(&s, 100, 5);

	for (int i = 0; i < 2; i++) {
		test_assert(http_get(c, "t", &r) == -EACCES);
		test_assert(r.status == 401 && !r.too_large && r.curl_code == 0);
		test_assert(http_describe(&r, msg, sizeof(msg)) == -EACCES);
		test_assert(strcmp(msg, "HTTP 401: Invalid authentication credentials") == 0);
		http_response_free(&r);
	}
	for (int i = 0; i < 2; i++) {
		test_assert(http_get(c, "t", &r) == -EACCES);
		test_assert(r.status == 401 && !r.too_large && r.curl_code == 0);
		test_assert(r.detail == NULL && r.len == 0);
		test_assert(http_describe(&r, msg, sizeof(msg)) == -EACCES);
		test_assert(strcmp(msg, "HTTP 401 (no detail)") == 0);
		http_response_free(&r);
	}

	/* Retry-After: at most a day. */
	test_assert(http_get(c, "t", &r) == -EAGAIN);
	test_assert(r.retry_after == 86400);
	http_describe(&r, msg, sizeof(msg));
	test_assert(strcmp(msg, "HTTP 429 (no detail) (retry after 86400 s)") == 0);
	http_response_free(&r);
	test_assert(http_get(c, "t", &r) == -EAGAIN);
	test_assert(r.retry_after == 86400);
	http_response_free(&r);
	test_assert(http_get(c, "t", &r) == -EAGAIN);
	test_assert(r.retry_after == 86400);
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
	char msg[512];

	/* Bound but not listening: a connection attempt is refused. */
	server_start(&s, NULL, 0);
	c = client_for(&s, 1024, 5);

	test_assert(http_get(c, "tok", &r) == -ECONNREFUSED);
	test_assert(r.status == 0);
	http_describe(&r, msg, sizeof(msg));
	test_assert(strstr(msg, "could not connect") != NULL);
	test_assert(strstr(msg, "Connection refused") != NULL);
	http_response_free(&r);

	/* Header injection: refused before any request is made (a request
	 * would have failed with -ECONNREFUSED instead). */
	test_assert(http_get(c, "tok\r\nX-Evil: 1", &r) == -EINVAL);
	test_assert(r.status == 0 && r.body != NULL);
	http_describe(&r, msg, sizeof(msg));
	test_assert(strstr(msg, "line break") != NULL);
	test_assert(strstr(msg, "tok") == NULL || strstr(msg, "token") != NULL);
	test_assert(strstr(msg, "X-Evil") == NULL);
	http_response_free(&r);
	test_assert(http_get(c, "tok\nX", &r) == -EINVAL);
	http_response_free(&r);
	test_assert(http_get(c, "tok\x01", &r) == -EINVAL);
	http_response_free(&r);
	test_assert(http_get(c, "", &r) == -EINVAL);
	http_response_free(&r);
	test_assert(http_get(c, NULL, &r) == -EINVAL);
	http_response_free(&r);
	http_free(c);

	/* A client built for a refused URL never sends anything. */
	{
		struct http_config cfg = { .url = "http://example.com/v1/dev/keys",
					   .timeout = 1 };

		c = http_new(&cfg);
		test_assert(c != NULL);
		test_assert(http_get(c, "tok", &r) == -EINVAL);
		http_describe(&r, msg, sizeof(msg));
		test_assert(strstr(msg, "non-loopback") != NULL);
		http_response_free(&r);
		http_free(c);
	}
	server_stop(&s);
}

int main(void)
{
	test_assert(http_global_init() == 0);
	test_run(test_check_url_accepts);
	test_run(test_check_url_refuses);
	test_run(test_describe_http);
	test_run(test_describe_transport);
	test_run(test_get_conditional);
	test_run(test_get_errors);
	test_run(test_get_limits);
	test_run(test_get_unconditional_304);
	test_run(test_get_error_bodies);
	test_run(test_get_refused);
	http_global_cleanup();
	return 0;
}
