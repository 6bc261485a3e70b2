/*
 * logincmd: `omikeyfs --login` and `--logout`.  The endpoints are built and
 * checked before anything is sent: Omi's token exchange (the code) and
 * Firebase's sign-in (the custom token) each get a client of their own,
 * so neither secret can reach the other's host.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "errmsg.h"
#include "firebase.h"
#include "log.h"
#include "login.h"
#include "session.h"
#include "logincmd.h"
#include "url.h"

/* Omi's and Firebase's answers are a few KiB. */
#define ANSWER_MAX_SIZE (1 << 20)
#define TOKEN_PATH "/v1/auth/token"

static int session_path(const struct options *opts, char **path, char *err, size_t errlen)
{
	if (!opts->session_file)
		return session_default_path(path, err, errlen);
	if (!(*path = strdup(opts->session_file))) {
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int open_endpoint(const struct options *opts, const char *url, struct endpoint *ep,
			 char *err, size_t errlen)
{
	struct http_config config;

	options_http_config(opts, url, ANSWER_MAX_SIZE, &config);
	return endpoint_open(ep, &config, err, errlen);
}

int logincmd_login(const struct options *opts, char *err, size_t errlen)
{
	struct endpoint omi = { 0 }, firebase = { 0 };
	struct login_error le;
	struct session old = { 0 }, saved;
	char *path = NULL, *token_url = NULL, *firebase_sign_in = NULL;
	int r;

	if ((r = session_path(opts, &path, err, errlen)) < 0)
		goto out;
	/* Where the session will go must be the user's own, before the
	 * browser; session_save checks again. */
	if ((r = session_check_dir(path, err, errlen)) < 0 && r != -ENOENT)
		goto out;
	/* Before any traffic: a non-loopback emulator would get the tokens
	 * over plain http. */
	if ((r = firebase_url(FIREBASE_SIGN_IN, opts->firebase_api_key,
			      getenv(FIREBASE_EMULATOR_ENV), &firebase_sign_in, err, errlen)) < 0)
		goto out;
	if (!(token_url = url_join(opts->url, TOKEN_PATH))) {
		errmsg_set(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	if ((r = open_endpoint(opts, token_url, &omi, err, errlen)) < 0 ||
	    (r = open_endpoint(opts, firebase_sign_in, &firebase, err, errlen)) < 0)
		goto out;

	struct login_config cfg = {
		.api_url = opts->url,
		.provider = opts->provider,
		.port = (unsigned short)opts->port,
		.open_browser = !opts->no_browser,
		.timeout_ms = (long)(opts->login_timeout * 1000),
		.session_path = path,
		.firebase_api_key = opts->firebase_api_key,
		.omi_token = omi,
		.firebase_sign_in = firebase,
		.out = stdout,
	};
	if (cfg.timeout_ms <= 0)
		cfg.timeout_ms = 1;
	if (session_load(path, &old, NULL, 0) == 0)
		log_info("signed in as %s already (session file %s); signing in again "
			 "replaces that session",
			 session_identity(&old), path);
	session_free(&old);
	log_info("signing in to %s: open the URL below in a browser (waiting up to %g s)",
		 opts->url, opts->login_timeout);
	if (opts->port)
		log_info("from another machine's browser: ssh -L %d:127.0.0.1:%d THIS-HOST first",
			 opts->port, opts->port);
	if ((r = login_run(&cfg, &le)) < 0)
		errmsg_set(err, errlen, "%s", le.message);
	else if (session_load(path, &saved, NULL, 0) == 0) {
		/* Whose keys the mounts will list: check it is yours. */
		log_info("signed in as %s; the session is saved in %s", session_identity(&saved),
			 path);
		session_free(&saved);
	} else
		log_info("signed in; the session is saved in %s", path);
	explicit_bzero(&le, sizeof(le));
out:
	endpoint_close(&omi);
	endpoint_close(&firebase);
	free(firebase_sign_in);
	free(token_url);
	free(path);
	return r;
}

int logincmd_logout(const struct options *opts, char *err, size_t errlen)
{
	char *path = NULL;
	int r;

	if ((r = session_path(opts, &path, err, errlen)) < 0)
		return r;
	/* Only a session file that passes the checks of a mount is removed,
	 * never what a symbolic link or a wrong session_file= points at. */
	r = session_remove(path, err, errlen);
	if (r == -ENOENT) {
		log_info("not signed in: there is no session file %s", path);
		r = 0;
	} else if (r == 0) {
		log_info("signed out: removed the session file %s", path);
	}
	free(path);
	return r;
}
