/* loopback: the short-lived HTTP listener on 127.0.0.1 that receives the
 * browser's sign-in callback (RFC 8252 section 7.3). */
#ifndef OMIKEYFS_LOOPBACK_H
#define OMIKEYFS_LOOPBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A request larger than this is refused (400). */
#define LOOPBACK_REQUEST_MAX 8192
/* Connections read side by side, since browsers open spare ones; when all
 * are taken the oldest is dropped, so a silent client blocks nothing. */
#define LOOPBACK_MAX_CONNECTIONS 8

enum loopback_kind {
	LOOPBACK_INCOMPLETE, /* no end of headers yet */
	LOOPBACK_BAD,        /* malformed: answered 400 */
	LOOPBACK_OTHER,      /* not GET /callback: answered 404 */
	LOOPBACK_CALLBACK,   /* GET /callback?...: the fields below */
};

struct loopback_request {
	char *code; /* decoded query values, malloc'd, NULL when absent */
	char *state;
	char *error;
	bool pasted; /* it came as a pasted address: no connection to answer */
};

/* The longest pasted line read; a longer one is refused whole. */
#define LOOPBACK_PASTE_MAX LOOPBACK_REQUEST_MAX

/* Parse the bytes of one request received so far (untrusted).  A callback
 * with a value given twice or badly %-encoded is LOOPBACK_BAD.  *out is
 * filled only for LOOPBACK_CALLBACK. */
enum loopback_kind loopback_parse(const char *buf, size_t len, struct loopback_request *out);
/*
 * Parse one pasted line (untrusted): the address the browser ended on,
 * http://127.0.0.1:PORT/callback?code=...&state=..., white space around it
 * ignored.  It must name exactly this port and path (localhost too, as a
 * browser may show it); its query is read as a callback's.  Returns
 * LOOPBACK_CALLBACK with *out filled, LOOPBACK_OTHER for another address
 * or text, LOOPBACK_BAD for a query a callback would be refused for.
 */
enum loopback_kind loopback_parse_pasted(const char *line, size_t len, unsigned short port,
					 struct loopback_request *out);
/* Wipe (the code is a secret for its five minutes) and free. */
void loopback_request_free(struct loopback_request *req);

struct loopback;

/* Listen on 127.0.0.1:port (0: any free port), close-on-exec.  Returns 0
 * with the port in *bound, or -errno with one line in err. */
int loopback_open(unsigned short port, struct loopback **out, unsigned short *bound, char *err,
		  size_t errlen);

/* What loopback_wait watches besides the connections; -1: nothing. */
struct loopback_inputs {
	int paste_fd;  /* lines pasted (stdin): each read as loopback_parse_pasted */
	int cancel_fd; /* readable: the wait is cancelled (a signal's self-pipe) */
	/* Called with one line (no secret in it) for a pasted line that is
	 * not this sign-in's address; the wait goes on.  May be NULL. */
	void (*refused)(void *ctx, const char *why);
	void *ctx;
};

/*
 * Serve connections until a GET /callback arrives, or a pasted line that
 * is this callback's address (whichever comes first): other requests are
 * answered 404 (or 400) and the wait goes on.  Pasted bytes not yet
 * taken are kept for the next wait on lb.  deadline_ms is on
 * clock_monotonic_ms(); in may be NULL.  Returns 0 with *req filled and, for a
 * connection, that connection held for loopback_answer; -ECANCELED once
 * in->cancel_fd is readable; -ETIMEDOUT; or another -errno.
 */
int loopback_wait(struct loopback *lb, int64_t deadline_ms, const struct loopback_inputs *in,
		  struct loopback_request *req);

/* Answer the held callback connection with a text/plain page and close it. */
void loopback_answer(struct loopback *lb, int status, const char *text, int64_t deadline_ms);

/* Close the listener and every connection (NULL is fine). */
void loopback_close(struct loopback *lb);

#endif
