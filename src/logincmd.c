/*
 * logincmd: `omikeyfs --login` and `--logout`.  The endpoints are built and
 * checked before anything is sent: Omi's token exchange (the code) and
 * Firebase's sign-in (the custom token) each get a client of their own,
 * so neither secret can reach the other's host.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/*
 * SIGINT and SIGTERM while signing in: the handler notes the signal and
 * writes to a pipe the wait polls, so the wait ends at once, and the
 * transfers after it stop within a second (http's cancelled callback).
 * Nothing is saved then.
 */
static volatile sig_atomic_t cancel_signal;
static int cancel_pipe[2] = { -1, -1 };

static void on_cancel(int sig)
{
	int saved = errno;
	char byte = 1;

	cancel_signal = sig;
	if (write(cancel_pipe[1], &byte, 1) < 0) {
		/* Full: the wait has been told already. */
	}
	errno = saved;
}

static bool login_cancelled(void *ctx)
{
	(void)ctx;
	return cancel_signal != 0;
}

struct cancel_guard {
	struct sigaction old_int, old_term;
	bool armed;
};

static void cancel_arm(struct cancel_guard *g)
{
	struct sigaction sa = { .sa_handler = on_cancel };

	g->armed = false;
	cancel_signal = 0;
	if (pipe2(cancel_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return; /* then the signals kill as they always do */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &g->old_int);
	sigaction(SIGTERM, &sa, &g->old_term);
	g->armed = true;
}

static void cancel_disarm(struct cancel_guard *g)
{
	if (!g->armed)
		return;
	sigaction(SIGINT, &g->old_int, NULL);
	sigaction(SIGTERM, &g->old_term, NULL);
	close(cancel_pipe[0]);
	close(cancel_pipe[1]);
	cancel_pipe[0] = cancel_pipe[1] = -1;
}

static void tell_waiting(void *ctx, unsigned short port)
{
	const struct options *opts = ctx;

	if (opts->no_browser)
		log_info("or paste here the address the browser ends on "
			 "(http://127.0.0.1:%u/callback?code=...): whichever comes first wins",
			 (unsigned)port);
}

static void tell_refused(void *ctx, const char *why)
{
	(void)ctx;
	log_warn("%s; still waiting", why);
}

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
	config.cancelled = login_cancelled;
	return endpoint_open(ep, &config, err, errlen);
}

/* Whose session a new sign-in replaces, and what the wait is. */
static void tell_before(const struct options *opts, const char *path)
{
	struct session old = { 0 };

	if (session_load(path, &old, NULL, 0) == 0)
		log_info("signed in as %s already (session file %s); signing in again "
			 "replaces that session",
			 session_identity(&old), path);
	session_free(&old);
	log_info("signing in to %s: open the URL below in a browser; waiting up to %g s "
		 "(Ctrl-C cancels; a cancel in the browser is not seen here)",
		 opts->url, opts->login_timeout);
	if (opts->port)
		log_info("from another machine's browser: ssh -L %d:127.0.0.1:%d THIS-HOST first",
			 opts->port, opts->port);
}

/* login_run's result r, told: who signed in, or why not in err. */
static int tell_outcome(int r, const struct login_error *le, const char *path, char *err,
			size_t errlen)
{
	struct session saved;

	if (r < 0 && cancel_signal) {
		errmsg_set(err, errlen, "the sign-in was cancelled by %s; nothing was saved",
			   cancel_signal == SIGINT ? "SIGINT" : "SIGTERM");
		return -ECANCELED;
	}
	if (r < 0) {
		errmsg_set(err, errlen, "%s", le->message);
		return r;
	}
	if (session_load(path, &saved, NULL, 0) == 0) {
		/* Whose keys the mounts will list: check it is yours. */
		log_info("signed in as %s; the session is saved in %s", session_identity(&saved),
			 path);
		session_free(&saved);
	} else {
		log_info("signed in; the session is saved in %s", path);
	}
	return 0;
}

int logincmd_login(const struct options *opts, char *err, size_t errlen)
{
	struct endpoint omi = { 0 }, firebase = { 0 };
	struct login_error le;
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
		.paste = opts->no_browser,
		.paste_fd = STDIN_FILENO,
		.waiting = tell_waiting,
		.refused = tell_refused,
		.ctx = (void *)opts,
	};
	struct cancel_guard guard;

	if (cfg.timeout_ms <= 0)
		cfg.timeout_ms = 1;
	tell_before(opts, path);
	cancel_arm(&guard);
	cfg.cancel_fd = guard.armed ? cancel_pipe[0] : 0;
	r = tell_outcome(login_run(&cfg, &le), &le, path, err, errlen);
	cancel_disarm(&guard);
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
