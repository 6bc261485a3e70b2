/* transport: one POST to one fixed endpoint, injected into the sign-in
 * modules (login, credentials) so that their tests need no network.  The
 * real one is http_post. */
#ifndef OMIKEYFS_TRANSPORT_H
#define OMIKEYFS_TRANSPORT_H

#include <stddef.h>

struct post_result {
	long status; /* HTTP status, 0 when there was no response */
	char *body;  /* malloc'd, NUL-terminated, or NULL; caller wipes and frees */
	size_t len;
	int err;           /* 0, or -errno when there was no response */
	char message[256]; /* when err: one line, never a secret */
};

struct endpoint {
	/* POST body (content_type) to this endpoint's URL; fill *out, which the
	 * caller has zeroed.  The body may hold secrets: never log it. */
	void (*post)(void *ctx, const char *content_type, const char *body, size_t len,
		     struct post_result *out);
	void *ctx;
};

/* Wipe and free out->body; leaves *out zeroed. */
void post_result_clear(struct post_result *out);

#endif
