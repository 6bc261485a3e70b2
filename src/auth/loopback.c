/*
 * loopback: a tiny HTTP server for one sign-in callback.  Any local
 * process can connect, so every request is untrusted: requests are capped,
 * several connections are read side by side with poll() (a client that
 * sends nothing holds a slot, never the deadline), and nothing received is
 * ever echoed into a page.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "errmsg.h"
#include "loopback.h"
#include "secret.h"
#include "urlenc.h"

struct conn {
	int fd; /* -1: free slot */
	size_t len;
	uint64_t opened; /* order of accept, to drop the oldest */
	char buf[LOOPBACK_REQUEST_MAX + 1];
};

/* A pasted line being read (a pipe may hand it over in pieces). */
struct paste {
	int fd;
	size_t len;
	bool too_long; /* skipping to the end of a line too long to be one */
	char buf[LOOPBACK_PASTE_MAX + 1];
};

struct loopback {
	int listen_fd;
	unsigned short port;
	int held; /* connection of the callback, or -1 */
	uint64_t accepted;
	struct conn conns[LOOPBACK_MAX_CONNECTIONS];
	/* Kept from one wait to the next: a wait ended by a callback its
	 * caller refuses goes on with the rest of what was pasted. */
	struct paste *paste;
};

void loopback_request_free(struct loopback_request *req)
{
	secret_free(req->code);
	secret_free(req->state);
	free(req->error);
	memset(req, 0, sizeof(*req));
}

/* Set *slot to the decoded value unless it was given already. */
static bool take_value(char **slot, const char *value, size_t len)
{
	if (*slot)
		return false;
	*slot = url_unescape(value, len);
	return *slot != NULL;
}

static enum loopback_kind parse_query(const char *q, size_t len, struct loopback_request *out)
{
	const char *end = q + len;

	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(q, '=', (size_t)(stop - q));
		size_t nlen = (size_t)((eq ? eq : stop) - q);
		const char *v = eq ? eq + 1 : stop;
		size_t vlen = (size_t)(stop - v);
		char **slot = NULL;

		if (nlen == 4 && memcmp(q, "code", 4) == 0)
			slot = &out->code;
		else if (nlen == 5 && memcmp(q, "state", 5) == 0)
			slot = &out->state;
		else if (nlen == 5 && memcmp(q, "error", 5) == 0)
			slot = &out->error;
		if (slot && !take_value(slot, v, vlen))
			return LOOPBACK_BAD;
		q = stop + 1;
	}
	return LOOPBACK_CALLBACK;
}

enum loopback_kind loopback_parse(const char *buf, size_t len, struct loopback_request *out)
{
	const char *line_end, *sp1, *sp2, *q;
	enum loopback_kind kind;

	memset(out, 0, sizeof(*out));
	if (!memmem(buf, len, "\r\n\r\n", 4) && !memmem(buf, len, "\n\n", 2))
		return LOOPBACK_INCOMPLETE;
	line_end = memchr(buf, '\n', len);
	sp1 = memchr(buf, ' ', (size_t)(line_end - buf));
	if (!sp1)
		return LOOPBACK_BAD;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1));
	if (!sp2 || (size_t)(line_end - sp2) < 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return LOOPBACK_BAD;
	if (sp1 - buf != 3 || memcmp(buf, "GET", 3) != 0)
		return LOOPBACK_OTHER;
	q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
	if ((size_t)((q ? q : sp2) - sp1 - 1) != 9 || memcmp(sp1 + 1, "/callback", 9) != 0)
		return LOOPBACK_OTHER;
	if (!q)
		return LOOPBACK_CALLBACK;
	kind = parse_query(q + 1, (size_t)(sp2 - q - 1), out);
	if (kind != LOOPBACK_CALLBACK)
		loopback_request_free(out);
	return kind;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

enum loopback_kind loopback_parse_pasted(const char *line, size_t len, unsigned short port,
					 struct loopback_request *out)
{
	const char *hosts[] = { "127.0.0.1", "localhost" };
	char prefix[64];
	enum loopback_kind kind;

	memset(out, 0, sizeof(*out));
	while (len > 0 && is_space(line[0])) {
		line++;
		len--;
	}
	while (len > 0 && is_space(line[len - 1]))
		len--;
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		int n = snprintf(prefix, sizeof(prefix), "http://%s:%u/callback?", hosts[i],
				 (unsigned)port);

		if (n > 0 && len >= (size_t)n && memcmp(line, prefix, (size_t)n) == 0) {
			/* A fragment is not the server's to see: as a browser would,
			 * send only what comes before it. */
			const char *q = line + n, *hash = memchr(q, '#', len - (size_t)n);
			size_t qlen = hash ? (size_t)(hash - q) : len - (size_t)n;

			for (size_t j = 0; j < qlen; j++)
				if ((unsigned char)q[j] <= 0x20 || q[j] == 0x7f)
					return LOOPBACK_BAD;
			kind = parse_query(q, qlen, out);
			if (kind != LOOPBACK_CALLBACK)
				loopback_request_free(out);
			else
				out->pasted = true;
			return kind;
		}
	}
	return LOOPBACK_OTHER;
}

