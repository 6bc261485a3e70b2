/* apierror: the "detail" of an API error body, parsed once, and made into
 * one line a user can read. */
#ifndef OMIKEYFS_APIERROR_H
#define OMIKEYFS_APIERROR_H

#include <stdbool.h>
#include <stddef.h>

/* What FastAPI's {"detail": ...} holds. */
enum apierror_shape {
	APIERROR_NONE,   /* no such body, or a detail of another type */
	APIERROR_STRING, /* "detail": "Invalid authentication credentials" */
	APIERROR_LIST,   /* FastAPI's validation errors: [{"loc", "msg", ...}] */
	APIERROR_OBJECT, /* {"code", "message", "retryable"}: Omi's account gates */
};

struct apierror {
	enum apierror_shape shape;
	/* STRING: the string's bytes as sent (NULs, controls and all: see
	 * len); LIST, OBJECT: the value as compact JSON.  malloc'd, NUL-
	 * terminated; NULL for NONE.  Untrusted: sanitize it before showing. */
	char *text;
	size_t len;
};

/*
 * Parse len bytes of body as one JSON object (valid UTF-8, nothing but
 * white space after it) and fill *out from its "detail".  Returns 0 (with
 * out->shape APIERROR_NONE when the body holds no usable detail), or
 * -ENOMEM with *out empty.  Give *out back with apierror_free.
 */
int apierror_parse(const char *body, size_t len, struct apierror *out);

/* Free out->text; leaves *out empty (APIERROR_NONE).  An empty one is fine. */
void apierror_free(struct apierror *out);

/*
 * The detail of body as one line of at most 300 bytes: a string as it is,
 * a list or object as compact JSON, control bytes as spaces, the rest as
 * text_sanitize makes it, a cut marked "...".  Returns malloc'd text, or
 * NULL when the body is no such JSON.
 */
char *apierror_detail(const char *body, size_t len);

/* What an error body says, as a user is shown it. */
struct apierror_view {
	char *line;    /* apierror_detail's line; for an account gate (an
			* OBJECT with a string "message") that message, made
			* one line, then " (CODE)"; NULL when there is none */
	bool gate;     /* the detail was such an object */
	char code[64]; /* the gate's "code" when it is a plain word, else "" */
	int retryable; /* the gate's "retryable": 1, 0, or -1 when absent */
};

/* Fill *out from an error body (untrusted); give it back with
 * apierror_view_free.  Out of memory leaves out->line NULL. */
void apierror_view(const char *body, size_t len, struct apierror_view *out);
void apierror_view_free(struct apierror_view *v);

#endif
