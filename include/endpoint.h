/* endpoint: one POST to one fixed URL.  The sign-in modules (login,
 * credentials) post through a struct endpoint, so that their tests inject
 * a fake one and need no network; endpoint_open makes the real one, an
 * http client of its own, so that each secret posted reaches only its own
 * host. */
#ifndef OMIKEYFS_ENDPOINT_H
#define OMIKEYFS_ENDPOINT_H

#include <stddef.h>

#include "http.h"

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

/*
 * An endpoint that POSTs to config->url (checked by url_check_endpoint:
 * a refused URL gives -EINVAL with the reason in err, before any
 * traffic).  Returns 0, -EINVAL or -ENOMEM.
 */
int endpoint_open(struct endpoint *ep, const struct http_config *config, char *err, size_t errlen);

/* Free what endpoint_open made; a zeroed endpoint is fine. */
void endpoint_close(struct endpoint *ep);

#endif