int loopback_open(unsigned short port, struct loopback **out, unsigned short *bound, char *err,
		  size_t errlen)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
	socklen_t alen = sizeof(addr);
	struct loopback *lb;
	int one = 1, r;

	*out = NULL;
	lb = calloc(1, sizeof(*lb));
	if (!lb) {
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	lb->held = -1;
	for (int i = 0; i < LOOPBACK_MAX_CONNECTIONS; i++)
		lb->conns[i].fd = -1;
	/* The IPv4 literal, as RFC 8252 8.3 advises: "localhost" may resolve
	 * elsewhere.  Close-on-exec keeps it out of the browser opener. */
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lb->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (lb->listen_fd < 0 ||
	    setsockopt(lb->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lb->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(lb->listen_fd, 16) < 0 ||
	    getsockname(lb->listen_fd, (struct sockaddr *)&addr, &alen) < 0) {
		r = -errno;
		errmsg_set(err, errlen, "cannot listen on 127.0.0.1:%u: %s", port, strerror(-r));
		loopback_close(lb);
		return r;
	}
	*bound = lb->port = ntohs(addr.sin_port);
	*out = lb;
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	/* The buffer may hold a sign-in code. */
	explicit_bzero(c->buf, c->len);
	c->len = 0;
}

/* Write all of a short answer, waiting for room no later than the deadline. */
static void send_all(int fd, const char *p, size_t len, int64_t deadline_ms)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return;
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int64_t left = deadline_ms - clock_monotonic_ms();

		if (left <= 0 || poll(&pfd, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
			return;
	}
}

static void answer(int fd, int status, const char *text, int64_t deadline_ms)
{
	const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request";
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
			 "Content-Length: %zu\r\nCache-Control: no-store\r\n"
			 "Connection: close\r\n\r\n",
			 status, reason, strlen(text));

	send_all(fd, head, (size_t)n, deadline_ms);
	send_all(fd, text, strlen(text), deadline_ms);
}

