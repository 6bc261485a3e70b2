/* apierror: the "detail" of an API error body as one line a user can read. */
#ifndef OMIKEYFS_APIERROR_H
#define OMIKEYFS_APIERROR_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The "detail" of an API error body ({"detail": "..."}, FastAPI's style) as
 * one line of at most 300 bytes: a string as it is, a list or object as
 * compact JSON, control bytes as spaces.  Returns malloc'd text, or NULL
 * when the body is no such JSON.
 */
char *apierror_detail(const char *body, size_t len);

/* What an error body says, read once. */
struct apierror {
	char *text;     /* apierror_detail's line, or for an account gate (a
			 * "detail" object with a string "message") that
			 * message followed by " (CODE)"; NULL when none */
	char code[64];  /* the gate's "code" when it is a plain word, else "" */
	bool gate;      /* "detail" was such an object */
	int retryable;  /* the gate's "retryable": 1, 0, or -1 when absent */
};

/* Fill *out from an error body (untrusted); free with apierror_clear. */
void apierror_read(const char *body, size_t len, struct apierror *out);
void apierror_clear(struct apierror *e);

#endif
