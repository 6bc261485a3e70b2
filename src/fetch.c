/*
 * fetch: what the cache calls once per TTL (or per retry).  Renewing a
 * session's ID token happens only in here, inside the cache's single
 * refresh, so no lookup ever waits for a renewal the TTL did not call
 * for, and a failed renewal is a failed fetch like any other: the last
 * good list stays, and the cache backs off.
 *
 * Each secret has its own client, bound to its one URL: the bearer or ID
 * token goes only to API_URL/v1/dev/keys (and, to revoke a key, to
 * API_URL/v1/dev/keys/ID), the refresh token only to Firebase's token
 * service.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apierror.h"
#include "endpoint.h"
#include "errmsg.h"
#include "fetch.h"
#include "firebase.h"
#include "http.h"
#include "log.h"
#include "secret.h"
#include "session.h"
#include "stop.h"
#include "token.h"
#include "url.h"

/* Firebase's answers are about 2 KiB. */
#define RENEW_MAX_SIZE (1 << 20)
/* A DELETE answers 204, or an error body of a few bytes. */
#define REVOKE_MAX_SIZE (1 << 16)
#define DEV_KEY_PREFIX "omi_dev_"

struct fetcher {
	const struct options *opts;
	/* The credentials are one caller's at a time: the cache's refresh,
	 * or a revoke. */
	pthread_mutex_t lock;
	struct http_client *list; /* GET API_URL/v1/dev/keys */
	struct endpoint renew;    /* POST securetoken, for a session only */
	struct credentials *cred;
	const char *key_file; /* opts', read again after a 401, or NULL */
};

static void http_config_from(const struct options *opts, const char *url, size_t max_size,
			     struct http_config *config)
{
	options_http_config(opts, url, max_size, config);
	/* Stopping aborts a transfer under way, renewals included. */
	config->cancelled = stop_requested;
}

/* credentials' reread: the key file again (token.c reads it). */
static char *reread_key_file(void *ctx)
{
	char err[512];
	char *token = token_read_file(ctx, err, sizeof(err));

	if (!token)
		log_warn("%s", err);
	return token;
}

static void warn_line(void *ctx, const char *message)
{
	log_warn("%s", message);
}

static int open_session(struct fetcher *f, const struct options *opts, const char *path, char *err,
			size_t errlen)
{
	struct session s;
	struct http_config config;
	struct cred_error ce;
	char *url = NULL;
	int r;

	/* A file others may read is the user's to fix (exit 1), not a
	 * refusal by the API (-EACCES, exit 2). */
	if ((r = session_load(path, &s, err, errlen)) < 0)
		return r == -EACCES ? -EPERM : r;
	/* Before any traffic: a non-loopback emulator would get the refresh
	 * token over plain http. */
	r = firebase_url(FIREBASE_RENEW, s.firebase_api_key, getenv(FIREBASE_EMULATOR_ENV), &url,
			 err, errlen);
	if (r == 0) {
		http_config_from(opts, url, RENEW_MAX_SIZE, &config);
		r = endpoint_open(&f->renew, &config, err, errlen);
	}
	if (r == 0) {
		struct cred_session_config cfg = {
			.session_path = path,
			.copy = path == opts->session_file && opts->session_copy,
			.session = &s,
			.api_url = opts->url,
			.renew = f->renew,
			.warn = warn_line,
		};

		if ((r = credentials_session(&cfg, &f->cred, &ce)) < 0)
			errmsg_set(err, errlen, "%s", ce.message);
		else
			log_debug("using the session in %s (user %s)", path, s.user_id);
	}
	free(url);
	session_free(&s);
	return r;
}

