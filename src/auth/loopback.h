/* loopback: the short-lived HTTP listener on 127.0.0.1 that receives the
 * browser's sign-in callback (RFC 8252 section 7.3). */
#ifndef OMIKEYFS_LOOPBACK_H
#define OMIKEYFS_LOOPBACK_H

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
};

/* Parse the bytes of one request received so far (untrusted).  A callback
 * with a value given twice or badly %-encoded is LOOPBACK_BAD.  *out is
 * filled only for LOOPBACK_CALLBACK. */
enum loopback_kind loopback_parse(const char *buf, size_t len, struct loopback_request *out);
/* Wipe (the code is a secret for its five minutes) and free. */
void loopback_request_free(struct loopback_request *req);

struct loopback;

/* Listen on 127.0.0.1:port (0: any free port), close-on-exec.  Returns 0
 * with the port in *bound, or -errno with one line in err. */
int loopback_open(unsigned short port, struct loopback **out, unsigned short *bound, char *err,
		  size_t errlen);

/*
 * Serve connections until a GET /callback arrives: other requests are
 * answered 404 (or 400) and the wait goes on.  deadline_ms is on
 * clock_monotonic_ms().  Returns 0 with *req filled and that connection held
 * for loopback_answer, or -ETIMEDOUT, or another -errno.
 */
int loopback_wait(struct loopback *lb, int64_t deadline_ms, struct loopback_request *req);

/* Answer the held callback connection with a text/plain page and close it. */
void loopback_answer(struct loopback *lb, int status, const char *text, int64_t deadline_ms);

/* Close the listener and every connection (NULL is fine). */
void loopback_close(struct loopback *lb);

#endif
