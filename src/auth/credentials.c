/*
 * credentials: what the fetch path sends as "Authorization: Bearer".  A
 * session's ID token lives an hour and is kept in memory only; the
 * refresh token that renews it is the one secret on disk.  A refused
 * renewal is final for that refresh token, so the session file is read
 * again before each later attempt: a new `omikeyfs --login` heals a
 * mounted tree without a remount.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "credentials.h"
#include "errmsg.h"
#include "firebase.h"
#include "secret.h"

struct credentials {
	char *token;           /* plain token, or the session's ID token (or NULL) */
	cred_reread_fn reread; /* plain only */
	void *reread_ctx;

	bool is_session;
	bool copy;              /* cred_session_config.copy */
	struct session session; /* refresh_token is the current one */
	char *path;
	char *api_url; /* NULL: not checked */
	struct endpoint renew;
	cred_clock_fn clock;
	void *clock_ctx;
	cred_warn_fn warn;
	void *warn_ctx;
	int64_t expires_at; /* of token, on clock */
	bool ended;
	struct cred_error ended_error;
};

static void set_error(struct cred_error *err, enum cred_error_kind kind, int e, const char *fmt,
		      ...) __attribute__((format(printf, 4, 5)));

static void set_error(struct cred_error *err, enum cred_error_kind kind, int e, const char *fmt,
		      ...)
{
	va_list ap;

	err->kind = kind;
	err->err = e;
	va_start(ap, fmt);
	errmsg_vset(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

static void warn(struct credentials *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warn(struct credentials *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!c->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->warn(c->warn_ctx, line);
}

static int64_t monotonic_ms(void *ctx)
{
	return clock_monotonic_ms();
}

struct credentials *credentials_bearer(const char *token, cred_reread_fn reread, void *ctx)
{
	struct credentials *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (token && !(c->token = strdup(token))) {
		free(c);
		return NULL;
	}
	c->reread = reread;
	c->reread_ctx = ctx;
	return c;
}

/* "https://api.omi.me/" and "https://api.omi.me" are one API. */
static bool same_url(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 0 && a[la - 1] == '/')
		la--;
	while (lb > 0 && b[lb - 1] == '/')
		lb--;
	return la == lb && memcmp(a, b, la) == 0;
}

int credentials_session(const struct cred_session_config *cfg, struct credentials **out,
			struct cred_error *err)
{
	struct credentials *c;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	if (cfg->api_url && !same_url(cfg->api_url, cfg->session->api_url)) {
		set_error(err, CRED_ENDED, -EACCES,
			  "session file %s was made for %s, not %s; "
			  "sign in with omikeyfs --login",
			  cfg->session_path, cfg->session->api_url, cfg->api_url);
		return err->err;
	}
	c = calloc(1, sizeof(*c));
	if (!c || session_copy(&c->session, cfg->session) < 0 ||
	    !(c->path = strdup(cfg->session_path)) ||
	    (cfg->api_url && !(c->api_url = strdup(cfg->api_url)))) {
		credentials_free(c);
		set_error(err, CRED_TRANSIENT, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	c->is_session = true;
	c->copy = cfg->copy;
	c->renew = cfg->renew;
	c->clock = cfg->clock ? cfg->clock : monotonic_ms;
	c->clock_ctx = cfg->clock_ctx;
	c->warn = cfg->warn;
	c->warn_ctx = cfg->warn_ctx;
	*out = c;
	return 0;
}

/*
 * Keep a rotated refresh token.  The file is read again first, under the
 * directory's lock that --login also takes: when it holds another sign-in
 * (a newer --login) or is gone (--logout), it is left alone, and only this
 * mount uses the rotated token.
 */
static void save_rotated(struct credentials *c, const char *old, const char *fresh)
{
	char why[512];
	int r;

	if (c->copy)
		return;
	r = session_rotate(c->path, old, fresh, why, sizeof(why));
	if (r < 0 && r != -ENOENT && r != -ESTALE)
		warn(c, "the sign-in's new refresh token is not saved: %s", why);
}

static void end_session(struct credentials *c, const struct firebase_error *fe,
			struct cred_error *err)
{
	char line[sizeof(c->ended_error.message)];

	firebase_refusal_text(fe, FIREBASE_RENEW, line, sizeof(line));
	set_error(&c->ended_error, CRED_ENDED, -EACCES, "%s", line);
	c->ended = true;
	secret_free(c->token);
	c->token = NULL;
	*err = c->ended_error;
}

static int renew(struct credentials *c, struct cred_error *err)
{
	struct post_result res = { 0 };
	struct firebase_error fe;
	struct firebase_tokens t;
	char why[256];
	int64_t start = c->clock(c->clock_ctx);
	char *body = firebase_renew_body(c->session.refresh_token);
	int r;

	if (!body) {
		set_error(err, CRED_TRANSIENT, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	c->renew.post(c->renew.ctx, FIREBASE_RENEW_TYPE, body, strlen(body), &res);
	secret_free(body);
	if (firebase_check(&res, &fe) < 0) {
		post_result_clear(&res);
		if (fe.kind == FIREBASE_TRANSIENT) {
			set_error(err, CRED_TRANSIENT, fe.err, "cannot renew the sign-in: %s",
				  fe.message);
			return err->err;
		}
		end_session(c, &fe, err);
		return err->err;
	}
	r = firebase_parse_renew(res.body ? res.body : "", res.len, &t, why, sizeof(why));
	post_result_clear(&res);
	if (r < 0) {
		set_error(err, CRED_TRANSIENT, -EPROTO, "cannot renew the sign-in: %s", why);
		return err->err;
	}
	/* The session file says whose lists these are (and names their kept
	 * copy): a refresh token of another account in it is no session of
	 * that user, and nothing of the answer is used or saved. */
	if (strcmp(t.user_id, c->session.user_id) != 0) {
		set_error(&c->ended_error, CRED_ENDED, -EACCES,
			  "Firebase renewed the session as another user than the session "
			  "file's (%s); sign in again with omikeyfs --login",
			  c->session.user_id);
		firebase_tokens_free(&t);
		c->ended = true;
		secret_free(c->token);
		c->token = NULL;
		*err = c->ended_error;
		return err->err;
	}
	if (strcmp(t.refresh_token, c->session.refresh_token) != 0) {
		save_rotated(c, c->session.refresh_token, t.refresh_token);
		secret_free(c->session.refresh_token);
		c->session.refresh_token = t.refresh_token;
		t.refresh_token = NULL;
	}
	secret_free(c->token);
	c->token = t.id_token;
	t.id_token = NULL;
	/* Counted from before the request: the server's hour began no later. */
	c->expires_at = start + (int64_t)t.expires_in * 1000;
	firebase_tokens_free(&t);
	return 0;
}

/* After an ended session: continue if the file now holds a new sign-in. */
static bool heal(struct credentials *c)
{
	struct session disk;

	if (session_load(c->path, &disk, NULL, 0) < 0)
		return false;
	/* A new sign-in: another refresh token, or the same one saved anew
	 * (Firebase may hand the same user the same token, the Auth
	 * Emulator always does), which is worth one more renewal. */
	if (strcmp(disk.refresh_token, c->session.refresh_token) == 0 &&
	    disk.created == c->session.created) {
		session_free(&disk);
		return false;
	}
	if ((c->api_url && !same_url(disk.api_url, c->api_url)) ||
	    strcmp(disk.firebase_api_key, c->session.firebase_api_key) != 0) {
		/* Its renewal endpoint or its API is not this mount's. */
		set_error(&c->ended_error, CRED_ENDED, -EACCES,
			  "session file %s now holds a sign-in for another API URL or Firebase "
			  "API key; remount to use it",
			  c->path);
		session_free(&disk);
		return false;
	}
	session_free(&c->session);
	c->session = disk;
	c->ended = false;
	return true;
}

int credentials_token(struct credentials *c, const char **token, struct cred_error *err)
{
	int64_t now;

	*token = NULL;
	memset(err, 0, sizeof(*err));
	if (!c->is_session) {
		if (!c->token && c->reread)
			c->token = c->reread(c->reread_ctx);
		if (!c->token) {
			set_error(err, CRED_NO_TOKEN, -EACCES, "no API token");
			return err->err;
		}
		*token = c->token;
		return 0;
	}
	if (c->ended && !heal(c)) {
		*err = c->ended_error;
		return err->err;
	}
	now = c->clock(c->clock_ctx);
	if (!c->token || now >= c->expires_at - CRED_RENEW_EARLY_MS) {
		if (renew(c, err) < 0) {
			/* Renewing early leaves a token that still works a while. */
			if (err->kind != CRED_TRANSIENT || !c->token || now >= c->expires_at)
				return err->err;
			memset(err, 0, sizeof(*err));
		}
	}
	*token = c->token;
	return 0;
}

bool credentials_refused(struct credentials *c)
{
	if (c->is_session) {
		if (c->ended)
			return false;
		secret_free(c->token);
		c->token = NULL;
		return true;
	}
	char *fresh = c->reread ? c->reread(c->reread_ctx) : NULL;

	if (!fresh)
		return false;
	if (c->token && strcmp(fresh, c->token) == 0) {
		secret_free(fresh);
		return false;
	}
	secret_free(c->token);
	c->token = fresh;
	return true;
}

bool credentials_is_session(const struct credentials *c)
{
	return c->is_session;
}

const char *credentials_user_id(const struct credentials *c)
{
	return c->is_session ? c->session.user_id : NULL;
}

const char *credentials_plain_token(const struct credentials *c)
{
	return c->is_session ? NULL : c->token;
}

void credentials_free(struct credentials *c)
{
	if (!c)
		return;
	secret_free(c->token);
	session_free(&c->session);
	free(c->path);
	free(c->api_url);
	secret_free_len(c, sizeof(*c));
}