/* A plain token: key_file, or OMI_API_KEY. */
static int open_bearer(struct fetcher *f, const struct options *opts, char *err, size_t errlen)
{
	char *token = token_load(opts->key_file, err, errlen);

	if (!token)
		return -EINVAL;
	f->key_file = opts->key_file;
	f->cred = credentials_bearer(token, opts->key_file ? reread_key_file : NULL,
				     (void *)opts->key_file);
	secret_free(token);
	if (!f->cred) {
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int open_credentials(struct fetcher *f, const struct options *opts, char *err, size_t errlen)
{
	struct stat st;
	char *path;
	int r;

	if (opts->session_file) {
		token_scrub_env();
		return open_session(f, opts, opts->session_file, err, errlen);
	}
	if (opts->key_file || getenv("OMI_API_KEY"))
		return open_bearer(f, opts, err, errlen);
	/* Nothing given: the session --login saved, when there is one. */
	if (session_default_path(&path, err, errlen) == 0) {
		if (lstat(path, &st) == 0) {
			r = open_session(f, opts, path, err, errlen);
			free(path);
			return r;
		}
		free(path);
	}
	errmsg_set(err, errlen,
		   "no API token: sign in with omikeyfs --login, or set OMI_API_KEY "
		   "or use -o key_file=PATH");
	return -ENOENT;
}

int fetcher_new(const struct options *opts, struct fetcher **out, char *err, size_t errlen)
{
	struct fetcher *f = calloc(1, sizeof(*f));
	struct http_config config;
	int r;

	*out = NULL;
	if (!f) {
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	f->opts = opts;
	pthread_mutex_init(&f->lock, NULL);
	if ((r = open_credentials(f, opts, err, errlen)) < 0) {
		fetcher_free(f);
		return r;
	}
	http_config_from(opts, opts->list_url, opts->max_size, &config);
	if (!(f->list = http_new(&config))) {
		fetcher_free(f);
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*out = f;
	return 0;
}

/* Whether a 401/403 says the credential is not taken (FastAPI's
 * HTTPBearer and the token check), as opposed to an account gate. */
static bool credential_refused(long status, const struct apierror_view *e)
{
	if (status == 401)
		return true;
	return !e->gate && e->line &&
	       (strcmp(e->line, "Not authenticated") == 0 ||
		strcmp(e->line, "Invalid authentication credentials") == 0);
}

/* What to do about a refusal, said after the API's own words.  An account
 * gate is the account's state, not the credential's: signing in again does
 * not help there, so no gate gets that advice. */
static void refusal_hint(const struct fetcher *f, long status, bool dev_key,
			 const struct apierror_view *e, char *msg, size_t msglen)
{
	size_t n = strlen(msg);
	const char *hint = NULL;

	if (status == 426)
		hint = "; the Omi account needs a newer client than this omikeyfs";
	else if (status == 403 && !credential_refused(status, e) &&
		 ((e->gate && strstr(e->code, "delet")) ||
		  (!e->gate && e->line && strstr(e->line, "deleted"))))
		hint = "; the Omi account is deleted, so signing in again does not help";
	else if (!credential_refused(status, e))
		hint = NULL;
	else if (credentials_is_session(f->cred))
		hint = "; sign in again with omikeyfs --login";
	else if (dev_key)
		hint = " (an " DEV_KEY_PREFIX " key cannot list keys: the key list needs a "
		       "signed-in session; sign in with omikeyfs --login)";
	if (hint && n < msglen)
		snprintf(msg + n, msglen - n, "%s", hint);
}

static void credentials_failed(const struct cred_error *ce, struct fetch_result *res)
{
	/* Never 0: a credential that cannot be had is a failed fetch, which
	 * the cache backs off from. */
	res->err = ce->err < 0 ? ce->err : -EACCES;
	errmsg_set(res->message, sizeof(res->message), "%s", ce->message);
}

/* One request with the mount's token, and once more with a new one after
 * a 401: an ID token may expire early (revoked, clock skew); a key file may
 * hold a rotated token.  Returns the request's -errno (resp filled), or,
 * when no token could be had, 1 with ce filled (resp empty). */
static int send_authorized(struct fetcher *f, struct http_client *client,
			   int (*send)(struct http_client *, const char *, struct http_response *),
			   struct http_response *resp, bool *dev_key, struct cred_error *ce)
{
	const char *token;
	int rc;

	memset(resp, 0, sizeof(*resp));
	if (credentials_token(f->cred, &token, ce) < 0)
		return 1;
	*dev_key = strncmp(token, DEV_KEY_PREFIX, strlen(DEV_KEY_PREFIX)) == 0;
	rc = send(client, token, resp);
	if (rc == -EACCES && resp->status == 401 && credentials_refused(f->cred)) {
		http_response_free(resp);
		if (!credentials_is_session(f->cred))
			log_info("the API refused the token; retrying with the new one in %s",
				 f->key_file);
		if (credentials_token(f->cred, &token, ce) < 0)
			return 1;
		*dev_key = strncmp(token, DEV_KEY_PREFIX, strlen(DEV_KEY_PREFIX)) == 0;
		rc = send(client, token, resp);
	}
	return rc;
}

/* resp's one line, with the API's "detail" for an error status (an
 * account gate's by its message and code) and what to do about a refusal. */
static void response_message(const struct fetcher *f, const struct http_response *resp, int rc,
			     bool dev_key, char *msg, size_t msglen)
{
	struct apierror_view detail = { .retryable = -1 };

	if (resp->error.kind == HTTP_ERR_STATUS)
		apierror_view(resp->body, resp->len, &detail);
	http_message(resp, detail.line, msg, msglen);
	if (rc == -EACCES)
		refusal_hint(f, resp->status, dev_key, &detail, msg, msglen);
	apierror_view_free(&detail);
}

void fetcher_fetch(void *ctx, struct fetch_result *res)
{
	struct fetcher *f = ctx;
	struct http_response resp;
	struct cred_error ce;
	bool dev_key = false;
	int rc;

	/* Stopping: no new request, whoever asks (a SIGHUP, an operation). */
	if (stop_requested(NULL)) {
		res->err = -ECANCELED;
		errmsg_set(res->message, sizeof(res->message), "omikeyfs is stopping");
		return;
	}
	pthread_mutex_lock(&f->lock);
	rc = send_authorized(f, f->list, http_get, &resp, &dev_key, &ce);
	pthread_mutex_unlock(&f->lock);
	if (rc == 1) {
		credentials_failed(&ce, res);
		return;
	}
	response_message(f, &resp, rc, dev_key, res->message, sizeof(res->message));
	res->err = rc;
	res->retry_after = resp.retry_after;
	if (res->err == 0) {
		/* Whose list this is: the credential this very request carried
		 * (a healed session's, a rotated key file's), not the mount's
		 * first. */
		res->owner.user_id = credentials_user_id(f->cred);
		res->owner.token = credentials_plain_token(f->cred);
		if (resp.status == 304) {
			res->not_modified = true;
		} else {
			res->body = resp.body;
			res->len = resp.len;
			resp.body = NULL;
		}
	}
	http_response_free(&resp);
}

/* clang-format off */
/* What rmdir answers for a DELETE that failed: one errno per cause. */
static int revoke_errno(int rc, const struct http_response *resp)
{
	switch (-rc) {
	case EACCES:		return -EACCES;	/* 401/403 even with a new token */
	case ETIMEDOUT:		return -ETIMEDOUT;
	case ECANCELED:		return -ECANCELED; /* stopping */
	case EAGAIN:		return -EAGAIN;	/* 429 */
	case ECONNREFUSED:	return -EAGAIN;
	case ECONNRESET:	return -EAGAIN;
	case EHOSTUNREACH:	return -EAGAIN;
	case ENETUNREACH:	return -EAGAIN;
	case EIO:		/* 5xx or a cut connection may pass; another 4xx won't */
		return resp->status >= 500 || resp->error.kind != HTTP_ERR_STATUS ? -EAGAIN : -EIO;
	default:		return -EIO;
	}
}

/* The same for a token that could not be had. */
static int revoke_cred_errno(const struct cred_error *ce)
{
	switch (ce->kind) {
	case CRED_TRANSIENT:	return ce->err == -ETIMEDOUT ? -ETIMEDOUT : -EAGAIN;
	default:		return -EACCES;
	}
}
/* clang-format on */

int fetcher_revoke(void *ctx, const char *id, size_t id_len, char *msg, size_t msglen)
{
	struct fetcher *f = ctx;
	struct http_config config;
	struct http_client *client;
	struct http_response resp;
	struct cred_error ce;
	bool dev_key = false;
	char *url;
	int rc;

	if (stop_requested(NULL)) {
		errmsg_set(msg, msglen, "omikeyfs is stopping");
		return -ECANCELED;
	}
	/* The id is one path segment, whatever its bytes; an empty one would
	 * name the list itself. */
	if (id_len == 0) {
		errmsg_set(msg, msglen, "an empty id names no key to revoke");
		return -EINVAL;
	}
	url = url_join_segment(f->opts->list_url, id, id_len);
	http_config_from(f->opts, url ? url : "", REVOKE_MAX_SIZE, &config);
	client = url ? http_new(&config) : NULL;
	free(url);
	if (!client) {
		errmsg_set(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_lock(&f->lock);
	rc = send_authorized(f, client, http_delete, &resp, &dev_key, &ce);
	pthread_mutex_unlock(&f->lock);
	http_free(client);
	if (rc == 1) {
		errmsg_set(msg, msglen, "%s", ce.message);
		return revoke_cred_errno(&ce);
	}
	response_message(f, &resp, rc, dev_key, msg, msglen);
	rc = rc < 0 ? revoke_errno(rc, &resp) : 0;
	http_response_free(&resp);
	return rc;
}

void fetcher_forget_validators(void *ctx)
{
	struct fetcher *f = ctx;

	http_forget_validators(f->list);
}

const struct credentials *fetcher_credentials(const struct fetcher *f)
{
	return f->cred;
}

void fetcher_free(struct fetcher *f)
{
	if (!f)
		return;
	credentials_free(f->cred);
	endpoint_close(&f->renew);
	http_free(f->list);
	pthread_mutex_destroy(&f->lock);
	free(f);
}
