/*
 * endpoint: what the sign-in modules (login, credentials) post through,
 * made of http.c.  An answer with a status, error statuses included,
 * is handed on with its body, since Firebase and Omi say why in it; only
 * a request that got no usable answer becomes an error of its own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "errmsg.h"
#include "secret.h"
#include "url.h"

static void endpoint_post(void *ctx, const char *content_type, const char *body, size_t len,
			  struct post_result *out)
{
	struct http_response resp;

	http_post(ctx, content_type, body, len, NULL, &resp);
	switch (resp.error.kind) {
	case HTTP_ERR_NONE:
	case HTTP_ERR_STATUS:
	case HTTP_ERR_REDIRECT:
		out->status = resp.status;
		out->body = resp.body;
		out->len = resp.len;
		resp.body = NULL;
		break;
	default:
		/* No answer, or one cut short (too large, no status). */
		out->status = 0;
		out->err = resp.error.err ? resp.error.err : -EIO;
		errmsg_set(out->message, sizeof(out->message), "%s", resp.error.message);
		break;
	}
	http_response_free(&resp);
}

int endpoint_open(struct endpoint *ep, const struct http_config *config, char *err, size_t errlen)
{
	struct http_client *client;

	memset(ep, 0, sizeof(*ep));
	if (url_check_endpoint(config->url, err, errlen) < 0)
		return -EINVAL;
	if (!(client = http_new(config))) {
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ep->post = endpoint_post;
	ep->ctx = client;
	return 0;
}

void endpoint_close(struct endpoint *ep)
{
	http_free(ep->ctx);
	memset(ep, 0, sizeof(*ep));
}

void post_result_clear(struct post_result *out)
{
	/* A body can hold a token: wipe it before it goes back to malloc. */
	secret_free_len(out->body, out->len);
	memset(out, 0, sizeof(*out));
}