static void accept_one(struct loopback *lb)
{
	struct conn *slot = NULL;
	int fd = accept4(lb->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	for (int i = 0; i < LOOPBACK_MAX_CONNECTIONS; i++) {
		struct conn *c = &lb->conns[i];

		if (c->fd < 0) {
			slot = c;
			break;
		}
		if (!slot || c->opened < slot->opened)
			slot = c;
	}
	conn_close(slot);
	slot->fd = fd;
	slot->opened = lb->accepted++;
}

/* Read what c has; returns true when it was the callback. */
static bool read_conn(struct loopback *lb, struct conn *c, int64_t deadline_ms,
		      struct loopback_request *req)
{
	ssize_t n = recv(c->fd, c->buf + c->len, LOOPBACK_REQUEST_MAX - c->len, 0);
	enum loopback_kind kind;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	if (n <= 0) {
		conn_close(c);
		return false;
	}
	c->len += (size_t)n;
	kind = loopback_parse(c->buf, c->len, req);
	if (kind == LOOPBACK_INCOMPLETE && c->len < LOOPBACK_REQUEST_MAX)
		return false;
	if (kind == LOOPBACK_CALLBACK) {
		lb->held = c->fd;
		c->fd = -1;
		conn_close(c);
		return true;
	}
	if (kind == LOOPBACK_OTHER)
		answer(c->fd, 404, "Not found.\n", deadline_ms);
	else
		answer(c->fd, 400, "Bad request.\n", deadline_ms);
	conn_close(c);
	return false;
}

static void paste_refused(const struct loopback_inputs *in, const char *why)
{
	if (in->refused)
		in->refused(in->ctx, why);
}

static bool paste_lines(struct loopback *lb, struct paste *p, const struct loopback_inputs *in,
			struct loopback_request *req);

/* Read what the paste fd has; returns true with *req filled when a line
 * was this callback's address.  End of input: the fd is watched no more. */
static bool read_paste(struct loopback *lb, struct paste *p, const struct loopback_inputs *in,
		       struct loopback_request *req)
{
	ssize_t n = read(p->fd, p->buf + p->len, LOOPBACK_PASTE_MAX - p->len);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	if (n <= 0) {
		p->fd = -1; /* a line without its newline at the end counts too */
		if (p->len == 0 || p->too_long)
			return false;
		n = 0;
		p->buf[p->len++] = '\n';
	}
	p->len += (size_t)n;
	return paste_lines(lb, p, in, req);
}

/* Take the whole lines read so far, up to the first that is this
 * callback's address (true, *req filled). */
static bool paste_lines(struct loopback *lb, struct paste *p, const struct loopback_inputs *in,
			struct loopback_request *req)
{
	char *nl;

	while ((nl = memchr(p->buf, '\n', p->len))) {
		size_t line = (size_t)(nl - p->buf) + 1;
		enum loopback_kind kind = LOOPBACK_OTHER;

		if (!p->too_long)
			kind = loopback_parse_pasted(p->buf, line - 1, lb->port, req);
		else
			paste_refused(in, "that line is too long to be the sign-in's address");
		explicit_bzero(p->buf, line);
		memmove(p->buf, p->buf + line, p->len - line);
		p->len -= line;
		if (kind == LOOPBACK_CALLBACK)
			return true;
		if (!p->too_long && kind == LOOPBACK_BAD)
			paste_refused(in,
				      "that address is this sign-in's, but its query is malformed");
		else if (!p->too_long && line > 1)
			paste_refused(
				in, "that is not this sign-in's address: paste the whole "
				    "http://127.0.0.1:PORT/callback?... line the browser ended on");
		p->too_long = false;
	}
	if (p->len == LOOPBACK_PASTE_MAX) {
		explicit_bzero(p->buf, p->len);
		p->len = 0;
		p->too_long = true;
	}
	return false;
}

int loopback_wait(struct loopback *lb, int64_t deadline_ms, const struct loopback_inputs *in,
		  struct loopback_request *req)
{
	static const struct loopback_inputs none = { .paste_fd = -1, .cancel_fd = -1 };
	struct paste *paste = NULL;
	int r = 0;

	memset(req, 0, sizeof(*req));
	if (!in)
		in = &none;
	if (in->paste_fd >= 0) {
		if (!lb->paste) {
			if (!(lb->paste = calloc(1, sizeof(*lb->paste))))
				return -ENOMEM;
			lb->paste->fd = in->paste_fd;
		}
		paste = lb->paste;
		/* Lines read by the wait before this one. */
		if (paste_lines(lb, paste, in, req))
			return 0;
	}
	for (;;) {
		struct pollfd pfd[LOOPBACK_MAX_CONNECTIONS + 3];
		struct conn *which[LOOPBACK_MAX_CONNECTIONS + 3];
		int64_t left = deadline_ms - clock_monotonic_ms();
		int n = 0, first = 1, ready;

		if (left <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		pfd[n].fd = lb->listen_fd;
		pfd[n].events = POLLIN;
		which[n++] = NULL;
		/* The cancel and the paste before the connections: -1 is skipped
		 * by poll, so their places are fixed. */
		pfd[n].fd = in->cancel_fd;
		pfd[n].events = POLLIN;
		which[n++] = NULL;
		pfd[n].fd = paste ? paste->fd : -1;
		pfd[n].events = POLLIN;
		which[n++] = NULL;
		first = n;
		for (int i = 0; i < LOOPBACK_MAX_CONNECTIONS; i++) {
			if (lb->conns[i].fd < 0)
				continue;
			pfd[n].fd = lb->conns[i].fd;
			pfd[n].events = POLLIN;
			which[n++] = &lb->conns[i];
		}
		ready = poll(pfd, (nfds_t)n, (int)(left > 60000 ? 60000 : left));
		if (ready < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		if (ready <= 0)
			continue;
		if (pfd[1].revents) {
			r = -ECANCELED;
			break;
		}
		if (pfd[2].revents && read_paste(lb, paste, in, req))
			break;
		for (int i = first; i < n; i++)
			if (pfd[i].revents && read_conn(lb, which[i], deadline_ms, req))
				goto out;
		if (pfd[0].revents & POLLIN)
			accept_one(lb);
	}
out:
	return r;
}

void loopback_answer(struct loopback *lb, int status, const char *text, int64_t deadline_ms)
{
	if (lb->held < 0)
		return;
	answer(lb->held, status, text, deadline_ms);
	close(lb->held);
	lb->held = -1;
}

void loopback_close(struct loopback *lb)
{
	if (!lb)
		return;
	if (lb->listen_fd >= 0)
		close(lb->listen_fd);
	if (lb->held >= 0)
		close(lb->held);
	for (int i = 0; i < LOOPBACK_MAX_CONNECTIONS; i++)
		conn_close(&lb->conns[i]);
	if (lb->paste) {
		explicit_bzero(lb->paste->buf, sizeof(lb->paste->buf));
		free(lb->paste);
	}
	free(lb);
}
