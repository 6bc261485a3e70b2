/*
 * httperror: what a failed request amounts to: the errno of a libcurl code
 * or an HTTP status, and the one-line message a user reads.
 *
 * Split from http.c, which runs the transfer: these are tables and text,
 * with no handle and no state, so test_http can check them on synthetic
 * responses.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include <curl/curl.h>

#include "errmsg.h"
#include "http.h"
#include "httperror.h"
#include "text.h"

/* The one place out->error is set. */
void httperror_set(struct http_response *out, enum http_error_kind kind, int errnum,
		   const char *fmt, ...)
{
	va_list ap;

	out->error.kind = kind;
	out->error.err = -errnum;
	va_start(ap, fmt);
	errmsg_vset(out->error.message, sizeof(out->error.message), fmt, ap);
	va_end(ap);
	text_one_line(out->error.message);
}

/* clang-format off */
int httperror_curl_errno(CURLcode code)
{
	switch (code) {
	case CURLE_OPERATION_TIMEDOUT:		return ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:		return ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:	return EHOSTUNREACH;
	case CURLE_COULDNT_RESOLVE_PROXY:	return EHOSTUNREACH;
	case CURLE_SSL_CONNECT_ERROR:		return EPROTO;
	case CURLE_PEER_FAILED_VERIFICATION:	return EPROTO;
	case CURLE_SSL_CERTPROBLEM:		return EPROTO;
	case CURLE_SSL_CIPHER:			return EPROTO;
	case CURLE_SSL_CACERT_BADFILE:		return EPROTO;
	case CURLE_SSL_ENGINE_NOTFOUND:		return EPROTO;
	case CURLE_SSL_ENGINE_SETFAILED:	return EPROTO;
	case CURLE_SSL_ENGINE_INITFAILED:	return EPROTO;
	case CURLE_SSL_SHUTDOWN_FAILED:		return EPROTO;
	case CURLE_SSL_CRL_BADFILE:		return EPROTO;
	case CURLE_SSL_ISSUER_ERROR:		return EPROTO;
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:	return EPROTO;
	case CURLE_SSL_INVALIDCERTSTATUS:	return EPROTO;
	case CURLE_SSL_CLIENTCERT:		return EPROTO;
	case CURLE_USE_SSL_FAILED:		return EPROTO;
	case CURLE_URL_MALFORMAT:		return EINVAL;
	case CURLE_UNSUPPORTED_PROTOCOL:	return EINVAL;
	case CURLE_BAD_FUNCTION_ARGUMENT:	return EINVAL;
	case CURLE_OUT_OF_MEMORY:		return ENOMEM;
	case CURLE_ABORTED_BY_CALLBACK:		return ECANCELED;
	default:				return EIO;
	}
}

int httperror_status_errno(long status)
{
	switch (status) {
	case 401:	return EACCES;
	case 403:	return EACCES;
	case 426:	return EACCES; /* the account needs a newer client: no retry helps */
	case 404:	return ENOENT;
	case 429:	return EAGAIN;
	default:	return EIO;
	}
}
/* clang-format on */

/* " (retry after N s)", or "" */
void httperror_retry_note(double retry_after, char *buf, size_t len)
{
	buf[0] = '\0';
	if (retry_after >= 1e9) /* a hostile number, still one short line */
		snprintf(buf, len, " (retry after %.3g s)", retry_after);
	else if (retry_after >= 0)
		snprintf(buf, len, " (retry after %.0f s)", retry_after);
}

void http_message(const struct http_response *resp, const char *detail, char *msg, size_t msglen)
{
	char wait[48];

	if (!msglen)
		return;
	if (resp->error.kind == HTTP_ERR_STATUS && detail && *detail) {
		httperror_retry_note(resp->retry_after, wait, sizeof(wait));
		errmsg_set(msg, msglen, "HTTP %ld: %s%s", resp->status, detail, wait);
	} else {
		errmsg_set(msg, msglen, "%s", resp->error.message);
	}
	text_one_line(msg);
}
